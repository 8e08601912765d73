/*
 * sampleapp: the Bookinfo workloads as a hidden mode, `mesh sample-app NAME`.
 *
 * Labs and tests need Istio's Bookinfo (productpage, details, reviews v1/v2/v3,
 * ratings) on a machine that has nothing but this binary, in a `FROM scratch`
 * image too: no interpreter, no files, no DNS. So the four apps live here, in
 * C, and behave like the real ones where a test or a learner can see it: the
 * same URLs, JSON, page text, star icons (`glyphicon-star`), error texts,
 * header propagation and timeouts. docs/bookinfo.md maps each to the original.
 *
 * Data enters through one listening socket (a thread per connection, blocking
 * I/O with poll() deadlines, keep-alive, at most max_conns threads; beyond that
 * a connection gets a 503 and is closed). Requests are parsed with the strict
 * http1 parser. Outgoing calls (productpage -> details, reviews, ratings;
 * reviews v2/v3 -> ratings) never go straight to a peer: they go to the
 * workload's sidecar (--proxy, its outbound listener) as absolute-form
 * requests, `GET http://reviews:9080/reviews/0`, so the mesh routes them by
 * service name. Connections to the sidecar are kept in a small idle pool.
 *
 * What leaves: one response per request (always with Content-Length), and one
 * log line per request on stderr (unless --quiet) carrying x-request-id and
 * end-user, so a test can follow a request through the apps.
 *
 * Known limits: only product 0 has a page (like Bookinfo); POST /ratings (the
 * real ratings v1's in-memory update) is not implemented; no TLS (the sidecar
 * does that).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "http1.h"
#include "log.h"
#include "sampleapp.h"

#define SAPP_SERVICE_PORT  9080          /* Bookinfo's services all use port 9080 */
#define SAPP_MAX_LINE      8192          /* request line */
#define SAPP_MAX_HEAD      32768         /* request or response head */
#define SAPP_MAX_HEADERS   100
#define SAPP_MAX_BODY      65536         /* request bodies (the login form) */
#define SAPP_MAX_RESP      (1u << 20)    /* response bodies of our calls */
#define SAPP_IDLE_MS       60000         /* keep-alive: longer than the sidecar's pool idle (30 s), so it closes first */
#define SAPP_HEADER_MS     10000         /* a started request head must be complete within this */
#define SAPP_SEND_MS       10000
#define SAPP_CONNECT_MS    2000          /* connecting to the sidecar */
#define SAPP_POOL_MAX      32            /* idle connections to the sidecar */
#define SAPP_POOL_IDLE_MS  15000         /* dropped before the sidecar's 60 s idle timeout */
#define SAPP_MAX_CONNS     256           /* default cap on connection threads */
#define SAPP_STACK         (512 * 1024)
#define SAPP_USER_MAX      64
#define SAPP_JSON_DEPTH    32

/* Bookinfo's own timeouts: productpage waits 3 s per call (and tries reviews
 * twice); reviews waits 10 s for ratings with black stars (v2), 2.5 s with red
 * (v3). The fault-injection labs depend on exactly these numbers. */
#define SAPP_PRODUCTPAGE_CALL_MS 3000
#define SAPP_REVIEWS_V2_CALL_MS  10000
#define SAPP_REVIEWS_V3_CALL_MS  2500

enum sa_kind { SAPP_PRODUCTPAGE, SAPP_DETAILS, SAPP_REVIEWS, SAPP_RATINGS };

struct sa_idle {
	int fd;                  /* an idle keep-alive connection to the sidecar */
	int64_t since;           /* when it went idle (monotonic ms) */
};

/* The running app. Read-only once serving, except the pool and the counter. */
struct sampleapp {
	enum sa_kind kind;
	const char *name;              /* "reviews" */
	char version[33];              /* "v2" */
	char workload[80];             /* "reviews-v2", as the mesh names workloads */
	struct conf_addr listen;       /* where this app listens */
	struct conf_addr proxy;        /* the sidecar's outbound listener (set = has one) */
	int ratings;                   /* reviews: calls ratings (v2, v3) */
	const char *star_color;        /* reviews: "black" (v2) or "red" (v3) */
	uint32_t ratings_timeout_ms;   /* reviews: per ratings call */
	int quiet;                     /* no per-request log lines */
	unsigned max_conns;            /* connection threads allowed at once */
	unsigned active;               /* connection threads running (atomic) */
	pthread_mutex_t pool_lock;     /* guards pool[] */
	struct sa_idle pool[SAPP_POOL_MAX];
	size_t pool_n;
};

static struct sampleapp SA = { .pool_lock = PTHREAD_MUTEX_INITIALIZER };

/* Headers every app copies from its incoming request to each outgoing call:
 * the union of the lists in Bookinfo's productpage.py, reviews' Java endpoint
 * and details.rb (tracing: Istio/Envoy, B3, W3C, Lightstep, Datadog, Cloud
 * Trace, gRPC, SkyWalking; then session headers). productpage derives
 * end-user itself (see forward_headers). */
static const char *const sa_propagate[] = {
	"x-request-id", "end-user",
	"traceparent", "tracestate", "b3",
	"x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled", "x-b3-flags",
	"x-ot-span-context",
	"x-datadog-trace-id", "x-datadog-parent-id", "x-datadog-sampling-priority",
	"x-cloud-trace-context", "grpc-trace-bin", "sw8",
	"user-agent", "cookie", "authorization", "jwt",
};

/* ------------------------------------------------------------------ the book */

static const char sa_title[] = "The Comedy of Errors";
static const char sa_description_html[] =
	"<a href=\"https://en.wikipedia.org/wiki/The_Comedy_of_Errors\">Wikipedia Summary</a>: "
	"The Comedy of Errors is one of <b>William Shakespeare's</b> early plays. It is his shortest "
	"and one of his most farcical comedies, with a major part of the humour coming from slapstick "
	"and mistaken identity, in addition to puns and word play.";
static const char sa_review1[] =
	"An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!";
static const char sa_review2[] =
	"Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare.";
static const char sa_ratings_unavailable[] = "Ratings service is currently unavailable";
static const char sa_details_unavailable[] = "Sorry, product details are currently unavailable for this book.";
static const char sa_reviews_unavailable[] = "Sorry, product reviews are currently unavailable for this book.";
static const char sa_ratings_api_unavailable[] = "Sorry, product ratings are currently unavailable for this book.";

/* ------------------------------------------------------------------ small helpers */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* appends n bytes; a no-op for n == 0 (p may then be NULL) */
static void sa_add(struct strbuf *s, const char *p, size_t n)
{
	if (n)
		strbuf_append(s, p, n);
}

/* a growable byte buffer for reads */
struct sa_buf {
	char *p;
	size_t len;   /* bytes held */
	size_t cap;
};

/* room for `want` more bytes, or for as many as a buffer of `max` bytes allows;
 * -1 when not even one more byte fits (or no memory) */
static int sa_buf_reserve(struct sa_buf *b, size_t want, size_t max)
{
	size_t cap;
	char *p;

	if (b->cap - b->len >= want)
		return 0;
	if (b->len + want > max)
		want = max > b->len ? max - b->len : 0;
	if (!want)
		return -1;
	if (b->cap - b->len >= want)
		return 0;
	cap = b->cap ? b->cap : 4096;
	while (cap < b->len + want)
		cap *= 2;
	if (cap > max)
		cap = max;
	p = realloc(b->p, cap);
	if (!p)
		return -1;
	b->p = p;
	b->cap = cap;
	return 0;
}

static void sa_buf_consume(struct sa_buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		return;
	}
	memmove(b->p, b->p + n, b->len - n);
	b->len -= n;
}

static void sa_buf_free(struct sa_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

/* ------------------------------------------------------------------ text */

static void html_escape(struct strbuf *o, const char *s, size_t n)
{
	size_t i, run = 0;

	for (i = 0; i < n; i++) {
		const char *e;

		switch (s[i]) {
		case '&': e = "&amp;"; break;
		case '<': e = "&lt;"; break;
		case '>': e = "&gt;"; break;
		case '"': e = "&quot;"; break;
		case '\'': e = "&#39;"; break;
		default: continue;
		}
		sa_add(o, s + run, i - run);
		strbuf_puts(o, e);
		run = i + 1;
	}
	sa_add(o, s + run, n - run);
}

static void json_string_out(struct strbuf *o, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	strbuf_append(o, "\"", 1);
	for (; *p; p++) {
		if (*p == '"' || *p == '\\') {
			char e[2] = { '\\', (char)*p };
			strbuf_append(o, e, 2);
		} else if (*p < 0x20) {
			strbuf_printf(o, "\\u%04x", *p);
		} else {
			strbuf_append(o, (const char *)p, 1);
		}
	}
	strbuf_append(o, "\"", 1);
}

/* a user name we accept for end-user and the login cookie: it goes into a
 * header, a cookie and the page, so keep it to a safe alphabet */
static int valid_user(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > SAPP_USER_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("._@+-_", s[i]))
			return 0;
	return 1;
}

static int sa_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* finds key in "a=1&b=2" (a query or a form body) and URL-decodes its value
 * into out; 0 when found and it fit, -1 otherwise */
static int form_value(const char *s, size_t n, const char *key, char *out, size_t cap)
{
	size_t kl = strlen(key), i = 0;

	while (i < n) {
		size_t j = i, o = 0;

		while (j < n && s[j] != '&')
			j++;
		if (j - i > kl && !memcmp(s + i, key, kl) && s[i + kl] == '=') {
			size_t k;

			for (k = i + kl + 1; k < j; k++) {
				int c = (unsigned char)s[k];

				if (c == '+') {
					c = ' ';
				} else if (c == '%') {
					int h = k + 2 < j ? sa_hexval(s[k + 1]) : -1, l = k + 2 < j ? sa_hexval(s[k + 2]) : -1;

					if (h < 0 || l < 0)
						return -1;
					c = h * 16 + l;
					k += 2;
				}
				if (o + 1 >= cap)
					return -1;
				out[o++] = (char)c;
			}
			out[o] = 0;
			return 0;
		}
		i = j + 1;
	}
	return -1;
}

/* the value of cookie `name` in a Cookie header, copied into out; 0 / -1 */
static int cookie_value(const char *s, size_t n, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name), i = 0;

	while (i < n) {
		size_t j;

		while (i < n && (s[i] == ' ' || s[i] == ';'))
			i++;
		j = i;
		while (j < n && s[j] != ';')
			j++;
		if (j - i > nl && !memcmp(s + i, name, nl) && s[i + nl] == '=') {
			size_t vl = j - i - nl - 1;

			while (vl && s[i + nl + vl] == ' ')
				vl--;
			if (vl + 1 > cap)
				return -1;
			memcpy(out, s + i + nl + 1, vl);
			out[vl] = 0;
			return 0;
		}
		i = j;
	}
	return -1;
}

/* "/details/17" with prefix "/details/" -> 17; -1 when not a product id */
static long product_id(const char *path, size_t n, const char *prefix)
{
	size_t pl = strlen(prefix), i;
	long id = 0;

	if (n <= pl || memcmp(path, prefix, pl) || n - pl > 9)
		return -1;
	for (i = pl; i < n; i++) {
		if (!isdigit((unsigned char)path[i]))
			return -1;
		id = id * 10 + (path[i] - '0');
	}
	return id;
}

/* ------------------------------------------------------------------ JSON reading
 *
 * Just enough JSON to read what the other apps answer: validate a document,
 * find an object member or an array element, read a string/number/int. Values
 * are slices of the document; nothing is allocated. A real Bookinfo app may
 * answer instead of ours, so this is a real parser, not a pattern match.
 */

static const char *json_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

static const char *json_skip_string(const char *p, const char *end)
{
	for (p++; p < end; p++) {
		unsigned char ch = (unsigned char)*p;

		if (ch == '"')
			return p + 1;
		if (ch < 0x20)
			return NULL;
		if (ch == '\\') {
			if (++p >= end)
				return NULL;
			if (*p == 'u') {
				int i;

				for (i = 0; i < 4; i++)
					if (++p >= end || sa_hexval((unsigned char)*p) < 0)
						return NULL;
			} else if (!*p || !strchr("\"\\/bfnrt", *p)) {
				return NULL;
			}
		}
	}
	return NULL;
}

static const char *json_skip_digits(const char *p, const char *end)
{
	if (p >= end || !isdigit((unsigned char)*p))
		return NULL;
	while (p < end && isdigit((unsigned char)*p))
		p++;
	return p;
}

static const char *json_skip_number(const char *p, const char *end)
{
	if (p < end && *p == '-')
		p++;
	if (p < end && *p == '0')
		p++;
	else if (!(p = json_skip_digits(p, end)))
		return NULL;
	if (p < end && *p == '.' && !(p = json_skip_digits(p + 1, end)))
		return NULL;
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (!(p = json_skip_digits(p, end)))
			return NULL;
	}
	return p;
}

/* p at the first byte of a value; returns the byte after it, or NULL */
static const char *json_skip(const char *p, const char *end, int depth)
{
	static const char *const lits[] = { "true", "false", "null" };
	size_t i;

	if (p >= end || depth > SAPP_JSON_DEPTH)
		return NULL;
	if (*p == '"')
		return json_skip_string(p, end);
	if (*p == '{' || *p == '[') {
		char close = *p == '{' ? '}' : ']';
		int obj = *p == '{';

		p = json_ws(p + 1, end);
		if (p < end && *p == close)
			return p + 1;
		for (;;) {
			if (obj) {
				if (p >= end || *p != '"' || !(p = json_skip_string(p, end)))
					return NULL;
				p = json_ws(p, end);
				if (p >= end || *p != ':')
					return NULL;
				p = json_ws(p + 1, end);
			}
			if (!(p = json_skip(p, end, depth + 1)))
				return NULL;
			p = json_ws(p, end);
			if (p >= end)
				return NULL;
			if (*p == close)
				return p + 1;
			if (*p != ',')
				return NULL;
			p = json_ws(p + 1, end);
		}
	}
	for (i = 0; i < sizeof(lits) / sizeof(lits[0]); i++) {
		size_t l = strlen(lits[i]);

		if ((size_t)(end - p) >= l && !memcmp(p, lits[i], l))
			return p + l;
	}
	return json_skip_number(p, end);
}

/* the whole of s[0..n) is one JSON object */
static int json_is_object(const char *s, size_t n)
{
	const char *end = s + n, *p = json_ws(s, end);

	if (p >= end || *p != '{')
		return 0;
	p = json_skip(p, end, 0);
	return p && json_ws(p, end) == end;
}

static void utf8_put(char *out, size_t cap, size_t *o, unsigned long cp)
{
	char u[4];
	size_t n, i;

	if (cp < 0x80) {
		u[0] = (char)cp; n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | (cp >> 6)); u[1] = (char)(0x80 | (cp & 0x3f)); n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | (cp >> 12)); u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f)); n = 3;
	} else {
		u[0] = (char)(0xf0 | (cp >> 18)); u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f)); u[3] = (char)(0x80 | (cp & 0x3f)); n = 4;
	}
	if (*o + n >= cap)
		return;   /* truncate whole characters only */
	for (i = 0; i < n; i++)
		out[(*o)++] = u[i];
}

static unsigned long hex4(const char *p)
{
	return (unsigned long)(sa_hexval((unsigned char)p[0]) << 12 | sa_hexval((unsigned char)p[1]) << 8 |
	                       sa_hexval((unsigned char)p[2]) << 4 | sa_hexval((unsigned char)p[3]));
}

/* A string (unescaped), number or boolean as text in out (truncated to cap).
 * v points at the value. 0 / -1 (null, object, array, invalid). */
static int json_text(const char *v, const char *end, char *out, size_t cap)
{
	const char *e;
	size_t o = 0;

	if (!v || !cap || !(e = json_skip(v, end, 0)))
		return -1;
	out[0] = 0;
	if (*v == '{' || *v == '[' || *v == 'n')
		return -1;
	if (*v != '"') {   /* number, true, false: the token itself */
		size_t n = (size_t)(e - v) < cap ? (size_t)(e - v) : cap - 1;

		memcpy(out, v, n);
		out[n] = 0;
		return 0;
	}
	for (v++; v < e - 1; v++) {
		unsigned long cp;

		if (*v != '\\') {
			if (o + 1 < cap)
				out[o++] = *v;
			continue;
		}
		v++;
		switch (*v) {
		case 'b': cp = '\b'; break;
		case 'f': cp = '\f'; break;
		case 'n': cp = '\n'; break;
		case 'r': cp = '\r'; break;
		case 't': cp = '\t'; break;
		case 'u':
			cp = hex4(v + 1);
			v += 4;
			if (cp >= 0xd800 && cp < 0xdc00 && e - v > 6 && v[1] == '\\' && v[2] == 'u') {
				unsigned long lo = hex4(v + 3);

				if (lo >= 0xdc00 && lo < 0xe000) {
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
					v += 6;
				}
			}
			if (cp >= 0xd800 && cp < 0xe000)
				cp = 0xfffd;   /* a lone surrogate */
			break;
		default: cp = (unsigned char)*v; break;   /* \" \\ \/ */
		}
		utf8_put(out, cap, &o, cp);
	}
	out[o] = 0;
	return 0;
}

/* obj points at '{'; returns the value of member `key`, or NULL */
static const char *json_member(const char *obj, const char *end, const char *key)
{
	const char *p;
	char name[128];

	if (!obj || obj >= end || *obj != '{')
		return NULL;
	p = json_ws(obj + 1, end);
	while (p < end && *p == '"') {
		const char *k = p, *v;

		if (!(p = json_skip_string(p, end)))
			return NULL;
		p = json_ws(p, end);
		if (p >= end || *p != ':')
			return NULL;
		v = json_ws(p + 1, end);
		if (json_text(k, end, name, sizeof(name)) == 0 && !strcmp(name, key))
			return v;
		if (!(p = json_skip(v, end, 1)))
			return NULL;
		p = json_ws(p, end);
		if (p < end && *p == ',')
			p = json_ws(p + 1, end);
	}
	return NULL;
}

/* arr points at '['; returns element i, or NULL */
static const char *json_index(const char *arr, const char *end, size_t i)
{
	const char *p;

	if (!arr || arr >= end || *arr != '[')
		return NULL;
	p = json_ws(arr + 1, end);
	while (p < end && *p != ']') {
		if (i-- == 0)
			return p;
		if (!(p = json_skip(p, end, 1)))
			return NULL;
		p = json_ws(p, end);
		if (p < end && *p == ',')
			p = json_ws(p + 1, end);
	}
	return NULL;
}

/* an integer value (no fraction or exponent); 0 / -1 */
static int json_int(const char *v, const char *end, long *out)
{
	const char *e;
	long x = 0;
	int neg = 0;

	if (!v || !(e = json_skip_number(v, end)))
		return -1;
	if (*v == '-') {
		neg = 1;
		v++;
	}
	if (e - v > 9)
		return -1;
	for (; v < e; v++) {
		if (!isdigit((unsigned char)*v))
			return -1;
		x = x * 10 + (*v - '0');
	}
	*out = neg ? -x : x;
	return 0;
}

/* ------------------------------------------------------------------ rendering */

static void render_details_json(struct strbuf *o, long id)
{
	strbuf_printf(o, "{\"id\":%ld,\"author\":\"William Shakespeare\",\"year\":1595,\"type\":\"paperback\","
	              "\"pages\":200,\"publisher\":\"PublisherA\",\"language\":\"English\","
	              "\"ISBN-10\":\"1234567890\",\"ISBN-13\":\"123-1234567890\"}", id);
}

static void render_ratings_json(struct strbuf *o, long id)
{
	strbuf_printf(o, "{\"id\":%ld,\"ratings\":{\"Reviewer1\":5,\"Reviewer2\":4}}", id);
}

static void render_products_json(struct strbuf *o)
{
	strbuf_printf(o, "[{\"id\":0,\"title\":");
	json_string_out(o, sa_title);
	strbuf_puts(o, ",\"descriptionHtml\":");
	json_string_out(o, sa_description_html);
	strbuf_puts(o, "}]");
}

static void render_error_json(struct strbuf *o, const char *msg)
{
	strbuf_puts(o, "{\"error\":");
	json_string_out(o, msg);
	strbuf_puts(o, "}");
}

/* stars from a ratings answer ({"ratings":{"Reviewer1":5,...}}); -1 = none */
static void parse_ratings(const char *j, size_t n, long *s1, long *s2)
{
	const char *end = j + n, *r;

	*s1 = *s2 = -1;
	if (!j || !json_is_object(j, n))
		return;
	r = json_member(json_ws(j, end), end, "ratings");
	if (json_int(json_member(r, end, "Reviewer1"), end, s1) < 0)
		*s1 = -1;
	if (json_int(json_member(r, end, "Reviewer2"), end, s2) < 0)
		*s2 = -1;
}

/* reviews' answer, as the Java app writes it (plus "version"). ratings: the
 * version shows ratings; stars -1 means ratings could not be had */
static void render_reviews_json(struct strbuf *o, long id, const char *podname, const char *version,
                                int ratings, const char *color, long s1, long s2)
{
	const char *texts[2] = { sa_review1, sa_review2 };
	long stars[2] = { s1, s2 };
	int i;

	strbuf_printf(o, "{\"id\": \"%ld\",\"podname\": ", id);
	json_string_out(o, podname);
	strbuf_puts(o, ",\"clustername\": \"null\",\"version\": ");
	json_string_out(o, version);
	strbuf_puts(o, ",\"reviews\": [");
	for (i = 0; i < 2; i++) {
		strbuf_printf(o, "%s{  \"reviewer\": \"Reviewer%d\",  \"text\": ", i ? "," : "", i + 1);
		json_string_out(o, texts[i]);
		if (ratings) {
			if (stars[i] >= 0) {
				strbuf_printf(o, ", \"rating\": {\"stars\": %ld, \"color\": ", stars[i]);
				json_string_out(o, color);
				strbuf_puts(o, "}");
			} else {
				strbuf_puts(o, ", \"rating\": {\"error\": ");
				json_string_out(o, sa_ratings_unavailable);
				strbuf_puts(o, "}");
			}
		}
		strbuf_puts(o, "}");
	}
	strbuf_puts(o, "]}");
}

/* what the product page is made of */
struct sa_page {
	const char *user;              /* the signed-in user, "" for none */
	const char *served_by;         /* this productpage's workload, in a comment */
	int details_ok;                /* details answered 200 with a JSON object */
	const char *details;           /* its body */
	size_t details_len;
	int reviews_ok;
	const char *reviews;
	size_t reviews_len;
};

static const char sa_page_head[] =
	"<!DOCTYPE html>\n"
	"<html>\n"
	"<head>\n"
	"<meta charset=\"utf-8\">\n"
	"<meta http-equiv=\"X-UA-Compatible\" content=\"IE=edge\">\n"
	"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1.0\">\n"
	"<title>Simple Bookstore App</title>\n"
	/* No Bootstrap files to serve (a scratch image has none): a few rules give
	 * the same look, and the star glyphs come from Unicode. The selectors avoid
	 * the literal class name so `grep -c glyphicon-star` counts only stars. */
	"<style>\n"
	"body { font-family: \"Helvetica Neue\", Helvetica, Arial, sans-serif; font-size: 14px; color: #333; margin: 0; }\n"
	"nav { background: #222; color: #9d9d9d; padding: 8px 15px; min-height: 34px; }\n"
	"nav .navbar-brand { color: #fff; font-size: 18px; line-height: 34px; text-decoration: none; }\n"
	"nav form, nav .navbar-text { float: right; margin: 0; line-height: 34px; }\n"
	"nav a { color: #9d9d9d; }\n"
	".row { display: flex; flex-wrap: wrap; }\n"
	".col-md-12 { flex: 1 1 100%; padding: 0 15px; }\n"
	".col-md-6 { flex: 1 1 45%; min-width: 280px; padding: 0 15px; }\n"
	".text-center { text-align: center; }\n"
	".text-primary { color: #337ab7; }\n"
	"blockquote { border-left: 5px solid #eee; margin: 0 0 20px; padding: 10px 20px; font-size: 17px; }\n"
	"blockquote small { display: block; color: #777; font-size: 80%; }\n"
	"span[class$=\"-star\"]::before { content: \"\\2605\"; }\n"
	"span[class$=\"-star-empty\"]::before { content: \"\\2606\"; }\n"
	".glyphicon-user::before { content: \"\\263a\"; }\n"
	"</style>\n"
	"</head>\n"
	"<body>\n";

static void render_details_html(struct strbuf *o, const struct sa_page *pg)
{
	static const char *const rows[][2] = {
		{ "Type", "type" }, { "Pages", "pages" }, { "Publisher", "publisher" },
		{ "Language", "language" }, { "ISBN-10", "ISBN-10" }, { "ISBN-13", "ISBN-13" },
	};
	const char *end = pg->details + pg->details_len, *obj;
	char v[256];
	size_t i;

	if (!pg->details_ok) {
		strbuf_puts(o, "      <h4 class=\"text-center text-primary\">Error fetching product details!</h4>\n"
		               "      <p>");
		strbuf_puts(o, sa_details_unavailable);
		strbuf_puts(o, "</p>\n");
		return;
	}
	obj = json_ws(pg->details, end);
	strbuf_puts(o, "      <h4 class=\"text-center text-primary\">Book Details</h4>\n      <dl>\n");
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		if (json_text(json_member(obj, end, rows[i][1]), end, v, sizeof(v)) < 0)
			v[0] = 0;
		strbuf_printf(o, "        <dt>%s:</dt>", rows[i][0]);
		html_escape(o, v, strlen(v));
		strbuf_puts(o, "\n");
	}
	strbuf_puts(o, "      </dl>\n");
}

/* a color for an attribute: a plain CSS color name, else black */
static void star_color(const char *end, const char *rating, char *out, size_t cap)
{
	size_t i;

	if (json_text(json_member(rating, end, "color"), end, out, cap) < 0 || !out[0])
		goto black;
	for (i = 0; out[i]; i++)
		if (!isalpha((unsigned char)out[i]))
			goto black;
	return;
black:
	snprintf(out, cap, "black");
}

static void render_reviews_html(struct strbuf *o, const struct sa_page *pg)
{
	const char *end = pg->reviews + pg->reviews_len, *obj, *list, *r;
	char text[1024], reviewer[128], color[24], msg[256];
	size_t i;

	if (!pg->reviews_ok) {
		strbuf_puts(o, "      <h4 class=\"text-center text-primary\">Error fetching product reviews!</h4>\n"
		               "      <p>");
		strbuf_puts(o, sa_reviews_unavailable);
		strbuf_puts(o, "</p>\n");
		return;
	}
	obj = json_ws(pg->reviews, end);
	list = json_member(obj, end, "reviews");
	strbuf_puts(o, "      <h4 class=\"text-center text-primary\">Book Reviews</h4>\n");
	for (i = 0; (r = json_index(list, end, i)) != NULL; i++) {
		const char *rating = json_member(r, end, "rating");
		long stars, k;

		if (json_text(json_member(r, end, "text"), end, text, sizeof(text)) < 0)
			text[0] = 0;
		if (json_text(json_member(r, end, "reviewer"), end, reviewer, sizeof(reviewer)) < 0)
			reviewer[0] = 0;
		strbuf_puts(o, "      <blockquote>\n        <p>");
		html_escape(o, text, strlen(text));
		strbuf_puts(o, "</p>\n        <small>");
		html_escape(o, reviewer, strlen(reviewer));
		strbuf_puts(o, "</small>\n");
		/* like the template: stars when rating.stars is a non-zero number, else rating.error */
		if (rating && json_int(json_member(rating, end, "stars"), end, &stars) == 0 && stars) {
			char style[48] = "";

			if (stars > 5)
				stars = 5;
			if (stars < 0)
				stars = 0;
			star_color(end, rating, color, sizeof(color));
			if (strcmp(color, "black"))
				snprintf(style, sizeof(style), " style=\"color: %s\"", color);
			strbuf_printf(o, "        <font color=\"%s\">\n          <!-- full stars: -->\n", color);
			for (k = 0; k < stars; k++)
				strbuf_printf(o, "          <span class=\"glyphicon glyphicon-star\"%s></span>\n", style);
			strbuf_puts(o, "          <!-- empty stars: -->\n");
			for (k = stars; k < 5; k++)
				strbuf_printf(o, "          <span class=\"glyphicon glyphicon-star-empty\"%s></span>\n", style);
			strbuf_puts(o, "        </font>\n");
		} else if (rating && json_text(json_member(rating, end, "error"), end, msg, sizeof(msg)) == 0) {
			strbuf_puts(o, "        <p><i>");
			html_escape(o, msg, strlen(msg));
			strbuf_puts(o, "</i></p>\n");
		}
		strbuf_puts(o, "      </blockquote>\n");
	}
	if (json_text(json_member(obj, end, "podname"), end, msg, sizeof(msg)) == 0 && msg[0]) {
		strbuf_puts(o, "      <p><small>Reviews served by: ");
		html_escape(o, msg, strlen(msg));
		strbuf_puts(o, "</small></p>\n");
	}
}

/* the product page: Bookinfo's productpage.html (the Bootstrap edition whose
 * stars are glyphicons), filled the way its Jinja template fills it */
static void render_productpage(struct strbuf *o, const struct sa_page *pg)
{
	strbuf_puts(o, sa_page_head);
	strbuf_puts(o, "<!-- served by ");
	html_escape(o, pg->served_by, strlen(pg->served_by));
	strbuf_puts(o, " (mesh sample-app) -->\n"
	               "<nav class=\"navbar navbar-inverse navbar-static-top\">\n"
	               "  <a class=\"navbar-brand\" href=\"#\">BookInfo Sample</a>\n");
	if (pg->user && pg->user[0]) {
		strbuf_puts(o, "  <p class=\"navbar-text navbar-right\">\n"
		               "    <i class=\"glyphicon glyphicon-user\" aria-hidden=\"true\"></i>\n"
		               "    <span style=\"padding-left: 5px;\">");
		html_escape(o, pg->user, strlen(pg->user));
		strbuf_puts(o, " ( <a href=\"logout\">sign out</a> )</span>\n  </p>\n");
	} else {
		strbuf_puts(o, "  <form method=\"post\" action=\"login\" name=\"login_form\">\n"
		               "    <input type=\"text\" name=\"username\" placeholder=\"User Name\">\n"
		               "    <input type=\"password\" name=\"passwd\" placeholder=\"Password\">\n"
		               "    <button type=\"submit\">Sign in</button>\n"
		               "  </form>\n");
	}
	strbuf_puts(o, "</nav>\n\n"
	               "<div class=\"container-fluid\">\n"
	               "  <div class=\"row\">\n"
	               "    <div class=\"col-md-12\">\n"
	               "      <h3 class=\"text-center text-primary\">");
	strbuf_puts(o, sa_title);
	strbuf_puts(o, "</h3>\n      <p>Summary: ");
	strbuf_puts(o, sa_description_html);
	strbuf_puts(o, "</p>\n    </div>\n  </div>\n\n  <div class=\"row\">\n    <div class=\"col-md-6\">\n");
	render_details_html(o, pg);
	strbuf_puts(o, "    </div>\n\n    <div class=\"col-md-6\">\n");
	render_reviews_html(o, pg);
	strbuf_puts(o, "    </div>\n  </div>\n</div>\n</body>\n</html>\n");
}

static void render_index(struct strbuf *o)
{
	strbuf_puts(o, "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n"
	               "<title>Simple Bookstore App</title>\n</head>\n<body>\n"
	               "<h3>Hello! This is a simple bookstore application consisting of three services as shown below</h3>\n"
	               "<table class=\"table table-condensed table-bordered table-hover\">\n"
	               "<tr><th>service</th><th>called as</th><th>calls</th></tr>\n"
	               "<tr><td>productpage</td><td>http://productpage:9080/productpage</td><td>details, reviews</td></tr>\n"
	               "<tr><td>details</td><td>http://details:9080/details/0</td><td>-</td></tr>\n"
	               "<tr><td>reviews</td><td>http://reviews:9080/reviews/0</td><td>ratings (v2, v3)</td></tr>\n"
	               "<tr><td>ratings</td><td>http://ratings:9080/ratings/0</td><td>-</td></tr>\n"
	               "</table>\n"
	               "<p><h4>Click on one of the links below to auto generate a request to the backend as a real user or a tester</h4></p>\n"
	               "<p><a href=\"/productpage?u=normal\">Normal user</a></p>\n"
	               "<p><a href=\"/productpage?u=test\">Test user</a></p>\n"
	               "</body>\n</html>\n");
}

/* ------------------------------------------------------------------ socket I/O with deadlines */

/* waits for ev on fd until deadline: 1 ready, 0 timed out, -1 error */
static int wait_fd(int fd, short ev, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - now_ms();
		struct pollfd p = { .fd = fd, .events = ev };
		int n;

		if (left <= 0)
			return 0;
		n = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (n > 0)
			return 1;
		if (n == 0)
			return 0;
		if (errno != EINTR)
			return -1;
	}
}

/* >0 bytes read, 0 end of stream, -1 error (errno; ETIMEDOUT after the deadline) */
static ssize_t recv_by(int fd, char *p, size_t n, int64_t deadline)
{
	for (;;) {
		ssize_t got;
		int r = wait_fd(fd, POLLIN, deadline);

		if (r == 0)
			errno = ETIMEDOUT;
		if (r <= 0)
			return -1;
		got = recv(fd, p, n, MSG_DONTWAIT);
		if (got >= 0)
			return got;
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return -1;
	}
}

static int send_by(int fd, const char *p, size_t n, int64_t deadline)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		int r;

		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return -1;
		r = wait_fd(fd, POLLOUT, deadline);
		if (r == 0)
			errno = ETIMEDOUT;
		if (r <= 0)
			return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ calls through the sidecar */

struct sa_call {
	int status;              /* the response status; 0 when there was none */
	struct strbuf body;      /* the response body, de-chunked */
	char err[200];           /* why there was no response */
};

static void pool_put(int fd)
{
	pthread_mutex_lock(&SA.pool_lock);
	if (SA.pool_n < SAPP_POOL_MAX) {
		SA.pool[SA.pool_n].fd = fd;
		SA.pool[SA.pool_n].since = now_ms();
		SA.pool_n++;
		fd = -1;
	}
	pthread_mutex_unlock(&SA.pool_lock);
	if (fd >= 0)
		close(fd);
}

/* an idle connection that still looks alive, or -1 */
static int pool_get(void)
{
	int64_t now = now_ms();
	int fd = -1;

	pthread_mutex_lock(&SA.pool_lock);
	while (SA.pool_n && fd < 0) {
		struct sa_idle *it = &SA.pool[--SA.pool_n];
		struct pollfd p = { .fd = it->fd, .events = POLLIN };

		/* readable while idle = closed by the sidecar (or junk): useless */
		if (now - it->since > SAPP_POOL_IDLE_MS || poll(&p, 1, 0) != 0)
			close(it->fd);
		else
			fd = it->fd;
	}
	pthread_mutex_unlock(&SA.pool_lock);
	return fd;
}

static int connect_proxy(int64_t deadline, char *err, size_t errcap)
{
	int64_t cdl = now_ms() + SAPP_CONNECT_MS;
	int fd, one = 1, soerr = 0, r;
	socklen_t sl = sizeof(soerr);

	if (cdl > deadline)
		cdl = deadline;
	fd = socket(SA.proxy.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(err, errcap, "socket: %s", strerror(errno));
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)&SA.proxy.ss, SA.proxy.len) < 0 && errno != EINPROGRESS) {
		snprintf(err, errcap, "connect %s: %s", SA.proxy.text, strerror(errno));
		close(fd);
		return -1;
	}
	r = wait_fd(fd, POLLOUT, cdl);
	if (r <= 0) {
		snprintf(err, errcap, "connect %s: %s", SA.proxy.text, r ? strerror(errno) : "timed out");
		close(fd);
		return -1;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
		snprintf(err, errcap, "connect %s: %s", SA.proxy.text, strerror(soerr ? soerr : errno));
		close(fd);
		return -1;
	}
	return fd;
}

#define XCH_OK     0
#define XCH_FAIL  -1
#define XCH_STALE -2   /* the connection was closed before any response byte */

/* one request/response on fd; *keep says whether fd may be reused */
static int exchange(int fd, const struct strbuf *req, int64_t deadline, struct sa_call *out, int *keep)
{
	static const struct http1_limits lim = { SAPP_MAX_LINE, SAPP_MAX_HEAD, SAPP_MAX_HEADERS };
	struct http1_header hdrs[SAPP_MAX_HEADERS];
	struct http1_msg m;
	struct sa_buf b = { 0 };
	size_t head = 0, pos, total = 0;
	ssize_t got;
	int n, rc = XCH_FAIL;

	*keep = 0;
	memset(&m, 0, sizeof(m));
	if (send_by(fd, req->p, req->len, deadline) < 0) {
		if (errno == EPIPE || errno == ECONNRESET)
			return XCH_STALE;
		snprintf(out->err, sizeof(out->err), "sending to %s: %s", SA.proxy.text, strerror(errno));
		return XCH_FAIL;
	}
	for (;;) {   /* the head; interim (1xx) responses are skipped */
		n = b.len ? http1_parse_response(b.p, b.len, &m, hdrs, &lim, 0) : -2;
		if (n > 0 && m.status >= 100 && m.status < 200 && m.status != 101) {
			sa_buf_consume(&b, (size_t)n);
			continue;
		}
		if (n > 0) {
			head = (size_t)n;
			break;
		}
		if (n == -1) {
			snprintf(out->err, sizeof(out->err), "invalid response: %s", m.err_reason);
			goto out;
		}
		if (sa_buf_reserve(&b, 4096, SAPP_MAX_HEAD + 4096) < 0) {
			snprintf(out->err, sizeof(out->err), "response head too large");
			goto out;
		}
		got = recv_by(fd, b.p + b.len, b.cap - b.len, deadline);
		if (got <= 0) {
			if (total == 0 && (got == 0 || errno == ECONNRESET))
				rc = XCH_STALE;
			else if (got == 0)
				snprintf(out->err, sizeof(out->err), "connection closed in the response head");
			else
				snprintf(out->err, sizeof(out->err), "reading the response: %s",
				         errno == ETIMEDOUT ? "timed out" : strerror(errno));
			goto out;
		}
		b.len += (size_t)got;
		total += (size_t)got;
	}
	if (m.status == 101) {
		snprintf(out->err, sizeof(out->err), "unexpected 101 Switching Protocols");
		goto out;
	}
	pos = head;
	if (m.body == HTTP1_BODY_LENGTH) {
		if (m.content_length > SAPP_MAX_RESP) {
			snprintf(out->err, sizeof(out->err), "response body too large (%llu bytes)",
			         (unsigned long long)m.content_length);
			goto out;
		}
		while (b.len - head < m.content_length) {
			if (sa_buf_reserve(&b, (size_t)m.content_length - (b.len - head), head + SAPP_MAX_RESP) < 0)
				goto nomem;
			got = recv_by(fd, b.p + b.len, b.cap - b.len, deadline);
			if (got <= 0)
				goto cut;
			b.len += (size_t)got;
		}
		sa_add(&out->body, b.p + head, (size_t)m.content_length);
		pos = head + (size_t)m.content_length;
	} else if (m.body == HTTP1_BODY_CHUNKED) {
		struct http1_chunked ch = { 0 };

		while (!ch.done) {
			const char *data, *tr;
			size_t dlen, trlen;
			ssize_t used = http1_chunked_decode(&ch, b.p + pos, b.len - pos, &data, &dlen, &tr, &trlen, 8192);

			if (used < 0) {
				snprintf(out->err, sizeof(out->err), "invalid chunked body: %s", ch.err_reason);
				goto out;
			}
			if (used > 0) {
				sa_add(&out->body, data, dlen);
				pos += (size_t)used;
				if (out->body.len > SAPP_MAX_RESP) {
					snprintf(out->err, sizeof(out->err), "response body too large");
					goto out;
				}
				continue;
			}
			sa_buf_consume(&b, pos);   /* keep only what is undecoded */
			pos = 0;
			if (sa_buf_reserve(&b, 16384, SAPP_MAX_HEAD + 16384) < 0)
				goto nomem;
			got = recv_by(fd, b.p + b.len, b.cap - b.len, deadline);
			if (got <= 0)
				goto cut;
			b.len += (size_t)got;
		}
	} else if (m.body == HTTP1_BODY_EOF) {
		sa_add(&out->body, b.p + head, b.len - head);
		for (;;) {
			char tmp[16384];

			got = recv_by(fd, tmp, sizeof(tmp), deadline);
			if (got == 0)
				break;
			if (got < 0)
				goto cut;
			sa_add(&out->body, tmp, (size_t)got);
			if (out->body.len > SAPP_MAX_RESP) {
				snprintf(out->err, sizeof(out->err), "response body too large");
				goto out;
			}
		}
		pos = b.len;
	}
	if (out->body.oom)
		goto nomem;
	out->status = m.status;
	*keep = m.minor_version == 1 && !(m.flags & HTTP1_F_CONN_CLOSE) && m.body != HTTP1_BODY_EOF &&
	        pos == b.len;
	rc = XCH_OK;
	goto out;
cut:
	snprintf(out->err, sizeof(out->err), "response body cut short (%s)",
	         got == 0 ? "connection closed" : errno == ETIMEDOUT ? "timed out" : strerror(errno));
	goto out;
nomem:
	snprintf(out->err, sizeof(out->err), "out of memory");
out:
	sa_buf_free(&b);
	if (rc != XCH_OK) {
		strbuf_free(&out->body);
		out->status = 0;
	}
	return rc;
}

/*
 * GET http://SERVICE:9080PATH through the sidecar, with the forwarded headers
 * (`fwd`, "name: value\r\n" lines). out->status is 0 and out->err says why
 * when there is no response; the caller frees out->body. A pooled connection
 * that turns out closed is replaced once by a new one (GET is idempotent).
 */
static void sa_get(const char *service, const char *path, const struct strbuf *fwd, uint32_t timeout_ms,
                   struct sa_call *out)
{
	int64_t deadline = now_ms() + timeout_ms;
	struct strbuf req = { 0 };
	int attempt;

	memset(out, 0, sizeof(*out));
	strbuf_printf(&req, "GET http://%s:%d%s HTTP/1.1\r\nHost: %s:%d\r\n", service, SAPP_SERVICE_PORT, path,
	              service, SAPP_SERVICE_PORT);
	sa_add(&req, fwd->p, fwd->len);
	if (!fwd->p || !strstr(fwd->p, "user-agent:"))
		strbuf_printf(&req, "user-agent: mesh-sample-app/%s\r\n", SA.workload);
	strbuf_puts(&req, "accept: application/json\r\n\r\n");
	if (req.oom) {
		snprintf(out->err, sizeof(out->err), "out of memory");
		goto done;
	}
	for (attempt = 0; attempt < 2; attempt++) {
		int keep, rc, fd = attempt == 0 ? pool_get() : -1, reused = fd >= 0;

		if (fd < 0 && (fd = connect_proxy(deadline, out->err, sizeof(out->err))) < 0)
			break;
		rc = exchange(fd, &req, deadline, out, &keep);
		if (rc == XCH_OK && keep)
			pool_put(fd);
		else
			close(fd);
		if (rc != XCH_STALE)
			break;
		snprintf(out->err, sizeof(out->err), "%s closed the connection before responding", SA.proxy.text);
		if (!reused)
			break;
	}
done:
	strbuf_free(&req);
}

/* ------------------------------------------------------------------ requests */

struct sa_req {
	struct http1_msg *m;
	int head;                      /* HEAD: same headers, no body */
	const char *path;              /* the target without its query (absolute-form reduced) */
	size_t path_len;
	const char *query;             /* after '?', or NULL */
	size_t query_len;
	const char *body;              /* the request body (may be NULL) */
	size_t body_len;
	struct strbuf fwd;             /* headers for our calls: "name: value\r\n" lines */
	char user[SAPP_USER_MAX + 1];    /* productpage: the end-user it asserts, "" for none */
};

struct sa_resp {
	int status;
	const char *ctype;             /* Content-Type */
	struct strbuf body;
	struct strbuf headers;         /* extra header lines ("Set-Cookie: ...\r\n") */
	char note[240];                /* what went wrong in a call, for the log */
};

static int path_is(const struct sa_req *rq, const char *p)
{
	return rq->path_len == strlen(p) && !memcmp(rq->path, p, rq->path_len);
}

static void header_value(const struct http1_msg *m, const char *lname, const char **v, size_t *n)
{
	int i = http1_find_header(m, lname);

	*v = i >= 0 ? m->headers[i].value : NULL;
	*n = i >= 0 ? m->headers[i].value_len : 0;
}

/* productpage's user: an incoming end-user header (what the real productpage
 * sets after a login, and what curl users send), else the `user` cookie that
 * our /login sets. Ignored unless it looks like a user name. */
static void productpage_user(struct sa_req *rq)
{
	const char *v;
	size_t n;
	char tmp[SAPP_USER_MAX + 1];

	rq->user[0] = 0;
	header_value(rq->m, "end-user", &v, &n);
	if (v && valid_user(v, n)) {
		memcpy(rq->user, v, n);
		rq->user[n] = 0;
		return;
	}
	header_value(rq->m, "cookie", &v, &n);
	if (v && cookie_value(v, n, "user", tmp, sizeof(tmp)) == 0 && valid_user(tmp, strlen(tmp)))
		snprintf(rq->user, sizeof(rq->user), "%s", tmp);
}

/* the headers to send on with every call this request makes */
static void forward_headers(struct sa_req *rq)
{
	size_t i;

	if (SA.kind == SAPP_PRODUCTPAGE) {
		productpage_user(rq);
		if (rq->user[0])
			strbuf_printf(&rq->fwd, "end-user: %s\r\n", rq->user);
	}
	for (i = 0; i < sizeof(sa_propagate) / sizeof(sa_propagate[0]); i++) {
		const char *v;
		size_t n;

		if (SA.kind == SAPP_PRODUCTPAGE && !strcmp(sa_propagate[i], "end-user"))
			continue;
		header_value(rq->m, sa_propagate[i], &v, &n);
		if (!v)
			continue;
		strbuf_printf(&rq->fwd, "%s: ", sa_propagate[i]);
		sa_add(&rq->fwd, v, n);
		strbuf_puts(&rq->fwd, "\r\n");
	}
}

static void resp_json(struct sa_resp *rs, int status)
{
	rs->status = status;
	rs->ctype = "application/json";
}

static void resp_text(struct sa_resp *rs, int status, const char *text)
{
	rs->status = status;
	rs->ctype = "text/plain; charset=utf-8";
	strbuf_puts(&rs->body, text);
	strbuf_puts(&rs->body, "\n");
}

static void note_call(struct sa_resp *rs, const char *what, const struct sa_call *c)
{
	size_t l = strlen(rs->note);

	if (l + 2 >= sizeof(rs->note))
		return;
	if (c->status)
		snprintf(rs->note + l, sizeof(rs->note) - l, "%s%s=%d", l ? "; " : "", what, c->status);
	else
		snprintf(rs->note + l, sizeof(rs->note) - l, "%s%s: %s", l ? "; " : "", what, c->err);
}

/* a call's outcome as Bookinfo's productpage sees it: usable when 200 */
static int call_ok(const struct sa_call *c)
{
	return c->status == 200;
}

/* productpage's reviews call: Bookinfo tries twice ("a bug introduced
 * explicitly for illustration in the fault injection task") */
static void get_reviews(const struct sa_req *rq, const char *path, struct sa_resp *rs, struct sa_call *c)
{
	int i;

	for (i = 0; i < 2; i++) {
		if (i)
			strbuf_free(&c->body);
		sa_get("reviews", path, &rq->fwd, SAPP_PRODUCTPAGE_CALL_MS, c);
		if (call_ok(c))
			return;
		note_call(rs, "reviews", c);
	}
}

static void handle_login(struct sa_req *rq, struct sa_resp *rs)
{
	char user[SAPP_USER_MAX + 1];
	int ok = -1;

	if (rq->m->method_len == 4 && !memcmp(rq->m->method, "POST", 4))
		ok = form_value(rq->body, rq->body_len, "username", user, sizeof(user));
	else if (rq->query)
		ok = form_value(rq->query, rq->query_len, "user", user, sizeof(user)) == 0 ? 0 :
		     form_value(rq->query, rq->query_len, "username", user, sizeof(user));
	if (ok < 0 || !valid_user(user, strlen(user))) {
		resp_text(rs, 400, "login needs a user name: POST username=NAME, or GET /login?user=NAME "
		                   "(letters, digits and ._@+-_ only)");
		return;
	}
	rs->status = 302;
	rs->ctype = "text/html; charset=utf-8";
	strbuf_printf(&rs->headers, "Location: /productpage\r\nSet-Cookie: user=%s; Path=/\r\n", user);
	strbuf_puts(&rs->body, "<a href=\"/productpage\">/productpage</a>\n");
}

static void handle_productpage(struct sa_req *rq, struct sa_resp *rs)
{
	long id;

	if (path_is(rq, "/") || path_is(rq, "/index.html")) {
		rs->status = 200;
		rs->ctype = "text/html; charset=utf-8";
		render_index(&rs->body);
	} else if (path_is(rq, "/health")) {
		rs->status = 200;
		rs->ctype = "text/html; charset=utf-8";
		strbuf_puts(&rs->body, "Product page is healthy");
	} else if (path_is(rq, "/login")) {
		handle_login(rq, rs);
	} else if (path_is(rq, "/logout")) {
		rs->status = 302;
		rs->ctype = "text/html; charset=utf-8";
		strbuf_puts(&rs->headers, "Location: /productpage\r\nSet-Cookie: user=; Path=/; Max-Age=0\r\n");
		strbuf_puts(&rs->body, "<a href=\"/productpage\">/productpage</a>\n");
	} else if (path_is(rq, "/productpage")) {
		struct sa_call d, r;
		struct sa_page pg;

		sa_get("details", "/details/0", &rq->fwd, SAPP_PRODUCTPAGE_CALL_MS, &d);
		if (!call_ok(&d))
			note_call(rs, "details", &d);
		get_reviews(rq, "/reviews/0", rs, &r);
		memset(&pg, 0, sizeof(pg));
		pg.user = rq->user;
		pg.served_by = SA.workload;
		pg.details_ok = call_ok(&d) && json_is_object(d.body.p, d.body.len);
		pg.details = d.body.p;
		pg.details_len = d.body.len;
		pg.reviews_ok = call_ok(&r) && json_is_object(r.body.p, r.body.len);
		pg.reviews = r.body.p;
		pg.reviews_len = r.body.len;
		/* like Bookinfo: the page is a 200 whatever its parts did */
		rs->status = 200;
		rs->ctype = "text/html; charset=utf-8";
		render_productpage(&rs->body, &pg);
		strbuf_free(&d.body);
		strbuf_free(&r.body);
	} else if (path_is(rq, "/api/v1/products")) {
		resp_json(rs, 200);
		render_products_json(&rs->body);
	} else if (rq->path_len > 17 && !memcmp(rq->path, "/api/v1/products/", 17)) {
		/* /api/v1/products/ID[/reviews|/ratings] */
		const char *id_s = rq->path + 17, *slash = memchr(id_s, '/', rq->path_len - 17);
		size_t id_len = slash ? (size_t)(slash - id_s) : rq->path_len - 17;
		const char *what = slash ? slash + 1 : "";
		size_t what_len = slash ? rq->path_len - (size_t)(slash + 1 - rq->path) : 0;
		char path[64];
		struct sa_call c;
		const char *svc, *fail;

		id = product_id(id_s - 1, id_len + 1, "/");
		if (id < 0) {
			resp_json(rs, 400);
			render_error_json(&rs->body, "please provide numeric product id");
			return;
		}
		if (!slash) {
			svc = "details";
			fail = sa_details_unavailable;
		} else if (what_len == 7 && !memcmp(what, "reviews", 7)) {
			svc = "reviews";
			fail = sa_reviews_unavailable;
		} else if (what_len == 7 && !memcmp(what, "ratings", 7)) {
			svc = "ratings";
			fail = sa_ratings_api_unavailable;
		} else {
			resp_text(rs, 404, "not found");
			return;
		}
		snprintf(path, sizeof(path), "/%s/%ld", svc, id);
		if (!strcmp(svc, "reviews")) {
			get_reviews(rq, path, rs, &c);
		} else {
			sa_get(svc, path, &rq->fwd, SAPP_PRODUCTPAGE_CALL_MS, &c);
			if (!call_ok(&c))
				note_call(rs, svc, &c);
		}
		if (call_ok(&c) && json_is_object(c.body.p, c.body.len)) {
			resp_json(rs, 200);
			sa_add(&rs->body, c.body.p, c.body.len);
		} else {
			/* Bookinfo: the upstream's status, or 500 when there was none */
			resp_json(rs, c.status && c.status != 200 ? c.status : 500);
			render_error_json(&rs->body, fail);
		}
		strbuf_free(&c.body);
	} else {
		resp_text(rs, 404, "not found");
	}
}

static void handle_reviews(struct sa_req *rq, struct sa_resp *rs)
{
	long id, s1 = -1, s2 = -1;

	if (path_is(rq, "/health")) {
		resp_json(rs, 200);
		strbuf_puts(&rs->body, "{\"status\": \"Reviews is healthy\"}");
		return;
	}
	if ((id = product_id(rq->path, rq->path_len, "/reviews/")) < 0) {
		resp_text(rs, 404, "not found");
		return;
	}
	if (SA.ratings) {
		struct sa_call c;
		char path[32];

		snprintf(path, sizeof(path), "/ratings/%ld", id);
		sa_get("ratings", path, &rq->fwd, SA.ratings_timeout_ms, &c);
		if (call_ok(&c))
			parse_ratings(c.body.p, c.body.len, &s1, &s2);
		else
			note_call(rs, "ratings", &c);
		strbuf_free(&c.body);
	}
	resp_json(rs, 200);
	render_reviews_json(&rs->body, id, SA.workload, SA.version, SA.ratings, SA.star_color, s1, s2);
}

static void handle_simple(struct sa_req *rq, struct sa_resp *rs)
{
	const char *prefix = SA.kind == SAPP_DETAILS ? "/details/" : "/ratings/";
	long id;

	if (path_is(rq, "/health")) {
		resp_json(rs, 200);
		strbuf_puts(&rs->body, SA.kind == SAPP_DETAILS ? "{\"status\":\"Details is healthy\"}"
		                                             : "{\"status\":\"Ratings is healthy\"}");
		return;
	}
	if (rq->path_len <= strlen(prefix) || memcmp(rq->path, prefix, strlen(prefix))) {
		resp_text(rs, 404, "not found");
		return;
	}
	if ((id = product_id(rq->path, rq->path_len, prefix)) < 0) {
		resp_json(rs, 400);
		render_error_json(&rs->body, SA.kind == SAPP_DETAILS ? "please provide numeric product id"
		                                                   : "please provide numeric product ID");
		return;
	}
	resp_json(rs, 200);
	if (SA.kind == SAPP_DETAILS)
		render_details_json(&rs->body, id);
	else
		render_ratings_json(&rs->body, id);
}

static void handle(struct sa_req *rq, struct sa_resp *rs)
{
	const struct http1_msg *m = rq->m;
	int get = (m->method_len == 3 && !memcmp(m->method, "GET", 3)) || rq->head;
	int post = m->method_len == 4 && !memcmp(m->method, "POST", 4);

	if (!get && !(post && SA.kind == SAPP_PRODUCTPAGE && path_is(rq, "/login"))) {
		resp_text(rs, 405, "method not allowed");
		strbuf_puts(&rs->headers, "Allow: GET, HEAD\r\n");
		return;
	}
	forward_headers(rq);
	switch (SA.kind) {
	case SAPP_PRODUCTPAGE: handle_productpage(rq, rs); break;
	case SAPP_REVIEWS: handle_reviews(rq, rs); break;
	default: handle_simple(rq, rs); break;
	}
}

/* ------------------------------------------------------------------ connections */

struct sa_conn {
	int fd;
	char peer[INET6_ADDRSTRLEN];   /* who connected, for the log */
	struct sa_buf in;              /* bytes read and not yet handled */
};

static const char *status_text(int s)
{
	switch (s) {
	case 100: return "Continue";
	case 200: return "OK";
	case 302: return "Found";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 413: return "Payload Too Large";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}

/* copies at most cap-1 bytes of s, replacing what would break a log line */
static void log_field(char *out, size_t cap, const char *s, size_t n)
{
	size_t i;

	if (!s || !n) {
		snprintf(out, cap, "-");
		return;
	}
	if (n > cap - 1)
		n = cap - 1;
	for (i = 0; i < n; i++)
		out[i] = (s[i] > 0x20 && s[i] < 0x7f && s[i] != '"') ? s[i] : '?';
	out[n] = 0;
}

static void log_request(const struct sa_conn *c, const struct http1_msg *m, const struct sa_resp *rs,
                        size_t bytes, int64_t t0)
{
	char ts[32], method[16], target[256], rid[128], user[SAPP_USER_MAX + 1], line[1024];
	const char *v;
	size_t vn;
	int n;

	if (SA.quiet)
		return;
	log_timestamp(ts);
	log_field(method, sizeof(method), m->method, m->method_len);
	log_field(target, sizeof(target), m->target, m->target_len);
	header_value(m, "x-request-id", &v, &vn);
	log_field(rid, sizeof(rid), v, vn);
	header_value(m, "end-user", &v, &vn);
	log_field(user, sizeof(user), v, vn);
	n = snprintf(line, sizeof(line), "%s %s \"%s %s\" %d %zu %lldms peer=%s x-request-id=%s end-user=%s%s%s\n",
	             ts, SA.workload, method, target, rs->status, bytes, (long long)(now_ms() - t0), c->peer, rid,
	             user, rs->note[0] ? " calls: " : "", rs->note);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	if (write(2, line, (size_t)n) < 0) {
		/* stderr is gone: nothing to do */
	}
}

static int send_response(struct sa_conn *c, const struct sa_req *rq, struct sa_resp *rs, int keep)
{
	struct strbuf out = { 0 };
	int rc;

	strbuf_printf(&out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nx-version: %s\r\n",
	              rs->status, status_text(rs->status), rs->ctype ? rs->ctype : "text/plain; charset=utf-8",
	              rs->body.len, SA.version);
	sa_add(&out, rs->headers.p, rs->headers.len);
	if (!keep)
		strbuf_puts(&out, "Connection: close\r\n");
	else if (rq->m && rq->m->minor_version == 0)
		strbuf_puts(&out, "Connection: keep-alive\r\n");
	strbuf_puts(&out, "\r\n");
	if (!rq->head)
		sa_add(&out, rs->body.p, rs->body.len);
	rc = out.oom ? -1 : send_by(c->fd, out.p, out.len, now_ms() + SAPP_SEND_MS);
	strbuf_free(&out);
	return rc;
}

/* a response that ends the connection (bad request, timeout, overload) */
static void send_error(int fd, int status, const char *why)
{
	char b[512];
	int n = snprintf(b, sizeof(b), "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
	                 "Connection: close\r\nx-version: %s\r\n\r\n%s\n",
	                 status, status_text(status), strlen(why) + 1, SA.version, why);

	if (n > 0 && (size_t)n < sizeof(b))
		send_by(fd, b, (size_t)n, now_ms() + 1000);
}

/* reads until buf holds `want` bytes; 0 / -1 */
static int read_to(struct sa_conn *c, size_t want, size_t max, int64_t deadline)
{
	while (c->in.len < want) {
		ssize_t got;

		if (sa_buf_reserve(&c->in, want - c->in.len, max) < 0)
			return -1;
		got = recv_by(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len, deadline);
		if (got <= 0)
			return -1;
		c->in.len += (size_t)got;
	}
	return 0;
}

/* Serves requests on one connection until it closes; returns when done. */
static void serve(struct sa_conn *c)
{
	static const struct http1_limits lim = { SAPP_MAX_LINE, SAPP_MAX_HEAD, SAPP_MAX_HEADERS };
	struct http1_header hdrs[SAPP_MAX_HEADERS];
	const size_t max = SAPP_MAX_HEAD + SAPP_MAX_BODY + 8192;

	for (;;) {
		struct http1_msg m;
		struct sa_req rq;
		struct sa_resp rs;
		struct strbuf chunked = { 0 };
		int64_t t0, deadline = now_ms() + (c->in.len ? SAPP_HEADER_MS : SAPP_IDLE_MS);
		size_t used;
		int n, keep, started = c->in.len > 0;

		memset(&m, 0, sizeof(m));
		for (;;) {   /* the head */
			ssize_t got;

			n = c->in.len ? http1_parse_request(c->in.p, c->in.len, &m, hdrs, &lim) : -2;
			if (n != -2)
				break;
			if (sa_buf_reserve(&c->in, 4096, max) < 0)
				return;
			got = recv_by(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len, deadline);
			if (got <= 0) {
				if (got < 0 && errno == ETIMEDOUT && started)
					send_error(c->fd, 408, "request head not complete in time");
				return;
			}
			if (!started) {
				started = 1;
				deadline = now_ms() + SAPP_HEADER_MS;
			}
			c->in.len += (size_t)got;
		}
		if (n < 0) {
			send_error(c->fd, m.err_status, m.err_reason);
			return;
		}
		t0 = now_ms();
		/* the body */
		used = (size_t)n;
		if (m.body == HTTP1_BODY_LENGTH && m.content_length > SAPP_MAX_BODY) {
			send_error(c->fd, 413, "request body too large");
			return;
		}
		if (m.body != HTTP1_BODY_NONE && (m.flags & HTTP1_F_EXPECT_CONTINUE))
			send_by(c->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25, now_ms() + SAPP_SEND_MS);
		if (m.body == HTTP1_BODY_LENGTH) {
			used += (size_t)m.content_length;
			if (read_to(c, used, max, now_ms() + SAPP_HEADER_MS) < 0)
				return;
		} else if (m.body == HTTP1_BODY_CHUNKED) {
			struct http1_chunked ch = { 0 };
			int64_t bdl = now_ms() + SAPP_HEADER_MS;

			while (!ch.done) {
				const char *data, *tr;
				size_t dlen, trlen;
				ssize_t k = http1_chunked_decode(&ch, c->in.p + used, c->in.len - used, &data, &dlen,
				                                 &tr, &trlen, 8192);

				if (k < 0 || chunked.len > SAPP_MAX_BODY) {
					send_error(c->fd, k < 0 ? 400 : 413, k < 0 ? ch.err_reason : "request body too large");
					strbuf_free(&chunked);
					return;
				}
				if (k > 0) {
					sa_add(&chunked, data, dlen);
					used += (size_t)k;
				} else if (read_to(c, c->in.len + 1, max, bdl) < 0) {
					strbuf_free(&chunked);
					return;
				}
			}
		}
		/* reading may have moved the buffer: the head's slices are re-made */
		if (http1_parse_request(c->in.p, c->in.len, &m, hdrs, &lim) != n) {
			strbuf_free(&chunked);
			return;
		}
		memset(&rq, 0, sizeof(rq));
		memset(&rs, 0, sizeof(rs));
		rq.m = &m;
		rq.head = m.method_len == 4 && !memcmp(m.method, "HEAD", 4);
		rq.path = m.target;
		rq.path_len = m.target_len;
		if (rq.path_len > 7 && !strncasecmp(rq.path, "http://", 7)) {   /* absolute-form */
			const char *slash = memchr(rq.path + 7, '/', rq.path_len - 7);

			rq.path_len = slash ? rq.path_len - (size_t)(slash - rq.path) : 1;
			rq.path = slash ? slash : "/";
		}
		{
			const char *q = memchr(rq.path, '?', rq.path_len);

			if (q) {
				rq.query = q + 1;
				rq.query_len = rq.path_len - (size_t)(q + 1 - rq.path);
				rq.path_len = (size_t)(q - rq.path);
			}
		}
		if (m.body == HTTP1_BODY_LENGTH) {
			rq.body = c->in.p + n;
			rq.body_len = (size_t)m.content_length;
		} else if (m.body == HTTP1_BODY_CHUNKED) {
			rq.body = chunked.p;
			rq.body_len = chunked.len;
		}
		handle(&rq, &rs);
		keep = !(m.flags & HTTP1_F_CONN_CLOSE) && !rs.body.oom && !rs.headers.oom;
		if (rs.body.oom || rs.headers.oom) {
			strbuf_free(&rs.body);
			strbuf_free(&rs.headers);
			resp_text(&rs, 500, "out of memory");
		}
		n = send_response(c, &rq, &rs, keep);
		log_request(c, &m, &rs, rq.head ? 0 : rs.body.len, t0);
		strbuf_free(&rq.fwd);
		strbuf_free(&rs.body);
		strbuf_free(&rs.headers);
		strbuf_free(&chunked);
		if (n < 0 || !keep)
			return;
		sa_buf_consume(&c->in, used);
		if (!c->in.len && c->in.cap > 65536)   /* a big body passed: give the memory back */
			sa_buf_free(&c->in);
	}
}

static void *conn_main(void *arg)
{
	struct sa_conn *c = arg;

	serve(c);
	/* counted out before the close a client can see, so a client that
	 * reconnects at once after a close never meets a stale count */
	__atomic_sub_fetch(&SA.active, 1, __ATOMIC_SEQ_CST);
	close(c->fd);
	sa_buf_free(&c->in);
	free(c);
	return NULL;
}

/* ------------------------------------------------------------------ the mode */

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: mesh sample-app NAME [--version vN] [--listen ADDR] [--proxy ADDR] [--quiet] [--max-conns N]\n"
	        "\n"
	        "Istio's Bookinfo workloads, for labs and tests (see docs/bookinfo.md):\n"
	        "  productpage  GET /productpage (HTML), /, /health, /login, /logout, /api/v1/products[/0[/reviews|/ratings]];\n"
	        "               calls details and reviews through its sidecar (--proxy required)\n"
	        "  details      GET /details/0\n"
	        "  reviews      GET /reviews/0; --version v1 (no stars), v2 (black stars), v3 (red stars);\n"
	        "               v2 and v3 call ratings through their sidecar (--proxy required)\n"
	        "  ratings      GET /ratings/0\n"
	        "\n"
	        "  --version vN    the workload version label (default v1)\n"
	        "  --listen ADDR   where the app listens (default 127.0.0.1:9080; ':9080' = all interfaces)\n"
	        "  --proxy ADDR    the sidecar's outbound listener, e.g. 127.0.0.1:15001; calls go there as\n"
	        "                  an HTTP proxy (GET http://reviews:9080/reviews/0)\n"
	        "  --quiet         no log line per request\n"
	        "  --max-conns N   connections served at once (default %d); more get a 503\n"
	        "Addresses are IP:port ([IPv6]:port); names are not resolved.\n",
	        SAPP_MAX_CONNS);
}

/* "--flag VALUE" or "--flag=VALUE": 1 and *val when argv[*i] is the flag
 * (*val NULL when the value is missing), 0 when it is another argument */
static int flag_arg(int argc, char **argv, int *i, const char *flag, const char **val)
{
	size_t fl = strlen(flag);

	if (strncmp(argv[*i], flag, fl))
		return 0;
	if (argv[*i][fl] == '=') {
		*val = argv[*i] + fl + 1;
		return 1;
	}
	if (argv[*i][fl])
		return 0;
	*val = *i + 1 < argc ? argv[++*i] : NULL;
	return 1;
}

static int valid_version(const char *v)
{
	size_t i, n = strlen(v);

	if (n == 0 || n > 32)
		return 0;
	for (i = 0; i < n; i++)
		if (!islower((unsigned char)v[i]) && !isdigit((unsigned char)v[i]) && v[i] != '-')
			return 0;
	return 1;
}

static int listen_on(const struct conf_addr *a)
{
	int fd, one = 1;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0 || listen(fd, 1024) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static void accept_loop(int lfd)
{
	pthread_attr_t attr;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, SAPP_STACK);
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		struct sa_conn *c;
		pthread_t t;
		int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC), one = 1;

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOMEM || errno == ENOBUFS) {
				log_error("accept: %s (pausing 100 ms)", strerror(errno));
				usleep(100000);
			} else if (errno != EINTR && errno != ECONNABORTED && errno != EPROTO && errno != EAGAIN) {
				log_error("accept on %s: %s", SA.listen.text, strerror(errno));
				return;
			}
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (__atomic_load_n(&SA.active, __ATOMIC_SEQ_CST) >= SA.max_conns) {
			if (!SA.quiet)
				log_warn("%s: %u connections already (--max-conns): refusing one with 503",
				         SA.workload, SA.max_conns);
			send_error(fd, 503, "too many connections");
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			send_error(fd, 503, "out of memory");
			close(fd);
			continue;
		}
		c->fd = fd;
		if (ss.ss_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, c->peer, sizeof(c->peer));
		else if (ss.ss_family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, c->peer, sizeof(c->peer));
		__atomic_add_fetch(&SA.active, 1, __ATOMIC_SEQ_CST);
		if (pthread_create(&t, &attr, conn_main, c) != 0) {
			__atomic_sub_fetch(&SA.active, 1, __ATOMIC_SEQ_CST);
			send_error(fd, 503, "cannot start a thread");
			close(fd);
			free(c);
		}
	}
}

int sampleapp_main(int argc, char **argv)
{
	static const char *const names[] = { "productpage", "details", "reviews", "ratings" };
	const char *name = NULL, *version = "v1", *listen_s = "127.0.0.1:9080", *proxy_s = NULL, *v;
	int i, lfd;
	size_t k;

	log_prefix = "sample-app";
	SA.max_conns = SAPP_MAX_CONNS;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
			SA.quiet = 1;
		} else if (flag_arg(argc, argv, &i, "--version", &v)) {
			if (!(version = v))
				goto missing;
		} else if (flag_arg(argc, argv, &i, "--listen", &v)) {
			if (!(listen_s = v))
				goto missing;
		} else if (flag_arg(argc, argv, &i, "--proxy", &v)) {
			if (!(proxy_s = v))
				goto missing;
		} else if (flag_arg(argc, argv, &i, "--max-conns", &v)) {
			char *e;
			long x;

			if (!v)
				goto missing;
			x = strtol(v, &e, 10);
			if (*e || x < 1 || x > 4096) {
				fprintf(stderr, "mesh sample-app: --max-conns %s: want a number 1..4096\n", v);
				return 2;
			}
			SA.max_conns = (unsigned)x;
		} else if (a[0] == '-') {
			fprintf(stderr, "mesh sample-app: unknown flag '%s' (see mesh sample-app --help)\n", a);
			return 2;
		} else if (!name) {
			name = a;
		} else {
			fprintf(stderr, "mesh sample-app: one app per process ('%s' and '%s')\n", name, a);
			return 2;
		}
	}
	if (!name) {
		usage(stderr);
		return 2;
	}
	for (k = 0; k < sizeof(names) / sizeof(names[0]); k++)
		if (!strcmp(name, names[k]))
			break;
	if (k == sizeof(names) / sizeof(names[0])) {
		fprintf(stderr, "mesh sample-app: unknown app '%s' (productpage, details, reviews or ratings)\n", name);
		return 2;
	}
	SA.kind = (enum sa_kind)k;
	SA.name = names[k];
	if (!valid_version(version)) {
		fprintf(stderr, "mesh sample-app: --version '%s': want a label such as v1 (a-z 0-9 -)\n", version);
		return 2;
	}
	if (SA.kind == SAPP_REVIEWS && strcmp(version, "v1") && strcmp(version, "v2") && strcmp(version, "v3")) {
		fprintf(stderr, "mesh sample-app: reviews --version '%s': Bookinfo has v1 (no stars), v2 (black) "
		                "and v3 (red)\n", version);
		return 2;
	}
	snprintf(SA.version, sizeof(SA.version), "%s", version);
	snprintf(SA.workload, sizeof(SA.workload), "%s-%s", SA.name, SA.version);
	if (SA.kind == SAPP_REVIEWS && strcmp(version, "v1")) {
		SA.ratings = 1;
		SA.star_color = strcmp(version, "v2") ? "red" : "black";
		SA.ratings_timeout_ms = strcmp(version, "v2") ? SAPP_REVIEWS_V3_CALL_MS : SAPP_REVIEWS_V2_CALL_MS;
	}
	if (conf_parse_addr(listen_s, &SA.listen, 0) < 0) {
		fprintf(stderr, "mesh sample-app: --listen '%s': not an address (IP:port, [IPv6]:port or :port; "
		                "names are not resolved)\n", listen_s);
		return 2;
	}
	if (proxy_s) {
		if (!strncmp(proxy_s, "http://", 7))
			proxy_s += 7;
		if (conf_parse_addr(proxy_s, &SA.proxy, 1) < 0) {
			fprintf(stderr, "mesh sample-app: --proxy '%s': not an address (IP:port of the sidecar's "
			                "outbound listener, e.g. 127.0.0.1:15001)\n", proxy_s);
			return 2;
		}
	} else if (SA.kind == SAPP_PRODUCTPAGE || SA.ratings) {
		fprintf(stderr, "mesh sample-app: %s calls %s through its sidecar: pass --proxy ADDR, the sidecar's "
		                "outbound listener (e.g. --proxy 127.0.0.1:15001)\n",
		        SA.workload, SA.kind == SAPP_PRODUCTPAGE ? "details and reviews" : "ratings");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	lfd = listen_on(&SA.listen);
	if (lfd < 0) {
		fprintf(stderr, "mesh sample-app: %s: cannot listen on %s: %s\n", SA.workload, SA.listen.text,
		        strerror(errno));
		return 1;
	}
	if (SA.proxy.set || proxy_s)
		log_info("%s listening on %s, calling through the sidecar at %s", SA.workload, SA.listen.text,
		         SA.proxy.text);
	else
		log_info("%s listening on %s", SA.workload, SA.listen.text);
	accept_loop(lfd);
	return 1;
missing:
	fprintf(stderr, "mesh sample-app: %s needs a value\n", argv[argc - 1]);
	return 2;
}
