/*
 * tls: real handshakes between two tls_conn over socketpairs (non-blocking,
 * both ends driven from one poll loop): mutual TLS, refused peers (another
 * root, expired, not yet valid, wrong identity, foreign trust domain, no
 * SPIFFE id), resumption on TLS 1.3 and 1.2 with the client's identity known
 * to a resumed server, sniffing, key/CSR/issuer helpers, the memory an idle
 * mTLS connection holds (asserted <= 48 KiB), and the lean client of the control
 * channel (TLS 1.2, 4 KiB records, <= 20 KiB idle).
 */
#include "../../modules/tls.c"

#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>

#include "test.h"

#if defined(__SANITIZE_ADDRESS__)
/* from <sanitizer/allocator_interface.h>, which not every gcc installs */
size_t __sanitizer_get_current_allocated_bytes(void);
static size_t heap_now(void) { return __sanitizer_get_current_allocated_bytes(); }
#else
#include <malloc.h>
static size_t heap_now(void) { return mallinfo2().uordblks; }
#endif

#define TD "spiffe://cluster.local"

static char *root_key, *root_crt, *other_key, *other_crt;

static char *mkcert(const char *ca_crt, const char *ca_key, const char *key, const char *uri, long long nb, long long na)
{
	struct tls_issue req = { "CN=test,O=mesh", uri, NULL, 0, 0, -1, nb, na };
	struct tls_issuer *iss = tls_issuer_new(ca_crt, ca_key, NULL, 0);
	char err[256] = "";
	char *pem = tls_issue_for_key(iss, &req, key, err, sizeof(err));

	if (!pem)
		printf("mkcert: %s\n", err);
	tls_issuer_free(iss);
	return pem;
}

/* creds for uri under (ca_crt, ca_key), trusting bundle */
static struct tls_creds *mkcreds(const char *ca_crt, const char *ca_key, const char *bundle, const char *uri,
                                 long long nb, long long na)
{
	char err[256] = "";
	char *key = tls_key_generate(err, sizeof(err));
	char *crt = mkcert(ca_crt, ca_key, key, uri, nb, na);
	struct tls_creds *c = crt ? tls_creds_new(crt, key, bundle, err, sizeof(err)) : NULL;

	if (!c)
		printf("mkcreds %s: %s\n", uri ? uri : "(none)", err);
	free(key);
	free(crt);
	return c;
}

static void nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

struct pair {
	int fd[2];
	struct tls_conn *cli, *srv;
	int rc_cli, rc_srv;          /* last tls_handshake result */
};

/* drives both handshakes until both finish or one fails; 0 when both done */
static int drive(struct pair *p)
{
	int i;

	p->rc_cli = p->rc_srv = TLS_WANT_READ;
	for (i = 0; i < 1000; i++) {
		struct pollfd pf[2] = { { p->fd[0], POLLIN, 0 }, { p->fd[1], POLLIN, 0 } };

		if (p->rc_cli != 0 && p->rc_cli != TLS_ERR)
			p->rc_cli = tls_handshake(p->cli);
		if (p->rc_srv != 0 && p->rc_srv != TLS_ERR)
			p->rc_srv = tls_handshake(p->srv);
		if (p->rc_cli == TLS_ERR || p->rc_srv == TLS_ERR)
			return -1;
		if (p->rc_cli == 0 && p->rc_srv == 0)
			return 0;
		poll(pf, 2, 100);
	}
	return -1;
}

static int lean;  /* pair_open: tls_client_lean instead of tls_client */

static int pair_open(struct pair *p, struct tls_creds *c, struct tls_creds *s, const char *const *ids, size_t n,
                     const char *key)
{
	memset(p, 0, sizeof(*p));
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, p->fd) < 0)
		return -1;
	nonblock(p->fd[0]);
	nonblock(p->fd[1]);
	p->cli = (lean ? tls_client_lean : tls_client)(c, p->fd[0], ids, n, key);
	p->srv = tls_server(s, p->fd[1]);
	return p->cli && p->srv ? 0 : -1;
}

static void pair_close(struct pair *p)
{
	tls_free(p->cli);
	tls_free(p->srv);
	close(p->fd[0]);
	close(p->fd[1]);
	p->cli = p->srv = NULL;
}

/* writes msg on a, reads it back on b (polling, up to ~10 s: loaded CI machines); 1 when it arrives intact */
static int exchange(struct tls_conn *a, struct tls_conn *b, const char *msg)
{
	char buf[256];
	size_t got = 0, len = strlen(msg);
	int i;
	ssize_t n;

	for (i = 0; i < 2000 && (n = tls_write(a, msg, len)) < 0; i++) {
		if (n == TLS_ERR)
			return 0;
		poll(NULL, 0, 5);
	}
	for (i = 0; i < 2000 && got < len; i++) {
		n = tls_read(b, buf + got, sizeof(buf) - got);
		if (n > 0)
			got += (size_t)n;
		else if (n == 0 || n == TLS_ERR)
			return 0;
		else
			poll(NULL, 0, 5);
	}
	return got == len && !memcmp(buf, msg, len);
}

/* after a client read, a TLS 1.3 ticket is in; a non-blocking read just takes it */
static void client_take_ticket(struct pair *p)
{
	char b[16];
	int i;

	for (i = 0; i < 5; i++) {
		(void)tls_read(p->cli, b, sizeof(b));
		poll(NULL, 0, 2);
	}
}

static void test_handshakes(void)
{
	long long now = time(NULL), day = 86400;
	const char *ids_b[] = { TD "/ns/default/sa/b" }, *ids_a[] = { TD "/ns/other/sa/x", TD "/ns/default/sa/a" };
	struct tls_creds *a = mkcreds(root_crt, root_key, root_crt, TD "/ns/default/sa/a", now - 60, now + day);
	struct tls_creds *b = mkcreds(root_crt, root_key, root_crt, TD "/ns/default/sa/b", now - 60, now + day);
	char *both = malloc(strlen(root_crt) + strlen(other_crt) + 1);
	struct tls_creds *foreign = mkcreds(other_crt, other_key, strcat(strcpy(both, other_crt), root_crt), TD "/ns/default/sa/a", now - 60, now + day);
	struct tls_creds *expired = mkcreds(root_crt, root_key, root_crt, TD "/ns/default/sa/b", now - 2 * day, now - day);
	struct tls_creds *future = mkcreds(root_crt, root_key, root_crt, TD "/ns/default/sa/b", now + day, now + 2 * day);
	struct tls_creds *othertd = mkcreds(root_crt, root_key, root_crt, "spiffe://evil.example/ns/default/sa/b",
	                                    now - 60, now + day);
	struct tls_creds *bare = mkcreds(root_crt, root_key, root_crt, NULL, now - 60, now + day);
	struct pair p;
	int rc;

	TEST("creds: built", a && b && foreign && expired && future && othertd);
	TEST("creds: a certificate without a SPIFFE id is refused as an identity", bare == NULL);
	if (!a || !b || !foreign || !expired || !future || !othertd)
		return;
	TEST("creds: own id", !strcmp(tls_creds_id(a), TD "/ns/default/sa/a"));
	TEST("creds: validity", tls_creds_not_before(a) <= (double)now && tls_creds_not_after(a) > (double)now + day - 5);
	{
		char err[256] = "";
		struct tls_creds *x = tls_creds_new(tls_creds_chain_pem(foreign), "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
		                                    root_crt, err, sizeof(err));
		TEST("creds: a bad key is an error", x == NULL && err[0]);
		char *k = tls_key_generate(err, sizeof(err));
		char *crt = mkcert(other_crt, other_key, k, TD "/ns/default/sa/a", now - 60, now + day);

		x = tls_creds_new(crt, k, root_crt, err, sizeof(err));
		TEST("creds: a chain that does not lead to the bundle is refused", x == NULL && strstr(err, "trust bundle"));
		free(k);
		free(crt);
	}

	rc = pair_open(&p, a, b, ids_b, 1, NULL) == 0 ? drive(&p) : -1;
	TEST("mutual: handshake completes", rc == 0);
	TEST("mutual: client sees the server's id", !strcmp(tls_peer_id(p.cli), TD "/ns/default/sa/b"));
	TEST("mutual: server sees the client's id", !strcmp(tls_peer_id(p.srv), TD "/ns/default/sa/a"));
	TEST("mutual: TLS 1.3 preferred", !strcmp(tls_version(p.cli), "TLSv1.3"));
	TEST("mutual: not resumed", !tls_resumed(p.cli) && !tls_resumed(p.srv));
	TEST("mutual: data client -> server", exchange(p.cli, p.srv, "GET / HTTP/1.1\r\n\r\n"));
	TEST("mutual: data server -> client", exchange(p.srv, p.cli, "HTTP/1.1 200 OK\r\n\r\n"));
	pair_close(&p);

	rc = pair_open(&p, a, b, ids_a, 2, NULL) == 0 ? drive(&p) : -1;
	TEST("wrong identity: client refuses a server that is not one of ids", rc < 0 && p.rc_cli == TLS_ERR);
	TEST("wrong identity: says why", strstr(tls_error(p.cli), "not one the destination may have") != NULL);
	printf("  (client error: %s)\n", tls_error(p.cli));
	pair_close(&p);

	rc = pair_open(&p, a, foreign, NULL, 0, NULL) == 0 ? drive(&p) : -1;
	TEST("another root: client refuses the server", rc < 0 && p.rc_cli == TLS_ERR);
	printf("  (client error: %s)\n", tls_error(p.cli));
	pair_close(&p);
	rc = pair_open(&p, foreign, b, NULL, 0, NULL) == 0 ? drive(&p) : -1;
	TEST("another root: server refuses the client", rc < 0 && p.rc_srv == TLS_ERR);
	printf("  (server error: %s)\n", tls_error(p.srv));
	pair_close(&p);

	rc = pair_open(&p, a, expired, NULL, 0, NULL) == 0 ? drive(&p) : -1;
	TEST("expired: client refuses the server", rc < 0 && p.rc_cli == TLS_ERR && strstr(tls_error(p.cli), "expired"));
	printf("  (client error: %s)\n", tls_error(p.cli));
	pair_close(&p);
	rc = pair_open(&p, expired, b, NULL, 0, NULL) == 0 ? drive(&p) : -1;
	TEST("expired: server refuses the client", rc < 0 && p.rc_srv == TLS_ERR);
	pair_close(&p);
	rc = pair_open(&p, a, future, NULL, 0, NULL) == 0 ? drive(&p) : -1;
	TEST("not yet valid: client refuses the server", rc < 0 && p.rc_cli == TLS_ERR && strstr(tls_error(p.cli), "future"));
	printf("  (client error: %s)\n", tls_error(p.cli));
	pair_close(&p);
	rc = pair_open(&p, future, b, NULL, 0, NULL) == 0 ? drive(&p) : -1;
	TEST("not yet valid: server refuses the client", rc < 0 && p.rc_srv == TLS_ERR);
	pair_close(&p);

	rc = pair_open(&p, a, othertd, NULL, 0, NULL) == 0 ? drive(&p) : -1;
	TEST("trust domain: client refuses a server of another trust domain", rc < 0 && strstr(tls_error(p.cli), "trust domain"));
	pair_close(&p);
	rc = pair_open(&p, othertd, b, NULL, 0, NULL) == 0 ? drive(&p) : -1;
	TEST("trust domain: a client of another trust domain gets nowhere",
	     rc < 0 && (strstr(tls_error(p.srv), "trust domain") || strstr(tls_error(p.cli), "trust domain")));
	pair_close(&p);

	/* resumption, TLS 1.3: the ticket comes after the handshake, with the first read */
	tls_session_cache_clear();
	rc = pair_open(&p, a, b, ids_b, 1, "10.0.0.7:15006") == 0 ? drive(&p) : -1;
	TEST("resume 1.3: first connection full", rc == 0 && !tls_resumed(p.cli));
	exchange(p.cli, p.srv, "ping");
	exchange(p.srv, p.cli, "pong");
	client_take_ticket(&p);
	pair_close(&p);
	rc = pair_open(&p, a, b, ids_b, 1, "10.0.0.7:15006") == 0 ? drive(&p) : -1;
	TEST("resume 1.3: second connection resumed", rc == 0 && tls_resumed(p.cli) && tls_resumed(p.srv));
	TEST("resume 1.3: client knows the server's id", !strcmp(tls_peer_id(p.cli), TD "/ns/default/sa/b"));
	TEST("resume 1.3: server knows the client's id", !strcmp(tls_peer_id(p.srv), TD "/ns/default/sa/a"));
	TEST("resume 1.3: data flows", exchange(p.cli, p.srv, "again"));
	pair_close(&p);
	rc = pair_open(&p, a, b, ids_a, 2, "10.0.0.7:15006") == 0 ? drive(&p) : -1;
	TEST("resume: a cached session is not used for a destination the server may not serve", rc < 0);
	pair_close(&p);
	rc = pair_open(&p, a, b, ids_b, 1, "10.0.0.8:15006") == 0 ? drive(&p) : -1;
	TEST("resume: another session key does a full handshake", rc == 0 && !tls_resumed(p.cli));
	pair_close(&p);

	/* TLS 1.2 still works, and resumes with its ticket */
	mbedtls_ssl_conf_max_tls_version(&a->cli, MBEDTLS_SSL_VERSION_TLS1_2);
	tls_session_cache_clear();
	rc = pair_open(&p, a, b, ids_b, 1, "k12") == 0 ? drive(&p) : -1;
	TEST("TLS 1.2: handshake", rc == 0 && !strcmp(tls_version(p.cli), "TLSv1.2"));
	TEST("TLS 1.2: ids", rc == 0 && !strcmp(tls_peer_id(p.srv), TD "/ns/default/sa/a") &&
	                     !strcmp(tls_peer_id(p.cli), TD "/ns/default/sa/b"));
	TEST("TLS 1.2: data", exchange(p.cli, p.srv, "twelve"));
	pair_close(&p);
	rc = pair_open(&p, a, b, ids_b, 1, "k12") == 0 ? drive(&p) : -1;
	TEST("TLS 1.2: resumed with the server knowing the client", rc == 0 && tls_resumed(p.cli) && tls_resumed(p.srv) &&
	                                                            !strcmp(tls_peer_id(p.srv), TD "/ns/default/sa/a"));
	pair_close(&p);
	mbedtls_ssl_conf_max_tls_version(&a->cli, MBEDTLS_SSL_VERSION_TLS1_3);

	/* plaintext to a TLS server, garbage to a TLS client */
	if (pair_open(&p, a, b, NULL, 0, NULL) == 0) {
		int i;

		(void)!write(p.fd[0], "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27);
		for (i = 0, rc = TLS_WANT_READ; i < 50 && rc != TLS_ERR; i++, poll(NULL, 0, 2))
			rc = tls_handshake(p.srv);
		TEST("plaintext to a TLS server: an error, no crash", rc == TLS_ERR);
		pair_close(&p);
	}
	tls_creds_unref(a);
	tls_creds_unref(b);
	tls_creds_unref(foreign);
	tls_creds_unref(expired);
	tls_creds_unref(future);
	tls_creds_unref(othertd);
	free(both);
	tls_session_cache_clear();
}

/* a writes len bytes of a pattern, b reads them (both sides polled, bounded); 1 when intact */
static int exchange_big(struct tls_conn *a, struct tls_conn *b, size_t len)
{
	unsigned char *out = malloc(len), *in = malloc(len);
	size_t sent = 0, got = 0, i;
	int round, ok;

	for (i = 0; i < len; i++)
		out[i] = (unsigned char)(i * 7 + i / 251);
	for (round = 0; round < 4000 && got < len; round++) {
		ssize_t n = sent < len ? tls_write(a, out + sent, len - sent) : TLS_WANT_WRITE;

		if (n > 0)
			sent += (size_t)n;
		else if (n == TLS_ERR)
			break;
		n = tls_read(b, in + got, len - got);
		if (n > 0)
			got += (size_t)n;
		else if (n == 0 || n == TLS_ERR)
			break;
		else
			poll(NULL, 0, 1);
	}
	ok = got == len && !memcmp(in, out, len);
	free(out);
	free(in);
	return ok;
}

/* tls_client_lean: TLS 1.2 with 4 KiB records; what crosses is still whole, both ways */
static void test_lean(void)
{
	long long now = time(NULL);
	struct tls_creds *a = mkcreds(root_crt, root_key, root_crt, TD "/ns/default/sa/a", now - 60, now + 86400);
	struct tls_creds *b = mkcreds(root_crt, root_key, root_crt, TD "/ns/default/sa/b", now - 60, now + 86400);
	const char *ids[] = { TD "/ns/default/sa/b" };
	struct pair p;

	if (!a || !b)
		return;
	lean = 1;
	TEST("lean: handshake", pair_open(&p, a, b, ids, 1, NULL) == 0 && drive(&p) == 0);
	TEST("lean: TLS 1.2 (mbedTLS sizes records down only there)", !strcmp(tls_version(p.cli), "TLSv1.2"));
	TEST("lean: server's records <= 4 KiB", mbedtls_ssl_get_max_out_record_payload(&p.srv->ssl) == 4096);
	TEST("lean: client's records <= 4 KiB", mbedtls_ssl_get_max_out_record_payload(&p.cli->ssl) == 4096);
	TEST("lean: server knows the client", !strcmp(tls_peer_id(p.srv), TD "/ns/default/sa/a"));
	TEST("lean: 100 KB client -> server intact", exchange_big(p.cli, p.srv, 100000));
	TEST("lean: 100 KB server -> client intact", exchange_big(p.srv, p.cli, 100000));
	pair_close(&p);
	/* a server with the wrong identity is refused as on the full-size path */
	ids[0] = TD "/ns/default/sa/c";
	TEST("lean: wrong server identity refused", pair_open(&p, a, b, ids, 1, NULL) == 0 && drive(&p) < 0);
	pair_close(&p);
	lean = 0;
	tls_creds_unref(a);
	tls_creds_unref(b);
}

static void test_memory(void)
{
	enum { N = 200 };
	long long now = time(NULL);
	struct tls_creds *a = mkcreds(root_crt, root_key, root_crt, TD "/ns/default/sa/a", now - 60, now + 86400);
	struct tls_creds *b = mkcreds(root_crt, root_key, root_crt, TD "/ns/default/sa/b", now - 60, now + 86400);
	static struct pair p[N];
	size_t before, after, per;
	int i, ok = 1;

	if (!a || !b)
		return;
	before = heap_now();
	for (i = 0; i < N; i++) {
		if (pair_open(&p[i], a, b, NULL, 0, NULL) < 0 || drive(&p[i]) < 0 ||
		    !exchange(p[i].cli, p[i].srv, "hello") || !exchange(p[i].srv, p[i].cli, "world")) {
			printf("  pair %d: %s / %s\n", i, p[i].cli ? tls_error(p[i].cli) : "?", p[i].srv ? tls_error(p[i].srv) : "?");
			ok = 0;
			break;
		}
	}
	after = heap_now();
	TEST(lean ? "memory: 200 lean mTLS connection pairs up" : "memory: 200 mTLS connection pairs up", ok);
	per = (after - before) / (2 * N);
	printf("  heap per idle %smTLS connection (one end, after a request/response): %zu bytes\n", lean ? "lean " : "", per);
	if (lean)
		TEST("memory: <= 20 KiB per idle lean mTLS connection", per <= 20 * 1024);
	else
		TEST("memory: <= 48 KiB per idle mTLS connection", per <= 48 * 1024);
	for (i = 0; i < N; i++)
		if (p[i].cli)
			pair_close(&p[i]);
	tls_creds_unref(a);
	tls_creds_unref(b);
}

static void test_sniff(void)
{
	static const unsigned char hello[] = { 0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc };

	TEST("sniff: ClientHello", tls_sniff(hello, sizeof(hello)) == 1);
	TEST("sniff: need more on a prefix", tls_sniff(hello, 0) == -1 && tls_sniff(hello, 3) == -1 && tls_sniff(hello, 5) == -1);
	TEST("sniff: HTTP is not TLS", tls_sniff((const unsigned char *)"GET / HTTP/1.1\r\n", 16) == 0);
	TEST("sniff: first byte decides", tls_sniff((const unsigned char *)"P", 1) == 0);
	TEST("sniff: a TLS alert is not a ClientHello", tls_sniff((const unsigned char *)"\x15\x03\x03\x00\x02\x02", 6) == 0);
	TEST("sniff: SSLv2-ish version refused", tls_sniff((const unsigned char *)"\x16\x02\x00", 3) == 0);
}

static void test_helpers(void)
{
	char err[256] = "", id[512];
	long long now = time(NULL);
	char *key = tls_key_generate(err, sizeof(err));
	char *csr = key ? tls_csr_create(key, TD "/ns/x/sa/y", err, sizeof(err)) : NULL;
	struct tls_issuer *iss = tls_issuer_new(root_crt, root_key, err, sizeof(err));
	struct tls_issue req = { "CN=y,O=mesh", TD "/ns/x/sa/y", NULL, 0, 0, -1, now - 300, now + 3600 };
	char *crt = csr && iss ? tls_issue_for_csr(iss, &req, csr, strlen(csr), err, sizeof(err)) : NULL;
	struct tls_cert_info info[4];
	char *bad;
	int n;

	TEST("key: generated", key && strstr(key, "BEGIN EC PRIVATE KEY"));
	TEST("csr: created", csr && strstr(csr, "BEGIN CERTIFICATE REQUEST"));
	TEST("issue: certificate from a CSR", crt && strstr(crt, "BEGIN CERTIFICATE"));
	if (!crt) {
		printf("  %s\n", err);
		return;
	}
	n = tls_chain_info(crt, strlen(crt), info, 4, err, sizeof(err));
	TEST("info: one certificate", n == 1);
	TEST("info: SPIFFE id", n == 1 && !strcmp(info[0].id, TD "/ns/x/sa/y"));
	TEST("info: dates", n == 1 && (long long)info[0].not_before == now - 300 && (long long)info[0].not_after == now + 3600);
	TEST("info: issuer is the root", n == 1 && strstr(info[0].issuer, "CN=") && !info[0].is_ca && strlen(info[0].fingerprint) == 64);
	TEST("verify: chains to the root", tls_chain_verify(crt, root_crt, id, sizeof(id), err, sizeof(err)) == 0 &&
	                                   !strcmp(id, TD "/ns/x/sa/y"));
	TEST("verify: not to another root", tls_chain_verify(crt, other_crt, id, sizeof(id), err, sizeof(err)) < 0);
	/* a CSR whose signature was tampered with is refused */
	bad = strdup(csr);
	{
		char *end = strstr(bad, "-----END");
		/* flip a base64 character near the end (inside the signature) */
		if (end && end - bad > 10)
			end[-6] = end[-6] == 'A' ? 'B' : 'A';
	}
	free(crt);
	crt = tls_issue_for_csr(iss, &req, bad, strlen(bad), err, sizeof(err));
	TEST("issue: a tampered CSR is refused", crt == NULL);
	printf("  (%s)\n", err);
	TEST("issue: garbage is refused", tls_issue_for_csr(iss, &req, "hello", 5, err, sizeof(err)) == NULL);
	TEST("info: garbage is an error", tls_chain_info("junk", 4, info, 4, err, sizeof(err)) < 0);
	free(bad);
	free(crt);
	free(csr);
	free(key);
	tls_issuer_free(iss);
}

int main(void)
{
	long long now = time(NULL), ten = 10LL * 365 * 86400;
	struct tls_issue rq = { "CN=test root,O=mesh", NULL, NULL, 0, 1, -1, now - 60, now + ten };
	struct tls_issue rq2 = { "CN=other root,O=mesh", NULL, NULL, 0, 1, -1, now - 60, now + ten };
	char err[256] = "";

	TEST("init", tls_global_init() == 0);
	root_key = tls_key_generate(err, sizeof(err));
	other_key = tls_key_generate(err, sizeof(err));
	root_crt = root_key ? tls_issue_for_key(NULL, &rq, root_key, err, sizeof(err)) : NULL;
	other_crt = other_key ? tls_issue_for_key(NULL, &rq2, other_key, err, sizeof(err)) : NULL;
	TEST("roots: made", root_crt && other_crt);
	if (!root_crt || !other_crt) {
		printf("  %s\n", err);
		return test_report();
	}
	test_sniff();
	test_helpers();
	test_handshakes();
	test_memory();
	test_lean();
	lean = 1;
	test_memory();
	lean = 0;
	free(root_key);
	free(root_crt);
	free(other_key);
	free(other_crt);
	return test_report();
}
