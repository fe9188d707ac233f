/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Context structs of the SEC("syscall") wrappers in test_flow.bpf.c, shared
 * with the driver tests/bpf/test_flow.c (ctx_in is copied back out).
 */
#ifndef SM_TEST_FLOW_H
#define SM_TEST_FLOW_H

#include "sockmesh.h"

/* test_payload: flow_tcp_payload() of TCP's counters at TCP_CLOSE. */
struct test_payload_ctx {
	__u64 acked, received;		/* in: bytes_acked, bytes_received */
	__u32 old_state;		/* in: state the socket closed from */
	__u32 snd_una, write_seq;	/* in */
	__u32 fin_rcvd;			/* in: SOCK_DONE */
	__u64 tx, rx;			/* out */
};

enum test_flow_op {
	TEST_FLOW_OPEN = 0,	/* flow_open(slot, src, vip:port, be): TCP_CONNECT_CB */
	TEST_FLOW_PUBLISH,	/* flow_publish(slot, sock): ACTIVE_ESTABLISHED */
	TEST_FLOW_REDIRECT,	/* flow_redirected(slot, peer = sock, size): sk_msg */
	TEST_FLOW_CLOSE,	/* flow_close(slot, old_state, tx, rx), flow_unpublish(slot,
				 * sock): TCP_CLOSE */
	TEST_FLOW_OVERFLOW,	/* flow_learn_nsip(netns, src) when src, then flow_overflow */
};

/* test_flow: the accounting of lib/flow.h on a sm_sk_flow slot. */
struct test_flow_ctx {
	__u32 op;		/* enum test_flow_op */
	__u32 slot;		/* key in test_sk_flow, test_sk_state (for sk_storage) */
	__be32 src;
	__be32 vip;
	__be16 vport;
	__u16 pad;
	__u32 old_state;
	struct sm_be_key be;
	struct sm_sock_key sock;
	__u64 size, tx, rx;
	__u64 netns, cluster_id;
	__u32 flags;		/* out: the slot's SM_FLOW_F_* after the op */
	__s32 ret;		/* out: 0, or -100 (no slot) */
	__u32 in_state;		/* in: a client's flow is kept in its state, as sockops does */
	__u32 st_flags;		/* out: that state's SM_SK_F_* (0 without) */
};

#endif /* SM_TEST_FLOW_H */
