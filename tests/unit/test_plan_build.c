// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * plan_build: policy model -> services, clusters, backends, routes.
 *
 * The sets are built by hand with a small fixture builder (fx_*), so these
 * tests pin plan semantics independently of the YAML parser. Every array has
 * a fixed capacity (FX_CAP) so pointers returned by fx_* stay valid.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>

#include "compile/plan.h"
#include "test.h"

#define FX_CAP 16

struct fx {
	struct pol_set set;
	void *mem[1024];
	size_t n_mem;
	struct pol_loc loc;
};

static void *fx_alloc(struct fx *f, size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz);

	if (!p || f->n_mem == sizeof(f->mem) / sizeof(f->mem[0]))
		abort();
	f->mem[f->n_mem++] = p;
	return p;
}

static void fx_init(struct fx *f)
{
	memset(f, 0, sizeof(*f));
	f->loc.file = "fixture.yaml";
	f->loc.line = 1;
	f->loc.col = 1;
	f->set.svcs = fx_alloc(f, FX_CAP, sizeof(*f->set.svcs));
	f->set.pods = fx_alloc(f, FX_CAP, sizeof(*f->set.pods));
	f->set.eps = fx_alloc(f, FX_CAP, sizeof(*f->set.eps));
	f->set.drs = fx_alloc(f, FX_CAP, sizeof(*f->set.drs));
	f->set.vss = fx_alloc(f, FX_CAP, sizeof(*f->set.vss));
}

static void fx_free(struct fx *f)
{
	for (size_t i = 0; i < f->n_mem; i++)
		free(f->mem[i]);
	free(f->set.diags);
	policy_index_free(&f->set);	/* built by plan_build */
}

static char *fx_str(struct fx *f, const char *s)
{
	char *p = fx_alloc(f, strlen(s) + 1, 1);

	return strcpy(p, s);
}

/* "app=reviews,version=v1" -> labels */
static struct pol_labels fx_labels(struct fx *f, const char *spec)
{
	struct pol_labels l = { fx_alloc(f, FX_CAP, sizeof(struct pol_kv)), 0 };
	char *s = fx_str(f, spec ? spec : ""), *save = NULL;

	for (char *kv = strtok_r(s, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(kv, '=');

		*eq = '\0';
		l.v[l.n].key = kv;
		l.v[l.n].value = eq + 1;
		l.n++;
	}
	return l;
}

static uint32_t fx_ip(const char *s)
{
	uint32_t a = 0;

	inet_pton(AF_INET, s, &a);
	return a;
}

static void fx_meta(struct fx *f, struct pol_meta *m, const char *ns, const char *name)
{
	m->ns = fx_str(f, ns);
	m->name = fx_str(f, name);
	m->labels = fx_labels(f, NULL);
	m->annotations = fx_labels(f, NULL);
	m->loc = f->loc;
}

static struct pol_service *fx_svc(struct fx *f, const char *ns, const char *name,
				  const char *vip, const char *selector)
{
	struct pol_service *s = &f->set.svcs[f->set.n_svcs++];

	fx_meta(f, &s->meta, ns, name);
	s->cluster_ip = vip ? fx_ip(vip) : 0;
	s->headless = !vip;
	s->has_selector = selector != NULL;
	s->selector = fx_labels(f, selector);
	s->ports = fx_alloc(f, FX_CAP, sizeof(*s->ports));
	return s;
}

static struct pol_svc_port *fx_svc_port(struct fx *f, struct pol_service *s,
					const char *name, uint16_t port,
					uint16_t target, const char *target_name)
{
	struct pol_svc_port *p = &s->ports[s->n_ports++];

	p->name = name ? fx_str(f, name) : NULL;
	p->port = port;
	p->target_port = target;
	p->target_port_name = target_name ? fx_str(f, target_name) : NULL;
	p->proto = IPPROTO_TCP;
	p->loc = f->loc;
	return p;
}

static struct pol_pod *fx_pod(struct fx *f, const char *ns, const char *name,
			      const char *ip, const char *labels, bool ready)
{
	struct pol_pod *p = &f->set.pods[f->set.n_pods++];

	fx_meta(f, &p->meta, ns, name);
	p->meta.labels = fx_labels(f, labels);
	p->ip = ip ? fx_ip(ip) : 0;
	p->ready = ready;
	p->ports = fx_alloc(f, FX_CAP, sizeof(*p->ports));
	return p;
}

static void fx_pod_port(struct fx *f, struct pol_pod *p, const char *name, uint16_t port)
{
	struct pol_container_port *cp = &p->ports[p->n_ports++];

	cp->name = name ? fx_str(f, name) : NULL;
	cp->port = port;
	cp->proto = IPPROTO_TCP;
}

static struct pol_eps *fx_eps(struct fx *f, const char *ns, const char *name,
			      const char *svc)
{
	struct pol_eps *e = &f->set.eps[f->set.n_eps++];

	fx_meta(f, &e->meta, ns, name);
	e->service_name = fx_str(f, svc);
	e->ports = fx_alloc(f, FX_CAP, sizeof(*e->ports));
	e->endpoints = fx_alloc(f, FX_CAP, sizeof(*e->endpoints));
	return e;
}

static void fx_eps_port(struct fx *f, struct pol_eps *e, const char *name, uint16_t port)
{
	struct pol_eps_port *p = &e->ports[e->n_ports++];

	p->name = name ? fx_str(f, name) : NULL;
	p->port = port;
	p->proto = IPPROTO_TCP;
}

static void fx_eps_ep(struct fx *f, struct pol_eps *e, const char *ip, bool ready,
		      const char *target_pod)
{
	struct pol_endpoint *en = &e->endpoints[e->n_endpoints++];

	en->addrs = fx_alloc(f, 1, sizeof(*en->addrs));
	en->addrs[0] = fx_ip(ip);
	en->n_addrs = 1;
	en->ready = ready;
	en->target_pod = target_pod ? fx_str(f, target_pod) : NULL;
}

static void fx_tp_init(struct fx *f, struct pol_traffic_policy *tp)
{
	memset(tp, 0, sizeof(*tp));
	tp->max_connections = -1;
	tp->min_health_percent = -1;
	tp->port_level = fx_alloc(f, FX_CAP, sizeof(*tp->port_level));
	tp->lb.loc = f->loc;
	tp->loc = f->loc;
}

static struct pol_traffic_policy *fx_tp_port(struct fx *f, struct pol_traffic_policy *tp,
					     uint16_t port)
{
	struct pol_port_tp *p = &tp->port_level[tp->n_port_level++];

	tp->set = true;
	p->port = port;
	fx_tp_init(f, &p->tp);
	p->tp.set = true;
	return &p->tp;
}

static struct pol_dr *fx_dr(struct fx *f, const char *ns, const char *name, const char *host)
{
	struct pol_dr *d = &f->set.drs[f->set.n_drs++];

	fx_meta(f, &d->meta, ns, name);
	d->host = fx_str(f, host);
	d->host_loc = f->loc;
	fx_tp_init(f, &d->tp);
	d->subsets = fx_alloc(f, FX_CAP, sizeof(*d->subsets));
	return d;
}

static struct pol_subset *fx_subset(struct fx *f, struct pol_dr *d, const char *name,
				    const char *labels)
{
	struct pol_subset *s = &d->subsets[d->n_subsets++];

	s->name = fx_str(f, name);
	s->labels = fx_labels(f, labels);
	fx_tp_init(f, &s->tp);
	s->loc = f->loc;
	return s;
}

static struct pol_vs *fx_vs(struct fx *f, const char *ns, const char *name, const char *host)
{
	struct pol_vs *v = &f->set.vss[f->set.n_vss++];

	fx_meta(f, &v->meta, ns, name);
	v->hosts = fx_alloc(f, FX_CAP, sizeof(*v->hosts));
	v->hosts[v->n_hosts++] = fx_str(f, host);
	v->gateways = fx_alloc(f, FX_CAP, sizeof(*v->gateways));
	v->tcp = fx_alloc(f, FX_CAP, sizeof(*v->tcp));
	return v;
}

static struct pol_tcp_route *fx_tcp(struct fx *f, struct pol_vs *v)
{
	struct pol_tcp_route *r = &v->tcp[v->n_tcp++];

	r->match = fx_alloc(f, FX_CAP, sizeof(*r->match));
	r->route = fx_alloc(f, FX_CAP, sizeof(*r->route));
	r->loc = f->loc;
	return r;
}

static struct pol_l4_match *fx_match(struct fx *f, struct pol_tcp_route *r, uint16_t port)
{
	struct pol_l4_match *m = &r->match[r->n_match++];

	m->port = port;
	m->gateways = fx_alloc(f, FX_CAP, sizeof(*m->gateways));
	m->source_labels = fx_labels(f, NULL);
	m->loc = f->loc;
	return m;
}

static void fx_dest(struct fx *f, struct pol_tcp_route *r, const char *host,
		    const char *subset, uint16_t port, int32_t weight)
{
	struct pol_route_dest *d = &r->route[r->n_route++];

	d->dest.host = fx_str(f, host);
	d->dest.subset = subset ? fx_str(f, subset) : NULL;
	d->dest.port = port;
	d->dest.loc = f->loc;
	d->weight = weight;
}

/* bookinfo-like: reviews (9080 -> 9080) with pods v1, v2, v3 in default. */
static struct pol_service *fx_reviews(struct fx *f)
{
	struct pol_service *s = fx_svc(f, "default", "reviews", "10.96.0.20", "app=reviews");

	fx_svc_port(f, s, "tcp", 9080, 9080, NULL);
	/* Out of address order on purpose: backends must come out sorted. */
	fx_pod(f, "default", "reviews-v3", "10.1.0.13", "app=reviews,version=v3", true);
	fx_pod(f, "default", "reviews-v1", "10.1.0.11", "app=reviews,version=v1", true);
	fx_pod(f, "default", "reviews-v2", "10.1.0.12", "app=reviews,version=v2", true);
	return s;
}

static const struct plan_service *find_svc(const struct plan *p, const char *fqdn,
					   uint16_t port)
{
	for (size_t i = 0; i < p->n_svcs; i++)
		if (strcmp(p->svcs[i].fqdn, fqdn) == 0 && ntohs(p->svcs[i].key.port) == port)
			return &p->svcs[i];
	return NULL;
}

static const struct plan_cluster *find_cluster(const struct plan_service *s,
					       const char *subset)
{
	for (size_t i = 0; s && i < s->n_clusters; i++)
		if ((!subset && !s->clusters[i].subset) ||
		    (subset && s->clusters[i].subset && !strcmp(subset, s->clusters[i].subset)))
			return &s->clusters[i];
	return NULL;
}

static bool has_diag(const struct pol_set *set, const char *needle)
{
	for (size_t i = 0; i < set->n_diags; i++)
		if (strstr(set->diags[i].msg, needle))
			return true;
	return false;
}

#define REVIEWS "reviews.default.svc.cluster.local"

TEST(plan_build_services_and_subsets)
{
	struct fx f;
	struct plan p;
	const struct plan_service *s;
	const struct plan_cluster *c0, *c1, *c2;
	struct pol_dr *dr;

	fx_init(&f);
	fx_reviews(&f);
	fx_pod(&f, "other", "reviews-x", "10.1.0.99", "app=reviews,version=v1", true);
	fx_pod(&f, "default", "reviews-pending", NULL, "app=reviews,version=v1", true);
	dr = fx_dr(&f, "default", "reviews", "reviews");
	fx_subset(&f, dr, "v1", "version=v1");
	fx_subset(&f, dr, "v2", "version=v2");

	ASSERT_EQ(plan_build(&f.set, &p), 0);
	ASSERT_EQ(p.n_svcs, 1);
	s = find_svc(&p, REVIEWS, 9080);
	if (!ASSERT_TRUE(s))
		goto out;
	ASSERT_EQ(s->key.vip, fx_ip("10.96.0.20"));
	ASSERT_EQ(s->key.proto, SM_IPPROTO_TCP);
	ASSERT_EQ(s->key.pad, 0);
	ASSERT_STREQ(s->ns, "default");
	ASSERT_STREQ(s->name, "reviews");
	ASSERT_STREQ(s->port_name, "tcp");
	ASSERT_EQ(s->n_slots, 0);
	ASSERT_EQ(s->n_clusters, 3);
	c0 = &s->clusters[0];
	ASSERT_TRUE(c0->subset == NULL);
	ASSERT_STREQ(c0->name, "outbound|9080||" REVIEWS);
	ASSERT_EQ(c0->id, plan_cluster_id(REVIEWS, 9080, NULL));
	ASSERT_EQ(c0->lb, SM_LB_LEAST_REQUEST);
	ASSERT_EQ(c0->max_conns, 0);
	ASSERT_EQ(c0->min_health_pct, 0);
	ASSERT_EQ(c0->maglev_size, 0);
	if (ASSERT_EQ(c0->n_backends, 3)) {
		ASSERT_EQ(c0->backends[0].key.addr, fx_ip("10.1.0.11"));
		ASSERT_EQ(c0->backends[1].key.addr, fx_ip("10.1.0.12"));
		ASSERT_EQ(c0->backends[2].key.addr, fx_ip("10.1.0.13"));
		ASSERT_EQ(c0->backends[0].key.port, htons(9080));
		ASSERT_EQ(c0->backends[0].key.pad, 0);
		ASSERT_EQ(c0->backends[0].flags, SM_BE_F_READY);
		ASSERT_STREQ(c0->backends[0].pod, "default/reviews-v1");
	}
	c1 = find_cluster(s, "v1");
	c2 = find_cluster(s, "v2");
	if (ASSERT_TRUE(c1 && c2)) {
		ASSERT_STREQ(c1->name, "outbound|9080|v1|" REVIEWS);
		ASSERT_EQ(c1->id, plan_cluster_id(REVIEWS, 9080, "v1"));
		ASSERT_EQ(c1->n_backends, 1);
		ASSERT_EQ(c1->backends[0].key.addr, fx_ip("10.1.0.11"));
		ASSERT_EQ(c2->n_backends, 1);
		ASSERT_EQ(c2->backends[0].key.addr, fx_ip("10.1.0.12"));
	}
out:
	plan_free(&p);
	plan_free(&p);
	fx_free(&f);
}

TEST(plan_build_skips_headless_udp_and_sorts)
{
	struct fx f;
	struct plan p;
	struct pol_service *s;

	fx_init(&f);
	s = fx_svc(&f, "default", "zeta", "10.96.0.30", "app=z");
	fx_svc_port(&f, s, "b", 81, 0, NULL);
	fx_svc_port(&f, s, "a", 80, 0, NULL);
	fx_svc_port(&f, s, "dns", 53, 0, NULL)->proto = IPPROTO_UDP;
	s = fx_svc(&f, "default", "alpha", "10.96.0.9", "app=a");
	fx_svc_port(&f, s, NULL, 80, 0, NULL);
	s = fx_svc(&f, "default", "headless", NULL, "app=h");
	fx_svc_port(&f, s, NULL, 80, 0, NULL);
	fx_pod(&f, "default", "z1", "10.1.0.5", "app=z", false);

	ASSERT_EQ(plan_build(&f.set, &p), 0);
	if (ASSERT_EQ(p.n_svcs, 3)) {
		ASSERT_STREQ(p.svcs[0].name, "alpha");
		ASSERT_EQ(ntohs(p.svcs[1].key.port), 80);
		ASSERT_STREQ(p.svcs[1].name, "zeta");
		ASSERT_EQ(ntohs(p.svcs[2].key.port), 81);
		/* Unset targetPort = port; not ready = no READY flag. */
		if (ASSERT_EQ(p.svcs[2].clusters[0].n_backends, 1)) {
			ASSERT_EQ(p.svcs[2].clusters[0].backends[0].key.port, htons(81));
			ASSERT_EQ(p.svcs[2].clusters[0].backends[0].flags, 0);
		}
		ASSERT_EQ(p.svcs[0].clusters[0].n_backends, 0);
	}
	plan_free(&p);
	fx_free(&f);
}

TEST(plan_build_named_target_port)
{
	struct fx f;
	struct plan p;
	struct pol_service *s;
	struct pol_pod *pod;

	fx_init(&f);
	s = fx_svc(&f, "default", "web", "10.96.0.40", "app=web");
	fx_svc_port(&f, s, "http", 80, 0, "http-alt");
	pod = fx_pod(&f, "default", "web-1", "10.1.0.21", "app=web", true);
	fx_pod_port(&f, pod, "metrics", 9090);
	fx_pod_port(&f, pod, "http-alt", 8080);
	pod = fx_pod(&f, "default", "web-2", "10.1.0.22", "app=web", true);
	fx_pod_port(&f, pod, "http-alt", 8081);
	pod = fx_pod(&f, "default", "web-old", "10.1.0.23", "app=web", true);
	fx_pod_port(&f, pod, "http", 80);

	ASSERT_EQ(plan_build(&f.set, &p), 0);
	if (ASSERT_EQ(p.n_svcs, 1) && ASSERT_EQ(p.svcs[0].clusters[0].n_backends, 2)) {
		const struct plan_backend *b = p.svcs[0].clusters[0].backends;

		ASSERT_EQ(b[0].key.addr, fx_ip("10.1.0.21"));
		ASSERT_EQ(b[0].key.port, htons(8080));
		ASSERT_EQ(b[1].key.port, htons(8081));
	}
	ASSERT_EQ(f.set.n_warnings, 1);
	ASSERT_TRUE(has_diag(&f.set, "default/web-old has no container port named \"http-alt\""));
	if (ASSERT_EQ(f.set.n_diags, 1))
		ASSERT_EQ(f.set.diags[0].level, POL_DIAG_WARNING);
	plan_free(&p);
	fx_free(&f);
}

TEST(plan_build_endpointslices)
{
	struct fx f;
	struct plan p;
	struct pol_service *s;
	struct pol_eps *e;
	struct pol_dr *dr;
	const struct plan_service *ps;
	const struct plan_cluster *c0, *c1;

	fx_init(&f);
	s = fx_svc(&f, "default", "db", "10.96.0.50", "app=db");
	fx_svc_port(&f, s, "pg", 5432, 0, "pg");
	fx_svc_port(&f, s, "admin", 9000, 9000, NULL);
	/* Selected pods that are not in the slices are not backends. */
	fx_pod(&f, "default", "db-ignored", "10.1.0.40", "app=db,role=primary", true);
	fx_pod(&f, "default", "db-0", "10.1.0.41", "app=db,role=primary", true);
	fx_pod(&f, "default", "db-1", "10.1.0.42", "app=db,role=replica", true);
	e = fx_eps(&f, "default", "db-abc", "db");
	fx_eps_port(&f, e, "pg", 5433);
	fx_eps_port(&f, e, "admin", 9001);
	fx_eps_ep(&f, e, "10.1.0.42", false, "db-1");	/* by targetRef */
	fx_eps_ep(&f, e, "10.1.0.41", false, NULL);		/* by IP */
	e = fx_eps(&f, "default", "db-def", "db");
	fx_eps_port(&f, e, "pg", 5433);
	fx_eps_ep(&f, e, "10.1.0.41", true, "db-0");		/* duplicate: ready wins */
	fx_eps_ep(&f, e, "10.1.0.77", true, NULL);		/* unknown pod */
	/* Another service's slice. */
	e = fx_eps(&f, "default", "cache-1", "cache");
	fx_eps_port(&f, e, "pg", 5433);
	fx_eps_ep(&f, e, "10.1.0.88", true, NULL);
	dr = fx_dr(&f, "default", "db", "db.default.svc.cluster.local");
	fx_subset(&f, dr, "primary", "role=primary");

	ASSERT_EQ(plan_build(&f.set, &p), 0);
	ps = find_svc(&p, "db.default.svc.cluster.local", 5432);
	c0 = find_cluster(ps, NULL);
	c1 = find_cluster(ps, "primary");
	if (ASSERT_TRUE(c0 && c1) && ASSERT_EQ(c0->n_backends, 3)) {
		ASSERT_EQ(c0->backends[0].key.addr, fx_ip("10.1.0.41"));
		ASSERT_EQ(c0->backends[0].key.port, htons(5433));
		ASSERT_EQ(c0->backends[0].flags, SM_BE_F_READY);
		ASSERT_STREQ(c0->backends[0].pod, "default/db-0");
		ASSERT_EQ(c0->backends[1].key.addr, fx_ip("10.1.0.42"));
		ASSERT_EQ(c0->backends[1].flags, 0);
		ASSERT_STREQ(c0->backends[1].pod, "default/db-1");
		ASSERT_EQ(c0->backends[2].key.addr, fx_ip("10.1.0.77"));
		ASSERT_TRUE(c0->backends[2].pod == NULL);
		/* Only the pod-backed primary; the unknown one is in no subset. */
		if (ASSERT_EQ(c1->n_backends, 1))
			ASSERT_EQ(c1->backends[0].key.addr, fx_ip("10.1.0.41"));
	}
	ps = find_svc(&p, "db.default.svc.cluster.local", 9000);
	if (ASSERT_TRUE(ps) && ASSERT_EQ(ps->clusters[0].n_backends, 2))
		ASSERT_EQ(ps->clusters[0].backends[0].key.port, htons(9001));
	plan_free(&p);
	fx_free(&f);
}

TEST(plan_build_endpointslice_unnamed_port)
{
	struct fx f;
	struct plan p;
	struct pol_service *s;
	struct pol_eps *e;

	fx_init(&f);
	s = fx_svc(&f, "default", "one", "10.96.0.51", NULL);
	fx_svc_port(&f, s, "web", 80, 8080, NULL);
	e = fx_eps(&f, "default", "one-x", "one");
	fx_eps_port(&f, e, NULL, 8080);
	fx_eps_ep(&f, e, "10.1.0.60", true, NULL);

	ASSERT_EQ(plan_build(&f.set, &p), 0);
	if (ASSERT_EQ(p.n_svcs, 1) && ASSERT_EQ(p.svcs[0].clusters[0].n_backends, 1))
		ASSERT_EQ(p.svcs[0].clusters[0].backends[0].key.port, htons(8080));
	plan_free(&p);
	fx_free(&f);
}

/*
 * trafficPolicy merge, Istio's order: top level, its portLevelSettings for
 * the port, then the subset's policy, then the subset's portLevelSettings.
 * A portLevelSettings entry inherits nothing: what it omits takes the
 * default, not the destination-level value (Istio TrafficPolicy docs,
 * istio/istio#58297, pilot MergeTrafficPolicy).
 */
TEST(plan_build_traffic_policy_inheritance)
{
	struct fx f;
	struct plan p;
	struct pol_service *s;
	struct pol_dr *dr;
	struct pol_subset *ss;
	struct pol_traffic_policy *pl;
	static const struct {
		uint16_t port;
		const char *subset;
		uint8_t lb;
		uint32_t max_conns;
		uint8_t min_health;
	} want[] = {
		/* port-level loadBalancer only: the pool is back to its default */
		{ 9080, NULL, SM_LB_RANDOM, 0, 0 },
		{ 9080, "v1", SM_LB_RANDOM, 0, 0 },
		{ 9080, "v2", SM_LB_MAGLEV, 0, 0 },
		/* the subset's pool, then its port-level outlierDetection only:
		 * loadBalancer and pool back to their defaults */
		{ 9080, "v3", SM_LB_LEAST_REQUEST, 0, 50 },
		{ 9090, NULL, SM_LB_ROUND_ROBIN, 100, 0 },
		{ 9090, "v1", SM_LB_ROUND_ROBIN, 100, 0 },
		{ 9090, "v2", SM_LB_MAGLEV, 100, 0 },
		{ 9090, "v3", SM_LB_ROUND_ROBIN, 5, 0 },
		/* port-level pool + outlier: loadBalancer back to its default */
		{ 9091, NULL, SM_LB_LEAST_REQUEST, 0, 30 },
		{ 9091, "v3", SM_LB_LEAST_REQUEST, 5, 30 },
	};

	fx_init(&f);
	s = fx_reviews(&f);
	fx_svc_port(&f, s, "tcp-b", 9090, 9090, NULL);
	fx_svc_port(&f, s, "tcp-c", 9091, 9091, NULL);
	dr = fx_dr(&f, "default", "reviews", "reviews");
	dr->tp.set = true;
	dr->tp.lb.kind = POL_LB_ROUND_ROBIN;
	dr->tp.max_connections = 100;
	pl = fx_tp_port(&f, &dr->tp, 9080);
	pl->lb.kind = POL_LB_RANDOM;
	/* A portLevelSettings connectionPool replaces the whole pool. */
	pl = fx_tp_port(&f, &dr->tp, 9091);
	pl->has_http_pool = true;
	pl->has_outlier = true;
	pl->min_health_percent = 30;
	fx_subset(&f, dr, "v1", "version=v1");
	ss = fx_subset(&f, dr, "v2", "version=v2");
	ss->tp.set = true;
	ss->tp.lb.kind = POL_LB_CONSISTENT_HASH;
	ss->tp.lb.hash = POL_HASH_SOURCE_IP;
	ss = fx_subset(&f, dr, "v3", "version=v3");
	ss->tp.set = true;
	ss->tp.max_connections = 5;
	pl = fx_tp_port(&f, &ss->tp, 9080);
	pl->has_outlier = true;
	pl->min_health_percent = 50;

	ASSERT_EQ(plan_build(&f.set, &p), 0);
	ASSERT_EQ(p.n_svcs, 3);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const struct plan_cluster *c = find_cluster(find_svc(&p, REVIEWS, want[i].port),
							    want[i].subset);
		int ok = 1;

		if (!ASSERT_TRUE(c))
			continue;
		ok &= ASSERT_EQ(c->lb, want[i].lb);
		ok &= ASSERT_EQ(c->max_conns, want[i].max_conns);
		ok &= ASSERT_EQ(c->min_health_pct, want[i].min_health);
		if (c->lb == SM_LB_MAGLEV) {
			ok &= ASSERT_EQ(c->maglev_size, 4093);
			ok &= ASSERT_TRUE(c->maglev && c->maglev[0] < c->n_backends);
		} else {
			ok &= ASSERT_EQ(c->maglev_size, 0);
		}
		if (!ok)
			fprintf(stderr, "  port %u subset %s\n", want[i].port,
				want[i].subset ? want[i].subset : "-");
	}
	plan_free(&p);
	fx_free(&f);
}

TEST(plan_build_lb_mapping)
{
	static const struct {
		enum pol_lb_kind kind;
		enum pol_hash_kind hash;
		int64_t max_conns;
		int32_t min_health;
		uint8_t want_lb;
		uint32_t want_max;
		uint8_t want_min;
		const char *warning;
	} c[] = {
		{ POL_LB_UNSET, 0, -1, -1, SM_LB_LEAST_REQUEST, 0, 0, NULL },
		{ POL_LB_LEAST_REQUEST, 0, 1, 0, SM_LB_LEAST_REQUEST, 1, 0, NULL },
		{ POL_LB_LEAST_CONN, 0, 4294967295LL, 100, SM_LB_LEAST_REQUEST, 0, 100, NULL },
		{ POL_LB_ROUND_ROBIN, 0, 4294967294LL, 20, SM_LB_ROUND_ROBIN, 4294967294u, 20, NULL },
		{ POL_LB_RANDOM, 0, 0, -1, SM_LB_RANDOM, 0, 0, NULL },
		{ POL_LB_PASSTHROUGH, 0, -1, -1, SM_LB_RANDOM, 0, 0, "PASSTHROUGH" },
		{ POL_LB_CONSISTENT_HASH, POL_HASH_SOURCE_IP, -1, -1, SM_LB_MAGLEV, 0, 0, NULL },
		{ POL_LB_CONSISTENT_HASH, POL_HASH_HEADER, -1, -1, SM_LB_LEAST_REQUEST, 0, 0,
		  "consistentHash.httpHeaderName needs the L7 agent; L4 uses LEAST_REQUEST" },
		{ POL_LB_CONSISTENT_HASH, POL_HASH_COOKIE, -1, -1, SM_LB_LEAST_REQUEST, 0, 0,
		  "consistentHash.httpCookie needs the L7 agent" },
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct fx f;
		struct plan p;
		struct pol_dr *dr;

		fx_init(&f);
		fx_reviews(&f);
		dr = fx_dr(&f, "default", "reviews", "reviews.default");
		dr->tp.set = true;
		dr->tp.lb.kind = c[i].kind;
		dr->tp.lb.hash = c[i].hash;
		dr->tp.max_connections = c[i].max_conns;
		dr->tp.min_health_percent = c[i].min_health;
		dr->tp.has_outlier = c[i].min_health >= 0;
		if (ASSERT_EQ(plan_build(&f.set, &p), 0) && ASSERT_EQ(p.n_svcs, 1)) {
			const struct plan_cluster *cl = &p.svcs[0].clusters[0];
			int ok = ASSERT_EQ(cl->lb, c[i].want_lb);

			ok &= ASSERT_EQ(cl->max_conns, c[i].want_max);
			ok &= ASSERT_EQ(cl->min_health_pct, c[i].want_min);
			if (c[i].warning)
				ok &= ASSERT_TRUE(has_diag(&f.set, c[i].warning));
			else
				ok &= ASSERT_EQ(f.set.n_diags, 0);
			if (!ok)
				fprintf(stderr, "  case %zu\n", i);
		}
		plan_free(&p);
		fx_free(&f);
	}
}

static void count_slots(const struct plan_service *s, size_t *count, size_t n)
{
	memset(count, 0, n * sizeof(*count));
	for (size_t i = 0; i < s->n_slots; i++)
		if (s->slots[i] < n)
			count[s->slots[i]]++;
}

TEST(plan_build_tcp_route_weighted_subsets)
{
	struct fx f;
	struct plan p;
	struct pol_dr *dr;
	struct pol_vs *vs;
	struct pol_tcp_route *r;
	const struct plan_service *s;
	size_t count[8];

	fx_init(&f);
	fx_reviews(&f);
	dr = fx_dr(&f, "default", "reviews", "reviews");
	fx_subset(&f, dr, "v1", "version=v1");
	fx_subset(&f, dr, "v2", "version=v2");
	fx_subset(&f, dr, "v9", "version=v9");
	vs = fx_vs(&f, "default", "reviews-canary", "reviews");
	r = fx_tcp(&f, vs);
	fx_match(&f, r, 9999);		/* other port: not this route */
	fx_dest(&f, r, "reviews", "v2", 0, 100);
	r = fx_tcp(&f, vs);
	fx_dest(&f, r, "reviews", "v1", 0, 80);
	fx_dest(&f, r, "reviews.default.svc.cluster.local", "v2", 0, 20);

	ASSERT_EQ(plan_build(&f.set, &p), 0);
	s = find_svc(&p, REVIEWS, 9080);
	if (!ASSERT_TRUE(s) || !ASSERT_EQ(s->n_slots, 5))
		goto out;
	ASSERT_STREQ(s->route_from, "default/reviews-canary");
	ASSERT_EQ(s->n_clusters, 4);
	count_slots(s, count, s->n_clusters);
	ASSERT_EQ(count[find_cluster(s, "v1") - s->clusters], 4);
	ASSERT_EQ(count[find_cluster(s, "v2") - s->clusters], 1);
	ASSERT_EQ(count[0], 0);
out:
	plan_free(&p);
	fx_free(&f);
}

TEST(plan_build_tcp_route_empty_subset_and_defaults)
{
	struct fx f;
	struct plan p;
	struct pol_dr *dr;
	struct pol_vs *vs;
	struct pol_tcp_route *r;
	const struct plan_service *s;
	const struct plan_cluster *c;
	size_t count[8];

	fx_init(&f);
	fx_reviews(&f);
	dr = fx_dr(&f, "default", "reviews", "reviews");
	fx_subset(&f, dr, "v1", "version=v1");
	fx_subset(&f, dr, "v9", "version=v9");
	vs = fx_vs(&f, "default", "reviews", "reviews");
	r = fx_tcp(&f, vs);
	fx_match(&f, r, 9080);
	fx_dest(&f, r, "reviews", "v1", 0, 50);
	fx_dest(&f, r, "reviews", "v9", 0, 50);

	ASSERT_EQ(plan_build(&f.set, &p), 0);
	s = find_svc(&p, REVIEWS, 9080);
	c = find_cluster(s, "v9");
	if (ASSERT_TRUE(c) && ASSERT_EQ(s->n_slots, 2)) {
		ASSERT_EQ(c->n_backends, 0);
		count_slots(s, count, s->n_clusters);
		ASSERT_EQ(count[c - s->clusters], 1);
	}
	plan_free(&p);
	fx_free(&f);

	/* One destination, weight unset: one slot, 100 %. */
	fx_init(&f);
	fx_reviews(&f);
	dr = fx_dr(&f, "default", "reviews", "reviews");
	fx_subset(&f, dr, "v2", "version=v2");
	vs = fx_vs(&f, "default", "reviews", "reviews.default.svc");
	r = fx_tcp(&f, vs);
	fx_dest(&f, r, "reviews", "v2", 0, -1);
	ASSERT_EQ(plan_build(&f.set, &p), 0);
	s = find_svc(&p, REVIEWS, 9080);
	if (ASSERT_TRUE(s) && ASSERT_EQ(s->n_slots, 1))
		ASSERT_STREQ(s->clusters[s->slots[0]].subset, "v2");
	ASSERT_EQ(f.set.n_diags, 0);
	plan_free(&p);
	fx_free(&f);
}

TEST(plan_build_tcp_route_other_service)
{
	struct fx f;
	struct plan p;
	struct pol_service *ratings;
	struct pol_vs *vs;
	struct pol_tcp_route *r;
	const struct plan_service *s;
	size_t count[8];

	fx_init(&f);
	fx_reviews(&f);
	ratings = fx_svc(&f, "default", "ratings", "10.96.0.21", "app=ratings");
	fx_svc_port(&f, ratings, "tcp", 7000, 7070, NULL);
	fx_pod(&f, "default", "ratings-1", "10.1.0.31", "app=ratings", true);
	vs = fx_vs(&f, "default", "reviews", "reviews");
	r = fx_tcp(&f, vs);
	fx_dest(&f, r, "reviews", NULL, 0, 90);
	fx_dest(&f, r, "ratings", NULL, 0, 10);	/* its only port: 7000 */

	ASSERT_EQ(plan_build(&f.set, &p), 0);
	s = find_svc(&p, REVIEWS, 9080);
	if (ASSERT_TRUE(s) && ASSERT_EQ(s->n_clusters, 2) && ASSERT_EQ(s->n_slots, 10)) {
		const struct plan_cluster *c = &s->clusters[1];

		ASSERT_EQ(c->id, plan_cluster_id("ratings.default.svc.cluster.local", 7000, NULL));
		ASSERT_STREQ(c->name, "outbound|7000||ratings.default.svc.cluster.local");
		if (ASSERT_EQ(c->n_backends, 1))
			ASSERT_EQ(c->backends[0].key.port, htons(7070));
		count_slots(s, count, 2);
		ASSERT_EQ(count[0], 9);
		ASSERT_EQ(count[1], 1);
	}
	/* ratings itself is untouched. */
	s = find_svc(&p, "ratings.default.svc.cluster.local", 7000);
	if (ASSERT_TRUE(s))
		ASSERT_EQ(s->n_slots, 0);
	plan_free(&p);
	fx_free(&f);
}

TEST(plan_build_tcp_route_not_for_mesh)
{
	struct fx f;
	struct plan p;
	struct pol_vs *vs;
	struct pol_tcp_route *r;
	struct pol_l4_match *m;

	fx_init(&f);
	fx_reviews(&f);
	/* Gateway-only VS: not applied to the mesh. */
	vs = fx_vs(&f, "default", "edge", "reviews");
	vs->gateways[vs->n_gateways++] = "istio-system/ingress";
	r = fx_tcp(&f, vs);
	fx_dest(&f, r, "reviews", NULL, 0, -1);
	/* Per-client match: warned, block ignored, so the route does not match. */
	vs = fx_vs(&f, "default", "by-source", "reviews");
	r = fx_tcp(&f, vs);
	m = fx_match(&f, r, 0);
	m->source_namespace = "frontend";
	fx_dest(&f, r, "reviews", NULL, 0, -1);

	ASSERT_EQ(plan_build(&f.set, &p), 0);
	if (ASSERT_EQ(p.n_svcs, 1)) {
		ASSERT_EQ(p.svcs[0].n_slots, 0);
		ASSERT_TRUE(p.svcs[0].route_from == NULL);
	}
	ASSERT_TRUE(has_diag(&f.set, "sourceNamespace is per client"));
	plan_free(&p);
	fx_free(&f);
}

/* Every Istio spelling of the host, from the DR's namespace, names reviews. */
TEST(plan_build_host_forms)
{
	static const struct {
		const char *ns;
		const char *host;
		bool applies;
	} c[] = {
		{ "default", "reviews", true },
		{ "default", "reviews.default", true },
		{ "default", "reviews.default.svc", true },
		{ "default", REVIEWS, true },
		{ "istio-config", "reviews.default", true },
		{ "istio-config", REVIEWS, true },
		{ "istio-config", "reviews", false },
		{ "default", "*.default.svc.cluster.local", false },
		{ "default", "ratings", false },
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct fx f;
		struct plan p;
		struct pol_dr *dr;

		fx_init(&f);
		fx_reviews(&f);
		dr = fx_dr(&f, c[i].ns, "dr", c[i].host);
		dr->tp.set = true;
		dr->tp.lb.kind = POL_LB_ROUND_ROBIN;
		if (ASSERT_EQ(plan_build(&f.set, &p), 0) && ASSERT_EQ(p.n_svcs, 1))
			if (!ASSERT_EQ(p.svcs[0].clusters[0].lb,
				       c[i].applies ? SM_LB_ROUND_ROBIN : SM_LB_LEAST_REQUEST))
				fprintf(stderr, "  %s in %s\n", c[i].host, c[i].ns);
		plan_free(&p);
		fx_free(&f);
	}
}

TEST(plan_build_dr_prefers_service_namespace)
{
	struct fx f;
	struct plan p;
	struct pol_dr *dr;

	fx_init(&f);
	fx_reviews(&f);
	dr = fx_dr(&f, "istio-config", "global", REVIEWS);
	dr->tp.lb.kind = POL_LB_RANDOM;
	dr = fx_dr(&f, "default", "local", "reviews");
	dr->tp.lb.kind = POL_LB_ROUND_ROBIN;
	ASSERT_EQ(plan_build(&f.set, &p), 0);
	if (ASSERT_EQ(p.n_svcs, 1))
		ASSERT_EQ(p.svcs[0].clusters[0].lb, SM_LB_ROUND_ROBIN);
	plan_free(&p);
	fx_free(&f);
}

TEST(plan_build_pod_opt_out)
{
	struct fx f;
	struct plan p;
	struct pol_pod *pod;

	fx_init(&f);
	pod = fx_pod(&f, "default", "b", "10.1.0.9", "app=b", true);
	pod->meta.annotations = fx_labels(&f, "sockmesh.io/redirect=false");
	pod = fx_pod(&f, "default", "a", "10.1.0.8", "app=a,sockmesh.io/redirect=false", true);
	fx_pod(&f, "default", "c", "10.1.0.7", "app=c", true);
	pod = fx_pod(&f, "default", "d", "10.1.0.6", "app=d", true);
	pod->meta.annotations = fx_labels(&f, "sockmesh.io/redirect=true");

	ASSERT_EQ(plan_build(&f.set, &p), 0);
	ASSERT_EQ(p.n_svcs, 0);
	if (ASSERT_EQ(p.n_pods, 2)) {
		ASSERT_EQ(p.pods[0].key.addr, fx_ip("10.1.0.8"));
		ASSERT_EQ(p.pods[1].key.addr, fx_ip("10.1.0.9"));
		ASSERT_EQ(p.pods[0].flags, SM_POD_F_NO_REDIRECT);
	}
	plan_free(&p);
	fx_free(&f);
}

TEST(plan_build_deterministic)
{
	struct fx f;
	struct plan a, b;
	struct pol_dr *dr;

	fx_init(&f);
	fx_reviews(&f);
	dr = fx_dr(&f, "default", "reviews", "reviews");
	dr->tp.lb.kind = POL_LB_CONSISTENT_HASH;
	dr->tp.lb.hash = POL_HASH_SOURCE_IP;
	ASSERT_EQ(plan_build(&f.set, &a), 0);
	ASSERT_EQ(plan_build(&f.set, &b), 0);
	if (ASSERT_EQ(a.n_svcs, 1) && ASSERT_EQ(b.n_svcs, 1)) {
		const struct plan_cluster *x = &a.svcs[0].clusters[0], *y = &b.svcs[0].clusters[0];

		ASSERT_EQ(x->id, y->id);
		if (ASSERT_EQ(x->maglev_size, y->maglev_size) && ASSERT_EQ(x->maglev_size, 4093))
			ASSERT_EQ(memcmp(x->maglev, y->maglev, x->maglev_size * sizeof(*x->maglev)), 0);
	}
	plan_free(&a);
	plan_free(&b);
	fx_free(&f);
}
