/*
 * check: `mesh check` (see check.h).
 *
 * Data enters as a file name (or a string) for check_load, which takes the
 * loader's own errors and warnings (conf_load_keep: every error, and the
 * warnings of a refused config too), or as a loaded struct conf for
 * check_conf, whose checks each add findings with the file and line of the
 * key they are about. The conf structs keep the line of a section, not of
 * each key, so ck_key_line() finds the key's line in the file text (read once
 * per file). Data leaves as struct check_report and check_print's lines.
 *
 * Levels: an error is a configuration that cannot work (a listener on an
 * address that is an endpoint, one endpoint with two identities); the rest
 * are warnings, because endpoints and clients the file does not list may
 * exist. Things conf.c already warns about (a subset or policy that selects
 * nothing, a service without endpoints, a shadowed rule, a DENY with the
 * empty rule) are not repeated here.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "authz.h"
#include "check.h"

#define CHECK_ERR_MAX (1u << 20)   /* room for the loader's errors */

/* ------------------------------------------------------------------ report */

static int ck_file_index(struct check_report *r, const char *name, size_t len)
{
	size_t i;
	char **more;
	char *copy;

	for (i = 0; i < r->n_files; i++)
		if (strlen(r->files[i]) == len && !memcmp(r->files[i], name, len))
			return (int)i;
	more = realloc(r->files, (r->n_files + 1) * sizeof(*r->files));
	copy = malloc(len + 1);
	if (!more || !copy) {
		free(copy);
		if (more)
			r->files = more;
		return -1;
	}
	memcpy(copy, name, len);
	copy[len] = '\0';
	r->files = more;
	r->files[r->n_files] = copy;
	return (int)r->n_files++;
}

/* takes text (malloc'd "file:line: ..."); file and line are read back from it */
static void ck_add_text(struct check_report *r, int error, char *text)
{
	const char *p, *q;
	struct check_msg *m;

	if (!text)
		return;
	if (r->n == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 16;
		struct check_msg *v = realloc(r->v, cap * sizeof(*v));

		if (!v) {
			free(text);
			return;
		}
		r->v = v;
		r->cap = cap;
	}
	m = &r->v[r->n];
	memset(m, 0, sizeof(*m));
	m->error = error;
	m->text = text;
	m->seq = r->n++;
	m->file = -1;
	/* "NAME:LINE: ", or "NAME: " (no line) */
	for (p = strchr(text, ':'); p; p = strchr(p + 1, ':')) {
		for (q = p + 1; *q >= '0' && *q <= '9'; q++)
			;
		if (q > p + 1 && *q == ':') {
			m->file = ck_file_index(r, text, (size_t)(p - text));
			m->line = atoi(p + 1);
			break;
		}
		if (p[1] == ' ')
			break;
	}
	if (m->file < 0 && (p = strstr(text, ": ")) != NULL)
		m->file = ck_file_index(r, text, (size_t)(p - text));
	if (error)
		r->n_errors++;
	else
		r->n_warnings++;
}

static void add(struct check_report *r, int error, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static void add(struct check_report *r, int error, const char *file, int line, const char *fmt, ...)
{
	char head[300], body[1024], *text;
	va_list ap;
	size_t n;

	snprintf(head, sizeof(head), "%s:%d: %s", file ? file : "?", line, error ? "" : "warning: ");
	va_start(ap, fmt);
	vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	n = strlen(head) + strlen(body) + 1;
	if ((text = malloc(n)) != NULL)
		snprintf(text, n, "%s%s", head, body);
	ck_add_text(r, error, text);
}

void check_report_free(struct check_report *r)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		free(r->v[i].text);
	for (i = 0; i < r->n_files; i++)
		free(r->files[i]);
	free(r->v);
	free(r->files);
	memset(r, 0, sizeof(*r));
}

static int ck_msg_cmp(const void *pa, const void *pb)
{
	const struct check_msg *a = pa, *b = pb;

	if (a->error != b->error)
		return a->error ? -1 : 1;
	if (a->file != b->file)
		return a->file < b->file ? -1 : 1;
	if (a->line != b->line)
		return a->line < b->line ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

void check_print(FILE *f, const char *name, struct check_report *r)
{
	size_t i;

	if (r->n)
		qsort(r->v, r->n, sizeof(*r->v), ck_msg_cmp);
	for (i = 0; i < r->n; i++)
		fprintf(f, "%s\n", r->v[i].text);
	if (!r->n_errors && !r->n_warnings) {
		fprintf(f, "%s: ok (%s)\n", name, r->counts);
	} else if (!r->n_errors) {
		fprintf(f, "%s: ok, %zu warning%s (%s)\n", name, r->n_warnings, r->n_warnings == 1 ? "" : "s", r->counts);
	} else {
		fprintf(f, "%s: %zu error%s, %zu warning%s%s\n", name, r->n_errors, r->n_errors == 1 ? "" : "s",
		        r->n_warnings, r->n_warnings == 1 ? "" : "s",
		        r->counts[0] ? "" : " (the file did not load: the other checks run once these errors are fixed)");
	}
}

/* ------------------------------------------------------------------ where keys are */

struct ctx {
	const struct conf *c;
	struct check_report *r;
	const char *text0;           /* the text of c->files[0] when loaded from a string */
	char **texts;                /* per c->files[i], read on demand; NULL = not read (yet) */
	int *tried;
};

static char *ck_read_all(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL, *more;
	size_t n = 0, cap = 0, got;

	if (!f)
		return NULL;
	for (;;) {
		if (cap - n < 4096) {
			if (cap >= CHECK_ERR_MAX * 4 || !(more = realloc(buf, cap ? 2 * cap : 8192))) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = more;
			cap = cap ? 2 * cap : 8192;
		}
		got = fread(buf + n, 1, cap - n - 1, f);
		if (!got)
			break;
		n += got;
	}
	fclose(f);
	buf[n] = '\0';
	return buf;
}

static const char *ck_text_of(struct ctx *x, const char *file)
{
	size_t i;

	for (i = 0; i < x->c->n_files; i++) {
		if (x->c->files[i] != file && strcmp(x->c->files[i], file))
			continue;
		if (i == 0 && x->text0)
			return x->text0;
		if (!x->tried[i]) {
			x->tried[i] = 1;
			x->texts[i] = ck_read_all(file);
		}
		return x->texts[i];
	}
	return NULL;
}

/*
 * The line of `key = ...` in the section that starts at line sec of file
 * (the first one whose key starts with key when prefix is set), or sec when
 * it cannot be found.
 */
static int ck_key_line_ex(struct ctx *x, const char *file, int sec, const char *key, int prefix)
{
	const char *t = file ? ck_text_of(x, file) : NULL, *p, *e, *k;
	size_t klen = strlen(key), n;
	int line = 1;

	if (!t || sec <= 0)
		return sec;
	for (p = t; *p && line < sec; p++)
		if (*p == '\n')
			line++;
	if (!*p)
		return sec;
	while (*p) {                           /* p: start of line `line` */
		if (line > sec) {
			for (k = p; *k == ' ' || *k == '\t'; k++)
				;
			if (*k == '[')
				break;
			for (e = k; *e && *e != '=' && *e != '\n' && *e != ';' && *e != '#'; e++)
				;
			if (*e == '=') {
				while (e > k && (e[-1] == ' ' || e[-1] == '\t'))
					e--;
				n = (size_t)(e - k);
				if (prefix ? n >= klen && !memcmp(k, key, klen) : n == klen && !memcmp(k, key, klen))
					return line;
			}
		}
		p = strchr(p, '\n');
		if (!p)
			break;
		p++;
		line++;
	}
	return sec;
}

static int ck_key_line(struct ctx *x, const char *file, int sec, const char *key)
{
	return ck_key_line_ex(x, file, sec, key, 0);
}

/* ------------------------------------------------------------------ helpers */

static int ck_labels_include(const struct conf_labels *have, const struct conf_labels *want)
{
	size_t i;

	for (i = 0; i < want->n; i++) {
		const char *v = conf_label(have, want->v[i].key);

		if (!v || strcmp(v, want->v[i].value))
			return 0;
	}
	return 1;
}

/* labels as selectors see a workload: app=SERVICE implied */
static int ck_workload_has(const struct conf_labels *have, const char *app, const struct conf_labels *want)
{
	size_t i;

	for (i = 0; i < want->n; i++) {
		const char *v = conf_label(have, want->v[i].key);

		if (!v && !strcmp(want->v[i].key, "app"))
			v = app;
		if (!v || strcmp(v, want->v[i].value))
			return 0;
	}
	return 1;
}

static void ck_labels_text(char *b, size_t n, const struct conf_labels *l)
{
	size_t i, len = 0;

	b[0] = '\0';
	for (i = 0; i < l->n && len < n; i++) {
		snprintf(b + len, n - len, "%s%s=%s", i ? ", " : "", l->v[i].key, l->v[i].value);
		len = strlen(b);
	}
}

/* "version=v1, v2, v3" for each key of want: what the endpoints of svc carry */
static void ck_carried(char *b, size_t n, const struct conf_service *svc, const struct conf_labels *want)
{
	size_t i, j, k, len = 0;

	b[0] = '\0';
	for (i = 0; i < want->n && len < n; i++) {
		const char *key = want->v[i].key;
		int any = 0;

		snprintf(b + len, n - len, "%s%s=", i ? "; " : "", key);
		len = strlen(b);
		for (j = 0; j < svc->n_endpoints && len < n; j++) {
			const char *v = conf_label(&svc->endpoints[j].labels, key);

			if (!v)
				continue;
			for (k = 0; k < j; k++) {
				const char *w = conf_label(&svc->endpoints[k].labels, key);

				if (w && !strcmp(w, v))
					break;
			}
			if (k < j)
				continue;
			snprintf(b + len, n - len, "%s%s", any ? ", " : "", v);
			len = strlen(b);
			any = 1;
		}
		if (!any && len < n) {
			snprintf(b + len, n - len, "(none)");
			len = strlen(b);
		}
	}
}

static const char *ck_subset_name(const struct conf_dest *d)
{
	if (d->subset < 0 || !d->svc->destination || (size_t)d->subset >= d->svc->destination->n_subsets)
		return NULL;
	return d->svc->destination->subsets[d->subset].name;
}

static void ck_dest_text(char *b, size_t n, const struct conf_dest *d)
{
	const char *s = ck_subset_name(d);

	snprintf(b, n, "%s%s%s", d->svc->name, s ? "/" : "", s ? s : "");
}

/* ------------------------------------------------------------------ traffic checks */

/* a route's destination whose subset no endpoint of its service carries */
static void check_dest_empty(struct ctx *x, const struct conf_route *rt, const struct conf_dest *d, const char *key)
{
	const struct conf_subset *ss;
	char have[300];
	size_t j;

	if (!d->svc || d->subset < 0 || !ck_subset_name(d) || !d->svc->n_endpoints || x->c->controller.present)
		return;                        /* a service without endpoints: conf.c warns; a controller's register later */
	ss = &d->svc->destination->subsets[d->subset];
	for (j = 0; j < d->svc->n_endpoints; j++)
		if (ck_labels_include(&d->svc->endpoints[j].labels, &ss->labels))
			return;
	ck_carried(have, sizeof(have), d->svc, &ss->labels);
	add(x->r, 0, rt->file, ck_key_line(x, rt->file, rt->line, key),
	    "route %s: subset '%s' of %s selects no endpoint (endpoints carry %s), so %s requests get 503", rt->name,
	    ss->name, d->svc->name, have, !strcmp(key, "mirror") ? "its mirrored" : "its");
}

static int ck_same_place(const struct conf_dest *a, const struct conf_dest *b)
{
	return a->svc == b->svc && (a->subset == b->subset || a->subset < 0 || b->subset < 0);
}

/* is there a workload (an endpoint of a service, or this proxy's) with these labels? */
static int ck_source_exists(const struct conf *c, const struct conf_labels *want)
{
	size_t i, j;

	if (c->workload.service && ck_workload_has(&c->workload.labels, c->workload.service, want))
		return 1;
	for (i = 0; i < c->n_services; i++) {
		const struct conf_service *s = &c->services[i];

		for (j = 0; j < s->n_endpoints; j++)
			if (ck_workload_has(&s->endpoints[j].labels, s->name, want))
				return 1;
		if (!s->n_endpoints) {
			const struct conf_labels none = { 0 };

			if (ck_workload_has(&none, s->name, want))
				return 1;
		}
	}
	return 0;
}

static void ck_ms_text(char *b, size_t n, uint32_t ms)
{
	if (ms % 1000)
		snprintf(b, n, "%ums", (unsigned)ms);
	else
		snprintf(b, n, "%us", (unsigned)(ms / 1000));
}

static void check_routes(struct ctx *x)
{
	const struct conf *c = x->c;
	size_t i, j;
	char a[120], b[120];

	for (i = 0; i < c->n_routes; i++) {
		const struct conf_route *rt = &c->routes[i];

		for (j = 0; j < rt->n_to; j++)
			if (rt->to[j].weight || rt->n_to == 1)
				check_dest_empty(x, rt, &rt->to[j], "to");
		if (rt->mirror.svc) {
			check_dest_empty(x, rt, &rt->mirror, "mirror");
			for (j = 0; j < rt->n_to; j++)
				if ((rt->to[j].weight || rt->n_to == 1) && ck_same_place(&rt->mirror, &rt->to[j])) {
					ck_dest_text(a, sizeof(a), &rt->mirror);
					ck_dest_text(b, sizeof(b), &rt->to[j]);
					add(x->r, 0, rt->file, ck_key_line(x, rt->file, rt->line, "mirror"),
					    "route %s: mirror %s is also where the route sends requests (%s): those endpoints "
					    "get a copy of requests they already serve", rt->name, a, b);
					break;
				}
		}
		for (j = 0; j < rt->n_matches; j++) {
			const struct conf_labels *src = &rt->matches[j].source;
			char key[48];

			if (!src->n || !c->n_services || ck_source_exists(c, src))
				continue;
			if (j)
				snprintf(key, sizeof(key), "match.%zu.source", j + 1);
			else
				snprintf(key, sizeof(key), "match.source");
			ck_labels_text(a, sizeof(a), src);
			add(x->r, 0, rt->file, ck_key_line(x, rt->file, rt->line, key),
			    "route %s: %s = %s: no workload carries these labels (app=SERVICE implied), so %s", rt->name, key,
			    a, rt->n_matches == 1 ? "the rule never matches" : "this match block never holds");
		}
		if (rt->retries && rt->timeout && rt->per_try_timeout >= rt->timeout) {
			ck_ms_text(a, sizeof(a), rt->per_try_timeout);
			ck_ms_text(b, sizeof(b), rt->timeout);
			add(x->r, 0, rt->file, ck_key_line(x, rt->file, rt->line, "per_try_timeout"),
			    "route %s: per_try_timeout %s is not shorter than timeout %s: the first try can use up the "
			    "whole timeout, so retries (retries = %u) may never run", rt->name, a, b, (unsigned)rt->retries);
		}
	}
}

/* ------------------------------------------------------------------ security checks */

static const struct conf_peer_auth *peer_auth_by_id(const struct conf *c, const char *id)
{
	size_t i;

	for (i = 0; id && i < c->n_peer_auths; i++)
		if (c->peer_auths[i].id == id)
			return &c->peer_auths[i];
	return NULL;
}

/* STRICT on a service whose endpoints have no sidecar: nothing takes mTLS there */
static void check_strict_plain(struct ctx *x)
{
	const struct conf *c = x->c;
	size_t i, j;

	for (i = 0; i < c->n_services; i++) {
		const struct conf_service *s = &c->services[i];
		size_t n = s->n_endpoints ? s->n_endpoints : 1;

		if (s->sidecar)
			continue;
		for (j = 0; j < n; j++) {
			const struct authz_workload w = { s->namespace, s->name, s->n_endpoints ? &s->endpoints[j].labels : NULL };
			const char *id = NULL;
			const struct conf_peer_auth *pa;

			if (authz_peer_mode(c, &w, s->port, &id) != CONF_MTLS_STRICT)
				continue;
			pa = peer_auth_by_id(c, id);
			add(x->r, 0, s->file, ck_key_line(x, s->file, s->line, "sidecar"),
			    "[service %s] has no sidecar (sidecar = no), but peer_authentication %s (%s:%d) makes it STRICT: "
			    "clients send it plaintext and nothing there enforces mTLS (tls-check shows CONFLICT); give it a "
			    "policy with selector = app=%s and mode = DISABLE, or a sidecar", s->name, pa ? pa->name : "?",
			    pa ? pa->file : "?", pa ? pa->line : 0, s->name);
			break;
		}
	}
}

/* does the workload w (a service's endpoint, or the service when it has none) fall under ns/sel? */
static int policy_selects(const char *ns, const struct conf_labels *sel, const char *w_ns, const char *app,
                          const struct conf_labels *labels)
{
	static const struct conf_labels none = { 0 };

	if (ns && *ns && strcmp(ns, "istio-system") && strcmp(ns, w_ns))
		return 0;
	return ck_workload_has(labels ? labels : &none, app, sel);
}

/* port.N of a peer_authentication that is no port of the workloads it selects */
static void check_port_mtls(struct ctx *x)
{
	const struct conf *c = x->c;
	size_t i, j, k, e;

	for (i = 0; i < c->n_peer_auths; i++) {
		const struct conf_peer_auth *pa = &c->peer_auths[i];
		char ports[200];
		size_t len = 0;
		int any = 0;

		if (!pa->n_ports)
			continue;
		ports[0] = '\0';
		for (k = 0; k < pa->n_ports; k++) {
			int used = 0;

			for (j = 0; j < c->n_services; j++) {
				const struct conf_service *s = &c->services[j];
				size_t n = s->n_endpoints ? s->n_endpoints : 1;

				for (e = 0; e < n; e++)
					if (policy_selects(pa->namespace, &pa->selector, s->namespace, s->name,
					                   s->n_endpoints ? &s->endpoints[e].labels : NULL))
						break;
				if (e == n)
					continue;
				if (!k && len < sizeof(ports)) {
					snprintf(ports + len, sizeof(ports) - len, "%s%s: %u", any ? ", " : "", s->name,
					         (unsigned)s->port);
					len = strlen(ports);
				}
				any = 1;
				if (s->port == pa->ports[k].port)
					used = 1;
			}
			if (!used && c->workload.service && c->workload.app.set &&
			    policy_selects(pa->namespace, &pa->selector, c->workload.namespace, c->workload.service,
			                   &c->workload.labels)) {
				const struct sockaddr_storage *ss = &c->workload.app.ss;
				uint16_t p = ss->ss_family == AF_INET6 ? ntohs(((const struct sockaddr_in6 *)ss)->sin6_port)
				                                       : ntohs(((const struct sockaddr_in *)ss)->sin_port);

				if (!k && len < sizeof(ports)) {
					snprintf(ports + len, sizeof(ports) - len, "%sapp: %u", any ? ", " : "", (unsigned)p);
					len = strlen(ports);
				}
				any = 1;
				if (p == pa->ports[k].port)
					used = 1;
			}
			if (!any)
				break;             /* selects nothing: conf.c warns */
			if (!used) {
				char key[16];

				snprintf(key, sizeof(key), "port.%u", (unsigned)pa->ports[k].port);
				add(x->r, 0, pa->file, ck_key_line(x, pa->file, pa->line, key),
				    "peer_authentication %s: port.%u is not the port of any service or app it selects (%s), so this "
				    "mode never applies", pa->name, (unsigned)pa->ports[k].port,
				    ports[0] ? ports : "none");
			}
		}
	}
}

static int ck_pat_match(const struct conf_pat *p, const char *s)
{
	size_t n = strlen(s);

	switch (p->kind) {
	case CONF_PAT_EXACT:
		return n == p->len && !memcmp(s, p->s, n);
	case CONF_PAT_PREFIX:
		return n >= p->len && !memcmp(s, p->s, p->len);
	case CONF_PAT_SUFFIX:
		return n >= p->len && !memcmp(s + n - p->len, p->s, p->len);
	case CONF_PAT_ANY:
		return 1;
	}
	return 0;
}

static int ck_pats_match_any(const struct conf_pats *ps, char **known, size_t n)
{
	size_t i, j;

	for (i = 0; i < ps->n; i++)
		for (j = 0; j < n; j++)
			if (ck_pat_match(&ps->v[i], known[j]))
				return 1;
	return 0;
}

static void ck_list_text(char *b, size_t n, char **v, size_t nv)
{
	size_t i, len = 0;

	b[0] = '\0';
	for (i = 0; i < nv && len < n; i++) {
		snprintf(b + len, n - len, "%s%s", i ? ", " : "", v[i]);
		len = strlen(b);
	}
	if (len >= n - 1 && n > 4)
		memcpy(b + n - 4, "...", 4);
}

static void ck_pats_text(char *b, size_t n, const struct conf_pats *ps)
{
	size_t i, len = 0;

	b[0] = '\0';
	for (i = 0; i < ps->n && len < n; i++) {
		const struct conf_pat *p = &ps->v[i];

		snprintf(b + len, n - len, "%s%s%s%s", i ? ", " : "", p->kind == CONF_PAT_SUFFIX ? "*" : "", p->s,
		         p->kind == CONF_PAT_PREFIX || p->kind == CONF_PAT_ANY ? "*" : "");
		len = strlen(b);
	}
}

static void ck_push_unique(char ***v, size_t *n, const char *s)
{
	size_t i;
	char **more, *copy;

	for (i = 0; i < *n; i++)
		if (!strcmp((*v)[i], s))
			return;
	if (!(more = realloc(*v, (*n + 1) * sizeof(**v))))
		return;
	*v = more;
	if ((copy = strdup(s)) != NULL)
		(*v)[(*n)++] = copy;
}

/* authorization rules whose from.principals / from.namespaces name no identity of this mesh */
static void check_authz_sources(struct ctx *x)
{
	const struct conf *c = x->c;
	const char *td = c->mesh.trust_domain ? c->mesh.trust_domain : c->mesh.domain ? c->mesh.domain : "cluster.local";
	char **ids = NULL, **nss = NULL, buf[600], known[400], pats[300];
	size_t n_ids = 0, n_nss = 0, i, j;

	if (!c->n_services || !c->n_authzs)
		return;
	for (i = 0; i <= c->n_services; i++) {
		const char *ns = i < c->n_services ? c->services[i].namespace : c->workload.namespace;
		const char *sa = i < c->n_services ? c->services[i].service_account : c->workload.service_account;

		if (!ns || !sa)
			continue;
		snprintf(buf, sizeof(buf), "%s/ns/%s/sa/%s", td, ns, sa);
		ck_push_unique(&ids, &n_ids, buf);
		ck_push_unique(&nss, &n_nss, ns);
	}
	for (i = 0; i < c->n_authzs; i++) {
		const struct conf_authz *p = &c->authzs[i];
		const char *what = p->action == CONF_AUTHZ_ALLOW ? "allows" : p->action == CONF_AUTHZ_DENY ? "denies"
		                                                                                        : "audits";

		for (j = 0; j < p->n_rules; j++) {
			const struct conf_authz_rule *ru = &p->rules[j];
			const char *file = ru->file ? ru->file : p->file;
			int line = ru->file ? ru->line : p->line;

			if (ru->principals.n && !ck_pats_match_any(&ru->principals, ids, n_ids)) {
				ck_pats_text(pats, sizeof(pats), &ru->principals);
				ck_list_text(known, sizeof(known), ids, n_ids);
				add(x->r, 0, file, ck_key_line(x, file, line, "from.principals"),
				    "authorization %s: from.principals = %s: no service of this mesh has that identity "
				    "(known: %s), so this rule never %s anything", p->name, pats, known, what);
			}
			if (ru->namespaces.n && !ck_pats_match_any(&ru->namespaces, nss, n_nss)) {
				ck_pats_text(pats, sizeof(pats), &ru->namespaces);
				ck_list_text(known, sizeof(known), nss, n_nss);
				add(x->r, 0, file, ck_key_line(x, file, line, "from.namespaces"),
				    "authorization %s: from.namespaces = %s: no service of this mesh is in it (namespaces: %s), "
				    "so this rule never %s anything", p->name, pats, known, what);
			}
		}
	}
	for (i = 0; i < n_ids; i++)
		free(ids[i]);
	for (i = 0; i < n_nss; i++)
		free(nss[i]);
	free(ids);
	free(nss);
}

/* ------------------------------------------------------------------ endpoints and listeners */

static int svc_identity_differs(const struct conf_service *a, const struct conf_service *b)
{
	return strcmp(a->namespace, b->namespace) || strcmp(a->service_account, b->service_account);
}

/* one address listed as an endpoint of two services */
static void check_shared_endpoints(struct ctx *x)
{
	const struct conf *c = x->c;
	size_t i, j, k, l;

	for (i = 0; i < c->n_services; i++)
		for (j = 0; j < c->services[i].n_endpoints; j++) {
			const struct conf_service *s = &c->services[i];
			const struct conf_endpoint *ep = &s->endpoints[j];
			int done = 0;

			for (k = 0; k < i && !done; k++)
				for (l = 0; l < c->services[k].n_endpoints && !done; l++) {
					const struct conf_service *o = &c->services[k];

					if (strcmp(o->endpoints[l].addr.text, ep->addr.text))
						continue;
					done = 1;
					if (s->sidecar && o->sidecar && svc_identity_differs(s, o))
						add(x->r, 1, s->file, ep->line,
						    "endpoint %s of [service %s] is also an endpoint of [service %s] (%s:%d), but the "
						    "two have different identities (%s/sa/%s, %s/sa/%s): the proxy there has one "
						    "certificate, so clients of one of them always refuse it", ep->addr.text, s->name,
						    o->name, o->file, o->endpoints[l].line, s->namespace, s->service_account,
						    o->namespace, o->service_account);
					else
						add(x->r, 0, s->file, ep->line,
						    "endpoint %s of [service %s] is also an endpoint of [service %s] (%s:%d): one "
						    "workload behind two services; a copy-paste mistake?", ep->addr.text, s->name,
						    o->name, o->file, o->endpoints[l].line);
				}
		}
}

static uint16_t ck_addr_port(const struct conf_addr *a)
{
	if (a->ss.ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
	return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
}

static int ck_addr_any(const struct conf_addr *a)
{
	if (a->ss.ss_family == AF_INET6) {
		static const struct in6_addr any6 = IN6ADDR_ANY_INIT;

		return !memcmp(&((const struct sockaddr_in6 *)&a->ss)->sin6_addr, &any6, sizeof(any6));
	}
	return ((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr == htonl(INADDR_ANY);
}

static int ck_addr_local(const struct conf_addr *a)
{
	if (a->ss.ss_family == AF_INET6) {
		static const struct in6_addr lo6 = IN6ADDR_LOOPBACK_INIT;

		return !memcmp(&((const struct sockaddr_in6 *)&a->ss)->sin6_addr, &lo6, sizeof(lo6));
	}
	return (ntohl(((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr) >> 24) == 127;
}

/* would a listener on l receive what is sent to endpoint e? */
static int listens_on(const struct conf_addr *l, const struct conf_addr *e)
{
	if (!l->set || !e->set)
		return 0;
	if (!strcmp(l->text, e->text))
		return 1;
	return ck_addr_any(l) && ck_addr_local(e) && ck_addr_port(l) == ck_addr_port(e) && l->ss.ss_family == e->ss.ss_family;
}

/* the listeners of a proxy file on an address that is some service's endpoint */
static void check_listen_addrs(struct ctx *x)
{
	const struct conf *c = x->c;
	const struct conf_workload *wl = &c->workload;
	size_t i, j, k;

	if (!(wl->service || wl->app.set || c->mesh_path))
		return;                            /* a mesh file: no listeners */
	for (i = 0; i < c->n_services; i++) {
		const struct conf_service *s = &c->services[i];

		for (j = 0; j < s->n_endpoints; j++) {
			const struct conf_endpoint *ep = &s->endpoints[j];
			const struct { const char *name; const struct conf_addr *a; } ls[] = {
				{ "outbound", &c->listen.outbound }, { "admin", &c->listen.admin },
			};

			for (k = 0; k < sizeof(ls) / sizeof(ls[0]); k++)
				if (listens_on(ls[k].a, &ep->addr))
					add(x->r, 1, s->file, ep->line,
					    "endpoint %s of [service %s] is this proxy's %s listener (%s): requests for %s would "
					    "come back into the proxy instead of reaching a workload", ep->addr.text, s->name,
					    ls[k].name, ls[k].a->text, s->name);
			for (k = 0; k < c->n_services; k++)
				if (listens_on(&c->services[k].listen, &ep->addr))
					add(x->r, 1, s->file, ep->line,
					    "endpoint %s of [service %s] is this proxy's local port for service.%s (%s): requests "
					    "for %s would come back into the proxy", ep->addr.text, s->name, c->services[k].name,
					    c->services[k].listen.text, s->name);
			if (wl->app.set && s->sidecar && !strcmp(wl->app.text, ep->addr.text)) {
				const struct authz_workload w = { s->namespace, s->name, &ep->labels };

				if (authz_peer_mode(c, &w, s->port, NULL) != CONF_MTLS_DISABLE)
					add(x->r, 0, s->file, ep->line,
					    "endpoint %s of [service %s] is this proxy's app, not its inbound listener (%s): "
					    "clients with an identity send mTLS there, which the app cannot take, and bypass the "
					    "proxy; list the inbound address, or set sidecar = no", ep->addr.text, s->name,
					    c->listen.inbound.set ? c->listen.inbound.text : "not set");
			}
		}
	}
}

/* ------------------------------------------------------------------ entry points */

static void ck_counts(const struct conf *c, char *b, size_t n)
{
	const struct { size_t n; const char *one, *many; } k[] = {
		{ c->n_services, "service", "services" },
		{ 0, "endpoint", "endpoints" },
		{ c->n_destinations, "destination", "destinations" },
		{ c->n_routes, "route", "routes" },
		{ c->n_peer_auths, "peer authentication", "peer authentications" },
		{ c->n_authzs, "authorization policy", "authorization policies" },
	};
	size_t i, eps = 0, len = 0;

	for (i = 0; i < c->n_services; i++)
		eps += c->services[i].n_endpoints;
	b[0] = '\0';
	for (i = 0; i < sizeof(k) / sizeof(k[0]) && len < n; i++) {
		size_t v = i == 1 ? eps : k[i].n;

		if (!v && i)                       /* zero ck_counts are left out, except services */
			continue;
		snprintf(b + len, n - len, "%s%zu %s", len ? ", " : "", v, v == 1 ? k[i].one : k[i].many);
		len = strlen(b);
	}
}

void check_conf(const struct conf *c, const char *text, struct check_report *r)
{
	struct ctx x;
	size_t i;

	memset(&x, 0, sizeof(x));
	x.c = c;
	x.r = r;
	x.text0 = text;
	x.texts = calloc(c->n_files + 1, sizeof(*x.texts));
	x.tried = calloc(c->n_files + 1, sizeof(*x.tried));
	if (!x.texts || !x.tried) {
		free(x.texts);
		free(x.tried);
		ck_add_text(r, 1, strdup("mesh check: out of memory"));
		return;
	}
	check_routes(&x);
	check_strict_plain(&x);
	check_port_mtls(&x);
	check_authz_sources(&x);
	check_shared_endpoints(&x);
	check_listen_addrs(&x);
	ck_counts(c, r->counts, sizeof(r->counts));
	for (i = 0; i < c->n_files; i++)
		free(x.texts[i]);
	free(x.texts);
	free(x.tried);
}

size_t check_load(const char *path, const char *text, struct check_report *r)
{
	char *err = malloc(CHECK_ERR_MAX), **warns = NULL, *p, *nl;
	size_t n_warns = 0, i, before = r->n_errors;
	struct conf *c;

	ck_file_index(r, path, strlen(path));
	if (!err) {
		ck_add_text(r, 1, strdup("mesh check: out of memory"));
		return r->n_errors - before;
	}
	c = conf_load_keep(path, text, err, CHECK_ERR_MAX, &warns, &n_warns);
	if (!c) {
		for (p = err; *p; p = nl + 1) {
			nl = strchr(p, '\n');
			if (!nl)
				nl = p + strlen(p);
			if (nl > p) {
				size_t len = (size_t)(nl - p);
				char *line = malloc(len + 1);

				if (line) {
					memcpy(line, p, len);
					line[len] = '\0';
				}
				ck_add_text(r, 1, line);
			}
			if (!*nl)
				break;
		}
		if (!r->n_errors)
			ck_add_text(r, 1, strdup("mesh check: the configuration was refused"));
		for (i = 0; i < n_warns; i++)
			ck_add_text(r, 0, warns[i]);        /* takes it */
		free(warns);
	} else {
		for (i = 0; i < c->n_warnings; i++)
			ck_add_text(r, 0, strdup(c->warnings[i]));
		check_conf(c, text, r);
		conf_unref(c);
	}
	free(err);
	return r->n_errors - before;
}

static void ck_usage(FILE *f)
{
	fprintf(f, "usage: mesh check [-c FILE] [FILE...] [--strict]\n"
	           "  Validates configuration files offline, as the proxy would load them, then looks\n"
	           "  for what loads but cannot work or probably does not do what was meant.\n"
	           "  Prints every error and warning as file:line: message (errors first) and a\n"
	           "  summary line per file. FILE defaults to mesh.ini. Exit status: 0 no errors,\n"
	           "  1 errors (with --strict, warnings too), 2 ck_usage. docs/config.md lists the checks.\n");
}

int check_main(int argc, char **argv)
{
	const char **files;
	size_t n = 0, i, errors = 0, warnings = 0;
	int strict = 0;

	files = calloc((size_t)argc + 1, sizeof(*files));
	if (!files) {
		fprintf(stderr, "mesh check: out of memory\n");
		return 2;
	}
	for (i = 1; i < (size_t)argc; i++) {
		if (!strcmp(argv[i], "-c") && i + 1 < (size_t)argc) {
			files[n++] = argv[++i];
		} else if (!strcmp(argv[i], "--strict")) {
			strict = 1;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			ck_usage(stdout);
			free(files);
			return 0;
		} else if (argv[i][0] != '-' || !argv[i][1]) {
			files[n++] = argv[i];
		} else {
			fprintf(stderr, "mesh check: unexpected argument '%s'\n", argv[i]);
			ck_usage(stderr);
			free(files);
			return 2;
		}
	}
	if (!n)
		files[n++] = "mesh.ini";
	for (i = 0; i < n; i++) {
		struct check_report r;

		memset(&r, 0, sizeof(r));
		check_load(files[i], NULL, &r);
		check_print(stdout, files[i], &r);
		errors += r.n_errors;
		warnings += r.n_warnings;
		check_report_free(&r);
	}
	if (n > 1)
		printf("%zu error%s, %zu warning%s in %zu files\n", errors, errors == 1 ? "" : "s", warnings,
		       warnings == 1 ? "" : "s", n);
	free(files);
	fflush(stdout);
	return errors || (strict && warnings) ? 1 : 0;
}
