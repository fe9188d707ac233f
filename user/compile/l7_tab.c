// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * l7_tab: chunked sorted tables shared between L7 config generations
 * (l7_tab.h). A chunk is shared while its count is above one; a table
 * being built copies it before changing it (tab_own) and drops its share
 * of the original. Chunks split when full (appending past the last one
 * starts a new chunk, so a build in key order fills them) and go when
 * empty.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "compile/l7_tab.h"

static void chunk_put(const struct l7_tab_ops *ops, struct l7_tab_chunk *ch)
{
	if (!ch || __atomic_sub_fetch(&ch->refs, 1, __ATOMIC_ACQ_REL))
		return;
	for (uint32_t i = 0; i < ch->n; i++)
		ops->put(ch->val[i]);
	free(ch);
}

void l7_tab_init(struct l7_tab *t, const struct l7_tab_ops *ops)
{
	memset(t, 0, sizeof(*t));
	t->ops = ops;
}

void l7_tab_free(struct l7_tab *t)
{
	for (size_t i = 0; i < t->n_ch; i++)
		chunk_put(t->ops, t->ch[i]);
	free(t->ch);
	free(t->lo);
	free(t->before);
	l7_tab_init(t, t->ops);
}

static int tab_room(struct l7_tab *t, size_t n_ch)
{
	size_t cap = t->cap_ch ? t->cap_ch : 4;
	struct l7_tab_chunk **ch;
	uint64_t *lo;
	size_t *before;

	if (n_ch <= t->cap_ch)
		return 0;
	while (cap < n_ch)
		cap *= 2;
	ch = realloc(t->ch, cap * sizeof(*ch));
	if (!ch)
		return -ENOMEM;
	t->ch = ch;
	lo = realloc(t->lo, cap * sizeof(*lo));
	if (!lo)
		return -ENOMEM;
	t->lo = lo;
	before = realloc(t->before, cap * sizeof(*before));
	if (!before)
		return -ENOMEM;
	t->before = before;
	t->cap_ch = cap;
	return 0;
}

int l7_tab_share(struct l7_tab *dst, const struct l7_tab *src)
{
	l7_tab_init(dst, src->ops);
	if (tab_room(dst, src->n_ch)) {
		l7_tab_free(dst);
		return -ENOMEM;
	}
	if (src->n_ch) {
		memcpy(dst->ch, src->ch, src->n_ch * sizeof(*dst->ch));
		memcpy(dst->lo, src->lo, src->n_ch * sizeof(*dst->lo));
		memcpy(dst->before, src->before, src->n_ch * sizeof(*dst->before));
	}
	for (size_t i = 0; i < src->n_ch; i++)
		__atomic_add_fetch(&src->ch[i]->refs, 1, __ATOMIC_RELAXED);
	dst->n_ch = src->n_ch;
	dst->n = src->n;
	return 0;
}

/* lo[] and before[] from chunk i on */
static void tab_fix(struct l7_tab *t, size_t i)
{
	for (; i < t->n_ch; i++) {
		t->lo[i] = t->ch[i]->key[0];
		t->before[i] = i ? t->before[i - 1] + t->ch[i - 1]->n : 0;
	}
}

/* The first of v[0..n) (sorted) that is >= key; n if none. */
static size_t bisect(const uint64_t *v, size_t n, uint64_t key)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid] < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The first entry with a key >= key: chunk *ci, entry *ei (*ci == n_ch: none). */
static void tab_lower(const struct l7_tab *t, uint64_t key, size_t *ci, size_t *ei)
{
	/* the last chunk whose first key is below key (earlier ones end below it) */
	size_t c = bisect(t->lo, t->n_ch, key), lo;
	const struct l7_tab_chunk *ch;

	c = c ? c - 1 : 0;
	if (c >= t->n_ch) {
		*ci = t->n_ch;
		*ei = 0;
		return;
	}
	ch = t->ch[c];
	lo = bisect(ch->key, ch->n, key);
	if (lo == ch->n) {
		c++;
		lo = 0;
	}
	*ci = c;
	*ei = lo;
}

void *l7_tab_find(const struct l7_tab *t, uint64_t key)
{
	size_t ci, ei;

	tab_lower(t, key, &ci, &ei);
	if (ci < t->n_ch && t->ch[ci]->key[ei] == key)
		return t->ch[ci]->val[ei];
	return NULL;
}

void *l7_tab_at(const struct l7_tab *t, size_t i)
{
	size_t lo = 0, hi = t->n_ch;

	/* the last chunk with before <= i */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (t->before[mid] <= i)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo || i >= t->n)
		return NULL;
	return t->ch[lo - 1]->val[i - t->before[lo - 1]];
}

int l7_tab_each(const struct l7_tab *t, uint64_t key, int (*fn)(void *val, void *arg),
		void *arg)
{
	size_t ci, ei;
	int ret;

	for (tab_lower(t, key, &ci, &ei); ci < t->n_ch; ci++, ei = 0)
		for (; ei < t->ch[ci]->n; ei++) {
			if (t->ch[ci]->key[ei] != key)
				return 0;
			if ((ret = fn(t->ch[ci]->val[ei], arg)))
				return ret;
		}
	return 0;
}

/* (key, val)'s entry, or false */
static bool tab_locate(const struct l7_tab *t, uint64_t key, const void *val, size_t *ci,
		       size_t *ei)
{
	for (tab_lower(t, key, ci, ei); *ci < t->n_ch; (*ci)++, *ei = 0)
		for (; *ei < t->ch[*ci]->n; (*ei)++) {
			if (t->ch[*ci]->key[*ei] != key)
				return false;
			if (t->ch[*ci]->val[*ei] == val)
				return true;
		}
	return false;
}

/* Chunk ci is this table's alone (copied if shared). */
static int tab_own(struct l7_tab *t, size_t ci)
{
	struct l7_tab_chunk *ch = t->ch[ci], *cp;

	if (__atomic_load_n(&ch->refs, __ATOMIC_ACQUIRE) == 1)
		return 0;
	cp = malloc(sizeof(*cp));
	if (!cp)
		return -ENOMEM;
	memcpy(cp, ch, sizeof(*cp));
	cp->refs = 1;
	for (uint32_t i = 0; i < cp->n; i++)
		t->ops->get(cp->val[i]);
	t->ch[ci] = cp;
	chunk_put(t->ops, ch);
	return 0;
}

/* A new chunk at position ci (moved up: ci..). */
static int tab_insert_chunk(struct l7_tab *t, size_t ci, struct l7_tab_chunk **out)
{
	struct l7_tab_chunk *ch;

	if (tab_room(t, t->n_ch + 1))
		return -ENOMEM;
	ch = calloc(1, sizeof(*ch));
	if (!ch)
		return -ENOMEM;
	ch->refs = 1;
	memmove(&t->ch[ci + 1], &t->ch[ci], (t->n_ch - ci) * sizeof(*t->ch));
	t->ch[ci] = ch;
	t->n_ch++;
	*out = ch;
	return 0;
}

static void chunk_put_entry(struct l7_tab_chunk *ch, uint32_t at, uint64_t key, void *val)
{
	memmove(&ch->key[at + 1], &ch->key[at], (ch->n - at) * sizeof(ch->key[0]));
	memmove(&ch->val[at + 1], &ch->val[at], (ch->n - at) * sizeof(ch->val[0]));
	memmove(&ch->users[at + 1], &ch->users[at], (ch->n - at) * sizeof(ch->users[0]));
	ch->key[at] = key;
	ch->val[at] = val;
	ch->users[at] = 1;
	ch->n++;
}

static int tab_insert(struct l7_tab *t, uint64_t key, void *val)
{
	struct l7_tab_chunk *ch, *nc;
	size_t ci, ei;
	uint32_t half;

	tab_lower(t, key, &ci, &ei);
	if (ci == t->n_ch && ci) {	/* past the end: append to the last chunk */
		ci--;
		ei = t->ch[ci]->n;
	}
	if (!t->n_ch) {
		if (tab_insert_chunk(t, 0, &ch))
			return -ENOMEM;
		ci = ei = 0;
	} else if (tab_own(t, ci)) {
		return -ENOMEM;
	}
	ch = t->ch[ci];
	if (ch->n == L7_TAB_CHUNK) {
		if (ei == L7_TAB_CHUNK && ci == t->n_ch - 1) {
			/* appending in key order: a new chunk, this one stays full */
			if (tab_insert_chunk(t, ci + 1, &nc))
				return -ENOMEM;
			ci++;
			ei = 0;
		} else {
			if (tab_insert_chunk(t, ci + 1, &nc))
				return -ENOMEM;
			half = L7_TAB_CHUNK / 2;
			nc->n = L7_TAB_CHUNK - half;
			memcpy(nc->key, &ch->key[half], nc->n * sizeof(ch->key[0]));
			memcpy(nc->val, &ch->val[half], nc->n * sizeof(ch->val[0]));
			memcpy(nc->users, &ch->users[half], nc->n * sizeof(ch->users[0]));
			ch->n = half;
			if (ei > half) {
				ci++;
				ei -= half;
			}
		}
	}
	t->ops->get(val);
	chunk_put_entry(t->ch[ci], (uint32_t)ei, key, val);
	t->n++;
	tab_fix(t, ci ? ci - 1 : 0);
	return 0;
}

int l7_tab_use(struct l7_tab *t, uint64_t key, void *val)
{
	size_t ci, ei;

	if (!tab_locate(t, key, val, &ci, &ei))
		return tab_insert(t, key, val) ?: 1;
	if (tab_own(t, ci))
		return -ENOMEM;
	t->ch[ci]->users[ei]++;
	return 0;
}

int l7_tab_unuse(struct l7_tab *t, uint64_t key, void *val)
{
	struct l7_tab_chunk *ch;
	size_t ci, ei;

	if (!tab_locate(t, key, val, &ci, &ei))
		return -ENOENT;
	if (tab_own(t, ci))
		return -ENOMEM;
	ch = t->ch[ci];
	if (--ch->users[ei])
		return 0;
	ch->n--;
	memmove(&ch->key[ei], &ch->key[ei + 1], (ch->n - ei) * sizeof(ch->key[0]));
	memmove(&ch->val[ei], &ch->val[ei + 1], (ch->n - ei) * sizeof(ch->val[0]));
	memmove(&ch->users[ei], &ch->users[ei + 1], (ch->n - ei) * sizeof(ch->users[0]));
	t->n--;
	if (!ch->n) {
		free(ch);
		memmove(&t->ch[ci], &t->ch[ci + 1], (t->n_ch - ci - 1) * sizeof(*t->ch));
		t->n_ch--;
	}
	tab_fix(t, ci);
	return 1;
}
