// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Unit test runner: runs every TEST() linked in (section sm_tests), or those
 * whose name contains argv[1]. Closing line: "N passed, N failed".
 */
#include <stdlib.h>
#include "test.h"

int test__failed;

extern const struct test_case *__start_sm_tests[];
extern const struct test_case *__stop_sm_tests[];

int main(int argc, char **argv)
{
	const char *filter = argc > 1 ? argv[1] : NULL;
	int passed = 0, failed = 0;

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
