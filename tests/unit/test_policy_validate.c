// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * policy: Istio host resolution, policy_validate() cross-object checks and
 * the compatibility corpus (Istio's own samples must load with no error).
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/stat.h>

#include "policy/policy.h"
#include "test.h"

static void dump_diags(const struct pol_set *s)
{
	char buf[512];

	for (size_t i = 0; i < s->n_diags; i++)
		fprintf(stderr, "    %s\n", policy_diag_format(&s->diags[i], buf,
							     sizeof(buf)));
}

static const struct pol_diag *find_diag(const struct pol_set *s,
					enum pol_diag_level lvl, const char *sub)
{
	for (size_t i = 0; i < s->n_diags; i++)
		if (s->diags[i].level == lvl && strstr(s->diags[i].msg, sub))
			return &s->diags[i];
	return NULL;
}

static int load_str(struct pol_set *s, const char *yaml)
{
	return policy_load_buffer(s, "v.yaml", yaml, strlen(yaml));
}

TEST(policy_host_fqdn_table)
{
	static const struct {
		const char *host, *ns;
		int ret;
		const char *want;
	} t[] = {
		{ "reviews", "default", 0, "reviews.default.svc.cluster.local" },
		{ "reviews", "shop", 0, "reviews.shop.svc.cluster.local" },
		{ "reviews", NULL, 0, "reviews.default.svc.cluster.local" },
		{ "reviews.default", "shop", 0, "reviews.default.svc.cluster.local" },
		{ "reviews.default.svc", "shop", 0, "reviews.default.svc.cluster.local" },
		{ "reviews.default.svc.cluster.local", "x", 0,
		  "reviews.default.svc.cluster.local" },
		{ "*", "default", -EINVAL, "*" },
		{ "*.foo", "default", -EINVAL, "*.foo" },
		{ "*.default.svc.cluster.local", "default", -EINVAL,
		  "*.default.svc.cluster.local" },
		{ "www.googleapis.com", "default", -EINVAL, "www.googleapis.com" },
		{ "reviews.default.svc.other.domain", "default", -EINVAL,
		  "reviews.default.svc.other.domain" },
		{ "", "default", -EINVAL, "" },
		{ ".default", "default", -EINVAL, ".default" },
	};
	struct pol_set s;
	char out[128];

	policy_set_init(&s);
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int ret = policy_host_fqdn(&s, t[i].host, t[i].ns, out, sizeof(out));

		if (!ASSERT_EQ(ret, t[i].ret) | !ASSERT_STREQ(out, t[i].want))
			fprintf(stderr, "  host \"%s\" ns %s\n", t[i].host,
				t[i].ns ? t[i].ns : "(null)");
	}
	ASSERT_EQ(policy_host_fqdn(&s, "reviews", "default", out, 10), -ENOSPC);
	free(s.domain);
	s.domain = strdup("corp.internal");
	ASSERT_EQ(policy_host_fqdn(&s, "a.b.svc.corp.internal", "x", out,
				   sizeof(out)), 0);
	ASSERT_STREQ(out, "a.b.svc.corp.internal");
	ASSERT_EQ(policy_host_fqdn(&s, "a.b.svc.cluster.local", "x", out,
				   sizeof(out)), -EINVAL);
	policy_set_free(&s);
}

static const char svcs_yaml[] =
	"apiVersion: v1\n"
	"kind: Service\n"
	"metadata: {name: reviews}\n"
	"spec: {clusterIP: 10.96.0.10, ports: [{port: 9080}], selector: {app: reviews}}\n"
	"---\n"
	"apiVersion: v1\n"
	"kind: Service\n"
	"metadata: {name: reviews, namespace: shop}\n"
	"spec: {clusterIP: 10.96.0.11, ports: [{port: 9080}]}\n";

TEST(policy_find_service_table)
{
	static const struct { const char *host, *ns, *want_ns; } t[] = {
		{ "reviews", "default", "default" },
		{ "reviews", "shop", "shop" },
		{ "reviews.shop", "default", "shop" },
		{ "reviews.default.svc", "shop", "default" },
		{ "reviews.shop.svc.cluster.local", "default", "shop" },
		{ "reviews", "other", NULL },
		{ "ratings", "default", NULL },
		{ "*.default.svc.cluster.local", "default", NULL },
	};
	struct pol_set s;

	policy_set_init(&s);
	ASSERT_EQ(load_str(&s, svcs_yaml), 0);
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		const struct pol_service *svc = policy_find_service(&s, t[i].host,
								   t[i].ns);
		if (!t[i].want_ns)
			ASSERT_TRUE(svc == NULL);
		else if (ASSERT_TRUE(svc))
			ASSERT_STREQ(svc->meta.ns, t[i].want_ns);
	}
	policy_set_free(&s);
}

struct val_case {
	const char *desc;
	const char *yaml;	/* loaded after svcs_yaml */
	int ret;		/* policy_validate() */
	enum pol_diag_level level;
	const char *msg;	/* NULL: no diagnostic of that level expected */
	uint32_t line, col;
};

#define DR_REVIEWS							\
	"---\n"								\
	"apiVersion: networking.istio.io/v1\n"				\
	"kind: DestinationRule\n"					\
	"metadata: {name: reviews}\n"					\
	"spec:\n"							\
	"  host: reviews\n"						\
	"  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]\n"

TEST(policy_validate_cases)
{
	static const struct val_case t[] = {
		{ "clean tcp route", DR_REVIEWS
		  "---\n"
		  "apiVersion: networking.istio.io/v1\n"
		  "kind: VirtualService\n"
		  "metadata: {name: reviews}\n"
		  "spec:\n"
		  "  hosts: [reviews]\n"
		  "  tcp:\n"
		  "  - route:\n"
		  "    - {destination: {host: reviews, subset: v1}, weight: 60}\n"
		  "    - {destination: {host: reviews.default.svc.cluster.local, subset: v2}, weight: 40}\n",
		  0, POL_DIAG_ERROR, NULL, 0, 0 },
		{ "dangling subset", DR_REVIEWS
		  "---\n"
		  "apiVersion: networking.istio.io/v1\n"
		  "kind: VirtualService\n"
		  "metadata: {name: reviews}\n"
		  "spec:\n"
		  "  hosts: [reviews]\n"
		  "  tcp:\n"
		  "  - route:\n"
		  "    - destination: {host: reviews, subset: v4}\n",
		  -EINVAL, POL_DIAG_ERROR,
		  "VirtualService reviews: subset v4 not defined in any DestinationRule for reviews.default.svc.cluster.local",
		  25, 20 },
		{ "dangling subset in http route", DR_REVIEWS
		  "---\n"
		  "apiVersion: networking.istio.io/v1\n"
		  "kind: VirtualService\n"
		  "metadata: {name: reviews}\n"
		  "spec:\n"
		  "  hosts: [reviews]\n"
		  "  http:\n"
		  "  - route:\n"
		  "    - destination: {host: reviews, subset: v3}\n",
		  -EINVAL, POL_DIAG_ERROR, "subset v3 not defined", 25, 20 },
		{ "subset of another namespace's DR", DR_REVIEWS
		  "---\n"
		  "apiVersion: networking.istio.io/v1\n"
		  "kind: VirtualService\n"
		  "metadata: {name: r, namespace: shop}\n"
		  "spec:\n"
		  "  hosts: [reviews]\n"
		  "  tcp:\n"
		  "  - route:\n"
		  "    - destination: {host: reviews, subset: v1}\n",
		  -EINVAL, POL_DIAG_ERROR,
		  "subset v1 not defined in any DestinationRule for reviews.shop.svc.cluster.local",
		  25, 20 },
		{ "dangling tcp host", "---\n"
		  "apiVersion: networking.istio.io/v1\n"
		  "kind: VirtualService\n"
		  "metadata: {name: r}\n"
		  "spec:\n"
		  "  hosts: [reviews]\n"
		  "  tcp:\n"
		  "  - route:\n"
		  "    - destination: {host: ratings}\n",
		  -EINVAL, POL_DIAG_ERROR,
		  "VirtualService r: tcp route destination ratings is not a known Service",
		  18, 20 },
		{ "tcp destination port not on service", "---\n"
		  "apiVersion: networking.istio.io/v1\n"
		  "kind: VirtualService\n"
		  "metadata: {name: r}\n"
		  "spec:\n"
		  "  hosts: [reviews]\n"
		  "  tcp:\n"
		  "  - route:\n"
		  "    - destination: {host: reviews, port: {number: 80}}\n",
		  -EINVAL, POL_DIAG_ERROR, "Service default/reviews has no port 80", 18, 20 },
		{ "duplicate VIP", "---\n"
		  "apiVersion: v1\n"
		  "kind: Service\n"
		  "metadata: {name: clash}\n"
		  "spec:\n"
		  "  clusterIP: 10.96.0.10\n"
		  "  ports:\n"
		  "  - port: 9080\n",
		  -EINVAL, POL_DIAG_ERROR,
		  "Service default/clash: clusterIP 10.96.0.10 is already the VIP of Service default/reviews (v.yaml:4)",
		  15, 14 },
		{ "same VIP other port: still one VIP per Service", "---\n"
		  "apiVersion: v1\n"
		  "kind: Service\n"
		  "metadata: {name: other}\n"
		  "spec: {clusterIP: 10.96.0.10, ports: [{port: 9081}]}\n",
		  -EINVAL, POL_DIAG_ERROR,
		  "Service default/other: clusterIP 10.96.0.10 is already the VIP of Service default/reviews",
		  14, 19 },
		{ "a duplicate Service on its own VIP: one error", "---\n"
		  "apiVersion: v1\n"
		  "kind: Service\n"
		  "metadata: {name: reviews}\n"
		  "spec: {clusterIP: 10.96.0.10, ports: [{port: 9080}]}\n",
		  -EINVAL, POL_DIAG_ERROR, "duplicate Service default/reviews", 12, 1 },
		{ "duplicate object", "---\n"
		  "apiVersion: v1\n"
		  "kind: Service\n"
		  "metadata: {name: reviews, namespace: shop}\n"
		  "spec: {clusterIP: 10.96.0.12, ports: [{port: 1}]}\n",
		  -EINVAL, POL_DIAG_ERROR,
		  "duplicate Service shop/reviews (first defined at v.yaml:7)", 12, 1 },
		{ "DR without Service", "---\n"
		  "apiVersion: networking.istio.io/v1\n"
		  "kind: DestinationRule\n"
		  "metadata: {name: ratings}\n"
		  "spec: {host: ratings}\n",
		  0, POL_DIAG_WARNING,
		  "DestinationRule ratings: host ratings.default.svc.cluster.local matches no Service",
		  14, 14 },
		{ "DR external host", "---\n"
		  "apiVersion: networking.istio.io/v1\n"
		  "kind: DestinationRule\n"
		  "metadata: {name: ext}\n"
		  "spec: {host: api.example.com}\n",
		  0, POL_DIAG_WARNING, "host api.example.com is not an in-cluster service name",
		  14, 14 },
		{ "two DRs for one host", DR_REVIEWS
		  "---\n"
		  "apiVersion: networking.istio.io/v1\n"
		  "kind: DestinationRule\n"
		  "metadata: {name: reviews-2}\n"
		  "spec: {host: reviews.default}\n",
		  0, POL_DIAG_WARNING, "already has DestinationRule default/reviews",
		  21, 14 },
		{ "a duplicate DR: the duplicate only", DR_REVIEWS DR_REVIEWS,
		  -EINVAL, POL_DIAG_WARNING, NULL, 0, 0 },
		{ "two VSs for one host", "---\n"
		  "apiVersion: networking.istio.io/v1\n"
		  "kind: VirtualService\n"
		  "metadata: {name: a}\n"
		  "spec: {hosts: [reviews], tcp: [{route: [{destination: {host: reviews}}]}]}\n"
		  "---\n"
		  "apiVersion: networking.istio.io/v1\n"
		  "kind: VirtualService\n"
		  "metadata: {name: b}\n"
		  "spec: {hosts: [reviews.default], tcp: [{route: [{destination: {host: reviews}}]}]}\n",
		  0, POL_DIAG_WARNING, "also routed by VirtualService default/a", 17, 1 },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct pol_set s;
		const struct pol_diag *d;
		char *y;

		if (asprintf(&y, "%s%s", svcs_yaml, t[i].yaml) < 0)
			continue;
		policy_set_init(&s);
		load_str(&s, y);
		free(y);
		if (!ASSERT_EQ(policy_validate(&s), t[i].ret)) {
			fprintf(stderr, "  case \"%s\":\n", t[i].desc);
			dump_diags(&s);
		}
		d = find_diag(&s, t[i].level, t[i].msg ? t[i].msg : "");
		if (!t[i].msg) {
			if (!ASSERT_TRUE(d == NULL))
				fprintf(stderr, "  case \"%s\"\n", t[i].desc);
		} else if (!ASSERT_TRUE(d)) {
			fprintf(stderr, "  case \"%s\": got:\n", t[i].desc);
			dump_diags(&s);
		} else if (!ASSERT_EQ(d->loc.line, t[i].line) |
			   !ASSERT_EQ(d->loc.col, t[i].col)) {
			fprintf(stderr, "  case \"%s\"\n", t[i].desc);
		}
		policy_set_free(&s);
	}
}

/*
 * One mistake, one error: a typo of a required key is not also "missing";
 * a broken weight is not also a bad sum; a duplicate Service is not also a
 * shared VIP; an unusable clusterIP is not also "no clusterIP".
 */
TEST(policy_one_mistake_one_error)
{
#define VS_HEAD "apiVersion: networking.istio.io/v1\nkind: VirtualService\n" \
		"metadata: {name: r}\nspec:\n  hosts: [reviews]\n"
	static const struct {
		const char *desc, *yaml, *msg;
		uint32_t line, col;
	} t[] = {
		{ "typo of spec", "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
		  "metadata: {name: r}\nspecs: {host: reviews}\n",
		  "unknown field \"specs\" in DestinationRule (typo? did you mean \"spec\")", 4, 1 },
		{ "typo of spec.host", "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
		  "metadata: {name: r}\nspec: {hots: reviews}\n",
		  "unknown field \"hots\"", 4, 8 },
		{ "typo of metadata.name", "apiVersion: v1\nkind: Service\n"
		  "metadata: {nmae: x}\nspec: {clusterIP: 10.96.1.1, ports: [{port: 1}]}\n",
		  "did you mean \"name\"", 3, 12 },
		{ "typo of Service.spec.selector", "apiVersion: v1\nkind: Service\n"
		  "metadata: {name: x}\nspec: {clusterIP: 10.96.1.1, selektor: {a: b}, ports: [{port: 1}]}\n",
		  "did you mean \"selector\"", 4, 30 },
		{ "typo of a tcp route", VS_HEAD "  tcp:\n  - rout: []\n",
		  "unknown field \"rout\"", 7, 5 },
		{ "typo of an http route", VS_HEAD "  http:\n  - rout: []\n",
		  "unknown field \"rout\"", 7, 5 },
		{ "typo of destination.host", VS_HEAD "  tcp:\n  - route:\n    - destination: {hots: reviews}\n",
		  "unknown field \"hots\"", 8, 21 },
		{ "negative weight, no sum warning", VS_HEAD "  tcp:\n  - route:\n"
		  "    - {destination: {host: reviews}, weight: 110}\n"
		  "    - {destination: {host: reviews}, weight: -10}\n",
		  "weight must be >= 0", 9, 46 },
		{ "a duplicate Service on the same VIP", "apiVersion: v1\nkind: Service\n"
		  "metadata: {name: reviews}\nspec: {clusterIP: 10.96.0.10, ports: [{port: 9080}]}\n",
		  "duplicate Service default/reviews", 2, 1 },
		{ "an unusable clusterIP", "apiVersion: v1\nkind: Service\n"
		  "metadata: {name: x}\nspec: {clusterIP: 10.96.1.256, ports: [{port: 1}]}\n",
		  "is not an IPv4 address", 4, 19 },
	};
#undef VS_HEAD

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct pol_set s;
		const struct pol_diag *d;

		policy_set_init(&s);
		policy_load_buffer(&s, "v.yaml", svcs_yaml, strlen(svcs_yaml));
		policy_load_buffer(&s, "case.yaml", t[i].yaml, strlen(t[i].yaml));
		policy_validate(&s);
		d = find_diag(&s, POL_DIAG_ERROR, t[i].msg);
		if (!ASSERT_EQ(s.n_errors, 1) | !ASSERT_EQ(s.n_warnings, 0) | !ASSERT_TRUE(d) ||
		    !ASSERT_EQ(d->loc.line, t[i].line) | !ASSERT_EQ(d->loc.col, t[i].col)) {
			fprintf(stderr, "  case \"%s\":\n", t[i].desc);
			dump_diags(&s);
		}
		policy_set_free(&s);
	}
}

/* ---- compatibility corpus: Istio's own samples ---- */

static const char *compat_dir(void)
{
	const char *d = getenv("SOCKMESH_COMPAT_DIR");

	return d && *d ? d : "tests/compat/istio-samples";
}

/* The samples are checked in: missing is a failure. */
static bool compat_available(void)
{
	struct stat st;

	if (stat(compat_dir(), &st) == 0 && S_ISDIR(st.st_mode))
		return true;
	TEST_FAIL_("compat corpus %s not found", compat_dir());
	return false;
}

/* Load files (NULL-terminated) from the corpus, validate, expect 0 errors. */
static void compat_load(const char *const *files, size_t *warnings)
{
	struct pol_set s;
	char path[1024];
	int ret = 0;

	policy_set_init(&s);
	for (const char *const *f = files; *f; f++) {
		snprintf(path, sizeof(path), "%s/%s", compat_dir(), *f);
		ret |= policy_load_path(&s, path);
	}
	ret |= policy_validate(&s);
	if (!ASSERT_EQ(ret, 0) | !ASSERT_EQ(s.n_errors, 0)) {
		fprintf(stderr, "  files:");
		for (const char *const *f = files; *f; f++)
			fprintf(stderr, " %s", *f);
		fprintf(stderr, "\n");
		dump_diags(&s);
	}
	if (warnings)
		*warnings = s.n_warnings;
	policy_set_free(&s);
}

static bool has_prefix(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

TEST(policy_compat_istio_samples)
{
	struct dirent **ents;
	size_t n_vs = 0, n_dr = 0, warnings;
	int n;

	if (!compat_available())
		return;
	n = scandir(compat_dir(), &ents, NULL, alphasort);
	if (!ASSERT_GE(n, 0))
		return;
	for (int i = 0; i < n; i++) {
		const char *f = ents[i]->d_name;

		if (has_prefix(f, "virtual-service-")) {
			const char *files[] = { "bookinfo.yaml",
						"destination-rule-all.yaml", f, NULL };

			compat_load(files, NULL);
			n_vs++;
		} else if (has_prefix(f, "destination-rule-")) {
			const char *files[] = { "bookinfo.yaml", f, NULL };

			compat_load(files, NULL);
			n_dr++;
		}
		free(ents[i]);
	}
	free(ents);
	ASSERT_GE(n_vs, 13);
	ASSERT_GE(n_dr, 3);

	{
		const char *files[] = { "bookinfo.yaml", "fault-injection-details-v1.yaml", NULL };

		compat_load(files, NULL);
	}
	{
		const char *files[] = { "bookinfo.yaml", "bookinfo-gateway.yaml", NULL };

		compat_load(files, NULL);
	}
	{
		const char *files[] = { "bookinfo.yaml", "bookinfo-versions.yaml",
					"destination-rule-all.yaml", NULL };

		compat_load(files, NULL);
	}
	{
		const char *files[] = { "httpbin.yaml", "httpbin-gateway.yaml", NULL };

		compat_load(files, NULL);
	}
	{
		const char *files[] = { "bookinfo.yaml", "destination-rule-all-mtls.yaml", NULL };

		compat_load(files, &warnings);
		ASSERT_GE(warnings, 4);	/* one mTLS warning per DestinationRule */
	}
	{
		const char *files[] = { "egress-rule-google-apis.yaml", NULL };

		compat_load(files, &warnings);
		ASSERT_GE(warnings, 1);	/* ServiceEntry, TLS origination */
	}
	{
		const char *files[] = { "certmanager-gateway.yaml", NULL };

		/* a plain HTTP Gateway is implemented by the L7 agent */
		compat_load(files, &warnings);
		ASSERT_EQ(warnings, 0);
	}
}

TEST(policy_compat_bookinfo_objects)
{
	static const char *const files[] = { "bookinfo.yaml", NULL };
	struct pol_set s;
	char path[1024];

	if (!compat_available())
		return;
	policy_set_init(&s);
	snprintf(path, sizeof(path), "%s/%s", compat_dir(), files[0]);
	ASSERT_EQ(policy_load_path(&s, path), 0);
	ASSERT_EQ(s.n_svcs, 4);
	ASSERT_EQ(s.n_errors, 0);
	/* 4 Services without clusterIP: one warning each */
	ASSERT_EQ(s.n_warnings, 4);
	ASSERT_TRUE(find_diag(&s, POL_DIAG_NOTE, "skipping kind Deployment"));
	ASSERT_TRUE(find_diag(&s, POL_DIAG_NOTE, "skipping kind ServiceAccount"));
	ASSERT_TRUE(find_diag(&s, POL_DIAG_WARNING,
			      "Service details has no clusterIP: not reachable through a VIP"));
	policy_set_free(&s);
}
