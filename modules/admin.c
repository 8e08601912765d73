/*
 * admin: listener plus short-lived connections. A connection reads one request
 * head (bounded by ADMIN_MAX_HEAD, and by ADMIN_TIMEOUT), calls the handler,
 * writes the whole response and closes. Bodies of requests are ignored (the
 * endpoints are read-only), so only GET and HEAD are accepted.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "admin.h"
#include "http1.h"
#include "net.h"

#define ADMIN_MAX_HEAD 8192
#define ADMIN_TIMEOUT 10.0
#define ADMIN_STREAM_MAX (256u << 10)  /* bytes a stream may have waiting for a slow client */

struct admin_conn {
	ev_io io;                  /* read, then write */
	ev_timer timer;            /* whole-exchange deadline */
	struct admin *owner;
	struct admin_conn *next;   /* in owner->conns */
	int fd;
	size_t in_len;
	char in[ADMIN_MAX_HEAD];
	struct strbuf out;         /* head + body */
	size_t out_off;
	int streaming;             /* admin_stream_begin: stays open, out refills */
	void (*on_close)(void *arg);
	void *arg;
};

static struct admin_conn *admin_current;  /* the connection whose handler runs */

struct admin {
	ev_io io;                  /* the listener */
	struct ev_loop *loop;
	admin_handler_fn handler;
	void *ctx;
	struct admin_conn *conns;
};

static void conn_close(struct admin_conn *c)
{
	struct admin_conn **pp;

	if (c->on_close) {
		void (*f)(void *) = c->on_close;

		c->on_close = NULL;
		f(c->arg);
	}
	ev_io_stop(c->owner->loop, &c->io);
	ev_timer_stop(c->owner->loop, &c->timer);
	close(c->fd);
	for (pp = &c->owner->conns; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	strbuf_free(&c->out);
	free(c);
}

static const char *reason_of(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 503: return "Service Unavailable";
	default: return "Error";
	}
}

static void respond(struct admin_conn *c, int status, const char *ctype, struct strbuf *body,
                    int head_only)
{
	if (c->streaming && status == 200) {
		strbuf_printf(&c->out, "HTTP/1.1 200 OK\r\ncontent-type: %s\r\ncache-control: no-store\r\n"
		              "connection: close\r\n\r\n", ctype);
		ev_timer_stop(c->owner->loop, &c->timer);  /* the owner decides how long a stream lives */
	} else {
		c->streaming = 0;
		c->on_close = NULL;
		strbuf_printf(&c->out, "HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %zu\r\n"
		              "cache-control: no-store\r\nconnection: close\r\n\r\n",
		              status, reason_of(status), ctype, body->len);
	}
	if (!head_only && body->len)
		strbuf_append(&c->out, body->p, body->len);
	strbuf_free(body);
	ev_io_stop(c->owner->loop, &c->io);
	ev_io_set(&c->io, c->fd, EV_WRITE);
	ev_io_start(c->owner->loop, &c->io);
}

static void handle(struct admin_conn *c)
{
	struct http1_header hdrs[64];
	struct http1_limits lim = { ADMIN_MAX_HEAD, ADMIN_MAX_HEAD, 64 };
	struct http1_msg m;
	struct strbuf body = { 0 };
	const char *ctype = "text/plain; charset=utf-8";
	int r, status, head;

	memset(&m, 0, sizeof(m));
	r = http1_parse_request(c->in, c->in_len, &m, hdrs, &lim);
	if (r == -2) {
		if (c->in_len == sizeof(c->in))
			goto bad;
		return;
	}
	if (r < 0)
		goto bad;
	head = http1_ieq(m.method, m.method_len, "head");
	if (!head && !http1_ieq(m.method, m.method_len, "get")) {
		strbuf_puts(&body, "admin endpoints are read-only: use GET\n");
		respond(c, 405, ctype, &body, 0);
		return;
	}
	admin_current = head ? NULL : c;
	status = c->owner->handler(c->owner->ctx, m.method, m.method_len, m.target, m.target_len,
	                           &body, &ctype);
	admin_current = NULL;
	respond(c, status, ctype, &body, head);
	return;
bad:
	strbuf_puts(&body, "bad request\n");
	respond(c, 400, ctype, &body, 0);
}

static void conn_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct admin_conn *c = (struct admin_conn *)w;
	ssize_t n;

	if (c->streaming && (revents & EV_READ)) {  /* a stream's client sends nothing: this is its close */
		char junk[256];

		n = read(c->fd, junk, sizeof(junk));
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			conn_close(c);
			return;
		}
	}
	if (c->out.len > c->out_off) {
		n = write(c->fd, c->out.p + c->out_off, c->out.len - c->out_off);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			conn_close(c);
			return;
		}
		c->out_off += (size_t)n;
		if (c->out_off < c->out.len)
			return;
		if (!c->streaming) {
			conn_close(c);
			return;
		}
		c->out.len = c->out_off = 0;  /* all out: wait for more, or for the client to go */
		ev_io_stop(loop, &c->io);
		ev_io_set(&c->io, c->fd, EV_READ);
		ev_io_start(loop, &c->io);
		return;
	}
	if (c->streaming)
		return;
	n = read(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_close(c);
		return;
	}
	c->in_len += (size_t)n;
	handle(c);
}

static void timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	conn_close((struct admin_conn *)((char *)w - offsetof(struct admin_conn, timer)));
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct admin *a = (struct admin *)w;
	struct admin_conn *c;
	char ip[46];
	int fd, i;

	for (i = 0; i < 16; i++) {
		fd = net_accept(a->io.fd, ip);
		if (fd < 0)
			return;
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			return;
		}
		c->fd = fd;
		c->owner = a;
		c->next = a->conns;
		a->conns = c;
		ev_io_init(&c->io, conn_cb, fd, EV_READ);
		ev_io_start(loop, &c->io);
		ev_timer_init(&c->timer, timeout_cb, ADMIN_TIMEOUT, 0.);
		ev_timer_start(loop, &c->timer);
	}
}

struct admin *admin_start(struct ev_loop *loop, const struct sockaddr *sa, socklen_t len,
                          admin_handler_fn h, void *ctx)
{
	struct admin *a;
	int fd;

	fd = net_listen(sa, len);
	if (fd < 0)
		return NULL;
	a = calloc(1, sizeof(*a));
	if (!a) {
		close(fd);
		return NULL;
	}
	a->loop = loop;
	a->handler = h;
	a->ctx = ctx;
	ev_io_init(&a->io, accept_cb, fd, EV_READ);
	ev_io_start(loop, &a->io);
	return a;
}

void admin_stop(struct admin *a)
{
	if (!a)
		return;
	while (a->conns)
		conn_close(a->conns);
	ev_io_stop(a->loop, &a->io);
	close(a->io.fd);
	free(a);
}

/* ------------------------------------------------------------------ streams */

struct admin_stream *admin_stream_begin(void (*on_close)(void *arg), void *arg)
{
	struct admin_conn *c = admin_current;

	if (!c)
		return NULL;
	c->streaming = 1;
	c->on_close = on_close;
	c->arg = arg;
	return (struct admin_stream *)c;
}

int admin_stream_write(struct admin_stream *s, const char *data, size_t len)
{
	struct admin_conn *c = (struct admin_conn *)s;

	if (c->out.len - c->out_off + len > ADMIN_STREAM_MAX)
		return -1;
	if (c->out_off && c->out_off == c->out.len)
		c->out.len = c->out_off = 0;
	strbuf_append(&c->out, data, len);
	ev_io_stop(c->owner->loop, &c->io);
	ev_io_set(&c->io, c->fd, EV_READ | EV_WRITE);
	ev_io_start(c->owner->loop, &c->io);
	return 0;
}

void admin_stream_end(struct admin_stream *s)
{
	struct admin_conn *c = (struct admin_conn *)s;

	c->on_close = NULL;
	c->streaming = 0;  /* closes once what is queued is out */
	if (c->out.len == c->out_off)
		conn_close(c);
}
