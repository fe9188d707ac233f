// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cgroup/getpeername6: an AF_INET6 socket connect6 translated from a
 * v4-mapped VIP reports ::ffff:<VIP>:<port>, not the backend
 * (lib/connect.h, getpeer6_xlate). Native IPv6 peers are never ours.
 */
#include "lib/connect.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("cgroup/getpeername6")
int sm_getpeer6(struct bpf_sock_addr *ctx)
{
	__be16 port = (__be16)ctx->user_port;
	__u32 ip6[4];

	if (ctx->type != SM_SOCK_STREAM || !ctx->sk)
		return SM_CG_ALLOW;
	ip6[0] = ctx->user_ip6[0];
	ip6[1] = ctx->user_ip6[1];
	ip6[2] = ctx->user_ip6[2];
	ip6[3] = ctx->user_ip6[3];
	if (getpeer6_xlate(SM_CONNECT_STATE(ctx->sk, 0), ip6, &port)) {
		ctx->user_ip6[3] = ip6[3];
		ctx->user_port = port;
	}
	return SM_CG_ALLOW;
}
