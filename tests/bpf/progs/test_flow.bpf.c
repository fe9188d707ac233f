// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Test wrappers around the L4 telemetry code (bpf/lib/flow.h) that sockops,
 * sk_msg and connect4 run; neither can be test-run, so the same inline
 * functions run here in SEC("syscall") programs on private map copies, with
 * a hash map standing in for the sm_sk_flow socket storage.
 */
#define SM_MAPS_DEFINE
#include "lib/flow.h"
#include "test_flow.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct sm_sk_flow);
	__uint(max_entries, 64);
} test_sk_flow SEC(".maps");

SEC("syscall")
int test_payload(struct test_payload_ctx *ctx)
{
	__u64 tx, rx;

	flow_tcp_payload(ctx->acked, ctx->received, ctx->old_state, ctx->snd_una,
			 ctx->write_seq, ctx->fin_rcvd, &tx, &rx);
	ctx->tx = tx;
	ctx->rx = rx;
	return 0;
}

SEC("syscall")
int test_flow(struct test_flow_ctx *ctx)
{
	struct sm_sk_flow zero = {}, *f;
	struct sm_sk_state st = {};
	struct sm_sock_key sock = ctx->sock;
	__u32 slot = ctx->slot;

	if (ctx->op == TEST_FLOW_OVERFLOW) {
		if (ctx->src)
			flow_learn_nsip(ctx->netns, ctx->src);
		flow_overflow(ctx->cluster_id, ctx->netns, 0);
		ctx->ret = 0;
		return 0;
	}
	f = bpf_map_lookup_elem(&test_sk_flow, &slot);
	if (!f) {
		bpf_map_update_elem(&test_sk_flow, &slot, &zero, BPF_NOEXIST);
		f = bpf_map_lookup_elem(&test_sk_flow, &slot);
		if (!f) {
			ctx->ret = -100;
			return 0;
		}
	}
	switch (ctx->op) {
	case TEST_FLOW_OPEN:
		st.orig_vip = ctx->vip;
		st.orig_port = ctx->vport;
		st.be = ctx->be;
		flow_open(f, ctx->src, &st);
		break;
	case TEST_FLOW_PUBLISH:
		flow_publish(f, &sock);
		break;
	case TEST_FLOW_REDIRECT:
		flow_redirected(f, &sock, (__u32)ctx->size);
		break;
	case TEST_FLOW_CLOSE:
		flow_close(f, ctx->old_state, ctx->tx, ctx->rx);
		flow_unpublish(f, &sock);
		break;
	default:
		break;
	}
	ctx->flags = f->flags;
	ctx->ret = 0;
	return 0;
}
