/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * L4 telemetry (Istio's istio_tcp_*): connections opened and closed and
 * payload bytes each way, per (client pod, service port, backend) in
 * sm_flow_stats. Only sockets connect4 translated at L4 are counted, on the
 * client side (Istio's reporter="source"):
 *
 *  - opened at TCP_CONNECT_CB (the source address is known there, unlike in
 *    connect4), closed at the TCP_CLOSE state callback, counted as a connect
 *    failure instead when it closes from SYN_SENT;
 *  - bytes that go through TCP: TCP's own counters of the client socket,
 *    read once at TCP_CLOSE (bytes_acked = what the server acknowledged,
 *    bytes_received = what arrived in order);
 *  - bytes sk_msg redirects socket to socket never touch TCP, so they are
 *    not in those counters: sk_msg adds them as it redirects them, the
 *    client's own sends as tx, the node-local server socket's sends as rx of
 *    the client's flow (found through sm_sock_flow by the peer's key).
 * A redirected byte is never in TCP's counters and a TCP byte never passes
 * the redirect, so a socket that used both is counted once per byte. What
 * sk_msg passes to TCP is left to TCP's counters for the same reason.
 *
 * Counters are per CPU, added atomically: sk_msg (process context) and
 * sockops (softirq) may update one flow on one CPU at once.
 * Functions take plain pointers (a map value stands in for sk_storage), so a
 * SEC("syscall") test can drive them.
 */
#ifndef SM_BPF_FLOW_H
#define SM_BPF_FLOW_H

#include "maps.h"

/* The flow's counters, created on first use; NULL (and counted) when the map refuses. */
static __always_inline struct sm_flow_stats_val *flow_stats(const struct sm_flow_key *k)
{
	struct sm_flow_stats_val zero = {}, *s;

	s = bpf_map_lookup_elem(&sm_flow_stats, k);
	if (!s) {
		bpf_map_update_elem(&sm_flow_stats, k, &zero, BPF_NOEXIST);
		s = bpf_map_lookup_elem(&sm_flow_stats, k);
		if (!s)
			stat_inc(SM_STAT_FLOW_ERR);
	}
	return s;
}

/* A client socket's flow key: its source address, the VIP it dialled, the backend. */
static __always_inline void flow_key(struct sm_flow_key *k, __be32 src, const struct sm_sk_state *st)
{
	k->src = src;
	k->svc.vip = st->orig_vip;
	k->svc.port = st->orig_port;
	k->svc.proto = SM_IPPROTO_TCP;
	k->svc.pad = 0;
	k->be = st->be;
}

/* A translated client socket reaches TCP (TCP_CONNECT_CB): count it opened. */
static __always_inline void flow_open(struct sm_sk_flow *f, __be32 src, const struct sm_sk_state *st)
{
	struct sm_flow_stats_val *s;

	flow_key(&f->key, src, st);
	f->flags = SM_FLOW_F_CLIENT | SM_FLOW_F_OPEN | SM_FLOW_F_UNLISTED;
	s = flow_stats(&f->key);
	if (s)
		__sync_fetch_and_add(&s->opened, 1);
}

/*
 * A client socket keeps its flow in its sm_sk_state (SM_SK_F_FLOW*, see
 * struct sm_sk_flow): flow_load makes the struct sm_sk_flow the functions
 * here work on, from the state and the socket's source address (the key is
 * fixed from TCP_CONNECT_CB on: connect4 rewrites the state only for a new
 * connect, and the source address stays until the socket is closed);
 * flow_save writes its flags back. Only connect4 and sockops write
 * sm_sk_state.flags, under the socket lock; sock_release reads it without,
 * and the bits it reads (COUNTED, LIMITED) are the same in both values.
 */
static __always_inline void flow_load(struct sm_sk_flow *f, const struct sm_sk_state *st, __be32 src)
{
	flow_key(&f->key, src, st);
	f->flags = SM_FLOW_F_CLIENT;
	if (st->flags & SM_SK_F_FLOW_OPEN)
		f->flags |= SM_FLOW_F_OPEN;
	if (!(st->flags & SM_SK_F_FLOW_LISTED))
		f->flags |= SM_FLOW_F_UNLISTED;
}

static __always_inline void flow_save(struct sm_sk_state *st, const struct sm_sk_flow *f)
{
	__u16 flags = st->flags | SM_SK_F_FLOW;

	flags &= ~(SM_SK_F_FLOW_OPEN | SM_SK_F_FLOW_LISTED);
	if (f->flags & SM_FLOW_F_OPEN)
		flags |= SM_SK_F_FLOW_OPEN;
	if (!(f->flags & SM_FLOW_F_UNLISTED))
		flags |= SM_SK_F_FLOW_LISTED;
	st->flags = flags;
}

/* Our FIN is in the sequence space once the socket left ESTABLISHED/CLOSE_WAIT that way. */
static __always_inline int flow_fin_queued(__u32 old_state)
{
	return old_state == SM_TCP_FIN_WAIT1 || old_state == SM_TCP_FIN_WAIT2 ||
	       old_state == SM_TCP_CLOSING || old_state == SM_TCP_LAST_ACK;
}

/*
 * Payload bytes of a client socket's TCP at TCP_CLOSE. TCP counts sequence
 * space, not payload: bytes_acked includes our SYN (once the handshake
 * completed) and our FIN once acked (snd_una reached write_seq, which
 * includes the FIN); bytes_received includes the peer's FIN (fin_rcvd: the
 * socket's SOCK_DONE flag, set by tcp_fin only). old_state is the state the
 * socket closed from.
 */
static __always_inline void flow_tcp_payload(__u64 acked, __u64 received, __u32 old_state,
					     __u32 snd_una, __u32 write_seq, int fin_rcvd,
					     __u64 *tx, __u64 *rx)
{
	if (acked)
		acked--;		/* SYN */
	if (acked && flow_fin_queued(old_state) && snd_una == write_seq)
		acked--;		/* our FIN, acked */
	if (received && fin_rcvd)
		received--;		/* the peer's FIN */
	*tx = acked;
	*rx = received;
}

/* TCP_CLOSE of a counted client socket: closed once, with its TCP payload. */
static __always_inline void flow_close(struct sm_sk_flow *f, __u32 old_state, __u64 tx, __u64 rx)
{
	struct sm_flow_stats_val *s;

	if (!(f->flags & SM_FLOW_F_OPEN))
		return;
	f->flags &= ~SM_FLOW_F_OPEN;
	s = flow_stats(&f->key);
	if (!s)
		return;
	/*
	 * One counter or the other, never both: a reader summing the CPUs'
	 * values between two adds must not see closed - failed go backwards.
	 */
	if (old_state == SM_TCP_SYN_SENT)
		__sync_fetch_and_add(&s->connect_fail, 1);
	else
		__sync_fetch_and_add(&s->closed, 1);
	if (tx)
		__sync_fetch_and_add(&s->tx_bytes, tx);
	if (rx)
		__sync_fetch_and_add(&s->rx_bytes, rx);
}

/*
 * A client socket joined sm_sock_hash (ACTIVE_ESTABLISHED): publish its key
 * under its own sm_sock_key for its node-local server (flow_redirected).
 */
static __always_inline void flow_publish(struct sm_sk_flow *f, const struct sm_sock_key *own)
{
	if ((f->flags & SM_FLOW_F_CLIENT) &&
	    !bpf_map_update_elem(&sm_sock_flow, own, &f->key, BPF_ANY))
		f->flags &= ~SM_FLOW_F_UNLISTED;
}

/*
 * At TCP_CLOSE: take the key out of sm_sock_flow again, unless it is known
 * not to be there (a delete takes the bucket lock even for a missing key).
 */
static __always_inline void flow_unpublish(struct sm_sk_flow *f, const struct sm_sock_key *own)
{
	if (!(f->flags & SM_FLOW_F_CLIENT) || (f->flags & SM_FLOW_F_UNLISTED))
		return;
	bpf_map_delete_elem(&sm_sock_flow, own);
	f->flags |= SM_FLOW_F_UNLISTED;
}

/*
 * sk_msg redirected size bytes of this socket into peer. A socket without a
 * role yet (its sm_sk_flow was just created, flags 0) learns it once: the
 * server of a counted client when peer is in sm_sock_flow, else none.
 */
static __always_inline void flow_redirected(struct sm_sk_flow *f, const struct sm_sock_key *peer,
					    __u32 size)
{
	struct sm_flow_stats_val *s;
	struct sm_flow_key *k;

	if (!f->flags) {
		k = bpf_map_lookup_elem(&sm_sock_flow, peer);
		if (k) {
			f->key = *k;
			f->flags = SM_FLOW_F_PEER;
		} else {
			f->flags = SM_FLOW_F_NONE;
		}
	}
	if (!(f->flags & (SM_FLOW_F_CLIENT | SM_FLOW_F_PEER)) || !size)
		return;
	s = flow_stats(&f->key);
	if (!s)
		return;
	if (f->flags & SM_FLOW_F_CLIENT)
		__sync_fetch_and_add(&s->tx_bytes, size);
	else
		__sync_fetch_and_add(&s->rx_bytes, size);
}

/* connect4 refused a connect of client netns by maxConnections of cluster_id. */
static __always_inline void flow_overflow(__u64 cluster_id, __u64 netns, __be32 bound_src)
{
	struct sm_overflow_key k = { .cluster_id = cluster_id, .src = bound_src };
	__u64 zero = 0, *v;
	__be32 *ip;

	if (!k.src) {
		ip = bpf_map_lookup_elem(&sm_nsip, &netns);
		if (ip)
			k.src = *ip;
	}
	v = bpf_map_lookup_elem(&sm_overflow, &k);
	if (!v) {
		bpf_map_update_elem(&sm_overflow, &k, &zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&sm_overflow, &k);
		if (!v) {
			stat_inc(SM_STAT_FLOW_ERR);
			return;
		}
	}
	__sync_fetch_and_add(v, 1);
}

/* Remember which pod a client netns is (for flow_overflow); writes only on change. */
static __always_inline void flow_learn_nsip(__u64 netns, __be32 addr)
{
	__be32 *ip = bpf_map_lookup_elem(&sm_nsip, &netns);

	if (!netns || !addr || (ip && *ip == addr))
		return;
	bpf_map_update_elem(&sm_nsip, &netns, &addr, BPF_ANY);
}

#endif /* SM_BPF_FLOW_H */
