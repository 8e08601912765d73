/*
 * balance: choosing an endpoint, and the limits and health that decide it.
 *
 * A balance_set is one upstream cluster in Envoy's sense: the endpoints of one
 * service, or of one subset of it (endpoints whose labels carry all the
 * subset's labels), with that subset's policy (struct conf_policy): the
 * load-balancing algorithm, the connection-pool limits and outlier detection.
 * Each endpoint of a set has a struct balance_ep holding its live state
 * (requests in flight, connections, peak-EWMA latency, consecutive errors,
 * ejection). Sets and their endpoints survive config reloads: balance_sync()
 * matches them by (service, namespace, subset name, endpoint address), so
 * counters, latency estimates, ejections and the proxy's connection pools
 * (balance_ep.pool, opaque here) carry over.
 *
 * Time is passed in (seconds, ev_now()), so everything here is a pure state
 * machine that unit tests drive with a fake clock. Nothing here does I/O.
 */
#ifndef MESH_BALANCE_H
#define MESH_BALANCE_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"

struct balance_set;

struct balance_ep {
	struct balance_set *set;       /* owner */
	const struct conf_endpoint *conf;  /* in the current config (updated by balance_sync) */
	char addr[64];                 /* address text, the identity across reloads */
	void *pool;                    /* the proxy's idle-connection pool for this endpoint (opaque) */
	uint32_t active;               /* requests in flight */
	uint32_t connections;          /* open upstream connections (busy + idle), kept by the proxy */
	double ewma_ms;                /* peak-EWMA round-trip estimate */
	double ewma_at;                /* when ewma_ms was last updated */
	uint32_t consecutive_5xx;      /* outlier detection counters */
	uint32_t consecutive_gateway;
	double ejected_until;          /* 0 = in rotation */
	uint32_t ejections;            /* times ejected so far (ejection time grows with it) */
	uint64_t requests, errors;     /* totals, for /metrics and tests */
	/* added by the balance module (append-only): */
	double healthy_since;          /* when it last came back from an ejection (ejection-count decay), 0 = n/a */
};

struct balance_set {
	char service[64];
	char namespace[64];
	char subset[64];               /* "" = the whole service */
	const struct conf_policy *policy;  /* in the current config */
	struct balance_ep **eps;       /* endpoints in config order */
	size_t n_eps;
	uint32_t rr;                   /* round-robin position */
	uint32_t active;               /* requests in flight over the set (max_concurrent_requests) */
	uint32_t connections;          /* open connections over the set (max_connections) */
	uint32_t pending;              /* requests waiting for a connection (max_pending_requests) */
	uint64_t overflows;            /* requests refused by a pool limit (Envoy's upstream_rq_pending_overflow) */
	uint64_t ejections_total;
	/* consistent hashing: built lazily for ring_hash / maglev */
	uint32_t *table;               /* maglev lookup table (endpoint indexes), or ring points */
	uint64_t *ring_hashes;         /* ring_hash: sorted point hashes, parallel to table */
	size_t table_len;
	/* added by the balance module (append-only): */
	uint32_t n_ejected;            /* endpoints with ejected_until set (returns are applied lazily, against now) */
	double next_return;            /* earliest ejected_until among them */
};

/*
 * Builds or updates every set for the config: one per service (whole service)
 * and one per subset of its destination rule, plus the set for the workload's
 * local app (balance_app_set). State of matching sets/endpoints is kept; sets
 * and endpoints that disappeared are freed, calling balance_ep_free_hook(ep)
 * first so the proxy can close that endpoint's pool. 0, or -1 on out of memory
 * (the previous state is then unchanged).
 */
int balance_sync(const struct conf *cf);
extern void (*balance_ep_free_hook)(struct balance_ep *ep);

/* the set of service svc, subset index (into its destination's subsets) or -1 */
struct balance_set *balance_set_of(const struct conf *cf, const struct conf_service *svc, int subset);
/* the inbound side's set: the workload's local app (one endpoint), NULL without an app */
struct balance_set *balance_app_set(void);

/*
 * Picks an endpoint for a new request, honouring the policy's algorithm and
 * skipping ejected endpoints (unless fewer than min_health_percent would be
 * left: then all are used, Envoy's panic mode). hash is the request's
 * consistent-hash key (only for ring_hash/maglev; 0 = none, then random).
 * rnd is a fresh random number from the caller. NULL when the set has no
 * endpoint (*why = "no healthy upstream").
 */
struct balance_ep *balance_pick(struct balance_set *s, uint64_t hash, uint64_t rnd, double now,
                                const char **why);

/*
 * Pool limits, checked by the proxy before it sends a request (Envoy circuit
 * breakers):
 *   BALANCE_GO      proceed (counts the request in s->active)
 *   BALANCE_QUEUE   max_connections is reached but max_pending_requests has
 *                   room: the caller parks the request (s->pending counts it)
 *                   and calls balance_admit again with from_queue = 1 when a
 *                   connection is released
 *   BALANCE_REFUSE  a limit is exceeded: *why names it ("max_concurrent_requests",
 *                   "max_pending_requests"); a fast 503 with flag UO; counted in
 *                   s->overflows
 * need_conn: no idle connection is available, a new one would be opened.
 */
enum { BALANCE_GO = 0, BALANCE_QUEUE, BALANCE_REFUSE };
int balance_admit(struct balance_set *s, int need_conn, int from_queue, const char **why);
/* a queued request gave up (client gone, timeout): s->pending-- */
void balance_unqueue(struct balance_set *s);
/* a request admitted with BALANCE_GO finished: s->active-- */
void balance_release(struct balance_set *s);

/* request lifecycle on an endpoint: start, then exactly one end */
void balance_start(struct balance_ep *e);
/*
 * status: the response code (0 when none: connect failure, reset, timeout);
 * gateway_error: 502/503/504 or a connection failure; latency_ms: until the
 * response head (for peak EWMA). Updates outlier detection: an endpoint with
 * consecutive_5xx (or consecutive_gateway_errors) in a row is ejected for
 * base_ejection_time x number of ejections so far, unless that would eject more
 * than max_ejection_percent of the set. Ejected endpoints come back by
 * themselves when their time is up (checked in balance_pick).
 */
void balance_end(struct balance_ep *e, int status, int gateway_error, double latency_ms, double now);

/* connection accounting (max_connections) */
void balance_conn_open(struct balance_ep *e);
void balance_conn_close(struct balance_ep *e);

/* 64-bit hash of a consistent-hash key (header value, cookie, query value, source ip) */
uint64_t balance_hash(const char *s, size_t n);

/* every set, for /metrics and tests */
size_t balance_sets(struct balance_set ***out);

/* frees everything (exit, tests) */
void balance_free_all(void);

/* added by the balance module (append-only): */
/*
 * Called by balance_sync/balance_free_all just before a set is freed, after
 * balance_ep_free_hook ran for each of its endpoints (a set may have none:
 * a subset that matches no endpoint), so the proxy can drop its pointers to it.
 */
extern void (*balance_set_free_hook)(struct balance_set *s);

#endif
