/*
 * agent: the proxy's side of the CA protocol (docs/protocol.md). Generates the
 * workload key in memory, sends a CSR with the bootstrap token to the CA over
 * TLS, checks that the chain it gets back leads to the trust bundle and names
 * the expected SPIFFE identity, and builds tls_creds from it. Renews at ~70%
 * of the certificate's life with jitter, retrying with backoff while the CA is
 * away; each new identity is handed to the owner's callback on its loop.
 */
#ifndef MESH_AGENT_H
#define MESH_AGENT_H

#include <stddef.h>

#include "conf.h"
#include "tls.h"

struct ev_loop;

/*
 * The first identity, blocking (at most timeout_ms; the proxy starts serving
 * only with one). NULL with err set ("ca 127.0.0.1:15012: connection refused
 * (is `mesh ca` running?)") on failure.
 */
struct tls_creds *agent_fetch(const struct conf *cf, unsigned timeout_ms, char *err, size_t errlen);

/*
 * Keeps cur renewed from now on: calls on_creds(new, arg) on loop's thread
 * with a fresh reference (the callee owns it). Renewal work runs off the loop
 * (a thread), so the data path never waits for the CA. Returns 0, or -1.
 */
int agent_start(struct ev_loop *loop, const struct conf *cf, const struct tls_creds *cur,
                void (*on_creds)(struct tls_creds *c, void *arg), void *arg);
void agent_stop(void);

/*
 * `mesh cert request --ca HOST:PORT (--trust-bundle F | --ca-fingerprint HEX)
 * --ns NS --sa SA [--token-file F] [--trust-domain TD] [--out PREFIX]`: one
 * agent_fetch from the command line; writes PREFIX.crt and PREFIX.key (0600)
 * or prints the chain. For labs, scripts and tests.
 */
int agent_request_main(int argc, char **argv);

#endif
