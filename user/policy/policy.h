/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * policy: Kubernetes / Istio YAML -> validated plain C structs.
 *
 * Pure library: no BPF, no printing. Every problem becomes a struct pol_diag
 * with file:line:col (1-based, libyaml marks + 1). Loading is additive: call
 * policy_load_path() for each file or directory, then policy_validate() once
 * for cross-object checks. A set with n_errors > 0 must not be applied.
 *
 * Ownership: everything hanging off a struct pol_set (strings, arrays) is
 * owned by the set and freed by policy_set_free(). Addresses are IPv4 in
 * network order (as inet_pton writes them); ports in host order.
 */
#ifndef SOCKMESH_POLICY_H
#define SOCKMESH_POLICY_H

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define POL_DOMAIN_DEFAULT "cluster.local"

struct pol_index;

struct pol_loc {
	const char *file;	/* owned by the set (set->files) */
	uint32_t line;		/* 1-based; 0 = unknown */
	uint32_t col;		/* 1-based */
};

enum pol_diag_level {
	POL_DIAG_ERROR = 0,
	POL_DIAG_WARNING,
	POL_DIAG_NOTE,		/* e.g. "skipping kind Deployment" */
};

struct pol_diag {
	enum pol_diag_level level;
	struct pol_loc loc;
	char msg[320];		/* no file:line:col prefix, no newline */
};

struct pol_kv {
	char *key;
	char *value;
};

struct pol_labels {
	struct pol_kv *v;
	size_t n;
};

struct pol_doc;

struct pol_meta {
	char *name;
	char *ns;		/* "default" when the object has none */
	struct pol_labels labels;
	struct pol_labels annotations;
	struct pol_loc loc;	/* of the document's kind: key */
	struct pol_doc *doc;	/* the cached document that owns the object
				 * (policy_doc_get); NULL: the set owns it */
};

/* ---- core/v1 Service ---- */
struct pol_svc_port {
	char *name;		/* may be NULL */
	uint16_t port;
	uint16_t target_port;	/* 0 when named or unset (unset = port) */
	char *target_port_name;	/* named targetPort, else NULL */
	uint8_t proto;		/* IPPROTO_TCP (default), IPPROTO_UDP, IPPROTO_SCTP */
	char *app_protocol;	/* may be NULL */
	struct pol_loc loc;
};

struct pol_service {
	struct pol_meta meta;
	uint32_t cluster_ip;	/* network order; 0 = none/"None"/absent */
	struct pol_loc cluster_ip_loc;
	bool headless;		/* clusterIP: None */
	bool has_selector;
	struct pol_labels selector;
	struct pol_svc_port *ports;
	size_t n_ports;
};

/* ---- core/v1 Pod ---- */
struct pol_container_port {
	char *name;		/* may be NULL */
	uint16_t port;		/* containerPort */
	uint8_t proto;
};

struct pol_pod {
	struct pol_meta meta;
	char *uid;		/* metadata.uid, NULL when absent */
	char *node_name;	/* spec.nodeName, NULL when absent (not scheduled) */
	uint32_t ip;		/* status.podIP, network order; 0 = none */
	bool ready;		/* status.conditions[type=Ready].status == True;
				 * true when the pod has no status at all */
	bool finished;		/* status.phase Succeeded or Failed */
	bool host_network;
	struct pol_container_port *ports;
	size_t n_ports;
};

/* ---- core/v1 Namespace (labels decide mesh membership) ---- */
struct pol_namespace {
	struct pol_meta meta;	/* meta.name is the namespace; meta.ns unused */
};

/* ---- discovery.k8s.io/v1 EndpointSlice ---- */
struct pol_eps_port {
	char *name;		/* may be NULL */
	uint16_t port;
	uint8_t proto;
};

struct pol_endpoint {
	uint32_t *addrs;	/* network order */
	size_t n_addrs;
	bool ready;		/* conditions.ready; unset = true */
	char *target_pod;	/* targetRef.name when kind Pod, else NULL */
	struct pol_loc loc;	/* the endpoints[] entry */
};

struct pol_eps {
	struct pol_meta meta;
	char *service_name;	/* label kubernetes.io/service-name */
	struct pol_eps_port *ports;
	size_t n_ports;
	struct pol_endpoint *endpoints;
	size_t n_endpoints;
};

/* ---- networking.istio.io DestinationRule ---- */
enum pol_lb_kind {
	POL_LB_UNSET = 0,
	POL_LB_LEAST_REQUEST,
	POL_LB_LEAST_CONN,
	POL_LB_ROUND_ROBIN,
	POL_LB_RANDOM,
	POL_LB_PASSTHROUGH,
	POL_LB_CONSISTENT_HASH,
};

enum pol_hash_kind {
	POL_HASH_NONE = 0,
	POL_HASH_SOURCE_IP,
	POL_HASH_HEADER,	/* hash_key = header name */
	POL_HASH_COOKIE,	/* hash_key = cookie name */
	POL_HASH_QUERY,		/* hash_key = query parameter */
};

struct pol_lb {
	enum pol_lb_kind kind;
	enum pol_hash_kind hash;
	char *hash_key;
	struct pol_loc loc;
	bool ring_hash;		/* consistentHash.ringHash (or minimumRingSize)
				 * asked for instead of maglev */
	uint64_t hash_table_size; /* maglev.tableSize / ringHash.minimumRingSize;
				   * 0 = unset */
	bool cookie_ttl_set;	/* httpCookie.ttl given: Envoy generates the
				 * cookie when a request has none */
	uint32_t cookie_ttl_s;	/* its Max-Age (0 = session cookie) */
	char *cookie_path;	/* httpCookie.path, NULL unset */
};

struct pol_port_tp;

/* connectionPool.http; every field -1 when unset. */
struct pol_http_pool {
	int64_t http1_max_pending;	/* http1MaxPendingRequests */
	int64_t http2_max_requests;	/* http2MaxRequests */
	int64_t max_requests_per_conn;	/* maxRequestsPerConnection */
	int64_t max_retries;		/* maxRetries */
	int64_t idle_timeout_ms;	/* idleTimeout */
	int64_t max_concurrent_streams;	/* maxConcurrentStreams (HTTP/2 upstreams) */
	int64_t h2_upgrade;		/* h2UpgradePolicy: 1 UPGRADE, 0 DEFAULT / DO_NOT_UPGRADE */
};

/* outlierDetection as written; every number -1 when unset. */
struct pol_outlier {
	int64_t consecutive_5xx;	/* consecutive5xxErrors */
	int64_t consecutive_gateway;	/* consecutiveGatewayErrors */
	int64_t consecutive_errors;	/* deprecated consecutiveErrors */
	bool split_local_origin;	/* splitExternalLocalOriginErrors */
	int64_t consecutive_local_origin; /* consecutiveLocalOriginFailures */
	int64_t interval_ms;
	int64_t base_ejection_ms;
	int32_t max_ejection_percent;
};

struct pol_traffic_policy {
	bool set;			/* trafficPolicy present */
	struct pol_lb lb;		/* kind UNSET when absent */
	int64_t max_connections;	/* connectionPool.tcp.maxConnections; -1 unset */
	int32_t min_health_percent;	/* outlierDetection.minHealthPercent; -1 unset */
	bool has_outlier;		/* outlierDetection present */
	bool has_http_pool;		/* connectionPool.http present */
	bool has_pool;			/* connectionPool present (replaced as a whole) */
	int64_t connect_timeout_ms;	/* connectionPool.tcp.connectTimeout; -1 unset */
	struct pol_http_pool http;	/* valid when has_http_pool */
	struct pol_outlier outlier;	/* valid when has_outlier */
	struct pol_port_tp *port_level;	/* portLevelSettings */
	size_t n_port_level;
	struct pol_loc loc;
};

/* portLevelSettings entry: replaces (does not merge with) the parent. */
struct pol_port_tp {
	uint16_t port;
	struct pol_traffic_policy tp;	/* its own port_level is always empty */
};

struct pol_subset {
	char *name;
	struct pol_labels labels;
	struct pol_traffic_policy tp;	/* tp.set false = inherit */
	struct pol_loc loc;
};

struct pol_dr {
	struct pol_meta meta;
	char *host;
	struct pol_loc host_loc;
	struct pol_traffic_policy tp;
	struct pol_subset *subsets;
	size_t n_subsets;
};

/* ---- networking.istio.io VirtualService ---- */
struct pol_destination {
	char *host;
	char *subset;		/* may be NULL */
	uint16_t port;		/* port.number; 0 = unset */
	struct pol_loc loc;
};

struct pol_route_dest {
	struct pol_destination dest;
	int32_t weight;		/* -1 = unset */
};

struct pol_l4_match {
	uint16_t port;		/* 0 = any */
	char **gateways;
	size_t n_gateways;
	struct pol_labels source_labels;
	char *source_namespace;
	struct pol_loc loc;
};

struct pol_tcp_route {
	struct pol_l4_match *match;
	size_t n_match;
	struct pol_route_dest *route;
	size_t n_route;
	struct pol_loc loc;
};

/* Istio StringMatch; also used for header / query maps (PRESENT = {}). */
enum pol_sm_kind {
	POL_SM_NONE = 0,	/* absent */
	POL_SM_EXACT,
	POL_SM_PREFIX,
	POL_SM_REGEX,		/* RE2 syntax, compiled with PCRE2 at load (checked) */
	POL_SM_PRESENT,		/* {} or null: present with any value */
};

struct pol_strmatch {
	enum pol_sm_kind kind;
	char *value;		/* NULL for NONE / PRESENT */
	void *re;		/* REGEX: the pcre2_code * compiled at load
				 * (ANCHORED | ENDANCHORED: a whole-string
				 * match); shared, read-only: each match needs
				 * its own pcre2_match_data */
	struct pol_loc loc;
};

struct pol_kvmatch {
	char *name;		/* header names lower-cased at load (HTTP
				 * header names are case-insensitive); query
				 * parameter names as written */
	struct pol_strmatch m;
};

struct pol_http_match {
	char *name;
	struct pol_strmatch uri, scheme, method, authority;
	struct pol_kvmatch *headers;		size_t n_headers;
	struct pol_kvmatch *without_headers;	size_t n_without_headers;
	struct pol_kvmatch *query_params;	size_t n_query_params;
	uint16_t port;				/* 0 = any */
	bool ignore_uri_case;
	struct pol_labels source_labels;
	char *source_namespace;
	char **gateways;			/* as written */
	size_t n_gateways;
	struct pol_loc loc;
};

struct pol_hdr_ops {
	struct pol_labels set;
	struct pol_labels add;
	char **remove;		/* lower-cased at load */
	size_t n_remove;
};

struct pol_headers {
	struct pol_hdr_ops request, response;
};

struct pol_http_dest {
	struct pol_destination dest;
	int32_t weight;		/* -1 = unset */
	struct pol_headers headers;
};

struct pol_mirror {
	struct pol_destination dest;
	double percent;		/* -1 = unset (100) */
};

enum pol_derive_port {
	POL_DERIVE_PORT_UNSET = 0,
	POL_DERIVE_PORT_PROTOCOL_DEFAULT,	/* FROM_PROTOCOL_DEFAULT */
	POL_DERIVE_PORT_REQUEST,		/* FROM_REQUEST_PORT */
};

struct pol_redirect {
	bool set;
	char *uri, *authority, *scheme;
	uint16_t port;		/* 0 = unset */
	enum pol_derive_port derive_port;
	int32_t code;		/* 0 = unset (301) */
};

struct pol_direct_response {
	bool set;
	int32_t status;
	char *body;		/* body.string, or body.bytes base64-decoded */
	size_t body_len;
};

struct pol_rewrite {
	char *uri;
	char *authority;
	char *regex;		/* uriRegexRewrite.match */
	void *re;		/* regex compiled at load (pcre2_code *, not anchored) */
	char *regex_rewrite;	/* uriRegexRewrite.rewrite (\1 groups) */
	struct pol_loc regex_loc;
};

struct pol_retries {
	bool set;
	int32_t attempts;	/* -1 unset */
	int64_t per_try_timeout_ms; /* -1 unset */
	char *retry_on;		/* as written, NULL unset */
	bool retry_remote_localities;
	int64_t backoff_ms;	/* -1 unset */
	struct pol_loc loc;
};

struct pol_fault {
	bool delay_set;
	uint64_t delay_ms;	/* fixedDelay */
	double delay_percent;	/* percentage.value, else percent, else 0 */
	bool abort_set;
	int32_t abort_status;	/* httpStatus; 0 when grpcStatus/http2Error only */
	int32_t abort_grpc;	/* grpcStatus code + 1; 0 = none */
	double abort_percent;	/* percentage.value, else 0 */
};

struct pol_cors {
	bool set;
	struct pol_strmatch *allow_origins;	/* allowOrigins, plus deprecated allowOrigin as exact */
	size_t n_allow_origins;
	char **allow_methods;	size_t n_allow_methods;
	char **allow_headers;	size_t n_allow_headers;
	char **expose_headers;	size_t n_expose_headers;
	int64_t max_age_s;	/* -1 unset */
	int allow_credentials;	/* -1 unset, 0, 1 */
};

struct pol_http_route {
	char *name;
	struct pol_http_match *match;	size_t n_match;		/* 0 = any request */
	struct pol_http_dest *route;	size_t n_route;
	struct pol_redirect redirect;
	struct pol_direct_response direct;
	struct pol_rewrite rewrite;
	int64_t timeout_ms;		/* -1 unset (no timeout) */
	struct pol_retries retries;
	struct pol_fault fault;
	struct pol_mirror *mirrors;	size_t n_mirrors;	/* mirror + mirrors[] */
	struct pol_cors cors;
	struct pol_headers headers;
	struct pol_loc loc;
};

struct pol_vs {
	struct pol_meta meta;
	char **hosts;
	size_t n_hosts;
	char **gateways;	/* empty = mesh */
	size_t n_gateways;
	struct pol_tcp_route *tcp;
	size_t n_tcp;
	size_t n_http;		/* http: routes (entries of http[]) */
	struct pol_http_route *http;	/* n_http entries */
	size_t n_tls;
	/* Every destination named by http routes (route[] and mirror[s]),
	 * kept for cross-object checks (subsets) and the L7 agent. */
	struct pol_destination *http_dests;
	size_t n_http_dests;
};

/* ---- networking.istio.io Gateway ---- */
struct pol_gw_server {
	uint16_t port;		/* port.number */
	char *port_name;
	char *protocol;		/* HTTP, HTTPS, GRPC, HTTP2, TCP, TLS, ... */
	char *bind;
	char **hosts;		/* as written: "host", "ns/host", "*.example.com" */
	size_t n_hosts;
	char *name;
	bool has_tls;		/* tls present */
	bool https_redirect;	/* tls.httpsRedirect */
	char *tls_mode;		/* tls.mode or NULL */
	struct pol_loc loc;
};

struct pol_gateway {
	struct pol_meta meta;
	struct pol_labels selector;
	struct pol_gw_server *servers;
	size_t n_servers;
};

struct pol_set {
	struct pol_service *svcs;	size_t n_svcs;
	struct pol_pod *pods;		size_t n_pods;
	struct pol_eps *eps;		size_t n_eps;
	struct pol_dr *drs;		size_t n_drs;
	struct pol_vs *vss;		size_t n_vss;
	struct pol_gateway *gws;	size_t n_gws;
	struct pol_namespace *nss;	size_t n_nss;

	struct pol_diag *diags;		size_t n_diags;
	size_t n_errors;
	size_t n_warnings;

	char **files;			size_t n_files;	/* loc.file strings */
	char *domain;			/* cluster domain: malloc'd (freed with the
					 * set); policy_set_init() sets
					 * cluster.local; NULL also means that */
	struct pol_index *index;	/* lookups (index.c); dropped on load */
	struct pol_cache *cache;	/* not owned; see policy_set_use_cache */
};

void policy_set_init(struct pol_set *set);
void policy_set_free(struct pol_set *set);

/*
 * Load one YAML file or every *.yaml / *.yml in a directory (sorted, not
 * recursive; an empty directory is a warning). Multi-document files and
 * `kind: List` (also `ServiceList` etc.) are accepted. Returns 0,
 * -EINVAL when diagnostics of level ERROR were added, or another -errno
 * (file unreadable: also recorded as a diagnostic).
 */
int policy_load_path(struct pol_set *set, const char *path);

/* Same, from memory; name is used as the file in diagnostics. */
int policy_load_buffer(struct pol_set *set, const char *name,
		       const char *buf, size_t len);

/* A whole file into a malloc'd buffer. Returns 0 or -errno. */
int policy_read_file(const char *path, char **buf, size_t *len);

/*
 * Cross-object checks after all files are loaded: duplicate objects, two
 * Services on one clusterIP, VirtualService/DestinationRule hosts and
 * subsets that do not resolve (tcp destinations: host, port and subset;
 * http destinations: subset). Per-route weight checks happen at load time.
 * One mistake gives one error: a duplicate object is not also reported
 * as a shared VIP or a second DestinationRule for its host. Returns 0, -EINVAL when the set holds
 * any ERROR diagnostic (from loading too), or -ENOMEM.
 */
int policy_validate(struct pol_set *set);

/*
 * The checks of policy_validate() a VirtualService or DestinationRule
 * changed in place (same identity and hosts: policy_set_swap_vs / _dr)
 * can change: their hosts, destinations and subsets. Duplicates, VIPs and
 * slices read objects that stayed the same. Returns as policy_validate.
 */
int policy_validate_routes(struct pol_set *set);

/*
 * The checks of policy_validate() whose outcome a change of the Services
 * named (ns[k], names[k]; the set may have them or not) or of their
 * EndpointSlices can change: the clusterIP of each named Service against
 * every other Service, and the EndpointSlices of each name (a Service
 * that is gone leaves them without one); with routes (Services,
 * VirtualServices or DestinationRules changed), those of
 * policy_validate_routes() too. Duplicate objects are the caller's (a new
 * identity must not be taken). Returns as policy_validate.
 */
int policy_validate_change(struct pol_set *set, const char *const *ns, const char *const *names,
			   size_t n, bool routes);

/*
 * Istio host resolution: "reviews" (relative to ns), "reviews.default",
 * "reviews.default.svc", "reviews.default.svc.<domain>" all name the same
 * service. Writes the FQDN "name.ns.svc.<domain>" to out. Returns 0, or
 * -EINVAL for wildcards / hosts that are not in-cluster service names
 * (out then holds the host unchanged), -ENOSPC if out is too small.
 */
int policy_host_fqdn(const struct pol_set *set, const char *host,
		     const char *ns, char *out, size_t outlen);

/* The Service a host names (resolved relative to ns), or NULL. */
const struct pol_service *policy_find_service(const struct pol_set *set,
					      const char *host, const char *ns);

/*
 * Document cache (cache.c). A set that uses a cache gets its objects from
 * it: each YAML document is parsed on its own, once, and reused while its
 * text and its first line in the file stay the same (a one-endpoint
 * change to a 10k-service file re-parses one document). The set borrows
 * the objects: it must be freed before the cache's next
 * policy_cache_end(), which drops the documents the loads since
 * policy_cache_begin() did not use, unless those loads used all of its
 * documents. Diagnostics are copied per load.
 */
struct pol_cache;
struct pol_cache *policy_cache_new(void);
/*
 * Counted references to a cached document (an object's meta.doc). The
 * cache holds one while the document is in it and drops it when it evicts
 * the document (policy_cache_end, policy_delta_commit, policy_cache_free);
 * whoever keeps pointers into a document's objects past that (the proxy's
 * L7 configuration) holds its own. The last put frees the document's
 * objects; any thread may make it. Both take NULL (an object a set owns).
 */
struct pol_doc *policy_doc_get(struct pol_doc *d);
void policy_doc_put(struct pol_doc *d);

/*
 * One object parsed from its JSON tree (the Kubernetes API's objects,
 * parsed on the client's thread as list pages arrive): a document of file
 * whose text (the JSON text of root, copied) is what a load of file
 * compares; diagnostics carry no line and column. NULL: out of memory.
 * The caller holds one reference (policy_doc_put).
 */
struct pol_doc *policy_doc_parse_json(const char *file, const char *text, size_t len,
				      const json_t *root);
/* The document's file (for the API's objects: the identity), owned by d. */
const char *policy_doc_file(const struct pol_doc *d);
/* The document's text (NUL-terminated) and its length. */
const char *policy_doc_text(const struct pol_doc *d, size_t *len);
/*
 * Offer d (a reference is taken) to the next loads and deltas through c:
 * a document of d's file with d's text that misses the cache takes d
 * instead of being parsed again. Offers stay until
 * policy_cache_offers_clear.
 */
int policy_cache_offer(struct pol_cache *c, struct pol_doc *d);
void policy_cache_offers_clear(struct pol_cache *c);
void policy_cache_free(struct pol_cache *c);
void policy_cache_begin(struct pol_cache *c);
void policy_cache_end(struct pol_cache *c);
/* documents parsed and reused since begin */
void policy_cache_stats(const struct pol_cache *c, size_t *parsed, size_t *reused);
/* Call on an empty set, before loading. */
void policy_set_use_cache(struct pol_set *set, struct pol_cache *c);
/*
 * Parse the documents of these files that the cache does not hold yet, in
 * parallel over all of them (one thread per CPU, up to 8): a directory of
 * many small files then loads as fast as one big file. The loads that
 * follow (same paths) find them; nothing is added to a set here. Returns
 * 0 or -ENOMEM; unreadable files are left to the load to report.
 */
int policy_cache_prefetch(struct pol_cache *c, char *const *paths, size_t n);

/*
 * A change to files loaded before through the cache, as whole documents:
 * which documents of the last load are gone and which are new (parsed
 * now, each into its own set, as a load would). Unchanged documents (same
 * text at the same line) are neither. The agent uses it to apply a change
 * of EndpointSlices without reloading everything.
 */
struct pc_delta_file;
struct pol_delta {
	const struct pol_set **gone;	size_t n_gone, cap_gone;
	const struct pol_set **added;	size_t n_added, cap_added;
	size_t n_docs;			/* documents of the changed files, after */
	struct pc_delta_file *files;	size_t n_files;	/* private */
};

/*
 * Add the change of file (its new text: buf, len) to d (zeroed before the
 * first file). Returns 0, -ENOENT (the file was not loaded by the last
 * load, or the cache keeps no record of it: load everything instead),
 * -EEXIST (file twice) or -ENOMEM. The sets of d stay valid until
 * policy_delta_free (which drops new documents: the change is not taken)
 * or policy_delta_commit (the cache takes them; the gone ones are freed:
 * nothing may borrow from them any more).
 */
int policy_cache_delta(struct pol_cache *c, const char *file, const char *buf, size_t len,
		       struct pol_delta *d);
/* As policy_cache_delta, for a file the last load did not have (all new). */
int policy_cache_delta_new(struct pol_cache *c, const char *file, const char *buf, size_t len,
			   struct pol_delta *d);
void policy_delta_commit(struct pol_cache *c, struct pol_delta *d);
/*
 * Drop the diagnostics of set at a place inside doc (a document d->gone
 * of a delta; file: where it was loaded from): what the planning said
 * about the objects it held. Returns how many went.
 */
size_t policy_set_drop_doc_diags(struct pol_set *set, const struct pol_set *doc, const char *file);
/*
 * Append the diagnostics of a document's set (its parse-time warnings,
 * notes and errors: a d->added of a delta) to set and count them, as a
 * full load gathers them. 0 or -ENOMEM.
 */
int policy_set_add_doc_diags(struct pol_set *set, const struct pol_set *doc);
void policy_delta_free(struct pol_cache *c, struct pol_delta *d);

/*
 * Objects by identity (kind, namespace, name), as kubectl applies them.
 * policy_set_foreach calls fn(kind, obj, NULL, arg) for every object of
 * set; policy_set_match calls fn(kind, theirs, ours, arg) for every object
 * of other, ours being set's object of the same identity (its loc says
 * where it is defined) or NULL. A nonzero return of fn stops the walk and
 * is returned; -ENOMEM.
 */
typedef int (*policy_obj_fn)(const char *kind, const struct pol_meta *obj,
			     const struct pol_meta *ours, void *arg);
int policy_set_foreach(const struct pol_set *set, policy_obj_fn fn, void *arg);
int policy_set_match(const struct pol_set *set, const struct pol_set *other, policy_obj_fn fn,
		     void *arg);

/*
 * A file without some of its documents (cut as a load cuts them: at "---"
 * lines): lines[k] (1-based, as pol_loc) are where its objects are, cut[k]
 * which of them go. *out (malloc'd, NUL-terminated, *out_len bytes) is the
 * rest, byte for byte; it may hold no document. Returns 0, -EBUSY (a
 * document holds an object that goes and one that stays: a List) or
 * -ENOMEM.
 */
int policy_doc_cut(const char *buf, size_t len, const uint32_t *lines, const bool *cut,
		   size_t n, char **out, size_t *out_len);
/* Only blank and comment lines. */
bool policy_text_blank(const char *buf, size_t len);

/*
 * The kind ("EndpointSlice", "Pod", ...) of a document's set that holds one
 * object and no errors (warnings and notes go with it:
 * policy_set_add_doc_diags), else NULL.
 */
const char *policy_set_single_kind(const struct pol_set *s);

/*
 * In a set that borrows its objects (from a cache or a delta), put the
 * EndpointSlice to where from is (found by identity): same namespace, name
 * and service, so the set's index stays valid. Swapping back undoes it.
 * Returns 0, -EINVAL (not the same slice) or -ENOENT (from not in set).
 */
int policy_set_swap_eps(struct pol_set *set, const struct pol_eps *from, const struct pol_eps *to);

/*
 * Two versions of a Pod that differ at most in readiness (what a status
 * update of a running pod changes; everything else a plan, the mesh
 * membership or the L7 proxy reads is the same).
 */
bool policy_pod_same_but_ready(const struct pol_pod *a, const struct pol_pod *b);
/*
 * A new EndpointSlice comes into the set where a full load puts it (set
 * order: by file name, then line), or one goes; the index stays valid.
 * Adding back a removed slice undoes the removal. Returns 0, -ENOENT (del:
 * not in set) or -ENOMEM.
 */
int policy_set_add_eps(struct pol_set *set, const struct pol_eps *e);
int policy_set_del_eps(struct pol_set *set, const struct pol_eps *e);
/*
 * The same for a Service (the index stays valid), a VirtualService and a
 * DestinationRule (set order decides which of two for one host wins).
 */
int policy_set_add_svc(struct pol_set *set, const struct pol_service *s);
int policy_set_del_svc(struct pol_set *set, const struct pol_service *s);
int policy_set_add_vs(struct pol_set *set, const struct pol_vs *vs);
int policy_set_del_vs(struct pol_set *set, const struct pol_vs *vs);
int policy_set_add_dr(struct pol_set *set, const struct pol_dr *dr);
int policy_set_del_dr(struct pol_set *set, const struct pol_dr *dr);
/* ... and a Namespace (its labels feed mesh membership only) */
int policy_set_add_ns(struct pol_set *set, const struct pol_namespace *ns);
int policy_set_del_ns(struct pol_set *set, const struct pol_namespace *ns);
/* ... and a Gateway (it feeds the L7 config's gateways only) */
int policy_set_add_gw(struct pol_set *set, const struct pol_gateway *gw);
int policy_set_del_gw(struct pol_set *set, const struct pol_gateway *gw);
/*
 * The same for a Pod (the indexes by name, namespace and IP stay valid): a
 * Pod that comes, goes, or changes more than its readiness (out and in).
 */
int policy_set_add_pod(struct pol_set *set, const struct pol_pod *p);
int policy_set_del_pod(struct pol_set *set, const struct pol_pod *p);
/*
 * The services whose plan a version of Pod p feeds, each passed to note
 * (maybe twice): with slices, those whose EndpointSlices name it
 * (targetRef) or carry its IP (its labels put their backends in
 * DestinationRule subsets; a readiness change does not reach them: slices
 * carry their own), and those without slices whose selector picks it (it
 * is their endpoint). A Pod no slice and no selector names (new, before
 * its slice) feeds none. Needs the index (policy_index_build). Returns 0
 * or what note returned.
 */
int policy_pod_services(const struct pol_set *set, const struct pol_pod *p, bool slices,
			int (*note)(void *arg, const char *ns, const char *name), void *arg);
/* As policy_set_swap_eps, for a Pod; -EINVAL unless policy_pod_same_but_ready. */
int policy_set_swap_pod(struct pol_set *set, const struct pol_pod *from, const struct pol_pod *to);
/*
 * As policy_set_swap_eps, for a VirtualService (same hosts, in order) or a
 * DestinationRule (same host): the services it applies to stay the same,
 * so re-planning those is enough (compile_patch_routes). -EINVAL otherwise.
 */
int policy_set_swap_vs(struct pol_set *set, const struct pol_vs *from, const struct pol_vs *to);
int policy_set_swap_dr(struct pol_set *set, const struct pol_dr *from, const struct pol_dr *to);

/*
 * Indexes (index.c): policy_index_build() sorts pointers to the set's
 * objects once (idempotent; policy_validate and plan_build call it; loading
 * more files drops it). The lookups below need it, except
 * policy_index_service, which scans when there is none. Slices come in set
 * order for one (ns, service); pods of a namespace and pods of one IP in
 * set order.
 */
int policy_index_build(struct pol_set *set);
void policy_index_free(struct pol_set *set);
const struct pol_service *policy_index_service(const struct pol_set *set,
					       const char *ns, size_t ns_len,
					       const char *name, size_t name_len);
const struct pol_eps *const *policy_index_slices(const struct pol_set *set,
						 const char *ns, const char *svc,
						 size_t *n);
const struct pol_pod *policy_index_pod(const struct pol_set *set,
				       const char *ns, const char *name);
const struct pol_pod *const *policy_index_pods_in(const struct pol_set *set,
						  const char *ns, size_t *n);
const struct pol_pod *const *policy_index_pods_ip(const struct pol_set *set,
						  uint32_t ip, size_t *n);
/* The Services of namespace ns, by name. */
const struct pol_service *const *policy_index_services_in(const struct pol_set *set,
							  const char *ns, size_t *n);
/*
 * note(arg, ns, service) for every endpoint of a slice of a service that
 * names Pod p (targetRef, in the slice's namespace) or carries its IP,
 * from a table of the slices' endpoints built at the first call and kept
 * as slices come, go and are swapped (may name one more service on a hash
 * collision: conservative). Returns 0, what note returned, -EINVAL (no
 * index) or -ENOMEM.
 */
int policy_index_pod_slices(const struct pol_set *set, const struct pol_pod *p,
			    int (*note)(void *arg, const char *ns, const char *name), void *arg);
/* Build that table now (idempotent): 0, -EINVAL (no index) or -ENOMEM. */
int policy_index_endpoints(const struct pol_set *set);

/* True when every selector label is present with the same value in labels. */
bool policy_labels_match(const struct pol_labels *selector,
			 const struct pol_labels *labels);

/* Label/annotation value or NULL. */
const char *policy_label_get(const struct pol_labels *labels, const char *key);

/* The Namespace object named name, or NULL when the policy has none. */
const struct pol_namespace *policy_find_namespace(const struct pol_set *set,
						  const char *name);

/*
 * Mesh membership, the way Istio users mark it (user/policy/mesh.c).
 * Pure: decided from the pod's labels, annotations and hostNetwork and its
 * Namespace's labels; in order, the first rule that applies wins:
 *
 *  1. spec.hostNetwork: never (Istio does not inject these either).
 *  2. Istio's ignored namespaces kube-system, kube-public, kube-node-lease,
 *     local-path-storage: never.
 *  3. Opt-outs: pod sidecar.istio.io/inject "false" (the label; the
 *     annotation of the same name only when the label is absent, as
 *     Istio prefers the label), pod label istio.io/dataplane-mode "none".
 *     Either one wins over every opt-in below.
 *  4. Namespace labels: sockmesh.io/mesh=enabled, istio-injection=enabled,
 *     istio.io/dataplane-mode=ambient, or istio.io/rev=<revision> when
 *     istio-injection is absent (istio-injection wins over istio.io/rev).
 *  5. Pod labels (Istio's per-pod enrolment): istio.io/dataplane-mode=ambient,
 *     or sidecar.istio.io/inject=true unless the Namespace says
 *     istio-injection=disabled. The annotation never opts a pod in: Istio's
 *     webhook selects pods by label.
 *  6. Otherwise not in the mesh (also when the Namespace is not in the
 *     policy).
 *
 * Values compare exactly ("enabled", "true"), as Istio's selectors do.
 */
enum pol_mesh_why {
	/* members */
	POL_MESH_NS_SOCKMESH = 0,	/* Namespace sockmesh.io/mesh=enabled */
	POL_MESH_NS_INJECTION,		/* Namespace istio-injection=enabled */
	POL_MESH_NS_AMBIENT,		/* Namespace istio.io/dataplane-mode=ambient */
	POL_MESH_NS_REVISION,		/* Namespace istio.io/rev */
	POL_MESH_POD_AMBIENT,		/* pod istio.io/dataplane-mode=ambient */
	POL_MESH_POD_INJECT,		/* pod label sidecar.istio.io/inject=true */
	/* not members */
	POL_MESH_HOST_NETWORK,
	POL_MESH_SYSTEM_NAMESPACE,
	POL_MESH_OPT_OUT_INJECT,	/* sidecar.istio.io/inject=false */
	POL_MESH_OPT_OUT_AMBIENT,	/* istio.io/dataplane-mode=none */
	POL_MESH_NS_DISABLED,		/* istio-injection=disabled, no other opt-in */
	POL_MESH_NS_UNLABELLED,		/* no mesh label on the Namespace or pod */
	POL_MESH_NS_MISSING,		/* Namespace not in the policy */
};

struct pol_mesh_in {
	const char *ns;				/* the pod's namespace */
	const struct pol_labels *ns_labels;	/* NULL: Namespace not in the policy */
	const struct pol_labels *labels;	/* pod */
	const struct pol_labels *annotations;	/* pod */
	bool host_network;
};

/* True when the pod is in the mesh; *why (may be NULL) says which rule. */
bool policy_mesh_member(const struct pol_mesh_in *in, enum pol_mesh_why *why);

/* The same for a Pod of set (its Namespace looked up in set). */
bool policy_pod_in_mesh(const struct pol_set *set, const struct pol_pod *pod,
			enum pol_mesh_why *why);

/* "namespace label istio-injection=enabled", "pod opted out (...)", ... */
const char *policy_mesh_why_str(enum pol_mesh_why why);

/*
 * Compile check for an Istio regex (RE2 syntax, matched with PCRE2 as a
 * whole-string match). Returns 0, or -EINVAL with the PCRE2 message and
 * offset in err.
 */
int policy_regex_check(const char *re, char *err, size_t errlen);

/*
 * Append a diagnostic unless the same one (level, place, text) is already
 * there: later stages (plan, L7 build) look at one object several times.
 * Returns 0 or -ENOMEM.
 */
int policy_diag_vadd_unique(struct pol_set *set, enum pol_diag_level level,
			    const struct pol_loc *loc, const char *fmt, va_list ap);

/* "file:line:col: error: msg" into buf; returns buf. */
const char *policy_diag_format(const struct pol_diag *d, char *buf, size_t len);

#endif /* SOCKMESH_POLICY_H */
