// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * plan: a validated policy set -> what the kernel maps must hold.
 *
 * Istio semantics followed here (pilot's cluster builder):
 *  - trafficPolicy merge: compile_cluster_policy() (compile.c), shared with
 *    the L7 config.
 *  - a VirtualService applies to the mesh when its gateways are empty or list
 *    "mesh"; the first tcp route whose match fits the port wins.
 *  - an unset weight on a single destination means 100.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compile/compile.h"
#include "common/dp.h"
#include "common/grow.h"
#include "common/hash.h"
#include "compile/plan.h"
#include "common/u64map.h"

#define PLAN_FQDN_MAX		256
#define PLAN_REDIRECT_KEY	"sockmesh.io/redirect"
#define PLAN_MESH_GATEWAY	"mesh"

/* Second, independent offset basis for Maglev's skip hash. */
#define PLAN_SKIP_SEED	0x9e3779b97f4a7c15ULL

uint64_t plan_cluster_id(const char *fqdn, uint16_t port, const char *subset)
{
	char num[16];
	uint64_t h = SM_FNV64_OFFSET;

	snprintf(num, sizeof(num), ":%u|", port);
	h = sm_hash_fnv1a64(h, fqdn, strlen(fqdn));
	h = sm_hash_fnv1a64(h, num, strlen(num));
	if (subset)
		h = sm_hash_fnv1a64(h, subset, strlen(subset));
	return h;
}

/* Hash of a Service's namespace and name (plan_service.name_hash). */
static uint32_t plan_name_hash(const char *ns, const char *name)
{
	uint64_t h = sm_hash_fnv1a64(SM_FNV64_OFFSET, ns, strlen(ns) + 1);

	h = sm_hash_fnv1a64(h, name, strlen(name));
	return (uint32_t)(h ^ (h >> 32));
}

/* ---- weighted slot tables ---- */

static uint64_t plan_gcd(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;

		a = b;
		b = t;
	}
	return a;
}

/* Divide positive weights by their gcd; returns the new sum. */
static uint64_t plan_weights_reduce(uint64_t *w, size_t n)
{
	uint64_t g = 0, sum = 0;

	for (size_t i = 0; i < n; i++)
		if (w[i])
			g = plan_gcd(w[i], g);
	for (size_t i = 0; i < n; i++) {
		w[i] /= g;
		sum += w[i];
	}
	return sum;
}

/*
 * Scale w (sum > max) to sum exactly max: Hamilton / largest remainder, with
 * every positive weight kept at >= 1 slot so no destination silently
 * disappears. Ties go to the lower index (deterministic).
 */
static int plan_weights_scale(uint64_t *w, size_t n, uint64_t sum, uint64_t max)
{
	uint64_t *rem, total = 0, positive = 0;

	for (size_t i = 0; i < n; i++)
		positive += w[i] > 0;
	if (positive > max)
		return -EINVAL;
	rem = calloc(n, sizeof(*rem));
	if (!rem)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		uint64_t q;

		if (!w[i])
			continue;
		q = (uint64_t)((unsigned __int128)w[i] * max / sum);
		rem[i] = (uint64_t)((unsigned __int128)w[i] * max % sum);
		if (q == 0) {
			/* Raised to the minimum: already above its quota. */
			q = 1;
			rem[i] = 0;
		}
		w[i] = q;
		total += q;
	}
	while (total < max) {
		size_t best = n;

		for (size_t i = 0; i < n; i++)
			if (w[i] && (best == n || rem[i] > rem[best]))
				best = i;
		w[best]++;
		rem[best] = 0;
		total++;
	}
	while (total > max) {
		/* Only reachable through the >= 1 minimum: take from the
		 * largest entry that can spare a slot, smallest remainder. */
		size_t best = n;

		for (size_t i = 0; i < n; i++)
			if (w[i] > 1 && (best == n || w[i] > w[best] ||
					 (w[i] == w[best] && rem[i] < rem[best])))
				best = i;
		w[best]--;
		total--;
	}
	free(rem);
	return 0;
}

int plan_weight_slots(const uint32_t *weights, size_t n, uint16_t *slots,
		      size_t max_slots)
{
	uint64_t *w, sum = 0;
	int64_t *cur;
	int err;

	if (!weights || !slots || n == 0 || max_slots == 0 || n > UINT16_MAX + 1u)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		sum += weights[i];
	if (sum == 0)
		return -EINVAL;
	w = calloc(n, sizeof(*w));
	cur = calloc(n, sizeof(*cur));
	if (!w || !cur) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		w[i] = weights[i];
	sum = plan_weights_reduce(w, n);
	if (sum > max_slots) {
		err = plan_weights_scale(w, n, sum, max_slots);
		if (err)
			goto out;
		sum = plan_weights_reduce(w, n);
	}
	/* nginx's smooth weighted round robin: exact counts, spread out. */
	for (uint64_t s = 0; s < sum; s++) {
		size_t best = n;

		for (size_t i = 0; i < n; i++) {
			if (!w[i])
				continue;
			cur[i] += (int64_t)w[i];
			if (best == n || cur[i] > cur[best])
				best = i;
		}
		cur[best] -= (int64_t)sum;
		slots[s] = (uint16_t)best;
	}
	err = (int)sum;
out:
	free(w);
	free(cur);
	return err;
}

/* ---- Maglev ---- */

/*
 * Few, coarse sizes: a table's size changes only when the backend count
 * crosses 40 or 163, because a new size remaps nearly every client (Envoy
 * keeps one fixed size, 65537, for the same reason). Each size is >= 100x
 * the backends it serves, the Maglev paper's bound for even spread.
 */
static const uint32_t plan_maglev_primes[] = { 4093, 16381, 65521 };

uint32_t plan_maglev_size(size_t n_backends)
{
	size_t want = n_backends * 100;
	size_t np = sizeof(plan_maglev_primes) / sizeof(plan_maglev_primes[0]);

	for (size_t i = 0; i < np; i++)
		if (plan_maglev_primes[i] >= want)
			return plan_maglev_primes[i];
	return SM_MAGLEV_MAX_SIZE;
}

int plan_maglev_fill(const struct plan_backend *backends, size_t n,
		     uint32_t m, uint32_t *table)
{
	uint64_t *offset, *skip, *next;
	uint32_t filled = 0;
	int err = 0;

	if (!backends || !table || n == 0 || m < 2)
		return -EINVAL;
	offset = calloc(n, sizeof(*offset));
	skip = calloc(n, sizeof(*skip));
	next = calloc(n, sizeof(*next));
	if (!offset || !skip || !next) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char b[6];

		/* Hash the address bytes, not the list position: a backend
		 * keeps its permutation when others come and go. */
		memcpy(b, &backends[i].key.addr, 4);
		memcpy(b + 4, &backends[i].key.port, 2);
		offset[i] = sm_hash_mix64(sm_hash_fnv1a64(SM_FNV64_OFFSET, b, sizeof(b))) % m;
		skip[i] = sm_hash_mix64(sm_hash_fnv1a64(PLAN_SKIP_SEED, b, sizeof(b))) % (m - 1) + 1;
	}
	for (uint32_t j = 0; j < m; j++)
		table[j] = UINT32_MAX;
	/* Each backend in turn takes its next preferred free slot. m is prime
	 * and skip < m, so every permutation visits all m slots. */
	while (filled < m) {
		for (size_t i = 0; i < n && filled < m; i++) {
			uint64_t c = (offset[i] + next[i] * skip[i]) % m;

			while (table[c] != UINT32_MAX) {
				next[i]++;
				c = (offset[i] + next[i] * skip[i]) % m;
			}
			table[c] = (uint32_t)i;
			next[i]++;
			filled++;
		}
	}
out:
	free(offset);
	free(skip);
	free(next);
	return err;
}

/* ---- plan building ---- */

struct plan_ctx {
	struct pol_set *set;
	const char *domain;
	struct plan_service *ps;	/* whose build says what plan_diag says */
	struct plan_patch *pt;		/* a patch: what set->diags gained */
};

/* A backend while collecting: the pod (if known) gives subset labels. */
struct plan_be_tmp {
	struct sm_be_key key;
	uint32_t flags;
	const struct pol_pod *pod;
	struct pol_loc loc;
};

struct plan_be_list {
	struct plan_be_tmp *v;
	size_t n, cap;
};

static int plan_diag_add(struct pol_set *set, enum pol_diag_level level,
			 const struct pol_loc *loc, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = policy_diag_vadd_unique(set, level, loc, fmt, ap);
	va_end(ap);
	return ret;
}

/* Identical as policy_diag_vadd_unique() sees it (the file by pointer). */
static bool plan_diag_eq(const struct pol_diag *a, const struct pol_diag *b)
{
	return a->level == b->level && a->loc.file == b->loc.file && a->loc.line == b->loc.line &&
	       a->loc.col == b->loc.col && !strcmp(a->msg, b->msg);
}

static int plan_diag_push(struct pol_diag **v, size_t *n, const struct pol_diag *d)
{
	struct pol_diag *nv = realloc(*v, (*n + 1) * sizeof(*nv));

	if (!nv)
		return -ENOMEM;
	*v = nv;
	nv[(*n)++] = *d;
	return 0;
}

/*
 * Append a diagnostic to the set. Identical diagnostics (same place, same
 * text) are kept once: a DestinationRule is looked at once per port and
 * subset. The entry being built (c->ps) notes it, once, so that it goes
 * when no entry says it any more (plan_patch_services).
 */
static int plan_diag(struct plan_ctx *c, enum pol_diag_level level,
		     const struct pol_loc *loc, const char *fmt, ...)
{
	struct pol_diag d = { .level = level };
	size_t n = c->set->n_diags;
	va_list ap;
	int ret;

	if (loc)
		d.loc = *loc;
	va_start(ap, fmt);
	vsnprintf(d.msg, sizeof(d.msg), fmt, ap);
	va_end(ap);
	ret = plan_diag_add(c->set, level, loc, "%s", d.msg);
	if (!ret && c->pt && c->set->n_diags > n)
		ret = plan_diag_push(&c->pt->dadd, &c->pt->n_dadd, &d);
	for (size_t i = 0; !ret && c->ps && i < c->ps->n_diags; i++)
		if (plan_diag_eq(&c->ps->diags[i], &d))
			return 0;
	if (!ret && c->ps)
		ret = plan_diag_push(&c->ps->diags, &c->ps->n_diags, &d);
	return ret;
}

static bool plan_streq0(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

static bool plan_is_tcp(uint8_t proto)
{
	/* 0: the parser left the default in place. */
	return proto == 0 || proto == SM_IPPROTO_TCP;
}

static int plan_fqdn(const struct plan_ctx *c, const struct pol_service *svc,
		     char *out, size_t len)
{
	int n = snprintf(out, len, "%s.%s.svc.%s", svc->meta.name, svc->meta.ns,
			 c->domain);

	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

static bool plan_host_is(const struct plan_ctx *c, const char *host,
			 const char *ns, const char *fqdn)
{
	char buf[PLAN_FQDN_MAX];

	if (!host || policy_host_fqdn(c->set, host, ns, buf, sizeof(buf)))
		return false;
	return strcmp(buf, fqdn) == 0;
}

/* Istio picks one DestinationRule per host: prefer the service's namespace. */
static const struct pol_dr *plan_find_dr(const struct plan_ctx *c,
					 const struct pol_service *svc,
					 const char *fqdn)
{
	const struct pol_dr *first = NULL;

	for (size_t i = 0; i < c->set->n_drs; i++) {
		const struct pol_dr *dr = &c->set->drs[i];

		if (!plan_host_is(c, dr->host, dr->meta.ns, fqdn))
			continue;
		if (strcmp(dr->meta.ns, svc->meta.ns) == 0)
			return dr;
		if (!first)
			first = dr;
	}
	return first;
}

static bool plan_gateways_mesh(char **gws, size_t n)
{
	if (n == 0)
		return true;
	for (size_t i = 0; i < n; i++)
		if (gws[i] && strcmp(gws[i], PLAN_MESH_GATEWAY) == 0)
			return true;
	return false;
}

static bool plan_vs_has_route(const struct pol_vs *vs)
{
	return vs->n_tcp > 0;
}

static const struct pol_vs *plan_find_vs(const struct plan_ctx *c,
					 const struct pol_service *svc,
					 const char *fqdn)
{
	const struct pol_vs *first = NULL;

	for (size_t i = 0; i < c->set->n_vss; i++) {
		const struct pol_vs *vs = &c->set->vss[i];
		bool hit = false;

		if (!plan_gateways_mesh(vs->gateways, vs->n_gateways) ||
		    !plan_vs_has_route(vs))
			continue;
		for (size_t h = 0; h < vs->n_hosts && !hit; h++)
			hit = plan_host_is(c, vs->hosts[h], vs->meta.ns, fqdn);
		if (!hit)
			continue;
		if (strcmp(vs->meta.ns, svc->meta.ns) == 0)
			return vs;
		if (!first)
			first = vs;
	}
	return first;
}

static const struct pol_subset *plan_find_subset(const struct pol_dr *dr,
						 const char *name)
{
	if (!dr || !name)
		return NULL;
	for (size_t i = 0; i < dr->n_subsets; i++)
		if (dr->subsets[i].name && strcmp(dr->subsets[i].name, name) == 0)
			return &dr->subsets[i];
	return NULL;
}

/* The kernel's part of the one cluster policy (compile_cluster_policy). */
static int plan_cluster_policy(struct plan_ctx *c, const struct pol_dr *dr,
			       const char *subset, uint16_t port, struct plan_cluster *cl)
{
	struct compile_cluster_policy cp;
	const struct pol_lb *lb;
	int err = 0;

	compile_cluster_policy(dr, subset, port, &cp);
	lb = cp.lb_src;
	switch (cp.lb) {
	case L7_LB_ROUND_ROBIN:
		cl->lb = SM_LB_ROUND_ROBIN;
		break;
	case L7_LB_RANDOM:
		cl->lb = SM_LB_RANDOM;
		if (lb->kind == POL_LB_PASSTHROUGH)
			err = plan_diag(c, POL_DIAG_WARNING, &lb->loc,
					"loadBalancer.simple PASSTHROUGH: the kernel has no original destination to pass to; using RANDOM");
		break;
	case L7_LB_HASH:
		if (lb->hash == POL_HASH_SOURCE_IP) {
			cl->lb = SM_LB_MAGLEV;
			break;
		}
		cl->lb = SM_LB_LEAST_REQUEST;
		err = plan_diag(c, POL_DIAG_WARNING, &lb->loc,
				"consistentHash.%s needs the L7 agent; L4 uses LEAST_REQUEST",
				lb->hash == POL_HASH_HEADER ? "httpHeaderName" :
				lb->hash == POL_HASH_COOKIE ? "httpCookie" :
				lb->hash == POL_HASH_QUERY ? "httpQueryParameterName" :
				"hashKey");
		break;
	default:
		cl->lb = SM_LB_LEAST_REQUEST;
		break;
	}
	cl->max_conns = cp.pool.max_connections;
	cl->min_health_pct = cp.outlier.enabled ? (uint8_t)cp.outlier.min_health_pct : 0;
	return err;
}

/* By IP: a pod-network pod in ns first, then any pod-network pod. */
static const struct pol_pod *plan_pod_by_ip(const struct plan_ctx *c,
					    const char *ns, uint32_t ip)
{
	const struct pol_pod *const *pods, *other = NULL;
	size_t n;

	pods = policy_index_pods_ip(c->set, ip, &n);
	for (size_t i = 0; i < n; i++) {
		const struct pol_pod *p = pods[i];

		if (p->host_network)
			continue;
		if (strcmp(p->meta.ns, ns) == 0)
			return p;
		if (!other)
			other = p;
	}
	return other;
}

static int plan_be_add(struct plan_be_list *l, uint32_t addr, uint16_t port,
		       bool ready, const struct pol_pod *pod, const struct pol_loc *loc)
{
	struct plan_be_tmp *b;
	int err;

	err = sm_grow((void **)&l->v, &l->cap, l->n + 1, sizeof(*l->v));
	if (err)
		return err;
	b = &l->v[l->n++];
	memset(b, 0, sizeof(*b));
	b->key.addr = addr;
	b->key.port = htons(port);
	b->flags = ready ? SM_BE_F_READY : 0;
	b->pod = pod;
	b->loc = *loc;
	return 0;
}

static int plan_be_cmp(const void *a, const void *b)
{
	const struct plan_be_tmp *x = a, *y = b;
	uint32_t xa = ntohl(x->key.addr), ya = ntohl(y->key.addr);
	uint16_t xp = ntohs(x->key.port), yp = ntohs(y->key.port);

	if (xa != ya)
		return xa < ya ? -1 : 1;
	if (xp != yp)
		return xp < yp ? -1 : 1;
	return 0;
}

/* Sort and merge duplicates (the same endpoint in two slices: ready if any is). */
static void plan_be_normalize(struct plan_be_list *l)
{
	size_t w = 0;

	if (l->n == 0)
		return;
	qsort(l->v, l->n, sizeof(*l->v), plan_be_cmp);
	for (size_t r = 1; r < l->n; r++) {
		if (plan_be_cmp(&l->v[w], &l->v[r]) == 0) {
			l->v[w].flags |= l->v[r].flags;
			if (!l->v[w].pod)
				l->v[w].pod = l->v[r].pod;
			continue;
		}
		l->v[++w] = l->v[r];
	}
	l->n = w + 1;
}

static const struct pol_eps_port *plan_eps_port(const struct pol_eps *eps,
						const struct pol_service *svc,
						const struct pol_svc_port *sp)
{
	const struct pol_eps_port *only = NULL;
	size_t n_tcp = 0;

	for (size_t i = 0; i < eps->n_ports; i++) {
		const struct pol_eps_port *ep = &eps->ports[i];

		if (!plan_is_tcp(ep->proto))
			continue;
		if (plan_streq0(ep->name, sp->name))
			return ep;
		only = ep;
		n_tcp++;
	}
	for (size_t i = 0; i < eps->n_ports && sp->target_port; i++) {
		const struct pol_eps_port *ep = &eps->ports[i];

		if (plan_is_tcp(ep->proto) && !(ep->name && *ep->name) &&
		    ep->port == sp->target_port)
			return ep;
	}
	/* Hand-written slices often omit the name of a single port. */
	if (svc->n_ports == 1 && n_tcp == 1 && !(only->name && *only->name))
		return only;
	return NULL;
}

static int plan_endpoints_slices(struct plan_ctx *c, const struct pol_service *svc,
				 const struct pol_svc_port *sp,
				 struct plan_be_list *l, bool *found)
{
	const struct pol_eps *const *slices;
	size_t n;
	int err;

	slices = policy_index_slices(c->set, svc->meta.ns, svc->meta.name, &n);
	*found = n > 0;
	for (size_t i = 0; i < n; i++) {
		const struct pol_eps *eps = slices[i];
		const struct pol_eps_port *ep;

		ep = plan_eps_port(eps, svc, sp);
		if (!ep || ep->port == 0)
			continue;
		for (size_t e = 0; e < eps->n_endpoints; e++) {
			const struct pol_endpoint *en = &eps->endpoints[e];

			for (size_t a = 0; a < en->n_addrs; a++) {
				const struct pol_pod *pod = NULL;

				if (en->target_pod)
					pod = policy_index_pod(c->set, eps->meta.ns, en->target_pod);
				if (!pod)
					pod = plan_pod_by_ip(c, eps->meta.ns, en->addrs[a]);
				err = plan_be_add(l, en->addrs[a], ep->port, en->ready, pod,
						  pod ? &pod->meta.loc : &en->loc);
				if (err)
					return err;
			}
		}
	}
	return 0;
}

static int plan_endpoints_pods(struct plan_ctx *c, const struct pol_service *svc,
			       const struct pol_svc_port *sp, struct plan_be_list *l)
{
	int err;

	/* Kubernetes manages no endpoints for a Service without a selector. */
	const struct pol_pod *const *pods;
	size_t n;

	if (!svc->has_selector || svc->selector.n == 0)
		return 0;
	pods = policy_index_pods_in(c->set, svc->meta.ns, &n);
	for (size_t i = 0; i < n; i++) {
		const struct pol_pod *p = pods[i];
		uint16_t port = sp->target_port;

		if (!p->ip || !policy_labels_match(&svc->selector, &p->meta.labels))
			continue;
		if (sp->target_port_name) {
			port = 0;
			for (size_t k = 0; k < p->n_ports; k++) {
				const struct pol_container_port *cp = &p->ports[k];

				if (cp->name && strcmp(cp->name, sp->target_port_name) == 0 &&
				    plan_is_tcp(cp->proto)) {
					port = cp->port;
					break;
				}
			}
			if (!port) {
				err = plan_diag(c, POL_DIAG_WARNING, &sp->loc,
						"service %s/%s port %u: pod %s/%s has no container port named \"%s\"; not a backend",
						svc->meta.ns, svc->meta.name, sp->port,
						p->meta.ns, p->meta.name, sp->target_port_name);
				if (err)
					return err;
				continue;
			}
		} else if (!port) {
			port = sp->port;
		}
		err = plan_be_add(l, p->ip, port, p->ready, p, &p->meta.loc);
		if (err)
			return err;
	}
	return 0;
}

/* Every backend of one service port, sorted and deduplicated. */
static int plan_endpoints(struct plan_ctx *c, const struct pol_service *svc,
			  const struct pol_svc_port *sp, struct plan_be_list *l)
{
	bool found;
	int err;

	err = plan_endpoints_slices(c, svc, sp, l, &found);
	if (!err && !found)
		err = plan_endpoints_pods(c, svc, sp, l);
	if (!err)
		plan_be_normalize(l);
	return err;
}

static void plan_cluster_free(struct plan_cluster *cl)
{
	for (size_t i = 0; i < cl->n_backends; i++)
		free(cl->backends[i].pod);
	free(cl->backends);
	free(cl->name);
	free(cl->subset);
	free(cl->maglev);
	memset(cl, 0, sizeof(*cl));
}

static int plan_cluster_backends(const struct plan_be_list *all,
				 const struct pol_subset *ss,
				 struct plan_cluster *cl)
{
	size_t n = 0;

	if (all->n) {
		cl->backends = calloc(all->n, sizeof(*cl->backends));
		if (!cl->backends)
			return -ENOMEM;
	}
	for (size_t i = 0; i < all->n; i++) {
		const struct plan_be_tmp *t = &all->v[i];
		struct plan_backend *b;

		/* A backend whose pod (labels) is unknown is in no subset. */
		if (ss && (!t->pod || !policy_labels_match(&ss->labels, &t->pod->meta.labels)))
			continue;
		b = &cl->backends[n++];
		b->key = t->key;
		b->flags = t->flags;
		b->loc = t->loc;
		if (t->pod && asprintf(&b->pod, "%s/%s", t->pod->meta.ns,
				       t->pod->meta.name) < 0) {
			b->pod = NULL;
			cl->n_backends = n;
			return -ENOMEM;
		}
	}
	cl->n_backends = n;
	return 0;
}

/*
 * One cluster: (service port, subset). subset_name without ss is a subset the
 * DestinationRule does not define: an empty cluster, as Envoy would answer
 * "no healthy upstream".
 */
static int plan_cluster_make(struct plan_ctx *c, const char *fqdn, uint16_t port,
			     const struct pol_dr *dr, const char *subset_name,
			     const struct plan_be_list *all, struct plan_cluster *cl)
{
	const struct pol_subset *ss = plan_find_subset(dr, subset_name);
	int err;

	memset(cl, 0, sizeof(*cl));
	cl->id = plan_cluster_id(fqdn, port, subset_name);
	if (asprintf(&cl->name, "outbound|%u|%s|%s", port,
		     subset_name ? subset_name : "", fqdn) < 0) {
		cl->name = NULL;
		return -ENOMEM;
	}
	if (subset_name) {
		cl->subset = strdup(subset_name);
		if (!cl->subset)
			return -ENOMEM;
	}
	err = plan_cluster_policy(c, dr, subset_name, port, cl);
	if (err)
		return err;
	if (subset_name && !ss) {
		cl->n_backends = 0;
	} else {
		err = plan_cluster_backends(all, ss, cl);
		if (err)
			return err;
	}
	if (cl->lb == SM_LB_MAGLEV && cl->n_backends > 0) {
		cl->maglev_size = plan_maglev_size(cl->n_backends);
		cl->maglev = calloc(cl->maglev_size, sizeof(*cl->maglev));
		if (!cl->maglev)
			return -ENOMEM;
		err = plan_maglev_fill(cl->backends, cl->n_backends,
				       cl->maglev_size, cl->maglev);
	}
	return err;
}

static struct plan_ctx plan_ctx_of(struct pol_set *set)
{
	return (struct plan_ctx){
		.set = set,
		.domain = set->domain && *set->domain ? set->domain : POL_DOMAIN_DEFAULT,
	};
}

static const struct pol_svc_port *plan_svc_port_find(const struct pol_service *svc,
						     uint16_t port);

const struct pol_dr *plan_service_dr(struct pol_set *set, const struct pol_service *svc)
{
	struct plan_ctx c = plan_ctx_of(set);
	char fqdn[PLAN_FQDN_MAX];

	if (plan_fqdn(&c, svc, fqdn, sizeof(fqdn)))
		return NULL;
	return plan_find_dr(&c, svc, fqdn);
}

int plan_cluster_fill(struct pol_set *set, const struct pol_service *svc,
		      uint16_t port, const char *subset, struct plan_cluster *out)
{
	struct plan_ctx c = plan_ctx_of(set);
	const struct pol_svc_port *sp = plan_svc_port_find(svc, port);
	struct plan_be_list all = { 0 };
	char fqdn[PLAN_FQDN_MAX];
	int err;

	memset(out, 0, sizeof(*out));
	if (!sp || plan_fqdn(&c, svc, fqdn, sizeof(fqdn)))
		return -ENOENT;
	err = plan_endpoints(&c, svc, sp, &all);
	if (!err)
		err = plan_cluster_make(&c, fqdn, port, plan_find_dr(&c, svc, fqdn),
					subset, &all, out);
	free(all.v);
	if (err)
		plan_cluster_free(out);
	return err;
}

void plan_cluster_release(struct plan_cluster *cl)
{
	if (cl)
		plan_cluster_free(cl);
}

struct plan_svc_build {
	struct plan_service *ps;
	size_t cap_clusters;
};

static int plan_svc_add_cluster(struct plan_svc_build *b, struct plan_cluster **out)
{
	struct plan_service *ps = b->ps;
	int err;

	err = sm_grow((void **)&ps->clusters, &b->cap_clusters, ps->n_clusters + 1,
			sizeof(*ps->clusters));
	if (err)
		return err;
	*out = &ps->clusters[ps->n_clusters++];
	return 0;
}

static const struct pol_svc_port *plan_svc_port_find(const struct pol_service *svc,
						     uint16_t port)
{
	for (size_t i = 0; i < svc->n_ports; i++)
		if (svc->ports[i].port == port && plan_is_tcp(svc->ports[i].proto))
			return &svc->ports[i];
	return NULL;
}

/*
 * The cluster a route destination names, as an index into ps->clusters;
 * added when it is another service's (or another port's) cluster.
 * Returns the index, or -ENOENT (warned, destination dropped), or -ENOMEM.
 */
static int plan_route_cluster(struct plan_ctx *c, struct plan_svc_build *b,
			      const struct pol_service *svc,
			      const struct pol_svc_port *sp,
			      const struct pol_vs *vs,
			      const struct pol_route_dest *rd)
{
	const struct pol_destination *d = &rd->dest;
	const struct pol_service *dsvc;
	const struct pol_svc_port *dsp = NULL;
	const struct pol_dr *dr;
	struct plan_be_list all = { 0 };
	struct plan_cluster *cl;
	char fqdn[PLAN_FQDN_MAX];
	uint64_t id;
	int err;

	dsvc = d->host ? policy_find_service(c->set, d->host, vs->meta.ns) : NULL;
	if (!dsvc) {
		err = plan_diag(c, POL_DIAG_WARNING, &d->loc,
				"route destination host \"%s\" is not a known service; destination ignored",
				d->host ? d->host : "");
		return err ? err : -ENOENT;
	}
	if (d->port) {
		dsp = plan_svc_port_find(dsvc, d->port);
	} else if (dsvc == svc) {
		dsp = sp;
	} else {
		dsp = plan_svc_port_find(dsvc, sp->port);
		if (!dsp && dsvc->n_ports == 1 && plan_is_tcp(dsvc->ports[0].proto))
			dsp = &dsvc->ports[0];
	}
	if (!dsp) {
		err = plan_diag(c, POL_DIAG_WARNING, &d->loc,
				"route destination %s/%s: no TCP port %u; destination ignored",
				dsvc->meta.ns, dsvc->meta.name, d->port ? d->port : sp->port);
		return err ? err : -ENOENT;
	}
	if (plan_fqdn(c, dsvc, fqdn, sizeof(fqdn)))
		return -ENOENT;
	id = plan_cluster_id(fqdn, dsp->port, d->subset);
	for (size_t i = 0; i < b->ps->n_clusters; i++)
		if (b->ps->clusters[i].id == id)
			return (int)i;

	dr = plan_find_dr(c, dsvc, fqdn);
	if (d->subset && !plan_find_subset(dr, d->subset)) {
		err = plan_diag(c, POL_DIAG_WARNING, &d->loc,
				"subset \"%s\" of %s is not defined by a DestinationRule; it has no backends",
				d->subset, fqdn);
		if (err)
			return err;
	}
	err = plan_endpoints(c, dsvc, dsp, &all);
	if (!err)
		err = plan_svc_add_cluster(b, &cl);
	if (!err)
		err = plan_cluster_make(c, fqdn, dsp->port, dr, d->subset, &all, cl);
	free(all.v);
	if (err)
		return err;
	cl->loc = d->loc;
	return (int)(b->ps->n_clusters - 1);
}

/* Does a tcp route match this port? Source-based blocks cannot apply in the kernel. */
static int plan_tcp_route_matches(struct plan_ctx *c, const struct pol_tcp_route *r,
				  uint16_t port, bool *hit)
{
	int err;

	*hit = r->n_match == 0;
	for (size_t i = 0; i < r->n_match && !*hit; i++) {
		const struct pol_l4_match *m = &r->match[i];

		if (m->source_labels.n || m->source_namespace) {
			err = plan_diag(c, POL_DIAG_WARNING, &m->loc,
					"tcp match on %s is per client and not enforced in the kernel; match block ignored",
					m->source_labels.n ? "sourceLabels" : "sourceNamespace");
			if (err)
				return err;
			continue;
		}
		if (!plan_gateways_mesh(m->gateways, m->n_gateways))
			continue;
		if (m->port == 0 || m->port == port)
			*hit = true;
	}
	return 0;
}

static int plan_svc_route(struct plan_ctx *c, struct plan_svc_build *b,
			  const struct pol_service *svc, const struct pol_svc_port *sp,
			  const char *fqdn)
{
	const struct pol_vs *vs = plan_find_vs(c, svc, fqdn);
	const struct pol_tcp_route *route = NULL;
	struct plan_service *ps = b->ps;
	uint32_t *weights = NULL;
	uint16_t *idx = NULL, *slots = NULL;
	size_t n = 0;
	uint64_t wsum = 0;
	int err = 0, ns;

	if (!vs)
		return 0;
	for (size_t i = 0; i < vs->n_tcp && !route; i++) {
		bool hit;

		err = plan_tcp_route_matches(c, &vs->tcp[i], sp->port, &hit);
		if (err)
			return err;
		if (hit)
			route = &vs->tcp[i];
	}
	if (!route || route->n_route == 0)
		return 0;

	weights = calloc(route->n_route, sizeof(*weights));
	idx = calloc(route->n_route, sizeof(*idx));
	slots = calloc(SM_MAX_ROUTE_SLOTS, sizeof(*slots));
	if (!weights || !idx || !slots) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < route->n_route; i++) {
		const struct pol_route_dest *rd = &route->route[i];
		int ci = plan_route_cluster(c, b, svc, sp, vs, rd);

		if (ci == -ENOENT)
			continue;
		if (ci < 0) {
			err = ci;
			goto out;
		}
		idx[n] = (uint16_t)ci;
		if (rd->weight >= 0)
			weights[n] = (uint32_t)rd->weight;
		else
			weights[n] = route->n_route == 1 ? 100 : 0;
		wsum += weights[n];
		n++;
	}
	if (n == 0)
		goto out;
	if (wsum == 0) {
		err = plan_diag(c, POL_DIAG_WARNING, &route->loc,
				"tcp route of %s/%s has no positive weight; splitting evenly",
				vs->meta.ns, vs->meta.name);
		if (err)
			goto out;
		for (size_t i = 0; i < n; i++)
			weights[i] = 1;
	}
	ns = plan_weight_slots(weights, n, slots, SM_MAX_ROUTE_SLOTS);
	if (ns < 0) {
		err = ns == -ENOMEM ? ns : plan_diag(c, POL_DIAG_WARNING, &route->loc,
				"tcp route of %s/%s: weights cannot be mapped to %d slots; route ignored",
				vs->meta.ns, vs->meta.name, SM_MAX_ROUTE_SLOTS);
		goto out;
	}
	for (int s = 0; s < ns; s++)
		slots[s] = idx[slots[s]];
	ps->slots = slots;
	ps->n_slots = (size_t)ns;
	ps->route_loc = route->loc;
	slots = NULL;
	if (asprintf(&ps->route_from, "%s/%s", vs->meta.ns, vs->meta.name) < 0) {
		ps->route_from = NULL;
		err = -ENOMEM;
	}
out:
	free(weights);
	free(idx);
	free(slots);
	return err;
}

static int plan_svc_build(struct plan_ctx *c, const struct pol_service *svc,
			  const struct pol_svc_port *sp, struct plan_service *ps)
{
	struct plan_svc_build b = { .ps = ps };
	struct plan_be_list all = { 0 };
	struct plan_cluster *cl;
	const struct pol_dr *dr;
	char fqdn[PLAN_FQDN_MAX];
	int err;

	memset(ps, 0, sizeof(*ps));
	if (plan_fqdn(c, svc, fqdn, sizeof(fqdn)))
		return plan_diag(c, POL_DIAG_WARNING, &svc->meta.loc,
				 "service %s/%s: name too long; skipped",
				 svc->meta.ns, svc->meta.name);
	ps->key.vip = svc->cluster_ip;
	ps->key.port = htons(sp->port);
	ps->key.proto = SM_IPPROTO_TCP;
	ps->loc = sp->loc;
	ps->fqdn = strdup(fqdn);
	ps->ns = strdup(svc->meta.ns);
	ps->name = strdup(svc->meta.name);
	if (!ps->fqdn || !ps->ns || !ps->name)
		return -ENOMEM;
	ps->name_hash = plan_name_hash(ps->ns, ps->name);
	if (sp->name && !(ps->port_name = strdup(sp->name)))
		return -ENOMEM;

	c->ps = ps;	/* what it says from here on is its */
	dr = plan_find_dr(c, svc, fqdn);
	err = plan_endpoints(c, svc, sp, &all);
	if (!err)
		err = plan_svc_add_cluster(&b, &cl);
	if (!err)
		err = plan_cluster_make(c, fqdn, sp->port, dr, NULL, &all, cl);
	if (!err)
		cl->loc = sp->loc;
	for (size_t i = 0; !err && dr && i < dr->n_subsets; i++) {
		if (!dr->subsets[i].name)
			continue;
		err = plan_svc_add_cluster(&b, &cl);
		if (!err)
			err = plan_cluster_make(c, fqdn, sp->port, dr,
						dr->subsets[i].name, &all, cl);
		if (!err)
			cl->loc = dr->subsets[i].loc;
	}
	free(all.v);
	if (!err)
		err = plan_svc_route(c, &b, svc, sp, fqdn);
	c->ps = NULL;
	return err;
}

static void plan_service_free(struct plan_service *ps)
{
	for (size_t i = 0; i < ps->n_clusters; i++)
		plan_cluster_free(&ps->clusters[i]);
	free(ps->clusters);
	free(ps->fqdn);
	free(ps->ns);
	free(ps->name);
	free(ps->port_name);
	free(ps->slots);
	free(ps->route_from);
	free(ps->l7_why);
	free(ps->diags);
	memset(ps, 0, sizeof(*ps));
}

/*
 * How many entries say each diagnostic (plan->drefs, by plan_dref_key; a
 * chain for keys that collide). One that none says any more goes from
 * set->diags; its node waits in plan->dzero until the next patch, for the
 * undo, which gives it back without allocating.
 */
struct plan_dref {
	struct pol_diag d;
	size_t refs;
	struct plan_dref *next;
};

static uint64_t plan_dref_key(const struct pol_diag *d)
{
	uint64_t h = sm_hash_fnv1a64(SM_FNV64_OFFSET, d->msg, strlen(d->msg));

	h = sm_hash_mix64(h ^ (uint64_t)(uintptr_t)d->loc.file);
	h = sm_hash_mix64(h ^ ((uint64_t)d->loc.line << 32 | d->loc.col));
	h = sm_hash_mix64(h + (uint64_t)d->level);
	return h ? h : 1;
}

static struct plan_dref *plan_dref_find(const struct plan *p, const struct pol_diag *d)
{
	struct plan_dref *r = u64map_get(&p->drefs, plan_dref_key(d));

	while (r && !plan_diag_eq(&r->d, d))
		r = r->next;
	return r;
}

/* One more entry says d. 0 or -ENOMEM (nothing changed). */
static int plan_dref_get(struct plan *p, const struct pol_diag *d)
{
	struct plan_dref *r = plan_dref_find(p, d);
	uint64_t key = plan_dref_key(d);
	int err;

	if (r) {
		r->refs++;
		return 0;
	}
	if (!(r = calloc(1, sizeof(*r))))
		return -ENOMEM;
	r->d = *d;
	r->refs = 1;
	r->next = u64map_get(&p->drefs, key);
	err = u64map_put(&p->drefs, key, r);
	if (err)
		free(r);
	return err;
}

/* Take d from set->diags (the first identical one) and count it out. */
static bool plan_diag_take(struct pol_set *set, const struct pol_diag *d)
{
	for (size_t k = 0; k < set->n_diags; k++) {
		if (!plan_diag_eq(&set->diags[k], d))
			continue;
		if (d->level == POL_DIAG_ERROR)
			set->n_errors--;
		else if (d->level == POL_DIAG_WARNING)
			set->n_warnings--;
		memmove(&set->diags[k], &set->diags[k + 1],
			(set->n_diags - k - 1) * sizeof(*set->diags));
		set->n_diags--;
		return true;
	}
	return false;
}

/*
 * One entry less says d; none: it goes from set->diags (set non-NULL),
 * noted in pt->dgone (room made by the caller). p->dzero has room.
 */
static void plan_dref_put(struct plan *p, const struct pol_diag *d, struct pol_set *set,
			  struct plan_patch *pt)
{
	struct plan_dref *r = plan_dref_find(p, d);

	if (!r || !r->refs || --r->refs)
		return;
	p->dzero[p->n_dzero++] = r;
	if (set && plan_diag_take(set, d) && pt)
		pt->dgone[pt->n_dgone++] = *d;
}

static int plan_svc_ref(struct plan *p, const struct plan_service *ps)
{
	for (size_t i = 0; i < ps->n_diags; i++) {
		int err = plan_dref_get(p, &ps->diags[i]);

		if (err) {
			while (i-- > 0)
				plan_dref_find(p, &ps->diags[i])->refs--;
			return err;
		}
	}
	return 0;
}

static void plan_svc_unref(struct plan *p, const struct plan_service *ps, struct pol_set *set,
			   struct plan_patch *pt)
{
	for (size_t i = 0; i < ps->n_diags; i++)
		plan_dref_put(p, &ps->diags[i], set, pt);
}

/* Forget the nodes none says (none points to them but the table). 0 or -ENOMEM. */
static int plan_dref_sweep(struct plan *p)
{
	for (; p->n_dzero; p->n_dzero--) {
		struct plan_dref *r = p->dzero[p->n_dzero - 1], *h;
		uint64_t key = plan_dref_key(&r->d);

		if (r->refs)
			continue;
		h = u64map_get(&p->drefs, key);
		if (h == r) {
			int err = r->next ? u64map_put(&p->drefs, key, r->next) : 0;

			if (err)
				return err;
			if (!r->next)
				u64map_del(&p->drefs, key);
		} else {
			while (h && h->next != r)
				h = h->next;
			if (h)
				h->next = r->next;
		}
		free(r);
	}
	return 0;
}

static void plan_drefs_free(struct plan *p)
{
	for (size_t i = 0; i < p->drefs.cap; i++)
		for (struct plan_dref *r = p->drefs.vals[i], *nx; r; r = nx) {
			nx = r->next;
			free(r);
		}
	u64map_free(&p->drefs);
	free(p->dzero);
	p->dzero = NULL;
	p->n_dzero = p->cap_dzero = 0;
}

static int plan_svc_cmp(const void *a, const void *b)
{
	const struct plan_service *x = a, *y = b;
	uint32_t xa = ntohl(x->key.vip), ya = ntohl(y->key.vip);
	uint16_t xp = ntohs(x->key.port), yp = ntohs(y->key.port);

	if (xa != ya)
		return xa < ya ? -1 : 1;
	if (xp != yp)
		return xp < yp ? -1 : 1;
	return strcmp(x->fqdn, y->fqdn);
}

static int plan_pod_cmp(const void *a, const void *b)
{
	uint32_t x = ntohl(((const struct plan_pod *)a)->key.addr);
	uint32_t y = ntohl(((const struct plan_pod *)b)->key.addr);

	return x < y ? -1 : x > y;
}

static bool plan_pod_no_redirect(const struct pol_pod *p)
{
	const char *v = policy_label_get(&p->meta.annotations, PLAN_REDIRECT_KEY);

	if (!v)
		v = policy_label_get(&p->meta.labels, PLAN_REDIRECT_KEY);
	return v && strcmp(v, "false") == 0;
}

uint32_t plan_pod_flags(const struct pol_pod *p, const char *node)
{
	uint32_t f = 0;

	if (!p->ip)
		return 0;
	if (plan_pod_no_redirect(p))
		f |= SM_POD_F_NO_REDIRECT;
	if (node && *node && !p->host_network && p->node_name && !strcmp(p->node_name, node))
		f |= SM_POD_F_LOCAL;
	return f;
}

/* Sort out->pods by address and merge the flags of one address. */
static void plan_pods_merge(struct plan *out)
{
	size_t w = 0;

	if (!out->n_pods)
		return;
	qsort(out->pods, out->n_pods, sizeof(*out->pods), plan_pod_cmp);
	for (size_t r = 1; r < out->n_pods; r++) {
		if (out->pods[r].key.addr == out->pods[w].key.addr)
			out->pods[w].flags |= out->pods[r].flags;
		else
			out->pods[++w] = out->pods[r];
	}
	out->n_pods = w + 1;
}

static int plan_pod_add(struct plan *out, size_t *cap, uint32_t addr, uint32_t flags)
{
	int err = sm_grow((void **)&out->pods, cap, out->n_pods + 1, sizeof(*out->pods));

	if (err)
		return err;
	out->pods[out->n_pods].key.addr = addr;
	out->pods[out->n_pods].flags = flags;
	out->n_pods++;
	return 0;
}

static int plan_pods_build(struct plan_ctx *c, struct plan *out)
{
	size_t cap = 0;

	for (size_t i = 0; i < c->set->n_pods; i++) {
		const struct pol_pod *p = &c->set->pods[i];
		int err;

		if (!(plan_pod_flags(p, NULL) & SM_POD_F_NO_REDIRECT))
			continue;
		err = plan_pod_add(out, &cap, p->ip, SM_POD_F_NO_REDIRECT);
		if (err)
			return err;
	}
	plan_pods_merge(out);
	return 0;
}

int plan_mark_local(const struct pol_set *set, struct plan *out, const char *node)
{
	size_t cap = out->n_pods;

	for (size_t i = 0; i < set->n_pods; i++) {
		const struct pol_pod *p = &set->pods[i];
		int err;

		if (!(plan_pod_flags(p, node) & SM_POD_F_LOCAL))
			continue;
		err = plan_pod_add(out, &cap, p->ip, SM_POD_F_LOCAL);
		if (err)
			return err;
	}
	plan_pods_merge(out);
	return 0;
}

/* Where addr's entry is or would go in p->pods (sorted by address). */
static size_t plan_pod_lower_bound(const struct plan *p, uint32_t addr)
{
	size_t lo = 0, hi = p->n_pods;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ntohl(p->pods[mid].key.addr) < ntohl(addr))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

const struct plan_pod *plan_pod_find(const struct plan *p, uint32_t addr)
{
	size_t i = plan_pod_lower_bound(p, addr);

	return i < p->n_pods && p->pods[i].key.addr == addr ? &p->pods[i] : NULL;
}

int plan_pods_patch(const struct pol_set *set, struct plan *p, const char *node, uint32_t addr)
{
	const struct pol_pod *const *pods;
	size_t n, lo;
	uint32_t flags = 0;

	if (!set->index)
		return -EINVAL;
	pods = policy_index_pods_ip(set, addr, &n);
	for (size_t i = 0; addr && i < n; i++)
		flags |= plan_pod_flags(pods[i], node);	/* node NULL: no LOCAL bit */
	lo = plan_pod_lower_bound(p, addr);
	if (lo < p->n_pods && p->pods[lo].key.addr == addr) {
		if (flags) {
			p->pods[lo].flags = flags;
			return 0;
		}
		memmove(&p->pods[lo], &p->pods[lo + 1], (p->n_pods - lo - 1) * sizeof(*p->pods));
		p->n_pods--;
		return 0;
	}
	if (!flags)
		return 0;
	if (sm_room((void **)&p->pods, (p->n_pods + 1) * sizeof(*p->pods)))
		return -ENOMEM;
	memmove(&p->pods[lo + 1], &p->pods[lo], (p->n_pods - lo) * sizeof(*p->pods));
	p->pods[lo] = (struct plan_pod){ .key.addr = addr, .flags = flags };
	p->n_pods++;
	return 0;
}

/* Two services on one VIP:port: keep the first (validation reports it). */
static int plan_svcs_dedupe(struct plan_ctx *c, struct plan *out)
{
	size_t w = 0;

	for (size_t r = 1; r < out->n_svcs; r++) {
		struct plan_service *k = &out->svcs[w], *d = &out->svcs[r];

		if (k->key.vip == d->key.vip && k->key.port == d->key.port) {
			int err = plan_diag(c, POL_DIAG_WARNING, NULL,
					    "%s port %u: VIP:port already used by %s; not programmed",
					    d->fqdn, ntohs(d->key.port), k->fqdn);

			plan_service_free(d);
			if (err)
				return err;
			continue;
		}
		if (++w != r) {
			out->svcs[w] = *d;
			memset(d, 0, sizeof(*d));
		}
	}
	if (out->n_svcs)
		out->n_svcs = w + 1;
	return 0;
}

int plan_build(struct pol_set *set, struct plan *out)
{
	struct plan_ctx c = {
		.set = set,
		.domain = set->domain && *set->domain ? set->domain : POL_DOMAIN_DEFAULT,
	};
	size_t cap = 0;
	int err;

	memset(out, 0, sizeof(*out));
	err = policy_index_build(set);
	for (size_t i = 0; i < set->n_svcs && !err; i++) {
		const struct pol_service *svc = &set->svcs[i];

		if (svc->headless || !svc->cluster_ip)
			continue;
		for (size_t p = 0; p < svc->n_ports && !err; p++) {
			if (!plan_is_tcp(svc->ports[p].proto))
				continue;
			err = sm_grow((void **)&out->svcs, &cap, out->n_svcs + 1,
					sizeof(*out->svcs));
			if (err)
				break;
			err = plan_svc_build(&c, svc, &svc->ports[p],
					     &out->svcs[out->n_svcs]);
			out->svcs[out->n_svcs].order = out->n_svcs;
			out->n_svcs++;
			/* A service skipped with a warning has no fqdn. */
			if (!err && !out->svcs[out->n_svcs - 1].fqdn)
				out->n_svcs--;
		}
	}
	out->cap_svcs = cap;
	if (!err && out->n_svcs) {
		qsort(out->svcs, out->n_svcs, sizeof(*out->svcs), plan_svc_cmp);
		err = plan_svcs_dedupe(&c, out);
	}
	for (size_t i = 0; i < out->n_svcs && !err; i++)
		err = plan_svc_ref(out, &out->svcs[i]);
	if (!err)
		err = plan_pods_build(&c, out);
	if (err)
		plan_free(out);
	return err;
}

void plan_free(struct plan *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_svcs; i++)
		plan_service_free(&p->svcs[i]);
	free(p->svcs);
	free(p->pods);
	plan_drefs_free(p);
	memset(p, 0, sizeof(*p));
}

/* ---- incremental rebuild ---- */

/* Does any cluster of ps send to fqdn ("outbound|port|subset|fqdn")? */
static bool plan_svc_sends_to(const struct plan_service *ps, const char *fqdn)
{
	size_t fl = strlen(fqdn);

	for (size_t i = 0; i < ps->n_clusters; i++) {
		const char *name = ps->clusters[i].name;
		size_t nl = name ? strlen(name) : 0;

		if (nl > fl && name[nl - fl - 1] == '|' && !strcmp(name + nl - fl, fqdn))
			return true;
	}
	return false;
}

static const struct pol_svc_port *plan_tcp_port(const struct pol_service *svc, uint16_t port)
{
	for (size_t i = 0; i < svc->n_ports; i++)
		if (svc->ports[i].port == port && plan_is_tcp(svc->ports[i].proto))
			return &svc->ports[i];
	return NULL;
}

/* Rebuild p->svcs[i] from set in place; the old entry goes to *old. */
static int plan_svc_rebuild(struct plan_ctx *c, struct plan_service *ps,
			    struct plan_service *old)
{
	const struct pol_service *svc = policy_index_service(c->set, ps->ns, strlen(ps->ns),
							     ps->name, strlen(ps->name));
	const struct pol_svc_port *sp = svc ? plan_tcp_port(svc, ntohs(ps->key.port)) : NULL;
	struct plan_service nu;
	int err;

	if (!sp || svc->cluster_ip != ps->key.vip)
		return -ESTALE;
	err = plan_svc_build(c, svc, sp, &nu);
	if (!err && (!nu.fqdn || strcmp(nu.fqdn, ps->fqdn) ||
		     memcmp(&nu.key, &ps->key, sizeof(nu.key))))
		err = -ESTALE;
	/* what the plan and the L7 build decided for the whole set stays */
	if (!err && ps->l7_why && !(nu.l7_why = strdup(ps->l7_why)))
		err = -ENOMEM;
	if (err) {
		plan_service_free(&nu);
		return err;
	}
	nu.order = ps->order;
	nu.flags = ps->flags;
	*old = *ps;
	*ps = nu;
	return 0;
}

/* What plan_patch_services does to an entry of the plan. */
enum plan_act { PLAN_KEEP, PLAN_REBUILD, PLAN_REMOVE };

/* The Services a patch is about: by name, whether or not the set has them. */
struct plan_target {
	const char *ns, *name;
	uint32_t name_hash;
	const struct pol_service *svc;	/* NULL: gone */
	char fqdn[PLAN_FQDN_MAX];
};

/* Does svc program an entry (a ClusterIP) at port (host order)? */
static const struct pol_svc_port *plan_target_port(const struct pol_service *svc, uint16_t port)
{
	if (!svc || svc->headless || !svc->cluster_ip)
		return NULL;
	return plan_tcp_port(svc, port);
}

static enum plan_act plan_patch_act(const struct plan_service *ps, const struct plan_target *t,
				    size_t n)
{
	enum plan_act act = PLAN_KEEP;

	for (size_t k = 0; k < n; k++) {
		/* (the hash first: the strings are a cache miss each, 10k entries) */
		if (ps->name_hash == t[k].name_hash && !strcmp(ps->name, t[k].name) &&
		    !strcmp(ps->ns, t[k].ns)) {
			/* its own entry: gone with its Service, port or VIP */
			if (!plan_target_port(t[k].svc, ntohs(ps->key.port)) ||
			    t[k].svc->cluster_ip != ps->key.vip)
				return PLAN_REMOVE;
			act = PLAN_REBUILD;
		} else if (ps->route_from && plan_svc_sends_to(ps, t[k].fqdn)) {
			act = PLAN_REBUILD;	/* its tcp route sends there */
		}
	}
	return act;
}

/* Where e goes in p's sorted array (the first entry not before it). */
static size_t plan_lower_bound(const struct plan *p, const struct plan_service *e)
{
	size_t lo = 0, hi = p->n_svcs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (plan_svc_cmp(&p->svcs[mid], e) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* An entry of p with this VIP:port (any fqdn): its index, or p->n_svcs. */
static size_t plan_find_key(const struct plan *p, const struct sm_svc_key *key)
{
	struct plan_service k = { .key = *key, .fqdn = "" };	/* sorts first of its key */
	size_t lo = plan_lower_bound(p, &k);

	if (lo < p->n_svcs && p->svcs[lo].key.vip == key->vip && p->svcs[lo].key.port == key->port)
		return lo;
	return p->n_svcs;
}

/* After every entry of p in policy order (a new object is the last loaded). */
static size_t plan_next_order(const struct plan *p)
{
	size_t order = 0;

	for (size_t i = 0; i < p->n_svcs; i++)
		if (p->svcs[i].order >= order)
			order = p->svcs[i].order + 1;
	return order;
}

/* The new entries of the targets' ports that p does not have yet, sorted. */
static int plan_patch_new(struct plan_ctx *c, const struct plan *p, const struct plan_target *t,
			  size_t n, struct plan_service **out, size_t *n_out)
{
	size_t cap = 0, order = 0;
	int err = 0;

	*out = NULL;
	*n_out = 0;
	for (size_t k = 0; k < n && !err; k++) {
		const struct pol_service *svc = t[k].svc;

		for (size_t o = 0; svc && o < k; o++)
			if (t[o].svc == svc)
				svc = NULL;	/* named twice */
		for (size_t j = 0; svc && j < svc->n_ports && !err; j++) {
			const struct pol_svc_port *sp = plan_target_port(svc, svc->ports[j].port);
			struct sm_svc_key key = { .vip = svc->cluster_ip, .port = htons(sp ? sp->port : 0),
						  .proto = SM_IPPROTO_TCP };
			size_t at = sp == &svc->ports[j] ? plan_find_key(p, &key) : 0;
			struct plan_service *ps;

			if (sp != &svc->ports[j])
				continue;	/* not TCP, or a port number twice */
			if (at < p->n_svcs) {
				if (strcmp(p->svcs[at].ns, svc->meta.ns) ||
				    strcmp(p->svcs[at].name, svc->meta.name))
					err = -ESTALE;	/* another Service's VIP:port */
				continue;	/* rebuilt in place */
			}
			err = sm_grow((void **)out, &cap, *n_out + 1, sizeof(**out));
			if (err)
				break;
			if (!*n_out)
				order = plan_next_order(p);
			ps = &(*out)[*n_out];
			err = plan_svc_build(c, svc, sp, ps);
			ps->order = order++;
			if (err || !ps->fqdn)
				plan_service_free(ps);	/* skipped with a warning */
			else
				(*n_out)++;
		}
	}
	if (!err && *n_out)
		qsort(*out, *n_out, sizeof(**out), plan_svc_cmp);
	for (size_t i = 1; !err && i < *n_out; i++)
		if (!memcmp(&(*out)[i - 1].key, &(*out)[i].key, sizeof((*out)[i].key)))
			err = -ESTALE;	/* two new Services on one VIP:port */
	if (err) {
		for (size_t i = 0; i < *n_out; i++)
			plan_service_free(&(*out)[i]);
		free(*out);
		*out = NULL;
		*n_out = 0;
	}
	return err;
}

static int plan_patch_note(struct plan_patch *pt, size_t *cap_old, const struct plan_service *old,
			   size_t at)
{
	int err = 0;

	if (old) {
		err = sm_grow((void **)&pt->old, cap_old, pt->n_old + 1, sizeof(*pt->old));
		if (!err)
			pt->old[pt->n_old++] = *old;
	}
	if (!err && at != SIZE_MAX) {
		size_t *idx = realloc(pt->idx, (pt->n + 1) * sizeof(*idx));

		if (!idx)
			return -ENOMEM;
		pt->idx = idx;
		pt->idx[pt->n++] = at;
	}
	return err;
}

/*
 * Entries come or go: p gets a new array, merged in key order from the
 * entries kept (act[i]), rebuilt and new; the old array stays in pt->prev
 * for the undo.
 */
static int plan_patch_merge(struct plan_ctx *c, struct plan *p, const uint8_t *act,
			    struct plan_service *nu, size_t n_nu, struct plan_patch *pt)
{
	size_t n_rm = 0, n = 0, j = 0, cap_old = 0;
	struct plan_service *out;
	int err = 0;

	for (size_t i = 0; i < p->n_svcs; i++)
		n_rm += act[i] == PLAN_REMOVE;
	out = calloc(p->n_svcs - n_rm + n_nu + 1, sizeof(*out));
	pt->gone = calloc(n_rm + 1, sizeof(*pt->gone));
	if (!out || !pt->gone) {
		free(out);
		for (size_t k = 0; k < n_nu; k++)
			plan_service_free(&nu[k]);
		return -ENOMEM;
	}
	pt->prev = p->svcs;
	pt->n_prev = p->n_svcs;
	pt->cap_prev = p->cap_svcs;
	for (size_t i = 0; i <= p->n_svcs && !err; i++) {
		struct plan_service *ps = i < p->n_svcs ? &p->svcs[i] : NULL;

		/* the new entries that sort before this one */
		for (; j < n_nu && (!ps || plan_svc_cmp(&nu[j], ps) < 0) && !err; j++) {
			out[n] = nu[j];
			memset(&nu[j], 0, sizeof(nu[j]));
			err = plan_patch_note(pt, &cap_old, NULL, n++);
		}
		if (!ps || err)
			break;
		if (act[i] == PLAN_REMOVE) {
			err = plan_patch_note(pt, &cap_old, ps, SIZE_MAX);
			pt->gone[pt->n_gone++] = ps->key;
			continue;
		}
		if (act[i] == PLAN_KEEP) {
			out[n++] = *ps;
			continue;
		}
		out[n] = *ps;	/* rebuilt over a copy: prev keeps the old one */
		err = plan_svc_rebuild(c, &out[n], &(struct plan_service){});
		if (err)
			break;
		err = plan_patch_note(pt, &cap_old, ps, n++);
	}
	p->svcs = out;
	p->n_svcs = n;
	p->cap_svcs = pt->n_prev - n_rm + n_nu + 1;
	/* a key that went and came back (another Service took the VIP) is not gone */
	for (size_t g = 0; g < pt->n_gone; g++)
		if (plan_find_key(p, &pt->gone[g]) < p->n_svcs)
			pt->gone[g--] = pt->gone[--pt->n_gone];
	for (size_t k = j; k < n_nu; k++)
		plan_service_free(&nu[k]);
	return err;
}

/*
 * Entries only come (none go): the new ones are inserted into p's array,
 * grown geometrically, instead of merging a copy of all of them (10k
 * entries: a fresh 2+ MB array faulted in and the old one unmapped, per
 * new Service). pt->idx ends with them (pt->n_added); the undo takes
 * them out again.
 */
static int plan_patch_insert(struct plan *p, struct plan_service *nu, size_t n_nu,
			     struct plan_patch *pt)
{
	size_t cap = p->cap_svcs > p->n_svcs ? p->cap_svcs : p->n_svcs;
	size_t *idx = realloc(pt->idx, (pt->n + n_nu) * sizeof(*idx));
	int err = idx ? 0 : -ENOMEM;

	if (idx)
		pt->idx = idx;
	err = err ?: sm_grow((void **)&p->svcs, &cap, p->n_svcs + n_nu, sizeof(*p->svcs));
	if (err) {
		for (size_t j = 0; j < n_nu; j++)
			plan_service_free(&nu[j]);
		return err;
	}
	p->cap_svcs = cap;
	for (size_t j = 0; j < n_nu; j++) {
		size_t at = plan_lower_bound(p, &nu[j]);

		memmove(&p->svcs[at + 1], &p->svcs[at], (p->n_svcs - at) * sizeof(*p->svcs));
		p->svcs[at] = nu[j];
		memset(&nu[j], 0, sizeof(nu[j]));
		p->n_svcs++;
		for (size_t k = 0; k < pt->n; k++)
			pt->idx[k] += pt->idx[k] >= at;
		pt->idx[pt->n++] = at;
		pt->n_added++;
	}
	return 0;
}

/*
 * The diagnostics move from the old entries to the new ones: what no
 * entry says any more goes from set->diags (pt->dgone). 0 or -ENOMEM
 * (nothing moved).
 */
static int plan_patch_count(struct plan *p, struct plan_patch *pt)
{
	size_t n_new = 0, n_old = 0, k;
	int err;

	for (k = 0; k < pt->n; k++)
		n_new += p->svcs[pt->idx[k]].n_diags;
	for (k = 0; k < pt->n_old; k++)
		n_old += pt->old[k].n_diags;
	/* room for the undo too: nothing it does allocates */
	err = sm_grow((void **)&p->dzero, &p->cap_dzero, p->n_dzero + n_new + n_old + 1,
		      sizeof(*p->dzero));
	if (!err && n_old && !(pt->dgone = malloc(n_old * sizeof(*pt->dgone))))
		err = -ENOMEM;
	for (k = 0; k < pt->n && !err; k++)
		err = plan_svc_ref(p, &p->svcs[pt->idx[k]]);
	if (err) {
		while (k-- > 1)
			plan_svc_unref(p, &p->svcs[pt->idx[k - 1]], NULL, NULL);
		return err;
	}
	for (k = 0; k < pt->n_old; k++)
		plan_svc_unref(p, &pt->old[k], pt->set, pt);
	pt->counted = true;
	return 0;
}

/* set->diags and the counts of diagnostics as before the patch. */
static void plan_patch_undo_diags(struct plan *p, struct plan_patch *pt)
{
	struct pol_set *set = pt->set;
	struct pol_diag *nd;

	if (pt->counted) {
		for (size_t k = 0; k < pt->n; k++)
			plan_svc_unref(p, &p->svcs[pt->idx[k]], NULL, NULL);
		for (size_t k = 0; k < pt->n_old; k++)
			for (size_t i = 0; i < pt->old[k].n_diags; i++) {
				struct plan_dref *r = plan_dref_find(p, &pt->old[k].diags[i]);

				if (r)
					r->refs++;
			}
		pt->counted = false;
	}
	for (size_t i = 0; set && i < pt->n_dadd; i++)
		plan_diag_take(set, &pt->dadd[i]);
	pt->n_dadd = 0;
	if (!set || !pt->n_dgone)
		return;
	/* (the set's array shrank by no realloc since: this one keeps its size) */
	nd = realloc(set->diags, (set->n_diags + pt->n_dgone) * sizeof(*nd));
	if (!nd)
		return;
	set->diags = nd;
	for (size_t i = 0; i < pt->n_dgone; i++) {
		set->diags[set->n_diags++] = pt->dgone[i];
		if (pt->dgone[i].level == POL_DIAG_ERROR)
			set->n_errors++;
		else if (pt->dgone[i].level == POL_DIAG_WARNING)
			set->n_warnings++;
	}
	pt->n_dgone = 0;
}

int plan_patch_services(struct pol_set *set, struct plan *p, const char *const *ns,
			const char *const *names, size_t n, struct plan_patch *out)
{
	struct plan_ctx c = plan_ctx_of(set);
	struct plan_target *t = calloc(n ? n : 1, sizeof(*t));
	uint8_t *act = calloc(p->n_svcs + 1, 1);
	struct plan_service *nu = NULL;
	size_t n_nu = 0, cap = 0;
	bool structural = false;
	int err = t && act ? policy_index_build(set) : -ENOMEM;

	memset(out, 0, sizeof(*out));
	out->set = set;
	c.pt = out;
	/* the nodes the last patch left for its undo: that chance is gone */
	if (!err)
		err = plan_dref_sweep(p);
	for (size_t k = 0; k < n && !err; k++) {
		t[k].ns = ns[k];
		t[k].name = names[k];
		t[k].name_hash = plan_name_hash(ns[k], names[k]);
		t[k].svc = policy_index_service(set, ns[k], strlen(ns[k]), names[k], strlen(names[k]));
		snprintf(t[k].fqdn, sizeof(t[k].fqdn), "%s.%s.svc.%s", names[k], ns[k], c.domain);
	}
	for (size_t i = 0; i < p->n_svcs && !err && n; i++) {
		act[i] = (uint8_t)plan_patch_act(&p->svcs[i], t, n);
		structural |= act[i] == PLAN_REMOVE;
	}
	if (!err)
		err = plan_patch_new(&c, p, t, n, &nu, &n_nu);
	if (!err && structural) {
		err = plan_patch_merge(&c, p, act, nu, n_nu, out);
		out->n_added = n_nu;
		goto done;
	}
	/* in place: the same entries, some rebuilt (then the new inserted) */
	for (size_t i = 0; i < p->n_svcs && !err; i++) {
		if (act[i] != PLAN_REBUILD)
			continue;
		err = sm_grow((void **)&out->old, &cap, out->n + 1, sizeof(*out->old));
		if (!err && !(out->idx = realloc(out->idx, (out->n + 1) * sizeof(*out->idx))))
			err = -ENOMEM;
		if (!err)
			err = plan_svc_rebuild(&c, &p->svcs[i], &out->old[out->n]);
		if (!err) {
			out->idx[out->n++] = i;
			out->n_old = out->n;
		}
	}
	if (n_nu) {
		if (!err)
			err = plan_patch_insert(p, nu, n_nu, out);
		else
			for (size_t j = 0; j < n_nu; j++)
				plan_service_free(&nu[j]);
	}
done:
	if (!err)
		err = plan_patch_count(p, out);
	free(t);
	free(act);
	free(nu);
	if (err)
		plan_patch_undo(p, out);
	return err;
}

void plan_patch_undo(struct plan *p, struct plan_patch *pt)
{
	plan_patch_undo_diags(p, pt);
	if (pt->prev) {
		/* the new array's own entries go; the old array comes back whole */
		for (size_t k = 0; k < pt->n; k++)
			plan_service_free(&p->svcs[pt->idx[k]]);
		free(p->svcs);
		p->svcs = pt->prev;
		p->n_svcs = pt->n_prev;
		p->cap_svcs = pt->cap_prev;
		pt->prev = NULL;
		pt->n_old = 0;	/* they are the old array's */
	} else {
		/* the inserted go (the last first), the rebuilt get theirs back */
		for (size_t k = pt->n; pt->n_added && k-- > pt->n - pt->n_added;) {
			size_t at = pt->idx[k];

			plan_service_free(&p->svcs[at]);
			memmove(&p->svcs[at], &p->svcs[at + 1],
				(p->n_svcs - at - 1) * sizeof(*p->svcs));
			memset(&p->svcs[--p->n_svcs], 0, sizeof(*p->svcs));
			for (size_t o = 0; o < k; o++)
				pt->idx[o] -= pt->idx[o] > at;
		}
		pt->n -= pt->n_added;
		pt->n_added = 0;
		for (size_t k = pt->n; k-- > 0;) {
			plan_service_free(&p->svcs[pt->idx[k]]);
			p->svcs[pt->idx[k]] = pt->old[k];
		}
		pt->n_old = 0;
	}
	pt->n = 0;
	plan_patch_free(pt);
}

void plan_patch_free(struct plan_patch *pt)
{
	for (size_t k = 0; k < pt->n_old; k++)
		plan_service_free(&pt->old[k]);
	free(pt->old);
	free(pt->idx);
	free(pt->gone);
	free(pt->prev);
	free(pt->dadd);
	free(pt->dgone);
	memset(pt, 0, sizeof(*pt));
}

/* ---- capacity check ---- */

static int plan_order_cmp(const void *a, const void *b)
{
	const struct plan_service *x = *(const struct plan_service *const *)a;
	const struct plan_service *y = *(const struct plan_service *const *)b;

	return x->order < y->order ? -1 : x->order > y->order;
}

static int plan_limit_error(struct pol_set *set, const struct pol_loc *loc,
			    const char *fmt, ...)
{
	va_list ap;
	int err;

	va_start(ap, fmt);
	err = policy_diag_vadd_unique(set, POL_DIAG_ERROR, loc, fmt, ap);
	va_end(ap);
	return err ? err : -E2BIG;
}

/* Running totals while walking the plan in policy order. */
struct plan_fill {
	struct u64map clusters, backends;	/* distinct ids seen */
	uint64_t n_clusters, n_backends, bset, route, maglev;
};

static int plan_fill_backends(struct pol_set *set, struct plan_fill *f,
			      const struct plan_cluster *cl, const struct sm_limits *lim)
{
	char ip[16];
	int err;

	for (size_t b = 0; b < cl->n_backends; b++) {
		const struct plan_backend *be = &cl->backends[b];
		uint64_t id = dp_meta_be_id(&be->key);

		if (!id || u64map_get(&f->backends, id))
			continue;
		err = u64map_put(&f->backends, id, (void *)be);
		if (err)
			return err;
		if (++f->n_backends <= lim->v[SM_LIMIT_BACKENDS])
			continue;
		inet_ntop(AF_INET, &be->key.addr, ip, sizeof(ip));
		return plan_limit_error(set, &be->loc,
					"backend #%llu (%s:%u) exceeds --max-backends=%u",
					(unsigned long long)f->n_backends, ip,
					ntohs(be->key.port), lim->v[SM_LIMIT_BACKENDS]);
	}
	return 0;
}

static int plan_fill_cluster(struct pol_set *set, struct plan_fill *f,
			     const struct plan_cluster *cl, const struct sm_limits *lim)
{
	uint32_t bset_cap = sm_limits_map_entries(lim, "sm_bset");
	int err;

	if (u64map_get(&f->clusters, cl->id))
		return 0;	/* shared by several service ports */
	err = u64map_put(&f->clusters, cl->id, (void *)cl);
	if (err)
		return err;
	if (++f->n_clusters > lim->v[SM_LIMIT_CLUSTERS])
		return plan_limit_error(set, &cl->loc,
					"cluster #%llu (%s) exceeds --max-clusters=%u",
					(unsigned long long)f->n_clusters, cl->name,
					lim->v[SM_LIMIT_CLUSTERS]);
	f->bset += cl->n_backends;
	if (f->bset > bset_cap)
		return plan_limit_error(set, &cl->loc,
					"cluster %s: its %zu backends bring the backend-list slots to %llu, over the %u sm_bset holds (%u x --max-backends=%u)",
					cl->name, cl->n_backends, (unsigned long long)f->bset,
					bset_cap, SM_BSET_PER_BACKEND, lim->v[SM_LIMIT_BACKENDS]);
	f->maglev += cl->maglev_size;
	if (f->maglev > lim->v[SM_LIMIT_MAGLEV_SLOTS])
		return plan_limit_error(set, &cl->loc,
					"cluster %s: its Maglev table (consistentHash.useSourceIp, %u slots) brings the Maglev slots to %llu, over --max-maglev-slots=%u",
					cl->name, cl->maglev_size, (unsigned long long)f->maglev,
					lim->v[SM_LIMIT_MAGLEV_SLOTS]);
	return plan_fill_backends(set, f, cl, lim);
}

int plan_check_limits(struct pol_set *set, const struct plan *p,
		      const struct sm_limits *lim)
{
	const struct plan_service **by_order;
	struct plan_fill f = {};
	int err = 0;

	if (!p->n_svcs)
		return 0;
	by_order = calloc(p->n_svcs, sizeof(*by_order));
	err = by_order ? u64map_init(&f.clusters, 64) : -ENOMEM;
	err = err ?: u64map_init(&f.backends, 64);
	if (err)
		goto out;
	for (size_t i = 0; i < p->n_svcs; i++)
		by_order[i] = &p->svcs[i];
	qsort(by_order, p->n_svcs, sizeof(*by_order), plan_order_cmp);
	for (size_t i = 0; !err && i < p->n_svcs; i++) {
		const struct plan_service *ps = by_order[i];

		if (i + 1 > lim->v[SM_LIMIT_SERVICES]) {
			err = plan_limit_error(set, &ps->loc,
					       "service port #%zu (%s/%s:%u) exceeds --max-services=%u",
					       i + 1, ps->ns, ps->name, ntohs(ps->key.port),
					       lim->v[SM_LIMIT_SERVICES]);
			break;
		}
		f.route += ps->n_slots > 1 ? ps->n_slots : 0;
		if (f.route > lim->v[SM_LIMIT_ROUTE_SLOTS]) {
			err = plan_limit_error(set, &ps->route_loc,
					       "the weighted route of %s/%s:%u (%zu slots) brings the route slots to %llu, over --max-route-slots=%u",
					       ps->ns, ps->name, ntohs(ps->key.port), ps->n_slots,
					       (unsigned long long)f.route,
					       lim->v[SM_LIMIT_ROUTE_SLOTS]);
			break;
		}
		for (size_t c = 0; !err && c < ps->n_clusters; c++)
			err = plan_fill_cluster(set, &f, &ps->clusters[c], lim);
	}
out:
	u64map_free(&f.clusters);
	u64map_free(&f.backends);
	free(by_order);
	return err;
}
