// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * plan_build end to end from YAML through the real parser and validator:
 * what a user writes -> what the maps will hold.
 */
#include <arpa/inet.h>
#include <stdlib.h>

#include "compile/plan.h"
#include "test.h"

static const char bookinfo_yaml[] =
	"apiVersion: v1\n"
	"kind: Service\n"
	"metadata: {name: reviews, namespace: bookinfo}\n"
	"spec:\n"
	"  clusterIP: 10.96.0.20\n"
	"  selector: {app: reviews}\n"
	"  ports:\n"
	"  - {name: tcp-main, port: 9080, targetPort: main}\n"
	"  - {name: tcp-admin, port: 9090, targetPort: 19090}\n"
	"---\n"
	"apiVersion: v1\n"
	"kind: List\n"
	"items:\n"
	"- apiVersion: v1\n"
	"  kind: Pod\n"
	"  metadata: {name: reviews-v1, namespace: bookinfo, labels: {app: reviews, version: v1}}\n"
	"  spec:\n"
	"    containers: [{name: c, image: x, ports: [{containerPort: 8001, name: main}]}]\n"
	"  status: {podIP: 10.244.0.12, conditions: [{type: Ready, status: \"True\"}]}\n"
	"- apiVersion: v1\n"
	"  kind: Pod\n"
	"  metadata: {name: reviews-v2, namespace: bookinfo, labels: {app: reviews, version: v2}}\n"
	"  spec:\n"
	"    containers: [{name: c, image: x, ports: [{containerPort: 8002, name: main}]}]\n"
	"  status: {podIP: 10.244.0.13, conditions: [{type: Ready, status: \"False\"}]}\n"
	"---\n"
	"apiVersion: networking.istio.io/v1\n"
	"kind: DestinationRule\n"
	"metadata: {name: reviews, namespace: bookinfo}\n"
	"spec:\n"
	"  host: reviews.bookinfo.svc.cluster.local\n"
	"  trafficPolicy:\n"
	"    loadBalancer: {simple: LEAST_CONN}\n"
	"    connectionPool: {tcp: {maxConnections: 10}}\n"
	"    portLevelSettings:\n"
	"    - port: {number: 9090}\n"
	"      loadBalancer: {simple: ROUND_ROBIN}\n"
	"  subsets:\n"
	"  - name: v1\n"
	"    labels: {version: v1}\n"
	"    trafficPolicy:\n"
	"      loadBalancer: {consistentHash: {useSourceIp: true}}\n"
	"      outlierDetection: {minHealthPercent: 50}\n"
	"  - name: v2\n"
	"    labels: {version: v2}\n"
	"---\n"
	"apiVersion: networking.istio.io/v1\n"
	"kind: VirtualService\n"
	"metadata: {name: reviews-canary, namespace: bookinfo}\n"
	"spec:\n"
	"  hosts: [reviews]\n"
	"  tcp:\n"
	"  - match: [{port: 9080}]\n"
	"    route:\n"
	"    - destination: {host: reviews, subset: v1}\n"
	"      weight: 80\n"
	"    - destination: {host: reviews.bookinfo, subset: v2}\n"
	"      weight: 20\n";

static const struct plan_service *yaml_find(const struct plan *p, uint16_t port)
{
	for (size_t i = 0; i < p->n_svcs; i++)
		if (ntohs(p->svcs[i].key.port) == port)
			return &p->svcs[i];
	return NULL;
}

static const struct plan_cluster *yaml_cluster(const struct plan_service *s,
					       const char *subset)
{
	for (size_t i = 0; s && i < s->n_clusters; i++)
		if (subset ? s->clusters[i].subset && !strcmp(s->clusters[i].subset, subset)
			   : !s->clusters[i].subset)
			return &s->clusters[i];
	return NULL;
}

TEST(plan_yaml_bookinfo)
{
	struct pol_set set;
	struct plan p = { 0 };
	const struct plan_service *s;
	const struct plan_cluster *c0, *v1, *v2;
	size_t n_v1 = 0, n_v2 = 0;
	char buf[512];

	policy_set_init(&set);
	ASSERT_EQ(policy_load_buffer(&set, "bookinfo.yaml", bookinfo_yaml,
				     sizeof(bookinfo_yaml) - 1), 0);
	ASSERT_EQ(policy_validate(&set), 0);
	for (size_t i = 0; i < set.n_diags; i++)
		if (set.diags[i].level == POL_DIAG_ERROR)
			TEST_FAIL_("%s", policy_diag_format(&set.diags[i], buf, sizeof(buf)));
	if (set.n_errors)
		goto out;
	if (!ASSERT_EQ(plan_build(&set, &p), 0) || !ASSERT_EQ(p.n_svcs, 2))
		goto out;

	s = yaml_find(&p, 9080);
	c0 = yaml_cluster(s, NULL);
	v1 = yaml_cluster(s, "v1");
	v2 = yaml_cluster(s, "v2");
	if (!ASSERT_TRUE(c0 && v1 && v2))
		goto out;
	ASSERT_STREQ(s->fqdn, "reviews.bookinfo.svc.cluster.local");
	ASSERT_EQ(s->key.vip, htonl(0x0a600014));
	/* Named targetPort from each pod; readiness from the Ready condition. */
	if (ASSERT_EQ(c0->n_backends, 2)) {
		ASSERT_EQ(c0->backends[0].key.port, htons(8001));
		ASSERT_EQ(c0->backends[0].flags, SM_BE_F_READY);
		ASSERT_EQ(c0->backends[1].key.port, htons(8002));
		ASSERT_EQ(c0->backends[1].flags, 0);
	}
	ASSERT_EQ(c0->lb, SM_LB_LEAST_REQUEST);
	ASSERT_EQ(c0->max_conns, 10);
	ASSERT_EQ(v1->lb, SM_LB_MAGLEV);
	ASSERT_EQ(v1->max_conns, 10);
	ASSERT_EQ(v1->min_health_pct, 50);
	ASSERT_EQ(v1->maglev_size, 4093);
	ASSERT_EQ(v1->n_backends, 1);
	ASSERT_EQ(v2->lb, SM_LB_LEAST_REQUEST);
	ASSERT_EQ(v2->min_health_pct, 0);
	ASSERT_STREQ(v2->name, "outbound|9080|v2|reviews.bookinfo.svc.cluster.local");
	/* 80/20 canary -> 4:1 slot table. */
	ASSERT_STREQ(s->route_from, "bookinfo/reviews-canary");
	if (ASSERT_EQ(s->n_slots, 5)) {
		for (size_t i = 0; i < s->n_slots; i++) {
			n_v1 += &s->clusters[s->slots[i]] == v1;
			n_v2 += &s->clusters[s->slots[i]] == v2;
		}
		ASSERT_EQ(n_v1, 4);
		ASSERT_EQ(n_v2, 1);
	}

	/*
	 * Port 9090: portLevelSettings loadBalancer, which inherits nothing:
	 * the connectionPool it omits is the default (no limit), not the
	 * destination-level maxConnections 10. The route matches 9080 only.
	 */
	s = yaml_find(&p, 9090);
	c0 = yaml_cluster(s, NULL);
	v1 = yaml_cluster(s, "v1");
	if (ASSERT_TRUE(c0 && v1)) {
		ASSERT_EQ(c0->lb, SM_LB_ROUND_ROBIN);
		ASSERT_EQ(c0->max_conns, 0);
		ASSERT_EQ(v1->lb, SM_LB_MAGLEV);
		ASSERT_EQ(s->n_slots, 0);
		if (ASSERT_EQ(c0->n_backends, 2))
			ASSERT_EQ(c0->backends[1].key.port, htons(19090));
	}
out:
	plan_free(&p);
	policy_set_free(&set);
}
