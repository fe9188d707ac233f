/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Backend selection for one cluster: the pure decision part of connect4.
 * Reads sm_bset, sm_backend, sm_be_active, sm_maglev and updates sm_rr; no
 * context, no socket, so tests/bpf/progs/test_lb.bpf.c can run it through a
 * SEC("syscall") wrapper with private copies of the maps.
 *
 * Semantics follow Envoy:
 *  - a backend is ELIGIBLE when READY and not ejected (EJECTED with
 *    eject_until_ns 0 = until restored, or still in the future);
 *  - panic: when min_health_pct > 0 and eligible * 100 / ready is below it,
 *    ejections are ignored and every READY backend may be picked;
 *  - not-READY backends are never picked, not even in panic.
 */
#ifndef SM_BPF_LB_H
#define SM_BPF_LB_H

#include "maps.h"

/*
 * The panic ratio and the last-resort scan look at no more than this many
 * backend slots (verifier bound and per-connect cost). Larger sets are
 * judged on their first SM_LB_SCAN_MAX slots, a sample: the agent writes the
 * list in a stable order unrelated to health.
 */
#define SM_LB_SCAN_MAX		64

/* lb_pick() results. */
#define SM_LB_OK		0	/* out filled */
#define SM_LB_NONE		1	/* nothing usable: refuse the connect */
#define SM_LB_ERR		(-1)	/* maps inconsistent: fail open */

enum sm_be_use {
	SM_BE_UNUSABLE	= 0,	/* missing or not READY */
	SM_BE_PANIC	= 1,	/* READY but ejected: only in panic */
	SM_BE_ELIGIBLE	= 2,
};

struct sm_lb_out {
	struct sm_be_key be;	/* chosen backend */
	__u32 idx;		/* its index in the backend list */
	__u32 panic;		/* 1: picked in panic mode */
};

/* How a backend may be used at time now (CLOCK_MONOTONIC ns). */
static __always_inline int lb_backend_use(const struct sm_backend_val *bv, __u64 now)
{
	if (!bv || !(bv->flags & SM_BE_F_READY))
		return SM_BE_UNUSABLE;
	if ((bv->flags & SM_BE_F_EJECTED) &&
	    (bv->eject_until_ns == 0 || bv->eject_until_ns > now))
		return SM_BE_PANIC;
	return SM_BE_ELIGIBLE;
}

/*
 * Look slot idx of set_id up. Returns -1 when the slot is missing, else the
 * enum sm_be_use of its backend, with *be filled.
 */
static __always_inline int lb_slot(__u32 set_id, __u32 idx, __u64 now,
				   struct sm_be_key *be)
{
	struct sm_bset_key k = { .set_id = set_id, .idx = idx };
	struct sm_be_key *b;

	b = bpf_map_lookup_elem(&sm_bset, &k);
	if (!b)
		return -1;
	*be = *b;
	return lb_backend_use(bpf_map_lookup_elem(&sm_backend, b), now);
}

static __always_inline int lb_usable(int use, int panic)
{
	return use == SM_BE_ELIGIBLE || (panic && use == SM_BE_PANIC);
}

static __always_inline __s64 lb_active(const struct sm_be_key *be)
{
	struct sm_be_active_val *a = bpf_map_lookup_elem(&sm_be_active, be);

	return a ? a->active : 0;
}

/*
 * murmur3 fmix32: the client hash for MAGLEV. Tools that want to predict
 * a client's slot compute lb_hash32(key) % maglev_size.
 */
static __always_inline __u32 lb_hash32(__u32 h)
{
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	h ^= h >> 16;
	return h;
}

/*
 * The 64-slot scans (and the policies' tries below) run as bpf_loop() callbacks (5.17+): a callback is
 * verified once, where an open-coded loop inlined into connect4 together
 * with the policy loops exceeded the verifier's 1M-instruction budget.
 */
struct lb_scan_ctx {
	__u64 now;
	__u32 set_id;
	__u32 n;
	__u32 start;		/* first index (scan); current slot (MAGLEV) */
	__u32 panic;		/* in: panic mode (scan, policy tries) */
	__u32 maglev_size;	/* in: MAGLEV table size */
	__u32 ready;		/* out (panic count) */
	__u32 eligible;		/* out (panic count) */
	__u32 seen;		/* out: slots that exist (scan) */
	__u32 found;		/* out: 1 when be/idx are set (scan) */
	__u32 idx;
	struct sm_be_key be;
	__u64 *ctr;		/* in: the cluster's ROUND_ROBIN counter (sm_rr) */
};

static long lb_count_cb(__u32 i, void *data)
{
	struct lb_scan_ctx *c = data;
	struct sm_be_key be;
	int use;

	if (i >= c->n)
		return 1;
	use = lb_slot(c->set_id, i, c->now, &be);
	if (use == SM_BE_ELIGIBLE)
		c->eligible++;
	if (use == SM_BE_ELIGIBLE || use == SM_BE_PANIC)
		c->ready++;
	return 0;
}

/*
 * Panic decision over the first SM_LB_SCAN_MAX slots. Returns 1 for panic,
 * 0 for normal, -1 when no slot is READY (refuse early).
 */
static __always_inline int lb_panic(const struct sm_cluster_val *cl, __u64 now)
{
	struct lb_scan_ctx c = { .now = now, .set_id = cl->set_id, .n = cl->n_backends };

	bpf_loop(SM_LB_SCAN_MAX, lb_count_cb, &c, 0);
	if (!c.ready)
		return -1;
	return (__u64)c.eligible * 100 < (__u64)cl->min_health_pct * c.ready;
}

/*
 * The policies' SM_MAX_PICK_TRIES draws run as bpf_loop() callbacks too,
 * with the scan's context: open-coded, the four 16-try loops inlined into
 * connect4 and connect6 were ~170k of each program's ~220k verified
 * instructions (0.2-0.5 s of verifier time each at agent start). The
 * verifier inlines bpf_loop() with a constant callback into a counted loop
 * of direct calls, so a try costs a call more than before; the draws, their
 * order and the picks are the same.
 */
/* A policy's context: the cluster's list at time now. */
#define LB_TRIES_CTX(cl, now_, panic_) {						\
	.now = (now_), .set_id = (cl)->set_id, .n = (cl)->n_backends, .panic = (panic_),	\
}

/* Up to SM_MAX_PICK_TRIES calls of cb; 0 with *out filled, -1 when none took. */
static __always_inline int lb_tries(struct lb_scan_ctx *c, void *cb, struct sm_lb_out *out)
{
	bpf_loop(SM_MAX_PICK_TRIES, cb, c, 0);
	if (!c->found)
		return -1;
	out->be = c->be;
	out->idx = c->idx;
	return 0;
}

/* A callback's pick: slot idx (c->be already holds its backend); stop. */
static __always_inline long lb_take(struct lb_scan_ctx *c, __u32 idx)
{
	c->idx = idx;
	c->found = 1;
	return 1;
}

/* One ROUND_ROBIN try: every try takes a new ticket, so skipped backends do
 * not double the share of their successor. */
static long lb_rr_cb(__u32 i, void *data)
{
	struct lb_scan_ctx *c = data;
	__u64 ticket = __sync_fetch_and_add(c->ctr, 1);
	__u32 idx = ticket % c->n;

	if (!lb_usable(lb_slot(c->set_id, idx, c->now, &c->be), c->panic))
		return 0;
	return lb_take(c, idx);
}

static __always_inline int lb_pick_rr(__u64 cluster_id, const struct sm_cluster_val *cl,
				      __u64 now, int panic, struct sm_lb_out *out)
{
	struct lb_scan_ctx c = LB_TRIES_CTX(cl, now, panic);
	__u64 zero = 0;

	c.ctr = bpf_map_lookup_elem(&sm_rr, &cluster_id);
	if (!c.ctr) {
		bpf_map_update_elem(&sm_rr, &cluster_id, &zero, BPF_NOEXIST);
		c.ctr = bpf_map_lookup_elem(&sm_rr, &cluster_id);
		if (!c.ctr)
			return -1;
	}
	return lb_tries(&c, lb_rr_cb, out);
}

static long lb_random_cb(__u32 i, void *data)
{
	struct lb_scan_ctx *c = data;
	__u32 idx = bpf_get_prandom_u32() % c->n;

	if (!lb_usable(lb_slot(c->set_id, idx, c->now, &c->be), c->panic))
		return 0;
	return lb_take(c, idx);
}

static __always_inline int lb_pick_random(const struct sm_cluster_val *cl, __u64 now,
					  int panic, struct sm_lb_out *out)
{
	struct lb_scan_ctx c = LB_TRIES_CTX(cl, now, panic);

	return lb_tries(&c, lb_random_cb, out);
}

/*
 * LEAST_REQUEST: Envoy's power of two choices. Two distinct random slots;
 * the one with fewer active connections wins, a tie goes to the first.
 * When only one of the pair is usable it wins; when neither is, draw again.
 */
static long lb_p2c_cb(__u32 i, void *data)
{
	struct lb_scan_ctx *c = data;
	struct sm_be_key a, b;
	__u32 ia, ib, n = c->n;
	int ua, ub;

	ia = bpf_get_prandom_u32() % n;
	ua = lb_usable(lb_slot(c->set_id, ia, c->now, &a), c->panic);
	if (n == 1) {
		if (!ua)
			return 1;	/* the only one is not usable */
		c->be = a;
		return lb_take(c, ia);
	}
	ib = (ia + 1 + bpf_get_prandom_u32() % (n - 1)) % n;
	ub = lb_usable(lb_slot(c->set_id, ib, c->now, &b), c->panic);
	if (ua && (!ub || lb_active(&a) <= lb_active(&b))) {
		c->be = a;
		return lb_take(c, ia);
	}
	if (ub) {
		c->be = b;
		return lb_take(c, ib);
	}
	return 0;
}

static __always_inline int lb_pick_p2c(const struct sm_cluster_val *cl, __u64 now,
				       int panic, struct sm_lb_out *out)
{
	struct lb_scan_ctx c = LB_TRIES_CTX(cl, now, panic);

	return lb_tries(&c, lb_p2c_cb, out);
}

/*
 * MAGLEV: slot hash % maglev_size names a backend index; when that backend
 * is not usable, the following slots are probed (the Maglev table spreads
 * backends, so the next slot is usually another backend).
 */
static long lb_maglev_cb(__u32 i, void *data)
{
	struct lb_scan_ctx *c = data;
	struct sm_bset_key k = { .set_id = c->set_id, .idx = c->start };
	struct sm_maglev_val *m;

	m = bpf_map_lookup_elem(&sm_maglev, &k);
	if (m && m->idx < c->n &&
	    lb_usable(lb_slot(c->set_id, m->idx, c->now, &c->be), c->panic))
		return lb_take(c, m->idx);
	c->start = c->start + 1 < c->maglev_size ? c->start + 1 : 0;
	return 0;
}

static __always_inline int lb_pick_maglev(const struct sm_cluster_val *cl, __u32 hash,
					  __u64 now, int panic, struct sm_lb_out *out)
{
	struct lb_scan_ctx c = LB_TRIES_CTX(cl, now, panic);

	if (!cl->maglev_size)
		return lb_pick_random(cl, now, panic, out);
	c.maglev_size = cl->maglev_size;
	c.start = lb_hash32(hash) % cl->maglev_size;
	return lb_tries(&c, lb_maglev_cb, out);
}

static long lb_scan_cb(__u32 i, void *data)
{
	struct lb_scan_ctx *c = data;
	__u32 idx;
	int use;

	if (i >= c->n || !c->n)
		return 1;
	idx = (c->start + i) % c->n;
	use = lb_slot(c->set_id, idx, c->now, &c->be);
	if (use >= 0)
		c->seen++;
	if (lb_usable(use, c->panic)) {
		c->idx = idx;
		c->found = 1;
		return 1;
	}
	return 0;
}

/*
 * Last resort after the policy's tries failed: the first usable slot from a
 * random start, at most SM_LB_SCAN_MAX slots. Returns SM_LB_OK, SM_LB_NONE,
 * or SM_LB_ERR when no slot of the list exists at all (agent bug).
 */
static __always_inline int lb_scan(const struct sm_cluster_val *cl, __u64 now,
				   int panic, struct sm_lb_out *out)
{
	struct lb_scan_ctx c = {
		.now = now, .set_id = cl->set_id, .n = cl->n_backends,
		.start = bpf_get_prandom_u32(), .panic = panic,
	};

	bpf_loop(SM_LB_SCAN_MAX, lb_scan_cb, &c, 0);
	if (c.found) {
		out->be = c.be;
		out->idx = c.idx;
		return SM_LB_OK;
	}
	return c.seen ? SM_LB_NONE : SM_LB_ERR;
}

/*
 * Pick a backend of cluster cl (id cluster_id) for a client whose identity
 * hashes to hash (MAGLEV only), at time now. Returns SM_LB_OK with *out
 * filled, SM_LB_NONE when no backend may take the connection, SM_LB_ERR when
 * the maps are inconsistent.
 */
static __always_inline int lb_pick(__u64 cluster_id, const struct sm_cluster_val *cl,
				   __u32 hash, __u64 now, struct sm_lb_out *out)
{
	int panic = 0, ret;

	out->panic = 0;
	if (!cl->n_backends)
		return SM_LB_NONE;
	if (cl->min_health_pct) {
		panic = lb_panic(cl, now);
		if (panic < 0)
			return SM_LB_NONE;
	}

	switch (cl->lb) {
	case SM_LB_ROUND_ROBIN:
		ret = lb_pick_rr(cluster_id, cl, now, panic, out);
		break;
	case SM_LB_RANDOM:
		ret = lb_pick_random(cl, now, panic, out);
		break;
	case SM_LB_MAGLEV:
		ret = lb_pick_maglev(cl, hash, now, panic, out);
		break;
	default:
		ret = lb_pick_p2c(cl, now, panic, out);
		break;
	}
	if (ret < 0)
		ret = lb_scan(cl, now, panic, out);
	out->panic = panic;
	return ret;
}

#endif /* SM_BPF_LB_H */
