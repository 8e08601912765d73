/*
 * tlsload: the load driver of the mTLS benchmark suite (tests/bench/mtls.sh).
 * One thread, one epoll loop, mesh's own TLS layer (modules/tls.c, mbedTLS 3.6)
 * on the client side, so every server is measured against the same client.
 *
 *   tlsload hs   -p PORT --crt F --key F --bundle F [-c 8] [-d 5] [-w 1] [-H host]
 *       full mTLS handshakes: each connection connects, does a full handshake
 *       (no session cache: no resumption), sends one "GET / Connection: close",
 *       reads the response and closes; then the next one. The request proves
 *       the server finished its side of the handshake before we count it.
 *   tlsload sign -p PORT --bundle F --token F [-c 8] [-d 5] [-w 1] [--id URI]
 *       POST /v1/sign to `mesh ca` over kept-alive TLS connections (the server
 *       verified against the bundle); one CSR made at start, sent every time
 *       (the CA checks its signature and signs a new certificate each time).
 *   tlsload idle -p PORT -n N [-H host] [-t 60] [-b BYTES]
 *       N plain keep-alive connections, one request each sent at once, every
 *       response read, then the connections are held open and idle for up to
 *       -t seconds (until killed). Prints "ready ok=N errors=N" once idle.
 *
 * hs and sign run -w seconds of warm-up (not counted), then -d seconds; the
 * last line is key=value figures: done=N errors=N per_s=X p50_us=.. p99_us=..
 * total=N (latency of one handshake + request, or of one signing request;
 * total counts the warm-up's and the stragglers' too, for CPU time per operation).
 *
 * Limits: Content-Length responses only (the origin and the CA send them);
 * one request in flight per connection; IPv4 loopback addresses.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tls.h"

#define LOAD_BUF 16384

enum { ST_CONNECT, ST_HANDSHAKE, ST_WRITE, ST_READ, ST_IDLE };
enum { MODE_HS, MODE_SIGN, MODE_IDLE };

struct load_conn {
	int fd;                    /* -1: not connected */
	int state;                 /* ST_* */
	unsigned events;           /* what epoll waits for now */
	struct tls_conn *tls;      /* NULL in idle mode */
	int64_t start_ns;          /* when the measured operation began */
	size_t off;                /* request bytes written */
	size_t len;                /* response bytes buffered */
	char buf[LOAD_BUF];
};

static struct sockaddr_in dst;
static int ep, mode;
static struct tls_creds *creds;
static char *request;
static size_t request_len;
static int64_t t_count, t_end;     /* counting window */
static int64_t *lat;
static size_t nlat, lat_cap;
static unsigned long long done_n, errors_n, warm_n;
static char first_err[200];

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static double pct_us(double p)
{
	size_t i;

	if (nlat == 0)
		return 0;
	i = (size_t)(p / 100.0 * (double)nlat);
	if (i >= nlat)
		i = nlat - 1;
	return (double)lat[i] / 1e3;
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *s;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) < 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) < 0 ||
	    !(s = calloc(1, (size_t)n + 1))) {
		fclose(f);
		return NULL;
	}
	if (fread(s, 1, (size_t)n, f) != (size_t)n) {
		fclose(f);
		free(s);
		return NULL;
	}
	fclose(f);
	return s;
}

static void conn_wait(struct load_conn *c, unsigned events)
{
	struct epoll_event ev;

	if (c->events == events)
		return;
	ev.events = events;
	ev.data.ptr = c;
	epoll_ctl(ep, c->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev);
	c->events = events;
}

static void conn_close(struct load_conn *c)
{
	if (c->tls)
		tls_free(c->tls);
	c->tls = NULL;
	if (c->fd >= 0) {
		epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	c->fd = -1;
	c->events = 0;
	c->len = c->off = 0;
}

static void note_error(struct load_conn *c, const char *what)
{
	if (now_ns() >= t_count)
		errors_n++;
	if (!first_err[0])
		snprintf(first_err, sizeof(first_err), "%s%s%s", what, c->tls ? ": " : "",
		         c->tls ? tls_error(c->tls) : "");
}

/* starts a non-blocking connect: 0, or -1 */
static int conn_open(struct load_conn *c)
{
	int one = 1, rc;

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (c->fd < 0)
		return -1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->events = 0;
	c->len = c->off = 0;
	c->state = ST_CONNECT;
	if (mode == MODE_HS)
		c->start_ns = now_ns();   /* a handshake's latency includes the TCP connect */
	rc = connect(c->fd, (struct sockaddr *)&dst, sizeof(dst));
	if (rc < 0 && errno != EINPROGRESS) {
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	conn_wait(c, EPOLLOUT);
	return 0;
}

/* a complete response in c->buf: 1 (status in *status), 0 need more, -1 bad */
static int parse_response(const struct load_conn *c, int *status)
{
	const char *end = memmem(c->buf, c->len, "\r\n\r\n", 4), *line;
	long cl = -1;

	if (!end)
		return c->len >= LOAD_BUF ? -1 : 0;
	if (c->len < 12 || memcmp(c->buf, "HTTP/1.", 7))
		return -1;
	*status = atoi(c->buf + 9);
	for (line = memchr(c->buf, '\n', (size_t)(end - c->buf)); line && line < end;
	     line = memchr(line, '\n', (size_t)(end - line))) {
		line++;
		if (end - line > 15 && !strncasecmp(line, "content-length:", 15))
			cl = strtol(line + 15, NULL, 10);
	}
	if (cl < 0)
		return -1;
	if ((size_t)(end + 4 - c->buf) + (size_t)cl > c->len)
		return (size_t)(end + 4 - c->buf) + (size_t)cl > LOAD_BUF ? -1 : 0;
	return 1;
}

static void record(int64_t start)
{
	int64_t t = now_ns();

	if (start < t_count || t > t_end) {
		warm_n++;
		return;
	}
	done_n++;
	if (nlat < lat_cap)
		lat[nlat++] = t - start;
}

/* one operation finished (or failed): 1 when the connection goes on with the next request */
static int conn_next(struct load_conn *c)
{
	if (mode == MODE_SIGN && c->fd >= 0 && now_ns() < t_end) {
		c->state = ST_WRITE;
		c->off = c->len = 0;
		c->start_ns = now_ns();
		return 1;
	}
	conn_close(c);
	if (mode != MODE_IDLE && now_ns() < t_end && conn_open(c) < 0)
		note_error(c, "connect");
	return 0;   /* a new connection waits for its connect */
}

/* drives c until it must wait for its fd */
static void conn_step(struct load_conn *c)
{
	for (;;) {
		if (c->fd < 0)
			return;
		if (c->state == ST_CONNECT) {
			int err = 0;
			socklen_t l = sizeof(err);

			getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
			if (err) {
				errno = err;
				note_error(c, strerror(err));
				conn_close(c);
				conn_next(c);
				return;
			}
			if (mode == MODE_IDLE) {
				c->state = ST_WRITE;
				continue;
			}
			c->tls = tls_client(creds, c->fd, NULL, 0, NULL);   /* no session key: no resumption */
			if (!c->tls) {
				note_error(c, "tls_client failed");
				conn_close(c);
				return;
			}
			c->state = ST_HANDSHAKE;
			if (mode == MODE_SIGN)
				c->start_ns = now_ns();
		} else if (c->state == ST_HANDSHAKE) {
			int rc = tls_handshake(c->tls);

			if (rc == TLS_WANT_READ || rc == TLS_WANT_WRITE) {
				conn_wait(c, rc == TLS_WANT_READ ? EPOLLIN : EPOLLOUT);
				return;
			}
			if (rc != 0) {
				note_error(c, "handshake");
				conn_close(c);
				conn_next(c);
				return;
			}
			c->state = ST_WRITE;
			c->off = 0;
			if (mode == MODE_SIGN)
				c->start_ns = now_ns();   /* a signature's latency excludes the one-time handshake */
		} else if (c->state == ST_WRITE) {
			while (c->off < request_len) {
				ssize_t n = c->tls ? tls_write(c->tls, request + c->off, request_len - c->off)
				                   : write(c->fd, request + c->off, request_len - c->off);

				if (c->tls && (n == TLS_WANT_READ || n == TLS_WANT_WRITE)) {
					conn_wait(c, n == TLS_WANT_READ ? EPOLLIN : EPOLLOUT);
					return;
				}
				if (!c->tls && n < 0 && errno == EAGAIN) {
					conn_wait(c, EPOLLOUT);
					return;
				}
				if (n <= 0) {
					note_error(c, "write");
					conn_close(c);
					conn_next(c);
					return;
				}
				c->off += (size_t)n;
			}
			c->state = ST_READ;
			c->len = 0;
		} else {  /* ST_READ */
			int status = 0, p;
			ssize_t n = c->tls ? tls_read(c->tls, c->buf + c->len, LOAD_BUF - c->len)
			                   : read(c->fd, c->buf + c->len, LOAD_BUF - c->len);

			if (c->tls && (n == TLS_WANT_READ || n == TLS_WANT_WRITE)) {
				conn_wait(c, n == TLS_WANT_READ ? EPOLLIN : EPOLLOUT);
				return;
			}
			if (!c->tls && n < 0 && errno == EAGAIN) {
				conn_wait(c, EPOLLIN);
				return;
			}
			if (n <= 0) {
				note_error(c, "read (closed before a full response)");
				conn_close(c);
				conn_next(c);
				return;
			}
			c->len += (size_t)n;
			p = parse_response(c, &status);
			if (p == 0)
				continue;
			if (p < 0 || status != 200) {
				if (!first_err[0])
					snprintf(first_err, sizeof(first_err), "response: %.*s", (int)strcspn(c->buf, "\r\n"), c->buf);
				if (now_ns() >= t_count)
					errors_n++;
				conn_close(c);
				conn_next(c);
				return;
			}
			if (mode == MODE_IDLE) {
				done_n++;
				c->state = ST_IDLE;   /* idle: nothing more to do */
				conn_wait(c, EPOLLIN);
				return;
			}
			record(c->start_ns);
			if (!conn_next(c))
				return;
		}
	}
}

static void usage(void)
{
	fprintf(stderr,
	        "usage: tlsload hs   -p PORT --crt F --key F --bundle F [-c 8] [-d 5] [-w 1] [-H host]\n"
	        "       tlsload sign -p PORT --bundle F --token F [-c 8] [-d 5] [-w 1] [--id URI]\n"
	        "       tlsload idle -p PORT -n N [-H host] [-t 60] [-b BYTES]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *addr = "127.0.0.1", *host = "origin", *crt = NULL, *key = NULL, *bundle = NULL, *token = NULL;
	const char *id = "spiffe://cluster.local/ns/default/sa/bench";
	double secs = 5, warm = 1, hold = 60;
	int port = 0, nconn = 8, i, body = 0;
	struct load_conn *conns;
	struct epoll_event evs[256];
	char err[300];
	int64_t start;

	if (argc < 2)
		usage();
	if (!strcmp(argv[1], "hs"))
		mode = MODE_HS;
	else if (!strcmp(argv[1], "sign"))
		mode = MODE_SIGN;
	else if (!strcmp(argv[1], "idle"))
		mode = MODE_IDLE;
	else
		usage();
	for (i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v)
			usage();
		if (!strcmp(a, "-p")) port = atoi(v);
		else if (!strcmp(a, "-a")) addr = v;
		else if (!strcmp(a, "-c") || !strcmp(a, "-n")) nconn = atoi(v);
		else if (!strcmp(a, "-d")) secs = atof(v);
		else if (!strcmp(a, "-w")) warm = atof(v);
		else if (!strcmp(a, "-t")) hold = atof(v);
		else if (!strcmp(a, "-b")) body = atoi(v);
		else if (!strcmp(a, "-H")) host = v;
		else if (!strcmp(a, "--crt")) crt = v;
		else if (!strcmp(a, "--key")) key = v;
		else if (!strcmp(a, "--bundle")) bundle = v;
		else if (!strcmp(a, "--token")) token = v;
		else if (!strcmp(a, "--id")) id = v;
		else usage();
		i++;
	}
	if (port <= 0 || port > 65535 || nconn < 1 || nconn > 20000 || secs <= 0 || warm < 0 || body < 0 ||
	    body > 1 << 20)
		usage();
	signal(SIGPIPE, SIG_IGN);
	memset(&dst, 0, sizeof(dst));
	dst.sin_family = AF_INET;
	dst.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, addr, &dst.sin_addr) != 1)
		usage();

	if (mode != MODE_IDLE) {
		char *b = bundle ? read_file(bundle) : NULL;

		if (!b) {
			fprintf(stderr, "tlsload: --bundle %s: cannot read\n", bundle ? bundle : "(none)");
			return 1;
		}
		if (tls_global_init() < 0) {
			fprintf(stderr, "tlsload: no entropy\n");
			return 1;
		}
		if (mode == MODE_HS) {
			char *c = crt ? read_file(crt) : NULL, *k = key ? read_file(key) : NULL;

			if (!c || !k) {
				fprintf(stderr, "tlsload: hs needs readable --crt and --key\n");
				return 1;
			}
			creds = tls_creds_new(c, k, b, err, sizeof(err));
			free(c);
			free(k);
		} else {
			creds = tls_creds_new_ex(NULL, NULL, b, 0, err, sizeof(err));
		}
		free(b);
		if (!creds) {
			fprintf(stderr, "tlsload: credentials: %s\n", err);
			return 1;
		}
	}
	if (mode == MODE_SIGN) {
		char *k = tls_key_generate(err, sizeof(err)), *csr = k ? tls_csr_create(k, id, err, sizeof(err)) : NULL;
		char *tok = token ? read_file(token) : NULL;
		size_t cap;

		if (!csr || !tok) {
			fprintf(stderr, "tlsload: %s\n", !csr ? err : "--token: cannot read");
			return 1;
		}
		tok[strcspn(tok, "\r\n")] = '\0';
		cap = strlen(csr) + strlen(tok) + 512;
		request = malloc(cap);
		if (!request)
			return 1;
		request_len = (size_t)snprintf(request, cap,
		        "POST /v1/sign HTTP/1.1\r\nHost: mesh-ca\r\nAuthorization: Bearer %s\r\n"
		        "Content-Type: application/pkcs10\r\nContent-Length: %zu\r\n\r\n%s", tok, strlen(csr), csr);
		free(k);
		free(csr);
		free(tok);
	} else {
		size_t cap = (size_t)body + 512;

		request = malloc(cap);
		if (!request)
			return 1;
		if (body)
			request_len = (size_t)snprintf(request, cap, "POST / HTTP/1.1\r\nHost: %s\r\n"
			                               "Content-Type: application/octet-stream\r\nContent-Length: %d\r\n%s\r\n",
			                               host, body, mode == MODE_HS ? "Connection: close\r\n" : "");
		else
			request_len = (size_t)snprintf(request, cap, "GET / HTTP/1.1\r\nHost: %s\r\n%s\r\n", host,
			                               mode == MODE_HS ? "Connection: close\r\n" : "");
		memset(request + request_len, 'x', (size_t)body);
		request_len += (size_t)body;
	}

	ep = epoll_create1(0);
	conns = calloc((size_t)nconn, sizeof(*conns));
	lat_cap = 4000000;
	lat = malloc(lat_cap * sizeof(*lat));
	if (ep < 0 || !conns || !lat)
		return 1;
	start = now_ns();
	if (mode == MODE_IDLE) {
		t_count = start;
		t_end = start + (int64_t)(90 * 1e9);   /* every response within 90 s */
	} else {
		t_count = start + (int64_t)(warm * 1e9);
		t_end = t_count + (int64_t)(secs * 1e9);
	}
	for (i = 0; i < nconn; i++) {
		conns[i].fd = -1;
		if (conn_open(&conns[i]) < 0) {
			fprintf(stderr, "tlsload: cannot connect to %s:%d: %s\n", addr, port, strerror(errno));
			return 1;
		}
	}
	for (;;) {
		int n, open = 0;
		int64_t t = now_ns();

		if (mode == MODE_IDLE && done_n + errors_n >= (unsigned long long)nconn)
			break;
		for (i = 0; i < nconn; i++)
			open += conns[i].fd >= 0;
		if (mode != MODE_IDLE && (open == 0 || t > t_end + 5000000000LL))
			break;
		if (mode == MODE_IDLE && t > t_end)
			break;
		n = epoll_wait(ep, evs, 256, 100);
		for (i = 0; i < n; i++) {
			struct load_conn *c = evs[i].data.ptr;

			if (c->state == ST_IDLE) {   /* idle mode: the peer closed or sent more */
				note_error(c, "idle connection closed by the proxy");
				conn_close(c);
				continue;
			}
			conn_step(c);
		}
	}
	if (mode == MODE_IDLE) {
		int64_t until;

		printf("ready ok=%llu errors=%llu%s%s\n", done_n, errors_n, first_err[0] ? " first_error=" : "", first_err);
		fflush(stdout);
		until = now_ns() + (int64_t)(hold * 1e9);
		while (now_ns() < until) {
			int n = epoll_wait(ep, evs, 256, 200);

			for (i = 0; i < n; i++) {
				struct load_conn *c = evs[i].data.ptr;

				printf("closed: a held connection was closed by the proxy\n");
				fflush(stdout);
				conn_close(c);
			}
		}
		return 0;
	}
	qsort(lat, nlat, sizeof(*lat), cmp_i64);
	printf("tlsload %s: %d connections to %s:%d, %.1f s (+%.1f s warm-up)\n", argv[1], nconn, addr, port, secs, warm);
	if (first_err[0])
		printf("first error: %s\n", first_err);
	printf("done=%llu errors=%llu per_s=%.1f p50_us=%.0f p99_us=%.0f total=%llu\n", done_n, errors_n,
	       (double)done_n / secs, pct_us(50), pct_us(99), done_n + warm_n);
	return 0;
}
