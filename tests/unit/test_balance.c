/*
 * balance: registry sync (sets per subset, state across reloads, free hooks),
 * every algorithm's distribution against statistical bounds, peak-EWMA
 * avoidance and recovery, consistent hashing stability, outlier detection,
 * pool limits, and a long randomized run checking invariants. Configs are
 * built by hand (no conf.c); time is a fake clock. Runs under ASan/UBSan/LSan.
 */
#include <stdlib.h>

/* allocation failure injection for balance_sync: the n-th allocation from now fails */
static long alloc_fail_in = -1;

static void *t_malloc(size_t n)
{
	if (alloc_fail_in >= 0 && alloc_fail_in-- == 0)
		return NULL;
	return malloc(n);
}

static void *t_calloc(size_t a, size_t b)
{
	if (alloc_fail_in >= 0 && alloc_fail_in-- == 0)
		return NULL;
	return calloc(a, b);
}

#define malloc(n) t_malloc(n)
#define calloc(a, b) t_calloc(a, b)
#include "../../modules/balance.c"
#include "test.h"

#include <stdio.h>

/* ------------------------------------------------------------------ helpers */

static uint64_t rng_state;

static uint64_t rnd64(void)      /* splitmix64: deterministic */
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void seed(uint64_t s)
{
	rng_state = s;
}

/* |observed - n p| within 4 binomial sigmas */
static int within4(uint64_t observed, uint64_t n, double p)
{
	double mean = (double)n * p, sigma = sqrt((double)n * p * (1 - p));

	if (fabs((double)observed - mean) <= 4 * sigma)
		return 1;
	printf("  observed %llu, expected %.1f +- %.1f\n", (unsigned long long)observed, mean, 4 * sigma);
	return 0;
}

static char *versions[] = { "v1", "v2", "v3" };
static char *key_version = "version";

/* a hand-built config: service "reviews" (endpoints 10.0.0.ID:9080, version v((ID-1)%3+1)),
 * a destination with subsets v1 v2 v3 (all with pol), service "ratings" (2 endpoints, no
 * destination) and the local app on 127.0.0.1:9080 */
struct tconf {
	struct conf cf;                 /* first: the struct conf * is the struct tconf * */
	struct conf_service svcs[2];
	struct conf_endpoint *eps;
	struct conf_label *ep_labels;
	struct conf_endpoint ratings[2];
	struct conf_destination dest;
	struct conf_subset subs[3];
	struct conf_label sub_labels[3];
};

static struct conf *mk(const int *ids, size_t n, const struct conf_policy *pol, size_t n_subsets)
{
	struct tconf *t = calloc(1, sizeof(*t));
	size_t i;

	t->eps = calloc(n ? n : 1, sizeof(*t->eps));
	t->ep_labels = calloc(n ? n : 1, sizeof(*t->ep_labels));
	for (i = 0; i < n; i++) {
		snprintf(t->eps[i].addr.text, sizeof(t->eps[i].addr.text), "10.0.0.%d:9080", ids[i]);
		t->eps[i].addr.set = 1;
		t->ep_labels[i].key = key_version;
		t->ep_labels[i].value = versions[(ids[i] - 1) % 3];
		t->eps[i].labels.v = &t->ep_labels[i];
		t->eps[i].labels.n = 1;
	}
	t->svcs[0].name = "reviews";
	t->svcs[0].namespace = "default";
	t->svcs[0].port = 9080;
	t->svcs[0].endpoints = t->eps;
	t->svcs[0].n_endpoints = n;
	for (i = 0; i < 2; i++) {
		snprintf(t->ratings[i].addr.text, sizeof(t->ratings[i].addr.text), "10.0.1.%zu:9080", i + 1);
		t->ratings[i].addr.set = 1;
	}
	t->svcs[1].name = "ratings";
	t->svcs[1].namespace = "default";
	t->svcs[1].port = 9080;
	t->svcs[1].endpoints = t->ratings;
	t->svcs[1].n_endpoints = 2;
	t->dest.svc = &t->svcs[0];
	t->dest.policy = *pol;
	t->dest.subsets = t->subs;
	t->dest.n_subsets = n_subsets;
	for (i = 0; i < 3; i++) {
		t->subs[i].name = versions[i];
		t->sub_labels[i].key = key_version;
		t->sub_labels[i].value = versions[i];
		t->subs[i].labels.v = &t->sub_labels[i];
		t->subs[i].labels.n = 1;
		t->subs[i].policy = *pol;
	}
	t->cf.services = t->svcs;
	t->cf.n_services = 2;
	t->cf.destinations = &t->dest;
	t->cf.n_destinations = 1;
	t->cf.workload.service = "productpage";
	t->cf.workload.namespace = "default";
	snprintf(t->cf.workload.app.text, sizeof(t->cf.workload.app.text), "127.0.0.1:9080");
	t->cf.workload.app.set = 1;
	return &t->cf;
}

static void tfree(struct conf *cf)
{
	struct tconf *t = (struct tconf *)cf;

	if (!t)
		return;
	free(t->eps);
	free(t->ep_labels);
	free(t);
}

static struct conf_policy policy(enum conf_lb lb)
{
	struct conf_policy p = default_policy;

	p.lb = lb;
	return p;
}

static const int ids5[] = { 1, 2, 3, 4, 5 };
static const int ids6[] = { 1, 2, 3, 4, 5, 6 };

/* the set of reviews (subset -1 = whole service) in cf */
static struct balance_set *reviews(const struct conf *cf, int subset)
{
	return balance_set_of(cf, &cf->services[0], subset);
}

static int index_of(const struct balance_set *s, const struct balance_ep *e)
{
	size_t i;

	for (i = 0; i < s->n_eps; i++)
		if (s->eps[i] == e)
			return (int)i;
	return -1;
}

/* free hook bookkeeping */
static char freed[64][64];
static size_t n_freed, n_sets_freed;

static void count_free(struct balance_ep *e)
{
	if (n_freed < 64)
		snprintf(freed[n_freed], sizeof(freed[0]), "%s", e->addr);
	n_freed++;
}

static void count_set_free(struct balance_set *s)
{
	n_sets_freed++;
}

static int was_freed(const char *addr)
{
	size_t i, c = 0;

	for (i = 0; i < n_freed && i < 64; i++)
		c += !strcmp(freed[i], addr);
	return (int)c;
}

/* ------------------------------------------------------------------ registry */

static void test_sync(void)
{
	struct conf_policy pol = policy(CONF_LB_ROUND_ROBIN);
	struct conf *cf = mk(ids6, 6, &pol, 3), *cf2;
	struct balance_set *all, *v1, *v2, *v3, *rat, *app, **sets;
	struct balance_ep *e1, *e4;
	size_t n, i;
	int ok;

	TEST("sync: builds the sets", balance_sync(cf) == 0);
	n = balance_sets(&sets);
	TEST("sync: one set per service, per subset, and the app", n == 1 + 3 + 1 + 1);
	all = reviews(cf, -1);
	v1 = reviews(cf, 0);
	v2 = reviews(cf, 1);
	v3 = reviews(cf, 2);
	rat = balance_set_of(cf, &cf->services[1], -1);
	app = balance_app_set();
	TEST("sync: whole-service set has every endpoint", all && all->n_eps == 6 && !strcmp(all->subset, "") &&
	     !strcmp(all->service, "reviews") && !strcmp(all->namespace, "default"));
	TEST("sync: subset v1 = endpoints labelled version=v1, config order",
	     v1 && v1->n_eps == 2 && !strcmp(v1->eps[0]->addr, "10.0.0.1:9080") &&
	     !strcmp(v1->eps[1]->addr, "10.0.0.4:9080") && !strcmp(v1->subset, "v1"));
	TEST("sync: subsets v2 and v3", v2 && v3 && v2->n_eps == 2 && v3->n_eps == 2 &&
	     !strcmp(v2->eps[0]->addr, "10.0.0.2:9080") && !strcmp(v3->eps[1]->addr, "10.0.0.6:9080"));
	TEST("sync: subset endpoints are their own (own state, like Istio's per-subset clusters)",
	     v1->eps[0] != all->eps[0] && v1->eps[0]->set == v1 && all->eps[0]->set == all);
	TEST("sync: endpoints point at their config", all->eps[2]->conf == &cf->services[0].endpoints[2]);
	TEST("sync: policies point into the config", all->policy == &cf->destinations[0].policy &&
	     v2->policy == &cf->destinations[0].subsets[1].policy);
	TEST("sync: a service without destination rule gets the default policy (peak_ewma)",
	     rat && rat->n_eps == 2 && rat->policy->lb == CONF_LB_PEAK_EWMA &&
	     rat->policy->outlier_max_ejection_percent == 10);
	TEST("sync: no subset beyond the rule's", !reviews(cf, 3) && !balance_set_of(cf, &cf->services[1], 0) &&
	     !reviews(cf, -2));
	TEST("sync: app set: one endpoint, round robin, no conf endpoint",
	     app && app->n_eps == 1 && !strcmp(app->eps[0]->addr, "127.0.0.1:9080") && !app->eps[0]->conf &&
	     app->policy->lb == CONF_LB_ROUND_ROBIN && sets[n - 1] == app);
	TEST("sync: new endpoints start with the default EWMA", all->eps[0]->ewma_ms == EWMA_DEFAULT_MS);

	/* live state, then a new config object with the same endpoints */
	e1 = all->eps[0];
	e4 = all->eps[3];
	balance_start(e1);
	balance_end(e1, 503, 1, 42.0, 1000.0);
	balance_start(e1);
	balance_conn_open(e1);
	e1->pool = (void *)&ok;
	all->rr = 4;
	cf2 = mk(ids6, 6, &pol, 3);
	cf2->workload.service = "details";
	TEST("resync: ok", balance_sync(cf2) == 0);
	TEST("resync: the app set follows the workload's name", balance_app_set() == app &&
	     !strcmp(app->service, "details") && !strcmp(app->namespace, "default"));
	tfree(cf);
	cf = cf2;
	TEST("resync: same set objects", reviews(cf, -1) == all && reviews(cf, 0) == v1 && reviews(cf, 2) == v3 &&
	     balance_set_of(cf, &cf->services[1], -1) == rat && balance_app_set() == app);
	TEST("resync: same endpoint objects with their state", all->eps[0] == e1 && e1->active == 1 &&
	     e1->connections == 1 && all->connections == 1 && e1->consecutive_5xx == 1 &&
	     e1->consecutive_gateway == 1 && e1->ewma_ms == 42.0 && e1->pool == (void *)&ok && e1->errors == 1 &&
	     all->rr == 4);
	TEST("resync: conf and policy pointers follow the new config", e1->conf == &cf->services[0].endpoints[0] &&
	     e4->conf == &cf->services[0].endpoints[3] && all->policy == &cf->destinations[0].policy &&
	     v1->policy == &cf->destinations[0].subsets[0].policy);
	n = balance_sets(&sets);
	TEST("resync: same number of sets", n == 6);

	/* remove endpoint 4 (v1), add 7 (v1): hook for 4 in the whole set and in v1 */
	balance_ep_free_hook = count_free;
	balance_set_free_hook = count_set_free;
	n_freed = n_sets_freed = 0;
	{
		static const int ids[] = { 1, 2, 3, 5, 6, 7 };

		cf2 = mk(ids, 6, &pol, 3);
	}
	e1->pool = NULL;
	TEST("remove: sync ok", balance_sync(cf2) == 0);
	TEST("remove: hook called for the removed endpoint in each of its sets",
	     n_freed == 2 && was_freed("10.0.0.4:9080") == 2 && n_sets_freed == 0);
	TEST("remove: kept endpoints keep their objects, new one is fresh",
	     all->n_eps == 6 && all->eps[0] == e1 && !strcmp(all->eps[5]->addr, "10.0.0.7:9080") &&
	     all->eps[5]->requests == 0 && v1->n_eps == 2 && !strcmp(v1->eps[1]->addr, "10.0.0.7:9080"));
	/* the old config object is still alive: lookups with it go by name */
	TEST("remove: lookup through an older config finds the live sets",
	     reviews(cf, 1) == v2 && reviews(cf, -1) == all && balance_set_of(cf, &cf->services[1], -1) == rat);
	tfree(cf);
	cf = cf2;

	/* drop subsets v2 and v3 (destination with 1 subset) and the app */
	pol.lb = CONF_LB_LEAST_REQUEST;
	cf2 = mk(ids6, 6, &pol, 1);
	cf2->workload.app.set = 0;
	n_freed = n_sets_freed = 0;
	TEST("shrink: sync ok", balance_sync(cf2) == 0);
	/* v2, v3: 2 endpoints each; the app: 1; whole set: 7 removed, 4 back (new object) */
	TEST("shrink: removed sets freed through both hooks", n_sets_freed == 3 && n_freed == 2 + 2 + 1 + 1 + 1);
	TEST("shrink: no app set", !balance_app_set());
	TEST("shrink: policy change applies to the kept set", reviews(cf2, -1) == all &&
	     all->policy->lb == CONF_LB_LEAST_REQUEST);
	TEST("shrink: lookup of a removed subset through the old config is NULL",
	     reviews(cf, 1) == NULL && reviews(cf, 0) == v1);
	n = balance_sets(&sets);
	TEST("shrink: 3 sets left", n == 3);
	ok = 1;
	for (i = 0; i < all->n_eps; i++)
		ok &= all->eps[i]->set == all;
	TEST("shrink: endpoints belong to their set", ok);
	tfree(cf);
	cf = cf2;

	/* a set's connections to a removed endpoint stop counting */
	balance_conn_open(all->eps[1]);
	balance_conn_open(all->eps[1]);
	{
		static const int ids[] = { 1, 3, 4, 5, 6 };

		cf2 = mk(ids, 5, &pol, 1);
	}
	TEST("conns: before removal", all->connections == 3);
	balance_sync(cf2);
	TEST("conns: the removed endpoint's connections no longer count", all->connections == 1);
	tfree(cf);
	cf = cf2;

	/* the same address twice (conf rejects it, but it must not break): two endpoints */
	{
		static const int dup[] = { 1, 1, 2 }, dup2[] = { 1, 2 };

		cf2 = mk(dup, 3, &pol, 1);
		balance_sync(cf2);
		tfree(cf);
		cf = cf2;
		TEST("duplicate address: two endpoint objects", all->n_eps == 3 && all->eps[0] != all->eps[1] &&
		     !strcmp(all->eps[1]->addr, "10.0.0.1:9080"));
		cf2 = mk(dup, 3, &pol, 1);
		balance_sync(cf2);
		tfree(cf);
		cf = cf2;
		TEST("duplicate address: both kept on reload", all->n_eps == 3 && all->eps[0] != all->eps[1]);
		cf2 = mk(dup2, 2, &pol, 1);
		n_freed = 0;
		balance_sync(cf2);
		tfree(cf);
		cf = cf2;
		TEST("duplicate address: one dropped", all->n_eps == 2 && was_freed("10.0.0.1:9080") == 2);
	}
	/* the same service name twice (conf rejects it): one set, found through both */
	cf2 = mk(ids5, 5, &pol, 1);
	cf2->services[1].name = "reviews";
	balance_sync(cf2);
	tfree(cf);
	cf = cf2;
	TEST("duplicate service: one set for the name", balance_set_of(cf, &cf->services[1], -1) == reviews(cf, -1) &&
	     balance_sets(&sets) == 3 && reviews(cf, -1)->n_eps == 5);

	balance_ep_free_hook = NULL;
	balance_set_free_hook = NULL;
	TEST("sync NULL frees everything", balance_sync(NULL) == 0 && balance_sets(&sets) == 0 && !balance_app_set());
	balance_free_all();
	tfree(cf);
}

/* out of memory at every allocation of a sync in turn: -1 and the previous state intact */
static void test_sync_oom(void)
{
	struct conf_policy pol = policy(CONF_LB_MAGLEV), pol2 = policy(CONF_LB_RING_HASH);
	static const int ids[] = { 2, 3, 4, 7, 8 };
	struct conf *cf = mk(ids6, 6, &pol, 3), *cf2 = mk(ids, 5, &pol2, 2);
	struct balance_set **sets, *snap[8];
	struct balance_ep *eps[8][8];
	size_t n_eps[8], n, i, j, tries = 0;
	int r = -1, intact = 1;

	balance_ep_free_hook = count_free;
	balance_sync(cf);
	n = balance_sets(&sets);
	for (i = 0; i < n; i++) {
		snap[i] = sets[i];
		n_eps[i] = sets[i]->n_eps;
		for (j = 0; j < n_eps[i]; j++)
			eps[i][j] = sets[i]->eps[j];
	}
	n_freed = 0;
	while (r < 0 && tries < 1000) {
		alloc_fail_in = (long)tries++;
		r = balance_sync(cf2);
		alloc_fail_in = -1;
		if (r == 0)
			break;
		intact &= balance_sets(&sets) == n && reviews(cf, -1) == snap[0] && n_freed == 0;
		for (i = 0; i < n; i++) {
			intact &= sets[i] == snap[i] && sets[i]->n_eps == n_eps[i];
			for (j = 0; j < n_eps[i]; j++)
				intact &= sets[i]->eps[j] == eps[i][j] && eps[i][j]->set == snap[i];
		}
		intact &= snap[0]->policy == &cf->destinations[0].policy && snap[0]->ring_hashes == NULL &&
		          snap[0]->table_len == 4093;
	}
	printf("  sync succeeded after %zu failed allocations\n", tries - 1);
	TEST("sync: out of memory at any allocation -> -1, previous state intact, nothing leaked",
	     intact && tries > 10);
	TEST("sync: then succeeds", r == 0 && reviews(cf2, -1) == snap[0] && snap[0]->n_eps == 5 &&
	     snap[0]->ring_hashes && reviews(cf2, 1) && !reviews(cf2, 2) && n_freed == 3 + 1 + 1 + 2);
	balance_ep_free_hook = NULL;
	balance_free_all();
	tfree(cf);
	tfree(cf2);
}

/* ------------------------------------------------------------------ algorithms */

/* picks n times, ending each request at once with latency ms; counts per endpoint index */
static void run_picks(struct balance_set *s, size_t n, uint64_t *counts, double *now, double step)
{
	const char *why;
	struct balance_ep *e;
	size_t i;

	for (i = 0; i < n; i++) {
		e = balance_pick(s, 0, rnd64(), *now, &why);
		if (!e)
			return;
		counts[index_of(s, e)]++;
		*now += step;
	}
}

static void test_round_robin(void)
{
	struct conf_policy pol = policy(CONF_LB_ROUND_ROBIN);
	struct conf *cf = mk(ids5, 5, &pol, 3);
	struct balance_set *s;
	const char *why;
	size_t i;
	int ok = 1;
	double now = 1000;

	balance_sync(cf);
	s = reviews(cf, -1);
	for (i = 0; i < 10000; i++)
		ok &= balance_pick(s, 0, rnd64(), now, &why) == s->eps[i % 5];
	TEST("round_robin: exact cycle over 10,000 picks", ok);
	/* eject 10.0.0.3 by hand: the cycle skips it */
	s->eps[2]->ejected_until = now + 10;
	ejected_recount(s);
	ok = 1;
	for (i = 0; i < 8; i++) {
		struct balance_ep *e = balance_pick(s, 0, rnd64(), now, &why);

		ok &= e != s->eps[2];
	}
	TEST("round_robin: skips an ejected endpoint", ok);
	ok = 0;
	for (i = 0; i < 5; i++)
		ok += balance_pick(s, 0, 0, now + 10, &why) == s->eps[2];
	TEST("round_robin: back in the cycle when its time is up", ok == 1);
	TEST("round_robin: expiry recounted", s->n_ejected == 0 && s->eps[2]->ejected_until == 0 &&
	     s->eps[2]->healthy_since == now + 10);
	balance_free_all();
	tfree(cf);
}

static void test_uniform(enum conf_lb lb, const char *name)
{
	struct conf_policy pol = policy(lb);
	struct conf *cf = mk(ids5, 5, &pol, 3);
	struct balance_set *s;
	uint64_t counts[5] = { 0 };
	double now = 1000;
	char label[128];
	int ok = 1;
	size_t i;

	seed(12345 + lb);
	balance_sync(cf);
	s = reviews(cf, -1);
	run_picks(s, 10000, counts, &now, 0.001);
	for (i = 0; i < 5; i++)
		ok &= within4(counts[i], 10000, 0.2);
	snprintf(label, sizeof(label), "%s: uniform over 5 equal endpoints (10,000 picks, 4 sigma)", name);
	TEST(label, ok);

	/* with one ejected: uniform over the other 4, never the ejected one */
	memset(counts, 0, sizeof(counts));
	s->eps[1]->ejected_until = now + 1000;
	ejected_recount(s);
	run_picks(s, 10000, counts, &now, 0.0);
	ok = counts[1] == 0;
	for (i = 0; i < 5; i++)
		if (i != 1)
			ok &= within4(counts[i], 10000, 0.25);
	snprintf(label, sizeof(label), "%s: skips the ejected endpoint, uniform over the rest", name);
	TEST(label, ok);
	balance_free_all();
	tfree(cf);
}

static void test_least_request(void)
{
	struct conf_policy pol = policy(CONF_LB_LEAST_REQUEST);
	static const int ids2[] = { 1, 2 };
	struct conf *cf = mk(ids5, 4, &pol, 3), *cf2;
	struct balance_set *s;
	uint64_t counts[5] = { 0 };
	double now = 1000;
	size_t i;
	int ok = 1;

	seed(7);
	balance_sync(cf);
	s = reviews(cf, -1);
	/* endpoint 0 idle, the others busy: it wins every pair it is in (1/2 of pairs of 4) */
	for (i = 1; i < 4; i++)
		s->eps[i]->active = 5;
	run_picks(s, 10000, counts, &now, 0);
	TEST("least_request: the idle endpoint wins each pair it is drawn in (P = 1/2, 4 sigma)",
	     within4(counts[0], 10000, 0.5));
	for (i = 1; i < 4; i++)
		s->eps[i]->active = 0;

	/* two endpoints: always both drawn, the fewer-active one always wins */
	cf2 = mk(ids2, 2, &pol, 0);
	balance_sync(cf2);
	tfree(cf);
	cf = cf2;
	s = reviews(cf, -1);
	s->eps[1]->active = 3;
	memset(counts, 0, sizeof(counts));
	run_picks(s, 10000, counts, &now, 0);
	TEST("least_request: two endpoints, fewer active always wins", counts[0] == 10000);

	/* requests kept open: the load evens out (P2C keeps the spread within a few) */
	s->eps[1]->active = 0;
	for (i = 0; i < 1000; i++)
		balance_start(balance_pick(s, 0, rnd64(), now, NULL));
	ok = s->eps[0]->active + s->eps[1]->active == 1000 &&
	     (s->eps[0]->active > s->eps[1]->active ? s->eps[0]->active - s->eps[1]->active
	                                            : s->eps[1]->active - s->eps[0]->active) <= 1;
	TEST("least_request: 1,000 open requests spread evenly over 2", ok);
	balance_free_all();
	tfree(cf);
}

/* simulated traffic, one request per ms, completing at once with each endpoint's latency */
static void ewma_traffic(struct balance_set *s, const double *lat, size_t n, uint64_t *counts, double *now)
{
	struct balance_ep *e;
	size_t i;
	int k;

	for (i = 0; i < n; i++) {
		e = balance_pick(s, 0, rnd64(), *now, NULL);
		k = index_of(s, e);
		counts[k]++;
		balance_start(e);
		balance_end(e, 200, 0, lat[k], *now);
		*now += 0.001;
	}
}

static void test_peak_ewma(void)
{
	struct conf_policy pol = policy(CONF_LB_PEAK_EWMA);
	struct conf *cf = mk(ids5, 3, &pol, 3), *cf2;
	struct balance_set *s;
	uint64_t counts[5] = { 0 };
	double lat[5] = { 10, 10, 100 }, now = 1000;
	struct balance_ep *e;
	size_t i, got_new;

	seed(99);
	balance_sync(cf);
	s = reviews(cf, -1);
	ewma_traffic(s, lat, 10000, counts, &now);
	TEST("peak_ewma: an endpoint 10x slower gets almost nothing (< 0.5% of 10,000)", counts[2] < 50);
	TEST("peak_ewma: the fast two share the rest evenly", within4(counts[0], counts[0] + counts[1], 0.5));
	memset(counts, 0, sizeof(counts));
	ewma_traffic(s, lat, 50000, counts, &now);
	TEST("peak_ewma: still slow: probed now and then, never much (50 s)", counts[2] > 0 && counts[2] < 50);

	/* it heals: once its estimate ages down it is probed, and gets its share back */
	lat[2] = 10;
	memset(counts, 0, sizeof(counts));
	ewma_traffic(s, lat, 40000, counts, &now);
	memset(counts, 0, sizeof(counts));
	ewma_traffic(s, lat, 10000, counts, &now);
	TEST("peak_ewma: recovers its share when its latency improves (> 25% after 40 s)", counts[2] > 2500);
	TEST("peak_ewma: estimate converged", fabs(s->eps[2]->ewma_ms - 10) < 1);

	/* a higher observation counts at once (peak); a lower one moves it by 1 - exp(-dt/tau) */
	e = s->eps[0];
	balance_start(e);
	balance_end(e, 200, 0, 50, now);
	TEST("peak_ewma: a peak is taken at once", e->ewma_ms == 50 && e->ewma_at == now);
	balance_start(e);
	balance_end(e, 200, 0, 10, now + 10);
	/* moved 1 - 1/e of the way from 50 to 10 */
	TEST("peak_ewma: a lower value after tau moves 63% of the way",
	     fabs(e->ewma_ms - (50 * exp(-1) + 10 * (1 - exp(-1)))) < 1e-9);
	balance_start(e);
	balance_end(e, 0, 1, 0.5, now + 10.001);
	TEST("peak_ewma: a failure without response never lowers it", e->ewma_ms >= 10);

	/* busy with old data is not free: cost keeps the old estimate times load */
	e->ewma_ms = 100;
	e->ewma_at = now - 600;
	TEST("peak_ewma: idle with old data: aged towards zero, so it is tried again", ewma_cost(e, now) < 1e-6);
	e->active = 3;
	TEST("peak_ewma: busy with old data: old estimate x (active + 1)", ewma_cost(e, now) == 400);
	e->active = 0;

	/* a new endpoint is tried, not flooded */
	{
		static const int ids4[] = { 1, 2, 3, 4 };

		cf2 = mk(ids4, 4, &pol, 3);
	}
	balance_sync(cf2);
	tfree(cf);
	cf = cf2;
	for (i = 0; i < 3; i++) {
		s->eps[i]->ewma_ms = 10;
		s->eps[i]->ewma_at = now;
	}
	TEST("peak_ewma: a new endpoint starts at the default", s->eps[3]->ewma_ms == EWMA_DEFAULT_MS &&
	     s->eps[3]->ewma_at == 0);
	e = reviews(cf, 0)->eps[0];
	balance_start(e);
	balance_end(e, 0, 1, 0.2, now);
	TEST("peak_ewma: a fast failure as first observation does not lower the default",
	     e->ewma_ms == EWMA_DEFAULT_MS);
	balance_start(e);
	balance_end(e, 200, 0, 0.3, now + 0.001);
	TEST("peak_ewma: the first response replaces the default", e->ewma_ms == 0.3);
	/* the fast three answer in 10 ms; the new one never answers: it is tried, and its
	 * cost (1 ms x (in flight + 1)) passes the others' 10 ms after ~9 requests */
	got_new = 0;
	for (i = 0; i < 1000; i++) {
		e = balance_pick(s, 0, rnd64(), now, NULL);
		balance_start(e);
		if (e == s->eps[3])
			got_new++;
		else
			balance_end(e, 200, 0, 10, now);
		now += 0.001;
	}
	TEST("peak_ewma: a new endpoint is tried but not flooded (1,000 requests)", got_new > 0 && got_new <= 10);
	balance_free_all();
	tfree(cf);
}

/* ------------------------------------------------------------------ consistent hashing */

#define NKEYS 10000

static uint64_t key_of(size_t i)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "user-%zu", i);

	return balance_hash(buf, (size_t)n);
}

static void map_keys(struct balance_set *s, char (*out)[16], double now)
{
	size_t i;
	struct balance_ep *e;

	for (i = 0; i < NKEYS; i++) {
		e = balance_pick(s, key_of(i), rnd64(), now, NULL);
		snprintf(out[i], 16, "%s", e ? e->addr + 7 : "-");
	}
}

static void test_consistent(enum conf_lb lb, const char *name)
{
	static char before[NKEYS][16], after[NKEYS][16], again[NKEYS][16];
	static const int ids4[] = { 1, 2, 4, 5 }, rev[] = { 5, 4, 3, 2, 1 };
	struct conf_policy pol = policy(lb);
	struct conf *cf, *cf2;
	struct balance_set *s;
	uint64_t counts[5] = { 0 };
	double now = 1000;
	char label[160];
	size_t i, moved, moved_other;
	uint32_t *table;
	int ok;

	seed(4242);
	pol.outlier_max_ejection_percent = 50;
	pol.outlier_consecutive_5xx = 1;
	cf = mk(ids5, 5, &pol, 3);
	balance_sync(cf);
	s = reviews(cf, -1);
	snprintf(label, sizeof(label), "%s: table built at sync (%zu entries)", name, s->table_len);
	TEST(label, s->table && s->table_len >= 5 * 100 && (lb == CONF_LB_RING_HASH) == (s->ring_hashes != NULL));
	map_keys(s, before, now);
	map_keys(s, again, now);
	ok = 1;
	for (i = 0; i < NKEYS; i++)
		ok &= !strcmp(before[i], again[i]);
	snprintf(label, sizeof(label), "%s: the same key always maps to the same endpoint", name);
	TEST(label, ok);
	for (i = 0; i < NKEYS; i++)
		counts[before[i][0] - '1']++;
	ok = 1;
	for (i = 0; i < 5; i++)
		ok &= counts[i] > (lb == CONF_LB_MAGLEV ? 1700 : 1300) && counts[i] < (lb == CONF_LB_MAGLEV ? 2300 : 2700);
	if (!ok)
		printf("  %llu %llu %llu %llu %llu\n", (unsigned long long)counts[0], (unsigned long long)counts[1],
		       (unsigned long long)counts[2], (unsigned long long)counts[3], (unsigned long long)counts[4]);
	snprintf(label, sizeof(label), "%s: 10,000 keys spread evenly over 5 (%s of the mean)", name,
	         lb == CONF_LB_MAGLEV ? "15%" : "35%");
	TEST(label, ok);

	/* a reload with the same endpoints keeps the table; reordered endpoints map the same */
	table = s->table;
	cf2 = mk(ids5, 5, &pol, 3);
	balance_sync(cf2);
	tfree(cf);
	cf = cf2;
	snprintf(label, sizeof(label), "%s: unchanged endpoints: table not rebuilt", name);
	TEST(label, s->table == table);
	cf2 = mk(rev, 5, &pol, 3);
	balance_sync(cf2);
	tfree(cf);
	cf = cf2;
	map_keys(s, again, now);
	ok = 1;
	for (i = 0; i < NKEYS; i++)
		ok &= !strcmp(before[i], again[i]);
	snprintf(label, sizeof(label), "%s: config order does not matter", name);
	TEST(label, ok);

	/* eject endpoint 3: only its keys move */
	for (i = 0; i < s->n_eps; i++)
		if (!strcmp(s->eps[i]->addr, "10.0.0.3:9080")) {
			balance_start(s->eps[i]);
			balance_end(s->eps[i], 500, 0, 1, now);
		}
	TEST("ejected for the next check", s->n_ejected == 1);
	map_keys(s, after, now);
	moved = moved_other = 0;
	ok = 1;
	for (i = 0; i < NKEYS; i++) {
		ok &= after[i][0] != '3';
		if (strcmp(before[i], after[i])) {
			moved++;
			moved_other += before[i][0] != '3';
		}
	}
	snprintf(label, sizeof(label), "%s: ejecting one moves only its keys (%zu moved)", name, moved);
	TEST(label, ok && moved_other == 0 && moved == counts[2]);
	now += 3600;
	map_keys(s, after, now);
	ok = 1;
	for (i = 0; i < NKEYS; i++)
		ok &= !strcmp(before[i], after[i]);
	snprintf(label, sizeof(label), "%s: its keys come back with it", name);
	TEST(label, ok);

	/* remove endpoint 3 of 5 from the config: about 1/5 of keys move */
	cf2 = mk(ids4, 4, &pol, 3);
	balance_sync(cf2);
	tfree(cf);
	cf = cf2;
	map_keys(s, after, now);
	moved = moved_other = 0;
	for (i = 0; i < NKEYS; i++)
		if (strcmp(before[i], after[i])) {
			moved++;
			moved_other += before[i][0] != '3';
		}
	snprintf(label, sizeof(label), "%s: removing 1 of 5 endpoints remaps %.1f%% of keys (< 35%%)", name,
	         moved * 100.0 / NKEYS);
	TEST(label, moved < NKEYS * 35 / 100 && moved >= counts[2]);
	if (lb == CONF_LB_RING_HASH) {
		TEST("ring_hash: only the removed endpoint's keys move", moved_other == 0);
	} else {
		snprintf(label, sizeof(label), "maglev: few keys of the others move (%zu)", moved_other);
		TEST(label, moved_other < NKEYS * 5 / 100);
	}

	/* no key (hash 0): random, uniform */
	memset(counts, 0, sizeof(counts));
	run_picks(s, 10000, counts, &now, 0);
	ok = 1;
	for (i = 0; i < 4; i++)
		ok &= within4(counts[i], 10000, 0.25);
	snprintf(label, sizeof(label), "%s: hash 0 picks at random", name);
	TEST(label, ok);

	/* switching algorithm drops the table / builds the other one */
	pol.lb = lb == CONF_LB_MAGLEV ? CONF_LB_RING_HASH : CONF_LB_MAGLEV;
	cf2 = mk(ids4, 4, &pol, 3);
	balance_sync(cf2);
	tfree(cf);
	cf = cf2;
	snprintf(label, sizeof(label), "%s: switching hash algorithm rebuilds the table", name);
	TEST(label, s->table && (pol.lb == CONF_LB_RING_HASH) == (s->ring_hashes != NULL));
	pol.lb = CONF_LB_ROUND_ROBIN;
	cf2 = mk(ids4, 4, &pol, 3);
	balance_sync(cf2);
	tfree(cf);
	cf = cf2;
	snprintf(label, sizeof(label), "%s: no table for a non-hash algorithm", name);
	TEST(label, !s->table && !s->ring_hashes && !s->table_len);
	balance_free_all();
	tfree(cf);
}

static void test_maglev_sizes(void)
{
	TEST("maglev: sizes from the prime ladder", maglev_size(1) == 4093 && maglev_size(40) == 4093 &&
	     maglev_size(41) == 32749 && maglev_size(327) == 32749 && maglev_size(328) == 262139);
	TEST("maglev: beyond the ladder, a prime >= 100 x endpoints",
	     maglev_size(3000) >= 300000 && is_prime(maglev_size(3000)));
	TEST("balance_hash: deterministic, spreads", balance_hash("a", 1) == balance_hash("a", 1) &&
	     balance_hash("a", 1) != balance_hash("b", 1) && balance_hash("", 0) != 0 &&
	     (balance_hash("user-1", 6) ^ balance_hash("user-2", 6)) >> 32 != 0);
}

/* ------------------------------------------------------------------ outlier detection */

static void fail(struct balance_ep *e, int status, int gw, double now)
{
	balance_start(e);
	balance_end(e, status, gw, 1, now);
}

static void test_outlier(void)
{
	struct conf_policy pol = policy(CONF_LB_RANDOM);
	struct conf *cf;
	struct balance_set *s;
	struct balance_ep *e, *f;
	const char *why = NULL;
	double now = 1000;
	size_t i;
	uint64_t counts[5] = { 0 };
	int ok;

	pol.outlier_consecutive_5xx = 3;
	pol.outlier_base_ejection_time = 30000;
	pol.outlier_max_ejection_percent = 100;
	cf = mk(ids5, 4, &pol, 3);
	balance_sync(cf);
	s = reviews(cf, -1);
	e = s->eps[0];
	fail(e, 500, 0, now);
	fail(e, 503, 1, now);
	fail(e, 200, 0, now);
	fail(e, 500, 0, now);
	fail(e, 0, 1, now);
	TEST("outlier: a success in between resets the count", !e->ejected_until && e->consecutive_5xx == 2);
	fail(e, 502, 1, now);
	TEST("outlier: 3 consecutive 5xx (status 0 counts) eject for base_ejection_time",
	     e->ejected_until == now + 30 && e->ejections == 1 && s->ejections_total == 1 && s->n_ejected == 1);
	TEST("outlier: counters reset after the ejection", e->consecutive_5xx == 0 && e->consecutive_gateway == 0);
	TEST("outlier: error totals", e->errors == 5 && e->requests == 6);
	ok = 1;
	for (i = 0; i < 1000; i++)
		ok &= balance_pick(s, 0, rnd64(), now + 29.9, &why) != e;
	TEST("outlier: never picked while ejected", ok);
	balance_pick(s, 0, 0, now + 30, &why);
	TEST("outlier: back after the ejection time", !e->ejected_until && !s->n_ejected && e->healthy_since == now + 30);
	now += 31;
	fail(e, 500, 0, now);
	fail(e, 500, 0, now);
	fail(e, 500, 0, now);
	TEST("outlier: second ejection lasts twice as long", e->ejected_until == now + 60 && e->ejections == 2);
	now += 61;
	balance_pick(s, 0, 0, now, &why);
	fail(e, 500, 0, now);
	fail(e, 500, 0, now);
	fail(e, 500, 0, now);
	TEST("outlier: third three times", e->ejected_until == now + 90 && e->ejections == 3);
	/* healthy for two full intervals (10 s) after coming back: the multiplier drops by 2 */
	now += 90;
	balance_pick(s, 0, 0, now, &why);
	fail(e, 200, 0, now + 20.5);
	TEST("outlier: ejection count decays by one per healthy interval", e->ejections == 1);
	now += 21;
	fail(e, 500, 0, now);
	fail(e, 500, 0, now);
	fail(e, 500, 0, now);
	TEST("outlier: so the next ejection is shorter", e->ejected_until == now + 60 && e->ejections == 2);

	/* cap: 300 s */
	now += 1000;
	balance_pick(s, 0, 0, now, &why);
	f = s->eps[1];
	f->ejections = 20;
	fail(f, 500, 0, now);
	fail(f, 500, 0, now);
	fail(f, 500, 0, now);
	TEST("outlier: ejection time capped at 300 s", f->ejected_until == now + 300);
	now += 300;
	balance_free_all();
	tfree(cf);

	/* gateway errors: their own counter, a non-gateway 5xx resets it */
	pol = policy(CONF_LB_RANDOM);
	pol.outlier_consecutive_gateway_errors = 2;
	pol.outlier_max_ejection_percent = 100;
	cf = mk(ids5, 3, &pol, 3);
	balance_sync(cf);
	s = reviews(cf, -1);
	e = s->eps[0];
	fail(e, 502, 1, now);
	fail(e, 500, 0, now);
	fail(e, 503, 1, now);
	TEST("outlier: a non-gateway 5xx resets the gateway count", !e->ejected_until && e->consecutive_gateway == 1);
	fail(e, 0, 1, now);
	TEST("outlier: 2 consecutive gateway errors (connect failure counts) eject", e->ejected_until == now + 30);
	e = s->eps[1];
	for (i = 0; i < 10; i++)
		fail(e, 500, 0, now);
	TEST("outlier: plain 5xx do not trip consecutive_gateway_errors alone", !e->ejected_until);
	balance_free_all();
	tfree(cf);

	/* max_ejection_percent 10 of 3: one can go (0% < 10%), a second not (33% >= 10%) */
	pol = policy(CONF_LB_RANDOM);
	pol.outlier_consecutive_5xx = 1;
	cf = mk(ids5, 3, &pol, 3);
	balance_sync(cf);
	s = reviews(cf, -1);
	fail(s->eps[0], 500, 0, now);
	fail(s->eps[1], 500, 0, now);
	TEST("outlier: max_ejection_percent 10 of 3: one ejected, a second not",
	     s->eps[0]->ejected_until && !s->eps[1]->ejected_until && s->n_ejected == 1);
	TEST("outlier: the refused one's counter restarts (Envoy)", s->eps[1]->consecutive_5xx == 0);
	fail(s->eps[1], 500, 0, now + 30);
	TEST("outlier: once the first is back, the second can go",
	     !s->eps[0]->ejected_until && s->eps[1]->ejected_until == now + 60 && s->n_ejected == 1);
	now += 100;
	balance_free_all();
	tfree(cf);

	/* max_ejection_percent 0: never eject */
	pol.outlier_max_ejection_percent = 0;
	cf = mk(ids5, 3, &pol, 3);
	balance_sync(cf);
	s = reviews(cf, -1);
	fail(s->eps[0], 500, 0, now);
	TEST("outlier: max_ejection_percent 0 ejects nothing", !s->n_ejected);
	balance_free_all();
	tfree(cf);

	/* min_health_percent 50 with 4: 3 ejected (25% healthy) -> panic, all used */
	pol.outlier_max_ejection_percent = 100;
	pol.outlier_min_health_percent = 50;
	cf = mk(ids5, 4, &pol, 3);
	balance_sync(cf);
	s = reviews(cf, -1);
	fail(s->eps[0], 500, 0, now);
	memset(counts, 0, sizeof(counts));
	run_picks(s, 3000, counts, &now, 0);
	TEST("outlier: 75% healthy >= 50%: ejection honoured", counts[0] == 0);
	fail(s->eps[1], 500, 0, now);
	memset(counts, 0, sizeof(counts));
	run_picks(s, 3000, counts, &now, 0);
	TEST("outlier: exactly 50% healthy: ejection honoured", counts[0] == 0 && counts[1] == 0);
	fail(s->eps[2], 500, 0, now);
	memset(counts, 0, sizeof(counts));
	run_picks(s, 10000, counts, &now, 0);
	ok = 1;
	for (i = 0; i < 4; i++)
		ok &= within4(counts[i], 10000, 0.25);
	TEST("outlier: 25% healthy < min_health_percent 50: panic, all four used evenly", ok && s->n_ejected == 3);
	balance_free_all();
	tfree(cf);

	/* everything ejected without panic threshold: no healthy upstream */
	pol.outlier_min_health_percent = 0;
	cf = mk(ids5, 2, &pol, 3);
	balance_sync(cf);
	s = reviews(cf, -1);
	fail(s->eps[0], 500, 0, now);
	fail(s->eps[1], 500, 0, now);
	why = NULL;
	TEST("outlier: all ejected, min_health 0: NULL, no healthy upstream",
	     !balance_pick(s, 0, 1, now, &why) && why && !strcmp(why, "no healthy upstream"));
	TEST("outlier: and back after the time", balance_pick(s, 0, 1, now + 30, &why) != NULL);
	TEST("pick: an empty set (subset without endpoints) is no healthy upstream",
	     !balance_pick(reviews(cf, 2), 0, 1, now, &why) && reviews(cf, 2)->n_eps == 0);
	balance_free_all();
	tfree(cf);
}

/* ------------------------------------------------------------------ pool limits */

static void test_pool(void)
{
	struct conf_policy pol = policy(CONF_LB_ROUND_ROBIN);
	struct conf *cf;
	struct balance_set *s;
	struct balance_ep *e;
	const char *why;
	size_t i;
	int r, ok;

	pol.max_connections = 2;
	pol.max_pending_requests = 2;
	pol.max_concurrent_requests = 5;
	cf = mk(ids5, 2, &pol, 3);
	balance_sync(cf);
	s = reviews(cf, -1);
	e = s->eps[0];

	TEST("pool: GO with room", balance_admit(s, 1, 0, &why) == BALANCE_GO && s->active == 1 && !why);
	balance_conn_open(e);
	TEST("pool: GO", balance_admit(s, 1, 0, &why) == BALANCE_GO && s->active == 2);
	balance_conn_open(s->eps[1]);
	TEST("pool: connections counted on the endpoint and the set",
	     s->connections == 2 && e->connections == 1 && s->eps[1]->connections == 1);
	r = balance_admit(s, 1, 0, &why);
	TEST("pool: max_connections reached: QUEUE", r == BALANCE_QUEUE && s->pending == 1 && s->active == 2 &&
	     !strcmp(why, "max_connections"));
	TEST("pool: QUEUE again", balance_admit(s, 1, 0, &why) == BALANCE_QUEUE && s->pending == 2);
	r = balance_admit(s, 1, 0, &why);
	TEST("pool: queue full: REFUSE max_pending_requests", r == BALANCE_REFUSE &&
	     !strcmp(why, "max_pending_requests") && s->pending == 2 && s->overflows == 1);
	TEST("pool: an idle connection needs no new one: GO despite max_connections",
	     balance_admit(s, 0, 0, &why) == BALANCE_GO && s->active == 3);
	TEST("pool: a queued request still waiting stays queued (counted once)",
	     balance_admit(s, 1, 1, &why) == BALANCE_QUEUE && s->pending == 2);
	balance_conn_close(e);
	TEST("pool: close decrements both", s->connections == 1 && e->connections == 0);
	TEST("pool: queued request admitted when a connection frees: pending-- active++",
	     balance_admit(s, 1, 1, &why) == BALANCE_GO && s->pending == 1 && s->active == 4);
	balance_unqueue(s);
	TEST("pool: unqueue", s->pending == 0);
	TEST("pool: GO up to max_concurrent_requests", balance_admit(s, 0, 0, &why) == BALANCE_GO && s->active == 5);
	r = balance_admit(s, 0, 0, &why);
	TEST("pool: max_concurrent_requests: REFUSE", r == BALANCE_REFUSE && !strcmp(why, "max_concurrent_requests") &&
	     s->active == 5 && s->overflows == 2);
	balance_conn_open(e);
	TEST("pool: QUEUE is not reached past max_concurrent (checked first)",
	     balance_admit(s, 1, 0, &why) == BALANCE_REFUSE && s->pending == 0 && s->overflows == 3);
	balance_release(s);
	TEST("pool: release", s->active == 4);
	TEST("pool: queue again", balance_admit(s, 1, 0, &why) == BALANCE_QUEUE && s->pending == 1);
	TEST("pool: fill to max_concurrent", balance_admit(s, 0, 0, &why) == BALANCE_GO && s->active == 5);
	balance_conn_close(e);
	TEST("pool: a queued request refused by max_concurrent leaves the queue",
	     balance_admit(s, 1, 1, &why) == BALANCE_REFUSE && s->pending == 0 && s->overflows == 4);
	for (i = 0; i < 10; i++)
		balance_release(s);
	balance_unqueue(s);
	balance_conn_close(e);
	balance_conn_close(e);
	TEST("pool: counters never underflow", s->active == 0 && s->pending == 0 && e->connections == 0 &&
	     s->connections == 1);
	balance_free_all();
	tfree(cf);

	/* max_pending_requests 0 = unset: queue up to Envoy's default 1024 */
	pol.max_pending_requests = 0;
	pol.max_concurrent_requests = 0;
	pol.max_connections = 1;
	cf = mk(ids5, 1, &pol, 3);
	balance_sync(cf);
	s = reviews(cf, -1);
	balance_conn_open(s->eps[0]);
	ok = 1;
	for (i = 0; i < DEFAULT_MAX_PENDING; i++)
		ok &= balance_admit(s, 1, 0, &why) == BALANCE_QUEUE;
	TEST("pool: max_pending 0 queues (up to 1024)", ok && s->pending == DEFAULT_MAX_PENDING);
	TEST("pool: ... and never grows without bound", balance_admit(s, 1, 0, &why) == BALANCE_REFUSE &&
	     !strcmp(why, "max_pending_requests"));
	balance_free_all();
	tfree(cf);

	/* no limits: always GO */
	pol = policy(CONF_LB_ROUND_ROBIN);
	cf = mk(ids5, 1, &pol, 3);
	balance_sync(cf);
	s = reviews(cf, -1);
	ok = 1;
	for (i = 0; i < 10000; i++) {
		ok &= balance_admit(s, 1, 0, &why) == BALANCE_GO;
		balance_conn_open(s->eps[0]);
	}
	TEST("pool: no limits: always GO", ok && s->active == 10000 && s->connections == 10000 && !s->overflows);
	balance_free_all();
	tfree(cf);
}

/* ------------------------------------------------------------------ randomized run */

#define MAXF 4096

/* the test's own record of what it holds: requests on endpoints, admissions, queue, connections */
static struct { struct balance_ep *e; } inflight[MAXF], conns[MAXF];
static size_t n_inflight, n_conns;
static struct balance_set *admitted_set[MAXF], *queued_set[MAXF];
static size_t n_admitted, n_queued;

static void fuzz_ep_hook(struct balance_ep *e)
{
	size_t i;

	for (i = 0; i < n_inflight;)     /* requests on it will not report */
		if (inflight[i].e == e)
			inflight[i] = inflight[--n_inflight];
		else
			i++;
	for (i = 0; i < n_conns;)        /* nor will its connections */
		if (conns[i].e == e)
			conns[i] = conns[--n_conns];
		else
			i++;
}

static void fuzz_set_hook(struct balance_set *s)
{
	size_t i;

	for (i = 0; i < n_admitted;)
		if (admitted_set[i] == s)
			admitted_set[i] = admitted_set[--n_admitted];
		else
			i++;
	for (i = 0; i < n_queued;)
		if (queued_set[i] == s)
			queued_set[i] = queued_set[--n_queued];
		else
			i++;
}

static struct conf *fuzz_conf(uint64_t r, enum conf_lb lb)
{
	static int ids[8];
	struct conf_policy pol = policy(lb);
	size_t n = 0, i;

	for (i = 1; i <= 8; i++)
		if (r >> i & 1)
			ids[n++] = (int)i;
	pol.outlier_consecutive_5xx = 2 + (uint32_t)(r >> 10 & 3);
	pol.outlier_consecutive_gateway_errors = (uint32_t)(r >> 12 & 3);
	pol.outlier_base_ejection_time = 1000 + (uint32_t)(r >> 14 & 7) * 1000;
	pol.outlier_interval = 2000;
	pol.outlier_max_ejection_percent = (uint32_t)(r >> 17 & 63);
	pol.outlier_min_health_percent = (uint32_t)(r >> 23 & 1) * 50;
	pol.max_connections = (uint32_t)(r >> 24 & 7);
	pol.max_pending_requests = (uint32_t)(r >> 27 & 7);
	pol.max_concurrent_requests = (uint32_t)(r >> 30 & 15);
	return mk(ids, n, &pol, 1 + (r >> 34) % 3);
}

static void test_randomized(void)
{
	static const enum conf_lb lbs[] = { CONF_LB_PEAK_EWMA, CONF_LB_ROUND_ROBIN, CONF_LB_LEAST_REQUEST,
	                                    CONF_LB_RANDOM, CONF_LB_RING_HASH, CONF_LB_MAGLEV };
	struct conf *cf = NULL, *cf2;
	struct balance_set **sets, *s;
	struct balance_ep *e;
	const char *why;
	double now = 5000;
	size_t op, i, j, n, bad_pick = 0, bad_share = 0, bad_count = 0, picks = 0, ejections = 0, panics = 0;
	uint64_t r, before;
	uint32_t c, prev;

	seed(2024);
	balance_ep_free_hook = fuzz_ep_hook;
	balance_set_free_hook = fuzz_set_hook;
	for (op = 0; op < 100000; op++) {
		r = rnd64();
		if (!cf || r % 2000 == 0) {          /* reload */
			cf2 = fuzz_conf(rnd64(), lbs[rnd64() % 6]);
			if (balance_sync(cf2) < 0)
				bad_count++;
			tfree(cf);
			cf = cf2;
			continue;
		}
		now += (double)(rnd64() % 100) / 1000.0;
		n = balance_sets(&sets);
		s = sets[rnd64() % n];
		switch (r % 8) {
		case 0:
		case 1: {                             /* pick and start */
			int panic;

			ejections_expire(s, now);
			panic = s->n_ejected &&
			        (s->n_eps - s->n_ejected) * 100 < (size_t)s->policy->outlier_min_health_percent * s->n_eps;
			e = balance_pick(s, r & 4 ? rnd64() : 0, rnd64(), now, &why);
			if (!e) {
				bad_pick += s->n_eps && (panic || s->n_ejected < s->n_eps);
				break;
			}
			picks++;
			panics += panic;
			bad_pick += e->set != s || (e->ejected_until && !panic);
			if (n_inflight < MAXF) {
				balance_start(e);
				inflight[n_inflight++].e = e;
			}
			break;
		}
		case 2:
		case 3: {                             /* end one */
			static const int statuses[] = { 200, 200, 404, 500, 502, 503, 504, 0 };
			int st;

			if (!n_inflight)
				break;
			i = rnd64() % n_inflight;
			e = inflight[i].e;
			inflight[i] = inflight[--n_inflight];
			s = e->set;
			ejections_expire(s, now);
			prev = s->n_ejected;
			before = s->ejections_total;
			st = statuses[rnd64() % 8];
			balance_end(e, st, st == 0 || (st >= 502 && st <= 504), (double)(rnd64() % 200), now);
			if (s->ejections_total != before) {
				ejections++;
				/* Envoy's rule: allowed only while ejected * 100 / n < max_ejection_percent */
				bad_share += !(prev * 100.0 / (double)s->n_eps < s->policy->outlier_max_ejection_percent) ||
				             s->n_ejected != prev + 1;
			}
			break;
		}
		case 4: {                             /* admit */
			int need = (int)(rnd64() & 1), res;

			if (n_queued && rnd64() & 1) {
				i = rnd64() % n_queued;
				s = queued_set[i];
				res = balance_admit(s, need, 1, &why);
				if (res != BALANCE_QUEUE)
					queued_set[i] = queued_set[--n_queued];
			} else {
				res = balance_admit(s, need, 0, &why);
				if (res == BALANCE_QUEUE && n_queued < MAXF)
					queued_set[n_queued++] = s;
				else if (res == BALANCE_QUEUE)
					balance_unqueue(s);
			}
			if (res == BALANCE_GO) {
				if (n_admitted < MAXF)
					admitted_set[n_admitted++] = s;
				else
					balance_release(s);
			}
			break;
		}
		case 5:                               /* release or unqueue */
			if (n_admitted && rnd64() & 1) {
				i = rnd64() % n_admitted;
				balance_release(admitted_set[i]);
				admitted_set[i] = admitted_set[--n_admitted];
			} else if (n_queued) {
				i = rnd64() % n_queued;
				balance_unqueue(queued_set[i]);
				queued_set[i] = queued_set[--n_queued];
			}
			break;
		case 6:                               /* open or close a connection */
			if (n_conns && (rnd64() & 1 || n_conns == MAXF)) {
				i = rnd64() % n_conns;
				balance_conn_close(conns[i].e);
				conns[i] = conns[--n_conns];
			} else if (s->n_eps) {
				e = s->eps[rnd64() % s->n_eps];
				balance_conn_open(e);
				conns[n_conns++].e = e;
			}
			break;
		default:                              /* time passes */
			now += (double)(rnd64() % 5000) / 1000.0;
			break;
		}
		/* counters agree with what the test holds */
		if (op % 97 == 0) {
			n = balance_sets(&sets);
			for (i = 0; i < n; i++) {
				size_t act = 0, pend = 0, cx = 0, ej = 0;

				s = sets[i];
				for (j = 0; j < n_admitted; j++)
					act += admitted_set[j] == s;
				for (j = 0; j < n_queued; j++)
					pend += queued_set[j] == s;
				for (j = 0; j < n_conns; j++)
					cx += conns[j].e->set == s;
				bad_count += s->active != act || s->pending != pend || s->connections != cx;
				for (j = 0; j < s->n_eps; j++) {
					size_t a = 0, k, ec = 0;

					e = s->eps[j];
					for (k = 0; k < n_inflight; k++)
						a += inflight[k].e == e;
					for (k = 0; k < n_conns; k++)
						ec += conns[k].e == e;
					bad_count += e->active != a || e->connections != ec || e->set != s ||
					             e->active > 100000 || e->consecutive_5xx > 100;
					ej += e->ejected_until != 0;
				}
				bad_count += s->n_ejected != ej;
			}
		}
	}
	printf("  randomized: %zu picks (%zu in panic), %zu ejections\n", picks, panics, ejections);
	TEST("randomized: 100,000 operations, counters exact (active, pending, connections, ejected)",
	     bad_count == 0);
	TEST("randomized: pick never returns an ejected endpoint outside panic, nor NULL with one usable",
	     bad_pick == 0 && picks > 10000);
	TEST("randomized: every ejection within max_ejection_percent (Envoy's rule)", bad_share == 0 && ejections > 100);
	/* drain what is held */
	while (n_inflight)
		balance_end(inflight[--n_inflight].e, 200, 0, 1, now);
	while (n_admitted)
		balance_release(admitted_set[--n_admitted]);
	while (n_queued)
		balance_unqueue(queued_set[--n_queued]);
	while (n_conns)
		balance_conn_close(conns[--n_conns].e);
	n = balance_sets(&sets);
	c = 0;
	for (i = 0; i < n; i++) {
		c += sets[i]->active + sets[i]->pending + sets[i]->connections;
		for (j = 0; j < sets[i]->n_eps; j++)
			c += sets[i]->eps[j]->active + sets[i]->eps[j]->connections;
	}
	TEST("randomized: everything back to zero once released", c == 0);
	balance_free_all();
	balance_ep_free_hook = NULL;
	balance_set_free_hook = NULL;
	tfree(cf);
}

int main(void)
{
	seed(1);
	test_sync();
	test_sync_oom();
	test_round_robin();
	test_uniform(CONF_LB_RANDOM, "random");
	test_uniform(CONF_LB_LEAST_REQUEST, "least_request");
	test_uniform(CONF_LB_PEAK_EWMA, "peak_ewma");
	test_least_request();
	test_peak_ewma();
	test_maglev_sizes();
	test_consistent(CONF_LB_RING_HASH, "ring_hash");
	test_consistent(CONF_LB_MAGLEV, "maglev");
	test_outlier();
	test_pool();
	test_randomized();
	return test_report();
}
