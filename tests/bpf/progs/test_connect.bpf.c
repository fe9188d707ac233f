// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The connect decision of cgroup/connect4 and cgroup/connect6
 * (bpf/lib/connect.h) and getpeername4/6, test-run through a SEC("syscall")
 * wrapper for both families: the production inline functions over private
 * map copies (SM_MAPS_DEFINE), with a hash map standing in for the
 * socket's sk_storage (SM_CONNECT_STATE). The entries' own glue is what
 * test_sock() does around them: copy the address in, write it back for L4
 * and L7.
 */
#define SM_MAPS_DEFINE
#include "lib/maps.h"
#include "test_connect.h"
#include "test_sk_state.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* The socket of the running op (test_sock_ctx.slot). */
__u32 test_slot;

#define SM_CONNECT_STATE(sk, flags) \
	test_sk_state_slot(test_slot, (flags) & BPF_SK_STORAGE_GET_F_CREATE)
/* the test sets rand, netns and now in the view itself */
#define SM_CONNECT_ENV(env, c) ((void)(env))
#include "lib/connect.h"

SEC("syscall")
int test_sock(struct test_sock_ctx *ctx)
{
	struct sm_connect c = {};
	void *sk = ctx->slot ? ctx : NULL;
	__be16 port = ctx->port;
	__u32 ip6[4];
	__be32 addr;
	int ret;

	test_slot = ctx->slot;
	ip6[0] = ctx->ip6[0];
	ip6[1] = ctx->ip6[1];
	ip6[2] = ctx->ip6[2];
	ip6[3] = ctx->ip6[3];
	switch (ctx->op) {
	case TEST_SOCK_CONNECT:
		c.dport = port;
		c.bound_src = ctx->bound_src;
		c.rand = ctx->rand;
		c.netns = ctx->netns;
		c.now = ctx->now;
		if (ctx->family == TEST_AF_INET6) {
			ret = connect6_xlate(NULL, sk, ip6, &c);
		} else {
			c.daddr = ctx->ip4;
			ret = connect_xlate(NULL, sk, &c);
			if (ret == SM_XLATE_L4 || ret == SM_XLATE_L7)
				ctx->ip4 = c.daddr;
		}
		if (ret == SM_XLATE_L4 || ret == SM_XLATE_L7)
			ctx->port = c.dport;
		ctx->err = c.err;
		break;
	case TEST_SOCK_GETPEER:
		if (ctx->family == TEST_AF_INET6) {
			ret = getpeer6_xlate(test_sk_state_slot(test_slot, 0), ip6, &port);
		} else {
			addr = ctx->ip4;
			ret = getpeer_xlate(test_sk_state_slot(test_slot, 0), &addr, &port);
			ctx->ip4 = addr;
		}
		ctx->port = port;
		break;
	case TEST_SOCK_RELEASE: {
		struct sm_sk_state *st = test_sk_state_slot(test_slot, 0);

		ret = st ? conn_release(st) : 0;
		break;
	}
	default: {
		struct { __u32 family; __u32 remote_ip6[4]; } s = {
			.family = ctx->family,
			.remote_ip6 = { ip6[0], ip6[1], ip6[2], ip6[3] },
		};

		ret = SOCK_CTX_IS_IPV4(&s);
		break;
	}
	}
	ctx->ip6[0] = ip6[0];
	ctx->ip6[1] = ip6[1];
	ctx->ip6[2] = ip6[2];
	ctx->ip6[3] = ip6[3];
	ctx->ret = ret;
	return 0;
}
