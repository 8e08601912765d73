/*
 * rate: an open-loop HTTP/1.1 load client at a fixed request rate.
 *
 *   rate -a 127.0.0.1 -p PORT [-H host] [-r RATE] [-d SECS] [-w WARMUP_SECS] [-c CONNS]
 *        [-b BODY_BYTES]
 *
 * wrk sends as fast as responses come back (closed loop), so it cannot tell how a
 * proxy adds latency at a given load. This client sends request k at the scheduled
 * time start + k/RATE whatever happened before (open loop), over CONNS keep-alive
 * connections, each with at most one request in flight (no pipelining). A request
 * whose time has come while every connection is busy waits in a queue and that wait
 * counts in its latency, so a stall is never hidden (no coordinated omission).
 * Latencies are recorded individually (no histogram buckets) and sorted.
 *
 * A request's latency runs from the moment the client had it ready to send (the
 * timer tick that found it due) to the end of its response, so waiting for a busy
 * connection counts but the client's own timer wake-up lateness does not: on a VM
 * waking from idle that alone is tens of microseconds, and it would drown the few
 * microseconds a proxy adds. That lateness is printed on its own line.
 *
 * Prints p50/p90/p99/p999/max in microseconds, the count of requests, errors
 * (non-200, closed or reset connections, no Content-Length, unanswered at the end),
 * and the client's send lateness (timer wake-up after the scheduled time). Last line:
 *   sent=N ok=N errors=N p50_us=.. p99_us=.. max_us=..
 *
 * -b sends each request as a POST with a body of that many bytes (default: GET, no body).
 *
 * Only Content-Length responses are understood (the bench's origin sends them and
 * the proxies keep them). Requests during the warm-up are sent but not recorded.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define RATE_BUF 65536

struct rate_conn {
	int fd;
	int busy;                 /* a request is in flight */
	int64_t ready_ns;         /* when the request in flight was ready to send */
	int record;               /* 1 when its latency counts (after warm-up) */
	size_t len;               /* bytes of response buffered */
	char buf[RATE_BUF];
};

static struct sockaddr_in dst;
static char *request;
static size_t request_len;
static int ep;

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

static int64_t pct(const int64_t *v, size_t n, double p)
{
	size_t i;

	if (n == 0)
		return 0;
	i = (size_t)(p / 100.0 * (double)n);
	if (i >= n)
		i = n - 1;
	return v[i];
}

static int rate_connect(struct rate_conn *c)
{
	struct epoll_event ev;
	int one = 1;

	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (c->fd < 0)
		return -1;
	/* blocking connect: connections are opened before the measured period */
	if (connect(c->fd, (struct sockaddr *)&dst, sizeof(dst)) < 0) {
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->busy = 0;
	c->len = 0;
	ev.events = EPOLLIN;
	ev.data.ptr = c;
	epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
	return 0;
}

static void rate_drop(struct rate_conn *c)
{
	if (c->fd >= 0) {
		epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	c->fd = -1;
	c->busy = 0;
	c->len = 0;
}

/* 0 sent, -1 the connection is broken */
static int rate_send(struct rate_conn *c, int64_t ready, int record)
{
	ssize_t w;

	if (c->fd < 0 && rate_connect(c) < 0)
		return -1;
	w = write(c->fd, request, request_len);
	if (w != (ssize_t)request_len)
		return -1;
	c->busy = 1;
	c->ready_ns = ready;
	c->record = record;
	return 0;
}

/* Parses a complete response in c->buf: 1 done (status in *status), 0 need more, -1 bad */
static int rate_parse(struct rate_conn *c, int *status)
{
	char *end = memmem(c->buf, c->len, "\r\n\r\n", 4), *line;
	long cl = -1;

	if (!end)
		return c->len == RATE_BUF ? -1 : 0;
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
		return (size_t)(end + 4 - c->buf) + (size_t)cl > RATE_BUF ? -1 : 0;
	if ((size_t)(end + 4 - c->buf) + (size_t)cl != c->len)
		return -1;   /* bytes past the response: we never pipeline */
	return 1;
}

static void usage(void)
{
	fprintf(stderr, "usage: rate -p PORT [-a 127.0.0.1] [-H host] [-r 1000] [-d 10] [-w 1] [-c 20] [-b 0]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *addr = "127.0.0.1", *host = "origin";
	double rate = 1000, secs = 10, warm = 1;
	int port = 0, nconn = 20, opt, tfd, i, body = 0;
	struct rate_conn *conns;
	int64_t *lat, *late, interval, start, t_end, sched_next;
	size_t nlat = 0, nlate = 0, cap, qlen = 0, qhead = 0, qcap;
	int64_t *queue;             /* ready times of requests waiting for a free connection */
	int *qrec;
	uint64_t sent = 0, ok = 0, errors = 0, e_status = 0, e_conn = 0, e_parse = 0, e_left = 0;
	struct itimerspec its;
	struct epoll_event ev, evs[256];
	size_t rr = 0;

	while ((opt = getopt(argc, argv, "a:p:H:r:d:w:c:b:")) != -1) {
		switch (opt) {
		case 'a': addr = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 'H': host = optarg; break;
		case 'r': rate = atof(optarg); break;
		case 'd': secs = atof(optarg); break;
		case 'w': warm = atof(optarg); break;
		case 'c': nconn = atoi(optarg); break;
		case 'b': body = atoi(optarg); break;
		default: usage();
		}
	}
	if (port <= 0 || port > 65535 || rate <= 0 || secs <= 0 || warm < 0 || nconn < 1 || nconn > 10000 ||
	    body < 0 || body > 1 << 20)
		usage();
	signal(SIGPIPE, SIG_IGN);
	/* the default 50 us timer slack would show up as latency */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

	memset(&dst, 0, sizeof(dst));
	dst.sin_family = AF_INET;
	dst.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, addr, &dst.sin_addr) != 1)
		usage();
	request = malloc((size_t)body + 512);
	if (!request)
		return 1;
	if (body)
		request_len = (size_t)snprintf(request, 512, "POST / HTTP/1.1\r\nHost: %s\r\nUser-Agent: mesh-bench-rate\r\n"
			"Content-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", host, body);
	else
		request_len = (size_t)snprintf(request, 512,
			"GET / HTTP/1.1\r\nHost: %s\r\nUser-Agent: mesh-bench-rate\r\n\r\n", host);
	memset(request + request_len, 'x', (size_t)body);
	request_len += (size_t)body;

	ep = epoll_create1(0);
	conns = calloc((size_t)nconn, sizeof(*conns));
	cap = (size_t)(rate * (secs + 1)) + 16;
	lat = malloc(cap * sizeof(*lat));
	late = malloc(cap * sizeof(*late));
	qcap = (size_t)(rate * (secs + warm + 1)) + 16;
	queue = malloc(qcap * sizeof(*queue));
	qrec = malloc(qcap * sizeof(*qrec));
	if (!conns || !lat || !late || !queue || !qrec)
		return 1;
	for (i = 0; i < nconn; i++) {
		conns[i].fd = -1;
		if (rate_connect(&conns[i]) < 0) {
			fprintf(stderr, "rate: cannot connect to %s:%d: %s\n", addr, port, strerror(errno));
			return 1;
		}
	}

	interval = (int64_t)(1e9 / rate);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	start = now_ns() + 1000000;
	sched_next = start;
	t_end = start + (int64_t)((warm + secs) * 1e9);
	its.it_value.tv_sec = start / 1000000000;
	its.it_value.tv_nsec = start % 1000000000;
	its.it_interval.tv_sec = interval / 1000000000;
	its.it_interval.tv_nsec = interval % 1000000000;
	timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;
	epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);

	for (;;) {
		int64_t t = now_ns();
		int n, busy = 0;

		for (i = 0; i < nconn; i++)
			busy += conns[i].busy;
		if (sched_next >= t_end && qlen == qhead && busy == 0)
			break;
		if (sched_next >= t_end && t > t_end + 2000000000LL) {
			e_left += (uint64_t)busy + (qlen - qhead);   /* unanswered after 2 s */
			break;
		}
		n = epoll_wait(ep, evs, 256, 100);
		if (n < 0 && errno == EINTR)
			continue;
		t = now_ns();
		for (i = 0; i < n; i++) {
			struct rate_conn *c = evs[i].data.ptr;
			if (!c) {
				uint64_t exp;
				if (read(tfd, &exp, sizeof(exp)) < 0)
					continue;
				/* enqueue every request whose time has come */
				while (sched_next <= t && sched_next < t_end && qlen < qcap) {
					int rec = sched_next >= start + (int64_t)(warm * 1e9);
					queue[qlen] = t;   /* ready now; the lateness t - sched_next is the client's own */
					qrec[qlen++] = rec;
					if (rec && nlate < cap)
						late[nlate++] = t - sched_next;
					sched_next += interval;
				}
				continue;
			}
			{
				ssize_t r = read(c->fd, c->buf + c->len, RATE_BUF - c->len);
				int status = 0, p;
				if (r <= 0) {
					if (r < 0 && errno == EAGAIN)
						continue;
					if (c->busy && c->record)
						e_conn++;
					rate_drop(c);
					continue;
				}
				c->len += (size_t)r;
				p = rate_parse(c, &status);
				if (p == 0)
					continue;
				if (p < 0) {
					if (c->record)
						e_parse++;
					rate_drop(c);
					continue;
				}
				if (c->record) {
					if (status == 200) {
						ok++;
						if (nlat < cap)
							lat[nlat++] = t - c->ready_ns;
					} else {
						e_status++;
					}
				}
				c->busy = 0;
				c->len = 0;
			}
		}
		/* hand queued requests to idle connections, round-robin so all stay warm */
		for (i = 0; i < nconn && qhead < qlen; i++) {
			struct rate_conn *c = &conns[rr];
			rr = (rr + 1) % (size_t)nconn;
			if (c->busy)
				continue;
			if (rate_send(c, queue[qhead], qrec[qhead]) < 0) {
				if (qrec[qhead])
					e_conn++;
				rate_drop(c);
			}
			if (qrec[qhead])
				sent++;
			qhead++;
		}
		if (sched_next >= t_end) {
			struct itimerspec off;
			memset(&off, 0, sizeof(off));
			timerfd_settime(tfd, 0, &off, NULL);
		}
	}
	errors = e_status + e_conn + e_parse + e_left;
	qsort(lat, nlat, sizeof(*lat), cmp_i64);
	qsort(late, nlate, sizeof(*late), cmp_i64);
	printf("rate: %.0f req/s for %.1f s (+%.1f s warm-up) over %d connections to %s:%d\n",
	       rate, secs, warm, nconn, addr, port);
	printf("latency_us p50=%.1f p90=%.1f p99=%.1f p999=%.1f max=%.1f\n",
	       (double)pct(lat, nlat, 50) / 1e3, (double)pct(lat, nlat, 90) / 1e3,
	       (double)pct(lat, nlat, 99) / 1e3, (double)pct(lat, nlat, 99.9) / 1e3,
	       nlat ? (double)lat[nlat - 1] / 1e3 : 0.0);
	printf("client send lateness_us p50=%.1f p99=%.1f\n",
	       (double)pct(late, nlate, 50) / 1e3, (double)pct(late, nlate, 99) / 1e3);
	printf("errors: status=%llu conn=%llu parse=%llu unanswered=%llu\n",
	       (unsigned long long)e_status, (unsigned long long)e_conn,
	       (unsigned long long)e_parse, (unsigned long long)e_left);
	printf("sent=%llu ok=%llu errors=%llu p50_us=%.1f p99_us=%.1f max_us=%.1f\n",
	       (unsigned long long)sent, (unsigned long long)ok, (unsigned long long)errors,
	       (double)pct(lat, nlat, 50) / 1e3, (double)pct(lat, nlat, 99) / 1e3,
	       nlat ? (double)lat[nlat - 1] / 1e3 : 0.0);
	return 0;
}
