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

#endif
