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
 * Traffic management (issue #3): [destination SERVICE] and [route HOST/NAME]
 * fill conf->destinations and conf->routes as they are read; what they name
 * (services, subsets, [destination S/SUBSET] overrides, `to` and `mirror`
 * destinations) is kept in the loader (struct dest_x, struct route_x) and
 * resolved in finish_traffic(), so any section may refer to one defined
 * later or in the other file. Old key names are table entries with .alias:
 * they set the current key and leave a warning. Regexes are POSIX ERE,
 * anchored, checked for RE2-only syntax first (re_check).
 *
 * To add a section: write its key table, add a SEC_ id and a sections[]
 * entry; a named section also gets open/close/nth (or render) hooks like
 * [service NAME].
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
#define KEYS_MAX        40                 /* keys per section kind */

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
	/* traffic management (issue #3) */
	V_U32,            /* uint32_t, plain number, bounds */
	V_PERCENT,        /* double 0..100, up to 4 decimals */
	V_LB,             /* enum conf_lb, case-insensitive, Istio spellings */
	V_HASH_ON,        /* conf_policy.hash_on + hash_key */
	V_SUBSET,         /* [destination S] subset.NAME = labels */
	V_DEST_NAMESPACE, /* [destination S] namespace: picks the service, kept in the loader */
	V_HOSTS,          /* char **hosts + n_hosts */
	V_MATCH,          /* match[.N].path|method|header.NAME|query.NAME|source */
	V_DESTS,          /* to = DEST [WEIGHT], ...: resolved in finish() */
	V_MIRROR,         /* mirror = DEST: resolved in finish() */
	V_URI,            /* char *, starts with '/' */
	V_AUTHORITY,      /* char *, host[:port] */
	V_REDIRECT,       /* char *, /path or http(s)://host[:port][/path] */
	V_REDIRECT_CODE,  /* int: 301 302 303 307 308 */
	V_STATUS,         /* int HTTP status, bounds */
	V_TEXT,           /* char *, any text on one line */
	V_HDR_SET,        /* struct conf_header_ops: PREFIX.NAME = value (set) */
	V_HDR_ADD,        /* struct conf_header_ops: PREFIX.NAME = value (add) */
	V_HDR_REMOVE,     /* struct conf_header_ops: list of names */
	V_RETRY_ON,       /* unsigned CONF_RETRY_* bits */
	V_STATUS_LIST,    /* int *codes + size_t n, right after it */
	/* security (issue #4) */
	V_FILE_IN,        /* char *: a path resolved like mesh =, read at load time (min = 1: must hold a PEM certificate) */
	V_FILE_OUT,       /* char *: a path resolved like mesh =, written later */
	V_FINGERPRINT,    /* char *: SHA-256, 64 hex digits (colons allowed), stored lowercase without colons */
	V_MTLS,           /* enum conf_mtls, case-insensitive */
	V_PORT_MTLS,      /* [peer_authentication] port.N = MODE */
	V_AZ_ACTION,      /* enum conf_authz_action, case-insensitive */
	V_AZ_RULES,       /* rules = none (Istio's empty rules: matches nothing) */
	V_PATS,           /* struct conf_pats of the open rule; min = PAT_* (what the items are) */
	V_CIDRS,          /* struct conf_cidrs of the open rule */
	V_PORTS,          /* struct conf_portlist of the open rule */
	V_WHEN_HEADER,    /* when.header.NAME / when.not_header.NAME (min = 1: not) */
};

#define K_LIST     1u   /* may repeat; each line adds one */
#define K_PREFIX   2u   /* name is a prefix: "service." matches service.reviews */
#define K_OPTIONAL 4u   /* rendered only when the value differs from `def` */
#define K_RULE     8u   /* [authorization]: a key of the open rule, not of the policy */

struct conf_key {
	const char *name;
	enum vtype type;
	size_t off;                /* destination, from the section's base */
	uint64_t min, max;         /* bounds of numbers (milliseconds for durations) */
	const char *const *words;  /* V_ENUM: accepted words; the index is stored */
	unsigned flags;            /* K_* */
	const char *example;       /* K_PREFIX: what follows the prefix, for hints ("NAME = address") */
	const char *alias;         /* an old name or a synonym: the key it sets instead */
	const char *note;          /* alias: the warning text (NULL: a synonym, no warning) */
	uint64_t def;              /* K_OPTIONAL: the default, not rendered */
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
	KEY("service.", V_SERVICE_LISTEN, 0, .flags = K_PREFIX, .example = "NAME = address"),
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
	KEY("retry_buffer", V_SIZE, PX(retry_buffer), .min = 0, .max = 16u << 20),
	KEY("retry_budget_percent", V_U32, PX(retry_budget_percent), .min = 0, .max = 100),
	KEY("tap", V_BOOL, PX(tap)),
};

#define LG(f) offsetof(struct conf_log, f)
static const struct conf_key log_keys[] = {
	KEY("access_log", V_ACCESS_LOG, LG(access_log)),
	KEY("access_log_format", V_ENUM, LG(access_log_json), .words = log_formats),
	KEY("level", V_ENUM, LG(level), .words = log_levels),
};

#define CT(f) offsetof(struct conf, control.f)
static const struct conf_key control_keys[] = {
	KEY("mesh", V_MESH_FILE, offsetof(struct conf, mesh_path)),
	KEY("ca", V_APP, CT(ca)),
	KEY("token_file", V_FILE_IN, CT(token_file)),
	KEY("trust_bundle", V_FILE_IN, CT(trust_bundle), .min = 1),
	KEY("ca_fingerprint", V_FINGERPRINT, CT(ca_fingerprint)),
	KEY("key_file", V_FILE_OUT, CT(key_file)),
	KEY("controller", V_APP, CT(controller)),
	KEY("snapshot_file", V_FILE_OUT, CT(snapshot_file)),
};

#define CL(f) offsetof(struct conf_controller, f)
static const struct conf_key controller_keys[] = {
	KEY("listen", V_LISTEN, CL(listen)),
	KEY("admin", V_LISTEN, CL(admin)),
	KEY("ca", V_FILE_OUT, CL(ca)),
	KEY("lease_ttl", V_DURATION, CL(lease_ttl), .min = SEC_MS, .max = HOUR_MS, .flags = K_OPTIONAL),
};

static const struct conf_key mesh_keys[] = {
	KEY("domain", V_DNS_NAME, offsetof(struct conf_mesh, domain)),
	KEY("trust_domain", V_DNS_NAME, offsetof(struct conf_mesh, trust_domain)),
};

/* [tracing]: spans and trace headers (modules/trace.c) */
#define TR(f) offsetof(struct conf_tracing, f)
static const struct conf_key tracing_keys[] = {
	KEY("sampling", V_PERCENT, TR(sampling)),
	KEY("collector", V_APP, TR(collector)),
	KEY("max_queue", V_U32, TR(max_queue), .min = 1, .max = 100000),
};

/* [dashboard]: `mesh dashboard -c` and `mesh up` (modules/dashboard.c); secrets stay in files */
#define DB(f) offsetof(struct conf_dashboard, f)
static const struct conf_key dashboard_keys[] = {
	KEY("listen", V_LISTEN, DB(listen)),
	KEY("token_file", V_FILE_OUT, DB(token_file)),
	KEY("basic_file", V_FILE_OUT, DB(basic_file)),
	KEY("prometheus", V_APP, DB(prometheus)),
	KEY("interval", V_DURATION, DB(interval), .min = 200, .max = 10 * 60 * SEC_MS),
	KEY("warn_errors", V_PERCENT, DB(warn_errors)),
	KEY("bad_errors", V_PERCENT, DB(bad_errors)),
	KEY("max_spans", V_U32, DB(max_spans), .min = 1, .max = 1000000),
	KEY("max_span_bytes", V_SIZE, DB(max_span_bytes), .min = 64u << 10, .max = 1024u << 20),
};

#define SV(f) offsetof(struct conf_service, f)
static const struct conf_key service_keys[] = {
	KEY("namespace", V_NAMESPACE, SV(namespace)),
	KEY("port", V_PORT, SV(port)),
	KEY("endpoint", V_ENDPOINT, 0, .flags = K_LIST),
	KEY("service_account", V_DNS_NAME, SV(service_account)),
	KEY("sidecar", V_BOOL, SV(sidecar)),
};

/* [destination SERVICE] and [destination SERVICE/SUBSET]: Istio DestinationRule.
 * Offsets are from struct conf_destination; a subset override fills a scratch one. */
#define DP(f) offsetof(struct conf_destination, policy.f)
#define COUNT_MAX 1000000000u
#define OLD_CB "is the old name (the seed's circuitBreaker)"
static const struct conf_key destination_keys[] = {
	KEY("namespace", V_DEST_NAMESPACE, 0),
	KEY("subset.", V_SUBSET, 0, .flags = K_PREFIX, .example = "NAME = labels (e.g. subset.v1 = version=v1)"),
	KEY("load_balancer", V_LB, DP(lb)),
	KEY("hash_on", V_HASH_ON, DP(hash_on)),
	KEY("max_connections", V_U32, DP(max_connections), .max = COUNT_MAX),
	KEY("max_pending_requests", V_U32, DP(max_pending_requests), .max = COUNT_MAX),
	KEY("max_requests_per_connection", V_U32, DP(max_requests_per_connection), .max = COUNT_MAX),
	KEY("max_concurrent_requests", V_U32, DP(max_concurrent_requests), .max = COUNT_MAX),
	KEY("connect_timeout", V_DURATION, DP(connect_timeout), .min = 0, .max = 10 * MIN_MS),
	KEY("outlier.consecutive_5xx", V_U32, DP(outlier_consecutive_5xx), .max = COUNT_MAX),
	KEY("outlier.consecutive_gateway_errors", V_U32, DP(outlier_consecutive_gateway_errors), .max = COUNT_MAX),
	KEY("outlier.interval", V_DURATION, DP(outlier_interval), .min = 1, .max = 24 * HOUR_MS),
	KEY("outlier.base_ejection_time", V_DURATION, DP(outlier_base_ejection_time), .min = 1, .max = 24 * HOUR_MS),
	KEY("outlier.max_ejection_percent", V_U32, DP(outlier_max_ejection_percent), .max = 100),
	KEY("outlier.min_health_percent", V_U32, DP(outlier_min_health_percent), .max = 100),
	/* the seed lab's names (Istio before 1.5) */
	KEY("outlier.consecutive_errors", V_U32, 0, .alias = "outlier.consecutive_5xx",
	    .note = "'consecutive_errors' is the old name (Istio's consecutiveErrors), use outlier.consecutive_5xx"),
	KEY("circuit_breaker.consecutive_errors", V_U32, 0, .alias = "outlier.consecutive_5xx",
	    .note = "'consecutive_errors' is the old name (Istio's consecutiveErrors), use outlier.consecutive_5xx"),
	KEY("circuit_breaker.consecutive_5xx", V_U32, 0, .alias = "outlier.consecutive_5xx",
	    .note = "'circuit_breaker.consecutive_5xx' " OLD_CB ", use outlier.consecutive_5xx"),
	KEY("circuit_breaker.consecutive_gateway_errors", V_U32, 0, .alias = "outlier.consecutive_gateway_errors",
	    .note = "'circuit_breaker.consecutive_gateway_errors' " OLD_CB ", use outlier.consecutive_gateway_errors"),
	KEY("circuit_breaker.interval", V_DURATION, 0, .alias = "outlier.interval",
	    .note = "'circuit_breaker.interval' " OLD_CB ", use outlier.interval"),
	KEY("circuit_breaker.base_ejection_time", V_DURATION, 0, .alias = "outlier.base_ejection_time",
	    .note = "'circuit_breaker.base_ejection_time' " OLD_CB ", use outlier.base_ejection_time"),
	KEY("circuit_breaker.max_ejection_percent", V_U32, 0, .alias = "outlier.max_ejection_percent",
	    .note = "'circuit_breaker.max_ejection_percent' " OLD_CB ", use outlier.max_ejection_percent"),
	KEY("circuit_breaker.min_health_percent", V_U32, 0, .alias = "outlier.min_health_percent",
	    .note = "'circuit_breaker.min_health_percent' " OLD_CB ", use outlier.min_health_percent"),
};
_Static_assert(sizeof(enum conf_lb) == sizeof(uint32_t) && sizeof(enum conf_hash_on) == sizeof(uint32_t),
               "policy fields are copied as uint32_t");

/* [route HOST/NAME]: one rule of an Istio VirtualService */
#define RT(f) offsetof(struct conf_route, f)
static const struct conf_key route_keys[] = {
	KEY("hosts", V_HOSTS, RT(hosts)),
	KEY("match.", V_MATCH, RT(matches), .flags = K_PREFIX,
	    .example = "path = ..., match.method = GET, match.header.NAME = ..., match.query.NAME = ..., match.source = labels"),
	KEY("to", V_DESTS, RT(to)),
	KEY("rewrite.uri", V_URI, RT(rewrite_uri)),
	KEY("rewrite.authority", V_AUTHORITY, RT(rewrite_authority)),
	KEY("redirect", V_REDIRECT, RT(redirect)),
	KEY("redirect.code", V_REDIRECT_CODE, RT(redirect_code), .flags = K_OPTIONAL, .def = 301),
	KEY("direct_response", V_STATUS, RT(direct_status), .min = 200, .max = 599, .flags = K_OPTIONAL),
	KEY("direct_response.body", V_TEXT, RT(direct_body)),
	KEY("request.set.", V_HDR_SET, RT(req_headers), .flags = K_PREFIX, .example = "NAME = value"),
	KEY("request.add.", V_HDR_ADD, RT(req_headers), .flags = K_PREFIX, .example = "NAME = value"),
	KEY("request.remove", V_HDR_REMOVE, RT(req_headers)),
	KEY("response.set.", V_HDR_SET, RT(resp_headers), .flags = K_PREFIX, .example = "NAME = value"),
	KEY("response.add.", V_HDR_ADD, RT(resp_headers), .flags = K_PREFIX, .example = "NAME = value"),
	KEY("response.remove", V_HDR_REMOVE, RT(resp_headers)),
	KEY("timeout", V_DURATION, RT(timeout), .min = 0, .max = 24 * HOUR_MS, .flags = K_OPTIONAL),
	KEY("retries", V_U32, RT(retries), .max = 10, .flags = K_OPTIONAL),
	KEY("per_try_timeout", V_DURATION, RT(per_try_timeout), .min = 0, .max = 24 * HOUR_MS, .flags = K_OPTIONAL),
	KEY("retry_on", V_RETRY_ON, RT(retry_on)),
	KEY("retry_status_codes", V_STATUS_LIST, RT(retry_status_codes), .min = 100, .max = 599),
	KEY("fault.delay", V_DURATION, RT(fault_delay), .min = 1, .max = HOUR_MS, .flags = K_OPTIONAL),
	KEY("fault.delay_percent", V_PERCENT, RT(fault_delay_percent), .flags = K_OPTIONAL, .def = 100),
	KEY("fault.abort", V_STATUS, RT(fault_abort), .min = 200, .max = 599, .flags = K_OPTIONAL),
	KEY("fault.abort_percent", V_PERCENT, RT(fault_abort_percent), .flags = K_OPTIONAL, .def = 100),
	KEY("mirror", V_MIRROR, RT(mirror)),
	KEY("mirror_percent", V_PERCENT, RT(mirror_percent), .flags = K_OPTIONAL, .def = 100),
};
_Static_assert(offsetof(struct conf_route, n_retry_status_codes) ==
               offsetof(struct conf_route, retry_status_codes) + sizeof(int *), "V_STATUS_LIST layout");

/* [peer_authentication NAME]: Istio PeerAuthentication */
#define PA(f) offsetof(struct conf_peer_auth, f)
static const struct conf_key peer_auth_keys[] = {
	KEY("namespace", V_NAMESPACE, PA(namespace)),
	KEY("selector", V_LABELS, PA(selector)),
	KEY("mode", V_MTLS, PA(mode)),
	KEY("port.", V_PORT_MTLS, 0, .flags = K_PREFIX, .example = "N = MODE (e.g. port.9080 = DISABLE)"),
};

/* [authorization NAME] and [authorization NAME/RULE]: Istio AuthorizationPolicy.
 * K_RULE keys write into the open rule (offsets from struct conf_authz_rule). */
enum { PAT_PRINCIPAL, PAT_NAMESPACE, PAT_METHOD, PAT_PATH, PAT_HOST, PAT_HEADER };
#define AZ(f) offsetof(struct conf_authz, f)
#define AR(f) offsetof(struct conf_authz_rule, f)
static const struct conf_key authz_keys[] = {
	KEY("namespace", V_NAMESPACE, AZ(namespace)),
	KEY("selector", V_LABELS, AZ(selector)),
	KEY("action", V_AZ_ACTION, AZ(action)),
	KEY("rules", V_AZ_RULES, 0),
	KEY("from.principals", V_PATS, AR(principals), .min = PAT_PRINCIPAL, .flags = K_RULE),
	KEY("from.not_principals", V_PATS, AR(not_principals), .min = PAT_PRINCIPAL, .flags = K_RULE),
	KEY("from.namespaces", V_PATS, AR(namespaces), .min = PAT_NAMESPACE, .flags = K_RULE),
	KEY("from.not_namespaces", V_PATS, AR(not_namespaces), .min = PAT_NAMESPACE, .flags = K_RULE),
	KEY("from.ip_blocks", V_CIDRS, AR(ip_blocks), .flags = K_RULE),
	KEY("from.not_ip_blocks", V_CIDRS, AR(not_ip_blocks), .flags = K_RULE),
	KEY("to.methods", V_PATS, AR(methods), .min = PAT_METHOD, .flags = K_RULE),
	KEY("to.not_methods", V_PATS, AR(not_methods), .min = PAT_METHOD, .flags = K_RULE),
	KEY("to.paths", V_PATS, AR(paths), .min = PAT_PATH, .flags = K_RULE),
	KEY("to.not_paths", V_PATS, AR(not_paths), .min = PAT_PATH, .flags = K_RULE),
	KEY("to.ports", V_PORTS, AR(ports), .flags = K_RULE),
	KEY("to.not_ports", V_PORTS, AR(not_ports), .flags = K_RULE),
	KEY("to.hosts", V_PATS, AR(hosts), .min = PAT_HOST, .flags = K_RULE),
	KEY("to.not_hosts", V_PATS, AR(not_hosts), .min = PAT_HOST, .flags = K_RULE),
	KEY("when.header.", V_WHEN_HEADER, 0, .flags = K_PREFIX | K_RULE, .example = "NAME = values (e.g. when.header.x-user = jason, admin*)"),
	KEY("when.not_header.", V_WHEN_HEADER, 0, .min = 1, .flags = K_PREFIX | K_RULE, .example = "NAME = values"),
	/* Istio's when: keys for what from/to already have (synonyms, no warning) */
	KEY("when.source.principal", V_PATS, 0, .alias = "from.principals", .flags = K_RULE),
	KEY("when.source.namespace", V_PATS, 0, .alias = "from.namespaces", .flags = K_RULE),
	KEY("when.source.ip", V_CIDRS, 0, .alias = "from.ip_blocks", .flags = K_RULE),
	KEY("when.destination.port", V_PORTS, 0, .alias = "to.ports", .flags = K_RULE),
};

struct ld;
struct where {
	const char *file;          /* points into conf->files */
	int line;                  /* 0 = not set / a default */
};

enum { SEC_WORKLOAD, SEC_LISTEN, SEC_PROXY, SEC_LOG, SEC_CONTROL, SEC_MESH, SEC_SERVICE, SEC_DESTINATION,
       SEC_ROUTE, SEC_PEER_AUTH, SEC_AUTHZ, SEC_CONTROLLER, SEC_TRACING, SEC_DASHBOARD, SEC_COUNT };

struct sb;
struct section_kind {
	const char *name;          /* "proxy", "service" */
	unsigned part;             /* PART_PROXY or PART_MESH */
	size_t conf_off;           /* singleton: its struct inside struct conf */
	const struct conf_key *keys;
	size_t n_keys;
	/* named sections ([service NAME]) only: */
	const char *usage;         /* what the name is, for messages: "NAME", "HOST/NAME" */
	int (*open)(struct ld *ld, const char *name, const struct where *w); /* sets ld->base */
	void (*close)(struct ld *ld);
	const void *(*nth)(const struct conf *c, size_t i, const char **name); /* for rendering */
	void (*render)(struct sb *out, const struct conf *c);  /* instead of nth, when set */
};

static int service_open(struct ld *ld, const char *name, const struct where *w);
static void service_close(struct ld *ld);
static const void *service_nth(const struct conf *c, size_t i, const char **name);
static int destination_open(struct ld *ld, const char *name, const struct where *w);
static void destination_close(struct ld *ld);
static void destination_render(struct sb *out, const struct conf *c);
static int route_open(struct ld *ld, const char *name, const struct where *w);
static void route_close(struct ld *ld);
static const void *route_nth(const struct conf *c, size_t i, const char **name);
static int peer_auth_open(struct ld *ld, const char *name, const struct where *w);
static void peer_auth_close(struct ld *ld);
static const void *peer_auth_nth(const struct conf *c, size_t i, const char **name);
static int authz_open(struct ld *ld, const char *name, const struct where *w);
static void authz_close(struct ld *ld);
static void authz_render(struct sb *out, const struct conf *c);

#define SECTION(n, p, o, k, ...) { .name = (n), .part = (p), .conf_off = (o), .keys = (k), .n_keys = NKEYS(k), __VA_ARGS__ }
static const struct section_kind sections[SEC_COUNT] = {
	[SEC_WORKLOAD] = SECTION("workload", PART_PROXY, offsetof(struct conf, workload), workload_keys),
	[SEC_LISTEN] = SECTION("listen", PART_PROXY, offsetof(struct conf, listen), listen_keys),
	[SEC_PROXY] = SECTION("proxy", PART_PROXY, offsetof(struct conf, proxy), proxy_keys),
	[SEC_LOG] = SECTION("log", PART_PROXY, offsetof(struct conf, log), log_keys),
	[SEC_CONTROL] = SECTION("control", PART_PROXY, 0, control_keys),
	[SEC_MESH] = SECTION("mesh", PART_MESH, offsetof(struct conf, mesh), mesh_keys),
	[SEC_SERVICE] = SECTION("service", PART_MESH, 0, service_keys, .usage = "NAME",
	                        .open = service_open, .close = service_close, .nth = service_nth),
	[SEC_DESTINATION] = SECTION("destination", PART_MESH, 0, destination_keys, .usage = "SERVICE",
	                            .open = destination_open, .close = destination_close,
	                            .render = destination_render),
	[SEC_ROUTE] = SECTION("route", PART_MESH, 0, route_keys, .usage = "HOST/NAME",
	                      .open = route_open, .close = route_close, .nth = route_nth),
	[SEC_PEER_AUTH] = SECTION("peer_authentication", PART_MESH, 0, peer_auth_keys, .usage = "NAME",
	                          .open = peer_auth_open, .close = peer_auth_close, .nth = peer_auth_nth),
	[SEC_AUTHZ] = SECTION("authorization", PART_MESH, 0, authz_keys, .usage = "NAME",
	                      .open = authz_open, .close = authz_close, .render = authz_render),
	/* the controller's own settings: in mesh.ini, so PART_MESH, but never in a snapshot */
	[SEC_CONTROLLER] = SECTION("controller", PART_MESH, offsetof(struct conf, controller), controller_keys),
	[SEC_TRACING] = SECTION("tracing", PART_MESH, offsetof(struct conf, tracing), tracing_keys),
	[SEC_DASHBOARD] = SECTION("dashboard", PART_MESH, offsetof(struct conf, dashboard), dashboard_keys),
};
_Static_assert(NKEYS(workload_keys) <= KEYS_MAX && NKEYS(listen_keys) <= KEYS_MAX &&
               NKEYS(proxy_keys) <= KEYS_MAX && NKEYS(log_keys) <= KEYS_MAX &&
               NKEYS(control_keys) <= KEYS_MAX && NKEYS(mesh_keys) <= KEYS_MAX &&
               NKEYS(service_keys) <= KEYS_MAX && NKEYS(destination_keys) <= KEYS_MAX &&
               NKEYS(route_keys) <= KEYS_MAX && NKEYS(peer_auth_keys) <= KEYS_MAX &&
               NKEYS(authz_keys) <= KEYS_MAX && NKEYS(controller_keys) <= KEYS_MAX &&
               NKEYS(tracing_keys) <= KEYS_MAX, "raise KEYS_MAX");

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

struct dest_x {                /* a [destination ...] section, resolved in finish() */
	char *service;             /* the name in the header */
	char *subset;              /* [destination S/SUBSET]: the subset; NULL for the rule itself */
	char *namespace;           /* `namespace =`, or NULL */
	struct where at;           /* the header */
	struct where seen[KEYS_MAX];  /* overrides: the keys written there */
	struct conf_destination d; /* overrides: scratch their values are parsed into */
};

struct route_x {               /* deferred parts of a [route ...], parallel to conf->routes */
	char **to_ref;             /* the DEST text of each conf_route.to[i] */
	struct where to_at;
	char *mirror_ref;          /* the DEST text of mirror, or NULL */
	struct where mirror_at;
	struct where hosts_at;     /* the hosts line, or the header */
	unsigned *block;           /* match block numbers (1..16), parallel to conf_route.matches */
};

struct pkey {                  /* a prefix key (match.header.x) set in the open section */
	char *key;                 /* normalised: lowercase header names, block numbers */
	struct where at;
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
	int mesh_given;            /* the mesh part came as text (a controller's snapshot) */
	struct dest_x *dx;         /* parallel to conf->destinations */
	size_t n_dx;
	struct dest_x *ox;         /* [destination S/SUBSET] overrides */
	size_t n_ox;
	struct dest_x *dcur;       /* the open [destination] */
	struct route_x *rx;        /* parallel to conf->routes */
	struct pkey *pk;           /* prefix keys of the open section, for duplicates */
	size_t n_pk;
	struct authz_x *ax;        /* parallel to conf->authzs */
	struct conf_authz_rule *arule;  /* [authorization]: the rule its K_RULE keys write */
	int asub;                  /* the open section is [authorization NAME/RULE] */
	size_t rule_keys;          /* K_RULE keys seen in the open [authorization NAME] */
	/* messages: kept apart so they can be listed in file and line order */
	struct msg *msgs;
	size_t n_msgs;
	size_t n_dropped;          /* beyond CONF_MAX_KEPT: counted only */
	size_t max_listed;         /* errors put_errors lists, 0 = CONF_MAX_ERRORS */
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

/* ------------------------------------------------------------ traffic management values */

/* RFC 9110 token character (header names, methods, cookie names) */
static int tchar(int c)
{
	return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int token(const char *s, size_t n)
{
	size_t i;

	if (!n)
		return 0;
	for (i = 0; i < n; i++)
		if (!tchar((unsigned char)s[i]))
			return 0;
	return 1;
}

#define NAME_MAX_LEN 128       /* header, query parameter and cookie names */

/* A header name, lowercased into out[NAME_MAX_LEN + 1]. */
static int header_name(const char *s, size_t n, char *out, char *why, size_t wn)
{
	char b[72];
	size_t i;

	if (!n)
		return snprintf(why, wn, "empty header name"), -1;
	if (n > NAME_MAX_LEN)
		return snprintf(why, wn, "header name longer than %d characters", NAME_MAX_LEN), -1;
	if (!token(s, n)) {
		char tmp[72];

		snprintf(tmp, sizeof(tmp), "%.*s", (int)(n > 60 ? 60 : n), s);
		return snprintf(why, wn, "'%s' is not a header name (letters, digits and !#$%%&'*+-.^_`|~)",
		                clip(tmp, b, sizeof(b))), -1;
	}
	for (i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)s[i]);
	out[n] = '\0';
	return 0;
}

/* A query parameter name (case-sensitive): unreserved URI characters. */
static int query_name(const char *s, char *why, size_t wn)
{
	char b[72];
	size_t n = strlen(s), i;

	if (!n || n > NAME_MAX_LEN)
		return snprintf(why, wn, "a query parameter name has 1..%d characters", NAME_MAX_LEN), -1;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("-._~", s[i]))
			return snprintf(why, wn, "'%s' is not a query parameter name (letters, digits and - . _ ~)",
			                clip(s, b, sizeof(b))), -1;
	return 0;
}

/* Headers the proxy owns: changing them would break framing or the hop. */
static const char *managed_header(const char *name)
{
	static const char *const hop[] = { "content-length", "transfer-encoding", "connection", "keep-alive",
	                                   "proxy-connection", "te", "trailer", "upgrade" };
	size_t i;

	if (!strcmp(name, "host"))
		return "the Host header is changed with rewrite.authority";
	for (i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
		if (!strcmp(name, hop[i]))
			return "the proxy manages framing and hop-by-hop headers";
	return NULL;
}

/* One line of free text: no control characters; a leading ';' would read
 * back as a comment once rendered as "key = ;...". */
static int text_ok(const char *v, char *why, size_t wn)
{
	const char *q;

	for (q = v; *q; q++)
		if (((unsigned char)*q < 0x20 && *q != '\t') || *q == 0x7f)
			return snprintf(why, wn, "control character in the value"), -1;
	if (*v == ';')
		return snprintf(why, wn, "may not start with ';' (it would read as a comment)"), -1;
	return 0;
}

/* "20", "0.5", "12.25": 0..100 with at most 4 decimals, so that rendering
 * gives the same number back. */
static int parse_percent(const char *s, double *out, char *why, size_t wn)
{
	uint64_t whole = 0, frac = 0;
	const char *p = s;
	int dec = 0;

	if (!isdigit((unsigned char)*p))
		return snprintf(why, wn, "not a percentage (0..100, e.g. 20 or 0.5)"), -1;
	for (; isdigit((unsigned char)*p); p++) {
		whole = whole * 10 + (uint64_t)(*p - '0');
		if (whole > 100)
			return snprintf(why, wn, "out of range (allowed 0..100)"), -1;
	}
	if (*p == '.') {
		if (!isdigit((unsigned char)p[1]))
			return snprintf(why, wn, "not a percentage (0..100, e.g. 20 or 0.5)"), -1;
		for (p++; isdigit((unsigned char)*p); p++) {
			if (++dec > 4)
				return snprintf(why, wn, "at most 4 decimals"), -1;
			frac = frac * 10 + (uint64_t)(*p - '0');
		}
	}
	if (*p)
		return snprintf(why, wn, "not a percentage (0..100, e.g. 20 or 0.5)"), -1;
	for (; dec < 4; dec++)
		frac *= 10;
	if (whole * 10000 + frac > 1000000)
		return snprintf(why, wn, "out of range (allowed 0..100)"), -1;
	*out = (double)(whole * 10000 + frac) / 10000.0;
	return 0;
}

static void fmt_percent(double v, char *buf, size_t n)
{
	uint64_t u = (uint64_t)(v * 10000.0 + 0.5);
	size_t l;

	if (!(u % 10000)) {
		snprintf(buf, n, "%llu", (unsigned long long)(u / 10000));
		return;
	}
	snprintf(buf, n, "%llu.%04llu", (unsigned long long)(u / 10000), (unsigned long long)(u % 10000));
	for (l = strlen(buf); buf[l - 1] == '0'; l--)
		buf[l - 1] = '\0';
}

#define RE_MAX_STATES 10000    /* rough compiled size above which a regex is refused */
#define RE_MAX_DEPTH  32

/*
 * Istio's regexes are RE2, ours are POSIX ERE (what libc has). This refuses
 * the RE2/Perl forms that ERE would silently read differently (\d, (?i),
 * lazy quantifiers, a backslash class inside [...]), unbalanced parentheses
 * (which would break the "^(" RE ")$" anchoring), and patterns whose compiled
 * form would be huge: nested repeats such as ((a{100}){100}){100} make
 * regcomp build millions of states. The size estimate treats an atom as 1,
 * a group as the sum of its parts, and x{m,n} as n copies of x.
 */
static int re_check(const char *re, char *why, size_t wn)
{
	uint64_t sum[RE_MAX_DEPTH + 1], last[RE_MAX_DEPTH + 1];
	int depth = 0;
	const char *p = re;

	sum[0] = last[0] = 0;
	while (*p) {
		char c = *p;
		uint64_t mul = 0;

		if (c == '\\') {
			const char *hint;

			if (!p[1])
				return snprintf(why, wn, "trailing backslash"), -1;
			if (isalnum((unsigned char)p[1])) {
				switch (p[1]) {
				case 'd': hint = "write [0-9]"; break;
				case 'D': hint = "write [^0-9]"; break;
				case 'w': hint = "write [[:alnum:]_]"; break;
				case 'W': hint = "write [^[:alnum:]_]"; break;
				case 's': hint = "write [[:space:]]"; break;
				case 'S': hint = "write [^[:space:]]"; break;
				case 'b': case 'B': case 'A': case 'z': case 'Z': hint = "anchors other than ^ and $ are not supported"; break;
				default:
					hint = isdigit((unsigned char)p[1]) ? "back-references are not supported"
					                                    : "write the character itself or a bracket expression";
				}
				return snprintf(why, wn, "'\\%c' is RE2/Perl syntax, not POSIX ERE: %s", p[1], hint), -1;
			}
			sum[depth] += last[depth], last[depth] = 1;
			p += 2;
			continue;
		}
		switch (c) {
		case '[': {
			const char *q = p + 1;

			if (*q == '^')
				q++;
			if (*q == ']')
				q++;
			while (*q && *q != ']') {
				if (*q == '[' && (q[1] == ':' || q[1] == '.' || q[1] == '=')) {
					const char *e = q + 2;

					while (*e && !(e[0] == q[1] && e[1] == ']'))
						e++;
					if (!*e)
						return snprintf(why, wn, "unclosed '[%c' in a bracket expression", q[1]), -1;
					q = e + 2;
					continue;
				}
				if (*q == '\\' && q[1] && strchr("dDwWsS", q[1]))
					return snprintf(why, wn, "'[\\%c': inside [...] a backslash is an ordinary character in "
					                "POSIX ERE (write [0-9], [[:alnum:]_] or [[:space:]])", q[1]), -1;
				q++;
			}
			if (!*q)
				return snprintf(why, wn, "unclosed '['"), -1;
			sum[depth] += last[depth], last[depth] = 1;
			p = q + 1;
			continue;
		}
		case '(':
			if (p[1] == '?')
				return snprintf(why, wn, "'(?' groups and flags such as (?i) are RE2 syntax, not POSIX ERE "
				                "(for case-insensitive letters write [Jj]ason)"), -1;
			if (depth == RE_MAX_DEPTH)
				return snprintf(why, wn, "parentheses nested more than %d deep", RE_MAX_DEPTH), -1;
			depth++;
			sum[depth] = last[depth] = 0;
			p++;
			continue;
		case ')': {
			uint64_t size;

			if (!depth)
				return snprintf(why, wn, "unmatched ')'"), -1;
			size = sum[depth] + last[depth];
			depth--;
			sum[depth] += last[depth];
			last[depth] = size ? size : 1;
			p++;
			continue;
		}
		case '|':
			sum[depth] += last[depth], last[depth] = 0;
			p++;
			continue;
		case '*': case '+': case '?':
			mul = 1;
			p++;
			break;
		case '{':
			if (isdigit((unsigned char)p[1])) {
				uint64_t m = 0, n;
				const char *q = p + 1;

				for (; isdigit((unsigned char)*q) && m <= 255; q++)
					m = m * 10 + (uint64_t)(*q - '0');
				n = m;
				if (*q == ',') {
					q++;
					n = m + 1;
					if (isdigit((unsigned char)*q))
						for (n = 0; isdigit((unsigned char)*q) && n <= 255; q++)
							n = n * 10 + (uint64_t)(*q - '0');
				}
				if (*q != '}')
					return snprintf(why, wn, "bad repeat count (write {m}, {m,} or {m,n})"), -1;
				if (m > 255 || n > 255)
					return snprintf(why, wn, "repeat counts go up to 255"), -1;
				if (n < m)
					return snprintf(why, wn, "repeat {m,n} with n smaller than m"), -1;
				mul = n ? n : 1;
				p = q + 1;
				break;
			}
			sum[depth] += last[depth], last[depth] = 1;  /* a literal '{' */
			p++;
			continue;
		default:
			sum[depth] += last[depth], last[depth] = 1;
			p++;
			continue;
		}
		/* a quantifier: it repeats the last atom */
		if (*p == '?' || *p == '+')
			return snprintf(why, wn, "lazy and possessive quantifiers (*? +? ?? *+) are RE2/Perl syntax, "
			                "not POSIX ERE"), -1;
		last[depth] *= mul;
		if (last[depth] > RE_MAX_STATES || sum[depth] + last[depth] > RE_MAX_STATES)
			return snprintf(why, wn, "too complex (nested repeats make it compile to more than %d states)",
			                RE_MAX_STATES), -1;
	}
	if (depth)
		return snprintf(why, wn, "unmatched '('"), -1;
	return 0;
}

/* Compiles src as a whole-string match (Istio/RE2 regexes match the whole value). */
static int compile_regex(const char *src, regex_t **out, char *why, size_t wn)
{
	regex_t *re;
	char *pat;
	int rc;

	*out = NULL;
	if (!*src)
		return snprintf(why, wn, "empty regex"), -1;
	if (re_check(src, why, wn) < 0)
		return -1;
	pat = xmalloc(strlen(src) + 5);
	sprintf(pat, "^(%s)$", src);
	re = xmalloc(sizeof(*re));
	rc = regcomp(re, pat, REG_EXTENDED | REG_NOSUB);
	free(pat);
	if (rc) {
		regerror(rc, re, why, wn);
		free(re);
		return -1;
	}
	*out = re;
	return 0;
}

#define SM(k) (1u << (k))
#define SM_ALL (SM(CONF_MATCH_EXACT) | SM(CONF_MATCH_PREFIX) | SM(CONF_MATCH_REGEX) | SM(CONF_MATCH_PRESENT) | \
                SM(CONF_MATCH_ABSENT))

static void strmatch_free(struct conf_strmatch *m)
{
	free(m->value);
	m->value = NULL;
	if (m->re) {
		regfree(m->re);
		free(m->re);
		m->re = NULL;
	}
}

/* "jason", "exact:jason", "prefix:/api", "regex:v[12]", "present", "absent" */
static int parse_strmatch(struct ld *ld, const struct conf_route *r, const char *key, const char *v,
                          unsigned allowed, struct conf_strmatch *m, const struct where *w)
{
	static const struct { const char *pre; enum conf_match_kind kind; } forms[] = {
		{ "exact:", CONF_MATCH_EXACT }, { "prefix:", CONF_MATCH_PREFIX }, { "regex:", CONF_MATCH_REGEX },
	};
	enum conf_match_kind kind = CONF_MATCH_EXACT;
	const char *val = v;
	char why[200], b[72];
	size_t i;

	memset(m, 0, sizeof(*m));
	if (*v == ';')
		return bad_value(ld, w, key, v, "a value starting with ';' would read as a comment: write exact:;...");
	if (text_ok(v, why, sizeof(why)) < 0)
		return bad_value(ld, w, key, v, why);
	if (!strcmp(v, "present"))
		kind = CONF_MATCH_PRESENT, val = "";
	else if (!strcmp(v, "absent"))
		kind = CONF_MATCH_ABSENT, val = "";
	else
		for (i = 0; i < sizeof(forms) / sizeof(forms[0]); i++)
			if (!strncmp(v, forms[i].pre, strlen(forms[i].pre))) {
				kind = forms[i].kind;
				val = v + strlen(forms[i].pre);
				break;
			}
	if (!(allowed & SM(kind)))
		return bad_value(ld, w, key, v, kind == CONF_MATCH_PREFIX ? "prefix: is not available here (use exact: or regex:)"
		                 : "present and absent are for headers and query parameters "
		                   "(write exact:present to match the word)");
	if (kind == CONF_MATCH_PREFIX && !*val)
		return bad_value(ld, w, key, v, "empty prefix");
	if (kind == CONF_MATCH_REGEX && compile_regex(val, &m->re, why, sizeof(why)) < 0) {
		ld_err(ld, w, "route %s: bad regex '%s': %s", r->name, clip(val, b, sizeof(b)), why);
		return -1;
	}
	m->kind = kind;
	m->value = xstrdup(val);
	return 0;
}

/* A route host: a DNS name (reviews, reviews.default.svc.cluster.local,
 * bookinfo.com) or *.suffix; lowercased into out[254]. */
static int host_pattern(const char *s, size_t n, char *out, char *why, size_t wn)
{
	size_t i;

	if (!n)
		return snprintf(why, wn, "empty host"), -1;
	if (n > 253)
		return snprintf(why, wn, "host name longer than 253 characters"), -1;
	for (i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)s[i]);
	out[n] = '\0';
	if (strchr(out, ':'))
		return snprintf(why, wn, "a route host has no port (the rule applies on every port)"), -1;
	if (out[0] == '*') {
		if (n == 1)
			return snprintf(why, wn, "'*' alone is not supported: list the hosts, or use *.DOMAIN"), -1;
		if (out[1] != '.' || !dns_name(out + 2))
			return snprintf(why, wn, "a wildcard host is '*.' and a domain (e.g. *.example.com)"), -1;
		return 0;
	}
	if (strchr(out, '*'))
		return snprintf(why, wn, "'*' may only be the first label (*.example.com)"), -1;
	if (!dns_name(out))
		return snprintf(why, wn, "not a host name (DNS labels of a-z 0-9 - joined by dots)"), -1;
	return 0;
}

/* SUBSET, SERVICE (any host form of it) or SERVICE/SUBSET */
static int dest_ref_ok(const char *s, char *why, size_t wn)
{
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	char host[256], b[72];

	if (!n || n > 253 || (slash && strchr(slash + 1, '/')))
		goto bad;
	memcpy(host, s, n);
	host[n] = '\0';
	if (!dns_name(host))
		goto bad;
	if (slash && !dns_label(slash + 1, strlen(slash + 1), 0))
		return snprintf(why, wn, "'%s' is not a subset name (a-z 0-9 -)", clip(slash + 1, b, sizeof(b))), -1;
	return 0;
bad:
	return snprintf(why, wn, "'%s' is not a destination (write SUBSET, SERVICE or SERVICE/SUBSET)",
	                clip(s, b, sizeof(b))), -1;
}

/* host[:port] of an authority (rewrite.authority, redirect) */
static int authority_ok(const char *s, size_t n, char *why, size_t wn)
{
	char host[256], b[72];
	const char *port = NULL, *close;
	size_t hl;
	uint64_t pv;
	struct in6_addr a6;

	if (!n || n > 253 + 6)
		return snprintf(why, wn, "not host[:port]"), -1;
	if (s[0] == '[') {
		close = memchr(s, ']', n);
		if (!close || (size_t)(close - s) > 64)
			return snprintf(why, wn, "missing ']' after the IPv6 address"), -1;
		hl = (size_t)(close - s - 1);
		memcpy(host, s + 1, hl);
		host[hl] = '\0';
		if (inet_pton(AF_INET6, host, &a6) != 1)
			return snprintf(why, wn, "'%s' is not an IPv6 address", clip(host, b, sizeof(b))), -1;
		if (close + 1 < s + n) {
			if (close[1] != ':')
				return snprintf(why, wn, "not host[:port]"), -1;
			port = close + 2;
		}
	} else {
		const char *colon = memchr(s, ':', n);
		size_t i;

		hl = colon ? (size_t)(colon - s) : n;
		if (!hl || hl > 253)
			return snprintf(why, wn, "not host[:port]"), -1;
		for (i = 0; i < hl; i++)
			host[i] = (char)tolower((unsigned char)s[i]);
		host[hl] = '\0';
		if (!dns_name(host))
			return snprintf(why, wn, "'%s' is not a host name", clip(host, b, sizeof(b))), -1;
		if (colon)
			port = colon + 1;
	}
	if (port) {
		size_t pl = (size_t)(s + n - port);

		if (!pl || pl > 5 || !all_digits(port, pl))
			return snprintf(why, wn, "not a port (1..65535)"), -1;
		memcpy(host, port, pl);
		host[pl] = '\0';
		if (parse_uint(host, 65535, &pv, b, sizeof(b)) < 0 || !pv)
			return snprintf(why, wn, "not a port (1..65535)"), -1;
	}
	return 0;
}

/* a path, as in a request target: starts with '/', no spaces or controls */
static int path_ok(const char *s, char *why, size_t wn)
{
	const char *q;

	if (*s != '/')
		return snprintf(why, wn, "must start with '/'"), -1;
	for (q = s; *q; q++)
		if ((unsigned char)*q <= 0x20 || *q == 0x7f)
			return snprintf(why, wn, "spaces and control characters must be percent-encoded (%%20)"), -1;
	return 0;
}

static int redirect_ok(const char *s, char *why, size_t wn)
{
	const char *h, *slash;

	if (*s == '/')
		return path_ok(s, why, wn);
	if (!strncasecmp(s, "http://", 7))
		h = s + 7;
	else if (!strncasecmp(s, "https://", 8))
		h = s + 8;
	else
		return snprintf(why, wn, "write /path or http(s)://host[:port]/path"), -1;
	slash = strchr(h, '/');
	if (authority_ok(h, slash ? (size_t)(slash - h) : strlen(h), why, wn) < 0)
		return -1;
	return slash ? path_ok(slash, why, wn) : 0;
}

/* a list item: [*a, *b) trimmed; returns the start of the next item or NULL */
static const char *list_item(const char *p, const char **a, const char **b)
{
	const char *comma = strchr(p, ','), *end = comma ? comma : p + strlen(p);

	while (p < end && isspace((unsigned char)*p))
		p++;
	while (end > p && isspace((unsigned char)end[-1]))
		end--;
	*a = p;
	*b = end;
	return comma ? comma + 1 : NULL;
}

/* 0 the first time a (normalised) prefix key is set in the open section */
static int prefix_dup(struct ld *ld, const char *norm, const char *name, const struct where *w)
{
	char b[72];
	size_t i;

	for (i = 0; i < ld->n_pk; i++)
		if (!strcmp(ld->pk[i].key, norm)) {
			ld_err(ld, w, "duplicate key '%s' in %s (first set at %s:%d)", clip(name, b, sizeof(b)), ld->title,
			       ld->pk[i].at.file, ld->pk[i].at.line);
			return -1;
		}
	ld->pk = grow(ld->pk, ld->n_pk, sizeof(*ld->pk));
	ld->pk[ld->n_pk].key = xstrdup(norm);
	ld->pk[ld->n_pk].at = *w;
	ld->n_pk++;
	return 0;
}

static void pk_clear(struct ld *ld)
{
	size_t i;

	for (i = 0; i < ld->n_pk; i++)
		free(ld->pk[i].key);
	free(ld->pk);
	ld->pk = NULL;
	ld->n_pk = 0;
}

static const char *const lb_words[] = { "peak_ewma", "round_robin", "least_request", "random", "ring_hash", "maglev", NULL };
static const char *const retry_words[] = { "5xx", "gateway-error", "connect-failure", "reset", "retriable-status-codes", NULL };
static const char *const hash_words[] = { "header", "cookie", "query", "source_ip", NULL };

static int lb_hashes(enum conf_lb lb)
{
	return lb == CONF_LB_RING_HASH || lb == CONF_LB_MAGLEV;
}

/* "expected one of: a, b, c (did you mean 'b'?)" */
static const char *one_of(const char *v, const char *const *words, char *buf, size_t n)
{
	struct sb list = { 0 };
	const char *best;
	size_t i;

	for (i = 0; words[i]; i++)
		sb_printf(&list, "%s%s", i ? ", " : "", words[i]);
	best = closest(v, words, i);
	if (best)
		snprintf(buf, n, "expected one of: %s (did you mean '%s'?)", list.p, best);
	else
		snprintf(buf, n, "expected one of: %s", list.p);
	free(list.p);
	return buf;
}

static int parse_lb(struct ld *ld, enum conf_lb *dst, const char *name, const char *v, const struct where *w)
{
	char why[200], b[72];
	size_t i;

	for (i = 0; lb_words[i]; i++)
		if (!strcasecmp(v, lb_words[i]))
			return *dst = (enum conf_lb)i, 0;
	if (!strcasecmp(v, "least_conn")) {
		ld_warn(ld, w, "'%s' is the old name, use least_request", clip(v, b, sizeof(b)));
		*dst = CONF_LB_LEAST_REQUEST;
		return 0;
	}
	return bad_value(ld, w, name, v, one_of(v, lb_words, why, sizeof(why)));
}

/* header:NAME | cookie:NAME | query:NAME | source_ip */
static int parse_hash_on(struct ld *ld, struct conf_policy *pol, const char *name, const char *v, const struct where *w)
{
	const char *colon = strchr(v, ':'), *arg = colon ? colon + 1 : NULL;
	char why[200], hn[NAME_MAX_LEN + 1];
	enum conf_hash_on on;

	if (!strcmp(v, "source_ip")) {
		on = CONF_HASH_SOURCE_IP;
		arg = NULL;
	} else if (colon && (size_t)(colon - v) == 6 && !strncmp(v, "header", 6)) {
		if (header_name(arg, strlen(arg), hn, why, sizeof(why)) < 0)
			return bad_value(ld, w, name, v, why);
		on = CONF_HASH_HEADER;
		arg = hn;
	} else if (colon && (size_t)(colon - v) == 6 && !strncmp(v, "cookie", 6)) {
		if (!token(arg, strlen(arg)) || strlen(arg) > NAME_MAX_LEN)
			return bad_value(ld, w, name, v, "not a cookie name");
		on = CONF_HASH_COOKIE;
	} else if (colon && (size_t)(colon - v) == 5 && !strncmp(v, "query", 5)) {
		if (query_name(arg, why, sizeof(why)) < 0)
			return bad_value(ld, w, name, v, why);
		on = CONF_HASH_QUERY;
	} else {
		return bad_value(ld, w, name, v, "expected header:NAME, cookie:NAME, query:NAME or source_ip");
	}
	free(pol->hash_key);
	pol->hash_key = arg ? xstrdup(arg) : NULL;
	pol->hash_on = on;
	return 0;
}

static struct conf_destination *cur_destination(struct ld *ld)
{
	return ld->dcur->subset ? &ld->dcur->d : &ld->c->destinations[ld->dcur - ld->dx];
}

/* subset.NAME = labels */
static int parse_subset(struct ld *ld, const char *name, const char *v, const struct where *w)
{
	struct conf_destination *d;
	struct conf_subset *ss;
	struct conf_labels l;
	const char *sn = name + strlen("subset.");
	char why[160], b[72];
	size_t i;

	if (ld->dcur->subset) {
		ld_err(ld, w, "'%s' belongs in [destination %s] (this section overrides the policy of subset %s)",
		       clip(name, b, sizeof(b)), ld->dcur->service, ld->dcur->subset);
		return -1;
	}
	if (!dns_label(sn, strlen(sn), 0))
		return bad_value(ld, w, name, v, "a subset name is a DNS label (1-63 of a-z 0-9 -)");
	d = cur_destination(ld);
	for (i = 0; i < d->n_subsets; i++)
		if (!strcmp(d->subsets[i].name, sn)) {
			ld_err(ld, w, "subset '%s' is already defined at line %d", sn, d->subsets[i].line);
			return -1;
		}
	if (parse_labels(v, &l, why, sizeof(why)) < 0)
		return bad_value(ld, w, name, v, why);
	d->subsets = grow(d->subsets, d->n_subsets, sizeof(*d->subsets));
	ss = &d->subsets[d->n_subsets++];
	memset(ss, 0, sizeof(*ss));
	ss->name = xstrdup(sn);
	ss->labels = l;
	ss->line = w->line;
	return 0;
}

static struct route_x *cur_route_x(struct ld *ld)
{
	return &ld->rx[ld->c->n_routes - 1];
}

/* the match block numbered num, created in number order */
static struct conf_match *match_block(struct ld *ld, struct conf_route *r, unsigned num)
{
	struct route_x *x = cur_route_x(ld);
	size_t i;

	for (i = 0; i < r->n_matches && x->block[i] < num; i++)
		;
	if (i < r->n_matches && x->block[i] == num)
		return &r->matches[i];
	r->matches = grow(r->matches, r->n_matches, sizeof(*r->matches));
	x->block = grow(x->block, r->n_matches, sizeof(*x->block));
	memmove(&r->matches[i + 1], &r->matches[i], (r->n_matches - i) * sizeof(*r->matches));
	memmove(&x->block[i + 1], &x->block[i], (r->n_matches - i) * sizeof(*x->block));
	memset(&r->matches[i], 0, sizeof(r->matches[i]));
	x->block[i] = num;
	r->n_matches++;
	return &r->matches[i];
}

static int add_namematch(struct ld *ld, struct conf_route *r, struct conf_namematch **v, size_t *n,
                         const char *nm, const char *key, const char *val, unsigned allowed, const struct where *w)
{
	struct conf_strmatch m;

	if (parse_strmatch(ld, r, key, val, allowed, &m, w) < 0)
		return -1;
	*v = grow(*v, *n, sizeof(**v));
	(*v)[*n].name = xstrdup(nm);
	(*v)[*n].m = m;
	(*n)++;
	return 0;
}

/* match.path | match.method | match.header.NAME | match.query.NAME | match.source,
 * and match.N.* for blocks 2..16 */
static int parse_match(struct ld *ld, struct conf_route *r, const char *name, const char *v, const struct where *w)
{
	static const char *const conds[] = { "path", "method", "header", "query", "source" };
	const char *p = name + strlen("match."), *cond;
	char why[200], b[72], norm[NAME_MAX_LEN + 64], hn[NAME_MAX_LEN + 1];
	unsigned num = 1;
	struct conf_match *m;

	if (isdigit((unsigned char)*p)) {
		const char *q = p;

		while (isdigit((unsigned char)*q))
			q++;
		if (*q != '.' || q - p > 2 || (num = (unsigned)atoi(p)) < 2 || num > 16 || *p == '0') {
			ld_err(ld, w, "'%s': match blocks are match.X (the first) and match.2.X to match.16.X",
			       clip(name, b, sizeof(b)));
			return -1;
		}
		p = q + 1;
	}
	cond = p;
	if (!strcmp(cond, "path") || !strcmp(cond, "method") || !strcmp(cond, "source")) {
		snprintf(norm, sizeof(norm), "match.%u.%s", num, cond);
	} else if (!strncmp(cond, "header.", 7) && cond[7]) {
		if (header_name(cond + 7, strlen(cond + 7), hn, why, sizeof(why)) < 0) {
			ld_err(ld, w, "'%s': %s", clip(name, b, sizeof(b)), why);
			return -1;
		}
		snprintf(norm, sizeof(norm), "match.%u.header.%s", num, hn);
	} else if (!strncmp(cond, "query.", 6) && cond[6]) {
		if (query_name(cond + 6, why, sizeof(why)) < 0) {
			ld_err(ld, w, "'%s': %s", clip(name, b, sizeof(b)), why);
			return -1;
		}
		snprintf(norm, sizeof(norm), "match.%u.query.%s", num, cond + 6);
	} else {
		char head[72], b2[72];
		const char *dot = strchr(cond, '.'), *best;

		snprintf(head, sizeof(head), "%.*s", (int)(dot && dot - cond < 70 ? dot - cond : 70), cond);
		best = closest(head, conds, 5);
		if (best && strcmp(best, head))
			ld_err(ld, w, "unknown key '%s' in %s (did you mean '%.*s%s%s'?)", clip(name, b, sizeof(b)), ld->title,
			       (int)(cond - name), name, best, dot ? clip(dot, b2, sizeof(b2)) : "");
		else
			ld_err(ld, w, "unknown key '%s' in %s (a match condition is path, method, header.NAME, "
			       "query.NAME or source)", clip(name, b, sizeof(b)), ld->title);
		return -1;
	}
	if (prefix_dup(ld, norm, name, w) < 0)
		return -1;
	m = match_block(ld, r, num);
	if (!strcmp(cond, "path")) {
		if (parse_strmatch(ld, r, name, v, SM(CONF_MATCH_EXACT) | SM(CONF_MATCH_PREFIX) | SM(CONF_MATCH_REGEX),
		                   &m->path, w) < 0)
			return -1;
		if (m->path.kind != CONF_MATCH_REGEX && m->path.value[0] != '/') {
			strmatch_free(&m->path);
			return bad_value(ld, w, name, v, "a path starts with '/' (or use regex:)");
		}
		m->has_path = 1;
	} else if (!strcmp(cond, "method")) {
		size_t i, n = strlen(v);

		if (!token(v, n))
			return bad_value(ld, w, name, v, "not a method (a token such as GET or POST)");
		m->method = xstrdup(v);
		for (i = 0; i < n; i++)
			m->method[i] = (char)toupper((unsigned char)m->method[i]);
	} else if (!strcmp(cond, "source")) {
		if (parse_labels(v, &m->source, why, sizeof(why)) < 0)
			return bad_value(ld, w, name, v, why);
	} else if (cond[0] == 'h') {
		return add_namematch(ld, r, &m->headers, &m->n_headers, hn, name, v, SM_ALL, w);
	} else {
		return add_namematch(ld, r, &m->query, &m->n_query, cond + 6, name, v, SM_ALL & ~SM(CONF_MATCH_PREFIX), w);
	}
	return 0;
}

/* to = DEST [WEIGHT], ... (mirror = DEST when is_mirror) */
#define TO_MAX 16
static int parse_dests(struct ld *ld, struct conf_route *r, const char *name, const char *v, const struct where *w,
                       int is_mirror)
{
	struct route_x *x = cur_route_x(ld);
	char *refs[TO_MAX], why[200], b[72];
	uint32_t weights[TO_MAX];
	const char *p = v;
	size_t n = 0, with = 0, i;
	uint64_t sum = 0;
	int rc = -1;

	while (p) {
		const char *a, *e, *sp, *wt;
		uint64_t wv;

		p = list_item(p, &a, &e);
		if (a == e) {
			bad_value(ld, w, name, v, "empty destination (stray ',')");
			goto out;
		}
		if (n == TO_MAX || (is_mirror && n == 1)) {
			bad_value(ld, w, name, v, is_mirror ? "mirror takes one destination" : "at most 16 destinations");
			goto out;
		}
		for (sp = a; sp < e && !isspace((unsigned char)*sp); sp++)
			;
		for (wt = sp; wt < e && isspace((unsigned char)*wt); wt++)
			;
		refs[n] = xstrndup(a, (size_t)(sp - a));
		n++;
		if (dest_ref_ok(refs[n - 1], why, sizeof(why)) < 0) {
			bad_value(ld, w, name, v, why);
			goto out;
		}
		weights[n - 1] = 0;
		if (wt < e) {
			if (is_mirror) {
				bad_value(ld, w, name, v, "mirror takes one destination, without a weight (see mirror_percent)");
				goto out;
			}
			snprintf(why, sizeof(why), "%.*s", (int)(e - wt > 40 ? 40 : e - wt), wt);
			if (!all_digits(wt, (size_t)(e - wt)) || e - wt > 3 || (wv = (uint64_t)atoi(why)) > 100) {
				char msg[120];

				snprintf(msg, sizeof(msg), "weight '%s' is not a number 0..100", clip(why, b, sizeof(b)));
				bad_value(ld, w, name, v, msg);
				goto out;
			}
			weights[n - 1] = (uint32_t)wv;
			sum += wv;
			with++;
		}
	}
	if (with && with != n) {
		ld_err(ld, w, "route %s: either every destination in `to` has a weight or, for a single one, none does",
		       r->name);
		goto out;
	}
	if (!with && n > 1) {
		ld_err(ld, w, "route %s: several destinations need a weight each (e.g. to = v1 80, v2 20)", r->name);
		goto out;
	}
	if (with && sum != 100) {
		ld_err(ld, w, "route %s: weights add up to %llu, not 100", r->name, (unsigned long long)sum);
		goto out;
	}
	if (is_mirror) {
		x->mirror_ref = refs[0];
		x->mirror_at = *w;
		r->mirror.subset = -1;
		return 0;
	}
	r->to = xmalloc(n * sizeof(*r->to));
	x->to_ref = xmalloc(n * sizeof(*x->to_ref));
	for (i = 0; i < n; i++) {
		r->to[i].svc = NULL;
		r->to[i].subset = -1;
		r->to[i].weight = with ? weights[i] : 100;
		x->to_ref[i] = refs[i];
	}
	r->n_to = n;
	x->to_at = *w;
	return 0;
out:
	for (i = 0; i < n; i++)
		free(refs[i]);
	return rc;
}

static int parse_hosts(struct ld *ld, struct conf_route *r, const char *name, const char *v, const struct where *w)
{
	const char *p = v, *a, *e;
	char host[256], why[200], msg[300];
	size_t i;

	while (p) {
		p = list_item(p, &a, &e);
		if (a == e)
			return bad_value(ld, w, name, v, "empty host (stray ',')");
		if (host_pattern(a, (size_t)(e - a), host, why, sizeof(why)) < 0) {
			snprintf(msg, sizeof(msg), "%.*s: %s", (int)(e - a > 60 ? 60 : e - a), a, why);
			return bad_value(ld, w, name, v, msg);
		}
		for (i = 0; i < r->n_hosts; i++)
			if (!strcmp(r->hosts[i], host)) {
				snprintf(msg, sizeof(msg), "host '%s' is listed twice", host);
				return bad_value(ld, w, name, v, msg);
			}
		r->hosts = grow(r->hosts, r->n_hosts, sizeof(*r->hosts));
		r->hosts[r->n_hosts++] = xstrdup(host);
	}
	cur_route_x(ld)->hosts_at = *w;
	return 0;
}

static void header_ops_free(struct conf_header_ops *h)
{
	size_t i;

	for (i = 0; i < h->n_set; i++)
		free(h->set[i].name), free(h->set[i].value);
	for (i = 0; i < h->n_add; i++)
		free(h->add[i].name), free(h->add[i].value);
	for (i = 0; i < h->n_remove; i++)
		free(h->remove[i]);
	free(h->set);
	free(h->add);
	free(h->remove);
	memset(h, 0, sizeof(*h));
}

/* request.set.NAME / request.add.NAME (and response.*) */
static int parse_header_op(struct ld *ld, const struct conf_key *k, struct conf_header_ops *h, const char *name,
                           const char *v, const struct where *w)
{
	const char *hn = name + strlen(k->name), *managed;
	char low[NAME_MAX_LEN + 1], why[320], norm[NAME_MAX_LEN + 32];
	struct conf_header_op **ops = k->type == V_HDR_SET ? &h->set : &h->add;
	size_t *n = k->type == V_HDR_SET ? &h->n_set : &h->n_add;

	if (header_name(hn, strlen(hn), low, why, sizeof(why)) < 0)
		return bad_value(ld, w, name, v, why);
	if ((managed = managed_header(low))) {
		snprintf(why, sizeof(why), "'%s' cannot be changed here: %s", low, managed);
		return bad_value(ld, w, name, v, why);
	}
	snprintf(norm, sizeof(norm), "%s%s", k->name, low);
	if (prefix_dup(ld, norm, name, w) < 0)
		return -1;
	if (text_ok(v, why, sizeof(why)) < 0)
		return bad_value(ld, w, name, v, why);
	*ops = grow(*ops, *n, sizeof(**ops));
	(*ops)[*n].name = xstrdup(low);
	(*ops)[*n].value = xstrdup(v);
	(*n)++;
	return 0;
}

static int parse_header_remove(struct ld *ld, struct conf_header_ops *h, const char *name, const char *v,
                               const struct where *w)
{
	const char *p = v, *a, *e, *managed;
	char low[NAME_MAX_LEN + 1], why[200], msg[300];
	size_t i;

	while (p) {
		p = list_item(p, &a, &e);
		if (a == e)
			return bad_value(ld, w, name, v, "empty header name (stray ',')");
		if (header_name(a, (size_t)(e - a), low, why, sizeof(why)) < 0)
			return bad_value(ld, w, name, v, why);
		if ((managed = managed_header(low))) {
			snprintf(msg, sizeof(msg), "'%s' cannot be removed: %s", low, managed);
			return bad_value(ld, w, name, v, msg);
		}
		for (i = 0; i < h->n_remove; i++)
			if (!strcmp(h->remove[i], low)) {
				snprintf(msg, sizeof(msg), "'%s' is listed twice", low);
				return bad_value(ld, w, name, v, msg);
			}
		h->remove = grow(h->remove, h->n_remove, sizeof(*h->remove));
		h->remove[h->n_remove++] = xstrdup(low);
	}
	return 0;
}

static int parse_retry_on(struct ld *ld, unsigned *bits, const char *name, const char *v, const struct where *w)
{
	const char *p = v, *a, *e;
	char item[72], why[200], b[72], msg[300];
	unsigned out = 0;
	size_t i;

	while (p) {
		p = list_item(p, &a, &e);
		if (a == e)
			return bad_value(ld, w, name, v, "empty item (stray ',')");
		snprintf(item, sizeof(item), "%.*s", (int)(e - a > 60 ? 60 : e - a), a);
		for (i = 0; retry_words[i] && strcmp(item, retry_words[i]); i++)
			;
		if (!retry_words[i]) {
			snprintf(msg, sizeof(msg), "unknown condition '%s': %s", clip(item, b, sizeof(b)),
			         one_of(item, retry_words, why, sizeof(why)));
			return bad_value(ld, w, name, v, msg);
		}
		if (out & (1u << i)) {
			snprintf(msg, sizeof(msg), "'%s' is listed twice", item);
			return bad_value(ld, w, name, v, msg);
		}
		out |= 1u << i;
	}
	*bits = out;
	return 0;
}

static int parse_status_list(struct ld *ld, const struct conf_key *k, void *dst, const char *name, const char *v,
                             const struct where *w)
{
	int **codes = dst;
	size_t *n = (size_t *)((char *)dst + sizeof(int *)), i;
	const char *p = v, *a, *e;
	char item[16], msg[120];
	uint64_t u;

	while (p) {
		p = list_item(p, &a, &e);
		if (a == e)
			return bad_value(ld, w, name, v, "empty item (stray ',')");
		snprintf(item, sizeof(item), "%.*s", (int)(e - a > 10 ? 10 : e - a), a);
		if (e - a > 3 || parse_uint(item, 999, &u, msg, sizeof(msg)) < 0 || u < k->min || u > k->max) {
			snprintf(msg, sizeof(msg), "'%s' is not a status code %llu..%llu", item, (unsigned long long)k->min,
			         (unsigned long long)k->max);
			return bad_value(ld, w, name, v, msg);
		}
		for (i = 0; i < *n; i++)
			if ((*codes)[i] == (int)u) {
				snprintf(msg, sizeof(msg), "%d is listed twice", (int)u);
				return bad_value(ld, w, name, v, msg);
			}
		*codes = grow(*codes, *n, sizeof(**codes));
		(*codes)[(*n)++] = (int)u;
	}
	return 0;
}

/* ------------------------------------------------------------ security values (issue #4) */

static char *read_file(const char *path, char *why, size_t wn);
static void labels_text(struct sb *b, const struct conf_labels *l, size_t keylen);

static const char *const mtls_words[] = { "UNSET", "DISABLE", "PERMISSIVE", "STRICT", NULL };
static const char *const action_words[] = { "ALLOW", "DENY", "AUDIT", NULL };
_Static_assert(CONF_MTLS_UNSET == 0 && CONF_MTLS_DISABLE == 1 && CONF_MTLS_PERMISSIVE == 2 && CONF_MTLS_STRICT == 3,
               "mtls_words follows enum conf_mtls");
_Static_assert(CONF_AUTHZ_ALLOW == 0 && CONF_AUTHZ_DENY == 1 && CONF_AUTHZ_AUDIT == 2,
               "action_words follows enum conf_authz_action");

/* a word of words, any case; -1 and a message when it is none */
static int word_index(const char *v, const char *const *words, char *why, size_t wn)
{
	int i;

	for (i = 0; words[i]; i++)
		if (!strcasecmp(v, words[i]))
			return i;
	one_of(v, words, why, wn);
	return -1;
}

/* the loader state of one [authorization NAME], parallel to conf->authzs */
struct authz_x {
	struct where rules_at;     /* `rules = none`, line 0 when absent */
};

static struct conf_authz *cur_authz(struct ld *ld)
{
	return &ld->c->authzs[ld->c->n_authzs - 1];
}

static void pats_free(struct conf_pats *ps)
{
	size_t i;

	for (i = 0; i < ps->n; i++)
		free(ps->v[i].s);
	free(ps->v);
	ps->v = NULL;
	ps->n = 0;
}

/* One item of a pattern list: "x", "x*", "*x" or "*" (Istio's StringMatch
 * shorthand), checked for what it names. */
static int parse_pat(struct ld *ld, int what, const char *item, struct conf_pat *p, const char *name,
                     const struct where *w, char *why, size_t wn)
{
	size_t n = strlen(item), i;
	const char *body = item;
	char b[72];

	memset(p, 0, sizeof(*p));
	if (!strcmp(item, "*")) {
		p->kind = CONF_PAT_ANY;
		p->s = xstrdup("");
		return 0;
	}
	if (item[0] == '*')
		p->kind = CONF_PAT_SUFFIX, body = item + 1, n--;
	else if (item[n - 1] == '*')
		p->kind = CONF_PAT_PREFIX, n--;
	if (what == PAT_PATH && strpbrk(item, "{}"))
		return snprintf(why, wn, "'%s': path templates {*} and {**} are not supported (use prefix* or *suffix)",
		                clip(item, b, sizeof(b))), -1;
	if (memchr(body, '*', n))
		return snprintf(why, wn, "'%s': '*' may only be the first or the last character (prefix*, *suffix or * alone)",
		                clip(item, b, sizeof(b))), -1;
	for (i = 0; i < n; i++)                 /* header values may hold spaces, nothing else may */
		if ((unsigned char)body[i] < 0x20 || body[i] == 0x7f || (body[i] == ' ' && what != PAT_HEADER))
			return snprintf(why, wn, "'%s': no spaces or control characters in a pattern", clip(item, b, sizeof(b))), -1;
	if (what == PAT_PRINCIPAL && p->kind != CONF_PAT_SUFFIX && n > 9 && !strncmp(body, "spiffe://", 9)) {
		ld_warn(ld, w, "%s: write principals without 'spiffe://' (as Istio does): '%s' is read as '%s'", name,
		        clip(item, b, sizeof(b)), item + 9);
		body += 9, n -= 9;
	}
	p->s = xstrndup(body, n);
	p->len = n;
	switch (what) {
	case PAT_NAMESPACE:
		for (i = 0; i < n; i++)
			if (!islower((unsigned char)body[i]) && !isdigit((unsigned char)body[i]) && body[i] != '-')
				return snprintf(why, wn, "'%s' is not a namespace (a-z 0-9 -, with * at the start or end)",
				                clip(item, b, sizeof(b))), -1;
		break;
	case PAT_METHOD:
		if (!token(body, n))
			return snprintf(why, wn, "'%s' is not a method (e.g. GET, POST)", clip(item, b, sizeof(b))), -1;
		for (i = 0; i < n; i++)
			p->s[i] = (char)toupper((unsigned char)p->s[i]);
		break;
	case PAT_PATH:
		if (strpbrk(p->s, "?#"))
			return snprintf(why, wn, "'%s': paths match without the query string (leave out '?...')",
			                clip(item, b, sizeof(b))), -1;
		if (p->kind != CONF_PAT_SUFFIX && p->s[0] != '/')
			return snprintf(why, wn, "'%s': a path starts with '/' (or '*' for a suffix)", clip(item, b, sizeof(b))), -1;
		break;
	case PAT_HOST:
		for (i = 0; i < n; i++) {
			p->s[i] = (char)tolower((unsigned char)p->s[i]);
			if (!isalnum((unsigned char)p->s[i]) && !strchr(".-:[]_", p->s[i]))
				return snprintf(why, wn, "'%s' is not a host (letters, digits, . - and :port)",
				                clip(item, b, sizeof(b))), -1;
		}
		break;
	default:                                /* principals and header values: any text without spaces */
		break;
	}
	return 0;
}

static int parse_pats(struct ld *ld, const struct conf_key *k, struct conf_pats *ps, const char *name, const char *v,
                      const struct where *w)
{
	const char *p = v, *a, *e;
	char why[200];
	struct conf_pat pat;

	pats_free(ps);
	while (p) {
		char *item;
		int rc;

		p = list_item(p, &a, &e);
		if (a == e) {
			pats_free(ps);
			return bad_value(ld, w, name, v, "empty item (stray ',')");
		}
		item = xstrndup(a, (size_t)(e - a));
		rc = parse_pat(ld, (int)k->min, item, &pat, name, w, why, sizeof(why));
		free(item);
		if (rc < 0) {
			free(pat.s);
			pats_free(ps);
			return bad_value(ld, w, name, v, why);
		}
		ps->v = grow(ps->v, ps->n, sizeof(*ps->v));
		ps->v[ps->n++] = pat;
	}
	return 0;
}

/* "10.0.0.0/8", "10.1.2.3" (/32), "2001:db8::/32", "::1" (/128) */
static int parse_cidr(struct ld *ld, const char *item, struct conf_cidr *out, const char *name, const struct where *w,
                      char *why, size_t wn)
{
	const char *slash = strchr(item, '/');
	char addr[64], b[72];
	size_t al = slash ? (size_t)(slash - item) : strlen(item), i;
	unsigned max;
	uint64_t bits;
	int changed = 0;

	memset(out, 0, sizeof(*out));
	if (al >= sizeof(addr))
		goto bad;
	memcpy(addr, item, al);
	addr[al] = '\0';
	if (inet_pton(AF_INET, addr, out->addr) == 1)
		out->family = AF_INET, max = 32;
	else if (inet_pton(AF_INET6, addr, out->addr) == 1)
		out->family = AF_INET6, max = 128;
	else
		goto bad;
	bits = max;
	if (slash && (parse_uint(slash + 1, max, &bits, why, wn) < 0 || !isdigit((unsigned char)slash[1])))
		return snprintf(why, wn, "'%s': the prefix length is 0..%u", clip(item, b, sizeof(b)), max), -1;
	out->bits = (unsigned)bits;
	for (i = 0; i < max / 8; i++) {
		unsigned keep = out->bits >= (i + 1) * 8 ? 8 : out->bits > i * 8 ? out->bits - (unsigned)i * 8 : 0;
		uint8_t mask = (uint8_t)(keep ? 0xff << (8 - keep) : 0);

		if (out->addr[i] & ~mask)
			changed = 1;
		out->addr[i] &= mask;
	}
	if (changed) {
		char net[INET6_ADDRSTRLEN];

		inet_ntop(out->family, out->addr, net, sizeof(net));
		ld_warn(ld, w, "%s: '%s' has host bits set; it means %s/%u", name, clip(item, b, sizeof(b)), net, out->bits);
	}
	return 0;
bad:
	return snprintf(why, wn, "'%s' is not an IP address or block (e.g. 10.0.0.0/8, 192.168.1.7, 2001:db8::/32)",
	                clip(item, b, sizeof(b))), -1;
}

static int parse_cidrs(struct ld *ld, struct conf_cidrs *cs, const char *name, const char *v, const struct where *w)
{
	const char *p = v, *a, *e;
	char why[200];

	free(cs->v);
	cs->v = NULL;
	cs->n = 0;
	while (p) {
		struct conf_cidr cidr;
		char *item;
		int rc;

		p = list_item(p, &a, &e);
		if (a == e)
			return bad_value(ld, w, name, v, "empty item (stray ',')");
		item = xstrndup(a, (size_t)(e - a));
		rc = parse_cidr(ld, item, &cidr, name, w, why, sizeof(why));
		free(item);
		if (rc < 0)
			return bad_value(ld, w, name, v, why);
		cs->v = grow(cs->v, cs->n, sizeof(*cs->v));
		cs->v[cs->n++] = cidr;
	}
	return 0;
}

static int parse_ports(struct ld *ld, struct conf_portlist *pl, const char *name, const char *v, const struct where *w)
{
	const char *p = v, *a, *e;
	char item[16], why[120];
	uint64_t u;

	free(pl->v);
	pl->v = NULL;
	pl->n = 0;
	while (p) {
		p = list_item(p, &a, &e);
		if (a == e)
			return bad_value(ld, w, name, v, "empty item (stray ',')");
		snprintf(item, sizeof(item), "%.*s", (int)(e - a > 10 ? 10 : e - a), a);
		if (e - a > 5 || parse_uint(item, 65535, &u, why, sizeof(why)) < 0 || !u) {
			snprintf(why, sizeof(why), "'%s' is not a port (1..65535)", item);
			return bad_value(ld, w, name, v, why);
		}
		pl->v = grow(pl->v, pl->n, sizeof(*pl->v));
		pl->v[pl->n++] = (uint16_t)u;
	}
	return 0;
}

/* when.header.NAME = values, when.not_header.NAME = values */
static int parse_when_header(struct ld *ld, const struct conf_key *k, struct conf_authz_rule *r, const char *name,
                             const char *v, const struct where *w)
{
	char hn[NAME_MAX_LEN + 1], why[200], norm[NAME_MAX_LEN + 32];
	struct conf_authz_header *h;
	const char *rest = name + strlen(k->name);

	if (header_name(rest, strlen(rest), hn, why, sizeof(why)) < 0)
		return bad_value(ld, w, name, v, why);
	snprintf(norm, sizeof(norm), "%s%s", k->name, hn);
	if (prefix_dup(ld, norm, name, w) < 0)
		return -1;
	r->headers = grow(r->headers, r->n_headers, sizeof(*r->headers));
	h = &r->headers[r->n_headers];
	memset(h, 0, sizeof(*h));
	if (parse_pats(ld, k, &h->values, name, v, w) < 0)
		return -1;
	h->name = xstrdup(hn);
	h->negate = !!k->min;
	r->n_headers++;
	return 0;
}

static int parse_port_mtls(struct ld *ld, struct conf_peer_auth *pa, const char *name, const char *v,
                           const struct where *w)
{
	const char *num = name + strlen("port.");
	char why[200], norm[32];
	uint64_t u;
	int m;

	if (strlen(num) > 5 || parse_uint(num, 65535, &u, why, sizeof(why)) < 0 || !u)
		return bad_value(ld, w, name, v, "expected port.N with N a port 1..65535 (e.g. port.9080 = DISABLE)");
	if ((m = word_index(v, mtls_words, why, sizeof(why))) < 0)
		return bad_value(ld, w, name, v, why);
	snprintf(norm, sizeof(norm), "port.%u", (unsigned)u);
	if (prefix_dup(ld, norm, name, w) < 0)
		return -1;
	pa->ports = grow(pa->ports, pa->n_ports, sizeof(*pa->ports));
	pa->ports[pa->n_ports].port = (uint16_t)u;
	pa->ports[pa->n_ports].mode = (enum conf_mtls)m;
	pa->n_ports++;
	return 0;
}

/* token_file, trust_bundle: resolved like `mesh =` and read now, so that a
 * missing or wrong file is an error at its line rather than at start-up. */
static int parse_file_in(struct ld *ld, const struct conf_key *k, char **dst, const char *name, const char *v,
                         const struct where *w)
{
	char why[200], *path, *buf;
	const char *q;

	for (q = v; *q; q++)
		if ((unsigned char)*q < 0x20 || *q == 0x7f)
			return bad_value(ld, w, name, v, "control character in the path");
	path = join_path(ld->src->dir, v);
	if (k->type == V_FILE_IN) {
		buf = read_file(path, why, sizeof(why));
		if (!buf) {
			char b[72];

			ld_err(ld, w, "%s = %s: cannot read '%s': %s", name, clip(v, b, sizeof(b)), path, why);
			free(path);
			return -1;
		}
		for (q = buf; *q && isspace((unsigned char)*q); q++)
			;
		if (!*q)
			snprintf(why, sizeof(why), "the file is empty");
		else if (k->min && !strstr(buf, "-----BEGIN CERTIFICATE-----"))
			snprintf(why, sizeof(why), "no PEM certificate in it (expected the CA's root certificate, e.g. root.crt)");
		else
			why[0] = '\0';
		free(buf);
		if (why[0]) {
			free(path);
			return bad_value(ld, w, name, v, why);
		}
	}
	free(*dst);
	*dst = path;
	return 0;
}

static int parse_fingerprint(struct ld *ld, char **dst, const char *name, const char *v, const struct where *w)
{
	char hex[65];
	size_t n = 0;
	const char *q;

	for (q = v; *q; q++) {
		if (*q == ':')
			continue;
		if (!isxdigit((unsigned char)*q) || n == 64)
			return bad_value(ld, w, name, v, "expected the SHA-256 of the CA's root certificate: "
			                 "64 hex digits, colons allowed");
		hex[n++] = (char)tolower((unsigned char)*q);
	}
	if (n != 64)
		return bad_value(ld, w, name, v, "expected the SHA-256 of the CA's root certificate: 64 hex digits, "
		                 "colons allowed");
	hex[n] = '\0';
	return set_string(dst, hex);
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
	case V_U32:
		if (parse_uint(v, UINT32_MAX, &u, why, sizeof(why)) < 0)
			return bad_value(ld, w, name, v, why);
		if (u < k->min || u > k->max)
			return out_of_range(ld, w, k, v);
		*(uint32_t *)dst = (uint32_t)u;
		return 0;
	case V_PERCENT:
		if (parse_percent(v, dst, why, sizeof(why)) < 0)
			return bad_value(ld, w, name, v, why);
		return 0;
	case V_LB:
		return parse_lb(ld, dst, name, v, w);
	case V_HASH_ON:
		return parse_hash_on(ld, (struct conf_policy *)((char *)dst - offsetof(struct conf_policy, hash_on)),
		                     name, v, w);
	case V_SUBSET:
		return parse_subset(ld, name, v, w);
	case V_DEST_NAMESPACE:
		if (!valid_namespace(v))
			return bad_value(ld, w, name, v, case_hint(v, valid_namespace, "not a namespace (1-63 of a-z 0-9 -)",
			                                           why, sizeof(why)));
		return set_string(&ld->dcur->namespace, v);
	case V_HOSTS:
		return parse_hosts(ld, ld->base, name, v, w);
	case V_MATCH:
		return parse_match(ld, ld->base, name, v, w);
	case V_DESTS:
	case V_MIRROR:
		return parse_dests(ld, ld->base, name, v, w, k->type == V_MIRROR);
	case V_URI:
		if (path_ok(v, why, sizeof(why)) < 0)
			return bad_value(ld, w, name, v, why);
		return set_string(dst, v);
	case V_AUTHORITY:
		if (authority_ok(v, strlen(v), why, sizeof(why)) < 0)
			return bad_value(ld, w, name, v, why);
		return set_string(dst, v);
	case V_REDIRECT:
		if (redirect_ok(v, why, sizeof(why)) < 0)
			return bad_value(ld, w, name, v, why);
		return set_string(dst, v);
	case V_REDIRECT_CODE:
		if (parse_uint(v, 999, &u, why, sizeof(why)) < 0 || (u != 301 && u != 302 && u != 303 && u != 307 && u != 308))
			return bad_value(ld, w, name, v, "expected one of: 301, 302, 303, 307, 308");
		*(int *)dst = (int)u;
		return 0;
	case V_STATUS:
		if (parse_uint(v, 999, &u, why, sizeof(why)) < 0 || u < k->min || u > k->max) {
			snprintf(why, sizeof(why), "not an HTTP status %llu..%llu", (unsigned long long)k->min,
			         (unsigned long long)k->max);
			return bad_value(ld, w, name, v, why);
		}
		*(int *)dst = (int)u;
		return 0;
	case V_TEXT:
		if (text_ok(v, why, sizeof(why)) < 0)
			return bad_value(ld, w, name, v, why);
		return set_string(dst, v);
	case V_HDR_SET:
	case V_HDR_ADD:
		return parse_header_op(ld, k, dst, name, v, w);
	case V_HDR_REMOVE:
		return parse_header_remove(ld, dst, name, v, w);
	case V_RETRY_ON:
		return parse_retry_on(ld, dst, name, v, w);
	case V_STATUS_LIST:
		return parse_status_list(ld, k, dst, name, v, w);
	case V_FILE_IN:
	case V_FILE_OUT:
		return parse_file_in(ld, k, dst, name, v, w);
	case V_FINGERPRINT:
		return parse_fingerprint(ld, dst, name, v, w);
	case V_MTLS:
	case V_AZ_ACTION:
		if (k->type == V_AZ_ACTION && !strcasecmp(v, "CUSTOM"))
			return bad_value(ld, w, name, v, "CUSTOM (an external authorizer) is not supported: use ALLOW, DENY or AUDIT");
		if ((b = word_index(v, k->type == V_MTLS ? mtls_words : action_words, why, sizeof(why))) < 0)
			return bad_value(ld, w, name, v, why);
		*(int *)dst = b;
		return 0;
	case V_PORT_MTLS:
		return parse_port_mtls(ld, ld->base, name, v, w);
	case V_AZ_RULES:
		if (strcmp(v, "none"))
			return bad_value(ld, w, name, v, "the only value is none (Istio's empty rules: the policy matches no "
			                 "request); leave rules out for one empty rule that matches every request");
		ld->ax[ld->c->n_authzs - 1].rules_at = *w;
		return 0;
	case V_PATS:
		return parse_pats(ld, k, dst, name, v, w);
	case V_CIDRS:
		return parse_cidrs(ld, dst, name, v, w);
	case V_PORTS:
		return parse_ports(ld, dst, name, v, w);
	case V_WHEN_HEADER:
		return parse_when_header(ld, k, dst, name, v, w);
	}
	return -1;
}

/* ------------------------------------------------------------ sections, keys */

static void close_section(struct ld *ld)
{
	if (ld->sec && !ld->skip && ld->sec->close)
		ld->sec->close(ld);
	ld->sec = NULL;
	pk_clear(ld);
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
		       "[mesh] [service NAME] [destination SERVICE] [route HOST/NAME] [peer_authentication NAME] "
		       "[authorization NAME] [tracing])", kind, *name ? " " : "", name);
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
		ld_err(ld, w, "[%s] is not allowed in a mesh file, which holds only [mesh], [service NAME], "
		       "[destination SERVICE], [route HOST/NAME], [peer_authentication NAME], [authorization NAME] and [tracing] "
		       "(move it to the proxy file)", kind);
		goto out;
	}
	if (k->open && !*name) {
		ld_err(ld, w, "[%s] needs a name: [%s %s]", kind, kind, k->usage);
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
	const char *names[KEYS_MAX], *best;
	char b[72];
	struct sb list = { 0 };
	size_t i, j, n = 0;

	clip(name, b, sizeof(b));
	for (i = 0; i < k->n_keys; i++) {
		const struct conf_key *key = &k->keys[i];
		size_t pl = strlen(key->name) - 1, dots = 0, hl;
		char pre[72], head[72], rest[72];
		const char *cand[1] = { pre }, *q;

		if (!(key->flags & K_PREFIX)) {
			names[n++] = key->name;
			continue;
		}
		/* "service", "service." and "servce.reviews" all mean service.NAME;
		 * compare as many dotted parts of name as the prefix has */
		snprintf(pre, sizeof(pre), "%.*s", (int)pl, key->name);
		for (q = key->name; *q; q++)
			dots += *q == '.';
		for (q = name; *q && dots; q++)
			if (*q == '.' && !--dots)
				break;
		hl = (size_t)(q - name);
		snprintf(head, sizeof(head), "%.*s", (int)(hl < 70 ? hl : 70), name);
		if (!strcmp(name, pre) || !strcmp(name, key->name)) {
			ld_err(ld, w, "unknown key '%s' in %s (write %s%s)", b, ld->title, key->name, key->example);
			return;
		}
		if (*q && q[1] && closest(head, cand, 1)) {
			ld_err(ld, w, "unknown key '%s' in %s (did you mean '%s%s'?)", b, ld->title, pre,
			       clip(q, rest, sizeof(rest)));
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
				ld_err(ld, w, "unknown key '%s' in %s (it belongs in [%s%s%s])", b, ld->title,
				       sections[i].name, sections[i].open ? " " : "", sections[i].open ? sections[i].usage : "");
				return;
			}
	for (i = 0, n = 0; i < k->n_keys; i++)
		if (!k->keys[i].alias)
			sb_printf(&list, "%s%s%s", n++ ? ", " : "", k->keys[i].name,
			          k->keys[i].flags & K_PREFIX ? "NAME" : "");
	ld_err(ld, w, "unknown key '%s' in %s (known: %s)", b, ld->title, list.p);
	free(list.p);
}

static void on_key(struct ld *ld, const char *name, const char *value, const struct where *w)
{
	const struct section_kind *k = ld->sec;
	const struct conf_key *key = NULL;
	void *base = ld->base;
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
	if (key->alias) {                      /* an old name: it sets the current key */
		const char *note = key->note;

		for (i = 0; i < k->n_keys && strcmp(k->keys[i].name, key->alias); i++)
			;
		key = &k->keys[i];
		if (ld->seen[i].line) {
			ld_err(ld, w, "duplicate key '%s' in %s: it sets %s, already set at %s:%d", name, ld->title,
			       key->name, ld->seen[i].file, ld->seen[i].line);
			return;
		}
		if (note)
			ld_warn(ld, w, "%s", note);
	}
	if (k == &sections[SEC_AUTHZ]) {
		if (!(key->flags & K_RULE) && ld->asub) {
			ld_err(ld, w, "'%s' belongs in the policy's own section [authorization %s], not in the rule %s", name,
			       cur_authz(ld)->name, ld->title);
			return;
		}
		if (key->flags & K_RULE) {
			if (!ld->asub && !ld->rule_keys++)
				ld->arule->line = w->line;     /* rule 1 is where its first key is */
			base = ld->arule;
		}
	}
	if (!(key->flags & (K_LIST | K_PREFIX)) && ld->seen[i].line) {
		ld_err(ld, w, "duplicate key '%s' in %s (first set at %s:%d)", name, ld->title,
		       ld->seen[i].file, ld->seen[i].line);
		return;
	}
	if (!ld->seen[i].line)
		ld->seen[i] = *w;
	parse_value(ld, key, (char *)base + key->off, name, value, w);
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
	svc->sidecar = 1;
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
	if (!svc->service_account)
		svc->service_account = xstrdup(svc->name);
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

/* ---- [destination SERVICE] and [destination SERVICE/SUBSET] */

static void policy_defaults(struct conf_policy *p)
{
	memset(p, 0, sizeof(*p));
	p->lb = CONF_LB_PEAK_EWMA;
	p->outlier_interval = 10 * SEC_MS;
	p->outlier_base_ejection_time = 30 * SEC_MS;
	p->outlier_max_ejection_percent = 10;
	p->outlier_min_health_percent = 0;
}

static size_t key_index(int sec, const char *key)
{
	size_t i;

	for (i = 0; i < sections[sec].n_keys && strcmp(sections[sec].keys[i].name, key); i++)
		;
	return i;                              /* callers name keys of the table */
}

static int destination_open(struct ld *ld, const char *name, const struct where *w)
{
	struct conf *c = ld->c;
	const char *slash = strchr(name, '/');
	size_t sl = slash ? (size_t)(slash - name) : strlen(name);
	char svc[72], b[72], why[160];
	struct dest_x *x;

	clip(name, b, sizeof(b));
	snprintf(svc, sizeof(svc), "%.*s", (int)(sl > 64 ? 64 : sl), name);
	if (sl > 63 || !valid_service_name(svc)) {
		ld_err(ld, w, "invalid service name '%s' in [destination %s]: %s", clip(svc, why, sizeof(why)), b,
		       memchr(name, '.', sl) ? "one DNS label; put the namespace in 'namespace ='"
		                             : case_hint(svc, valid_service_name, "use 1-63 of a-z 0-9 -, starting with a letter",
		                                         why, sizeof(why)));
		return -1;
	}
	if (slash && !dns_label(slash + 1, strlen(slash + 1), 0)) {
		ld_err(ld, w, "invalid subset name in [destination %s]: a subset name is a DNS label (1-63 of a-z 0-9 -)", b);
		return -1;
	}
	if (slash) {
		ld->ox = grow(ld->ox, ld->n_ox, sizeof(*ld->ox));
		x = &ld->ox[ld->n_ox++];
		memset(x, 0, sizeof(*x));
		x->subset = xstrdup(slash + 1);
		policy_defaults(&x->d.policy);
		ld->base = &x->d;
	} else {
		struct conf_destination *d;

		c->destinations = grow(c->destinations, c->n_destinations, sizeof(*c->destinations));
		d = &c->destinations[c->n_destinations++];
		memset(d, 0, sizeof(*d));
		policy_defaults(&d->policy);
		d->file = w->file;
		d->line = w->line;
		ld->dx = grow(ld->dx, ld->n_dx, sizeof(*ld->dx));
		x = &ld->dx[ld->n_dx++];
		memset(x, 0, sizeof(*x));
		ld->base = d;
	}
	x->service = xstrdup(svc);
	x->at = *w;
	ld->dcur = x;
	return 0;
}

/* load_balancer and hash_on go together; an override that switches to a
 * non-hashing algorithm drops the hash_on it inherited. */
static void check_hash(struct ld *ld, struct conf_policy *pol, const struct where *seen, const struct where *hdr)
{
	struct where w_lb = seen[key_index(SEC_DESTINATION, "load_balancer")];
	struct where w_h = seen[key_index(SEC_DESTINATION, "hash_on")];

	if (lb_hashes(pol->lb) && pol->hash_on == CONF_HASH_NONE) {
		if (w_h.line)
			return;                        /* a bad hash_on, reported already */
		ld_err(ld, w_lb.line ? &w_lb : hdr, "load_balancer = %s needs hash_on = header:NAME, cookie:NAME, "
		       "query:NAME or source_ip", lb_words[pol->lb]);
	} else if (!lb_hashes(pol->lb) && pol->hash_on != CONF_HASH_NONE) {
		if (w_h.line) {
			ld_err(ld, &w_h, "hash_on needs load_balancer = ring_hash or maglev (here it is %s)", lb_words[pol->lb]);
		} else {
			free(pol->hash_key);
			pol->hash_key = NULL;
			pol->hash_on = CONF_HASH_NONE;
		}
	}
}

static void destination_close(struct ld *ld)
{
	struct dest_x *x = ld->dcur;

	if (x->subset)
		memcpy(x->seen, ld->tmp_seen, sizeof(x->seen));
	else
		check_hash(ld, &ld->c->destinations[x - ld->dx].policy, ld->tmp_seen, &x->at);
	ld->dcur = NULL;
}

/* ---- [route HOST/NAME] */

static int route_open(struct ld *ld, const char *name, const struct where *w)
{
	struct conf *c = ld->c;
	const char *slash = strchr(name, '/');
	size_t hl = slash ? (size_t)(slash - name) : strlen(name), i;
	char host[256], why[160], b[72];
	struct conf_route *r;

	clip(name, b, sizeof(b));
	if (host_pattern(name, hl, host, why, sizeof(why)) < 0) {
		ld_err(ld, w, "invalid host in [route %s]: %s", b, why);
		return -1;
	}
	if (strncmp(host, name, hl)) {
		ld_err(ld, w, "invalid host in [route %s]: write it in lowercase", b);
		return -1;
	}
	if (slash && !dns_label(slash + 1, strlen(slash + 1), 0)) {
		ld_err(ld, w, "invalid rule name in [route %s]: 1-63 of a-z 0-9 - after the '/' (e.g. [route reviews/canary])", b);
		return -1;
	}
	for (i = 0; i < c->n_routes; i++)
		if (!strcmp(c->routes[i].name, name)) {
			ld_err(ld, w, "duplicate [route %s] (first defined at %s:%d)", b, c->routes[i].file, c->routes[i].line);
			return -1;
		}
	c->routes = grow(c->routes, c->n_routes, sizeof(*c->routes));
	ld->rx = grow(ld->rx, c->n_routes, sizeof(*ld->rx));
	r = &c->routes[c->n_routes];
	memset(r, 0, sizeof(*r));
	memset(&ld->rx[c->n_routes], 0, sizeof(ld->rx[0]));
	r->name = xstrdup(name);
	r->redirect_code = 301;
	r->fault_delay_percent = 100;
	r->fault_abort_percent = 100;
	r->mirror.subset = -1;
	r->mirror_percent = 100;
	r->file = w->file;
	r->line = w->line;
	ld->rx[c->n_routes].hosts_at = *w;
	c->n_routes++;
	ld->base = r;
	return 0;
}

static void route_close(struct ld *ld)
{
	static const struct { const char *key, *needs; } deps[] = {
		{ "redirect.code", "redirect" }, { "direct_response.body", "direct_response" },
		{ "fault.delay_percent", "fault.delay" }, { "fault.abort_percent", "fault.abort" },
		{ "mirror_percent", "mirror" },
	};
	static const char *const to_only[] = { "rewrite.uri", "rewrite.authority", "timeout", "retries", "per_try_timeout",
	                                       "retry_on", "retry_status_codes", "mirror", "mirror_percent" };
	static const char *const actions[] = { "to", "redirect", "direct_response" };
	static const char *const need_retries[] = { "per_try_timeout", "retry_on", "retry_status_codes" };
	struct conf *c = ld->c;
	struct conf_route *r = &c->routes[c->n_routes - 1];
	struct where hdr = { r->file, r->line }, act[3], first_at = { 0 }, second_at = { 0 };
	const char *first = NULL, *second = NULL;
	size_t i, n_act = 0;

#define AT(key) (&ld->tmp_seen[key_index(SEC_ROUTE, key)])
	if (!r->n_hosts) {                     /* hosts default to the HOST of [route HOST/NAME] */
		const char *slash = strchr(r->name, '/');

		r->hosts = xmalloc(sizeof(*r->hosts));
		r->hosts[0] = slash ? xstrndup(r->name, (size_t)(slash - r->name)) : xstrdup(r->name);
		r->n_hosts = 1;
	}
	for (i = 0; i < 3; i++)
		if ((act[i] = *AT(actions[i])).line && (!first || act[i].line < first_at.line))
			first = actions[i], first_at = act[i];
	for (i = 0; i < 3; i++)
		n_act += !!act[i].line;
	for (i = 0; n_act > 1 && i < 3; i++)   /* at the second one in the file */
		if (act[i].line && act[i].line != first_at.line && (!second || act[i].line < second_at.line))
			second = actions[i], second_at = act[i];
	if (second)
		ld_err(ld, &second_at, "route %s: needs exactly one of to, redirect, direct_response (found %s and %s)",
		       r->name, first, second);
	if (!n_act)
		ld_err(ld, &hdr, "route %s: needs one of to, redirect, direct_response", r->name);
	for (i = 0; i < sizeof(deps) / sizeof(deps[0]); i++)
		if (AT(deps[i].key)->line && !AT(deps[i].needs)->line)
			ld_err(ld, AT(deps[i].key), "route %s: %s needs %s", r->name, deps[i].key, deps[i].needs);
	if (!act[0].line && n_act)             /* redirect or direct_response: answered by the proxy */
		for (i = 0; i < sizeof(to_only) / sizeof(to_only[0]); i++)
			if (AT(to_only[i])->line)
				ld_err(ld, AT(to_only[i]), "route %s: %s applies only to a rule with `to` (this one has %s)",
				       r->name, to_only[i], act[1].line ? "redirect" : "direct_response");
	if (act[0].line) {
		if (r->retries && !AT("retry_on")->line)
			r->retry_on = CONF_RETRY_5XX | CONF_RETRY_CONNECT_FAILURE | CONF_RETRY_RESET;
		if ((r->retry_on & CONF_RETRY_STATUS_CODES) && !r->n_retry_status_codes)
			ld_err(ld, AT("retry_on"), "route %s: retry_on has retriable-status-codes, so retry_status_codes "
			       "must list them (e.g. retry_status_codes = 503, 429)", r->name);
		if (r->n_retry_status_codes && !(r->retry_on & CONF_RETRY_STATUS_CODES))
			ld_err(ld, AT("retry_status_codes"), "route %s: retry_status_codes needs retriable-status-codes "
			       "in retry_on", r->name);
		if (!r->retries)
			for (i = 0; i < 3; i++)
				if (AT(need_retries[i])->line)
					ld_warn(ld, AT(need_retries[i]), "route %s: %s has no effect without retries", r->name,
					        need_retries[i]);
	}
#undef AT
}

static const void *route_nth(const struct conf *c, size_t i, const char **name)
{
	if (i >= c->n_routes)
		return NULL;
	*name = c->routes[i].name;
	return &c->routes[i];
}

/* ---- [peer_authentication NAME] and [authorization NAME] (issue #4) */

/* Policies without a namespace, or in Istio's root namespace, are mesh-wide. */
static const char *policy_ns(const char *ns)
{
	return !ns || !strcmp(ns, "istio-system") ? "" : ns;
}

static int policy_name_ok(struct ld *ld, const char *kind, const char *full, const char *name, size_t n,
                          const struct where *w)
{
	char b[72], tmp[256];

	snprintf(tmp, sizeof(tmp), "%.*s", (int)(n > 253 ? 253 : n), name);
	if (n <= 253 && dns_name(tmp))
		return 0;
	ld_err(ld, w, "invalid policy name in [%s %s]: %s", kind, clip(full, b, sizeof(b)),
	       case_hint(tmp, dns_name, "use a-z 0-9 - and dots, as a Kubernetes name", tmp, sizeof(tmp)));
	return -1;
}

static int peer_auth_open(struct ld *ld, const char *name, const struct where *w)
{
	struct conf *c = ld->c;
	struct conf_peer_auth *pa;

	if (policy_name_ok(ld, "peer_authentication", name, name, strlen(name), w) < 0)
		return -1;
	c->peer_auths = grow(c->peer_auths, c->n_peer_auths, sizeof(*c->peer_auths));
	pa = &c->peer_auths[c->n_peer_auths++];
	memset(pa, 0, sizeof(*pa));
	pa->name = xstrdup(name);
	pa->mode = CONF_MTLS_UNSET;
	pa->file = w->file;
	pa->line = w->line;
	ld->base = pa;
	return 0;
}

static void peer_auth_close(struct ld *ld)
{
	struct conf *c = ld->c;
	struct conf_peer_auth *pa = &c->peer_auths[c->n_peer_auths - 1];
	struct where hdr = { pa->file, pa->line };
	const char *ns = policy_ns(pa->namespace);
	size_t i;

	pa->id = xmalloc(strlen(pa->namespace ? pa->namespace : "") + strlen(pa->name) + 2);
	sprintf(pa->id, "%s/%s", pa->namespace ? pa->namespace : "", pa->name);
	if (pa->n_ports && !pa->selector.n)
		ld_err(ld, &ld->pk[0].at, "peer_authentication %s: port-level modes need a workload selector "
		       "(selector = app=NAME), as in Istio; set mode for a whole %s", pa->name,
		       *ns ? "namespace" : "mesh");
	for (i = 0; i + 1 < c->n_peer_auths; i++) {
		const struct conf_peer_auth *o = &c->peer_auths[i];

		if (strcmp(policy_ns(o->namespace), ns))
			continue;
		if (!strcmp(o->name, pa->name)) {
			ld_err(ld, &hdr, "duplicate [peer_authentication %s]%s%s (first defined at %s:%d)", pa->name,
			       *ns ? " in namespace " : "", ns, o->file, o->line);
			return;
		}
		if (!o->selector.n && !pa->selector.n) {
			if (*ns)
				ld_err(ld, &hdr, "peer_authentication %s: namespace %s already has a namespace-wide policy, "
				       "[peer_authentication %s] (%s:%d); Istio would use only the older one: keep one",
				       pa->name, ns, o->name, o->file, o->line);
			else
				ld_err(ld, &hdr, "peer_authentication %s: there is already a mesh-wide policy, "
				       "[peer_authentication %s] (%s:%d); Istio would use only the older one: keep one",
				       pa->name, o->name, o->file, o->line);
			return;
		}
	}
}

static const void *peer_auth_nth(const struct conf *c, size_t i, const char **name)
{
	if (i >= c->n_peer_auths)
		return NULL;
	*name = c->peer_auths[i].name;
	return &c->peer_auths[i];
}

static void authz_rule_free(struct conf_authz_rule *r)
{
	size_t i;

	free(r->name);
	pats_free(&r->principals);
	pats_free(&r->not_principals);
	pats_free(&r->namespaces);
	pats_free(&r->not_namespaces);
	free(r->ip_blocks.v);
	free(r->not_ip_blocks.v);
	pats_free(&r->methods);
	pats_free(&r->not_methods);
	pats_free(&r->paths);
	pats_free(&r->not_paths);
	free(r->ports.v);
	free(r->not_ports.v);
	pats_free(&r->hosts);
	pats_free(&r->not_hosts);
	for (i = 0; i < r->n_headers; i++) {
		free(r->headers[i].name);
		pats_free(&r->headers[i].values);
	}
	free(r->headers);
	memset(r, 0, sizeof(*r));
}

static struct conf_authz_rule *add_rule(struct conf_authz *p, const char *name, const struct where *w)
{
	struct conf_authz_rule *r;

	p->rules = grow(p->rules, p->n_rules, sizeof(*p->rules));
	r = &p->rules[p->n_rules++];
	memset(r, 0, sizeof(*r));
	r->name = name ? xstrdup(name) : NULL;
	r->file = w->file;
	r->line = w->line;
	return r;
}

static int authz_open(struct ld *ld, const char *name, const struct where *w)
{
	struct conf *c = ld->c;
	const char *slash = strchr(name, '/');
	size_t pl = slash ? (size_t)(slash - name) : strlen(name), i;
	struct conf_authz *p = NULL;
	char b[72];

	if (policy_name_ok(ld, "authorization", name, name, pl, w) < 0)
		return -1;
	if (slash) {
		const char **names;
		const char *best;

		if (!dns_label(slash + 1, strlen(slash + 1), 0)) {
			ld_err(ld, w, "invalid rule name in [authorization %s]: 1-63 of a-z 0-9 - after the '/' "
			       "(e.g. [authorization productpage-policy/get])", clip(name, b, sizeof(b)));
			return -1;
		}
		for (i = c->n_authzs; i-- > 0;)    /* the last policy of that name above */
			if (strlen(c->authzs[i].name) == pl && !memcmp(c->authzs[i].name, name, pl)) {
				p = &c->authzs[i];
				break;
			}
		if (!p) {
			char pol[256];

			snprintf(pol, sizeof(pol), "%.*s", (int)pl, name);
			names = xmalloc((c->n_authzs + 1) * sizeof(*names));
			for (i = 0; i < c->n_authzs; i++)
				names[i] = c->authzs[i].name;
			best = closest(pol, names, c->n_authzs);
			ld_err(ld, w, "[authorization %s]: a rule section comes after its policy, and there is no "
			       "[authorization %s] above it%s%s%s", clip(name, b, sizeof(b)), pol, best ? " (did you mean '" : "",
			       best ? best : "", best ? "'?)" : "");
			free(names);
			return -1;
		}
		for (i = 0; i < p->n_rules; i++)
			if (p->rules[i].name && !strcmp(p->rules[i].name, slash + 1)) {
				ld_err(ld, w, "duplicate [authorization %s] (first defined at %s:%d)", clip(name, b, sizeof(b)),
				       p->rules[i].file, p->rules[i].line);
				return -1;
			}
		if (p != &c->authzs[c->n_authzs - 1]) {
			/* keep "the open policy is the last one" true for cur_authz() */
			ld_err(ld, w, "[authorization %s]: write the rules of a policy right after it; another "
			       "[authorization %s] follows it (%s:%d)", clip(name, b, sizeof(b)), c->authzs[c->n_authzs - 1].name,
			       c->authzs[c->n_authzs - 1].file, c->authzs[c->n_authzs - 1].line);
			return -1;
		}
		ld->arule = add_rule(p, slash + 1, w);
		ld->asub = 1;
		ld->base = p;
		return 0;
	}
	c->authzs = grow(c->authzs, c->n_authzs, sizeof(*c->authzs));
	ld->ax = grow(ld->ax, c->n_authzs, sizeof(*ld->ax));
	memset(&ld->ax[c->n_authzs], 0, sizeof(*ld->ax));
	p = &c->authzs[c->n_authzs++];
	memset(p, 0, sizeof(*p));
	p->name = xstrdup(name);
	p->action = CONF_AUTHZ_ALLOW;
	p->file = w->file;
	p->line = w->line;
	ld->arule = add_rule(p, NULL, w);      /* rule 1, if the section has rule keys */
	ld->asub = 0;
	ld->rule_keys = 0;
	ld->base = p;
	return 0;
}

static void authz_close(struct ld *ld)
{
	struct conf *c = ld->c;
	struct conf_authz *p = cur_authz(ld);
	struct where hdr = { p->file, p->line };
	const char *ns = policy_ns(p->namespace);
	size_t i;

	ld->arule = NULL;
	if (ld->asub)
		return;
	if (!ld->rule_keys) {
		authz_rule_free(&p->rules[0]);
		p->n_rules = 0;
	}
	for (i = 0; i + 1 < c->n_authzs; i++) {
		const struct conf_authz *o = &c->authzs[i];

		if (!strcmp(o->name, p->name) && !strcmp(policy_ns(o->namespace), ns)) {
			ld_err(ld, &hdr, "duplicate [authorization %s]%s%s (first defined at %s:%d)", p->name,
			       *ns ? " in namespace " : "", ns, o->file, o->line);
			return;
		}
	}
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

/* ---- traffic management, once every service is known */

static const struct conf_policy default_policy = {
	.lb = CONF_LB_PEAK_EWMA,
	.outlier_interval = 10 * SEC_MS,
	.outlier_base_ejection_time = 30 * SEC_MS,
	.outlier_max_ejection_percent = 10,
};

/* O(1): finish_traffic() links each service to its rule before anything asks.
 * A service of another config (an old one, across a reload) gets NULL. */
const struct conf_destination *conf_destination_of(const struct conf *c, const struct conf_service *svc)
{
	if (!c || !svc || svc < c->services || svc >= c->services + c->n_services)
		return NULL;
	return svc->destination;
}

const struct conf_policy *conf_policy_of(const struct conf *c, const struct conf_service *svc, int subset)
{
	const struct conf_destination *d = conf_destination_of(c, svc);

	if (!d)
		return &default_policy;
	if (subset >= 0 && (size_t)subset < d->n_subsets)
		return &d->subsets[subset].policy;
	return &d->policy;
}

static int subset_index(const struct conf *c, const struct conf_service *svc, const char *name)
{
	const struct conf_destination *d = conf_destination_of(c, svc);
	size_t i;

	for (i = 0; d && i < d->n_subsets; i++)
		if (!strcmp(d->subsets[i].name, name))
			return (int)i;
	return -1;
}

/* "subsets of reviews: v1, v2" or why there are none */
static void subsets_text(const struct conf *c, const struct conf_service *svc, char *buf, size_t n)
{
	const struct conf_destination *d = conf_destination_of(c, svc);
	struct sb list = { 0 };
	size_t i;

	if (!d) {
		snprintf(buf, n, "there is no [destination %s]", svc->name);
		return;
	}
	if (!d->n_subsets) {
		snprintf(buf, n, "[destination %s] defines no subsets", svc->name);
		return;
	}
	for (i = 0; i < d->n_subsets && i < 12; i++)
		sb_printf(&list, "%s%s", i ? ", " : "", d->subsets[i].name);
	snprintf(buf, n, "subsets of %s: %s%s", svc->name, list.p, d->n_subsets > 12 ? ", ..." : "");
	free(list.p);
}

static void policy_copy(struct conf_policy *dst, const struct conf_policy *src)
{
	*dst = *src;
	dst->hash_key = src->hash_key ? xstrdup(src->hash_key) : NULL;
}

static void dest_title(const struct dest_x *x, char *buf, size_t n)
{
	snprintf(buf, n, "[destination %s%s%s]", x->service, x->subset ? "/" : "", x->subset ? x->subset : "");
}

/* The service a [destination NAME] is for: NAME in `namespace`, else the
 * only service of that name, else the one in the workload's namespace. */
static const struct conf_service *dest_service(struct ld *ld, const struct dest_x *x)
{
	const struct conf *c = ld->c;
	const struct conf_service *hit = NULL, *own = NULL, *in_ns = NULL;
	struct sb nss = { 0 };
	char title[160], hint[160];
	size_t i, n = 0;

	dest_title(x, title, sizeof(title));
	for (i = 0; i < c->n_services; i++) {
		const struct conf_service *s = &c->services[i];

		if (strcmp(s->name, x->service))
			continue;
		sb_printf(&nss, "%s%s", n ? ", " : "", s->namespace);
		n++;
		hit = s;
		if (x->namespace && !strcmp(s->namespace, x->namespace))
			in_ns = s;
		if (c->workload.namespace && !strcmp(s->namespace, c->workload.namespace))
			own = s;
	}
	if (!n) {
		service_hint(c, x->service, hint, sizeof(hint));
		ld_err(ld, &x->at, "%s: unknown service '%s'%s", title, x->service, hint);
		hit = NULL;
	} else if (x->namespace) {
		if (!in_ns)
			ld_err(ld, &x->at, "%s: there is no service %s in namespace %s (it is in: %s)", title, x->service,
			       x->namespace, nss.p);
		hit = in_ns;
	} else if (n > 1) {
		if (!own)
			ld_err(ld, &x->at, "%s: ambiguous: service %s exists in namespaces %s; add namespace = NAMESPACE",
			       title, x->service, nss.p);
		hit = own;
	}
	free(nss.p);
	return hit;
}

/* [destination S/SUBSET]: the keys written there replace the parent's */
static void apply_override(struct ld *ld, struct dest_x *x, size_t nth)
{
	struct conf *c = ld->c;
	const struct conf_service *svc = dest_service(ld, x);
	struct conf_destination *d;
	struct conf_subset *ss;
	char title[160], list[200];
	size_t i;
	int idx;

	if (!svc)
		return;
	dest_title(x, title, sizeof(title));
	d = (struct conf_destination *)conf_destination_of(c, svc);
	if (!d) {
		ld_err(ld, &x->at, "%s: subset %s is not defined: there is no [destination %s] with subset.%s = LABELS",
		       title, x->subset, svc->name, x->subset);
		return;
	}
	if ((idx = subset_index(c, svc, x->subset)) < 0) {
		subsets_text(c, svc, list, sizeof(list));
		ld_err(ld, &x->at, "%s: unknown subset '%s' (%s)", title, x->subset, list);
		return;
	}
	for (i = 0; i < nth; i++)
		if (ld->ox[i].d.svc == svc && !strcmp(ld->ox[i].subset, x->subset)) {
			ld_err(ld, &x->at, "duplicate %s (first defined at %s:%d)", title, ld->ox[i].at.file, ld->ox[i].at.line);
			return;
		}
	x->d.svc = svc;
	ss = &d->subsets[idx];
	for (i = 0; i < NKEYS(destination_keys); i++) {
		const struct conf_key *k = &destination_keys[i];
		size_t off = k->off - offsetof(struct conf_destination, policy);

		if (!x->seen[i].line || k->type == V_SUBSET || k->type == V_DEST_NAMESPACE)
			continue;
		if (k->type == V_HASH_ON) {
			free(ss->policy.hash_key);
			ss->policy.hash_on = x->d.policy.hash_on;
			ss->policy.hash_key = x->d.policy.hash_key ? xstrdup(x->d.policy.hash_key) : NULL;
		} else {
			memcpy((char *)&ss->policy + off, (const char *)&x->d.policy + off, sizeof(uint32_t));
		}
	}
	check_hash(ld, &ss->policy, x->seen, &x->at);
}

static int labels_include(const struct conf_labels *have, const struct conf_labels *want)
{
	size_t i;

	for (i = 0; i < want->n; i++) {
		const char *v = conf_label(have, want->v[i].key);

		if (!v || strcmp(v, want->v[i].value))
			return 0;
	}
	return 1;
}

/* the first host of the route that names a service */
static const struct conf_service *route_primary(const struct conf *c, const struct conf_route *r)
{
	const struct conf_service *s;
	size_t i;

	for (i = 0; i < r->n_hosts; i++)
		if (r->hosts[i][0] != '*' && (s = conf_find_service(c, r->hosts[i], strlen(r->hosts[i]), NULL)))
			return s;
	return NULL;
}

/* DEST: SUBSET of the primary service, else a SERVICE, or SERVICE/SUBSET */
static int resolve_dest(struct ld *ld, const struct conf_route *r, const struct conf_service *primary,
                        const char *ref, struct conf_dest *out, const struct where *at)
{
	const struct conf *c = ld->c;
	const char *slash = strchr(ref, '/');
	const struct conf_service *svc;
	char hint[200], name[72];
	int idx;

	if (slash) {
		svc = conf_find_service(c, ref, (size_t)(slash - ref), NULL);
		if (!svc) {
			const char *dot = memchr(ref, '.', (size_t)(slash - ref));
			size_t nl = (size_t)((dot ? dot : slash) - ref);

			snprintf(name, sizeof(name), "%.*s", (int)(nl > 63 ? 63 : nl), ref);
			service_hint(c, name, hint, sizeof(hint));
			ld_err(ld, at, "route %s: unknown service '%.*s'%s", r->name, (int)(slash - ref), ref, hint);
			return -1;
		}
		if ((idx = subset_index(c, svc, slash + 1)) < 0) {
			subsets_text(c, svc, hint, sizeof(hint));
			ld_err(ld, at, "route %s: unknown subset '%s' (%s)", r->name, slash + 1, hint);
			return -1;
		}
		out->svc = svc;
		out->subset = idx;
		return 0;
	}
	if (primary && (idx = subset_index(c, primary, ref)) >= 0) {
		out->svc = primary;
		out->subset = idx;
		return 0;
	}
	if ((svc = conf_find_service(c, ref, strlen(ref), NULL))) {
		out->svc = svc;
		out->subset = -1;
		return 0;
	}
	if (primary && conf_destination_of(c, primary) && conf_destination_of(c, primary)->n_subsets) {
		subsets_text(c, primary, hint, sizeof(hint));
		ld_err(ld, at, "route %s: unknown subset '%s' (%s)", r->name, ref, hint);
	} else {
		const char *dot = strchr(ref, '.');
		size_t nl = dot ? (size_t)(dot - ref) : strlen(ref);

		snprintf(name, sizeof(name), "%.*s", (int)(nl > 63 ? 63 : nl), ref);
		service_hint(c, name, hint, sizeof(hint));
		if (primary)
			ld_err(ld, at, "route %s: '%s' is neither a subset of %s (%s) nor a service%s", r->name, ref,
			       primary->name, conf_destination_of(c, primary) ? "its destination rule defines none"
			                                                       : "it has no [destination]", hint);
		else
			ld_err(ld, at, "route %s: unknown service '%s'%s", r->name, ref, hint);
	}
	return -1;
}

/* Does every host of b fall to a host of a? Same name, or the same service. */
static int hosts_covered(const struct conf_route *a, const struct conf_service *const *sa,
                         const struct conf_route *b, const struct conf_service *const *sb_)
{
	size_t i, j;

	for (i = 0; i < b->n_hosts; i++) {
		for (j = 0; j < a->n_hosts; j++)
			if (!strcmp(a->hosts[j], b->hosts[i]) || (sa[j] && sa[j] == sb_[i]))
				break;
		if (j == a->n_hosts)
			return 0;
	}
	return 1;
}

static void finish_traffic(struct ld *ld)
{
	struct conf *c = ld->c;
	const struct conf_service **hsvc;
	size_t *hoff, *all, n_all = 0, i, j, k, nh = 0;
	char hint[200];

	/* destination rules: their services, one rule per service */
	for (i = 0; i < c->n_destinations; i++) {
		struct conf_destination *d = &c->destinations[i];
		const struct conf_service *s = dest_service(ld, &ld->dx[i]);

		if (s && s->destination) {
			char title[160];

			dest_title(&ld->dx[i], title, sizeof(title));
			ld_err(ld, &ld->dx[i].at, "duplicate %s (first defined at %s:%d)", title, s->destination->file,
			       s->destination->line);
			continue;
		}
		if (!s)
			continue;
		d->svc = s;
		((struct conf_service *)s)->destination = d;
		for (k = 0; k < d->n_subsets; k++)
			policy_copy(&d->subsets[k].policy, &d->policy);
	}
	for (i = 0; i < ld->n_ox; i++)
		apply_override(ld, &ld->ox[i], i);
	for (i = 0; i < c->n_destinations; i++) {
		const struct conf_destination *d = &c->destinations[i];

		if (!d->svc || !d->svc->n_endpoints || c->controller.present)
			continue;              /* no endpoints is warned about already; a controller's come later */
		for (k = 0; k < d->n_subsets; k++) {
			struct where at = { d->file, d->subsets[k].line };

			for (j = 0; j < d->svc->n_endpoints; j++)
				if (labels_include(&d->svc->endpoints[j].labels, &d->subsets[k].labels))
					break;
			if (j == d->svc->n_endpoints)
				ld_warn(ld, &at, "subset '%s' of %s matches no endpoint", d->subsets[k].name, d->svc->name);
		}
	}

	/* routes: destinations, hosts, and rules that can never match */
	hoff = xmalloc((c->n_routes + 1) * sizeof(*hoff));
	for (i = 0; i < c->n_routes; i++)
		hoff[i] = nh, nh += c->routes[i].n_hosts;
	hoff[c->n_routes] = nh;
	hsvc = xmalloc((nh + 1) * sizeof(*hsvc));
	all = xmalloc((c->n_routes + 1) * sizeof(*all));
	for (i = 0; i < c->n_routes; i++) {
		struct conf_route *r = &c->routes[i];
		struct route_x *x = &ld->rx[i];
		const struct conf_service *primary = route_primary(c, r);
		int ok = 1;

		for (j = 0; j < r->n_hosts; j++) {
			const char *h = r->hosts[j];

			hsvc[hoff[i] + j] = h[0] == '*' ? NULL : conf_find_service(c, h, strlen(h), NULL);
			if (!hsvc[hoff[i] + j] && h[0] != '*' && !strchr(h, '.')) {
				service_hint(c, h, hint, sizeof(hint));
				ld_warn(ld, &x->hosts_at, "route %s: host '%s' names no service%s", r->name, h, hint);
			}
		}
		for (j = 0; j < r->n_to && x->to_ref; j++)
			if (resolve_dest(ld, r, primary, x->to_ref[j], &r->to[j], &x->to_at) < 0)
				ok = 0;
		for (j = 0; ok && j < r->n_to; j++)
			for (k = 0; k < j; k++)
				if (r->to[k].svc == r->to[j].svc && r->to[k].subset == r->to[j].subset) {
					ld_err(ld, &x->to_at, "route %s: '%s' and '%s' are the same destination", r->name,
					       x->to_ref[k], x->to_ref[j]);
					ok = 0;
					break;
				}
		if (x->mirror_ref)
			resolve_dest(ld, r, primary, x->mirror_ref, &r->mirror, &x->mirror_at);
		r->mirror.weight = 0;
		for (k = 0; k < n_all; k++)
			if (hosts_covered(&c->routes[all[k]], hsvc + hoff[all[k]], r, hsvc + hoff[i])) {
				struct where at = { r->file, r->line };

				ld_warn(ld, &at, "can never match: rule %s comes after %s, which matches everything", r->name,
				        c->routes[all[k]].name);
				break;
			}
		if (!r->n_matches)
			all[n_all++] = i;
	}
	free(all);
	free(hsvc);
	free(hoff);
}

/* ---- security, once everything is read */

static int rule_empty(const struct conf_authz_rule *r)
{
	return !r->principals.n && !r->not_principals.n && !r->namespaces.n && !r->not_namespaces.n &&
	       !r->ip_blocks.n && !r->not_ip_blocks.n && !r->methods.n && !r->not_methods.n && !r->paths.n &&
	       !r->not_paths.n && !r->ports.n && !r->not_ports.n && !r->hosts.n && !r->not_hosts.n && !r->n_headers;
}

/* Would a policy of namespace ns with selector sel select anything this
 * config knows of: an endpoint of a service (app=SERVICE implied) or the
 * workload itself? */
static int selects_something(const struct conf *c, const char *ns, const struct conf_labels *sel)
{
	size_t i, j, k;

	for (i = 0; i <= c->n_services; i++) {
		const struct conf_service *s = i < c->n_services ? &c->services[i] : NULL;
		const char *s_ns = s ? s->namespace : c->workload.namespace, *app = s ? s->name : c->workload.service;
		size_t n = s ? (s->n_endpoints ? s->n_endpoints : 1) : 1;

		if (*policy_ns(ns) && strcmp(ns, s_ns))
			continue;
		for (j = 0; j < n; j++) {
			const struct conf_labels *l = s ? (s->n_endpoints ? &s->endpoints[j].labels : NULL) : &c->workload.labels;

			for (k = 0; k < sel->n; k++) {
				const char *v = conf_label(l, sel->v[k].key);

				if (!v && !strcmp(sel->v[k].key, "app"))
					v = app;
				if (!v || strcmp(v, sel->v[k].value))
					break;
			}
			if (k == sel->n)
				return 1;
		}
	}
	return 0;
}

/* a warning for a policy that applies to nothing this config knows of */
static void check_selects(struct ld *ld, const char *kind, const char *name, const char *ns,
                          const struct conf_labels *sel, const char *file, int line)
{
	struct where at = { file, line };
	struct sb b = { 0 };

	if (!ld->c->n_services || ld->c->controller.present || selects_something(ld->c, ns, sel))
		return;
	sb_add(&b, "");
	labels_text(&b, sel, 0);
	if (sel->n)
		ld_warn(ld, &at, "%s %s: selector %s selects no endpoint of any service%s%s (app=SERVICE is implied)",
		        kind, name, b.p, *policy_ns(ns) ? " in namespace " : "", policy_ns(ns));
	else
		ld_warn(ld, &at, "%s %s: namespace %s has no services", kind, name, ns);
	free(b.p);
}

static void finish_security(struct ld *ld)
{
	static const char *const needs_ca[] = { "token_file", "trust_bundle", "ca_fingerprint", "key_file" };
	struct conf *c = ld->c;
	struct conf_control *ct = &c->control;
	struct where w_ca = key_at(ld, SEC_CONTROL, "ca"), w_tb = key_at(ld, SEC_CONTROL, "trust_bundle");
	struct where w_fp = key_at(ld, SEC_CONTROL, "ca_fingerprint");
	size_t i, j;

	if (!c->mesh.trust_domain)
		c->mesh.trust_domain = xstrdup(c->mesh.domain);

	/* [control] controller: the mesh part comes from the controller, over mTLS */
	if (ct->controller.set) {
		struct where w_ctl = key_at(ld, SEC_CONTROL, "controller");

		if (!ct->ca.set)
			ld_err(ld, &w_ctl, "controller needs ca = ADDRESS in [control]: the proxy talks to the controller "
			       "over mTLS with its workload certificate");
		if (c->mesh_path)
			ld_err(ld, &w_ctl, "set one of mesh (a static mesh file) and controller (the mesh part pushed by "
			       "`mesh controller`), not both");
	} else if (ct->snapshot_file) {
		struct where at = key_at(ld, SEC_CONTROL, "snapshot_file");

		ld_err(ld, &at, "snapshot_file needs controller = ADDRESS in [control] (it keeps the controller's last snapshot)");
	}

	/* [control]: how this proxy gets its identity */
	if (!ct->ca.set) {
		for (i = 0; i < sizeof(needs_ca) / sizeof(needs_ca[0]); i++) {
			struct where at = key_at(ld, SEC_CONTROL, needs_ca[i]);

			if (at.line)
				ld_err(ld, &at, "%s needs ca = ADDRESS in [control] (the certificate authority that signs "
				       "this workload's certificate)", needs_ca[i]);
		}
	} else {
		if (!w_tb.line && !w_fp.line)      /* a bad value was reported at its line */
			ld_err(ld, &w_ca, "ca is set, but nothing says how to trust it: add trust_bundle = root.crt "
			       "(the CA's root certificate) or ca_fingerprint = its SHA-256");
		if (ct->trust_bundle && ct->ca_fingerprint) {
			struct where *later = w_tb.file == w_fp.file && w_tb.line > w_fp.line ? &w_tb : &w_fp;

			ld_err(ld, later, "set one of trust_bundle and ca_fingerprint, not both");
		}
		if (!ct->token_file)
			ld_warn(ld, &w_ca, "ca is set without token_file: the CA signs only if it allows this namespace "
			        "without a token (its allow_namespaces lab setting); otherwise add token_file = "
			        "the output of `mesh ca token`");
		if (!c->workload.service_account)
			ld_err(ld, &w_ca, "ca is set, but the workload has no identity: set [workload] service "
			       "(or service_account)");
	}

	/* a workload identity its clients would refuse */
	for (i = 0; c->workload.service && c->workload.service_account && i < c->n_services; i++) {
		const struct conf_service *s = &c->services[i];
		struct where at = key_at(ld, SEC_WORKLOAD, "service_account");

		if (strcmp(s->name, c->workload.service) || strcmp(s->namespace, c->workload.namespace) ||
		    !strcmp(s->service_account, c->workload.service_account))
			continue;
		if (!at.line)
			at = key_at(ld, SEC_WORKLOAD, "service");
		ld_warn(ld, &at, "[workload] service_account '%s' differs from [service %s] service_account '%s': "
		        "clients check the server's identity against the service's and would refuse this workload",
		        c->workload.service_account, s->name, s->service_account);
	}

	for (i = 0; i < c->n_peer_auths; i++)
		check_selects(ld, "peer_authentication", c->peer_auths[i].name, c->peer_auths[i].namespace,
		              &c->peer_auths[i].selector, c->peer_auths[i].file, c->peer_auths[i].line);

	/* [authorization]: rules = none, or the one empty rule of a section without rule keys */
	for (i = 0; i < c->n_authzs; i++) {
		struct conf_authz *p = &c->authzs[i];
		struct where hdr = { p->file, p->line };

		check_selects(ld, "authorization", p->name, p->namespace, &p->selector, p->file, p->line);
		if (ld->ax[i].rules_at.line) {
			if (p->n_rules)
				ld_err(ld, &ld->ax[i].rules_at, "authorization %s: rules = none, but the policy has a rule "
				       "(%s:%d); remove one or the other", p->name, p->rules[0].file, p->rules[0].line);
			continue;
		}
		if (!p->n_rules)
			add_rule(p, NULL, &hdr);
		for (j = 0; j < p->n_rules; j++)
			if (p->action == CONF_AUTHZ_DENY && rule_empty(&p->rules[j])) {
				struct where at = { p->rules[j].file, p->rules[j].line };

				ld_warn(ld, &at, "authorization %s: a DENY policy with an empty rule denies every request to "
				        "the workloads it selects (write rules = none for a policy that matches nothing)", p->name);
				break;
			}
	}
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

	c->controller.present = ld->single_at[SEC_CONTROLLER].line != 0;
	if (!key_at(ld, SEC_DASHBOARD, "listen").line)
		parse_addr("127.0.0.1:20001", &c->dashboard.listen, 0, why, sizeof(why));
	c->dashboard.off = !c->dashboard.listen.set;
	if (c->dashboard.warn_errors > c->dashboard.bad_errors) {
		struct where w = key_at(ld, SEC_DASHBOARD, "warn_errors");

		ld_err(ld, &w, "warn_errors = %g is above bad_errors = %g: orange (warn) must come before red (bad)",
		       c->dashboard.warn_errors, c->dashboard.bad_errors);
	}

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

		if (!s && c->control.controller.set && !ld->mesh_given) {
			ld_warn(ld, &sl->at, "service.%s: no service '%s' yet: the listener opens when the controller's "
			        "snapshot defines it", sl->ref, sl->ref);
		} else if (!s) {
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

		if (!c->services[i].n_endpoints && !c->controller.present)
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
	finish_traffic(ld);
	finish_security(ld);
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
	c->proxy.retry_buffer = 64u << 10;
	c->proxy.retry_budget_percent = 20;
	c->log.level = CONF_LOG_INFO;
	c->mesh.domain = xstrdup("cluster.local");
	c->tracing.sampling = 1;             /* Istio's default: 1% of new traces */
	c->tracing.max_queue = 1024;
	c->dashboard.interval = 5 * SEC_MS;
	c->dashboard.warn_errors = 1;
	c->dashboard.bad_errors = 10;
	c->dashboard.max_spans = 10000;
	c->dashboard.max_span_bytes = 4u << 20;
	return c;
}

static void destination_free(struct conf_destination *d)
{
	size_t i;

	free(d->policy.hash_key);
	for (i = 0; i < d->n_subsets; i++) {
		free(d->subsets[i].name);
		labels_free(&d->subsets[i].labels);
		free(d->subsets[i].policy.hash_key);
	}
	free(d->subsets);
	memset(d, 0, sizeof(*d));
}

static void route_free(struct conf_route *r)
{
	size_t i, j;

	free(r->name);
	for (i = 0; i < r->n_hosts; i++)
		free(r->hosts[i]);
	free(r->hosts);
	for (i = 0; i < r->n_matches; i++) {
		struct conf_match *m = &r->matches[i];

		strmatch_free(&m->path);
		free(m->method);
		for (j = 0; j < m->n_headers; j++)
			free(m->headers[j].name), strmatch_free(&m->headers[j].m);
		free(m->headers);
		for (j = 0; j < m->n_query; j++)
			free(m->query[j].name), strmatch_free(&m->query[j].m);
		free(m->query);
		labels_free(&m->source);
	}
	free(r->matches);
	free(r->to);
	free(r->rewrite_uri);
	free(r->rewrite_authority);
	free(r->redirect);
	free(r->direct_body);
	header_ops_free(&r->req_headers);
	header_ops_free(&r->resp_headers);
	free(r->retry_status_codes);
	memset(r, 0, sizeof(*r));
}

/* the loader's own state: deferred references and scratch */
static void ld_free(struct ld *ld)
{
	size_t i, j;

	for (i = 0; i < ld->n_sl; i++)
		free(ld->sl[i].ref);
	free(ld->sl);
	for (i = 0; i < ld->n_dx + ld->n_ox; i++) {
		struct dest_x *x = i < ld->n_dx ? &ld->dx[i] : &ld->ox[i - ld->n_dx];

		free(x->service);
		free(x->subset);
		free(x->namespace);
		destination_free(&x->d);
	}
	free(ld->dx);
	free(ld->ox);
	for (i = 0; i < ld->c->n_routes; i++) {
		struct route_x *x = &ld->rx[i];

		for (j = 0; x->to_ref && j < ld->c->routes[i].n_to; j++)
			free(x->to_ref[j]);
		free(x->to_ref);
		free(x->mirror_ref);
		free(x->block);
	}
	free(ld->rx);
	free(ld->ax);
	pk_clear(ld);
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
	free(c->mesh.trust_domain);
	free(c->control.token_file);
	free(c->control.trust_bundle);
	free(c->control.ca_fingerprint);
	free(c->control.key_file);
	free(c->control.snapshot_file);
	free(c->controller.ca);
	free(c->dashboard.token_file);
	free(c->dashboard.basic_file);
	for (i = 0; i < c->n_services; i++) {
		struct conf_service *s = &c->services[i];

		free(s->name);
		free(s->namespace);
		free(s->service_account);
		for (j = 0; j < s->n_endpoints; j++)
			labels_free(&s->endpoints[j].labels);
		free(s->endpoints);
	}
	free(c->services);
	free(c->mesh_path);
	for (i = 0; i < c->n_warnings; i++)
		free(c->warnings[i]);
	free(c->warnings);
	for (i = 0; i < c->n_destinations; i++)
		destination_free(&c->destinations[i]);
	free(c->destinations);
	for (i = 0; i < c->n_routes; i++)
		route_free(&c->routes[i]);
	free(c->routes);
	for (i = 0; i < c->n_peer_auths; i++) {
		struct conf_peer_auth *pa = &c->peer_auths[i];

		free(pa->name);
		free(pa->namespace);
		labels_free(&pa->selector);
		free(pa->ports);
		free(pa->id);
	}
	free(c->peer_auths);
	for (i = 0; i < c->n_authzs; i++) {
		struct conf_authz *p = &c->authzs[i];

		free(p->name);
		free(p->namespace);
		labels_free(&p->selector);
		for (j = 0; j < p->n_rules; j++)
			authz_rule_free(&p->rules[j]);
		free(p->rules);
	}
	free(c->authzs);
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
	size_t i, n, max = ld->max_listed ? ld->max_listed : CONF_MAX_ERRORS;

	qsort(ld->msgs, ld->n_msgs, sizeof(*ld->msgs), msg_cmp);
	sb_add(&b, "");
	for (i = 0; i < ld->n_msgs && i < max; i++)
		sb_printf(&b, "%s%s", i ? "\n" : "", ld->msgs[i].text);
	if (ld->n_msgs + ld->n_dropped > max)
		sb_printf(&b, "\n... and %zu more errors", ld->n_msgs + ld->n_dropped - max);
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

/* keep (mesh check): list every error kept, and hand the warnings of a refused
 * config over to *warnings instead of freeing them */
static struct conf *load_conf(const char *path, const char *text, char *err, size_t errlen,
                              char ***warnings, size_t *n_warnings, const char *mesh_name, const char *mesh_text)
{
	struct ld ld;
	struct conf *c = conf_new(path);
	const char *file = add_file(c, path);
	char why[160];
	int ok = 1;

	memset(&ld, 0, sizeof(ld));
	ld.c = c;
	if (warnings)
		ld.max_listed = CONF_MAX_KEPT;
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
	ld.mesh_given = mesh_text != NULL;
	if (ok && mesh_text)
		parse_text(&ld, add_file(c, mesh_name), mesh_text, 0, PART_MESH);
	else if (ok && c->mesh_path && ld.mesh_at.line) {
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
	ld_free(&ld);
	if (ld.n_msgs) {
		put_errors(&ld, err, errlen);
		if (warnings) {
			*warnings = c->warnings;
			*n_warnings = c->n_warnings;
			c->warnings = NULL;
			c->n_warnings = 0;
		}
		conf_unref(c);
		return NULL;
	}
	if (err && errlen)
		err[0] = '\0';
	return c;
}

struct conf *conf_load(const char *path, char *err, size_t errlen)
{
	return load_conf(path, NULL, err, errlen, NULL, NULL, NULL, NULL);
}

struct conf *conf_load_with_mesh(const char *path, const char *mesh_name, const char *mesh_text, char *err,
                                 size_t errlen)
{
	return load_conf(path, NULL, err, errlen, NULL, NULL, mesh_name, mesh_text ? mesh_text : "");
}

struct conf *conf_load_string(const char *name, const char *text, char *err, size_t errlen)
{
	return load_conf(name, text ? text : "", err, errlen, NULL, NULL, NULL, NULL);
}

struct conf *conf_load_keep(const char *path, const char *text, char *err, size_t errlen, char ***warnings,
                            size_t *n_warnings)
{
	*warnings = NULL;
	*n_warnings = 0;
	return load_conf(path, text, err, errlen, warnings, n_warnings, NULL, NULL);
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

/* Appends items joined by ", ", or by "," when the line "key = value" would
 * then be longer than a line may be: input joined by "," always fits. */
static void sb_join(struct sb *b, char **items, size_t n, size_t keylen)
{
	size_t i, total = 0;
	const char *sep;

	for (i = 0; i < n; i++)
		total += strlen(items[i]) + (i ? 2 : 0);
	sep = keylen + 3 + b->len + total > CONF_LINE_MAX ? "," : ", ";
	sb_add(b, "");
	for (i = 0; i < n; i++)
		sb_printf(b, "%s%s", i ? sep : "", items[i]);
}

static void items_free(char **items, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(items[i]);
	free(items);
}

static void labels_text(struct sb *b, const struct conf_labels *l, size_t keylen)
{
	char **items = xmalloc((l->n + 1) * sizeof(*items));
	size_t i;

	for (i = 0; i < l->n; i++) {
		items[i] = xmalloc(strlen(l->v[i].key) + strlen(l->v[i].value) + 2);
		sprintf(items[i], "%s=%s", l->v[i].key, l->v[i].value);
	}
	sb_join(b, items, l->n, keylen);
	items_free(items, l->n);
}

static void service_ref(const struct conf *c, const struct conf_service *s, char *buf, size_t n);

/* patterns as written: prefix*, *suffix, * */
static void pats_text(struct sb *b, const struct conf_pats *ps, size_t keylen)
{
	char **items = xmalloc((ps->n + 1) * sizeof(*items));
	size_t i;

	for (i = 0; i < ps->n; i++) {
		const struct conf_pat *p = &ps->v[i];

		items[i] = xmalloc(p->len + 2);
		sprintf(items[i], "%s%s%s", p->kind == CONF_PAT_SUFFIX || p->kind == CONF_PAT_ANY ? "*" : "", p->s,
		        p->kind == CONF_PAT_PREFIX ? "*" : "");
	}
	sb_join(b, items, ps->n, keylen);
	items_free(items, ps->n);
}

/* a conf_dest as text that resolves back to it from this route */
static void dest_text(const struct conf *c, const struct conf_service *primary, const struct conf_dest *d,
                      char *buf, size_t n)
{
	char ref[160];

	service_ref(c, d->svc, ref, sizeof(ref));
	if (d->subset >= 0)
		snprintf(buf, n, "%s/%s", ref, conf_destination_of(c, d->svc)->subsets[d->subset].name);
	else if (primary && subset_index(c, primary, ref) >= 0)
		snprintf(buf, n, "%s.%s", d->svc->name, d->svc->namespace);  /* a bare name would mean the subset */
	else
		snprintf(buf, n, "%s", ref);
}

/* a string match as written: bare for a plain exact value */
static void strmatch_text(struct sb *b, const struct conf_strmatch *m)
{
	const char *v = m->value;

	switch (m->kind) {
	case CONF_MATCH_EXACT:
		if (!*v || *v == ';' || !strncmp(v, "exact:", 6) || !strncmp(v, "prefix:", 7) || !strncmp(v, "regex:", 6) ||
		    !strcmp(v, "present") || !strcmp(v, "absent"))
			sb_add(b, "exact:");
		sb_add(b, v);
		break;
	case CONF_MATCH_PREFIX:
		sb_printf(b, "prefix:%s", v);
		break;
	case CONF_MATCH_REGEX:
		sb_printf(b, "regex:%s", v);
		break;
	case CONF_MATCH_PRESENT:
		sb_add(b, "present");
		break;
	case CONF_MATCH_ABSENT:
		sb_add(b, "absent");
		break;
	}
}

static void render_matches(struct pairs *ps, const struct conf_route *r)
{
	struct sb b = { 0 };
	char key[NAME_MAX_LEN + 64], pre[32];
	size_t i, j;

	for (i = 0; i < r->n_matches; i++) {
		const struct conf_match *m = &r->matches[i];

		if (i)
			snprintf(pre, sizeof(pre), "match.%zu.", i + 1);
		else
			snprintf(pre, sizeof(pre), "match.");
#define PUT(k) (pair_add(ps, (k), b.p), b.len = 0)
		if (m->has_path) {
			snprintf(key, sizeof(key), "%spath", pre);
			strmatch_text(&b, &m->path);
			PUT(key);
		}
		if (m->method) {
			snprintf(key, sizeof(key), "%smethod", pre);
			sb_add(&b, m->method);
			PUT(key);
		}
		for (j = 0; j < m->n_headers; j++) {
			snprintf(key, sizeof(key), "%sheader.%s", pre, m->headers[j].name);
			strmatch_text(&b, &m->headers[j].m);
			PUT(key);
		}
		for (j = 0; j < m->n_query; j++) {
			snprintf(key, sizeof(key), "%squery.%s", pre, m->query[j].name);
			strmatch_text(&b, &m->query[j].m);
			PUT(key);
		}
		if (m->source.n) {
			snprintf(key, sizeof(key), "%ssource", pre);
			sb_add(&b, "");
			labels_text(&b, &m->source, strlen(key));
			PUT(key);
		}
#undef PUT
	}
	free(b.p);
}

/* is the K_OPTIONAL value at dst the key's default? */
static int is_default(const struct conf_key *k, const void *dst)
{
	switch (k->type) {
	case V_DURATION:
	case V_U32:
		return *(const uint32_t *)dst == k->def;
	case V_STATUS:
	case V_REDIRECT_CODE:
		return *(const int *)dst == (int)k->def;
	case V_PERCENT:
		return *(const double *)dst == (double)k->def;
	default:
		return 0;
	}
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

	if (k->alias || ((k->flags & K_OPTIONAL) && is_default(k, dst)))
		return;
	switch (k->type) {
	case V_SERVICE_NAME:
	case V_NAMESPACE:
	case V_DNS_NAME:
	case V_URI:
	case V_AUTHORITY:
	case V_REDIRECT:
	case V_TEXT:
	case V_FILE_IN:
	case V_FILE_OUT:
	case V_FINGERPRINT:
		if (*(char *const *)dst)
			pair_add(ps, k->name, *(char *const *)dst);
		break;
	case V_LABELS:
		if (((const struct conf_labels *)dst)->n) {
			labels_text(&b, dst, strlen(k->name));
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
		pair_add(ps, k->name, *(const int *)dst ? "yes" : "no");
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
				labels_text(&b, &s->endpoints[i].labels, strlen(k->name));
			}
			pair_add(ps, k->name, b.p);
		}
		break;
	}
	case V_U32:
		snprintf(buf, sizeof(buf), "%u", (unsigned)*(const uint32_t *)dst);
		pair_add(ps, k->name, buf);
		break;
	case V_PERCENT:
		fmt_percent(*(const double *)dst, buf, sizeof(buf));
		pair_add(ps, k->name, buf);
		break;
	case V_LB:
		pair_add(ps, k->name, lb_words[*(const enum conf_lb *)dst]);
		break;
	case V_HASH_ON: {
		const struct conf_policy *pol = (const struct conf_policy *)((const char *)dst - offsetof(struct conf_policy, hash_on));

		if (pol->hash_on == CONF_HASH_NONE)
			break;
		if (pol->hash_on == CONF_HASH_SOURCE_IP)
			sb_add(&b, "source_ip");
		else
			sb_printf(&b, "%s:%s", hash_words[pol->hash_on - 1], pol->hash_key);
		pair_add(ps, k->name, b.p);
		break;
	}
	case V_SUBSET: {
		const struct conf_destination *d = base;

		for (i = 0; i < d->n_subsets; i++) {
			char key[96];

			snprintf(key, sizeof(key), "subset.%s", d->subsets[i].name);
			b.len = 0;
			sb_add(&b, "");
			labels_text(&b, &d->subsets[i].labels, strlen(key));
			pair_add(ps, key, b.p);
		}
		break;
	}
	case V_DEST_NAMESPACE: {
		const struct conf_destination *d = base;

		service_ref(c, d->svc, buf, sizeof(buf));
		if (strchr(buf, '.'))              /* the name alone is ambiguous */
			pair_add(ps, k->name, d->svc->namespace);
		break;
	}
	case V_HOSTS: {
		const struct conf_route *r = base;

		sb_join(&b, r->hosts, r->n_hosts, strlen(k->name));
		pair_add(ps, k->name, b.p);
		break;
	}
	case V_MATCH:
		render_matches(ps, base);
		break;
	case V_DESTS:
	case V_MIRROR: {
		const struct conf_route *r = base;
		const struct conf_service *primary = route_primary(c, r);
		char **items, text[400];
		size_t n = k->type == V_MIRROR ? !!r->mirror.svc : r->n_to;

		if (!n)
			break;
		items = xmalloc(n * sizeof(*items));
		for (i = 0; i < n; i++) {
			const struct conf_dest *d = k->type == V_MIRROR ? &r->mirror : &r->to[i];

			dest_text(c, primary, d, text, sizeof(text));
			if (k->type == V_DESTS && n > 1)   /* a single destination takes all: no weight */
				snprintf(text + strlen(text), sizeof(text) - strlen(text), " %u", (unsigned)d->weight);
			items[i] = xstrdup(text);
		}
		sb_join(&b, items, n, strlen(k->name));
		items_free(items, n);
		pair_add(ps, k->name, b.p);
		break;
	}
	case V_REDIRECT_CODE:
	case V_STATUS:
		snprintf(buf, sizeof(buf), "%d", *(const int *)dst);
		pair_add(ps, k->name, buf);
		break;
	case V_HDR_SET:
	case V_HDR_ADD: {
		const struct conf_header_ops *h = dst;
		const struct conf_header_op *op = k->type == V_HDR_SET ? h->set : h->add;
		size_t n = k->type == V_HDR_SET ? h->n_set : h->n_add;

		for (i = 0; i < n; i++) {
			b.len = 0;
			sb_printf(&b, "%s%s", k->name, op[i].name);
			pair_add(ps, b.p, op[i].value);
		}
		break;
	}
	case V_HDR_REMOVE: {
		const struct conf_header_ops *h = dst;

		if (h->n_remove) {
			sb_join(&b, h->remove, h->n_remove, strlen(k->name));
			pair_add(ps, k->name, b.p);
		}
		break;
	}
	case V_RETRY_ON: {
		unsigned bits = *(const unsigned *)dst;

		for (i = 0; retry_words[i]; i++)
			if (bits & (1u << i))
				sb_printf(&b, "%s%s", b.len ? ", " : "", retry_words[i]);
		if (bits)
			pair_add(ps, k->name, b.p);
		break;
	}
	case V_STATUS_LIST: {
		const int *codes = *(int *const *)dst;
		size_t n = *(const size_t *)((const char *)dst + sizeof(int *));

		for (i = 0; i < n; i++)
			sb_printf(&b, "%s%d", i ? ", " : "", codes[i]);
		if (n)
			pair_add(ps, k->name, b.p);
		break;
	}
	case V_MTLS:
		pair_add(ps, k->name, mtls_words[*(const int *)dst]);
		break;
	case V_AZ_ACTION:
		pair_add(ps, k->name, action_words[*(const int *)dst]);
		break;
	case V_PORT_MTLS: {
		const struct conf_peer_auth *pa = base;

		for (i = 0; i < pa->n_ports; i++) {
			snprintf(buf, sizeof(buf), "port.%u", (unsigned)pa->ports[i].port);
			pair_add(ps, buf, mtls_words[pa->ports[i].mode]);
		}
		break;
	}
	case V_AZ_RULES:
		if (!((const struct conf_authz *)base)->n_rules)
			pair_add(ps, k->name, "none");
		break;
	case V_PATS:
		if (((const struct conf_pats *)dst)->n) {
			pats_text(&b, dst, strlen(k->name));
			pair_add(ps, k->name, b.p);
		}
		break;
	case V_CIDRS: {
		const struct conf_cidrs *cs = dst;

		for (i = 0; i < cs->n; i++) {
			char a[INET6_ADDRSTRLEN];

			inet_ntop(cs->v[i].family, cs->v[i].addr, a, sizeof(a));
			sb_printf(&b, "%s%s", i ? ", " : "", a);
			if (cs->v[i].bits != (cs->v[i].family == AF_INET ? 32u : 128u))
				sb_printf(&b, "/%u", cs->v[i].bits);
		}
		if (cs->n)
			pair_add(ps, k->name, b.p);
		break;
	}
	case V_PORTS: {
		const struct conf_portlist *pl = dst;

		for (i = 0; i < pl->n; i++)
			sb_printf(&b, "%s%u", i ? ", " : "", (unsigned)pl->v[i]);
		if (pl->n)
			pair_add(ps, k->name, b.p);
		break;
	}
	case V_WHEN_HEADER: {
		const struct conf_authz_rule *r = base;

		for (i = 0; i < r->n_headers; i++) {
			char key[NAME_MAX_LEN + 32];

			if (r->headers[i].negate != (int)k->min)
				continue;
			snprintf(key, sizeof(key), "%s%s", k->name, r->headers[i].name);
			b.len = 0;
			pats_text(&b, &r->headers[i].values, strlen(key));
			pair_add(ps, key, b.p);
		}
		break;
	}
	}
	free(b.p);
}

static void pairs_free(struct pairs *ps)
{
	size_t i;

	for (i = 0; i < ps->n; i++) {
		free(ps->v[i].key);
		free(ps->v[i].value);
	}
	free(ps->v);
	memset(ps, 0, sizeof(*ps));
}

#define KEY_ALIGN_MAX 40       /* longer keys are not padded to */

/* "[kind name]" and its pairs, keys aligned; nothing for an unnamed section without pairs */
static void write_section(struct sb *out, const char *kind, const char *name, const struct pairs *ps)
{
	size_t i, w = 0;

	if (!ps->n && !name)
		return;
	sb_printf(out, "\n[%s%s%s]\n", kind, name ? " " : "", name ? name : "");
	for (i = 0; i < ps->n; i++)
		if (strlen(ps->v[i].key) > w && strlen(ps->v[i].key) <= KEY_ALIGN_MAX)
			w = strlen(ps->v[i].key);
	for (i = 0; i < ps->n; i++) {
		size_t kl = strlen(ps->v[i].key), vl = strlen(ps->v[i].value);

		if ((kl > w ? kl : w) + 3 + vl > CONF_LINE_MAX)
			sb_printf(out, "%s=%s\n", ps->v[i].key, ps->v[i].value);  /* as short as the input was */
		else
			sb_printf(out, "%-*s = %s\n", (int)w, ps->v[i].key, ps->v[i].value);
	}
}

/* One section. With parent (a [destination S/SUBSET] override), only the
 * pairs that differ from the parent's are written, and nothing at all when
 * none does (the namespace, which only picks the service, does not count). */
static void render_section(struct sb *out, const struct conf *c, const struct section_kind *k,
                           const char *name, const void *base, const void *parent)
{
	struct pairs ps = { 0 }, pp = { 0 };
	size_t i, j, differ = 0;

	for (i = 0; i < k->n_keys; i++)
		render_key(&ps, c, &k->keys[i], base);
	if (parent) {
		for (i = 0; i < k->n_keys; i++)
			render_key(&pp, c, &k->keys[i], parent);
		for (i = 0; i < ps.n; i++) {
			for (j = 0; j < pp.n; j++)
				if (!strcmp(ps.v[i].key, pp.v[j].key) && !strcmp(ps.v[i].value, pp.v[j].value))
					break;
			if (j < pp.n && strcmp(ps.v[i].key, "namespace")) {
				free(ps.v[i].key);
				free(ps.v[i].value);
				memmove(&ps.v[i], &ps.v[i + 1], (ps.n - i - 1) * sizeof(*ps.v));
				ps.n--;
				i--;
			} else {
				differ += !!strcmp(ps.v[i].key, "namespace");
			}
		}
		pairs_free(&pp);
		if (!differ) {
			pairs_free(&ps);
			return;
		}
	}
	write_section(out, k->name, name, &ps);
	pairs_free(&ps);
}

/* [authorization NAME] with its first rule when that has no name, then one
 * [authorization NAME/RULE] per named rule */
static void authz_render(struct sb *out, const struct conf *c)
{
	const struct section_kind *k = &sections[SEC_AUTHZ];
	struct pairs ps = { 0 };
	char name[600];
	size_t i, j, r;

	for (i = 0; i < c->n_authzs; i++) {
		const struct conf_authz *p = &c->authzs[i];

		for (j = 0; j < k->n_keys; j++)
			if (!(k->keys[j].flags & K_RULE))
				render_key(&ps, c, &k->keys[j], p);
			else if (p->n_rules && !p->rules[0].name)
				render_key(&ps, c, &k->keys[j], &p->rules[0]);
		write_section(out, k->name, p->name, &ps);
		pairs_free(&ps);
		for (r = 0; r < p->n_rules; r++) {
			if (!p->rules[r].name)
				continue;
			for (j = 0; j < k->n_keys; j++)
				if (k->keys[j].flags & K_RULE)
					render_key(&ps, c, &k->keys[j], &p->rules[r]);
			snprintf(name, sizeof(name), "%s/%s", p->name, p->rules[r].name);
			write_section(out, k->name, name, &ps);
			pairs_free(&ps);
		}
	}
}

static void destination_render(struct sb *out, const struct conf *c)
{
	const struct section_kind *k = &sections[SEC_DESTINATION];
	char name[160];
	size_t i, j;

	for (i = 0; i < c->n_destinations; i++) {
		const struct conf_destination *d = &c->destinations[i];

		render_section(out, c, k, d->svc->name, d, NULL);
		for (j = 0; j < d->n_subsets; j++) {
			struct conf_destination one;

			memset(&one, 0, sizeof(one));
			one.svc = d->svc;
			one.policy = d->subsets[j].policy;
			snprintf(name, sizeof(name), "%s/%s", d->svc->name, d->subsets[j].name);
			render_section(out, c, k, name, &one, d);
		}
	}
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

/* one section kind, every instance, the way conf_render writes it */
static void render_kind(struct sb *out, const struct conf *c, const struct section_kind *k)
{
	size_t i;

	if (k->render) {
		k->render(out, c);
	} else if (k->nth) {
		const char *name;
		const void *base;

		for (i = 0; (base = k->nth(c, i, &name)); i++)
			render_section(out, c, k, name, base, NULL);
	} else {
		render_section(out, c, k, NULL, (const char *)c + k->conf_off, NULL);
	}
}

char *conf_render(const struct conf *c)
{
	struct sb out = { 0 };
	size_t s;

	sb_add(&out, "");
	if (!c)
		return out.p;
	comment_path(&out, "effective configuration of ", c->path);
	if (c->mesh_path)
		comment_path(&out, "with the mesh part from ", c->mesh_path);
	sb_add(&out, "; defaults are filled in; this text loads back to the same configuration\n");
	for (s = 0; s < SEC_COUNT; s++)
		render_kind(&out, c, &sections[s]);
	return out.p;
}

/* the mesh part as a controller sends it: what conf_render writes for the
 * mesh sections, with the hook's endpoints added and its authorizations only */
char *conf_render_mesh(const struct conf *c, const struct conf_snapshot_hook *h)
{
	struct sb out = { 0 };
	struct conf tmp;
	size_t s, i, j;

	sb_add(&out, "");
	for (s = 0; s < SEC_COUNT; s++) {
		const struct section_kind *k = &sections[s];

		if (k->part != PART_MESH || s == SEC_CONTROLLER || s == SEC_DASHBOARD)
			continue;
		if (s == SEC_SERVICE && h && h->endpoints) {
			for (i = 0; i < c->n_services; i++) {
				struct pairs ps = { 0 };
				char *more = h->endpoints(h->ctx, &c->services[i]);

				for (j = 0; j < k->n_keys; j++)
					render_key(&ps, c, &k->keys[j], &c->services[i]);
				for (char *l = more, *nl; l && *l; l = nl + 1) {
					if (!(nl = strchr(l, '\n')))
						break;
					*nl = '\0';
					pair_add(&ps, "endpoint", l);
				}
				free(more);
				write_section(&out, k->name, c->services[i].name, &ps);
				pairs_free(&ps);
			}
		} else if (s == SEC_AUTHZ && h && h->keep_authz) {
			/* authz_render over the kept policies only */
			struct conf_authz *kept = c->n_authzs ? xmalloc(c->n_authzs * sizeof(*kept)) : NULL;

			tmp = *c;
			tmp.n_authzs = 0;
			for (i = 0; i < c->n_authzs; i++)
				if (h->keep_authz(h->ctx, &c->authzs[i]))
					kept[tmp.n_authzs++] = c->authzs[i];
			tmp.authzs = kept;
			authz_render(&out, &tmp);
			free(kept);
		} else {
			render_kind(&out, c, k);
		}
	}
	return out.p;
}
