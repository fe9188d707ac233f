// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Test wrappers around the production decision code (bpf/lib/lb.h,
 * bpf/lib/conn.h). cgroup/connect4, sockops and sk_msg cannot be test-run,
 * so the same inline functions run here in SEC("syscall") programs, with
 * private copies of the maps (SM_MAPS_DEFINE) filled by the driver.
 */
#define SM_MAPS_DEFINE
#include "lib/lb.h"
#include "lib/conn.h"
#include "test_lb.h"
#include "test_sk_state.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("syscall")
int test_pick(struct test_lb_ctx *ctx)
{
	__u64 id = ctx->cluster_id;
	struct sm_lb_out out = {};
	struct sm_cluster_val *cl;

	cl = bpf_map_lookup_elem(&sm_cluster, &id);
	if (!cl) {
		ctx->ret = -100;
		return 0;
	}
	ctx->ret = lb_pick(id, cl, ctx->hash, ctx->now, &out);
	ctx->be = out.be;
	ctx->idx = out.idx;
	ctx->panic = out.panic;
	return 0;
}

SEC("syscall")
int test_conn(struct test_conn_ctx *ctx)
{
	struct sm_sk_state *st;
	struct sm_be_key be = ctx->be;
	int r;

	switch (ctx->op) {
	case TEST_CONN_TAKE:
		ctx->ret = conn_limit_take(ctx->netns, ctx->cluster_id, ctx->max);
		return 0;
	case TEST_CONN_GIVE:
		conn_limit_give(ctx->netns, ctx->cluster_id);
		ctx->ret = 0;
		return 0;
	default:
		break;
	}

	st = test_sk_state_slot(ctx->slot, 1);
	if (!st) {
		ctx->ret = -100;
		return 0;
	}
	if (ctx->op == TEST_CONN_RELEASE) {
		ctx->ret = conn_release(st);
		return 0;
	}
	/* TEST_CONN_HOLD, as connect4 does it. */
	conn_release(st);
	st->flags = SM_SK_F_TRANSLATED | SM_SK_F_COUNTED;
	if (ctx->max) {
		r = conn_limit_take(ctx->netns, ctx->cluster_id, ctx->max);
		if (r) {
			st->flags = 0;
			ctx->ret = r;
			return 0;
		}
		st->flags |= SM_SK_F_LIMITED;
	}
	conn_active_add(&be, 1);
	st->be = be;
	st->cluster_id = ctx->cluster_id;
	st->netns_cookie = ctx->netns;
	__sync_lock_test_and_set(&st->release, 0);
	ctx->ret = 0;
	return 0;
}
