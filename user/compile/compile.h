/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * compile: the one policy compiler. A validated policy set goes in; the
 * kernel plan (plan.h: services, clusters, backends, route slots, with the
 * L4/L7 flag of every service port final) and the proxy's L7 config (l7.h:
 * virtual hosts, routes, clusters) come out of one pass. Istio's resolution
 * is written here once: host names, DestinationRule and VirtualService
 * selection, the trafficPolicy / subset / portLevelSettings merge
 * (compile_cluster_policy) and protocol selection. The agent's full
 * reloads and deltas, `sockmeshctl validate` and the Kubernetes API feed
 * call it; the proxy only consumes l7_config.
 *
 * Pure: no BPF calls, no printing. Problems are diagnostics in set->diags.
 *
 * Use (the agent's full reload; a Kubernetes API feed does the same with
 * the set its object store fills):
 *
 *	struct compile_opts opts = { .limits = &lim, .l7_proxy = true };
 *	struct compile_out out;
 *
 *	if (policy_validate(&set) || set.n_errors ||
 *	    compile_policy(&set, &opts, &out))
 *		... report set.diags; nothing changes ...
 *	apply out.plan to the maps; hand l7_config_get(out.l7) to the proxy;
 *	compile_out_free(&out);	(or keep it: deltas patch it)
 *
 * The set must outlive out.plan only while plan_patch_services() may still
 * be called on it. out.l7 routes on the set's VirtualService objects
 * themselves (no copies): for a set loaded through a document cache (the
 * agent, sockmeshctl validate) it holds a counted reference on each
 * VirtualService's document (policy_doc_get), so the cache may evict them
 * (policy_cache_end, policy_delta_commit) while a proxy worker still
 * routes on the old config. A set loaded without a cache owns its objects:
 * then out.l7 borrows them and must be put before the set is freed.
 */
#ifndef SOCKMESH_COMPILE_H
#define SOCKMESH_COMPILE_H

#include <stdbool.h>
#include <stdint.h>

#include "compile/l7.h"
#include "compile/plan.h"
#include "policy/policy.h"
#include "common/sm_limits.h"

struct compile_opts {
	/* Map capacities to check the plan against (plan_check_limits);
	 * NULL: no check. */
	const struct sm_limits *limits;
	/* This node's name: its pods are marked SM_POD_F_LOCAL in the plan
	 * (plan_mark_local); NULL or "": none. */
	const char *node;
	/* false: there is no L7 proxy; ports that would be L7 stay at L4 in
	 * the plan (SM_SVC_F_L7 clear, plan_service.l7_why kept to say why
	 * they would be L7). The L7 config is built either way. */
	bool l7_proxy;
	/*
	 * Deltas (compile_patch_*): the IPs (network order; 0 = none) of the
	 * Pods that came, went or changed, both versions. pods_known false:
	 * not known, the L7 config's pod table is read again whole.
	 */
	bool pods_known;
	const uint32_t *pod_ips;
	size_t n_pod_ips;
};

struct compile_out {
	struct plan plan;
	struct l7_config *l7;		/* one reference, NULL until built */
};

/*
 * Compile a set that passed policy_validate() (no errors) into out (zeroed
 * here). Returns 0; -EINVAL when set has errors, or the compile added one
 * (a capacity limit: -E2BIG); -ENOMEM. On error out is empty.
 * compile_out_free() releases out (also a zeroed one); out->l7 may be kept
 * with l7_config_get() beyond it.
 */
int compile_policy(struct pol_set *set, const struct compile_opts *opts,
		   struct compile_out *out);
void compile_out_free(struct compile_out *out);

/*
 * Delta: the EndpointSlices / Pod status of the services named (ns[k],
 * names[k]) changed in set, or those Services came, changed or went
 * without the L7 pass reading them (l7_config_reads_service, both
 * versions). Re-plans them in cur->plan (plan_patch_services: entries
 * rebuilt, new or gone; the old ones kept in pt for plan_patch_undo /
 * plan_patch_free) and, when the L7 config has clusters, compiles a new
 * one into *l7 (NULL otherwise; cur->l7 is left alone). Returns 0,
 * -ESTALE (more than endpoints would change: compile everything) or
 * -ENOMEM; cur is unchanged on error.
 */
int compile_patch_services(struct pol_set *set, const struct compile_opts *opts,
			   struct compile_out *cur, const char *const *ns,
			   const char *const *names, size_t n, struct plan_patch *pt,
			   struct l7_config **l7);

/*
 * Delta: VirtualServices or DestinationRules changed in set, each with the
 * same hosts as before (policy_set_swap_vs / _dr), and maybe endpoints;
 * (ns[k], names[k]) are the services they apply to (hosts of a
 * VirtualService, the host of a DestinationRule) and those of changed
 * EndpointSlices. As compile_patch_services, and the L7 decision of the
 * re-planned entries (SM_SVC_F_L7, l7_why) is taken again: the L7 config
 * is always compiled anew into *l7. The entries written are exactly those
 * in pt (an entry not re-planned keeps its L7 decision: it depends on the
 * VirtualService and DestinationRule of its own host only).
 */
int compile_patch_routes(struct pol_set *set, const struct compile_opts *opts,
			 struct compile_out *cur, const char *const *ns,
			 const char *const *names, size_t n, struct plan_patch *pt,
			 struct l7_config **l7);

/*
 * Does the L7 pass read this VirtualService (http routes)? A change of
 * VirtualServices none of whose versions it reads (tcp routes only), and
 * of endpoints, is compile_patch_services' to do: the L7 config and
 * decisions stay.
 */
static inline bool compile_vs_l7_input(const struct pol_vs *vs)
{
	return vs && vs->n_http > 0;
}

/*
 * The effective policy of the cluster (port, subset) of a service whose
 * DestinationRule is dr (NULL: none), defaults applied. Istio's merge
 * (pilot MergeTrafficPolicy): loadBalancer, connectionPool and
 * outlierDetection each replace as a whole; a portLevelSettings entry for
 * the port replaces all three and inherits nothing (a block it omits takes
 * its default, not the destination-level value); a subset's own policy
 * overrides per block, then the subset's portLevelSettings entry for the
 * port replaces all three again. Both the kernel plan and the L7 config
 * take their cluster settings from this, so they cannot disagree.
 */
struct compile_cluster_policy {
	uint8_t lb;			/* L7_LB_* */
	const struct pol_lb *lb_src;	/* the loadBalancer block that applies
					 * (hash kind, key, loc), NULL = default */
	struct l7_pool_cfg pool;
	struct l7_outlier_cfg outlier;
};

void compile_cluster_policy(const struct pol_dr *dr, const char *subset, uint16_t port,
			    struct compile_cluster_policy *out);

/*
 * The two passes of compile_policy(), for tests that look at one of them.
 * l7_config_build decides which service ports are L7 (Istio protocol
 * selection) and sets SM_SVC_F_L7 and l7_why in plan.
 */
int l7_config_build(struct pol_set *set, struct plan *plan, struct l7_config **out);

/*
 * l7_config_build after a delta: the L7 decision is taken again for the
 * entries of plan->svcs at idx[0..n) (re-planned: their l7_why cleared or
 * carried over); every other entry keeps the one the previous build took,
 * which depends only on its own Service port and the VirtualService and
 * DestinationRule of its host (a change of those re-plans it): an entry
 * without l7_why is L4 and is not looked at, so a delta costs the L7 ports
 * and the re-planned ones, not every service port. The config built is
 * the one l7_config_build would build (test_delta checks it).
 */
int l7_config_rebuild(struct pol_set *set, struct plan *plan, const size_t *idx, size_t n,
		      struct l7_config **out);

/*
 * l7_config_rebuild for a delta that knows its predecessor old (the config
 * the proxy runs; NULL: l7_config_rebuild): the services named (ns[k],
 * names[k]) changed and the entries pt re-planned (pt->idx, pt->gone);
 * opts->pods_known / pod_ips say which Pods changed. The new config
 * shares with old every service port, cluster, vhost and pod the change
 * does not reach: what it makes anew is the re-planned entries', the
 * clusters of the services named and of the re-planned entries, the
 * vhosts whose routes send to those, the gateways, and the pod table
 * entries of the IPs given (all of them when not known). Equal to what
 * l7_config_build would build (tests/unit/test_delta.c checks it). The
 * vhosts it shares route on the VirtualService objects of the set they
 * were built from: with a document cache (the agent) they hold those
 * documents; without one, every set a chain of deltas started from must
 * outlive the configs built.
 */
int l7_config_patch(struct pol_set *set, struct plan *plan, const struct l7_config *old,
		    const char *const *ns, const char *const *names, size_t n,
		    const struct plan_patch *pt, const struct compile_opts *opts,
		    struct l7_config **out);

/*
 * Does l7_config_build() read Service svc (of set, or one that goes from
 * it or comes into it): a port HTTP-like by name or appProtocol, a
 * DestinationRule with L7 policy, a VirtualService with http routes for
 * it, or an http route that sends to it? One it does not read comes, goes
 * or changes without a new L7 config (conservative: when in doubt, true).
 */
bool l7_config_reads_service(struct pol_set *set, const struct pol_service *svc);

#endif /* SOCKMESH_COMPILE_H */
