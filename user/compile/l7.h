/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * l7: the proxy's L7 configuration, the compiler's second product (the
 * kernel plan is the first; compile.h builds both in one pass). Immutable
 * once built and shared by the proxy workers by reference count; a reload
 * builds a new one and swaps the pointer, in-flight requests keep the one
 * they started with. A delta's config shares what did not change with its
 * predecessor: service ports, clusters, vhosts and pods are
 * reference-counted objects in chunked tables (l7_tab.h) that successive
 * generations share, so a delta allocates only the objects and table
 * chunks it changes. Strings are NUL-terminated and owned by the config,
 * except what the routes read from the policy: the http routes are the
 * validated VirtualService objects themselves (struct pol_http_route, with
 * regexes compiled and header names lower-cased at load), not copies; the
 * config holds a counted reference on each VirtualService's cached
 * document (l7_vhost.doc), and the last l7_config_put, on whichever
 * thread, drops them. Derived data (resolved clusters, weights, the retry
 * bitmask) sits in small side structs next to the policy object it
 * belongs to.
 * Addresses network order, ports host order unless a field says otherwise.
 * The router over it is user/proxy/route.h.
 */
#ifndef SOCKMESH_L7_H
#define SOCKMESH_L7_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compile/l7_tab.h"
#include "policy/policy.h"

#define L7_DEFAULT_LISTEN_PORT	15001

/* Envoy retry_on conditions (Istio retries.retryOn). */
enum l7_retry_on {
	L7_RETRY_5XX		= 1 << 0,
	L7_RETRY_GATEWAY_ERROR	= 1 << 1,	/* 502, 503, 504 */
	L7_RETRY_CONNECT_FAILURE = 1 << 2,
	L7_RETRY_RESET		= 1 << 3,
	L7_RETRY_RETRIABLE_4XX	= 1 << 4,	/* 409 */
	L7_RETRY_REFUSED_STREAM	= 1 << 5,
	L7_RETRY_STATUS_CODES	= 1 << 6,	/* codes[] */
	L7_RETRY_ENVOY_RATELIMITED = 1 << 7,
	/* gRPC (Envoy x-envoy-retry-grpc-on): grpc-status of a trailers-only response */
	L7_RETRY_GRPC_CANCELLED	= 1 << 8,	/* 1 */
	L7_RETRY_GRPC_DEADLINE	= 1 << 9,	/* 4 */
	L7_RETRY_GRPC_EXHAUSTED	= 1 << 10,	/* 8 resource-exhausted */
	L7_RETRY_GRPC_INTERNAL	= 1 << 11,	/* 13 */
	L7_RETRY_GRPC_UNAVAILABLE = 1 << 12,	/* 14 */
};

#define L7_RETRY_MAX_CODES 16

struct l7_retry {
	uint32_t attempts;		/* retries after the first try */
	uint64_t per_try_timeout_ms;	/* 0 = the route timeout */
	uint32_t on;			/* L7_RETRY_* */
	uint16_t codes[L7_RETRY_MAX_CODES];
	size_t n_codes;
	bool retry_remote_localities;
	uint64_t backoff_base_ms;	/* Envoy: 25 ms, max 10x */
};

struct l7_cluster;

struct l7_route_dest {
	struct l7_cluster *cluster;	/* resolved; never NULL */
	uint32_t weight;		/* Istio's: one destination 100, unset 0 */
	const struct pol_headers *headers;	/* the destination's (policy) */
};

struct l7_mirror {
	struct l7_cluster *cluster;
	double pct;			/* 0..100, default 100 */
};

/*
 * One http route: the validated policy route (matches, redirect,
 * directResponse, rewrite, fault, CORS, header operations: regexes
 * compiled and header names lower-cased at load) plus what resolution
 * adds. The policy objects belong to their document; the config holds a
 * reference to it (l7_vhost.doc), so they live as long as the config.
 */
struct l7_route {
	const struct pol_http_route *pol;
	struct l7_route_dest *dests;	size_t n_dests;		/* pol->route resolved */
	uint32_t total_weight;
	uint64_t timeout_ms;		/* 0 = none (Istio's default) */
	bool has_retry;			/* false = Istio defaults (attempts 2, 5xx-ish) */
	struct l7_retry retry;		/* pol->retries with Istio's defaults */
	struct l7_mirror *mirrors;	size_t n_mirrors;	/* pol->mirrors resolved */
};

/* A route's fault injection as Envoy applies it: 0 = none. */
static inline uint64_t l7_fault_delay(const struct pol_http_route *r)
{
	return r->fault.delay_set ? r->fault.delay_ms : 0;
}

static inline int l7_fault_abort(const struct pol_http_route *r)
{
	return r->fault.abort_set ? r->fault.abort_status : 0;
}

/* abort.grpcStatus + 1 (0 = none): what a gRPC client gets instead of httpStatus. */
static inline int l7_fault_abort_grpc(const struct pol_http_route *r)
{
	return r->fault.abort_set ? r->fault.abort_grpc : 0;
}

/* The http routes of one VirtualService (or the default route of a service). */
struct l7_vhost {
	unsigned long refs;		/* configs' tables and service ports (atomic) */
	uint64_t key;			/* VirtualService, context port, gateway */
	uint16_t ctx_port;		/* service port; 0 for a gateway's */
	uint64_t *deps;			/* hashes of the destination hosts (FQDNs) */
	size_t n_deps;
	char *name;			/* "ns/name" of the VirtualService, or the service fqdn */
	const char *ns;			/* the VirtualService's namespace (relative
					 * match.gateways names are in it) */
	struct pol_doc *doc;		/* reference on the VirtualService's document
					 * (NULL: the set owns it, see compile.h) */
	char **domains;			/* VirtualService hosts as FQDNs / gateway host patterns */
	size_t n_domains;
	char **gateways;		/* "mesh" and/or "ns/name"; empty = mesh */
	size_t n_gateways;
	struct l7_route *routes;	size_t n_routes;
};

struct l7_host {
	uint32_t addr;			/* network order */
	uint16_t port;			/* host order */
	bool ready;
	char *pod;			/* "ns/name" or NULL */
};

struct l7_outlier_cfg {
	bool enabled;
	uint32_t consecutive_5xx;	/* 0 = off */
	uint32_t consecutive_gateway;	/* 0 = off */
	bool split_local_origin;
	uint32_t consecutive_local_origin;
	uint64_t interval_ms;		/* default 10 s */
	uint64_t base_ejection_ms;	/* default 30 s */
	uint64_t max_ejection_ms;	/* Envoy default 300 s cap */
	uint32_t max_ejection_pct;	/* default 10 (Istio) */
	uint32_t min_health_pct;	/* default 0 */
};

struct l7_pool_cfg {
	uint32_t max_connections;		/* tcp.maxConnections; 0 = unlimited */
	uint64_t connect_timeout_ms;		/* tcp.connectTimeout; default 10 s */
	uint32_t http1_max_pending;		/* 0 = unlimited (Istio default 2^32-1) */
	uint32_t max_requests;			/* http2MaxRequests: outstanding; 0 = unlimited */
	uint32_t max_requests_per_conn;		/* 0 = unlimited */
	uint32_t max_retries;			/* outstanding retries; 0 = unlimited */
	uint64_t idle_timeout_ms;		/* 0 = none */
	uint32_t max_concurrent_streams;	/* per HTTP/2 upstream connection; 0 = the backend's SETTINGS */
	bool h2_upgrade;			/* h2UpgradePolicy UPGRADE: HTTP/2 upstream */
};

enum l7_lb {
	L7_LB_LEAST_REQUEST = 0,
	L7_LB_ROUND_ROBIN,
	L7_LB_RANDOM,
	L7_LB_HASH,			/* hash_kind below, Maglev/ring */
};

struct l7_cluster {
	unsigned long refs;		/* configs' tables, vhosts, service ports (atomic) */
	uint64_t id;			/* = plan_cluster_id() */
	char *name;			/* Envoy-style outbound|port|subset|fqdn */
	char *fqdn;
	char *subset;			/* NULL = default */
	uint16_t port;			/* service port */
	uint8_t lb;			/* L7_LB_* */
	uint8_t hash_kind;		/* POL_HASH_* */
	char *hash_key;			/* header (lower-case) / cookie / query name */
	int64_t cookie_ttl_s;		/* httpCookie.ttl: the proxy sets the cookie
					 * when absent (Max-Age); -1 = never */
	char *cookie_path;		/* httpCookie.path, NULL = none */
	struct l7_host *hosts;		size_t n_hosts;
	struct l7_pool_cfg pool;
	struct l7_outlier_cfg outlier;
	bool h2;			/* upstream speaks HTTP/2 (h2c): port http2/grpc* */
	bool missing;			/* no Service (port) behind it: Envoy has no
					 * such cluster, requests get 503 NC */
};

/* A service port whose connections connect4 sends to the agent. */
struct l7_svc {
	unsigned long refs;		/* (atomic) */
	uint32_t vip;			/* network order */
	uint16_t port;			/* host order */
	char *fqdn;
	char *ns;
	char *name;
	char *why;			/* "VirtualService default/reviews has http routes" ... */
	struct l7_vhost *vhost;		/* NULL = straight to default_cluster */
	struct l7_cluster *default_cluster;
};

struct l7_gw_server {
	uint16_t port;
	char *bind;			/* NULL = agent's --gateway-bind */
	char **hosts;			/* "*", "*.example.com", "ns/host" stripped */
	size_t n_hosts;
	char *name;
};

/* An Istio Gateway that selects this node's agent: its listeners. */
struct l7_gateway {
	char *name;			/* "ns/name" */
	struct l7_gw_server *servers;	size_t n_servers;
	struct l7_vhost **vhosts;	size_t n_vhosts;	/* bound VirtualServices */
};

/* pod identity for sourceLabels / sourceNamespace, by pod IP */
struct l7_pod {
	unsigned long refs;		/* (atomic) */
	uint32_t ip;			/* network order */
	char *ns;
	char *name;
	struct pol_labels labels;
};

/*
 * The tables are read through the functions below (l7_config_svc(c, i),
 * i < n_svcs, in (vip, port) order; clusters by id; vhosts by key; pods by
 * IP); the n_* counts are the tables' sizes.
 */
struct l7_config {
	unsigned long refs;		/* l7_config_get/put (atomic) */
	uint64_t generation;
	struct l7_tab svc_tab;		size_t n_svcs;		/* by (vip, port) */
	/* HTTP/2 / gRPC ports kept at L4 and why (l7_config_l4_why) */
	struct l7_l4_port { uint32_t vip; uint16_t port; char *name; char *why; } *l4_ports;
	size_t n_l4_ports;
	struct l7_tab cluster_tab;	size_t n_clusters;	/* by id */
	struct l7_tab vhost_tab;	size_t n_vhosts;
	struct l7_gateway *gateways;	size_t n_gateways;
	struct l7_tab pod_tab;		size_t n_pods;		/* by IP */
	struct l7_tab dep_tab;		/* service ports by their vhost's destination hosts */
};

/* Built by compile_policy() (compile.h). */
void l7_config_free(struct l7_config *c);

/* Reference counting (built with refs = 1); put frees at zero. Thread safe. */
struct l7_config *l7_config_get(struct l7_config *c);
void l7_config_put(struct l7_config *c);

const struct l7_svc *l7_config_find_svc(const struct l7_config *c, uint32_t vip, uint16_t port);
const struct l7_pod *l7_config_find_pod(const struct l7_config *c, uint32_t ip);
struct l7_cluster *l7_config_find_cluster(const struct l7_config *c, uint64_t id);
/* The i-th entry of a table (i below its n_*), NULL past the end. */
const struct l7_svc *l7_config_svc(const struct l7_config *c, size_t i);
struct l7_cluster *l7_config_cluster(const struct l7_config *c, size_t i);
const struct l7_vhost *l7_config_vhost(const struct l7_config *c, size_t i);
const struct l7_pod *l7_config_pod(const struct l7_config *c, size_t i);
/*
 * A config built by hand (unit tests, fuzzers): indexes caller-owned
 * service ports and clusters (at most L7_TAB_CHUNK each) in h, taking no
 * references and allocating nothing; c's other fields are the caller's.
 * Such a config must never reach l7_config_free (the caller keeps a
 * reference). Returns 0 or -E2BIG.
 */
struct l7_config_hand {
	struct l7_tab_chunk chunk[2];
	struct l7_tab_chunk *ch[2];
	uint64_t lo[2];
	size_t before[2];
};

int l7_config_hand(struct l7_config *c, struct l7_config_hand *h, struct l7_svc *const *svcs,
		   size_t n_svcs, struct l7_cluster *const *clusters, size_t n_clusters);

/* Why an HTTP-like port (vip network order, port host order) is kept at L4; NULL if not. */
const char *l7_config_l4_why(const struct l7_config *c, uint32_t vip, uint16_t port);

#endif /* SOCKMESH_L7_H */
