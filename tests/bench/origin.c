/*
 * origin: the benchmark's backend. One thread, one epoll loop, answers every
 * HTTP/1.1 request with the same small precomputed response.
 *
 * Why not an nginx instance: the origin shares CPU 0 with the load generator,
 * so it must cost as little CPU per request as possible to never be the
 * bottleneck. This server does one read() and one write() per batch of
 * requests and no per-request parsing beyond finding the end of the head and
 * a Content-Length (so request bodies are skipped correctly). It allocates
 * nothing per request; a connection's buffer is allocated once at accept.
 *
 *   origin PORT [BODY_BYTES [DELAY_US]]   listens on 127.0.0.1:PORT (default body 13 bytes)
 *
 * Pipelined requests are answered in order with one write. "Connection: close"
 * in a request closes after its response. Limits: heads over 16 KiB close the
 * connection; chunked request bodies are not supported (never sent by the bench).
 *
 * DELAY_US > 0 makes a slow endpoint for the load-balancing benchmark: every
 * response is written DELAY_US microseconds after its request was read, without
 * blocking the loop (other connections are read and answered meanwhile). The delay
 * is the same for every request, so the responses due form a FIFO queue, and one
 * timerfd armed for the queue's head is the only timer. Requests served are counted,
 * and SIGUSR1 makes the process print "served=N" on stdout. Without DELAY_US none
 * of this runs: the fast path is the same as before (one branch on a global).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define ORIGIN_BUF (16 * 1024)

struct origin_conn {
	int fd;
	size_t len;            /* bytes buffered in buf */
	size_t skip;           /* request body bytes still to discard */
	size_t pending;        /* delayed mode: responses queued and not yet written */
	int closed;            /* delayed mode: closed with responses queued; freed when they are */
	int linger;            /* delayed mode: "Connection: close" seen; close when pending is 0 */
	int ep;                /* the epoll instance */
	char buf[ORIGIN_BUF];
};

static char *response;     /* one full response, head and body */
static size_t response_len;
static char *batch;        /* response repeated, for pipelined batches */
static size_t batch_max;   /* how many responses batch holds */

/* delayed mode (DELAY_US > 0) */
struct origin_due {
	struct origin_conn *c;
	size_t n;              /* responses */
	int64_t at;            /* CLOCK_MONOTONIC ns when they are due */
};
static int64_t delay_ns;   /* 0: answer at once (the fast path) */
static int timer_fd = -1;
static char timer_tag;     /* epoll data.ptr of the timer: neither NULL (listener) nor a conn */
static struct origin_due *dueq;
static size_t due_head, due_len, due_cap;   /* ring buffer */
static unsigned long long served;
static volatile sig_atomic_t want_report;

static void origin_close(int ep, struct origin_conn *c)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	if (c->pending) {      /* the queue still points at it */
		c->fd = -1;
		c->closed = 1;
		return;
	}
	free(c);
}

/* value of Content-Length in head [p, end), 0 when absent */
static size_t origin_content_length(const char *p, const char *end, int *close_after)
{
	size_t cl = 0;
	const char *line = memchr(p, '\n', (size_t)(end - p));

	while (line && line + 1 < end) {
		line++;
		if ((size_t)(end - line) > 15 && !strncasecmp(line, "content-length:", 15))
			cl = strtoul(line + 15, NULL, 10);
		else if ((size_t)(end - line) > 11 && !strncasecmp(line, "connection:", 11)) {
			const char *v = line + 11;
			while (*v == ' ')
				v++;
			if (!strncasecmp(v, "close", 5))
				*close_after = 1;
		}
		line = memchr(line, '\n', (size_t)(end - line));
	}
	return cl;
}

/* writes n responses; blocking fallback is fine: responses are tiny */
static int origin_reply(int fd, size_t n)
{
	while (n > 0) {
		size_t k = n < batch_max ? n : batch_max, off = 0, want = k * response_len;
		while (off < want) {
			ssize_t w = write(fd, batch + off, want - off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0 && errno == EAGAIN) {
				/* the peer is slow to read: wait briefly rather than buffer */
				usleep(100);
				continue;
			}
			if (w <= 0)
				return -1;
			off += (size_t)w;
		}
		n -= k;
	}
	return 0;
}

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void timer_arm(int64_t at)
{
	struct itimerspec its;

	memset(&its, 0, sizeof(its));
	its.it_value.tv_sec = at / 1000000000;
	its.it_value.tv_nsec = at % 1000000000;
	timerfd_settime(timer_fd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* queues n responses for c, due delay_ns from now */
static int origin_defer(struct origin_conn *c, size_t n)
{
	struct origin_due *d;

	if (due_len == due_cap) {
		size_t cap = due_cap ? due_cap * 2 : 1024, i;
		struct origin_due *q = malloc(cap * sizeof(*q));
		if (!q)
			return -1;
		for (i = 0; i < due_len; i++)
			q[i] = dueq[(due_head + i) % due_cap];
		free(dueq);
		dueq = q;
		due_cap = cap;
		due_head = 0;
	}
	d = &dueq[(due_head + due_len) % due_cap];
	d->c = c;
	d->n = n;
	d->at = mono_ns() + delay_ns;
	if (due_len++ == 0)
		timer_arm(d->at);
	c->pending += n;
	served += n;
	return 0;
}

/* the timer fired: writes every response that is due, re-arms for the next */
static void origin_due_run(int ep)
{
	uint64_t exp;
	int64_t now = mono_ns();

	if (read(timer_fd, &exp, sizeof(exp)) < 0 && errno != EAGAIN)
		return;
	while (due_len) {
		struct origin_due *d = &dueq[due_head];
		struct origin_conn *c = d->c;

		if (d->at > now) {
			timer_arm(d->at);
			return;
		}
		due_head = (due_head + 1) % due_cap;
		due_len--;
		c->pending -= d->n;
		if (c->closed) {
			if (!c->pending)
				free(c);
		} else if (origin_reply(c->fd, d->n) < 0 || (c->linger && !c->pending)) {
			origin_close(ep, c);
		}
	}
}

static void on_usr1(int sig)
{
	(void)sig;
	want_report = 1;
}

/* returns -1 to close the connection */
static int origin_read(struct origin_conn *c)
{
	for (;;) {
		ssize_t r = read(c->fd, c->buf + c->len, ORIGIN_BUF - c->len);
		size_t n = 0, used = 0;
		int close_after = 0;

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			return 0;
		if (r <= 0)
			return -1;
		c->len += (size_t)r;
		while (used < c->len && !close_after) {
			char *p = c->buf + used, *e;
			size_t avail = c->len - used;

			if (c->skip) {
				size_t k = c->skip < avail ? c->skip : avail;
				c->skip -= k;
				used += k;
				continue;
			}
			e = memmem(p, avail, "\r\n\r\n", 4);
			if (!e)
				break;
			e += 4;
			c->skip = origin_content_length(p, e, &close_after);
			used += (size_t)(e - p);
			n++;
		}
		if (used < c->len && used > 0)
			memmove(c->buf, c->buf + used, c->len - used);
		c->len -= used;
		if (n && (delay_ns ? origin_defer(c, n) : origin_reply(c->fd, n)) < 0)
			return -1;
		if (close_after && c->pending) {
			/* delayed mode: close once the queued responses are written */
			c->linger = 1;
			epoll_ctl(c->ep, EPOLL_CTL_DEL, c->fd, NULL);
			return 0;
		}
		if (close_after || c->len == ORIGIN_BUF)
			return -1;
		if ((size_t)r < ORIGIN_BUF / 2)
			return 0;   /* short read: the socket is drained (level-triggered anyway) */
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_in sin;
	struct epoll_event ev, evs[256];
	int lfd, ep, one = 1, port, body = 13, i;
	size_t k;

	if (argc < 2 || (port = atoi(argv[1])) <= 0 || port > 65535) {
		fprintf(stderr, "usage: origin PORT [BODY_BYTES [DELAY_US]]\n");
		return 2;
	}
	if (argc > 2)
		body = atoi(argv[2]);
	if (body < 1 || body > 1 << 20) {
		fprintf(stderr, "origin: body size must be 1..1048576\n");
		return 2;
	}
	if (argc > 3) {
		long us = atol(argv[3]);
		if (us < 0 || us > 60000000) {
			fprintf(stderr, "origin: delay must be 0..60000000 us\n");
			return 2;
		}
		delay_ns = (int64_t)us * 1000;
	}
	signal(SIGPIPE, SIG_IGN);

	response = malloc(128 + (size_t)body);
	if (!response)
		return 1;
	response_len = (size_t)sprintf(response,
		"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n", body);
	memset(response + response_len, 'x', (size_t)body);
	if (body >= 13)
		memcpy(response + response_len, "hello, world\n", 13);
	response_len += (size_t)body;
	batch_max = 64 * 1024 / response_len + 1;
	batch = malloc(batch_max * response_len);
	if (!batch)
		return 1;
	for (k = 0; k < batch_max; k++)
		memcpy(batch + k * response_len, response, response_len);

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(lfd, 4096) < 0) {
		perror("origin: bind/listen");
		return 1;
	}
	ep = epoll_create1(0);
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;   /* NULL = the listener */
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	if (delay_ns) {
		struct sigaction sa;

		timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
		if (timer_fd < 0) {
			perror("origin: timerfd_create");
			return 1;
		}
		ev.events = EPOLLIN;
		ev.data.ptr = &timer_tag;
		epoll_ctl(ep, EPOLL_CTL_ADD, timer_fd, &ev);
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_usr1;   /* no SA_RESTART: epoll_wait returns EINTR */
		sigaction(SIGUSR1, &sa, NULL);
	}

	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);
		if (want_report) {
			char line[64];
			int k = snprintf(line, sizeof(line), "served=%llu\n", served);
			want_report = 0;
			if (write(1, line, (size_t)k) < 0)
				perror("origin: write");
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			perror("origin: epoll_wait");
			return 1;
		}
		for (i = 0; i < n; i++) {
			struct origin_conn *c = evs[i].data.ptr;
			if (c == (void *)&timer_tag) {
				origin_due_run(ep);
				continue;
			}
			if (!c) {
				int fd;
				while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
					c = malloc(sizeof(*c));
					if (!c) {
						close(fd);
						continue;
					}
					c->fd = fd;
					c->len = c->skip = c->pending = 0;
					c->closed = c->linger = 0;
					c->ep = ep;
					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
					ev.events = EPOLLIN;
					ev.data.ptr = c;
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
				}
				continue;
			}
			if (origin_read(c) < 0)
				origin_close(ep, c);
		}
	}
}
