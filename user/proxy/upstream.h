/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * upstream: runtime state shared by the proxy workers, keyed by ids that
 * survive reloads (cluster id, backend address): per-request load balancing,
 * Envoy-style circuit breakers and outlier detection.
 *
 * Thread safety: every function may be called from any worker. Counters are
 * atomics; the outlier detector takes a mutex. Time is passed in (now_ms,
 * CLOCK_MONOTONIC milliseconds) so tests inject a clock.
 */
#ifndef SOCKMESH_UPSTREAM_H
#define SOCKMESH_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "proxy/route.h"

struct up_registry;

/* Called (from any thread, with no lock held) on every ejection and return. */
struct up_outlier_event {
	uint32_t addr;			/* network order */
	uint16_t port;			/* host order */
	bool ejected;			/* false = returned */
	uint64_t until_ms;		/* ejected: when it returns */
	uint32_t times_ejected;		/* the multiplier used */
	const char *reason;		/* "consecutive_5xx", "consecutive_gateway_failure",
					 * "consecutive_local_origin_failure", "interval" */
	const char *cluster;		/* cluster name */
};

typedef void (*up_outlier_cb)(void *ctx, const struct up_outlier_event *ev);

struct up_registry *up_registry_new(up_outlier_cb cb, void *cb_ctx);
void up_registry_free(struct up_registry *r);

/* ---- load balancing ---- */

/* Value of cookie name in a Cookie header (quotes stripped), or NULL. */
const char *up_cookie_value(const char *hdr, size_t hlen, const char *name, size_t *len);

/*
 * Pick a host of c for one request: eligible = ready and not ejected;
 * below min_health_pct healthy (panic) ejections are ignored. LEAST_REQUEST
 * is power of two choices over active requests, ROUND_ROBIN an exact
 * rotation over eligible hosts, RANDOM, HASH (ring/Maglev over the value
 * of the header/cookie/query parameter, or the source IP; a request
 * without the value falls back to random). Hosts in avoid[] (earlier
 * tries) are skipped while another eligible host remains (Envoy's
 * previous-hosts retry predicate). Returns 0 and *host_idx, or -ENOENT
 * (no healthy upstream: 503 UH).
 */
int up_pick_host(struct up_registry *r, const struct l7_cluster *c,
		 const struct l7_request_view *rq, uint32_t src_ip,
		 const uint32_t *avoid, size_t n_avoid, uint64_t now_ms,
		 uint32_t *host_idx);

/* Active request accounting for LEAST_REQUEST (start before, end after). */
void up_host_request_start(struct up_registry *r, const struct l7_host *h);
void up_host_request_end(struct up_registry *r, const struct l7_host *h);

/* ---- circuit breakers (per cluster, Envoy's semantics) ---- */

enum up_cb_kind {
	UP_CB_PENDING = 0,		/* http1MaxPendingRequests: waiting for a connection */
	UP_CB_REQUESTS,			/* http2MaxRequests: outstanding requests */
	UP_CB_RETRIES,			/* maxRetries: outstanding retries */
	UP_CB_CONNECTIONS,		/* tcp.maxConnections: upstream connections */
	UP_CB_MAX,
};

/*
 * Take one unit of a limit; false = over the limit (the caller answers 503
 * with x-envoy-overloaded: true, flag UO, and the overflow is counted).
 * A limit of 0 is unlimited.
 */
bool up_cb_acquire(struct up_registry *r, const struct l7_cluster *c, enum up_cb_kind k);
void up_cb_release(struct up_registry *r, const struct l7_cluster *c, enum up_cb_kind k);
uint64_t up_cb_overflows(struct up_registry *r, uint64_t cluster_id, enum up_cb_kind k);

/*
 * The same per (cluster, source pod IP): Istio's connectionPool limits hold
 * per client workload per destination (DESIGN.md), so the proxy passes the
 * client's IP (network order). src_ip 0 is the plain per-cluster variant
 * above. Overflows are also added to the cluster's up_cb_overflows() total.
 */
bool up_cb_acquire_src(struct up_registry *r, const struct l7_cluster *c, uint32_t src_ip,
		       enum up_cb_kind k);
void up_cb_release_src(struct up_registry *r, const struct l7_cluster *c, uint32_t src_ip,
		       enum up_cb_kind k);
/* Take one unit of k whatever the limit (Envoy's one connection for an empty pool). */
void up_cb_force_src(struct up_registry *r, const struct l7_cluster *c, uint32_t src_ip,
		     enum up_cb_kind k);
/* Units of k held right now for (cluster, source). */
uint64_t up_cb_count(struct up_registry *r, uint64_t cluster_id, uint32_t src_ip,
		     enum up_cb_kind k);

/* Units of k held right now for the cluster, over every source (admin; walks the table). */
uint64_t up_cb_total(struct up_registry *r, uint64_t cluster_id, enum up_cb_kind k);

/*
 * Waiting for a connection slot across workers. A proxy worker (slot <
 * UP_WAIT_SLOTS) with requests queued for (cluster, source) registers each
 * one with up_cb_wait_begin() and drops it with up_cb_wait_end(); every
 * release of a UP_CB_CONNECTIONS unit of (cluster, source) then calls the
 * registry's waker once per worker with waiters (from the releasing
 * thread, no lock held). Releases with no waiter cost one load. Only one
 * waker per registry: up_registry_set_waker() returns -EBUSY if another is
 * set (that caller must poll instead); fn NULL clears it (when ctx matches).
 *
 * up_cb_wait_begin() returns true when a connection unit is free right
 * now: the caller retries itself, a release that raced with the
 * registration may have missed it.
 */
#define UP_WAIT_SLOTS	256
typedef void (*up_wake_fn)(void *ctx, unsigned int slot);
int up_registry_set_waker(struct up_registry *r, up_wake_fn fn, void *ctx);
bool up_cb_wait_begin(struct up_registry *r, const struct l7_cluster *c, uint32_t src_ip,
		      unsigned int slot);
void up_cb_wait_end(struct up_registry *r, const struct l7_cluster *c, uint32_t src_ip,
		    unsigned int slot);

/* ---- outlier detection (Envoy's, as Istio configures it) ---- */

enum up_result {
	UP_RESULT_HTTP = 0,		/* a response with status (5xx counts) */
	UP_RESULT_CONNECT_FAIL,		/* local origin: connect refused/timeout */
	UP_RESULT_RESET,		/* local origin: reset / EOF before response */
	UP_RESULT_TIMEOUT,		/* local origin: no response in time */
};

/*
 * Record the outcome of one request to host h of cluster c. Ejects at once
 * on the Nth consecutive error (consecutive5xxErrors counts 5xx and, unless
 * splitExternalLocalOriginErrors, local-origin failures; consecutiveGateway
 * counts 502/503/504 and local failures); ejection time = base x times
 * ejected, capped at max_ejection_ms; at most max_ejection_pct of hosts
 * ejected, but one host can always be ejected.
 */
void up_outlier_record(struct up_registry *r, const struct l7_cluster *c,
		       const struct l7_host *h, enum up_result res, int status,
		       uint64_t now_ms);

/*
 * Periodic work (call at least every interval): returns hosts whose time is
 * over, decrements the multiplier of hosts that stayed healthy for an
 * interval. cfg gives the clusters (for their intervals and hosts).
 */
void up_outlier_tick(struct up_registry *r, const struct l7_config *cfg, uint64_t now_ms);

/* Ejected (by outlier detection) right now? */
bool up_host_ejected(struct up_registry *r, uint32_t addr, uint16_t port, uint64_t now_ms);

/* Host state for the CLI: times ejected, ejected until (0 = not), active. */
/* Requests sent to the host (addr network order, port host order) since the agent started. */
uint64_t up_host_requests(struct up_registry *r, uint32_t addr, uint16_t port);
void up_host_info(struct up_registry *r, uint32_t addr, uint16_t port,
		  uint32_t *times_ejected, uint64_t *until_ms, int64_t *active_requests);

/* Kernel-counted connect failures (sm_be_stats) fed in as local-origin failures. */
void up_outlier_connect_failures(struct up_registry *r, const struct l7_cluster *c,
				 const struct l7_host *h, uint64_t new_failures, uint64_t now_ms);

#endif /* SOCKMESH_UPSTREAM_H */
