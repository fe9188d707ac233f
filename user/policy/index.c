// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Lookup indexes over a loaded policy set: Services by (ns, name),
 * EndpointSlices by (ns, kubernetes.io/service-name), Pods by (ns, name),
 * by namespace and by IP. Sorted arrays of pointers, built once per set
 * (policy_index_build, idempotent) and searched with bisection, so that
 * planning 10,000 services is O(n log n) instead of a scan per service.
 * The set must not gain objects after the index is built.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy_int.h"
#include "common/grow.h"

struct pol_index {
	const struct pol_service **svcs;	/* by ns, name */
	const struct pol_eps **eps;		/* by ns, service_name (NULLs last) */
	size_t n_eps;				/* with a service_name */
	const struct pol_pod **pods;		/* by ns, name */
	const struct pol_pod **pods_ns;		/* by ns, then set order */
	const struct pol_pod **pods_ip;		/* by ip, then set order */
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
	if (!e->service_name)
		return;
	ix_insert((const void **)ix->eps, ix->n_eps++, e, cmp_eps);
}

void policy_index_eps_removing(struct pol_set *set, size_t at)
{
	struct pol_index *ix = set->index;

	if (ix)
		ix->n_eps = ix_drop((const void **)ix->eps, ix->n_eps, &set->eps[at],
				    sizeof(*set->eps));
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
