/*
 * metrics: Istio-compatible request metrics kept in memory and rendered in the
 * Prometheus text format, so a real Prometheus, Grafana's Istio dashboards and
 * Kiali can read a mesh proxy unchanged.
 */
#ifndef MESH_METRICS_H
#define MESH_METRICS_H

#include <stdint.h>

#include "buf.h"

/* label values of one request; NULL means "unknown" */
struct metrics_req {
	const char *reporter;               /* "source" (outbound) or "destination" (inbound) */
	const char *src_workload;
	const char *src_namespace;
	const char *src_app;
	const char *src_version;
	const char *src_principal;
	const char *dst_workload;
	const char *dst_namespace;
	const char *dst_app;
	const char *dst_version;
	const char *dst_principal;
	const char *dst_service;            /* FQDN, e.g. reviews.default.svc.cluster.local */
	const char *dst_service_name;
	const char *dst_service_namespace;
	const char *security;               /* connection_security_policy: "none", "mutual_tls" */
	const char *flags;                  /* Envoy-style response_flags, "-" when none */
	int code;                           /* response_code (0 when no response) */
};

/* records one finished request: duration in microseconds, body bytes each way */
void metrics_request(const struct metrics_req *r, uint64_t dur_us, uint64_t req_bytes,
                     uint64_t resp_bytes);

/*
 * A TCP connection opened (reporter "source": an upstream connection;
 * "destination": an inbound one), counted in istio_tcp_connections_opened_total
 * with r's labels (r->code unused). Keep the handle and pass it to
 * metrics_tcp_close() when the connection closes. NULL (accepted by close)
 * when the series cap is reached.
 */
struct metrics_series;
struct metrics_series *metrics_tcp_open(const struct metrics_req *r);
void metrics_tcp_close(struct metrics_series *s);

/* appends every series in Prometheus text format */
void metrics_render(struct strbuf *out);

/* number of series, and requests dropped from metrics because of the series cap */
extern uint64_t metrics_series, metrics_series_dropped;
/* Unix time the proxy started, rendered as process_start_time_seconds (0 = not rendered) */
extern double metrics_start_time;

/* frees everything (tests, leak checks) */
void metrics_reset(void);

#endif
