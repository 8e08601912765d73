/*
 * tap: the proxy's /tap streams and the `mesh tap` / `mesh top` clients
 * (tap.h). Proxy side: at most TAP_MAX_SUBS subscribers, each with its
 * filters and a token bucket; a line that does not fit (rate, or a slow
 * reader: admin.c bounds what may wait) is dropped and counted.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "conf.h"
#include "net.h"
#include "tap.h"

#define TAP_MAX_SUBS    8
#define TAP_DEFAULT_RPS 100
#define TAP_MAX_RPS     1000

struct tap_sub {
	struct admin_stream *s;
	char service[128], path[256], method[16];
	double rps, tokens, last;
	unsigned long long sent, dropped;
	int used;
};

static struct tap_sub subs[TAP_MAX_SUBS];
int tap_subscribers;

/* ------------------------------------------------------------------ proxy side */

static void sub_closed(void *arg)
{
	struct tap_sub *t = arg;

	t->used = 0;
	t->s = NULL;
	tap_subscribers--;
}

/* query parameter name's value, percent-decoded into out; 1 found, 0 not, -1 too long */
static int param(const char *target, size_t len, const char *name, char *out, size_t cap)
{
	const char *q = memchr(target, '?', len), *end = target + len;
	size_t nl = strlen(name);

	while (q && q < end) {
		const char *k = q + 1, *amp = memchr(k, '&', (size_t)(end - k)), *stop = amp ? amp : end;

		if ((size_t)(stop - k) > nl && !memcmp(k, name, nl) && k[nl] == '=') {
			const char *v = k + nl + 1;
			size_t o = 0;

			for (; v < stop; v++) {
				int c = (unsigned char)*v;
				unsigned hi, lo;

				if (c == '%' && stop - v >= 3 && sscanf(v + 1, "%1x%1x", &hi, &lo) == 2) {
					c = (int)(hi * 16 + lo);
					v += 2;
				} else if (c == '+') {
					c = ' ';
				}
				if (o + 1 >= cap)
					return -1;
				out[o++] = (char)c;
			}
			out[o] = '\0';
			return 1;
		}
		q = amp;
	}
	out[0] = '\0';
	return 0;
}

int tap_admin(int enabled, const char *target, size_t len, struct strbuf *body, double now)
{
	struct tap_sub *t = NULL;
	char rps[16];
	size_t i;
	long r = TAP_DEFAULT_RPS;

	if (!enabled) {
		strbuf_puts(body, "tap is off on this proxy: set [proxy] tap = on in its file (docs/config.md) and reload it\n");
		return 403;
	}
	for (i = 0; i < TAP_MAX_SUBS && !t; i++)
		if (!subs[i].used)
			t = &subs[i];
	if (!t) {
		strbuf_printf(body, "already %d tap streams on this proxy; try again later\n", TAP_MAX_SUBS);
		return 429;
	}
	memset(t, 0, sizeof(*t));
	if (param(target, len, "service", t->service, sizeof(t->service)) < 0 ||
	    param(target, len, "path", t->path, sizeof(t->path)) < 0 ||
	    param(target, len, "method", t->method, sizeof(t->method)) < 0 ||
	    param(target, len, "rps", rps, sizeof(rps)) < 0) {
		strbuf_puts(body, "a parameter is too long\n");
		return 400;
	}
	if (rps[0]) {
		char *e;

		r = strtol(rps, &e, 10);
		if (*e || r < 1 || r > TAP_MAX_RPS) {
			strbuf_printf(body, "rps: a number of lines per second, 1..%d\n", TAP_MAX_RPS);
			return 400;
		}
	}
	if (!(t->s = admin_stream_begin(sub_closed, t))) {
		strbuf_puts(body, "GET /tap?service=S&path=PREFIX&method=M&rps=N\n");
		return 400;
	}
	t->used = 1;
	t->rps = (double)r;
	t->tokens = (double)r;
	t->last = now;
	tap_subscribers++;
	return 200;
}

/* appends " key=value" with value made one printable token ("-" when empty) */
static void put(char *line, size_t cap, size_t *o, const char *key, const char *v)
{
	size_t n = *o;
	int w = snprintf(line + n, n < cap ? cap - n : 0, " %s=", key);

	if (w < 0 || n + (size_t)w >= cap)
		return;
	n += (size_t)w;
	if (!v || !*v)
		v = "-";
	for (; *v && n + 1 < cap; v++)
		line[n++] = (*v <= ' ' || *v > '~') ? '?' : *v;
	line[n] = '\0';
	*o = n;
}

void tap_publish(const struct tap_event *e, double now)
{
	char line[2048];
	size_t i, o = 0;
	int built = 0;

	for (i = 0; i < TAP_MAX_SUBS; i++) {
		struct tap_sub *t = &subs[i];

		if (!t->used)
			continue;
		if ((t->service[0] && (!e->service || strcmp(t->service, e->service))) ||
		    (t->method[0] && (!e->method || strcasecmp(t->method, e->method))) ||
		    (t->path[0] && (!e->path || strncmp(t->path, e->path, strlen(t->path)))))
			continue;
		t->tokens += (now - t->last) * t->rps;
		t->last = now;
		if (t->tokens > t->rps)
			t->tokens = t->rps;
		if (t->tokens < 1) {
			t->dropped++;
			continue;
		}
		t->tokens -= 1;
		if (!built) {
			char num[64];

			o = (size_t)snprintf(line, sizeof(line), "dir=%s", e->inbound ? "inbound" : "outbound");
			put(line, sizeof(line), &o, "id", e->request_id);
			put(line, sizeof(line), &o, "src", e->src);
			put(line, sizeof(line), &o, "src_id", e->src_id);
			put(line, sizeof(line), &o, "dst", e->dst);
			put(line, sizeof(line), &o, "dst_id", e->dst_id);
			put(line, sizeof(line), &o, "svc", e->service);
			put(line, sizeof(line), &o, ":method", e->method);
			put(line, sizeof(line), &o, ":authority", e->authority);
			put(line, sizeof(line), &o, ":path", e->path);
			snprintf(num, sizeof(num), "%d", e->status);
			put(line, sizeof(line), &o, ":status", num);
			snprintf(num, sizeof(num), "%.3f", e->latency_ms);
			put(line, sizeof(line), &o, "latency_ms", num);
			put(line, sizeof(line), &o, "flags", e->flags);
			snprintf(num, sizeof(num), "%llu", e->bytes_in);
			put(line, sizeof(line), &o, "bytes_in", num);
			snprintf(num, sizeof(num), "%llu", e->bytes_out);
			put(line, sizeof(line), &o, "bytes_out", num);
			if (o + 1 < sizeof(line))
				line[o++] = '\n';
			built = 1;
		}
		if (admin_stream_write(t->s, line, o) < 0)
			t->dropped++;
		else
			t->sent++;
	}
}

/* ------------------------------------------------------------------ mesh tap / mesh top */

struct source {
	char name[160];
	char admin[80];
	int fd;
	int head;                /* the response head was read */
	char buf[16384];
	size_t len;
};

struct opts {
	const char *service, *path, *method, *ctl, *conf;
	const char *admins[64];
	int n_admins;
	long max, rps;
	double duration;
};

static volatile sig_atomic_t stop_flag;

static void on_sig(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* connects to addr (HOST:PORT) within 3 s, blocking afterwards; -1 */
static int dial(const char *addr)
{
	struct conf_addr a;
	int fd, inprog = 0, fl;

	if (conf_parse_addr(addr, &a, 1) < 0)
		return -1;
	fd = net_connect((struct sockaddr *)&a.ss, a.len, &inprog);
	if (fd >= 0 && inprog) {
		struct pollfd p = { fd, POLLOUT, 0 };

		if (poll(&p, 1, 3000) != 1 || net_connect_result(fd) != 0) {
			close(fd);
			return -1;
		}
	}
	if (fd >= 0 && (fl = fcntl(fd, F_GETFL)) >= 0)
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	return fd;
}

/* GET path from addr: the body (malloc'd) of a 200, else NULL */
static char *get(const char *addr, const char *path)
{
	char req[512], *buf = NULL, *body;
	size_t len = 0, cap = 0;
	int fd = dial(addr);
	struct timeval tv = { 5, 0 };

	if (fd < 0)
		return NULL;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, addr);
	if (write(fd, req, strlen(req)) < 0) {
		close(fd);
		return NULL;
	}
	for (;;) {
		ssize_t n;

		if (len + 4096 + 1 > cap) {
			char *nb = cap < (16u << 20) ? realloc(buf, cap ? cap * 2 : 65536) : NULL;

			if (!nb)
				break;
			buf = nb;
			cap = cap ? cap * 2 : 65536;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (!buf)
		return NULL;
	buf[len] = '\0';
	if (strncmp(buf, "HTTP/1.1 200", 12) || !(body = strstr(buf, "\r\n\r\n"))) {
		free(buf);
		return NULL;
	}
	memmove(buf, body + 4, strlen(body + 4) + 1);
	return buf;
}

/* the next JSON string value after key in s (our own /proxies.json: flat, escaped) */
static const char *json_value(const char *s, const char *key, char *out, size_t cap)
{
	char pat[64];
	const char *p;
	size_t o = 0;

	snprintf(pat, sizeof(pat), "\"%s\":\"", key);
	if (!(p = strstr(s, pat)))
		return NULL;
	for (p += strlen(pat); *p && *p != '"'; p++) {
		if (*p == '\\' && p[1])
			p++;
		if (o + 1 < cap)
			out[o++] = *p;
	}
	out[o] = '\0';
	return p;
}

static int usage(FILE *f, int top)
{
	fprintf(f, "usage: mesh %s SERVICE [--path PREFIX] [--method M] [--rps N] [--duration S]%s\n"
	           "       [-c mesh.ini | --controller HOST:PORT | --admin HOST:PORT ...]\n\n"
	           "%s\n"
	           "Proxies: every proxy registered with the controller (its admin address from\n"
	           "[controller] admin in -c mesh.ini, default 127.0.0.1:15014), or the proxy admin\n"
	           "listeners given with --admin. A proxy serves /tap only with [proxy] tap = on; each\n"
	           "stream is limited to --rps lines per second (default %d, excess dropped).\n",
	        top ? "top" : "tap", top ? "" : " [--max N]",
	        top ? "Live requests to SERVICE grouped by direction, method and path: count, success\n"
	              "rate, best / worst / last latency; redrawn every second on a terminal, printed once\n"
	              "at the end otherwise (Ctrl-C or --duration)."
	            : "Prints requests to SERVICE as the proxies finish them, one line each, prefixed by\n"
	              "the proxy: direction, request id, source and destination with their identities,\n"
	              "method, authority, path, status, latency, flags. Ctrl-C, --max or --duration stop it.",
	        TAP_DEFAULT_RPS);
	return f == stdout ? 0 : 2;
}

static int parse_opts(int argc, char **argv, struct opts *o, int top)
{
	int i;

	memset(o, 0, sizeof(*o));
	o->rps = TAP_DEFAULT_RPS;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "-h") || !strcmp(a, "--help"))
			return usage(stdout, top) - 1;
		if (a[0] != '-') {
			if (o->service) {
				fprintf(stderr, "mesh %s: one SERVICE only ('%s')\n", top ? "top" : "tap", a);
				return usage(stderr, top);
			}
			o->service = a;
			continue;
		}
		if (!v) {
			fprintf(stderr, "mesh %s: %s needs a value\n", top ? "top" : "tap", a);
			return usage(stderr, top);
		}
		i++;
		if (!strcmp(a, "--path"))
			o->path = v;
		else if (!strcmp(a, "--method"))
			o->method = v;
		else if (!strcmp(a, "-c"))
			o->conf = v;
		else if (!strcmp(a, "--controller"))
			o->ctl = v;
		else if (!strcmp(a, "--admin") && o->n_admins < 64)
			o->admins[o->n_admins++] = v;
		else if (!strcmp(a, "--max") && !top)
			o->max = atol(v);
		else if (!strcmp(a, "--rps"))
			o->rps = atol(v);
		else if (!strcmp(a, "--duration"))
			o->duration = atof(v);
		else {
			fprintf(stderr, "mesh %s: unknown argument '%s'\n", top ? "top" : "tap", a);
			return usage(stderr, top);
		}
	}
	if (!o->service) {
		fprintf(stderr, "mesh %s: which SERVICE?\n", top ? "top" : "tap");
		return usage(stderr, top);
	}
	if (o->rps < 1 || o->rps > TAP_MAX_RPS) {
		fprintf(stderr, "mesh %s: --rps 1..%d\n", top ? "top" : "tap", TAP_MAX_RPS);
		return 2;
	}
	return -1;  /* go on */
}

/* the proxies to tap: --admin, or the controller's registry */
static int sources(const struct opts *o, struct source **out)
{
	struct source *v;
	char ctl[80], *js;
	const char *p;
	int n = 0, cap = 0, i;

	if (o->n_admins) {
		if (!(v = calloc((size_t)o->n_admins, sizeof(*v))))
			return -1;
		for (i = 0; i < o->n_admins; i++) {
			snprintf(v[i].name, sizeof(v[i].name), "%s", o->admins[i]);
			snprintf(v[i].admin, sizeof(v[i].admin), "%s", o->admins[i]);
			v[i].fd = -1;
		}
		*out = v;
		return o->n_admins;
	}
	snprintf(ctl, sizeof(ctl), "%s", o->ctl ? o->ctl : "127.0.0.1:15014");
	if (o->conf) {
		char err[2048];
		struct conf *cf = conf_load(o->conf, err, sizeof(err));

		if (!cf) {
			fprintf(stderr, "%s\n", err);
			return -1;
		}
		if (cf->controller.admin.set)
			snprintf(ctl, sizeof(ctl), "%s", cf->controller.admin.text);
		conf_unref(cf);
	}
	if (!(js = get(ctl, "/proxies.json"))) {
		fprintf(stderr, "cannot read the registry from the controller's admin listener at %s (is `mesh up` or "
		        "`mesh controller` running? or name proxies with --admin)\n", ctl);
		return -1;
	}
	v = NULL;
	for (p = strstr(js, "{\"name\":\""); p; p = strstr(p + 1, "{\"name\":\"")) {
		char name[160], admin[80];
		const char *next = strstr(p + 1, "{\"name\":\""), *q;

		if (!json_value(p, "name", name, sizeof(name)) || !(q = json_value(p, "admin", admin, sizeof(admin))) ||
		    (next && q > next) || !admin[0])
			continue;
		if (n == cap) {
			struct source *nv = realloc(v, (size_t)(cap = cap ? cap * 2 : 16) * sizeof(*v));

			if (!nv)
				break;
			v = nv;
		}
		memset(&v[n], 0, sizeof(v[n]));
		snprintf(v[n].name, sizeof(v[n].name), "%s", name);
		snprintf(v[n].admin, sizeof(v[n].admin), "%s", admin);
		v[n++].fd = -1;
	}
	free(js);
	if (!n) {
		fprintf(stderr, "no proxy with an admin listener is registered at %s\n", ctl);
		free(v);
		return -1;
	}
	*out = v;
	return n;
}

static void urlenc(char *out, size_t cap, const char *s)
{
	size_t o = 0;

	for (; s && *s && o + 4 < cap; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("-._~/", c))
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, cap - o, "%%%02X", c);
	}
	out[o] = '\0';
}

/* ---- mesh top's table */

struct row {
	char dir[10], method[16], path[200];
	unsigned long n, ok;
	double best, worst, last;
};

struct table {
	struct row *v;
	size_t n, cap;
};

/* the value of " key=" in a tap line, copied into out */
static int field(const char *line, const char *key, char *out, size_t cap)
{
	char pat[40];
	const char *p;
	size_t o = 0;

	snprintf(pat, sizeof(pat), " %s=", key);
	if (!strncmp(line, pat + 1, strlen(pat + 1)))
		p = line + strlen(pat + 1);
	else if ((p = strstr(line, pat)))
		p += strlen(pat);
	else
		return 0;
	while (*p && *p != ' ' && *p != '\n' && o + 1 < cap)
		out[o++] = *p++;
	out[o] = '\0';
	return 1;
}

static void table_add(struct table *t, const char *line)
{
	char dir[10], method[16], path[200], st[8], lat[32];
	struct row *r = NULL;
	size_t i;
	double l;

	if (!field(line, "dir", dir, sizeof(dir)) || !field(line, ":method", method, sizeof(method)) ||
	    !field(line, ":path", path, sizeof(path)) || !field(line, ":status", st, sizeof(st)) ||
	    !field(line, "latency_ms", lat, sizeof(lat)))
		return;
	{
		char *q = strchr(path, '?');

		if (q)
			*q = '\0';
	}
	for (i = 0; i < t->n; i++)
		if (!strcmp(t->v[i].dir, dir) && !strcmp(t->v[i].method, method) && !strcmp(t->v[i].path, path))
			r = &t->v[i];
	if (!r) {
		if (t->n == t->cap) {
			struct row *nv = realloc(t->v, (t->cap = t->cap ? t->cap * 2 : 16) * sizeof(*nv));

			if (!nv)
				return;
			t->v = nv;
		}
		r = &t->v[t->n++];
		memset(r, 0, sizeof(*r));
		snprintf(r->dir, sizeof(r->dir), "%s", dir);
		snprintf(r->method, sizeof(r->method), "%s", method);
		snprintf(r->path, sizeof(r->path), "%s", path);
		r->best = 1e18;
	}
	l = atof(lat);
	r->n++;
	r->ok += atoi(st) < 500 && atoi(st) > 0;
	if (l < r->best)
		r->best = l;
	if (l > r->worst)
		r->worst = l;
	r->last = l;
}

static int row_cmp(const void *a, const void *b)
{
	const struct row *x = a, *y = b;

	return x->n < y->n ? 1 : x->n > y->n ? -1 : strcmp(x->path, y->path);
}

static void table_print(struct table *t, const char *service, int clear)
{
	size_t i;

	qsort(t->v, t->n, sizeof(*t->v), row_cmp);
	if (clear)
		printf("\033[H\033[2J");
	printf("requests to %s\n%-9s %-7s %-40s %7s %8s %10s %10s %10s\n", service, "DIR", "METHOD", "PATH", "COUNT",
	       "SUCCESS", "BEST", "WORST", "LAST");
	for (i = 0; i < t->n; i++) {
		const struct row *r = &t->v[i];

		printf("%-9s %-7s %-40s %7lu %7.1f%% %8.2fms %8.2fms %8.2fms\n", r->dir, r->method, r->path, r->n,
		       100.0 * (double)r->ok / (double)r->n, r->best, r->worst, r->last);
	}
	fflush(stdout);
}

static int run(int argc, char **argv, int top)
{
	struct opts o;
	struct source *src = NULL;
	struct pollfd *pf;
	struct table tab = { 0 };
	char target[1024], s1[300], s2[600], s3[64];
	int n, i, open_n = 0, rc;
	long lines = 0;
	double t0 = mono(), next_draw = t0 + 1;
	int tty = isatty(1);

	if ((rc = parse_opts(argc, argv, &o, top)) >= 0)
		return rc;
	if ((n = sources(&o, &src)) < 0)
		return 1;
	urlenc(s1, sizeof(s1), o.service);
	urlenc(s2, sizeof(s2), o.path);
	urlenc(s3, sizeof(s3), o.method);
	snprintf(target, sizeof(target), "/tap?service=%s%s%s%s%s&rps=%ld", s1, o.path ? "&path=" : "", s2,
	         o.method ? "&method=" : "", s3, o.rps);
	signal(SIGINT, on_sig);
	signal(SIGTERM, on_sig);
	signal(SIGPIPE, SIG_IGN);
	if (!(pf = calloc((size_t)n, sizeof(*pf))))
		return 1;
	for (i = 0; i < n; i++) {
		char req[1200];

		src[i].fd = dial(src[i].admin);
		snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, src[i].admin);
		if (src[i].fd < 0 || write(src[i].fd, req, strlen(req)) < 0) {
			fprintf(stderr, "%s: cannot reach its admin listener at %s\n", src[i].name, src[i].admin);
			if (src[i].fd >= 0)
				close(src[i].fd);
			src[i].fd = -1;
			continue;
		}
		open_n++;
	}
	while (open_n > 0 && !stop_flag) {
		double now = mono();
		int wait = 200;

		if (o.duration > 0 && now - t0 >= o.duration)
			break;
		for (i = 0; i < n; i++) {
			pf[i].fd = src[i].fd;
			pf[i].events = POLLIN;
			pf[i].revents = 0;
		}
		if (poll(pf, (nfds_t)n, wait) < 0 && errno != EINTR)
			break;
		for (i = 0; i < n; i++) {
			struct source *s = &src[i];
			ssize_t r;
			char *nl;

			if (s->fd < 0 || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			r = read(s->fd, s->buf + s->len, sizeof(s->buf) - 1 - s->len);
			if (r <= 0) {
				if (!s->head && s->len) {
					char *b = strstr(s->buf, "\r\n\r\n");

					s->buf[s->len] = '\0';
					fprintf(stderr, "%s: %s", s->name, b ? b + 4 : s->buf);
				}
				close(s->fd);
				s->fd = -1;
				open_n--;
				continue;
			}
			s->len += (size_t)r;
			s->buf[s->len] = '\0';
			if (!s->head) {
				char *b = strstr(s->buf, "\r\n\r\n");

				if (!b)
					continue;
				if (strncmp(s->buf, "HTTP/1.1 200", 12)) {
					continue;  /* an error: its body is printed when the proxy closes */
				}
				s->head = 1;
				s->len -= (size_t)(b + 4 - s->buf);
				memmove(s->buf, b + 4, s->len + 1);
			}
			while ((nl = memchr(s->buf, '\n', s->len))) {
				*nl = '\0';
				if (top) {
					table_add(&tab, s->buf);
				} else {
					printf("%s %s\n", s->name, s->buf);
					fflush(stdout);
					lines++;
				}
				s->len -= (size_t)(nl + 1 - s->buf);
				memmove(s->buf, nl + 1, s->len + 1);
				if (o.max && lines >= o.max)
					goto done;
			}
			if (s->len == sizeof(s->buf) - 1)
				s->len = 0;  /* a line longer than the buffer: dropped */
		}
		if (top && tty && mono() >= next_draw) {
			table_print(&tab, o.service, 1);
			next_draw = mono() + 1;
		}
	}
done:
	if (top)
		table_print(&tab, o.service, 0);
	for (i = 0, rc = 1; i < n; i++)
		if (src[i].head)
			rc = 0;            /* at least one proxy streamed */
	for (i = 0; i < n; i++)
		if (src[i].fd >= 0)
			close(src[i].fd);
	free(pf);
	free(src);
	free(tab.v);
	return rc;
}

int tap_main(int argc, char **argv)
{
	return run(argc, argv, 0);
}

int top_main(int argc, char **argv)
{
	return run(argc, argv, 1);
}
