// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cgroup/getpeername4: a socket connect4 translated reports the VIP it
 * dialled, not the backend (lib/connect.h, getpeer_xlate).
 */
#include "lib/connect.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("cgroup/getpeername4")
int sm_getpeer4(struct bpf_sock_addr *ctx)
{
	__be32 addr = ctx->user_ip4;
	__be16 port = (__be16)ctx->user_port;

	if (ctx->type != SM_SOCK_STREAM || !ctx->sk)
		return SM_CG_ALLOW;
	if (getpeer_xlate(SM_CONNECT_STATE(ctx->sk, 0), &addr, &port)) {
		ctx->user_ip4 = addr;
		ctx->user_port = port;
	}
	return SM_CG_ALLOW;
}
