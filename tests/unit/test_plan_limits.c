// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * plan_check_limits() and the --max-* table (sm_limits): the first object
 * that does not fit the maps, in policy order, gets one error at its
 * file:line:col; shared clusters and backends count once.
 */
#include <errno.h>
#include <stdlib.h>

#include "compile/plan.h"
#include "common/sm_limits.h"
#include "test.h"

/*
 * Service ports in policy order: a:80, a:81, b:80 (b sorts first by VIP).
 * Clusters: a:80 {default, v1, v2}, a:81 {default, v1, v2}, b:80 {default}
 * plus b's route to a:80 v1/v2 (shared): 7. Backends: 10.1.0.1 and
 * 10.1.0.2 on 80 and 81: 4 (b:80 shares a:80's). Backend-list slots:
 * 4 + 4 + 2 = 10. Route slots: 50/50 = 2. Maglev: b:80's table, 4093.
 */
static const char limits_yaml[] =
	"apiVersion: v1\n"
	"kind: Service\n"
	"metadata: {name: a}\n"
	"spec: {clusterIP: 10.96.0.2, selector: {app: a}, ports: [{port: 80}, {port: 81}]}\n"
	"---\n"
	"apiVersion: v1\n"
	"kind: Service\n"
	"metadata: {name: b}\n"
	"spec: {clusterIP: 10.96.0.1, selector: {app: a}, ports: [{port: 80}]}\n"
	"---\n"
	"apiVersion: v1\n"
	"kind: Pod\n"
	"metadata: {name: a-1, labels: {app: a, version: v1}}\n"
	"status: {podIP: 10.1.0.1}\n"
	"---\n"
	"apiVersion: v1\n"
	"kind: Pod\n"
	"metadata: {name: a-2, labels: {app: a, version: v2}}\n"
	"status: {podIP: 10.1.0.2}\n"
	"---\n"
	"apiVersion: networking.istio.io/v1\n"
	"kind: DestinationRule\n"
	"metadata: {name: a}\n"
	"spec:\n"
	"  host: a\n"
	"  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]\n"
	"---\n"
	"apiVersion: networking.istio.io/v1\n"
	"kind: DestinationRule\n"
	"metadata: {name: b}\n"
	"spec:\n"
	"  host: b\n"
	"  trafficPolicy: {loadBalancer: {consistentHash: {useSourceIp: true}}}\n"
	"---\n"
	"apiVersion: networking.istio.io/v1\n"
	"kind: VirtualService\n"
	"metadata: {name: b}\n"
	"spec:\n"
	"  hosts: [b]\n"
	"  tcp:\n"
	"  - route:\n"
	"    - {destination: {host: a, subset: v1}, weight: 50}\n"
	"    - {destination: {host: a, subset: v2}, weight: 50}\n";

TEST(plan_check_limits_table)
{
	static const struct {
		const char *desc;
		enum sm_limit limit;
		uint32_t value;
		const char *msg;	/* NULL: fits */
		uint32_t line, col;
	} t[] = {
		{ "exact fit: services", SM_LIMIT_SERVICES, 3, NULL, 0, 0 },
		{ "services: #3 in policy order is b:80", SM_LIMIT_SERVICES, 2,
		  "service port #3 (default/b:80) exceeds --max-services=2", 9, 58 },
		{ "exact fit: clusters (shared ones count once)", SM_LIMIT_CLUSTERS, 7, NULL, 0, 0 },
		{ "clusters: b:80's default is #7", SM_LIMIT_CLUSTERS, 6,
		  "cluster #7 (outbound|80||b.default.svc.cluster.local) exceeds --max-clusters=6", 9, 58 },
		{ "clusters: a's subset v1 on port 81 is #5", SM_LIMIT_CLUSTERS, 4,
		  "cluster #5 (outbound|81|v1|a.default.svc.cluster.local)", 26, 13 },
		{ "backends: 10.1.0.2:81 (pod a-2) is #4", SM_LIMIT_BACKENDS, 3,
		  "backend #4 (10.1.0.2:81) exceeds --max-backends=3", 17, 1 },
		{ "backend lists: 10 slots, sm_bset holds 2 x 4", SM_LIMIT_BACKENDS, 4,
		  "its 2 backends bring the backend-list slots to 10, over the 8 sm_bset holds (2 x --max-backends=4)",
		  9, 58 },
		{ "exact fit: backend lists", SM_LIMIT_BACKENDS, 5, NULL, 0, 0 },
		{ "route slots", SM_LIMIT_ROUTE_SLOTS, 1,
		  "the weighted route of default/b:80 (2 slots) brings the route slots to 2, over --max-route-slots=1",
		  41, 5 },
		{ "exact fit: route slots", SM_LIMIT_ROUTE_SLOTS, 2, NULL, 0, 0 },
		{ "Maglev slots", SM_LIMIT_MAGLEV_SLOTS, 4092,
		  "Maglev slots to 4093, over --max-maglev-slots=4092", 9, 58 },
		{ "exact fit: Maglev slots", SM_LIMIT_MAGLEV_SLOTS, 4093, NULL, 0, 0 },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct sm_limits lim;
		struct pol_set s;
		struct plan p;
		int ret;

		sm_limits_init(&lim);
		lim.v[t[i].limit] = t[i].value;
		policy_set_init(&s);
		ASSERT_EQ(policy_load_buffer(&s, "l.yaml", limits_yaml, strlen(limits_yaml)), 0);
		ASSERT_EQ(policy_validate(&s), 0);
		ASSERT_EQ(plan_build(&s, &p), 0);
		ret = plan_check_limits(&s, &p, &lim);
		/* every assertion runs (no short cut), then one report */
		if (!(ASSERT_EQ(ret, t[i].msg ? -E2BIG : 0) &
		      ASSERT_EQ(s.n_errors, t[i].msg ? 1 : 0)))
			fprintf(stderr, "  case \"%s\"\n", t[i].desc);
		if (t[i].msg && s.n_errors == 1) {
			const struct pol_diag *d = &s.diags[s.n_diags - 1];

			if (!(ASSERT_TRUE(strstr(d->msg, t[i].msg)) &
			      ASSERT_EQ(d->loc.line, t[i].line) & ASSERT_EQ(d->loc.col, t[i].col)))
				fprintf(stderr, "  case \"%s\": got %u:%u %s\n", t[i].desc,
					d->loc.line, d->loc.col, d->msg);
		}
		plan_free(&p);
		policy_set_free(&s);
	}
}

TEST(sm_limits_flags)
{
	struct sm_limits l;

	sm_limits_init(&l);
	ASSERT_EQ(l.v[SM_LIMIT_SERVICES], SM_MAX_SERVICES);
	ASSERT_EQ(sm_limits_map_entries(&l, "sm_bset"), SM_MAX_BSET);
	ASSERT_EQ(sm_limits_map_entries(&l, "sm_meta"), SM_MAX_META);
	ASSERT_EQ(sm_limits_map_entries(&l, "sm_config"), 0);
	ASSERT_EQ(sm_limits_set(&l, "--max-backends", "100"), 0);
	ASSERT_EQ(sm_limits_map_entries(&l, "sm_backend"), 100);
	ASSERT_EQ(sm_limits_map_entries(&l, "sm_be_stats"), 100);
	ASSERT_EQ(sm_limits_map_entries(&l, "sm_bset"), 200);
	ASSERT_EQ(sm_limits_set(&l, "max-services", "16"), 0);
	ASSERT_EQ(sm_limits_map_entries(&l, "sm_svc"), 16);
	ASSERT_EQ(sm_limits_set(&l, "max-services", "15"), -EINVAL);
	ASSERT_EQ(sm_limits_set(&l, "max-services", "16777217"), -EINVAL);
	ASSERT_EQ(sm_limits_set(&l, "max-services", "-16"), -EINVAL);
	ASSERT_EQ(sm_limits_set(&l, "max-services", "20x"), -EINVAL);
	ASSERT_EQ(sm_limits_set(&l, "max-services", ""), -EINVAL);
	ASSERT_EQ(sm_limits_set(&l, "max-widgets", "20"), -ENOENT);
	ASSERT_EQ(l.v[SM_LIMIT_SERVICES], 16);
}
