// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * compile_policy: one resolution for the kernel plan and the L7 config.
 * Istio's portLevelSettings rule pinned on both products; the agreement of
 * the two on every checked-in policy and on random policies.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compile_agree.h"
#include "test.h"

static const struct plan_cluster *cmp_plan_cluster(const struct compile_out *o, uint16_t port,
						   const char *subset)
{
	for (size_t i = 0; i < o->plan.n_svcs; i++) {
		const struct plan_service *ps = &o->plan.svcs[i];

		if (ntohs(ps->key.port) != port)
			continue;
		for (size_t j = 0; j < ps->n_clusters; j++)
			if (subset ? ps->clusters[j].subset && !strcmp(ps->clusters[j].subset, subset)
				   : !ps->clusters[j].subset)
				return &ps->clusters[j];
	}
	return NULL;
}

static int cmp_load(struct pol_set *set, const char *yaml, const struct compile_opts *opts,
		    struct compile_out *out)
{
	char buf[512];
	int ret;

	memset(out, 0, sizeof(*out));
	policy_set_init(set);
	policy_load_buffer(set, "t.yaml", yaml, strlen(yaml));
	if (!set->n_errors)
		policy_validate(set);
	ret = compile_policy(set, opts, out);
	if (ret)
		for (size_t i = 0; i < set->n_diags; i++)
			fprintf(stderr, "    %s\n", policy_diag_format(&set->diags[i], buf, sizeof(buf)));
	return ret;
}

/*
 * Tried as a new user would: an http Service port with a port-level
 * connectionPool under a destination-level `loadBalancer: RANDOM`. Istio:
 * port-level settings do not inherit from the destination level; the
 * loadBalancer the entry omits is the default (LEAST_REQUEST), in the
 * kernel and in the proxy alike. The other port keeps RANDOM.
 */
static const char cmp_port_level_yaml[] =
	"apiVersion: v1\nkind: Service\nmetadata: {name: reviews, namespace: default}\n"
	"spec:\n  clusterIP: 10.96.0.20\n  selector: {app: reviews}\n  ports:\n"
	"  - {name: http, port: 9080, targetPort: 9080}\n"
	"  - {name: http-admin, port: 9090, targetPort: 9090}\n"
	"---\napiVersion: v1\nkind: Pod\n"
	"metadata: {name: r1, namespace: default, labels: {app: reviews, version: v1}}\n"
	"status: {podIP: 10.1.0.1}\n"
	"---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
	"metadata: {name: reviews, namespace: default}\n"
	"spec:\n  host: reviews\n  trafficPolicy:\n"
	"    loadBalancer: {simple: RANDOM}\n"
	"    connectionPool: {tcp: {maxConnections: 100}}\n"
	"    outlierDetection: {consecutive5xxErrors: 3, minHealthPercent: 40}\n"
	"    portLevelSettings:\n"
	"    - port: {number: 9080}\n"
	"      connectionPool: {tcp: {maxConnections: 7}, http: {http1MaxPendingRequests: 2}}\n"
	"  subsets:\n"
	"  - name: v1\n    labels: {version: v1}\n"
	"    trafficPolicy:\n      loadBalancer: {simple: ROUND_ROBIN}\n"
	"      portLevelSettings:\n"
	"      - port: {number: 9090}\n        outlierDetection: {consecutive5xxErrors: 1}\n"
	"---\napiVersion: networking.istio.io/v1\nkind: VirtualService\n"
	"metadata: {name: reviews, namespace: default}\n"
	"spec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews, subset: v1}\n";

TEST(compile_port_level_settings_do_not_inherit)
{
	struct compile_opts opts = { .l7_proxy = true };
	const struct plan_cluster *pc;
	const struct l7_cluster *lc;
	struct compile_out out;
	struct pol_set set;
	char msg[512];
	size_t n;

	if (!ASSERT_EQ(cmp_load(&set, cmp_port_level_yaml, &opts, &out), 0))
		goto out;
	/* 9080: the port-level pool; loadBalancer and outlier back to defaults */
	pc = cmp_plan_cluster(&out, 9080, NULL);
	if (ASSERT_TRUE(pc)) {
		ASSERT_EQ(pc->lb, SM_LB_LEAST_REQUEST);
		ASSERT_EQ(pc->max_conns, 7);
		ASSERT_EQ(pc->min_health_pct, 0);
		lc = compile_agree_l7(out.l7, pc->id);
		if (ASSERT_TRUE(lc)) {
			ASSERT_EQ(lc->lb, L7_LB_LEAST_REQUEST);
			ASSERT_EQ(lc->pool.max_connections, 7);
			ASSERT_EQ(lc->pool.http1_max_pending, 2);
			ASSERT_FALSE(lc->outlier.enabled);
		}
	}
	/* 9090: no entry at the destination level: RANDOM, 100, outlier 3/40 */
	pc = cmp_plan_cluster(&out, 9090, NULL);
	if (ASSERT_TRUE(pc)) {
		ASSERT_EQ(pc->lb, SM_LB_RANDOM);
		ASSERT_EQ(pc->max_conns, 100);
		ASSERT_EQ(pc->min_health_pct, 40);
	}
	/* subset v1 on 9080: the subset's loadBalancer over the port-level merge */
	pc = cmp_plan_cluster(&out, 9080, "v1");
	if (ASSERT_TRUE(pc)) {
		ASSERT_EQ(pc->lb, SM_LB_ROUND_ROBIN);
		ASSERT_EQ(pc->max_conns, 7);
	}
	/* subset v1 on 9090: the subset's port-level outlier replaces all three */
	pc = cmp_plan_cluster(&out, 9090, "v1");
	if (ASSERT_TRUE(pc)) {
		ASSERT_EQ(pc->lb, SM_LB_LEAST_REQUEST);
		ASSERT_EQ(pc->max_conns, 0);
		ASSERT_EQ(pc->min_health_pct, 0);
		lc = compile_agree_l7(out.l7, pc->id);
		if (ASSERT_TRUE(lc)) {
			ASSERT_TRUE(lc->outlier.enabled);
			ASSERT_EQ(lc->outlier.consecutive_5xx, 1);
		}
	}
	if (!ASSERT_EQ(compile_agree_check(&out, &n, msg, sizeof(msg)), 0))
		fprintf(stderr, "    %s\n", msg);
out:
	compile_out_free(&out);
	policy_set_free(&set);
}

/* No proxy: the ports stay at L4 in the kernel and say why they would be L7. */
/*
 * Istio's choice when several objects name a host: the VirtualService (http
 * routes, mesh) and the DestinationRule in the service's namespace, else
 * the first in policy order, whatever the order of their hosts.
 */
TEST(compile_l7_prefers_the_service_namespace)
{
	static const char yaml[] =
		"apiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: default}\n"
		"spec: {clusterIP: 10.96.0.30, ports: [{name: http, port: 80}]}\n"
		"---\napiVersion: v1\nkind: Service\nmetadata: {name: b, namespace: default}\n"
		"spec: {clusterIP: 10.96.0.31, ports: [{name: http, port: 80}]}\n"
		"---\napiVersion: networking.istio.io/v1\nkind: VirtualService\n"
		"metadata: {name: x1, namespace: other}\n"
		"spec: {hosts: [a.default.svc.cluster.local, b.default.svc.cluster.local],"
		" http: [{route: [{destination: {host: a.default.svc.cluster.local}}]}]}\n"
		"---\napiVersion: networking.istio.io/v1\nkind: VirtualService\n"
		"metadata: {name: x2, namespace: third}\n"
		"spec: {hosts: [b.default.svc.cluster.local],"
		" http: [{route: [{destination: {host: b.default.svc.cluster.local}}]}]}\n"
		"---\napiVersion: networking.istio.io/v1\nkind: VirtualService\n"
		"metadata: {name: own, namespace: default}\n"
		"spec: {hosts: [a], http: [{route: [{destination: {host: a}}]}]}\n"
		"---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
		"metadata: {name: d1, namespace: other}\n"
		"spec: {host: b.default.svc.cluster.local}\n"
		"---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
		"metadata: {name: d2, namespace: default}\n"
		"spec: {host: b, trafficPolicy: {outlierDetection: {consecutive5xxErrors: 2}}}\n";
	struct compile_opts opts = { .l7_proxy = true };
	const struct l7_svc *a, *b;
	struct compile_out out;
	struct pol_set set;

	ASSERT_EQ(cmp_load(&set, yaml, &opts, &out), 0);
	a = l7_config_find_svc(out.l7, inet_addr("10.96.0.30"), 80);
	b = l7_config_find_svc(out.l7, inet_addr("10.96.0.31"), 80);
	ASSERT_TRUE(a != NULL && a->vhost != NULL);
	ASSERT_TRUE(b != NULL && b->vhost != NULL);
	/* a: its own namespace's, though x1 comes first */
	ASSERT_STREQ(a->vhost->name, "default/own");
	/* b: none in default, the first of the others */
	ASSERT_STREQ(b->vhost->name, "other/x1");
	/* b's DestinationRule: default's (outlierDetection), not other's */
	ASSERT_TRUE(b->default_cluster->outlier.enabled);
	ASSERT_EQ(b->default_cluster->outlier.consecutive_5xx, 2);
	compile_out_free(&out);
	policy_set_free(&set);
}

TEST(compile_without_proxy_keeps_l4)
{
	struct compile_opts opts = { .l7_proxy = false };
	struct compile_out out;
	struct pol_set set;

	if (!ASSERT_EQ(cmp_load(&set, cmp_port_level_yaml, &opts, &out), 0))
		goto out;
	if (ASSERT_EQ(out.plan.n_svcs, 2)) {
		for (size_t i = 0; i < out.plan.n_svcs; i++) {
			ASSERT_EQ(out.plan.svcs[i].flags & SM_SVC_F_L7, 0);
			ASSERT_TRUE(out.plan.svcs[i].l7_why);
		}
	}
	ASSERT_TRUE(out.l7);
	compile_out_free(&out);
	opts.l7_proxy = true;
	policy_set_free(&set);
	if (!ASSERT_EQ(cmp_load(&set, cmp_port_level_yaml, &opts, &out), 0))
		goto out;
	for (size_t i = 0; i < out.plan.n_svcs; i++)
		ASSERT_EQ(out.plan.svcs[i].flags & SM_SVC_F_L7, SM_SVC_F_L7);
out:
	compile_out_free(&out);
	policy_set_free(&set);
}

/* A set with errors is not compiled. */
TEST(compile_refuses_set_with_errors)
{
	struct compile_opts opts = { .l7_proxy = true };
	struct compile_out out;
	struct pol_set set;

	policy_set_init(&set);
	policy_load_buffer(&set, "bad.yaml", "kind: Service\nspec: {nope: 1}\n", 29);
	ASSERT_TRUE(set.n_errors > 0);
	ASSERT_EQ(compile_policy(&set, &opts, &out), -EINVAL);
	ASSERT_EQ(out.plan.n_svcs, 0);
	ASSERT_TRUE(!out.l7);
	policy_set_free(&set);
}

/* ---- agreement: every checked-in policy ---- */

static const char *const cmp_policy_dirs[] = {
	"policies", "bench/policies", "scripts/k8s", "tests/e2e/policies",
	"tests/e2e/k8s-fixtures", "tests/compat/istio-samples", "tests/unit/data/policy",
	"tests/unit/data/policy/dir", "tests/fuzz/corpus/policy",
};

/* Services the API server would give a clusterIP (Istio's samples have none). */
static void cmp_assign_vips(struct pol_set *set)
{
	for (size_t i = 0; i < set->n_svcs; i++)
		if (!set->svcs[i].cluster_ip && !set->svcs[i].headless)
			set->svcs[i].cluster_ip = htonl(0x0a600100 + (uint32_t)i);
}

/* Compile and check one set; returns clusters compared, -1 when not compiled. */
static long cmp_agree_set(struct pol_set *set, const char *what)
{
	struct compile_opts opts = { .l7_proxy = true };
	struct compile_out out;
	char msg[512];
	size_t n = 0;

	if (set->n_errors || policy_validate(set) || set->n_errors)
		return -1;
	cmp_assign_vips(set);
	if (compile_policy(set, &opts, &out))
		return -1;
	if (compile_agree_check(&out, &n, msg, sizeof(msg)))
		TEST_FAIL_("%s: the kernel plan and the L7 config disagree: %s", what, msg);
	compile_out_free(&out);
	return (long)n;
}

static int cmp_yaml_name(const char *n)
{
	size_t l = strlen(n);

	return (l > 5 && !strcmp(n + l - 5, ".yaml")) || (l > 4 && !strcmp(n + l - 4, ".yml"));
}

TEST(compile_agree_checked_in_policies)
{
	size_t n_sets = 0, n_clusters = 0, n_dirs = 0;

	for (size_t d = 0; d < sizeof(cmp_policy_dirs) / sizeof(cmp_policy_dirs[0]); d++) {
		DIR *dir = opendir(cmp_policy_dirs[d]);
		struct pol_set all;
		struct dirent *e;
		long n;

		if (!dir) {
			TEST_FAIL_("%s: %s (run from the source tree's root)", cmp_policy_dirs[d],
				   strerror(errno));
			continue;
		}
		n_dirs++;
		/* each file on its own ... */
		while ((e = readdir(dir))) {
			char path[1024];
			struct pol_set set;

			if (!cmp_yaml_name(e->d_name))
				continue;
			snprintf(path, sizeof(path), "%s/%s", cmp_policy_dirs[d], e->d_name);
			policy_set_init(&set);
			policy_load_path(&set, path);
			n = cmp_agree_set(&set, path);
			if (n >= 0) {
				n_sets++;
				n_clusters += (size_t)n;
			}
			policy_set_free(&set);
		}
		closedir(dir);
		/* ... and the directory as one policy (the samples refer to each other) */
		policy_set_init(&all);
		policy_load_path(&all, cmp_policy_dirs[d]);
		n = cmp_agree_set(&all, cmp_policy_dirs[d]);
		if (n >= 0) {
			n_sets++;
			n_clusters += (size_t)n;
		}
		policy_set_free(&all);
	}
	ASSERT_EQ(n_dirs, sizeof(cmp_policy_dirs) / sizeof(cmp_policy_dirs[0]));
	ASSERT_GE(n_sets, 30);
	ASSERT_GE(n_clusters, 50);
}

/* ---- agreement: random policies ---- */

static uint8_t cmp_rand_byte(void *ctx)
{
	uint64_t *s = ctx;

	/* xorshift64* */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return (uint8_t)((*s * 0x2545f4914f6cdd1dULL) >> 56);
}

TEST(compile_agree_random_policies)
{
	size_t n_compiled = 0, n_clusters = 0, n_l7 = 0;

	for (uint64_t seed = 1; seed <= 400; seed++) {
		uint64_t st = seed * 0x9e3779b97f4a7c15ULL;
		struct compile_gen g = { .byte = cmp_rand_byte, .ctx = &st };
		struct compile_opts opts = { .l7_proxy = true };
		struct compile_out out;
		struct pol_set set;
		char msg[512], buf[512];
		size_t n = 0;

		if (!ASSERT_EQ(compile_gen_policy(&g), 0)) {
			free(g.buf);
			break;
		}
		policy_set_init(&set);
		policy_load_buffer(&set, "random.yaml", g.buf, g.len);
		if (!set.n_errors)
			policy_validate(&set);
		if (set.n_errors) {
			/* the generator writes valid policies only */
			TEST_FAIL_("seed %llu: invalid policy", (unsigned long long)seed);
			for (size_t i = 0; i < set.n_diags; i++)
				fprintf(stderr, "    %s\n",
					policy_diag_format(&set.diags[i], buf, sizeof(buf)));
			fprintf(stderr, "%s\n", g.buf);
		} else if (ASSERT_EQ(compile_policy(&set, &opts, &out), 0)) {
			n_compiled++;
			if (compile_agree_check(&out, &n, msg, sizeof(msg))) {
				TEST_FAIL_("seed %llu: %s", (unsigned long long)seed, msg);
				fprintf(stderr, "%s\n", g.buf);
			}
			n_clusters += n;
			for (size_t i = 0; i < out.plan.n_svcs; i++)
				n_l7 += !!(out.plan.svcs[i].flags & SM_SVC_F_L7);
			compile_out_free(&out);
		}
		policy_set_free(&set);
		free(g.buf);
		if (test__failed)
			break;
	}
	ASSERT_EQ(n_compiled, 400);
	ASSERT_GE(n_clusters, 400);
	ASSERT_GE(n_l7, 100);
}

/* ---- deltas: the patched kernel plan and the new L7 config still agree ---- */

static const char cmp_delta_services[] =
	"apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default}\n"
	"spec: {clusterIP: 10.96.0.90, ports: [{name: http, port: 8080, targetPort: 9100}]}\n"
	"---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
	"metadata: {name: web, namespace: default}\n"
	"spec:\n  host: web\n  trafficPolicy:\n"
	"    connectionPool: {tcp: {maxConnections: 9}}\n"
	"    outlierDetection: {consecutive5xxErrors: 2, minHealthPercent: 30}\n";

static char *cmp_delta_eps(const char *endpoints)
{
	char *s = NULL;

	if (asprintf(&s, "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
		     "metadata: {name: web-1, namespace: default, "
		     "labels: {kubernetes.io/service-name: web}}\n"
		     "addressType: IPv4\nports: [{name: http, port: 9100}]\nendpoints: %s\n",
		     endpoints) < 0)
		return NULL;
	return s;
}

TEST(compile_patch_services_l7_follows_endpoints)
{
	char *a = cmp_delta_eps("[{addresses: [10.244.0.11]}]");
	char *b = cmp_delta_eps("[{addresses: [10.244.0.12]}, {addresses: [10.244.0.13]}]");
	struct compile_opts opts = { .l7_proxy = true };
	const char *ns[] = { "default" }, *svc[] = { "web" };
	struct l7_config *l7 = NULL;
	struct pol_cache *c = policy_cache_new();
	struct compile_out out = {};
	struct pol_delta d = {};
	struct plan_patch pt = {};
	struct compile_out view;
	struct pol_set set;
	char msg[512];
	size_t n;

	if (!ASSERT_TRUE(a && b && c))
		goto out_free;
	policy_cache_begin(c);
	policy_set_init(&set);
	policy_set_use_cache(&set, c);
	policy_load_buffer(&set, "pol/svc.yaml", cmp_delta_services, strlen(cmp_delta_services));
	policy_load_buffer(&set, "pol/eps.yaml", a, strlen(a));
	if (!ASSERT_EQ(policy_validate(&set), 0) ||
	    !ASSERT_EQ(compile_policy(&set, &opts, &out), 0))
		goto out;
	policy_cache_end(c);
	if (!ASSERT_EQ(out.l7->n_clusters, 1) || !ASSERT_EQ(l7_config_cluster(out.l7, 0)->n_hosts, 1))
		goto out;

	/* without a proxy the L7 pass would mark ports again: not a delta */
	opts.l7_proxy = false;
	ASSERT_EQ(compile_patch_services(&set, &opts, &out, ns, svc, 1, &pt, &l7), -ESTALE);
	ASSERT_TRUE(!l7);
	opts.l7_proxy = true;

	ASSERT_EQ(policy_cache_delta(c, "pol/eps.yaml", b, strlen(b), &d), 0);
	ASSERT_EQ(policy_set_swap_eps(&set, &d.gone[0]->eps[0], &d.added[0]->eps[0]), 0);
	if (!ASSERT_EQ(compile_patch_services(&set, &opts, &out, ns, svc, 1, &pt, &l7), 0) ||
	    !ASSERT_TRUE(l7))
		goto out;
	/* the old config is untouched (workers may still read it) */
	ASSERT_EQ(l7_config_cluster(out.l7, 0)->n_hosts, 1);
	if (ASSERT_EQ(l7->n_clusters, 1)) {
		ASSERT_EQ(l7_config_cluster(l7, 0)->n_hosts, 2);
		ASSERT_EQ(l7_config_cluster(l7, 0)->pool.max_connections, 9);
		ASSERT_EQ(l7_config_cluster(l7, 0)->outlier.min_health_pct, 30);
	}
	ASSERT_EQ(out.plan.svcs[0].flags & SM_SVC_F_L7, SM_SVC_F_L7);
	view.plan = out.plan;
	view.l7 = l7;
	if (!ASSERT_EQ(compile_agree_check(&view, &n, msg, sizeof(msg)), 0))
		fprintf(stderr, "    %s\n", msg);
	ASSERT_EQ(n, 1);
	plan_patch_free(&pt);
	policy_delta_commit(c, &d);
out:
	if (l7)
		l7_config_put(l7);
	compile_out_free(&out);
	policy_set_free(&set);
out_free:
	policy_cache_free(c);
	free(a);
	free(b);
}
