/*
 * tlscheck: `mesh tls-check`, the seed's `istioctl authn tls-check` (removed
 * from Istio since) computed from the configuration: for a service, the mTLS
 * mode its endpoints accept (PeerAuthentication, authz_peer_mode) and what a
 * mesh client sends them (auto mTLS), one row per distinct mode among its
 * endpoints. tlscheck_rows() is the configuration part, so that a caller with
 * live proxies (the admin API) can add to it.
 */
#ifndef MESH_TLSCHECK_H
#define MESH_TLSCHECK_H

#include <stddef.h>
#include <stdio.h>

#include "conf.h"

struct tlscheck_row {
	char host[300];              /* NAME.NAMESPACE.svc.DOMAIN:PORT */
	const char *status;          /* "OK" or "CONFLICT" */
	enum conf_mtls server;       /* the mode the endpoints accept (never UNSET) */
	const char *client;          /* "mTLS" or "HTTP": what a client proxy sends */
	char authn[300];             /* the deciding [peer_authentication] as istioctl wrote it, "NAME/NAMESPACE" ("default/" mesh-wide), or "-" */
	char dest_rule[300];         /* the service's [destination] as "NAME/NAMESPACE", or "-" */
	size_t endpoints;            /* how many endpoints the row stands for */
	char why[200];               /* CONFLICT: what is wrong, for people; "" when OK */
	char live[64];               /* what the endpoints do when probed ("STRICT", "PERMISSIVE,DOWN"...), "" = not probed */
};

/*
 * The rows of one service (at most max; returns how many there are, which may
 * be more). client_identity: 0 when the client (the proxy of the file given)
 * has no identity and so sends plaintext; 1 for an ordinary mesh client.
 */
size_t tlscheck_rows(const struct conf *c, const struct conf_service *svc, int client_identity,
                     struct tlscheck_row *rows, size_t max);

/* the table, aligned, with istioctl's header line */
void tlscheck_print(FILE *f, const struct tlscheck_row *rows, size_t n);

/* mesh tls-check [SERVICE[.NAMESPACE]] [-c FILE] */
int tlscheck_main(int argc, char **argv);

#endif
