// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cgroup/connect4: a TCP connect to a Service VIP:port is rewritten to one
 * backend, chosen by the cluster's LB policy (lib/lb.h), within the
 * cluster's maxConnections for this client netns.
 *
 * Verdicts:
 *  - not a known VIP, not TCP: untouched;
 *  - over maxConnections: connect() fails with ENOBUFS ("no buffer space":
 *    a local resource limit, distinct from anything the network says),
 *    counted per service and per (cluster, client pod) in sm_overflow;
 *  - no READY, non-ejected backend and not in panic: ECONNREFUSED, what
 *    kube-proxy's REJECT rule gives for a Service without endpoints;
 *  - internal error (expected map entry missing, sk_storage allocation
 *    failed): fail open, the connect goes to the VIP untranslated and
 *    SM_STAT_CONNECT_ERR counts it.
 * bpf_set_retval() is allowed for BPF_CGROUP_INET4_CONNECT since 5.18
 * (cgroup_common_func_proto, 6.1 included): with it a return of 0 makes
 * connect() fail with the errno we set instead of EPERM.
 */
#include "lib/lb.h"
#include "lib/conn.h"
#include "lib/flow.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

static __always_inline int connect_refuse(const struct sm_svc_key *svc, __u32 stat, int err)
{
	struct sm_svc_stats_val *ss = conn_svc_stats(svc);

	stat_inc(stat);
	if (ss) {
		if (stat == SM_STAT_CONNECT_OVERFLOW)
			ss->overflows++;
		else
			ss->no_backend++;
	}
	bpf_set_retval(-err);
	return SM_CG_REJECT;
}

/*
 * The MAGLEV client identity. The source address is not chosen yet for an
 * unbound socket at connect time, so the client's network namespace stands
 * for it: one pod, one netns, one IP.
 */
static __always_inline __u32 connect_client_hash(struct bpf_sock_addr *ctx, __u64 netns)
{
	struct bpf_sock *sk = ctx->sk;

	if (sk && sk->src_ip4)
		return sk->src_ip4;
	return (__u32)netns ^ (__u32)(netns >> 32);
}

/*
 * An L7 service port: send the connection to the agent's listener and
 * remember the VIP (sk_storage, for getpeername; sockops copies it into
 * sm_l7_orig once the source port is known). Nothing is counted here: the
 * agent applies the L7 limits per request. Returns a verdict, or -1 when
 * no listener is configured or the agent is not alive (see sm_l7_alive):
 * the caller then balances the port at L4.
 */
static __always_inline int connect_l7(struct bpf_sock_addr *ctx, const struct sm_svc_key *svc)
{
	struct sm_svc_stats_val *ss;
	struct sm_config_val *cfg;
	struct sm_sk_state *st;
	__u32 zero = 0;

	__u64 *beat;

	cfg = bpf_map_lookup_elem(&sm_config, &zero);
	if (!cfg || !cfg->l7_addr || !cfg->l7_port || !ctx->sk)
		return -1;
	beat = bpf_map_lookup_elem(&sm_l7_alive, &zero);
	if (!beat || !*beat || bpf_ktime_get_ns() - *beat > SM_L7_ALIVE_NS) {
		stat_inc(SM_STAT_L7_FALLBACK);
		return -1;
	}
	st = bpf_sk_storage_get(&sm_sk_state, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!st) {
		stat_inc(SM_STAT_CONNECT_ERR);
		return SM_CG_ALLOW;
	}
	conn_release(st);
	st->orig_vip = svc->vip;
	st->orig_port = svc->port;
	st->cluster_id = 0;
	st->netns_cookie = bpf_get_netns_cookie(ctx);
	st->redir = SM_REDIR_UNDECIDED;
	st->flags = SM_SK_F_TRANSLATED | SM_SK_F_L7;
	__sync_lock_test_and_set(&st->release, 0);

	ctx->user_ip4 = cfg->l7_addr;
	ctx->user_port = cfg->l7_port;
	stat_inc(SM_STAT_CONNECT_L7);
	ss = conn_svc_stats(svc);
	if (ss)
		ss->connects++;
	return SM_CG_ALLOW;
}

/*
 * connect() again, to an address that is no VIP, on a socket whose VIP
 * connect failed: its count was given back at TCP_CLOSE, but getpeername4
 * would still report the old VIP and sockops would open a flow under it.
 * Sockets that never met connect4 have no storage: one pointer test.
 */
static __always_inline void connect_forget(struct bpf_sock_addr *ctx)
{
	struct sm_sk_state *st;

	if (!ctx->sk)
		return;
	st = bpf_sk_storage_get(&sm_sk_state, ctx->sk, 0, 0);
	if (!st || !st->flags)
		return;
	conn_release(st);
	st->flags = 0;
	st->redir = SM_REDIR_UNDECIDED;
}

SEC("cgroup/connect4")
int sm_connect4(struct bpf_sock_addr *ctx)
{
	struct sm_svc_key svc = {};
	struct sm_lb_out out = {};
	struct sm_svc_stats_val *ss;
	struct sm_be_stats_val *bs;
	struct sm_cluster_val *cl;
	struct sm_route_key rk;
	struct sm_route_val *rv;
	struct sm_sk_state *st;
	struct sm_svc_val *sv;
	__u64 cluster_id, netns;
	__u16 flags;
	int ret;

	if (ctx->type != SM_SOCK_STREAM || ctx->protocol != SM_IPPROTO_TCP)
		return SM_CG_ALLOW;
	stat_inc(SM_STAT_CONNECT_SEEN);

	svc.vip = ctx->user_ip4;
	svc.port = (__be16)ctx->user_port;
	svc.proto = SM_IPPROTO_TCP;
	sv = bpf_map_lookup_elem(&sm_svc, &svc);
	if (!sv) {
		connect_forget(ctx);
		return SM_CG_ALLOW;
	}

	if (sv->flags & SM_SVC_F_L7) {
		ret = connect_l7(ctx, &svc);
		if (ret >= 0)
			return ret;
		/* no L7 listener configured: the kernel balances it as L4 */
	}

	cluster_id = sv->cluster_id;
	if (sv->route_slots > 1) {
		rk.route_id = sv->route_id;
		rk.slot = bpf_get_prandom_u32() % sv->route_slots;
		rv = bpf_map_lookup_elem(&sm_route, &rk);
		if (!rv)
			goto fail_open;
		cluster_id = rv->cluster_id;
	}
	cl = bpf_map_lookup_elem(&sm_cluster, &cluster_id);
	if (!cl || !ctx->sk)
		goto fail_open;

	st = bpf_sk_storage_get(&sm_sk_state, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!st)
		goto fail_open;
	/* connect() again on a socket whose first attempt failed early. */
	conn_release(st);

	netns = bpf_get_netns_cookie(ctx);
	flags = SM_SK_F_TRANSLATED | SM_SK_F_COUNTED;
	if (cl->max_conns) {
		ret = conn_limit_take(netns, cluster_id, cl->max_conns);
		if (ret > 0) {
			flow_overflow(cluster_id, netns, ctx->sk->src_ip4);
			return connect_refuse(&svc, SM_STAT_CONNECT_OVERFLOW, SM_ENOBUFS);
		}
		if (ret < 0)
			goto fail_open;
		flags |= SM_SK_F_LIMITED;
	}

	ret = lb_pick(cluster_id, cl, connect_client_hash(ctx, netns),
		      bpf_ktime_get_ns(), &out);
	if (ret != SM_LB_OK) {
		if (flags & SM_SK_F_LIMITED)
			conn_limit_give(netns, cluster_id);
		if (ret == SM_LB_NONE)
			return connect_refuse(&svc, SM_STAT_CONNECT_NO_BACKEND,
					      SM_ECONNREFUSED);
		goto fail_open;
	}

	conn_active_add(&out.be, 1);
	st->orig_vip = svc.vip;
	st->orig_port = svc.port;
	st->be = out.be;
	st->cluster_id = cluster_id;
	st->netns_cookie = netns;
	st->redir = SM_REDIR_UNDECIDED;
	st->flags = flags;
	/* Publish last: a racing release sees either nothing or all of it. */
	__sync_lock_test_and_set(&st->release, 0);

	ctx->user_ip4 = out.be.addr;
	ctx->user_port = out.be.port;

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
	return SM_CG_ALLOW;

fail_open:
	stat_inc(SM_STAT_CONNECT_ERR);
	return SM_CG_ALLOW;
}
