/*
 * route: rule order, every match kind, weighted picks, rewrites, host kinds; the
 * compiled index (first match across indexed and walked blocks, header names in any
 * case, the regex prefilter) and a differential test against a plain walk in file
 * order over random rules and requests.
 */
#include <stdlib.h>
#include <string.h>

#include "../../modules/conf.c"
#include "../../modules/route.c"
#include "test.h"

static const char *MESH =
	"[workload]\n"
	"service = productpage\n"
	"labels = app=productpage, version=v1\n"
	"[service reviews]\n"
	"port = 9080\n"
	"endpoint = 127.0.0.1:9001 version=v1\n"
	"endpoint = 127.0.0.1:9002 version=v2\n"
	"endpoint = 127.0.0.1:9003 version=v3\n"
	"[service ratings]\n"
	"port = 9080\n"
	"endpoint = 127.0.0.1:9011\n"
	"[service productpage]\n"
	"port = 9080\n"
	"endpoint = 127.0.0.1:9021\n"
	"[destination reviews]\n"
	"subset.v1 = version=v1\n"
	"subset.v2 = version=v2\n"
	"subset.v3 = version=v3\n"
	"[route reviews/jason]\n"
	"match.header.end-user = jason\n"
	"to = v2\n"
	"[route reviews/prefix]\n"
	"match.header.x-group = prefix:beta\n"
	"to = v3\n"
	"[route reviews/regex]\n"
	"match.path = regex:/api/v[0-9]+/x\n"
	"to = v3\n"
	"[route reviews/present]\n"
	"match.header.x-debug = present\n"
	"match.method = POST\n"
	"to = v3\n"
	"[route reviews/query]\n"
	"match.query.user = regex:admin|root\n"
	"to = v1\n"
	"[route reviews/or]\n"
	"match.path = /a\n"
	"match.2.path = prefix:/old/\n"
	"rewrite.uri = /new/\n"
	"to = v1\n"
	"[route reviews/source]\n"
	"match.source = app=productpage\n"
	"match.header.x-src = yes\n"
	"to = v2\n"
	"[route reviews/default]\n"
	"to = v1 80, v2 20\n"
	"[route bookinfo.com/all]\n"
	"to = ratings\n"
	"[route wild]\n"
	"hosts = *.example.com\n"
	"to = reviews/v3\n";

static struct conf *cf;
static struct route_table *tbl;

static const struct conf_route *go(const char *host, const char *method, const char *target,
                                   const char *h1, const char *v1, int *block)
{
	struct http1_header hs[1];
	struct route_req r;
	const char *q = strchr(target, '?');
	int port_ok;
	const struct conf_service *svc = conf_find_service(cf, host, strlen(host), &port_ok);

	memset(&r, 0, sizeof(r));
	r.method = method;
	r.method_len = strlen(method);
	r.path = target;
	r.path_len = q ? (size_t)(q - target) : strlen(target);
	r.query = q ? q + 1 : NULL;
	r.query_len = q ? strlen(q + 1) : 0;
	if (h1) {
		hs[0].name = h1;
		hs[0].name_len = strlen(h1);
		hs[0].value = v1;
		hs[0].value_len = strlen(v1);
		r.headers = hs;
		r.n_headers = 1;
	}
	r.source = &cf->workload.labels;
	return route_match(cf, tbl, host, strlen(host), svc, &r, block);
}

static int is(const struct conf_route *rt, const char *name)
{
	return rt && !strcmp(rt->name, name);
}

/* ------------------------------------------------------------------ the index */

/* the matching as it was before the index: every rule in file order, conf structs only */
static int ref_block(const struct conf_match *m, const struct route_req *r)
{
	size_t i, j;

	if (m->method && !(strlen(m->method) == r->method_len && !memcmp(m->method, r->method, r->method_len)))
		return 0;
	if (m->has_path && !route_strmatch(&m->path, r->path, r->path_len))
		return 0;
	for (i = 0; i < m->n_headers; i++) {
		const struct conf_namematch *nm = &m->headers[i];
		size_t nl = strlen(nm->name);
		int ok = nm->m.kind == CONF_MATCH_ABSENT;

		for (j = 0; j < r->n_headers; j++)
			if (r->headers[j].name_len == nl && !strncasecmp(r->headers[j].name, nm->name, nl)) {
				ok = nm->m.kind == CONF_MATCH_ABSENT ? 0
				     : route_strmatch(&nm->m, r->headers[j].value, r->headers[j].value_len);
				break;
			}
		if (!ok)
			return 0;
	}
	for (i = 0; i < m->n_query; i++) {
		const struct conf_namematch *nm = &m->query[i];
		const char *p = r->query, *end = r->query ? r->query + r->query_len : NULL;
		size_t nl = strlen(nm->name);
		int ok = nm->m.kind == CONF_MATCH_ABSENT;

		while (p && p < end) {
			const char *amp = memchr(p, '&', (size_t)(end - p)), *se = amp ? amp : end;
			const char *eq = memchr(p, '=', (size_t)(se - p)), *ke = eq ? eq : se;

			if ((size_t)(ke - p) == nl && !memcmp(p, nm->name, nl)) {
				const char *v = eq ? eq + 1 : se;
				ok = nm->m.kind == CONF_MATCH_ABSENT ? 0 : route_strmatch(&nm->m, v, (size_t)(se - v));
				break;
			}
			p = amp ? amp + 1 : end;
		}
		if (!ok)
			return 0;
	}
	return 1;
}

static const struct conf_route *ref_match(const struct conf *c, const char *host, const struct route_req *r,
                                          int *block)
{
	size_t i, b;

	*block = -1;
	for (i = 0; i < c->n_routes; i++) {
		const struct conf_route *rt = &c->routes[i];

		if (strcmp(rt->hosts[0], host))
			continue;
		if (!rt->n_matches)
			return rt;
		for (b = 0; b < rt->n_matches; b++)
			if (ref_block(&rt->matches[b], r)) {
				*block = (int)b;
				return rt;
			}
	}
	return NULL;
}

static unsigned long long rng = 88172645463325252ull;
static unsigned rnd(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng % n);
}
#define PICK(a) (a[rnd(sizeof(a) / sizeof(a[0]))])

static const char *PATHS[] = { "/", "/a", "/a/b", "/a.b", "/axb", "/api/v1/items", "/api/v12/items-3", "/b",
                               "/api/v1/items/7", "/svc-1/x", "/ab", "" };
static const char *PATH_M[] = { "/a", "/a/b", "/api/v1/items", "/b", "prefix:/", "prefix:/a", "prefix:/api/",
                                "prefix:/api/v1/", "prefix:/svc-1/", "regex:/api/v[0-9]+/items(-[0-9])?",
                                "regex:/a|/b", "regex:(/a|/x)/b", "regex:x*/a", "regex:/a\\.b", "regex:/a.b",
                                "regex:/a/b$", "regex:[/]a/b", "regex:/ab?", "regex:/a{1,2}b", "regex:^/b",
                                "regex:/api/v1/item(s)?", "regex:.*b", "regex:/[^/]+/items/[0-9]+",
                                "exact:/ab", "prefix:/api/v1/items/" };
static const char *HNAMES[] = { "end-user", "x-a", "x-tenant", "accept" };
static const char *HNAMES_REQ[] = { "end-user", "End-User", "END-USER", "x-a", "X-A", "x-tenant", "accept",
                                    "x-other", "end-use" };
static const char *HVALS[] = { "jason", "bench", "Jason", "", "jas", "user-1", "*/*" };
static const char *HVAL_M[] = { "jason", "bench", "prefix:jas", "regex:j.*n", "regex:bench|jason", "present",
                                "absent", "exact:", "user-1", "regex:user-[0-9]" };
static const char *QUERIES[] = { NULL, "", "u=1", "user=root", "a=1&user=admin", "user", "u=1&u=2", "x=y&u=" };
static const char *QUERY_M[] = { "u=1", "user=regex:admin|root", "user=present", "u=absent", "x=exact:y",
                                 "u=exact:" };

/* one block of one to three conditions, each key at most once (conf refuses repeats) */
static void random_block(char *out, size_t cap, int n)
{
	char pre[16];
	size_t len = strlen(out);
	unsigned used = 0;
	int k, conds = 1 + (int)rnd(3);

	if (n == 1)
		snprintf(pre, sizeof(pre), "match.");
	else
		snprintf(pre, sizeof(pre), "match.%d.", n);
	for (k = 0; k < conds; k++) {
		unsigned what = rnd(8);
		const char *v;

		if (what == 1)
			what = 0;                     /* the path, twice as likely */
		if (used & 1u << what)
			continue;
		used |= 1u << what;
		switch (what) {
		case 0:
			len += (size_t)snprintf(out + len, cap - len, "%spath = %s\n", pre, PICK(PATH_M));
			break;
		case 2: case 3: case 4: case 5:       /* one of the header names */
			len += (size_t)snprintf(out + len, cap - len, "%sheader.%s = %s\n", pre, HNAMES[what - 2], PICK(HVAL_M));
			break;
		case 6:
			len += (size_t)snprintf(out + len, cap - len, "%smethod = %s\n", pre, rnd(2) ? "GET" : "POST");
			break;
		case 7:
			v = PICK(QUERY_M);
			len += (size_t)snprintf(out + len, cap - len, "%squery.%s\n", pre, v);
			break;
		}
	}
}

/* n random rules on host svc (conf may refuse a duplicate key: the caller retries) */
static char *random_conf(int n)
{
	size_t cap = 256 + (size_t)n * 600, len;
	char *s = malloc(cap);
	int i, b, nb;

	len = (size_t)snprintf(s, cap, "[service svc]\nport = 80\nendpoint = 127.0.0.1:9001\n");
	for (i = 0; i < n; i++) {
		len += (size_t)snprintf(s + len, cap - len, "[route svc/r%d]\n", i);
		nb = rnd(40) ? 1 + (int)rnd(3) : 0;    /* now and then a rule without match: it ends the walk */
		for (b = 1; b <= nb; b++)
			random_block(s, cap, b);
		len = strlen(s);
		len += (size_t)snprintf(s + len, cap - len, "to = svc\n");
	}
	return s;
}

static int differential(int rounds, int *compared)
{
	int round, q, bad = 0;

	for (round = 0; round < rounds; round++) {
		char err[4096], *text = random_conf(1 + (int)rnd(60));
		struct conf *c = conf_load_string("random.ini", text, err, sizeof(err));
		struct route_table *t;

		free(text);
		if (!c) {
			static int shown;
			if (shown++ < 3)
				printf("# refused: %.300s\n", err);
			continue;              /* e.g. the same key twice in a block */
		}
		t = route_table_build(c);
		if (!t) {
			conf_unref(c);
			return -1;
		}
		for (q = 0; q < 300; q++) {
			struct http1_header hs[4];
			struct route_req r;
			const char *qs = PICK(QUERIES);
			int nh = (int)rnd(5), k, b1, b2;
			const struct conf_route *a, *e;

			memset(&r, 0, sizeof(r));
			r.method = rnd(3) ? "GET" : "POST";
			r.method_len = strlen(r.method);
			r.path = PICK(PATHS);
			r.path_len = strlen(r.path);
			r.query = qs;
			r.query_len = qs ? strlen(qs) : 0;
			for (k = 0; k < nh; k++) {
				hs[k].name = PICK(HNAMES_REQ);
				hs[k].name_len = strlen(hs[k].name);
				hs[k].value = PICK(HVALS);
				hs[k].value_len = strlen(hs[k].value);
			}
			r.headers = hs;
			r.n_headers = (size_t)nh;
			a = route_match(c, t, "svc", 3, &c->services[0], &r, &b1);
			e = ref_match(c, "svc", &r, &b2);
			(*compared)++;
			if (a != e || b1 != b2) {
				if (bad++ < 5)
					printf("# differs: %s %s?%s (%d headers): index %s/%d, walk %s/%d\n", r.method, r.path,
					       qs ? qs : "", nh, a ? a->name : "-", b1, e ? e->name : "-", b2);
			}
		}
		route_table_free(t);
		conf_unref(c);
	}
	return bad;
}

static int pf_says(const char *re, const char *s)
{
	struct route_pf pf;
	int ok;

	if (pf_build(re, &pf) < 0)
		return -1;
	ok = pf_ok(&pf, s, strlen(s));
	pf_free(&pf);
	return ok;
}

/* soundness: whenever the regex matches, the prefilter lets it through */
static int pf_sound(const char *re, const char *const *strs, size_t n)
{
	char why[256], pat[512];
	regex_t rx;
	size_t i;
	int bad = 0;

	snprintf(pat, sizeof(pat), "^(%s)$", re);
	if (re_check(re, why, sizeof(why)) < 0 || regcomp(&rx, pat, REG_EXTENDED | REG_NOSUB))
		return -1;
	for (i = 0; i < n; i++)
		if (regexec(&rx, strs[i], 0, NULL, 0) == 0 && pf_says(re, strs[i]) == 0) {
			printf("# prefilter refuses '%s' for regex '%s'\n", strs[i], re);
			bad++;
		}
	regfree(&rx);
	return bad;
}

static void test_index(void)
{
	static const char *INDEXED =
		"[service shop]\n"
		"port = 80\n"
		"endpoint = 127.0.0.1:9001\n"
		"[route shop/m1]\nmatch.path = /x/1\nto = shop\n"
		"[route shop/m2]\nmatch.path = prefix:/svc-2/\nto = shop\n"
		"[route shop/m3]\nmatch.header.end-user = user-3\nto = shop\n"
		"[route shop/m4]\nmatch.header.X-Tenant-4 = present\nto = shop\n"
		"[route shop/generic]\nmatch.header.x-gone = absent\nmatch.query.v = 2\nto = shop\n"
		"[route shop/post]\nmatch.method = POST\nto = shop\n"
		"[route shop/exact]\nmatch.path = /api/v1/items\nmatch.header.end-user = bench\nto = shop\n"
		"[route shop/api]\nmatch.path = prefix:/api/\nmatch.header.end-user = bench\nto = shop\n"
		"[route shop/re]\nmatch.path = regex:/api/v[0-9]+/items\nto = shop\n"
		"[route shop/alt]\nmatch.path = regex:/q|/api/.*\nto = shop\n"
		"[route shop/or]\nmatch.header.x-a = 1\nmatch.2.path = prefix:/api\nto = shop\n"
		"[route shop/default]\nto = shop\n";
	const struct route_list *l;
	struct http1_header hs[3];
	struct route_req r;
	char err[2048];
	int b, compared = 0, bad;
	const char *const re_strs[] = { "/api/v1/items", "/api/v12/items-3", "/a", "/b", "/x/b", "/ab", "/a.b",
	                                "/axb", "a/b", "x/a", "xx/a", "/aab", "/a/b", "/api/v1/items/7", "",
	                                "/api/v1/item", "/api/v1/items-3" };
	size_t i;

	cf = conf_load_string("index.ini", INDEXED, err, sizeof(err));
	TEST("index config loads", cf != NULL);
	if (!cf) {
		printf("# %s\n", err);
		return;
	}
	tbl = route_table_build(cf);
	l = tbl ? &tbl->by_svc[0] : NULL;
	TEST("a group of 8 blocks or more is indexed", l && l->ix && l->n_blocks == 13);
	TEST("blocks without an indexable condition are always checked",
	     l && l->ix && l->ix->n_generic == 3);   /* generic, alt (a '|'), default */
	memset(&r, 0, sizeof(r));
	r.method = "GET";
	r.method_len = 3;
	r.path = "/api/v1/items";
	r.path_len = strlen(r.path);
	r.headers = hs;
	hs[0].name = "END-User";
	hs[0].name_len = 8;
	hs[0].value = "bench";
	hs[0].value_len = 5;
	r.n_headers = 1;
	TEST("indexed: exact path and header, name in any case",
	     is(route_match(cf, tbl, "shop", 4, &cf->services[0], &r, &b), "shop/exact") && b == 0);
	hs[0].value = "bencH";
	TEST("indexed: an exact header value is case-sensitive",
	     is(route_match(cf, tbl, "shop", 4, &cf->services[0], &r, &b), "shop/re"));
	r.method = "POST";
	r.method_len = 4;
	TEST("indexed: an earlier method rule wins over later path rules",
	     is(route_match(cf, tbl, "shop", 4, &cf->services[0], &r, &b), "shop/post"));
	r.method = "GET";
	r.method_len = 3;
	r.query = "v=2";
	r.query_len = 3;
	TEST("a walked rule between indexed ones keeps its place",
	     is(route_match(cf, tbl, "shop", 4, &cf->services[0], &r, &b), "shop/generic"));
	hs[1].name = "x-gone";
	hs[1].name_len = 6;
	hs[1].value = "";
	hs[1].value_len = 0;
	r.n_headers = 2;
	TEST("... and its absent header is looked at",
	     is(route_match(cf, tbl, "shop", 4, &cf->services[0], &r, &b), "shop/re"));
	r.query = NULL;
	r.query_len = 0;
	r.n_headers = 0;
	r.path = "/api/v1/itemz";
	r.path_len = strlen(r.path);
	TEST("regex rule with an alternation is not prefiltered",
	     is(route_match(cf, tbl, "shop", 4, &cf->services[0], &r, &b), "shop/alt"));
	r.path = "/q";
	r.path_len = 2;
	TEST("... its other alternative", is(route_match(cf, tbl, "shop", 4, &cf->services[0], &r, &b), "shop/alt"));
	r.path = "/apix";
	r.path_len = 5;
	TEST("second block of a rule, path prefix",
	     is(route_match(cf, tbl, "shop", 4, &cf->services[0], &r, &b), "shop/or") && b == 1);
	hs[0].name = "X-A";
	hs[0].name_len = 3;
	hs[0].value = "1";
	hs[0].value_len = 1;
	r.n_headers = 1;
	TEST("first block of the same rule wins", is(route_match(cf, tbl, "shop", 4, &cf->services[0], &r, &b), "shop/or") && b == 0);
	hs[0].name = "x-tenant-4";
	hs[0].name_len = 10;
	TEST("header present, indexed by name", is(route_match(cf, tbl, "shop", 4, &cf->services[0], &r, &b), "shop/m4"));
	hs[1] = hs[0];
	hs[0].name = "end-user";
	hs[0].name_len = 8;
	hs[0].value = "user-3";
	hs[0].value_len = 6;
	r.n_headers = 2;
	TEST("two indexed candidates: the earlier wins", is(route_match(cf, tbl, "shop", 4, &cf->services[0], &r, &b), "shop/m3"));
	hs[2] = hs[0];
	hs[0].value = "other";
	hs[0].value_len = 5;
	r.n_headers = 3;
	TEST("a repeated header: its first value counts", is(route_match(cf, tbl, "shop", 4, &cf->services[0], &r, &b), "shop/m4"));
	r.n_headers = 0;
	r.path = "/nothing";
	r.path_len = 8;
	TEST("nothing else: the rule without match", is(route_match(cf, tbl, "shop", 4, &cf->services[0], &r, &b), "shop/default") && b == -1);
	route_table_free(tbl);
	conf_unref(cf);

	/* the prefilter: what it keeps, and that it never refuses what the regex accepts */
	TEST("prefilter: none with '|'", pf_says("/a|/b", "/b") == -1 && pf_says("(/a|/x)/b", "/x/b") == -1);
	TEST("prefilter: literal prefix", pf_says("/api/v[0-9]+/items", "/apx/v1/items") == 0 &&
	     pf_says("/api/v[0-9]+/items", "/api/v1/items") == 1);
	TEST("prefilter: a later literal must appear", pf_says("/api/v[0-9]+/items-3(/.*)?", "/api/v1/items") == 0);
	TEST("prefilter: a quantified character is optional", pf_says("/ab?c", "/ac") == 1 && pf_says("x*/a", "/a") == 1 &&
	     pf_says("/a{1,2}b", "/b") == 1);
	TEST("prefilter: an escaped dot is literal", pf_says("/a\\.b", "/axb") == 0 && pf_says("/a\\.b", "/a.b") == 1);
	TEST("prefilter: the end", pf_says("[a-z]+\\.json", "x.jsonp") == 0 && pf_says("[a-z]+\\.json", "x.json") == 1);
	TEST("prefilter: groups and brackets skipped", pf_says("/a([)]|b)c", "/ac") == -1 && pf_says("/a([)]x)*c", "/ac") == 1 &&
	     pf_says("/[[:alpha:]]x", "/qx") == 1);
	TEST("prefilter: nothing literal, none", pf_says(".*", "x") == -1 && pf_says("[0-9]+", "1") == -1);
	bad = 0;
	for (i = 0; i < sizeof(PATH_M) / sizeof(PATH_M[0]); i++)
		if (!strncmp(PATH_M[i], "regex:", 6))
			bad += pf_sound(PATH_M[i] + 6, re_strs, sizeof(re_strs) / sizeof(re_strs[0]));
	{
		static const char *more[] = { "/a([)]x)*c", "/a\\(b", "a+b", "ab*c", "a\\.*b", "/x{2}y", "^/a$", "a$",
		                              "/[]a]/b", "/[^]a]b", "(ab)c(de)?f", "a(b(c)d)e" };
		static const char *more_strs[] = { "/ac", "/a)xc", "/a(b", "ab", "aab", "ac", "a.b", "a..b", "ab", "/xxy",
		                                   "/a", "a", "/]/b", "/a/b", "/bb", "abcf", "abcdef", "abcde", "abcdf" };
		for (i = 0; i < sizeof(more) / sizeof(more[0]); i++)
			bad += pf_sound(more[i], more_strs, sizeof(more_strs) / sizeof(more_strs[0]));
	}
	TEST("prefilter never refuses what the regex matches", bad == 0);

	/* more request headers with a rule's name than are resolved, more prefix lengths than
	 * candidate lists: both fall back to the walk */
	{
		char *text = malloc(16384);
		struct http1_header many[40];
		size_t len = (size_t)snprintf(text, 16384, "[service big]\nport = 80\nendpoint = 127.0.0.1:9001\n");
		int k;

		for (k = 0; k < 40; k++)
			len += (size_t)snprintf(text + len, 16384 - len, "[route big/h%d]\nmatch.header.x-h-%d = present\n"
			                        "match.path = /h\nto = big\n", k, k);
		for (k = 0; k < 70; k++)
			len += (size_t)snprintf(text + len, 16384 - len, "[route big/p%d]\nmatch.path = prefix:/%.*s\nto = big\n",
			                        k, k + 1, "pppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp");
		cf = conf_load_string("big.ini", text, err, sizeof(err));
		free(text);
		tbl = cf ? route_table_build(cf) : NULL;
		TEST("big config loads", cf && tbl);
		if (tbl) {
			static char names[40][16];

			memset(&r, 0, sizeof(r));
			r.method = "GET";
			r.method_len = 3;
			r.path = "/h";
			r.path_len = 2;
			for (k = 0; k < 40; k++) {
				snprintf(names[k], sizeof(names[k]), "X-H-%d", 39 - k);
				many[k].name = names[k];
				many[k].name_len = strlen(names[k]);
				many[k].value = "1";
				many[k].value_len = 1;
			}
			r.headers = many;
			r.n_headers = 40;
			TEST("40 request headers a rule tests: still the first rule", is(route_match(cf, tbl, "big", 3, &cf->services[0], &r, &b), "big/h0"));
			r.n_headers = 1;
			TEST("... and with one of them", is(route_match(cf, tbl, "big", 3, &cf->services[0], &r, &b), "big/h39"));
			r.path = "/pppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp";
			r.path_len = strlen(r.path);
			r.n_headers = 0;
			TEST("70 prefix lengths: the shortest prefix, first in file order",
			     is(route_match(cf, tbl, "big", 3, &cf->services[0], &r, &b), "big/p0"));
		}
		route_table_free(tbl);
		if (cf)
			conf_unref(cf);
	}

	bad = differential(400, &compared);
	printf("# differential: %d lookups compared\n", compared);
	TEST("index == walk in file order over random rules and requests", bad == 0 && compared > 50000);
}

int main(void)
{
	char err[2048];
	int b, i, v2 = 0, n;
	const struct conf_route *rt;
	char out[256];

	cf = conf_load_string("route-test.ini", MESH, err, sizeof(err));
	TEST("config loads", cf != NULL);
	if (!cf) {
		printf("# %s\n", err);
		return test_report();
	}
	tbl = route_table_build(cf);
	TEST("table builds", tbl != NULL);
	TEST("exact header", is(go("reviews", "GET", "/", "end-user", "jason", &b), "reviews/jason") && b == 0);
	TEST("exact header is case-sensitive on the value", is(go("reviews", "GET", "/", "end-user", "Jason", &b), "reviews/default"));
	TEST("header name case-insensitive", is(go("reviews", "GET", "/", "End-User", "jason", &b), "reviews/jason"));
	TEST("any host form of the service", is(go("reviews.default.svc.cluster.local:9080", "GET", "/", "end-user", "jason", &b), "reviews/jason"));
	TEST("prefix header", is(go("reviews", "GET", "/", "x-group", "beta-testers", &b), "reviews/prefix"));
	TEST("prefix header miss", is(go("reviews", "GET", "/", "x-group", "alpha", &b), "reviews/default"));
	TEST("regex path (anchored)", is(go("reviews", "GET", "/api/v12/x", NULL, NULL, &b), "reviews/regex"));
	TEST("regex path is a full match", is(go("reviews", "GET", "/api/v12/xy", NULL, NULL, &b), "reviews/default"));
	TEST("present + method", is(go("reviews", "POST", "/", "x-debug", "", &b), "reviews/present"));
	TEST("present needs the method too", is(go("reviews", "GET", "/", "x-debug", "1", &b), "reviews/default"));
	TEST("query regex", is(go("reviews", "GET", "/p?a=1&user=root", NULL, NULL, &b), "reviews/query"));
	TEST("query regex full match", is(go("reviews", "GET", "/p?user=rooted", NULL, NULL, &b), "reviews/default"));
	TEST("OR block 1", is(go("reviews", "GET", "/a", NULL, NULL, &b), "reviews/or") && b == 0);
	TEST("OR block 2", is(go("reviews", "GET", "/old/x", NULL, NULL, &b), "reviews/or") && b == 1);
	rt = go("reviews", "GET", "/old/x/y?q=1", NULL, NULL, &b);
	n = route_rewrite_path(rt, b, "/old/x/y", 8, "q=1", 3, out, sizeof(out));
	TEST("prefix rewrite keeps the rest and the query", n > 0 && !strcmp(out, "/new/x/y?q=1"));
	rt = go("reviews", "GET", "/a", NULL, NULL, &b);
	n = route_rewrite_path(rt, b, "/a", 2, NULL, 0, out, sizeof(out));
	TEST("exact-match rewrite replaces the path", n > 0 && !strcmp(out, "/new/"));
	TEST("source labels", is(go("reviews", "GET", "/", "x-src", "yes", &b), "reviews/source"));
	TEST("literal host", is(go("bookinfo.com:80", "GET", "/", NULL, NULL, &b), "bookinfo.com/all"));
	TEST("wildcard host", is(go("a.b.example.com", "GET", "/", NULL, NULL, &b), "wild"));
	TEST("wildcard needs a label", go("example.com", "GET", "/", NULL, NULL, &b) == NULL);
	TEST("no rules for ratings", go("ratings", "GET", "/", NULL, NULL, &b) == NULL);
	rt = go("reviews", "GET", "/", NULL, NULL, &b);
	for (i = 0; i < 10000; i++) {
		const struct conf_dest *d = route_pick(rt, (uint64_t)i * 2654435761u);
		if (d->subset == 1)
			v2++;
	}
	TEST("80/20 split", v2 > 1800 && v2 < 2200);
	TEST("route dest subset names", rt->n_to == 2 && rt->to[0].svc == &cf->services[0]);
	route_table_free(tbl);
	conf_unref(cf);
	test_index();
	return test_report();
}
