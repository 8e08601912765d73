/*
 * tlscheck: `mesh tls-check` from the configuration (see tlscheck.h).
 *
 * Data enters as a loaded struct conf and a service; each endpoint is a
 * workload (the service's namespace, app=<service>, the endpoint's labels)
 * whose peer mode authz_peer_mode() gives for the service port. Rows leave
 * as struct tlscheck_row, which tlscheck_print() lays out like istioctl.
 * CLIENT follows Istio's auto mTLS: a client proxy sends mTLS to an endpoint
 * with a sidecar unless the endpoint's mode is DISABLE, and plaintext (HTTP)
 * otherwise. STATUS is CONFLICT when the two cannot talk: STRICT with a
 * plaintext client (the service has no sidecar, or the client no identity).
 *
 * LIVE asks the running endpoints (unless --offline): a plaintext request
 * tells STRICT (403 "mTLS required") from the rest, and a TLS record header
 * tells a proxy that takes mTLS (it starts a handshake and drops the
 * garbage) from one that only speaks HTTP (it answers 400). An endpoint
 * that answers otherwise than its configuration says makes the row CONFLICT
 * (typically a proxy that has not reloaded).
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "authz.h"
#include "net.h"
#include "tlscheck.h"

static const char *const mode_names[] = { "UNSET", "DISABLE", "PERMISSIVE", "STRICT" };

/* "NAME/NAMESPACE" of the policy authz_peer_mode named by its id, or "-" */
static void authn_text(const struct conf *c, const char *id, char *buf, size_t n)
{
	size_t i;

	for (i = 0; id && *id && i < c->n_peer_auths; i++)
		if (c->peer_auths[i].id == id) {
			snprintf(buf, n, "%s/%s", c->peer_auths[i].name,
			         c->peer_auths[i].namespace ? c->peer_auths[i].namespace : "");
			return;
		}
	snprintf(buf, n, "-");
}

static void fill(struct tlscheck_row *r, const struct conf *c, const struct conf_service *svc, int client_identity,
                 enum conf_mtls mode, const char *policy)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->host, sizeof(r->host), "%s.%s.svc.%s:%u", svc->name, svc->namespace, c->mesh.domain,
	         (unsigned)svc->port);
	r->server = mode;
	r->client = svc->sidecar && client_identity && mode != CONF_MTLS_DISABLE ? "mTLS" : "HTTP";
	authn_text(c, policy, r->authn, sizeof(r->authn));
	if (svc->destination)
		snprintf(r->dest_rule, sizeof(r->dest_rule), "%s/%s", svc->name, svc->namespace);
	else
		snprintf(r->dest_rule, sizeof(r->dest_rule), "-");
	r->status = "OK";
	if (mode == CONF_MTLS_STRICT && !strcmp(r->client, "HTTP")) {
		r->status = "CONFLICT";
		snprintf(r->why, sizeof(r->why), "%s", !svc->sidecar
		         ? "STRICT, but the service has no sidecar (sidecar = no): clients send plaintext and nothing takes mTLS"
		         : "STRICT, but this proxy has no identity ([control] ca is not set), so it sends plaintext");
	}
}

size_t tlscheck_rows(const struct conf *c, const struct conf_service *svc, int client_identity,
                     struct tlscheck_row *rows, size_t max)
{
	size_t n = 0, i, j;

	if (!svc->n_endpoints) {
		const struct authz_workload w = { svc->namespace, svc->name, NULL };
		const char *pol;
		enum conf_mtls m = authz_peer_mode(c, &w, svc->port, &pol);

		if (max)
			fill(&rows[0], c, svc, client_identity, m, pol);
		return 1;
	}
	for (i = 0; i < svc->n_endpoints; i++) {
		const struct authz_workload w = { svc->namespace, svc->name, &svc->endpoints[i].labels };
		const char *pol;
		enum conf_mtls m = authz_peer_mode(c, &w, svc->port, &pol);
		struct tlscheck_row r;

		fill(&r, c, svc, client_identity, m, pol);
		for (j = 0; j < n && j < max; j++)      /* one row per (mode, policy) */
			if (rows[j].server == r.server && !strcmp(rows[j].authn, r.authn))
				break;
		if (j < n && j < max) {
			rows[j].endpoints++;
		} else {
			r.endpoints = 1;
			if (n < max)
				rows[n] = r;
			n++;
		}
	}
	return n;
}

/* ------------------------------------------------------------------ live probes */

#define PROBE_MS 1500

static long long ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Connects to a, sends what, reads what comes back until close, timeout or
 * cap. Returns bytes read (0: closed without a word), -1: no connection,
 * -2: connected but silent until the timeout.
 */
static int probe(const struct conf_addr *a, const char *what, size_t len, char *out, size_t cap)
{
	long long end = ms_now() + PROBE_MS;
	struct pollfd pf;
	int fd, inprog, got = 0, silent = 1;
	ssize_t n;

	fd = net_connect((const struct sockaddr *)&a->ss, a->len, &inprog);
	if (fd < 0)
		return -1;
	pf.fd = fd;
	pf.events = POLLOUT;
	if (inprog && (poll(&pf, 1, PROBE_MS) != 1 || net_connect_result(fd))) {
		close(fd);
		return -1;
	}
	if (write(fd, what, len) != (ssize_t)len) {
		close(fd);
		return 0;
	}
	pf.events = POLLIN;
	while ((size_t)got < cap - 1) {
		long long left = end - ms_now();

		if (left <= 0 || poll(&pf, 1, (int)left) != 1)
			break;
		n = read(fd, out + got, cap - 1 - (size_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		silent = 0;
		if (n <= 0)
			break;
		got += (int)n;
	}
	out[got] = '\0';
	close(fd);
	return got ? got : silent ? -2 : 0;
}

/* what an endpoint does: "STRICT", "PERMISSIVE", "DISABLE", "DOWN" or "?" */
static const char *probe_mode(const struct conf_addr *a)
{
	static const char plain[] = "GET / HTTP/1.1\r\nHost: tls-check\r\nConnection: close\r\n\r\n";
	static const char record[] = "\x16\x03\x01\x00\x04\x01\x00\x00\x00";   /* a (bogus) ClientHello record */
	char buf[512];
	int np, nt, refused, takes_tls;

	np = probe(a, plain, sizeof(plain) - 1, buf, sizeof(buf));
	if (np == -1)
		return "DOWN";
	refused = np > 0 && !strncmp(buf, "HTTP/1.", 7) && strstr(buf, "mTLS required") != NULL;
	if (np > 0 && strncmp(buf, "HTTP/1.", 7))
		return "?";
	nt = probe(a, record, sizeof(record) - 1, buf, sizeof(buf));
	if (nt == -1)
		return "DOWN";
	takes_tls = !(nt > 0 && !strncmp(buf, "HTTP/1.", 7));
	if (refused)
		return takes_tls ? "STRICT" : "?";
	if (np <= 0)
		return "?";
	return takes_tls ? "PERMISSIVE" : "DISABLE";
}

/* probes every endpoint of svc and merges what they do into its rows */
static void tlscheck_live(const struct conf *c, const struct conf_service *svc, struct tlscheck_row *rows,
                          size_t n)
{
	size_t i, j;

	for (i = 0; i < svc->n_endpoints; i++) {
		const struct conf_endpoint *ep = &svc->endpoints[i];
		const struct authz_workload w = { svc->namespace, svc->name, &ep->labels };
		enum conf_mtls m = authz_peer_mode(c, &w, svc->port, NULL);
		const char *live = probe_mode(&ep->addr);
		const char *want = svc->sidecar ? mode_names[m] : "DISABLE";
		struct tlscheck_row *r = NULL;

		for (j = 0; j < n && !r; j++)
			if (rows[j].server == m)
				r = &rows[j];
		if (!r)
			continue;
		if (!strstr(r->live, live))
			snprintf(r->live + strlen(r->live), sizeof(r->live) - strlen(r->live), "%s%s",
			         r->live[0] ? "," : "", live);
		if (strcmp(live, "DOWN") && strcmp(live, want) && !(!svc->sidecar && !strcmp(live, "?"))) {
			r->status = "CONFLICT";
			if (!r->why[0])
				snprintf(r->why, sizeof(r->why), "endpoint %s answers as %s, the configuration says %s "
				         "(a proxy that did not reload? send it SIGHUP)", ep->addr.text, live, want);
		}
	}
}

void tlscheck_print(FILE *f, const struct tlscheck_row *rows, size_t n)
{
	static const char *const head[] = { "HOST:PORT", "STATUS", "SERVER", "CLIENT", "AUTHN POLICY", "DESTINATION RULE",
	                                    "LIVE" };
	size_t w[7], i, k;
	int live = 0;

	for (k = 0; k < 7; k++)
		w[k] = strlen(head[k]);
	for (i = 0; i < n; i++) {
		const char *cell[7] = { rows[i].host, rows[i].status, mode_names[rows[i].server], rows[i].client,
		                        rows[i].authn, rows[i].dest_rule, rows[i].live };

		live |= rows[i].live[0] != '\0';
		for (k = 0; k < 7; k++)
			if (strlen(cell[k]) > w[k])
				w[k] = strlen(cell[k]);
	}
	fprintf(f, "%-*s %-*s  %-*s  %-*s  %-*s  %-*s%s%s\n", (int)w[0], head[0], (int)w[1], head[1], (int)w[2], head[2],
	        (int)w[3], head[3], (int)w[4], head[4], live ? (int)w[5] : 0, head[5], live ? "  " : "",
	        live ? head[6] : "");
	for (i = 0; i < n; i++)
		fprintf(f, "%-*s %-*s  %-*s  %-*s  %-*s  %-*s%s%s\n", (int)w[0], rows[i].host, (int)w[1], rows[i].status,
		        (int)w[2], mode_names[rows[i].server], (int)w[3], rows[i].client, (int)w[4], rows[i].authn,
		        live ? (int)w[5] : 0, rows[i].dest_rule, live ? "  " : "", live ? rows[i].live : "");
}

static void usage(FILE *f)
{
	fprintf(f, "usage: mesh tls-check [SERVICE[.NAMESPACE]] [-c FILE] [--offline]\n"
	           "  The mTLS mode of a service's endpoints (SERVER), what a client proxy sends them\n"
	           "  (CLIENT, auto mTLS) and whether the two agree (STATUS), from the configuration:\n"
	           "  a mesh file or a proxy's file (then CLIENT is that proxy's). Without SERVICE,\n"
	           "  every service. FILE defaults to mesh.ini. LIVE is what the running endpoints\n"
	           "  do when asked (a plaintext request, a TLS record); --offline skips that.\n");
}

int tlscheck_main(int argc, char **argv)
{
	const char *path = "mesh.ini", *name = NULL;
	struct tlscheck_row *rows = NULL;
	size_t n = 0, i, cap = 0;
	char err[4096] = "mesh tls-check: out of memory";
	struct conf *c;
	int identity, rc = 0, offline = 0;

	for (i = 1; i < (size_t)argc; i++) {
		if (!strcmp(argv[i], "-c") && i + 1 < (size_t)argc) {
			path = argv[++i];
		} else if (!strcmp(argv[i], "--offline")) {
			offline = 1;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else if (argv[i][0] != '-' && !name) {
			name = argv[i];
		} else {
			fprintf(stderr, "mesh tls-check: unexpected argument '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	cap = 16;
	rows = malloc(cap * sizeof(*rows));
	c = rows ? conf_load(path, err, sizeof(err)) : NULL;
	if (!c) {
		free(rows);
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	/* a proxy's own file: its client side has an identity only with a CA */
	identity = !(c->mesh_path || c->workload.service || c->workload.app.set) || c->control.ca.set;
	for (i = 0; i < c->n_services; i++) {
		const struct conf_service *s = &c->services[i];
		size_t got;

		if (name) {
			const struct conf_service *hit = conf_find_service(c, name, strlen(name), NULL);

			if (hit != s)
				continue;
		}
		for (;;) {
			struct tlscheck_row *more;

			got = tlscheck_rows(c, s, identity, rows + n, cap - n);
			if (n + got <= cap)
				break;
			cap = (n + got) * 2;
			if (!(more = realloc(rows, cap * sizeof(*rows)))) {
				fprintf(stderr, "mesh tls-check: out of memory\n");
				free(rows);
				conf_unref(c);
				return 1;
			}
			rows = more;
		}
		if (!offline)
			tlscheck_live(c, s, rows + n, got);
		n += got;
	}
	if (name && !n) {
		fprintf(stderr, "mesh tls-check: no service '%s' in %s (services:", name, path);
		for (i = 0; i < c->n_services && i < 20; i++)
			fprintf(stderr, " %s.%s", c->services[i].name, c->services[i].namespace);
		fprintf(stderr, "%s)\n", c->n_services ? "" : " none");
		rc = 1;
	} else {
		tlscheck_print(stdout, rows, n);
		for (i = 0; i < n; i++)
			if (rows[i].why[0])
				fprintf(stdout, "%s: %s\n", rows[i].host, rows[i].why);
	}
	free(rows);
	conf_unref(c);
	return rc;
}
