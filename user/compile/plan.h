/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * plan: a validated policy set -> what the kernel maps must hold.
 *
 * Pure: no BPF calls, no printing. The agent (apply.c) diffs two plans and
 * writes the difference into the maps. Everything is computed here so that it
 * is unit-testable: service -> cluster resolution (Istio host names, subsets,
 * trafficPolicy inheritance and portLevelSettings), endpoints (Pod selector or
 * EndpointSlices, named targetPorts), weighted tcp route slot tables and
 * Maglev tables.
 */
#ifndef SOCKMESH_PLAN_H
#define SOCKMESH_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "common/sm_limits.h"
#include "common/u64map.h"
#include "sockmesh.h"
#include "policy/policy.h"

struct plan_backend {
	struct sm_be_key key;		/* addr/port network order, pad 0 */
	uint32_t flags;			/* SM_BE_F_READY when ready */
	char *pod;			/* "ns/name" of the pod, or NULL */
	struct pol_loc loc;		/* the Pod, or the EndpointSlice endpoint */
};

struct plan_cluster {
	uint64_t id;			/* plan_cluster_id() */
	char *name;			/* Envoy-style "outbound|9080|v1|reviews.default.svc.cluster.local" */
	char *subset;			/* NULL for the default cluster */
	uint8_t lb;			/* SM_LB_* */
	uint8_t min_health_pct;
	uint32_t max_conns;		/* 0 = unlimited */
	struct plan_backend *backends;	/* sorted by (addr, port) */
	size_t n_backends;
	uint32_t *maglev;		/* maglev_size entries (index into backends) */
	uint32_t maglev_size;		/* 0 unless lb == SM_LB_MAGLEV */
	struct pol_loc loc;		/* what made it: the service port, the
					 * subset or the route destination */
};

struct plan_service {
	struct sm_svc_key key;		/* VIP/port network order, proto TCP */
	char *fqdn;			/* reviews.default.svc.cluster.local */
	char *ns;
	char *name;
	uint32_t name_hash;		/* of ns and name (finds a Service's entries) */
	char *port_name;		/* may be NULL */
	struct plan_cluster *clusters;	/* [0] is the cluster traffic goes to
					 * without a route (default/no subset) */
	size_t n_clusters;
	uint16_t *slots;		/* weighted route: cluster index per slot */
	size_t n_slots;			/* 0 = no tcp route: clusters[0] */
	char *route_from;		/* "ns/name" of the VirtualService, or NULL */
	uint16_t flags;			/* SM_SVC_F_L7: set by l7_config_build() */
	char *l7_why;			/* why the port is L7 (malloc'd), or NULL */
	struct pol_loc loc;		/* the Service's ports[] entry */
	struct pol_loc route_loc;	/* the tcp route behind slots */
	size_t order;			/* position in the policy (files in load
					 * order): svcs is sorted by key instead */
	struct pol_diag *diags;		/* what its build said (each once), in
					 * set->diags while an entry says it */
	size_t n_diags;
};

struct plan_dref;

struct plan_pod {
	struct sm_pod_key key;
	uint32_t flags;			/* SM_POD_F_* (annotation opt-outs) */
};

struct plan {
	struct plan_service *svcs;	/* sorted by key (vip, port) */
	size_t n_svcs;
	size_t cap_svcs;		/* svcs allocated (0: n_svcs) */
	struct plan_pod *pods;		/* pods with non-zero flags */
	size_t n_pods;
	struct u64map drefs;		/* diagnostic -> how many svcs say it */
	struct plan_dref **dzero;	/* said by none since the last patch */
	size_t n_dzero, cap_dzero;
};

/*
 * Build the plan from a set that passed policy_validate(). Problems that only
 * show here (e.g. a named targetPort no pod defines) are appended to
 * set->diags as warnings. Returns 0 or -errno (-ENOMEM).
 */
int plan_build(struct pol_set *set, struct plan *out);
void plan_free(struct plan *p);

/*
 * Check that the plan fits the maps as sized by lim, before anything is
 * written: service ports (sm_svc), distinct clusters (sm_cluster), distinct
 * backends (sm_backend), backend list slots (sm_bset), weighted route slots
 * (sm_route) and Maglev slots (sm_maglev). Objects are counted in policy
 * order; the first that does not fit gets one error diagnostic at its
 * file:line:col ("service port #N ... exceeds --max-services=M"), and the
 * check stops there (one cause, one error). Returns 0, -E2BIG (diagnostic
 * added) or -ENOMEM.
 */
/*
 * Mark the pod-network pods of the policy that run on node (spec.nodeName)
 * SM_POD_F_LOCAL in p->pods: with SM_CFG_F_LOCAL_ONLY, sockops puts a
 * socket into the sockhash only when its peer is one of them.
 */
int plan_mark_local(const struct pol_set *set, struct plan *p, const char *node);
/*
 * The flags a pod puts in p->pods (SM_POD_F_NO_REDIRECT; SM_POD_F_LOCAL
 * when it runs on node, NULL or "": none); 0: it has no entry there.
 */
uint32_t plan_pod_flags(const struct pol_pod *p, const char *node);
/*
 * Delta: the pods of address addr (network order) came, went or changed
 * in set (indexed: policy_index_build); make p->pods' entry of addr what
 * plan_build and plan_mark_local(node) make of the set (new, other flags
 * or gone). Returns 0, -EINVAL (no index) or -ENOMEM (p unchanged).
 */
int plan_pods_patch(const struct pol_set *set, struct plan *p, const char *node, uint32_t addr);
/* p->pods' entry of addr (network order; p->pods is sorted by address), or NULL. */
const struct plan_pod *plan_pod_find(const struct plan *p, uint32_t addr);

int plan_check_limits(struct pol_set *set, const struct plan *p,
		      const struct sm_limits *lim);

/*
 * One cluster of a service port, built exactly as plan_build() builds the
 * clusters of the services it programs: endpoints (EndpointSlices, else
 * the selector's Pods; named targetPorts), the subset's labels, the
 * DestinationRule's L4 policy. For the L7 agent, whose http routes name
 * clusters no tcp route needs. port is the service port; subset NULL =
 * the default cluster; a subset no DestinationRule defines gives an empty
 * cluster. Free with plan_cluster_release(). Returns 0, -ENOENT (no such
 * TCP port or the name is too long) or -ENOMEM.
 */
int plan_cluster_fill(struct pol_set *set, const struct pol_service *svc,
		      uint16_t port, const char *subset, struct plan_cluster *out);
void plan_cluster_release(struct plan_cluster *cl);

/*
 * Incremental rebuild after objects changed in set: the entries of p for
 * the services named (ns[k], names[k]) and for every service whose tcp
 * route sends to one of them are built again, exactly as plan_build()
 * would (flags and l7_why as they were: the caller re-decides L7 when
 * routes changed). A named Service the set no longer has (or a port or
 * VIP it lost) loses its entries; one the plan does not have yet (or a
 * port it gained) gets new ones. The old entries are kept in out for
 * plan_patch_undo() (put everything back) or plan_patch_free() (keep the
 * new ones). Problems found are appended to set->diags as plan_build()
 * would, and what the old entries' builds said goes from set->diags (and
 * its counts) when no entry says it any more: set->diags holds what a
 * full load's plan would say (order aside); the undo puts set->diags back
 * as it was. Diagnostics the planning gives no entry for (two Services on
 * one VIP:port, a name too long) stay until a full load. Returns 0, -ESTALE (an entry would take another Service's
 * VIP:port: rebuild the plan and let validation say why) or -ENOMEM; p is
 * unchanged on error.
 */
struct plan_patch {
	size_t *idx;			/* entries of p->svcs (patched) rebuilt or new */
	size_t n;
	size_t n_added;			/* of which new (without prev: the last n_added, inserted) */
	struct sm_svc_key *gone;	/* keys p no longer has */
	size_t n_gone;
	struct plan_service *old;	/* rebuilt and removed entries, as they were */
	size_t n_old;
	struct plan_service *prev;	/* entries came or went: p's array before */
	size_t n_prev, cap_prev;
	struct pol_set *set;		/* whose diags the patch changed: */
	struct pol_diag *dadd;		/* added to set->diags */
	size_t n_dadd;
	struct pol_diag *dgone;		/* taken from set->diags */
	size_t n_dgone;
	bool counted;			/* drefs moved to the new entries */
};
int plan_patch_services(struct pol_set *set, struct plan *p, const char *const *ns,
			const char *const *names, size_t n, struct plan_patch *out);
void plan_patch_undo(struct plan *p, struct plan_patch *pt);
void plan_patch_free(struct plan_patch *pt);

/* The DestinationRule Istio applies to svc (the service's namespace first), or NULL. */
const struct pol_dr *plan_service_dr(struct pol_set *set, const struct pol_service *svc);

/* Stable 64-bit id (FNV-1a) of "fqdn:port|subset" (subset may be NULL). */
uint64_t plan_cluster_id(const char *fqdn, uint16_t port, const char *subset);

/*
 * Weighted slot table: n weights (>= 0, sum > 0) -> n_slots entries, each an
 * index into the weights, proportions exact after dividing by the gcd and,
 * if the sum still exceeds max_slots, scaled down with largest remainder.
 * Slots are interleaved (smooth weighted round robin order) so that any
 * window of the table is close to the proportions. Returns the number of
 * slots written (<= max_slots) or -EINVAL.
 */
int plan_weight_slots(const uint32_t *weights, size_t n, uint16_t *slots,
		      size_t max_slots);

/* Maglev table size (prime, >= 100 * n up to 655 backends; coarse steps). */
uint32_t plan_maglev_size(size_t n_backends);

/*
 * Maglev (Eisenbud et al., NSDI'16) lookup table: m entries (m prime), each
 * an index into backends. Permutations come from two hashes of the backend
 * address so a backend keeps most of its slots when others come and go.
 * Returns 0 or -EINVAL (n == 0).
 */
int plan_maglev_fill(const struct plan_backend *backends, size_t n,
		     uint32_t m, uint32_t *table);

#endif /* SOCKMESH_PLAN_H */
