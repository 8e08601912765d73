/*
 * conf: INI text -> one validated, immutable, refcounted struct conf (conf.h).
 *
 * Data enters through conf_load() / conf_load_string(). A file is read whole,
 * then handed to inih, whose handler looks each key up in the schema tables
 * below (section kind -> keys -> value parser + destination offset) and writes
 * the parsed value straight into struct conf. Section headers are found by our
 * own line scan, not by inih: the Debian inih we build ignores
 * INI_CALL_HANDLER_ON_NEW_SECTION (its patch 0002 makes it a static false) and
 * truncates section names to 49 bytes, shorter than a 63-byte service name.
 * The scan walks the text in step with inih's line numbers, so it also reports
 * every syntax error, not just the first one inih returns.
 *
 * After the last file, finish() fills defaults that depend on other keys,
 * resolves references ([listen] service.NAME) and checks rules that span keys.
 * Every problem is collected as "file:line: message"; any error frees the
 * half-built config and returns NULL. Data leaves as the struct, conf_render()
 * (INI text that re-parses to the same config) and conf_find_service().
 *
 * To add a section (issue #3: [destination X], [route X/Y]): write its key
 * table, add a SEC_ id and a sections[] entry; a named section also gets
 * open/close/nth hooks like [service NAME].
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ini.h"
#include "conf.h"

#if !INI_HANDLER_LINENO
#error "conf.c needs inih built with -DINI_HANDLER_LINENO=1"
#endif
#if INI_ALLOW_MULTILINE
#error "conf.c expects -DINI_ALLOW_MULTILINE=0 (indented lines would change meaning)"
#endif

#define CONF_MAX_FILE   (1u << 20)         /* a config file larger than this is a mistake */
#define CONF_MAX_ERRORS 50                 /* more are counted, not listed */
#define CONF_LINE_MAX   (INI_MAX_LINE - 2) /* longest line inih reads whole (plus '\n') */
#define CONF_MAX_KEPT   10000              /* errors kept for sorting; the rest are counted */
#define KEYS_MAX        32                 /* keys per section kind */

#define PART_PROXY 1u                      /* [workload] [listen] [proxy] [log] [control] */
#define PART_MESH  2u                      /* [mesh] [service NAME]: also allowed in a mesh file */

#define SEC_MS  1000ull
#define MIN_MS  (60 * SEC_MS)
#define HOUR_MS (60 * MIN_MS)

/* ------------------------------------------------------------ small helpers */

/* Allocation failure while loading a config is not recoverable in any useful
 * way (Redis's zmalloc takes the same stance). */
static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p) {
		fputs("conf: out of memory\n", stderr);
		abort();
	}
	return p;
}

static void *xmalloc(size_t n)
{
	return xrealloc(NULL, n);
}

static char *xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

static char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

/* Makes room for element n of an array that holds n and has no capacity field:
 * capacities are powers of two, so it is full exactly when n is one. */
static void *grow(void *v, size_t n, size_t size)
{
	if (n && (n & (n - 1)))
		return v;
	return xrealloc(v, (n ? 2 * n : 1) * size);
}

struct sb {                    /* growing string */
	char *p;                   /* NUL-terminated once anything was added */
	size_t len, cap;
};

static void sb_addn(struct sb *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 128;

		while (cap < b->len + n + 1)
			cap *= 2;
		b->p = xrealloc(b->p, cap);
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_add(struct sb *b, const char *s)
{
	sb_addn(b, s, strlen(s));
}

static void sb_vprintf(struct sb *b, const char *fmt, va_list ap)
{
	va_list aq;
	int n;

	va_copy(aq, ap);
	n = vsnprintf(NULL, 0, fmt, aq);
	va_end(aq);
	if (n <= 0)
		return;
	sb_addn(b, "", 0);                     /* make sure p exists */
	if (b->len + (size_t)n + 1 > b->cap) {
		size_t cap = b->cap;

		while (cap < b->len + (size_t)n + 1)
			cap *= 2;
		b->p = xrealloc(b->p, cap);
		b->cap = cap;
	}
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

static void sb_printf(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sb *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sb_vprintf(b, fmt, ap);
	va_end(ap);
}

/* s for a message: at most ~60 bytes, control bytes shown as '?' */
static const char *clip(const char *s, char *buf, size_t n)
{
	size_t i, max = n > 64 ? 60 : n - 4;

	for (i = 0; s[i] && i < max; i++)
		buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	if (s[i])
		memcpy(buf + i, "...", 3), i += 3;
	buf[i] = '\0';
	return buf;
}

static int all_digits(const char *s, size_t n)
{
	size_t i;

	if (!n)
		return 0;
	for (i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

/* Optimal-string-alignment distance, case-insensitive; names are short. */
static size_t edit_distance(const char *a, const char *b)
{
	unsigned char d[65][65];
	size_t n = strlen(a), m = strlen(b), i, j;

	if (n > 64 || m > 64)
		return SIZE_MAX;
	for (i = 0; i <= n; i++)
		d[i][0] = (unsigned char)i;
	for (j = 0; j <= m; j++)
		d[0][j] = (unsigned char)j;
	for (i = 1; i <= n; i++)
		for (j = 1; j <= m; j++) {
			int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
			unsigned v = d[i - 1][j - 1] + (ca != cb);

			if (d[i - 1][j] + 1u < v)
				v = d[i - 1][j] + 1u;
			if (d[i][j - 1] + 1u < v)
				v = d[i][j - 1] + 1u;
			if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
			    tolower((unsigned char)a[i - 2]) == cb && d[i - 2][j - 2] + 1u < v)
				v = d[i - 2][j - 2] + 1u;
			d[i][j] = (unsigned char)v;
		}
	return d[n][m];
}

/* The candidate closest to word, if close enough to be a likely typo. */
static const char *closest(const char *word, const char *const *cands, size_t n)
{
	const char *best = NULL;
	size_t bestd = SIZE_MAX, i;

	for (i = 0; i < n; i++) {
		size_t len = strlen(cands[i]);
		size_t limit = len <= 3 ? 1 : len <= 6 ? 2 : 3;
		size_t d = edit_distance(word, cands[i]);

		if (d <= limit && d < bestd) {
			best = cands[i];
			bestd = d;
		}
	}
	return best;
}

/* DNS label (RFC 1123; RFC 1035 when letter_first, as Kubernetes Services). */
static int dns_label(const char *s, size_t n, int letter_first)
{
	size_t i;

	if (n < 1 || n > 63)
		return 0;
	for (i = 0; i < n; i++)
		if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-'))
			return 0;
	if (s[0] == '-' || s[n - 1] == '-')
		return 0;
	return !letter_first || islower((unsigned char)s[0]);
}

/* DNS subdomain: labels joined by dots, at most 253 bytes. */
static int dns_name(const char *s)
{
	size_t n = strlen(s);
	const char *p = s, *dot;

	if (n < 1 || n > 253)
		return 0;
	for (;;) {
		dot = strchr(p, '.');
		if (!dns_label(p, dot ? (size_t)(dot - p) : strlen(p), 0))
			return 0;
		if (!dot)
			return 1;
		p = dot + 1;
	}
}

/* ------------------------------------------------------------ value parsers */

static int parse_duration(const char *s, uint32_t *out, char *why, size_t wn)
{
	static const struct { const char *u; uint64_t ms; } units[] = {
		{ "ms", 1 }, { "s", SEC_MS }, { "m", MIN_MS }, { "h", HOUR_MS },
	};
	const char *p = s;
	uint64_t total = 0;
	size_t i;

	if (!*s)
		return snprintf(why, wn, "empty value (e.g. 250ms, 5s, 2m, 1h)"), -1;
	while (*p) {
		uint64_t whole = 0, frac = 0, scale = 1, v;
		const char *start = p, *u;
		size_t ul = 0;

		if (!isdigit((unsigned char)*p))
			return snprintf(why, wn, "not a duration (e.g. 250ms, 5s, 1m30s, 1.5h)"), -1;
		for (; isdigit((unsigned char)*p); p++) {
			whole = whole * 10 + (uint64_t)(*p - '0');
			if (whole > 100000000000ull)
				return snprintf(why, wn, "too large (max 1193h)"), -1;
		}
		if (*p == '.') {
			if (!isdigit((unsigned char)p[1]))
				return snprintf(why, wn, "not a duration (e.g. 250ms, 5s, 1m30s, 1.5h)"), -1;
			for (p++; isdigit((unsigned char)*p); p++) {
				if (scale >= 1000000000ull)
					return snprintf(why, wn, "too many decimals"), -1;
				frac = frac * 10 + (uint64_t)(*p - '0');
				scale *= 10;
			}
		}
		u = p;
		while (isalpha((unsigned char)*p))
			p++, ul++;
		if (!ul) {
			if (start == s && !*p && !whole && !frac)
				return *out = 0, 0;        /* a plain "0" needs no unit */
			if (start == s && !*p)
				return snprintf(why, wn, "missing unit (write %.20ss or %.20sms)", s, s), -1;
			return snprintf(why, wn, "missing unit after '%.*s'", (int)(p - start > 20 ? 20 : p - start), start), -1;
		}
		for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (strlen(units[i].u) == ul && !memcmp(u, units[i].u, ul))
				break;
		if (i == sizeof(units) / sizeof(units[0]))
			return snprintf(why, wn, "unknown unit '%.*s' (use ms, s, m or h)", (int)(ul > 10 ? 10 : ul), u), -1;
		if ((frac * units[i].ms) % scale)
			return snprintf(why, wn, "finer than a millisecond"), -1;
		v = whole * units[i].ms + frac * units[i].ms / scale;
		total += v;
		if (total > UINT32_MAX)
			return snprintf(why, wn, "too large (max 1193h)"), -1;
	}
	*out = (uint32_t)total;
	return 0;
}

static int parse_size(const char *s, size_t *out, char *why, size_t wn)
{
	uint64_t v = 0, mul = 1;
	const char *p = s;

	if (!*s)
		return snprintf(why, wn, "empty value (e.g. 512, 64k, 1m)"), -1;
	if (!isdigit((unsigned char)*p))
		return snprintf(why, wn, "not a size (e.g. 512, 64k, 1m, 1g)"), -1;
	for (; isdigit((unsigned char)*p); p++) {
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > (1ull << 40))
			return snprintf(why, wn, "too large"), -1;
	}
	switch (tolower((unsigned char)*p)) {
	case 'k': mul = 1ull << 10; p++; break;
	case 'm': mul = 1ull << 20; p++; break;
	case 'g': mul = 1ull << 30; p++; break;
	}
	if (mul > 1 && tolower((unsigned char)*p) == 'i' && tolower((unsigned char)p[1]) == 'b')
		p += 2;
	else if (tolower((unsigned char)*p) == 'b')
		p++;
	if (*p)
		return snprintf(why, wn, "not a size (e.g. 512, 64k, 1m, 1g)"), -1;
	if (v > (1ull << 40) / mul || v * mul > SIZE_MAX)
		return snprintf(why, wn, "too large"), -1;
	*out = (size_t)(v * mul);
	return 0;
}

static int parse_uint(const char *s, uint64_t max, uint64_t *out, char *why, size_t wn)
{
	uint64_t v = 0;
	size_t n = strlen(s), i;

	if (!all_digits(s, n))
		return snprintf(why, wn, "not a number"), -1;
	for (i = 0; i < n; i++) {
		v = v * 10 + (uint64_t)(s[i] - '0');
		if (v > max)
			return snprintf(why, wn, "too large"), -1;
	}
	*out = v;
	return 0;
}

static int parse_bool(const char *s, int *out)
{
	static const char *const yes[] = { "on", "true", "yes", "1" }, *const no[] = { "off", "false", "no", "0" };
	size_t i;

	for (i = 0; i < 4; i++) {
		if (!strcasecmp(s, yes[i]))
			return *out = 1, 0;
		if (!strcasecmp(s, no[i]))
			return *out = 0, 0;
	}
	return -1;
}

static int parse_addr(const char *s, struct conf_addr *a, int connect_target, char *why, size_t wn)
{
	char host[72];
	const char *port, *colon;
	size_t hl;
	uint64_t pv;
	char tmp[INET6_ADDRSTRLEN];

	memset(a, 0, sizeof(*a));
	if (!*s)
		return snprintf(why, wn, "empty address"), -1;
	if (strlen(s) > 64)
		return snprintf(why, wn, "too long for an address"), -1;
	if (*s == '[') {
		const char *close = strchr(s, ']');

		if (!close)
			return snprintf(why, wn, "missing ']' after the IPv6 address"), -1;
		if (close[1] != ':')
			return snprintf(why, wn, "missing port (e.g. [::1]:8080)"), -1;
		hl = (size_t)(close - s - 1);
		memcpy(host, s + 1, hl);
		host[hl] = '\0';
		port = close + 2;
		if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)&a->ss)->sin6_addr) != 1)
			return snprintf(why, wn, "'%s' is not an IPv6 address", host), -1;
		a->ss.ss_family = AF_INET6;
		a->len = sizeof(struct sockaddr_in6);
	} else {
		colon = strchr(s, ':');
		if (colon && strchr(colon + 1, ':'))
			return snprintf(why, wn, "IPv6 addresses need brackets, e.g. [::1]:8080"), -1;
		if (!colon && all_digits(s, strlen(s))) {
			hl = 0;                         /* "9080": a port alone */
			port = s;
		} else if (!colon) {
			return snprintf(why, wn, "missing port (e.g. 127.0.0.1:8080)"), -1;
		} else {
			hl = (size_t)(colon - s);
			port = colon + 1;
		}
		memcpy(host, s, hl);
		host[hl] = '\0';
		if (!hl)
			strcpy(host, connect_target ? "127.0.0.1" : "0.0.0.0");
		else if (!strcasecmp(host, "localhost"))
			strcpy(host, "127.0.0.1");
		if (inet_pton(AF_INET, host, &((struct sockaddr_in *)&a->ss)->sin_addr) != 1)
			return snprintf(why, wn, "'%s' is not an IP address (names are not resolved; use e.g. 127.0.0.1)", host), -1;
		a->ss.ss_family = AF_INET;
		a->len = sizeof(struct sockaddr_in);
	}
	if (!all_digits(port, strlen(port)) || strlen(port) > 5 ||
	    parse_uint(port, 65535, &pv, host, sizeof(host)) < 0 || pv == 0)
		return memset(a, 0, sizeof(*a)), snprintf(why, wn, "'%s' is not a port (1..65535)", port), -1;
	if (a->ss.ss_family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&a->ss;

		in->sin_port = htons((uint16_t)pv);
		if (connect_target && in->sin_addr.s_addr == htonl(INADDR_ANY))
			return memset(a, 0, sizeof(*a)), snprintf(why, wn, "0.0.0.0 is not an address to connect to (use 127.0.0.1)"), -1;
		inet_ntop(AF_INET, &in->sin_addr, tmp, sizeof(tmp));
		snprintf(a->text, sizeof(a->text), "%s:%u", tmp, (unsigned)pv);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a->ss;

		in6->sin6_port = htons((uint16_t)pv);
		if (connect_target && IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr))
			return memset(a, 0, sizeof(*a)), snprintf(why, wn, "[::] is not an address to connect to (use [::1])"), -1;
		inet_ntop(AF_INET6, &in6->sin6_addr, tmp, sizeof(tmp));
		snprintf(a->text, sizeof(a->text), "[%s]:%u", tmp, (unsigned)pv);
	}
	a->set = 1;
	return 0;
}

static void labels_free(struct conf_labels *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		free(l->v[i].key);
		free(l->v[i].value);
	}
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static int label_key_char(int c)
{
	return isalnum(c) || c == '.' || c == '_' || c == '-' || c == '/';
}

static int label_value_char(int c)
{
	return isalnum(c) || c == '.' || c == '_' || c == '-';
}

/* "app=reviews, version=v2"; an empty string is no labels. Kubernetes label
 * syntax, except that a value may not be empty. */
static int parse_labels(const char *s, struct conf_labels *l, char *why, size_t wn)
{
	const char *p = s;

	l->v = NULL;
	l->n = 0;
	while (isspace((unsigned char)*p))
		p++;
	if (!*p)
		return 0;
	for (;;) {
		const char *item = p, *comma = strchr(p, ','), *end = comma ? comma : p + strlen(p);
		const char *eq = memchr(item, '=', (size_t)(end - item));
		const char *k0 = item, *k1, *v0, *v1, *q;
		int kl, vl;
		size_t i;

		while (k0 < end && isspace((unsigned char)*k0))
			k0++;
		if (k0 == end) {
			snprintf(why, wn, "empty label (stray ',')");
			goto fail;
		}
		if (!eq) {
			snprintf(why, wn, "label '%.*s' needs a value (key=value)", (int)(end - k0 > 40 ? 40 : end - k0), k0);
			goto fail;
		}
		k1 = eq;
		while (k1 > k0 && isspace((unsigned char)k1[-1]))
			k1--;
		v0 = eq + 1;
		while (v0 < end && isspace((unsigned char)*v0))
			v0++;
		v1 = end;
		while (v1 > v0 && isspace((unsigned char)v1[-1]))
			v1--;
		kl = (int)(k1 - k0 > 40 ? 40 : k1 - k0);
		vl = (int)(v1 - v0 > 40 ? 40 : v1 - v0);
		if (k1 == k0) {
			snprintf(why, wn, "label with an empty key");
			goto fail;
		}
		if (v1 == v0) {
			snprintf(why, wn, "label '%.*s' has an empty value", kl, k0);
			goto fail;
		}
		if (k1 - k0 > 253 || v1 - v0 > 63) {
			snprintf(why, wn, "label too long (key at most 253, value at most 63 characters)");
			goto fail;
		}
		for (q = k0; q < k1; q++)
			if (!label_key_char((unsigned char)*q)) {
				snprintf(why, wn, "label key '%.*s' may only hold letters, digits and . _ - /", kl, k0);
				goto fail;
			}
		for (q = v0; q < v1; q++)
			if (!label_value_char((unsigned char)*q)) {
				snprintf(why, wn, "label value '%.*s' may only hold letters, digits and . _ -", vl, v0);
				goto fail;
			}
		for (i = 0; i < l->n; i++)
			if (strlen(l->v[i].key) == (size_t)(k1 - k0) && !memcmp(l->v[i].key, k0, (size_t)(k1 - k0))) {
				snprintf(why, wn, "label '%.*s' is given twice", kl, k0);
				goto fail;
			}
		l->v = grow(l->v, l->n, sizeof(*l->v));
		l->v[l->n].key = xstrndup(k0, (size_t)(k1 - k0));
		l->v[l->n].value = xstrndup(v0, (size_t)(v1 - v0));
		l->n++;
		if (!comma)
			return 0;
		p = comma + 1;
	}
fail:
	labels_free(l);
	return -1;
}

int conf_parse_duration(const char *s, uint32_t *ms)
{
	char why[128];

	return parse_duration(s, ms, why, sizeof(why));
}

int conf_parse_size(const char *s, size_t *out)
{
	char why[128];

	return parse_size(s, out, why, sizeof(why));
}

int conf_parse_addr(const char *s, struct conf_addr *a, int connect_target)
{
	char why[160];

	return parse_addr(s, a, connect_target, why, sizeof(why));
}

int conf_parse_labels(const char *s, struct conf_labels *l)
{
	char why[160];

	return parse_labels(s, l, why, sizeof(why));
}

int conf_parse_bool(const char *s, int *out)
{
	return parse_bool(s, out);
}

void conf_labels_free(struct conf_labels *l)
{
	labels_free(l);
}

const char *conf_label(const struct conf_labels *l, const char *key)
{
	size_t i;

	for (i = 0; l && i < l->n; i++)
		if (!strcmp(l->v[i].key, key))
			return l->v[i].value;
	return NULL;
}

/* ------------------------------------------------------------ the schema */

enum vtype {
	V_SERVICE_NAME,   /* char *: DNS-1035 label */
	V_NAMESPACE,      /* char *: DNS-1123 label */
	V_DNS_NAME,       /* char *: DNS-1123 subdomain */
	V_LABELS,         /* struct conf_labels */
	V_APP,            /* struct conf_addr, connect target */
	V_LISTEN,         /* struct conf_addr, listen form, or "off" */
	V_SERVICE_LISTEN, /* [listen] service.NAME: deferred until services are known */
	V_DURATION,       /* uint32_t ms, bounds min..max */
	V_SIZE,           /* size_t, bounds */
	V_COUNT,          /* size_t, plain number, bounds */
	V_PORT,           /* uint16_t */
	V_BOOL,           /* int */
	V_ENUM,           /* int index into words */
	V_ACCESS_LOG,     /* struct conf_log.access_log(+_off) */
	V_MESH_FILE,      /* char *: resolved path, read after this file */
	V_ENDPOINT,       /* appends to the struct conf_service */
};

#define K_LIST   1u   /* may repeat; each line adds one */
#define K_PREFIX 2u   /* name is a prefix: "service." matches service.reviews */

struct conf_key {
	const char *name;
	enum vtype type;
	size_t off;                /* destination, from the section's base */
	uint64_t min, max;         /* bounds of numbers (milliseconds for durations) */
	const char *const *words;  /* V_ENUM: accepted words; the index is stored */
	unsigned flags;            /* K_* */
};

#define KEY(n, t, o, ...) { .name = (n), .type = (t), .off = (o), __VA_ARGS__ }
#define NKEYS(a) (sizeof(a) / sizeof((a)[0]))

static const char *const log_formats[] = { "text", "json", NULL };
static const char *const log_levels[] = { "error", "warn", "info", "debug", NULL };
_Static_assert(sizeof(enum conf_log_level) == sizeof(int), "V_ENUM stores an int");

#define WL(f) offsetof(struct conf_workload, f)
static const struct conf_key workload_keys[] = {
	KEY("service", V_SERVICE_NAME, WL(service)),
	KEY("namespace", V_NAMESPACE, WL(namespace)),
	KEY("service_account", V_DNS_NAME, WL(service_account)),
	KEY("labels", V_LABELS, WL(labels)),
	KEY("app", V_APP, WL(app)),
};

#define LS(f) offsetof(struct conf_listen, f)
static const struct conf_key listen_keys[] = {
	KEY("inbound", V_LISTEN, LS(inbound)),
	KEY("outbound", V_LISTEN, LS(outbound)),
	KEY("admin", V_LISTEN, LS(admin)),
	KEY("service.", V_SERVICE_LISTEN, 0, .flags = K_PREFIX),
};

#define PX(f) offsetof(struct conf_proxy, f)
static const struct conf_key proxy_keys[] = {
	KEY("max_request_line", V_SIZE, PX(max_request_line), .min = 256, .max = 1u << 20),
	KEY("max_header_size", V_SIZE, PX(max_header_size), .min = 1u << 10, .max = 8u << 20),
	KEY("max_headers", V_COUNT, PX(max_headers), .min = 1, .max = 1000),
	KEY("header_timeout", V_DURATION, PX(header_timeout), .min = 1, .max = HOUR_MS),
	KEY("idle_timeout", V_DURATION, PX(idle_timeout), .min = 0, .max = 24 * HOUR_MS),
	KEY("upstream_idle_timeout", V_DURATION, PX(upstream_idle_timeout), .min = 0, .max = 24 * HOUR_MS),
	KEY("connect_timeout", V_DURATION, PX(connect_timeout), .min = 1, .max = 10 * MIN_MS),
	KEY("request_timeout", V_DURATION, PX(request_timeout), .min = 0, .max = 24 * HOUR_MS),
	KEY("stream_idle_timeout", V_DURATION, PX(stream_idle_timeout), .min = 0, .max = 24 * HOUR_MS),
	KEY("drain_timeout", V_DURATION, PX(drain_timeout), .min = 0, .max = HOUR_MS),
	KEY("max_idle_per_endpoint", V_COUNT, PX(max_idle_per_endpoint), .min = 0, .max = 10000),
};

#define LG(f) offsetof(struct conf_log, f)
static const struct conf_key log_keys[] = {
	KEY("access_log", V_ACCESS_LOG, LG(access_log)),
	KEY("access_log_format", V_ENUM, LG(access_log_json), .words = log_formats),
	KEY("level", V_ENUM, LG(level), .words = log_levels),
};

static const struct conf_key control_keys[] = {
	KEY("mesh", V_MESH_FILE, offsetof(struct conf, mesh_path)),
};

static const struct conf_key mesh_keys[] = {
	KEY("domain", V_DNS_NAME, offsetof(struct conf_mesh, domain)),
};

#define SV(f) offsetof(struct conf_service, f)
static const struct conf_key service_keys[] = {
	KEY("namespace", V_NAMESPACE, SV(namespace)),
	KEY("port", V_PORT, SV(port)),
	KEY("endpoint", V_ENDPOINT, 0, .flags = K_LIST),
};

struct ld;
struct where {
	const char *file;          /* points into conf->files */
	int line;                  /* 0 = not set / a default */
};

enum { SEC_WORKLOAD, SEC_LISTEN, SEC_PROXY, SEC_LOG, SEC_CONTROL, SEC_MESH, SEC_SERVICE, SEC_COUNT };

struct section_kind {
	const char *name;          /* "proxy", "service" */
	unsigned part;             /* PART_PROXY or PART_MESH */
	size_t conf_off;           /* singleton: its struct inside struct conf */
	const struct conf_key *keys;
	size_t n_keys;
	/* named sections ([service NAME]) only: */
	int (*open)(struct ld *ld, const char *name, const struct where *w); /* sets ld->base */
	void (*close)(struct ld *ld);
	const void *(*nth)(const struct conf *c, size_t i, const char **name); /* for rendering */
};

static int service_open(struct ld *ld, const char *name, const struct where *w);
static void service_close(struct ld *ld);
static const void *service_nth(const struct conf *c, size_t i, const char **name);

#define SECTION(n, p, o, k, ...) { .name = (n), .part = (p), .conf_off = (o), .keys = (k), .n_keys = NKEYS(k), __VA_ARGS__ }
static const struct section_kind sections[SEC_COUNT] = {
	[SEC_WORKLOAD] = SECTION("workload", PART_PROXY, offsetof(struct conf, workload), workload_keys),
	[SEC_LISTEN] = SECTION("listen", PART_PROXY, offsetof(struct conf, listen), listen_keys),
	[SEC_PROXY] = SECTION("proxy", PART_PROXY, offsetof(struct conf, proxy), proxy_keys),
	[SEC_LOG] = SECTION("log", PART_PROXY, offsetof(struct conf, log), log_keys),
	[SEC_CONTROL] = SECTION("control", PART_PROXY, 0, control_keys),
	[SEC_MESH] = SECTION("mesh", PART_MESH, offsetof(struct conf, mesh), mesh_keys),
	[SEC_SERVICE] = SECTION("service", PART_MESH, 0, service_keys,
	                        .open = service_open, .close = service_close, .nth = service_nth),
};
_Static_assert(NKEYS(workload_keys) <= KEYS_MAX && NKEYS(listen_keys) <= KEYS_MAX &&
               NKEYS(proxy_keys) <= KEYS_MAX && NKEYS(log_keys) <= KEYS_MAX &&
               NKEYS(control_keys) <= KEYS_MAX && NKEYS(mesh_keys) <= KEYS_MAX &&
               NKEYS(service_keys) <= KEYS_MAX, "raise KEYS_MAX");

/* ------------------------------------------------------------ loader state */

struct src {                   /* one file being parsed */
	const char *file;          /* name for messages (in conf->files) */
	char *dir;                 /* directory relative paths start from; NULL = cwd */
	const char *cur;           /* start of line `line` in the text */
	int line;                  /* number of the line at cur */
	unsigned parts;            /* PART_* sections allowed here */
	int *bad;                  /* lines with a syntax error reported */
	size_t n_bad;
};

struct svc_listen {            /* [listen] service.NAME = addr, resolved in finish() */
	char *ref;                 /* "NAME" or "NAME.NAMESPACE" */
	struct conf_addr addr;
	struct where at;
	struct conf_service *svc;  /* what it resolved to, once assigned */
};

struct msg {
	int file;                  /* index in conf->files; -1 = none */
	int line;
	size_t seq;                /* keeps reports of one line in order */
	char *text;                /* "file:line: message" */
};

struct ld {
	struct conf *c;
	struct src *src;
	/* the open section */
	const struct section_kind *sec;    /* NULL before the first header or after a bad one */
	int skip;                  /* keys are ignored until the next header (bad header) */
	void *base;                /* where its keys write */
	char title[96];            /* "[service reviews]" for messages */
	struct where *seen;        /* per key: where it was set */
	struct where tmp_seen[KEYS_MAX];
	struct where single_seen[SEC_COUNT][KEYS_MAX];
	struct where single_at[SEC_COUNT];
	size_t svc;                /* index of the open [service] */
	/* deferred */
	struct svc_listen *sl;
	size_t n_sl;
	struct where mesh_at;      /* the `mesh =` line */
	/* messages: kept apart so they can be listed in file and line order */
	struct msg *msgs;
	size_t n_msgs;
	size_t n_dropped;          /* beyond CONF_MAX_KEPT: counted only */
};

static void ld_verr(struct ld *ld, const struct where *w, const char *fmt, va_list ap)
{
	struct sb b = { 0 };
	struct msg *m;
	size_t i;

	if (ld->n_msgs >= CONF_MAX_KEPT) {
		ld->n_dropped++;
		return;
	}
	if (w && w->file && w->line > 0)
		sb_printf(&b, "%s:%d: ", w->file, w->line);
	else if (w && w->file)
		sb_printf(&b, "%s: ", w->file);
	sb_vprintf(&b, fmt, ap);
	ld->msgs = grow(ld->msgs, ld->n_msgs, sizeof(*ld->msgs));
	m = &ld->msgs[ld->n_msgs];
	m->file = -1;
	for (i = 0; w && i < ld->c->n_files; i++)
		if (ld->c->files[i] == w->file)
			m->file = (int)i;
	m->line = w ? w->line : 0;
	m->seq = ld->n_msgs++;
	m->text = b.p;
}

static void ld_err(struct ld *ld, const struct where *w, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void ld_err(struct ld *ld, const struct where *w, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ld_verr(ld, w, fmt, ap);
	va_end(ap);
}

static void ld_warn(struct ld *ld, const struct where *w, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void ld_warn(struct ld *ld, const struct where *w, const char *fmt, ...)
{
	struct conf *c = ld->c;
	struct sb b = { 0 };
	va_list ap;

	sb_printf(&b, "%s:%d: warning: ", w->file, w->line);
	va_start(ap, fmt);
	sb_vprintf(&b, fmt, ap);
	va_end(ap);
	c->warnings = grow(c->warnings, c->n_warnings, sizeof(*c->warnings));
	c->warnings[c->n_warnings++] = b.p;
}

/* "KEY = VALUE: why" */
static int bad_value(struct ld *ld, const struct where *w, const char *key, const char *v, const char *why)
{
	char b1[72], b2[72];

	ld_err(ld, w, "%s = %s: %s", clip(key, b1, sizeof(b1)), clip(v, b2, sizeof(b2)), why);
	return -1;
}

static struct where key_at(const struct ld *ld, int sec, const char *key)
{
	size_t i;

	for (i = 0; i < sections[sec].n_keys; i++)
		if (!strcmp(sections[sec].keys[i].name, key))
			return ld->single_seen[sec][i];
	return (struct where){ NULL, 0 };
}

static char *join_path(const char *dir, const char *p)
{
	size_t dl;
	char *r;

	if (!dir || p[0] == '/')
		return xstrdup(p);
	dl = strlen(dir);
	r = xmalloc(dl + strlen(p) + 2);
	memcpy(r, dir, dl);
	if (dl && dir[dl - 1] != '/')
		r[dl++] = '/';
	strcpy(r + dl, p);
	return r;
}

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return NULL;
	return xstrndup(path, slash == path ? 1 : (size_t)(slash - path));
}

/* ------------------------------------------------------------ value dispatch */

static void fmt_duration(uint64_t ms, char *buf, size_t n)
{
	if (!ms)
		snprintf(buf, n, "0");
	else if (ms % HOUR_MS == 0)
		snprintf(buf, n, "%lluh", (unsigned long long)(ms / HOUR_MS));
	else if (ms % MIN_MS == 0)
		snprintf(buf, n, "%llum", (unsigned long long)(ms / MIN_MS));
	else if (ms % SEC_MS == 0)
		snprintf(buf, n, "%llus", (unsigned long long)(ms / SEC_MS));
	else
		snprintf(buf, n, "%llums", (unsigned long long)ms);
}

static void fmt_size(uint64_t v, char *buf, size_t n)
{
	if (v && v % (1ull << 30) == 0)
		snprintf(buf, n, "%llug", (unsigned long long)(v >> 30));
	else if (v && v % (1ull << 20) == 0)
		snprintf(buf, n, "%llum", (unsigned long long)(v >> 20));
	else if (v && v % (1ull << 10) == 0)
		snprintf(buf, n, "%lluk", (unsigned long long)(v >> 10));
	else
		snprintf(buf, n, "%llu", (unsigned long long)v);
}

static int out_of_range(struct ld *ld, const struct where *w, const struct conf_key *k, const char *v)
{
	char lo[32], hi[32], why[96];

	if (k->type == V_DURATION)
		fmt_duration(k->min, lo, sizeof(lo)), fmt_duration(k->max, hi, sizeof(hi));
	else if (k->type == V_SIZE)
		fmt_size(k->min, lo, sizeof(lo)), fmt_size(k->max, hi, sizeof(hi));
	else
		snprintf(lo, sizeof(lo), "%llu", (unsigned long long)k->min),
		snprintf(hi, sizeof(hi), "%llu", (unsigned long long)k->max);
	snprintf(why, sizeof(why), "out of range (allowed %s..%s)", lo, hi);
	return bad_value(ld, w, k->name, v, why);
}

/* why, plus "(did you mean 'default'?)" when only the case is wrong */
static const char *case_hint(const char *v, int (*valid)(const char *), const char *why, char *buf, size_t n)
{
	char low[64];
	size_t i;

	for (i = 0; v[i] && i < sizeof(low) - 1; i++)
		low[i] = (char)tolower((unsigned char)v[i]);
	low[i] = '\0';
	if (v[i] || !strcmp(low, v) || !valid(low))
		return why;                         /* long names get no hint */
	snprintf(buf, n, "%.80s (did you mean '%.63s'?)", why, low);
	return buf;
}

static int valid_service_name(const char *s)
{
	return dns_label(s, strlen(s), 1);
}

static int valid_namespace(const char *s)
{
	return dns_label(s, strlen(s), 0);
}

static int set_string(char **dst, const char *v)
{
	free(*dst);
	*dst = xstrdup(v);
	return 0;
}

static int parse_service_listen(struct ld *ld, const char *name, const char *v, const struct where *w)
{
	const char *ref = name + strlen("service."), *dot = strchr(ref, '.');
	char why[160];
	struct conf_addr a;
	size_t i;

	if (!(dot ? dns_label(ref, (size_t)(dot - ref), 1) && dns_label(dot + 1, strlen(dot + 1), 0)
	          : dns_label(ref, strlen(ref), 1)))
		return bad_value(ld, w, name, v, "expected service.NAME or service.NAME.NAMESPACE with a valid service name");
	if (parse_addr(v, &a, 0, why, sizeof(why)) < 0)
		return bad_value(ld, w, name, v, why);
	for (i = 0; i < ld->n_sl; i++)
		if (!strcmp(ld->sl[i].ref, ref)) {
			ld_err(ld, w, "duplicate key '%s' in [listen] (first set at %s:%d)", name,
			       ld->sl[i].at.file, ld->sl[i].at.line);
			return -1;
		}
	ld->sl = grow(ld->sl, ld->n_sl, sizeof(*ld->sl));
	ld->sl[ld->n_sl].ref = xstrdup(ref);
	ld->sl[ld->n_sl].addr = a;
	ld->sl[ld->n_sl].at = *w;
	ld->sl[ld->n_sl].svc = NULL;
	ld->n_sl++;
	return 0;
}

static int parse_endpoint(struct ld *ld, struct conf_service *svc, const char *name, const char *v,
                          const struct where *w)
{
	struct conf_endpoint ep;
	const char *sp = v;
	char *addr, why[160];
	size_t i;

	memset(&ep, 0, sizeof(ep));
	while (*sp && !isspace((unsigned char)*sp))
		sp++;
	addr = xstrndup(v, (size_t)(sp - v));
	if (sp > v && sp[-1] == ',') {
		free(addr);
		return bad_value(ld, w, name, v, "labels follow the address after a space, without a comma "
		                 "(e.g. 127.0.0.1:9081 version=v1)");
	}
	if (parse_addr(addr, &ep.addr, 1, why, sizeof(why)) < 0) {
		free(addr);
		return bad_value(ld, w, name, v, why);
	}
	free(addr);
	if (parse_labels(sp, &ep.labels, why, sizeof(why)) < 0)
		return bad_value(ld, w, name, v, why);
	for (i = 0; i < svc->n_endpoints; i++)
		if (!strcmp(svc->endpoints[i].addr.text, ep.addr.text)) {
			labels_free(&ep.labels);
			ld_err(ld, w, "endpoint %s is already listed in [service %s] at line %d",
			       ep.addr.text, svc->name, svc->endpoints[i].line);
			return -1;
		}
	ep.line = w->line;
	svc->endpoints = grow(svc->endpoints, svc->n_endpoints, sizeof(*svc->endpoints));
	svc->endpoints[svc->n_endpoints++] = ep;
	return 0;
}

static int parse_value(struct ld *ld, const struct conf_key *k, void *dst, const char *name,
                       const char *v, const struct where *w)
{
	char why[160];
	uint64_t u;
	uint32_t ms;
	size_t sz;
	int b;

	if (!*v && k->type != V_LABELS)
		return bad_value(ld, w, name, v, "empty value");
	switch (k->type) {
	case V_SERVICE_NAME:
		if (!valid_service_name(v))
			return bad_value(ld, w, name, v, strchr(v, '.')
			    ? "a service name is one DNS label (put the namespace in 'namespace =')"
			    : case_hint(v, valid_service_name, "not a service name (1-63 of a-z 0-9 -, starting with a letter)",
			                why, sizeof(why)));
		return set_string(dst, v);
	case V_NAMESPACE:
		if (!valid_namespace(v))
			return bad_value(ld, w, name, v, case_hint(v, valid_namespace, "not a namespace (1-63 of a-z 0-9 -)",
			                                           why, sizeof(why)));
		return set_string(dst, v);
	case V_DNS_NAME:
		if (!dns_name(v))
			return bad_value(ld, w, name, v, case_hint(v, dns_name,
			                 "not a DNS name (labels of a-z 0-9 - joined by dots)", why, sizeof(why)));
		return set_string(dst, v);
	case V_LABELS:
		labels_free(dst);
		if (parse_labels(v, dst, why, sizeof(why)) < 0)
			return bad_value(ld, w, name, v, why);
		return 0;
	case V_APP:
	case V_LISTEN:
		if (k->type == V_LISTEN && !strcmp(v, "off"))
			return memset(dst, 0, sizeof(struct conf_addr)), 0;
		if (parse_addr(v, dst, k->type == V_APP, why, sizeof(why)) < 0)
			return bad_value(ld, w, name, v, why);
		return 0;
	case V_SERVICE_LISTEN:
		return parse_service_listen(ld, name, v, w);
	case V_DURATION:
		if (parse_duration(v, &ms, why, sizeof(why)) < 0)
			return bad_value(ld, w, name, v, why);
		if (ms < k->min || ms > k->max)
			return out_of_range(ld, w, k, v);
		*(uint32_t *)dst = ms;
		return 0;
	case V_SIZE:
		if (parse_size(v, &sz, why, sizeof(why)) < 0)
			return bad_value(ld, w, name, v, why);
		if (sz < k->min || sz > k->max)
			return out_of_range(ld, w, k, v);
		*(size_t *)dst = sz;
		return 0;
	case V_COUNT:
	case V_PORT:
		if (parse_uint(v, UINT32_MAX, &u, why, sizeof(why)) < 0)
			return bad_value(ld, w, name, v, k->type == V_PORT ? "not a port (1..65535)" : why);
		if (k->type == V_PORT) {
			if (u < 1 || u > 65535)
				return bad_value(ld, w, name, v, "out of range (allowed 1..65535)");
			*(uint16_t *)dst = (uint16_t)u;
			return 0;
		}
		if (u < k->min || u > k->max)
			return out_of_range(ld, w, k, v);
		*(size_t *)dst = (size_t)u;
		return 0;
	case V_BOOL:
		if (parse_bool(v, &b) < 0)
			return bad_value(ld, w, name, v, "not a boolean (on/off, true/false, yes/no, 1/0)");
		*(int *)dst = b;
		return 0;
	case V_ENUM:
		for (b = 0; k->words[b]; b++)
			if (!strcmp(v, k->words[b]))
				return *(int *)dst = b, 0;
		{
			struct sb list = { 0 };

			for (b = 0; k->words[b]; b++)
				sb_printf(&list, "%s%s", b ? ", " : "", k->words[b]);
			snprintf(why, sizeof(why), "expected one of: %s", list.p);
			free(list.p);
		}
		return bad_value(ld, w, name, v, why);
	case V_ACCESS_LOG: {
		struct conf_log *lg = (struct conf_log *)((char *)dst - offsetof(struct conf_log, access_log));
		const char *q;

		free(lg->access_log);
		lg->access_log = NULL;
		lg->access_log_off = 0;
		if (!strcmp(v, "off"))
			lg->access_log_off = 1;
		else if (!strcmp(v, "stdout"))
			lg->access_log = xstrdup("/dev/stdout");
		else if (strcmp(v, "stderr")) {
			for (q = v; *q; q++)
				if ((unsigned char)*q < 0x20 || *q == 0x7f)
					return bad_value(ld, w, name, v, "control character in the path");
			if (*v == ';')
				return bad_value(ld, w, name, v, "a path may not start with ';'");
			lg->access_log = join_path(ld->src->dir, v);
		}
		return 0;
	}
	case V_MESH_FILE: {
		const char *q;

		for (q = v; *q; q++)
			if ((unsigned char)*q < 0x20 || *q == 0x7f)
				return bad_value(ld, w, name, v, "control character in the path");
		free(*(char **)dst);
		*(char **)dst = join_path(ld->src->dir, v);
		ld->mesh_at = *w;
		return 0;
	}
	case V_ENDPOINT:
		return parse_endpoint(ld, ld->base, name, v, w);
	}
	return -1;
}

/* ------------------------------------------------------------ sections, keys */

static void close_section(struct ld *ld)
{
	if (ld->sec && !ld->skip && ld->sec->close)
		ld->sec->close(ld);
	ld->sec = NULL;
}

static void unknown_section(struct ld *ld, const char *kind, const char *name, const struct where *w)
{
	const char *names[SEC_COUNT];
	const char *best;
	size_t i;

	for (i = 0; i < SEC_COUNT; i++)
		names[i] = sections[i].name;
	best = closest(kind, names, SEC_COUNT);
	if (best)
		ld_err(ld, w, "unknown section [%s%s%s] (did you mean [%s%s%s]?)", kind, *name ? " " : "", name,
		       best, *name ? " " : "", name);
	else
		ld_err(ld, w, "unknown section [%s%s%s] (known: [workload] [listen] [proxy] [log] [control] "
		       "[mesh] [service NAME])", kind, *name ? " " : "", name);
}

static void open_section(struct ld *ld, const char *hdr, size_t n, const struct where *w)
{
	char *text, *kind, *name, *p;
	const struct section_kind *k = NULL;
	char b1[72], b2[72];
	int id;

	close_section(ld);
	ld->skip = 1;                           /* until the header proves good */
	while (n && isspace((unsigned char)*hdr))
		hdr++, n--;
	while (n && isspace((unsigned char)hdr[n - 1]))
		n--;
	text = xstrndup(hdr, n);
	kind = text;
	for (p = text; *p && !isspace((unsigned char)*p); p++)
		;
	name = p;
	if (*p) {
		*p++ = '\0';
		while (isspace((unsigned char)*p))
			p++;
		name = p;
	}
	if (!*kind) {
		ld_err(ld, w, "empty section name []");
		goto out;
	}
	for (id = 0; id < SEC_COUNT; id++)
		if (!strcmp(kind, sections[id].name)) {
			k = &sections[id];
			break;
		}
	clip(kind, b1, sizeof(b1));
	clip(name, b2, sizeof(b2));
	if (!k) {
		unknown_section(ld, b1, b2, w);
		goto out;
	}
	if (!(k->part & ld->src->parts)) {
		ld_err(ld, w, "[%s] is not allowed in a mesh file, which holds only [mesh] and [service NAME] "
		       "(move it to the proxy file)", kind);
		goto out;
	}
	if (k->open && !*name) {
		ld_err(ld, w, "[%s] needs a name: [%s NAME]", kind, kind);
		goto out;
	}
	if (!k->open && *name) {
		ld_err(ld, w, "[%s] takes no name (found [%s %s])", kind, kind, b2);
		goto out;
	}
	if (k->open) {
		if (k->open(ld, name, w) < 0)
			goto out;
		memset(ld->tmp_seen, 0, sizeof(ld->tmp_seen));
		ld->seen = ld->tmp_seen;
		snprintf(ld->title, sizeof(ld->title), "[%s %s]", kind, name);
	} else {
		if (ld->single_at[id].line) {
			ld_err(ld, w, "duplicate [%s] (first defined at %s:%d)", kind,
			       ld->single_at[id].file, ld->single_at[id].line);
			goto out;
		}
		ld->single_at[id] = *w;
		ld->seen = ld->single_seen[id];
		ld->base = (char *)ld->c + k->conf_off;
		snprintf(ld->title, sizeof(ld->title), "[%s]", kind);
	}
	ld->sec = k;
	ld->skip = 0;
out:
	free(text);
}

static void unknown_key(struct ld *ld, const char *name, const struct where *w)
{
	const struct section_kind *k = ld->sec;
	const char *names[KEYS_MAX], *best, *dot = strchr(name, '.');
	char b[72];
	struct sb list = { 0 };
	size_t i, j, n = 0;

	clip(name, b, sizeof(b));
	for (i = 0; i < k->n_keys; i++) {
		const struct conf_key *key = &k->keys[i];
		size_t pl = strlen(key->name) - 1;
		char pre[72], head[72], rest[72];
		const char *cand[1] = { pre };

		if (!(key->flags & K_PREFIX)) {
			names[n++] = key->name;
			continue;
		}
		/* "service", "service." and "servce.reviews" all mean service.NAME */
		snprintf(pre, sizeof(pre), "%.*s", (int)pl, key->name);
		snprintf(head, sizeof(head), "%.*s", (int)(dot ? (size_t)(dot - name) < 70 ? (size_t)(dot - name) : 70 : 70), name);
		if (!strcmp(name, pre) || !strcmp(name, key->name)) {
			ld_err(ld, w, "unknown key '%s' in %s (write %sNAME = address)", b, ld->title, key->name);
			return;
		}
		if (dot && dot[1] && closest(head, cand, 1)) {
			ld_err(ld, w, "unknown key '%s' in %s (did you mean '%s%s'?)", b, ld->title, pre,
			       clip(dot, rest, sizeof(rest)));
			return;
		}
	}
	best = closest(name, names, n);
	if (best) {
		ld_err(ld, w, "unknown key '%s' in %s (did you mean '%s'?)", b, ld->title, best);
		return;
	}
	for (i = 0; i < SEC_COUNT; i++)
		for (j = 0; j < sections[i].n_keys; j++)
			if (&sections[i] != k && !strcmp(sections[i].keys[j].name, name)) {
				ld_err(ld, w, "unknown key '%s' in %s (it belongs in [%s%s])", b, ld->title,
				       sections[i].name, sections[i].open ? " NAME" : "");
				return;
			}
	for (i = 0; i < k->n_keys; i++)
		sb_printf(&list, "%s%s%s", i ? ", " : "", k->keys[i].name,
		          k->keys[i].flags & K_PREFIX ? "NAME" : "");
	ld_err(ld, w, "unknown key '%s' in %s (known: %s)", b, ld->title, list.p);
	free(list.p);
}

static void on_key(struct ld *ld, const char *name, const char *value, const struct where *w)
{
	const struct section_kind *k = ld->sec;
	const struct conf_key *key = NULL;
	size_t i;

	if (ld->skip)
		return;                            /* the header was already reported */
	if (!k) {
		char b[72];

		ld_err(ld, w, "'%s' is outside any section (put a [section] header above it)", clip(name, b, sizeof(b)));
		return;
	}
	if (!*name) {
		ld_err(ld, w, "missing key name before '='");
		return;
	}
	for (i = 0; i < k->n_keys; i++) {
		const struct conf_key *c = &k->keys[i];

		if (c->flags & K_PREFIX ? !strncmp(name, c->name, strlen(c->name)) && name[strlen(c->name)]
		                        : !strcmp(name, c->name)) {
			key = c;
			break;
		}
	}
	if (!key) {
		unknown_key(ld, name, w);
		return;
	}
	if (!(key->flags & (K_LIST | K_PREFIX)) && ld->seen[i].line) {
		ld_err(ld, w, "duplicate key '%s' in %s (first set at %s:%d)", name, ld->title,
		       ld->seen[i].file, ld->seen[i].line);
		return;
	}
	if (!ld->seen[i].line)
		ld->seen[i] = *w;
	parse_value(ld, key, (char *)ld->base + key->off, name, value, w);
}

/* ---- [service NAME] */

static int service_open(struct ld *ld, const char *name, const struct where *w)
{
	struct conf *c = ld->c;
	struct conf_service *svc;
	char b[72];

	if (!valid_service_name(name)) {
		char why[160];

		ld_err(ld, w, "invalid service name '%s' in [service %s]: %s", clip(name, b, sizeof(b)), b,
		       strchr(name, '.') ? "one DNS label; put the namespace in 'namespace ='"
		                         : case_hint(name, valid_service_name, "use 1-63 of a-z 0-9 -, starting with a letter",
		                                     why, sizeof(why)));
		return -1;
	}
	c->services = grow(c->services, c->n_services, sizeof(*c->services));
	svc = &c->services[c->n_services];
	memset(svc, 0, sizeof(*svc));
	svc->name = xstrdup(name);
	svc->port = 80;
	svc->file = w->file;
	svc->line = w->line;
	ld->svc = c->n_services++;
	ld->base = svc;
	return 0;
}

static void service_close(struct ld *ld)
{
	struct conf *c = ld->c;
	struct conf_service *svc = &c->services[ld->svc];
	size_t i;

	if (!svc->namespace)
		svc->namespace = xstrdup("default");
	for (i = 0; i < ld->svc; i++) {
		const struct conf_service *o = &c->services[i];

		if (!strcmp(o->name, svc->name) && !strcmp(o->namespace, svc->namespace)) {
			struct where w = { svc->file, svc->line };

			if (strcmp(svc->namespace, "default"))
				ld_err(ld, &w, "duplicate [service %s] in namespace %s (first defined at %s:%d)",
				       svc->name, svc->namespace, o->file, o->line);
			else
				ld_err(ld, &w, "duplicate [service %s] (first defined at %s:%d)", svc->name, o->file, o->line);
			return;
		}
	}
}

static const void *service_nth(const struct conf *c, size_t i, const char **name)
{
	if (i >= c->n_services)
		return NULL;
	*name = c->services[i].name;
	return &c->services[i];
}

/* ------------------------------------------------------------ line scanning */

enum line_kind { L_SKIP, L_SECTION, L_KV, L_NO_BRACKET, L_NO_EQUALS, L_LONG };

/* inih's rule: stop at one of chars, or at ';' that follows whitespace. */
static size_t scan_to(const char *p, size_t i, size_t end, const char *chars)
{
	int was_space = 0;

	while (i < end && !strchr(chars, p[i]) && !(was_space && p[i] == ';')) {
		was_space = isspace((unsigned char)p[i]);
		i++;
	}
	return i;
}

/* Classifies a line the way inih does; for a section, [*h0, *h1) is the text
 * between the brackets and *tail_ok says nothing but a comment follows. */
static enum line_kind classify(const char *p, size_t len, int first, size_t *h0, size_t *h1, int *tail_ok)
{
	size_t i = 0, e = len, j;

	if (len > CONF_LINE_MAX)
		return L_LONG;
	if (first && len >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3))
		i = 3;
	while (i < e && isspace((unsigned char)p[i]))
		i++;
	while (e > i && isspace((unsigned char)p[e - 1]))
		e--;
	if (i == e || p[i] == ';' || p[i] == '#')
		return L_SKIP;
	if (p[i] == '[') {
		j = scan_to(p, i + 1, e, "]");
		if (j >= e || p[j] != ']')
			return L_NO_BRACKET;
		*h0 = i + 1;
		*h1 = j;
		for (j++; j < e && isspace((unsigned char)p[j]); j++)
			;
		*tail_ok = j == e || p[j] == ';' || p[j] == '#';
		return L_SECTION;
	}
	j = scan_to(p, i, e, "=:");
	return j < e && (p[j] == '=' || p[j] == ':') ? L_KV : L_NO_EQUALS;
}

static void syntax_error(struct ld *ld, const struct where *w, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void syntax_error(struct ld *ld, const struct where *w, const char *fmt, ...)
{
	struct src *s = ld->src;
	struct sb b = { 0 };
	va_list ap;

	va_start(ap, fmt);
	sb_vprintf(&b, fmt, ap);
	va_end(ap);
	ld_err(ld, w, "syntax error: %s", b.p);
	free(b.p);
	s->bad = grow(s->bad, s->n_bad, sizeof(*s->bad));
	s->bad[s->n_bad++] = w->line;
}

/* One line, in order. name/value are inih's split when it called us for it. */
static void process_line(struct ld *ld, const char *p, size_t len, int line, const char *name, const char *value)
{
	struct where w = { ld->src->file, line };
	size_t h0 = 0, h1 = 0;
	int tail_ok = 1;
	char *copy, b[72];
	const char *t;

	switch (classify(p, len, line == 1, &h0, &h1, &tail_ok)) {
	case L_SKIP:
		break;
	case L_LONG:
		syntax_error(ld, &w, "line too long (at most %d characters)", CONF_LINE_MAX);
		for (t = p; t < p + len && isspace((unsigned char)*t); t++)
			;
		if (*t == '[') {
			close_section(ld);
			ld->skip = 1;
		}
		break;
	case L_NO_BRACKET:
		syntax_error(ld, &w, "missing ']' in section header");
		close_section(ld);
		ld->skip = 1;
		break;
	case L_NO_EQUALS:
		copy = xstrndup(p, len);
		syntax_error(ld, &w, "expected 'key = value' or '[section]', got '%s'", clip(copy, b, sizeof(b)));
		free(copy);
		break;
	case L_SECTION:
		if (!tail_ok)
			syntax_error(ld, &w, "unexpected text after ']'");
		open_section(ld, p + h0, h1 - h0, &w);
		break;
	case L_KV:
		if (name)
			on_key(ld, name, value, &w);
		else
			syntax_error(ld, &w, "cannot read this line");
		break;
	}
}

/* Processes every line up to and including `upto` that inih did not call us for. */
static void advance(struct ld *ld, int upto)
{
	struct src *s = ld->src;

	while (s->line <= upto && *s->cur) {
		const char *p = s->cur, *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);

		s->cur = nl ? nl + 1 : p + len;
		process_line(ld, p, len, s->line++, NULL, NULL);
	}
}

static int on_ini(void *user, const char *section, const char *name, const char *value, int lineno)
{
	struct ld *ld = user;
	struct src *s = ld->src;
	const char *p, *nl;
	size_t len;

	(void)section;                         /* truncated by inih; we track sections ourselves */
	if (!name) {                           /* a section callback, should inih ever make one */
		advance(ld, lineno);
		return 1;
	}
	advance(ld, lineno - 1);
	if (s->line != lineno || !*s->cur)
		return 1;                          /* cannot happen: inih and we count lines alike */
	p = s->cur;
	nl = strchr(p, '\n');
	len = nl ? (size_t)(nl - p) : strlen(p);
	s->cur = nl ? nl + 1 : p + len;
	s->line++;
	process_line(ld, p, len, lineno, name, value ? value : "");
	return 1;                              /* errors are collected, never returned to inih */
}

static const char *add_file(struct conf *c, const char *path)
{
	c->files = grow(c->files, c->n_files, sizeof(*c->files));
	c->files[c->n_files] = xstrdup(path);
	return c->files[c->n_files++];
}

static void parse_text(struct ld *ld, const char *file, const char *text, int is_path, unsigned parts)
{
	struct src s = { 0 };
	size_t i;
	int r;

	s.file = file;
	s.dir = is_path ? dir_of(file) : NULL;
	s.cur = text;
	s.line = 1;
	s.parts = parts;
	ld->src = &s;
	ld->sec = NULL;
	ld->skip = 0;
	r = ini_parse_string(text, on_ini, ld);
	advance(ld, INT_MAX);
	close_section(ld);
	if (r > 0) {                           /* inih saw an error: we must have reported it */
		for (i = 0; i < s.n_bad && s.bad[i] != r; i++)
			;
		if (i == s.n_bad) {
			struct where w = { file, r };

			ld_err(ld, &w, "syntax error");
		}
	}
	free(s.bad);
	free(s.dir);
	ld->src = NULL;
}

/* Reads a regular file whole; never blocks on a FIFO or device. */
static char *read_file(const char *path, char *why, size_t wn)
{
	struct stat st;
	size_t n = 0, cap;
	ssize_t r;
	char *buf;
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);

	if (fd < 0)
		return snprintf(why, wn, "%s", strerror(errno)), NULL;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(why, wn, "%s", S_ISDIR(st.st_mode) ? "is a directory" : "not a regular file");
		close(fd);
		return NULL;
	}
	if (st.st_size > (off_t)CONF_MAX_FILE) {
		snprintf(why, wn, "larger than %u bytes", CONF_MAX_FILE);
		close(fd);
		return NULL;
	}
	cap = (size_t)st.st_size + 1;           /* +1: sees growth, and room for the NUL */
	buf = xmalloc(cap + 1);
	for (;;) {
		if (n == cap) {
			if (cap > CONF_MAX_FILE) {
				snprintf(why, wn, "larger than %u bytes", CONF_MAX_FILE);
				goto fail;
			}
			cap *= 2;
			buf = xrealloc(buf, cap + 1);
		}
		r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(why, wn, "%s", strerror(errno));
			goto fail;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > CONF_MAX_FILE) {
		snprintf(why, wn, "larger than %u bytes", CONF_MAX_FILE);
		goto fail;
	}
	close(fd);
	buf[n] = '\0';
	if (memchr(buf, '\0', n)) {
		size_t i, line = 1;

		for (i = 0; buf[i]; i++)
			line += buf[i] == '\n';
		snprintf(why, wn, "line %zu: NUL byte (not a text file?)", line);
		free(buf);
		return NULL;
	}
	return buf;
fail:
	close(fd);
	free(buf);
	return NULL;
}

/* ------------------------------------------------------------ after loading */

/* The service a [listen] service.REF names; *ambiguous when several match. */
static struct conf_service *ref_service(struct conf *c, const char *ref, int *ambiguous)
{
	const char *dot = strchr(ref, '.');
	size_t nl = dot ? (size_t)(dot - ref) : strlen(ref), i;
	struct conf_service *hit = NULL;
	int n = 0;

	*ambiguous = 0;
	for (i = 0; i < c->n_services; i++) {
		struct conf_service *s = &c->services[i];

		if (strlen(s->name) != nl || memcmp(s->name, ref, nl) || (dot && strcmp(s->namespace, dot + 1)))
			continue;
		if (!dot && c->workload.namespace && !strcmp(s->namespace, c->workload.namespace))
			return s;
		if (!hit)
			hit = s;
		n++;
	}
	*ambiguous = n > 1;
	return hit;
}

/* "(did you mean 'x'?)" or "(defined: a, b, c)" for a service name */
static void service_hint(const struct conf *c, const char *name, char *buf, size_t n)
{
	const char **names = xmalloc((c->n_services + 1) * sizeof(*names));
	const char *best;
	struct sb list = { 0 };
	size_t i;

	memset(names, 0, (c->n_services + 1) * sizeof(*names));
	for (i = 0; i < c->n_services; i++)
		names[i] = c->services[i].name;
	best = closest(name, names, c->n_services);
	if (best)
		snprintf(buf, n, " (did you mean '%s'?)", best);
	else if (!c->n_services)
		snprintf(buf, n, " (no [service NAME] sections are defined)");
	else {
		for (i = 0; i < c->n_services && i < 8; i++)
			sb_printf(&list, "%s%s", i ? ", " : "", c->services[i].name);
		snprintf(buf, n, " (defined: %s%s)", list.p, c->n_services > 8 ? ", ..." : "");
		free(list.p);
	}
	free(names);
}

struct lsn {                   /* a bound or connected address, for the conflict check */
	char label[136];
	const struct conf_addr *a;
	struct where at;           /* line 0: a default */
};

static int addr_any(const struct conf_addr *a)
{
	if (a->ss.ss_family == AF_INET)
		return ((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr == htonl(INADDR_ANY);
	return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)&a->ss)->sin6_addr);
}

static uint16_t addr_port(const struct conf_addr *a)
{
	if (a->ss.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
}

/* Would binding both fail? Same port and the same address, or a wildcard
 * that covers the other ([::] covers IPv4 too: Linux binds it dual-stack). */
static int addr_clash(const struct conf_addr *a, const struct conf_addr *b)
{
	if (addr_port(a) != addr_port(b))
		return 0;
	if (a->ss.ss_family != b->ss.ss_family)
		return (a->ss.ss_family == AF_INET6 && addr_any(a)) || (b->ss.ss_family == AF_INET6 && addr_any(b));
	return addr_any(a) || addr_any(b) || !strcmp(a->text, b->text);
}

static void check_listeners(struct ld *ld)
{
	struct conf *c = ld->c;
	struct lsn *v = xmalloc((4 + c->n_services) * sizeof(*v));
	size_t n = 0, i, j;

#define LSN(lbl, addr, wh) do { if ((addr)->set) { \
		snprintf(v[n].label, sizeof(v[n].label), "%s", lbl); v[n].a = (addr); v[n].at = (wh); n++; } } while (0)
	LSN("app", &c->workload.app, key_at(ld, SEC_WORKLOAD, "app"));
	LSN("inbound", &c->listen.inbound, key_at(ld, SEC_LISTEN, "inbound"));
	LSN("outbound", &c->listen.outbound, key_at(ld, SEC_LISTEN, "outbound"));
	LSN("admin", &c->listen.admin, key_at(ld, SEC_LISTEN, "admin"));
	for (i = 0; i < ld->n_sl; i++)
		if (ld->sl[i].svc) {
			char lbl[sizeof(v[0].label)];

			snprintf(lbl, sizeof(lbl), "service.%s", ld->sl[i].ref);
			LSN(lbl, &ld->sl[i].svc->listen, ld->sl[i].at);
		}
#undef LSN
	for (j = 1; j < n; j++)
		for (i = 0; i < j; i++) {
			const struct lsn *x = &v[i], *y = &v[j], *at;

			if (!addr_clash(x->a, y->a))
				continue;
			/* report at the later line; a default has none */
			if (!y->at.line || (x->at.line && x->at.file == y->at.file && x->at.line > y->at.line))
				at = x, x = y, y = at;
			if (x->at.line)
				ld_err(ld, &y->at, "%s %s conflicts with %s %s (%s:%d)", y->label, y->a->text, x->label,
				       x->a->text, x->at.file, x->at.line);
			else
				ld_err(ld, &y->at, "%s %s conflicts with %s %s (the default)", y->label, y->a->text,
				       x->label, x->a->text);
		}
	free(v);
}

static void finish(struct ld *ld)
{
	struct conf *c = ld->c;
	struct conf_workload *wl = &c->workload;
	struct where w_app = key_at(ld, SEC_WORKLOAD, "app"), w_svc = key_at(ld, SEC_WORKLOAD, "service");
	struct where w_in = key_at(ld, SEC_LISTEN, "inbound");
	struct where w_line = key_at(ld, SEC_PROXY, "max_request_line"), w_head = key_at(ld, SEC_PROXY, "max_header_size");
	const char *v;
	char why[160], hint[160];
	size_t i;

	if (!wl->namespace)
		wl->namespace = xstrdup("default");
	if (!wl->service_account && wl->service)
		wl->service_account = xstrdup(wl->service);
	if ((v = conf_label(&wl->labels, "version")))
		wl->version = xstrdup(v);
	if (!key_at(ld, SEC_LISTEN, "outbound").line)
		parse_addr("127.0.0.1:15001", &c->listen.outbound, 0, why, sizeof(why));
	if (!key_at(ld, SEC_LISTEN, "admin").line)
		parse_addr("127.0.0.1:15000", &c->listen.admin, 0, why, sizeof(why));
	if (!w_in.line && wl->app.set)
		parse_addr("127.0.0.1:15006", &c->listen.inbound, 0, why, sizeof(why));

	if (wl->app.set && !wl->service)
		ld_err(ld, &w_app, "app is set but service is not: a workload with an app needs [workload] service = NAME");
	if (c->listen.inbound.set && !wl->app.set)
		ld_err(ld, &w_in, "inbound is set but [workload] app is not: inbound traffic would have nowhere to go");

	for (i = 0; i < ld->n_sl; i++) {
		struct svc_listen *sl = &ld->sl[i];
		int amb;
		struct conf_service *s = ref_service(c, sl->ref, &amb);

		if (!s) {
			char name[72];
			const char *dot = strchr(sl->ref, '.');

			snprintf(name, sizeof(name), "%.*s", (int)(dot ? dot - sl->ref : (ptrdiff_t)strlen(sl->ref)), sl->ref);
			service_hint(c, name, hint, sizeof(hint));
			ld_err(ld, &sl->at, "service.%s: unknown service '%s'%s", sl->ref, sl->ref, hint);
		} else if (amb) {
			ld_err(ld, &sl->at, "service.%s: service '%s' exists in several namespaces; "
			       "write service.%s.NAMESPACE", sl->ref, sl->ref, sl->ref);
		} else if (s->listen.set) {
			size_t j;

			for (j = 0; j < i && ld->sl[j].svc != s; j++)
				;
			ld_err(ld, &sl->at, "service.%s: [service %s] already has a local port (%s:%d)", sl->ref,
			       s->name, ld->sl[j].at.file, ld->sl[j].at.line);
		} else {
			s->listen = sl->addr;
			sl->svc = s;
		}
	}
	check_listeners(ld);

	if (c->proxy.max_request_line > c->proxy.max_header_size) {
		struct where at = w_line.line ? w_line : w_head;

		if (w_head.line && w_line.line && w_head.file == w_line.file && w_head.line > w_line.line)
			at = w_head;
		ld_err(ld, &at, "max_request_line (%zu) is larger than max_header_size (%zu), which includes it",
		       c->proxy.max_request_line, c->proxy.max_header_size);
	}

	for (i = 0; i < c->n_services; i++) {
		struct where at = { c->services[i].file, c->services[i].line };

		if (!c->services[i].n_endpoints)
			ld_warn(ld, &at, "[service %s] has no endpoints; requests to it get 503", c->services[i].name);
	}
	if (wl->service && c->n_services) {
		for (i = 0; i < c->n_services; i++)
			if (!strcmp(c->services[i].name, wl->service) && !strcmp(c->services[i].namespace, wl->namespace))
				break;
		if (i == c->n_services) {
			service_hint(c, wl->service, hint, sizeof(hint));
			ld_warn(ld, &w_svc, "workload service '%s' (namespace %s) has no [service %s] in the mesh%s",
			        wl->service, wl->namespace, wl->service, hint);
		}
	}
}

/* ------------------------------------------------------------ load / free */

static struct conf *conf_new(const char *path)
{
	struct conf *c = xmalloc(sizeof(*c));

	memset(c, 0, sizeof(*c));
	c->refs = 1;
	c->path = xstrdup(path);
	c->proxy.max_request_line = 8u << 10;
	c->proxy.max_header_size = 32u << 10;
	c->proxy.max_headers = 100;
	c->proxy.header_timeout = 10 * SEC_MS;
	c->proxy.idle_timeout = 60 * SEC_MS;
	c->proxy.upstream_idle_timeout = 30 * SEC_MS;
	c->proxy.connect_timeout = 10 * SEC_MS;
	c->proxy.request_timeout = 0;
	c->proxy.stream_idle_timeout = 300 * SEC_MS;
	c->proxy.drain_timeout = 5 * SEC_MS;
	c->proxy.max_idle_per_endpoint = 64;
	c->log.level = CONF_LOG_INFO;
	c->mesh.domain = xstrdup("cluster.local");
	return c;
}

static void conf_free(struct conf *c)
{
	size_t i, j;

	free(c->path);
	for (i = 0; i < c->n_files; i++)
		free(c->files[i]);
	free(c->files);
	free(c->workload.service);
	free(c->workload.namespace);
	free(c->workload.service_account);
	labels_free(&c->workload.labels);
	free(c->workload.version);
	free(c->log.access_log);
	free(c->mesh.domain);
	for (i = 0; i < c->n_services; i++) {
		struct conf_service *s = &c->services[i];

		free(s->name);
		free(s->namespace);
		for (j = 0; j < s->n_endpoints; j++)
			labels_free(&s->endpoints[j].labels);
		free(s->endpoints);
	}
	free(c->services);
	free(c->mesh_path);
	for (i = 0; i < c->n_warnings; i++)
		free(c->warnings[i]);
	free(c->warnings);
	free(c);
}

struct conf *conf_ref(struct conf *c)
{
	if (c)
		c->refs++;
	return c;
}

void conf_unref(struct conf *c)
{
	if (c && --c->refs == 0)
		conf_free(c);
}

static int msg_cmp(const void *pa, const void *pb)
{
	const struct msg *a = pa, *b = pb;

	if (a->file != b->file)
		return a->file < b->file ? -1 : 1;
	if (a->line != b->line)
		return a->line < b->line ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Writes the errors into err in file and line order, whole lines only when at
 * least one fits, at most CONF_MAX_ERRORS of them; frees them. */
static void put_errors(struct ld *ld, char *err, size_t errlen)
{
	struct sb b = { 0 };
	size_t i, n;

	qsort(ld->msgs, ld->n_msgs, sizeof(*ld->msgs), msg_cmp);
	sb_add(&b, "");
	for (i = 0; i < ld->n_msgs && i < CONF_MAX_ERRORS; i++)
		sb_printf(&b, "%s%s", i ? "\n" : "", ld->msgs[i].text);
	if (ld->n_msgs + ld->n_dropped > CONF_MAX_ERRORS)
		sb_printf(&b, "\n... and %zu more errors", ld->n_msgs + ld->n_dropped - CONF_MAX_ERRORS);
	for (i = 0; i < ld->n_msgs; i++)
		free(ld->msgs[i].text);
	free(ld->msgs);
	ld->msgs = NULL;
	if (err && errlen) {
		n = b.len;
		if (n >= errlen) {
			const char *nl, *last = NULL;

			n = errlen - 1;
			for (nl = memchr(b.p, '\n', n); nl; nl = memchr(nl + 1, '\n', n - (size_t)(nl + 1 - b.p)))
				last = nl;
			if (last)
				n = (size_t)(last - b.p);
		}
		memcpy(err, b.p, n);
		err[n] = '\0';
	}
	free(b.p);
}

static struct conf *load_conf(const char *path, const char *text, char *err, size_t errlen)
{
	struct ld ld;
	struct conf *c = conf_new(path);
	const char *file = add_file(c, path);
	char why[160];
	size_t i;
	int ok = 1;

	memset(&ld, 0, sizeof(ld));
	ld.c = c;
	if (text) {
		parse_text(&ld, file, text, 0, PART_PROXY | PART_MESH);
	} else {
		char *buf = read_file(path, why, sizeof(why));
		struct where w = { file, 0 };

		if (buf) {
			parse_text(&ld, file, buf, 1, PART_PROXY | PART_MESH);
			free(buf);
		} else {
			ld_err(&ld, &w, "cannot read: %s", why);
			ok = 0;
		}
	}
	if (ok && c->mesh_path && ld.mesh_at.line) {
		char *buf = read_file(c->mesh_path, why, sizeof(why));

		if (buf) {
			parse_text(&ld, add_file(c, c->mesh_path), buf, 1, PART_MESH);
			free(buf);
		} else {
			ld_err(&ld, &ld.mesh_at, "cannot read mesh file '%s': %s", c->mesh_path, why);
		}
	}
	if (ok)
		finish(&ld);
	for (i = 0; i < ld.n_sl; i++)
		free(ld.sl[i].ref);
	free(ld.sl);
	if (ld.n_msgs) {
		put_errors(&ld, err, errlen);
		conf_unref(c);
		return NULL;
	}
	if (err && errlen)
		err[0] = '\0';
	return c;
}

struct conf *conf_load(const char *path, char *err, size_t errlen)
{
	return load_conf(path, NULL, err, errlen);
}

struct conf *conf_load_string(const char *name, const char *text, char *err, size_t errlen)
{
	return load_conf(name, text ? text : "", err, errlen);
}

/* ------------------------------------------------------------ lookup */

static int ieq(const char *a, size_t an, const char *b)
{
	return strlen(b) == an && !strncasecmp(a, b, an);
}

const struct conf_service *conf_find_service(const struct conf *c, const char *host, size_t len, int *port_ok)
{
	const char *colon, *lab[4] = { 0 }, *p, *end;
	size_t ll[4] = { 0 }, nlab = 0, i;
	const struct conf_service *hit = NULL;
	uint64_t port = 0;
	int has_port = 0;

	if (port_ok)
		*port_ok = 1;
	if (!c || !host || !len || host[0] == '[')
		return NULL;                        /* IPv6 literals never name a service */
	colon = memchr(host, ':', len);
	if (colon) {
		size_t pl = len - (size_t)(colon + 1 - host);

		if (memchr(colon + 1, ':', pl))
			return NULL;
		if (pl) {
			if (pl > 5 || !all_digits(colon + 1, pl))
				return NULL;
			for (i = 0; i < pl; i++)
				port = port * 10 + (uint64_t)(colon[1 + i] - '0');
			if (!port || port > 65535)
				return NULL;
			has_port = 1;
		}
		len = (size_t)(colon - host);
	}
	if (len && host[len - 1] == '.')
		len--;                              /* absolute name: "reviews.default.svc.cluster.local." */
	if (!len)
		return NULL;
	for (i = 0; i < len && (isdigit((unsigned char)host[i]) || host[i] == '.'); i++)
		;
	if (i == len)
		return NULL;                        /* an IPv4 literal */
	/* name [. namespace [. svc [. domain]]] */
	p = host;
	end = host + len;
	while (p <= end && nlab < 4) {
		const char *dot = nlab < 3 ? memchr(p, '.', (size_t)(end - p)) : NULL;

		lab[nlab] = p;
		ll[nlab] = dot ? (size_t)(dot - p) : (size_t)(end - p);
		if (!ll[nlab])
			return NULL;
		nlab++;
		if (!dot)
			break;
		p = dot + 1;
	}
	if (nlab >= 3 && !ieq(lab[2], ll[2], "svc"))
		return NULL;
	if (nlab == 4 && !ieq(lab[3], ll[3], c->mesh.domain))
		return NULL;
	for (i = 0; i < c->n_services; i++) {
		const struct conf_service *s = &c->services[i];

		if (!ieq(lab[0], ll[0], s->name))
			continue;
		if (nlab >= 2 && !ieq(lab[1], ll[1], s->namespace))
			continue;
		if (nlab >= 2 || (c->workload.namespace && !strcmp(s->namespace, c->workload.namespace))) {
			hit = s;
			break;
		}
		if (!hit)
			hit = s;                        /* another namespace: keep looking for our own */
	}
	if (hit && has_port && port != hit->port && port_ok)
		*port_ok = 0;
	return hit;
}

/* ------------------------------------------------------------ render */

struct pair {
	char *key, *value;
};

struct pairs {
	struct pair *v;
	size_t n;
};

static void pair_add(struct pairs *ps, const char *key, const char *value)
{
	ps->v = grow(ps->v, ps->n, sizeof(*ps->v));
	ps->v[ps->n].key = xstrdup(key);
	ps->v[ps->n].value = xstrdup(value);
	ps->n++;
}

static void labels_text(struct sb *b, const struct conf_labels *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		sb_printf(b, "%s%s=%s", i ? ", " : "", l->v[i].key, l->v[i].value);
}

/* Service names that exist in several namespaces are written NAME.NAMESPACE. */
static void service_ref(const struct conf *c, const struct conf_service *s, char *buf, size_t n)
{
	size_t i;

	for (i = 0; i < c->n_services; i++)
		if (&c->services[i] != s && !strcmp(c->services[i].name, s->name)) {
			snprintf(buf, n, "%s.%s", s->name, s->namespace);
			return;
		}
	snprintf(buf, n, "%s", s->name);
}

static void render_key(struct pairs *ps, const struct conf *c, const struct conf_key *k, const void *base)
{
	const void *dst = (const char *)base + k->off;
	char buf[160];
	struct sb b = { 0 };
	size_t i;

	switch (k->type) {
	case V_SERVICE_NAME:
	case V_NAMESPACE:
	case V_DNS_NAME:
		if (*(char *const *)dst)
			pair_add(ps, k->name, *(char *const *)dst);
		break;
	case V_LABELS:
		if (((const struct conf_labels *)dst)->n) {
			labels_text(&b, dst);
			pair_add(ps, k->name, b.p);
		}
		break;
	case V_APP:
		if (((const struct conf_addr *)dst)->set)
			pair_add(ps, k->name, ((const struct conf_addr *)dst)->text);
		break;
	case V_LISTEN:
		pair_add(ps, k->name, ((const struct conf_addr *)dst)->set ? ((const struct conf_addr *)dst)->text : "off");
		break;
	case V_SERVICE_LISTEN:
		for (i = 0; i < c->n_services; i++)
			if (c->services[i].listen.set) {
				char key[sizeof(buf) + 8];

				service_ref(c, &c->services[i], buf, sizeof(buf));
				snprintf(key, sizeof(key), "service.%s", buf);
				pair_add(ps, key, c->services[i].listen.text);
			}
		break;
	case V_DURATION:
		fmt_duration(*(const uint32_t *)dst, buf, sizeof(buf));
		pair_add(ps, k->name, buf);
		break;
	case V_SIZE:
		fmt_size(*(const size_t *)dst, buf, sizeof(buf));
		pair_add(ps, k->name, buf);
		break;
	case V_COUNT:
		snprintf(buf, sizeof(buf), "%zu", *(const size_t *)dst);
		pair_add(ps, k->name, buf);
		break;
	case V_PORT:
		snprintf(buf, sizeof(buf), "%u", (unsigned)*(const uint16_t *)dst);
		pair_add(ps, k->name, buf);
		break;
	case V_BOOL:
		pair_add(ps, k->name, *(const int *)dst ? "on" : "off");
		break;
	case V_ENUM:
		pair_add(ps, k->name, k->words[*(const int *)dst]);
		break;
	case V_ACCESS_LOG: {
		const struct conf_log *lg = (const struct conf_log *)((const char *)dst - offsetof(struct conf_log, access_log));

		pair_add(ps, k->name, lg->access_log_off ? "off" : lg->access_log ? lg->access_log : "stderr");
		break;
	}
	case V_MESH_FILE:
		break;                              /* the mesh part is rendered inline */
	case V_ENDPOINT: {
		const struct conf_service *s = base;

		for (i = 0; i < s->n_endpoints; i++) {
			b.len = 0;
			sb_add(&b, s->endpoints[i].addr.text);
			if (s->endpoints[i].labels.n) {
				sb_add(&b, " ");
				labels_text(&b, &s->endpoints[i].labels);
			}
			pair_add(ps, k->name, b.p);
		}
		break;
	}
	}
	free(b.p);
}

static void render_section(struct sb *out, const struct conf *c, const struct section_kind *k,
                           const char *name, const void *base)
{
	struct pairs ps = { 0 };
	size_t i, w = 0;

	for (i = 0; i < k->n_keys; i++)
		render_key(&ps, c, &k->keys[i], base);
	if (ps.n || name) {
		sb_printf(out, "\n[%s%s%s]\n", k->name, name ? " " : "", name ? name : "");
		for (i = 0; i < ps.n; i++)
			if (strlen(ps.v[i].key) > w)
				w = strlen(ps.v[i].key);
		for (i = 0; i < ps.n; i++)
			sb_printf(out, "%-*s = %s\n", (int)w, ps.v[i].key, ps.v[i].value);
	}
	for (i = 0; i < ps.n; i++) {
		free(ps.v[i].key);
		free(ps.v[i].value);
	}
	free(ps.v);
}

static void comment_path(struct sb *out, const char *what, const char *path)
{
	char b[512];
	size_t i;

	for (i = 0; path[i] && i < sizeof(b) - 1; i++)
		b[i] = (unsigned char)path[i] < 0x20 ? '?' : path[i];
	b[i] = '\0';
	sb_printf(out, "; %s%s\n", what, b);
}

char *conf_render(const struct conf *c)
{
	struct sb out = { 0 };
	size_t s, i;

	sb_add(&out, "");
	if (!c)
		return out.p;
	comment_path(&out, "effective configuration of ", c->path);
	if (c->mesh_path)
		comment_path(&out, "with the mesh part from ", c->mesh_path);
	sb_add(&out, "; defaults are filled in; this text loads back to the same configuration\n");
	for (s = 0; s < SEC_COUNT; s++) {
		const struct section_kind *k = &sections[s];

		if (k->nth) {
			const char *name;
			const void *base;

			for (i = 0; (base = k->nth(c, i, &name)); i++)
				render_section(&out, c, k, name, base);
		} else {
			render_section(&out, c, k, NULL, (const char *)c + k->conf_off);
		}
	}
	return out.p;
}
