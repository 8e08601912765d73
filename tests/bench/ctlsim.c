/*
 * ctlsim: N simulated proxies against `mesh controller`, the load driver of
 * the control suite (tests/bench/control.sh, issue 5). One thread, one epoll
 * loop, mesh's own TLS layer (modules/tls.c, mbedTLS 3.6) on the client side.
 *
 *   ctlsim -p PORT --crt F --key F --bundle F -n N --mesh PATH [--edit FILE]...
 *          [--ctl-pid PID] [--services S] [--addr-base PORT] [-C HANDSHAKES]
 *          [--settle MS] [--timeout S]
 *
 * Each simulated proxy does what modules/watch.c does: its own mTLS
 * connection (all share one certificate: the controller keys a registration
 * by identity + address), POST /v1/register with service simK (K = i mod S),
 * labels app=simK, version=v1|v2 and a distinct address 127.0.0.1:BASE+i,
 * then GET /v1/snapshot?lease=L&version=V in a loop on the same connection,
 * V the version it holds (a 304 after ttl/3 just means poll again).
 *
 * 1. Registration: at most -C handshakes in flight; "registered" is the last
 *    lease's arrival, "synced" the moment every proxy holds the same version
 *    (then nothing new for --settle ms), both from the start.
 * 2. One round per --edit FILE: ctlsim renames FILE over --mesh (as an editor
 *    saves), so the edit time and every arrival come from one monotonic clock.
 *    A proxy's update time is when the 200 that brought the version it ends
 *    with was read to its last byte; the round ends when every proxy holds a
 *    new version and none arrived for --settle ms (or at --timeout). Around
 *    each round: the controller's CPU time (/proc/PID/stat, user + system,
 *    includes the settle wait's few 304s), VmRSS and VmHWM, and ctlsim's own
 *    CPU time (to show whether the simulator was the limit).
 *
 * Output: one line per phase, `key=value` words; the last line sums up:
 *   ctlsim n=.. registered=.. reg_ms=.. sync_ms=.. rounds=.. ... errors=..
 * Limits: IPv4 loopback; one request in flight per connection; a proxy whose
 * connection fails reconnects and registers again, at most 3 times.
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
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tls.h"

#define SIM_MAX_EDITS   64
#define SIM_HEAD        2048       /* a response head; the controller's are under 200 bytes */
#define SIM_SMALL_BODY  1024       /* kept bodies (registration answers, errors) */
#define SIM_RETRIES     3

enum { ST_IDLE, ST_CONNECT, ST_HANDSHAKE, ST_WRITE, ST_READ, ST_DEAD };
enum { REQ_REGISTER, REQ_POLL };

struct sim_proxy {
	int fd;                    /* -1: not connected */
	int state;                 /* ST_* */
	unsigned events;           /* what epoll waits for now */
	int idx;
	int req;                   /* REQ_*: what is in flight */
	int retries;
	struct tls_conn *tls;
	char lease[17];            /* "" until registered */
	char version[17];          /* the snapshot it holds, "" = none */
	int64_t got_ns;            /* when the 200 that brought version was read whole */
	int64_t open_ns, lease_ns; /* its first connect, its first lease */
	size_t out_len, off;       /* request bytes, written */
	char out[512];
	size_t head_len;           /* response: head bytes buffered until the blank line */
	int have_head, status;
	long long body_left;
	char rver[17];             /* X-Mesh-Version of the response */
	size_t body_len;
	char head[SIM_HEAD + 1];
	char body[SIM_SMALL_BODY + 1];
};

static struct sockaddr_in dst;
static int ep, n_proxies, n_services = 1, addr_base = 40000, max_hs = 32;
static struct sim_proxy *P;
static struct tls_creds *creds;
static int next_start, in_handshake, n_registered;
static unsigned long long errors_n, pushes_n, polls_n;
static int64_t last_push_ns, last_lease_ns;
static char first_err[240];
static char scratch[65536];

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double ms(int64_t ns)
{
	return (double)ns / 1e6;
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

/* ------------------------------------------------------------------ /proc of the controller */

static long long proc_cpu_ms(int pid)   /* utime + stime, ms; -1 unknown */
{
	char path[64], buf[1024], *p;
	unsigned long long ut = 0, st = 0;
	FILE *f;
	size_t n;

	if (pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (!(f = fopen(path, "r")))
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	if (!(p = strrchr(buf, ')')) ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (long long)((ut + st) * 1000 / (unsigned long long)sysconf(_SC_CLK_TCK));
}

static long proc_status_kib(int pid, const char *key)   /* VmRSS / VmHWM; -1 unknown */
{
	char path[64], line[256];
	size_t kl = strlen(key);
	long v = -1;
	FILE *f;

	if (pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if (!(f = fopen(path, "r")))
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, kl) && line[kl] == ':')
			v = atol(line + kl + 1);
	fclose(f);
	return v;
}

static double self_cpu_ms(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

/* ------------------------------------------------------------------ connections */

static void conn_wait(struct sim_proxy *p, unsigned events)
{
	struct epoll_event ev;

	if (p->events == events)
		return;
	ev.events = events;
	ev.data.ptr = p;
	epoll_ctl(ep, p->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, p->fd, &ev);
	p->events = events;
}

static void conn_close(struct sim_proxy *p)
{
	if (p->state == ST_CONNECT || p->state == ST_HANDSHAKE)
		in_handshake--;
	tls_free(p->tls);
	p->tls = NULL;
	if (p->fd >= 0) {
		epoll_ctl(ep, EPOLL_CTL_DEL, p->fd, NULL);
		close(p->fd);
	}
	p->fd = -1;
	p->events = 0;
	p->state = ST_IDLE;
}

static int conn_open(struct sim_proxy *p)
{
	int one = 1, rc;

	p->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (p->fd < 0)
		return -1;
	setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	p->events = 0;
	p->state = ST_CONNECT;
	in_handshake++;
	rc = connect(p->fd, (struct sockaddr *)&dst, sizeof(dst));
	if (rc < 0 && errno != EINPROGRESS) {
		close(p->fd);
		p->fd = -1;
		p->state = ST_IDLE;
		in_handshake--;
		return -1;
	}
	conn_wait(p, EPOLLOUT);
	return 0;
}

static void set_register(struct sim_proxy *p)
{
	char body[300];
	int k = p->idx % n_services, bl;

	bl = snprintf(body, sizeof(body), "[workload]\nservice = sim%d\nnamespace = default\n"
	              "labels = app=sim%d, version=v%d\naddress = 127.0.0.1:%d\n", k, k, 1 + (p->idx / n_services) % 2,
	              addr_base + p->idx);
	p->out_len = (size_t)snprintf(p->out, sizeof(p->out), "POST /v1/register HTTP/1.1\r\nHost: controller\r\n"
	                              "Content-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", bl, body);
	p->req = REQ_REGISTER;
	p->off = 0;
}

static void set_poll(struct sim_proxy *p)
{
	p->out_len = (size_t)snprintf(p->out, sizeof(p->out), "GET /v1/snapshot?lease=%s&version=%s HTTP/1.1\r\n"
	                              "Host: controller\r\n\r\n", p->lease, p->version);
	p->req = REQ_POLL;
	p->off = 0;
	polls_n++;
}

static void note_error(struct sim_proxy *p, const char *what)
{
	errors_n++;
	if (!first_err[0])
		snprintf(first_err, sizeof(first_err), "proxy %d: %s%s%.150s", p->idx, what, p->tls ? ": " : "",
		         p->tls ? tls_error(p->tls) : "");
}

/* the connection failed: reconnect and register again, a few times */
static void conn_fail(struct sim_proxy *p, const char *what)
{
	note_error(p, what);
	conn_close(p);
	if (p->lease[0])
		n_registered--;
	p->lease[0] = '\0';
	if (++p->retries > SIM_RETRIES || conn_open(p) < 0) {
		p->state = ST_DEAD;
		return;
	}
}

/* a whole response is in: what the proxy does next */
static void response_done(struct sim_proxy *p)
{
	p->body[p->body_len] = '\0';
	if (p->req == REQ_REGISTER) {
		char *l = strstr(p->body, "lease = ");

		if (p->status != 200 || !l || sscanf(l + 8, "%16[0-9a-f]", p->lease) != 1 || strlen(p->lease) != 16) {
			char why[160];

			p->lease[0] = '\0';
			snprintf(why, sizeof(why), "registration refused (HTTP %d: %.100s)", p->status, p->body);
			note_error(p, why);
			conn_close(p);
			p->state = ST_DEAD;
			return;
		}
		n_registered++;
		last_lease_ns = now_ns();
		if (!p->lease_ns)
			p->lease_ns = last_lease_ns;
	} else if (p->status == 200 && p->rver[0]) {
		memcpy(p->version, p->rver, sizeof(p->version));
		p->got_ns = last_push_ns = now_ns();
		pushes_n++;
	} else if (p->status == 404) {          /* lease gone: register again */
		note_error(p, "lease unknown (404)");
		n_registered--;
		p->lease[0] = '\0';
		set_register(p);
		p->state = ST_WRITE;
		return;
	} else if (p->status != 304) {
		note_error(p, "unexpected poll status");
	}
	set_poll(p);
	p->state = ST_WRITE;
}

/* response bytes; 0, or -1 when they do not parse */
static int consume(struct sim_proxy *p, const char *d, size_t n)
{
	while (n > 0) {
		if (!p->have_head) {
			size_t take = n < SIM_HEAD - p->head_len ? n : SIM_HEAD - p->head_len, hl, extra;
			char *e, *line;
			long long cl = -1;

			memcpy(p->head + p->head_len, d, take);
			p->head_len += take;
			p->head[p->head_len] = '\0';
			d += take;
			n -= take;
			if (!(e = strstr(p->head, "\r\n\r\n"))) {
				if (p->head_len >= SIM_HEAD)
					return -1;
				continue;
			}
			if (strncmp(p->head, "HTTP/1.1 ", 9))
				return -1;
			p->status = atoi(p->head + 9);
			p->rver[0] = '\0';
			for (line = strchr(p->head, '\n'); line && line < e; line = strchr(line, '\n')) {
				line++;
				if (!strncasecmp(line, "content-length:", 15))
					cl = strtoll(line + 15, NULL, 10);
				else if (!strncasecmp(line, "x-mesh-version:", 15))
					sscanf(line + 15, " %16[0-9a-f]", p->rver);
			}
			if (cl < 0)
				return -1;
			hl = (size_t)(e + 4 - p->head);
			extra = p->head_len - hl;
			p->have_head = 1;
			p->body_left = cl;
			p->body_len = 0;
			if ((long long)extra > cl)
				return -1;
			p->body_left -= (long long)extra;
			p->body_len = extra < SIM_SMALL_BODY ? extra : SIM_SMALL_BODY;
			memcpy(p->body, p->head + hl, p->body_len);
		} else {
			size_t take = (long long)n < p->body_left ? n : (size_t)p->body_left;
			size_t keep = SIM_SMALL_BODY - p->body_len < take ? SIM_SMALL_BODY - p->body_len : take;

			if (take < n)
				return -1;      /* bytes after the response: nothing is pipelined */
			memcpy(p->body + p->body_len, d, keep);
			p->body_len += keep;
			p->body_left -= (long long)take;
			d += take;
			n -= take;
		}
		if (p->have_head && p->body_left == 0) {
			if (n > 0)
				return -1;
			p->have_head = 0;
			p->head_len = 0;
			response_done(p);
		}
	}
	return 0;
}

/* drives p until it must wait for its fd */
static void conn_step(struct sim_proxy *p)
{
	for (;;) {
		if (p->state == ST_CONNECT) {
			int err = 0;
			socklen_t l = sizeof(err);

			getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &l);
			if (err) {
				conn_fail(p, strerror(err));
				return;
			}
			if (!(p->tls = tls_client_lean(creds, p->fd, NULL, 0, NULL))) {
				conn_fail(p, "tls_client failed");
				return;
			}
			p->state = ST_HANDSHAKE;
		} else if (p->state == ST_HANDSHAKE) {
			int rc = tls_handshake(p->tls);

			if (rc == TLS_WANT_READ || rc == TLS_WANT_WRITE) {
				conn_wait(p, rc == TLS_WANT_READ ? EPOLLIN : EPOLLOUT);
				return;
			}
			if (rc != 0) {
				conn_fail(p, "handshake");
				return;
			}
			in_handshake--;
			set_register(p);
			p->state = ST_WRITE;
		} else if (p->state == ST_WRITE) {
			while (p->off < p->out_len) {
				ssize_t n = tls_write(p->tls, p->out + p->off, p->out_len - p->off);

				if (n == TLS_WANT_READ || n == TLS_WANT_WRITE) {
					conn_wait(p, n == TLS_WANT_READ ? EPOLLIN : EPOLLOUT);
					return;
				}
				if (n <= 0) {
					conn_fail(p, "write");
					return;
				}
				p->off += (size_t)n;
			}
			p->state = ST_READ;
			p->have_head = 0;
			p->head_len = 0;
		} else if (p->state == ST_READ) {
			ssize_t n = tls_read(p->tls, scratch, sizeof(scratch));

			if (n == TLS_WANT_READ || n == TLS_WANT_WRITE) {
				conn_wait(p, n == TLS_WANT_READ ? EPOLLIN : EPOLLOUT);
				return;
			}
			if (n <= 0) {
				conn_fail(p, n == 0 ? "closed by the controller" : "read");
				return;
			}
			if (consume(p, scratch, (size_t)n) < 0) {
				conn_fail(p, "unparsable response");
				return;
			}
		} else {
			return;
		}
	}
}

/* runs the loop until deadline_ns or until done() says so (checked every pass) */
static int run_until(int64_t deadline_ns, int (*done)(void))
{
	struct epoll_event evs[256];

	for (;;) {
		int64_t now = now_ns();
		int i, n;

		/* start more proxies while few handshakes are in flight */
		while (next_start < n_proxies && in_handshake < max_hs) {
			struct sim_proxy *p = &P[next_start++];

			p->open_ns = now;
			if (conn_open(p) < 0)
				conn_fail(p, "connect");
		}
		if (done())
			return 1;
		if (now >= deadline_ns)
			return 0;
		n = epoll_wait(ep, evs, 256, 5);
		for (i = 0; i < n; i++)
			conn_step(evs[i].data.ptr);
	}
}

/* ------------------------------------------------------------------ phases */

static int64_t settle_ns = 300 * 1000000LL;
static const char *round_from;   /* version every proxy held before the edit; NULL = registration */

static int alive_count(void)
{
	int i, n = 0;

	for (i = 0; i < n_proxies; i++)
		n += P[i].state != ST_DEAD;
	return n;
}

/* every live proxy holds one version (not round_from's), and nothing arrived for settle_ns */
static int settled(void)
{
	const char *v = NULL;
	int i;

	if (next_start < n_proxies || now_ns() - last_push_ns < settle_ns)
		return 0;
	for (i = 0; i < n_proxies; i++) {
		if (P[i].state == ST_DEAD)
			continue;
		if (!P[i].lease[0] || !P[i].version[0] || (round_from && !strcmp(P[i].version, round_from)))
			return 0;
		if (!v)
			v = P[i].version;
		else if (strcmp(v, P[i].version))
			return 0;
	}
	return v != NULL;
}

static int all_registered(void)
{
	return n_registered >= alive_count() && next_start >= n_proxies;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double pct(const double *v, size_t n, double q)
{
	size_t i;

	if (!n)
		return -1;
	i = (size_t)(q / 100.0 * (double)n + 0.5);
	if (i > 0)
		i--;
	if (i >= n)
		i = n - 1;
	return v[i];
}

static int usage(void)
{
	fprintf(stderr, "usage: ctlsim -p PORT --crt F --key F --bundle F -n N --mesh PATH [--edit FILE]... "
	        "[--ctl-pid PID] [--services S] [--addr-base PORT] [-C HANDSHAKES] [--settle MS] [--timeout S]\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *crt = NULL, *key = NULL, *bundle = NULL, *mesh = NULL, *edits[SIM_MAX_EDITS];
	int port = 0, ctl_pid = 0, n_edits = 0, i, r;
	double timeout_s = 60;
	char err[512];
	struct rlimit rl;
	int64_t t_start;
	double *lat, sum_p50[SIM_MAX_EDITS], sum_p99[SIM_MAX_EDITS], sum_max[SIM_MAX_EDITS];
	double sum_ctl[SIM_MAX_EDITS], sum_sim[SIM_MAX_EDITS];
	int rounds_ok = 0, rounds_all_updated = 0;
	long hwm_max = -1;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v)
			return usage();
		if (!strcmp(a, "-p"))
			port = atoi(v);
		else if (!strcmp(a, "--crt"))
			crt = v;
		else if (!strcmp(a, "--key"))
			key = v;
		else if (!strcmp(a, "--bundle"))
			bundle = v;
		else if (!strcmp(a, "-n"))
			n_proxies = atoi(v);
		else if (!strcmp(a, "--mesh"))
			mesh = v;
		else if (!strcmp(a, "--edit") && n_edits < SIM_MAX_EDITS)
			edits[n_edits++] = v;
		else if (!strcmp(a, "--ctl-pid"))
			ctl_pid = atoi(v);
		else if (!strcmp(a, "--services"))
			n_services = atoi(v);
		else if (!strcmp(a, "--addr-base"))
			addr_base = atoi(v);
		else if (!strcmp(a, "-C"))
			max_hs = atoi(v);
		else if (!strcmp(a, "--settle"))
			settle_ns = atoll(v) * 1000000LL;
		else if (!strcmp(a, "--timeout"))
			timeout_s = atof(v);
		else
			return usage();
		i++;
	}
	if (port <= 0 || !crt || !key || !bundle || !mesh || n_proxies <= 0 || n_services <= 0 || max_hs <= 0 ||
	    addr_base <= 0 || addr_base + n_proxies > 65535)
		return usage();
	signal(SIGPIPE, SIG_IGN);
	/* one socket per simulated proxy */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)n_proxies + 64) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		if (rl.rlim_cur < (rlim_t)n_proxies + 64) {
			fprintf(stderr, "ctlsim: RLIMIT_NOFILE %llu is too low for %d connections\n",
			        (unsigned long long)rl.rlim_cur, n_proxies);
			return 1;
		}
	}
	if (tls_global_init() < 0) {
		fprintf(stderr, "ctlsim: no entropy\n");
		return 1;
	}
	{
		char *c = read_file(crt), *k = read_file(key), *b = read_file(bundle);

		if (!c || !k || !b || !(creds = tls_creds_new(c, k, b, err, sizeof(err)))) {
			fprintf(stderr, "ctlsim: credentials: %s\n", c && k && b ? err : "cannot read --crt/--key/--bundle");
			return 1;
		}
		free(c);
		free(k);
		free(b);
	}
	memset(&dst, 0, sizeof(dst));
	dst.sin_family = AF_INET;
	dst.sin_port = htons((uint16_t)port);
	dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ep = epoll_create1(EPOLL_CLOEXEC);
	P = calloc((size_t)n_proxies, sizeof(*P));
	lat = calloc((size_t)n_proxies, sizeof(*lat));
	if (ep < 0 || !P || !lat) {
		fprintf(stderr, "ctlsim: out of memory\n");
		return 1;
	}
	for (i = 0; i < n_proxies; i++) {
		P[i].fd = -1;
		P[i].idx = i;
	}

	/* 1. registration: every proxy registered, then all on one version */
	{
		long long c0 = proc_cpu_ms(ctl_pid);
		double s0 = self_cpu_ms();
		int ok_reg, ok_sync;
		int64_t deadline;

		t_start = now_ns();
		deadline = t_start + (int64_t)(timeout_s * 1e9);
		size_t n = 0;

		ok_reg = run_until(deadline, all_registered);
		ok_sync = ok_reg && run_until(deadline, settled);
		/* one registration: connect + handshake + POST, as the controller served it amid the others */
		for (i = 0; i < n_proxies; i++)
			if (P[i].lease_ns)
				lat[n++] = ms(P[i].lease_ns - P[i].open_ns);
		qsort(lat, n, sizeof(*lat), cmp_dbl);
		printf("registration n=%d registered=%d alive=%d reg_ms=%.0f sync_ms=%.0f one_p50_ms=%.0f one_p99_ms=%.0f "
		       "one_max_ms=%.0f ctl_cpu_ms=%lld sim_cpu_ms=%.0f rss_kib=%ld hwm_kib=%ld polls=%llu pushes=%llu "
		       "errors=%llu%s%s\n",
		       n_proxies, n_registered, alive_count(), ok_reg ? ms(last_lease_ns - t_start) : -1.0,
		       ok_sync ? ms(last_push_ns - t_start) : -1.0, pct(lat, n, 50), pct(lat, n, 99), n ? lat[n - 1] : -1.0,
		       proc_cpu_ms(ctl_pid) - c0, self_cpu_ms() - s0,
		       proc_status_kib(ctl_pid, "VmRSS"), proc_status_kib(ctl_pid, "VmHWM"), polls_n, pushes_n, errors_n,
		       first_err[0] ? " first_error=" : "", first_err);
		fflush(stdout);
		if (!ok_sync)
			n_edits = 0;   /* no common version to start from */
	}

	/* 2. one round per edit */
	for (r = 0; r < n_edits; r++) {
		char from[17];
		long long c0, c1;
		double s0, s1;
		int64_t t0;
		size_t n = 0;
		int ok;

		for (i = 0; i < n_proxies && P[i].state == ST_DEAD; i++)
			;
		if (i == n_proxies)
			break;
		memcpy(from, P[i].version, sizeof(from));
		round_from = from;
		c0 = proc_cpu_ms(ctl_pid);
		s0 = self_cpu_ms();
		t0 = now_ns();
		if (rename(edits[r], mesh) < 0) {
			fprintf(stderr, "ctlsim: rename %s -> %s: %s\n", edits[r], mesh, strerror(errno));
			break;
		}
		ok = run_until(t0 + (int64_t)(timeout_s * 1e9), settled);
		c1 = proc_cpu_ms(ctl_pid);
		s1 = self_cpu_ms();
		for (i = 0; i < n_proxies; i++)
			if (P[i].state != ST_DEAD && strcmp(P[i].version, from) && P[i].got_ns >= t0)
				lat[n++] = ms(P[i].got_ns - t0);
		qsort(lat, n, sizeof(*lat), cmp_dbl);
		sum_p50[rounds_ok] = pct(lat, n, 50);
		sum_p99[rounds_ok] = pct(lat, n, 99);
		sum_max[rounds_ok] = n ? lat[n - 1] : -1;
		sum_ctl[rounds_ok] = c0 >= 0 && c1 >= 0 ? (double)(c1 - c0) : -1;
		sum_sim[rounds_ok] = s1 - s0;
		if (proc_status_kib(ctl_pid, "VmHWM") > hwm_max)
			hwm_max = proc_status_kib(ctl_pid, "VmHWM");
		printf("round=%d updated=%zu of=%d settled=%d from=%s to=%s p50_ms=%.1f p99_ms=%.1f max_ms=%.1f min_ms=%.1f "
		       "ctl_cpu_ms=%.0f sim_cpu_ms=%.0f rss_kib=%ld hwm_kib=%ld errors=%llu\n",
		       r + 1, n, n_proxies, ok, from, P[0].version, sum_p50[rounds_ok], sum_p99[rounds_ok], sum_max[rounds_ok],
		       n ? lat[0] : -1.0, sum_ctl[rounds_ok], sum_sim[rounds_ok], proc_status_kib(ctl_pid, "VmRSS"),
		       proc_status_kib(ctl_pid, "VmHWM"), errors_n);
		fflush(stdout);
		rounds_all_updated += (int)n == n_proxies;
		rounds_ok++;
		round_from = NULL;
	}

	/* the summary: medians over the rounds, and the worst max */
	{
		double m50, m99, mmax, mctl, msim, worst = -1;

		for (i = 0; i < rounds_ok; i++)
			if (sum_max[i] > worst)
				worst = sum_max[i];
		qsort(sum_p50, (size_t)rounds_ok, sizeof(double), cmp_dbl);
		qsort(sum_p99, (size_t)rounds_ok, sizeof(double), cmp_dbl);
		qsort(sum_max, (size_t)rounds_ok, sizeof(double), cmp_dbl);
		qsort(sum_ctl, (size_t)rounds_ok, sizeof(double), cmp_dbl);
		qsort(sum_sim, (size_t)rounds_ok, sizeof(double), cmp_dbl);
		m50 = pct(sum_p50, (size_t)rounds_ok, 50);
		m99 = pct(sum_p99, (size_t)rounds_ok, 50);
		mmax = pct(sum_max, (size_t)rounds_ok, 50);
		mctl = pct(sum_ctl, (size_t)rounds_ok, 50);
		msim = pct(sum_sim, (size_t)rounds_ok, 50);
		printf("ctlsim n=%d rounds=%d rounds_all_updated=%d p50_ms=%.1f p99_ms=%.1f max_ms=%.1f worst_max_ms=%.1f "
		       "ctl_cpu_ms=%.0f sim_cpu_ms=%.0f rss_kib=%ld hwm_kib=%ld errors=%llu%s%s\n",
		       n_proxies, rounds_ok, rounds_all_updated, m50, m99, mmax, worst, mctl, msim,
		       proc_status_kib(ctl_pid, "VmRSS"), hwm_max > proc_status_kib(ctl_pid, "VmHWM") ? hwm_max :
		       proc_status_kib(ctl_pid, "VmHWM"), errors_n, first_err[0] ? " first_error=" : "", first_err);
	}
	for (i = 0; i < n_proxies; i++)
		if (P[i].fd >= 0)
			conn_close(&P[i]);
	free(P);
	free(lat);
	tls_creds_unref(creds);
	return 0;
}
