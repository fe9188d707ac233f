// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Backend pick and connection accounting, test-run through the
 * SEC("syscall") wrappers of progs/test_lb.bpf.c: the same inline code
 * connect4/sockops/sock_release run. Each test loads a fresh skeleton, so
 * map contents and the RR counter start empty.
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "../unit/test.h"

#include "progs/test_lb.h"
#include "test_lb.skel.h"

#define LB_OK		0
#define LB_NONE		1
#define LB_ERR		(-1)
#define CLUSTER		42ULL
#define SET		7
#define NOW		1000000ULL	/* fake CLOCK_MONOTONIC ns */
#define MAX_BE		8

static struct sm_be_key be_key(unsigned int i)
{
	struct sm_be_key k = {
		.addr = htonl(0x0a000001 + i),	/* 10.0.0.1 + i */
		.port = htons(8080),
	};
	return k;
}

/* Cluster of n READY backends 10.0.0.1.. with the given policy. */
static int lb_setup(struct test_lb *skel, __u8 lb, __u32 n, __u8 min_health,
		    __u32 maglev_size)
{
	struct sm_cluster_val cl = {
		.set_id = SET, .n_backends = n, .maglev_size = maglev_size,
		.lb = lb, .min_health_pct = min_health,
	};
	struct sm_backend_val bv = { .flags = SM_BE_F_READY };
	__u64 id = CLUSTER;
	int err = 0;

	err |= bpf_map__update_elem(skel->maps.sm_cluster, &id, sizeof(id),
				    &cl, sizeof(cl), BPF_ANY);
	for (__u32 i = 0; i < n; i++) {
		struct sm_bset_key k = { .set_id = SET, .idx = i };
		struct sm_be_key b = be_key(i);

		err |= bpf_map__update_elem(skel->maps.sm_bset, &k, sizeof(k),
					    &b, sizeof(b), BPF_ANY);
		err |= bpf_map__update_elem(skel->maps.sm_backend, &b, sizeof(b),
					    &bv, sizeof(bv), BPF_ANY);
	}
	/* A simple table is enough here: slot s names backend s % n. */
	for (__u32 s = 0; s < maglev_size; s++) {
		struct sm_bset_key k = { .set_id = SET, .idx = s };
		struct sm_maglev_val m = { .idx = s % n };

		err |= bpf_map__update_elem(skel->maps.sm_maglev, &k, sizeof(k),
					    &m, sizeof(m), BPF_ANY);
	}
	return err;
}

static void be_set(struct test_lb *skel, unsigned int i, __u32 flags, __u64 until)
{
	struct sm_backend_val bv = { .flags = flags, .eject_until_ns = until };
	struct sm_be_key b = be_key(i);

	bpf_map__update_elem(skel->maps.sm_backend, &b, sizeof(b), &bv, sizeof(bv), BPF_ANY);
}

static void be_active_set(struct test_lb *skel, unsigned int i, __s64 active)
{
	struct sm_be_active_val v = { .active = active };
	struct sm_be_key b = be_key(i);

	bpf_map__update_elem(skel->maps.sm_be_active, &b, sizeof(b), &v, sizeof(v), BPF_ANY);
}

static __s64 be_active_get(struct test_lb *skel, unsigned int i)
{
	struct sm_be_active_val v = {};
	struct sm_be_key b = be_key(i);

	if (bpf_map__lookup_elem(skel->maps.sm_be_active, &b, sizeof(b), &v, sizeof(v), 0))
		return -12345;
	return v.active;
}

/* One pick; returns the ret field, *idx the backend index (or -1). */
static int pick(struct test_lb *skel, __u32 hash, __u64 now, int *idx, __u32 *panic)
{
	struct test_lb_ctx ctx = { .cluster_id = CLUSTER, .hash = hash, .now = now };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = &ctx, .ctx_size_in = sizeof(ctx));
	int err = bpf_prog_test_run_opts(bpf_program__fd(skel->progs.test_pick), &opts);

	*idx = -1;
	if (err)
		return -1000 + err;
	if (ctx.ret == LB_OK) {
		*idx = (int)ctx.idx;
		/* The returned address must be the one of that index. */
		if (ctx.be.addr != be_key(ctx.idx).addr)
			return -2000;
	}
	if (panic)
		*panic = ctx.panic;
	return ctx.ret;
}

/* n picks; counts[idx]++; returns the number of picks that were not LB_OK. */
static int pick_many(struct test_lb *skel, int n, __u64 now, int counts[MAX_BE])
{
	int bad = 0, idx;

	memset(counts, 0, sizeof(int) * MAX_BE);
	for (int i = 0; i < n; i++) {
		if (pick(skel, (__u32)i, now, &idx, NULL) != LB_OK || idx < 0 || idx >= MAX_BE)
			bad++;
		else
			counts[idx]++;
	}
	return bad;
}

static struct test_lb *lb_open(void)
{
	struct test_lb *skel = test_lb__open_and_load();

	ASSERT_TRUE(skel != NULL);
	return skel;
}

TEST(lb_rr_exact_rotation)
{
	struct test_lb *skel = lb_open();
	int counts[MAX_BE] = {}, idx;

	if (!skel || !ASSERT_EQ(lb_setup(skel, SM_LB_ROUND_ROBIN, 3, 0, 0), 0))
		goto out;
	for (int i = 0; i < 30; i++) {
		if (!ASSERT_EQ(pick(skel, 0, NOW, &idx, NULL), LB_OK) || !ASSERT_EQ(idx, i % 3))
			break;
		counts[idx]++;
	}
	ASSERT_EQ(counts[0], 10);
	ASSERT_EQ(counts[1], 10);
	ASSERT_EQ(counts[2], 10);
out:
	test_lb__destroy(skel);
}

/* Skipped backends cost a ticket: the others share exactly evenly. */
TEST(lb_rr_skips_ejected)
{
	struct test_lb *skel = lb_open();
	int counts[MAX_BE];

	if (!skel || !ASSERT_EQ(lb_setup(skel, SM_LB_ROUND_ROBIN, 3, 0, 0), 0))
		goto out;
	be_set(skel, 1, SM_BE_F_READY | SM_BE_F_EJECTED, 0);
	ASSERT_EQ(pick_many(skel, 20, NOW, counts), 0);
	ASSERT_EQ(counts[1], 0);
	ASSERT_EQ(counts[0], 10);
	ASSERT_EQ(counts[2], 10);
out:
	test_lb__destroy(skel);
}

/* eject_until_ns: in the past = back in service; in the future = ejected. */
TEST(lb_eject_until)
{
	static const struct {
		const char *desc;
		__u64 until;
		int picked;	/* backend 1 picked at all */
	} cases[] = {
		{ "expired ejection", NOW - 1, 1 },
		{ "ejection ends now", NOW, 1 },
		{ "ejection in the future", NOW + 1, 0 },
		{ "ejected until restored", 0, 0 },
	};

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct test_lb *skel = lb_open();
		int counts[MAX_BE];

		if (!skel || !ASSERT_EQ(lb_setup(skel, SM_LB_ROUND_ROBIN, 3, 0, 0), 0)) {
			test_lb__destroy(skel);
			return;
		}
		be_set(skel, 1, SM_BE_F_READY | SM_BE_F_EJECTED, cases[c].until);
		ASSERT_EQ(pick_many(skel, 30, NOW, counts), 0);
		if (!ASSERT_EQ(counts[1] > 0, cases[c].picked))
			fprintf(stderr, "  case: %s\n", cases[c].desc);
		test_lb__destroy(skel);
	}
}

TEST(lb_not_ready_never_picked)
{
	static const __u8 policies[] = {
		SM_LB_ROUND_ROBIN, SM_LB_RANDOM, SM_LB_LEAST_REQUEST, SM_LB_MAGLEV,
	};

	for (size_t p = 0; p < sizeof(policies); p++) {
		struct test_lb *skel = lb_open();
		int counts[MAX_BE];

		if (!skel || !ASSERT_EQ(lb_setup(skel, policies[p], 3, 0, 251), 0)) {
			test_lb__destroy(skel);
			return;
		}
		be_set(skel, 2, 0, 0);
		ASSERT_EQ(pick_many(skel, 300, NOW, counts), 0);
		if (!ASSERT_EQ(counts[2], 0))
			fprintf(stderr, "  policy %u\n", policies[p]);
		ASSERT_TRUE(counts[0] > 0 && counts[1] > 0);
		test_lb__destroy(skel);
	}
}

/*
 * Panic (Envoy): 1 of 3 eligible = 33 %. Below min_health_pct every READY
 * backend is used despite ejection; at or above it only the eligible one.
 * A not-READY backend stays out even in panic.
 */
TEST(lb_panic_threshold)
{
	static const struct {
		__u8 min_health;
		int panic;
	} cases[] = { { 50, 1 }, { 34, 1 }, { 33, 0 }, { 0, 0 } };

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct test_lb *skel = lb_open();
		int counts[MAX_BE] = {}, idx, ret;
		__u32 panic = 99;

		if (!skel || !ASSERT_EQ(lb_setup(skel, SM_LB_ROUND_ROBIN, 4, cases[c].min_health, 0), 0)) {
			test_lb__destroy(skel);
			return;
		}
		be_set(skel, 1, SM_BE_F_READY | SM_BE_F_EJECTED, 0);
		be_set(skel, 2, SM_BE_F_READY | SM_BE_F_EJECTED, 0);
		be_set(skel, 3, 0, 0);
		for (int i = 0; i < 30; i++) {
			ret = pick(skel, 0, NOW, &idx, &panic);
			if (!ASSERT_EQ(ret, LB_OK))
				break;
			counts[idx]++;
			ASSERT_EQ(panic, cases[c].panic);
		}
		ASSERT_EQ(counts[3], 0);
		if (cases[c].panic) {
			ASSERT_EQ(counts[0], 10);
			ASSERT_EQ(counts[1], 10);
			ASSERT_EQ(counts[2], 10);
		} else {
			ASSERT_EQ(counts[0], 30);
		}
		test_lb__destroy(skel);
	}
}

TEST(lb_refuse_when_nothing_usable)
{
	static const struct {
		const char *desc;
		__u32 flags;
		__u8 min_health;
		int want;
	} cases[] = {
		{ "all ejected, no panic threshold", SM_BE_F_READY | SM_BE_F_EJECTED, 0, LB_NONE },
		{ "all ejected, panic", SM_BE_F_READY | SM_BE_F_EJECTED, 50, LB_OK },
		{ "none ready", 0, 0, LB_NONE },
		{ "none ready, panic threshold", 0, 100, LB_NONE },
	};
	static const __u8 policies[] = {
		SM_LB_ROUND_ROBIN, SM_LB_RANDOM, SM_LB_LEAST_REQUEST, SM_LB_MAGLEV,
	};

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		for (size_t p = 0; p < sizeof(policies); p++) {
			struct test_lb *skel = lb_open();
			int idx;

			if (!skel || !ASSERT_EQ(lb_setup(skel, policies[p], 3, cases[c].min_health, 251), 0)) {
				test_lb__destroy(skel);
				return;
			}
			for (int i = 0; i < 3; i++)
				be_set(skel, i, cases[c].flags, 0);
			if (!ASSERT_EQ(pick(skel, 5, NOW, &idx, NULL), cases[c].want))
				fprintf(stderr, "  case: %s, policy %u\n", cases[c].desc, policies[p]);
			test_lb__destroy(skel);
		}
	}
}

/* No backend list: refuse. Backend list announced but missing: fail open. */
TEST(lb_empty_and_inconsistent)
{
	struct test_lb *skel = lb_open();
	struct sm_cluster_val cl = { .set_id = 99, .n_backends = 3, .lb = SM_LB_RANDOM };
	__u64 id = CLUSTER;
	int idx;

	if (!skel || !ASSERT_EQ(lb_setup(skel, SM_LB_RANDOM, 0, 0, 0), 0))
		goto out;
	ASSERT_EQ(pick(skel, 0, NOW, &idx, NULL), LB_NONE);
	bpf_map__update_elem(skel->maps.sm_cluster, &id, sizeof(id), &cl, sizeof(cl), BPF_ANY);
	ASSERT_EQ(pick(skel, 0, NOW, &idx, NULL), LB_ERR);
out:
	test_lb__destroy(skel);
}

/* P2C: the idle backend is in the drawn pair 2/3 of the time and then wins. */
TEST(lb_least_request_prefers_idle)
{
	struct test_lb *skel = lb_open();
	int counts[MAX_BE];

	if (!skel || !ASSERT_EQ(lb_setup(skel, SM_LB_LEAST_REQUEST, 3, 0, 0), 0))
		goto out;
	be_active_set(skel, 0, 100);
	be_active_set(skel, 1, 0);
	be_active_set(skel, 2, 100);
	ASSERT_EQ(pick_many(skel, 1000, NOW, counts), 0);
	ASSERT_GE(counts[1], 600);
	ASSERT_LE(counts[1], 740);
	ASSERT_GE(counts[0], 100);
	ASSERT_GE(counts[2], 100);
out:
	test_lb__destroy(skel);
}

TEST(lb_least_request_skips_ejected)
{
	struct test_lb *skel = lb_open();
	int counts[MAX_BE];

	if (!skel || !ASSERT_EQ(lb_setup(skel, SM_LB_LEAST_REQUEST, 3, 0, 0), 0))
		goto out;
	be_active_set(skel, 1, 0);
	be_active_set(skel, 0, 50);
	be_set(skel, 1, SM_BE_F_READY | SM_BE_F_EJECTED, 0);
	ASSERT_EQ(pick_many(skel, 300, NOW, counts), 0);
	ASSERT_EQ(counts[1], 0);
	ASSERT_GE(counts[2], 150);	/* idle and eligible: wins every pair it is in */
out:
	test_lb__destroy(skel);
}

TEST(lb_random_spreads)
{
	struct test_lb *skel = lb_open();
	int counts[MAX_BE];

	if (!skel || !ASSERT_EQ(lb_setup(skel, SM_LB_RANDOM, 3, 0, 0), 0))
		goto out;
	ASSERT_EQ(pick_many(skel, 3000, NOW, counts), 0);
	for (int i = 0; i < 3; i++) {
		ASSERT_GE(counts[i], 850);
	}
out:
	test_lb__destroy(skel);
}

TEST(lb_maglev_consistent)
{
	struct test_lb *skel = lb_open();
	int counts[MAX_BE] = {}, first[64], idx;

	if (!skel || !ASSERT_EQ(lb_setup(skel, SM_LB_MAGLEV, 3, 0, 251), 0))
		goto out;
	/* Same client, same backend, every time. */
	for (__u32 h = 0; h < 64; h++) {
		ASSERT_EQ(pick(skel, 0x0a010000 + h, NOW, &first[h], NULL), LB_OK);
		for (int r = 0; r < 5; r++) {
			ASSERT_EQ(pick(skel, 0x0a010000 + h, NOW, &idx, NULL), LB_OK);
			ASSERT_EQ(idx, first[h]);
		}
	}
	/* Different clients spread. */
	for (__u32 h = 0; h < 600; h++) {
		ASSERT_EQ(pick(skel, 0x0a020000 + h, NOW, &idx, NULL), LB_OK);
		if (idx >= 0 && idx < MAX_BE)
			counts[idx]++;
	}
	for (int i = 0; i < 3; i++) {
		ASSERT_GE(counts[i], 120);
	}
	/* Ejecting backend 0 moves only its clients; they probe forward. */
	be_set(skel, 0, SM_BE_F_READY | SM_BE_F_EJECTED, 0);
	for (__u32 h = 0; h < 64; h++) {
		ASSERT_EQ(pick(skel, 0x0a010000 + h, NOW, &idx, NULL), LB_OK);
		if (first[h] == 0) {
			ASSERT_NE(idx, 0);
		} else {
			ASSERT_EQ(idx, first[h]);
		}
	}
out:
	test_lb__destroy(skel);
}

static int conn_op(struct test_lb *skel, struct test_conn_ctx *ctx)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = ctx, .ctx_size_in = sizeof(*ctx));
	int err = bpf_prog_test_run_opts(bpf_program__fd(skel->progs.test_conn), &opts);

	return err ? -1000 + err : ctx->ret;
}

static __s64 limit_get(struct test_lb *skel, __u64 netns, __u64 cluster)
{
	struct sm_limit_key k = { .netns_cookie = netns, .cluster_id = cluster };
	struct sm_limit_val v = {};

	if (bpf_map__lookup_elem(skel->maps.sm_conn_limit, &k, sizeof(k), &v, sizeof(v), 0))
		return -12345;
	return v.active;
}

/* maxConnections per (netns, cluster): N admitted, N+1th refused, other netns free. */
TEST(conn_limit_take_give)
{
	struct test_lb *skel = lb_open();
	struct test_conn_ctx c = { .netns = 11, .cluster_id = CLUSTER, .max = 2,
				   .op = TEST_CONN_TAKE };
	struct test_conn_ctx other = c;

	if (!skel)
		return;
	other.netns = 12;
	ASSERT_EQ(conn_op(skel, &c), 0);
	ASSERT_EQ(conn_op(skel, &c), 0);
	ASSERT_EQ(conn_op(skel, &c), 1);
	ASSERT_EQ(limit_get(skel, 11, CLUSTER), 2);	/* the refused one backed out */
	ASSERT_EQ(conn_op(skel, &other), 0);
	c.op = TEST_CONN_GIVE;
	ASSERT_EQ(conn_op(skel, &c), 0);
	c.op = TEST_CONN_TAKE;
	ASSERT_EQ(conn_op(skel, &c), 0);
	ASSERT_EQ(limit_get(skel, 11, CLUSTER), 2);
	ASSERT_EQ(limit_get(skel, 12, CLUSTER), 1);
	test_lb__destroy(skel);
}

/* Counts taken at connect are given back exactly once, by whoever comes first. */
TEST(conn_release_exactly_once)
{
	struct test_lb *skel = lb_open();
	struct test_conn_ctx c = { .netns = 21, .cluster_id = CLUSTER, .max = 5,
				   .op = TEST_CONN_HOLD, .slot = 1, .be = be_key(0) };

	if (!skel)
		return;
	ASSERT_EQ(conn_op(skel, &c), 0);
	c.slot = 2;
	ASSERT_EQ(conn_op(skel, &c), 0);
	ASSERT_EQ(be_active_get(skel, 0), 2);
	ASSERT_EQ(limit_get(skel, 21, CLUSTER), 2);

	c.op = TEST_CONN_RELEASE;
	c.slot = 1;
	ASSERT_EQ(conn_op(skel, &c), 1);	/* e.g. sockops TCP_CLOSE */
	ASSERT_EQ(conn_op(skel, &c), 0);	/* then sock_release: nothing left */
	ASSERT_EQ(be_active_get(skel, 0), 1);
	ASSERT_EQ(limit_get(skel, 21, CLUSTER), 1);

	/* The socket is reused for a new connect: counted again, released once. */
	c.op = TEST_CONN_HOLD;
	ASSERT_EQ(conn_op(skel, &c), 0);
	ASSERT_EQ(be_active_get(skel, 0), 2);
	c.op = TEST_CONN_RELEASE;
	ASSERT_EQ(conn_op(skel, &c), 1);
	c.slot = 2;
	ASSERT_EQ(conn_op(skel, &c), 1);
	ASSERT_EQ(conn_op(skel, &c), 0);
	ASSERT_EQ(be_active_get(skel, 0), 0);
	ASSERT_EQ(limit_get(skel, 21, CLUSTER), 0);

	/* A socket that never held counts releases nothing. */
	c.slot = 3;
	ASSERT_EQ(conn_op(skel, &c), 0);
	ASSERT_EQ(be_active_get(skel, 0), 0);
	test_lb__destroy(skel);
}

/* Refused by the limit: nothing held, nothing to give back. */
TEST(conn_hold_over_limit_holds_nothing)
{
	struct test_lb *skel = lb_open();
	struct test_conn_ctx c = { .netns = 31, .cluster_id = CLUSTER, .max = 1,
				   .op = TEST_CONN_HOLD, .slot = 1, .be = be_key(1) };

	if (!skel)
		return;
	ASSERT_EQ(conn_op(skel, &c), 0);
	c.slot = 2;
	ASSERT_EQ(conn_op(skel, &c), 1);
	c.op = TEST_CONN_RELEASE;
	ASSERT_EQ(conn_op(skel, &c), 0);
	ASSERT_EQ(be_active_get(skel, 1), 1);
	ASSERT_EQ(limit_get(skel, 31, CLUSTER), 1);
	test_lb__destroy(skel);
}
