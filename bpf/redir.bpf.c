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
 *   peer missing -> SM_REDIR_OFF: never redirected, the socket leaves
 *                   sm_sock_hash (plain TCP from then on, see hazard 2).
 * A socket that left the map cannot be found by its peer either, so the
 * peer's first message also misses: the pair ends up fully TCP. A socket
 * that was ON and then misses (peer closed) passes.
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
 * Our answer: a socket that decides OFF leaves sm_sock_hash, which drops its
 * psock and restores tcp_prot (plain tcp_recvmsg, no single-shot wait); a
 * socket that decides ON sends nothing over TCP, so ACK-driven write-space
 * wake-ups do not occur; pods that still hit it opt out with
 * SM_POD_F_NO_REDIRECT (sockops never inserts their sockets). Left: a
 * redirected socket still sees EAGAIN on a signal, and a socket that was
 * redirected into keeps its psock even when it decides OFF (below).
 *
 * Leaving sm_sock_hash frees the psock with whatever redirected bytes are
 * still unread in it. A sender therefore marks its peer in sm_redir_tgt
 * before its first redirect, and a marked socket never leaves (it can only
 * decide OFF when its redirecting peer has since closed).
 */
#include "lib/maps.h"
#include "lib/sock.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

static __always_inline int redir_enabled(void)
{
	__u32 zero = 0;
	struct sm_config_val *cfg = bpf_map_lookup_elem(&sm_config, &zero);

	return cfg && (cfg->flags & SM_CFG_F_REDIRECT);
}

/* The socket decided to use TCP: drop its psock unless bytes were redirected to it. */
static __always_inline void redir_leave(const struct sm_sock_key *own)
{
	if (bpf_map_lookup_elem(&sm_redir_tgt, own))
		return;
	if (!bpf_map_delete_elem(&sm_sock_hash, own))
		stat_inc(SM_STAT_SOCK_REMOVE);
}

SEC("sk_msg")
int sm_redir(struct sk_msg_md *msg)
{
	struct sm_sock_key own, peer;
	struct sm_sk_state *st;
	__u64 netns = 0;
	__u32 one = 1;
	long ret;

	if (msg->family != SM_AF_INET || !msg->sk)
		return SK_PASS;
	if (sock_is_loopback(msg->local_ip4))
		netns = bpf_get_netns_cookie(msg);
	sock_keys(msg->local_ip4, bpf_htons((__u16)msg->local_port),
		  msg->remote_ip4, sock_ctx_rport(msg->remote_port), netns,
		  &own, &peer);

	st = bpf_sk_storage_get(&sm_sk_state, msg->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!st) {
		/* Nowhere to keep the decision: take TCP for good. */
		stat_inc(SM_STAT_REDIRECT_ERR);
		redir_leave(&own);
		return SK_PASS;
	}
	if (st->redir == SM_REDIR_OFF) {
		stat_inc(SM_STAT_REDIRECT_STICKY);
		return SK_PASS;
	}
	if (st->redir == SM_REDIR_UNDECIDED && !redir_enabled()) {
		st->redir = SM_REDIR_OFF;
		stat_inc(SM_STAT_REDIRECT_OPTOUT);
		redir_leave(&own);
		return SK_PASS;
	}

	ret = bpf_msg_redirect_hash(msg, &sm_sock_hash, &peer, BPF_F_INGRESS);
	if (ret == SK_PASS) {
		if (st->redir == SM_REDIR_UNDECIDED) {
			bpf_map_update_elem(&sm_redir_tgt, &peer, &one, BPF_ANY);
			st->redir = SM_REDIR_ON;
		}
		stat_inc(SM_STAT_REDIRECT);
		return SK_PASS;
	}
	stat_inc(SM_STAT_REDIRECT_MISS);
	if (st->redir == SM_REDIR_UNDECIDED) {
		st->redir = SM_REDIR_OFF;
		redir_leave(&own);
	}
	return SK_PASS;
}
