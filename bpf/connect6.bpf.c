// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cgroup/connect6: an AF_INET6 socket dialling a v4-mapped Service VIP
 * (::ffff:10.96.0.20, what the JVM, gRPC's C core and others do whenever the
 * pod has IPv6 at all, and every pod has ::1) gets the same decision as
 * connect4 (lib/connect.h), its new destination written back as
 * ::ffff:<backend> or ::ffff:<L7 listener>. tcp_v6_connect() then hands
 * the socket to tcp_v4_connect(): on the wire it is the IPv4 connection
 * connect4 would have made. Native IPv6 destinations are left alone and
 * counted (connect_v6_native).
 */
#include "lib/connect_ctx.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("cgroup/connect6")
int sm_connect6(struct bpf_sock_addr *ctx)
{
	struct sm_connect c;
	__u32 ip6[4];
	int ret;

	if (!connect_ctx_is_tcp(ctx))
		return SM_CG_ALLOW;
	ip6[0] = ctx->user_ip6[0];
	ip6[1] = ctx->user_ip6[1];
	ip6[2] = ctx->user_ip6[2];
	ip6[3] = ctx->user_ip6[3];
	connect_ctx_view(ctx, &c, 0);
	ret = connect6_xlate(ctx, ctx->sk, ip6, &c);
	if (ret == SM_XLATE_L4 || ret == SM_XLATE_L7) {
		ctx->user_ip6[3] = ip6[3];
		ctx->user_port = c.dport;
	}
	return connect_ctx_verdict(ret, &c);
}
