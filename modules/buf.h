/*
 * buf: byte buffers for connections. An all-zero struct buf is a valid empty
 * buffer with no storage; storage comes from a free list of BUF_SIZE blocks
 * when data arrives and goes back when the buffer drains, so an idle
 * keep-alive connection holds no buffer memory at all.
 */
#ifndef MESH_BUF_H
#define MESH_BUF_H

#include <stddef.h>
#include <stdint.h>

#define BUF_SIZE 16384

struct buf {
	char *p;        /* storage, NULL when none */
	uint32_t off;   /* start of unread data */
	uint32_t len;   /* bytes of unread data */
	uint32_t cap;   /* storage size (BUF_SIZE, or larger for an oversized head) */
};

static inline char *buf_data(const struct buf *b) { return b->p + b->off; }
static inline char *buf_tail(const struct buf *b) { return b->p + b->off + b->len; }
static inline size_t buf_space(const struct buf *b) { return b->p ? b->cap - b->off - b->len : 0; }

/* makes at least `need` bytes writable at the tail (allocates, compacts or grows); 0 / -1 */
int buf_reserve(struct buf *b, size_t need);
/* writable room after making the buffer as roomy as a standard block allows */
size_t buf_prepare(struct buf *b);
void buf_consume(struct buf *b, size_t n);
int buf_append(struct buf *b, const void *data, size_t n);
/* returns the storage to the pool when the buffer is empty */
void buf_release(struct buf *b);
/* frees the storage whatever it holds */
void buf_free(struct buf *b);
/* number of blocks currently allocated (for /metrics) */
extern size_t buf_blocks_in_use;

/* strbuf: a growable NUL-terminated string for rendering (metrics, config, logs) */
struct strbuf {
	char *p;        /* NULL until the first append */
	size_t len;
	size_t cap;
	int oom;        /* set when an allocation failed; the content is then truncated */
};

void strbuf_append(struct strbuf *s, const char *data, size_t n);
void strbuf_puts(struct strbuf *s, const char *str);
void strbuf_printf(struct strbuf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void strbuf_free(struct strbuf *s);
/* room for n more bytes (and the NUL): where they go, NULL when out of memory;
 * strbuf_commit(s, end) then takes what was written up to end */
char *strbuf_reserve(struct strbuf *s, size_t n);
void strbuf_commit(struct strbuf *s, char *end);
/* a JSON string value: quotes, backslashes, controls, DEL and '<' escaped, invalid
 * UTF-8 as U+FFFD, so the output always parses (NULL = ""); _strn: n bytes of v, NULs
 * included */
void strbuf_json_str(struct strbuf *s, const char *v);
void strbuf_json_strn(struct strbuf *s, const char *v, size_t n);
/* the same without the quotes, written at o but not past lim: the end, or NULL when
 * it did not fit (6 bytes per byte of v always do) */
char *json_escape(char *o, const char *lim, const char *v);
char *json_escape_n(char *o, const char *lim, const char *v, size_t n);

/* out = the strings given up to a NULL, joined, cut to cap - 1 bytes; returns out
 * (snprintf's "%s%s" without printf's cost, for per-request labels) */
char *str_join(char *out, size_t cap, ...) __attribute__((sentinel));
/* v in decimal, written backwards so that it ends at end; returns its first digit */
char *u64_dec(char *end, uint64_t v);

/* this process's resident memory (VmRSS) in KiB, or -1 */
long buf_rss_kib(void);

/*
 * a secret or a token kept in a file: its one line, trailing spaces and line
 * ends dropped (malloc'd); NULL with why ("No such file or directory", "the file
 * is empty", "more than one line", "longer than MAX bytes")
 */
char *buf_read_line(const char *path, size_t max, char *why, size_t wn);

#endif
