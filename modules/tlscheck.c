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
 */
#include <stdlib.h>
#include <string.h>

#include "authz.h"
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

void tlscheck_print(FILE *f, const struct tlscheck_row *rows, size_t n)
{
	static const char *const head[] = { "HOST:PORT", "STATUS", "SERVER", "CLIENT", "AUTHN POLICY", "DESTINATION RULE" };
	size_t w[6], i, k;

	for (k = 0; k < 6; k++)
		w[k] = strlen(head[k]);
	for (i = 0; i < n; i++) {
		const char *cell[6] = { rows[i].host, rows[i].status, mode_names[rows[i].server], rows[i].client,
		                        rows[i].authn, rows[i].dest_rule };

		for (k = 0; k < 6; k++)
			if (strlen(cell[k]) > w[k])
				w[k] = strlen(cell[k]);
	}
	fprintf(f, "%-*s %-*s  %-*s  %-*s  %-*s  %s\n", (int)w[0], head[0], (int)w[1], head[1], (int)w[2], head[2],
	        (int)w[3], head[3], (int)w[4], head[4], head[5]);
	for (i = 0; i < n; i++)
		fprintf(f, "%-*s %-*s  %-*s  %-*s  %-*s  %s\n", (int)w[0], rows[i].host, (int)w[1], rows[i].status,
		        (int)w[2], mode_names[rows[i].server], (int)w[3], rows[i].client, (int)w[4], rows[i].authn,
		        rows[i].dest_rule);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: mesh tls-check [SERVICE[.NAMESPACE]] [-c FILE]\n"
	           "  The mTLS mode of a service's endpoints (SERVER), what a client proxy sends them\n"
	           "  (CLIENT, auto mTLS) and whether the two agree (STATUS), from the configuration:\n"
	           "  a mesh file or a proxy's file (then CLIENT is that proxy's). Without SERVICE,\n"
	           "  every service. FILE defaults to mesh.ini.\n");
}

int tlscheck_main(int argc, char **argv)
{
	const char *path = "mesh.ini", *name = NULL;
	struct tlscheck_row *rows = NULL;
	size_t n = 0, i, cap = 0;
	char err[4096] = "mesh tls-check: out of memory";
	struct conf *c;
	int identity, rc = 0;

	for (i = 1; i < (size_t)argc; i++) {
		if (!strcmp(argv[i], "-c") && i + 1 < (size_t)argc) {
			path = argv[++i];
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
