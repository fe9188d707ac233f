// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Kubernetes kinds: v1 Service, v1 Pod, v1 Namespace, discovery.k8s.io/v1
 * EndpointSlice.
 *
 * Strict only where sockmesh reads: Service spec.ports[], Pod
 * containers[].ports[], EndpointSlice endpoints[]/ports[]. Everything else
 * kubectl prints (managedFields, status, images, ...) is accepted silently.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy_int.h"

void pol_service_free(struct pol_service *s)
{
	pol_meta_free(&s->meta);
	pol_labels_free(&s->selector);
	for (size_t i = 0; i < s->n_ports; i++) {
		free(s->ports[i].name);
		free(s->ports[i].target_port_name);
		free(s->ports[i].app_protocol);
	}
	free(s->ports);
}

void pol_pod_free(struct pol_pod *p)
{
	pol_meta_free(&p->meta);
	free(p->uid);
	free(p->node_name);
	for (size_t i = 0; i < p->n_ports; i++)
		free(p->ports[i].name);
	free(p->ports);
}

void pol_eps_free(struct pol_eps *e)
{
	pol_meta_free(&e->meta);
	free(e->service_name);
	for (size_t i = 0; i < e->n_ports; i++)
		free(e->ports[i].name);
	free(e->ports);
	for (size_t i = 0; i < e->n_endpoints; i++) {
		free(e->endpoints[i].addrs);
		free(e->endpoints[i].target_pod);
	}
	free(e->endpoints);
}

static const char *scalar(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

/* ---- Service ---- */

/* core/v1 ServiceSpec: what it has today, and what sockmesh reads of it. */
static const char *const svc_spec_keys[] = {
	"clusterIP", "clusterIPs", "ports", "selector", "type", "sessionAffinity",
	"sessionAffinityConfig", "externalIPs", "externalName",
	"externalTrafficPolicy", "internalTrafficPolicy", "healthCheckNodePort",
	"ipFamilies", "ipFamilyPolicy", "loadBalancerIP", "loadBalancerSourceRanges",
	"loadBalancerClass", "allocateLoadBalancerNodePorts",
	"publishNotReadyAddresses", "topologyKeys", "trafficDistribution", NULL,
};
static const char *const svc_spec_read[] = {
	"clusterIP", "clusterIPs", "ports", "selector", "type", NULL,
};

static const char *const svc_port_keys[] = {
	"name", "port", "targetPort", "protocol", "appProtocol", "nodePort", NULL,
};

static void parse_svc_port(struct pol_walk *w, const yaml_node_t *n,
			   const char *path, struct pol_service *s)
{
	struct pol_svc_port *p;
	yaml_node_t *v;
	int64_t i64;

	if (!pol_want_map(w, n, path))
		return;
	pol_check_keys(w, n, path, svc_port_keys);
	p = pol_grow(w, &s->ports, &s->n_ports, sizeof(*p));
	if (!p)
		return;
	p->proto = IPPROTO_TCP;
	p->loc = pol_loc_of(w, n);
	pol_get_str(w, n, "name", path, &p->name);
	if (pol_get_int(w, n, "port", path, 1, 65535, &i64) == 1)
		p->port = i64;
	else if (!pol_get(w, n, "port"))
		pol_diag_missing(w, n, NULL, "%s: missing port", path);
	if ((v = pol_get(w, n, "targetPort"))) {
		char tp[POL_PATH_MAX];

		pol_pathf(tp, "%s.targetPort", path);
		/* IntOrString: a plain number is a port, anything else a name. */
		if (v->type == YAML_SCALAR_NODE &&
		    v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
		    strspn(scalar(v), "0123456789-+") == strlen(scalar(v))) {
			if (pol_val_int(w, v, tp, 1, 65535, &i64) == 0)
				p->target_port = i64;
		} else {
			pol_val_str(w, v, tp, &p->target_port_name);
		}
	}
	if ((v = pol_get(w, n, "protocol"))) {
		char pp[POL_PATH_MAX];

		pol_pathf(pp, "%s.protocol", path);
		pol_val_proto(w, v, pp, &p->proto);
	}
	pol_get_str(w, n, "appProtocol", path, &p->app_protocol);
	pol_get_int(w, n, "nodePort", path, 0, 65535, &i64);
	for (size_t i = 0; i + 1 < s->n_ports; i++) {
		if (p->port && s->ports[i].port == p->port &&
		    s->ports[i].proto == p->proto) {
			pol_diag_at(w, POL_DIAG_ERROR, n,
				    "%s: duplicate port %u in Service %s", path,
				    p->port, w->name);
			break;
		}
	}
}

void pol_parse_service(struct pol_walk *w, const yaml_node_t *root,
		       const yaml_node_t *kind_key)
{
	struct pol_service *s;
	yaml_node_t *spec, *v;
	char path[POL_PATH_MAX];
	char *type = NULL;

	s = pol_grow(w, &w->set->svcs, &w->set->n_svcs, sizeof(*s));
	if (!s)
		return;
	pol_parse_meta(w, root, kind_key, &s->meta);
	spec = pol_get(w, root, "spec");
	if (spec && !pol_want_map(w, spec, "Service.spec"))
		spec = NULL;
	pol_check_typos(w, spec, "Service.spec", svc_spec_keys, svc_spec_read);

	if ((v = pol_get(w, spec, "clusterIP"))) {
		if (pol_want_scalar(w, v, "Service.spec.clusterIP")) {
			if (strcmp(scalar(v), "None") == 0)
				s->headless = true;
			else if (strchr(scalar(v), ':'))
				pol_diag_at(w, POL_DIAG_NOTE, v,
					    "Service %s: IPv6 clusterIP %s not used by sockmesh",
					    w->name, scalar(v));
			else
				pol_val_ipv4(w, v, "Service.spec.clusterIP",
					     &s->cluster_ip);
		}
		s->cluster_ip_loc = pol_loc_of(w, v);
	}
	/* Dual-stack Services may list the IPv4 VIP second. */
	if ((v = pol_get(w, spec, "clusterIPs")) &&
	    pol_want_seq(w, v, "Service.spec.clusterIPs") && !s->cluster_ip &&
	    !s->headless) {
		for (size_t i = 0; i < pol_seq_len(v); i++) {
			yaml_node_t *ip = pol_seq_at(w, v, i);

			pol_pathf(path, "Service.spec.clusterIPs[%zu]", i);
			if (!pol_want_scalar(w, ip, path) || strchr(scalar(ip), ':'))
				continue;
			if (strcmp(scalar(ip), "None") == 0) {
				s->headless = true;
				break;
			}
			if (pol_val_ipv4(w, ip, path, &s->cluster_ip) == 0) {
				s->cluster_ip_loc = pol_loc_of(w, ip);
				break;
			}
		}
	}
	if ((v = pol_get(w, spec, "selector"))) {
		pol_val_labels(w, v, "Service.spec.selector", &s->selector);
		s->has_selector = s->selector.n > 0;
	}
	pol_get_str(w, spec, "type", "Service.spec", &type);
	if ((v = pol_get(w, spec, "ports")) &&
	    pol_want_seq(w, v, "Service.spec.ports")) {
		for (size_t i = 0; i < pol_seq_len(v); i++) {
			pol_pathf(path, "Service.spec.ports[%zu]", i);
			parse_svc_port(w, pol_seq_at(w, v, i), path, s);
		}
	}
	/* (a clusterIP that is there but unusable has its own diagnostic) */
	if (!s->cluster_ip && !s->headless && !pol_get(w, spec, "clusterIP") &&
	    !pol_get(w, spec, "clusterIPs")) {
		if (type && strcmp(type, "ExternalName") == 0)
			pol_diag_at(w, POL_DIAG_WARNING, kind_key,
				    "Service %s is type ExternalName: not handled by sockmesh",
				    w->name);
		else
			pol_diag_at(w, POL_DIAG_WARNING, kind_key,
				    "Service %s has no clusterIP: not reachable through a VIP",
				    w->name);
	}
	free(type);
}

/* ---- Pod ---- */

static const char *const container_port_keys[] = {
	"name", "containerPort", "protocol", "hostPort", "hostIP", NULL,
};

static void parse_container_ports(struct pol_walk *w, const yaml_node_t *n,
				  const char *cpath, struct pol_pod *pod)
{
	char path[POL_PATH_MAX];
	int64_t i64;

	if (!pol_want_seq(w, n, cpath))
		return;
	for (size_t i = 0; i < pol_seq_len(n); i++) {
		yaml_node_t *it = pol_seq_at(w, n, i), *v;
		struct pol_container_port *p;

		pol_pathf(path, "%s[%zu]", cpath, i);
		if (!pol_want_map(w, it, path))
			continue;
		pol_check_keys(w, it, path, container_port_keys);
		p = pol_grow(w, &pod->ports, &pod->n_ports, sizeof(*p));
		if (!p)
			return;
		p->proto = IPPROTO_TCP;
		pol_get_str(w, it, "name", path, &p->name);
		if (pol_get_int(w, it, "containerPort", path, 1, 65535, &i64) == 1)
			p->port = i64;
		else if (!pol_get(w, it, "containerPort"))
			pol_diag_missing(w, it, NULL, "%s: missing containerPort", path);
		if ((v = pol_get(w, it, "protocol"))) {
			char pp[POL_PATH_MAX];

			pol_pathf(pp, "%s.protocol", path);
			pol_val_proto(w, v, pp, &p->proto);
		}
		pol_get_int(w, it, "hostPort", path, 0, 65535, &i64);
		pol_get_scalar(w, it, "hostIP", path);
	}
}

/* status is informational (written by the kubelet): read leniently. */
static void parse_pod_status(struct pol_walk *w, const yaml_node_t *st,
			     struct pol_pod *pod)
{
	yaml_node_t *v, *conds, *phase;

	if (!st || st->type != YAML_MAPPING_NODE)
		return;
	if ((v = pol_get(w, st, "podIP")) && v->type == YAML_SCALAR_NODE) {
		if (strchr(scalar(v), ':'))
			pol_diag_at(w, POL_DIAG_NOTE, v,
				    "Pod %s: IPv6 podIP %s not used by sockmesh",
				    w->name, scalar(v));
		else
			pol_val_ipv4(w, v, "Pod.status.podIP", &pod->ip);
	}
	phase = pol_get(w, st, "phase");
	if (phase && phase->type == YAML_SCALAR_NODE &&
	    (strcmp(scalar(phase), "Succeeded") == 0 ||
	     strcmp(scalar(phase), "Failed") == 0)) {
		pod->ready = false;
		pod->finished = true;
	}
	conds = pol_get(w, st, "conditions");
	for (size_t i = 0; i < pol_seq_len(conds); i++) {
		yaml_node_t *c = pol_seq_at(w, conds, i);
		yaml_node_t *t = pol_get(w, c, "type"), *s = pol_get(w, c, "status");

		if (t && t->type == YAML_SCALAR_NODE &&
		    strcmp(scalar(t), "Ready") == 0)
			pod->ready = s && s->type == YAML_SCALAR_NODE &&
				     strcmp(scalar(s), "True") == 0;
	}
}

void pol_parse_pod(struct pol_walk *w, const yaml_node_t *root,
		   const yaml_node_t *kind_key)
{
	struct pol_pod *pod;
	yaml_node_t *spec, *cs, *md;
	char path[POL_PATH_MAX];

	pod = pol_grow(w, &w->set->pods, &w->set->n_pods, sizeof(*pod));
	if (!pod)
		return;
	pod->ready = true;
	pol_parse_meta(w, root, kind_key, &pod->meta);
	md = pol_get(w, root, "metadata");
	if (md && md->type == YAML_MAPPING_NODE)
		pol_get_str(w, md, "uid", "Pod.metadata", &pod->uid);
	spec = pol_get(w, root, "spec");
	if (spec && pol_want_map(w, spec, "Pod.spec")) {
		pol_get_bool(w, spec, "hostNetwork", "Pod.spec",
			     &pod->host_network);
		pol_get_str(w, spec, "nodeName", "Pod.spec", &pod->node_name);
		cs = pol_get(w, spec, "containers");
		if (cs && pol_want_seq(w, cs, "Pod.spec.containers")) {
			for (size_t i = 0; i < pol_seq_len(cs); i++) {
				yaml_node_t *c = pol_seq_at(w, cs, i), *ports;

				pol_pathf(path,
					 "Pod.spec.containers[%zu]", i);
				if (!pol_want_map(w, c, path))
					continue;
				ports = pol_get(w, c, "ports");
				if (!ports)
					continue;
				pol_pathf(path,
					 "Pod.spec.containers[%zu].ports", i);
				parse_container_ports(w, ports, path, pod);
			}
		}
	}
	parse_pod_status(w, pol_get(w, root, "status"), pod);
}

/* ---- Namespace: only its labels are read (mesh membership) ---- */

void pol_parse_namespace(struct pol_walk *w, const yaml_node_t *root,
			 const yaml_node_t *kind_key)
{
	struct pol_namespace *ns;

	ns = pol_grow(w, &w->set->nss, &w->set->n_nss, sizeof(*ns));
	if (ns)
		pol_parse_meta(w, root, kind_key, &ns->meta);
}

/* ---- EndpointSlice ---- */

static const char *const endpoint_keys[] = {
	"addresses", "conditions", "hostname", "targetRef", "nodeName", "zone",
	"hints", "deprecatedTopology", NULL,
};
static const char *const endpoint_cond_keys[] = {
	"ready", "serving", "terminating", NULL,
};
static const char *const eps_port_keys[] = {
	"name", "port", "protocol", "appProtocol", NULL,
};

static void parse_endpoint(struct pol_walk *w, const yaml_node_t *n,
			   const char *path, struct pol_eps *e)
{
	struct pol_endpoint *ep;
	yaml_node_t *v, *ref;
	char p[POL_PATH_MAX];
	bool b;

	if (!pol_want_map(w, n, path))
		return;
	pol_check_keys(w, n, path, endpoint_keys);
	ep = pol_grow(w, &e->endpoints, &e->n_endpoints, sizeof(*ep));
	if (!ep)
		return;
	ep->ready = true;
	ep->loc = pol_loc_of(w, n);
	pol_pathf(p, "%s.addresses", path);
	if ((v = pol_get(w, n, "addresses")) && pol_want_seq(w, v, p)) {
		for (size_t i = 0; i < pol_seq_len(v); i++) {
			uint32_t *a;

			pol_pathf(p, "%s.addresses[%zu]", path, i);
			a = pol_grow(w, &ep->addrs, &ep->n_addrs, sizeof(*a));
			if (!a)
				return;
			if (pol_val_ipv4(w, pol_seq_at(w, v, i), p, a))
				ep->n_addrs--;
		}
	}
	pol_pathf(p, "%s.conditions", path);
	if ((v = pol_get(w, n, "conditions")) && pol_want_map(w, v, p)) {
		pol_check_keys(w, v, p, endpoint_cond_keys);
		if (pol_get_bool(w, v, "ready", p, &b) == 1)
			ep->ready = b;
		pol_get_bool(w, v, "serving", p, &b);
		pol_get_bool(w, v, "terminating", p, &b);
	}
	pol_get_scalar(w, n, "nodeName", path);
	pol_pathf(p, "%s.targetRef", path);
	if ((ref = pol_get(w, n, "targetRef")) && pol_want_map(w, ref, p)) {
		yaml_node_t *k = pol_get(w, ref, "kind");

		if (k && k->type == YAML_SCALAR_NODE &&
		    strcmp(scalar(k), "Pod") == 0)
			pol_get_str(w, ref, "name", p, &ep->target_pod);
	}
}

void pol_parse_eps(struct pol_walk *w, const yaml_node_t *root,
		   const yaml_node_t *kind_key)
{
	struct pol_eps *e;
	yaml_node_t *at, *v;
	char path[POL_PATH_MAX];
	const char *sn;
	int64_t i64;

	e = pol_grow(w, &w->set->eps, &w->set->n_eps, sizeof(*e));
	if (!e)
		return;
	pol_parse_meta(w, root, kind_key, &e->meta);
	sn = policy_label_get(&e->meta.labels, "kubernetes.io/service-name");
	if (sn)
		e->service_name = pol_strdup(w, sn);
	else
		pol_diag_at(w, POL_DIAG_WARNING, kind_key,
			    "EndpointSlice %s has no kubernetes.io/service-name label: not used",
			    w->name);

	at = pol_get(w, root, "addressType");
	if (!at) {
		pol_diag_missing(w, root, kind_key, "EndpointSlice %s: missing addressType",
				 w->name);
		return;
	}
	if (!pol_want_scalar(w, at, "EndpointSlice.addressType"))
		return;
	if (strcmp(scalar(at), "IPv4") != 0) {
		pol_diag_at(w, POL_DIAG_NOTE, at,
			    "EndpointSlice %s: addressType %s not used by sockmesh (IPv4 only)",
			    w->name, scalar(at));
		return;
	}
	if ((v = pol_get(w, root, "endpoints")) &&
	    pol_want_seq(w, v, "EndpointSlice.endpoints")) {
		for (size_t i = 0; i < pol_seq_len(v); i++) {
			pol_pathf(path, "EndpointSlice.endpoints[%zu]", i);
			parse_endpoint(w, pol_seq_at(w, v, i), path, e);
		}
	}
	if ((v = pol_get(w, root, "ports")) &&
	    pol_want_seq(w, v, "EndpointSlice.ports")) {
		for (size_t i = 0; i < pol_seq_len(v); i++) {
			yaml_node_t *it = pol_seq_at(w, v, i), *pr;
			struct pol_eps_port *p;

			pol_pathf(path, "EndpointSlice.ports[%zu]", i);
			if (!pol_want_map(w, it, path))
				continue;
			pol_check_keys(w, it, path, eps_port_keys);
			p = pol_grow(w, &e->ports, &e->n_ports, sizeof(*p));
			if (!p)
				return;
			p->proto = IPPROTO_TCP;
			pol_get_str(w, it, "name", path, &p->name);
			if (p->name && !p->name[0]) {
				free(p->name);
				p->name = NULL;
			}
			if (pol_get_int(w, it, "port", path, 0, 65535, &i64) == 1)
				p->port = i64;
			if ((pr = pol_get(w, it, "protocol"))) {
				char pp[POL_PATH_MAX];

				pol_pathf(pp, "%s.protocol", path);
				pol_val_proto(w, pr, pp, &p->proto);
			}
			pol_get_scalar(w, it, "appProtocol", path);
		}
	}
}
