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
 *   origin PORT [BODY_BYTES]      listens on 127.0.0.1:PORT (default body 13 bytes)
 *
 * Pipelined requests are answered in order with one write. "Connection: close"
 * in a request closes after its response. Limits: heads over 16 KiB close the
 * connection; chunked request bodies are not supported (never sent by the bench).
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
#include <unistd.h>

#define ORIGIN_BUF (16 * 1024)

struct origin_conn {
	int fd;
	size_t len;            /* bytes buffered in buf */
	size_t skip;           /* request body bytes still to discard */
	char buf[ORIGIN_BUF];
};

static char *response;     /* one full response, head and body */
static size_t response_len;
static char *batch;        /* response repeated, for pipelined batches */
static size_t batch_max;   /* how many responses batch holds */

static void origin_close(int ep, struct origin_conn *c)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
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
		if (n && origin_reply(c->fd, n) < 0)
			return -1;
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
		fprintf(stderr, "usage: origin PORT [BODY_BYTES]\n");
		return 2;
	}
	if (argc > 2)
		body = atoi(argv[2]);
	if (body < 1 || body > 1 << 20) {
		fprintf(stderr, "origin: body size must be 1..1048576\n");
		return 2;
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

	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			perror("origin: epoll_wait");
			return 1;
		}
		for (i = 0; i < n; i++) {
			struct origin_conn *c = evs[i].data.ptr;
			if (!c) {
				int fd;
				while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
					c = malloc(sizeof(*c));
					if (!c) {
						close(fd);
						continue;
					}
					c->fd = fd;
					c->len = c->skip = 0;
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
