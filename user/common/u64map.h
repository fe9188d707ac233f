/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * u64map: open-addressing hash table from a non-zero 64-bit key to a void *
 * value (linear probing, power-of-two capacity, load <= 1/2). Used by the
 * agent to diff plans and to keep what it applied.
 */
#ifndef SOCKMESH_U64MAP_H
#define SOCKMESH_U64MAP_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/hash.h"

struct u64map {
	uint64_t *keys;		/* 0 = empty slot */
	void **vals;
	size_t cap;		/* power of two */
	size_t n;
};

static inline void u64map_free(struct u64map *m)
{
	free(m->keys);
	free(m->vals);
	m->keys = NULL;
	m->vals = NULL;
	m->cap = m->n = 0;
}

static inline int u64map_init(struct u64map *m, size_t expect)
{
	size_t cap = 16;

	while (cap < expect * 2 + 2)
		cap <<= 1;
	m->keys = calloc(cap, sizeof(*m->keys));
	m->vals = calloc(cap, sizeof(*m->vals));
	m->cap = cap;
	m->n = 0;
	if (!m->keys || !m->vals) {
		u64map_free(m);
		return -ENOMEM;
	}
	return 0;
}

static inline void *u64map_get(const struct u64map *m, uint64_t key)
{
	if (!m->cap)
		return NULL;
	for (size_t i = sm_hash_mix64(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		if (m->keys[i] == key)
			return m->vals[i];
		if (!m->keys[i])
			return NULL;
	}
}

/* Insert or replace. key must be non-zero. */
static inline int u64map_put(struct u64map *m, uint64_t key, void *val)
{
	size_t i;

	if ((m->n + 1) * 2 > m->cap) {
		struct u64map g;
		int err = u64map_init(&g, m->cap);

		if (err)
			return err;
		for (size_t j = 0; j < m->cap; j++)
			if (m->keys[j])
				u64map_put(&g, m->keys[j], m->vals[j]);
		u64map_free(m);
		*m = g;
	}
	for (i = sm_hash_mix64(key) & (m->cap - 1); m->keys[i] && m->keys[i] != key;
	     i = (i + 1) & (m->cap - 1))
		;
	if (!m->keys[i])
		m->n++;
	m->keys[i] = key;
	m->vals[i] = val;
	return 0;
}

/* Remove key (if present); later entries of its probe run shift back. */
static inline void *u64map_del(struct u64map *m, uint64_t key)
{
	size_t i, j, h;
	void *val;

	if (!m->cap)
		return NULL;
	for (i = sm_hash_mix64(key) & (m->cap - 1); m->keys[i] != key;
	     i = (i + 1) & (m->cap - 1))
		if (!m->keys[i])
			return NULL;
	val = m->vals[i];
	for (j = (i + 1) & (m->cap - 1); m->keys[j]; j = (j + 1) & (m->cap - 1)) {
		h = sm_hash_mix64(m->keys[j]) & (m->cap - 1);
		if (sm_probe_stays(h, i, j))
			continue;
		m->keys[i] = m->keys[j];
		m->vals[i] = m->vals[j];
		i = j;
	}
	m->keys[i] = 0;
	m->vals[i] = NULL;
	m->n--;
	return val;
}

#endif /* SOCKMESH_U64MAP_H */
