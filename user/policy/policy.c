// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * policy: set lifetime, file/directory/buffer loading, document and kind
 * dispatch, Istio host resolution and small label helpers.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "policy/policy_int.h"

const struct pol_set_kind pol_set_kinds[] = {
#define K(kind, arr, n, type) { kind, offsetof(struct pol_set, arr), \
				offsetof(struct pol_set, n), sizeof(type) }
	K("Service", svcs, n_svcs, struct pol_service),
	K("Pod", pods, n_pods, struct pol_pod),
	K("EndpointSlice", eps, n_eps, struct pol_eps),
	K("DestinationRule", drs, n_drs, struct pol_dr),
	K("VirtualService", vss, n_vss, struct pol_vs),
	K("Gateway", gws, n_gws, struct pol_gateway),
	K("Namespace", nss, n_nss, struct pol_namespace),
#undef K
};
const size_t pol_n_set_kinds = sizeof(pol_set_kinds) / sizeof(pol_set_kinds[0]);

/* A kind added to struct pol_set must be added to pol_set_kinds[] too. */
_Static_assert(offsetof(struct pol_set, diags) ==
	       sizeof(pol_set_kinds) / sizeof(pol_set_kinds[0]) * (sizeof(void *) + sizeof(size_t)),
	       "struct pol_set has a kind pol_set_kinds[] does not list");
_Static_assert(offsetof(struct pol_service, meta) == 0, "meta first");
_Static_assert(offsetof(struct pol_pod, meta) == 0, "meta first");
_Static_assert(offsetof(struct pol_eps, meta) == 0, "meta first");
_Static_assert(offsetof(struct pol_dr, meta) == 0, "meta first");
_Static_assert(offsetof(struct pol_vs, meta) == 0, "meta first");
_Static_assert(offsetof(struct pol_gateway, meta) == 0, "meta first");
_Static_assert(offsetof(struct pol_namespace, meta) == 0, "meta first");

void policy_set_init(struct pol_set *set)
{
	memset(set, 0, sizeof(*set));
	set->domain = strdup(POL_DOMAIN_DEFAULT);
}

void pol_meta_free(struct pol_meta *m)
{
	free(m->name);
	free(m->ns);
	pol_labels_free(&m->labels);
	pol_labels_free(&m->annotations);
}

static void set_free_objects(struct pol_set *set)
{
	for (size_t i = 0; i < set->n_svcs; i++)
		pol_service_free(&set->svcs[i]);
	for (size_t i = 0; i < set->n_pods; i++)
		pol_pod_free(&set->pods[i]);
	for (size_t i = 0; i < set->n_eps; i++)
		pol_eps_free(&set->eps[i]);
	for (size_t i = 0; i < set->n_drs; i++)
		pol_dr_free(&set->drs[i]);
	for (size_t i = 0; i < set->n_vss; i++)
		pol_vs_free(&set->vss[i]);
	for (size_t i = 0; i < set->n_gws; i++)
		pol_gateway_free(&set->gws[i]);
	for (size_t i = 0; i < set->n_nss; i++)
		pol_meta_free(&set->nss[i].meta);
}

void policy_set_free(struct pol_set *set)
{
	/* with a cache, the objects are the cache's (see policy_set_use_cache) */
	if (!set->cache)
		set_free_objects(set);
	free(set->svcs);
	free(set->pods);
	free(set->eps);
	free(set->drs);
	free(set->vss);
	free(set->gws);
	free(set->nss);
	free(set->diags);
	pol_strv_free(set->files, set->n_files);
	policy_index_free(set);
	free(set->domain);
	memset(set, 0, sizeof(*set));
}

/* ---- metadata (only name/namespace/labels/annotations read) ---- */

/* Kubernetes ObjectMeta: everything `kubectl get -o yaml` prints. */
static const char *const object_meta_keys[] = {
	"name", "generateName", "namespace", "selfLink", "uid", "resourceVersion",
	"generation", "creationTimestamp", "deletionTimestamp",
	"deletionGracePeriodSeconds", "labels", "annotations", "ownerReferences",
	"finalizers", "managedFields", "clusterName", NULL,
};
static const char *const object_meta_read[] = {
	"name", "namespace", "labels", "annotations", NULL,
};

void pol_parse_meta(struct pol_walk *w, const yaml_node_t *root,
		    const yaml_node_t *kind_key, struct pol_meta *m)
{
	char path[POL_PATH_MAX];
	yaml_node_t *md, *v;

	m->loc = pol_loc_of(w, kind_key);
	pol_pathf(path, "%s.metadata", w->kind);
	md = pol_get(w, root, "metadata");
	if (md && pol_want_map(w, md, path)) {
		pol_check_typos(w, md, path, object_meta_keys, object_meta_read);
		pol_get_str(w, md, "name", path, &m->name);
		pol_get_str(w, md, "namespace", path, &m->ns);
		if ((v = pol_get(w, md, "labels"))) {
			pol_pathf(path, "%s.metadata.labels", w->kind);
			pol_val_labels(w, v, path, &m->labels);
		}
		if ((v = pol_get(w, md, "annotations"))) {
			pol_pathf(path, "%s.metadata.annotations",
				 w->kind);
			pol_val_labels(w, v, path, &m->annotations);
		}
	}
	if (!m->name || !m->name[0]) {
		pol_diag_missing(w, md ? md : root, NULL, "%s: missing metadata.name",
				 w->kind);
		if (!m->name)
			m->name = pol_strdup(w, "");
	}
	if (!m->ns || !m->ns[0]) {
		free(m->ns);
		m->ns = pol_strdup(w, "default");
	}
	w->name = m->name ? m->name : "";
}

/* ---- kind dispatch ---- */

static const char *const istio_net_versions[] = {
	"networking.istio.io/v1", "networking.istio.io/v1beta1",
	"networking.istio.io/v1alpha3", NULL,
};
static const char *const core_v1[] = { "v1", NULL };
static const char *const discovery_v1[] = { "discovery.k8s.io/v1", NULL };

/* Top-level keys of an object, by shape. */
static const char *const spec_keys[] = {
	"apiVersion", "kind", "metadata", "spec", "status", NULL,
};
static const char *const eps_keys[] = {
	"apiVersion", "kind", "metadata", "addressType", "endpoints", "ports", NULL,
};
static const char *const list_keys[] = {
	"apiVersion", "kind", "metadata", "items", NULL,
};

static const struct kind_desc {
	const char *kind;
	const char *const *versions;
	const char *const *keys;
	bool istio;
	void (*parse)(struct pol_walk *w, const yaml_node_t *root,
		      const yaml_node_t *kind_key);
} kinds[] = {
	{ "Service", core_v1, spec_keys, false, pol_parse_service },
	{ "Pod", core_v1, spec_keys, false, pol_parse_pod },
	{ "Namespace", core_v1, spec_keys, false, pol_parse_namespace },
	{ "EndpointSlice", discovery_v1, eps_keys, false, pol_parse_eps },
	{ "DestinationRule", istio_net_versions, spec_keys, true, pol_parse_dr },
	{ "VirtualService", istio_net_versions, spec_keys, true, pol_parse_vs },
	{ "Gateway", istio_net_versions, spec_keys, true, pol_parse_gateway },
};

static bool str_ends(const char *s, const char *suffix)
{
	size_t ls = strlen(s), lx = strlen(suffix);

	return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

/* "networking.istio.io/v1" -> group length up to the slash (0 for "v1"). */
static size_t api_group_len(const char *api)
{
	const char *slash = strchr(api, '/');

	return slash ? (size_t)(slash - api) : 0;
}

static void load_object(struct pol_walk *w, const yaml_node_t *root,
			const char *where, int depth)
{
	yaml_node_t *kind_n, *api_n, *kind_key;
	const char *kind, *api;
	char group[128];

	w->kind = "object";
	w->name = "";
	if (!root || root->type != YAML_MAPPING_NODE) {
		pol_diag_at(w, POL_DIAG_ERROR, root,
			    "%s: expected a Kubernetes object (a mapping with apiVersion and kind), got %s",
			    where, pol_type_name(root));
		return;
	}
	kind_n = pol_get(w, root, "kind");
	kind_key = pol_get_key(w, root, "kind");
	api_n = pol_get(w, root, "apiVersion");
	if (!kind_n || !pol_want_scalar(w, kind_n, "kind")) {
		if (!kind_n)
			pol_diag_at(w, POL_DIAG_ERROR, root, "%s: missing kind",
				    where);
		return;
	}
	kind = (const char *)kind_n->data.scalar.value;

	/* kubectl get -o yaml prints "kind: List"; the API server "ServiceList". */
	if (str_ends(kind, "List") && pol_get_key(w, root, "items")) {
		yaml_node_t *items = pol_get(w, root, "items");
		char sub[POL_PATH_MAX];

		if (depth > 4) {
			pol_diag_at(w, POL_DIAG_ERROR, kind_n,
				    "%s: Lists nested too deeply", where);
			return;
		}
		pol_check_keys(w, root, kind, list_keys);
		if (!items)
			return;
		if (!pol_want_seq(w, items, "List.items"))
			return;
		for (size_t i = 0; i < pol_seq_len(items); i++) {
			pol_pathf(sub, "%s.items[%zu]", where, i);
			load_object(w, pol_seq_at(w, items, i), sub, depth + 1);
		}
		return;
	}

	if (!api_n) {
		pol_diag_at(w, POL_DIAG_ERROR, kind_key, "%s: missing apiVersion",
			    kind);
		return;
	}
	if (!pol_want_scalar(w, api_n, "apiVersion"))
		return;
	api = (const char *)api_n->data.scalar.value;
	snprintf(group, sizeof(group), "%.*s", (int)api_group_len(api), api);

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		const struct kind_desc *k = &kinds[i];

		if (strcmp(kind, k->kind) != 0)
			continue;
		for (const char *const *v = k->versions; *v; v++) {
			if (strcmp(*v, api) == 0) {
				w->kind = k->kind;
				w->istio = k->istio;
				pol_check_keys(w, root, k->kind, k->keys);
				k->parse(w, root, kind_key);
				w->istio = false;
				return;
			}
		}
		/* Same kind name in another API group (Gateway API's Gateway). */
		if (strcmp(group, "gateway.networking.k8s.io") == 0)
			break;
		{
			char want[160] = "";
			size_t off = 0;

			for (const char *const *v = k->versions; *v; v++)
				off += snprintf(want + off, sizeof(want) - off,
						"%s%s", v == k->versions ? "" :
						v[1] ? ", " : " or ", *v);
			pol_diag_at(w, POL_DIAG_ERROR, api_n,
				    "unsupported apiVersion \"%s\" for kind %s (want %s)",
				    api, kind, want);
		}
		return;
	}

	if (str_ends(group, ".istio.io") ||
	    strcmp(group, "gateway.networking.k8s.io") == 0)
		pol_diag_at(w, POL_DIAG_WARNING, kind_key,
			    "kind %s (%s) is not implemented by sockmesh: ignored",
			    kind, api);
	else
		pol_diag_at(w, POL_DIAG_NOTE, kind_key,
			    "skipping kind %s (not used by sockmesh)", kind);
}

int pol_add_file(struct pol_set *set, const char *name, const char **out)
{
	char **files = realloc(set->files, (set->n_files + 1) * sizeof(*files));

	if (!files)
		return -ENOMEM;
	set->files = files;
	files[set->n_files] = strdup(name);
	if (!files[set->n_files])
		return -ENOMEM;
	*out = files[set->n_files++];
	return 0;
}

int pol_load_buffer_at(struct pol_set *set, const char *file, const char *buf,
		       size_t len, uint32_t line_base, int docno_base)
{
	struct pol_walk w = {
		.set = set, .file = file, .kind = "object", .line_base = line_base,
	};
	size_t errs0 = set->n_errors;
	yaml_parser_t parser;
	int ret;

	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	for (int docno = docno_base;; docno++) {
		yaml_document_t doc;
		yaml_node_t *root;
		char where[32];

		if (!yaml_parser_load(&parser, &doc)) {
			struct pol_loc loc = {
				.file = file,
				.line = line_base + parser.problem_mark.line + 1,
				.col = parser.problem_mark.column + 1,
			};

			char ctx[160] = "";

			/* "while parsing a flow sequence": say where it began */
			if (parser.context && parser.context_mark.line != parser.problem_mark.line)
				snprintf(ctx, sizeof(ctx), " %s started at %zu:%zu", parser.context,
					 parser.context_mark.line + 1, parser.context_mark.column + 1);
			else if (parser.context)
				snprintf(ctx, sizeof(ctx), " %s", parser.context);
			if (parser.error == YAML_MEMORY_ERROR)
				w.oom = true;
			else if (pol_diag_add(set, POL_DIAG_ERROR, &loc, "YAML syntax: %s%s",
					      parser.problem ? parser.problem : "error", ctx))
				w.oom = true;
			break;
		}
		root = yaml_document_get_root_node(&doc);
		if (!root) {
			yaml_document_delete(&doc);
			break;
		}
		w.doc = &doc;
		w.n_bad_maps = 0;	/* node pointers are per document */
		if (!pol_is_null(root)) {
			snprintf(where, sizeof(where), "document %d", docno);
			load_object(&w, root, where, 0);
		}
		w.doc = NULL;
		yaml_document_delete(&doc);
	}
	yaml_parser_delete(&parser);
	free(w.bad_maps);
	if (w.oom)
		ret = -ENOMEM;
	else
		ret = set->n_errors > errs0 ? -EINVAL : 0;
	return ret;
}

/*
 * The JSON node source: a jansson tree as the YAML document the per-kind
 * parsers walk (node ids, not pointers: the node stack grows). JSON
 * strings are double-quoted scalars, numbers, booleans and null plain ones,
 * so the walkers read them as they read the same object's JSON text.
 * Returns the node id, 0 when out of memory.
 */
static int json_node(yaml_document_t *d, const json_t *j)
{
	char num[64];
	const char *s = num, *key;
	size_t len, i;
	json_t *v;
	int id, k, c;

	switch (json_typeof(j)) {
	case JSON_OBJECT:
		id = yaml_document_add_mapping(d, NULL, YAML_FLOW_MAPPING_STYLE);
		json_object_foreach((json_t *)j, key, v) {
			k = id ? yaml_document_add_scalar(d, NULL, (yaml_char_t *)key, (int)strlen(key),
							 YAML_DOUBLE_QUOTED_SCALAR_STYLE) : 0;
			c = k ? json_node(d, v) : 0;
			if (!c || !yaml_document_append_mapping_pair(d, id, k, c))
				return 0;
		}
		return id;
	case JSON_ARRAY:
		id = yaml_document_add_sequence(d, NULL, YAML_FLOW_SEQUENCE_STYLE);
		json_array_foreach(j, i, v) {
			c = id ? json_node(d, v) : 0;
			if (!c || !yaml_document_append_sequence_item(d, id, c))
				return 0;
		}
		return id;
	case JSON_STRING:
		len = json_string_length(j);
		if (len > INT_MAX)
			return 0;
		return yaml_document_add_scalar(d, NULL, (yaml_char_t *)json_string_value(j), (int)len,
						YAML_DOUBLE_QUOTED_SCALAR_STYLE);
	case JSON_INTEGER:
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(j));
		break;
	case JSON_REAL:
		/* as jansson writes it ("1.0" stays a real: not an integer field) */
		len = json_dumpb(j, num, sizeof(num) - 1, JSON_ENCODE_ANY);
		if (!len || len >= sizeof(num))
			return 0;
		num[len] = '\0';
		break;
	case JSON_TRUE:
		s = "true";
		break;
	case JSON_FALSE:
		s = "false";
		break;
	default:
		s = "null";
		break;
	}
	return yaml_document_add_scalar(d, NULL, (yaml_char_t *)s, (int)strlen(s),
					YAML_PLAIN_SCALAR_STYLE);
}

int pol_load_json(struct pol_set *set, const char *file, const json_t *root)
{
	struct pol_walk w = {
		.set = set, .file = file, .kind = "object", .no_marks = true,
	};
	size_t errs0 = set->n_errors;
	yaml_document_t doc;
	int ret = 0;

	if (!yaml_document_initialize(&doc, NULL, NULL, NULL, 1, 1))
		return -ENOMEM;
	if (!json_node(&doc, root)) {
		ret = -ENOMEM;
	} else {
		w.doc = &doc;
		load_object(&w, yaml_document_get_root_node(&doc), "document 1", 0);
		w.doc = NULL;
	}
	yaml_document_delete(&doc);
	free(w.bad_maps);
	if (!ret && w.oom)
		ret = -ENOMEM;
	return ret ?: set->n_errors > errs0 ? -EINVAL : 0;
}

static int load_buffer(struct pol_set *set, const char *file, const char *buf,
		       size_t len)
{
	if (set->cache)
		return pol_cache_load(set, file, buf, len);
	return pol_load_buffer_at(set, file, buf, len, 0, 1);
}

int policy_load_buffer(struct pol_set *set, const char *name,
		       const char *buf, size_t len)
{
	const char *file;
	int ret;

	policy_index_free(set);
	ret = pol_add_file(set, name ? name : "<buffer>", &file);
	if (ret)
		return ret;
	return load_buffer(set, file, buf, len);
}

static int file_error(struct pol_set *set, const char *file, int err)
{
	struct pol_loc loc = { .file = file };

	if (pol_diag_add(set, POL_DIAG_ERROR, &loc, "cannot read: %s",
			 strerror(err)))
		return -ENOMEM;
	return -err;
}

int policy_read_file(const char *path, char **out, size_t *out_len)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;
	FILE *f = fopen(path, "re");
	int ret = 0;

	if (!f)
		return -errno;
	for (;;) {
		size_t got;

		if (len == cap) {
			char *nb;

			cap = cap ? cap * 2 : 16384;
			nb = realloc(buf, cap);
			if (!nb) {
				ret = -ENOMEM;
				break;
			}
			buf = nb;
		}
		got = fread(buf + len, 1, cap - len, f);
		len += got;
		if (got == 0)
			break;
	}
	if (!ret && ferror(f))
		ret = -EIO;
	fclose(f);
	if (ret) {
		free(buf);
		return ret;
	}
	*out = buf;
	*out_len = len;
	return 0;
}

static int load_file(struct pol_set *set, const char *path)
{
	const char *file;
	char *buf = NULL;
	size_t len = 0;
	int ret;

	ret = pol_add_file(set, path, &file);
	if (ret)
		return ret;
	ret = policy_read_file(path, &buf, &len);
	if (ret == -ENOMEM)
		return ret;
	if (ret)
		return file_error(set, file, -ret);
	ret = load_buffer(set, file, buf, len);
	free(buf);
	return ret;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Parse the documents of dir's files (names) ahead, in parallel (cache.c). */
static int dir_prefetch(struct pol_cache *c, const char *dir, char *const *names, size_t n)
{
	char **paths = calloc(n, sizeof(*paths));
	int ret = paths ? 0 : -ENOMEM;

	for (size_t i = 0; i < n && !ret; i++)
		if (asprintf(&paths[i], "%s/%s", dir, names[i]) < 0) {
			paths[i] = NULL;
			ret = -ENOMEM;
		}
	if (!ret)
		ret = policy_cache_prefetch(c, paths, n);
	for (size_t i = 0; paths && i < n; i++)
		free(paths[i]);
	free(paths);
	return ret;
}

static int load_dir(struct pol_set *set, const char *path)
{
	char **names = NULL;
	size_t n = 0;
	struct dirent *de;
	int ret = 0;
	DIR *d;

	d = opendir(path);
	if (!d) {
		const char *file;
		int err = errno;

		ret = pol_add_file(set, path, &file);
		return ret ? ret : file_error(set, file, err);
	}
	while ((de = readdir(d))) {
		char **nn;

		if (de->d_name[0] == '.' ||
		    !(str_ends(de->d_name, ".yaml") || str_ends(de->d_name, ".yml")))
			continue;
		nn = realloc(names, (n + 1) * sizeof(*nn));
		if (!nn) {
			ret = -ENOMEM;
			break;
		}
		names = nn;
		names[n] = strdup(de->d_name);
		if (!names[n]) {
			ret = -ENOMEM;
			break;
		}
		n++;
	}
	closedir(d);
	if (!ret && !n) {
		const char *file;
		struct pol_loc loc = { 0 };

		ret = pol_add_file(set, path, &file);
		loc.file = file;
		if (!ret && pol_diag_add(set, POL_DIAG_WARNING, &loc,
					 "no *.yaml or *.yml files in this directory"))
			ret = -ENOMEM;
	}
	if (!ret && n)
		qsort(names, n, sizeof(*names), cmp_str);
	if (!ret && n > 1 && set->cache)
		ret = dir_prefetch(set->cache, path, names, n);
	/* every file, also after one with errors: all of them are reported */
	for (size_t i = 0; ret != -ENOMEM && i < n; i++) {
		char *full;
		struct stat st;
		int r;

		if (asprintf(&full, "%s/%s", path, names[i]) < 0) {
			ret = -ENOMEM;
			break;
		}
		if (stat(full, &st) == 0 && S_ISDIR(st.st_mode)) {
			free(full);
			continue;
		}
		r = load_file(set, full);
		free(full);
		if (r == -ENOMEM)
			ret = r;
		else if (r && !ret)
			ret = r;
	}
	pol_strv_free(names, n);
	return ret;
}

int policy_load_path(struct pol_set *set, const char *path)
{
	struct stat st;

	policy_index_free(set);
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return load_dir(set, path);
	return load_file(set, path);
}

/* ---- host resolution ---- */

/*
 * Split an Istio host into service name and namespace. Returns false for
 * wildcards and names that are not <name>[.<ns>[.svc[.<domain>]]].
 */
static bool host_split(const struct pol_set *set, const char *host,
		       const char *ns, const char **name, size_t *name_len,
		       const char **hns, size_t *ns_len)
{
	const char *dot1, *dot2, *rest;

	if (!host || !*host || strchr(host, '*') || strchr(host, '/') ||
	    strchr(host, ':'))
		return false;
	dot1 = strchr(host, '.');
	if (!dot1) {
		*name = host;
		*name_len = strlen(host);
		*hns = ns && *ns ? ns : "default";
		*ns_len = strlen(*hns);
		return true;
	}
	if (dot1 == host)
		return false;
	*name = host;
	*name_len = dot1 - host;
	*hns = dot1 + 1;
	dot2 = strchr(*hns, '.');
	if (!dot2) {
		*ns_len = strlen(*hns);
		return *ns_len > 0;
	}
	*ns_len = dot2 - *hns;
	if (!*ns_len)
		return false;
	rest = dot2 + 1;
	if (strcmp(rest, "svc") == 0)
		return true;
	if (strncmp(rest, "svc.", 4) == 0 &&
	    strcmp(rest + 4, pol_domain(set)) == 0)
		return true;
	return false;
}

int policy_host_fqdn(const struct pol_set *set, const char *host,
		     const char *ns, char *out, size_t outlen)
{
	const char *name, *hns;
	size_t nl, hl;
	int len;

	if (!host_split(set, host, ns, &name, &nl, &hns, &hl)) {
		if (outlen)
			snprintf(out, outlen, "%s", host ? host : "");
		return -EINVAL;
	}
	len = snprintf(out, outlen, "%.*s.%.*s.svc.%s", (int)nl, name, (int)hl,
		       hns, pol_domain(set));
	if (len < 0 || (size_t)len >= outlen)
		return -ENOSPC;
	return 0;
}

const struct pol_service *policy_find_service(const struct pol_set *set,
					      const char *host, const char *ns)
{
	const char *name, *hns;
	size_t nl, hl;

	if (!host_split(set, host, ns, &name, &nl, &hns, &hl))
		return NULL;
	return policy_index_service(set, hns, hl, name, nl);
}

/* ---- labels, diagnostics ---- */

const char *policy_label_get(const struct pol_labels *labels, const char *key)
{
	for (size_t i = 0; labels && i < labels->n; i++)
		if (strcmp(labels->v[i].key, key) == 0)
			return labels->v[i].value;
	return NULL;
}

bool policy_labels_match(const struct pol_labels *selector,
			 const struct pol_labels *labels)
{
	for (size_t i = 0; selector && i < selector->n; i++) {
		const char *v = policy_label_get(labels, selector->v[i].key);

		if (!v || strcmp(v, selector->v[i].value) != 0)
			return false;
	}
	return true;
}

const char *policy_diag_format(const struct pol_diag *d, char *buf, size_t len)
{
	static const char *const lvl[] = {
		[POL_DIAG_ERROR] = "error",
		[POL_DIAG_WARNING] = "warning",
		[POL_DIAG_NOTE] = "note",
	};
	const char *l = (unsigned)d->level <= POL_DIAG_NOTE ? lvl[d->level] : "?";
	const char *file = d->loc.file ? d->loc.file : "<policy>";

	if (!len)
		return buf;
	if (d->loc.line)
		snprintf(buf, len, "%s:%u:%u: %s: %s", file, d->loc.line,
			 d->loc.col, l, d->msg);
	else
		snprintf(buf, len, "%s: %s: %s", file, l, d->msg);
	return buf;
}

int policy_diag_vadd_unique(struct pol_set *set, enum pol_diag_level level,
			    const struct pol_loc *loc, const char *fmt, va_list ap)
{
	struct pol_diag d = { .level = level };
	struct pol_diag *nd;

	if (loc)
		d.loc = *loc;
	vsnprintf(d.msg, sizeof(d.msg), fmt, ap);
	for (size_t i = 0; i < set->n_diags; i++) {
		const struct pol_diag *o = &set->diags[i];

		if (o->level == d.level && o->loc.file == d.loc.file &&
		    o->loc.line == d.loc.line && o->loc.col == d.loc.col &&
		    strcmp(o->msg, d.msg) == 0)
			return 0;
	}
	nd = realloc(set->diags, (set->n_diags + 1) * sizeof(*nd));
	if (!nd)
		return -ENOMEM;
	set->diags = nd;
	set->diags[set->n_diags++] = d;
	if (level == POL_DIAG_ERROR)
		set->n_errors++;
	else if (level == POL_DIAG_WARNING)
		set->n_warnings++;
	return 0;
}

/* ---- objects by identity (kind, namespace, name), as kubectl apply ---- */

int policy_set_foreach(const struct pol_set *set, policy_obj_fn fn, void *arg)
{
	for (size_t k = 0; k < pol_n_set_kinds; k++) {
		const struct pol_set_kind *sk = &pol_set_kinds[k];
		const char *arr = *(char *const *)((const char *)set + sk->off_arr);
		size_t n = *(const size_t *)((const char *)set + sk->off_n);

		for (size_t i = 0; i < n; i++) {
			int ret = fn(sk->kind, (const struct pol_meta *)(arr + i * sk->stride), NULL, arg);

			if (ret)
				return ret;
		}
	}
	return 0;
}

static int pol_meta_ref_cmp(const void *a, const void *b)
{
	const struct pol_meta *x = *(const struct pol_meta *const *)a;
	const struct pol_meta *y = *(const struct pol_meta *const *)b;
	int c = strcmp(x->ns ? x->ns : "", y->ns ? y->ns : "");

	return c ? c : strcmp(x->name ? x->name : "", y->name ? y->name : "");
}

int policy_set_match(const struct pol_set *set, const struct pol_set *other, policy_obj_fn fn,
		     void *arg)
{
	int ret = 0;

	for (size_t k = 0; k < pol_n_set_kinds && !ret; k++) {
		const struct pol_set_kind *sk = &pol_set_kinds[k];
		const char *ours = *(char *const *)((const char *)set + sk->off_arr);
		const char *theirs = *(char *const *)((const char *)other + sk->off_arr);
		size_t n = *(const size_t *)((const char *)set + sk->off_n);
		size_t m = *(const size_t *)((const char *)other + sk->off_n);
		const struct pol_meta **idx;

		if (!m)
			continue;
		idx = calloc(n + 1, sizeof(*idx));
		if (!idx)
			return -ENOMEM;
		for (size_t i = 0; i < n; i++)
			idx[i] = (const struct pol_meta *)(ours + i * sk->stride);
		/* stable for duplicates: the first in the set is found */
		qsort(idx, n, sizeof(*idx), pol_meta_ref_cmp);
		for (size_t j = 0; j < m && !ret; j++) {
			const struct pol_meta *t = (const struct pol_meta *)(theirs + j * sk->stride);
			const struct pol_meta **hit = bsearch(&t, idx, n, sizeof(*idx), pol_meta_ref_cmp);

			ret = fn(sk->kind, t, hit ? *hit : NULL, arg);
		}
		free(idx);
	}
	return ret;
}
