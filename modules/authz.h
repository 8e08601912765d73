/*
 * authz: Istio's security policies over the immutable config.
 * PeerAuthentication picks the mTLS mode of a workload's port; the client side
 * asks the same question about a destination endpoint (auto mTLS).
 * AuthorizationPolicy decides whether a request that reached a workload may go
 * on: DENY policies first, then, if any ALLOW policy selects the workload, one
 * of them must match; AUDIT policies only mark the request.
 * Pure functions of (config, workload, request); no allocation per request.
 */
#ifndef MESH_AUTHZ_H
#define MESH_AUTHZ_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "http1.h"

/* a workload as policies select it: namespace, labels (app=<service> implied) */
struct authz_workload {
	const char *namespace;
	const char *service;               /* implies app=<service> unless labels set app */
	const struct conf_labels *labels;
};

/*
 * The effective PeerAuthentication mode of a workload's port (the app port the
 * request is for; 0 = no port-level override). Most specific wins: workload
 * selector, then namespace, then mesh-wide; port-level overrides the policy it
 * belongs to. *policy (optional) gets "namespace/name" of the deciding policy,
 * or "" when none applies. Default PERMISSIVE, as in Istio.
 */
enum conf_mtls authz_peer_mode(const struct conf *cf, const struct authz_workload *w, uint16_t port,
                               const char **policy);

/* what authorization rules look at */
struct authz_req {
	const char *principal;             /* peer identity without "spiffe://" ("cluster.local/ns/x/sa/y"), NULL = plaintext */
	const char *source_ip;             /* text, no port */
	const char *method;
	size_t method_len;
	const char *path;                  /* without the query */
	size_t path_len;
	const char *host;                  /* Host / authority as sent */
	size_t host_len;
	uint16_t port;                     /* destination (app) port */
	const struct http1_header *headers;
	size_t n_headers;
};

enum authz_decision { AUTHZ_ALLOW = 0, AUTHZ_DENY = 1 };

/*
 * Decide. *policy (optional) gets the name of the policy that denied, or that
 * allowed when ALLOW policies apply ("" otherwise); *audit (optional) is set to
 * 1 when an AUDIT policy matched.
 */
enum authz_decision authz_check(const struct conf *cf, const struct authz_workload *w,
                                const struct authz_req *r, const char **policy, int *audit);

/* does a policy of namespace ns (NULL / istio-system: mesh-wide) with selector sel apply to w? */
int authz_selects(const char *ns, const struct conf_labels *sel, const struct authz_workload *w);

#endif
