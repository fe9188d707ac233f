// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Deltas of objects whose documents carry diagnostics of their own
 * (parse-time warnings: an Istio field sockmesh does not implement, a
 * Gateway's TLS server): the document is still one object a delta takes
 * (policy_set_single_kind), and taking it as the agent does (reload.c:
 * the gone documents' diagnostics dropped, policy_set_drop_doc_diags; the
 * new ones' added, policy_set_add_doc_diags) leaves the set saying exactly
 * what a full load of the same files says, order aside, counts included.
 * Files (YAML, lines and columns) and the API server's objects (JSON
 * trees: no line) both. A document with an error is not a delta.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"
#include "test.h"
#include "diag_text.h"

#define DD_SVC \
	"apiVersion: v1\n" \
	"kind: Service\n" \
	"metadata: {name: web, namespace: default}\n" \
	"spec: {clusterIP: 10.96.0.90, ports: [{name: http, port: 80}]}\n"

/*
 * web's VirtualService: version v (an odd one a line longer: its warning
 * moves); delegate: its second route is a delegate (a warning), else a
 * route of as many lines
 */
static char *dd_vs(unsigned v, bool delegate)
{
	char *t;

	ASSERT_TRUE(asprintf(&t,
		"%s# version %u\n"
		"apiVersion: networking.istio.io/v1\n"
		"kind: VirtualService\n"
		"metadata: {name: web, namespace: default}\n"
		"spec:\n"
		"  hosts: [web]\n"
		"  http:\n"
		"  - match: [{uri: {prefix: /v%u}}]\n"
		"    route: [{destination: {host: web}}]\n"
		"%s"
		"  - route: [{destination: {host: web}}]\n", v % 2 ? "# odd\n" : "", v, v,
		delegate ? "  - match: [{uri: {prefix: /d}}]\n"
			   "    delegate: {name: reviews, namespace: default}\n" :
			   "  - match: [{uri: {prefix: /d}}]\n"
			   "    route: [{destination: {host: web}}]\n") > 0);
	return t;
}

/* A Gateway with an HTTPS server (tls: a warning) or a plain HTTP one. */
#define DD_GW \
	"apiVersion: networking.istio.io/v1\n" \
	"kind: Gateway\n" \
	"metadata: {name: gw, namespace: default}\n" \
	"spec:\n" \
	"  selector: {istio: ingressgateway}\n" \
	"  servers:\n"

static const char *dd_gw(bool https)
{
	return https ?
		DD_GW
		"  - port: {number: 443, name: https, protocol: HTTPS}\n"
		"    hosts: ['*']\n"
		"    tls: {mode: SIMPLE, credentialName: web-cert}\n" :
		DD_GW
		"  - port: {number: 80, name: http, protocol: HTTP}\n"
		"    hosts: ['*']\n";
}

/* The one object of a delta's document (each kind starts with its pol_meta). */
static const void *dd_obj(const struct pol_set *doc, const char **kind)
{
	*kind = policy_set_single_kind(doc);
	ASSERT_TRUE(*kind != NULL);
	if (!*kind)
		return NULL;
	if (!strcmp(*kind, "VirtualService"))
		return &doc->vss[0];
	if (!strcmp(*kind, "Gateway"))
		return &doc->gws[0];
	ASSERT_STREQ(*kind, "Service");
	return &doc->svcs[0];
}

/* Add (or delete) a delta's object of this kind to the set. */
static int dd_put(struct pol_set *set, const char *kind, const void *obj, bool del)
{
	if (!strcmp(kind, "VirtualService"))
		return del ? policy_set_del_vs(set, obj) : policy_set_add_vs(set, obj);
	if (!strcmp(kind, "Gateway"))
		return del ? policy_set_del_gw(set, obj) : policy_set_add_gw(set, obj);
	return del ? policy_set_del_svc(set, obj) : policy_set_add_svc(set, obj);
}

/*
 * Take the delta as the agent does: each gone object out with the
 * diagnostics inside its document, each new one in with its document's.
 */
static void dd_take(struct pol_set *set, const struct pol_delta *d)
{
	const struct pol_meta *m;
	const char *kind;

	for (size_t i = 0; i < d->n_gone; i++)
		if ((m = dd_obj(d->gone[i], &kind))) {
			ASSERT_EQ(dd_put(set, kind, m, true), 0);
			policy_set_drop_doc_diags(set, d->gone[i], m->loc.file);
		}
	for (size_t i = 0; i < d->n_added; i++)
		if ((m = dd_obj(d->added[i], &kind))) {
			ASSERT_EQ(dd_put(set, kind, m, false), 0);
			ASSERT_EQ(policy_set_add_doc_diags(set, d->added[i]), 0);
		}
}

/* What a full load of these files (name, text; NULL text: absent) says. */
static char *dd_full(const char *const *files, size_t n)
{
	struct pol_set s;
	size_t n_diags;
	char *t;

	policy_set_init(&s);
	for (size_t i = 0; i < n; i += 2)
		if (files[i + 1] && files[i + 1][0])
			policy_load_buffer(&s, files[i], files[i + 1], strlen(files[i + 1]));
	n_diags = s.n_diags;
	ASSERT_EQ(policy_validate(&s), 0);
	/* (the delta below takes no cross-object checks: none to take) */
	ASSERT_EQ(s.n_diags, n_diags);
	t = diag_text(&s);
	policy_set_free(&s);
	return t;
}

TEST(doc_warnings_delta_equals_full_load)
{
	/* each step: the VirtualService's version and warning, the Gateway's */
	static const struct { unsigned v; bool delegate, https, vs_gone; } steps[] = {
		{ 1, true, true, false },	/* the warning moves a line down */
		{ 2, true, true, false },	/* and back up */
		{ 2, false, true, false },	/* fixed: its warning goes */
		{ 3, true, false, false },	/* back; the Gateway's goes */
		{ 3, true, false, true },	/* deleted: its warning goes */
		{ 4, true, true, false },	/* new with a warning; the Gateway's comes back */
		{ 4, true, true, true },
	};
	struct pol_cache *c = policy_cache_new();
	char *vs = dd_vs(0, true), *a, *b;
	struct pol_set set;

	ASSERT_TRUE(c != NULL);
	policy_cache_begin(c);
	policy_set_init(&set);
	policy_set_use_cache(&set, c);
	ASSERT_EQ(policy_load_buffer(&set, "pol/svc.yaml", DD_SVC, strlen(DD_SVC)), 0);
	ASSERT_EQ(policy_load_buffer(&set, "pol/vs.yaml", vs, strlen(vs)), 0);
	ASSERT_EQ(policy_load_buffer(&set, "pol/gw.yaml", dd_gw(true), strlen(dd_gw(true))), 0);
	ASSERT_EQ(policy_validate(&set), 0);
	policy_cache_end(c);
	ASSERT_EQ(set.n_warnings, 2);
	free(vs);
	for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
		const char *gw = dd_gw(steps[s].https);
		char *nvs = steps[s].vs_gone ? strdup("") : dd_vs(steps[s].v, steps[s].delegate);
		const char *files[] = { "pol/svc.yaml", DD_SVC, "pol/vs.yaml", nvs,
					"pol/gw.yaml", gw };
		struct pol_delta d = {};
		int ret;

		ret = policy_cache_delta(c, "pol/vs.yaml", nvs, strlen(nvs), &d);
		ASSERT_TRUE(ret == 0 || ret == -ENOENT);
		if (ret == -ENOENT)	/* the file came back */
			ASSERT_EQ(policy_cache_delta_new(c, "pol/vs.yaml", nvs, strlen(nvs), &d), 0);
		ASSERT_EQ(policy_cache_delta(c, "pol/gw.yaml", gw, strlen(gw), &d), 0);
		dd_take(&set, &d);
		a = diag_text(&set);
		b = dd_full(files, sizeof(files) / sizeof(files[0]));
		if (!ASSERT_STREQ(a, b))
			fprintf(stderr, "  step %zu\n", s);
		ASSERT_STRSTR(a, steps[s].vs_gone || !steps[s].delegate ? "0 errors" : "delegate");
		ASSERT_TRUE(!!strstr(a, "tls") == steps[s].https);
		policy_delta_commit(c, &d);
		free(a);
		free(b);
		free(nvs);
	}
	policy_set_free(&set);
	policy_cache_free(c);
}

/*
 * The API server's objects: one JSON document each, its identity as the
 * file, diagnostics without a line: the gone version's go all the same.
 */
TEST(doc_warnings_delta_of_json_objects)
{
	static const char *const vs[] = {
		"{\"apiVersion\": \"networking.istio.io/v1\", \"kind\": \"VirtualService\", "
		"\"metadata\": {\"name\": \"web\", \"namespace\": \"default\"}, \"spec\": "
		"{\"hosts\": [\"web\"], \"http\": [{\"delegate\": {\"name\": \"r\"}}]}}",
		"{\"apiVersion\": \"networking.istio.io/v1\", \"kind\": \"VirtualService\", "
		"\"metadata\": {\"name\": \"web\", \"namespace\": \"default\"}, \"spec\": "
		"{\"hosts\": [\"web\"], \"http\": [{\"route\": [{\"destination\": {\"host\": \"web\"}}]}]}}",
	};
	const char *name = "VirtualService default/web";
	struct pol_cache *c = policy_cache_new();
	struct pol_doc *pd[2];
	struct pol_delta d = {};
	struct pol_set set;

	ASSERT_TRUE(c != NULL);
	for (int i = 0; i < 2; i++) {
		json_t *root = json_loads(vs[i], 0, NULL);

		ASSERT_TRUE(root != NULL);
		pd[i] = policy_doc_parse_json(name, vs[i], strlen(vs[i]), root);
		ASSERT_TRUE(pd[i] != NULL);
		json_decref(root);
	}
	policy_cache_begin(c);
	policy_set_init(&set);
	policy_set_use_cache(&set, c);
	ASSERT_EQ(policy_load_buffer(&set, "Service default/web", DD_SVC, strlen(DD_SVC)), 0);
	policy_cache_offer(c, pd[0]);
	ASSERT_EQ(policy_load_buffer(&set, name, vs[0], strlen(vs[0])), 0);
	policy_cache_offers_clear(c);
	ASSERT_EQ(policy_validate(&set), 0);
	policy_cache_end(c);
	ASSERT_EQ(set.n_warnings, 1);
	ASSERT_EQ(set.diags[0].loc.line, 0);	/* from a tree: no line */

	policy_cache_offer(c, pd[1]);
	ASSERT_EQ(policy_cache_delta(c, name, vs[1], strlen(vs[1]), &d), 0);
	policy_cache_offers_clear(c);
	ASSERT_EQ(d.n_gone, 1);
	ASSERT_EQ(d.n_added, 1);
	dd_take(&set, &d);
	ASSERT_EQ(set.n_diags, 0);
	ASSERT_EQ(set.n_warnings, 0);
	policy_delta_commit(c, &d);

	/* and back: the warning comes with its document */
	ASSERT_EQ(policy_cache_delta(c, name, vs[0], strlen(vs[0]), &d), 0);
	dd_take(&set, &d);
	ASSERT_EQ(set.n_warnings, 1);
	ASSERT_STRSTR(set.n_diags ? set.diags[0].msg : "", "delegate");
	policy_delta_commit(c, &d);
	policy_set_free(&set);
	policy_cache_free(c);
	policy_doc_put(pd[0]);
	policy_doc_put(pd[1]);
}

/* A document with an error of its own is no object a delta takes. */
TEST(doc_error_is_not_a_delta_object)
{
	static const char bad[] =
		"apiVersion: networking.istio.io/v1\n"
		"kind: VirtualService\n"
		"metadata: {name: web, namespace: default}\n"
		"spec: {hosts: [web], tcp: [{route: [{destination: {host: web, port: {number: 99999}}}]}]}\n";
	struct pol_set s;
	char *w = dd_vs(1, true);

	policy_set_init(&s);
	ASSERT_EQ(policy_load_buffer(&s, "pol/vs.yaml", bad, strlen(bad)), -EINVAL);
	ASSERT_GE(s.n_errors, 1);
	ASSERT_TRUE(policy_set_single_kind(&s) == NULL);
	policy_set_free(&s);
	policy_set_init(&s);
	ASSERT_EQ(policy_load_buffer(&s, "pol/vs.yaml", w, strlen(w)), 0);
	ASSERT_EQ(s.n_warnings, 1);
	ASSERT_STREQ(policy_set_single_kind(&s) ?: "", "VirtualService");
	policy_set_free(&s);
	free(w);
}

/*
 * Two objects in one file: the VirtualService first (its document starts
 * at the file's first line), the Gateway second. A change to the first
 * document alone drops only what lies in it: the Gateway's warning, in
 * the same file, stays; a change that moves lines replaces both. Every
 * step says what a full load of the file says, counts included.
 */
TEST(doc_warnings_delta_of_a_files_first_document)
{
	/* version (odd: a line longer, the Gateway moves), delegate, https; docs replaced */
	static const struct { unsigned v; bool delegate, https; size_t n_gone; } steps[] = {
		{ 2, true, true, 1 },		/* the route alone: the Gateway's warning stays */
		{ 4, false, true, 1 },		/* the route fixed: its warning goes, not the Gateway's */
		{ 6, true, true, 1 },		/* and back */
		{ 6, true, false, 1 },		/* the Gateway alone: the route's warning stays */
		{ 7, true, true, 2 },		/* a line longer: both documents anew */
		{ 8, false, false, 2 },		/* a line shorter, both warnings gone */
		{ 10, true, false, 1 },
	};
	struct pol_cache *c = policy_cache_new();
	char *vs0 = dd_vs(0, true), *f;
	struct pol_set set;

	ASSERT_TRUE(c != NULL);
	ASSERT_TRUE(asprintf(&f, "%s---\n%s", vs0, dd_gw(true)) > 0);
	free(vs0);
	policy_cache_begin(c);
	policy_set_init(&set);
	policy_set_use_cache(&set, c);
	ASSERT_EQ(policy_load_buffer(&set, "pol/svc.yaml", DD_SVC, strlen(DD_SVC)), 0);
	ASSERT_EQ(policy_load_buffer(&set, "pol/web.yaml", f, strlen(f)), 0);
	ASSERT_EQ(policy_validate(&set), 0);
	policy_cache_end(c);
	ASSERT_EQ(set.n_warnings, 2);
	free(f);
	for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
		char *vs = dd_vs(steps[s].v, steps[s].delegate), *nf, *a, *b;
		const char *files[] = { "pol/svc.yaml", DD_SVC, "pol/web.yaml", NULL };
		struct pol_delta d = {};

		ASSERT_TRUE(asprintf(&nf, "%s---\n%s", vs, dd_gw(steps[s].https)) > 0);
		files[3] = nf;
		ASSERT_EQ(policy_cache_delta(c, "pol/web.yaml", nf, strlen(nf), &d), 0);
		if (!ASSERT_EQ(d.n_gone, steps[s].n_gone) || !ASSERT_EQ(d.n_added, steps[s].n_gone))
			fprintf(stderr, "  step %zu\n", s);
		dd_take(&set, &d);
		a = diag_text(&set);
		b = dd_full(files, sizeof(files) / sizeof(files[0]));
		if (!ASSERT_STREQ(a, b))
			fprintf(stderr, "  step %zu\n", s);
		ASSERT_TRUE(!!strstr(a, "delegate") == steps[s].delegate);
		ASSERT_TRUE(!!strstr(a, "tls") == steps[s].https);
		policy_delta_commit(c, &d);
		free(a);
		free(b);
		free(vs);
		free(nf);
	}
	policy_set_free(&set);
	policy_cache_free(c);
}
