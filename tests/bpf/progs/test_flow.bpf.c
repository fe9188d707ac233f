// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Test wrappers around the L4 telemetry code (bpf/lib/flow.h) that sockops,
 * sk_msg and connect4 run; neither can be test-run, so the same inline
 * functions run here in SEC("syscall") programs on private map copies, with
 * hash maps standing in for the sm_sk_flow and sm_sk_state socket storage.
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

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct sm_sk_state);
	__uint(max_entries, 64);
} test_sk_state SEC(".maps");

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

/*
 * The flow a socket's op works on, as sockops and sk_msg find it: with
 * in_state, a client's lives in its state (test_sk_state stands in for
 * sm_sk_state), loaded into *tmp; otherwise (servers, clients of an earlier
 * version) in sm_sk_flow (test_sk_flow). *st is set when *tmp is used.
 */
static __always_inline struct sm_sk_flow *test_flow_of(struct test_flow_ctx *ctx,
						       struct sm_sk_flow *tmp,
						       struct sm_sk_state **st)
{
	struct sm_sk_state zst = {}, *s = NULL;
	struct sm_sk_flow zero = {};
	__u32 slot = ctx->slot;

	*st = NULL;
	if (ctx->in_state) {
		bpf_map_update_elem(&test_sk_state, &slot, &zst, BPF_NOEXIST);
		s = bpf_map_lookup_elem(&test_sk_state, &slot);
		if (!s)
			return NULL;
	}
	if (s && ctx->op == TEST_FLOW_OPEN) {
		/* what connect4 leaves for a translated socket */
		s->orig_vip = ctx->vip;
		s->orig_port = ctx->vport;
		s->be = ctx->be;
		s->flags = SM_SK_F_TRANSLATED | SM_SK_F_COUNTED;
		*st = s;
		return tmp;
	}
	if (s && (s->flags & SM_SK_F_FLOW)) {
		flow_load(tmp, s, ctx->src);
		*st = s;
		return tmp;
	}
	bpf_map_update_elem(&test_sk_flow, &slot, &zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(&test_sk_flow, &slot);
}

SEC("syscall")
int test_flow(struct test_flow_ctx *ctx)
{
	struct sm_sk_state *st, ost = {};
	struct sm_sock_key sock = ctx->sock;
	struct sm_sk_flow tmp, *f;

	if (ctx->op == TEST_FLOW_OVERFLOW) {
		if (ctx->src)
			flow_learn_nsip(ctx->netns, ctx->src);
		flow_overflow(ctx->cluster_id, ctx->netns, 0);
		ctx->ret = 0;
		return 0;
	}
	f = test_flow_of(ctx, &tmp, &st);
	if (!f) {
		ctx->ret = -100;
		return 0;
	}
	switch (ctx->op) {
	case TEST_FLOW_OPEN:
		ost.orig_vip = ctx->vip;
		ost.orig_port = ctx->vport;
		ost.be = ctx->be;
		flow_open(f, ctx->src, st ? st : &ost);
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
	ctx->st_flags = 0;
	if (st) {
		flow_save(st, f);
		ctx->st_flags = st->flags;
	}
	ctx->ret = 0;
	return 0;
}
