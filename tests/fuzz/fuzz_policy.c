// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer target: the policy loader end to end. Any bytes as a YAML file
 * -> policy_load_buffer -> policy_validate -> compile_policy -> free, once
 * directly and twice through the document cache (the agent's path: the
 * second load reuses every document). A crash, a sanitizer report or a
 * leak is a bug; diagnostics are the expected answer to garbage. Without
 * errors, the cached loads must see the same objects as the direct one.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "compile/compile.h"
#include "policy/policy.h"

static void load(struct pol_set *set, struct pol_cache *c, const uint8_t *data, size_t size,
		 size_t *n_objs, size_t *n_errors)
{
	struct compile_out out = {};

	policy_set_init(set);
	if (c) {
		policy_cache_begin(c);
		policy_set_use_cache(set, c);
	}
	policy_load_buffer(set, "fuzz.yaml", (const char *)data, size);
	if (!set->n_errors && !policy_validate(set))
		compile_policy(set, &(struct compile_opts){ .l7_proxy = true }, &out);
	*n_objs = set->n_svcs + set->n_pods + set->n_eps + set->n_drs + set->n_vss +
		  set->n_gws + set->n_nss;
	*n_errors = set->n_errors;
	compile_out_free(&out);
	policy_set_free(set);
	if (c)
		policy_cache_end(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pol_cache *c = policy_cache_new();
	size_t objs[3], errs[3];
	struct pol_set set;

	if (!c)
		return 0;
	load(&set, NULL, data, size, &objs[0], &errs[0]);
	load(&set, c, data, size, &objs[1], &errs[1]);
	load(&set, c, data, size, &objs[2], &errs[2]);
	if (objs[1] != objs[2] || errs[1] != errs[2])
		abort();	/* a reused document must give what its parse gave */
	if (!errs[0] && (errs[1] || objs[0] != objs[1]))
		abort();	/* a valid file is the same through the cache */
	policy_cache_free(c);
	return 0;
}
