/* metrics and buf: series, histograms, escaping, the series cap; buffer pool. */
#include <string.h>

#include "../../modules/buf.c"
#include "../../modules/metrics.c"
#include "test.h"

static int count(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

int main(void)
{
	struct metrics_req r = { .reporter = "source", .src_workload = "productpage-v1",
		.dst_service = "reviews.default.svc.cluster.local", .dst_version = "v2",
		.security = "none", .flags = "-", .code = 200 };
	struct strbuf out = { 0 };
	struct buf b = { 0 };
	int i;

	metrics_request(&r, 1500, 10, 2000);   /* 1.5 ms */
	metrics_request(&r, 30000, 0, 0);      /* 30 ms */
	r.code = 503;
	metrics_request(&r, 100, 0, 0);
	metrics_render(&out);
	TEST("two series for two codes", metrics_series == 2);
	TEST("counter line", strstr(out.p, "istio_requests_total{reporter=\"source\",source_workload=\"productpage-v1\"") != NULL);
	TEST("counter value 2", strstr(out.p, "response_code=\"200\"} 2\n") != NULL);
	TEST("unknown for unset labels", strstr(out.p, "source_app=\"unknown\"") != NULL);
	TEST("duration bucket le=5 holds 1.5ms", strstr(out.p, "response_code=\"200\",le=\"5\"} 1\n") != NULL);
	TEST("duration bucket le=50 cumulative 2", strstr(out.p, "response_code=\"200\",le=\"50\"} 2\n") != NULL);
	TEST("+Inf bucket", strstr(out.p, "response_code=\"200\",le=\"+Inf\"} 2\n") != NULL);
	TEST("duration sum", strstr(out.p, "istio_request_duration_milliseconds_sum{") != NULL &&
	     strstr(out.p, "} 31.500\n") != NULL);
	TEST("byte histograms present", count(out.p, "# TYPE istio_request_bytes histogram") == 1 &&
	     count(out.p, "# TYPE istio_response_bytes histogram") == 1);
	strbuf_free(&out);

	r.code = 200;
	r.src_workload = "evil\"\\\nname";
	metrics_request(&r, 1, 0, 0);
	metrics_render(&out);
	TEST("label values escaped", strstr(out.p, "source_workload=\"evil\\\"\\\\\\nname\"") != NULL);
	strbuf_free(&out);

	metrics_reset();
	{
		/* TCP connections: same labels as requests, opened/closed through a handle */
		struct metrics_series *c1, *c2, *c3;

		r.src_workload = "productpage-v1";
		metrics_request(&r, 1, 0, 0);
		c1 = metrics_tcp_open(&r);
		c2 = metrics_tcp_open(&r);
		r.reporter = "destination";
		c3 = metrics_tcp_open(&r);
		metrics_tcp_close(c1);
		metrics_tcp_close(NULL);
		metrics_render(&out);
		TEST("tcp: one series per label set, apart from the request series",
		     metrics_series == 3 && c1 == c2 && c1 != c3);
		TEST("tcp: opened counter",
		     strstr(out.p, "istio_tcp_connections_opened_total{reporter=\"source\",source_workload=\"productpage-v1\"") &&
		     strstr(out.p, "request_protocol=\"tcp\"} 2\n"));
		TEST("tcp: closed counter", strstr(out.p, "# TYPE istio_tcp_connections_closed_total counter\n") &&
		     count(out.p, "istio_tcp_connections_closed_total{") == 2 && strstr(out.p, "request_protocol=\"tcp\"} 1\n"));
		TEST("tcp: no request series for them", count(out.p, "istio_requests_total{") == 1 &&
		     count(out.p, "istio_request_duration_milliseconds_count{") == 1 && !strstr(out.p, "response_code=\"-1\""));
		strbuf_free(&out);
		r.reporter = "source";
	}
	metrics_reset();
	{
		char name[32];
		for (i = 0; i < METRICS_MAX_SERIES + 10; i++) {
			snprintf(name, sizeof(name), "w%d", i);
			r.src_workload = name;
			metrics_request(&r, 1, 0, 0);
		}
	}
	TEST("series capped", metrics_series == METRICS_MAX_SERIES);
	TEST("overflow counted", metrics_series_dropped == 10);
	metrics_reset();

	/* buffers */
	TEST("empty buf has no storage", buf_space(&b) == 0 && b.p == NULL);
	TEST("append allocates a block", buf_append(&b, "hello", 5) == 0 && b.cap == BUF_SIZE && b.len == 5);
	buf_consume(&b, 5);
	buf_release(&b);
	TEST("drained buffer goes back", b.p == NULL && buf_blocks_in_use == 0);
	for (i = 0; i < 3; i++)
		buf_append(&b, "0123456789", 10);
	TEST("grows past a block", buf_reserve(&b, BUF_SIZE * 2) == 0 && b.cap > BUF_SIZE &&
	     !memcmp(buf_data(&b), "0123456789", 10) && b.len == 30);
	buf_free(&b);
	TEST("free returns it", b.p == NULL && buf_blocks_in_use == 0);
	{
		struct strbuf s = { 0 };
		for (i = 0; i < 1000; i++)
			strbuf_printf(&s, "%d,", i);
		TEST("strbuf grows", s.len > 3000 && !strncmp(s.p, "0,1,2,", 6) && strstr(s.p, "999,"));
		strbuf_free(&s);
	}
	while (pool_n)
		free(pool[--pool_n]);
	return test_report();
}
