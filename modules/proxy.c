/*
 * proxy: connections, streams and upstream pools of `mesh proxy`.
 *
 * One libev loop. A downstream connection (struct client) carries one stream
 * (request/response exchange) at a time; pipelined requests wait in its input
 * buffer and are parsed only when the previous response is complete, so they
 * are answered in order. A stream borrows an upstream connection from the
 * endpoint's pool (or opens one) and returns it when both messages are
 * complete and the connection is reusable.
 *
 * Data moves through four bounded buffers: client->in -> up->out (request) and
 * up->in -> client->out (response). A reader is enabled only while its input
 * buffer has room, and input is moved only while the output has room, so
 * memory per stream is bounded whatever the body size (backpressure). Bodies
 * are re-framed, never trusted: Content-Length bodies are counted, chunked
 * bodies are decoded and re-encoded, so an ambiguous message cannot pass.
 *
 * client_pump() is the one place that makes progress; every event handler
 * does its I/O and calls it. Functions that may free the client return -1.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include "admin.h"
#include "agent.h"
#include "authz.h"
#include "balance.h"
#include "buf.h"
#include "conf.h"
#include "http1.h"
#include "log.h"
#include "metrics.h"
#include "net.h"
#include "proxy.h"
#include "route.h"
#include "tap.h"
#include "tls.h"
#include "watch.h"
#include "trace.h"

#define MAX_TRAILER 8192
#define LINGER_TIME 2.0     /* discard input this long after an error before closing */
#define PEER_HEADER "x-mesh-peer"

#define container_of(p, type, field) ((type *)((char *)(p) - offsetof(type, field)))

enum lkind { L_INBOUND, L_OUTBOUND, L_SERVICE };

struct listener {
	ev_io io;                   /* accept watcher; fd is the listening socket */
	enum lkind kind;
	char service[64];           /* L_SERVICE: the service this port leads to */
	char namespace[64];
	char addr[64];              /* normalised address text, to match across reloads */
	int keep;                   /* reload bookkeeping */
	struct listener *next;
};

struct upstream;

struct pool {                       /* idle connections to one endpoint of one cluster (balance_ep.pool) */
	struct upstream *idle;      /* LIFO of idle connections */
	size_t n_idle;
};

#define U_CONNECTING 0x01
#define U_EOF        0x02           /* peer closed */
#define U_ERR        0x04           /* read/write error */
#define U_IDLE       0x08           /* in its pool's idle list */
#define U_SHADOW     0x10           /* a mirror's connection: the response is discarded */
#define U_TLS_HS     0x20           /* TCP connected, mTLS handshake running (U_CONNECTING stays set) */

struct upstream {
	ev_io io;
	ev_timer timer;             /* connect timeout, or idle timeout while pooled */
	int fd;
	int io_events;              /* events io is registered for */
	unsigned flags;             /* U_* */
	uint32_t requests;          /* requests sent on this connection */
	int err;                    /* errno of a failed connect/read/write */
	struct balance_ep *bep;     /* its endpoint; NULL once the endpoint left the config */
	struct client *client;      /* owner while in use; NULL when idle */
	struct client *mirror_of;   /* U_SHADOW: the stream whose request it copies (NULL: detached) */
	struct upstream *next_idle;
	struct tls_conn *tls;       /* mTLS to a peer proxy, NULL = plaintext */
	struct metrics_series *tcp; /* its istio_tcp_connections series (NULL: the local app) */
	uint32_t sec_gen;           /* P.sec_gen when opened: security decided under that config */
	int tls_want;               /* events the handshake waits for */
	char tls_err[96];           /* why the handshake failed, for x-mesh-error */
	struct buf in, out;
};

/* what goes out: bytes as they are, chunk-encoded, or raw until close */
enum out_mode { OUT_RAW = 0, OUT_CHUNKED };

struct body {                       /* one direction's body framing */
	enum http1_body in;         /* framing on the input side */
	enum out_mode out;
	uint64_t left;              /* HTTP1_BODY_LENGTH: bytes still to come */
	struct http1_chunked ch;    /* HTTP1_BODY_CHUNKED decoder */
	uint64_t bytes;             /* body bytes moved (decoded) */
	int done;
};

enum cstate { CS_HEAD = 0, CS_STREAM, CS_TUNNEL };

/* inbound transport security, decided per connection (PeerAuthentication) */
enum ctls { CT_PLAIN = 0, CT_SNIFF, CT_HANDSHAKE, CT_MTLS };

#define C_EOF         0x01          /* client closed its side */
#define C_CLOSE_AFTER 0x02          /* close once the current response is written */
#define C_LINGER      0x04          /* response written, write side shut, discarding input */

/* why a stream is waiting without an upstream */
enum wait { W_NONE = 0, W_DELAY, W_BACKOFF, W_QUEUE };

struct stream {
	struct conf *conf;          /* config the stream started with (ref held) */
	const struct conf_service *svc;
	const struct conf_endpoint *ep;
	struct upstream *up;
	const struct conf_route *route;  /* the rule that matched, or NULL */
	int route_block;            /* its match block (-1 = none) */
	int subset;                 /* subset index of svc's destination, -1 = whole service */
	struct balance_set *set;    /* the cluster (service or subset) */
	struct balance_ep *bep;     /* the endpoint of the current try */
	struct upstream *shadow;    /* the mirror's connection, if mirroring */
	struct client *qnext;       /* in P.queue while waiting for a connection */
	struct buf replay;          /* bytes sent upstream so far, to replay on a retry */
	enum wait waiting;
	double wake_at;             /* end of a fault delay or retry backoff */
	double try_start;           /* when the current try was sent */
	uint32_t attempts;          /* tries made (1 = the first) */
	unsigned admitted : 1;      /* counted in set->active (balance_admit said GO) */
	unsigned replayable : 1;    /* replay holds everything sent so far */
	unsigned try_counted : 1;   /* balance_start was called for this try */
	unsigned retry_active : 1;  /* counted in P.retries_active */
	double t_start;             /* head parsed */
	double t_up;                /* upstream response head received */
	size_t head_len;            /* request head still in client->in (consumed when first sent upstream) */
	struct body req, resp;
	unsigned head_req : 1;      /* HEAD: no response body */
	unsigned upgrade : 1;       /* request asked for an upgrade */
	unsigned http10 : 1;        /* HTTP/1.0 client */
	unsigned resp_head : 1;     /* final response head written to client->out */
	unsigned up_close : 1;      /* upstream said Connection: close */
	unsigned inbound : 1;
	int status;
	const char *flags;          /* Envoy-style response flag, "-" when none */
	char up_principal[128];     /* outbound over mTLS: the server's SPIFFE id */
	char peer[3][64];           /* inbound: source app, namespace, version from x-mesh-peer */
	/* for the access log */
	char method[16];
	char authority[128];
	char path[256];
	char request_id[64];
	char xff[64];
	char user_agent[128];
	struct trace_ctx trace;     /* trace context and span timing (modules/trace.c) */
};

struct client {
	ev_io io;
	ev_timer timer;
	int fd;
	int io_events;
	unsigned flags;             /* C_* */
	enum cstate state;
	enum lkind kind;            /* the listener it came from */
	enum ctls tls_state;
	enum conf_mtls mtls_mode;   /* inbound: the port's mode when accepted */
	struct tls_conn *tls;       /* inbound mTLS, NULL = plaintext */
	struct metrics_series *tcp; /* inbound: its istio_tcp_connections series, once plaintext or mTLS */
	char service[64];           /* L_SERVICE: service name and namespace */
	char namespace[64];
	char ip[46];
	double last_active;
	double head_start;          /* first byte of the current head */
	double timer_at;            /* when the timer is armed to fire */
	uint32_t scanned;           /* head bytes already seen incomplete (parse again only on a new line) */
	struct buf in, out;
	struct stream st;
	struct client *prev, *next;
};

static struct {
	struct ev_loop *loop;
	const char *conf_path;
	struct conf *conf;
	struct listener *listeners;
	struct admin *admin;
	char admin_addr[64];
	struct client *clients;
	size_t n_clients;
	struct route_table *routes; /* index of P.conf's routes */
	struct client *queue;       /* streams waiting for a connection (max_connections) */
	uint32_t retries_active;    /* retries in flight, for the retry budget */
	uint32_t streams_active;    /* streams with an upstream, for the retry budget */
	int draining;
	ev_signal sighup, sigterm, sigint;
	ev_timer drain_timer;
	int access_fd;              /* -1 = off */
	int access_json;
	struct strbuf access_buf;
	ev_timer access_flush;
	uint64_t rng;
	struct http1_header *hdrs;  /* scratch for the parser */
	size_t hdrs_cap;
	char workload[128];         /* this workload's name for metrics */
	struct tls_creds *creds;    /* this workload's identity (NULL: no [control] ca, plaintext only) */
	char self_id[160];          /* its SPIFFE id */
	char *snap_text;            /* [control] controller: the mesh part now applied, and its version */
	char snap_version[17];
	enum conf_mtls inbound_mode;/* the inbound port's PeerAuthentication mode */
	uint32_t sec_gen;           /* bumped by each config with an identity: pooled connections of older ones are not reused */
	/* counters for /metrics */
	uint64_t cx_total, up_cx_total, up_cx_active, up_reused, rejected, retries, retries_refused;
	uint64_t overflows, faults, mirrors;
	uint64_t plaintext_refused, tls_in_ok, tls_in_fail, tls_out_ok, tls_out_fail, tls_resumed;
	uint64_t authz_denied, authz_audited;
} P;

static int client_pump(struct client *c);
static void try_end(struct client *c, int status, int gateway_error);
static void upstream_close(struct upstream *u);
static void client_close(struct client *c);

/* ------------------------------------------------------------------ utils */

static uint64_t rnd(void)
{
	/* xorshift64*: request ids and jitter only, not secrets */
	P.rng ^= P.rng >> 12;
	P.rng ^= P.rng << 25;
	P.rng ^= P.rng >> 27;
	return P.rng * 2685821657736338717ULL;
}

static void copy_slice(char *dst, size_t cap, const char *s, size_t n)
{
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, s, n);
	dst[n] = 0;
}

static void make_request_id(char out[37])
{
	static const char hex[] = "0123456789abcdef";
	uint64_t a = rnd(), b = rnd();
	int i, j = 0;

	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			out[i] = '-';
			continue;
		}
		uint64_t *src = j < 16 ? &a : &b;
		out[i] = hex[*src & 15];
		*src >>= 4;
		j++;
	}
	out[14] = '4';                             /* UUID version 4 */
	out[19] = hex[8 | (b & 3)];                /* variant 10xx */
	out[36] = 0;
}

static const char *reason_phrase(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 206: return "Partial Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 413: return "Payload Too Large";
	case 414: return "URI Too Long";
	case 429: return "Too Many Requests";
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

/* a workload name the way Istio's labels show it: <service>-<version> */
static void workload_name(char *out, size_t cap, const char *service, const char *version)
{
	/* (per request: str_join, as printf costs more than the rest of the labels) */
	if (!service)
		str_join(out, cap, "unknown", NULL);
	else if (version)
		str_join(out, cap, service, "-", version, NULL);
	else
		str_join(out, cap, service, NULL);
}

static uint16_t addr_port(const struct conf_addr *a)
{
	if (!a->set)
		return 0;
	if (a->ss.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
}

/* "2026-11-25T20:38:12Z" */
static const char *iso_time(double when, char out[32])
{
	time_t t = (time_t)when;
	struct tm tm;

	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
	return out;
}

/* ------------------------------------------------------------------ io helpers */

static void set_io(struct ev_loop *loop, ev_io *io, int *cur, int fd, int want)
{
	if (*cur == want)
		return;
	ev_io_stop(loop, io);
	if (want) {
		/* same fd: ev_io_modify spares libev an epoll_ctl(ADD) that fails with EEXIST */
		if (io->fd == fd)
			io->events = (io->events & EV__IOFDSET) | want;   /* ev_io_modify, minus a warning */
		else
			ev_io_set(io, fd, want);
		ev_io_start(loop, io);
	}
	*cur = want;
}

/* reads what fits into b (through TLS when t); returns bytes read, 0 on EOF,
 * -1 on error, -2 on EAGAIN */
static ssize_t read_into(int fd, struct tls_conn *t, struct buf *b, size_t limit)
{
	size_t room;
	ssize_t n;

	room = buf_prepare(b);
	if (!room)
		return -2;
	if (limit && room > limit)
		room = limit;
	if (t) {
		n = tls_read(t, buf_tail(b), room);
		if (n > 0) {
			b->len += (uint32_t)n;
			return n;
		}
		buf_release(b);
		if (n == TLS_WANT_READ || n == TLS_WANT_WRITE)
			return -2;
		if (n < 0)
			errno = ECONNRESET;
		return n == 0 ? 0 : -1;
	}
	n = read(fd, buf_tail(b), room);
	if (n > 0) {
		b->len += (uint32_t)n;
		return n;
	}
	buf_release(b);
	if (n == 0)
		return 0;
	return (errno == EAGAIN || errno == EINTR) ? -2 : -1;
}

/* writes as much of b as the socket takes; 1 if anything was written, 0 if
 * nothing, -1 on error. Writing frees room, which is progress for the pump. */
static int flush_buf(int fd, struct tls_conn *t, struct buf *b)
{
	ssize_t n;
	int wrote = 0;

	while (b->len) {
		if (t) {
			n = tls_write(t, buf_data(b), b->len);
			if (n == TLS_WANT_WRITE || n == TLS_WANT_READ)
				return wrote;
			if (n < 0) {
				errno = ECONNRESET;
				return -1;
			}
			buf_consume(b, (size_t)n);
			wrote = 1;
			continue;
		}
		n = send(fd, buf_data(b), b->len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return wrote;
			return -1;
		}
		buf_consume(b, (size_t)n);
		wrote = 1;
	}
	buf_release(b);
	return wrote;
}

/* ------------------------------------------------------------------ body framing */

/*
 * Moves body bytes from src to dst as b says. Returns 1 if anything moved, 0 if
 * nothing could (need input or output room), -1 on bad framing (*err set).
 * eof: the input side has closed (ends an EOF-delimited body).
 */
static int body_move(struct body *b, struct buf *src, struct buf *dst, int eof, const char **err)
{
	int moved = 0;

	while (!b->done) {
		size_t room = buf_prepare(dst), n;

		if (room < 64)
			return moved;
		if (b->in == HTTP1_BODY_LENGTH) {
			n = src->len;
			if (n > b->left)
				n = (size_t)b->left;
			if (n > room)
				n = room;
			if (!n)
				return moved;
			memcpy(buf_tail(dst), buf_data(src), n);
			dst->len += (uint32_t)n;
			buf_consume(src, n);
			b->left -= n;
			b->bytes += n;
			if (!b->left)
				b->done = 1;
			moved = 1;
		} else if (b->in == HTTP1_BODY_CHUNKED) {
			const char *data, *tr;
			size_t dlen, tlen, avail = src->len;
			ssize_t r;

			/* leave room for our own chunk framing around the data */
			if (avail > room - 32)
				avail = room - 32;
			r = http1_chunked_decode(&b->ch, buf_data(src), avail, &data, &dlen, &tr, &tlen,
			                         MAX_TRAILER);
			if (r < 0) {
				*err = b->ch.err_reason ? b->ch.err_reason : "bad chunked encoding";
				return -1;
			}
			if (r == 0) {
				/* need more input, unless we limited it for lack of room */
				if (avail < src->len && avail < MAX_TRAILER + 64 && room < BUF_SIZE) {
					return moved;
				}
				if (src->len >= MAX_TRAILER + 64 && avail == src->len) {
					*err = "chunk framing too long";
					return -1;
				}
				return moved;
			}
			if (dlen) {
				char hdr[24];
				int hl = snprintf(hdr, sizeof(hdr), "%zx\r\n", dlen);

				if (b->out == OUT_CHUNKED) {
					memcpy(buf_tail(dst), hdr, (size_t)hl);
					dst->len += (uint32_t)hl;
				}
				memcpy(buf_tail(dst), data, dlen);
				dst->len += (uint32_t)dlen;
				if (b->out == OUT_CHUNKED) {
					memcpy(buf_tail(dst), "\r\n", 2);
					dst->len += 2;
				}
				b->bytes += dlen;
			}
			buf_consume(src, (size_t)r);
			moved = 1;
			if (b->ch.done) {
				if (b->out == OUT_CHUNKED) {
					if (buf_reserve(dst, tlen + 8) < 0) {
						*err = "out of memory";
						return -1;
					}
					buf_append(dst, "0\r\n", 3);
					if (tlen)
						buf_append(dst, tr, tlen);
					buf_append(dst, "\r\n", 2);
				}
				b->done = 1;
			}
		} else if (b->in == HTTP1_BODY_EOF) {
			n = src->len;
			if (b->out == OUT_CHUNKED && n > room - 32)
				n = room - 32;
			else if (n > room)
				n = room;
			if (n) {
				if (b->out == OUT_CHUNKED) {
					char hdr[24];
					int hl = snprintf(hdr, sizeof(hdr), "%zx\r\n", n);
					memcpy(buf_tail(dst), hdr, (size_t)hl);
					dst->len += (uint32_t)hl;
				}
				memcpy(buf_tail(dst), buf_data(src), n);
				dst->len += (uint32_t)n;
				if (b->out == OUT_CHUNKED) {
					memcpy(buf_tail(dst), "\r\n", 2);
					dst->len += 2;
				}
				buf_consume(src, n);
				b->bytes += n;
				moved = 1;
			} else if (eof) {
				if (b->out == OUT_CHUNKED)
					buf_append(dst, "0\r\n\r\n", 5);
				b->done = 1;
				moved = 1;
			} else {
				return moved;
			}
		} else {
			b->done = 1;
			moved = 1;
		}
	}
	return moved;
}

/* ------------------------------------------------------------------ header rewriting */

static int is_hop_by_hop(const char *n, size_t l)
{
	switch (l) {
	case 2: return http1_ieq(n, l, "te");
	case 7: return http1_ieq(n, l, "upgrade");
	case 10: return http1_ieq(n, l, "connection") || http1_ieq(n, l, "keep-alive");
	case 16: return http1_ieq(n, l, "proxy-connection");
	case 17: return http1_ieq(n, l, "transfer-encoding");
	case 19: return http1_ieq(n, l, "proxy-authorization");
	case 18: return http1_ieq(n, l, "proxy-authenticate");
	default: return 0;
	}
}

/* is header name n listed in the Connection header value(s)? */
static int listed_in_connection(const struct http1_msg *m, const char *n, size_t l)
{
	size_t i;

	for (i = 0; i < m->num_headers; i++) {
		const struct http1_header *h = &m->headers[i];
		const char *p, *end, *tok;

		if (!http1_ieq(h->name, h->name_len, "connection"))
			continue;
		p = h->value;
		end = h->value + h->value_len;
		while (p < end) {
			while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
				p++;
			tok = p;
			while (p < end && *p != ',' && *p != ' ' && *p != '\t')
				p++;
			if ((size_t)(p - tok) == l && !strncasecmp(tok, n, l))
				return 1;
		}
	}
	return 0;
}

static int has_connection_tokens(const struct http1_msg *m)
{
	int i = http1_find_header(m, "connection");
	return i >= 0;
}

static void put(struct buf *b, const char *s, size_t n)
{
	memcpy(buf_tail(b), s, n);
	b->len += (uint32_t)n;
}

#define PUTS(b, lit) put((b), (lit), sizeof(lit) - 1)

static int valid_peer_field(const char *s, size_t n)
{
	size_t i;

	if (!n || n > 63)
		return 0;
	for (i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '-' || ch == '_' || ch == '.'))
			return 0;
	}
	return 1;
}

/* inbound: "app;namespace;version" from the calling proxy, for source labels */
static void parse_peer(struct stream *st, const char *v, size_t n)
{
	const char *p = v, *end = v + n;
	int f;

	for (f = 0; f < 3; f++) {
		const char *s = p;
		while (p < end && *p != ';')
			p++;
		if (!valid_peer_field(s, (size_t)(p - s)))
			break;
		copy_slice(st->peer[f], sizeof(st->peer[f]), s, (size_t)(p - s));
		if (p < end)
			p++;
	}
	if (f < 3)
		memset(st->peer, 0, sizeof(st->peer));
}

/*
 * Writes the request head for the upstream into up->out. target/target_len is
 * the origin-form target, authority the Host to send.
 */
/* is header name n set or removed by these operations (so the original is dropped)? */
static int ops_drop(const struct conf_header_ops *ops, const char *n, size_t l)
{
	size_t i;

	for (i = 0; i < ops->n_set; i++)
		if (http1_ieq(n, l, ops->set[i].name))
			return 1;
	for (i = 0; i < ops->n_remove; i++)
		if (http1_ieq(n, l, ops->remove[i]))
			return 1;
	return 0;
}

static size_t ops_size(const struct conf_header_ops *ops)
{
	size_t i, n = 0;

	for (i = 0; i < ops->n_set; i++)
		n += strlen(ops->set[i].name) + strlen(ops->set[i].value) + 4;
	for (i = 0; i < ops->n_add; i++)
		n += strlen(ops->add[i].name) + strlen(ops->add[i].value) + 4;
	return n;
}

static void ops_put(struct buf *o, const struct conf_header_ops *ops)
{
	size_t i;

	for (i = 0; i < ops->n_set; i++) {
		put(o, ops->set[i].name, strlen(ops->set[i].name));
		PUTS(o, ": ");
		put(o, ops->set[i].value, strlen(ops->set[i].value));
		PUTS(o, "\r\n");
	}
	for (i = 0; i < ops->n_add; i++) {
		put(o, ops->add[i].name, strlen(ops->add[i].name));
		PUTS(o, ": ");
		put(o, ops->add[i].value, strlen(ops->add[i].value));
		PUTS(o, "\r\n");
	}
}

static int build_request_head(struct client *c, struct buf *o, const struct http1_msg *m,
                              const char *target, size_t target_len, const char *authority,
                              size_t authority_len, int shadow)
{
	struct stream *st = &c->st;
	const struct conf_header_ops *ops = st->route ? &st->route->req_headers : NULL;
	const char *xff = NULL, *reqid = NULL;
	size_t xff_len = 0, reqid_len = 0, need, i;
	int conn_tokens = has_connection_tokens(m), has_xfp = 0;
	const struct conf_workload *w = &st->conf->workload;

	need = m->method_len + target_len + authority_len + 600 + (sizeof(st->xff)) + 2 * 64 + TRACE_INJECT_MAX +
	       (ops ? ops_size(ops) : 0) + (c->tls ? 64 + sizeof(P.self_id) + strlen(tls_peer_id(c->tls)) : 0);
	for (i = 0; i < m->num_headers; i++)
		need += m->headers[i].name_len + m->headers[i].value_len + 4;
	if (buf_reserve(o, need) < 0)
		return -1;
	put(o, m->method, m->method_len);
	PUTS(o, " ");
	put(o, target, target_len);
	PUTS(o, " HTTP/1.1\r\nhost: ");
	if (!authority_len) {
		authority = st->svc ? st->svc->name : "localhost";
		authority_len = strlen(authority);
	}
	if (shadow) {
		/* Istio/Envoy: the mirror's Host is the original with "-shadow" (before a port) */
		const char *colon = authority[0] == '[' ? NULL : memchr(authority, ':', authority_len);
		size_t hl = colon ? (size_t)(colon - authority) : authority_len;
		put(o, authority, hl);
		PUTS(o, "-shadow");
		put(o, authority + hl, authority_len - hl);
	} else {
		put(o, authority, authority_len);
	}
	PUTS(o, "\r\n");
	for (i = 0; i < m->num_headers; i++) {
		const struct http1_header *h = &m->headers[i];

		if (is_hop_by_hop(h->name, h->name_len) || http1_ieq(h->name, h->name_len, "host"))
			continue;
		if (conn_tokens && listed_in_connection(m, h->name, h->name_len))
			continue;
		if (ops && ops_drop(ops, h->name, h->name_len))
			continue;
		if (trace_is_header(h->name, h->name_len))
			continue;       /* replaced below by our span's context */
		if (http1_ieq(h->name, h->name_len, "x-forwarded-for")) {
			xff = h->value;
			xff_len = h->value_len;
			continue;
		}
		if (http1_ieq(h->name, h->name_len, PEER_HEADER)) {
			if (st->inbound)
				parse_peer(st, h->value, h->value_len);
			continue;
		}
		/* only the proxy that terminated mTLS may say who the client is */
		if (st->inbound && http1_ieq(h->name, h->name_len, "x-forwarded-client-cert"))
			continue;
		if (http1_ieq(h->name, h->name_len, "x-request-id")) {
			reqid = h->value;
			reqid_len = h->value_len;
		}
		if (http1_ieq(h->name, h->name_len, "x-forwarded-proto"))
			has_xfp = 1;
		if (http1_ieq(h->name, h->name_len, "user-agent"))
			copy_slice(st->user_agent, sizeof(st->user_agent), h->value, h->value_len);
		put(o, h->name, h->name_len);
		PUTS(o, ": ");
		put(o, h->value, h->value_len);
		PUTS(o, "\r\n");
	}
	/* x-forwarded-for: the previous hops, then the address that connected to us */
	PUTS(o, "x-forwarded-for: ");
	if (xff_len) {
		put(o, xff, xff_len);
		PUTS(o, ", ");
	}
	put(o, c->ip, strlen(c->ip));
	PUTS(o, "\r\n");
	copy_slice(st->xff, sizeof(st->xff), xff_len ? xff : c->ip, xff_len ? xff_len : strlen(c->ip));
	if (!has_xfp)
		PUTS(o, "x-forwarded-proto: http\r\n");
	if (reqid_len) {
		copy_slice(st->request_id, sizeof(st->request_id), reqid, reqid_len);
	} else {
		/* a mirror, and a retry, carry the id of the request they copy */
		if (!st->request_id[0])
			make_request_id(st->request_id);
		PUTS(o, "x-request-id: ");
		put(o, st->request_id, strlen(st->request_id));
		PUTS(o, "\r\n");
	}
	o->len += (uint32_t)trace_inject(&st->trace, buf_tail(o), TRACE_INJECT_MAX);
	if (st->inbound && c->tls) {
		/* the verified caller, for the app (Envoy's XFCC, as Istio sets it) */
		PUTS(o, "x-forwarded-client-cert: By=");
		put(o, P.self_id, strlen(P.self_id));
		PUTS(o, ";URI=");
		put(o, tls_peer_id(c->tls), strlen(tls_peer_id(c->tls)));
		PUTS(o, "\r\n");
	}
	if (ops)
		ops_put(o, ops);
	if (shadow)
		PUTS(o, "connection: close\r\n");
	if (!st->inbound && w->service) {
		/* who is calling, for the destination's metrics (Istio's peer metadata) */
		char v[200];
		int n = snprintf(v, sizeof(v), PEER_HEADER ": %s;%s;%s\r\n", w->service, w->namespace,
		                 w->version ? w->version : "unknown");
		if (n > 0 && n < (int)sizeof(v))
			put(o, v, (size_t)n);
	}
	if (st->req.in == HTTP1_BODY_CHUNKED)
		PUTS(o, "transfer-encoding: chunked\r\n");
	if (st->upgrade) {
		int u = http1_find_header(m, "upgrade");
		PUTS(o, "connection: upgrade\r\nupgrade: ");
		put(o, m->headers[u].value, m->headers[u].value_len);
		PUTS(o, "\r\n");
	}
	PUTS(o, "\r\n");
	return 0;
}

/* Writes the client's response head into c->out from the upstream's. */
static int build_response_head(struct client *c, const struct http1_msg *m, int final)
{
	struct stream *st = &c->st;
	struct buf *o = &c->out;
	size_t need = 256 + m->reason_len, i;
	int conn_tokens = has_connection_tokens(m);

	const struct conf_header_ops *ops = final && st->route ? &st->route->resp_headers : NULL;

	if (ops)
		need += ops_size(ops);
	for (i = 0; i < m->num_headers; i++)
		need += m->headers[i].name_len + m->headers[i].value_len + 4;
	if (buf_reserve(o, need) < 0)
		return -1;
	{
		char line[48];
		int n = snprintf(line, sizeof(line), "HTTP/1.%d %d ", st->http10 ? 0 : 1, m->status);
		put(o, line, (size_t)n);
	}
	if (m->reason_len)
		put(o, m->reason, m->reason_len);
	else
		put(o, reason_phrase(m->status), strlen(reason_phrase(m->status)));
	PUTS(o, "\r\n");
	for (i = 0; i < m->num_headers; i++) {
		const struct http1_header *h = &m->headers[i];

		if (is_hop_by_hop(h->name, h->name_len))
			continue;
		if (conn_tokens && listed_in_connection(m, h->name, h->name_len))
			continue;
		if (ops && ops_drop(ops, h->name, h->name_len))
			continue;
		put(o, h->name, h->name_len);
		PUTS(o, ": ");
		put(o, h->value, h->value_len);
		PUTS(o, "\r\n");
	}
	if (ops)
		ops_put(o, ops);
	if (!final) {
		PUTS(o, "\r\n");
		return 0;
	}
	if (m->status == 101) {
		int u = http1_find_header(m, "upgrade");
		PUTS(o, "connection: upgrade\r\n");
		if (u >= 0) {
			PUTS(o, "upgrade: ");
			put(o, m->headers[u].value, m->headers[u].value_len);
			PUTS(o, "\r\n");
		}
	} else {
		if (st->resp.out == OUT_CHUNKED)
			PUTS(o, "transfer-encoding: chunked\r\n");
		if (c->flags & C_CLOSE_AFTER)
			PUTS(o, "connection: close\r\n");
		else if (st->http10)
			PUTS(o, "connection: keep-alive\r\n");
	}
	PUTS(o, "\r\n");
	return 0;
}

/* ------------------------------------------------------------------ access log, metrics */

static void access_flush_now(void)
{
	size_t off = 0;
	ssize_t n;

	while (off < P.access_buf.len) {
		n = write(P.access_fd, P.access_buf.p + off, P.access_buf.len - off);
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			break;  /* a full disk or closed stderr must not stop the proxy */
		}
		off += (size_t)n;
	}
	P.access_buf.len = 0;
}

static void access_flush_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	access_flush_now();
}

/* text fields come from the network: keep the line one line */
static void text_str(struct strbuf *s, const char *v)
{
	const unsigned char *p;

	strbuf_append(s, "\"", 1);
	for (p = (const unsigned char *)v; *p; p++)
		strbuf_append(s, (*p < 0x20 || *p == '"' || *p == 0x7f) ? "?" : (const char *)p, 1);
	strbuf_append(s, "\"", 1);
}

static void access_log(struct client *c, double now)
{
	struct stream *st = &c->st;
	struct strbuf *s = &P.access_buf;
	char ts[32], upstream[80] = "-", cluster[160];
	long dur = (long)((now - st->t_start) * 1000.0);
	long updur = st->t_up ? (long)((st->t_up - st->t_start) * 1000.0) : -1;
	const char *dir = st->inbound ? "inbound" : "outbound";

	log_timestamp(ts);
	if (st->ep)
		snprintf(upstream, sizeof(upstream), "%s", st->ep->addr.text);
	else if (st->inbound && st->conf->workload.app.set)
		snprintf(upstream, sizeof(upstream), "%s", st->conf->workload.app.text);
	if (st->svc)
		snprintf(cluster, sizeof(cluster), "%s|%u||%s.%s.svc.%s", dir, st->svc->port, st->svc->name,
		         st->svc->namespace, st->conf->mesh.domain);
	else
		snprintf(cluster, sizeof(cluster), "%s|app", dir);
	if (P.access_json) {
		strbuf_puts(s, "{\"start_time\":");
		strbuf_json_str(s, ts);
		strbuf_puts(s, ",\"method\":");
		strbuf_json_str(s, st->method);
		strbuf_puts(s, ",\"path\":");
		strbuf_json_str(s, st->path);
		strbuf_printf(s, ",\"protocol\":\"HTTP/1.%d\",\"response_code\":%d,\"response_flags\":\"%s\","
		              "\"bytes_received\":%llu,\"bytes_sent\":%llu,\"duration\":%ld,"
		              "\"upstream_service_time\":%ld,\"x_forwarded_for\":",
		              st->http10 ? 0 : 1, st->status, st->flags, (unsigned long long)st->req.bytes,
		              (unsigned long long)st->resp.bytes, dur, updur);
		strbuf_json_str(s, st->xff);
		strbuf_puts(s, ",\"user_agent\":");
		strbuf_json_str(s, st->user_agent);
		strbuf_puts(s, ",\"request_id\":");
		strbuf_json_str(s, st->request_id);
		strbuf_puts(s, ",\"authority\":");
		strbuf_json_str(s, st->authority);
		strbuf_puts(s, ",\"upstream_host\":");
		strbuf_json_str(s, upstream);
		strbuf_puts(s, ",\"upstream_cluster\":");
		strbuf_json_str(s, cluster);
		strbuf_printf(s, ",\"direction\":\"%s\"}\n", dir);
	} else {
		strbuf_printf(s, "[%s] \"%s ", ts, st->method);
		{
			/* path: printable only */
			const unsigned char *p;
			for (p = (const unsigned char *)st->path; *p; p++)
				strbuf_append(s, (*p < 0x21 || *p == '"' || *p > 0x7e) ? "?" : (const char *)p, 1);
		}
		strbuf_printf(s, " HTTP/1.%d\" %d %s %llu %llu %ld %ld ", st->http10 ? 0 : 1, st->status,
		              st->flags, (unsigned long long)st->req.bytes,
		              (unsigned long long)st->resp.bytes, dur, updur);
		text_str(s, st->xff);
		strbuf_append(s, " ", 1);
		text_str(s, st->user_agent[0] ? st->user_agent : "-");
		strbuf_append(s, " ", 1);
		text_str(s, st->request_id);
		strbuf_append(s, " ", 1);
		text_str(s, st->authority);
		strbuf_append(s, " ", 1);
		text_str(s, upstream);
		strbuf_printf(s, " %s\n", cluster);
	}
	if (P.access_buf.len >= 8192)
		access_flush_now();
	else if (!ev_is_active(&P.access_flush))
		ev_timer_start(P.loop, &P.access_flush);
}

/* ------------------------------------------------------------------ tracing hook (modules/trace.c) */

static const struct conf_service *find_service_by_name(const struct conf *cf, const char *name,
                                                       const char *ns);

/* a sampled request is over: its span (SERVER inbound, CLIENT outbound) to the collector */
static void trace_span(struct client *c, const struct metrics_req *r, double now)
{
	struct stream *st = &c->st;
	const struct conf *cf = st->conf;
	const struct conf_workload *w = &cf->workload;
	const struct trace_ctx *tc = &st->trace;
	struct trace_req t;
	char cluster[320], port[8];
	double conn_end = tc->t_connected ? tc->t_connected : st->try_start;

	memset(&t, 0, sizeof(t));
	t.m = r;
	t.server = st->inbound;
	t.service = w->service ? w->service : w->service_account;
	t.namespace = w->namespace;
	t.version = w->version;
	t.name = st->route ? st->route->name : NULL;
	if (st->inbound) {
		const struct conf_service *self = w->service ? find_service_by_name(cf, w->service, w->namespace) : NULL;
		t.port = self ? self->port : addr_port(&w->app);
		t.peer_identity = r->src_principal;
		port[sizeof(port) - 1] = 0;
		str_join(cluster, sizeof(cluster), "inbound|", u64_dec(port + sizeof(port) - 1, addr_port(&w->app)), "||",
		         NULL);
	} else {
		t.port = st->svc ? st->svc->port : 0;
		t.peer_identity = r->dst_principal;
		port[sizeof(port) - 1] = 0;
		if (st->svc && r->dst_service)   /* (record's "<name>.<namespace>.svc.<domain>") */
			str_join(cluster, sizeof(cluster), "outbound|", u64_dec(port + sizeof(port) - 1, st->svc->port), "|",
			         st->subset >= 0 ? conf_destination_of(cf, st->svc)->subsets[st->subset].name : "", "|",
			         r->dst_service, NULL);
		else
			str_join(cluster, sizeof(cluster), "outbound|||", NULL);
	}
	t.cluster = cluster;
	t.method = st->method;
	t.authority = st->authority;
	t.path = st->path;
	t.protocol = st->http10 ? "HTTP/1.0" : "HTTP/1.1";
	t.request_id = st->request_id;
	t.user_agent = st->user_agent;
	t.upstream = st->ep ? st->ep->addr.text : st->inbound && st->bep && w->app.set ? w->app.text : NULL;
	t.peer_ip = c->ip;
	t.retries = st->attempts > 1 ? st->attempts - 1 : 0;
	t.req_bytes = st->req.bytes;
	t.resp_bytes = st->resp.bytes;
	t.start = st->t_start;
	t.end = now;
	t.queue = tc->t_first_try ? tc->t_first_try - st->t_start : -1;
	t.connect = st->bep ? conn_end - st->try_start : -1;
	t.upstream_time = st->t_up ? st->t_up - conn_end : -1;
	trace_record(tc, &t);
}

/* metric labels: this workload as the destination (an inbound request or connection) */
static void labels_self_dst(struct metrics_req *r, const struct conf *cf, char *fqdn, size_t cap)
{
	const struct conf_workload *w = &cf->workload;

	r->dst_workload = P.workload;
	r->dst_app = w->service;
	r->dst_namespace = w->namespace;
	r->dst_version = w->version;
	r->dst_service_name = w->service;
	r->dst_service_namespace = w->namespace;
	if (w->service) {
		str_join(fqdn, cap, w->service, ".", w->namespace, ".svc.", cf->mesh.domain, NULL);
		r->dst_service = fqdn;
	}
}

/* ... this workload as the source (an outbound request or upstream connection) */
static void labels_self_src(struct metrics_req *r, const struct conf *cf)
{
	r->src_workload = P.workload;
	r->src_app = cf->workload.service;
	r->src_namespace = cf->workload.namespace;
	r->src_version = cf->workload.version;
}

/* ... service svc.ns as the destination; ep_labels: the endpoint's (NULL: none picked) */
static void labels_dst(struct metrics_req *r, const struct conf *cf, const char *svc, const char *ns,
                       const struct conf_labels *ep_labels, char *fqdn, size_t fcap, char *wl, size_t wcap)
{
	str_join(fqdn, fcap, svc, ".", ns, ".svc.", cf->mesh.domain, NULL);
	r->dst_service = fqdn;
	r->dst_service_name = svc;
	r->dst_service_namespace = ns;
	r->dst_app = svc;
	r->dst_namespace = ns;
	if (ep_labels) {
		r->dst_version = conf_label(ep_labels, "version");
		workload_name(wl, wcap, svc, r->dst_version);
		r->dst_workload = wl;
	}
}

/*
 * istio_tcp_connections_*: an inbound connection counts once it is plaintext
 * or its handshake is done (its security is known); an upstream connection
 * to a service (not the local app) when it is opened.
 */
static struct metrics_series *tcp_open_inbound(struct client *c)
{
	struct metrics_req r;
	char fqdn[256];

	memset(&r, 0, sizeof(r));
	r.reporter = "destination";
	r.security = c->tls ? "mutual_tls" : "none";
	if (c->tls) {
		r.src_principal = tls_peer_id(c->tls);
		r.dst_principal = P.self_id;
	}
	r.flags = "-";
	labels_self_dst(&r, P.conf, fqdn, sizeof(fqdn));
	return metrics_tcp_open(&r);
}

static struct metrics_series *tcp_open_upstream(const struct conf *cf, const struct balance_ep *e, int tls)
{
	struct metrics_req r;
	char fqdn[256], wl[128];

	if (!e->conf)
		return NULL;             /* the local app */
	memset(&r, 0, sizeof(r));
	r.reporter = "source";
	r.security = tls ? "mutual_tls" : "none";
	if (tls)
		r.src_principal = P.self_id;
	r.flags = "-";
	labels_self_src(&r, cf);
	labels_dst(&r, cf, e->set->service, e->set->namespace, &e->conf->labels, fqdn, sizeof(fqdn), wl, sizeof(wl));
	return metrics_tcp_open(&r);
}

static void record(struct client *c)
{
	struct stream *st = &c->st;
	struct conf *cf = st->conf;
	double now = ev_now(P.loop);
	struct metrics_req r;
	char fqdn[256], src_wl[128], dst_wl[128];

	memset(&r, 0, sizeof(r));
	r.code = st->status;
	r.flags = st->flags;
	r.security = "none";
	if (st->inbound) {
		r.reporter = "destination";
		if (c->tls) {
			r.security = "mutual_tls";
			r.src_principal = tls_peer_id(c->tls);
			r.dst_principal = P.self_id;
		}
		if (st->peer[0][0]) {
			workload_name(src_wl, sizeof(src_wl), st->peer[0],
			              strcmp(st->peer[2], "unknown") ? st->peer[2] : NULL);
			r.src_workload = src_wl;
			r.src_app = st->peer[0];
			r.src_namespace = st->peer[1];
			r.src_version = st->peer[2];
		}
		labels_self_dst(&r, cf, fqdn, sizeof(fqdn));
	} else {
		r.reporter = "source";
		if (st->up_principal[0]) {
			r.security = "mutual_tls";
			r.src_principal = P.self_id;
			r.dst_principal = st->up_principal;
		}
		labels_self_src(&r, cf);
		if (st->svc)
			labels_dst(&r, cf, st->svc->name, st->svc->namespace, st->ep ? &st->ep->labels : NULL, fqdn,
			           sizeof(fqdn), dst_wl, sizeof(dst_wl));
	}
	metrics_request(&r, (uint64_t)((now - st->t_start) * 1e6), st->req.bytes, st->resp.bytes);
	if (P.access_fd >= 0)
		access_log(c, now);
	if (tap_subscribers) {
		struct tap_event e = { st->inbound, st->request_id, c->ip, r.src_principal, NULL, r.dst_principal,
		                       r.dst_service_name, st->method, st->authority, st->path, st->flags, st->status,
		                       (now - st->t_start) * 1e3, (unsigned long long)st->req.bytes,
		                       (unsigned long long)st->resp.bytes };
		char dst[80] = "";

		if (st->ep)
			snprintf(dst, sizeof(dst), "%s", st->ep->addr.text);
		else if (st->inbound && cf->workload.app.set)
			snprintf(dst, sizeof(dst), "%s", cf->workload.app.text);
		e.dst = dst;
		tap_publish(&e, now);
	}
	if ((st->trace.flags & TRACE_F_SAMPLED) && trace_collecting())
		trace_span(c, &r, now);
}

/* ------------------------------------------------------------------ timers */

#define NEVER 1e30

/* a timeout in ms from now-ish; 0 means none (docs/config.md) */
static double after(double t, uint32_t ms)
{
	return ms ? t + ms / 1000.0 : NEVER;
}

static double client_deadline(struct client *c)
{
	const struct conf_proxy *px = &P.conf->proxy;
	double d;

	if (c->flags & C_LINGER)
		return c->last_active + LINGER_TIME;
	if (c->tls_state == CT_SNIFF || c->tls_state == CT_HANDSHAKE)
		return after(c->head_start, px->header_timeout);   /* accept time: the handshake is part of the head */
	if (c->state == CS_HEAD) {
		if (c->in.len && c->head_start)
			return after(c->head_start, px->header_timeout);
		return after(c->last_active, px->idle_timeout);
	}
	d = after(c->last_active, c->st.conf ? c->st.conf->proxy.stream_idle_timeout : px->stream_idle_timeout);
	if (c->state == CS_STREAM && c->st.conf) {
		const struct stream *st = &c->st;
		uint32_t to = st->route && st->route->timeout ? st->route->timeout : st->conf->proxy.request_timeout;
		double r = after(st->t_start, to);

		if (r < d)
			d = r;
		if ((st->waiting == W_DELAY || st->waiting == W_BACKOFF || st->waiting == W_QUEUE) && st->wake_at < d)
			d = st->wake_at;
		if (st->up && !st->resp_head && st->route && st->route->per_try_timeout) {
			r = st->try_start + st->route->per_try_timeout / 1000.0;
			if (r < d)
				d = r;
		}
	}
	return d;
}

static void client_arm(struct client *c)
{
	double d = client_deadline(c), now = ev_now(P.loop);

	/* lazy: only move the timer earlier; a late firing re-checks and re-arms */
	if (ev_is_active(&c->timer) && c->timer_at <= d)
		return;
	ev_timer_stop(P.loop, &c->timer);
	c->timer_at = d;
	if (d >= NEVER)
		return;
	ev_timer_set(&c->timer, d > now ? d - now : 0.001, 0.);
	ev_timer_start(P.loop, &c->timer);
}

/* ------------------------------------------------------------------ pools, upstreams */

static void upstream_update_io(struct upstream *u)
{
	int want = 0;

	if (u->flags & U_TLS_HS)
		want = u->tls_want;
	else if (u->flags & U_CONNECTING)
		want = EV_WRITE;
	else if (u->flags & U_IDLE)
		want = EV_READ;         /* an idle connection: only to see the server close it */
	else {
		if (!(u->flags & (U_EOF | U_ERR)) && u->in.len < (u->in.cap > BUF_SIZE ? u->in.cap : BUF_SIZE))
			want |= EV_READ;
		if (u->out.len)
			want |= EV_WRITE;
	}
	set_io(P.loop, &u->io, &u->io_events, u->fd, want);
	/* TLS may hold decrypted bytes the socket no longer signals */
	if ((want & EV_READ) && u->tls && !(u->flags & (U_IDLE | U_CONNECTING)) && tls_pending(u->tls))
		ev_feed_event(P.loop, &u->io, EV_READ);
}

static struct pool *pool_of(struct balance_ep *e)
{
	if (!e->pool)
		e->pool = calloc(1, sizeof(struct pool));
	return e->pool;
}

static void pool_unlink(struct upstream *u)
{
	struct pool *pl = u->bep ? u->bep->pool : NULL;
	struct upstream **pp;

	u->flags &= ~U_IDLE;
	if (!pl)
		return;
	for (pp = &pl->idle; *pp; pp = &(*pp)->next_idle)
		if (*pp == u) {
			*pp = u->next_idle;
			pl->n_idle--;
			return;
		}
}

static void queue_wake(struct balance_set *s);
static void queue_unlink(struct client *c);
static void client_arm(struct client *c);

static void upstream_close(struct upstream *u)
{
	struct balance_set *set = u->bep ? u->bep->set : NULL;

	if (u->flags & U_IDLE)
		pool_unlink(u);
	if (u->bep)
		balance_conn_close(u->bep);
	ev_io_stop(P.loop, &u->io);
	ev_timer_stop(P.loop, &u->timer);
	if (u->tls) {
		tls_free(u->tls);
		u->tls = NULL;
	}
	close(u->fd);
	buf_free(&u->in);
	buf_free(&u->out);
	metrics_tcp_close(u->tcp);
	P.up_cx_active--;
	free(u);
	if (set)
		queue_wake(set);         /* a connection slot is free */
}

static void shadow_done(struct upstream *u);

static void upstream_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct upstream *u = container_of(w, struct upstream, timer);
	struct client *c = u->client;

	if (u->flags & U_SHADOW) {      /* a mirror that took too long */
		shadow_done(u);
		return;
	}
	if (!c) {                       /* idle too long in the pool */
		upstream_close(u);
		return;
	}
	/* connect timeout */
	u->flags |= U_ERR;
	u->err = ETIMEDOUT;
	client_pump(c);
}

static void shadow_io(struct upstream *u, int revents);

/* TCP is up: drive the mTLS handshake. 1 done, 0 waiting, -1 failed (U_ERR set) */
static int upstream_tls_step(struct upstream *u)
{
	int r;

	u->flags |= U_TLS_HS;
	r = tls_handshake(u->tls);
	if (r == 0) {
		u->flags &= ~(U_TLS_HS | U_CONNECTING);
		ev_timer_stop(P.loop, &u->timer);
		P.tls_out_ok++;
		if (tls_resumed(u->tls))
			P.tls_resumed++;
		return 1;
	}
	if (r == TLS_WANT_READ || r == TLS_WANT_WRITE) {
		u->tls_want = r == TLS_WANT_READ ? EV_READ : EV_WRITE;
		return 0;
	}
	P.tls_out_fail++;
	snprintf(u->tls_err, sizeof(u->tls_err), "mTLS: %s", tls_error(u->tls));
	log_info("mTLS handshake to %s failed: %s", u->bep ? u->bep->addr : "?", tls_error(u->tls));
	u->flags |= U_ERR;
	u->err = ECONNRESET;
	return -1;
}

/* connect finished (or failed): go on with TLS if the connection has it */
static void upstream_connected(struct upstream *u)
{
	if (!(u->flags & U_TLS_HS)) {
		if ((u->err = net_connect_result(u->fd))) {
			u->flags |= U_ERR;
			return;
		}
		if (!u->tls) {
			u->flags &= ~U_CONNECTING;
			ev_timer_stop(P.loop, &u->timer);
			return;
		}
	}
	upstream_tls_step(u);
}

static void upstream_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct upstream *u = (struct upstream *)w;
	struct client *c = u->client;
	ssize_t n;

	if (u->flags & U_SHADOW) {
		shadow_io(u, revents);
		return;
	}
	if (!c) {
		/* idle in the pool: data or EOF means the server is done with it;
		 * over TLS a post-handshake message (a session ticket) is not */
		char b[64];
		if (u->tls && tls_read(u->tls, b, sizeof(b)) == TLS_WANT_READ)
			return;
		upstream_close(u);
		return;
	}
	if (u->flags & U_CONNECTING) {
		upstream_connected(u);
		if (!(u->flags & (U_CONNECTING | U_ERR)))
			c->st.trace.t_connected = ev_now(loop);   /* for the span's connect time */
	} else if (revents & EV_READ) {
		n = read_into(u->fd, u->tls, &u->in, 0);
		if (n == 0)
			u->flags |= U_EOF;
		else if (n == -1) {
			u->flags |= U_ERR;
			u->err = errno;
		}
	}
	c->last_active = ev_now(loop);
	client_pump(c);
}

/* the address to connect to for an endpoint of a set */
static const struct conf_addr *ep_addr(const struct conf *cf, const struct balance_ep *e)
{
	if (e->conf)
		return &e->conf->addr;
	return &cf->workload.app;       /* the app set's one endpoint */
}

/* an idle pooled connection to e, or NULL */
static struct upstream *pool_take(struct balance_ep *e)
{
	struct pool *pl = e->pool;
	struct upstream *u;

	/* a reload may have changed whether (and with whom) the endpoint speaks mTLS */
	while (pl && pl->idle && pl->idle->sec_gen != P.sec_gen)
		upstream_close(pl->idle);
	if (!pl || !pl->idle)
		return NULL;
	u = pl->idle;
	pl->idle = u->next_idle;
	pl->n_idle--;
	u->next_idle = NULL;
	u->flags &= ~U_IDLE;
	ev_timer_stop(P.loop, &u->timer);
	P.up_reused++;
	return u;
}

static const struct conf_service *find_service_by_name(const struct conf *cf, const char *name,
                                                      const char *ns);

/*
 * Auto mTLS: a connection to an endpoint of a meshed service (sidecar = yes)
 * is mTLS unless the destination's PeerAuthentication says DISABLE, and the
 * server must prove the service's identity. Plaintext when this proxy has no
 * identity. *fail is set when TLS was wanted but could not be set up.
 */
static struct tls_conn *upstream_tls(const struct conf *cf, const struct balance_ep *e, int fd, int *fail)
{
	const struct conf_service *svc;
	struct authz_workload w;
	char id[256];
	const char *ids[1] = { id };
	struct tls_conn *t;

	*fail = 0;
	if (!P.creds || !e->conf)
		return NULL;            /* no identity, or the local app */
	svc = find_service_by_name(cf, e->set->service, e->set->namespace);
	if (!svc || !svc->sidecar)
		return NULL;
	w.namespace = svc->namespace;
	w.service = svc->name;
	w.labels = &e->conf->labels;
	if (authz_peer_mode(cf, &w, svc->port, NULL) == CONF_MTLS_DISABLE)
		return NULL;
	if (tls_spiffe_id(id, sizeof(id), cf->mesh.trust_domain ? cf->mesh.trust_domain : cf->mesh.domain,
	                  svc->namespace, svc->service_account ? svc->service_account : svc->name) < 0 ||
	    !(t = tls_client(P.creds, fd, ids, 1, e->addr))) {
		*fail = 1;
		return NULL;
	}
	return t;
}

/* a new connection to e (connect started); NULL with errno set */
static struct upstream *upstream_connect(const struct conf *cf, struct balance_ep *e,
                                         uint32_t connect_timeout)
{
	const struct conf_addr *a = ep_addr(cf, e);
	struct upstream *u;
	int in_progress, fd;

	fd = net_connect((const struct sockaddr *)&a->ss, a->len, &in_progress);
	if (fd < 0)
		return NULL;
	u = calloc(1, sizeof(*u));
	if (!u) {
		close(fd);
		errno = ENOMEM;
		return NULL;
	}
	u->fd = fd;
	u->sec_gen = P.sec_gen;
	{
		int fail;
		u->tls = upstream_tls(cf, e, fd, &fail);
		if (fail) {
			free(u);
			close(fd);
			errno = ENOMEM;
			return NULL;
		}
	}
	u->bep = e;
	u->tcp = tcp_open_upstream(cf, e, u->tls != NULL);
	balance_conn_open(e);
	ev_init(&u->io, upstream_io_cb);
	u->io.fd = -1;            /* not registered yet: set_io uses ev_io_set */
	ev_init(&u->timer, upstream_timer_cb);
	if (in_progress || u->tls) {
		/* the connect timeout covers the mTLS handshake too */
		u->flags |= U_CONNECTING;
		if (!in_progress)
			u->flags |= U_TLS_HS;       /* connected at once (loopback): handshake next */
		u->tls_want = EV_WRITE;
		ev_timer_set(&u->timer, (connect_timeout ? connect_timeout : cf->proxy.connect_timeout) / 1000.0, 0.);
		ev_timer_start(P.loop, &u->timer);
	}
	P.up_cx_total++;
	P.up_cx_active++;
	return u;
}

static void upstream_release(struct upstream *u, int reusable)
{
	const struct conf_proxy *px = &P.conf->proxy;
	const struct conf_policy *pol = u->bep ? u->bep->set->policy : NULL;
	struct pool *pl;

	u->client = NULL;
	if (!reusable || !u->bep || u->in.len || u->out.len ||
	    (u->flags & (U_EOF | U_ERR | U_CONNECTING)) || P.draining ||
	    (pol && pol->max_requests_per_connection && u->requests >= pol->max_requests_per_connection) ||
	    !(pl = pool_of(u->bep)) || pl->n_idle >= px->max_idle_per_endpoint) {
		upstream_close(u);
		return;
	}
	buf_release(&u->in);
	buf_release(&u->out);
	u->next_idle = pl->idle;
	pl->idle = u;
	pl->n_idle++;
	u->flags |= U_IDLE;
	upstream_update_io(u);
	if (px->upstream_idle_timeout) {
		ev_timer_set(&u->timer, px->upstream_idle_timeout / 1000.0, 0.);
		ev_timer_start(P.loop, &u->timer);
	}
	queue_wake(u->bep->set);         /* an idle connection is there to take */
}

/* balance_sync is dropping endpoint e: close its idle connections, forget it elsewhere */
static void ep_free_hook(struct balance_ep *e)
{
	struct pool *pl = e->pool;
	struct client *c;

	while (pl && pl->idle)
		upstream_close(pl->idle);
	free(pl);
	e->pool = NULL;
	for (c = P.clients; c; c = c->next) {
		if (c->st.up && c->st.up->bep == e)
			c->st.up->bep = NULL;      /* closed, not pooled, when the stream ends */
		if (c->st.shadow && c->st.shadow->bep == e)
			c->st.shadow->bep = NULL;
		if (c->st.bep == e) {
			c->st.bep = NULL;
			c->st.try_counted = 0;
		}
	}
}

/* balance_sync is dropping a whole cluster: streams using it go on unaccounted */
static void set_free_hook(struct balance_set *s)
{
	struct client *c;

	for (c = P.clients; c; c = c->next)
		if (c->st.set == s) {
			if (c->st.waiting == W_QUEUE) {
				queue_unlink(c);
				c->st.wake_at = ev_now(P.loop);   /* dispatch finds no set: 503 */
				client_arm(c);
			}
			if (c->st.admitted) {
				c->st.admitted = 0;
				P.streams_active--;
			}
			c->st.set = NULL;
		}
}

/* ------------------------------------------------------------------ client lifecycle */

static void client_update_io(struct client *c)
{
	int want = 0;
	size_t limit = c->state == CS_HEAD ? P.conf->proxy.max_header_size + 1 : BUF_SIZE;

	if (c->flags & C_LINGER)
		want = EV_READ;
	else {
		if (!(c->flags & C_EOF) && c->in.len < limit &&
		    !(c->state == CS_HEAD && (c->flags & C_CLOSE_AFTER)))
			want |= EV_READ;
		if (c->out.len)
			want |= EV_WRITE;
	}
	set_io(P.loop, &c->io, &c->io_events, c->fd, want);
	client_arm(c);
	/* TLS may hold decrypted bytes the socket no longer signals */
	if ((want & EV_READ) && c->tls && c->tls_state == CT_MTLS && !(c->flags & C_LINGER) &&
	    tls_pending(c->tls))
		ev_feed_event(P.loop, &c->io, EV_READ);
}

static void stream_reset(struct client *c);

static void client_close(struct client *c)
{
	if (c->st.up) {
		c->st.up->client = NULL;
		upstream_release(c->st.up, 0);
		c->st.up = NULL;
	}
	stream_reset(c);
	ev_io_stop(P.loop, &c->io);
	ev_timer_stop(P.loop, &c->timer);
	if (c->tls) {
		tls_free(c->tls);
		c->tls = NULL;
	}
	close(c->fd);
	buf_free(&c->in);
	buf_free(&c->out);
	metrics_tcp_close(c->tcp);
	if (c->prev)
		c->prev->next = c->next;
	else
		P.clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	P.n_clients--;
	free(c);
	if (P.draining && !P.n_clients)
		ev_break(P.loop, EVBREAK_ALL);
}

/* the response is written and the socket's write side shut: read and drop what
 * the client still sends for a moment, so our error reply is not lost in a RST */
static void client_linger(struct client *c)
{
	c->flags |= C_LINGER;
	shutdown(c->fd, SHUT_WR);
	buf_free(&c->in);
}

/*
 * Answers the current stream with an error made by the proxy. Before the
 * response head went out: a short text body and x-mesh-error; after: the only
 * honest thing is to cut the connection.
 */
static int stream_fail(struct client *c, int status, const char *flags, const char *fmt, ...)
{
	struct stream *st = &c->st;
	char msg[256], head[512];
	va_list ap;
	int n, hn;

	if (st->up) {
		/* a timeout or a bad answer is the endpoint's failure; a bad request is not */
		try_end(c, status >= 500 ? 0 : 499, status >= 502 && status <= 504);
		st->up->client = NULL;
		upstream_release(st->up, 0);
		st->up = NULL;
	}
	if (st->resp_head) {
		st->status = st->status ? st->status : status;
		st->flags = flags;
		record(c);
		client_close(c);
		return -1;
	}
	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if (n > (int)sizeof(msg) - 2)
		n = (int)sizeof(msg) - 2;
	msg[n++] = '\n';
	msg[n] = 0;
	if (!st->req.done)
		c->flags |= C_CLOSE_AFTER;  /* the rest of the request body cannot be skipped safely */
	if (st->head_len) {
		buf_consume(&c->in, st->head_len);
		st->head_len = 0;
	}
	hn = snprintf(head, sizeof(head),
	              "HTTP/1.%d %d %s\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n"
	              "x-mesh-error: %.*s\r\n%s\r\n",
	              st->http10 ? 0 : 1, status, reason_phrase(status), st->head_req ? 0 : n, n - 1, msg,
	              (c->flags & C_CLOSE_AFTER) ? "connection: close\r\n" : "");
	if (buf_append(&c->out, head, (size_t)hn) < 0 ||
	    (!st->head_req && buf_append(&c->out, msg, (size_t)n) < 0)) {
		client_close(c);
		return -1;
	}
	st->status = status;
	st->flags = flags;
	st->resp_head = 1;
	st->resp.done = 1;
	st->req.done = 1;
	return 0;
}

/* a malformed request: answer, then close (nothing after it can be trusted) */
static int client_reject(struct client *c, int status, const char *reason)
{
	char resp[512];
	int n;

	P.rejected++;
	log_debug("rejected request from %s: %d %s", c->ip, status, reason);
	n = snprintf(resp, sizeof(resp),
	             "HTTP/1.1 %d %s\r\ncontent-type: text/plain\r\ncontent-length: %zu\r\n"
	             "x-mesh-error: %s\r\nconnection: close\r\n\r\n%s\n",
	             status, reason_phrase(status), strlen(reason) + 1, reason, reason);
	buf_free(&c->in);
	if (buf_append(&c->out, resp, (size_t)n) < 0) {
		client_close(c);
		return -1;
	}
	c->flags |= C_CLOSE_AFTER | C_EOF;
	return 0;
}

/* ------------------------------------------------------------------ streams */

/* the name error messages give the destination */
#define SVC(st) ((st)->svc ? (st)->svc->name : "local app")

static const struct conf_service *find_service_by_name(const struct conf *cf, const char *name,
                                                       const char *ns)
{
	size_t i;

	for (i = 0; i < cf->n_services; i++)
		if (!strcmp(cf->services[i].name, name) && !strcmp(cf->services[i].namespace, ns))
			return &cf->services[i];
	return NULL;
}

static int percent_hit(double pct)
{
	return pct >= 100.0 || (double)(rnd() % 1000000) < pct * 10000.0;
}

/* the consistent-hash key of a request, per the cluster's policy (0 = none) */
static uint64_t request_hash(struct client *c, const struct conf_policy *pol, const struct http1_msg *m,
                             const char *query, size_t query_len)
{
	size_t i, kl;

	if (!pol || (pol->lb != CONF_LB_RING_HASH && pol->lb != CONF_LB_MAGLEV))
		return 0;
	switch (pol->hash_on) {
	case CONF_HASH_SOURCE_IP:
		return balance_hash(c->ip, strlen(c->ip));
	case CONF_HASH_HEADER:
		i = (size_t)http1_find_header(m, pol->hash_key);
		return (int)i >= 0 ? balance_hash(m->headers[i].value, m->headers[i].value_len) : 0;
	case CONF_HASH_COOKIE:
		kl = strlen(pol->hash_key);
		for (i = 0; i < m->num_headers; i++) {
			const char *p, *end;
			if (!http1_ieq(m->headers[i].name, m->headers[i].name_len, "cookie"))
				continue;
			p = m->headers[i].value;
			end = p + m->headers[i].value_len;
			while (p < end) {
				const char *semi = memchr(p, ';', (size_t)(end - p)), *e2 = semi ? semi : end;
				while (p < e2 && *p == ' ')
					p++;
				if ((size_t)(e2 - p) > kl && !memcmp(p, pol->hash_key, kl) && p[kl] == '=')
					return balance_hash(p + kl + 1, (size_t)(e2 - p - (ptrdiff_t)kl - 1));
				p = semi ? semi + 1 : end;
			}
		}
		return 0;
	case CONF_HASH_QUERY: {
		const char *p = query, *end = query ? query + query_len : NULL;
		kl = strlen(pol->hash_key);
		while (p && p < end) {
			const char *amp = memchr(p, '&', (size_t)(end - p)), *e2 = amp ? amp : end;
			if ((size_t)(e2 - p) > kl && !memcmp(p, pol->hash_key, kl) && p[kl] == '=')
				return balance_hash(p + kl + 1, (size_t)(e2 - p - (ptrdiff_t)kl - 1));
			p = amp ? amp + 1 : end;
		}
		return 0;
	}
	default:
		return 0;
	}
}

/* ends the current try on its endpoint (outlier detection, latency estimate) */
static void try_end(struct client *c, int status, int gateway_error)
{
	struct stream *st = &c->st;

	if (st->try_counted && st->bep)
		balance_end(st->bep, status, gateway_error, (ev_now(P.loop) - st->try_start) * 1000.0,
		            ev_now(P.loop));
	st->try_counted = 0;
}

static void queue_unlink(struct client *c)
{
	struct client **pp;

	for (pp = &P.queue; *pp; pp = &(*pp)->st.qnext)
		if (*pp == c) {
			*pp = c->st.qnext;
			c->st.qnext = NULL;
			return;
		}
}

/* a connection of set s became free: the first stream queued on it tries again */
static void queue_wake(struct balance_set *s)
{
	struct client *c;

	for (c = P.queue; c; c = c->st.qnext)
		if (c->st.set == s && c->st.wake_at >= NEVER) {
			c->st.wake_at = ev_now(P.loop);
			ev_timer_stop(P.loop, &c->timer);
			ev_timer_set(&c->timer, 0., 0.);
			ev_timer_start(P.loop, &c->timer);
			c->timer_at = c->st.wake_at;
			return;
		}
}

static void shadow_detach(struct client *c);

/* gives back everything the stream holds (balancer counts, queue place, replay) */
static void stream_unaccount(struct client *c)
{
	struct stream *st = &c->st;

	if (st->up) {
		try_end(c, 499, 0);      /* not the endpoint's fault */
		st->up->client = NULL;
		upstream_release(st->up, 0);
		st->up = NULL;
	}
	if (st->waiting == W_QUEUE) {
		queue_unlink(c);
		if (st->set)
			balance_unqueue(st->set);
	}
	st->waiting = W_NONE;
	if (st->admitted) {
		if (st->set)
			balance_release(st->set);
		P.streams_active--;
		st->admitted = 0;
	}
	if (st->retry_active) {
		P.retries_active--;
		st->retry_active = 0;
	}
	if (st->shadow)
		shadow_detach(c);
	buf_free(&st->replay);
}

static void stream_reset(struct client *c)
{
	stream_unaccount(c);
	if (c->st.conf)
		conf_unref(c->st.conf);
	memset(&c->st, 0, sizeof(c->st));
	c->state = CS_HEAD;
	c->head_start = 0;
}

/* a response made by the proxy itself (direct_response, redirect), the request's head consumed */
static int stream_local(struct client *c, int status, const char *extra_headers, const char *body)
{
	struct stream *st = &c->st;
	char head[1024];
	size_t bl = body ? strlen(body) : 0;
	int hn;

	if (!st->req.done)
		c->flags |= C_CLOSE_AFTER;
	if (st->head_len) {
		buf_consume(&c->in, st->head_len);
		st->head_len = 0;
	}
	hn = snprintf(head, sizeof(head), "HTTP/1.%d %d %s\r\ncontent-length: %zu\r\n%s%s",
	              st->http10 ? 0 : 1, status, reason_phrase(status), st->head_req ? 0 : bl,
	              extra_headers, (c->flags & C_CLOSE_AFTER) ? "connection: close\r\n" : "");
	if (hn < 0 || hn >= (int)sizeof(head) || buf_append(&c->out, head, (size_t)hn) < 0) {
		client_close(c);
		return -1;
	}
	/* the route's response header operations apply to its own answers too (Envoy) */
	if (st->route) {
		const struct conf_header_ops *ops = &st->route->resp_headers;
		if (buf_reserve(&c->out, ops_size(ops) + 2) < 0) {
			client_close(c);
			return -1;
		}
		ops_put(&c->out, ops);
	}
	if (buf_append(&c->out, "\r\n", 2) < 0 || (!st->head_req && bl && buf_append(&c->out, body, bl) < 0)) {
		client_close(c);
		return -1;
	}
	st->status = status;
	st->resp_head = 1;
	st->resp.done = 1;
	st->req.done = 1;
	return 0;
}

/*
 * Writes the request head for an upstream into o. authority may be rewritten;
 * shadow: a mirror's copy (Host gets "-shadow", the connection closes after).
 */
static int build_request_head(struct client *c, struct buf *o, const struct http1_msg *m,
                              const char *target, size_t target_len, const char *authority,
                              size_t authority_len, int shadow);

/* parses the retained head again (after a wait); 0 or -1 (closed) */
static int reparse_head(struct client *c, struct http1_msg *m)
{
	const struct conf_proxy *px = &c->st.conf->proxy;
	struct http1_limits lim = { px->max_request_line, px->max_header_size, px->max_headers };

	memset(m, 0, sizeof(*m));
	if (http1_parse_request(buf_data(&c->in), c->st.head_len, m, P.hdrs, &lim) != (int)c->st.head_len) {
		client_close(c);   /* cannot happen: it parsed before */
		return -1;
	}
	return 0;
}

/* target (origin-form) and authority of a parsed request */
static void request_target(const struct http1_msg *m, const char **target, size_t *target_len,
                           const char **authority, size_t *authority_len)
{
	*target = m->target;
	*target_len = m->target_len;
	*authority = m->host;
	*authority_len = (m->flags & HTTP1_F_HAS_HOST) ? m->host_len : 0;
	if (m->target_len > 7 && !strncasecmp(m->target, "http://", 7)) {
		const char *a = m->target + 7, *end = m->target + m->target_len, *p = a;
		while (p < end && *p != '/' && *p != '?')
			p++;
		*authority = a;
		*authority_len = (size_t)(p - a);
		if (p < end && *p == '/') {
			*target = p;
			*target_len = (size_t)(end - p);
		} else {
			*target = "/";      /* "http://host" and "http://host?x" have an empty path */
			*target_len = 1;
		}
	}
}

static void shadow_start(struct client *c, const struct http1_msg *m, const char *target,
                         size_t target_len, const char *authority, size_t authority_len);
static int retry_check(struct client *c, unsigned kind, int status, double *backoff);
static int stream_retry(struct client *c, double backoff);

/*
 * Sends the stream to an endpoint of its cluster: admission (pool limits), the
 * balancer's pick, a pooled or new connection, and the request head (built from
 * the head still in client->in the first time, replayed after that).
 * m: the parsed head when the caller has it, else NULL. 1 sent, 0 waiting, -1 freed.
 */
static int stream_dispatch(struct client *c, const struct http1_msg *m_in)
{
	struct stream *st = &c->st;
	struct conf *cf = st->conf;
	double now = ev_now(P.loop);
	const struct conf_policy *pol;
	struct http1_msg mbuf;
	const struct http1_msg *m = m_in;
	const char *why = NULL, *target, *authority, *query;
	size_t target_len, authority_len, query_len;
	int from_queue = st->waiting == W_QUEUE, r;
	struct balance_ep *e;
	struct upstream *u;
	char path_buf[2048];

	if (from_queue)
		queue_unlink(c);
	st->waiting = W_NONE;
	if (!st->set)
		return stream_fail(c, 503, "UH", "no healthy upstream: %s left the configuration",
		                   st->svc ? st->svc->name : "the local app");
	pol = st->set->policy;
	if (st->head_len && !m) {
		if (reparse_head(c, &mbuf) < 0)
			return -1;
		m = &mbuf;
	}
	target = authority = query = NULL;
	target_len = authority_len = query_len = 0;
	if (m) {
		request_target(m, &target, &target_len, &authority, &authority_len);
		query = memchr(target, '?', target_len);
		query_len = query ? (size_t)(target + target_len - query - 1) : 0;
		if (query)
			query++;
	}
	e = balance_pick(st->set, m ? request_hash(c, pol, m, query, query_len) : 0, rnd(), now, &why);
	if (!e)
		return stream_fail(c, 503, "UH", "%s for service %s", why ? why : "no healthy upstream",
		                   st->svc ? st->svc->name : "local app");
	u = pool_take(e);
	if (!st->admitted) {
		r = balance_admit(st->set, !u, from_queue, &why);
		if (r == BALANCE_QUEUE) {
			if (u)
				upstream_release(u, 1);
			st->waiting = W_QUEUE;
			st->wake_at = NEVER;
			st->qnext = P.queue;
			P.queue = c;
			return 0;
		}
		if (r == BALANCE_REFUSE) {
			if (u)
				upstream_release(u, 1);
			P.overflows++;
			return stream_fail(c, 503, "UO", "upstream overflow: %s reached for %s", why,
			                   st->svc ? st->svc->name : "local app");
		}
		st->admitted = 1;
		P.streams_active++;
	}
	st->bep = e;
	st->ep = e->conf;
	st->attempts++;
	balance_start(e);
	st->try_counted = 1;
	st->try_start = now;
	st->trace.t_connected = 0;
	if (st->attempts == 1)
		st->trace.t_first_try = now;
	if (!u) {
		u = upstream_connect(cf, e, pol ? pol->connect_timeout : 0);
		if (!u) {
			int err = errno;
			double backoff;

			try_end(c, 0, 1);
			if (retry_check(c, CONF_RETRY_CONNECT_FAILURE, 0, &backoff))
				return stream_retry(c, backoff);
			return stream_fail(c, 502, "UF", "upstream connect error: %s %s (%s)",
			                   st->svc ? st->svc->name : "local app", ep_addr(cf, e)->text,
			                   strerror(err));
		}
	}
	st->up = u;
	u->client = c;
	u->requests++;
	if (st->head_len) {
		/* the first try: the head, rewritten for the upstream */
		const struct conf_route *rt = st->route;
		size_t mark = u->out.len;

		if (rt && rt->rewrite_uri) {
			const char *q = memchr(target, '?', target_len);
			size_t pl = q ? (size_t)(q - target) : target_len;
			int n = route_rewrite_path(rt, st->route_block, target, pl, q ? q + 1 : NULL,
			                           q ? (size_t)(target + target_len - q - 1) : 0, path_buf,
			                           sizeof(path_buf));
			if (n > 0) {
				target = path_buf;
				target_len = (size_t)n;
			}
		}
		if (rt && rt->rewrite_authority) {
			authority = rt->rewrite_authority;
			authority_len = strlen(authority);
		}
		if (build_request_head(c, &u->out, m, target, target_len, authority, authority_len, 0) < 0) {
			client_close(c);
			return -1;
		}
		if (rt && rt->mirror.svc && st->attempts == 1 && percent_hit(rt->mirror_percent))
			shadow_start(c, m, target, target_len, authority, authority_len);
		if (st->req.in == HTTP1_BODY_NONE && !st->upgrade) {
			/* bodiless: the head stays in client->in until the response starts,
			 * and a retry builds it again from there - no copy per request */
		} else {
			if (st->replayable &&
			    buf_append(&st->replay, buf_data(&u->out) + mark, u->out.len - mark) < 0) {
				st->replayable = 0;
				buf_free(&st->replay);
			}
			buf_consume(&c->in, st->head_len);
			st->head_len = 0;
		}
	} else {
		/* a retry: everything sent so far, again */
		if (buf_append(&u->out, buf_data(&st->replay), st->replay.len) < 0) {
			client_close(c);
			return -1;
		}
	}
	upstream_update_io(u);
	return 1;
}

/*
 * May the failed try be retried? kind: the failure's retry_on class
 * (CONF_RETRY_CONNECT_FAILURE, CONF_RETRY_RESET) with status 0, or 0 with the
 * response status. Needs a route that allows it (or a stale pooled connection,
 * retried once whatever the route), a replayable request, nothing sent to the
 * client yet, and room in the retry budget. Sets the backoff (seconds).
 */
static int retry_check(struct client *c, unsigned kind, int status, double *backoff)
{
	struct stream *st = &c->st;
	const struct conf_route *rt = st->route;
	struct upstream *u = st->up;
	unsigned on = rt ? rt->retry_on : 0;
	uint32_t cap;
	int ok = 0;
	size_t i;

	*backoff = 0;
	if (!st->replayable || st->resp_head)
		return 0;
	if (kind == CONF_RETRY_RESET && u && u->requests > 1 && !u->in.len && st->attempts == 1 &&
	    !(rt && rt->retries))
		return 1;   /* a pooled connection the server had closed: not the request's fault */
	if (!rt || st->attempts > rt->retries)
		return 0;
	if (kind & on)
		ok = 1;
	else if (!status && (on & (CONF_RETRY_5XX | CONF_RETRY_GATEWAY_ERROR)))
		ok = 1;     /* no response at all counts as 5xx / gateway error (Envoy) */
	else if (status >= 500 && (on & CONF_RETRY_5XX))
		ok = 1;
	else if ((status == 502 || status == 503 || status == 504) && (on & CONF_RETRY_GATEWAY_ERROR))
		ok = 1;
	else if (status && (on & CONF_RETRY_STATUS_CODES))
		for (i = 0; i < rt->n_retry_status_codes; i++)
			if (rt->retry_status_codes[i] == status)
				ok = 1;
	if (!ok)
		return 0;
	/* the retry budget: retries in flight stay under a share of the streams in
	 * flight, with Envoy's floor of 3; 0% turns retries off */
	cap = P.streams_active * st->conf->proxy.retry_budget_percent / 100;
	if (cap < 3 && st->conf->proxy.retry_budget_percent)
		cap = 3;
	if (!st->retry_active && P.retries_active >= cap) {
		P.retries_refused++;
		return 0;
	}
	/* exponential backoff with full jitter: base 25 ms, ceiling doubling up to 250 ms */
	{
		uint32_t shift = st->attempts > 4 ? 4 : st->attempts - 1;
		double ceil_us = 25000.0 * (double)(1u << shift);
		if (ceil_us > 250000.0)
			ceil_us = 250000.0;
		*backoff = (double)(rnd() % (uint64_t)ceil_us) / 1e6;
	}
	return 1;
}

/* drops the current try's connection and sends again, now or after backoff; 1, or -1 freed */
static int stream_retry(struct client *c, double backoff)
{
	struct stream *st = &c->st;

	if (st->up) {
		st->up->client = NULL;
		upstream_release(st->up, 0);
		st->up = NULL;
	}
	P.retries++;
	if (backoff > 0 && !st->retry_active) {
		st->retry_active = 1;
		P.retries_active++;
	}
	st->resp = (struct body){ 0 };
	if (backoff <= 0)
		return stream_dispatch(c, NULL) < 0 ? -1 : 1;
	st->waiting = W_BACKOFF;
	st->wake_at = ev_now(P.loop) + backoff;
	return 1;
}

/* the upstream failed before any response byte */
static int upstream_failed(struct client *c)
{
	struct stream *st = &c->st;
	struct upstream *u = st->up;
	char what[256];
	int r;

	int connecting = (u->flags & U_CONNECTING) != 0;
	double backoff;

	try_end(c, 0, 1);
	if (retry_check(c, connecting ? CONF_RETRY_CONNECT_FAILURE : CONF_RETRY_RESET, 0, &backoff))
		return stream_retry(c, backoff);
	if (connecting) {
		snprintf(what, sizeof(what), "upstream connect error: %s %s (%s)",
		         st->svc ? st->svc->name : "local app", u->bep ? ep_addr(st->conf, u->bep)->text : "",
		         u->tls_err[0] ? u->tls_err : strerror(u->err ? u->err : ECONNREFUSED));
		r = stream_fail(c, 502, "UF", "%s", what);
	} else {
		snprintf(what, sizeof(what), "upstream connection closed before the response (%s: %s)",
		         st->svc ? st->svc->name : "local app", strerror(u->err ? u->err : ECONNRESET));
		r = stream_fail(c, 502, "UC", "%s", what);
	}
	return r < 0 ? -1 : 1;
}

/* response side: parse heads, move the body; 1 progress, 0 none, -1 freed */
static int stream_response(struct client *c)
{
	struct stream *st = &c->st;
	struct upstream *u = st->up;
	const struct conf_proxy *px = &st->conf->proxy;
	struct http1_limits lim = { px->max_header_size, px->max_header_size, px->max_headers };
	struct http1_msg m;
	const char *err = NULL;
	int r, progress = 0;

	while (!st->resp_head) {
		if (!u->in.len) {
			if (u->flags & (U_EOF | U_ERR))
				return upstream_failed(c);
			return progress;
		}
		memset(&m, 0, sizeof(m));
		r = http1_parse_response(buf_data(&u->in), u->in.len, &m, P.hdrs, &lim, st->head_req);
		if (r == -2) {
			if (u->flags & (U_EOF | U_ERR)) {
				try_end(c, 0, 1);
				return stream_fail(c, 502, "UPE", "upstream sent an incomplete response head (%s)", SVC(st));
			}
			if (u->in.len == u->in.cap && buf_reserve(&u->in, BUF_SIZE) < 0)
				return stream_fail(c, 502, "UPE", "out of memory for a large response head (%s)", SVC(st));
			return progress;
		}
		if (r < 0) {
			try_end(c, 0, 1);
			return stream_fail(c, 502, "UPE", "upstream sent an invalid response (%s): %s", SVC(st),
			                   m.err_reason ? m.err_reason : "bad response");
		}
		if (m.status >= 100 && m.status < 200 && m.status != 101) {
			/* interim (100 Continue, 103): pass to HTTP/1.1 clients */
			if (!st->http10 && build_response_head(c, &m, 0) < 0) {
				client_close(c);
				return -1;
			}
			buf_consume(&u->in, (size_t)r);
			progress = 1;
			continue;
		}
		if (m.status == 101 && !st->upgrade) {
			try_end(c, 0, 1);
			return stream_fail(c, 502, "UPE", "upstream switched protocols unasked (%s)", SVC(st));
		}
		try_end(c, m.status, m.status == 502 || m.status == 503 || m.status == 504);
		if (m.status >= 400 && st->route && st->route->retries) {
			double backoff;
			/* a retriable answer is dropped with its connection, never shown */
			if (retry_check(c, 0, m.status, &backoff))
				return stream_retry(c, backoff);
		}
		if (st->head_len) {     /* the answer is taken: the kept head is not needed again */
			buf_consume(&c->in, st->head_len);
			st->head_len = 0;
		}
		st->t_up = ev_now(P.loop);
		st->status = m.status;
		st->up_close = !!(m.flags & HTTP1_F_CONN_CLOSE);
		st->resp.in = m.body;
		st->resp.left = m.content_length;
		if (m.body == HTTP1_BODY_CHUNKED || m.body == HTTP1_BODY_EOF) {
			if (st->http10) {
				st->resp.out = OUT_RAW;   /* HTTP/1.0: raw bytes, end by closing */
				c->flags |= C_CLOSE_AFTER;
			} else {
				st->resp.out = OUT_CHUNKED;
			}
		}
		if (m.body == HTTP1_BODY_EOF)
			st->up_close = 1;
		if (build_response_head(c, &m, 1) < 0) {
			client_close(c);
			return -1;
		}
		buf_consume(&u->in, (size_t)r);
		st->resp_head = 1;
		progress = 1;
		if (m.status == 101) {
			c->state = CS_TUNNEL;
			st->req.done = st->resp.done = 1;
			return 1;
		}
	}
	if (!st->resp.done) {
		r = body_move(&st->resp, &u->in, &c->out, (u->flags & (U_EOF | U_ERR)) != 0, &err);
		if (r < 0)
			return stream_fail(c, 502, "UPE", "upstream sent a bad body (%s): %s", SVC(st), err);
		if (r > 0)
			progress = 1;
		if (!st->resp.done && !r && (u->flags & (U_EOF | U_ERR)) && !u->in.len) {
			/* the upstream died mid-body: the client must see a cut, not a short body */
			return stream_fail(c, 502, "UC", "upstream closed mid-response (%s)", SVC(st));
		}
	}
	return progress;
}

/* a local answer of the matched rule: fault abort, direct response or redirect; 0 or -1 */
static int stream_answer(struct client *c)
{
	struct stream *st = &c->st;
	const struct conf_route *rt = st->route;

	if (st->status) {
		P.faults++;
		return stream_fail(c, st->status, "FI", "fault filter abort");
	}
	if (rt->direct_status)
		return stream_local(c, rt->direct_status, "content-type: text/plain\r\n",
		                    rt->direct_body ? rt->direct_body : "");
	if (rt->redirect) {
		char loc[1024];
		if (!strncmp(rt->redirect, "http://", 7) || !strncmp(rt->redirect, "https://", 8))
			snprintf(loc, sizeof(loc), "location: %s\r\n", rt->redirect);
		else
			snprintf(loc, sizeof(loc), "location: http://%s%s\r\n", st->authority, rt->redirect);
		return stream_local(c, rt->redirect_code ? rt->redirect_code : 301, loc, NULL);
	}
	return 0;
}

/* after routing (and any fault delay): answer locally, or send upstream */
static int stream_answer_or_dispatch(struct client *c, const struct http1_msg *m)
{
	struct stream *st = &c->st;

	st->waiting = W_NONE;
	if (st->status || (st->route && (st->route->direct_status || st->route->redirect)))
		return stream_answer(c);
	return stream_dispatch(c, m);
}

/*
 * Parses the head in c->in, routes it (rules, faults, local responses) and
 * dispatches it; 1 started, 0 need more, -1 freed.
 */
/* the peer's identity without "spiffe://" (Istio's principal), or NULL */
static const char *client_principal(const struct client *c)
{
	const char *id = c->tls ? tls_peer_id(c->tls) : NULL;

	if (!id || !*id)
		return NULL;
	return strncmp(id, "spiffe://", 9) ? id : id + 9;
}

/* AuthorizationPolicy at the inbound door: 1 = denied */
static int inbound_denied(struct client *c, const struct conf *cf, const struct http1_msg *m,
                          const char *target, size_t target_len, const char *authority, size_t authority_len)
{
	struct authz_workload w = { cf->workload.namespace, cf->workload.service, &cf->workload.labels };
	const char *q = memchr(target, '?', target_len), *policy = "";
	struct authz_req r;
	int audit = 0;

	r.principal = client_principal(c);
	r.source_ip = c->ip;
	r.method = m->method;
	r.method_len = m->method_len;
	r.path = target;
	r.path_len = q ? (size_t)(q - target) : target_len;
	r.host = authority;
	r.host_len = authority_len;
	r.port = addr_port(&cf->workload.app);
	r.headers = m->headers;
	r.n_headers = m->num_headers;
	if (authz_check(cf, &w, &r, &policy, &audit) == AUTHZ_DENY) {
		P.authz_denied++;
		log_debug("RBAC: %s %s from %s (%s) denied by %s", c->st.method, c->st.path, c->ip,
		          r.principal ? r.principal : "plaintext", *policy ? policy : "default deny");
		return 1;
	}
	if (audit) {
		P.authz_audited++;
		log_info("audit: %s %s from %s (%s)", c->st.method, c->st.path, c->ip,
		         r.principal ? r.principal : "plaintext");
	}
	return 0;
}

static int stream_start(struct client *c)
{
	struct stream *st = &c->st;
	struct conf *cf = P.conf;
	const struct conf_proxy *px = &cf->proxy;
	struct http1_limits lim = { px->max_request_line, px->max_header_size, px->max_headers };
	struct http1_msg m;
	const char *target, *authority;
	size_t target_len, authority_len;
	const struct conf_route *rt = NULL;
	int r, subset = -1;

	if (P.hdrs_cap < px->max_headers) {
		free(P.hdrs);
		P.hdrs = calloc(px->max_headers, sizeof(*P.hdrs));
		P.hdrs_cap = P.hdrs ? px->max_headers : 0;
		if (!P.hdrs) {
			client_close(c);
			return -1;
		}
	}
	/* the parser starts over each time: while a head trickles in, parse again
	 * only when a line is complete (limits are still checked on time) */
	if (c->scanned && c->in.len > c->scanned && c->in.len < px->max_request_line &&
	    !memchr(buf_data(&c->in) + c->scanned, '\n', c->in.len - c->scanned))
		return 0;
	memset(&m, 0, sizeof(m));
	r = http1_parse_request(buf_data(&c->in), c->in.len, &m, P.hdrs, &lim);
	if (r == -2) {
		c->scanned = c->in.len;
		return 0;
	}
	c->scanned = 0;
	if (r < 0)
		return client_reject(c, m.err_status ? m.err_status : 400,
		                     m.err_reason ? m.err_reason : "bad request") < 0 ? -1 : 0;
	st->conf = conf_ref(cf);
	st->t_start = ev_now(P.loop);
	st->flags = "-";
	st->subset = -1;
	st->inbound = c->kind == L_INBOUND;
	st->http10 = m.minor_version == 0;
	st->head_req = http1_ieq(m.method, m.method_len, "head");
	st->upgrade = !!(m.flags & HTTP1_F_UPGRADE);
	st->req.in = m.body;
	st->req.left = m.content_length;
	st->req.out = m.body == HTTP1_BODY_CHUNKED ? OUT_CHUNKED : OUT_RAW;
	if ((m.flags & HTTP1_F_CONN_CLOSE) || P.draining)
		c->flags |= C_CLOSE_AFTER;
	copy_slice(st->method, sizeof(st->method), m.method, m.method_len);
	trace_begin(&st->trace, m.headers, m.num_headers, cf->tracing.sampling);
	c->state = CS_STREAM;
	/* the head stays in client->in until it is first sent upstream (or answered) */
	st->head_len = (size_t)r;
	st->req.done = m.body == HTTP1_BODY_NONE;
	request_target(&m, &target, &target_len, &authority, &authority_len);
	if (target == m.target && target[0] != '/' && !(target_len == 1 && target[0] == '*')) {
		if (http1_ieq(m.method, m.method_len, "connect"))
			return stream_fail(c, 405, "-", "CONNECT is not supported by the mesh proxy");
		return stream_fail(c, 400, "DPE", "unsupported request-target form");
	}
	copy_slice(st->path, sizeof(st->path), target, target_len);
	copy_slice(st->authority, sizeof(st->authority), authority, authority_len);

	if (c->kind == L_INBOUND) {
		if (cf->n_authzs && inbound_denied(c, cf, &m, target, target_len, authority, authority_len))
			return stream_local(c, 403, "content-type: text/plain\r\n", "RBAC: access denied") < 0 ? -1 : 1;
		st->set = balance_app_set();
		if (!st->set)
			return stream_fail(c, 503, "UH", "no local app configured for this workload");
	} else {
		if (c->kind == L_SERVICE) {
			st->svc = find_service_by_name(cf, c->service, c->namespace);
			if (!st->svc)
				return stream_fail(c, 404, "NR", "service '%s' is no longer configured", c->service);
		} else {
			int port_ok = 1;
			if (!authority_len)
				return stream_fail(c, 400, "DPE", "no Host: the outbound listener routes by Host");
			st->svc = conf_find_service(cf, authority, authority_len, &port_ok);
			if (st->svc && !port_ok)
				return stream_fail(c, 404, "NR", "no route: service %s listens on port %u",
				                   st->svc->name, st->svc->port);
		}
		/* VirtualService rules */
		if (cf->n_routes) {
			struct route_req rq;
			const char *q = memchr(target, '?', target_len);

			rq.method = m.method;
			rq.method_len = m.method_len;
			rq.path = target;
			rq.path_len = q ? (size_t)(q - target) : target_len;
			rq.query = q ? q + 1 : NULL;
			rq.query_len = q ? (size_t)(target + target_len - q - 1) : 0;
			rq.headers = m.headers;
			rq.n_headers = m.num_headers;
			rq.source = &cf->workload.labels;
			rt = route_match(cf, P.routes, authority, authority_len, st->svc, &rq, &st->route_block);
		}
		if (!st->svc && !rt)
			return stream_fail(c, 404, "NR", "no route: '%s' is not a mesh service", st->authority);
		st->route = rt;
		if (rt) {
			/* the fault filter runs first (Envoy): delay, then abort, each drawn on its own */
			if (rt->fault_abort && percent_hit(rt->fault_abort_percent))
				st->status = rt->fault_abort;
			if (rt->fault_delay && percent_hit(rt->fault_delay_percent)) {
				P.faults++;
				st->waiting = W_DELAY;
				st->wake_at = st->t_start + rt->fault_delay / 1000.0;
			}
			if (rt->direct_status || rt->redirect) {
				st->req.done = m.body == HTTP1_BODY_NONE;
				return st->waiting ? 1 : (stream_answer(c) < 0 ? -1 : 1);
			}
			{
				const struct conf_dest *d = route_pick(rt, rnd());
				if (d) {
					st->svc = d->svc;
					subset = d->subset;
				}
			}
			/* retries (and the stale-connection retry) need the bytes sent so far */
			st->replayable = 1;
		}
		if (!st->svc)
			return stream_fail(c, 404, "NR", "no route: '%s' is not a mesh service", st->authority);
		st->subset = subset;
		st->set = balance_set_of(cf, st->svc, subset);
		if (!st->set || !st->set->n_eps)
			return stream_fail(c, 503, "UH", "no healthy upstream for service %s%s%s", st->svc->name,
			                   subset >= 0 ? " subset " : "",
			                   subset >= 0 ? conf_destination_of(cf, st->svc)->subsets[subset].name : "");
	}
	if (m.body == HTTP1_BODY_NONE && !st->upgrade)
		st->replayable = 1;   /* a bodiless request can always be sent again */
	else if (st->upgrade)
		st->replayable = 0;
	if (st->waiting == W_DELAY)
		return 1;
	return stream_answer_or_dispatch(c, &m) < 0 ? -1 : 1;
}

/* the exchange is over: metrics, log, upstream back to the pool, next request */
static int stream_finish(struct client *c)
{
	struct stream *st = &c->st;
	int reusable;

	if (st->up) {
		reusable = !st->up_close && st->req.done && st->resp.done;
		if (st->up->tls)
			snprintf(st->up_principal, sizeof(st->up_principal), "%s", tls_peer_id(st->up->tls));
		st->up->client = NULL;
		upstream_release(st->up, reusable);
		st->up = NULL;
	}
	if (st->head_len) {
		buf_consume(&c->in, st->head_len);
		st->head_len = 0;
	}
	record(c);
	stream_reset(c);
	if (c->flags & C_CLOSE_AFTER) {
		c->flags |= C_EOF;     /* read no further requests */
		buf_free(&c->in);
	}
	return 0;
}

/* ------------------------------------------------------------------ mirrors */

/*
 * A mirror (Istio mirror / Envoy request_mirror_policies) is a fire-and-forget
 * copy of the request to another cluster: its own connection, Host with a
 * "-shadow" suffix, the body copied as it streams (up to [proxy] retry_buffer
 * waiting to be written, else the mirror is dropped), the response read and
 * discarded. Nothing that happens to it reaches the caller.
 */
static void shadow_done(struct upstream *u)
{
	if (u->mirror_of) {
		u->mirror_of->st.shadow = NULL;
		u->mirror_of = NULL;
	}
	u->flags &= ~U_SHADOW;
	u->client = NULL;
	upstream_close(u);
}

/* the stream ends: a mirror with its whole request keeps going alone */
static void shadow_detach(struct client *c)
{
	struct upstream *u = c->st.shadow;

	c->st.shadow = NULL;
	u->mirror_of = NULL;
	if (!c->st.req.done)
		shadow_done(u);    /* half a request is not a copy */
}

static void shadow_io(struct upstream *u, int revents)
{
	char sink[4096];
	ssize_t n;

	if (u->flags & U_CONNECTING) {
		if (!revents) {
			set_io(P.loop, &u->io, &u->io_events, u->fd, (u->flags & U_TLS_HS) ? u->tls_want : EV_WRITE);
			return;             /* still connecting: wait for the socket to say */
		}
		upstream_connected(u);
		if (u->flags & U_ERR) {
			shadow_done(u);
			return;
		}
		if (u->flags & U_CONNECTING) {
			set_io(P.loop, &u->io, &u->io_events, u->fd, (u->flags & U_TLS_HS) ? u->tls_want : EV_WRITE);
			return;
		}
	}
	if (u->out.len && flush_buf(u->fd, u->tls, &u->out) < 0) {
		shadow_done(u);
		return;
	}
	if (revents & EV_READ) {
		if (u->tls) {
			n = tls_read(u->tls, sink, sizeof(sink));
			if (n == TLS_WANT_READ || n == TLS_WANT_WRITE)
				n = -1, errno = EAGAIN;
			else if (n < 0)
				errno = ECONNRESET;
		} else
			n = read(u->fd, sink, sizeof(sink));
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			shadow_done(u);    /* the response was read (connection: close) or failed */
			return;
		}
	}
	set_io(P.loop, &u->io, &u->io_events, u->fd, EV_READ | (u->out.len ? EV_WRITE : 0));
	if (u->tls && tls_pending(u->tls))
		ev_feed_event(P.loop, &u->io, EV_READ);
}

static void shadow_start(struct client *c, const struct http1_msg *m, const char *target,
                         size_t target_len, const char *authority, size_t authority_len)
{
	struct stream *st = &c->st;
	const struct conf_route *rt = st->route;
	struct balance_set *set = balance_set_of(st->conf, rt->mirror.svc, rt->mirror.subset);
	struct balance_ep *e;
	struct upstream *u;
	const char *why;

	if (!set || !(e = balance_pick(set, 0, rnd(), ev_now(P.loop), &why)))
		return;
	u = upstream_connect(st->conf, e, set->policy ? set->policy->connect_timeout : 0);
	if (!u)
		return;
	u->flags |= U_SHADOW;
	u->mirror_of = c;
	if (build_request_head(c, &u->out, m, target, target_len, authority, authority_len, 1) < 0) {
		shadow_done(u);
		return;
	}
	st->shadow = u;
	P.mirrors++;
	/* a mirror lives at most as long as a stream may stay idle (this replaces
	 * the connect timeout: a mirror that cannot connect is dropped then) */
	ev_timer_stop(P.loop, &u->timer);
	ev_timer_set(&u->timer, (st->conf->proxy.stream_idle_timeout ? st->conf->proxy.stream_idle_timeout : 60000) / 1000.0, 0.);
	ev_timer_start(P.loop, &u->timer);
	shadow_io(u, 0);
}

static int tunnel_step(struct client *c)
{
	struct upstream *u = c->st.up;
	int progress = 0;
	size_t n;

	/* raw bytes both ways */
	if (c->in.len && buf_prepare(&u->out)) {
		n = c->in.len < buf_space(&u->out) ? c->in.len : buf_space(&u->out);
		memcpy(buf_tail(&u->out), buf_data(&c->in), n);
		u->out.len += (uint32_t)n;
		buf_consume(&c->in, n);
		c->st.req.bytes += n;
		progress = 1;
	}
	if (u->in.len && buf_prepare(&c->out)) {
		n = u->in.len < buf_space(&c->out) ? u->in.len : buf_space(&c->out);
		memcpy(buf_tail(&c->out), buf_data(&u->in), n);
		c->out.len += (uint32_t)n;
		buf_consume(&u->in, n);
		c->st.resp.bytes += n;
		progress = 1;
	}
	return progress;
}

/* request bytes just sent upstream: kept for a retry and copied to a mirror, within bounds */
static void copy_sent(struct client *c, const char *p, size_t n)
{
	struct stream *st = &c->st;
	size_t cap = st->conf->proxy.retry_buffer;

	if (st->replayable) {
		/* the body (decoded bytes so far) must fit retry_buffer; the head always does */
		if (st->req.bytes > cap || buf_append(&st->replay, p, n) < 0) {
			st->replayable = 0;    /* too big to replay: no more retries */
			buf_free(&st->replay);
		}
	}
	if (st->shadow) {
		struct upstream *u = st->shadow;
		if (u->out.len + n > cap + BUF_SIZE || buf_append(&u->out, p, n) < 0)
			shadow_done(u);        /* the mirror cannot keep up: drop it, not the caller */
		else
			shadow_io(u, 0);
	}
}

/*
 * Makes all the progress possible for client c and its upstream, then sets
 * the watchers. Returns -1 when c was freed.
 */
static int client_pump(struct client *c)
{
	int rounds, progress, r;

	for (rounds = 0; rounds < 64; rounds++) {
		progress = 0;
		if (c->state == CS_HEAD) {
			if (c->flags & C_LINGER)
				break;
			if (c->in.len && !(c->flags & C_CLOSE_AFTER) && !c->out.len) {
				r = stream_start(c);
				if (r < 0)
					return -1;
				/* a head larger than one block: give it room, up to the limit */
				if (r == 0 && c->state == CS_HEAD && c->in.len == c->in.cap &&
				    buf_reserve(&c->in, BUF_SIZE) < 0) {
					client_close(c);
					return -1;
				}
				if (r == 0 && c->state == CS_HEAD && !c->head_start)
					c->head_start = ev_now(P.loop);
				progress = r;
			}
		}
		if (c->state == CS_STREAM && c->st.up) {
			struct upstream *u = c->st.up;
			const char *err = NULL;

			if (!(u->flags & U_CONNECTING)) {
				if (!c->st.req.done) {
					size_t mark = u->out.len;

					r = body_move(&c->st.req, &c->in, &u->out, 0, &err);
					if (r < 0) {
						c->flags |= C_CLOSE_AFTER;
						if (stream_fail(c, 400, "DPE", "bad request body: %s", err) < 0)
							return -1;
						continue;
					}
					if (u->out.len > mark)
						copy_sent(c, buf_data(&u->out) + mark, u->out.len - mark);
					progress |= r;
				}
				if (u->out.len && !(u->flags & (U_EOF | U_ERR))) {
					r = flush_buf(u->fd, u->tls, &u->out);
					if (r < 0) {
						u->flags |= U_ERR;
						u->err = errno;
					}
					progress |= r > 0;
				}
			}
			if (c->state == CS_STREAM && c->st.up) {
				if ((c->st.up->flags & U_ERR) && !c->st.resp_head) {
					r = upstream_failed(c);
					if (r < 0)
						return -1;
					progress = 1;
				} else {
					r = stream_response(c);
					if (r < 0)
						return -1;
					progress |= r;
				}
			}
		}
		if (c->state == CS_TUNNEL) {
			progress |= tunnel_step(c);
			if (c->st.up->out.len) {
				r = flush_buf(c->st.up->fd, c->st.up->tls, &c->st.up->out);
				if (r < 0)
					c->st.up->flags |= U_ERR;
				progress |= r > 0;
			}
		}
		/* send what we have to the client */
		if (c->out.len) {
			r = flush_buf(c->fd, c->tls, &c->out);
			if (r < 0) {
				if (c->state != CS_HEAD && c->st.conf) {
					c->st.flags = "DC";
					record(c);
				}
				client_close(c);
				return -1;
			}
			progress |= r > 0;
		}
		if (c->state == CS_STREAM && c->st.resp.done && !c->st.req.done && !c->out.len) {
			/* the upstream answered before the request body ended (an early 413,
			 * a redirect): the rest of the body cannot be skipped safely, so the
			 * exchange ends here and the connection closes (lingering) */
			c->flags |= C_CLOSE_AFTER;
			c->st.up_close = 1;
			c->st.req.done = 1;
			buf_free(&c->in);
		}
		if (c->state == CS_STREAM && c->st.resp.done && c->st.req.done && !c->out.len) {
			stream_finish(c);
			progress = 1;
		}
		if (c->state == CS_TUNNEL) {
			struct upstream *u = c->st.up;
			int up_gone = (u->flags & (U_EOF | U_ERR)) && !u->in.len;
			int cl_gone = (c->flags & C_EOF) && !c->in.len;
			if ((up_gone && !c->out.len) || (cl_gone && !u->out.len) || (u->flags & U_ERR)) {
				c->st.flags = "-";
				record(c);
				client_close(c);
				return -1;
			}
		}
		if (c->state == CS_HEAD && (c->flags & C_CLOSE_AFTER) && !c->out.len) {
			if (c->flags & C_LINGER)
				break;
			if (c->flags & C_EOF && !P.draining) {
				/* an error reply or Connection: close: linger, then close */
				client_linger(c);
				break;
			}
			client_close(c);
			return -1;
		}
		if (!progress)
			break;
	}
	if (c->state == CS_STREAM && c->st.up)
		upstream_update_io(c->st.up);
	if (c->state == CS_TUNNEL)
		upstream_update_io(c->st.up);
	client_update_io(c);
	return 0;
}

/*
 * An inbound connection before its first request: PERMISSIVE tells mTLS from
 * plaintext by the first byte (a TLS record starts with 0x16, an HTTP request
 * never does), STRICT refuses plaintext, then the handshake runs.
 * 1: go on with the connection, 0: waiting, -1: freed.
 */
static int client_tls_step(struct client *c)
{
	int r;

	if (c->tls_state == CT_SNIFF) {
		unsigned char first;
		ssize_t n = recv(c->fd, &first, 1, MSG_PEEK);

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		if (n <= 0) {
			client_close(c);
			return -1;
		}
		if (first != 0x16 || !P.creds) {
			c->tls_state = CT_PLAIN;
			c->head_start = 0;
			if (c->mtls_mode != CONF_MTLS_STRICT) {
				c->tcp = tcp_open_inbound(c);
				return 1;
			}
			P.plaintext_refused++;
			log_debug("plaintext connection from %s refused: STRICT mTLS", c->ip);
			if (client_reject(c, 403, P.creds ? "mTLS required: this workload's PeerAuthentication is STRICT, plaintext is refused" :
			                  "mTLS required (STRICT) but this proxy has no identity: set [control] ca") < 0)
				return -1;
			client_pump(c);
			return -1;
		}
		c->tls = tls_server(P.creds, c->fd);
		if (!c->tls) {
			client_close(c);
			return -1;
		}
		c->tls_state = CT_HANDSHAKE;
	}
	r = tls_handshake(c->tls);
	if (r == TLS_WANT_READ || r == TLS_WANT_WRITE) {
		set_io(P.loop, &c->io, &c->io_events, c->fd, r == TLS_WANT_READ ? EV_READ : EV_WRITE);
		return 0;
	}
	if (r != 0) {
		P.tls_in_fail++;
		log_info("inbound mTLS handshake from %s failed: %s", c->ip, tls_error(c->tls));
		client_close(c);
		return -1;
	}
	P.tls_in_ok++;
	if (tls_resumed(c->tls))
		P.tls_resumed++;
	c->tls_state = CT_MTLS;
	c->head_start = 0;
	c->tcp = tcp_open_inbound(c);
	return 1;
}

static void client_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct client *c = (struct client *)w;
	ssize_t n;

	c->last_active = ev_now(loop);
	if (c->tls_state == CT_SNIFF || c->tls_state == CT_HANDSHAKE) {
		if (client_tls_step(c) <= 0)
			return;
		revents |= EV_READ;     /* the first request may be in already */
	}
	if (revents & EV_READ) {
		if (c->flags & C_LINGER) {
			char sink[4096];
			n = read(c->fd, sink, sizeof(sink));
			if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
				client_close(c);
			return;
		}
		n = read_into(c->fd, c->tls, &c->in, 0);
		if (n == 0 || n == -1) {
			c->flags |= C_EOF;
			if (c->state == CS_HEAD && !c->out.len) {
				client_close(c);
				return;
			}
			if (c->state == CS_STREAM && (!c->st.req.done || !c->st.resp.done)) {
				/* the client went away mid-exchange: free everything */
				c->st.flags = "DC";
				c->st.status = c->st.status ? c->st.status : 0;
				record(c);
				client_close(c);
				return;
			}
		}
	}
	client_pump(c);
}

static void client_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct client *c = container_of(w, struct client, timer);
	double now = ev_now(loop), d = client_deadline(c);

	if (d >= NEVER)
		return;
	if (d > now + 0.0005) {
		ev_timer_set(&c->timer, d - now, 0.);
		ev_timer_start(loop, &c->timer);
		c->timer_at = d;
		return;
	}
	if (c->flags & C_LINGER || c->state == CS_TUNNEL) {
		client_close(c);
		return;
	}
	if (c->state == CS_HEAD) {
		if (c->in.len && !c->out.len) {
			/* slowloris: the head did not arrive in time */
			if (client_reject(c, 408, "request header timeout") == 0)
				client_pump(c);
			return;
		}
		client_close(c);
		return;
	}
	{
		struct stream *st = &c->st;
		uint32_t to = st->route && st->route->timeout ? st->route->timeout : st->conf->proxy.request_timeout;

		/* the whole request took too long (the route's timeout, or [proxy] request_timeout) */
		if (to && now >= st->t_start + to / 1000.0) {
			if (stream_fail(c, 504, "UT", "upstream request timeout (%s)",
			                st->svc ? st->svc->name : "local app") == 0)
				client_pump(c);
			return;
		}
		/* the end of a fault delay, a retry backoff, or a turn in the connection queue */
		if (st->waiting != W_NONE && now >= st->wake_at) {
			if ((st->waiting == W_DELAY ? stream_answer_or_dispatch(c, NULL) : stream_dispatch(c, NULL)) >= 0)
				client_pump(c);
			return;
		}
		/* one try took longer than per_try_timeout: retry, or 504 */
		if (st->up && !st->resp_head && st->route && st->route->per_try_timeout &&
		    now >= st->try_start + st->route->per_try_timeout / 1000.0) {
			double backoff;
			try_end(c, 0, 1);
			if (retry_check(c, 0, 0, &backoff)) {   /* no response: a 5xx / gateway error */
				if (stream_retry(c, backoff) >= 0)
					client_pump(c);
				return;
			}
			if (stream_fail(c, 504, "UT", "upstream per-try timeout (%s)",
			                st->svc ? st->svc->name : "local app") == 0)
				client_pump(c);
			return;
		}
		if (st->waiting != W_NONE && c->last_active + (st->conf->proxy.stream_idle_timeout ?
		    st->conf->proxy.stream_idle_timeout / 1000.0 : NEVER) > now) {
			client_arm(c);   /* still waiting, not idle yet */
			return;
		}
	}
	if (stream_fail(c, 504, "SI", "stream idle timeout (%s)",
	                c->st.svc ? c->st.svc->name : "local app") == 0)
		client_pump(c);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct listener *l = (struct listener *)w;
	struct client *c;
	char ip[46];
	int fd, i;

	for (i = 0; i < 64; i++) {
		fd = net_accept(l->io.fd, ip);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				log_warn("accept: %s", strerror(errno));
			return;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			return;
		}
		c->fd = fd;
		c->kind = l->kind;
		if (l->kind == L_INBOUND) {
			c->mtls_mode = P.inbound_mode;
			if (c->mtls_mode != CONF_MTLS_DISABLE && (P.creds || c->mtls_mode == CONF_MTLS_STRICT)) {
				c->tls_state = CT_SNIFF;
				c->head_start = ev_now(loop);
			} else {
				c->tcp = tcp_open_inbound(c);   /* plaintext from the start */
			}
		}
		memcpy(c->service, l->service, sizeof(c->service));
		memcpy(c->namespace, l->namespace, sizeof(c->namespace));
		memcpy(c->ip, ip, sizeof(c->ip));
		c->last_active = ev_now(loop);
		ev_init(&c->io, client_io_cb);
		c->io.fd = -1;
		ev_init(&c->timer, client_timer_cb);
		c->next = P.clients;
		if (P.clients)
			P.clients->prev = c;
		P.clients = c;
		P.n_clients++;
		P.cx_total++;
		client_update_io(c);
	}
}

/* ------------------------------------------------------------------ listeners, config */

static struct listener *listener_find(const char *addr)
{
	struct listener *l;

	for (l = P.listeners; l; l = l->next)
		if (!strcmp(l->addr, addr))
			return l;
	return NULL;
}

/* opens (or keeps) a listener; -1 with a message in err */
static int listener_want(const struct conf_addr *a, enum lkind kind, const struct conf_service *svc,
                         struct listener **fresh, char *err, size_t errlen)
{
	struct listener *l = listener_find(a->text);
	int fd;

	if (l && !l->keep) {
		l->keep = 1;
		l->kind = kind;
		snprintf(l->service, sizeof(l->service), "%s", svc ? svc->name : "");
		snprintf(l->namespace, sizeof(l->namespace), "%s", svc ? svc->namespace : "");
		return 0;
	}
	fd = net_listen((const struct sockaddr *)&a->ss, a->len);
	if (fd < 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", a->text, strerror(errno));
		return -1;
	}
	l = calloc(1, sizeof(*l));
	if (!l) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	l->kind = kind;
	l->keep = 1;
	snprintf(l->service, sizeof(l->service), "%s", svc ? svc->name : "");
	snprintf(l->namespace, sizeof(l->namespace), "%s", svc ? svc->namespace : "");
	snprintf(l->addr, sizeof(l->addr), "%s", a->text);
	ev_io_init(&l->io, accept_cb, fd, EV_READ);
	l->next = *fresh;
	*fresh = l;
	return 0;
}

static void listener_free(struct listener *l)
{
	ev_io_stop(P.loop, &l->io);
	close(l->io.fd);
	free(l);
}

/* brings the listeners in line with cf; on failure nothing changes */
static int listeners_apply(const struct conf *cf, char *err, size_t errlen)
{
	struct listener *fresh = NULL, *l, **pp;
	size_t i;

	for (l = P.listeners; l; l = l->next)
		l->keep = 0;
	if (cf->listen.inbound.set && listener_want(&cf->listen.inbound, L_INBOUND, NULL, &fresh, err, errlen) < 0)
		goto fail;
	if (cf->listen.outbound.set &&
	    listener_want(&cf->listen.outbound, L_OUTBOUND, NULL, &fresh, err, errlen) < 0)
		goto fail;
	for (i = 0; i < cf->n_services; i++)
		if (cf->services[i].listen.set &&
		    listener_want(&cf->services[i].listen, L_SERVICE, &cf->services[i], &fresh, err,
		                  errlen) < 0)
			goto fail;
	/* commit: drop listeners no longer wanted, start the new ones */
	for (pp = &P.listeners; *pp;) {
		l = *pp;
		if (!l->keep) {
			*pp = l->next;
			listener_free(l);
		} else {
			pp = &l->next;
		}
	}
	while (fresh) {
		l = fresh;
		fresh = l->next;
		l->next = P.listeners;
		P.listeners = l;
		ev_io_start(P.loop, &l->io);
	}
	return 0;
fail:
	while (fresh) {
		l = fresh;
		fresh = l->next;
		listener_free(l);
	}
	return -1;
}

static int admin_handler(void *ctx, const char *method, size_t method_len, const char *path,
                         size_t path_len, struct strbuf *body, const char **ctype);

static int admin_apply(const struct conf *cf, char *err, size_t errlen)
{
	const struct conf_addr *a = &cf->listen.admin;

	if (a->set && P.admin && !strcmp(P.admin_addr, a->text))
		return 0;
	if (!a->set) {
		admin_stop(P.admin);
		P.admin = NULL;
		P.admin_addr[0] = 0;
		return 0;
	}
	{
		struct admin *n;
		admin_stop(P.admin);    /* the old address may be the one we need */
		P.admin = NULL;
		n = admin_start(P.loop, (const struct sockaddr *)&a->ss, a->len, admin_handler, NULL);
		if (!n) {
			snprintf(err, errlen, "cannot listen on %s (admin): %s", a->text, strerror(errno));
			P.admin_addr[0] = 0;
			return -1;
		}
		P.admin = n;
		snprintf(P.admin_addr, sizeof(P.admin_addr), "%s", a->text);
	}
	return 0;
}

static int access_log_apply(const struct conf *cf, char *err, size_t errlen)
{
	int fd;

	if (cf->log.access_log_off)
		fd = -1;
	else if (!cf->log.access_log || !strcmp(cf->log.access_log, "stderr"))
		fd = 2;
	else {
		fd = open(cf->log.access_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0) {
			snprintf(err, errlen, "cannot open access log %s: %s", cf->log.access_log,
			         strerror(errno));
			return -1;
		}
	}
	if (P.access_buf.len && P.access_fd >= 0)
		access_flush_now();
	if (P.access_fd > 2)
		close(P.access_fd);
	P.access_fd = fd;
	P.access_json = cf->log.access_log_json;
	return 0;
}

static int config_install(struct conf *cf)
{
	char err[512];
	struct route_table *rt;
	size_t i;

	rt = route_table_build(cf);
	if (!rt) {
		log_error("out of memory indexing the routes");
		return -1;
	}
	if (listeners_apply(cf, err, sizeof(err)) < 0 || admin_apply(cf, err, sizeof(err)) < 0 ||
	    access_log_apply(cf, err, sizeof(err)) < 0) {
		log_error("%s: %s", cf->path ? cf->path : P.conf_path, err);
		route_table_free(rt);
		return -1;
	}
	/* clusters and endpoints: state (pools, latency, ejections) carries over by name */
	balance_ep_free_hook = ep_free_hook;
	balance_set_free_hook = set_free_hook;
	if (balance_sync(cf) < 0) {
		log_error("out of memory building the clusters");
		route_table_free(rt);
		return -1;
	}
	route_table_free(P.routes);
	P.routes = rt;
	if (P.conf)
		conf_unref(P.conf);
	P.conf = cf;
	log_level = (int)cf->log.level;
	trace_configure(P.loop, cf);
	if (P.creds)
		P.sec_gen++;
	workload_name(P.workload, sizeof(P.workload), cf->workload.service, cf->workload.version);
	for (i = 0; i < cf->n_warnings; i++)
		log_warn("%s", cf->warnings[i]);
	{
		struct authz_workload w = { cf->workload.namespace, cf->workload.service, &cf->workload.labels };
		const char *pol = "";

		P.inbound_mode = authz_peer_mode(cf, &w, addr_port(&cf->workload.app), &pol);
		if (P.inbound_mode == CONF_MTLS_STRICT && !P.creds && cf->listen.inbound.set)
			log_warn("PeerAuthentication %s makes this workload STRICT, but the proxy has no identity "
			         "([control] ca is not set): every inbound connection will be refused", pol);
	}
	return 0;
}

static struct conf *load_current(char *err, size_t errlen)
{
	char name[64];

	if (!P.snap_text)
		return conf_load(P.conf_path, err, errlen);
	snprintf(name, sizeof(name), "snapshot %s", P.snap_version);
	return conf_load_with_mesh(P.conf_path, name, P.snap_text, err, errlen);
}

static void reload(void)
{
	char err[4096];
	struct conf *cf = load_current(err, sizeof(err));

	if (!cf) {
		log_error("reload rejected, keeping the running configuration:\n%s", err);
		return;
	}
	if (config_install(cf) < 0) {
		conf_unref(cf);
		/* the running config's listeners are intact; re-assert them */
		log_error("reload rejected, keeping the running configuration");
		{
			char e2[256];
			listeners_apply(P.conf, e2, sizeof(e2));
			admin_apply(P.conf, e2, sizeof(e2));
		}
		return;
	}
	log_info("configuration reloaded from %s (%zu services)", P.conf_path, cf->n_services);
}

/* watch: a snapshot the thread loaded together with our file */
static void snapshot_applied(struct conf *cf, const char *version, char *text, void *arg)
{
	(void)arg;
	if (P.draining || config_install(cf) < 0) {
		char e2[256];

		conf_unref(cf);
		free(text);
		if (!P.draining) {
			log_error("snapshot %s not applied, keeping the running configuration", version);
			listeners_apply(P.conf, e2, sizeof(e2));
			admin_apply(P.conf, e2, sizeof(e2));
		}
		return;
	}
	free(P.snap_text);
	P.snap_text = text;
	snprintf(P.snap_version, sizeof(P.snap_version), "%s", version);
	log_info("snapshot %s from the controller applied (%zu services)", version, cf->n_services);
}

/*
 * [control] controller: the mesh part comes from the controller. Start from
 * snapshot_file when it holds one (static stability), else wait for the
 * first snapshot: the proxy serves only with its mesh part, as with its
 * identity (policies must be in force before the first request).
 */
static struct conf *controller_start(struct conf *cf)
{
	char err[4096], ver[17];
	struct conf *got = NULL;
	char *text = NULL;

	if (cf->control.snapshot_file && (text = watch_read_snapshot(cf->control.snapshot_file, ver))) {
		char name[64];

		snprintf(name, sizeof(name), "snapshot %s", ver);
		got = conf_load_with_mesh(P.conf_path, name, text, err, sizeof(err));
		if (got) {
			log_info("starting from the last snapshot in %s (version %s); the controller may update it",
			         cf->control.snapshot_file, ver);
			P.snap_text = text;
			snprintf(P.snap_version, sizeof(P.snap_version), "%s", ver);
		} else {
			log_warn("%s holds a snapshot this proxy refuses, waiting for the controller:\n%s",
			         cf->control.snapshot_file, err);
			free(text);
		}
	}
	if (watch_start(P.loop, P.conf_path, cf, P.creds, P.snap_text ? P.snap_version : NULL, snapshot_applied,
	                NULL) < 0) {
		log_error("cannot start watching the controller");
		conf_unref(got);
		return NULL;
	}
	if (got)
		return got;
	got = watch_first(30, &text, ver, err, sizeof(err));
	if (!got) {
		log_error("no snapshot from the controller at %s within 30 s: %s", cf->control.controller.text, err);
		return NULL;
	}
	P.snap_text = text;
	snprintf(P.snap_version, sizeof(P.snap_version), "%s", ver);
	log_info("snapshot %s from the controller (%zu services)", ver, got->n_services);
	return got;
}

/* ------------------------------------------------------------------ admin endpoints */

/* per-cluster gauges and counters (the balancer's state) */
static void cluster_metrics(struct strbuf *body)
{
	static const char *names[] = { "mesh_cluster_rq_active", "mesh_cluster_cx_active",
		"mesh_cluster_rq_pending", "mesh_cluster_overflow_total", "mesh_cluster_ejections_total",
		"mesh_cluster_endpoints_ejected" };
	static const char *types[] = { "gauge", "gauge", "gauge", "counter", "counter", "gauge" };
	struct balance_set **sets;
	size_t n = balance_sets(&sets), i, k;
	double now = ev_now(P.loop);

	for (k = 0; k < 6; k++) {
		strbuf_printf(body, "# TYPE %s %s\n", names[k], types[k]);
		for (i = 0; i < n; i++) {
			const struct balance_set *s = sets[i];
			unsigned long long v = 0;
			size_t e;

			switch (k) {
			case 0: v = s->active; break;
			case 1: v = s->connections; break;
			case 2: v = s->pending; break;
			case 3: v = s->overflows; break;
			case 4: v = s->ejections_total; break;
			case 5:
				for (e = 0; e < s->n_eps; e++)
					v += s->eps[e]->ejected_until > now;
				break;
			}
			strbuf_printf(body, "%s{service=\"%s\",namespace=\"%s\",subset=\"%s\"} %llu\n", names[k],
			              s->service, s->namespace, s->subset, v);
		}
	}
}

static int admin_handler(void *ctx, const char *method, size_t method_len, const char *path,
                         size_t path_len, struct strbuf *body, const char **ctype)
{
	size_t plen = path_len;
	const char *q = memchr(path, '?', path_len);

	if (q)
		plen = (size_t)(q - path);
	if (plen == 6 && !memcmp(path, "/ready", 6)) {
		if (P.draining) {
			strbuf_puts(body, "draining\n");
			return 503;
		}
		strbuf_puts(body, "ready\n");
		return 200;
	}
	if (plen == 7 && !memcmp(path, "/config", 7)) {
		char *s = conf_render(P.conf);
		if (!s)
			return 500;
		if (P.snap_text)
			strbuf_printf(body, "; mesh part: snapshot %s from the controller at %s\n", P.snap_version,
			              P.conf->control.controller.text);
		strbuf_puts(body, s);
		free(s);
		return 200;
	}
	if (plen == 8 && !memcmp(path, "/metrics", 8)) {
		*ctype = "text/plain; version=0.0.4";
		metrics_render(body);
		strbuf_printf(body,
		              "# TYPE mesh_downstream_cx_total counter\nmesh_downstream_cx_total %llu\n"
		              "# TYPE mesh_downstream_cx_active gauge\nmesh_downstream_cx_active %zu\n"
		              "# TYPE mesh_upstream_cx_total counter\nmesh_upstream_cx_total %llu\n"
		              "# TYPE mesh_upstream_cx_active gauge\nmesh_upstream_cx_active %llu\n"
		              "# TYPE mesh_upstream_cx_reused_total counter\nmesh_upstream_cx_reused_total %llu\n"
		              "# TYPE mesh_upstream_rq_retry_total counter\nmesh_upstream_rq_retry_total %llu\n"
		              "# TYPE mesh_downstream_rq_rejected_total counter\nmesh_downstream_rq_rejected_total %llu\n"
		              "# TYPE mesh_buffers_in_use gauge\nmesh_buffers_in_use %zu\n",
		              (unsigned long long)P.cx_total, P.n_clients, (unsigned long long)P.up_cx_total,
		              (unsigned long long)P.up_cx_active, (unsigned long long)P.up_reused,
		              (unsigned long long)P.retries, (unsigned long long)P.rejected,
		              buf_blocks_in_use);
		strbuf_printf(body,
		              "# TYPE mesh_upstream_rq_retry_refused_total counter\nmesh_upstream_rq_retry_refused_total %llu\n"
		              "# TYPE mesh_upstream_rq_overflow_total counter\nmesh_upstream_rq_overflow_total %llu\n"
		              "# TYPE mesh_fault_injected_total counter\nmesh_fault_injected_total %llu\n"
		              "# TYPE mesh_mirror_total counter\nmesh_mirror_total %llu\n",
		              (unsigned long long)P.retries_refused, (unsigned long long)P.overflows,
		              (unsigned long long)P.faults, (unsigned long long)P.mirrors);
		strbuf_printf(body,
		              "# TYPE mesh_tls_handshakes_total counter\n"
		              "mesh_tls_handshakes_total{side=\"server\",result=\"ok\"} %llu\n"
		              "mesh_tls_handshakes_total{side=\"server\",result=\"fail\"} %llu\n"
		              "mesh_tls_handshakes_total{side=\"client\",result=\"ok\"} %llu\n"
		              "mesh_tls_handshakes_total{side=\"client\",result=\"fail\"} %llu\n"
		              "# TYPE mesh_tls_resumed_total counter\nmesh_tls_resumed_total %llu\n"
		              "# TYPE mesh_plaintext_refused_total counter\nmesh_plaintext_refused_total %llu\n"
		              "# TYPE mesh_authz_denied_total counter\nmesh_authz_denied_total %llu\n"
		              "# TYPE mesh_authz_audit_total counter\nmesh_authz_audit_total %llu\n",
		              (unsigned long long)P.tls_in_ok, (unsigned long long)P.tls_in_fail,
		              (unsigned long long)P.tls_out_ok, (unsigned long long)P.tls_out_fail,
		              (unsigned long long)P.tls_resumed, (unsigned long long)P.plaintext_refused,
		              (unsigned long long)P.authz_denied, (unsigned long long)P.authz_audited);
		if (P.creds)
			strbuf_printf(body, "# TYPE mesh_cert_expiry_seconds gauge\nmesh_cert_expiry_seconds %.0f\n",
			              tls_creds_not_after(P.creds) - ev_now(P.loop));
		trace_metrics(body);
		cluster_metrics(body);
		return 200;
	}
	if (plen == 6 && !memcmp(path, "/certs", 6) && !P.creds) {
		strbuf_puts(body, "no identity: [control] ca is not set, this proxy speaks plaintext only\n");
		return 404;
	}
	if (plen == 6 && !memcmp(path, "/certs", 6)) {
		char nb[32], na[32];

		strbuf_printf(body, "identity = %s\nnot_before = %s\nnot_after = %s\nexpires_in = %.0fs\n"
		              "inbound_mtls = %s\n", tls_creds_id(P.creds), iso_time(tls_creds_not_before(P.creds), nb),
		              iso_time(tls_creds_not_after(P.creds), na),
		              tls_creds_not_after(P.creds) - ev_now(P.loop),
		              P.inbound_mode == CONF_MTLS_STRICT ? "STRICT" :
		              P.inbound_mode == CONF_MTLS_DISABLE ? "DISABLE" : "PERMISSIVE");
		return 200;
	}
	if (plen == 4 && !memcmp(path, "/tap", 4))
		return tap_admin(P.conf->proxy.tap, path, path_len, body, ev_now(P.loop));
	if (plen == 1 && path[0] == '/') {
		strbuf_puts(body, "mesh proxy admin: /ready /config /metrics /certs /tap\n");
		return 200;
	}
	strbuf_puts(body, "not found; try /ready /config /metrics /certs\n");
	return 404;
}

/* ------------------------------------------------------------------ signals, main */

/* agent: a renewed identity; new connections use it, open ones keep theirs */
static void creds_renewed(struct tls_creds *c, void *arg)
{
	char until[32];

	(void)arg;
	log_info("identity %s renewed, valid until %s", tls_creds_id(c), iso_time(tls_creds_not_after(c), until));
	tls_creds_unref(P.creds);
	P.creds = c;
	watch_set_creds(c);
}

/* the workload's first identity, before serving: retried for a while, since
 * the CA may be starting at the same moment (mesh demo, compose) */
static int identity_start(const struct conf *cf)
{
	char err[512];
	int i;

	if (!cf->control.ca.set)
		return 0;
	if (tls_global_init() < 0) {
		log_error("no entropy source for keys");
		return -1;
	}
	for (i = 0; i < 30 && !P.creds; i++) {
		P.creds = agent_fetch(cf, 5000, err, sizeof(err));
		if (!P.creds) {
			if (!i || i % 10 == 9)
				log_warn("no identity yet: %s (retrying)", err);
			usleep(200000 + 100000 * (useconds_t)(i < 8 ? i : 8));
		}
	}
	if (!P.creds) {
		log_error("no workload identity from the CA at %s: %s", cf->control.ca.text, err);
		return -1;
	}
	snprintf(P.self_id, sizeof(P.self_id), "%s", tls_creds_id(P.creds));
	log_info("identity %s, valid until %s", P.self_id, iso_time(tls_creds_not_after(P.creds), err));
	return 0;
}

static void drain_done_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	log_info("drain deadline reached with %zu connections open; exiting", P.n_clients);
	ev_break(loop, EVBREAK_ALL);
}

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct client *c, *next;
	struct listener *l;

	if (w->signum == SIGHUP) {
		if (!P.draining)
			reload();
		return;
	}
	if (P.draining) {
		if (w->signum == SIGINT)
			ev_break(loop, EVBREAK_ALL);  /* a second Ctrl-C: now */
		return;
	}
	P.draining = 1;
	watch_deregister();    /* peers stop picking this endpoint while it drains */
	log_info("%s: draining %zu connections (deadline %.1fs)", w->signum == SIGTERM ? "SIGTERM" : "SIGINT",
	         P.n_clients, P.conf->proxy.drain_timeout / 1000.0);
	/* stop accepting: close the listening sockets so new connections are refused */
	while ((l = P.listeners)) {
		P.listeners = l->next;
		listener_free(l);
	}
	for (c = P.clients; c; c = next) {
		next = c->next;
		if (c->state == CS_HEAD && !c->in.len && !c->out.len)
			client_close(c);
		else
			c->flags |= C_CLOSE_AFTER;
	}
	if (!P.n_clients) {
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	ev_timer_init(&P.drain_timer, drain_done_cb, P.conf->proxy.drain_timeout / 1000.0, 0.);
	ev_timer_start(loop, &P.drain_timer);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: mesh proxy -c proxy.ini\n\n"
	           "  -c FILE   the workload's configuration (docs/config.md)\n"
	           "  -h        this help\n\n"
	           "Signals: SIGHUP reloads the configuration (an invalid file is rejected and the\n"
	           "running one kept); SIGTERM stops accepting, drains in-flight requests up to\n"
	           "[proxy] drain_timeout, then exits 0.\n");
}

int proxy_main(int argc, char **argv)
{
	char err[4096];
	struct conf *cf;
	int i, rc = 0;
	struct client *c;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-c") && i + 1 < argc) {
			P.conf_path = argv[++i];
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "mesh proxy: unknown argument '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (!P.conf_path) {
		fprintf(stderr, "mesh proxy: no configuration given\n");
		usage(stderr);
		return 2;
	}
	log_prefix = "proxy";
	cf = conf_load(P.conf_path, err, sizeof(err));
	if (!cf) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (getrandom(&P.rng, sizeof(P.rng), 0) != sizeof(P.rng) || !P.rng)
		P.rng = (uint64_t)getpid() * 0x9e3779b97f4a7c15ULL + 1;
	{
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		metrics_start_time = ts.tv_sec + ts.tv_nsec / 1e9;
	}
	signal(SIGPIPE, SIG_IGN);
	P.loop = ev_default_loop(EVBACKEND_EPOLL | EVFLAG_NOENV);
	if (!P.loop) {
		fprintf(stderr, "mesh proxy: cannot create the event loop\n");
		return 1;
	}
	P.access_fd = -1;
	ev_timer_init(&P.access_flush, access_flush_cb, 1.0, 0.);
	if (identity_start(cf) < 0) {
		conf_unref(cf);
		return 1;
	}
	if (cf->control.controller.set) {
		struct conf *got = controller_start(cf);

		conf_unref(cf);
		if (!got) {
			watch_stop();
			return 1;
		}
		cf = got;
	}
	if (config_install(cf) < 0) {
		conf_unref(cf);
		return 1;
	}
	if (P.creds && agent_start(P.loop, cf, P.creds, creds_renewed, NULL) < 0) {
		log_error("cannot start certificate renewal");
		conf_unref(P.conf);
		return 1;
	}
	ev_signal_init(&P.sighup, signal_cb, SIGHUP);
	ev_signal_start(P.loop, &P.sighup);
	ev_signal_init(&P.sigterm, signal_cb, SIGTERM);
	ev_signal_start(P.loop, &P.sigterm);
	ev_signal_init(&P.sigint, signal_cb, SIGINT);
	ev_signal_start(P.loop, &P.sigint);
	log_info("mesh %s proxy for %s: inbound %s, outbound %s, admin %s", MESH_VERSION,
	         P.workload, cf->listen.inbound.set ? cf->listen.inbound.text : "off",
	         cf->listen.outbound.set ? cf->listen.outbound.text : "off",
	         cf->listen.admin.set ? cf->listen.admin.text : "off");
	ev_run(P.loop, 0);

	/* teardown (also lets leak checkers see a clean exit) */
	while ((c = P.clients))
		client_close(c);
	while (P.listeners) {
		struct listener *l = P.listeners;
		P.listeners = l->next;
		listener_free(l);
	}
	watch_stop();
	free(P.snap_text);
	P.snap_text = NULL;
	if (P.creds) {
		agent_stop();
		tls_creds_unref(P.creds);
		P.creds = NULL;
	}
	balance_free_all();     /* closes the idle pools through ep_free_hook */
	route_table_free(P.routes);
	P.routes = NULL;
	admin_stop(P.admin);
	P.admin = NULL;
	if (P.access_fd >= 0)
		access_flush_now();
	if (P.access_fd > 2)
		close(P.access_fd);
	strbuf_free(&P.access_buf);
	trace_stop();
	free(P.hdrs);
	conf_unref(P.conf);
	metrics_reset();
	log_info("stopped");
	return rc;
}
