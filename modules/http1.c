/*
 * http1: strict HTTP/1.x message heads and chunked framing (see http1.h).
 *
 * Data enters as the caller's read buffer; nothing is copied or allocated.
 * The head parsers are stateless: each call rescans buf from its start and
 * either finishes the head (returning its length, with http1_msg pointing
 * into buf), asks for more (-2), or rejects it (-1, err_status/err_reason).
 * A byte that makes a message invalid makes every longer buffer invalid the
 * same way, so a parser fed one byte at a time fails with the same status.
 * Limits are enforced by parsing only the first max_head (and for the start
 * line max_request_line) bytes: running out there means the limit is blown.
 * The chunked decoder is the one stateful piece (struct http1_chunked).
 * Known limit: a head trickled in byte by byte is rescanned on every call
 * (quadratic in max_head, as with picohttpparser); keep max_head modest.
 *
 * Rejected forms. Requests get the status shown; any response error is 502.
 *  start line
 *   - bare LF, or CR not followed by LF, anywhere in the head          400
 *   - empty method or a method byte that is not a tchar                400
 *   - anything but exactly one SP after the method or the target       400
 *   - empty request-target, or a target byte outside 0x21-0x7e         400
 *   - version not of the form "HTTP/" DIGIT "." DIGIT, then CRLF       400
 *   - well-formed version other than HTTP/1.0 and HTTP/1.1             505
 *   - request line (with CRLF) over max_request_line, even unfinished  414
 *   - leading empty lines (CRLF) before a request are skipped, counted in
 *     the result and in max_head; nothing else before it is
 *   - responses: version other than HTTP/1.0 or 1.1, status not 3 digits
 *     in 100-999, neither SP nor CRLF after it ("HTTP/1.1 200\r\n" is
 *     tolerated), CTL in the reason phrase; no leading empty lines
 *  header fields
 *   - whole head over max_head, even unfinished                        431
 *   - more than max_headers fields                                     431
 *   - line starting with SP or HTAB (obs-fold, or SP before 1st field) 400
 *   - empty field name, non-tchar in the name, no colon                400
 *   - SP or HTAB between the field name and the colon                  400
 *   - NUL, DEL or any CTL but HTAB in a value                          400
 *  framing and routing fields
 *   - Content-Length member not 1+ digits (sign, inner space, empty)   400
 *     ("5, 5" and repeated equal fields are accepted as 5)
 *   - Content-Length over 2^62                                         400
 *   - Content-Length fields or list members that differ                400
 *   - Transfer-Encoding in an HTTP/1.0 message                         400
 *   - both Transfer-Encoding and Content-Length                        400
 *   - Transfer-Encoding (all fields, as one list) other than exactly
 *     one "chunked": gzip, "chunked, chunked", identity, empty ...      501
 *   - more than one Host; no Host in HTTP/1.1                          400
 *   - Host with a byte outside A-Z a-z 0-9 . - : [ ] _ ~ % ! $ & ' ( )
 *     * + , ; = (so no whitespace, '/', '@')                           400
 *   Responses go through the same framing checks even when their status
 *   or the HEAD request means they have no body.
 *  chunked bodies (decode returns -1)
 *   - no hex digit, more than 16 hex digits, whitespace after the size
 *   - CTL other than HTAB in a chunk extension; size line over 4096
 *   - bare LF or CR not followed by LF after the size line
 *   - anything but CRLF right after chunk data
 *   - trailer lines that would be rejected as header fields; trailer
 *     section over max_trailer
 */
#include <limits.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "http1.h"

#define CT_TCHAR 0x01  /* RFC 9110 tchar */
#define CT_VALUE 0x02  /* field-value / reason / chunk-ext byte: VCHAR, SP, HTAB, obs-text */
#define CT_HOST  0x04  /* allowed in a Host value */

static const unsigned char ctab[256] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0,  /* 0x00 */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* 0x10 */
	2, 7, 2, 3, 7, 7, 7, 7, 6, 6, 7, 7, 6, 7, 7, 2,  /* 0x20 */
	7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 2, 6, 2, 2,  /* 0x30 */
	2, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,  /* 0x40 */
	7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 2, 6, 3, 7,  /* 0x50 */
	3, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,  /* 0x60 */
	7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 2, 3, 2, 7, 0,  /* 0x70 */
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,  /* 0x80 */
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,  /* 0x90 */
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,  /* 0xa0 */
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,  /* 0xb0 */
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,  /* 0xc0 */
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,  /* 0xd0 */
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,  /* 0xe0 */
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,  /* 0xf0 */
};

#define IS(c, cls) (ctab[(unsigned char)(c)] & (cls))

#define CL_MAX ((uint64_t)1 << 62)   /* larger Content-Length values are refused */
#define CHUNK_LINE_MAX 4096          /* chunk size line incl. extensions and CRLF */

/* internal parser results besides a position */
#define NEED_MORE (-2)
#define INVALID   (-1)

struct perr {
	int status;
	const char *reason;
};

static ssize_t fail(struct perr *e, int status, const char *reason)
{
	e->status = status;
	e->reason = reason;
	return INVALID;
}

/* first byte at or after p that may not appear in a field value (or end) */
static inline size_t scan_value(const char *buf, size_t p, size_t end)
{
#ifdef __SSE2__
	/* header values dominate head bytes; 16 at a time pays off */
	const __m128i c1f = _mm_set1_epi8(0x1f), ht = _mm_set1_epi8('\t');
	const __m128i del = _mm_set1_epi8(0x7f);

	while (end - p >= 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(buf + p));
		__m128i ctl = _mm_cmpeq_epi8(_mm_max_epu8(v, c1f), c1f);
		ctl = _mm_andnot_si128(_mm_cmpeq_epi8(v, ht), ctl);
		ctl = _mm_or_si128(ctl, _mm_cmpeq_epi8(v, del));
		unsigned mask = (unsigned)_mm_movemask_epi8(ctl);
		if (mask)
			return p + (size_t)__builtin_ctz(mask);
		p += 16;
	}
#endif
	while (p < end && IS(buf[p], CT_VALUE))
		p++;
	return p;
}

/* first byte at or after p outside 0x21-0x7e (or end) */
static inline size_t scan_target(const char *buf, size_t p, size_t end)
{
#ifdef __SSE2__
	const __m128i sp = _mm_set1_epi8(0x20), del = _mm_set1_epi8(0x7f);

	while (end - p >= 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(buf + p));
		/* signed compare: 0x80-0xff are negative, so also "not > SP" */
		unsigned ok = (unsigned)_mm_movemask_epi8(_mm_cmpgt_epi8(v, sp));
		unsigned bad = (~ok & 0xffffu) | (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, del));
		if (bad)
			return p + (size_t)__builtin_ctz(bad);
		p += 16;
	}
#endif
	while (p < end && (unsigned char)(buf[p] - 0x21) < 0x5e)
		p++;
	return p;
}

static inline size_t skip_ows(const char *buf, size_t p, size_t end)
{
	while (p < end && (buf[p] == ' ' || buf[p] == '\t'))
		p++;
	return p;
}

/* at buf[p] == '\r' or '\n': checks for a full CRLF */
static ssize_t expect_crlf(const char *buf, size_t p, size_t end, struct perr *e)
{
	if (buf[p] == '\n')
		return fail(e, 400, "bare LF");
	if (p + 1 == end)
		return NEED_MORE;
	if (buf[p + 1] != '\n')
		return fail(e, 400, "bare CR");
	return (ssize_t)(p + 2);
}

/*
 * Parses header-field lines from buf[p..end) through the empty line.
 * Returns the position after the empty line, NEED_MORE or INVALID. hdrs may
 * be NULL (trailers: validate only).
 */
static ssize_t parse_fields(const char *buf, size_t p, size_t end,
                            struct http1_header *hdrs, size_t max, size_t *num,
                            struct perr *e)
{
	size_t n = 0;

	for (;;) {
		size_t name, name_len, val, vend;
		ssize_t r;

		if (p == end)
			return NEED_MORE;
		if (buf[p] == '\r' || buf[p] == '\n') {
			if ((r = expect_crlf(buf, p, end, e)) < 0)
				return r;
			*num = n;
			return r;
		}
		if (buf[p] == ' ' || buf[p] == '\t')
			return fail(e, 400, "obs-fold");
		if (n == max)
			return fail(e, 431, "too many header fields");

		name = p;
		while (p < end && IS(buf[p], CT_TCHAR))
			p++;
		if (p == end)
			return NEED_MORE;
		if (buf[p] != ':') {
			if (buf[p] == ' ' || buf[p] == '\t')
				return fail(e, 400, "whitespace before colon");
			if (buf[p] == '\n')
				return fail(e, 400, "bare LF");
			return fail(e, 400, "bad header name");
		}
		name_len = p - name;
		if (name_len == 0)
			return fail(e, 400, "bad header name");

		val = skip_ows(buf, p + 1, end);
		p = scan_value(buf, val, end);
		if (p == end)
			return NEED_MORE;
		if (buf[p] != '\r' && buf[p] != '\n')
			return fail(e, 400, "bad header value");
		if ((r = expect_crlf(buf, p, end, e)) < 0)
			return r;
		vend = p;
		while (vend > val && (buf[vend - 1] == ' ' || buf[vend - 1] == '\t'))
			vend--;
		if (hdrs) {
			hdrs[n].name = buf + name;
			hdrs[n].name_len = name_len;
			hdrs[n].value = buf + val;
			hdrs[n].value_len = vend - val;
		}
		n++;
		p = (size_t)r;
	}
}

/* "HTTP/" DIGIT "." DIGIT at buf[p..]; returns the position after it */
static ssize_t parse_version(const char *buf, size_t p, size_t end, int *major,
                             int *minor, struct perr *e)
{
	static const char proto[] = "HTTP/";
	size_t i;

	for (i = 0; i < 8; i++) {
		char c;

		if (p + i == end)
			return NEED_MORE;
		c = buf[p + i];
		if (i < 5 ? c != proto[i] : i == 6 ? c != '.' : (unsigned char)(c - '0') > 9)
			return fail(e, 400, c == '\n' ? "bare LF" : "bad HTTP version");
	}
	*major = buf[p + 5] - '0';
	*minor = buf[p + 7] - '0';
	return (ssize_t)(p + 8);
}

static ssize_t parse_request_line(const char *buf, size_t p, size_t end,
                                  struct http1_msg *m, struct perr *e)
{
	size_t start = p;
	int major, minor;
	ssize_t r;

	while (p < end && IS(buf[p], CT_TCHAR))
		p++;
	if (p == end)
		return NEED_MORE;
	if (buf[p] != ' ' || p == start)
		return fail(e, 400, buf[p] == '\n' ? "bare LF" : "bad method");
	m->method = buf + start;
	m->method_len = p - start;

	start = ++p;
	p = scan_target(buf, p, end);
	if (p == end)
		return NEED_MORE;
	if (buf[p] != ' ' || p == start)
		return fail(e, 400, buf[p] == '\n' ? "bare LF" : "bad request-target");
	m->target = buf + start;
	m->target_len = p - start;

	if ((r = parse_version(buf, p + 1, end, &major, &minor, e)) < 0)
		return r;
	p = (size_t)r;
	if (p == end)
		return NEED_MORE;
	if (buf[p] != '\r' && buf[p] != '\n')
		return fail(e, 400, "bad request line");
	if ((r = expect_crlf(buf, p, end, e)) < 0)
		return r;
	if (major != 1 || minor > 1)
		return fail(e, 505, "HTTP version not supported");
	m->minor_version = minor;
	return r;
}

static ssize_t parse_status_line(const char *buf, size_t p, size_t end,
                                 struct http1_msg *m, struct perr *e)
{
	int major, minor, status = 0;
	size_t i, reason;
	ssize_t r;

	if ((r = parse_version(buf, p, end, &major, &minor, e)) < 0)
		return r;
	if (major != 1 || minor > 1)
		return fail(e, 502, "HTTP version not supported");
	m->minor_version = minor;
	p = (size_t)r;
	for (i = 0; i < 4; i++) {
		if (p + i == end)
			return NEED_MORE;
		if (i == 0 ? buf[p] != ' ' : (unsigned char)(buf[p + i] - '0') > 9)
			return fail(e, 502, "bad status line");
		if (i)
			status = status * 10 + buf[p + i] - '0';
	}
	if (status < 100)
		return fail(e, 502, "bad status code");
	m->status = status;
	p += 4;
	if (p == end)
		return NEED_MORE;
	/* "HTTP/1.1 200\r\n": tolerated, the reason is empty anyway */
	if (buf[p] == ' ')
		p++;
	else if (buf[p] != '\r' && buf[p] != '\n')
		return fail(e, 502, "bad status line");
	reason = p;
	p = scan_value(buf, p, end);
	if (p == end)
		return NEED_MORE;
	if (buf[p] != '\r' && buf[p] != '\n')
		return fail(e, 502, "bad reason phrase");
	if ((r = expect_crlf(buf, p, end, e)) < 0)
		return r;
	m->reason = buf + reason;
	m->reason_len = p - reason;
	return r;
}

int http1_ieq(const char *s, size_t n, const char *lit)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (lit[i] == '\0')
			return 0;
		if ((unsigned)(c - 'A') < 26)
			c |= 0x20;
		if (c != (unsigned char)lit[i])
			return 0;
	}
	return lit[n] == '\0';
}

int http1_find_header(const struct http1_msg *m, const char *lname)
{
	size_t i, n = strlen(lname);

	for (i = 0; i < m->num_headers; i++)
		if (m->headers[i].name_len == n && http1_ieq(m->headers[i].name, n, lname))
			return (int)i;
	return -1;
}

/*
 * Walks a comma-separated list: *i is the cursor (0 to start). Yields every
 * element, empty ones included, OWS trimmed; returns 0 past the last one.
 */
static int list_next(const char *v, size_t n, size_t *i, const char **el, size_t *el_len)
{
	size_t s = *i, c, t;

	if (s > n)
		return 0;
	c = s;
	while (c < n && v[c] != ',')
		c++;
	*i = c + 1;
	s = skip_ows(v, s, c);
	t = c;
	while (t > s && (v[t - 1] == ' ' || v[t - 1] == '\t'))
		t--;
	*el = v + s;
	*el_len = t - s;
	return 1;
}

/* folds one Content-Length field into *cl; returns NULL or an error reason */
static const char *content_length(const char *v, size_t n, uint64_t *cl, int *seen)
{
	const char *el;
	size_t len, i = 0, k;

	while (list_next(v, n, &i, &el, &len)) {
		uint64_t x = 0;

		if (len == 0)
			return "bad Content-Length";
		for (k = 0; k < len; k++) {
			unsigned d = (unsigned char)el[k] - (unsigned)'0';

			if (d > 9)
				return "bad Content-Length";
			if (x > (CL_MAX - d) / 10)
				return "Content-Length too large";
			x = x * 10 + d;
		}
		if (*seen && x != *cl)
			return "conflicting Content-Length";
		*cl = x;
		*seen = 1;
	}
	return NULL;
}

/* framing, Host and connection flags from the parsed headers */
static int derive(struct http1_msg *m, int is_request, struct perr *e)
{
	const struct http1_header *host = NULL;
	const char *cl_err = NULL, *el;
	size_t i, k, len, hosts = 0, te_elems = 0, te_chunked = 0;
	int cl_seen = 0, te_seen = 0, upgrade = 0, conn_upgrade = 0;
	uint64_t cl = 0;

	for (i = 0; i < m->num_headers; i++) {
		const struct http1_header *h = &m->headers[i];

		/* dispatch on length first: most fields are none of these */
		switch (h->name_len) {
		case 4:
			if (http1_ieq(h->name, 4, "host")) {
				hosts++;
				host = h;
			}
			break;
		case 6:
			if (is_request && m->minor_version == 1 && http1_ieq(h->name, 6, "expect") &&
			    http1_ieq(h->value, h->value_len, "100-continue"))
				m->flags |= HTTP1_F_EXPECT_CONTINUE;
			break;
		case 7:
			if (http1_ieq(h->name, 7, "upgrade"))
				upgrade = 1;
			break;
		case 10:
			if (!http1_ieq(h->name, 10, "connection"))
				break;
			k = 0;
			while (list_next(h->value, h->value_len, &k, &el, &len)) {
				if (http1_ieq(el, len, "close"))
					m->flags |= HTTP1_F_CONN_CLOSE;
				else if (http1_ieq(el, len, "keep-alive"))
					m->flags |= HTTP1_F_CONN_KEEPALIVE;
				else if (http1_ieq(el, len, "upgrade"))
					conn_upgrade = 1;
			}
			break;
		case 14:
			if (!cl_err && http1_ieq(h->name, 14, "content-length"))
				cl_err = content_length(h->value, h->value_len, &cl, &cl_seen);
			break;
		case 17:
			if (!http1_ieq(h->name, 17, "transfer-encoding"))
				break;
			te_seen = 1;
			k = 0;
			while (list_next(h->value, h->value_len, &k, &el, &len)) {
				te_elems++;
				te_chunked += (size_t)http1_ieq(el, len, "chunked");
			}
			break;
		}
	}

	/* fixed order, so the verdict does not depend on field order */
	if (is_request && hosts > 1)
		return (int)fail(e, 400, "multiple Host");
	if (cl_err)
		return (int)fail(e, 400, cl_err);
	if (te_seen && m->minor_version == 0)
		return (int)fail(e, 400, "Transfer-Encoding in HTTP/1.0");
	if (te_seen && cl_seen)
		return (int)fail(e, 400, "both Content-Length and Transfer-Encoding");
	if (te_seen && (te_elems != 1 || te_chunked != 1))
		return (int)fail(e, 501, "unsupported transfer-coding");
	if (is_request && hosts == 0 && m->minor_version == 1)
		return (int)fail(e, 400, "missing Host");
	if (is_request && host) {
		for (k = 0; k < host->value_len; k++)
			if (!IS(host->value[k], CT_HOST))
				return (int)fail(e, 400, "bad Host");
		m->host = host->value;
		m->host_len = host->value_len;
		m->flags |= HTTP1_F_HAS_HOST;
	}

	if (m->minor_version == 0 && !(m->flags & HTTP1_F_CONN_KEEPALIVE))
		m->flags |= HTTP1_F_CONN_CLOSE;
	/* RFC 9110 7.8: Upgrade is ignored in HTTP/1.0 */
	if (upgrade && conn_upgrade && m->minor_version == 1)
		m->flags |= HTTP1_F_UPGRADE;

	if (te_seen) {
		m->body = HTTP1_BODY_CHUNKED;
	} else if (cl_seen) {
		m->body = cl ? HTTP1_BODY_LENGTH : HTTP1_BODY_NONE;
		m->content_length = cl;
	} else {
		m->body = is_request ? HTTP1_BODY_NONE : HTTP1_BODY_EOF;
	}
	return 0;
}

static void msg_reset(struct http1_msg *m, struct http1_header *hdrs)
{
	memset(m, 0, sizeof(*m));
	m->headers = hdrs;
}

/* min(a, b + c) without wrapping */
static size_t cap(size_t a, size_t b, size_t c)
{
	return c >= a || b >= a - c ? a : b + c;
}

/*
 * The shared body of both head parsers. Limits work by truncation: the start
 * line sees at most max_request_line bytes and the head at most max_head, so
 * running out of input inside a truncated window means a limit was exceeded.
 */
static int parse_head(const char *buf, size_t len, struct http1_msg *m,
                      struct http1_header *hdrs, const struct http1_limits *lim,
                      int is_request, struct perr *e)
{
	size_t hend = cap(len, 0, lim->max_head < INT_MAX ? lim->max_head : INT_MAX);
	size_t p = 0, lend;
	ssize_t r;

	msg_reset(m, hdrs);
	/* RFC 9112 2.2: a server should ignore empty lines before a request */
	while (is_request && p < hend && (buf[p] == '\r' || buf[p] == '\n')) {
		if ((r = expect_crlf(buf, p, hend, e)) < 0)
			goto out;
		p = (size_t)r;
	}
	lend = cap(hend, p, lim->max_request_line);
	r = is_request ? parse_request_line(buf, p, lend, m, e) : parse_status_line(buf, p, lend, m, e);
	if (r == NEED_MORE && lend < len && lend < hend)
		return (int)fail(e, 414, is_request ? "request line too long" : "status line too long");
	if (r < 0)
		goto out;
	r = parse_fields(buf, (size_t)r, hend, hdrs, lim->max_headers, &m->num_headers, e);
	if (r < 0)
		goto out;
	if (derive(m, is_request, e) < 0)
		return INVALID;
	return (int)r;
out:
	if (r == NEED_MORE && hend < len)
		return (int)fail(e, 431, "head too large");
	return (int)r;
}

int http1_parse_request(const char *buf, size_t len, struct http1_msg *m,
                        struct http1_header *hdrs, const struct http1_limits *lim)
{
	struct perr e = { 0, NULL };
	int r = parse_head(buf, len, m, hdrs, lim, 1, &e);

	if (r == INVALID) {
		m->err_status = e.status;
		m->err_reason = e.reason;
	}
	return r;
}

int http1_parse_response(const char *buf, size_t len, struct http1_msg *m,
                         struct http1_header *hdrs, const struct http1_limits *lim,
                         int head_request)
{
	struct perr e = { 0, NULL };
	int r = parse_head(buf, len, m, hdrs, lim, 0, &e);

	if (r == INVALID) {
		m->err_status = 502;
		m->err_reason = e.reason;
		return r;
	}
	if (r > 0 && (head_request || m->status < 200 || m->status == 204 || m->status == 304)) {
		m->body = HTTP1_BODY_NONE;
		m->content_length = 0;
	}
	return r;
}

/* http1_chunked.state */
enum {
	CH_SIZE = 0,   /* hex digits of the size; line_len counts them */
	CH_EXT,        /* chunk extensions up to CR */
	CH_SIZE_LF,    /* LF ending the size line */
	CH_DATA,       /* remaining data bytes */
	CH_DATA_CR,    /* CRLF after the data */
	CH_DATA_LF,
	CH_TRAILER,    /* waiting for the whole trailer section */
	CH_DONE,
	CH_ERROR,
};

static ssize_t chunk_fail(struct http1_chunked *c, const char *reason)
{
	c->state = CH_ERROR;
	c->err_reason = reason;
	return -1;
}

static inline int hexval(unsigned char ch)
{
	if ((unsigned)(ch - '0') < 10)
		return ch - '0';
	ch |= 0x20;
	if ((unsigned)(ch - 'a') < 6)
		return ch - 'a' + 10;
	return -1;
}

ssize_t http1_chunked_decode(struct http1_chunked *c, const char *buf, size_t len,
                             const char **data, size_t *data_len,
                             const char **trailers, size_t *trailers_len,
                             size_t max_trailer)
{
	size_t p = 0;

	*data = NULL;
	*data_len = 0;
	if (trailers)
		*trailers = NULL;
	if (trailers_len)
		*trailers_len = 0;
	if (c->state == CH_ERROR)
		return -1;

	while (p < len) {
		unsigned char ch = (unsigned char)buf[p];
		int v;

		switch (c->state) {
		case CH_SIZE:
			if ((v = hexval(ch)) >= 0) {
				if (c->line_len == 16)
					return chunk_fail(c, "chunk size too large");
				c->remaining = c->remaining << 4 | (unsigned)v;
			} else if (c->line_len == 0) {
				return chunk_fail(c, "bad chunk size");
			} else if (ch == ';') {
				c->state = CH_EXT;
			} else if (ch == '\r') {
				c->state = CH_SIZE_LF;
			} else {
				return chunk_fail(c, ch == '\n' ? "bare LF" : "bad chunk size");
			}
			c->line_len++;
			p++;
			break;
		case CH_EXT:
			if (ch == '\r')
				c->state = CH_SIZE_LF;
			else if (!IS(ch, CT_VALUE))
				return chunk_fail(c, ch == '\n' ? "bare LF" : "bad chunk extension");
			if (++c->line_len > CHUNK_LINE_MAX)
				return chunk_fail(c, "chunk size line too long");
			p++;
			break;
		case CH_SIZE_LF:
			if (ch != '\n')
				return chunk_fail(c, "bare CR");
			if (++c->line_len > CHUNK_LINE_MAX)
				return chunk_fail(c, "chunk size line too long");
			p++;
			c->line_len = 0;
			c->state = c->remaining ? CH_DATA : CH_TRAILER;
			break;
		case CH_DATA: {
			/* one data run per call: the caller forwards it before more framing */
			size_t n = len - p;

			if (c->remaining < n)
				n = (size_t)c->remaining;
			*data = buf + p;
			*data_len = n;
			c->remaining -= n;
			if (c->remaining == 0)
				c->state = CH_DATA_CR;
			return (ssize_t)(p + n);
		}
		case CH_DATA_CR:
		case CH_DATA_LF:
			if (ch != (c->state == CH_DATA_CR ? '\r' : '\n'))
				return chunk_fail(c, "missing CRLF after chunk data");
			c->state = c->state == CH_DATA_CR ? CH_DATA_LF : CH_SIZE;
			p++;
			break;
		case CH_TRAILER: {
			/* the final CRLF is not counted against max_trailer */
			size_t avail = len - p, end = cap(avail, 2, max_trailer), n;
			struct perr e = { 0, NULL };
			ssize_t r = parse_fields(buf + p, 0, end, NULL, (size_t)-1, &n, &e);

			if (r == INVALID)
				return chunk_fail(c, e.reason);
			c->trailer_len = avail;
			if (r == NEED_MORE) {
				if (end < avail)
					return chunk_fail(c, "trailers too large");
				return (ssize_t)p;
			}
			if (trailers)
				*trailers = buf + p;
			if (trailers_len)
				*trailers_len = (size_t)r - 2;
			c->trailer_len = (size_t)r;
			c->state = CH_DONE;
			c->done = 1;
			return (ssize_t)p + r;
		}
		default:   /* CH_DONE: the body is over; bytes after it are not ours */
			return (ssize_t)p;
		}
	}
	return (ssize_t)p;
}

int http1_request_whole(const char *buf, size_t len, size_t max, struct http1_msg *m, struct http1_header *hdrs,
                        const struct http1_limits *lim, size_t *body_len, int *keep, int *status,
                        const char **reason)
{
	int head;

	memset(m, 0, sizeof(*m));
	*body_len = 0;
	head = http1_parse_request(buf, len, m, hdrs, lim);
	if (head == -2) {
		if (len < max)
			return -2;
		*status = 431;
		*reason = "request head too large";
		return -1;
	}
	if (head < 0) {
		*status = m->err_status ? m->err_status : 400;
		*reason = m->err_reason ? m->err_reason : "bad request";
		return -1;
	}
	*keep = !(m->flags & HTTP1_F_CONN_CLOSE);
	if (m->body == HTTP1_BODY_CHUNKED) {
		*status = 411;
		*reason = "send the body with a Content-Length";
		return -1;
	}
	if (m->body == HTTP1_BODY_LENGTH) {
		if (m->content_length > max - (size_t)head) {
			*status = 413;
			*reason = "request too large";
			return -1;
		}
		*body_len = (size_t)m->content_length;
		if (len < (size_t)head + *body_len)
			return -2;
	}
	if (len > (size_t)head + *body_len)
		*keep = 0;  /* no pipelining: answer this one and close */
	return head;
}
