/*
 * watch: the proxy side of the controller protocol (watch.h).
 *
 * One thread, one kept-alive mTLS connection to the controller, blocking I/O
 * with deadlines (never on the data path). The loop hears of a new snapshot
 * through a mailbox and an ev_async, like the agent's renewed identities.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ev.h"

#include "controller.h"
#include "http1.h"
#include "log.h"
#include "net.h"
#include "watch.h"

#define WATCH_MAX_RESPONSE  (16u << 20)
#define WATCH_BACKOFF_MIN   0.5     /* seconds */
#define WATCH_BACKOFF_MAX   5.0     /* x jitter up to 1.5: back within 7.5 s of a controller restart */
#define WATCH_CONNECT_MS    5000

static struct {
	pthread_t thread;
	int running;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int stop, dereg, dereg_started, exited;
	int wakefd;                  /* eventfd: interrupts a wait */
	struct ev_loop *loop;
	ev_async async;
	watch_update_fn on_update;
	void *arg;
	struct tls_creds *creds;     /* under lock */
	/* what the thread needs, copied from the conf */
	struct conf_addr ctl;
	char *path, *snapshot_file;
	char expect[600];            /* the controller's SPIFFE id */
	char reg[1400];              /* the registration body */
	/* thread state */
	int fd;
	struct tls_conn *tls;
	char lease[17], version[17], rejected[17], why[300];
	double ttl;
	/* mailbox (under lock) */
	struct conf *mb_cf;
	char *mb_text;
	char mb_version[17];
	char last_err[512];
} W = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER, .fd = -1, .wakefd = -1 };

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double jitter(void)                /* uniform in [0.5, 1.5) */
{
	unsigned r = 0;

	tls_random(&r, sizeof(r));
	return 0.5 + (double)r / 4294967296.0;
}

static int interrupted(void)
{
	int v;

	pthread_mutex_lock(&W.lock);
	v = W.stop || W.dereg;
	pthread_mutex_unlock(&W.lock);
	return v;
}

/* waits for fd (POLLIN/POLLOUT) until deadline: 0; -1 timeout; -2 interrupted */
static int wait_fd(int fd, short ev, long long deadline)
{
	for (;;) {
		struct pollfd pf[2] = { { fd, ev, 0 }, { W.wakefd, POLLIN, 0 } };
		long long left = deadline - now_ms();
		int rc;

		if (interrupted())
			return -2;
		if (left <= 0)
			return -1;
		rc = poll(pf, 2, (int)(left > 1000 ? 1000 : left));
		if (rc > 0 && pf[1].revents)
			return -2;
		if (rc > 0)
			return 0;
		if (rc < 0 && errno != EINTR)
			return -1;
	}
}

/* sleeps s seconds unless interrupted: 1 when interrupted */
static int nap(double s)
{
	struct pollfd pf = { W.wakefd, POLLIN, 0 };
	long long end = now_ms() + (long long)(s * 1000);

	while (!interrupted()) {
		long long left = end - now_ms();

		if (left <= 0)
			return 0;
		poll(&pf, 1, (int)(left > 1000 ? 1000 : left));
	}
	return 1;
}

static void disconnect(void)
{
	tls_free(W.tls);
	W.tls = NULL;
	if (W.fd >= 0)
		close(W.fd);
	W.fd = -1;
}

static int connect_ctl(char *err, size_t errlen)
{
	long long deadline = now_ms() + WATCH_CONNECT_MS;
	const char *ids[1] = { W.expect };
	struct tls_creds *cr;
	int inprog = 0, r;

	W.fd = net_connect((const struct sockaddr *)&W.ctl.ss, W.ctl.len, &inprog);
	if (W.fd < 0) {
		snprintf(err, errlen, "controller %s: %s", W.ctl.text, strerror(errno));
		return -1;
	}
	if (inprog) {
		if ((r = wait_fd(W.fd, POLLOUT, deadline)) < 0 || (r = net_connect_result(W.fd)) != 0) {
			snprintf(err, errlen, "controller %s: %s (is `mesh controller` or `mesh up` running?)", W.ctl.text,
			         r > 0 ? strerror(r) : "connect timed out");
			disconnect();
			return -1;
		}
	}
	pthread_mutex_lock(&W.lock);
	cr = tls_creds_ref(W.creds);
	pthread_mutex_unlock(&W.lock);
	W.tls = tls_client_lean(cr, W.fd, ids, 1, "mesh-controller");
	tls_creds_unref(cr);
	if (!W.tls) {
		snprintf(err, errlen, "out of memory");
		disconnect();
		return -1;
	}
	while ((r = tls_handshake(W.tls)) != 0) {
		if (r == TLS_ERR) {
			snprintf(err, errlen, "controller %s: TLS: %s (it must present %s)", W.ctl.text, tls_error(W.tls), W.expect);
			disconnect();
			return -1;
		}
		if (wait_fd(W.fd, r == TLS_WANT_READ ? POLLIN : POLLOUT, deadline) < 0) {
			snprintf(err, errlen, "controller %s: TLS handshake timed out", W.ctl.text);
			disconnect();
			return -1;
		}
	}
	return 0;
}

/*
 * One request on the connection (made first if needed). 0 with the status,
 * X-Mesh-Version and a malloc'd body; -1 with err (the connection is closed);
 * -2 when interrupted.
 */
static int request(const char *method, const char *target, const char *body, double timeout_s, int *status,
                   char ver[17], char **out, char *err, size_t errlen)
{
	char head[1024];
	size_t hl, bl = body ? strlen(body) : 0, off = 0, len = 0, cap = 8192;
	long long deadline;
	char *buf = NULL, *req;
	int rc = -1;

	*out = NULL;
	ver[0] = '\0';
	if (W.fd < 0 && connect_ctl(err, errlen) < 0)
		return interrupted() ? -2 : -1;
	deadline = now_ms() + (long long)(timeout_s * 1000);
	hl = (size_t)snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %zu\r\n\r\n", method,
	                      target, W.ctl.text, bl);
	if (!(req = malloc(hl + bl + 1)))
		goto fail;
	memcpy(req, head, hl);
	if (bl)
		memcpy(req + hl, body, bl);
	while (off < hl + bl) {
		ssize_t n = tls_write(W.tls, req + off, hl + bl - off);
		int w;

		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n == TLS_ERR || n == 0 || (w = wait_fd(W.fd, n == TLS_WANT_READ ? POLLIN : POLLOUT, deadline)) < 0) {
			free(req);
			if (n != TLS_ERR && n != 0 && w == -2) {
				rc = -2;
				goto fail;
			}
			snprintf(err, errlen, "controller %s: sending: %s", W.ctl.text, n == TLS_ERR ? tls_error(W.tls) : "timed out");
			goto fail;
		}
	}
	free(req);
	if (!(buf = malloc(cap + 1)))
		goto fail;
	for (;;) {
		struct http1_header hdrs[32];
		static const struct http1_limits lim = { 8192, 16384, 32 };
		struct http1_msg m;
		ssize_t n;
		int hd, w;

		memset(&m, 0, sizeof(m));
		hd = http1_parse_response(buf, len, &m, hdrs, &lim, 0);
		if (hd > 0 && (m.body == HTTP1_BODY_NONE ||
		               (m.body == HTTP1_BODY_LENGTH && len >= (size_t)hd + m.content_length))) {
			int vi = http1_find_header(&m, "x-mesh-version");
			size_t blen = m.body == HTTP1_BODY_NONE ? 0 : (size_t)m.content_length;

			*status = m.status;
			if (vi >= 0)
				snprintf(ver, 17, "%.*s", (int)(hdrs[vi].value_len < 16 ? hdrs[vi].value_len : 16), hdrs[vi].value);
			memmove(buf, buf + hd, blen);
			buf[blen] = '\0';
			*out = buf;
			if (m.flags & HTTP1_F_CONN_CLOSE)
				disconnect();
			return 0;
		}
		if (hd == -1 || (hd > 0 && m.body == HTTP1_BODY_CHUNKED) ||
		    (hd > 0 && m.content_length > WATCH_MAX_RESPONSE)) {
			snprintf(err, errlen, "controller %s: an answer this proxy does not understand", W.ctl.text);
			goto fail;
		}
		if (len == cap) {
			char *nb;

			if (cap >= WATCH_MAX_RESPONSE + 16384 || !(nb = realloc(buf, cap * 2 + 1)))
				goto fail;
			buf = nb;
			cap *= 2;
		}
		n = tls_read(W.tls, buf + len, cap - len);
		if (n > 0) {
			len += (size_t)n;
			continue;
		}
		if (n == 0 || n == TLS_ERR) {
			snprintf(err, errlen, "controller %s: connection closed (%s)", W.ctl.text, n ? tls_error(W.tls) : "EOF");
			goto fail;
		}
		if ((w = wait_fd(W.fd, n == TLS_WANT_READ ? POLLIN : POLLOUT, deadline)) < 0) {
			if (w == -2)
				rc = -2;
			else
				snprintf(err, errlen, "controller %s: no answer in time", W.ctl.text);
			goto fail;
		}
	}
fail:
	free(buf);
	disconnect();
	return rc;
}

/* ------------------------------------------------------------------ snapshots */

char *watch_read_snapshot(const char *path, char version[17])
{
	FILE *f = fopen(path, "r");
	char *text = NULL;
	size_t len = 0;
	long sz;

	version[0] = '\0';
	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (sz = ftell(f)) > 0 && sz < (long)WATCH_MAX_RESPONSE && fseek(f, 0, SEEK_SET) == 0 &&
	    (text = malloc((size_t)sz + 1)))
		len = fread(text, 1, (size_t)sz, f);
	fclose(f);
	if (!text)
		return NULL;
	text[len] = '\0';
	/* the first line: "; mesh snapshot VERSION ..." */
	if (sscanf(text, "; mesh snapshot %16[0-9a-f]", version) != 1) {
		free(text);
		version[0] = '\0';
		return NULL;
	}
	return text;
}

static void persist(const char *version, const char *text)
{
	char tmp[4200];
	FILE *f;

	if (!W.snapshot_file)
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", W.snapshot_file);
	if (!(f = fopen(tmp, "w"))) {
		log_warn("snapshot_file %s: %s", tmp, strerror(errno));
		return;
	}
	fprintf(f, "; mesh snapshot %s from controller %s (written by the proxy; it starts from this file when the "
	        "controller is away)\n%s", version, W.ctl.text, text);
	if (fclose(f) != 0 || rename(tmp, W.snapshot_file) != 0) {
		log_warn("snapshot_file %s: %s", W.snapshot_file, strerror(errno));
		unlink(tmp);
	}
}

static void accept_snapshot(const char *version, char *text)
{
	char name[64], err[4096];
	struct conf *cf;

	snprintf(name, sizeof(name), "snapshot %s", version);
	cf = conf_load_with_mesh(W.path, name, text, err, sizeof(err));
	if (!cf) {
		char *nl = strchr(err, '\n');

		log_error("snapshot %s from the controller refused, keeping the running configuration:\n%s", version, err);
		snprintf(W.rejected, sizeof(W.rejected), "%s", version);
		snprintf(W.why, sizeof(W.why), "%.*s", nl ? (int)(nl - err) : (int)strlen(err), err);
		free(text);
		return;
	}
	W.rejected[0] = W.why[0] = '\0';
	snprintf(W.version, sizeof(W.version), "%s", version);
	persist(version, text);
	pthread_mutex_lock(&W.lock);
	conf_unref(W.mb_cf);
	free(W.mb_text);
	W.mb_cf = cf;
	W.mb_text = text;
	snprintf(W.mb_version, sizeof(W.mb_version), "%s", version);
	pthread_cond_broadcast(&W.cond);
	pthread_mutex_unlock(&W.lock);
	ev_async_send(W.loop, &W.async);
}

static void urlenc(char *out, size_t cap, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (; *s && o + 4 < cap; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == ':') {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
}

static void set_error(const char *e)
{
	pthread_mutex_lock(&W.lock);
	snprintf(W.last_err, sizeof(W.last_err), "%.500s", e);
	pthread_mutex_unlock(&W.lock);
}

static void deregister(void)
{
	char target[128], ver[17], err[512];
	char *out = NULL;
	int st = 0;

	uint64_t v;

	disconnect();
	pthread_mutex_lock(&W.lock);
	W.dereg = 0;                 /* let the request run (watch_stop may still interrupt it) */
	pthread_mutex_unlock(&W.lock);
	while (read(W.wakefd, &v, sizeof(v)) > 0)
		;
	snprintf(target, sizeof(target), "/v1/deregister?lease=%s", W.lease);
	if (request("POST", target, "", 2.0, &st, ver, &out, err, sizeof(err)) == 0 && st == 200)
		log_info("deregistered from the controller");
	else
		log_warn("could not deregister (%s): the controller drops this proxy when its lease ends", out ? out : err);
	free(out);
	disconnect();
}

static void *watch_thread(void *unused)
{
	double backoff = WATCH_BACKOFF_MIN;
	char err[1024], ver[17], target[1024], why[900];
	int fails = 0;

	(void)unused;
	for (;;) {
		char *out = NULL;
		int st = 0, rc;

		pthread_mutex_lock(&W.lock);
		if (W.dereg && W.lease[0]) {
			pthread_mutex_unlock(&W.lock);
			deregister();
			break;
		}
		rc = W.stop || W.dereg;
		pthread_mutex_unlock(&W.lock);
		if (rc)
			break;
		if (!W.lease[0]) {
			rc = request("POST", "/v1/register", W.reg, 10.0, &st, ver, &out, err, sizeof(err));
			if (rc == 0 && st == 200) {
				char *l = strstr(out, "lease = "), *t = strstr(out, "ttl = ");

				if (l && sscanf(l + 8, "%16[0-9a-f]", W.lease) == 1 && strlen(W.lease) == 16) {
					W.ttl = t ? atof(t + 6) / 1000.0 : 15.0;
					if (W.ttl < 1)
						W.ttl = 1;
					log_info("registered with the controller at %s (lease TTL %.0fs)", W.ctl.text, W.ttl);
					free(out);
					backoff = WATCH_BACKOFF_MIN;
					fails = 0;
					continue;
				}
				W.lease[0] = '\0';
				snprintf(err, sizeof(err), "controller %s: registration answer without a lease", W.ctl.text);
			} else if (rc == 0) {
				char *nl = strchr(out, '\n');

				if (nl)
					*nl = '\0';
				snprintf(err, sizeof(err), "controller %s refused the registration (%d): %s", W.ctl.text, st, out);
			}
			free(out);
			if (rc == -2)
				continue;
		} else {
			size_t o = (size_t)snprintf(target, sizeof(target), "/v1/snapshot?lease=%s&version=%s", W.lease,
			                            W.version);

			if (W.rejected[0]) {
				urlenc(why, sizeof(why) / 3, W.why);
				snprintf(target + o, sizeof(target) - o, "&rejected=%s&why=%s", W.rejected, why);
			}
			rc = request("GET", target, NULL, W.ttl / 3 + 10, &st, ver, &out, err, sizeof(err));
			if (rc == -2) {
				free(out);
				continue;
			}
			if (rc == 0 && (st == 200 || st == 304)) {
				if (fails)
					log_info("controller %s reachable again", W.ctl.text);
				backoff = WATCH_BACKOFF_MIN;
				fails = 0;
				set_error("");
				if (st == 200 && ver[0])
					accept_snapshot(ver, out);
				else
					free(out);
				continue;
			}
			if (rc == 0 && (st == 404 || st == 403)) {  /* the lease is gone (a new controller): register again */
				log_info("controller %s does not know this proxy's lease: registering again", W.ctl.text);
				W.lease[0] = '\0';
				free(out);
				continue;
			}
			if (rc == 0)
				snprintf(err, sizeof(err), "controller %s answered %d", W.ctl.text, st);
			free(out);
		}
		/* failed: keep the running snapshot, try again later */
		set_error(err);
		if (!fails++ || fails % 10 == 0)
			log_warn("%s; keeping the current configuration%s, retrying in %.1fs", err,
			         W.version[0] ? " (static stability)" : "", backoff);
		if (nap(backoff * jitter()))
			continue;
		backoff = backoff * 2 > WATCH_BACKOFF_MAX ? WATCH_BACKOFF_MAX : backoff * 2;
	}
	disconnect();
	pthread_mutex_lock(&W.lock);
	W.exited = 1;
	pthread_cond_broadcast(&W.cond);
	pthread_mutex_unlock(&W.lock);
	return NULL;
}

/* ------------------------------------------------------------------ the loop's side */

static void async_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct conf *cf;
	char *text, version[17];

	(void)loop;
	(void)w;
	(void)revents;
	pthread_mutex_lock(&W.lock);
	cf = W.mb_cf;
	text = W.mb_text;
	snprintf(version, sizeof(version), "%s", W.mb_version);
	W.mb_cf = NULL;
	W.mb_text = NULL;
	pthread_mutex_unlock(&W.lock);
	if (cf)
		W.on_update(cf, version, text, W.arg);
}

struct conf *watch_first(double timeout_s, char **text, char version[17], char *err, size_t errlen)
{
	struct timespec ts;
	struct conf *cf;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)timeout_s;
	pthread_mutex_lock(&W.lock);
	while (!W.mb_cf)
		if (pthread_cond_timedwait(&W.cond, &W.lock, &ts) == ETIMEDOUT)
			break;
	cf = W.mb_cf;
	*text = W.mb_text;
	snprintf(version, 17, "%s", W.mb_version);
	W.mb_cf = NULL;
	W.mb_text = NULL;
	if (!cf)
		snprintf(err, errlen, "%s", W.last_err[0] ? W.last_err : "no answer");
	pthread_mutex_unlock(&W.lock);
	return cf;
}

int watch_start(struct ev_loop *loop, const char *path, const struct conf *cf, struct tls_creds *creds,
                const char *have_version, watch_update_fn on_update, void *arg)
{
	const struct conf_workload *wl = &cf->workload;
	const char *id = tls_creds_id(creds), *td_end;
	pthread_attr_t attr;
	size_t o, i;

	if (W.running || !creds || strncmp(id, "spiffe://", 9) || !(td_end = strchr(id + 9, '/')))
		return -1;
	snprintf(W.expect, sizeof(W.expect), "spiffe://%.*s/ns/%s/sa/%s", (int)(td_end - id - 9), id + 9, CONTROLLER_NS,
	         CONTROLLER_SA);
	W.ctl = cf->control.controller;
	W.path = strdup(path);
	W.snapshot_file = cf->control.snapshot_file ? strdup(cf->control.snapshot_file) : NULL;
	W.creds = tls_creds_ref(creds);
	W.loop = loop;
	W.on_update = on_update;
	W.arg = arg;
	W.stop = W.dereg = W.dereg_started = W.exited = 0;
	W.ttl = 15;
	W.lease[0] = W.rejected[0] = '\0';
	snprintf(W.version, sizeof(W.version), "%s", have_version ? have_version : "");
	o = (size_t)snprintf(W.reg, sizeof(W.reg), "[workload]\n");
	if (wl->service)
		o += (size_t)snprintf(W.reg + o, sizeof(W.reg) - o, "service = %s\n", wl->service);
	o += (size_t)snprintf(W.reg + o, sizeof(W.reg) - o, "namespace = %s\n", wl->namespace ? wl->namespace : "default");
	if (wl->labels.n) {
		o += (size_t)snprintf(W.reg + o, sizeof(W.reg) - o, "labels = ");
		for (i = 0; i < wl->labels.n && o < sizeof(W.reg); i++)
			o += (size_t)snprintf(W.reg + o, sizeof(W.reg) - o, "%s%s=%s", i ? ", " : "", wl->labels.v[i].key,
			                      wl->labels.v[i].value);
		if (o < sizeof(W.reg))
			o += (size_t)snprintf(W.reg + o, sizeof(W.reg) - o, "\n");
	}
	if (cf->listen.inbound.set && wl->service && o < sizeof(W.reg))
		o += (size_t)snprintf(W.reg + o, sizeof(W.reg) - o, "address = %s\n", cf->listen.inbound.text);
	if (cf->listen.admin.set && o < sizeof(W.reg))
		snprintf(W.reg + o, sizeof(W.reg) - o, "admin = %s\n", cf->listen.admin.text);
	W.wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (W.wakefd < 0 || !W.path)
		return -1;
	ev_async_init(&W.async, async_cb);
	ev_async_start(loop, &W.async);
	ev_unref(loop);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 512 * 1024);
	if (pthread_create(&W.thread, &attr, watch_thread, NULL) != 0) {
		pthread_attr_destroy(&attr);
		ev_ref(loop);
		ev_async_stop(loop, &W.async);
		return -1;
	}
	pthread_attr_destroy(&attr);
	W.running = 1;
	return 0;
}

void watch_set_creds(struct tls_creds *c)
{
	if (!W.running)
		return;
	pthread_mutex_lock(&W.lock);
	tls_creds_unref(W.creds);
	W.creds = tls_creds_ref(c);
	pthread_mutex_unlock(&W.lock);
}

static void wake(void)
{
	uint64_t one = 1;

	if (write(W.wakefd, &one, sizeof(one)) < 0)
		return;
}

void watch_deregister(void)
{
	if (!W.running)
		return;
	pthread_mutex_lock(&W.lock);
	W.dereg = W.dereg_started = 1;
	pthread_mutex_unlock(&W.lock);
	wake();
}

void watch_stop(void)
{
	struct timespec ts;

	if (!W.running)
		return;
	pthread_mutex_lock(&W.lock);
	/* a deregistration under way gets up to 2 s to reach the controller */
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 2;
	while (W.dereg_started && !W.exited)
		if (pthread_cond_timedwait(&W.cond, &W.lock, &ts) == ETIMEDOUT)
			break;
	W.stop = 1;
	pthread_cond_broadcast(&W.cond);
	pthread_mutex_unlock(&W.lock);
	wake();
	pthread_join(W.thread, NULL);
	W.running = 0;
	ev_ref(W.loop);
	ev_async_stop(W.loop, &W.async);
	close(W.wakefd);
	W.wakefd = -1;
	tls_creds_unref(W.creds);
	W.creds = NULL;
	conf_unref(W.mb_cf);
	W.mb_cf = NULL;
	free(W.mb_text);
	W.mb_text = NULL;
	free(W.path);
	free(W.snapshot_file);
	W.path = W.snapshot_file = NULL;
}
