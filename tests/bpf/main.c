// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * BPF test runner: every TEST() of the tests/bpf/ drivers (section sm_tests), or those
 * whose name contains argv[1]. The tests load programs into the kernel and
 * need root (CAP_BPF + CAP_SYS_ADMIN): without it they are skipped, except
 * under CI=true where a skip would hide a broken setup and counts as failure.
 * Closing line: "N passed, N failed". Nothing is attached anywhere.
 */
#include <stdlib.h>
#include <unistd.h>
#include <bpf/libbpf.h>
#include "../unit/test.h"

int test__failed;

extern const struct test_case *__start_sm_tests[];
extern const struct test_case *__stop_sm_tests[];

/* libbpf's warnings (verifier log on a failed load) go to stderr. */
static int bpft_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

int main(int argc, char **argv)
{
	const char *filter = argc > 1 ? argv[1] : NULL;
	const char *ci = getenv("CI");
	int passed = 0, failed = 0;

	if (geteuid() != 0) {
		if (ci && strcmp(ci, "true") == 0) {
			printf("FAIL bpf-tests need root (CI=true)\n0 passed, 1 failed\n");
			return 1;
		}
		printf("SKIP bpf-tests need root\n0 passed, 0 failed\n");
		return 0;
	}
	libbpf_set_print(bpft_print);

	for (const struct test_case **t = __start_sm_tests; t < __stop_sm_tests; t++) {
		if (filter && !strstr((*t)->name, filter))
			continue;
		test__failed = 0;
		(*t)->fn();
		if (test__failed) {
			failed++;
			printf("FAIL %s (%s)\n", (*t)->name, (*t)->file);
		} else {
			passed++;
			printf("ok   %s\n", (*t)->name);
		}
		fflush(stdout);
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
