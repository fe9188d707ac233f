/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * apply: write a plan into the kernel maps, as a diff against the plan
 * applied before.
 *
 * Atomicity: a connection never sees half a service. Backend lists and
 * weighted route tables are versioned: a changed list is written under a new
 * set_id / route_id first, and only then does one map update switch the
 * cluster (sm_cluster) or service (sm_svc) entry to it. Each element update
 * of a BPF hash map is atomic for readers. Superseded versions are deleted
 * after APPLY_GRACE_NS, when no connect4 can still be reading them.
 * Established connections are never touched: removing a backend only stops
 * new connections to it.
 */
#ifndef SOCKMESH_APPLY_H
#define SOCKMESH_APPLY_H

#include <stdint.h>

#include "common/dp.h"
#include "compile/plan.h"
#include "common/u64map.h"

#define APPLY_GRACE_NS	(1000ull * 1000 * 1000)	/* 1 s for old versions */

struct apply_defer {
	uint64_t due_ns;
	uint32_t kind;		/* 0 = backend set (+maglev), 1 = route */
	uint32_t id;
	uint32_t n;		/* entries (set size or route slots) */
	uint32_t maglev_size;
};

struct apply_batch;

struct apply_ctx {
	struct dp_maps maps;		/* fds, not owned */
	uint32_t next_set_id;
	uint32_t next_route_id;
	struct u64map clusters;		/* cluster id -> struct apply_cluster * */
	struct u64map svcs;		/* svc key64 -> struct apply_svc * */
	struct u64map backends;		/* be id -> struct apply_be * */
	struct u64map pods;		/* pod addr -> struct apply_pod * */
	struct apply_defer *defer;
	size_t n_defer, cap_defer;
	uint64_t generation;
	uint32_t cfg_flags;		/* SM_CFG_F_* written with each apply */
	uint32_t l7_addr;		/* L7 listener, network order; 0 = none */
	uint16_t l7_port;		/* network order */
	uint64_t sweep_due_ns;		/* full sweep of foreign entries due */
	bool maps_adopted;		/* sm_backend held entries at start */
	/*
	 * Set by the caller for the first apply: the display names (sm_meta,
	 * read by no program) are written by apply_flush_names() once the
	 * data path serves, not before (~120k entries at 10k services).
	 */
	bool defer_names;
	struct apply_batch *names;	/* deferred sm_meta updates, or NULL */
	/* slots the applied records use in sm_bset, sm_maglev, sm_route */
	uint64_t live_bset, live_maglev, live_route;
	/* figures of the last apply, for logs and /status */
	uint64_t last_apply_ns;		/* duration */
	uint32_t last_writes, last_deletes;
};

/*
 * Start from the maps as they are (fresh or adopted from a previous agent):
 * ids continue above those in use, and entries the first plan does not
 * claim are swept after the grace period.
 */
int apply_init(struct apply_ctx *a, const struct dp_maps *m, uint32_t cfg_flags);
void apply_fini(struct apply_ctx *a);
/* Write the display names an apply deferred (defer_names); best effort. */
void apply_flush_names(struct apply_ctx *a);

/*
 * Apply p. Returns 0, or -errno with err filled (maps then hold a mix of
 * old and new clusters, each one whole; the caller keeps serving and
 * retries on the next reload).
 */
int apply_plan(struct apply_ctx *a, const struct plan *p, char *err, size_t errlen);

/*
 * Apply the services idx[0..n) of p, whose clusters (backend lists,
 * readiness) may have changed since the last apply or which are new, and
 * remove the service ports gone[0..n_gone) p no longer has: every other
 * service of p must be as applied before. Costs what changed, not the
 * plan's size (a one-endpoint change of a 10k-service plan writes a few
 * entries; a new Service its own). Services written must have clusters.
 * Returns 0; -E2BIG or -EAGAIN (does not fit; nothing written); -ESTALE
 * (not such a change: apply the whole plan); other -errno with err
 * filled: as apply_plan.
 */
int apply_services(struct apply_ctx *a, const struct plan *p, const size_t *idx, size_t n,
		   const struct sm_svc_key *gone, size_t n_gone, char *err, size_t errlen);

/*
 * Make sm_pod's entries of the addresses addrs[0..n) (network order) what
 * p->pods says (written, rewritten with other flags, or deleted): a delta
 * of pods that opt out of the redirect or run on this node. Returns 0;
 * -E2BIG (does not fit; nothing written); other -errno with err filled:
 * as apply_plan.
 */
int apply_pods(struct apply_ctx *a, const struct plan *p, const uint32_t *addrs, size_t n,
	       char *err, size_t errlen);

/* Delete superseded versions whose grace period is over; run the sweep. */
void apply_gc(struct apply_ctx *a, uint64_t now_ns);

#endif /* SOCKMESH_APPLY_H */
