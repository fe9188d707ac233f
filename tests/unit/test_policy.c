// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * policy loader: kinds, kubectl output, strict keys with exact positions,
 * wrong types, enums, warnings for unimplemented Istio fields, notes for
 * skipped kinds, file/directory loading.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <unistd.h>

#include "policy/policy.h"
#include "test.h"

#define DATA "tests/unit/data/policy"

static void dump_diags(const struct pol_set *s)
{
	char buf[512];

	for (size_t i = 0; i < s->n_diags; i++)
		fprintf(stderr, "    %s\n", policy_diag_format(&s->diags[i], buf,
							     sizeof(buf)));
}

static int load_str(struct pol_set *s, const char *yaml)
{
	return policy_load_buffer(s, "t.yaml", yaml, strlen(yaml));
}

/* First diagnostic of level lvl whose message contains sub, or NULL. */
static const struct pol_diag *find_diag(const struct pol_set *s,
					enum pol_diag_level lvl, const char *sub)
{
	for (size_t i = 0; i < s->n_diags; i++)
		if (s->diags[i].level == lvl && strstr(s->diags[i].msg, sub))
			return &s->diags[i];
	return NULL;
}

static size_t count_diags(const struct pol_set *s, enum pol_diag_level lvl,
			  const char *sub)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n_diags; i++)
		n += s->diags[i].level == lvl && strstr(s->diags[i].msg, sub);
	return n;
}

static uint32_t ip4(const char *s)
{
	struct in_addr a;

	inet_pton(AF_INET, s, &a);
	return a.s_addr;
}

#define DR_HEAD "apiVersion: networking.istio.io/v1\n"	/* 1 */	\
		"kind: DestinationRule\n"		/* 2 */	\
		"metadata:\n"				/* 3 */	\
		"  name: reviews\n"			/* 4 */	\
		"spec:\n"				/* 5 */	\
		"  host: reviews\n"			/* 6 */
#define VS_HEAD "apiVersion: networking.istio.io/v1beta1\n"	/* 1 */	\
		"kind: VirtualService\n"		/* 2 */	\
		"metadata:\n"				/* 3 */	\
		"  name: reviews\n"			/* 4 */	\
		"spec:\n"				/* 5 */	\
		"  hosts: [reviews]\n"			/* 6 */
#define SVC_HEAD "apiVersion: v1\n"			/* 1 */	\
		"kind: Service\n"			/* 2 */	\
		"metadata:\n"				/* 3 */	\
		"  name: web\n"				/* 4 */	\
		"spec:\n"				/* 5 */	\
		"  clusterIP: 10.96.0.9\n"		/* 6 */
#define POD_HEAD "apiVersion: v1\n"			/* 1 */	\
		"kind: Pod\n"				/* 2 */	\
		"metadata:\n"				/* 3 */	\
		"  name: p\n"				/* 4 */	\
		"spec:\n"				/* 5 */	\
		"  containers:\n"			/* 6 */	\
		"  - name: c\n"				/* 7 */

TEST(policy_kubectl_list)
{
	struct pol_set s;
	const struct pol_service *svc;
	const struct pol_pod *p;
	const struct pol_eps *e;
	int ret;

	policy_set_init(&s);
	ret = policy_load_path(&s, DATA "/kubectl-list.yaml");
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(s.n_errors, 0);
	ASSERT_EQ(s.n_warnings, 0);
	if (s.n_errors || s.n_warnings)
		dump_diags(&s);
	ASSERT_TRUE(find_diag(&s, POL_DIAG_NOTE, "skipping kind Deployment"));
	if (!ASSERT_EQ(s.n_svcs, 1) || !ASSERT_EQ(s.n_pods, 2) ||
	    !ASSERT_EQ(s.n_eps, 1))
		goto out;
	svc = &s.svcs[0];
	ASSERT_STREQ(svc->meta.name, "reviews");
	ASSERT_STREQ(svc->meta.ns, "default");
	ASSERT_STREQ(policy_label_get(&svc->meta.labels, "service"), "reviews");
	ASSERT_EQ(svc->cluster_ip, ip4("10.96.45.12"));
	ASSERT_FALSE(svc->headless);
	ASSERT_TRUE(svc->has_selector);
	ASSERT_STREQ(policy_label_get(&svc->selector, "app"), "reviews");
	if (ASSERT_EQ(svc->n_ports, 1)) {
		ASSERT_STREQ(svc->ports[0].name, "http");
		ASSERT_EQ(svc->ports[0].port, 9080);
		ASSERT_EQ(svc->ports[0].target_port, 9080);
		ASSERT_EQ(svc->ports[0].proto, IPPROTO_TCP);
		ASSERT_EQ(svc->ports[0].loc.line, 54);
		ASSERT_EQ(svc->ports[0].loc.col, 7);
	}
	/* loc of the object is its kind: key (line 4, inside items[0]). */
	ASSERT_EQ(svc->meta.loc.line, 4);
	ASSERT_EQ(svc->meta.loc.col, 3);

	p = &s.pods[0];
	ASSERT_STREQ(p->meta.name, "reviews-v1-5b5d6494f4-x7k2p");
	ASSERT_STREQ(policy_label_get(&p->meta.labels, "version"), "v1");
	ASSERT_EQ(p->ip, ip4("10.244.1.17"));
	ASSERT_TRUE(p->ready);
	ASSERT_FALSE(p->host_network);
	if (ASSERT_EQ(p->n_ports, 1)) {
		ASSERT_EQ(p->ports[0].port, 9080);
		ASSERT_STREQ(p->ports[0].name, "http");
	}
	p = &s.pods[1];
	ASSERT_EQ(p->ip, ip4("10.244.1.18"));
	ASSERT_FALSE(p->ready);

	e = &s.eps[0];
	ASSERT_STREQ(e->service_name, "reviews");
	if (ASSERT_EQ(e->n_endpoints, 2)) {
		ASSERT_EQ(e->endpoints[0].n_addrs, 1);
		ASSERT_EQ(e->endpoints[0].addrs[0], ip4("10.244.1.17"));
		ASSERT_TRUE(e->endpoints[0].ready);
		ASSERT_STREQ(e->endpoints[0].target_pod, "reviews-v1-5b5d6494f4-x7k2p");
		ASSERT_FALSE(e->endpoints[1].ready);
	}
	if (ASSERT_EQ(e->n_ports, 1)) {
		ASSERT_STREQ(e->ports[0].name, "http");
		ASSERT_EQ(e->ports[0].port, 9080);
	}
	ASSERT_EQ(policy_validate(&s), 0);
out:
	policy_set_free(&s);
}

TEST(policy_service_fields)
{
	static const char y[] =
		"apiVersion: v1\n"
		"kind: Service\n"
		"metadata: {name: multi, namespace: shop}\n"
		"spec:\n"
		"  clusterIP: 10.96.1.2\n"
		"  ports:\n"
		"  - {name: http, port: 80, targetPort: web, appProtocol: http}\n"
		"  - {name: dns, port: 53, protocol: UDP}\n"
		"  - {port: 8443, targetPort: 9443, nodePort: 30443}\n"
		"---\n"
		"apiVersion: v1\n"
		"kind: Service\n"
		"metadata: {name: hl}\n"
		"spec: {clusterIP: None, ports: [{port: 5432}], selector: {app: db}}\n"
		"---\n"
		"apiVersion: v1\n"
		"kind: Service\n"
		"metadata: {name: novip}\n"
		"spec: {ports: [{port: 1}]}\n";
	struct pol_set s;
	const struct pol_service *v;

	policy_set_init(&s);
	ASSERT_EQ(load_str(&s, y), 0);
	ASSERT_EQ(s.n_errors, 0);
	if (!ASSERT_EQ(s.n_svcs, 3))
		goto out;
	v = &s.svcs[0];
	ASSERT_STREQ(v->meta.ns, "shop");
	ASSERT_EQ(v->cluster_ip, ip4("10.96.1.2"));
	ASSERT_FALSE(v->has_selector);
	if (ASSERT_EQ(v->n_ports, 3)) {
		ASSERT_EQ(v->ports[0].target_port, 0);
		ASSERT_STREQ(v->ports[0].target_port_name, "web");
		ASSERT_STREQ(v->ports[0].app_protocol, "http");
		ASSERT_EQ(v->ports[1].proto, IPPROTO_UDP);
		ASSERT_EQ(v->ports[1].target_port, 0);
		ASSERT_TRUE(v->ports[2].name == NULL);
		ASSERT_EQ(v->ports[2].target_port, 9443);
	}
	v = &s.svcs[1];
	ASSERT_STREQ(v->meta.ns, "default");
	ASSERT_TRUE(v->headless);
	ASSERT_EQ(v->cluster_ip, 0);
	ASSERT_TRUE(v->has_selector);
	ASSERT_EQ(s.n_warnings, 1);
	ASSERT_TRUE(find_diag(&s, POL_DIAG_WARNING,
			      "Service novip has no clusterIP: not reachable through a VIP"));
out:
	policy_set_free(&s);
}

TEST(policy_multi_doc_and_empty)
{
	static const char y[] =
		"# leading comment\n"
		"---\n"
		"---\n"
		"apiVersion: v1\n"
		"kind: Pod\n"
		"metadata: {name: a, labels: {app: x}}\n"
		"spec: {hostNetwork: true, containers: [{name: c}]}\n"
		"status: {podIP: 10.1.0.5}\n"
		"---\n"
		"# only a comment\n"
		"---\n"
		"apiVersion: v1\n"
		"kind: List\n"
		"items:\n"
		"- apiVersion: v1\n"
		"  kind: Pod\n"
		"  metadata: {name: b}\n"
		"- apiVersion: v1\n"
		"  kind: ConfigMap\n"
		"  metadata: {name: cfg}\n"
		"  data: {k: v}\n"
		"---\n";
	struct pol_set s;

	policy_set_init(&s);
	ASSERT_EQ(load_str(&s, y), 0);
	ASSERT_EQ(s.n_errors, 0);
	if (ASSERT_EQ(s.n_pods, 2)) {
		ASSERT_TRUE(s.pods[0].host_network);
		ASSERT_EQ(s.pods[0].ip, ip4("10.1.0.5"));
		ASSERT_TRUE(s.pods[0].ready);	/* no conditions */
		ASSERT_STREQ(s.pods[1].meta.name, "b");
		ASSERT_TRUE(s.pods[1].ready);	/* no status at all */
		ASSERT_EQ(s.pods[1].ip, 0);
	}
	ASSERT_TRUE(find_diag(&s, POL_DIAG_NOTE, "skipping kind ConfigMap"));
	policy_set_free(&s);
}

TEST(policy_dr_fields)
{
	static const char y[] = DR_HEAD
		"  trafficPolicy:\n"
		"    loadBalancer:\n"
		"      consistentHash:\n"
		"        useSourceIp: true\n"
		"        maglev: {tableSize: 1021}\n"
		"    connectionPool:\n"
		"      tcp: {maxConnections: 100}\n"
		"    outlierDetection:\n"
		"      consecutive5xxErrors: 5\n"
		"      interval: 10s\n"
		"      baseEjectionTime: 30s\n"
		"      maxEjectionPercent: 50\n"
		"      minHealthPercent: 40\n"
		"    portLevelSettings:\n"
		"    - port: {number: 9080}\n"
		"      loadBalancer: {simple: RANDOM}\n"
		"      connectionPool: {tcp: {maxConnections: \"7\"}}\n"
		"  subsets:\n"
		"  - name: v1\n"
		"    labels: {version: v1}\n"
		"  - name: v2\n"
		"    labels: {version: v2}\n"
		"    trafficPolicy:\n"
		"      loadBalancer: {simple: LEAST_CONN}\n";
	struct pol_set s;
	const struct pol_dr *dr;

	policy_set_init(&s);
	ASSERT_EQ(load_str(&s, y), 0);
	ASSERT_EQ(s.n_errors, 0);
	if (s.n_errors)
		dump_diags(&s);
	if (!ASSERT_EQ(s.n_drs, 1))
		goto out;
	dr = &s.drs[0];
	ASSERT_STREQ(dr->host, "reviews");
	ASSERT_EQ(dr->host_loc.line, 6);
	ASSERT_EQ(dr->host_loc.col, 9);
	ASSERT_TRUE(dr->tp.set);
	ASSERT_EQ(dr->tp.lb.kind, POL_LB_CONSISTENT_HASH);
	ASSERT_EQ(dr->tp.lb.hash, POL_HASH_SOURCE_IP);
	ASSERT_EQ(dr->tp.lb.hash_table_size, 1021);
	ASSERT_FALSE(dr->tp.lb.ring_hash);
	ASSERT_EQ(dr->tp.max_connections, 100);
	ASSERT_EQ(dr->tp.min_health_percent, 40);
	ASSERT_TRUE(dr->tp.has_outlier);
	ASSERT_FALSE(dr->tp.has_http_pool);
	if (ASSERT_EQ(dr->tp.n_port_level, 1)) {
		const struct pol_port_tp *pl = &dr->tp.port_level[0];

		ASSERT_EQ(pl->port, 9080);
		ASSERT_EQ(pl->tp.lb.kind, POL_LB_RANDOM);
		/* protojson accepts quoted integers in Istio resources */
		ASSERT_EQ(pl->tp.max_connections, 7);
		ASSERT_EQ(pl->tp.min_health_percent, -1);
		ASSERT_EQ(pl->tp.n_port_level, 0);
	}
	if (ASSERT_EQ(dr->n_subsets, 2)) {
		ASSERT_STREQ(dr->subsets[0].name, "v1");
		ASSERT_FALSE(dr->subsets[0].tp.set);
		ASSERT_EQ(dr->subsets[0].tp.max_connections, -1);
		ASSERT_STREQ(policy_label_get(&dr->subsets[1].labels, "version"), "v2");
		ASSERT_TRUE(dr->subsets[1].tp.set);
		ASSERT_EQ(dr->subsets[1].tp.lb.kind, POL_LB_LEAST_CONN);
	}
	/* outlierDetection is implemented by the L7 agent: parsed, no warning */
	ASSERT_EQ(count_diags(&s, POL_DIAG_WARNING, "outlierDetection"), 0);
	ASSERT_EQ(dr->tp.outlier.consecutive_5xx, 5);
	ASSERT_EQ(dr->tp.outlier.consecutive_gateway, -1);
	ASSERT_EQ(dr->tp.outlier.interval_ms, 10000);
	ASSERT_EQ(dr->tp.outlier.base_ejection_ms, 30000);
	ASSERT_EQ(dr->tp.outlier.max_ejection_percent, 50);
	ASSERT_TRUE(dr->tp.has_pool);
	ASSERT_EQ(dr->tp.connect_timeout_ms, -1);
out:
	policy_set_free(&s);
}

TEST(policy_lb_simple_enum_table)
{
	static const struct { const char *v; int kind; bool err; } t[] = {
		{ "LEAST_REQUEST", POL_LB_LEAST_REQUEST, false },
		{ "LEAST_CONN", POL_LB_LEAST_CONN, false },
		{ "ROUND_ROBIN", POL_LB_ROUND_ROBIN, false },
		{ "RANDOM", POL_LB_RANDOM, false },
		{ "PASSTHROUGH", POL_LB_PASSTHROUGH, false },
		{ "UNSPECIFIED", POL_LB_UNSET, false },
		{ "round_robin", POL_LB_UNSET, true },
		{ "FASTEST", POL_LB_UNSET, true },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char y[512];
		struct pol_set s;

		snprintf(y, sizeof(y), DR_HEAD
			 "  trafficPolicy:\n"
			 "    loadBalancer:\n"
			 "      simple: %s\n", t[i].v);
		policy_set_init(&s);
		ASSERT_EQ(load_str(&s, y), t[i].err ? -EINVAL : 0);
		ASSERT_EQ(s.n_errors, t[i].err);
		if (s.n_drs)
			ASSERT_EQ(s.drs[0].tp.lb.kind, t[i].kind);
		if (t[i].err) {
			const struct pol_diag *d = find_diag(&s, POL_DIAG_ERROR,
							     "unknown load balancer");
			if (ASSERT_TRUE(d)) {
				ASSERT_EQ(d->loc.line, 9);
				ASSERT_EQ(d->loc.col, 15);
			}
		}
		policy_set_free(&s);
	}
}

TEST(policy_vs_tcp_and_http)
{
	static const char y[] = VS_HEAD
		"  tcp:\n"
		"  - match:\n"
		"    - port: 9080\n"
		"      sourceLabels: {app: productpage}\n"
		"      sourceNamespace: front\n"
		"      gateways: [mesh]\n"
		"    route:\n"
		"    - destination: {host: reviews, subset: v1, port: {number: 9080}}\n"
		"      weight: 75\n"
		"    - destination: {host: reviews.default.svc.cluster.local, subset: v2}\n"
		"      weight: 25\n"
		"  - route:\n"
		"    - destination: {host: reviews}\n"
		"  http:\n"
		"  - match:\n"
		"    - headers: {end-user: {exact: jason}, x-any: {}}\n"
		"      uri: {prefix: /api}\n"
		"    route:\n"
		"    - destination: {host: reviews, subset: v2}\n"
		"    timeout: 2s\n"
		"    retries: {attempts: 3, perTryTimeout: 1s, retryOn: 5xx}\n"
		"  - route:\n"
		"    - destination: {host: reviews, subset: v1}\n"
		"    mirror: {host: reviews, subset: v3}\n";
	struct pol_set s;
	const struct pol_vs *vs;
	const struct pol_tcp_route *r;

	policy_set_init(&s);
	ASSERT_EQ(load_str(&s, y), 0);
	ASSERT_EQ(s.n_errors, 0);
	if (s.n_errors)
		dump_diags(&s);
	if (!ASSERT_EQ(s.n_vss, 1))
		goto out;
	vs = &s.vss[0];
	if (ASSERT_EQ(vs->n_hosts, 1))
		ASSERT_STREQ(vs->hosts[0], "reviews");
	ASSERT_EQ(vs->n_gateways, 0);
	ASSERT_EQ(vs->n_http, 2);
	ASSERT_EQ(vs->n_tls, 0);
	ASSERT_EQ(vs->n_http_dests, 3);
	if (!ASSERT_EQ(vs->n_tcp, 2))
		goto out;
	r = &vs->tcp[0];
	if (ASSERT_EQ(r->n_match, 1)) {
		ASSERT_EQ(r->match[0].port, 9080);
		ASSERT_STREQ(r->match[0].source_namespace, "front");
		ASSERT_STREQ(policy_label_get(&r->match[0].source_labels, "app"),
			     "productpage");
		ASSERT_EQ(r->match[0].n_gateways, 1);
	}
	if (ASSERT_EQ(r->n_route, 2)) {
		ASSERT_STREQ(r->route[0].dest.host, "reviews");
		ASSERT_STREQ(r->route[0].dest.subset, "v1");
		ASSERT_EQ(r->route[0].dest.port, 9080);
		ASSERT_EQ(r->route[0].weight, 75);
		ASSERT_EQ(r->route[1].weight, 25);
		ASSERT_EQ(r->route[1].dest.port, 0);
		ASSERT_EQ(r->route[0].dest.loc.line, 14);
	}
	if (ASSERT_EQ(vs->tcp[1].n_route, 1)) {
		ASSERT_EQ(vs->tcp[1].route[0].weight, -1);
		ASSERT_TRUE(vs->tcp[1].route[0].dest.subset == NULL);
	}
	/* http routes are implemented by the L7 agent: parsed, no warning */
	ASSERT_EQ(s.n_warnings, 0);
	if (vs->http && ASSERT_EQ(vs->http[0].n_match, 1)) {
		const struct pol_http_match *m = &vs->http[0].match[0];

		ASSERT_EQ(m->uri.kind, POL_SM_PREFIX);
		ASSERT_STREQ(m->uri.value, "/api");
		if (ASSERT_EQ(m->n_headers, 2)) {
			ASSERT_STREQ(m->headers[0].name, "end-user");
			ASSERT_EQ(m->headers[0].m.kind, POL_SM_EXACT);
			ASSERT_STREQ(m->headers[0].m.value, "jason");
			ASSERT_EQ(m->headers[1].m.kind, POL_SM_PRESENT);
		}
		ASSERT_EQ(vs->http[0].timeout_ms, 2000);
		ASSERT_TRUE(vs->http[0].retries.set);
		ASSERT_EQ(vs->http[0].retries.attempts, 3);
		ASSERT_EQ(vs->http[0].retries.per_try_timeout_ms, 1000);
		ASSERT_STREQ(vs->http[0].retries.retry_on, "5xx");
		ASSERT_EQ(vs->http[1].n_mirrors, 1);
	}
out:
	policy_set_free(&s);
}

TEST(policy_gateway)
{
	static const char y[] =
		"apiVersion: networking.istio.io/v1alpha3\n"
		"kind: Gateway\n"
		"metadata: {name: gw, namespace: istio-system}\n"
		"spec:\n"
		"  selector: {istio: ingressgateway}\n"
		"  servers:\n"
		"  - port: {number: 443, name: https, protocol: HTTPS}\n"
		"    hosts: ['*.example.com']\n"
		"    tls: {mode: SIMPLE, credentialName: cert, minProtocolVersion: TLSV1_2}\n";
	struct pol_set s;

	policy_set_init(&s);
	ASSERT_EQ(load_str(&s, y), 0);
	if (ASSERT_EQ(s.n_gws, 1)) {
		ASSERT_STREQ(s.gws[0].meta.ns, "istio-system");
		ASSERT_STREQ(policy_label_get(&s.gws[0].selector, "istio"),
			     "ingressgateway");
	}
	ASSERT_TRUE(find_diag(&s, POL_DIAG_WARNING, "Gateway gw"));
	policy_set_free(&s);
}

TEST(policy_eps_fields)
{
	static const char y[] =
		"apiVersion: discovery.k8s.io/v1\n"
		"kind: EndpointSlice\n"
		"metadata:\n"
		"  name: ext-1\n"
		"  labels: {kubernetes.io/service-name: ext}\n"
		"addressType: IPv4\n"
		"endpoints:\n"
		"- addresses: [10.0.0.1, 10.0.0.2]\n"
		"- addresses: [10.0.0.3]\n"
		"  conditions: {ready: false}\n"
		"ports:\n"
		"- {name: '', port: 8080, protocol: TCP}\n"
		"---\n"
		"apiVersion: discovery.k8s.io/v1\n"
		"kind: EndpointSlice\n"
		"metadata:\n"
		"  name: ext-2\n"
		"  labels: {kubernetes.io/service-name: ext}\n"
		"addressType: IPv6\n"
		"endpoints:\n"
		"- addresses: ['fd00::1']\n";
	struct pol_set s;

	policy_set_init(&s);
	ASSERT_EQ(load_str(&s, y), 0);
	if (!ASSERT_EQ(s.n_eps, 2))
		goto out;
	ASSERT_STREQ(s.eps[0].service_name, "ext");
	if (ASSERT_EQ(s.eps[0].n_endpoints, 2)) {
		ASSERT_EQ(s.eps[0].endpoints[0].n_addrs, 2);
		ASSERT_EQ(s.eps[0].endpoints[0].addrs[1], ip4("10.0.0.2"));
		ASSERT_TRUE(s.eps[0].endpoints[0].ready);
		ASSERT_FALSE(s.eps[0].endpoints[1].ready);
		ASSERT_TRUE(s.eps[0].endpoints[0].target_pod == NULL);
	}
	if (ASSERT_EQ(s.eps[0].n_ports, 1)) {
		ASSERT_TRUE(s.eps[0].ports[0].name == NULL);
		ASSERT_EQ(s.eps[0].ports[0].port, 8080);
	}
	ASSERT_EQ(s.eps[1].n_endpoints, 0);
	ASSERT_TRUE(find_diag(&s, POL_DIAG_NOTE, "addressType IPv6"));
out:
	policy_set_free(&s);
}

/* ---- errors with exact positions ---- */

struct diag_case {
	const char *desc;
	const char *yaml;
	enum pol_diag_level level;
	const char *msg;	/* substring */
	uint32_t line, col;
};

static void run_diag_cases(const struct diag_case *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct pol_set s;
		const struct pol_diag *d;
		int ret;

		policy_set_init(&s);
		ret = load_str(&s, t[i].yaml);
		if (t[i].level == POL_DIAG_ERROR)
			ASSERT_EQ(ret, -EINVAL);
		d = find_diag(&s, t[i].level, t[i].msg);
		if (!ASSERT_TRUE(d)) {
			fprintf(stderr, "  case \"%s\": got:\n", t[i].desc);
			dump_diags(&s);
		} else if (!ASSERT_EQ(d->loc.line, t[i].line) ||
			   !ASSERT_EQ(d->loc.col, t[i].col)) {
			fprintf(stderr, "  case \"%s\"\n", t[i].desc);
		}
		policy_set_free(&s);
	}
}

TEST(policy_unknown_field_positions)
{
	static const struct diag_case t[] = {
		{ "subset labels typo", DR_HEAD
		  "  subsets:\n"
		  "  - name: v1\n"
		  "    lables:\n"
		  "      version: v1\n",
		  POL_DIAG_ERROR,
		  "unknown field \"lables\" in DestinationRule.spec.subsets[0] (typo? did you mean \"labels\")",
		  9, 5 },
		{ "subset key in DR spec", DR_HEAD
		  "  subset:\n"
		  "  - name: v1\n",
		  POL_DIAG_ERROR,
		  "unknown field \"subset\" in DestinationRule.spec (typo? did you mean \"subsets\")",
		  7, 3 },
		{ "loadBalancer typo", DR_HEAD
		  "  trafficPolicy:\n"
		  "    loadBalancer:\n"
		  "      simpel: RANDOM\n",
		  POL_DIAG_ERROR,
		  "unknown field \"simpel\" in DestinationRule.spec.trafficPolicy.loadBalancer",
		  9, 7 },
		{ "connectionPool.tcp typo", DR_HEAD
		  "  trafficPolicy:\n"
		  "    connectionPool:\n"
		  "      tcp: {maxConnection: 5}\n",
		  POL_DIAG_ERROR,
		  "unknown field \"maxConnection\" in DestinationRule.spec.trafficPolicy.connectionPool.tcp",
		  9, 13 },
		{ "portLevelSettings typo", DR_HEAD
		  "  trafficPolicy:\n"
		  "    portLevelSettings:\n"
		  "    - port: {number: 80}\n"
		  "      portLevelSettings: []\n",
		  POL_DIAG_ERROR,
		  "unknown field \"portLevelSettings\" in DestinationRule.spec.trafficPolicy.portLevelSettings[0]",
		  10, 7 },
		{ "http match typo", VS_HEAD
		  "  http:\n"
		  "  - match:\n"
		  "    - urii: {prefix: /}\n"
		  "    route:\n"
		  "    - destination: {host: reviews}\n",
		  POL_DIAG_ERROR,
		  "unknown field \"urii\" in VirtualService.spec.http[0].match[0]",
		  9, 7 },
		{ "string match typo", VS_HEAD
		  "  http:\n"
		  "  - match:\n"
		  "    - uri:\n"
		  "        prefx: /api\n"
		  "    route:\n"
		  "    - destination: {host: reviews}\n",
		  POL_DIAG_ERROR,
		  "unknown field \"prefx\" in VirtualService.spec.http[0].match[0].uri",
		  10, 9 },
		{ "destination typo", VS_HEAD
		  "  http:\n"
		  "  - route:\n"
		  "    - destination:\n"
		  "        host: reviews\n"
		  "        subst: v1\n",
		  POL_DIAG_ERROR,
		  "unknown field \"subst\" in VirtualService.spec.http[0].route[0].destination",
		  11, 9 },
		{ "tcp route typo", VS_HEAD
		  "  tcp:\n"
		  "  - routes:\n"
		  "    - destination: {host: reviews}\n",
		  POL_DIAG_ERROR,
		  "unknown field \"routes\" in VirtualService.spec.tcp[0]",
		  8, 5 },
		{ "Service port typo", SVC_HEAD
		  "  ports:\n"
		  "  - port: 80\n"
		  "    targetport: 8080\n",
		  POL_DIAG_ERROR,
		  "unknown field \"targetport\" in Service.spec.ports[0]",
		  9, 5 },
		{ "Pod container port typo", POD_HEAD
		  "    ports:\n"
		  "    - containerport: 80\n",
		  POL_DIAG_ERROR,
		  "unknown field \"containerport\" in Pod.spec.containers[0].ports[0]",
		  9, 7 },
		{ "duplicate key", DR_HEAD
		  "  host: ratings\n",
		  POL_DIAG_ERROR, "duplicate field \"host\" in DestinationRule.spec",
		  7, 3 },
	};

	run_diag_cases(t, sizeof(t) / sizeof(t[0]));
}

TEST(policy_lenient_outside_read_parts)
{
	static const char y[] =
		"apiVersion: v1\n"
		"kind: Service\n"
		"metadata:\n"
		"  name: web\n"
		"  anyFutureField: {x: 1}\n"
		"  managedFields: [{manager: kubectl, fieldsV1: {f:spec: {}}}]\n"
		"spec:\n"
		"  clusterIP: 10.96.0.9\n"
		"  someNewSpecField: true\n"
		"  ports: [{port: 80}]\n"
		"status: {whatever: [1, 2]}\n"
		"---\n"
		POD_HEAD
		"    image: nginx\n"
		"    securityContext: {runAsUser: 1000}\n"
		"  newPodField: 3\n"
		"status: {phase: Running, podIP: 10.1.1.1, futureStatus: x}\n";
	struct pol_set s;

	policy_set_init(&s);
	ASSERT_EQ(load_str(&s, y), 0);
	ASSERT_EQ(s.n_errors, 0);
	ASSERT_EQ(s.n_warnings, 0);
	if (s.n_errors || s.n_warnings)
		dump_diags(&s);
	policy_set_free(&s);
}

TEST(policy_wrong_types)
{
	static const struct diag_case t[] = {
		{ "maxConnections string", DR_HEAD
		  "  trafficPolicy:\n"
		  "    connectionPool:\n"
		  "      tcp:\n"
		  "        maxConnections: lots\n",
		  POL_DIAG_ERROR,
		  "DestinationRule.spec.trafficPolicy.connectionPool.tcp.maxConnections: expected an integer, got \"lots\"",
		  10, 25 },
		{ "quoted Service port", SVC_HEAD
		  "  ports:\n"
		  "  - port: \"80\"\n",
		  POL_DIAG_ERROR,
		  "Service.spec.ports[0].port: expected an integer, got string \"80\"",
		  8, 11 },
		{ "subsets is a mapping", DR_HEAD
		  "  subsets:\n"
		  "    name: v1\n",
		  POL_DIAG_ERROR,
		  "DestinationRule.spec.subsets: expected a list, got a mapping",
		  8, 5 },
		{ "hosts is a string", "apiVersion: networking.istio.io/v1\n"
		  "kind: VirtualService\n"
		  "metadata: {name: r}\n"
		  "spec:\n"
		  "  hosts: reviews\n",
		  POL_DIAG_ERROR,
		  "VirtualService.spec.hosts: expected a list, got a string",
		  5, 10 },
		{ "hostNetwork string", "apiVersion: v1\n"
		  "kind: Pod\n"
		  "metadata: {name: p}\n"
		  "spec:\n"
		  "  hostNetwork: \"yes\"\n",
		  POL_DIAG_ERROR,
		  "Pod.spec.hostNetwork: expected true or false, got \"yes\"",
		  5, 16 },
		{ "weight not a number", VS_HEAD
		  "  tcp:\n"
		  "  - route:\n"
		  "    - destination: {host: reviews}\n"
		  "      weight: half\n",
		  POL_DIAG_ERROR,
		  "VirtualService.spec.tcp[0].route[0].weight: expected an integer",
		  10, 15 },
		{ "port out of range", SVC_HEAD
		  "  ports:\n"
		  "  - port: 70000\n",
		  POL_DIAG_ERROR,
		  "Service.spec.ports[0].port: 70000 out of range [1, 65535]",
		  8, 11 },
		{ "bad duration", DR_HEAD
		  "  trafficPolicy:\n"
		  "    outlierDetection: {interval: 10 seconds}\n",
		  POL_DIAG_ERROR, "invalid duration \"10 seconds\"", 8, 34 },
		{ "bad clusterIP", "apiVersion: v1\n"
		  "kind: Service\n"
		  "metadata: {name: w}\n"
		  "spec: {clusterIP: 10.96.0.300}\n",
		  POL_DIAG_ERROR, "\"10.96.0.300\" is not an IPv4 address", 4, 19 },
		{ "bad protocol", SVC_HEAD
		  "  ports: [{port: 80, protocol: tcp}]\n",
		  POL_DIAG_ERROR, "unknown protocol \"tcp\"", 7, 32 },
		{ "YAML syntax", "apiVersion: v1\n"
		  "kind: Service\n"
		  "metadata: {name: [}\n",
		  POL_DIAG_ERROR, "YAML syntax", 3, 19 },
		{ "missing kind", "apiVersion: v1\n"
		  "metadata: {name: x}\n",
		  POL_DIAG_ERROR, "missing kind", 1, 1 },
		{ "not an object", "- a\n- b\n",
		  POL_DIAG_ERROR, "expected a Kubernetes object", 1, 1 },
		{ "missing name", "apiVersion: v1\n"
		  "kind: Service\n"
		  "metadata: {namespace: x}\n",
		  POL_DIAG_ERROR, "Service: missing metadata.name", 3, 11 },
	};

	run_diag_cases(t, sizeof(t) / sizeof(t[0]));
}

TEST(policy_invalid_values)
{
	static const struct diag_case t[] = {
		{ "negative maxConnections", DR_HEAD
		  "  trafficPolicy:\n"
		  "    connectionPool: {tcp: {maxConnections: -1}}\n",
		  POL_DIAG_ERROR, "maxConnections: must be >= 0, got -1", 8, 44 },
		{ "minHealthPercent > 100", DR_HEAD
		  "  trafficPolicy:\n"
		  "    outlierDetection: {minHealthPercent: 101}\n",
		  POL_DIAG_ERROR, "minHealthPercent: 101 out of range [0, 100]", 8, 42 },
		{ "duplicate subset", DR_HEAD
		  "  subsets:\n"
		  "  - name: v1\n"
		  "  - name: v1\n",
		  POL_DIAG_ERROR, "duplicate subset name \"v1\"", 9, 11 },
		{ "subset without name", DR_HEAD
		  "  subsets:\n"
		  "  - labels: {version: v1}\n",
		  POL_DIAG_ERROR, "subset without name", 8, 5 },
		{ "simple and consistentHash", DR_HEAD
		  "  trafficPolicy:\n"
		  "    loadBalancer:\n"
		  "      simple: RANDOM\n"
		  "      consistentHash: {useSourceIp: true}\n",
		  POL_DIAG_ERROR, "mutually exclusive", 10, 23 },
		{ "consistentHash without key", DR_HEAD
		  "  trafficPolicy:\n"
		  "    loadBalancer:\n"
		  "      consistentHash: {maglev: {tableSize: 7}}\n",
		  POL_DIAG_ERROR, "needs exactly one of useSourceIp", 9, 23 },
		{ "unknown tls mode", DR_HEAD
		  "  trafficPolicy:\n"
		  "    tls: {mode: STRICT}\n",
		  POL_DIAG_ERROR, "unknown TLS mode \"STRICT\"", 8, 17 },
		{ "negative weight", VS_HEAD
		  "  tcp:\n"
		  "  - route:\n"
		  "    - destination: {host: reviews}\n"
		  "      weight: -5\n",
		  POL_DIAG_ERROR, "weight must be >= 0, got -5", 10, 15 },
		{ "weights sum to 0", VS_HEAD
		  "  tcp:\n"
		  "  - route:\n"
		  "    - destination: {host: reviews, subset: a}\n"
		  "    - destination: {host: reviews, subset: b}\n"
		  "      weight: 0\n",
		  POL_DIAG_ERROR, "weights of 2 destinations sum to 0", 9, 5 },
		{ "weights not 100", VS_HEAD
		  "  tcp:\n"
		  "  - route:\n"
		  "    - destination: {host: reviews, subset: a}\n"
		  "      weight: 1\n"
		  "    - destination: {host: reviews, subset: b}\n"
		  "      weight: 2\n",
		  POL_DIAG_WARNING, "weights sum to 3, not 100", 9, 5 },
		{ "tcp route without destination", VS_HEAD
		  "  tcp:\n"
		  "  - match: [{port: 1}]\n",
		  POL_DIAG_ERROR, "tcp route needs at least one destination", 8, 5 },
		{ "duplicate port level", DR_HEAD
		  "  trafficPolicy:\n"
		  "    portLevelSettings:\n"
		  "    - port: {number: 80}\n"
		  "    - port: {number: 80}\n",
		  POL_DIAG_ERROR, "port 80 already has settings", 10, 13 },
		{ "unsupported Istio version", "apiVersion: networking.istio.io/v2\n"
		  "kind: DestinationRule\n"
		  "metadata: {name: x}\n",
		  POL_DIAG_ERROR,
		  "unsupported apiVersion \"networking.istio.io/v2\" for kind DestinationRule",
		  1, 13 },
		{ "Service in apps group", "apiVersion: apps/v1\n"
		  "kind: Service\n"
		  "metadata: {name: x}\n",
		  POL_DIAG_ERROR, "unsupported apiVersion \"apps/v1\" for kind Service",
		  1, 13 },
	};

	run_diag_cases(t, sizeof(t) / sizeof(t[0]));
}

TEST(policy_unimplemented_warnings)
{
	static const struct diag_case t[] = {
		{ "mTLS", DR_HEAD
		  "  trafficPolicy:\n"
		  "    tls:\n"
		  "      mode: ISTIO_MUTUAL\n",
		  POL_DIAG_WARNING,
		  "DestinationRule reviews: spec.trafficPolicy.tls (mode ISTIO_MUTUAL) is not implemented",
		  8, 5 },
		{ "locality", DR_HEAD
		  "  trafficPolicy:\n"
		  "    loadBalancer:\n"
		  "      simple: RANDOM\n"
		  "      localityLbSetting: {enabled: true}\n",
		  POL_DIAG_WARNING, "loadBalancer.localityLbSetting is not implemented", 10, 7 },
		{ "warmup", DR_HEAD
		  "  trafficPolicy:\n"
		  "    loadBalancer:\n"
		  "      simple: ROUND_ROBIN\n"
		  "      warmupDurationSecs: 60s\n",
		  POL_DIAG_WARNING, "loadBalancer.warmupDurationSecs is not implemented", 10, 7 },
		{ "tcp idleTimeout", DR_HEAD
		  "  trafficPolicy:\n"
		  "    connectionPool:\n"
		  "      tcp:\n"
		  "        idleTimeout: 30ms\n",
		  POL_DIAG_WARNING, "connectionPool.tcp.idleTimeout is not implemented", 10, 9 },
		{ "cookie attributes", DR_HEAD
		  "  trafficPolicy:\n"
		  "    loadBalancer:\n"
		  "      consistentHash: {httpCookie: {name: u, attributes: [{name: SameSite, value: Lax}]}}\n",
		  POL_DIAG_WARNING, "httpCookie.attributes is not implemented", 9, 46 },
		{ "VS delegate", VS_HEAD
		  "  http:\n"
		  "  - delegate: {name: r}\n",
		  POL_DIAG_WARNING, "http[0].delegate is not implemented", 8, 5 },
		{ "VS without hosts (a delegate)", "apiVersion: networking.istio.io/v1\n"
		  "kind: VirtualService\n"
		  "metadata: {name: leaf}\n"
		  "spec:\n"
		  "  http:\n"
		  "  - route: [{destination: {host: reviews}}]\n",
		  POL_DIAG_WARNING, "no hosts: a delegate VirtualService", 5, 3 },
		{ "gateway TLS", "apiVersion: networking.istio.io/v1\n"
		  "kind: Gateway\n"
		  "metadata: {name: gw}\n"
		  "spec:\n"
		  "  servers:\n"
		  "  - port: {number: 443, name: https, protocol: HTTPS}\n"
		  "    hosts: ['*']\n"
		  "    tls: {mode: SIMPLE}\n",
		  POL_DIAG_WARNING, "servers[0].tls is not implemented by sockmesh (plain HTTP", 8, 5 },
		{ "DR exportTo", DR_HEAD
		  "  exportTo: [\".\"]\n",
		  POL_DIAG_WARNING, "DestinationRule reviews: spec.exportTo is not implemented", 7, 3 },
		{ "workloadSelector", DR_HEAD
		  "  workloadSelector: {matchLabels: {app: a}}\n",
		  POL_DIAG_WARNING, "spec.workloadSelector is not implemented", 7, 3 },
		{ "VS tls routes", VS_HEAD
		  "  tls:\n"
		  "  - match: [{sniHosts: [a.example.com], port: 443}]\n"
		  "    route: [{destination: {host: reviews}}]\n",
		  POL_DIAG_WARNING, "VirtualService reviews: tls routes are not implemented", 7, 3 },
		{ "VS exportTo", VS_HEAD
		  "  exportTo: ['*']\n",
		  POL_DIAG_WARNING, "VirtualService reviews: spec.exportTo is not implemented", 7, 3 },
		{ "ServiceEntry", "apiVersion: networking.istio.io/v1\n"
		  "kind: ServiceEntry\n"
		  "metadata: {name: x}\n",
		  POL_DIAG_WARNING,
		  "kind ServiceEntry (networking.istio.io/v1) is not implemented by sockmesh", 2, 1 },
		{ "PeerAuthentication", "apiVersion: security.istio.io/v1\n"
		  "kind: PeerAuthentication\n"
		  "metadata: {name: x}\n",
		  POL_DIAG_WARNING, "kind PeerAuthentication", 2, 1 },
		{ "Gateway API", "apiVersion: gateway.networking.k8s.io/v1\n"
		  "kind: Gateway\n"
		  "metadata: {name: x}\n",
		  POL_DIAG_WARNING, "kind Gateway (gateway.networking.k8s.io/v1)", 2, 1 },
		{ "Deployment", "apiVersion: apps/v1\n"
		  "kind: Deployment\n"
		  "metadata: {name: x}\n",
		  POL_DIAG_NOTE, "skipping kind Deployment (not used by sockmesh)", 2, 1 },
		{ "ServiceAccount", "apiVersion: v1\nkind: ServiceAccount\n",
		  POL_DIAG_NOTE, "skipping kind ServiceAccount", 2, 1 },
		{ "ConfigMap", "apiVersion: v1\nkind: ConfigMap\n",
		  POL_DIAG_NOTE, "skipping kind ConfigMap", 2, 1 },
	};

	run_diag_cases(t, sizeof(t) / sizeof(t[0]));
}

TEST(policy_load_dir_sorted)
{
	struct pol_set s;

	policy_set_init(&s);
	ASSERT_EQ(policy_load_path(&s, DATA "/dir"), 0);
	ASSERT_EQ(s.n_errors, 0);
	if (ASSERT_EQ(s.n_files, 2)) {
		ASSERT_STREQ(s.files[0], DATA "/dir/10-svc.yaml");
		ASSERT_STREQ(s.files[1], DATA "/dir/20-dr.yml");
	}
	ASSERT_EQ(s.n_svcs, 1);
	if (ASSERT_EQ(s.n_drs, 1)) {
		ASSERT_EQ(s.drs[0].tp.lb.kind, POL_LB_ROUND_ROBIN);
		ASSERT_STREQ(s.drs[0].meta.loc.file, DATA "/dir/20-dr.yml");
	}
	ASSERT_EQ(policy_validate(&s), 0);
	ASSERT_EQ(s.n_warnings, 0);
	if (s.n_warnings)
		dump_diags(&s);
	policy_set_free(&s);
}

TEST(policy_load_missing_file)
{
	struct pol_set s;
	char buf[512];

	policy_set_init(&s);
	ASSERT_EQ(policy_load_path(&s, DATA "/does-not-exist.yaml"), -ENOENT);
	ASSERT_EQ(s.n_errors, 1);
	if (ASSERT_EQ(s.n_diags, 1))
		ASSERT_STREQ(policy_diag_format(&s.diags[0], buf, sizeof(buf)),
			     DATA "/does-not-exist.yaml: error: cannot read: No such file or directory");
	ASSERT_EQ(policy_validate(&s), -EINVAL);
	policy_set_free(&s);
}

TEST(policy_diag_format_levels)
{
	static const struct {
		enum pol_diag_level lvl;
		uint32_t line, col;
		const char *want;
	} t[] = {
		{ POL_DIAG_ERROR, 3, 7, "a.yaml:3:7: error: boom" },
		{ POL_DIAG_WARNING, 1, 1, "a.yaml:1:1: warning: boom" },
		{ POL_DIAG_NOTE, 12, 30, "a.yaml:12:30: note: boom" },
		{ POL_DIAG_ERROR, 0, 0, "a.yaml: error: boom" },
	};
	char buf[128];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct pol_diag d = { .level = t[i].lvl,
				      .loc = { "a.yaml", t[i].line, t[i].col } };

		strcpy(d.msg, "boom");
		ASSERT_STREQ(policy_diag_format(&d, buf, sizeof(buf)), t[i].want);
	}
	/* truncation keeps a terminated string */
	{
		struct pol_diag d = { .loc = { "a.yaml", 1, 1 } };

		strcpy(d.msg, "long message");
		ASSERT_STREQ(policy_diag_format(&d, buf, 8), "a.yaml:");
	}
}

TEST(policy_labels_helpers)
{
	struct pol_kv sel_kv[] = { { "app", "reviews" }, { "version", "v1" } };
	struct pol_kv lab_kv[] = { { "version", "v1" }, { "app", "reviews" },
				   { "extra", "x" } };
	struct pol_kv bad_kv[] = { { "app", "reviews" }, { "version", "v2" } };
	struct pol_labels sel = { sel_kv, 2 }, lab = { lab_kv, 3 },
			  bad = { bad_kv, 2 }, empty = { NULL, 0 };

	ASSERT_TRUE(policy_labels_match(&sel, &lab));
	ASSERT_FALSE(policy_labels_match(&sel, &bad));
	ASSERT_FALSE(policy_labels_match(&sel, &empty));
	ASSERT_TRUE(policy_labels_match(&empty, &lab));
	ASSERT_STREQ(policy_label_get(&lab, "extra"), "x");
	ASSERT_TRUE(policy_label_get(&lab, "missing") == NULL);
}

TEST(policy_load_empty_dir_and_typed_list)
{
	static const char y[] =
		"apiVersion: v1\n"
		"kind: ServiceList\n"
		"items:\n"
		"- metadata: {name: a}\n"
		"  spec: {clusterIP: 10.96.3.1, ports: [{port: 80}]}\n"
		"  apiVersion: v1\n"
		"  kind: Service\n";
	char dir[] = "/tmp/sm_policy_XXXXXX";
	struct pol_set s;

	policy_set_init(&s);
	if (ASSERT_TRUE(mkdtemp(dir))) {
		ASSERT_EQ(policy_load_path(&s, dir), 0);
		ASSERT_TRUE(find_diag(&s, POL_DIAG_WARNING, "no *.yaml or *.yml files"));
		rmdir(dir);
	}
	ASSERT_EQ(load_str(&s, y), 0);
	if (ASSERT_EQ(s.n_svcs, 1))
		ASSERT_EQ(s.svcs[0].meta.loc.line, 7);
	ASSERT_EQ(s.n_errors, 0);
	policy_set_free(&s);
}
