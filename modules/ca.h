/*
 * ca: the certificate authority (Citadel's role). `mesh ca init` makes a root
 * or an intermediate and a token secret, `mesh ca token` prints bootstrap
 * tokens, `mesh ca -c ca.ini` serves POST /v1/sign and GET /v1/root over TLS
 * (docs/protocol.md), `mesh cert show` decodes certificates. The CA keeps no
 * per-workload state: it can restart at any time.
 */
#ifndef MESH_CA_H
#define MESH_CA_H

#include <stddef.h>

/* mesh ca init ... | mesh ca token ... | mesh ca -c ca.ini */
int ca_main(int argc, char **argv);
/* mesh cert show FILE|- | mesh cert request ... */
int ca_cert_main(int argc, char **argv);

/* ------------------------------------------------------------------ in process (`mesh up`, the controller) */

struct ca;
struct ev_loop;
struct tls_creds;

/* loads ca.ini and the files it names, as `mesh ca -c` does; NULL with err */
struct ca *ca_open(const char *ini, char *err, size_t errlen);
/* serves POST /v1/sign and GET /v1/root on loop at the configured listen address */
int ca_listen(struct ca *ca, struct ev_loop *loop, char *err, size_t errlen);
/* a key made here and a certificate for spiffe://TD/ns/NS/sa/SA (the controller's own identity) */
struct tls_creds *ca_issue_creds(struct ca *ca, const char *ns, const char *sa, char *err, size_t errlen);
const char *ca_trust_domain(const struct ca *ca);
void ca_close(struct ca *ca);

/* ------------------------------------------------------------------ tokens */

#define CA_TOKEN_MAX 400   /* longest token text, NUL included */

/*
 * "mesh1:<ns>:<sa>:<expiry>:<hex HMAC-SHA256>" where expiry is Unix seconds
 * (0 = never) and the MAC covers "mesh1:<ns>:<sa>:<expiry>" under secret.
 * 0, or -1 when ns or sa is not a valid name.
 */
int ca_token_make(const unsigned char *secret, size_t slen, const char *ns, const char *sa, long long expiry,
                  char *out, size_t cap);
/*
 * Checks a token at time now: 0 with its identity in ns/sa, or -1 with *why
 * ("malformed token", "token signature does not match (another CA's, or
 * altered)", "token expired").
 */
int ca_token_check(const unsigned char *secret, size_t slen, const char *token, size_t len, long long now,
                   char *ns, size_t nscap, char *sa, size_t sacap, const char **why);

/* a namespace or service-account name: [a-z0-9] and inner '-' / '.', 1..253 bytes */
int ca_valid_name(const char *s, size_t n);

#endif
