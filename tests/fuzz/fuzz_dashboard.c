/*
 * libFuzzer target for the dashboard's parsers. The first byte picks one:
 *   0: the Zipkin span parser (POST /api/v2/spans) into a small ring, then
 *      the trace list and every trace of it in parent/child order;
 *   1: the Prometheus text parser fed in pieces whose sizes come from the
 *      input, folded into the edge store, then the graph rendered;
 *   2: the JSON writer: any bytes must come out as a string the JSON parser
 *      reads back.
 * Oracles beyond the sanitizers: the ring stays within its bounds, a 202 or
 * 400 is the only answer to a post, and what the writer emits parses.
 */
#include "../../modules/conf.c"
#include "../../modules/authz.c"
#include "../../modules/check.c"
#include "../../modules/buf.c"
#include "../../modules/http1.c"
#include "../../modules/net.c"
#include "../../modules/log.c"
#include "../../modules/dashboard.c"

const char dashboard_page[] = "";
const size_t dashboard_page_len = 0;

static struct dashboard *fake(void)
{
	struct dashboard *d = calloc(1, sizeof(*d));

	d->o.interval = 1;
	d->o.warn_rate = 0.01;
	d->o.bad_rate = 0.10;
	d->o.max_spans = 16;
	d->o.max_span_bytes = 8192;
	d->spans = calloc(d->o.max_spans, sizeof(*d->spans));
	d->controller = strdup("127.0.0.1:1");
	d->listen_text = strdup("127.0.0.1:2");
	d->lio.fd = -1;
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->wake, NULL);
	return d;
}

static void fuzz_spans(const uint8_t *data, size_t size)
{
	struct dashboard *d = fake();
	struct strbuf out = { 0 };
	size_t i;
	int r;

	r = spans_post(d, (const char *)data, size, &out);
	if (r != 202 && r != 400)
		abort();
	if (d->n_spans > d->o.max_spans || d->span_bytes > d->o.max_span_bytes)
		abort();
	strbuf_free(&out);
	traces_list(d, "a", 0, 0, 100, &out);
	strbuf_free(&out);
	for (i = 0; i < d->n_spans; i++) {
		const struct span *sp = ring_at(d, i);

		trace_get(d, sp->trace_id, strlen(sp->trace_id), &out);
		strbuf_free(&out);
	}
	dashboard_stop(d);
}

static void fuzz_metrics(const uint8_t *data, size_t size)
{
	struct dashboard *d = fake();
	struct db_target *t = calloc(1, sizeof(*t));
	struct scrape *sc = calloc(1, sizeof(*sc));
	struct strbuf out = { 0 };
	size_t off = 0, step = size ? (size_t)data[0] % 64 + 1 : 1;
	int round;

	t->admin = strdup("x");
	t->name = strdup("client");
	t->service = strdup("");
	t->version = strdup("");
	d->targets = calloc(1, sizeof(*d->targets));
	d->targets[0] = t;
	d->n_targets = 1;
	for (round = 0; round < 2; round++) {
		memset(sc, 0, sizeof(*sc));
		sc->d = d;
		sc->t = t;
		sc->st.on_sample = on_sample;
		sc->st.ctx = sc;
		for (off = 0; off < size; off += step)
			metrics_body(sc, (const char *)data + off, size - off < step ? size - off : step);
		pm_end(&sc->st);
		scrape_fold(d, sc);
		t->ok++;
		kmap_free(&sc->acc, free);
		round_commit(d);
		step = step * 3 % 61 + 1;
	}
	graph_json(d, 60, &out);
	strbuf_free(&out);
	free(sc);
	dashboard_stop(d);
}

static void fuzz_writer(const uint8_t *data, size_t size)
{
	struct strbuf out = { 0 };
	struct dj_doc doc;

	strbuf_json_strn(&out, (const char *)data, size);
	if (out.oom || dj_parse(&doc, out.p, out.len, 4) < 0 || doc.n[0].type != DJ_STR)
		abort();
	dj_free(&doc);
	strbuf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!size)
		return 0;
	switch (data[0] % 3) {
	case 0: fuzz_spans(data + 1, size - 1); break;
	case 1: fuzz_metrics(data + 1, size - 1); break;
	default: fuzz_writer(data + 1, size - 1); break;
	}
	return 0;
}
