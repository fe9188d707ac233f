// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Unit test runner: runs every TEST() linked in (section sm_tests), or those
 * whose name contains argv[1], in the source tree (SM_SRCDIR: test data
 * paths are relative to it). Closing line: "N passed, N failed, N skipped";
 * a skip fails under CI=true, a filter that matches nothing fails.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "test.h"

int test__failed;
int test__skipped;

extern const struct test_case *__start_sm_tests[];
extern const struct test_case *__stop_sm_tests[];

int main(int argc, char **argv)
{
	const char *filter = argc > 1 ? argv[1] : NULL;
	const char *ci = getenv("CI");
	bool strict = ci && strcmp(ci, "true") == 0;
	int passed = 0, failed = 0, skipped = 0;

	/* test data paths are relative to the source tree, wherever we run */
	if (chdir(SM_SRCDIR)) {
		fprintf(stderr, "unit-tests: %s: %s\n", SM_SRCDIR, strerror(errno));
		return 1;
	}
	for (const struct test_case **t = __start_sm_tests; t < __stop_sm_tests; t++) {
		if (filter && !strstr((*t)->name, filter))
			continue;
		test__failed = 0;
		test__skipped = 0;
		(*t)->fn();
		if (test__skipped && !test__failed && strict) {
			printf("  a skip is a failure under CI=true\n");
			test__failed = 1;
		}
		if (test__failed) {
			failed++;
			printf("FAIL %s (%s)\n", (*t)->name, (*t)->file);
		} else if (test__skipped) {
			skipped++;
			printf("SKIP %s\n", (*t)->name);
		} else {
			passed++;
			printf("ok   %s\n", (*t)->name);
		}
		fflush(stdout);
	}
	if (filter && !passed && !failed && !skipped) {
		printf("no test matches \"%s\"\n", filter);
		failed++;
	}
	printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
	return failed ? 1 : 0;
}
