/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * sockmesh shared ABI: map keys, values and constants used by both bpf/ and
 * user/. Types and constants only: the maps themselves are defined once in
 * bpf/lib/maps.h (instantiated by bpf/maps.bpf.c) and reached from user
 * space through the skeleton.
 *
 * Rules (see ../shared/STYLE.md):
 *  - fixed-width __u8..__u64, __be16/__be32 for network order; no bool, long,
 *    pointers or enums inside keys/values (enums below are only for naming
 *    constants; fields that hold them are __u8/__u32);
 *  - explicit named padding, zeroed by the writer (keys are hashed bytewise);
 *  - layout pinned by _Static_assert in tests/unit/test_abi.c;
 *  - a layout change renames the map (sm_svc -> sm_svc_v2) so an old pinned
 *    map is never reread in a new layout.
 *
 * Byte order: every address and port field says which order it is in.
 */
#ifndef SOCKMESH_ABI_H
#define SOCKMESH_ABI_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Default capacities (max_entries). The agent may resize before load. */
#define SM_MAX_SERVICES		65536	/* VIP:port entries in sm_svc */
#define SM_MAX_CLUSTERS		65536	/* (service port, subset) pairs */
#define SM_MAX_BACKENDS		262144	/* distinct backend addr:port */
#define SM_MAX_BSET		524288	/* backend list slots, all versions */
#define SM_MAX_ROUTE		131072	/* weighted route slots, all versions */
#define SM_MAX_MAGLEV		1048576	/* Maglev slots, all versions */
#define SM_MAX_CONN_LIMIT	65536	/* (client netns, cluster) counters */
#define SM_MAX_SOCKS		65536	/* sockets in sm_sock_hash */
#define SM_MAX_PODS		65536	/* pods with per-pod flags */
#define SM_MAX_FLOWS		16384	/* (client pod, service port, backend) L4 counters, LRU */
#define SM_MAX_OVERFLOW		4096	/* (client pod, cluster) maxConnections refusals, LRU */

#define SM_MAX_ROUTE_SLOTS	1000	/* weighted tcp route resolution (0.1 %) */
#define SM_MAGLEV_MIN_SIZE	4093	/* smallest Maglev table (prime) */
#define SM_MAGLEV_MAX_SIZE	65521	/* largest Maglev table (prime) */
/* Backends examined per connect before giving up (verifier bound). */
#define SM_MAX_PICK_TRIES	16

#define SM_IPPROTO_TCP		6

/* Load-balancing policies (sm_cluster_val.lb). */
enum sm_lb {
	SM_LB_LEAST_REQUEST	= 0,	/* power of two choices; also LEAST_CONN, unset */
	SM_LB_ROUND_ROBIN	= 1,	/* exact rotation */
	SM_LB_RANDOM		= 2,
	SM_LB_MAGLEV		= 3,	/* consistentHash.useSourceIp */
};

/* sm_backend_val.flags */
enum sm_be_flags {
	SM_BE_F_READY	= 1 << 0,	/* Pod Ready / endpoint ready */
	SM_BE_F_EJECTED	= 1 << 1,	/* ejected (outlier detection or CLI) */
};

/* sm_svc_val.flags */
enum sm_svc_flags {
	SM_SVC_F_L7	= 1 << 0,	/* reserved: send to the agent's L7 listener */
};

/* sm_pod_val.flags */
enum sm_pod_flags {
	SM_POD_F_NO_REDIRECT	= 1 << 0,	/* opt out of the sk_msg short cut */
	SM_POD_F_LOCAL		= 1 << 1,	/* runs on this node (SM_CFG_F_LOCAL_ONLY) */
};

/* sm_config_val.flags */
enum sm_cfg_flags {
	SM_CFG_F_REDIRECT	= 1 << 0,	/* sk_msg redirect enabled node-wide */
	SM_CFG_F_LOCAL_ONLY	= 1 << 1,	/* sockhash only for peers on this node:
						 * SM_POD_F_LOCAL pods, loopback, the L7
						 * listener (the agent knows its node) */
};

/* sm_sk_state.flags: per-socket bookkeeping kept in sk_storage. */
enum sm_sk_flags {
	SM_SK_F_TRANSLATED	= 1 << 0,	/* connect4 rewrote the destination */
	SM_SK_F_COUNTED		= 1 << 1,	/* holds one active count (+ limit if LIMITED) */
	SM_SK_F_LIMITED		= 1 << 2,	/* holds one sm_conn_limit count */
	SM_SK_F_L7		= 1 << 3,	/* sent to the agent's L7 listener */
	/* The L4 telemetry flow of a counted client socket (lib/flow.h, flow_load): */
	SM_SK_F_FLOW		= 1 << 4,	/* kept here: SM_FLOW_F_CLIENT */
	SM_SK_F_FLOW_OPEN	= 1 << 5,	/* SM_FLOW_F_OPEN */
	SM_SK_F_FLOW_LISTED	= 1 << 6,	/* its key is in sm_sock_flow */
};

/* sm_sk_state.redir: the sticky sk_msg decision for this socket. */
enum sm_redir_mode {
	SM_REDIR_UNDECIDED	= 0,
	SM_REDIR_ON		= 1,	/* every message is redirected */
	SM_REDIR_OFF		= 2,	/* sent through TCP once: never redirect */
};

/*
 * Global per-CPU counters, index into sm_stats_v2 (SM_STAT_SLOTS entries, so
 * appending a counter keeps the map's layout and a pinned map stays
 * adoptable; sm_stats had exactly SM_STAT_MAX). Append only.
 */
enum sm_stat {
	SM_STAT_CONNECT_SEEN = 0,	/* connect4 runs for TCP */
	SM_STAT_CONNECT_TRANSLATED,	/* VIP rewritten to a backend */
	SM_STAT_CONNECT_NO_BACKEND,	/* refused: no healthy backend */
	SM_STAT_CONNECT_OVERFLOW,	/* refused: maxConnections */
	SM_STAT_CONNECT_PANIC,		/* picked while below minHealthPercent */
	SM_STAT_CONNECT_ERR,		/* internal error, failed open */
	SM_STAT_GETPEERNAME,		/* getpeername answered with the VIP */
	SM_STAT_SOCK_INSERT,		/* socket put into sm_sock_hash */
	SM_STAT_SOCK_INSERT_ERR,
	SM_STAT_REDIRECT,		/* sk_msg redirected a message */
	SM_STAT_REDIRECT_MISS,		/* no local peer: passed to TCP */
	SM_STAT_REDIRECT_STICKY,	/* passed: socket already used TCP */
	SM_STAT_REDIRECT_OPTOUT,	/* pod opted out of redirect */
	SM_STAT_REDIRECT_ERR,		/* redirect helper failed */
	SM_STAT_CONN_RELEASED,		/* counts given back */
	SM_STAT_CONNECT_FAIL,		/* SYN_SENT -> CLOSE (RST/timeout) */
	SM_STAT_SOCK_REMOVE,		/* socket left sm_sock_hash (decided TCP) */
	SM_STAT_CONNECT_L7,		/* sent to the agent's L7 listener */
	SM_STAT_L7_ORIG_ERR,		/* could not record the original VIP */
	SM_STAT_L7_FALLBACK,		/* L7 port balanced at L4: agent not alive */
	SM_STAT_FLOW_ERR,		/* no room for an L4 telemetry counter */
	SM_STAT_SOCK_REMOTE,		/* not put into sm_sock_hash: peer off this node */
	SM_STAT_CONNECT_V4MAPPED,	/* connect6 to a v4-mapped address (::ffff:a.b.c.d) */
	SM_STAT_CONNECT_V6_NATIVE,	/* connect6 to a native IPv6 address: untouched */
	SM_STAT_MAX,
};

#define SM_STAT_SLOTS		64	/* sm_stats_v2 max_entries, >= SM_STAT_MAX */

/* sm_svc key: a Service VIP and port. */
struct sm_svc_key {
	__be32 vip;		/* network order */
	__be16 port;		/* network order */
	__u8 proto;		/* SM_IPPROTO_TCP */
	__u8 pad;
};

/*
 * sm_svc value. A service port routes to one cluster (route_slots <= 1:
 * cluster_id) or to a weighted slot table (sm_route[route_id, 0..slots-1]),
 * the kernel half of a VirtualService tcp route.
 */
struct sm_svc_val {
	__u64 cluster_id;	/* used when route_slots <= 1 */
	__u32 route_id;		/* versioned: a new id on each change */
	__u16 route_slots;	/* 0/1: single cluster; else slots in sm_route */
	__u16 flags;		/* SM_SVC_F_* */
};

struct sm_route_key {
	__u32 route_id;
	__u32 slot;
};

struct sm_route_val {
	__u64 cluster_id;
};

/*
 * sm_cluster value, key __u64 cluster_id. A cluster is Envoy's: one service
 * port and one subset (or none). cluster_id is a stable 64-bit hash of
 * "fqdn:port|subset" computed by the agent (user/agent/plan.c), so
 * limit counters keyed by it survive reloads and agent restarts.
 */
struct sm_cluster_val {
	__u32 set_id;		/* backend list version in sm_bset */
	__u32 n_backends;	/* sm_bset[set_id, 0..n_backends-1] */
	__u32 maglev_size;	/* sm_maglev[set_id, 0..size-1]; 0 unless MAGLEV */
	__u32 max_conns;	/* per client netns; 0 = unlimited */
	__u8 lb;		/* SM_LB_* */
	__u8 min_health_pct;	/* Envoy panic threshold 0..100; 0 = never */
	__u16 flags;
	__u32 pad;
};

/* sm_bset and sm_maglev key: a slot of a versioned backend list. */
struct sm_bset_key {
	__u32 set_id;
	__u32 idx;
};

/* A backend address. Key of sm_backend, sm_be_active, sm_be_stats. */
struct sm_be_key {
	__be32 addr;		/* network order */
	__be16 port;		/* network order */
	__u16 pad;
};

/* sm_maglev value: index into the cluster's backend list. */
struct sm_maglev_val {
	__u32 idx;
};

/* sm_backend value: written by the agent and by `sockmeshctl eject`. */
struct sm_backend_val {
	__u32 flags;		/* SM_BE_F_* */
	__u32 pad;
	__u64 eject_until_ns;	/* CLOCK_MONOTONIC (bpf_ktime_get_ns); 0 = until restored */
};

/* sm_be_active value: written only by BPF (atomic add). */
struct sm_be_active_val {
	__s64 active;		/* connections counted and not yet released */
};

/* sm_be_stats value (per CPU): written only by BPF. */
struct sm_be_stats_val {
	__u64 conns_total;	/* connects sent to this backend */
	__u64 connect_fail;	/* SYN_SENT -> CLOSE */
};

/* sm_svc_stats value (per CPU), key struct sm_svc_key. */
struct sm_svc_stats_val {
	__u64 connects;		/* translated */
	__u64 overflows;	/* refused by maxConnections */
	__u64 no_backend;	/* refused: nothing healthy */
	__u64 panic;		/* picked in panic mode */
};

/* sm_conn_limit key: one client pod (netns) and one destination cluster. */
struct sm_limit_key {
	__u64 netns_cookie;	/* bpf_get_netns_cookie() of the client */
	__u64 cluster_id;
};

struct sm_limit_val {
	__s64 active;
};

/*
 * sm_sock_hash key. The 4-tuple of the socket as seen from its own side,
 * all in network order. Pod IPs are unique on a node, so netns_cookie is 0
 * except for loopback addresses (127/8), where it is the socket's netns
 * cookie: two pods may both talk over 127.0.0.1 and must never meet.
 */
struct sm_sock_key {
	__be32 sip;		/* local, network order */
	__be32 dip;		/* remote, network order */
	__be16 sport;		/* local, network order */
	__be16 dport;		/* remote, network order */
	__u32 pad;
	__u64 netns_cookie;
};

/* sm_pod key: a pod IP (network order). */
struct sm_pod_key {
	__be32 addr;
};

struct sm_pod_val {
	__u32 flags;		/* SM_POD_F_* */
};

/* sm_config: single-entry array of runtime settings. */
struct sm_config_val {
	__u32 flags;		/* SM_CFG_F_* */
	__be32 l7_addr;		/* agent's L7 listener, network order; 0 = no L7 */
	__u64 generation;	/* policy generation last applied */
	__be16 l7_port;		/* network order */
	__u16 pad[3];
};

/*
 * sm_l7_orig: the original destination of a connection connect4 sent to
 * the agent's L7 listener, keyed by the client's address as the agent's
 * accept() sees it. Written by sockops at TCP_CONNECT_CB (before the SYN),
 * read and deleted by the agent. LRU: an entry the agent never reads ages out.
 */
struct sm_l7_orig_key {
	__be32 addr;		/* client, network order */
	__be16 port;		/* client, network order */
	__u16 pad;
};

struct sm_l7_orig_val {
	__be32 vip;		/* network order */
	__be16 port;		/* network order */
	__u16 pad;
	__u64 netns_cookie;	/* client pod */
};

#define SM_MAX_L7_ORIG	65536

/*
 * sm_l7_alive: one __u64, the bpf_ktime_get_ns() time the agent's proxy
 * last said it is alive (a thread writes it every SM_L7_BEAT_NS). When it is
 * older than SM_L7_ALIVE_NS, or 0 (the agent exited), connect4 balances L7
 * ports in the kernel at L4 instead of sending them to a listener that is
 * not there: a dead or restarting agent costs L7 features, not connections.
 */
#define SM_L7_BEAT_NS	(200ull * 1000 * 1000)
#define SM_L7_ALIVE_NS	(1500ull * 1000 * 1000)

/* sm_sk_state: per-socket sk_storage, created by connect4/sockops. */
struct sm_sk_state {
	__be32 orig_vip;	/* network order; dialled VIP */
	__be16 orig_port;	/* network order */
	__u16 flags;		/* SM_SK_F_* */
	struct sm_be_key be;	/* chosen backend */
	__u64 cluster_id;
	__u64 netns_cookie;	/* client netns, for the limit counter */
	__u32 redir;		/* SM_REDIR_*; written by sk_msg under the socket lock */
	/*
	 * 0 while the counts are held, 1 once given back. Flipped with an
	 * atomic exchange (BPF atomics are 32/64-bit only, hence not a bit in
	 * flags): sockops STATE_CB and cgroup/sock_release may run on two
	 * CPUs for one socket and exactly one of them must release.
	 */
	__u32 release;
};

/*
 * L4 telemetry (Istio's istio_tcp_* metrics, reporter="source"). One key per
 * client pod, dialled service port and chosen backend; the agent turns it
 * into labels at scrape time (pods by IP, the service by its VIP). Key of
 * sm_flow_stats, value of sm_sock_flow.
 */
struct sm_flow_key {
	__be32 src;		/* client pod IP, network order */
	struct sm_svc_key svc;	/* the VIP:port connect4 translated */
	struct sm_be_key be;	/* the backend it chose */
};

/*
 * sm_flow_stats value (per CPU, atomic adds): written only by BPF. Payload
 * bytes only (no headers, no SYN/FIN): TCP's own counters at close for the
 * bytes that went through TCP, sk_msg for the bytes it redirected.
 */
struct sm_flow_stats_val {
	__u64 opened;		/* connects that reached TCP (sockops TCP_CONNECT_CB) */
	__u64 closed;		/* reached TCP_CLOSE after being established */
	__u64 connect_fail;	/* reached TCP_CLOSE from SYN_SENT (never established) */
	__u64 tx_bytes;		/* client -> server: Istio's istio_tcp_received_bytes */
	__u64 rx_bytes;		/* server -> client: Istio's istio_tcp_sent_bytes */
};

/* sm_sk_flow.flags */
enum sm_flow_flags {
	SM_FLOW_F_CLIENT	= 1 << 0,	/* connect4 translated it: its sends are tx */
	SM_FLOW_F_OPEN		= 1 << 1,	/* opened counted, closed not yet */
	SM_FLOW_F_PEER		= 1 << 2,	/* node-local server of a CLIENT: its redirected sends are rx */
	SM_FLOW_F_NONE		= 1 << 3,	/* redirects, but not into a counted client */
	SM_FLOW_F_UNLISTED	= 1 << 4,	/* CLIENT whose key is not in sm_sock_flow;
						 * set only in flow_load's copy (a CLIENT in
						 * sm_sk_flow is from an earlier version,
						 * which did not track this) */
};

/*
 * sm_sk_flow: per-socket telemetry key (sk_storage), created by sk_msg at a
 * server socket's first redirect. Kept apart from sm_sk_state so that map's
 * layout (and the counts held by sockets of an adopted data path) stays as
 * it is. A client socket's flow is kept in its sm_sk_state instead (the key
 * follows from it, the flags are SM_SK_F_FLOW*: one sk_storage allocation
 * per connection, not two); client sockets opened by an earlier version
 * have theirs here.
 */
struct sm_sk_flow {
	struct sm_flow_key key;
	__u32 flags;		/* SM_FLOW_F_* */
};

/*
 * sm_overflow key (per-CPU __u64 value): connects refused by maxConnections
 * per destination cluster and client pod. connect4 runs before the source
 * address is chosen, so src comes from sm_nsip (netns cookie -> pod IP, learnt
 * by sockops from the pod's earlier connects); 0 when not known.
 */
struct sm_overflow_key {
	__u64 cluster_id;
	__be32 src;		/* client pod IP, network order; 0 = unknown */
	__u32 pad;
};

/*
 * sm_meta: display names, written by the agent, read by sockmeshctl (also
 * when the agent is down). Not used by any program. BPF_F_NO_PREALLOC.
 */
enum sm_meta_kind {
	SM_META_SVC	= 1,	/* id = sm_meta_svc_id(key) */
	SM_META_CLUSTER	= 2,	/* id = cluster_id */
	SM_META_BACKEND	= 3,	/* id = sm_meta_be_id(key) */
};

#define SM_MAX_META	(SM_MAX_SERVICES + SM_MAX_CLUSTERS + SM_MAX_BACKENDS)

struct sm_meta_key {
	__u32 kind;		/* SM_META_* */
	__u32 pad;
	__u64 id;
};

struct sm_meta_val {
	char name[128];		/* service "ns/name", Envoy cluster name, pod "ns/name" */
	char extra[64];		/* port name / subset / "" */
};

#endif /* SOCKMESH_ABI_H */
