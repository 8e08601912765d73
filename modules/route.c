/*
 * route: rule lookup and matching (Istio VirtualService semantics).
 *
 * The table groups rules by what their hosts name: a mesh service (any of its
 * host forms), a literal host (bookinfo.com) or a wildcard (*.example.com). A
 * request that resolved to a service uses that service's rules; otherwise the
 * literal host's, then the longest matching wildcard's. Within a group rules
 * keep file order and the first match wins, as in Istio.
 *
 * Each group is compiled when the table is built: one route_block per match
 * block (file order), with the lengths of every literal, header names as ids
 * and a literal prefilter for regexes, so a request never takes strlen of the
 * config. A group of ROUTE_INDEX_MIN blocks or more also gets an index: every
 * block files under one condition it cannot match without (its exact path, one
 * exact header value, its path prefix, a header it needs, its method), or under
 * "always check" when it has none. A request looks its path, headers and method
 * up in the index and merges the candidate lists, each ascending, in block
 * order: only candidates are evaluated, and the first that matches is the one a
 * walk in file order would have found.
 *
 * Matching allocates nothing: headers and query parameters are compared in
 * place; regexes (compiled by conf) need a NUL-terminated copy, made on the
 * stack when it fits.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "route.h"

#define ROUTE_INDEX_MIN 8     /* groups with fewer blocks are walked, not indexed */
#define ROUTE_MAX_HV    32    /* request headers with a name the rules use, resolved per request */
#define ROUTE_MAX_CUR   64    /* candidate lists merged per request (more: walk instead) */
#define ROUTE_PF_RUNS   8     /* literal runs kept per regex prefilter */

/* what a block is indexed under (route_key.tag: kind | header id << 3) */
enum { RK_PATH = 1, RK_PREFIX, RK_HVAL, RK_HPRES, RK_METHOD };

/* a regex's required literals: a string the regex matches must hold runs[0..n) in order */
struct route_pf {
	char *buf;                   /* the runs, one after the other */
	uint32_t len[ROUTE_PF_RUNS];
	uint32_t n;
	uint8_t at_start;            /* runs[0] starts the string (nothing before it in the regex) */
	uint8_t at_end;              /* runs[n-1] ends it */
};

struct route_sm {                    /* a conf_strmatch with its length */
	const char *value;           /* conf's string */
	uint32_t len;
	uint8_t kind;                /* enum conf_match_kind */
	int32_t pf;                  /* regexes: index into table pf, -1 none */
	const struct conf_strmatch *src;
};

struct route_cond {                  /* a header or query condition */
	const char *name;            /* conf's string (headers: lowercase) */
	uint32_t name_len;
	uint32_t hdr;                /* headers: the name's id in the table's names */
	struct route_sm m;
};

struct route_block {                 /* one match block of one rule, compiled */
	uint32_t rule;               /* index into conf->routes */
	int32_t block;               /* index into its matches, -1: the rule has none */
	const char *method;          /* NULL = any */
	uint32_t method_len;
	uint32_t hdr, n_hdr;         /* header conditions: table conds[hdr .. hdr + n_hdr) */
	uint32_t query, n_query;     /* query conditions, likewise */
	const struct conf_labels *source;  /* match.source, NULL when none */
	uint8_t has_path;
	struct route_sm path;
};

struct route_key {                   /* an index entry: blocks cand[first .. first + n) */
	uint32_t hash;
	uint32_t tag;
	const char *s;
	uint32_t len;
	uint32_t first, n;           /* n == 0: empty slot */
};

struct route_index {
	struct route_key *keys;      /* open addressing, cap a power of two */
	uint32_t cap;
	uint32_t *cand;              /* block numbers grouped by key, ascending in a group */
	uint32_t *generic;           /* blocks without a key, ascending */
	uint32_t n_generic;
	uint32_t *prefix_lens;       /* distinct RK_PREFIX key lengths, ascending */
	uint32_t n_prefix_lens;
	unsigned kinds;              /* 1 << K_* for the kinds present */
};

struct route_list {
	uint32_t *idx;               /* indexes into conf->routes, file order */
	size_t n, cap;
	struct route_block *blocks;  /* compiled, file order */
	uint32_t n_blocks;
	struct route_index *ix;      /* NULL: walked */
};

struct route_host {
	char *host;                  /* lowercased; for wildcards the suffix with its dot (".example.com") */
	size_t len;
	uint32_t hash;
	struct route_list l;
};

struct route_name {                  /* a header name some rule tests */
	const char *name;            /* conf's string, lowercase */
	uint32_t len, hash;
};

/* open-addressing set of entry numbers (+1; 0 = empty) over an array of things with a hash */
struct route_map {
	uint32_t *slot;
	uint32_t cap;
};

struct route_table {
	struct route_list *by_svc;      /* one per conf->services entry */
	size_t n_svc;
	struct route_host *lit, *wild;
	size_t n_lit, n_wild;
	struct route_map lit_map, wild_map;
	struct route_name *names;       /* header names, id = position */
	uint32_t n_names, cap_names;
	struct route_map name_map;
	uint64_t name_lens;             /* bit L: some name has length L (63: longer) */
	struct route_cond *conds;
	uint32_t n_conds, cap_conds;
	struct route_pf *pf;
	uint32_t n_pf, cap_pf;
};

/* ------------------------------------------------------------------ hashing */

static inline uint8_t lower(uint8_t c)
{
	return (uint8_t)((unsigned)(c - 'A') < 26u ? c + 32 : c);
}

static inline uint32_t h_seed(uint32_t tag)
{
	return 2166136261u ^ (tag * 0x9e3779b1u);
}

static inline uint32_t h_step(uint32_t h, uint8_t c)
{
	return (h ^ c) * 16777619u;
}

/* FNV-1a spreads poorly in its low bits, which pick the slot */
static inline uint32_t h_final(uint32_t h)
{
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	return h;
}

static uint32_t h_str(uint32_t tag, const char *s, size_t n)
{
	uint32_t h = h_seed(tag);
	size_t i;

	for (i = 0; i < n; i++)
		h = h_step(h, (uint8_t)s[i]);
	return h_final(h);
}

static uint32_t h_lower(const char *s, size_t n)
{
	uint32_t h = h_seed(0);
	size_t i;

	for (i = 0; i < n; i++)
		h = h_step(h, lower((uint8_t)s[i]));
	return h_final(h);
}

static int map_init(struct route_map *m, size_t n)
{
	uint32_t cap = 8;

	while (cap < 2 * n)
		cap *= 2;
	m->slot = calloc(cap, sizeof(*m->slot));
	m->cap = cap;
	return m->slot ? 0 : -1;
}

static void map_put(struct route_map *m, uint32_t hash, uint32_t i)
{
	uint32_t s = hash & (m->cap - 1);

	while (m->slot[s])
		s = (s + 1) & (m->cap - 1);
	m->slot[s] = i + 1;
}

/* ------------------------------------------------------------------ regex prefilter */

static void pf_free(struct route_pf *pf)
{
	free(pf->buf);
	pf->buf = NULL;
}

/*
 * The literal runs a POSIX ERE (anchored whole-string, as conf compiles it)
 * cannot match without, in order. Conservative: anything not plainly a literal
 * ends a run, a quantifier takes back the character it repeats, and a regex
 * with '|' anywhere gets no prefilter (an alternative need not hold any run).
 * Groups and bracket expressions are skipped whole. 0: pf filled; -1: none.
 */
/* p just after a '[': the ']' that closes the bracket expression ("[]a]",
 * "[^]a]" and "[[:alpha:]]" included), or NULL if it never closes */
static const char *bracket_end(const char *p)
{
	if (*p == '^')
		p++;
	if (*p == ']')
		p++;
	while (*p && *p != ']') {
		if (*p == '[' && (p[1] == ':' || p[1] == '.' || p[1] == '=')) {
			const char *e = p + 2;
			while (*e && !(e[0] == p[1] && e[1] == ']'))
				e++;
			if (!*e)
				return NULL;
			p = e + 2;
			continue;
		}
		p++;
	}
	return *p ? p : NULL;
}

static int pf_build(const char *re, struct route_pf *pf)
{
	size_t n = strlen(re), cur = 0, runstart = 0;
	int at_start = 1, last_lit = 0;
	const char *p = re;
	char *buf;

	memset(pf, 0, sizeof(*pf));
	if (strchr(re, '|') || !(buf = malloc(n + 1)))
		return -1;
#define RUN_END() do { \
		if (cur > runstart && pf->n < ROUTE_PF_RUNS) { \
			if (!pf->n && at_start) \
				pf->at_start = 1; \
			pf->len[pf->n++] = (uint32_t)(cur - runstart); \
			runstart = cur; \
		} \
		cur = runstart; at_start = 0; last_lit = 0; \
	} while (0)
	while (*p) {
		uint8_t c = (uint8_t)*p;

		if (c == '\\' && p[1] && (uint8_t)p[1] < 0x80 && !isalnum((uint8_t)p[1])) {
			buf[cur++] = p[1];           /* \. \/ \( ...: the character itself */
			last_lit = 1;
			p += 2;
			continue;
		}
		switch (c) {
		case '^':
			if (p != re)
				RUN_END();
			p++;
			continue;
		case '$':
			if (p[1])
				RUN_END();
			p++;
			continue;
		case '*': case '+': case '?': case '{':
			if (last_lit)
				cur--;               /* the repeated character may be absent */
			RUN_END();
			if (c == '{') {
				if (!isdigit((uint8_t)p[1]))
					goto none;   /* a literal '{' to conf; not worth the doubt */
				while (*p && *p != '}')
					p++;
				if (!*p)
					goto none;
			}
			p++;
			continue;
		case '[':
			RUN_END();
			if (!(p = bracket_end(p + 1)))
				goto none;
			p++;
			continue;
		case '(': {
			int depth = 0;

			RUN_END();
			for (; *p; p++) {
				if (*p == '\\' && p[1]) {
					p++;
				} else if (*p == '[') {
					if (!(p = bracket_end(p + 1)))
						goto none;       /* p on the ']': the loop steps past it */
				} else if (*p == '(') {
					depth++;
				} else if (*p == ')' && --depth == 0) {
					break;
				}
			}
			if (!*p)
				goto none;
			p++;
			continue;
		}
		case '\\': case '.': case ')':
			RUN_END();
			p += (c == '\\' && p[1]) ? 2 : 1;
			continue;
		default:
			if (c >= 0x80) {             /* part of a multibyte character: not a byte literal */
				RUN_END();
				p++;
				continue;
			}
			buf[cur++] = (char)c;
			last_lit = 1;
			p++;
			continue;
		}
	}
	if (cur > runstart && pf->n < ROUTE_PF_RUNS) {
		pf->at_end = 1;
		RUN_END();
	}
#undef RUN_END
	if (!pf->n)
		goto none;
	pf->buf = buf;
	return 0;
none:
	free(buf);
	memset(pf, 0, sizeof(*pf));
	return -1;
}

static int pf_ok(const struct route_pf *pf, const char *s, size_t n)
{
	const char *p = s, *end = s + n, *lit = pf->buf;
	uint32_t i;

	for (i = 0; i < pf->n; i++) {
		size_t l = pf->len[i];

		if (i == 0 && pf->at_start) {
			if (n < l || memcmp(s, lit, l))
				return 0;
			p = s + l;
		} else {
			const char *q = (size_t)(end - p) >= l ? memmem(p, (size_t)(end - p), lit, l) : NULL;
			if (!q)
				return 0;
			p = q + l;
		}
		if (i == pf->n - 1 && pf->at_end && (n < l || memcmp(end - l, lit, l)))
			return 0;
		lit += l;
	}
	return 1;
}

/* ------------------------------------------------------------------ matching */

static int regex_ok(const regex_t *re, const char *s, size_t n)
{
	char stackbuf[512], *z = stackbuf;
	int ok;

	if (!re)
		return 0;
	if (n >= sizeof(stackbuf)) {
		z = malloc(n + 1);   /* a long value: rare, and bounded by the head limit */
		if (!z)
			return 0;
	}
	memcpy(z, s, n);
	z[n] = 0;
	/* a NUL inside the value cannot match a regex over the whole string */
	ok = strlen(z) == n && regexec(re, z, 0, NULL, 0) == 0;
	if (z != stackbuf)
		free(z);
	return ok;
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
	case CONF_MATCH_REGEX:
		return regex_ok(m->re, s, n);
	case CONF_MATCH_PRESENT:
		return 1;
	case CONF_MATCH_ABSENT:
		return 0;
	}
	return 0;
}

static int sm_ok(const struct route_table *t, const struct route_sm *m, const char *s, size_t n)
{
	switch (m->kind) {
	case CONF_MATCH_EXACT:
		return m->len == n && !memcmp(m->value, s, n);
	case CONF_MATCH_PREFIX:
		return m->len <= n && !memcmp(m->value, s, m->len);
	case CONF_MATCH_REGEX:
		if (m->pf >= 0 && !pf_ok(&t->pf[m->pf], s, n))
			return 0;
		return regex_ok(m->src->re, s, n);
	case CONF_MATCH_PRESENT:
		return 1;
	}
	return 0;
}

/* the per-request state of one lookup */
struct route_ctx {
	const struct route_table *t;
	const struct route_req *r;
	int resolved;                /* hv holds every request header whose name a rule tests */
	uint32_t n_hv;
	struct {
		uint32_t id;
		const struct http1_header *h;  /* its first occurrence, as a scan would find */
	} hv[ROUTE_MAX_HV];
};

/* a's n bytes against the lowercase name b */
static inline int name_eq(const char *a, const char *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (lower((uint8_t)a[i]) != (uint8_t)b[i])
			return 0;
	return 1;
}

/* looks every request header up once in the table's names; 0: done, -1: too many */
static int resolve_headers(struct route_ctx *x)
{
	const struct route_table *t = x->t;
	size_t i;
	uint32_t k;

	x->n_hv = 0;
	for (i = 0; i < x->r->n_headers; i++) {
		const struct http1_header *h = &x->r->headers[i];
		uint32_t hash, s;

		if (!(t->name_lens >> (h->name_len < 63 ? h->name_len : 63) & 1))
			continue;
		hash = h_lower(h->name, h->name_len);
		for (s = hash & (t->name_map.cap - 1); t->name_map.slot[s]; s = (s + 1) & (t->name_map.cap - 1)) {
			const struct route_name *nm = &t->names[t->name_map.slot[s] - 1];
			uint32_t id = t->name_map.slot[s] - 1;

			if (nm->hash != hash || nm->len != h->name_len || !name_eq(h->name, nm->name, nm->len))
				continue;
			for (k = 0; k < x->n_hv && x->hv[k].id != id; k++)
				;
			if (k == x->n_hv) {
				if (x->n_hv == ROUTE_MAX_HV)
					return -1;
				x->hv[x->n_hv].id = id;
				x->hv[x->n_hv++].h = h;
			}
			break;
		}
	}
	x->resolved = 1;
	return 0;
}

static const struct http1_header *header_find(const struct route_ctx *x, const struct route_cond *c)
{
	size_t i;

	if (x->resolved) {
		for (i = 0; i < x->n_hv; i++)
			if (x->hv[i].id == c->hdr)
				return x->hv[i].h;
		return NULL;
	}
	for (i = 0; i < x->r->n_headers; i++) {
		const struct http1_header *h = &x->r->headers[i];
		if (h->name_len == c->name_len && name_eq(h->name, c->name, c->name_len))
			return h;
	}
	return NULL;
}

static int query_ok(const struct route_ctx *x, const struct route_cond *c)
{
	const struct route_req *r = x->r;
	const char *p = r->query, *end = r->query ? r->query + r->query_len : NULL;

	while (p && p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p)), *seg_end = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(seg_end - p));
		const char *key_end = eq ? eq : seg_end;

		if ((size_t)(key_end - p) == c->name_len && !memcmp(p, c->name, c->name_len)) {
			const char *v = eq ? eq + 1 : seg_end;
			if (c->m.kind == CONF_MATCH_ABSENT)
				return 0;
			return sm_ok(x->t, &c->m, v, (size_t)(seg_end - v));
		}
		p = amp ? amp + 1 : end;
	}
	return c->m.kind == CONF_MATCH_ABSENT;
}

static int block_ok(const struct route_ctx *x, const struct route_block *b)
{
	const struct route_table *t = x->t;
	const struct route_req *r = x->r;
	uint32_t i;

	if (b->method && !(b->method_len == r->method_len && !memcmp(b->method, r->method, r->method_len)))
		return 0;
	if (b->has_path && !sm_ok(t, &b->path, r->path, r->path_len))
		return 0;
	for (i = 0; i < b->n_hdr; i++) {
		const struct route_cond *c = &t->conds[b->hdr + i];
		const struct http1_header *h = header_find(x, c);

		if (c->m.kind == CONF_MATCH_ABSENT ? h != NULL : (!h || !sm_ok(t, &c->m, h->value, h->value_len)))
			return 0;
	}
	for (i = 0; i < b->n_query; i++)
		if (!query_ok(x, &t->conds[b->query + i]))
			return 0;
	if (b->source) {
		for (i = 0; i < b->source->n; i++) {
			const char *v = r->source ? conf_label(r->source, b->source->v[i].key) : NULL;
			if (!v || strcmp(v, b->source->v[i].value))
				return 0;
		}
	}
	return 1;
}

static const struct conf_route *walk(const struct conf *cf, const struct route_list *l,
                                     const struct route_ctx *x, int *block)
{
	uint32_t i;

	for (i = 0; i < l->n_blocks; i++)
		if (block_ok(x, &l->blocks[i])) {
			*block = l->blocks[i].block;
			return &cf->routes[l->blocks[i].rule];
		}
	return NULL;
}

struct route_cur {
	const uint32_t *p, *end;
};

static const struct route_key *ix_find(const struct route_index *ix, uint32_t tag, const char *s, size_t n,
                                       uint32_t hash)
{
	uint32_t i;

	for (i = hash & (ix->cap - 1); ix->keys[i].n; i = (i + 1) & (ix->cap - 1)) {
		const struct route_key *k = &ix->keys[i];
		if (k->hash == hash && k->tag == tag && k->len == n && !memcmp(k->s, s, n))
			return k;
	}
	return NULL;
}

static int cur_add(struct route_cur *c, uint32_t *nc, const struct route_index *ix, const struct route_key *k)
{
	if (!k)
		return 0;
	if (*nc == ROUTE_MAX_CUR)
		return -1;
	c[*nc].p = ix->cand + k->first;
	c[(*nc)++].end = ix->cand + k->first + k->n;
	return 0;
}

static const struct conf_route *first_match(const struct conf *cf, const struct route_list *l,
                                            struct route_ctx *x, int *block)
{
	const struct route_index *ix = l->ix;
	const struct route_req *r = x->r;
	struct route_cur c[ROUTE_MAX_CUR];
	uint32_t nc = 0, i, tag;

	x->resolved = 0;
	if (!ix || ((ix->kinds & (1u << RK_HVAL | 1u << RK_HPRES)) && resolve_headers(x) < 0))
		return walk(cf, l, x, block);
	if (ix->n_generic) {
		c[nc].p = ix->generic;
		c[nc++].end = ix->generic + ix->n_generic;
	}
	if (ix->kinds & 1u << RK_PATH)
		if (cur_add(c, &nc, ix, ix_find(ix, RK_PATH, r->path, r->path_len, h_str(RK_PATH, r->path, r->path_len))) < 0)
			return walk(cf, l, x, block);
	if (ix->kinds & 1u << RK_PREFIX) {
		uint32_t h = h_seed(RK_PREFIX);
		size_t at = 0;

		/* one pass over the path hashes every prefix length in use */
		for (i = 0; i < ix->n_prefix_lens && ix->prefix_lens[i] <= r->path_len; i++) {
			for (; at < ix->prefix_lens[i]; at++)
				h = h_step(h, (uint8_t)r->path[at]);
			if (cur_add(c, &nc, ix, ix_find(ix, RK_PREFIX, r->path, at, h_final(h))) < 0)
				return walk(cf, l, x, block);
		}
	}
	if (ix->kinds & (1u << RK_HVAL | 1u << RK_HPRES)) {
		for (i = 0; i < x->n_hv; i++) {
			const struct http1_header *h = x->hv[i].h;

			tag = RK_HVAL | x->hv[i].id << 3;
			if ((ix->kinds & 1u << RK_HVAL) &&
			    cur_add(c, &nc, ix, ix_find(ix, tag, h->value, h->value_len, h_str(tag, h->value, h->value_len))) < 0)
				return walk(cf, l, x, block);
			tag = RK_HPRES | x->hv[i].id << 3;
			if ((ix->kinds & 1u << RK_HPRES) && cur_add(c, &nc, ix, ix_find(ix, tag, "", 0, h_str(tag, "", 0))) < 0)
				return walk(cf, l, x, block);
		}
	}
	if (ix->kinds & 1u << RK_METHOD)
		if (cur_add(c, &nc, ix, ix_find(ix, RK_METHOD, r->method, r->method_len,
		                                 h_str(RK_METHOD, r->method, r->method_len))) < 0)
			return walk(cf, l, x, block);
	/* merge: the lowest block number among the lists' heads, until one matches */
	for (;;) {
		uint32_t best = UINT32_MAX, bi = 0;
		const struct route_block *b;

		for (i = 0; i < nc; i++)
			if (c[i].p < c[i].end && *c[i].p < best) {
				best = *c[i].p;
				bi = i;
			}
		if (best == UINT32_MAX)
			return NULL;
		c[bi].p++;                   /* a block is filed under one key only */
		b = &l->blocks[best];
		if (block_ok(x, b)) {
			*block = b->block;
			return &cf->routes[b->rule];
		}
	}
}

/* ------------------------------------------------------------------ building */

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
	p[*n].len = strlen(h);
	p[*n].hash = h_str(0, h, p[*n].len);
	return &p[(*n)++].l;
}

static void index_free(struct route_index *ix)
{
	if (!ix)
		return;
	free(ix->keys);
	free(ix->cand);
	free(ix->generic);
	free(ix->prefix_lens);
	free(ix);
}

static void list_free(struct route_list *l)
{
	free(l->idx);
	l->idx = NULL;
	free(l->blocks);
	l->blocks = NULL;
	index_free(l->ix);
	l->ix = NULL;
}

void route_table_free(struct route_table *t)
{
	size_t i;

	if (!t)
		return;
	for (i = 0; i < t->n_svc; i++)
		list_free(&t->by_svc[i]);
	for (i = 0; i < t->n_lit; i++) {
		free(t->lit[i].host);
		list_free(&t->lit[i].l);
	}
	for (i = 0; i < t->n_wild; i++) {
		free(t->wild[i].host);
		list_free(&t->wild[i].l);
	}
	for (i = 0; i < t->n_pf; i++)
		pf_free(&t->pf[i]);
	free(t->by_svc);
	free(t->lit);
	free(t->wild);
	free(t->lit_map.slot);
	free(t->wild_map.slot);
	free(t->names);
	free(t->name_map.slot);
	free(t->conds);
	free(t->pf);
	free(t);
}

static int vec_grow(void **v, uint32_t *cap, uint32_t n, size_t size)
{
	void *p;

	if (n < *cap)
		return 0;
	p = realloc(*v, (*cap ? *cap * 2 : 16) * size);
	if (!p)
		return -1;
	*v = p;
	*cap = *cap ? *cap * 2 : 16;
	return 0;
}

/* the id of a header name, added when new */
static int name_id(struct route_table *t, const char *name, uint32_t len, uint32_t *id)
{
	uint32_t i, s, hash = h_lower(name, len);

	for (s = hash & (t->name_map.cap - 1); t->name_map.slot[s]; s = (s + 1) & (t->name_map.cap - 1)) {
		i = t->name_map.slot[s] - 1;
		if (t->names[i].hash == hash && t->names[i].len == len && !memcmp(t->names[i].name, name, len)) {
			*id = i;
			return 0;
		}
	}
	if (vec_grow((void **)&t->names, &t->cap_names, t->n_names, sizeof(*t->names)) < 0)
		return -1;
	t->names[t->n_names].name = name;
	t->names[t->n_names].len = len;
	t->names[t->n_names].hash = hash;
	t->name_lens |= 1ull << (len < 63 ? len : 63);
	*id = t->n_names++;
	if (2 * t->n_names > t->name_map.cap) {       /* keep it half empty */
		free(t->name_map.slot);
		if (map_init(&t->name_map, t->n_names) < 0)
			return -1;
		for (i = 0; i < t->n_names; i++)
			map_put(&t->name_map, t->names[i].hash, i);
	} else {
		map_put(&t->name_map, hash, *id);
	}
	return 0;
}

static int sm_compile(struct route_table *t, const struct conf_strmatch *m, struct route_sm *out)
{
	memset(out, 0, sizeof(*out));
	out->kind = (uint8_t)m->kind;
	out->src = m;
	out->pf = -1;
	out->value = m->value ? m->value : "";
	out->len = (uint32_t)strlen(out->value);
	if (m->kind == CONF_MATCH_REGEX && m->value) {
		if (vec_grow((void **)&t->pf, &t->cap_pf, t->n_pf, sizeof(*t->pf)) < 0)
			return -1;
		if (pf_build(m->value, &t->pf[t->n_pf]) == 0)
			out->pf = (int32_t)t->n_pf++;
	}
	return 0;
}

static int conds_compile(struct route_table *t, const struct conf_namematch *nm, size_t n, int headers,
                         uint32_t *first)
{
	size_t i;

	*first = t->n_conds;
	for (i = 0; i < n; i++) {
		struct route_cond *c;

		if (vec_grow((void **)&t->conds, &t->cap_conds, t->n_conds, sizeof(*t->conds)) < 0)
			return -1;
		c = &t->conds[t->n_conds];
		memset(c, 0, sizeof(*c));
		c->name = nm[i].name;
		c->name_len = (uint32_t)strlen(nm[i].name);
		if (headers && name_id(t, c->name, c->name_len, &c->hdr) < 0)
			return -1;
		if (sm_compile(t, &nm[i].m, &c->m) < 0)
			return -1;
		t->n_conds++;
	}
	return 0;
}

/* compiles a list's rules into blocks, file order */
static int list_compile(struct route_table *t, const struct conf *cf, struct route_list *l)
{
	size_t i, n = 0, b;

	for (i = 0; i < l->n; i++)
		n += cf->routes[l->idx[i]].n_matches ? cf->routes[l->idx[i]].n_matches : 1;
	l->blocks = calloc(n ? n : 1, sizeof(*l->blocks));
	if (!l->blocks)
		return -1;
	for (i = 0; i < l->n; i++) {
		const struct conf_route *rt = &cf->routes[l->idx[i]];

		if (!rt->n_matches) {
			l->blocks[l->n_blocks].rule = l->idx[i];
			l->blocks[l->n_blocks++].block = -1;
			continue;
		}
		for (b = 0; b < rt->n_matches; b++) {
			const struct conf_match *m = &rt->matches[b];
			struct route_block *rb = &l->blocks[l->n_blocks++];

			rb->rule = l->idx[i];
			rb->block = (int32_t)b;
			if (m->method) {
				rb->method = m->method;
				rb->method_len = (uint32_t)strlen(m->method);
			}
			rb->has_path = (uint8_t)(m->has_path != 0);
			if (m->has_path && sm_compile(t, &m->path, &rb->path) < 0)
				return -1;
			rb->n_hdr = (uint32_t)m->n_headers;
			if (conds_compile(t, m->headers, m->n_headers, 1, &rb->hdr) < 0)
				return -1;
			rb->n_query = (uint32_t)m->n_query;
			if (conds_compile(t, m->query, m->n_query, 0, &rb->query) < 0)
				return -1;
			rb->source = m->source.n ? &m->source : NULL;
		}
	}
	return 0;
}

/* the one condition block b is filed under; 0: none (always checked) */
static uint32_t block_key(const struct route_table *t, const struct route_block *b, const char **s, uint32_t *len)
{
	uint32_t i;

	if (b->block < 0)
		return 0;
	if (b->has_path && b->path.kind == CONF_MATCH_EXACT)
		return *s = b->path.value, *len = b->path.len, RK_PATH;
	for (i = 0; i < b->n_hdr; i++) {
		const struct route_cond *c = &t->conds[b->hdr + i];
		if (c->m.kind == CONF_MATCH_EXACT)
			return *s = c->m.value, *len = c->m.len, RK_HVAL | c->hdr << 3;
	}
	if (b->has_path && b->path.kind == CONF_MATCH_PREFIX)
		return *s = b->path.value, *len = b->path.len, RK_PREFIX;
	if (b->has_path && b->path.kind == CONF_MATCH_REGEX && b->path.pf >= 0 && t->pf[b->path.pf].at_start)
		return *s = t->pf[b->path.pf].buf, *len = t->pf[b->path.pf].len[0], RK_PREFIX;
	for (i = 0; i < b->n_hdr; i++) {
		const struct route_cond *c = &t->conds[b->hdr + i];
		if (c->m.kind != CONF_MATCH_ABSENT)
			return *s = "", *len = 0, RK_HPRES | c->hdr << 3;
	}
	if (b->method)
		return *s = b->method, *len = b->method_len, RK_METHOD;
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

static int list_index(const struct route_table *t, struct route_list *l)
{
	struct route_index *ix;
	uint32_t *slot_of = NULL, i, cap = 8, n_keyed = 0;

	if (l->n_blocks < ROUTE_INDEX_MIN)
		return 0;
	if (!(ix = calloc(1, sizeof(*ix))))
		return -1;
	l->ix = ix;
	while (cap < 2 * l->n_blocks)
		cap *= 2;
	ix->cap = cap;
	ix->keys = calloc(cap, sizeof(*ix->keys));
	ix->generic = malloc(l->n_blocks * sizeof(*ix->generic));
	ix->cand = malloc(l->n_blocks * sizeof(*ix->cand));
	ix->prefix_lens = malloc(l->n_blocks * sizeof(*ix->prefix_lens));
	slot_of = malloc(l->n_blocks * sizeof(*slot_of));
	if (!ix->keys || !ix->generic || !ix->cand || !ix->prefix_lens || !slot_of)
		goto err;
	/* pass 1: the keys and how many blocks each has */
	for (i = 0; i < l->n_blocks; i++) {
		const char *s = NULL;
		uint32_t len = 0, tag = block_key(t, &l->blocks[i], &s, &len), hash, k;

		if (!tag) {
			slot_of[i] = UINT32_MAX;
			ix->generic[ix->n_generic++] = i;
			continue;
		}
		hash = h_str(tag, s, len);
		for (k = hash & (cap - 1); ix->keys[k].n; k = (k + 1) & (cap - 1))
			if (ix->keys[k].hash == hash && ix->keys[k].tag == tag && ix->keys[k].len == len &&
			    !memcmp(ix->keys[k].s, s, len))
				break;
		if (!ix->keys[k].n) {
			ix->keys[k].hash = hash;
			ix->keys[k].tag = tag;
			ix->keys[k].s = s;
			ix->keys[k].len = len;
			if ((tag & 7) == RK_PREFIX)
				ix->prefix_lens[ix->n_prefix_lens++] = len;
		}
		ix->keys[k].n++;
		ix->kinds |= 1u << (tag & 7);
		slot_of[i] = k;
		n_keyed++;
	}
	/* pass 2: each key's blocks, ascending */
	for (i = 0, n_keyed = 0; i < cap; i++) {
		ix->keys[i].first = n_keyed;
		n_keyed += ix->keys[i].n;
		ix->keys[i].n = 0;
	}
	for (i = 0; i < l->n_blocks; i++)
		if (slot_of[i] != UINT32_MAX) {
			struct route_key *k = &ix->keys[slot_of[i]];
			ix->cand[k->first + k->n++] = i;
		}
	/* distinct prefix lengths, ascending: one hashing pass over the path probes them all */
	qsort(ix->prefix_lens, ix->n_prefix_lens, sizeof(*ix->prefix_lens), cmp_u32);
	for (i = 0, cap = 0; i < ix->n_prefix_lens; i++)
		if (!cap || ix->prefix_lens[cap - 1] != ix->prefix_lens[i])
			ix->prefix_lens[cap++] = ix->prefix_lens[i];
	ix->n_prefix_lens = cap;
	free(slot_of);
	return 0;
err:
	free(slot_of);
	return -1;
}

static int list_build(struct route_table *t, const struct conf *cf, struct route_list *l)
{
	return list_compile(t, cf, l) < 0 || list_index(t, l) < 0 ? -1 : 0;
}

struct route_table *route_table_build(const struct conf *cf)
{
	struct route_table *t = calloc(1, sizeof(*t));
	struct route_list *l;
	size_t r, h, i;

	if (!t)
		return NULL;
	t->n_svc = cf->n_services;
	t->by_svc = calloc(cf->n_services ? cf->n_services : 1, sizeof(*t->by_svc));
	if (!t->by_svc || map_init(&t->name_map, 0) < 0)
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
	for (i = 0; i < t->n_svc; i++)
		if (list_build(t, cf, &t->by_svc[i]) < 0)
			goto err;
	for (i = 0; i < t->n_lit; i++)
		if (list_build(t, cf, &t->lit[i].l) < 0)
			goto err;
	for (i = 0; i < t->n_wild; i++)
		if (list_build(t, cf, &t->wild[i].l) < 0)
			goto err;
	if (map_init(&t->lit_map, t->n_lit) < 0 || map_init(&t->wild_map, t->n_wild) < 0)
		goto err;
	for (i = 0; i < t->n_lit; i++)
		map_put(&t->lit_map, t->lit[i].hash, (uint32_t)i);
	for (i = 0; i < t->n_wild; i++)
		map_put(&t->wild_map, t->wild[i].hash, (uint32_t)i);
	return t;
err:
	route_table_free(t);
	return NULL;
}

/* ------------------------------------------------------------------ lookup */

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
		out[i] = (char)lower((uint8_t)host[i]);
	out[n] = 0;
	return n;
}

static const struct route_host *host_find(const struct route_host *v, const struct route_map *m,
                                          const char *key, size_t n)
{
	uint32_t hash = h_str(0, key, n), s;

	for (s = hash & (m->cap - 1); m->slot[s]; s = (s + 1) & (m->cap - 1)) {
		const struct route_host *h = &v[m->slot[s] - 1];
		if (h->hash == hash && h->len == n && !memcmp(h->host, key, n))
			return h;
	}
	return NULL;
}

const struct conf_route *route_match(const struct conf *cf, const struct route_table *t,
                                     const char *host, size_t host_len,
                                     const struct conf_service *svc, const struct route_req *r,
                                     int *block)
{
	char key[256];
	size_t i, klen;
	const struct route_host *hh;
	struct route_ctx x;

	*block = -1;
	if (!cf->n_routes || !t)
		return NULL;
	x.t = t;
	x.r = r;
	if (svc) {
		const struct route_list *l = &t->by_svc[svc - cf->services];
		return l->n ? first_match(cf, l, &x, block) : NULL;
	}
	klen = host_key(host, host_len, key, sizeof(key));
	if (t->n_lit && (hh = host_find(t->lit, &t->lit_map, key, klen)))
		return first_match(cf, &hh->l, &x, block);
	/* wildcards are "*." and a domain, kept as ".domain": the longest is at the first dot
	 * that leaves a non-empty label in front */
	if (t->n_wild)
		for (i = 1; i < klen; i++)
			if (key[i] == '.' && (hh = host_find(t->wild, &t->wild_map, key + i, klen - i)))
				return first_match(cf, &hh->l, &x, block);
	return NULL;
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
