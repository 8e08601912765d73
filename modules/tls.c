/*
 * tls: mbedTLS 3.6 for mesh (see tls.h for the contract).
 *
 * Owns: the process's random generator (CTR-DRBG over the OS entropy, shared
 * by every thread: mbedTLS is built with MBEDTLS_THREADING_PTHREAD), the
 * server's session-ticket keys (rotated by mbedtls_ssl_ticket), the client's
 * bounded session cache, the refcounted workload identities (tls_creds), and
 * mbedtls_ecdsa_verify and mbedtls_ecdsa_sign themselves (P-256, for the
 * whole library: the build sets MBEDTLS_ECDSA_VERIFY_ALT and _SIGN_ALT; see
 * "ECDSA P-256 verification" and "signing" below).
 *
 * Data enters through the BIO callbacks (non-blocking recv/send on the
 * caller's fd) and leaves as decrypted bytes through tls_read; a peer's
 * identity is taken from its leaf certificate's URI SAN in the verify
 * callback, so a certificate without an acceptable spiffe:// identity fails
 * the handshake with a bad_certificate alert instead of being found later.
 *
 * Resumption and identities: a TLS 1.3 ticket (as mbedTLS serialises it)
 * carries no peer certificate, so a resumed server would not know its
 * client. Our ticket callbacks wrap mbedTLS's encrypted ticket with the
 * peer's SPIFFE id and an HMAC under a per-process key: a resumed connection
 * knows its peer on both sides (the client keeps the id in its cache entry).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/bignum.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/md.h>
#include <mbedtls/oid.h>
#include <mbedtls/pem.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ticket.h>
#include <mbedtls/x509_crt.h>
#include <mbedtls/x509_csr.h>
#include <psa/crypto.h>

#include "tls.h"

#define TLS_ID_MAX        512   /* longest SPIFFE id we accept (the spec allows 2048; ours are short) */
#define TLS_CACHE_SLOTS   64    /* client sessions kept (one per upstream endpoint) */
#define TLS_TICKET_LIFE   7200  /* seconds a ticket key stays in use; tickets live up to twice that */
#define TLS_TICKET_MAC    16    /* truncated HMAC-SHA256 over the wrapped ticket */

/* ------------------------------------------------------------------ globals */

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_init_rc = -1;
static mbedtls_entropy_context g_entropy;
static mbedtls_ctr_drbg_context g_drbg;
static mbedtls_ssl_ticket_context g_ticket;
static unsigned char g_ticket_mac_key[32];     /* binds a peer id to a ticket */
static __thread struct tls_conn *tls_cur;      /* the connection mbedTLS is working for */

static const int g_suites[] = {
	MBEDTLS_TLS1_3_AES_128_GCM_SHA256,
	MBEDTLS_TLS1_3_CHACHA20_POLY1305_SHA256,
	MBEDTLS_TLS1_3_AES_256_GCM_SHA384,
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	0
};
static const uint16_t g_groups[] = { MBEDTLS_SSL_IANA_TLS_GROUP_SECP256R1, MBEDTLS_SSL_IANA_TLS_GROUP_NONE };
static const uint16_t g_sig_algs[] = {
	MBEDTLS_TLS1_3_SIG_ECDSA_SECP256R1_SHA256,
	MBEDTLS_TLS1_3_SIG_ECDSA_SECP384R1_SHA384,  /* = ecdsa+sha384 in TLS 1.2 (key still P-256) */
	MBEDTLS_TLS1_3_SIG_NONE
};
static const mbedtls_x509_crt_profile g_profile = {
	MBEDTLS_X509_ID_FLAG(MBEDTLS_MD_SHA256) | MBEDTLS_X509_ID_FLAG(MBEDTLS_MD_SHA384),
	MBEDTLS_X509_ID_FLAG(MBEDTLS_PK_ECDSA) | MBEDTLS_X509_ID_FLAG(MBEDTLS_PK_ECKEY),
	MBEDTLS_X509_ID_FLAG(MBEDTLS_ECP_DP_SECP256R1),
	0,
};

/* client session cache: one slot per session_key, least recently used goes */
struct tls_cached {
	char *key;                   /* session_key, NULL = free slot */
	char *peer_id;               /* the server's SPIFFE id when the session was made */
	double expires;              /* the earlier of both certificates' not_after: no resumption after */
	mbedtls_ssl_session sess;
	unsigned long used;          /* LRU clock */
};
static struct tls_cached g_cache[TLS_CACHE_SLOTS];
static unsigned long g_cache_clock;
static pthread_mutex_t g_cache_lock = PTHREAD_MUTEX_INITIALIZER;

static void tls_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void tls_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static const char *mbed_err(int rc, char *buf, size_t len)
{
	mbedtls_strerror(rc, buf, len);
	return buf;
}

int tls_rng(void *unused, unsigned char *out, size_t len)
{
	(void)unused;
	return mbedtls_ctr_drbg_random(&g_drbg, out, len);
}

static int ticket_write(void *p, const mbedtls_ssl_session *s, unsigned char *start,
                        const unsigned char *end, size_t *tlen, uint32_t *lifetime);
static int ticket_parse(void *p, mbedtls_ssl_session *s, unsigned char *buf, size_t len);

static void global_init_once(void)
{
	static const char pers[] = "mesh tls";

	if (psa_crypto_init() != PSA_SUCCESS)
		return;
	mbedtls_entropy_init(&g_entropy);
	mbedtls_ctr_drbg_init(&g_drbg);
	if (mbedtls_ctr_drbg_seed(&g_drbg, mbedtls_entropy_func, &g_entropy,
	                          (const unsigned char *)pers, sizeof(pers) - 1) != 0)
		return;
	/* reseeding from the OS every 10,000 requests keeps forks and long runs fresh */
	mbedtls_ctr_drbg_set_reseed_interval(&g_drbg, 10000);
	mbedtls_ctr_drbg_set_prediction_resistance(&g_drbg, MBEDTLS_CTR_DRBG_PR_OFF);
	mbedtls_ssl_ticket_init(&g_ticket);
	if (mbedtls_ssl_ticket_setup(&g_ticket, tls_rng, NULL, MBEDTLS_CIPHER_AES_256_GCM, TLS_TICKET_LIFE) != 0)
		return;
	if (tls_rng(NULL, g_ticket_mac_key, sizeof(g_ticket_mac_key)) != 0)
		return;
	g_init_rc = 0;
}

int tls_global_init(void)
{
	pthread_once(&g_once, global_init_once);
	return g_init_rc;
}

int tls_random(void *buf, size_t n)
{
	if (tls_global_init() < 0)
		return -1;
	return tls_rng(NULL, buf, n) == 0 ? 0 : -1;
}

void tls_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char h[32];
	size_t i;

	mbedtls_sha256(data, len, h, 0);
	for (i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", h[i]);
}

/* ------------------------------------------------------------------ identities from certificates */

/* the first URI SAN starting with spiffe://, copied into out; -1 when none fits */
static int san_spiffe_id(const mbedtls_x509_sequence *sans, char *out, size_t cap)
{
	const mbedtls_x509_sequence *cur;

	for (cur = sans; cur && cur->buf.p; cur = cur->next) {
		if (cur->buf.tag != (MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_X509_SAN_UNIFORM_RESOURCE_IDENTIFIER))
			continue;
		if (cur->buf.len < 10 || cur->buf.len >= cap || memcmp(cur->buf.p, "spiffe://", 9) != 0)
			continue;
		if (memchr(cur->buf.p, '\0', cur->buf.len))
			continue;
		memcpy(out, cur->buf.p, cur->buf.len);
		out[cur->buf.len] = '\0';
		return 0;
	}
	return -1;
}

static int crt_spiffe_id(const mbedtls_x509_crt *crt, char *out, size_t cap)
{
	return san_spiffe_id(&crt->subject_alt_names, out, cap);
}

/* length of "spiffe://td" in id, 0 if id is not a SPIFFE id */
static size_t trust_domain_len(const char *id)
{
	const char *slash;

	if (strncmp(id, "spiffe://", 9) != 0 || !id[9] || id[9] == '/')
		return 0;
	slash = strchr(id + 9, '/');
	return slash ? (size_t)(slash - id) : strlen(id);
}

static double x509_time_unix(const mbedtls_x509_time *t)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = t->year - 1900;
	tm.tm_mon = t->mon - 1;
	tm.tm_mday = t->day;
	tm.tm_hour = t->hour;
	tm.tm_min = t->min;
	tm.tm_sec = t->sec;
	return (double)timegm(&tm);
}

/* ------------------------------------------------------------------ creds */

struct tls_creds {
	int refs;                    /* atomic: the agent's thread builds, loops share */
	unsigned flags;              /* TLS_CREDS_* */
	mbedtls_x509_crt chain;      /* own chain, leaf first (empty without one) */
	mbedtls_pk_context key;      /* own private key */
	mbedtls_x509_crt bundle;     /* trust anchors */
	mbedtls_ssl_config srv;      /* server side (accepted connections) */
	mbedtls_ssl_config cli;      /* client side (upstream connections) */
	mbedtls_ssl_config lean;     /* client side, long-lived and quiet (tls_client_lean) */
	char id[TLS_ID_MAX];         /* own SPIFFE id, "" without a certificate */
	size_t td_len;               /* length of "spiffe://td" in id (0: any trust domain) */
	double not_before, not_after;
	char *chain_pem;             /* as given, for /certs and files */
	char *bundle_pem;
};

/* PEM text -> a parsed chain; mbedTLS wants the terminating NUL counted */
static int parse_pem_chain(mbedtls_x509_crt *crt, const char *pem, const char *what, char *err, size_t errlen)
{
	char eb[128];
	int rc;

	if (!pem || !strstr(pem, "-----BEGIN CERTIFICATE-----")) {
		tls_errf(err, errlen, "%s: no PEM certificate found", what);
		return -1;
	}
	rc = mbedtls_x509_crt_parse(crt, (const unsigned char *)pem, strlen(pem) + 1);
	if (rc != 0) {
		tls_errf(err, errlen, "%s: %s", what, rc < 0 ? mbed_err(rc, eb, sizeof(eb)) : "a certificate in it does not parse");
		return -1;
	}
	return 0;
}

static void conf_common(mbedtls_ssl_config *c, struct tls_creds *cr)
{
	mbedtls_ssl_conf_rng(c, tls_rng, NULL);
	mbedtls_ssl_conf_min_tls_version(c, MBEDTLS_SSL_VERSION_TLS1_2);
	mbedtls_ssl_conf_max_tls_version(c, MBEDTLS_SSL_VERSION_TLS1_3);
	mbedtls_ssl_conf_ciphersuites(c, g_suites);
	mbedtls_ssl_conf_groups(c, g_groups);
	mbedtls_ssl_conf_sig_algs(c, g_sig_algs);
	mbedtls_ssl_conf_cert_profile(c, &g_profile);
	if (cr->bundle.raw.p)
		mbedtls_ssl_conf_ca_chain(c, &cr->bundle, NULL);
}

static int conf_client(mbedtls_ssl_config *cfg, struct tls_creds *c)
{
	int rc = mbedtls_ssl_config_defaults(cfg, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
	                                     MBEDTLS_SSL_PRESET_DEFAULT);

	if (rc != 0)
		return rc;
	conf_common(cfg, c);
	mbedtls_ssl_conf_authmode(cfg, (c->flags & TLS_CREDS_NO_VERIFY) ? MBEDTLS_SSL_VERIFY_NONE
	                                                                : MBEDTLS_SSL_VERIFY_REQUIRED);
	if (c->chain.raw.p && (rc = mbedtls_ssl_conf_own_cert(cfg, &c->chain, &c->key)) != 0)
		return rc;
	mbedtls_ssl_conf_session_tickets(cfg, MBEDTLS_SSL_SESSION_TICKETS_ENABLED);
	mbedtls_ssl_conf_tls13_enable_signal_new_session_tickets(cfg,
		MBEDTLS_SSL_TLS1_3_SIGNAL_NEW_SESSION_TICKETS_ENABLED);
	return 0;
}

struct tls_creds *tls_creds_new_ex(const char *chain_pem, const char *key_pem, const char *bundle_pem,
                                   unsigned flags, char *err, size_t errlen)
{
	struct tls_creds *c;
	char eb[128];
	uint32_t vflags = 0;
	int rc;

	if (tls_global_init() < 0) {
		tls_errf(err, errlen, "tls: cannot initialise the random generator (no entropy?)");
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		tls_errf(err, errlen, "out of memory");
		return NULL;
	}
	c->refs = 1;
	c->flags = flags;
	mbedtls_x509_crt_init(&c->chain);
	mbedtls_pk_init(&c->key);
	mbedtls_x509_crt_init(&c->bundle);
	mbedtls_ssl_config_init(&c->srv);
	mbedtls_ssl_config_init(&c->cli);
	mbedtls_ssl_config_init(&c->lean);

	if (bundle_pem && parse_pem_chain(&c->bundle, bundle_pem, "trust bundle", err, errlen) < 0)
		goto fail;
	if (!bundle_pem && !(flags & TLS_CREDS_NO_VERIFY)) {
		tls_errf(err, errlen, "tls: a trust bundle is required");
		goto fail;
	}
	if (chain_pem || key_pem) {
		if (!chain_pem || !key_pem) {
			tls_errf(err, errlen, "tls: a certificate needs its key and a key its certificate");
			goto fail;
		}
		if (parse_pem_chain(&c->chain, chain_pem, "certificate chain", err, errlen) < 0)
			goto fail;
		rc = mbedtls_pk_parse_key(&c->key, (const unsigned char *)key_pem, strlen(key_pem) + 1, NULL, 0,
		                          tls_rng, NULL);
		if (rc != 0) {
			tls_errf(err, errlen, "private key: %s", mbed_err(rc, eb, sizeof(eb)));
			goto fail;
		}
		if (mbedtls_pk_check_pair(&c->chain.pk, &c->key, tls_rng, NULL) != 0) {
			tls_errf(err, errlen, "private key does not match the certificate");
			goto fail;
		}
		if (crt_spiffe_id(&c->chain, c->id, sizeof(c->id)) < 0) {
			tls_errf(err, errlen, "certificate has no spiffe:// URI SAN");
			goto fail;
		}
		c->td_len = trust_domain_len(c->id);
		c->not_before = x509_time_unix(&c->chain.valid_from);
		c->not_after = x509_time_unix(&c->chain.valid_to);
		/* the chain must lead to the bundle; dates are the peer's business (tests use old certs) */
		if (c->bundle.raw.p) {
			mbedtls_x509_crt_verify_with_profile(&c->chain, &c->bundle, NULL, &g_profile, NULL, &vflags, NULL, NULL);
			vflags &= ~(uint32_t)(MBEDTLS_X509_BADCERT_EXPIRED | MBEDTLS_X509_BADCERT_FUTURE |
			                      MBEDTLS_X509_BADCRL_EXPIRED | MBEDTLS_X509_BADCRL_FUTURE);
			if (vflags) {
				char info[256];

				mbedtls_x509_crt_verify_info(info, sizeof(info), "", vflags);
				info[strcspn(info, "\n")] = '\0';
				tls_errf(err, errlen, "certificate does not chain to the trust bundle: %s", info);
				goto fail;
			}
		}
		c->chain_pem = strdup(chain_pem);
		if (!c->chain_pem)
			goto oom;
	}
	if (bundle_pem && !(c->bundle_pem = strdup(bundle_pem)))
		goto oom;

	/* server side */
	rc = mbedtls_ssl_config_defaults(&c->srv, MBEDTLS_SSL_IS_SERVER, MBEDTLS_SSL_TRANSPORT_STREAM,
	                                 MBEDTLS_SSL_PRESET_DEFAULT);
	if (rc != 0)
		goto mbed;
	conf_common(&c->srv, c);
	mbedtls_ssl_conf_authmode(&c->srv, (flags & TLS_CREDS_NO_CLIENT_CERT) ? MBEDTLS_SSL_VERIFY_NONE
	                                                                       : MBEDTLS_SSL_VERIFY_REQUIRED);
	if (c->chain.raw.p && (rc = mbedtls_ssl_conf_own_cert(&c->srv, &c->chain, &c->key)) != 0)
		goto mbed;
	mbedtls_ssl_conf_session_tickets_cb(&c->srv, ticket_write, ticket_parse, &g_ticket);
	mbedtls_ssl_conf_new_session_tickets(&c->srv, 1);

	/* client side; lean: the same at TLS 1.2 with 4 KiB records (tls_client_lean) */
	if ((rc = conf_client(&c->cli, c)) != 0 || (rc = conf_client(&c->lean, c)) != 0)
		goto mbed;
	mbedtls_ssl_conf_max_tls_version(&c->lean, MBEDTLS_SSL_VERSION_TLS1_2);
	if ((rc = mbedtls_ssl_conf_max_frag_len(&c->lean, MBEDTLS_SSL_MAX_FRAG_LEN_4096)) != 0)
		goto mbed;
	return c;
mbed:
	tls_errf(err, errlen, "tls: %s", mbed_err(rc, eb, sizeof(eb)));
	goto fail;
oom:
	tls_errf(err, errlen, "out of memory");
fail:
	c->refs = 1;
	tls_creds_unref(c);
	return NULL;
}

struct tls_creds *tls_creds_new(const char *chain_pem, const char *key_pem, const char *bundle_pem,
                                char *err, size_t errlen)
{
	return tls_creds_new_ex(chain_pem, key_pem, bundle_pem, 0, err, errlen);
}

struct tls_creds *tls_creds_ref(struct tls_creds *c)
{
	if (c)
		__atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
	return c;
}

void tls_creds_unref(struct tls_creds *c)
{
	if (!c || __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	mbedtls_ssl_config_free(&c->srv);
	mbedtls_ssl_config_free(&c->cli);
	mbedtls_ssl_config_free(&c->lean);
	mbedtls_x509_crt_free(&c->chain);
	mbedtls_pk_free(&c->key);
	mbedtls_x509_crt_free(&c->bundle);
	free(c->chain_pem);
	c->chain_pem = NULL;
	free(c->bundle_pem);
	c->bundle_pem = NULL;
	free(c);
}

const char *tls_creds_id(const struct tls_creds *c) { return c->id; }
double tls_creds_not_before(const struct tls_creds *c) { return c->not_before; }
double tls_creds_not_after(const struct tls_creds *c) { return c->not_after; }
const char *tls_creds_chain_pem(const struct tls_creds *c) { return c->chain_pem ? c->chain_pem : ""; }
const char *tls_creds_bundle_pem(const struct tls_creds *c) { return c->bundle_pem ? c->bundle_pem : ""; }

/* ------------------------------------------------------------------ transport */

struct tls_conn {
	mbedtls_ssl_context ssl;
	struct tls_creds *creds;     /* a reference: ssl points into its configs */
	int fd;                      /* the caller's socket */
	unsigned is_client : 1;
	unsigned done : 1;           /* handshake complete */
	unsigned resumed : 1;
	unsigned verified : 1;       /* the verify callback saw the peer's leaf */
	char *peer_id;               /* peer's SPIFFE id (verified leaf or resumed session) */
	char *ids;                   /* client: acceptable server ids, NUL-separated, "" ends; NULL = any */
	char *session_key;           /* client: cache key, until a session is stored */
	size_t wpending;             /* plaintext bytes in a record not yet fully sent (WANT_WRITE) */
	double peer_not_after;       /* the peer leaf's not_after (0 = unknown) */
	char err[160];               /* last failure */
};

static int bio_send(void *ctx, const unsigned char *buf, size_t len)
{
	struct tls_conn *t = ctx;
	ssize_t n;

	do
		n = send(t->fd, buf, len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n >= 0)
		return (int)n;
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return MBEDTLS_ERR_SSL_WANT_WRITE;
	snprintf(t->err, sizeof(t->err), "send: %s", strerror(errno));
	return MBEDTLS_ERR_SSL_INTERNAL_ERROR;
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len)
{
	struct tls_conn *t = ctx;
	ssize_t n;

	do
		n = recv(t->fd, buf, len, 0);
	while (n < 0 && errno == EINTR);
	if (n >= 0)
		return (int)n;  /* 0: mbedTLS reports MBEDTLS_ERR_SSL_CONN_EOF */
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return MBEDTLS_ERR_SSL_WANT_READ;
	snprintf(t->err, sizeof(t->err), "recv: %s", strerror(errno));
	return MBEDTLS_ERR_SSL_INTERNAL_ERROR;
}

static int id_allowed(const struct tls_conn *t, const char *id)
{
	const char *p;

	if (!t->ids)
		return 1;
	for (p = t->ids; *p; p += strlen(p) + 1)
		if (!strcmp(p, id))
			return 1;
	return 0;
}

/* the peer's identity must be ours to accept: same trust domain, and one of ids for a client */
static int check_peer_id(struct tls_conn *t, const char *id)
{
	const struct tls_creds *c = t->creds;

	if (trust_domain_len(id) == 0) {
		snprintf(t->err, sizeof(t->err), "peer identity '%.100s' is not a SPIFFE id", id);
		return -1;
	}
	if (c->td_len && (trust_domain_len(id) != c->td_len || memcmp(id, c->id, c->td_len) != 0)) {
		snprintf(t->err, sizeof(t->err), "peer identity %.100s is outside trust domain %.*s", id,
		         (int)(c->td_len - 9), c->id + 9);
		return -1;
	}
	if (!id_allowed(t, id)) {
		snprintf(t->err, sizeof(t->err), "server identity %.100s is not one the destination may have", id);
		return -1;
	}
	return 0;
}

static int verify_cb(void *ctx, mbedtls_x509_crt *crt, int depth, uint32_t *flags)
{
	struct tls_conn *t = ctx;
	char id[TLS_ID_MAX];

	if (depth != 0)
		return 0;
	if (crt_spiffe_id(crt, id, sizeof(id)) < 0) {
		snprintf(t->err, sizeof(t->err), "peer certificate has no spiffe:// URI SAN");
		*flags |= MBEDTLS_X509_BADCERT_OTHER;
		return 0;
	}
	if (check_peer_id(t, id) < 0) {
		*flags |= MBEDTLS_X509_BADCERT_OTHER;
		return 0;
	}
	free(t->peer_id);
	t->peer_id = strdup(id);
	if (!t->peer_id)
		return MBEDTLS_ERR_X509_ALLOC_FAILED;
	t->peer_not_after = x509_time_unix(&crt->valid_to);
	t->verified = 1;
	return 0;
}

/* a resumed session must not outlive either certificate of the handshake that made it */
static double session_expires(const struct tls_conn *t)
{
	double e = t->creds->not_after;

	if (t->peer_not_after > 0 && t->peer_not_after < e)
		e = t->peer_not_after;
	return e;
}

static struct tls_conn *conn_new(struct tls_creds *c, int fd, int client, int lean)
{
	struct tls_conn *t;

	if (!c)
		return NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	mbedtls_ssl_init(&t->ssl);
	t->fd = fd;
	t->is_client = client ? 1 : 0;
	t->creds = tls_creds_ref(c);
	if (mbedtls_ssl_setup(&t->ssl, !client ? &c->srv : lean ? &c->lean : &c->cli) != 0) {
		tls_free(t);
		return NULL;
	}
	mbedtls_ssl_set_bio(&t->ssl, t, bio_send, bio_recv, NULL);
	if (!(c->flags & (client ? TLS_CREDS_NO_VERIFY : TLS_CREDS_NO_CLIENT_CERT)))
		mbedtls_ssl_set_verify(&t->ssl, verify_cb, t);
	return t;
}

struct tls_conn *tls_server(struct tls_creds *c, int fd)
{
	return conn_new(c, fd, 0, 0);
}

/* the cached session for key into t (with the id it was made with); caller holds no lock */
static void cache_load(struct tls_conn *t, const char *key)
{
	size_t i;

	pthread_mutex_lock(&g_cache_lock);
	for (i = 0; i < TLS_CACHE_SLOTS; i++) {
		struct tls_cached *e = &g_cache[i];

		if (!e->key || strcmp(e->key, key) != 0)
			continue;
		/* a server that changed identity, or a certificate that expired since,
		 * means a full handshake */
		if (e->peer_id && id_allowed(t, e->peer_id) && (double)time(NULL) < e->expires &&
		    (double)time(NULL) < t->creds->not_after && mbedtls_ssl_set_session(&t->ssl, &e->sess) == 0) {
			e->used = ++g_cache_clock;
			free(t->peer_id);
			t->peer_id = strdup(e->peer_id);
			t->peer_not_after = e->expires;
		}
		break;
	}
	pthread_mutex_unlock(&g_cache_lock);
}

static void cache_store(struct tls_conn *t)
{
	struct tls_cached *e = NULL;
	mbedtls_ssl_session s;
	size_t i;

	if (!t->session_key || !t->peer_id)
		return;
	mbedtls_ssl_session_init(&s);
	if (mbedtls_ssl_get_session(&t->ssl, &s) != 0) {
		mbedtls_ssl_session_free(&s);
		return;
	}
	pthread_mutex_lock(&g_cache_lock);
	for (i = 0; i < TLS_CACHE_SLOTS; i++)
		if (g_cache[i].key && !strcmp(g_cache[i].key, t->session_key)) {
			e = &g_cache[i];
			break;
		}
	if (!e) {
		e = &g_cache[0];
		for (i = 0; i < TLS_CACHE_SLOTS; i++) {
			if (!g_cache[i].key) {
				e = &g_cache[i];
				break;
			}
			if (g_cache[i].used < e->used)
				e = &g_cache[i];
		}
		if (e->key) {
			free(e->key);
			e->key = NULL;
			mbedtls_ssl_session_free(&e->sess);
		}
		e->key = strdup(t->session_key);
		if (!e->key) {
			pthread_mutex_unlock(&g_cache_lock);
			mbedtls_ssl_session_free(&s);
			return;
		}
	} else {
		mbedtls_ssl_session_free(&e->sess);
	}
	free(e->peer_id);
	e->peer_id = strdup(t->peer_id);
	e->expires = session_expires(t);
	e->sess = s;  /* owned by the slot now */
	e->used = ++g_cache_clock;
	pthread_mutex_unlock(&g_cache_lock);
}

void tls_session_cache_clear(void)
{
	size_t i;

	pthread_mutex_lock(&g_cache_lock);
	for (i = 0; i < TLS_CACHE_SLOTS; i++) {
		if (!g_cache[i].key)
			continue;
		free(g_cache[i].key);
		g_cache[i].key = NULL;
		free(g_cache[i].peer_id);
		g_cache[i].peer_id = NULL;
		mbedtls_ssl_session_free(&g_cache[i].sess);
	}
	pthread_mutex_unlock(&g_cache_lock);
}

static struct tls_conn *client_new(struct tls_creds *c, int fd, const char *const *ids, size_t n,
                                   const char *session_key, int lean)
{
	struct tls_conn *t = conn_new(c, fd, 1, lean);
	size_t i, len = 1;

	if (!t)
		return NULL;
	/* no host name: the server is checked by its SPIFFE id, not a DNS name */
	if (mbedtls_ssl_set_hostname(&t->ssl, NULL) != 0)
		goto fail;
	if (n > 0) {
		char *p;

		for (i = 0; i < n; i++)
			len += strlen(ids[i]) + 1;
		t->ids = p = malloc(len);
		if (!p)
			goto fail;
		for (i = 0; i < n; i++) {
			size_t l = strlen(ids[i]) + 1;

			memcpy(p, ids[i], l);
			p += l;
		}
		*p = '\0';
	}
	if (session_key && *session_key && !(c->flags & TLS_CREDS_NO_VERIFY)) {
		t->session_key = strdup(session_key);
		if (!t->session_key)
			goto fail;
		cache_load(t, session_key);
	}
	return t;
fail:
	tls_free(t);
	return NULL;
}

struct tls_conn *tls_client(struct tls_creds *c, int fd, const char *const *ids, size_t n,
                            const char *session_key)
{
	return client_new(c, fd, ids, n, session_key, 0);
}

struct tls_conn *tls_client_lean(struct tls_creds *c, int fd, const char *const *ids, size_t n,
                                 const char *session_key)
{
	return client_new(c, fd, ids, n, session_key, 1);
}

static void set_mbed_err(struct tls_conn *t, int rc)
{
	char eb[120];

	if (t->err[0])
		return;  /* the verify callback or the BIO already said why */
	if (rc == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED) {
		uint32_t f = mbedtls_ssl_get_verify_result(&t->ssl);
		char info[200];

		mbedtls_x509_crt_verify_info(info, sizeof(info), "", f);
		info[strcspn(info, "\n")] = '\0';
		snprintf(t->err, sizeof(t->err), "peer certificate refused: %.120s", info);
		return;
	}
	if (rc == MBEDTLS_ERR_SSL_CONN_EOF) {
		snprintf(t->err, sizeof(t->err), "peer closed the connection during the TLS handshake (refused our certificate?)");
		return;
	}
	snprintf(t->err, sizeof(t->err), "tls: %s", mbed_err(rc, eb, sizeof(eb)));
}

int tls_handshake(struct tls_conn *t)
{
	int rc;

	if (t->done)
		return 0;
	tls_cur = t;
	rc = mbedtls_ssl_handshake(&t->ssl);
	tls_cur = NULL;
	if (rc == MBEDTLS_ERR_SSL_WANT_READ)
		return TLS_WANT_READ;
	if (rc == MBEDTLS_ERR_SSL_WANT_WRITE)
		return TLS_WANT_WRITE;
	if (rc == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET && t->is_client) {
		/* can come with the end of the handshake; the next call finishes it */
		return tls_handshake(t);
	}
	if (rc != 0) {
		set_mbed_err(t, rc);
		return TLS_ERR;
	}
	t->done = 1;
	/* no certificate went through the verify callback: the session was resumed */
	t->resumed = !t->verified && t->peer_id;
	if (!t->peer_id && !(t->creds->flags & (t->is_client ? TLS_CREDS_NO_VERIFY : TLS_CREDS_NO_CLIENT_CERT))) {
		snprintf(t->err, sizeof(t->err), "peer identity unknown after the handshake");
		return TLS_ERR;
	}
	if (t->is_client) {
		/* TLS 1.2 tickets come in the handshake; TLS 1.3 ones after it (tls_read) */
		if (mbedtls_ssl_get_version_number(&t->ssl) == MBEDTLS_SSL_VERSION_TLS1_2)
			cache_store(t);
	}
	free(t->ids);
	t->ids = NULL;
	return 0;
}

ssize_t tls_read(struct tls_conn *t, void *buf, size_t len)
{
	int rc;

	if (!t->done) {
		rc = tls_handshake(t);
		if (rc != 0)
			return rc;
	}
	for (;;) {
		tls_cur = t;
		rc = mbedtls_ssl_read(&t->ssl, buf, len);
		tls_cur = NULL;
		if (rc >= 0)
			return rc;
		switch (rc) {
		case MBEDTLS_ERR_SSL_WANT_READ:
			return TLS_WANT_READ;
		case MBEDTLS_ERR_SSL_WANT_WRITE:
			return TLS_WANT_WRITE;
		case MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET:
			cache_store(t);
			continue;
		case MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY:
		case MBEDTLS_ERR_SSL_CONN_EOF:
			return 0;
		default:
			set_mbed_err(t, rc);
			return TLS_ERR;
		}
	}
}

ssize_t tls_write(struct tls_conn *t, const void *buf, size_t len)
{
	int rc;

	if (!t->done) {
		rc = tls_handshake(t);
		if (rc != 0)
			return rc;
	}
	/* After WANT_WRITE, mbedTLS finishes the record it already encrypted and
	 * returns the length it is given as written: give it that record's length
	 * (the caller's buffer still starts with those bytes), not a longer one. */
	if (t->wpending) {
		if (len < t->wpending) {
			snprintf(t->err, sizeof(t->err), "tls: write retried with less data than the pending record");
			return TLS_ERR;
		}
		len = t->wpending;
	} else {
		int max = mbedtls_ssl_get_max_out_record_payload(&t->ssl);
		if (max > 0 && len > (size_t)max)
			len = (size_t)max;
	}
	tls_cur = t;
	rc = mbedtls_ssl_write(&t->ssl, buf, len);
	tls_cur = NULL;
	if (rc >= 0) {
		t->wpending = 0;
		return rc;
	}
	if (rc == MBEDTLS_ERR_SSL_WANT_READ)
		return TLS_WANT_READ;
	if (rc == MBEDTLS_ERR_SSL_WANT_WRITE) {
		t->wpending = len;
		return TLS_WANT_WRITE;
	}
	set_mbed_err(t, rc);
	return TLS_ERR;
}

size_t tls_pending(const struct tls_conn *t)
{
	return mbedtls_ssl_get_bytes_avail(&t->ssl);
}

const char *tls_peer_id(const struct tls_conn *t) { return t->done && t->peer_id ? t->peer_id : ""; }
const char *tls_error(const struct tls_conn *t) { return t->err[0] ? t->err : "tls: no error"; }
const char *tls_version(const struct tls_conn *t) { return mbedtls_ssl_get_version(&t->ssl); }
int tls_resumed(const struct tls_conn *t) { return t->resumed; }
int tls_fd(const struct tls_conn *t) { return t->fd; }

void tls_free(struct tls_conn *t)
{
	if (!t)
		return;
	if (t->done) {
		tls_cur = t;
		(void)mbedtls_ssl_close_notify(&t->ssl);  /* one try; a full socket just loses it */
		tls_cur = NULL;
	}
	mbedtls_ssl_free(&t->ssl);
	tls_creds_unref(t->creds);
	t->creds = NULL;
	free(t->peer_id);
	t->peer_id = NULL;
	free(t->ids);
	t->ids = NULL;
	free(t->session_key);
	t->session_key = NULL;
	free(t);
}

/* ------------------------------------------------------------------ tickets carrying the peer id */

static void ticket_mac(const unsigned char *p, size_t n, unsigned char out[TLS_TICKET_MAC])
{
	unsigned char full[32];

	mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), g_ticket_mac_key, sizeof(g_ticket_mac_key),
	                p, n, full);
	memcpy(out, full, TLS_TICKET_MAC);
}

/* ticket = mbedTLS ticket | id | u32 expiry (Unix s) | u16 id length | MAC over all of that.
 * The expiry is the earlier not_after of both certificates: a ticket must not
 * let a peer whose certificate expired back in without one. */
static int ticket_write(void *p, const mbedtls_ssl_session *s, unsigned char *start,
                        const unsigned char *end, size_t *tlen, uint32_t *lifetime)
{
	const char *id = tls_cur && tls_cur->peer_id ? tls_cur->peer_id : "";
	size_t idlen = strlen(id), inner;
	double exp = tls_cur ? session_expires(tls_cur) : 0, left = exp - (double)time(NULL);
	uint32_t e32 = exp > 0 && exp < 4294967295.0 ? (uint32_t)exp : 0;
	int rc;

	if ((size_t)(end - start) < idlen + 6 + TLS_TICKET_MAC + 64)
		return MBEDTLS_ERR_SSL_BUFFER_TOO_SMALL;
	rc = mbedtls_ssl_ticket_write(p, s, start, end - idlen - 6 - TLS_TICKET_MAC, &inner, lifetime);
	if (rc != 0)
		return rc;
	if (left < 1)
		left = 1;
	if (*lifetime > left)
		*lifetime = (uint32_t)left;
	memcpy(start + inner, id, idlen);
	start[inner + idlen] = (unsigned char)(e32 >> 24);
	start[inner + idlen + 1] = (unsigned char)(e32 >> 16);
	start[inner + idlen + 2] = (unsigned char)(e32 >> 8);
	start[inner + idlen + 3] = (unsigned char)e32;
	start[inner + idlen + 4] = (unsigned char)(idlen >> 8);
	start[inner + idlen + 5] = (unsigned char)idlen;
	ticket_mac(start, inner + idlen + 6, start + inner + idlen + 6);
	*tlen = inner + idlen + 6 + TLS_TICKET_MAC;
	return 0;
}

static int ticket_parse(void *p, mbedtls_ssl_session *s, unsigned char *buf, size_t len)
{
	unsigned char mac[TLS_TICKET_MAC];
	size_t idlen, inner;
	unsigned char diff = 0;
	size_t i;
	char *id;
	int rc;

	uint32_t e32;

	if (len < 6 + TLS_TICKET_MAC)
		return MBEDTLS_ERR_SSL_INVALID_MAC;
	ticket_mac(buf, len - TLS_TICKET_MAC, mac);
	for (i = 0; i < TLS_TICKET_MAC; i++)
		diff |= (unsigned char)(mac[i] ^ buf[len - TLS_TICKET_MAC + i]);
	if (diff)
		return MBEDTLS_ERR_SSL_INVALID_MAC;
	idlen = (size_t)buf[len - TLS_TICKET_MAC - 2] << 8 | buf[len - TLS_TICKET_MAC - 1];
	if (idlen == 0 || idlen >= TLS_ID_MAX || idlen > len - TLS_TICKET_MAC - 6)
		return MBEDTLS_ERR_SSL_INVALID_MAC;
	e32 = (uint32_t)buf[len - TLS_TICKET_MAC - 6] << 24 | (uint32_t)buf[len - TLS_TICKET_MAC - 5] << 16 |
	      (uint32_t)buf[len - TLS_TICKET_MAC - 4] << 8 | buf[len - TLS_TICKET_MAC - 3];
	if ((double)time(NULL) >= (double)e32 || (tls_cur && (double)time(NULL) >= tls_cur->creds->not_after)) {
		if (tls_cur)
			tls_cur->err[0] = '\0';
		return MBEDTLS_ERR_SSL_SESSION_TICKET_EXPIRED;   /* a certificate behind it expired: full handshake */
	}
	inner = len - TLS_TICKET_MAC - 6 - idlen;
	id = strndup((const char *)buf + inner, idlen);
	if (!id)
		return MBEDTLS_ERR_SSL_ALLOC_FAILED;
	rc = mbedtls_ssl_ticket_parse(p, s, buf, inner);
	if (rc != 0 || !tls_cur || check_peer_id(tls_cur, id) < 0) {
		free(id);
		if (tls_cur)
			tls_cur->err[0] = '\0';  /* a stale ticket just means a full handshake */
		return rc ? rc : MBEDTLS_ERR_SSL_SESSION_TICKET_EXPIRED;
	}
	free(tls_cur->peer_id);
	tls_cur->peer_id = id;
	tls_cur->peer_not_after = (double)e32;
	return 0;
}

/* ------------------------------------------------------------------ sniffing */

int tls_sniff(const unsigned char *p, size_t n)
{
	/* record: type 22 (handshake), version 3.x, length; then handshake type 1 (ClientHello) */
	if (n >= 1 && p[0] != 0x16)
		return 0;
	if (n >= 2 && p[1] != 0x03)
		return 0;
	if (n >= 3 && p[2] > 0x04)
		return 0;
	if (n >= 5 && ((p[3] << 8 | p[4]) < 4 || (p[3] << 8 | p[4]) > 16384 + 2048))
		return 0;
	if (n >= 6)
		return p[5] == 0x01 ? 1 : 0;
	return -1;
}

int tls_spiffe_id(char *out, size_t cap, const char *trust_domain, const char *ns, const char *sa)
{
	int n = snprintf(out, cap, "spiffe://%s/ns/%s/sa/%s", trust_domain, ns, sa);

	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* ------------------------------------------------------------------ keys, CSRs, certificate info */

char *tls_key_generate(char *err, size_t errlen)
{
	mbedtls_pk_context pk;
	char eb[120];
	char *out = NULL;
	int rc;

	if (tls_global_init() < 0) {
		tls_errf(err, errlen, "tls: cannot initialise the random generator");
		return NULL;
	}
	mbedtls_pk_init(&pk);
	rc = mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));
	if (rc == 0)
		rc = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(pk), tls_rng, NULL);
	if (rc == 0) {
		out = calloc(1, 512);
		if (!out)
			rc = MBEDTLS_ERR_PK_ALLOC_FAILED;
		else
			rc = mbedtls_pk_write_key_pem(&pk, (unsigned char *)out, 512);
	}
	mbedtls_pk_free(&pk);
	if (rc != 0) {
		tls_errf(err, errlen, "generating a P-256 key: %s", mbed_err(rc, eb, sizeof(eb)));
		free(out);
		return NULL;
	}
	return out;
}

char *tls_csr_create(const char *key_pem, const char *uri_san, char *err, size_t errlen)
{
	mbedtls_x509write_csr w;
	mbedtls_pk_context pk;
	mbedtls_x509_san_list san;
	char eb[120];
	char *out = NULL;
	int rc;

	if (tls_global_init() < 0) {
		tls_errf(err, errlen, "tls: cannot initialise the random generator");
		return NULL;
	}
	mbedtls_pk_init(&pk);
	mbedtls_x509write_csr_init(&w);
	rc = mbedtls_pk_parse_key(&pk, (const unsigned char *)key_pem, strlen(key_pem) + 1, NULL, 0, tls_rng, NULL);
	if (rc != 0)
		goto done;
	mbedtls_x509write_csr_set_key(&w, &pk);
	mbedtls_x509write_csr_set_md_alg(&w, MBEDTLS_MD_SHA256);
	rc = mbedtls_x509write_csr_set_subject_name(&w, "O=mesh");
	if (rc != 0)
		goto done;
	if (uri_san) {
		memset(&san, 0, sizeof(san));
		san.node.type = MBEDTLS_X509_SAN_UNIFORM_RESOURCE_IDENTIFIER;
		san.node.san.unstructured_name.p = (unsigned char *)(uintptr_t)uri_san;
		san.node.san.unstructured_name.len = strlen(uri_san);
		rc = mbedtls_x509write_csr_set_subject_alternative_name(&w, &san);
		if (rc != 0)
			goto done;
	}
	out = calloc(1, 2048);
	if (!out) {
		rc = MBEDTLS_ERR_X509_ALLOC_FAILED;
		goto done;
	}
	rc = mbedtls_x509write_csr_pem(&w, (unsigned char *)out, 2048, tls_rng, NULL);
done:
	mbedtls_x509write_csr_free(&w);
	mbedtls_pk_free(&pk);
	if (rc != 0) {
		tls_errf(err, errlen, "creating a CSR: %s", mbed_err(rc, eb, sizeof(eb)));
		free(out);
		return NULL;
	}
	return out;
}

static void dn_string(const mbedtls_x509_name *dn, char *out, size_t cap)
{
	if (mbedtls_x509_dn_gets(out, cap, dn) < 0)
		snprintf(out, cap, "?");
}

int tls_chain_info(const char *pem, size_t pemlen, struct tls_cert_info *out, size_t cap, char *err, size_t errlen)
{
	mbedtls_x509_crt chain;
	const mbedtls_x509_crt *c;
	char *copy;
	char eb[120];
	size_t n = 0;
	int rc;

	mbedtls_x509_crt_init(&chain);
	/* PEM needs a NUL-terminated copy; DER is taken as is */
	copy = malloc(pemlen + 1);
	if (!copy) {
		tls_errf(err, errlen, "out of memory");
		return -1;
	}
	memcpy(copy, pem, pemlen);
	copy[pemlen] = '\0';
	if (memmem(copy, pemlen, "-----BEGIN CERTIFICATE-----", 27))
		rc = mbedtls_x509_crt_parse(&chain, (unsigned char *)copy, pemlen + 1);
	else
		rc = mbedtls_x509_crt_parse_der(&chain, (unsigned char *)copy, pemlen);
	free(copy);
	if (rc != 0 || !chain.raw.p) {
		tls_errf(err, errlen, "not a certificate: %s",
		     rc < 0 ? mbed_err(rc, eb, sizeof(eb)) : "some of the certificates do not parse");
		mbedtls_x509_crt_free(&chain);
		return -1;
	}
	for (c = &chain; c && c->raw.p && n < cap; c = c->next, n++) {
		struct tls_cert_info *i = &out[n];

		memset(i, 0, sizeof(*i));
		if (crt_spiffe_id(c, i->id, sizeof(i->id)) < 0)
			i->id[0] = '\0';
		dn_string(&c->subject, i->subject, sizeof(i->subject));
		dn_string(&c->issuer, i->issuer, sizeof(i->issuer));
		i->not_before = x509_time_unix(&c->valid_from);
		i->not_after = x509_time_unix(&c->valid_to);
		i->is_ca = mbedtls_x509_crt_has_ext_type(c, MBEDTLS_X509_EXT_BASIC_CONSTRAINTS) &&
		           c->MBEDTLS_PRIVATE(ca_istrue);
		tls_sha256_hex(c->raw.p, c->raw.len, i->fingerprint);
		mbedtls_x509_serial_gets(i->serial, sizeof(i->serial), &c->serial);
	}
	mbedtls_x509_crt_free(&chain);
	return (int)n;
}

int tls_chain_verify(const char *chain_pem, const char *bundle_pem, char *id, size_t idcap,
                     char *err, size_t errlen)
{
	mbedtls_x509_crt chain, bundle;
	uint32_t flags = 0;
	int rc = -1;

	mbedtls_x509_crt_init(&chain);
	mbedtls_x509_crt_init(&bundle);
	if (parse_pem_chain(&chain, chain_pem, "certificate chain", err, errlen) < 0 ||
	    parse_pem_chain(&bundle, bundle_pem, "trust bundle", err, errlen) < 0)
		goto done;
	if (mbedtls_x509_crt_verify_with_profile(&chain, &bundle, NULL, &g_profile, NULL, &flags, NULL, NULL) != 0) {
		char info[256];

		mbedtls_x509_crt_verify_info(info, sizeof(info), "", flags);
		info[strcspn(info, "\n")] = '\0';
		tls_errf(err, errlen, "certificate chain does not verify against the trust bundle: %s", info);
		goto done;
	}
	if (id && crt_spiffe_id(&chain, id, idcap) < 0) {
		tls_errf(err, errlen, "certificate has no spiffe:// URI SAN");
		goto done;
	}
	rc = 0;
done:
	mbedtls_x509_crt_free(&chain);
	mbedtls_x509_crt_free(&bundle);
	return rc;
}

/* ------------------------------------------------------------------ ECDSA P-256 verification */

/*
 * mbedTLS's own ECDSA verify on P-256 costs about 1.1 ms here (u2*Q alone
 * 0.7 ms: generic bignums, allocations in every operation): it was three
 * quarters of a CA signature (the CSR's proof of possession) and two of the
 * five elliptic-curve operations of a full mTLS handshake. This one takes
 * about 0.17 ms. The build defines MBEDTLS_ECDSA_VERIFY_ALT, so this
 * function is mbedtls_ecdsa_verify for the whole library: x509 chains, TLS
 * CertificateVerify, PSA, CSRs.
 *
 * Verification handles only public values (key, hash, signature), so it may
 * take data-dependent time (the signer and ECDH below, with secrets, do not);
 * key generation stays in mbedTLS's constant-time code. Field elements
 * are 4 x 64-bit limbs in Montgomery form mod p; points Jacobian (X, Y, Z),
 * Z = 0 being the point at infinity; R = u1*G + u2*Q by interleaved wNAF
 * (width 7 over a table of odd multiples of G made once, width 5 over one of
 * Q made per call); scalars
 * (1/s by Fermat, u1, u2) in the same Montgomery arithmetic mod n. The
 * curve's constants are read from mbedTLS's group at first use and p is
 * checked against it. tests/unit/test_ecdsa.c checks all this against
 * mbedTLS's bignums, mbedtls_ecp_muladd and mbedTLS signatures, good and
 * altered.
 */
typedef unsigned __int128 p256_u128;
typedef uint64_t p256_fe[4];                   /* little-endian limbs, Montgomery form, < p */

struct p256_pt {
	p256_fe x, y, z;
};

#define P256_GW 7                              /* wNAF width for G: 32 precomputed points */
#define P256_QW 5                              /* for Q: 8 points per verification */

static const p256_fe p256_p = { 0xffffffffffffffffULL, 0x00000000ffffffffULL, 0, 0xffffffff00000001ULL };
static pthread_once_t p256_once = PTHREAD_ONCE_INIT;
static int p256_ready;                         /* 1 once the table below is made */
static p256_fe p256_one, p256_rr, p256_b;      /* R mod p, R^2 mod p, b (Montgomery) */
static p256_fe p256_n, p256_n_one, p256_n_rr, p256_n_2;  /* n, R mod n, R^2 mod n, n - 2 */
static uint64_t p256_ninv;                     /* -n^-1 mod 2^64 */
static struct p256_pt p256_g[1 << (P256_GW - 2)];  /* G, 3G, 5G, ... affine (z = one) */

static int fe_is_zero(const p256_fe a)
{
	return (a[0] | a[1] | a[2] | a[3]) == 0;
}

static int fe_eq(const p256_fe a, const p256_fe b)
{
	return ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3])) == 0;
}

/*
 * Arithmetic modulo m (p for coordinates, n for scalars), always inlined so
 * that p's constant limbs fold into fe_mul; values are < m.
 */
#define P256_INLINE static inline __attribute__((always_inline))
/* unrolled, the limbs stay in registers and p's constant limbs fold (2x faster than the loops) */
#define P256_UNROLL _Pragma("GCC unroll 4")

/* r = (hi:a) - m when (hi:a) >= m, else a; (hi:a) < 2m */
P256_INLINE void mod_reduce_once(uint64_t r[4], const uint64_t a[4], uint64_t hi, const uint64_t m[4])
{
	uint64_t t[4], borrow = 0, keep;
	int i;

	P256_UNROLL
	for (i = 0; i < 4; i++) {
		p256_u128 d = (p256_u128)a[i] - m[i] - borrow;

		t[i] = (uint64_t)d;
		borrow = (uint64_t)(d >> 64) & 1;
	}
	keep = (uint64_t)0 - (borrow & (hi ^ 1));  /* all ones: a < m, keep a */
	P256_UNROLL
	for (i = 0; i < 4; i++)
		r[i] = (a[i] & keep) | (t[i] & ~keep);
}

P256_INLINE void mod_add(uint64_t r[4], const uint64_t a[4], const uint64_t b[4], const uint64_t m[4])
{
	uint64_t t[4];
	p256_u128 c = 0;
	int i;

	P256_UNROLL
	for (i = 0; i < 4; i++) {
		c += (p256_u128)a[i] + b[i];
		t[i] = (uint64_t)c;
		c >>= 64;
	}
	mod_reduce_once(r, t, (uint64_t)c, m);
}

P256_INLINE void mod_sub(uint64_t r[4], const uint64_t a[4], const uint64_t b[4], const uint64_t m[4])
{
	uint64_t t[4], borrow = 0, mask;
	p256_u128 c = 0;
	int i;

	P256_UNROLL
	for (i = 0; i < 4; i++) {
		p256_u128 d = (p256_u128)a[i] - b[i] - borrow;

		t[i] = (uint64_t)d;
		borrow = (uint64_t)(d >> 64) & 1;
	}
	mask = (uint64_t)0 - borrow;               /* went below zero: add m back */
	P256_UNROLL
	for (i = 0; i < 4; i++) {
		c += (p256_u128)t[i] + (m[i] & mask);
		r[i] = (uint64_t)c;
		c >>= 64;
	}
}

/* r = a * b / 2^256 mod m (Montgomery, CIOS); minv = -m^-1 mod 2^64 */
P256_INLINE void mod_mul(uint64_t r[4], const uint64_t a[4], const uint64_t b[4], const uint64_t m[4], uint64_t minv)
{
	uint64_t t[6] = { 0, 0, 0, 0, 0, 0 }, q;
	p256_u128 c;
	int i, j;

	P256_UNROLL
	for (i = 0; i < 4; i++) {
		c = 0;
		P256_UNROLL
		for (j = 0; j < 4; j++) {
			c += (p256_u128)a[j] * b[i] + t[j];
			t[j] = (uint64_t)c;
			c >>= 64;
		}
		c += t[4];
		t[4] = (uint64_t)c;
		t[5] = (uint64_t)(c >> 64);
		q = t[0] * minv;
		c = ((p256_u128)q * m[0] + t[0]) >> 64;
		P256_UNROLL
		for (j = 1; j < 4; j++) {
			c += (p256_u128)q * m[j] + t[j];
			t[j - 1] = (uint64_t)c;
			c >>= 64;
		}
		c += t[4];
		t[3] = (uint64_t)c;
		t[4] = t[5] + (uint64_t)(c >> 64);
	}
	mod_reduce_once(r, t, t[4], m);
}

/* mod p; -p^-1 mod 2^64 = 1 (p's low limb is all ones) */
static void fe_add(p256_fe r, const p256_fe a, const p256_fe b) { mod_add(r, a, b, p256_p); }
static void fe_sub(p256_fe r, const p256_fe a, const p256_fe b) { mod_sub(r, a, b, p256_p); }
static void fe_mul(p256_fe r, const p256_fe a, const p256_fe b) { mod_mul(r, a, b, p256_p, 1); }

/* mod n (set up by p256_init) */
static void sc_mul(p256_fe r, const p256_fe a, const p256_fe b) { mod_mul(r, a, b, p256_n, p256_ninv); }

/* r = a^e (Montgomery form mod p or n; a != 0), by square and multiply */
static void mod_pow(p256_fe r, const p256_fe a, const p256_fe e, const p256_fe one, int scalar)
{
	p256_fe t;
	int i;

	memcpy(t, one, sizeof(t));
	for (i = 255; i >= 0; i--) {
		if (scalar)
			sc_mul(t, t, t);
		else
			fe_mul(t, t, t);
		if ((e[i / 64] >> (i % 64)) & 1) {
			if (scalar)
				sc_mul(t, t, a);
			else
				fe_mul(t, t, a);
		}
	}
	memcpy(r, t, sizeof(t));
}

/* r = a^(p-2) = 1/a (a != 0) */
static void fe_inv(p256_fe r, const p256_fe a)
{
	static const p256_fe e = { 0xfffffffffffffffdULL, 0x00000000ffffffffULL, 0, 0xffffffff00000001ULL };

	mod_pow(r, a, e, p256_one, 0);
}

/* 32 big-endian bytes <-> limbs (not Montgomery) */
static void fe_from_be(p256_fe r, const unsigned char *b)
{
	int i, k;

	for (i = 0; i < 4; i++) {
		r[i] = 0;
		for (k = 0; k < 8; k++)
			r[i] = (r[i] << 8) | b[(3 - i) * 8 + k];
	}
}

static void fe_to_be(unsigned char *b, const p256_fe a)
{
	int i, k;

	for (i = 0; i < 4; i++)
		for (k = 0; k < 8; k++)
			b[(3 - i) * 8 + k] = (unsigned char)(a[i] >> (56 - 8 * k));
}

/* an mbedTLS bignum < 2^256 -> limbs; -1 when it is larger */
static int fe_from_mpi(p256_fe r, const mbedtls_mpi *x)
{
	unsigned char b[32];

	if (mbedtls_mpi_write_binary(x, b, sizeof(b)) != 0)
		return -1;
	fe_from_be(r, b);
	return 0;
}

/* r = a (< p, plain) in Montgomery form, and back */
static void fe_to_mont(p256_fe r, const p256_fe a)
{
	fe_mul(r, a, p256_rr);
}

static void fe_from_mont(p256_fe r, const p256_fe a)
{
	static const p256_fe one = { 1, 0, 0, 0 };

	fe_mul(r, a, one);
}

/* a plain value < p? */
static int fe_lt_p(const p256_fe a)
{
	int i;

	for (i = 3; i >= 0; i--)
		if (a[i] != p256_p[i])
			return a[i] < p256_p[i];
	return 0;
}

/* r = 2a (a = -3: "dbl-2001-b"); infinity stays infinity */
static void pt_double(struct p256_pt *r, const struct p256_pt *a)
{
	p256_fe delta, gamma, beta, alpha, t, u;

	fe_mul(delta, a->z, a->z);
	fe_mul(gamma, a->y, a->y);
	fe_mul(beta, a->x, gamma);
	fe_sub(t, a->x, delta);
	fe_add(u, a->x, delta);
	fe_mul(alpha, t, u);
	fe_add(t, alpha, alpha);
	fe_add(alpha, alpha, t);                   /* alpha = 3 (x - delta)(x + delta) */
	fe_add(t, a->y, a->z);
	fe_mul(t, t, t);
	fe_sub(t, t, gamma);
	fe_sub(r->z, t, delta);                    /* z3 = (y + z)^2 - gamma - delta */
	fe_add(beta, beta, beta);
	fe_add(beta, beta, beta);                  /* 4 beta */
	fe_mul(t, alpha, alpha);
	fe_add(u, beta, beta);
	fe_sub(r->x, t, u);                        /* x3 = alpha^2 - 8 beta */
	fe_sub(t, beta, r->x);
	fe_mul(t, alpha, t);
	fe_mul(gamma, gamma, gamma);
	fe_add(gamma, gamma, gamma);
	fe_add(gamma, gamma, gamma);
	fe_add(gamma, gamma, gamma);               /* 8 gamma^2 */
	fe_sub(r->y, t, gamma);                    /* y3 = alpha (4 beta - x3) - 8 gamma^2 */
}

/* r = a + b, b negated when neg; any of them may be infinity or equal (r may alias a) */
static void pt_add(struct p256_pt *r, const struct p256_pt *a, const struct p256_pt *b, int neg)
{
	p256_fe z1z1, z2z2, u1, u2, s1, s2, h, rr, hh, hhh, v, t;
	struct p256_pt bb;
	int b_affine = fe_eq(b->z, p256_one);

	if (neg) {
		bb = *b;
		fe_sub(bb.y, (const uint64_t[4]){ 0, 0, 0, 0 }, b->y);
		b = &bb;
	}
	if (fe_is_zero(b->z)) {
		if (r != a)
			*r = *a;                           /* a + 0 = a */
		return;
	}
	if (fe_is_zero(a->z)) {
		*r = *b;
		return;
	}
	fe_mul(z1z1, a->z, a->z);
	if (b_affine) {
		memcpy(u1, a->x, sizeof(u1));
		memcpy(s1, a->y, sizeof(s1));
	} else {
		fe_mul(z2z2, b->z, b->z);
		fe_mul(u1, a->x, z2z2);
		fe_mul(s1, a->y, b->z);
		fe_mul(s1, s1, z2z2);
	}
	fe_mul(u2, b->x, z1z1);
	fe_mul(s2, b->y, a->z);
	fe_mul(s2, s2, z1z1);
	fe_sub(h, u2, u1);
	fe_sub(rr, s2, s1);
	if (fe_is_zero(h)) {
		if (fe_is_zero(rr))
			pt_double(r, a);                   /* a == b */
		else
			memset(r, 0, sizeof(*r));          /* a == -b: infinity */
		return;
	}
	fe_mul(hh, h, h);
	fe_mul(hhh, h, hh);
	fe_mul(v, u1, hh);
	if (b_affine)
		fe_mul(r->z, a->z, h);
	else {
		fe_mul(t, a->z, b->z);
		fe_mul(r->z, t, h);
	}
	fe_mul(t, rr, rr);
	fe_sub(t, t, hhh);
	fe_sub(t, t, v);
	fe_sub(r->x, t, v);                        /* x3 = r^2 - h^3 - 2v */
	fe_sub(t, v, r->x);
	fe_mul(t, rr, t);
	fe_mul(s1, s1, hhh);
	fe_sub(r->y, t, s1);                       /* y3 = r (v - x3) - s1 h^3 */
}

/* affine (x, y) of a finite point, Montgomery form */
static void pt_affine(p256_fe x, p256_fe y, const struct p256_pt *a)
{
	p256_fe zi, zi2;

	fe_inv(zi, a->z);
	fe_mul(zi2, zi, zi);
	fe_mul(x, a->x, zi2);
	fe_mul(zi2, zi2, zi);
	fe_mul(y, a->y, zi2);
}

/*
 * t[0..n-1] (finite, Jacobian; n <= 32) to affine in place (z = one) with a
 * single inversion (Montgomery's trick: invert the product, peel off one z at
 * a time)
 */
static void pt_batch_affine(struct p256_pt *t, size_t n)
{
	p256_fe acc[1 << (P256_GW - 2)], inv, zi, zi2;
	size_t i;

	memcpy(acc[0], t[0].z, sizeof(p256_fe));
	for (i = 1; i < n; i++)
		fe_mul(acc[i], acc[i - 1], t[i].z);    /* z0 z1 ... zi */
	fe_inv(inv, acc[n - 1]);
	for (i = n; i-- > 0;) {
		if (i > 0) {
			fe_mul(zi, inv, acc[i - 1]);       /* 1/zi */
			fe_mul(inv, inv, t[i].z);          /* 1/(z0 ... z(i-1)) */
		} else {
			memcpy(zi, inv, sizeof(zi));
		}
		fe_mul(zi2, zi, zi);
		fe_mul(t[i].x, t[i].x, zi2);
		fe_mul(zi2, zi2, zi);
		fe_mul(t[i].y, t[i].y, zi2);
		memcpy(t[i].z, p256_one, sizeof(p256_one));
	}
}

/* the points 1a, 3a, 5a, ... (n of them) */
static void pt_odd_multiples(struct p256_pt *t, const struct p256_pt *a, size_t n)
{
	struct p256_pt a2;
	size_t i;

	pt_double(&a2, a);
	t[0] = *a;
	for (i = 1; i < n; i++)
		pt_add(&t[i], &t[i - 1], &a2, 0);
}

/* width-w NAF of a 256-bit scalar (little-endian limbs): digits into naf[0..256], returns their count */
static int p256_wnaf(signed char naf[257], const p256_fe k, int w)
{
	uint64_t x[5] = { k[0], k[1], k[2], k[3], 0 };
	int len = 0, i;

	memset(naf, 0, 257);
	while ((x[0] | x[1] | x[2] | x[3] | x[4]) != 0) {
		int d = 0;

		if (x[0] & 1) {
			d = (int)(x[0] & ((1u << w) - 1));
			if (d >= 1 << (w - 1))
				d -= 1 << w;
			if (d > 0) {                       /* x -= d (no borrow past limb 0: its low bits are d) */
				x[0] -= (uint64_t)d;
			} else {                           /* x += -d */
				p256_u128 c = (p256_u128)x[0] + (uint64_t)-d;

				x[0] = (uint64_t)c;
				for (i = 1; i < 5 && (c >> 64); i++) {
					c = (p256_u128)x[i] + 1;
					x[i] = (uint64_t)c;
				}
			}
		}
		naf[len++] = (signed char)d;
		for (i = 0; i < 4; i++)
			x[i] = (x[i] >> 1) | (x[i + 1] << 63);
		x[4] >>= 1;
	}
	return len;
}

static void p256_init(void)
{
	mbedtls_ecp_group g;
	p256_fe t, gx, gy;
	struct p256_pt gj;
	size_t i;

	mbedtls_ecp_group_init(&g);
	if (mbedtls_ecp_group_load(&g, MBEDTLS_ECP_DP_SECP256R1) != 0 || fe_from_mpi(t, &g.P) != 0 ||
	    !fe_eq(t, p256_p))
		goto done;
	/* R mod p = 2^256 - p (the limbs' two's complement); R^2 mod p by 256 doublings of it */
	for (i = 0; i < 4; i++)
		p256_one[i] = ~p256_p[i];
	p256_one[0] += 1;                          /* no carry: p's low limb is all ones, so this one is 0 */
	memcpy(p256_rr, p256_one, sizeof(p256_rr));
	for (i = 0; i < 256; i++)
		fe_add(p256_rr, p256_rr, p256_rr);
	/* the same for n, plus n - 2 (Fermat's inverse) and -n^-1 mod 2^64 (Newton: 3 -> 6 -> ... -> 96 bits) */
	if (fe_from_mpi(p256_n, &g.N) != 0 || !(p256_n[3] >> 63) || !(p256_n[0] & 1) || p256_n[0] < 2)
		goto done;
	{
		p256_u128 c = 1;
		uint64_t inv = p256_n[0];

		for (i = 0; i < 4; i++) {
			c += (uint64_t)~p256_n[i];
			p256_n_one[i] = (uint64_t)c;
			c >>= 64;
		}
		for (i = 0; i < 5; i++)
			inv *= 2 - p256_n[0] * inv;
		p256_ninv = (uint64_t)0 - inv;
	}
	memcpy(p256_n_rr, p256_n_one, sizeof(p256_n_rr));
	for (i = 0; i < 256; i++)
		mod_add(p256_n_rr, p256_n_rr, p256_n_rr, p256_n);
	memcpy(p256_n_2, p256_n, sizeof(p256_n_2));
	p256_n_2[0] -= 2;
	if (fe_from_mpi(t, &g.B) != 0 || fe_from_mpi(gx, &g.G.MBEDTLS_PRIVATE(X)) != 0 ||
	    fe_from_mpi(gy, &g.G.MBEDTLS_PRIVATE(Y)) != 0)
		goto done;
	fe_to_mont(p256_b, t);
	fe_to_mont(gj.x, gx);
	fe_to_mont(gj.y, gy);
	memcpy(gj.z, p256_one, sizeof(gj.z));
	pt_odd_multiples(p256_g, &gj, sizeof(p256_g) / sizeof(p256_g[0]));
	pt_batch_affine(p256_g, sizeof(p256_g) / sizeof(p256_g[0]));
	p256_ready = 1;
done:
	mbedtls_ecp_group_free(&g);
}

/* (x, y) (plain, each < p) on y^2 = x^3 - 3x + b? */
static int p256_on_curve(const p256_fe x, const p256_fe y)
{
	p256_fe xm, ym, l, r, t;

	if (!fe_lt_p(x) || !fe_lt_p(y))
		return 0;
	fe_to_mont(xm, x);
	fe_to_mont(ym, y);
	fe_mul(l, ym, ym);
	fe_mul(r, xm, xm);
	fe_mul(r, r, xm);
	fe_add(t, xm, xm);
	fe_add(t, t, xm);
	fe_sub(r, r, t);
	fe_add(r, r, p256_b);
	return fe_eq(l, r);
}

/* e (plain, < n): the hash's leftmost 256 bits as an integer (SEC1 4.1.3 step 5) */
static void p256_hash_to_e(p256_fe e, const unsigned char *buf, size_t blen)
{
	unsigned char hb[32];

	if (blen > sizeof(hb))
		blen = sizeof(hb);
	memset(hb, 0, sizeof(hb));
	memcpy(hb + sizeof(hb) - blen, buf, blen);
	fe_from_be(e, hb);
	mod_reduce_once(e, e, 0, p256_n);          /* < 2^256 < 2n: one subtraction makes it < n */
}

/* R = u1 G + u2 Q (u1, u2 < 2^256, plain limbs; q finite, Montgomery) */
static void p256_muladd(struct p256_pt *r, const p256_fe u1, const p256_fe u2, const struct p256_pt *q)
{
	struct p256_pt qt[1 << (P256_QW - 2)];
	signed char n1[257], n2[257];
	int l1, l2, i;

	pt_odd_multiples(qt, q, sizeof(qt) / sizeof(qt[0]));
	l1 = p256_wnaf(n1, u1, P256_GW);
	l2 = p256_wnaf(n2, u2, P256_QW);
	memset(r, 0, sizeof(*r));
	for (i = (l1 > l2 ? l1 : l2) - 1; i >= 0; i--) {
		if (!fe_is_zero(r->z))
			pt_double(r, r);
		if (n1[i])
			pt_add(r, r, &p256_g[(abs(n1[i]) - 1) / 2], n1[i] < 0);
		if (n2[i])
			pt_add(r, r, &qt[(abs(n2[i]) - 1) / 2], n2[i] < 0);
	}
}

int mbedtls_ecdsa_verify(mbedtls_ecp_group *grp, const unsigned char *buf, size_t blen,
                         const mbedtls_ecp_point *Q, const mbedtls_mpi *r, const mbedtls_mpi *s)
{
	p256_fe e, w, u1, u2, qx, qy, rx, sx, x, y;
	struct p256_pt q, res;

	if (grp->id != MBEDTLS_ECP_DP_SECP256R1)
		return MBEDTLS_ERR_ECP_FEATURE_UNAVAILABLE;
	pthread_once(&p256_once, p256_init);
	if (!p256_ready)
		return MBEDTLS_ERR_ECP_FEATURE_UNAVAILABLE;
	/* Q: a finite affine point on the curve (parsers check it too) */
	if (mbedtls_mpi_cmp_int(&Q->MBEDTLS_PRIVATE(Z), 1) != 0 || fe_from_mpi(qx, &Q->MBEDTLS_PRIVATE(X)) != 0 ||
	    fe_from_mpi(qy, &Q->MBEDTLS_PRIVATE(Y)) != 0 || !p256_on_curve(qx, qy))
		return MBEDTLS_ERR_ECP_BAD_INPUT_DATA;
	/* SEC1 4.1.4 step 1: 1 <= r, s < n */
	if (mbedtls_mpi_cmp_int(r, 1) < 0 || mbedtls_mpi_cmp_mpi(r, &grp->N) >= 0 ||
	    mbedtls_mpi_cmp_int(s, 1) < 0 || mbedtls_mpi_cmp_mpi(s, &grp->N) >= 0 ||
	    fe_from_mpi(rx, r) != 0 || fe_from_mpi(sx, s) != 0)
		return MBEDTLS_ERR_ECP_VERIFY_FAILED;
	p256_hash_to_e(e, buf, blen);
	/* w = 1/s (Montgomery form mod n); u1 = e w, u2 = r w (plain: the product drops one R) */
	sc_mul(w, sx, p256_n_rr);
	mod_pow(w, w, p256_n_2, p256_n_one, 1);
	sc_mul(u1, e, w);
	sc_mul(u2, rx, w);
	fe_to_mont(q.x, qx);
	fe_to_mont(q.y, qy);
	memcpy(q.z, p256_one, sizeof(q.z));
	p256_muladd(&res, u1, u2, &q);
	if (fe_is_zero(res.z))
		return MBEDTLS_ERR_ECP_VERIFY_FAILED;  /* R at infinity */
	pt_affine(x, y, &res);
	fe_from_mont(x, x);
	mod_reduce_once(x, x, 0, p256_n);          /* v = x mod n: x < p < 2n */
	return fe_eq(x, rx) ? 0 : MBEDTLS_ERR_ECP_VERIFY_FAILED;
}

/* ------------------------------------------------------------------ ECDSA P-256 signing */

/*
 * mbedTLS's constant-time ECDSA sign cost about 0.3 ms (3.9M instructions: its
 * comb method on generic bignums plus two constant-time inversions), half of
 * what the CA spends per certificate and one of a handshake's five curve
 * operations. The build defines MBEDTLS_ECDSA_SIGN_ALT, so this function is
 * mbedtls_ecdsa_sign for the whole library (PSA, pk, x509 writing, TLS
 * CertificateVerify); key generation stays mbedTLS's (ECDH is below).
 *
 * Unlike verification it handles secrets (the key d and the nonce k), so it
 * runs in constant time: no branch, memory address or loop bound depends on
 * them. k G sums one precomputed point per 4-bit window of k: the table holds
 * j 16^i G (i = 0..63, j = 1..15, affine, 60 KiB, made once per process);
 * every window reads all 15 entries and keeps one by masks, adds it with the
 * complete formula below (no special cases: the sum may be the point at
 * infinity, equal or opposite points need no branch), and a zero digit keeps
 * the previous sum by a mask (the addition is computed anyway). Inversions
 * (1/Z, 1/k) are by Fermat: a fixed public exponent. The field code above is
 * branch-free on values (mod_reduce_once and mod_sub select by masks,
 * mod_mul's work does not depend on its inputs). k is drawn uniformly in
 * [1, n - 1] by rejection from f_rng; a rejection reveals only that a
 * candidate (never used) was out of range. Secret temporaries are zeroized.
 * tests/unit/test_ecdsa.c checks k G against mbedtls_ecp_mul and the
 * signatures against mbedTLS's verification math and ours.
 */
#define P256_SWIN 64                           /* 4-bit windows of a scalar */

struct p256_aff {
	p256_fe x, y;                              /* affine, Montgomery form */
};

static pthread_once_t p256_sign_once = PTHREAD_ONCE_INIT;
static int p256_sign_ready;                    /* 1 once the table below is made */
static struct p256_aff p256_gt[P256_SWIN][15];  /* [i][j - 1] = j 16^i G */

/* keep the compiler from turning a mask back into a branch */
P256_INLINE uint64_t ct_barrier(uint64_t x)
{
	__asm__("" : "+r"(x));
	return x;
}

/* 1 <= a < n, found without branching on a (a secret: only the answer is revealed) */
static int sc_in_range(const p256_fe a)
{
	uint64_t borrow = 0, any = a[0] | a[1] | a[2] | a[3];
	int i;

	for (i = 0; i < 4; i++) {
		p256_u128 d = (p256_u128)a[i] - p256_n[i] - borrow;

		borrow = (uint64_t)(d >> 64) & 1;
	}
	return (int)(borrow & ((any | ((uint64_t)0 - any)) >> 63));
}

static void p256_sign_init(void)
{
	struct p256_pt row[15], b;
	int i, j;

	pthread_once(&p256_once, p256_init);
	if (!p256_ready)
		return;
	b = p256_g[0];                             /* 16^i G, i = 0 */
	for (i = 0; i < P256_SWIN; i++) {
		row[0] = b;
		for (j = 1; j < 15; j++)
			pt_add(&row[j], &row[j - 1], &b, 0);
		pt_double(&b, &row[7]);                /* 16^(i+1) G = 2 (8 16^i G) */
		pt_batch_affine(row, 15);
		for (j = 0; j < 15; j++) {
			memcpy(p256_gt[i][j].x, row[j].x, sizeof(p256_fe));
			memcpy(p256_gt[i][j].y, row[j].y, sizeof(p256_fe));
		}
	}
	p256_sign_ready = 1;
}

/*
 * r = a + b: a in homogeneous projective coordinates (x = X/Z, y = Y/Z; the
 * point at infinity is (0 : 1 : 0)), b affine and finite. The complete mixed
 * addition for a = -3 of Renes, Costello and Batina ("Complete addition
 * formulas for prime order elliptic curves", 2016, algorithm 5): correct for
 * every such pair, so it needs no branch. r may alias a.
 */
static void pt_add_complete(struct p256_pt *r, const struct p256_pt *a, const struct p256_aff *b)
{
	p256_fe t0, t1, t2, t3, t4, x3, y3, z3;

	/* the paper's 36 steps in its order (X1 Y1 Z1 = a, X2 Y2 = b) */
	fe_mul(t0, a->x, b->x);
	fe_mul(t1, a->y, b->y);
	fe_add(t3, b->x, b->y);
	fe_add(t4, a->x, a->y);
	fe_mul(t3, t3, t4);
	fe_add(t4, t0, t1);
	fe_sub(t3, t3, t4);                        /* X1 Y2 + X2 Y1 */
	fe_mul(t4, b->y, a->z);
	fe_add(t4, t4, a->y);                      /* Y2 Z1 + Y1 */
	fe_mul(y3, b->x, a->z);
	fe_add(y3, y3, a->x);                      /* X2 Z1 + X1 */
	fe_mul(z3, p256_b, a->z);
	fe_sub(x3, y3, z3);
	fe_add(z3, x3, x3);
	fe_add(x3, x3, z3);                        /* 3 (X2 Z1 + X1 - b Z1) */
	fe_sub(z3, t1, x3);
	fe_add(x3, t1, x3);
	fe_mul(y3, p256_b, y3);
	fe_add(t1, a->z, a->z);
	fe_add(t2, t1, a->z);                      /* 3 Z1 */
	fe_sub(y3, y3, t2);
	fe_sub(y3, y3, t0);
	fe_add(t1, y3, y3);
	fe_add(y3, t1, y3);                        /* 3 (b (X2 Z1 + X1) - 3 Z1 - X1 X2) */
	fe_add(t1, t0, t0);
	fe_add(t0, t1, t0);
	fe_sub(t0, t0, t2);                        /* 3 X1 X2 - 3 Z1 */
	fe_mul(t1, t4, y3);
	fe_mul(t2, t0, y3);
	fe_mul(y3, x3, z3);
	fe_add(y3, y3, t2);
	fe_mul(x3, t3, x3);
	fe_sub(x3, x3, t1);
	fe_mul(z3, t4, z3);
	fe_mul(t1, t3, t0);
	fe_add(z3, z3, t1);
	memcpy(r->x, x3, sizeof(x3));
	memcpy(r->y, y3, sizeof(y3));
	memcpy(r->z, z3, sizeof(z3));
}

/*
 * acc += w tab[...] in constant time for a secret window w (0..15), tab[j - 1]
 * = j P affine: every entry is read and the one wanted kept by masks, and the
 * sum is computed even for w = 0 and then dropped by a mask.
 */
static void pt_add_window(struct p256_pt *acc, const struct p256_aff tab[15], uint64_t w)
{
	uint64_t use = ct_barrier((uint64_t)0 - ((w + 15) >> 4));  /* all ones when w != 0 */
	struct p256_pt sum;
	struct p256_aff e;
	int j, l;

	memset(&e, 0, sizeof(e));
	for (j = 0; j < 15; j++) {
		uint64_t m = ct_barrier((uint64_t)0 - (((w ^ (uint64_t)(j + 1)) - 1) >> 63));

		for (l = 0; l < 4; l++) {
			e.x[l] |= tab[j].x[l] & m;
			e.y[l] |= tab[j].y[l] & m;
		}
	}
	pt_add_complete(&sum, acc, &e);
	for (l = 0; l < 4; l++) {
		acc->x[l] = (sum.x[l] & use) | (acc->x[l] & ~use);
		acc->y[l] = (sum.y[l] & use) | (acc->y[l] & ~use);
		acc->z[l] = (sum.z[l] & use) | (acc->z[l] & ~use);
	}
	mbedtls_platform_zeroize(&sum, sizeof(sum));
	mbedtls_platform_zeroize(&e, sizeof(e));
}

/* r = k G (homogeneous projective) for a secret k < 2^256, in constant time */
static void p256_base_mul(struct p256_pt *r, const p256_fe k)
{
	struct p256_pt acc;
	int i;

	memset(&acc, 0, sizeof(acc));
	memcpy(acc.y, p256_one, sizeof(acc.y));    /* (0 : 1 : 0) */
	for (i = 0; i < P256_SWIN; i++)
		pt_add_window(&acc, p256_gt[i], (k[i / 16] >> (4 * (i % 16))) & 15);
	*r = acc;
	mbedtls_platform_zeroize(&acc, sizeof(acc));
}

int mbedtls_ecdsa_sign(mbedtls_ecp_group *grp, mbedtls_mpi *r, mbedtls_mpi *s, const mbedtls_mpi *d,
                       const unsigned char *buf, size_t blen,
                       int (*f_rng)(void *, unsigned char *, size_t), void *p_rng)
{
	p256_fe dk, k, e, rx, t, u;
	struct p256_pt kg;
	unsigned char b[32];
	int ret = MBEDTLS_ERR_ECP_RANDOM_FAILED, tries;

	if (grp->id != MBEDTLS_ECP_DP_SECP256R1)
		return MBEDTLS_ERR_ECP_FEATURE_UNAVAILABLE;  /* the only curve this build has */
	if (f_rng == NULL)
		return MBEDTLS_ERR_ECP_BAD_INPUT_DATA;
	pthread_once(&p256_sign_once, p256_sign_init);
	if (!p256_sign_ready)
		return MBEDTLS_ERR_ECP_FEATURE_UNAVAILABLE;
	if (fe_from_mpi(dk, d) != 0 || !sc_in_range(dk)) {
		ret = MBEDTLS_ERR_ECP_INVALID_KEY;     /* as mbedTLS: d must be in [1, n - 1] */
		goto done;
	}
	p256_hash_to_e(e, buf, blen);
	/* as mbedTLS, give up after a bounded number of draws (each fails with probability ~2^-32) */
	for (tries = 0; tries < 100; tries++) {
		if ((ret = f_rng(p_rng, b, sizeof(b))) != 0)
			goto done;
		ret = MBEDTLS_ERR_ECP_RANDOM_FAILED;
		fe_from_be(k, b);
		if (!sc_in_range(k))
			continue;                          /* k uniform in [1, n - 1] by rejection */
		p256_base_mul(&kg, k);
		fe_inv(t, kg.z);                       /* z != 0: k G is finite for 0 < k < n */
		fe_mul(rx, kg.x, t);
		fe_from_mont(rx, rx);
		mod_reduce_once(rx, rx, 0, p256_n);    /* r = x mod n: x < p < 2n */
		if (fe_is_zero(rx))
			continue;
		/* s = (e + r d) / k mod n, in Montgomery form: (a R) b / R = a b */
		sc_mul(t, rx, p256_n_rr);
		sc_mul(t, t, dk);
		mod_add(t, t, e, p256_n);
		sc_mul(u, k, p256_n_rr);
		mod_pow(u, u, p256_n_2, p256_n_one, 1);  /* R / k */
		sc_mul(u, u, t);
		if (fe_is_zero(u))
			continue;
		fe_to_be(b, rx);
		if ((ret = mbedtls_mpi_read_binary(r, b, sizeof(b))) != 0)
			goto done;
		fe_to_be(b, u);
		ret = mbedtls_mpi_read_binary(s, b, sizeof(b));
		goto done;
	}
done:
	mbedtls_platform_zeroize(dk, sizeof(dk));
	mbedtls_platform_zeroize(k, sizeof(k));
	mbedtls_platform_zeroize(&kg, sizeof(kg));
	mbedtls_platform_zeroize(t, sizeof(t));
	mbedtls_platform_zeroize(u, sizeof(u));
	mbedtls_platform_zeroize(b, sizeof(b));
	return ret;
}

/*
 * ECDH (MBEDTLS_ECDH_COMPUTE_SHARED_ALT: PSA's key agreement in every TLS
 * handshake reaches it): z = x(d Q) for the secret d, in constant time as
 * the signer above. Q is the peer's public key, so its multiples may be made
 * with the variable-time Jacobian code: 1 Q .. 15 Q, brought to affine with
 * one inversion. Then 64 4-bit windows of d from the top: four complete
 * doublings and one complete mixed addition each, the table entry read whole
 * with masks and the sum kept or not by a mask (a zero window).
 */

/* r = 2a, homogeneous projective, a = -3: Renes, Costello and Batina,
 * algorithm 6 (complete: infinity doubles to infinity). r may alias a. */
static void pt_double_complete(struct p256_pt *r, const struct p256_pt *a)
{
	p256_fe t0, t1, t2, t3, x3, y3, z3;

	fe_mul(t0, a->x, a->x);
	fe_mul(t1, a->y, a->y);
	fe_mul(t2, a->z, a->z);
	fe_mul(t3, a->x, a->y);
	fe_add(t3, t3, t3);
	fe_mul(z3, a->x, a->z);
	fe_add(z3, z3, z3);
	fe_mul(y3, p256_b, t2);
	fe_sub(y3, y3, z3);
	fe_add(x3, y3, y3);
	fe_add(y3, x3, y3);
	fe_sub(x3, t1, y3);
	fe_add(y3, t1, y3);
	fe_mul(y3, x3, y3);
	fe_mul(x3, x3, t3);
	fe_add(t3, t2, t2);
	fe_add(t2, t2, t3);
	fe_mul(z3, p256_b, z3);
	fe_sub(z3, z3, t2);
	fe_sub(z3, z3, t0);
	fe_add(t3, z3, z3);
	fe_add(z3, z3, t3);
	fe_add(t3, t0, t0);
	fe_add(t0, t3, t0);
	fe_sub(t0, t0, t2);
	fe_mul(t0, t0, z3);
	fe_add(y3, y3, t0);
	fe_mul(t0, a->y, a->z);
	fe_add(t0, t0, t0);
	fe_mul(z3, t0, z3);
	fe_sub(x3, x3, z3);
	fe_mul(z3, t0, t1);
	fe_add(z3, z3, z3);
	fe_add(z3, z3, z3);
	memcpy(r->x, x3, sizeof(x3));
	memcpy(r->y, y3, sizeof(y3));
	memcpy(r->z, z3, sizeof(z3));
}

int mbedtls_ecdh_compute_shared(mbedtls_ecp_group *grp, mbedtls_mpi *z, const mbedtls_ecp_point *Q,
                                const mbedtls_mpi *d, int (*f_rng)(void *, unsigned char *, size_t), void *p_rng)
{
	struct p256_pt row[15], q, acc;
	struct p256_aff tab[15];
	p256_fe dk, t, x;
	unsigned char b[32];
	int ret, i, j;

	(void)f_rng;                               /* no blinding needed: nothing here depends on d's value */
	(void)p_rng;
	if (grp->id != MBEDTLS_ECP_DP_SECP256R1)
		return MBEDTLS_ERR_ECP_FEATURE_UNAVAILABLE;  /* the only curve this build has */
	pthread_once(&p256_once, p256_init);
	if (!p256_ready)
		return MBEDTLS_ERR_ECP_FEATURE_UNAVAILABLE;
	/* as mbedTLS: 1 <= d < n, and Q a finite affine point on the curve */
	if ((ret = mbedtls_ecp_check_privkey(grp, d)) != 0 || (ret = mbedtls_ecp_check_pubkey(grp, Q)) != 0)
		return ret;
	if (fe_from_mpi(q.x, &Q->MBEDTLS_PRIVATE(X)) != 0 || fe_from_mpi(q.y, &Q->MBEDTLS_PRIVATE(Y)) != 0 ||
	    fe_from_mpi(dk, d) != 0)
		return MBEDTLS_ERR_ECP_BAD_INPUT_DATA;
	fe_to_mont(q.x, q.x);
	fe_to_mont(q.y, q.y);
	memcpy(q.z, p256_one, sizeof(q.z));
	row[0] = q;                                /* j Q, j = 1 .. 15: finite (Q has prime order n) */
	for (j = 1; j < 15; j++)
		pt_add(&row[j], &row[j - 1], &q, 0);
	pt_batch_affine(row, 15);
	for (j = 0; j < 15; j++) {
		memcpy(tab[j].x, row[j].x, sizeof(p256_fe));
		memcpy(tab[j].y, row[j].y, sizeof(p256_fe));
	}
	memset(&acc, 0, sizeof(acc));
	memcpy(acc.y, p256_one, sizeof(acc.y));    /* (0 : 1 : 0) */
	for (i = P256_SWIN - 1; i >= 0; i--) {
		for (j = 0; j < 4; j++)
			pt_double_complete(&acc, &acc);
		pt_add_window(&acc, tab, (dk[i / 16] >> (4 * (i % 16))) & 15);
	}
	ret = MBEDTLS_ERR_ECP_BAD_INPUT_DATA;      /* d Q at infinity (cannot be, for 1 <= d < n) */
	if (!fe_is_zero(acc.z)) {
		fe_inv(t, acc.z);
		fe_mul(x, acc.x, t);
		fe_from_mont(x, x);
		fe_to_be(b, x);
		ret = mbedtls_mpi_read_binary(z, b, sizeof(b));
	}
	mbedtls_platform_zeroize(dk, sizeof(dk));
	mbedtls_platform_zeroize(&acc, sizeof(acc));
	mbedtls_platform_zeroize(t, sizeof(t));
	mbedtls_platform_zeroize(x, sizeof(x));
	mbedtls_platform_zeroize(b, sizeof(b));
	return ret;
}

/* ------------------------------------------------------------------ issuing certificates (the CA, tests) */

struct tls_issuer {
	mbedtls_x509_crt cert;       /* the issuing CA certificate */
	mbedtls_pk_context key;      /* its private key */
	char subject[256];           /* its subject, the issuer name of what it signs */
};

struct tls_issuer *tls_issuer_new(const char *cert_pem, const char *key_pem, char *err, size_t errlen)
{
	struct tls_issuer *i;
	char eb[120];
	int rc;

	if (tls_global_init() < 0) {
		tls_errf(err, errlen, "tls: cannot initialise the random generator");
		return NULL;
	}
	i = calloc(1, sizeof(*i));
	if (!i) {
		tls_errf(err, errlen, "out of memory");
		return NULL;
	}
	mbedtls_x509_crt_init(&i->cert);
	mbedtls_pk_init(&i->key);
	if (parse_pem_chain(&i->cert, cert_pem, "CA certificate", err, errlen) < 0)
		goto fail;
	rc = mbedtls_pk_parse_key(&i->key, (const unsigned char *)key_pem, strlen(key_pem) + 1, NULL, 0, tls_rng, NULL);
	if (rc != 0) {
		tls_errf(err, errlen, "CA key: %s", mbed_err(rc, eb, sizeof(eb)));
		goto fail;
	}
	if (mbedtls_pk_check_pair(&i->cert.pk, &i->key, tls_rng, NULL) != 0) {
		tls_errf(err, errlen, "CA key does not match the CA certificate");
		goto fail;
	}
	if (!i->cert.MBEDTLS_PRIVATE(ca_istrue)) {
		tls_errf(err, errlen, "the CA certificate is not a CA (basic constraints CA:false)");
		goto fail;
	}
	if (mbedtls_x509_dn_gets(i->subject, sizeof(i->subject), &i->cert.subject) < 0) {
		tls_errf(err, errlen, "CA certificate subject too long");
		goto fail;
	}
	return i;
fail:
	tls_issuer_free(i);
	return NULL;
}

void tls_issuer_free(struct tls_issuer *i)
{
	if (!i)
		return;
	mbedtls_x509_crt_free(&i->cert);
	mbedtls_pk_free(&i->key);
	free(i);
}

static void x509_time_str(time_t t, char out[32])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	if (tm.tm_year < 0 || tm.tm_year > 8099)
		tm.tm_year = 8099;  /* X.509 GeneralizedTime stops at 9999 */
	snprintf(out, 32, "%04d%02d%02d%02d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
	         tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static char *issue(const struct tls_issuer *iss, const struct tls_issue *req, mbedtls_pk_context *subject_pk,
                   mbedtls_pk_context *self_key, char *err, size_t errlen)
{
	static const unsigned char oid_server[] = MBEDTLS_OID_SERVER_AUTH, oid_client[] = MBEDTLS_OID_CLIENT_AUTH;
	mbedtls_x509write_cert w;
	mbedtls_x509_san_list san[3];
	mbedtls_asn1_sequence eku[2];
	unsigned char serial[16], ip[4], pem[4096];
	char nb[32], na[32], eb[120];
	size_t nsan = 0, k;
	char *out = NULL;
	int rc;

	mbedtls_x509write_crt_init(&w);
	mbedtls_x509write_crt_set_version(&w, MBEDTLS_X509_CRT_VERSION_3);
	mbedtls_x509write_crt_set_md_alg(&w, MBEDTLS_MD_SHA256);
	mbedtls_x509write_crt_set_subject_key(&w, subject_pk);
	mbedtls_x509write_crt_set_issuer_key(&w, iss ? (mbedtls_pk_context *)&iss->key : self_key);
	if ((rc = tls_rng(NULL, serial, sizeof(serial))) != 0)
		goto done;
	serial[0] &= 0x7f;  /* positive */
	serial[0] |= 0x01;  /* and no leading zero byte */
	if ((rc = mbedtls_x509write_crt_set_serial_raw(&w, serial, sizeof(serial))) != 0)
		goto done;
	x509_time_str((time_t)req->not_before, nb);
	x509_time_str((time_t)req->not_after, na);
	if ((rc = mbedtls_x509write_crt_set_validity(&w, nb, na)) != 0)
		goto done;
	if ((rc = mbedtls_x509write_crt_set_subject_name(&w, req->subject)) != 0)
		goto done;
	if ((rc = mbedtls_x509write_crt_set_issuer_name(&w, iss ? iss->subject : req->subject)) != 0)
		goto done;
	if ((rc = mbedtls_x509write_crt_set_basic_constraints(&w, req->is_ca, req->is_ca ? req->max_pathlen : -1)) != 0)
		goto done;
	if ((rc = mbedtls_x509write_crt_set_key_usage(&w, req->is_ca ? MBEDTLS_X509_KU_KEY_CERT_SIGN | MBEDTLS_X509_KU_CRL_SIGN
	                                                             : MBEDTLS_X509_KU_DIGITAL_SIGNATURE)) != 0)
		goto done;
	if (!req->is_ca) {
		memset(eku, 0, sizeof(eku));
		eku[0].buf.tag = MBEDTLS_ASN1_OID;
		eku[0].buf.p = (unsigned char *)(uintptr_t)oid_server;
		eku[0].buf.len = sizeof(oid_server) - 1;
		eku[0].next = &eku[1];
		eku[1].buf.tag = MBEDTLS_ASN1_OID;
		eku[1].buf.p = (unsigned char *)(uintptr_t)oid_client;
		eku[1].buf.len = sizeof(oid_client) - 1;
		if ((rc = mbedtls_x509write_crt_set_ext_key_usage(&w, eku)) != 0)
			goto done;
	}
	memset(san, 0, sizeof(san));
	if (req->uri_san) {
		san[nsan].node.type = MBEDTLS_X509_SAN_UNIFORM_RESOURCE_IDENTIFIER;
		san[nsan].node.san.unstructured_name.p = (unsigned char *)(uintptr_t)req->uri_san;
		san[nsan++].node.san.unstructured_name.len = strlen(req->uri_san);
	}
	if (req->dns_san) {
		san[nsan].node.type = MBEDTLS_X509_SAN_DNS_NAME;
		san[nsan].node.san.unstructured_name.p = (unsigned char *)(uintptr_t)req->dns_san;
		san[nsan++].node.san.unstructured_name.len = strlen(req->dns_san);
	}
	if (req->ip_loopback) {
		ip[0] = 127, ip[1] = 0, ip[2] = 0, ip[3] = 1;
		san[nsan].node.type = MBEDTLS_X509_SAN_IP_ADDRESS;
		san[nsan].node.san.unstructured_name.p = ip;
		san[nsan++].node.san.unstructured_name.len = 4;
	}
	for (k = 0; k + 1 < nsan; k++)
		san[k].next = &san[k + 1];
	if (nsan && (rc = mbedtls_x509write_crt_set_subject_alternative_name(&w, san)) != 0)
		goto done;
	/* on the stack, then copied: a 4 KiB malloc per certificate made musl map and unmap a page each time */
	rc = mbedtls_x509write_crt_pem(&w, pem, sizeof(pem), tls_rng, NULL);
	if (rc == 0 && !(out = strdup((const char *)pem)))
		rc = MBEDTLS_ERR_X509_ALLOC_FAILED;
done:
	mbedtls_x509write_crt_free(&w);
	if (rc != 0) {
		tls_errf(err, errlen, "issuing a certificate: %s", mbed_err(rc, eb, sizeof(eb)));
		free(out);
		return NULL;
	}
	return out;
}

char *tls_issue_for_key(const struct tls_issuer *iss, const struct tls_issue *req, const char *key_pem,
                        char *err, size_t errlen)
{
	mbedtls_pk_context pk;
	char eb[120];
	char *out;
	int rc;

	if (tls_global_init() < 0) {
		tls_errf(err, errlen, "tls: cannot initialise the random generator");
		return NULL;
	}
	mbedtls_pk_init(&pk);
	rc = mbedtls_pk_parse_key(&pk, (const unsigned char *)key_pem, strlen(key_pem) + 1, NULL, 0, tls_rng, NULL);
	if (rc != 0) {
		tls_errf(err, errlen, "key: %s", mbed_err(rc, eb, sizeof(eb)));
		mbedtls_pk_free(&pk);
		return NULL;
	}
	out = issue(iss, req, &pk, &pk, err, errlen);
	mbedtls_pk_free(&pk);
	return out;
}

char *tls_issue_for_csr(const struct tls_issuer *iss, const struct tls_issue *req, const char *csr, size_t len,
                        char *err, size_t errlen)
{
	mbedtls_x509_csr c;
	unsigned char hash[MBEDTLS_MD_MAX_SIZE];
	const mbedtls_md_info_t *md;
	char eb[120];
	char *out = NULL;
	int rc;

	mbedtls_x509_csr_init(&c);
	/* mbedTLS takes PEM with its NUL counted, DER as is: callers give a NUL-terminated string */
	rc = mbedtls_x509_csr_parse(&c, (const unsigned char *)csr, len + 1);
	if (rc != 0) {
		tls_errf(err, errlen, "the CSR does not parse: %s", mbed_err(rc, eb, sizeof(eb)));
		goto done;
	}
	if (mbedtls_pk_get_type(&c.pk) != MBEDTLS_PK_ECKEY ||
	    mbedtls_pk_ec(c.pk)->MBEDTLS_PRIVATE(grp).id != MBEDTLS_ECP_DP_SECP256R1) {
		tls_errf(err, errlen, "the CSR's key is not an ECDSA P-256 key");
		goto done;
	}
	/* proof of possession: the CSR is signed by the key it carries */
	md = mbedtls_md_info_from_type(c.MBEDTLS_PRIVATE(sig_md));
	if (!md || mbedtls_md(md, c.cri.p, c.cri.len, hash) != 0 ||
	    mbedtls_pk_verify_ext(c.MBEDTLS_PRIVATE(sig_pk), c.MBEDTLS_PRIVATE(sig_opts), &c.pk, c.MBEDTLS_PRIVATE(sig_md),
	                          hash, mbedtls_md_get_size(md), c.MBEDTLS_PRIVATE(sig).p, c.MBEDTLS_PRIVATE(sig).len) != 0) {
		tls_errf(err, errlen, "the CSR's signature does not verify");
		goto done;
	}
	out = issue(iss, req, &c.pk, NULL, err, errlen);
done:
	mbedtls_x509_csr_free(&c);
	return out;
}

int tls_csr_id(const char *csr, size_t len, char *id, size_t cap)
{
	mbedtls_x509_csr c;
	int rc;

	mbedtls_x509_csr_init(&c);
	rc = mbedtls_x509_csr_parse(&c, (const unsigned char *)csr, len + 1);
	if (rc == 0 && san_spiffe_id(&c.subject_alt_names, id, cap) < 0)
		id[0] = '\0';
	mbedtls_x509_csr_free(&c);
	return rc == 0 ? 0 : -1;
}
