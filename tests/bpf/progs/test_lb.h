/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Context structs of the SEC("syscall") test wrappers in test_lb.bpf.c,
 * shared with the driver tests/bpf/test_lb.c. The kernel copies the ctx in,
 * runs the program and copies it back into the same buffer (ctx_in).
 */
#ifndef SM_TEST_LB_H
#define SM_TEST_LB_H

#include "sockmesh.h"

/* test_pick: one lb_pick() of a cluster. */
struct test_lb_ctx {
	__u64 cluster_id;	/* in */
	__u64 now;		/* in: clock for eject_until_ns */
	__u32 hash;		/* in: MAGLEV client identity */
	__s32 ret;		/* out: SM_LB_OK / SM_LB_NONE / SM_LB_ERR, -100 no cluster */
	struct sm_be_key be;	/* out */
	__u32 idx;		/* out */
	__u32 panic;		/* out */
};

enum test_conn_op {
	TEST_CONN_TAKE = 0,	/* conn_limit_take(netns, cluster_id, max) */
	TEST_CONN_GIVE,		/* conn_limit_give(netns, cluster_id) */
	TEST_CONN_HOLD,		/* what connect4 does: limit (if max) + active, state slot */
	TEST_CONN_RELEASE,	/* conn_release(state slot) */
};

/* test_conn: connection accounting of lib/conn.h. */
struct test_conn_ctx {
	__u64 netns;
	__u64 cluster_id;
	__u32 max;
	__u32 op;		/* enum test_conn_op */
	__u32 slot;		/* key in test_state */
	__s32 ret;		/* out */
	struct sm_be_key be;
};

#endif /* SM_TEST_LB_H */
