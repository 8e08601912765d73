/*
 * conf: INI files -> one typed, validated, immutable, refcounted config object.
 *
 * A proxy.ini may hold the workload part ([workload], [listen], [proxy], [log],
 * [control]) and the mesh part ([mesh], [service NAME]) in one file, or point at
 * a separate mesh.ini with `[control] mesh = mesh.ini` (relative to the file
 * that names it). Both parts go through the same handler, so files and (later)
 * controller pushes share one parser and one validator.
 *
 * Errors are "file:line: message" with a suggestion for misspelled names.
 * A loaded config never changes; readers hold a reference (conf_ref) for as
 * long as they use it, so a reload is a pointer swap.
 */
#ifndef MESH_CONF_H
#define MESH_CONF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct conf_addr {
	struct sockaddr_storage ss;  /* AF_INET or AF_INET6, port set */
	socklen_t len;
	char text[64];               /* normalised, e.g. "127.0.0.1:9080" or "[::1]:80" */
	int set;                     /* 1 when configured; 0 = absent/off */
};

struct conf_label {
	char *key;
	char *value;
};

struct conf_labels {
	struct conf_label *v;
	size_t n;
};

struct conf_endpoint {
	struct conf_addr addr;
	struct conf_labels labels;   /* e.g. version=v1 */
	int line;                    /* where it was defined */
};

struct conf_service {
	char *name;                  /* "reviews" */
	char *namespace;             /* default "default" */
	uint16_t port;               /* service port, default 80 */
	struct conf_endpoint *endpoints;
	size_t n_endpoints;
	struct conf_addr listen;     /* optional per-service local outbound port ([listen] service.NAME) */
	const char *file;            /* where it was defined (points into conf->files) */
	int line;
};

struct conf_workload {
	char *service;               /* may be NULL for a proxy that is only a client */
	char *namespace;             /* default "default" */
	char *service_account;       /* default = service */
	struct conf_labels labels;
	char *version;               /* value of the "version" label, or NULL */
	struct conf_addr app;        /* where the local app listens */
};

struct conf_listen {
	struct conf_addr inbound;    /* default 127.0.0.1:15006 when an app is configured */
	struct conf_addr outbound;   /* default 127.0.0.1:15001 */
	struct conf_addr admin;      /* default 127.0.0.1:15000 */
};

struct conf_proxy {
	size_t max_request_line;     /* default 8k */
	size_t max_header_size;      /* whole head, default 32k */
	size_t max_headers;          /* default 100 */
	/* durations in milliseconds; 0 = disabled where the doc says so */
	uint32_t header_timeout;     /* full request head must arrive within, default 10s */
	uint32_t idle_timeout;       /* idle client keep-alive connection, default 60s */
	uint32_t upstream_idle_timeout; /* idle pooled upstream connection, default 30s */
	uint32_t connect_timeout;    /* default 10s */
	uint32_t request_timeout;    /* whole request, default 0 = none (Istio route timeout) */
	uint32_t stream_idle_timeout;/* no bytes either way, default 300s */
	uint32_t drain_timeout;      /* SIGTERM drain deadline, default 5s */
	size_t max_idle_per_endpoint;/* idle pooled connections kept per endpoint, default 64 */
};

enum conf_log_level { CONF_LOG_ERROR = 0, CONF_LOG_WARN, CONF_LOG_INFO, CONF_LOG_DEBUG };

struct conf_log {
	char *access_log;            /* NULL = stderr; "off" -> access_log_off = 1; else a file path */
	int access_log_off;
	int access_log_json;         /* access_log_format = json */
	enum conf_log_level level;   /* default info */
};

struct conf_mesh {
	char *domain;                /* cluster DNS domain, default "cluster.local" */
};

struct conf {
	int refs;                    /* conf_ref / conf_unref */
	char *path;                  /* the file conf_load was given */
	char **files;                /* every file read (path strings kept for conf_service.file) */
	size_t n_files;
	struct conf_workload workload;
	struct conf_listen listen;
	struct conf_proxy proxy;
	struct conf_log log;
	struct conf_mesh mesh;
	struct conf_service *services;
	size_t n_services;
	char *mesh_path;             /* [control] mesh = ..., resolved, or NULL */
	char **warnings;             /* "file:line: warning: ..." lines, for the log */
	size_t n_warnings;
};

/*
 * Loads and validates path (and any mesh file it names). On error returns NULL
 * and writes "file:line: message" (first error; more lines may follow, one per
 * error, separated by '\n') into err.
 */
struct conf *conf_load(const char *path, char *err, size_t errlen);

/* Same, from a string; name is used in messages. */
struct conf *conf_load_string(const char *name, const char *text, char *err, size_t errlen);

struct conf *conf_ref(struct conf *c);
void conf_unref(struct conf *c);

/*
 * Finds the service a Host (or absolute-form authority) names: "reviews",
 * "reviews:9080", "reviews.default", "reviews.default.svc",
 * "reviews.default.svc.cluster.local" (with the configured domain), optionally
 * with ":port". Returns NULL when none matches. *port_ok is set to 0 when a
 * port was given and is not the service's port.
 */
const struct conf_service *conf_find_service(const struct conf *c, const char *host,
                                             size_t len, int *port_ok);

/* the effective configuration as INI text (malloc'd, NUL-terminated) */
char *conf_render(const struct conf *c);

/* value parsers, shared with other modules and tests; 0 ok, -1 bad */
int conf_parse_duration(const char *s, uint32_t *ms);  /* "250ms", "5s", "2m", "1h", "0" */
int conf_parse_size(const char *s, size_t *out);       /* "512", "64k", "1m", "1g" (binary units) */
int conf_parse_addr(const char *s, struct conf_addr *a, int connect_target);
	/* "127.0.0.1:9080", "[::1]:80", ":15001" (0.0.0.0, or 127.0.0.1 when connect_target), "9080" likewise */
int conf_parse_labels(const char *s, struct conf_labels *l);  /* "app=reviews, version=v2" */

const char *conf_label(const struct conf_labels *l, const char *key); /* value or NULL */

/* added by the conf module (append-only): */
int conf_parse_bool(const char *s, int *out);  /* on/off, true/false, yes/no, 1/0 (any case) */
void conf_labels_free(struct conf_labels *l);  /* frees what conf_parse_labels filled; leaves it empty */

#endif
