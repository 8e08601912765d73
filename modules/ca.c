/*
 * ca: the mesh's certificate authority (see ca.h, docs/protocol.md and
 * docs/security.md).
 *
 * Files of a CA directory (made by `mesh ca init`, never overwritten):
 *   root.crt      the trust bundle every proxy is given (or pins by fingerprint)
 *   root.key      the root's key (0600) - only where the root was created
 *   ca.crt/ca.key an intermediate and its key (0600), when made with --root;
 *                 ca.crt may hold the intermediate's own parents after it
 *   token.secret  the HMAC key of bootstrap tokens (0600)
 *   ca.ini        the serving configuration
 *
 * Serving: one libev loop; each connection is a non-blocking tls_conn with a
 * bounded input buffer (head + body <= CA_MAX_REQUEST), one deadline for the
 * handshake and each request, keep-alive between requests. A request is
 * answered in full before the next is read. Workload certificates get the
 * identity the token names (or, for namespaces in allow_namespaces, the
 * CSR's own SPIFFE id), the CSR's public key after its signature is checked,
 * and not_before a clock_skew in the past. Nothing about a workload is kept.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/md.h>

#include "ev.h"
#include "ini.h"

#include "agent.h"
#include "ca.h"
#include "conf.h"
#include "http1.h"
#include "log.h"
#include "net.h"
#include "tls.h"

#define CA_MAX_REQUEST   16384    /* head + body of one request */
#define CA_MAX_CONNS     1024
#define CA_TIMEOUT       10.0     /* seconds for a handshake or one request */
#define CA_SERVER_ID     "/ca"    /* the CA's own SPIFFE path: no token names it (tokens are ns/sa) */
#define CA_SECRET_LEN    32

/* ------------------------------------------------------------------ small helpers */

static void ca_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void ca_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* whole file into a NUL-terminated buffer (at most max bytes), or NULL with errno */
static char *ca_read_file(const char *path, size_t max, size_t *len)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	char *buf;
	size_t n = 0, cap = 4096;

	if (!f)
		return NULL;
	buf = malloc(cap + 1);
	while (buf) {
		size_t r;

		if (n == cap) {
			char *nb;

			if (cap >= max) {
				free(buf);
				buf = NULL;
				errno = EFBIG;
				break;
			}
			cap *= 2;
			nb = realloc(buf, cap + 1);
			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
		}
		r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (r == 0) {
			if (ferror(f)) {
				free(buf);
				buf = NULL;
			}
			break;
		}
	}
	if (f != stdin)
		fclose(f);
	if (buf) {
		buf[n] = '\0';
		if (len)
			*len = n;
	}
	return buf;
}

/* creates path with mode, failing if it exists (keys never get overwritten) */
static int ca_write_new_file(const char *path, const char *data, size_t len, mode_t mode, char *err, size_t errlen)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	size_t off = 0;

	if (fd < 0) {
		ca_errf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	fchmod(fd, mode);  /* whatever the umask said */
	while (off < len) {
		ssize_t n = write(fd, data + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ca_errf(err, errlen, "%s: %s", path, strerror(errno));
			close(fd);
			unlink(path);
			return -1;
		}
		off += (size_t)n;
	}
	if (close(fd) < 0) {
		ca_errf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static void ca_path_join(char *out, size_t cap, const char *dir, const char *name)
{
	int n;

	if (name[0] == '/' || !dir || !*dir)
		n = snprintf(out, cap, "%s", name);
	else
		n = snprintf(out, cap, "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= cap)
		out[0] = '\0';  /* too long: opening "" fails with a clear ENOENT */
}

static int ca_file_exists(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0;
}

/* "90s", "5m", "24h", "30d", plain seconds; -1 if bad */
static long long ca_parse_secs(const char *s)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || v < 0)
		return -1;
	if (!strcmp(end, "") || !strcmp(end, "s"))
		return v;
	if (!strcmp(end, "m"))
		return v <= LLONG_MAX / 60 ? v * 60 : -1;
	if (!strcmp(end, "h"))
		return v <= LLONG_MAX / 3600 ? v * 3600 : -1;
	if (!strcmp(end, "d"))
		return v <= LLONG_MAX / 86400 ? v * 86400 : -1;
	return -1;
}

static void ca_hex(const unsigned char *p, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", p[i]);
}

static int ca_unhex(const char *s, size_t n, unsigned char *out, size_t cap)
{
	size_t i;

	if (n % 2 || n / 2 > cap)
		return -1;
	for (i = 0; i < n; i += 2) {
		int hi, lo;
		char a = s[i], b = s[i + 1];

		hi = a >= '0' && a <= '9' ? a - '0' : a >= 'a' && a <= 'f' ? a - 'a' + 10 : a >= 'A' && a <= 'F' ? a - 'A' + 10 : -1;
		lo = b >= '0' && b <= '9' ? b - '0' : b >= 'a' && b <= 'f' ? b - 'a' + 10 : b >= 'A' && b <= 'F' ? b - 'A' + 10 : -1;
		if (hi < 0 || lo < 0)
			return -1;
		out[i / 2] = (unsigned char)(hi << 4 | lo);
	}
	return (int)(n / 2);
}

/* ------------------------------------------------------------------ tokens */

int ca_valid_name(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > 253)
		return 0;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
			continue;
		if ((c == '-' || c == '.') && i > 0 && i + 1 < n)
			continue;
		return 0;
	}
	return 1;
}

static void ca_token_mac(const unsigned char *secret, size_t slen, const char *msg, size_t n, unsigned char mac[32])
{
	mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), secret, slen, (const unsigned char *)msg, n, mac);
}

int ca_token_make(const unsigned char *secret, size_t slen, const char *ns, const char *sa, long long expiry,
                  char *out, size_t cap)
{
	unsigned char mac[32];
	int n;

	if (!ca_valid_name(ns, strlen(ns)) || !ca_valid_name(sa, strlen(sa)) || expiry < 0)
		return -1;
	n = snprintf(out, cap, "mesh1:%s:%s:%lld", ns, sa, expiry);
	if (n < 0 || (size_t)n + 1 + 64 >= cap)
		return -1;
	ca_token_mac(secret, slen, out, (size_t)n, mac);
	out[n] = ':';
	ca_hex(mac, 32, out + n + 1);
	return 0;
}

int ca_token_check(const unsigned char *secret, size_t slen, const char *token, size_t len, long long now,
                   char *ns, size_t nscap, char *sa, size_t sacap, const char **why)
{
	const char *f[5], *end = token + len, *p = token;
	size_t fl[5], i;
	unsigned char mac[32], got[32];
	unsigned char diff = 0;
	long long exp = 0;

	*why = "malformed token (want mesh1:NS:SA:EXPIRY:MAC from `mesh ca token`)";
	/* trailing newline from a file is fine */
	while (len && (token[len - 1] == '\n' || token[len - 1] == '\r' || token[len - 1] == ' '))
		end = token + --len;
	for (i = 0; i < 5; i++) {
		const char *c = memchr(p, ':', (size_t)(end - p));

		if (i < 4 && !c)
			return -1;
		f[i] = p;
		fl[i] = (size_t)((i < 4 ? c : end) - p);
		p = i < 4 ? c + 1 : end;
	}
	if (fl[0] != 5 || memcmp(f[0], "mesh1", 5) != 0 || !ca_valid_name(f[1], fl[1]) || !ca_valid_name(f[2], fl[2]))
		return -1;
	if (fl[3] == 0 || fl[3] > 18)
		return -1;
	for (i = 0; i < fl[3]; i++) {
		if (f[3][i] < '0' || f[3][i] > '9')
			return -1;
		exp = exp * 10 + (f[3][i] - '0');
	}
	if (fl[4] != 64 || ca_unhex(f[4], 64, got, sizeof(got)) != 32)
		return -1;
	ca_token_mac(secret, slen, token, (size_t)(f[4] - 1 - token), mac);
	for (i = 0; i < 32; i++)
		diff |= (unsigned char)(mac[i] ^ got[i]);
	if (diff) {
		*why = "token signature does not match (made by another CA, or altered)";
		return -1;
	}
	if (exp && exp <= now) {
		*why = "token expired (make a new one with `mesh ca token`)";
		return -1;
	}
	if (fl[1] >= nscap || fl[2] >= sacap) {
		*why = "token names too long";
		return -1;
	}
	memcpy(ns, f[1], fl[1]);
	ns[fl[1]] = '\0';
	memcpy(sa, f[2], fl[2]);
	sa[fl[2]] = '\0';
	*why = NULL;
	return 0;
}

/* ------------------------------------------------------------------ ca.ini */

struct ca_config {
	char *path;                  /* the ca.ini given */
	char *dir;                   /* dir = ..., relative to the ini file; default: the ini file's directory */
	struct conf_addr listen;     /* listen = 127.0.0.1:15012 */
	char *trust_domain;          /* default cluster.local */
	long long cert_ttl;          /* seconds, default 24h */
	long long clock_skew;        /* seconds, default 5m */
	char **allow_ns;             /* allow_namespaces = default, production (lab only) */
	size_t n_allow_ns;
	char *cert, *key, *bundle, *secret;  /* file overrides, relative to dir */
	int log_level;
};

static void ca_config_free(struct ca_config *c)
{
	size_t i;

	free(c->path);
	free(c->dir);
	free(c->trust_domain);
	for (i = 0; i < c->n_allow_ns; i++)
		free(c->allow_ns[i]);
	free(c->allow_ns);
	free(c->cert);
	free(c->key);
	free(c->bundle);
	free(c->secret);
	memset(c, 0, sizeof(*c));
}

struct ini_ctx {
	struct ca_config *c;
	const char *file;
	char *errs;                  /* accumulated "file:line: message\n" */
	size_t errs_len;
	char bad_section[64];        /* the unknown section last reported */
};

static void ca_ini_err(struct ini_ctx *x, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void ca_ini_err(struct ini_ctx *x, int line, const char *fmt, ...)
{
	char msg[512];
	char *n;
	int len;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	len = snprintf(NULL, 0, "%s:%d: %s\n", x->file, line, msg);
	n = realloc(x->errs, x->errs_len + (size_t)len + 1);
	if (!n)
		return;
	x->errs = n;
	snprintf(x->errs + x->errs_len, (size_t)len + 1, "%s:%d: %s\n", x->file, line, msg);
	x->errs_len += (size_t)len;
}

static int ca_set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = strdup(v);
	return *dst ? 0 : -1;
}

static int ca_ini_handler(void *user, const char *section, const char *name, const char *value, int line)
{
	struct ini_ctx *x = user;
	struct ca_config *c = x->c;
	long long v;

	if (!name)  /* a section callback (not every inih makes them) */
		return 1;
	if (strcmp(section, "ca") != 0) {
		if (!*section)
			ca_ini_err(x, line, "'%s' outside a section: put it under [ca]", name);
		else if (strcmp(section, x->bad_section) != 0)
			ca_ini_err(x, line, "unknown section [%s] (a ca.ini has only [ca])", section);
		snprintf(x->bad_section, sizeof(x->bad_section), "%s", section);
		return 1;
	}
	if (!strcmp(name, "listen")) {
		if (conf_parse_addr(value, &c->listen, 0) < 0)
			ca_ini_err(x, line, "listen: '%s' is not an address (want IP:PORT, e.g. 127.0.0.1:15012)", value);
	} else if (!strcmp(name, "dir")) {
		ca_set_str(&c->dir, value);
	} else if (!strcmp(name, "trust_domain")) {
		if (!*value || strchr(value, '/') || strchr(value, ':') || strlen(value) > 200)
			ca_ini_err(x, line, "trust_domain: '%s' is not a trust domain (a DNS-like name, e.g. cluster.local)", value);
		else
			ca_set_str(&c->trust_domain, value);
	} else if (!strcmp(name, "cert_ttl") || !strcmp(name, "clock_skew")) {
		v = ca_parse_secs(value);
		if (v < 0)
			ca_ini_err(x, line, "%s: '%s' is not a duration (e.g. 90s, 5m, 24h, 30d)", name, value);
		else if (!strcmp(name, "cert_ttl") && (v < 10 || v > 366LL * 86400))
			ca_ini_err(x, line, "cert_ttl: '%s' is out of range (from 10s to 366d)", value);
		else if (!strcmp(name, "cert_ttl"))
			c->cert_ttl = v;
		else
			c->clock_skew = v;
	} else if (!strcmp(name, "allow_namespaces")) {
		char *copy = strdup(value), *tok, *save = NULL;

		for (tok = copy ? strtok_r(copy, ", \t", &save) : NULL; tok; tok = strtok_r(NULL, ", \t", &save)) {
			char **n;

			if (!ca_valid_name(tok, strlen(tok))) {
				ca_ini_err(x, line, "allow_namespaces: '%s' is not a namespace name", tok);
				continue;
			}
			n = realloc(c->allow_ns, (c->n_allow_ns + 1) * sizeof(*n));
			if (!n)
				break;
			c->allow_ns = n;
			c->allow_ns[c->n_allow_ns++] = strdup(tok);
		}
		free(copy);
	} else if (!strcmp(name, "cert")) {
		ca_set_str(&c->cert, value);
	} else if (!strcmp(name, "key")) {
		ca_set_str(&c->key, value);
	} else if (!strcmp(name, "bundle")) {
		ca_set_str(&c->bundle, value);
	} else if (!strcmp(name, "token_secret")) {
		ca_set_str(&c->secret, value);
	} else if (!strcmp(name, "log_level")) {
		static const char *lv[] = { "error", "warn", "info", "debug" };
		int i;

		for (i = 0; i < 4 && strcmp(value, lv[i]); i++)
			;
		if (i == 4)
			ca_ini_err(x, line, "log_level: '%s' (want error, warn, info or debug)", value);
		else
			c->log_level = i;
	} else {
		ca_ini_err(x, line, "unknown key '%s' in [ca] (keys: listen, dir, trust_domain, cert_ttl, clock_skew, "
		                 "allow_namespaces, cert, key, bundle, token_secret, log_level)", name);
	}
	return 1;
}

/* parses text (named file for messages); 0, or -1 with "file:line: message" lines in err */
static int ca_config_parse(struct ca_config *c, const char *file, const char *text, char *err, size_t errlen)
{
	struct ini_ctx x = { c, file, NULL, 0, "" };
	const char *slash;
	int rc;

	memset(c, 0, sizeof(*c));
	c->cert_ttl = 24 * 3600;
	c->clock_skew = 300;
	c->log_level = LOG_INFO;
	c->path = strdup(file);
	conf_parse_addr("127.0.0.1:15012", &c->listen, 0);
	rc = ini_parse_string(text, ca_ini_handler, &x);
	if (rc > 0 && !x.errs)
		ca_ini_err(&x, rc, "cannot parse this line (want key = value or [ca])");
	if (x.errs) {
		x.errs[x.errs_len - 1] = '\0';
		ca_errf(err, errlen, "%s", x.errs);
		free(x.errs);
		ca_config_free(c);
		return -1;
	}
	if (!c->trust_domain)
		c->trust_domain = strdup("cluster.local");
	/* dir relative to the ini file's directory */
	slash = strrchr(file, '/');
	{
		char base[PATH_MAX], full[PATH_MAX];

		snprintf(base, sizeof(base), "%.*s", slash ? (int)(slash - file) : 1, slash ? file : ".");
		if (!c->dir)
			snprintf(full, sizeof(full), "%s", base);
		else
			ca_path_join(full, sizeof(full), base, c->dir);
		ca_set_str(&c->dir, full);
	}
	return 0;
}

/* ------------------------------------------------------------------ the CA's signing state */

struct ca {
	struct ca_config cfg;
	struct tls_issuer *issuer;   /* ca.crt/ca.key, or root.crt/root.key */
	char *parents_pem;           /* what follows a leaf in its chain ("" when the root signs) */
	char *bundle_pem;            /* root.crt */
	unsigned char secret[64];    /* token secret */
	size_t secret_len;
	long long issuer_not_after;  /* leaves never outlive their issuer */
	struct tls_creds *creds;     /* the CA's own server identity */
	/* serving */
	struct ev_loop *loop;
	ev_io lio;
	int lfd;
	size_t n_conns;
	unsigned long signed_count, refused_count;
};

static void ca_free(struct ca *ca)
{
	tls_issuer_free(ca->issuer);
	ca->issuer = NULL;
	free(ca->parents_pem);
	ca->parents_pem = NULL;
	free(ca->bundle_pem);
	ca->bundle_pem = NULL;
	tls_creds_unref(ca->creds);
	ca->creds = NULL;
	ca_config_free(&ca->cfg);
	memset(ca->secret, 0, sizeof(ca->secret));
}

static int ca_key_file_warn(const char *path)
{
	struct stat st;

	if (stat(path, &st) == 0 && (st.st_mode & 077))
		log_warn("%s is readable by other users (mode %03o): chmod 600 %s", path, (unsigned)(st.st_mode & 0777), path);
	return 0;
}

/* loads the files the config names; builds the CA's own server certificate */
static int ca_load(struct ca *ca, char *err, size_t errlen)
{
	char p_cert[PATH_MAX], p_key[PATH_MAX], p_bundle[PATH_MAX], p_secret[PATH_MAX], id[600];
	struct ca_config *c = &ca->cfg;
	char *cert = NULL, *key = NULL, *secret = NULL, *skey = NULL, *scrt = NULL, *chain = NULL;
	struct tls_cert_info info[8];
	long long now = time(NULL);
	size_t n;
	int rc = -1, ni;

	ca_path_join(p_cert, sizeof(p_cert), c->dir, c->cert ? c->cert : "ca.crt");
	ca_path_join(p_key, sizeof(p_key), c->dir, c->key ? c->key : "ca.key");
	if (!c->cert && !ca_file_exists(p_cert)) {
		ca_path_join(p_cert, sizeof(p_cert), c->dir, "root.crt");
		if (!c->key)
			ca_path_join(p_key, sizeof(p_key), c->dir, "root.key");
	}
	ca_path_join(p_bundle, sizeof(p_bundle), c->dir, c->bundle ? c->bundle : "root.crt");
	ca_path_join(p_secret, sizeof(p_secret), c->dir, c->secret ? c->secret : "token.secret");
	if (!(cert = ca_read_file(p_cert, 1 << 20, NULL))) {
		ca_errf(err, errlen, "%s: %s (run `mesh ca init --dir %s` first?)", p_cert, strerror(errno), c->dir);
		goto done;
	}
	if (!(key = ca_read_file(p_key, 1 << 20, NULL))) {
		ca_errf(err, errlen, "%s: %s", p_key, strerror(errno));
		goto done;
	}
	ca_key_file_warn(p_key);
	if (!(ca->bundle_pem = ca_read_file(p_bundle, 1 << 20, NULL))) {
		ca_errf(err, errlen, "%s: %s", p_bundle, strerror(errno));
		goto done;
	}
	if (!(secret = ca_read_file(p_secret, 4096, &n))) {
		ca_errf(err, errlen, "%s: %s", p_secret, strerror(errno));
		goto done;
	}
	ca_key_file_warn(p_secret);
	while (n && (secret[n - 1] == '\n' || secret[n - 1] == '\r'))
		secret[--n] = '\0';
	ni = ca_unhex(secret, n, ca->secret, sizeof(ca->secret));
	if (ni < 16) {
		ca_errf(err, errlen, "%s: want 32 to 128 hex digits (as `mesh ca init` writes)", p_secret);
		goto done;
	}
	ca->secret_len = (size_t)ni;
	if (!(ca->issuer = tls_issuer_new(cert, key, err, errlen)))
		goto done;
	ni = tls_chain_info(cert, strlen(cert), info, 8, err, errlen);
	if (ni < 1)
		goto done;
	ca->issuer_not_after = (long long)info[0].not_after;
	if (ca->issuer_not_after <= now) {
		ca_errf(err, errlen, "%s expired: make a new CA (`mesh ca init`) or a new intermediate (--root)", p_cert);
		goto done;
	}
	/* the parents of a leaf: everything in the cert file that is not the root itself */
	{
		const char *second = strstr(cert + 1, "-----BEGIN CERTIFICATE-----");
		int self = !strcmp(info[0].subject, info[0].issuer);

		ca->parents_pem = strdup(self ? "" : cert);
		(void)second;
	}
	if (tls_chain_verify(cert, ca->bundle_pem, NULL, 0, err, errlen) < 0) {
		char e2[300];

		snprintf(e2, sizeof(e2), "%.299s", err);
		ca_errf(err, errlen, "%s does not chain to %s: %s", p_cert, p_bundle, e2);
		goto done;
	}
	/* the CA's own TLS identity, fresh at every start (nothing to keep) */
	{
		struct tls_issue rq = { "CN=mesh-ca,O=mesh", id, "mesh-ca", 1, 0, -1, now - c->clock_skew, now + 365LL * 86400 };
		size_t l;

		if (rq.not_after > ca->issuer_not_after)
			rq.not_after = ca->issuer_not_after;
		snprintf(id, sizeof(id), "spiffe://%s%s", c->trust_domain, CA_SERVER_ID);
		if (!(skey = tls_key_generate(err, errlen)) || !(scrt = tls_issue_for_key(ca->issuer, &rq, skey, err, errlen)))
			goto done;
		l = strlen(scrt) + strlen(ca->parents_pem) + 1;
		if (!(chain = malloc(l)))
			goto done;
		snprintf(chain, l, "%s%s", scrt, ca->parents_pem);
		if (!(ca->creds = tls_creds_new_ex(chain, skey, ca->bundle_pem, TLS_CREDS_NO_CLIENT_CERT, err, errlen)))
			goto done;
	}
	rc = 0;
done:
	free(cert);
	if (key)
		memset(key, 0, strlen(key));
	free(key);
	if (secret)
		memset(secret, 0, strlen(secret));
	free(secret);
	if (skey)
		memset(skey, 0, strlen(skey));
	free(skey);
	free(scrt);
	free(chain);
	return rc;
}

static int ca_ns_allowed(const struct ca *ca, const char *ns)
{
	size_t i;

	for (i = 0; i < ca->cfg.n_allow_ns; i++)
		if (!strcmp(ca->cfg.allow_ns[i], ns))
			return 1;
	return 0;
}

/*
 * The sign handler: token (may be NULL) and the CSR PEM (body[len] must be
 * NUL) -> status and a body (malloc'd). 200: the chain PEM; else one line
 * "error: ...". who names the client for the log.
 */
static int ca_sign(struct ca *ca, const char *token, size_t tlen, const char *body, size_t len, const char *who,
                   char **out)
{
	char ns[256], sa[256], want[600], csr_id[600], err[300];
	const char *why = NULL;
	long long now = time(NULL);
	struct tls_issue rq;
	char *crt;
	size_t l;

	*out = NULL;
	if (tls_csr_id(body, len, csr_id, sizeof(csr_id)) < 0) {
		*out = strdup("error: the body is not a PEM certificate request (CSR)\n");
		return 400;
	}
	if (token) {
		if (ca_token_check(ca->secret, ca->secret_len, token, tlen, now, ns, sizeof(ns), sa, sizeof(sa), &why) < 0) {
			log_warn("403 for %s: %s", who, why);
			ca->refused_count++;
			l = strlen(why) + 16;
			if ((*out = malloc(l)))
				snprintf(*out, l, "error: %s\n", why);
			return 403;
		}
	} else {
		/* lab mode: the CSR names its identity; only listed namespaces */
		char td[300];
		int n = 0;

		snprintf(td, sizeof(td), "spiffe://%s/ns/", ca->cfg.trust_domain);
		if (!ca->cfg.n_allow_ns || strncmp(csr_id, td, strlen(td)) != 0 ||
		    sscanf(csr_id + strlen(td), "%255[^/]/sa/%255[^/]%n", ns, sa, &n) != 2 ||
		    csr_id[strlen(td) + (size_t)n] != '\0' || !ca_valid_name(ns, strlen(ns)) ||
		    !ca_valid_name(sa, strlen(sa)) || !ca_ns_allowed(ca, ns)) {
			log_warn("403 for %s: no token (CSR asks for '%s')", who, csr_id);
			ca->refused_count++;
			*out = strdup("error: a bootstrap token is required (Authorization: Bearer <token from `mesh ca token`>)\n");
			return 403;
		}
	}
	if (tls_spiffe_id(want, sizeof(want), ca->cfg.trust_domain, ns, sa) < 0) {
		*out = strdup("error: identity too long\n");
		return 400;
	}
	if (csr_id[0] && strcmp(csr_id, want) != 0) {
		log_warn("403 for %s: CSR asks for %s, the token is for %s", who, csr_id, want);
		ca->refused_count++;
		l = strlen(csr_id) + strlen(want) + 64;
		if ((*out = malloc(l)))
			snprintf(*out, l, "error: the CSR asks for %s but the token is for %s\n", csr_id, want);
		return 403;
	}
	memset(&rq, 0, sizeof(rq));
	rq.subject = "O=mesh";
	rq.uri_san = want;
	rq.max_pathlen = -1;
	rq.not_before = now - ca->cfg.clock_skew;
	rq.not_after = now + ca->cfg.cert_ttl;
	if (rq.not_after > ca->issuer_not_after)
		rq.not_after = ca->issuer_not_after;
	crt = tls_issue_for_csr(ca->issuer, &rq, body, len, err, sizeof(err));
	if (!crt) {
		log_warn("400 for %s: %s", who, err);
		l = strlen(err) + 16;
		if ((*out = malloc(l)))
			snprintf(*out, l, "error: %s\n", err);
		return 400;
	}
	l = strlen(crt) + strlen(ca->parents_pem) + 1;
	*out = malloc(l);
	if (*out)
		snprintf(*out, l, "%s%s", crt, ca->parents_pem);
	free(crt);
	ca->signed_count++;
	log_info("signed %s for %s (%s, valid %lld s)", want, who, token ? "token" : "allow_namespaces",
	         (long long)(rq.not_after - now));
	return *out ? 200 : 500;
}

/* ------------------------------------------------------------------ HTTP over TLS */

enum { CC_HANDSHAKE, CC_READ, CC_WRITE, CC_LINGER };

struct ca_conn {
	ev_io io;                    /* first: the watcher is the connection */
	ev_timer timer;              /* deadline of the handshake / current request */
	struct ca *ca;
	struct tls_conn *tls;
	int fd;
	int state;                   /* CC_* */
	int close_after;             /* close once the response is out */
	char ip[46];
	char in[CA_MAX_REQUEST + 1]; /* one request; +1 for the NUL the CSR parser wants */
	size_t in_len;
	char *out;                   /* the response being written */
	size_t out_len, out_off;
};

static void ca_conn_close(struct ca_conn *cc)
{
	struct ca *ca = cc->ca;

	ev_io_stop(ca->loop, &cc->io);
	ev_timer_stop(ca->loop, &cc->timer);
	tls_free(cc->tls);
	cc->tls = NULL;
	close(cc->fd);
	free(cc->out);
	cc->out = NULL;
	free(cc);
	ca->n_conns--;
}

static const char *ca_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 431: return "Request Header Fields Too Large";
	default: return "Internal Server Error";
	}
}

static void ca_respond(struct ca_conn *cc, int status, const char *ctype, const char *body, int close_after)
{
	size_t bl = body ? strlen(body) : 0;
	size_t cap = bl + 256;

	free(cc->out);
	cc->out = malloc(cap);
	if (!cc->out) {
		cc->close_after = 1;
		cc->out_len = cc->out_off = 0;
		return;
	}
	cc->out_len = (size_t)snprintf(cc->out, cap, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s\r\n",
	                               status, ca_reason(status), ctype, bl, close_after ? "Connection: close\r\n" : "");
	memcpy(cc->out + cc->out_len, body, bl);
	cc->out_len += bl;
	cc->out_off = 0;
	cc->close_after = close_after;
	cc->state = CC_WRITE;
}

static void ca_respond_error(struct ca_conn *cc, int status, const char *msg, int close_after)
{
	char body[300];

	snprintf(body, sizeof(body), "error: %s\n", msg);
	ca_respond(cc, status, "text/plain", body, close_after);
}

/*
 * Handles a complete request in cc->in: 0 when a response is queued, -2 when
 * more bytes are needed.
 */
static int ca_handle(struct ca_conn *cc)
{
	struct http1_header hdrs[32];
	static const struct http1_limits lim = { 2048, 8192, 32 };
	struct http1_msg m;
	size_t body_len = 0;
	int head, status, hi, keep;
	const char *why;
	char *out = NULL;

	head = http1_request_whole(cc->in, cc->in_len, CA_MAX_REQUEST, &m, hdrs, &lim, &body_len, &keep, &status, &why);
	if (head == -2)
		return -2;
	if (head < 0) {
		ca_respond_error(cc, status, status == 413 ? "request too large (a CSR is about 600 bytes)" : why, 1);
		return 0;
	}
	if (m.target_len == 8 && !memcmp(m.target, "/v1/root", 8)) {
		if (http1_ieq(m.method, m.method_len, "get"))
			ca_respond(cc, 200, "application/x-pem-file", cc->ca->bundle_pem, !keep);
		else
			ca_respond_error(cc, 405, "GET /v1/root", !keep);
		return 0;
	}
	if (m.target_len == 6 && !memcmp(m.target, "/ready", 6)) {
		ca_respond(cc, 200, "text/plain", "ready\n", !keep);
		return 0;
	}
	if (!(m.target_len == 8 && !memcmp(m.target, "/v1/sign", 8))) {
		ca_respond_error(cc, 404, "unknown path (the CA serves POST /v1/sign and GET /v1/root)", !keep);
		return 0;
	}
	if (!http1_ieq(m.method, m.method_len, "post")) {
		ca_respond_error(cc, 405, "POST /v1/sign", !keep);
		return 0;
	}
	hi = http1_find_header(&m, "authorization");
	{
		const char *tok = NULL;
		size_t tl = 0;
		char save;

		if (hi >= 0) {
			if (hdrs[hi].value_len < 7 || strncasecmp(hdrs[hi].value, "Bearer ", 7) != 0) {
				ca_respond_error(cc, 403, "Authorization: Bearer <token> expected", !keep);
				return 0;
			}
			tok = hdrs[hi].value + 7;
			tl = hdrs[hi].value_len - 7;
		}
		save = cc->in[head + body_len];
		cc->in[head + body_len] = '\0';
		status = ca_sign(cc->ca, tok, tl, cc->in + head, body_len, cc->ip, &out);
		cc->in[head + body_len] = save;
	}
	if (status == 200)
		ca_respond(cc, 200, "application/x-pem-file", out, !keep);
	else
		ca_respond(cc, status, "text/plain", out ? out : "error: out of memory\n", !keep);
	free(out);
	return 0;
}

static void ca_conn_step(struct ca_conn *cc)
{
	struct ca *ca = cc->ca;
	int events = 0;

	for (;;) {
		if (cc->state == CC_HANDSHAKE) {
			int rc = tls_handshake(cc->tls);

			if (rc == TLS_WANT_READ || rc == TLS_WANT_WRITE) {
				events = rc == TLS_WANT_READ ? EV_READ : EV_WRITE;
				break;
			}
			if (rc != 0) {
				log_debug("%s: handshake: %s", cc->ip, tls_error(cc->tls));
				ca_conn_close(cc);
				return;
			}
			cc->state = CC_READ;
		} else if (cc->state == CC_READ) {
			ssize_t n;

			if (cc->in_len >= CA_MAX_REQUEST) {
				if (ca_handle(cc) == -2)
					ca_respond_error(cc, 413, "request too large", 1);
				continue;
			}
			n = tls_read(cc->tls, cc->in + cc->in_len, CA_MAX_REQUEST - cc->in_len);
			if (n == TLS_WANT_READ || n == TLS_WANT_WRITE) {
				events = n == TLS_WANT_READ ? EV_READ : EV_WRITE;
				break;
			}
			if (n <= 0) {
				if (n < 0)
					log_debug("%s: read: %s", cc->ip, tls_error(cc->tls));
				ca_conn_close(cc);
				return;
			}
			cc->in_len += (size_t)n;
			if (ca_handle(cc) == -2)
				continue;
		} else if (cc->state == CC_LINGER) {
			ssize_t n = tls_read(cc->tls, cc->in, CA_MAX_REQUEST);

			if (n == TLS_WANT_READ || n == TLS_WANT_WRITE) {
				events = EV_READ;
				break;
			}
			if (n <= 0) {
				ca_conn_close(cc);
				return;
			}
		} else {  /* CC_WRITE */
			while (cc->out_off < cc->out_len) {
				ssize_t n = tls_write(cc->tls, cc->out + cc->out_off, cc->out_len - cc->out_off);

				if (n == TLS_WANT_READ || n == TLS_WANT_WRITE) {
					events = n == TLS_WANT_READ ? EV_READ : EV_WRITE;
					goto wait;
				}
				if (n <= 0) {
					ca_conn_close(cc);
					return;
				}
				cc->out_off += (size_t)n;
			}
			if (cc->close_after) {
				/*
				 * Lingering close: a client still sending a body we refused
				 * would get a reset instead of our answer if we closed now.
				 * Read and drop for up to 2 s, or until it closes.
				 */
				shutdown(cc->fd, SHUT_WR);
				cc->state = CC_LINGER;
				ev_timer_stop(ca->loop, &cc->timer);
				ev_timer_set(&cc->timer, 2.0, 0.0);
				ev_timer_start(ca->loop, &cc->timer);
				continue;
			}
			free(cc->out);
			cc->out = NULL;
			cc->in_len = 0;
			cc->state = CC_READ;
			ev_timer_again(ca->loop, &cc->timer);  /* a new request, a new deadline */
		}
	}
wait:
	ev_io_stop(ca->loop, &cc->io);
	ev_io_set(&cc->io, cc->fd, events);
	ev_io_start(ca->loop, &cc->io);
}

static void ca_conn_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	ca_conn_step((struct ca_conn *)w);
}

static void ca_conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ca_conn *cc = (struct ca_conn *)((char *)w - offsetof(struct ca_conn, timer));

	(void)loop;
	(void)revents;
	log_debug("%s: timed out", cc->ip);
	ca_conn_close(cc);
}

static void ca_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ca *ca = (struct ca *)((char *)w - offsetof(struct ca, lio));
	int i;

	(void)revents;
	for (i = 0; i < 64; i++) {
		struct ca_conn *cc;
		char ip[46];
		int fd = net_accept(ca->lfd, ip);

		if (fd < 0)
			return;
		if (ca->n_conns >= CA_MAX_CONNS || !(cc = calloc(1, sizeof(*cc)))) {
			close(fd);
			continue;
		}
		cc->ca = ca;
		cc->fd = fd;
		memcpy(cc->ip, ip, sizeof(ip));
		cc->tls = tls_server(ca->creds, fd);
		if (!cc->tls) {
			close(fd);
			free(cc);
			continue;
		}
		ca->n_conns++;
		ev_io_init(&cc->io, ca_conn_io_cb, fd, EV_READ);
		ev_timer_init(&cc->timer, ca_conn_timer_cb, CA_TIMEOUT, CA_TIMEOUT);
		ev_timer_start(loop, &cc->timer);
		ca_conn_step(cc);
	}
}

static void ca_stop_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

/* ------------------------------------------------------------------ modes */

static int ca_usage(FILE *f)
{
	fprintf(f,
	        "usage:\n"
	        "  mesh ca init --dir DIR [--trust-domain TD] [--root ROOT_DIR]\n"
	        "        make a root CA (or, with --root, an intermediate signed by ROOT_DIR's CA),\n"
	        "        a token secret and DIR/ca.ini; never overwrites\n"
	        "  mesh ca token --ns NS --sa SA [--ttl 24h] [--dir DIR | -c ca.ini]\n"
	        "        print a bootstrap token that can obtain only spiffe://TD/ns/NS/sa/SA\n"
	        "  mesh ca -c ca.ini\n"
	        "        serve POST /v1/sign and GET /v1/root over TLS (docs/protocol.md)\n");
	return f == stdout ? 0 : 2;
}

static int ca_init(int argc, char **argv)
{
	const char *dir = NULL, *td = "cluster.local", *rootdir = NULL;
	char p[8][PATH_MAX], err[512];
	char *key = NULL, *crt = NULL, *pkey = NULL, *pcrt = NULL, *bundle = NULL, *chain = NULL, *ini = NULL;
	unsigned char secret[CA_SECRET_LEN];
	char secret_hex[2 * CA_SECRET_LEN + 2];
	struct tls_issuer *parent = NULL;
	struct tls_cert_info info[4];
	long long now = time(NULL);
	int i, rc = 1, n;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--dir") && i + 1 < argc)
			dir = argv[++i];
		else if (!strcmp(argv[i], "--trust-domain") && i + 1 < argc)
			td = argv[++i];
		else if (!strcmp(argv[i], "--root") && i + 1 < argc)
			rootdir = argv[++i];
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return ca_usage(stdout);
		else {
			fprintf(stderr, "mesh ca init: unknown argument '%s'\n", argv[i]);
			return ca_usage(stderr);
		}
	}
	if (!dir) {
		fprintf(stderr, "mesh ca init: --dir DIR is required (where the CA's files go)\n");
		return 2;
	}
	if (!*td || strchr(td, '/') || strchr(td, ':') || strlen(td) > 200) {
		fprintf(stderr, "mesh ca init: '%s' is not a trust domain (a DNS-like name, e.g. cluster.local)\n", td);
		return 2;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, "mesh ca init: cannot create %s: %s\n", dir, strerror(errno));
		return 1;
	}
	ca_path_join(p[0], PATH_MAX, dir, rootdir ? "ca.key" : "root.key");
	ca_path_join(p[1], PATH_MAX, dir, rootdir ? "ca.crt" : "root.crt");
	ca_path_join(p[2], PATH_MAX, dir, "token.secret");
	ca_path_join(p[3], PATH_MAX, dir, "ca.ini");
	ca_path_join(p[4], PATH_MAX, dir, "root.crt");
	for (i = 0; i < (rootdir ? 5 : 4); i++) {
		if (ca_file_exists(p[i])) {
			fprintf(stderr, "mesh ca init: %s already exists: refusing to overwrite a CA.\n"
			                "  Use another --dir, or, to really start over, remove %s's files first\n"
			                "  (every workload then needs a new certificate and proxies a new trust bundle).\n",
			        p[i], dir);
			return 1;
		}
	}
	if (!(key = tls_key_generate(err, sizeof(err))))
		goto fail;
	if (!rootdir) {
		char subj[300];
		struct tls_issue rq = { subj, NULL, NULL, 0, 1, -1, now - 300, now + 10LL * 365 * 86400 };

		snprintf(subj, sizeof(subj), "CN=mesh root CA,O=%s", td);
		if (!(crt = tls_issue_for_key(NULL, &rq, key, err, sizeof(err))))
			goto fail;
		bundle = strdup(crt);
	} else {
		char rp[PATH_MAX], subj[300], rnd[4];
		struct tls_issue rq = { subj, NULL, NULL, 0, 1, 0, now - 300, now + 5LL * 365 * 86400 };
		size_t l;

		/* the parent signs with its ca.crt/ca.key when it is itself an intermediate */
		ca_path_join(rp, sizeof(rp), rootdir, "ca.crt");
		if (ca_file_exists(rp)) {
			pcrt = ca_read_file(rp, 1 << 20, NULL);
			ca_path_join(rp, sizeof(rp), rootdir, "ca.key");
		} else {
			ca_path_join(rp, sizeof(rp), rootdir, "root.crt");
			pcrt = ca_read_file(rp, 1 << 20, NULL);
			ca_path_join(rp, sizeof(rp), rootdir, "root.key");
		}
		if (!pcrt || !(pkey = ca_read_file(rp, 1 << 20, NULL))) {
			snprintf(err, sizeof(err), "%.300s: %s (--root names the directory of an existing CA, with its key)",
			         rp, strerror(errno));
			goto fail;
		}
		ca_path_join(rp, sizeof(rp), rootdir, "root.crt");
		if (!(bundle = ca_read_file(rp, 1 << 20, NULL))) {
			snprintf(err, sizeof(err), "%.300s: %s", rp, strerror(errno));
			goto fail;
		}
		if (!(parent = tls_issuer_new(pcrt, pkey, err, sizeof(err))))
			goto fail;
		n = tls_chain_info(pcrt, strlen(pcrt), info, 4, err, sizeof(err));
		if (n < 1)
			goto fail;
		if ((long long)info[0].not_after < rq.not_after)
			rq.not_after = (long long)info[0].not_after;
		tls_random(rnd, sizeof(rnd));
		snprintf(subj, sizeof(subj), "CN=mesh intermediate CA %02x%02x%02x%02x,O=%s", (unsigned char)rnd[0],
		         (unsigned char)rnd[1], (unsigned char)rnd[2], (unsigned char)rnd[3], td);
		/* pathlen 0: an intermediate signs workloads, not more CAs below it (unlimited only under the root) */
		rq.max_pathlen = 0;
		if (!(crt = tls_issue_for_key(parent, &rq, key, err, sizeof(err))))
			goto fail;
		/* ca.crt = the intermediate, then its parent when that is an intermediate too */
		n = tls_chain_info(pcrt, strlen(pcrt), info, 4, err, sizeof(err));
		l = strlen(crt) + strlen(pcrt) + 1;
		chain = malloc(l);
		if (!chain)
			goto fail;
		snprintf(chain, l, "%s%s", crt, n > 0 && strcmp(info[0].subject, info[0].issuer) ? pcrt : "");
		free(crt);
		crt = chain;
		chain = NULL;
		if (tls_chain_verify(crt, bundle, NULL, 0, err, sizeof(err)) < 0)
			goto fail;
	}
	if (tls_random(secret, sizeof(secret)) < 0) {
		snprintf(err, sizeof(err), "no randomness for the token secret");
		goto fail;
	}
	ca_hex(secret, sizeof(secret), secret_hex);
	strcat(secret_hex, "\n");
	{
		size_t l = 1024 + strlen(td);

		ini = malloc(l);
		if (!ini)
			goto fail;
		snprintf(ini, l,
		         "; made by `mesh ca init` - docs/config.md, \"ca.ini\"\n"
		         "[ca]\n"
		         "listen = 127.0.0.1:15012\n"
		         "; the CA's files: this directory\n"
		         "dir = .\n"
		         "trust_domain = %s\n"
		         "cert_ttl = 24h\n"
		         "clock_skew = 5m\n"
		         "; lab only: sign any identity of these namespaces without a token\n"
		         "; allow_namespaces = default\n", td);
	}
	/* keys first, 0600, O_EXCL: a race with another init loses cleanly */
	if (ca_write_new_file(p[0], key, strlen(key), 0600, err, sizeof(err)) < 0)
		goto fail;
	if (ca_write_new_file(p[2], secret_hex, strlen(secret_hex), 0600, err, sizeof(err)) < 0 ||
	    ca_write_new_file(p[1], crt, strlen(crt), 0644, err, sizeof(err)) < 0 ||
	    (rootdir && ca_write_new_file(p[4], bundle, strlen(bundle), 0644, err, sizeof(err)) < 0) ||
	    ca_write_new_file(p[3], ini, strlen(ini), 0644, err, sizeof(err)) < 0)
		goto fail;
	n = tls_chain_info(bundle, strlen(bundle), info, 4, err, sizeof(err));
	printf("%s CA for trust domain %s in %s:\n", rootdir ? "intermediate" : "root", td, dir);
	if (rootdir)
		printf("  %s  the intermediate (signed by %s)\n  %s  its key (0600)\n  %s  the trust bundle (copied)\n",
		       p[1], rootdir, p[0], p[4]);
	else
		printf("  %s  the root certificate: the trust bundle of every proxy\n  %s  its key (0600): keep it safe\n",
		       p[1], p[0]);
	printf("  %s  the token secret (0600)\n  %s  the CA's configuration\n", p[2], p[3]);
	if (n > 0)
		printf("root fingerprint (sha256, for [control] ca_fingerprint): %s\n", info[0].fingerprint);
	printf("next: mesh ca -c %s\n      mesh ca token --dir %s --ns default --sa reviews > reviews.token\n", p[3], dir);
	rc = 0;
	goto done;
fail:
	fprintf(stderr, "mesh ca init: %s\n", err);
done:
	if (key)
		memset(key, 0, strlen(key));
	if (pkey)
		memset(pkey, 0, strlen(pkey));
	memset(secret, 0, sizeof(secret));
	memset(secret_hex, 0, sizeof(secret_hex));
	free(key);
	free(crt);
	free(pkey);
	free(pcrt);
	free(bundle);
	free(chain);
	free(ini);
	tls_issuer_free(parent);
	return rc;
}

/* the config of -c FILE, or of DIR/ca.ini (or defaults) for --dir DIR */
static int ca_load_config(struct ca_config *c, const char *ini, const char *dir, char *err, size_t errlen)
{
	char p[PATH_MAX];
	char *text;

	if (!ini) {
		ca_path_join(p, sizeof(p), dir, "ca.ini");
		ini = p;
		if (!ca_file_exists(p)) {
			int rc = ca_config_parse(c, p, "", err, errlen);

			if (rc == 0)
				ca_set_str(&c->dir, dir);
			return rc;
		}
	}
	text = ca_read_file(ini, 1 << 20, NULL);
	if (!text) {
		ca_errf(err, errlen, "%s: %s", ini, strerror(errno));
		return -1;
	}
	if (ca_config_parse(c, ini, text, err, errlen) < 0) {
		free(text);
		return -1;
	}
	free(text);
	return 0;
}

static int ca_token_cmd(int argc, char **argv)
{
	const char *ns = NULL, *sa = NULL, *dir = NULL, *ini = NULL;
	struct ca_config c;
	char p[PATH_MAX], err[1024], tok[CA_TOKEN_MAX];
	unsigned char secret[64];
	long long ttl = 0;
	size_t n;
	char *text;
	int i, sl;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--ns") && i + 1 < argc)
			ns = argv[++i];
		else if (!strcmp(argv[i], "--sa") && i + 1 < argc)
			sa = argv[++i];
		else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
			dir = argv[++i];
		else if (!strcmp(argv[i], "-c") && i + 1 < argc)
			ini = argv[++i];
		else if (!strcmp(argv[i], "--ttl") && i + 1 < argc) {
			ttl = ca_parse_secs(argv[++i]);
			if (ttl <= 0) {
				fprintf(stderr, "mesh ca token: --ttl '%s' is not a duration (e.g. 1h, 24h, 30d)\n", argv[i]);
				return 2;
			}
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return ca_usage(stdout);
		else {
			fprintf(stderr, "mesh ca token: unknown argument '%s'\n", argv[i]);
			return ca_usage(stderr);
		}
	}
	if (!ns || !sa || (!dir && !ini)) {
		fprintf(stderr, "mesh ca token: --ns NS --sa SA and the CA (--dir DIR or -c ca.ini) are required\n");
		return 2;
	}
	if (!ca_valid_name(ns, strlen(ns)) || !ca_valid_name(sa, strlen(sa))) {
		fprintf(stderr, "mesh ca token: '%s' / '%s': names are lowercase letters, digits, '-' and '.'\n", ns, sa);
		return 2;
	}
	if (ca_load_config(&c, ini, dir, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	ca_path_join(p, sizeof(p), c.dir, c.secret ? c.secret : "token.secret");
	text = ca_read_file(p, 4096, &n);
	if (!text) {
		fprintf(stderr, "mesh ca token: %s: %s (run `mesh ca init --dir %s` first?)\n", p, strerror(errno), c.dir);
		ca_config_free(&c);
		return 1;
	}
	while (n && (text[n - 1] == '\n' || text[n - 1] == '\r'))
		text[--n] = '\0';
	sl = ca_unhex(text, n, secret, sizeof(secret));
	memset(text, 0, n);
	free(text);
	if (sl < 16 || ca_token_make(secret, (size_t)sl, ns, sa, ttl ? (long long)time(NULL) + ttl : 0, tok, sizeof(tok)) < 0) {
		fprintf(stderr, "mesh ca token: %s is not a token secret (64 hex digits)\n", p);
		ca_config_free(&c);
		return 1;
	}
	memset(secret, 0, sizeof(secret));
	printf("%s\n", tok);
	fprintf(stderr, "token for spiffe://%s/ns/%s/sa/%s%s\n", c.trust_domain, ns, sa, ttl ? "" : " (no expiry)");
	ca_config_free(&c);
	return 0;
}

/* ------------------------------------------------------------------ in-process use */

struct ca *ca_open(const char *ini, char *err, size_t errlen)
{
	struct ca *ca = calloc(1, sizeof(*ca));

	if (!ca) {
		ca_errf(err, errlen, "out of memory");
		return NULL;
	}
	ca->lfd = -1;
	if (tls_global_init() < 0) {
		ca_errf(err, errlen, "no entropy for the random generator");
		free(ca);
		return NULL;
	}
	if (ca_load_config(&ca->cfg, ini, NULL, err, errlen) < 0) {
		free(ca);
		return NULL;
	}
	if (ca_load(ca, err, errlen) < 0) {
		char e2[1024];

		snprintf(e2, sizeof(e2), "%s", err);
		ca_errf(err, errlen, "%s: %s", ini, e2);
		ca_free(ca);
		free(ca);
		return NULL;
	}
	return ca;
}

int ca_listen(struct ca *ca, struct ev_loop *loop, char *err, size_t errlen)
{
	struct tls_cert_info info[4];
	char e2[256];
	int n;

	ca->lfd = net_listen((struct sockaddr *)&ca->cfg.listen.ss, ca->cfg.listen.len);
	if (ca->lfd < 0) {
		ca_errf(err, errlen, "listen %s: %s (another CA running? change [ca] listen)", ca->cfg.listen.text,
		        strerror(errno));
		return -1;
	}
	ca->loop = loop;
	ev_io_init(&ca->lio, ca_accept_cb, ca->lfd, EV_READ);
	ev_io_start(loop, &ca->lio);
	n = tls_chain_info(ca->bundle_pem, strlen(ca->bundle_pem), info, 4, e2, sizeof(e2));
	log_info("serving on %s: trust domain %s, certificates for %lld s, root fingerprint %s", ca->cfg.listen.text,
	         ca->cfg.trust_domain, ca->cfg.cert_ttl, n > 0 ? info[0].fingerprint : "?");
	if (ca->cfg.n_allow_ns) {
		size_t i;
		char list[1024] = "";

		for (i = 0; i < ca->cfg.n_allow_ns; i++)
			snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "", ca->cfg.allow_ns[i]);
		log_warn("*** LAB MODE: allow_namespaces = %s: ANY client can get ANY identity in these namespaces "
		         "WITHOUT a token. Never use this outside a lab. ***", list);
	}
	return 0;
}

struct tls_creds *ca_issue_creds(struct ca *ca, const char *ns, const char *sa, char *err, size_t errlen)
{
	char id[600];
	long long now = time(NULL);
	struct tls_issue rq = { "O=mesh", id, NULL, 0, 0, -1, now - ca->cfg.clock_skew, now + ca->cfg.cert_ttl };
	struct tls_creds *cr = NULL;
	char *key, *crt = NULL, *chain = NULL;
	size_t l;

	if (rq.not_after > ca->issuer_not_after)
		rq.not_after = ca->issuer_not_after;
	if (tls_spiffe_id(id, sizeof(id), ca->cfg.trust_domain, ns, sa) < 0) {
		ca_errf(err, errlen, "identity too long");
		return NULL;
	}
	if (!(key = tls_key_generate(err, errlen)))
		return NULL;
	if ((crt = tls_issue_for_key(ca->issuer, &rq, key, err, errlen))) {
		l = strlen(crt) + strlen(ca->parents_pem) + 1;
		if ((chain = malloc(l))) {
			snprintf(chain, l, "%s%s", crt, ca->parents_pem);
			cr = tls_creds_new(chain, key, ca->bundle_pem, err, errlen);
		}
	}
	memset(key, 0, strlen(key));
	free(key);
	free(crt);
	free(chain);
	return cr;
}

const char *ca_trust_domain(const struct ca *ca)
{
	return ca->cfg.trust_domain;
}

void ca_close(struct ca *ca)
{
	if (!ca)
		return;
	if (ca->lfd >= 0) {  /* open connections are left to the exiting process */
		ev_io_stop(ca->loop, &ca->lio);
		close(ca->lfd);
		log_info("stopping: %lu certificates signed, %lu refused", ca->signed_count, ca->refused_count);
	}
	ca_free(ca);
	free(ca);
}

static int ca_serve(const char *ini)
{
	struct ev_loop *loop;
	ev_signal sigint, sigterm;
	char err[2048];
	struct ca *ca;

	log_prefix = "ca";
	if (!(ca = ca_open(ini, err, sizeof(err)))) {
		fprintf(stderr, "mesh ca: %s\n", err);
		return 1;
	}
	log_level = ca->cfg.log_level;
	signal(SIGPIPE, SIG_IGN);
	loop = ev_default_loop(EVBACKEND_EPOLL | EVFLAG_NOENV);
	if (ca_listen(ca, loop, err, sizeof(err)) < 0) {
		fprintf(stderr, "mesh ca: %s\n", err);
		ca_close(ca);
		return 1;
	}
	ev_signal_init(&sigint, ca_stop_cb, SIGINT);
	ev_signal_start(loop, &sigint);
	ev_signal_init(&sigterm, ca_stop_cb, SIGTERM);
	ev_signal_start(loop, &sigterm);
	ev_run(loop, 0);
	ca_close(ca);
	return 0;
}

int ca_main(int argc, char **argv)
{
	const char *ini = NULL;
	int i;

	if (argc >= 2 && !strcmp(argv[1], "init"))
		return ca_init(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "token"))
		return ca_token_cmd(argc - 1, argv + 1);
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-c") && i + 1 < argc)
			ini = argv[++i];
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return ca_usage(stdout);
		else {
			fprintf(stderr, "mesh ca: unknown argument '%s'\n", argv[i]);
			return ca_usage(stderr);
		}
	}
	if (!ini) {
		fprintf(stderr, "mesh ca: -c ca.ini is required (make one with `mesh ca init --dir DIR`)\n");
		return ca_usage(stderr);
	}
	return ca_serve(ini);
}

/* ------------------------------------------------------------------ mesh cert */

static void ca_fmt_time(double t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void ca_fmt_span(long long s, char *out, size_t cap)
{
	long long a = s < 0 ? -s : s;

	if (a >= 2 * 86400)
		snprintf(out, cap, "%lldd%lldh", a / 86400, a % 86400 / 3600);
	else if (a >= 3600)
		snprintf(out, cap, "%lldh%02lldm", a / 3600, a % 3600 / 60);
	else
		snprintf(out, cap, "%lldm%02llds", a / 60, a % 60);
}

static int cert_show(int argc, char **argv)
{
	struct tls_cert_info info[16];
	char err[512], nb[32], na[32], span[64];
	const char *file = argc >= 2 ? argv[1] : NULL;
	long long now = time(NULL);
	size_t len;
	char *pem;
	int n, i;

	if (!file || argc > 2) {
		fprintf(stderr, "usage: mesh cert show FILE|-   (a PEM certificate or chain, or one DER certificate)\n");
		return 2;
	}
	pem = ca_read_file(file, 1 << 20, &len);
	if (!pem) {
		fprintf(stderr, "mesh cert show: %s: %s\n", file, strerror(errno));
		return 1;
	}
	n = tls_chain_info(pem, len, info, 16, err, sizeof(err));
	free(pem);
	if (n < 0) {
		fprintf(stderr, "mesh cert show: %s: %s\n", file, err);
		return 1;
	}
	for (i = 0; i < n; i++) {
		long long left = (long long)info[i].not_after - now;

		ca_fmt_time(info[i].not_before, nb);
		ca_fmt_time(info[i].not_after, na);
		ca_fmt_span(left, span, sizeof(span));
		if (n > 1)
			printf("%scertificate %d of %d\n", i ? "\n" : "", i + 1, n);
		printf("identity:    %s\n", info[i].id[0] ? info[i].id : info[i].is_ca ? "(a CA)" : "(no SPIFFE id)");
		printf("subject:     %s\n", info[i].subject);
		printf("issuer:      %s\n", info[i].issuer);
		printf("serial:      %s\n", info[i].serial);
		printf("not before:  %s%s\n", nb, info[i].not_before > (double)now ? " (NOT YET VALID)" : "");
		printf("not after:   %s\n", na);
		if (left > 0)
			printf("expires in:  %s\n", span);
		else
			printf("expires in:  EXPIRED %s ago\n", span);
		printf("fingerprint: sha256 %s\n", info[i].fingerprint);
		printf("ca:          %s\n", info[i].is_ca ? "yes" : "no");
	}
	return 0;
}

int ca_cert_main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "show"))
		return cert_show(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "request"))
		return agent_request_main(argc - 1, argv + 1);
	fprintf(stderr, "usage: mesh cert show FILE|-\n"
	                "       mesh cert request --ca HOST:PORT (--trust-bundle F | --ca-fingerprint HEX) --ns NS --sa SA\n"
	                "                         [--token-file F] [--trust-domain TD] [--out PREFIX]\n");
	return argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) ? 0 : 2;
}
