/*
 * authz: Istio's PeerAuthentication and AuthorizationPolicy evaluated over the
 * immutable config (conf.h). conf.c parses and validates the policies and
 * precomputes what matching needs (patterns split into exact/prefix/suffix,
 * methods uppercase, hosts lowercase, CIDRs as network bytes); this module
 * only reads them. Data enters as (conf, workload, request) and leaves as a
 * mode or a decision plus the name of the deciding policy, which points into
 * the config. Nothing is allocated: per request the source address is parsed
 * at most once into a stack buffer, and only when a rule has ip blocks.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

#include "authz.h"

/* ------------------------------------------------------------ selection */

/* no namespace, or Istio's root namespace: mesh-wide */
static int mesh_wide(const char *ns)
{
	return !ns || !strcmp(ns, "istio-system");
}

/* the workload's value of a label; app defaults to its service */
static const char *workload_label(const struct authz_workload *w, const char *key)
{
	const char *v = conf_label(w->labels, key);

	if (!v && w->service && !strcmp(key, "app"))
		return w->service;
	return v;
}

static int selects(const char *ns, const struct conf_labels *sel, const struct authz_workload *w)
{
	size_t i;

	if (!mesh_wide(ns) && (!w->namespace || strcmp(ns, w->namespace)))
		return 0;
	for (i = 0; i < sel->n; i++) {
		const char *v = workload_label(w, sel->v[i].key);

		if (!v || strcmp(v, sel->v[i].value))
			return 0;
	}
	return 1;
}

int authz_selects(const char *ns, const struct conf_labels *sel, const struct authz_workload *w)
{
	return selects(ns, sel, w);
}

/* ------------------------------------------------------------ peer authentication */

static enum conf_mtls port_mode(const struct conf_peer_auth *pa, uint16_t port)
{
	size_t i;

	for (i = 0; port && i < pa->n_ports; i++)
		if (pa->ports[i].port == port)
			return pa->ports[i].mode;
	return CONF_MTLS_UNSET;
}

enum conf_mtls authz_peer_mode(const struct conf *cf, const struct authz_workload *w, uint16_t port,
                               const char **policy)
{
	const struct conf_peer_auth *wl = NULL, *ns = NULL, *mesh = NULL, *levels[3];
	enum conf_mtls mode = CONF_MTLS_UNSET;
	size_t i;

	if (policy)
		*policy = "";
	if (!cf)
		return CONF_MTLS_PERMISSIVE;
	/* the most specific policy of each level; within one, the first in file
	 * order (Istio takes the oldest). A selector policy in the workload's own
	 * namespace beats a root-namespace one. */
	for (i = 0; i < cf->n_peer_auths; i++) {
		const struct conf_peer_auth *pa = &cf->peer_auths[i];

		if (!selects(pa->namespace, &pa->selector, w))
			continue;
		if (pa->selector.n) {
			if (!wl || (mesh_wide(wl->namespace) && !mesh_wide(pa->namespace)))
				wl = pa;
		} else if (mesh_wide(pa->namespace)) {
			if (!mesh)
				mesh = pa;
		} else if (!ns) {
			ns = pa;
		}
	}
	levels[0] = wl, levels[1] = ns, levels[2] = mesh;
	for (i = 0; i < 3; i++) {
		const struct conf_peer_auth *pa = levels[i];

		if (!pa)
			continue;
		mode = port_mode(pa, port);        /* port level first, then the policy's mode */
		if (mode == CONF_MTLS_UNSET)
			mode = pa->mode;
		if (mode != CONF_MTLS_UNSET) {
			if (policy)
				*policy = pa->id;
			return mode;
		}
	}
	if (policy)                            /* all UNSET: name the most specific that applies */
		for (i = 0; i < 3; i++)
			if (levels[i]) {
				*policy = levels[i]->id;
				break;
			}
	return CONF_MTLS_PERMISSIVE;
}

/* ------------------------------------------------------------ authorization */

/* what a request gives the rules, worked out once and only when asked */
struct reqx {
	const struct authz_req *r;
	int ns_done;
	const char *ns;                    /* the namespace in the principal, NULL = none */
	size_t ns_len;
	int ip_done;
	int family;                        /* 0 = no or unreadable source address */
	uint8_t ip[16];
	size_t host_len;                   /* host without ":port" */
};

static int pat_match(const struct conf_pat *p, const char *s, size_t n, int nocase)
{
	switch (p->kind) {
	case CONF_PAT_ANY:
		return 1;
	case CONF_PAT_EXACT:
		return n == p->len && !(nocase ? strncasecmp(s, p->s, n) : memcmp(s, p->s, n));
	case CONF_PAT_PREFIX:
		return n >= p->len && !(nocase ? strncasecmp(s, p->s, p->len) : memcmp(s, p->s, p->len));
	case CONF_PAT_SUFFIX:
		return n >= p->len && !(nocase ? strncasecmp(s + n - p->len, p->s, p->len)
		                               : memcmp(s + n - p->len, p->s, p->len));
	}
	return 0;
}

/* any pattern matches; a missing value (s NULL) matches none */
static int pats_match(const struct conf_pats *ps, const char *s, size_t n, int nocase)
{
	size_t i;

	if (!s)
		return 0;
	for (i = 0; i < ps->n; i++)
		if (pat_match(&ps->v[i], s, n, nocase))
			return 1;
	return 0;
}

/* a field: the positive list (if set) must match, the negative list (if set) must not */
static int field_ok(const struct conf_pats *yes, const struct conf_pats *no, const char *s, size_t n, int nocase)
{
	if (yes->n && !pats_match(yes, s, n, nocase))
		return 0;
	if (no->n && pats_match(no, s, n, nocase))
		return 0;
	return 1;
}

/* "cluster.local/ns/NS/sa/SA" -> NS */
static void find_ns(struct reqx *x)
{
	const char *p = x->r->principal, *s, *e;

	x->ns_done = 1;
	if (!p || !(s = strstr(p, "/ns/")))
		return;
	s += 4;
	e = strchr(s, '/');
	x->ns = s;
	x->ns_len = e ? (size_t)(e - s) : strlen(s);
}

static void find_ip(struct reqx *x)
{
	static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	const char *ip = x->r->source_ip;

	x->ip_done = 1;
	if (!ip)
		return;
	if (inet_pton(AF_INET, ip, x->ip) == 1) {
		x->family = AF_INET;
	} else if (inet_pton(AF_INET6, ip, x->ip) == 1) {
		x->family = AF_INET6;
		if (!memcmp(x->ip, v4mapped, 12)) {    /* ::ffff:10.1.2.3 is 10.1.2.3 */
			memmove(x->ip, x->ip + 12, 4);
			x->family = AF_INET;
		}
	}
}

static int cidrs_match(const struct conf_cidrs *cs, struct reqx *x)
{
	size_t i;

	if (!x->ip_done)
		find_ip(x);
	if (!x->family)
		return 0;
	for (i = 0; i < cs->n; i++) {
		const struct conf_cidr *c = &cs->v[i];
		unsigned full = c->bits / 8, rest = c->bits % 8;

		if (c->family != x->family || memcmp(c->addr, x->ip, full))
			continue;
		if (rest && (x->ip[full] & (uint8_t)(0xff << (8 - rest))) != c->addr[full])
			continue;
		return 1;
	}
	return 0;
}

static int ports_match(const struct conf_portlist *pl, uint16_t port)
{
	size_t i;

	for (i = 0; i < pl->n; i++)
		if (pl->v[i] == port)
			return 1;
	return 0;
}

/* the first value of a header (names are case-insensitive) */
static const char *header(const struct authz_req *r, const char *name, size_t *len)
{
	size_t i, n = strlen(name);

	for (i = 0; i < r->n_headers; i++)
		if (r->headers[i].name_len == n && !strncasecmp(r->headers[i].name, name, n)) {
			*len = r->headers[i].value_len;
			return r->headers[i].value;
		}
	return NULL;
}

/* "host:port" -> "host", "[::1]:80" -> "[::1]"; anything else whole */
static size_t host_name_len(const char *h, size_t n)
{
	size_t i = n;

	while (i > 0 && h[i - 1] >= '0' && h[i - 1] <= '9')
		i--;
	if (i == n || i < 2 || h[i - 1] != ':')
		return n;
	if (h[0] == '[')
		return h[i - 2] == ']' ? i - 1 : n;
	return memchr(h, ':', i - 1) ? n : i - 1;   /* a bare IPv6 address has no port */
}

static int rule_match(const struct conf_authz_rule *ru, struct reqx *x)
{
	const struct authz_req *r = x->r;
	const char *p = r->principal;
	size_t i;

	if (!field_ok(&ru->principals, &ru->not_principals, p, p ? strlen(p) : 0, 0))
		return 0;
	if (ru->namespaces.n || ru->not_namespaces.n) {
		if (!x->ns_done)
			find_ns(x);
		if (!field_ok(&ru->namespaces, &ru->not_namespaces, x->ns, x->ns_len, 0))
			return 0;
	}
	if (ru->ip_blocks.n && !cidrs_match(&ru->ip_blocks, x))
		return 0;
	if (ru->not_ip_blocks.n && cidrs_match(&ru->not_ip_blocks, x))
		return 0;
	if (!field_ok(&ru->methods, &ru->not_methods, r->method, r->method_len, 1))
		return 0;
	if (!field_ok(&ru->paths, &ru->not_paths, r->path, r->path_len, 0))
		return 0;
	if (ru->ports.n && !ports_match(&ru->ports, r->port))
		return 0;
	if (ru->not_ports.n && ports_match(&ru->not_ports, r->port))
		return 0;
	if (ru->hosts.n || ru->not_hosts.n) {
		/* a pattern with a port compares the whole Host, one without compares the name */
		for (i = 0; i < ru->hosts.n; i++) {
			const struct conf_pat *h = &ru->hosts.v[i];

			if (r->host && pat_match(h, r->host, host_name_len(h->s, h->len) < h->len ? r->host_len : x->host_len, 1))
				break;
		}
		if (ru->hosts.n && i == ru->hosts.n)
			return 0;
		for (i = 0; i < ru->not_hosts.n; i++) {
			const struct conf_pat *h = &ru->not_hosts.v[i];

			if (r->host && pat_match(h, r->host, host_name_len(h->s, h->len) < h->len ? r->host_len : x->host_len, 1))
				return 0;
		}
	}
	for (i = 0; i < ru->n_headers; i++) {
		const struct conf_authz_header *h = &ru->headers[i];
		size_t n = 0;
		const char *v = header(r, h->name, &n);

		if (pats_match(&h->values, v, n, 0) == h->negate)
			return 0;
	}
	return 1;
}

static int policy_match(const struct conf_authz *p, struct reqx *x)
{
	size_t i;

	for (i = 0; i < p->n_rules; i++)
		if (rule_match(&p->rules[i], x))
			return 1;
	return 0;
}

enum authz_decision authz_check(const struct conf *cf, const struct authz_workload *w,
                                const struct authz_req *r, const char **policy, int *audit)
{
	struct reqx x;
	const char *allowed_by = NULL;
	int any_allow = 0;
	size_t i;

	if (policy)
		*policy = "";
	if (audit)
		*audit = 0;
	if (!cf || !cf->n_authzs)
		return AUTHZ_ALLOW;
	memset(&x, 0, sizeof(x));
	x.r = r;
	x.host_len = r->host ? host_name_len(r->host, r->host_len) : 0;
	/* AUDIT only marks; DENY wins over ALLOW; ALLOW policies, once any selects
	 * the workload, must have one that matches */
	for (i = 0; i < cf->n_authzs; i++) {
		const struct conf_authz *p = &cf->authzs[i];

		if (!selects(p->namespace, &p->selector, w))
			continue;
		switch (p->action) {
		case CONF_AUTHZ_AUDIT:
			if (audit && !*audit && policy_match(p, &x))
				*audit = 1;
			break;
		case CONF_AUTHZ_DENY:
			if (policy_match(p, &x)) {
				if (policy)
					*policy = p->name;
				if (audit && !*audit)      /* finish the audit marks before leaving */
					for (i++; i < cf->n_authzs; i++)
						if (cf->authzs[i].action == CONF_AUTHZ_AUDIT &&
						    selects(cf->authzs[i].namespace, &cf->authzs[i].selector, w) &&
						    policy_match(&cf->authzs[i], &x)) {
							*audit = 1;
							break;
						}
				return AUTHZ_DENY;
			}
			break;
		case CONF_AUTHZ_ALLOW:
			any_allow = 1;
			if (!allowed_by && policy_match(p, &x))
				allowed_by = p->name;
			break;
		}
	}
	if (!any_allow)
		return AUTHZ_ALLOW;
	if (!allowed_by)
		return AUTHZ_DENY;                 /* default deny: *policy stays "" */
	if (policy)
		*policy = allowed_by;
	return AUTHZ_ALLOW;
}
