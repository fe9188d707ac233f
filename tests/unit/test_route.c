// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Router: every match kind, AND / OR, first-match order, source identity,
 * gateways, weights, path rewrites, gateway virtual host selection. Configs
 * come through the real pipeline (YAML -> policy -> plan -> l7_config).
 */
#include "test_l7_fixture.h"

#define SVC_REVIEWS							\
	"apiVersion: v1\nkind: Service\n"				\
	"metadata: {name: reviews, namespace: default}\n"		\
	"spec:\n  clusterIP: 10.96.0.20\n  selector: {app: reviews}\n"	\
	"  ports: [{name: http, port: 9080}]\n"				\
	"---\napiVersion: v1\nkind: Pod\n"				\
	"metadata: {name: reviews-v1, namespace: default, labels: {app: reviews, version: v1}}\n" \
	"status: {podIP: 10.0.0.11}\n"					\
	"---\napiVersion: v1\nkind: Pod\n"				\
	"metadata: {name: reviews-v2, namespace: default, labels: {app: reviews, version: v2}}\n" \
	"status: {podIP: 10.0.0.12}\n"					\
	"---\napiVersion: v1\nkind: Pod\n"				\
	"metadata: {name: reviews-v3, namespace: default, labels: {app: reviews, version: v3}}\n" \
	"status: {podIP: 10.0.0.13}\n"					\
	"---\napiVersion: v1\nkind: Pod\n"				\
	"metadata: {name: productpage, namespace: default, labels: {app: productpage, version: v1}}\n" \
	"status: {podIP: 10.0.0.5}\n"					\
	"---\napiVersion: v1\nkind: Pod\n"				\
	"metadata: {name: tester, namespace: other, labels: {app: tester}}\n" \
	"status: {podIP: 10.0.1.5}\n"					\
	"---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\n" \
	"metadata: {name: reviews, namespace: default}\n"		\
	"spec:\n  host: reviews\n  subsets:\n"				\
	"  - {name: v1, labels: {version: v1}}\n"			\
	"  - {name: v2, labels: {version: v2}}\n"			\
	"  - {name: v3, labels: {version: v3}}\n"

#define R(name, match, subset)						\
	"  - name: " name "\n    match: " match "\n"		\
	"    route: [{destination: {host: reviews, subset: " subset "}}]\n"

static const char route_yaml[] = SVC_REVIEWS
	"---\napiVersion: networking.istio.io/v1\nkind: VirtualService\n"
	"metadata: {name: reviews, namespace: default}\n"
	"spec:\n  hosts: [reviews]\n  gateways: [mesh, gw]\n  http:\n"
	R("exact", "[{uri: {exact: /exact}}]", "v1")
	R("icase", "[{uri: {prefix: /Case/}, ignoreUriCase: true}]", "v1")
	R("regex", "[{uri: {regex: '/re/[0-9]+'}}]", "v1")
	R("and", "[{method: {exact: POST}, uri: {prefix: /and}}]", "v2")
	R("or", "[{uri: {prefix: /or1}}, {uri: {prefix: /or2}}]", "v2")
	R("hexact", "[{headers: {end-user: {exact: jason}}}]", "v2")
	R("hpresent", "[{headers: {x-present: {}}}]", "v3")
	R("hregex", "[{headers: {x-re: {regex: 'ab+c'}}}]", "v3")
	R("hprefix", "[{headers: {X-Pre: {prefix: pre}}}]", "v3")
	R("without", "[{uri: {prefix: /without}, withoutHeaders: {x-block: {exact: '1'}}}]", "v3")
	R("wprefix", "[{uri: {prefix: /wpre}, withoutHeaders: {x-block: {prefix: a}}}]", "v3")
	R("wregex", "[{uri: {prefix: /wre}, withoutHeaders: {x-block: {regex: 'a+'}}}]", "v3")
	R("wempty", "[{uri: {prefix: /wempty}, withoutHeaders: {x-block: {exact: ''}}}]", "v3")
	R("query", "[{queryParams: {q: {exact: '1'}}}]", "v1")
	R("qregex", "[{queryParams: {r: {regex: '[a-z]+'}}}]", "v1")
	R("srclabels", "[{uri: {prefix: /src}, sourceLabels: {app: productpage}}]", "v2")
	R("srcns", "[{uri: {prefix: /ns}, sourceNamespace: other}]", "v2")
	R("port", "[{uri: {prefix: /port}, port: 9999}]", "v2")
	R("authority", "[{authority: {exact: 'reviews:9080'}, uri: {prefix: /auth}}]", "v2")
	R("gwonly", "[{uri: {prefix: /gw}, gateways: [gw]}]", "v3")
	R("scheme", "[{scheme: {exact: https}, uri: {prefix: /scheme}}]", "v3")
	R("first1", "[{uri: {prefix: /first}}]", "v1")
	R("first2", "[{uri: {prefix: /first/x}}]", "v2")
	R("wpresent", "[{uri: {prefix: /wp}, withoutHeaders: {x-block: {}}}]", "v2")
	R("hmissing", "[{uri: {prefix: /hm}, headers: {x-absent: {exact: ''}}}]", "v2")
	"  - name: default\n    route: [{destination: {host: reviews, subset: v1}}]\n";

TEST(route_match_table)
{
	static const struct {
		struct l7fx_req rq;
		const char *want;	/* route name */
		int block;		/* matched block index, -1 = none */
	} t[] = {
		{ { .path = "/exact" }, "exact", 0 },
		{ { .path = "/exact/" }, "default", -1 },
		{ { .path = "/EXACT" }, "default", -1 },
		{ { .path = "/case/abc" }, "icase", 0 },
		{ { .path = "/CASE/abc" }, "icase", 0 },
		{ { .path = "/re/123" }, "regex", 0 },
		{ { .path = "/re/123x" }, "default", -1 },	/* partial: no */
		{ { .path = "/x/re/1" }, "default", -1 },
		{ { .method = "POST", .path = "/and" }, "and", 0 },
		{ { .method = "GET", .path = "/and" }, "default", -1 },
		{ { .method = "POST", .path = "/nope" }, "default", -1 },
		{ { .path = "/or1" }, "or", 0 },
		{ { .path = "/or2/x" }, "or", 1 },
		{ { .headers = "end-user: jason\n" }, "hexact", 0 },
		{ { .headers = "End-User: jason\n" }, "hexact", 0 },
		{ { .headers = "end-user: Jason\n" }, "default", -1 },
		{ { .headers = "end-user: jason2\n" }, "default", -1 },
		{ { .headers = "x-present: whatever\n" }, "hpresent", 0 },
		{ { .headers = "x-present: \n" }, "hpresent", 0 },
		{ { .headers = "x-re: abbbc\n" }, "hregex", 0 },
		{ { .headers = "x-re: abcd\n" }, "default", -1 },
		{ { .headers = "x-pre: prefixed\n" }, "hprefix", 0 },
		{ { .headers = "x-pre: Prefixed\n" }, "default", -1 },
		/*
		 * Istio translates withoutHeaders to Envoy header matchers with
		 * invert_match and treat_missing_header_as_empty (istio#50988):
		 * a missing header is matched as "" and the result inverted.
		 */
		{ { .path = "/without" }, "without", 0 },
		{ { .path = "/without", .headers = "x-block: 1\n" }, "default", -1 },
		{ { .path = "/without", .headers = "x-block: 2\n" }, "without", 0 },
		{ { .path = "/wpre" }, "wprefix", 0 },
		{ { .path = "/wpre", .headers = "x-block: abc\n" }, "default", -1 },
		{ { .path = "/wpre", .headers = "x-block: b\n" }, "wprefix", 0 },
		{ { .path = "/wre" }, "wregex", 0 },
		{ { .path = "/wre", .headers = "x-block: aaa\n" }, "default", -1 },
		{ { .path = "/wre", .headers = "x-block: ab\n" }, "wregex", 0 },
		/* "" matches exact "": inverted, neither absent nor empty passes */
		{ { .path = "/wempty" }, "default", -1 },
		{ { .path = "/wempty", .headers = "x-block: \n" }, "default", -1 },
		{ { .path = "/wempty", .headers = "x-block: x\n" }, "wempty", 0 },
		{ { .query = "q=1" }, "query", 0 },
		{ { .query = "a=b&q=1" }, "query", 0 },
		{ { .query = "q=10" }, "default", -1 },
		{ { .query = "q" }, "default", -1 },
		{ { .query = "r=abc" }, "qregex", 0 },
		{ { .query = "r=ab1" }, "default", -1 },
		{ { .path = "/src", .source = "10.0.0.5" }, "srclabels", 0 },
		{ { .path = "/src", .source = "10.0.1.5" }, "default", -1 },
		{ { .path = "/src" }, "default", -1 },			/* unknown client */
		{ { .path = "/src", .source = "10.9.9.9" }, "default", -1 },
		{ { .path = "/ns", .source = "10.0.1.5" }, "srcns", 0 },
		{ { .path = "/ns", .source = "10.0.0.5" }, "default", -1 },
		{ { .path = "/port", .port = 9999 }, "port", 0 },
		{ { .path = "/port" }, "default", -1 },
		{ { .path = "/auth", .host = "reviews:9080" }, "authority", 0 },
		{ { .path = "/auth", .host = "reviews" }, "default", -1 },
		{ { .path = "/gw", .gateway = "default/gw" }, "gwonly", 0 },
		{ { .path = "/gw" }, "default", -1 },
		{ { .path = "/scheme" }, "default", -1 },
		{ { .path = "/first/x" }, "first1", 0 },		/* order wins */
		{ { .path = "/wp" }, "wpresent", 0 },
		{ { .path = "/wp", .headers = "x-block: 1\n" }, "default", -1 },
		{ { .path = "/hm" }, "default", -1 },	/* missing header fails exact "" */
		{ { .path = "/hm", .headers = "x-absent: \n" }, "hmissing", 0 },
		{ { .path = "/", .gateway = "default/gw" }, "default", -1 },
		{ { .path = "/", .gateway = "default/other" }, NULL, -1 },
	};
	struct l7fx f;
	const struct l7_svc *s;

	if (!ASSERT_EQ(l7fx_load(&f, route_yaml), 0)) {
		l7fx_dump(&f.set);
		goto out;
	}
	s = l7fx_svc(&f, "10.96.0.20", 9080);
	if (!ASSERT_TRUE(s) || !ASSERT_TRUE(s->vhost))
		goto out;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct l7_request_view v;
		const struct l7_route *r;
		const struct pol_http_match *m = (const void *)1;
		size_t idx = 999;
		int ok;

		l7fx_view(&f, &t[i].rq, &v);
		r = l7_route_match(s->vhost, &v, &idx, &m);
		if (!t[i].want) {
			ok = ASSERT_TRUE(r == NULL);
		} else {
			ok = ASSERT_TRUE(r) && ASSERT_STREQ(r->pol->name, t[i].want) &&
			     ASSERT_EQ(idx, (size_t)(r - s->vhost->routes));
			if (ok && t[i].block < 0)
				ok = ASSERT_TRUE(m == NULL);
			else if (ok)
				ok = ASSERT_TRUE(m == &r->pol->match[t[i].block]);
		}
		if (!ok)
			fprintf(stderr, "  case %zu: path %s\n", i,
				t[i].rq.path ? t[i].rq.path : "/");
	}
out:
	l7fx_free(&f);
}

static const char weight_yaml[] = SVC_REVIEWS
	"---\napiVersion: networking.istio.io/v1\nkind: VirtualService\n"
	"metadata: {name: reviews, namespace: default}\n"
	"spec:\n  hosts: [reviews]\n  http:\n"
	"  - match: [{headers: {x-three: {}}}]\n    route:\n"
	"    - {destination: {host: reviews, subset: v1}, weight: 50}\n"
	"    - {destination: {host: reviews, subset: v2}, weight: 30}\n"
	"    - {destination: {host: reviews, subset: v3}, weight: 20}\n"
	"  - match: [{headers: {x-zero: {}}}]\n    route:\n"
	"    - {destination: {host: reviews, subset: v1}, weight: 100}\n"
	"    - {destination: {host: reviews, subset: v2}}\n"
	"  - route:\n"
	"    - {destination: {host: reviews, subset: v1}, weight: 90}\n"
	"    - {destination: {host: reviews, subset: v2}, weight: 10}\n";

/* Evenly spaced rnd over [0, 2^32): the exact quantiles of a uniform draw. */
static void count_picks(const struct l7_route *r, size_t n, size_t *counts)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t rnd = (uint32_t)((((uint64_t)i << 32) + n - 1) / n);
		const struct l7_route_dest *d = l7_route_pick_dest(r, rnd);

		if (d)
			counts[d - r->dests]++;
	}
}

TEST(route_weights)
{
	struct l7fx f;
	const struct l7_svc *s;
	const struct l7_route *r;
	size_t c[3];

	if (!ASSERT_EQ(l7fx_load(&f, weight_yaml), 0)) {
		l7fx_dump(&f.set);
		goto out;
	}
	s = l7fx_svc(&f, "10.96.0.20", 9080);
	if (!ASSERT_TRUE(s && s->vhost) || !ASSERT_EQ(s->vhost->n_routes, 3))
		goto out;
	r = &s->vhost->routes[2];
	ASSERT_EQ(r->total_weight, 100);
	memset(c, 0, sizeof(c));
	count_picks(r, 10000, c);
	ASSERT_EQ(c[0], 9000);
	ASSERT_EQ(c[1], 1000);
	ASSERT_STREQ(r->dests[0].cluster->subset, "v1");
	ASSERT_STREQ(r->dests[1].cluster->subset, "v2");
	/* extremes of rnd */
	ASSERT_TRUE(l7_route_pick_dest(r, 0) == &r->dests[0]);
	ASSERT_TRUE(l7_route_pick_dest(r, UINT32_MAX) == &r->dests[1]);

	r = &s->vhost->routes[0];
	memset(c, 0, sizeof(c));
	count_picks(r, 10000, c);
	ASSERT_EQ(c[0], 5000);
	ASSERT_EQ(c[1], 3000);
	ASSERT_EQ(c[2], 2000);

	/* unset weight next to a set one is 0: never picked */
	r = &s->vhost->routes[1];
	ASSERT_EQ(r->dests[1].weight, 0);
	memset(c, 0, sizeof(c));
	count_picks(r, 1000, c);
	ASSERT_EQ(c[0], 1000);
	ASSERT_EQ(c[1], 0);
out:
	l7fx_free(&f);
}

TEST(route_weights_sum_zero_is_error)
{
	static const char y[] = SVC_REVIEWS
		"---\napiVersion: networking.istio.io/v1\nkind: VirtualService\n"
		"metadata: {name: reviews, namespace: default}\n"
		"spec:\n  hosts: [reviews]\n  http:\n"
		"  - route:\n"
		"    - {destination: {host: reviews, subset: v1}, weight: 0}\n"
		"    - {destination: {host: reviews, subset: v2}, weight: 0}\n";
	struct l7fx f;

	ASSERT_EQ(l7fx_load(&f, y), -EINVAL);
	ASSERT_TRUE(l7fx_diag(&f.set, POL_DIAG_ERROR, "sum to 0"));
	l7fx_free(&f);
}

static const char rewrite_yaml[] = SVC_REVIEWS
	"---\napiVersion: networking.istio.io/v1\nkind: VirtualService\n"
	"metadata: {name: reviews, namespace: default}\n"
	"spec:\n  hosts: [reviews]\n  http:\n"
	"  - match: [{uri: {prefix: /api/v1}}]\n    rewrite: {uri: /v2}\n"
	"    route: [{destination: {host: reviews}}]\n"
	"  - match: [{uri: {exact: /login}}]\n    rewrite: {uri: /signin, authority: auth}\n"
	"    route: [{destination: {host: reviews}}]\n"
	"  - match: [{uri: {regex: '/r/[a-z]+'}}]\n    rewrite: {uri: /whole}\n"
	"    route: [{destination: {host: reviews}}]\n"
	"  - match: [{uri: {prefix: /service/}}]\n"
	"    rewrite: {uriRegexRewrite: {match: '^/service/([^/]+)(/.*)$', rewrite: '\\2/instance/\\1'}}\n"
	"    route: [{destination: {host: reviews}}]\n"
	"  - match: [{uri: {prefix: /oo}}]\n"
	"    rewrite: {uriRegexRewrite: {match: 'o', rewrite: '0'}}\n"
	"    route: [{destination: {host: reviews}}]\n"
	"  - match: [{headers: {x-any: {}}}]\n    rewrite: {uri: /bar}\n"
	"    route: [{destination: {host: reviews}}]\n"
	"  - route: [{destination: {host: reviews}}]\n";

TEST(route_rewrite_path)
{
	static const struct {
		const char *path, *headers, *want;
	} t[] = {
		{ "/api/v1/users", NULL, "/v2/users" },		/* prefix swapped */
		{ "/api/v1", NULL, "/v2" },
		{ "/login", NULL, "/signin" },			/* exact: whole path */
		{ "/r/abc", NULL, "/whole" },			/* regex: whole path */
		{ "/service/foo/v1/api", NULL, "/v1/api/instance/foo" },	/* Envoy doc example */
		{ "/oo/boo", NULL, "/00/b00" },			/* every match */
		{ "/foo", "x-any: 1\n", "/barfoo" },		/* catch-all prefix "/" */
		{ "/plain", NULL, "/plain" },			/* no rewrite */
	};
	struct l7fx f;
	const struct l7_svc *s;
	char out[64];

	if (!ASSERT_EQ(l7fx_load(&f, rewrite_yaml), 0)) {
		l7fx_dump(&f.set);
		goto done;
	}
	s = l7fx_svc(&f, "10.96.0.20", 9080);
	if (!ASSERT_TRUE(s && s->vhost))
		goto done;
	ASSERT_STREQ(s->vhost->routes[1].pol->rewrite.authority, "auth");
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct l7fx_req rq = { .path = t[i].path, .headers = t[i].headers };
		struct l7_request_view v;
		const struct pol_http_match *m = NULL;
		const struct l7_route *r;
		int n;

		l7fx_view(&f, &rq, &v);
		r = l7_route_match(s->vhost, &v, NULL, &m);
		if (!ASSERT_TRUE(r))
			continue;
		n = l7_rewrite_path(r, m, v.path, v.path_len, out, sizeof(out));
		if (!ASSERT_EQ(n, (int)strlen(t[i].want)) || !ASSERT_STREQ(out, t[i].want))
			fprintf(stderr, "  case %s\n", t[i].path);
	}
	{
		struct l7fx_req rq = { .path = "/api/v1/users" };
		struct l7_request_view v;
		const struct pol_http_match *m = NULL;
		const struct l7_route *r;

		l7fx_view(&f, &rq, &v);
		r = l7_route_match(s->vhost, &v, NULL, &m);
		ASSERT_EQ(l7_rewrite_path(r, m, v.path, v.path_len, out, 5), -ENOSPC);
		ASSERT_EQ(l7_rewrite_path(r, m, v.path, v.path_len, out, 10), 9);
		ASSERT_EQ(l7_rewrite_path(r, m, v.path, v.path_len, out, 9), -ENOSPC);
	}
done:
	l7fx_free(&f);
}

static const char gateway_yaml[] =
	"apiVersion: networking.istio.io/v1\nkind: Gateway\n"
	"metadata: {name: gwa, namespace: istio-system}\n"
	"spec:\n  selector: {istio: ingressgateway}\n  servers:\n"
	"  - port: {number: 8080, name: http, protocol: HTTP}\n    hosts: ['*']\n"
	"  - port: {number: 8443, name: https, protocol: HTTPS}\n    hosts: ['*']\n"
	"    tls: {mode: SIMPLE, credentialName: c}\n"
	"---\napiVersion: networking.istio.io/v1\nkind: Gateway\n"
	"metadata: {name: gwb, namespace: istio-system}\n"
	"spec:\n  servers:\n"
	"  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: ['ns1/*.example.com']\n"
#define GVS(name, ns, hosts, gw)						\
	"---\napiVersion: networking.istio.io/v1\nkind: VirtualService\n"	\
	"metadata: {name: " name ", namespace: " ns "}\n"			\
	"spec:\n  hosts: " hosts "\n  gateways: [" gw "]\n"			\
	"  http: [{directResponse: {status: 200, body: {string: " name "}}}]\n"
	GVS("x", "default", "[www.foo.com]", "istio-system/gwa")
	GVS("y", "default", "['*.foo.com']", "istio-system/gwa")
	GVS("z", "default", "['*']", "istio-system/gwa")
	GVS("w", "default", "['*.b.foo.com']", "istio-system/gwa")
	GVS("d", "default", "[api.example.com]", "istio-system/gwb")
	GVS("e", "ns1", "[api.example.com, '*']", "istio-system/gwb");

TEST(route_gateway_find_vhost)
{
	static const struct {
		const char *gw, *host, *want;
	} t[] = {
		{ "istio-system/gwa", "www.foo.com", "default/x" },
		{ "istio-system/gwa", "www.foo.com:8080", "default/x" },
		{ "istio-system/gwa", "WWW.FOO.COM", "default/x" },
		{ "istio-system/gwa", "a.foo.com", "default/y" },
		{ "istio-system/gwa", "a.b.foo.com", "default/w" },	/* longest wildcard */
		{ "istio-system/gwa", "foo.com", "default/z" },		/* "*." needs a label */
		{ "istio-system/gwa", "other.org", "default/z" },
		{ "istio-system/gwa", "", "default/z" },
		{ "istio-system/gwb", "api.example.com", "ns1/e" },	/* namespace-scoped host */
		{ "istio-system/gwb", "www.example.com", "ns1/e" },	/* '*' narrowed to server host */
		{ "istio-system/gwb", "www.other.org", NULL },
	};
	struct l7fx f;

	if (!ASSERT_EQ(l7fx_load(&f, gateway_yaml), 0)) {
		l7fx_dump(&f.set);
		goto out;
	}
	if (!ASSERT_EQ(f.c->n_gateways, 2))
		goto out;
	/* the TLS server is not served (warned at load) */
	ASSERT_EQ(f.c->gateways[0].n_servers, 1);
	ASSERT_EQ(f.c->gateways[0].servers[0].port, 8080);
	ASSERT_STREQ(f.c->gateways[1].servers[0].hosts[0], "*.example.com");
	ASSERT_TRUE(l7fx_diag(&f.set, POL_DIAG_WARNING, "servers[1].tls is not implemented"));
	ASSERT_TRUE(l7fx_diag(&f.set, POL_DIAG_WARNING,
			      "VirtualService default/d: no host matches a server of Gateway istio-system/gwb"));
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		const struct l7_gateway *g = NULL;
		const struct l7_vhost *vh;

		for (size_t k = 0; k < f.c->n_gateways; k++)
			if (strcmp(f.c->gateways[k].name, t[i].gw) == 0)
				g = &f.c->gateways[k];
		if (!ASSERT_TRUE(g))
			continue;
		vh = l7_gateway_find_vhost(g, t[i].host, strlen(t[i].host));
		if (!t[i].want) {
			ASSERT_TRUE(vh == NULL);
		} else if (!ASSERT_TRUE(vh) || !ASSERT_STREQ(vh->name, t[i].want)) {
			fprintf(stderr, "  case %s %s\n", t[i].gw, t[i].host);
		}
	}
	/* a gateway-bound VirtualService applies to the gateway, not the mesh */
	{
		struct l7fx_req rq = { .gateway = "istio-system/gwa" };
		const struct l7_gateway *g = &f.c->gateways[0];
		const struct l7_vhost *vh = l7_gateway_find_vhost(g, "www.foo.com", 11);
		struct l7_request_view v;

		l7fx_view(&f, &rq, &v);
		ASSERT_TRUE(l7_route_match(vh, &v, NULL, NULL) != NULL);
		v.gateway = NULL;
		ASSERT_TRUE(l7_route_match(vh, &v, NULL, NULL) == NULL);
		if (ASSERT_TRUE(vh->routes[0].pol->direct.set)) {
			ASSERT_EQ(vh->routes[0].pol->direct.status, 200);
			ASSERT_STREQ(vh->routes[0].pol->direct.body, "x");
		}
	}
out:
	l7fx_free(&f);
}
