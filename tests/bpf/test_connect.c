// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The connect decision of cgroup/connect4 and cgroup/connect6 (one code,
 * bpf/lib/connect.h) and getpeername4/6, test-run for both families through
 * the SEC("syscall") wrapper of progs/test_connect.bpf.c: service lookup,
 * backend pick, weighted route slots, maxConnections per client netns
 * across families, the L7 listener and its fallback, refusals, fail-open,
 * and what is left alone (native IPv6, addresses that are no VIP).
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "../unit/test.h"
#include "bpft.h"

#include "progs/test_connect.h"
#include "test_connect.skel.h"

/* enum sm_xlate (bpf/lib/connect.h) */
#define XL_NONE		0
#define XL_L4		1
#define XL_L7		2
#define XL_REFUSE	3
#define XL_ERR		4

#define VIP		0x0a600014	/* 10.96.0.20 */
#define VIP_PORT	9080
#define BE_PORT		8080
#define L7_ADDR		0x0af40001	/* 10.244.0.1 */
#define L7_PORT		15001
#define NETNS		77
#define NOW		(5ULL * 1000 * 1000 * 1000)
#define CL_A		42ULL
#define CL_B		43ULL
#define N_BE		3

static const int families[] = { TEST_AF_INET, TEST_AF_INET6 };

/* Backend i of cluster: 10.244.1.(10 * cluster_index + i). */
static struct sm_be_key be_of(__u64 cluster, unsigned int i)
{
	struct sm_be_key k = {
		.addr = htonl(0x0af40100 + (cluster == CL_A ? 10 : 20) + i),
		.port = htons(BE_PORT),
	};
	return k;
}

static int put(struct bpf_map *m, const void *k, size_t ks, const void *v, size_t vs)
{
	return bpf_map__update_elem(m, k, ks, v, vs, BPF_ANY);
}

/* A ROUND_ROBIN cluster of N_BE READY backends (set id = cluster id). */
static int cluster_put(struct test_connect *s, __u64 id, __u32 max_conns)
{
	struct sm_cluster_val cl = {
		.set_id = (__u32)id, .n_backends = N_BE, .lb = SM_LB_ROUND_ROBIN,
		.max_conns = max_conns,
	};
	struct sm_backend_val bv = { .flags = SM_BE_F_READY };
	int err = put(s->maps.sm_cluster, &id, sizeof(id), &cl, sizeof(cl));

	for (__u32 i = 0; i < N_BE; i++) {
		struct sm_bset_key k = { .set_id = (__u32)id, .idx = i };
		struct sm_be_key b = be_of(id, i);

		err |= put(s->maps.sm_bset, &k, sizeof(k), &b, sizeof(b));
		err |= put(s->maps.sm_backend, &b, sizeof(b), &bv, sizeof(bv));
	}
	return err;
}

/* VIP:VIP_PORT -> CL_A, or a route of `slots` slots, the first a_slots to CL_A. */
static int svc_put(struct test_connect *s, __u16 flags, __u16 slots, __u16 a_slots)
{
	struct sm_svc_key k = { .vip = htonl(VIP), .port = htons(VIP_PORT), .proto = SM_IPPROTO_TCP };
	struct sm_svc_val v = { .cluster_id = CL_A, .route_id = 9, .route_slots = slots,
				.flags = flags };
	int err = put(s->maps.sm_svc, &k, sizeof(k), &v, sizeof(v));

	for (__u32 i = 0; slots > 1 && i < slots; i++) {
		struct sm_route_key rk = { .route_id = 9, .slot = i };
		struct sm_route_val rv = { .cluster_id = i < a_slots ? CL_A : CL_B };

		err |= put(s->maps.sm_route, &rk, sizeof(rk), &rv, sizeof(rv));
	}
	return err;
}

static struct test_connect *setup(__u32 max_conns)
{
	struct test_connect *s = test_connect__open_and_load();

	if (!ASSERT_TRUE(s != NULL))
		return NULL;
	if (!ASSERT_EQ(cluster_put(s, CL_A, max_conns) | cluster_put(s, CL_B, 0) |
		       svc_put(s, 0, 0, 0), 0)) {
		test_connect__destroy(s);
		return NULL;
	}
	return s;
}

/* One op on socket slot from netns: the address in (and out) of c. */
static int sock_op(struct test_connect *s, struct test_sock_ctx *c)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .ctx_in = c, .ctx_size_in = sizeof(*c));
	int err = bpf_prog_test_run_opts(bpf_program__fd(s->progs.test_sock), &o);

	return err ? -1000 + err : c->ret;
}

/* A socket op for addr:port in family: AF_INET6 as ::ffff:addr. */
static struct test_sock_ctx sock_ctx(__u32 op, int family, __u32 slot, __u32 addr, __u16 port)
{
	struct test_sock_ctx c = {
		.op = op, .family = (__u32)family, .port = htons(port), .slot = slot,
		.netns = NETNS, .now = NOW,
	};

	if (family == TEST_AF_INET6) {
		c.ip6[2] = htonl(0xffff);
		c.ip6[3] = htonl(addr);
	} else {
		c.ip4 = htonl(addr);
	}
	return c;
}

/* The address a connect ended at (host order), checking the v4-mapped prefix. */
static __u32 dest_of(const struct test_sock_ctx *c)
{
	if (c->family != TEST_AF_INET6)
		return ntohl(c->ip4);
	if (c->ip6[0] || c->ip6[1] || c->ip6[2] != htonl(0xffff))
		return 0xdeadbeef;
	return ntohl(c->ip6[3]);
}

static int connect_to(struct test_connect *s, int family, __u32 slot, __u32 rand,
		      struct test_sock_ctx *out)
{
	*out = sock_ctx(TEST_SOCK_CONNECT, family, slot, VIP, VIP_PORT);
	out->rand = rand;
	return sock_op(s, out);
}

/* Which backend of cluster a destination is: 0..N_BE-1, or -1. */
static int be_index(__u64 cluster, const struct test_sock_ctx *c)
{
	for (unsigned int i = 0; i < N_BE; i++)
		if (htonl(dest_of(c)) == be_of(cluster, i).addr && c->port == htons(BE_PORT))
			return (int)i;
	return -1;
}

static __u64 stat_get(struct test_connect *s, __u32 idx)
{
	return bpft_percpu_u64_sum(s->maps.sm_stats_v2, &idx, sizeof(idx));
}

static struct sm_sk_state state_get(struct test_connect *s, __u32 slot)
{
	struct sm_sk_state st = {};

	bpf_map__lookup_elem(s->maps.test_state, &slot, sizeof(slot), &st, sizeof(st), 0);
	return st;
}

static __s64 active_get(struct test_connect *s, __u64 cluster, unsigned int i)
{
	struct sm_be_key b = be_of(cluster, i);
	struct sm_be_active_val v = {};

	bpf_map__lookup_elem(s->maps.sm_be_active, &b, sizeof(b), &v, sizeof(v), 0);
	return v.active;
}

/* One rotation whatever the socket family: the RR counter is the cluster's. */
TEST(connect_rr_both_families)
{
	struct test_connect *s = setup(0);
	struct test_sock_ctx c;
	int counts[N_BE] = {};

	if (!s)
		return;
	for (int i = 0; i < 30; i++) {
		int fam = families[i % 2], idx;

		if (!ASSERT_EQ(connect_to(s, fam, (__u32)i + 1, 0, &c), XL_L4))
			break;
		idx = be_index(CL_A, &c);
		if (!ASSERT_EQ(idx, i % N_BE))
			break;
		counts[idx]++;
		ASSERT_EQ(state_get(s, (__u32)i + 1).orig_vip, htonl(VIP));
	}
	for (int i = 0; i < N_BE; i++) {
		ASSERT_EQ(counts[i], 10);
		ASSERT_EQ(active_get(s, CL_A, (unsigned int)i), 10);
	}
	ASSERT_EQ(stat_get(s, SM_STAT_CONNECT_TRANSLATED), 30);
	ASSERT_EQ(stat_get(s, SM_STAT_CONNECT_V4MAPPED), 15);
	test_connect__destroy(s);
}

/* Not a VIP, a VIP on another port, native IPv6: untouched, and counted. */
TEST(connect_untouched)
{
	static const struct {
		const char *desc;
		int family;
		__u32 ip6[4];	/* host-order words, AF_INET6 */
		__u32 ip4;
		__u16 port;
		__u64 native;	/* connect_v6_native after this case */
	} cases[] = {
		{ "IPv4, no VIP", TEST_AF_INET, {}, 0x0a600099, VIP_PORT, 0 },
		{ "IPv4, VIP on another port", TEST_AF_INET, {}, VIP, 80, 0 },
		{ "v4-mapped, no VIP", TEST_AF_INET6, { 0, 0, 0xffff, 0x0a600099 }, 0, VIP_PORT, 0 },
		{ "native ::1", TEST_AF_INET6, { 0, 0, 0, 1 }, 0, VIP_PORT, 1 },
		{ "native fd00::a60:14 (VIP in the low bits)", TEST_AF_INET6,
		  { 0xfd000000, 0, 0, VIP }, 0, VIP_PORT, 2 },
		{ "IPv4-compatible ::10.96.0.20 (not mapped)", TEST_AF_INET6,
		  { 0, 0, 0, VIP }, 0, VIP_PORT, 3 },
		{ "::fffe:10.96.0.20 (not mapped)", TEST_AF_INET6,
		  { 0, 0, 0xfffe, VIP }, 0, VIP_PORT, 4 },
	};
	struct test_connect *s = setup(0);

	if (!s)
		return;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct test_sock_ctx c = { .op = TEST_SOCK_CONNECT, .family = (__u32)cases[i].family,
					   .ip4 = htonl(cases[i].ip4), .port = htons(cases[i].port),
					   .slot = 1, .netns = NETNS, .now = NOW };
		struct test_sock_ctx want;

		for (int w = 0; w < 4; w++)
			c.ip6[w] = htonl(cases[i].ip6[w]);
		want = c;
		if (!ASSERT_EQ(sock_op(s, &c), XL_NONE) ||
		    !ASSERT_EQ(memcmp(c.ip6, want.ip6, sizeof(c.ip6)), 0) ||
		    !ASSERT_EQ(c.ip4, want.ip4) || !ASSERT_EQ(c.port, want.port) ||
		    !ASSERT_EQ(stat_get(s, SM_STAT_CONNECT_V6_NATIVE), cases[i].native))
			fprintf(stderr, "  case: %s\n", cases[i].desc);
	}
	ASSERT_EQ(stat_get(s, SM_STAT_CONNECT_TRANSLATED), 0);
	ASSERT_EQ(stat_get(s, SM_STAT_CONNECT_V4MAPPED), 1);
	test_connect__destroy(s);
}

/* A weighted tcp route of 10 slots, 8 to A and 2 to B: every draw exactly once. */
TEST(connect_route_slots)
{
	struct test_connect *s = setup(0);
	int a[2] = {}, b[2] = {};

	if (!s || !ASSERT_EQ(svc_put(s, 0, 10, 8), 0))
		goto out;
	for (int f = 0; f < 2; f++) {
		for (__u32 r = 0; r < 100; r++) {
			struct test_sock_ctx c;

			if (!ASSERT_EQ(connect_to(s, families[f], 1 + r, r, &c), XL_L4))
				goto out;
			if (be_index(CL_A, &c) >= 0)
				a[f]++;
			else if (ASSERT_TRUE(be_index(CL_B, &c) >= 0))
				b[f]++;
			ASSERT_EQ(state_get(s, 1 + r).cluster_id, r % 10 < 8 ? CL_A : CL_B);
		}
		ASSERT_EQ(a[f], 80);
		ASSERT_EQ(b[f], 20);
	}
	/* A slot the agent announced but did not write: fail open, untouched. */
	{
		struct sm_route_key rk = { .route_id = 9, .slot = 3 };
		struct test_sock_ctx c;

		bpf_map__delete_elem(s->maps.sm_route, &rk, sizeof(rk), 0);
		for (int f = 0; f < 2; f++) {
			ASSERT_EQ(connect_to(s, families[f], 200, 13, &c), XL_ERR);
			ASSERT_EQ(dest_of(&c), VIP);
			ASSERT_EQ(ntohs(c.port), VIP_PORT);
		}
		ASSERT_EQ(stat_get(s, SM_STAT_CONNECT_ERR), 2);
	}
out:
	test_connect__destroy(s);
}

/* maxConnections per client netns and cluster, shared by both socket families. */
TEST(connect_limit_across_families)
{
	struct test_connect *s = setup(3);
	struct test_sock_ctx c;
	struct sm_svc_key sk = { .vip = htonl(VIP), .port = htons(VIP_PORT), .proto = SM_IPPROTO_TCP };
	int ncpu = libbpf_num_possible_cpus();
	struct sm_svc_stats_val *ss;
	__u64 overflows = 0;

	if (!s)
		return;
	ASSERT_EQ(connect_to(s, TEST_AF_INET6, 1, 0, &c), XL_L4);
	ASSERT_EQ(connect_to(s, TEST_AF_INET, 2, 0, &c), XL_L4);
	ASSERT_EQ(connect_to(s, TEST_AF_INET6, 3, 0, &c), XL_L4);
	for (int f = 0; f < 2; f++) {
		ASSERT_EQ(connect_to(s, families[f], 4, 0, &c), XL_REFUSE);
		ASSERT_EQ(c.err, 105);	/* ENOBUFS */
		ASSERT_EQ(dest_of(&c), VIP);
	}
	/* another client pod is not limited by this one */
	c = sock_ctx(TEST_SOCK_CONNECT, TEST_AF_INET6, 5, VIP, VIP_PORT);
	c.netns = NETNS + 1;
	ASSERT_EQ(sock_op(s, &c), XL_L4);
	/* the v4-mapped socket closes: its slot is free for an AF_INET one */
	c = sock_ctx(TEST_SOCK_RELEASE, TEST_AF_INET6, 1, 0, 0);
	ASSERT_EQ(sock_op(s, &c), 1);
	ASSERT_EQ(sock_op(s, &c), 0);		/* exactly once */
	ASSERT_EQ(connect_to(s, TEST_AF_INET, 4, 0, &c), XL_L4);
	ASSERT_EQ(connect_to(s, TEST_AF_INET6, 6, 0, &c), XL_REFUSE);
	ASSERT_EQ(stat_get(s, SM_STAT_CONNECT_OVERFLOW), 3);
	ss = calloc((size_t)ncpu, sizeof(*ss));
	if (ss && !bpf_map__lookup_elem(s->maps.sm_svc_stats, &sk, sizeof(sk), ss,
					sizeof(*ss) * (size_t)ncpu, 0))
		for (int i = 0; i < ncpu; i++)
			overflows += ss[i].overflows;
	free(ss);
	ASSERT_EQ(overflows, 3);
	test_connect__destroy(s);
}

/*
 * An L7 port goes to the agent's listener (::ffff:<listener> for AF_INET6)
 * while the agent beats; balanced at L4 when its beat is stale or no
 * listener is configured.
 */
TEST(connect_l7_and_fallback)
{
	static const struct {
		const char *desc;
		__u32 l7_addr;
		__u64 beat;
		int want;
		__u64 fallbacks;	/* l7_fallback_l4 after this case, both families */
	} cases[] = {
		{ "agent alive", L7_ADDR, NOW - 100000000ULL, XL_L7, 0 },
		{ "beat 1.6 s old", L7_ADDR, NOW - 1600000000ULL, XL_L4, 2 },
		{ "agent exited (beat 0)", L7_ADDR, 0, XL_L4, 4 },
		{ "no listener configured", 0, NOW, XL_L4, 4 },
	};
	struct test_connect *s = setup(0);
	__u32 zero = 0, slot = 1;

	if (!s || !ASSERT_EQ(svc_put(s, SM_SVC_F_L7, 0, 0), 0))
		goto out;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sm_config_val cfg = { .l7_addr = htonl(cases[i].l7_addr), .l7_port = htons(L7_PORT) };

		put(s->maps.sm_config, &zero, sizeof(zero), &cfg, sizeof(cfg));
		put(s->maps.sm_l7_alive, &zero, sizeof(zero), &cases[i].beat, sizeof(cases[i].beat));
		for (int f = 0; f < 2; f++) {
			struct test_sock_ctx c, g;
			struct sm_sk_state st;
			int ret = connect_to(s, families[f], slot, 0, &c);

			if (!ASSERT_EQ(ret, cases[i].want)) {
				fprintf(stderr, "  case: %s, family %d\n", cases[i].desc, families[f]);
				continue;
			}
			st = state_get(s, slot);
			if (ret == XL_L7) {
				ASSERT_EQ(dest_of(&c), L7_ADDR);
				ASSERT_EQ(ntohs(c.port), L7_PORT);
				ASSERT_EQ(st.flags, SM_SK_F_TRANSLATED | SM_SK_F_L7);
			} else {
				ASSERT_TRUE(be_index(CL_A, &c) >= 0);
				ASSERT_EQ(st.flags & SM_SK_F_L7, 0);
			}
			ASSERT_EQ(st.orig_vip, htonl(VIP));
			ASSERT_EQ(st.netns_cookie, NETNS);
			/* the application sees the VIP either way */
			g = c;
			g.op = TEST_SOCK_GETPEER;
			ASSERT_EQ(sock_op(s, &g), 1);
			ASSERT_EQ(dest_of(&g), VIP);
			ASSERT_EQ(ntohs(g.port), VIP_PORT);
			slot++;
		}
		ASSERT_EQ(stat_get(s, SM_STAT_L7_FALLBACK), cases[i].fallbacks);
	}
	ASSERT_EQ(stat_get(s, SM_STAT_CONNECT_L7), 2);
out:
	test_connect__destroy(s);
}

/* Nothing usable: ECONNREFUSED; no socket to keep state on: fail open. */
TEST(connect_refuse_and_fail_open)
{
	struct test_connect *s = setup(0);
	struct sm_backend_val ej = { .flags = SM_BE_F_READY | SM_BE_F_EJECTED };
	struct test_sock_ctx c;

	if (!s)
		return;
	for (int f = 0; f < 2; f++) {
		ASSERT_EQ(connect_to(s, families[f], 0, 0, &c), XL_ERR);
		ASSERT_EQ(dest_of(&c), VIP);
	}
	for (unsigned int i = 0; i < N_BE; i++) {
		struct sm_be_key b = be_of(CL_A, i);

		put(s->maps.sm_backend, &b, sizeof(b), &ej, sizeof(ej));
	}
	for (int f = 0; f < 2; f++) {
		ASSERT_EQ(connect_to(s, families[f], 1, 0, &c), XL_REFUSE);
		ASSERT_EQ(c.err, 111);	/* ECONNREFUSED */
		ASSERT_EQ(dest_of(&c), VIP);
	}
	ASSERT_EQ(stat_get(s, SM_STAT_CONNECT_NO_BACKEND), 2);
	ASSERT_EQ(stat_get(s, SM_STAT_CONNECT_ERR), 2);
	test_connect__destroy(s);
}

/*
 * getpeername: the VIP while connected to the chosen backend, the real peer
 * otherwise; a native IPv6 peer is never rewritten. connect() again to no
 * VIP forgets the socket's VIP and gives its counts back.
 */
TEST(connect_getpeer_and_forget)
{
	struct test_connect *s = setup(0);

	if (!s)
		return;
	for (int f = 0; f < 2; f++) {
		__u32 slot = 10 + (__u32)f;
		struct test_sock_ctx c, g;
		int idx;

		if (!ASSERT_EQ(connect_to(s, families[f], slot, 0, &c), XL_L4))
			continue;
		idx = be_index(CL_A, &c);
		ASSERT_TRUE(idx >= 0);
		g = c;
		g.op = TEST_SOCK_GETPEER;
		ASSERT_EQ(sock_op(s, &g), 1);
		ASSERT_EQ(dest_of(&g), VIP);
		ASSERT_EQ(ntohs(g.port), VIP_PORT);
		g = sock_ctx(TEST_SOCK_GETPEER, families[f], slot, ntohl(be_of(CL_A, ((unsigned)idx + 1) % N_BE).addr),
			     BE_PORT);
		ASSERT_EQ(sock_op(s, &g), 0);	/* another peer: as is */
		ASSERT_EQ(ntohs(g.port), BE_PORT);
		ASSERT_EQ(active_get(s, CL_A, (unsigned int)idx), 1);

		c = sock_ctx(TEST_SOCK_CONNECT, families[f], slot, 0x0af40163, 80);
		ASSERT_EQ(sock_op(s, &c), XL_NONE);
		ASSERT_EQ(state_get(s, slot).flags, 0);
		ASSERT_EQ(active_get(s, CL_A, (unsigned int)idx), 0);
		g = sock_ctx(TEST_SOCK_GETPEER, families[f], slot, ntohl(be_of(CL_A, (unsigned)idx).addr),
			     BE_PORT);
		ASSERT_EQ(sock_op(s, &g), 0);
	}
	{
		struct test_sock_ctx g = { .op = TEST_SOCK_GETPEER, .family = TEST_AF_INET6,
					   .ip6 = { htonl(0xfd000000), 0, 0, be_of(CL_A, 0).addr },
					   .port = htons(BE_PORT), .slot = 12 };
		struct test_sock_ctx c;

		ASSERT_EQ(connect_to(s, TEST_AF_INET, 12, 0, &c), XL_L4);
		g.ip6[3] = c.ip4;
		ASSERT_EQ(sock_op(s, &g), 0);
		ASSERT_EQ(g.ip6[3], c.ip4);
	}
	ASSERT_EQ(stat_get(s, SM_STAT_GETPEERNAME), 2);
	test_connect__destroy(s);
}

/* sockops and sk_msg take AF_INET and v4-mapped AF_INET6 sockets, not native IPv6 ones. */
TEST(sock_family_ipv4_view)
{
	static const struct {
		int family;
		__u32 ip6[4];	/* host order */
		int want;
	} cases[] = {
		{ TEST_AF_INET, {}, 1 },
		{ TEST_AF_INET6, { 0, 0, 0xffff, 0x0af4000c }, 1 },
		{ TEST_AF_INET6, { 0, 0, 0xffff, 0x7f000001 }, 1 },
		{ TEST_AF_INET6, { 0, 0, 0, 1 }, 0 },
		{ TEST_AF_INET6, { 0xfd000000, 0, 0xffff, 0x0af4000c }, 0 },
		{ 1 /* AF_UNIX */, { 0, 0, 0xffff, 1 }, 0 },
	};
	struct test_connect *s = test_connect__open_and_load();

	if (!ASSERT_TRUE(s != NULL))
		return;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct test_sock_ctx c = { .op = TEST_SOCK_IS_IPV4, .family = (__u32)cases[i].family };

		for (int w = 0; w < 4; w++)
			c.ip6[w] = htonl(cases[i].ip6[w]);
		if (!ASSERT_EQ(sock_op(s, &c), cases[i].want))
			fprintf(stderr, "  case %zu\n", i);
	}
	test_connect__destroy(s);
}
