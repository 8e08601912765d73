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
	const struct conf_destination *destination;  /* its [destination] rule or NULL (= conf_destination_of) */
	char *service_account;       /* service_account: identity of its endpoints, default = name (issue #4) */
	int sidecar;                 /* sidecar = yes (default): endpoints are mesh proxies' inbound ports (auto mTLS); no = plain apps */
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
	size_t retry_buffer;         /* request bodies up to this size can be replayed for a retry, default 64k */
	uint32_t retry_budget_percent; /* retries may add at most this % to the requests in flight, default 20 */
	int tap;                     /* admin /tap streams live requests (mesh tap / top); default off */
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
	char *trust_domain;          /* SPIFFE trust domain, default = domain (issue #4) */
};

/* ------------------------------------------------------------------ traffic management (issue #3) */

#include <regex.h>

/* how a string is matched (Istio StringMatch, plus presence tests for headers/queries) */
enum conf_match_kind {
	CONF_MATCH_EXACT = 0,        /* "jason" or "exact:jason" */
	CONF_MATCH_PREFIX,           /* "prefix:/api" */
	CONF_MATCH_REGEX,            /* "regex:^v[12]$" - POSIX ERE, whole-string (anchored like Istio/RE2 full match) */
	CONF_MATCH_PRESENT,          /* "present" (headers/query only) */
	CONF_MATCH_ABSENT,           /* "absent" (headers/query only) */
};

struct conf_strmatch {
	enum conf_match_kind kind;
	char *value;                 /* literal, prefix or the regex source */
	regex_t *re;                 /* compiled, for CONF_MATCH_REGEX (REG_EXTENDED|REG_NOSUB, anchored) */
};

struct conf_namematch {              /* a header (name lowercased) or query parameter condition */
	char *name;
	struct conf_strmatch m;
};

/* one match block (Istio HTTPMatchRequest): every condition set must hold */
struct conf_match {
	struct conf_strmatch path;   /* match.path (exact/prefix/regex) */
	int has_path;
	char *method;                /* match.method (exact, uppercase), NULL = any */
	struct conf_namematch *headers;  /* match.header.NAME */
	size_t n_headers;
	struct conf_namematch *query;    /* match.query.NAME (exact/regex/present/absent) */
	size_t n_query;
	struct conf_labels source;   /* match.source = app=productpage, version=v1: labels of the calling workload */
};

/* a destination of a route: a service, optionally one subset of it */
struct conf_dest {
	const struct conf_service *svc;  /* points into conf->services */
	int subset;                  /* index into the service's destination subsets, -1 = whole service */
	uint32_t weight;             /* 0..100; the weights of one `to` add up to 100 */
};

struct conf_header_op {
	char *name;                  /* lowercased */
	char *value;
};

/* Istio Headers.HeaderOperations */
struct conf_header_ops {
	struct conf_header_op *set;  /* request.set.NAME = value: replace */
	size_t n_set;
	struct conf_header_op *add;  /* request.add.NAME = value: append */
	size_t n_add;
	char **remove;               /* request.remove = a, b */
	size_t n_remove;
};

/* retry_on bits (Envoy/Istio retryOn names) */
#define CONF_RETRY_5XX             0x01  /* "5xx" */
#define CONF_RETRY_GATEWAY_ERROR   0x02  /* "gateway-error": 502, 503, 504 */
#define CONF_RETRY_CONNECT_FAILURE 0x04  /* "connect-failure" */
#define CONF_RETRY_RESET           0x08  /* "reset": upstream closed/reset before a response */
#define CONF_RETRY_STATUS_CODES    0x10  /* "retriable-status-codes": the codes in retry_status_codes */

/* one rule of a VirtualService: [route HOST/NAME], tried in file order */
struct conf_route {
	char *name;                  /* "reviews/jason" (section name) */
	char **hosts;                /* hosts = reviews, *.example.com (default: the part before '/') */
	size_t n_hosts;
	struct conf_match *matches;  /* OR of blocks: match.* is block 1, match.2.* block 2 ...; none = match all */
	size_t n_matches;
	struct conf_dest *to;        /* to = v1 80, v2 20 (subsets of the host's service, or service[/subset]) */
	size_t n_to;
	char *rewrite_uri;           /* rewrite.uri: replaces the matched prefix (or whole path) */
	char *rewrite_authority;     /* rewrite.authority */
	char *redirect;              /* redirect = /path or http://host/path */
	int redirect_code;           /* redirect.code, default 301 */
	int direct_status;           /* direct_response = 503 (0 = none) */
	char *direct_body;           /* direct_response.body */
	struct conf_header_ops req_headers;   /* request.set.* / request.add.* / request.remove */
	struct conf_header_ops resp_headers;  /* response.set.* / response.add.* / response.remove */
	uint32_t timeout;            /* timeout (ms), 0 = [proxy] request_timeout */
	uint32_t retries;            /* retries = N attempts after the first, 0 = none */
	uint32_t per_try_timeout;    /* per_try_timeout (ms), 0 = none */
	unsigned retry_on;           /* CONF_RETRY_*, default 5xx|connect-failure|reset when retries > 0 */
	int *retry_status_codes;     /* retry_status_codes = 503, 429 */
	size_t n_retry_status_codes;
	uint32_t fault_delay;        /* fault.delay (ms) */
	double fault_delay_percent;  /* fault.delay_percent, default 100 */
	int fault_abort;             /* fault.abort = HTTP status (0 = none) */
	double fault_abort_percent;  /* fault.abort_percent, default 100 */
	struct conf_dest mirror;     /* mirror = v2 (or service[/subset]); mirror.svc NULL = none */
	double mirror_percent;       /* mirror_percent, default 100 */
	const char *file;
	int line;
};

enum conf_lb {
	CONF_LB_PEAK_EWMA = 0,       /* peak_ewma: P2C on latency x load (Linkerd's default, ours) */
	CONF_LB_ROUND_ROBIN,         /* round_robin */
	CONF_LB_LEAST_REQUEST,       /* least_request: P2C on active requests (alias LEAST_CONN, with a warning) */
	CONF_LB_RANDOM,              /* random */
	CONF_LB_RING_HASH,           /* ring_hash: consistent hash (Ketama ring) */
	CONF_LB_MAGLEV,              /* maglev: consistent hash (Maglev table) */
};

enum conf_hash_on { CONF_HASH_NONE = 0, CONF_HASH_HEADER, CONF_HASH_COOKIE, CONF_HASH_QUERY, CONF_HASH_SOURCE_IP };

/* DestinationRule trafficPolicy: load balancer, connection pool, outlier detection */
struct conf_policy {
	enum conf_lb lb;             /* load_balancer */
	enum conf_hash_on hash_on;   /* hash_on = header:NAME | cookie:NAME | query:NAME | source_ip */
	char *hash_key;              /* the header (lowercased), cookie or query name */
	uint32_t max_connections;    /* 0 = unlimited (Istio tcp.maxConnections) */
	uint32_t max_pending_requests;       /* 0 = unlimited (http.http1MaxPendingRequests) */
	uint32_t max_requests_per_connection;/* 0 = unlimited (http.maxRequestsPerConnection) */
	uint32_t max_concurrent_requests;    /* 0 = unlimited (http.http2MaxRequests) */
	uint32_t connect_timeout;    /* ms, 0 = [proxy] connect_timeout */
	uint32_t outlier_consecutive_5xx;          /* outlier.consecutive_5xx, 0 = off */
	uint32_t outlier_consecutive_gateway_errors;/* outlier.consecutive_gateway_errors, 0 = off */
	uint32_t outlier_interval;   /* outlier.interval (ms), default 10s */
	uint32_t outlier_base_ejection_time; /* outlier.base_ejection_time (ms), default 30s */
	uint32_t outlier_max_ejection_percent; /* default 10 */
	uint32_t outlier_min_health_percent;   /* default 0 */
};

struct conf_subset {
	char *name;                  /* "v1" */
	struct conf_labels labels;   /* subset.v1 = version=v1 */
	struct conf_policy policy;   /* the destination's policy with [destination NAME/SUBSET] overrides applied */
	int line;
};

/* DestinationRule: [destination SERVICE], overrides per subset in [destination SERVICE/SUBSET] */
struct conf_destination {
	const struct conf_service *svc;  /* the service it applies to (points into conf->services) */
	struct conf_policy policy;
	struct conf_subset *subsets;
	size_t n_subsets;
	const char *file;
	int line;
};

/* ------------------------------------------------------------------ security (issue #4) */

/* PeerAuthentication mtls.mode */
enum conf_mtls { CONF_MTLS_UNSET = 0, CONF_MTLS_DISABLE, CONF_MTLS_PERMISSIVE, CONF_MTLS_STRICT };

struct conf_port_mtls {
	uint16_t port;               /* port.9080 = DISABLE (Istio portLevelMtls, the workload's app port) */
	enum conf_mtls mode;
};

/* [peer_authentication NAME] */
struct conf_peer_auth {
	char *name;
	char *namespace;             /* namespace = x; NULL (or the root namespace istio-system) = mesh-wide */
	struct conf_labels selector; /* selector = app=reviews; empty = the whole namespace */
	enum conf_mtls mode;         /* mode = STRICT | PERMISSIVE | DISABLE | UNSET (inherit) */
	struct conf_port_mtls *ports;
	size_t n_ports;
	const char *file;
	int line;
	char *id;                    /* "namespace/name" (mesh-wide: "/name"), what authz_peer_mode reports */
};

enum conf_authz_action { CONF_AUTHZ_ALLOW = 0, CONF_AUTHZ_DENY, CONF_AUTHZ_AUDIT };

struct conf_authz_rule;          /* from / to / when of one rule; defined and used by the authz module */

/* A string pattern of a rule, as Istio writes them: "x" exact, "x*" prefix,
 * "*x" suffix, "*" anything (present). Parsed once at load time. */
enum conf_pat_kind { CONF_PAT_EXACT = 0, CONF_PAT_PREFIX, CONF_PAT_SUFFIX, CONF_PAT_ANY };

struct conf_pat {
	char *s;                     /* without the '*'; lowercase for hosts, uppercase for methods */
	size_t len;
	enum conf_pat_kind kind;
};

struct conf_pats {                   /* OR of patterns; n == 0: the field is not set */
	struct conf_pat *v;
	size_t n;
};

struct conf_cidr {                   /* an ip block: 10.0.0.0/8, 2001:db8::/32, a bare address = /32 or /128 */
	int family;                  /* AF_INET or AF_INET6 */
	unsigned bits;               /* prefix length */
	uint8_t addr[16];            /* network address (host bits cleared), 4 or 16 bytes used */
};

struct conf_cidrs {
	struct conf_cidr *v;
	size_t n;
};

struct conf_portlist {
	uint16_t *v;
	size_t n;
};

struct conf_authz_header {           /* when.header.NAME = values / when.not_header.NAME = values */
	char *name;                  /* lowercase */
	int negate;                  /* when.not_header: matches when no value matches (or the header is absent) */
	struct conf_pats values;
};

/* One rule (Istio rules[]: one from.source, one to.operation, the when
 * conditions). Every field that is set must match; an empty rule matches
 * every request. The not_ forms match when none of their values does,
 * including when the request has no such value (plaintext: no principal). */
struct conf_authz_rule {
	char *name;                  /* RULE of [authorization NAME/RULE]; NULL = the rule in [authorization NAME] itself */
	struct conf_pats principals, not_principals;  /* from.principals: "cluster.local/ns/NS/sa/SA" */
	struct conf_pats namespaces, not_namespaces;  /* from.namespaces: the NS of the peer's principal */
	struct conf_cidrs ip_blocks, not_ip_blocks;   /* from.ip_blocks: the source address */
	struct conf_pats methods, not_methods;        /* to.methods (uppercase) */
	struct conf_pats paths, not_paths;            /* to.paths, without the query */
	struct conf_portlist ports, not_ports;        /* to.ports: the destination (app) port */
	struct conf_pats hosts, not_hosts;            /* to.hosts: the Host header, case-insensitive */
	struct conf_authz_header *headers;            /* when.header.NAME, when.not_header.NAME: all must hold */
	size_t n_headers;
	const char *file;
	int line;
};

/* [authorization NAME], more rules in [authorization NAME/RULE] */
struct conf_authz {
	char *name;
	char *namespace;             /* NULL / istio-system = mesh-wide */
	struct conf_labels selector; /* empty = every workload of the namespace */
	enum conf_authz_action action;
	struct conf_authz_rule *rules;   /* OR of rules; none = matches nothing (an ALLOW then denies all) */
	size_t n_rules;
	const char *file;
	int line;
};

/* [control]: where the proxy gets its identity */
struct conf_control {
	struct conf_addr ca;         /* ca = 127.0.0.1:15012; unset = no identity, plaintext only */
	char *token_file;            /* token_file = reviews.token (from `mesh ca token`) */
	char *trust_bundle;          /* trust_bundle = root.crt (PEM), or ... */
	char *ca_fingerprint;        /* ca_fingerprint = sha256 hex of the root (pins it, bundle fetched from the CA) */
	char *key_file;              /* key_file: write the workload key here (0600); NULL = memory only */
	struct conf_addr controller; /* controller = 127.0.0.1:15010: the mesh part comes from `mesh controller` */
	char *snapshot_file;         /* snapshot_file: keep the last snapshot here, start from it (static stability) */
};

/* [controller]: `mesh controller` and `mesh up` (docs/protocol.md); unset
 * fields take the controller's defaults there */
struct conf_controller {
	struct conf_addr listen;     /* mTLS: /v1/register, /v1/snapshot (default 127.0.0.1:15010) */
	struct conf_addr admin;      /* plaintext, read-only: /proxies, /ready, /metrics (default 127.0.0.1:15014) */
	char *ca;                    /* ca = ca.ini: the CA that signs the controller's certificate (`mesh up` serves it) */
	uint32_t lease_ttl;          /* ms; 0 = default 15 s */
	int present;                 /* the file has a [controller] section: endpoints also come from registrations */
};

/* [tracing] (issue #6): mesh part, the same for every proxy (Istio meshConfig.defaultConfig.tracing) */
struct conf_tracing {
	double sampling;             /* percent of new traces sampled (no incoming decision), default 1 */
	struct conf_addr collector;  /* Zipkin v2 endpoint (POST /api/v2/spans); unset = spans are not sent */
	uint32_t max_queue;          /* finished spans waiting to be sent; beyond it they are dropped, default 1024 */
};

/* [dashboard] (issue #6): read by `mesh dashboard -c` and `mesh up` only, never sent to proxies */
struct conf_dashboard {
	struct conf_addr listen;     /* default 127.0.0.1:20001 */
	int off;                     /* listen = off: `mesh up` runs no dashboard */
	char *token_file;            /* its first line is the token (Bearer, or a basic-auth password) */
	char *basic_file;            /* its first line is USER:PASSWORD for basic auth */
	struct conf_addr prometheus; /* metrics from this Prometheus instead of scraping the proxies */
	uint32_t interval;           /* ms between scrapes, default 5 s */
	double warn_errors;          /* percent: an edge is orange above it, default 1 */
	double bad_errors;           /* ... red above it, default 10 */
	uint32_t max_spans;          /* span ring: count (default 10000) ... */
	size_t max_span_bytes;       /* ... and bytes (default 4 MiB) */
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
	struct conf_destination *destinations;  /* [destination ...], at most one per service */
	size_t n_destinations;
	struct conf_route *routes;   /* [route ...] in file order */
	size_t n_routes;
	struct conf_control control; /* [control] ca, token_file, trust_bundle ... */
	struct conf_peer_auth *peer_auths;   /* [peer_authentication ...] in file order */
	size_t n_peer_auths;
	struct conf_authz *authzs;   /* [authorization ...] in file order */
	size_t n_authzs;
	struct conf_controller controller; /* [controller] (only the controller reads it) */
	struct conf_tracing tracing; /* [tracing] sampling, collector, max_queue */
	struct conf_dashboard dashboard; /* [dashboard] (only the dashboard reads it) */
};

/* the destination rule of a service, or NULL */
const struct conf_destination *conf_destination_of(const struct conf *c, const struct conf_service *svc);
/* the service's policy for subset (-1 = whole service): defaults when no destination rule */
const struct conf_policy *conf_policy_of(const struct conf *c, const struct conf_service *svc, int subset);

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

/*
 * For `mesh check`: conf_load (text NULL) or conf_load_string (path = name),
 * listing every error (not only the first 50), and, when the config is
 * refused, handing its warnings over in *warnings ("file:line: warning: ..."
 * lines; the caller frees each and the array). A loaded config keeps its
 * warnings in c->warnings and leaves *warnings NULL.
 */
struct conf *conf_load_keep(const char *path, const char *text, char *err, size_t errlen, char ***warnings,
                            size_t *n_warnings);

/*
 * A proxy file with its mesh part given as text (a controller's snapshot)
 * instead of [control] mesh; mesh_name names it in messages.
 */
struct conf *conf_load_with_mesh(const char *path, const char *mesh_name, const char *mesh_text, char *err,
                                 size_t errlen);

/* What a controller adds when it renders a proxy's snapshot */
struct conf_snapshot_hook {
	void *ctx;
	/* extra `endpoint =` values of s ("ADDR labels"), each line ending in '\n'; malloc'd or NULL */
	char *(*endpoints)(void *ctx, const struct conf_service *s);
	/* 0 leaves an [authorization] out (it applies to other workloads); NULL keeps all */
	int (*keep_authz)(void *ctx, const struct conf_authz *a);
};

/* the mesh part only ([controller] left out), as a snapshot (malloc'd) */
char *conf_render_mesh(const struct conf *c, const struct conf_snapshot_hook *h);

#endif
