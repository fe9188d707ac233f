/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The connect() decision of cgroup/connect4 and cgroup/connect6, written
 * once over a family-neutral view of the destination (struct sm_connect):
 * an IPv4 address and port, whether the socket is AF_INET or an AF_INET6
 * socket dialling a v4-mapped address (::ffff:a.b.c.d, RFC 4291 2.5.5.2;
 * the JVM's and gRPC's C core default). The SEC entries only adapt their
 * context (connect4.bpf.c, connect6.bpf.c), as Cilium's sock4_xlate_fwd
 * serves its connect6 for IPv4-in-IPv6.
 *
 * Everything a test-run cannot provide comes in through the view: the
 * socket's bound source, and (SM_CONNECT_ENV, read only for a VIP) the
 * client's netns cookie, the clock, the random draw for a weighted route
 * slot. The socket's sk_storage is reached
 * through SM_CONNECT_STATE(sk, flags), which tests/bpf/progs/test_connect.bpf.c
 * points at a hash map, so the whole decision runs in a SEC("syscall")
 * wrapper with private copies of the maps.
 *
 * Verdicts (enum sm_xlate):
 *  - not a known VIP:port: untouched (SM_XLATE_NONE);
 *  - L7 service port with the agent alive: to the agent's listener
 *    (SM_XLATE_L7), the VIP remembered for getpeername and sm_l7_orig;
 *  - otherwise a backend of the cluster, or of the weighted route's cluster
 *    (SM_XLATE_L4), within the cluster's maxConnections per client netns;
 *  - over maxConnections: refused with ENOBUFS ("no buffer space": a local
 *    resource limit, distinct from anything the network says), counted per
 *    service and per (cluster, client pod) in sm_overflow (SM_XLATE_REFUSE);
 *  - no READY, non-ejected backend and not in panic: ECONNREFUSED, what
 *    kube-proxy's REJECT rule gives for a Service without endpoints;
 *  - internal error (expected map entry missing, sk_storage allocation
 *    failed): fail open, the connect goes to the VIP untranslated and
 *    SM_STAT_CONNECT_ERR counts it (SM_XLATE_ERR).
 */
#ifndef SM_BPF_CONNECT_H
#define SM_BPF_CONNECT_H

#include "lb.h"
#include "conn.h"
#include "flow.h"
#include "sock.h"

/* A connect() as the decision sees it. */
struct sm_connect {
	__be32 daddr;		/* in: dialled IPv4; out (L4/L7): where to connect; network order */
	__be16 dport;		/* in/out, network order */
	__u16 pad;
	__be32 bound_src;	/* the socket's bound IPv4 source, 0 when unbound; network order */
	__u32 rand;		/* a random draw: the weighted route slot */
	__u64 netns;		/* client netns cookie (bpf_get_netns_cookie) */
	__u64 now;		/* bpf_ktime_get_ns() */
	__s32 err;		/* out (SM_XLATE_REFUSE): errno for connect() */
	__u32 pad2;
};

enum sm_xlate {
	SM_XLATE_NONE	= 0,	/* not a Service VIP:port: untouched */
	SM_XLATE_L4	= 1,	/* rewritten to a backend */
	SM_XLATE_L7	= 2,	/* rewritten to the agent's L7 listener */
	SM_XLATE_REFUSE	= 3,	/* connect() fails with err */
	SM_XLATE_ERR	= 4,	/* internal error: untouched (fail open), counted */
};

#ifndef SM_CONNECT_ENV
/*
 * The view's environment: the random draw, the client's netns cookie and
 * the clock. connect_xlate reads it only once the destination is a Service
 * VIP:port, so a connect() to anything else (most of a pod's connects) pays
 * no helper call for it. env is the hook's struct bpf_sock_addr; the test
 * wrapper (tests/bpf/progs/test_connect.bpf.c) sets these fields itself and
 * defines this away.
 */
#define SM_CONNECT_ENV(env, c) connect_env_fill((struct bpf_sock_addr *)(env), (c))

static __always_inline void connect_env_fill(struct bpf_sock_addr *ctx, struct sm_connect *c)
{
	c->rand = bpf_get_prandom_u32();
	c->netns = bpf_get_netns_cookie(ctx);
	c->now = bpf_ktime_get_ns();
}
#endif

#ifndef SM_CONNECT_STATE
/* The socket's sm_sk_state; flags BPF_SK_STORAGE_GET_F_CREATE or 0. */
#define SM_CONNECT_STATE(sk, flags) \
	((struct sm_sk_state *)bpf_sk_storage_get(&sm_sk_state, (sk), 0, (flags)))
#endif

static __always_inline int connect_refuse(const struct sm_svc_key *svc, __u32 stat, int err,
					  struct sm_connect *c)
{
	struct sm_svc_stats_val *ss = conn_svc_stats(svc);

	stat_inc(stat);
	if (ss) {
		if (stat == SM_STAT_CONNECT_OVERFLOW)
			ss->overflows++;
		else
			ss->no_backend++;
	}
	c->err = err;
	return SM_XLATE_REFUSE;
}

/*
 * The MAGLEV client identity. The source address is not chosen yet for an
 * unbound socket at connect time, so the client's network namespace stands
 * for it: one pod, one netns, one IP.
 */
static __always_inline __u32 connect_client_hash(const struct sm_connect *c)
{
	if (c->bound_src)
		return c->bound_src;
	return (__u32)c->netns ^ (__u32)(c->netns >> 32);
}

/*
 * An L7 service port: send the connection to the agent's listener and
 * remember the VIP (sk_storage, for getpeername; sockops copies it into
 * sm_l7_orig once the source port is known). Nothing is counted here: the
 * agent applies the L7 limits per request. Returns a verdict, or -1 when
 * no listener is configured or the agent is not alive (see sm_l7_alive):
 * the caller then balances the port at L4.
 */
static __always_inline int connect_l7(void *sk, struct sm_connect *c, const struct sm_svc_key *svc)
{
	struct sm_svc_stats_val *ss;
	struct sm_config_val *cfg;
	struct sm_sk_state *st;
	__u32 zero = 0;
	__u64 *beat;

	cfg = bpf_map_lookup_elem(&sm_config, &zero);
	if (!cfg || !cfg->l7_addr || !cfg->l7_port || !sk)
		return -1;
	beat = bpf_map_lookup_elem(&sm_l7_alive, &zero);
	if (!beat || !*beat || c->now - *beat > SM_L7_ALIVE_NS) {
		stat_inc(SM_STAT_L7_FALLBACK);
		return -1;
	}
	st = SM_CONNECT_STATE(sk, BPF_SK_STORAGE_GET_F_CREATE);
	if (!st) {
		stat_inc(SM_STAT_CONNECT_ERR);
		return SM_XLATE_ERR;
	}
	conn_release(st);
	st->orig_vip = svc->vip;
	st->orig_port = svc->port;
	st->be.addr = cfg->l7_addr;	/* getpeer_xlate: the VIP while connected there */
	st->be.port = cfg->l7_port;
	st->be.pad = 0;
	st->cluster_id = 0;
	st->netns_cookie = c->netns;
	st->redir = SM_REDIR_UNDECIDED;
	st->flags = SM_SK_F_TRANSLATED | SM_SK_F_L7;
	__sync_lock_test_and_set(&st->release, 0);

	c->daddr = cfg->l7_addr;
	c->dport = cfg->l7_port;
	stat_inc(SM_STAT_CONNECT_L7);
	ss = conn_svc_stats(svc);
	if (ss)
		ss->connects++;
	return SM_XLATE_L7;
}

/*
 * connect() again, to an address that is no VIP, on a socket whose VIP
 * connect failed: its count was given back at TCP_CLOSE, but getpeername
 * would still report the old VIP and sockops would open a flow under it.
 * Sockets that never met connect4/6 have no storage: one pointer test.
 */
static __always_inline void connect_forget(void *sk)
{
	struct sm_sk_state *st;

	if (!sk)
		return;
	st = SM_CONNECT_STATE(sk, 0);
	if (!st || !st->flags)
		return;
	conn_release(st);
	st->flags = 0;
	st->redir = SM_REDIR_UNDECIDED;
}

/*
 * The cluster of a service port: its own, or the one of weighted route slot
 * rand % route_slots (a VirtualService tcp route). 0, or -1 when the slot
 * is missing (agent bug: fail open).
 */
static __always_inline int connect_cluster(const struct sm_svc_val *sv, __u32 rand, __u64 *cluster_id)
{
	struct sm_route_key rk;
	struct sm_route_val *rv;

	*cluster_id = sv->cluster_id;
	if (sv->route_slots <= 1)
		return 0;
	rk.route_id = sv->route_id;
	rk.slot = rand % sv->route_slots;
	rv = bpf_map_lookup_elem(&sm_route, &rk);
	if (!rv)
		return -1;
	*cluster_id = rv->cluster_id;
	return 0;
}

/*
 * The decision for one TCP connect() of socket sk (non-NULL for anything
 * but SM_XLATE_NONE / fail open) to c->daddr:c->dport; env is the hook's
 * context (SM_CONNECT_ENV). Returns enum
 * sm_xlate; c->daddr/dport are the new destination for L4 and L7, c->err
 * the errno for REFUSE.
 */
static __always_inline int connect_xlate(void *env, void *sk, struct sm_connect *c)
{
	struct sm_svc_key svc = {};
	struct sm_lb_out out = {};
	struct sm_svc_stats_val *ss;
	struct sm_be_stats_val *bs;
	struct sm_cluster_val *cl;
	struct sm_sk_state *st;
	struct sm_svc_val *sv;
	__u64 cluster_id;
	__u16 flags;
	int ret;

	svc.vip = c->daddr;
	svc.port = c->dport;
	svc.proto = SM_IPPROTO_TCP;
	sv = bpf_map_lookup_elem(&sm_svc, &svc);
	if (!sv) {
		connect_forget(sk);
		return SM_XLATE_NONE;
	}
	SM_CONNECT_ENV(env, c);

	if (sv->flags & SM_SVC_F_L7) {
		ret = connect_l7(sk, c, &svc);
		if (ret >= 0)
			return ret;
		/* no L7 listener configured or alive: the kernel balances it as L4 */
	}

	if (connect_cluster(sv, c->rand, &cluster_id))
		goto fail_open;
	cl = bpf_map_lookup_elem(&sm_cluster, &cluster_id);
	if (!cl || !sk)
		goto fail_open;

	st = SM_CONNECT_STATE(sk, BPF_SK_STORAGE_GET_F_CREATE);
	if (!st)
		goto fail_open;
	/* connect() again on a socket whose first attempt failed early. */
	conn_release(st);

	flags = SM_SK_F_TRANSLATED | SM_SK_F_COUNTED;
	if (cl->max_conns) {
		ret = conn_limit_take(c->netns, cluster_id, cl->max_conns);
		if (ret > 0) {
			flow_overflow(cluster_id, c->netns, c->bound_src);
			return connect_refuse(&svc, SM_STAT_CONNECT_OVERFLOW, SM_ENOBUFS, c);
		}
		if (ret < 0)
			goto fail_open;
		flags |= SM_SK_F_LIMITED;
	}

	ret = lb_pick(cluster_id, cl, connect_client_hash(c), c->now, &out);
	if (ret != SM_LB_OK) {
		if (flags & SM_SK_F_LIMITED)
			conn_limit_give(c->netns, cluster_id);
		if (ret == SM_LB_NONE)
			return connect_refuse(&svc, SM_STAT_CONNECT_NO_BACKEND, SM_ECONNREFUSED, c);
		goto fail_open;
	}

	conn_active_add(&out.be, 1);
	st->orig_vip = svc.vip;
	st->orig_port = svc.port;
	st->be = out.be;
	st->cluster_id = cluster_id;
	st->netns_cookie = c->netns;
	st->redir = SM_REDIR_UNDECIDED;
	st->flags = flags;
	/* Publish last: a racing release sees either nothing or all of it. */
	__sync_lock_test_and_set(&st->release, 0);

	c->daddr = out.be.addr;
	c->dport = out.be.port;

	stat_inc(SM_STAT_CONNECT_TRANSLATED);
	bs = conn_be_stats(&out.be);
	if (bs)
		bs->conns_total++;
	ss = conn_svc_stats(&svc);
	if (ss) {
		ss->connects++;
		if (out.panic)
			ss->panic++;
	}
	if (out.panic)
		stat_inc(SM_STAT_CONNECT_PANIC);
	return SM_XLATE_L4;

fail_open:
	stat_inc(SM_STAT_CONNECT_ERR);
	return SM_XLATE_ERR;
}

/*
 * connect() of an AF_INET6 socket to ip6 (four network-order words): a
 * v4-mapped destination is decided as the IPv4 connect it is on the wire,
 * the new destination written back as ::ffff:<addr> (ip6[3]); a native IPv6
 * destination is left alone (Services are IPv4 here) and counted.
 */
static __always_inline int connect6_xlate(void *env, void *sk, __u32 ip6[4], struct sm_connect *c)
{
	int ret;

	if (!addr6_is_v4mapped(ip6[0], ip6[1], ip6[2])) {
		stat_inc(SM_STAT_CONNECT_V6_NATIVE);
		connect_forget(sk);
		return SM_XLATE_NONE;
	}
	stat_inc(SM_STAT_CONNECT_V4MAPPED);
	c->daddr = ip6[3];
	ret = connect_xlate(env, sk, c);
	if (ret == SM_XLATE_L4 || ret == SM_XLATE_L7)
		ip6[3] = c->daddr;
	return ret;
}

/*
 * getpeername() of a socket connect4/6 translated reports the VIP it dialled,
 * not the backend, so applications (and TLS SNI/host checks built on the
 * peer address) see what they asked for. Only when the socket is still
 * connected to the backend (or listener) chosen: a later connect() of the
 * same socket elsewhere is reported as is. Returns 1 when addr and port
 * (network order, the IPv4 peer) were rewritten.
 */
static __always_inline int getpeer_xlate(const struct sm_sk_state *st, __be32 *addr, __be16 *port)
{
	if (!st || !(st->flags & SM_SK_F_TRANSLATED))
		return 0;
	if (*addr != st->be.addr || *port != st->be.port)
		return 0;
	*addr = st->orig_vip;
	*port = st->orig_port;
	stat_inc(SM_STAT_GETPEERNAME);
	return 1;
}

/* getpeername() of an AF_INET6 socket, peer ip6 (network-order words): v4-mapped only. */
static __always_inline int getpeer6_xlate(const struct sm_sk_state *st, __u32 ip6[4], __be16 *port)
{
	__be32 addr = ip6[3];

	if (!addr6_is_v4mapped(ip6[0], ip6[1], ip6[2]) || !getpeer_xlate(st, &addr, port))
		return 0;
	ip6[3] = addr;
	return 1;
}

#endif /* SM_BPF_CONNECT_H */
