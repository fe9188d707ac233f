// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * l7_config_build: which ports are L7 and why, clusters and their
 * DestinationRule L7 policy (Istio defaults, subset / portLevelSettings
 * inheritance), route fields (retries, faults, mirrors, CORS, headers,
 * redirects), regex errors with file:line:col, lookups, reference counts,
 * and Istio's own bookinfo samples.
 */
#include <pthread.h>

#include "test_l7_fixture.h"

/* ---- which ports become L7 ---- */

#define SVC(name, ip, ports)						\
	"---\napiVersion: v1\nkind: Service\n"				\
	"metadata: {name: " name ", namespace: default}\n"		\
	"spec: {clusterIP: " ip ", selector: {app: " name "}, ports: " ports "}\n"

static const char decide_yaml[] =
	SVC("s-http", "10.96.1.1", "[{name: http, port: 80}]")
	SVC("s-http-api", "10.96.1.2", "[{name: http-api, port: 80}]")
	SVC("s-upper", "10.96.1.3", "[{name: Http, port: 80}]")
	SVC("s-grpc", "10.96.1.4", "[{name: grpc-web, port: 80}]")
	SVC("s-http2", "10.96.1.5", "[{name: http2, port: 80}]")
	SVC("s-app", "10.96.1.6", "[{name: web, port: 80, appProtocol: http}]")
	SVC("s-h2c", "10.96.1.7", "[{port: 80, appProtocol: kubernetes.io/h2c}]")
	SVC("s-appother", "10.96.1.8", "[{name: http, port: 80, appProtocol: tcp}]")
	SVC("s-appunknown", "10.96.1.9", "[{name: http, port: 80, appProtocol: foo}]")
	SVC("s-tcp", "10.96.2.1", "[{name: tcp-http, port: 80}]")
	SVC("s-httpx", "10.96.2.2", "[{name: httpx, port: 80}]")
	SVC("s-none", "10.96.2.3", "[{port: 80}]")
	SVC("s-https", "10.96.2.4", "[{name: https, port: 80}]")
	SVC("s-vs", "10.96.3.1", "[{port: 80}]")
	SVC("s-vs-tcp", "10.96.3.2", "[{name: tcp, port: 80}]")
	SVC("s-vs-gw", "10.96.3.3", "[{port: 80}]")
	SVC("s-vs-port", "10.96.3.4", "[{name: a, port: 80}, {name: b, port: 81}]")
	SVC("s-vs-tcponly", "10.96.3.5", "[{port: 80}]")
	SVC("s-dr-od", "10.96.4.1", "[{port: 80}]")
	SVC("s-dr-pool", "10.96.4.2", "[{port: 80}]")
	SVC("s-dr-port", "10.96.4.3", "[{name: a, port: 80}, {name: b, port: 81}]")
	SVC("s-dr-tcp", "10.96.4.4", "[{port: 80}]")
	SVC("s-grpc-vs", "10.96.5.1", "[{name: grpc, port: 80}]")
	SVC("s-app-grpc", "10.96.5.2", "[{name: http, port: 80, appProtocol: grpc}]")
	SVC("s-h2-dr", "10.96.5.3", "[{name: http2-api, port: 80}]")
	"---\napiVersion: networking.istio.io/v1\nkind: VirtualService\n"
	"metadata: {name: s-vs}\nspec:\n  hosts: [s-vs, s-vs-tcp]\n"
	"  http: [{route: [{destination: {host: s-vs}}]}]\n"
	"---\napiVersion: networking.istio.io/v1\nkind: VirtualService\n"
	"metadata: {name: s-vs-gw}\nspec:\n  hosts: [s-vs-gw]\n  gateways: [gw]\n"
	"  http: [{route: [{destination: {host: s-vs-gw}}]}]\n"
	"---\napiVersion: networking.istio.io/v1\nkind: VirtualService\n"
	"metadata: {name: s-vs-port}\nspec:\n  hosts: [s-vs-port.default.svc.cluster.local]\n"
	"  http: [{match: [{port: 81}], route: [{destination: {host: s-vs-port, port: {number: 81}}}]}]\n"
	"---\napiVersion: networking.istio.io/v1\nkind: VirtualService\n"
	"metadata: {name: s-vs-tcponly}\nspec:\n  hosts: [s-vs-tcponly]\n"
	"  tcp: [{route: [{destination: {host: s-vs-tcponly}}]}]\n"
	"---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
	"metadata: {name: s-dr-od}\nspec:\n  host: s-dr-od\n  trafficPolicy: {outlierDetection: {}}\n"
	"---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
	"metadata: {name: s-dr-pool}\nspec:\n  host: s-dr-pool\n  subsets:\n"
	"  - {name: v1, labels: {v: '1'}, trafficPolicy: {connectionPool: {http: {maxRetries: 1}}}}\n"
	"---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
	"metadata: {name: s-dr-port}\nspec:\n  host: s-dr-port\n  trafficPolicy:\n"
	"    portLevelSettings: [{port: {number: 81}, outlierDetection: {consecutive5xxErrors: 1}}]\n"
	"---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
	"metadata: {name: s-dr-tcp}\nspec:\n  host: s-dr-tcp\n"
	"  trafficPolicy: {connectionPool: {tcp: {maxConnections: 3}}}\n"
	"---\napiVersion: networking.istio.io/v1\nkind: VirtualService\n"
	"metadata: {name: s-grpc-vs}\nspec:\n  hosts: [s-grpc-vs]\n"
	"  http: [{route: [{destination: {host: s-grpc-vs}}]}]\n"
	"---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
	"metadata: {name: s-h2-dr}\nspec:\n  host: s-h2-dr\n  trafficPolicy: {outlierDetection: {}}\n";


TEST(l7_decision_table)
{
	static const struct {
		const char *vip;
		uint16_t port;
		const char *why;	/* NULL = stays L4 */
		const char *l4why;	/* HTTP/2 kept at L4: l7_config_l4_why */
	} t[] = {
		{ "10.96.1.1", 80, "port name http (Istio protocol selection)", NULL },
		{ "10.96.1.2", 80, "port name http-api (Istio protocol selection)", NULL },
		{ "10.96.1.3", 80, "port name Http (Istio protocol selection)", NULL },
		/* Istio's IsHTTP2 protocols: L7 with an HTTP/2 upstream (cluster->h2) */
		{ "10.96.1.4", 80, "port name grpc-web (Istio protocol selection)", NULL },
		{ "10.96.1.5", 80, "port name http2 (Istio protocol selection)", NULL },
		{ "10.96.1.6", 80, "appProtocol http (Istio protocol selection)", NULL },
		{ "10.96.1.7", 80, "appProtocol kubernetes.io/h2c (Istio protocol selection)", NULL },
		{ "10.96.1.8", 80, NULL, NULL },		/* appProtocol tcp wins over the name */
		{ "10.96.1.9", 80, "port name http (Istio protocol selection)", NULL },
		{ "10.96.2.1", 80, NULL, NULL },
		{ "10.96.2.2", 80, NULL, NULL },
		{ "10.96.2.3", 80, NULL, NULL },
		{ "10.96.2.4", 80, NULL, NULL },
		{ "10.96.3.1", 80, "VirtualService default/s-vs has http routes", NULL },
		{ "10.96.3.2", 80, NULL, NULL },		/* declared tcp: http routes not applied */
		{ "10.96.3.3", 80, NULL, NULL },		/* gateway-only VirtualService */
		{ "10.96.3.4", 80, NULL, NULL },		/* routes only match port 81 */
		{ "10.96.3.4", 81, "VirtualService default/s-vs-port has http routes", NULL },
		{ "10.96.3.5", 80, NULL, NULL },		/* tcp routes only */
		{ "10.96.4.1", 80, "DestinationRule default/s-dr-od has outlierDetection", NULL },
		{ "10.96.4.2", 80, "DestinationRule default/s-dr-pool has connectionPool.http", NULL },
		{ "10.96.4.3", 80, NULL, NULL },
		{ "10.96.4.3", 81, "DestinationRule default/s-dr-port has outlierDetection", NULL },
		{ "10.96.4.4", 80, NULL, NULL },
		{ "10.96.5.1", 80, "VirtualService default/s-grpc-vs has http routes", NULL },
		{ "10.96.5.2", 80, "appProtocol grpc (Istio protocol selection)", NULL },
		{ "10.96.5.3", 80, "DestinationRule default/s-h2-dr has outlierDetection", NULL },
	};
	struct l7fx f;
	size_t n_l7 = 0;

	if (!ASSERT_EQ(l7fx_load(&f, decide_yaml), 0)) {
		l7fx_dump(&f.set);
		goto out;
	}
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		const struct plan_service *ps = l7fx_plan_svc(&f, t[i].vip, t[i].port);
		const struct l7_svc *s = l7fx_svc(&f, t[i].vip, t[i].port);
		int ok;

		if (!ASSERT_TRUE(ps))
			continue;
		if (t[i].why) {
			n_l7++;
			ok = ASSERT_TRUE(ps->flags & SM_SVC_F_L7) &&
			     ASSERT_STREQ(ps->l7_why, t[i].why) && ASSERT_TRUE(s) &&
			     ASSERT_STREQ(s->why, t[i].why) && ASSERT_TRUE(s->default_cluster) &&
			     ASSERT_EQ(s->port, t[i].port);
		} else {
			ok = ASSERT_FALSE(ps->flags & SM_SVC_F_L7) &&
			     ASSERT_TRUE(ps->l7_why == NULL) && ASSERT_TRUE(s == NULL);
		}
		if (ok && t[i].l4why) {
			struct in_addr a;

			inet_pton(AF_INET, t[i].vip, &a);
			ok = ASSERT_STREQ(l7_config_l4_why(f.c, a.s_addr, t[i].port), t[i].l4why);
		}
		if (!ok)
			fprintf(stderr, "  case %s:%u\n", t[i].vip, t[i].port);
	}
	ASSERT_EQ(f.c->n_svcs, n_l7);
	ASSERT_TRUE(l7fx_diag(&f.set, POL_DIAG_WARNING,
			      "service default/s-vs-tcp port 80: port name tcp (Istio protocol selection) declares a non-HTTP protocol: http routes of VirtualService default/s-vs are not applied"));
	/* HTTP/2 ports: the upstream speaks h2c; HTTP/1.1 ports do not */
	{
		static const char *const h2[] = { "10.96.1.4", "10.96.1.5", "10.96.1.7",
						  "10.96.5.1", "10.96.5.2", "10.96.5.3" };
		const struct l7_svc *s;

		for (size_t i = 0; i < sizeof(h2) / sizeof(h2[0]); i++) {
			s = l7fx_svc(&f, h2[i], 80);
			if (!ASSERT_TRUE(s && s->default_cluster && s->default_cluster->h2))
				fprintf(stderr, "  case %s\n", h2[i]);
		}
		s = l7fx_svc(&f, "10.96.1.1", 80);
		ASSERT_TRUE(s && s->default_cluster && !s->default_cluster->h2);
	}
	ASSERT_EQ(f.c->n_l4_ports, 0);
	/* the svcs array is sorted for the binary search */
	for (size_t i = 1; i < f.c->n_svcs; i++)
		ASSERT_TRUE(ntohl(l7_config_svc(f.c, i - 1)->vip) < ntohl(l7_config_svc(f.c, i)->vip) ||
			    (l7_config_svc(f.c, i - 1)->vip == l7_config_svc(f.c, i)->vip &&
			     l7_config_svc(f.c, i - 1)->port < l7_config_svc(f.c, i)->port));
	ASSERT_TRUE(l7_config_find_svc(f.c, l7fx_ip("10.96.9.9"), 80) == NULL);
	ASSERT_TRUE(l7_config_find_svc(f.c, l7fx_ip("10.96.3.4"), 80) == NULL);
	ASSERT_TRUE(l7_config_find_svc(NULL, 0, 0) == NULL);
out:
	l7fx_free(&f);
}

/* ---- DestinationRule L7 fields, defaults, inheritance ---- */

static const char dr_yaml[] =
	"apiVersion: v1\nkind: Service\nmetadata: {name: ratings}\n"
	"spec: {clusterIP: 10.96.0.30, selector: {app: ratings},\n"
	"       ports: [{name: http, port: 9080}, {name: http-alt, port: 9081}]}\n"
	"---\napiVersion: v1\nkind: Pod\n"
	"metadata: {name: ratings-v1, labels: {app: ratings, version: v1}}\nstatus: {podIP: 10.0.0.21}\n"
	"---\napiVersion: v1\nkind: Pod\n"
	"metadata: {name: ratings-v2, labels: {app: ratings, version: v2}}\nstatus: {podIP: 10.0.0.22}\n"
	"---\napiVersion: v1\nkind: Pod\n"
	"metadata: {name: ratings-v3, labels: {app: ratings, version: v3}}\n"
	"status: {podIP: 10.0.0.23, conditions: [{type: Ready, status: 'False'}]}\n"
	"---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
	"metadata: {name: ratings}\nspec:\n  host: ratings\n  trafficPolicy:\n"
	"    loadBalancer: {consistentHash: {httpHeaderName: X-User}}\n"
	"    connectionPool:\n"
	"      tcp: {maxConnections: 10, connectTimeout: 250ms}\n"
	"      http: {http1MaxPendingRequests: 1, http2MaxRequests: 7, maxRequestsPerConnection: 3,\n"
	"             maxRetries: 2, idleTimeout: 5s, maxConcurrentStreams: 9,\n"
	"             h2UpgradePolicy: UPGRADE}\n"
	"    outlierDetection: {consecutive5xxErrors: 3, interval: 1s, baseEjectionTime: 2s,\n"
	"                       maxEjectionPercent: 50, minHealthPercent: 20,\n"
	"                       splitExternalLocalOriginErrors: true}\n"
	"    portLevelSettings:\n"
	"    - port: {number: 9081}\n"
	"      loadBalancer: {simple: ROUND_ROBIN}\n"
	"  subsets:\n"
	"  - {name: v1, labels: {version: v1}}\n"
	"  - name: v2\n    labels: {version: v2}\n"
	"    trafficPolicy: {outlierDetection: {consecutiveErrors: 4}}\n"
	"  - name: v3\n    labels: {version: v3}\n"
	"    trafficPolicy:\n      loadBalancer: {simple: RANDOM}\n"
	"      portLevelSettings: [{port: {number: 9080}, connectionPool: {http: {maxRetries: 9}}}]\n"
	"---\napiVersion: networking.istio.io/v1\nkind: VirtualService\n"
	"metadata: {name: ratings}\nspec:\n  hosts: [ratings]\n  http:\n"
	"  - route:\n"
	"    - {destination: {host: ratings, subset: v1}, weight: 34}\n"
	"    - {destination: {host: ratings, subset: v2}, weight: 33}\n"
	"    - {destination: {host: ratings, subset: v3}, weight: 33}\n";

static const struct l7_cluster *cluster_of(const struct l7fx *f, uint16_t port, const char *subset)
{
	uint64_t id = plan_cluster_id("ratings.default.svc.cluster.local", port, subset);

	for (size_t i = 0; i < f->c->n_clusters; i++)
		if (l7_config_cluster(f->c, i)->id == id)
			return l7_config_cluster(f->c, i);
	return NULL;
}

TEST(l7_dr_fields_defaults_inheritance)
{
	const struct l7_cluster *d, *alt, *v1, *v2, *v3;
	const struct l7_svc *s;
	struct l7fx f;

	if (!ASSERT_EQ(l7fx_load(&f, dr_yaml), 0)) {
		l7fx_dump(&f.set);
		goto out;
	}
	d = cluster_of(&f, 9080, NULL);
	alt = cluster_of(&f, 9081, NULL);
	v1 = cluster_of(&f, 9080, "v1");
	v2 = cluster_of(&f, 9080, "v2");
	v3 = cluster_of(&f, 9080, "v3");
	if (!ASSERT_TRUE(d && alt && v1 && v2 && v3))
		goto out;
	s = l7fx_svc(&f, "10.96.0.30", 9080);
	if (ASSERT_TRUE(s)) {
		ASSERT_TRUE(s->default_cluster == d);
		ASSERT_STREQ(s->why, "VirtualService default/ratings has http routes");
		ASSERT_TRUE(s->vhost->routes[0].dests[1].cluster == v2);
	}
	for (size_t i = 0; i < f.c->n_clusters; i++)
		ASSERT_TRUE(l7_config_find_cluster(f.c, l7_config_cluster(f.c, i)->id) ==
			    l7_config_cluster(f.c, i));
	ASSERT_STREQ(d->name, "outbound|9080||ratings.default.svc.cluster.local");
	ASSERT_STREQ(v2->name, "outbound|9080|v2|ratings.default.svc.cluster.local");
	ASSERT_STREQ(v2->fqdn, "ratings.default.svc.cluster.local");
	ASSERT_EQ(d->n_hosts, 3);
	if (ASSERT_EQ(v2->n_hosts, 1)) {
		ASSERT_EQ(v2->hosts[0].addr, l7fx_ip("10.0.0.22"));
		ASSERT_EQ(v2->hosts[0].port, 9080);
		ASSERT_TRUE(v2->hosts[0].ready);
		ASSERT_STREQ(v2->hosts[0].pod, "default/ratings-v2");
	}
	if (ASSERT_EQ(v3->n_hosts, 1))
		ASSERT_FALSE(v3->hosts[0].ready);

	/* top level, as written */
	ASSERT_EQ(d->lb, L7_LB_HASH);
	ASSERT_EQ(d->hash_kind, POL_HASH_HEADER);
	ASSERT_STREQ(d->hash_key, "x-user");
	ASSERT_EQ(d->pool.max_connections, 10);
	ASSERT_EQ(d->pool.connect_timeout_ms, 250);
	ASSERT_EQ(d->pool.http1_max_pending, 1);
	ASSERT_EQ(d->pool.max_requests, 7);
	ASSERT_EQ(d->pool.max_requests_per_conn, 3);
	ASSERT_EQ(d->pool.max_retries, 2);
	ASSERT_EQ(d->pool.idle_timeout_ms, 5000);
	ASSERT_EQ(d->pool.max_concurrent_streams, 9);
	ASSERT_TRUE(d->pool.h2_upgrade);
	ASSERT_TRUE(d->h2);	/* an http port, upgraded by the DestinationRule */
	ASSERT_FALSE(alt->h2);	/* portLevelSettings replace the pool: no upgrade */
	ASSERT_TRUE(d->outlier.enabled);
	ASSERT_EQ(d->outlier.consecutive_5xx, 3);
	ASSERT_EQ(d->outlier.consecutive_gateway, 0);
	ASSERT_TRUE(d->outlier.split_local_origin);
	ASSERT_EQ(d->outlier.consecutive_local_origin, 5);
	ASSERT_EQ(d->outlier.interval_ms, 1000);
	ASSERT_EQ(d->outlier.base_ejection_ms, 2000);
	ASSERT_EQ(d->outlier.max_ejection_ms, 300000);
	ASSERT_EQ(d->outlier.max_ejection_pct, 50);
	ASSERT_EQ(d->outlier.min_health_pct, 20);

	/* portLevelSettings replaces everything: unset parts are defaults */
	ASSERT_EQ(alt->lb, L7_LB_ROUND_ROBIN);
	ASSERT_TRUE(alt->hash_key == NULL);
	ASSERT_EQ(alt->pool.max_connections, 0);
	ASSERT_EQ(alt->pool.connect_timeout_ms, 10000);
	ASSERT_EQ(alt->pool.http1_max_pending, 0);
	ASSERT_EQ(alt->pool.idle_timeout_ms, 3600000);
	ASSERT_FALSE(alt->outlier.enabled);

	/* subset without policy inherits */
	ASSERT_EQ(v1->lb, L7_LB_HASH);
	ASSERT_EQ(v1->pool.http1_max_pending, 1);
	ASSERT_EQ(v1->outlier.consecutive_5xx, 3);

	/* subset outlierDetection replaces the whole block; deprecated
	 * consecutiveErrors = gateway errors, 5xx off (pilot) */
	ASSERT_EQ(v2->lb, L7_LB_HASH);
	ASSERT_EQ(v2->pool.max_requests, 7);
	ASSERT_TRUE(v2->outlier.enabled);
	ASSERT_EQ(v2->outlier.consecutive_gateway, 4);
	ASSERT_EQ(v2->outlier.consecutive_5xx, 0);
	ASSERT_EQ(v2->outlier.interval_ms, 10000);
	ASSERT_EQ(v2->outlier.base_ejection_ms, 30000);
	ASSERT_EQ(v2->outlier.max_ejection_pct, 10);
	ASSERT_EQ(v2->outlier.min_health_pct, 0);
	ASSERT_FALSE(v2->outlier.split_local_origin);

	/* subset portLevelSettings replaces all of the subset's merge */
	ASSERT_EQ(v3->lb, L7_LB_LEAST_REQUEST);
	ASSERT_EQ(v3->pool.max_retries, 9);
	ASSERT_EQ(v3->pool.http1_max_pending, 0);
	ASSERT_FALSE(v3->outlier.enabled);
out:
	l7fx_free(&f);
}

TEST(l7_outlier_defaults)
{
	static const char y[] =
		"apiVersion: v1\nkind: Service\nmetadata: {name: a}\n"
		"spec: {clusterIP: 10.96.0.40, ports: [{name: tcp-x, port: 80}, {port: 81}]}\n"
		"---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
		"metadata: {name: a}\nspec:\n  host: a\n  trafficPolicy:\n"
		"    outlierDetection: {consecutiveGatewayErrors: 2}\n";
	const struct l7_svc *s;
	struct l7fx f;

	if (!ASSERT_EQ(l7fx_load(&f, y), 0)) {
		l7fx_dump(&f.set);
		goto out;
	}
	/* a declared TCP port keeps L4, with a warning naming the rule */
	ASSERT_TRUE(l7fx_svc(&f, "10.96.0.40", 80) == NULL);
	ASSERT_TRUE(l7fx_diag(&f.set, POL_DIAG_WARNING,
			      "DestinationRule default/a outlierDetection is not applied"));
	s = l7fx_svc(&f, "10.96.0.40", 81);
	if (ASSERT_TRUE(s)) {
		const struct l7_outlier_cfg *o = &s->default_cluster->outlier;

		ASSERT_TRUE(o->enabled);
		ASSERT_EQ(o->consecutive_5xx, 5);
		ASSERT_EQ(o->consecutive_gateway, 2);
		ASSERT_EQ(o->consecutive_local_origin, 5);
		ASSERT_EQ(o->interval_ms, 10000);
		ASSERT_EQ(o->base_ejection_ms, 30000);
		ASSERT_EQ(o->max_ejection_pct, 10);
		ASSERT_EQ(o->min_health_pct, 0);
		ASSERT_EQ(s->default_cluster->lb, L7_LB_LEAST_REQUEST);
		ASSERT_EQ(s->default_cluster->n_hosts, 0);
	}
out:
	l7fx_free(&f);
}

/* ---- route fields ---- */

static const char fields_yaml[] =
	"apiVersion: v1\nkind: Service\nmetadata: {name: web}\n"
	"spec: {clusterIP: 10.96.0.50, selector: {app: web}, ports: [{name: http, port: 80}]}\n"
	"---\napiVersion: v1\nkind: Service\nmetadata: {name: multi, namespace: other}\n"
	"spec: {clusterIP: 10.96.0.51, ports: [{name: http, port: 80}, {name: http-b, port: 90}]}\n"
	"---\napiVersion: networking.istio.io/v1\nkind: VirtualService\n"
	"metadata: {name: web}\nspec:\n  hosts: [web]\n  http:\n"
	/* 0: unset retries, timeout */
	"  - match: [{uri: {prefix: /r0}}]\n    route: [{destination: {host: web}}]\n"
	/* 1 */
	"  - match: [{uri: {prefix: /r1}}]\n    timeout: 3s\n"
	"    retries: {attempts: 3, perTryTimeout: 2s, retryOn: '5xx, gateway-error,reset,connect-failure,retriable-4xx,503,409'}\n"
	"    route: [{destination: {host: web}}]\n"
	/* 2 */
	"  - match: [{uri: {prefix: /r2}}]\n    retries: {attempts: 0}\n"
	"    route: [{destination: {host: web}}]\n"
	/* 3 */
	"  - match: [{uri: {prefix: /r3}}]\n    retries: {attempts: 5}\n"
	"    fault: {delay: {fixedDelay: 7s, percentage: {value: 100}}, abort: {httpStatus: 555, percentage: {value: 12.5}}}\n"
	"    route: [{destination: {host: web}}]\n"
	/* 4 */
	"  - match: [{uri: {prefix: /r4}}]\n"
	"    fault: {delay: {fixedDelay: 1s, percent: 50}, abort: {httpStatus: 503}}\n"
	"    mirror: {host: multi.other, port: {number: 90}}\n    mirrorPercentage: {value: 25}\n"
	"    route: [{destination: {host: multi.other}}]\n"
	/* 5 */
	"  - match: [{uri: {prefix: /r5}}]\n"
	"    mirrors: [{destination: {host: web}, percentage: {value: 5}}, {destination: {host: nowhere.example.com}}]\n"
	"    corsPolicy:\n"
	"      allowOrigins: [{exact: 'https://a.example'}, {regex: 'https://.*[.]b[.]example'}]\n"
	"      allowMethods: [GET, POST]\n      allowHeaders: [x-a]\n"
	"      exposeHeaders: [x-b, x-c]\n      maxAge: 24h\n      allowCredentials: true\n"
	"    headers:\n      request: {set: {x-a: '1'}, add: {x-c: c}, remove: [X-B]}\n"
	"      response: {remove: [server]}\n"
	"    route:\n    - destination: {host: web}\n"
	"      headers: {response: {set: {x-dest: web}}}\n"
	/* 6 */
	"  - match: [{uri: {prefix: /r6}}]\n    redirect: {uri: /new, authority: b.example, redirectCode: 302}\n"
	/* 7 */
	"  - match: [{uri: {prefix: /r7}}]\n    redirect: {scheme: https, derivePort: FROM_PROTOCOL_DEFAULT}\n"
	/* 8 */
	"  - match: [{uri: {prefix: /r8}}]\n    directResponse: {status: 418, body: {bytes: aGVsbG8=}}\n"
	/* 9: unknown port on a multi-port service */
	"  - route: [{destination: {host: multi.other, port: {number: 91}}}]\n";

TEST(l7_route_fields)
{
	const struct l7_route *r;
	const struct l7_svc *s;
	struct l7fx f;

	if (!ASSERT_EQ(l7fx_load(&f, fields_yaml), 0)) {
		l7fx_dump(&f.set);
		goto out;
	}
	s = l7fx_svc(&f, "10.96.0.50", 80);
	if (!ASSERT_TRUE(s && s->vhost) || !ASSERT_EQ(s->vhost->n_routes, 10))
		goto out;
	r = s->vhost->routes;

	/* Istio's default retry policy when retries is unset */
	ASSERT_FALSE(r[0].has_retry);
	ASSERT_EQ(r[0].retry.attempts, 2);
	ASSERT_EQ(r[0].retry.on, L7_RETRY_CONNECT_FAILURE | L7_RETRY_REFUSED_STREAM |
				 L7_RETRY_STATUS_CODES | L7_RETRY_GRPC_UNAVAILABLE |
				 L7_RETRY_GRPC_CANCELLED);
	if (ASSERT_EQ(r[0].retry.n_codes, 1))
		ASSERT_EQ(r[0].retry.codes[0], 503);
	ASSERT_EQ(r[0].retry.backoff_base_ms, 25);
	ASSERT_EQ(r[0].timeout_ms, 0);
	ASSERT_EQ(l7_fault_abort(r[0].pol), 0);
	ASSERT_EQ(l7_fault_delay(r[0].pol), 0);
	ASSERT_FALSE(r[0].pol->cors.set);

	ASSERT_TRUE(r[1].has_retry);
	ASSERT_EQ(r[1].timeout_ms, 3000);
	ASSERT_EQ(r[1].retry.attempts, 3);
	ASSERT_EQ(r[1].retry.per_try_timeout_ms, 2000);
	ASSERT_EQ(r[1].retry.on, L7_RETRY_5XX | L7_RETRY_GATEWAY_ERROR | L7_RETRY_RESET |
				 L7_RETRY_CONNECT_FAILURE | L7_RETRY_RETRIABLE_4XX |
				 L7_RETRY_STATUS_CODES);
	if (ASSERT_EQ(r[1].retry.n_codes, 2)) {
		ASSERT_EQ(r[1].retry.codes[0], 503);
		ASSERT_EQ(r[1].retry.codes[1], 409);
	}
	ASSERT_TRUE(r[2].has_retry);
	ASSERT_EQ(r[2].retry.attempts, 0);
	ASSERT_EQ(r[3].retry.attempts, 5);
	ASSERT_EQ(r[3].retry.on, L7_RETRY_CONNECT_FAILURE | L7_RETRY_REFUSED_STREAM |
				 L7_RETRY_STATUS_CODES | L7_RETRY_GRPC_UNAVAILABLE |
				 L7_RETRY_GRPC_CANCELLED);

	ASSERT_EQ(l7_fault_delay(r[3].pol), 7000);
	ASSERT_TRUE(r[3].pol->fault.delay_percent == 100.0);
	ASSERT_EQ(l7_fault_abort(r[3].pol), 555);
	ASSERT_TRUE(r[3].pol->fault.abort_percent == 12.5);
	ASSERT_TRUE(r[4].pol->fault.delay_percent == 50.0);
	ASSERT_EQ(l7_fault_abort(r[4].pol), 503);
	ASSERT_TRUE(r[4].pol->fault.abort_percent == 0.0);	/* Istio: no percentage = none */

	/* destination without a port on a multi-port service: the request's
	 * port (80); the mirror names port 90 */
	if (ASSERT_EQ(r[4].n_dests, 1))
		ASSERT_STREQ(r[4].dests[0].cluster->name,
			     "outbound|80||multi.other.svc.cluster.local");
	if (ASSERT_EQ(r[4].n_mirrors, 1)) {
		ASSERT_STREQ(r[4].mirrors[0].cluster->name,
			     "outbound|90||multi.other.svc.cluster.local");
		ASSERT_TRUE(r[4].mirrors[0].pct == 25.0);
	}
	if (ASSERT_EQ(r[5].n_mirrors, 2)) {
		ASSERT_TRUE(r[5].mirrors[0].pct == 5.0);
		ASSERT_TRUE(r[5].mirrors[1].pct == 100.0);
		ASSERT_EQ(r[5].mirrors[1].cluster->n_hosts, 0);
	}
	ASSERT_TRUE(l7fx_diag(&f.set, POL_DIAG_WARNING,
			      "http route destination host \"nowhere.example.com\" is not a known Service"));
	if (ASSERT_TRUE(r[5].pol->cors.set)) {
		const struct pol_cors *c = &r[5].pol->cors;

		if (ASSERT_EQ(c->n_allow_origins, 2)) {
			ASSERT_EQ(c->allow_origins[0].kind, POL_SM_EXACT);
			ASSERT_EQ(c->allow_origins[1].kind, POL_SM_REGEX);
			ASSERT_TRUE(c->allow_origins[1].re != NULL);	/* kept from the load */
		}
		if (ASSERT_EQ(c->n_allow_methods, 2))
			ASSERT_STREQ(c->allow_methods[1], "POST");
		if (ASSERT_EQ(c->n_allow_headers, 1))
			ASSERT_STREQ(c->allow_headers[0], "x-a");
		if (ASSERT_EQ(c->n_expose_headers, 2))
			ASSERT_STREQ(c->expose_headers[1], "x-c");
		ASSERT_EQ(c->max_age_s, 86400);
		ASSERT_EQ(c->allow_credentials, 1);
	}
	if (ASSERT_EQ(r[5].pol->headers.request.set.n, 1)) {
		ASSERT_STREQ(r[5].pol->headers.request.set.v[0].key, "x-a");
		ASSERT_STREQ(r[5].pol->headers.request.set.v[0].value, "1");
	}
	ASSERT_EQ(r[5].pol->headers.request.add.n, 1);
	if (ASSERT_EQ(r[5].pol->headers.request.n_remove, 1))
		ASSERT_STREQ(r[5].pol->headers.request.remove[0], "x-b");
	ASSERT_EQ(r[5].pol->headers.response.n_remove, 1);
	if (ASSERT_EQ(r[5].dests[0].headers->response.set.n, 1))
		ASSERT_STREQ(r[5].dests[0].headers->response.set.v[0].value, "web");

	ASSERT_TRUE(r[6].pol->redirect.set);
	ASSERT_STREQ(r[6].pol->redirect.uri, "/new");
	ASSERT_STREQ(r[6].pol->redirect.authority, "b.example");
	ASSERT_EQ(r[6].pol->redirect.code, 302);
	ASSERT_EQ(r[6].n_dests, 0);
	ASSERT_EQ(r[7].pol->redirect.code, 0);	/* unset: the proxy answers 301 */
	ASSERT_STREQ(r[7].pol->redirect.scheme, "https");
	ASSERT_EQ(r[7].pol->redirect.derive_port, POL_DERIVE_PORT_PROTOCOL_DEFAULT);
	ASSERT_TRUE(r[8].pol->direct.set);
	ASSERT_EQ(r[8].pol->direct.status, 418);
	ASSERT_EQ(r[8].pol->direct.body_len, 5);
	ASSERT_STREQ(r[8].pol->direct.body, "hello");
	if (ASSERT_EQ(r[9].n_dests, 1))
		ASSERT_EQ(r[9].dests[0].cluster->n_hosts, 0);
	ASSERT_TRUE(l7fx_diag(&f.set, POL_DIAG_WARNING,
			      "http route destination other/multi: no TCP port 91"));
out:
	l7fx_free(&f);
}

TEST(l7_policy_errors_have_positions)
{
	static const struct {
		const char *desc, *yaml, *msg;
		uint32_t line, col;
	} t[] = {
		{ "bad uri regex",
		  "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
		  "metadata: {name: a}\nspec:\n  hosts: [a]\n  http:\n"
		  "  - match: [{uri: {regex: '/a(b'}}]\n"
		  "    route: [{destination: {host: a}}]\n",
		  "invalid regex \"/a(b\"", 7, 27 },
		{ "bad header regex",
		  "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
		  "metadata: {name: a}\nspec:\n  hosts: [a]\n  http:\n"
		  "  - match:\n    - headers:\n        x: {regex: '['}\n"
		  "    route: [{destination: {host: a}}]\n",
		  "match[0].headers.x.regex: invalid regex", 9, 20 },
		{ "bad uriRegexRewrite",
		  "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
		  "metadata: {name: a}\nspec:\n  hosts: [a]\n  http:\n"
		  "  - rewrite: {uriRegexRewrite: {match: '*x', rewrite: y}}\n"
		  "    route: [{destination: {host: a}}]\n",
		  "uriRegexRewrite.match: invalid regex", 7, 40 },
		{ "bad retryOn",
		  "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
		  "metadata: {name: a}\nspec:\n  hosts: [a]\n  http:\n"
		  "  - retries: {attempts: 1, retryOn: '5xx,bogus'}\n"
		  "    route: [{destination: {host: a}}]\n",
		  "unknown retry policy \"bogus\"", 7, 37 },
		{ "no action",
		  "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
		  "metadata: {name: a}\nspec:\n  hosts: [a]\n  http:\n"
		  "  - timeout: 1s\n",
		  "needs one of route, redirect, directResponse or delegate", 7, 5 },
		{ "route and redirect",
		  "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
		  "metadata: {name: a}\nspec:\n  hosts: [a]\n  http:\n"
		  "  - redirect: {uri: /x}\n    route: [{destination: {host: a}}]\n",
		  "are mutually exclusive", 7, 5 },
		{ "both uri and regex rewrite",
		  "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
		  "metadata: {name: a}\nspec:\n  hosts: [a]\n  http:\n"
		  "  - rewrite: {uri: /x, uriRegexRewrite: {match: a, rewrite: b}}\n"
		  "    route: [{destination: {host: a}}]\n",
		  "uri and uriRegexRewrite are mutually exclusive", 7, 41 },
		{ "body not base64",
		  "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
		  "metadata: {name: a}\nspec:\n  hosts: [a]\n  http:\n"
		  "  - directResponse: {status: 200, body: {bytes: '%%%'}}\n",
		  "body.bytes: not base64", 7, 49 },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct l7fx f;
		const struct pol_diag *d;

		ASSERT_EQ(l7fx_load(&f, t[i].yaml), -EINVAL);
		d = l7fx_diag(&f.set, POL_DIAG_ERROR, t[i].msg);
		if (!ASSERT_TRUE(d)) {
			fprintf(stderr, "  case \"%s\": got:\n", t[i].desc);
			l7fx_dump(&f.set);
		} else if (!ASSERT_STREQ(d->loc.file, "t.yaml") ||
			   !ASSERT_EQ(d->loc.line, t[i].line) || !ASSERT_EQ(d->loc.col, t[i].col)) {
			fprintf(stderr, "  case \"%s\"\n", t[i].desc);
		}
		ASSERT_TRUE(f.c == NULL);
		l7fx_free(&f);
	}
	{
		char err[200];

		ASSERT_EQ(policy_regex_check("a(b", err, sizeof(err)), -EINVAL);
		ASSERT_STRSTR(err, "offset 3");
		ASSERT_EQ(policy_regex_check("^[a-z]+(?:-[0-9]{2,3})?$", err, sizeof(err)), 0);
	}
}

TEST(l7_pods_refs)
{
	static const char y[] =
		"apiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: x, labels: {app: b}}\n"
		"status: {podIP: 10.0.0.9}\n"
		"---\napiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x, labels: {app: a}}\n"
		"status: {podIP: 10.0.0.7}\n"
		"---\napiVersion: v1\nkind: Pod\nmetadata: {name: h, namespace: x}\n"
		"spec: {hostNetwork: true}\nstatus: {podIP: 10.0.0.8}\n";
	const struct l7_pod *p;
	struct l7fx f;

	if (!ASSERT_EQ(l7fx_load(&f, y), 0)) {
		l7fx_dump(&f.set);
		goto out;
	}
	ASSERT_EQ(f.c->n_pods, 2);
	p = l7_config_find_pod(f.c, l7fx_ip("10.0.0.9"));
	if (ASSERT_TRUE(p)) {
		ASSERT_STREQ(p->ns, "x");
		ASSERT_STREQ(p->name, "b");
		ASSERT_STREQ(policy_label_get(&p->labels, "app"), "b");
	}
	ASSERT_TRUE(l7_config_find_pod(f.c, l7fx_ip("10.0.0.7")) != NULL);
	ASSERT_TRUE(l7_config_find_pod(f.c, l7fx_ip("10.0.0.8")) == NULL);	/* hostNetwork */
	ASSERT_TRUE(l7_config_find_pod(f.c, l7fx_ip("10.0.0.1")) == NULL);
	ASSERT_EQ(f.c->refs, 1);
	ASSERT_TRUE(l7_config_get(f.c) == f.c);
	ASSERT_EQ(f.c->refs, 2);
	l7_config_put(f.c);
	ASSERT_EQ(f.c->refs, 1);
out:
	l7fx_free(&f);	/* the last put frees (ASan: no leak) */
}

/* ---- Istio's bookinfo samples ---- */

static const char bookinfo_pods[] =
	"apiVersion: v1\nkind: Pod\n"
	"metadata: {name: reviews-v1, labels: {app: reviews, version: v1}}\nstatus: {podIP: 10.1.0.1}\n"
	"---\napiVersion: v1\nkind: Pod\n"
	"metadata: {name: reviews-v2, labels: {app: reviews, version: v2}}\nstatus: {podIP: 10.1.0.2}\n"
	"---\napiVersion: v1\nkind: Pod\n"
	"metadata: {name: reviews-v3, labels: {app: reviews, version: v3}}\nstatus: {podIP: 10.1.0.3}\n";

/* bookinfo.yaml's Services have no clusterIP (the API server assigns one). */
static int bookinfo_load(struct l7fx *f, const char *vs_file, const char *extra)
{
	/* this sample carries its own DestinationRule for details */
	bool own_dr = strcmp(vs_file, "fault-injection-details-v1.yaml") == 0;
	const char *files[] = { "bookinfo.yaml", own_dr ? vs_file : "destination-rule-all.yaml",
				own_dr ? extra : vs_file, own_dr ? NULL : extra, NULL };
	char path[1024];

	memset(f, 0, sizeof(*f));
	policy_set_init(&f->set);
	for (const char *const *n = files; *n; n++) {
		snprintf(path, sizeof(path), "%s/%s", l7fx_compat_dir(), *n);
		policy_load_path(&f->set, path);
	}
	policy_load_buffer(&f->set, "pods.yaml", bookinfo_pods, strlen(bookinfo_pods));
	for (size_t i = 0; i < f->set.n_svcs; i++)
		f->set.svcs[i].cluster_ip = htonl(0x0a600100 + (uint32_t)i);
	return l7fx_run(f);
}

static const struct l7_svc *bookinfo_svc(const struct l7fx *f, const char *name)
{
	for (size_t i = 0; f->c && i < f->c->n_svcs; i++)
		if (strcmp(l7_config_svc(f->c, i)->name, name) == 0)
			return l7_config_svc(f->c, i);
	return NULL;
}

static const struct l7_route *bookinfo_route(const struct l7fx *f, const char *svc,
					     const char *headers)
{
	const struct l7_svc *s = bookinfo_svc(f, svc);
	struct l7fx_req rq = { .path = "/", .headers = headers };
	struct l7_request_view v;

	if (!s || !s->vhost)
		return NULL;
	l7fx_view(f, &rq, &v);
	return l7_route_match(s->vhost, &v, NULL, NULL);
}

TEST(l7_bookinfo_jason_v2_v3)
{
	const struct l7_route *r;
	const struct l7_svc *s;
	struct l7fx f;

	if (!l7fx_compat_ok())
		return;
	if (!ASSERT_EQ(bookinfo_load(&f, "virtual-service-reviews-jason-v2-v3.yaml", NULL), 0)) {
		l7fx_dump(&f.set);
		goto out;
	}
	ASSERT_EQ(f.c->n_svcs, 4);	/* every bookinfo port is named http */
	s = bookinfo_svc(&f, "reviews");
	if (ASSERT_TRUE(s))
		ASSERT_STREQ(s->why, "VirtualService default/reviews has http routes");
	s = bookinfo_svc(&f, "ratings");
	if (ASSERT_TRUE(s)) {
		ASSERT_STREQ(s->why, "port name http (Istio protocol selection)");
		ASSERT_TRUE(s->vhost == NULL);
	}
	r = bookinfo_route(&f, "reviews", "end-user: jason\n");
	if (ASSERT_TRUE(r) && ASSERT_EQ(r->n_dests, 1)) {
		ASSERT_STREQ(r->dests[0].cluster->subset, "v2");
		if (ASSERT_EQ(r->dests[0].cluster->n_hosts, 1))
			ASSERT_EQ(r->dests[0].cluster->hosts[0].addr, l7fx_ip("10.1.0.2"));
	}
	r = bookinfo_route(&f, "reviews", "end-user: mallory\n");
	if (ASSERT_TRUE(r) && ASSERT_EQ(r->n_dests, 1))
		ASSERT_STREQ(r->dests[0].cluster->subset, "v3");
	r = bookinfo_route(&f, "reviews", NULL);
	if (ASSERT_TRUE(r) && ASSERT_EQ(r->n_dests, 1))
		ASSERT_STREQ(r->dests[0].cluster->subset, "v3");
out:
	l7fx_free(&f);
}

TEST(l7_bookinfo_weights_and_faults)
{
	struct l7fx f;
	const struct l7_route *r;

	if (!l7fx_compat_ok())
		return;
	if (ASSERT_EQ(bookinfo_load(&f, "virtual-service-reviews-80-20.yaml", NULL), 0)) {
		r = bookinfo_route(&f, "reviews", NULL);
		if (ASSERT_TRUE(r) && ASSERT_EQ(r->n_dests, 2)) {
			ASSERT_EQ(r->dests[0].weight, 80);
			ASSERT_EQ(r->dests[1].weight, 20);
			ASSERT_EQ(r->total_weight, 100);
			ASSERT_STREQ(r->dests[0].cluster->subset, "v1");
			ASSERT_STREQ(r->dests[1].cluster->subset, "v2");
		}
	} else {
		l7fx_dump(&f.set);
	}
	l7fx_free(&f);

	if (ASSERT_EQ(bookinfo_load(&f, "virtual-service-ratings-test-delay.yaml", NULL), 0)) {
		r = bookinfo_route(&f, "ratings", "end-user: jason\n");
		if (ASSERT_TRUE(r)) {
			ASSERT_EQ(l7_fault_delay(r->pol), 7000);
			ASSERT_TRUE(r->pol->fault.delay_percent == 100.0);
			ASSERT_EQ(l7_fault_abort(r->pol), 0);
		}
		r = bookinfo_route(&f, "ratings", NULL);
		if (ASSERT_TRUE(r))
			ASSERT_EQ(l7_fault_delay(r->pol), 0);
	}
	l7fx_free(&f);

	if (ASSERT_EQ(bookinfo_load(&f, "virtual-service-ratings-test-abort.yaml", NULL), 0)) {
		r = bookinfo_route(&f, "ratings", "end-user: jason\n");
		if (ASSERT_TRUE(r)) {
			ASSERT_EQ(l7_fault_abort(r->pol), 500);
			ASSERT_TRUE(r->pol->fault.abort_percent == 100.0);
		}
	}
	l7fx_free(&f);

	if (ASSERT_EQ(bookinfo_load(&f, "fault-injection-details-v1.yaml", NULL), 0)) {
		r = bookinfo_route(&f, "details", NULL);
		if (ASSERT_TRUE(r)) {
			ASSERT_EQ(l7_fault_abort(r->pol), 555);
			ASSERT_TRUE(r->pol->fault.abort_percent == 100.0);
		}
	}
	l7fx_free(&f);

	if (ASSERT_EQ(bookinfo_load(&f, "virtual-service-all-v1.yaml", "bookinfo-gateway.yaml"), 0)) {
		const struct l7_vhost *vh;
		struct l7fx_req rq = { .path = "/productpage", .gateway = "default/bookinfo-gateway" };
		struct l7_request_view v;

		if (ASSERT_EQ(f.c->n_gateways, 1) && ASSERT_EQ(f.c->gateways[0].n_servers, 1)) {
			ASSERT_EQ(f.c->gateways[0].servers[0].port, 8080);
			vh = l7_gateway_find_vhost(&f.c->gateways[0], "anything:8080", 13);
			if (ASSERT_TRUE(vh)) {
				l7fx_view(&f, &rq, &v);
				r = l7_route_match(vh, &v, NULL, NULL);
				if (ASSERT_TRUE(r))
					ASSERT_STREQ(r->dests[0].cluster->name,
						     "outbound|9080||productpage.default.svc.cluster.local");
				v.path = "/static/x.css";
				v.path_len = strlen(v.path);
				ASSERT_TRUE(l7_route_match(vh, &v, NULL, NULL) != NULL);
				v.path = "/admin";
				v.path_len = strlen(v.path);
				ASSERT_TRUE(l7_route_match(vh, &v, NULL, NULL) == NULL);
			}
		}
	} else {
		l7fx_dump(&f.set);
	}
	l7fx_free(&f);
}

TEST(l7_bookinfo_every_sample_builds)
{
	static const char *const vss[] = {
		"virtual-service-all-v1.yaml", "virtual-service-details-v2.yaml",
		"virtual-service-ratings-db.yaml", "virtual-service-ratings-mysql-vm.yaml",
		"virtual-service-ratings-mysql.yaml", "virtual-service-ratings-test-abort.yaml",
		"virtual-service-ratings-test-delay.yaml", "virtual-service-reviews-50-v3.yaml",
		"virtual-service-reviews-80-20.yaml", "virtual-service-reviews-90-10.yaml",
		"virtual-service-reviews-jason-v2-v3.yaml", "virtual-service-reviews-test-v2.yaml",
		"virtual-service-reviews-v2-v3.yaml", "virtual-service-reviews-v3.yaml",
		"fault-injection-details-v1.yaml", "bookinfo-gateway.yaml",
	};

	if (!l7fx_compat_ok())
		return;
	for (size_t i = 0; i < sizeof(vss) / sizeof(vss[0]); i++) {
		struct l7fx f;

		if (!ASSERT_EQ(bookinfo_load(&f, vss[i], NULL), 0) || !ASSERT_TRUE(f.c)) {
			fprintf(stderr, "  sample %s\n", vss[i]);
			l7fx_dump(&f.set);
		}
		l7fx_free(&f);
	}
	{
		struct l7fx f;
		const char *files[] = { "httpbin.yaml", "httpbin-gateway.yaml", NULL };

		if (!ASSERT_EQ(l7fx_load_compat(&f, files), 0))
			l7fx_dump(&f.set);
		else
			ASSERT_EQ(f.c->n_gateways, 1);
		l7fx_free(&f);
	}
}

/*
 * A config swap while a worker still routes on the old config: the agent
 * frees the old set and ends the cache (which evicts the documents the
 * new load did not reuse), a worker keeps its reference on config A and
 * routes on it, and the last put comes from that worker thread. The
 * config holds counted references on the VirtualService documents, so
 * under ASan any read of a freed document fails this test.
 */
#define SWAP_SVC \
	"apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default}\n" \
	"spec: {clusterIP: 10.96.9.1, ports: [{name: http, port: 80}]}\n"
#define SWAP_VS(hdr, re, rw) \
	"---\napiVersion: networking.istio.io/v1\nkind: VirtualService\n" \
	"metadata: {name: web, namespace: default}\nspec:\n  hosts: [web]\n  http:\n" \
	"  - name: by-header\n    match: [{headers: {" hdr ": {regex: '" re "'}}}]\n" \
	"    rewrite: {uriRegexRewrite: {match: '^/a/(.*)$', rewrite: '" rw "'}}\n" \
	"    headers: {request: {remove: [X-Drop]}}\n" \
	"    route: [{destination: {host: web}}]\n" \
	"  - name: rest\n    route: [{destination: {host: web}}]\n"

struct swap_load {
	struct pol_set set;
	struct compile_out out;
};

static int swap_load(struct pol_cache *cache, const char *yaml, struct swap_load *l)
{
	int ret;

	memset(l, 0, sizeof(*l));
	policy_set_init(&l->set);
	policy_cache_begin(cache);
	policy_set_use_cache(&l->set, cache);
	ret = policy_load_buffer(&l->set, "swap.yaml", yaml, strlen(yaml));
	if (!ret)
		ret = policy_validate(&l->set);
	if (!ret)
		ret = compile_policy(&l->set, &(struct compile_opts){ .l7_proxy = true }, &l->out);
	return ret;
}

/* As agent_prepared_free: the set goes, then the cache drops what no load used. */
static void swap_drop(struct pol_cache *cache, struct swap_load *l)
{
	compile_out_free(&l->out);
	policy_set_free(&l->set);
	policy_cache_end(cache);
}

struct swap_worker {
	struct l7_config *c;		/* the worker's reference */
	bool by_header;			/* matched A's first route */
	int rewritten;			/* l7_rewrite_path */
	char path[64];
	bool dropped;			/* the remove list, lower-cased at load */
};

static void *swap_worker_run(void *arg)
{
	struct swap_worker *wk = arg;
	struct l7fx_req rq = { .path = "/a/b", .headers = "x-user: jason-7\n" };
	const struct l7_svc *s = l7_config_find_svc(wk->c, l7fx_ip("10.96.9.1"), 80);
	const struct pol_http_match *m = NULL;
	const struct l7_route *r;
	struct l7_request_view v;

	l7fx_view(NULL, &rq, &v);
	v.port = 80;
	r = s && s->vhost ? l7_route_match(s->vhost, &v, NULL, &m) : NULL;
	if (r) {
		wk->by_header = r->pol->name && strcmp(r->pol->name, "by-header") == 0;
		wk->rewritten = l7_rewrite_path(r, m, v.path, v.path_len, wk->path,
						sizeof(wk->path));
		wk->dropped = r->pol->headers.request.n_remove == 1 &&
			      strcmp(r->pol->headers.request.remove[0], "x-drop") == 0;
	}
	l7_config_put(wk->c);	/* the last reference: frees A and its documents */
	return NULL;
}

TEST(l7_config_outlives_cache_eviction)
{
	static const char a[] = SWAP_SVC SWAP_VS("X-User", "jason-[0-9]+", "/v1/\\1");
	static const char b[] = SWAP_SVC SWAP_VS("x-group", "admins", "/v2/\\1");
	struct pol_cache *cache = policy_cache_new();
	struct swap_worker wk = { 0 };
	struct swap_load la, lb;
	size_t parsed = 0, reused = 0;
	pthread_t th;

	if (!ASSERT_TRUE(cache))
		return;
	if (!ASSERT_EQ(swap_load(cache, a, &la), 0) || !ASSERT_TRUE(la.out.l7)) {
		l7fx_dump(&la.set);
		swap_drop(cache, &la);
		policy_cache_free(cache);
		return;
	}
	/* a worker takes config A; the agent drops its own reference */
	wk.c = l7_config_get(la.out.l7);
	swap_drop(cache, &la);
	/* reload with the VirtualService changed: its old document is evicted */
	if (ASSERT_EQ(swap_load(cache, b, &lb), 0)) {
		policy_cache_stats(cache, &parsed, &reused);
		ASSERT_EQ(parsed, 1);	/* the new VirtualService */
		ASSERT_EQ(reused, 1);	/* the Service */
	}
	swap_drop(cache, &lb);
	/* the worker still routes on A, on another thread, and puts it last */
	if (ASSERT_EQ(pthread_create(&th, NULL, swap_worker_run, &wk), 0)) {
		pthread_join(th, NULL);
		ASSERT_TRUE(wk.by_header);	/* A's regex on A's header name */
		ASSERT_EQ(wk.rewritten, 5);
		ASSERT_STREQ(wk.path, "/v1/b");
		ASSERT_TRUE(wk.dropped);
	} else {
		l7_config_put(wk.c);
	}
	policy_cache_free(cache);
}
