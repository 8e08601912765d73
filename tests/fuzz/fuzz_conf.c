/*
 * libFuzzer target for conf: the loader on arbitrary text, every value parser,
 * and conf_find_service on arbitrary (not NUL-terminated) hosts. Oracles beyond
 * the sanitizers: a config that loads must render to text that loads again and
 * renders identically, and every service must be found by its own names. For
 * traffic management: every destination rule belongs to its service, every
 * route destination and mirror is resolved to a real service and subset, the
 * weights of a `to` add up to 100, and every regex condition is compiled.
 * For security: every policy evaluates (authz_peer_mode, authz_check) for a
 * few workloads and requests without crashing, and a peer mode is never UNSET.
 */
#include "../../modules/conf.c"
#include "../../modules/authz.c"

static const char *skip_comments(const char *r)
{
	while (*r == ';') {
		const char *nl = strchr(r, '\n');

		r = nl ? nl + 1 : r + strlen(r);
	}
	return r;
}

static void check_dest(const struct conf *c, const struct conf_dest *d)
{
	const struct conf_destination *dr;

	if (d->svc < c->services || d->svc >= c->services + c->n_services)
		abort();
	dr = conf_destination_of(c, d->svc);
	if (d->subset < -1 || (d->subset >= 0 && (!dr || (size_t)d->subset >= dr->n_subsets)))
		abort();
}

static void check_strmatch(const struct conf_strmatch *m)
{
	if (!m->value || (m->kind == CONF_MATCH_REGEX) != (m->re != NULL))
		abort();
	if (m->re)
		regexec(m->re, m->value, 0, NULL, 0);  /* must not crash on its own source */
}

static void check_traffic(const struct conf *c)
{
	size_t i, j, k;

	for (i = 0; i < c->n_destinations; i++) {
		const struct conf_destination *d = &c->destinations[i];

		if (!d->svc || conf_destination_of(c, d->svc) != d || d->svc->destination != d)
			abort();
		for (j = 0; j < d->n_subsets; j++) {
			const struct conf_policy *p = conf_policy_of(c, d->svc, (int)j);

			if (p != &d->subsets[j].policy || (p->hash_on != CONF_HASH_NONE) !=
			    (p->lb == CONF_LB_RING_HASH || p->lb == CONF_LB_MAGLEV))
				abort();
		}
	}
	for (i = 0; i < c->n_routes; i++) {
		const struct conf_route *r = &c->routes[i];
		uint32_t sum = 0;

		if (!r->n_hosts || (!r->n_to + !r->redirect + !r->direct_status) != 2)
			abort();
		for (j = 0; j < r->n_to; j++) {
			check_dest(c, &r->to[j]);
			sum += r->to[j].weight;
		}
		if (r->n_to && sum != 100)
			abort();
		if (r->mirror.svc)
			check_dest(c, &r->mirror);
		for (j = 0; j < r->n_matches; j++) {
			const struct conf_match *m = &r->matches[j];

			if (m->has_path)
				check_strmatch(&m->path);
			for (k = 0; k < m->n_headers; k++)
				check_strmatch(&m->headers[k].m);
			for (k = 0; k < m->n_query; k++)
				check_strmatch(&m->query[k].m);
		}
	}
}

static void check_security(const struct conf *c)
{
	static const struct conf_label lv[] = { { "app", "reviews" }, { "version", "v2" } };
	static const struct conf_labels labels = { (struct conf_label *)lv, 2 };
	static const struct authz_workload ws[] = { { "default", "reviews", &labels }, { "production", "productpage", NULL },
	                                            { "istio-system", NULL, NULL } };
	static const struct http1_header hs[] = { { "x-user", 6, "jason", 5 }, { "End-User", 8, "", 0 } };
	static const struct authz_req rs[] = {
		{ "cluster.local/ns/production/sa/bookinfo-productpage", "10.1.2.3", "GET", 3, "/api/x", 6, "reviews:9080", 12,
		  9080, hs, 2 },
		{ NULL, "::ffff:10.0.0.1", "post", 4, "/", 1, "[::1]:80", 8, 80, NULL, 0 },
		{ "x/ns/", "not-an-ip", "", 0, "", 0, ":", 1, 0, hs, 1 },
	};
	size_t i, j;

	for (i = 0; i < sizeof(ws) / sizeof(ws[0]); i++) {
		const char *pol;
		int audit;

		if (authz_peer_mode(c, &ws[i], 9080, &pol) == CONF_MTLS_UNSET || !pol ||
		    authz_peer_mode(c, &ws[i], 0, NULL) == CONF_MTLS_UNSET)
			abort();
		for (j = 0; j < sizeof(rs) / sizeof(rs[0]); j++)
			if (authz_check(c, &ws[i], &rs[j], &pol, &audit) > AUTHZ_DENY || !pol || (audit != 0 && audit != 1))
				abort();
	}
}

static void check_loaded(struct conf *c)
{
	char err[2048], host[256], *r1, *r2;
	struct conf *c2;
	size_t i;
	int ok;

	for (i = 0; i < c->n_services; i++) {
		const struct conf_service *s = &c->services[i], *f;

		snprintf(host, sizeof(host), "%s.%s.svc.%s:%u", s->name, s->namespace, c->mesh.domain, (unsigned)s->port);
		f = conf_find_service(c, host, strlen(host), &ok);
		if (!f || !ok || strcmp(f->name, s->name) || strcmp(f->namespace, s->namespace)) {
			fprintf(stderr, "service %s not found as %s\n", s->name, host);
			abort();
		}
		if (!conf_find_service(c, s->name, strlen(s->name), &ok))
			abort();
	}
	check_traffic(c);
	check_security(c);
	r1 = conf_render(c);
	c2 = conf_load_string("fuzz.ini", r1, err, sizeof(err));
	if (!c2) {
		fprintf(stderr, "rendered config does not load: %s\n---\n%s---\n", err, r1);
		abort();
	}
	r2 = conf_render(c2);
	if (strcmp(skip_comments(r1), skip_comments(r2))) {
		fprintf(stderr, "render is not a fixed point\n---\n%s---\n%s---\n", r1, r2);
		abort();
	}
	free(r1);
	free(r2);
	conf_unref(conf_ref(c2));
	conf_unref(c2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct conf *fixed;
	char *s = malloc(size + 1), err[1024];
	struct conf *c;
	struct conf_addr a;
	struct conf_labels l;
	uint32_t ms;
	size_t sz;
	int b, ok;

	if (!fixed)
		fixed = conf_load_string("fixed.ini", "[workload]\nnamespace = prod\n[service reviews]\nport = 9080\n"
		                         "endpoint = :1\n[service reviews]\nnamespace = prod\nendpoint = :2\n", err, sizeof(err));
	memcpy(s, data, size);
	s[size] = '\0';
	c = conf_load_string("fuzz.ini", s, err, sizeof(err));
	if (c) {
		check_loaded(c);
		conf_unref(c);
	} else if (!err[0] || !strstr(err, ": ")) {
		fprintf(stderr, "error without a message: '%s'\n", err);
		abort();
	}
	conf_parse_duration(s, &ms);
	conf_parse_size(s, &sz);
	conf_parse_addr(s, &a, 0);
	conf_parse_addr(s, &a, 1);
	conf_parse_bool(s, &b);
	if (conf_parse_labels(s, &l) == 0)
		conf_labels_free(&l);
	conf_find_service(fixed, (const char *)data, size, &ok);
	free(s);
	return 0;
}
