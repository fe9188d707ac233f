// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * YAML walker: typed access to libyaml document nodes with diagnostics at
 * the node's position. libyaml marks are 0-based; diagnostics are 1-based.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy_int.h"

const char *pol_domain(const struct pol_set *set)
{
	return set->domain && set->domain[0] ? set->domain : POL_DOMAIN_DEFAULT;
}

int pol_diag_add(struct pol_set *set, enum pol_diag_level level,
		 const struct pol_loc *loc, const char *fmt, ...)
{
	struct pol_diag *d;
	va_list ap;

	d = realloc(set->diags, (set->n_diags + 1) * sizeof(*d));
	if (!d)
		return -ENOMEM;
	set->diags = d;
	d = &set->diags[set->n_diags++];
	memset(d, 0, sizeof(*d));
	d->level = level;
	if (loc)
		d->loc = *loc;
	va_start(ap, fmt);
	vsnprintf(d->msg, sizeof(d->msg), fmt, ap);
	va_end(ap);
	if (level == POL_DIAG_ERROR)
		set->n_errors++;
	else if (level == POL_DIAG_WARNING)
		set->n_warnings++;
	return 0;
}

struct pol_loc pol_loc_of(const struct pol_walk *w, const yaml_node_t *n)
{
	struct pol_loc loc = { .file = w->file };

	if (n && !w->no_marks) {
		loc.line = w->line_base + n->start_mark.line + 1;
		loc.col = n->start_mark.column + 1;
	}
	return loc;
}

void pol_diag_at(struct pol_walk *w, enum pol_diag_level level,
		 const yaml_node_t *n, const char *fmt, ...)
{
	struct pol_loc loc = pol_loc_of(w, n);
	char msg[sizeof(((struct pol_diag *)0)->msg)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (pol_diag_add(w->set, level, &loc, "%s", msg))
		w->oom = true;
}

yaml_node_t *pol_node(const struct pol_walk *w, int idx)
{
	return yaml_document_get_node(w->doc, idx);
}

static const char *scalar(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

bool pol_is_null(const yaml_node_t *n)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };

	if (!n)
		return true;
	if (n->type != YAML_SCALAR_NODE ||
	    n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
		if (strcmp(scalar(n), nulls[i]) == 0)
			return true;
	return false;
}

static bool is_plain(const yaml_node_t *n)
{
	return n->type == YAML_SCALAR_NODE &&
	       n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

/* Decimal integer as YAML/JSON write it; no octal/hex forms. */
static bool parse_int(const char *s, int64_t *out)
{
	char *end;
	long long v;

	if (!*s || (!((*s >= '0' && *s <= '9') || *s == '-' || *s == '+')))
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || end == s)
		return false;
	*out = v;
	return true;
}

const char *pol_type_name(const yaml_node_t *n)
{
	int64_t v;

	if (!n || pol_is_null(n))
		return "null";
	switch (n->type) {
	case YAML_MAPPING_NODE:
		return "a mapping";
	case YAML_SEQUENCE_NODE:
		return "a list";
	case YAML_SCALAR_NODE:
		if (is_plain(n) && parse_int(scalar(n), &v))
			return "an integer";
		return "a string";
	default:
		return "nothing";
	}
}

yaml_node_t *pol_get_key(const struct pol_walk *w, const yaml_node_t *map,
			 const char *key)
{
	yaml_node_pair_t *p;

	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (p = map->data.mapping.pairs.start;
	     p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *k = pol_node(w, p->key);

		if (k && k->type == YAML_SCALAR_NODE && strcmp(scalar(k), key) == 0)
			return k;
	}
	return NULL;
}

yaml_node_t *pol_get(const struct pol_walk *w, const yaml_node_t *map,
		     const char *key)
{
	yaml_node_pair_t *p;

	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (p = map->data.mapping.pairs.start;
	     p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *k = pol_node(w, p->key);

		if (k && k->type == YAML_SCALAR_NODE && strcmp(scalar(k), key) == 0) {
			yaml_node_t *v = pol_node(w, p->value);

			return pol_is_null(v) ? NULL : v;
		}
	}
	return NULL;
}

size_t pol_seq_len(const yaml_node_t *n)
{
	if (!n || n->type != YAML_SEQUENCE_NODE)
		return 0;
	return n->data.sequence.items.top - n->data.sequence.items.start;
}

yaml_node_t *pol_seq_at(const struct pol_walk *w, const yaml_node_t *n,
			size_t i)
{
	if (i >= pol_seq_len(n))
		return NULL;
	return pol_node(w, n->data.sequence.items.start[i]);
}

/*
 * Edit distance with adjacent transpositions ("nmae" is 1 from "name"),
 * capped: only used to recognise a typo of a known key.
 */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), pp[64], prev[64], cur[64];

	if (la >= 63 || lb >= 63)
		return 99;
	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
			size_t del = prev[j] + 1, ins = cur[j - 1] + 1;

			cur[j] = sub < del ? (sub < ins ? sub : ins) :
					     (del < ins ? del : ins);
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
			    a[i - 2] == b[j - 1] && pp[j - 2] + 1 < cur[j])
				cur[j] = pp[j - 2] + 1;
		}
		memcpy(pp, prev, (lb + 1) * sizeof(prev[0]));
		memcpy(prev, cur, (lb + 1) * sizeof(prev[0]));
	}
	return prev[lb];
}

/* A typo of known: one edit for short keys, two for longer ones. */
static bool is_typo_of(const char *key, const char *known)
{
	return edit_distance(key, known) <= (strlen(known) < 6 ? 1u : 2u);
}

static void pol_mark_bad_map(struct pol_walk *w, const yaml_node_t *map)
{
	if (w->n_bad_maps && w->bad_maps[w->n_bad_maps - 1] == map)
		return;
	if (w->n_bad_maps == w->cap_bad_maps) {
		size_t cap = w->cap_bad_maps ? 2 * w->cap_bad_maps : 8;
		const yaml_node_t **m = realloc(w->bad_maps, cap * sizeof(*m));

		if (!m) {
			w->oom = true;
			return;
		}
		w->bad_maps = m;
		w->cap_bad_maps = cap;
	}
	w->bad_maps[w->n_bad_maps++] = map;
}

void pol_diag_missing(struct pol_walk *w, const yaml_node_t *map,
		      const yaml_node_t *at, const char *fmt, ...)
{
	char msg[sizeof(((struct pol_diag *)0)->msg)];
	va_list ap;

	for (size_t i = 0; i < w->n_bad_maps; i++)
		if (w->bad_maps[i] == map)
			return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pol_diag_at(w, POL_DIAG_ERROR, at ? at : map, "%s", msg);
}

/* read: NULL = strict; else only a typo of one of these is an error. */
static int check_keys(struct pol_walk *w, const yaml_node_t *map, const char *path,
		      const char *const *allowed, const char *const *read)
{
	yaml_node_pair_t *p, *q;
	int errs = 0;

	if (!map || map->type != YAML_MAPPING_NODE)
		return 0;
	for (p = map->data.mapping.pairs.start;
	     p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *k = pol_node(w, p->key);
		const char *best = NULL;
		size_t best_d = 3;
		bool ok = false;

		if (!k || k->type != YAML_SCALAR_NODE) {
			pol_diag_at(w, POL_DIAG_ERROR, k,
				    "%s: keys must be strings", path);
			errs++;
			continue;
		}
		for (q = map->data.mapping.pairs.start; q < p; q++) {
			yaml_node_t *k2 = pol_node(w, q->key);

			if (k2 && k2->type == YAML_SCALAR_NODE &&
			    strcmp(scalar(k2), scalar(k)) == 0) {
				pol_diag_at(w, POL_DIAG_ERROR, k,
					    "duplicate field \"%s\" in %s",
					    scalar(k), path);
				errs++;
				break;
			}
		}
		for (const char *const *a = allowed; *a && !ok; a++)
			ok = strcmp(*a, scalar(k)) == 0;
		for (const char *const *a = read ? read : allowed; *a && !ok; a++) {
			size_t d = edit_distance(*a, scalar(k));

			if (d < best_d && (!read || is_typo_of(scalar(k), *a))) {
				best_d = d;
				best = *a;
			}
		}
		if (ok || (read && !best))
			continue;
		errs++;
		pol_mark_bad_map(w, map);
		if (best)
			pol_diag_at(w, POL_DIAG_ERROR, k,
				    "unknown field \"%s\" in %s (typo? did you mean \"%s\")",
				    scalar(k), path, best);
		else
			pol_diag_at(w, POL_DIAG_ERROR, k,
				    "unknown field \"%s\" in %s (typo?)",
				    scalar(k), path);
	}
	return errs;
}

int pol_check_keys(struct pol_walk *w, const yaml_node_t *map,
		   const char *path, const char *const *allowed)
{
	return check_keys(w, map, path, allowed, NULL);
}

int pol_check_typos(struct pol_walk *w, const yaml_node_t *map,
		    const char *path, const char *const *known,
		    const char *const *read)
{
	return check_keys(w, map, path, known, read);
}

static bool want(struct pol_walk *w, const yaml_node_t *n, const char *path,
		 yaml_node_type_t type, const char *what)
{
	if (n && n->type == type && !(type == YAML_SCALAR_NODE && pol_is_null(n)))
		return true;
	pol_diag_at(w, POL_DIAG_ERROR, n, "%s: expected %s, got %s", path, what,
		    pol_type_name(n));
	return false;
}

bool pol_want_map(struct pol_walk *w, const yaml_node_t *n, const char *path)
{
	return want(w, n, path, YAML_MAPPING_NODE, "a mapping");
}

bool pol_want_seq(struct pol_walk *w, const yaml_node_t *n, const char *path)
{
	return want(w, n, path, YAML_SEQUENCE_NODE, "a list");
}

bool pol_want_scalar(struct pol_walk *w, const yaml_node_t *n,
		     const char *path)
{
	return want(w, n, path, YAML_SCALAR_NODE, "a string");
}

char *pol_strdup(struct pol_walk *w, const char *s)
{
	char *d = strdup(s ? s : "");

	if (!d)
		w->oom = true;
	return d;
}

void *pol_grow(struct pol_walk *w, void *arr_ptr, size_t *n, size_t sz)
{
	void **arr = arr_ptr;
	char *p = realloc(*arr, (*n + 1) * sz);

	if (!p) {
		w->oom = true;
		return NULL;
	}
	*arr = p;
	memset(p + *n * sz, 0, sz);
	return p + (*n)++ * sz;
}

void pol_labels_free(struct pol_labels *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].key);
		free(l->v[i].value);
	}
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

void pol_strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

int pol_val_str(struct pol_walk *w, const yaml_node_t *n, const char *path,
		char **out)
{
	char *s;

	if (!pol_want_scalar(w, n, path))
		return -EINVAL;
	s = pol_strdup(w, scalar(n));
	if (!s)
		return -ENOMEM;
	free(*out);
	*out = s;
	return 0;
}

int pol_val_int(struct pol_walk *w, const yaml_node_t *n, const char *path,
		int64_t min, int64_t max, int64_t *out)
{
	int64_t v;

	/* Kubernetes rejects "80" for an int; protojson (Istio) accepts it. */
	if (!n || n->type != YAML_SCALAR_NODE || pol_is_null(n) ||
	    !(is_plain(n) || w->istio) || !parse_int(scalar(n), &v)) {
		if (n && n->type == YAML_SCALAR_NODE && !pol_is_null(n))
			pol_diag_at(w, POL_DIAG_ERROR, n,
				    "%s: expected an integer, got %s\"%s\"",
				    path, is_plain(n) ? "" : "string ", scalar(n));
		else
			pol_diag_at(w, POL_DIAG_ERROR, n,
				    "%s: expected an integer, got %s", path,
				    pol_type_name(n));
		return -EINVAL;
	}
	if (v < min || v > max) {
		pol_diag_at(w, POL_DIAG_ERROR, n,
			    "%s: %lld out of range [%lld, %lld]", path,
			    (long long)v, (long long)min, (long long)max);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

int pol_val_bool(struct pol_walk *w, const yaml_node_t *n, const char *path,
		 bool *out)
{
	static const char *const t[] = { "true", "True", "TRUE" };
	static const char *const f[] = { "false", "False", "FALSE" };

	if (n && is_plain(n)) {
		for (size_t i = 0; i < 3; i++) {
			if (strcmp(scalar(n), t[i]) == 0) {
				*out = true;
				return 0;
			}
			if (strcmp(scalar(n), f[i]) == 0) {
				*out = false;
				return 0;
			}
		}
	}
	if (n && n->type == YAML_SCALAR_NODE && !pol_is_null(n))
		pol_diag_at(w, POL_DIAG_ERROR, n,
			    "%s: expected true or false, got \"%s\"", path,
			    scalar(n));
	else
		pol_diag_at(w, POL_DIAG_ERROR, n,
			    "%s: expected true or false, got %s", path,
			    pol_type_name(n));
	return -EINVAL;
}

int pol_val_double(struct pol_walk *w, const yaml_node_t *n, const char *path,
		   double min, double max, double *out)
{
	char *end;
	double v;

	if (!n || n->type != YAML_SCALAR_NODE || pol_is_null(n) ||
	    !(is_plain(n) || w->istio)) {
		pol_diag_at(w, POL_DIAG_ERROR, n, "%s: expected a number, got %s",
			    path, pol_type_name(n));
		return -EINVAL;
	}
	errno = 0;
	v = strtod(scalar(n), &end);
	if (errno || *end || end == scalar(n) || isnan(v)) {
		pol_diag_at(w, POL_DIAG_ERROR, n,
			    "%s: expected a number, got \"%s\"", path, scalar(n));
		return -EINVAL;
	}
	if (v < min || v > max) {
		pol_diag_at(w, POL_DIAG_ERROR, n, "%s: %g out of range [%g, %g]",
			    path, v, min, max);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

int pol_val_duration(struct pol_walk *w, const yaml_node_t *n,
		     const char *path, uint64_t *ns)
{
	static const struct { const char *u; double ns; } units[] = {
		{ "ns", 1 }, { "us", 1e3 }, { "\xc2\xb5s", 1e3 }, { "ms", 1e6 },
		{ "s", 1e9 }, { "m", 60e9 }, { "h", 3600e9 },
	};
	const char *s;
	double total = 0;

	if (!pol_want_scalar(w, n, path))
		return -EINVAL;
	s = scalar(n);
	if (strcmp(s, "0") == 0) {
		*ns = 0;
		return 0;
	}
	if (!*s)
		goto bad;
	while (*s) {
		char *end;
		double v = strtod(s, &end);
		size_t best = 0, best_len = 0;

		if (end == s || v < 0 || *s == '+' || *s == '-')
			goto bad;
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			size_t l = strlen(units[i].u);

			if (strncmp(end, units[i].u, l) == 0 && l > best_len) {
				best = i;
				best_len = l;
			}
		}
		if (!best_len)
			goto bad;
		total += v * units[best].ns;
		s = end + best_len;
	}
	*ns = (uint64_t)total;
	return 0;
bad:
	pol_diag_at(w, POL_DIAG_ERROR, n,
		    "%s: invalid duration \"%s\" (want e.g. \"10s\", \"250ms\", \"1h30m\")",
		    path, scalar(n));
	return -EINVAL;
}

int pol_val_labels(struct pol_walk *w, const yaml_node_t *n, const char *path,
		   struct pol_labels *out)
{
	yaml_node_pair_t *p;
	int ret = 0;

	if (!pol_want_map(w, n, path))
		return -EINVAL;
	pol_labels_free(out);
	for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = pol_node(w, p->key), *v = pol_node(w, p->value);
		struct pol_kv *kv;

		if (!k || k->type != YAML_SCALAR_NODE || !v ||
		    v->type != YAML_SCALAR_NODE) {
			pol_diag_at(w, POL_DIAG_ERROR, v ? v : k,
				    "%s: label keys and values must be strings, got %s",
				    path, pol_type_name(v));
			ret = -EINVAL;
			continue;
		}
		kv = pol_grow(w, &out->v, &out->n, sizeof(*kv));
		if (!kv)
			return -ENOMEM;
		kv->key = pol_strdup(w, scalar(k));
		kv->value = pol_strdup(w, pol_is_null(v) ? "" : scalar(v));
		if (!kv->key || !kv->value)
			return -ENOMEM;
	}
	return ret;
}

int pol_val_strlist(struct pol_walk *w, const yaml_node_t *n, const char *path,
		    char ***out, size_t *n_out)
{
	char p[POL_PATH_MAX];
	int ret = 0;

	if (!pol_want_seq(w, n, path))
		return -EINVAL;
	for (size_t i = 0; i < pol_seq_len(n); i++) {
		yaml_node_t *it = pol_seq_at(w, n, i);
		char **slot;

		pol_pathf(p, "%s[%zu]", path, i);
		if (!pol_want_scalar(w, it, p)) {
			ret = -EINVAL;
			continue;
		}
		slot = pol_grow(w, out, n_out, sizeof(*slot));
		if (!slot || !(*slot = pol_strdup(w, scalar(it))))
			return -ENOMEM;
	}
	return ret;
}

int pol_val_ipv4(struct pol_walk *w, const yaml_node_t *n, const char *path,
		 uint32_t *out)
{
	struct in_addr a;

	if (!pol_want_scalar(w, n, path))
		return -EINVAL;
	if (inet_pton(AF_INET, scalar(n), &a) != 1) {
		pol_diag_at(w, POL_DIAG_ERROR, n,
			    "%s: \"%s\" is not an IPv4 address", path, scalar(n));
		return -EINVAL;
	}
	*out = a.s_addr;
	return 0;
}

int pol_val_proto(struct pol_walk *w, const yaml_node_t *n, const char *path,
		  uint8_t *out)
{
	if (!pol_want_scalar(w, n, path))
		return -EINVAL;
	if (strcmp(scalar(n), "TCP") == 0)
		*out = IPPROTO_TCP;
	else if (strcmp(scalar(n), "UDP") == 0)
		*out = IPPROTO_UDP;
	else if (strcmp(scalar(n), "SCTP") == 0)
		*out = IPPROTO_SCTP;
	else {
		pol_diag_at(w, POL_DIAG_ERROR, n,
			    "%s: unknown protocol \"%s\" (want TCP, UDP or SCTP)",
			    path, scalar(n));
		return -EINVAL;
	}
	return 0;
}

/* "path.key" into buf (POL_PATH_MAX, cut as snprintf would): once per field read, no printf */
static void join(char *buf, const char *path, const char *key)
{
	size_t pl = strnlen(path, POL_PATH_MAX - 1), kl;

	memcpy(buf, path, pl);
	if (pl < POL_PATH_MAX - 1)
		buf[pl++] = '.';
	kl = strnlen(key, POL_PATH_MAX - 1 - pl);
	memcpy(buf + pl, key, kl);
	buf[pl + kl] = '\0';
}

void pol_pathf(char *buf, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, POL_PATH_MAX, fmt, ap);
	va_end(ap);
}

int pol_get_str(struct pol_walk *w, const yaml_node_t *map, const char *key,
		const char *path, char **out)
{
	yaml_node_t *v = pol_get(w, map, key);
	char p[POL_PATH_MAX];

	if (!v)
		return 0;
	join(p, path, key);
	return pol_val_str(w, v, p, out) ? 0 : 1;
}

yaml_node_t *pol_get_scalar(struct pol_walk *w, const yaml_node_t *map,
			    const char *key, const char *path)
{
	yaml_node_t *v = pol_get(w, map, key);
	char p[POL_PATH_MAX];

	if (!v)
		return NULL;
	join(p, path, key);
	return pol_want_scalar(w, v, p) ? v : NULL;
}

int pol_get_int(struct pol_walk *w, const yaml_node_t *map, const char *key,
		const char *path, int64_t min, int64_t max, int64_t *out)
{
	yaml_node_t *v = pol_get(w, map, key);
	char p[POL_PATH_MAX];

	if (!v)
		return 0;
	join(p, path, key);
	return pol_val_int(w, v, p, min, max, out) ? 0 : 1;
}

int pol_get_bool(struct pol_walk *w, const yaml_node_t *map, const char *key,
		 const char *path, bool *out)
{
	yaml_node_t *v = pol_get(w, map, key);
	char p[POL_PATH_MAX];

	if (!v)
		return 0;
	join(p, path, key);
	return pol_val_bool(w, v, p, out) ? 0 : 1;
}

int pol_get_duration(struct pol_walk *w, const yaml_node_t *map,
		     const char *key, const char *path)
{
	yaml_node_t *v = pol_get(w, map, key);
	char p[POL_PATH_MAX];
	uint64_t ns;

	if (!v)
		return 0;
	join(p, path, key);
	return pol_val_duration(w, v, p, &ns) ? 0 : 1;
}
