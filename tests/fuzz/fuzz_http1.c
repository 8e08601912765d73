/*
 * libFuzzer target for http1: every input goes through the request parser,
 * the response parser (with and without HEAD) and the chunked decoder, and
 * the invariants the proxy relies on are asserted:
 *  - consumed <= len, every slice lies inside the consumed head;
 *  - -1 always comes with err_status and err_reason (status from the set);
 *  - prefixes agree with the whole: a finished head is -2 one byte short and
 *    the same with only its own bytes, an invalid one is -2 or the same
 *    status on any prefix, a "need more" stays "need more" on a prefix;
 *  - chunked decoding gives the same data, trailers, end and verdict whole,
 *    split in two at a position taken from the first byte, and byte by byte.
 * Prefix parses run on exactly-sized heap copies so ASan sees over-reads.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "../../modules/http1.c"

#define MAXH 16

static const struct http1_limits lims[2] = {
	{ 8192, 16384, MAXH },
	{ 40, 200, 4 },
};

static int inside(const char *s, size_t n, const char *b, size_t len)
{
	return n == 0 || (s >= b && s + n <= b + len && s + n >= s);
}

static void check_msg(const struct http1_msg *m, int r, const char *b, size_t len, int is_request,
                      const struct http1_limits *lim)
{
	size_t i;

	assert(r == -2 || r == -1 || (r > 0 && (size_t)r <= len));
	if (r == -1) {
		assert(m->err_reason != NULL);
		if (is_request)
			assert(m->err_status == 400 || m->err_status == 414 || m->err_status == 431 ||
			       m->err_status == 501 || m->err_status == 505);
		else
			assert(m->err_status == 502);
		return;
	}
	if (r < 0)
		return;
	assert(m->err_status == 0 && m->err_reason == NULL);
	assert((size_t)r <= lim->max_head);
	assert(m->num_headers <= lim->max_headers && m->minor_version >= 0 && m->minor_version <= 1);
	for (i = 0; i < m->num_headers; i++) {
		assert(m->headers[i].name_len > 0 && inside(m->headers[i].name, m->headers[i].name_len, b, (size_t)r));
		assert(inside(m->headers[i].value, m->headers[i].value_len, b, (size_t)r));
	}
	if (is_request) {
		assert(m->method_len > 0 && inside(m->method, m->method_len, b, (size_t)r));
		assert(m->target_len > 0 && inside(m->target, m->target_len, b, (size_t)r));
		assert(m->body != HTTP1_BODY_EOF);
		if (m->flags & HTTP1_F_HAS_HOST)
			assert(inside(m->host, m->host_len, b, (size_t)r));
		else
			assert(m->host == NULL);
		if (m->minor_version == 1)
			assert(m->flags & HTTP1_F_HAS_HOST);
	} else {
		assert(m->status >= 100 && m->status <= 999);
		assert(inside(m->reason, m->reason_len, b, (size_t)r));
	}
	if (m->body == HTTP1_BODY_LENGTH)
		assert(m->content_length > 0 && m->content_length <= CL_MAX);
	else
		assert(m->content_length == 0);
	if (m->minor_version == 0)
		assert(m->body != HTTP1_BODY_CHUNKED);
}

static int parse(const char *b, size_t len, struct http1_msg *m, struct http1_header *h,
                 const struct http1_limits *lim, int mode)
{
	if (mode == 0)
		return http1_parse_request(b, len, m, h, lim);
	return http1_parse_response(b, len, m, h, lim, mode == 2);
}

/* the same parse on the first k bytes, in a buffer of exactly k bytes */
static int parse_prefix(const uint8_t *data, size_t k, struct http1_msg *m, const struct http1_limits *lim,
                        int mode)
{
	struct http1_header h[MAXH];
	char *b = malloc(k ? k : 1);
	int r;

	memcpy(b, data, k);
	r = parse(b, k, m, h, lim, mode);
	check_msg(m, r, b, k, mode == 0, lim);
	free(b);
	return r;
}

static void fuzz_head(const uint8_t *data, size_t size, const struct http1_limits *lim, int mode)
{
	struct http1_header h[MAXH];
	struct http1_msg m, pm;
	size_t k = size ? (data[0] * 7919u) % (size + 1) : 0;
	int r, pr;

	r = parse((const char *)data, size, &m, h, lim, mode);
	check_msg(&m, r, (const char *)data, size, mode == 0, lim);
	if (r > 0) {
		pr = parse_prefix(data, (size_t)r, &pm, lim, mode);
		assert(pr == r && pm.body == m.body && pm.flags == m.flags && pm.num_headers == m.num_headers &&
		       pm.content_length == m.content_length);
		assert(parse_prefix(data, (size_t)r - 1, &pm, lim, mode) == -2);
		if (k < (size_t)r)
			assert(parse_prefix(data, k, &pm, lim, mode) == -2);
	} else if (r == -1) {
		pr = parse_prefix(data, k, &pm, lim, mode);
		assert(pr == -2 || (pr == -1 && pm.err_status == m.err_status));
	} else {
		assert(parse_prefix(data, k, &pm, lim, mode) == -2);
	}
}

struct chunk_out {
	ssize_t rc;               /* total consumed when done, -2 not done, -1 error */
	uint8_t *data;
	size_t data_len;
	const char *trailers;     /* a copy */
	size_t trailers_len;
	int done;
};

/* feeds data[0..size) in pieces whose ends are cuts[]; unconsumed bytes stay for the next call */
static void chunk_feed(const uint8_t *in, size_t size, const size_t *cuts, size_t ncuts, size_t max_trailer,
                       struct chunk_out *o)
{
	struct http1_chunked c;
	size_t pos = 0, i;

	memset(&c, 0, sizeof(c));
	memset(o, 0, sizeof(*o));
	o->data = malloc(size ? size : 1);
	o->rc = -2;
	for (i = 0; i < ncuts && !c.done; i++) {
		size_t avail = cuts[i];

		for (;;) {
			size_t n = avail - pos, dl = 0, tl = 0;
			const char *d, *t;
			char *b = malloc(n ? n : 1);
			ssize_t r;

			memcpy(b, in + pos, n);
			r = http1_chunked_decode(&c, b, n, &d, &dl, &t, &tl, max_trailer);
			if (r < 0) {
				assert(r == -1 && c.err_reason != NULL);
				free(b);
				o->rc = -1;
				return;
			}
			assert((size_t)r <= n);
			if (dl) {
				assert(d >= b && d + dl <= b + r);
				memcpy(o->data + o->data_len, d, dl);
				o->data_len += dl;
			}
			if (c.done && r > 0 && !o->done) {
				assert(t != NULL && tl <= max_trailer && t >= b && t + tl + 2 <= b + r);
				o->trailers = malloc(tl ? tl : 1);
				memcpy((char *)o->trailers, t, tl);
				o->trailers_len = tl;
				o->done = 1;
			} else {
				assert(dl > 0 || tl == 0);
			}
			free(b);
			pos += (size_t)r;
			if (r == 0 || c.done)
				break;
		}
	}
	if (c.done)
		o->rc = (ssize_t)pos;
}

static void chunk_same(const struct chunk_out *a, const struct chunk_out *b)
{
	assert(a->rc == b->rc && a->done == b->done);
	assert(a->data_len == b->data_len && memcmp(a->data, b->data, a->data_len) == 0);
	if (a->done)
		assert(a->trailers_len == b->trailers_len && memcmp(a->trailers, b->trailers, a->trailers_len) == 0);
}

static void chunk_free(struct chunk_out *o)
{
	free(o->data);
	o->data = NULL;
	free((char *)o->trailers);
	o->trailers = NULL;
}

static void fuzz_chunked(const uint8_t *data, size_t size)
{
	size_t max_trailer = size ? 16 + data[size - 1] * 4u : 64, k = size ? (data[0] * 7919u) % (size + 1) : 0;
	size_t cuts[2] = { k, size }, *each;
	struct chunk_out whole, split, bytes;
	size_t i;

	chunk_feed(data, size, &size, 1, max_trailer, &whole);
	chunk_feed(data, size, cuts, 2, max_trailer, &split);
	chunk_same(&whole, &split);
	chunk_free(&split);
	/* byte by byte is quadratic only while trailers are pending; keep it short */
	if (size <= 2048) {
		each = malloc((size ? size : 1) * sizeof(*each));
		for (i = 0; i < size; i++)
			each[i] = i + 1;
		chunk_feed(data, size, each, size, max_trailer, &bytes);
		chunk_same(&whole, &bytes);
		chunk_free(&bytes);
		free(each);
	}
	chunk_free(&whole);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int mode, l;

	for (l = 0; l < 2; l++)
		for (mode = 0; mode < 3; mode++)
			fuzz_head(data, size, &lims[l], mode);
	fuzz_chunked(data, size);
	return 0;
}
