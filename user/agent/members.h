/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * members: mesh membership on a Kubernetes node (--kubepods-cgroup).
 *
 * Which pods are in the mesh comes from the policy (policy_pod_in_mesh:
 * Namespace and pod labels, as Istio users mark them); where their cgroups
 * are comes from the kubelet's layout under the kubepods cgroup
 * (kubepods.h). Every member pod on this node gets the cgroup programs
 * attached at its pod-level cgroup, one bpf_link per program pinned as
 * PIN/pods/<uid>/<program>, so a restarted agent adopts them. Nothing is
 * ever attached to the kubepods cgroup itself or outside it.
 *
 * Life of a member: pending (its cgroup is not there yet: the kubelet may
 * create it after the policy arrived; retried on every reload and every
 * MEMBERS_RESCAN_NS) -> attached -> detached and unpinned when it leaves the
 * mesh, leaves the policy, or its cgroup goes (pod deleted), and on exit
 * unless --keep-on-exit.
 */
#ifndef SOCKMESH_MEMBERS_H
#define SOCKMESH_MEMBERS_H

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/kubepods.h"
#include "agent/loader.h"
#include "policy/policy.h"

#define MEMBERS_RESCAN_NS (2ull * 1000 * 1000 * 1000)

enum member_state {
	MEMBER_NOT_MEMBER = 0,
	MEMBER_PENDING,
	MEMBER_ATTACHED,
};

/* An attached pod's cgroup and links (only members have one). */
struct member_att {
	char cgroup[PATH_MAX];
	struct loader_cg_links links;
	bool adopted;			/* links came from an earlier agent */
};

struct member_pod {
	char *ns, *name;
	char uid[KUBEPODS_UID_MAX + 1];	/* the cgroup's UID; "" when unusable */
	bool uid_bad;			/* metadata.uid there but not a UID */
	bool member;
	const char *why;		/* why (not) a member; static string */
	enum member_state state;
	struct member_att *att;		/* state == MEMBER_ATTACHED */
	char note[200];			/* pending: why */
};

struct member_slot;

struct members {
	bool enabled;			/* --kubepods-cgroup given */
	bool live;			/* programs loaded: attach and detach for real */
	char root[PATH_MAX];		/* resolved kubepods cgroup */
	char node[256];			/* --node-name, "" = every pod in the policy */
	char dir[PATH_MAX];		/* PIN/pods */
	struct member_pod *pods;	/* this node's pods in the last applied policy,
					 * in no order (one that goes is replaced by
					 * the last) */
	size_t n;
	struct member_slot *idx;	/* pods by (ns, name): members.c */
	size_t idx_cap;			/* power of two; 0 = none yet */
	uint64_t next_scan_ns;
	uint64_t attaches, detaches, failures;
};

void members_init(struct members *m, const char *root, const char *node, const char *pin_dir);

/*
 * A new policy was applied: recompute membership. Pods that left the mesh
 * or the policy are detached and unpinned at once (when live); new members
 * are attached by the members_reconcile() that follows. 0 or -ENOMEM (the
 * previous list stays).
 */
int members_set(struct members *m, const struct loader *l, const struct pol_set *set);

/*
 * Delta: one pod changed in set (the applied policy): version from (NULL:
 * new) is now to (NULL: deleted). Its entry is what members_set would
 * make of it: it comes, goes or changes; an attachment stays with its UID
 * while the pod is a member, else it is detached and unpinned (when live);
 * a new member is attached at once when its cgroup is there (else pending,
 * as members_set leaves it for members_reconcile). The other pods are not
 * looked at. 0 or -ENOMEM (the list is as before).
 */
int members_pod_change(struct members *m, const struct loader *l, const struct pol_set *set,
		       const struct pol_pod *from, const struct pol_pod *to);

/* Attach pending members whose cgroup exists; detach pods whose cgroup went. */
void members_reconcile(struct members *m, const struct loader *l);

/* Once at start, after the first reconcile: PIN/pods/<uid> pins of pods
 * not attached now (left by an earlier agent) are removed. */
void members_sweep_pins(struct members *m, const struct loader *l);

/* Main loop: reconcile every MEMBERS_RESCAN_NS. */
void members_tick(struct members *m, const struct loader *l, uint64_t now_ns);

/* keep = true: leave the pinned links (a new agent adopts them). */
void members_close(struct members *m, const struct loader *l, bool keep);

void members_counts(const struct members *m, size_t *members, size_t *attached, size_t *pending);
json_t *members_status_json(const struct members *m);

#endif /* SOCKMESH_MEMBERS_H */
