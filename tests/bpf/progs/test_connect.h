/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Context structs of the SEC("syscall") wrappers in test_connect.bpf.c,
 * shared with the driver tests/bpf/test_connect.c.
 */
#ifndef SM_TEST_CONNECT_H
#define SM_TEST_CONNECT_H

#include "sockmesh.h"

#define TEST_AF_INET	2
#define TEST_AF_INET6	10

enum test_sock_op {
	TEST_SOCK_CONNECT = 0,	/* connect(): connect_xlate / connect6_xlate */
	TEST_SOCK_GETPEER,	/* getpeername(): getpeer_xlate / getpeer6_xlate */
	TEST_SOCK_RELEASE,	/* close: conn_release of the socket's state */
	TEST_SOCK_IS_IPV4,	/* SOCK_CTX_IS_IPV4 over family and ip6 (the peer) */
};

/* One socket operation, as the cgroup hooks see it. */
struct test_sock_ctx {
	__u32 op;		/* enum test_sock_op */
	__u32 family;		/* TEST_AF_INET / TEST_AF_INET6 */
	__be32 ip4;		/* AF_INET address, in/out */
	__u32 ip6[4];		/* AF_INET6 address, in/out (network-order words) */
	__be16 port;		/* in/out */
	__u16 pad;
	__u32 slot;		/* the socket: its state is test_state[slot]; 0 = no socket */
	__u32 rand;		/* weighted route draw */
	__be32 bound_src;
	__u64 netns;
	__u64 now;
	__s32 ret;		/* out: enum sm_xlate, getpeer/is_ipv4 1/0 */
	__s32 err;		/* out: errno of a refused connect */
};

#endif /* SM_TEST_CONNECT_H */
