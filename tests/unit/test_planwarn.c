// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The planning's warnings across deltas: a plan_patch_services() leaves
 * set->diags (and its counts) saying what a full load (policy_validate,
 * plan_build from scratch) says, order aside, about the objects the change
 * did not touch too: a route destination's subset that a changed
 * DestinationRule now defines goes; one that two services say goes only
 * when neither does; a deleted Service's go with it. The delta is taken
 * as the agent takes it (reload.c): the changed documents' objects swapped,
 * the gone documents' diagnostics dropped, the cross-object checks' before
 * replaced by their after, then the re-plan; its undo puts set->diags back.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compile/plan.h"
#include "policy/policy.h"
#include "test.h"
#include "diag_text.h"

#define PW_WEB \
	"apiVersion: v1\n" \
	"kind: Service\n" \
	"metadata: {name: web, namespace: default}\n" \
	"spec: {clusterIP: 10.96.0.90, ports: [{name: tcp, port: 80}]}\n"

/* web2, version v (a label: the same entry, built again) */
static char *pw_web2(unsigned v)
{
	char *t;

	ASSERT_TRUE(asprintf(&t,
		"apiVersion: v1\n"
		"kind: Service\n"
		"metadata: {name: web2, namespace: default, labels: {v: \"%u\"}}\n"
		"spec: {clusterIP: 10.96.0.91, ports: [{name: tcp, port: 80}]}\n", v) > 0);
	return t;
}

/* web and web2 both send to web's subset v1: both say its warning */
#define PW_VS \
	"apiVersion: networking.istio.io/v1\n" \
	"kind: VirtualService\n" \
	"metadata: {name: web, namespace: default}\n" \
	"spec:\n" \
	"  hosts: [web, web2]\n" \
	"  tcp:\n" \
	"  - route: [{destination: {host: web, subset: v1}}]\n"

/* web's DestinationRule defining subset (NULL: none) */
static char *pw_dr(const char *subset)
{
	char *t;

	if (!subset)
		return strdup("");
	ASSERT_TRUE(asprintf(&t,
		"apiVersion: networking.istio.io/v1\n"
		"kind: DestinationRule\n"
		"metadata: {name: web, namespace: default}\n"
		"spec:\n"
		"  host: web\n"
		"  subsets:\n"
		"  - name: %s\n"
		"    labels: {version: %s}\n", subset, subset) > 0);
	return t;
}

/*
 * Another namespace's DestinationRule for web defines v1 (validation is
 * content: some rule defines it), but Istio applies web's own namespace's
 * when there is one (plan_find_dr): the plan's warning is the only one.
 */
#define PW_DR_OTHER \
	"apiVersion: networking.istio.io/v1\n" \
	"kind: DestinationRule\n" \
	"metadata: {name: web-all, namespace: other}\n" \
	"spec:\n" \
	"  host: web.default.svc.cluster.local\n" \
	"  subsets:\n" \
	"  - name: v1\n" \
	"    labels: {version: v1}\n"

/* web2's own: a warning only web2's build says */
#define PW_DR_WEB2 \
	"apiVersion: networking.istio.io/v1\n" \
	"kind: DestinationRule\n" \
	"metadata: {name: web2, namespace: default}\n" \
	"spec:\n" \
	"  host: web2\n" \
	"  trafficPolicy:\n" \
	"    loadBalancer: {consistentHash: {httpHeaderName: x-user}}\n"

#define PW_FILES 6
static const char *const pw_names[PW_FILES] = {
	"pol/web.yaml", "pol/web2.yaml", "pol/vs.yaml", "pol/dr.yaml", "pol/a-dr-other.yaml",
	"pol/dr-web2.yaml",
};

/* What a full load of these files (empty: absent) says. */
static char *pw_full(char *const *text)
{
	struct pol_set s;
	struct plan p;
	char *t;

	policy_set_init(&s);
	for (size_t i = PW_FILES; i-- > 0;)	/* the other namespace's rule first */
		if (text[i][0])
			policy_load_buffer(&s, pw_names[i], text[i], strlen(text[i]));
	ASSERT_EQ(policy_validate(&s), 0);
	ASSERT_EQ(plan_build(&s, &p), 0);
	t = diag_text(&s);
	plan_free(&p);
	policy_set_free(&s);
	return t;
}

/* What the cross-object checks the change can change say now, into *out. */
static void pw_checks(struct pol_set *set, const char *const *ns, const char *const *names,
		      size_t n, struct pol_diag **out, size_t *n_out)
{
	struct pol_set keep = *set;

	set->diags = NULL;
	set->n_diags = set->n_errors = set->n_warnings = 0;
	policy_validate_change(set, ns, names, n, true);
	*out = set->diags;
	*n_out = set->n_diags;
	set->diags = keep.diags;
	set->n_diags = keep.n_diags;
	set->n_errors = keep.n_errors;
	set->n_warnings = keep.n_warnings;
}

static void pw_count(struct pol_set *set, const struct pol_diag *d, int sign)
{
	if (d->level == POL_DIAG_ERROR)
		set->n_errors += (size_t)sign;
	else if (d->level == POL_DIAG_WARNING)
		set->n_warnings += (size_t)sign;
}

static const struct pol_meta *pw_obj(const struct pol_set *doc, const char **kind)
{
	*kind = policy_set_single_kind(doc);
	ASSERT_TRUE(*kind != NULL);
	if (!*kind)
		return NULL;
	if (!strcmp(*kind, "VirtualService"))
		return &doc->vss[0].meta;
	if (!strcmp(*kind, "DestinationRule"))
		return &doc->drs[0].meta;
	ASSERT_STREQ(*kind, "Service");
	return &doc->svcs[0].meta;
}

static int pw_put(struct pol_set *set, const char *kind, const void *obj, bool del)
{
	if (!strcmp(kind, "VirtualService"))
		return del ? policy_set_del_vs(set, obj) : policy_set_add_vs(set, obj);
	if (!strcmp(kind, "DestinationRule"))
		return del ? policy_set_del_dr(set, obj) : policy_set_add_dr(set, obj);
	return del ? policy_set_del_svc(set, obj) : policy_set_add_svc(set, obj);
}

/* Swap the delta's objects in, its checks' before replaced by their after. */
static void pw_take(struct pol_set *set, const struct pol_delta *d, const char *const *ns,
		    const char *const *names, size_t n)
{
	struct pol_diag *before, *after;
	size_t n_before, n_after;
	const struct pol_meta *m;
	const char *kind;

	pw_checks(set, ns, names, n, &before, &n_before);
	for (size_t i = 0; i < d->n_gone; i++)
		if ((m = pw_obj(d->gone[i], &kind)))
			ASSERT_EQ(pw_put(set, kind, m, true), 0);
	for (size_t i = 0; i < d->n_added; i++)
		if ((m = pw_obj(d->added[i], &kind)))
			ASSERT_EQ(pw_put(set, kind, m, false), 0);
	pw_checks(set, ns, names, n, &after, &n_after);
	for (size_t i = 0; i < n_before; i++)
		for (size_t k = 0; k < set->n_diags; k++)
			if (set->diags[k].level == before[i].level &&
			    set->diags[k].loc.line == before[i].loc.line &&
			    set->diags[k].loc.col == before[i].loc.col &&
			    !strcmp(set->diags[k].loc.file ?: "", before[i].loc.file ?: "") &&
			    !strcmp(set->diags[k].msg, before[i].msg)) {
				pw_count(set, &set->diags[k], -1);
				memmove(&set->diags[k], &set->diags[k + 1],
					(set->n_diags - k - 1) * sizeof(*set->diags));
				set->n_diags--;
				break;
			}
	for (size_t i = 0; i < d->n_gone; i++)
		if ((m = pw_obj(d->gone[i], &kind)))
			policy_set_drop_doc_diags(set, d->gone[i], m->loc.file);
	set->diags = realloc(set->diags, (set->n_diags + n_after + 1) * sizeof(*set->diags));
	ASSERT_TRUE(set->diags != NULL);
	for (size_t i = 0; i < n_after; i++) {
		set->diags[set->n_diags++] = after[i];
		pw_count(set, &after[i], 1);
	}
	for (size_t i = 0; i < d->n_added; i++)
		ASSERT_EQ(policy_set_add_doc_diags(set, d->added[i]), 0);
	free(before);
	free(after);
}

/*
 * Each step changes one file and names the Services it feeds (as
 * reload_delta_services finds them); the set's diagnostics after the
 * re-plan must be the full load's, and after an undo of the re-plan what
 * they were before it.
 */
TEST(plan_warnings_delta_equals_full_load)
{
	static const struct {
		unsigned file;		/* 1 web2, 3 web's DestinationRule */
		const char *dr;		/* file 3: the subset it defines */
		int v;			/* files 0, 1: version, -1 gone */
		const char *svc;	/* the Service the change feeds */
		const char *want, *not;	/* in the diagnostics, not in them */
	} steps[] = {
		/* web's DestinationRule changed to define v1: the route's warning goes */
		{ 3, "v1", 0, "web", NULL, "subset \"v1\"" },
		/* back to v2 only: it comes back */
		{ 3, "v2", 0, "web", "subset \"v1\"", NULL },
		/* deleted: the other namespace's applies, which defines v1 */
		{ 3, NULL, 0, "web", NULL, "subset \"v1\"" },
		/* added again (v2 only) */
		{ 3, "v2", 0, "web", "subset \"v1\"", NULL },
		/* web2 (one of the two that say it) re-planned alone */
		{ 1, NULL, 1, "web2", "consistentHash", NULL },
		/* web2 deleted: web still says the subset's; web2's own goes */
		{ 1, NULL, -1, "web2", "subset \"v1\"", "consistentHash" },
		/* defined: it goes (web alone said it) */
		{ 3, "v1", 0, "web", NULL, "subset \"v1\"" },
		{ 3, "v2", 0, "web", "subset \"v1\"", NULL },
		/* web2 back: both say it, and its own */
		{ 1, NULL, 2, "web2", "consistentHash", NULL },
		{ 3, "v1", 0, "web", "consistentHash", "subset \"v1\"" },
	};
	static const char *const ns[] = { "default" };
	struct pol_cache *c = policy_cache_new();
	char *text[PW_FILES] = { strdup(PW_WEB), pw_web2(0), strdup(PW_VS), pw_dr("v2"),
				 strdup(PW_DR_OTHER), strdup(PW_DR_WEB2) };
	struct pol_set set;
	struct plan plan;
	char *a, *b;

	ASSERT_TRUE(c != NULL);
	policy_cache_begin(c);
	policy_set_init(&set);
	policy_set_use_cache(&set, c);
	for (size_t i = PW_FILES; i-- > 0;)
		if (text[i][0])
			ASSERT_EQ(policy_load_buffer(&set, pw_names[i], text[i], strlen(text[i])), 0);
	ASSERT_EQ(policy_validate(&set), 0);
	ASSERT_EQ(plan_build(&set, &plan), 0);
	policy_cache_end(c);
	a = diag_text(&set);
	b = pw_full(text);
	ASSERT_STREQ(a, b);
	ASSERT_STRSTR(a, "subset \"v1\" of web.default.svc.cluster.local is not defined");
	ASSERT_STRSTR(a, "consistentHash.httpHeaderName");
	free(a);
	free(b);
	for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]) && !test__failed; s++) {
		unsigned f = steps[s].file;
		const char *names[] = { steps[s].svc };
		struct pol_delta d = {};
		struct plan_patch pt;
		char *pre;
		int ret;

		free(text[f]);
		text[f] = f == 3 ? pw_dr(steps[s].dr) :
			  steps[s].v < 0 ? strdup("") :
			  f == 1 ? pw_web2((unsigned)steps[s].v) : strdup(PW_WEB);
		ret = policy_cache_delta(c, pw_names[f], text[f], strlen(text[f]), &d);
		ASSERT_TRUE(ret == 0 || ret == -ENOENT);
		if (ret == -ENOENT)	/* the file came back */
			ASSERT_EQ(policy_cache_delta_new(c, pw_names[f], text[f], strlen(text[f]),
							 &d), 0);
		pw_take(&set, &d, ns, names, 1);
		pre = diag_text(&set);
		ASSERT_EQ(plan_patch_services(&set, &plan, ns, names, 1, &pt), 0);
		/* not taken: set->diags as the patch found them */
		plan_patch_undo(&plan, &pt);
		a = diag_text(&set);
		if (!ASSERT_STREQ(a, pre))
			fprintf(stderr, "  step %zu: undo\n", s);
		free(a);
		ASSERT_EQ(plan_patch_services(&set, &plan, ns, names, 1, &pt), 0);
		plan_patch_free(&pt);
		a = diag_text(&set);
		b = pw_full(text);
		if (!ASSERT_STREQ(a, b))
			fprintf(stderr, "  step %zu\n", s);
		if (steps[s].want)
			ASSERT_STRSTR(a, steps[s].want);
		if (steps[s].not && strstr(a, steps[s].not))
			TEST_FAIL_("step %zu: \"%s\" stayed", s, steps[s].not);
		policy_delta_commit(c, &d);
		free(a);
		free(b);
		free(pre);
	}
	for (size_t i = 0; i < PW_FILES; i++)
		free(text[i]);
	plan_free(&plan);
	policy_set_free(&set);
	policy_cache_free(c);
}
