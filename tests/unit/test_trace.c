/* trace: W3C / B3 extraction (every form, malformed ones as absent), ids,
 * sampling, injection and its round trip, JSON escaping and the span object,
 * the bounded queue, and the [tracing] section of conf. */
#include <fcntl.h>
#include <string.h>

#include "../../modules/buf.c"
#include "../../modules/conf.c"
#include "../../modules/log.c"
#include "../../modules/http1.c"
#include "../../modules/net.c"
#include "../../modules/trace.c"
#include "test.h"

#define H(n, v) { n, sizeof(n) - 1, v, sizeof(v) - 1 }

static struct trace_ctx ctx_of(const struct http1_header *h, size_t n, enum trace_src *src)
{
	struct trace_ctx t;

	memset(&t, 0xa5, sizeof(t));           /* extract must set every field it owns */
	*src = trace_extract(&t, h, n);
	return t;
}

static enum trace_src src1(const char *name, const char *value)
{
	struct http1_header h = { name, strlen(name), value, strlen(value) };
	struct trace_ctx t;

	memset(&t, 0, sizeof(t));
	return trace_extract(&t, &h, 1);
}

static void test_w3c(void)
{
	struct http1_header ok[] = { H("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01") };
	struct http1_header off[] = { H("TraceParent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00") };
	struct http1_header fut[] = { H("traceparent", "cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-09-what-ever") };
	enum trace_src src;
	struct trace_ctx t;
	char id[33];

	t = ctx_of(ok, 1, &src);
	trace_id_hex(&t, id);
	TEST("w3c: valid traceparent is read", src == TRACE_SRC_W3C && !strcmp(id, "0af7651916cd43dd8448eb211c80319c") &&
	     t.parent_id == 0xb7ad6b7169203331ULL && t.flags == (TRACE_F_DECIDED | TRACE_F_SAMPLED) && t.span_id == 0);
	t = ctx_of(off, 1, &src);
	TEST("w3c: flags 00 is a decision not to sample; header name case-insensitive",
	     src == TRACE_SRC_W3C && t.flags == TRACE_F_DECIDED);
	t = ctx_of(fut, 1, &src);
	TEST("w3c: a later version may append -fields; sampled is bit 0 of the flags (09)",
	     src == TRACE_SRC_W3C && (t.flags & TRACE_F_SAMPLED) && t.parent_id == 0xb7ad6b7169203331ULL);
	{
		static const char *const bad[] = {
			"ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",   /* version ff is invalid */
			"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-x", /* 00 is exactly 55 */
			"01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01x",  /* later version: only -... */
			"00-00000000000000000000000000000000-b7ad6b7169203331-01",   /* zero trace id */
			"00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",   /* zero parent id */
			"00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01",   /* upper case */
			"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0g",   /* bad flags */
			"0g-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",   /* bad version */
			"00-0af7651916cd43dd8448eb211c80319-cb7ad6b7169203331-01",   /* dash moved */
			"00_0af7651916cd43dd8448eb211c80319c_b7ad6b7169203331_01",   /* wrong separators */
			"00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333-01",    /* short parent */
			"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",      /* no flags */
			"00-0af7651916cd43dd8448eb211c8031 c-b7ad6b7169203331-01",   /* space */
			"", "-", "00",
		};
		size_t i;
		int all = 1;

		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
			if (src1("traceparent", bad[i]) != TRACE_SRC_NONE) {
				printf("  accepted: '%s'\n", bad[i]);
				all = 0;
			}
		TEST("w3c: malformed traceparents (version ff, lengths, zero ids, case, hex, dashes) count as absent", all);
	}
	{
		struct http1_header two[] = { ok[0], off[0], H("x-b3-traceid", "463ac35c9f6413ad48485a3953bb6124"),
		                              H("x-b3-spanid", "a2fb4a1d1a96d312") };
		t = ctx_of(two, 4, &src);
		TEST("w3c: two traceparent headers are ambiguous: ignored, B3 used instead",
		     src == TRACE_SRC_B3 && t.trace_lo == 0x48485a3953bb6124ULL);
	}
}

static void test_b3_single(void)
{
	enum trace_src src;
	struct trace_ctx t;
	char id[33];

	{
		struct http1_header h[] = { H("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90") };
		t = ctx_of(h, 1, &src);
		trace_id_hex(&t, id);
		TEST("b3 single: trace-span-sampled-parent", src == TRACE_SRC_B3_SINGLE &&
		     !strcmp(id, "80f198ee56343ba864fe8b2a57d3eff7") && t.parent_id == 0xe457b5a2e4d86bd1ULL &&
		     t.flags == (TRACE_F_DECIDED | TRACE_F_SAMPLED));
	}
	{
		struct http1_header h[] = { H("B3", "e457b5a2e4d86bd1-05e3ac9a4f6e3b90") };
		t = ctx_of(h, 1, &src);
		TEST("b3 single: 64-bit trace id, no sampling state: ids, undecided",
		     src == TRACE_SRC_B3_SINGLE && t.trace_hi == 0 && t.trace_lo == 0xe457b5a2e4d86bd1ULL &&
		     t.parent_id == 0x05e3ac9a4f6e3b90ULL && t.flags == 0);
	}
	{
		struct http1_header h[] = { H("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-d") };
		t = ctx_of(h, 1, &src);
		TEST("b3 single: d = debug (sampled)", t.flags == (TRACE_F_DECIDED | TRACE_F_SAMPLED | TRACE_F_DEBUG));
	}
	{
		struct http1_header h[] = { H("b3", "0") };
		t = ctx_of(h, 1, &src);
		TEST("b3 single: '0' alone: a decision not to sample, no context",
		     src == TRACE_SRC_NONE && t.flags == TRACE_F_DECIDED && !(t.trace_hi | t.trace_lo) && !t.parent_id);
		trace_start(&t, 100);
		TEST("b3 single: '0' alone: new ids, still not sampled at 100%",
		     (t.trace_hi | t.trace_lo) && t.span_id && !(t.flags & TRACE_F_SAMPLED));
	}
	{
		struct http1_header h[] = { H("b3", "1") };
		t = ctx_of(h, 1, &src);
		trace_start(&t, 0);
		TEST("b3 single: '1' alone: sampled even at 0%", (t.flags & TRACE_F_SAMPLED) && t.parent_id == 0);
	}
	{
		static const char *const bad[] = {
			"80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-",        /* empty sampling */
			"80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86b",           /* short span */
			"80f198ee56343ba864fe8b2a57d3eff-e457b5a2e4d86bd1-1",        /* 31 digits */
			"80f198ee56343ba8-64fe8b2a57d3eff7-e457b5a2e4d86bd1",        /* three ids */
			"80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-x",       /* bad sampling */
			"80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3",  /* short parent */
			"80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90-x",
			"00000000000000000000000000000000-e457b5a2e4d86bd1-1",       /* zero trace */
			"80f198ee56343ba864fe8b2a57d3eff7-0000000000000000-1",       /* zero span */
			"80F198EE56343BA864FE8B2A57D3EFF7-E457B5A2E4D86BD1-1",       /* upper case */
			"x", "2", "-", "--", "", "80f198ee56343ba8",
		};
		size_t i;
		int all = 1;

		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
			if (src1("b3", bad[i]) != TRACE_SRC_NONE) {
				printf("  accepted: '%s'\n", bad[i]);
				all = 0;
			}
		TEST("b3 single: malformed values count as absent", all);
	}
}

static void test_b3_multi(void)
{
	enum trace_src src;
	struct trace_ctx t;

	{
		struct http1_header h[] = { H("X-B3-TraceId", "463ac35c9f6413ad48485a3953bb6124"),
		                            H("X-B3-SpanId", "a2fb4a1d1a96d312"), H("X-B3-ParentSpanId", "0020000000000001"),
		                            H("X-B3-Sampled", "1") };
		t = ctx_of(h, 4, &src);
		TEST("b3 multi: ids and sampled, names case-insensitive", src == TRACE_SRC_B3 &&
		     t.trace_hi == 0x463ac35c9f6413adULL && t.trace_lo == 0x48485a3953bb6124ULL &&
		     t.parent_id == 0xa2fb4a1d1a96d312ULL && t.flags == (TRACE_F_DECIDED | TRACE_F_SAMPLED));
	}
	{
		struct http1_header h[] = { H("x-b3-traceid", "48485a3953bb6124"), H("x-b3-spanid", "a2fb4a1d1a96d312"),
		                            H("x-b3-sampled", "false") };
		t = ctx_of(h, 3, &src);
		TEST("b3 multi: 64-bit trace id, sampled=false", src == TRACE_SRC_B3 && !t.trace_hi &&
		     t.trace_lo == 0x48485a3953bb6124ULL && t.flags == TRACE_F_DECIDED);
	}
	{
		struct http1_header h[] = { H("x-b3-traceid", "48485a3953bb6124"), H("x-b3-spanid", "a2fb4a1d1a96d312"),
		                            H("x-b3-flags", "1"), H("x-b3-sampled", "0") };
		t = ctx_of(h, 4, &src);
		TEST("b3 multi: flags 1 = debug, wins over sampled 0",
		     t.flags == (TRACE_F_DECIDED | TRACE_F_SAMPLED | TRACE_F_DEBUG));
	}
	{
		struct http1_header h[] = { H("x-b3-sampled", "true") };
		t = ctx_of(h, 1, &src);
		TEST("b3 multi: a sampling decision alone is kept (no ids)",
		     src == TRACE_SRC_NONE && t.flags == (TRACE_F_DECIDED | TRACE_F_SAMPLED) && !(t.trace_hi | t.trace_lo));
	}
	{
		struct http1_header h[] = { H("x-b3-traceid", "463ac35c9f6413ad48485a3953bb6124"), H("x-b3-sampled", "1") };
		t = ctx_of(h, 2, &src);
		TEST("b3 multi: trace id without span id: no ids (the decision stays)",
		     src == TRACE_SRC_NONE && !(t.trace_hi | t.trace_lo) && !t.parent_id && (t.flags & TRACE_F_SAMPLED));
	}
	{
		struct http1_header h[] = { H("x-b3-traceid", "463ac35c9f6413ad48485a3953bb612g"), H("x-b3-spanid", "a2fb4a1d1a96d312") };
		struct http1_header h2[] = { H("x-b3-traceid", "463ac35c9f6413ad48485a3953bb6124"), H("x-b3-spanid", "a2fb4a1d1a96d31") };
		struct http1_header h3[] = { H("x-b3-traceid", "463ac35c9f6413ad48485a3953bb6124"), H("x-b3-spanid", "a2fb4a1d1a96d312"),
		                             H("x-b3-sampled", "yes") };
		struct http1_header h4[] = { H("x-b3-traceid", "463ac35c9f6413ad48485a3953bb6124"), H("x-b3-spanid", "a2fb4a1d1a96d312"),
		                             H("x-b3-spanid", "b2fb4a1d1a96d312") };
		int a = ctx_of(h, 2, &src).trace_lo == 0 && src == TRACE_SRC_NONE;
		int b = (ctx_of(h2, 2, &src), src == TRACE_SRC_NONE);
		int d = (t = ctx_of(h3, 3, &src), src == TRACE_SRC_B3 && t.flags == 0);
		int e = (ctx_of(h4, 3, &src), src == TRACE_SRC_NONE);
		TEST("b3 multi: bad hex, short span id, duplicate span ids: absent; an unknown sampled value: undecided",
		     a && b && d && e);
	}
	{
		struct http1_header h[] = { H("traceparent", "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
		                            H("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1"),
		                            H("x-b3-traceid", "463ac35c9f6413ad48485a3953bb6124"), H("x-b3-spanid", "a2fb4a1d1a96d312") };
		t = ctx_of(h, 4, &src);
		TEST("precedence: an invalid traceparent falls back to b3 (single before multi)",
		     src == TRACE_SRC_B3_SINGLE && t.trace_lo == 0x64fe8b2a57d3eff7ULL);
		h[0].value = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
		t = ctx_of(h, 4, &src);
		TEST("precedence: a valid traceparent wins", src == TRACE_SRC_W3C && t.trace_lo == 0x8448eb211c80319cULL);
	}
	{
		struct http1_header h[] = { H("tracestate", "a=1"), H("x-b3", "1"), H("b", "1"), H("", ""), H("x-b3-", "1"),
		                            H("x-b3-sampledx", "1"), H("content-type", "text/plain") };
		t = ctx_of(h, 7, &src);
		TEST("unrelated and near-miss names are ignored", src == TRACE_SRC_NONE && t.flags == 0 && !t.trace_lo);
	}
}

static void test_start_sampling(void)
{
	struct trace_ctx t;
	int i, n0 = 0, n100 = 0, n50 = 0, ids_ok = 1, nsmall = 0;

	for (i = 0; i < 10000; i++) {
		memset(&t, 0, sizeof(t));
		trace_start(&t, 0);
		n0 += !!(t.flags & TRACE_F_SAMPLED);
		if (!t.span_id || !(t.trace_hi && t.trace_lo) || t.parent_id)
			ids_ok = 0;
		memset(&t, 0, sizeof(t));
		trace_start(&t, 100);
		n100 += !!(t.flags & TRACE_F_SAMPLED);
		memset(&t, 0, sizeof(t));
		trace_start(&t, 50);
		n50 += !!(t.flags & TRACE_F_SAMPLED);
		memset(&t, 0, sizeof(t));
		trace_start(&t, 0.5);
		nsmall += !!(t.flags & TRACE_F_SAMPLED);
	}
	TEST("sampling 0%: never; 100%: always", n0 == 0 && n100 == 10000);
	TEST("sampling 50%: 10,000 draws within 4 sigma of 5,000", n50 > 4800 && n50 < 5200);
	TEST("sampling 0.5%: 10,000 draws within 4 sigma of 50", nsmall > 22 && nsmall < 78);
	TEST("new traces: non-zero 128-bit trace id and span id, no parent", ids_ok);
	{
		struct http1_header h[] = { H("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00") };
		struct http1_header h2[] = { H("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01") };
		trace_begin(&t, h, 1, 100);
		TEST("incoming 'not sampled' wins over 100%", !(t.flags & TRACE_F_SAMPLED) && t.span_id &&
		     t.span_id != t.parent_id && t.parent_id == 0xb7ad6b7169203331ULL && t.trace_lo == 0x8448eb211c80319cULL);
		trace_begin(&t, h2, 1, 0);
		TEST("incoming 'sampled' wins over 0%", (t.flags & TRACE_F_SAMPLED) != 0);
	}
	{
		uint64_t a, b;
		memset(&t, 0, sizeof(t));
		trace_start(&t, 0);
		a = t.span_id;
		trace_start(&t, 0);
		b = t.span_id;
		TEST("each trace_start draws a new span id", a != b);
	}
}

/* parses "name: value\r\n" lines back into headers */
static size_t split_headers(char *s, struct http1_header *h, size_t cap)
{
	size_t n = 0;
	char *line = s, *eol;

	while (n < cap && (eol = strstr(line, "\r\n"))) {
		char *colon = memchr(line, ':', (size_t)(eol - line));
		if (!colon)
			break;
		h[n].name = line;
		h[n].name_len = (size_t)(colon - line);
		h[n].value = colon + 2;
		h[n].value_len = (size_t)(eol - colon - 2);
		n++;
		line = eol + 2;
	}
	return n;
}

static void test_inject(void)
{
	struct trace_ctx t = { .trace_hi = 0x0af7651916cd43ddULL, .trace_lo = 0x8448eb211c80319cULL,
		.parent_id = 0xb7ad6b7169203331ULL, .span_id = 0x00f067aa0ba902b7ULL, .flags = TRACE_F_SAMPLED };
	char out[TRACE_INJECT_MAX + 1], small[10];
	struct http1_header h[16];
	size_t n, k;
	enum trace_src src;
	struct trace_ctx back;

	n = trace_inject(&t, out, sizeof(out));
	out[n] = 0;
	TEST("inject: W3C and both B3 forms, our span as the parent of the next hop",
	     !strcmp(out, "traceparent: 00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01\r\n"
	                  "x-b3-traceid: 0af7651916cd43dd8448eb211c80319c\r\n"
	                  "x-b3-spanid: 00f067aa0ba902b7\r\n"
	                  "x-b3-parentspanid: b7ad6b7169203331\r\n"
	                  "x-b3-sampled: 1\r\n"
	                  "b3: 0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-1-b7ad6b7169203331\r\n"));
	k = split_headers(out, h, 16);
	back = ctx_of(h, k, &src);
	TEST("inject -> extract round trip: same trace, our span becomes the parent, sampled",
	     k == 6 && src == TRACE_SRC_W3C && back.trace_hi == t.trace_hi && back.trace_lo == t.trace_lo &&
	     back.parent_id == t.span_id && (back.flags & TRACE_F_SAMPLED));
	TEST("inject: every header written is one trace_is_header replaces",
	     trace_is_header(h[0].name, h[0].name_len) && trace_is_header(h[1].name, h[1].name_len) &&
	     trace_is_header(h[2].name, h[2].name_len) && trace_is_header(h[3].name, h[3].name_len) &&
	     trace_is_header(h[4].name, h[4].name_len) && trace_is_header(h[5].name, h[5].name_len));
	h[0].name = "x";                 /* without traceparent: the b3 header alone gives the same */
	back = ctx_of(h, k, &src);
	TEST("round trip through b3 single", src == TRACE_SRC_B3_SINGLE && back.parent_id == t.span_id &&
	     back.trace_lo == t.trace_lo && (back.flags & TRACE_F_SAMPLED));
	h[5].name = "y";
	back = ctx_of(h, k, &src);
	TEST("round trip through x-b3-*", src == TRACE_SRC_B3 && back.parent_id == t.span_id &&
	     back.trace_hi == t.trace_hi && (back.flags & TRACE_F_SAMPLED));

	t.parent_id = 0;
	t.flags = 0;
	n = trace_inject(&t, out, sizeof(out));
	out[n] = 0;
	TEST("inject: root, not sampled: flags 00, sampled 0, no parent anywhere",
	     strstr(out, "-00f067aa0ba902b7-00\r\n") && strstr(out, "x-b3-sampled: 0\r\n") &&
	     !strstr(out, "parentspanid") && strstr(out, "b3: 0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-0\r\n"));
	t.flags = TRACE_F_SAMPLED | TRACE_F_DEBUG;
	n = trace_inject(&t, out, sizeof(out));
	out[n] = 0;
	TEST("inject: debug is x-b3-flags: 1 without x-b3-sampled, and b3 '-d'",
	     strstr(out, "x-b3-flags: 1\r\n") && !strstr(out, "x-b3-sampled") && strstr(out, "-00f067aa0ba902b7-d\r\n") &&
	     strstr(out, "-01\r\n"));
	t.parent_id = ~0ULL;
	n = trace_inject(&t, out, sizeof(out));
	TEST("inject: the longest output fits TRACE_INJECT_MAX", n > 250 && n <= TRACE_INJECT_MAX);
	TEST("inject: nothing without a trace, or without room", trace_inject(&(struct trace_ctx){ 0 }, out, sizeof(out)) == 0 &&
	     trace_inject(&t, small, sizeof(small)) == 0);

	TEST("trace_is_header: traceparent, b3, x-b3-* (any case)",
	     trace_is_header("traceparent", 11) && trace_is_header("B3", 2) && trace_is_header("X-B3-TraceId", 12) &&
	     trace_is_header("x-b3-spanid", 11) && trace_is_header("x-b3-parentspanid", 17) &&
	     trace_is_header("x-b3-sampled", 12) && trace_is_header("x-b3-flags", 10));
	TEST("trace_is_header: tracestate and look-alikes pass through",
	     !trace_is_header("tracestate", 10) && !trace_is_header("b4", 2) && !trace_is_header("x-b3-foo", 8) &&
	     !trace_is_header("x-b3-sampleD1", 13) && !trace_is_header("x-c3-spanid", 11) &&
	     !trace_is_header("traceparents", 12) && !trace_is_header("", 0) && !trace_is_header("x-request-id", 12));
	{
		char id[33], sid[17];
		trace_id_hex(&(struct trace_ctx){ .trace_hi = 1, .trace_lo = 0xabcdef }, id);
		trace_span_hex(0xfedcba9876543210ULL, sid);
		TEST("id text: zero-padded lowercase hex", !strcmp(id, "000000000000000100000000" "00abcdef") &&
		     !strcmp(sid, "fedcba9876543210"));
	}
}

static int esc_is(const char *in, const char *want)
{
	struct strbuf s = { 0 };
	int r;

	strbuf_json_str(&s, in);
	r = s.p && !strcmp(s.p, want);
	if (!r)
		printf("  strbuf_json_str: got %s, want %s\n", s.p ? s.p : "(null)", want);
	strbuf_free(&s);
	return r;
}

static void test_json(void)
{
	TEST("json: quotes and backslashes escaped", esc_is("a\"b\\c", "\"a\\\"b\\\\c\""));
	TEST("json: controls and DEL as \\u00XX", esc_is("\x01\t\n\x1f\x7f", "\"\\u0001\\u0009\\u000a\\u001f\\u007f\""));
	TEST("json: valid UTF-8 (2, 3, 4 bytes) kept", esc_is("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\""));
	TEST("json: '<' as \\u003c, invalid UTF-8 as U+FFFD", esc_is("</script>\xc3(\xed\xa0\x80", "\"\\u003c/script>\\ufffd(\\ufffd\\ufffd\\ufffd\""));
	{
		struct strbuf s = { 0 };
		char o[16];

		strbuf_json_strn(&s, "a\0b\xe2\x82", 5);   /* a NUL inside, a sequence cut by the length */
		TEST("json: with a length, NUL escaped and a cut sequence replaced", s.p && !strcmp(s.p, "\"a\\u0000b\\ufffd\\ufffd\""));
		strbuf_free(&s);
		TEST("json: json_escape stops at lim", json_escape(o, o + 3, "abcd") == NULL && json_escape(o, o + 4, "abcd") == o + 4);
	}
	TEST("json: invalid UTF-8 becomes U+FFFD, byte by byte",
	     esc_is("\xff", "\"\\ufffd\"") && esc_is("\x80x", "\"\\ufffdx\"") &&
	     esc_is("\xc0\x80", "\"\\ufffd\\ufffd\"") &&          /* overlong */
	     esc_is("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"") && /* surrogate */
	     esc_is("\xe2\x82", "\"\\ufffd\\ufffd\"") &&          /* truncated */
	     esc_is("\xf5\x80\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"") &&  /* beyond U+10FFFF */
	     esc_is("\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"") &&
	     esc_is("\xe0\x9f\xbf", "\"\\ufffd\\ufffd\\ufffd\""));
	TEST("json: empty and NULL", esc_is("", "\"\"") && esc_is(NULL, "\"\""));
}

static int balanced(const char *s)
{
	int depth = 0, in = 0;

	for (; *s; s++) {
		if (in) {
			if (*s == '\\' && s[1])
				s++;
			else if (*s == '"')
				in = 0;
			continue;
		}
		if (*s == '"')
			in = 1;
		else if (*s == '{' || *s == '[')
			depth++;
		else if (*s == '}' || *s == ']')
			if (--depth < 0)
				return 0;
		if ((unsigned char)*s < 0x20)
			return 0;
	}
	return depth == 0 && !in;
}

static void test_span_json(void)
{
	struct metrics_req m = { .reporter = "source", .src_workload = "productpage-v1", .src_version = "v1",
		.dst_service = "reviews.default.svc.cluster.local", .dst_workload = "reviews-v2", .dst_version = "v2",
		.security = "mutual_tls", .dst_principal = "spiffe://cluster.local/ns/default/sa/bookinfo-reviews",
		.flags = "-", .code = 200 };
	struct trace_ctx t = { .trace_hi = 0x0af7651916cd43ddULL, .trace_lo = 0x8448eb211c80319cULL,
		.parent_id = 0xb7ad6b7169203331ULL, .span_id = 0x00f067aa0ba902b7ULL, .flags = TRACE_F_SAMPLED };
	struct trace_req r = { .m = &m, .server = 0, .service = "productpage", .namespace = "default", .version = "v1",
		.port = 9080, .method = "GET", .authority = "reviews:9080", .path = "/reviews/0?x=\"1\"",
		.protocol = "HTTP/1.1", .request_id = "rid-1", .user_agent = "ua \"q\"\x01",
		.cluster = "outbound|9080||reviews.default.svc.cluster.local", .upstream = "127.0.0.1:15236",
		.peer_ip = "127.0.0.1", .peer_identity = m.dst_principal, .retries = 2, .req_bytes = 0, .resp_bytes = 441,
		.start = 1764100000.25, .end = 1764100000.2575, .queue = 0.0001, .connect = 0.0005, .upstream_time = 0.006 };
	struct strbuf s = { 0 };

	trace_span_json(&s, &t, &r);
	TEST("span: a balanced JSON object without raw control bytes", s.p && s.p[0] == '{' && balanced(s.p));
	TEST("span: ids, parent, kind CLIENT, Istio's default name",
	     s.p && strstr(s.p, "{\"traceId\":\"0af7651916cd43dd8448eb211c80319c\",\"id\":\"00f067aa0ba902b7\","
	                        "\"parentId\":\"b7ad6b7169203331\",\"kind\":\"CLIENT\","
	                        "\"name\":\"reviews.default.svc.cluster.local:9080/*\""));
	TEST("span: timestamp and duration in microseconds",
	     s.p && strstr(s.p, "\"timestamp\":1764100000250000,\"duration\":7500,"));
	TEST("span: localEndpoint service.namespace, remoteEndpoint the upstream address",
	     s.p && strstr(s.p, "\"localEndpoint\":{\"serviceName\":\"productpage.default\"}") &&
	     strstr(s.p, "\"remoteEndpoint\":{\"ipv4\":\"127.0.0.1\",\"port\":15236}"));
	TEST("span: tags (service, version, http, retries, flags, cluster, endpoint, identity, timing)",
	     s.p && strstr(s.p, "\"istio.canonical_service\":\"productpage\"") &&
	     strstr(s.p, "\"istio.canonical_revision\":\"v1\"") && strstr(s.p, "\"http.method\":\"GET\"") &&
	     strstr(s.p, "\"http.url\":\"http://reviews:9080/reviews/0?x=\\\"1\\\"\"") &&
	     strstr(s.p, "\"http.status_code\":\"200\"") && strstr(s.p, "\"mesh.retries\":\"2\"") &&
	     strstr(s.p, "\"response_flags\":\"-\"") && strstr(s.p, "\"upstream_address\":\"127.0.0.1:15236\"") &&
	     strstr(s.p, "\"upstream_cluster\":\"outbound|9080||reviews.default.svc.cluster.local\"") &&
	     strstr(s.p, "\"peer.identity\":\"spiffe://cluster.local/ns/default/sa/bookinfo-reviews\"") &&
	     strstr(s.p, "\"destination_version\":\"v2\"") && strstr(s.p, "\"guid:x-request-id\":\"rid-1\"") &&
	     strstr(s.p, "\"user_agent\":\"ua \\\"q\\\"\\u0001\"") && strstr(s.p, "\"mesh.timing.queue_us\":\"100\"") &&
	     strstr(s.p, "\"mesh.timing.connect_us\":\"500\"") && strstr(s.p, "\"mesh.timing.upstream_us\":\"6000\"") &&
	     strstr(s.p, "\"mesh.timing.total_us\":\"7500\"") && !strstr(s.p, "\"error\""));
	strbuf_free(&s);

	/* a SERVER span, root, 503 from a route: error=true, the route's name, IPv6 peer */
	t.parent_id = 0;
	m.code = 503;
	m.flags = "UF";
	r.server = 1;
	r.name = "reviews/jason";
	r.peer_ip = "::1";
	r.queue = r.connect = r.upstream_time = -1;
	r.start = r.end = 1764100000.0;
	trace_span_json(&s, &t, &r);
	TEST("span: root has no parentId; SERVER; a route's name",
	     s.p && !strstr(s.p, "parentId") && strstr(s.p, "\"kind\":\"SERVER\",\"name\":\"reviews/jason\"") &&
	     strstr(s.p, "\"mesh.route\":\"reviews/jason\""));
	TEST("span: 5xx is error=true with its flag; an IPv6 peer; a zero duration reads 1us; no timing for steps that did not happen",
	     s.p && strstr(s.p, "\"error\":\"true\"") && strstr(s.p, "\"response_flags\":\"UF\"") &&
	     strstr(s.p, "\"remoteEndpoint\":{\"ipv6\":\"::1\"}") && strstr(s.p, "\"duration\":1,") &&
	     !strstr(s.p, "queue_us") && !strstr(s.p, "connect_us") && strstr(s.p, "total_us\":\"0\"") && balanced(s.p));
	strbuf_free(&s);
	m.code = 0;
	r.upstream = "[::1]:8080";
	r.server = 0;
	r.name = NULL;
	m.dst_service = NULL;
	r.peer_ip = "not an ip";
	trace_span_json(&s, &t, &r);
	TEST("span: no response (code 0) is an error; [v6]:port endpoint; name from the authority",
	     s.p && strstr(s.p, "\"http.status_code\":\"0\"") && strstr(s.p, "\"error\":\"true\"") &&
	     strstr(s.p, "\"remoteEndpoint\":{\"ipv6\":\"::1\",\"port\":8080}") &&
	     strstr(s.p, "\"name\":\"reviews:9080/*\""));
	strbuf_free(&s);
	r.upstream = "garbage:1:2";
	trace_span_json(&s, &t, &r);
	TEST("span: an address that is not one gives no remoteEndpoint", s.p && !strstr(s.p, "remoteEndpoint") && balanced(s.p));
	strbuf_free(&s);

	/* strings far over the room tried first (each '"' takes two bytes, a control byte six) */
	{
		static char path[6001], want[24200];
		size_t i, n = 0;

		path[0] = '/';
		for (i = 1; i < sizeof(path) - 1; i++)
			path[i] = i % 2 ? '"' : '\x01';
		n += (size_t)sprintf(want, "\"http.url\":\"http://reviews:9080/");
		for (i = 1; i < sizeof(path) - 1; i++)
			n += (size_t)sprintf(want + n, i % 2 ? "\\\"" : "\\u0001");
		strbuf_append(&s, "[", 1);
		r.path = path;
		trace_span_json(&s, &t, &r);
		TEST("span: a 6000-byte path of quotes and control bytes is escaped whole (the room grows), after what was there",
		     s.p && !strncmp(s.p, "[{", 2) && balanced(s.p + 1) && strstr(s.p, want) && s.len > 24000);
		strbuf_free(&s);
	}
	/* strings that end just short of the first room, then keys, then a long one: every length
	 * around it, with the buffer's end right at the room reserved (ASan sees a write past it) */
	{
		static char path[2200], ua[3001], fill[4096];
		size_t len, ok = 0, tries = 0;

		memset(ua, 'u', sizeof(ua) - 1);
		memset(fill, ' ', sizeof(fill) - 1);
		r.user_agent = ua;
		r.path = path;
		for (len = 1600; len < 2100; len += 3, tries++) {
			memset(path, 'p', len);
			path[0] = '/';
			path[len] = 0;
			strbuf_append(&s, fill, sizeof(fill) - 1);   /* cap 4096; the span's 4096 make it 8192 exactly */
			trace_span_json(&s, &t, &r);
			ok += s.p && balanced(s.p + sizeof(fill) - 1) && strstr(s.p, ua) && strstr(s.p, path);
			strbuf_free(&s);
		}
		TEST("span: a long string after others that filled the first room to any point is written whole, within the buffer",
		     ok == tries);
	}
}

static void test_queue(void)
{
	struct trace_ctx t = { .trace_lo = 1, .span_id = 2, .flags = TRACE_F_SAMPLED };
	struct metrics_req m = { .code = 200 };
	struct trace_req r = { .m = &m, .start = 1, .end = 2 };
	struct strbuf out = { 0 };
	int i;

	trace_record(&t, &r);
	TEST("queue: no collector, nothing recorded", T.n_pending == 0 && !trace_collecting());
	T.loop = ev_loop_new(EVFLAG_AUTO);
	T.collector.set = 1;
	snprintf(T.collector.text, sizeof(T.collector.text), "127.0.0.1:9");
	T.max_queue = 3;
	T.fd = open("/dev/null", O_RDONLY);    /* a batch in flight: new spans wait in the queue */
	t.flags = 0;
	trace_record(&t, &r);
	TEST("queue: an unsampled request records nothing", T.n_pending == 0);
	t.flags = TRACE_F_SAMPLED;
	for (i = 0; i < 5; i++)
		trace_record(&t, &r);
	TEST("queue: bounded at max_queue; the rest dropped and counted", T.n_pending == 3 && trace_spans_dropped == 2);
	TEST("queue: the batch is span objects joined by commas",
	     T.pending.p && T.pending.p[0] == '{' && balanced(T.pending.p) && strstr(T.pending.p, "}},{\"traceId\""));
	trace_metrics(&out);
	TEST("metrics: mesh_trace_* counters and the queue gauge",
	     out.p && strstr(out.p, "# TYPE mesh_trace_spans_dropped_total counter\nmesh_trace_spans_dropped_total 2\n") &&
	     strstr(out.p, "mesh_trace_spans_sent_total 0\n") && strstr(out.p, "mesh_trace_spans_queued 3\n") &&
	     strstr(out.p, "mesh_trace_spans_total 3\n"));
	strbuf_free(&out);
	trace_stop();
	TEST("stop: spans still queued count as dropped, memory freed", trace_spans_dropped == 5 && !T.pending.p &&
	     !T.n_pending && !trace_collecting() && T.fd == -1);
	ev_loop_destroy(T.loop);
	T.loop = NULL;
}

static struct conf *load(const char *text, char *err, size_t n)
{
	return conf_load_string("t.ini", text, err, n);
}

static void test_conf(void)
{
	char err[2048];
	struct conf *c, *c2;
	char *r, *r2;

	c = load("[mesh]\n", err, sizeof(err));
	TEST("conf: defaults: sampling 1%, no collector, max_queue 1024",
	     c && c->tracing.sampling == 1 && !c->tracing.collector.set && c->tracing.max_queue == 1024);
	r = c ? conf_render(c) : NULL;
	TEST("conf: render shows the defaults", r && strstr(r, "\n[tracing]\nsampling  = 1\nmax_queue = 1024\n"));
	free(r);
	conf_unref(c);

	c = load("[tracing]\nsampling = 12.5\ncollector = 127.0.0.1:9411\nmax_queue = 50\n", err, sizeof(err));
	TEST("conf: sampling, collector, max_queue", c && c->tracing.sampling == 12.5 && c->tracing.collector.set &&
	     !strcmp(c->tracing.collector.text, "127.0.0.1:9411") && c->tracing.max_queue == 50);
	r = c ? conf_render(c) : NULL;
	c2 = r ? load(r, err, sizeof(err)) : NULL;
	r2 = c2 ? conf_render(c2) : NULL;
	TEST("conf: render round trip", r && strstr(r, "collector = 127.0.0.1:9411\n") && r2 && !strcmp(r, r2) &&
	     c2->tracing.sampling == 12.5 && c2->tracing.max_queue == 50);
	free(r);
	free(r2);
	conf_unref(c);
	conf_unref(c2);

	c = load("[tracing]\ncollector = localhost:9411\n", err, sizeof(err));
	TEST("conf: collector = localhost:9411", c && !strcmp(c->tracing.collector.text, "127.0.0.1:9411"));
	conf_unref(c);

	c = load("[mesh]\n\n[tracing]\nsampling = 101\n", err, sizeof(err));
	TEST("conf: sampling 101 refused at file:line", !c && strstr(err, "t.ini:4:") && strstr(err, "sampling"));
	c = load("[tracing]\nsampling = 0.00001\n", err, sizeof(err));
	TEST("conf: sampling with 5 decimals refused", !c && strstr(err, "t.ini:2:") && strstr(err, "decimals"));
	c = load("[tracing]\nsampling = -1\n", err, sizeof(err));
	TEST("conf: negative sampling refused", !c && strstr(err, "t.ini:2:"));
	c = load("[tracing]\ncollector = zipkin.example:9411\n", err, sizeof(err));
	TEST("conf: a collector host name is refused (no DNS)", !c && strstr(err, "t.ini:2:") && strstr(err, "collector"));
	c = load("[tracing]\ncollector = 127.0.0.1\n", err, sizeof(err));
	TEST("conf: a collector without port is refused", !c && strstr(err, "t.ini:2:"));
	c = load("[tracing]\nmax_queue = 0\n", err, sizeof(err));
	TEST("conf: max_queue 0 refused", !c && strstr(err, "t.ini:2:") && strstr(err, "max_queue"));
	c = load("[tracing]\nmax_queue = 100001\n", err, sizeof(err));
	TEST("conf: max_queue over 100000 refused", !c && strstr(err, "t.ini:2:"));
	c = load("[tracing]\nsamplng = 5\n", err, sizeof(err));
	TEST("conf: a misspelled key gets a suggestion", !c && strstr(err, "t.ini:2:") && strstr(err, "sampling"));
	c = load("[tracing]\nsampling = 5\nsampling = 6\n", err, sizeof(err));
	TEST("conf: a key twice is refused", !c && strstr(err, "t.ini:3:"));
	c = load("[tracing]\n[tracing]\n", err, sizeof(err));
	TEST("conf: [tracing] twice is refused", !c && strstr(err, "t.ini:2:"));
	c = load("[tracing x]\n", err, sizeof(err));
	TEST("conf: [tracing NAME] is refused", !c && strstr(err, "t.ini:1:"));
	c = load("[tracng]\n", err, sizeof(err));
	TEST("conf: a misspelled section suggests [tracing]", !c && strstr(err, "[tracing]"));
}

static void test_mesh_file(void)
{
	char dir[] = "/tmp/test_trace.XXXXXX", p1[64], p2[64], err[2048];
	struct conf *c;
	FILE *f;

	if (!mkdtemp(dir)) {
		TEST("mesh file: temp dir", 0);
		return;
	}
	snprintf(p1, sizeof(p1), "%s/proxy.ini", dir);
	snprintf(p2, sizeof(p2), "%s/mesh.ini", dir);
	f = fopen(p1, "w");
	fputs("[control]\nmesh = mesh.ini\n", f);
	fclose(f);
	f = fopen(p2, "w");
	fputs("[tracing]\nsampling = 100\ncollector = 127.0.0.1:9411\n", f);
	fclose(f);
	c = conf_load(p1, err, sizeof(err));
	TEST("mesh file: [tracing] belongs to the mesh part", c && c->tracing.sampling == 100 && c->tracing.collector.set);
	conf_unref(c);
	unlink(p1);
	unlink(p2);
	rmdir(dir);
}

int main(void)
{
	test_w3c();
	test_b3_single();
	test_b3_multi();
	test_start_sampling();
	test_inject();
	test_json();
	test_span_json();
	test_queue();
	test_conf();
	test_mesh_file();
	return test_report();
}
