/*
 * controller: registry, snapshots, and the long-poll server (controller.h).
 *
 * One libev loop. Connections are TLS with a client certificate required;
 * requests are small HTTP/1.1 messages on kept-alive connections. A poll for
 * a version the proxy already holds is parked on its lease until the snapshot
 * changes or a third of the lease TTL passes (then 304), so every poll is
 * also the lease's heartbeat. Changes (registrations, expiries, mesh.ini) are
 * debounced, then every proxy's snapshot is rendered once per distinct view
 * (proxies whose authorization policies are the same share one text) and
 * versioned by a hash of its text: identical content keeps its version, so a
 * proxy is only sent what changed, and a restarted controller that rebuilds
 * the same registry sends nothing at all. After a start the controller waits
 * one lease TTL (the warm-up) for proxies to re-register before it sends a
 * snapshot to a proxy that already has one, so a half-rebuilt registry never
 * reaches the data plane.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <ini.h>

#include "admin.h"
#include "authz.h"
#include "buf.h"
#include "ca.h"
#include "conf.h"
#include "controller.h"
#include "dashboard.h"
#include "http1.h"
#include "log.h"
#include "net.h"
#include "tls.h"

#define CTL_MAX_REQUEST 4096       /* a registration is a few hundred bytes */
#define CTL_MAX_CONNS   20000
#define CTL_IDLE        120.0      /* seconds a kept-alive connection may sit without a request */
#define CTL_DEBOUNCE    0.05       /* seconds: changes within this window make one rebuild */
#define CTL_DEFAULT_TTL 15000      /* ms */
#define CTL_WARMUP_MIN  8.0        /* seconds */
#define CTL_INBUF_KEEP  64         /* idle request buffers kept for reuse */

/* ------------------------------------------------------------------ state */

struct snap {                      /* one rendered snapshot, shared by the proxies with that view */
	int refs;
	char version[17];          /* 16 hex digits of a hash of the text */
	char *text;
	size_t len;
};

struct ctl_conn;

struct ctl_proxy {                 /* one registration: a lease */
	struct ctl_proxy *next;
	char lease[17];
	char id[320];              /* from the certificate */
	char ns[254], sa[254];
	char service[254];         /* "" for a client-only proxy */
	char name[300];            /* for proxy-status: given, or service-version */
	char address[80];          /* where peers reach it; "" = no inbound */
	char admin[80];
	char labels[600];          /* canonical "k=v, k=v" */
	struct conf_labels lab;
	double registered, seen, expires;
	char acked[17];            /* the version it says it holds */
	char rejected[17];         /* a version it refused, and why */
	char reject_why[300];
	struct snap *snap;         /* what it should hold */
	struct ctl_conn *poll;     /* its parked poll, or NULL */
	char view[64];             /* scratch during a rebuild */
};

enum { CC_HANDSHAKE, CC_READ, CC_PARKED, CC_WRITE, CC_LINGER };

struct ctl_conn {
	ev_io io;                  /* first: the watcher is the connection */
	ev_timer timer;
	struct ctl_conn *next, *prev;
	struct tls_conn *tls;
	int fd;
	int state;
	int close_after;
	char ip[46];
	struct ctl_proxy *parked;  /* CC_PARKED: the lease it waits on */
	char *head;                /* response head (malloc'd) */
	size_t head_len;
	struct snap *body;         /* response body, or NULL: the head holds it */
	size_t off;                /* bytes of head + body written */
	size_t in_len;
	char *in;                  /* the request being read (CTL_MAX_REQUEST + 1 bytes), NULL
	                              between requests: a parked poll holds no buffer */
};

static struct {
	struct ev_loop *loop;
	const char *path;          /* mesh.ini */
	struct conf *cf;           /* the running mesh.ini */
	uint64_t file_hash;        /* of its text (and the text of its includes) when it was loaded */
	char last_error[2048];     /* the last refused reload, "" when the running file is the newest */
	double ttl;                /* lease TTL, seconds */
	double started, warm_until;
	struct ca *ca;
	struct tls_creds *creds;   /* the controller's own identity */
	ev_timer creds_timer, sweep, debounce, warm, poll_file;
	ev_io lio, inotify_io;
	int lfd, ifd;
	char listen_text[80], admin_text[80];
	struct admin *admin;
	struct dashboard *dash;    /* mesh up: the dashboard on the same loop */
	ev_signal sighup, sigint, sigterm;
	struct ctl_conn *conns;
	size_t n_conns;
	char *free_in;             /* free list of request buffers (next pointer in their first bytes) */
	size_t n_free_in;
	struct ctl_proxy *proxies;
	size_t n_proxies;
	uint64_t rng;
	/* counters for /metrics */
	unsigned long long registrations, refused, expired, pushes, polls, rebuilds, reloads_ok, reloads_bad;
	double last_rebuild_ms;
} C;

static uint64_t fnv64(const void *p, size_t n, uint64_t h)
{
	const unsigned char *s = p;

	while (n--)
		h = (h ^ *s++) * 0x100000001b3ULL;
	return h;
}

static uint64_t rnd(void)
{
	C.rng ^= C.rng << 13;
	C.rng ^= C.rng >> 7;
	C.rng ^= C.rng << 17;
	return C.rng;
}

/* request buffers: only a connection in the middle of a request holds one */
static char *inbuf_get(void)
{
	char *b = C.free_in;

	if (!b)
		return malloc(CTL_MAX_REQUEST + 1);
	memcpy(&C.free_in, b, sizeof(char *));
	C.n_free_in--;
	return b;
}

static void inbuf_put(char *b)
{
	if (!b)
		return;
	if (C.n_free_in >= CTL_INBUF_KEEP) {
		free(b);
		return;
	}
	memcpy(b, &C.free_in, sizeof(char *));
	C.free_in = b;
	C.n_free_in++;
}

static void snap_unref(struct snap *s)
{
	if (s && --s->refs == 0) {
		free(s->text);
		free(s);
	}
}

/* ------------------------------------------------------------------ responses */

static void conn_step(struct ctl_conn *cc);

static void conn_close(struct ctl_conn *cc)
{
	if (cc->parked && cc->parked->poll == cc)
		cc->parked->poll = NULL;
	ev_io_stop(C.loop, &cc->io);
	ev_timer_stop(C.loop, &cc->timer);
	tls_free(cc->tls);
	close(cc->fd);
	inbuf_put(cc->in);
	free(cc->head);
	snap_unref(cc->body);
	if (cc->prev)
		cc->prev->next = cc->next;
	else
		C.conns = cc->next;
	if (cc->next)
		cc->next->prev = cc->prev;
	free(cc);
	C.n_conns--;
}

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Content Too Large";
	case 431: return "Request Header Fields Too Large";
	case 503: return "Service Unavailable";
	default: return "Internal Server Error";
	}
}

/* queues a response: body text, or a snapshot (with its version header) */
static void respond(struct ctl_conn *cc, int status, const char *text, struct snap *s, int close_after)
{
	size_t bl = s ? s->len : text ? strlen(text) : 0;
	size_t cap = 256 + (s ? 0 : bl);   /* the head is under 200 bytes */

	free(cc->head);
	snap_unref(cc->body);
	cc->body = NULL;
	cc->head = malloc(cap);
	if (!cc->head) {
		conn_close(cc);
		return;
	}
	cc->head_len = (size_t)snprintf(cc->head, cap, "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\n"
	                                "Content-Length: %zu\r\n%s%s%s%s\r\n", status, reason(status), bl,
	                                s ? "X-Mesh-Version: " : "", s ? s->version : "", s ? "\r\n" : "",
	                                close_after ? "Connection: close\r\n" : "");
	if (s) {
		s->refs++;
		cc->body = s;
	} else if (bl) {
		memcpy(cc->head + cc->head_len, text, bl);
		cc->head_len += bl;
	}
	cc->off = 0;
	cc->close_after = close_after;
	cc->state = CC_WRITE;
}

static void respond_error(struct ctl_conn *cc, int status, const char *msg, int close_after)
{
	char b[1024];

	snprintf(b, sizeof(b), "error: %.1000s\n", msg);
	respond(cc, status, b, NULL, close_after);
}

/* answers a parked poll now (status 200 with the snapshot, or 304) */
static void unpark(struct ctl_proxy *p, int send)
{
	struct ctl_conn *cc = p->poll;

	if (!cc)
		return;
	p->poll = NULL;
	cc->parked = NULL;
	if (send && p->snap) {
		respond(cc, 200, NULL, p->snap, 0);
		C.pushes++;
	} else {
		respond(cc, 304, NULL, NULL, 0);
	}
	ev_timer_stop(C.loop, &cc->timer);
	ev_timer_set(&cc->timer, CTL_IDLE, CTL_IDLE);
	ev_timer_start(C.loop, &cc->timer);
	conn_step(cc);
}

/* ------------------------------------------------------------------ snapshots */

static void schedule_rebuild(void)
{
	if (!ev_is_active(&C.debounce)) {
		ev_timer_set(&C.debounce, CTL_DEBOUNCE, 0.);
		ev_timer_start(C.loop, &C.debounce);
	}
}

static int proxy_cmp(const void *a, const void *b)
{
	const struct ctl_proxy *x = *(struct ctl_proxy *const *)a, *y = *(struct ctl_proxy *const *)b;

	return strcmp(x->address, y->address);
}

/* the registered endpoints of a service, sorted by address so the text (and
 * its version) depends only on who is registered */
static char *hook_endpoints(void *ctx, const struct conf_service *s)
{
	struct strbuf b = { 0 };
	struct ctl_proxy **v, *p;
	size_t n = 0, i, j;

	(void)ctx;
	if (!C.n_proxies || !(v = malloc(C.n_proxies * sizeof(*v))))
		return NULL;
	for (p = C.proxies; p; p = p->next) {
		if (!p->address[0] || strcmp(p->service, s->name) || strcmp(p->ns, s->namespace))
			continue;
		for (j = 0; j < s->n_endpoints && strcmp(s->endpoints[j].addr.text, p->address); j++)
			;
		if (j == s->n_endpoints)        /* a static endpoint at the same address wins */
			v[n++] = p;
	}
	qsort(v, n, sizeof(*v), proxy_cmp);
	for (i = 0; i < n; i++) {
		if (i && !strcmp(v[i]->address, v[i - 1]->address))
			continue;               /* two leases on one address: one endpoint */
		strbuf_printf(&b, "%s%s%s\n", v[i]->address, v[i]->labels[0] ? " " : "", v[i]->labels);
	}
	free(v);
	return b.p;
}

static int hook_keep_authz(void *ctx, const struct conf_authz *a)
{
	const struct ctl_proxy *p = ctx;
	struct authz_workload w = { p->ns, p->service[0] ? p->service : NULL, &p->lab };

	return authz_selects(a->namespace, &a->selector, &w);
}

/* which authorization policies apply to p: its view key */
static void view_of(struct ctl_proxy *p)
{
	size_t i, o = 0;

	p->view[0] = '\0';
	for (i = 0; i < C.cf->n_authzs && o + 8 < sizeof(p->view); i++)
		if (hook_keep_authz(p, &C.cf->authzs[i]))
			o += (size_t)snprintf(p->view + o, sizeof(p->view) - o, "%zu,", i);
}

static struct snap *render_for(struct ctl_proxy *p)
{
	struct conf_snapshot_hook h = { p, hook_endpoints, hook_keep_authz };
	struct snap *s = calloc(1, sizeof(*s));
	char err[1024];
	struct conf *chk;

	if (!s || !(s->text = conf_render_mesh(C.cf, &h))) {
		free(s);
		return NULL;
	}
	s->refs = 1;
	s->len = strlen(s->text);
	snprintf(s->version, sizeof(s->version), "%016llx",
	         (unsigned long long)fnv64(s->text, s->len, 0xcbf29ce484222325ULL));
	/* one parser, one validator: what we send must load */
	if (!(chk = conf_load_string("snapshot", s->text, err, sizeof(err)))) {
		log_error("snapshot for %s does not load, not sent: %s", p->name, err);
		snap_unref(s);
		return NULL;
	}
	conf_unref(chk);
	return s;
}

static void rebuild(void)
{
	struct { char view[64]; struct snap *s; } *cache = NULL;
	size_t n_cache = 0, i;
	struct ctl_proxy *p;
	struct timespec t0, t1;
	int warming = ev_now(C.loop) < C.warm_until;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (C.n_proxies)
		cache = calloc(C.n_proxies, sizeof(*cache));
	for (p = C.proxies; p; p = p->next) {
		struct snap *s = NULL;

		view_of(p);
		for (i = 0; i < n_cache; i++)
			if (!strcmp(cache[i].view, p->view)) {
				s = cache[i].s;
				break;
			}
		if (!s) {
			if (!(s = render_for(p)))
				continue;
			if (cache) {           /* the cache keeps this reference, the proxy takes another */
				snprintf(cache[n_cache].view, sizeof(cache[n_cache].view), "%s", p->view);
				cache[n_cache++].s = s;
				s->refs++;
			}
		} else {
			s->refs++;
		}
		if (p->snap && !strcmp(p->snap->version, s->version)) {
			snap_unref(s);
			continue;
		}
		snap_unref(p->snap);
		p->snap = s;
		/* a proxy that has a snapshot waits out the warm-up; a new one gets it now */
		if (p->poll && strcmp(p->acked, s->version) && strcmp(p->rejected, s->version) && (!warming || !p->acked[0]))
			unpark(p, 1);
		if (!cache)
			break;
	}
	for (i = 0; i < n_cache; i++)
		snap_unref(cache[i].s);
	free(cache);
	C.rebuilds++;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	C.last_rebuild_ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
}

static void debounce_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	rebuild();
}

static void warm_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ctl_proxy *p;

	(void)loop;
	(void)w;
	(void)revents;
	log_info("warm-up over: %zu proxies registered; sending snapshots that changed", C.n_proxies);
	rebuild();
	for (p = C.proxies; p; p = p->next)  /* those rebuild() found unchanged but held back */
		if (p->poll && p->snap && strcmp(p->acked, p->snap->version) && strcmp(p->rejected, p->snap->version))
			unpark(p, 1);
}

/* ------------------------------------------------------------------ registry */

static struct ctl_proxy *find_lease(const char *lease, size_t n)
{
	struct ctl_proxy *p;

	if (n != 16)
		return NULL;
	for (p = C.proxies; p; p = p->next)
		if (!memcmp(p->lease, lease, 16))
			return p;
	return NULL;
}

static void proxy_remove(struct ctl_proxy *p)
{
	struct ctl_proxy **pp;

	for (pp = &C.proxies; *pp && *pp != p; pp = &(*pp)->next)
		;
	if (!*pp)
		return;
	*pp = p->next;
	C.n_proxies--;
	if (p->poll) {
		struct ctl_conn *cc = p->poll;

		p->poll = NULL;
		cc->parked = NULL;
		respond_error(cc, 404, "lease ended: register again", 0);
		conn_step(cc);
	}
	snap_unref(p->snap);
	conf_labels_free(&p->lab);
	free(p);
	schedule_rebuild();
}

static void sweep_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ctl_proxy *p, *next;
	double now = ev_now(loop);

	(void)w;
	(void)revents;
	for (p = C.proxies; p; p = next) {
		next = p->next;
		if (p->expires < now) {
			log_info("lease of %s (%s, %s) expired: removed", p->name, p->id, p->address[0] ? p->address : "no inbound");
			C.expired++;
			proxy_remove(p);
		}
	}
}

struct reg {                       /* a registration body */
	char service[254], namespace[254], name[254], address[80], admin[80], labels[600];
	char err[300];
};

static int reg_set(char *dst, size_t cap, const char *v, struct reg *r, const char *key)
{
	if (strlen(v) >= cap) {
		snprintf(r->err, sizeof(r->err), "%s: value too long", key);
		return 0;
	}
	memcpy(dst, v, strlen(v) + 1);
	return 1;
}

static int reg_handler(void *user, const char *section, const char *name, const char *value, int line)
{
	struct reg *r = user;

	(void)line;
	if (r->err[0])
		return 0;
	if (*section && strcmp(section, "workload")) {
		snprintf(r->err, sizeof(r->err), "[%.60s]: a registration has only [workload]", section);
		return 0;
	}
	if (!strcmp(name, "service"))
		return reg_set(r->service, sizeof(r->service), value, r, name);
	if (!strcmp(name, "namespace"))
		return reg_set(r->namespace, sizeof(r->namespace), value, r, name);
	if (!strcmp(name, "name"))
		return reg_set(r->name, sizeof(r->name), value, r, name);
	if (!strcmp(name, "address"))
		return reg_set(r->address, sizeof(r->address), value, r, name);
	if (!strcmp(name, "admin"))
		return reg_set(r->admin, sizeof(r->admin), value, r, name);
	if (!strcmp(name, "labels"))
		return reg_set(r->labels, sizeof(r->labels), value, r, name);
	snprintf(r->err, sizeof(r->err), "unknown key '%.60s'", name);
	return 0;
}

/* spiffe://TD/ns/NS/sa/SA -> ns, sa; -1 when not ours */
static int parse_id(const char *id, char *ns, size_t nscap, char *sa, size_t sacap)
{
	const char *td = ca_trust_domain(C.ca), *p, *s;
	size_t tl = strlen(td);

	if (strncmp(id, "spiffe://", 9) || strncmp(id + 9, td, tl) || strncmp(id + 9 + tl, "/ns/", 4))
		return -1;
	p = id + 9 + tl + 4;
	s = strstr(p, "/sa/");
	if (!s || (size_t)(s - p) >= nscap || strlen(s + 4) >= sacap || !ca_valid_name(p, (size_t)(s - p)) ||
	    !ca_valid_name(s + 4, strlen(s + 4)))
		return -1;
	memcpy(ns, p, (size_t)(s - p));
	ns[s - p] = '\0';
	strcpy(sa, s + 4);
	return 0;
}

static void handle_register(struct ctl_conn *cc, char *body, size_t len, int keep)
{
	const char *id = tls_peer_id(cc->tls);
	struct reg r;
	char ns[254], sa[254], msg[900], addr[80];
	struct conf_labels lab = { 0 };
	struct conf_addr a;
	struct ctl_proxy *p;
	const struct conf_service *svc = NULL;
	size_t i;

	memset(&r, 0, sizeof(r));
	body[len] = '\0';
	if (parse_id(id, ns, sizeof(ns), sa, sizeof(sa)) < 0) {
		snprintf(msg, sizeof(msg), "the client certificate's identity '%.300s' is not a workload of trust domain %s",
		         id, ca_trust_domain(C.ca));
		goto refuse;
	}
	if (ini_parse_string(body, reg_handler, &r) != 0 || r.err[0]) {
		respond_error(cc, 400, r.err[0] ? r.err : "the body is not INI", !keep);
		return;
	}
	/* the identity is the certificate's: the body may only repeat it */
	if (r.namespace[0] && strcmp(r.namespace, ns)) {
		snprintf(msg, sizeof(msg), "%s may not register in namespace %.100s", id, r.namespace);
		goto refuse;
	}
	if (r.service[0]) {
		for (i = 0; i < C.cf->n_services; i++)
			if (!strcmp(C.cf->services[i].name, r.service) && !strcmp(C.cf->services[i].namespace, ns))
				svc = &C.cf->services[i];
		if (!svc) {
			snprintf(msg, sizeof(msg), "no [service %.100s] in namespace %s in %s: add it there first", r.service, ns,
			         C.path);
			respond_error(cc, 404, msg, !keep);
			log_warn("registration refused: %s (from %s, %s)", msg, id, cc->ip);
			C.refused++;
			return;
		}
		if (strcmp(svc->service_account, sa)) {
			snprintf(msg, sizeof(msg), "%s may not register as %s.%s: its endpoints must be "
			         "spiffe://%s/ns/%s/sa/%s (service_account)", id, r.service, ns, ca_trust_domain(C.ca), ns,
			         svc->service_account);
			goto refuse;
		}
	}
	addr[0] = '\0';
	if (r.address[0]) {
		if (!svc) {
			respond_error(cc, 400, "address needs service: which service do peers reach there?", !keep);
			return;
		}
		if (conf_parse_addr(r.address, &a, 1) < 0) {
			respond_error(cc, 400, "address is not HOST:PORT", !keep);
			return;
		}
		/* a wildcard listener: peers reach it at the address it connected from */
		if (!strncmp(a.text, "0.0.0.0:", 8) || !strncmp(a.text, "[::]:", 5))
			snprintf(addr, sizeof(addr), strchr(cc->ip, ':') ? "[%s]:%s" : "%s:%s", cc->ip, strrchr(a.text, ':') + 1);
		else
			snprintf(addr, sizeof(addr), "%s", a.text);
	}
	if (r.labels[0] && conf_parse_labels(r.labels, &lab) < 0) {
		respond_error(cc, 400, "labels: want k=v, k=v", !keep);
		return;
	}
	/* the same workload again (a proxy that lost its lease, or restarted) */
	for (p = C.proxies; p; p = p->next)
		if (!strcmp(p->id, id) && !strcmp(p->address, addr) && !strcmp(p->admin, r.admin))
			break;
	if (!p) {
		if (!(p = calloc(1, sizeof(*p)))) {
			conf_labels_free(&lab);
			respond_error(cc, 500, "out of memory", 1);
			return;
		}
		snprintf(p->lease, sizeof(p->lease), "%016llx", (unsigned long long)rnd());
		p->registered = ev_now(C.loop);
		p->next = C.proxies;
		C.proxies = p;
		C.n_proxies++;
		log_info("registered %s: %s%s%s", id, r.service[0] ? r.service : "(client only)",
		         addr[0] ? " at " : "", addr);
	}
	snprintf(p->id, sizeof(p->id), "%s", id);
	snprintf(p->ns, sizeof(p->ns), "%s", ns);
	snprintf(p->sa, sizeof(p->sa), "%s", sa);
	snprintf(p->service, sizeof(p->service), "%s", r.service);
	snprintf(p->address, sizeof(p->address), "%s", addr);
	snprintf(p->admin, sizeof(p->admin), "%s", r.admin);
	conf_labels_free(&p->lab);
	p->lab = lab;
	{
		size_t o = 0;

		p->labels[0] = '\0';
		for (i = 0; i < lab.n && o < sizeof(p->labels); i++)
			o += (size_t)snprintf(p->labels + o, sizeof(p->labels) - o, "%s%s=%s", i ? ", " : "", lab.v[i].key,
			                      lab.v[i].value);
	}
	if (r.name[0])
		snprintf(p->name, sizeof(p->name), "%s", r.name);
	else if (r.service[0])
		snprintf(p->name, sizeof(p->name), "%s%s%s", r.service, conf_label(&lab, "version") ? "-" : "",
		         conf_label(&lab, "version") ? conf_label(&lab, "version") : "");
	else
		snprintf(p->name, sizeof(p->name), "%s", sa);
	p->seen = ev_now(C.loop);
	p->expires = p->seen + C.ttl;
	C.registrations++;
	snprintf(msg, sizeof(msg), "lease = %s\nttl = %.0fms\n", p->lease, C.ttl * 1000);
	respond(cc, 200, msg, NULL, !keep);
	schedule_rebuild();
	return;
refuse:
	C.refused++;
	log_warn("registration refused (403) for %s: %s", cc->ip, msg);
	respond_error(cc, 403, msg, !keep);
}

/* value of a query parameter, or NULL */
static const char *query(const char *target, size_t tlen, const char *name, size_t *vlen)
{
	const char *q = memchr(target, '?', tlen), *end = target + tlen;
	size_t nl = strlen(name);

	while (q && q < end) {
		const char *k = q + 1, *amp = memchr(k, '&', (size_t)(end - k)), *stop = amp ? amp : end;

		if ((size_t)(stop - k) > nl && !memcmp(k, name, nl) && k[nl] == '=') {
			*vlen = (size_t)(stop - k - (ptrdiff_t)nl - 1);
			return k + nl + 1;
		}
		q = amp;
	}
	return NULL;
}

static void handle_poll(struct ctl_conn *cc, const char *target, size_t tlen, int keep)
{
	size_t ll = 0, vl = 0, rl = 0;
	const char *lease = query(target, tlen, "lease", &ll), *ver = query(target, tlen, "version", &vl);
	const char *rej = query(target, tlen, "rejected", &rl);
	struct ctl_proxy *p = lease ? find_lease(lease, ll) : NULL;
	int warming = ev_now(C.loop) < C.warm_until;

	C.polls++;
	if (!p) {
		respond_error(cc, 404, "unknown lease: register again (POST /v1/register)", !keep);
		return;
	}
	if (strcmp(p->id, tls_peer_id(cc->tls))) {
		respond_error(cc, 403, "this lease belongs to another identity", 1);
		return;
	}
	p->seen = ev_now(C.loop);
	p->expires = p->seen + C.ttl;
	snprintf(p->acked, sizeof(p->acked), "%.*s", (int)(vl < 16 ? vl : 16), ver ? ver : "");
	if (rej && rl) {
		size_t wl = 0;
		const char *why = query(target, tlen, "why", &wl);

		if (strncmp(p->rejected, rej, rl < 16 ? rl : 16)) {
			snprintf(p->rejected, sizeof(p->rejected), "%.*s", (int)(rl < 16 ? rl : 16), rej);
			snprintf(p->reject_why, sizeof(p->reject_why), "%.*s", (int)(wl < 299 ? wl : 299), why ? why : "");
			log_warn("%s (%s) refused snapshot %s: %s", p->name, p->id, p->rejected, p->reject_why);
		}
	} else {
		p->rejected[0] = p->reject_why[0] = '\0';
	}
	if (p->snap && strcmp(p->snap->version, p->acked) && strcmp(p->snap->version, p->rejected) &&
	    (!warming || !p->acked[0])) {
		respond(cc, 200, NULL, p->snap, !keep);
		C.pushes++;
		return;
	}
	if (!keep) {
		respond(cc, 304, NULL, NULL, 1);
		return;
	}
	/* park it: answered when its snapshot changes, or with 304 after ttl/3 */
	if (p->poll)
		unpark(p, 0);
	p->poll = cc;
	cc->parked = p;
	cc->state = CC_PARKED;
	cc->in_len = 0;
	ev_timer_stop(C.loop, &cc->timer);
	ev_timer_set(&cc->timer, C.ttl / 3, 0.);
	ev_timer_start(C.loop, &cc->timer);
}

/* a complete request in cc->in: 0 when handled, -2 when more bytes are needed */
static int handle(struct ctl_conn *cc)
{
	struct http1_header hdrs[32];
	static const struct http1_limits lim = { 2048, CTL_MAX_REQUEST, 32 };
	struct http1_msg m;
	size_t body_len = 0;
	int head, keep, status;
	const char *why;

	head = http1_request_whole(cc->in, cc->in_len, CTL_MAX_REQUEST, &m, hdrs, &lim, &body_len, &keep, &status, &why);
	if (head == -2)
		return -2;
	if (head < 0) {
		respond_error(cc, status, why, 1);
		return 0;
	}
	if (m.target_len >= 12 && !memcmp(m.target, "/v1/snapshot", 12) &&
	    (m.target_len == 12 || m.target[12] == '?')) {
		if (!http1_ieq(m.method, m.method_len, "get"))
			respond_error(cc, 405, "GET /v1/snapshot?lease=L&version=V", !keep);
		else
			handle_poll(cc, m.target, m.target_len, keep);
		return 0;
	}
	if (m.target_len == 12 && !memcmp(m.target, "/v1/register", 12)) {
		if (!http1_ieq(m.method, m.method_len, "post"))
			respond_error(cc, 405, "POST /v1/register", !keep);
		else
			handle_register(cc, cc->in + head, body_len, keep);
		return 0;
	}
	if (m.target_len >= 14 && !memcmp(m.target, "/v1/deregister", 14)) {
		size_t ll = 0;
		const char *lease = query(m.target, m.target_len, "lease", &ll);
		struct ctl_proxy *p = lease ? find_lease(lease, ll) : NULL;

		if (!http1_ieq(m.method, m.method_len, "post")) {
			respond_error(cc, 405, "POST /v1/deregister?lease=L", !keep);
		} else if (!p || strcmp(p->id, tls_peer_id(cc->tls))) {
			respond_error(cc, 404, "unknown lease", !keep);
		} else {
			log_info("deregistered %s (%s)", p->name, p->address[0] ? p->address : "no inbound");
			proxy_remove(p);
			respond(cc, 200, "deregistered\n", NULL, !keep);
		}
		return 0;
	}
	respond_error(cc, 404, "unknown path (the controller serves POST /v1/register, GET /v1/snapshot, "
	              "POST /v1/deregister)", !keep);
	return 0;
}

/* ------------------------------------------------------------------ connections */

static void conn_step(struct ctl_conn *cc)
{
	int events = 0;

	for (;;) {
		if (cc->state == CC_HANDSHAKE) {
			int rc = tls_handshake(cc->tls);

			if (rc == TLS_WANT_READ || rc == TLS_WANT_WRITE) {
				events = rc == TLS_WANT_READ ? EV_READ : EV_WRITE;
				break;
			}
			if (rc != 0) {
				log_debug("%s: handshake: %s", cc->ip, tls_error(cc->tls));
				conn_close(cc);
				return;
			}
			cc->state = CC_READ;
		} else if (cc->state == CC_READ || cc->state == CC_PARKED || cc->state == CC_LINGER) {
			char drain[256], *dst = drain;   /* parked or lingering: any bytes end it, or are dropped */
			size_t room = sizeof(drain);
			ssize_t n;

			if (cc->state == CC_READ) {
				if (!cc->in && !(cc->in = inbuf_get())) {
					conn_close(cc);
					return;
				}
				if (cc->in_len >= CTL_MAX_REQUEST) {
					respond_error(cc, 413, "request too large", 1);
					continue;
				}
				dst = cc->in + cc->in_len;
				room = CTL_MAX_REQUEST - cc->in_len;
			}
			n = tls_read(cc->tls, dst, room);
			if (n == TLS_WANT_READ || n == TLS_WANT_WRITE) {
				events = n == TLS_WANT_READ ? EV_READ : EV_WRITE;
				break;
			}
			if (n <= 0) {
				conn_close(cc);
				return;
			}
			if (cc->state == CC_LINGER)
				continue;
			if (cc->state == CC_PARKED) {  /* a client sends nothing while it waits */
				if (cc->parked)
					cc->parked->poll = NULL;
				cc->parked = NULL;
				conn_close(cc);
				return;
			}
			cc->in_len += (size_t)n;
			if (handle(cc) == -2)
				continue;
			/* handled: the buffer waits in the free list for the next request */
			inbuf_put(cc->in);
			cc->in = NULL;
			cc->in_len = 0;
		} else {  /* CC_WRITE */
			size_t total = cc->head_len + (cc->body ? cc->body->len : 0);

			while (cc->off < total) {
				const char *p = cc->off < cc->head_len ? cc->head + cc->off : cc->body->text + (cc->off - cc->head_len);
				size_t l = cc->off < cc->head_len ? cc->head_len - cc->off : total - cc->off;
				ssize_t n = tls_write(cc->tls, p, l);

				if (n == TLS_WANT_READ || n == TLS_WANT_WRITE) {
					events = n == TLS_WANT_READ ? EV_READ : EV_WRITE;
					goto wait;
				}
				if (n <= 0) {
					conn_close(cc);
					return;
				}
				cc->off += (size_t)n;
			}
			free(cc->head);
			cc->head = NULL;
			snap_unref(cc->body);
			cc->body = NULL;
			if (cc->close_after) {
				shutdown(cc->fd, SHUT_WR);
				cc->state = CC_LINGER;
				ev_timer_stop(C.loop, &cc->timer);
				ev_timer_set(&cc->timer, 2.0, 0.);
				ev_timer_start(C.loop, &cc->timer);
				continue;
			}
			cc->in_len = 0;
			cc->state = CC_READ;
		}
	}
wait:
	ev_io_stop(C.loop, &cc->io);
	ev_io_set(&cc->io, cc->fd, events);
	ev_io_start(C.loop, &cc->io);
}

static void conn_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	conn_step((struct ctl_conn *)w);
}

static void conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ctl_conn *cc = (struct ctl_conn *)((char *)w - offsetof(struct ctl_conn, timer));

	(void)loop;
	(void)revents;
	if (cc->state == CC_PARKED && cc->parked) {  /* nothing changed: 304, the proxy polls again */
		unpark(cc->parked, 0);
		return;
	}
	conn_close(cc);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	int i;

	(void)w;
	(void)revents;
	for (i = 0; i < 64; i++) {
		struct ctl_conn *cc;
		char ip[46];
		int fd = net_accept(C.lfd, ip);

		if (fd < 0)
			return;
		if (C.n_conns >= CTL_MAX_CONNS || !(cc = calloc(1, sizeof(*cc)))) {
			close(fd);
			continue;
		}
		cc->fd = fd;
		memcpy(cc->ip, ip, sizeof(ip));
		if (!(cc->tls = tls_server(C.creds, fd))) {
			close(fd);
			free(cc);
			continue;
		}
		cc->next = C.conns;
		if (C.conns)
			C.conns->prev = cc;
		C.conns = cc;
		C.n_conns++;
		ev_io_init(&cc->io, conn_io_cb, fd, EV_READ);
		ev_timer_init(&cc->timer, conn_timer_cb, CTL_IDLE, CTL_IDLE);
		ev_timer_start(loop, &cc->timer);
		conn_step(cc);
	}
}

/* ------------------------------------------------------------------ identity */

static int creds_issue(void)
{
	char err[512];
	struct tls_creds *c = ca_issue_creds(C.ca, CONTROLLER_NS, CONTROLLER_SA, err, sizeof(err));
	double life;

	if (!c) {
		log_error("cannot issue the controller's certificate: %s", err);
		return -1;
	}
	tls_creds_unref(C.creds);
	C.creds = c;
	life = tls_creds_not_after(c) - (double)time(NULL);
	ev_timer_stop(C.loop, &C.creds_timer);
	ev_timer_set(&C.creds_timer, life > 10 ? life * 0.7 : 5, 0.);
	ev_timer_start(C.loop, &C.creds_timer);
	return 0;
}

static void creds_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	if (creds_issue() == 0)
		log_info("controller certificate renewed (%s)", tls_creds_id(C.creds));
}

/* ------------------------------------------------------------------ mesh.ini */

static uint64_t file_hash(const char *path, int *ok)
{
	char buf[65536];
	uint64_t h = 0xcbf29ce484222325ULL;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	*ok = fd >= 0;
	if (fd < 0)
		return 0;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		h = fnv64(buf, (size_t)n, h);
	close(fd);
	return h;
}

/* a loaded mesh.ini fit for a controller: no proxy part */
static int controller_conf_ok(const struct conf *cf, char *err, size_t errlen)
{
	if (cf->workload.service || cf->workload.service_account || cf->workload.app.set || cf->control.ca.set ||
	    cf->control.controller.set) {
		snprintf(err, errlen, "%s: holds a proxy part ([workload], [listen], [control]): the controller reads "
		         "the mesh part and [controller] only", cf->path);
		return -1;
	}
	return 0;
}

static void reload(const char *why)
{
	char err[2048];
	int ok;
	uint64_t h = file_hash(C.path, &ok);
	struct conf *cf;

	if (ok && h == C.file_hash && !C.last_error[0] && strcmp(why, "SIGHUP"))
		return;
	cf = conf_load(C.path, err, sizeof(err));
	if (cf && controller_conf_ok(cf, err, sizeof(err)) < 0) {
		conf_unref(cf);
		cf = NULL;
	}
	C.file_hash = h;
	if (!cf) {
		if (strcmp(C.last_error, err))
			log_error("%s: reload refused, the previous configuration keeps serving:\n%s", why, err);
		snprintf(C.last_error, sizeof(C.last_error), "%s", err);
		C.reloads_bad++;
		return;
	}
	{
		size_t i;

		for (i = 0; i < cf->n_warnings; i++)
			log_warn("%s", cf->warnings[i]);
	}
	conf_unref(C.cf);
	C.cf = cf;
	C.last_error[0] = '\0';
	C.reloads_ok++;
	log_info("%s: %s reloaded (%zu services)", why, C.path, cf->n_services);
	schedule_rebuild();
}

static void poll_file_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	reload("file changed");
}

static void inotify_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	char buf[4096];

	(void)loop;
	(void)w;
	(void)revents;
	while (read(C.ifd, buf, sizeof(buf)) > 0)
		;
	reload("file changed");
}

/* watches the directory of mesh.ini: editors replace files by rename */
static void watch_file(void)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(C.path, '/');

	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - C.path) : 1, slash ? C.path : ".");
	if (slash == C.path)
		snprintf(dir, sizeof(dir), "/");
	C.ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (C.ifd >= 0 && inotify_add_watch(C.ifd, dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE) >= 0) {
		ev_io_init(&C.inotify_io, inotify_cb, C.ifd, EV_READ);
		ev_io_start(C.loop, &C.inotify_io);
	} else if (C.ifd >= 0) {
		close(C.ifd);
		C.ifd = -1;
	}
	/* and a slow poll, for file systems without inotify */
	ev_timer_init(&C.poll_file, poll_file_cb, 2.0, 2.0);
	ev_timer_start(C.loop, &C.poll_file);
}

/* ------------------------------------------------------------------ admin */

/* SYNCED: it holds its latest snapshot; STALE: one is on its way; REJECTED: it refused the latest */
static const char *status_of(const struct ctl_proxy *p)
{
	if (!p->snap)
		return "NO SNAPSHOT";
	if (p->rejected[0] && !strcmp(p->rejected, p->snap->version))
		return "REJECTED";
	if (!strcmp(p->acked, p->snap->version))
		return "SYNCED";
	return ev_now(C.loop) < C.warm_until ? "WARMING" : "STALE";
}

static void proxies_table(struct strbuf *b)
{
	struct ctl_proxy *p;
	double now = ev_now(C.loop);

	strbuf_printf(b, "%-24s %-52s %-24s %-22s %-16s %-10s %s\n", "NAME", "IDENTITY", "LABELS", "ADDRESS", "SNAPSHOT",
	              "STATUS", "SEEN");
	for (p = C.proxies; p; p = p->next) {
		const char *st = status_of(p);

		strbuf_printf(b, "%-24s %-52s %-24s %-22s %-16s %-10s %.1fs ago\n", p->name, p->id,
		              p->labels[0] ? p->labels : "-", p->address[0] ? p->address : "-",
		              p->acked[0] ? p->acked : "-", st, now - p->seen);
		if (p->rejected[0] && p->snap && !strcmp(p->rejected, p->snap->version))
			strbuf_printf(b, "    rejected: %s\n", p->reject_why);
	}
}

static void json_field(struct strbuf *b, const char *key, const char *v)
{
	strbuf_printf(b, ",\"%s\":", key);
	strbuf_json_str(b, v);
}

/* /proxies.json: the registry for the dashboard and scripts */
static void proxies_json(struct strbuf *b)
{
	struct ctl_proxy *p;
	double now = ev_now(C.loop);
	size_t i;

	strbuf_puts(b, "{\"proxies\":[");
	for (p = C.proxies; p; p = p->next) {
		const char *st = status_of(p);

		strbuf_puts(b, p == C.proxies ? "{\"name\":" : ",{\"name\":");
		strbuf_json_str(b, p->name);
		json_field(b, "identity", p->id);
		json_field(b, "namespace", p->ns);
		json_field(b, "service_account", p->sa);
		json_field(b, "service", p->service);
		strbuf_puts(b, ",\"labels\":{");
		for (i = 0; i < p->lab.n; i++) {
			if (i)
				strbuf_puts(b, ",");
			strbuf_json_str(b, p->lab.v[i].key);
			strbuf_puts(b, ":");
			strbuf_json_str(b, p->lab.v[i].value);
		}
		strbuf_puts(b, "}");
		json_field(b, "address", p->address);
		json_field(b, "admin", p->admin);
		json_field(b, "snapshot", p->acked);
		json_field(b, "latest", p->snap ? p->snap->version : "");
		strbuf_printf(b, ",\"status\":\"%s\",\"seen_seconds_ago\":%.1f", st, now - p->seen);
		if (p->rejected[0])
			json_field(b, "rejected", p->reject_why);
		strbuf_puts(b, "}");
	}
	strbuf_puts(b, "],\"config_error\":");
	strbuf_json_str(b, C.last_error);
	strbuf_puts(b, "}\n");
}

static int admin_cb(void *ctx, const char *method, size_t method_len, const char *path, size_t path_len,
                    struct strbuf *body, const char **ctype)
{
	size_t plen = path_len;
	const char *q = memchr(path, '?', path_len);

	(void)ctx;
	(void)method;
	(void)method_len;
	if (q)
		plen = (size_t)(q - path);
	if (plen == 6 && !memcmp(path, "/ready", 6)) {
		strbuf_puts(body, "ready\n");
		return 200;
	}
	if (plen == 13 && !memcmp(path, "/proxies.json", 13)) {
		*ctype = "application/json";
		proxies_json(body);
		return 200;
	}
	if (plen == 8 && !memcmp(path, "/proxies", 8)) {
		proxies_table(body);
		if (C.last_error[0])
			strbuf_printf(body, "\n%s was changed but refused (the previous version serves):\n%s\n", C.path,
			              C.last_error);
		return 200;
	}
	if (plen == 7 && !memcmp(path, "/config", 7)) {
		char *s = conf_render(C.cf);

		if (!s)
			return 500;
		strbuf_puts(body, s);
		free(s);
		return 200;
	}
	if (plen == 9 && !memcmp(path, "/snapshot", 9)) {  /* ?lease=L: what that proxy is sent */
		size_t ll = 0;
		const char *lease = query(path, path_len, "lease", &ll);
		struct ctl_proxy *p = lease ? find_lease(lease, ll) : C.proxies;

		if (!p || !p->snap) {
			strbuf_puts(body, "no such proxy, or no snapshot yet\n");
			return 404;
		}
		strbuf_printf(body, "; snapshot %s for %s (%s)\n", p->snap->version, p->name, p->id);
		strbuf_puts(body, p->snap->text);
		return 200;
	}
	if (plen == 8 && !memcmp(path, "/metrics", 8)) {
		struct ctl_proxy *p;
		size_t synced = 0;

		for (p = C.proxies; p; p = p->next)
			synced += p->snap && !strcmp(p->acked, p->snap->version);
		*ctype = "text/plain; version=0.0.4";
		strbuf_printf(body,
		              "# TYPE mesh_controller_proxies gauge\nmesh_controller_proxies %zu\n"
		              "# TYPE mesh_controller_proxies_synced gauge\nmesh_controller_proxies_synced %zu\n"
		              "# TYPE mesh_controller_connections gauge\nmesh_controller_connections %zu\n"
		              "# TYPE mesh_controller_registrations_total counter\nmesh_controller_registrations_total %llu\n"
		              "# TYPE mesh_controller_registrations_refused_total counter\nmesh_controller_registrations_refused_total %llu\n"
		              "# TYPE mesh_controller_leases_expired_total counter\nmesh_controller_leases_expired_total %llu\n"
		              "# TYPE mesh_controller_polls_total counter\nmesh_controller_polls_total %llu\n"
		              "# TYPE mesh_controller_pushes_total counter\nmesh_controller_pushes_total %llu\n"
		              "# TYPE mesh_controller_rebuilds_total counter\nmesh_controller_rebuilds_total %llu\n"
		              "# TYPE mesh_controller_rebuild_ms gauge\nmesh_controller_rebuild_ms %.3f\n"
		              "# TYPE mesh_controller_reloads_total counter\n"
		              "mesh_controller_reloads_total{result=\"ok\"} %llu\nmesh_controller_reloads_total{result=\"refused\"} %llu\n"
		              "# TYPE mesh_controller_config_valid gauge\nmesh_controller_config_valid %d\n"
		              "# TYPE mesh_controller_rss_kib gauge\nmesh_controller_rss_kib %ld\n",
		              C.n_proxies, synced, C.n_conns, C.registrations, C.refused, C.expired, C.polls, C.pushes,
		              C.rebuilds, C.last_rebuild_ms, C.reloads_ok, C.reloads_bad, !C.last_error[0], buf_rss_kib());
		return 200;
	}
	if (plen == 1) {
		strbuf_puts(body, "mesh controller admin: /proxies /proxies.json /snapshot?lease=L /config /metrics /ready\n");
		return 200;
	}
	strbuf_puts(body, "not found; try /proxies /snapshot /config /metrics /ready\n");
	return 404;
}

/* ------------------------------------------------------------------ main */

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)revents;
	if (w->signum == SIGHUP) {
		reload("SIGHUP");
		return;
	}
	ev_break(loop, EVBREAK_ALL);
}

static int usage(FILE *f, int up)
{
	fprintf(f, "usage: mesh %s -c mesh.ini%s\n\n"
	           "  -c FILE   the mesh part plus a [controller] section (docs/config.md);\n"
	           "            [controller] ca = ca.ini names the CA %s\n%s\n"
	           "Proxies with [control] controller = ADDRESS register here and long-poll their\n"
	           "snapshot (docs/protocol.md). mesh.ini is reloaded when it changes and on SIGHUP;\n"
	           "an invalid file is refused and the running one kept. `mesh proxy-status` lists\n"
	           "the proxies. SIGINT/SIGTERM stop.\n",
	           up ? "up" : "controller", up ? " [--dashboard ADDR|off]" : "",
	           up ? "this process serves as well (POST /v1/sign)" : "whose key signs the controller's own certificate",
	           up ? "  --dashboard  where the dashboard (docs/dashboard.md) listens, default mesh.ini's\n"
	                "               [dashboard] listen, else 127.0.0.1:20001; off: none\n" : "");
	return f == stdout ? 0 : 2;
}

static int run(int argc, char **argv, int up)
{
	char err[4096];
	struct conf_addr listen, admin;
	const char *path = NULL, *dash = NULL;
	char dash_buf[64], *secrets[2] = { NULL, NULL };
	int i, rc = 1, ok;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-c") && i + 1 < argc)
			path = argv[++i];
		else if (up && !strcmp(argv[i], "--dashboard") && i + 1 < argc)
			dash = argv[++i];
		else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return usage(stdout, up);
		else {
			fprintf(stderr, "mesh %s: unknown argument '%s'\n", up ? "up" : "controller", argv[i]);
			return usage(stderr, up);
		}
	}
	if (!path) {
		fprintf(stderr, "mesh %s: -c mesh.ini is required\n", up ? "up" : "controller");
		return usage(stderr, up);
	}
	log_prefix = up ? "up" : "controller";
	memset(&C, 0, sizeof(C));
	C.lfd = C.ifd = -1;
	C.path = path;
	C.file_hash = file_hash(path, &ok);
	if (!(C.cf = conf_load(path, err, sizeof(err))) || controller_conf_ok(C.cf, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		conf_unref(C.cf);
		return 1;
	}
	for (i = 0; i < (int)C.cf->n_warnings; i++)
		log_warn("%s", C.cf->warnings[i]);
	if (!C.cf->controller.ca) {
		fprintf(stderr, "%s: [controller] ca = ca.ini is missing: the controller needs the CA (made by `mesh ca init "
		        "--dir DIR`) to sign its own certificate\n", path);
		goto out;
	}
	if (!(C.ca = ca_open(C.cf->controller.ca, err, sizeof(err)))) {
		fprintf(stderr, "mesh %s: %s\n", up ? "up" : "controller", err);
		goto out;
	}
	if (strcmp(ca_trust_domain(C.ca), C.cf->mesh.trust_domain))
		log_warn("%s: trust domain %s, but the CA's is %s: proxies' identities follow the CA", path,
		         C.cf->mesh.trust_domain, ca_trust_domain(C.ca));
	C.ttl = (C.cf->controller.lease_ttl ? C.cf->controller.lease_ttl : CTL_DEFAULT_TTL) / 1000.0;
	listen = C.cf->controller.listen;
	admin = C.cf->controller.admin;
	if (!listen.set)
		conf_parse_addr("127.0.0.1:15010", &listen, 0);
	if (!admin.set)
		conf_parse_addr("127.0.0.1:15014", &admin, 0);
	{
		unsigned char b[8];

		if (tls_random(b, sizeof(b)) == 0)
			memcpy(&C.rng, b, sizeof(C.rng));
		if (!C.rng)
			C.rng = (uint64_t)getpid() * 0x9e3779b97f4a7c15ULL + 1;
	}
	signal(SIGPIPE, SIG_IGN);
	C.loop = ev_default_loop(EVBACKEND_EPOLL | EVFLAG_NOENV);
	if (!C.loop) {
		fprintf(stderr, "mesh: cannot create the event loop\n");
		goto out;
	}
	if (up && ca_listen(C.ca, C.loop, err, sizeof(err)) < 0) {
		fprintf(stderr, "mesh up: ca: %s\n", err);
		goto out;
	}
	ev_timer_init(&C.creds_timer, creds_cb, 1., 0.);
	if (creds_issue() < 0)
		goto out;
	C.lfd = net_listen((struct sockaddr *)&listen.ss, listen.len);
	if (C.lfd < 0) {
		fprintf(stderr, "mesh %s: listen %s: %s (another controller running? change [controller] listen)\n",
		        up ? "up" : "controller", listen.text, strerror(errno));
		goto out;
	}
	snprintf(C.listen_text, sizeof(C.listen_text), "%s", listen.text);
	if (!(C.admin = admin_start(C.loop, (struct sockaddr *)&admin.ss, admin.len, admin_cb, NULL))) {
		fprintf(stderr, "mesh %s: admin listen %s: %s (change [controller] admin)\n", up ? "up" : "controller",
		        admin.text, strerror(errno));
		goto out;
	}
	snprintf(C.admin_text, sizeof(C.admin_text), "%s", admin.text);
	/* --dashboard, else mesh.ini's [dashboard] listen (read once, at start), else the default */
	if (up && !dash) {
		snprintf(dash_buf, sizeof(dash_buf), "%s", C.cf->dashboard.off ? "off"
		         : C.cf->dashboard.listen.set ? C.cf->dashboard.listen.text : "127.0.0.1:20001");
		dash = dash_buf;
	}
	if (up && strcmp(dash, "off")) {
		struct dashboard_opts o;

		memset(&o, 0, sizeof(o));
		o.mesh_path = path;
		o.listen = dash;
		o.controller = C.admin_text;
		if (dashboard_opts_conf(&o, &C.cf->dashboard, secrets, err, sizeof(err)) < 0) {
			fprintf(stderr, "mesh up: %s\n", err);
			goto out;
		}
		if (!(C.dash = dashboard_start(C.loop, &o, err, sizeof(err)))) {
			fprintf(stderr, "mesh up: dashboard: %s (--dashboard ADDR moves it, --dashboard off leaves it out)\n", err);
			goto out;
		}
	}
	ev_io_init(&C.lio, accept_cb, C.lfd, EV_READ);
	ev_io_start(C.loop, &C.lio);
	ev_timer_init(&C.sweep, sweep_cb, 0.25, 0.25);
	ev_timer_start(C.loop, &C.sweep);
	ev_timer_init(&C.debounce, debounce_cb, CTL_DEBOUNCE, 0.);
	C.started = ev_now(C.loop);
	/* one lease TTL, and at least as long as a proxy's longest reconnect
	 * backoff (watch.c: 5 s x jitter 1.5) */
	C.warm_until = C.started + (C.ttl > CTL_WARMUP_MIN ? C.ttl : CTL_WARMUP_MIN);
	ev_timer_init(&C.warm, warm_cb, C.warm_until - C.started, 0.);
	ev_timer_start(C.loop, &C.warm);
	watch_file();
	ev_signal_init(&C.sighup, signal_cb, SIGHUP);
	ev_signal_start(C.loop, &C.sighup);
	ev_signal_init(&C.sigint, signal_cb, SIGINT);
	ev_signal_start(C.loop, &C.sigint);
	ev_signal_init(&C.sigterm, signal_cb, SIGTERM);
	ev_signal_start(C.loop, &C.sigterm);
	log_info("mesh %s %s: registry and snapshots on %s (mTLS, %s), admin %s, %zu services from %s, lease TTL %.0fs%s%s",
	         MESH_VERSION, up ? "up" : "controller", listen.text, tls_creds_id(C.creds), admin.text,
	         C.cf->n_services, path, C.ttl, C.dash ? ", dashboard http://" : "", C.dash ? dash : "");
	ev_run(C.loop, 0);
	log_info("stopping: %zu proxies registered", C.n_proxies);
	rc = 0;
out:
	while (C.conns)
		conn_close(C.conns);
	while (C.proxies)
		proxy_remove(C.proxies);
	while (C.free_in) {
		char *b = C.free_in;

		memcpy(&C.free_in, b, sizeof(char *));
		free(b);
	}
	C.n_free_in = 0;
	if (C.dash)
		dashboard_stop(C.dash);
	free(secrets[0]);
	free(secrets[1]);
	if (C.admin)
		admin_stop(C.admin);
	if (C.lfd >= 0)
		close(C.lfd);
	if (C.ifd >= 0)
		close(C.ifd);
	tls_creds_unref(C.creds);
	ca_close(C.ca);
	conf_unref(C.cf);
	return rc;
}

int controller_main(int argc, char **argv)
{
	return run(argc, argv, 0);
}

int controller_up_main(int argc, char **argv)
{
	return run(argc, argv, 1);
}

/* ------------------------------------------------------------------ mesh proxy-status */

int proxy_status_main(int argc, char **argv)
{
	struct conf_addr a;
	const char *addr = NULL, *path = NULL;
	char req[256], buf[65536], err[2048];
	size_t len = 0;
	int i, fd, inprog = 0;
	const char *body;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--admin") && i + 1 < argc)
			addr = argv[++i];
		else if (!strcmp(argv[i], "-c") && i + 1 < argc)
			path = argv[++i];
		else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			printf("usage: mesh proxy-status [-c mesh.ini | --admin HOST:PORT]\n\n"
			       "Every proxy registered with the controller: name, identity (from its certificate),\n"
			       "labels, inbound address, the snapshot version it holds, and its status: SYNCED (it\n"
			       "holds the latest), STALE (an update is on its way), REJECTED (it refused the latest:\n"
			       "the reason follows), WARMING (the controller just started). The controller's admin\n"
			       "address comes from [controller] admin in -c mesh.ini (default 127.0.0.1:15014).\n");
			return 0;
		} else {
			fprintf(stderr, "mesh proxy-status: unknown argument '%s'\n", argv[i]);
			return 2;
		}
	}
	if (path) {
		struct conf *cf = conf_load(path, err, sizeof(err));

		if (!cf) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
		a = cf->controller.admin;
		conf_unref(cf);
		if (!a.set)
			conf_parse_addr("127.0.0.1:15014", &a, 1);
	} else if (conf_parse_addr(addr ? addr : "127.0.0.1:15014", &a, 1) < 0) {
		fprintf(stderr, "mesh proxy-status: --admin '%s' is not HOST:PORT\n", addr);
		return 2;
	}
	fd = net_connect((struct sockaddr *)&a.ss, a.len, &inprog);
	if (fd >= 0 && inprog) {
		struct timeval tv = { 5, 0 };
		fd_set w;

		FD_ZERO(&w);
		FD_SET(fd, &w);
		if (select(fd + 1, NULL, &w, NULL, &tv) != 1 || net_connect_result(fd) != 0) {
			close(fd);
			fd = -1;
		}
	}
	if (fd < 0) {
		fprintf(stderr, "mesh proxy-status: cannot reach the controller's admin listener at %s (is `mesh controller` "
		        "or `mesh up` running? its address is [controller] admin)\n", a.text);
		return 1;
	}
	{
		int fl = fcntl(fd, F_GETFL);

		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	}
	snprintf(req, sizeof(req), "GET /proxies HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", a.text);
	if (write(fd, req, strlen(req)) < 0) {
		close(fd);
		return 1;
	}
	/* the head, then the body streamed to stdout */
	for (;;) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);

		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
		if ((body = strstr(buf, "\r\n\r\n")) || len == sizeof(buf) - 1)
			break;
	}
	body = strstr(buf, "\r\n\r\n");
	if (strncmp(buf, "HTTP/1.1 200", 12) || !body) {
		fprintf(stderr, "mesh proxy-status: unexpected answer from %s\n", a.text);
		close(fd);
		return 1;
	}
	fwrite(body + 4, 1, len - (size_t)(body + 4 - buf), stdout);
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n <= 0)
			break;
		fwrite(buf, 1, (size_t)n, stdout);
	}
	close(fd);
	return 0;
}
