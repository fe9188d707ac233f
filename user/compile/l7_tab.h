/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * l7_tab: the tables of an L7 config (service ports, clusters, vhosts,
 * pods) as sorted arrays in chunks of L7_TAB_CHUNK entries, shared between
 * config generations. A new generation starts from its predecessor's
 * tables (l7_tab_share: the chunk pointers copied, each chunk's count
 * raised, O(entries / L7_TAB_CHUNK)) and copies a chunk only to change it
 * (copy-on-write), so a delta allocates the chunks and objects it
 * changes, not the table. Readers (the proxy workers) only look up:
 * bisection over the chunks' first keys, then inside one chunk.
 *
 * Entries are (key, value, users): keys sorted (equal keys allowed, in no
 * order); value a reference-counted object the table holds one reference
 * on (ops->get / ops->put); users how many parts of this one config use
 * the entry (l7_tab_use / l7_tab_unuse), so that a cluster or a vhost
 * leaves the table with its last user. Chunk counts and the objects'
 * references are atomic: the last put of a generation may happen on any
 * thread. A table being built belongs to one thread; a published one is
 * read-only.
 */
#ifndef SOCKMESH_L7_TAB_H
#define SOCKMESH_L7_TAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define L7_TAB_CHUNK	64	/* entries a chunk holds: a delta copies one */

struct l7_tab_ops {
	void (*get)(void *val);
	void (*put)(void *val);
};

struct l7_tab_chunk {
	unsigned long refs;		/* tables holding it (atomic) */
	uint32_t n;
	uint64_t key[L7_TAB_CHUNK];
	void *val[L7_TAB_CHUNK];
	uint32_t users[L7_TAB_CHUNK];
};

struct l7_tab {
	struct l7_tab_chunk **ch;
	uint64_t *lo;			/* ch[i]->key[0] */
	size_t *before;			/* entries in ch[0..i) */
	size_t n_ch, cap_ch;
	size_t n;			/* entries */
	const struct l7_tab_ops *ops;
};

void l7_tab_init(struct l7_tab *t, const struct l7_tab_ops *ops);
/* dst (uninitialised) shares every chunk of src. 0 or -ENOMEM (dst empty). */
int l7_tab_share(struct l7_tab *dst, const struct l7_tab *src);
/* Drops the table's chunks (their objects with the last chunk holding them). */
void l7_tab_free(struct l7_tab *t);

/* A value of key (the first of equal keys), or NULL. */
void *l7_tab_find(const struct l7_tab *t, uint64_t key);
/* The i-th value in key order (i < t->n). */
void *l7_tab_at(const struct l7_tab *t, size_t i);
/* fn(val, arg) for each value of key, until fn returns nonzero (returned). */
int l7_tab_each(const struct l7_tab *t, uint64_t key, int (*fn)(void *val, void *arg),
		void *arg);

/*
 * One more user of (key, val): 1 when the entry is new (the table took a
 * reference on val), 0 when it was there, -ENOMEM.
 */
int l7_tab_use(struct l7_tab *t, uint64_t key, void *val);
/*
 * One user less: 1 when that was the last and the entry went (the table's
 * reference on val passes to the caller, who puts it), 0 when users are
 * left, -ENOENT (no such entry), -ENOMEM (a shared chunk not copied).
 */
int l7_tab_unuse(struct l7_tab *t, uint64_t key, void *val);

#endif /* SOCKMESH_L7_TAB_H */
