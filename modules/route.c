/*
 * route: rule lookup and matching (Istio VirtualService semantics).
 *
 * The table groups rule indexes by what their hosts name: a mesh service (any
 * of its host forms), a literal host (bookinfo.com) or a wildcard (*.example.com).
 * A request that resolved to a service uses that service's rules; otherwise the
 * literal host's, then the longest matching wildcard's. Within a group rules
 * keep file order and the first match wins, as in Istio.
 *
 * Matching allocates nothing: headers and query parameters are compared in
 * place; regexes (compiled by conf) need a NUL-terminated copy, made on the
 * stack when it fits.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "route.h"

struct route_list {
	uint32_t *idx;          /* indexes into conf->routes, file order */
	size_t n, cap;
};

struct route_host {
	char *host;             /* lowercased; for wildcards the suffix with its dot (".example.com") */
	struct route_list l;
};

struct route_table {
	struct route_list *by_svc;      /* one per conf->services entry */
	size_t n_svc;
	struct route_host *lit, *wild;
	size_t n_lit, n_wild;
};

static int list_add(struct route_list *l, uint32_t i)
{
	if (l->n && l->idx[l->n - 1] == i)
		return 0;                /* two hosts of one rule naming the same service */
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 4;
		uint32_t *p = realloc(l->idx, cap * sizeof(*p));
		if (!p)
			return -1;
		l->idx = p;
		l->cap = cap;
	}
	l->idx[l->n++] = i;
	return 0;
}

static struct route_list *host_list(struct route_host **v, size_t *n, const char *h)
{
	struct route_host *p;
	size_t i;

	for (i = 0; i < *n; i++)
		if (!strcasecmp((*v)[i].host, h))
			return &(*v)[i].l;
	p = realloc(*v, (*n + 1) * sizeof(*p));
	if (!p)
		return NULL;
	*v = p;
	memset(&p[*n], 0, sizeof(p[*n]));
	p[*n].host = strdup(h);
	if (!p[*n].host)
		return NULL;
	return &p[(*n)++].l;
}

void route_table_free(struct route_table *t)
{
	size_t i;

	if (!t)
		return;
	for (i = 0; i < t->n_svc; i++)
		free(t->by_svc[i].idx);
	for (i = 0; i < t->n_lit; i++) {
		free(t->lit[i].host);
		free(t->lit[i].l.idx);
	}
	for (i = 0; i < t->n_wild; i++) {
		free(t->wild[i].host);
		free(t->wild[i].l.idx);
	}
	free(t->by_svc);
	free(t->lit);
	free(t->wild);
	free(t);
}

struct route_table *route_table_build(const struct conf *cf)
{
	struct route_table *t = calloc(1, sizeof(*t));
	struct route_list *l;
	size_t r, h;

	if (!t)
		return NULL;
	t->n_svc = cf->n_services;
	t->by_svc = calloc(cf->n_services ? cf->n_services : 1, sizeof(*t->by_svc));
	if (!t->by_svc)
		goto err;
	for (r = 0; r < cf->n_routes; r++) {
		const struct conf_route *rt = &cf->routes[r];

		for (h = 0; h < rt->n_hosts; h++) {
			const char *host = rt->hosts[h];
			const struct conf_service *svc;
			int port_ok;

			if (host[0] == '*') {
				l = host_list(&t->wild, &t->n_wild, host + 1);
			} else if ((svc = conf_find_service(cf, host, strlen(host), &port_ok))) {
				l = &t->by_svc[svc - cf->services];
			} else {
				l = host_list(&t->lit, &t->n_lit, host);
			}
			if (!l || list_add(l, (uint32_t)r) < 0)
				goto err;
		}
	}
	return t;
err:
	route_table_free(t);
	return NULL;
}

int route_strmatch(const struct conf_strmatch *m, const char *s, size_t n)
{
	size_t vl;

	switch (m->kind) {
	case CONF_MATCH_EXACT:
		vl = strlen(m->value);
		return vl == n && !memcmp(m->value, s, n);
	case CONF_MATCH_PREFIX:
		vl = strlen(m->value);
		return vl <= n && !memcmp(m->value, s, vl);
	case CONF_MATCH_REGEX: {
		char stackbuf[512], *z = stackbuf;
		int ok;

		if (!m->re)
			return 0;
		if (n >= sizeof(stackbuf)) {
			z = malloc(n + 1);   /* a long value: rare, and bounded by the head limit */
			if (!z)
				return 0;
		}
		memcpy(z, s, n);
		z[n] = 0;
		/* a NUL inside the value cannot match a regex over the whole string */
		ok = strlen(z) == n && regexec(m->re, z, 0, NULL, 0) == 0;
		if (z != stackbuf)
			free(z);
		return ok;
	}
	case CONF_MATCH_PRESENT:
		return 1;
	case CONF_MATCH_ABSENT:
		return 0;
	}
	return 0;
}

static int header_ok(const struct conf_namematch *nm, const struct route_req *r)
{
	size_t i, nl = strlen(nm->name);

	for (i = 0; i < r->n_headers; i++) {
		const struct http1_header *h = &r->headers[i];
		if (h->name_len == nl && !strncasecmp(h->name, nm->name, nl))
			return nm->m.kind == CONF_MATCH_ABSENT ? 0 : route_strmatch(&nm->m, h->value, h->value_len);
	}
	return nm->m.kind == CONF_MATCH_ABSENT;
}

static int query_ok(const struct conf_namematch *nm, const struct route_req *r)
{
	const char *p = r->query, *end = r->query ? r->query + r->query_len : NULL;
	size_t nl = strlen(nm->name);

	while (p && p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p)), *seg_end = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(seg_end - p));
		const char *key_end = eq ? eq : seg_end;

		if ((size_t)(key_end - p) == nl && !memcmp(p, nm->name, nl)) {
			const char *v = eq ? eq + 1 : seg_end;
			if (nm->m.kind == CONF_MATCH_ABSENT)
				return 0;
			return route_strmatch(&nm->m, v, (size_t)(seg_end - v));
		}
		p = amp ? amp + 1 : end;
	}
	return nm->m.kind == CONF_MATCH_ABSENT;
}

static int block_ok(const struct conf_match *m, const struct route_req *r)
{
	size_t i;

	if (m->method && !(strlen(m->method) == r->method_len && !memcmp(m->method, r->method, r->method_len)))
		return 0;
	if (m->has_path && !route_strmatch(&m->path, r->path, r->path_len))
		return 0;
	for (i = 0; i < m->n_headers; i++)
		if (!header_ok(&m->headers[i], r))
			return 0;
	for (i = 0; i < m->n_query; i++)
		if (!query_ok(&m->query[i], r))
			return 0;
	for (i = 0; i < m->source.n; i++) {
		const char *v = r->source ? conf_label(r->source, m->source.v[i].key) : NULL;
		if (!v || strcmp(v, m->source.v[i].value))
			return 0;
	}
	return 1;
}

static const struct conf_route *first_match(const struct conf *cf, const struct route_list *l,
                                            const struct route_req *r, int *block)
{
	size_t i, b;

	for (i = 0; i < l->n; i++) {
		const struct conf_route *rt = &cf->routes[l->idx[i]];

		if (!rt->n_matches) {
			*block = -1;
			return rt;
		}
		for (b = 0; b < rt->n_matches; b++)
			if (block_ok(&rt->matches[b], r)) {
				*block = (int)b;
				return rt;
			}
	}
	return NULL;
}

/* the host without its port, lowercased, in out */
static size_t host_key(const char *host, size_t len, char *out, size_t cap)
{
	size_t i, n = len;

	if (n && host[0] != '[') {
		const char *colon = memchr(host, ':', len);
		if (colon)
			n = (size_t)(colon - host);
	}
	if (n >= cap)
		n = cap - 1;
	for (i = 0; i < n; i++)
		out[i] = (host[i] >= 'A' && host[i] <= 'Z') ? (char)(host[i] + 32) : host[i];
	out[n] = 0;
	return n;
}

const struct conf_route *route_match(const struct conf *cf, const struct route_table *t,
                                     const char *host, size_t host_len,
                                     const struct conf_service *svc, const struct route_req *r,
                                     int *block)
{
	char key[256];
	size_t i, klen, best = 0;
	const struct route_list *wl = NULL;

	*block = -1;
	if (!cf->n_routes || !t)
		return NULL;
	if (svc) {
		const struct route_list *l = &t->by_svc[svc - cf->services];
		return l->n ? first_match(cf, l, r, block) : NULL;
	}
	klen = host_key(host, host_len, key, sizeof(key));
	for (i = 0; i < t->n_lit; i++)
		if (!strcmp(t->lit[i].host, key))
			return first_match(cf, &t->lit[i].l, r, block);
	for (i = 0; i < t->n_wild; i++) {
		size_t sl = strlen(t->wild[i].host);
		if (sl < klen && sl > best && !strcmp(key + klen - sl, t->wild[i].host)) {
			best = sl;
			wl = &t->wild[i].l;
		}
	}
	return wl ? first_match(cf, wl, r, block) : NULL;
}

const struct conf_dest *route_pick(const struct conf_route *rt, uint64_t rnd)
{
	uint32_t x = (uint32_t)(rnd % 100), acc = 0;
	size_t i;

	if (!rt->n_to)
		return NULL;
	for (i = 0; i < rt->n_to; i++) {
		acc += rt->to[i].weight;
		if (x < acc)
			return &rt->to[i];
	}
	return &rt->to[rt->n_to - 1];
}

int route_rewrite_path(const struct conf_route *rt, int block, const char *path, size_t path_len,
                       const char *query, size_t query_len, char *out, size_t cap)
{
	const char *rest = "";
	size_t rest_len = 0, nl = strlen(rt->rewrite_uri), total;

	/* a prefix match replaces only the prefix; any other match the whole path */
	if (block >= 0 && rt->matches[block].has_path && rt->matches[block].path.kind == CONF_MATCH_PREFIX) {
		size_t pl = strlen(rt->matches[block].path.value);
		if (pl <= path_len) {
			rest = path + pl;
			rest_len = path_len - pl;
		}
	}
	total = nl + rest_len + (query ? 1 + query_len : 0);
	if (total + 1 > cap)
		return -1;
	memcpy(out, rt->rewrite_uri, nl);
	memcpy(out + nl, rest, rest_len);
	if (query) {
		out[nl + rest_len] = '?';
		memcpy(out + nl + rest_len + 1, query, query_len);
	}
	out[total] = 0;
	return (int)total;
}
