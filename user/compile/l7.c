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
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "compile/compile.h"
#include "common/grow.h"
#include "compile/l7.h"

#define L7_FQDN_MAX		256
#define L7_MESH			"mesh"
#define L7_RETRY_ATTEMPTS	2
#define L7_RETRY_BACKOFF_MS	25

struct l7_vcache {
	const struct pol_vs *vs;
	uint16_t port;		/* context port: service port, 0 for gateways */
	bool gateway;
	struct l7_vhost *vh;
};

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
	const char *domain;
	size_t cap_clusters, cap_vhosts, cap_svcs, cap_l4;
	struct l7_vcache *vc;
	size_t n_vc, cap_vc;
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

/* The DestinationRule of service fqdn in namespace svc_ns (as plan_service_dr). */
static const struct pol_dr *l7_find_dr(const struct l7_build *b, const char *svc_ns,
				       const char *fqdn)
{
	size_t i = l7_hosttab_find(&b->dr_hosts, svc_ns, fqdn);

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

/* ---- clusters ---- */

static const struct plan_cluster *l7_plan_cluster(const struct plan *p, uint64_t id)
{
	for (size_t i = 0; i < p->n_svcs; i++)
		for (size_t j = 0; j < p->svcs[i].n_clusters; j++)
			if (p->svcs[i].clusters[j].id == id)
				return &p->svcs[i].clusters[j];
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

static int l7_cluster_add(struct l7_build *b, struct l7_cluster *cl)
{
	struct l7_config *c = b->c;

	if (sm_grow((void **)&c->clusters, &b->cap_clusters, c->n_clusters + 1,
		    sizeof(*c->clusters)))
		return -ENOMEM;
	cl->index = (uint32_t)c->n_clusters;
	c->clusters[c->n_clusters++] = cl;
	return 0;
}

static struct l7_cluster *l7_cluster_by_id(const struct l7_config *c, uint64_t id)
{
	for (size_t i = 0; i < c->n_clusters; i++)
		if (c->clusters[i]->id == id)
			return c->clusters[i];
	return NULL;
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
	if ((*out = l7_cluster_by_id(b->c, id)))
		return 0;
	memset(&tmp, 0, sizeof(tmp));
	pc = l7_plan_cluster(b->plan, id);
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
	if (!err)
		err = l7_cluster_add(b, cl);
	if (!err) {
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
	int err = -ENOMEM;

	if ((*out = l7_cluster_by_id(b->c, id)))
		return 0;
	cl = calloc(1, sizeof(*cl));
	if (!cl)
		return -ENOMEM;
	cl->id = id;
	cl->port = port;
	cl->missing = true;
	l7_cluster_policy(b, NULL, NULL, port, cl);	/* the defaults */
	if (asprintf(&cl->name, "outbound|%u|%s|%s", port, subset ? subset : "", host) < 0)
		cl->name = NULL;
	else if (!l7_strdup(host, &cl->fqdn) && !l7_strdup(subset, &cl->subset))
		err = l7_cluster_add(b, cl);
	if (err) {
		l7_cluster_free(cl);
		return err;
	}
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
	free(r->dests);
	free(r->mirrors);
}

/*
 * What the proxy needs beyond the policy route: destinations and mirrors
 * resolved to clusters (in the context of ctx_port), Istio's weights and
 * retry defaults. Everything else is read from the route itself.
 */
static int l7_route_resolve(struct l7_build *b, const struct pol_vs *vs,
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
		struct l7_route_dest *d = &r->dests[r->n_dests++];

		if ((err = l7_dest_cluster(b, &hd->dest, vs->meta.ns, ctx_port, &d->cluster)))
			return err;
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
		struct l7_mirror *m = &r->mirrors[r->n_mirrors++];

		if ((err = l7_dest_cluster(b, &in->mirrors[i].dest, vs->meta.ns, ctx_port,
					   &m->cluster)))
			return err;
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
	free(vh);
}

static int l7_vhost_add(struct l7_build *b, struct l7_vhost *vh)
{
	struct l7_config *c = b->c;

	if (sm_grow((void **)&c->vhosts, &b->cap_vhosts, c->n_vhosts + 1, sizeof(*c->vhosts)))
		return -ENOMEM;
	c->vhosts[c->n_vhosts++] = vh;
	return 0;
}

/*
 * The vhost of one VirtualService in one context: a mesh service port
 * (domains = resolved FQDNs, destinations without a port take that port)
 * or a gateway (domains = hosts as written; gw_hosts not NULL: the
 * hosts bound to the gateway after intersecting with its servers).
 */
static int l7_vhost_get(struct l7_build *b, const struct pol_vs *vs, uint16_t ctx_port,
			bool gateway, char **gw_hosts, size_t n_gw_hosts,
			struct l7_vhost **out)
{
	struct l7_vhost *vh;
	int err = -ENOMEM;

	for (size_t i = 0; i < b->n_vc; i++) {
		if (b->vc[i].vs == vs && b->vc[i].port == ctx_port && b->vc[i].gateway == gateway &&
		    !gateway) {
			*out = b->vc[i].vh;
			return 0;
		}
	}
	vh = calloc(1, sizeof(*vh));
	if (!vh)
		return -ENOMEM;
	/*
	 * The routes point into the VirtualService: hold its document so a
	 * cache eviction cannot free it under a worker still on this config.
	 */
	vh->doc = policy_doc_get(vs->meta.doc);
	vh->ns = vs->meta.ns;
	if (asprintf(&vh->name, "%s/%s", vs->meta.ns, vs->meta.name) < 0) {
		vh->name = NULL;
		goto fail;
	}
	if (gateway) {
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
	if (vs->n_http) {
		vh->routes = calloc(vs->n_http, sizeof(*vh->routes));
		if (!vh->routes)
			goto fail;
	}
	for (size_t i = 0; i < vs->n_http; i++) {
		vh->n_routes++;
		err = l7_route_resolve(b, vs, &vs->http[i], ctx_port, &vh->routes[i]);
		if (err)
			goto fail;
	}
	err = sm_grow((void **)&b->vc, &b->cap_vc, b->n_vc + 1, sizeof(*b->vc));
	if (!err)
		err = l7_vhost_add(b, vh);
	if (err)
		goto fail;
	b->vc[b->n_vc++] = (struct l7_vcache){ vs, ctx_port, gateway, vh };
	*out = vh;
	return 0;
fail:
	l7_vhost_free(vh);
	return err;
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
	i = l7_hosttab_find(&b->vs_hosts, svc->meta.ns, ps->fqdn);
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

	if (sm_grow((void **)&b->c->svcs, &b->cap_svcs, b->c->n_svcs + 1, sizeof(*b->c->svcs)))
		return -ENOMEM;
	ls = &b->c->svcs[b->c->n_svcs++];
	ls->vip = ps->key.vip;
	ls->port = port;
	if (l7_strdup(ps->fqdn, &ls->fqdn) || l7_strdup(ps->ns, &ls->ns) ||
	    l7_strdup(ps->name, &ls->name) || l7_strdup(why, &ls->why))
		return -ENOMEM;
	if ((err = l7_cluster_get(b, svc, port, NULL, &ls->default_cluster)))
		return err;
	if (vs && (err = l7_vhost_get(b, vs, port, false, NULL, 0, &ls->vhost)))
		return err;
	return 0;
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
		err = l7_vhost_get(b, vs, 0, true, hosts, n_hosts, &vh);
	if (!err && n_hosts) {
		nv = realloc(g->vhosts, (g->n_vhosts + 1) * sizeof(*nv));
		if (!nv) {
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

static void l7_pod_free(struct l7_pod *p)
{
	free(p->ns);
	free(p->name);
	l7_labels_free(&p->labels);
}

static int l7_pods_build(struct l7_build *b)
{
	struct l7_config *c = b->c;
	struct l7_pod_ord *ord;
	size_t n = 0;
	int err = 0;

	if (!b->set->n_pods)
		return 0;
	ord = calloc(b->set->n_pods, sizeof(*ord));
	if (!ord)
		return -ENOMEM;
	for (size_t i = 0; i < b->set->n_pods; i++) {
		const struct pol_pod *pp = &b->set->pods[i];

		if (pp->ip && !pp->host_network)
			ord[n++] = (struct l7_pod_ord){ ntohl(pp->ip), i };
	}
	if (n)
		qsort(ord, n, sizeof(*ord), l7_pod_cmp);
	if (n && !(c->pods = calloc(n, sizeof(*c->pods))))
		err = -ENOMEM;
	for (size_t i = 0; !err && i < n; i++) {
		const struct pol_pod *pp = &b->set->pods[ord[i].idx];
		struct l7_pod *p;

		if (i && ord[i].ip == ord[i - 1].ip)
			continue;
		p = &c->pods[c->n_pods++];
		p->ip = pp->ip;
		if (l7_strdup(pp->meta.ns, &p->ns) || l7_strdup(pp->meta.name, &p->name) ||
		    l7_labels_copy(&pp->meta.labels, &p->labels))
			err = -ENOMEM;
	}
	free(ord);
	return err;
}

/* ---- public ---- */

void l7_config_free(struct l7_config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_svcs; i++) {
		free(c->svcs[i].fqdn);
		free(c->svcs[i].ns);
		free(c->svcs[i].name);
		free(c->svcs[i].why);
	}
	free(c->svcs);
	for (size_t i = 0; i < c->n_l4_ports; i++)
	{
		free(c->l4_ports[i].name);
		free(c->l4_ports[i].why);
	}
	free(c->l4_ports);
	for (size_t i = 0; i < c->n_clusters; i++)
		l7_cluster_free(c->clusters[i]);
	free(c->clusters);
	for (size_t i = 0; i < c->n_vhosts; i++)
		l7_vhost_free(c->vhosts[i]);
	free(c->vhosts);
	for (size_t i = 0; i < c->n_gateways; i++)
		l7_gateway_free_one(&c->gateways[i]);
	free(c->gateways);
	for (size_t i = 0; i < c->n_pods; i++)
		l7_pod_free(&c->pods[i]);
	free(c->pods);
	free(c);
}

static int l7_config_build_some(struct pol_set *set, struct plan *plan, const bool *redo,
				struct l7_config **out)
{
	struct l7_build b = {
		.set = set,
		.plan = plan,
		.domain = set->domain && *set->domain ? set->domain : POL_DOMAIN_DEFAULT,
	};
	int err;

	*out = NULL;
	b.c = calloc(1, sizeof(*b.c));
	if (!b.c)
		return -ENOMEM;
	b.c->refs = 1;
	err = l7_hosttabs_build(&b);
	if (!err)
		err = l7_pods_build(&b);
	/* plan->svcs is sorted by (vip, port): so is c->svcs */
	for (size_t i = 0; !err && i < plan->n_svcs; i++)
		if (!redo || redo[i] || plan->svcs[i].l7_why)
			err = l7_svc_build(&b, &plan->svcs[i]);
	if (!err)
		err = l7_gateways_build(&b);
	free(b.vc);
	l7_hosttab_free(&b.vs_hosts);
	l7_hosttab_free(&b.dr_hosts);
	if (err) {
		l7_config_free(b.c);
		return err;
	}
	*out = b.c;
	return 0;
}

int l7_config_build(struct pol_set *set, struct plan *plan, struct l7_config **out)
{
	return l7_config_build_some(set, plan, NULL, out);
}

int l7_config_rebuild(struct pol_set *set, struct plan *plan, const size_t *idx, size_t n,
		      struct l7_config **out)
{
	bool *redo = calloc(plan->n_svcs + 1, sizeof(*redo));
	int err;

	*out = NULL;
	if (!redo)
		return -ENOMEM;
	for (size_t k = 0; k < n; k++)
		if (idx[k] < plan->n_svcs)
			redo[idx[k]] = true;
	err = l7_config_build_some(set, plan, redo, out);
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
	size_t lo = 0, hi;
	uint32_t hv = ntohl(vip);

	if (!c)
		return NULL;
	hi = c->n_svcs;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct l7_svc *s = &c->svcs[mid];
		uint32_t sv = ntohl(s->vip);

		if (sv == hv && s->port == port)
			return s;
		if (sv < hv || (sv == hv && s->port < port))
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
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
	size_t lo = 0, hi;
	uint32_t hv = ntohl(ip);

	if (!c)
		return NULL;
	hi = c->n_pods;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint32_t pv = ntohl(c->pods[mid].ip);

		if (pv == hv)
			return &c->pods[mid];
		if (pv < hv)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}
