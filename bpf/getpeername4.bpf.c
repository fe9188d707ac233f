// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cgroup/getpeername4: a socket connect4 translated reports the VIP it
 * dialled, not the backend, so applications (and TLS SNI/host checks built
 * on the peer address) see what they asked for. Only when the socket is
 * still connected to the backend we chose: a later connect() of the same
 * socket elsewhere is reported as is.
 */
#include "lib/maps.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("cgroup/getpeername4")
int sm_getpeer4(struct bpf_sock_addr *ctx)
{
	struct sm_sk_state *st;

	if (ctx->type != SM_SOCK_STREAM || !ctx->sk)
		return SM_CG_ALLOW;
	st = bpf_sk_storage_get(&sm_sk_state, ctx->sk, 0, 0);
	if (!st || !(st->flags & SM_SK_F_TRANSLATED))
		return SM_CG_ALLOW;
	if (ctx->user_ip4 != st->be.addr || (__be16)ctx->user_port != st->be.port)
		return SM_CG_ALLOW;
	ctx->user_ip4 = st->orig_vip;
	ctx->user_port = st->orig_port;
	stat_inc(SM_STAT_GETPEERNAME);
	return SM_CG_ALLOW;
}
