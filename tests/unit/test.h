/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Minimal table-friendly test harness, in the spirit of the kernel
 * selftests' test_progs: each file defines TEST(name) functions, collected
 * at link time through a section; ASSERT_* print name, expected and actual
 * and mark the current test failed (they do not abort the test unless
 * stated). The runner prints one line per test and a closing
 * "N passed, N failed, N skipped" line; a skip fails under CI=true, and a
 * filter that matches no test fails.
 */
#ifndef SOCKMESH_TEST_H
#define SOCKMESH_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

struct test_case {
	const char *name;
	const char *file;
	void (*fn)(void);
};

extern int test__failed;	/* current test failed */
extern int test__skipped;	/* current test skipped (a failure under CI=true) */

/* Skip the rest of the current test: say why, then return. */
#define TEST_SKIP(fmt, ...) do {					\
	printf("  skip: " fmt "\n", ##__VA_ARGS__);			\
	test__skipped = 1;						\
} while (0)

#define TEST(n)								\
	static void test_##n(void);					\
	static const struct test_case test_case_##n = {		\
		#n, __FILE__, test_##n };				\
	static const struct test_case *test_ptr_##n			\
		__attribute__((used, section("sm_tests"))) = &test_case_##n; \
	static void test_##n(void)

#define TEST_FAIL_(fmt, ...) do {					\
	fprintf(stderr, "  %s:%d: " fmt "\n", __FILE__, __LINE__,	\
		##__VA_ARGS__);						\
	test__failed = 1;						\
} while (0)

#define ASSERT_TRUE(c) ({ int __ok = !!(c);				\
	if (!__ok)							\
		TEST_FAIL_("ASSERT_TRUE(%s) failed", #c);		\
	__ok; })
#define ASSERT_FALSE(c) ({ int __ok = !(c);				\
	if (!__ok)							\
		TEST_FAIL_("ASSERT_FALSE(%s) failed", #c);		\
	__ok; })
#define ASSERT_EQ(a, b) ({ long long __a = (long long)(a), __b = (long long)(b); \
	int __ok = __a == __b;						\
	if (!__ok)							\
		TEST_FAIL_("%s == %s: expected %lld, got %lld",	\
			      #a, #b, __b, __a);	\
	__ok; })
#define ASSERT_NE(a, b) ({ long long __a = (long long)(a), __b = (long long)(b); \
	int __ok = __a != __b;						\
	if (!__ok)							\
		TEST_FAIL_("%s != %s: both %lld", #a, #b, __a);	\
	__ok; })
#define ASSERT_LE(a, b) ({ long long __a = (long long)(a), __b = (long long)(b); \
	int __ok = __a <= __b;						\
	if (!__ok)							\
		TEST_FAIL_("%s <= %s: %lld > %lld", #a, #b, __a, __b);	\
	__ok; })
#define ASSERT_GE(a, b) ({ long long __a = (long long)(a), __b = (long long)(b); \
	int __ok = __a >= __b;						\
	if (!__ok)							\
		TEST_FAIL_("%s >= %s: %lld < %lld", #a, #b, __a, __b);	\
	__ok; })
#define ASSERT_STREQ(a, b) ({ const char *__a = (a), *__b = (b);	\
	int __ok = __a && __b && strcmp(__a, __b) == 0;			\
	if (!__ok)							\
		TEST_FAIL_("%s: expected \"%s\", got \"%s\"", #a,	\
			      __b ? __b : "(null)", __a ? __a : "(null)");	\
	__ok; })
#define ASSERT_STRSTR(hay, needle) ({ const char *__h = (hay), *__n = (needle); \
	int __ok = __h && __n && strstr(__h, __n) != NULL;		\
	if (!__ok)							\
		TEST_FAIL_("%s: \"%s\" not found in \"%s\"", #hay,	\
			      __n ? __n : "(null)", __h ? __h : "(null)");	\
	__ok; })

#endif /* SOCKMESH_TEST_H */
