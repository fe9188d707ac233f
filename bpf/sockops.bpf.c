// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sockops: (1) puts established IPv4 TCP sockets (AF_INET, or AF_INET6
 * with a v4-mapped peer, under their IPv4 4-tuple) into sm_sock_hash so
 * sk_msg can short-cut node-local peers; (2) watches the TCP state of
 * sockets connect4 translated, to give their counts back on TCP_CLOSE and to
 * count connect failures (SYN_SENT -> CLOSE: RST or timeout) per backend.
 *
 * (3) takes a socket whose sk_msg decision was SM_REDIR_OFF out of
 * sm_sock_hash at its first RTT sample (see redir.bpf.c, hazard 2).
 *
 * (4) L4 telemetry of translated client sockets (lib/flow.h): opened at
 * TCP_CONNECT_CB, closed with TCP's byte counts at TCP_CLOSE, and the flow
 * key published in sm_sock_flow while the socket is in sm_sock_hash.
 *
 * The state callback is switched on per socket at TCP_CONNECT_CB (before the
 * SYN leaves) for translated sockets and at insertion for sockets in
 * sm_sock_hash (to drop their sm_redir_tgt mark at close); the RTT callback
 * only for sockets in sm_sock_hash and only until their decision is seen. Closed sockets leave
 * sm_sock_hash by themselves (the sockmap close hook unlinks them).
 */
#include "lib/conn.h"
#include "lib/flow.h"
#include "lib/sock.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

static __always_inline __u32 sockops_pod_flags(__be32 addr)
{
	struct sm_pod_key k = { .addr = addr };
	struct sm_pod_val *p = bpf_map_lookup_elem(&sm_pod, &k);

	return p ? p->flags : 0;
}

static __always_inline const struct sm_config_val *sockops_config(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&sm_config, &zero);
}

static __always_inline struct sm_sk_state *sockops_state(struct bpf_sock_ops *skops)
{
	struct bpf_sock *sk = skops->sk;

	return sk ? bpf_sk_storage_get(&sm_sk_state, sk, 0, 0) : NULL;
}

static __always_inline void sockops_watch(struct bpf_sock_ops *skops, const struct sm_sk_state *st)
{
	if (st && (st->flags & SM_SK_F_COUNTED))
		bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags |
					  BPF_SOCK_OPS_STATE_CB_FLAG);
}

/*
 * A connection connect4 sent to the agent's L7 listener: publish its VIP
 * under the client address the agent will see in accept(). TCP_CONNECT_CB
 * runs after the source address and port are chosen and before the SYN
 * leaves, so the entry exists before the agent can accept.
 */
static __always_inline void sockops_l7_orig(struct bpf_sock_ops *skops, const struct sm_sk_state *st)
{
	struct sm_l7_orig_key k = {};
	struct sm_l7_orig_val v = {};

	k.addr = SM_CTX_LOAD(skops->local_ip4);
	k.port = bpf_htons((__u16)SM_CTX_LOAD(skops->local_port));
	v.vip = st->orig_vip;
	v.port = st->orig_port;
	v.netns_cookie = st->netns_cookie;
	if (bpf_map_update_elem(&sm_l7_orig, &k, &v, BPF_ANY))
		stat_inc(SM_STAT_L7_ORIG_ERR);
}

/*
 * A counted (L4-translated) client socket reaches TCP: open its flow under
 * the source address chosen by now (kept in its state, see flow_load), and
 * remember which pod its netns is.
 */
static __always_inline void sockops_flow_open(struct bpf_sock_ops *skops, struct sm_sk_state *st)
{
	__be32 src = SM_CTX_LOAD(skops->local_ip4);
	struct sm_sk_flow f;

	flow_open(&f, src, st);
	flow_save(st, &f);
	if (!sock_is_loopback(src))
		flow_learn_nsip(st->netns_cookie, src);
}

/*
 * The client flow of a socket, to work on: loaded from its state into *tmp
 * (sockops_flow_put saves a change), or the sm_sk_flow of a client socket an
 * earlier version opened. NULL when the socket has no client flow.
 */
static __always_inline struct sm_sk_flow *sockops_flow_get(struct bpf_sock *sk,
							   const struct sm_sk_state *st,
							   __be32 src, struct sm_sk_flow *tmp)
{
	struct sm_sk_flow *f;

	if (st && (st->flags & SM_SK_F_FLOW)) {
		flow_load(tmp, st, src);
		return tmp;
	}
	f = bpf_sk_storage_get(&sm_sk_flow, sk, 0, 0);
	return f && (f->flags & SM_FLOW_F_CLIENT) ? f : NULL;
}

static __always_inline void sockops_flow_put(struct sm_sk_state *st, const struct sm_sk_flow *tmp)
{
	if (st && (st->flags & SM_SK_F_FLOW))
		flow_save(st, tmp);
}

/* TCP_CONNECT_CB: state watch and flow for L4 sockets, the VIP for L7 ones. */
static __always_inline void sockops_connect(struct bpf_sock_ops *skops)
{
	struct sm_sk_state *st = sockops_state(skops);

	if (!st)
		return;
	if (st->flags & SM_SK_F_COUNTED) {
		sockops_watch(skops, st);
		sockops_flow_open(skops, st);
	}
	if (st->flags & SM_SK_F_L7)
		sockops_l7_orig(skops, st);
}

/*
 * What flow_tcp_payload needs beyond the ctx: snd_una and write_seq (our FIN
 * acked?) and SOCK_DONE, which tcp_fin() sets when the peer's FIN arrives
 * (and nothing else sets for TCP until a disconnect; sk_flags has been
 * __sk_common.skc_flags since 4.4). Without a tcp_sock (never for a full TCP
 * socket) nothing is taken off.
 */
static __always_inline void sockops_fin_state(struct bpf_sock *sk, __u32 *snd_una,
					      __u32 *write_seq, int *fin_rcvd)
{
	struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);

	*snd_una = 0;
	*write_seq = 1;
	*fin_rcvd = 0;
	if (!tp)
		return;
	*snd_una = tp->snd_una;
	*write_seq = tp->write_seq;
	*fin_rcvd = !!(tp->inet_conn.icsk_inet.sk.__sk_common.skc_flags & (1UL << SOCK_DONE));
}

/* TCP_CLOSE of a socket with a flow: count the close and TCP's payload once. */
static __always_inline void sockops_flow_close(struct bpf_sock_ops *skops, struct bpf_sock *sk,
					       struct sm_sk_state *st, __u32 old_state,
					       const struct sm_sock_key *own)
{
	struct sm_sk_flow tmp, *f = sockops_flow_get(sk, st, own->sip, &tmp);
	__u32 snd_una, write_seq;
	__u64 tx, rx;
	int fin_rcvd;

	if (!f)
		return;
	if (f->flags & SM_FLOW_F_OPEN) {
		sockops_fin_state(sk, &snd_una, &write_seq, &fin_rcvd);
		flow_tcp_payload(SM_CTX_LOAD(skops->bytes_acked), SM_CTX_LOAD(skops->bytes_received),
				 old_state, snd_una, write_seq, fin_rcvd, &tx, &rx);
		flow_close(f, old_state, tx, rx);
	}
	flow_unpublish(f, own);
	sockops_flow_put(st, &tmp);
}

/* A client socket joined sm_sock_hash: its local server may redirect to it. */
static __always_inline void sockops_flow_publish(struct bpf_sock_ops *skops, struct sm_sk_state *st,
						 const struct sm_sock_key *own)
{
	struct bpf_sock *sk = skops->sk;
	struct sm_sk_flow tmp, *f;

	if (!sk)
		return;
	f = sockops_flow_get(sk, st, own->sip, &tmp);
	if (!f)
		return;
	flow_publish(f, own);
	sockops_flow_put(st, &tmp);
}

static __always_inline void sockops_own_key(struct bpf_sock_ops *skops, struct sm_sock_key *own)
{
	/* One load per ctx field (see SM_CTX_LOAD). */
	__u32 lip = SM_CTX_LOAD(skops->local_ip4);
	__u32 rip = SM_CTX_LOAD(skops->remote_ip4);
	__u32 lport = SM_CTX_LOAD(skops->local_port);
	__u32 rport = SM_CTX_LOAD(skops->remote_port);
	struct sm_sock_key peer;
	__u64 netns = 0;

	if (sock_is_loopback(lip))
		netns = bpf_get_netns_cookie(skops);
	sock_keys(lip, bpf_htons((__u16)lport), rip, sock_ctx_rport(rport), netns,
		  own, &peer);
}

/* Put the socket into sm_sock_hash under *own. Returns 1 when it went in. */
static __always_inline int sockops_insert(struct bpf_sock_ops *skops, struct sm_sock_key *own)
{
	const struct sm_config_val *cfg = sockops_config();
	__u32 remote;

	if (!cfg || !(cfg->flags & SM_CFG_F_REDIRECT))
		return 0;
	sockops_own_key(skops, own);
	remote = sockops_pod_flags(own->dip);
	/* Either end opted out: keep both out, the pair stays plain TCP. */
	if ((sockops_pod_flags(own->sip) | remote) & SM_POD_F_NO_REDIRECT) {
		stat_inc(SM_STAT_REDIRECT_OPTOUT);
		return 0;
	}
	/*
	 * A peer on another node can never be redirected to: a socket in the
	 * sockhash would only cost its psock and a sockhash slot.
	 */
	if ((cfg->flags & SM_CFG_F_LOCAL_ONLY) && !(remote & SM_POD_F_LOCAL) &&
	    !sock_is_loopback(own->dip) && own->dip != cfg->l7_addr) {
		stat_inc(SM_STAT_SOCK_REMOTE);
		return 0;
	}
	if (bpf_sock_hash_update(skops, &sm_sock_hash, own, BPF_NOEXIST)) {
		stat_inc(SM_STAT_SOCK_INSERT_ERR);
		return 0;
	}
	stat_inc(SM_STAT_SOCK_INSERT);
	bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags |
				  BPF_SOCK_OPS_RTT_CB_FLAG | BPF_SOCK_OPS_STATE_CB_FLAG);
	return 1;
}

/*
 * First RTT sample of a socket in sm_sock_hash: its first TCP bytes were
 * ACKed. If sk_msg decided OFF, leave the map (drops the psock, restores
 * tcp_prot) unless bytes were redirected into it. Once decided, stop the
 * callback.
 */
static __always_inline void sockops_rtt(struct bpf_sock_ops *skops)
{
	struct bpf_sock *sk = skops->sk;
	struct sm_sock_key own;
	struct sm_sk_state *st;

	if (!sk)
		return;
	st = bpf_sk_storage_get(&sm_sk_state, sk, 0, 0);
	if (!st || st->redir == SM_REDIR_UNDECIDED)
		return;
	if (st->redir == SM_REDIR_OFF) {
		sockops_own_key(skops, &own);
		if (!bpf_map_lookup_elem(&sm_redir_tgt, &own) &&
		    !bpf_map_delete_elem(&sm_sock_hash, &own))
			stat_inc(SM_STAT_SOCK_REMOVE);
	}
	bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags &
				  ~BPF_SOCK_OPS_RTT_CB_FLAG);
}

static __always_inline void sockops_closed(struct bpf_sock_ops *skops, __u32 old_state)
{
	struct bpf_sock *sk = skops->sk;
	struct sm_be_stats_val *bs;
	struct sm_sock_key own;
	struct sm_sk_state *st;

	/*
	 * Drop the marks sk_msg left under our own key. A delete takes the
	 * bucket lock even for a missing key; a lookup takes none, so look
	 * first. sm_redir_tgt is written by the peer's sk_msg, so only the
	 * map knows; sm_sock_off only by our own, together with SM_REDIR_OFF.
	 */
	sockops_own_key(skops, &own);
	if (bpf_map_lookup_elem(&sm_redir_tgt, &own))
		bpf_map_delete_elem(&sm_redir_tgt, &own);
	if (!sk)
		return;
	st = bpf_sk_storage_get(&sm_sk_state, sk, 0, 0);
	if (st && st->redir == SM_REDIR_OFF)
		bpf_map_delete_elem(&sm_sock_off, &own);
	sockops_flow_close(skops, sk, st, old_state, &own);
	if (!st || !conn_release(st))
		return;
	/*
	 * A failed handshake is the backend's failure only when sockops got
	 * here first: had the application closed the connecting socket,
	 * sock_release would already have released.
	 */
	if (old_state != SM_TCP_SYN_SENT)
		return;
	stat_inc(SM_STAT_CONNECT_FAIL);
	bs = conn_be_stats(&st->be);
	if (bs)
		bs->connect_fail++;
}

SEC("sockops")
int sm_sockops(struct bpf_sock_ops *skops)
{
	struct sm_sock_key own;
	struct sm_sk_state *st;

	/* AF_INET, or AF_INET6 carrying IPv4 (v4-mapped): see lib/sock.h */
	if (!SOCK_CTX_IS_IPV4(skops))
		return 1;

	switch (skops->op) {
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
		sockops_connect(skops);
		break;
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		st = sockops_state(skops);
		sockops_watch(skops, st);
		if (sockops_insert(skops, &own))
			sockops_flow_publish(skops, st, &own);
		break;
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		sockops_insert(skops, &own);
		break;
	case BPF_SOCK_OPS_RTT_CB:
		sockops_rtt(skops);
		break;
	case BPF_SOCK_OPS_STATE_CB:
		if (skops->args[1] == SM_TCP_CLOSE)
			sockops_closed(skops, skops->args[0]);
		break;
	default:
		break;
	}
	return 1;
}
