/*
 * check: every analysis check of `mesh check` with a config that triggers it
 * and one that does not; the loader's errors and warnings all reach the
 * report (also a refused config's warnings); findings carry file:line of the
 * key; the report sorts errors first. Runs under ASan/LSan.
 */
#include "../../modules/conf.c"
#include "../../modules/authz.c"
#include "../../modules/check.c"
#include "test.h"

static struct check_report rep;

/* loads text as "t.ini"; returns the report text, one finding a line */
static const char *run(const char *text)
{
	static char out[16384];
	size_t i, len = 0;

	check_report_free(&rep);
	check_load("t.ini", text, &rep);
	if (rep.n)
		qsort(rep.v, rep.n, sizeof(*rep.v), ck_msg_cmp);
	out[0] = '\0';
	for (i = 0; i < rep.n && len < sizeof(out); i++) {
		snprintf(out + len, sizeof(out) - len, "%s\n", rep.v[i].text);
		len = strlen(out);
	}
	return out;
}

static int has(const char *out, const char *what)
{
	int ok = strstr(out, what) != NULL;

	if (!ok)
		printf("  missing '%s' in:\n%s", what, out);
	return ok;
}

#define SVCS \
	"[service productpage]\nport = 9080\nservice_account = bookinfo-productpage\nendpoint = 127.0.0.1:9081 version=v1\n" \
	"[service reviews]\nport = 9080\nendpoint = 127.0.0.1:9083 version=v1\nendpoint = 127.0.0.1:9084 version=v2\n"
	/* productpage: lines 1-4, reviews: lines 5-8 */

#define DEST "[destination reviews]\nsubset.v1 = version=v1\nsubset.v2 = version=v2\nsubset.v3 = version=v3\n"
	/* lines 9-12 */

int main(void)
{
	const char *o;

	/* ---- the loader's findings */
	o = run("[service a]\nendpoint = 127.0.0.1:1\n[destination a]\nload_balancer = LEAST_CONN\n"
	        "max_connections = x\n[route a/r]\nto = nope\n[bogus]\n");
	TEST("load: every error", rep.n_errors == 3 && has(o, "t.ini:5: max_connections") && has(o, "t.ini:7: route a/r")
	     && has(o, "t.ini:8: unknown section"));
	TEST("load: a refused config keeps its warnings", rep.n_warnings == 1 && has(o, "t.ini:4: warning: 'LEAST_CONN'"));
	TEST("load: errors first", rep.v[0].error == 1 && rep.v[rep.n - 1].error == 0);
	TEST("load: no analysis on a refused config", rep.counts[0] == '\0');
	{
		char big[60 * 40 + 1];
		size_t i;

		big[0] = '\0';
		for (i = 0; i < 60; i++)
			strcat(big, "[bogus]\n");
		run(big);
		TEST("load: more than 50 errors are all listed", rep.n_errors == 60);
	}
	o = run(SVCS);
	TEST("clean: no findings", rep.n == 0 && !strcmp(rep.counts, "2 services, 3 endpoints"));

	/* ---- route to a subset no endpoint carries */
	o = run(SVCS DEST "[route reviews/jason]\nmatch.header.end-user = jason\nto = v3\n");
	TEST("route subset empty: warned at the `to` line",
	     has(o, "t.ini:15: warning: route reviews/jason: subset 'v3' of reviews selects no endpoint "
	            "(endpoints carry version=v1, v2)"));
	o = run(SVCS DEST "[route reviews/jason]\nmatch.header.end-user = jason\nto = v2\n");
	TEST("route subset empty: not for a subset with endpoints", !strstr(o, "selects no endpoint"));
	o = run(SVCS DEST "[route reviews/d]\nto = v1\nmirror = v3\n");
	TEST("route subset empty: mirror", has(o, "t.ini:15: warning: route reviews/d: subset 'v3'"));

	/* ---- mirror to the route's own destination */
	o = run(SVCS DEST "[route reviews/d]\nto = v1 80, v2 20\nmirror = v2\n");
	TEST("mirror same: warned", has(o, "t.ini:15: warning: route reviews/d: mirror reviews/v2 is also where"));
	o = run(SVCS DEST "[route reviews/d]\nto = v1\nmirror = v2\n");
	TEST("mirror same: not for another subset", !strstr(o, "mirror reviews"));

	/* ---- match.source nobody carries */
	o = run(SVCS DEST "[route reviews/s]\nmatch.source = app=productpag\nto = v1\n");
	TEST("match.source: warned", has(o, "t.ini:14: warning: route reviews/s: match.source = app=productpag: "
	                                   "no workload carries these labels"));
	o = run(SVCS DEST "[route reviews/s]\nmatch.source = app=productpage, version=v1\nto = v1\n");
	TEST("match.source: not for an existing workload", !strstr(o, "match.source"));

	/* ---- per_try_timeout >= timeout */
	o = run(SVCS DEST "[route reviews/t]\nto = v1\ntimeout = 2s\nretries = 2\nper_try_timeout = 2s\n");
	TEST("per_try_timeout: warned", has(o, "t.ini:17: warning: route reviews/t: per_try_timeout 2s is not shorter"));
	o = run(SVCS DEST "[route reviews/t]\nto = v1\ntimeout = 2s\nretries = 2\nper_try_timeout = 500ms\n");
	TEST("per_try_timeout: not when shorter", !strstr(o, "per_try_timeout"));

	/* ---- STRICT on a service without a sidecar */
	o = run(SVCS "[service legacy]\nsidecar = no\nendpoint = 127.0.0.1:9090\n[peer_authentication default]\nmode = STRICT\n");
	TEST("strict no sidecar: warned at sidecar =",
	     has(o, "t.ini:10: warning: [service legacy] has no sidecar (sidecar = no), but peer_authentication default "
	            "(t.ini:12) makes it STRICT"));
	o = run(SVCS "[service legacy]\nsidecar = no\nendpoint = 127.0.0.1:9090\n[peer_authentication default]\nmode = STRICT\n"
	        "[peer_authentication legacy]\nselector = app=legacy\nmode = DISABLE\n");
	TEST("strict no sidecar: not once it is DISABLE", !strstr(o, "no sidecar"));

	/* ---- port-level mTLS on a port no selected service uses */
	o = run(SVCS "[peer_authentication reviews]\nselector = app=reviews\nport.8080 = DISABLE\n");
	TEST("port mtls: warned", has(o, "t.ini:11: warning: peer_authentication reviews: port.8080 is not the port of any "
	                              "service or app it selects (reviews: 9080)"));
	o = run(SVCS "[peer_authentication reviews]\nselector = app=reviews\nport.9080 = DISABLE\n");
	TEST("port mtls: not on the service port", !strstr(o, "port.9080"));

	/* ---- authorization sources no identity of the mesh has */
	o = run(SVCS "[authorization p]\nselector = app=productpage\nfrom.principals = cluster.local/ns/production/sa/x\n"
	        "[authorization p/ns]\nfrom.namespaces = prod*\n");
	TEST("authz principals: warned", has(o, "t.ini:11: warning: authorization p: from.principals = "
	                                     "cluster.local/ns/production/sa/x: no service of this mesh has that identity"));
	TEST("authz namespaces: warned in the rule section", has(o, "t.ini:13: warning: authorization p: from.namespaces = prod*"));
	o = run(SVCS "[authorization p]\nselector = app=productpage\nfrom.principals = cluster.local/ns/default/sa/reviews\n"
	        "[authorization p/ns]\nfrom.namespaces = def*\n[authorization q]\nfrom.principals = *\n");
	TEST("authz sources: not for known identities and patterns", rep.n == 0);

	/* ---- endpoints shared by services */
	o = run(SVCS "[service ratings]\nendpoint = 127.0.0.1:9083\n");
	TEST("shared endpoint: error with two identities",
	     has(o, "t.ini:10: endpoint 127.0.0.1:9083 of [service ratings] is also an endpoint of [service reviews] (t.ini:7)")
	     && rep.n_errors == 1);
	o = run(SVCS "[service ratings]\nservice_account = reviews\nendpoint = 127.0.0.1:9083\n");
	TEST("shared endpoint: warning with one identity", rep.n_errors == 0 && has(o, "t.ini:11: warning: endpoint 127.0.0.1:9083"));
	o = run(SVCS "[service ratings]\nendpoint = 127.0.0.1:9085\n");
	TEST("shared endpoint: not for distinct ones", rep.n == 0);

	/* ---- a proxy's listeners on endpoint addresses */
	o = run("[workload]\nservice = reviews\napp = 127.0.0.1:9183\n[listen]\ninbound = 127.0.0.1:9083\n"
	        "outbound = 127.0.0.1:9084\n" SVCS);
	TEST("listener on endpoint: outbound is an error",
	     has(o, "t.ini:14: endpoint 127.0.0.1:9084 of [service reviews] is this proxy's outbound listener") &&
	     rep.n_errors == 1);
	o = run("[workload]\nservice = reviews\napp = 127.0.0.1:9083\n[listen]\ninbound = 127.0.0.1:9183\n" SVCS);
	TEST("listener on endpoint: the app as an endpoint", has(o, "t.ini:12: warning: endpoint 127.0.0.1:9083 of "
	                                                        "[service reviews] is this proxy's app"));
	o = run("[workload]\nservice = reviews\napp = 127.0.0.1:9183\n[listen]\ninbound = 127.0.0.1:9083\n"
	        "outbound = 127.0.0.1:9085\n" SVCS);
	TEST("listener on endpoint: not for the inbound (its own endpoint)", rep.n == 0);

	/* ---- report and print */
	{
		FILE *f = tmpfile();
		char buf[4096] = "";
		size_t n;

		run(SVCS "[service ratings]\nendpoint = 127.0.0.1:9083\n[service x]\nsidecar = no\n");
		check_print(f, "t.ini", &rep);
		rewind(f);
		n = fread(buf, 1, sizeof(buf) - 1, f);
		buf[n] = '\0';
		fclose(f);
		TEST("print: errors first, then warnings, then the summary",
		     strstr(buf, "t.ini:10: endpoint") == buf && strstr(buf, "warning: [service x] has no endpoints") &&
		     strstr(buf, "\nt.ini: 1 error, 1 warning\n"));
	}
	/* garbage never crashes */
	run("[route]\n[route /]\nto = ,,, 1000\n[authorization /]\n[peer_authentication x]\nport.0 = X\n\x01\xff=\n");
	TEST("garbage: errors, no crash", rep.n_errors > 0);
	check_report_free(&rep);
	return test_report();
}
