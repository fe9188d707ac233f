/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Internal to user/policy: the YAML walker shared by the per-kind parsers.
 *
 * A struct pol_walk is the state of one object being parsed. Every helper
 * reports problems as diagnostics at the node's libyaml mark (+1) and
 * returns 0 / -EINVAL (bad input, diagnostic added) / -ENOMEM. Getters
 * treat a null value (`key:`, `~`, `null`) like an absent key, as
 * Kubernetes' JSON decoding does.
 */
#ifndef SOCKMESH_POLICY_INT_H
#define SOCKMESH_POLICY_INT_H

#include <jansson.h>
#include <stdarg.h>
#include <yaml.h>

#include "policy/policy.h"

struct pol_walk {
	struct pol_set *set;
	yaml_document_t *doc;
	const char *file;	/* owned by set->files */
	const char *kind;	/* "DestinationRule", for messages */
	const char *name;	/* object name, for messages ("" until known) */
	bool istio;		/* protojson rules: quoted integers accepted */
	bool oom;		/* an allocation failed: load returns -ENOMEM */
	bool no_marks;		/* a JSON tree: no line and column (pol_load_json) */
	uint32_t line_base;	/* lines before the buffer (one document of a file) */
	/* Mappings of the current document with an unknown-key error: a
	 * required key missing there is most likely the typo (one error). */
	const yaml_node_t **bad_maps;
	size_t n_bad_maps, cap_bad_maps;
};

/*
 * Parse buf as YAML documents of file (a string the set owns) into set;
 * line_base and docno_base place it inside a larger file. Used by
 * cache.c to parse one document on its own.
 */
int pol_load_buffer_at(struct pol_set *set, const char *file, const char *buf,
		       size_t len, uint32_t line_base, int docno_base);

/*
 * Load one object from its JSON tree (the Kubernetes API's objects): the
 * per-kind parsers walk it as the YAML document of its text, with the
 * same field paths and messages, without line and column.
 */
int pol_load_json(struct pol_set *set, const char *file, const json_t *root);

/*
 * The object kinds of struct pol_set (arrays whose elements start with
 * their struct pol_meta), for code that walks every kind: duplicate
 * checks, the document cache's copies. policy.c asserts it is complete.
 */
struct pol_set_kind {
	const char *kind;
	size_t off_arr, off_n, stride;
};
extern const struct pol_set_kind pol_set_kinds[];
extern const size_t pol_n_set_kinds;

/* cache.c: load buf through set->cache (documents parsed only when new). */
int pol_cache_load(struct pol_set *set, const char *file, const char *buf, size_t len);
int pol_add_file(struct pol_set *set, const char *name, const char **out);

#define POL_PATH_MAX 256

/* Format a field path into buf (POL_PATH_MAX bytes); truncation is fine. */
void pol_pathf(char *buf, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* ---- diagnostics ---- */
int pol_diag_add(struct pol_set *set, enum pol_diag_level level,
		 const struct pol_loc *loc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void pol_diag_at(struct pol_walk *w, enum pol_diag_level level,
		 const yaml_node_t *n, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
struct pol_loc pol_loc_of(const struct pol_walk *w, const yaml_node_t *n);
const char *pol_domain(const struct pol_set *set);

/* ---- nodes ---- */
yaml_node_t *pol_node(const struct pol_walk *w, int idx);
bool pol_is_null(const yaml_node_t *n);
const char *pol_type_name(const yaml_node_t *n);
/* Value of key in map, NULL when absent, null, or map is not a mapping. */
yaml_node_t *pol_get(const struct pol_walk *w, const yaml_node_t *map,
		     const char *key);
/* Key node of key in map (for locations), NULL when absent. */
yaml_node_t *pol_get_key(const struct pol_walk *w, const yaml_node_t *map,
			 const char *key);
/* Number of items of a sequence node. */
size_t pol_seq_len(const yaml_node_t *n);
yaml_node_t *pol_seq_at(const struct pol_walk *w, const yaml_node_t *n,
			size_t i);

/*
 * Strict key check: error for every key not in allowed (NULL-terminated)
 * and for duplicate keys. Returns the number of errors added.
 */
int pol_check_keys(struct pol_walk *w, const yaml_node_t *map,
		   const char *path, const char *const *allowed);

/*
 * Lenient key check for upstream schemas that grow (ObjectMeta, Service
 * spec): a key not in known is an error only when it is a typo of a key in
 * read (what sockmesh uses: "selektor", "nmae"); anything else may be a
 * field of a newer Kubernetes and passes. Duplicate keys are errors.
 */
int pol_check_typos(struct pol_walk *w, const yaml_node_t *map,
		    const char *path, const char *const *known,
		    const char *const *read);

/*
 * Error for a required key or value missing from map, reported at node at
 * (map when NULL); nothing when map has an unknown key already reported by
 * pol_check_keys(): "hots:" is one mistake, not also a missing host.
 */
void pol_diag_missing(struct pol_walk *w, const yaml_node_t *map,
		      const yaml_node_t *at, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

bool pol_want_map(struct pol_walk *w, const yaml_node_t *n, const char *path);
bool pol_want_seq(struct pol_walk *w, const yaml_node_t *n, const char *path);
bool pol_want_scalar(struct pol_walk *w, const yaml_node_t *n,
		     const char *path);

/* ---- typed values; n must not be NULL ---- */
int pol_val_str(struct pol_walk *w, const yaml_node_t *n, const char *path,
		char **out);
int pol_val_int(struct pol_walk *w, const yaml_node_t *n, const char *path,
		int64_t min, int64_t max, int64_t *out);
int pol_val_bool(struct pol_walk *w, const yaml_node_t *n, const char *path,
		 bool *out);
int pol_val_double(struct pol_walk *w, const yaml_node_t *n, const char *path,
		   double min, double max, double *out);
/* Go duration ("1h2m3.5s", "100ms"); result in ns. */
int pol_val_duration(struct pol_walk *w, const yaml_node_t *n,
		     const char *path, uint64_t *ns);
int pol_val_labels(struct pol_walk *w, const yaml_node_t *n, const char *path,
		   struct pol_labels *out);
int pol_val_strlist(struct pol_walk *w, const yaml_node_t *n, const char *path,
		    char ***out, size_t *n_out);
int pol_val_ipv4(struct pol_walk *w, const yaml_node_t *n, const char *path,
		 uint32_t *out);
/* Protocol name TCP/UDP/SCTP -> IPPROTO_*. */
int pol_val_proto(struct pol_walk *w, const yaml_node_t *n, const char *path,
		  uint8_t *out);

/* Key-based shorthands: return 1 when the key was present and valid. */
int pol_get_str(struct pol_walk *w, const yaml_node_t *map, const char *key,
		const char *path, char **out);
/* Checks that key, when present, is a scalar; returns it or NULL. */
yaml_node_t *pol_get_scalar(struct pol_walk *w, const yaml_node_t *map,
			    const char *key, const char *path);
int pol_get_int(struct pol_walk *w, const yaml_node_t *map, const char *key,
		const char *path, int64_t min, int64_t max, int64_t *out);
int pol_get_bool(struct pol_walk *w, const yaml_node_t *map, const char *key,
		 const char *path, bool *out);
int pol_get_duration(struct pol_walk *w, const yaml_node_t *map,
		     const char *key, const char *path);

/* ---- memory ---- */
char *pol_strdup(struct pol_walk *w, const char *s);
/* Append one zeroed element to *arr (*n elements of size sz). */
void *pol_grow(struct pol_walk *w, void *arr_ptr, size_t *n, size_t sz);
void pol_labels_free(struct pol_labels *l);
void pol_strv_free(char **v, size_t n);

/* ---- per-kind parsers (root: the object mapping; kind_key: its kind key) */
void pol_parse_meta(struct pol_walk *w, const yaml_node_t *root,
		    const yaml_node_t *kind_key, struct pol_meta *m);
void pol_parse_service(struct pol_walk *w, const yaml_node_t *root,
		       const yaml_node_t *kind_key);
void pol_parse_pod(struct pol_walk *w, const yaml_node_t *root,
		   const yaml_node_t *kind_key);
void pol_parse_eps(struct pol_walk *w, const yaml_node_t *root,
		   const yaml_node_t *kind_key);
void pol_parse_namespace(struct pol_walk *w, const yaml_node_t *root,
			 const yaml_node_t *kind_key);
void pol_parse_dr(struct pol_walk *w, const yaml_node_t *root,
		  const yaml_node_t *kind_key);
void pol_parse_vs(struct pol_walk *w, const yaml_node_t *root,
		  const yaml_node_t *kind_key);
void pol_parse_gateway(struct pol_walk *w, const yaml_node_t *root,
		       const yaml_node_t *kind_key);

/* ---- frees ---- */
void pol_meta_free(struct pol_meta *m);
void pol_service_free(struct pol_service *s);
void pol_pod_free(struct pol_pod *p);
void pol_eps_free(struct pol_eps *e);
void pol_dr_free(struct pol_dr *d);
void pol_vs_free(struct pol_vs *v);
void pol_gateway_free(struct pol_gateway *g);

/* index.c: the slice array changes under a built index (policy_set_add_eps) */
int policy_index_eps_reserve(struct pol_set *set);
void policy_index_eps_added(struct pol_set *set, uintptr_t old_base, size_t at);
void policy_index_eps_removing(struct pol_set *set, size_t at);
/* from was swapped for to at its place in set->eps (policy_set_swap_eps) */
void policy_index_eps_swapped(struct pol_set *set, const struct pol_eps *from,
			      const struct pol_eps *to);
/* ... and the Service array (policy_set_add_svc) */
int policy_index_svcs_reserve(struct pol_set *set);
void policy_index_svc_added(struct pol_set *set, uintptr_t old_base, size_t at);
void policy_index_svc_removing(struct pol_set *set, size_t at);
/* ... and the Pod array (policy_set_add_pod) */
int policy_index_pods_reserve(struct pol_set *set);
void policy_index_pod_added(struct pol_set *set, uintptr_t old_base, size_t at);
void policy_index_pod_removing(struct pol_set *set, size_t at);

#endif /* SOCKMESH_POLICY_INT_H */
