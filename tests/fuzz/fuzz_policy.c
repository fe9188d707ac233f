// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer target: the policy loader end to end. Any bytes as a YAML file
 * -> policy_load_buffer -> policy_validate -> plan_build -> free. A crash,
 * a sanitizer report or a leak is a bug; diagnostics are the expected
 * answer to garbage.
 */
#include <stddef.h>
#include <stdint.h>

#include "plan.h"
#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pol_set set;
	struct plan plan = {};

	policy_set_init(&set);
	policy_load_buffer(&set, "fuzz.yaml", (const char *)data, size);
	if (!set.n_errors && !policy_validate(&set))
		plan_build(&set, &plan);
	plan_free(&plan);
	policy_set_free(&set);
	return 0;
}
