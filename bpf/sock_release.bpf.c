// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cgroup/sock_release (5.9+): runs when the application closes a socket,
 * before TCP's own close. It gives back the counts connect4 took when
 * sockops has not already (it does on TCP_CLOSE), so a socket that never
 * reached the TCP machinery (connect failed early, closed while connecting)
 * cannot leak an active or maxConnections count. Also forgets the socket's
 * redirect-target mark (see redir.bpf.c).
 */
#include "lib/conn.h"
#include "lib/sock.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("cgroup/sock_release")
int sm_sock_rel(struct bpf_sock *sk)
{
	struct sm_sock_key own, peer;
	struct sm_sk_state *st;
	__u64 netns = 0;

	if (sk->family != SM_AF_INET || sk->type != SM_SOCK_STREAM)
		return SM_CG_ALLOW;
	st = bpf_sk_storage_get(&sm_sk_state, sk, 0, 0);
	if (st)
		conn_release(st);
	if (!sk->dst_ip4)
		return SM_CG_ALLOW;
	if (sock_is_loopback(sk->src_ip4))
		netns = bpf_get_netns_cookie(sk);
	sock_keys(sk->src_ip4, bpf_htons((__u16)sk->src_port), sk->dst_ip4,
		  (__be16)sk->dst_port, netns, &own, &peer);
	bpf_map_delete_elem(&sm_redir_tgt, &own);
	return SM_CG_ALLOW;
}
