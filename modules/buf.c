/*
 * buf: the block free list. Blocks of BUF_SIZE are recycled through a short
 * LIFO (hot in cache); larger buffers, only needed for heads above BUF_SIZE,
 * are plain malloc/free. The pool keeps at most BUF_POOL_MAX spare blocks so a
 * burst does not pin memory forever.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"

#define BUF_POOL_MAX 64

static void *pool[BUF_POOL_MAX];
static size_t pool_n;
size_t buf_blocks_in_use;

static char *block_get(void)
{
	buf_blocks_in_use++;
	if (pool_n)
		return pool[--pool_n];
	return malloc(BUF_SIZE);
}

static void block_put(char *p, uint32_t cap)
{
	buf_blocks_in_use--;
	if (cap == BUF_SIZE && pool_n < BUF_POOL_MAX)
		pool[pool_n++] = p;
	else
		free(p);
}

int buf_reserve(struct buf *b, size_t need)
{
	char *p;
	size_t size;

	if (!b->p) {
		size = need > BUF_SIZE ? need : BUF_SIZE;
		if (size == BUF_SIZE)
			p = block_get();
		else {
			p = malloc(size);
			if (p)
				buf_blocks_in_use++;
		}
		if (!p) {
			if (size == BUF_SIZE)
				buf_blocks_in_use--;
			return -1;
		}
		b->p = p;
		b->cap = (uint32_t)size;
		b->off = b->len = 0;
		return 0;
	}
	if (b->cap - b->off - b->len >= need)
		return 0;
	if (b->cap - b->len >= need) {
		memmove(b->p, b->p + b->off, b->len);
		b->off = 0;
		return 0;
	}
	size = b->len + need;
	p = malloc(size);
	if (!p)
		return -1;
	memcpy(p, b->p + b->off, b->len);
	block_put(b->p, b->cap);
	buf_blocks_in_use++;
	b->p = p;
	b->cap = (uint32_t)size;
	b->off = 0;
	return 0;
}

size_t buf_prepare(struct buf *b)
{
	if (!b->p) {
		if (buf_reserve(b, BUF_SIZE) < 0)
			return 0;
	} else if (b->off && b->cap - b->off - b->len < BUF_SIZE / 2) {
		memmove(b->p, b->p + b->off, b->len);
		b->off = 0;
	}
	return b->cap - b->off - b->len;
}

void buf_consume(struct buf *b, size_t n)
{
	b->off += (uint32_t)n;
	b->len -= (uint32_t)n;
	if (!b->len)
		b->off = 0;
}

int buf_append(struct buf *b, const void *data, size_t n)
{
	if (buf_reserve(b, n) < 0)
		return -1;
	memcpy(buf_tail(b), data, n);
	b->len += (uint32_t)n;
	return 0;
}

void buf_release(struct buf *b)
{
	if (b->p && !b->len) {
		block_put(b->p, b->cap);
		b->p = NULL;
		b->off = b->cap = 0;
	}
}

void buf_free(struct buf *b)
{
	if (b->p) {
		block_put(b->p, b->cap);
		b->p = NULL;
	}
	b->off = b->len = b->cap = 0;
}

static int strbuf_grow(struct strbuf *s, size_t n)
{
	size_t cap;
	char *p;

	if (s->oom)
		return -1;
	if (s->len + n + 1 <= s->cap)
		return 0;
	cap = s->cap ? s->cap : 256;
	while (cap < s->len + n + 1)
		cap *= 2;
	p = realloc(s->p, cap);
	if (!p) {
		s->oom = 1;
		return -1;
	}
	s->p = p;
	s->cap = cap;
	return 0;
}

char *strbuf_reserve(struct strbuf *s, size_t n)
{
	return strbuf_grow(s, n) < 0 ? NULL : s->p + s->len;
}

void strbuf_commit(struct strbuf *s, char *end)
{
	s->len = (size_t)(end - s->p);
	s->p[s->len] = 0;
}

void strbuf_append(struct strbuf *s, const char *data, size_t n)
{
	if (strbuf_grow(s, n) < 0)
		return;
	memcpy(s->p + s->len, data, n);
	s->len += n;
	s->p[s->len] = 0;
}

void strbuf_puts(struct strbuf *s, const char *str)
{
	strbuf_append(s, str, strlen(str));
}

void strbuf_printf(struct strbuf *s, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (strbuf_grow(s, 128) < 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(s->p + s->len, s->cap - s->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= s->cap - s->len) {
		if (strbuf_grow(s, (size_t)n) < 0)
			return;
		va_start(ap, fmt);
		vsnprintf(s->p + s->len, s->cap - s->len, fmt, ap);
		va_end(ap);
	}
	s->len += (size_t)n;
}

void strbuf_free(struct strbuf *s)
{
	free(s->p);
	s->p = NULL;
	s->len = s->cap = 0;
	s->oom = 0;
}

/* length of the valid UTF-8 sequence at s (of n bytes), 0 if invalid (RFC 3629) */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len, i;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

/* bytes a JSON string carries as they are: printable ASCII but '"', '\\' and '<' (so
 * that no "</script>" ever appears in a page embedding the JSON) */
static const unsigned char json_plain[256] = {
	[0x20 ... 0x21] = 1, [0x23 ... 0x3b] = 1, [0x3d ... 0x5b] = 1, [0x5d ... 0x7e] = 1,
};

/* the escaper of both: up to end, or (end = NULL) up to the NUL in one pass */
static char *json_escape_to(char *o, const char *lim, const char *v, const char *end)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)v, *e = (const unsigned char *)end;
	unsigned char c = 0;
	size_t l;

	for (;;) {
		/* one pass copies and looks for the end (json_plain['\0'] is 0) */
		while (p != e && json_plain[c = *p]) {
			if (o >= lim)   /* (o may start past it: the caller's fixed bytes) */
				return NULL;
			*o++ = (char)c;
			p++;
		}
		if (p == e || (!e && !c))
			return o;
		if (lim - o < 6)
			return NULL;
		if (c == '"' || c == '\\') {
			*o++ = '\\';
			*o++ = (char)c;
			l = 1;
		} else if (c < 0x20 || c == 0x7f || c == '<') {
			memcpy(o, "\\u00", 4);
			o[4] = hex[c >> 4];
			o[5] = hex[c & 15];
			o += 6;
			l = 1;
		} else if ((l = utf8_len(p, e ? (size_t)(e - p) : 4))) {   /* (a NUL is not a continuation byte) */
			memcpy(o, p, l);
			o += l;
		} else {
			memcpy(o, "\\ufffd", 6);
			o += 6;
			l = 1;
		}
		p += l;
	}
}

char *json_escape_n(char *o, const char *lim, const char *v, size_t n)
{
	return json_escape_to(o, lim, v, v + n);
}

char *json_escape(char *o, const char *lim, const char *v)
{
	return json_escape_to(o, lim, v, NULL);
}

void strbuf_json_strn(struct strbuf *out, const char *v, size_t n)
{
	char *o = strbuf_reserve(out, 6 * n + 2);

	if (!o)
		return;
	*o++ = '"';
	o = json_escape_n(o, o + 6 * n, v, n);   /* (always fits) */
	*o++ = '"';
	strbuf_commit(out, o);
}

void strbuf_json_str(struct strbuf *out, const char *v)
{
	strbuf_json_strn(out, v ? v : "", v ? strlen(v) : 0);
}

char *str_join(char *out, size_t cap, ...)
{
	char *o = out, *end = out + cap - 1;
	const char *s;
	va_list ap;

	va_start(ap, cap);
	while ((s = va_arg(ap, const char *))) {
		size_t n = strlen(s);

		if (n > (size_t)(end - o))
			n = (size_t)(end - o);
		memcpy(o, s, n);
		o += n;
	}
	va_end(ap);
	*o = 0;
	return out;
}

char *u64_dec(char *end, uint64_t v)
{
	do
		*--end = (char)('0' + v % 10);
	while (v /= 10);
	return end;
}

/* this process's resident memory (VmRSS) in KiB, or -1: the memory gauges */
long buf_rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmRSS:", 6))
			v = atol(line + 6);
	fclose(f);
	return v;
}

char *buf_read_line(const char *path, size_t max, char *why, size_t wn)
{
	FILE *f = fopen(path, "rb");
	char *b, *e;
	size_t n;

	if (!f) {
		snprintf(why, wn, "%s", strerror(errno));
		return NULL;
	}
	if (!(b = malloc(max + 2))) {
		fclose(f);
		snprintf(why, wn, "out of memory");
		return NULL;
	}
	n = fread(b, 1, max + 1, f);
	fclose(f);
	b[n] = '\0';
	for (e = b + n; e > b && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'); e--)
		e[-1] = '\0';
	if (n > max)
		snprintf(why, wn, "longer than %zu bytes", max);
	else if (!*b)
		snprintf(why, wn, "the file is empty");
	else if (strpbrk(b, "\r\n") || strlen(b) != (size_t)(e - b))
		snprintf(why, wn, "more than one line");
	else
		return b;
	free(b);
	return NULL;
}
