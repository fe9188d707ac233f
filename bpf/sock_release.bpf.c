// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cgroup/sock_release (5.9+): runs when the application closes a socket,
 * before TCP's own close. It gives back the counts connect4 took when
 * sockops has not already (it does on TCP_CLOSE), so a socket that never
 * reached the TCP machinery (connect failed early, closed while connecting)
 * cannot leak an active or maxConnections count. bpf_sk_storage_get is
 * available here (sock_filter_func_proto, cg_sock variant, 6.1 included);
 * the socket's source address is not (bpf_sock src_* is POST_BIND only).
 */
#include "lib/conn.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("cgroup/sock_release")
int sm_sock_rel(struct bpf_sock *sk)
{
	struct sm_sk_state *st;

	/* AF_INET6: sockets connect6 translated from a v4-mapped VIP */
	if ((sk->family != SM_AF_INET && sk->family != SM_AF_INET6) ||
	    sk->type != SM_SOCK_STREAM)
		return SM_CG_ALLOW;
	st = bpf_sk_storage_get(&sm_sk_state, sk, 0, 0);
	if (st)
		conn_release(st);
	return SM_CG_ALLOW;
}
