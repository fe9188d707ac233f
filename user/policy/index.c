// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Lookup indexes over a loaded policy set: Services by (ns, name),
 * EndpointSlices by (ns, kubernetes.io/service-name), Pods by (ns, name),
 * by namespace and by IP. Sorted arrays of pointers, built once per set
 * (policy_index_build, idempotent) and searched with bisection, so that
 * planning 10,000 services is O(n log n) instead of a scan per service.
 * The set must not gain objects after the index is built.
 *
 * The services a Pod feeds (policy_pod_services) come from a table of the
 * slices' endpoints by the pod they name (targetRef) and by address, built
 * at the first question and kept by every slice that comes, goes or is
 * swapped after: a Pod delta costs its own endpoints, not every endpoint
 * of the set.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy_int.h"
#include "common/grow.h"
#include "common/hash.h"

/*
 * One endpoint of a slice under one key: the hash of the pod its targetRef
 * names (slice namespace, pod name), or its address | 1 << 32. An
 * open-addressing table (linear probing, power-of-two capacity, load at
 * most 3/4: 3 MB for 100k endpoints) that keeps entries of one key side by
 * side. Two keys that hash
 * alike only make a Pod feed one more service: re-planned for nothing.
 */
struct ix_ep {
	uint64_t key;		/* 0 = empty */
	const char *ns;		/* the slice's namespace */
	const char *svc;	/* its service_name: the slice's own string, so
				 * also whose entry it is */
};

struct ix_eps {
	struct ix_ep *e;
	size_t cap, n;		/* cap: 0 = not built */
};

static void ix_eps_change(struct pol_set *set, const struct pol_eps *from,
			  const struct pol_eps *to);

struct pol_index {
	const struct pol_service **svcs;	/* by ns, name */
	const struct pol_eps **eps;		/* by ns, service_name (NULLs last) */
	size_t n_eps;				/* with a service_name */
	const struct pol_pod **pods;		/* by ns, name */
	const struct pol_pod **pods_ns;		/* by ns, then set order */
	const struct pol_pod **pods_ip;		/* by ip, then set order */
	struct ix_eps by_ep;			/* slices by endpoint (lazy) */
};

/* names may be missing (NULL) in a set that holds errors */
static const char *str0(const char *s)
{
	return s ? s : "";
}

/* strcmp of a NUL-terminated string against (s, len) */
static int cmp_n(const char *a, const char *s, size_t len)
{
	int c;

	a = str0(a);
	c = strncmp(a, s, len);

	if (c)
		return c;
	return a[len] != '\0';
}

static int cmp_meta(const struct pol_meta *a, const struct pol_meta *b)
{
	int c = strcmp(str0(a->ns), str0(b->ns));

	return c ? c : strcmp(str0(a->name), str0(b->name));
}

static int cmp_svc(const void *a, const void *b)
{
	const struct pol_service *const *x = a, *const *y = b;
	int c = cmp_meta(&(*x)->meta, &(*y)->meta);

	/* stable: of duplicates (an error) the first in the set is found */
	return c ? c : (*x < *y ? -1 : *x > *y);
}

static int cmp_pod(const void *a, const void *b)
{
	const struct pol_pod *const *x = a, *const *y = b;
	int c = cmp_meta(&(*x)->meta, &(*y)->meta);

	/* stable, as for services */
	return c ? c : (*x < *y ? -1 : *x > *y);
}

static int cmp_pod_ns(const void *a, const void *b)
{
	const struct pol_pod *const *x = a, *const *y = b;
	int c = strcmp(str0((*x)->meta.ns), str0((*y)->meta.ns));

	return c ? c : (*x < *y ? -1 : *x > *y);
}

static int cmp_pod_ip(const void *a, const void *b)
{
	const struct pol_pod *const *x = a, *const *y = b;

	if ((*x)->ip != (*y)->ip)
		return (*x)->ip < (*y)->ip ? -1 : 1;
	return *x < *y ? -1 : *x > *y;
}

static int cmp_eps(const void *a, const void *b)
{
	const struct pol_eps *const *x = a, *const *y = b;
	int c = strcmp(str0((*x)->meta.ns), str0((*y)->meta.ns));

	if (!c)
		c = strcmp((*x)->service_name, (*y)->service_name);
	/* set order inside one service: the plan's backend order is stable */
	return c ? c : (*x < *y ? -1 : *x > *y);
}

void policy_index_free(struct pol_set *set)
{
	struct pol_index *ix = set->index;

	if (!ix)
		return;
	free(ix->svcs);
	free(ix->eps);
	free(ix->pods);
	free(ix->pods_ns);
	free(ix->pods_ip);
	free(ix->by_ep.e);
	free(ix);
	set->index = NULL;
}

int policy_index_build(struct pol_set *set)
{
	struct pol_index *ix;

	if (set->index)
		return 0;
	ix = calloc(1, sizeof(*ix));
	if (!ix)
		return -ENOMEM;
	set->index = ix;
	ix->svcs = malloc((set->n_svcs + 1) * sizeof(*ix->svcs));
	ix->eps = malloc((set->n_eps + 1) * sizeof(*ix->eps));
	ix->pods = malloc((set->n_pods + 1) * sizeof(*ix->pods));
	ix->pods_ns = malloc((set->n_pods + 1) * sizeof(*ix->pods_ns));
	ix->pods_ip = malloc((set->n_pods + 1) * sizeof(*ix->pods_ip));
	if (!ix->svcs || !ix->eps || !ix->pods || !ix->pods_ns || !ix->pods_ip) {
		policy_index_free(set);
		return -ENOMEM;
	}
	for (size_t i = 0; i < set->n_svcs; i++)
		ix->svcs[i] = &set->svcs[i];
	qsort(ix->svcs, set->n_svcs, sizeof(*ix->svcs), cmp_svc);
	for (size_t i = 0; i < set->n_eps; i++)
		if (set->eps[i].service_name)
			ix->eps[ix->n_eps++] = &set->eps[i];
	qsort(ix->eps, ix->n_eps, sizeof(*ix->eps), cmp_eps);
	for (size_t i = 0; i < set->n_pods; i++)
		ix->pods[i] = ix->pods_ns[i] = ix->pods_ip[i] = &set->pods[i];
	qsort(ix->pods, set->n_pods, sizeof(*ix->pods), cmp_pod);
	qsort(ix->pods_ns, set->n_pods, sizeof(*ix->pods_ns), cmp_pod_ns);
	qsort(ix->pods_ip, set->n_pods, sizeof(*ix->pods_ip), cmp_pod_ip);
	return 0;
}

/*
 * First index in [0, n) whose element is not below the key, for any sorted
 * pointer array: below(elem, key) says "elem sorts before key".
 */
#define LOWER_BOUND(arr, n, below, key)					\
	({								\
		size_t lo_ = 0, hi_ = (n);				\
		while (lo_ < hi_) {					\
			size_t mid_ = lo_ + (hi_ - lo_) / 2;		\
			if (below((arr)[mid_], key))			\
				lo_ = mid_ + 1;				\
			else						\
				hi_ = mid_;				\
		}							\
		lo_;							\
	})

struct name_key {
	const char *ns, *name;
	size_t ns_len, name_len;
};

static int meta_vs_key(const struct pol_meta *m, const struct name_key *k)
{
	int c = cmp_n(m->ns, k->ns, k->ns_len);

	return c ? c : cmp_n(m->name, k->name, k->name_len);
}

static bool svc_below(const struct pol_service *s, const struct name_key *k)
{
	return meta_vs_key(&s->meta, k) < 0;
}

static bool pod_below(const struct pol_pod *p, const struct name_key *k)
{
	return meta_vs_key(&p->meta, k) < 0;
}

static int eps_vs_key(const struct pol_eps *e, const struct name_key *k)
{
	int c = cmp_n(e->meta.ns, k->ns, k->ns_len);

	return c ? c : cmp_n(e->service_name, k->name, k->name_len);
}

static bool eps_below(const struct pol_eps *e, const struct name_key *k)
{
	return eps_vs_key(e, k) < 0;
}

static bool ns_below(const struct pol_pod *p, const char *ns)
{
	return strcmp(str0(p->meta.ns), ns) < 0;
}

static bool ip_below(const struct pol_pod *p, uint32_t ip)
{
	return p->ip < ip;
}

const struct pol_service *policy_index_service(const struct pol_set *set,
					       const char *ns, size_t ns_len,
					       const char *name, size_t name_len)
{
	const struct pol_index *ix = set->index;
	struct name_key k = { ns, name, ns_len, name_len };
	size_t i;

	if (!ix) {
		for (i = 0; i < set->n_svcs; i++)
			if (meta_vs_key(&set->svcs[i].meta, &k) == 0)
				return &set->svcs[i];
		return NULL;
	}
	i = LOWER_BOUND(ix->svcs, set->n_svcs, svc_below, &k);
	if (i < set->n_svcs && meta_vs_key(&ix->svcs[i]->meta, &k) == 0)
		return ix->svcs[i];
	return NULL;
}

const struct pol_eps *const *policy_index_slices(const struct pol_set *set,
						 const char *ns, const char *svc,
						 size_t *n)
{
	const struct pol_index *ix = set->index;
	struct name_key k = { ns, svc, strlen(ns), strlen(svc) };
	size_t lo, hi;

	*n = 0;
	if (!ix)
		return NULL;
	lo = LOWER_BOUND(ix->eps, ix->n_eps, eps_below, &k);
	for (hi = lo; hi < ix->n_eps && eps_vs_key(ix->eps[hi], &k) == 0; hi++)
		;
	*n = hi - lo;
	return ix->eps + lo;
}

const struct pol_pod *policy_index_pod(const struct pol_set *set,
				       const char *ns, const char *name)
{
	const struct pol_index *ix = set->index;
	struct name_key k = { ns, name, strlen(ns), strlen(name) };
	size_t i;

	if (!ix)
		return NULL;
	i = LOWER_BOUND(ix->pods, set->n_pods, pod_below, &k);
	if (i < set->n_pods && meta_vs_key(&ix->pods[i]->meta, &k) == 0)
		return ix->pods[i];
	return NULL;
}

const struct pol_pod *const *policy_index_pods_in(const struct pol_set *set,
						  const char *ns, size_t *n)
{
	const struct pol_index *ix = set->index;
	size_t lo, hi;

	*n = 0;
	if (!ix)
		return NULL;
	lo = LOWER_BOUND(ix->pods_ns, set->n_pods, ns_below, ns);
	for (hi = lo; hi < set->n_pods && strcmp(str0(ix->pods_ns[hi]->meta.ns), ns) == 0; hi++)
		;
	*n = hi - lo;
	return ix->pods_ns + lo;
}

const struct pol_pod *const *policy_index_pods_ip(const struct pol_set *set,
						  uint32_t ip, size_t *n)
{
	const struct pol_index *ix = set->index;
	size_t lo, hi;

	*n = 0;
	if (!ix)
		return NULL;
	lo = LOWER_BOUND(ix->pods_ip, set->n_pods, ip_below, ip);
	for (hi = lo; hi < set->n_pods && ix->pods_ip[hi]->ip == ip; hi++)
		;
	*n = hi - lo;
	return ix->pods_ip + lo;
}

/*
 * An object array moves under the index: an object comes in at arr[at]
 * (the array may have moved from old_base and holds n objects of stride
 * bytes, the new one counted; old_base is an address only, never read) or
 * goes from there (before the array closes the gap). Pointers are rebased
 * by position, so no sort: O(objects).
 */
static void ix_rebase(const void **ptrs, size_t n_ptrs, uintptr_t old_base, const void *arr,
		      size_t stride, size_t at)
{
	for (size_t i = 0; i < n_ptrs; i++) {
		size_t k = ((uintptr_t)ptrs[i] - old_base) / stride;

		ptrs[i] = (const char *)arr + (k >= at ? k + 1 : k) * stride;
	}
}

/* Drop the pointer to gone from ptrs; those after it move down one. */
static size_t ix_drop(const void **ptrs, size_t n_ptrs, const void *gone, size_t stride)
{
	size_t n = 0;

	for (size_t i = 0; i < n_ptrs; i++) {
		if (ptrs[i] == gone)
			continue;
		ptrs[n++] = ptrs[i] > gone ? (const char *)ptrs[i] - stride : ptrs[i];
	}
	return n;
}

/* Insert p into the sorted ptrs (n_ptrs, room for one more) by cmp. */
static void ix_insert(const void **ptrs, size_t n_ptrs, const void *p,
		      int (*cmp)(const void *, const void *))
{
	size_t i = 0, hi = n_ptrs;

	while (i < hi) {	/* lower bound: bisection */
		size_t mid = i + (hi - i) / 2;

		if (cmp(&ptrs[mid], &p) < 0)
			i = mid + 1;
		else
			hi = mid;
	}
	memmove(&ptrs[i + 1], &ptrs[i], (n_ptrs - i) * sizeof(*ptrs));
	ptrs[i] = p;
}

int policy_index_eps_reserve(struct pol_set *set)
{
	struct pol_index *ix = set->index;

	if (!ix)
		return 0;
	return sm_room((void **)&ix->eps, (set->n_eps + 2) * sizeof(*ix->eps));
}

void policy_index_eps_added(struct pol_set *set, uintptr_t old_base, size_t at)
{
	struct pol_index *ix = set->index;
	const struct pol_eps *e = &set->eps[at];

	if (!ix)
		return;
	ix_rebase((const void **)ix->eps, ix->n_eps, old_base, set->eps, sizeof(*e), at);
	ix_eps_change(set, NULL, e);
	if (!e->service_name)
		return;
	ix_insert((const void **)ix->eps, ix->n_eps++, e, cmp_eps);
}

void policy_index_eps_removing(struct pol_set *set, size_t at)
{
	struct pol_index *ix = set->index;

	if (!ix)
		return;
	ix_eps_change(set, &set->eps[at], NULL);
	ix->n_eps = ix_drop((const void **)ix->eps, ix->n_eps, &set->eps[at], sizeof(*set->eps));
}

int policy_index_svcs_reserve(struct pol_set *set)
{
	struct pol_index *ix = set->index;

	if (!ix)
		return 0;
	return sm_room((void **)&ix->svcs, (set->n_svcs + 2) * sizeof(*ix->svcs));
}

/* set->n_svcs counts the new one; the index holds the others. */
void policy_index_svc_added(struct pol_set *set, uintptr_t old_base, size_t at)
{
	struct pol_index *ix = set->index;

	if (!ix)
		return;
	ix_rebase((const void **)ix->svcs, set->n_svcs - 1, old_base, set->svcs,
		  sizeof(*set->svcs), at);
	ix_insert((const void **)ix->svcs, set->n_svcs - 1, &set->svcs[at], cmp_svc);
}

void policy_index_svc_removing(struct pol_set *set, size_t at)
{
	struct pol_index *ix = set->index;

	if (ix)
		ix_drop((const void **)ix->svcs, set->n_svcs, &set->svcs[at], sizeof(*set->svcs));
}

int policy_index_pods_reserve(struct pol_set *set)
{
	struct pol_index *ix = set->index;
	size_t need = (set->n_pods + 2) * sizeof(*ix->pods);

	if (!ix)
		return 0;
	if (sm_room((void **)&ix->pods, need) || sm_room((void **)&ix->pods_ns, need) ||
	    sm_room((void **)&ix->pods_ip, need))
		return -ENOMEM;
	return 0;
}

/*
 * set->n_pods counts the new one; the indexes hold the others. Rebased
 * pointers keep set order, so the by-namespace and by-IP orders (set order
 * among equals) hold with a sorted insert.
 */
void policy_index_pod_added(struct pol_set *set, uintptr_t old_base, size_t at)
{
	struct pol_index *ix = set->index;
	const struct pol_pod **const arrs[] = { ix ? ix->pods : NULL, ix ? ix->pods_ns : NULL,
						ix ? ix->pods_ip : NULL };
	int (*const cmps[])(const void *, const void *) = { cmp_pod, cmp_pod_ns, cmp_pod_ip };

	if (!ix)
		return;
	for (size_t k = 0; k < 3; k++) {
		ix_rebase((const void **)arrs[k], set->n_pods - 1, old_base, set->pods,
			  sizeof(*set->pods), at);
		ix_insert((const void **)arrs[k], set->n_pods - 1, &set->pods[at], cmps[k]);
	}
}

void policy_index_pod_removing(struct pol_set *set, size_t at)
{
	struct pol_index *ix = set->index;

	if (!ix)
		return;
	ix_drop((const void **)ix->pods, set->n_pods, &set->pods[at], sizeof(*set->pods));
	ix_drop((const void **)ix->pods_ns, set->n_pods, &set->pods[at], sizeof(*set->pods));
	ix_drop((const void **)ix->pods_ip, set->n_pods, &set->pods[at], sizeof(*set->pods));
}

/* ---- slices by endpoint: the services a Pod feeds ---- */

static uint64_t ix_ep_pod_key(const char *ns, const char *name)
{
	uint64_t h = sm_hash_fnv1a64(SM_FNV64_OFFSET, ns, strlen(ns) + 1);	/* (its NUL) */

	h = sm_hash_mix64(sm_hash_fnv1a64(h, name, strlen(name)));
	return h ? h : 1;
}

static uint64_t ix_ep_ip_key(uint32_t ip)
{
	return (uint64_t)ip | 1ull << 32;
}

static size_t ix_ep_home(const struct ix_eps *t, uint64_t key)
{
	return sm_hash_mix64(key) & (t->cap - 1);
}

static void ix_ep_put(struct ix_eps *t, uint64_t key, const char *ns, const char *svc)
{
	size_t i = ix_ep_home(t, key);

	while (t->e[i].key)
		i = (i + 1) & (t->cap - 1);
	t->e[i] = (struct ix_ep){ key, ns, svc };
	t->n++;
}

/* Room for more entries (rehashed into a larger table when needed). */
static int ix_ep_room(struct ix_eps *t, size_t more)
{
	struct ix_ep *old = t->e;
	size_t cap = t->cap ? t->cap : 64, old_cap = t->cap;

	if ((t->n + more) * 4 <= t->cap * 3)
		return 0;
	while ((t->n + more) * 4 > cap * 3)
		cap <<= 1;
	if (!(t->e = calloc(cap, sizeof(*t->e)))) {
		t->e = old;
		return -ENOMEM;
	}
	t->cap = cap;
	t->n = 0;
	for (size_t i = 0; i < old_cap; i++)
		if (old[i].key)
			ix_ep_put(t, old[i].key, old[i].ns, old[i].svc);
	free(old);
	return 0;
}

/* Remove one entry of key and slice svc (if there); its probe run closes up. */
static void ix_ep_del(struct ix_eps *t, uint64_t key, const char *svc)
{
	size_t i = ix_ep_home(t, key), j, h;

	for (; t->e[i].key != key || t->e[i].svc != svc; i = (i + 1) & (t->cap - 1))
		if (!t->e[i].key)
			return;
	for (j = (i + 1) & (t->cap - 1); t->e[j].key; j = (j + 1) & (t->cap - 1)) {
		h = ix_ep_home(t, t->e[j].key);
		if (sm_probe_stays(h, i, j))
			continue;
		t->e[i] = t->e[j];
		i = j;
	}
	t->e[i].key = 0;
	t->n--;
}

/* A slice's entries come (add) or go; only slices of a service have any. */
static int ix_eps_slice(struct ix_eps *t, const struct pol_eps *e, bool add)
{
	const char *ns = str0(e->meta.ns);
	size_t n = 0;

	if (!e->service_name)
		return 0;
	for (size_t i = 0; add && i < e->n_endpoints; i++)
		n += e->endpoints[i].n_addrs + (e->endpoints[i].target_pod != NULL);
	if (add && ix_ep_room(t, n))
		return -ENOMEM;
	for (size_t i = 0; i < e->n_endpoints; i++) {
		const struct pol_endpoint *en = &e->endpoints[i];
		uint64_t key;

		if (en->target_pod) {
			key = ix_ep_pod_key(ns, en->target_pod);
			if (add)
				ix_ep_put(t, key, ns, e->service_name);
			else
				ix_ep_del(t, key, e->service_name);
		}
		for (size_t a = 0; a < en->n_addrs; a++) {
			key = ix_ep_ip_key(en->addrs[a]);
			if (add)
				ix_ep_put(t, key, ns, e->service_name);
			else
				ix_ep_del(t, key, e->service_name);
		}
	}
	return 0;
}

/* Forget the table (no memory to keep it): the next question builds it. */
static void ix_eps_drop(struct pol_index *ix)
{
	free(ix->by_ep.e);
	memset(&ix->by_ep, 0, sizeof(ix->by_ep));
}

static int ix_eps_build(const struct pol_set *set, struct pol_index *ix)
{
	size_t n = 0;

	for (size_t k = 0; k < set->n_eps; k++)
		for (size_t i = 0; set->eps[k].service_name && i < set->eps[k].n_endpoints; i++)
			n += set->eps[k].endpoints[i].n_addrs +
			     (set->eps[k].endpoints[i].target_pod != NULL);
	if (ix_ep_room(&ix->by_ep, n + 1))
		return -ENOMEM;
	for (size_t k = 0; k < set->n_eps; k++)
		ix_eps_slice(&ix->by_ep, &set->eps[k], true);	/* (room is there) */
	return 0;
}

/* A slice comes, goes or is swapped for another under the index. */
static void ix_eps_change(struct pol_set *set, const struct pol_eps *from,
			  const struct pol_eps *to)
{
	struct pol_index *ix = set->index;

	if (!ix || !ix->by_ep.cap)
		return;
	if (from)
		ix_eps_slice(&ix->by_ep, from, false);
	if (to && ix_eps_slice(&ix->by_ep, to, true))
		ix_eps_drop(ix);
}

void policy_index_eps_swapped(struct pol_set *set, const struct pol_eps *from,
			      const struct pol_eps *to)
{
	ix_eps_change(set, from, to);
}

int policy_index_pod_slices(const struct pol_set *set, const struct pol_pod *p,
			    int (*note)(void *arg, const char *ns, const char *name), void *arg)
{
	struct pol_index *ix = set->index;
	uint64_t keys[2];
	size_t n_keys = 0;
	int ret = 0;

	if (!ix)
		return -EINVAL;
	if (!ix->by_ep.cap && ix_eps_build(set, ix))
		return -ENOMEM;
	keys[n_keys++] = ix_ep_pod_key(str0(p->meta.ns), str0(p->meta.name));
	if (p->ip)
		keys[n_keys++] = ix_ep_ip_key(p->ip);
	for (size_t k = 0; k < n_keys && !ret; k++) {
		const struct ix_eps *t = &ix->by_ep;

		for (size_t i = ix_ep_home(t, keys[k]); t->e[i].key && !ret;
		     i = (i + 1) & (t->cap - 1))
			if (t->e[i].key == keys[k])
				ret = note(arg, t->e[i].ns, t->e[i].svc);
	}
	return ret;
}

int policy_index_endpoints(const struct pol_set *set)
{
	struct pol_index *ix = set->index;

	if (!ix)
		return -EINVAL;
	return ix->by_ep.cap ? 0 : ix_eps_build(set, ix);
}

static bool svc_ns_below(const struct pol_service *s, const char *ns)
{
	return strcmp(str0(s->meta.ns), ns) < 0;
}

const struct pol_service *const *policy_index_services_in(const struct pol_set *set,
							  const char *ns, size_t *n)
{
	const struct pol_index *ix = set->index;
	size_t lo, hi;

	*n = 0;
	if (!ix)
		return NULL;
	lo = LOWER_BOUND(ix->svcs, set->n_svcs, svc_ns_below, ns);
	for (hi = lo; hi < set->n_svcs && strcmp(str0(ix->svcs[hi]->meta.ns), ns) == 0; hi++)
		;
	*n = hi - lo;
	return ix->svcs + lo;
}
