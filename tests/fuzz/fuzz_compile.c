// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer target: the compiler's agreement. The input bytes drive the
 * random policy generator of tests/unit/compile_agree.h (Services, Pods,
 * DestinationRules with trafficPolicy, subsets and portLevelSettings at
 * both levels, VirtualServices); the policy must validate, compile, and
 * the kernel plan and the L7 config must agree on every cluster id both
 * know (LB, connection limit, outlier settings, hosts). A disagreement
 * aborts with both sides and the policy printed.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "../unit/compile_agree.h"

struct fuzz_src {
	const uint8_t *p;
	size_t n;
};

static uint8_t fuzz_byte(void *ctx)
{
	struct fuzz_src *s = ctx;

	if (!s->n)
		return 0;
	s->n--;
	return *s->p++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_src src = { data, size };
	struct compile_gen g = { .byte = fuzz_byte, .ctx = &src };
	struct compile_opts opts = { .l7_proxy = true };
	struct compile_out out;
	struct pol_set set;
	char msg[512], line[512];
	size_t n;

	if (compile_gen_policy(&g)) {
		free(g.buf);
		return 0;
	}
	policy_set_init(&set);
	policy_load_buffer(&set, "fuzz.yaml", g.buf, g.len);
	if (!set.n_errors)
		policy_validate(&set);
	if (set.n_errors || compile_policy(&set, &opts, &out)) {
		/* the generator writes valid policies only */
		for (size_t i = 0; i < set.n_diags; i++)
			fprintf(stderr, "%s\n", policy_diag_format(&set.diags[i], line, sizeof(line)));
		fprintf(stderr, "%s\nfuzz_compile: the generated policy did not compile\n", g.buf);
		abort();
	}
	if (compile_agree_check(&out, &n, msg, sizeof(msg))) {
		fprintf(stderr, "%s\nfuzz_compile: kernel plan and L7 config disagree: %s\n",
			g.buf, msg);
		abort();
	}
	compile_out_free(&out);
	policy_set_free(&set);
	free(g.buf);
	return 0;
}
