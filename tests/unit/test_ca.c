/*
 * ca: bootstrap tokens (one identity's token cannot obtain another, expiry,
 * tampering, another CA's secret, malformed forms), the sign handler (token,
 * CSR, allow_namespaces, identity mismatch, garbage) and ca.ini parsing with
 * file:line errors.
 */
#include "../../modules/agent.c"
#include "../../modules/buf.c"
#include "../../modules/ca.c"
#include "../../modules/conf.c"
#include "../../modules/http1.c"
#include "../../modules/log.c"
#include "../../modules/net.c"
#include "../../modules/tls.c"

#include <sys/wait.h>

#include "test.h"

static const unsigned char S1[32] = "0123456789abcdef0123456789abcdef";
static const unsigned char S2[32] = "fedcba9876543210fedcba9876543210";

static int check(const unsigned char *secret, const char *tok, long long now, char *ns, char *sa, const char **why)
{
	return ca_token_check(secret, 32, tok, strlen(tok), now, ns, 256, sa, 256, why);
}

static void test_tokens(void)
{
	char tok[CA_TOKEN_MAX], t2[CA_TOKEN_MAX], ns[256], sa[256];
	const char *why;
	long long now = 1700000000;

	TEST("token: made", ca_token_make(S1, 32, "default", "reviews", 0, tok, sizeof(tok)) == 0);
	TEST("token: its identity", check(S1, tok, now, ns, sa, &why) == 0 && !strcmp(ns, "default") && !strcmp(sa, "reviews"));
	/* the identity is in the MAC: rewriting it to another one fails */
	snprintf(t2, sizeof(t2), "mesh1:default:ratings%s", tok + strlen("mesh1:default:reviews"));
	TEST("token: for reviews cannot become ratings", check(S1, t2, now, ns, sa, &why) < 0 && strstr(why, "signature"));
	snprintf(t2, sizeof(t2), "mesh1:prod:reviews%s", tok + strlen("mesh1:default:reviews"));
	TEST("token: nor another namespace", check(S1, t2, now, ns, sa, &why) < 0);
	TEST("token: another CA's secret refuses it", check(S2, tok, now, ns, sa, &why) < 0 && strstr(why, "another CA"));
	/* a flipped MAC digit */
	snprintf(t2, sizeof(t2), "%s", tok);
	t2[strlen(t2) - 1] = t2[strlen(t2) - 1] == '0' ? '1' : '0';
	TEST("token: tampered MAC", check(S1, t2, now, ns, sa, &why) < 0);
	/* expiry: in the MAC too */
	TEST("token: with expiry", ca_token_make(S1, 32, "default", "reviews", now + 3600, tok, sizeof(tok)) == 0);
	TEST("token: valid before expiry", check(S1, tok, now, ns, sa, &why) == 0);
	TEST("token: refused after expiry", check(S1, tok, now + 3600, ns, sa, &why) < 0 && strstr(why, "expired"));
	{
		char *p = strstr(tok, ":1700003600:");

		if (p)
			memcpy(p + 1, "1800003600", 10);
		TEST("token: expiry cannot be extended", p && check(S1, tok, now + 7200, ns, sa, &why) < 0 && strstr(why, "signature"));
	}
	/* trailing newline from a file */
	ca_token_make(S1, 32, "default", "reviews", 0, tok, sizeof(tok));
	strcat(tok, "\n");
	TEST("token: trailing newline ok", check(S1, tok, now, ns, sa, &why) == 0);
	/* malformed */
	TEST("token: empty", check(S1, "", now, ns, sa, &why) < 0 && strstr(why, "malformed"));
	TEST("token: garbage", check(S1, "hello", now, ns, sa, &why) < 0);
	TEST("token: wrong version", check(S1, "mesh2:a:b:0:00", now, ns, sa, &why) < 0);
	TEST("token: extra field", check(S1, "mesh1:a:b:0:0:0", now, ns, sa, &why) < 0);
	TEST("token: bad name", ca_token_make(S1, 32, "Default", "x", 0, tok, sizeof(tok)) < 0 &&
	                       ca_token_make(S1, 32, "a:b", "x", 0, tok, sizeof(tok)) < 0 &&
	                       ca_token_make(S1, 32, "-a", "x", 0, tok, sizeof(tok)) < 0);
	TEST("token: dotted service account ok", ca_token_make(S1, 32, "default", "my.sa-1", 0, tok, sizeof(tok)) == 0 &&
	                                        check(S1, tok, now, ns, sa, &why) == 0 && !strcmp(sa, "my.sa-1"));
	TEST("token: small buffer refused", ca_token_make(S1, 32, "default", "reviews", 0, tok, 40) < 0);
}

static void test_config(void)
{
	struct ca_config c;
	char err[2048];

	TEST("ini: defaults", ca_config_parse(&c, "d/ca.ini", "[ca]\n", err, sizeof(err)) == 0 && c.cert_ttl == 86400 &&
	                      c.clock_skew == 300 && !strcmp(c.trust_domain, "cluster.local") &&
	                      !strcmp(c.listen.text, "127.0.0.1:15012") && !strcmp(c.dir, "d"));
	ca_config_free(&c);
	TEST("ini: keys", ca_config_parse(&c, "/etc/mesh/ca.ini",
	                                  "[ca]\nlisten = 127.0.0.1:9\ndir = ca\ntrust_domain = example.org\ncert_ttl = 1h\n"
	                                  "clock_skew = 90s\nallow_namespaces = default, production\n", err, sizeof(err)) == 0 &&
	                  c.cert_ttl == 3600 && c.clock_skew == 90 && c.n_allow_ns == 2 && !strcmp(c.allow_ns[1], "production") &&
	                  !strcmp(c.dir, "/etc/mesh/ca") && !strcmp(c.trust_domain, "example.org"));
	ca_config_free(&c);
	TEST("ini: every error with file:line",
	     ca_config_parse(&c, "ca.ini", "[ca]\nlisten = nowhere\ncert_ttl = soon\nfoo = 1\n[cb]\nx = 1\n", err, sizeof(err)) < 0 &&
	     strstr(err, "ca.ini:2: listen") && strstr(err, "ca.ini:3: cert_ttl") && strstr(err, "ca.ini:4: unknown key 'foo'") &&
	     strstr(err, "ca.ini:6: unknown section [cb]"));
	printf("  %s\n", err);
	TEST("ini: a bad allow_namespaces entry", ca_config_parse(&c, "ca.ini", "[ca]\nallow_namespaces = ok, Bad!\n", err, sizeof(err)) < 0 &&
	                                         strstr(err, "ca.ini:2:"));
}

/* a CA in memory: root key/cert, secret S1 */
static int make_ca(struct ca *ca, const char *allow)
{
	long long now = time(NULL);
	struct tls_issue rq = { "CN=test root,O=mesh", NULL, NULL, 0, 1, -1, now - 60, now + 86400 * 30 };
	char err[512], text[256];
	char *key = tls_key_generate(err, sizeof(err));
	char *crt = key ? tls_issue_for_key(NULL, &rq, key, err, sizeof(err)) : NULL;

	memset(ca, 0, sizeof(*ca));
	snprintf(text, sizeof(text), "[ca]\n%s%s\n", allow ? "allow_namespaces = " : "", allow ? allow : "");
	if (!crt || ca_config_parse(&ca->cfg, "ca.ini", text, err, sizeof(err)) < 0) {
		printf("make_ca: %s\n", err);
		free(key);
		free(crt);
		return -1;
	}
	ca->issuer = tls_issuer_new(crt, key, err, sizeof(err));
	ca->parents_pem = strdup("");
	ca->bundle_pem = crt;
	memcpy(ca->secret, S1, 32);
	ca->secret_len = 32;
	ca->issuer_not_after = now + 86400 * 30;
	free(key);
	return ca->issuer ? 0 : -1;
}

static char *csr_for(const char *id)
{
	char err[256];
	char *key = tls_key_generate(err, sizeof(err));
	char *csr = tls_csr_create(key, id, err, sizeof(err));

	free(key);
	return csr;
}

static void test_sign(void)
{
	struct ca ca, lab;
	char tok[CA_TOKEN_MAX], id[600], err[256];
	char *csr_reviews = csr_for("spiffe://cluster.local/ns/default/sa/reviews");
	char *csr_ratings = csr_for("spiffe://cluster.local/ns/default/sa/ratings");
	char *csr_bare = csr_for(NULL);
	char *out;
	int st;

	if (make_ca(&ca, NULL) < 0 || make_ca(&lab, "default") < 0 || !csr_reviews || !csr_ratings || !csr_bare) {
		TEST("sign: setup", 0);
		return;
	}
	log_level = LOG_ERROR;  /* the 403 lines are expected */
	ca_token_make(S1, 32, "default", "reviews", 0, tok, sizeof(tok));
	st = ca_sign(&ca, tok, strlen(tok), csr_reviews, strlen(csr_reviews), "test", &out);
	TEST("sign: token + matching CSR -> 200", st == 200 && out && strstr(out, "BEGIN CERTIFICATE"));
	TEST("sign: the chain leads to the root and names the token's identity",
	     st == 200 && tls_chain_verify(out, ca.bundle_pem, id, sizeof(id), err, sizeof(err)) == 0 &&
	     !strcmp(id, "spiffe://cluster.local/ns/default/sa/reviews"));
	{
		struct tls_cert_info info;
		long long now = time(NULL);

		TEST("sign: 24h lifetime, not_before 5 minutes back",
		     tls_chain_info(out, strlen(out), &info, 1, err, sizeof(err)) == 1 &&
		     (long long)info.not_after - now >= 86400 - 5 && (long long)info.not_after - now <= 86400 &&
		     now - (long long)info.not_before >= 299 && now - (long long)info.not_before <= 305);
	}
	free(out);
	st = ca_sign(&ca, tok, strlen(tok), csr_bare, strlen(csr_bare), "test", &out);
	TEST("sign: a CSR without an id gets the token's", st == 200);
	free(out);
	st = ca_sign(&ca, tok, strlen(tok), csr_ratings, strlen(csr_ratings), "test", &out);
	TEST("sign: reviews' token cannot get ratings", st == 403 && strstr(out, "token is for"));
	free(out);
	ca_token_make(S2, 32, "default", "ratings", 0, tok, sizeof(tok));
	st = ca_sign(&ca, tok, strlen(tok), csr_ratings, strlen(csr_ratings), "test", &out);
	TEST("sign: another CA's token -> 403", st == 403);
	free(out);
	ca_token_make(S1, 32, "default", "ratings", 1000, tok, sizeof(tok));
	st = ca_sign(&ca, tok, strlen(tok), csr_ratings, strlen(csr_ratings), "test", &out);
	TEST("sign: expired token -> 403", st == 403 && strstr(out, "expired"));
	free(out);
	st = ca_sign(&ca, NULL, 0, csr_ratings, strlen(csr_ratings), "test", &out);
	TEST("sign: no token -> 403", st == 403 && strstr(out, "token is required"));
	free(out);
	st = ca_sign(&ca, "x", 1, "garbage", 7, "test", &out);
	TEST("sign: garbage CSR -> 400", st == 400);
	free(out);
	/* lab mode */
	st = ca_sign(&lab, NULL, 0, csr_ratings, strlen(csr_ratings), "test", &out);
	TEST("allow_namespaces: an identity of a listed namespace without a token", st == 200);
	free(out);
	{
		char *other = csr_for("spiffe://cluster.local/ns/production/sa/x");
		char *foreign = csr_for("spiffe://evil.example/ns/default/sa/x");
		char *trick = csr_for("spiffe://cluster.local/ns/default/sa/x/y");

		st = ca_sign(&lab, NULL, 0, other, strlen(other), "test", &out);
		TEST("allow_namespaces: not another namespace", st == 403);
		free(out);
		st = ca_sign(&lab, NULL, 0, foreign, strlen(foreign), "test", &out);
		TEST("allow_namespaces: not another trust domain", st == 403);
		free(out);
		st = ca_sign(&lab, NULL, 0, trick, strlen(trick), "test", &out);
		TEST("allow_namespaces: not a path with more segments", st == 403);
		free(out);
		st = ca_sign(&lab, NULL, 0, csr_bare, strlen(csr_bare), "test", &out);
		TEST("allow_namespaces: a CSR must name its identity", st == 403);
		free(out);
		free(other);
		free(foreign);
		free(trick);
	}
	free(csr_reviews);
	free(csr_ratings);
	free(csr_bare);
	ca_free(&ca);
	ca_free(&lab);
}

/* ---------------------------------------------------------------- the agent against a real CA (a child process) */

static char g_dir[256], g_ini[300];
static int g_port;

static pid_t start_ca(void)
{
	pid_t pid = fork();

	if (pid == 0) {
		char *argv[] = { "ca", "-c", g_ini, NULL };

		log_level = LOG_ERROR;
		_exit(ca_main(3, argv));
	}
	return pid;
}

static void stop_ca(pid_t pid)
{
	int st;

	kill(pid, SIGTERM);
	waitpid(pid, &st, 0);
}

struct got { struct tls_creds *c; int calls; struct ev_loop *loop; };

static void on_creds(struct tls_creds *c, void *arg)
{
	struct got *g = arg;

	tls_creds_unref(g->c);
	g->c = c;
	g->calls++;
	ev_break(g->loop, EVBREAK_ALL);
}

static void on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

/* a certificate for reviews that is at 90% of its life: renewal is due now */
static struct tls_creds *short_lived(void)
{
	char p[400], err[512];
	long long now = time(NULL);
	struct tls_issue rq = { "O=mesh", "spiffe://cluster.local/ns/default/sa/reviews", NULL, 0, 0, -1, now - 90, now + 10 };
	char *rc, *rk, *key, *crt;
	struct tls_issuer *iss;
	struct tls_creds *c = NULL;

	snprintf(p, sizeof(p), "%s/root.crt", g_dir);
	rc = ca_read_file(p, 1 << 20, NULL);
	snprintf(p, sizeof(p), "%s/root.key", g_dir);
	rk = ca_read_file(p, 1 << 20, NULL);
	iss = tls_issuer_new(rc, rk, err, sizeof(err));
	key = tls_key_generate(err, sizeof(err));
	crt = iss ? tls_issue_for_key(iss, &rq, key, err, sizeof(err)) : NULL;
	if (crt)
		c = tls_creds_new(crt, key, rc, err, sizeof(err));
	free(rc);
	free(rk);
	free(key);
	free(crt);
	tls_issuer_free(iss);
	return c;
}

static void test_agent(void)
{
	char *init[] = { "init", "--dir", g_dir, NULL };
	char p[400], tokp[400], bundle[400], err[1024], tok[CA_TOKEN_MAX];
	unsigned char secret[64];
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	struct conf cf;
	struct tls_creds *c = NULL, *cur;
	/* not the default loop: a forked CA would share its wakeup fd */
	struct ev_loop *loop = ev_loop_new(EVFLAG_NOENV);
	struct got g = { NULL, 0, loop };
	ev_timer to;
	FILE *f;
	char *text;
	size_t n;
	pid_t ca;
	int fd, i;

	snprintf(g_dir, sizeof(g_dir), "/tmp/mesh-test-ca.%d", (int)getpid());
	snprintf(g_ini, sizeof(g_ini), "%s/ca.ini", g_dir);
	fflush(stdout);
	TEST("agent: ca init", ca_init(3, init) == 0);
	/* a free port for the CA */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	getsockname(fd, (struct sockaddr *)&sa, &sl);
	g_port = ntohs(sa.sin_port);
	close(fd);
	f = fopen(g_ini, "a");
	fprintf(f, "listen = 127.0.0.1:%d\n", g_port);
	fclose(f);
	/* a token, as `mesh ca token` makes it */
	snprintf(p, sizeof(p), "%s/token.secret", g_dir);
	text = ca_read_file(p, 4096, &n);
	n = (size_t)ca_unhex(text, 64, secret, sizeof(secret));
	free(text);
	ca_token_make(secret, n, "default", "reviews", 0, tok, sizeof(tok));
	snprintf(tokp, sizeof(tokp), "%s/reviews.token", g_dir);
	f = fopen(tokp, "w");
	fprintf(f, "%s\n", tok);
	fclose(f);
	snprintf(bundle, sizeof(bundle), "%s/root.crt", g_dir);

	memset(&cf, 0, sizeof(cf));
	snprintf(p, sizeof(p), "127.0.0.1:%d", g_port);
	conf_parse_addr(p, &cf.control.ca, 1);
	cf.control.ca.set = 1;
	cf.control.trust_bundle = bundle;
	cf.control.token_file = tokp;
	cf.workload.namespace = "default";
	cf.workload.service_account = "reviews";
	cf.mesh.trust_domain = "cluster.local";

	c = agent_fetch(&cf, 2000, err, sizeof(err));
	TEST("agent: CA down is a clear error", !c && strstr(err, "is `mesh ca` running"));
	ca = start_ca();
	for (i = 0; i < 50 && !c; i++) {
		usleep(100000);
		c = agent_fetch(&cf, 2000, err, sizeof(err));
	}
	TEST("agent: first identity", c && !strcmp(tls_creds_id(c), "spiffe://cluster.local/ns/default/sa/reviews"));
	if (!c)
		printf("  %s\n", err);
	tls_creds_unref(c);
	cf.workload.service_account = "ratings";
	c = agent_fetch(&cf, 2000, err, sizeof(err));
	TEST("agent: reviews' token does not get ratings", !c && strstr(err, "403"));
	printf("  (%s)\n", err);
	cf.workload.service_account = "reviews";

	/* renewal: a certificate at 90% of its life is renewed at once, on the loop */
	cur = short_lived();
	TEST("agent: renewal starts", cur && agent_start(loop, &cf, cur, on_creds, &g) == 0);
	ev_timer_init(&to, on_timeout, 10.0, 0.0);
	ev_timer_start(loop, &to);
	ev_run(loop, 0);
	ev_timer_stop(loop, &to);
	TEST("agent: renewed on the loop thread", g.calls == 1 && g.c &&
	     tls_creds_not_after(g.c) > (double)time(NULL) + 86000);
	agent_stop();

	/* the CA goes away: retries with backoff, then recovers when it returns */
	stop_ca(ca);
	g.calls = 0;
	TEST("agent: renewal with the CA down starts", agent_start(loop, &cf, cur, on_creds, &g) == 0);
	ev_timer_init(&to, on_timeout, 2.5, 0.0);
	ev_timer_start(loop, &to);
	ev_run(loop, 0);
	TEST("agent: nothing while the CA is down", g.calls == 0);
	ca = start_ca();
	ev_timer_init(&to, on_timeout, 15.0, 0.0);
	ev_timer_start(loop, &to);
	ev_run(loop, 0);
	ev_timer_stop(loop, &to);
	TEST("agent: recovers when the CA returns", g.calls == 1 && g.c);
	agent_stop();
	stop_ca(ca);
	tls_creds_unref(cur);
	tls_creds_unref(g.c);
	snprintf(p, sizeof(p), "rm -rf '%s'", g_dir);
	(void)!system(p);
	ev_loop_destroy(loop);
}

int main(void)
{
	TEST("init", tls_global_init() == 0);
	test_tokens();
	test_config();
	test_sign();
	test_agent();
	return test_report();
}
