/*
 * dashboard: the Kiali-like page and its JSON API (dashboard.h says what
 * enters and leaves).
 *
 * Two threads. The loop (the caller's, or ours in `mesh dashboard`) serves
 * HTTP and owns the span ring. The scraper thread does blocking I/O with
 * deadlines: every `interval` it fetches the controller's /proxies.json, then
 * each proxy's /metrics, and folds the counters into the edge store under
 * d->lock; the loop takes the same lock to answer /api/graph and
 * /api/services. Nothing the loop does waits on the network.
 *
 * Edge store: a proxy's series are reduced to an edge key (reporter, source
 * app/version, destination service/version, mTLS, response code) and summed
 * per scrape; the increase since the previous scrape of that proxy (a counter
 * that went down was reset: its new value is the increase) is added to the
 * round's increments of the edge. Each edge keeps DB_SLOTS rounds of
 * increments (requests + duration buckets), so a window rate is a sum over
 * rounds divided by the time they span. Memory is bounded by DB_MAX_SERIES.
 *
 * Which reporter draws an edge (documented in docs/dashboard.md): a meshed
 * client's own report (reporter=source, it sees faults and retries its
 * destination never sees); the destination's report only for callers that
 * report nothing themselves (plaintext callers outside the mesh: the
 * "unknown" node).
 *
 * Parsers (JSON, Prometheus text) are our own, bounded (nodes, depth, line
 * length, labels) and fuzzed (tests/fuzz/fuzz_dashboard.c); inputs from the
 * network are untrusted, and every string that goes out is escaped.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ev.h>

#include "buf.h"
#include "check.h"
#include "conf.h"
#include "dashboard.h"
#include "http1.h"
#include "ini.h"
#include "log.h"
#include "net.h"

/* ================================================================== JSON in */

enum { DJ_NULL = 0, DJ_FALSE, DJ_TRUE, DJ_NUM, DJ_STR, DJ_ARR, DJ_OBJ };

#define DJ_MAX_DEPTH 32

struct dj_node {
	int type;                    /* DJ_* */
	int next;                    /* next sibling, -1 = none */
	int child;                   /* first element / member, -1 = none */
	const char *key;             /* member name in an object (decoded, NUL-terminated), else NULL */
	const char *s;               /* DJ_STR: decoded, NUL-terminated */
	size_t slen;
	double num;                  /* DJ_NUM */
};

struct dj_doc {
	struct dj_node *n;           /* n[0] is the root */
	size_t nn, cap, max_nodes;
	char *strs;                  /* decoded strings; never longer than the input */
	size_t slen, scap;
	const char *err;             /* static reason when dj_parse failed */
	size_t err_off;              /* where */
	const char *p, *end, *start; /* parse cursor */
};

static void dj_free(struct dj_doc *d)
{
	free(d->n);
	d->n = NULL;
	free(d->strs);
	d->strs = NULL;
	d->nn = d->cap = d->slen = d->scap = 0;
}

static int dj_fail(struct dj_doc *d, const char *why)
{
	if (!d->err) {
		d->err = why;
		d->err_off = (size_t)(d->p - d->start);
	}
	return -1;
}

static void dj_ws(struct dj_doc *d)
{
	while (d->p < d->end && (*d->p == ' ' || *d->p == '\t' || *d->p == '\n' || *d->p == '\r'))
		d->p++;
}

static int dj_new(struct dj_doc *d, int type)
{
	struct dj_node *nn;

	if (d->nn >= d->max_nodes)
		return dj_fail(d, "too many JSON values");
	if (d->nn == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 64;

		if (cap > d->max_nodes)
			cap = d->max_nodes;
		nn = realloc(d->n, cap * sizeof(*nn));
		if (!nn)
			return dj_fail(d, "out of memory");
		d->n = nn;
		d->cap = cap;
	}
	memset(&d->n[d->nn], 0, sizeof(d->n[0]));
	d->n[d->nn].type = type;
	d->n[d->nn].next = d->n[d->nn].child = -1;
	return (int)d->nn++;
}

static int hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int dj_hex4(struct dj_doc *d, unsigned *out)
{
	unsigned v = 0;
	int i, h;

	if (d->end - d->p < 4)
		return dj_fail(d, "short \\u escape");
	for (i = 0; i < 4; i++) {
		h = hex_digit((unsigned char)d->p[i]);
		if (h < 0)
			return dj_fail(d, "bad \\u escape");
		v = v * 16 + (unsigned)h;
	}
	d->p += 4;
	*out = v;
	return 0;
}

static void dj_put(struct dj_doc *d, char c)
{
	if (d->slen < d->scap)
		d->strs[d->slen++] = c;
}

static void dj_utf8(struct dj_doc *d, unsigned cp)
{
	if (cp < 0x80) {
		dj_put(d, (char)cp);
	} else if (cp < 0x800) {
		dj_put(d, (char)(0xc0 | (cp >> 6)));
		dj_put(d, (char)(0x80 | (cp & 0x3f)));
	} else if (cp < 0x10000) {
		dj_put(d, (char)(0xe0 | (cp >> 12)));
		dj_put(d, (char)(0x80 | ((cp >> 6) & 0x3f)));
		dj_put(d, (char)(0x80 | (cp & 0x3f)));
	} else {
		dj_put(d, (char)(0xf0 | (cp >> 18)));
		dj_put(d, (char)(0x80 | ((cp >> 12) & 0x3f)));
		dj_put(d, (char)(0x80 | ((cp >> 6) & 0x3f)));
		dj_put(d, (char)(0x80 | (cp & 0x3f)));
	}
}

/* at the opening quote; decodes into d->strs (a decoded string plus its NUL
 * is never longer than the quoted text, so d->strs cannot overflow) */
static int dj_string(struct dj_doc *d, const char **out, size_t *outlen)
{
	size_t start;
	unsigned cp, lo;

	d->p++;
	start = d->slen;
	for (;;) {
		unsigned char c;

		if (d->p >= d->end)
			return dj_fail(d, "unterminated string");
		c = (unsigned char)*d->p++;
		if (c == '"')
			break;
		if (c < 0x20)
			return dj_fail(d, "control character in string");
		if (c != '\\') {
			dj_put(d, (char)c);
			continue;
		}
		if (d->p >= d->end)
			return dj_fail(d, "unterminated string");
		c = (unsigned char)*d->p++;
		switch (c) {
		case '"': dj_put(d, '"'); break;
		case '\\': dj_put(d, '\\'); break;
		case '/': dj_put(d, '/'); break;
		case 'b': dj_put(d, '\b'); break;
		case 'f': dj_put(d, '\f'); break;
		case 'n': dj_put(d, '\n'); break;
		case 'r': dj_put(d, '\r'); break;
		case 't': dj_put(d, '\t'); break;
		case 'u':
			if (dj_hex4(d, &cp) < 0)
				return -1;
			if (cp >= 0xd800 && cp < 0xdc00) {
				if (d->end - d->p >= 6 && d->p[0] == '\\' && d->p[1] == 'u') {
					d->p += 2;
					if (dj_hex4(d, &lo) < 0)
						return -1;
					if (lo >= 0xdc00 && lo < 0xe000)
						cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
					else
						cp = 0xfffd;
				} else {
					cp = 0xfffd;
				}
			} else if (cp >= 0xdc00 && cp < 0xe000) {
				cp = 0xfffd;
			}
			dj_utf8(d, cp);
			break;
		default:
			return dj_fail(d, "bad escape in string");
		}
	}
	dj_put(d, '\0');
	*out = d->strs + start;
	*outlen = d->slen - start - 1;
	return 0;
}

static int dj_number(struct dj_doc *d, double *out)
{
	const char *s = d->p;
	char tmp[64];
	size_t n;

	if (d->p < d->end && *d->p == '-')
		d->p++;
	if (d->p >= d->end)
		return dj_fail(d, "bad number");
	if (*d->p == '0') {
		d->p++;
	} else if (*d->p >= '1' && *d->p <= '9') {
		while (d->p < d->end && *d->p >= '0' && *d->p <= '9')
			d->p++;
	} else {
		return dj_fail(d, "bad number");
	}
	if (d->p < d->end && *d->p == '.') {
		d->p++;
		if (d->p >= d->end || *d->p < '0' || *d->p > '9')
			return dj_fail(d, "bad number");
		while (d->p < d->end && *d->p >= '0' && *d->p <= '9')
			d->p++;
	}
	if (d->p < d->end && (*d->p == 'e' || *d->p == 'E')) {
		d->p++;
		if (d->p < d->end && (*d->p == '+' || *d->p == '-'))
			d->p++;
		if (d->p >= d->end || *d->p < '0' || *d->p > '9')
			return dj_fail(d, "bad number");
		while (d->p < d->end && *d->p >= '0' && *d->p <= '9')
			d->p++;
	}
	n = (size_t)(d->p - s);
	if (n >= sizeof(tmp))
		return dj_fail(d, "number too long");
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	*out = strtod(tmp, NULL);
	return 0;
}

static int dj_value(struct dj_doc *d, int depth);

static int dj_lit(struct dj_doc *d, const char *lit, int type)
{
	size_t n = strlen(lit);

	if ((size_t)(d->end - d->p) < n || memcmp(d->p, lit, n))
		return dj_fail(d, "unexpected character");
	d->p += n;
	return dj_new(d, type);
}

static int dj_container(struct dj_doc *d, int depth, int obj)
{
	int self, prev = -1, v;
	const char *key = NULL;
	size_t klen;

	if (depth >= DJ_MAX_DEPTH)
		return dj_fail(d, "nested too deep");
	self = dj_new(d, obj ? DJ_OBJ : DJ_ARR);
	if (self < 0)
		return -1;
	d->p++;
	dj_ws(d);
	if (d->p < d->end && *d->p == (obj ? '}' : ']')) {
		d->p++;
		return self;
	}
	for (;;) {
		dj_ws(d);
		if (obj) {
			if (d->p >= d->end || *d->p != '"')
				return dj_fail(d, "expected a member name");
			if (dj_string(d, &key, &klen) < 0)
				return -1;
			dj_ws(d);
			if (d->p >= d->end || *d->p != ':')
				return dj_fail(d, "expected ':'");
			d->p++;
		}
		v = dj_value(d, depth + 1);
		if (v < 0)
			return -1;
		d->n[v].key = key;
		if (prev < 0)
			d->n[self].child = v;
		else
			d->n[prev].next = v;
		prev = v;
		dj_ws(d);
		if (d->p < d->end && *d->p == ',') {
			d->p++;
			continue;
		}
		if (d->p < d->end && *d->p == (obj ? '}' : ']')) {
			d->p++;
			return self;
		}
		return dj_fail(d, obj ? "expected ',' or '}'" : "expected ',' or ']'");
	}
}

static int dj_value(struct dj_doc *d, int depth)
{
	int i;

	dj_ws(d);
	if (d->p >= d->end)
		return dj_fail(d, "unexpected end of input");
	switch (*d->p) {
	case '{': return dj_container(d, depth, 1);
	case '[': return dj_container(d, depth, 0);
	case '"':
		i = dj_new(d, DJ_STR);
		if (i < 0 || dj_string(d, &d->n[i].s, &d->n[i].slen) < 0)
			return -1;
		return i;
	case 't': return dj_lit(d, "true", DJ_TRUE);
	case 'f': return dj_lit(d, "false", DJ_FALSE);
	case 'n': return dj_lit(d, "null", DJ_NULL);
	default:
		if (*d->p == '-' || (*d->p >= '0' && *d->p <= '9')) {
			i = dj_new(d, DJ_NUM);
			if (i < 0 || dj_number(d, &d->n[i].num) < 0)
				return -1;
			return i;
		}
		return dj_fail(d, "unexpected character");
	}
}

/* parses text[0..len) (not NUL-terminated); 0 ok (root at n[0]), -1 with d->err */
static int dj_parse(struct dj_doc *d, const char *text, size_t len, size_t max_nodes)
{
	memset(d, 0, sizeof(*d));
	d->max_nodes = max_nodes ? max_nodes : 1;
	d->p = d->start = text;
	d->end = text + len;
	d->scap = len + 1;
	d->strs = malloc(d->scap);
	if (!d->strs)
		return dj_fail(d, "out of memory");
	if (dj_value(d, 0) < 0)
		return -1;
	dj_ws(d);
	if (d->p != d->end)
		return dj_fail(d, "trailing characters after the JSON value");
	return 0;
}

/* member of object node `obj` called key, or -1 */
static int dj_get(const struct dj_doc *d, int obj, const char *key)
{
	int i;

	if (obj < 0 || d->n[obj].type != DJ_OBJ)
		return -1;
	for (i = d->n[obj].child; i >= 0; i = d->n[i].next)
		if (!strcmp(d->n[i].key, key))
			return i;
	return -1;
}

/* string member or "" */
static const char *dj_str(const struct dj_doc *d, int obj, const char *key)
{
	int i = dj_get(d, obj, key);

	return i >= 0 && d->n[i].type == DJ_STR ? d->n[i].s : "";
}

/* ================================================================== JSON out */

/* a finite number (JSON has no NaN / Inf) */
static void jw_num(struct strbuf *b, double v)
{
	if (!isfinite(v))
		v = 0;
	if (v == floor(v) && fabs(v) < 1e15)
		strbuf_printf(b, "%.0f", v);
	else
		strbuf_printf(b, "%.4g", v);
}

/* ================================================================== Prometheus text in */

#define PM_MAX_LINE 8192
#define PM_MAX_LABELS 32

struct pm_label {
	const char *name;            /* slice of the line */
	size_t nlen;
	const char *val;             /* decoded, NUL-terminated, in the sample's scratch */
	size_t vlen;
};

struct pm_sample {
	const char *name;            /* metric name, slice of the line */
	size_t nlen;
	struct pm_label l[PM_MAX_LABELS];
	size_t nl;
	double value;
	char scratch[PM_MAX_LINE];   /* decoded label values */
};

static int pm_name_char(int c, int first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
	       (!first && c >= '0' && c <= '9');
}

/*
 * One line of the text exposition format (no trailing newline). Returns 1 with
 * s filled, 0 for a comment or blank line, -1 for a malformed line.
 */
static int pm_parse_line(const char *line, size_t len, struct pm_sample *s)
{
	const char *p = line, *e = line + len;
	size_t sc = 0;
	char num[64];
	char *endp;
	size_t n;

	while (p < e && (*p == ' ' || *p == '\t'))
		p++;
	if (p == e || *p == '#')
		return 0;
	if (len >= PM_MAX_LINE)
		return -1;
	s->name = p;
	if (!pm_name_char((unsigned char)*p, 1))
		return -1;
	while (p < e && pm_name_char((unsigned char)*p, 0))
		p++;
	s->nlen = (size_t)(p - s->name);
	s->nl = 0;
	if (p < e && *p == '{') {
		p++;
		for (;;) {
			struct pm_label *l;

			while (p < e && (*p == ' ' || *p == ','))
				p++;
			if (p < e && *p == '}') {
				p++;
				break;
			}
			if (s->nl == PM_MAX_LABELS)
				return -1;
			l = &s->l[s->nl];
			l->name = p;
			if (p >= e || !pm_name_char((unsigned char)*p, 1))
				return -1;
			while (p < e && pm_name_char((unsigned char)*p, 0))
				p++;
			l->nlen = (size_t)(p - l->name);
			if (p + 1 >= e || p[0] != '=' || p[1] != '"')
				return -1;
			p += 2;
			l->val = s->scratch + sc;
			for (;;) {
				if (p >= e)
					return -1;
				if (*p == '"') {
					p++;
					break;
				}
				if (*p == '\\') {
					if (p + 1 >= e)
						return -1;
					p++;
					s->scratch[sc++] = *p == 'n' ? '\n' : *p;
					p++;
					continue;
				}
				s->scratch[sc++] = *p++;
			}
			l->vlen = (size_t)(s->scratch + sc - l->val);
			s->scratch[sc++] = '\0';
			s->nl++;
		}
	}
	while (p < e && (*p == ' ' || *p == '\t'))
		p++;
	n = 0;
	while (p < e && *p != ' ' && *p != '\t' && n < sizeof(num) - 1)
		num[n++] = *p++;
	num[n] = '\0';
	if (!n)
		return -1;
	errno = 0;
	s->value = strtod(num, &endp);
	if (*endp)
		return -1;
	return 1;   /* an optional timestamp after the value is ignored */
}

static const char *pm_label(const struct pm_sample *s, const char *name)
{
	size_t i, n = strlen(name);

	for (i = 0; i < s->nl; i++)
		if (s->l[i].nlen == n && !memcmp(s->l[i].name, name, n))
			return s->l[i].val;
	return NULL;
}

/* incremental line splitter over a body that arrives in pieces */
struct pm_stream {
	char line[PM_MAX_LINE];
	size_t len;
	int skipping;                /* the current line is too long: drop it through its newline */
	size_t lines, bad, long_lines;
	void (*on_sample)(void *ctx, const struct pm_sample *s);
	void *ctx;
	struct pm_sample sample;
};

static void pm_line_done(struct pm_stream *st)
{
	int r = pm_parse_line(st->line, st->len, &st->sample);

	st->lines++;
	if (r < 0)
		st->bad++;
	else if (r > 0 && st->on_sample)
		st->on_sample(st->ctx, &st->sample);
	st->len = 0;
}

static void pm_feed(struct pm_stream *st, const char *p, size_t n)
{
	while (n) {
		const char *nl = memchr(p, '\n', n);
		size_t take = nl ? (size_t)(nl - p) : n;

		if (!st->skipping) {
			if (st->len + take >= sizeof(st->line)) {
				st->skipping = 1;
				st->long_lines++;
				st->len = 0;
			} else {
				memcpy(st->line + st->len, p, take);
				st->len += take;
			}
		}
		if (!nl)
			return;
		if (!st->skipping)
			pm_line_done(st);
		st->skipping = 0;
		st->len = 0;
		p = nl + 1;
		n -= take + 1;
	}
}

static void pm_end(struct pm_stream *st)
{
	if (st->len && !st->skipping)
		pm_line_done(st);
	st->len = 0;
	st->skipping = 0;
}

/* ================================================================== small string map */

struct kmap_ent {
	uint64_t h;
	char *k;                     /* owned; NULL = empty slot */
	size_t kl;
	void *v;
};

struct kmap {
	struct kmap_ent *t;
	size_t cap, n;               /* cap is a power of two; n < cap / 2 */
};

static uint64_t khash(const char *k, size_t kl)
{
	uint64_t h = 1469598103934665603ULL;
	size_t i;

	for (i = 0; i < kl; i++)
		h = (h ^ (unsigned char)k[i]) * 1099511628211ULL;
	return h;
}

static void *kmap_get(const struct kmap *m, const char *k, size_t kl)
{
	uint64_t h = khash(k, kl);
	size_t i;

	if (!m->cap)
		return NULL;
	for (i = h & (m->cap - 1); m->t[i].k; i = (i + 1) & (m->cap - 1))
		if (m->t[i].h == h && m->t[i].kl == kl && !memcmp(m->t[i].k, k, kl))
			return m->t[i].v;
	return NULL;
}

/* adds a copy of k (not present) -> v; 0 / -1 */
static int kmap_put(struct kmap *m, const char *k, size_t kl, void *v)
{
	size_t i;
	char *kc;

	if ((m->n + 1) * 2 > m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 16, j;
		struct kmap_ent *t = calloc(cap, sizeof(*t));

		if (!t)
			return -1;
		for (j = 0; j < m->cap; j++) {
			if (!m->t[j].k)
				continue;
			for (i = m->t[j].h & (cap - 1); t[i].k; i = (i + 1) & (cap - 1))
				;
			t[i] = m->t[j];
		}
		free(m->t);
		m->t = t;
		m->cap = cap;
	}
	kc = malloc(kl + 1);
	if (!kc)
		return -1;
	memcpy(kc, k, kl);
	kc[kl] = '\0';
	{
		uint64_t h = khash(k, kl);

		for (i = h & (m->cap - 1); m->t[i].k; i = (i + 1) & (m->cap - 1))
			;
		m->t[i].h = h;
	}
	m->t[i].k = kc;
	m->t[i].kl = kl;
	m->t[i].v = v;
	m->n++;
	return 0;
}

static void kmap_free(struct kmap *m, void (*freev)(void *))
{
	size_t i;

	for (i = 0; i < m->cap; i++)
		if (m->t[i].k) {
			free(m->t[i].k);
			if (freev)
				freev(m->t[i].v);
		}
	free(m->t);
	m->t = NULL;
	m->cap = m->n = 0;
}

/* ================================================================== the edge store */

#define DB_SLOTS 64                 /* rounds kept: the longest window is DB_SLOTS - 2 intervals */
#define DB_NB 20                    /* Istio's 19 duration bounds + +Inf */
#define DB_NV (1 + DB_NB)           /* [0] requests, [1 + i] duration bucket i (cumulative, as exposed) */
#define DB_MAX_SERIES 2048          /* edge x code series, all proxies together */
#define DB_MAX_RAW 1024             /* reduced series per proxy */
#define DB_MAX_TARGETS 1024         /* proxies scraped */
#define DB_NF 9                     /* key fields */

static const double db_bounds[DB_NB - 1] = { 0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000,
                                              10000, 30000, 60000, 300000, 600000, 1800000, 3600000 };

enum { F_REPORTER = 0, F_SRC, F_SRC_VER, F_DST, F_DST_VER, F_MTLS, F_CODE, F_SRC_ID, F_DST_ID };

struct db_series {
	const char *f[DB_NF];        /* the key's fields (point into the map's copy of the key) */
	int dest_reported;           /* reporter="destination" */
	int mtls;                    /* connection_security_policy="mutual_tls" */
	int code;                    /* response_code */
	uint64_t pend[DB_NV];        /* increments of the round in progress */
	uint32_t ring[DB_SLOTS][DB_NV]; /* increments per committed round, slot = round % DB_SLOTS */
};

struct db_target {
	char *admin;                 /* the proxy's admin address, the target's identity */
	char *name;                  /* registry name ("reviews-v2") */
	char *service, *version;     /* its workload ("" when none) */
	struct kmap raw;             /* reduced key -> uint64_t[DB_NV]: the values of the last scrape */
	struct kmap tcp;             /* reduced key -> double[2]: TCP connections opened, closed (last scrape) */
	unsigned ok, failed;         /* scrapes */
	int in_registry;             /* seen in the last registry fetch */
	double last_ms;              /* duration of the last scrape */
	size_t last_series;          /* reduced series in the last scrape */
	char err[160];               /* last failure, "" after a success */
};

struct span;

struct dashboard {
	struct ev_loop *loop;
	int own_loop;
	struct dashboard_opts o;
	char *mesh_path, *controller, *token, *basic, *listen_text, *prometheus; /* owned copies */
	/* HTTP server (loop) */
	ev_io lio;                   /* the listener */
	struct dconn *conns;
	size_t n_conns;
	/* scraper thread */
	pthread_t thread;
	int thread_started;
	pthread_mutex_t lock;        /* everything below up to the span ring */
	pthread_cond_t wake;
	int stopping;
	struct kmap series;          /* key -> struct db_series */
	size_t series_dropped;
	double t[DB_SLOTS];          /* monotonic time each round was committed */
	uint32_t rounds;             /* rounds committed */
	double last_round_wall;      /* wall clock of the last commit */
	double started_wall;         /* wall clock at dashboard_start */
	struct db_target **targets;  /* scraper writes, loop reads, both under lock */
	size_t n_targets;
	char *registry;              /* last /proxies.json body (NUL-terminated) or NULL */
	char registry_err[400];      /* last registry failure, "" when the last fetch worked */
	uint64_t samples_bad;        /* malformed metric lines seen */
	/* span ring (loop only) */
	struct span **spans;         /* circular, oldest at span_head */
	size_t span_head, n_spans, span_bytes;
	uint64_t spans_received, spans_dropped, spans_rejected_posts;
};

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint32_t sat32(uint64_t v)
{
	return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

/* "unknown" and empty are the same to the graph */
static const char *known(const char *v)
{
	return v && *v && strcmp(v, "unknown") ? v : "";
}

/* appends a key field; '\0' separates fields, so a field cannot contain one */
static size_t key_add(char *k, size_t kl, size_t cap, const char *v)
{
	size_t n = strlen(v);

	if (kl + n + 1 > cap)
		n = cap > kl + 1 ? cap - kl - 1 : 0;
	memcpy(k + kl, v, n);
	k[kl + n] = '\0';
	return kl + n + 1;
}

static void series_fields(struct db_series *s, const char *key)
{
	int i;

	for (i = 0; i < DB_NF; i++) {
		s->f[i] = key;
		key += strlen(key) + 1;
	}
	s->dest_reported = !strcmp(s->f[F_REPORTER], "destination");
	s->mtls = !strcmp(s->f[F_MTLS], "1");
	s->code = atoi(s->f[F_CODE]);
}

/* the series for key (created when new); NULL when the store is full. Under lock. */
static struct db_series *series_get(struct dashboard *d, const char *key, size_t kl)
{
	struct db_series *s = kmap_get(&d->series, key, kl);
	size_t i;

	if (s)
		return s;
	if (d->series.n >= DB_MAX_SERIES) {
		d->series_dropped++;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s || kmap_put(&d->series, key, kl, s) < 0) {
		free(s);
		return NULL;
	}
	/* the fields point into the map's own copy of the key */
	for (i = 0; i < d->series.cap; i++)
		if (d->series.t[i].v == s) {
			series_fields(s, d->series.t[i].k);
			break;
		}
	return s;
}

/* closes the round: pending increments become the round's slot. Under lock. */
static void round_commit(struct dashboard *d)
{
	uint32_t slot = d->rounds % DB_SLOTS;
	size_t i;
	int k;

	for (i = 0; i < d->series.cap; i++) {
		struct db_series *s = d->series.t[i].v;

		if (!d->series.t[i].k)
			continue;
		for (k = 0; k < DB_NV; k++) {
			s->ring[slot][k] = sat32(s->pend[k]);
			s->pend[k] = 0;
		}
	}
	d->t[slot] = mono_now();
	d->last_round_wall = wall_now();
	d->rounds++;
}

/*
 * The committed rounds a window covers: [*from, *to] (inclusive) and the
 * seconds they span. Returns 0 when fewer than two rounds exist yet.
 */
static int window_rounds(const struct dashboard *d, double window, uint32_t *from, uint32_t *to, double *secs)
{
	uint32_t last, first, r;

	if (d->rounds < 2)
		return 0;
	last = d->rounds - 1;
	first = last >= DB_SLOTS - 2 ? last - (DB_SLOTS - 2) : 1;   /* round first-1 must still be kept */
	if (first < 1)
		first = 1;
	for (r = first; r < last; r++)
		if (d->t[(r - 1) % DB_SLOTS] >= d->t[last % DB_SLOTS] - window - 1e-6)
			break;
	*from = r;
	*to = last;
	*secs = d->t[last % DB_SLOTS] - d->t[(r - 1) % DB_SLOTS];
	return *secs > 0;
}

/* sum of a series' increments over rounds [from, to] */
static void series_sum(const struct db_series *s, uint32_t from, uint32_t to, uint64_t out[DB_NV])
{
	uint32_t r;
	int k;

	for (r = from; r <= to; r++)
		for (k = 0; k < DB_NV; k++)
			out[k] += s->ring[r % DB_SLOTS][k];
}

/* quantile q of a histogram given as cumulative bucket counts (Prometheus' histogram_quantile) */
static double hist_quantile(const uint64_t *b, double q)
{
	double total = (double)b[DB_NB - 1], rank, lo, prev;
	int i;

	if (total <= 0)
		return 0;
	rank = q * total;
	for (i = 0; i < DB_NB - 1; i++)
		if ((double)b[i] >= rank)
			break;
	if (i == DB_NB - 1)
		return db_bounds[DB_NB - 2];   /* in +Inf: the highest finite bound */
	lo = i ? db_bounds[i - 1] : 0;
	prev = i ? (double)b[i - 1] : 0;
	if ((double)b[i] - prev <= 0)
		return db_bounds[i];
	return lo + (db_bounds[i] - lo) * (rank - prev) / ((double)b[i] - prev);
}

/* ================================================================== scraping (the thread) */

#define HTTP_TIMEOUT 2.0
#define REGISTRY_MAX (4u << 20)
#define METRICS_MAX (64u << 20)

typedef int (*body_fn)(void *ctx, const char *p, size_t n);

static int wait_fd(int fd, short ev, double deadline)
{
	struct pollfd pfd = { fd, ev, 0 };
	double left = deadline - mono_now();
	int r;

	if (left <= 0)
		return 0;
	do
		r = poll(&pfd, 1, (int)(left * 1000) + 1);
	while (r < 0 && errno == EINTR);
	return r > 0;
}

/*
 * GET http://addr/path with blocking I/O and one deadline (with "Authorization:
 * Bearer token" unless token is NULL); the body goes to fn in pieces (fn
 * returns -1 to stop). 0 on a complete 200, -1 with err.
 */
static int http_get_v(const char *addr, const char *path, const char *token, double timeout, body_fn fn, void *ctx,
                      char *err, size_t errlen, int http10)
{
	struct conf_addr a;
	double deadline = mono_now() + timeout;
	char buf[16384], req[1024];
	size_t have = 0, off, body_seen = 0;
	long long clen = -1;
	int fd, r, status = 0, head_done = 0, n;
	ssize_t k;

	memset(&a, 0, sizeof(a));
	if (conf_parse_addr(addr, &a, 1) < 0) {
		snprintf(err, errlen, "bad address '%s'", addr);
		return -1;
	}
	fd = socket(a.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	r = connect(fd, (struct sockaddr *)&a.ss, a.len);
	if (r < 0 && errno != EINPROGRESS) {
		snprintf(err, errlen, "connect %s: %s", addr, strerror(errno));
		goto fail;
	}
	if (r < 0) {
		int soerr = 0;
		socklen_t sl = sizeof(soerr);

		if (!wait_fd(fd, POLLOUT, deadline)) {
			snprintf(err, errlen, "connect %s: timed out", addr);
			goto fail;
		}
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
		if (soerr) {
			snprintf(err, errlen, "connect %s: %s", addr, strerror(soerr));
			goto fail;
		}
	}
	n = snprintf(req, sizeof(req), "GET %s HTTP/1.%d\r\nHost: %s\r\nUser-Agent: mesh-dashboard\r\n%s%s%s"
	             "Connection: close\r\n\r\n", path, http10 ? 0 : 1, addr, token ? "Authorization: Bearer " : "",
	             token ? token : "", token ? "\r\n" : "");
	if (n < 0 || (size_t)n >= sizeof(req)) {
		snprintf(err, errlen, "%s: request too long", addr);
		goto fail;
	}
	for (off = 0; off < (size_t)n;) {
		k = send(fd, req + off, (size_t)n - off, MSG_NOSIGNAL);
		if (k < 0 && (errno == EAGAIN || errno == EINTR)) {
			if (!wait_fd(fd, POLLOUT, deadline))
				break;
			continue;
		}
		if (k <= 0)
			break;
		off += (size_t)k;
	}
	if (off < (size_t)n) {
		snprintf(err, errlen, "%s: could not send the request", addr);
		goto fail;
	}
	for (;;) {
		if (have == sizeof(buf)) {
			snprintf(err, errlen, "%s: response head too large", addr);
			goto fail;
		}
		k = read(fd, buf + have, sizeof(buf) - have);
		if (k < 0 && (errno == EAGAIN || errno == EINTR)) {
			if (!wait_fd(fd, POLLIN, deadline)) {
				snprintf(err, errlen, "%s%s: timed out after %.1fs", addr, path, timeout);
				goto fail;
			}
			continue;
		}
		if (k < 0) {
			snprintf(err, errlen, "%s: %s", addr, strerror(errno));
			goto fail;
		}
		if (k == 0) {
			if (head_done && (clen < 0 || body_seen == (size_t)clen))
				break;
			snprintf(err, errlen, "%s%s: connection closed early", addr, path);
			goto fail;
		}
		have += (size_t)k;
		if (!head_done) {
			char *e = memmem(buf, have, "\r\n\r\n", 4);
			char *cl;
			size_t hl;

			if (!e)
				continue;
			*e = '\0';
			hl = (size_t)(e - buf) + 4;
			if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1 || status != 200) {
				snprintf(err, errlen, "%s%s: status %d", addr, path, status);
				goto fail;
			}
			for (cl = buf; (cl = strchr(cl, '\n')); cl++)
				if (!strncasecmp(cl + 1, "content-length:", 15))
					clen = atoll(cl + 16);
			if (strcasestr(buf, "\ntransfer-encoding:")) {
				snprintf(err, errlen, "%s%s: chunked responses are not supported", addr, path);
				goto fail;
			}
			head_done = 1;
			memmove(buf, buf + hl, have - hl);
			have -= hl;
		}
		if (have) {
			if (clen >= 0 && body_seen + have > (size_t)clen)
				have = (size_t)clen - body_seen;
			if (fn(ctx, buf, have) < 0) {
				snprintf(err, errlen, "%s%s: response too large", addr, path);
				goto fail;
			}
			body_seen += have;
			have = 0;
		}
		if (clen >= 0 && body_seen == (size_t)clen)
			break;
	}
	close(fd);
	return 0;
fail:
	close(fd);
	return -1;
}

static int http_get(const char *addr, const char *path, const char *token, double timeout, body_fn fn, void *ctx,
                    char *err, size_t errlen)
{
	return http_get_v(addr, path, token, timeout, fn, ctx, err, errlen, 0);
}

static int collect_body(void *ctx, const char *p, size_t n)
{
	struct strbuf *b = ctx;

	if (b->len + n > REGISTRY_MAX || b->oom)
		return -1;
	strbuf_append(b, p, n);
	return b->oom ? -1 : 0;
}

/* one proxy's scrape in progress: reduced key -> double[DB_NV] */
struct scrape {
	struct dashboard *d;
	struct db_target *t;
	struct kmap acc;
	struct kmap tcp;             /* reduced key -> double[2]: istio_tcp_connections_opened / closed_total */
	size_t bytes, dropped;
	double started;              /* its process_start_time_seconds, 0 = not given */
	struct pm_stream st;
};

static int le_index(const char *le)
{
	double v;
	int i;

	if (!strcmp(le, "+Inf"))
		return DB_NB - 1;
	v = strtod(le, NULL);
	for (i = 0; i < DB_NB - 1; i++)
		if (fabs(v - db_bounds[i]) <= db_bounds[i] * 1e-9)
			return i;
	return -1;   /* not one of Istio's bounds: ignored */
}

/* the reduced key of a sample of proxy t; returns its length */
static size_t reduce_key(const struct db_target *t, const struct pm_sample *s, char *k, size_t cap)
{
	const char *rep = known(pm_label(s, "reporter"));
	const char *sec = pm_label(s, "connection_security_policy");
	const char *code = known(pm_label(s, "response_code"));
	const char *src, *src_ver, *dst;
	size_t kl = 0;

	if (!strcmp(rep, "source")) {
		/* the proxy itself is the caller: name it as the registry does */
		src = *t->service ? t->service : t->name;
		src_ver = t->version;
	} else {
		rep = "destination";
		src = known(pm_label(s, "source_app"));
		if (!*src)
			src = known(pm_label(s, "source_workload"));
		src_ver = known(pm_label(s, "source_version"));
	}
	dst = known(pm_label(s, "destination_service_name"));
	if (!*dst)
		dst = known(pm_label(s, "destination_service"));
	kl = key_add(k, kl, cap, rep);
	kl = key_add(k, kl, cap, *src ? src : "unknown");
	kl = key_add(k, kl, cap, src_ver);
	kl = key_add(k, kl, cap, *dst ? dst : "unknown");
	kl = key_add(k, kl, cap, known(pm_label(s, "destination_version")));
	kl = key_add(k, kl, cap, sec && !strcmp(sec, "mutual_tls") ? "1" : "0");
	kl = key_add(k, kl, cap, *code ? code : "0");
	kl = key_add(k, kl, cap, known(pm_label(s, "source_principal")));
	kl = key_add(k, kl, cap, known(pm_label(s, "destination_principal")));
	return kl;
}

static void on_sample(void *ctx, const struct pm_sample *s)
{
	static const char req[] = "istio_requests_total", bucket[] = "istio_request_duration_milliseconds_bucket";
	static const char opened[] = "istio_tcp_connections_opened_total", closed[] = "istio_tcp_connections_closed_total";
	static const char started[] = "process_start_time_seconds";
	struct scrape *sc = ctx;
	struct kmap *m = &sc->acc;
	char key[1024];
	size_t kl;
	double *v;
	int idx;

	if (s->nlen == sizeof(started) - 1 && !memcmp(s->name, started, s->nlen)) {
		sc->started = s->value;
		return;
	}
	if (s->nlen == sizeof(req) - 1 && !memcmp(s->name, req, s->nlen)) {
		idx = 0;
	} else if ((s->nlen == sizeof(opened) - 1 && !memcmp(s->name, opened, s->nlen)) ||
	           (s->nlen == sizeof(closed) - 1 && !memcmp(s->name, closed, s->nlen))) {
		idx = s->name[sizeof("istio_tcp_connections_") - 1] == 'c';
		m = &sc->tcp;
	} else if (s->nlen == sizeof(bucket) - 1 && !memcmp(s->name, bucket, s->nlen)) {
		const char *le = pm_label(s, "le");

		idx = le ? le_index(le) : -1;
		if (idx < 0)
			return;
		idx++;
	} else {
		return;
	}
	if (!(s->value >= 0) || !isfinite(s->value))
		return;
	kl = reduce_key(sc->t, s, key, sizeof(key));
	v = kmap_get(m, key, kl);
	if (!v) {
		if (m->n >= DB_MAX_RAW) {
			sc->dropped++;
			return;
		}
		v = calloc(DB_NV, sizeof(*v));
		if (!v || kmap_put(m, key, kl, v) < 0) {
			free(v);
			return;
		}
	}
	v[idx] += s->value;
}

static int metrics_body(void *ctx, const char *p, size_t n)
{
	struct scrape *sc = ctx;

	sc->bytes += n;
	if (sc->bytes > METRICS_MAX)
		return -1;
	pm_feed(&sc->st, p, n);
	return 0;
}

static uint64_t to_u64(double v)
{
	return v >= 1.8e19 ? UINT64_MAX : (uint64_t)v;
}

/* folds a finished scrape into the store: increments since the proxy's last scrape. Under lock. */
static void scrape_fold(struct dashboard *d, struct scrape *sc)
{
	struct db_target *t = sc->t;
	/* a proxy's first scrape is its baseline (what came before the dashboard is not in
	 * its windows), unless the proxy started after the dashboard: then all of it counts */
	int baseline = !t->ok && !(sc->started > 0 && sc->started >= d->started_wall - 1);
	size_t i;
	int k;

	for (i = 0; i < sc->acc.cap; i++) {
		const char *key = sc->acc.t[i].k;
		size_t kl = sc->acc.t[i].kl;
		double *v = sc->acc.t[i].v;
		uint64_t *last, now[DB_NV], inc[DB_NV];
		struct db_series *s;
		int fresh = 0;

		if (!key)
			continue;
		for (k = 0; k < DB_NV; k++)
			now[k] = to_u64(v[k]);
		last = kmap_get(&t->raw, key, kl);
		if (!last) {
			if (t->raw.n >= DB_MAX_RAW)
				continue;
			last = calloc(DB_NV, sizeof(*last));
			if (!last || kmap_put(&t->raw, key, kl, last) < 0) {
				free(last);
				continue;
			}
			fresh = 1;
		}
		for (k = 0; k < DB_NV; k++) {
			/* a proxy's first scrape is the baseline; later a new series is all new */
			if (fresh && baseline)
				inc[k] = 0;
			else
				inc[k] = now[k] >= last[k] ? now[k] - last[k] : now[k];
			last[k] = now[k];
		}
		s = series_get(d, key, kl);
		if (s)
			for (k = 0; k < DB_NV; k++)
				s->pend[k] += inc[k];
	}
	/* TCP connections: only the current values matter (open = opened - closed) */
	kmap_free(&t->tcp, free);
	t->tcp = sc->tcp;
	memset(&sc->tcp, 0, sizeof(sc->tcp));
}

/*
 * A proxy's series from a Prometheus (--prometheus / [dashboard] prometheus) instead of
 * its own /metrics: an instant query for the same four metric names where the label
 * instance is the proxy's admin address as the registry has it (Prometheus' default
 * for a scrape target). HTTP/1.0, so the answer comes whole rather than chunked. The
 * samples go through on_sample as if scraped, so everything downstream is the same.
 */
static int prom_scrape(struct dashboard *d, struct scrape *sc, char *err, size_t errlen)
{
	static const char hex[] = "0123456789ABCDEF";
	struct strbuf b = { 0 }, path = { 0 };
	struct pm_sample *sm = NULL;
	struct dj_doc doc;
	char q[320];
	const char *c;
	int res, r, m, v, f, rc = -1;

	snprintf(q, sizeof(q), "{__name__=~\"istio_(requests_total|request_duration_milliseconds_bucket"
	         "|tcp_connections_opened_total|tcp_connections_closed_total)\",instance=\"%s\"}", sc->t->admin);
	strbuf_puts(&path, "/api/v1/query?query=");
	for (c = q; *c; c++) {
		if (isalnum((unsigned char)*c) || strchr("-_.~", *c)) {
			strbuf_append(&path, c, 1);
		} else {
			char e[3] = { '%', hex[(unsigned char)*c >> 4], hex[*c & 15] };

			strbuf_append(&path, e, 3);
		}
	}
	if (path.oom || http_get_v(d->o.prometheus, path.p, NULL, HTTP_TIMEOUT, collect_body, &b, err, errlen, 1) < 0)
		goto out;
	memset(&doc, 0, sizeof(doc));
	if (!b.p || dj_parse(&doc, b.p, b.len, 2000000) < 0) {
		snprintf(err, errlen, "prometheus %s: not JSON (%s at byte %zu)", d->o.prometheus,
		         doc.err ? doc.err : "empty", doc.err_off);
		dj_free(&doc);
		goto out;
	}
	if (strcmp(dj_str(&doc, 0, "status"), "success") || (res = dj_get(&doc, dj_get(&doc, 0, "data"), "result")) < 0 ||
	    doc.n[res].type != DJ_ARR) {
		snprintf(err, errlen, "prometheus %s: the query failed: %.100s", d->o.prometheus, dj_str(&doc, 0, "error"));
		dj_free(&doc);
		goto out;
	}
	if (!(sm = calloc(1, sizeof(*sm)))) {
		dj_free(&doc);
		goto out;
	}
	for (r = doc.n[res].child; r >= 0; r = doc.n[r].next) {
		m = dj_get(&doc, r, "metric");
		v = dj_get(&doc, r, "value");
		if (m < 0 || doc.n[m].type != DJ_OBJ || v < 0 || doc.n[v].type != DJ_ARR || doc.n[v].child < 0 ||
		    (v = doc.n[doc.n[v].child].next) < 0 || doc.n[v].type != DJ_STR)
			continue;
		sm->name = dj_str(&doc, m, "__name__");
		sm->nlen = strlen(sm->name);
		sm->nl = 0;
		for (f = doc.n[m].child; f >= 0 && sm->nl < PM_MAX_LABELS; f = doc.n[f].next) {
			if (doc.n[f].type != DJ_STR)
				continue;
			sm->l[sm->nl].name = doc.n[f].key;
			sm->l[sm->nl].nlen = strlen(doc.n[f].key);
			sm->l[sm->nl].val = doc.n[f].s;
			sm->l[sm->nl].vlen = doc.n[f].slen;
			sm->nl++;
		}
		sm->value = strtod(doc.n[v].s, NULL);   /* "NaN", "+Inf": on_sample drops them */
		on_sample(sc, sm);
	}
	dj_free(&doc);
	rc = 0;
out:
	free(sm);
	strbuf_free(&b);
	strbuf_free(&path);
	return rc;
}

static void scrape_target(struct dashboard *d, struct db_target *t)
{
	struct scrape *sc = calloc(1, sizeof(*sc));
	double t0 = mono_now();
	char err[160] = "";
	int r;

	if (!sc)
		return;
	sc->d = d;
	sc->t = t;
	sc->st.on_sample = on_sample;
	sc->st.ctx = sc;
	if (d->o.prometheus) {
		r = prom_scrape(d, sc, err, sizeof(err));
	} else {
		r = http_get(t->admin, "/metrics", NULL, HTTP_TIMEOUT, metrics_body, sc, err, sizeof(err));
		pm_end(&sc->st);
	}
	pthread_mutex_lock(&d->lock);
	if (r == 0) {
		scrape_fold(d, sc);
		t->ok++;
		t->err[0] = '\0';
	} else {
		t->failed++;
		snprintf(t->err, sizeof(t->err), "%s", err);
	}
	t->last_ms = (mono_now() - t0) * 1000;
	t->last_series = sc->acc.n;
	d->samples_bad += sc->st.bad;
	pthread_mutex_unlock(&d->lock);
	kmap_free(&sc->acc, free);
	kmap_free(&sc->tcp, free);
	free(sc);
}

static void target_free(struct db_target *t)
{
	if (!t)
		return;
	kmap_free(&t->raw, free);
	kmap_free(&t->tcp, free);
	free(t->admin);
	free(t->name);
	free(t->service);
	free(t->version);
	free(t);
}

/* fetches the registry and brings the target list in line with it */
static void registry_refresh(struct dashboard *d)
{
	struct strbuf b = { 0 };
	struct dj_doc doc;
	char err[200] = "";
	int arr, p;
	size_t i;

	if (http_get(d->controller, "/proxies.json", NULL, HTTP_TIMEOUT, collect_body, &b, err, sizeof(err)) < 0 || !b.p) {
		pthread_mutex_lock(&d->lock);
		snprintf(d->registry_err, sizeof(d->registry_err), "controller %s: %s", d->controller,
		         err[0] ? err : "empty answer");
		pthread_mutex_unlock(&d->lock);
		strbuf_free(&b);
		return;
	}
	if (dj_parse(&doc, b.p, b.len, 200000) < 0 || (arr = dj_get(&doc, 0, "proxies")) < 0 ||
	    doc.n[arr].type != DJ_ARR) {
		pthread_mutex_lock(&d->lock);
		snprintf(d->registry_err, sizeof(d->registry_err), "controller %s: bad /proxies.json (%s at byte %zu)",
		         d->controller, doc.err ? doc.err : "no proxies array", doc.err_off);
		pthread_mutex_unlock(&d->lock);
		dj_free(&doc);
		strbuf_free(&b);
		return;
	}
	pthread_mutex_lock(&d->lock);
	for (i = 0; i < d->n_targets; i++)
		d->targets[i]->in_registry = 0;
	for (p = doc.n[arr].child; p >= 0; p = doc.n[p].next) {
		const char *admin = dj_str(&doc, p, "admin");
		struct db_target *t = NULL;
		struct db_target **nt;
		int lab = dj_get(&doc, p, "labels");

		if (!*admin || strcmp(admin, "-") == 0)
			continue;
		for (i = 0; i < d->n_targets; i++)
			if (!strcmp(d->targets[i]->admin, admin))
				t = d->targets[i];
		if (!t) {
			if (d->n_targets >= DB_MAX_TARGETS)
				continue;
			nt = realloc(d->targets, (d->n_targets + 1) * sizeof(*nt));
			if (!nt)
				continue;
			d->targets = nt;
			t = calloc(1, sizeof(*t));
			if (!t || !(t->admin = strdup(admin))) {
				free(t);
				continue;
			}
			d->targets[d->n_targets++] = t;
		}
		t->in_registry = 1;
		free(t->name);
		free(t->service);
		free(t->version);
		t->name = strdup(dj_str(&doc, p, "name"));
		t->service = strdup(known(dj_str(&doc, p, "service")));
		t->version = strdup(known(dj_str(&doc, lab, "version")));
		if (!t->name || !t->service || !t->version) {
			free(t->name);
			free(t->service);
			free(t->version);
			t->name = t->service = t->version = NULL;
			t->in_registry = 0;
		}
	}
	/* proxies that left the registry: forget them (their edges stay in the rings) */
	for (i = 0; i < d->n_targets;) {
		if (!d->targets[i]->in_registry) {
			target_free(d->targets[i]);
			d->targets[i] = d->targets[--d->n_targets];
		} else {
			i++;
		}
	}
	free(d->registry);
	d->registry = b.p;   /* NUL-terminated by strbuf */
	b.p = NULL;
	d->registry_err[0] = '\0';
	pthread_mutex_unlock(&d->lock);
	dj_free(&doc);
	strbuf_free(&b);
}

static void scrape_round(struct dashboard *d)
{
	struct db_target *t;
	size_t i, n;

	registry_refresh(d);
	/* the list only changes in registry_refresh, on this thread: no lock needed to walk it here */
	n = d->n_targets;
	for (i = 0; i < n; i++) {
		pthread_mutex_lock(&d->lock);
		t = d->stopping ? NULL : d->targets[i];
		pthread_mutex_unlock(&d->lock);
		if (!t)
			return;
		scrape_target(d, t);
	}
	pthread_mutex_lock(&d->lock);
	round_commit(d);
	pthread_mutex_unlock(&d->lock);
}

static void *scraper_main(void *arg)
{
	struct dashboard *d = arg;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);   /* signals are the loop's */
	for (;;) {
		double next = mono_now() + d->o.interval;
		struct timespec ts;

		scrape_round(d);
		pthread_mutex_lock(&d->lock);
		while (!d->stopping && mono_now() < next) {
			double left = next - mono_now();

			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += (time_t)left;
			ts.tv_nsec += (long)((left - floor(left)) * 1e9);
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&d->wake, &d->lock, &ts);
		}
		if (d->stopping) {
			pthread_mutex_unlock(&d->lock);
			return NULL;
		}
		pthread_mutex_unlock(&d->lock);
	}
}

/* ================================================================== spans (the loop) */

#define SPAN_MAX_POST (1u << 20)     /* one POST body */
#define SPAN_MAX_PER_POST 2000
#define SPAN_MAX_ONE 16384           /* one span, stored */
#define TRACE_MAX_SPANS 2000         /* spans of one trace returned */

struct span {
	size_t bytes;                /* what it costs in the ring */
	double ts, dur;              /* microseconds (Zipkin's units) */
	int error;                   /* tag error, or http.status_code >= 500 */
	int status;                  /* http.status_code or 0 */
	const char *trace_id, *id, *parent, *name, *kind, *service, *remote;
	const char *tags;            /* the tags as a JSON object, already escaped */
	char mem[];                  /* the strings above */
};

/* hex id of 1..max chars, lowercased and left-padded with zeros to pad16 or 32; 0 / -1 */
static int span_id(const char *s, size_t n, size_t max, char *out)
{
	size_t want = n <= 16 ? 16 : 32, i;

	if (!n || n > max)
		return -1;
	for (i = 0; i < n; i++)
		if (hex_digit((unsigned char)s[i]) < 0)
			return -1;
	memset(out, '0', want - n);
	for (i = 0; i < n; i++)
		out[want - n + i] = (char)((s[i] >= 'A' && s[i] <= 'F') ? s[i] + 32 : s[i]);
	out[want] = '\0';
	return 0;
}

static char *span_put(char **at, const char *s)
{
	char *r = *at;
	size_t n = strlen(s) + 1;

	memcpy(r, s, n);
	*at += n;
	return r;
}

/* one element of the POSTed array -> a span (malloc'd), or NULL with why */
static struct span *span_from_json(const struct dj_doc *doc, int o, char *why, size_t whylen)
{
	char tid[33], id[17], pid[17] = "";
	const char *name = "", *kind = "", *svc = "", *remote = "";
	double ts = 0, dur = 0;
	struct strbuf tags = { 0 };
	int f, i, error = 0, status = 0, n_tags = 0;
	struct span *sp;
	size_t need;
	char *at;

	if (doc->n[o].type != DJ_OBJ) {
		snprintf(why, whylen, "not an object");
		return NULL;
	}
	f = dj_get(doc, o, "traceId");
	if (f < 0 || doc->n[f].type != DJ_STR || span_id(doc->n[f].s, doc->n[f].slen, 32, tid) < 0) {
		snprintf(why, whylen, "traceId must be 1 to 32 hex characters");
		return NULL;
	}
	f = dj_get(doc, o, "id");
	if (f < 0 || doc->n[f].type != DJ_STR || span_id(doc->n[f].s, doc->n[f].slen, 16, id) < 0) {
		snprintf(why, whylen, "id must be 1 to 16 hex characters");
		return NULL;
	}
	f = dj_get(doc, o, "parentId");
	if (f >= 0 && doc->n[f].type != DJ_NULL &&
	    (doc->n[f].type != DJ_STR || span_id(doc->n[f].s, doc->n[f].slen, 16, pid) < 0)) {
		snprintf(why, whylen, "parentId must be 1 to 16 hex characters");
		return NULL;
	}
	f = dj_get(doc, o, "timestamp");
	if (f >= 0 && (doc->n[f].type != DJ_NUM || doc->n[f].num < 0)) {
		snprintf(why, whylen, "timestamp must be a number of microseconds");
		return NULL;
	}
	if (f >= 0)
		ts = doc->n[f].num;
	f = dj_get(doc, o, "duration");
	if (f >= 0 && (doc->n[f].type != DJ_NUM || doc->n[f].num < 0)) {
		snprintf(why, whylen, "duration must be a number of microseconds");
		return NULL;
	}
	if (f >= 0)
		dur = doc->n[f].num;
	f = dj_get(doc, o, "name");
	if (f >= 0 && doc->n[f].type == DJ_STR)
		name = doc->n[f].s;
	f = dj_get(doc, o, "kind");
	if (f >= 0 && doc->n[f].type == DJ_STR) {
		kind = doc->n[f].s;
		if (strcmp(kind, "CLIENT") && strcmp(kind, "SERVER") && strcmp(kind, "PRODUCER") &&
		    strcmp(kind, "CONSUMER")) {
			snprintf(why, whylen, "kind must be CLIENT, SERVER, PRODUCER or CONSUMER");
			return NULL;
		}
	}
	svc = dj_str(doc, dj_get(doc, o, "localEndpoint"), "serviceName");
	remote = dj_str(doc, dj_get(doc, o, "remoteEndpoint"), "serviceName");
	f = dj_get(doc, o, "tags");
	strbuf_puts(&tags, "{");
	if (f >= 0 && doc->n[f].type != DJ_OBJ && doc->n[f].type != DJ_NULL) {
		snprintf(why, whylen, "tags must be an object");
		strbuf_free(&tags);
		return NULL;
	}
	if (f >= 0 && doc->n[f].type == DJ_OBJ) {
		for (i = doc->n[f].child; i >= 0; i = doc->n[i].next) {
			if (doc->n[i].type != DJ_STR) {
				snprintf(why, whylen, "tag values must be strings (tag '%.40s')", doc->n[i].key);
				strbuf_free(&tags);
				return NULL;
			}
			if (n_tags++)
				strbuf_puts(&tags, ",");
			strbuf_json_str(&tags, doc->n[i].key);
			strbuf_puts(&tags, ":");
			strbuf_json_strn(&tags, doc->n[i].s, doc->n[i].slen);
			if (!strcmp(doc->n[i].key, "error") && strcmp(doc->n[i].s, "false"))
				error = 1;
			if (!strcmp(doc->n[i].key, "http.status_code")) {
				status = atoi(doc->n[i].s);
				if (status >= 500)
					error = 1;
			}
		}
	}
	strbuf_puts(&tags, "}");
	if (tags.oom) {
		snprintf(why, whylen, "out of memory");
		strbuf_free(&tags);
		return NULL;
	}
	need = sizeof(*sp) + strlen(tid) + strlen(id) + strlen(pid) + strlen(name) + strlen(kind) + strlen(svc) +
	       strlen(remote) + tags.len + 8;
	if (need > SPAN_MAX_ONE) {
		snprintf(why, whylen, "span larger than %u bytes", SPAN_MAX_ONE);
		strbuf_free(&tags);
		return NULL;
	}
	sp = malloc(need);
	if (!sp) {
		snprintf(why, whylen, "out of memory");
		strbuf_free(&tags);
		return NULL;
	}
	sp->bytes = need;
	sp->ts = ts;
	sp->dur = dur;
	sp->error = error;
	sp->status = status;
	at = sp->mem;
	sp->trace_id = span_put(&at, tid);
	sp->id = span_put(&at, id);
	sp->parent = span_put(&at, pid);
	sp->name = span_put(&at, name);
	sp->kind = span_put(&at, kind);
	sp->service = span_put(&at, svc);
	sp->remote = span_put(&at, remote);
	sp->tags = span_put(&at, tags.p);
	strbuf_free(&tags);
	return sp;
}

static void ring_evict(struct dashboard *d)
{
	struct span *sp = d->spans[d->span_head];

	d->spans[d->span_head] = NULL;
	d->span_head = (d->span_head + 1) % d->o.max_spans;
	d->n_spans--;
	d->span_bytes -= sp->bytes;
	d->spans_dropped++;
	free(sp);
}

static void ring_add(struct dashboard *d, struct span *sp)
{
	while (d->n_spans && (d->n_spans >= d->o.max_spans || d->span_bytes + sp->bytes > d->o.max_span_bytes))
		ring_evict(d);
	if (sp->bytes > d->o.max_span_bytes) {
		d->spans_dropped++;
		free(sp);
		return;
	}
	d->spans[(d->span_head + d->n_spans) % d->o.max_spans] = sp;
	d->n_spans++;
	d->span_bytes += sp->bytes;
	d->spans_received++;
}

static struct span *ring_at(const struct dashboard *d, size_t i)
{
	return d->spans[(d->span_head + i) % d->o.max_spans];
}

/*
 * POST /api/v2/spans: a JSON array of Zipkin v2 spans. All or nothing: one
 * bad span refuses the post with its index and reason. 202 / 400.
 */
static int spans_post(struct dashboard *d, const char *body, size_t len, struct strbuf *out)
{
	struct dj_doc doc;
	struct span **batch = NULL;
	char why[160];
	size_t n = 0, i;
	int e, idx = 0;

	if (dj_parse(&doc, body, len, 200000) < 0) {
		strbuf_printf(out, "invalid JSON: %s at byte %zu\n", doc.err, doc.err_off);
		goto bad;
	}
	if (doc.n[0].type != DJ_ARR) {
		strbuf_puts(out, "expected a JSON array of spans (Zipkin v2)\n");
		goto bad;
	}
	for (e = doc.n[0].child; e >= 0; e = doc.n[e].next)
		n++;
	if (n > SPAN_MAX_PER_POST) {
		strbuf_printf(out, "at most %d spans per post\n", SPAN_MAX_PER_POST);
		goto bad;
	}
	batch = calloc(n ? n : 1, sizeof(*batch));
	if (!batch) {
		strbuf_puts(out, "out of memory\n");
		goto bad;
	}
	for (e = doc.n[0].child; e >= 0; e = doc.n[e].next, idx++) {
		batch[idx] = span_from_json(&doc, e, why, sizeof(why));
		if (!batch[idx]) {
			strbuf_printf(out, "span %d: %s\n", idx, why);
			for (i = 0; i < (size_t)idx; i++)
				free(batch[i]);
			goto bad;
		}
	}
	for (i = 0; i < n; i++)
		ring_add(d, batch[i]);
	free(batch);
	dj_free(&doc);
	return 202;
bad:
	free(batch);
	dj_free(&doc);
	d->spans_rejected_posts++;
	return 400;
}

struct tsum {
	const char *trace_id;
	double start, end;           /* microseconds */
	size_t n;
	int error;
	const struct span *root;     /* the span without a parent, if seen */
	char services[256];          /* "a, b, c" */
	int match;                   /* a span of the searched service */
};

static int tsum_cmp(const void *a, const void *b)
{
	const struct tsum *x = *(const struct tsum *const *)a, *y = *(const struct tsum *const *)b;

	return x->start < y->start ? 1 : x->start > y->start ? -1 : 0;
}

static void add_service(char *list, size_t cap, const char *svc)
{
	size_t n = strlen(svc), l = strlen(list);
	const char *p = list;

	if (!n)
		return;
	while ((p = strstr(p, svc))) {   /* already listed? */
		if ((p == list || p[-2] == ',') && (p[n] == '\0' || p[n] == ','))
			return;
		p += n;
	}
	if (l + n + 3 >= cap)
		return;
	snprintf(list + l, cap - l, "%s%s", l ? ", " : "", svc);
}

/* "reviews" names the proxies' "reviews.default" too (their localEndpoint is service.namespace) */
static int service_is(const char *span_service, const char *q)
{
	size_t n = strlen(q);

	return !strncmp(span_service, q, n) && (span_service[n] == '\0' || (span_service[n] == '.' && !strchr(q, '.')));
}

/* GET /api/traces?service=&min_ms=&error=1&limit= : newest first */
static void traces_list(struct dashboard *d, const char *service, double min_ms, int only_errors, size_t limit,
                        struct strbuf *out)
{
	struct kmap m = { 0 };
	struct tsum **v = NULL;
	size_t i, nv = 0, shown = 0;

	for (i = 0; i < d->n_spans; i++) {
		const struct span *sp = ring_at(d, i);
		struct tsum *t = kmap_get(&m, sp->trace_id, strlen(sp->trace_id));

		if (!t) {
			struct tsum **nvv = realloc(v, (nv + 1) * sizeof(*v));

			if (!nvv)
				break;
			v = nvv;
			t = calloc(1, sizeof(*t));
			if (!t || kmap_put(&m, sp->trace_id, strlen(sp->trace_id), t) < 0) {
				free(t);
				break;
			}
			t->trace_id = sp->trace_id;
			t->start = sp->ts;
			t->end = sp->ts + sp->dur;
			v[nv++] = t;
		}
		t->n++;
		if (sp->ts < t->start)
			t->start = sp->ts;
		if (sp->ts + sp->dur > t->end)
			t->end = sp->ts + sp->dur;
		t->error |= sp->error;
		if (!sp->parent[0] && !t->root)
			t->root = sp;
		add_service(t->services, sizeof(t->services), sp->service);
		if (service && *service && service_is(sp->service, service))
			t->match = 1;
	}
	if (nv)
		qsort(v, nv, sizeof(*v), tsum_cmp);
	strbuf_printf(out, "{\"spans\":%zu,\"span_bytes\":%zu,\"dropped\":%llu,\"traces\":[", d->n_spans,
	              d->span_bytes, (unsigned long long)d->spans_dropped);
	for (i = 0; i < nv && shown < limit; i++) {
		struct tsum *t = v[i];
		double ms = (t->end - t->start) / 1000.0;

		if ((service && *service && !t->match) || ms < min_ms || (only_errors && !t->error))
			continue;
		strbuf_puts(out, shown++ ? ",{" : "{");
		strbuf_puts(out, "\"trace_id\":");
		strbuf_json_str(out, t->trace_id);
		strbuf_puts(out, ",\"root\":");
		strbuf_json_str(out, t->root ? t->root->name : "");
		strbuf_puts(out, ",\"root_service\":");
		strbuf_json_str(out, t->root ? t->root->service : "");
		strbuf_puts(out, ",\"services\":");
		strbuf_json_str(out, t->services);
		strbuf_puts(out, ",\"start_us\":");
		jw_num(out, t->start);
		strbuf_puts(out, ",\"duration_ms\":");
		jw_num(out, ms);
		strbuf_printf(out, ",\"spans\":%zu,\"error\":%s}", t->n, t->error ? "true" : "false");
	}
	strbuf_puts(out, "]}\n");
	kmap_free(&m, free);
	free(v);
}

struct tspan {
	const struct span *sp;
	int done;
	int depth;
};

static int tspan_cmp(const void *a, const void *b)
{
	const struct tspan *x = a, *y = b;

	return x->sp->ts < y->sp->ts ? -1 : x->sp->ts > y->sp->ts ? 1 : 0;
}

static void trace_span_json(struct strbuf *out, const struct span *sp, int depth, double t0, int first)
{
	/* the proxy's tags (docs/tracing.md), in microseconds; shown in milliseconds */
	static const char *timing[] = { "queue", "connect", "upstream", "total" };
	size_t i;

	strbuf_puts(out, first ? "{" : ",{");
	strbuf_puts(out, "\"id\":");
	strbuf_json_str(out, sp->id);
	strbuf_puts(out, ",\"parent_id\":");
	strbuf_json_str(out, sp->parent);
	strbuf_puts(out, ",\"name\":");
	strbuf_json_str(out, sp->name);
	strbuf_puts(out, ",\"kind\":");
	strbuf_json_str(out, sp->kind);
	strbuf_puts(out, ",\"service\":");
	strbuf_json_str(out, sp->service);
	strbuf_puts(out, ",\"remote_service\":");
	strbuf_json_str(out, sp->remote);
	strbuf_printf(out, ",\"depth\":%d,\"timestamp_us\":", depth);
	jw_num(out, sp->ts);
	strbuf_puts(out, ",\"offset_ms\":");
	jw_num(out, (sp->ts - t0) / 1000.0);
	strbuf_puts(out, ",\"duration_ms\":");
	jw_num(out, sp->dur / 1000.0);
	strbuf_printf(out, ",\"error\":%s,\"tags\":%s,\"timing\":{", sp->error ? "true" : "false", sp->tags);
	/* the proxy's timing split, when its spans carry it (docs/dashboard.md) */
	{
		int n = 0;

		for (i = 0; i < sizeof(timing) / sizeof(timing[0]); i++) {
			char pat[64];
			const char *p;

			snprintf(pat, sizeof(pat), "\"mesh.timing.%s_us\":\"", timing[i]);
			p = strstr(sp->tags, pat);
			if (!p)
				continue;
			strbuf_printf(out, "%s\"%s_ms\":", n++ ? "," : "", timing[i]);
			jw_num(out, strtod(p + strlen(pat), NULL) / 1000.0);
		}
	}
	strbuf_puts(out, "}}");
}

/* GET /api/trace/ID: the spans in parent/child order (depth first, siblings by start time) */
static int trace_get(struct dashboard *d, const char *raw_id, size_t raw_len, struct strbuf *out)
{
	char tid[33];
	struct tspan *v = NULL;
	size_t n = 0, i, j, emitted = 0;
	double t0 = 0;
	int *stack = NULL, sp_n;

	if (span_id(raw_id, raw_len, 32, tid) < 0) {
		strbuf_puts(out, "{\"error\":\"a trace id is 1 to 32 hex characters\"}\n");
		return 400;
	}
	for (i = 0; i < d->n_spans && n < TRACE_MAX_SPANS; i++) {
		const struct span *sp = ring_at(d, i);

		if (strcmp(sp->trace_id, tid))
			continue;
		if (!(n & (n + 1)) || !v) {   /* grow at 1, 2, 4, 8 ... */
			struct tspan *nv = realloc(v, (n * 2 + 2) * sizeof(*v));

			if (!nv)
				break;
			v = nv;
		}
		v[n].sp = sp;
		v[n].done = 0;
		v[n].depth = 0;
		n++;
	}
	if (!n) {
		free(v);
		strbuf_puts(out, "{\"error\":\"no such trace (or its spans left the ring)\"}\n");
		return 404;
	}
	qsort(v, n, sizeof(*v), tspan_cmp);
	t0 = v[0].sp->ts;
	stack = malloc(n * sizeof(*stack));
	if (!stack) {
		free(v);
		return 500;
	}
	strbuf_puts(out, "{\"trace_id\":");
	strbuf_json_str(out, tid);
	strbuf_printf(out, ",\"spans\":[");
	/* roots: no parent, or a parent that is not here; then whatever a cycle left over */
	for (int pass = 0; pass < 2; pass++) {
		for (i = 0; i < n; i++) {
			int is_root = 1;

			if (v[i].done)
				continue;
			if (pass == 0 && v[i].sp->parent[0])
				for (j = 0; j < n; j++)
					if (j != i && !strcmp(v[j].sp->id, v[i].sp->parent)) {
						is_root = 0;
						break;
					}
			if (!is_root)
				continue;
			sp_n = 0;
			stack[sp_n++] = (int)i;
			v[i].done = 1;
			v[i].depth = 0;
			while (sp_n) {
				int k = stack[--sp_n];

				trace_span_json(out, v[k].sp, v[k].depth, t0, emitted++ == 0);
				/* children, pushed latest first so the earliest comes out first */
				for (j = n; j-- > 0;)
					if (!v[j].done && !strcmp(v[j].sp->parent, v[k].sp->id) && v[j].sp != v[k].sp) {
						v[j].done = 1;
						v[j].depth = v[k].depth + 1;
						stack[sp_n++] = (int)j;
					}
			}
		}
	}
	strbuf_puts(out, "]}\n");
	free(stack);
	free(v);
	return 200;
}

/* ================================================================== the graph */

#define SPARK 30                     /* rounds in a sparkline */

struct gedge {
	const char *f[4];            /* src, src_ver, dst, dst_ver (into the series keys) */
	int dest_reported;
	uint64_t req, err, mtls_req;
	uint64_t b[DB_NB];
	struct { int code; uint64_t n; } codes[12];
	int n_codes;
	uint64_t spark_req[SPARK];
	uint64_t spark_b[SPARK][DB_NB];
};

struct gnode {
	const char *service, *version;
	const char *kind;            /* "service" (a workload's version), "unknown", "client" */
	uint64_t in_req, in_err;
	int proxies;
};

struct graph {
	struct kmap edges;           /* "src\0srcver\0dst\0dstver" -> gedge */
	struct kmap nodes;           /* node id -> gnode */
	double secs;                 /* seconds the window covers */
	uint32_t from, to;
	int have;                    /* at least two rounds */
};

static void node_id(char *out, size_t cap, const char *svc, const char *ver)
{
	snprintf(out, cap, "%s%s%s", svc, *ver ? " " : "", ver);
}

static struct gnode *node_add(struct graph *g, const char *svc, const char *ver, const char *kind)
{
	char id[600];
	struct gnode *n;

	node_id(id, sizeof(id), svc, ver);
	n = kmap_get(&g->nodes, id, strlen(id));
	if (n)
		return n;
	n = calloc(1, sizeof(*n));
	if (!n || kmap_put(&g->nodes, id, strlen(id), n) < 0) {
		free(n);
		return NULL;
	}
	n->service = svc;
	n->version = ver;
	n->kind = kind;
	return n;
}

static int is_error(int code)
{
	return code >= 500 || code == 0;
}

/* callers that report their own requests (reporter=source) into *reporting. Under lock. */
static void reporting_callers(const struct dashboard *d, struct kmap *reporting)
{
	size_t i;

	for (i = 0; i < d->series.cap; i++) {
		const struct db_series *s = d->series.t[i].v;

		if (d->series.t[i].k && !s->dest_reported && !kmap_get(reporting, s->f[F_SRC], strlen(s->f[F_SRC])))
			kmap_put(reporting, s->f[F_SRC], strlen(s->f[F_SRC]), (void *)s);   /* non-NULL: kmap_get finds it */
	}
}

/* each request counts once: its caller's report, the destination's only for callers that report nothing */
static int series_counted(const struct db_series *s, const struct kmap *reporting)
{
	return !s->dest_reported || (!s->mtls && !kmap_get(reporting, s->f[F_SRC], strlen(s->f[F_SRC])));
}

/* builds the graph over window seconds. Under lock; the result points into the store. */
static void graph_build(struct dashboard *d, double window, struct graph *g)
{
	struct kmap reporting = { 0 };   /* callers that report themselves */
	size_t i, t;
	uint32_t r;
	int k;

	memset(g, 0, sizeof(*g));
	for (t = 0; t < d->n_targets; t++) {
		const struct db_target *tg = d->targets[t];
		struct gnode *n;

		if (!tg->name)
			continue;
		n = node_add(g, *tg->service ? tg->service : tg->name, tg->version, *tg->service ? "service" : "client");
		if (n)
			n->proxies++;
	}
	g->have = window_rounds(d, window, &g->from, &g->to, &g->secs);
	if (!g->have)
		return;
	reporting_callers(d, &reporting);
	for (i = 0; i < d->series.cap; i++) {
		const struct db_series *s = d->series.t[i].v;
		uint64_t sum[DB_NV] = { 0 };
		char key[1200];
		size_t kl = 0;
		struct gedge *e;
		struct gnode *src, *dst;

		if (!d->series.t[i].k)
			continue;
		if (!series_counted(s, &reporting))
			continue;   /* drawn from the caller's own report */
		series_sum(s, g->from, g->to, sum);
		if (!sum[0])
			continue;
		for (k = F_SRC; k <= F_DST_VER; k++)
			kl = key_add(key, kl, sizeof(key), s->f[k]);
		e = kmap_get(&g->edges, key, kl);
		if (!e) {
			e = calloc(1, sizeof(*e));
			if (!e || kmap_put(&g->edges, key, kl, e) < 0) {
				free(e);
				continue;
			}
			for (k = 0; k < 4; k++)
				e->f[k] = s->f[F_SRC + k];
			e->dest_reported = s->dest_reported;
		}
		e->req += sum[0];
		if (is_error(s->code))
			e->err += sum[0];
		if (s->mtls)
			e->mtls_req += sum[0];
		for (k = 0; k < DB_NB; k++)
			e->b[k] += sum[1 + k];
		for (k = 0; k < e->n_codes; k++)
			if (e->codes[k].code == s->code)
				break;
		if (k == e->n_codes && k < (int)(sizeof(e->codes) / sizeof(e->codes[0]))) {
			e->codes[k].code = s->code;
			e->n_codes++;
		}
		if (k < e->n_codes)
			e->codes[k].n += sum[0];
		for (r = 0; r < SPARK && r <= g->to && g->to - r >= 1; r++) {
			const uint32_t *slot = s->ring[(g->to - r) % DB_SLOTS];

			e->spark_req[SPARK - 1 - r] += slot[0];
			for (k = 0; k < DB_NB; k++)
				e->spark_b[SPARK - 1 - r][k] += slot[1 + k];
		}
		src = node_add(g, s->f[F_SRC], s->f[F_SRC_VER], strcmp(s->f[F_SRC], "unknown") ? "service" : "unknown");
		dst = node_add(g, s->f[F_DST], s->f[F_DST_VER], "service");
		(void)src;
		if (dst) {
			dst->in_req += sum[0];
			if (is_error(s->code))
				dst->in_err += sum[0];
		}
	}
	kmap_free(&reporting, NULL);
}

static void graph_free(struct graph *g)
{
	kmap_free(&g->edges, free);
	kmap_free(&g->nodes, free);
}

static const char *health_of(const struct dashboard *d, uint64_t req, uint64_t err)
{
	double rate;

	if (!req)
		return "idle";
	rate = (double)err / (double)req;
	if (rate > d->o.bad_rate)
		return "red";
	if (rate > d->o.warn_rate)
		return "orange";
	return "green";
}

static void graph_json(struct dashboard *d, double window, struct strbuf *out)
{
	struct graph g;
	size_t i;
	int n = 0, k;
	uint32_t r;

	pthread_mutex_lock(&d->lock);
	graph_build(d, window, &g);
	strbuf_puts(out, "{\"window\":");
	jw_num(out, window);
	strbuf_puts(out, ",\"covered_seconds\":");
	jw_num(out, g.secs);
	strbuf_puts(out, ",\"interval\":");
	jw_num(out, d->o.interval);
	strbuf_printf(out, ",\"rounds\":%u,\"thresholds\":{\"warn\":", d->rounds);
	jw_num(out, d->o.warn_rate);
	strbuf_puts(out, ",\"bad\":");
	jw_num(out, d->o.bad_rate);
	strbuf_puts(out, "},\"registry_error\":");
	strbuf_json_str(out, d->registry_err);
	strbuf_puts(out, ",\"nodes\":[");
	for (i = 0; i < g.nodes.cap; i++) {
		const struct gnode *nd = g.nodes.t[i].v;

		if (!g.nodes.t[i].k)
			continue;
		strbuf_puts(out, n++ ? ",{" : "{");
		strbuf_puts(out, "\"id\":");
		strbuf_json_str(out, g.nodes.t[i].k);
		strbuf_puts(out, ",\"service\":");
		strbuf_json_str(out, nd->service);
		strbuf_puts(out, ",\"version\":");
		strbuf_json_str(out, nd->version);
		strbuf_puts(out, ",\"kind\":");
		strbuf_json_str(out, nd->kind);
		strbuf_printf(out, ",\"proxies\":%d,\"rps_in\":", nd->proxies);
		jw_num(out, g.have ? (double)nd->in_req / g.secs : 0);
		strbuf_puts(out, ",\"error_rate_in\":");
		jw_num(out, nd->in_req ? (double)nd->in_err / (double)nd->in_req : 0);
		strbuf_printf(out, ",\"health\":\"%s\"}", health_of(d, nd->in_req, nd->in_err));
	}
	strbuf_puts(out, "],\"edges\":[");
	n = 0;
	for (i = 0; i < g.edges.cap; i++) {
		const struct gedge *e = g.edges.t[i].v;
		char sid[600], tid[600];

		if (!g.edges.t[i].k)
			continue;
		node_id(sid, sizeof(sid), e->f[0], e->f[1]);
		node_id(tid, sizeof(tid), e->f[2], e->f[3]);
		strbuf_puts(out, n++ ? ",{" : "{");
		strbuf_puts(out, "\"source\":");
		strbuf_json_str(out, sid);
		strbuf_puts(out, ",\"target\":");
		strbuf_json_str(out, tid);
		strbuf_puts(out, ",\"service\":");
		strbuf_json_str(out, e->f[2]);
		strbuf_puts(out, ",\"version\":");
		strbuf_json_str(out, e->f[3]);
		strbuf_printf(out, ",\"reporter\":\"%s\",\"requests\":%llu,\"rps\":", e->dest_reported ? "destination" : "source",
		              (unsigned long long)e->req);
		jw_num(out, (double)e->req / g.secs);
		strbuf_puts(out, ",\"error_rate\":");
		jw_num(out, (double)e->err / (double)e->req);
		strbuf_puts(out, ",\"p99_ms\":");
		jw_num(out, hist_quantile(e->b, 0.99));
		strbuf_puts(out, ",\"p50_ms\":");
		jw_num(out, hist_quantile(e->b, 0.50));
		strbuf_puts(out, ",\"p95_ms\":");
		jw_num(out, hist_quantile(e->b, 0.95));
		strbuf_printf(out, ",\"mtls\":%s,\"mtls_share\":", e->mtls_req == e->req ? "true" : "false");
		jw_num(out, (double)e->mtls_req / (double)e->req);
		strbuf_printf(out, ",\"health\":\"%s\",\"codes\":{", health_of(d, e->req, e->err));
		for (k = 0; k < e->n_codes; k++) {
			strbuf_printf(out, "%s\"%d\":", k ? "," : "", e->codes[k].code);
			jw_num(out, (double)e->codes[k].n / g.secs);
		}
		strbuf_puts(out, "},\"spark_rps\":[");
		for (r = 0; r < SPARK; r++) {
			uint32_t round = g.to >= SPARK - 1 - r ? g.to - (SPARK - 1 - r) : 0;
			double dt = round >= 1 ? d->t[round % DB_SLOTS] - d->t[(round - 1) % DB_SLOTS] : 0;

			if (r)
				strbuf_puts(out, ",");
			jw_num(out, dt > 0 && round >= 1 ? (double)e->spark_req[r] / dt : 0);
		}
		strbuf_puts(out, "],\"spark_p99\":[");
		for (r = 0; r < SPARK; r++) {
			if (r)
				strbuf_puts(out, ",");
			jw_num(out, hist_quantile(e->spark_b[r], 0.99));
		}
		strbuf_puts(out, "]}");
	}
	strbuf_puts(out, "]}\n");
	graph_free(&g);
	pthread_mutex_unlock(&d->lock);
}

/* ================================================================== services */

static void str_list_add(char ***v, size_t *n, const char *s)
{
	size_t i;
	char **nv;

	if (!s || !*s)
		return;
	for (i = 0; i < *n; i++)
		if (!strcmp((*v)[i], s))
			return;
	nv = realloc(*v, (*n + 1) * sizeof(*nv));
	if (!nv)
		return;
	*v = nv;
	(*v)[(*n)++] = (char *)s;
}

static void json_str_list(struct strbuf *out, char **v, size_t n)
{
	size_t i;

	strbuf_puts(out, "[");
	for (i = 0; i < n; i++) {
		if (i)
			strbuf_puts(out, ",");
		strbuf_json_str(out, v[i]);
	}
	strbuf_puts(out, "]");
}

/* the scrape state of the proxy whose admin is addr. Under lock. */
static const struct db_target *target_of(const struct dashboard *d, const char *admin)
{
	size_t i;

	for (i = 0; i < d->n_targets; i++)
		if (!strcmp(d->targets[i]->admin, admin))
			return d->targets[i];
	return NULL;
}

static void proxy_json(struct dashboard *d, const struct dj_doc *doc, int p, struct strbuf *out, int first)
{
	static const char *keys[] = { "name", "identity", "namespace", "service_account", "address", "admin",
		                      "snapshot", "latest", "status", "rejected" };
	const struct db_target *t = target_of(d, dj_str(doc, p, "admin"));
	size_t i;
	int s;

	strbuf_puts(out, first ? "{" : ",{");
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		strbuf_printf(out, "%s\"%s\":", i ? "," : "", keys[i]);
		strbuf_json_str(out, dj_str(doc, p, keys[i]));
	}
	strbuf_puts(out, ",\"version\":");
	strbuf_json_str(out, known(dj_str(doc, dj_get(doc, p, "labels"), "version")));
	s = dj_get(doc, p, "seen_seconds_ago");
	strbuf_puts(out, ",\"seen_seconds_ago\":");
	jw_num(out, s >= 0 && doc->n[s].type == DJ_NUM ? doc->n[s].num : -1);
	strbuf_puts(out, ",\"scrape\":");
	if (!t)
		strbuf_json_str(out, "not scraped yet");
	else if (t->err[0])
		strbuf_json_str(out, t->err);
	else
		strbuf_json_str(out, t->ok ? "ok" : "pending");
	strbuf_printf(out, ",\"scrapes_ok\":%u,\"scrape_ms\":", t ? t->ok : 0);
	jw_num(out, t ? t->last_ms : 0);
	strbuf_puts(out, "}");
}

static void services_json(struct dashboard *d, double window, struct strbuf *out)
{
	struct dj_doc doc;
	struct conf *cf = NULL;
	char err[512];
	char **names = NULL;
	size_t n_names = 0, i, k;
	int arr = -1, p, first;
	struct graph g;

	memset(&doc, 0, sizeof(doc));
	if (d->mesh_path)
		cf = conf_load(d->mesh_path, err, sizeof(err));
	pthread_mutex_lock(&d->lock);
	if (d->registry && dj_parse(&doc, d->registry, strlen(d->registry), 200000) == 0)
		arr = dj_get(&doc, 0, "proxies");
	if (arr >= 0 && doc.n[arr].type != DJ_ARR)
		arr = -1;
	/* services: declared in mesh.ini, then any other a proxy registered for */
	for (i = 0; cf && i < cf->n_services; i++)
		str_list_add(&names, &n_names, cf->services[i].name);
	for (p = arr >= 0 ? doc.n[arr].child : -1; p >= 0; p = doc.n[p].next)
		str_list_add(&names, &n_names, known(dj_str(&doc, p, "service")));
	graph_build(d, window, &g);
	strbuf_puts(out, "{\"registry_error\":");
	strbuf_json_str(out, d->registry_err);
	strbuf_puts(out, ",\"services\":[");
	for (i = 0; i < n_names; i++) {
		const struct conf_service *svc = NULL;
		char **vers = NULL, **eps = NULL, **ids = NULL;
		size_t nv = 0, ne = 0, ni = 0, total = 0, synced = 0;
		const char *worst = "";
		uint64_t in_req = 0, in_err = 0;

		for (k = 0; cf && k < cf->n_services; k++)
			if (!strcmp(cf->services[k].name, names[i]))
				svc = &cf->services[k];
		strbuf_puts(out, i ? ",{" : "{");
		strbuf_puts(out, "\"name\":");
		strbuf_json_str(out, names[i]);
		strbuf_puts(out, ",\"namespace\":");
		strbuf_json_str(out, svc ? svc->namespace : "");
		strbuf_printf(out, ",\"port\":%u,\"declared\":%s,\"proxies\":[", svc ? svc->port : 0, svc ? "true" : "false");
		first = 1;
		for (p = arr >= 0 ? doc.n[arr].child : -1; p >= 0; p = doc.n[p].next) {
			const char *st = dj_str(&doc, p, "status");

			if (strcmp(known(dj_str(&doc, p, "service")), names[i]))
				continue;
			proxy_json(d, &doc, p, out, first);
			first = 0;
			str_list_add(&vers, &nv, known(dj_str(&doc, dj_get(&doc, p, "labels"), "version")));
			str_list_add(&eps, &ne, strcmp(dj_str(&doc, p, "address"), "-") ? dj_str(&doc, p, "address") : "");
			str_list_add(&ids, &ni, dj_str(&doc, p, "identity"));
			total++;
			if (!strcmp(st, "SYNCED"))
				synced++;
			else if (!*worst)
				worst = st;
		}
		strbuf_puts(out, "]");
		/* static endpoints and subsets of mesh.ini count too */
		for (k = 0; svc && k < svc->n_endpoints; k++) {
			str_list_add(&eps, &ne, svc->endpoints[k].addr.text);
			str_list_add(&vers, &nv, conf_label(&svc->endpoints[k].labels, "version"));
		}
		for (k = 0; svc && svc->destination && k < svc->destination->n_subsets; k++)
			str_list_add(&vers, &nv, conf_label(&svc->destination->subsets[k].labels, "version"));
		strbuf_puts(out, ",\"versions\":");
		json_str_list(out, vers, nv);
		strbuf_puts(out, ",\"endpoints\":");
		json_str_list(out, eps, ne);
		strbuf_puts(out, ",\"identities\":");
		json_str_list(out, ids, ni);
		strbuf_printf(out, ",\"sync\":\"%s\",\"proxies_synced\":%zu", !total ? "NO PROXIES" : synced == total ? "SYNCED" : worst,
		              synced);
		for (k = 0; k < g.nodes.cap; k++) {
			const struct gnode *nd = g.nodes.t[k].v;

			if (g.nodes.t[k].k && !strcmp(nd->service, names[i])) {
				in_req += nd->in_req;
				in_err += nd->in_err;
			}
		}
		strbuf_puts(out, ",\"rps_in\":");
		jw_num(out, g.have ? (double)in_req / g.secs : 0);
		strbuf_puts(out, ",\"error_rate_in\":");
		jw_num(out, in_req ? (double)in_err / (double)in_req : 0);
		strbuf_printf(out, ",\"health\":\"%s\"}", health_of(d, in_req, in_err));
		free(vers);
		free(eps);
		free(ids);
	}
	strbuf_puts(out, "],\"clients\":[");
	first = 1;
	for (p = arr >= 0 ? doc.n[arr].child : -1; p >= 0; p = doc.n[p].next) {
		if (*known(dj_str(&doc, p, "service")))
			continue;
		proxy_json(d, &doc, p, out, first);
		first = 0;
	}
	strbuf_puts(out, "]}\n");
	graph_free(&g);
	pthread_mutex_unlock(&d->lock);
	free(names);
	dj_free(&doc);
	if (cf)
		conf_unref(cf);
}

/* ================================================================== stat and edges (mesh stat, mesh edges) */

/*
 * /api/stat and /api/edges: the graph's requests (each counted once, as the
 * graph counts them) grouped per workload ("deploy": service and version,
 * named "reviews-v2") or per service ("svc"), as linkerd viz stat / edges
 * show them. docs/stat.md says what each column means.
 */

struct srow {
	const char *svc, *ver;       /* the workload or service (pointers into the store, registry or mesh.ini) */
	int meshed, endpoints;       /* proxies registered for it; those + mesh.ini endpoints without one */
	uint64_t req, err;
	uint64_t b[DB_NB];           /* duration buckets (cumulative) */
	double tcp;                  /* open TCP connections */
};

struct erow {
	const char *src, *src_ver, *dst, *dst_ver;
	const char *src_id, *dst_id; /* the peers' SPIFFE ids seen on its mTLS requests ("" = none) */
	uint64_t req, mtls_req;
};

/* a row's name: "reviews-v2" (deploy) or "reviews" (svc) */
static void row_name(char *out, size_t cap, const char *svc, const char *ver, int by_svc)
{
	if (by_svc || !*ver)
		snprintf(out, cap, "%s", svc);
	else
		snprintf(out, cap, "%s-%s", svc, ver);
}

/* --from / --to NAME: a service (all its versions) or one workload ("service-version") */
static int name_matches(const char *want, const char *svc, const char *ver)
{
	size_t n = strlen(svc);

	if (!want || !strcmp(want, svc))
		return 1;
	return *ver && !strncmp(want, svc, n) && want[n] == '-' && !strcmp(want + n + 1, ver);
}

static struct srow *srow_get(struct kmap *rows, const char *svc, const char *ver, int by_svc)
{
	char name[300];
	struct srow *r;

	row_name(name, sizeof(name), svc, ver, by_svc);
	if ((r = kmap_get(rows, name, strlen(name))))
		return r;
	if (rows->n >= DB_MAX_SERIES || !(r = calloc(1, sizeof(*r))))
		return NULL;
	if (kmap_put(rows, name, strlen(name), r) < 0) {
		free(r);
		return NULL;
	}
	r->svc = svc;
	r->ver = by_svc ? "" : ver;
	return r;
}

struct kent_ref {
	const char *k;               /* may hold '\0's: compared over kl bytes */
	size_t kl;
	void *v;
};

static int kent_cmp(const void *a, const void *b)
{
	const struct kent_ref *x = a, *y = b;
	int c = memcmp(x->k, y->k, x->kl < y->kl ? x->kl : y->kl);

	return c ? c : x->kl < y->kl ? -1 : x->kl > y->kl;
}

/* a map's entries sorted by key (malloc'd; *n set) */
static struct kent_ref *kmap_sorted(const struct kmap *m, size_t *n)
{
	struct kent_ref *v = calloc(m->n ? m->n : 1, sizeof(*v));
	size_t i;

	*n = 0;
	if (!v)
		return NULL;
	for (i = 0; i < m->cap; i++)
		if (m->t[i].k) {
			v[*n].k = m->t[i].k;
			v[*n].kl = m->t[i].kl;
			v[(*n)++].v = m->t[i].v;
		}
	qsort(v, *n, sizeof(*v), kent_cmp);
	return v;
}

/* the registry's proxies array in doc (parsed from d->registry), or -1. Under lock. */
static int registry_proxies(const struct dashboard *d, struct dj_doc *doc)
{
	int arr;

	memset(doc, 0, sizeof(*doc));
	if (!d->registry || dj_parse(doc, d->registry, strlen(d->registry), 200000) < 0)
		return -1;
	arr = dj_get(doc, 0, "proxies");
	return arr >= 0 && doc->n[arr].type == DJ_ARR ? arr : -1;
}

/* a registered proxy's workload: its service (or its name when it has none) and version */
static const char *proxy_svc(const struct dj_doc *doc, int p)
{
	return *known(dj_str(doc, p, "service")) ? known(dj_str(doc, p, "service")) : dj_str(doc, p, "name");
}

static const char *proxy_ver(const struct dj_doc *doc, int p)
{
	return known(dj_str(doc, dj_get(doc, p, "labels"), "version"));
}

static void num_or_null(struct strbuf *out, const char *key, int have, double v)
{
	strbuf_printf(out, ",\"%s\":", key);
	if (have)
		jw_num(out, v);
	else
		strbuf_puts(out, "null");
}

static void stat_json(struct dashboard *d, int by_svc, const char *from, const char *to, double window,
                      struct strbuf *out)
{
	struct kmap rows = { 0 }, reporting = { 0 };
	struct kent_ref *sorted;
	struct conf *cf = NULL;
	struct dj_doc doc;
	uint32_t wfrom = 0, wto = 0;
	double secs = 0;
	char err[512];
	size_t i, k, n;
	int arr, p, have, filtered = from || to;

	if (d->mesh_path)
		cf = conf_load(d->mesh_path, err, sizeof(err));
	pthread_mutex_lock(&d->lock);
	arr = registry_proxies(d, &doc);
	/* unfiltered: every workload the registry and mesh.ini know, with traffic or not */
	for (p = arr >= 0 && !filtered ? doc.n[arr].child : -1; p >= 0; p = doc.n[p].next)
		srow_get(&rows, proxy_svc(&doc, p), proxy_ver(&doc, p), by_svc);
	for (i = 0; cf && !filtered && i < cf->n_services; i++)
		for (k = 0; k < cf->services[i].n_endpoints; k++) {
			const char *v = conf_label(&cf->services[i].endpoints[k].labels, "version");

			srow_get(&rows, cf->services[i].name, v ? v : "", by_svc);
		}
	have = window_rounds(d, window, &wfrom, &wto, &secs);
	reporting_callers(d, &reporting);
	for (i = 0; have && i < d->series.cap; i++) {
		const struct db_series *s = d->series.t[i].v;
		uint64_t sum[DB_NV] = { 0 };
		struct srow *r;

		if (!d->series.t[i].k || !series_counted(s, &reporting))
			continue;
		if (!name_matches(from, s->f[F_SRC], s->f[F_SRC_VER]) || !name_matches(to, s->f[F_DST], s->f[F_DST_VER]))
			continue;
		series_sum(s, wfrom, wto, sum);
		if (!sum[0])
			continue;
		r = to ? srow_get(&rows, s->f[F_SRC], s->f[F_SRC_VER], by_svc) : srow_get(&rows, s->f[F_DST], s->f[F_DST_VER], by_svc);
		if (!r)
			continue;
		r->req += sum[0];
		if (is_error(s->code))
			r->err += sum[0];
		for (k = 0; k < DB_NB; k++)
			r->b[k] += sum[1 + k];
	}
	kmap_free(&reporting, NULL);
	/*
	 * TCP connections open now: unfiltered, those into the workload (its
	 * proxies' inbound ones); with --from / --to, the callers' connections
	 * to their destinations (their proxies' upstream ones).
	 */
	for (i = 0; i < d->n_targets; i++) {
		const struct db_target *t = d->targets[i];
		const char *tsvc;

		if (!t->name)
			continue;
		tsvc = *t->service ? t->service : t->name;
		for (k = 0; k < t->tcp.cap; k++) {
			const char *f[DB_NF], *key = t->tcp.t[k].k;
			const double *v = t->tcp.t[k].v;
			struct srow *r = NULL;
			int j;

			if (!key)
				continue;
			for (j = 0; j < DB_NF; j++, key += strlen(key) + 1)
				f[j] = key;
			if (!filtered && !strcmp(f[F_REPORTER], "destination"))
				r = srow_get(&rows, tsvc, t->version, by_svc);
			else if (filtered && !strcmp(f[F_REPORTER], "source") && name_matches(from, tsvc, t->version) &&
			         name_matches(to, f[F_DST], f[F_DST_VER]))
				r = to ? srow_get(&rows, tsvc, t->version, by_svc) : srow_get(&rows, f[F_DST], f[F_DST_VER], by_svc);
			if (r && v[0] > v[1])
				r->tcp += v[0] - v[1];
		}
	}
	/* MESHED: registered proxies of each row, out of those and mesh.ini's other endpoints */
	for (p = arr >= 0 ? doc.n[arr].child : -1; p >= 0; p = doc.n[p].next) {
		char name[300];
		struct srow *r;

		row_name(name, sizeof(name), proxy_svc(&doc, p), proxy_ver(&doc, p), by_svc);
		if ((r = kmap_get(&rows, name, strlen(name)))) {
			r->meshed++;
			r->endpoints++;
		}
	}
	for (i = 0; cf && i < cf->n_services; i++)
		for (k = 0; k < cf->services[i].n_endpoints; k++) {
			const struct conf_endpoint *ep = &cf->services[i].endpoints[k];
			const char *v = conf_label(&ep->labels, "version");
			char name[300];
			struct srow *r;
			int q;

			for (q = arr >= 0 ? doc.n[arr].child : -1; q >= 0; q = doc.n[q].next)
				if (!strcmp(dj_str(&doc, q, "address"), ep->addr.text))
					break;
			row_name(name, sizeof(name), cf->services[i].name, v ? v : "", by_svc);
			if (q < 0 && (r = kmap_get(&rows, name, strlen(name))))
				r->endpoints++;
		}
	strbuf_printf(out, "{\"by\":\"%s\",\"window\":", by_svc ? "svc" : "deploy");
	jw_num(out, window);
	strbuf_puts(out, ",\"covered_seconds\":");
	jw_num(out, secs);
	strbuf_puts(out, ",\"from\":");
	strbuf_json_str(out, from);
	strbuf_puts(out, ",\"to\":");
	strbuf_json_str(out, to);
	strbuf_puts(out, ",\"registry_error\":");
	strbuf_json_str(out, d->registry_err);
	strbuf_puts(out, ",\"rows\":[");
	sorted = kmap_sorted(&rows, &n);
	for (i = 0; sorted && i < n; i++) {
		const struct srow *r = sorted[i].v;

		strbuf_puts(out, i ? ",{\"name\":" : "{\"name\":");
		strbuf_json_str(out, sorted[i].k);
		strbuf_puts(out, ",\"service\":");
		strbuf_json_str(out, r->svc);
		strbuf_puts(out, ",\"version\":");
		strbuf_json_str(out, r->ver);
		strbuf_printf(out, ",\"meshed\":%d,\"endpoints\":%d,\"requests\":%llu", r->meshed, r->endpoints,
		              (unsigned long long)r->req);
		num_or_null(out, "success", r->req, 1 - (double)r->err / (double)(r->req ? r->req : 1));
		num_or_null(out, "rps", have, secs > 0 ? (double)r->req / secs : 0);
		num_or_null(out, "p50_ms", r->req, hist_quantile(r->b, 0.50));
		num_or_null(out, "p95_ms", r->req, hist_quantile(r->b, 0.95));
		num_or_null(out, "p99_ms", r->req, hist_quantile(r->b, 0.99));
		strbuf_puts(out, ",\"tcp_open\":");
		jw_num(out, r->tcp);
		strbuf_puts(out, "}");
	}
	strbuf_puts(out, "]}\n");
	free(sorted);
	kmap_free(&rows, free);
	pthread_mutex_unlock(&d->lock);
	dj_free(&doc);
	if (cf)
		conf_unref(cf);
}

static void edges_json(struct dashboard *d, int by_svc, double window, struct strbuf *out)
{
	struct kmap edges = { 0 }, reporting = { 0 };
	struct kent_ref *sorted;
	uint32_t wfrom = 0, wto = 0;
	double secs = 0;
	size_t i, n;
	int have;

	pthread_mutex_lock(&d->lock);
	have = window_rounds(d, window, &wfrom, &wto, &secs);
	reporting_callers(d, &reporting);
	for (i = 0; have && i < d->series.cap; i++) {
		const struct db_series *s = d->series.t[i].v;
		uint64_t sum[DB_NV] = { 0 };
		char key[700];
		size_t kl;
		struct erow *e;

		if (!d->series.t[i].k || !series_counted(s, &reporting))
			continue;
		series_sum(s, wfrom, wto, sum);
		if (!sum[0])
			continue;
		row_name(key, sizeof(key) / 2, s->f[F_SRC], s->f[F_SRC_VER], by_svc);
		kl = strlen(key) + 1;
		row_name(key + kl, sizeof(key) - kl, s->f[F_DST], s->f[F_DST_VER], by_svc);
		kl += strlen(key + kl);
		if (!(e = kmap_get(&edges, key, kl))) {
			if (edges.n >= DB_MAX_SERIES || !(e = calloc(1, sizeof(*e))))
				continue;
			if (kmap_put(&edges, key, kl, e) < 0) {
				free(e);
				continue;
			}
			e->src = s->f[F_SRC];
			e->src_ver = by_svc ? "" : s->f[F_SRC_VER];
			e->dst = s->f[F_DST];
			e->dst_ver = by_svc ? "" : s->f[F_DST_VER];
			e->src_id = e->dst_id = "";
		}
		e->req += sum[0];
		if (s->mtls) {
			e->mtls_req += sum[0];
			if (!*e->src_id)
				e->src_id = s->f[F_SRC_ID];
			if (!*e->dst_id)
				e->dst_id = s->f[F_DST_ID];
		}
	}
	kmap_free(&reporting, NULL);
	strbuf_printf(out, "{\"by\":\"%s\",\"window\":", by_svc ? "svc" : "deploy");
	jw_num(out, window);
	strbuf_puts(out, ",\"covered_seconds\":");
	jw_num(out, secs);
	strbuf_puts(out, ",\"edges\":[");
	sorted = kmap_sorted(&edges, &n);
	for (i = 0; sorted && i < n; i++) {
		const struct erow *e = sorted[i].v;
		char name[300], why[64];

		row_name(name, sizeof(name), e->src, e->src_ver, by_svc);
		strbuf_puts(out, i ? ",{\"source\":" : "{\"source\":");
		strbuf_json_str(out, name);
		row_name(name, sizeof(name), e->dst, e->dst_ver, by_svc);
		strbuf_puts(out, ",\"destination\":");
		strbuf_json_str(out, name);
		strbuf_puts(out, ",\"source_identity\":");
		strbuf_json_str(out, e->src_id);
		strbuf_puts(out, ",\"destination_identity\":");
		strbuf_json_str(out, e->dst_id);
		strbuf_printf(out, ",\"requests\":%llu,\"mtls_requests\":%llu,\"secured\":%s,\"reason\":",
		              (unsigned long long)e->req, (unsigned long long)e->mtls_req,
		              e->mtls_req == e->req ? "true" : "false");
		if (e->mtls_req == e->req)
			snprintf(why, sizeof(why), "mTLS");
		else if (e->mtls_req)
			snprintf(why, sizeof(why), "only %.0f%% mTLS", 100.0 * (double)e->mtls_req / (double)e->req);
		else if (!strcmp(e->src, "unknown"))
			snprintf(why, sizeof(why), "plaintext, caller outside the mesh");
		else
			snprintf(why, sizeof(why), "plaintext");
		strbuf_json_str(out, why);
		strbuf_puts(out, "}");
	}
	strbuf_puts(out, "]}\n");
	free(sorted);
	kmap_free(&edges, free);
	pthread_mutex_unlock(&d->lock);
}

/* ================================================================== config */

static int cfg_msg_cmp(const void *a, const void *b)
{
	const struct check_msg *x = a, *y = b;

	if (x->error != y->error)
		return y->error - x->error;
	if (x->file != y->file)
		return x->file - y->file;
	if (x->line != y->line)
		return x->line - y->line;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void dest_json(struct strbuf *out, const struct conf *cf, const struct conf_dest *dst)
{
	const struct conf_destination *dr;

	strbuf_puts(out, "{\"service\":");
	strbuf_json_str(out, dst->svc ? dst->svc->name : "");
	strbuf_puts(out, ",\"subset\":");
	dr = dst->svc ? conf_destination_of(cf, dst->svc) : NULL;
	strbuf_json_str(out, dr && dst->subset >= 0 && (size_t)dst->subset < dr->n_subsets ? dr->subsets[dst->subset].name : "");
	strbuf_printf(out, ",\"weight\":%u}", dst->weight);
}

static void config_json(struct dashboard *d, struct strbuf *out)
{
	struct check_report rep;
	struct conf *cf;
	char err[512];
	size_t i, k;

	if (!d->mesh_path) {
		strbuf_puts(out, "{\"file\":\"\",\"ok\":false,\"errors\":0,\"warnings\":0,\"messages\":[],\"routes\":[],"
		                 "\"note\":\"started without -c mesh.ini\"}\n");
		return;
	}
	memset(&rep, 0, sizeof(rep));
	check_load(d->mesh_path, NULL, &rep);
	if (rep.n)
		qsort(rep.v, rep.n, sizeof(*rep.v), cfg_msg_cmp);
	strbuf_puts(out, "{\"file\":");
	strbuf_json_str(out, d->mesh_path);
	strbuf_printf(out, ",\"ok\":%s,\"errors\":%zu,\"warnings\":%zu,\"summary\":", rep.n_errors ? "false" : "true",
	              rep.n_errors, rep.n_warnings);
	strbuf_json_str(out, rep.counts);
	strbuf_puts(out, ",\"messages\":[");
	for (i = 0; i < rep.n; i++) {
		const struct check_msg *m = &rep.v[i];

		strbuf_printf(out, "%s{\"severity\":\"%s\",\"file\":", i ? "," : "", m->error ? "error" : "warning");
		strbuf_json_str(out, m->file >= 0 && (size_t)m->file < rep.n_files ? rep.files[m->file] : "");
		strbuf_printf(out, ",\"line\":%d,\"text\":", m->line);
		strbuf_json_str(out, m->text);
		strbuf_puts(out, "}");
	}
	check_report_free(&rep);
	/* the effective routes: of the file as it loads now (a refused file shows none) */
	strbuf_puts(out, "],\"routes\":[");
	cf = conf_load(d->mesh_path, err, sizeof(err));
	for (i = 0; cf && i < cf->n_routes; i++) {
		const struct conf_route *rt = &cf->routes[i];
		int port_ok;
		const struct conf_service *svc = rt->n_hosts ? conf_find_service(cf, rt->hosts[0], strlen(rt->hosts[0]), &port_ok) : NULL;

		strbuf_puts(out, i ? ",{" : "{");
		strbuf_puts(out, "\"name\":");
		strbuf_json_str(out, rt->name);
		strbuf_puts(out, ",\"service\":");
		strbuf_json_str(out, svc ? svc->name : "");
		strbuf_puts(out, ",\"where\":");
		{
			char w[300];

			snprintf(w, sizeof(w), "%s:%d", rt->file ? rt->file : "", rt->line);
			strbuf_json_str(out, w);
		}
		strbuf_puts(out, ",\"hosts\":");
		json_str_list(out, rt->hosts, rt->n_hosts);
		strbuf_printf(out, ",\"match_blocks\":%zu,\"to\":[", rt->n_matches);
		for (k = 0; k < rt->n_to; k++) {
			if (k)
				strbuf_puts(out, ",");
			dest_json(out, cf, &rt->to[k]);
		}
		strbuf_printf(out, "],\"timeout_ms\":%u,\"retries\":%u,\"fault_abort\":%d,\"fault_abort_percent\":", rt->timeout,
		              rt->retries, rt->fault_abort);
		jw_num(out, rt->fault_abort ? rt->fault_abort_percent : 0);
		strbuf_printf(out, ",\"fault_delay_ms\":%u,\"direct_response\":%d,\"redirect\":", rt->fault_delay,
		              rt->direct_status);
		strbuf_json_str(out, rt->redirect);
		strbuf_puts(out, ",\"mirror\":");
		if (rt->mirror.svc)
			dest_json(out, cf, &rt->mirror);
		else
			strbuf_puts(out, "null");
		strbuf_puts(out, "}");
	}
	strbuf_puts(out, "],\"destinations\":[");
	for (i = 0; cf && i < cf->n_destinations; i++) {
		const struct conf_destination *dr = &cf->destinations[i];

		strbuf_puts(out, i ? ",{" : "{");
		strbuf_puts(out, "\"service\":");
		strbuf_json_str(out, dr->svc ? dr->svc->name : "");
		strbuf_puts(out, ",\"subsets\":[");
		for (k = 0; k < dr->n_subsets; k++) {
			strbuf_puts(out, k ? "," : "");
			strbuf_json_str(out, dr->subsets[k].name);
		}
		strbuf_puts(out, "]}");
	}
	strbuf_puts(out, "]}\n");
	if (cf)
		conf_unref(cf);
}

/* ================================================================== HTTP server (the loop) */

#define DC_MAX_HEAD 16384
#define DC_MAX_CONNS 256
#define DC_TIMEOUT 10.0

struct dconn {
	ev_io io;                    /* read, then write */
	ev_timer timer;              /* whole-exchange deadline */
	struct dashboard *d;
	struct dconn *next;          /* in d->conns */
	int fd;
	char *in;                    /* head, then head + body */
	size_t in_len, in_cap;
	size_t head_len;             /* 0 until the head is parsed */
	size_t body_len;             /* Content-Length of a POST */
	size_t req_len;              /* bytes of in[] taken by the request being answered */
	struct strbuf out;
	size_t out_off;
	unsigned keep : 1;           /* the answer keeps the connection open (HTTP/1.1 keep-alive) */
	unsigned served : 1;         /* answered a request: idle between requests may be closed */
};

static void dconn_close(struct dconn *c)
{
	struct dconn **pp;

	ev_io_stop(c->d->loop, &c->io);
	ev_timer_stop(c->d->loop, &c->timer);
	close(c->fd);
	for (pp = &c->d->conns; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	c->d->n_conns--;
	strbuf_free(&c->out);
	free(c->in);
	c->in = NULL;
	free(c);
}

static const char *reason_of(int status)
{
	switch (status) {
	case 200: return "OK";
	case 202: return "Accepted";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 411: return "Length Required";
	case 413: return "Payload Too Large";
	case 500: return "Internal Server Error";
	default: return "Error";
	}
}

static void respond(struct dconn *c, int status, const char *ctype, struct strbuf *body, int head_only)
{
	strbuf_printf(&c->out, "HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %zu\r\n"
	              "cache-control: no-store\r\nx-content-type-options: nosniff\r\n%s",
	              status, reason_of(status), ctype, body->len, c->keep ? "" : "connection: close\r\n");
	if (status == 401)
		strbuf_puts(&c->out, "www-authenticate: Basic realm=\"mesh dashboard\", charset=\"UTF-8\"\r\n");
	if (!strncmp(ctype, "text/html", 9))
		strbuf_puts(&c->out, "content-security-policy: default-src 'none'; script-src 'unsafe-inline'; "
		                     "style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:\r\n"
		                     "x-frame-options: DENY\r\n");
	strbuf_puts(&c->out, "\r\n");
	if (!head_only && body->len)
		strbuf_append(&c->out, body->p, body->len);
	strbuf_free(body);
	ev_io_stop(c->d->loop, &c->io);
	ev_io_set(&c->io, c->fd, EV_WRITE);
	ev_io_start(c->d->loop, &c->io);
}

static int b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* decodes base64 (padding optional); -1 on bad input or overflow */
static int b64_decode(const char *s, size_t n, char *out, size_t cap)
{
	unsigned acc = 0;
	int bits = 0, v;
	size_t i, o = 0;

	for (i = 0; i < n && s[i] != '='; i++) {
		v = b64val((unsigned char)s[i]);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o + 1 >= cap)
				return -1;
			out[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	out[o] = '\0';
	return (int)o;
}

/* compares without an early exit on the first difference */
static int same_secret(const char *a, size_t alen, const char *b)
{
	size_t blen = strlen(b), i;
	unsigned diff = alen != blen;

	for (i = 0; i < alen; i++)
		diff |= (unsigned)(unsigned char)a[i] ^ (unsigned)(unsigned char)b[i % (blen ? blen : 1)];
	return diff == 0;
}

static int authorized(const struct dashboard *d, const struct http1_msg *m)
{
	size_t i;

	if (!d->token && !d->basic)
		return 1;
	for (i = 0; i < m->num_headers; i++) {
		const struct http1_header *h = &m->headers[i];
		char dec[512];
		int n;
		char *colon;

		if (!http1_ieq(h->name, h->name_len, "authorization"))
			continue;
		if (d->token && h->value_len > 7 && !strncasecmp(h->value, "bearer ", 7) &&
		    same_secret(h->value + 7, h->value_len - 7, d->token))
			return 1;
		if (h->value_len > 6 && !strncasecmp(h->value, "basic ", 6) &&
		    (n = b64_decode(h->value + 6, h->value_len - 6, dec, sizeof(dec))) > 0) {
			if (d->basic && same_secret(dec, (size_t)n, d->basic))
				return 1;
			colon = memchr(dec, ':', (size_t)n);
			if (d->token && colon && same_secret(colon + 1, (size_t)(dec + n - colon - 1), d->token))
				return 1;
		}
	}
	return 0;
}

/* DNS rebinding: a dashboard on a loopback address answers only loopback Host names */
static int host_ok(const struct dashboard *d, const struct http1_msg *m)
{
	static const char *ok[] = { "localhost", "127.0.0.1", "[::1]" };
	size_t i, n;

	if (strncmp(d->listen_text, "127.", 4) && strncmp(d->listen_text, "[::1]", 5) &&
	    strncmp(d->listen_text, "localhost", 9))
		return 1;
	if (!(m->flags & HTTP1_F_HAS_HOST))
		return 1;   /* HTTP/1.0 clients (collectors) */
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		n = strlen(ok[i]);
		if (m->host_len >= n && !strncasecmp(m->host, ok[i], n) && (m->host_len == n || m->host[n] == ':'))
			return 1;
	}
	if (m->host_len >= 4 && !strncmp(m->host, "127.", 4))
		return 1;
	return 0;
}

/* value of query parameter name in target, copied into out (not decoded beyond '+'); NULL when absent */
static const char *qparam(const char *target, size_t tlen, const char *name, char *out, size_t cap)
{
	const char *q = memchr(target, '?', tlen), *e = target + tlen, *p;
	size_t nl = strlen(name), o;

	if (!q)
		return NULL;
	for (p = q + 1; p < e;) {
		const char *amp = memchr(p, '&', (size_t)(e - p));
		const char *end = amp ? amp : e;

		if ((size_t)(end - p) > nl && !memcmp(p, name, nl) && p[nl] == '=') {
			const char *v = p + nl + 1;

			for (o = 0; v < end && o + 1 < cap; v++) {
				if (*v == '%' && end - v >= 3 && hex_digit((unsigned char)v[1]) >= 0 && hex_digit((unsigned char)v[2]) >= 0) {
					out[o++] = (char)(hex_digit((unsigned char)v[1]) * 16 + hex_digit((unsigned char)v[2]));
					v += 2;
				} else {
					out[o++] = *v == '+' ? ' ' : *v;
				}
			}
			out[o] = '\0';
			return out;
		}
		p = end + 1;
	}
	return NULL;
}

static double window_param(const struct dashboard *d, const char *target, size_t tlen)
{
	char v[32];
	double w = 60, max = (DB_SLOTS - 2) * d->o.interval;

	if (qparam(target, tlen, "window", v, sizeof(v)))
		w = strtod(v, NULL);
	if (!(w >= 1))
		w = 1;
	if (w > max)
		w = max;
	return w;
}

static void status_json(struct dashboard *d, struct strbuf *out)
{
	pthread_mutex_lock(&d->lock);
	strbuf_puts(out, "{\"controller\":");
	strbuf_json_str(out, d->controller);
	strbuf_puts(out, ",\"registry_error\":");
	strbuf_json_str(out, d->registry_err);
	strbuf_puts(out, ",\"metrics_from\":");
	strbuf_json_str(out, d->prometheus ? d->prometheus : "proxies");
	strbuf_printf(out, ",\"targets\":%zu,\"rounds\":%u,\"series\":%zu,\"series_dropped\":%zu,\"bad_metric_lines\":%llu,"
	              "\"interval\":", d->n_targets, d->rounds, d->series.n, d->series_dropped,
	              (unsigned long long)d->samples_bad);
	jw_num(out, d->o.interval);
	strbuf_puts(out, ",\"last_round_ago\":");
	jw_num(out, d->rounds ? wall_now() - d->last_round_wall : -1);
	pthread_mutex_unlock(&d->lock);
	strbuf_printf(out, ",\"spans\":%zu,\"span_bytes\":%zu,\"spans_received\":%llu,\"spans_dropped\":%llu,"
	              "\"span_posts_rejected\":%llu,\"rss_kib\":%ld,\"auth\":%s}\n",
	              d->n_spans, d->span_bytes, (unsigned long long)d->spans_received,
	              (unsigned long long)d->spans_dropped, (unsigned long long)d->spans_rejected_posts, buf_rss_kib(),
	              d->token || d->basic ? "true" : "false");
}

static int route(struct dconn *c, const struct http1_msg *m, const char *body, size_t body_len,
                 struct strbuf *out, const char **ctype)
{
	struct dashboard *d = c->d;
	const char *t = m->target;
	size_t plen = m->target_len;
	const char *q = memchr(t, '?', m->target_len);
	int post = http1_ieq(m->method, m->method_len, "post");
	char v[256];

	if (q)
		plen = (size_t)(q - t);
#define PATH_IS(p) (plen == sizeof(p) - 1 && !memcmp(t, p, plen))
	if (PATH_IS("/api/v2/spans")) {
		if (!post) {
			strbuf_puts(out, "POST a JSON array of Zipkin v2 spans here\n");
			return 405;
		}
		return spans_post(d, body, body_len, out);
	}
	if (post) {
		strbuf_puts(out, "read-only: only POST /api/v2/spans is accepted\n");
		return 405;
	}
	*ctype = "application/json";
	if (PATH_IS("/api/graph")) {
		graph_json(d, window_param(d, t, m->target_len), out);
		return 200;
	}
	if (PATH_IS("/api/services")) {
		services_json(d, window_param(d, t, m->target_len), out);
		return 200;
	}
	if (PATH_IS("/api/stat") || PATH_IS("/api/edges")) {
		char from[128], to[128];
		int by_svc = 0;

		if (qparam(t, m->target_len, "by", v, sizeof(v)) && (by_svc = !strcmp(v, "svc")) == 0 && strcmp(v, "deploy")) {
			*ctype = "text/plain; charset=utf-8";
			strbuf_puts(out, "by: deploy or svc\n");
			return 400;
		}
		if (PATH_IS("/api/edges"))
			edges_json(d, by_svc, window_param(d, t, m->target_len), out);
		else
			stat_json(d, by_svc, qparam(t, m->target_len, "from", from, sizeof(from)),
			          qparam(t, m->target_len, "to", to, sizeof(to)), window_param(d, t, m->target_len), out);
		return 200;
	}
	if (PATH_IS("/api/config")) {
		config_json(d, out);
		return 200;
	}
	if (PATH_IS("/api/status")) {
		status_json(d, out);
		return 200;
	}
	if (PATH_IS("/api/traces")) {
		char svc[128] = "", lim[16];
		double min_ms = 0;
		size_t limit = 20;

		qparam(t, m->target_len, "service", svc, sizeof(svc));
		if (qparam(t, m->target_len, "min_ms", v, sizeof(v)))
			min_ms = strtod(v, NULL);
		if (qparam(t, m->target_len, "limit", lim, sizeof(lim)) && atoi(lim) > 0)
			limit = (size_t)atoi(lim) > 500 ? 500 : (size_t)atoi(lim);
		traces_list(d, svc, min_ms,
		            qparam(t, m->target_len, "error", v, sizeof(v)) && (!strcmp(v, "1") || !strcmp(v, "true")), limit,
		            out);
		return 200;
	}
	if (plen > 11 && !memcmp(t, "/api/trace/", 11))
		return trace_get(d, t + 11, plen - 11, out);
	if (PATH_IS("/") || PATH_IS("/index.html")) {
		*ctype = "text/html; charset=utf-8";
		strbuf_append(out, dashboard_page, dashboard_page_len);
		return 200;
	}
	*ctype = "text/plain; charset=utf-8";
	if (PATH_IS("/ready")) {
		strbuf_puts(out, "ready\n");
		return 200;
	}
	strbuf_puts(out, "not found: / /api/graph /api/services /api/stat /api/edges /api/config /api/traces /api/trace/ID /api/status "
	                 "POST /api/v2/spans\n");
	return 404;
#undef PATH_IS
}

static void dconn_handle(struct dconn *c)
{
	struct http1_header hdrs[64];
	struct http1_limits lim = { DC_MAX_HEAD, DC_MAX_HEAD, 64 };
	struct http1_msg m;
	struct strbuf body = { 0 };
	const char *ctype = "text/plain; charset=utf-8";
	int r, status, head, post;

	memset(&m, 0, sizeof(m));
	c->keep = 0;
	r = http1_parse_request(c->in, c->in_len, &m, hdrs, &lim);
	if (r == -2) {
		if (c->in_len >= DC_MAX_HEAD)
			goto bad;
		return;
	}
	if (r < 0)
		goto bad;
	head = http1_ieq(m.method, m.method_len, "head");
	post = http1_ieq(m.method, m.method_len, "post");
	if (!head && !post && !http1_ieq(m.method, m.method_len, "get")) {
		strbuf_puts(&body, "GET, HEAD, or POST /api/v2/spans\n");
		respond(c, 405, ctype, &body, 0);
		return;
	}
	if (!host_ok(c->d, &m)) {
		strbuf_puts(&body, "this dashboard listens on a loopback address and answers only to localhost names\n");
		respond(c, 403, ctype, &body, 0);
		return;
	}
	if (!authorized(c->d, &m)) {
		strbuf_puts(&body, "authorization required: Authorization: Bearer TOKEN (or basic auth)\n");
		respond(c, 401, ctype, &body, 0);
		return;
	}
	if (post) {
		if (m.body == HTTP1_BODY_CHUNKED) {
			strbuf_puts(&body, "send the spans with a Content-Length\n");
			respond(c, 411, ctype, &body, 0);
			return;
		}
		if (m.body == HTTP1_BODY_LENGTH && m.content_length > SPAN_MAX_POST) {
			strbuf_printf(&body, "at most %u bytes of spans per POST\n", SPAN_MAX_POST);
			respond(c, 413, ctype, &body, 0);
			return;
		}
		c->head_len = (size_t)r;
		c->body_len = m.body == HTTP1_BODY_LENGTH ? (size_t)m.content_length : 0;
		if (c->in_len < c->head_len + c->body_len)
			return;   /* more body to come: conn_cb calls again */
	}
	/* the connection stays for the next request when the client allows it and
	 * the whole of this one is read (a body only comes with a POST) */
	c->req_len = (size_t)r + c->body_len;
	c->keep = !(m.flags & HTTP1_F_CONN_CLOSE) && (post || m.body == HTTP1_BODY_NONE);
	status = route(c, &m, c->in + r, c->body_len, &body, &ctype);
	respond(c, status, ctype, &body, head);
	return;
bad:
	strbuf_printf(&body, "bad request%s%s\n", m.err_reason ? ": " : "", m.err_reason ? m.err_reason : "");
	respond(c, 400, ctype, &body, 0);
}

/* the answer is written: close, or wait for the next request on a kept connection
 * (what a client pipelined after this request is already in c->in) */
static void dconn_next(struct dconn *c)
{
	if (!c->keep) {
		dconn_close(c);
		return;
	}
	c->keep = 0;
	c->served = 1;
	strbuf_free(&c->out);
	memset(&c->out, 0, sizeof(c->out));
	c->out_off = 0;
	memmove(c->in, c->in + c->req_len, c->in_len - c->req_len);
	c->in_len -= c->req_len;
	c->req_len = c->head_len = c->body_len = 0;
	ev_io_stop(c->d->loop, &c->io);
	ev_io_set(&c->io, c->fd, EV_READ);
	ev_io_start(c->d->loop, &c->io);
	ev_timer_stop(c->d->loop, &c->timer);
	ev_timer_set(&c->timer, DC_TIMEOUT, 0.);   /* the next request has as long as the first */
	ev_timer_start(c->d->loop, &c->timer);
	if (c->in_len)
		dconn_handle(c);
}

static void dconn_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct dconn *c = (struct dconn *)w;
	size_t want;
	ssize_t n;

	(void)loop;
	(void)revents;
	if (c->out.len) {
		n = write(c->fd, c->out.p + c->out_off, c->out.len - c->out_off);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			dconn_close(c);
			return;
		}
		c->out_off += (size_t)n;
		if (c->out_off == c->out.len)
			dconn_next(c);
		return;
	}
	want = c->head_len ? c->head_len + c->body_len : DC_MAX_HEAD;
	if (c->in_cap < want) {
		char *ni = realloc(c->in, want);

		if (!ni) {
			dconn_close(c);
			return;
		}
		c->in = ni;
		c->in_cap = want;
	}
	n = read(c->fd, c->in + c->in_len, want - c->in_len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		dconn_close(c);
		return;
	}
	c->in_len += (size_t)n;
	if (c->head_len) {
		if (c->in_len == c->head_len + c->body_len) {
			/* the whole body is here: parse the head again (it is unchanged) and answer */
			c->head_len = 0;
			dconn_handle(c);
		}
		return;
	}
	dconn_handle(c);
}

static void dconn_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	dconn_close((struct dconn *)((char *)w - offsetof(struct dconn, timer)));
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct dashboard *d = (struct dashboard *)((char *)w - offsetof(struct dashboard, lio));
	struct dconn *c;
	char ip[46];
	int fd, i;

	(void)revents;
	for (i = 0; i < 16; i++) {
		fd = net_accept(d->lio.fd, ip);
		if (fd < 0)
			return;
		if (d->n_conns >= DC_MAX_CONNS) {
			/* full: a kept connection waiting between requests makes room */
			for (c = d->conns; c && !(c->served && !c->in_len && !c->out.len); c = c->next)
				;
			if (!c) {
				close(fd);
				continue;
			}
			dconn_close(c);
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			return;
		}
		c->fd = fd;
		c->d = d;
		c->next = d->conns;
		d->conns = c;
		d->n_conns++;
		ev_io_init(&c->io, dconn_cb, fd, EV_READ);
		ev_io_start(loop, &c->io);
		ev_timer_init(&c->timer, dconn_timeout, DC_TIMEOUT, 0.);
		ev_timer_start(loop, &c->timer);
	}
}

/* ================================================================== start / stop */

static char *dup_or_null(const char *s)
{
	return s && *s ? strdup(s) : NULL;
}

struct dashboard *dashboard_start(struct ev_loop *loop, const struct dashboard_opts *o, char *err, size_t errlen)
{
	struct dashboard *d = calloc(1, sizeof(*d));
	struct conf_addr a;
	pthread_condattr_t ca;
	int fd;

	if (!d) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	d->loop = loop;
	d->started_wall = wall_now();
	d->o = *o;
	if (!(d->o.interval > 0))
		d->o.interval = 5;
	if (d->o.interval < 0.2)
		d->o.interval = 0.2;
	if (!(d->o.warn_rate > 0))
		d->o.warn_rate = 0.01;
	if (!(d->o.bad_rate > 0))
		d->o.bad_rate = 0.10;
	if (!d->o.max_spans)
		d->o.max_spans = 10000;
	if (!d->o.max_span_bytes)
		d->o.max_span_bytes = 4u << 20;
	d->mesh_path = dup_or_null(o->mesh_path);
	d->controller = strdup(o->controller && *o->controller ? o->controller : "127.0.0.1:15014");
	d->prometheus = dup_or_null(o->prometheus && *o->prometheus ? o->prometheus : NULL);
	d->o.prometheus = d->prometheus;
	d->token = dup_or_null(o->token);
	d->basic = dup_or_null(o->basic);
	d->listen_text = strdup(o->listen && *o->listen ? o->listen : "127.0.0.1:20001");
	d->spans = calloc(d->o.max_spans, sizeof(*d->spans));
	pthread_mutex_init(&d->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&d->wake, &ca);
	pthread_condattr_destroy(&ca);
	d->lio.fd = -1;
	if (!d->controller || !d->listen_text || !d->spans) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	memset(&a, 0, sizeof(a));
	if (d->prometheus && conf_parse_addr(d->prometheus, &a, 1) < 0) {
		snprintf(err, errlen, "bad Prometheus address '%s' (HOST:PORT, e.g. 127.0.0.1:9090)", d->prometheus);
		goto fail;
	}
	memset(&a, 0, sizeof(a));
	if (conf_parse_addr(d->listen_text, &a, 1) < 0) {
		snprintf(err, errlen, "bad listen address '%s'", d->listen_text);
		goto fail;
	}
	fd = net_listen((struct sockaddr *)&a.ss, a.len);
	if (fd < 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", d->listen_text, strerror(errno));
		goto fail;
	}
	ev_io_init(&d->lio, accept_cb, fd, EV_READ);
	ev_io_start(loop, &d->lio);
	if (pthread_create(&d->thread, NULL, scraper_main, d)) {
		snprintf(err, errlen, "cannot start the scraper thread");
		goto fail;
	}
	d->thread_started = 1;
	return d;
fail:
	dashboard_stop(d);
	return NULL;
}

void dashboard_stop(struct dashboard *d)
{
	size_t i;

	if (!d)
		return;
	if (d->thread_started) {
		pthread_mutex_lock(&d->lock);
		d->stopping = 1;
		pthread_cond_signal(&d->wake);
		pthread_mutex_unlock(&d->lock);
		pthread_join(d->thread, NULL);
	}
	while (d->conns)
		dconn_close(d->conns);
	if (d->lio.fd >= 0) {
		ev_io_stop(d->loop, &d->lio);
		close(d->lio.fd);
	}
	kmap_free(&d->series, free);
	for (i = 0; i < d->n_targets; i++)
		target_free(d->targets[i]);
	free(d->targets);
	free(d->registry);
	while (d->n_spans)
		ring_evict(d);
	free(d->spans);
	pthread_cond_destroy(&d->wake);
	pthread_mutex_destroy(&d->lock);
	free(d->mesh_path);
	free(d->controller);
	free(d->prometheus);
	free(d->token);
	free(d->basic);
	free(d->listen_text);
	free(d);
}

/* ================================================================== mesh dashboard */

struct ini_ctl {
	char admin[128];
	int dashboard;               /* the file has a [dashboard] section */
};

/* what a mesh.ini with errors still tells: the controller's admin address */
static int ini_ctl_cb(void *user, const char *section, const char *name, const char *value, int lineno)
{
	struct ini_ctl *c = user;

	(void)lineno;
	if (section && !strcmp(section, "dashboard"))
		c->dashboard = 1;
	if (section && name && value && !strcmp(section, "controller") && !strcmp(name, "admin"))
		snprintf(c->admin, sizeof(c->admin), "%s", value);
	return 1;
}

int dashboard_opts_conf(struct dashboard_opts *o, const struct conf_dashboard *cd, char *secrets[2], char *err,
                        size_t errlen)
{
	const char *file[2] = { cd->token_file, cd->basic_file }, *key[2] = { "token_file", "basic_file" };
	char why[64];
	int i;

	secrets[0] = secrets[1] = NULL;
	if (!o->listen && cd->listen.set)
		o->listen = cd->listen.text;
	if (!o->prometheus && cd->prometheus.set)
		o->prometheus = cd->prometheus.text;
	if (!o->interval && cd->interval)
		o->interval = cd->interval / 1000.0;
	if (!o->warn_rate && cd->warn_errors > 0)
		o->warn_rate = cd->warn_errors / 100;
	if (!o->bad_rate && cd->bad_errors > 0)
		o->bad_rate = cd->bad_errors / 100;
	if (!o->max_spans)
		o->max_spans = cd->max_spans;
	if (!o->max_span_bytes)
		o->max_span_bytes = cd->max_span_bytes;
	for (i = 0; i < 2; i++) {
		if (!file[i] || (i == 0 ? o->token : o->basic))
			continue;
		if (!(secrets[i] = buf_read_line(file[i], 1024, why, sizeof(why)))) {
			snprintf(err, errlen, "[dashboard] %s %s: %s", key[i], file[i], why);
			goto fail;
		}
		if (i == 1 && !strchr(secrets[i], ':')) {
			snprintf(err, errlen, "[dashboard] basic_file %s: its line must be USER:PASSWORD", file[i]);
			goto fail;
		}
		if (i == 0)
			o->token = secrets[i];
		else
			o->basic = secrets[i];
	}
	return 0;
fail:
	free(secrets[0]);
	free(secrets[1]);
	secrets[0] = secrets[1] = NULL;
	return -1;
}

static int usage(FILE *f)
{
	fprintf(f, "usage: mesh dashboard [-c mesh.ini] [flags]\n\n"
	           "  -c FILE              mesh.ini: the controller's admin address ([controller] admin,\n"
	           "                       default 127.0.0.1:15014), the config tab's checks, and the\n"
	           "                       [dashboard] section's settings (the flags below win)\n"
	           "  --listen ADDR        where the page and the API listen (default 127.0.0.1:20001)\n"
	           "  --controller ADDR    the controller's admin address (overrides mesh.ini)\n"
	           "  --prometheus ADDR    read the proxies' metrics from this Prometheus (HOST:PORT)\n"
	           "                       instead of scraping them (instance = their admin address)\n"
	           "  --token T            require Authorization: Bearer T (or basic auth with password T)\n"
	           "  --basic USER:PASS    require basic auth\n"
	           "  --interval D         between scrapes of every proxy's /metrics (default 5s)\n"
	           "  --warn-errors PCT    an edge is orange above this error rate (default 1)\n"
	           "  --bad-errors PCT     ... and red above this one (default 10)\n"
	           "  --max-spans N        spans kept (default 10000) ...\n"
	           "  --max-span-bytes S   ... and their bytes (default 4m)\n\n"
	           "The page: http://127.0.0.1:20001/; the API and tracing: docs/dashboard.md.\n");
	return f == stdout ? 0 : 2;
}

static struct ev_loop *main_loop;

static void stop_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

int dashboard_main(int argc, char **argv)
{
	struct dashboard_opts o;
	struct ini_ctl ic;
	struct dashboard *d;
	struct conf *cf = NULL;       /* mesh.ini's, until dashboard_start has copied what it needs */
	char *secrets[2] = { NULL, NULL };
	ev_signal sint, sterm;
	char err[300];
	uint32_t ms;
	size_t sz;
	int i;

	memset(&o, 0, sizeof(o));
	memset(&ic, 0, sizeof(ic));
	log_prefix = "dashboard";
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "-h") || !strcmp(a, "--help"))
			return usage(stdout);
		if (!v) {
			fprintf(stderr, "mesh dashboard: %s needs a value (or is unknown)\n", a);
			return usage(stderr);
		}
		i++;
		if (!strcmp(a, "-c")) {
			o.mesh_path = v;
		} else if (!strcmp(a, "--listen")) {
			o.listen = v;
		} else if (!strcmp(a, "--controller")) {
			o.controller = v;
		} else if (!strcmp(a, "--prometheus")) {
			o.prometheus = v;
		} else if (!strcmp(a, "--token")) {
			o.token = v;
		} else if (!strcmp(a, "--basic")) {
			if (!strchr(v, ':')) {
				fprintf(stderr, "mesh dashboard: --basic wants USER:PASSWORD\n");
				return 2;
			}
			o.basic = v;
		} else if (!strcmp(a, "--interval")) {
			if (conf_parse_duration(v, &ms) < 0 || ms < 200 || ms > 600000) {
				fprintf(stderr, "mesh dashboard: --interval wants a duration from 200ms to 10m\n");
				return 2;
			}
			o.interval = ms / 1000.0;
		} else if (!strcmp(a, "--warn-errors") || !strcmp(a, "--bad-errors")) {
			double pct = strtod(v, NULL);

			if (!(pct > 0 && pct <= 100)) {
				fprintf(stderr, "mesh dashboard: %s wants a percent (0 < PCT <= 100)\n", a);
				return 2;
			}
			if (a[2] == 'w')
				o.warn_rate = pct / 100;
			else
				o.bad_rate = pct / 100;
		} else if (!strcmp(a, "--max-spans")) {
			o.max_spans = (size_t)strtoul(v, NULL, 10);
			if (!o.max_spans || o.max_spans > 1000000) {
				fprintf(stderr, "mesh dashboard: --max-spans wants 1 to 1000000\n");
				return 2;
			}
		} else if (!strcmp(a, "--max-span-bytes")) {
			if (conf_parse_size(v, &sz) < 0 || sz < 65536 || sz > (1024u << 20)) {
				fprintf(stderr, "mesh dashboard: --max-span-bytes wants 64k to 1g\n");
				return 2;
			}
			o.max_span_bytes = sz;
		} else {
			fprintf(stderr, "mesh dashboard: unknown flag %s\n", a);
			return usage(stderr);
		}
	}
	if (o.mesh_path) {
		char cerr[2048];

		if (ini_parse(o.mesh_path, ini_ctl_cb, &ic) < 0) {
			fprintf(stderr, "mesh dashboard: cannot read %s: %s\n", o.mesh_path, strerror(errno));
			return 1;
		}
		if ((cf = conf_load(o.mesh_path, cerr, sizeof(cerr)))) {
			if (cf->controller.admin.set)
				snprintf(ic.admin, sizeof(ic.admin), "%s", cf->controller.admin.text);
			if (dashboard_opts_conf(&o, &cf->dashboard, secrets, err, sizeof(err)) < 0) {
				fprintf(stderr, "mesh dashboard: %s\n", err);
				conf_unref(cf);
				return 1;
			}
		} else if (ic.dashboard) {
			/* its settings (a token, say) would be ignored: better not start */
			fprintf(stderr, "mesh dashboard: %s has a [dashboard] section but does not load:\n%s\n"
			                "fix it (mesh check -c %s shows every problem) and start again\n",
			        o.mesh_path, cerr, o.mesh_path);
			return 1;
		}
		/* other errors are the config tab's business: keep going */
	}
	if (!o.controller && ic.admin[0])
		o.controller = ic.admin;
	signal(SIGPIPE, SIG_IGN);
	main_loop = ev_default_loop(EVFLAG_AUTO);
	d = dashboard_start(main_loop, &o, err, sizeof(err));
	conf_unref(cf);
	if (!d) {
		fprintf(stderr, "mesh dashboard: %s\n", err);
		free(secrets[0]);
		free(secrets[1]);
		return 1;
	}
	if (!o.token && !o.basic && strncmp(d->listen_text, "127.", 4) && strncmp(d->listen_text, "[::1]", 5))
		log_warn("listening on %s without --token or --basic: anyone who can reach it reads the mesh",
		         d->listen_text);
	log_info("listening on http://%s/ (controller %s, scraping every %gs%s)", d->listen_text, d->controller,
	         d->o.interval, d->token || d->basic ? ", authorization required" : "");
	ev_signal_init(&sint, stop_cb, SIGINT);
	ev_signal_init(&sterm, stop_cb, SIGTERM);
	ev_signal_start(main_loop, &sint);
	ev_signal_start(main_loop, &sterm);
	ev_run(main_loop, 0);
	ev_signal_stop(main_loop, &sint);
	ev_signal_stop(main_loop, &sterm);
	dashboard_stop(d);
	free(secrets[0]);
	free(secrets[1]);
	log_info("stopped");
	return 0;
}

/* ================================================================== mesh stat, mesh edges */

/*
 * Terminal views of /api/stat and /api/edges (linkerd viz stat / edges). The
 * dashboard is the data source: it already scrapes every proxy and keeps the
 * windows, so the commands answer at once instead of sampling the proxies
 * for a window of their own (docs/stat.md).
 */

#define STAT_DEFAULT_DASHBOARD "127.0.0.1:20001"

struct stat_opts {
	int edges, by_svc;
	const char *from, *to, *dashboard, *token, *conf;
	double window;
	char *secrets[2];            /* read from [dashboard] token_file / basic_file */
	char *listen;                /* a copy of [dashboard] listen */
};

static void stat_opts_free(struct stat_opts *o)
{
	free(o->secrets[0]);
	free(o->secrets[1]);
	free(o->listen);
	o->secrets[0] = o->secrets[1] = o->listen = NULL;
}

static int stat_usage(FILE *f, int edges)
{
	if (edges)
		fprintf(f, "usage: mesh edges [deploy|svc] [--window D] [-c mesh.ini | --dashboard ADDR] [--token T]\n\n"
		           "Each pair of workloads (deploy: service and version, the default) or services (svc) that\n"
		           "talked over the window: SRC, DST, the SPIFFE identities their mTLS requests carried, and\n"
		           "SECURED: yes when every request was mTLS, else why not.\n");
	else
		fprintf(f, "usage: mesh stat [deploy|svc] [--from NAME | --to NAME] [--window D]\n"
		           "                 [-c mesh.ini | --dashboard ADDR] [--token T]\n\n"
		           "One row per workload (deploy: service and version, e.g. reviews-v2; the default) or per\n"
		           "service (svc): MESHED (proxies registered / endpoints), SUCCESS (non-5xx share), RPS and\n"
		           "LATENCY_P50/P95/P99 over the window, TCP_CONN (connections open now). Without --from/--to,\n"
		           "the requests each one received; --from NAME: only those NAME sent, a row per destination;\n"
		           "--to NAME: only those sent to NAME, a row per caller. NAME is a service (all its versions)\n"
		           "or a workload (service-version); callers outside the mesh are 'unknown'.\n");
	fprintf(f, "\n  --window D        the window (default 1m, at most 62 of the dashboard's scrape intervals)\n"
	           "  -c FILE           mesh.ini: the dashboard's address and token from its [dashboard]\n"
	           "                    section (listen, token_file)\n"
	           "  --dashboard ADDR  the dashboard that scrapes the proxies (default %s): `mesh up` runs\n"
	           "                    one there, or `mesh dashboard -c mesh.ini`\n"
	           "  --token T         the dashboard's token\n\n"
	           "Details: docs/stat.md.\n", STAT_DEFAULT_DASHBOARD);
	return f == stdout ? 0 : 2;
}

/* a service or workload name: what the URL may carry as it is */
static int stat_name_ok(const char *s)
{
	if (!*s || strlen(s) > 120)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || strchr("-._", *s)))
			return 0;
	return 1;
}

/* -1: go on; else the exit status */
static int stat_args(int argc, char **argv, struct stat_opts *o)
{
	const char *cmd = o->edges ? "mesh edges" : "mesh stat";
	uint32_t ms;
	int i, kind = 0;

	o->window = 60;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "-h") || !strcmp(a, "--help"))
			return stat_usage(stdout, o->edges);
		if (a[0] != '-') {
			if (kind++ || (strcmp(a, "deploy") && strcmp(a, "svc"))) {
				fprintf(stderr, "%s: '%s': the resource kind is deploy or svc (once)\n", cmd, a);
				return stat_usage(stderr, o->edges);
			}
			o->by_svc = !strcmp(a, "svc");
			continue;
		}
		if (!v) {
			fprintf(stderr, "%s: %s needs a value (or is unknown)\n", cmd, a);
			return stat_usage(stderr, o->edges);
		}
		i++;
		if (!strcmp(a, "--window")) {
			if (conf_parse_duration(v, &ms) < 0 || ms < 1000 || ms > 3600000) {
				fprintf(stderr, "%s: --window wants a duration from 1s to 1h (e.g. 30s, 1m)\n", cmd);
				return 2;
			}
			o->window = ms / 1000.0;
		} else if (!strcmp(a, "--dashboard")) {
			o->dashboard = v;
		} else if (!strcmp(a, "-c")) {
			o->conf = v;
		} else if (!strcmp(a, "--token")) {
			o->token = v;
		} else if (!o->edges && (!strcmp(a, "--from") || !strcmp(a, "--to"))) {
			if (!stat_name_ok(v)) {
				fprintf(stderr, "%s: %s '%s': a service or workload name (letters, digits, '-', '.', '_')\n", cmd, a, v);
				return 2;
			}
			if (a[2] == 'f')
				o->from = v;
			else
				o->to = v;
		} else {
			fprintf(stderr, "%s: unknown flag %s\n", cmd, a);
			return stat_usage(stderr, o->edges);
		}
	}
	if (o->from && o->to) {
		fprintf(stderr, "%s: --from and --to exclude each other (as in linkerd viz stat)\n", cmd);
		return 2;
	}
	if (o->conf) {
		/* [dashboard] listen and token_file, unless the flags say otherwise */
		struct dashboard_opts d;
		char err[2048];
		struct conf *cf = conf_load(o->conf, err, sizeof(err));

		if (!cf) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
		memset(&d, 0, sizeof(d));
		d.listen = o->dashboard;
		d.token = o->token;
		if (!o->dashboard && cf->dashboard.off) {
			fprintf(stderr, "%s: %s says [dashboard] listen = off: no dashboard to read. Start one with `mesh dashboard "
			        "-c %s --listen ADDR` and give --dashboard ADDR\n", cmd, o->conf, o->conf);
			conf_unref(cf);
			return 1;
		}
		if (dashboard_opts_conf(&d, &cf->dashboard, o->secrets, err, sizeof(err)) < 0) {
			fprintf(stderr, "%s: %s\n", cmd, err);
			conf_unref(cf);
			return 1;
		}
		if (!o->dashboard && d.listen)
			o->dashboard = o->listen = strdup(d.listen);
		o->token = d.token;
		conf_unref(cf);
	}
	if (!o->dashboard)
		o->dashboard = STAT_DEFAULT_DASHBOARD;
	return -1;
}

/* prints rows of cells (row 0 = the header) in columns two spaces apart */
static void stat_table(char ***cells, size_t rows, int cols)
{
	size_t w[16] = { 0 }, r;
	int c;

	for (r = 0; r < rows; r++)
		for (c = 0; c < cols && c < 16; c++)
			if (strlen(cells[r][c]) > w[c])
				w[c] = strlen(cells[r][c]);
	for (r = 0; r < rows; r++) {
		for (c = 0; c + 1 < cols && c < 16; c++)
			printf("%-*s  ", (int)w[c], cells[r][c]);
		printf("%s\n", cells[r][c]);
	}
}

/* a number member of object o, NAN when null or absent */
static double stat_num(const struct dj_doc *doc, int o, const char *key)
{
	int i = dj_get(doc, o, key);

	return i >= 0 && doc->n[i].type == DJ_NUM ? doc->n[i].num : NAN;
}

static void stat_ms(char *out, size_t cap, double v)
{
	if (isnan(v))
		snprintf(out, cap, "-");
	else
		snprintf(out, cap, v < 10 ? "%.2fms" : "%.0fms", v);
}

static int stat_run(int argc, char **argv, int edges)
{
	static const char *hs[] = { "NAME", "MESHED", "SUCCESS", "RPS", "LATENCY_P50", "LATENCY_P95", "LATENCY_P99",
		                    "TCP_CONN" };
	static const char *he[] = { "SRC", "DST", "SRC_IDENTITY", "DST_IDENTITY", "SECURED" };
	const char *cmd = edges ? "mesh edges" : "mesh stat";
	struct stat_opts o;
	struct strbuf b = { 0 };
	struct dj_doc doc;
	char path[512], err[400], ***cells = NULL;
	int rc, arr, p, cols = edges ? 5 : 8, c;
	size_t rows = 0, r;

	memset(&o, 0, sizeof(o));
	o.edges = edges;
	if ((rc = stat_args(argc, argv, &o)) >= 0) {
		stat_opts_free(&o);
		return rc;
	}
	snprintf(path, sizeof(path), "/api/%s?by=%s&window=%g%s%s%s%s", edges ? "edges" : "stat", o.by_svc ? "svc" : "deploy",
	         o.window, o.from ? "&from=" : "", o.from ? o.from : "", o.to ? "&to=" : "", o.to ? o.to : "");
	if (http_get(o.dashboard, path, o.token, 10, collect_body, &b, err, sizeof(err)) < 0 || !b.p) {
		if (strstr(err, "status 401"))
			fprintf(stderr, "%s: the dashboard at %s wants a token: --token T (its --token)\n", cmd, o.dashboard);
		else
			fprintf(stderr, "%s: cannot read the dashboard at %s (%s).\n"
			        "It is the data source: start one with `mesh up -c mesh.ini` (it serves the dashboard on %s\n"
			        "unless --dashboard off) or `mesh dashboard -c mesh.ini`, or give its address with --dashboard ADDR.\n",
			        cmd, o.dashboard, err[0] ? err : "empty answer", STAT_DEFAULT_DASHBOARD);
		strbuf_free(&b);
		stat_opts_free(&o);
		return 1;
	}
	if (dj_parse(&doc, b.p, b.len, 200000) < 0 || (arr = dj_get(&doc, 0, edges ? "edges" : "rows")) < 0 ||
	    doc.n[arr].type != DJ_ARR) {
		fprintf(stderr, "%s: the dashboard at %s answered something else than /api/%s (%s): is it a mesh dashboard?\n",
		        cmd, o.dashboard, edges ? "edges" : "stat", doc.err ? doc.err : "no list");
		dj_free(&doc);
		strbuf_free(&b);
		stat_opts_free(&o);
		return 1;
	}
	if (*dj_str(&doc, 0, "registry_error"))
		fprintf(stderr, "%s: the dashboard cannot read the registry: %s\n", cmd, dj_str(&doc, 0, "registry_error"));
	if (!(stat_num(&doc, 0, "covered_seconds") > 0))
		fprintf(stderr, "%s: the dashboard has not scraped the proxies twice yet: no window to measure, try again "
		        "in a few seconds\n", cmd);
	for (p = doc.n[arr].child, rows = 1; p >= 0; p = doc.n[p].next)
		rows++;
	cells = calloc(rows, sizeof(*cells));
	for (r = 0; cells && r < rows; r++)
		if (!(cells[r] = calloc((size_t)cols, sizeof(**cells)))) {
			rows = r;
			break;
		}
	for (c = 0; cells && rows && c < cols; c++)
		cells[0][c] = strdup(edges ? he[c] : hs[c]);
	for (p = doc.n[arr].child, r = 1; cells && p >= 0 && r < rows; p = doc.n[p].next, r++) {
		char v[8][400];
		double req = stat_num(&doc, p, "requests"), x;

		if (edges) {
			snprintf(v[0], sizeof(v[0]), "%s", dj_str(&doc, p, "source"));
			snprintf(v[1], sizeof(v[1]), "%s", dj_str(&doc, p, "destination"));
			snprintf(v[2], sizeof(v[2]), "%s", *dj_str(&doc, p, "source_identity") ? dj_str(&doc, p, "source_identity") : "-");
			snprintf(v[3], sizeof(v[3]), "%s", *dj_str(&doc, p, "destination_identity") ? dj_str(&doc, p, "destination_identity") : "-");
			if (dj_get(&doc, p, "secured") >= 0 && doc.n[dj_get(&doc, p, "secured")].type == DJ_TRUE)
				snprintf(v[4], sizeof(v[4]), "yes");
			else
				snprintf(v[4], sizeof(v[4]), "no (%s)", dj_str(&doc, p, "reason"));
		} else {
			snprintf(v[0], sizeof(v[0]), "%s", dj_str(&doc, p, "name"));
			if (stat_num(&doc, p, "endpoints") > 0)
				snprintf(v[1], sizeof(v[1]), "%.0f/%.0f", stat_num(&doc, p, "meshed"), stat_num(&doc, p, "endpoints"));
			else
				snprintf(v[1], sizeof(v[1]), "-");
			x = stat_num(&doc, p, "success");
			snprintf(v[2], sizeof(v[2]), isnan(x) || !(req > 0) ? "-" : "%.2f%%", x * 100);
			x = stat_num(&doc, p, "rps");
			snprintf(v[3], sizeof(v[3]), isnan(x) || !(req > 0) ? "-" : "%.2frps", x);
			stat_ms(v[4], sizeof(v[4]), req > 0 ? stat_num(&doc, p, "p50_ms") : NAN);
			stat_ms(v[5], sizeof(v[5]), req > 0 ? stat_num(&doc, p, "p95_ms") : NAN);
			stat_ms(v[6], sizeof(v[6]), req > 0 ? stat_num(&doc, p, "p99_ms") : NAN);
			snprintf(v[7], sizeof(v[7]), "%.0f", stat_num(&doc, p, "tcp_open"));
		}
		for (c = 0; c < cols; c++)
			cells[r][c] = strdup(v[c]);
	}
	for (r = 0, rc = 0; cells && r < rows; r++)
		for (c = 0; c < cols; c++)
			if (!cells[r][c])
				rc = 1;
	if (!cells || rc) {
		fprintf(stderr, "%s: out of memory\n", cmd);
		rc = 1;
	} else if (rows == 1) {
		printf("%s\n", edges ? "no requests between workloads in the window" : "no workload matches");
	} else {
		stat_table(cells, rows, cols);
	}
	for (r = 0; cells && r < rows; r++) {
		for (c = 0; c < cols; c++)
			free(cells[r][c]);
		free(cells[r]);
	}
	free(cells);
	dj_free(&doc);
	strbuf_free(&b);
	stat_opts_free(&o);
	return rc;
}

int dashboard_stat_main(int argc, char **argv)
{
	return stat_run(argc, argv, 0);
}

int dashboard_edges_main(int argc, char **argv)
{
	return stat_run(argc, argv, 1);
}
