/*
 * libFuzzer target for conf: the loader on arbitrary text, every value parser,
 * and conf_find_service on arbitrary (not NUL-terminated) hosts. Oracles beyond
 * the sanitizers: a config that loads must render to text that loads again and
 * renders identically, and every service must be found by its own names.
 */
#include "../../modules/conf.c"

static const char *skip_comments(const char *r)
{
	while (*r == ';') {
		const char *nl = strchr(r, '\n');

		r = nl ? nl + 1 : r + strlen(r);
	}
	return r;
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
