/*
 * route_lookup: the routing benchmark's lookup alone, in one process, without the
 * network. Built by tests/bench/run.sh against modules/conf.c, route.c and http1.c
 * with the same compiler and C library as ./mesh (musl-gcc -O2, static), so its
 * strlen, strncasecmp and regexec are the ones the proxy runs.
 *
 *   route_lookup CONFIG HOST [ITERATIONS]
 *
 * Loads CONFIG with conf_load() and builds the route table as the proxy does when it
 * installs a config. Parses the same request the routing benchmark's wrk sends
 *   GET /api/v1/items HTTP/1.1 / Host: HOST / end-user: bench / accept: * / *
 * with http1_parse_request(), then times what stream_start() in modules/proxy.c does
 * per request on the outbound listener to pick a rule: conf_find_service() on the
 * Host, then route_match() with the request's method, path, query and headers. The
 * parse itself is outside the timed loop.
 *
 * 15 batches of ITERATIONS lookups, each timed with CLOCK_MONOTONIC (by default as
 * many as take about 20 ms, from a first calibration batch, so that a whole run takes
 * about 0.3 s); prints the fastest batch and the median batch in ns per lookup. The
 * median is the figure: on a shared machine the fastest batch is luck. Last line:
 *   lookup_ns=MEDIAN min_ns=MIN rule=NAME
 * (rule: the section of the rule that matched, "-" when none did.)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf.h"
#include "http1.h"
#include "route.h"

#define BATCHES 15

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	char err[4096], req[512];
	struct conf *cf;
	struct route_table *t;
	struct http1_header hdrs[16];
	struct http1_limits lim = { 8192, 32768, 16 };
	struct http1_msg m;
	struct route_req rq;
	const struct conf_route *rt = NULL;
	const struct conf_service *svc;
	double ns[BATCHES];
	long iters = 0, i;
	int b, block, port_ok, len;
	const char *q;

	if (argc < 3) {
		fprintf(stderr, "usage: route_lookup CONFIG HOST [ITERATIONS]\n");
		return 2;
	}
	if (argc > 3 && (iters = atol(argv[3])) < 1)
		iters = 1;
	cf = conf_load(argv[1], err, sizeof(err));
	if (!cf) {
		fprintf(stderr, "route_lookup: %s\n", err);
		return 1;
	}
	t = route_table_build(cf);
	if (!t) {
		fprintf(stderr, "route_lookup: route_table_build failed\n");
		return 1;
	}
	len = snprintf(req, sizeof(req),
	               "GET /api/v1/items HTTP/1.1\r\nHost: %s\r\nend-user: bench\r\naccept: */*\r\n\r\n", argv[2]);
	memset(&m, 0, sizeof(m));
	if (http1_parse_request(req, (size_t)len, &m, hdrs, &lim) < 0 || !m.host) {
		fprintf(stderr, "route_lookup: the request does not parse\n");
		return 1;
	}
	q = memchr(m.target, '?', m.target_len);
	memset(&rq, 0, sizeof(rq));
	rq.method = m.method;
	rq.method_len = m.method_len;
	rq.path = m.target;
	rq.path_len = q ? (size_t)(q - m.target) : m.target_len;
	rq.query = q ? q + 1 : NULL;
	rq.query_len = q ? (size_t)(m.target + m.target_len - q - 1) : 0;
	rq.headers = m.headers;
	rq.n_headers = m.num_headers;
	rq.source = &cf->workload.labels;

	/* calibration (also warms the caches): how many lookups take about 20 ms */
	if (!iters) {
		double t0 = now_ns(), per;
		for (i = 0; i < 200; i++) {
			svc = conf_find_service(cf, m.host, m.host_len, &port_ok);
			rt = cf->n_routes ? route_match(cf, t, m.host, m.host_len, svc, &rq, &block) : NULL;
			__asm__ volatile("" : : "r"(rt), "r"(svc) : "memory");
		}
		per = (now_ns() - t0) / 200;
		iters = (long)(20e6 / (per > 1 ? per : 1));
		if (iters < 200)
			iters = 200;
	}
	for (b = 0; b < BATCHES; b++) {
		double t0 = now_ns();
		for (i = 0; i < iters; i++) {
			svc = conf_find_service(cf, m.host, m.host_len, &port_ok);
			rt = cf->n_routes ? route_match(cf, t, m.host, m.host_len, svc, &rq, &block) : NULL;
			__asm__ volatile("" : : "r"(rt), "r"(svc) : "memory");   /* keep every lookup */
		}
		ns[b] = (now_ns() - t0) / (double)iters;
	}
	qsort(ns, BATCHES, sizeof(ns[0]), cmp_d);
	printf("%s: %zu routes, %zu services, Host %s: %.1f ns per lookup (median of %d batches of %ld; fastest %.1f)\n",
	       argv[1], cf->n_routes, cf->n_services, argv[2], ns[BATCHES / 2], BATCHES, iters, ns[0]);
	printf("lookup_ns=%.1f min_ns=%.1f rule=%s\n", ns[BATCHES / 2], ns[0], rt ? rt->name : "-");
	route_table_free(t);
	conf_unref(cf);
	return 0;
}
