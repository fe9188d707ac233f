/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A set's diagnostics as /status shows them, sorted (a delta's order is
 * not a full load's), and its counts: the text delta tests compare with
 * a full load's.
 */
#ifndef SOCKMESH_TEST_DIAG_TEXT_H
#define SOCKMESH_TEST_DIAG_TEXT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"
#include "test.h"

static inline int diag_text_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* malloc'd: one "file:line:col: level: msg" line each, then the counts */
static inline char *diag_text(const struct pol_set *s)
{
	char **l = calloc(s->n_diags + 1, sizeof(*l)), *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	ASSERT_TRUE(l && f);
	for (size_t i = 0; i < s->n_diags; i++) {
		char buf[1024];

		l[i] = strdup(policy_diag_format(&s->diags[i], buf, sizeof(buf)));
	}
	qsort(l, s->n_diags, sizeof(*l), diag_text_cmp);
	for (size_t i = 0; i < s->n_diags; i++) {
		fprintf(f, "%s\n", l[i]);
		free(l[i]);
	}
	fprintf(f, "%zu errors, %zu warnings\n", s->n_errors, s->n_warnings);
	fclose(f);
	free(l);
	return out;
}

#endif /* SOCKMESH_TEST_DIAG_TEXT_H */
