/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * parse.h: strict number parsing for command-line flags, shared by the
 * agent, the CLI's capacity table and the test tools.
 */
#ifndef SOCKMESH_PARSE_H
#define SOCKMESH_PARSE_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

/* A decimal integer in lo..hi and nothing else: no sign, blank or suffix. */
static inline int sm_parse_uint(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return -EINVAL;
	*out = v;
	return 0;
}

#endif /* SOCKMESH_PARSE_H */
