/*
 * libFuzzer target for trace's header parsing and span output. The input is
 * read as header lines ("name: value", one per '\n'), each copied into an
 * exactly-sized heap block so ASan sees any over-read. Invariants:
 *  - a context that was accepted has a non-zero trace id and parent span;
 *  - after trace_start the span id is new and non-zero, the trace id set;
 *  - what trace_inject writes fits TRACE_INJECT_MAX, every header in it is
 *    one trace_is_header replaces, and reading it back gives the same trace,
 *    our span as the parent and the same sampling decision (W3C first, and
 *    the b3 and x-b3-* forms alone);
 *  - a span built from the input's values is one JSON object: balanced,
 *    no raw control bytes, valid UTF-8 throughout.
 */
#define _GNU_SOURCE 1   /* accept4 in net.c (build.sh fuzz passes no -D_GNU_SOURCE) */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "../../modules/buf.c"
#include "../../modules/log.c"
#include "../../modules/http1.c"
#include "../../modules/net.c"
#include "../../modules/trace.c"

#define MAXH 12

static void check_json(const char *s, size_t n)
{
	int depth = 0, in = 0;
	size_t i = 0, l;

	while (i < n) {
		unsigned char ch = (unsigned char)s[i];

		assert(ch >= 0x20);
		if (ch >= 0x80) {
			l = utf8_len((const unsigned char *)s + i, n - i);
			assert(l > 0 && in);
			i += l;
			continue;
		}
		if (in) {
			if (ch == '\\') {
				assert(i + 1 < n);
				i++;
			} else if (ch == '"') {
				in = 0;
			}
		} else if (ch == '"') {
			in = 1;
		} else if (ch == '{' || ch == '[') {
			depth++;
		} else if (ch == '}' || ch == ']') {
			depth--;
			assert(depth >= 0);
		}
		i++;
	}
	assert(depth == 0 && !in);
}

static void round_trip(const struct trace_ctx *t, const char *out, size_t n, int drop)
{
	struct http1_header h[8];
	struct trace_ctx back;
	size_t k = 0;
	const char *line = out, *end = out + n;

	while (line < end && k < 8) {
		const char *eol = memchr(line, '\r', (size_t)(end - line));
		const char *colon = memchr(line, ':', (size_t)(eol - line));

		assert(eol && colon && eol[1] == '\n');
		h[k].name = line;
		h[k].name_len = (size_t)(colon - line);
		h[k].value = colon + 2;
		h[k].value_len = (size_t)(eol - colon - 2);
		assert(trace_is_header(h[k].name, h[k].name_len));
		if (!(drop == 1 && h[k].name_len == 11 && !memcmp(h[k].name, "traceparent", 11)) &&
		    !(drop == 2 && ((h[k].name_len == 11 && !memcmp(h[k].name, "traceparent", 11)) ||
		                    (h[k].name_len == 2 && !memcmp(h[k].name, "b3", 2)))))
			k++;
		line = eol + 2;
	}
	trace_extract(&back, h, k);
	assert(back.src == (drop == 0 ? TRACE_SRC_W3C : drop == 1 ? TRACE_SRC_B3_SINGLE : TRACE_SRC_B3));
	assert(back.trace_hi == t->trace_hi && back.trace_lo == t->trace_lo);
	assert(back.parent_id == t->span_id);
	assert(!!(back.flags & TRACE_F_SAMPLED) == !!(t->flags & TRACE_F_SAMPLED));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http1_header h[MAXH];
	char *copies[MAXH];
	size_t n = 0, i, off = 0;
	struct trace_ctx t;
	enum trace_src src;
	char out[TRACE_INJECT_MAX];
	size_t olen;

	while (off < size && n < MAXH) {
		const uint8_t *nl = memchr(data + off, '\n', size - off);
		size_t len = nl ? (size_t)(nl - (data + off)) : size - off;
		const uint8_t *colon = memchr(data + off, ':', len);
		char *c = malloc(len ? len : 1);

		memcpy(c, data + off, len);
		copies[n] = c;
		if (colon) {
			size_t nl_ = (size_t)(colon - (data + off)), vs = nl_ + 1;

			while (vs < len && c[vs] == ' ')
				vs++;
			h[n].name = c;
			h[n].name_len = nl_;
			h[n].value = c + vs;
			h[n].value_len = len - vs;
		} else {
			h[n].name = c;
			h[n].name_len = len;
			h[n].value = c + len;
			h[n].value_len = 0;
		}
		(void)trace_is_header(h[n].name, h[n].name_len);
		n++;
		off += len + 1;
	}

	memset(&t, 0, sizeof(t));
	src = trace_extract(&t, h, n);
	if (src != TRACE_SRC_NONE)
		assert((t.trace_hi | t.trace_lo) && t.parent_id);
	else
		assert(!(t.trace_hi | t.trace_lo) && !t.parent_id);
	{
		uint64_t before_hi = t.trace_hi, before_lo = t.trace_lo, before_parent = t.parent_id;
		unsigned before_flags = t.flags;

		trace_start(&t, size ? (double)(data[0] % 101) : 1);
		assert(t.span_id && (t.trace_hi | t.trace_lo));
		if (src != TRACE_SRC_NONE)
			assert(t.trace_hi == before_hi && t.trace_lo == before_lo && t.parent_id == before_parent);
		if (before_flags & TRACE_F_DECIDED)
			assert((t.flags & TRACE_F_SAMPLED) == (before_flags & TRACE_F_SAMPLED));
	}
	olen = trace_inject(&t, out, sizeof(out));
	assert(olen > 0 && olen <= TRACE_INJECT_MAX);
	round_trip(&t, out, olen, 0);
	round_trip(&t, out, olen, 1);
	round_trip(&t, out, olen, 2);

	{
		/* the input's values as the strings a span carries */
		struct metrics_req m = { .code = size ? data[size - 1] * 3 : 0, .flags = "-" };
		const char *v0 = n > 0 ? strndup(h[0].value, h[0].value_len) : NULL;
		const char *v1 = n > 1 ? strndup(h[1].value, h[1].value_len) : NULL;
		const char *v2 = n > 2 ? strndup(h[2].value, h[2].value_len) : NULL;
		struct trace_req r = { .m = &m, .server = (int)(size & 1), .service = v0, .namespace = v1,
			.name = v2, .method = v1, .authority = v0, .path = v2, .user_agent = v0, .request_id = v1,
			.upstream = v0, .peer_ip = v1, .cluster = v2, .start = 1, .end = 2, .queue = -1, .connect = 0.5,
			.upstream_time = 0.25 };
		struct strbuf s = { 0 };

		m.dst_service = v2;
		m.src_workload = v0;
		trace_span_json(&s, &t, &r);
		assert(s.p && !s.oom);
		check_json(s.p, s.len);
		strbuf_free(&s);
		free((void *)v0);
		free((void *)v1);
		free((void *)v2);
	}
	for (i = 0; i < n; i++)
		free(copies[i]);
	return 0;
}
