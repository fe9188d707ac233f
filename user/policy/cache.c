// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The policy document cache: a file is cut into its YAML documents (at
 * "---" and "..." lines, the markers YAML forbids inside any content),
 * each document is parsed on its own into a private set, and a load
 * reuses that set while the document's text, file and first line are the
 * same. The caller's set receives shallow copies of the objects (it
 * borrows them) and copies of the diagnostics.
 *
 * So a one-endpoint change to a file of 10,000 services re-parses one
 * document, not 20,000; an edit that moves lines re-parses the documents
 * below it (their line numbers in messages must stay true).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "policy_int.h"
#include "u64map.h"

struct pc_doc {
	uint64_t key;		/* hash of file, line, text; never 0 */
	uint64_t used;		/* cache generation that last used it */
	uint32_t line;		/* lines of the file before the document */
	size_t len;
	char *text;
	struct pol_set set;	/* the document's objects and diagnostics */
};

struct pol_cache {
	struct u64map docs;	/* key -> struct pc_doc * */
	struct pc_doc **scratch;	/* parsed, not cacheable: freed at end */
	size_t n_scratch;
	uint64_t gen;
	size_t parsed, reused;
};

/* The kinds of struct pol_set, walked generically (meta-first arrays). */
static const struct {
	size_t off_arr, off_n, stride;
} cache_kinds[] = {
#define K(arr, n, type) { offsetof(struct pol_set, arr), offsetof(struct pol_set, n), sizeof(type) }
	K(svcs, n_svcs, struct pol_service),
	K(pods, n_pods, struct pol_pod),
	K(eps, n_eps, struct pol_eps),
	K(drs, n_drs, struct pol_dr),
	K(vss, n_vss, struct pol_vs),
	K(gws, n_gws, struct pol_gateway),
	K(nss, n_nss, struct pol_namespace),
#undef K
};
/* a new kind in struct pol_set must be added to cache_kinds[] */
_Static_assert(offsetof(struct pol_set, diags) ==
	       sizeof(cache_kinds) / sizeof(cache_kinds[0]) * (sizeof(void *) + sizeof(size_t)),
	       "struct pol_set has a kind cache_kinds[] does not copy");

struct pol_cache *policy_cache_new(void)
{
	struct pol_cache *c = calloc(1, sizeof(*c));

	if (c && u64map_init(&c->docs, 64)) {
		free(c);
		return NULL;
	}
	return c;
}

static void pc_doc_free(struct pc_doc *d)
{
	policy_set_free(&d->set);
	free(d->text);
	free(d);
}

void policy_cache_free(struct pol_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->docs.cap; i++)
		if (c->docs.keys[i])
			pc_doc_free(c->docs.vals[i]);
	u64map_free(&c->docs);
	for (size_t i = 0; i < c->n_scratch; i++)
		pc_doc_free(c->scratch[i]);
	free(c->scratch);
	free(c);
}

void policy_cache_begin(struct pol_cache *c)
{
	c->gen++;
	c->parsed = c->reused = 0;
}

void policy_cache_end(struct pol_cache *c)
{
	struct u64map keep;
	size_t n = 0;

	for (size_t i = 0; i < c->n_scratch; i++)
		pc_doc_free(c->scratch[i]);
	c->n_scratch = 0;
	for (size_t i = 0; i < c->docs.cap; i++)
		if (c->docs.keys[i] && ((struct pc_doc *)c->docs.vals[i])->used == c->gen)
			n++;
	if (u64map_init(&keep, n))
		return;		/* no memory: keep everything until next time */
	for (size_t i = 0; i < c->docs.cap; i++) {
		struct pc_doc *d = c->docs.vals[i];

		if (!c->docs.keys[i])
			continue;
		if (d->used == c->gen)
			u64map_put(&keep, d->key, d);	/* fits: sized above */
		else
			pc_doc_free(d);
	}
	u64map_free(&c->docs);
	c->docs = keep;
}

void policy_cache_stats(const struct pol_cache *c, size_t *parsed, size_t *reused)
{
	*parsed = c->parsed;
	*reused = c->reused;
}

void policy_set_use_cache(struct pol_set *set, struct pol_cache *c)
{
	set->cache = c;
}

/*
 * A word-at-a-time multiply-xorshift hash, continued from h: only a
 * bucket choice (a hit is confirmed with memcmp), fast on megabytes.
 */
static uint64_t pc_hash(uint64_t h, const void *p, size_t len)
{
	const unsigned char *s = p;
	uint64_t w = 0;

	for (; len >= 8; s += 8, len -= 8) {
		memcpy(&w, s, 8);
		h = (h ^ w) * 0x9e3779b97f4a7c15ull;
		h ^= h >> 29;
	}
	w = 0;
	memcpy(&w, s, len);
	h = (h ^ w ^ len) * 0x9e3779b97f4a7c15ull;
	return h ^ (h >> 32);
}

/* Append src's objects (shallow) and diagnostics to dst. */
static int pc_absorb(struct pol_set *dst, const struct pol_set *src)
{
	for (size_t k = 0; k < sizeof(cache_kinds) / sizeof(cache_kinds[0]); k++) {
		void **darr = (void **)((char *)dst + cache_kinds[k].off_arr);
		size_t *dn = (size_t *)((char *)dst + cache_kinds[k].off_n);
		void *const *sarr = (void *const *)((const char *)src + cache_kinds[k].off_arr);
		size_t sn = *(const size_t *)((const char *)src + cache_kinds[k].off_n);
		size_t stride = cache_kinds[k].stride;
		char *grown;

		if (!sn)
			continue;
		grown = realloc(*darr, (*dn + sn) * stride);
		if (!grown)
			return -ENOMEM;
		memcpy(grown + *dn * stride, *sarr, sn * stride);
		*darr = grown;
		*dn += sn;
	}
	if (src->n_diags) {
		struct pol_diag *d = realloc(dst->diags, (dst->n_diags + src->n_diags) * sizeof(*d));

		if (!d)
			return -ENOMEM;
		memcpy(d + dst->n_diags, src->diags, src->n_diags * sizeof(*d));
		dst->diags = d;
		dst->n_diags += src->n_diags;
		dst->n_errors += src->n_errors;
		dst->n_warnings += src->n_warnings;
	}
	return 0;
}

/* Parse one document into a new cache entry (NULL: no memory). */
static struct pc_doc *pc_parse(struct pol_cache *c, const char *file, const char *text,
			       size_t len, uint32_t line, int docno, uint64_t key)
{
	struct pc_doc *d = calloc(1, sizeof(*d));
	const char *own;

	if (!d)
		return NULL;
	policy_set_init(&d->set);
	d->key = key;
	d->line = line;
	d->len = len;
	d->text = malloc(len + 1);
	if (!d->text || pol_add_file(&d->set, file, &own)) {
		pc_doc_free(d);
		return NULL;
	}
	memcpy(d->text, text, len);
	d->text[len] = '\0';
	if (pol_load_buffer_at(&d->set, own, d->text, len, line, docno) == -ENOMEM) {
		pc_doc_free(d);
		return NULL;
	}
	c->parsed++;
	return d;
}

/* A "---" line (alone or before a space): the start of a document. */
static bool pc_doc_start(const char *p, const char *end)
{
	if (end - p < 3 || p[0] != '-' || p[1] != '-' || p[2] != '-')
		return false;
	return end - p == 3 || p[3] == ' ' || p[3] == '\t' || p[3] == '\n' || p[3] == '\r';
}

/* Only blank and comment lines (a piece that holds no document). */
static bool pc_blank(const char *p, const char *end)
{
	bool line_start = true, comment = false;

	for (; p < end; p++) {
		if (*p == '\n') {
			line_start = true;
			comment = false;
		} else if (comment || *p == ' ' || *p == '\t' || *p == '\r') {
			continue;
		} else if (*p == '#' && line_start) {
			comment = true;
		} else {
			return false;
		}
	}
	return true;
}

/*
 * Directives ("%YAML") and document end markers ("...") tie pieces
 * together; kubectl never writes them: such a file is one piece.
 */
static bool pc_splittable(const char *buf, size_t len)
{
	const char *p = buf, *end = buf + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		if (*p == '%' || (end - p >= 3 && p[0] == '.' && p[1] == '.' && p[2] == '.'))
			return false;
		p = nl ? nl + 1 : end;
	}
	return true;
}

static int pc_load_doc(struct pol_set *set, const char *file, const char *text, size_t len,
		       uint32_t line, int docno)
{
	struct pol_cache *c = set->cache;
	uint64_t key = 0xcbf29ce484222325ull;
	struct pc_doc *d;

	key = pc_hash(key, file, strlen(file) + 1);
	key = pc_hash(key, &line, sizeof(line));
	key = pc_hash(key, text, len);
	key = key ? key : 1;
	d = u64map_get(&c->docs, key);
	if (d && d->line == line && d->len == len &&
	    !memcmp(d->text, text, len) && !strcmp(d->set.files[0], file)) {
		c->reused++;
	} else {
		/* new, or a hash collision: parse; a colliding twin lives
		 * until policy_cache_end only */
		bool twin = d != NULL;

		d = pc_parse(c, file, text, len, line, docno, key);
		if (!d)
			return -ENOMEM;
		if (twin || u64map_put(&c->docs, key, d)) {
			struct pc_doc **sc = realloc(c->scratch, (c->n_scratch + 1) * sizeof(*sc));

			if (!sc) {
				pc_doc_free(d);
				return -ENOMEM;
			}
			c->scratch = sc;
			c->scratch[c->n_scratch++] = d;
		}
	}
	d->used = c->gen;
	return pc_absorb(set, &d->set);
}

int pol_cache_load(struct pol_set *set, const char *file, const char *buf, size_t len)
{
	const char *p = buf, *end = buf + len, *start = buf;
	uint32_t line = 0, start_line = 0;
	int docno = 1, ret = 0;
	size_t errs0 = set->n_errors;

	if (!pc_splittable(buf, len))
		p = end;
	/* cut before each "---" that follows a piece holding a document */
	while (p < end && !ret) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		if (p != start && pc_doc_start(p, end) && !pc_blank(start, p)) {
			ret = pc_load_doc(set, file, start, (size_t)(p - start), start_line, docno++);
			start = p;
			start_line = line;
		}
		line++;
		p = nl ? nl + 1 : end;
	}
	if (!ret && start < end)
		ret = pc_load_doc(set, file, start, (size_t)(end - start), start_line, docno);
	if (ret)
		return ret;
	return set->n_errors > errs0 ? -EINVAL : 0;
}
