// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * policy_validate(): checks that need the whole set — duplicate objects,
 * duplicate VIP:port, hosts and subsets that do not resolve.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy_int.h"

#define FQDN_MAX 512

/* check_dups() walks every kind (pol_set_kinds) through its leading meta member. */
struct meta_ref {
	const struct pol_meta *m;
	size_t idx;
};

static int cmp_meta(const void *a, const void *b)
{
	const struct meta_ref *x = a, *y = b;
	int c = strcmp(x->m->ns, y->m->ns);

	if (!c)
		c = strcmp(x->m->name, y->m->name);
	if (!c)
		c = x->idx < y->idx ? -1 : x->idx > y->idx;
	return c;
}

/* Objects of one kind: base points at the first element's meta. */
static int check_dups(struct pol_set *set, const char *kind, const void *base,
		      size_t n, size_t stride)
{
	struct meta_ref *refs;

	if (n < 2)
		return 0;
	refs = calloc(n, sizeof(*refs));
	if (!refs)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		refs[i].m = (const void *)((const char *)base + i * stride);
		refs[i].idx = i;
	}
	qsort(refs, n, sizeof(*refs), cmp_meta);
	for (size_t i = 1; i < n; i++) {
		const struct pol_meta *a = refs[i - 1].m, *b = refs[i].m;

		if (strcmp(a->ns, b->ns) || strcmp(a->name, b->name))
			continue;
		pol_diag_add(set, POL_DIAG_ERROR, &b->loc,
			     "duplicate %s %s/%s (first defined at %s:%u)", kind,
			     b->ns, b->name, a->loc.file ? a->loc.file : "?",
			     a->loc.line);
	}
	free(refs);
	return 0;
}

struct vip_ref {
	uint32_t ip;		/* host order, for sorting */
	size_t svc;
};

static int cmp_vip(const void *a, const void *b)
{
	const struct vip_ref *x = a, *y = b;

	if (x->ip != y->ip)
		return x->ip < y->ip ? -1 : 1;
	return x->svc < y->svc ? -1 : x->svc > y->svc;
}

static bool same_object(const struct pol_meta *a, const struct pol_meta *b)
{
	return !strcmp(a->ns, b->ns) && !strcmp(a->name, b->name);
}

/* sb is on sa's clusterIP: an error at sb's. */
static void vip_taken(struct pol_set *set, const struct pol_service *sa,
		      const struct pol_service *sb)
{
	char ip[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &sb->cluster_ip, ip, sizeof(ip));
	pol_diag_add(set, POL_DIAG_ERROR, &sb->cluster_ip_loc,
		     "Service %s/%s: clusterIP %s is already the VIP of Service %s/%s (%s:%u); every Service needs its own",
		     sb->meta.ns, sb->meta.name, ip, sa->meta.ns, sa->meta.name,
		     sa->cluster_ip_loc.file ? sa->cluster_ip_loc.file : "?",
		     sa->cluster_ip_loc.line);
}

/*
 * Kubernetes gives every Service its own clusterIP (the allocator never
 * hands one out twice), whatever the ports: two Services on one VIP is a
 * file that did not come from a cluster. A duplicate object is reported
 * by check_dups() alone.
 */
static int check_vips(struct pol_set *set)
{
	struct vip_ref *refs;
	size_t n = 0;

	if (set->n_svcs < 2)
		return 0;
	refs = calloc(set->n_svcs, sizeof(*refs));
	if (!refs)
		return -ENOMEM;
	for (size_t i = 0; i < set->n_svcs; i++)
		if (set->svcs[i].cluster_ip)
			refs[n++] = (struct vip_ref){ .ip = ntohl(set->svcs[i].cluster_ip), .svc = i };
	qsort(refs, n, sizeof(*refs), cmp_vip);
	for (size_t i = 1; i < n; i++) {
		const struct pol_service *sa = &set->svcs[refs[i - 1].svc];
		const struct pol_service *sb = &set->svcs[refs[i].svc];

		if (refs[i - 1].ip != refs[i].ip || same_object(&sa->meta, &sb->meta))
			continue;
		vip_taken(set, sa, sb);
	}
	free(refs);
	return 0;
}

/*
 * Host key for matching DestinationRules and destinations: the FQDN when the
 * host names an in-cluster service, else the host as written.
 */
static void host_key(const struct pol_set *set, const char *host,
		     const char *ns, char *out)
{
	if (policy_host_fqdn(set, host, ns, out, FQDN_MAX))
		snprintf(out, FQDN_MAX, "%s", host ? host : "");
}

static bool subset_defined(const struct pol_set *set, const char *key,
			   const char *subset)
{
	char k[FQDN_MAX];

	for (size_t i = 0; i < set->n_drs; i++) {
		const struct pol_dr *dr = &set->drs[i];

		if (!dr->host)
			continue;
		host_key(set, dr->host, dr->meta.ns, k);
		if (strcmp(k, key) != 0)
			continue;
		for (size_t j = 0; j < dr->n_subsets; j++)
			if (dr->subsets[j].name &&
			    strcmp(dr->subsets[j].name, subset) == 0)
				return true;
	}
	return false;
}

static void check_drs(struct pol_set *set)
{
	char k[FQDN_MAX], k2[FQDN_MAX];

	for (size_t i = 0; i < set->n_drs; i++) {
		const struct pol_dr *dr = &set->drs[i];
		const struct pol_loc *loc = dr->host_loc.line ? &dr->host_loc :
								&dr->meta.loc;

		if (!dr->host)
			continue;
		if (policy_host_fqdn(set, dr->host, dr->meta.ns, k, sizeof(k))) {
			pol_diag_add(set, POL_DIAG_WARNING, loc,
				     "DestinationRule %s: host %s is not an in-cluster service name: not applied by sockmesh",
				     dr->meta.name, dr->host);
			continue;
		}
		if (!policy_find_service(set, dr->host, dr->meta.ns))
			pol_diag_add(set, POL_DIAG_WARNING, loc,
				     "DestinationRule %s: host %s matches no Service in the policy",
				     dr->meta.name, k);
		/* Istio applies one rule per host (the oldest); flag the rest. */
		for (size_t j = 0; j < i; j++) {
			const struct pol_dr *o = &set->drs[j];

			if (!o->host || same_object(&o->meta, &dr->meta))
				continue;	/* a duplicate: check_dups() said so */
			host_key(set, o->host, o->meta.ns, k2);
			if (strcmp(k, k2) == 0) {
				pol_diag_add(set, POL_DIAG_WARNING, loc,
					     "DestinationRule %s: host %s already has DestinationRule %s/%s; this one is ignored",
					     dr->meta.name, k, o->meta.ns, o->meta.name);
				break;
			}
		}
	}
}

static void check_subset(struct pol_set *set, const struct pol_vs *vs,
			 const struct pol_destination *d)
{
	char k[FQDN_MAX];

	if (!d->host || !d->subset)
		return;
	host_key(set, d->host, vs->meta.ns, k);
	if (!subset_defined(set, k, d->subset))
		pol_diag_add(set, POL_DIAG_ERROR, &d->loc,
			     "VirtualService %s: subset %s not defined in any DestinationRule for %s",
			     vs->meta.name, d->subset, k);
}

/*
 * A tcp route destination must name a Service (and a port and subset it
 * has): the kernel cannot do what Envoy does with a destination it cannot
 * resolve (refuse that share of connections), it could only drop it and
 * shift the weights. Istio's analyzer reports it too (IST0101). An http
 * destination that resolves to nothing is only a warning (from the L7
 * build): the proxy answers 503 "no healthy upstream" as Envoy does, and
 * Istio's own samples route to services installed later (cert-manager).
 */
static void check_dest(struct pol_set *set, const struct pol_vs *vs,
		       const struct pol_destination *d, bool tcp)
{
	const struct pol_service *svc;
	bool port_ok = false;

	if (!d->host || !d->host[0])
		return;		/* reported when parsed */
	if (!tcp) {
		check_subset(set, vs, d);
		return;
	}
	svc = policy_find_service(set, d->host, vs->meta.ns);
	if (!svc) {
		pol_diag_add(set, POL_DIAG_ERROR, &d->loc,
			     "VirtualService %s: tcp route destination %s is not a known Service",
			     vs->meta.name, d->host);
		return;
	}
	check_subset(set, vs, d);
	if (!d->port || !svc->n_ports)
		return;
	for (size_t i = 0; i < svc->n_ports; i++)
		port_ok |= svc->ports[i].port == d->port;
	if (!port_ok)
		pol_diag_add(set, POL_DIAG_ERROR, &d->loc,
			     "VirtualService %s: Service %s/%s has no port %u",
			     vs->meta.name, svc->meta.ns, svc->meta.name, d->port);
}

static void check_vss(struct pol_set *set)
{
	char k[FQDN_MAX], k2[FQDN_MAX];

	for (size_t i = 0; i < set->n_vss; i++) {
		const struct pol_vs *vs = &set->vss[i];

		for (size_t r = 0; r < vs->n_tcp; r++)
			for (size_t j = 0; j < vs->tcp[r].n_route; j++)
				check_dest(set, vs, &vs->tcp[r].route[j].dest, true);
		for (size_t j = 0; j < vs->n_http_dests; j++)
			check_dest(set, vs, &vs->http_dests[j], false);

		for (size_t h = 0; h < vs->n_hosts; h++) {
			if (policy_host_fqdn(set, vs->hosts[h], vs->meta.ns, k,
					     sizeof(k)))
				continue;
			if (vs->n_tcp && !policy_find_service(set, vs->hosts[h],
							      vs->meta.ns))
				pol_diag_add(set, POL_DIAG_WARNING, &vs->meta.loc,
					     "VirtualService %s: host %s is not a Service in the policy: its tcp routes have no VIP to apply to",
					     vs->meta.name, k);
			if (vs->n_gateways)
				continue;
			for (size_t o = 0; o < i; o++) {
				const struct pol_vs *ov = &set->vss[o];
				bool same = false;

				if (ov->n_gateways || same_object(&ov->meta, &vs->meta))
					continue;
				for (size_t oh = 0; oh < ov->n_hosts && !same; oh++) {
					if (policy_host_fqdn(set, ov->hosts[oh],
							     ov->meta.ns, k2,
							     sizeof(k2)))
						continue;
					same = strcmp(k, k2) == 0;
				}
				if (same) {
					pol_diag_add(set, POL_DIAG_WARNING,
						     &vs->meta.loc,
						     "VirtualService %s: host %s is also routed by VirtualService %s/%s; only the first is used",
						     vs->meta.name, k, ov->meta.ns,
						     ov->meta.name);
					break;
				}
			}
		}
	}
}

static void check_eps(struct pol_set *set)
{
	for (size_t i = 0; i < set->n_eps; i++) {
		const struct pol_eps *e = &set->eps[i];

		if (e->service_name &&
		    !policy_find_service(set, e->service_name, e->meta.ns))
			pol_diag_add(set, POL_DIAG_WARNING, &e->meta.loc,
				     "EndpointSlice %s: Service %s/%s is not in the policy",
				     e->meta.name, e->meta.ns, e->service_name);
	}
}

int policy_validate(struct pol_set *set)
{
	int ret;

	ret = policy_index_build(set);
	if (ret)
		return ret;
	for (size_t i = 0; i < pol_n_set_kinds; i++) {
		const struct pol_set_kind *k = &pol_set_kinds[i];
		const void *arr = *(void *const *)((char *)set + k->off_arr);
		size_t n = *(size_t *)((char *)set + k->off_n);

		ret = check_dups(set, k->kind, arr, n, k->stride);
		if (ret)
			return ret;
	}
	ret = check_vips(set);
	if (ret)
		return ret;
	check_drs(set);
	check_vss(set);
	check_eps(set);
	return set->n_errors ? -EINVAL : 0;
}

int policy_validate_routes(struct pol_set *set)
{
	int ret = policy_index_build(set);

	if (ret)
		return ret;
	check_drs(set);
	check_vss(set);
	return set->n_errors ? -EINVAL : 0;
}

/* check_vips for one Service: any other Service on its clusterIP is an error. */
static void check_vip_of(struct pol_set *set, const struct pol_service *sb)
{
	if (!sb->cluster_ip)
		return;
	for (size_t i = 0; i < set->n_svcs; i++) {
		const struct pol_service *sa = &set->svcs[i];

		if (sa->cluster_ip == sb->cluster_ip && !same_object(&sa->meta, &sb->meta)) {
			vip_taken(set, sa, sb);
			return;
		}
	}
}

int policy_validate_change(struct pol_set *set, const char *const *ns, const char *const *names,
			   size_t n, bool routes)
{
	int ret = policy_index_build(set);

	if (ret)
		return ret;
	for (size_t k = 0; k < n; k++) {
		const struct pol_service *svc = policy_index_service(set, ns[k], strlen(ns[k]),
								     names[k], strlen(names[k]));
		const struct pol_eps *const *eps;
		size_t n_eps;

		if (svc)
			check_vip_of(set, svc);
		/* check_eps for the slices of this name */
		eps = policy_index_slices(set, ns[k], names[k], &n_eps);
		for (size_t i = 0; !svc && i < n_eps; i++)
			pol_diag_add(set, POL_DIAG_WARNING, &eps[i]->meta.loc,
				     "EndpointSlice %s: Service %s/%s is not in the policy",
				     eps[i]->meta.name, eps[i]->meta.ns, eps[i]->service_name);
	}
	if (routes) {
		check_drs(set);
		check_vss(set);
	}
	return set->n_errors ? -EINVAL : 0;
}
