// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Pod deltas: the services a Pod feeds from the index of the slices'
 * endpoints (policy_pod_services) must be those a scan of every endpoint
 * and Service finds, over random slices that come, go and change; and the
 * plan's pod entries a delta patches (plan_pods_patch: this node's pods,
 * the redirect's opt-outs) with the services it re-plans must give the
 * plan a full plan_build + plan_mark_local of the changed policy gives.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "compile/compile.h"
#include "compile/plan.h"
#include "policy/policy.h"
#include "test.h"
#include "test_plan_text.h"

static uint32_t pd_rand(uint32_t *x)
{
	*x = *x * 1103515245u + 12345u;
	return *x >> 8;
}

/* ---- the oracle: every slice's endpoints, every Service (as before the index) ---- */

static bool pd_eps_has_pod(const struct pol_eps *e, const struct pol_pod *p)
{
	bool same_ns = !strcmp(e->meta.ns, p->meta.ns);

	for (size_t i = 0; i < e->n_endpoints; i++) {
		const struct pol_endpoint *en = &e->endpoints[i];

		if (same_ns && en->target_pod && !strcmp(en->target_pod, p->meta.name))
			return true;
		for (size_t a = 0; p->ip && a < en->n_addrs; a++)
			if (en->addrs[a] == p->ip)
				return true;
	}
	return false;
}

struct pd_names {
	char *v[64];
	size_t n;
};

static int pd_note(void *arg, const char *ns, const char *name)
{
	struct pd_names *sn = arg;
	char *s = NULL;

	ASSERT_TRUE(asprintf(&s, "%s/%s", ns, name) > 0);
	for (size_t k = 0; k < sn->n; k++)
		if (!strcmp(sn->v[k], s)) {
			free(s);
			return 0;
		}
	if (!ASSERT_TRUE(sn->n < 64)) {
		free(s);
		return -ENOSPC;
	}
	sn->v[sn->n++] = s;
	return 0;
}

static void pd_scan(const struct pol_set *set, const struct pol_pod *p, struct pd_names *sn)
{
	size_t n_slices;

	for (size_t k = 0; k < set->n_eps; k++)
		if (set->eps[k].service_name && pd_eps_has_pod(&set->eps[k], p))
			pd_note(sn, set->eps[k].meta.ns, set->eps[k].service_name);
	for (size_t k = 0; p->ip && k < set->n_svcs; k++) {
		const struct pol_service *svc = &set->svcs[k];

		if (!svc->has_selector || !svc->selector.n || strcmp(svc->meta.ns, p->meta.ns) ||
		    !policy_labels_match(&svc->selector, &p->meta.labels))
			continue;
		policy_index_slices(set, svc->meta.ns, svc->meta.name, &n_slices);
		if (!n_slices)
			pd_note(sn, svc->meta.ns, svc->meta.name);
	}
}

static int pd_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names, sorted, as one line (and freed). */
static char *pd_line(struct pd_names *sn)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	qsort(sn->v, sn->n, sizeof(*sn->v), pd_cmp);
	for (size_t k = 0; k < sn->n; k++) {
		fprintf(f, " %s", sn->v[k]);
		free(sn->v[k]);
	}
	sn->n = 0;
	fclose(f);
	return buf;
}

/* ---- a random policy: services, their slices (one file each), pods ---- */

#define PD_SVCS 6
#define PD_PODS 10

static const char *pd_ns(unsigned i)
{
	return i % 3 == 2 ? "other" : "default";
}

static char *pd_services(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	for (unsigned i = 0; i < PD_SVCS; i++)
		fprintf(f, "%sapiVersion: v1\nkind: Service\nmetadata: {name: s%u, namespace: %s}\n"
			"spec: {clusterIP: 10.96.2.%u, %sports: [{name: tcp, port: 80, targetPort: 9000}]}\n",
			i ? "---\n" : "", i, pd_ns(i), i + 1,
			i % 2 ? "" : i % 4 ? "selector: {app: a1}, " : "selector: {app: a0}, ");
	fclose(f);
	return buf;
}

/* Service i's slice j (file pol/eps-i-j.yaml) in variant v: "" when absent. */
static char *pd_slice(unsigned i, unsigned j, unsigned v)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	if (!v)
		return strdup("");
	f = open_memstream(&buf, &len);
	fprintf(f, "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
		"metadata: {name: s%u-%u, namespace: %s, labels: {kubernetes.io/service-name: s%u}}\n"
		"addressType: IPv4\nports: [{name: tcp, port: 9000}]\nendpoints:\n", i, j, pd_ns(i), i);
	/* 1-3 endpoints: an address of a small pool (pods share them), a targetRef or not */
	for (unsigned e = 0; e <= v % 3; e++) {
		unsigned a = (v * 7 + e * 5 + i) % 12, t = (v / 3 + e * 3 + j) % (PD_PODS + 3);

		fprintf(f, "- addresses: [10.244.0.%u]\n", a + 1);
		if (t < PD_PODS)
			fprintf(f, "  targetRef: {kind: Pod, name: p%u, namespace: %s}\n", t, pd_ns(i));
	}
	fclose(f);
	return buf;
}

/*
 * Pod k in variant v ("" when absent: v 0): its address (a pool shared
 * with the slices), labels (a Service's selector), namespace, node
 * (node-1 is this one), hostNetwork, readiness, and the redirect opt-out
 * as an annotation or a label.
 */
static char *pd_pod(unsigned k, unsigned v)
{
	static const char *const node[] = { "node-1", "node-2", NULL };
	char *s = NULL;

	if (!v)
		return strdup("");
	ASSERT_TRUE(asprintf(&s, "apiVersion: v1\nkind: Pod\n"
		"metadata: {name: p%u, namespace: %s, uid: 0000000%u-0000-4000-8000-000000000000, "
		"labels: {app: a%u%s}%s}\n"
		"spec: {%s%s%s%s}\n"
		"status: {podIP: 10.244.0.%u, conditions: [{type: Ready, status: \"%s\"}]}\n",
		k, v % 5 == 4 ? "other" : "default", k, v % 3,
		v % 7 == 1 ? ", sockmesh.io/redirect: \"false\"" : "",
		v % 7 == 3 ? ", annotations: {sockmesh.io/redirect: \"false\"}" : "",
		node[v % 3] ? "nodeName: " : "", node[v % 3] ?: "",
		node[v % 3] && v % 11 == 5 ? ", " : "", v % 11 == 5 ? "hostNetwork: true" : "",
		(v * 3 + k) % 12 + 1, v % 4 == 2 ? "False" : "True") > 0);
	return s;
}

struct pd_state {
	unsigned eps[PD_SVCS][2];
	unsigned pod[PD_PODS];
};

static void pd_file(unsigned f, char *name, size_t len)
{
	if (f < PD_SVCS * 2)
		snprintf(name, len, "pol/eps-%u-%u.yaml", f / 2, f % 2);
	else
		snprintf(name, len, "pol/pod-%u.yaml", f - PD_SVCS * 2);
}

static char *pd_text(const struct pd_state *st, unsigned f)
{
	return f < PD_SVCS * 2 ? pd_slice(f / 2, f % 2, st->eps[f / 2][f % 2]) :
				 pd_pod(f - PD_SVCS * 2, st->pod[f - PD_SVCS * 2]);
}

#define PD_FILES (PD_SVCS * 2 + PD_PODS)

static void pd_load(struct pol_set *s, const struct pd_state *st)
{
	char *svcs = pd_services(), name[64];

	ASSERT_EQ(policy_load_buffer(s, "pol/a-services.yaml", svcs, strlen(svcs)), 0);
	free(svcs);
	for (unsigned f = 0; f < PD_FILES; f++) {
		char *t = pd_text(st, f);

		pd_file(f, name, sizeof(name));
		if (*t)
			ASSERT_EQ(policy_load_buffer(s, name, t, strlen(t)), 0);
		free(t);
	}
	if (policy_validate(s)) {
		char line[512];

		for (size_t i = 0; i < s->n_diags; i++)
			TEST_FAIL_("%s", policy_diag_format(&s->diags[i], line, sizeof(line)));
	}
}

/* The one object of a delta's document, of the kind asked. */
static const void *pd_obj(const struct pol_set *doc, bool pod)
{
	return pod ? (const void *)&doc->pods[0] : (const void *)&doc->eps[0];
}

/* Every pod of the set and every variant of each pod: index == scan. */
static void pd_check_services(const struct pol_set *set)
{
	struct pd_names a = {}, b = {};

	for (size_t k = 0; k < set->n_pods; k++) {
		char *x, *y;

		ASSERT_EQ(policy_pod_services(set, &set->pods[k], true, pd_note, &a), 0);
		pd_scan(set, &set->pods[k], &b);
		x = pd_line(&a);
		y = pd_line(&b);
		if (strcmp(x, y))
			TEST_FAIL_("pod %s/%s: index%s, scan%s", set->pods[k].meta.ns,
				   set->pods[k].meta.name, x, y);
		free(x);
		free(y);
	}
}

static char *pd_full_text(const struct pd_state *st, const char *node)
{
	struct pol_set s;
	struct plan p;
	char *t;

	policy_set_init(&s);
	pd_load(&s, st);
	ASSERT_EQ(plan_build(&s, &p), 0);
	ASSERT_EQ(plan_mark_local(&s, &p, node), 0);
	t = plan_text(&p);
	plan_free(&p);
	policy_set_free(&s);
	return t;
}

/*
 * Random churn of slices (come, go, other endpoints) and pods (come, go,
 * relabelled, readiness, moved to another address, node, namespace,
 * hostNetwork, the redirect opt-out), each change as the agent takes it:
 * the object out and in (or swapped), then
 *  - the services policy_pod_services names equal the scan's for every
 *    pod of the set (the index built at the first question and kept by
 *    the swaps, additions and removals of slices);
 *  - the plan after plan_patch_services of the services the changed pod
 *    feeds and plan_pods_patch of its addresses with flags is a full
 *    plan's (backends, their pods, sm_pod entries of this node's pods
 *    and the opt-outs).
 */
TEST(pod_delta_index_and_patch_equal_scan_and_full_plan)
{
	const char *node = "node-1";
	struct pd_state st = {};
	struct pol_cache *c = policy_cache_new();
	struct pol_set set;
	struct plan plan;
	uint32_t x = 4242;

	ASSERT_TRUE(c != NULL);
	for (unsigned i = 0; i < PD_SVCS; i++)
		st.eps[i][0] = i % 3 ? i + 1 : 0;	/* some services by selector */
	for (unsigned k = 0; k < PD_PODS; k++)
		st.pod[k] = k % 4 ? k * 3 + 1 : 0;
	policy_cache_begin(c);
	policy_set_init(&set);
	policy_set_use_cache(&set, c);
	pd_load(&set, &st);
	ASSERT_EQ(plan_build(&set, &plan), 0);
	ASSERT_EQ(plan_mark_local(&set, &plan, node), 0);
	policy_cache_end(c);
	pd_check_services(&set);	/* (builds the index's table of endpoints) */

	for (int step = 0; step < 400; step++) {
		unsigned f = pd_rand(&x) % PD_FILES, v = pd_rand(&x) % 24;
		bool pod = f >= PD_SVCS * 2;
		struct pd_names sn = {};
		struct pol_delta d = {};
		struct plan_patch pt;
		const void *from = NULL, *to = NULL;
		const char *ns[64], *names[64];
		char name[64], *text, *got, *want;
		int ret;

		if (!pod && v >= 16)
			v = 0;	/* slices: absent more often */
		if (pod)
			st.pod[f - PD_SVCS * 2] = v;
		else
			st.eps[f / 2][f % 2] = v;
		text = pd_text(&st, f);
		pd_file(f, name, sizeof(name));
		ret = policy_cache_delta(c, name, text, strlen(text), &d);
		if (ret == -ENOENT && *text)
			ret = policy_cache_delta_new(c, name, text, strlen(text), &d);
		free(text);
		if (ret == -ENOENT) {
			policy_delta_free(c, &d);	/* absent before and after */
			continue;
		}
		ASSERT_EQ(ret, 0);
		if (d.n_gone)
			from = pd_obj(d.gone[0], pod);
		if (d.n_added)
			to = pd_obj(d.added[0], pod);
		if (!from && !to) {
			policy_delta_free(c, &d);
			continue;
		}
		if (pod) {
			const struct pol_pod *pf = from, *pt_ = to;
			bool ready = pf && pt_ && policy_pod_same_but_ready(pf, pt_);

			if (pf)
				ASSERT_EQ(policy_pod_services(&set, pf, !ready, pd_note, &sn), 0);
			if (ready) {
				ASSERT_EQ(policy_set_swap_pod(&set, pf, pt_), 0);
			} else {
				if (pf)
					ASSERT_EQ(policy_set_del_pod(&set, pf), 0);
				if (pt_) {
					ASSERT_EQ(policy_set_add_pod(&set, pt_), 0);
					ASSERT_EQ(policy_pod_services(&set, pt_, true, pd_note, &sn), 0);
				}
				/* sm_pod: the addresses of versions with flags */
				if (pf && plan_pod_flags(pf, node))
					ASSERT_EQ(plan_pods_patch(&set, &plan, node, pf->ip), 0);
				if (pt_ && plan_pod_flags(pt_, node))
					ASSERT_EQ(plan_pods_patch(&set, &plan, node, pt_->ip), 0);
			}
		} else {
			const struct pol_eps *ef = from, *et = to;

			if (ef)
				pd_note(&sn, ef->meta.ns, ef->service_name);
			if (et)
				pd_note(&sn, et->meta.ns, et->service_name);
			if (ef && et)
				ASSERT_EQ(policy_set_swap_eps(&set, ef, et), 0);
			else if (ef)
				ASSERT_EQ(policy_set_del_eps(&set, ef), 0);
			else
				ASSERT_EQ(policy_set_add_eps(&set, et), 0);
		}
		policy_delta_commit(c, &d);
		pd_check_services(&set);
		for (size_t k = 0; k < sn.n; k++) {
			char *slash = strchr(sn.v[k], '/');

			*slash = '\0';
			ns[k] = sn.v[k];
			names[k] = slash + 1;
		}
		ASSERT_EQ(plan_patch_services(&set, &plan, ns, names, sn.n, &pt), 0);
		plan_patch_free(&pt);
		for (size_t k = 0; k < sn.n; k++)
			free(sn.v[k]);
		got = plan_text(&plan);
		want = pd_full_text(&st, node);
		if (strcmp(got, want))
			TEST_FAIL_("step %d (%s): patched\n%s\nfull\n%s", step, name, got, want);
		free(got);
		free(want);
	}
	plan_free(&plan);
	policy_set_free(&set);
	policy_cache_free(c);
}

TEST(plan_pods_patch_needs_the_index)
{
	struct pol_set s;
	struct plan p = {};

	policy_set_init(&s);
	ASSERT_EQ(plan_pods_patch(&s, &p, "node-1", htonl(0x0af40001)), -EINVAL);
	policy_set_free(&s);
}
