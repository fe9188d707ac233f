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
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy/policy_int.h"
#include "common/grow.h"
#include "common/str.h"
#include "common/u64map.h"

struct pol_doc {
	struct pol_set set;	/* the document's objects and diagnostics (first:
				 * a delta hands out &doc->set) */
	uint64_t key;		/* hash of file, line, text; never 0 */
	uint64_t used;		/* cache generation that last used it */
	uint64_t mark;		/* delta that found it (policy_cache_delta) */
	bool prefetched;	/* parsed ahead; the load that uses it counts it parsed */
	unsigned long refs;	/* the cache's (while it holds the document) and
				 * policy_doc_get's; atomic */
	uint32_t line;		/* lines of the file before the document */
	size_t len;
	char *text;
};

static struct pol_doc *container_of_set(const struct pol_set *set)
{
	return (struct pol_doc *)((char *)set - offsetof(struct pol_doc, set));
}

/* The documents of one file as last loaded, in order: what a delta diffs. */
struct pc_file {
	char *name;
	struct pol_doc **docs;
	size_t n;
};

struct pol_cache {
	struct u64map docs;	/* key -> struct pol_doc * */
	struct u64map files;	/* hash of the name -> struct pc_file * */
	uint64_t marks;		/* deltas so far */
	struct u64map offered;	/* key -> struct pol_doc *: parsed elsewhere
				 * (policy_cache_offer), taken instead of parsing */
	struct pol_doc **scratch;	/* parsed, not cacheable: freed at end */
	size_t n_scratch;
	uint64_t gen;
	size_t parsed, reused;
};

struct pol_cache *policy_cache_new(void)
{
	struct pol_cache *c = calloc(1, sizeof(*c));

	if (c && (u64map_init(&c->docs, 64) || u64map_init(&c->files, 16))) {
		u64map_free(&c->docs);
		free(c);
		return NULL;
	}
	return c;
}

static void pc_file_free(struct pc_file *f)
{
	if (!f)
		return;
	free(f->name);
	free(f->docs);
	free(f);
}

static uint64_t pc_hash(uint64_t h, const void *p, size_t len);

static uint64_t pc_file_key(const char *name)
{
	uint64_t k = pc_hash(0x84222325cbf29ce4ull, name, strlen(name));

	return k ? k : 1;
}

static struct pc_file *pc_file_get(struct pol_cache *c, const char *name)
{
	struct pc_file *f = u64map_get(&c->files, pc_file_key(name));

	return f && !strcmp(f->name, name) ? f : NULL;
}

static void pc_file_drop(struct pol_cache *c, const char *name)
{
	pc_file_free(u64map_del(&c->files, pc_file_key(name)));
}

/*
 * Remember that file now holds docs (n, in order); they must all be in the
 * map (a hash collision's scratch copy goes at end: then no manifest).
 */
static void pc_file_set(struct pol_cache *c, const char *name, struct pol_doc **docs, size_t n)
{
	struct pc_file *f;

	pc_file_drop(c, name);
	for (size_t i = 0; i < n; i++)
		if (u64map_get(&c->docs, docs[i]->key) != docs[i])
			return;
	f = calloc(1, sizeof(*f));
	if (!f || !(f->name = strdup(name)) ||
	    !(f->docs = malloc((n ? n : 1) * sizeof(*docs))) ||
	    u64map_put(&c->files, pc_file_key(name), f)) {
		pc_file_free(f);
		return;		/* no manifest: a delta of this file is refused */
	}
	memcpy(f->docs, docs, n * sizeof(*docs));
	f->n = n;
}

/*
 * Dropping the cache's reference: eviction takes the document out of the
 * maps first, so the last put (maybe on a proxy worker, via
 * policy_doc_put) touches nothing but the document.
 */
static void pc_doc_free(struct pol_doc *d)
{
	if (!d || __atomic_sub_fetch(&d->refs, 1, __ATOMIC_ACQ_REL))
		return;
	policy_set_free(&d->set);
	free(d->text);
	free(d);
}

struct pol_doc *policy_doc_get(struct pol_doc *d)
{
	if (d)
		__atomic_add_fetch(&d->refs, 1, __ATOMIC_RELAXED);
	return d;
}

void policy_doc_put(struct pol_doc *d)
{
	pc_doc_free(d);
}

_Static_assert(offsetof(struct pol_service, meta) == 0 && offsetof(struct pol_pod, meta) == 0 &&
	       offsetof(struct pol_eps, meta) == 0 && offsetof(struct pol_dr, meta) == 0 &&
	       offsetof(struct pol_vs, meta) == 0 && offsetof(struct pol_gateway, meta) == 0 &&
	       offsetof(struct pol_namespace, meta) == 0,
	       "pc_doc_mark finds each object's leading pol_meta");

/* Every object of the document's set knows its document (meta first). */
static void pc_doc_mark(struct pol_doc *d)
{
	for (size_t k = 0; k < pol_n_set_kinds; k++) {
		const struct pol_set_kind *kd = &pol_set_kinds[k];
		char *arr = *(char **)((char *)&d->set + kd->off_arr);
		size_t n = *(size_t *)((char *)&d->set + kd->off_n);

		for (size_t i = 0; i < n; i++)
			((struct pol_meta *)(arr + i * kd->stride))->doc = d;
	}
}

void policy_cache_free(struct pol_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->docs.cap; i++)
		if (c->docs.keys[i])
			pc_doc_free(c->docs.vals[i]);
	u64map_free(&c->docs);
	for (size_t i = 0; i < c->files.cap; i++)
		if (c->files.keys[i])
			pc_file_free(c->files.vals[i]);
	u64map_free(&c->files);
	policy_cache_offers_clear(c);
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
	/* a file whose documents go is not what a delta can diff against */
	for (size_t i = 0; i < c->files.cap; i++) {
		struct pc_file *f = c->files.vals[i];
		size_t k;

		if (!c->files.keys[i])
			continue;
		for (k = 0; k < f->n && f->docs[k]->used == c->gen; k++)
			;
		if (k < f->n) {
			pc_file_drop(c, f->name);
			i--;	/* the deletion may have shifted another entry here */
		}
	}
	for (size_t i = 0; i < c->docs.cap; i++)
		if (c->docs.keys[i] && ((struct pol_doc *)c->docs.vals[i])->used == c->gen)
			n++;
	if (u64map_init(&keep, n))
		return;		/* no memory: keep everything until next time */
	for (size_t i = 0; i < c->docs.cap; i++) {
		struct pol_doc *d = c->docs.vals[i];

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

int policy_set_add_doc_diags(struct pol_set *set, const struct pol_set *doc)
{
	struct pol_diag *d;

	if (!doc->n_diags)
		return 0;
	d = realloc(set->diags, (set->n_diags + doc->n_diags) * sizeof(*d));
	if (!d)
		return -ENOMEM;
	memcpy(d + set->n_diags, doc->diags, doc->n_diags * sizeof(*d));
	set->diags = d;
	set->n_diags += doc->n_diags;
	set->n_errors += doc->n_errors;
	set->n_warnings += doc->n_warnings;
	return 0;
}

/* Append src's objects (shallow) and diagnostics to dst. */
static int pc_absorb(struct pol_set *dst, const struct pol_set *src)
{
	for (size_t k = 0; k < pol_n_set_kinds; k++) {
		const struct pol_set_kind *kd = &pol_set_kinds[k];
		void **darr = (void **)((char *)dst + kd->off_arr);
		size_t *dn = (size_t *)((char *)dst + kd->off_n);
		void *const *sarr = (void *const *)((const char *)src + kd->off_arr);
		size_t sn = *(const size_t *)((const char *)src + kd->off_n);
		size_t stride = kd->stride;

		if (!sn)
			continue;
		/* a quarter more at a time: 20k one-object documents, not 20k copies */
		if (sm_room(darr, (*dn + sn) * stride))
			return -ENOMEM;
		memcpy((char *)*darr + *dn * stride, *sarr, sn * stride);
		*dn += sn;
	}
	return policy_set_add_doc_diags(dst, src);
}

/* A new document holding a copy of text, nothing parsed yet (NULL: no memory). */
static struct pol_doc *pc_doc_new(const char *file, const char *text, size_t len, uint32_t line,
				  uint64_t key)
{
	struct pol_doc *d = calloc(1, sizeof(*d));
	const char *own;

	if (!d)
		return NULL;
	policy_set_init(&d->set);
	d->refs = 1;
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
	return d;
}

/* Parse one document into a new cache entry (NULL: no memory). */
static struct pol_doc *pc_parse(const char *file, const char *text, size_t len, uint32_t line,
			       int docno, uint64_t key)
{
	struct pol_doc *d = pc_doc_new(file, text, len, line, key);

	if (!d)
		return NULL;
	if (pol_load_buffer_at(&d->set, d->set.files[0], d->text, len, line, docno) == -ENOMEM) {
		pc_doc_free(d);
		return NULL;
	}
	pc_doc_mark(d);
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

/* One document of the file being loaded. */
struct pc_piece {
	const char *file;
	const char *text;
	size_t len;
	uint32_t line;
	int docno;
	uint64_t key;
	struct pol_doc *doc;	/* cached, or parsed for this load */
	bool fresh;		/* parsed now */
};

struct pc_work {
	struct pc_piece *pieces;
	size_t n, cap;
	size_t next;		/* atomic: next piece to look at */
	bool oom;
};

/* Parse the pieces that missed the cache; several threads share this. */
static void *pc_worker(void *arg)
{
	struct pc_work *w = arg;

	for (;;) {
		size_t i = __atomic_fetch_add(&w->next, 1, __ATOMIC_RELAXED);
		struct pc_piece *pc;

		if (i >= w->n)
			return NULL;
		pc = &w->pieces[i];
		if (pc->doc)
			continue;
		pc->doc = pc_parse(pc->file, pc->text, pc->len, pc->line, pc->docno, pc->key);
		if (!pc->doc)
			__atomic_store_n(&w->oom, true, __ATOMIC_RELAXED);
		pc->fresh = true;
	}
}

/* Below this many new documents one thread parses them all. */
#define PC_PARALLEL_MIN 256
#define PC_THREADS_MAX 8

static void pc_parse_missing(struct pc_work *w, size_t missing)
{
	pthread_t tid[PC_THREADS_MAX];
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	size_t n_threads = 0, want;

	want = missing < PC_PARALLEL_MIN || cpus < 2 ? 1 :
	       cpus > PC_THREADS_MAX ? PC_THREADS_MAX : (size_t)cpus;
	for (; n_threads + 1 < want; n_threads++)
		if (pthread_create(&tid[n_threads], NULL, pc_worker, w))
			break;
	pc_worker(w);
	for (size_t i = 0; i < n_threads; i++)
		pthread_join(tid[i], NULL);
}

/* The cache key of a document: its file, first line and text. */
static uint64_t pc_key(const char *file, uint32_t line, const char *text, size_t len)
{
	uint64_t key = 0xcbf29ce484222325ull;

	key = pc_hash(key, file, strlen(file) + 1);
	key = pc_hash(key, &line, sizeof(line));
	key = pc_hash(key, text, len);
	return key ? key : 1;
}

static int pc_add_piece(struct pc_piece **pieces, size_t *n, size_t *cap, const char *file,
			const char *text, size_t len, uint32_t line, int docno)
{
	struct pc_piece *pc;

	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;

		pc = realloc(*pieces, ncap * sizeof(*pc));
		if (!pc)
			return -ENOMEM;
		*pieces = pc;
		*cap = ncap;
	}
	(*pieces)[(*n)++] = (struct pc_piece){
		.file = file, .text = text, .len = len, .line = line, .docno = docno,
		.key = pc_key(file, line, text, len),
	};
	return 0;
}

/* Keep a document parsed now: in the map, or (a hash collision) until end. */
static int pc_keep(struct pol_cache *c, struct pol_doc *d)
{
	struct pol_doc **sc;

	if (!u64map_get(&c->docs, d->key) && !u64map_put(&c->docs, d->key, d))
		return 0;
	sc = realloc(c->scratch, (c->n_scratch + 1) * sizeof(*sc));
	if (!sc)
		return -ENOMEM;
	c->scratch = sc;
	c->scratch[c->n_scratch++] = d;
	return 0;
}

/* Cut buf before each "---" that follows a piece holding a document. */
static int pc_split(const char *file, const char *buf, size_t len, struct pc_work *w)
{
	const char *p = buf, *end = buf + len, *start = buf;
	uint32_t line = 0, start_line = 0;
	int docno = 1, ret = 0;

	if (!pc_splittable(buf, len))
		p = end;
	while (p < end && !ret) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		if (p != start && pc_doc_start(p, end) && !pc_blank(start, p)) {
			ret = pc_add_piece(&w->pieces, &w->n, &w->cap, file, start, (size_t)(p - start),
					   start_line, docno++);
			start = p;
			start_line = line;
		}
		line++;
		p = nl ? nl + 1 : end;
	}
	if (!ret && start < end)
		ret = pc_add_piece(&w->pieces, &w->n, &w->cap, file, start, (size_t)(end - start),
				   start_line, docno);
	return ret;
}

bool policy_text_blank(const char *buf, size_t len)
{
	return pc_blank(buf, buf + len);
}

int policy_doc_cut(const char *buf, size_t len, const uint32_t *lines, const bool *cut,
		   size_t n, char **out, size_t *out_len)
{
	struct pc_work w = {};
	size_t o = 0;
	int ret;

	*out = malloc(len + 1);
	if (!*out || (ret = pc_split("", buf, len, &w))) {
		free(*out);
		*out = NULL;
		free(w.pieces);
		return -ENOMEM;
	}
	for (size_t i = 0; i < w.n; i++) {
		/* a piece holds lines (its line, the next piece's line] */
		uint32_t lo = w.pieces[i].line, hi = i + 1 < w.n ? w.pieces[i + 1].line : UINT32_MAX;
		bool drop = false, keep = false;

		for (size_t k = 0; k < n; k++)
			if (lines[k] > lo && lines[k] <= hi) {
				drop |= cut[k];
				keep |= !cut[k];
			}
		if (drop && keep) {
			ret = -EBUSY;
			break;
		}
		if (!drop) {
			memcpy(*out + o, w.pieces[i].text, w.pieces[i].len);
			o += w.pieces[i].len;
		}
	}
	free(w.pieces);
	if (ret) {
		free(*out);
		*out = NULL;
		return ret;
	}
	(*out)[o] = '\0';
	*out_len = o;
	return 0;
}

/* The document of this piece in map: same file, place and text. */
static struct pol_doc *pc_find(struct u64map *map, const char *file, const struct pc_piece *pc)
{
	struct pol_doc *d = u64map_get(map, pc->key);

	if (d && d->line == pc->line && d->len == pc->len &&
	    !memcmp(d->text, pc->text, pc->len) && !strcmp(d->set.files[0], file))
		return d;
	return NULL;
}

/* The cached document of this piece. */
static struct pol_doc *pc_lookup(struct pol_cache *c, const char *file, const struct pc_piece *pc)
{
	return pc_find(&c->docs, file, pc);
}

/* A document offered for this piece (its reference passes to the caller) or NULL. */
static struct pol_doc *pc_take_offered(struct pol_cache *c, const char *file,
				       const struct pc_piece *pc)
{
	struct pol_doc *d = c->offered.n ? pc_find(&c->offered, file, pc) : NULL;

	if (d)
		u64map_del(&c->offered, d->key);
	return d;
}

struct pol_doc *policy_doc_parse_json(const char *file, const char *text, size_t len,
				      const json_t *root)
{
	struct pol_doc *d = pc_doc_new(file, text, len, 0, pc_key(file, 0, text, len));

	if (!d)
		return NULL;
	if (pol_load_json(&d->set, d->set.files[0], root) == -ENOMEM) {
		pc_doc_free(d);
		return NULL;
	}
	pc_doc_mark(d);
	return d;
}

const char *policy_doc_file(const struct pol_doc *d)
{
	return d->set.files[0];
}

const char *policy_doc_text(const struct pol_doc *d, size_t *len)
{
	*len = d->len;
	return d->text;
}

int policy_cache_offer(struct pol_cache *c, struct pol_doc *d)
{
	if (u64map_get(&c->offered, d->key))
		return 0;	/* the same key offered twice: the load parses the other */
	if (u64map_put(&c->offered, d->key, d))
		return -ENOMEM;
	policy_doc_get(d);
	return 0;
}

void policy_cache_offers_clear(struct pol_cache *c)
{
	for (size_t i = 0; i < c->offered.cap; i++)
		if (c->offered.keys[i])
			pc_doc_free(c->offered.vals[i]);
	u64map_free(&c->offered);	/* empty, and usable again (grows on put) */
}

int pol_cache_load(struct pol_set *set, const char *file, const char *buf, size_t len)
{
	struct pol_cache *c = set->cache;
	struct pc_work w = { 0 };
	struct pol_doc **docs = NULL;
	size_t missing = 0, errs0 = set->n_errors;
	int ret;

	/* 1. The documents. */
	ret = pc_split(file, buf, len, &w);

	/* 2. What the cache has. */
	for (size_t i = 0; !ret && i < w.n; i++) {
		struct pc_piece *pc = &w.pieces[i];

		pc->doc = pc_lookup(c, file, pc);
		if (!pc->doc && (pc->doc = pc_take_offered(c, file, pc)))
			pc->fresh = true;	/* parsed already, where it came from */
		if (!pc->doc)
			missing++;
	}

	/* 3. Parse the rest, in parallel when there are many (a first load). */
	if (!ret && missing)
		pc_parse_missing(&w, missing);

	/* 4. In file order: keep the new ones, hand every object to set. */
	if (!ret && !(docs = malloc((w.n ? w.n : 1) * sizeof(*docs))))
		ret = -ENOMEM;
	for (size_t i = 0; i < w.n; i++) {
		struct pc_piece *pc = &w.pieces[i];

		if (pc->fresh && pc->doc && !ret && (ret = pc_keep(c, pc->doc)))
			pc_doc_free(pc->doc);
		else if (pc->fresh && pc->doc && ret)
			pc_doc_free(pc->doc);
		if (ret || !pc->doc)
			continue;
		pc->fresh || pc->doc->prefetched ? c->parsed++ : c->reused++;
		pc->doc->prefetched = false;
		pc->doc->used = c->gen;
		docs[i] = pc->doc;
		ret = pc_absorb(set, &pc->doc->set);
	}
	if (!ret && w.oom)
		ret = -ENOMEM;
	/* what a later delta of this file diffs against */
	if (!ret)
		pc_file_set(c, file, docs, w.n);
	else
		pc_file_drop(c, file);
	free(docs);
	free(w.pieces);
	if (ret)
		return ret;
	return set->n_errors > errs0 ? -EINVAL : 0;
}

int policy_cache_prefetch(struct pol_cache *c, char *const *paths, size_t n)
{
	struct pc_work w = { 0 };
	char **bufs = calloc(n ? n : 1, sizeof(*bufs));
	size_t missing = 0;
	int ret = bufs ? 0 : -ENOMEM;

	for (size_t i = 0; i < n && !ret; i++) {
		size_t len;

		if (policy_read_file(paths[i], &bufs[i], &len))
			continue;	/* the load says why */
		ret = pc_split(paths[i], bufs[i], len, &w);	/* appends */
	}
	for (size_t i = 0; !ret && i < w.n; i++) {
		w.pieces[i].doc = pc_lookup(c, w.pieces[i].file, &w.pieces[i]);
		missing += !w.pieces[i].doc;
	}
	if (!ret && missing)
		pc_parse_missing(&w, missing);
	for (size_t i = 0; i < w.n; i++) {
		struct pol_doc *d = w.pieces[i].doc;

		if (!w.pieces[i].fresh || !d)
			continue;
		d->prefetched = true;
		d->used = c->gen;
		/* a hash collision (or no memory): the load parses it again */
		if (u64map_get(&c->docs, d->key) || u64map_put(&c->docs, d->key, d))
			pc_doc_free(d);
	}
	if (!ret && w.oom)
		ret = -ENOMEM;
	for (size_t i = 0; i < n && bufs; i++)
		free(bufs[i]);
	free(bufs);
	free(w.pieces);
	return ret;
}

/* ---- deltas ---- */

struct pc_delta_file {
	char *name;
	struct pol_doc **docs;	/* the file's documents after the change */
	size_t n;
};

static int pc_delta(struct pol_cache *c, const char *file, const char *buf, size_t len,
		    struct pol_delta *d, bool is_new)
{
	struct pc_file *old = pc_file_get(c, file), none = { 0 };
	struct pc_work w = { 0 };
	struct pc_delta_file *df;
	uint64_t mark = ++c->marks;
	size_t n_gone = 0, n_added = 0;
	int ret;

	if (!old && !is_new)
		return -ENOENT;
	if (old && is_new)
		return -EEXIST;
	if (!old)
		old = &none;
	for (size_t i = 0; i < d->n_files; i++)
		if (!strcmp(d->files[i].name, file))
			return -EEXIST;
	ret = pc_split(file, buf, len, &w);
	if (!ret && !(df = realloc(d->files, (d->n_files + 1) * sizeof(*df))))
		ret = -ENOMEM;
	if (ret)
		goto out;
	d->files = df;
	df = &d->files[d->n_files];
	memset(df, 0, sizeof(*df));
	for (size_t i = 0; i < w.n; i++) {
		struct pol_doc *doc = pc_lookup(c, file, &w.pieces[i]);

		if (doc)
			doc->mark = mark;
		w.pieces[i].doc = doc;
	}
	for (size_t i = 0; i < old->n; i++)
		n_gone += old->docs[i]->mark != mark;
	for (size_t i = 0; i < w.n; i++)
		n_added += !w.pieces[i].doc;
	if (!(df->name = strdup(file)) ||
	    !(df->docs = calloc(w.n ? w.n : 1, sizeof(*df->docs))) ||
	    sm_grow((void **)&d->gone, &d->cap_gone, d->n_gone + n_gone, sizeof(*d->gone)) ||
	    sm_grow((void **)&d->added, &d->cap_added, d->n_added + n_added, sizeof(*d->added))) {
		free(df->name);
		free(df->docs);
		ret = -ENOMEM;
		goto out;
	}
	d->n_files++;
	df->n = w.n;
	for (size_t i = 0; i < old->n; i++)
		if (old->docs[i]->mark != mark)
			d->gone[d->n_gone++] = &old->docs[i]->set;
	for (size_t i = 0; i < w.n; i++) {
		struct pc_piece *pc = &w.pieces[i];

		if (!pc->doc) {
			pc->doc = pc_take_offered(c, file, pc) ?:
				  pc_parse(file, pc->text, pc->len, pc->line, pc->docno, pc->key);
			if (!pc->doc) {
				ret = -ENOMEM;
				goto out;
			}
			d->added[d->n_added++] = &pc->doc->set;
		}
		df->docs[i] = pc->doc;
	}
	d->n_docs += w.n;
out:
	free(w.pieces);
	return ret;
}

int policy_cache_delta(struct pol_cache *c, const char *file, const char *buf, size_t len,
		       struct pol_delta *d)
{
	return pc_delta(c, file, buf, len, d, false);
}

int policy_cache_delta_new(struct pol_cache *c, const char *file, const char *buf, size_t len,
			   struct pol_delta *d)
{
	return pc_delta(c, file, buf, len, d, true);
}

/* A new document of d (not in the cache yet)? */
static bool pc_delta_is_new(const struct pol_cache *c, const struct pol_doc *doc)
{
	return u64map_get(&c->docs, doc->key) != doc;
}

void policy_delta_commit(struct pol_cache *c, struct pol_delta *d)
{
	for (size_t i = 0; i < d->n_gone; i++) {
		struct pol_doc *doc = container_of_set(d->gone[i]);

		if (u64map_get(&c->docs, doc->key) == doc)
			u64map_del(&c->docs, doc->key);
		pc_doc_free(doc);
	}
	d->n_gone = 0;
	for (size_t i = 0; i < d->n_added; i++) {
		struct pol_doc *doc = container_of_set(d->added[i]);

		doc->used = c->gen;
		if (pc_keep(c, doc))
			pc_doc_free(doc);	/* no memory: the manifest goes below */
	}
	d->n_added = 0;
	for (size_t i = 0; i < d->n_files; i++)
		pc_file_set(c, d->files[i].name, d->files[i].docs, d->files[i].n);
	policy_delta_free(c, d);
}

void policy_delta_free(struct pol_cache *c, struct pol_delta *d)
{
	for (size_t i = 0; i < d->n_added; i++) {
		struct pol_doc *doc = container_of_set(d->added[i]);

		if (pc_delta_is_new(c, doc))
			pc_doc_free(doc);
	}
	for (size_t i = 0; i < d->n_files; i++) {
		free(d->files[i].name);
		free(d->files[i].docs);
	}
	free(d->files);
	free(d->gone);
	free(d->added);
	memset(d, 0, sizeof(*d));
}

const char *policy_set_single_kind(const struct pol_set *s)
{
	const char *kind = NULL;
	size_t objects = 0;

	for (size_t k = 0; k < pol_n_set_kinds; k++) {
		size_t n = *(const size_t *)((const char *)s + pol_set_kinds[k].off_n);

		if (n)
			kind = pol_set_kinds[k].kind;
		objects += n;
	}
	return !s->n_errors && objects == 1 ? kind : NULL;
}

/*
 * In the objects arr (n of stride bytes, each starting with its struct
 * pol_meta), put *to where from is: found by identity (a borrowed object
 * shares its strings), so pointers into arr (the set's index) stay valid.
 */
static int pc_swap_by_identity(void *arr, size_t n, size_t stride, const void *from,
			       const void *to)
{
	const char *name = ((const struct pol_meta *)from)->name;

	for (size_t i = 0; i < n; i++) {
		char *obj = (char *)arr + i * stride;

		if (((const struct pol_meta *)obj)->name == name) {
			memcpy(obj, to, stride);
			return 0;
		}
	}
	return -ENOENT;
}

_Static_assert(offsetof(struct pol_eps, meta) == 0 && offsetof(struct pol_pod, meta) == 0 &&
	       offsetof(struct pol_vs, meta) == 0 && offsetof(struct pol_dr, meta) == 0 &&
	       offsetof(struct pol_service, meta) == 0 && offsetof(struct pol_namespace, meta) == 0,
	       "pc_swap_by_identity finds objects by their leading pol_meta");

static bool pc_same_name(const struct pol_meta *a, const struct pol_meta *b)
{
	return !strcmp(a->ns, b->ns) && !strcmp(a->name, b->name);
}

int policy_set_swap_vs(struct pol_set *set, const struct pol_vs *from, const struct pol_vs *to)
{
	if (!pc_same_name(&from->meta, &to->meta) || from->n_hosts != to->n_hosts)
		return -EINVAL;
	for (size_t i = 0; i < from->n_hosts; i++)
		if (!sm_streq(from->hosts[i], to->hosts[i]))
			return -EINVAL;
	return pc_swap_by_identity(set->vss, set->n_vss, sizeof(*set->vss), from, to);
}

int policy_set_swap_dr(struct pol_set *set, const struct pol_dr *from, const struct pol_dr *to)
{
	if (!pc_same_name(&from->meta, &to->meta) || !sm_streq(from->host, to->host))
		return -EINVAL;
	return pc_swap_by_identity(set->drs, set->n_drs, sizeof(*set->drs), from, to);
}

int policy_set_swap_eps(struct pol_set *set, const struct pol_eps *from, const struct pol_eps *to)
{
	if (strcmp(from->meta.ns, to->meta.ns) || strcmp(from->meta.name, to->meta.name) ||
	    !sm_streq(from->service_name, to->service_name))
		return -EINVAL;
	if (pc_swap_by_identity(set->eps, set->n_eps, sizeof(*set->eps), from, to))
		return -ENOENT;
	policy_index_eps_swapped(set, from, to);
	return 0;
}

/* Set order: by file, then line (how loads append). */
static int pc_loc_cmp(const struct pol_loc *a, const struct pol_loc *b)
{
	int c = strcmp(a->file ? a->file : "", b->file ? b->file : "");

	return c ? c : (a->line > b->line) - (a->line < b->line);
}

/*
 * Room for one more object in *arr (n objects of stride bytes, each
 * starting with its pol_meta); *at: where a full load puts obj (set
 * order: after every object not after it; the set is in that order, so
 * bisection, not a string compare per object). The caller copies it
 * there and counts it.
 */
static int pc_make_room(void **arr, size_t n, size_t stride, const void *obj, size_t *at)
{
	const struct pol_meta *m = obj;
	size_t i = 0, hi = n;
	char *grown;

	if (sm_room(arr, (n + 1) * stride))
		return -ENOMEM;
	grown = *arr;
	while (i < hi) {
		size_t mid = i + (hi - i) / 2;

		if (pc_loc_cmp(&((struct pol_meta *)(grown + mid * stride))->loc, &m->loc) > 0)
			hi = mid;
		else
			i = mid + 1;
	}
	memmove(grown + (i + 1) * stride, grown + i * stride, (n - i) * stride);
	memcpy(grown + i * stride, obj, stride);
	*arr = grown;
	*at = i;
	return 0;
}

/* Where obj is in arr, by identity (as pc_swap_by_identity); n when absent. */
static size_t pc_find_by_identity(const void *arr, size_t n, size_t stride, const void *obj)
{
	const char *name = ((const struct pol_meta *)obj)->name;
	size_t at;

	for (at = 0; at < n; at++)
		if (((const struct pol_meta *)((const char *)arr + at * stride))->name == name)
			break;
	return at;
}

static void pc_close_gap(void *arr, size_t *n, size_t stride, size_t at)
{
	memmove((char *)arr + at * stride, (char *)arr + (at + 1) * stride,
		(*n - at - 1) * stride);
	(*n)--;
}

int policy_set_add_eps(struct pol_set *set, const struct pol_eps *e)
{
	uintptr_t old = (uintptr_t)set->eps;
	size_t at;

	if (policy_index_eps_reserve(set) ||
	    pc_make_room((void **)&set->eps, set->n_eps, sizeof(*e), e, &at))
		return -ENOMEM;
	set->n_eps++;
	policy_index_eps_added(set, old, at);
	return 0;
}

int policy_set_del_eps(struct pol_set *set, const struct pol_eps *e)
{
	size_t at = pc_find_by_identity(set->eps, set->n_eps, sizeof(*e), e);

	if (at == set->n_eps)
		return -ENOENT;
	policy_index_eps_removing(set, at);
	pc_close_gap(set->eps, &set->n_eps, sizeof(*e), at);
	return 0;
}

/*
 * An object of an indexed kind comes into *arr where a load puts it: room
 * in the index first (reserve), the index told where it is (added).
 */
static int pc_add_indexed(struct pol_set *set, void **arr, size_t *n, size_t stride,
			  const void *obj, int (*reserve)(struct pol_set *),
			  void (*added)(struct pol_set *, uintptr_t, size_t))
{
	uintptr_t old = (uintptr_t)*arr;
	size_t at;

	if (reserve(set) || pc_make_room(arr, *n, stride, obj, &at))
		return -ENOMEM;
	(*n)++;
	added(set, old, at);
	return 0;
}

/* ... or goes: the index drops it first (removing). */
static int pc_del_indexed(struct pol_set *set, void *arr, size_t *n, size_t stride,
			  const void *obj, void (*removing)(struct pol_set *, size_t))
{
	size_t at = pc_find_by_identity(arr, *n, stride, obj);

	if (at == *n)
		return -ENOENT;
	removing(set, at);
	pc_close_gap(arr, n, stride, at);
	return 0;
}

int policy_set_add_svc(struct pol_set *set, const struct pol_service *s)
{
	return pc_add_indexed(set, (void **)&set->svcs, &set->n_svcs, sizeof(*s), s,
			      policy_index_svcs_reserve, policy_index_svc_added);
}

int policy_set_del_svc(struct pol_set *set, const struct pol_service *s)
{
	return pc_del_indexed(set, set->svcs, &set->n_svcs, sizeof(*s), s,
			      policy_index_svc_removing);
}

int policy_set_add_pod(struct pol_set *set, const struct pol_pod *p)
{
	return pc_add_indexed(set, (void **)&set->pods, &set->n_pods, sizeof(*p), p,
			      policy_index_pods_reserve, policy_index_pod_added);
}

int policy_set_del_pod(struct pol_set *set, const struct pol_pod *p)
{
	return pc_del_indexed(set, set->pods, &set->n_pods, sizeof(*p), p,
			      policy_index_pod_removing);
}

/* An object of a kind without index comes where a load puts it, or goes. */
static int pc_add(void **arr, size_t *n, size_t stride, const void *obj)
{
	size_t at;

	if (pc_make_room(arr, *n, stride, obj, &at))
		return -ENOMEM;
	(*n)++;
	return 0;
}

static int pc_del(void *arr, size_t *n, size_t stride, const void *obj)
{
	size_t at = pc_find_by_identity(arr, *n, stride, obj);

	if (at == *n)
		return -ENOENT;
	pc_close_gap(arr, n, stride, at);
	return 0;
}

/* VirtualServices and DestinationRules: no index; set order decides which one wins. */
int policy_set_add_vs(struct pol_set *set, const struct pol_vs *vs)
{
	return pc_add((void **)&set->vss, &set->n_vss, sizeof(*vs), vs);
}

int policy_set_del_vs(struct pol_set *set, const struct pol_vs *vs)
{
	return pc_del(set->vss, &set->n_vss, sizeof(*vs), vs);
}

int policy_set_add_dr(struct pol_set *set, const struct pol_dr *dr)
{
	return pc_add((void **)&set->drs, &set->n_drs, sizeof(*dr), dr);
}

int policy_set_del_dr(struct pol_set *set, const struct pol_dr *dr)
{
	return pc_del(set->drs, &set->n_drs, sizeof(*dr), dr);
}

/* Namespaces: no index; their labels decide mesh membership (policy_pod_in_mesh). */
int policy_set_add_ns(struct pol_set *set, const struct pol_namespace *ns)
{
	return pc_add((void **)&set->nss, &set->n_nss, sizeof(*ns), ns);
}

int policy_set_del_ns(struct pol_set *set, const struct pol_namespace *ns)
{
	return pc_del(set->nss, &set->n_nss, sizeof(*ns), ns);
}

/* Gateways: no index; they feed the L7 config's gateway listeners alone. */
int policy_set_add_gw(struct pol_set *set, const struct pol_gateway *gw)
{
	return pc_add((void **)&set->gws, &set->n_gws, sizeof(*gw), gw);
}

int policy_set_del_gw(struct pol_set *set, const struct pol_gateway *gw)
{
	return pc_del(set->gws, &set->n_gws, sizeof(*gw), gw);
}

static bool pc_labels_eq(const struct pol_labels *a, const struct pol_labels *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (!sm_streq(a->v[i].key, b->v[i].key) || !sm_streq(a->v[i].value, b->v[i].value))
			return false;
	return true;
}

bool policy_pod_same_but_ready(const struct pol_pod *a, const struct pol_pod *b)
{
	if (strcmp(a->meta.ns, b->meta.ns) || strcmp(a->meta.name, b->meta.name) ||
	    !pc_labels_eq(&a->meta.labels, &b->meta.labels) ||
	    !pc_labels_eq(&a->meta.annotations, &b->meta.annotations) ||
	    !sm_streq(a->uid, b->uid) || !sm_streq(a->node_name, b->node_name) ||
	    a->ip != b->ip || a->finished != b->finished || a->host_network != b->host_network ||
	    a->n_ports != b->n_ports)
		return false;
	for (size_t i = 0; i < a->n_ports; i++)
		if (!sm_streq(a->ports[i].name, b->ports[i].name) ||
		    a->ports[i].port != b->ports[i].port || a->ports[i].proto != b->ports[i].proto)
			return false;
	return true;
}

int policy_pod_services(const struct pol_set *set, const struct pol_pod *p, bool slices,
			int (*note)(void *arg, const char *ns, const char *name), void *arg)
{
	const struct pol_service *const *svcs = NULL;
	size_t n_svcs = 0, n_slices;
	int ret = slices ? policy_index_pod_slices(set, p, note, arg) : 0;

	/* (a selector matters only while the pod has an IP and no slice exists) */
	if (p->ip && !ret)
		svcs = policy_index_services_in(set, p->meta.ns, &n_svcs);
	for (size_t k = 0; k < n_svcs && !ret; k++) {
		const struct pol_service *svc = svcs[k];

		if (!svc->has_selector || !svc->selector.n ||
		    !policy_labels_match(&svc->selector, &p->meta.labels))
			continue;
		policy_index_slices(set, svc->meta.ns, svc->meta.name, &n_slices);
		if (!n_slices)
			ret = note(arg, svc->meta.ns, svc->meta.name);
	}
	return ret;
}

int policy_set_swap_pod(struct pol_set *set, const struct pol_pod *from, const struct pol_pod *to)
{
	if (!policy_pod_same_but_ready(from, to))
		return -EINVAL;
	return pc_swap_by_identity(set->pods, set->n_pods, sizeof(*set->pods), from, to);
}

/*
 * Is loc inside the text of doc (lines after doc->line), whose file is
 * file? A place without a line (an object parsed from JSON, as the API
 * server sends it: its own document, its identity the file) is in the
 * file's first document.
 */
static bool pc_doc_holds(const struct pol_doc *doc, uint32_t lines, const char *file,
			 const struct pol_loc *loc)
{
	if (!loc->file || !file || strcmp(loc->file, file))
		return false;
	if (!loc->line)
		return !doc->line;
	return loc->line > doc->line && loc->line <= doc->line + lines;
}

size_t policy_set_drop_doc_diags(struct pol_set *set, const struct pol_set *doc, const char *file)
{
	const struct pol_doc *d = container_of_set(doc);
	size_t w = 0, n = set->n_diags;
	uint32_t lines = 1;

	for (size_t i = 0; n && i < d->len; i++)
		lines += d->text[i] == '\n';
	for (size_t i = 0; i < n; i++) {
		const struct pol_diag *g = &set->diags[i];

		if (!pc_doc_holds(d, lines, file, &g->loc)) {
			set->diags[w++] = *g;
			continue;
		}
		if (g->level == POL_DIAG_ERROR)
			set->n_errors--;
		else if (g->level == POL_DIAG_WARNING)
			set->n_warnings--;
	}
	set->n_diags = w;
	return n - w;
}
