// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cgroup/connect4: a TCP connect to a Service VIP:port is rewritten to one
 * backend (or to the agent's L7 listener). The decision is lib/connect.h's,
 * shared with connect6 (v4-mapped destinations); this entry only adapts
 * the AF_INET context.
 *
 * bpf_set_retval() is allowed for BPF_CGROUP_INET4/6_CONNECT since 5.18
 * (cgroup_common_func_proto, 6.1 included): with it a return of 0 makes
 * connect() fail with the errno we set instead of EPERM.
 */
#include "lib/connect_ctx.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("cgroup/connect4")
int sm_connect4(struct bpf_sock_addr *ctx)
{
	struct sm_connect c;
	int ret;

	if (!connect_ctx_is_tcp(ctx))
		return SM_CG_ALLOW;
	connect_ctx_view(ctx, &c, ctx->user_ip4);
	ret = connect_xlate(ctx, ctx->sk, &c);
	if (ret == SM_XLATE_L4 || ret == SM_XLATE_L7) {
		ctx->user_ip4 = c.daddr;
		ctx->user_port = c.dport;
	}
	return connect_ctx_verdict(ret, &c);
}
