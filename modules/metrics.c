/*
 * metrics: one series per distinct label set, found through an open hash
 * table (the label strings are hashed per request; nothing is allocated once a
 * series exists). Label values that come from peers are untrusted, so the
 * number of series is capped (METRICS_MAX_SERIES) and values are escaped when
 * rendered.
 *
 * Buckets are Istio's defaults: request duration in milliseconds, and bytes
 * on an exponential scale.
 *
 * TCP connections (istio_tcp_connections_opened_total / _closed_total) are
 * series of their own kind (code METRICS_TCP): the proxy keeps the series of
 * each open connection and closes it through that handle, so opened and
 * closed always carry the same labels and open = opened - closed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

#define METRICS_MAX_SERIES 4096
#define NLABELS 16
#define METRICS_TCP (-1)          /* the code of a TCP connection series */

static const double dur_bounds[] = { 0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000,
                                     10000, 30000, 60000, 300000, 600000, 1800000, 3600000 };
#define NDUR (sizeof(dur_bounds) / sizeof(dur_bounds[0]))
static const double byte_bounds[] = { 1, 10, 100, 1000, 10000, 100000, 1000000, 10000000,
                                      100000000, 1000000000 };
#define NBYTES (sizeof(byte_bounds) / sizeof(byte_bounds[0]))

static const char *label_names[NLABELS] = {
	"reporter", "source_workload", "source_workload_namespace", "source_app",
	"source_version", "source_principal", "destination_workload",
	"destination_workload_namespace", "destination_app", "destination_version",
	"destination_principal", "destination_service", "destination_service_name",
	"destination_service_namespace", "connection_security_policy", "response_flags",
};

struct metrics_series {
	uint64_t hash;
	int code;                     /* response_code, or METRICS_TCP */
	char *labels[NLABELS];        /* owned copies, in label_names order */
	uint64_t requests;
	uint64_t dur_buckets[NDUR];   /* non-cumulative; summed when rendered */
	double dur_sum_ms;
	uint64_t req_buckets[NBYTES], resp_buckets[NBYTES];
	uint64_t req_sum, resp_sum;
	uint64_t tcp_opened, tcp_closed;  /* METRICS_TCP series */
};

static struct metrics_series **table;     /* open addressing, size table_cap (power of 2) */
static size_t table_cap;
static struct metrics_series **order;     /* insertion order, for stable output */
uint64_t metrics_series, metrics_series_dropped;
double metrics_start_time;

static void values_of(const struct metrics_req *r, const char *v[NLABELS])
{
	const char *src[NLABELS] = { r->reporter, r->src_workload, r->src_namespace, r->src_app,
		r->src_version, r->src_principal, r->dst_workload, r->dst_namespace, r->dst_app,
		r->dst_version, r->dst_principal, r->dst_service, r->dst_service_name,
		r->dst_service_namespace, r->security, r->flags };
	int i;

	for (i = 0; i < NLABELS; i++)
		v[i] = src[i] ? src[i] : "unknown";
}

static uint64_t hash_of(const char *v[NLABELS], int code)
{
	uint64_t h = 1469598103934665603ULL ^ (uint64_t)code;
	const unsigned char *p;
	int i;

	for (i = 0; i < NLABELS; i++) {
		for (p = (const unsigned char *)v[i]; *p; p++)
			h = (h ^ *p) * 1099511628211ULL;
		h = (h ^ 0xff) * 1099511628211ULL;
	}
	return h;
}

static int same(const struct metrics_series *s, const char *v[NLABELS], int code)
{
	int i;

	if (s->code != code)
		return 0;
	for (i = 0; i < NLABELS; i++)
		if (strcmp(s->labels[i], v[i]))
			return 0;
	return 1;
}

static int grow(void)
{
	size_t cap = table_cap ? table_cap * 2 : 64, i, j;
	struct metrics_series **t = calloc(cap, sizeof(*t)), **o;

	if (!t)
		return -1;
	o = realloc(order, cap / 2 * sizeof(*o));
	if (!o) {
		free(t);
		return -1;
	}
	order = o;
	for (i = 0; i < table_cap; i++) {
		if (!table[i])
			continue;
		for (j = table[i]->hash & (cap - 1); t[j]; j = (j + 1) & (cap - 1))
			;
		t[j] = table[i];
	}
	free(table);
	table = t;
	table_cap = cap;
	return 0;
}

static struct metrics_series *lookup(const struct metrics_req *r, int code)
{
	const char *v[NLABELS];
	struct metrics_series *s;
	uint64_t h;
	size_t i;
	int k;

	values_of(r, v);
	h = hash_of(v, code);
	if (table_cap) {
		for (i = h & (table_cap - 1); table[i]; i = (i + 1) & (table_cap - 1))
			if (table[i]->hash == h && same(table[i], v, code))
				return table[i];
	}
	if (metrics_series >= METRICS_MAX_SERIES)
		return NULL;
	/* keep the load factor under 1/2 */
	if ((metrics_series + 1) * 2 > table_cap && grow() < 0)
		return NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->hash = h;
	s->code = code;
	for (k = 0; k < NLABELS; k++) {
		s->labels[k] = strdup(v[k]);
		if (!s->labels[k]) {
			while (k--)
				free(s->labels[k]);
			free(s);
			return NULL;
		}
	}
	for (i = h & (table_cap - 1); table[i]; i = (i + 1) & (table_cap - 1))
		;
	table[i] = s;
	order[metrics_series++] = s;
	return s;
}

static void observe(uint64_t *buckets, const double *bounds, size_t n, double v)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (v <= bounds[i]) {
			buckets[i]++;
			return;
		}
	/* above the last bound: only +Inf (count) sees it */
}

void metrics_request(const struct metrics_req *r, uint64_t dur_us, uint64_t req_bytes,
                     uint64_t resp_bytes)
{
	struct metrics_series *s = lookup(r, r->code);
	double ms = (double)dur_us / 1000.0;

	if (!s) {
		metrics_series_dropped++;
		return;
	}
	s->requests++;
	observe(s->dur_buckets, dur_bounds, NDUR, ms);
	s->dur_sum_ms += ms;
	observe(s->req_buckets, byte_bounds, NBYTES, (double)req_bytes);
	s->req_sum += req_bytes;
	observe(s->resp_buckets, byte_bounds, NBYTES, (double)resp_bytes);
	s->resp_sum += resp_bytes;
}

struct metrics_series *metrics_tcp_open(const struct metrics_req *r)
{
	struct metrics_series *s = lookup(r, METRICS_TCP);

	if (!s) {
		metrics_series_dropped++;
		return NULL;
	}
	s->tcp_opened++;
	return s;
}

void metrics_tcp_close(struct metrics_series *s)
{
	if (s)
		s->tcp_closed++;
}

static void put_escaped(struct strbuf *out, const char *v)
{
	const char *p;

	for (p = v; *p; p++) {
		if (*p == '\\' || *p == '"')
			strbuf_append(out, "\\", 1);
		if (*p == '\n')
			strbuf_append(out, "\\n", 2);
		else
			strbuf_append(out, p, 1);
	}
}

static void put_labels(struct strbuf *out, const struct metrics_series *s, const char *le)
{
	int i;

	strbuf_append(out, "{", 1);
	for (i = 0; i < NLABELS; i++) {
		strbuf_printf(out, "%s=\"", label_names[i]);
		put_escaped(out, s->labels[i]);
		strbuf_append(out, "\",", 2);
	}
	if (s->code == METRICS_TCP)
		strbuf_puts(out, "request_protocol=\"tcp\"");
	else
		strbuf_printf(out, "request_protocol=\"http\",response_code=\"%d\"", s->code);
	if (le)
		strbuf_printf(out, ",le=\"%s\"", le);
	strbuf_append(out, "}", 1);
}

static void put_histogram(struct strbuf *out, const char *name, const struct metrics_series *s,
                          const uint64_t *buckets, const double *bounds, size_t n, double sum)
{
	uint64_t cum = 0;
	char le[32];
	size_t i;

	for (i = 0; i < n; i++) {
		cum += buckets[i];
		snprintf(le, sizeof(le), "%g", bounds[i]);
		strbuf_printf(out, "%s_bucket", name);
		put_labels(out, s, le);
		strbuf_printf(out, " %llu\n", (unsigned long long)cum);
	}
	strbuf_printf(out, "%s_bucket", name);
	put_labels(out, s, "+Inf");
	strbuf_printf(out, " %llu\n%s_sum", (unsigned long long)s->requests, name);
	put_labels(out, s, NULL);
	strbuf_printf(out, " %.3f\n%s_count", sum, name);
	put_labels(out, s, NULL);
	strbuf_printf(out, " %llu\n", (unsigned long long)s->requests);
}

void metrics_render(struct strbuf *out)
{
	size_t i;
	int k;

	strbuf_puts(out, "# TYPE istio_requests_total counter\n");
	for (i = 0; i < metrics_series; i++) {
		if (order[i]->code == METRICS_TCP)
			continue;
		strbuf_puts(out, "istio_requests_total");
		put_labels(out, order[i], NULL);
		strbuf_printf(out, " %llu\n", (unsigned long long)order[i]->requests);
	}
	strbuf_puts(out, "# TYPE istio_request_duration_milliseconds histogram\n");
	for (i = 0; i < metrics_series; i++)
		if (order[i]->code != METRICS_TCP)
			put_histogram(out, "istio_request_duration_milliseconds", order[i], order[i]->dur_buckets,
			              dur_bounds, NDUR, order[i]->dur_sum_ms);
	strbuf_puts(out, "# TYPE istio_request_bytes histogram\n");
	for (i = 0; i < metrics_series; i++)
		if (order[i]->code != METRICS_TCP)
			put_histogram(out, "istio_request_bytes", order[i], order[i]->req_buckets, byte_bounds,
			              NBYTES, (double)order[i]->req_sum);
	strbuf_puts(out, "# TYPE istio_response_bytes histogram\n");
	for (i = 0; i < metrics_series; i++)
		if (order[i]->code != METRICS_TCP)
			put_histogram(out, "istio_response_bytes", order[i], order[i]->resp_buckets, byte_bounds,
			              NBYTES, (double)order[i]->resp_sum);
	for (k = 0; k < 2; k++) {
		strbuf_printf(out, "# TYPE istio_tcp_connections_%s_total counter\n", k ? "closed" : "opened");
		for (i = 0; i < metrics_series; i++) {
			if (order[i]->code != METRICS_TCP)
				continue;
			strbuf_printf(out, "istio_tcp_connections_%s_total", k ? "closed" : "opened");
			put_labels(out, order[i], NULL);
			strbuf_printf(out, " %llu\n", (unsigned long long)(k ? order[i]->tcp_closed : order[i]->tcp_opened));
		}
	}
	if (metrics_start_time > 0)
		strbuf_printf(out, "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.3f\n",
		              metrics_start_time);
	strbuf_printf(out, "# TYPE mesh_metrics_series gauge\nmesh_metrics_series %llu\n"
	              "# TYPE mesh_metrics_dropped_total counter\nmesh_metrics_dropped_total %llu\n",
	              (unsigned long long)metrics_series, (unsigned long long)metrics_series_dropped);
}

void metrics_reset(void)
{
	size_t i;
	int k;

	for (i = 0; i < metrics_series; i++) {
		for (k = 0; k < NLABELS; k++)
			free(order[i]->labels[k]);
		free(order[i]);
	}
	free(table);
	free(order);
	table = NULL;
	order = NULL;
	table_cap = 0;
	metrics_series = metrics_series_dropped = 0;
}
