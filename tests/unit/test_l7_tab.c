// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * l7_tab: the chunked copy-on-write tables L7 config generations share.
 * A random walk of inserts, uses and removals against a plain array, with
 * earlier generations kept alive (shared chunks) and checked to stay as
 * they were; every value's reference count must come back to what it was.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "compile/l7_tab.h"
#include "test.h"

#define TT_VALS		600
#define TT_GENS		4
#define TT_STEPS	20000

struct tt_val {
	unsigned long refs;
	uint64_t key;
};

static void tt_get(void *v)
{
	((struct tt_val *)v)->refs++;
}

static void tt_put(void *v)
{
	((struct tt_val *)v)->refs--;
}

static const struct l7_tab_ops tt_ops = { tt_get, tt_put };

/* one generation as a plain model: users per value (0: not in it) */
struct tt_gen {
	struct l7_tab t;
	uint32_t users[TT_VALS];
};

static int tt_count(void *val, void *arg)
{
	(*(size_t *)arg)++;
	return 0;
}

static void tt_check(const struct tt_gen *g, const struct tt_val *vals, int step)
{
	size_t n = 0, i;
	uint64_t prev = 0;

	for (i = 0; i < TT_VALS; i++)
		n += g->users[i] > 0;
	if (!ASSERT_EQ(g->t.n, n))
		TEST_FAIL_("step %d", step);
	for (i = 0; i < g->t.n; i++) {
		const struct tt_val *v = l7_tab_at(&g->t, i);

		if (!ASSERT_TRUE(v != NULL) || !ASSERT_TRUE(v->key >= prev) ||
		    !ASSERT_TRUE(g->users[v - vals] > 0)) {
			TEST_FAIL_("step %d entry %zu", step, i);
			return;
		}
		prev = v->key;
	}
	for (i = 0; i < TT_VALS; i++) {
		size_t same = 0;

		if (!g->users[i])
			continue;
		l7_tab_each(&g->t, vals[i].key, tt_count, &same);
		if (!ASSERT_TRUE(same >= 1) || !ASSERT_TRUE(l7_tab_find(&g->t, vals[i].key) != NULL))
			TEST_FAIL_("step %d value %zu", step, i);
	}
}

TEST(l7_tab_shared_generations_follow_a_model)
{
	static struct tt_val vals[TT_VALS];
	static struct tt_gen gens[TT_GENS + 1];
	size_t n_gens = 1;
	uint32_t x = 99;

	for (size_t i = 0; i < TT_VALS; i++)
		/* keys repeat (a multimap: equal keys, different values) */
		vals[i] = (struct tt_val){ 0, (uint64_t)(i % 400) * 0x9e3779b97f4a7c15ull };
	l7_tab_init(&gens[0].t, &tt_ops);
	memset(gens[0].users, 0, sizeof(gens[0].users));
	for (int step = 0; step < TT_STEPS; step++) {
		struct tt_gen *g = &gens[n_gens - 1];
		size_t i;
		int ret;

		x = x * 1103515245u + 12345u;
		i = (x >> 8) % TT_VALS;
		if ((x >> 20) % 5 < 3) {
			ret = l7_tab_use(&g->t, vals[i].key, &vals[i]);
			ASSERT_EQ(ret, g->users[i] ? 0 : 1);
			g->users[i]++;
		} else {
			ret = l7_tab_unuse(&g->t, vals[i].key, &vals[i]);
			if (!g->users[i]) {
				ASSERT_EQ(ret, -ENOENT);
			} else {
				ASSERT_EQ(ret, g->users[i] == 1 ? 1 : 0);
				if (--g->users[i] == 0)
					tt_put(&vals[i]);	/* the table's reference, passed on */
			}
		}
		if (step % 97 == 0) {	/* a new generation shares this one's chunks */
			if (n_gens == TT_GENS + 1) {
				l7_tab_free(&gens[0].t);
				memmove(gens, gens + 1, TT_GENS * sizeof(*gens));
				n_gens--;
			}
			g = &gens[n_gens - 1];
			ASSERT_EQ(l7_tab_share(&gens[n_gens].t, &g->t), 0);
			memcpy(gens[n_gens].users, g->users, sizeof(g->users));
			n_gens++;
		}
		if (step % 13 == 0)
			for (size_t k = 0; k < n_gens; k++)
				tt_check(&gens[k], vals, step);
	}
	for (size_t k = 0; k < n_gens; k++) {
		tt_check(&gens[k], vals, TT_STEPS);
		l7_tab_free(&gens[k].t);
	}
	/* every reference a table took was dropped */
	for (size_t i = 0; i < TT_VALS; i++)
		if (!ASSERT_EQ(vals[i].refs, 0))
			break;
}
