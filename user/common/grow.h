/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* grow: make a malloc'd array hold at least need elements (new ones zeroed). */
#ifndef SOCKMESH_GROW_H
#define SOCKMESH_GROW_H

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

/* *arr has *cap elements of elsize bytes; doubles until need fit. 0 or -ENOMEM. */
static inline int sm_grow(void **arr, size_t *cap, size_t need, size_t elsize)
{
	size_t ncap;
	void *p;

	if (need <= *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 8;
	while (ncap < need)
		ncap *= 2;
	p = realloc(*arr, ncap * elsize);
	if (!p)
		return -ENOMEM;
	memset((char *)p + *cap * elsize, 0, (ncap - *cap) * elsize);
	*arr = p;
	*cap = ncap;
	return 0;
}

/*
 * *arr (malloc'd, or NULL) has room for need bytes: when its block is
 * smaller, realloc'd with a quarter more, so an array that grows one
 * element at a time (an object a delta adds) is copied once per quarter,
 * not on every add. The caller keeps no capacity: the block's usable size
 * is it. 0 or -ENOMEM.
 */
static inline int sm_room(void **arr, size_t need)
{
	void *p;

	if (*arr && malloc_usable_size(*arr) >= need)
		return 0;
	p = realloc(*arr, need + need / 4);
	if (!p)
		return -ENOMEM;
	*arr = p;
	return 0;
}

#endif /* SOCKMESH_GROW_H */
