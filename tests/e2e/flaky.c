/*
 * flaky: the test origin of the traffic-management scenarios (30_match to
 * 35_lab2). Like backend.c it is independent of the proxy's code, but its
 * behaviour is switched at run time through control URLs, so one process can
 * be healthy, then fail, then heal, while the proxy in front keeps running.
 *
 *   flaky -p PORT [-n NAME] [-b ADDR]
 *
 * A thread per connection, blocking I/O, keep-alive. Request bodies
 * (Content-Length or chunked) are read whole and summarised (length and a
 * byte sum), never stored.
 *
 * Data requests (any path not under /ctl/) answer 200 with the headers
 *   x-backend: NAME, x-resp-set: origin, x-origin: yes
 * and the body
 *   NAME\n
 *   bytes=N sum=S\n          the request body's length and the sum of its bytes
 *   <the request head exactly as received>
 * Query parameters of a data request: ms=N waits N ms first; status=S answers S.
 *
 * Failure modes (the request still counts; a failure answers S with a short
 * body, status 0 means: close the connection without an answer, with an RST):
 *   /ctl/fail?n=N&status=S&delay=MS   the next N data requests fail (n=-1: all,
 *                                     until healed), each after waiting MS
 *   /ctl/first?k=K&status=S&delay=MS  the first K attempts of every x-request-id
 *                                     fail (a retry replays the same id)
 *   /ctl/delay?ms=N                   every data request waits N ms (slow endpoint)
 *   /ctl/heal                         no failures, no delay
 * Observation:
 *   /ctl/stats  "requests=R ok=O failed=F connections=C open=N maxactive=A\n":
 *               data requests, those answered 2xx, those failed on purpose,
 *               connections accepted (the control ones included), open now, the
 *               most data requests ever in progress at once
 *   /ctl/log    one line per data request (the last 4096), written when it
 *               arrives: "id=ID host=HOST method=M target=T bytes=N sum=S status=S"
 *   /ctl/reset  counters, log and per-id attempts to zero (modes unchanged)
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
#include <time.h>
#include <unistd.h>

#define MAX_HEAD (32 * 1024)
#define BUF_SIZE (64 * 1024)
#define LOG_LINES 4096
#define ID_SLOTS 16384

static const char *name = "flaky";
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

/* everything below is guarded by mu */
static long n_requests, n_ok, n_failed, n_connections, n_open, n_active, max_active;
static long fail_left;                     /* -1 = until healed */
static int fail_status = 503, fail_delay;
static int first_k, first_status = 503, first_delay;
static int slow_ms;
static char *log_lines[LOG_LINES];
static long log_next;                      /* total lines written */
static struct { char id[64]; int count; } ids[ID_SLOTS];

struct conn {
	int fd;
	char buf[BUF_SIZE];
	size_t start, end;
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

static int write_all(int fd, const char *s, size_t n)
{
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

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (ms > 0 && nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* the value of header n in the NUL-separated head copy, or NULL */
static const char *hget(char **names, char **values, int nh, const char *n)
{
	for (int i = 0; i < nh; i++)
		if (!strcasecmp(names[i], n))
			return values[i];
	return NULL;
}

static long qparam(const char *query, const char *key, long dflt)
{
	size_t kl = strlen(key);
	const char *p = query;

	while (p && *p) {
		if (!strncmp(p, key, kl) && p[kl] == '=')
			return strtol(p + kl + 1, NULL, 10);
		p = strchr(p, '&');
		if (p)
			p++;
	}
	return dflt;
}

/* one CRLF line of a chunked body into out; -1 on error */
static int read_line(struct conn *c, char *out, size_t cap)
{
	for (;;) {
		char *s = c->buf + c->start, *lf = memchr(s, '\n', c->end - c->start);
		if (lf) {
			size_t len = (size_t)(lf - s);
			if (len == 0 || s[len - 1] != '\r' || len - 1 >= cap)
				return -1;
			memcpy(out, s, len - 1);
			out[len - 1] = 0;
			c->start += len + 1;
			return 0;
		}
		if (c->end - c->start >= cap + 2 || fill(c) < 0)
			return -1;
	}
}

/* reads n raw body bytes, adding them up; -1 on EOF */
static int body_bytes(struct conn *c, uint64_t n, uint64_t *len, uint64_t *sum)
{
	while (n > 0) {
		if (c->start == c->end && fill(c) < 0)
			return -1;
		size_t k = c->end - c->start;
		if (k > n)
			k = (size_t)n;
		for (size_t i = 0; i < k; i++)
			*sum += (unsigned char)c->buf[c->start + i];
		c->start += k;
		*len += k;
		n -= k;
	}
	return 0;
}

static int read_body(struct conn *c, const char *cl, const char *te, uint64_t *len, uint64_t *sum)
{
	char line[256];

	*len = *sum = 0;
	if (te) {
		if (strcasecmp(te, "chunked"))
			return -1;
		for (;;) {
			char *end;
			if (read_line(c, line, sizeof(line)) < 0)
				return -1;
			uint64_t n = strtoull(line, &end, 16);
			if (end == line)
				return -1;
			if (n == 0)
				break;
			if (body_bytes(c, n, len, sum) < 0 || read_line(c, line, sizeof(line)) < 0 || line[0])
				return -1;
		}
		for (;;) {                         /* trailers, then the empty line */
			if (read_line(c, line, sizeof(line)) < 0)
				return -1;
			if (!line[0])
				return 0;
		}
	}
	if (cl)
		return body_bytes(c, strtoull(cl, NULL, 10), len, sum);
	return 0;
}

static int respond(int fd, int status, int keepalive, const char *extra, const char *body, size_t len)
{
	char head[512];
	int n = snprintf(head, sizeof(head),
	                 "HTTP/1.1 %d X\r\nx-backend: %s\r\n%scontent-type: text/plain\r\ncontent-length: %zu\r\n%s\r\n",
	                 status, name, extra ? extra : "", len, keepalive ? "" : "connection: close\r\n");
	if (write_all(fd, head, (size_t)n) < 0)
		return -1;
	return len ? write_all(fd, body, len) : 0;
}

static int respondf(int fd, int status, int keepalive, const char *fmt, ...)
{
	char body[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	if (n < 0 || n >= (int)sizeof(body))
		n = 0;
	return respond(fd, status, keepalive, NULL, body, (size_t)n);
}

/* attempts so far of request id (this one included) */
static int id_attempt(const char *id)
{
	uint64_t h = 1469598103934665603ULL;

	for (const char *p = id; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	for (size_t i = 0; i < ID_SLOTS; i++) {
		size_t k = (size_t)((h + i) % ID_SLOTS);
		if (!ids[k].id[0]) {
			snprintf(ids[k].id, sizeof(ids[k].id), "%s", id);
			return ids[k].count = 1;
		}
		if (!strncmp(ids[k].id, id, sizeof(ids[k].id) - 1))
			return ++ids[k].count;
	}
	return 1;
}

static int control(struct conn *c, const char *path, const char *query, int keepalive)
{
	int fd = c->fd;

	pthread_mutex_lock(&mu);
	if (!strcmp(path, "/ctl/stats")) {
		char b[256];
		int n = snprintf(b, sizeof(b), "requests=%ld ok=%ld failed=%ld connections=%ld open=%ld maxactive=%ld\n",
		                 n_requests, n_ok, n_failed, n_connections, n_open, max_active);
		pthread_mutex_unlock(&mu);
		return respond(fd, 200, keepalive, NULL, b, (size_t)n);
	}
	if (!strcmp(path, "/ctl/log")) {
		size_t cap = 1 << 20, len = 0;
		char *b = malloc(cap);
		long from = log_next > LOG_LINES ? log_next - LOG_LINES : 0;
		for (long i = from; b && i < log_next; i++) {
			const char *l = log_lines[i % LOG_LINES];
			size_t k = strlen(l);
			if (len + k > cap)
				break;
			memcpy(b + len, l, k);
			len += k;
		}
		pthread_mutex_unlock(&mu);
		int r = respond(fd, 200, keepalive, NULL, b ? b : "", b ? len : 0);
		free(b);
		return r;
	}
	if (!strcmp(path, "/ctl/reset")) {
		n_requests = n_ok = n_failed = max_active = 0;
		n_connections = 1;                 /* this one */
		for (long i = 0; i < LOG_LINES; i++) {
			free(log_lines[i]);
			log_lines[i] = NULL;
		}
		log_next = 0;
		memset(ids, 0, sizeof(ids));
	} else if (!strcmp(path, "/ctl/fail")) {
		fail_left = qparam(query, "n", -1);
		fail_status = (int)qparam(query, "status", 503);
		fail_delay = (int)qparam(query, "delay", 0);
	} else if (!strcmp(path, "/ctl/first")) {
		first_k = (int)qparam(query, "k", 1);
		first_status = (int)qparam(query, "status", 503);
		first_delay = (int)qparam(query, "delay", 0);
		memset(ids, 0, sizeof(ids));
	} else if (!strcmp(path, "/ctl/delay")) {
		slow_ms = (int)qparam(query, "ms", 0);
	} else if (!strcmp(path, "/ctl/heal")) {
		fail_left = 0;
		first_k = 0;
		slow_ms = 0;
	} else {
		pthread_mutex_unlock(&mu);
		return respondf(fd, 404, keepalive, "unknown control %s\n", path);
	}
	pthread_mutex_unlock(&mu);
	return respondf(fd, 200, keepalive, "ok\n");
}

/* one request; 1 = keep going, 0 = close */
static int serve_one(struct conn *c)
{
	char head[MAX_HEAD + 1], work[MAX_HEAD + 1], *names[128], *values[128];
	char *method, *target, *path, *query, *line, *next, *eoh;
	int nh = 0, keepalive, status, delay_ms, fail = 0;
	size_t hl;
	uint64_t blen, bsum;

	for (;;) {
		eoh = memmem(c->buf + c->start, c->end - c->start, "\r\n\r\n", 4);
		if (eoh)
			break;
		if (c->end - c->start >= MAX_HEAD || fill(c) < 0)
			return 0;
	}
	hl = (size_t)(eoh + 4 - (c->buf + c->start));
	memcpy(head, c->buf + c->start, hl);
	head[hl] = 0;
	memcpy(work, head, hl + 1);
	c->start += hl;

	line = work;
	next = strstr(line, "\r\n");
	*next = 0;
	next += 2;
	method = line;
	if (!(target = strchr(method, ' ')))
		return 0;
	*target++ = 0;
	char *sp = strchr(target, ' ');
	if (!sp)
		return 0;
	*sp = 0;
	keepalive = !strcmp(sp + 1, "HTTP/1.1");
	for (line = next; *line; line = next) {
		next = strstr(line, "\r\n");
		*next = 0;
		next += 2;
		if (!*line || nh == 128)
			break;
		char *colon = strchr(line, ':');
		if (!colon)
			return 0;
		*colon = 0;
		char *v = colon + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		names[nh] = line;
		values[nh++] = v;
	}
	const char *conn = hget(names, values, nh, "connection");
	if (conn && strcasestr(conn, "close"))
		keepalive = 0;
	if (conn && strcasestr(conn, "keep-alive"))
		keepalive = 1;
	if (read_body(c, hget(names, values, nh, "content-length"), hget(names, values, nh, "transfer-encoding"),
	              &blen, &bsum) < 0)
		return 0;
	path = target;
	if (!strncmp(path, "http://", 7)) {
		path = strchr(path + 7, '/');
		if (!path)
			path = "/";
	}
	char pathbuf[2048];
	snprintf(pathbuf, sizeof(pathbuf), "%s", path);
	path = pathbuf;
	query = strchr(path, '?');
	if (query)
		*query++ = 0;
	if (!strncmp(path, "/ctl/", 5))
		return control(c, path, query, keepalive) == 0 && keepalive;

	/* a data request: decide its fate under the lock, act outside it */
	const char *id = hget(names, values, nh, "x-request-id");
	const char *host = hget(names, values, nh, "host");
	status = (int)qparam(query, "status", 200);
	delay_ms = (int)qparam(query, "ms", 0);
	pthread_mutex_lock(&mu);
	n_requests++;
	if (++n_active > max_active)
		max_active = n_active;
	if (fail_left) {
		if (fail_left > 0)
			fail_left--;
		fail = 1;
		status = fail_status;
		delay_ms = fail_delay;
	} else if (first_k && id_attempt(id ? id : "") <= first_k) {
		fail = 1;
		status = first_status;
		delay_ms = first_delay;
	}
	if (fail)
		n_failed++;
	if (slow_ms > delay_ms)
		delay_ms = slow_ms;
	pthread_mutex_unlock(&mu);

	/* logged on arrival, so a request still waiting (a hung try) is seen */
	char rec[1024];
	int rn = snprintf(rec, sizeof(rec), "id=%.100s host=%.100s method=%.20s target=%.600s bytes=%llu sum=%llu status=%d\n",
	                  id ? id : "-", host ? host : "-", method, target, (unsigned long long)blen,
	                  (unsigned long long)bsum, status);
	if (rn < 0 || rn >= (int)sizeof(rec))
		snprintf(rec, sizeof(rec), "(too long)\n");
	pthread_mutex_lock(&mu);
	free(log_lines[log_next % LOG_LINES]);
	log_lines[log_next % LOG_LINES] = strdup(rec);
	log_next++;
	pthread_mutex_unlock(&mu);

	sleep_ms(delay_ms);

	pthread_mutex_lock(&mu);
	n_active--;
	if (status >= 200 && status < 300)
		n_ok++;
	pthread_mutex_unlock(&mu);

	if (status == 0) {                         /* reset: no answer at all */
		struct linger lg = { 1, 0 };
		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		return 0;
	}
	if (fail)
		return respondf(c->fd, status, keepalive, "%s failed on purpose (%d)\n", name, status) == 0 && keepalive;

	size_t cap = hl + 256, n;
	char *b = malloc(cap);
	if (!b)
		return 0;
	n = (size_t)snprintf(b, cap, "%s\nbytes=%llu sum=%llu\n", name, (unsigned long long)blen,
	                     (unsigned long long)bsum);
	memcpy(b + n, head, hl);
	n += hl;
	int r = respond(c->fd, status, keepalive, "x-resp-set: origin\r\nx-origin: yes\r\n", b,
	                status == 204 || status == 304 ? 0 : n);
	free(b);
	return r == 0 && keepalive;
}

static void *serve(void *arg)
{
	struct conn *c = malloc(sizeof(*c));

	if (c) {
		c->fd = (int)(intptr_t)arg;
		c->start = c->end = 0;
		while (serve_one(c))
			;
		close(c->fd);
		free(c);
	} else {
		close((int)(intptr_t)arg);
	}
	pthread_mutex_lock(&mu);
	n_open--;
	pthread_mutex_unlock(&mu);
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
			fprintf(stderr, "usage: flaky -p PORT [-n NAME] [-b ADDR]\n");
			return 2;
		}
	}
	if (port <= 0 || port > 65535 || inet_pton(AF_INET, bind_addr, &sa.sin_addr) != 1) {
		fprintf(stderr, "usage: flaky -p PORT [-n NAME] [-b ADDR]\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	sa.sin_port = htons((uint16_t)port);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1024) < 0) {
		fprintf(stderr, "flaky %s: cannot listen on %s:%d: %s\n", name, bind_addr, port, strerror(errno));
		return 1;
	}
	fprintf(stderr, "flaky %s listening on %s:%d\n", name, bind_addr, port);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 512 * 1024);
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
		pthread_mutex_lock(&mu);
		n_connections++;
		n_open++;
		pthread_mutex_unlock(&mu);
		if (pthread_create(&t, &attr, serve, (void *)(intptr_t)cfd) != 0) {
			close(cfd);
			pthread_mutex_lock(&mu);
			n_open--;
			pthread_mutex_unlock(&mu);
		}
	}
}
