/*
 * tls: mbedTLS 3.6 for mesh. Workload identities (a certificate chain, its
 * private key and the trust bundle they chain to, as ready TLS configs), the
 * non-blocking TLS transport that the proxy, the CA and the agent drive from
 * their libev loops, SPIFFE identities of peers, and ClientHello sniffing for
 * PERMISSIVE ports.
 *
 * Return codes of the transport follow wrk's OK | ERROR | RETRY: a positive
 * byte count or 0 (done / EOF), TLS_WANT_READ or TLS_WANT_WRITE (wait for the
 * fd, then call again), TLS_ERR (tls_error says why).
 *
 * Key, CSR and certificate helpers for the CA and the agent are declared
 * below the transport.
 */
#ifndef MESH_TLS_H
#define MESH_TLS_H

#include <stddef.h>
#include <sys/types.h>

#define TLS_ERR        (-1)
#define TLS_WANT_READ  (-2)
#define TLS_WANT_WRITE (-3)

/* once per process, before anything else here; 0 ok, -1 no entropy */
int tls_global_init(void);

/* ------------------------------------------------------------------ identities */

/*
 * A workload identity ready for TLS: server and client configs sharing one
 * certificate chain (leaf first), key and trust bundle. Refcounted: a renewal
 * builds a new one and swaps it in; open connections keep the one they started
 * with. TLS 1.3 preferred, 1.2 allowed, P-256, AEAD suites only; both sides
 * require and verify the peer's certificate (mutual TLS).
 */
struct tls_creds;

struct tls_creds *tls_creds_new(const char *chain_pem, const char *key_pem, const char *bundle_pem,
                                char *err, size_t errlen);
struct tls_creds *tls_creds_ref(struct tls_creds *c);
void tls_creds_unref(struct tls_creds *c);
const char *tls_creds_id(const struct tls_creds *c);       /* own SPIFFE URI */
double tls_creds_not_before(const struct tls_creds *c);    /* Unix time */
double tls_creds_not_after(const struct tls_creds *c);

/* ------------------------------------------------------------------ transport */

struct tls_conn;

/* server side of an accepted fd (the fd stays the caller's: tls_free does not close it) */
struct tls_conn *tls_server(struct tls_creds *c, int fd);

/*
 * client side of a connected fd. ids: the SPIFFE URIs the server may present
 * (n = 0: any identity the trust bundle vouches for). session_key names the
 * peer (e.g. "10.0.0.7:15006") for session resumption; NULL = none.
 */
struct tls_conn *tls_client(struct tls_creds *c, int fd, const char *const *ids, size_t n,
                            const char *session_key);
/*
 * the same for a long-lived, mostly idle connection (the control channel): TLS 1.2
 * with max_fragment_length 4096, so that both ends shrink their record buffers from
 * 2 x 16 KiB to 2 x 4 KiB after the handshake (mbedTLS 3.6 resizes them only for a
 * negotiated fragment length, which it implements for TLS 1.2 alone)
 */
struct tls_conn *tls_client_lean(struct tls_creds *c, int fd, const char *const *ids, size_t n,
                                 const char *session_key);

/* 0 when the handshake is complete (peer identity checked), TLS_WANT_*, TLS_ERR */
int tls_handshake(struct tls_conn *t);

/* >0 bytes, 0 = peer closed (close_notify or FIN), TLS_WANT_*, TLS_ERR */
ssize_t tls_read(struct tls_conn *t, void *buf, size_t len);
/* >0 bytes taken (all of len, or a record's worth), TLS_WANT_*, TLS_ERR */
ssize_t tls_write(struct tls_conn *t, const void *buf, size_t len);
/* decrypted bytes already buffered: read them before waiting for the fd again */
size_t tls_pending(const struct tls_conn *t);

const char *tls_peer_id(const struct tls_conn *t);   /* peer's SPIFFE URI, "" before the handshake */
const char *tls_error(const struct tls_conn *t);     /* last failure, for logs and x-mesh-error */
const char *tls_version(const struct tls_conn *t);   /* "TLSv1.3" ... */
int tls_resumed(const struct tls_conn *t);           /* 1 when the session was resumed */

/* best-effort close_notify, frees; the fd is left open */
void tls_free(struct tls_conn *t);

/* first bytes of a connection: 1 = a TLS ClientHello, 0 = not TLS, -1 = need more bytes */
int tls_sniff(const unsigned char *p, size_t n);

/* "spiffe://TD/ns/NS/sa/SA" into out; -1 if it does not fit */
int tls_spiffe_id(char *out, size_t cap, const char *trust_domain, const char *ns, const char *sa);

/* ------------------------------------------------------------------ additions for the CA and the agent */

/* tls_creds_new_ex flags */
#define TLS_CREDS_NO_CLIENT_CERT 1u  /* server side asks for no client certificate (the CA's /v1/sign) */
#define TLS_CREDS_NO_VERIFY      2u  /* client side does not verify the server (only to fetch a bundle
                                        that is then checked against a pinned fingerprint) */

/*
 * tls_creds_new with flags; chain_pem and key_pem may both be NULL for a
 * client without a certificate (the agent before it has one), bundle_pem may
 * be NULL only with TLS_CREDS_NO_VERIFY.
 */
struct tls_creds *tls_creds_new_ex(const char *chain_pem, const char *key_pem, const char *bundle_pem,
                                   unsigned flags, char *err, size_t errlen);
const char *tls_creds_chain_pem(const struct tls_creds *c);  /* "" without a certificate */
const char *tls_creds_bundle_pem(const struct tls_creds *c);
int tls_fd(const struct tls_conn *t);

/* forget every cached client session (tests; a trust bundle change) */
void tls_session_cache_clear(void);

/* random bytes from the process's CTR-DRBG: 0, or -1 */
int tls_random(void *buf, size_t n);
/* the same generator with mbedTLS's f_rng signature (after tls_global_init) */
int tls_rng(void *unused, unsigned char *out, size_t len);
void tls_sha256_hex(const void *data, size_t len, char out[65]);

/* a new ECDSA P-256 private key, PEM (malloc'd), or NULL with err */
char *tls_key_generate(char *err, size_t errlen);
/* a CSR (PEM, malloc'd) signed by key_pem, with uri_san (NULL = none) */
char *tls_csr_create(const char *key_pem, const char *uri_san, char *err, size_t errlen);

/* what `mesh cert show`, the agent and /certs need to know about a certificate */
struct tls_cert_info {
	char id[512];            /* SPIFFE URI SAN, "" if none */
	char subject[256];
	char issuer[256];
	char serial[80];         /* hex, colon-separated */
	double not_before;       /* Unix time */
	double not_after;
	char fingerprint[65];    /* SHA-256 of the DER, lowercase hex */
	int is_ca;
};
/* decodes a PEM chain (or one DER certificate): count filled (<= cap), or -1 with err */
int tls_chain_info(const char *pem, size_t pemlen, struct tls_cert_info *out, size_t cap, char *err, size_t errlen);
/*
 * 0 when chain_pem (leaf first, then intermediates) verifies against
 * bundle_pem now; the leaf's SPIFFE id into id (may be NULL). -1 with err.
 */
int tls_chain_verify(const char *chain_pem, const char *bundle_pem, char *id, size_t idcap,
                     char *err, size_t errlen);

/*
 * Issuing certificates (the CA, `mesh ca init`, tests). A tls_issuer is a CA
 * certificate and its key, parsed once. Workload certificates get key usage
 * digitalSignature and extended key usage serverAuth + clientAuth; CA ones
 * keyCertSign + cRLSign and basic constraints CA:true.
 */
struct tls_issuer;
struct tls_issuer *tls_issuer_new(const char *cert_pem, const char *key_pem, char *err, size_t errlen);
void tls_issuer_free(struct tls_issuer *i);

struct tls_issue {
	const char *subject;     /* "CN=...,O=..." */
	const char *uri_san;     /* spiffe://... or NULL */
	const char *dns_san;     /* or NULL */
	int ip_loopback;         /* add IP SAN 127.0.0.1 */
	int is_ca;
	int max_pathlen;         /* CAs: -1 = unlimited */
	long long not_before;    /* Unix time */
	long long not_after;
};
/* a PEM certificate (malloc'd) for the key in key_pem; iss NULL = self-signed by key_pem */
char *tls_issue_for_key(const struct tls_issuer *iss, const struct tls_issue *req, const char *key_pem,
                        char *err, size_t errlen);
/* the same for the public key of a CSR (csr[len] must be '\0'); the CSR's signature is checked */
char *tls_issue_for_csr(const struct tls_issuer *iss, const struct tls_issue *req, const char *csr, size_t len,
                        char *err, size_t errlen);
/* the CSR's spiffe:// URI SAN into id ("" if none; csr[len] must be NUL): 0, or -1 if it does not parse */
int tls_csr_id(const char *csr, size_t len, char *id, size_t cap);

#endif
