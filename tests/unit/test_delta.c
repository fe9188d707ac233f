// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Incremental reloads, the pure parts: u64map deletion, the document
 * cache's per-file deltas (policy_cache_delta) and the plan patch
 * (plan_patch_services), which must give exactly the plan a full
 * plan_build() of the changed policy gives, and undo to the old one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "compile/compile.h"
#include "compile/plan.h"
#include "policy/policy.h"
#include "test.h"
#include "test_plan_text.h"
#include "common/u64map.h"

TEST(u64map_del_keeps_every_other_key)
{
	/* a small table: long probe runs that wrap around the end */
	for (uint64_t seed = 1; seed <= 20; seed++) {
		struct u64map m;
		uint64_t keys[200], x = seed;
		bool in[200];

		ASSERT_EQ(u64map_init(&m, 4), 0);
		for (size_t i = 0; i < 200; i++) {
			x = x * 6364136223846793005ull + 1442695040888963407ull;
			keys[i] = (x >> 11) | 1;
			in[i] = true;
			ASSERT_EQ(u64map_put(&m, keys[i], &keys[i]), 0);
		}
		for (size_t round = 0; round < 3; round++) {
			for (size_t i = round; i < 200; i += 3) {
				ASSERT_TRUE(u64map_del(&m, keys[i]) == (in[i] ? &keys[i] : NULL));
				in[i] = false;
			}
			for (size_t i = 0; i < 200; i++)
				ASSERT_TRUE(u64map_get(&m, keys[i]) == (in[i] ? &keys[i] : NULL));
			/* some come back */
			for (size_t i = round; i < 200; i += 7) {
				ASSERT_EQ(u64map_put(&m, keys[i], &keys[i]), 0);
				in[i] = true;
			}
		}
		ASSERT_TRUE(u64map_del(&m, 12345) == NULL);
		u64map_free(&m);
	}
}

/* ---- a policy: web (slices, Maglev), front (tcp route to web), api (own slice) ---- */

/* web, and front with two ports */
#define SVC_WEB_FRONT \
	"apiVersion: v1\n" \
	"kind: Service\n" \
	"metadata: {name: web, namespace: default}\n" \
	"spec: {clusterIP: 10.96.0.90, ports: [{name: tcp, port: 8080, targetPort: 9100}]}\n" \
	"---\n" \
	"apiVersion: v1\n" \
	"kind: Service\n" \
	"metadata: {name: front, namespace: default}\n" \
	"spec: {clusterIP: 10.96.0.91, ports: [{name: tcp, port: 8080}, {name: tcp-2, port: 8081}]}\n"

static const char *pol_services =
	SVC_WEB_FRONT
	"---\n"
	"apiVersion: v1\n"
	"kind: Service\n"
	"metadata: {name: api, namespace: default}\n"
	"spec: {clusterIP: 10.96.0.92, ports: [{name: tcp, port: 80, targetPort: 8000}]}\n"
	"---\n"
	"apiVersion: networking.istio.io/v1\n"
	"kind: DestinationRule\n"
	"metadata: {name: web, namespace: default}\n"
	"spec:\n"
	"  host: web\n"
	"  trafficPolicy: {loadBalancer: {consistentHash: {useSourceIp: true}}}\n"
	"  subsets: [{name: v2, labels: {version: v2}}]\n"
	"---\n"
	"apiVersion: networking.istio.io/v1\n"
	"kind: VirtualService\n"
	"metadata: {name: front, namespace: default}\n"
	"spec:\n"
	"  hosts: [front]\n"
	"  tcp:\n"
	"  - match: [{port: 8080}]\n"
	"    route:\n"
	"    - {destination: {host: web, port: {number: 8080}}, weight: 75}\n"
	"    - {destination: {host: web, subset: v2, port: {number: 8080}}, weight: 25}\n"
	"---\n"
	"apiVersion: v1\n"
	"kind: Pod\n"
	"metadata: {name: web-b, namespace: default, labels: {app: web, version: v2}}\n"
	"status: {podIP: 10.244.0.12}\n";

static const char *pol_api_eps =
	"apiVersion: discovery.k8s.io/v1\n"
	"kind: EndpointSlice\n"
	"metadata: {name: api-1, namespace: default, labels: {kubernetes.io/service-name: api}}\n"
	"addressType: IPv4\n"
	"ports: [{name: tcp, port: 8000}]\n"
	"endpoints: [{addresses: [10.244.0.20]}]\n";

/* The slice file: web-1 with the given endpoints (flow list), then api's. */
static char *web_eps(const char *endpoints)
{
	char *s = NULL;

	ASSERT_TRUE(asprintf(&s,
		"apiVersion: discovery.k8s.io/v1\n"
		"kind: EndpointSlice\n"
		"metadata: {name: web-1, namespace: default, labels: {kubernetes.io/service-name: web}}\n"
		"addressType: IPv4\n"
		"ports: [{name: tcp, port: 9100}]\n"
		"endpoints: %s\n"
		"---\n%s", endpoints, pol_api_eps) > 0);
	return s;
}

#define EPS_A "[{addresses: [10.244.0.11]}, {addresses: [10.244.0.12], conditions: {ready: true}}]"
#define EPS_B "[{addresses: [10.244.0.12], conditions: {ready: false}}, " \
	      "{addresses: [10.244.0.13]}, {addresses: [10.244.0.14]}]"

/* A full load, validate and plan of the two files and a pod file (NULL: none), without a cache. */
static char *full_plan_pods(const char *eps_yaml, const char *pods)
{
	struct pol_set s;
	struct plan p;
	char *t;

	policy_set_init(&s);
	ASSERT_EQ(policy_load_buffer(&s, "pol/services.yaml", pol_services, strlen(pol_services)), 0);
	ASSERT_EQ(policy_load_buffer(&s, "pol/eps.yaml", eps_yaml, strlen(eps_yaml)), 0);
	if (pods)
		ASSERT_EQ(policy_load_buffer(&s, "pol/pod-a.yaml", pods, strlen(pods)), 0);
	ASSERT_EQ(policy_validate(&s), 0);
	ASSERT_EQ(plan_build(&s, &p), 0);
	t = plan_text(&p);
	plan_free(&p);
	policy_set_free(&s);
	return t;
}

static char *full_plan_text(const char *eps_yaml)
{
	return full_plan_pods(eps_yaml, NULL);
}

struct cached {
	struct pol_cache *c;
	struct pol_set set;
	struct plan plan;
};

static void cached_load(struct cached *x, const char *eps_yaml)
{
	x->c = policy_cache_new();
	ASSERT_TRUE(x->c != NULL);
	policy_cache_begin(x->c);
	policy_set_init(&x->set);
	policy_set_use_cache(&x->set, x->c);
	ASSERT_EQ(policy_load_buffer(&x->set, "pol/services.yaml", pol_services,
				     strlen(pol_services)), 0);
	ASSERT_EQ(policy_load_buffer(&x->set, "pol/eps.yaml", eps_yaml, strlen(eps_yaml)), 0);
	ASSERT_EQ(policy_validate(&x->set), 0);
	ASSERT_EQ(plan_build(&x->set, &x->plan), 0);
	policy_cache_end(x->c);	/* the agent ends the load it keeps */
}

static void cached_free(struct cached *x)
{
	plan_free(&x->plan);
	policy_set_free(&x->set);
	policy_cache_free(x->c);
}

TEST(cache_delta_finds_changed_documents)
{
	char *a = web_eps(EPS_A), *b = web_eps(EPS_B);
	struct pol_delta d = {};
	struct cached x;

	cached_load(&x, a);
	/* same text: nothing */
	ASSERT_EQ(policy_cache_delta(x.c, "pol/eps.yaml", a, strlen(a), &d), 0);
	ASSERT_EQ(d.n_gone, 0);
	ASSERT_EQ(d.n_added, 0);
	ASSERT_EQ(d.n_docs, 2);
	ASSERT_EQ(policy_cache_delta(x.c, "pol/eps.yaml", a, strlen(a), &d), -EEXIST);
	policy_delta_free(x.c, &d);
	/* never loaded */
	ASSERT_EQ(policy_cache_delta(x.c, "pol/other.yaml", a, strlen(a), &d), -ENOENT);
	policy_delta_free(x.c, &d);

	/* web-1 changed, api-1 (same text, same line) did not */
	ASSERT_EQ(policy_cache_delta(x.c, "pol/eps.yaml", b, strlen(b), &d), 0);
	ASSERT_EQ(d.n_gone, 1);
	ASSERT_EQ(d.n_added, 1);
	ASSERT_STREQ(policy_set_single_kind(d.gone[0]) ?: "", "EndpointSlice");
	ASSERT_STREQ(policy_set_single_kind(d.added[0]) ?: "", "EndpointSlice");
	ASSERT_STREQ(d.added[0]->eps[0].meta.name, "web-1");
	ASSERT_EQ(d.added[0]->eps[0].n_endpoints, 3);
	ASSERT_EQ(d.added[0]->eps[0].meta.loc.line, 2);
	/* the Service file is not an EndpointSlice-only document */
	ASSERT_TRUE(policy_set_single_kind(&x.set) == NULL);
	policy_delta_commit(x.c, &d);

	/* after the commit the file is diffed against its new text */
	ASSERT_EQ(policy_cache_delta(x.c, "pol/eps.yaml", a, strlen(a), &d), 0);
	ASSERT_EQ(d.n_gone, 1);
	ASSERT_EQ(d.gone[0]->eps[0].n_endpoints, 3);
	policy_delta_free(x.c, &d);
	cached_free(&x);
	free(a);
	free(b);
}

TEST(plan_patch_equals_full_plan)
{
	char *a = web_eps(EPS_A), *b = web_eps(EPS_B);
	char *want_a = full_plan_text(a), *want_b = full_plan_text(b), *got;
	const char *ns[] = { "default" }, *svc[] = { "web" };
	struct plan_patch pt;
	struct pol_delta d = {};
	struct cached x;
	size_t n_diags;

	cached_load(&x, a);
	got = plan_text(&x.plan);
	ASSERT_STREQ(got, want_a);
	free(got);
	ASSERT_TRUE(strcmp(want_a, want_b) != 0);

	ASSERT_EQ(policy_cache_delta(x.c, "pol/eps.yaml", b, strlen(b), &d), 0);
	ASSERT_EQ(policy_set_swap_eps(&x.set, &d.gone[0]->eps[0], &d.added[0]->eps[0]), 0);
	n_diags = x.set.n_diags;
	ASSERT_EQ(plan_patch_services(&x.set, &x.plan, ns, svc, 1, &pt), 0);
	ASSERT_EQ(x.set.n_diags, n_diags);
	/* web:8080, and front:8080 whose tcp route sends to web (not front:8081) */
	ASSERT_EQ(pt.n, 2);
	got = plan_text(&x.plan);
	ASSERT_STREQ(got, want_b);
	free(got);

	/* undo: the plan and the set as they were */
	plan_patch_undo(&x.plan, &pt);
	ASSERT_EQ(policy_set_swap_eps(&x.set, &d.added[0]->eps[0], &d.gone[0]->eps[0]), 0);
	got = plan_text(&x.plan);
	ASSERT_STREQ(got, want_a);
	free(got);
	/* a slice is swapped only for the same one */
	ASSERT_EQ(policy_set_swap_eps(&x.set, &d.added[0]->eps[0], &d.gone[0]->eps[0]), -ENOENT);
	ASSERT_EQ(policy_set_swap_eps(&x.set, &d.gone[0]->eps[0], &x.set.eps[1]), -EINVAL);
	policy_delta_free(x.c, &d);

	/* a service nothing names: nothing to re-plan */
	svc[0] = "nope";
	ASSERT_EQ(plan_patch_services(&x.set, &x.plan, ns, svc, 1, &pt), 0);
	ASSERT_EQ(pt.n, 0);
	plan_patch_free(&pt);
	cached_free(&x);
	free(want_a);
	free(want_b);
	free(a);
	free(b);
}

static void load_doc(struct pol_set *s, const char *yaml);

/* ---- slices that come and go (a scale-up, a deleted slice) ---- */

#define CH_FILES 7	/* pol/eps-0..5.yaml (one slice each, as the API's objects), pol/eps.yaml */

/* Slice k (0..3: web's, 4..5: api's) with variant v of its endpoints; "" when absent. */
static char *ch_slice(unsigned k, unsigned v)
{
	char *s = NULL;

	if (!v)
		return strdup("");
	ASSERT_TRUE(asprintf(&s,
		"apiVersion: discovery.k8s.io/v1\n"
		"kind: EndpointSlice\n"
		"metadata: {name: %s-s%u, namespace: default, labels: {kubernetes.io/service-name: %s}}\n"
		"addressType: IPv4\n"
		"ports: [{name: tcp, port: %u}]\n"
		"endpoints: [{addresses: [10.244.%u.%u]}, {addresses: [10.244.%u.%u]}]\n",
		k < 4 ? "web" : "api", k, k < 4 ? "web" : "api", k < 4 ? 9100 : 8000,
		k + 1, v, k + 1, v + (k % 2 ? 0 : 7)) > 0);
	return s;
}

/* pol/eps.yaml: web-1 (endpoints a or b) and api-1, then a slice web-x or not */
static char *ch_multi(unsigned v)
{
	char *base = web_eps(v & 1 ? EPS_B : EPS_A), *x, *s = NULL;

	if (!(v & 2))
		return base;
	x = ch_slice(0, 3);
	ASSERT_TRUE(asprintf(&s, "%s---\n%s", base, x) > 0);
	/* same slice as pol/eps-0.yaml's: give it its own name */
	memcpy(strstr(s, "web-s0"), "web-sx", 6);
	free(base);
	free(x);
	return s;
}

static char *ch_text(unsigned f, unsigned v)
{
	return f < CH_FILES - 1 ? ch_slice(f, v) : ch_multi(v);
}

static void ch_name(unsigned f, char *buf, size_t len)
{
	if (f < CH_FILES - 1)
		snprintf(buf, len, "pol/eps-%u.yaml", f);
	else
		snprintf(buf, len, "pol/eps.yaml");
}

/* The set as a full load makes it: services, then the slice files by name. */
static void ch_load(struct pol_set *s, const unsigned *var)
{
	char name[64];

	ASSERT_EQ(policy_load_buffer(s, "pol/services.yaml", pol_services, strlen(pol_services)), 0);
	for (unsigned f = 0; f < CH_FILES; f++) {
		char *t = ch_text(f, var[f]);

		ch_name(f, name, sizeof(name));
		if (*t)	/* a file that is not there */
			ASSERT_EQ(policy_load_buffer(s, name, t, strlen(t)), 0);
		free(t);
	}
	ASSERT_EQ(policy_validate(s), 0);
}

static char *ch_full_text(const unsigned *var)
{
	struct pol_set s;
	struct plan p;
	char *t;

	policy_set_init(&s);
	ch_load(&s, var);
	ASSERT_EQ(plan_build(&s, &p), 0);
	t = plan_text(&p);
	plan_free(&p);
	policy_set_free(&s);
	return t;
}

/* Apply d to set as the agent pairs it: same identity swaps, the rest come or go. */
static void ch_apply(struct pol_set *set, const struct pol_delta *d, bool undo)
{
	bool *paired = calloc(d->n_gone + 1, sizeof(*paired));

	ASSERT_TRUE(paired != NULL);
	for (size_t i = 0; i < d->n_added; i++) {
		const struct pol_eps *a = &d->added[i]->eps[0], *g = NULL;

		ASSERT_STREQ(policy_set_single_kind(d->added[i]) ?: "", "EndpointSlice");
		for (size_t k = 0; k < d->n_gone && !g; k++)
			if (!strcmp(d->gone[k]->eps[0].meta.name, a->meta.name)) {
				g = &d->gone[k]->eps[0];
				paired[k] = true;
			}
		if (g)
			ASSERT_EQ(undo ? policy_set_swap_eps(set, a, g) : policy_set_swap_eps(set, g, a), 0);
		else
			ASSERT_EQ(undo ? policy_set_del_eps(set, a) : policy_set_add_eps(set, a), 0);
	}
	for (size_t k = 0; k < d->n_gone; k++)
		if (!paired[k])
			ASSERT_EQ(undo ? policy_set_add_eps(set, &d->gone[k]->eps[0]) :
					 policy_set_del_eps(set, &d->gone[k]->eps[0]), 0);
	free(paired);
}

/*
 * A patch taken (the cache takes the delta) or not (the plan must be as
 * before it; the caller has put the set back).
 */
static void patch_end(struct plan *plan, struct plan_patch *pt, struct pol_cache *c,
		      struct pol_delta *d, const char *before, bool take)
{
	char *got;

	if (take) {
		plan_patch_free(pt);
		policy_delta_commit(c, d);
		return;
	}
	plan_patch_undo(plan, pt);
	got = plan_text(plan);
	ASSERT_STREQ(got, before);
	free(got);
	policy_delta_free(c, d);
}

TEST(slices_added_and_deleted_patch_equals_full_plan)
{
	const char *ns[] = { "default", "default", "default" }, *svc[] = { "web", "front", "api" };
	unsigned var[CH_FILES] = { 1, 0, 2, 0, 0, 1, 0 }, x = 777, adds = 0, dels = 0;
	struct pol_cache *c = policy_cache_new();
	struct pol_set set;
	struct plan plan;
	char name[64];

	ASSERT_TRUE(c != NULL);
	policy_cache_begin(c);
	policy_set_init(&set);
	policy_set_use_cache(&set, c);
	ch_load(&set, var);
	ASSERT_EQ(plan_build(&set, &plan), 0);
	policy_cache_end(c);
	for (int step = 0; step < 300; step++) {
		unsigned nv[CH_FILES];
		struct pol_delta d = {};
		struct plan_patch pt;
		char *before = plan_text(&plan), *got, *want;
		size_t n_eps = set.n_eps;

		memcpy(nv, var, sizeof(nv));
		/* one to three files change: a slice comes, goes or changes */
		for (unsigned n = 0, k = 1 + (x >> 3) % 3; n < k; n++) {
			unsigned f;

			x = x * 1103515245u + 12345u;
			f = (x >> 8) % CH_FILES;
			nv[f] = (x >> 16) % 4;
		}
		for (unsigned f = 0; f < CH_FILES; f++) {
			char *t;
			int ret;

			if (nv[f] == var[f])
				continue;
			t = ch_text(f, nv[f]);
			ch_name(f, name, sizeof(name));
			ret = policy_cache_delta(c, name, t, strlen(t), &d);
			if (ret == -ENOENT)
				ret = policy_cache_delta_new(c, name, t, strlen(t), &d);
			ASSERT_EQ(ret, 0);
			free(t);
		}
		adds += d.n_added > d.n_gone;
		dels += d.n_gone > d.n_added;
		ch_apply(&set, &d, false);
		ASSERT_EQ(plan_patch_services(&set, &plan, ns, svc, 3, &pt), 0);
		ASSERT_EQ(set.n_diags, 0);
		got = plan_text(&plan);
		want = ch_full_text(nv);
		if (strcmp(got, want))
			TEST_FAIL_("step %d: patched\n%s\nfull\n%s", step, got, want);
		free(got);
		free(want);
		if (step % 5 == 4) {
			/* not taken: the set and plan as they were */
			ch_apply(&set, &d, true);
			ASSERT_EQ(set.n_eps, n_eps);
		} else {
			memcpy(var, nv, sizeof(var));
		}
		patch_end(&plan, &pt, c, &d, before, step % 5 != 4);
		free(before);
	}
	/* the churn did add and delete slices */
	ASSERT_TRUE(adds > 20);
	ASSERT_TRUE(dels > 20);
	/* a slice is deleted only from a set that holds it */
	{
		struct pol_set one;

		load_doc(&one, pol_api_eps);
		ASSERT_EQ(policy_set_del_eps(&set, &one.eps[0]), -ENOENT);
		policy_set_free(&one);
	}
	plan_free(&plan);
	policy_set_free(&set);
	policy_cache_free(c);
}

/* Load one YAML document into a fresh set (the caller frees it). */
static void load_doc(struct pol_set *s, const char *yaml)
{
	policy_set_init(s);
	ASSERT_EQ(policy_load_buffer(s, "p.yaml", yaml, strlen(yaml)), 0);
}

TEST(pod_status_update_is_same_but_ready)
{
	static const char *const variants[] = {
		/* 0: the pod */
		"{apiVersion: v1, kind: Pod, metadata: {name: a, namespace: x, uid: u1, labels: {app: a}},"
		" spec: {nodeName: n1, containers: [{name: c, ports: [{name: http, containerPort: 80}]}]},"
		" status: {podIP: 10.0.0.1, phase: Running, conditions: [{type: Ready, status: \"True\"}]}}",
		/* 1: not ready any more, other status noise: same but ready */
		"{apiVersion: v1, kind: Pod, metadata: {name: a, namespace: x, uid: u1, labels: {app: a}},"
		" spec: {nodeName: n1, containers: [{name: c, ports: [{name: http, containerPort: 80}]}]},"
		" status: {podIP: 10.0.0.1, phase: Running, startTime: \"2026-11-24T10:00:00Z\","
		" conditions: [{type: Ready, status: \"False\"}]}}",
		/* 2..: each changes something plans or membership read */
		"{apiVersion: v1, kind: Pod, metadata: {name: a, namespace: x, uid: u1, labels: {app: b}},"
		" spec: {nodeName: n1, containers: [{name: c, ports: [{name: http, containerPort: 80}]}]},"
		" status: {podIP: 10.0.0.1, phase: Running, conditions: [{type: Ready, status: \"True\"}]}}",
		"{apiVersion: v1, kind: Pod, metadata: {name: a, namespace: x, uid: u1, labels: {app: a}},"
		" spec: {nodeName: n1, containers: [{name: c, ports: [{name: http, containerPort: 80}]}]},"
		" status: {podIP: 10.0.0.2, phase: Running, conditions: [{type: Ready, status: \"True\"}]}}",
		"{apiVersion: v1, kind: Pod, metadata: {name: a, namespace: x, uid: u1, labels: {app: a}},"
		" spec: {nodeName: n1, containers: [{name: c, ports: [{name: http, containerPort: 81}]}]},"
		" status: {podIP: 10.0.0.1, phase: Running, conditions: [{type: Ready, status: \"True\"}]}}",
		"{apiVersion: v1, kind: Pod, metadata: {name: a, namespace: x, uid: u1, labels: {app: a}},"
		" spec: {nodeName: n1, containers: [{name: c, ports: [{name: http, containerPort: 80}]}]},"
		" status: {podIP: 10.0.0.1, phase: Succeeded, conditions: [{type: Ready, status: \"True\"}]}}",
		"{apiVersion: v1, kind: Pod, metadata: {name: a, namespace: x, uid: u1, labels: {app: a},"
		" annotations: {sidecar.istio.io/inject: \"false\"}},"
		" spec: {nodeName: n1, containers: [{name: c, ports: [{name: http, containerPort: 80}]}]},"
		" status: {podIP: 10.0.0.1, phase: Running, conditions: [{type: Ready, status: \"True\"}]}}",
		"{apiVersion: v1, kind: Pod, metadata: {name: a, namespace: x, uid: u1, labels: {app: a}},"
		" spec: {nodeName: n2, containers: [{name: c, ports: [{name: http, containerPort: 80}]}]},"
		" status: {podIP: 10.0.0.1, phase: Running, conditions: [{type: Ready, status: \"True\"}]}}",
	};
	struct pol_set s[sizeof(variants) / sizeof(variants[0])];
	size_t n = sizeof(variants) / sizeof(variants[0]);

	for (size_t i = 0; i < n; i++) {
		load_doc(&s[i], variants[i]);
		ASSERT_STREQ(policy_set_single_kind(&s[i]) ?: "", "Pod");
	}
	ASSERT_TRUE(s[0].pods[0].ready);
	ASSERT_FALSE(s[1].pods[0].ready);
	ASSERT_TRUE(policy_pod_same_but_ready(&s[0].pods[0], &s[1].pods[0]));
	for (size_t i = 2; i < n; i++)
		if (policy_pod_same_but_ready(&s[0].pods[0], &s[i].pods[0]))
			TEST_FAIL_("variant %zu counted as a status update", i);
	/* a set that holds pod 0 takes pod 1 in its place, not pod 2 */
	ASSERT_EQ(policy_set_swap_pod(&s[0], &s[0].pods[0], &s[2].pods[0]), -EINVAL);
	for (size_t i = 0; i < n; i++)
		policy_set_free(&s[i]);
}

/* ---- VirtualService / DestinationRule changes (compile_patch_routes) ---- */

static const char *rt_services =
	SVC_WEB_FRONT
	"---\n"
	"apiVersion: v1\n"
	"kind: Service\n"
	"metadata: {name: app, namespace: default}\n"
	"spec: {clusterIP: 10.96.0.93, ports: [{name: main, port: 80, targetPort: 9100}]}\n"
	"---\n"
	"apiVersion: v1\n"
	"kind: Service\n"
	"metadata: {name: api, namespace: default}\n"
	"spec: {clusterIP: 10.96.0.92, ports: [{name: tcp, port: 80, targetPort: 8000}]}\n"
	"---\n"
	"apiVersion: v1\n"
	"kind: Pod\n"
	"metadata: {name: web-b, namespace: default, labels: {app: web, version: v2}}\n"
	"status: {podIP: 10.244.0.12}\n"
	"---\n"
	"apiVersion: v1\n"
	"kind: Pod\n"
	"metadata: {name: web-c, namespace: default, labels: {app: web, version: v3}}\n"
	"status: {podIP: 10.244.0.13}\n";

/* The routes file of variant v: the DestinationRule of web, the
 * VirtualServices of front (tcp weights: wi, which port) and app (tcp or
 * http: its L7 decision), in that order; every variant is free of
 * diagnostics. */
static char *rt_routes(unsigned v, unsigned wi)
{
	static const char *const lbs[] = {
		"{consistentHash: {useSourceIp: true}}", "{simple: ROUND_ROBIN}",
		"{simple: RANDOM}", "{simple: LEAST_REQUEST}",
	};
	static const unsigned weights[] = { 10, 25, 50, 75, 90 };
	unsigned w = weights[wi % 5], port = (v / 20) % 2 ? 8081 : 8080;
	bool v3 = (v / 40) % 2, http = (v / 80) % 2;
	char *s = NULL;

	ASSERT_TRUE(asprintf(&s,
		"apiVersion: networking.istio.io/v1\n"
		"kind: DestinationRule\n"
		"metadata: {name: web, namespace: default}\n"
		"spec:\n"
		"  host: web\n"
		"  trafficPolicy: {loadBalancer: %s, connectionPool: {tcp: {maxConnections: %u}}}\n"
		"  subsets: [{name: v2, labels: {version: v2}}%s]\n"
		"---\n"
		"apiVersion: networking.istio.io/v1\n"
		"kind: VirtualService\n"
		"metadata: {name: front, namespace: default}\n"
		"spec:\n"
		"  hosts: [front]\n"
		"  tcp:\n"
		"  - match: [{port: %u}]\n"
		"    route:\n"
		"    - {destination: {host: web, port: {number: 8080}}, weight: %u}\n"
		"    - {destination: {host: web, subset: %s, port: {number: 8080}}, weight: %u}\n"
		"---\n"
		"apiVersion: networking.istio.io/v1\n"
		"kind: VirtualService\n"
		"metadata: {name: app, namespace: default}\n"
		"spec:\n"
		"  hosts: [app]\n"
		"  %s:\n"
		"  - route: [{destination: {host: web, subset: v2, port: {number: 8080}}}]\n",
		lbs[v % 4], 100 + v % 7, v3 ? ", {name: v3, labels: {version: v3}}" : "", port, w,
		v3 && v % 3 ? "v3" : "v2", 100 - w, http ? "http" : "tcp") > 0);
	return s;
}

/* The plan and what the L7 pass decided, as text. */
static char *compiled_text(const struct compile_out *o)
{
	char *t = plan_text(&o->plan), *s = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&s, &len);

	fputs(t, f);
	free(t);
	for (size_t i = 0; i < o->plan.n_svcs; i++)
		fprintf(f, "why %s:%u %s\n", o->plan.svcs[i].fqdn, ntohs(o->plan.svcs[i].key.port),
			o->plan.svcs[i].l7_why ?: "-");
	for (size_t i = 0; o->l7 && i < o->l7->n_svcs; i++)
		fprintf(f, "l7 %s:%u %s\n", l7_config_svc(o->l7, i)->fqdn, l7_config_svc(o->l7, i)->port,
			l7_config_svc(o->l7, i)->why);
	fprintf(f, "l7 clusters %zu\n", o->l7 ? o->l7->n_clusters : 0);
	fclose(f);
	return s;
}

static void rt_load(struct pol_set *s, const char *routes, const char *eps)
{
	ASSERT_EQ(policy_load_buffer(s, "pol/services.yaml", rt_services, strlen(rt_services)), 0);
	ASSERT_EQ(policy_load_buffer(s, "pol/routes.yaml", routes, strlen(routes)), 0);
	ASSERT_EQ(policy_load_buffer(s, "pol/eps.yaml", eps, strlen(eps)), 0);
	ASSERT_EQ(policy_validate(s), 0);
}

static char *rt_full_text(const char *routes, const char *eps, const struct compile_opts *co)
{
	struct compile_out o;
	struct pol_set s;
	char *t;

	policy_set_init(&s);
	rt_load(&s, routes, eps);
	ASSERT_EQ(compile_policy(&s, co, &o), 0);
	ASSERT_EQ(s.n_diags, 0);
	t = compiled_text(&o);
	compile_out_free(&o);
	policy_set_free(&s);
	return t;
}

/* The one object of a document of this kind (each starts with its pol_meta). */
static const struct pol_meta *doc_meta(const struct pol_set *s, const char *kind)
{
	if (!strcmp(kind, "VirtualService"))
		return &s->vss[0].meta;
	if (!strcmp(kind, "DestinationRule"))
		return &s->drs[0].meta;
	return &s->eps[0].meta;
}

/*
 * Put each new document of d where the one of its identity was. Returns
 * whether the L7 pass reads what changed (as the agent decides).
 */
static bool rt_swap(struct pol_set *set, const struct pol_delta *d)
{
	bool l7_inputs = false;

	ASSERT_EQ(d->n_gone, d->n_added);
	for (size_t i = 0; i < d->n_added; i++) {
		const char *kind = policy_set_single_kind(d->added[i]);
		const struct pol_set *a = d->added[i], *g = NULL;

		ASSERT_TRUE(kind != NULL);
		for (size_t k = 0; k < d->n_gone && !g; k++)
			if (!strcmp(policy_set_single_kind(d->gone[k]) ?: "", kind) &&
			    !strcmp(doc_meta(d->gone[k], kind)->name, doc_meta(a, kind)->name))
				g = d->gone[k];
		ASSERT_TRUE(g != NULL);
		if (!strcmp(kind, "VirtualService")) {
			ASSERT_EQ(policy_set_swap_vs(set, &g->vss[0], &a->vss[0]), 0);
			l7_inputs |= compile_vs_l7_input(&g->vss[0]) || compile_vs_l7_input(&a->vss[0]);
		} else if (!strcmp(kind, "DestinationRule")) {
			ASSERT_EQ(policy_set_swap_dr(set, &g->drs[0], &a->drs[0]), 0);
			l7_inputs = true;
		} else {
			ASSERT_EQ(policy_set_swap_eps(set, &g->eps[0], &a->eps[0]), 0);
		}
	}
	return l7_inputs;
}

TEST(route_patch_equals_full_compile_over_random_churn)
{
	const char *ns[] = { "default", "default", "default" }, *svc[] = { "web", "front", "app" };
	char *eps[2] = { web_eps(EPS_A), web_eps(EPS_B) };

	for (int proxy = 0; proxy < 2; proxy++) {
		struct compile_opts co = { .l7_proxy = proxy };
		unsigned v = 0, wi = 0, e = 0, x = 12345 + proxy;
		char *routes = rt_routes(v, wi), *got, *want;
		struct pol_cache *c = policy_cache_new();
		struct compile_out cur;
		struct pol_set set;

		ASSERT_TRUE(c != NULL);
		policy_cache_begin(c);
		policy_set_init(&set);
		policy_set_use_cache(&set, c);
		rt_load(&set, routes, eps[e]);
		ASSERT_EQ(compile_policy(&set, &co, &cur), 0);
		policy_cache_end(c);
		for (int step = 0; step < 200; step++) {
			struct l7_config *l7 = NULL;
			struct pol_delta d = {};
			struct plan_patch pt;
			bool l7_inputs;
			char *nr;
			int ret;

			x = x * 1103515245u + 12345u;
			/* every other step only front's tcp weights change */
			if (step % 2)
				v = (x >> 8) % 160;
			wi = (x >> 16) % 5;
			if ((x >> 20) % 3 == 0)
				e ^= 1;	/* the endpoints change too, now and then */
			nr = rt_routes(v, wi);
			ASSERT_EQ(policy_cache_delta(c, "pol/routes.yaml", nr, strlen(nr), &d), 0);
			ASSERT_EQ(policy_cache_delta(c, "pol/eps.yaml", eps[e], strlen(eps[e]), &d), 0);
			l7_inputs = rt_swap(&set, &d);
			ASSERT_EQ(policy_validate_routes(&set), 0);
			ASSERT_EQ(set.n_diags, 0);
			ret = l7_inputs ? compile_patch_routes(&set, &co, &cur, ns, svc, 3, &pt, &l7) :
					  compile_patch_services(&set, &co, &cur, ns, svc, 3, &pt, &l7);
			/* endpoints under L7 clusters without a proxy: a full compile */
			if (ret == -ESTALE && !l7_inputs && !proxy) {
				policy_delta_commit(c, &d);
				compile_out_free(&cur);
				ASSERT_EQ(compile_policy(&set, &co, &cur), 0);
				free(routes);
				routes = nr;
				continue;
			}
			ASSERT_EQ(ret, 0);
			ASSERT_EQ(set.n_diags, 0);
			ASSERT_TRUE(l7 != NULL || !l7_inputs);
			if (l7) {
				l7_config_put(cur.l7);
				cur.l7 = l7;
			}
			got = compiled_text(&cur);
			want = rt_full_text(nr, eps[e], &co);
			if (strcmp(got, want))
				TEST_FAIL_("step %d (variant %u, proxy %d): patched\n%s\nfull\n%s",
					   step, v, proxy, got, want);
			free(got);
			free(want);
			plan_patch_free(&pt);
			policy_delta_commit(c, &d);
			free(routes);
			routes = nr;
		}
		free(routes);
		compile_out_free(&cur);
		policy_set_free(&set);
		policy_cache_free(c);
	}
	free(eps[0]);
	free(eps[1]);
}

TEST(route_swap_needs_the_same_hosts)
{
	struct pol_set a, b, set;

	load_doc(&a, "{apiVersion: networking.istio.io/v1, kind: VirtualService, metadata: {name: f},"
		     " spec: {hosts: [front], tcp: [{route: [{destination: {host: web}}]}]}}");
	load_doc(&b, "{apiVersion: networking.istio.io/v1, kind: VirtualService, metadata: {name: f},"
		     " spec: {hosts: [front, web], tcp: [{route: [{destination: {host: web}}]}]}}");
	load_doc(&set, "{apiVersion: networking.istio.io/v1, kind: DestinationRule, metadata: {name: f},"
		       " spec: {host: web}}");
	ASSERT_EQ(policy_set_swap_vs(&a, &a.vss[0], &b.vss[0]), -EINVAL);
	ASSERT_EQ(policy_set_swap_dr(&set, &set.drs[0], &set.drs[0]), 0);
	policy_set_free(&a);
	policy_set_free(&b);
	policy_set_free(&set);
}

/* ---- apply -f by identity: a file without some of its documents ---- */

TEST(doc_cut_removes_whole_documents)
{
	static const char *f =
		"# bookinfo routes\n"			/* 1 */
		"apiVersion: networking.istio.io/v1\n"	/* 2 */
		"kind: VirtualService\n"		/* 3: a */
		"metadata: {name: a}\n"			/* 4 */
		"---\n"					/* 5 */
		"# b's comment goes with b\n"		/* 6 */
		"kind: VirtualService\n"		/* 7: b */
		"metadata: {name: b}\n"			/* 8 */
		"---\n"					/* 9 */
		"kind: List\n"				/* 10 */
		"items:\n"				/* 11 */
		"- {kind: Service, metadata: {name: c}}\n"	/* 12: c */
		"- {kind: Service, metadata: {name: d}}\n";	/* 13: d */
	uint32_t lines[] = { 3, 7, 12, 13 };
	bool cut[] = { false, true, false, false };
	char *out;
	size_t len;

	ASSERT_EQ(policy_doc_cut(f, strlen(f), lines, cut, 4, &out, &len), 0);
	ASSERT_STREQ(out, "# bookinfo routes\n"
			  "apiVersion: networking.istio.io/v1\n"
			  "kind: VirtualService\n"
			  "metadata: {name: a}\n"
			  "---\n"
			  "kind: List\n"
			  "items:\n"
			  "- {kind: Service, metadata: {name: c}}\n"
			  "- {kind: Service, metadata: {name: d}}\n");
	ASSERT_EQ(len, strlen(out));
	ASSERT_FALSE(policy_text_blank(out, len));
	free(out);
	/* one item of a List: that document holds others */
	cut[1] = false;
	cut[2] = true;
	ASSERT_EQ(policy_doc_cut(f, strlen(f), lines, cut, 4, &out, &len), -EBUSY);
	ASSERT_TRUE(out == NULL);
	/* everything: nothing left but what no document holds */
	for (size_t i = 0; i < 4; i++)
		cut[i] = true;
	ASSERT_EQ(policy_doc_cut(f, strlen(f), lines, cut, 4, &out, &len), 0);
	ASSERT_EQ(len, 0);
	ASSERT_TRUE(policy_text_blank(out, len));
	free(out);
}

static int count_match(const char *kind, const struct pol_meta *theirs,
		       const struct pol_meta *ours, void *arg)
{
	size_t *n = arg;

	(void)kind;
	(void)theirs;
	n[ours ? 0 : 1]++;
	if (ours)
		ASSERT_EQ(ours->loc.line, 2);
	return 0;
}

TEST(set_match_by_kind_namespace_name)
{
	struct pol_set set, other;
	size_t n[2] = { 0, 0 };

	load_doc(&set, "apiVersion: networking.istio.io/v1\n"
		       "kind: DestinationRule\nmetadata: {name: details, namespace: default}\n"
		       "spec: {host: details}\n");
	/* same name: a DestinationRule matches, the VirtualService and the
	 * one in another namespace do not */
	load_doc(&other, "kind: List\nitems:\n"
			 "- {apiVersion: networking.istio.io/v1, kind: DestinationRule,"
			 " metadata: {name: details}, spec: {host: details}}\n"
			 "- {apiVersion: networking.istio.io/v1, kind: DestinationRule,"
			 " metadata: {name: details, namespace: x}, spec: {host: details}}\n"
			 "- {apiVersion: networking.istio.io/v1, kind: VirtualService,"
			 " metadata: {name: details}, spec: {hosts: [details], tcp: [{route:"
			 " [{destination: {host: details}}]}]}}\n");
	ASSERT_EQ(policy_set_match(&set, &other, count_match, n), 0);
	ASSERT_EQ(n[0], 1);
	ASSERT_EQ(n[1], 2);
	policy_set_free(&set);
	policy_set_free(&other);
}

TEST(route_change_validated_against_the_set)
{
	char *routes = rt_routes(0, 0), *eps = web_eps(EPS_A);
	struct pol_set set, bad;
	const struct pol_vs *front = NULL;
	struct pol_vs saved;

	policy_set_init(&set);
	rt_load(&set, routes, eps);
	ASSERT_EQ(set.n_diags, 0);
	for (size_t i = 0; i < set.n_vss; i++)
		if (!strcmp(set.vss[i].meta.name, "front"))
			front = &set.vss[i];
	ASSERT_TRUE(front != NULL);
	saved = *front;
	/* a subset web's DestinationRule does not define */
	load_doc(&bad, "{apiVersion: networking.istio.io/v1, kind: VirtualService,"
		       " metadata: {name: front, namespace: default}, spec: {hosts: [front],"
		       " tcp: [{route: [{destination: {host: web, subset: v9, port: {number: 8080}}}]}]}}");
	ASSERT_EQ(policy_set_swap_vs(&set, front, &bad.vss[0]), 0);
	policy_validate_routes(&set);
	ASSERT_TRUE(set.n_diags > 0);
	ASSERT_EQ(policy_set_swap_vs(&set, &bad.vss[0], &saved), 0);	/* each set frees its own */
	policy_set_free(&bad);
	policy_set_free(&set);
	free(routes);
	free(eps);
}

/* ---- Services that come, change and go ---- */

/*
 * x.yaml, one Service per document: x0 (two ports; variant 2 drops one),
 * x1 by selector (variant 2 moves its VIP), x2 headless (no entry), x3
 * (variant 2 changes its port). Variant 0: absent.
 */
static char *svc_x_text(const unsigned v[4])
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (v[0])
		fprintf(f, "---\napiVersion: v1\nkind: Service\nmetadata: {name: x0, namespace: default}\n"
			"spec: {clusterIP: 10.96.0.100, ports: [{name: tcp, port: 80, targetPort: 9100}%s]}\n",
			v[0] == 1 ? ", {name: tcp-b, port: 81, targetPort: 9100}" : "");
	if (v[1])
		fprintf(f, "---\napiVersion: v1\nkind: Service\nmetadata: {name: x1, namespace: default}\n"
			"spec: {clusterIP: 10.96.0.%d, selector: {app: web}, ports: [{name: tcp, port: 80}]}\n",
			v[1] == 1 ? 101 : 111);
	if (v[2])
		fprintf(f, "---\napiVersion: v1\nkind: Service\nmetadata: {name: x2, namespace: default}\n"
			"spec: {clusterIP: None, ports: [{name: tcp, port: 80}]}\n");
	if (v[3])
		fprintf(f, "---\napiVersion: v1\nkind: Service\nmetadata: {name: x3, namespace: default}\n"
			"spec: {clusterIP: 10.96.0.103, ports: [{name: tcp, port: %d}]}\n",
			v[3] == 1 ? 80 : 8080);
	fclose(f);
	return buf ?: strdup("");
}

/* plan_text without the order (a new entry is last in policy order, a full plan puts it in place) */
static char *plan_text_no_order(const struct plan *p)
{
	char *t = plan_text(p), *o;

	while (t && (o = strstr(t, " order "))) {
		char *e = strstr(o + 7, " slots");

		memmove(o, e, strlen(e) + 1);
	}
	return t;
}

TEST(services_added_and_deleted_patch_equals_full_plan)
{
	static const char *const ns[] = { "default", "default", "default", "default" };
	static const char *const names[] = { "x0", "x1", "x2", "x3" };
	unsigned v[4] = { 0, 0, 0, 0 }, x = 4242, adds = 0, dels = 0;
	struct pol_cache *c = policy_cache_new();
	char *eps = web_eps(EPS_A), *xt = svc_x_text(v);
	struct pol_set set;
	struct plan plan;

	ASSERT_TRUE(c != NULL);
	policy_cache_begin(c);
	policy_set_init(&set);
	policy_set_use_cache(&set, c);
	ASSERT_EQ(policy_load_buffer(&set, "pol/services.yaml", pol_services, strlen(pol_services)), 0);
	ASSERT_EQ(policy_load_buffer(&set, "pol/eps.yaml", eps, strlen(eps)), 0);
	ASSERT_EQ(policy_load_buffer(&set, "pol/x.yaml", xt, strlen(xt)), 0);
	ASSERT_EQ(policy_validate(&set), 0);
	ASSERT_EQ(plan_build(&set, &plan), 0);
	policy_cache_end(c);
	free(xt);
	for (int step = 0; step < 200 && !test__failed; step++) {
		unsigned nv[4];
		struct pol_delta d = {};
		struct plan_patch pt;
		struct pol_set fresh;
		struct plan fp;
		char *before = plan_text(&plan), *got, *want;
		int ret;

		memcpy(nv, v, sizeof(nv));
		x = x * 1103515245u + 12345u;
		nv[(x >> 8) % 4] = (x >> 16) % 3;
		xt = svc_x_text(nv);
		ret = policy_cache_delta(c, "pol/x.yaml", xt, strlen(xt), &d);
		if (ret == -ENOENT)
			ret = policy_cache_delta_new(c, "pol/x.yaml", xt, strlen(xt), &d);
		ASSERT_EQ(ret, 0);
		/* gone first, then new: a changed Service goes and comes */
		for (size_t g = 0; g < d.n_gone && g < 8; g++)
			ASSERT_EQ(policy_set_del_svc(&set, &d.gone[g]->svcs[0]), 0);
		for (size_t a = 0; a < d.n_added; a++)
			ASSERT_EQ(policy_set_add_svc(&set, &d.added[a]->svcs[0]), 0);
		adds += d.n_added > d.n_gone;
		dels += d.n_gone > d.n_added;
		/* the index follows: every Service is found, by name */
		for (size_t i = 0; i < set.n_svcs; i++)
			ASSERT_TRUE(policy_index_service(&set, set.svcs[i].meta.ns,
							 strlen(set.svcs[i].meta.ns),
							 set.svcs[i].meta.name,
							 strlen(set.svcs[i].meta.name)) == &set.svcs[i]);
		ASSERT_EQ(plan_patch_services(&set, &plan, ns, names, 4, &pt), 0);
		policy_set_init(&fresh);
		ASSERT_EQ(policy_load_buffer(&fresh, "pol/services.yaml", pol_services,
					     strlen(pol_services)), 0);
		ASSERT_EQ(policy_load_buffer(&fresh, "pol/eps.yaml", eps, strlen(eps)), 0);
		ASSERT_EQ(policy_load_buffer(&fresh, "pol/x.yaml", xt, strlen(xt)), 0);
		ASSERT_EQ(policy_validate(&fresh), 0);
		ASSERT_EQ(plan_build(&fresh, &fp), 0);
		got = plan_text_no_order(&plan);
		want = plan_text_no_order(&fp);
		if (strcmp(got, want))
			TEST_FAIL_("step %d: patched\n%s\nfull\n%s", step, got, want);
		/* the keys gone are those the full plan does not have */
		for (size_t g = 0; g < pt.n_gone; g++)
			for (size_t i = 0; i < fp.n_svcs; i++)
				ASSERT_FALSE(fp.svcs[i].key.vip == pt.gone[g].vip &&
					     fp.svcs[i].key.port == pt.gone[g].port);
		free(got);
		free(want);
		plan_free(&fp);
		policy_set_free(&fresh);
		if (step % 4 == 3) {
			/* not taken: the set and plan as they were */
			for (size_t a = d.n_added; a-- > 0;)
				ASSERT_EQ(policy_set_del_svc(&set, &d.added[a]->svcs[0]), 0);
			for (size_t g = d.n_gone; g-- > 0;)
				ASSERT_EQ(policy_set_add_svc(&set, &d.gone[g]->svcs[0]), 0);
		} else {
			memcpy(v, nv, sizeof(v));
		}
		patch_end(&plan, &pt, c, &d, before, step % 4 != 3);
		free(xt);
		free(before);
	}
	ASSERT_TRUE(adds > 20);
	ASSERT_TRUE(dels > 20);
	plan_free(&plan);
	policy_set_free(&set);
	policy_cache_free(c);
	free(eps);
}

TEST(service_change_validated_against_the_set)
{
	static const char *const ns[] = { "default" }, *const name[] = { "x9" };
	struct pol_set set, nu;

	policy_set_init(&set);
	ASSERT_EQ(policy_load_buffer(&set, "p.yaml", pol_services, strlen(pol_services)), 0);
	ASSERT_EQ(policy_validate(&set), 0);
	/* a new Service on web's clusterIP */
	load_doc(&nu, "{apiVersion: v1, kind: Service, metadata: {name: x9, namespace: default},"
		      " spec: {clusterIP: 10.96.0.90, ports: [{port: 81}]}}");
	ASSERT_EQ(policy_set_add_svc(&set, &nu.svcs[0]), 0);
	ASSERT_EQ(policy_validate_change(&set, ns, name, 1, false), -EINVAL);
	ASSERT_TRUE(set.n_diags > 0 && strstr(set.diags[set.n_diags - 1].msg,
					      "is already the VIP of Service default/web"));
	ASSERT_EQ(policy_set_del_svc(&set, &nu.svcs[0]), 0);
	ASSERT_EQ(policy_set_del_svc(&set, &nu.svcs[0]), -ENOENT);
	policy_set_free(&nu);
	/* web gone: its DestinationRule's host matches nothing, front's tcp route neither */
	{
		static const char *const web[] = { "web" };
		struct pol_service saved = set.svcs[0];

		ASSERT_STREQ(saved.meta.name, "web");
		set.n_diags = set.n_errors = set.n_warnings = 0;
		ASSERT_EQ(policy_set_del_svc(&set, &set.svcs[0]), 0);
		ASSERT_EQ(policy_validate_change(&set, ns, web, 1, true), -EINVAL);
		ASSERT_TRUE(set.n_warnings >= 1);	/* the DestinationRule */
		ASSERT_TRUE(set.n_errors >= 1);		/* the tcp route destination */
		ASSERT_EQ(policy_set_add_svc(&set, &saved), 0);
		ASSERT_STREQ(set.svcs[0].meta.name, "web");	/* back where it was */
	}
	policy_set_free(&set);
}

/* A Pod document of web's slice (EPS_A: .11 and .12) or of no slice. */
static char *pod_text(const char *name, const char *ip, const char *version)
{
	char *s = NULL;

	ASSERT_TRUE(asprintf(&s, "apiVersion: v1\nkind: Pod\nmetadata: {name: %s, namespace: default, "
			     "labels: {app: web, version: %s}}\nstatus: {podIP: %s}\n", name, version,
			     ip) > 0);
	return s;
}

struct svc_names {
	const char *ns[8], *name[8];
	size_t n;
};

static int svc_note(void *arg, const char *ns, const char *name)
{
	struct svc_names *sn = arg;

	for (size_t k = 0; k < sn->n; k++)
		if (!strcmp(sn->ns[k], ns) && !strcmp(sn->name[k], name))
			return 0;
	if (!ASSERT_TRUE(sn->n < 8))
		return -ENOSPC;
	sn->ns[sn->n] = ns;
	sn->name[sn->n++] = name;
	return 0;
}

/*
 * One step of a Pod's life (text NULL: deleted) as the agent's delta takes
 * it: the versions out and in (policy_set_del_pod / _add_pod), the services
 * policy_pod_services names for both re-planned, and the plan must be a
 * full plan's; undone, the old one. Returns the services named.
 */
static size_t pod_step(struct cached *x, const char *eps, const char *text, bool take)
{
	struct pol_delta d = {};
	struct plan_patch pt;
	struct svc_names sn = {};
	const struct pol_pod *from = NULL, *to = NULL;
	char *before = plan_text(&x->plan), *got, *want;
	int ret;

	ret = policy_cache_delta(x->c, "pol/pod-a.yaml", text ?: "", text ? strlen(text) : 0, &d);
	if (ret == -ENOENT)
		ret = policy_cache_delta_new(x->c, "pol/pod-a.yaml", text, strlen(text), &d);
	ASSERT_EQ(ret, 0);
	if (d.n_gone)
		from = &d.gone[0]->pods[0];
	if (d.n_added)
		to = &d.added[0]->pods[0];
	if (from) {
		ASSERT_EQ(policy_pod_services(&x->set, from, true, svc_note, &sn), 0);
		ASSERT_EQ(policy_set_del_pod(&x->set, from), 0);
		ASSERT_TRUE(policy_index_pod(&x->set, "default", from->meta.name) == NULL);
	}
	if (to) {
		ASSERT_EQ(policy_set_add_pod(&x->set, to), 0);
		ASSERT_EQ(policy_pod_services(&x->set, to, true, svc_note, &sn), 0);
		ASSERT_STREQ(policy_index_pod(&x->set, "default", to->meta.name)->meta.name,
			     to->meta.name);
	}
	/* web-b (services.yaml) is still found by name and IP after the moves */
	ASSERT_TRUE(policy_index_pod(&x->set, "default", "web-b") != NULL);
	{
		size_t n;
		const struct pol_pod *const *by_ip = policy_index_pods_ip(&x->set, htonl(0x0af4000c), &n);

		ASSERT_EQ(n, 1);
		ASSERT_STREQ(by_ip[0]->meta.name, "web-b");
	}
	ASSERT_EQ(plan_patch_services(&x->set, &x->plan, sn.ns, sn.name, sn.n, &pt), 0);
	got = plan_text(&x->plan);
	want = full_plan_pods(eps, text);
	ASSERT_STREQ(got, want);
	free(got);
	free(want);
	if (!take) {
		if (to)
			ASSERT_EQ(policy_set_del_pod(&x->set, to), 0);
		if (from)
			ASSERT_EQ(policy_set_add_pod(&x->set, from), 0);
	}
	patch_end(&x->plan, &pt, x->c, &d, before, take);
	free(before);
	return sn.n;
}

TEST(pods_added_relabelled_deleted_patch_equals_full_plan)
{
	char *eps = web_eps(EPS_A), *a1 = pod_text("web-a", "10.244.0.11", "v1"),
	     *a2 = pod_text("web-a", "10.244.0.11", "v2"), *lone = pod_text("lone", "10.244.0.99", "v2");
	struct cached x;

	cached_load(&x, eps);
	/* new: .11 joins web's endpoints' pods (in no subset: v1) */
	ASSERT_EQ(pod_step(&x, eps, a1, false), 1);	/* undone */
	ASSERT_EQ(pod_step(&x, eps, a1, true), 1);
	/* relabelled into subset v2: web re-planned (front's route follows) */
	ASSERT_EQ(pod_step(&x, eps, a2, false), 1);
	ASSERT_EQ(pod_step(&x, eps, a2, true), 1);
	{
		char *t = plan_text(&x.plan);

		/* both endpoints now in subset v2 */
		ASSERT_STRSTR(t, "|v2|web.default.svc.cluster.local lb");
		ASSERT_STRSTR(t, "af4000b:9100/1/default/web-a af4000c:9100/1/default/web-b");
		free(t);
	}
	/* deleted */
	ASSERT_EQ(pod_step(&x, eps, NULL, false), 1);
	ASSERT_EQ(pod_step(&x, eps, NULL, true), 1);
	/* a Pod no slice carries and no selector picks names no service */
	ASSERT_EQ(pod_step(&x, eps, lone, true), 0);
	ASSERT_EQ(pod_step(&x, eps, NULL, true), 0);
	cached_free(&x);
	free(eps);
	free(a1);
	free(a2);
	free(lone);
}

/* ---- the L7 config after a delta (l7_config_rebuild) ---- */

/* Everything the L7 config holds, as text (clusters by name, in order). */
static char *l7_text(const struct plan *p, const struct l7_config *c)
{
	char *buf = NULL, a[INET_ADDRSTRLEN];
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	for (size_t i = 0; i < p->n_svcs; i++)
		fprintf(f, "why %s:%u %x %s\n", p->svcs[i].fqdn, ntohs(p->svcs[i].key.port),
			p->svcs[i].flags, p->svcs[i].l7_why ?: "-");
	for (size_t i = 0; c && i < c->n_svcs; i++) {
		const struct l7_svc *s = l7_config_svc(c, i);

		fprintf(f, "svc %x:%u %s %s/%s %s vhost %s default %s\n", s->vip, s->port, s->fqdn,
			s->ns, s->name, s->why, s->vhost ? s->vhost->name : "-",
			s->default_cluster->name);
	}
	for (size_t i = 0; c && i < c->n_l4_ports; i++)
		fprintf(f, "l4 %x:%u %s %s\n", c->l4_ports[i].vip, c->l4_ports[i].port,
			c->l4_ports[i].name, c->l4_ports[i].why);
	for (size_t i = 0; c && i < c->n_clusters; i++) {
		const struct l7_cluster *cl = l7_config_cluster(c, i);

		fprintf(f, "cluster %s %016llx %s|%s|%u lb %u/%u/%s h2 %d pool %u/%u od %d/%u/%llu:",
			cl->name, (unsigned long long)cl->id, cl->fqdn, cl->subset ?: "-",
			cl->port, cl->lb, cl->hash_kind, cl->hash_key ?: "-", cl->h2,
			cl->pool.max_connections, cl->pool.http1_max_pending, cl->outlier.enabled,
			cl->outlier.consecutive_5xx, (unsigned long long)cl->outlier.interval_ms);
		for (size_t h = 0; h < cl->n_hosts; h++)
			fprintf(f, " %s:%u/%d/%s", inet_ntop(AF_INET, &cl->hosts[h].addr, a, sizeof(a)),
				cl->hosts[h].port, cl->hosts[h].ready, cl->hosts[h].pod ?: "-");
		fputc('\n', f);
	}
	for (size_t i = 0; c && i < c->n_vhosts; i++) {
		const struct l7_vhost *vh = l7_config_vhost(c, i);

		fprintf(f, "vhost %s ns %s domains", vh->name, vh->ns);
		for (size_t d = 0; d < vh->n_domains; d++)
			fprintf(f, " %s", vh->domains[d]);
		fprintf(f, " gateways");
		for (size_t g = 0; g < vh->n_gateways; g++)
			fprintf(f, " %s", vh->gateways[g]);
		for (size_t r = 0; r < vh->n_routes; r++) {
			const struct l7_route *rt = &vh->routes[r];

			fprintf(f, "\n  route %zu total %u timeout %llu retry %d/%u:", r,
				rt->total_weight, (unsigned long long)rt->timeout_ms, rt->has_retry,
				rt->retry.attempts);
			for (size_t d = 0; d < rt->n_dests; d++)
				fprintf(f, " %s=%u", rt->dests[d].cluster->name, rt->dests[d].weight);
			for (size_t m = 0; m < rt->n_mirrors; m++)
				fprintf(f, " mirror %s", rt->mirrors[m].cluster->name);
		}
		fputc('\n', f);
	}
	for (size_t i = 0; c && i < c->n_gateways; i++) {
		const struct l7_gateway *g = &c->gateways[i];

		fprintf(f, "gateway %s:", g->name);
		for (size_t s = 0; s < g->n_servers; s++) {
			fprintf(f, " server %u %s", g->servers[s].port, g->servers[s].name ?: "-");
			for (size_t h = 0; h < g->servers[s].n_hosts; h++)
				fprintf(f, " %s", g->servers[s].hosts[h]);
		}
		for (size_t v = 0; v < g->n_vhosts; v++)
			fprintf(f, " vhost %s:%s", g->vhosts[v]->name,
				g->vhosts[v]->n_domains ? g->vhosts[v]->domains[0] : "-");
		fputc('\n', f);
	}
	for (size_t i = 0; c && i < c->n_pods; i++) {
		const struct l7_pod *p = l7_config_pod(c, i);

		fprintf(f, "pod %s %s/%s", inet_ntop(AF_INET, &p->ip, a, sizeof(a)), p->ns, p->name);
		for (size_t l = 0; l < p->labels.n; l++)
			fprintf(f, " %s=%s", p->labels.v[l].key, p->labels.v[l].value);
		fputc('\n', f);
	}
	fclose(f);
	return buf;
}

/*
 * The config's tables agree with what its objects point at: every cluster
 * a service port or a route names is the one its table lists under that
 * id, ids are listed once, every vhost a port names is listed. Returns
 * what is wrong, or NULL.
 */
static const char *l7_check(const struct l7_config *c)
{
	static char why[300];

	for (size_t i = 1; c && i < c->n_clusters; i++)
		if (l7_config_cluster(c, i - 1)->id >= l7_config_cluster(c, i)->id) {
			snprintf(why, sizeof(why), "cluster %s listed twice",
				 l7_config_cluster(c, i)->name);
			return why;
		}
	for (size_t i = 0; c && i < c->n_svcs; i++) {
		const struct l7_svc *s = l7_config_svc(c, i);
		const struct l7_vhost *vh = s->vhost;
		bool listed = !vh;

		if (l7_config_find_cluster(c, s->default_cluster->id) != s->default_cluster) {
			snprintf(why, sizeof(why), "%s: cluster %s not the listed one", s->fqdn,
				 s->default_cluster->name);
			return why;
		}
		for (size_t v = 0; vh && v < c->n_vhosts; v++)
			listed |= l7_config_vhost(c, v) == vh;
		if (!listed) {
			snprintf(why, sizeof(why), "%s: vhost %s not listed", s->fqdn, vh->name);
			return why;
		}
		for (size_t r = 0; vh && r < vh->n_routes; r++)
			for (size_t d = 0; d < vh->routes[r].n_dests; d++)
				if (l7_config_find_cluster(c, vh->routes[r].dests[d].cluster->id) !=
				    vh->routes[r].dests[d].cluster) {
					snprintf(why, sizeof(why), "%s: vhost %s: cluster %s not the listed one",
						 s->fqdn, vh->name, vh->routes[r].dests[d].cluster->name);
					return why;
				}
	}
	return NULL;
}

/* The churn's size: the first run has one table chunk, the HTTP-heavy one several. */
struct l7r_size {
	unsigned svcs, vss, pods;
	bool http_heavy;	/* port names mostly http: most ports L7 */
};

#define L7R_MAX 200

/* A policy of the churn: each object's variant (0: absent for VS/DR/Pod). */
struct l7r_state {
	const struct l7r_size *z;
	unsigned svc[L7R_MAX];		/* port name / appProtocol / second port */
	unsigned dr[L7R_MAX];
	unsigned eps[L7R_MAX];		/* its slice's second endpoint and readiness */
	unsigned vs[L7R_MAX];
	unsigned pod[L7R_MAX];
	unsigned gw;			/* the Gateway's servers; 0: absent */
};

/* The Services VirtualService k names (its hosts). */
static void l7r_vs_hosts(const struct l7r_size *z, unsigned k, unsigned *a, unsigned *b)
{
	*a = k % z->svcs;
	*b = (k + 3) % z->svcs;
}

/* pod i's IP (network order) in variant v: pairs of pods share addresses */
static uint32_t l7r_pod_ip(unsigned i, unsigned v)
{
	return htonl(0x0af50000u | (i / 2) << 8 | (v % 4 + 1));
}

static char *l7r_yaml(const struct l7r_state *st)
{
	static const char *const pname[] = { "http", "tcp", "grpc", "web", "http-api", "mysql" };
	static const char *const app[] = { NULL, "http", "tcp", "kubernetes.io/h2c" };
	const struct l7r_size *z = st->z;
	char *buf = NULL, ip[INET_ADDRSTRLEN];
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	static const char *const gw_hosts[] = {
		"'*'", "s3.default.svc.cluster.local", "'default/*'", "nomatch.example.com",
	};

	/* (a Gateway binds VirtualService v3; without it, v3's gateway binds nothing) */
	if (st->gw)
		fprintf(f, "---\napiVersion: networking.istio.io/v1\nkind: Gateway\n"
			"metadata: {name: gw, namespace: default}\n"
			"spec:\n  servers:\n  - port: {number: %u, name: http, protocol: HTTP}\n"
			"    hosts: [%s]\n", 8000 + st->gw % 2, gw_hosts[(st->gw / 2) % 4]);
	for (unsigned i = 0; i < z->svcs; i++) {
		unsigned v = st->svc[i], e = st->eps[i];
		const char *ap = app[(v / 6) % 4];
		const char *pn = pname[v % 6];

		if (z->http_heavy) {	/* 3 in 4 plain http, no appProtocol */
			pn = v % 4 ? "http" : pname[v % 6];
			ap = v % 4 ? NULL : ap;
		}
		fprintf(f, "---\napiVersion: v1\nkind: Service\nmetadata: {name: s%u, namespace: default}\n"
			"spec: {clusterIP: 10.96.%u.%u, ports: [{name: %s, port: 80, targetPort: 9000%s%s}%s]}\n",
			i, 1 + i / 250, 1 + i % 250, pn, ap ? ", appProtocol: " : "", ap ?: "",
			(v / 24) % 2 ? ", {name: http-b, port: 81, targetPort: 9001}" : "");
		fprintf(f, "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
			"metadata: {name: s%u-1, namespace: default, labels: {kubernetes.io/service-name: s%u}}\n"
			"addressType: IPv4\nports: [{name: %s, port: 9000}]\n"
			"endpoints: [{addresses: [10.244.%u.1]}, "
			"{addresses: [10.244.%u.%u], conditions: {ready: %s}}]\n",
			i, i, pn, i, i, 2 + e % 3, (v + e) % 2 ? "false" : "true");
		/* always there: the routes name its subset */
		fprintf(f, "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
			"metadata: {name: s%u, namespace: default}\n"
			"spec:\n  host: s%u\n%s\n"
			"  subsets: [{name: v1, labels: {version: v1}}]\n", i, i,
			st->dr[i] % 4 == 0 ? "" :
			st->dr[i] % 4 == 1 ? "  trafficPolicy: {outlierDetection: {consecutive5xxErrors: 3}}" :
			st->dr[i] % 4 == 2 ? "  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}" :
			"  trafficPolicy: {connectionPool: {http: {http1MaxPendingRequests: 7}}}");
	}
	for (unsigned k = 0; k < z->vss; k++) {
		unsigned v = st->vs[k], a, b, d = (k + v) % z->svcs;

		if (!v)
			continue;
		l7r_vs_hosts(z, k, &a, &b);
		fprintf(f, "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\n"
			"metadata: {name: v%u, namespace: default}\n"
			"spec:\n  hosts: [s%u, s%u]\n%s  %s:\n"
			"  - route:\n    - {destination: {host: s%u}, weight: %u}\n"
			"    - {destination: {host: s%u, subset: v1}, weight: %u}\n",
			k, a, b, k == 3 ? "  gateways: [mesh, gw]\n" : "", v % 2 ? "http" : "tcp",
			d, 10 * (v % 9) + 5, (d + 1) % z->svcs, 95 - 10 * (v % 9));
	}
	for (unsigned i = 0; i < z->pods; i++) {
		uint32_t a = l7r_pod_ip(i, st->pod[i]);

		if (st->pod[i])
			fprintf(f, "---\napiVersion: v1\nkind: Pod\n"
				"metadata: {name: p%u, namespace: default, labels: {app: a%u, version: v%u}}\n"
				"status: {podIP: %s}\n", i, st->pod[i] % 3, st->pod[i] % 2 + 1,
				inet_ntop(AF_INET, &a, ip, sizeof(ip)));
	}
	fclose(f);
	return buf;
}

static struct pol_set *l7r_load(const char *yaml)
{
	struct pol_set *s = calloc(1, sizeof(*s));

	ASSERT_TRUE(s != NULL);
	policy_set_init(s);
	ASSERT_EQ(policy_load_buffer(s, "pol/all.yaml", yaml, strlen(yaml)), 0);
	if (policy_validate(s)) {
		char line[512];

		for (size_t i = 0; i < s->n_diags; i++)
			TEST_FAIL_("%s", policy_diag_format(&s->diags[i], line, sizeof(line)));
	}
	return s;
}

static void l7r_name(char names[][8], size_t *n, unsigned i)
{
	char s[8];

	snprintf(s, sizeof(s), "s%u", i);
	for (size_t k = 0; k < *n; k++)
		if (!strcmp(names[k], s))
			return;
	memcpy(names[(*n)++], s, sizeof(s));
}

#define L7R_STEPS 300

/*
 * Random churn of Services (port protocols, a second port), their
 * EndpointSlices, DestinationRules, http/tcp VirtualServices (one also
 * bound to a Gateway), Pods and that Gateway (it comes, goes, other
 * servers: no service is re-planned, the Gateways are rebuilt): after each
 * change only the services the agent would re-plan are (the Service, the
 * slice's service, the DestinationRule's host, the VirtualService's hosts;
 * a Pod no slice carries: none, its IPs are given: the pod table changes
 * there), and the L7 config compile_patch_* builds (l7_config_patch: what
 * the change does not reach is the predecessor's, shared) is the one a
 * full compile of the new policy builds: same ports and reasons, clusters,
 * vhosts and routes, gateway servers, pod table. The predecessor is put
 * before the comparison (as the agent puts it once the workers switch):
 * under ASan a shared object it freed is a use after free here, one
 * nobody frees a leak at exit.
 */
static void l7r_churn(const struct l7r_size *z, uint32_t seed)
{
	const char *ns[2 * L7R_MAX];

	for (size_t i = 0; i < 2 * L7R_MAX; i++)
		ns[i] = "default";
	for (int proxy = 0; proxy < 2; proxy++) {
		struct compile_opts co = { .l7_proxy = proxy };
		struct l7r_state *st = calloc(1, sizeof(*st));
		struct pol_set **sets = calloc(L7R_STEPS + 1, sizeof(*sets));
		struct compile_out cur;
		uint32_t x = seed + proxy;
		size_t n_sets = 0;
		char *y;

		ASSERT_TRUE(st && sets);
		st->z = z;
		for (unsigned i = 0; i < z->svcs; i++)
			st->svc[i] = i;
		for (unsigned i = 0; i < z->pods; i += 3)
			st->pod[i] = 1 + i % 5;
		for (unsigned k = 0; k < z->vss; k++)
			st->vs[k] = k % 3 ? 1 + k % 6 : 0;
		st->gw = 1;
		y = l7r_yaml(st);
		sets[n_sets++] = l7r_load(y);
		free(y);
		ASSERT_EQ(compile_policy(sets[0], &co, &cur), 0);
		for (int step = 0; step < L7R_STEPS; step++) {
			char names_buf[2 * L7R_MAX][8];
			const char *names[2 * L7R_MAX];
			struct pol_set *set, *full;
			struct compile_out fo;
			struct l7_config *l7 = NULL;
			struct plan_patch pt;
			uint32_t ips[2] = { 0, 0 };
			bool endpoints = false;
			char *got, *want;
			size_t n = 0;
			unsigned i, a, b;
			int ret;

			x = x * 1103515245u + 12345u;
			switch ((x >> 8) % 6) {
			case 0:
				i = (x >> 12) % z->svcs;
				st->svc[i] = (x >> 16) % 48;
				l7r_name(names_buf, &n, i);
				break;
			case 1:
				i = (x >> 12) % z->svcs;
				st->dr[i] = (x >> 16) % 4;
				l7r_name(names_buf, &n, i);
				break;
			case 2:
				i = (x >> 12) % z->vss;
				/* the services both versions' routes and hosts feed */
				l7r_vs_hosts(z, i, &a, &b);
				l7r_name(names_buf, &n, a);
				l7r_name(names_buf, &n, b);
				st->vs[i] = (x >> 16) % 7;
				break;
			case 3:
				i = (x >> 12) % z->svcs;
				st->eps[i] = (x >> 16) % 6;
				l7r_name(names_buf, &n, i);
				endpoints = true;
				break;
			case 4:
				i = (x >> 12) % z->pods;
				if (st->pod[i])
					ips[0] = l7r_pod_ip(i, st->pod[i]);
				st->pod[i] = (x >> 16) % 6;
				if (st->pod[i])
					ips[1] = l7r_pod_ip(i, st->pod[i]);
				break;
			default:
				/* a Gateway comes, goes or changes: no service re-planned */
				st->gw = (x >> 12) % 9;
				break;
			}
			for (size_t k = 0; k < n; k++)
				names[k] = names_buf[k];
			/* the Pods changed: their IPs, both versions (the agent's delta) */
			co.pods_known = true;
			co.pod_ips = ips;
			co.n_pod_ips = 2;
			y = l7r_yaml(st);
			set = sets[n_sets++] = l7r_load(y);
			full = l7r_load(y);
			free(y);
			ret = endpoints ? compile_patch_services(set, &co, &cur, ns, names, n, &pt, &l7) :
			      compile_patch_routes(set, &co, &cur, ns, names, n, &pt, &l7);
			if (ret == -ESTALE) {	/* not a delta: the agent reloads in full */
				compile_out_free(&cur);
				ASSERT_EQ(compile_policy(set, &co, &cur), 0);
				goto next;
			}
			ASSERT_EQ(ret, 0);
			if (l7) {
				l7_config_put(cur.l7);
				cur.l7 = l7;
			}
			plan_patch_free(&pt);
next:
			ASSERT_EQ(compile_policy(full, &co, &fo), 0);
			if (l7_check(cur.l7))
				TEST_FAIL_("step %d (proxy %d): %s", step, proxy, l7_check(cur.l7));
			got = l7_text(&cur.plan, cur.l7);
			want = l7_text(&fo.plan, fo.l7);
			if (strcmp(got, want))
				TEST_FAIL_("step %d (proxy %d): rebuilt\n%s\nfull\n%s", step, proxy,
					   got, want);
			free(got);
			free(want);
			compile_out_free(&fo);
			policy_set_free(full);
			free(full);
		}
		compile_out_free(&cur);
		for (size_t k = 0; k < n_sets; k++) {
			policy_set_free(sets[k]);
			free(sets[k]);
		}
		free(sets);
		free(st);
	}
}

TEST(l7_rebuild_equals_full_build_over_random_churn)
{
	static const struct l7r_size z = { .svcs = 8, .vss = 4, .pods = 6 };

	l7r_churn(&z, 777);
}

/*
 * The same at a size where every table has several chunks (L7_TAB_CHUNK):
 * most ports http, so a delta shares most of the config and copies the
 * chunks it changes; Pods 4 to an address pair.
 */
TEST(l7_patch_equals_full_build_http_heavy)
{
	static const struct l7r_size z = { .svcs = 160, .vss = 40, .pods = 200,
					   .http_heavy = true };

	l7r_churn(&z, 4242);
}
