/*
 * trace: trace context in and out of the proxy, spans to a Zipkin collector.
 *
 * Data enters as request headers (trace_begin, from stream_start): W3C
 * `traceparent` (tracestate is never touched: it passes through), else B3's
 * single `b3` header, else the x-b3-* headers. A context that fails any check
 * of its spec counts as absent, never as an error: the request goes on with a
 * new trace. Each hop gets its own span id, the incoming span as its parent,
 * so the chain reads client span -> server span -> client span ... (W3C style;
 * B3's shared client/server span ids are not used). The sampling decision of
 * the caller wins; only a request without one is drawn at [tracing] sampling.
 *
 * Data leaves twice. trace_inject writes both header families into the
 * upstream request head (replacing what came in, see trace_is_header), so
 * apps that propagate either family keep the trace whole. trace_record turns
 * a sampled, finished request into a Zipkin v2 JSON span appended to a
 * bounded batch; the loop posts the batch (POST /api/v2/spans) to the
 * collector every second, or sooner when it fills, on a non-blocking
 * connection of its own, kept between batches when the collector allows.
 * One batch is in flight at a time; while it is, new
 * spans queue up to [tracing] max_queue and beyond that are dropped and
 * counted. A failed post drops its batch (counted too; a kept connection that
 * fails before any answer first gets it once more, new): tracing never holds
 * a request and never grows without bound.
 *
 * Ids come from xorshift64* seeded from getrandom: unique enough for traces,
 * not secrets. Nothing here allocates per request: the batch's JSON goes
 * into a growable buffer, reused between batches (two: pending and in flight
 * trade places). docs/tracing.md, "Overhead", says what a span costs.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <ev.h>

#include "log.h"
#include "net.h"
#include "trace.h"

#define TRACE_BATCH       256        /* post at once when this many spans (or half of max_queue) wait */
#define TRACE_FLUSH_EVERY 1.0        /* seconds between posts */
#define TRACE_POST_TIMEOUT 5.0       /* a post (connect, send, status line) must finish within */
#define TRACE_KEEP_BUF    (1u << 20) /* a batch buffer larger than this is freed after use */

uint64_t trace_spans_sent, trace_spans_dropped, trace_batches_failed;

static struct {
	struct ev_loop *loop;
	uint64_t rng;                /* xorshift64* state, 0 = not seeded */
	struct conf_addr collector;  /* set = spans are sent */
	uint32_t max_queue;
	struct strbuf pending;       /* JSON span objects, comma-separated */
	size_t n_pending;
	struct strbuf out;           /* the batch in flight (the pending buffer, traded) and "]" */
	char head[256];              /* the request head for it, ending in "[" (collector.text is < 64) */
	size_t head_len;
	size_t out_off;              /* bytes of head + out written */
	size_t n_inflight;           /* spans in it */
	int fd;                      /* the post's socket, -1 = none */
	struct conf_addr conn_to;    /* where fd is connected */
	int connecting;
	int idle;                    /* fd is kept for the next batch, no post in flight */
	int reused;                  /* the post in flight went on a kept connection */
	uint64_t discard;            /* idle: body bytes of the last answer still to come */
	char resp[1024];             /* the head of the collector's answer */
	size_t resp_len;
	int failing;                 /* the last post failed (logged once per change) */
	uint64_t recorded;           /* spans that entered the queue */
	ev_io io;
	ev_timer flush;              /* every TRACE_FLUSH_EVERY while a collector is set */
	ev_timer timeout;            /* the post in flight */
	int inited;
} T = { .fd = -1 };

/* ------------------------------------------------------------------ ids */

static uint64_t trace_rnd(void)
{
	if (!T.rng) {
		if (getrandom(&T.rng, sizeof(T.rng), 0) != sizeof(T.rng) || !T.rng)
			T.rng = (uint64_t)getpid() * 0x9e3779b97f4a7c15ULL + (uint64_t)(uintptr_t)&T;
		if (!T.rng)
			T.rng = 0x853c49e6748fea9bULL;
	}
	T.rng ^= T.rng >> 12;
	T.rng ^= T.rng << 25;
	T.rng ^= T.rng >> 27;
	return T.rng * 2685821657736338717ULL;
}

static uint64_t nonzero_id(void)
{
	uint64_t v;

	do
		v = trace_rnd();
	while (!v);
	return v;
}

static const char hexd[] = "0123456789abcdef";

static void put_hex64(char *out, uint64_t v)
{
	int i;

	for (i = 15; i >= 0; i--, v >>= 4)
		out[i] = hexd[v & 15];
}

void trace_span_hex(uint64_t id, char out[17])
{
	put_hex64(out, id);
	out[16] = 0;
}

void trace_id_hex(const struct trace_ctx *t, char out[33])
{
	put_hex64(out, t->trace_hi);
	put_hex64(out + 16, t->trace_lo);
	out[32] = 0;
}

/* n (1..16) lowercase hex digits -> *v; -1 on anything else (W3C and B3 both say lowercase) */
static int parse_hex(const char *s, size_t n, uint64_t *v)
{
	uint64_t r = 0;
	size_t i;

	if (!n || n > 16)
		return -1;
	for (i = 0; i < n; i++) {
		char ch = s[i];
		if (ch >= '0' && ch <= '9')
			r = r << 4 | (uint64_t)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			r = r << 4 | (uint64_t)(ch - 'a' + 10);
		else
			return -1;
	}
	*v = r;
	return 0;
}

/* a B3 trace id: 16 or 32 hex digits (a 64-bit id is the low half), not all zero */
static int parse_trace_id(const char *s, size_t n, uint64_t *hi, uint64_t *lo)
{
	if (n == 32) {
		if (parse_hex(s, 16, hi) < 0 || parse_hex(s + 16, 16, lo) < 0)
			return -1;
	} else if (n == 16) {
		*hi = 0;
		if (parse_hex(s, 16, lo) < 0)
			return -1;
	} else {
		return -1;
	}
	return (*hi | *lo) ? 0 : -1;
}

/* a span id: exactly 16 hex digits, not zero */
static int parse_span_id(const char *s, size_t n, uint64_t *id)
{
	if (n != 16 || parse_hex(s, 16, id) < 0 || !*id)
		return -1;
	return 0;
}

/* ------------------------------------------------------------------ extract */

static int name_is(const char *s, size_t n, const char *lit)
{
	size_t i;

	for (i = 0; i < n; i++) {
		char a = s[i];
		if (!lit[i])
			return 0;
		if (a >= 'A' && a <= 'Z')
			a = (char)(a - 'A' + 'a');
		if (a != lit[i])
			return 0;
	}
	return !lit[n];
}

/* traceparent: version-traceid-parentid-flags (W3C trace-context level 1) */
static int parse_traceparent(struct trace_ctx *t, const char *v, size_t n)
{
	uint64_t ver, hi, lo, parent, flags;

	if (n < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-')
		return -1;
	if (parse_hex(v, 2, &ver) < 0 || ver == 0xff)
		return -1;
	if (ver == 0 && n != 55)
		return -1;      /* version 00 is exactly 55 characters */
	if (ver > 0 && n > 55 && v[55] != '-')
		return -1;      /* a later version may only append "-..." */
	if (parse_hex(v + 3, 16, &hi) < 0 || parse_hex(v + 19, 16, &lo) < 0 || !(hi | lo))
		return -1;
	if (parse_span_id(v + 36, 16, &parent) < 0)
		return -1;
	if (parse_hex(v + 53, 2, &flags) < 0)
		return -1;
	t->trace_hi = hi;
	t->trace_lo = lo;
	t->parent_id = parent;
	t->flags = TRACE_F_DECIDED | ((flags & 1) ? TRACE_F_SAMPLED : 0);
	return 0;
}

/* a B3 sampling state: "1"/"0" ("true"/"false" from old tracers), "d" = debug */
static int parse_sampling(const char *v, size_t n, unsigned *flags)
{
	if ((n == 1 && v[0] == '1') || name_is(v, n, "true"))
		*flags = TRACE_F_DECIDED | TRACE_F_SAMPLED;
	else if ((n == 1 && v[0] == '0') || name_is(v, n, "false"))
		*flags = TRACE_F_DECIDED;
	else if (n == 1 && v[0] == 'd')
		*flags = TRACE_F_DECIDED | TRACE_F_SAMPLED | TRACE_F_DEBUG;
	else
		return -1;
	return 0;
}

/* b3: {traceid}-{spanid}[-{sampling}[-{parentspanid}]], or only {sampling} */
static int parse_b3_single(struct trace_ctx *t, const char *v, size_t n)
{
	const char *d1, *d2, *d3, *end = v + n;
	uint64_t hi, lo, span, parent;
	unsigned flags = 0;

	if (n == 1)
		return parse_sampling(v, n, &t->flags);
	d1 = memchr(v, '-', n);
	if (!d1)
		return -1;
	d2 = memchr(d1 + 1, '-', (size_t)(end - d1 - 1));
	if (parse_trace_id(v, (size_t)(d1 - v), &hi, &lo) < 0 ||
	    parse_span_id(d1 + 1, (size_t)((d2 ? d2 : end) - d1 - 1), &span) < 0)
		return -1;
	if (d2) {
		d3 = memchr(d2 + 1, '-', (size_t)(end - d2 - 1));
		if (parse_sampling(d2 + 1, (size_t)((d3 ? d3 : end) - d2 - 1), &flags) < 0)
			return -1;
		if (d3 && parse_span_id(d3 + 1, (size_t)(end - d3 - 1), &parent) < 0)
			return -1;
	}
	t->trace_hi = hi;
	t->trace_lo = lo;
	t->parent_id = span;
	t->flags = flags;
	return 0;
}

enum { H_TRACEPARENT = 0, H_B3, H_TRACEID, H_SPANID, H_SAMPLED, H_FLAGS, H_N };

enum trace_src trace_extract(struct trace_ctx *t, const struct http1_header *h, size_t n)
{
	const struct http1_header *seen[H_N] = { 0 };
	unsigned count[H_N] = { 0 };
	struct trace_ctx x;
	size_t i;
	int k;

	for (i = 0; i < n; i++) {
		const char *nm = h[i].name;
		size_t l = h[i].name_len;

		/* cheap filter first: every name we read starts with t, b or x */
		if (l < 2 || !(nm[0] == 't' || nm[0] == 'T' || nm[0] == 'b' || nm[0] == 'B' || nm[0] == 'x' ||
		               nm[0] == 'X'))
			continue;
		if (name_is(nm, l, "traceparent"))
			k = H_TRACEPARENT;
		else if (name_is(nm, l, "b3"))
			k = H_B3;
		else if (l < 10 || !name_is(nm, 5, "x-b3-"))
			continue;
		else if (name_is(nm + 5, l - 5, "traceid"))
			k = H_TRACEID;
		else if (name_is(nm + 5, l - 5, "spanid"))
			k = H_SPANID;
		else if (name_is(nm + 5, l - 5, "sampled"))
			k = H_SAMPLED;
		else if (name_is(nm + 5, l - 5, "flags"))
			k = H_FLAGS;
		else
			continue;
		seen[k] = &h[i];
		count[k]++;
	}
	/* a header sent twice is ambiguous: as if absent */
	for (k = 0; k < H_N; k++)
		if (count[k] > 1)
			seen[k] = NULL;
	memset(&x, 0, sizeof(x));
	if (seen[H_TRACEPARENT] && parse_traceparent(&x, seen[H_TRACEPARENT]->value, seen[H_TRACEPARENT]->value_len) == 0) {
		x.src = TRACE_SRC_W3C;
		goto done;
	}
	memset(&x, 0, sizeof(x));
	if (seen[H_B3] && parse_b3_single(&x, seen[H_B3]->value, seen[H_B3]->value_len) == 0) {
		/* "b3: 0" alone is a decision without a context */
		x.src = (x.trace_hi | x.trace_lo) ? TRACE_SRC_B3_SINGLE : TRACE_SRC_NONE;
		goto done;
	}
	memset(&x, 0, sizeof(x));
	if (seen[H_FLAGS] && seen[H_FLAGS]->value_len == 1 && seen[H_FLAGS]->value[0] == '1')
		x.flags = TRACE_F_DECIDED | TRACE_F_SAMPLED | TRACE_F_DEBUG;
	else if (seen[H_SAMPLED])
		parse_sampling(seen[H_SAMPLED]->value, seen[H_SAMPLED]->value_len, &x.flags);
	if (seen[H_TRACEID] && seen[H_SPANID] &&
	    parse_trace_id(seen[H_TRACEID]->value, seen[H_TRACEID]->value_len, &x.trace_hi, &x.trace_lo) == 0 &&
	    parse_span_id(seen[H_SPANID]->value, seen[H_SPANID]->value_len, &x.parent_id) == 0) {
		x.src = TRACE_SRC_B3;
	} else {
		x.trace_hi = x.trace_lo = x.parent_id = 0;   /* a sampling decision alone still counts */
		x.src = TRACE_SRC_NONE;
	}
done:
	*t = x;
	return x.src;
}

void trace_start(struct trace_ctx *t, double sampling_percent)
{
	if (!(t->trace_hi | t->trace_lo)) {
		t->trace_hi = nonzero_id();
		t->trace_lo = nonzero_id();
		t->parent_id = 0;
	}
	t->span_id = nonzero_id();
	if (!(t->flags & TRACE_F_DECIDED)) {
		/* percent with four decimals, as [tracing] sampling allows */
		uint64_t cut = (uint64_t)(sampling_percent * 10000.0 + 0.5);
		if (cut && trace_rnd() % 1000000 < cut)
			t->flags |= TRACE_F_SAMPLED;
	}
}

void trace_begin(struct trace_ctx *t, const struct http1_header *h, size_t n, double sampling_percent)
{
	trace_extract(t, h, n);
	trace_start(t, sampling_percent);
}

/* ------------------------------------------------------------------ inject */

int trace_is_header(const char *name, size_t len)
{
	switch (len) {
	case 2:
		return name_is(name, len, "b3");
	case 11:
		return name_is(name, len, "traceparent") || name_is(name, len, "x-b3-spanid");
	case 10:
	case 12:
	case 17:
		return name_is(name, 5, "x-b3-") && (name_is(name + 5, len - 5, "flags") || name_is(name + 5, len - 5, "traceid") ||
		                                  name_is(name + 5, len - 5, "sampled") ||
		                                  name_is(name + 5, len - 5, "parentspanid"));
	default:
		return 0;
	}
}

static char *put_str(char *o, const char *s)
{
	size_t n = strlen(s);

	memcpy(o, s, n);
	return o + n;
}

size_t trace_inject(const struct trace_ctx *t, char *out, size_t cap)
{
	char tid[33], sid[17], pid[17], *o = out;
	int sampled = !!(t->flags & TRACE_F_SAMPLED), debug = !!(t->flags & TRACE_F_DEBUG);

	if (!(t->trace_hi | t->trace_lo) || !t->span_id || cap < TRACE_INJECT_MAX)
		return 0;
	trace_id_hex(t, tid);
	trace_span_hex(t->span_id, sid);
	trace_span_hex(t->parent_id, pid);
	o = put_str(o, "traceparent: 00-");
	o = put_str(o, tid);
	*o++ = '-';
	o = put_str(o, sid);
	o = put_str(o, sampled ? "-01\r\n" : "-00\r\n");
	o = put_str(o, "x-b3-traceid: ");
	o = put_str(o, tid);
	o = put_str(o, "\r\nx-b3-spanid: ");
	o = put_str(o, sid);
	o = put_str(o, "\r\n");
	if (t->parent_id) {
		o = put_str(o, "x-b3-parentspanid: ");
		o = put_str(o, pid);
		o = put_str(o, "\r\n");
	}
	/* B3: debug implies sampled, and X-B3-Sampled is then left out */
	o = put_str(o, debug ? "x-b3-flags: 1\r\n" : sampled ? "x-b3-sampled: 1\r\n" : "x-b3-sampled: 0\r\n");
	o = put_str(o, "b3: ");
	o = put_str(o, tid);
	*o++ = '-';
	o = put_str(o, sid);
	o = put_str(o, debug ? "-d" : sampled ? "-1" : "-0");
	if (t->parent_id) {
		*o++ = '-';
		o = put_str(o, pid);
	}
	o = put_str(o, "\r\n");
	return (size_t)(o - out);
}

/* ------------------------------------------------------------------ span JSON */

/* Every sampled request goes through here, so no printf (musl's cost more than
 * the rest of the span together) and no strlen: the span is written at a cursor
 * into room reserved once, each string escaped and copied in one pass. Keys are
 * literals with their comma, quotes and colon. */

#define JKEY(k) ",\"" k "\":", sizeof(",\"" k "\":") - 1
#define PUT_LIT(o, lit) (memcpy((o), (lit), sizeof(lit) - 1), (o) + sizeof(lit) - 1)
#define SPAN_FIXED 2048      /* a span's bytes besides its strings' (ids, keys, numbers), at most */
#define SPAN_ROOM  2048      /* room for the strings tried first (a span is ~1 KB) */

/* ,"key":"v" with v escaped, strings not past lim; nothing for NULL or "".
 * NULL in or NULL out: out of room */
static char *tag(char *o, const char *lim, const char *key, size_t klen, const char *v)
{
	if (!o || !v || !*v)
		return o;
	memcpy(o, key, klen);
	o[klen] = '"';
	o = json_escape(o + klen + 1, lim, v);
	if (o)
		*o++ = '"';
	return o;
}

/* ,"key":N as a number, or as a string when q (Zipkin's tags are strings) */
static char *put_num(char *o, const char *key, size_t klen, uint64_t v, int q)
{
	char b[24], *s = u64_dec(b + sizeof(b), v);
	size_t n = (size_t)(b + sizeof(b) - s);

	if (!o)
		return NULL;
	memcpy(o, key, klen);
	o += klen;
	if (q)
		*o++ = '"';
	memcpy(o, s, n);
	o += n;
	if (q)
		*o++ = '"';
	return o;
}

static char *put_us(char *o, const char *key, size_t klen, double seconds)
{
	return seconds >= 0 ? put_num(o, key, klen, (uint64_t)(seconds * 1e6 + 0.5), 1) : o;
}

/* ,"remoteEndpoint":{"ipv4":"127.0.0.1","port":15236} from "127.0.0.1:15236",
 * "[::1]:80" or a bare address; nothing when it is not one (under 128 bytes) */
static char *put_endpoint(char *o, const char *addr)
{
	char host[64];
	const char *colon = NULL, *h = addr;
	size_t hl;
	unsigned long port = 0;
	unsigned char bin[16];
	int v6;

	if (!addr || !*addr)
		return o;
	if (*addr == '[') {
		const char *rb = strchr(addr, ']');
		if (!rb)
			return o;
		h = addr + 1;
		hl = (size_t)(rb - h);
		colon = rb[1] == ':' ? rb + 1 : NULL;
	} else {
		colon = strrchr(addr, ':');
		if (colon && strchr(addr, ':') != colon)
			colon = NULL;     /* a bare IPv6 address */
		hl = colon ? (size_t)(colon - addr) : strlen(addr);
	}
	if (hl >= sizeof(host))
		return o;
	memcpy(host, h, hl);
	host[hl] = 0;
	v6 = memchr(host, ':', hl) != NULL;
	if (inet_pton(v6 ? AF_INET6 : AF_INET, host, bin) != 1)
		return o;             /* (and so host needs no escaping) */
	if (colon)
		port = strtoul(colon + 1, NULL, 10);
	o = v6 ? PUT_LIT(o, ",\"remoteEndpoint\":{\"ipv6\":\"") : PUT_LIT(o, ",\"remoteEndpoint\":{\"ipv4\":\"");
	memcpy(o, host, hl);
	o += hl;
	*o++ = '"';
	if (port > 0 && port < 65536)
		o = put_num(o, JKEY("port"), port, 0);
	*o++ = '}';
	return o;
}

/* the span at o; strings end before lim, the rest takes at most SPAN_FIXED more;
 * NULL when the strings did not fit */
static char *span_write(char *o, const char *lim, const struct trace_ctx *t, const struct trace_req *r)
{
	const struct metrics_req *m = r->m;
	uint64_t dur = r->end > r->start ? (uint64_t)((r->end - r->start) * 1e6 + 0.5) : 0;
	int code = m ? m->code : 0;

	o = PUT_LIT(o, "{\"traceId\":\"");
	trace_id_hex(t, o);
	o = PUT_LIT(o + 32, "\",\"id\":\"");
	put_hex64(o, t->span_id);
	o += 16;
	if (t->parent_id) {
		o = PUT_LIT(o, "\",\"parentId\":\"");
		put_hex64(o, t->parent_id);
		o += 16;
	}
	o = r->server ? PUT_LIT(o, "\",\"kind\":\"SERVER\",\"name\":\"") : PUT_LIT(o, "\",\"kind\":\"CLIENT\",\"name\":\"");
	/* Istio's default name: <destination service FQDN>:<port>/(star) */
	if (r->name && *r->name) {
		o = json_escape(o, lim, r->name);
	} else if (m && m->dst_service) {
		o = json_escape(o, lim, m->dst_service);
		o = put_num(o, ":", 1, r->port, 0);
	} else {
		o = json_escape(o, lim, r->authority && *r->authority ? r->authority : "unknown");
	}
	if (!o)
		return NULL;
	o = r->name && *r->name ? PUT_LIT(o, "\"") : PUT_LIT(o, "/*\"");
	o = put_num(o, JKEY("timestamp"), (uint64_t)(r->start * 1e6), 0);
	o = put_num(o, JKEY("duration"), dur ? dur : 1, 0);   /* Zipkin reads 0 as "unknown" */
	if (t->flags & TRACE_F_DEBUG)
		o = PUT_LIT(o, ",\"debug\":true");
	o = PUT_LIT(o, ",\"localEndpoint\":{\"serviceName\":\"");
	o = json_escape(o, lim, r->service ? r->service : "unknown");
	if (!o || lim - o < 1)
		return NULL;
	*o++ = '.';
	o = json_escape(o, lim, r->namespace ? r->namespace : "default");
	if (!o)
		return NULL;
	o = PUT_LIT(o, "\"}");
	o = put_endpoint(o, r->server ? r->peer_ip : r->upstream);
	/* component first: every later tag starts with its comma */
	o = PUT_LIT(o, ",\"tags\":{\"component\":\"proxy\"");
	o = tag(o, lim, JKEY("istio.canonical_service"), r->service);
	o = tag(o, lim, JKEY("istio.canonical_revision"), r->version ? r->version : "unknown");
	o = tag(o, lim, JKEY("istio.namespace"), r->namespace);
	o = tag(o, lim, JKEY("mesh.route"), r->name);
	o = tag(o, lim, JKEY("http.method"), r->method);
	if (!o)
		return NULL;
	o = PUT_LIT(o, ",\"http.url\":\"http://");
	if (r->authority)
		o = json_escape(o, lim, r->authority);
	if (o && r->path)
		o = json_escape(o, lim, r->path);
	if (!o)
		return NULL;
	*o++ = '"';
	o = tag(o, lim, JKEY("http.protocol"), r->protocol);
	o = put_num(o, JKEY("http.status_code"), (uint64_t)(code > 0 ? code : 0), 1);
	o = tag(o, lim, JKEY("response_flags"), m && m->flags ? m->flags : "-");
	if (code <= 0 || code >= 500)
		o = tag(o, lim, JKEY("error"), "true");
	o = put_num(o, JKEY("request_size"), r->req_bytes, 1);
	o = put_num(o, JKEY("response_size"), r->resp_bytes, 1);
	o = tag(o, lim, JKEY("upstream_cluster"), r->cluster);
	o = tag(o, lim, JKEY("upstream_address"), r->upstream);
	o = tag(o, lim, JKEY("peer.address"), r->peer_ip);
	o = tag(o, lim, JKEY("peer.identity"), r->peer_identity);
	o = tag(o, lim, JKEY("connection_security_policy"), m && m->security ? m->security : "none");
	if (m) {
		o = tag(o, lim, JKEY("source_workload"), m->src_workload);
		o = tag(o, lim, JKEY("source_version"), m->src_version);
		o = tag(o, lim, JKEY("destination_service"), m->dst_service);
		o = tag(o, lim, JKEY("destination_workload"), m->dst_workload);
		o = tag(o, lim, JKEY("destination_version"), m->dst_version);
	}
	o = put_num(o, JKEY("mesh.retries"), r->retries, 1);
	o = tag(o, lim, JKEY("guid:x-request-id"), r->request_id);
	o = tag(o, lim, JKEY("user_agent"), r->user_agent);
	o = put_us(o, JKEY("mesh.timing.queue_us"), r->queue);
	o = put_us(o, JKEY("mesh.timing.connect_us"), r->connect);
	o = put_us(o, JKEY("mesh.timing.upstream_us"), r->upstream_time);
	o = put_us(o, JKEY("mesh.timing.total_us"), r->end - r->start);
	return o ? PUT_LIT(o, "}}") : NULL;
}

void trace_span_json(struct strbuf *out, const struct trace_ctx *t, const struct trace_req *r)
{
	size_t room = SPAN_ROOM;
	char *o, *end;

	/* strings longer than the room are rare (a long path or user agent): more room */
	for (;; room *= 4) {
		o = strbuf_reserve(out, room + SPAN_FIXED);
		if (!o)
			return;
		end = span_write(o, o + room, t, r);
		if (end) {
			strbuf_commit(out, end);
			return;
		}
	}
}

/* ------------------------------------------------------------------ the sender */

/* The post's connection stays open for the next batch when the collector
 * allows (HTTP/1.1, a Content-Length body, no Connection: close): Zipkin and
 * Jaeger do, and at 100% sampling a new connection per batch was a third of
 * the sender's cost. A kept connection the collector has closed meanwhile
 * shows up as an error before any answer: the batch goes once more on a new
 * connection. */

static void post_done(const char *why);
static void post_next(void);
static void flush_now(void);

static void post_close(void)
{
	if (T.fd >= 0) {
		ev_io_stop(T.loop, &T.io);
		ev_timer_stop(T.loop, &T.timeout);
		close(T.fd);
		T.fd = -1;
	}
	T.idle = 0;
}

/* the batch in flight is sent, answered or given up: its buffer is free again */
static void out_release(void)
{
	T.out.len = 0;
	T.out_off = 0;
	if (T.out.cap > TRACE_KEEP_BUF) {
		strbuf_free(&T.out);
		memset(&T.out, 0, sizeof(T.out));
	}
}

static void post_connect(void)
{
	int inprog = 0;

	T.reused = 0;
	T.out_off = 0;
	T.resp_len = 0;
	T.fd = net_connect((const struct sockaddr *)&T.collector.ss, T.collector.len, &inprog);
	if (T.fd < 0) {
		post_done(strerror(errno));
		return;
	}
	T.conn_to = T.collector;
	T.connecting = 1;
	ev_io_set(&T.io, T.fd, EV_WRITE);
	ev_io_start(T.loop, &T.io);
	ev_timer_set(&T.timeout, TRACE_POST_TIMEOUT, 0.);
	ev_timer_start(T.loop, &T.timeout);
}

/* a kept connection that fails before any answer was closed by the collector
 * while idle: the batch goes again, once, on a new one */
static void post_failed(const char *why)
{
	if (T.reused && !T.resp_len) {
		post_close();
		post_connect();
		return;
	}
	post_done(why);
}

/* the post is over: why = NULL for success (keep: the connection may serve the next) */
static void post_over(const char *why, int keep)
{
	size_t n = T.n_inflight;

	T.n_inflight = 0;
	if (keep) {
		ev_timer_stop(T.loop, &T.timeout);
		ev_io_stop(T.loop, &T.io);
		ev_io_set(&T.io, T.fd, EV_READ);   /* idle: only the collector closing it or the rest of an answer */
		ev_io_start(T.loop, &T.io);
		T.idle = 1;
	} else {
		post_close();
	}
	out_release();
	if (!why) {
		trace_spans_sent += n;
		if (T.failing)
			log_info("trace collector %s: spans are being sent again", T.collector.text);
		T.failing = 0;
	} else {
		trace_spans_dropped += n;
		trace_batches_failed++;
		if (!T.failing)
			log_warn("trace collector %s: %s; dropping %zu spans (and later ones until it answers)",
			         T.collector.text, why, n);
		T.failing = 1;
	}
	/* (from flush_now, nothing is pending any more: no recursion) */
	post_next();
}

static void post_done(const char *why)
{
	post_over(why, 0);
}

/* spans that make a batch worth posting before the next tick */
static size_t batch_size(void)
{
	size_t half = T.max_queue / 2;

	return half < 1 ? 1 : half < TRACE_BATCH ? half : TRACE_BATCH;
}

/* the post is over: the next batch goes at once when a full one waits */
static void post_next(void)
{
	if (T.n_pending >= batch_size())
		flush_now();
}

/* the rest of the request: the head, then the batch (no copy of it) */
static ssize_t post_send(void)
{
	struct iovec v[2];
	struct msghdr mh;
	size_t off = T.out_off;
	int n = 0;

	if (off < T.head_len) {
		v[n++] = (struct iovec){ T.head + off, T.head_len - off };
		off = 0;
	} else {
		off -= T.head_len;
	}
	v[n++] = (struct iovec){ T.out.p + off, T.out.len - off };
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = v;
	mh.msg_iovlen = (size_t)n;
	return sendmsg(T.fd, &mh, MSG_NOSIGNAL);
}

/* the answer's head is in T.resp: 2xx is success; the connection stays when the body's end is known */
static void post_answered(void)
{
	struct http1_header hdrs[32];
	struct http1_limits lim = { sizeof(T.resp), sizeof(T.resp), 32 };
	struct http1_msg m;
	int r, keep;

	memset(&m, 0, sizeof(m));
	r = http1_parse_response(T.resp, T.resp_len, &m, hdrs, &lim, 0);
	if (r == -2 && T.resp_len < sizeof(T.resp) - 1)
		return;                                 /* more of the head to come */
	if (r < 0 || m.status < 200 || m.status > 299) {
		char st[48];
		size_t l = strcspn(T.resp, "\r\n");

		snprintf(st, sizeof(st), "answered '%.*s'", (int)(l > 24 ? 24 : l), T.resp);
		post_done(r == -2 ? "answered with a head over 1 KiB" : st);
		return;
	}
	keep = m.minor_version == 1 && !(m.flags & HTTP1_F_CONN_CLOSE) &&
	       (m.body == HTTP1_BODY_NONE || m.body == HTTP1_BODY_LENGTH);
	T.discard = m.body == HTTP1_BODY_LENGTH ? m.content_length : 0;
	if (keep && T.resp_len - (size_t)r > T.discard)
		keep = 0;                               /* more than the answer: not HTTP as we know it */
	else if (keep)
		T.discard -= T.resp_len - (size_t)r;
	post_over(NULL, keep);
}

/* idle: the rest of the last answer's body is read and dropped; anything else ends it */
static void post_idle_read(void)
{
	char junk[512];
	ssize_t n = recv(T.fd, junk, sizeof(junk), 0);

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n > 0 && (uint64_t)n <= T.discard) {
		T.discard -= (uint64_t)n;
		return;
	}
	post_close();
}

static void post_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	ssize_t n;

	if (T.idle) {
		post_idle_read();
		return;
	}
	if (T.connecting) {
		int err = net_connect_result(T.fd);
		if (err) {
			post_done(strerror(err));
			return;
		}
		T.connecting = 0;
	}
	if (T.out_off < T.head_len + T.out.len) {
		n = post_send();
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				post_failed(strerror(errno));
			return;
		}
		T.out_off += (size_t)n;
		if (T.out_off == T.head_len + T.out.len) {
			ev_io_stop(loop, &T.io);
			ev_io_set(&T.io, T.fd, EV_READ);
			ev_io_start(loop, &T.io);
		}
		return;
	}
	n = recv(T.fd, T.resp + T.resp_len, sizeof(T.resp) - 1 - T.resp_len, 0);
	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			post_failed(strerror(errno));
		return;
	}
	if (n == 0) {
		post_failed("closed without an answer");
		return;
	}
	T.resp_len += (size_t)n;
	T.resp[T.resp_len] = 0;
	post_answered();
}

static void post_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	post_done("no answer within 5s");
}

/* sends the pending spans as one batch, when none is in flight */
static void flush_now(void)
{
	struct strbuf b;
	int n;

	if ((T.fd >= 0 && !T.idle) || !T.n_pending || !T.collector.set)
		return;
	/* the batch becomes the post's body as it is: the buffers trade places */
	b = T.out;
	T.out = T.pending;
	T.pending = b;
	T.pending.len = 0;
	strbuf_append(&T.out, "]", 1);
	T.n_inflight = T.n_pending;
	T.n_pending = 0;
	if (T.out.oom) {
		post_done("out of memory");
		return;
	}
	n = snprintf(T.head, sizeof(T.head),
	             "POST /api/v2/spans HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
	             "Content-Length: %zu\r\nUser-Agent: mesh/" MESH_VERSION "\r\n\r\n[",
	             T.collector.text, T.out.len + 1);
	T.head_len = (size_t)n;   /* (fits: see T.head) */
	if (T.fd >= 0 && T.idle && !T.discard && !strcmp(T.conn_to.text, T.collector.text)) {
		T.idle = 0;
		T.reused = 1;
		T.out_off = 0;
		T.resp_len = 0;
		ev_io_stop(T.loop, &T.io);
		ev_io_set(&T.io, T.fd, EV_WRITE);
		ev_io_start(T.loop, &T.io);
		ev_timer_set(&T.timeout, TRACE_POST_TIMEOUT, 0.);
		ev_timer_start(T.loop, &T.timeout);
		return;
	}
	post_close();
	post_connect();
}

static void flush_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	flush_now();
}

int trace_collecting(void)
{
	return T.collector.set;
}

void trace_record(const struct trace_ctx *t, const struct trace_req *r)
{
	if (!T.collector.set || !(t->flags & TRACE_F_SAMPLED) || !t->span_id)
		return;
	if (T.n_pending >= T.max_queue) {
		trace_spans_dropped++;
		return;
	}
	if (T.n_pending)
		strbuf_append(&T.pending, ",", 1);
	trace_span_json(&T.pending, t, r);
	if (T.pending.oom) {
		/* the batch's text is cut: drop it whole rather than send broken JSON */
		trace_spans_dropped += T.n_pending + 1;
		T.n_pending = 0;
		strbuf_free(&T.pending);
		memset(&T.pending, 0, sizeof(T.pending));
		return;
	}
	T.n_pending++;
	T.recorded++;
	if (T.n_pending >= batch_size())
		flush_now();
}

void trace_configure(struct ev_loop *loop, const struct conf *cf)
{
	const struct conf_tracing *tc = &cf->tracing;

	T.loop = loop;
	if (!T.inited) {
		ev_timer_init(&T.flush, flush_cb, TRACE_FLUSH_EVERY, TRACE_FLUSH_EVERY);
		ev_io_init(&T.io, post_io_cb, -1, EV_WRITE);
		ev_timer_init(&T.timeout, post_timeout_cb, TRACE_POST_TIMEOUT, 0.);
		T.inited = 1;
	}
	T.max_queue = tc->max_queue ? tc->max_queue : 1;
	if (tc->collector.set && T.collector.set && strcmp(tc->collector.text, T.collector.text))
		T.failing = 0;
	T.collector = tc->collector;
	if (T.idle && (!T.collector.set || strcmp(T.conn_to.text, T.collector.text)))
		post_close();                   /* a kept connection to where spans no longer go */
	if (!T.collector.set) {
		trace_spans_dropped += T.n_pending;   /* no one to send them to any more */
		T.n_pending = 0;
		T.pending.len = 0;
		ev_timer_stop(loop, &T.flush);
		return;
	}
	if (!ev_is_active(&T.flush))
		ev_timer_start(loop, &T.flush);
}

void trace_metrics(struct strbuf *out)
{
	strbuf_printf(out,
	              "# TYPE mesh_trace_spans_total counter\nmesh_trace_spans_total %llu\n"
	              "# TYPE mesh_trace_spans_sent_total counter\nmesh_trace_spans_sent_total %llu\n"
	              "# TYPE mesh_trace_spans_dropped_total counter\nmesh_trace_spans_dropped_total %llu\n"
	              "# TYPE mesh_trace_batches_failed_total counter\nmesh_trace_batches_failed_total %llu\n"
	              "# TYPE mesh_trace_spans_queued gauge\nmesh_trace_spans_queued %zu\n",
	              (unsigned long long)T.recorded, (unsigned long long)trace_spans_sent,
	              (unsigned long long)trace_spans_dropped, (unsigned long long)trace_batches_failed,
	              T.n_pending + T.n_inflight);
}

void trace_stop(void)
{
	if (T.fd >= 0) {
		trace_spans_dropped += T.n_inflight;
		T.n_inflight = 0;
	}
	post_close();
	trace_spans_dropped += T.n_pending;
	T.n_pending = 0;
	if (T.inited && T.loop)
		ev_timer_stop(T.loop, &T.flush);
	strbuf_free(&T.pending);
	strbuf_free(&T.out);
	memset(&T.pending, 0, sizeof(T.pending));
	memset(&T.out, 0, sizeof(T.out));
	memset(&T.collector, 0, sizeof(T.collector));
}
