// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Mesh membership (policy_mesh_member, the rules in policy.h) and where a
 * pod's cgroup is (kubepods.h): table-driven, plus the Namespace kind and
 * the Pod fields membership reads (uid, nodeName, hostNetwork, phase).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/kubepods.h"
#include "policy/policy.h"
#include "test.h"

/* "k=v,k2=v2" -> labels (static storage: up to 4 pairs per set). */
struct kv_buf {
	struct pol_kv kv[4];
	char text[256];
	struct pol_labels l;
};

static const struct pol_labels *kv(struct kv_buf *b, const char *spec)
{
	char *save = NULL, *tok;

	if (!spec)
		return NULL;
	memset(b, 0, sizeof(*b));
	snprintf(b->text, sizeof(b->text), "%s", spec);
	b->l.v = b->kv;
	for (tok = strtok_r(b->text, ",", &save); tok && b->l.n < 4; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');

		if (!eq)
			continue;
		*eq = '\0';
		b->kv[b->l.n].key = tok;
		b->kv[b->l.n].value = eq + 1;
		b->l.n++;
	}
	return &b->l;
}

TEST(mesh_membership_rules)
{
	static const struct {
		const char *desc;
		const char *ns;		/* namespace name */
		const char *ns_labels;	/* NULL: Namespace not in the policy */
		const char *labels, *annotations;
		bool host_network;
		bool member;
		enum pol_mesh_why why;
	} t[] = {
		/* each namespace label */
		{ "istio-injection=enabled", "shop", "istio-injection=enabled", "", "", false,
		  true, POL_MESH_NS_INJECTION },
		{ "ambient namespace", "shop", "istio.io/dataplane-mode=ambient", "", "", false,
		  true, POL_MESH_NS_AMBIENT },
		{ "sockmesh.io/mesh=enabled", "shop", "sockmesh.io/mesh=enabled", "", "", false,
		  true, POL_MESH_NS_SOCKMESH },
		{ "revision label", "shop", "istio.io/rev=1-24", "", "", false,
		  true, POL_MESH_NS_REVISION },
		/* values compare exactly */
		{ "istio-injection=true is not enabled", "shop", "istio-injection=true", "", "", false,
		  false, POL_MESH_NS_UNLABELLED },
		{ "sockmesh.io/mesh=yes is not enabled", "shop", "sockmesh.io/mesh=yes", "", "", false,
		  false, POL_MESH_NS_UNLABELLED },
		{ "dataplane-mode=sidecar ns is not ambient", "shop", "istio.io/dataplane-mode=sidecar", "", "",
		  false, false, POL_MESH_NS_UNLABELLED },
		/* namespace without labels, or missing */
		{ "namespace without labels", "shop", "", "", "", false, false, POL_MESH_NS_UNLABELLED },
		{ "other labels only", "shop", "team=a,kubernetes.io/metadata.name=shop", "app=web", "", false,
		  false, POL_MESH_NS_UNLABELLED },
		{ "Namespace not in the policy", "shop", NULL, "", "", false, false, POL_MESH_NS_MISSING },
		/* opt-outs */
		{ "inject=false label", "shop", "istio-injection=enabled", "sidecar.istio.io/inject=false", "",
		  false, false, POL_MESH_OPT_OUT_INJECT },
		{ "inject=false annotation", "shop", "istio-injection=enabled", "",
		  "sidecar.istio.io/inject=false", false, false, POL_MESH_OPT_OUT_INJECT },
		{ "dataplane-mode=none", "shop", "istio.io/dataplane-mode=ambient",
		  "istio.io/dataplane-mode=none", "", false, false, POL_MESH_OPT_OUT_AMBIENT },
		{ "opt-out in a sockmesh namespace", "shop", "sockmesh.io/mesh=enabled",
		  "sidecar.istio.io/inject=false", "", false, false, POL_MESH_OPT_OUT_INJECT },
		{ "any opt-out wins: none in an injection namespace", "shop", "istio-injection=enabled",
		  "istio.io/dataplane-mode=none", "", false, false, POL_MESH_OPT_OUT_AMBIENT },
		{ "any opt-out wins: inject=false in an ambient namespace", "shop",
		  "istio.io/dataplane-mode=ambient", "", "sidecar.istio.io/inject=false", false,
		  false, POL_MESH_OPT_OUT_INJECT },
		/* Istio prefers the label over the annotation */
		{ "label true beats annotation false", "shop", "istio-injection=enabled",
		  "sidecar.istio.io/inject=true", "sidecar.istio.io/inject=false", false,
		  true, POL_MESH_NS_INJECTION },
		{ "label false beats annotation true", "shop", "istio-injection=enabled",
		  "sidecar.istio.io/inject=false", "sidecar.istio.io/inject=true", false,
		  false, POL_MESH_OPT_OUT_INJECT },
		{ "inject=False is not an opt-out", "shop", "istio-injection=enabled",
		  "sidecar.istio.io/inject=False", "", false, true, POL_MESH_NS_INJECTION },
		/* hostNetwork: never */
		{ "hostNetwork in a mesh namespace", "shop", "istio-injection=enabled", "", "", true,
		  false, POL_MESH_HOST_NETWORK },
		{ "hostNetwork with a pod opt-in", "shop", "", "sidecar.istio.io/inject=true", "", true,
		  false, POL_MESH_HOST_NETWORK },
		/* Istio's ignored namespaces */
		{ "kube-system labelled", "kube-system", "istio-injection=enabled", "", "", false,
		  false, POL_MESH_SYSTEM_NAMESPACE },
		{ "kube-public labelled", "kube-public", "sockmesh.io/mesh=enabled", "", "", false,
		  false, POL_MESH_SYSTEM_NAMESPACE },
		/* istio-injection wins over istio.io/rev */
		{ "rev with istio-injection=disabled", "shop", "istio.io/rev=canary,istio-injection=disabled",
		  "", "", false, false, POL_MESH_NS_DISABLED },
		{ "rev with istio-injection=enabled", "shop", "istio.io/rev=canary,istio-injection=enabled",
		  "", "", false, true, POL_MESH_NS_INJECTION },
		/* per-pod enrolment */
		{ "pod label inject=true, unlabelled namespace", "shop", "", "sidecar.istio.io/inject=true", "",
		  false, true, POL_MESH_POD_INJECT },
		{ "pod annotation inject=true does not opt in", "shop", "", "", "sidecar.istio.io/inject=true",
		  false, false, POL_MESH_NS_UNLABELLED },
		{ "pod inject=true, namespace istio-injection=disabled", "shop", "istio-injection=disabled",
		  "sidecar.istio.io/inject=true", "", false, false, POL_MESH_NS_DISABLED },
		{ "pod ambient label, unlabelled namespace", "shop", "", "istio.io/dataplane-mode=ambient", "",
		  false, true, POL_MESH_POD_AMBIENT },
		{ "pod ambient label beats istio-injection=disabled", "shop", "istio-injection=disabled",
		  "istio.io/dataplane-mode=ambient", "", false, true, POL_MESH_POD_AMBIENT },
		{ "istio-injection=disabled alone", "shop", "istio-injection=disabled", "", "", false,
		  false, POL_MESH_NS_DISABLED },
		/* independent opt-ins on one namespace */
		{ "disabled injection, ambient namespace", "shop",
		  "istio-injection=disabled,istio.io/dataplane-mode=ambient", "", "", false,
		  true, POL_MESH_NS_AMBIENT },
		{ "disabled injection, sockmesh label", "shop",
		  "istio-injection=disabled,sockmesh.io/mesh=enabled", "", "", false,
		  true, POL_MESH_NS_SOCKMESH },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct kv_buf nb, lb, ab;
		struct pol_mesh_in in = {
			.ns = t[i].ns,
			.ns_labels = kv(&nb, t[i].ns_labels),
			.labels = kv(&lb, t[i].labels),
			.annotations = kv(&ab, t[i].annotations),
			.host_network = t[i].host_network,
		};
		enum pol_mesh_why why = -1;
		bool got = policy_mesh_member(&in, &why);

		if (got != t[i].member || why != t[i].why)
			TEST_FAIL_("%s: expected member=%d (%s), got member=%d (%s)", t[i].desc,
				   t[i].member, policy_mesh_why_str(t[i].why), got,
				   policy_mesh_why_str(why));
		if (strcmp(policy_mesh_why_str(why), "?") == 0)
			TEST_FAIL_("%s: no text for reason %d", t[i].desc, why);
	}
	ASSERT_FALSE(policy_mesh_member(&(struct pol_mesh_in){ .ns = "x" }, NULL));
}

TEST(mesh_policy_namespace_and_pod_fields)
{
	static const char y[] =
		"apiVersion: v1\n"
		"kind: List\n"
		"items:\n"
		"- apiVersion: v1\n"
		"  kind: Namespace\n"
		"  metadata:\n"
		"    name: shop\n"
		"    uid: 5b0d3c8e-6f6c-4d53-9a0e-1f7cbd0e4a11\n"
		"    labels: {istio-injection: enabled}\n"
		"  spec: {finalizers: [kubernetes]}\n"
		"  status: {phase: Active}\n"
		"- apiVersion: v1\n"
		"  kind: Namespace\n"
		"  metadata: {name: plain}\n"
		"- apiVersion: v1\n"
		"  kind: Pod\n"
		"  metadata:\n"
		"    name: web-1\n"
		"    namespace: shop\n"
		"    uid: 0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d\n"
		"  spec: {nodeName: node-a, containers: []}\n"
		"  status: {phase: Running, podIP: 10.1.0.5}\n"
		"- apiVersion: v1\n"
		"  kind: Pod\n"
		"  metadata:\n"
		"    name: job-1\n"
		"    namespace: shop\n"
		"    annotations: {sidecar.istio.io/inject: \"false\"}\n"
		"  spec: {nodeName: node-b}\n"
		"  status: {phase: Succeeded}\n"
		"- apiVersion: v1\n"
		"  kind: Pod\n"
		"  metadata: {name: host, namespace: shop}\n"
		"  spec: {hostNetwork: true}\n"
		"- apiVersion: v1\n"
		"  kind: Pod\n"
		"  metadata: {name: p, namespace: plain}\n"
		"- apiVersion: v1\n"
		"  kind: Pod\n"
		"  metadata: {name: q, namespace: elsewhere}\n";
	struct pol_set s;
	enum pol_mesh_why why;

	policy_set_init(&s);
	ASSERT_EQ(policy_load_buffer(&s, "t.yaml", y, sizeof(y) - 1), 0);
	ASSERT_EQ(policy_validate(&s), 0);
	ASSERT_EQ(s.n_errors, 0);
	if (!ASSERT_EQ(s.n_nss, 2) || !ASSERT_EQ(s.n_pods, 5))
		goto out;
	ASSERT_STREQ(s.nss[0].meta.name, "shop");
	ASSERT_STREQ(policy_label_get(&s.nss[0].meta.labels, "istio-injection"), "enabled");
	ASSERT_TRUE(policy_find_namespace(&s, "plain") == &s.nss[1]);
	ASSERT_TRUE(policy_find_namespace(&s, "elsewhere") == NULL);

	ASSERT_STREQ(s.pods[0].uid, "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d");
	ASSERT_STREQ(s.pods[0].node_name, "node-a");
	ASSERT_FALSE(s.pods[0].finished);
	ASSERT_TRUE(policy_pod_in_mesh(&s, &s.pods[0], &why));
	ASSERT_EQ(why, POL_MESH_NS_INJECTION);

	ASSERT_TRUE(s.pods[1].uid == NULL);
	ASSERT_TRUE(s.pods[1].finished);
	ASSERT_FALSE(policy_pod_in_mesh(&s, &s.pods[1], &why));
	ASSERT_EQ(why, POL_MESH_OPT_OUT_INJECT);

	ASSERT_TRUE(s.pods[2].host_network);
	ASSERT_TRUE(s.pods[2].node_name == NULL);
	ASSERT_FALSE(policy_pod_in_mesh(&s, &s.pods[2], &why));
	ASSERT_EQ(why, POL_MESH_HOST_NETWORK);

	ASSERT_FALSE(policy_pod_in_mesh(&s, &s.pods[3], &why));
	ASSERT_EQ(why, POL_MESH_NS_UNLABELLED);
	ASSERT_FALSE(policy_pod_in_mesh(&s, &s.pods[4], &why));
	ASSERT_EQ(why, POL_MESH_NS_MISSING);
out:
	policy_set_free(&s);
}

TEST(mesh_namespace_duplicate)
{
	static const char y[] =
		"apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n"
		"apiVersion: v1\nkind: Namespace\nmetadata: {name: a, labels: {x: y}}\n";
	struct pol_set s;

	policy_set_init(&s);
	ASSERT_EQ(policy_load_buffer(&s, "t.yaml", y, sizeof(y) - 1), 0);
	ASSERT_EQ(policy_validate(&s), -EINVAL);
	ASSERT_EQ(s.n_errors, 1);
	if (s.n_diags)
		ASSERT_STRSTR(s.diags[0].msg, "duplicate Namespace");
	policy_set_free(&s);
}

#define UID "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
#define UID_ "0a1b2c3d_4e5f_4a6b_8c7d_9e0f1a2b3c4d"

TEST(kubepods_layouts)
{
	static const char *const want[KUBEPODS_N_LAYOUTS] = {
		"pod" UID,
		"burstable/pod" UID,
		"besteffort/pod" UID,
		"kubepods-pod" UID_ ".slice",
		"kubepods-burstable.slice/kubepods-burstable-pod" UID_ ".slice",
		"kubepods-besteffort.slice/kubepods-besteffort-pod" UID_ ".slice",
	};
	char out[256];

	for (unsigned int i = 0; i < KUBEPODS_N_LAYOUTS; i++) {
		ASSERT_EQ(kubepods_pod_relpath(UID, i, out, sizeof(out)), 0);
		ASSERT_STREQ(out, want[i]);
		ASSERT_STREQ(kubepods_layout_driver(i), i < 3 ? "cgroupfs" : "systemd");
	}
	ASSERT_EQ(kubepods_pod_relpath(UID, KUBEPODS_N_LAYOUTS, out, sizeof(out)), -EINVAL);
	ASSERT_EQ(kubepods_pod_relpath(UID, 5, out, 20), -ENOSPC);
	/* a static pod's config hash is a UID too */
	ASSERT_EQ(kubepods_pod_relpath("6f1c0e9b2d5a7c3e8f4b1a0d9c2e7f3a", 0, out, sizeof(out)), 0);
	ASSERT_STREQ(out, "pod6f1c0e9b2d5a7c3e8f4b1a0d9c2e7f3a");
}

TEST(kubepods_uid_refused)
{
	static const char *const bad[] = {
		"", "../etc", "a/b", "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d/..", ".", "pod x", "g",
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0",	/* 65 */
	};
	char out[256];

	ASSERT_FALSE(kubepods_uid_ok(NULL));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (kubepods_uid_ok(bad[i]))
			TEST_FAIL_("uid \"%s\" accepted", bad[i]);
		ASSERT_EQ(kubepods_pod_relpath(bad[i], 0, out, sizeof(out)), -EINVAL);
		ASSERT_EQ(kubepods_find_pod("/", bad[i], out, sizeof(out)), -EINVAL);
	}
	ASSERT_TRUE(kubepods_uid_ok(UID));
	ASSERT_TRUE(kubepods_uid_ok("ABCDEF01-2345"));
}

/* A scratch tree shaped like each layout; find_pod must find exactly it. */
TEST(kubepods_find_pod_fs)
{
	char root[] = "/tmp/sm-kubepods-XXXXXX", rel[256], path[512], dir[512], got[512];

	if (!ASSERT_TRUE(mkdtemp(root)))
		return;
	for (unsigned int i = 0; i < KUBEPODS_N_LAYOUTS; i++) {
		char *slash;

		ASSERT_EQ(kubepods_find_pod(root, UID, got, sizeof(got)), -ENOENT);
		ASSERT_EQ(kubepods_pod_relpath(UID, i, rel, sizeof(rel)), 0);
		snprintf(path, sizeof(path), "%s/%s", root, rel);
		snprintf(dir, sizeof(dir), "%s", path);
		slash = strrchr(dir, '/');
		*slash = '\0';
		mkdir(dir, 0700);	/* the QoS parent (or root itself) */
		ASSERT_EQ(mkdir(path, 0700), 0);
		ASSERT_EQ(kubepods_find_pod(root, UID, got, sizeof(got)), 0);
		ASSERT_STREQ(got, path);
		/* another pod's UID is not found */
		ASSERT_EQ(kubepods_find_pod(root, "0a1b2c3d", got, sizeof(got)), -ENOENT);
		rmdir(path);
		if (strcmp(dir, root))
			rmdir(dir);
	}
	/* a file or a symbolic link named like a pod cgroup is not one */
	snprintf(path, sizeof(path), "%s/pod" UID, root);
	close(creat(path, 0600));
	ASSERT_EQ(kubepods_find_pod(root, UID, got, sizeof(got)), -ENOENT);
	unlink(path);
	ASSERT_EQ(symlink("/tmp", path), 0);
	ASSERT_EQ(kubepods_find_pod(root, UID, got, sizeof(got)), -ENOENT);
	unlink(path);
	ASSERT_EQ(kubepods_find_pod(root, UID, got, 8), -ENOSPC);
	ASSERT_EQ(rmdir(root), 0);
}
