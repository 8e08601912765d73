/*
 * http1: a strict, stateless, zero-copy, incremental HTTP/1.x parser.
 *
 * It owns message-head parsing (request and response) and the chunked body
 * decoder. Nothing is allocated: headers and every string are slices into the
 * caller's buffer. The head parsers return the number of bytes the head used,
 * -2 when more bytes are needed, -1 when the message is invalid (err_status and
 * err_reason then say why, as a status the proxy should answer with and a short
 * static reason string).
 *
 * Strictness is the point: the proxy never forwards a message that two HTTP
 * implementations could frame differently (request smuggling). See the list of
 * rejected forms in http1.c's top comment.
 */
#ifndef MESH_HTTP1_H
#define MESH_HTTP1_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct http1_header {
	const char *name;      /* slice into the caller's buffer */
	size_t name_len;
	const char *value;     /* leading/trailing OWS already trimmed */
	size_t value_len;
};

/* how the body of a message is framed */
enum http1_body {
	HTTP1_BODY_NONE = 0,   /* no body (or Content-Length: 0) */
	HTTP1_BODY_LENGTH,     /* content_length bytes follow */
	HTTP1_BODY_CHUNKED,    /* Transfer-Encoding: chunked */
	HTTP1_BODY_EOF,        /* responses only: body runs until the server closes */
};

/* http1_msg.flags */
#define HTTP1_F_CONN_CLOSE      0x01  /* Connection: close (or HTTP/1.0 without keep-alive) */
#define HTTP1_F_CONN_KEEPALIVE  0x02  /* Connection: keep-alive was present */
#define HTTP1_F_UPGRADE         0x04  /* Upgrade header present and Connection lists "upgrade" */
#define HTTP1_F_EXPECT_CONTINUE 0x08  /* Expect: 100-continue (request) */
#define HTTP1_F_HAS_HOST        0x10  /* exactly one Host header was present */

struct http1_limits {
	size_t max_request_line;  /* request line incl. CRLF; over it -> 414 */
	size_t max_head;          /* whole head incl. request line; over it -> 431 */
	size_t max_headers;       /* header count; over it -> 431 */
};

struct http1_msg {
	/* request line (requests only) */
	const char *method;
	size_t method_len;
	const char *target;      /* request-target as sent (origin-, absolute-, authority- or asterisk-form) */
	size_t target_len;
	/* status line (responses only) */
	int status;
	const char *reason;
	size_t reason_len;

	int minor_version;       /* 0 or 1 (HTTP/1.0 or HTTP/1.1) */
	struct http1_header *headers;  /* the caller's array, filled */
	size_t num_headers;

	/* derived from the headers */
	enum http1_body body;
	uint64_t content_length; /* valid when body == HTTP1_BODY_LENGTH */
	unsigned flags;          /* HTTP1_F_* */
	const char *host;        /* Host header value, when HTTP1_F_HAS_HOST */
	size_t host_len;

	/* set when a parser returns -1 */
	int err_status;          /* 400, 414, 431, 501 or 505 for requests; 502 for responses */
	const char *err_reason;  /* short static string, e.g. "both Content-Length and Transfer-Encoding" */
};

/*
 * Parses a request head from buf[0..len). hdrs has room for lim->max_headers
 * entries. Returns bytes consumed by the head (through the blank line), -2 if
 * incomplete (but -1 with 414/431 as soon as a limit is already exceeded), or -1.
 */
int http1_parse_request(const char *buf, size_t len, struct http1_msg *m,
                        struct http1_header *hdrs, const struct http1_limits *lim);

/*
 * Parses a response head. head_request: the request was HEAD (no body whatever
 * the headers say). 1xx, 204 and 304 never have a body. Errors use status 502.
 */
int http1_parse_response(const char *buf, size_t len, struct http1_msg *m,
                         struct http1_header *hdrs, const struct http1_limits *lim,
                         int head_request);

/* Incremental chunked-body decoder; an all-zero struct is a fresh decoder. */
struct http1_chunked {
	int state;               /* internal */
	uint64_t remaining;      /* data bytes left in the current chunk */
	size_t line_len;         /* bytes of the current size/trailer line seen, for limits */
	size_t trailer_len;      /* bytes of trailer section seen */
	int done;                /* 1 once the last chunk and the trailer section are consumed */
	const char *err_reason;  /* set when decode returns -1 */
};

/*
 * Decodes chunked framing from buf[0..len). Consumes framing bytes and at most
 * one run of body data, which it reports as *data / *data_len (a slice inside
 * the consumed bytes; *data_len == 0 when none). Returns bytes consumed (0 means
 * more input is needed), or -1 on invalid framing (err_reason set; a 400 for a
 * request, a 502 for a response).
 *
 * Trailers: the whole trailer section must be in the buffer; when the decoder
 * reaches the last chunk it waits (returns 0) until the trailer section and its
 * blank line are all present (bounded by max_trailer), then consumes it, sets
 * done, and reports the validated trailer lines, without the final blank line,
 * as *trailers / *trailers_len (may be empty).
 */
ssize_t http1_chunked_decode(struct http1_chunked *c, const char *buf, size_t len,
                             const char **data, size_t *data_len,
                             const char **trailers, size_t *trailers_len,
                             size_t max_trailer);

/* case-insensitive compare of a slice against a NUL-terminated lowercase literal */
int http1_ieq(const char *s, size_t n, const char *lit);

/*
 * For the small control-plane servers (the CA, the controller): one request
 * buffered in buf[0..len), at most max bytes, body only with Content-Length,
 * no pipelining. Returns the head's length with *body_len set once the whole
 * request is there (*keep: the connection may stay open); -2 when more bytes
 * are needed; -1 with *status and *reason to answer before closing.
 */
int http1_request_whole(const char *buf, size_t len, size_t max, struct http1_msg *m, struct http1_header *hdrs,
                        const struct http1_limits *lim, size_t *body_len, int *keep, int *status,
                        const char **reason);

/* finds a header by (lowercase) name; returns its index or -1 */
int http1_find_header(const struct http1_msg *m, const char *lname);

#endif
