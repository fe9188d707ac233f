// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The agent's two ways of writing a change into the real maps must agree:
 * an incremental apply (the changed EndpointSlices swapped into the kept
 * set, plan_patch_services, apply_services) and a full one (a fresh load,
 * plan_build, apply_plan), step after step of random endpoint churn over
 * services that share backends, a Maglev cluster, subsets and a weighted
 * tcp route, and of pod readiness (a service by selector); and of objects
 * coming and going: Services (with or without their slices), a
 * VirtualService with a weighted tcp route, a VirtualService whose host
 * comes and goes, a DestinationRule with a Maglev policy, over a set that
 * always holds warnings; and of the pods map (sm_pod): pods that opt out
 * of the redirect or run on this node (node-1) come, go and change
 * (plan_pods_patch, apply_pods). Two skeletons hold the two map sets; they are compared by
 * what connect4 would read (service -> route -> cluster -> backend list ->
 * backend state) and by their entry counts once superseded versions are
 * gone. Nothing is attached.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "../unit/test.h"

#include "agent/apply.h"
#include "compile/compile.h"
#include "compile/plan.h"
#include "policy/policy.h"
#include "sockmesh.skel.h"

#define N_SVC 6		/* s0..s5 have an EndpointSlice each */
#define N_DUMP 7	/* s6 picks the pool's pods by selector */
#define N_POOL 10

static const char *services_yaml =
	"apiVersion: v1\nkind: List\nitems:\n"
	"- {apiVersion: v1, kind: Service, metadata: {name: s0, namespace: d}, spec: {clusterIP: 10.96.9.10, ports: [{name: tcp, port: 80, targetPort: 9000}]}}\n"
	"- {apiVersion: v1, kind: Service, metadata: {name: s1, namespace: d}, spec: {clusterIP: 10.96.9.11, ports: [{name: tcp, port: 80, targetPort: 9000}]}}\n"
	"- {apiVersion: v1, kind: Service, metadata: {name: s2, namespace: d}, spec: {clusterIP: 10.96.9.12, ports: [{name: tcp, port: 80, targetPort: 9000}]}}\n"
	"- {apiVersion: v1, kind: Service, metadata: {name: s3, namespace: d}, spec: {clusterIP: 10.96.9.13, ports: [{name: tcp, port: 80, targetPort: 9000}]}}\n"
	"- {apiVersion: v1, kind: Service, metadata: {name: s4, namespace: d}, spec: {clusterIP: 10.96.9.14, ports: [{name: tcp, port: 80, targetPort: 9000}]}}\n"
	"- {apiVersion: v1, kind: Service, metadata: {name: s5, namespace: d}, spec: {clusterIP: 10.96.9.15, ports: [{name: tcp, port: 80, targetPort: 9000}]}}\n"
	"- {apiVersion: v1, kind: Service, metadata: {name: s6, namespace: d}, spec: {clusterIP: 10.96.9.16, selector: {app: pool}, ports: [{name: tcp, port: 80, targetPort: 9000}]}}\n"
	"- {apiVersion: networking.istio.io/v1, kind: DestinationRule, metadata: {name: s1, namespace: d},\n"
	"   spec: {host: s1, trafficPolicy: {loadBalancer: {consistentHash: {useSourceIp: true}}}}}\n"
	"- {apiVersion: networking.istio.io/v1, kind: DestinationRule, metadata: {name: s4, namespace: d},\n"
	"   spec: {host: s4, subsets: [{name: even, labels: {parity: even}}, {name: odd, labels: {parity: odd}}]}}\n"
	"- {apiVersion: networking.istio.io/v1, kind: VirtualService, metadata: {name: s2, namespace: d},\n"
	"   spec: {hosts: [s2], tcp: [{route: [{destination: {host: s0}, weight: 50}, {destination: {host: s3}, weight: 30},\n"
	"                                      {destination: {host: s4, subset: odd}, weight: 20}]}]}}\n";

/*
 * Pods of the pool (labels for s4's subsets, s6's selector), in their own
 * file. pod_state[i]: 0 its own parity, 1 the other (relabelled: it moves
 * between s4's subsets), 2 out of s6's selector (app: other), 3 absent.
 */
enum { POD_OWN, POD_FLIPPED, POD_OTHER_APP, POD_ABSENT, POD_STATES };
static unsigned char pod_state[N_POOL];
/* pod_flag[i]: bit 0 sockmesh.io/redirect "false", bit 1 on node-1 (else node-2) */
static unsigned char pod_flag[N_POOL];
#define NODE "node-1"

static char *pods_yaml(const unsigned char ready[N_POOL])
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	for (int i = 1; i <= N_POOL; i++) {
		unsigned st = pod_state[i - 1];

		if (st == POD_ABSENT)
			continue;
		fprintf(f, "---\napiVersion: v1\nkind: Pod\nmetadata: {name: p%d, namespace: d, "
			"labels: {app: %s, parity: %s}%s}\nspec: {nodeName: node-%d}\n"
			"status: {podIP: 10.244.9.%d, conditions: [{type: Ready, status: \"%s\"}]}\n",
			i, st == POD_OTHER_APP ? "other" : "pool",
			(i % 2) ^ (st == POD_FLIPPED) ? "odd" : "even",
			pod_flag[i - 1] & 1 ? ", annotations: {sockmesh.io/redirect: \"false\"}" : "",
			pod_flag[i - 1] & 2 ? 1 : 2, i, ready[i - 1] ? "True" : "False");
	}
	fclose(f);
	return buf;
}

/* Services with a second slice (a scale-up): its one endpoint is outside the pool. */
static bool slice_extra[N_SVC];

/* One slice per service; eps[s][i]: 0 absent, 1 ready, 2 not ready. */
static char *slices_yaml(unsigned char eps[N_SVC][N_POOL])
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	for (int s = 0; s < N_SVC; s++) {
		int n = 0;

		fprintf(f, "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
			"metadata: {name: s%d-1, namespace: d, labels: {kubernetes.io/service-name: s%d}}\n"
			"addressType: IPv4\nports: [{name: tcp, port: 9000}]\nendpoints:", s, s);
		for (int i = 0; i < N_POOL; i++)
			if (eps[s][i])
				fprintf(f, "\n- {addresses: [10.244.9.%d], conditions: {ready: %s}}",
					i + 1, eps[s][i] == 1 ? "true" : "false"), n++;
		fprintf(f, "%s\n", n ? "" : " []");
		if (slice_extra[s])
			fprintf(f, "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
				"metadata: {name: s%d-2, namespace: d, labels: {kubernetes.io/service-name: s%d}}\n"
				"addressType: IPv4\nports: [{name: tcp, port: 9000}]\n"
				"endpoints: [{addresses: [10.244.8.%d]}]\n", s, s, s + 1);
	}
	fclose(f);
	return buf;
}

/*
 * Objects that come and go, one document each: Services x0..x3 (VIPs
 * 10.96.9.20+k) and their slices, VirtualService xr (hosts x1: a warning
 * while x1 is gone), DestinationRule x2 (Maglev; a warning while x2 is
 * gone), VirtualService vs5 (a weighted tcp route on s5), and
 * DestinationRule ghost (always a warning: diagnostics are always there).
 */
#define N_X 4
enum { X_SVC, X_SLICE = X_SVC + N_X, X_VS_XR = X_SLICE + N_X, X_DR_X2, X_VS5, X_N };
static bool x_on[X_N];

static char *extra_yaml(unsigned char eps[N_SVC][N_POOL])
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	fprintf(f, "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
		"metadata: {name: ghost, namespace: d}\nspec: {host: ghost}\n");
	for (int k = 0; k < N_X; k++) {
		if (x_on[X_SVC + k])
			fprintf(f, "---\napiVersion: v1\nkind: Service\nmetadata: {name: x%d, namespace: d}\n"
				"spec: {clusterIP: 10.96.9.%d, ports: [{name: tcp, port: 80, targetPort: 9000}]}\n",
				k, 20 + k);
		if (x_on[X_SLICE + k]) {
			fprintf(f, "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
				"metadata: {name: x%d-1, namespace: d, labels: {kubernetes.io/service-name: x%d}}\n"
				"addressType: IPv4\nports: [{name: tcp, port: 9000}]\nendpoints:", k, k);
			for (int i = 0; i < N_POOL; i++)
				if (eps[k][i] != 1)	/* the pool's other half */
					fprintf(f, "\n- {addresses: [10.244.9.%d]}", i + 1);
			fprintf(f, "\n- {addresses: [10.244.7.%d]}\n", k + 1);
		}
	}
	if (x_on[X_VS_XR])
		fprintf(f, "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\n"
			"metadata: {name: xr, namespace: d}\nspec: {hosts: [x1], tcp: [{route: ["
			"{destination: {host: s0}, weight: 60}, {destination: {host: s3}, weight: 40}]}]}\n");
	if (x_on[X_DR_X2])
		fprintf(f, "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
			"metadata: {name: x2, namespace: d}\nspec: {host: x2, trafficPolicy: "
			"{loadBalancer: {consistentHash: {useSourceIp: true}}}}\n");
	if (x_on[X_VS5])
		fprintf(f, "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\n"
			"metadata: {name: vs5, namespace: d}\nspec: {hosts: [s5], tcp: [{route: ["
			"{destination: {host: s1}, weight: 70}, {destination: {host: s5}, weight: 30}]}]}\n");
	fclose(f);
	return buf;
}

static int load_all(struct pol_set *set, const char *pods, const char *slices, const char *extra)
{
	if (policy_load_buffer(set, "t/services.yaml", services_yaml, strlen(services_yaml)) ||
	    policy_load_buffer(set, "t/pods.yaml", pods, strlen(pods)) ||
	    policy_load_buffer(set, "t/slices.yaml", slices, strlen(slices)) ||
	    policy_load_buffer(set, "t/x.yaml", extra, strlen(extra)))
		return -EINVAL;
	return policy_validate(set);
}

static bool maps_of(struct sockmesh *skel, struct dp_maps *m)
{
	dp_maps_init(m);
	for (size_t i = 0; i < DP_N_MAPS; i++) {
		struct bpf_map *map = bpf_object__find_map_by_name(skel->obj, dp_map_names[i]);

		*dp_maps_at(m, i) = map ? bpf_map__fd(map) : -1;
	}
	return m->svc >= 0 && m->bset >= 0 && m->backend >= 0;
}

static size_t map_count(int fd, size_t key_size)
{
	unsigned char k[64], next[64];
	void *prev = NULL;
	size_t n = 0;

	while (!bpf_map_get_next_key(fd, prev, next)) {
		memcpy(k, next, key_size);
		prev = k;
		n++;
	}
	return n;
}

static void dump_cluster(FILE *f, const struct dp_maps *m, uint64_t id)
{
	struct sm_cluster_val cv;
	uint64_t mh = 0;

	if (bpf_map_lookup_elem(m->cluster, &id, &cv)) {
		fprintf(f, " [cluster %llx missing]", (unsigned long long)id);
		return;
	}
	fprintf(f, " [%llx lb %u n %u:", (unsigned long long)id, cv.lb, cv.n_backends);
	for (uint32_t i = 0; i < cv.n_backends; i++) {
		struct sm_bset_key k = { .set_id = cv.set_id, .idx = i };
		struct sm_backend_val bv = {};
		struct sm_be_key be = {};

		if (bpf_map_lookup_elem(m->bset, &k, &be))
			fprintf(f, " ?");
		else if (bpf_map_lookup_elem(m->backend, &be, &bv))
			fprintf(f, " %x:%u/missing", ntohl(be.addr), ntohs(be.port));
		else
			fprintf(f, " %x:%u/%u", ntohl(be.addr), ntohs(be.port), bv.flags);
	}
	for (uint32_t i = 0; i < cv.maglev_size; i++) {
		struct sm_bset_key k = { .set_id = cv.set_id, .idx = i };
		struct sm_maglev_val v = { .idx = 99999 };

		bpf_map_lookup_elem(m->maglev, &k, &v);
		mh = mh * 31 + v.idx;
	}
	fprintf(f, " maglev %u/%llx]", cv.maglev_size, (unsigned long long)mh);
}

/* What connect4 reads, service by service, and how many entries each map holds. */
static char *dump(const struct dp_maps *m)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	for (int s = 0; s < N_DUMP + N_X; s++) {
		int vip = s < N_DUMP ? 10 + s : 20 + s - N_DUMP;
		char c = s < N_DUMP ? 's' : 'x';
		int id = s < N_DUMP ? s : s - N_DUMP;
		struct sm_svc_key k = { .vip = htonl(0x0a600900 + vip), .port = htons(80),
					.proto = SM_IPPROTO_TCP };
		struct sm_svc_val v;

		if (bpf_map_lookup_elem(m->svc, &k, &v)) {
			fprintf(f, "%c%d: none\n", c, id);
			continue;
		}
		fprintf(f, "%c%d: flags %u slots %u", c, id, v.flags, v.route_slots);
		if (v.route_slots > 1) {
			for (uint32_t i = 0; i < v.route_slots; i++) {
				struct sm_route_key rk = { .route_id = v.route_id, .slot = i };
				struct sm_route_val rv = {};

				bpf_map_lookup_elem(m->route, &rk, &rv);
				fprintf(f, " %llx", (unsigned long long)rv.cluster_id);
			}
		}
		dump_cluster(f, m, v.cluster_id);
		fputc('\n', f);
	}
	/* the pods map: the redirect's opt-outs and this node's pods */
	for (int i = 1; i <= N_POOL; i++) {
		struct sm_pod_key pk = { .addr = htonl(0x0af40900 + i) };
		struct sm_pod_val pv;

		if (!bpf_map_lookup_elem(m->pod, &pk, &pv))
			fprintf(f, "pod %d: %u\n", i, pv.flags);
	}
	/* every cluster the maps hold (route targets, subsets) */
	fprintf(f, "pods %zu entries:", map_count(m->pod, sizeof(struct sm_pod_key)));
	fprintf(f, " svc %zu cluster %zu backend %zu bset %zu maglev %zu route %zu meta %zu\n",
		map_count(m->svc, sizeof(struct sm_svc_key)), map_count(m->cluster, 8),
		map_count(m->backend, sizeof(struct sm_be_key)),
		map_count(m->bset, sizeof(struct sm_bset_key)),
		map_count(m->maglev, sizeof(struct sm_bset_key)),
		map_count(m->route, sizeof(struct sm_route_key)),
		map_count(m->meta, sizeof(struct sm_meta_key)));
	fclose(f);
	return buf;
}

/* Every cluster of every service, by id, for the comparison of subsets and route targets. */
static char *dump_clusters(const struct dp_maps *m, const struct plan *p)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	for (size_t i = 0; i < p->n_svcs; i++)
		for (size_t j = 0; j < p->svcs[i].n_clusters; j++) {
			dump_cluster(f, m, p->svcs[i].clusters[j].id);
			fputc('\n', f);
		}
	fclose(f);
	return buf;
}

/* The one object of a delta's document: its kind and meta. */
static const struct pol_meta *one_obj(const struct pol_set *doc, const char **kind)
{
	*kind = policy_set_single_kind(doc) ?: "-";
	if (!strcmp(*kind, "Service"))
		return &doc->svcs[0].meta;
	if (!strcmp(*kind, "Pod"))
		return &doc->pods[0].meta;
	if (!strcmp(*kind, "VirtualService"))
		return &doc->vss[0].meta;
	if (!strcmp(*kind, "DestinationRule"))
		return &doc->drs[0].meta;
	if (!strcmp(*kind, "EndpointSlice"))
		return &doc->eps[0].meta;
	return NULL;
}

static int obj_add(struct pol_set *set, const struct pol_set *doc, bool del)
{
	const char *kind;

	one_obj(doc, &kind);
	if (!strcmp(kind, "Service"))
		return del ? policy_set_del_svc(set, &doc->svcs[0]) : policy_set_add_svc(set, &doc->svcs[0]);
	if (!strcmp(kind, "VirtualService"))
		return del ? policy_set_del_vs(set, &doc->vss[0]) : policy_set_add_vs(set, &doc->vss[0]);
	if (!strcmp(kind, "DestinationRule"))
		return del ? policy_set_del_dr(set, &doc->drs[0]) : policy_set_add_dr(set, &doc->drs[0]);
	if (!strcmp(kind, "EndpointSlice"))
		return del ? policy_set_del_eps(set, &doc->eps[0]) : policy_set_add_eps(set, &doc->eps[0]);
	if (!strcmp(kind, "Pod"))
		return del ? policy_set_del_pod(set, &doc->pods[0]) : policy_set_add_pod(set, &doc->pods[0]);
	return -EINVAL;
}

#define N_NAMES 64

struct names {
	const char **v;
	size_t *n;
};

/* Each service once (namespace d). */
static int note_one(void *arg, const char *ns, const char *name)
{
	struct names *nm = arg;

	ASSERT_STREQ(ns, "d");
	for (size_t k = 0; k < *nm->n; k++)
		if (!strcmp(nm->v[k], name))
			return 0;
	if (!ASSERT_TRUE(*nm->n < N_NAMES))
		return -ENOSPC;
	nm->v[(*nm->n)++] = name;
	return 0;
}

/*
 * The services (namespace d) a version of a changed object feeds, as
 * reload.c names them (a Pod's: policy_pod_services over the kept set;
 * ready: its readiness alone changed).
 */
static void note_names(const struct pol_set *kept, const struct pol_set *doc, bool ready,
		       const char **names, size_t *n)
{
	struct names nm = { names, n };
	const char *kind;

	one_obj(doc, &kind);
	if (!strcmp(kind, "Service"))
		note_one(&nm, "d", doc->svcs[0].meta.name);
	else if (!strcmp(kind, "EndpointSlice"))
		note_one(&nm, "d", doc->eps[0].service_name);
	else if (!strcmp(kind, "Pod"))
		ASSERT_EQ(policy_pod_services(kept, &doc->pods[0], !ready, note_one, &nm), 0);
	else if (!strcmp(kind, "DestinationRule"))
		note_one(&nm, "d", doc->drs[0].host);
	else if (!strcmp(kind, "VirtualService"))
		for (size_t h = 0; h < doc->vss[0].n_hosts; h++)
			note_one(&nm, "d", doc->vss[0].hosts[h]);
}

struct churn {
	size_t pod_swaps, slice_adds_dels, adds[2], dels[2];	/* [0] Services, [1] routes */
	size_t pod_adds, pod_dels, pod_relabels;
	uint32_t addrs[2 * N_POOL];	/* this step's sm_pod addresses to redo */
	size_t n_addrs, pod_patches;
};

/* A version of a Pod that has sm_pod flags: its address is redone (reload.c). */
static void note_pod_addr(struct churn *st, const struct pol_set *doc)
{
	const struct pol_pod *p = &doc->pods[0];

	if (!plan_pod_flags(p, NODE))
		return;
	for (size_t k = 0; k < st->n_addrs; k++)
		if (st->addrs[k] == p->ip)
			return;
	if (ASSERT_LE(st->n_addrs + 1, 2 * N_POOL))
		st->addrs[st->n_addrs++] = p->ip;
}

/*
 * What the agent's delta does (reload.c): pair the new documents with the
 * gone ones by kind and name; slices and pods swap in place, other kinds
 * go and come; unpaired ones are new or deleted.
 */
static void delta_swap(struct pol_set *kept, const struct pol_delta *d, const char **names,
		       size_t *n, struct churn *st)
{
	bool paired[64] = {};

	ASSERT_LE(d->n_gone, 64);
	for (size_t k = 0; k < d->n_added; k++) {
		const char *kind, *gk;
		const struct pol_meta *to = one_obj(d->added[k], &kind), *g;
		const struct pol_set *from = NULL;
		bool svc = !strcmp(kind, "Service"), ready;

		if (!ASSERT_TRUE(to != NULL))
			return;
		for (size_t j = 0; j < d->n_gone && !from; j++)
			if ((g = one_obj(d->gone[j], &gk)) && !strcmp(gk, kind) &&
			    !strcmp(g->name, to->name) && !paired[j]) {
				from = d->gone[j];
				paired[j] = true;
			}
		ready = !strcmp(kind, "Pod") && from &&
			policy_pod_same_but_ready(&from->pods[0], &d->added[k]->pods[0]);
		note_names(kept, d->added[k], ready, names, n);
		if (from)
			note_names(kept, from, ready, names, n);
		if (ready) {
			ASSERT_EQ(policy_set_swap_pod(kept, &from->pods[0], &d->added[k]->pods[0]), 0);
			st->pod_swaps++;
		} else if (!strcmp(kind, "Pod")) {
			/* new, or relabelled: out and in again */
			if (from) {
				ASSERT_EQ(obj_add(kept, from, true), 0);
				note_pod_addr(st, from);
			}
			note_pod_addr(st, d->added[k]);
			st->pod_relabels += from != NULL;
			st->pod_adds += !from;
			ASSERT_EQ(obj_add(kept, d->added[k], false), 0);
			note_names(kept, d->added[k], false, names, n);
		} else if (from && !strcmp(kind, "EndpointSlice")) {
			ASSERT_EQ(policy_set_swap_eps(kept, &from->eps[0], &d->added[k]->eps[0]), 0);
		} else {
			if (from)
				ASSERT_EQ(obj_add(kept, from, true), 0);
			else if (!strcmp(kind, "EndpointSlice"))
				st->slice_adds_dels++;
			else
				st->adds[!svc]++;
			ASSERT_EQ(obj_add(kept, d->added[k], false), 0);
		}
	}
	for (size_t j = 0; j < d->n_gone && j < 64; j++) {
		const char *kind;

		if (paired[j])
			continue;
		one_obj(d->gone[j], &kind);
		if (!strcmp(kind, "EndpointSlice"))
			st->slice_adds_dels++;
		else if (!strcmp(kind, "Pod"))
			st->pod_dels++, note_pod_addr(st, d->gone[j]);
		else
			st->dels[strcmp(kind, "Service") != 0]++;
		note_names(kept, d->gone[j], false, names, n);
		ASSERT_EQ(obj_add(kept, d->gone[j], true), 0);
	}
}

TEST(apply_incremental_equals_full)
{
	struct sockmesh *inc = sockmesh__open_and_load(), *full = sockmesh__open_and_load();
	unsigned char eps[N_SVC][N_POOL], ready[N_POOL];
	struct apply_ctx a_inc = {}, a_full = {};
	struct dp_maps m_inc, m_full;
	struct pol_cache *cache = policy_cache_new();
	struct pol_set kept;
	struct plan kept_plan = {};
	char *pods = NULL, *slices, err[256];
	uint64_t x = 42;
	struct churn st = {};
	char *extra = NULL;

	policy_set_init(&kept);
	if (!ASSERT_TRUE(inc && full && cache) || !ASSERT_TRUE(maps_of(inc, &m_inc)) ||
	    !ASSERT_TRUE(maps_of(full, &m_full)))
		goto out;
	ASSERT_EQ(apply_init(&a_inc, &m_inc, 0), 0);
	ASSERT_EQ(apply_init(&a_full, &m_full, 0), 0);
	for (int s = 0; s < N_SVC; s++)
		for (int i = 0; i < N_POOL; i++)
			eps[s][i] = (unsigned char)((s + i) % 3 == 0 ? 1 : 0);
	for (int i = 0; i < N_POOL; i++)
		ready[i] = i % 4 != 0;
	pods = pods_yaml(ready);

	/* generation 1: both full, through the cache as the agent loads */
	slices = slices_yaml(eps);
	extra = extra_yaml(eps);
	policy_cache_begin(cache);
	policy_set_use_cache(&kept, cache);
	ASSERT_EQ(load_all(&kept, pods, slices, extra), 0);
	ASSERT_GE(kept.n_warnings, 1);	/* DestinationRule ghost */
	ASSERT_EQ(plan_build(&kept, &kept_plan), 0);
	ASSERT_EQ(plan_mark_local(&kept, &kept_plan, NODE), 0);
	policy_cache_end(cache);
	free(slices);
	/* the agent's start: names written after the apply (apply_flush_names) */
	a_inc.defer_names = true;
	ASSERT_EQ(apply_plan(&a_inc, &kept_plan, err, sizeof(err)), 0);
	ASSERT_EQ(apply_plan(&a_full, &kept_plan, err, sizeof(err)), 0);
	ASSERT_EQ(map_count(m_inc.meta, sizeof(struct sm_meta_key)), 0);
	ASSERT_TRUE(map_count(m_full.meta, sizeof(struct sm_meta_key)) > 0);
	a_inc.defer_names = false;
	apply_flush_names(&a_inc);
	ASSERT_EQ(map_count(m_inc.meta, sizeof(struct sm_meta_key)),
		  map_count(m_full.meta, sizeof(struct sm_meta_key)));

	for (int step = 0; step < 80; step++) {
		int changes = 1 + step % 3;
		struct pol_delta d = {};
		struct pol_set fresh;
		struct plan fresh_plan;
		struct plan_patch pt;
		const char *ns[N_NAMES], *names[N_NAMES];
		char *di, *df, *ci, *cf;
		size_t n = 0;

		/* churn: endpoints come, go, turn ready or not */
		for (int c = 0; c < changes; c++) {
			x = x * 6364136223846793005ull + 1442695040888963407ull;
			eps[(x >> 33) % N_SVC][(x >> 41) % N_POOL] = (unsigned char)((x >> 50) % 3);
		}
		if (step % 2) {
			x = x * 6364136223846793005ull + 1442695040888963407ull;
			ready[(x >> 37) % N_POOL] ^= 1;
		} else {
			/* a pod comes, goes or is relabelled */
			x = x * 6364136223846793005ull + 1442695040888963407ull;
			pod_state[(x >> 37) % N_POOL] = (unsigned char)((x >> 45) % POD_STATES);
		}
		if (step % 3 == 1) {
			/* a pod opts out of the redirect or in, moves to this node or away */
			x = x * 6364136223846793005ull + 1442695040888963407ull;
			pod_flag[(x >> 37) % N_POOL] = (unsigned char)((x >> 45) % 4);
		}
		free(pods);
		pods = pods_yaml(ready);
		if (step % 3 == 2) {
			/* a second slice of a service comes or goes */
			x = x * 6364136223846793005ull + 1442695040888963407ull;
			slice_extra[(x >> 39) % N_SVC] ^= 1;
		}
		/* objects come and go (a slice may come before its Service) */
		for (int c = 0; c < 1 + step % 2; c++) {
			int o;

			x = x * 6364136223846793005ull + 1442695040888963407ull;
			o = (int)((x >> 35) % X_N);
			x_on[o] ^= 1;
			if (o < X_SVC + N_X && !x_on[o] && (x >> 45) % 2)
				x_on[o + N_X] = false;	/* deleted with its slice */
		}
		slices = slices_yaml(eps);
		free(extra);
		extra = extra_yaml(eps);

		/* incremental: what the agent's delta does (reload.c) */
		st.n_addrs = 0;
		ASSERT_EQ(policy_cache_delta(cache, "t/slices.yaml", slices, strlen(slices), &d), 0);
		ASSERT_EQ(policy_cache_delta(cache, "t/pods.yaml", pods, strlen(pods), &d), 0);
		ASSERT_EQ(policy_cache_delta(cache, "t/x.yaml", extra, strlen(extra), &d), 0);
		delta_swap(&kept, &d, names, &n, &st);
		for (size_t k = 0; k < n; k++)
			ns[k] = "d";
		{
			/* the checks the agent runs: nothing the full load would reject */
			size_t nd = kept.n_diags, nw = kept.n_warnings;

			ASSERT_EQ(policy_validate_change(&kept, ns, names, n, true), 0);
			ASSERT_EQ(kept.n_errors, 0);
			kept.n_diags = nd;
			kept.n_warnings = nw;
		}
		ASSERT_EQ(plan_patch_services(&kept, &kept_plan, ns, names, n, &pt), 0);
		for (size_t k = 0; k < st.n_addrs; k++)
			ASSERT_EQ(plan_pods_patch(&kept, &kept_plan, NODE, st.addrs[k]), 0);
		ASSERT_EQ(apply_services(&a_inc, &kept_plan, pt.idx, pt.n, pt.gone, pt.n_gone, err, sizeof(err)), 0);
		ASSERT_EQ(apply_pods(&a_inc, &kept_plan, st.addrs, st.n_addrs, err, sizeof(err)), 0);
		st.pod_patches += st.n_addrs;
		policy_delta_commit(cache, &d);
		plan_patch_free(&pt);

		/* full, from scratch */
		policy_set_init(&fresh);
		ASSERT_EQ(load_all(&fresh, pods, slices, extra), 0);
		ASSERT_EQ(plan_build(&fresh, &fresh_plan), 0);
		ASSERT_EQ(plan_mark_local(&fresh, &fresh_plan, NODE), 0);
		ASSERT_EQ(apply_plan(&a_full, &fresh_plan, err, sizeof(err)), 0);

		/* superseded versions gone on both sides, then compare */
		apply_gc(&a_inc, UINT64_MAX / 2);
		apply_gc(&a_full, UINT64_MAX / 2);
		di = dump(&m_inc);
		df = dump(&m_full);
		ci = dump_clusters(&m_inc, &fresh_plan);
		cf = dump_clusters(&m_full, &fresh_plan);
		ASSERT_STREQ(di, df);
		ASSERT_STREQ(ci, cf);
		ASSERT_EQ(kept_plan.n_svcs, fresh_plan.n_svcs);
		ASSERT_EQ(a_inc.live_bset, a_full.live_bset);
		ASSERT_EQ(a_inc.live_maglev, a_full.live_maglev);
		ASSERT_EQ(a_inc.live_route, a_full.live_route);
		free(di);
		free(df);
		free(ci);
		free(cf);
		plan_free(&fresh_plan);
		policy_set_free(&fresh);
		free(slices);
		if (test__failed)
			break;
	}
	ASSERT_GE(st.pod_swaps, 10);	/* the selector service's readiness went through deltas */
	ASSERT_GE(st.pod_adds, 5);	/* pods came, went and were relabelled */
	ASSERT_GE(st.pod_dels, 5);
	ASSERT_GE(st.pod_relabels, 5);
	ASSERT_GE(st.slice_adds_dels, 10);	/* and second slices came and went */
	ASSERT_GE(st.pod_patches, 10);	/* sm_pod entries were redone by deltas */
	ASSERT_GE(st.adds[0], 5);	/* Services came */
	ASSERT_GE(st.dels[0], 5);	/* and went */
	ASSERT_GE(st.adds[1], 5);	/* so did VirtualServices and DestinationRules */
	ASSERT_GE(st.dels[1], 5);
	printf("  %zu sm_pod addresses redone, %zu pod swaps, %zu+%zu+%zu pods added+deleted+relabelled, %zu slices, "
	       "%zu+%zu Services, %zu+%zu routes added+deleted\n", st.pod_patches, st.pod_swaps, st.pod_adds,
	       st.pod_dels, st.pod_relabels, st.slice_adds_dels, st.adds[0], st.dels[0], st.adds[1],
	       st.dels[1]);
	{
		char *last = dump(&m_inc);

		ASSERT_STRSTR(last, "s6: flags 0 slots 0 [");
		free(last);
	}
out:
	apply_fini(&a_inc);
	apply_fini(&a_full);
	plan_free(&kept_plan);
	policy_set_free(&kept);
	policy_cache_free(cache);
	free(pods);
	free(extra);
	sockmesh__destroy(inc);
	sockmesh__destroy(full);
}

/* ---- the sweep of an adopted data path ---- */

/*
 * A mesh with both kinds of port: web (http) and rpc (grpc) are L7 ports
 * (connect4 sends them to the agent's listener, and balances their
 * clusters at L4 while no agent runs), web with subsets and a weighted
 * http route; t2 is tcp with a weighted tcp route (sm_route) over t3
 * (Maglev: sm_maglev) and t4; p4 opts out of the redirect (sm_pod).
 * old: the plan of the agent before the restart (other weights, t4 on p8,
 * p8 opted out too); t5: the Service t5 (backend p9); t4_p7: t4 lists p7;
 * n_x: Services x0.. (10.96.9.20 + k).
 */
struct sw_plan {
	bool old, t5, t4_p7;
	int n_x;
};

static char *sweep_yaml(const struct sw_plan *o)
{
	static const char *svc = "- {apiVersion: v1, kind: Service, metadata: {name: %s, namespace: d}, "
				 "spec: {clusterIP: 10.96.9.%d, ports: [{name: %s, port: 80, targetPort: 9000}]}}\n";
	static const char *slice = "- {apiVersion: discovery.k8s.io/v1, kind: EndpointSlice, addressType: IPv4,\n"
				   "   metadata: {name: %s-1, namespace: d, labels: {kubernetes.io/service-name: %s}},\n"
				   "   ports: [{name: %s, port: 9000}], endpoints: [";
	struct { const char *name, *port; int vip; const char *eps; } s[] = {
		{ "web", "http", 10, "123" }, { "rpc", "grpc", 11, "23" }, { "t2", "tcp", 12, "1" },
		{ "t3", "tcp", 13, "456" },
		{ "t4", "tcp", 14, o->old ? "58" : o->t4_p7 ? "57" : "5" },
		{ "t5", "tcp", 15, o->t5 ? "9" : NULL },
	};
	char *buf = NULL, name[16];
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	fprintf(f, "apiVersion: v1\nkind: List\nitems:\n");
	for (int i = 1; i <= 9; i++)
		fprintf(f, "- {apiVersion: v1, kind: Pod, metadata: {name: p%d, namespace: d, labels: "
			"{app: a, version: v%d}%s}, status: {podIP: 10.244.9.%d, conditions: "
			"[{type: Ready, status: \"True\"}]}}\n", i, 1 + i % 2,
			i == 4 || (i == 8 && o->old) ? ", annotations: {sockmesh.io/redirect: \"false\"}" : "",
			i);
	for (size_t k = 0; k < sizeof(s) / sizeof(s[0]); k++) {
		if (!s[k].eps)
			continue;
		fprintf(f, svc, s[k].name, s[k].vip, s[k].port);
		fprintf(f, slice, s[k].name, s[k].name, s[k].port);
		for (const char *e = s[k].eps; *e; e++)
			fprintf(f, "%s{addresses: [10.244.9.%c]}", e == s[k].eps ? "" : ", ", *e);
		fprintf(f, "]}\n");
	}
	for (int k = 0; k < o->n_x; k++) {
		snprintf(name, sizeof(name), "x%d", k);
		fprintf(f, svc, name, 20 + k, "tcp");
		fprintf(f, slice, name, name, "tcp");
		fprintf(f, "{addresses: [10.244.9.1]}]}\n");
	}
	fprintf(f, "- {apiVersion: networking.istio.io/v1, kind: DestinationRule, metadata: {name: web, namespace: d},\n"
		"   spec: {host: web, subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]}}\n"
		"- {apiVersion: networking.istio.io/v1, kind: VirtualService, metadata: {name: web, namespace: d},\n"
		"   spec: {hosts: [web], http: [{match: [{headers: {x-canary: {exact: \"1\"}}}], route: [{destination: {host: web, subset: v2}}]},\n"
		"                               {route: [{destination: {host: web, subset: v1}, weight: %d},\n"
		"                                        {destination: {host: web, subset: v2}, weight: %d}]}]}}\n"
		"- {apiVersion: networking.istio.io/v1, kind: DestinationRule, metadata: {name: t3, namespace: d},\n"
		"   spec: {host: t3, trafficPolicy: {loadBalancer: {consistentHash: {useSourceIp: true}}}}}\n"
		"- {apiVersion: networking.istio.io/v1, kind: VirtualService, metadata: {name: t2, namespace: d},\n"
		"   spec: {hosts: [t2], tcp: [{route: [{destination: {host: t3}, weight: %d}, {destination: {host: t4}, weight: %d}]}]}}\n",
		o->old ? 50 : 80, o->old ? 50 : 20, o->old ? 40 : 70, o->old ? 60 : 30);
	fclose(f);
	return buf;
}

/* The kernel plan of o as the agent compiles it (with an L7 proxy). */
static int sweep_plan(const struct sw_plan *o, struct plan *p)
{
	struct compile_opts opts = { .l7_proxy = true };
	struct compile_out out = {};
	struct pol_set set;
	char *y = sweep_yaml(o);
	int ret;

	policy_set_init(&set);
	ret = policy_load_buffer(&set, "t/sweep.yaml", y, strlen(y)) ?: policy_validate(&set);
	ret = ret ?: set.n_errors ? -EINVAL : compile_policy(&set, &opts, &out);
	*p = out.plan;
	memset(&out.plan, 0, sizeof(out.plan));
	compile_out_free(&out);	/* its L7 config borrows from set */
	policy_set_free(&set);
	free(y);
	return ret;
}

static struct sm_svc_key sweep_svc_key(int vip)
{
	return (struct sm_svc_key){ .vip = htonl(0x0a600900 + vip), .port = htons(80),
				    .proto = SM_IPPROTO_TCP };
}

static struct sm_be_key sweep_be_key(int pod)
{
	return (struct sm_be_key){ .addr = htonl(0x0af40900 + pod), .port = htons(9000) };
}

/* the swept maps, in apply.c's order, with their key sizes */
static const struct {
	size_t off, key_size;
	const char *name;
} sweep_maps[] = {
	{ offsetof(struct dp_maps, svc), sizeof(struct sm_svc_key), "svc" },
	{ offsetof(struct dp_maps, svc_stats), sizeof(struct sm_svc_key), "svc_stats" },
	{ offsetof(struct dp_maps, route), sizeof(struct sm_route_key), "route" },
	{ offsetof(struct dp_maps, cluster), sizeof(__u64), "cluster" },
	{ offsetof(struct dp_maps, rr), sizeof(__u64), "rr" },
	{ offsetof(struct dp_maps, bset), sizeof(struct sm_bset_key), "bset" },
	{ offsetof(struct dp_maps, maglev), sizeof(struct sm_bset_key), "maglev" },
	{ offsetof(struct dp_maps, backend), sizeof(struct sm_be_key), "backend" },
	{ offsetof(struct dp_maps, be_stats), sizeof(struct sm_be_key), "be_stats" },
	{ offsetof(struct dp_maps, pod), sizeof(struct sm_pod_key), "pod" },
	{ offsetof(struct dp_maps, meta), sizeof(struct sm_meta_key), "meta" },
};
enum { SW_SVC = 1, SW_CLUSTER = 4, SW_BACKEND = 8, SW_N = 11 };

static int sweep_fd(const struct dp_maps *m, size_t i)
{
	return *(const int *)((const char *)m + sweep_maps[i].off);
}

/* "svc 7 svc_stats 0 ...": the entries of every swept map */
static char *sweep_counts(const struct dp_maps *m)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	for (size_t i = 0; i < SW_N; i++)
		fprintf(f, "%s %zu ", sweep_maps[i].name, map_count(sweep_fd(m, i), sweep_maps[i].key_size));
	fclose(f);
	return buf;
}

/*
 * What a crashed or failed agent can leave too, keyed by i: an entry of
 * every swept map, nobody's (a stale L7 service among them: 10.254.x.x
 * with SM_SVC_F_L7, its cluster, set and backend).
 */
static void put_foreign(const struct dp_maps *m, uint32_t i)
{
	static unsigned char zero[1 << 16];
	struct sm_svc_key sk = { .vip = htonl(0x0afe0000 + i), .port = htons(81), .proto = SM_IPPROTO_TCP };
	struct sm_svc_val sv = { .cluster_id = 0x7fff000000ull + i, .flags = SM_SVC_F_L7 };
	struct sm_route_key rk = { .route_id = 0x7fff0000 + i, .slot = 1 };
	struct sm_be_key bk = { .addr = htonl(0x0afd0000 + i), .port = htons(8080) };
	struct sm_bset_key bs = { .set_id = 0x7fff0000 + i, .idx = 0 };
	struct sm_pod_key pk = { .addr = htonl(0x0afc0000 + i) };
	struct sm_meta_key mk = { .kind = SM_META_CLUSTER + i % 3, .id = 0x7fff000000ull + i };
	__u64 cid = 0x7fff000000ull + i;
	const void *keys[SW_N] = { &sk, &sk, &rk, &cid, &cid, &bs, &bs, &bk, &bk, &pk, &mk };

	for (size_t k = 0; k < SW_N; k++)
		ASSERT_EQ(bpf_map_update_elem(sweep_fd(m, k), keys[k], k ? zero : (void *)&sv, BPF_ANY), 0);
}

/* dump() of the Services s0..s6 alone */
static char *dump_served(const struct dp_maps *m)
{
	char *d = dump(m), *x = d ? strstr(d, "\nx0: ") : NULL;

	if (x)
		x[1] = '\0';
	return d;
}

static bool key_is(const union apply_map_key *k, const void *want, size_t size)
{
	return !memcmp(k, want, size);
}

/*
 * The agent restarts with --keep-on-exit: the new one adopts the maps the
 * old one filled (plus what a crash could leave: foreign entries of every
 * map, stale L7 services among them) and sweeps them a slice per loop
 * turn, one entry per slice here, with applies between slices:
 *  - the walk stands on t5's entry, nobody's then: t5 comes back (the
 *    entry is claimed again when the walk leaves it, and stays);
 *  - in sm_cluster, a delta adds x0 (entries behind and ahead of the walk);
 *  - the walk stands on p7's sm_backend entry: an apply drops p7 from t4,
 *    deleting the key under the walk (get_next_key starts that map over).
 * At the end the maps hold exactly what a fresh agent writes for the same
 * plan: every L7 and tcp service whole, nothing foreign, no leftover.
 */
TEST(apply_sweep_adopted_in_slices)
{
	struct sockmesh *skel = sockmesh__open_and_load(), *fresh = sockmesh__open_and_load();
	struct sw_plan o_old = { .old = true, .t5 = true, .t4_p7 = true },
		       o_new = { .t4_p7 = true }, o_back = { .t5 = true, .t4_p7 = true },
		       o_x = { .t5 = true, .t4_p7 = true, .n_x = 1 }, o_fin = { .t5 = true, .n_x = 1 };
	struct plan p_old = {}, p_new = {}, p_back = {}, p_x = {}, p_fin = {};
	struct apply_ctx a0 = {}, a = {}, af = {};
	struct dp_maps m, mf;
	struct sm_svc_key t5 = sweep_svc_key(15), x0 = sweep_svc_key(20), web = sweep_svc_key(10);
	struct sm_be_key p7 = sweep_be_key(7);
	struct sm_svc_val sv;
	bool back = false, delta = false, under = false;
	char *d1 = NULL, *d2 = NULL, *c1 = NULL, *c2 = NULL, *k1 = NULL, *k2 = NULL, err[256];
	size_t turns = 0, x_idx = SIZE_MAX;
	const uint64_t later = UINT64_MAX / 2;	/* every grace period is over */

	if (!ASSERT_TRUE(skel && fresh) || !ASSERT_TRUE(maps_of(skel, &m)) || !ASSERT_TRUE(maps_of(fresh, &mf)))
		goto out;
	if (!ASSERT_EQ(sweep_plan(&o_old, &p_old), 0) || !ASSERT_EQ(sweep_plan(&o_new, &p_new), 0) ||
	    !ASSERT_EQ(sweep_plan(&o_back, &p_back), 0) || !ASSERT_EQ(sweep_plan(&o_x, &p_x), 0) ||
	    !ASSERT_EQ(sweep_plan(&o_fin, &p_fin), 0))
		goto out;
	for (size_t i = 0; i < p_x.n_svcs; i++)
		if (!memcmp(&p_x.svcs[i].key, &x0, sizeof(x0)))
			x_idx = i;
	ASSERT_TRUE(x_idx != SIZE_MAX);

	/* the agent before the restart, and what a crash left */
	ASSERT_EQ(apply_init(&a0, &m, 0), 0);
	ASSERT_EQ(apply_plan(&a0, &p_old, err, sizeof(err)), 0);
	apply_fini(&a0);
	for (uint32_t i = 0; i < 40; i++)
		put_foreign(&m, i);

	/* the new agent adopts the maps */
	ASSERT_EQ(apply_init(&a, &m, 0), 0);
	a.sweep.slice = 1;
	ASSERT_EQ(apply_plan(&a, &p_new, err, sizeof(err)), 0);
	ASSERT_EQ(bpf_map_lookup_elem(m.svc, &web, &sv), 0);
	ASSERT_EQ(sv.flags & SM_SVC_F_L7, SM_SVC_F_L7);	/* web is an L7 port */
	ASSERT_TRUE(apply_sweep_pending(&a));
	while (apply_gc(&a, later)) {
		struct apply_sweep *sw = &a.sweep;

		if (!back && sw->at == SW_SVC && sw->doomed && key_is(&sw->key, &t5, sizeof(t5))) {
			ASSERT_EQ(apply_plan(&a, &p_back, err, sizeof(err)), 0);
			back = true;
		}
		if (!delta && sw->at == SW_CLUSTER) {
			ASSERT_EQ(apply_services(&a, &p_x, &x_idx, 1, NULL, 0, err, sizeof(err)), 0);
			delta = true;
		}
		if (!under && sw->at == SW_BACKEND && sw->has_key && key_is(&sw->key, &p7, sizeof(p7))) {
			struct sm_backend_val bv;

			ASSERT_FALSE(sw->doomed);
			ASSERT_EQ(apply_plan(&a, &p_fin, err, sizeof(err)), 0);
			ASSERT_NE(bpf_map_lookup_elem(m.backend, &p7, &bv), 0);	/* gone under the walk */
			under = true;
		}
		if (!ASSERT_LE(++turns, 100000))
			break;
	}
	ASSERT_TRUE(back);
	ASSERT_TRUE(delta);
	ASSERT_TRUE(under);
	ASSERT_FALSE(apply_sweep_pending(&a));
	ASSERT_GE(turns, 11 * 40);
	ASSERT_GE(a.sweep.deleted, 11 * 40);
	ASSERT_EQ(apply_gc(&a, later), false);

	/* what a fresh agent writes for the same plan */
	ASSERT_EQ(apply_init(&af, &mf, 0), 0);
	ASSERT_EQ(apply_plan(&af, &p_fin, err, sizeof(err)), 0);
	apply_gc(&af, later);
	d1 = dump(&m);
	d2 = dump(&mf);
	c1 = dump_clusters(&m, &p_fin);
	c2 = dump_clusters(&mf, &p_fin);
	k1 = sweep_counts(&m);
	k2 = sweep_counts(&mf);
	ASSERT_STREQ(d1, d2);
	ASSERT_STREQ(c1, c2);
	ASSERT_STREQ(k1, k2);
	ASSERT_STRSTR(d1, "s0: flags 1 ");	/* web: L7 */
	ASSERT_STRSTR(d1, "s1: flags 1 ");	/* rpc: L7 */
	ASSERT_STRSTR(d1, "s5: flags 0 ");	/* t5, back */
	ASSERT_STRSTR(d1, "x0: flags 0 ");	/* the delta's */
	ASSERT_STRSTR(k1, " svc_stats 0 ");	/* the kernel's own, for foreign keys */
	ASSERT_STRSTR(k1, " rr 0 ");
	ASSERT_STRSTR(k1, " be_stats 0 ");
out:
	apply_fini(&a);
	apply_fini(&af);
	plan_free(&p_old);
	plan_free(&p_new);
	plan_free(&p_back);
	plan_free(&p_x);
	plan_free(&p_fin);
	free(d1);
	free(d2);
	free(c1);
	free(c2);
	free(k1);
	free(k2);
	sockmesh__destroy(skel);
	sockmesh__destroy(fresh);
}

/*
 * An apply that fails mid-sweep forgets the tables (the maps then hold a
 * mix of both plans): the sweep stops rather than delete everything the
 * empty tables do not claim, the data path keeps serving, and the sweep
 * starts over once an apply succeeds. The failure is a real one: stale
 * entries fill sm_svc, so a delta's new Services do not fit.
 */
/*
 * A set (route table) a previous agent left that no cluster (service)
 * names any more keeps its id: a new agent's are numbered above it (a reused id would keep
 * the stale entries beyond the new list's end until the sweep came).
 */
TEST(apply_ids_above_adopted_sets_and_routes)
{
	struct sockmesh *skel = sockmesh__open_and_load();
	struct apply_ctx a = {};
	struct dp_maps m;

	if (!ASSERT_TRUE(skel) || !ASSERT_TRUE(maps_of(skel, &m)))
		goto out;
	for (uint32_t i = 0; i < 3; i++)
		put_foreign(&m, i);	/* sets 0x7fff0000..2, their clusters name set 0 */
	ASSERT_EQ(apply_init(&a, &m, 0), 0);
	ASSERT_GE(a.next_set_id, 0x7fff0003u);
	ASSERT_GE(a.next_route_id, 0x7fff0003u);	/* routes 0x7fff0000..2, no service names them */
	apply_fini(&a);
out:
	sockmesh__destroy(skel);
}

TEST(apply_sweep_stops_on_failed_apply)
{
	struct sockmesh *skel = sockmesh__open(), *fresh = sockmesh__open_and_load();
	struct sw_plan o_old = { .old = true, .t5 = true }, o_new = {}, o_x = { .n_x = 3 };
	struct plan p_old = {}, p_new = {}, p_x = {};
	struct apply_ctx a0 = {}, a = {}, af = {};
	struct dp_maps m, mf;
	size_t idx[3], n_idx = 0, turns = 0;
	char *before = NULL, *after = NULL, *d2 = NULL, *k1 = NULL, *k2 = NULL, err[256];
	const uint64_t later = UINT64_MAX / 2;

	if (!ASSERT_TRUE(skel && fresh) || !ASSERT_EQ(bpf_map__set_max_entries(skel->maps.sm_svc, 16), 0) ||
	    !ASSERT_EQ(sockmesh__load(skel), 0) || !ASSERT_TRUE(maps_of(skel, &m)) ||
	    !ASSERT_TRUE(maps_of(fresh, &mf)))
		goto out;
	if (!ASSERT_EQ(sweep_plan(&o_old, &p_old), 0) || !ASSERT_EQ(sweep_plan(&o_new, &p_new), 0) ||
	    !ASSERT_EQ(sweep_plan(&o_x, &p_x), 0))
		goto out;
	for (size_t i = 0; i < p_x.n_svcs; i++)
		if (ntohl(p_x.svcs[i].key.vip) >= 0x0a600914 && n_idx < 3)
			idx[n_idx++] = i;
	ASSERT_EQ(n_idx, 3);

	ASSERT_EQ(apply_init(&a0, &m, 0), 0);
	ASSERT_EQ(apply_plan(&a0, &p_old, err, sizeof(err)), 0);	/* 6 service ports */
	apply_fini(&a0);
	for (uint32_t i = 0; i < 10; i++)
		put_foreign(&m, i);					/* 16 of 16 */

	ASSERT_EQ(apply_init(&a, &m, 0), 0);
	a.sweep.slice = 1;
	ASSERT_EQ(apply_plan(&a, &p_new, err, sizeof(err)), 0);	/* t5 stale */
	ASSERT_TRUE(apply_gc(&a, later));			/* the walk is in sm_svc */
	ASSERT_EQ(a.sweep.at, SW_SVC);
	before = dump_served(&m);
	/* 5 applied + 3 new fit the 16 by the tables; stale ones fill it */
	ASSERT_NE(apply_services(&a, &p_x, idx, 3, NULL, 0, err, sizeof(err)), 0);
	ASSERT_STRSTR(err, "sm_svc");
	ASSERT_TRUE(apply_sweep_pending(&a));
	while (apply_gc(&a, later) && ++turns < 1000)
		;
	ASSERT_EQ(turns, 0);			/* stopped: nothing to claim against */
	after = dump_served(&m);
	/* what serves is as it was (x0..x2 may be half in: not compared) */
	ASSERT_STREQ(before, after);

	/* the next apply succeeds (the delta is withdrawn): the sweep runs again */
	ASSERT_EQ(apply_plan(&a, &p_new, err, sizeof(err)), 0);
	while (apply_gc(&a, later) && ++turns < 100000)
		;
	ASSERT_FALSE(apply_sweep_pending(&a));
	ASSERT_GE(a.sweep.deleted, 11 * 10);
	ASSERT_EQ(apply_init(&af, &mf, 0), 0);
	ASSERT_EQ(apply_plan(&af, &p_new, err, sizeof(err)), 0);
	apply_gc(&af, later);
	free(after);
	after = dump(&m);
	d2 = dump(&mf);
	k1 = sweep_counts(&m);
	k2 = sweep_counts(&mf);
	ASSERT_STREQ(after, d2);
	ASSERT_STREQ(k1, k2);
out:
	apply_fini(&a);
	apply_fini(&af);
	plan_free(&p_old);
	plan_free(&p_new);
	plan_free(&p_x);
	free(before);
	free(after);
	free(d2);
	free(k1);
	free(k2);
	sockmesh__destroy(skel);
	sockmesh__destroy(fresh);
}
