/*
 * route: VirtualService semantics. Given the config and a request, finds the
 * first rule (in file order) whose hosts cover the request and whose match
 * blocks accept it, and picks a weighted destination. Pure functions over the
 * immutable config plus a per-config index (struct route_table) built once when
 * a config is installed: a host's rules are found by one hash probe, and among
 * them only the candidates its path, headers and method select are evaluated,
 * not every rule (route.c says how first-match order is kept).
 */
#ifndef MESH_ROUTE_H
#define MESH_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "http1.h"

/* the parts of a request the rules look at */
struct route_req {
	const char *method;
	size_t method_len;
	const char *path;            /* without the query */
	size_t path_len;
	const char *query;           /* after '?', or NULL */
	size_t query_len;
	const struct http1_header *headers;
	size_t n_headers;
	const struct conf_labels *source;  /* labels of the calling workload (match.source) */
};

struct route_table;

/* index of cf's routes; NULL on out of memory (the config must then be refused) */
struct route_table *route_table_build(const struct conf *cf);
void route_table_free(struct route_table *t);

/*
 * The first matching rule for a request to host (the authority, port allowed)
 * that resolved to service svc (NULL when the host names no service). *block is
 * set to the index of the match block that matched (-1: the rule has none).
 * NULL: no rule applies (the request goes to the whole service, if any).
 */
const struct conf_route *route_match(const struct conf *cf, const struct route_table *t,
                                     const char *host, size_t host_len,
                                     const struct conf_service *svc, const struct route_req *r,
                                     int *block);

/* weighted choice among rt->to; rnd: a random number */
const struct conf_dest *route_pick(const struct conf_route *rt, uint64_t rnd);

/*
 * rewrite.uri: the new path (query kept) for a request matched by block of rt,
 * written to out (NUL-terminated); returns its length, or -1 if it does not fit.
 */
int route_rewrite_path(const struct conf_route *rt, int block, const char *path, size_t path_len,
                       const char *query, size_t query_len, char *out, size_t cap);

/* does string s match m (exact / prefix / regex)? */
int route_strmatch(const struct conf_strmatch *m, const char *s, size_t n);

#endif
