/*
 * backend: the test origin the end-to-end scenarios put behind the proxy.
 *
 *   backend -p PORT [-n NAME] [-b ADDR]
 *
 * A thread per connection, blocking I/O, persistent connections. It is
 * deliberately independent of the proxy's code (its own small parser) so the
 * two cannot share a bug. Request bodies may be Content-Length or chunked
 * (decoded here); anything it cannot parse gets a 400 and a close.
 *
 * Endpoints (every response carries `x-backend: NAME`):
 *   /                 200 "NAME\n"
 *   /echo             the request body back (Content-Length when the request had
 *                     one, else chunked; chunked request trailers come back as
 *                     response trailers)
 *   /headers          the request head exactly as received, as the body
 *   /bytes?n=N        N bytes, Content-Length, streamed
 *   /chunked?n=N[&trailer=1]  N bytes chunked, trailer x-checksum: <sum of bytes>
 *   /sink             reads the body, "bytes=<n>\n"
 *   /expect           like /sink; says whether Expect: 100-continue was seen
 *   /status/CODE      that status (no body for 1xx/204/304 and HEAD)
 *   /delay?ms=N       waits, then 200
 *   /stats            "connections=A requests=R open=O bad=B\n"
 *   /close            responds with Connection: close and closes
 *   /hop              a response carrying hop-by-hop headers (Connection-listed,
 *                     Keep-Alive, Proxy-Authenticate) and X-Resp-Kept: yes
 *   /reject           413 without reading the request body, then close
 *   /eof?n=N          N bytes, no length: the body ends when the connection closes
 *   /truncate?n=N     Content-Length N, sends N/2 bytes, closes
 *   /bad?kind=K       a malformed response (garbage, both, cl2, badchunk, fold, lf)
 *   /ws               WebSocket (Upgrade: websocket): 101, then echoes frames
 *
 * Counting: `requests` counts every request head that reaches the backend,
 * parsable or not (a bad one also bumps `bad`), except /stats itself, so a
 * smuggling test can assert that nothing was forwarded. `connections` counts
 * accepted connections, the /stats one included; `open` is the current number.
 * Expect: 100-continue is honoured on every endpoint that reads a body.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define MAX_HEAD (64 * 1024)
#define BUF_SIZE (64 * 1024)
#define MAX_HDRS 128

static const char *name = "backend";
static long n_connections, n_requests, n_open, n_bad;
static char pattern[BUF_SIZE];  /* 'a' + (i % 26); read-only once main() filled it */

/* ------------------------------------------------------------ connection I/O */

struct conn {
	int fd;
	char *buf;          /* read buffer */
	size_t start, end;  /* unread bytes are buf[start..end) */
	char *out;          /* scratch for responses */
};

static int fill(struct conn *c)
{
	ssize_t n;

	if (c->start == c->end)
		c->start = c->end = 0;
	if (c->end == BUF_SIZE) {
		if (c->start == 0)
			return -1;
		memmove(c->buf, c->buf + c->start, c->end - c->start);
		c->end -= c->start;
		c->start = 0;
	}
	do
		n = read(c->fd, c->buf + c->end, BUF_SIZE - c->end);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return -1;
	c->end += (size_t)n;
	return 0;
}

static int write_all(int fd, const void *p, size_t n)
{
	const char *s = p;

	while (n > 0) {
		ssize_t w = write(fd, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

static int writef(int fd, const char *fmt, ...)
{
	char tmp[4096];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return -1;
	return write_all(fd, tmp, (size_t)n);
}

/* ------------------------------------------------------------ request model */

struct hdr {
	char *name, *value;
};

enum body { BODY_NONE, BODY_LENGTH, BODY_CHUNKED };

struct req {
	char head[MAX_HEAD + 1];  /* raw head as received (NUL-terminated copy) */
	size_t head_len;
	char work[MAX_HEAD + 1];  /* parsed, NUL-separated copy */
	char *method, *target, *path, *query;
	int minor;
	struct hdr h[MAX_HDRS];
	int nh;
	enum body body;
	uint64_t remaining;       /* BODY_LENGTH: bytes left; BODY_CHUNKED: in chunk */
	int chunk_state;          /* 0 = expect size line, 1 = in data, 2 = done */
	int expect_continue, sent_continue;
	int keepalive;
	int head_method;
	char trailers[4096];      /* raw trailer lines of a chunked request */
	size_t trailers_len;
};

static const char *hget(struct req *r, const char *n)
{
	int i;

	for (i = 0; i < r->nh; i++)
		if (!strcasecmp(r->h[i].name, n))
			return r->h[i].value;
	return NULL;
}

static int hcount(struct req *r, const char *n)
{
	int i, k = 0;

	for (i = 0; i < r->nh; i++)
		if (!strcasecmp(r->h[i].name, n))
			k++;
	return k;
}

/* token list contains tok (case-insensitive), e.g. Connection: keep-alive, Upgrade */
static int has_token(const char *list, const char *tok)
{
	size_t tl = strlen(tok);
	const char *p = list;

	while (p && *p) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		const char *e = p;
		while (*e && *e != ',')
			e++;
		const char *t = e;
		while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
			t--;
		if ((size_t)(t - p) == tl && !strncasecmp(p, tok, tl))
			return 1;
		p = e;
	}
	return 0;
}

static int qparam(struct req *r, const char *key, unsigned long long *v)
{
	size_t kl = strlen(key);
	const char *p = r->query;

	while (p && *p) {
		if (!strncmp(p, key, kl) && p[kl] == '=') {
			*v = strtoull(p + kl + 1, NULL, 10);
			return 1;
		}
		p = strchr(p, '&');
		if (p)
			p++;
	}
	return 0;
}

/*
 * Reads one request head. Returns 1 ok, 0 on a clean EOF before any byte,
 * -1 on EOF/error mid-head, -400/-431 for a bad head (already counted).
 */
static int read_head(struct conn *c, struct req *r)
{
	char *eoh;
	size_t scanned = 0;

	for (;;) {
		char *s = c->buf + c->start;
		size_t n = c->end - c->start;
		/* a bare LF anywhere in the head is a parse error: look for CRLFCRLF
		 * while checking every LF is preceded by CR */
		eoh = NULL;
		for (size_t i = scanned; i < n; i++) {
			if (s[i] == '\n') {
				if (i == 0 || s[i - 1] != '\r')
					return -400;
				if (i >= 3 && s[i - 2] == '\n' && s[i - 3] == '\r') {
					eoh = s + i + 1;
					break;
				}
			}
		}
		if (eoh)
			break;
		scanned = n > 0 ? n - 1 : 0;
		if (n >= MAX_HEAD)
			return -431;
		if (fill(c) < 0)
			return n == 0 ? 0 : -1;
		scanned = scanned > 0 ? scanned : 0;
	}
	r->head_len = (size_t)(eoh - (c->buf + c->start));
	memcpy(r->head, c->buf + c->start, r->head_len);
	r->head[r->head_len] = 0;
	memcpy(r->work, r->head, r->head_len + 1);
	c->start += r->head_len;
	/* a NUL inside the head would hide the rest from the string parsing below */
	if (strlen(r->head) != r->head_len)
		return -400;

	/* request line */
	char *line = r->work, *next = strstr(line, "\r\n");
	*next = 0;
	next += 2;
	r->method = line;
	char *sp = strchr(line, ' ');
	if (!sp || sp == line)
		return -400;
	*sp = 0;
	r->target = sp + 1;
	sp = strchr(r->target, ' ');
	if (!sp || sp == r->target)
		return -400;
	*sp = 0;
	if (!strcmp(sp + 1, "HTTP/1.1"))
		r->minor = 1;
	else if (!strcmp(sp + 1, "HTTP/1.0"))
		r->minor = 0;
	else
		return -400;
	for (char *m = r->method; *m; m++)
		if (!isupper((unsigned char)*m) && *m != '-')
			return -400;
	for (char *t = r->target; *t; t++)
		if ((unsigned char)*t <= 0x20 || *t == 0x7f)
			return -400;
	r->head_method = !strcmp(r->method, "HEAD");

	/* headers */
	r->nh = 0;
	for (line = next; *line; line = next) {
		next = strstr(line, "\r\n");
		*next = 0;
		next += 2;
		if (!*line)
			break;
		if (*line == ' ' || *line == '\t')
			return -400;  /* obs-fold */
		if (r->nh == MAX_HDRS)
			return -431;
		char *colon = strchr(line, ':');
		if (!colon || colon == line)
			return -400;
		for (char *q = line; q < colon; q++)
			if (!isgraph((unsigned char)*q))
				return -400;
		*colon = 0;
		char *v = colon + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		char *e = v + strlen(v);
		while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
			*--e = 0;
		for (char *q = v; *q; q++)
			if ((unsigned char)*q < 0x20 && *q != '\t')
				return -400;
		r->h[r->nh].name = line;
		r->h[r->nh].value = v;
		r->nh++;
	}
	/* framing */
	const char *te = hget(r, "transfer-encoding"), *cl = hget(r, "content-length");
	r->body = BODY_NONE;
	r->remaining = 0;
	r->chunk_state = 0;
	r->trailers_len = 0;
	if (te && cl)
		return -400;
	if (te) {
		if (hcount(r, "transfer-encoding") != 1 || strcasecmp(te, "chunked"))
			return -400;
		r->body = BODY_CHUNKED;
	} else if (cl) {
		/* identical duplicates are allowed (RFC 9112 6.3), anything else is not */
		for (int i = 0; i < r->nh; i++)
			if (!strcasecmp(r->h[i].name, "content-length") && strcmp(r->h[i].value, cl))
				return -400;
		if (!*cl || strlen(cl) > 18)
			return -400;
		for (const char *q = cl; *q; q++)
			if (!isdigit((unsigned char)*q))
				return -400;
		r->remaining = strtoull(cl, NULL, 10);
		r->body = r->remaining ? BODY_LENGTH : BODY_NONE;
	}
	if (r->minor == 1 && hcount(r, "host") != 1)
		return -400;

	const char *conn = hget(r, "connection");
	if (r->minor == 1)
		r->keepalive = !(conn && has_token(conn, "close"));
	else
		r->keepalive = conn && has_token(conn, "keep-alive");
	const char *ex = hget(r, "expect");
	r->expect_continue = ex && !strcasecmp(ex, "100-continue");
	r->sent_continue = 0;

	/* split the target into path and query (absolute-form tolerated) */
	r->path = r->target;
	if (!strncmp(r->path, "http://", 7)) {
		char *p = strchr(r->path + 7, '/');
		r->path = p ? p : (char *)"/";
	}
	r->query = strchr(r->path, '?');
	if (r->query)
		*r->query++ = 0;
	return 1;
}

/* Reads a CRLF-terminated line from the connection into out (NUL-terminated). */
static int read_line(struct conn *c, char *out, size_t cap)
{
	for (;;) {
		char *s = c->buf + c->start;
		size_t n = c->end - c->start;
		char *lf = memchr(s, '\n', n);
		if (lf) {
			size_t len = (size_t)(lf - s);
			if (len == 0 || s[len - 1] != '\r' || len - 1 >= cap)
				return -1;
			memcpy(out, s, len - 1);
			out[len - 1] = 0;
			c->start += len + 1;
			return 0;
		}
		if (n >= cap + 2)
			return -1;
		if (fill(c) < 0)
			return -1;
	}
}

static int send_continue(struct conn *c, struct req *r)
{
	if (r->expect_continue && !r->sent_continue && r->minor == 1) {
		r->sent_continue = 1;
		return write_all(c->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25);
	}
	return 0;
}

/*
 * Reads up to cap decoded body bytes into dst. Returns bytes read, 0 at the
 * end of the body, -1 on error (bad framing or EOF).
 */
static ssize_t body_read(struct conn *c, struct req *r, char *dst, size_t cap)
{
	char line[256];

	if (r->body == BODY_NONE)
		return 0;
	if (send_continue(c, r) < 0)
		return -1;
	if (r->body == BODY_CHUNKED) {
		if (r->chunk_state == 2)
			return 0;
		if (r->chunk_state == 0) {
			char *end;
			if (read_line(c, line, sizeof(line)) < 0)
				return -1;
			if (!isxdigit((unsigned char)line[0]))
				return -1;
			errno = 0;
			r->remaining = strtoull(line, &end, 16);
			if (errno || (*end && *end != ';' && *end != ' ' && *end != '\t'))
				return -1;
			if (r->remaining == 0) {
				for (int i = 0; i < 64; i++) {
					if (read_line(c, line, sizeof(line)) < 0)
						return -1;
					if (!line[0]) {
						r->chunk_state = 2;
						return 0;
					}
					size_t l = strlen(line);
					if (r->trailers_len + l + 2 < sizeof(r->trailers)) {
						memcpy(r->trailers + r->trailers_len, line, l);
						memcpy(r->trailers + r->trailers_len + l, "\r\n", 2);
						r->trailers_len += l + 2;
					}
				}
				return -1;
			}
			r->chunk_state = 1;
		}
	} else if (r->remaining == 0) {
		return 0;
	}
	if (c->start == c->end && fill(c) < 0)
		return -1;
	size_t n = c->end - c->start;
	if (n > cap)
		n = cap;
	if (n > r->remaining)
		n = (size_t)r->remaining;
	memcpy(dst, c->buf + c->start, n);
	c->start += n;
	r->remaining -= n;
	if (r->body == BODY_CHUNKED && r->remaining == 0) {
		if (read_line(c, line, sizeof(line)) < 0 || line[0])
			return -1;
		r->chunk_state = 0;
	}
	return (ssize_t)n;
}

/* Discards the rest of the body; returns the number of bytes or -1. */
static long long body_drain(struct conn *c, struct req *r)
{
	long long total = 0;
	ssize_t n;

	while ((n = body_read(c, r, c->out, BUF_SIZE)) > 0)
		total += n;
	return n < 0 ? -1 : total;
}

/* ------------------------------------------------------------ responses */

static const char *reason(int code)
{
	switch (code) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 413: return "Payload Too Large";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "Status";
	}
}

/* Writes a status line and the common headers; extra is raw "Name: v\r\n" lines. */
static int start_response(struct conn *c, struct req *r, int code, const char *extra)
{
	return writef(c->fd, "HTTP/1.1 %d %s\r\nx-backend: %s\r\n%s%s", code, reason(code), name,
	              r->keepalive ? "" : "Connection: close\r\n", extra ? extra : "");
}

static int respond(struct conn *c, struct req *r, int code, const char *ctype, const char *body, size_t len)
{
	char extra[256];
	int nobody = r->head_method || code == 204 || code == 304 || code < 200;

	if (code == 204 || code == 304 || code < 200)
		snprintf(extra, sizeof(extra), "\r\n");
	else
		snprintf(extra, sizeof(extra), "Content-Type: %s\r\nContent-Length: %zu\r\n\r\n", ctype, len);
	if (start_response(c, r, code, extra) < 0)
		return -1;
	if (!nobody && len && write_all(c->fd, body, len) < 0)
		return -1;
	return 0;
}

static int respond_text(struct conn *c, struct req *r, int code, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	return respond(c, r, code, "text/plain", tmp, (size_t)n);
}

/* byte i of a /bytes or /chunked body is 'a' + (i % 26) */
static int send_pattern(int fd, uint64_t off, uint64_t n)
{
	const char *tmp = pattern;

	while (n > 0) {
		size_t k = BUF_SIZE - 26;
		if (k > n)
			k = (size_t)n;
		/* the pattern in tmp starts at 'a'; shift by off % 26 */
		if (write_all(fd, tmp + off % 26, k) < 0)
			return -1;
		off += k;
		n -= k;
	}
	return 0;
}

/* ------------------------------------------------------------ SHA-1 / base64 (WebSocket accept key) */

static uint32_t rol(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

static void sha1(const unsigned char *msg, size_t len, unsigned char out[20])
{
	uint32_t h[5] = { 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0 };
	unsigned char blk[64];
	size_t total = len + 9, nblk = (total + 63) / 64;

	for (size_t b = 0; b < nblk; b++) {
		uint32_t w[80];
		for (size_t i = 0; i < 64; i++) {
			size_t pos = b * 64 + i;
			unsigned char v;
			if (pos < len)
				v = msg[pos];
			else if (pos == len)
				v = 0x80;
			else if (pos >= nblk * 64 - 8)
				v = (unsigned char)(((uint64_t)len * 8) >> (8 * (nblk * 64 - 1 - pos)));
			else
				v = 0;
			blk[i] = v;
		}
		for (int i = 0; i < 16; i++)
			w[i] = (uint32_t)blk[4 * i] << 24 | (uint32_t)blk[4 * i + 1] << 16 |
			       (uint32_t)blk[4 * i + 2] << 8 | blk[4 * i + 3];
		for (int i = 16; i < 80; i++)
			w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
		uint32_t a = h[0], bb = h[1], cc = h[2], d = h[3], e = h[4];
		for (int i = 0; i < 80; i++) {
			uint32_t f, k;
			if (i < 20) { f = (bb & cc) | (~bb & d); k = 0x5A827999; }
			else if (i < 40) { f = bb ^ cc ^ d; k = 0x6ED9EBA1; }
			else if (i < 60) { f = (bb & cc) | (bb & d) | (cc & d); k = 0x8F1BBCDC; }
			else { f = bb ^ cc ^ d; k = 0xCA62C1D6; }
			uint32_t t = rol(a, 5) + f + e + k + w[i];
			e = d; d = cc; cc = rol(bb, 30); bb = a; a = t;
		}
		h[0] += a; h[1] += bb; h[2] += cc; h[3] += d; h[4] += e;
	}
	for (int i = 0; i < 5; i++) {
		out[4 * i] = (unsigned char)(h[i] >> 24);
		out[4 * i + 1] = (unsigned char)(h[i] >> 16);
		out[4 * i + 2] = (unsigned char)(h[i] >> 8);
		out[4 * i + 3] = (unsigned char)h[i];
	}
}

static void base64(const unsigned char *in, size_t n, char *out)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i, o = 0;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = tab[v >> 18]; out[o++] = tab[(v >> 12) & 63];
		out[o++] = tab[(v >> 6) & 63]; out[o++] = tab[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
		out[o++] = tab[v >> 18]; out[o++] = tab[(v >> 12) & 63];
		out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		out[o++] = '=';
	}
	out[o] = 0;
}

/* reads exactly n bytes from the connection (buffered part first) */
static int read_exact(struct conn *c, void *dst, size_t n)
{
	char *d = dst;

	while (n > 0) {
		if (c->start == c->end && fill(c) < 0)
			return -1;
		size_t k = c->end - c->start;
		if (k > n)
			k = n;
		memcpy(d, c->buf + c->start, k);
		c->start += k;
		d += k;
		n -= k;
	}
	return 0;
}

/* After the 101: echo every frame back (unmasked), answer ping, echo close and stop. */
static void ws_echo(struct conn *c)
{
	unsigned char h[14], mask[4];

	for (int frames = 0; frames < 1000000; frames++) {
		if (read_exact(c, h, 2) < 0)
			return;
		int fin = h[0] & 0x80, op = h[0] & 0x0f, masked = h[1] & 0x80;
		uint64_t len = h[1] & 0x7f;
		if (len == 126) {
			if (read_exact(c, h + 2, 2) < 0)
				return;
			len = (uint64_t)h[2] << 8 | h[3];
		} else if (len == 127) {
			if (read_exact(c, h + 2, 8) < 0)
				return;
			len = 0;
			for (int i = 0; i < 8; i++)
				len = len << 8 | h[2 + i];
		}
		if (len > 16 * 1024 * 1024)
			return;
		if (masked && read_exact(c, mask, 4) < 0)
			return;
		unsigned char *p = malloc(len ? len : 1);
		if (!p || read_exact(c, p, len) < 0) {
			free(p);
			return;
		}
		if (masked)
			for (uint64_t i = 0; i < len; i++)
				p[i] ^= mask[i % 4];
		int rop = op == 9 ? 10 : op;  /* ping -> pong */
		unsigned char oh[10];
		size_t ol = 0;
		oh[ol++] = (unsigned char)(fin | rop);
		if (len < 126) {
			oh[ol++] = (unsigned char)len;
		} else if (len < 65536) {
			oh[ol++] = 126;
			oh[ol++] = (unsigned char)(len >> 8);
			oh[ol++] = (unsigned char)len;
		} else {
			oh[ol++] = 127;
			for (int i = 7; i >= 0; i--)
				oh[ol++] = (unsigned char)(len >> (8 * i));
		}
		int rc = write_all(c->fd, oh, ol) < 0 || write_all(c->fd, p, len) < 0;
		free(p);
		if (rc || op == 8)
			return;
	}
}

/* ------------------------------------------------------------ endpoints */

/* Returns 1 to keep the connection, 0 to close it. */
static int handle(struct conn *c, struct req *r)
{
	unsigned long long n = 0;
	const char *p = r->path;

	if (!strcmp(p, "/stats")) {
		if (body_drain(c, r) < 0)
			return 0;
		return respond_text(c, r, 200, "connections=%ld requests=%ld open=%ld bad=%ld\n",
		                    __atomic_load_n(&n_connections, __ATOMIC_SEQ_CST),
		                    __atomic_load_n(&n_requests, __ATOMIC_SEQ_CST),
		                    __atomic_load_n(&n_open, __ATOMIC_SEQ_CST),
		                    __atomic_load_n(&n_bad, __ATOMIC_SEQ_CST)) == 0;
	}
	__atomic_add_fetch(&n_requests, 1, __ATOMIC_SEQ_CST);

	if (!strcmp(p, "/ws")) {
		const char *up = hget(r, "upgrade"), *key = hget(r, "sec-websocket-key");
		const char *conn = hget(r, "connection");
		if (!up || strcasecmp(up, "websocket") || !key || !conn || !has_token(conn, "upgrade")) {
			body_drain(c, r);
			return respond_text(c, r, 400, "websocket upgrade expected\n") == 0;
		}
		char cat[256], acc[64];
		unsigned char dig[20];
		snprintf(cat, sizeof(cat), "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", key);
		sha1((unsigned char *)cat, strlen(cat), dig);
		base64(dig, 20, acc);
		if (writef(c->fd, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
		                  "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\nx-backend: %s\r\n\r\n",
		           acc, name) < 0)
			return 0;
		ws_echo(c);
		return 0;
	}
	if (!strcmp(p, "/echo")) {
		ssize_t k;
		if (r->body == BODY_LENGTH) {
			char extra[128];
			uint64_t len = r->remaining;
			snprintf(extra, sizeof(extra), "Content-Type: application/octet-stream\r\nContent-Length: %llu\r\n\r\n",
			         (unsigned long long)len);
			if (send_continue(c, r) < 0 || start_response(c, r, 200, extra) < 0)
				return 0;
			while ((k = body_read(c, r, c->out, BUF_SIZE)) > 0)
				if (!r->head_method && write_all(c->fd, c->out, (size_t)k) < 0)
					return 0;
			return k == 0;
		}
		if (r->body == BODY_NONE)
			return respond(c, r, 200, "application/octet-stream", "", 0) == 0;
		if (r->minor == 0) {  /* HTTP/1.0 client: no chunked, close-delimited */
			r->keepalive = 0;
			if (send_continue(c, r) < 0 ||
			    start_response(c, r, 200, "Content-Type: application/octet-stream\r\n\r\n") < 0)
				return 0;
			while ((k = body_read(c, r, c->out, BUF_SIZE)) > 0)
				if (write_all(c->fd, c->out, (size_t)k) < 0)
					return 0;
			return 0;
		}
		if (send_continue(c, r) < 0 ||
		    start_response(c, r, 200, "Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n") < 0)
			return 0;
		while ((k = body_read(c, r, c->out, BUF_SIZE)) > 0) {
			if (r->head_method)
				continue;
			if (writef(c->fd, "%zx\r\n", (size_t)k) < 0 || write_all(c->fd, c->out, (size_t)k) < 0 ||
			    write_all(c->fd, "\r\n", 2) < 0)
				return 0;
		}
		if (k < 0)
			return 0;
		if (!r->head_method) {
			if (write_all(c->fd, "0\r\n", 3) < 0 || write_all(c->fd, r->trailers, r->trailers_len) < 0 ||
			    write_all(c->fd, "\r\n", 2) < 0)
				return 0;
		}
		return r->keepalive;
	}
	if (!strcmp(p, "/headers")) {
		if (body_drain(c, r) < 0)
			return 0;
		return respond(c, r, 200, "text/plain", r->head, r->head_len) == 0;
	}
	if (!strcmp(p, "/reject")) {  /* 413 before reading the body, then close */
		r->keepalive = 0;
		respond_text(c, r, 413, "too large\n");
		return 0;
	}
	if (!strcmp(p, "/sink") || !strcmp(p, "/expect")) {
		int had_expect = r->expect_continue;
		long long got = body_drain(c, r);
		if (got < 0)
			return 0;
		if (!strcmp(p, "/expect"))
			return respond_text(c, r, 200, "bytes=%lld expect=%d\n", got, had_expect) == 0;
		return respond_text(c, r, 200, "bytes=%lld\n", got) == 0;
	}
	if (body_drain(c, r) < 0)
		return 0;
	if (!strcmp(p, "/")) {
		return respond_text(c, r, 200, "%s\n", name) == 0;
	}
	if (!strcmp(p, "/bytes")) {
		char extra[128];
		qparam(r, "n", &n);
		snprintf(extra, sizeof(extra), "Content-Type: application/octet-stream\r\nContent-Length: %llu\r\n\r\n", n);
		if (start_response(c, r, 200, extra) < 0)
			return 0;
		if (!r->head_method && send_pattern(c->fd, 0, n) < 0)
			return 0;
		return 1;
	}
	if (!strcmp(p, "/chunked")) {
		unsigned long long tr = 0, off = 0, sum = 0;
		qparam(r, "n", &n);
		qparam(r, "trailer", &tr);
		if (start_response(c, r, 200, tr ? "Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\nTrailer: x-checksum\r\n\r\n"
		                                 : "Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n") < 0)
			return 0;
		if (r->head_method)
			return 1;
		/* chunk sizes vary (1, 2, ... up to 16k) to exercise the decoder */
		for (size_t csz = 1; off < n; csz = csz * 3 + 1) {
			if (csz > 16384)
				csz = 16384;
			size_t k = csz;
			if (k > n - off)
				k = (size_t)(n - off);
			for (size_t i = 0; i < k; i++)
				sum += (unsigned char)pattern[(off + i) % 26];
			if (writef(c->fd, "%zx\r\n", k) < 0 || send_pattern(c->fd, off, k) < 0 ||
			    write_all(c->fd, "\r\n", 2) < 0)
				return 0;
			off += k;
		}
		if (tr ? writef(c->fd, "0\r\nx-checksum: %llu\r\n\r\n", sum) < 0 : write_all(c->fd, "0\r\n\r\n", 5) < 0)
			return 0;
		return 1;
	}
	if (!strncmp(p, "/status/", 8)) {
		int code = atoi(p + 8);
		if (code < 100 || code > 599)
			return respond_text(c, r, 400, "bad status\n") == 0;
		if (code == 101 || code == 100)
			return respond_text(c, r, 400, "status %d not served\n", code) == 0;
		return respond_text(c, r, code, "%d\n", code) == 0;
	}
	if (!strcmp(p, "/delay")) {
		qparam(r, "ms", &n);
		if (n > 600000)
			n = 600000;
		struct timespec ts = { (time_t)(n / 1000), (long)(n % 1000) * 1000000L };
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
		return respond_text(c, r, 200, "delayed %llu\n", n) == 0;
	}
	if (!strcmp(p, "/eof")) {  /* body delimited by closing the connection */
		qparam(r, "n", &n);
		r->keepalive = 0;
		if (writef(c->fd, "HTTP/1.1 200 OK\r\nx-backend: %s\r\nConnection: close\r\n"
		                  "Content-Type: application/octet-stream\r\n\r\n", name) < 0)
			return 0;
		if (!r->head_method)
			send_pattern(c->fd, 0, n);
		return 0;
	}
	if (!strcmp(p, "/truncate")) {  /* promises n bytes, sends half, closes */
		char extra[128];
		qparam(r, "n", &n);
		snprintf(extra, sizeof(extra), "Content-Type: application/octet-stream\r\nContent-Length: %llu\r\n\r\n", n);
		if (start_response(c, r, 200, extra) == 0 && !r->head_method)
			send_pattern(c->fd, 0, n / 2);
		return 0;
	}
	if (!strcmp(p, "/bad")) {  /* malformed responses: a proxy must not pass them on */
		static const struct { const char *kind, *text; } bad[] = {
			{ "garbage", "HTTP/1.1 2x0 What\r\n\r\n" },
			{ "both", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" },
			{ "cl2", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello" },
			{ "badchunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n" },
			{ "fold", "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 2\r\n\r\nok" },
			{ "lf", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok" },
		};
		const char *kind = r->query && !strncmp(r->query, "kind=", 5) ? r->query + 5 : "garbage";
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
			if (!strcmp(kind, bad[i].kind)) {
				write_all(c->fd, bad[i].text, strlen(bad[i].text));
				return 0;
			}
		return respond_text(c, r, 400, "unknown kind %s\n", kind) == 0;
	}
	if (!strcmp(p, "/hop")) {  /* hop-by-hop response headers a proxy must drop */
		return respond(c, r, 200, "text/plain\r\nConnection: x-resp-hop\r\nX-Resp-Hop: secret\r\n"
		               "Keep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\nX-Resp-Kept: yes",
		               "hop\n", 4) == 0;
	}
	if (!strcmp(p, "/close")) {
		r->keepalive = 0;
		respond_text(c, r, 200, "closing\n");
		return 0;
	}
	return respond_text(c, r, 404, "no such endpoint %s\n", p) == 0;
}

static void *serve(void *arg)
{
	struct conn c = { .fd = (int)(intptr_t)arg };
	struct req *r = malloc(sizeof(*r));

	c.buf = malloc(BUF_SIZE);
	c.out = malloc(BUF_SIZE);
	if (r && c.buf && c.out) {
		for (;;) {
			int rc = read_head(&c, r);
			if (rc == 0 || rc == -1)
				break;
			if (rc < 0) {
				const char *msg = rc == -431 ? "431 Request Header Fields Too Large" : "400 Bad Request";
				__atomic_add_fetch(&n_requests, 1, __ATOMIC_SEQ_CST);
				__atomic_add_fetch(&n_bad, 1, __ATOMIC_SEQ_CST);
				writef(c.fd, "HTTP/1.1 %s\r\nx-backend: %s\r\nConnection: close\r\nContent-Length: 12\r\n\r\nbad request\n",
				       msg, name);
				break;
			}
			if (!handle(&c, r) || !r->keepalive)
				break;
		}
	}
	/* lingering close: FIN first, then discard what the peer still sends for a
	 * while, so a response sent before the request body was read (/reject, 400)
	 * is not destroyed by an RST */
	shutdown(c.fd, SHUT_WR);
	if (c.buf) {
		struct timeval tv = { 0, 200000 };
		setsockopt(c.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		for (int i = 0; i < 1000; i++)
			if (read(c.fd, c.buf, BUF_SIZE) <= 0)
				break;
	}
	close(c.fd);
	free(c.buf);
	free(c.out);
	free(r);
	__atomic_sub_fetch(&n_open, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

int main(int argc, char **argv)
{
	int port = 0, opt, one = 1, fd;
	const char *bind_addr = "127.0.0.1";
	struct sockaddr_in sa = { .sin_family = AF_INET };
	pthread_attr_t attr;

	while ((opt = getopt(argc, argv, "p:n:b:")) != -1) {
		switch (opt) {
		case 'p': port = atoi(optarg); break;
		case 'n': name = optarg; break;
		case 'b': bind_addr = optarg; break;
		default:
			fprintf(stderr, "usage: backend -p PORT [-n NAME] [-b ADDR]\n");
			return 2;
		}
	}
	if (port <= 0 || port > 65535 || inet_pton(AF_INET, bind_addr, &sa.sin_addr) != 1) {
		fprintf(stderr, "usage: backend -p PORT [-n NAME] [-b ADDR]\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; i < sizeof(pattern); i++)
		pattern[i] = (char)('a' + (i % 26));
	sa.sin_port = htons((uint16_t)port);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1024) < 0) {
		fprintf(stderr, "backend %s: cannot listen on %s:%d: %s\n", name, bind_addr, port, strerror(errno));
		return 1;
	}
	fprintf(stderr, "backend %s listening on %s:%d\n", name, bind_addr, port);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	for (;;) {
		pthread_t t;
		int cfd = accept(fd, NULL, NULL);
		if (cfd < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE) {
				if (errno == EMFILE || errno == ENFILE)
					usleep(10000);
				continue;
			}
			perror("accept");
			return 1;
		}
		setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		__atomic_add_fetch(&n_connections, 1, __ATOMIC_SEQ_CST);
		__atomic_add_fetch(&n_open, 1, __ATOMIC_SEQ_CST);
		if (pthread_create(&t, &attr, serve, (void *)(intptr_t)cfd) != 0) {
			close(cfd);
			__atomic_sub_fetch(&n_open, 1, __ATOMIC_SEQ_CST);
		}
	}
}
