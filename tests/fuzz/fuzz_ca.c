/*
 * libFuzzer target for the CA's request handling: every input goes
 *  - through handle() as raw bytes on a connection (HTTP head, routing,
 *    Authorization, body framing, the sign handler), which must answer
 *    (a response queued) or ask for more, never anything else;
 *  - through ca_sign() split at the first newline into a token and a CSR
 *    body, which must answer 200/400/403 with a body, and 200 only with a
 *    chain that verifies and names the token's identity;
 *  - through ca_token_check(), which must agree with a re-made token.
 * The CA (root key, secret) is made once; tokens from corpus files are
 * random, so the fuzzer mostly exercises refusal paths - the seeds in
 * corpus/ca/ include a valid request for the secret below.
 */
#include <assert.h>

#include "../../modules/agent.c"
#include "../../modules/buf.c"
#include "../../modules/ca.c"
#include "../../modules/conf.c"
#include "../../modules/http1.c"
#include "../../modules/log.c"
#include "../../modules/net.c"
#include "../../modules/tls.c"

static struct ca g_ca;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	long long now = time(NULL);
	struct tls_issue rq = { "CN=fuzz root,O=mesh", NULL, NULL, 0, 1, -1, now - 60, now + 86400 };
	char err[512];
	char *key, *crt;

	(void)argc;
	(void)argv;
	log_level = -1;
	if (tls_global_init() < 0)
		abort();
	key = tls_key_generate(err, sizeof(err));
	crt = tls_issue_for_key(NULL, &rq, key, err, sizeof(err));
	if (!crt || ca_config_parse(&g_ca.cfg, "fuzz.ini", "[ca]\nallow_namespaces = lab\n", err, sizeof(err)) < 0)
		abort();
	g_ca.issuer = tls_issuer_new(crt, key, err, sizeof(err));
	g_ca.parents_pem = strdup("");
	g_ca.bundle_pem = crt;
	/* the same secret as tests/fuzz/corpus/ca seeds: 32 bytes of 'k' */
	memset(g_ca.secret, 'k', 32);
	g_ca.secret_len = 32;
	g_ca.issuer_not_after = now + 86400;
	free(key);
	return g_ca.issuer ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ca_conn cc;
	const uint8_t *nl = memchr(data, '\n', size);
	char ns[256], sa[256], id[600], want[600], err[300];
	const char *why;
	char *body, *out = NULL;
	size_t tl, bl;
	int st;

	/* 1. raw bytes on a connection */
	memset(&cc, 0, sizeof(cc));
	cc.ca = &g_ca;
	snprintf(cc.ip, sizeof(cc.ip), "fuzz");
	cc.in_len = size < CA_MAX_REQUEST ? size : CA_MAX_REQUEST;
	memcpy(cc.in, data, cc.in_len);
	st = ca_handle(&cc);
	assert(st == -2 || (st == 0 && cc.state == CC_WRITE && cc.out && cc.out_len > 12 &&
	                    !memcmp(cc.out, "HTTP/1.1 ", 9)));
	free(cc.out);
	cc.out = NULL;

	/* 2. token line + CSR body */
	tl = nl ? (size_t)(nl - data) : size;
	bl = nl ? size - tl - 1 : 0;
	body = malloc(bl + 1);
	if (!body)
		return 0;
	memcpy(body, nl ? nl + 1 : data + size, bl);
	body[bl] = '\0';
	st = ca_sign(&g_ca, tl ? (const char *)data : NULL, tl, body, bl, "fuzz", &out);
	assert(out && (st == 200 || st == 400 || st == 403));
	if (st == 200) {
		assert(tls_chain_verify(out, g_ca.bundle_pem, id, sizeof(id), err, sizeof(err)) == 0);
		if (tl && ca_token_check(g_ca.secret, g_ca.secret_len, (const char *)data, tl, time(NULL), ns, sizeof(ns),
		                         sa, sizeof(sa), &why) == 0) {
			tls_spiffe_id(want, sizeof(want), g_ca.cfg.trust_domain, ns, sa);
			assert(!strcmp(id, want));
		} else {
			assert(!strncmp(id, "spiffe://cluster.local/ns/lab/sa/", 33));
		}
	}
	free(out);
	free(body);

	/* 3. a token that checks re-makes to itself */
	if (ca_token_check(g_ca.secret, g_ca.secret_len, (const char *)data, tl, 0, ns, sizeof(ns), sa, sizeof(sa), &why) == 0) {
		char tok[CA_TOKEN_MAX];
		long long exp = 0;
		const char *p = memchr(data + 6, ':', tl - 6);

		p = p ? memchr(p + 1, ':', tl - (size_t)(p + 1 - (const char *)data)) : NULL;
		assert(p);
		exp = strtoll(p + 1, NULL, 10);
		assert(ca_token_make(g_ca.secret, g_ca.secret_len, ns, sa, exp, tok, sizeof(tok)) == 0);
		assert(strlen(tok) <= tl && !strncasecmp(tok, (const char *)data, strlen(tok)));  /* hex case may differ */
	}
	return 0;
}
