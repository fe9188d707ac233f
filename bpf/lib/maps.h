/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Every sockmesh map, written once. bpf/maps.bpf.c includes this file with
 * SM_MAPS_DEFINE set and so owns the definitions; every other object includes
 * it without and sees the same text as `extern` declarations, which the libbpf
 * static linker (bpftool gen object) resolves to the one definition (it
 * checks that the definitions are identical, see the kernel selftests
 * linked_maps1.c / linked_maps2.c). Test programs define SM_MAPS_DEFINE to get
 * private copies of the same maps.
 *
 * Link order matters with libbpf 1.1 (bpftool 7.1): when an object holding
 * only the extern declarations comes before the defining object, the linker
 * leaves the .maps DATASEC offsets of those maps at 0 and opening the linked
 * object fails with "map relo failed to find map". maps.bpf.o must be the
 * first input of `bpftool gen object` (the Makefile puts it first).
 * __weak copies instead of extern fail the same way (and duplicate .maps).
 *
 * max_entries come from SM_MAX_* in sockmesh.h; the agent may resize
 * (bpf_map__set_max_entries) between open and load.
 *
 * Preallocation: a preallocated hash map allocates all max_entries elements
 * when it is created, and sm_maglev's 1M slots were ~0.13 s of the agent's
 * start and 80 MB of kernel memory, used only by consistentHash clusters.
 * It is BPF_F_NO_PREALLOC: BPF only looks it up (same cost), the agent's
 * writes take elements from the map's allocator (measured on 6.18: 100k
 * batched updates 90 ms against 21 ms preallocated). The maps the agent
 * writes on every apply (sm_bset, sm_backend, ...) stay preallocated for
 * that 4x, and so do the per-CPU totals although they are ~0.3 s of map
 * creation: without preallocation a first insert from connect4 takes a
 * per-CPU allocation, 21 us on average and up to 4.4 ms measured, against
 * 0.8 us. Preallocation is paid once per pin path: a restarted agent
 * adopts the pinned maps.
 */
#ifndef SM_BPF_MAPS_H
#define SM_BPF_MAPS_H

#include "common.h"

#ifdef SM_MAPS_DEFINE
#define SM_MAP_DECL
#else
#define SM_MAP_DECL extern
#endif

/* Service VIP:port -> cluster or weighted route; written by the agent. */
SM_MAP_DECL struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct sm_svc_key);
	__type(value, struct sm_svc_val);
	__uint(max_entries, SM_MAX_SERVICES);
} sm_svc SEC(".maps");

/* Weighted route slots (route_id, slot) -> cluster; written by the agent. */
SM_MAP_DECL struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct sm_route_key);
	__type(value, struct sm_route_val);
	__uint(max_entries, SM_MAX_ROUTE);
} sm_route SEC(".maps");

/* Cluster id -> backend set, LB policy, limits; written by the agent. */
SM_MAP_DECL struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u64);
	__type(value, struct sm_cluster_val);
	__uint(max_entries, SM_MAX_CLUSTERS);
} sm_cluster SEC(".maps");

/* Backend list slots (set_id, idx) -> backend address; written by the agent. */
SM_MAP_DECL struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct sm_bset_key);
	__type(value, struct sm_be_key);
	__uint(max_entries, SM_MAX_BSET);
} sm_bset SEC(".maps");

/* Maglev table slots (set_id, slot) -> backend list index; written by the agent. */
SM_MAP_DECL struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct sm_bset_key);
	__type(value, struct sm_maglev_val);
	__uint(max_entries, SM_MAX_MAGLEV);
} sm_maglev SEC(".maps");

/* Backend address -> ready/ejected state; written by the agent and sockmeshctl. */
SM_MAP_DECL struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct sm_be_key);
	__type(value, struct sm_backend_val);
	__uint(max_entries, SM_MAX_BACKENDS);
} sm_backend SEC(".maps");

/* Backend address -> active connections; written by BPF only (atomics). */
SM_MAP_DECL struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct sm_be_key);
	__type(value, struct sm_be_active_val);
	__uint(max_entries, SM_MAX_BACKENDS);
} sm_be_active SEC(".maps");

/* Backend address -> per-CPU connects / connect failures; written by BPF. */
SM_MAP_DECL struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__type(key, struct sm_be_key);
	__type(value, struct sm_be_stats_val);
	__uint(max_entries, SM_MAX_BACKENDS);
} sm_be_stats SEC(".maps");

/* Service VIP:port -> per-CPU connect outcomes; written by BPF. */
SM_MAP_DECL struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__type(key, struct sm_svc_key);
	__type(value, struct sm_svc_stats_val);
	__uint(max_entries, SM_MAX_SERVICES);
} sm_svc_stats SEC(".maps");

/* (client netns, cluster) -> active connections for maxConnections; BPF (atomics). */
SM_MAP_DECL struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct sm_limit_key);
	__type(value, struct sm_limit_val);
	__uint(max_entries, SM_MAX_CONN_LIMIT);
} sm_conn_limit SEC(".maps");

/* Cluster id -> ROUND_ROBIN counter; BPF (atomic fetch_add), agent may seed. */
SM_MAP_DECL struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u64);
	__type(value, __u64);
	__uint(max_entries, SM_MAX_CLUSTERS);
} sm_rr SEC(".maps");

/* Global per-CPU counters indexed by enum sm_stat; written by BPF. */
SM_MAP_DECL struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, SM_STAT_SLOTS);
} sm_stats_v2 SEC(".maps");

/* Established TCP sockets by their own 4-tuple; written by sockops (BPF). */
SM_MAP_DECL struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__type(key, struct sm_sock_key);
	__type(value, __u64);
	__uint(max_entries, SM_MAX_SOCKS);
} sm_sock_hash SEC(".maps");

/*
 * Sockets that received redirected bytes (key: the receiver's own sm_sock_key);
 * written by the sender's sk_msg, deleted at close by sockops (pods) or the
 * agent (its proxy sockets). Such a socket must keep its psock: leaving
 * sm_sock_hash would purge unread bytes.
 */
SM_MAP_DECL struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct sm_sock_key);
	__type(value, __u32);
	__uint(max_entries, SM_MAX_SOCKS);
} sm_redir_tgt SEC(".maps");

/* Pod IP -> per-pod flags (redirect opt-out); written by the agent. */
SM_MAP_DECL struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct sm_pod_key);
	__type(value, struct sm_pod_val);
	__uint(max_entries, SM_MAX_PODS);
} sm_pod SEC(".maps");

/* Node-wide runtime settings, one entry; written by the agent. */
SM_MAP_DECL struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct sm_config_val);
	__uint(max_entries, 1);
} sm_config SEC(".maps");

/* Per-socket bookkeeping (original VIP, counts held, sticky redirect); BPF. */
SM_MAP_DECL struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sm_sk_state);
} sm_sk_state SEC(".maps");

/*
 * Display names (services, clusters, pods) for sockmeshctl, also when the
 * agent is down; written by the agent, read by no program.
 */
SM_MAP_DECL struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct sm_meta_key);
	__type(value, struct sm_meta_val);
	__uint(max_entries, SM_MAX_META);
} sm_meta SEC(".maps");

/*
 * Original VIP of connections sent to the agent's L7 listener, by client
 * address; written by sockops at TCP_CONNECT_CB, read and deleted by the agent.
 */
SM_MAP_DECL struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct sm_l7_orig_key);
	__type(value, struct sm_l7_orig_val);
	__uint(max_entries, SM_MAX_L7_ORIG);
} sm_l7_orig SEC(".maps");

/* Last heartbeat of the agent's L7 proxy (ktime ns); written by the agent. */
SM_MAP_DECL struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
} sm_l7_alive SEC(".maps");

/*
 * Sockets whose sticky sk_msg decision is "TCP", by own key: a peer never
 * starts redirecting into them. Written by sk_msg, deleted at close by
 * sockops (pods) or the agent (its proxy sockets); LRU bounds the rest.
 */
SM_MAP_DECL struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct sm_sock_key);
	__type(value, __u32);
	__uint(max_entries, SM_MAX_SOCKS);
} sm_sock_off SEC(".maps");

/*
 * L4 telemetry counters per (client pod, service port, backend), per CPU;
 * written by sockops and sk_msg (lib/flow.h). LRU: a full map forgets the
 * least recently used flow (its series restarts) instead of counting nothing.
 */
SM_MAP_DECL struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__type(key, struct sm_flow_key);
	__type(value, struct sm_flow_stats_val);
	__uint(max_entries, SM_MAX_FLOWS);
} sm_flow_stats SEC(".maps");

/*
 * Flow key of client sockets in sm_sock_hash, by their own sm_sock_key, so
 * sk_msg on the node-local server socket can count what it redirects back.
 * Written by sockops at ACTIVE_ESTABLISHED, deleted at close; LRU bounds leaks.
 */
SM_MAP_DECL struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct sm_sock_key);
	__type(value, struct sm_flow_key);
	__uint(max_entries, SM_MAX_SOCKS);
} sm_sock_flow SEC(".maps");

/* Per-socket telemetry key and state (struct sm_sk_flow); sockops and sk_msg. */
SM_MAP_DECL struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sm_sk_flow);
} sm_sk_flow SEC(".maps");

/* maxConnections refusals per (cluster, client pod), per CPU; written by connect4. */
SM_MAP_DECL struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__type(key, struct sm_overflow_key);
	__type(value, __u64);
	__uint(max_entries, SM_MAX_OVERFLOW);
} sm_overflow SEC(".maps");

/*
 * Client netns cookie -> pod IP (network order), learnt by sockops at
 * TCP_CONNECT_CB; read by connect4, which runs before a source address exists.
 */
SM_MAP_DECL struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, __u64);
	__type(value, __be32);
	__uint(max_entries, SM_MAX_PODS);
} sm_nsip SEC(".maps");

/* Count one event in sm_stats_v2; never fails the caller. */
static __always_inline void stat_inc(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&sm_stats_v2, &idx);

	if (v)
		*v += 1;
}

#endif /* SM_BPF_MAPS_H */
