// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sk_msg verdict on sm_sock_hash (attached by the agent with
 * bpf_prog_attach(prog, sm_sock_hash, BPF_SK_MSG_VERDICT)): a message whose
 * peer socket is on this node goes straight into the peer's receive queue
 * (msg_redirect_hash, BPF_F_INGRESS), skipping TCP/IP; otherwise it passes.
 *
 * Hazard 1, ordering. The client may send before the server's
 * PASSIVE_ESTABLISHED has put the accepted socket into sm_sock_hash: those
 * first bytes take TCP, and redirecting later bytes could overtake them. So
 * the decision is sticky per socket, taken at its first message and kept in
 * sk_storage (sm_sk_state.redir; sk_msg has bpf_sk_storage_get since 5.8,
 * present in 6.1 sk_msg_func_proto):
 *   peer found   -> SM_REDIR_ON: every later message is redirected;
 *   peer missing -> SM_REDIR_OFF: never redirected; sockops takes the
 *                   socket out of sm_sock_hash at its first RTT sample
 *                   (the ACK of those TCP bytes), see hazard 2.
 * sk_msg itself may not delete from a sockmap (verifier: "cannot update
 * sockmap in this context"; since the 2024 fix, also in 6.1.y only sock_ops
 * and a few others may), hence the detour through sockops. A socket that
 * left the map cannot be found by its peer either, so the peer's first
 * message also misses: the pair ends up fully TCP. A socket that was ON and
 * then misses (peer closed) passes.
 *
 * Hazard 2, EAGAIN on a blocking read (net/ipv4/tcp_bpf.c, read in 6.1 and
 * 6.6). Every socket in a sockmap with an sk_msg program gets
 * tcp_bpf_recvmsg. When its psock queue (ingress_msg) is empty and
 * sk_receive_queue is empty too, it calls tcp_msg_wait_data(), which waits
 * ONCE: sk_wait_event() -> a single wait_woken() on sk_sleep(sk), then it
 * re-tests "ingress_msg or sk_receive_queue non-empty". Any wake-up on that
 * wait queue with both queues still empty makes recvmsg return -EAGAIN,
 * even for a blocking socket without SO_RCVTIMEO. tcp_recvmsg instead loops
 * until data, error, timeout or signal. Wake-ups that carry no data:
 *  - write space: sk_stream_write_space() when ACKs free this socket's own
 *    send queue (tcp_check_space), i.e. the socket sent through TCP and
 *    now waits for an answer that comes by redirect or is not there yet;
 *  - a signal (EAGAIN instead of EINTR/restart);
 *  - a wake-up for data a concurrent reader took first.
 * So the EAGAIN needs a socket that has a psock AND sends over TCP: exactly
 * the mixed pair hazard 1 creates (client OFF sends its request over TCP,
 * the ACK's write-space wake-up finds the redirected reply not yet queued).
 * (tcp_check_space() calls sk_write_space only when SOCK_NOSPACE is set,
 * i.e. after the sender filled its send buffer or poll() saw it full: bulk
 * senders.) Our answer: a socket that decides OFF leaves sm_sock_hash at
 * the first ACK of its TCP bytes (sockops RTT_CB runs inside tcp_ack(),
 * before tcp_data_snd_check() wakes writers), which drops its psock and
 * restores tcp_prot: later reads are plain tcp_recvmsg. A reader already
 * blocked inside tcp_bpf_recvmsg at that moment keeps the old path for that
 * one call. A socket that decides ON sends nothing over TCP, so no ACK-driven
 * write-space wake-ups. Pods that still hit it opt out with
 * SM_POD_F_NO_REDIRECT (sockops never inserts their sockets, both ends).
 * Left: a redirected socket still sees EAGAIN on a signal or a wake-up for
 * bytes another thread read, and a socket that was redirected into keeps
 * its psock even when it decides OFF (below).
 *
 * Leaving sm_sock_hash frees the psock with whatever redirected bytes are
 * still unread in it. A sender therefore marks its peer in sm_redir_tgt
 * before its first redirect, and sockops never removes a marked socket (it
 * can only decide OFF when its redirecting peer has since closed).
 */
#include "lib/flow.h"
#include "lib/sock.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

static __always_inline int redir_enabled(void)
{
	__u32 zero = 0;
	struct sm_config_val *cfg = bpf_map_lookup_elem(&sm_config, &zero);

	return cfg && (cfg->flags & SM_CFG_F_REDIRECT);
}

SEC("sk_msg")
int sm_redir(struct sk_msg_md *msg)
{
	struct sm_sock_key own, peer;
	struct sm_sk_state *st;
	struct sm_sk_flow tmp, *f;
	__u32 lip, rip, lport, rport, one = 1;
	__u64 netns = 0;
	long ret;

	/* AF_INET, or AF_INET6 carrying IPv4 (v4-mapped): see lib/sock.h */
	if (!msg->sk || !SOCK_CTX_IS_IPV4(msg))
		return SK_PASS;
	/*
	 * One plain load per ctx field: clang otherwise derives a pointer
	 * into the ctx and dereferences it ("dereference of modified ctx
	 * ptr"), which the verifier rejects.
	 */
	lip = SM_CTX_LOAD(msg->local_ip4);
	rip = SM_CTX_LOAD(msg->remote_ip4);
	lport = SM_CTX_LOAD(msg->local_port);
	rport = SM_CTX_LOAD(msg->remote_port);
	if (sock_is_loopback(lip))
		netns = bpf_get_netns_cookie(msg);
	sock_keys(lip, bpf_htons((__u16)lport), rip, sock_ctx_rport(rport), netns,
		  &own, &peer);

	st = bpf_sk_storage_get(&sm_sk_state, msg->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!st) {
		/* Nowhere to keep a decision: TCP, like every message before. */
		stat_inc(SM_STAT_REDIRECT_ERR);
		return SK_PASS;
	}
	if (st->redir == SM_REDIR_OFF) {
		stat_inc(SM_STAT_REDIRECT_STICKY);
		return SK_PASS;
	}
	if (st->redir == SM_REDIR_UNDECIDED && !redir_enabled()) {
		st->redir = SM_REDIR_OFF;
		stat_inc(SM_STAT_REDIRECT_OPTOUT);
		return SK_PASS;
	}

	/*
	 * Never start redirecting into a peer that already decided TCP: sockops
	 * takes such a socket out of sm_sock_hash at its first ACK, and bytes
	 * redirected into it just before would be freed with its psock (seen
	 * with the agent's proxy sockets, which join the map after accept, when
	 * the pod's request had gone by TCP). A socket publishes its OFF in
	 * sm_sock_off before its first byte leaves by TCP; OFF is final, and a
	 * socket decides ON only while its peer is in the map, so checking once,
	 * at our own decision, closes the race. (sk_msg may not hold the peer
	 * socket itself: a sockhash lookup needs bpf_sk_release, not allowed here.)
	 */
	if (st->redir == SM_REDIR_UNDECIDED && bpf_map_lookup_elem(&sm_sock_off, &peer)) {
		st->redir = SM_REDIR_OFF;
		bpf_map_update_elem(&sm_sock_off, &own, &one, BPF_ANY);
		stat_inc(SM_STAT_REDIRECT_MISS);
		return SK_PASS;
	}

	ret = bpf_msg_redirect_hash(msg, &sm_sock_hash, &peer, BPF_F_INGRESS);
	if (ret == SK_PASS) {
		if (st->redir == SM_REDIR_UNDECIDED) {
			bpf_map_update_elem(&sm_redir_tgt, &peer, &one, BPF_ANY);
			st->redir = SM_REDIR_ON;
		}
		stat_inc(SM_STAT_REDIRECT);
		/*
		 * These bytes bypass TCP's counters: count them here (lib/flow.h).
		 * A client keeps its flow in its state (flow_load), any other
		 * socket learns its role in sm_sk_flow.
		 */
		if (st->flags & SM_SK_F_FLOW) {
			flow_load(&tmp, st, lip);
			f = &tmp;
		} else {
			f = bpf_sk_storage_get(&sm_sk_flow, msg->sk, 0,
					       BPF_SK_STORAGE_GET_F_CREATE);
		}
		if (f)
			flow_redirected(f, &peer, SM_CTX_LOAD(msg->size));
		return SK_PASS;
	}
	stat_inc(SM_STAT_REDIRECT_MISS);
	if (st->redir == SM_REDIR_UNDECIDED) {
		st->redir = SM_REDIR_OFF;
		bpf_map_update_elem(&sm_sock_off, &own, &one, BPF_ANY);
	}
	return SK_PASS;
}
