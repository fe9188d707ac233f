// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Objects by identity: a chained hash table from "Kind ns/name" to the
 * object's document, plus the list of identities changed since the last
 * take (a deleted object stays as an entry without document until then).
 * One mutex: the client thread puts, the agent's loop takes.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/grow.h"
#include "kube/kube.h"
#include "policy/policy.h"

struct ks_entry {
	struct ks_entry *next;		/* hash chain */
	struct kube_doc *doc;		/* NULL: deleted, not taken yet */
	const char *name;		/* doc's, or own while deleted */
	char *own;
	uint64_t hash;
	uint64_t gen;
	uint32_t owner, prio;
	bool dirty;			/* in st->dirty */
};

struct kube_store {
	pthread_mutex_t lock;
	struct ks_entry **buckets;
	size_t n_buckets;		/* power of two */
	size_t n;			/* entries (also deleted, not taken) */
	struct ks_entry **dirty;
	size_t n_dirty, cap_dirty;
	int notify_fd;
	uint64_t dirty_since_ns;	/* first change since the last take */
};

struct kube_doc *kube_doc_new(const char *name, const char *text, size_t len)
{
	struct kube_doc *d = calloc(1, sizeof(*d));
	char *own = d && len < UINT32_MAX ? malloc(len + 1) : NULL;

	if (!own || !(d->name = strdup(name))) {
		free(own);
		free(d);
		return NULL;
	}
	memcpy(own, text, len);
	own[len] = '\0';
	d->refs = 1;
	d->len = (uint32_t)len;
	d->text = own;
	return d;
}

/* ---- kube_json_compact ---- */

struct kj_buf {
	char *p;
	size_t len, cap;
	bool oom;
};

static char *kj_room(struct kj_buf *b, size_t n)
{
	if (b->oom)
		return NULL;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 512;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		if (!(p = realloc(b->p, cap))) {
			b->oom = true;
			return NULL;
		}
		b->p = p;
		b->cap = cap;
	}
	return b->p + b->len;
}

static void kj_put(struct kj_buf *b, const char *s, size_t n)
{
	char *d = kj_room(b, n);

	if (d) {
		memcpy(d, s, n);
		b->len += n;
	}
}

/* As jansson's dump_string without flags: \\ \" \b \f \n \r \t, other controls \u00XX. */
static void kj_str(struct kj_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t run = 0;

	kj_put(b, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[6] = { '\\', 0 };
		size_t el = 2;

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		kj_put(b, s + run, i - run);
		run = i + 1;
		switch (c) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		default:
			memcpy(esc + 1, "u00", 3);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			el = 6;
		}
		kj_put(b, esc, el);
	}
	kj_put(b, s + run, n - run);
	kj_put(b, "\"", 1);
}

static void kj_value(struct kj_buf *b, const json_t *v)
{
	char num[64];
	const char *key;
	json_t *x;
	size_t i, n;
	int k;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		kj_put(b, "{", 1);
		k = 0;
		json_object_foreach((json_t *)v, key, x) {
			if (k++)
				kj_put(b, ",", 1);
			kj_str(b, key, strlen(key));
			kj_put(b, ":", 1);
			kj_value(b, x);
		}
		kj_put(b, "}", 1);
		return;
	case JSON_ARRAY:
		kj_put(b, "[", 1);
		json_array_foreach(v, i, x) {
			if (i)
				kj_put(b, ",", 1);
			kj_value(b, x);
		}
		kj_put(b, "]", 1);
		return;
	case JSON_STRING:
		kj_str(b, json_string_value(v), json_string_length(v));
		return;
	case JSON_INTEGER:
		k = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		kj_put(b, num, (size_t)k);
		return;
	case JSON_REAL:
		/* jansson's own format (precision, ".0", exponent) */
		n = json_dumpb(v, num, sizeof(num), JSON_ENCODE_ANY | JSON_COMPACT);
		if (!n || n > sizeof(num))
			b->oom = true;
		else
			kj_put(b, num, n);
		return;
	case JSON_TRUE:
		kj_put(b, "true", 4);
		return;
	case JSON_FALSE:
		kj_put(b, "false", 5);
		return;
	default:
		kj_put(b, "null", 4);
		return;
	}
}

char *kube_json_compact(const json_t *obj, size_t *len)
{
	struct kj_buf b = { 0 };

	kj_value(&b, obj);
	if (!kj_room(&b, 0)) {
		free(b.p);
		errno = ENOMEM;
		return NULL;
	}
	b.p[b.len] = '\0';
	*len = b.len;
	return b.p;
}

struct kube_doc *kube_doc_new_json(const char *name, const json_t *obj)
{
	/* compact: libyaml reads it too ("a":1 in a flow mapping) */
	size_t len;
	char *text = kube_json_compact(obj, &len);
	struct kube_doc *d = text ? calloc(1, sizeof(*d)) : NULL;

	if (!d || !(d->pd = policy_doc_parse_json(name, text, len, obj))) {
		free(d);
		free(text);
		return NULL;
	}
	free(text);
	d->name = (char *)policy_doc_file(d->pd);	/* one copy of the identity */
	d->text = policy_doc_text(d->pd, &len);
	if (len >= UINT32_MAX) {
		kube_doc_put(d);
		return NULL;
	}
	d->refs = 1;
	d->len = (uint32_t)len;
	return d;
}

struct kube_doc *kube_doc_get(struct kube_doc *d)
{
	if (d)
		__atomic_add_fetch(&d->refs, 1, __ATOMIC_RELAXED);
	return d;
}

void kube_doc_put(struct kube_doc *d)
{
	if (d && __atomic_sub_fetch(&d->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		if (d->pd) {
			policy_doc_put(d->pd);
		} else {
			free((char *)d->text);
			free(d->name);
		}
		free(d);
	}
}

char *kube_identity(char *buf, size_t len, const char *kind, const char *ns, const char *name)
{
	if (ns && *ns)
		snprintf(buf, len, "%s %s/%s", kind, ns, name);
	else
		snprintf(buf, len, "%s %s", kind, name);
	return buf;
}

static uint64_t ks_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;	/* FNV-1a */

	while (*s)
		h = (h ^ (unsigned char)*s++) * 0x100000001b3ull;
	return h;
}

struct kube_store *kube_store_new(int notify_fd)
{
	struct kube_store *st = calloc(1, sizeof(*st));

	if (!st)
		return NULL;
	st->n_buckets = 1024;
	st->buckets = calloc(st->n_buckets, sizeof(*st->buckets));
	if (!st->buckets) {
		free(st);
		return NULL;
	}
	pthread_mutex_init(&st->lock, NULL);
	st->notify_fd = notify_fd;
	return st;
}

static void ks_entry_free(struct ks_entry *e)
{
	kube_doc_put(e->doc);
	free(e->own);
	free(e);
}

void kube_store_free(struct kube_store *st)
{
	if (!st)
		return;
	for (size_t b = 0; b < st->n_buckets; b++)
		for (struct ks_entry *e = st->buckets[b], *nx; e; e = nx) {
			nx = e->next;
			ks_entry_free(e);
		}
	free(st->buckets);
	free(st->dirty);
	pthread_mutex_destroy(&st->lock);
	free(st);
}

static struct ks_entry **ks_slot(struct kube_store *st, const char *name, uint64_t h)
{
	struct ks_entry **pp = &st->buckets[h & (st->n_buckets - 1)];

	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->hash == h && !strcmp((*pp)->name, name))
			break;
	return pp;
}

static void ks_grow(struct kube_store *st)
{
	size_t nb = st->n_buckets * 2;
	struct ks_entry **b = calloc(nb, sizeof(*b));

	if (!b)
		return;		/* longer chains, still correct */
	for (size_t i = 0; i < st->n_buckets; i++)
		for (struct ks_entry *e = st->buckets[i], *nx; e; e = nx) {
			nx = e->next;
			e->next = b[e->hash & (nb - 1)];
			b[e->hash & (nb - 1)] = e;
		}
	free(st->buckets);
	st->buckets = b;
	st->n_buckets = nb;
}

/* Remember e as changed; wake the taker on the first change. Locked. */
static int ks_mark(struct kube_store *st, struct ks_entry *e)
{
	if (e->dirty)
		return 0;
	if (sm_grow((void **)&st->dirty, &st->cap_dirty, st->n_dirty + 1, sizeof(*st->dirty)))
		return -ENOMEM;
	st->dirty[st->n_dirty++] = e;
	e->dirty = true;
	if (st->n_dirty == 1) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		st->dirty_since_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	}
	if (st->n_dirty == 1 && st->notify_fd >= 0) {
		uint64_t one = 1;

		if (write(st->notify_fd, &one, sizeof(one)) < 0) {
			/* eventfd full or closed: the taker polls anyway */
		}
	}
	return 0;
}

int kube_store_put(struct kube_store *st, struct kube_doc *doc, uint32_t owner, uint32_t prio,
		   uint64_t gen)
{
	uint64_t h = ks_hash(doc->name);
	struct ks_entry **pp, *e;
	int ret = 1;

	pthread_mutex_lock(&st->lock);
	pp = ks_slot(st, doc->name, h);
	e = *pp;
	if (e && e->doc && e->owner != owner && e->prio > prio) {
		kube_doc_put(doc);	/* held in full by another reflector */
		ret = 0;
		goto out;
	}
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (!e) {
			kube_doc_put(doc);
			ret = -ENOMEM;
			goto out;
		}
		e->name = doc->name;
		e->hash = h;
		*pp = e;
		if (++st->n > st->n_buckets)
			ks_grow(st);
	}
	e->owner = owner;
	e->prio = prio;
	e->gen = gen;
	if (e->doc && e->doc->len == doc->len && !memcmp(e->doc->text, doc->text, doc->len)) {
		kube_doc_put(doc);
		ret = 0;
		goto out;
	}
	kube_doc_put(e->doc);
	e->doc = doc;
	e->name = doc->name;	/* the entry's name is its document's */
	free(e->own);
	e->own = NULL;
	if (ks_mark(st, e))
		ret = -ENOMEM;
out:
	pthread_mutex_unlock(&st->lock);
	return ret;
}

/* Locked: forget e's object (the entry goes at the next take). */
static int ks_delete(struct kube_store *st, struct ks_entry *e)
{
	char *own = strdup(e->doc->name);

	if (!own)
		return -ENOMEM;	/* still there: a relist or the next event deletes it */
	e->own = own;
	e->name = own;
	kube_doc_put(e->doc);
	e->doc = NULL;
	return ks_mark(st, e);
}

int kube_store_del(struct kube_store *st, const char *name, uint32_t owner)
{
	uint64_t h = ks_hash(name);
	struct ks_entry *e;
	int ret = 0;

	pthread_mutex_lock(&st->lock);
	e = *ks_slot(st, name, h);
	if (e && e->doc && e->owner == owner)
		ret = ks_delete(st, e) ?: 1;
	pthread_mutex_unlock(&st->lock);
	return ret;
}

size_t kube_store_sweep(struct kube_store *st, uint32_t owner, uint64_t gen)
{
	size_t n = 0;

	pthread_mutex_lock(&st->lock);
	for (size_t b = 0; b < st->n_buckets; b++)
		for (struct ks_entry *e = st->buckets[b]; e; e = e->next)
			if (e->doc && e->owner == owner && e->gen != gen && !ks_delete(st, e))
				n++;
	pthread_mutex_unlock(&st->lock);
	return n;
}

size_t kube_store_count(struct kube_store *st, uint32_t owner)
{
	size_t n = 0;

	pthread_mutex_lock(&st->lock);
	for (size_t b = 0; b < st->n_buckets; b++)
		for (struct ks_entry *e = st->buckets[b]; e; e = e->next)
			n += e->doc && e->owner == owner;
	pthread_mutex_unlock(&st->lock);
	return n;
}

int kube_store_take(struct kube_store *st, struct kube_change **out, size_t *n, uint64_t *since_ns)
{
	struct kube_change *c;
	int ret = 0;

	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&st->lock);
	if (since_ns)
		*since_ns = st->dirty_since_ns;
	if (!st->n_dirty)
		goto out;
	c = calloc(st->n_dirty, sizeof(*c));
	if (!c) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < st->n_dirty; i++) {
		struct ks_entry *e = st->dirty[i];

		c[i].doc = kube_doc_get(e->doc);
		e->dirty = false;
		if (e->doc) {
			c[i].name = strdup(e->name);
		} else {
			/* deleted: the entry goes, its name moves to the change */
			*ks_slot(st, e->name, e->hash) = e->next;
			st->n--;
			c[i].name = e->own;
			e->own = NULL;
			ks_entry_free(e);
		}
		if (!c[i].name) {
			kube_changes_free(c, i + 1);
			/* what is left stays recorded for the next take */
			memmove(st->dirty, st->dirty + i + 1, (st->n_dirty - i - 1) * sizeof(*st->dirty));
			st->n_dirty -= i + 1;
			ret = -ENOMEM;
			goto out;
		}
	}
	*out = c;
	*n = st->n_dirty;
	st->n_dirty = 0;
out:
	pthread_mutex_unlock(&st->lock);
	return ret;
}

void kube_changes_free(struct kube_change *c, size_t n)
{
	for (size_t i = 0; c && i < n; i++) {
		free(c[i].name);
		kube_doc_put(c[i].doc);
	}
	free(c);
}

static int ks_doc_cmp(const void *a, const void *b)
{
	return strcmp((*(struct kube_doc *const *)a)->name, (*(struct kube_doc *const *)b)->name);
}

int kube_store_snapshot(struct kube_store *st, struct kube_doc ***out, size_t *n)
{
	struct kube_doc **d;
	size_t k = 0;

	pthread_mutex_lock(&st->lock);
	d = malloc((st->n + 1) * sizeof(*d));
	if (!d) {
		pthread_mutex_unlock(&st->lock);
		return -ENOMEM;
	}
	for (size_t b = 0; b < st->n_buckets; b++)
		for (struct ks_entry *e = st->buckets[b]; e; e = e->next)
			if (e->doc)
				d[k++] = kube_doc_get(e->doc);
	pthread_mutex_unlock(&st->lock);
	qsort(d, k, sizeof(*d), ks_doc_cmp);
	*out = d;
	*n = k;
	return 0;
}

void kube_docs_free(struct kube_doc **d, size_t n)
{
	for (size_t i = 0; d && i < n; i++)
		kube_doc_put(d[i]);
	free(d);
}

struct kube_doc *kube_store_get(struct kube_store *st, const char *name)
{
	struct ks_entry *e;
	struct kube_doc *d;

	pthread_mutex_lock(&st->lock);
	e = *ks_slot(st, name, ks_hash(name));
	d = e ? kube_doc_get(e->doc) : NULL;
	pthread_mutex_unlock(&st->lock);
	return d;
}
