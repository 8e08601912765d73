/*
 * dashboard: the JSON parser (whole and every prefix, escapes, limits), the
 * JSON writer (always valid output), the Prometheus text parser (whole and one
 * byte at a time, long lines), the edge store (increments, counter resets,
 * window rates, p99 from buckets, which reporter draws an edge), the span
 * ring (validation, bounds, parent/child order) and the small helpers of
 * the HTTP side (base64, query parameters). Runs under ASan/UBSan.
 */
#include "../../modules/conf.c"
#include "../../modules/authz.c"
#include "../../modules/check.c"
#include "../../modules/buf.c"
#include "../../modules/http1.c"
#include "../../modules/net.c"
#include "../../modules/log.c"
#include "../../modules/dashboard.c"
#include "test.h"

const char dashboard_page[] = "<!doctype html>";
const size_t dashboard_page_len = sizeof(dashboard_page) - 1;

static int parses(const char *s)
{
	struct dj_doc d;
	int r = dj_parse(&d, s, strlen(s), 1000);

	dj_free(&d);
	return r == 0;
}

static struct dashboard *fake(void)
{
	struct dashboard *d = calloc(1, sizeof(*d));

	d->o.interval = 1;
	d->o.warn_rate = 0.01;
	d->o.bad_rate = 0.10;
	d->o.max_spans = 4;
	d->o.max_span_bytes = 4096;
	d->spans = calloc(d->o.max_spans, sizeof(*d->spans));
	d->controller = strdup("127.0.0.1:1");
	d->listen_text = strdup("127.0.0.1:2");
	d->lio.fd = -1;
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->wake, NULL);
	return d;
}

static struct db_target *target(struct dashboard *d, const char *name, const char *svc, const char *ver)
{
	struct db_target *t = calloc(1, sizeof(*t));

	t->admin = strdup(name);
	t->name = strdup(name);
	t->service = strdup(svc);
	t->version = strdup(ver);
	d->targets = realloc(d->targets, (d->n_targets + 1) * sizeof(*d->targets));
	d->targets[d->n_targets++] = t;
	return t;
}

/* one scrape of t whose /metrics is text */
static void scrape_text(struct dashboard *d, struct db_target *t, const char *text)
{
	struct scrape sc;

	memset(&sc, 0, sizeof(sc));
	sc.d = d;
	sc.t = t;
	sc.st.on_sample = on_sample;
	sc.st.ctx = &sc;
	metrics_body(&sc, text, strlen(text));
	pm_end(&sc.st);
	scrape_fold(d, &sc);
	t->ok++;
	kmap_free(&sc.acc, free);
}

/* a round committed at time `at` */
static void commit_at(struct dashboard *d, double at)
{
	round_commit(d);
	d->t[(d->rounds - 1) % DB_SLOTS] = at;
}

#define LBL(rep, src, sver, dst, dver, sec, code) \
	"{reporter=\"" rep "\",source_app=\"" src "\",source_version=\"" sver "\",destination_service_name=\"" dst \
	"\",destination_version=\"" dver "\",connection_security_policy=\"" sec "\",response_code=\"" code "\""

static char *metrics(unsigned v1, unsigned v2, unsigned e503, unsigned slow)
{
	static char buf[8192];

	snprintf(buf, sizeof(buf),
	         "# TYPE istio_requests_total counter\n"
	         "istio_requests_total" LBL("source", "unknown", "unknown", "hello", "v1", "mutual_tls", "200") "} %u\n"
	         "istio_requests_total" LBL("source", "unknown", "unknown", "hello", "v2", "mutual_tls", "200") "} %u\n"
	         "istio_requests_total" LBL("source", "unknown", "unknown", "hello", "unknown", "none", "503") "} %u\n"
	         "istio_request_duration_milliseconds_bucket" LBL("source", "unknown", "unknown", "hello", "v1", "mutual_tls", "200") ",le=\"5\"} %u\n"
	         "istio_request_duration_milliseconds_bucket" LBL("source", "unknown", "unknown", "hello", "v1", "mutual_tls", "200") ",le=\"10\"} %u\n"
	         "istio_request_duration_milliseconds_bucket" LBL("source", "unknown", "unknown", "hello", "v1", "mutual_tls", "200") ",le=\"+Inf\"} %u\n"
	         /* the destination's view of the same mTLS calls: not drawn twice */
	         "istio_requests_total" LBL("destination", "client", "unknown", "hello", "v1", "mutual_tls", "200") "} %u\n"
	         /* a plaintext caller from outside the mesh */
	         "istio_requests_total" LBL("destination", "unknown", "unknown", "hello", "v1", "none", "200") "} %u\n",
	         v1, v2, e503, v1 - slow, v1, v1, v1, v2);
	return buf;
}

static void test_json(void)
{
	struct dj_doc d;
	const char *doc = "{\"a\":[1,-2.5e3,true,false,null],\"s\":\"x\\\"\\\\\\/\\n\\u00e9\\ud83d\\ude00\",\"o\":{}}";
	size_t i, n = strlen(doc);
	int a, s, ok = 1;

	TEST("json: a document parses", dj_parse(&d, doc, n, 100) == 0);
	a = dj_get(&d, 0, "a");
	TEST("json: array members", a >= 0 && d.n[d.n[a].child].num == 1 && d.n[d.n[d.n[a].child].next].num == -2500);
	s = dj_get(&d, 0, "s");
	TEST("json: escapes decoded to UTF-8", s >= 0 && !strcmp(d.n[s].s, "x\"\\/\n\xc3\xa9\xf0\x9f\x98\x80"));
	TEST("json: missing member", dj_get(&d, 0, "zz") < 0 && !strcmp(dj_str(&d, 0, "zz"), ""));
	dj_free(&d);
	for (i = 0; i < n; i++) {
		if (dj_parse(&d, doc, i, 100) == 0)
			ok = 0;
		dj_free(&d);
	}
	TEST("json: every strict prefix is refused (no crash)", ok);
	TEST("json: trailing comma", !parses("[1,]") && !parses("{\"a\":1,}"));
	TEST("json: leading zeros, bare dot, bad exponent", !parses("01") && !parses("1.") && !parses("1e") && !parses(".5"));
	TEST("json: control character in a string", !parses("\"a\x01\""));
	TEST("json: bad escapes", !parses("\"\\x\"") && !parses("\"\\u12g4\"") && !parses("\"\\u12\""));
	TEST("json: trailing garbage", !parses("{} x") && !parses("nulll"));
	TEST("json: empty input", !parses("") && !parses("   "));
	TEST("json: bare scalars and whitespace", parses(" 1 ") && parses("\"x\"") && parses("\t[ ]\n"));
	{
		char deep[200];

		memset(deep, '[', 40);
		memset(deep + 40, ']', 40);
		deep[80] = '\0';
		TEST("json: nesting deeper than 32 is refused", !parses(deep));
		deep[31] = '\0';
		memset(deep, '[', 31);
		memset(deep + 31, ']', 31);
		deep[62] = '\0';
		TEST("json: nesting of 31 is fine", parses(deep));
	}
	TEST("json: node limit", dj_parse(&d, "[1,2,3,4,5]", 11, 5) < 0 && !strcmp(d.err, "too many JSON values"));
	dj_free(&d);
	TEST("json: lone surrogates become U+FFFD", dj_parse(&d, "\"\\ud800x\\udc00\"", 15, 10) == 0 &&
	                                             !strcmp(d.n[0].s, "\xef\xbf\xbdx\xef\xbf\xbd"));
	dj_free(&d);
}

static void test_writer(void)
{
	struct strbuf b = { 0 };
	struct dj_doc d;
	const char raw[] = "a\"b\\c\n\x01<\xff\xc3(\xe2\x82\xac\xf0\x9f\x98\x80\xed\xa0\x80";

	strbuf_json_strn(&b, raw, sizeof(raw) - 1);
	TEST("writer: escapes, '<' and invalid UTF-8 replaced",
	     !strcmp(b.p, "\"a\\\"b\\\\c\\u000a\\u0001\\u003c\\ufffd\\ufffd(\xe2\x82\xac\xf0\x9f\x98\x80\\ufffd\\ufffd\\ufffd\""));
	TEST("writer: the output parses", dj_parse(&d, b.p, b.len, 10) == 0);
	dj_free(&d);
	strbuf_free(&b);
	jw_num(&b, NAN);
	jw_num(&b, 1.5);
	strbuf_puts(&b, " ");
	jw_num(&b, 3);
	TEST("writer: numbers (no NaN in JSON)", !strcmp(b.p, "01.5 3"));
	strbuf_free(&b);
}

static int n_samples;
static double last_value;
static char last_label[64];

static void count_sample(void *ctx, const struct pm_sample *s)
{
	const char *v = pm_label(s, "b");

	(void)ctx;
	n_samples++;
	last_value = s->value;
	snprintf(last_label, sizeof(last_label), "%s", v ? v : "");
}

static void test_prom(void)
{
	static struct pm_sample s;
	static struct pm_stream st;
	const char *text = "# HELP x y\nm1 1\nm2{a=\"1\",b=\"q\\\"x\\\\y\\n\"} 2.5 1700000000\n\n  m3{} +Inf\nbad line\nm4{a=1} 3\n"
	                   "m5{b=\"last\"} 7";
	size_t i;

	TEST("prom: a sample with labels", pm_parse_line("m{a=\"x\",b=\"y\"} 4", 17, &s) == 1 && s.nl == 2 &&
	                                   s.value == 4 && !strcmp(pm_label(&s, "b"), "y"));
	TEST("prom: escapes in values", pm_parse_line("m{a=\"q\\\"\\\\\\n\"} 1", 17, &s) == 1 &&
	                                !strcmp(pm_label(&s, "a"), "q\"\\\n"));
	TEST("prom: comments and blank lines", pm_parse_line("# TYPE m counter", 16, &s) == 0 && pm_parse_line("", 0, &s) == 0);
	TEST("prom: malformed lines", pm_parse_line("m{a=x} 1", 8, &s) < 0 && pm_parse_line("m{a=\"x} 1", 9, &s) < 0 &&
	                              pm_parse_line("m 1x", 4, &s) < 0 && pm_parse_line("m", 1, &s) < 0 &&
	                              pm_parse_line("9m 1", 4, &s) < 0);
	memset(&st, 0, sizeof(st));
	st.on_sample = count_sample;
	n_samples = 0;
	pm_feed(&st, text, strlen(text));
	pm_end(&st);
	TEST("prom: a body, whole", n_samples == 4 && st.bad == 2 && last_value == 7 && !strcmp(last_label, "last"));
	memset(&st, 0, sizeof(st));
	st.on_sample = count_sample;
	n_samples = 0;
	for (i = 0; i < strlen(text); i++)
		pm_feed(&st, text + i, 1);
	pm_end(&st);
	TEST("prom: the same body one byte at a time", n_samples == 4 && st.bad == 2 && last_value == 7);
	{
		char *big = malloc(3 * PM_MAX_LINE);

		memset(big, 'x', 2 * PM_MAX_LINE);
		memcpy(big + 2 * PM_MAX_LINE, "\nm6 6\n", 7);
		memset(&st, 0, sizeof(st));
		st.on_sample = count_sample;
		n_samples = 0;
		pm_feed(&st, big, strlen(big));
		pm_end(&st);
		TEST("prom: an over-long line is skipped, the next one read", n_samples == 1 && last_value == 6 && st.long_lines == 1);
		free(big);
	}
}

static double edge_num(const char *json, const char *src, const char *dst, const char *field)
{
	char pat[256];
	const char *p;

	snprintf(pat, sizeof(pat), "\"source\":\"%s\",\"target\":\"%s\"", src, dst);
	p = strstr(json, pat);
	if (!p)
		return -1;
	snprintf(pat, sizeof(pat), "\"%s\":", field);
	p = strstr(p, pat);
	return p ? strtod(p + strlen(pat), NULL) : -1;
}

static void test_store(void)
{
	struct dashboard *d = fake();
	struct db_target *c = target(d, "client", "", "");
	struct strbuf b = { 0 };
	uint64_t bk[DB_NB] = { 0 };
	int i;

	/* quantiles: 100 observations, 90 under 5 ms, 10 in (5, 10] */
	for (i = 2; i < DB_NB; i++)
		bk[i] = i == 2 ? 90 : 100;
	TEST("p50 interpolates in its bucket", fabs(hist_quantile(bk, 0.5) - (1 + 4 * 50.0 / 90)) < 1e-9);
	TEST("p99 interpolates in the next", fabs(hist_quantile(bk, 0.99) - (5 + 5 * 9.0 / 10)) < 1e-9);
	memset(bk, 0, sizeof(bk));
	bk[DB_NB - 1] = 3;
	TEST("all in +Inf: the highest bound", hist_quantile(bk, 0.99) == 3600000);
	memset(bk, 0, sizeof(bk));
	TEST("no observations: 0", hist_quantile(bk, 0.99) == 0);

	scrape_text(d, c, metrics(1000, 100, 50, 0));   /* first scrape: the baseline */
	commit_at(d, 100);
	graph_json(d, 60, &b);
	TEST("one round: no rates yet", strstr(b.p, "\"edges\":[]") != NULL);
	strbuf_free(&b);
	scrape_text(d, c, metrics(1080, 120, 60, 8));   /* +80 v1 (8 slow), +20 v2, +10 503 */
	commit_at(d, 110);
	graph_json(d, 60, &b);
	TEST("rate over the window", edge_num(b.p, "client", "hello v1", "rps") == 8 &&
	                             edge_num(b.p, "client", "hello v2", "rps") == 2);
	TEST("the destination's report of mTLS calls is not drawn twice", edge_num(b.p, "client", "hello v1", "requests") == 80);
	TEST("mtls edge", strstr(b.p, "\"source\":\"client\",\"target\":\"hello v1\"") &&
	                  strstr(strstr(b.p, "\"target\":\"hello v1\""), "\"mtls\":true"));
	TEST("errors: the faulty edge is red", edge_num(b.p, "client", "hello", "error_rate") == 1 &&
	                                       strstr(strstr(b.p, "\"target\":\"hello\","), "\"health\":\"red\""));
	TEST("p99 from the bucket increments", fabs(edge_num(b.p, "client", "hello v1", "p99_ms") - (5 + 5 * (79.2 - 72) / 8)) < 0.01);
	TEST("plaintext callers from outside: unknown -> hello v1", edge_num(b.p, "unknown", "hello v1", "rps") == 2);
	TEST("nodes: the client from the registry", strstr(b.p, "\"id\":\"client\",\"service\":\"client\",\"version\":\"\",\"kind\":\"client\""));
	strbuf_free(&b);
	/* the proxy restarted: its counters start again from 0 */
	scrape_text(d, c, metrics(30, 0, 0, 0));
	commit_at(d, 120);
	graph_json(d, 60, &b);
	TEST("a counter reset counts its new value", edge_num(b.p, "client", "hello v1", "requests") == 110 &&
	                                             edge_num(b.p, "client", "hello v1", "rps") == 5.5);
	strbuf_free(&b);
	graph_json(d, 5, &b);
	TEST("a short window covers the last round only", edge_num(b.p, "client", "hello v1", "rps") == 3);
	strbuf_free(&b);
	/* many idle rounds: the old increments leave the ring */
	for (i = 0; i < DB_SLOTS + 2; i++)
		commit_at(d, 130 + i);
	graph_json(d, 1000, &b);
	TEST("old rounds leave the ring", strstr(b.p, "\"edges\":[]") != NULL);
	strbuf_free(&b);
	dashboard_stop(d);
}

static int post(struct dashboard *d, const char *body, struct strbuf *out)
{
	strbuf_free(out);
	return spans_post(d, body, strlen(body), out);
}

static void test_spans(void)
{
	struct dashboard *d = fake();
	struct strbuf out = { 0 };
	const char *p;

	TEST("spans: a valid post", post(d, "[{\"traceId\":\"AB\",\"id\":\"3\",\"parentId\":\"2\",\"timestamp\":30,\"duration\":5},"
	                                   "{\"traceId\":\"ab\",\"id\":\"2\",\"parentId\":\"1\",\"timestamp\":20,\"duration\":20},"
	                                   "{\"traceId\":\"ab\",\"id\":\"4\",\"parentId\":\"1\",\"timestamp\":50,\"duration\":1},"
	                                   "{\"traceId\":\"ab\",\"id\":\"1\",\"timestamp\":10,\"duration\":100,"
	                                   "\"tags\":{\"error\":\"boom\"},\"localEndpoint\":{\"serviceName\":\"front\"}}]", &out) == 202);
	TEST("spans: stored", d->n_spans == 4 && d->spans_dropped == 0);
	strbuf_free(&out);
	TEST("trace: found by a padded or short id", trace_get(d, "ab", 2, &out) == 200);
	p = out.p;
	TEST("trace: parent/child order, siblings by start time",
	     (p = strstr(p, "\"id\":\"0000000000000001\"")) && strstr(p, "\"depth\":0") &&
	     (p = strstr(p, "\"id\":\"0000000000000002\"")) && (p = strstr(p, "\"id\":\"0000000000000003\"")) &&
	     strstr(p, "\"depth\":2") && (p = strstr(p, "\"id\":\"0000000000000004\"")));
	strbuf_free(&out);
	traces_list(d, "front", 0, 1, 10, &out);
	TEST("traces: search by service and error", strstr(out.p, "\"trace_id\":\"00000000000000ab\"") &&
	                                            strstr(out.p, "\"error\":true") && strstr(out.p, "\"duration_ms\":0.1"));
	strbuf_free(&out);
	traces_list(d, "nobody", 0, 0, 10, &out);
	TEST("traces: no match", strstr(out.p, "\"traces\":[]") != NULL);
	TEST("spans: refused: not an array", post(d, "{}", &out) == 400 && strstr(out.p, "expected a JSON array"));
	TEST("spans: refused: bad id", post(d, "[{\"traceId\":\"ab\",\"id\":\"12345678901234567\"}]", &out) == 400 &&
	                               strstr(out.p, "span 0: id must be"));
	TEST("spans: refused: bad kind", post(d, "[{\"traceId\":\"ab\",\"id\":\"1\",\"kind\":\"X\"}]", &out) == 400);
	TEST("spans: refused: numeric tag", post(d, "[{\"traceId\":\"ab\",\"id\":\"1\",\"tags\":{\"a\":1}}]", &out) == 400 &&
	                                    strstr(out.p, "tag 'a'"));
	TEST("spans: refused: negative duration", post(d, "[{\"traceId\":\"ab\",\"id\":\"1\",\"duration\":-1}]", &out) == 400);
	TEST("spans: all or nothing", post(d, "[{\"traceId\":\"cd\",\"id\":\"1\"},{\"id\":\"2\"}]", &out) == 400 &&
	                              strstr(out.p, "span 1: traceId") && d->n_spans == 4);
	TEST("spans: a refused post counts", d->spans_rejected_posts == 6);
	/* the ring holds 4 spans: a fifth evicts the oldest */
	TEST("ring: count bound", post(d, "[{\"traceId\":\"cd\",\"id\":\"9\"}]", &out) == 202 && d->n_spans == 4 &&
	                          d->spans_dropped == 1);
	{
		char big[3000];

		snprintf(big, sizeof(big), "[{\"traceId\":\"ee\",\"id\":\"1\",\"name\":\"%01500d\"},{\"traceId\":\"ee\",\"id\":\"2\",\"name\":\"%01000d\"}]", 0, 0);
		TEST("ring: byte bound (4 KiB)", post(d, big, &out) == 202 && d->span_bytes <= 4096 && d->n_spans >= 2);
	}
	/* a cycle: 1 -> 2 -> 1; both still come out, once */
	post(d, "[{\"traceId\":\"ff\",\"id\":\"1\",\"parentId\":\"2\"},{\"traceId\":\"ff\",\"id\":\"2\",\"parentId\":\"1\"}]", &out);
	strbuf_free(&out);
	TEST("trace: a parent cycle ends", trace_get(d, "ff", 2, &out) == 200 && strstr(out.p, "\"id\":\"0000000000000001\"") &&
	                                   strstr(out.p, "\"id\":\"0000000000000002\""));
	strbuf_free(&out);
	TEST("trace: bad id", trace_get(d, "zz", 2, &out) == 400);
	strbuf_free(&out);
	dashboard_stop(d);
}

static void test_http_helpers(void)
{
	char out[64];
	const char *t = "/api/traces?service=re%2Fviews&min_ms=5&x";

	TEST("base64", b64_decode("dXNlcjpwYXNz", 12, out, sizeof(out)) == 9 && !strcmp(out, "user:pass"));
	TEST("base64: bad input", b64_decode("dX*z", 4, out, sizeof(out)) < 0);
	TEST("base64: overflow", b64_decode("dXNlcjpwYXNz", 12, out, 4) < 0);
	TEST("secrets compare", same_secret("abc", 3, "abc") && !same_secret("abd", 3, "abc") && !same_secret("ab", 2, "abc") &&
	                        !same_secret("abcd", 4, "abc"));
	TEST("query: decoded", qparam(t, strlen(t), "service", out, sizeof(out)) && !strcmp(out, "re/views"));
	TEST("query: next parameter", qparam(t, strlen(t), "min_ms", out, sizeof(out)) && !strcmp(out, "5"));
	TEST("query: absent", !qparam(t, strlen(t), "x", out, sizeof(out)) && !qparam("/a", 2, "x", out, sizeof(out)));
	TEST("ids: padded and lowercased", span_id("ABC", 3, 32, out) == 0 && !strcmp(out, "0000000000000abc") &&
	                                   span_id("1234567890abcdef1", 17, 32, out) == 0 && strlen(out) == 32 &&
	                                   span_id("", 0, 16, out) < 0 && span_id("xyz", 3, 16, out) < 0);
}

/* member `field` of the element of array `arr` (in obj 0) whose `key` is `name`: number, or -1 */
static double row_num(const char *json, const char *arr, const char *key, const char *name, const char *field)
{
	struct dj_doc doc;
	double v = -1;
	int a, p, f;

	if (dj_parse(&doc, json, strlen(json), 10000) < 0)
		return -2;
	a = dj_get(&doc, 0, arr);
	for (p = a >= 0 ? doc.n[a].child : -1; p >= 0; p = doc.n[p].next)
		if (!strcmp(dj_str(&doc, p, key), name) && (f = dj_get(&doc, p, field)) >= 0)
			v = doc.n[f].type == DJ_NUM ? doc.n[f].num : doc.n[f].type == DJ_TRUE ? 1 : doc.n[f].type == DJ_NULL ? -3 : 0;
	dj_free(&doc);
	return v;
}

#define SLBL(rep, sid, dver, sec, code) \
	"{reporter=\"" rep "\",source_app=\"unknown\",source_principal=\"" sid "\",destination_principal=\"" \
	"spiffe://td/ns/default/sa/hello\",destination_service_name=\"hello\",destination_version=\"" dver \
	"\",connection_security_policy=\"" sec "\",response_code=\"" code "\""

static void test_stat(void)
{
	struct dashboard *d = fake();
	struct db_target *c = target(d, "client", "", ""), *v1 = target(d, "hello-v1", "hello", "v1");
	struct strbuf b = { 0 };
	char text[4096];
	int i;

	TEST("stat: NAME matches a service or one workload", name_matches("hello", "hello", "v1") &&
	     name_matches("hello-v1", "hello", "v1") && !name_matches("hello-v2", "hello", "v1") &&
	     !name_matches("hell", "hello", "v1") && !name_matches("hello-", "hello", "") && name_matches(NULL, "x", ""));
	d->registry = strdup("{\"proxies\":[{\"name\":\"client\",\"service\":\"\",\"labels\":{},\"address\":\"-\",\"admin\":\"client\"},"
	                     "{\"name\":\"hello-v1\",\"service\":\"hello\",\"labels\":{\"version\":\"v1\"},"
	                     "\"address\":\"127.0.0.1:1\",\"admin\":\"hello-v1\"}]}");
	for (i = 0; i < 2; i++) {
		/* the client: 90 x 200 and 10 x 500 to hello v1 over mTLS, 2 connections open */
		snprintf(text, sizeof(text),
		         "istio_requests_total" SLBL("source", "spiffe://td/ns/default/sa/client", "v1", "mutual_tls", "200") "} %d\n"
		         "istio_requests_total" SLBL("source", "spiffe://td/ns/default/sa/client", "v1", "mutual_tls", "500") "} %d\n"
		         "istio_request_duration_milliseconds_bucket" SLBL("source", "spiffe://td/ns/default/sa/client", "v1", "mutual_tls", "200") ",le=\"1\"} %d\n"
		         "istio_request_duration_milliseconds_bucket" SLBL("source", "spiffe://td/ns/default/sa/client", "v1", "mutual_tls", "200") ",le=\"+Inf\"} %d\n"
		         "istio_tcp_connections_opened_total" SLBL("source", "", "v1", "mutual_tls", "") "} 3\n"
		         "istio_tcp_connections_closed_total" SLBL("source", "", "v1", "mutual_tls", "") "} 1\n",
		         i * 90, i * 10, i * 90, i * 90);
		scrape_text(d, c, text);
		/* hello v1: the same mTLS calls (not counted twice), 20 plaintext ones from outside, 5 - 2 inbound connections */
		snprintf(text, sizeof(text),
		         "istio_requests_total" SLBL("destination", "spiffe://td/ns/default/sa/client", "v1", "mutual_tls", "200") "} %d\n"
		         "istio_requests_total" SLBL("destination", "", "v1", "none", "200") "} %d\n"
		         "istio_tcp_connections_opened_total" SLBL("destination", "", "v1", "none", "") "} 5\n"
		         "istio_tcp_connections_closed_total" SLBL("destination", "", "v1", "none", "") "} 2\n",
		         i * 90, i * 20);
		scrape_text(d, v1, text);
		commit_at(d, 100 + 10 * i);
	}
	stat_json(d, 0, NULL, NULL, 60, &b);
	TEST("stat: a row per workload", row_num(b.p, "rows", "name", "client", "requests") == 0 &&
	     row_num(b.p, "rows", "name", "hello-v1", "requests") == 120);
	TEST("stat: success, rps over the window", fabs(row_num(b.p, "rows", "name", "hello-v1", "success") - 110.0 / 120) < 1e-3 &&
	     row_num(b.p, "rows", "name", "hello-v1", "rps") == 12);
	TEST("stat: no requests: success null", row_num(b.p, "rows", "name", "client", "success") == -3);
	TEST("stat: percentiles from the buckets", row_num(b.p, "rows", "name", "hello-v1", "p50_ms") > 0 &&
	     row_num(b.p, "rows", "name", "hello-v1", "p50_ms") <= row_num(b.p, "rows", "name", "hello-v1", "p95_ms"));
	TEST("stat: TCP connections into the workload (opened - closed)", row_num(b.p, "rows", "name", "hello-v1", "tcp_open") == 3);
	TEST("stat: MESHED from the registry", row_num(b.p, "rows", "name", "hello-v1", "meshed") == 1 &&
	     row_num(b.p, "rows", "name", "hello-v1", "endpoints") == 1);
	strbuf_free(&b);
	stat_json(d, 0, "client", NULL, 60, &b);
	TEST("stat --from client: its requests and connections", row_num(b.p, "rows", "name", "hello-v1", "requests") == 100 &&
	     row_num(b.p, "rows", "name", "hello-v1", "tcp_open") == 2 && !strstr(b.p, "\"name\":\"client\""));
	strbuf_free(&b);
	stat_json(d, 0, NULL, "hello", 60, &b);
	TEST("stat --to hello: a row per caller", row_num(b.p, "rows", "name", "client", "requests") == 100 &&
	     row_num(b.p, "rows", "name", "unknown", "requests") == 20 && row_num(b.p, "rows", "name", "client", "tcp_open") == 2);
	strbuf_free(&b);
	stat_json(d, 1, NULL, NULL, 60, &b);
	TEST("stat svc: a row per service", row_num(b.p, "rows", "name", "hello", "requests") == 120 && !strstr(b.p, "hello-v1"));
	strbuf_free(&b);
	edges_json(d, 0, 60, &b);
	TEST("edges: identities of the mTLS edge", strstr(b.p, "{\"source\":\"client\",\"destination\":\"hello-v1\",\"source_identity\":"
	                                                 "\"spiffe://td/ns/default/sa/client\",\"destination_identity\":"
	                                                 "\"spiffe://td/ns/default/sa/hello\",\"requests\":100,\"mtls_requests\":100,"
	                                                 "\"secured\":true") != NULL);
	TEST("edges: the plaintext one and why", strstr(b.p, "{\"source\":\"unknown\",\"destination\":\"hello-v1\",\"source_identity\":\"\","
	                                                     "\"destination_identity\":\"\",\"requests\":20,\"mtls_requests\":0,"
	                                                     "\"secured\":false,\"reason\":\"plaintext, caller outside the mesh\"}") != NULL);
	strbuf_free(&b);
	dashboard_stop(d);
}

int main(void)
{
	test_json();
	test_writer();
	test_prom();
	test_store();
	test_stat();
	test_spans();
	test_http_helpers();
	return test_report();
}
