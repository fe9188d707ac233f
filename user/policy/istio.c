// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * networking.istio.io DestinationRule, VirtualService, Gateway.
 *
 * Every mapping is checked against the upstream Istio schema (key lists
 * below, from istio/api networking/v1alpha3 protos): an unknown key is an
 * error. Fields that exist upstream but sockmesh (kernel L4 path and L7
 * agent) does not implement get one warning each, at the field.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "policy/policy_int.h"
#include "common/b64.h"

#define KEYS(...) ((const char *const[]){ __VA_ARGS__, NULL })

static const char *scalar(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

static void sub(char *buf, const char *path, const char *key)
{
	pol_pathf(buf, "%s.%s", path, key);
}

/* "DestinationRule.spec.x" -> "spec.x" for messages that name the object. */
static const char *rel(const char *path)
{
	const char *dot = strchr(path, '.');

	return dot ? dot + 1 : path;
}

static void warn_field(struct pol_walk *w, const yaml_node_t *map,
		       const char *path, const char *key, const char *why)
{
	yaml_node_t *k = pol_get_key(w, map, key);
	char p[POL_PATH_MAX];

	if (!k)
		return;
	sub(p, path, key);
	pol_diag_at(w, POL_DIAG_WARNING, k, "%s %s: %s %s", w->kind, w->name,
		    rel(p), why);
}

#define NOT_IMPL "is not implemented by sockmesh (ignored)"

/* Duration at key in ms (rounded up: "1ns" is not "off"); 1 when present. */
static int get_ms(struct pol_walk *w, const yaml_node_t *map, const char *key,
		  const char *path, int64_t *ms)
{
	yaml_node_t *v = pol_get(w, map, key);
	char p[POL_PATH_MAX];
	uint64_t ns;

	if (!v)
		return 0;
	sub(p, path, key);
	if (pol_val_duration(w, v, p, &ns))
		return 0;
	*ms = (int64_t)((ns + 999999) / 1000000);
	return 1;
}

/* ---- trafficPolicy ---- */

static void tp_init(struct pol_traffic_policy *tp)
{
	memset(tp, 0, sizeof(*tp));
	tp->max_connections = -1;
	tp->min_health_percent = -1;
	tp->connect_timeout_ms = -1;
	tp->http = (struct pol_http_pool){ -1, -1, -1, -1, -1, -1, -1 };
	tp->outlier = (struct pol_outlier){
		.consecutive_5xx = -1, .consecutive_gateway = -1,
		.consecutive_errors = -1, .consecutive_local_origin = -1,
		.interval_ms = -1, .base_ejection_ms = -1,
		.max_ejection_percent = -1,
	};
}

static void tp_free(struct pol_traffic_policy *tp)
{
	free(tp->lb.hash_key);
	free(tp->lb.cookie_path);
	for (size_t i = 0; i < tp->n_port_level; i++)
		tp_free(&tp->port_level[i].tp);
	free(tp->port_level);
}

static void parse_consistent_hash(struct pol_walk *w, const yaml_node_t *n,
				  const char *path, struct pol_lb *lb)
{
	static const char *const hash_keys[] = {
		"useSourceIp", "httpHeaderName", "httpCookie",
		"httpQueryParameterName",
	};
	char p[POL_PATH_MAX];
	yaml_node_t *v, *alg;
	int n_hash = 0;
	int64_t i64;
	bool b;

	if (!pol_want_map(w, n, path))
		return;
	pol_check_keys(w, n, path,
		       KEYS("httpHeaderName", "httpCookie", "useSourceIp",
			    "httpQueryParameterName", "ringHash", "maglev",
			    "minimumRingSize"));
	for (size_t i = 0; i < 4; i++)
		n_hash += pol_get(w, n, hash_keys[i]) != NULL;
	if (n_hash > 1)
		pol_diag_at(w, POL_DIAG_ERROR, n,
			    "%s: needs exactly one of useSourceIp, httpHeaderName, httpCookie, httpQueryParameterName",
			    path);
	else if (!n_hash)
		pol_diag_missing(w, n, NULL,
				 "%s: needs exactly one of useSourceIp, httpHeaderName, httpCookie, httpQueryParameterName",
				 path);
	if (pol_get_bool(w, n, "useSourceIp", path, &b) == 1) {
		if (b)
			lb->hash = POL_HASH_SOURCE_IP;
		else
			pol_diag_at(w, POL_DIAG_ERROR, pol_get(w, n, "useSourceIp"),
				    "%s.useSourceIp: false selects no hash key", path);
	}
	if (pol_get_str(w, n, "httpHeaderName", path, &lb->hash_key) == 1)
		lb->hash = POL_HASH_HEADER;
	if (pol_get_str(w, n, "httpQueryParameterName", path, &lb->hash_key) == 1)
		lb->hash = POL_HASH_QUERY;
	if ((v = pol_get(w, n, "httpCookie"))) {
		sub(p, path, "httpCookie");
		if (pol_want_map(w, v, p)) {
			pol_check_keys(w, v, p, KEYS("name", "path", "ttl", "attributes"));
			if (pol_get_str(w, v, "name", p, &lb->hash_key) != 1)
				pol_diag_missing(w, v, NULL, "%s: missing name", p);
			pol_get_str(w, v, "path", p, &lb->cookie_path);
			/* with a ttl, Envoy sets the cookie when a request has
			 * none (Max-Age in whole seconds; 0: a session cookie) */
			if (get_ms(w, v, "ttl", p, &i64) == 1) {
				lb->cookie_ttl_set = true;
				lb->cookie_ttl_s = i64 / 1000 > UINT32_MAX ? UINT32_MAX :
						   (uint32_t)(i64 / 1000);
			}
			lb->hash = POL_HASH_COOKIE;
			warn_field(w, v, p, "attributes", NOT_IMPL);
		}
	}
	if (pol_get(w, n, "ringHash") && pol_get(w, n, "maglev"))
		pol_diag_at(w, POL_DIAG_ERROR, n,
			    "%s: ringHash and maglev are mutually exclusive", path);
	if ((alg = pol_get(w, n, "ringHash"))) {
		sub(p, path, "ringHash");
		lb->ring_hash = true;
		if (pol_want_map(w, alg, p)) {
			pol_check_keys(w, alg, p, KEYS("minimumRingSize"));
			if (pol_get_int(w, alg, "minimumRingSize", p, 0,
					UINT32_MAX, &i64) == 1)
				lb->hash_table_size = i64;
		}
		pol_diag_at(w, POL_DIAG_NOTE, pol_get_key(w, n, "ringHash"),
			    "%s %s: %s: sockmesh implements consistent hashing with Maglev",
			    w->kind, w->name, rel(p));
	}
	if ((alg = pol_get(w, n, "maglev"))) {
		sub(p, path, "maglev");
		if (pol_want_map(w, alg, p)) {
			pol_check_keys(w, alg, p, KEYS("tableSize"));
			if (pol_get_int(w, alg, "tableSize", p, 0, UINT32_MAX,
					&i64) == 1)
				lb->hash_table_size = i64;
		}
	}
	if (pol_get_int(w, n, "minimumRingSize", path, 0, UINT32_MAX, &i64) == 1 &&
	    !lb->hash_table_size) {
		lb->ring_hash = true;
		lb->hash_table_size = i64;
	}
}

static void parse_lb(struct pol_walk *w, const yaml_node_t *n,
		     const char *path, struct pol_lb *lb)
{
	static const struct { const char *name; enum pol_lb_kind kind; } simple[] = {
		{ "UNSPECIFIED", POL_LB_UNSET },
		{ "LEAST_CONN", POL_LB_LEAST_CONN },
		{ "RANDOM", POL_LB_RANDOM },
		{ "PASSTHROUGH", POL_LB_PASSTHROUGH },
		{ "ROUND_ROBIN", POL_LB_ROUND_ROBIN },
		{ "LEAST_REQUEST", POL_LB_LEAST_REQUEST },
	};
	char p[POL_PATH_MAX];
	yaml_node_t *v, *ch;

	if (!pol_want_map(w, n, path))
		return;
	lb->loc = pol_loc_of(w, n);
	pol_check_keys(w, n, path,
		       KEYS("simple", "consistentHash", "localityLbSetting",
			    "warmupDurationSecs", "warmup"));
	v = pol_get(w, n, "simple");
	ch = pol_get(w, n, "consistentHash");
	if (v && ch)
		pol_diag_at(w, POL_DIAG_ERROR, ch,
			    "%s: simple and consistentHash are mutually exclusive",
			    path);
	if (v) {
		size_t i;

		sub(p, path, "simple");
		if (pol_want_scalar(w, v, p)) {
			for (i = 0; i < sizeof(simple) / sizeof(simple[0]); i++)
				if (strcmp(scalar(v), simple[i].name) == 0)
					break;
			if (i < sizeof(simple) / sizeof(simple[0]))
				lb->kind = simple[i].kind;
			else
				pol_diag_at(w, POL_DIAG_ERROR, v,
					    "%s: unknown load balancer \"%s\" (want LEAST_REQUEST, LEAST_CONN, ROUND_ROBIN, RANDOM, PASSTHROUGH or UNSPECIFIED)",
					    p, scalar(v));
			if (lb->kind == POL_LB_PASSTHROUGH)
				warn_field(w, n, path, "simple",
					   "PASSTHROUGH is not implemented by sockmesh: the L4 agent uses RANDOM");
		}
	}
	if (ch) {
		sub(p, path, "consistentHash");
		lb->kind = POL_LB_CONSISTENT_HASH;
		parse_consistent_hash(w, ch, p, lb);
	}
	if ((v = pol_get(w, n, "warmupDurationSecs"))) {
		sub(p, path, "warmupDurationSecs");
		pol_val_duration(w, v, p, &(uint64_t){ 0 });
	}
	warn_field(w, n, path, "localityLbSetting", NOT_IMPL);
	warn_field(w, n, path, "warmupDurationSecs", NOT_IMPL);
	warn_field(w, n, path, "warmup", NOT_IMPL);
}

static void parse_pool(struct pol_walk *w, const yaml_node_t *n,
		       const char *path, struct pol_traffic_policy *tp)
{
	char p[POL_PATH_MAX], q[POL_PATH_MAX];
	yaml_node_t *tcp, *http, *ka;
	int64_t i64;
	bool b;

	if (!pol_want_map(w, n, path))
		return;
	tp->has_pool = true;
	pol_check_keys(w, n, path, KEYS("tcp", "http"));
	sub(p, path, "tcp");
	if ((tcp = pol_get(w, n, "tcp")) && pol_want_map(w, tcp, p)) {
		pol_check_keys(w, tcp, p,
			       KEYS("maxConnections", "connectTimeout",
				    "tcpKeepalive", "maxConnectionDuration",
				    "idleTimeout"));
		if (pol_get_int(w, tcp, "maxConnections", p, INT32_MIN,
				INT32_MAX, &i64) == 1) {
			if (i64 < 0)
				pol_diag_at(w, POL_DIAG_ERROR,
					    pol_get(w, tcp, "maxConnections"),
					    "%s.maxConnections: must be >= 0, got %lld",
					    p, (long long)i64);
			else
				tp->max_connections = i64;
		}
		if (get_ms(w, tcp, "connectTimeout", p, &tp->connect_timeout_ms) == 1 &&
		    tp->connect_timeout_ms == 0)
			pol_diag_at(w, POL_DIAG_ERROR, pol_get(w, tcp, "connectTimeout"),
				    "%s.connectTimeout: must be >= 1ms", p);
		pol_get_duration(w, tcp, "maxConnectionDuration", p);
		pol_get_duration(w, tcp, "idleTimeout", p);
		sub(q, p, "tcpKeepalive");
		if ((ka = pol_get(w, tcp, "tcpKeepalive")) && pol_want_map(w, ka, q)) {
			pol_check_keys(w, ka, q, KEYS("probes", "time", "interval"));
			pol_get_int(w, ka, "probes", q, 0, UINT32_MAX, &i64);
			pol_get_duration(w, ka, "time", q);
			pol_get_duration(w, ka, "interval", q);
		}
		warn_field(w, tcp, p, "tcpKeepalive", NOT_IMPL);
		warn_field(w, tcp, p, "maxConnectionDuration", NOT_IMPL);
		warn_field(w, tcp, p, "idleTimeout", NOT_IMPL);
	}
	sub(p, path, "http");
	if ((http = pol_get(w, n, "http")) && pol_want_map(w, http, p)) {
		static const char *const ints[] = {
			"http1MaxPendingRequests", "http2MaxRequests",
			"maxRequestsPerConnection", "maxRetries",
		};
		int64_t *dst[] = {
			&tp->http.http1_max_pending, &tp->http.http2_max_requests,
			&tp->http.max_requests_per_conn, &tp->http.max_retries,
		};
		yaml_node_t *v;

		tp->has_http_pool = true;
		pol_check_keys(w, http, p,
			       KEYS("http1MaxPendingRequests", "http2MaxRequests",
				    "maxRequestsPerConnection", "maxRetries",
				    "idleTimeout", "h2UpgradePolicy",
				    "useClientProtocol", "maxConcurrentStreams"));
		for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++)
			if (pol_get_int(w, http, ints[i], p, 0, INT32_MAX, &i64) == 1)
				*dst[i] = i64;
		if (pol_get_int(w, http, "maxConcurrentStreams", p, 0, INT32_MAX, &i64) == 1)
			tp->http.max_concurrent_streams = i64;
		get_ms(w, http, "idleTimeout", p, &tp->http.idle_timeout_ms);
		pol_get_bool(w, http, "useClientProtocol", p, &b);
		if ((v = pol_get_scalar(w, http, "h2UpgradePolicy", p)) &&
		    strcmp(scalar(v), "DEFAULT") && strcmp(scalar(v), "DO_NOT_UPGRADE") &&
		    strcmp(scalar(v), "UPGRADE"))
			pol_diag_at(w, POL_DIAG_ERROR, v,
				    "%s.h2UpgradePolicy: unknown value \"%s\" (want DEFAULT, DO_NOT_UPGRADE or UPGRADE)",
				    p, scalar(v));
		if (v)
			tp->http.h2_upgrade = strcmp(scalar(v), "UPGRADE") == 0;
	}
}

static void parse_outlier(struct pol_walk *w, const yaml_node_t *n,
			  const char *path, struct pol_traffic_policy *tp)
{
	static const char *const counts[] = {
		"consecutive5xxErrors", "consecutiveGatewayErrors",
		"consecutiveErrors", "consecutiveLocalOriginFailures",
	};
	struct pol_outlier *o = &tp->outlier;
	int64_t *dst[] = {
		&o->consecutive_5xx, &o->consecutive_gateway,
		&o->consecutive_errors, &o->consecutive_local_origin,
	};
	int64_t i64;

	if (!pol_want_map(w, n, path))
		return;
	tp->has_outlier = true;
	pol_check_keys(w, n, path,
		       KEYS("consecutive5xxErrors", "consecutiveGatewayErrors",
			    "consecutiveErrors", "interval", "baseEjectionTime",
			    "maxEjectionPercent", "minHealthPercent",
			    "splitExternalLocalOriginErrors",
			    "consecutiveLocalOriginFailures"));
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++)
		if (pol_get_int(w, n, counts[i], path, 0, UINT32_MAX, &i64) == 1)
			*dst[i] = i64;
	get_ms(w, n, "interval", path, &o->interval_ms);
	get_ms(w, n, "baseEjectionTime", path, &o->base_ejection_ms);
	if (pol_get_int(w, n, "maxEjectionPercent", path, 0, 100, &i64) == 1)
		o->max_ejection_percent = (int32_t)i64;
	if (pol_get_int(w, n, "minHealthPercent", path, 0, 100, &i64) == 1)
		tp->min_health_percent = i64;
	pol_get_bool(w, n, "splitExternalLocalOriginErrors", path,
		     &o->split_local_origin);
	if (o->consecutive_local_origin > 0 && !o->split_local_origin)
		pol_diag_at(w, POL_DIAG_ERROR, pol_get(w, n, "consecutiveLocalOriginFailures"),
			    "%s.consecutiveLocalOriginFailures: needs splitExternalLocalOriginErrors: true (Istio rejects it otherwise)",
			    path);
}

static void parse_client_tls(struct pol_walk *w, const yaml_node_t *parent,
			     const char *ppath, const yaml_node_t *n)
{
	char p[POL_PATH_MAX], path[POL_PATH_MAX];
	const char *mode = "DISABLE";
	yaml_node_t *v;
	bool b;

	sub(path, ppath, "tls");
	if (!pol_want_map(w, n, path))
		return;
	pol_check_keys(w, n, path,
		       KEYS("mode", "clientCertificate", "privateKey",
			    "caCertificates", "credentialName", "subjectAltNames",
			    "sni", "insecureSkipVerify", "caCrl"));
	if ((v = pol_get_scalar(w, n, "mode", path))) {
		mode = scalar(v);
		if (strcmp(mode, "DISABLE") && strcmp(mode, "SIMPLE") &&
		    strcmp(mode, "MUTUAL") && strcmp(mode, "ISTIO_MUTUAL"))
			pol_diag_at(w, POL_DIAG_ERROR, v,
				    "%s.mode: unknown TLS mode \"%s\" (want DISABLE, SIMPLE, MUTUAL or ISTIO_MUTUAL)",
				    path, mode);
	}
	pol_get_bool(w, n, "insecureSkipVerify", path, &b);
	if ((v = pol_get(w, n, "subjectAltNames"))) {
		char **names = NULL;
		size_t nn = 0;

		sub(p, path, "subjectAltNames");
		pol_val_strlist(w, v, p, &names, &nn);
		pol_strv_free(names, nn);
	}
	if (strcmp(mode, "DISABLE") != 0) {
		char msg[128];

		snprintf(msg, sizeof(msg),
			 "(mode %s) is not implemented by sockmesh: traffic stays plaintext",
			 mode);
		warn_field(w, parent, ppath, "tls", msg);
	}
}

static void parse_tp(struct pol_walk *w, const yaml_node_t *n,
		     const char *path, struct pol_traffic_policy *tp,
		     bool port_level);

static void parse_port_level(struct pol_walk *w, const yaml_node_t *n,
			     const char *path, struct pol_traffic_policy *tp)
{
	char p[POL_PATH_MAX], q[POL_PATH_MAX];

	if (!pol_want_seq(w, n, path))
		return;
	for (size_t i = 0; i < pol_seq_len(n); i++) {
		yaml_node_t *it = pol_seq_at(w, n, i), *port;
		struct pol_port_tp *pl;
		int64_t num;

		pol_pathf(p, "%s[%zu]", path, i);
		if (!pol_want_map(w, it, p))
			continue;
		pl = pol_grow(w, &tp->port_level, &tp->n_port_level, sizeof(*pl));
		if (!pl)
			return;
		tp_init(&pl->tp);
		parse_tp(w, it, p, &pl->tp, true);
		sub(q, p, "port");
		port = pol_get(w, it, "port");
		if (!port) {
			pol_diag_missing(w, it, NULL, "%s: missing port", p);
			continue;
		}
		if (!pol_want_map(w, port, q))
			continue;
		pol_check_keys(w, port, q, KEYS("number"));
		if (pol_get_int(w, port, "number", q, 1, 65535, &num) != 1) {
			if (!pol_get(w, port, "number"))
				pol_diag_missing(w, port, NULL, "%s: missing number", q);
			continue;
		}
		pl->port = num;
		for (size_t j = 0; j + 1 < tp->n_port_level; j++)
			if (tp->port_level[j].port == pl->port)
				pol_diag_at(w, POL_DIAG_ERROR, port,
					    "%s: port %u already has settings",
					    q, pl->port);
	}
}

static void parse_tp(struct pol_walk *w, const yaml_node_t *n,
		     const char *path, struct pol_traffic_policy *tp,
		     bool port_level)
{
	char p[POL_PATH_MAX];
	yaml_node_t *v;

	if (!pol_want_map(w, n, path))
		return;
	tp->set = true;
	tp->loc = pol_loc_of(w, n);
	if (port_level)
		pol_check_keys(w, n, path,
			       KEYS("port", "loadBalancer", "connectionPool",
				    "outlierDetection", "tls"));
	else
		pol_check_keys(w, n, path,
			       KEYS("loadBalancer", "connectionPool",
				    "outlierDetection", "tls", "portLevelSettings",
				    "tunnel", "proxyProtocol", "retryBudget"));
	sub(p, path, "loadBalancer");
	if ((v = pol_get(w, n, "loadBalancer")))
		parse_lb(w, v, p, &tp->lb);
	sub(p, path, "connectionPool");
	if ((v = pol_get(w, n, "connectionPool")))
		parse_pool(w, v, p, tp);
	sub(p, path, "outlierDetection");
	if ((v = pol_get(w, n, "outlierDetection")))
		parse_outlier(w, v, p, tp);
	if ((v = pol_get(w, n, "tls")))
		parse_client_tls(w, n, path, v);
	if (port_level)
		return;
	sub(p, path, "portLevelSettings");
	if ((v = pol_get(w, n, "portLevelSettings")))
		parse_port_level(w, v, p, tp);
	warn_field(w, n, path, "tunnel", NOT_IMPL);
	warn_field(w, n, path, "proxyProtocol", NOT_IMPL);
	warn_field(w, n, path, "retryBudget", NOT_IMPL);
}

/* ---- DestinationRule ---- */

void pol_dr_free(struct pol_dr *d)
{
	pol_meta_free(&d->meta);
	free(d->host);
	tp_free(&d->tp);
	for (size_t i = 0; i < d->n_subsets; i++) {
		free(d->subsets[i].name);
		pol_labels_free(&d->subsets[i].labels);
		tp_free(&d->subsets[i].tp);
	}
	free(d->subsets);
}

static void check_export_to(struct pol_walk *w, const yaml_node_t *spec,
			    const char *path)
{
	yaml_node_t *v = pol_get(w, spec, "exportTo");
	char p[POL_PATH_MAX];
	char **l = NULL;
	size_t n = 0;

	if (!v)
		return;
	sub(p, path, "exportTo");
	pol_val_strlist(w, v, p, &l, &n);
	pol_strv_free(l, n);
	warn_field(w, spec, path, "exportTo",
		   "is not implemented by sockmesh: the resource applies to all namespaces");
}

static void parse_subsets(struct pol_walk *w, const yaml_node_t *n,
			  struct pol_dr *dr)
{
	char p[POL_PATH_MAX], q[POL_PATH_MAX];
	const char *path = "DestinationRule.spec.subsets";

	if (!pol_want_seq(w, n, path))
		return;
	for (size_t i = 0; i < pol_seq_len(n); i++) {
		yaml_node_t *it = pol_seq_at(w, n, i), *v;
		struct pol_subset *s;

		pol_pathf(p, "%s[%zu]", path, i);
		if (!pol_want_map(w, it, p))
			continue;
		pol_check_keys(w, it, p, KEYS("name", "labels", "trafficPolicy"));
		s = pol_grow(w, &dr->subsets, &dr->n_subsets, sizeof(*s));
		if (!s)
			return;
		tp_init(&s->tp);
		s->loc = pol_loc_of(w, it);
		if (pol_get_str(w, it, "name", p, &s->name) != 1 && !pol_get(w, it, "name"))
			pol_diag_missing(w, it, NULL, "%s: subset without name", p);
		if (s->name && !s->name[0])
			pol_diag_at(w, POL_DIAG_ERROR, it, "%s: empty subset name", p);
		if ((v = pol_get(w, it, "labels"))) {
			sub(q, p, "labels");
			pol_val_labels(w, v, q, &s->labels);
		}
		if ((v = pol_get(w, it, "trafficPolicy"))) {
			sub(q, p, "trafficPolicy");
			parse_tp(w, v, q, &s->tp, false);
		}
		for (size_t j = 0; s->name && j + 1 < dr->n_subsets; j++) {
			if (dr->subsets[j].name &&
			    strcmp(dr->subsets[j].name, s->name) == 0) {
				pol_diag_at(w, POL_DIAG_ERROR, pol_get(w, it, "name"),
					    "%s: duplicate subset name \"%s\" in DestinationRule %s",
					    p, s->name, w->name);
				break;
			}
		}
	}
}

void pol_parse_dr(struct pol_walk *w, const yaml_node_t *root,
		  const yaml_node_t *kind_key)
{
	const char *path = "DestinationRule.spec";
	struct pol_dr *dr;
	yaml_node_t *spec, *v;

	dr = pol_grow(w, &w->set->drs, &w->set->n_drs, sizeof(*dr));
	if (!dr)
		return;
	tp_init(&dr->tp);
	pol_parse_meta(w, root, kind_key, &dr->meta);
	spec = pol_get(w, root, "spec");
	if (!spec) {
		pol_diag_missing(w, root, kind_key, "DestinationRule %s: missing spec", w->name);
		return;
	}
	if (!pol_want_map(w, spec, path))
		return;
	pol_check_keys(w, spec, path,
		       KEYS("host", "trafficPolicy", "subsets", "exportTo",
			    "workloadSelector"));
	if ((v = pol_get(w, spec, "host"))) {
		dr->host_loc = pol_loc_of(w, v);
		if (!pol_val_str(w, v, "DestinationRule.spec.host", &dr->host) &&
		    !dr->host[0])
			pol_diag_at(w, POL_DIAG_ERROR, v,
				    "DestinationRule.spec.host: must not be empty");
	} else {
		pol_diag_missing(w, spec, NULL, "DestinationRule %s: missing spec.host", w->name);
	}
	if ((v = pol_get(w, spec, "trafficPolicy")))
		parse_tp(w, v, "DestinationRule.spec.trafficPolicy", &dr->tp, false);
	if ((v = pol_get(w, spec, "subsets")))
		parse_subsets(w, v, dr);
	check_export_to(w, spec, path);
	if ((v = pol_get(w, spec, "workloadSelector"))) {
		const char *p = "DestinationRule.spec.workloadSelector";
		struct pol_labels l = { 0 };
		yaml_node_t *ml;

		if (pol_want_map(w, v, p)) {
			pol_check_keys(w, v, p, KEYS("matchLabels"));
			if ((ml = pol_get(w, v, "matchLabels")))
				pol_val_labels(w, ml, "DestinationRule.spec.workloadSelector.matchLabels", &l);
			pol_labels_free(&l);
		}
		warn_field(w, spec, path, "workloadSelector",
			   "is not implemented by sockmesh: the rule applies to all clients");
	}
}

/* ---- VirtualService ---- */

static void http_route_free(struct pol_http_route *r);

void pol_vs_free(struct pol_vs *v)
{
	pol_meta_free(&v->meta);
	pol_strv_free(v->hosts, v->n_hosts);
	pol_strv_free(v->gateways, v->n_gateways);
	for (size_t i = 0; i < v->n_tcp; i++) {
		struct pol_tcp_route *r = &v->tcp[i];

		for (size_t j = 0; j < r->n_match; j++) {
			pol_strv_free(r->match[j].gateways, r->match[j].n_gateways);
			pol_labels_free(&r->match[j].source_labels);
			free(r->match[j].source_namespace);
		}
		free(r->match);
		for (size_t j = 0; j < r->n_route; j++) {
			free(r->route[j].dest.host);
			free(r->route[j].dest.subset);
		}
		free(r->route);
	}
	free(v->tcp);
	for (size_t i = 0; i < v->n_http_dests; i++) {
		free(v->http_dests[i].host);
		free(v->http_dests[i].subset);
	}
	free(v->http_dests);
	for (size_t i = 0; v->http && i < v->n_http; i++)
		http_route_free(&v->http[i]);
	free(v->http);
}

static void parse_destination(struct pol_walk *w, const yaml_node_t *n,
			      const char *path, struct pol_destination *d)
{
	char p[POL_PATH_MAX];
	yaml_node_t *port;
	int64_t num;

	if (!pol_want_map(w, n, path))
		return;
	d->loc = pol_loc_of(w, n);
	pol_check_keys(w, n, path, KEYS("host", "subset", "port"));
	if (pol_get_str(w, n, "host", path, &d->host) != 1 && !pol_get(w, n, "host"))
		pol_diag_missing(w, n, NULL, "%s: missing host", path);
	else if (d->host && !d->host[0])
		pol_diag_at(w, POL_DIAG_ERROR, pol_get(w, n, "host"),
			    "%s.host: must not be empty", path);
	pol_get_str(w, n, "subset", path, &d->subset);
	if (d->subset && !d->subset[0]) {
		free(d->subset);
		d->subset = NULL;
	}
	sub(p, path, "port");
	if ((port = pol_get(w, n, "port")) && pol_want_map(w, port, p)) {
		pol_check_keys(w, port, p, KEYS("number"));
		if (pol_get_int(w, port, "number", p, 1, 65535, &num) == 1)
			d->port = num;
	}
}

/*
 * Weights of one route list: negative is an error; with several
 * destinations unset counts as 0, the sum must be > 0 and should be 100.
 */
static void check_weights(struct pol_walk *w, const yaml_node_t *route,
			  const char *path, const int64_t *weights, size_t n)
{
	int64_t sum = 0;

	if (n < 2)
		return;
	for (size_t i = 0; i < n; i++)
		sum += weights[i] > 0 ? weights[i] : 0;
	if (sum == 0)
		pol_diag_at(w, POL_DIAG_ERROR, route,
			    "%s: weights of %zu destinations sum to 0", path, n);
	else if (sum != 100)
		pol_diag_at(w, POL_DIAG_WARNING, route,
			    "%s: weights sum to %lld, not 100 (used as proportions)",
			    path, (long long)sum);
}

static int64_t get_weight(struct pol_walk *w, const yaml_node_t *it,
			  const char *path)
{
	int64_t wt;
	yaml_node_t *v = pol_get(w, it, "weight");
	char p[POL_PATH_MAX];

	if (!v)
		return -1;
	sub(p, path, "weight");
	if (pol_val_int(w, v, p, INT32_MIN, INT32_MAX, &wt))
		return -1;
	if (wt < 0) {
		pol_diag_at(w, POL_DIAG_ERROR, v, "%s: weight must be >= 0, got %lld",
			    p, (long long)wt);
		return -1;
	}
	return wt;
}

static void parse_tcp_routes(struct pol_walk *w, const yaml_node_t *n,
			     struct pol_vs *vs)
{
	const char *path = "VirtualService.spec.tcp";
	char p[POL_PATH_MAX], q[POL_PATH_MAX], r[POL_PATH_MAX];

	if (!pol_want_seq(w, n, path))
		return;
	for (size_t i = 0; i < pol_seq_len(n); i++) {
		yaml_node_t *it = pol_seq_at(w, n, i), *ms, *rs;
		struct pol_tcp_route *tr;
		int64_t *weights;
		size_t errs0;

		pol_pathf(p, "%s[%zu]", path, i);
		if (!pol_want_map(w, it, p))
			continue;
		pol_check_keys(w, it, p, KEYS("match", "route"));
		tr = pol_grow(w, &vs->tcp, &vs->n_tcp, sizeof(*tr));
		if (!tr)
			return;
		tr->loc = pol_loc_of(w, it);
		sub(q, p, "match");
		if ((ms = pol_get(w, it, "match")) && pol_want_seq(w, ms, q)) {
			for (size_t j = 0; j < pol_seq_len(ms); j++) {
				yaml_node_t *m = pol_seq_at(w, ms, j), *v;
				struct pol_l4_match *lm;
				int64_t port;

				pol_pathf(r, "%s[%zu]", q, j);
				if (!pol_want_map(w, m, r))
					continue;
				pol_check_keys(w, m, r,
					       KEYS("destinationSubnets", "port",
						    "sourceLabels", "gateways",
						    "sourceNamespace"));
				lm = pol_grow(w, &tr->match, &tr->n_match, sizeof(*lm));
				if (!lm)
					return;
				lm->loc = pol_loc_of(w, m);
				if (pol_get_int(w, m, "port", r, 1, 65535, &port) == 1)
					lm->port = port;
				if ((v = pol_get(w, m, "gateways"))) {
					char g[POL_PATH_MAX];

					sub(g, r, "gateways");
					pol_val_strlist(w, v, g, &lm->gateways,
							&lm->n_gateways);
				}
				if ((v = pol_get(w, m, "sourceLabels"))) {
					char g[POL_PATH_MAX];

					sub(g, r, "sourceLabels");
					pol_val_labels(w, v, g, &lm->source_labels);
				}
				pol_get_str(w, m, "sourceNamespace", r,
					    &lm->source_namespace);
				if ((v = pol_get(w, m, "destinationSubnets"))) {
					char g[POL_PATH_MAX];
					char **l = NULL;
					size_t nl = 0;

					sub(g, r, "destinationSubnets");
					pol_val_strlist(w, v, g, &l, &nl);
					pol_strv_free(l, nl);
					warn_field(w, m, r, "destinationSubnets",
						   NOT_IMPL);
				}
			}
		}
		sub(q, p, "route");
		rs = pol_get(w, it, "route");
		if (!rs) {
			pol_diag_missing(w, it, NULL,
					 "%s: tcp route needs at least one destination", p);
			continue;
		}
		if (!pol_want_seq(w, rs, q))
			continue;
		errs0 = w->set->n_errors;
		weights = calloc(pol_seq_len(rs) + 1, sizeof(*weights));
		if (!weights) {
			w->oom = true;
			return;
		}
		for (size_t j = 0; j < pol_seq_len(rs); j++) {
			yaml_node_t *rd = pol_seq_at(w, rs, j), *d;
			struct pol_route_dest *dst;

			pol_pathf(r, "%s[%zu]", q, j);
			weights[j] = -1;
			if (!pol_want_map(w, rd, r))
				continue;
			pol_check_keys(w, rd, r, KEYS("destination", "weight"));
			dst = pol_grow(w, &tr->route, &tr->n_route, sizeof(*dst));
			if (!dst)
				break;
			dst->weight = weights[j] = get_weight(w, rd, r);
			if ((d = pol_get(w, rd, "destination"))) {
				char g[POL_PATH_MAX];

				sub(g, r, "destination");
				parse_destination(w, d, g, &dst->dest);
			} else {
				dst->dest.loc = pol_loc_of(w, rd);
				pol_diag_missing(w, rd, NULL, "%s: missing destination", r);
			}
		}
		if (!pol_seq_len(rs))
			pol_diag_at(w, POL_DIAG_ERROR, rs,
				    "%s: tcp route needs at least one destination", p);
		if (w->set->n_errors == errs0)
			check_weights(w, rs, q, weights, pol_seq_len(rs));
		free(weights);
	}
}

/* ---- http routes ---- */

/*
 * Compile an Istio regex (RE2 syntax) with PCRE2; the code is kept in the
 * object for the proxy. NULL with the message in err on a bad regex (or no
 * memory).
 */
static pcre2_code *regex_compile(const char *re, uint32_t opts, char *err, size_t errlen)
{
	PCRE2_UCHAR msg[160];
	PCRE2_SIZE off;
	pcre2_code *code;
	int rc;

	code = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, opts, &rc, &off, NULL);
	if (code)
		return code;
	if (pcre2_get_error_message(rc, msg, sizeof(msg)) < 0)
		snprintf((char *)msg, sizeof(msg), "error %d", rc);
	if (err && errlen)
		snprintf(err, errlen, "%s at offset %zu", (const char *)msg, (size_t)off);
	return NULL;
}

int policy_regex_check(const char *re, char *err, size_t errlen)
{
	pcre2_code *code = regex_compile(re, 0, err, errlen);

	pcre2_code_free(code);
	return code ? 0 : -EINVAL;
}

/* Compile re into *out (freed before); a bad one is an error at n. */
static void keep_regex(struct pol_walk *w, const yaml_node_t *n, const char *path,
		       const char *re, uint32_t opts, void **out)
{
	char err[200];

	pcre2_code_free(*out);
	*out = NULL;
	if (re && !(*out = regex_compile(re, opts, err, sizeof(err))))
		pol_diag_at(w, POL_DIAG_ERROR, n, "%s: invalid regex \"%s\": %s",
			    path, re, err);
}

/* Header names compare ignoring case: kept lower-cased (as Envoy does). */
static void str_lower(char *s)
{
	for (; s && *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

static void sm_free(struct pol_strmatch *m)
{
	free(m->value);
	m->value = NULL;
	pcre2_code_free(m->re);
	m->re = NULL;
}

static void kvm_free(struct pol_kvmatch *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		sm_free(&v[i].m);
	}
	free(v);
}

/*
 * One StringMatch. An empty one ({} or null) is PRESENT where presence
 * means something (header / query maps), else NONE.
 */
static void parse_string_match(struct pol_walk *w, const yaml_node_t *n,
			       const char *path, struct pol_strmatch *sm,
			       bool empty_is_present)
{
	static const char *const keys[] = { "exact", "prefix", "regex" };
	static const enum pol_sm_kind kinds[] = { POL_SM_EXACT, POL_SM_PREFIX, POL_SM_REGEX };
	int set = 0;

	sm->loc = pol_loc_of(w, n);
	sm->kind = empty_is_present ? POL_SM_PRESENT : POL_SM_NONE;
	if (pol_is_null(n))
		return;
	if (!pol_want_map(w, n, path))
		return;
	pol_check_keys(w, n, path, KEYS("exact", "prefix", "regex"));
	for (size_t i = 0; i < 3; i++) {
		yaml_node_t *v = pol_get_scalar(w, n, keys[i], path);
		char p[POL_PATH_MAX];

		if (!v)
			continue;
		if (++set > 1)
			continue;
		sub(p, path, keys[i]);
		free(sm->value);
		sm->value = NULL;
		if (pol_val_str(w, v, p, &sm->value))
			continue;
		sm->kind = kinds[i];
		sm->loc = pol_loc_of(w, v);
		/* a whole-string match (Envoy's safe_regex) */
		keep_regex(w, v, p, kinds[i] == POL_SM_REGEX ? sm->value : NULL,
			   PCRE2_ANCHORED | PCRE2_ENDANCHORED, &sm->re);
	}
	if (set > 1)
		pol_diag_at(w, POL_DIAG_ERROR, n,
			    "%s: exact, prefix and regex are mutually exclusive",
			    path);
}

static void parse_string_match_map(struct pol_walk *w, const yaml_node_t *n,
				   const char *path, struct pol_kvmatch **out,
				   size_t *n_out, bool lower)
{
	char p[POL_PATH_MAX];

	if (!pol_want_map(w, n, path))
		return;
	for (yaml_node_pair_t *pr = n->data.mapping.pairs.start;
	     pr < n->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = pol_node(w, pr->key), *v = pol_node(w, pr->value);
		struct pol_kvmatch *kv;

		if (!k || k->type != YAML_SCALAR_NODE || !v)
			continue;
		pol_pathf(p, "%s.%s", path, scalar(k));
		kv = pol_grow(w, out, n_out, sizeof(*kv));
		if (!kv || !(kv->name = pol_strdup(w, scalar(k))))
			return;
		if (lower)
			str_lower(kv->name);
		parse_string_match(w, v, p, &kv->m, true);
	}
}

static void percent_at(struct pol_walk *w, const yaml_node_t *map,
		       const char *key, const char *path, double *out)
{
	yaml_node_t *v = pol_get(w, map, key);
	char p[POL_PATH_MAX];

	if (!v)
		return;
	sub(p, path, key);
	if (pol_want_map(w, v, p)) {
		pol_check_keys(w, v, p, KEYS("value"));
		/* Percent{} without value is 0 (proto default). */
		*out = 0;
		if ((v = pol_get(w, v, "value"))) {
			char q[POL_PATH_MAX];

			sub(q, p, "value");
			pol_val_double(w, v, q, 0, 100, out);
		}
	}
}

static void hdr_ops_free(struct pol_hdr_ops *o)
{
	pol_labels_free(&o->set);
	pol_labels_free(&o->add);
	pol_strv_free(o->remove, o->n_remove);
}

static void headers_free(struct pol_headers *h)
{
	hdr_ops_free(&h->request);
	hdr_ops_free(&h->response);
}

static void parse_headers_op(struct pol_walk *w, const yaml_node_t *n,
			     const char *path, struct pol_headers *h)
{
	char p[POL_PATH_MAX], q[POL_PATH_MAX];
	yaml_node_t *v, *x;

	if (!pol_want_map(w, n, path))
		return;
	pol_check_keys(w, n, path, KEYS("request", "response"));
	for (int i = 0; i < 2; i++) {
		const char *k = i ? "response" : "request";
		struct pol_hdr_ops *o = i ? &h->response : &h->request;

		sub(p, path, k);
		if (!(v = pol_get(w, n, k)) || !pol_want_map(w, v, p))
			continue;
		pol_check_keys(w, v, p, KEYS("set", "add", "remove"));
		sub(q, p, "set");
		if ((x = pol_get(w, v, "set")))
			pol_val_labels(w, x, q, &o->set);
		sub(q, p, "add");
		if ((x = pol_get(w, v, "add")))
			pol_val_labels(w, x, q, &o->add);
		sub(q, p, "remove");
		if ((x = pol_get(w, v, "remove")))
			pol_val_strlist(w, x, q, &o->remove, &o->n_remove);
		for (size_t i = 0; i < o->n_remove; i++)
			str_lower(o->remove[i]);
	}
}

static void add_http_dest(struct pol_walk *w, const yaml_node_t *n,
			  const char *path, struct pol_vs *vs,
			  struct pol_destination *copy)
{
	struct pol_destination *d;

	d = pol_grow(w, &vs->http_dests, &vs->n_http_dests, sizeof(*d));
	if (!d)
		return;
	parse_destination(w, n, path, d);
	if (!copy)
		return;
	*copy = *d;
	copy->host = d->host ? pol_strdup(w, d->host) : NULL;
	copy->subset = d->subset ? pol_strdup(w, d->subset) : NULL;
}

static void http_match_free(struct pol_http_match *m)
{
	free(m->name);
	sm_free(&m->uri);
	sm_free(&m->scheme);
	sm_free(&m->method);
	sm_free(&m->authority);
	kvm_free(m->headers, m->n_headers);
	kvm_free(m->without_headers, m->n_without_headers);
	kvm_free(m->query_params, m->n_query_params);
	pol_labels_free(&m->source_labels);
	free(m->source_namespace);
	pol_strv_free(m->gateways, m->n_gateways);
}

static void parse_http_match(struct pol_walk *w, const yaml_node_t *m,
			     const char *path, struct pol_http_match *hm)
{
	static const char *const sm[] = { "uri", "scheme", "method", "authority" };
	static const char *const smm[] = { "headers", "queryParams", "withoutHeaders" };
	struct pol_strmatch *sm_dst[] = { &hm->uri, &hm->scheme, &hm->method, &hm->authority };
	struct pol_kvmatch **smm_dst[] = { &hm->headers, &hm->query_params, &hm->without_headers };
	size_t *smm_n[] = { &hm->n_headers, &hm->n_query_params, &hm->n_without_headers };
	char p[POL_PATH_MAX];
	yaml_node_t *v;
	int64_t i64;

	hm->loc = pol_loc_of(w, m);
	if (!pol_want_map(w, m, path))
		return;
	pol_check_keys(w, m, path,
		       KEYS("name", "uri", "scheme", "method", "authority",
			    "headers", "port", "sourceLabels", "gateways",
			    "queryParams", "ignoreUriCase", "withoutHeaders",
			    "sourceNamespace", "statPrefix"));
	for (size_t i = 0; i < 4; i++) {
		sub(p, path, sm[i]);
		if ((v = pol_get(w, m, sm[i])))
			parse_string_match(w, v, p, sm_dst[i], false);
	}
	for (size_t i = 0; i < 3; i++) {
		sub(p, path, smm[i]);
		if ((v = pol_get(w, m, smm[i])))
			parse_string_match_map(w, v, p, smm_dst[i], smm_n[i],
					       smm_dst[i] != &hm->query_params);
	}
	if (pol_get_int(w, m, "port", path, 1, 65535, &i64) == 1)
		hm->port = (uint16_t)i64;
	pol_get_bool(w, m, "ignoreUriCase", path, &hm->ignore_uri_case);
	pol_get_str(w, m, "name", path, &hm->name);
	pol_get_str(w, m, "sourceNamespace", path, &hm->source_namespace);
	pol_get_scalar(w, m, "statPrefix", path);
	sub(p, path, "sourceLabels");
	if ((v = pol_get(w, m, "sourceLabels")))
		pol_val_labels(w, v, p, &hm->source_labels);
	sub(p, path, "gateways");
	if ((v = pol_get(w, m, "gateways")))
		pol_val_strlist(w, v, p, &hm->gateways, &hm->n_gateways);
}

/* A gRPC status by name (Istio's grpcStatus) or number; -1 when unknown. */
static int pol_grpc_code(const char *s)
{
	static const char *const names[] = { "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT",
		"DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED",
		"RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
		"UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED" };
	char *end;
	long v;

	for (int i = 0; i < (int)(sizeof(names) / sizeof(names[0])); i++)
		if (strcasecmp(s, names[i]) == 0)
			return i;
	v = strtol(s, &end, 10);
	return *s && !*end && v >= 0 && v <= 16 ? (int)v : -1;
}

static void parse_http_fault(struct pol_walk *w, const yaml_node_t *n,
			     const char *path, struct pol_fault *f)
{
	yaml_node_t *g;
	char p[POL_PATH_MAX];
	yaml_node_t *v;
	int64_t i64;

	if (!pol_want_map(w, n, path))
		return;
	pol_check_keys(w, n, path, KEYS("delay", "abort"));
	sub(p, path, "delay");
	if ((v = pol_get(w, n, "delay")) && pol_want_map(w, v, p)) {
		pol_check_keys(w, v, p, KEYS("fixedDelay", "exponentialDelay",
					     "percentage", "percent"));
		if (get_ms(w, v, "fixedDelay", p, &i64) == 1) {
			f->delay_set = true;
			f->delay_ms = (uint64_t)i64;
		}
		pol_get_duration(w, v, "exponentialDelay", p);
		warn_field(w, v, p, "exponentialDelay", NOT_IMPL);
		/* Istio: percentage, else the deprecated integer percent, else 0. */
		if (pol_get_int(w, v, "percent", p, 0, 100, &i64) == 1)
			f->delay_percent = (double)i64;
		percent_at(w, v, "percentage", p, &f->delay_percent);
		if (!pol_get(w, v, "fixedDelay") && !pol_get(w, v, "exponentialDelay"))
			pol_diag_missing(w, v, NULL, "%s: needs fixedDelay", p);
	}
	sub(p, path, "abort");
	if ((v = pol_get(w, n, "abort")) && pol_want_map(w, v, p)) {
		pol_check_keys(w, v, p, KEYS("httpStatus", "grpcStatus",
					     "http2Error", "percentage"));
		f->abort_set = true;
		if (pol_get_int(w, v, "httpStatus", p, 200, 599, &i64) == 1)
			f->abort_status = (int32_t)i64;
		if ((g = pol_get_scalar(w, v, "grpcStatus", p))) {
			int code = pol_grpc_code(scalar(g));

			if (code < 0)
				pol_diag_at(w, POL_DIAG_ERROR, g,
					    "%s.grpcStatus: unknown gRPC status \"%s\" (want OK, CANCELLED, ..., UNAVAILABLE, or 0..16)",
					    p, scalar(g));
			else
				f->abort_grpc = code + 1;
		}
		pol_get_scalar(w, v, "http2Error", p);
		warn_field(w, v, p, "http2Error", NOT_IMPL);
		percent_at(w, v, "percentage", p, &f->abort_percent);
		if (!pol_get(w, v, "httpStatus") && !pol_get(w, v, "grpcStatus") &&
		    !pol_get(w, v, "http2Error"))
			pol_diag_missing(w, v, NULL, "%s: needs httpStatus", p);
	}
}

/* Envoy retry_on policies Istio accepts in retryOn, besides status codes. */
static const char *const retry_on_names[] = {
	"5xx", "gateway-error", "reset", "connect-failure", "envoy-ratelimited",
	"retriable-4xx", "refused-stream", "retriable-status-codes",
	"retriable-headers", "cancelled", "deadline-exceeded", "internal",
	"resource-exhausted", "unavailable", "reset-before-request",
	"http3-post-connect-failure",
};

static void check_retry_on(struct pol_walk *w, const yaml_node_t *n,
			   const char *path, const char *list)
{
	char *dup = strdup(list), *save = NULL;

	if (!dup) {
		w->oom = true;
		return;
	}
	for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *end;
		long code;
		size_t i;

		while (*t == ' ' || *t == '\t')
			t++;
		end = t + strlen(t);
		while (end > t && (end[-1] == ' ' || end[-1] == '\t'))
			*--end = '\0';
		for (i = 0; i < sizeof(retry_on_names) / sizeof(retry_on_names[0]); i++)
			if (strcmp(t, retry_on_names[i]) == 0)
				break;
		if (i < sizeof(retry_on_names) / sizeof(retry_on_names[0]))
			continue;
		code = strtol(t, &end, 10);
		if (*t && !*end && code >= 100 && code <= 599)
			continue;
		pol_diag_at(w, POL_DIAG_ERROR, n,
			    "%s: unknown retry policy \"%s\" (want Envoy retry_on names such as 5xx, gateway-error, connect-failure, reset, retriable-4xx, refused-stream, or HTTP status codes)",
			    path, t);
	}
	free(dup);
}

static void parse_retries(struct pol_walk *w, const yaml_node_t *v,
			  const char *p, struct pol_retries *rt)
{
	yaml_node_t *ro;
	int64_t i64;
	bool b;

	rt->set = true;
	rt->loc = pol_loc_of(w, v);
	pol_check_keys(w, v, p, KEYS("attempts", "perTryTimeout", "retryOn",
				     "retryRemoteLocalities",
				     "retryIgnorePreviousHosts", "backoff"));
	if (pol_get_int(w, v, "attempts", p, 0, INT32_MAX, &i64) == 1)
		rt->attempts = (int32_t)i64;
	get_ms(w, v, "perTryTimeout", p, &rt->per_try_timeout_ms);
	get_ms(w, v, "backoff", p, &rt->backoff_ms);
	pol_get_bool(w, v, "retryRemoteLocalities", p, &rt->retry_remote_localities);
	/* sockmesh always prefers other hosts on a retry (Istio's default). */
	if (pol_get_bool(w, v, "retryIgnorePreviousHosts", p, &b) == 1 && !b)
		warn_field(w, v, p, "retryIgnorePreviousHosts",
			   "false is not implemented by sockmesh: retries prefer other hosts");
	if (pol_get_str(w, v, "retryOn", p, &rt->retry_on) == 1 &&
	    (ro = pol_get(w, v, "retryOn"))) {
		char q[POL_PATH_MAX];

		sub(q, p, "retryOn");
		check_retry_on(w, ro, q, rt->retry_on);
	}
}

static void parse_direct(struct pol_walk *w, const yaml_node_t *v,
			 const char *p, struct pol_direct_response *d)
{
	char q[POL_PATH_MAX];
	yaml_node_t *body, *x;
	int64_t i64;

	pol_check_keys(w, v, p, KEYS("status", "body"));
	d->set = true;
	if (pol_get_int(w, v, "status", p, 200, 599, &i64) == 1)
		d->status = (int32_t)i64;
	else if (!pol_get(w, v, "status"))
		pol_diag_missing(w, v, NULL, "%s: missing status", p);
	sub(q, p, "body");
	if (!(body = pol_get(w, v, "body")) || !pol_want_map(w, body, q))
		return;
	pol_check_keys(w, body, q, KEYS("string", "bytes"));
	if (pol_get(w, body, "string") && pol_get(w, body, "bytes"))
		pol_diag_at(w, POL_DIAG_ERROR, body,
			    "%s: string and bytes are mutually exclusive", q);
	if (pol_get_str(w, body, "string", q, &d->body) == 1) {
		d->body_len = strlen(d->body);
	} else if ((x = pol_get_scalar(w, body, "bytes", q))) {
		int err = sm_b64_decode(scalar(x), &d->body, &d->body_len);

		if (err == -ENOMEM)
			w->oom = true;
		else if (err)
			pol_diag_at(w, POL_DIAG_ERROR, x, "%s.bytes: not base64", q);
	}
}

static void parse_cors(struct pol_walk *w, const yaml_node_t *v,
		       const char *p, struct pol_cors *c)
{
	static const char *const lists[] = { "allowMethods", "allowHeaders", "exposeHeaders" };
	char ***dst[] = { &c->allow_methods, &c->allow_headers, &c->expose_headers };
	size_t *ndst[] = { &c->n_allow_methods, &c->n_allow_headers, &c->n_expose_headers };
	char q[POL_PATH_MAX], r[POL_PATH_MAX];
	yaml_node_t *ao;
	int64_t i64;
	bool b;

	c->set = true;
	c->max_age_s = -1;
	c->allow_credentials = -1;
	pol_check_keys(w, v, p, KEYS("allowOrigin", "allowOrigins",
				     "allowMethods", "allowHeaders",
				     "exposeHeaders", "maxAge",
				     "allowCredentials",
				     "unmatchedPreflights"));
	if (get_ms(w, v, "maxAge", p, &i64) == 1)
		c->max_age_s = (i64 + 999) / 1000;
	if (pol_get_bool(w, v, "allowCredentials", p, &b) == 1)
		c->allow_credentials = b;
	for (size_t i = 0; i < 3; i++) {
		yaml_node_t *l = pol_get(w, v, lists[i]);

		sub(q, p, lists[i]);
		if (l)
			pol_val_strlist(w, l, q, dst[i], ndst[i]);
	}
	sub(q, p, "allowOrigins");
	if ((ao = pol_get(w, v, "allowOrigins")) && pol_want_seq(w, ao, q)) {
		for (size_t i = 0; i < pol_seq_len(ao); i++) {
			struct pol_strmatch *m;

			pol_pathf(r, "%s[%zu]", q, i);
			m = pol_grow(w, &c->allow_origins, &c->n_allow_origins, sizeof(*m));
			if (!m)
				return;
			parse_string_match(w, pol_seq_at(w, ao, i), r, m, false);
		}
	}
	sub(q, p, "allowOrigin");
	if ((ao = pol_get(w, v, "allowOrigin"))) {
		char **l = NULL;
		size_t n = 0;

		pol_val_strlist(w, ao, q, &l, &n);
		for (size_t i = 0; i < n; i++) {
			struct pol_strmatch *m;

			m = pol_grow(w, &c->allow_origins, &c->n_allow_origins, sizeof(*m));
			if (!m)
				break;
			m->kind = POL_SM_EXACT;
			m->value = l[i];
			m->loc = pol_loc_of(w, ao);
			l[i] = NULL;
		}
		pol_strv_free(l, n);
	}
	warn_field(w, v, p, "unmatchedPreflights", NOT_IMPL);
}

static void cors_free(struct pol_cors *c)
{
	for (size_t i = 0; i < c->n_allow_origins; i++)
		sm_free(&c->allow_origins[i]);
	free(c->allow_origins);
	pol_strv_free(c->allow_methods, c->n_allow_methods);
	pol_strv_free(c->allow_headers, c->n_allow_headers);
	pol_strv_free(c->expose_headers, c->n_expose_headers);
}

static void http_route_free(struct pol_http_route *r)
{
	free(r->name);
	for (size_t i = 0; i < r->n_match; i++)
		http_match_free(&r->match[i]);
	free(r->match);
	for (size_t i = 0; i < r->n_route; i++) {
		free(r->route[i].dest.host);
		free(r->route[i].dest.subset);
		headers_free(&r->route[i].headers);
	}
	free(r->route);
	free(r->redirect.uri);
	free(r->redirect.authority);
	free(r->redirect.scheme);
	free(r->direct.body);
	free(r->rewrite.uri);
	free(r->rewrite.authority);
	free(r->rewrite.regex);
	pcre2_code_free(r->rewrite.re);
	free(r->rewrite.regex_rewrite);
	free(r->retries.retry_on);
	for (size_t i = 0; i < r->n_mirrors; i++) {
		free(r->mirrors[i].dest.host);
		free(r->mirrors[i].dest.subset);
	}
	free(r->mirrors);
	cors_free(&r->cors);
	headers_free(&r->headers);
}

static void parse_redirect(struct pol_walk *w, const yaml_node_t *v,
			   const char *p, struct pol_redirect *rd)
{
	yaml_node_t *dp;
	int64_t i64;

	rd->set = true;
	pol_check_keys(w, v, p, KEYS("uri", "authority", "port", "derivePort",
				     "scheme", "redirectCode"));
	pol_get_str(w, v, "uri", p, &rd->uri);
	pol_get_str(w, v, "authority", p, &rd->authority);
	pol_get_str(w, v, "scheme", p, &rd->scheme);
	if (pol_get_int(w, v, "port", p, 1, 65535, &i64) == 1)
		rd->port = (uint16_t)i64;
	if (pol_get_int(w, v, "redirectCode", p, 300, 399, &i64) == 1)
		rd->code = (int32_t)i64;
	if ((dp = pol_get_scalar(w, v, "derivePort", p))) {
		if (strcmp(scalar(dp), "FROM_PROTOCOL_DEFAULT") == 0)
			rd->derive_port = POL_DERIVE_PORT_PROTOCOL_DEFAULT;
		else if (strcmp(scalar(dp), "FROM_REQUEST_PORT") == 0)
			rd->derive_port = POL_DERIVE_PORT_REQUEST;
		else
			pol_diag_at(w, POL_DIAG_ERROR, dp,
				    "%s.derivePort: unknown value \"%s\" (want FROM_PROTOCOL_DEFAULT or FROM_REQUEST_PORT)",
				    p, scalar(dp));
	}
	if (pol_get(w, v, "port") && dp)
		pol_diag_at(w, POL_DIAG_ERROR, dp,
			    "%s: port and derivePort are mutually exclusive", p);
}

static void parse_rewrite(struct pol_walk *w, const yaml_node_t *v,
			  const char *p, struct pol_rewrite *rw)
{
	char q[POL_PATH_MAX];
	yaml_node_t *rr, *m;

	pol_check_keys(w, v, p, KEYS("uri", "authority", "uriRegexRewrite"));
	pol_get_str(w, v, "uri", p, &rw->uri);
	pol_get_str(w, v, "authority", p, &rw->authority);
	sub(q, p, "uriRegexRewrite");
	if ((rr = pol_get(w, v, "uriRegexRewrite")) && pol_want_map(w, rr, q)) {
		pol_check_keys(w, rr, q, KEYS("match", "rewrite"));
		if (pol_get_str(w, rr, "match", q, &rw->regex) == 1) {
			char r[POL_PATH_MAX];

			m = pol_get(w, rr, "match");
			rw->regex_loc = pol_loc_of(w, m);
			sub(r, q, "match");
			keep_regex(w, m, r, rw->regex, 0, &rw->re);
		} else if (!pol_get(w, rr, "match")) {
			pol_diag_missing(w, rr, NULL, "%s: missing match", q);
		}
		pol_get_str(w, rr, "rewrite", q, &rw->regex_rewrite);
		if (rw->uri)
			pol_diag_at(w, POL_DIAG_ERROR, rr,
				    "%s: uri and uriRegexRewrite are mutually exclusive", p);
	}
}

static void parse_http_route(struct pol_walk *w, const yaml_node_t *n,
			     const char *path, struct pol_vs *vs,
			     struct pol_http_route *hr)
{
	char p[POL_PATH_MAX], q[POL_PATH_MAX];
	double mirror_pct = -1;
	yaml_node_t *v;
	int64_t i64;

	hr->loc = pol_loc_of(w, n);
	hr->timeout_ms = -1;
	hr->retries.attempts = -1;
	hr->retries.per_try_timeout_ms = -1;
	hr->retries.backoff_ms = -1;
	if (!pol_want_map(w, n, path))
		return;
	pol_check_keys(w, n, path,
		       KEYS("name", "match", "route", "redirect", "directResponse",
			    "delegate", "rewrite", "timeout", "retries", "fault",
			    "mirror", "mirrors", "mirrorPercentage",
			    "mirror_percent", "mirrorPercent", "corsPolicy",
			    "headers"));
	pol_get_str(w, n, "name", path, &hr->name);
	get_ms(w, n, "timeout", path, &hr->timeout_ms);
	sub(p, path, "match");
	if ((v = pol_get(w, n, "match")) && pol_want_seq(w, v, p)) {
		for (size_t i = 0; i < pol_seq_len(v); i++) {
			struct pol_http_match *hm;

			pol_pathf(q, "%s[%zu]", p, i);
			hm = pol_grow(w, &hr->match, &hr->n_match, sizeof(*hm));
			if (!hm)
				return;
			parse_http_match(w, pol_seq_at(w, v, i), q, hm);
		}
	}
	sub(p, path, "route");
	if ((v = pol_get(w, n, "route")) && pol_want_seq(w, v, p)) {
		size_t nr = pol_seq_len(v), errs0 = w->set->n_errors;
		int64_t *weights = calloc(nr + 1, sizeof(*weights));

		if (!weights) {
			w->oom = true;
			return;
		}
		for (size_t i = 0; i < nr; i++) {
			yaml_node_t *rd = pol_seq_at(w, v, i), *d, *h;
			struct pol_http_dest *hd;
			char r[POL_PATH_MAX];

			pol_pathf(q, "%s[%zu]", p, i);
			weights[i] = -1;
			if (!pol_want_map(w, rd, q))
				continue;
			pol_check_keys(w, rd, q, KEYS("destination", "weight", "headers"));
			hd = pol_grow(w, &hr->route, &hr->n_route, sizeof(*hd));
			if (!hd)
				break;
			hd->weight = (int32_t)(weights[i] = get_weight(w, rd, q));
			sub(r, q, "destination");
			if ((d = pol_get(w, rd, "destination"))) {
				add_http_dest(w, d, r, vs, &hd->dest);
			} else {
				hd->dest.loc = pol_loc_of(w, rd);
				pol_diag_missing(w, rd, NULL, "%s: missing destination", q);
			}
			sub(r, q, "headers");
			if ((h = pol_get(w, rd, "headers")))
				parse_headers_op(w, h, r, &hd->headers);
		}
		if (w->set->n_errors == errs0)	/* a bad destination says enough */
			check_weights(w, v, p, weights, nr);
		free(weights);
	}
	sub(p, path, "redirect");
	if ((v = pol_get(w, n, "redirect")) && pol_want_map(w, v, p))
		parse_redirect(w, v, p, &hr->redirect);
	sub(p, path, "directResponse");
	if ((v = pol_get(w, n, "directResponse")) && pol_want_map(w, v, p))
		parse_direct(w, v, p, &hr->direct);
	sub(p, path, "delegate");
	if ((v = pol_get(w, n, "delegate")) && pol_want_map(w, v, p)) {
		pol_check_keys(w, v, p, KEYS("name", "namespace"));
		warn_field(w, n, path, "delegate",
			   "is not implemented by sockmesh: requests this route matches get 503");
	}
	{
		int actions = (pol_get(w, n, "route") != NULL) + hr->redirect.set +
			      hr->direct.set + (pol_get(w, n, "delegate") != NULL);

		if (actions > 1)
			pol_diag_at(w, POL_DIAG_ERROR, n,
				    "%s: route, redirect, directResponse and delegate are mutually exclusive",
				    path);
		else if (actions == 0)
			pol_diag_missing(w, n, NULL,
					 "%s: needs one of route, redirect, directResponse or delegate",
					 path);
	}
	sub(p, path, "rewrite");
	if ((v = pol_get(w, n, "rewrite")) && pol_want_map(w, v, p))
		parse_rewrite(w, v, p, &hr->rewrite);
	sub(p, path, "retries");
	if ((v = pol_get(w, n, "retries")) && pol_want_map(w, v, p))
		parse_retries(w, v, p, &hr->retries);
	sub(p, path, "fault");
	if ((v = pol_get(w, n, "fault")))
		parse_http_fault(w, v, p, &hr->fault);
	/* mirror percentage: mirrorPercentage, else mirror_percent, else 100 */
	if (pol_get_int(w, n, "mirror_percent", path, 0, 100, &i64) == 1 ||
	    pol_get_int(w, n, "mirrorPercent", path, 0, 100, &i64) == 1)
		mirror_pct = (double)i64;
	percent_at(w, n, "mirrorPercentage", path, &mirror_pct);
	sub(p, path, "mirror");
	if ((v = pol_get(w, n, "mirror"))) {
		struct pol_mirror *m = pol_grow(w, &hr->mirrors, &hr->n_mirrors, sizeof(*m));

		if (m) {
			add_http_dest(w, v, p, vs, &m->dest);
			m->percent = mirror_pct;
		}
	}
	sub(p, path, "mirrors");
	if ((v = pol_get(w, n, "mirrors")) && pol_want_seq(w, v, p)) {
		for (size_t i = 0; i < pol_seq_len(v); i++) {
			yaml_node_t *mn = pol_seq_at(w, v, i), *d;
			struct pol_mirror *m;
			char r[POL_PATH_MAX];

			pol_pathf(q, "%s[%zu]", p, i);
			if (!pol_want_map(w, mn, q))
				continue;
			pol_check_keys(w, mn, q, KEYS("destination", "percentage"));
			m = pol_grow(w, &hr->mirrors, &hr->n_mirrors, sizeof(*m));
			if (!m)
				break;
			m->percent = -1;
			sub(r, q, "destination");
			if ((d = pol_get(w, mn, "destination")))
				add_http_dest(w, d, r, vs, &m->dest);
			else
				pol_diag_missing(w, mn, NULL, "%s: missing destination", q);
			percent_at(w, mn, "percentage", q, &m->percent);
		}
	}
	sub(p, path, "corsPolicy");
	if ((v = pol_get(w, n, "corsPolicy")) && pol_want_map(w, v, p))
		parse_cors(w, v, p, &hr->cors);
	sub(p, path, "headers");
	if ((v = pol_get(w, n, "headers")))
		parse_headers_op(w, v, p, &hr->headers);
}

static void check_tls_routes(struct pol_walk *w, const yaml_node_t *n,
			     const char *path)
{
	char p[POL_PATH_MAX], q[POL_PATH_MAX], r[POL_PATH_MAX];

	if (!pol_want_seq(w, n, path))
		return;
	for (size_t i = 0; i < pol_seq_len(n); i++) {
		yaml_node_t *it = pol_seq_at(w, n, i), *v;

		pol_pathf(p, "%s[%zu]", path, i);
		if (!pol_want_map(w, it, p))
			continue;
		pol_check_keys(w, it, p, KEYS("match", "route"));
		sub(q, p, "match");
		if ((v = pol_get(w, it, "match")) && pol_want_seq(w, v, q)) {
			for (size_t j = 0; j < pol_seq_len(v); j++) {
				pol_pathf(r, "%s[%zu]", q, j);
				if (pol_want_map(w, pol_seq_at(w, v, j), r))
					pol_check_keys(w, pol_seq_at(w, v, j), r,
						       KEYS("sniHosts", "destinationSubnets",
							    "port", "sourceLabels",
							    "gateways", "sourceNamespace"));
			}
		}
		sub(q, p, "route");
		if ((v = pol_get(w, it, "route")) && pol_want_seq(w, v, q)) {
			for (size_t j = 0; j < pol_seq_len(v); j++) {
				yaml_node_t *rd = pol_seq_at(w, v, j), *d;
				struct pol_destination tmp = { 0 };
				char g[POL_PATH_MAX];

				pol_pathf(r, "%s[%zu]", q, j);
				if (!pol_want_map(w, rd, r))
					continue;
				pol_check_keys(w, rd, r, KEYS("destination", "weight"));
				get_weight(w, rd, r);
				sub(g, r, "destination");
				if ((d = pol_get(w, rd, "destination")))
					parse_destination(w, d, g, &tmp);
				free(tmp.host);
				free(tmp.subset);
			}
		}
	}
}

void pol_parse_vs(struct pol_walk *w, const yaml_node_t *root,
		  const yaml_node_t *kind_key)
{
	const char *path = "VirtualService.spec";
	struct pol_vs *vs;
	yaml_node_t *spec, *v;

	vs = pol_grow(w, &w->set->vss, &w->set->n_vss, sizeof(*vs));
	if (!vs)
		return;
	pol_parse_meta(w, root, kind_key, &vs->meta);
	spec = pol_get(w, root, "spec");
	if (!spec) {
		pol_diag_missing(w, root, kind_key, "VirtualService %s: missing spec", w->name);
		return;
	}
	if (!pol_want_map(w, spec, path))
		return;
	pol_check_keys(w, spec, path,
		       KEYS("hosts", "gateways", "http", "tls", "tcp", "exportTo"));
	if ((v = pol_get(w, spec, "hosts")) &&
	    !pol_val_strlist(w, v, "VirtualService.spec.hosts", &vs->hosts,
			     &vs->n_hosts)) {
		for (size_t i = 0; i < vs->n_hosts; i++)
			if (!vs->hosts[i][0])
				pol_diag_at(w, POL_DIAG_ERROR, pol_seq_at(w, v, i),
					    "VirtualService.spec.hosts[%zu]: must not be empty", i);
	}
	/* Istio: a VirtualService without hosts is a delegate, used only
	 * through a root's http[].delegate (not implemented): say so */
	if (!pol_get(w, spec, "hosts") && pol_get(w, spec, "http"))
		pol_diag_at(w, POL_DIAG_WARNING, pol_get_key(w, spec, "http"),
			    "VirtualService %s: no hosts: a delegate VirtualService, which sockmesh does not implement (its routes are not used)",
			    w->name);
	if ((v = pol_get(w, spec, "gateways")))
		pol_val_strlist(w, v, "VirtualService.spec.gateways",
				&vs->gateways, &vs->n_gateways);
	if ((v = pol_get(w, spec, "tcp")))
		parse_tcp_routes(w, v, vs);
	if ((v = pol_get(w, spec, "http")) &&
	    pol_want_seq(w, v, "VirtualService.spec.http")) {
		char p[POL_PATH_MAX];
		size_t n = pol_seq_len(v);

		if (n) {
			vs->http = calloc(n, sizeof(*vs->http));
			if (!vs->http) {
				w->oom = true;
				return;
			}
			vs->n_http = n;
		}
		for (size_t i = 0; i < n; i++) {
			pol_pathf(p, "VirtualService.spec.http[%zu]", i);
			parse_http_route(w, pol_seq_at(w, v, i), p, vs, &vs->http[i]);
		}
	}
	if ((v = pol_get(w, spec, "tls")) &&
	    pol_want_seq(w, v, "VirtualService.spec.tls")) {
		vs->n_tls = pol_seq_len(v);
		check_tls_routes(w, v, "VirtualService.spec.tls");
		if (vs->n_tls)
			pol_diag_at(w, POL_DIAG_WARNING,
				    pol_get_key(w, spec, "tls"),
				    "VirtualService %s: tls routes are not implemented by sockmesh (ignored)",
				    w->name);
	}
	check_export_to(w, spec, path);
}

/* ---- Gateway ---- */

void pol_gateway_free(struct pol_gateway *g)
{
	pol_meta_free(&g->meta);
	pol_labels_free(&g->selector);
	for (size_t i = 0; i < g->n_servers; i++) {
		struct pol_gw_server *s = &g->servers[i];

		free(s->port_name);
		free(s->protocol);
		free(s->bind);
		pol_strv_free(s->hosts, s->n_hosts);
		free(s->name);
		free(s->tls_mode);
	}
	free(g->servers);
}

static void parse_gw_server(struct pol_walk *w, const yaml_node_t *s,
			    const char *p, struct pol_gw_server *srv)
{
	char q[POL_PATH_MAX];
	yaml_node_t *port, *h, *tls, *v;
	int64_t i64;

	srv->loc = pol_loc_of(w, s);
	/* tls (ServerTLSSettings) keys are left unchecked: its key list
	 * grows often and sockmesh serves no TLS. */
	pol_check_keys(w, s, p,
		       KEYS("port", "bind", "hosts", "tls",
			    "defaultEndpoint", "name"));
	sub(q, p, "port");
	if ((port = pol_get(w, s, "port")) && pol_want_map(w, port, q)) {
		pol_check_keys(w, port, q,
			       KEYS("number", "protocol", "name", "targetPort"));
		if (pol_get_int(w, port, "number", q, 1, 65535, &i64) == 1)
			srv->port = (uint16_t)i64;
		else if (!pol_get(w, port, "number"))
			pol_diag_missing(w, port, NULL, "%s: missing number", q);
		pol_get_int(w, port, "targetPort", q, 1, 65535, &i64);
		pol_get_str(w, port, "name", q, &srv->port_name);
		pol_get_str(w, port, "protocol", q, &srv->protocol);
	} else if (!port) {
		pol_diag_missing(w, s, NULL, "%s: missing port", p);
	}
	sub(q, p, "hosts");
	if ((h = pol_get(w, s, "hosts")))
		pol_val_strlist(w, h, q, &srv->hosts, &srv->n_hosts);
	else
		pol_diag_missing(w, s, NULL, "%s: missing hosts", p);
	pol_get_str(w, s, "bind", p, &srv->bind);
	pol_get_str(w, s, "name", p, &srv->name);
	sub(q, p, "tls");
	if ((tls = pol_get(w, s, "tls")) && pol_want_map(w, tls, q)) {
		srv->has_tls = true;
		pol_get_bool(w, tls, "httpsRedirect", q, &srv->https_redirect);
		pol_get_str(w, tls, "mode", q, &srv->tls_mode);
	}
	warn_field(w, s, p, "defaultEndpoint", NOT_IMPL);
	if (srv->has_tls && (srv->tls_mode || !srv->https_redirect))
		warn_field(w, s, p, "tls",
			   "is not implemented by sockmesh (plain HTTP servers only): server not served");
	else if (srv->https_redirect)
		warn_field(w, s, p, "tls",
			   "httpsRedirect is not implemented by sockmesh: requests are served over plain HTTP");
	if (srv->protocol && !srv->has_tls &&
	    strcasecmp(srv->protocol, "HTTP") && strcasecmp(srv->protocol, "HTTP2") &&
	    strcasecmp(srv->protocol, "GRPC") && (v = pol_get(w, s, "port")))
		pol_diag_at(w, POL_DIAG_WARNING, v,
			    "Gateway %s: %s.port.protocol %s is not implemented by sockmesh (plain HTTP servers only): server not served",
			    w->name, rel(p), srv->protocol);
}

void pol_parse_gateway(struct pol_walk *w, const yaml_node_t *root,
		       const yaml_node_t *kind_key)
{
	const char *path = "Gateway.spec";
	char p[POL_PATH_MAX];
	struct pol_gateway *gw;
	yaml_node_t *spec, *v;

	gw = pol_grow(w, &w->set->gws, &w->set->n_gws, sizeof(*gw));
	if (!gw)
		return;
	pol_parse_meta(w, root, kind_key, &gw->meta);
	spec = pol_get(w, root, "spec");
	if (!spec || !pol_want_map(w, spec, path))
		return;
	pol_check_keys(w, spec, path, KEYS("selector", "servers"));
	if ((v = pol_get(w, spec, "selector")))
		pol_val_labels(w, v, "Gateway.spec.selector", &gw->selector);
	if (!(v = pol_get(w, spec, "servers")) ||
	    !pol_want_seq(w, v, "Gateway.spec.servers"))
		return;
	for (size_t i = 0; i < pol_seq_len(v); i++) {
		yaml_node_t *s = pol_seq_at(w, v, i);
		struct pol_gw_server *srv;

		pol_pathf(p, "Gateway.spec.servers[%zu]", i);
		if (!pol_want_map(w, s, p))
			continue;
		srv = pol_grow(w, &gw->servers, &gw->n_servers, sizeof(*srv));
		if (!srv)
			return;
		parse_gw_server(w, s, p, srv);
	}
}
