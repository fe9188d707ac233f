// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * l7: validated policy set + plan -> the agent's L7 configuration.
 *
 * Istio semantics followed here (references: istio.io VirtualService and
 * DestinationRule reference, istio/api protos, pilot's cluster and route
 * builders):
 *  - protocol selection: Service port appProtocol, else the port name's
 *    prefix before the first '-' (case-insensitive); http, http_proxy are
 *    HTTP/1.1; http2, grpc, grpc-web (and appProtocol kubernetes.io/h2c)
 *    are HTTP/2 to the backend (Istio's IsHTTP2); tcp, tls, https, mongo,
 *    mysql, redis, udp are not HTTP. A VirtualService with http routes, or
 *    a DestinationRule with outlierDetection or connectionPool.http, also
 *    makes a port L7 unless the port is declared a non-HTTP protocol (Istio
 *    never applies http routes there). The proxy speaks HTTP/1.1 only, so
 *    an HTTP/2 port stays L4 in the kernel whatever its policy (with a
 *    warning when http routes or L7 policy are thereby not applied, and
 *    the reason in l7_config.l4_ports for `sockmeshctl services`).
 *  - trafficPolicy merge and cluster defaults: compile_cluster_policy()
 *    (compile.c), shared with the kernel plan.
 *  - retries when unset: 2 attempts on
 *    connect-failure, refused-stream, unavailable, cancelled,
 *    retriable-status-codes (503); Envoy back-off base 25 ms.
 *
 * Generations. A full build makes every object; a delta
 * (l7_config_patch) starts from its predecessor's tables, shared chunk by
 * chunk (l7_tab.h), and works in two passes. Out: the service ports
 * re-planned or gone, and those whose vhost routes to a service named or
 * re-planned (dep_tab: service ports by their vhost's destination
 * hosts), leave the tables, and with their last user the vhosts and
 * clusters they used; so do the Gateways' vhosts. In: those ports are
 * built again; a cluster or vhost they need is this build's if made
 * already (the memos), else the predecessor's unless a service it reads
 * was named or re-planned (the "dirty" FQDNs), else made; a port whose
 * only change is a destination of its vhost gets the vhost's routes
 * resolved again from the same policy routes (l7_vhost_again). What no
 * change reaches is never touched, and stays in chunks both generations
 * hold.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "compile/compile.h"
#include "common/grow.h"
#include "common/hash.h"
#include "common/u64map.h"
#include "compile/l7.h"

#define L7_FQDN_MAX		256
#define L7_MESH			"mesh"
#define L7_RETRY_ATTEMPTS	2
#define L7_RETRY_BACKOFF_MS	25

/*
 * A host (resolved to its FQDN) of a mesh VirtualService with http routes
 * or of a DestinationRule, sorted by (fqdn, idx): which one applies to a
 * service port is a bisection per port, not a pass over every object with
 * an FQDN formatted per host (that pass, per service port, was most of a
 * whole L7 build at 10,000 services).
 */
struct l7_hostref {
	char *fqdn;
	size_t idx;		/* in set->vss / set->drs: the first in policy order wins */
	const char *ns;		/* the object's namespace (preferred: the service's) */
};

struct l7_hosttab {
	struct l7_hostref *v;
	size_t n, cap;
};

struct l7_build {
	struct pol_set *set;
	struct plan *plan;
	struct l7_config *c;
	const struct l7_config *old;	/* a delta's predecessor (tables shared), or NULL */
	const char *domain;
	struct u64map cl_memo;		/* id -> cluster made or taken (a reference each) */
	struct u64map vh_memo;		/* key -> mesh vhost made or taken (a reference each) */
	uint64_t *dirty;		/* hashes of FQDNs whose clusters are made anew */
	size_t n_dirty, cap_dirty;
	bool scan;			/* a small delta: no host tables, scans */
	struct l7_hosttab vs_hosts, dr_hosts;
	const struct pol_service *last_svc;	/* l7_svc_build's last lookup */
};

/* ---- small helpers ---- */

/* Like plan.c: identical diagnostics are kept once. */
static int l7_diag(struct l7_build *b, enum pol_diag_level level,
		   const struct pol_loc *loc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int l7_diag(struct l7_build *b, enum pol_diag_level level,
		   const struct pol_loc *loc, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = policy_diag_vadd_unique(b->set, level, loc, fmt, ap);
	va_end(ap);
	return ret;
}

static int l7_strdup(const char *s, char **out)
{
	*out = NULL;
	if (!s)
		return 0;
	*out = strdup(s);
	return *out ? 0 : -ENOMEM;
}

static int l7_strdup_lower(const char *s, char **out)
{
	int err = l7_strdup(s, out);

	for (char *p = *out; !err && p && *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return err;
}

static int l7_labels_copy(const struct pol_labels *in, struct pol_labels *out)
{
	memset(out, 0, sizeof(*out));
	if (!in->n)
		return 0;
	out->v = calloc(in->n, sizeof(*out->v));
	if (!out->v)
		return -ENOMEM;
	for (size_t i = 0; i < in->n; i++) {
		out->n++;
		if (l7_strdup(in->v[i].key, &out->v[i].key) ||
		    l7_strdup(in->v[i].value, &out->v[i].value))
			return -ENOMEM;
	}
	return 0;
}

static void l7_labels_free(struct pol_labels *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].key);
		free(l->v[i].value);
	}
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static void l7_strv_free(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

static int l7_strv_add(char ***v, size_t *n, const char *s)
{
	char **nv = realloc(*v, (*n + 1) * sizeof(**v));

	if (!nv)
		return -ENOMEM;
	*v = nv;
	if (l7_strdup(s, &nv[*n]))
		return -ENOMEM;
	(*n)++;
	return 0;
}

static int l7_fqdn(const struct l7_build *b, const struct pol_service *svc,
		   char *out, size_t len)
{
	int n = snprintf(out, len, "%s.%s.svc.%s", svc->meta.name, svc->meta.ns,
			 b->domain);

	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

static bool l7_is_tcp(uint8_t proto)
{
	return proto == 0 || proto == SM_IPPROTO_TCP;
}

static const struct pol_svc_port *l7_svc_port(const struct pol_service *svc, uint16_t port)
{
	for (size_t i = 0; i < svc->n_ports; i++)
		if (svc->ports[i].port == port && l7_is_tcp(svc->ports[i].proto))
			return &svc->ports[i];
	return NULL;
}

static const struct pol_service *l7_find_pol_svc(const struct pol_set *set,
						 const char *ns, const char *name)
{
	return policy_index_service(set, ns, strlen(ns), name, strlen(name));
}

static bool l7_gateways_mesh(char *const *gws, size_t n)
{
	if (n == 0)
		return true;
	for (size_t i = 0; i < n; i++)
		if (gws[i] && strcmp(gws[i], L7_MESH) == 0)
			return true;
	return false;
}

/* "mesh", "ns/name", or "name" (relative to ns) -> "mesh" / "ns/name". */
static int l7_gateway_norm(const char *g, const char *ns, char **out)
{
	if (strcmp(g, L7_MESH) == 0 || strchr(g, '/'))
		return l7_strdup(g, out);
	if (asprintf(out, "%s/%s", ns, g) < 0) {
		*out = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* ---- protocol selection ---- */

enum l7_proto {
	L7_PROTO_UNKNOWN = 0,
	L7_PROTO_HTTP,
	L7_PROTO_H2,		/* HTTP/2 to the backend: kept L4 (proxy is HTTP/1.1) */
	L7_PROTO_OTHER,
};

static enum l7_proto l7_proto_parse(const char *s, size_t len)
{
	static const char *const http[] = { "http", "http_proxy" };
	static const char *const h2[] = { "http2", "grpc", "grpc-web", "kubernetes.io/h2c" };
	static const char *const other[] = { "tcp", "udp", "https", "tls", "mongo",
					     "mysql", "redis" };

	for (size_t i = 0; i < sizeof(http) / sizeof(http[0]); i++)
		if (strlen(http[i]) == len && strncasecmp(s, http[i], len) == 0)
			return L7_PROTO_HTTP;
	for (size_t i = 0; i < sizeof(h2) / sizeof(h2[0]); i++)
		if (strlen(h2[i]) == len && strncasecmp(s, h2[i], len) == 0)
			return L7_PROTO_H2;
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
		if (strlen(other[i]) == len && strncasecmp(s, other[i], len) == 0)
			return L7_PROTO_OTHER;
	return L7_PROTO_UNKNOWN;
}

/* Istio protocol selection for a Service port; why (if not NULL) gets the reason. */
static enum l7_proto l7_port_protocol(const struct pol_svc_port *sp, char *why, size_t len)
{
	enum l7_proto p;

	if (sp->app_protocol) {
		p = l7_proto_parse(sp->app_protocol, strlen(sp->app_protocol));
		if (p != L7_PROTO_UNKNOWN) {
			if (why)
				snprintf(why, len, "appProtocol %s (Istio protocol selection)",
					 sp->app_protocol);
			return p;
		}
	}
	if (sp->name) {
		const char *dash = strchr(sp->name, '-');
		size_t n = dash ? (size_t)(dash - sp->name) : strlen(sp->name);

		p = l7_proto_parse(sp->name, n);
		if (p != L7_PROTO_UNKNOWN) {
			if (why)
				snprintf(why, len, "port name %s (Istio protocol selection)",
					 sp->name);
			return p;
		}
	}
	return L7_PROTO_UNKNOWN;
}

/* ---- which VirtualService / DestinationRule applies ---- */

static bool l7_host_is(const struct l7_build *b, const char *host, const char *ns,
		       const char *fqdn)
{
	char buf[L7_FQDN_MAX];

	if (!host || policy_host_fqdn(b->set, host, ns, buf, sizeof(buf)))
		return false;
	return strcmp(buf, fqdn) == 0;
}

/* Can any http route of vs apply to requests on port? */
static bool l7_vs_http_on_port(const struct pol_vs *vs, uint16_t port)
{
	for (size_t i = 0; i < vs->n_http; i++) {
		const struct pol_http_route *r = &vs->http[i];

		if (r->n_match == 0)
			return true;
		for (size_t m = 0; m < r->n_match; m++)
			if (!r->match[m].port || r->match[m].port == port)
				return true;
	}
	return false;
}

static int l7_hostref_cmp(const void *a, const void *b)
{
	const struct l7_hostref *x = a, *y = b;
	int c = strcmp(x->fqdn, y->fqdn);

	return c ? c : x->idx < y->idx ? -1 : x->idx > y->idx;
}

static void l7_hosttab_free(struct l7_hosttab *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->v[i].fqdn);
	free(t->v);
	memset(t, 0, sizeof(*t));
}

/* host of the object idx (namespace ns), if it names a service FQDN */
static int l7_hosttab_add(struct l7_build *b, struct l7_hosttab *t, const char *host,
			  const char *ns, size_t idx)
{
	char f[L7_FQDN_MAX];

	if (!host || policy_host_fqdn(b->set, host, ns, f, sizeof(f)))
		return 0;
	if (sm_grow((void **)&t->v, &t->cap, t->n + 1, sizeof(*t->v)))
		return -ENOMEM;
	if (l7_strdup(f, &t->v[t->n].fqdn))
		return -ENOMEM;
	t->v[t->n].idx = idx;
	t->v[t->n++].ns = ns;
	return 0;
}

static int l7_hosttabs_build(struct l7_build *b)
{
	const struct pol_set *set = b->set;
	int err = 0;

	for (size_t i = 0; !err && i < set->n_vss; i++) {
		const struct pol_vs *vs = &set->vss[i];

		if (!vs->n_http || !l7_gateways_mesh(vs->gateways, vs->n_gateways))
			continue;
		for (size_t h = 0; !err && h < vs->n_hosts; h++)
			err = l7_hosttab_add(b, &b->vs_hosts, vs->hosts[h], vs->meta.ns, i);
	}
	for (size_t i = 0; !err && i < set->n_drs; i++)
		err = l7_hosttab_add(b, &b->dr_hosts, set->drs[i].host, set->drs[i].meta.ns, i);
	if (err)
		return err;
	if (b->vs_hosts.n)
		qsort(b->vs_hosts.v, b->vs_hosts.n, sizeof(*b->vs_hosts.v), l7_hostref_cmp);
	if (b->dr_hosts.n)
		qsort(b->dr_hosts.v, b->dr_hosts.n, sizeof(*b->dr_hosts.v), l7_hostref_cmp);
	return 0;
}

/*
 * The object for fqdn: the first (policy order) in the service's
 * namespace, else the first; SIZE_MAX if none. Istio's choice of the mesh
 * VirtualService with http routes and of the DestinationRule (as
 * plan_find_dr) for a host.
 */
static size_t l7_hosttab_find(const struct l7_hosttab *t, const char *svc_ns, const char *fqdn)
{
	size_t lo = 0, hi = t->n, first = SIZE_MAX;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(t->v[mid].fqdn, fqdn) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < t->n && strcmp(t->v[lo].fqdn, fqdn) == 0; lo++) {
		if (strcmp(t->v[lo].ns, svc_ns) == 0)
			return t->v[lo].idx;
		if (first == SIZE_MAX)
			first = t->v[lo].idx;
	}
	return first;
}

/* l7_hosttab_find without the table: a pass over the objects (a small delta) */
static size_t l7_scan_find(const struct l7_build *b, bool vs, const char *svc_ns,
			   const char *fqdn)
{
	const struct pol_set *set = b->set;
	size_t first = SIZE_MAX, n = vs ? set->n_vss : set->n_drs;

	for (size_t i = 0; i < n; i++) {
		const struct pol_vs *v = vs ? &set->vss[i] : NULL;
		const char *ns = vs ? v->meta.ns : set->drs[i].meta.ns;
		bool hit = false;

		if (vs && (!v->n_http || !l7_gateways_mesh(v->gateways, v->n_gateways)))
			continue;
		if (vs)
			for (size_t h = 0; h < v->n_hosts && !hit; h++)
				hit = l7_host_is(b, v->hosts[h], ns, fqdn);
		else
			hit = l7_host_is(b, set->drs[i].host, ns, fqdn);
		if (!hit)
			continue;
		if (strcmp(ns, svc_ns) == 0)
			return i;
		if (first == SIZE_MAX)
			first = i;
	}
	return first;
}

/* The mesh VirtualService with http routes for fqdn (index in set->vss), or SIZE_MAX. */
static size_t l7_find_vs(const struct l7_build *b, const char *svc_ns, const char *fqdn)
{
	return b->scan ? l7_scan_find(b, true, svc_ns, fqdn) :
			 l7_hosttab_find(&b->vs_hosts, svc_ns, fqdn);
}

/* The DestinationRule of service fqdn in namespace svc_ns (as plan_service_dr). */
static const struct pol_dr *l7_find_dr(const struct l7_build *b, const char *svc_ns,
				       const char *fqdn)
{
	size_t i = b->scan ? l7_scan_find(b, false, svc_ns, fqdn) :
			     l7_hosttab_find(&b->dr_hosts, svc_ns, fqdn);

	return i == SIZE_MAX ? NULL : &b->set->drs[i];
}

static const char *l7_tp_needs_l7(const struct pol_traffic_policy *tp, uint16_t port)
{
	if (tp->has_outlier)
		return "outlierDetection";
	if (tp->has_http_pool)
		return "connectionPool.http";
	for (size_t i = 0; i < tp->n_port_level; i++) {
		if (tp->port_level[i].port != port)
			continue;
		if (tp->port_level[i].tp.has_outlier)
			return "outlierDetection";
		if (tp->port_level[i].tp.has_http_pool)
			return "connectionPool.http";
	}
	return NULL;
}

static const char *l7_dr_needs_l7(const struct pol_dr *dr, uint16_t port)
{
	const char *why;

	if (!dr)
		return NULL;
	if ((why = l7_tp_needs_l7(&dr->tp, port)))
		return why;
	for (size_t i = 0; i < dr->n_subsets; i++)
		if ((why = l7_tp_needs_l7(&dr->subsets[i].tp, port)))
			return why;
	return NULL;
}

/* ---- cluster policy: the proxy's part of compile_cluster_policy() ---- */

static int l7_cluster_policy(struct l7_build *b, const struct pol_dr *dr,
			     const char *subset, uint16_t port, struct l7_cluster *cl)
{
	struct compile_cluster_policy cp;

	compile_cluster_policy(dr, subset, port, &cp);
	cl->lb = cp.lb;
	cl->hash_kind = POL_HASH_NONE;
	cl->cookie_ttl_s = -1;
	cl->pool = cp.pool;
	cl->outlier = cp.outlier;
	if (cp.lb == L7_LB_HASH) {
		cl->hash_kind = (uint8_t)cp.lb_src->hash;
		if (cp.lb_src->hash == POL_HASH_HEADER)
			return l7_strdup_lower(cp.lb_src->hash_key, &cl->hash_key);
		if (cp.lb_src->hash == POL_HASH_COOKIE && cp.lb_src->cookie_ttl_set) {
			int err = l7_strdup(cp.lb_src->cookie_path, &cl->cookie_path);

			if (err)
				return err;
			cl->cookie_ttl_s = cp.lb_src->cookie_ttl_s;
		}
		return l7_strdup(cp.lb_src->hash_key, &cl->hash_key);
	}
	return 0;
}

/* ---- reference-counted objects ---- */

/*
 * Service ports, clusters, vhosts and pods start with their reference
 * count (unsigned long refs): the tables take and drop references through
 * one pair of functions.
 */
_Static_assert(offsetof(struct l7_svc, refs) == 0 && offsetof(struct l7_cluster, refs) == 0 &&
	       offsetof(struct l7_vhost, refs) == 0 && offsetof(struct l7_pod, refs) == 0,
	       "refs first");

static void *l7_obj_get(void *obj)
{
	if (obj)
		__atomic_add_fetch((unsigned long *)obj, 1, __ATOMIC_RELAXED);
	return obj;
}

static bool l7_obj_last(void *obj)
{
	return obj && __atomic_sub_fetch((unsigned long *)obj, 1, __ATOMIC_ACQ_REL) == 0;
}

static void l7_tab_get_obj(void *obj)
{
	l7_obj_get(obj);
}

static void l7_cluster_put(struct l7_cluster *cl);
static void l7_vhost_put(struct l7_vhost *vh);
static void l7_svc_put(struct l7_svc *s);
static void l7_pod_put(struct l7_pod *p);

static void l7_tab_put_cluster(void *obj)
{
	l7_cluster_put(obj);
}

static void l7_tab_put_vhost(void *obj)
{
	l7_vhost_put(obj);
}

static void l7_tab_put_svc(void *obj)
{
	l7_svc_put(obj);
}

static void l7_tab_put_pod(void *obj)
{
	l7_pod_put(obj);
}

static const struct l7_tab_ops l7_cluster_ops = { l7_tab_get_obj, l7_tab_put_cluster };
static const struct l7_tab_ops l7_vhost_ops = { l7_tab_get_obj, l7_tab_put_vhost };
static const struct l7_tab_ops l7_svc_ops = { l7_tab_get_obj, l7_tab_put_svc };
static const struct l7_tab_ops l7_pod_ops = { l7_tab_get_obj, l7_tab_put_pod };

static uint64_t l7_hash_str(const char *s)
{
	return sm_hash_mix64(sm_hash_fnv1a64(SM_FNV64_OFFSET, s, strlen(s))) | 1;
}

/* host order (vip, port): the service ports' table key */
static uint64_t l7_svc_key(uint32_t vip, uint16_t port)
{
	return (uint64_t)ntohl(vip) << 16 | port;
}

/* A FQDN whose clusters this delta makes anew (its service was re-planned)? */
static bool l7_dirty_hash(const struct l7_build *b, uint64_t h)
{
	for (size_t i = 0; i < b->n_dirty; i++)
		if (b->dirty[i] == h)
			return true;
	return false;
}

static bool l7_dirty(const struct l7_build *b, const char *fqdn)
{
	return b->n_dirty && fqdn && l7_dirty_hash(b, l7_hash_str(fqdn));
}

static int l7_dirty_add(struct l7_build *b, const char *fqdn)
{
	uint64_t h = l7_hash_str(fqdn);

	if (l7_dirty_hash(b, h))
		return 0;
	if (sm_grow((void **)&b->dirty, &b->cap_dirty, b->n_dirty + 1, sizeof(*b->dirty)))
		return -ENOMEM;
	b->dirty[b->n_dirty++] = h;
	return 0;
}

/* One more / one less user in this config of a cluster (and, for a vhost, of its clusters). */
static int l7_cluster_use(struct l7_build *b, struct l7_cluster *cl)
{
	int ret = l7_tab_use(&b->c->cluster_tab, cl->id, cl);

	return ret < 0 ? ret : 0;
}

static int l7_cluster_unuse(struct l7_build *b, struct l7_cluster *cl)
{
	int ret = l7_tab_unuse(&b->c->cluster_tab, cl->id, cl);

	if (ret == 1)
		l7_cluster_put(cl);
	return ret < 0 ? ret : 0;
}

static int l7_vhost_use(struct l7_build *b, struct l7_vhost *vh)
{
	int ret = l7_tab_use(&b->c->vhost_tab, vh->key, vh);

	for (size_t r = 0; ret == 1 && r < vh->n_routes; r++) {
		const struct l7_route *rt = &vh->routes[r];

		for (size_t d = 0; ret == 1 && d < rt->n_dests; d++)
			if (l7_cluster_use(b, rt->dests[d].cluster))
				ret = -ENOMEM;
		for (size_t m = 0; ret == 1 && m < rt->n_mirrors; m++)
			if (l7_cluster_use(b, rt->mirrors[m].cluster))
				ret = -ENOMEM;
	}
	return ret < 0 ? ret : 0;
}

static int l7_vhost_unuse(struct l7_build *b, struct l7_vhost *vh)
{
	int ret = l7_tab_unuse(&b->c->vhost_tab, vh->key, vh), err = 0;

	if (ret != 1)
		return ret < 0 ? ret : 0;
	for (size_t r = 0; r < vh->n_routes; r++) {
		const struct l7_route *rt = &vh->routes[r];

		for (size_t d = 0; d < rt->n_dests; d++)
			err = l7_cluster_unuse(b, rt->dests[d].cluster) ?: err;
		for (size_t m = 0; m < rt->n_mirrors; m++)
			err = l7_cluster_unuse(b, rt->mirrors[m].cluster) ?: err;
	}
	l7_vhost_put(vh);
	return err;
}

/* ---- clusters ---- */

/* The plan's cluster id among the entries of the service's VIP, or NULL. */
static const struct plan_cluster *l7_plan_cluster(const struct plan *p, uint32_t vip, uint64_t id)
{
	size_t lo = 0, hi = p->n_svcs;
	uint32_t hv = ntohl(vip);

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ntohl(p->svcs[mid].key.vip) < hv)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; vip && lo < p->n_svcs && p->svcs[lo].key.vip == vip; lo++)
		for (size_t j = 0; j < p->svcs[lo].n_clusters; j++)
			if (p->svcs[lo].clusters[j].id == id)
				return &p->svcs[lo].clusters[j];
	return NULL;
}

static void l7_cluster_free(struct l7_cluster *cl)
{
	if (!cl)
		return;
	free(cl->name);
	free(cl->fqdn);
	free(cl->subset);
	free(cl->hash_key);
	free(cl->cookie_path);
	for (size_t i = 0; i < cl->n_hosts; i++)
		free(cl->hosts[i].pod);
	free(cl->hosts);
	free(cl);
}

static void l7_cluster_put(struct l7_cluster *cl)
{
	if (l7_obj_last(cl))
		l7_cluster_free(cl);
}

/*
 * A cluster this build already made or took, else the predecessor's
 * (still in the config's table, or taken out with its last user by this
 * delta) unless its service was re-planned. The build's memo holds a
 * reference on what it returns.
 */
static struct l7_cluster *l7_cluster_known(struct l7_build *b, uint64_t id)
{
	struct l7_cluster *cl = u64map_get(&b->cl_memo, id);

	if (cl)
		return cl;
	cl = l7_config_find_cluster(b->c, id);
	if (!cl && b->old)
		cl = l7_config_find_cluster(b->old, id);
	if (!cl || l7_dirty(b, cl->fqdn) || u64map_put(&b->cl_memo, id, cl))
		return NULL;
	return l7_obj_get(cl);
}

static int l7_cluster_keep(struct l7_build *b, struct l7_cluster *cl)
{
	int err = u64map_put(&b->cl_memo, cl->id, cl);

	if (err)
		l7_cluster_free(cl);
	return err;
}

/*
 * The cluster (svc, port, subset): shared by every route that names it.
 * Hosts from the plan's cluster of the same id, else built like plan.c does.
 */
static int l7_cluster_get(struct l7_build *b, const struct pol_service *svc,
			  uint16_t port, const char *subset, struct l7_cluster **out)
{
	struct plan_cluster tmp;
	const struct plan_cluster *pc;
	const struct pol_svc_port *sp;
	struct l7_cluster *cl;
	char fqdn[L7_FQDN_MAX], pwhy[160];
	uint64_t id;
	int err;

	*out = NULL;
	if (l7_fqdn(b, svc, fqdn, sizeof(fqdn)))
		return -ENOENT;
	id = plan_cluster_id(fqdn, port, subset);
	if ((*out = l7_cluster_known(b, id)))
		return 0;
	memset(&tmp, 0, sizeof(tmp));
	pc = l7_plan_cluster(b->plan, svc->cluster_ip, id);
	if (!pc) {
		err = plan_cluster_fill(b->set, svc, port, subset, &tmp);
		if (err)
			return err;
		pc = &tmp;
	}
	err = -ENOMEM;
	cl = calloc(1, sizeof(*cl));
	if (!cl)
		goto out;
	cl->refs = 1;
	cl->id = id;
	cl->port = port;
	if (l7_strdup(pc->name, &cl->name) || l7_strdup(fqdn, &cl->fqdn) ||
	    l7_strdup(subset, &cl->subset))
		goto out;
	if (pc->n_backends) {
		cl->hosts = calloc(pc->n_backends, sizeof(*cl->hosts));
		if (!cl->hosts)
			goto out;
	}
	for (size_t i = 0; i < pc->n_backends; i++) {
		struct l7_host *h = &cl->hosts[cl->n_hosts++];

		h->addr = pc->backends[i].key.addr;
		h->port = ntohs(pc->backends[i].key.port);
		h->ready = pc->backends[i].flags & SM_BE_F_READY;
		if (l7_strdup(pc->backends[i].pod, &h->pod))
			goto out;
	}
	sp = l7_svc_port(svc, port);
	cl->h2 = sp && l7_port_protocol(sp, pwhy, sizeof(pwhy)) == L7_PROTO_H2;
	err = l7_cluster_policy(b, l7_find_dr(b, svc->meta.ns, fqdn), subset, port, cl);
	cl->h2 = cl->h2 || cl->pool.h2_upgrade;	/* DestinationRule h2UpgradePolicy: UPGRADE */
	if (!err) {
		err = l7_cluster_keep(b, cl);	/* (frees it on failure) */
		if (!err)
			*out = cl;
		cl = NULL;
	}
out:
	l7_cluster_free(cl);
	plan_cluster_release(&tmp);
	return err;
}

/*
 * A destination that is no known Service (port): Envoy has no such cluster
 * and answers 503 NC ("cluster not found"); an empty cluster marked missing.
 */
static int l7_cluster_empty(struct l7_build *b, const char *host, uint16_t port,
			    const char *subset, struct l7_cluster **out)
{
	uint64_t id = plan_cluster_id(host, port, subset);
	struct l7_cluster *cl;

	if ((*out = l7_cluster_known(b, id)))
		return 0;
	cl = calloc(1, sizeof(*cl));
	if (!cl)
		return -ENOMEM;
	cl->refs = 1;
	cl->id = id;
	cl->port = port;
	cl->missing = true;
	l7_cluster_policy(b, NULL, NULL, port, cl);	/* the defaults */
	if (asprintf(&cl->name, "outbound|%u|%s|%s", port, subset ? subset : "", host) < 0)
		cl->name = NULL;
	if (!cl->name || l7_strdup(host, &cl->fqdn) || l7_strdup(subset, &cl->subset)) {
		l7_cluster_free(cl);
		return -ENOMEM;
	}
	if (l7_cluster_keep(b, cl))
		return -ENOMEM;
	*out = cl;
	return 0;
}

/*
 * The cluster a route destination names. Port: the one written, else the
 * context port (the service port the request came in on) when the
 * destination service has it, else its only port.
 */
static int l7_dest_cluster(struct l7_build *b, const struct pol_destination *d,
			   const char *vs_ns, uint16_t ctx_port, struct l7_cluster **out)
{
	const struct pol_service *dsvc = d->host ? policy_find_service(b->set, d->host, vs_ns) : NULL;
	const struct pol_svc_port *dsp = NULL;
	int err;

	if (!dsvc) {
		err = l7_diag(b, POL_DIAG_WARNING, &d->loc,
			      "http route destination host \"%s\" is not a known Service: requests to it get 503 (cluster not found, NC)",
			      d->host ? d->host : "");
		return err ? err : l7_cluster_empty(b, d->host ? d->host : "", d->port,
						    d->subset, out);
	}
	if (d->port) {
		dsp = l7_svc_port(dsvc, d->port);
	} else {
		if (ctx_port)
			dsp = l7_svc_port(dsvc, ctx_port);
		if (!dsp && dsvc->n_ports == 1 && l7_is_tcp(dsvc->ports[0].proto))
			dsp = &dsvc->ports[0];
	}
	if (!dsp) {
		char host[L7_FQDN_MAX];

		err = l7_diag(b, POL_DIAG_WARNING, &d->loc,
			      d->port ? "http route destination %s/%s: no TCP port %u; requests to it get 503" :
			      "http route destination %s/%s has several ports: set destination.port.number; requests to it get 503",
			      dsvc->meta.ns, dsvc->meta.name, d->port);
		if (err)
			return err;
		if (l7_fqdn(b, dsvc, host, sizeof(host)))
			return -ENOENT;
		return l7_cluster_empty(b, host, d->port, d->subset, out);
	}
	return l7_cluster_get(b, dsvc, dsp->port, d->subset, out);
}

/* ---- routes ---- */

static void l7_retry_defaults(struct l7_retry *r)
{
	memset(r, 0, sizeof(*r));
	r->attempts = L7_RETRY_ATTEMPTS;
	r->on = L7_RETRY_CONNECT_FAILURE | L7_RETRY_REFUSED_STREAM | L7_RETRY_STATUS_CODES |
		L7_RETRY_GRPC_UNAVAILABLE | L7_RETRY_GRPC_CANCELLED;
	r->codes[r->n_codes++] = 503;
	r->backoff_base_ms = L7_RETRY_BACKOFF_MS;
}

/*
 * Istio's retry.ConvertPolicy: start from the default, override attempts,
 * retryOn (numbers are status codes, adding retriable-status-codes) and
 * perTryTimeout. gRPC conditions (cancelled, unavailable, ...) fire on the
 * grpc-status of a trailers-only response (proxy_util.c px_retry_grpc).
 */
static void l7_retry_resolve(const struct pol_retries *in, struct l7_retry *r)
{
	l7_retry_defaults(r);
	if (!in->set)
		return;
	r->attempts = in->attempts > 0 ? (uint32_t)in->attempts : 0;
	if (in->per_try_timeout_ms > 0)
		r->per_try_timeout_ms = (uint64_t)in->per_try_timeout_ms;
	if (in->backoff_ms > 0)
		r->backoff_base_ms = (uint64_t)in->backoff_ms;
	r->retry_remote_localities = in->retry_remote_localities;
	if (in->retry_on) {
		static const struct { const char *n; uint32_t bit; } names[] = {
			{ "5xx", L7_RETRY_5XX },
			{ "gateway-error", L7_RETRY_GATEWAY_ERROR },
			{ "connect-failure", L7_RETRY_CONNECT_FAILURE },
			{ "reset", L7_RETRY_RESET },
			{ "reset-before-request", L7_RETRY_RESET },
			{ "retriable-4xx", L7_RETRY_RETRIABLE_4XX },
			{ "refused-stream", L7_RETRY_REFUSED_STREAM },
			{ "retriable-status-codes", L7_RETRY_STATUS_CODES },
			{ "envoy-ratelimited", L7_RETRY_ENVOY_RATELIMITED },
			{ "cancelled", L7_RETRY_GRPC_CANCELLED },
			{ "deadline-exceeded", L7_RETRY_GRPC_DEADLINE },
			{ "resource-exhausted", L7_RETRY_GRPC_EXHAUSTED },
			{ "internal", L7_RETRY_GRPC_INTERNAL },
			{ "unavailable", L7_RETRY_GRPC_UNAVAILABLE },
		};
		const char *s = in->retry_on;

		r->on = 0;
		r->n_codes = 0;
		while (*s) {
			const char *e = strchr(s, ',');
			size_t len = e ? (size_t)(e - s) : strlen(s);
			char tok[64];
			char *end;
			long code;

			while (len && (*s == ' ' || *s == '\t')) {
				s++;
				len--;
			}
			while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
				len--;
			snprintf(tok, sizeof(tok), "%.*s", (int)len, s);
			for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
				if (strcmp(tok, names[i].n) == 0)
					r->on |= names[i].bit;
			code = strtol(tok, &end, 10);
			if (tok[0] && !*end && code >= 100 && code <= 599 &&
			    r->n_codes < L7_RETRY_MAX_CODES) {
				r->codes[r->n_codes++] = (uint16_t)code;
				r->on |= L7_RETRY_STATUS_CODES;
			}
			if (!e)
				break;
			s = e + 1;
		}
	}
}

static void l7_route_free(struct l7_route *r)
{
	for (size_t i = 0; i < r->n_dests; i++)
		l7_cluster_put(r->dests[i].cluster);
	for (size_t i = 0; i < r->n_mirrors; i++)
		l7_cluster_put(r->mirrors[i].cluster);
	free(r->dests);
	free(r->mirrors);
}

/* The host a destination names, as a FQDN when it is one: what the vhost depends on. */
static int l7_vhost_dep(struct l7_build *b, struct l7_vhost *vh, const char *host, const char *ns)
{
	char f[L7_FQDN_MAX];
	uint64_t h;
	uint64_t *nv;

	if (!host)
		host = "";
	else if (!policy_host_fqdn(b->set, host, ns, f, sizeof(f)))
		host = f;
	h = l7_hash_str(host);
	for (size_t i = 0; i < vh->n_deps; i++)
		if (vh->deps[i] == h)
			return 0;
	nv = realloc(vh->deps, (vh->n_deps + 1) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	vh->deps = nv;
	vh->deps[vh->n_deps++] = h;
	return 0;
}

/*
 * What the proxy needs beyond the policy route: destinations and mirrors
 * resolved to clusters (in the context of ctx_port), Istio's weights and
 * retry defaults. Everything else is read from the route itself. The
 * destination hosts go to vh->deps.
 */
static int l7_route_resolve(struct l7_build *b, struct l7_vhost *vh,
			    const struct pol_http_route *in, uint16_t ctx_port,
			    struct l7_route *r)
{
	int err;

	r->pol = in;
	if (in->n_route) {
		r->dests = calloc(in->n_route, sizeof(*r->dests));
		if (!r->dests)
			return -ENOMEM;
	}
	for (size_t i = 0; i < in->n_route; i++) {
		const struct pol_http_dest *hd = &in->route[i];
		struct l7_route_dest *d = &r->dests[r->n_dests];

		if ((err = l7_vhost_dep(b, vh, hd->dest.host, vh->ns)) ||
		    (err = l7_dest_cluster(b, &hd->dest, vh->ns, ctx_port, &d->cluster)))
			return err;
		l7_obj_get(d->cluster);
		r->n_dests++;
		/* Istio: one destination takes all traffic; several: unset = 0. */
		d->weight = in->n_route == 1 ? 100 : hd->weight > 0 ? (uint32_t)hd->weight : 0;
		r->total_weight += d->weight;
		d->headers = &hd->headers;
	}
	r->timeout_ms = in->timeout_ms > 0 ? (uint64_t)in->timeout_ms : 0;
	r->has_retry = in->retries.set;
	l7_retry_resolve(&in->retries, &r->retry);
	if (in->n_mirrors) {
		r->mirrors = calloc(in->n_mirrors, sizeof(*r->mirrors));
		if (!r->mirrors)
			return -ENOMEM;
	}
	for (size_t i = 0; i < in->n_mirrors; i++) {
		struct l7_mirror *m = &r->mirrors[r->n_mirrors];

		if ((err = l7_vhost_dep(b, vh, in->mirrors[i].dest.host, vh->ns)) ||
		    (err = l7_dest_cluster(b, &in->mirrors[i].dest, vh->ns, ctx_port,
					   &m->cluster)))
			return err;
		l7_obj_get(m->cluster);
		r->n_mirrors++;
		m->pct = in->mirrors[i].percent >= 0 ? in->mirrors[i].percent : 100.0;
	}
	return 0;
}

static void l7_vhost_free(struct l7_vhost *vh)
{
	if (!vh)
		return;
	free(vh->name);
	policy_doc_put(vh->doc);
	l7_strv_free(vh->domains, vh->n_domains);
	l7_strv_free(vh->gateways, vh->n_gateways);
	for (size_t i = 0; i < vh->n_routes; i++)
		l7_route_free(&vh->routes[i]);
	free(vh->routes);
	free(vh->deps);
	free(vh);
}

static void l7_vhost_put(struct l7_vhost *vh)
{
	if (l7_obj_last(vh))
		l7_vhost_free(vh);
}

static uint64_t l7_vhost_key(const char *name, uint16_t ctx_port, const char *gateway)
{
	uint64_t h = sm_hash_fnv1a64(SM_FNV64_OFFSET, name, strlen(name));

	h = sm_hash_fnv1a64(h, &ctx_port, sizeof(ctx_port));
	if (gateway)
		h = sm_hash_fnv1a64(h, gateway, strlen(gateway) + 1);
	return sm_hash_mix64(h) | 1;
}

/* Its routes resolved again (routes in; vh's ns and ctx_port set). */
static int l7_vhost_routes(struct l7_build *b, struct l7_vhost *vh,
			   const struct pol_http_route *const *routes, size_t n)
{
	if (n) {
		vh->routes = calloc(n, sizeof(*vh->routes));
		if (!vh->routes)
			return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		int err;

		vh->n_routes++;
		err = l7_route_resolve(b, vh, routes[i], vh->ctx_port, &vh->routes[i]);
		if (err)
			return err;
	}
	return 0;
}

/*
 * vh's routes resolved (routes: calloc'd, freed here), a mesh vhost put in
 * the build's memo, into *out; vh is freed on failure.
 */
static int l7_vhost_finish(struct l7_build *b, struct l7_vhost *vh,
			   const struct pol_http_route **routes, size_t n, bool memo,
			   struct l7_vhost **out)
{
	int err = l7_vhost_routes(b, vh, routes, n);

	free(routes);
	if (!err && memo)
		err = u64map_put(&b->vh_memo, vh->key, vh);
	if (err) {
		l7_vhost_free(vh);
		return err;
	}
	*out = vh;
	return 0;
}

/*
 * Can a mesh vhost of the predecessor serve VirtualService vs in this
 * config? same: vs must be the object it was built from (a changed one
 * is a new document); one still used after the delta took out what it
 * reaches is (its VirtualService did not change, else every port it
 * serves would have been re-planned).
 */
static bool l7_vhost_reusable(const struct l7_build *b, const struct l7_vhost *vh,
			      const struct pol_vs *vs, bool same)
{
	if (same && (vh->n_routes != vs->n_http ||
		     (vs->n_http && vh->routes[0].pol != &vs->http[0])))
		return false;
	for (size_t i = 0; i < vh->n_deps; i++)
		if (l7_dirty_hash(b, vh->deps[i]))
			return false;
	return true;
}

/*
 * The vhost of one VirtualService in one context: a mesh service port
 * (domains = resolved FQDNs, destinations without a port take that port)
 * or a gateway (domains = hosts as written; gw_hosts not NULL: the
 * hosts bound to the gateway gw after intersecting with its servers).
 * A mesh vhost is borrowed (the build's memo holds it); a gateway's is
 * the caller's (one reference).
 */
static int l7_vhost_get(struct l7_build *b, const struct pol_vs *vs, uint16_t ctx_port,
			const char *gw, char **gw_hosts, size_t n_gw_hosts,
			struct l7_vhost **out)
{
	const struct pol_http_route **routes = NULL;
	struct l7_vhost *vh;
	uint64_t key;
	int err = -ENOMEM;

	*out = NULL;
	vh = calloc(1, sizeof(*vh));
	if (!vh)
		return -ENOMEM;
	vh->refs = 1;
	if (asprintf(&vh->name, "%s/%s", vs->meta.ns, vs->meta.name) < 0) {
		free(vh);
		return -ENOMEM;
	}
	key = l7_vhost_key(vh->name, ctx_port, gw);
	if (!gw) {
		struct l7_vhost *have = u64map_get(&b->vh_memo, key);

		if (!have) {
			/* the predecessor's, if its VirtualService and destinations stayed */
			have = l7_tab_find(&b->c->vhost_tab, key);
			if (have && !l7_vhost_reusable(b, have, vs, false))
				have = NULL;
			if (!have && b->old && (have = l7_tab_find(&b->old->vhost_tab, key)) &&
			    !l7_vhost_reusable(b, have, vs, true))
				have = NULL;
			if (have && u64map_put(&b->vh_memo, key, have))
				goto fail;
			l7_obj_get(have);
		}
		if (have) {
			l7_vhost_free(vh);
			*out = have;
			return 0;
		}
	}
	vh->key = key;
	vh->ctx_port = ctx_port;
	/*
	 * The routes point into the VirtualService: hold its document so a
	 * cache eviction cannot free it under a worker still on this config.
	 */
	vh->doc = policy_doc_get(vs->meta.doc);
	vh->ns = vs->meta.ns;
	if (gw) {
		for (size_t i = 0; i < n_gw_hosts; i++)
			if (l7_strv_add(&vh->domains, &vh->n_domains, gw_hosts[i]))
				goto fail;
	} else {
		for (size_t i = 0; i < vs->n_hosts; i++) {
			char f[L7_FQDN_MAX];
			const char *h = vs->hosts[i];

			if (!policy_host_fqdn(b->set, h, vs->meta.ns, f, sizeof(f)))
				h = f;
			if (l7_strv_add(&vh->domains, &vh->n_domains, h))
				goto fail;
		}
	}
	for (size_t i = 0; i < vs->n_gateways; i++) {
		char *g;

		if (l7_gateway_norm(vs->gateways[i], vs->meta.ns, &g))
			goto fail;
		err = l7_strv_add(&vh->gateways, &vh->n_gateways, g);
		free(g);
		if (err)
			goto fail;
		err = -ENOMEM;
	}
	if (vs->n_http && !(routes = calloc(vs->n_http, sizeof(*routes))))
		goto fail;
	for (size_t i = 0; i < vs->n_http; i++)
		routes[i] = &vs->http[i];
	return l7_vhost_finish(b, vh, routes, vs->n_http, !gw, out);
fail:
	l7_vhost_free(vh);
	return err;
}

/*
 * A mesh vhost of the predecessor, whose VirtualService did not change
 * but some destination did: its routes resolved again (borrowed, as
 * l7_vhost_get's).
 */
static int l7_vhost_again(struct l7_build *b, const struct l7_vhost *old, struct l7_vhost **out)
{
	const struct pol_http_route **routes = NULL;
	struct l7_vhost *vh;
	int err = -ENOMEM;

	if ((*out = u64map_get(&b->vh_memo, old->key)))
		return 0;
	vh = calloc(1, sizeof(*vh));
	if (!vh)
		return -ENOMEM;
	vh->refs = 1;
	vh->key = old->key;
	vh->ctx_port = old->ctx_port;
	vh->doc = policy_doc_get(old->doc);
	vh->ns = old->ns;
	if (l7_strdup(old->name, &vh->name))
		goto fail;
	for (size_t i = 0; i < old->n_domains; i++)
		if (l7_strv_add(&vh->domains, &vh->n_domains, old->domains[i]))
			goto fail;
	for (size_t i = 0; i < old->n_gateways; i++)
		if (l7_strv_add(&vh->gateways, &vh->n_gateways, old->gateways[i]))
			goto fail;
	if (old->n_routes && !(routes = calloc(old->n_routes, sizeof(*routes))))
		goto fail;
	for (size_t i = 0; i < old->n_routes; i++)
		routes[i] = old->routes[i].pol;
	return l7_vhost_finish(b, vh, routes, old->n_routes, true, out);
fail:
	l7_vhost_free(vh);
	return err;
}

/* ---- service ports ---- */

static void l7_svc_put(struct l7_svc *s)
{
	if (!l7_obj_last(s))
		return;
	free(s->fqdn);
	free(s->ns);
	free(s->name);
	free(s->why);
	l7_vhost_put(s->vhost);
	l7_cluster_put(s->default_cluster);
	free(s);
}

/* Into the config: its table, its cluster's and vhost's users, the hosts it depends on. */
static int l7_svc_attach(struct l7_build *b, struct l7_svc *s)
{
	struct l7_config *c = b->c;
	int err = l7_tab_use(&c->svc_tab, l7_svc_key(s->vip, s->port), s);

	if (err < 0)
		return err;
	if ((err = l7_cluster_use(b, s->default_cluster)))
		return err;
	if (!s->vhost)
		return 0;
	if ((err = l7_vhost_use(b, s->vhost)))
		return err;
	for (size_t i = 0; i < s->vhost->n_deps; i++)
		if ((err = l7_tab_use(&c->dep_tab, s->vhost->deps[i], s)) < 0)
			return err;
	return 0;
}

/* Out of the config (the caller holds a reference on s). */
static int l7_svc_detach(struct l7_build *b, struct l7_svc *s)
{
	struct l7_config *c = b->c;
	int ret, err = 0;

	for (size_t i = 0; s->vhost && i < s->vhost->n_deps; i++) {
		ret = l7_tab_unuse(&c->dep_tab, s->vhost->deps[i], s);
		if (ret == 1)
			l7_svc_put(s);
		else if (ret < 0)
			err = ret;
	}
	if (s->vhost)
		err = l7_vhost_unuse(b, s->vhost) ?: err;
	err = l7_cluster_unuse(b, s->default_cluster) ?: err;
	ret = l7_tab_unuse(&c->svc_tab, l7_svc_key(s->vip, s->port), s);
	if (ret == 1)
		l7_svc_put(s);
	return ret < 0 ? ret : err;
}

/* The service port at key out of the config, if it is there. */
static int l7_svc_drop(struct l7_build *b, uint64_t key)
{
	struct l7_svc *s = l7_tab_find(&b->c->svc_tab, key);
	int err;

	if (!s)
		return 0;
	l7_obj_get(s);
	err = l7_svc_detach(b, s);
	l7_svc_put(s);
	return err;
}

/* A service port of the predecessor, its vhost's routes resolved again. */
static int l7_svc_again(struct l7_build *b, const struct l7_svc *old)
{
	struct l7_svc *s = calloc(1, sizeof(*s));
	struct l7_vhost *vh;
	int err = -ENOMEM;

	if (!s)
		return -ENOMEM;
	s->refs = 1;
	s->vip = old->vip;
	s->port = old->port;
	if (l7_strdup(old->fqdn, &s->fqdn) || l7_strdup(old->ns, &s->ns) ||
	    l7_strdup(old->name, &s->name) || l7_strdup(old->why, &s->why))
		goto out;
	/* the one this build holds for its id (not made anew: its service was not re-planned) */
	s->default_cluster = l7_cluster_known(b, old->default_cluster->id);
	if (!s->default_cluster)
		goto out;
	l7_obj_get(s->default_cluster);
	if ((err = l7_vhost_again(b, old->vhost, &vh)))
		goto out;
	s->vhost = l7_obj_get(vh);
	err = l7_svc_attach(b, s);
out:
	l7_svc_put(s);
	return err;
}

struct l7_svcs {
	struct l7_svc **v;
	size_t n, cap;
};

static int l7_svcs_add(void *val, void *arg)
{
	struct l7_svcs *l = arg;

	for (size_t i = 0; i < l->n; i++)
		if (l->v[i] == val)
			return 0;
	if (sm_grow((void **)&l->v, &l->cap, l->n + 1, sizeof(*l->v)))
		return -ENOMEM;
	l->v[l->n++] = l7_obj_get(val);
	return 0;
}

static void l7_svcs_free(struct l7_svcs *l)
{
	for (size_t i = 0; i < l->n; i++)
		l7_svc_put(l->v[i]);
	free(l->v);
}

/* ---- services ---- */

static int l7_svc_build(struct l7_build *b, struct plan_service *ps)
{
	/* the ports of one Service are neighbours in plan order (one VIP) */
	const struct pol_service *svc = b->last_svc && !strcmp(b->last_svc->meta.name, ps->name) &&
		!strcmp(b->last_svc->meta.ns, ps->ns) ? b->last_svc :
		l7_find_pol_svc(b->set, ps->ns, ps->name);
	uint16_t port = ntohs(ps->key.port);
	const struct pol_svc_port *sp = svc ? l7_svc_port(svc, port) : NULL;
	const struct pol_vs *vs;
	const struct pol_dr *dr;
	const char *drwhy;
	char why[200], pwhy[160];
	enum l7_proto proto;
	struct l7_svc *ls;
	size_t i;
	int err;

	b->last_svc = svc;
	if (!sp)
		return 0;
	proto = l7_port_protocol(sp, NULL, 0);
	i = l7_find_vs(b, svc->meta.ns, ps->fqdn);
	vs = i == SIZE_MAX ? NULL : &b->set->vss[i];
	if (vs && !l7_vs_http_on_port(vs, port))
		vs = NULL;
	dr = l7_find_dr(b, svc->meta.ns, ps->fqdn);
	drwhy = l7_dr_needs_l7(dr, port);
	if (!vs && !drwhy && proto != L7_PROTO_HTTP && proto != L7_PROTO_H2)
		return 0;	/* most ports: L4, nothing to say */
	l7_port_protocol(sp, pwhy, sizeof(pwhy));
	if (proto == L7_PROTO_OTHER) {
		if (vs)
			return l7_diag(b, POL_DIAG_WARNING, &sp->loc,
				       "service %s/%s port %u: %s declares a non-HTTP protocol: http routes of VirtualService %s/%s are not applied to it",
				       svc->meta.ns, svc->meta.name, port, pwhy, vs->meta.ns,
				       vs->meta.name);
		if (drwhy)
			return l7_diag(b, POL_DIAG_WARNING, &sp->loc,
				       "service %s/%s port %u: %s declares a non-HTTP protocol: DestinationRule %s/%s %s is not applied to it (L4 only)",
				       svc->meta.ns, svc->meta.name, port, pwhy, dr->meta.ns,
				       dr->meta.name, drwhy);
		return 0;
	}
	if (vs)
		snprintf(why, sizeof(why), "VirtualService %s/%s has http routes",
			 vs->meta.ns, vs->meta.name);
	else if (drwhy)
		snprintf(why, sizeof(why), "DestinationRule %s/%s has %s", dr->meta.ns,
			 dr->meta.name, drwhy);
	else if (proto == L7_PROTO_HTTP || proto == L7_PROTO_H2)
		snprintf(why, sizeof(why), "%s", pwhy);
	else
		return 0;

	free(ps->l7_why);
	if (l7_strdup(why, &ps->l7_why))
		return -ENOMEM;
	ps->flags |= SM_SVC_F_L7;

	ls = calloc(1, sizeof(*ls));
	if (!ls)
		return -ENOMEM;
	ls->refs = 1;
	ls->vip = ps->key.vip;
	ls->port = port;
	err = -ENOMEM;
	if (l7_strdup(ps->fqdn, &ls->fqdn) || l7_strdup(ps->ns, &ls->ns) ||
	    l7_strdup(ps->name, &ls->name) || l7_strdup(why, &ls->why))
		goto out;
	if ((err = l7_cluster_get(b, svc, port, NULL, &ls->default_cluster)))
		goto out;
	l7_obj_get(ls->default_cluster);
	if (vs && (err = l7_vhost_get(b, vs, port, NULL, NULL, 0, &ls->vhost)))
		goto out;
	l7_obj_get(ls->vhost);
	err = l7_svc_attach(b, ls);
out:
	l7_svc_put(ls);
	return err;
}

/* ---- gateways ---- */

/* Does host pattern p (server host: "*", "*.x", exact) cover host h? */
static bool l7_host_covers(const char *p, const char *h)
{
	size_t lp = strlen(p), lh = strlen(h);

	if (strcmp(p, "*") == 0)
		return true;
	if (strcasecmp(p, h) == 0)
		return true;
	if (p[0] == '*' && p[1] == '.' && lh >= lp && strcasecmp(h + lh - (lp - 1), p + 1) == 0)
		return h[0] != '*' || lh > lp;
	return false;
}

/* server host "ns/host": "*" and "." namespaces as Istio. */
static bool l7_server_host_split(const char *sh, const char *gw_ns, const char *vs_ns,
				 const char **host)
{
	const char *slash = strchr(sh, '/');
	size_t n;

	*host = sh;
	if (!slash)
		return true;
	*host = slash + 1;
	n = (size_t)(slash - sh);
	if (n == 1 && sh[0] == '*')
		return true;
	if (n == 1 && sh[0] == '.')
		return strcmp(gw_ns, vs_ns) == 0;
	return strlen(vs_ns) == n && strncmp(sh, vs_ns, n) == 0;
}

static void l7_gateway_free_one(struct l7_gateway *g)
{
	free(g->name);
	for (size_t i = 0; i < g->n_servers; i++) {
		free(g->servers[i].bind);
		free(g->servers[i].name);
		l7_strv_free(g->servers[i].hosts, g->servers[i].n_hosts);
	}
	free(g->servers);
	for (size_t i = 0; i < g->n_vhosts; i++)
		l7_vhost_put(g->vhosts[i]);
	free(g->vhosts);
}

static bool l7_server_served(const struct pol_gw_server *s)
{
	if (s->has_tls && (s->tls_mode || !s->https_redirect))
		return false;
	return !s->protocol || !strcasecmp(s->protocol, "HTTP") ||
	       !strcasecmp(s->protocol, "HTTP2") || !strcasecmp(s->protocol, "GRPC");
}

static int l7_gateway_bind_vs(struct l7_build *b, const struct pol_gateway *pg,
			      struct l7_gateway *g, const struct pol_vs *vs)
{
	char **hosts = NULL;
	size_t n_hosts = 0;
	struct l7_vhost *vh, **nv;
	int err = 0;

	for (size_t h = 0; h < vs->n_hosts && !err; h++) {
		const char *vh_host = vs->hosts[h], *keep = NULL;

		for (size_t s = 0; s < pg->n_servers && !keep; s++) {
			if (!l7_server_served(&pg->servers[s]))
				continue;
			for (size_t k = 0; k < pg->servers[s].n_hosts && !keep; k++) {
				const char *sh;

				if (!l7_server_host_split(pg->servers[s].hosts[k], pg->meta.ns,
							  vs->meta.ns, &sh))
					continue;
				if (l7_host_covers(sh, vh_host))
					keep = vh_host;
				else if (l7_host_covers(vh_host, sh))
					keep = sh;
			}
		}
		if (keep)
			err = l7_strv_add(&hosts, &n_hosts, keep);
	}
	if (!err && !n_hosts)
		err = l7_diag(b, POL_DIAG_WARNING, &vs->meta.loc,
			      "VirtualService %s/%s: no host matches a server of Gateway %s: not bound",
			      vs->meta.ns, vs->meta.name, g->name);
	if (!err && n_hosts)
		err = l7_vhost_get(b, vs, 0, g->name, hosts, n_hosts, &vh);
	if (!err && n_hosts) {
		nv = realloc(g->vhosts, (g->n_vhosts + 1) * sizeof(*nv));
		if (!nv) {
			l7_vhost_put(vh);
			err = -ENOMEM;
		} else {
			g->vhosts = nv;
			g->vhosts[g->n_vhosts++] = vh;
		}
	}
	l7_strv_free(hosts, n_hosts);
	return err;
}

static int l7_gateways_build(struct l7_build *b)
{
	struct l7_config *c = b->c;

	for (size_t i = 0; i < b->set->n_gws; i++) {
		const struct pol_gateway *pg = &b->set->gws[i];
		struct l7_gateway g = { 0 };
		struct l7_gateway *ng;
		int err = -ENOMEM;

		if (asprintf(&g.name, "%s/%s", pg->meta.ns, pg->meta.name) < 0) {
			g.name = NULL;
			return -ENOMEM;
		}
		for (size_t s = 0; s < pg->n_servers; s++) {
			const struct pol_gw_server *ps = &pg->servers[s];
			struct l7_gw_server *gs, *nsv;

			if (!l7_server_served(ps) || !ps->port)
				continue;
			nsv = realloc(g.servers, (g.n_servers + 1) * sizeof(*nsv));
			if (!nsv)
				goto fail;
			g.servers = nsv;
			gs = &g.servers[g.n_servers++];
			memset(gs, 0, sizeof(*gs));
			gs->port = ps->port;
			if (l7_strdup(ps->bind, &gs->bind) || l7_strdup(ps->name, &gs->name))
				goto fail;
			for (size_t h = 0; h < ps->n_hosts; h++) {
				const char *slash = strchr(ps->hosts[h], '/');

				if (l7_strv_add(&gs->hosts, &gs->n_hosts,
						slash ? slash + 1 : ps->hosts[h]))
					goto fail;
			}
		}
		if (!g.n_servers) {
			l7_gateway_free_one(&g);
			continue;
		}
		for (size_t v = 0; v < b->set->n_vss; v++) {
			const struct pol_vs *vs = &b->set->vss[v];
			bool bound = false;

			if (!vs->n_http)
				continue;
			for (size_t k = 0; k < vs->n_gateways && !bound; k++) {
				char *norm;

				if (l7_gateway_norm(vs->gateways[k], vs->meta.ns, &norm))
					goto fail;
				bound = strcmp(norm, g.name) == 0;
				free(norm);
			}
			if (bound && (err = l7_gateway_bind_vs(b, pg, &g, vs)))
				goto fail;
			err = -ENOMEM;
		}
		ng = realloc(c->gateways, (c->n_gateways + 1) * sizeof(*ng));
		if (!ng)
			goto fail;
		c->gateways = ng;
		c->gateways[c->n_gateways++] = g;
		/* listed with the config's vhosts, their clusters with its clusters */
		for (size_t v = 0; v < g.n_vhosts; v++)
			if ((err = l7_vhost_use(b, g.vhosts[v])))
				return err;
		continue;
fail:
		l7_gateway_free_one(&g);
		return err;
	}
	return 0;
}

/* ---- pods ---- */

/* by IP, then policy order (the first pod of an IP wins) */
struct l7_pod_ord {
	uint32_t ip;		/* host order */
	size_t idx;		/* in set->pods */
};

static int l7_pod_cmp(const void *a, const void *b)
{
	const struct l7_pod_ord *x = a, *y = b;

	if (x->ip != y->ip)
		return x->ip < y->ip ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static void l7_pod_put(struct l7_pod *p)
{
	if (!l7_obj_last(p))
		return;
	free(p->ns);
	free(p->name);
	l7_labels_free(&p->labels);
	free(p);
}

static bool l7_pod_listed(const struct pol_pod *pp)
{
	return pp->ip && !pp->host_network;
}

/* pp into the pod table */
static int l7_pod_add(struct l7_build *b, const struct pol_pod *pp)
{
	struct l7_pod *p = calloc(1, sizeof(*p));
	int err = -ENOMEM;

	if (!p)
		return -ENOMEM;
	p->refs = 1;
	p->ip = pp->ip;
	if (!l7_strdup(pp->meta.ns, &p->ns) && !l7_strdup(pp->meta.name, &p->name) &&
	    !l7_labels_copy(&pp->meta.labels, &p->labels))
		err = l7_tab_use(&b->c->pod_tab, ntohl(p->ip), p);
	l7_pod_put(p);
	return err < 0 ? err : 0;
}

static int l7_pods_build(struct l7_build *b)
{
	struct l7_pod_ord *ord;
	size_t n = 0;
	int err = 0;

	if (!b->set->n_pods)
		return 0;
	ord = calloc(b->set->n_pods, sizeof(*ord));
	if (!ord)
		return -ENOMEM;
	for (size_t i = 0; i < b->set->n_pods; i++)
		if (l7_pod_listed(&b->set->pods[i]))
			ord[n++] = (struct l7_pod_ord){ ntohl(b->set->pods[i].ip), i };
	if (n)
		qsort(ord, n, sizeof(*ord), l7_pod_cmp);
	for (size_t i = 0; !err && i < n; i++)
		if (!i || ord[i].ip != ord[i - 1].ip)
			err = l7_pod_add(b, &b->set->pods[ord[i].idx]);
	free(ord);
	return err;
}

static int l7_pod_collect(void *val, void *arg)
{
	struct l7_pod **v = arg;

	for (size_t i = 0; i < 8; i++)
		if (!v[i]) {
			v[i] = val;
			return 0;
		}
	return -E2BIG;
}

/* The pod table entry of ip (network order) again from the set. */
static int l7_pod_patch(struct l7_build *b, uint32_t ip)
{
	const struct pol_pod *const *pods;
	struct l7_pod *v[8];
	size_t n;
	int ret;

	do {
		memset(v, 0, sizeof(v));
		ret = l7_tab_each(&b->c->pod_tab, ntohl(ip), l7_pod_collect, v);
		for (size_t i = 0; i < 8 && v[i]; i++) {
			int r = l7_tab_unuse(&b->c->pod_tab, ntohl(ip), v[i]);

			if (r < 0)
				return r;
			l7_pod_put(v[i]);
		}
	} while (ret == -E2BIG);
	/* by IP, then set order: the first that is not on the host network */
	pods = policy_index_pods_ip(b->set, ip, &n);
	for (size_t i = 0; pods && i < n; i++)
		if (l7_pod_listed(pods[i]))
			return l7_pod_add(b, pods[i]);
	return 0;
}

/* ---- public ---- */



static struct l7_config *l7_config_new(void)
{
	struct l7_config *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->refs = 1;
	l7_tab_init(&c->svc_tab, &l7_svc_ops);
	l7_tab_init(&c->cluster_tab, &l7_cluster_ops);
	l7_tab_init(&c->vhost_tab, &l7_vhost_ops);
	l7_tab_init(&c->pod_tab, &l7_pod_ops);
	l7_tab_init(&c->dep_tab, &l7_svc_ops);
	return c;
}

void l7_config_free(struct l7_config *c)
{
	if (!c)
		return;
	l7_tab_free(&c->svc_tab);
	l7_tab_free(&c->dep_tab);
	for (size_t i = 0; i < c->n_l4_ports; i++) {
		free(c->l4_ports[i].name);
		free(c->l4_ports[i].why);
	}
	free(c->l4_ports);
	for (size_t i = 0; i < c->n_gateways; i++)
		l7_gateway_free_one(&c->gateways[i]);
	free(c->gateways);
	l7_tab_free(&c->vhost_tab);
	l7_tab_free(&c->cluster_tab);
	l7_tab_free(&c->pod_tab);
	free(c);
}

/* A delta's config: the predecessor's tables shared; gateways built again. */
static struct l7_config *l7_config_share(const struct l7_config *old)
{
	struct l7_config *c = l7_config_new();

	if (!c)
		return NULL;
	l7_tab_free(&c->svc_tab);
	l7_tab_free(&c->cluster_tab);
	l7_tab_free(&c->vhost_tab);
	l7_tab_free(&c->pod_tab);
	l7_tab_free(&c->dep_tab);
	if (l7_tab_share(&c->svc_tab, &old->svc_tab) ||
	    l7_tab_share(&c->cluster_tab, &old->cluster_tab) ||
	    l7_tab_share(&c->vhost_tab, &old->vhost_tab) ||
	    l7_tab_share(&c->pod_tab, &old->pod_tab) ||
	    l7_tab_share(&c->dep_tab, &old->dep_tab)) {
		l7_config_free(c);
		return NULL;
	}
	return c;
}

/*
 * A delta: everything the re-planned entries (redo), the services named
 * and the Pods changed reach comes out of the predecessor's tables, then
 * goes in again built anew; the rest stays shared.
 */
static int l7_patch_out(struct l7_build *b, const bool *redo, const struct plan_patch *pt,
			struct l7_svcs *again)
{
	const struct l7_config *old = b->old;
	struct l7_config *c = b->c;
	int err = 0;

	for (size_t i = 0; !err && i < b->plan->n_svcs; i++)
		if (redo[i])
			err = l7_svc_drop(b, l7_svc_key(b->plan->svcs[i].key.vip,
							ntohs(b->plan->svcs[i].key.port)));
	for (size_t k = 0; !err && pt && k < pt->n_gone; k++)
		err = l7_svc_drop(b, l7_svc_key(pt->gone[k].vip, ntohs(pt->gone[k].port)));
	/* the service ports whose routes send to a host made anew */
	for (size_t d = 0; !err && d < b->n_dirty; d++)
		err = l7_tab_each(&c->dep_tab, b->dirty[d], l7_svcs_add, again);
	for (size_t i = 0; !err && i < again->n; i++)
		err = l7_svc_detach(b, again->v[i]);
	/* the gateways are built again (few; their vhosts bind by name) */
	for (size_t g = 0; !err && g < old->n_gateways; g++)
		for (size_t v = 0; !err && v < old->gateways[g].n_vhosts; v++)
			err = l7_vhost_unuse(b, old->gateways[g].vhosts[v]);
	return err;
}

static int l7_patch_pods(struct l7_build *b, const struct compile_opts *opts)
{
	int err = 0;

	if (!opts || !opts->pods_known) {
		/* not known which: the table again, whole */
		l7_tab_free(&b->c->pod_tab);
		return l7_pods_build(b);
	}
	for (size_t i = 0; !err && i < opts->n_pod_ips; i++)
		if (opts->pod_ips[i])
			err = l7_pod_patch(b, opts->pod_ips[i]);
	return err;
}

static void l7_build_end(struct l7_build *b)
{
	for (size_t i = 0; i < b->cl_memo.cap; i++)
		if (b->cl_memo.keys[i])
			l7_cluster_put(b->cl_memo.vals[i]);
	for (size_t i = 0; i < b->vh_memo.cap; i++)
		if (b->vh_memo.keys[i])
			l7_vhost_put(b->vh_memo.vals[i]);
	u64map_free(&b->cl_memo);
	u64map_free(&b->vh_memo);
	free(b->dirty);
	l7_hosttab_free(&b->vs_hosts);
	l7_hosttab_free(&b->dr_hosts);
}

/* A delta of fewer service ports than this looks VirtualServices and
 * DestinationRules up by scanning them (as plan.c does), not by sorting all. */
#define L7_SCAN_MAX	32

static int l7_config_make(struct pol_set *set, struct plan *plan, const struct l7_config *old,
			  const bool *redo, const char *const *ns, const char *const *names,
			  size_t n_names, const struct plan_patch *pt,
			  const struct compile_opts *opts, struct l7_config **out)
{
	struct l7_build b = {
		.set = set,
		.plan = plan,
		.old = redo ? old : NULL,
		.domain = set->domain && *set->domain ? set->domain : POL_DOMAIN_DEFAULT,
	};
	struct l7_svcs again = { 0 };
	size_t n_redo = 0;
	int err;

	*out = NULL;
	b.c = b.old ? l7_config_share(b.old) : l7_config_new();
	if (!b.c)
		return -ENOMEM;
	err = u64map_init(&b.cl_memo, 16) ?: u64map_init(&b.vh_memo, 16);
	for (size_t i = 0; !err && b.old && i < plan->n_svcs; i++)
		if (redo[i] && (n_redo++, plan->svcs[i].fqdn))
			err = l7_dirty_add(&b, plan->svcs[i].fqdn);
	for (size_t k = 0; !err && b.old && k < n_names; k++) {
		char f[L7_FQDN_MAX];

		if (snprintf(f, sizeof(f), "%s.%s.svc.%s", names[k], ns[k], b.domain) <
		    (int)sizeof(f))
			err = l7_dirty_add(&b, f);
	}
	if (!err && b.old)
		err = l7_patch_out(&b, redo, pt, &again);
	b.scan = b.old && n_redo + b.n_dirty < L7_SCAN_MAX;
	if (!err && !b.scan)
		err = l7_hosttabs_build(&b);
	if (!err)
		err = b.old ? l7_patch_pods(&b, opts) : l7_pods_build(&b);
	/* plan->svcs is sorted by (vip, port): so is the service ports' table */
	for (size_t i = 0; !err && i < plan->n_svcs; i++)
		if (b.old ? redo[i] : !redo || redo[i] || plan->svcs[i].l7_why)
			err = l7_svc_build(&b, &plan->svcs[i]);
	for (size_t i = 0; !err && i < again.n; i++)
		err = l7_svc_again(&b, again.v[i]);
	if (!err)
		err = l7_gateways_build(&b);
	l7_svcs_free(&again);
	l7_build_end(&b);
	if (err) {
		l7_config_free(b.c);
		return err;
	}
	b.c->n_svcs = b.c->svc_tab.n;
	b.c->n_clusters = b.c->cluster_tab.n;
	b.c->n_vhosts = b.c->vhost_tab.n;
	b.c->n_pods = b.c->pod_tab.n;
	*out = b.c;
	return 0;
}

int l7_config_build(struct pol_set *set, struct plan *plan, struct l7_config **out)
{
	return l7_config_make(set, plan, NULL, NULL, NULL, NULL, 0, NULL, NULL, out);
}

static bool *l7_redo_of(const struct plan *plan, const size_t *idx, size_t n)
{
	bool *redo = calloc(plan->n_svcs + 1, sizeof(*redo));

	for (size_t k = 0; redo && k < n; k++)
		if (idx[k] < plan->n_svcs)
			redo[idx[k]] = true;
	return redo;
}

int l7_config_rebuild(struct pol_set *set, struct plan *plan, const size_t *idx, size_t n,
		      struct l7_config **out)
{
	bool *redo = l7_redo_of(plan, idx, n);
	int err;

	*out = NULL;
	if (!redo)
		return -ENOMEM;
	err = l7_config_make(set, plan, NULL, redo, NULL, NULL, 0, NULL, NULL, out);
	free(redo);
	return err;
}

int l7_config_patch(struct pol_set *set, struct plan *plan, const struct l7_config *old,
		    const char *const *ns, const char *const *names, size_t n,
		    const struct plan_patch *pt, const struct compile_opts *opts,
		    struct l7_config **out)
{
	bool *redo;
	int err;

	if (!old)
		return l7_config_rebuild(set, plan, pt->idx, pt->n, out);
	*out = NULL;
	redo = l7_redo_of(plan, pt->idx, pt->n);
	if (!redo)
		return -ENOMEM;
	err = l7_config_make(set, plan, old, redo, ns, names, n, pt, opts, out);
	free(redo);
	return err;
}
bool l7_config_reads_service(struct pol_set *set, const struct pol_service *svc)
{
	struct l7_build b = {
		.set = set,
		.domain = set->domain && *set->domain ? set->domain : POL_DOMAIN_DEFAULT,
	};
	const struct pol_dr *dr = plan_service_dr(set, svc);
	char fqdn[L7_FQDN_MAX], why[160];

	if (l7_fqdn(&b, svc, fqdn, sizeof(fqdn)))
		return true;
	for (size_t i = 0; i < svc->n_ports; i++) {
		enum l7_proto p = l7_port_protocol(&svc->ports[i], why, sizeof(why));

		if (p == L7_PROTO_HTTP || p == L7_PROTO_H2 ||
		    l7_dr_needs_l7(dr, svc->ports[i].port))
			return true;
	}
	for (size_t v = 0; v < set->n_vss; v++) {
		const struct pol_vs *vs = &set->vss[v];

		for (size_t h = 0; vs->n_http && h < vs->n_hosts; h++)
			if (l7_host_is(&b, vs->hosts[h], vs->meta.ns, fqdn))
				return true;	/* its http routes */
		for (size_t d = 0; d < vs->n_http_dests; d++)
			if (l7_host_is(&b, vs->http_dests[d].host, vs->meta.ns, fqdn))
				return true;	/* an http route sends to it */
	}
	return false;
}
struct l7_config *l7_config_get(struct l7_config *c)
{
	if (c)
		__atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
	return c;
}

void l7_config_put(struct l7_config *c)
{
	if (c && __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) == 0)
		l7_config_free(c);
}

const struct l7_svc *l7_config_find_svc(const struct l7_config *c, uint32_t vip, uint16_t port)
{
	return c ? l7_tab_find(&c->svc_tab, l7_svc_key(vip, port)) : NULL;
}

const char *l7_config_l4_why(const struct l7_config *c, uint32_t vip, uint16_t port)
{
	for (size_t i = 0; c && i < c->n_l4_ports; i++)
		if (c->l4_ports[i].vip == vip && c->l4_ports[i].port == port)
			return c->l4_ports[i].why;
	return NULL;
}

const struct l7_pod *l7_config_find_pod(const struct l7_config *c, uint32_t ip)
{
	return c ? l7_tab_find(&c->pod_tab, ntohl(ip)) : NULL;
}

struct l7_cluster *l7_config_find_cluster(const struct l7_config *c, uint64_t id)
{
	return c ? l7_tab_find(&c->cluster_tab, id) : NULL;
}

const struct l7_svc *l7_config_svc(const struct l7_config *c, size_t i)
{
	return c ? l7_tab_at(&c->svc_tab, i) : NULL;
}

struct l7_cluster *l7_config_cluster(const struct l7_config *c, size_t i)
{
	return c ? l7_tab_at(&c->cluster_tab, i) : NULL;
}

const struct l7_vhost *l7_config_vhost(const struct l7_config *c, size_t i)
{
	return c ? l7_tab_at(&c->vhost_tab, i) : NULL;
}

const struct l7_pod *l7_config_pod(const struct l7_config *c, size_t i)
{
	return c ? l7_tab_at(&c->pod_tab, i) : NULL;
}

static void l7_hand_nop(void *obj)
{
}

static const struct l7_tab_ops l7_hand_ops = { l7_hand_nop, l7_hand_nop };

static void l7_hand_tab(struct l7_tab *t, struct l7_config_hand *h, int i, void *const *vals,
			const uint64_t *keys, size_t n)
{
	struct l7_tab_chunk *ch = &h->chunk[i];

	memset(ch, 0, sizeof(*ch));
	ch->refs = 2;	/* never the last */
	for (size_t k = 0; k < n; k++) {
		size_t at = ch->n;

		while (at && ch->key[at - 1] > keys[k]) {
			ch->key[at] = ch->key[at - 1];
			ch->val[at] = ch->val[at - 1];
			ch->users[at] = 1;
			at--;
		}
		ch->key[at] = keys[k];
		ch->val[at] = vals[k];
		ch->users[at] = 1;
		ch->n++;
	}
	h->ch[i] = ch;
	h->lo[i] = ch->key[0];
	h->before[i] = 0;
	memset(t, 0, sizeof(*t));
	t->ops = &l7_hand_ops;
	t->ch = &h->ch[i];
	t->lo = &h->lo[i];
	t->before = &h->before[i];
	t->n_ch = t->cap_ch = n ? 1 : 0;
	t->n = n;
}

int l7_config_hand(struct l7_config *c, struct l7_config_hand *h, struct l7_svc *const *svcs,
		   size_t n_svcs, struct l7_cluster *const *clusters, size_t n_clusters)
{
	uint64_t keys[L7_TAB_CHUNK];

	if (n_svcs > L7_TAB_CHUNK || n_clusters > L7_TAB_CHUNK)
		return -E2BIG;
	for (size_t i = 0; i < n_svcs; i++)
		keys[i] = l7_svc_key(svcs[i]->vip, svcs[i]->port);
	l7_hand_tab(&c->svc_tab, h, 0, (void *const *)svcs, keys, n_svcs);
	for (size_t i = 0; i < n_clusters; i++)
		keys[i] = clusters[i]->id;
	l7_hand_tab(&c->cluster_tab, h, 1, (void *const *)clusters, keys, n_clusters);
	c->n_svcs = n_svcs;
	c->n_clusters = n_clusters;
	return 0;
}

