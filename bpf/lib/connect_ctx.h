/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The context half of cgroup/connect4 and cgroup/connect6: what the
 * decision (lib/connect.h) needs from struct bpf_sock_addr, and its verdict
 * turned into the hook's return value. The same for both families: the
 * context type is one.
 */
#ifndef SM_BPF_CONNECT_CTX_H
#define SM_BPF_CONNECT_CTX_H

#include "connect.h"

static __always_inline int connect_ctx_is_tcp(struct bpf_sock_addr *ctx)
{
	return ctx->type == SM_SOCK_STREAM && ctx->protocol == SM_IPPROTO_TCP;
}

/* The view of a TCP connect() to addr (network order) and the ctx's port. */
static __always_inline void connect_ctx_view(struct bpf_sock_addr *ctx, struct sm_connect *c,
					     __be32 addr)
{
	struct bpf_sock *sk = ctx->sk;

	stat_inc(SM_STAT_CONNECT_SEEN);
	__builtin_memset(c, 0, sizeof(*c));
	c->daddr = addr;
	c->dport = (__be16)ctx->user_port;
	/* an AF_INET6 socket bound to ::ffff:a.b.c.d has it here too */
	c->bound_src = sk ? sk->src_ip4 : 0;
	/* rand, netns and now: SM_CONNECT_ENV, for VIPs only */
}

static __always_inline int connect_ctx_verdict(int ret, const struct sm_connect *c)
{
	if (ret != SM_XLATE_REFUSE)
		return SM_CG_ALLOW;
	bpf_set_retval(-c->err);
	return SM_CG_REJECT;
}

#endif /* SM_BPF_CONNECT_CTX_H */
