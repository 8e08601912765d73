/* route: rule order, every match kind, weighted picks, rewrites, host kinds. */
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
	return test_report();
}
