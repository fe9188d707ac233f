// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Mesh membership: which pods the agent attaches to, from the labels Istio
 * users already set (the rules and their order are in policy.h). Istio's
 * own logic this follows: the sidecar injector's injectRequired() (label
 * over annotation, exact "true"/"false", hostNetwork and system namespaces
 * never) and ambient's pod enrolment (namespace or pod
 * istio.io/dataplane-mode=ambient, pod "none" opts out).
 */
#include <string.h>

#include "policy/policy.h"

#define MESH_LABEL_SOCKMESH "sockmesh.io/mesh"
#define MESH_LABEL_INJECTION "istio-injection"
#define MESH_LABEL_REV "istio.io/rev"
#define MESH_LABEL_DATAPLANE "istio.io/dataplane-mode"
#define MESH_LABEL_INJECT "sidecar.istio.io/inject"	/* also an annotation */

/* Namespaces Istio's injector never touches (IgnoredNamespaces). */
static const char *const mesh_system_namespaces[] = {
	"kube-system", "kube-public", "kube-node-lease", "local-path-storage",
};

static bool mesh_is(const struct pol_labels *l, const char *key, const char *value)
{
	const char *v = l ? policy_label_get(l, key) : NULL;

	return v && strcmp(v, value) == 0;
}

const struct pol_namespace *policy_find_namespace(const struct pol_set *set,
						  const char *name)
{
	for (size_t i = 0; name && i < set->n_nss; i++)
		if (strcmp(set->nss[i].meta.name, name) == 0)
			return &set->nss[i];
	return NULL;
}

static bool mesh_decide(const struct pol_mesh_in *in, enum pol_mesh_why *why)
{
	const struct pol_labels *ns = in->ns_labels;
	const char *inject, *rev;

	if (in->host_network) {
		*why = POL_MESH_HOST_NETWORK;
		return false;
	}
	for (size_t i = 0; i < sizeof(mesh_system_namespaces) / sizeof(mesh_system_namespaces[0]); i++)
		if (in->ns && strcmp(in->ns, mesh_system_namespaces[i]) == 0) {
			*why = POL_MESH_SYSTEM_NAMESPACE;
			return false;
		}

	/* Istio: "the label is the new API; if both are present we prefer the label" */
	inject = in->labels ? policy_label_get(in->labels, MESH_LABEL_INJECT) : NULL;
	if (!inject && in->annotations)
		inject = policy_label_get(in->annotations, MESH_LABEL_INJECT);
	if (inject && strcmp(inject, "false") == 0) {
		*why = POL_MESH_OPT_OUT_INJECT;
		return false;
	}
	if (mesh_is(in->labels, MESH_LABEL_DATAPLANE, "none")) {
		*why = POL_MESH_OPT_OUT_AMBIENT;
		return false;
	}

	if (mesh_is(ns, MESH_LABEL_SOCKMESH, "enabled")) {
		*why = POL_MESH_NS_SOCKMESH;
		return true;
	}
	if (mesh_is(ns, MESH_LABEL_INJECTION, "enabled")) {
		*why = POL_MESH_NS_INJECTION;
		return true;
	}
	if (mesh_is(ns, MESH_LABEL_DATAPLANE, "ambient")) {
		*why = POL_MESH_NS_AMBIENT;
		return true;
	}
	rev = ns ? policy_label_get(ns, MESH_LABEL_REV) : NULL;
	if (rev && rev[0] && !policy_label_get(ns, MESH_LABEL_INJECTION)) {
		*why = POL_MESH_NS_REVISION;
		return true;
	}

	if (mesh_is(in->labels, MESH_LABEL_DATAPLANE, "ambient")) {
		*why = POL_MESH_POD_AMBIENT;
		return true;
	}
	if (mesh_is(ns, MESH_LABEL_INJECTION, "disabled")) {
		*why = POL_MESH_NS_DISABLED;
		return false;
	}
	if (mesh_is(in->labels, MESH_LABEL_INJECT, "true")) {
		*why = POL_MESH_POD_INJECT;
		return true;
	}
	*why = ns ? POL_MESH_NS_UNLABELLED : POL_MESH_NS_MISSING;
	return false;
}

bool policy_mesh_member(const struct pol_mesh_in *in, enum pol_mesh_why *why)
{
	enum pol_mesh_why w;
	bool member = mesh_decide(in, &w);

	if (why)
		*why = w;
	return member;
}

bool policy_pod_in_mesh(const struct pol_set *set, const struct pol_pod *pod,
			enum pol_mesh_why *why)
{
	const struct pol_namespace *ns = policy_find_namespace(set, pod->meta.ns);
	struct pol_mesh_in in = {
		.ns = pod->meta.ns,
		.ns_labels = ns ? &ns->meta.labels : NULL,
		.labels = &pod->meta.labels,
		.annotations = &pod->meta.annotations,
		.host_network = pod->host_network,
	};

	return policy_mesh_member(&in, why);
}

const char *policy_mesh_why_str(enum pol_mesh_why why)
{
	static const char *const s[] = {
		[POL_MESH_NS_SOCKMESH] = "namespace label " MESH_LABEL_SOCKMESH "=enabled",
		[POL_MESH_NS_INJECTION] = "namespace label " MESH_LABEL_INJECTION "=enabled",
		[POL_MESH_NS_AMBIENT] = "namespace label " MESH_LABEL_DATAPLANE "=ambient",
		[POL_MESH_NS_REVISION] = "namespace label " MESH_LABEL_REV,
		[POL_MESH_POD_AMBIENT] = "pod label " MESH_LABEL_DATAPLANE "=ambient",
		[POL_MESH_POD_INJECT] = "pod label " MESH_LABEL_INJECT "=true",
		[POL_MESH_HOST_NETWORK] = "hostNetwork pod",
		[POL_MESH_SYSTEM_NAMESPACE] = "system namespace (never in the mesh)",
		[POL_MESH_OPT_OUT_INJECT] = "pod opted out (" MESH_LABEL_INJECT "=false)",
		[POL_MESH_OPT_OUT_AMBIENT] = "pod opted out (" MESH_LABEL_DATAPLANE "=none)",
		[POL_MESH_NS_DISABLED] = "namespace label " MESH_LABEL_INJECTION "=disabled",
		[POL_MESH_NS_UNLABELLED] = "namespace not in the mesh (no mesh label)",
		[POL_MESH_NS_MISSING] = "namespace not in the policy",
	};

	return (unsigned)why < sizeof(s) / sizeof(s[0]) && s[why] ? s[why] : "?";
}
