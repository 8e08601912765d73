/*
 * trace: distributed tracing in the proxy (issue #6). W3C trace-context and
 * B3 headers in, the same out with the proxy's span as the parent, one span
 * per request per hop (SERVER on the inbound side, CLIENT on the outbound
 * side) sent to a Zipkin v2 collector in batches, off the request's path.
 *
 * The per-request part (trace_begin, trace_is_header, trace_inject) allocates
 * nothing; only a sampled request with a collector configured costs a span
 * (trace_record: JSON appended to a bounded batch). docs/tracing.md.
 */
#ifndef MESH_TRACE_H
#define MESH_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "conf.h"
#include "http1.h"
#include "metrics.h"

struct ev_loop;

/* trace_ctx.flags */
#define TRACE_F_SAMPLED 0x01         /* spans of this trace are recorded */
#define TRACE_F_DEBUG   0x02         /* B3 debug (x-b3-flags: 1, b3 "d"): sampled, passed on */
#define TRACE_F_DECIDED 0x04         /* the caller made the sampling decision */

/* where trace_extract found the incoming context */
enum trace_src { TRACE_SRC_NONE = 0, TRACE_SRC_W3C, TRACE_SRC_B3_SINGLE, TRACE_SRC_B3 };

/* One request's trace context. All zero = none yet (part of struct stream). */
struct trace_ctx {
	uint64_t trace_hi, trace_lo; /* 128-bit trace id; both 0 = none */
	uint64_t parent_id;          /* the caller's span (our span's parent), 0 = we are the root */
	uint64_t span_id;            /* this proxy's span, 0 until trace_start */
	unsigned flags;              /* TRACE_F_* */
	enum trace_src src;          /* which headers it came from */
	double t_connected;          /* when the last try's new connection was up (0 = pooled) */
	double t_first_try;          /* when the first try was sent (end of queueing / fault delay) */
};

/* the header lines trace_inject writes, at most */
#define TRACE_INJECT_MAX 320

/* Reads traceparent (preferred), else b3, else x-b3-* from the headers into t.
 * Malformed values are ignored as if absent (W3C: version ff, zero ids, bad
 * hex or lengths). Returns where the context came from. */
enum trace_src trace_extract(struct trace_ctx *t, const struct http1_header *h, size_t n);

/* Completes the context for this hop: a new trace id when none came in, a new
 * span id (its parent the incoming span), and the sampling decision: the
 * caller's when it made one, else a draw at sampling_percent (0..100). */
void trace_start(struct trace_ctx *t, double sampling_percent);

/* trace_extract + trace_start */
void trace_begin(struct trace_ctx *t, const struct http1_header *h, size_t n, double sampling_percent);

/* 1 for the headers trace_inject replaces: traceparent, b3, x-b3-* (tracestate
 * passes through unchanged) */
int trace_is_header(const char *name, size_t len);

/* Writes traceparent, x-b3-traceid/spanid/parentspanid/sampled(/flags) and b3
 * header lines (CRLF-terminated) for t's span into out; returns the length
 * (at most TRACE_INJECT_MAX), 0 when t has no trace. */
size_t trace_inject(const struct trace_ctx *t, char *out, size_t cap);

/* ids as text: 32 and 16 lowercase hex digits, NUL-terminated */
void trace_id_hex(const struct trace_ctx *t, char out[33]);
void trace_span_hex(uint64_t id, char out[17]);

/* What the proxy knows about a finished request, for its span. */
struct trace_req {
	const struct metrics_req *m; /* the labels the metrics computed (workloads, versions, principals) */
	int server;                  /* 1: inbound (SERVER span), 0: outbound (CLIENT span) */
	const char *service;         /* this workload's service (or service account), NULL = unknown */
	const char *namespace;
	const char *version;
	const char *name;            /* span name: the route's; NULL = Istio's default, "<dst_service>:<port>" + slash-star */
	uint16_t port;               /* the destination service's port, for the default name */
	const char *method, *authority, *path;
	const char *protocol;        /* "HTTP/1.1" */
	const char *request_id, *user_agent;
	const char *cluster;         /* "outbound|9080|v2|reviews.default.svc.cluster.local" */
	const char *upstream;        /* the endpoint (or the local app) address, NULL = none picked */
	const char *peer_ip;         /* the downstream address */
	const char *peer_identity;   /* the other side's SPIFFE id over mTLS, NULL = plaintext */
	unsigned retries;
	uint64_t req_bytes, resp_bytes;
	double start, end;           /* epoch seconds */
	double queue, connect, upstream_time; /* the proxy's split, seconds; < 0 = did not happen */
};

/* Appends one Zipkin v2 span object for t and r to out (JSON, no separator). */
void trace_span_json(struct strbuf *out, const struct trace_ctx *t, const struct trace_req *r);

/* A sampled request is over: its span joins the batch for the collector
 * (dropped and counted when the queue is full). Nothing when no collector. */
void trace_record(const struct trace_ctx *t, const struct trace_req *r);

/* 1 when spans are being sent (a collector is configured) */
int trace_collecting(void);

/* (Re)configures the sender from cf's [tracing]; loop = the proxy's loop. */
void trace_configure(struct ev_loop *loop, const struct conf *cf);

/* mesh_trace_* counters in Prometheus text format */
void trace_metrics(struct strbuf *out);

/* stops the sender, frees the queue (spans still queued count as dropped) */
void trace_stop(void);

/* counters, for /metrics and tests */
extern uint64_t trace_spans_sent, trace_spans_dropped, trace_batches_failed;

#endif
