/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Small string helpers shared by the policy library, the agent and the CLI. */
#ifndef SOCKMESH_STR_H
#define SOCKMESH_STR_H

#include <stdbool.h>
#include <string.h>

/* Equal strings; NULL equals only NULL (an absent field is not ""). */
static inline bool sm_streq(const char *a, const char *b)
{
	return a && b ? !strcmp(a, b) : a == b;
}

#endif /* SOCKMESH_STR_H */
