// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Credentials: kubectl's kubeconfig (current-context -> cluster + user) or
 * the in-cluster service account. The file is YAML: libyaml's document API
 * turns it into a jansson tree (every scalar a string), read from there.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "common/b64.h"
#include "kube/kube.h"

static json_t *kc_node_json(yaml_document_t *doc, yaml_node_t *n, int depth)
{
	json_t *out;

	if (!n || depth > 32)
		return NULL;
	switch (n->type) {
	case YAML_SCALAR_NODE:
		return json_stringn((const char *)n->data.scalar.value, n->data.scalar.length);
	case YAML_SEQUENCE_NODE:
		out = json_array();
		for (yaml_node_item_t *i = n->data.sequence.items.start;
		     out && i < n->data.sequence.items.top; i++) {
			json_t *v = kc_node_json(doc, yaml_document_get_node(doc, *i), depth + 1);

			if (!v || json_array_append_new(out, v)) {
				json_decref(out);
				return NULL;
			}
		}
		return out;
	case YAML_MAPPING_NODE:
		out = json_object();
		for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
		     out && p < n->data.mapping.pairs.top; p++) {
			yaml_node_t *k = yaml_document_get_node(doc, p->key);
			json_t *v;

			if (!k || k->type != YAML_SCALAR_NODE) {
				json_decref(out);
				return NULL;
			}
			v = kc_node_json(doc, yaml_document_get_node(doc, p->value), depth + 1);
			if (!v || json_object_set_new(out, (const char *)k->data.scalar.value, v)) {
				json_decref(out);
				return NULL;
			}
		}
		return out;
	default:
		return NULL;
	}
}

/* The first document of a YAML file as JSON (scalars as strings). */
static json_t *kc_read_yaml(const char *path, char *err, size_t errlen)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	json_t *out = NULL;
	FILE *f = fopen(path, "re");

	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &doc)) {
		snprintf(err, errlen, "%s:%zu:%zu: %s", path, parser.problem_mark.line + 1,
			 parser.problem_mark.column + 1, parser.problem ?: "not YAML");
	} else {
		out = kc_node_json(&doc, yaml_document_get_root_node(&doc), 0);
		if (!out || !json_is_object(out)) {
			snprintf(err, errlen, "%s: not a kubeconfig (expected a mapping)", path);
			json_decref(out);
			out = NULL;
		}
		yaml_document_delete(&doc);
	}
	yaml_parser_delete(&parser);
	fclose(f);
	return out;
}

/* The entry of list named name: its field (e.g. "cluster"). */
static json_t *kc_named(json_t *root, const char *list, const char *name, const char *field)
{
	json_t *arr = json_object_get(root, list), *e;
	size_t i;

	json_array_foreach(arr, i, e) {
		const char *n = json_string_value(json_object_get(e, "name"));

		if (n && !strcmp(n, name))
			return json_object_get(e, field);
	}
	return NULL;
}

static const char *kc_str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s && *s ? s : NULL;
}

/* A path from the kubeconfig, relative to its directory. */
static int kc_path(const char *dir, const char *p, char **out)
{
	if (!p) {
		*out = NULL;
		return 0;
	}
	if (p[0] == '/' || !dir)
		*out = strdup(p);
	else if (asprintf(out, "%s/%s", dir, p) < 0)
		*out = NULL;
	return *out ? 0 : -ENOMEM;
}

static int kc_data(const char *b64, const char *what, char **out, size_t *len,
		   char *err, size_t errlen)
{
	int ret;

	if (!b64)
		return 0;
	ret = sm_b64_decode(b64, out, len);
	if (ret == -EINVAL)
		snprintf(err, errlen, "%s: not base64", what);
	return ret;
}

int kube_config_load(const char *path, const char *context, struct kube_creds *c,
		     char *err, size_t errlen)
{
	json_t *root, *ctx, *cluster, *user;
	const char *cname, *uname, *clname, *insecure;
	char *dir = NULL, *slash;
	int ret = -EINVAL;

	memset(c, 0, sizeof(*c));
	root = kc_read_yaml(path, err, errlen);
	if (!root)
		return -EINVAL;
	cname = context ?: kc_str(root, "current-context");
	if (!cname) {
		snprintf(err, errlen, "%s: no current-context", path);
		goto out;
	}
	ctx = kc_named(root, "contexts", cname, "context");
	if (!ctx) {
		snprintf(err, errlen, "%s: context \"%s\" not found", path, cname);
		goto out;
	}
	clname = kc_str(ctx, "cluster");
	uname = kc_str(ctx, "user");
	cluster = clname ? kc_named(root, "clusters", clname, "cluster") : NULL;
	if (!cluster || !kc_str(cluster, "server")) {
		snprintf(err, errlen, "%s: context \"%s\": cluster \"%s\" not found or without server",
			 path, cname, clname ?: "");
		goto out;
	}
	user = uname ? kc_named(root, "users", uname, "user") : NULL;
	if (uname && !user) {
		snprintf(err, errlen, "%s: context \"%s\": user \"%s\" not found", path, cname, uname);
		goto out;
	}
	if (kc_str(user, "exec") || json_object_get(user, "exec") ||
	    json_object_get(user, "auth-provider")) {
		snprintf(err, errlen, "%s: user \"%s\": exec and auth-provider plugins are not "
			 "supported (use a token, tokenFile or a client certificate)", path, uname);
		goto out;
	}
	if ((slash = strrchr(path, '/')))
		dir = strndup(path, (size_t)(slash - path) ?: 1);
	ret = -ENOMEM;
	c->server = strdup(kc_str(cluster, "server"));
	c->context = strdup(cname);
	if (!c->server || !c->context)
		goto out;
	if (c->server[strlen(c->server) - 1] == '/')
		c->server[strlen(c->server) - 1] = '\0';
	if (strncmp(c->server, "https://", 8) && strncmp(c->server, "http://", 7)) {
		snprintf(err, errlen, "%s: cluster \"%s\": server %s: expected https://HOST[:PORT]",
			 path, clname, c->server);
		ret = -EINVAL;
		goto out;
	}
	insecure = kc_str(cluster, "insecure-skip-tls-verify");
	c->insecure = insecure && !strcasecmp(insecure, "true");
	if ((ret = kc_path(dir, kc_str(cluster, "certificate-authority"), &c->ca_file)) ||
	    (ret = kc_path(dir, kc_str(user, "tokenFile"), &c->token_file)) ||
	    (ret = kc_path(dir, kc_str(user, "client-certificate"), &c->cert_file)) ||
	    (ret = kc_path(dir, kc_str(user, "client-key"), &c->key_file)))
		goto out;
	if ((ret = kc_data(kc_str(cluster, "certificate-authority-data"), "certificate-authority-data",
			   &c->ca_pem, &c->ca_pem_len, err, errlen)) ||
	    (ret = kc_data(kc_str(user, "client-certificate-data"), "client-certificate-data",
			   &c->cert_pem, &c->cert_pem_len, err, errlen)) ||
	    (ret = kc_data(kc_str(user, "client-key-data"), "client-key-data",
			   &c->key_pem, &c->key_pem_len, err, errlen)))
		goto out;
	if (kc_str(user, "token") && !(c->token = strdup(kc_str(user, "token")))) {
		ret = -ENOMEM;
		goto out;
	}
	if (!(c->cert_file || c->cert_pem) != !(c->key_file || c->key_pem)) {
		snprintf(err, errlen, "%s: user \"%s\": a client certificate needs its key (and the "
			 "key its certificate)", path, uname);
		ret = -EINVAL;
		goto out;
	}
	ret = 0;
out:
	if (ret == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	if (ret)
		kube_creds_free(c);
	free(dir);
	json_decref(root);
	return ret;
}

int kube_config_in_cluster(const char *sa_dir, struct kube_creds *c, char *err, size_t errlen)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");

	memset(c, 0, sizeof(*c));
	if (!host || !*host || !port || !*port) {
		snprintf(err, errlen, "--in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT "
			 "are not set (not running in a pod?)");
		return -EINVAL;
	}
	/* an IPv6 service host needs brackets in the URL */
	if (asprintf(&c->server, strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host,
		     port) < 0)
		c->server = NULL;
	if (asprintf(&c->token_file, "%s/token", sa_dir) < 0)
		c->token_file = NULL;
	if (asprintf(&c->ca_file, "%s/ca.crt", sa_dir) < 0)
		c->ca_file = NULL;
	c->context = strdup("in-cluster");
	if (!c->server || !c->token_file || !c->ca_file || !c->context) {
		kube_creds_free(c);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

void kube_creds_free(struct kube_creds *c)
{
	free(c->server);
	free(c->ca_file);
	free(c->ca_pem);
	free(c->token);
	free(c->token_file);
	free(c->cert_file);
	free(c->key_file);
	free(c->cert_pem);
	free(c->key_pem);
	free(c->context);
	memset(c, 0, sizeof(*c));
}
