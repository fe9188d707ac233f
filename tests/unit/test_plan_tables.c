// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * plan: weighted route slot tables, Maglev tables and cluster ids — the
 * pure table builders behind sm_route, sm_maglev and sm_cluster keys.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>

#include "compile/plan.h"
#include "test.h"

#define MAXW 4

struct slots_case {
	const char *desc;
	uint32_t w[MAXW];
	size_t n;
	size_t max;
	int want_total;			/* or -errno */
	uint32_t want_count[MAXW];
};

static const struct slots_case slots_cases[] = {
	{ "80/20 -> 4:1", { 80, 20 }, 2, 1000, 5, { 4, 1 } },
	{ "90/10 -> 9:1", { 90, 10 }, 2, 1000, 10, { 9, 1 } },
	{ "33/33/34", { 33, 33, 34 }, 3, 1000, 100, { 33, 33, 34 } },
	{ "1/999 exact at the limit", { 1, 999 }, 2, 1000, 1000, { 1, 999 } },
	{ "50/50 -> 1:1", { 50, 50 }, 2, 1000, 2, { 1, 1 } },
	{ "zero weight gets no slot", { 25, 0, 75 }, 3, 1000, 4, { 1, 0, 3 } },
	{ "single destination", { 100 }, 1, 1000, 1, { 1 } },
	{ "sum > max: largest remainder", { 600, 401 }, 2, 1000, 1000, { 599, 401 } },
	{ "sum > max: tiny weight keeps 1 slot", { 1, 5000 }, 2, 1000, 1000, { 1, 999 } },
	{ "sum > max, small table", { 7, 3 }, 2, 5, 5, { 4, 1 } },
	{ "sum > max, two remainders", { 4, 4, 4, 3 }, 4, 10, 10, { 3, 3, 2, 2 } },
	{ "all zero", { 0, 0 }, 2, 1000, -EINVAL, { 0 } },
	{ "no weights", { 0 }, 0, 1000, -EINVAL, { 0 } },
	{ "more destinations than slots", { 1, 1, 1 }, 3, 2, -EINVAL, { 0 } },
};

TEST(plan_weight_slots_proportions)
{
	for (size_t c = 0; c < sizeof(slots_cases) / sizeof(slots_cases[0]); c++) {
		const struct slots_case *tc = &slots_cases[c];
		uint16_t slots[1000];
		uint32_t count[MAXW] = { 0 };
		int n = plan_weight_slots(tc->w, tc->n, slots, tc->max);

		if (!ASSERT_EQ(n, tc->want_total))
			fprintf(stderr, "  case: %s\n", tc->desc);
		if (n <= 0)
			continue;
		for (int s = 0; s < n; s++) {
			if (!ASSERT_TRUE(slots[s] < tc->n))
				break;
			count[slots[s]]++;
		}
		for (size_t i = 0; i < tc->n; i++)
			if (!ASSERT_EQ(count[i], tc->want_count[i]))
				fprintf(stderr, "  case: %s, index %zu\n", tc->desc, i);
	}
}

/* Smooth WRR: every prefix of the table stays within one slot of the ideal. */
TEST(plan_weight_slots_interleaved)
{
	static const uint32_t w[][3] = { { 80, 20, 0 }, { 5, 3, 2 }, { 1, 1, 98 }, { 333, 333, 334 } };
	uint16_t slots[1000];

	for (size_t c = 0; c < sizeof(w) / sizeof(w[0]); c++) {
		int n = plan_weight_slots(w[c], 3, slots, 1000);
		uint32_t total = 0, count[3] = { 0 };

		if (!ASSERT_GE(n, 1))
			continue;
		for (int i = 0; i < 3; i++)
			total += w[c][i];
		for (int k = 0; k < n; k++) {
			count[slots[k]]++;
			for (int i = 0; i < 3; i++) {
				double ideal = (double)(k + 1) * w[c][i] / total;
				double dev = count[i] - ideal;

				if (dev > 1.0 || dev < -1.0) {
					TEST_FAIL_("case %zu prefix %d index %d: %u vs %.2f",
						   c, k + 1, i, count[i], ideal);
					k = n;
					break;
				}
			}
		}
	}
	/* 80/20: the minority destination is not left to the end. */
	ASSERT_EQ(plan_weight_slots((const uint32_t[]){ 80, 20 }, 2, slots, 1000), 5);
	ASSERT_EQ(slots[4], 0);
	ASSERT_EQ(slots[0], 0);
	ASSERT_EQ(slots[2], 1);
}

TEST(plan_maglev_size_table)
{
	static const struct { size_t n; uint32_t m; } c[] = {
		{ 0, 4093 }, { 1, 4093 }, { 2, 4093 }, { 3, 4093 }, { 6, 4093 },
		{ 40, 4093 }, { 41, 16381 }, { 163, 16381 }, { 164, 65521 },
		{ 600, 65521 }, { 5000, 65521 },
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
		if (!ASSERT_EQ(plan_maglev_size(c[i].n), c[i].m))
			fprintf(stderr, "  n = %zu\n", c[i].n);
}

static void make_backends(struct plan_backend *b, size_t n, uint32_t first_host)
{
	memset(b, 0, n * sizeof(*b));
	for (size_t i = 0; i < n; i++) {
		b[i].key.addr = htonl(0x0a000000u + first_host + (uint32_t)i);
		b[i].key.port = htons(8080);
		b[i].flags = SM_BE_F_READY;
	}
}

TEST(plan_maglev_full_and_balanced)
{
	static const size_t ns[] = { 1, 3, 10, 37 };

	for (size_t c = 0; c < sizeof(ns) / sizeof(ns[0]); c++) {
		size_t n = ns[c];
		uint32_t m = plan_maglev_size(n);
		struct plan_backend *b = calloc(n, sizeof(*b));
		uint32_t *t = calloc(m, sizeof(*t));
		uint32_t *count = calloc(n, sizeof(*count));

		make_backends(b, n, 10);
		ASSERT_EQ(plan_maglev_fill(b, n, m, t), 0);
		for (uint32_t j = 0; j < m; j++) {
			if (!ASSERT_TRUE(t[j] < n))
				break;
			count[t[j]]++;
		}
		for (size_t i = 0; i < n; i++) {
			double ideal = (double)m / n;

			ASSERT_LE(count[i], (long long)(ideal * 1.1) + 1);
			ASSERT_GE(count[i], (long long)(ideal * 0.9));
		}
		free(b);
		free(t);
		free(count);
	}
	ASSERT_EQ(plan_maglev_fill(NULL, 0, 251, (uint32_t[251]){ 0 }), -EINVAL);
}

TEST(plan_maglev_deterministic)
{
	struct plan_backend b[5];
	uint32_t t1[509], t2[509];

	make_backends(b, 5, 1);
	ASSERT_EQ(plan_maglev_fill(b, 5, 509, t1), 0);
	ASSERT_EQ(plan_maglev_fill(b, 5, 509, t2), 0);
	ASSERT_EQ(memcmp(t1, t2, sizeof(t1)), 0);
}

/*
 * Removing one of 10 backends: the slots it held move (about 1/10), and of
 * the other slots only a few percent change owner (Maglev paper, fig. 9,
 * with M = 100 N).
 */
TEST(plan_maglev_minimal_disruption)
{
	enum { N = 10 };
	struct plan_backend before[N], after[N - 1];
	uint32_t m = plan_maglev_size(N);
	uint32_t *t0 = calloc(m, sizeof(*t0)), *t1 = calloc(m, sizeof(*t1));

	ASSERT_EQ(plan_maglev_size(N - 1), m);
	make_backends(before, N, 20);
	ASSERT_EQ(plan_maglev_fill(before, N, m, t0), 0);
	for (size_t gone = 0; gone < N; gone++) {
		size_t kept = 0, moved = 0, held_by_gone = 0;

		for (size_t i = 0, j = 0; i < N; i++)
			if (i != gone)
				after[j++] = before[i];
		ASSERT_EQ(plan_maglev_fill(after, N - 1, m, t1), 0);
		for (uint32_t s = 0; s < m; s++) {
			if (t0[s] == gone) {
				held_by_gone++;
				continue;
			}
			kept++;
			moved += before[t0[s]].key.addr != after[t1[s]].key.addr;
		}
		ASSERT_LE(held_by_gone, m / N + 1);
		ASSERT_GE(held_by_gone, m / N);
		/* ≤ 5% of the surviving slots change backend (measured: ≤ 3.6%). */
		if (!ASSERT_LE(moved * 100, kept * 5))
			fprintf(stderr, "  removing backend %zu moved %zu of %zu\n",
				gone, moved, kept);
	}
	free(t0);
	free(t1);
}

/* Fixed values: a change here changes every cluster id, i.e. the ABI. */
TEST(plan_cluster_id_known_values)
{
	ASSERT_EQ(plan_cluster_id("reviews.default.svc.cluster.local", 9080, NULL),
		  (long long)0xf49dcc1f359704edULL);
	ASSERT_EQ(plan_cluster_id("reviews.default.svc.cluster.local", 9080, "v1"),
		  (long long)0xeb2a79b2877b10f0ULL);
	ASSERT_EQ(plan_cluster_id("reviews.default.svc.cluster.local", 9080, ""),
		  plan_cluster_id("reviews.default.svc.cluster.local", 9080, NULL));
	ASSERT_NE(plan_cluster_id("reviews.default.svc.cluster.local", 9080, "v1"),
		  plan_cluster_id("reviews.default.svc.cluster.local", 9081, "v1"));
	ASSERT_NE(plan_cluster_id("reviews.default.svc.cluster.local", 9080, "v1"),
		  plan_cluster_id("reviews.default.svc.cluster.local", 9080, "v2"));
}
