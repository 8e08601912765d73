/*
 * balance: the registry of upstream sets (one per service, one per subset, one
 * for the local app), endpoint choice, pool limits and outlier detection.
 *
 * Data enters through balance_sync(cf) (a new config: sets and endpoints are
 * matched by name and address so their live state carries over) and through
 * the per-request calls of the proxy (pick, admit, start, end, release,
 * conn_open/close), each with the time passed in. Nothing here does I/O or
 * reads a clock: the unit tests drive it with a fake one. Single-threaded.
 *
 * Memory: one struct per set and per endpoint, an array of endpoint pointers
 * per set, and a lookup table only for the consistent-hash algorithms (built
 * in balance_sync, never on the request path). The request path allocates
 * nothing. Numbers chosen here (tau, ring points, Maglev sizes, ejection cap)
 * are explained in docs/balancing.md.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "balance.h"

#define EWMA_TAU_S          10.0     /* peak-EWMA time constant (Linkerd/Finagle use 10 s) */
#define EWMA_DEFAULT_MS     1.0      /* a new (or long-unobserved) endpoint's estimate */
#define EWMA_MIN_MS         0.01     /* observations are clamped here so cost keeps growing with load */
#define RING_POINTS         100      /* ring_hash points per endpoint */
#define MAGLEV_PER_EP       100      /* Maglev: table entries per endpoint, at least */
#define EJECTION_CAP_MS     300000u  /* Envoy's default max_ejection_time: 300 s */
#define DEFAULT_INTERVAL_MS 10000u   /* outlier interval when the policy has 0 */
#define DEFAULT_MAX_PENDING 1024u    /* max_pending_requests = 0 (unset): Envoy's default */
#define NAME_MAX_LEN        63       /* set names are kept in char[64] */

void (*balance_ep_free_hook)(struct balance_ep *ep);
void (*balance_set_free_hook)(struct balance_set *s);

/*
 * The whole-service policy when a service has no destination rule. Mirrors
 * conf_policy_of()'s defaults (conf.h); kept here so this module and its tests
 * do not depend on conf.c.
 */
static const struct conf_policy default_policy = {
	.lb = CONF_LB_PEAK_EWMA,
	.outlier_interval = 10000,
	.outlier_base_ejection_time = 30000,
	.outlier_max_ejection_percent = 10,
	.outlier_min_health_percent = 0,
};

/* the local app: one endpoint, round robin, no limits, no outlier detection */
static const struct conf_policy app_policy = {
	.lb = CONF_LB_ROUND_ROBIN,
	.outlier_interval = 10000,
	.outlier_base_ejection_time = 30000,
	.outlier_max_ejection_percent = 10,
};

static struct {
	struct balance_set **all;    /* outbound sets in config order, then the app set */
	size_t n_all;
	struct balance_set *app;     /* also the last of all[], or NULL */
	const struct conf *cf;       /* the config the index below was built for */
	struct balance_set **by_plan;/* per service of cf: its whole-service set, then one per subset */
	size_t *first;               /* per service of cf (+1 sentinel): index in by_plan[] of its whole-service set */
	size_t n_services;
	struct balance_set **hash;   /* outbound sets by (service, namespace, subset), open addressing */
	size_t hash_mask;            /* slots - 1 (a power of two), 0 = no table */
} reg;

/* ------------------------------------------------------------------ hashing */

static uint64_t fmix64(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ULL;
	k ^= k >> 33;
	return k;
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;

	while (n--) {
		h ^= *s++;
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* FNV-1a (byte at a time, no alignment concerns) with murmur3's finaliser for avalanche */
uint64_t balance_hash(const char *s, size_t n)
{
	return fmix64(fnv1a(0xcbf29ce484222325ULL, s, n));
}

static size_t name_len(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	return n > NAME_MAX_LEN ? NAME_MAX_LEN : n;
}

static void name_copy(char dst[64], const char *s)
{
	size_t n = name_len(s);

	if (n)
		memcpy(dst, s, n);
	dst[n] = 0;
}

/* names are compared as stored: at most 63 characters (conf limits names to 63) */
static int name_eq(const char *stored, const char *s)
{
	return !strncmp(stored, s ? s : "", NAME_MAX_LEN);
}

static uint64_t key_hash(const char *svc, const char *ns, const char *sub)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	h = fnv1a(h, svc, name_len(svc));
	h = fnv1a(h, "\n", 1);
	h = fnv1a(h, ns, name_len(ns));
	h = fnv1a(h, "\n", 1);
	h = fnv1a(h, sub, name_len(sub));
	return fmix64(h);
}

/* slot of the set named so in table (mask+1 slots), or the empty slot where it would go */
static size_t hash_slot(struct balance_set **table, size_t mask, const char *svc, const char *ns,
                        const char *sub)
{
	size_t i = (size_t)key_hash(svc, ns, sub) & mask;

	while (table[i] && !(name_eq(table[i]->service, svc) && name_eq(table[i]->namespace, ns) &&
	                     name_eq(table[i]->subset, sub)))
		i = (i + 1) & mask;
	return i;
}

static struct balance_set *hash_find(const char *svc, const char *ns, const char *sub)
{
	if (!reg.hash_mask)
		return NULL;
	return reg.hash[hash_slot(reg.hash, reg.hash_mask, svc, ns, sub)];
}

/* ------------------------------------------------------------------ config helpers */

static const struct conf_destination *destination_of(const struct conf *cf, const struct conf_service *svc)
{
	size_t i;

	for (i = 0; i < cf->n_destinations; i++)
		if (cf->destinations[i].svc == svc)
			return &cf->destinations[i];
	return NULL;
}

static const struct conf_policy *policy_of(const struct conf_destination *d, int subset)
{
	if (!d)
		return &default_policy;
	return subset < 0 ? &d->policy : &d->subsets[subset].policy;
}

/* every label of want is on have with the same value */
static int labels_cover(const struct conf_labels *have, const struct conf_labels *want)
{
	size_t i, j;

	for (i = 0; i < want->n; i++) {
		for (j = 0; j < have->n; j++)
			if (!strcmp(have->v[j].key, want->v[i].key) && !strcmp(have->v[j].value, want->v[i].value))
				break;
		if (j == have->n)
			return 0;
	}
	return 1;
}

/* ------------------------------------------------------------------ consistent-hash tables */

struct point {
	uint64_t h;
	uint32_t i;
};

static int point_cmp(const void *a, const void *b)
{
	const struct point *x = a, *y = b;

	if (x->h != y->h)
		return x->h < y->h ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

/*
 * Ketama ring: RING_POINTS points per endpoint at hash("ADDR_k"), sorted.
 * Points depend only on the address, so sidecars with the same endpoints
 * agree, and a change moves only the keys of the points that came or went.
 */
static int ring_build(struct balance_ep **eps, size_t n, uint32_t **table, uint64_t **hashes, size_t *len)
{
	size_t m = n * RING_POINTS, i, k, j = 0;
	struct point *p = malloc(m * sizeof(*p));
	char buf[96];
	int bl;

	*table = malloc(m * sizeof(**table));
	*hashes = malloc(m * sizeof(**hashes));
	if (!p || !*table || !*hashes) {
		free(p);
		free(*table);
		free(*hashes);
		*table = NULL;
		*hashes = NULL;
		return -1;
	}
	for (i = 0; i < n; i++)
		for (k = 0; k < RING_POINTS; k++) {
			bl = snprintf(buf, sizeof(buf), "%s_%zu", eps[i]->addr, k);
			p[j].h = balance_hash(buf, (size_t)bl < sizeof(buf) ? (size_t)bl : sizeof(buf) - 1);
			p[j++].i = (uint32_t)i;
		}
	qsort(p, m, sizeof(*p), point_cmp);
	for (j = 0; j < m; j++) {
		(*hashes)[j] = p[j].h;
		(*table)[j] = p[j].i;
	}
	free(p);
	*len = m;
	return 0;
}

static int is_prime(size_t m)
{
	size_t d;

	if (m < 2)
		return 0;
	for (d = 2; d * d <= m; d++)
		if (m % d == 0)
			return 0;
	return 1;
}

/*
 * Maglev table size: a prime with at least MAGLEV_PER_EP entries per endpoint
 * (imbalance under ~1%), taken from a fixed ladder so the size - and with it
 * every key's slot - changes only when the set crosses 40, 327 or 2621
 * endpoints, not with each endpoint added or removed.
 */
static size_t maglev_size(size_t n)
{
	static const size_t ladder[] = { 4093, 32749, 262139 };
	size_t i, m;

	for (i = 0; i < sizeof(ladder) / sizeof(ladder[0]); i++)
		if (ladder[i] >= n * MAGLEV_PER_EP)
			return ladder[i];
	for (m = n * MAGLEV_PER_EP | 1; !is_prime(m); m += 2)
		;
	return m;
}

/*
 * Google's Maglev population (NSDI'16, section 3.4): each endpoint has a
 * permutation (offset, skip) of the M slots from two hashes of its address;
 * endpoints take turns claiming their next free preferred slot until the table
 * is full. Turns go in address-hash order so config order does not matter.
 */
static int maglev_build(struct balance_ep **eps, size_t n, uint32_t **table, size_t *len)
{
	size_t m = maglev_size(n), filled = 0, i, t;
	struct point *ord = malloc(n * sizeof(*ord));
	uint64_t *pos = malloc(n * sizeof(*pos)), *skip = malloc(n * sizeof(*skip));
	uint32_t *tab = malloc(m * sizeof(*tab));

	if (!ord || !pos || !skip || !tab) {
		free(ord);
		free(pos);
		free(skip);
		free(tab);
		return -1;
	}
	for (i = 0; i < n; i++) {
		ord[i].h = balance_hash(eps[i]->addr, strlen(eps[i]->addr));
		ord[i].i = (uint32_t)i;
	}
	qsort(ord, n, sizeof(*ord), point_cmp);
	for (t = 0; t < n; t++) {
		pos[t] = ord[t].h % m;
		skip[t] = fmix64(ord[t].h ^ 0x9e3779b97f4a7c15ULL) % (m - 1) + 1;
	}
	memset(tab, 0xff, m * sizeof(*tab));
	while (filled < m)
		for (t = 0; t < n && filled < m; t++) {
			while (tab[pos[t]] != UINT32_MAX)
				pos[t] = (pos[t] + skip[t]) % m;
			tab[pos[t]] = ord[t].i;
			pos[t] = (pos[t] + skip[t]) % m;
			filled++;
		}
	free(ord);
	free(pos);
	free(skip);
	*table = tab;
	*len = m;
	return 0;
}

/* ------------------------------------------------------------------ registry */

/*
 * The hook may close the endpoint's idle connections (balance_conn_close);
 * busy ones it only detaches, so whatever is left stops counting against the
 * set's max_connections here: their close must not be reported later.
 */
static void ep_free(struct balance_ep *e)
{
	if (balance_ep_free_hook)
		balance_ep_free_hook(e);
	if (e->set)
		e->set->connections -= e->connections < e->set->connections ? e->connections : e->set->connections;
	free(e);
}

static void set_free(struct balance_set *s)
{
	size_t i;

	if (!s)
		return;
	for (i = 0; i < s->n_eps; i++)
		ep_free(s->eps[i]);
	if (balance_set_free_hook)
		balance_set_free_hook(s);
	free(s->eps);
	s->eps = NULL;
	free(s->table);
	s->table = NULL;
	free(s->ring_hashes);
	s->ring_hashes = NULL;
	free(s);
}

static struct balance_ep *ep_new(struct balance_set *s, const char *addr)
{
	struct balance_ep *e = calloc(1, sizeof(*e));
	size_t n = strlen(addr);

	if (!e)
		return NULL;
	e->set = s;
	if (n >= sizeof(e->addr))
		n = sizeof(e->addr) - 1;
	memcpy(e->addr, addr, n);
	e->ewma_ms = EWMA_DEFAULT_MS;    /* tried, but its cost grows as soon as it is busy */
	return e;
}

/* recount ejected endpoints (after endpoints came or went) */
static void ejected_recount(struct balance_set *s)
{
	size_t i;

	s->n_ejected = 0;
	s->next_return = 0;
	for (i = 0; i < s->n_eps; i++)
		if (s->eps[i]->ejected_until) {
			s->n_ejected++;
			if (!s->next_return || s->eps[i]->ejected_until < s->next_return)
				s->next_return = s->eps[i]->ejected_until;
		}
}

/* what one set will be after the sync; everything allocated before anything changes */
struct plan {
	const struct conf_service *svc;  /* NULL for the app set */
	const struct conf_policy *policy;
	const char *subset;
	struct balance_set *old;     /* the live set it continues, or NULL */
	struct balance_set *fresh;   /* a new set, when there is no old one */
	struct balance_ep **eps;     /* its endpoints, config order */
	const struct conf_endpoint **confs;  /* parallel to eps */
	unsigned char *is_new;       /* eps[k] was allocated by this sync */
	unsigned char *kept;         /* per old->eps: continues */
	size_t n;
	uint32_t *table;             /* a new consistent-hash table, or NULL (keep/none) */
	uint64_t *ring_hashes;
	size_t table_len;
	int table_drop;              /* free the old table (endpoints or algorithm changed) */
};

static void plan_undo(struct plan *p)
{
	size_t k;

	for (k = 0; k < p->n; k++)
		if (p->is_new && p->is_new[k])
			free(p->eps[k]);         /* never seen by the proxy: no hook */
	free(p->eps);
	free(p->confs);
	free(p->is_new);
	free(p->kept);
	free(p->table);
	free(p->ring_hashes);
	free(p->fresh);
}

static void plan_tmp_free(struct plan *p)
{
	free(p->confs);
	free(p->is_new);
	free(p->kept);
}

/* one set's endpoints: those of svc carrying all of labels (NULL = all), or the app */
static int plan_fill(struct plan *p, const struct conf_service *svc, const struct conf_labels *labels,
                     const struct conf_addr *app)
{
	struct balance_set *s = p->old;
	size_t j, k, cap = svc ? svc->n_endpoints : 1;
	const char *addr;
	int changed, kind;

	if (!s && !(s = p->fresh = calloc(1, sizeof(*s))))
		return -1;
	p->eps = calloc(cap ? cap : 1, sizeof(*p->eps));
	p->confs = calloc(cap ? cap : 1, sizeof(*p->confs));
	p->is_new = calloc(cap ? cap : 1, 1);
	if (!p->eps || !p->confs || !p->is_new)
		return -1;
	if (p->old && p->old->n_eps && !(p->kept = calloc(p->old->n_eps, 1)))
		return -1;
	for (j = 0; j < cap; j++) {
		const struct conf_endpoint *ce = svc ? &svc->endpoints[j] : NULL;

		if (ce && labels && !labels_cover(&ce->labels, labels))
			continue;
		addr = ce ? ce->addr.text : app->text;
		for (k = 0; p->old && k < p->old->n_eps; k++)
			if (!p->kept[k] && !strncmp(p->old->eps[k]->addr, addr, sizeof(p->old->eps[k]->addr) - 1))
				break;
		if (p->old && k < p->old->n_eps) {
			p->kept[k] = 1;
			p->eps[p->n] = p->old->eps[k];
		} else {
			if (!(p->eps[p->n] = ep_new(s, addr)))
				return -1;
			p->is_new[p->n] = 1;
		}
		p->confs[p->n++] = ce;   /* NULL for the app: the proxy connects to cf->workload.app */
	}
	changed = !p->old || p->n != p->old->n_eps;
	for (k = 0; !changed && k < p->n; k++)
		changed = p->eps[k] != p->old->eps[k];
	/* the table kind wanted: 1 ring, 2 maglev; and the kind the old set has */
	kind = p->policy->lb == CONF_LB_RING_HASH ? 1 : p->policy->lb == CONF_LB_MAGLEV ? 2 : 0;
	if (p->old && p->old->table) {
		int old_kind = p->old->ring_hashes ? 1 : 2;

		if (changed || kind != old_kind)
			p->table_drop = 1;
		else
			return 0;            /* keep it */
	}
	if (kind == 1 && p->n && ring_build(p->eps, p->n, &p->table, &p->ring_hashes, &p->table_len) < 0)
		return -1;
	if (kind == 2 && p->n && maglev_build(p->eps, p->n, &p->table, &p->table_len) < 0)
		return -1;
	return 0;
}

static void plan_commit(struct plan *p, const char *svc, const char *ns)
{
	struct balance_set *s = p->old ? p->old : p->fresh;
	size_t k;

	if (p->old) {
		for (k = 0; k < p->old->n_eps; k++)
			if (!p->kept[k])
				ep_free(p->old->eps[k]);
		free(s->eps);
	}
	name_copy(s->service, svc);      /* the same for a matched set, except the app's */
	name_copy(s->namespace, ns);
	name_copy(s->subset, p->subset);
	s->eps = p->eps;
	s->n_eps = p->n;
	s->policy = p->policy;
	for (k = 0; k < p->n; k++)
		p->eps[k]->conf = p->confs[k];
	if (p->table_drop) {
		free(s->table);
		s->table = NULL;
		free(s->ring_hashes);
		s->ring_hashes = NULL;
		s->table_len = 0;
	}
	if (p->table) {
		s->table = p->table;
		s->ring_hashes = p->ring_hashes;
		s->table_len = p->table_len;
	}
	if (s->n_eps)
		s->rr %= (uint32_t)s->n_eps;
	ejected_recount(s);
	plan_tmp_free(p);
}

int balance_sync(const struct conf *cf)
{
	size_t n_plans = 0, n_all = 0, i, j, p, n_sub, slots = 8, *first = NULL, slot;
	struct plan *plans = NULL;
	struct balance_set **all = NULL, **by_plan = NULL, **table = NULL, *s;
	const struct conf_destination *d;
	const struct conf_service *svc;
	int has_app;

	if (!cf) {
		balance_free_all();
		return 0;
	}
	has_app = cf->workload.app.set;
	for (i = 0; i < cf->n_services; i++) {
		d = destination_of(cf, &cf->services[i]);
		n_plans += 1 + (d ? d->n_subsets : 0);
	}
	while (slots < 2 * n_plans)
		slots <<= 1;
	plans = calloc(n_plans + 1, sizeof(*plans));
	all = calloc(n_plans + 1, sizeof(*all));
	by_plan = calloc(n_plans + 1, sizeof(*by_plan));
	first = calloc(cf->n_services + 1, sizeof(*first));
	table = calloc(slots, sizeof(*table));
	if (!plans || !all || !by_plan || !first || !table)
		goto err;

	/* phase 1: allocate everything; live state is not touched */
	for (i = 0, p = 0; i < cf->n_services; i++) {
		svc = &cf->services[i];
		d = destination_of(cf, svc);
		n_sub = d ? d->n_subsets : 0;
		first[i] = p;
		for (j = 0; j <= n_sub; j++, p++) {
			struct plan *pl = &plans[p];

			pl->svc = svc;
			pl->subset = j ? d->subsets[j - 1].name : "";
			pl->policy = policy_of(d, (int)j - 1);
			slot = hash_slot(table, slots - 1, svc->name, svc->namespace, pl->subset);
			if (table[slot]) {      /* the same name twice (conf rejects it): one set */
				by_plan[p] = table[slot];
				continue;
			}
			pl->old = hash_find(svc->name, svc->namespace, pl->subset);
			if (plan_fill(pl, svc, j ? &d->subsets[j - 1].labels : NULL, NULL) < 0)
				goto err;
			table[slot] = by_plan[p] = all[n_all++] = pl->old ? pl->old : pl->fresh;
		}
	}
	first[cf->n_services] = p;
	if (has_app) {
		plans[p].policy = &app_policy;
		plans[p].subset = "";
		plans[p].old = reg.app;
		if (plan_fill(&plans[p], NULL, NULL, &cf->workload.app) < 0)
			goto err;
		all[n_all++] = reg.app ? reg.app : plans[p].fresh;
	}

	/* phase 2: commit; nothing below can fail */
	for (i = 0; i < reg.n_all; i++) {     /* old sets no longer named by the config */
		s = reg.all[i];
		if (s == reg.app ? !has_app : table[hash_slot(table, slots - 1, s->service, s->namespace, s->subset)] != s)
			set_free(s);
	}
	for (p = 0; p < n_plans + (size_t)has_app; p++) {
		if (!plans[p].eps)
			continue;            /* a duplicate */
		if (plans[p].svc)
			plan_commit(&plans[p], plans[p].svc->name, plans[p].svc->namespace);
		else
			plan_commit(&plans[p], cf->workload.service,
			            cf->workload.namespace ? cf->workload.namespace : "default");
	}
	free(reg.all);
	free(reg.by_plan);
	free(reg.first);
	free(reg.hash);
	reg.all = all;
	reg.n_all = n_all;
	reg.app = has_app ? all[n_all - 1] : NULL;
	reg.cf = cf;
	reg.by_plan = by_plan;
	reg.first = first;
	reg.n_services = cf->n_services;
	reg.hash = table;
	reg.hash_mask = slots - 1;
	free(plans);
	return 0;
err:
	for (p = 0; plans && p <= n_plans; p++)
		plan_undo(&plans[p]);
	free(plans);
	free(all);
	free(by_plan);
	free(first);
	free(table);
	return -1;
}

struct balance_set *balance_set_of(const struct conf *cf, const struct conf_service *svc, int subset)
{
	const struct conf_destination *d;
	size_t i;

	if (!cf || !svc || subset < -1)
		return NULL;
	if (cf == reg.cf && svc >= cf->services && svc < cf->services + reg.n_services) {
		i = (size_t)(svc - cf->services);
		if ((size_t)(subset + 1) >= reg.first[i + 1] - reg.first[i])
			return NULL;
		return reg.by_plan[reg.first[i] + (size_t)(subset + 1)];
	}
	/* an older config still in use by some connection: look the set up by name */
	if (subset < 0)
		return hash_find(svc->name, svc->namespace, "");
	if (!(d = destination_of(cf, svc)) || (size_t)subset >= d->n_subsets)
		return NULL;
	return hash_find(svc->name, svc->namespace, d->subsets[subset].name);
}

struct balance_set *balance_app_set(void)
{
	return reg.app;
}

size_t balance_sets(struct balance_set ***out)
{
	*out = reg.all;
	return reg.n_all;
}

void balance_free_all(void)
{
	size_t i;

	for (i = 0; i < reg.n_all; i++)
		set_free(reg.all[i]);
	free(reg.all);
	free(reg.by_plan);
	free(reg.first);
	free(reg.hash);
	memset(&reg, 0, sizeof(reg));
}

/* ------------------------------------------------------------------ ejection state */

/* endpoints whose ejection time is over are back in rotation */
static void ejections_expire(struct balance_set *s, double now)
{
	size_t i;
	struct balance_ep *e;

	if (!s->n_ejected || now < s->next_return)
		return;
	s->n_ejected = 0;
	s->next_return = 0;
	for (i = 0; i < s->n_eps; i++) {
		e = s->eps[i];
		if (!e->ejected_until)
			continue;
		if (now >= e->ejected_until) {
			e->healthy_since = e->ejected_until;
			e->ejected_until = 0;
		} else {
			s->n_ejected++;
			if (!s->next_return || e->ejected_until < s->next_return)
				s->next_return = e->ejected_until;
		}
	}
}

static double interval_s(const struct conf_policy *pol)
{
	return (pol->outlier_interval ? pol->outlier_interval : DEFAULT_INTERVAL_MS) / 1000.0;
}

/*
 * Envoy lowers a host's ejection multiplier by one at each interval tick that
 * finds it healthy. Without timers: one step per full interval since it came
 * back, applied when we next look.
 */
static void ejections_decay(struct balance_ep *e, double now)
{
	double iv = interval_s(e->set->policy), k;

	if (!e->ejections || e->ejected_until || e->healthy_since <= 0 || now <= e->healthy_since)
		return;
	k = floor((now - e->healthy_since) / iv);
	if (k < 1)
		return;
	if (k >= e->ejections) {
		e->ejections = 0;
		e->healthy_since = 0;
	} else {
		e->ejections -= (uint32_t)k;
		e->healthy_since += k * iv;
	}
}

/* Envoy: eject only while ejected * 100 / n < max_ejection_percent (so at least one when that is > 0) */
static void eject(struct balance_ep *e, double now)
{
	struct balance_set *s = e->set;
	const struct conf_policy *pol = s->policy;
	uint64_t ms, cap = pol->outlier_base_ejection_time > EJECTION_CAP_MS ? pol->outlier_base_ejection_time
	                                                                     : EJECTION_CAP_MS;

	ejections_expire(s, now);
	if (e->ejected_until || !s->n_eps)
		return;
	if ((double)s->n_ejected * 100.0 / (double)s->n_eps >= (double)pol->outlier_max_ejection_percent)
		return;
	ejections_decay(e, now);
	ms = (uint64_t)pol->outlier_base_ejection_time * ((uint64_t)e->ejections + 1);
	if (ms > cap)
		ms = cap;
	if (!ms)
		return;
	e->ejected_until = now + (double)ms / 1000.0;
	e->ejections++;
	e->healthy_since = 0;
	s->ejections_total++;
	s->n_ejected++;
	if (!s->next_return || e->ejected_until < s->next_return)
		s->next_return = e->ejected_until;
}

/* ------------------------------------------------------------------ peak EWMA */

/*
 * The estimate as of now: while nothing is observed it decays towards zero
 * (as Finagle's and tower's do), so an endpoint that lost the comparisons is
 * tried again after a while instead of starving on one old, slow sample.
 */
static double ewma_now(const struct balance_ep *e, double now)
{
	if (e->ewma_at <= 0 || now <= e->ewma_at)
		return e->ewma_ms;
	return e->ewma_ms * exp(-(now - e->ewma_at) / EWMA_TAU_S);
}

/*
 * Linkerd/Finagle: cost = latency x (requests in flight + 1). An endpoint with
 * requests in flight keeps its last estimate (aging must not make a busy, maybe
 * stuck, endpoint look free); an idle one is re-probed once its estimate has
 * aged down to the others'.
 */
static double ewma_cost(const struct balance_ep *e, double now)
{
	double est = ewma_now(e, now);

	if (!e->active)
		return est;
	return (est > e->ewma_ms ? est : e->ewma_ms) * ((double)e->active + 1.0);
}

static void ewma_observe(struct balance_ep *e, int status, double rtt, double now)
{
	double cur = ewma_now(e, now), w;

	if (!(rtt >= EWMA_MIN_MS))       /* also NaN */
		rtt = EWMA_MIN_MS;
	if (rtt > cur)
		e->ewma_ms = rtt;            /* peak: a worse observation counts at once */
	else if (status == 0)
		return;                      /* no response: never makes the endpoint look faster */
	else if (e->ewma_at <= 0)
		e->ewma_ms = rtt;            /* the first response replaces the default */
	else {
		/* the stored value (not the aged one: that would count the time twice) */
		w = now > e->ewma_at ? exp(-(now - e->ewma_at) / EWMA_TAU_S) : 1.0;
		e->ewma_ms = e->ewma_ms * w + rtt * (1.0 - w);
	}
	if (now > e->ewma_at)
		e->ewma_at = now;
}

/* ------------------------------------------------------------------ picking */

/* the k-th endpoint that may be used (skip: leave ejected ones out) */
static struct balance_ep *nth_usable(struct balance_set *s, size_t k, int skip)
{
	size_t i;

	if (!skip)
		return s->eps[k];
	for (i = 0; i < s->n_eps; i++)
		if (!s->eps[i]->ejected_until && !k--)
			return s->eps[i];
	return NULL;
}

/* two distinct random usable endpoints (the same one twice when only one is usable) */
static void two_choices(struct balance_set *s, size_t usable, uint64_t rnd, int skip, struct balance_ep **a,
                        struct balance_ep **b)
{
	size_t i = (size_t)(rnd % usable), j;

	*a = nth_usable(s, i, skip);
	if (usable < 2) {
		*b = *a;
		return;
	}
	j = (size_t)(fmix64(rnd ^ 0x9e3779b97f4a7c15ULL) % (usable - 1));
	if (j >= i)
		j++;
	*b = nth_usable(s, j, skip);
}

/* consistent hash: the key's slot, then onwards to the first usable endpoint */
static struct balance_ep *table_walk(struct balance_set *s, size_t at, int skip)
{
	size_t k;
	struct balance_ep *e;

	for (k = 0; k < s->table_len; k++) {
		e = s->eps[s->table[(at + k) % s->table_len]];
		if (!skip || !e->ejected_until)
			return e;
	}
	return NULL;
}

static struct balance_ep *hash_pick(struct balance_set *s, uint64_t hash, int skip)
{
	size_t lo = 0, hi = s->table_len, mid;

	if (!s->ring_hashes)
		return table_walk(s, (size_t)(hash % s->table_len), skip);
	while (lo < hi) {                /* first point >= hash, wrapping around */
		mid = lo + (hi - lo) / 2;
		if (s->ring_hashes[mid] < hash)
			lo = mid + 1;
		else
			hi = mid;
	}
	return table_walk(s, lo == s->table_len ? 0 : lo, skip);
}

struct balance_ep *balance_pick(struct balance_set *s, uint64_t hash, uint64_t rnd, double now,
                                const char **why)
{
	const struct conf_policy *pol;
	struct balance_ep *a, *b;
	size_t usable, k, i;
	int skip;

	if (!s || !s->n_eps) {
		if (why)
			*why = "no healthy upstream";
		return NULL;
	}
	pol = s->policy;
	ejections_expire(s, now);
	usable = s->n_eps - s->n_ejected;
	/* panic: below min_health_percent healthy, ejections are ignored (Envoy) */
	skip = s->n_ejected && usable * 100 >= (size_t)pol->outlier_min_health_percent * s->n_eps;
	if (!skip)
		usable = s->n_eps;
	if (!usable) {
		if (why)
			*why = "no healthy upstream";
		return NULL;
	}
	switch (pol->lb) {
	case CONF_LB_ROUND_ROBIN:
		for (k = 0; k < s->n_eps; k++) {
			i = (s->rr + k) % s->n_eps;
			if (!skip || !s->eps[i]->ejected_until) {
				s->rr = (uint32_t)((i + 1) % s->n_eps);
				return s->eps[i];
			}
		}
		return NULL;             /* not reached: usable > 0 */
	case CONF_LB_LEAST_REQUEST:
		two_choices(s, usable, rnd, skip, &a, &b);
		return b->active < a->active ? b : a;
	case CONF_LB_PEAK_EWMA:
		two_choices(s, usable, rnd, skip, &a, &b);
		return ewma_cost(b, now) < ewma_cost(a, now) ? b : a;
	case CONF_LB_RING_HASH:
	case CONF_LB_MAGLEV:
		if (hash && s->table && s->table_len)
			return hash_pick(s, hash, skip);
		break;                   /* no key: random */
	case CONF_LB_RANDOM:
	default:
		break;
	}
	return nth_usable(s, (size_t)(rnd % usable), skip);
}

/* ------------------------------------------------------------------ pool limits */

int balance_admit(struct balance_set *s, int need_conn, int from_queue, const char **why)
{
	const struct conf_policy *pol = s->policy;
	uint32_t max_pending = pol->max_pending_requests ? pol->max_pending_requests : DEFAULT_MAX_PENDING;

	if (pol->max_concurrent_requests && s->active >= pol->max_concurrent_requests) {
		if (from_queue && s->pending)
			s->pending--;
		s->overflows++;
		if (why)
			*why = "max_concurrent_requests";
		return BALANCE_REFUSE;
	}
	if (need_conn && pol->max_connections && s->connections >= pol->max_connections) {
		if (why)
			*why = "max_connections";
		if (from_queue)
			return BALANCE_QUEUE;    /* still waiting, still counted once */
		if (s->pending >= max_pending) {
			s->overflows++;
			if (why)
				*why = "max_pending_requests";
			return BALANCE_REFUSE;
		}
		s->pending++;
		return BALANCE_QUEUE;
	}
	if (from_queue && s->pending)
		s->pending--;
	s->active++;
	if (why)
		*why = NULL;
	return BALANCE_GO;
}

void balance_unqueue(struct balance_set *s)
{
	if (s->pending)
		s->pending--;
}

void balance_release(struct balance_set *s)
{
	if (s->active)
		s->active--;
}

void balance_conn_open(struct balance_ep *e)
{
	e->connections++;
	e->set->connections++;
}

void balance_conn_close(struct balance_ep *e)
{
	if (e->connections) {
		e->connections--;
		if (e->set->connections)
			e->set->connections--;
	}
}

/* ------------------------------------------------------------------ request lifecycle */

void balance_start(struct balance_ep *e)
{
	e->active++;
	e->requests++;
}

void balance_end(struct balance_ep *e, int status, int gateway_error, double latency_ms, double now)
{
	const struct conf_policy *pol = e->set->policy;
	int err5 = status == 0 || (status >= 500 && status <= 599) || gateway_error;

	if (e->active)
		e->active--;
	ejections_expire(e->set, now);
	ewma_observe(e, status, latency_ms, now);
	ejections_decay(e, now);
	if (!err5) {
		e->consecutive_5xx = 0;
		e->consecutive_gateway = 0;
		return;
	}
	e->errors++;
	e->consecutive_5xx++;
	e->consecutive_gateway = gateway_error ? e->consecutive_gateway + 1 : 0;
	if ((pol->outlier_consecutive_5xx && e->consecutive_5xx >= pol->outlier_consecutive_5xx) ||
	    (pol->outlier_consecutive_gateway_errors &&
	     e->consecutive_gateway >= pol->outlier_consecutive_gateway_errors)) {
		eject(e, now);
		/* Envoy resets the counter whether or not max_ejection_percent allowed the ejection */
		e->consecutive_5xx = 0;
		e->consecutive_gateway = 0;
	}
}
