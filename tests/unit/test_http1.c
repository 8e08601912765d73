/*
 * http1 unit tests. Every case runs twice: on the whole input, and fed as
 * prefixes of growing length (each prefix in its own exactly-sized heap
 * buffer, so ASan sees any read past the end). A prefix must say "need more"
 * until the message is complete and then give the whole-input answer; an
 * invalid message may be refused early, but with the same status.
 */
#include <stdlib.h>
#include <string.h>

#include "../../modules/http1.c"
#include "test.h"

#define OK      (-10)   /* want: the whole input is the head */
#define HEADEND (-11)   /* want: up to and including the first CRLF CRLF */
#define MAXH 64

static const struct http1_limits deflim = { 8192, 16384, 32 };
static const struct http1_limits lim_rl16 = { 16, 16384, 32 };
static const struct http1_limits lim_head64 = { 8192, 64, 32 };
static const struct http1_limits lim_hdr2 = { 8192, 16384, 2 };

struct req_case {
	const char *name;
	const char *in;
	size_t in_len;            /* 0: strlen(in) */
	int want;                 /* OK, HEADEND, a length, or -1 */
	int status;               /* err_status when want == -1 */
	const char *reason;       /* err_reason when want == -1 (NULL: any) */
	const char *method;
	const char *target;
	int minor;
	enum http1_body body;
	uint64_t cl;
	unsigned flags;
	const char *host;         /* NULL: no Host expected */
	int nh;
	const struct http1_limits *lim;
};

#define F_CLOSE HTTP1_F_CONN_CLOSE
#define F_KA HTTP1_F_CONN_KEEPALIVE
#define F_UP HTTP1_F_UPGRADE
#define F_EXP HTTP1_F_EXPECT_CONTINUE
#define F_HOST HTTP1_F_HAS_HOST
#define B_NONE HTTP1_BODY_NONE
#define B_LEN HTTP1_BODY_LENGTH
#define B_CH HTTP1_BODY_CHUNKED
#define B_EOF HTTP1_BODY_EOF

#define ROK(n, i, w, me, ta, mi, bo, c, fl, ho, h) \
	{ .name = n, .in = i, .want = w, .method = me, .target = ta, .minor = mi, .body = bo, \
	  .cl = c, .flags = fl, .host = ho, .nh = h }
#define ROKL(n, i, w, me, ta, mi, bo, c, fl, ho, h, l) \
	{ .name = n, .in = i, .want = w, .method = me, .target = ta, .minor = mi, .body = bo, \
	  .cl = c, .flags = fl, .host = ho, .nh = h, .lim = l }
#define RERR(n, i, st, why) { .name = n, .in = i, .want = -1, .status = st, .reason = why }
#define RERRN(n, i, st, why) { .name = n, .in = i, .in_len = sizeof(i) - 1, .want = -1, .status = st, .reason = why }
#define RERRL(n, i, st, why, l) { .name = n, .in = i, .want = -1, .status = st, .reason = why, .lim = l }

#define H11 " HTTP/1.1\r\nHost: a\r\n"

static const struct req_case req_cases[] = {
	/* valid forms */
	ROK("simple GET", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", OK, "GET", "/", 1, B_NONE, 0, F_HOST, "a", 1),
	ROK("HTTP/1.0 no Host", "GET / HTTP/1.0\r\n\r\n", OK, "GET", "/", 0, B_NONE, 0, F_CLOSE, NULL, 0),
	ROK("HTTP/1.0 keep-alive", "GET /x HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", OK, "GET", "/x", 0,
	    B_NONE, 0, F_KA, NULL, 1),
	ROK("HTTP/1.0 with Host", "HEAD / HTTP/1.0\r\nHost: h.example\r\n\r\n", OK, "HEAD", "/", 0, B_NONE, 0,
	    F_CLOSE | F_HOST, "h.example", 1),
	ROK("absolute-form", "GET http://a.example/x?y=1&z=%20 HTTP/1.1\r\nHost: a.example\r\n\r\n", OK, "GET",
	    "http://a.example/x?y=1&z=%20", 1, B_NONE, 0, F_HOST, "a.example", 1),
	ROK("authority-form", "CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n", OK, "CONNECT",
	    "a.example:443", 1, B_NONE, 0, F_HOST, "a.example:443", 1),
	ROK("asterisk-form", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", OK, "OPTIONS", "*", 1, B_NONE, 0, F_HOST, "a", 1),
	ROK("tchar method", "M-SEARCH!#$%&'*+.^_`|~09 / HTTP/1.1\r\nHost: a\r\n\r\n", OK,
	    "M-SEARCH!#$%&'*+.^_`|~09", "/", 1, B_NONE, 0, F_HOST, "a", 1),
	ROK("long target", "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/b?c=d HTTP/1.1\r\nHost: a\r\n\r\n", OK,
	    "GET", "/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/b?c=d", 1, B_NONE, 0, F_HOST, "a", 1),
	ROK("one leading CRLF", "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", OK, "GET", "/", 1, B_NONE, 0, F_HOST, "a", 1),
	ROK("three leading CRLF", "\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", OK, "GET", "/", 1, B_NONE, 0,
	    F_HOST, "a", 1),
	ROK("POST Content-Length", "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", HEADEND, "POST",
	    "/p", 1, B_LEN, 5, F_HOST, "a", 2),
	ROK("Content-Length 0", "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", OK, "POST", "/p", 1,
	    B_NONE, 0, F_HOST, "a", 2),
	ROK("Content-Length list same", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 , 5,5\r\n\r\n", OK, "POST",
	    "/", 1, B_LEN, 5, F_HOST, "a", 2),
	ROK("Content-Length repeated same", "POST / HTTP/1.1\r\nContent-Length: 7\r\nHost: a\r\ncontent-length: 7\r\n\r\n",
	    OK, "POST", "/", 1, B_LEN, 7, F_HOST, "a", 3),
	ROK("Content-Length leading zeros", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0007\r\n\r\n", OK, "POST",
	    "/", 1, B_LEN, 7, F_HOST, "a", 2),
	ROK("Content-Length 2^62", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4611686018427387904\r\n\r\n", OK,
	    "POST", "/", 1, B_LEN, 4611686018427387904ull, F_HOST, "a", 2),
	ROK("Transfer-Encoding chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello",
	    HEADEND, "POST", "/", 1, B_CH, 0, F_HOST, "a", 2),
	ROK("Transfer-Encoding case and OWS", "POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding:\t CHUNKED \t\r\n\r\n",
	    OK, "POST", "/", 1, B_CH, 0, F_HOST, "a", 2),
	ROK("Connection close", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", OK, "GET", "/", 1, B_NONE,
	    0, F_HOST | F_CLOSE, "a", 2),
	ROK("Connection list", "GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, ,KEEP-ALIVE\r\nConnection: CLOSE\r\n\r\n",
	    OK, "GET", "/", 1, B_NONE, 0, F_HOST | F_CLOSE | F_KA, "a", 3),
	ROK("Upgrade", "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\r\n",
	    OK, "GET", "/ws", 1, B_NONE, 0, F_HOST | F_KA | F_UP, "a", 3),
	ROK("Upgrade without Connection token", "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\n\r\n", OK, "GET", "/", 1,
	    B_NONE, 0, F_HOST, "a", 2),
	ROK("Connection upgrade without Upgrade", "GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n", OK, "GET",
	    "/", 1, B_NONE, 0, F_HOST, "a", 2),
	ROK("Upgrade ignored in HTTP/1.0", "GET / HTTP/1.0\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n", OK,
	    "GET", "/", 0, B_NONE, 0, F_CLOSE, NULL, 2),
	ROK("Expect 100-continue", "PUT /u HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n",
	    OK, "PUT", "/u", 1, B_LEN, 3, F_HOST | F_EXP, "a", 3),
	ROK("Expect in HTTP/1.0 ignored", "PUT /u HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", OK, "PUT", "/u", 0,
	    B_NONE, 0, F_CLOSE, NULL, 1),
	ROK("Expect other value", "GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue-ish\r\n\r\n", OK, "GET", "/", 1,
	    B_NONE, 0, F_HOST, "a", 2),
	ROK("HOST upper-case name", "GET / HTTP/1.1\r\nHOST: A.Example\r\n\r\n", OK, "GET", "/", 1, B_NONE, 0, F_HOST,
	    "A.Example", 1),
	ROK("Host IPv6 and port", "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", OK, "GET", "/", 1, B_NONE, 0, F_HOST,
	    "[::1]:8080", 1),
	ROK("Host sub-delims", "GET / HTTP/1.1\r\nHost: a_b~c%41!$&'()*+,;=\r\n\r\n", OK, "GET", "/", 1, B_NONE, 0,
	    F_HOST, "a_b~c%41!$&'()*+,;=", 1),
	ROK("Host empty", "GET / HTTP/1.1\r\nHost:\r\n\r\n", OK, "GET", "/", 1, B_NONE, 0, F_HOST, "", 1),
	ROK("value OWS and obs-text", "GET / HTTP/1.1\r\nHost: a\r\nX-A: \t x \xff\x80 y\t \r\nX-B:\r\nX-C:   \r\n\r\n",
	    OK, "GET", "/", 1, B_NONE, 0, F_HOST, "a", 4),
	ROK("long header values", "GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101\r\n"
	    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\r\n", OK, "GET", "/", 1,
	    B_NONE, 0, F_HOST, "a", 3),
	ROK("pipelined", "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n", HEADEND, "GET", "/1",
	    1, B_NONE, 0, F_HOST, "a", 1),
	ROKL("request line at limit", "GET / HTTP/1.0\r\n\r\n", OK, "GET", "/", 0, B_NONE, 0, F_CLOSE, NULL, 0,
	     &lim_rl16),
	ROKL("head at limit", "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: 0123456789012345678901234567\r\n\r\n", OK, "GET", "/",
	     1, B_NONE, 0, F_HOST, "a", 2, &lim_head64),
	ROKL("headers at limit", "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n\r\n", OK, "GET", "/", 1, B_NONE, 0, F_HOST,
	     "a", 2, &lim_hdr2),

	/* request line */
	RERR("empty method", " / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad method"),
	RERR("two SP after method", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400, NULL),
	RERR("HTAB after method", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad method"),
	RERR("non-tchar in method", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad method"),
	RERR("lower-case tchar then slash", "GET/ / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad method"),
	RERR("SP in target", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400, NULL),
	RERR("two SP before version", "GET /  HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad HTTP version"),
	RERR("obs-text in target", "GET /\xff HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad request-target"),
	RERR("DEL in target", "GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad request-target"),
	RERR("CTL in long target", "GET /0123456789abcdef0123456789\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 400,
	     "bad request-target"),
	RERR("HTTP/0.9 request", "GET /\r\n\r\n", 400, "bad request-target"),
	RERR("no version", "GET / \r\n\r\n", 400, "bad HTTP version"),
	RERR("lower-case version", "GET / http/1.1\r\nHost: a\r\n\r\n", 400, "bad HTTP version"),
	RERR("trailing SP after version", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400, "bad request line"),
	RERR("version junk", "GET / HTTP/1.1x\r\nHost: a\r\n\r\n", 400, "bad request line"),
	RERR("two-digit minor", "GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400, "bad request line"),
	RERR("version without minor", "GET / HTTP/1\r\nHost: a\r\n\r\n", 400, "bad HTTP version"),
	RERR("HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505, NULL),
	RERR("HTTP/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505, NULL),
	RERR("HTTP/0.9 version", "GET / HTTP/0.9\r\n\r\n", 505, NULL),
	RERR("bare LF after request line", "GET / HTTP/1.1\nHost: a\r\n\r\n", 400, "bare LF"),
	RERR("bare CR after request line", "GET / HTTP/1.1\rHost: a\r\n\r\n", 400, "bare CR"),
	RERR("bare LF leading line", "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bare LF"),
	RERR("bare CR leading line", "\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bare CR"),
	RERR("bare LF in method", "GET\n", 400, "bare LF"),
	RERRL("request line too long", "GET /0123456789abcdef HTTP/1.1\r\n\r\n", 414, NULL, &lim_rl16),
	RERRL("request line too long, no CRLF yet", "GET /0123456789abcdef", 414, NULL, &lim_rl16),
	RERRL("request line one over", "GET /1 HTTP/1.0\r\n\r\n", 414, NULL, &lim_rl16),

	/* header fields */
	RERR("bare LF ending a field", "GET / HTTP/1.1\r\nHost: a\n\r\n", 400, "bare LF"),
	RERR("bare LF ending the head", "GET / HTTP/1.1\r\nHost: a\r\n\n", 400, "bare LF"),
	RERR("bare CR in value", "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r2\r\n\r\n", 400, "bare CR"),
	RERR("bare CR ending the head", "GET / HTTP/1.1\r\nHost: a\r\n\rX", 400, "bare CR"),
	RERR("bare LF in name", "GET / HTTP/1.1\r\nHost: a\r\nX\n: 1\r\n\r\n", 400, "bare LF"),
	RERRN("NUL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", 400, "bad header value"),
	RERR("CTL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x01" "b\r\n\r\n", 400, "bad header value"),
	RERR("DEL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n", 400, "bad header value"),
	RERR("CTL deep in long value", "GET / HTTP/1.1\r\nHost: a\r\nX: 0123456789abcdef0123456789abcdef\x1b\r\n\r\n",
	     400, "bad header value"),
	RERR("obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n", 400, "obs-fold"),
	RERR("obs-fold with HTAB", "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n\t2\r\n\r\n", 400, "obs-fold"),
	RERR("SP before first field", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400, "obs-fold"),
	RERR("SP before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400, "whitespace before colon"),
	RERR("HTAB before colon", "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", 400, "whitespace before colon"),
	RERR("empty field name", "GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n", 400, "bad header name"),
	RERR("field without colon", "GET / HTTP/1.1\r\nHost: a\r\nXYZ\r\n\r\n", 400, "bad header name"),
	RERR("non-tchar in name", "GET / HTTP/1.1\r\nHost: a\r\nX(Y): 1\r\n\r\n", 400, "bad header name"),
	RERR("obs-text in name", "GET / HTTP/1.1\r\nHost: a\r\nX\xc3\xa9: 1\r\n\r\n", 400, "bad header name"),
	RERRL("head too large", "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: 012345678901234567890123456789\r\n\r\n", 431, NULL,
	      &lim_head64),
	RERRL("head too large, unfinished", "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: 01234567890123456789012345678901234567",
	      431, NULL, &lim_head64),
	RERRL("leading CRLFs count toward head", "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n"
	      "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n", 431, NULL, &lim_head64),
	RERRL("too many header fields", "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\nY: 2\r\n\r\n", 431, "too many header fields",
	      &lim_hdr2),

	/* framing */
	RERR("Content-Length letters", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n", 400, "bad Content-Length"),
	RERR("Content-Length negative", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400, "bad Content-Length"),
	RERR("Content-Length plus", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n", 400, "bad Content-Length"),
	RERR("Content-Length inner space", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n", 400,
	     "bad Content-Length"),
	RERR("Content-Length empty", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", 400, "bad Content-Length"),
	RERR("Content-Length empty element", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1,\r\n\r\n", 400,
	     "bad Content-Length"),
	RERR("Content-Length hex", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n", 400, "bad Content-Length"),
	RERR("Content-Length decimal point", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1.0\r\n\r\n", 400,
	     "bad Content-Length"),
	RERR("Content-Length 2^62+1", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4611686018427387905\r\n\r\n", 400,
	     NULL),
	RERR("Content-Length 2^64+", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551617\r\n\r\n", 400,
	     NULL),
	RERR("Content-Length conflicting fields", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
	     400, "conflicting Content-Length"),
	RERR("Content-Length conflicting list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n", 400,
	     "conflicting Content-Length"),
	RERR("both CL and TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
	     400, "both Content-Length and Transfer-Encoding"),
	RERR("both TE and CL", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n",
	     400, "both Content-Length and Transfer-Encoding"),
	RERR("TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, NULL),
	RERR("TE gzip", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "unsupported transfer-coding"),
	RERR("TE gzip, chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501,
	     "unsupported transfer-coding"),
	RERR("TE chunked, chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 501,
	     "unsupported transfer-coding"),
	RERR("TE chunked twice", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
	     501, "unsupported transfer-coding"),
	RERR("TE identity", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", 501, NULL),
	RERR("TE empty", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", 501, NULL),
	RERR("TE chunked with parameter", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1\r\n\r\n", 501, NULL),
	RERR("TE trailing comma", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked,\r\n\r\n", 501, NULL),
	RERR("TE misspelt", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunk\r\n\r\n", 501, NULL),
	RERR("TE name with space", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", 400, NULL),

	/* Host */
	RERR("missing Host", "GET / HTTP/1.1\r\n\r\n", 400, "missing Host"),
	RERR("missing Host, absolute-form", "GET http://a/ HTTP/1.1\r\nX: 1\r\n\r\n", 400, "missing Host"),
	RERR("multiple Host", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400, "multiple Host"),
	RERR("multiple Host in HTTP/1.0", "GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n", 400, "multiple Host"),
	RERR("Host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "bad Host"),
	RERR("Host with HTAB", "GET / HTTP/1.1\r\nHost: a\tb\r\n\r\n", 400, "bad Host"),
	RERR("Host with slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400, "bad Host"),
	RERR("Host with userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400, "bad Host"),
	RERR("Host with quote", "GET / HTTP/1.1\r\nHost: a\"b\r\n\r\n", 400, "bad Host"),
	RERR("Host with obs-text", "GET / HTTP/1.1\r\nHost: a\xc3\xa9\r\n\r\n", 400, "bad Host"),
	RERR("Host with backslash", "GET / HTTP/1.1\r\nHost: a\\b\r\n\r\n", 400, "bad Host"),
};

/* the head length a case expects, resolving OK and HEADEND */
static int want_of(int want, const char *in, size_t len)
{
	const char *e;

	if (want == OK)
		return (int)len;
	if (want == HEADEND) {
		e = strstr(in, "\r\n\r\n");   /* HEADEND inputs have no NUL */
		return (int)(e - in) + 4;
	}
	return want;
}

static int slice_eq(const char *s, size_t n, const char *want)
{
	return want && strlen(want) == n && memcmp(s, want, n) == 0;
}

static int in_buf(const char *s, size_t n, const char *b, size_t len)
{
	return n == 0 || (s >= b && s + n <= b + len);
}

static int req_fields_ok(const struct req_case *tc, const struct http1_msg *m, const char *b, size_t len)
{
	size_t i;

	if (!slice_eq(m->method, m->method_len, tc->method) || !slice_eq(m->target, m->target_len, tc->target))
		return 0;
	if (m->minor_version != tc->minor || m->body != tc->body || m->flags != tc->flags)
		return 0;
	if (m->body == HTTP1_BODY_LENGTH && m->content_length != tc->cl)
		return 0;
	if (tc->host ? !slice_eq(m->host, m->host_len, tc->host) : m->host != NULL)
		return 0;
	if ((int)m->num_headers != tc->nh || m->err_status != 0 || m->err_reason != NULL)
		return 0;
	for (i = 0; i < m->num_headers; i++)
		if (!in_buf(m->headers[i].name, m->headers[i].name_len, b, len) || m->headers[i].name_len == 0 ||
		    !in_buf(m->headers[i].value, m->headers[i].value_len, b, len))
			return 0;
	return 1;
}

/* 1: the expected answer, 2: need more, 0: anything else */
static int parse_req_copy(const struct req_case *tc, size_t k, int want)
{
	const struct http1_limits *lim = tc->lim ? tc->lim : &deflim;
	struct http1_header hdrs[MAXH];
	struct http1_msg m;
	char *b = malloc(k ? k : 1);
	int r, ok;

	memcpy(b, tc->in, k);
	r = http1_parse_request(b, k, &m, hdrs, lim);
	if (r == -2)
		ok = 2;
	else if (want >= 0)
		ok = r == want && req_fields_ok(tc, &m, b, k);
	else
		ok = r == -1 && m.err_status == tc->status && m.err_reason != NULL;
	free(b);
	return ok;
}

static void run_req_case(const struct req_case *tc)
{
	size_t len = tc->in_len ? tc->in_len : strlen(tc->in), k;
	int want = want_of(tc->want, tc->in, len), ok = 1, failed_early = 0, r;
	char name[160];

	/* whole */
	{
		const struct http1_limits *lim = tc->lim ? tc->lim : &deflim;
		struct http1_header hdrs[MAXH];
		struct http1_msg m;
		char *b = malloc(len);

		memcpy(b, tc->in, len);
		r = http1_parse_request(b, len, &m, hdrs, lim);
		if (want >= 0)
			ok = r == want && req_fields_ok(tc, &m, b, len);
		else
			ok = r == -1 && m.err_status == tc->status && m.err_reason != NULL &&
			     (!tc->reason || strcmp(m.err_reason, tc->reason) == 0);
		if (!ok)
			fprintf(stderr, "  %s: r=%d status=%d reason=%s\n", tc->name, r, m.err_status,
			        m.err_reason ? m.err_reason : "-");
		free(b);
	}
	snprintf(name, sizeof(name), "request: %s (whole)", tc->name);
	TEST(name, ok);

	/* byte by byte */
	ok = 1;
	for (k = 0; k <= len && ok; k++) {
		r = parse_req_copy(tc, k, want);
		if (want >= 0)   /* need more before the end of the head, then the head */
			ok = r == ((size_t)want <= k ? 1 : 2);
		else if (r == 2)
			ok = !failed_early && k < len;
		else
			ok = r, failed_early = 1;
		if (!ok)
			fprintf(stderr, "  %s: prefix %zu wrong\n", tc->name, k);
	}
	snprintf(name, sizeof(name), "request: %s (byte by byte)", tc->name);
	TEST(name, ok);
}

/* ---- responses ---- */

struct resp_case {
	const char *name;
	const char *in;
	int head_request;
	int want;
	int status;               /* response status when valid */
	const char *reason;       /* reason phrase when valid, err_reason (or NULL) when not */
	int minor;
	enum http1_body body;
	uint64_t cl;
	unsigned flags;
	int nh;
	const struct http1_limits *lim;
};

#define SOK(n, i, hr, w, st, re, mi, bo, c, fl, h) \
	{ .name = n, .in = i, .head_request = hr, .want = w, .status = st, .reason = re, .minor = mi, .body = bo, \
	  .cl = c, .flags = fl, .nh = h }
#define SERR(n, i, why) { .name = n, .in = i, .want = -1, .reason = why }
#define SERRL(n, i, l) { .name = n, .in = i, .want = -1, .lim = l }

static const struct resp_case resp_cases[] = {
	SOK("200 Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 0, HEADEND, 200, "OK", 1, B_LEN,
	    5, 0, 1),
	SOK("200 read until close", "HTTP/1.1 200 OK\r\nServer: x\r\n\r\n", 0, OK, 200, "OK", 1, B_EOF, 0, 0, 1),
	SOK("HTTP/1.0 200", "HTTP/1.0 200 OK\r\n\r\n", 0, OK, 200, "OK", 0, B_EOF, 0, F_CLOSE, 0),
	SOK("HTTP/1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n", 0, OK, 200,
	    "OK", 0, B_LEN, 2, F_KA, 2),
	SOK("chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 0, HEADEND, 200, "OK", 1, B_CH,
	    0, 0, 1),
	SOK("Content-Length 0", "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 0, OK, 404, "Not Found", 1,
	    B_NONE, 0, 0, 1),
	SOK("204", "HTTP/1.1 204 No Content\r\n\r\n", 0, OK, 204, "No Content", 1, B_NONE, 0, 0, 0),
	SOK("204 with chunked", "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n", 0, OK, 204,
	    "No Content", 1, B_NONE, 0, 0, 1),
	SOK("304 with Content-Length", "HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n", 0, OK, 304,
	    "Not Modified", 1, B_NONE, 0, 0, 1),
	SOK("HEAD response", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", 1, OK, 200, "OK", 1, B_NONE, 0, 0, 1),
	SOK("HEAD response chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 1, OK, 200, "OK", 1,
	    B_NONE, 0, 0, 1),
	SOK("HEAD response no framing", "HTTP/1.1 200 OK\r\n\r\n", 1, OK, 200, "OK", 1, B_NONE, 0, 0, 0),
	SOK("100 Continue", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n", 0, HEADEND, 100, "Continue", 1,
	    B_NONE, 0, 0, 0),
	SOK("101 Switching Protocols", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
	    0, OK, 101, "Switching Protocols", 1, B_NONE, 0, F_UP, 2),
	SOK("missing SP before empty reason", "HTTP/1.1 200\r\nContent-Length: 1\r\n\r\n", 0, OK, 200, "", 1, B_LEN, 1,
	    0, 1),
	SOK("empty reason", "HTTP/1.1 200 \r\n\r\n", 0, OK, 200, "", 1, B_EOF, 0, 0, 0),
	SOK("reason with HTAB and obs-text", "HTTP/1.1 599 a\tb \xe9 c\r\n\r\n", 0, OK, 599, "a\tb \xe9 c", 1, B_EOF, 0,
	    0, 0),
	SOK("Connection close", "HTTP/1.1 500 Oops\r\nConnection: close\r\nContent-Length: 3\r\n\r\n", 0, OK, 500,
	    "Oops", 1, B_LEN, 3, F_CLOSE, 2),
	SOK("no Host needed, two Host fine", "HTTP/1.1 200 OK\r\nHost: a\r\nHost: b\r\nContent-Length: 1\r\n\r\n", 0, OK,
	    200, "OK", 1, B_LEN, 1, 0, 3),

	SERR("HTTP/2", "HTTP/2 200 OK\r\n\r\n", "bad HTTP version"),
	SERR("HTTP/1.2", "HTTP/1.2 200 OK\r\n\r\n", NULL),
	SERR("HTTP/2.0", "HTTP/2.0 200 OK\r\n\r\n", NULL),
	SERR("ICY", "ICY 200 OK\r\n\r\n", NULL),
	SERR("two-digit status", "HTTP/1.1 20 OK\r\n\r\n", "bad status line"),
	SERR("four-digit status", "HTTP/1.1 2000 OK\r\n\r\n", "bad status line"),
	SERR("status below 100", "HTTP/1.1 099 Nope\r\n\r\n", "bad status code"),
	SERR("two SP before status", "HTTP/1.1  200 OK\r\n\r\n", "bad status line"),
	SERR("no SP before status", "HTTP/1.1200 OK\r\n\r\n", "bad status line"),
	SERR("CTL in reason", "HTTP/1.1 200 O\x01K\r\n\r\n", "bad reason phrase"),
	SERR("bare LF status line", "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", "bare LF"),
	SERR("bare LF after status", "HTTP/1.1 200\n\r\n", "bare LF"),
	SERR("leading empty line", "\r\nHTTP/1.1 200 OK\r\n\r\n", NULL),
	SERR("obs-fold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", "obs-fold"),
	SERR("bad Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", "bad Content-Length"),
	SERR("conflicting Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
	     "conflicting Content-Length"),
	SERR("TE gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "unsupported transfer-coding"),
	SERR("TE and CL", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
	     "both Content-Length and Transfer-Encoding"),
	SERR("TE in HTTP/1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", NULL),
	SERR("304 with bad Content-Length", "HTTP/1.1 304 Not Modified\r\nContent-Length: -1\r\n\r\n", NULL),
	SERR("whitespace before colon", "HTTP/1.1 200 OK\r\nContent-Length : 1\r\n\r\n", "whitespace before colon"),
	SERRL("status line too long", "HTTP/1.1 200 a very long reason phrase\r\n\r\n", &lim_rl16),
	SERRL("head too large", "HTTP/1.1 200 OK\r\nX-Pad: 01234567890123456789012345678901234567890123\r\n\r\n",
	      &lim_head64),
	SERRL("too many header fields", "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", &lim_hdr2),
};

static int resp_fields_ok(const struct resp_case *tc, const struct http1_msg *m, const char *b, size_t len)
{
	size_t i;

	if (m->status != tc->status || !slice_eq(m->reason, m->reason_len, tc->reason))
		return 0;
	if (m->minor_version != tc->minor || m->body != tc->body || m->flags != tc->flags)
		return 0;
	if (m->content_length != tc->cl || (int)m->num_headers != tc->nh || m->err_reason != NULL)
		return 0;
	if (m->method != NULL || m->target != NULL || m->host != NULL)
		return 0;
	for (i = 0; i < m->num_headers; i++)
		if (!in_buf(m->headers[i].name, m->headers[i].name_len, b, len) ||
		    !in_buf(m->headers[i].value, m->headers[i].value_len, b, len))
			return 0;
	return 1;
}

/* 1: as expected, 2: need more (for an invalid case), 0: wrong */
static int parse_resp_copy(const struct resp_case *tc, size_t k, int want, int whole)
{
	const struct http1_limits *lim = tc->lim ? tc->lim : &deflim;
	struct http1_header hdrs[MAXH];
	struct http1_msg m;
	char *b = malloc(k ? k : 1);
	int r, ok;

	memcpy(b, tc->in, k);
	r = http1_parse_response(b, k, &m, hdrs, lim, tc->head_request);
	if (r == -2)
		ok = 2;
	else if (want >= 0)
		ok = r == want && resp_fields_ok(tc, &m, b, k);
	else
		ok = r == -1 && m.err_status == 502 && m.err_reason != NULL &&
		     (!whole || !tc->reason || strcmp(m.err_reason, tc->reason) == 0);
	if (!ok && whole)
		fprintf(stderr, "  %s: r=%d status=%d reason=%s\n", tc->name, r, m.err_status,
		        m.err_reason ? m.err_reason : "-");
	free(b);
	return ok;
}

static void run_resp_case(const struct resp_case *tc)
{
	size_t len = strlen(tc->in), k;
	int want = want_of(tc->want, tc->in, len), ok, r, failed_early = 0;
	char name[160];

	ok = parse_resp_copy(tc, len, want, 1) == 1;
	snprintf(name, sizeof(name), "response: %s (whole)", tc->name);
	TEST(name, ok);

	ok = 1;
	for (k = 0; k <= len && ok; k++) {
		r = parse_resp_copy(tc, k, want, 0);
		if (want >= 0)
			ok = r == ((size_t)want <= k ? 1 : 2);
		else if (r == 2)
			ok = !failed_early && k < len;
		else
			ok = r, failed_early = 1;
		if (!ok)
			fprintf(stderr, "  %s: prefix %zu wrong\n", tc->name, k);
	}
	snprintf(name, sizeof(name), "response: %s (byte by byte)", tc->name);
	TEST(name, ok);
}

/* ---- chunked ---- */

struct chunk_case {
	const char *name;
	const char *in;
	size_t in_len;            /* 0: strlen(in) */
	int want;                 /* total consumed when done, -1 invalid, -2 incomplete */
	const char *data;         /* decoded data (before the error, for -1) */
	size_t data_len;          /* 0: strlen(data) */
	const char *trailers;     /* reported trailer lines (when done) */
	size_t max_trailer;       /* 0: 1024 */
};

#define COK(n, i, w, d, t) { .name = n, .in = i, .want = w, .data = d, .trailers = t }
#define CERR(n, i, d) { .name = n, .in = i, .want = -1, .data = d }
#define CMORE(n, i, d) { .name = n, .in = i, .want = -2, .data = d }

static const struct chunk_case chunk_cases[] = {
	COK("one chunk", "5\r\nhello\r\n0\r\n\r\n", OK, "hello", ""),
	COK("empty body", "0\r\n\r\n", OK, "", ""),
	COK("two chunks", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", OK, "hello world", ""),
	COK("hex upper", "A\r\n0123456789\r\n0\r\n\r\n", OK, "0123456789", ""),
	COK("hex lower", "b\r\n0123456789a\r\n0\r\n\r\n", OK, "0123456789a", ""),
	COK("hex two digits", "1F\r\n0123456789abcdef0123456789abcde\r\n0\r\n\r\n", OK,
	    "0123456789abcdef0123456789abcde", ""),
	COK("leading zeros", "0005\r\nhello\r\n000\r\n\r\n", OK, "hello", ""),
	COK("16 hex digits", "0000000000000005\r\nhello\r\n0\r\n\r\n", OK, "hello", ""),
	{ .name = "binary data", .in = "4\r\n\r\n\0\n\r\n0\r\n\r\n", .in_len = 14, .want = OK, .data = "\r\n\0\n",
	  .data_len = 4, .trailers = "" },
	COK("extensions", "5;name=value\r\nhello\r\n0;last\r\n\r\n", OK, "hello", ""),
	COK("extension quoted, HTAB, obs-text", "3;a=\"x y\";\tb=\xff\r\nabc\r\n0\r\n\r\n", OK, "abc", ""),
	COK("trailers", "3\r\nabc\r\n0\r\nX-Checksum: 1234\r\nExpires:\r\n\r\n", OK, "abc",
	    "X-Checksum: 1234\r\nExpires:\r\n"),
	COK("trailer OWS", "0\r\nX:  a b  \r\n\r\n", OK, "", "X:  a b  \r\n"),
	COK("pipelined request after body", "2\r\nhi\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n", 12, "hi", ""),
	COK("pipelined after trailers", "0\r\nA: b\r\n\r\nXYZ", 11, "", "A: b\r\n"),
	{ .name = "trailers at max_trailer", .in = "0\r\nA: 1234\r\n\r\n", .want = OK, .data = "", .trailers = "A: 1234\r\n",
	  .max_trailer = 9 },

	CMORE("unfinished data", "5\r\nhel", "hel"),
	CMORE("unfinished size line", "5;ext", ""),
	CMORE("waiting for trailers", "5\r\nhello\r\n0\r\n", "hello"),
	CMORE("unfinished trailer", "5\r\nhello\r\n0\r\nX: 1\r\n", "hello"),
	CMORE("huge chunk", "ffffffffffffffff\r\nab", "ab"),

	CERR("no size", "\r\n", ""),
	CERR("not hex", "x\r\n", ""),
	CERR("negative size", "-5\r\nhello\r\n0\r\n\r\n", ""),
	CERR("0x prefix", "0x5\r\nhello\r\n0\r\n\r\n", ""),
	CERR("SP before size", " 5\r\nhello\r\n0\r\n\r\n", ""),
	CERR("SP after size", "5 \r\nhello\r\n0\r\n\r\n", ""),
	CERR("HTAB before extension", "5\t;a\r\nhello\r\n0\r\n\r\n", ""),
	CERR("extension only", ";a\r\nhello\r\n0\r\n\r\n", ""),
	CERR("17 hex digits", "00000000000000005\r\nhello\r\n0\r\n\r\n", ""),
	CERR("17 hex digits, big", "10000000000000000\r\n", ""),
	CERR("bare LF after size", "5\nhello\r\n0\r\n\r\n", ""),
	CERR("bare CR after size", "5\rhello\r\n0\r\n\r\n", ""),
	CERR("bare LF in extension", "5;a\nhello\r\n0\r\n\r\n", ""),
	CERR("CTL in extension", "5;a\x01\r\nhello\r\n0\r\n\r\n", ""),
	CERR("DEL in extension", "5;a\x7f\r\nhello\r\n0\r\n\r\n", ""),
	CERR("data too long", "5\r\nhelloX\r\n0\r\n\r\n", "hello"),
	CERR("bare LF after data", "5\r\nhello\n0\r\n\r\n", "hello"),
	CERR("CR without LF after data", "5\r\nhello\r0\r\n\r\n", "hello"),
	CERR("error in second chunk", "1\r\na\r\nzz\r\nb\r\n0\r\n\r\n", "a"),
	CERR("trailer obs-fold", "0\r\nX: 1\r\n 2\r\n\r\n", ""),
	CERR("trailer bare LF", "0\r\nX: 1\n\r\n", ""),
	CERR("trailer bare LF end", "0\r\nX: 1\r\n\n", ""),
	CERR("trailer without colon", "0\r\nX\r\n\r\n", ""),
	CERR("trailer SP before colon", "0\r\nX : 1\r\n\r\n", ""),
	CERR("trailer bad byte", "0\r\nX: a\x02\r\n\r\n", ""),
	CERR("trailer starts with SP", "0\r\n X: 1\r\n\r\n", ""),
	CERR("bare LF after last chunk", "0\n\r\n", ""),
	{ .name = "trailers too large", .in = "0\r\nA: 12345\r\n\r\n", .want = -1, .data = "", .max_trailer = 9 },
	{ .name = "trailers too large, unfinished", .in = "0\r\nA: 1234567890", .want = -1, .data = "",
	  .max_trailer = 9 },
};

struct chunk_result {
	int rc;                   /* -1 error, -2 stopped without done, else total consumed */
	char data[8192];
	size_t data_len;
	char trailers[1024];
	int have_trailers;
	int done;
	int calls_with_two_runs;  /* should stay 0: one data run per call */
};

/* one call on an exactly-sized copy; folds its output into *res */
static ssize_t chunk_step(struct http1_chunked *c, const char *src, size_t n, size_t max_trailer,
                          struct chunk_result *res)
{
	char *b = malloc(n ? n : 1);
	const char *d, *t;
	size_t dl, tl;
	ssize_t r;

	memcpy(b, src, n);
	r = http1_chunked_decode(c, b, n, &d, &dl, &t, &tl, max_trailer);
	if (r >= 0) {
		if ((size_t)r > n || (dl && (d < b || d + dl > b + r)) || (dl && res->data_len + dl > sizeof(res->data)))
			res->rc = -99;
		else if (dl) {
			memcpy(res->data + res->data_len, d, dl);
			res->data_len += dl;
		}
		if (c->done && t) {
			if (tl >= sizeof(res->trailers) || t < b || t + tl > b + r)
				res->rc = -99;
			else {
				memcpy(res->trailers, t, tl);
				res->trailers[tl] = '\0';
				res->have_trailers = 1;
			}
		}
	} else if (c->err_reason == NULL) {
		res->rc = -99;
	}
	free(b);
	return r;
}

/* feeds the input in pieces of at most step bytes, as a caller keeping unconsumed bytes would */
static void chunk_run(const struct chunk_case *tc, size_t len, size_t step, struct chunk_result *res)
{
	size_t max_trailer = tc->max_trailer ? tc->max_trailer : 1024, pos = 0, avail = 0;
	struct http1_chunked c;
	ssize_t r = 0;

	memset(&c, 0, sizeof(c));
	memset(res, 0, sizeof(*res));
	res->rc = -2;
	while (avail < len) {
		avail = avail + step < len ? avail + step : len;
		while (!c.done && (r = chunk_step(&c, tc->in + pos, avail - pos, max_trailer, res)) > 0)
			pos += (size_t)r;
		if (res->rc == -99)
			return;
		if (!c.done && r < 0) {
			res->rc = -1;
			return;
		}
		if (c.done)
			break;
	}
	res->done = c.done;
	if (c.done)
		res->rc = (int)pos;
}

static void run_chunk_case(const struct chunk_case *tc)
{
	size_t len = tc->in_len ? tc->in_len : strlen(tc->in);
	size_t dlen = tc->data_len ? tc->data_len : strlen(tc->data);
	int want = tc->want == OK ? (int)len : tc->want;
	static struct chunk_result whole, bytes;
	char name[160];
	int ok;

	chunk_run(tc, len, len, &whole);
	chunk_run(tc, len, 1, &bytes);

	ok = whole.rc == want && whole.data_len == dlen && memcmp(whole.data, tc->data, dlen) == 0;
	if (want >= 0)
		ok = ok && whole.done && whole.have_trailers && strcmp(whole.trailers, tc->trailers) == 0;
	if (!ok)
		fprintf(stderr, "  %s: rc=%d data_len=%zu done=%d\n", tc->name, whole.rc, whole.data_len, whole.done);
	snprintf(name, sizeof(name), "chunked: %s (whole)", tc->name);
	TEST(name, ok);

	ok = bytes.rc == whole.rc && bytes.data_len == whole.data_len &&
	     memcmp(bytes.data, whole.data, whole.data_len) == 0 && bytes.done == whole.done &&
	     (!whole.done || strcmp(bytes.trailers, whole.trailers) == 0);
	if (!ok)
		fprintf(stderr, "  %s: bytewise rc=%d data_len=%zu done=%d\n", tc->name, bytes.rc, bytes.data_len,
		        bytes.done);
	snprintf(name, sizeof(name), "chunked: %s (byte by byte)", tc->name);
	TEST(name, ok);
}

/* ---- checks that do not fit the tables ---- */

static void test_slices(void)
{
	static const char req[] = "POST /p?q HTTP/1.1\r\nHost:  a.example \r\nX-A: \t x \xff y\t \r\nX-B:\r\n"
	                          "Content-Length: 2\r\n\r\nhi";
	struct http1_header h[8];
	struct http1_msg m;
	int r = http1_parse_request(req, sizeof(req) - 1, &m, h, &deflim);

	TEST("slices: head length", r == (int)sizeof(req) - 3);
	TEST("slices: header count", m.num_headers == 4 && m.headers == h);
	TEST("slices: name", slice_eq(h[1].name, h[1].name_len, "X-A") && h[1].name == req + 39);
	TEST("slices: value trimmed", slice_eq(h[1].value, h[1].value_len, "x \xff y"));
	TEST("slices: empty value", h[2].value_len == 0 && h[2].value >= req && h[2].value <= req + sizeof(req));
	TEST("slices: host trimmed", slice_eq(m.host, m.host_len, "a.example") && m.host == h[0].value);
	TEST("slices: body left alone", m.body == HTTP1_BODY_LENGTH && m.content_length == 2 &&
	     memcmp(req + r, "hi", 2) == 0);
	TEST("find_header: case-insensitive", http1_find_header(&m, "content-length") == 3);
	TEST("find_header: first of name", http1_find_header(&m, "x-a") == 1);
	TEST("find_header: absent", http1_find_header(&m, "x-c") == -1);
	TEST("find_header: no prefix match", http1_find_header(&m, "x") == -1);

	r = http1_parse_response("HTTP/1.1 404 Not Found\r\n\r\n", 26, &m, h, &deflim, 0);
	TEST("response: status and reason", r == 26 && m.status == 404 && slice_eq(m.reason, m.reason_len, "Not Found"));
}

static void test_ieq(void)
{
	TEST("ieq: equal", http1_ieq("Content-Length", 14, "content-length"));
	TEST("ieq: upper", http1_ieq("CHUNKED", 7, "chunked"));
	TEST("ieq: shorter slice", !http1_ieq("chunke", 6, "chunked"));
	TEST("ieq: longer slice", !http1_ieq("chunkeds", 8, "chunked"));
	TEST("ieq: empty", http1_ieq("", 0, "") && !http1_ieq("", 0, "a"));
	TEST("ieq: not letters folded", !http1_ieq("\x0d", 1, "-") && !http1_ieq("[", 1, "{"));
	TEST("ieq: differs", !http1_ieq("close", 5, "clese"));
}

/* http1_request_whole: the control-plane servers' framing */
static void test_request_whole(void)
{
	static const struct http1_limits lim = { 2048, 4096, 32 };
	struct http1_header h[32];
	struct http1_msg m;
	size_t bl = 0;
	int keep = -1, st = 0, r;
	const char *why = NULL;
	const char *post = "POST /v1/register HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
	char big[5000];

	r = http1_request_whole(post, strlen(post), 4096, &m, h, &lim, &bl, &keep, &st, &why);
	TEST("whole: complete request", r == (int)strlen(post) - 5 && bl == 5 && keep == 1);
	r = http1_request_whole(post, strlen(post) - 2, 4096, &m, h, &lim, &bl, &keep, &st, &why);
	TEST("whole: body missing -> more", r == -2);
	r = http1_request_whole(post, 20, 4096, &m, h, &lim, &bl, &keep, &st, &why);
	TEST("whole: head missing -> more", r == -2);
	r = http1_request_whole(post, strlen(post), 60, &m, h, &lim, &bl, &keep, &st, &why);
	TEST("whole: over max -> 413", r == -1 && st == 413);
	{
		const char *ch = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";

		r = http1_request_whole(ch, strlen(ch), 4096, &m, h, &lim, &bl, &keep, &st, &why);
		TEST("whole: chunked -> 411", r == -1 && st == 411 && why);
	}
	{
		const char *two = "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\n\r\n";

		r = http1_request_whole(two, strlen(two), 4096, &m, h, &lim, &bl, &keep, &st, &why);
		TEST("whole: pipelined -> answer one, then close", r > 0 && bl == 0 && keep == 0);
	}
	memset(big, 'a', sizeof(big));
	memcpy(big, "GET /", 5);
	r = http1_request_whole(big, 4096, 4096, &m, h, &lim, &bl, &keep, &st, &why);
	TEST("whole: no end of head within max -> 4xx", r == -1 && st >= 400 && st < 500);
	{
		const char *cl = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

		r = http1_request_whole(cl, strlen(cl), 4096, &m, h, &lim, &bl, &keep, &st, &why);
		TEST("whole: Connection: close", r == (int)strlen(cl) && keep == 0);
	}
	r = http1_request_whole("GARBAGE\r\n\r\n", 11, 4096, &m, h, &lim, &bl, &keep, &st, &why);
	TEST("whole: malformed -> 400 with a reason", r == -1 && st == 400 && why && *why);
}

/* a message that returned -1 keeps failing; one that finished keeps its data */
static void test_chunked_sticky(void)
{
	struct http1_chunked c;
	const char *d, *t;
	size_t dl, tl;

	memset(&c, 0, sizeof(c));
	TEST("chunked: error is sticky", http1_chunked_decode(&c, "x", 1, &d, &dl, &t, &tl, 64) == -1 &&
	     http1_chunked_decode(&c, "0\r\n\r\n", 5, &d, &dl, &t, &tl, 64) == -1 && c.err_reason != NULL);
	memset(&c, 0, sizeof(c));
	TEST("chunked: done consumes nothing more", http1_chunked_decode(&c, "0\r\n\r\n", 5, &d, &dl, &t, &tl, 64) == 5 &&
	     c.done && http1_chunked_decode(&c, "0\r\n\r\n", 5, &d, &dl, &t, &tl, 64) == 0 && dl == 0);
	memset(&c, 0, sizeof(c));
	TEST("chunked: NULL trailer outputs allowed",
	     http1_chunked_decode(&c, "0\r\nA: b\r\n\r\n", 11, &d, &dl, NULL, NULL, 64) == 11 && c.done);
	memset(&c, 0, sizeof(c));
	TEST("chunked: one data run per call",
	     http1_chunked_decode(&c, "1\r\na\r\n1\r\nb\r\n0\r\n\r\n", 17, &d, &dl, &t, &tl, 64) == 4 && dl == 1 &&
	     *d == 'a' && http1_chunked_decode(&c, "\r\n1\r\nb\r\n0\r\n\r\n", 13, &d, &dl, &t, &tl, 64) == 6 &&
	     dl == 1 && *d == 'b');
}

/* the 4096-byte size line limit, built at run time */
static void test_chunk_line_limit(void)
{
	static char in[5000];
	struct chunk_case tc = { .name = "size line at 4096", .in = in, .want = OK, .data = "a", .trailers = "" };
	size_t n;

	/* "1;" + pad + CRLF == 4096 */
	memcpy(in, "1;", 2);
	memset(in + 2, 'e', 4092);
	n = 4094;
	memcpy(in + n, "\r\na\r\n0\r\n\r\n", 11);
	run_chunk_case(&tc);

	memcpy(in, "1;", 2);
	memset(in + 2, 'e', 4093);
	memcpy(in + 4095, "\r\na\r\n0\r\n\r\n", 11);
	tc.name = "size line over 4096";
	tc.want = -1;
	tc.data = "";
	run_chunk_case(&tc);
}

int main(void)
{
	size_t i;

	for (i = 0; i < sizeof(req_cases) / sizeof(req_cases[0]); i++)
		run_req_case(&req_cases[i]);
	for (i = 0; i < sizeof(resp_cases) / sizeof(resp_cases[0]); i++)
		run_resp_case(&resp_cases[i]);
	for (i = 0; i < sizeof(chunk_cases) / sizeof(chunk_cases[0]); i++)
		run_chunk_case(&chunk_cases[i]);
	test_chunk_line_limit();
	test_slices();
	test_ieq();
	test_chunked_sticky();
	test_request_whole();
	return test_report();
}
