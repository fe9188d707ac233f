// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * compile: validated policy set -> kernel plan + proxy L7 config, in one
 * pass (see compile.h).
 *
 * Cluster policy defaults (Istio DestinationRule reference, Envoy):
 * loadBalancer unset = LEAST_REQUEST; connectionPool limits 2^32-1 (=
 * unlimited), tcp.connectTimeout 10 s, http.idleTimeout 1 h;
 * outlierDetection consecutive5xxErrors 5, gateway errors off, the
 * deprecated consecutiveErrors = gateway errors with 5xx off, local-origin
 * failures 5, interval 10 s, baseEjectionTime 30 s, maxEjectionPercent 10,
 * minHealthPercent 0, Envoy's max_ejection_time 300 s.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "compile/compile.h"

#define COMPILE_UNLIMITED	0xffffffffLL
#define COMPILE_CONNECT_TIMEOUT_MS 10000
#define COMPILE_HTTP_IDLE_MS	3600000
#define COMPILE_OD_INTERVAL_MS	10000
#define COMPILE_OD_BASE_MS	30000
#define COMPILE_OD_MAX_MS	300000
#define COMPILE_OD_MAX_PCT	10
#define COMPILE_OD_CONSECUTIVE	5

/* Which block of which policy applies: NULL = the default. */
struct compile_tp_eff {
	const struct pol_lb *lb;
	const struct pol_traffic_policy *pool;		/* connectionPool owner */
	const struct pol_traffic_policy *outlier;	/* outlierDetection owner */
};

static bool compile_tp_has_pool(const struct pol_traffic_policy *tp)
{
	return tp->has_pool || tp->max_connections >= 0 || tp->has_http_pool;
}

/* A policy's own blocks replace those before it, each as a whole. */
static void compile_tp_override(struct compile_tp_eff *e, const struct pol_traffic_policy *tp)
{
	if (tp->lb.kind != POL_LB_UNSET)
		e->lb = &tp->lb;
	if (compile_tp_has_pool(tp))
		e->pool = tp;
	if (tp->has_outlier)
		e->outlier = tp;
}

/* Its portLevelSettings entry for port replaces all three, inheriting nothing. */
static void compile_tp_port(struct compile_tp_eff *e, const struct pol_traffic_policy *tp,
			    uint16_t port)
{
	for (size_t i = 0; i < tp->n_port_level; i++) {
		const struct pol_traffic_policy *pl = &tp->port_level[i].tp;

		if (tp->port_level[i].port != port)
			continue;
		e->lb = pl->lb.kind != POL_LB_UNSET ? &pl->lb : NULL;
		e->pool = compile_tp_has_pool(pl) ? pl : NULL;
		e->outlier = pl->has_outlier ? pl : NULL;
		return;
	}
}

static uint32_t compile_limit(int64_t v)
{
	return v <= 0 || v >= COMPILE_UNLIMITED ? 0 : (uint32_t)v;
}

static void compile_pool(const struct pol_traffic_policy *p, struct l7_pool_cfg *pool)
{
	memset(pool, 0, sizeof(*pool));
	pool->connect_timeout_ms = COMPILE_CONNECT_TIMEOUT_MS;
	pool->idle_timeout_ms = COMPILE_HTTP_IDLE_MS;
	if (!p)
		return;
	pool->max_connections = compile_limit(p->max_connections);
	if (p->connect_timeout_ms > 0)
		pool->connect_timeout_ms = (uint64_t)p->connect_timeout_ms;
	if (p->has_http_pool) {
		pool->http1_max_pending = compile_limit(p->http.http1_max_pending);
		pool->max_requests = compile_limit(p->http.http2_max_requests);
		pool->max_requests_per_conn = compile_limit(p->http.max_requests_per_conn);
		pool->max_retries = compile_limit(p->http.max_retries);
		if (p->http.idle_timeout_ms >= 0)
			pool->idle_timeout_ms = (uint64_t)p->http.idle_timeout_ms;
		pool->max_concurrent_streams = compile_limit(p->http.max_concurrent_streams);
		pool->h2_upgrade = p->http.h2_upgrade == 1;
	}
}

static void compile_outlier(const struct pol_traffic_policy *tp, struct l7_outlier_cfg *oc)
{
	const struct pol_outlier *o;

	memset(oc, 0, sizeof(*oc));
	if (!tp)
		return;
	o = &tp->outlier;
	oc->enabled = true;
	oc->consecutive_5xx = COMPILE_OD_CONSECUTIVE;
	/* pilot applyOutlierDetection: the deprecated field counts gateway
	 * errors only. */
	if (o->consecutive_errors > 0) {
		oc->consecutive_gateway = (uint32_t)o->consecutive_errors;
		oc->consecutive_5xx = 0;
	}
	if (o->consecutive_5xx >= 0)
		oc->consecutive_5xx = (uint32_t)o->consecutive_5xx;
	if (o->consecutive_gateway >= 0)
		oc->consecutive_gateway = (uint32_t)o->consecutive_gateway;
	oc->split_local_origin = o->split_local_origin;
	oc->consecutive_local_origin = o->consecutive_local_origin >= 0 ?
		(uint32_t)o->consecutive_local_origin : COMPILE_OD_CONSECUTIVE;
	oc->interval_ms = o->interval_ms > 0 ? (uint64_t)o->interval_ms : COMPILE_OD_INTERVAL_MS;
	oc->base_ejection_ms = o->base_ejection_ms > 0 ?
		(uint64_t)o->base_ejection_ms : COMPILE_OD_BASE_MS;
	oc->max_ejection_ms = COMPILE_OD_MAX_MS;
	if (oc->max_ejection_ms < oc->base_ejection_ms)
		oc->max_ejection_ms = oc->base_ejection_ms;
	oc->max_ejection_pct = o->max_ejection_percent > 0 ?
		(uint32_t)o->max_ejection_percent : COMPILE_OD_MAX_PCT;
	if (tp->min_health_percent > 100)
		oc->min_health_pct = 100;
	else if (tp->min_health_percent > 0)
		oc->min_health_pct = (uint32_t)tp->min_health_percent;
}

void compile_cluster_policy(const struct pol_dr *dr, const char *subset, uint16_t port,
			    struct compile_cluster_policy *out)
{
	struct compile_tp_eff e = { 0 };
	const struct pol_subset *ss = NULL;

	for (size_t i = 0; dr && subset && i < dr->n_subsets; i++)
		if (dr->subsets[i].name && strcmp(dr->subsets[i].name, subset) == 0)
			ss = &dr->subsets[i];
	if (dr) {
		compile_tp_override(&e, &dr->tp);
		compile_tp_port(&e, &dr->tp, port);
	}
	if (ss) {
		compile_tp_override(&e, &ss->tp);
		compile_tp_port(&e, &ss->tp, port);
	}

	memset(out, 0, sizeof(*out));
	out->lb = L7_LB_LEAST_REQUEST;
	out->lb_src = e.lb;
	if (e.lb) {
		switch (e.lb->kind) {
		case POL_LB_ROUND_ROBIN:
			out->lb = L7_LB_ROUND_ROBIN;
			break;
		case POL_LB_RANDOM:
		case POL_LB_PASSTHROUGH:
			out->lb = L7_LB_RANDOM;
			break;
		case POL_LB_CONSISTENT_HASH:
			out->lb = L7_LB_HASH;
			break;
		default:
			break;
		}
	}
	compile_pool(e.pool, &out->pool);
	compile_outlier(e.outlier, &out->outlier);
}

void compile_out_free(struct compile_out *out)
{
	if (!out)
		return;
	if (out->l7)
		l7_config_put(out->l7);
	plan_free(&out->plan);
	memset(out, 0, sizeof(*out));
}

/* No proxy: what would be L7 stays at L4 (l7_why says why it would be). */
static void compile_keep_l4(struct plan *p)
{
	for (size_t i = 0; i < p->n_svcs; i++)
		p->svcs[i].flags &= ~SM_SVC_F_L7;
}

int compile_policy(struct pol_set *set, const struct compile_opts *opts,
		   struct compile_out *out)
{
	int ret;

	memset(out, 0, sizeof(*out));
	if (set->n_errors)
		return -EINVAL;
	ret = plan_build(set, &out->plan);
	if (!ret && !set->n_errors && opts->limits)
		ret = plan_check_limits(set, &out->plan, opts->limits);
	if (!ret && !set->n_errors && opts->node && *opts->node)
		ret = plan_mark_local(set, &out->plan, opts->node);
	if (!ret && !set->n_errors)
		ret = l7_config_build(set, &out->plan, &out->l7);
	if (!ret && set->n_errors)
		ret = -EINVAL;
	if (ret) {
		compile_out_free(out);
		return ret;
	}
	if (!opts->l7_proxy)
		compile_keep_l4(&out->plan);
	return 0;
}

/*
 * routes: a VirtualService or DestinationRule changed; the L7 decision of
 * the entries re-planned is taken again, as compile_policy takes it.
 */
static int compile_patch(struct pol_set *set, const struct compile_opts *opts,
			 struct compile_out *cur, const char *const *ns,
			 const char *const *names, size_t n, struct plan_patch *pt,
			 struct l7_config **l7, bool routes)
{
	bool rebuild_l7 = routes || (cur->l7 && cur->l7->n_clusters);
	int ret;

	*l7 = NULL;
	/*
	 * Without a proxy the plan's L7 flags were cleared after the L7
	 * pass; that pass would set them again (on entries an endpoint
	 * delta does not write).
	 */
	if (rebuild_l7 && !opts->l7_proxy && !routes)
		return -ESTALE;	/* (an endpoint delta with a proxy-less L7 config) */
	ret = plan_patch_services(set, &cur->plan, ns, names, n, pt);
	if (ret)
		return ret;
	for (size_t k = 0; routes && k < pt->n; k++) {
		struct plan_service *ps = &cur->plan.svcs[pt->idx[k]];

		ps->flags &= ~SM_SVC_F_L7;
		free(ps->l7_why);
		ps->l7_why = NULL;
	}
	/* the L7 proxy's clusters follow the endpoints too */
	if (rebuild_l7) {
		ret = l7_config_patch(set, &cur->plan, cur->l7, ns, names, n, pt, opts, l7);
		if (ret) {
			plan_patch_undo(&cur->plan, pt);
			return ret;
		}
	}
	/* the entries not re-planned had theirs cleared the same way */
	if (routes && !opts->l7_proxy)
		compile_keep_l4(&cur->plan);
	return 0;
}

int compile_patch_services(struct pol_set *set, const struct compile_opts *opts,
			   struct compile_out *cur, const char *const *ns,
			   const char *const *names, size_t n, struct plan_patch *pt,
			   struct l7_config **l7)
{
	return compile_patch(set, opts, cur, ns, names, n, pt, l7, false);
}

int compile_patch_routes(struct pol_set *set, const struct compile_opts *opts,
			 struct compile_out *cur, const char *const *ns,
			 const char *const *names, size_t n, struct plan_patch *pt,
			 struct l7_config **l7)
{
	return compile_patch(set, opts, cur, ns, names, n, pt, l7, true);
}
