/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Connection accounting shared by connect4 (take), sockops and sock_release
 * (give back): per-backend active counts in sm_be_active, maxConnections
 * counts in sm_conn_limit, per-backend/per-service per-CPU totals. Functions
 * take plain keys and a struct sm_sk_state pointer (any map value), so a
 * SEC("syscall") test can drive them with a hash map instead of sk_storage.
 */
#ifndef SM_BPF_CONN_H
#define SM_BPF_CONN_H

#include "maps.h"

/* Add delta to a backend's active count, creating the entry on first use. */
static __always_inline void conn_active_add(const struct sm_be_key *be, __s64 delta)
{
	struct sm_be_active_val zero = {}, *a;

	a = bpf_map_lookup_elem(&sm_be_active, be);
	if (!a) {
		if (delta < 0)
			return;
		bpf_map_update_elem(&sm_be_active, be, &zero, BPF_NOEXIST);
		a = bpf_map_lookup_elem(&sm_be_active, be);
		if (!a)
			return;
	}
	__sync_fetch_and_add(&a->active, delta);
}

/*
 * Take one maxConnections slot of (netns, cluster). Add first, then compare,
 * and back out when over: two CPUs racing for the last slot cannot both
 * win. Returns 0 taken, 1 over the limit, -1 internal error.
 */
static __always_inline int conn_limit_take(__u64 netns, __u64 cluster_id, __u32 max)
{
	struct sm_limit_key k = { .netns_cookie = netns, .cluster_id = cluster_id };
	struct sm_limit_val zero = {}, *v;

	v = bpf_map_lookup_elem(&sm_conn_limit, &k);
	if (!v) {
		bpf_map_update_elem(&sm_conn_limit, &k, &zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&sm_conn_limit, &k);
		if (!v)
			return -1;
	}
	if (__sync_fetch_and_add(&v->active, 1) + 1 > (__s64)max) {
		__sync_fetch_and_add(&v->active, -1);
		return 1;
	}
	return 0;
}

static __always_inline void conn_limit_give(__u64 netns, __u64 cluster_id)
{
	struct sm_limit_key k = { .netns_cookie = netns, .cluster_id = cluster_id };
	struct sm_limit_val *v = bpf_map_lookup_elem(&sm_conn_limit, &k);

	if (v)
		__sync_fetch_and_add(&v->active, -1);
}

/*
 * Give back the counts a socket holds, exactly once whoever calls first
 * (sockops STATE_CB -> CLOSE, cgroup/sock_release, or connect4 reusing the
 * socket). Returns 1 when this call released, 0 when there was nothing to
 * release or another caller already did.
 */
static __always_inline int conn_release(struct sm_sk_state *st)
{
	if (!(st->flags & SM_SK_F_COUNTED))
		return 0;
	if (__sync_val_compare_and_swap(&st->release, 0, 1) != 0)
		return 0;
	conn_active_add(&st->be, -1);
	if (st->flags & SM_SK_F_LIMITED)
		conn_limit_give(st->netns_cookie, st->cluster_id);
	stat_inc(SM_STAT_CONN_RELEASED);
	return 1;
}

/* Per-CPU per-backend totals; the entry is created on first use. */
static __always_inline struct sm_be_stats_val *conn_be_stats(const struct sm_be_key *be)
{
	struct sm_be_stats_val zero = {}, *s;

	s = bpf_map_lookup_elem(&sm_be_stats, be);
	if (!s) {
		bpf_map_update_elem(&sm_be_stats, be, &zero, BPF_NOEXIST);
		s = bpf_map_lookup_elem(&sm_be_stats, be);
	}
	return s;
}

static __always_inline struct sm_svc_stats_val *conn_svc_stats(const struct sm_svc_key *k)
{
	struct sm_svc_stats_val zero = {}, *s;

	s = bpf_map_lookup_elem(&sm_svc_stats, k);
	if (!s) {
		bpf_map_update_elem(&sm_svc_stats, k, &zero, BPF_NOEXIST);
		s = bpf_map_lookup_elem(&sm_svc_stats, k);
	}
	return s;
}

#endif /* SM_BPF_CONN_H */
