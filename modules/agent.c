/*
 * agent: the proxy's side of the CA protocol (see agent.h, docs/protocol.md).
 *
 * One fetch: trust bundle (the [control] trust_bundle file, or GET /v1/root
 * on an unverified connection whose answer must contain the root pinned by
 * ca_fingerprint - only that certificate is then trusted), a fresh P-256 key
 * in memory, a CSR naming spiffe://<trust_domain>/ns/<ns>/sa/<sa>, POST
 * /v1/sign with the token over TLS verified against the bundle (the CA must
 * present spiffe://<trust_domain>/ca), then the returned chain is checked
 * against the bundle and must name exactly the identity asked for.
 *
 * Renewal runs on its own thread (blocking I/O with deadlines, never on the
 * data path): at ~70% of the certificate's life (+-5% jitter), retrying with
 * exponential backoff and jitter while the CA is away; a new identity goes to
 * the loop through a mailbox and an ev_async.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ev.h"

#include "agent.h"
#include "buf.h"
#include "conf.h"
#include "http1.h"
#include "log.h"
#include "net.h"
#include "tls.h"

#define AGENT_MAX_RESPONSE  65536
#define AGENT_RENEW_AT      0.70    /* of the certificate's life */
#define AGENT_JITTER        0.05    /* +- of the life */
#define AGENT_BACKOFF_MIN   1.0     /* seconds */
#define AGENT_BACKOFF_MAX   60.0
#define AGENT_TRY_MS        10000   /* one renewal attempt */

/* what a fetch needs, copied out of the conf (which may be freed by a reload) */
struct agent_params {
	struct conf_addr ca;
	char *token_file;
	char *trust_bundle;
	char *ca_fingerprint;        /* lowercase hex, no separators */
	char *key_file;
	char *trust_domain;
	char *ns, *sa;
};

static void params_free(struct agent_params *p)
{
	free(p->token_file);
	free(p->trust_bundle);
	free(p->ca_fingerprint);
	free(p->key_file);
	free(p->trust_domain);
	free(p->ns);
	free(p->sa);
	memset(p, 0, sizeof(*p));
}

static char *agent_dup_or_null(const char *s)
{
	return s && *s ? strdup(s) : NULL;
}

static int params_from_conf(struct agent_params *p, const struct conf *cf, char *err, size_t errlen)
{
	const char *td = cf->mesh.trust_domain ? cf->mesh.trust_domain : cf->mesh.domain ? cf->mesh.domain : "cluster.local";
	const char *ns = cf->workload.namespace ? cf->workload.namespace : "default";
	const char *sa = cf->workload.service_account ? cf->workload.service_account : cf->workload.service;

	memset(p, 0, sizeof(*p));
	if (!cf->control.ca.set) {
		snprintf(err, errlen, "no CA configured: set [control] ca = HOST:PORT (where `mesh ca` listens)");
		return -1;
	}
	if (!sa || !*sa) {
		snprintf(err, errlen, "no identity: set [workload] service_account (or service)");
		return -1;
	}
	if (!cf->control.trust_bundle && !cf->control.ca_fingerprint) {
		snprintf(err, errlen, "cannot verify the CA: set [control] trust_bundle = root.crt (from `mesh ca init`) "
		                      "or ca_fingerprint = <sha256 the CA prints>");
		return -1;
	}
	p->ca = cf->control.ca;
	p->token_file = agent_dup_or_null(cf->control.token_file);
	p->trust_bundle = agent_dup_or_null(cf->control.trust_bundle);
	p->key_file = agent_dup_or_null(cf->control.key_file);
	p->trust_domain = strdup(td);
	p->ns = strdup(ns);
	p->sa = strdup(sa);
	if (cf->control.ca_fingerprint) {
		const char *s = cf->control.ca_fingerprint;
		char *o;

		if (!strncasecmp(s, "sha256:", 7))
			s += 7;
		p->ca_fingerprint = o = calloc(1, strlen(s) + 1);
		for (; o && *s; s++)
			if (*s != ':' && *s != ' ')
				*o++ = (char)(*s >= 'A' && *s <= 'F' ? *s - 'A' + 'a' : *s);
		if (o && strlen(p->ca_fingerprint) != 64) {
			snprintf(err, errlen, "[control] ca_fingerprint: want the 64 hex digits of a SHA-256 (as `mesh ca init` prints)");
			params_free(p);
			return -1;
		}
	}
	if (!p->trust_domain || !p->ns || !p->sa) {
		snprintf(err, errlen, "out of memory");
		params_free(p);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ blocking HTTPS with a deadline */

static long long agent_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* waits for fd (POLLIN/POLLOUT) until deadline: 0, or -1 on timeout */
static int agent_wait_fd(int fd, short ev, long long deadline)
{
	for (;;) {
		struct pollfd pf = { fd, ev, 0 };
		long long left = deadline - agent_now_ms();
		int rc;

		if (left <= 0)
			return -1;
		rc = poll(&pf, 1, (int)(left > 1000 ? 1000 : left));
		if (rc > 0)
			return 0;
		if (rc < 0 && errno != EINTR)
			return -1;
	}
}

/*
 * One request over a fresh TLS connection (Connection: close). status and a
 * malloc'd, NUL-terminated body on success (0); -1 with err.
 */
static int agent_https(const struct conf_addr *ca, struct tls_creds *cr, const char *id, const char *req, size_t reqlen,
                 long long deadline, int *status, char **body, char *err, size_t errlen)
{
	struct tls_conn *t = NULL;
	char *buf = NULL;
	size_t len = 0, off = 0;
	int fd, inprog = 0, rc = -1, r;
	const char *ids[1] = { id };

	*body = NULL;
	fd = net_connect((const struct sockaddr *)&ca->ss, ca->len, &inprog);
	if (fd < 0) {
		snprintf(err, errlen, "ca %s: %s (is `mesh ca` running there?)", ca->text, strerror(errno));
		return -1;
	}
	if (inprog) {
		if (agent_wait_fd(fd, POLLOUT, deadline) < 0) {
			snprintf(err, errlen, "ca %s: connect timed out (is `mesh ca` running there?)", ca->text);
			goto done;
		}
		if ((r = net_connect_result(fd)) != 0) {
			snprintf(err, errlen, "ca %s: %s (is `mesh ca` running there?)", ca->text, strerror(r));
			goto done;
		}
	}
	t = tls_client(cr, fd, id ? ids : NULL, id ? 1 : 0, NULL);
	if (!t) {
		snprintf(err, errlen, "ca %s: out of memory", ca->text);
		goto done;
	}
	while ((r = tls_handshake(t)) != 0) {
		if (r == TLS_ERR) {
			snprintf(err, errlen, "ca %s: TLS: %s (is the trust bundle the CA's root? `mesh cert show` it)",
			         ca->text, tls_error(t));
			goto done;
		}
		if (agent_wait_fd(fd, r == TLS_WANT_READ ? POLLIN : POLLOUT, deadline) < 0) {
			snprintf(err, errlen, "ca %s: TLS handshake timed out", ca->text);
			goto done;
		}
	}
	while (off < reqlen) {
		ssize_t n = tls_write(t, req + off, reqlen - off);

		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n == TLS_ERR || n == 0 || agent_wait_fd(fd, n == TLS_WANT_READ ? POLLIN : POLLOUT, deadline) < 0) {
			snprintf(err, errlen, "ca %s: sending the request: %s", ca->text, n == TLS_ERR ? tls_error(t) : "timed out");
			goto done;
		}
	}
	buf = malloc(AGENT_MAX_RESPONSE + 1);
	if (!buf)
		goto done;
	for (;;) {
		struct http1_header hdrs[32];
		static const struct http1_limits lim = { 8192, 16384, 32 };
		struct http1_msg m;
		ssize_t n;
		int head;

		memset(&m, 0, sizeof(m));
		head = http1_parse_response(buf, len, &m, hdrs, &lim, 0);
		if (head > 0 && m.body == HTTP1_BODY_LENGTH && len >= (size_t)head + m.content_length) {
			*status = m.status;
			*body = strndup(buf + head, (size_t)m.content_length);
			rc = *body ? 0 : -1;
			break;
		}
		if (head > 0 && m.body == HTTP1_BODY_NONE) {
			*status = m.status;
			*body = strdup("");
			rc = *body ? 0 : -1;
			break;
		}
		if (head == -1 || len >= AGENT_MAX_RESPONSE) {
			snprintf(err, errlen, "ca %s: the answer is not an HTTP response this agent understands", ca->text);
			break;
		}
		n = tls_read(t, buf + len, AGENT_MAX_RESPONSE - len);
		if (n > 0) {
			len += (size_t)n;
			continue;
		}
		if (n == 0 || n == TLS_ERR) {
			snprintf(err, errlen, "ca %s: connection closed before the whole answer (%s)", ca->text,
			         n ? tls_error(t) : "EOF");
			break;
		}
		if (agent_wait_fd(fd, n == TLS_WANT_READ ? POLLIN : POLLOUT, deadline) < 0) {
			snprintf(err, errlen, "ca %s: no answer in time", ca->text);
			break;
		}
	}
done:
	free(buf);
	tls_free(t);
	close(fd);
	return rc;
}

/* ------------------------------------------------------------------ one fetch */

static char *agent_read_text(const char *path, size_t max)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;

	if (!f)
		return NULL;
	buf = malloc(max + 1);
	if (!buf) {
		fclose(f);
		return NULL;
	}
	n = fread(buf, 1, max, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

/* the certificate of bundle whose SHA-256 is pin, as PEM (malloc'd), or NULL */
static char *agent_pick_pinned(const char *bundle, const char *pin)
{
	const char *p = bundle;

	while ((p = strstr(p, "-----BEGIN CERTIFICATE-----")) != NULL) {
		const char *e = strstr(p, "-----END CERTIFICATE-----");
		struct tls_cert_info info;
		char err[128];
		char *one;

		if (!e)
			break;
		e += 25;
		one = strndup(p, (size_t)(e - p));
		if (!one)
			return NULL;
		if (tls_chain_info(one, strlen(one), &info, 1, err, sizeof(err)) == 1 && !strcmp(info.fingerprint, pin)) {
			char *out = malloc(strlen(one) + 2);

			if (out)
				sprintf(out, "%s\n", one);
			free(one);
			return out;
		}
		free(one);
		p = e;
	}
	return NULL;
}

static int agent_write_key(const char *path, const char *key, char *err, size_t errlen)
{
	char tmp[4096];
	int fd;
	size_t len = strlen(key);

	snprintf(tmp, sizeof(tmp), "%s.tmp%ld", path, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || fchmod(fd, 0600) < 0 || write(fd, key, len) != (ssize_t)len || close(fd) < 0) {
		snprintf(err, errlen, "[control] key_file %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		unlink(tmp);
		return -1;
	}
	if (rename(tmp, path) < 0) {
		snprintf(err, errlen, "[control] key_file %s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

static struct tls_creds *agent_fetch_once(const struct agent_params *p, long long deadline, char *err, size_t errlen)
{
	char want[600], ca_id[600], got[600], e2[600];
	char *bundle = NULL, *key = NULL, *csr = NULL, *token = NULL, *req = NULL, *body = NULL;
	struct tls_creds *boot = NULL, *out = NULL;
	int status = 0;
	size_t reqlen;

	if (tls_global_init() < 0) {
		snprintf(err, errlen, "no entropy for the random generator");
		return NULL;
	}
	if (tls_spiffe_id(want, sizeof(want), p->trust_domain, p->ns, p->sa) < 0 ||
	    snprintf(ca_id, sizeof(ca_id), "spiffe://%s/ca", p->trust_domain) >= (int)sizeof(ca_id)) {
		snprintf(err, errlen, "identity too long");
		return NULL;
	}
	/* 1. the trust bundle */
	if (p->trust_bundle) {
		bundle = agent_read_text(p->trust_bundle, 1 << 20);
		if (!bundle) {
			snprintf(err, errlen, "[control] trust_bundle %s: %s (copy the CA's root.crt there)", p->trust_bundle,
			         strerror(errno));
			goto done;
		}
	} else {
		static const char get[] = "GET /v1/root HTTP/1.1\r\nHost: mesh-ca\r\nConnection: close\r\n\r\n";

		boot = tls_creds_new_ex(NULL, NULL, NULL, TLS_CREDS_NO_VERIFY, err, errlen);
		if (!boot || agent_https(&p->ca, boot, NULL, get, sizeof(get) - 1, deadline, &status, &body, err, errlen) < 0)
			goto done;
		if (status != 200) {
			snprintf(err, errlen, "ca %s: GET /v1/root answered %d", p->ca.text, status);
			goto done;
		}
		bundle = agent_pick_pinned(body, p->ca_fingerprint);
		if (!bundle) {
			snprintf(err, errlen, "ca %s: its root does not have the pinned fingerprint %.16s... "
			                      "(wrong CA, or [control] ca_fingerprint is stale)", p->ca.text, p->ca_fingerprint);
			goto done;
		}
		free(body);
		body = NULL;
		tls_creds_unref(boot);
		boot = NULL;
	}
	/* 2. key and CSR, token */
	if (!(key = tls_key_generate(err, errlen)) || !(csr = tls_csr_create(key, want, err, errlen)))
		goto done;
	if (p->token_file) {
		char why[64];

		if (!(token = buf_read_line(p->token_file, 1024, why, sizeof(why)))) {
			snprintf(err, errlen, "[control] token_file %s: %s (make one with `mesh ca token --ns %s --sa %s`)",
			         p->token_file, why, p->ns, p->sa);
			goto done;
		}
	}
	reqlen = strlen(csr) + (token ? strlen(token) : 0) + 512;
	if (!(req = malloc(reqlen)))
		goto done;
	reqlen = (size_t)snprintf(req, reqlen,
	                          "POST /v1/sign HTTP/1.1\r\nHost: mesh-ca\r\n%s%s%sContent-Type: application/pkcs10\r\n"
	                          "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
	                          token ? "Authorization: Bearer " : "", token ? token : "", token ? "\r\n" : "",
	                          strlen(csr), csr);
	/* 3. sign, over TLS verified against the bundle */
	boot = tls_creds_new_ex(NULL, NULL, bundle, 0, err, errlen);
	if (!boot || agent_https(&p->ca, boot, ca_id, req, reqlen, deadline, &status, &body, err, errlen) < 0)
		goto done;
	if (status != 200) {
		body[strcspn(body, "\n")] = '\0';
		snprintf(err, errlen, "ca %s refused %s: %d %.200s%s", p->ca.text, want, status, body,
		         status == 403 ? (p->token_file ? " (is token_file's token for this identity and this CA? "
		                                                   "`mesh ca token --ns NS --sa SA`)"
		                                                 : " (set [control] token_file)")
		                       : "");
		goto done;
	}
	/* 4. what came back leads to the bundle and names us */
	if (tls_chain_verify(body, bundle, got, sizeof(got), e2, sizeof(e2)) < 0) {
		snprintf(err, errlen, "ca %s: the certificate it sent: %s", p->ca.text, e2);
		goto done;
	}
	if (strcmp(got, want) != 0) {
		snprintf(err, errlen, "ca %s: sent a certificate for %.200s, not %.200s", p->ca.text, got, want);
		goto done;
	}
	if (!(out = tls_creds_new(body, key, bundle, err, errlen)))
		goto done;
	if (p->key_file && agent_write_key(p->key_file, key, err, errlen) < 0) {
		tls_creds_unref(out);
		out = NULL;
	}
done:
	tls_creds_unref(boot);
	if (key)
		memset(key, 0, strlen(key));
	free(key);
	free(csr);
	free(token);
	free(req);
	free(body);
	free(bundle);
	return out;
}

struct tls_creds *agent_fetch(const struct conf *cf, unsigned timeout_ms, char *err, size_t errlen)
{
	struct agent_params p;
	struct tls_creds *c;

	if (params_from_conf(&p, cf, err, errlen) < 0)
		return NULL;
	c = agent_fetch_once(&p, agent_now_ms() + (timeout_ms ? timeout_ms : 10000), err, errlen);
	params_free(&p);
	return c;
}

/* ------------------------------------------------------------------ renewal */

static struct {
	int running;
	struct agent_params p;
	struct ev_loop *loop;
	ev_async async;              /* thread -> loop: a new identity is in the mailbox */
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;         /* wakes the thread for agent_stop */
	int stop;
	struct tls_creds *mailbox;   /* newest identity not yet handed over */
	double not_before, not_after;  /* of the current identity */
	void (*on_creds)(struct tls_creds *c, void *arg);
	void *arg;
} A = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static double agent_jitter(double span)
{
	unsigned int r = 0;

	tls_random(&r, sizeof(r));
	return span * ((double)r / 4294967295.0 * 2.0 - 1.0);
}

static double agent_wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* sleeps until wall-clock time t or agent_stop; 1 when stopping */
static int agent_sleep_until(double t)
{
	struct timespec ts;
	int stop;

	ts.tv_sec = (time_t)t;
	ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
	pthread_mutex_lock(&A.lock);
	while (!A.stop && agent_wall() < t)
		if (pthread_cond_timedwait(&A.cond, &A.lock, &ts) == ETIMEDOUT)
			break;
	stop = A.stop;
	pthread_mutex_unlock(&A.lock);
	return stop;
}

static void *agent_renew_thread(void *unused)
{
	double backoff = AGENT_BACKOFF_MIN;

	(void)unused;
	for (;;) {
		double life = A.not_after - A.not_before;
		double at = A.not_before + life * AGENT_RENEW_AT + agent_jitter(life * AGENT_JITTER);
		char err[512];
		struct tls_creds *c;

		if (agent_sleep_until(at))
			break;
		for (;;) {
			c = agent_fetch_once(&A.p, agent_now_ms() + AGENT_TRY_MS, err, sizeof(err));
			if (c)
				break;
			log_warn("agent: renewing %s/%s failed: %s; retrying in %.0f s (certificate valid for %.0f s more)",
			         A.p.ns, A.p.sa, err, backoff, A.not_after - agent_wall());
			if (agent_sleep_until(agent_wall() + backoff + agent_jitter(backoff * 0.2)))
				goto out;
			backoff = backoff * 2 > AGENT_BACKOFF_MAX ? AGENT_BACKOFF_MAX : backoff * 2;
		}
		backoff = AGENT_BACKOFF_MIN;
		A.not_before = tls_creds_not_before(c);
		if (A.not_before < agent_wall())
			A.not_before = agent_wall();     /* see agent_start */
		A.not_after = tls_creds_not_after(c);
		pthread_mutex_lock(&A.lock);
		tls_creds_unref(A.mailbox);
		A.mailbox = c;
		pthread_mutex_unlock(&A.lock);
		ev_async_send(A.loop, &A.async);
	}
out:
	return NULL;
}

static void agent_async_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct tls_creds *c;

	(void)loop;
	(void)w;
	(void)revents;
	pthread_mutex_lock(&A.lock);
	c = A.mailbox;
	A.mailbox = NULL;
	pthread_mutex_unlock(&A.lock);
	if (c) {
		log_debug("agent: new identity %s, not_after %.0f (Unix time)", tls_creds_id(c), tls_creds_not_after(c));
		A.on_creds(c, A.arg);
	}
}

int agent_start(struct ev_loop *loop, const struct conf *cf, const struct tls_creds *cur,
                void (*on_creds)(struct tls_creds *c, void *arg), void *arg)
{
	pthread_attr_t attr;
	char err[512];

	if (A.running || !cur || !on_creds)
		return -1;
	if (params_from_conf(&A.p, cf, err, sizeof(err)) < 0) {
		log_error("agent: %s", err);
		return -1;
	}
	A.loop = loop;
	A.on_creds = on_creds;
	A.arg = arg;
	A.stop = 0;
	/* life is counted from when we got it: not_before is back-dated by the
	 * CA's clock_skew, which for a short-lived certificate would put 70% of
	 * its life in the past and renew in a loop */
	A.not_before = tls_creds_not_before(cur);
	if (A.not_before < agent_wall())
		A.not_before = agent_wall();
	A.not_after = tls_creds_not_after(cur);
	ev_async_init(&A.async, agent_async_cb);
	ev_async_start(loop, &A.async);
	ev_unref(loop);  /* the renewal watcher alone does not keep the loop running */
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 512 * 1024);
	if (pthread_create(&A.thread, &attr, agent_renew_thread, NULL) != 0) {
		pthread_attr_destroy(&attr);
		ev_ref(loop);
		ev_async_stop(loop, &A.async);
		params_free(&A.p);
		return -1;
	}
	pthread_attr_destroy(&attr);
	A.running = 1;
	return 0;
}

void agent_stop(void)
{
	if (!A.running)
		return;
	pthread_mutex_lock(&A.lock);
	A.stop = 1;
	pthread_cond_signal(&A.cond);
	pthread_mutex_unlock(&A.lock);
	pthread_join(A.thread, NULL);
	ev_ref(A.loop);
	ev_async_stop(A.loop, &A.async);
	tls_creds_unref(A.mailbox);
	A.mailbox = NULL;
	params_free(&A.p);
	A.running = 0;
}

/* ------------------------------------------------------------------ mesh cert request */

int agent_request_main(int argc, char **argv)
{
	struct conf cf;
	const char *out = NULL, *ca = NULL;
	char err[1024], path[4096];
	struct tls_creds *c;
	unsigned timeout = 10000;
	int i;

	memset(&cf, 0, sizeof(cf));
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v) {
			fprintf(stderr, "mesh cert request: '%s' needs a value\n", a);
			return 2;
		}
		if (!strcmp(a, "--ca"))
			ca = v;
		else if (!strcmp(a, "--trust-bundle"))
			cf.control.trust_bundle = (char *)v;
		else if (!strcmp(a, "--ca-fingerprint"))
			cf.control.ca_fingerprint = (char *)v;
		else if (!strcmp(a, "--token-file"))
			cf.control.token_file = (char *)v;
		else if (!strcmp(a, "--ns"))
			cf.workload.namespace = (char *)v;
		else if (!strcmp(a, "--sa"))
			cf.workload.service_account = (char *)v;
		else if (!strcmp(a, "--trust-domain"))
			cf.mesh.trust_domain = (char *)v;
		else if (!strcmp(a, "--out"))
			out = v;
		else if (!strcmp(a, "--timeout"))
			timeout = (unsigned)atoi(v) * 1000;
		else {
			fprintf(stderr, "mesh cert request: unknown argument '%s'\n", a);
			return 2;
		}
		i++;
	}
	if (!ca || conf_parse_addr(ca, &cf.control.ca, 1) < 0) {
		fprintf(stderr, "mesh cert request: --ca HOST:PORT of `mesh ca` is required\n");
		return 2;
	}
	cf.control.ca.set = 1;
	if (out) {
		snprintf(path, sizeof(path), "%s.key", out);
		cf.control.key_file = path;
	}
	c = agent_fetch(&cf, timeout, err, sizeof(err));
	if (!c) {
		fprintf(stderr, "mesh cert request: %s\n", err);
		return 1;
	}
	if (out) {
		char crt[4096];
		FILE *f;

		snprintf(crt, sizeof(crt), "%s.crt", out);
		f = fopen(crt, "w");
		if (!f || fputs(tls_creds_chain_pem(c), f) < 0 || fclose(f) != 0) {
			fprintf(stderr, "mesh cert request: %s: %s\n", crt, strerror(errno));
			tls_creds_unref(c);
			return 1;
		}
		printf("%s: %s.crt, %s.key\n", tls_creds_id(c), out, out);
	} else {
		fputs(tls_creds_chain_pem(c), stdout);
	}
	tls_creds_unref(c);
	return 0;
}
