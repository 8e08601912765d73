/*
 * authz: PeerAuthentication mode selection (workload > namespace > mesh-wide,
 * port-level overrides, UNSET inheritance, default PERMISSIVE) and
 * AuthorizationPolicy decisions (DENY before ALLOW, default deny once an ALLOW
 * policy selects the workload, AUDIT marks) over every rule field and its
 * not- form, with policies written as INI and loaded by conf.c.
 * Runs under ASan/LSan: every conf is unref'd.
 */
#include "../../modules/conf.c"
#include "../../modules/authz.c"
#include "test.h"

static char err[8192];

static struct conf *load(const char *text)
{
	struct conf *c = conf_load_string("t.ini", text, err, sizeof(err));

	if (!c)
		printf("  load error: %s\n", err);
	return c;
}

static const struct authz_workload productpage = { "production", "productpage", NULL };

/* a request; fields not given are a plain GET / from 10.0.0.1 over mTLS */
struct rq {
	const char *principal, *ip, *method, *path, *host;
	uint16_t port;
	const char *h1, *v1;                   /* one header, optional */
};

static enum authz_decision check(const struct conf *c, const struct authz_workload *w, struct rq q,
                                 const char **policy, int *audit)
{
	struct http1_header h = { 0 };
	struct authz_req r = { 0 };

	r.principal = q.principal;
	r.source_ip = q.ip ? q.ip : "10.0.0.1";
	r.method = q.method ? q.method : "GET";
	r.method_len = strlen(r.method);
	r.path = q.path ? q.path : "/";
	r.path_len = strlen(r.path);
	r.host = q.host ? q.host : "productpage:9080";
	r.host_len = strlen(r.host);
	r.port = q.port ? q.port : 9080;
	if (q.h1) {
		h.name = q.h1, h.name_len = strlen(q.h1), h.value = q.v1, h.value_len = strlen(q.v1);
		r.headers = &h;
		r.n_headers = 1;
	}
	return authz_check(c, w, &r, policy, audit);
}

#define ALLOWS(c, q) (check((c), &productpage, (struct rq)q, NULL, NULL) == AUTHZ_ALLOW)
#define DENIES(c, q) (check((c), &productpage, (struct rq)q, NULL, NULL) == AUTHZ_DENY)
#define Q(...) { __VA_ARGS__ }

#define PP "cluster.local/ns/production/sa/bookinfo-productpage"

static void test_seed_policy(void)
{
	struct conf *c = load("[authorization productpage-policy]\n"
	                      "namespace = production\n"
	                      "selector  = app=productpage\n"
	                      "action    = ALLOW\n"
	                      "from.principals = cluster.local/ns/production/sa/bookinfo-productpage\n"
	                      "[authorization productpage-policy/get]\n"
	                      "to.methods = GET\n");
	const char *pol = NULL;

	if (!c)
		return;
	TEST("seed: productpage-policy has two rules", c->n_authzs == 1 && c->authzs[0].n_rules == 2);
	TEST("seed: the principal may POST", check(c, &productpage, (struct rq)Q(.principal = PP, .method = "POST"),
	                                           &pol, NULL) == AUTHZ_ALLOW && !strcmp(pol, "productpage-policy"));
	TEST("seed: anyone may GET", ALLOWS(c, Q(.principal = "cluster.local/ns/x/sa/y")));
	TEST("seed: plaintext may GET", ALLOWS(c, Q(.principal = NULL)));
	TEST("seed: others may not POST", check(c, &productpage, (struct rq)Q(.principal = "cluster.local/ns/x/sa/y",
	                                        .method = "POST"), &pol, NULL) == AUTHZ_DENY && !strcmp(pol, ""));
	TEST("seed: another workload is not selected",
	     check(c, &(struct authz_workload){ "production", "reviews", NULL }, (struct rq)Q(.method = "POST"), NULL,
	           NULL) == AUTHZ_ALLOW);
	TEST("seed: another namespace is not selected",
	     check(c, &(struct authz_workload){ "default", "productpage", NULL }, (struct rq)Q(.method = "POST"), NULL,
	           NULL) == AUTHZ_ALLOW);
	conf_unref(c);
}

/* one policy of one rule for productpage, written as the body of [authorization p] */
static struct conf *one(const char *action, const char *rule)
{
	char text[2048];

	snprintf(text, sizeof(text), "[authorization p]\nnamespace = production\nselector = app=productpage\n"
	         "action = %s\n%s\n", action, rule);
	return load(text);
}

static void test_principals_namespaces(void)
{
	struct conf *c;

	c = one("ALLOW", "from.principals = cluster.local/ns/a/sa/x, cluster.local/ns/b/*, */sa/admin");
	TEST("principals: exact", c && ALLOWS(c, Q(.principal = "cluster.local/ns/a/sa/x")));
	TEST("principals: exact is whole", c && DENIES(c, Q(.principal = "cluster.local/ns/a/sa/xy")));
	TEST("principals: prefix*", c && ALLOWS(c, Q(.principal = "cluster.local/ns/b/sa/anything")));
	TEST("principals: *suffix", c && ALLOWS(c, Q(.principal = "other.td/ns/q/sa/admin")));
	TEST("principals: no match", c && DENIES(c, Q(.principal = "cluster.local/ns/c/sa/x")));
	TEST("principals: plaintext never matches", c && DENIES(c, Q(.principal = NULL)));
	conf_unref(c);
	c = one("ALLOW", "from.principals = *");
	TEST("principals: * is any authenticated peer", c && ALLOWS(c, Q(.principal = "td/ns/a/sa/b")) &&
	     DENIES(c, Q(.principal = NULL)));
	conf_unref(c);
	c = one("ALLOW", "from.not_principals = cluster.local/ns/a/*");
	TEST("not_principals: excludes", c && DENIES(c, Q(.principal = "cluster.local/ns/a/sa/x")));
	TEST("not_principals: others pass", c && ALLOWS(c, Q(.principal = "cluster.local/ns/b/sa/x")));
	TEST("not_principals: plaintext passes", c && ALLOWS(c, Q(.principal = NULL)));
	conf_unref(c);
	c = one("DENY", "from.not_principals = *");
	TEST("DENY not_principals=*: plaintext denied (Istio's require-mTLS)", c && DENIES(c, Q(.principal = NULL)));
	TEST("DENY not_principals=*: mTLS allowed", c && ALLOWS(c, Q(.principal = PP)));
	conf_unref(c);
	c = one("ALLOW", "from.namespaces = production, team-*");
	TEST("namespaces: exact", c && ALLOWS(c, Q(.principal = PP)));
	TEST("namespaces: prefix", c && ALLOWS(c, Q(.principal = "cluster.local/ns/team-a/sa/x")));
	TEST("namespaces: not a prefix of the name", c && DENIES(c, Q(.principal = "cluster.local/ns/productionx/sa/x")));
	TEST("namespaces: sa is not the namespace", c && DENIES(c, Q(.principal = "cluster.local/ns/x/sa/production")));
	TEST("namespaces: plaintext has none", c && DENIES(c, Q(.principal = NULL)));
	conf_unref(c);
	c = one("ALLOW", "from.not_namespaces = *-test");
	TEST("not_namespaces: suffix excludes", c && DENIES(c, Q(.principal = "cluster.local/ns/a-test/sa/x")));
	TEST("not_namespaces: others pass", c && ALLOWS(c, Q(.principal = "cluster.local/ns/a-prod/sa/x")));
	TEST("not_namespaces: plaintext passes", c && ALLOWS(c, Q(.principal = NULL)));
	conf_unref(c);
	c = one("ALLOW", "when.source.principal = " PP);
	TEST("when.source.principal = from.principals", c && ALLOWS(c, Q(.principal = PP)) &&
	     DENIES(c, Q(.principal = "cluster.local/ns/a/sa/x")));
	conf_unref(c);
	c = one("ALLOW", "when.source.namespace = production");
	TEST("when.source.namespace = from.namespaces", c && ALLOWS(c, Q(.principal = PP)) &&
	     DENIES(c, Q(.principal = "cluster.local/ns/a/sa/x")));
	conf_unref(c);
}

static void test_ip_blocks(void)
{
	struct conf *c = one("ALLOW", "from.ip_blocks = 10.1.0.0/16, 192.168.7.7, 2001:db8::/32, ::1, 172.16.0.0/12");

	TEST("ip_blocks: v4 in /16", c && ALLOWS(c, Q(.ip = "10.1.200.3")));
	TEST("ip_blocks: v4 outside /16", c && DENIES(c, Q(.ip = "10.2.0.1")));
	TEST("ip_blocks: v4 single address", c && ALLOWS(c, Q(.ip = "192.168.7.7")) && DENIES(c, Q(.ip = "192.168.7.8")));
	TEST("ip_blocks: /12 (not a byte boundary)", c && ALLOWS(c, Q(.ip = "172.31.255.255")) &&
	     DENIES(c, Q(.ip = "172.32.0.0")) && DENIES(c, Q(.ip = "172.15.255.255")));
	TEST("ip_blocks: v6 in /32", c && ALLOWS(c, Q(.ip = "2001:db8:1::5")));
	TEST("ip_blocks: v6 outside", c && DENIES(c, Q(.ip = "2001:db9::1")));
	TEST("ip_blocks: ::1", c && ALLOWS(c, Q(.ip = "::1")));
	TEST("ip_blocks: v4-mapped v6 is v4", c && ALLOWS(c, Q(.ip = "::ffff:10.1.0.9")));
	TEST("ip_blocks: an unreadable source matches nothing", c && DENIES(c, Q(.ip = "nonsense")));
	conf_unref(c);
	c = one("ALLOW", "from.not_ip_blocks = 10.0.0.0/8, fe80::/10");
	TEST("not_ip_blocks: excludes v4", c && DENIES(c, Q(.ip = "10.9.9.9")));
	TEST("not_ip_blocks: excludes v6", c && DENIES(c, Q(.ip = "fe80::1")));
	TEST("not_ip_blocks: others pass", c && ALLOWS(c, Q(.ip = "127.0.0.1")) && ALLOWS(c, Q(.ip = "::1")));
	conf_unref(c);
	c = one("ALLOW", "from.ip_blocks = 0.0.0.0/0");
	TEST("ip_blocks: /0 is every v4 address, no v6", c && ALLOWS(c, Q(.ip = "8.8.8.8")) && DENIES(c, Q(.ip = "::2")));
	conf_unref(c);
	c = one("ALLOW", "when.source.ip = 127.0.0.0/8");
	TEST("when.source.ip = from.ip_blocks", c && ALLOWS(c, Q(.ip = "127.0.0.1")) && DENIES(c, Q(.ip = "10.0.0.1")));
	conf_unref(c);
}

static void test_operations(void)
{
	struct conf *c;

	c = one("ALLOW", "to.methods = GET, HEAD");
	TEST("methods: listed", c && ALLOWS(c, Q(.method = "GET")) && ALLOWS(c, Q(.method = "HEAD")));
	TEST("methods: not listed", c && DENIES(c, Q(.method = "POST")));
	conf_unref(c);
	c = one("ALLOW", "to.methods = get");
	TEST("methods: written in any case", c && ALLOWS(c, Q(.method = "GET")));
	conf_unref(c);
	c = one("ALLOW", "to.not_methods = DELETE, P*");
	TEST("not_methods", c && ALLOWS(c, Q(.method = "GET")) && DENIES(c, Q(.method = "DELETE")) &&
	     DENIES(c, Q(.method = "PUT")) && DENIES(c, Q(.method = "PATCH")));
	conf_unref(c);
	c = one("ALLOW", "to.paths = /productpage, /api/*, *.js, /static*");
	TEST("paths: exact", c && ALLOWS(c, Q(.path = "/productpage")));
	TEST("paths: exact is whole", c && DENIES(c, Q(.path = "/productpage/x")) && DENIES(c, Q(.path = "/product")));
	TEST("paths: prefix /api/*", c && ALLOWS(c, Q(.path = "/api/v1/products")) && ALLOWS(c, Q(.path = "/api/")));
	TEST("paths: prefix needs the slash", c && DENIES(c, Q(.path = "/api")) && DENIES(c, Q(.path = "/apis")));
	TEST("paths: suffix *.js", c && ALLOWS(c, Q(.path = "/x/app.js")) && DENIES(c, Q(.path = "/x/app.json")));
	TEST("paths: /static*", c && ALLOWS(c, Q(.path = "/static")) && ALLOWS(c, Q(.path = "/staticfiles/a")));
	TEST("paths: case-sensitive", c && DENIES(c, Q(.path = "/ProductPage")));
	conf_unref(c);
	c = one("ALLOW", "to.paths = *");
	TEST("paths: * is every path", c && ALLOWS(c, Q(.path = "/anything")));
	conf_unref(c);
	c = one("ALLOW", "to.not_paths = /admin/*, /health");
	TEST("not_paths", c && ALLOWS(c, Q(.path = "/productpage")) && DENIES(c, Q(.path = "/admin/x")) &&
	     DENIES(c, Q(.path = "/health")) && ALLOWS(c, Q(.path = "/healthz")));
	conf_unref(c);
	c = one("ALLOW", "to.ports = 9080, 8080");
	TEST("ports", c && ALLOWS(c, Q(.port = 9080)) && ALLOWS(c, Q(.port = 8080)) && DENIES(c, Q(.port = 80)));
	conf_unref(c);
	c = one("ALLOW", "to.not_ports = 15000");
	TEST("not_ports", c && ALLOWS(c, Q(.port = 9080)) && DENIES(c, Q(.port = 15000)));
	conf_unref(c);
	c = one("ALLOW", "when.destination.port = 9080");
	TEST("when.destination.port = to.ports", c && ALLOWS(c, Q(.port = 9080)) && DENIES(c, Q(.port = 9081)));
	conf_unref(c);
	c = one("ALLOW", "to.hosts = productpage, *.example.com, api.test:8443");
	TEST("hosts: name without port matches any port", c && ALLOWS(c, Q(.host = "productpage:9080")) &&
	     ALLOWS(c, Q(.host = "productpage")));
	TEST("hosts: case-insensitive", c && ALLOWS(c, Q(.host = "ProductPage:9080")));
	TEST("hosts: *.suffix", c && ALLOWS(c, Q(.host = "www.example.com")) && ALLOWS(c, Q(.host = "a.b.Example.COM:80")));
	TEST("hosts: *.suffix needs a label", c && DENIES(c, Q(.host = "example.com")));
	TEST("hosts: with a port, the port must match", c && ALLOWS(c, Q(.host = "api.test:8443")) &&
	     DENIES(c, Q(.host = "api.test:443")) && DENIES(c, Q(.host = "api.test")));
	TEST("hosts: others", c && DENIES(c, Q(.host = "reviews:9080")));
	conf_unref(c);
	c = one("ALLOW", "to.hosts = [::1]");
	TEST("hosts: an IPv6 literal with and without port", c && ALLOWS(c, Q(.host = "[::1]:9080")) &&
	     ALLOWS(c, Q(.host = "[::1]")));
	conf_unref(c);
	c = one("ALLOW", "to.not_hosts = evil.*");
	TEST("not_hosts", c && ALLOWS(c, Q(.host = "productpage")) && DENIES(c, Q(.host = "evil.com:80")));
	conf_unref(c);
}

static void test_when_headers(void)
{
	struct conf *c;

	c = one("ALLOW", "when.header.x-user = jason, admin-*, *@corp");
	TEST("when.header: exact", c && ALLOWS(c, Q(.h1 = "x-user", .v1 = "jason")));
	TEST("when.header: name is case-insensitive", c && ALLOWS(c, Q(.h1 = "X-User", .v1 = "jason")));
	TEST("when.header: value is case-sensitive", c && DENIES(c, Q(.h1 = "x-user", .v1 = "Jason")));
	TEST("when.header: prefix", c && ALLOWS(c, Q(.h1 = "x-user", .v1 = "admin-bob")));
	TEST("when.header: suffix", c && ALLOWS(c, Q(.h1 = "x-user", .v1 = "amy@corp")));
	TEST("when.header: other value", c && DENIES(c, Q(.h1 = "x-user", .v1 = "eve")));
	TEST("when.header: absent", c && DENIES(c, Q(.h1 = NULL)) && DENIES(c, Q(.h1 = "x-other", .v1 = "jason")));
	conf_unref(c);
	c = one("ALLOW", "when.header.x-token = *");
	TEST("when.header = *: present", c && ALLOWS(c, Q(.h1 = "x-token", .v1 = "")) && DENIES(c, Q(.h1 = NULL)));
	conf_unref(c);
	c = one("ALLOW", "when.not_header.x-debug = *");
	TEST("when.not_header = *: absent only", c && ALLOWS(c, Q(.h1 = NULL)) && DENIES(c, Q(.h1 = "x-debug", .v1 = "1")));
	conf_unref(c);
	c = one("ALLOW", "when.not_header.end-user = jason\nwhen.header.x-ok = yes");
	TEST("when: all conditions must hold", c && DENIES(c, Q(.h1 = "x-ok", .v1 = "no")) &&
	     ALLOWS(c, Q(.h1 = "x-ok", .v1 = "yes")));
	conf_unref(c);
}

static void test_rule_combination(void)
{
	struct conf *c;

	c = one("ALLOW", "from.principals = " PP "\nto.methods = GET\nto.paths = /api/*");
	TEST("rule: from AND to", c && ALLOWS(c, Q(.principal = PP, .path = "/api/x")) &&
	     DENIES(c, Q(.principal = PP, .path = "/x")) && DENIES(c, Q(.principal = PP, .method = "PUT", .path = "/api/x")) &&
	     DENIES(c, Q(.principal = "td/ns/a/sa/b", .path = "/api/x")));
	conf_unref(c);
	c = one("ALLOW", "to.methods = GET\nto.not_paths = /admin*");
	TEST("rule: a field and another's not-form", c && ALLOWS(c, Q(.path = "/x")) && DENIES(c, Q(.path = "/admin")));
	conf_unref(c);
	c = one("ALLOW", "to.paths = /api/*\nto.not_paths = /api/private/*");
	TEST("rule: a field and its own not-form", c && ALLOWS(c, Q(.path = "/api/x")) &&
	     DENIES(c, Q(.path = "/api/private/x")));
	conf_unref(c);
}

static void test_actions(void)
{
	struct conf *c;
	const char *pol;
	int audit;

	c = load("[authorization deny-post]\naction = DENY\nto.methods = POST\n"
	         "[authorization allow-all]\naction = ALLOW\n");
	TEST("DENY beats ALLOW", c && DENIES(c, Q(.method = "POST")) && ALLOWS(c, Q(.method = "GET")));
	TEST("DENY names the policy", c && check(c, &productpage, (struct rq)Q(.method = "POST"), &pol, NULL) ==
	     AUTHZ_DENY && !strcmp(pol, "deny-post"));
	TEST("ALLOW names the policy", c && check(c, &productpage, (struct rq)Q(.method = "GET"), &pol, NULL) ==
	     AUTHZ_ALLOW && !strcmp(pol, "allow-all"));
	conf_unref(c);
	c = load("[authorization deny-post]\naction = DENY\nto.methods = POST\n");
	TEST("only DENY: the rest is allowed", c && ALLOWS(c, Q(.method = "GET")) && DENIES(c, Q(.method = "POST")));
	TEST("only DENY: policy is \"\" when allowed", c && check(c, &productpage, (struct rq)Q(.method = "GET"), &pol,
	     NULL) == AUTHZ_ALLOW && !strcmp(pol, ""));
	conf_unref(c);
	c = load("[authorization allow-get]\naction = ALLOW\nto.methods = GET\n");
	TEST("an ALLOW applies: default deny", c && DENIES(c, Q(.method = "PUT")) && ALLOWS(c, Q(.method = "GET")));
	conf_unref(c);
	c = load("[authorization allow-all]\naction = ALLOW\n");
	TEST("allow-all: one empty rule", c && c->authzs[0].n_rules == 1 && rule_empty(&c->authzs[0].rules[0]));
	TEST("allow-all: everything allowed", c && ALLOWS(c, Q(.method = "DELETE", .principal = NULL)));
	conf_unref(c);
	c = load("[authorization deny-all]\naction = ALLOW\nrules = none\n");
	TEST("rules = none: no rules", c && c->authzs[0].n_rules == 0);
	TEST("rules = none on ALLOW: nothing allowed", c && DENIES(c, Q(.method = "GET")));
	conf_unref(c);
	c = load("[authorization never]\naction = DENY\nrules = none\n");
	TEST("rules = none on DENY: never denies", c && ALLOWS(c, Q(.method = "GET")));
	conf_unref(c);
	c = load("[authorization everything]\naction = DENY\n");
	TEST("DENY with the empty rule denies everything", c && DENIES(c, Q(.method = "GET")) && c->n_warnings == 1);
	conf_unref(c);
	c = load("[authorization audit-delete]\naction = AUDIT\nto.methods = DELETE\n");
	TEST("AUDIT marks matching requests", c && check(c, &productpage, (struct rq)Q(.method = "DELETE"), &pol, &audit) ==
	     AUTHZ_ALLOW && audit == 1);
	TEST("AUDIT leaves others unmarked", c && check(c, &productpage, (struct rq)Q(.method = "GET"), &pol, &audit) ==
	     AUTHZ_ALLOW && audit == 0);
	conf_unref(c);
	c = load("[authorization audit-all]\naction = AUDIT\n[authorization allow-get]\nto.methods = GET\n");
	TEST("AUDIT does not count as ALLOW", c && DENIES(c, Q(.method = "PUT")) && ALLOWS(c, Q(.method = "GET")));
	TEST("AUDIT marks a denied request", c && check(c, &productpage, (struct rq)Q(.method = "PUT"), &pol, &audit) ==
	     AUTHZ_DENY && audit == 1);
	conf_unref(c);
	c = load("[authorization d]\naction = DENY\nto.methods = PUT\n[authorization audit-all]\naction = AUDIT\n");
	TEST("AUDIT after a matching DENY still marks", c && check(c, &productpage, (struct rq)Q(.method = "PUT"), &pol,
	     &audit) == AUTHZ_DENY && audit == 1 && !strcmp(pol, "d"));
	conf_unref(c);
	c = load("");
	TEST("no policies: allowed", c && check(c, &productpage, (struct rq)Q(.method = "PUT"), &pol, &audit) ==
	     AUTHZ_ALLOW && !strcmp(pol, "") && audit == 0);
	conf_unref(c);
	TEST("NULL config: allowed", check(NULL, &productpage, (struct rq)Q(.method = "PUT"), NULL, NULL) == AUTHZ_ALLOW);
	c = load("[authorization a]\nto.methods = GET\n[authorization b]\nto.methods = POST\n");
	TEST("ALLOW policies: any one may match", c && ALLOWS(c, Q(.method = "GET")) && ALLOWS(c, Q(.method = "POST")) &&
	     DENIES(c, Q(.method = "PUT")));
	conf_unref(c);
	c = load("[authorization a]\nto.methods = GET\n[authorization a/post]\nto.methods = POST\n"
	         "[authorization a/put]\nto.methods = PUT\n");
	TEST("rules of a policy: any one may match", c && c->authzs[0].n_rules == 3 && ALLOWS(c, Q(.method = "GET")) &&
	     ALLOWS(c, Q(.method = "POST")) && ALLOWS(c, Q(.method = "PUT")) && DENIES(c, Q(.method = "DELETE")));
	conf_unref(c);
	c = load("[authorization a]\n[authorization a/post]\nto.methods = POST\n");
	TEST("sub-rules only: the bare section adds no rule", c && c->authzs[0].n_rules == 1 &&
	     DENIES(c, Q(.method = "GET")) && ALLOWS(c, Q(.method = "POST")));
	conf_unref(c);
	c = load("[authorization a]\n[authorization a/any]\n");
	TEST("an empty sub-rule matches everything", c && ALLOWS(c, Q(.method = "DELETE")));
	conf_unref(c);
}

static void test_selection(void)
{
	const struct conf_labels v2 = { (struct conf_label[]){ { "app", "reviews" }, { "version", "v2" } }, 2 };
	const struct conf_labels v1 = { (struct conf_label[]){ { "app", "reviews" }, { "version", "v1" } }, 2 };
	const struct authz_workload rv2 = { "default", "reviews", &v2 }, rv1 = { "default", "reviews", &v1 };
	const struct authz_workload other_ns = { "prod", "reviews", &v2 }, ratings = { "default", "ratings", NULL };
	struct conf *c;
	const char *pol;

#define CHK(w, m) check(c, &(w), (struct rq)Q(.method = (m)), &pol, NULL)
	c = load("[authorization v2-get]\nnamespace = default\nselector = app=reviews, version=v2\nto.methods = GET\n");
	TEST("selector: all labels selected", c && CHK(rv2, "PUT") == AUTHZ_DENY && CHK(rv2, "GET") == AUTHZ_ALLOW);
	TEST("selector: one label differs", c && CHK(rv1, "PUT") == AUTHZ_ALLOW);
	TEST("selector: other namespace", c && CHK(other_ns, "PUT") == AUTHZ_ALLOW);
	TEST("selector: app= is implied by the service", c && CHK(ratings, "PUT") == AUTHZ_ALLOW);
	conf_unref(c);
	c = load("[authorization r]\nnamespace = default\nselector = app=ratings\nto.methods = GET\n");
	TEST("selector: app=SERVICE without labels", c && CHK(ratings, "PUT") == AUTHZ_DENY && CHK(rv2, "PUT") == AUTHZ_ALLOW);
	conf_unref(c);
	c = load("[authorization ns]\nnamespace = default\nto.methods = GET\n");
	TEST("namespace-wide: every workload of it", c && CHK(rv2, "PUT") == AUTHZ_DENY && CHK(ratings, "PUT") == AUTHZ_DENY);
	TEST("namespace-wide: not others", c && CHK(other_ns, "PUT") == AUTHZ_ALLOW);
	conf_unref(c);
	c = load("[authorization mesh]\nto.methods = GET\n");
	TEST("mesh-wide (no namespace): every workload", c && CHK(rv2, "PUT") == AUTHZ_DENY &&
	     CHK(other_ns, "PUT") == AUTHZ_DENY);
	conf_unref(c);
	c = load("[authorization mesh]\nnamespace = istio-system\nto.methods = GET\n");
	TEST("mesh-wide (istio-system): every workload", c && CHK(rv2, "PUT") == AUTHZ_DENY &&
	     CHK(other_ns, "PUT") == AUTHZ_DENY);
	conf_unref(c);
	c = load("[authorization v2]\nselector = version=v2\nto.methods = GET\n");
	TEST("selector without namespace: matching workloads of every namespace", c && CHK(rv2, "PUT") == AUTHZ_DENY &&
	     CHK(other_ns, "PUT") == AUTHZ_DENY && CHK(rv1, "PUT") == AUTHZ_ALLOW);
	conf_unref(c);
	c = load("[authorization deny-v1]\nnamespace = default\nselector = version=v1\naction = DENY\n"
	         "[authorization allow-ratings]\nnamespace = default\nselector = app=ratings\n");
	TEST("policies of other workloads do not apply", c && CHK(rv2, "PUT") == AUTHZ_ALLOW &&
	     CHK(rv1, "GET") == AUTHZ_DENY && CHK(ratings, "GET") == AUTHZ_ALLOW);
	conf_unref(c);
#undef CHK
}

static void test_peer_mode(void)
{
	const struct conf_labels v2 = { (struct conf_label[]){ { "version", "v2" } }, 1 };
	const struct authz_workload rv2 = { "default", "reviews", &v2 }, rv1 = { "default", "reviews", NULL };
	const struct authz_workload prod = { "production", "productpage", NULL };
	struct conf *c;
	const char *pol;

	c = load("");
	TEST("peer: no policy is PERMISSIVE", c && authz_peer_mode(c, &rv1, 9080, &pol) == CONF_MTLS_PERMISSIVE &&
	     !strcmp(pol, ""));
	conf_unref(c);
	TEST("peer: NULL config is PERMISSIVE", authz_peer_mode(NULL, &rv1, 0, NULL) == CONF_MTLS_PERMISSIVE);
	c = load("[peer_authentication default]\nmode = STRICT\n");
	TEST("peer: the seed's mesh-wide STRICT", c && authz_peer_mode(c, &rv1, 9080, &pol) == CONF_MTLS_STRICT &&
	     !strcmp(pol, "/default") && authz_peer_mode(c, &prod, 0, NULL) == CONF_MTLS_STRICT);
	conf_unref(c);
	c = load("[peer_authentication default]\nnamespace = production\nmode = strict\n");
	TEST("peer: the seed's namespace STRICT", c && authz_peer_mode(c, &prod, 9080, &pol) == CONF_MTLS_STRICT &&
	     !strcmp(pol, "production/default") && authz_peer_mode(c, &rv1, 9080, NULL) == CONF_MTLS_PERMISSIVE);
	conf_unref(c);
	c = load("[peer_authentication mesh]\nnamespace = istio-system\nmode = DISABLE\n"
	         "[peer_authentication ns]\nnamespace = default\nmode = STRICT\n"
	         "[peer_authentication v2]\nnamespace = default\nselector = version=v2\nmode = PERMISSIVE\n"
	         "port.9080 = DISABLE\nport.9090 = UNSET\n");
	TEST("peer: workload beats namespace", c && authz_peer_mode(c, &rv2, 8000, &pol) == CONF_MTLS_PERMISSIVE &&
	     !strcmp(pol, "default/v2"));
	TEST("peer: port level beats the workload mode", c && authz_peer_mode(c, &rv2, 9080, &pol) == CONF_MTLS_DISABLE &&
	     !strcmp(pol, "default/v2"));
	TEST("peer: port level UNSET is the workload mode", c && authz_peer_mode(c, &rv2, 9090, NULL) == CONF_MTLS_PERMISSIVE);
	TEST("peer: port 0 has no port level", c && authz_peer_mode(c, &rv2, 0, NULL) == CONF_MTLS_PERMISSIVE);
	TEST("peer: namespace beats mesh", c && authz_peer_mode(c, &rv1, 9080, &pol) == CONF_MTLS_STRICT &&
	     !strcmp(pol, "default/ns"));
	TEST("peer: mesh for other namespaces", c && authz_peer_mode(c, &prod, 9080, &pol) == CONF_MTLS_DISABLE &&
	     !strcmp(pol, "istio-system/mesh"));
	conf_unref(c);
	c = load("[peer_authentication mesh]\nmode = STRICT\n"
	         "[peer_authentication ns]\nnamespace = default\n"
	         "[peer_authentication v2]\nnamespace = default\nselector = version=v2\nmode = UNSET\n"
	         "port.9080 = DISABLE\n");
	TEST("peer: UNSET inherits through namespace to mesh", c && authz_peer_mode(c, &rv2, 8000, &pol) ==
	     CONF_MTLS_STRICT && !strcmp(pol, "/mesh"));
	TEST("peer: a port level under an UNSET policy still applies", c &&
	     authz_peer_mode(c, &rv2, 9080, &pol) == CONF_MTLS_DISABLE && !strcmp(pol, "default/v2"));
	conf_unref(c);
	c = load("[peer_authentication ns]\nnamespace = default\nmode = UNSET\n");
	TEST("peer: all UNSET is PERMISSIVE, named by the policy", c &&
	     authz_peer_mode(c, &rv1, 9080, &pol) == CONF_MTLS_PERMISSIVE && !strcmp(pol, "default/ns"));
	conf_unref(c);
	c = load("[peer_authentication any-v2]\nselector = version=v2\nmode = DISABLE\n"
	         "[peer_authentication own-v2]\nnamespace = default\nselector = version=v2\nmode = STRICT\n"
	         "[peer_authentication later-v2]\nnamespace = default\nselector = version=v2\nmode = PERMISSIVE\n");
	TEST("peer: a selector in the workload's namespace beats a root one", c &&
	     authz_peer_mode(c, &rv2, 0, &pol) == CONF_MTLS_STRICT && !strcmp(pol, "default/own-v2"));
	TEST("peer: a root selector applies in every namespace", c &&
	     authz_peer_mode(c, &(struct authz_workload){ "prod", "reviews", &v2 }, 0, &pol) == CONF_MTLS_DISABLE);
	conf_unref(c);
}

int main(void)
{
	test_seed_policy();
	test_principals_namespaces();
	test_ip_blocks();
	test_operations();
	test_when_headers();
	test_rule_combination();
	test_actions();
	test_selection();
	test_peer_mode();
	return test_report();
}
