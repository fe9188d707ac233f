// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/grow.h"
#include "common/hash.h"
#include "common/log.h"
#include "agent/members.h"

/* A static pod's mirror in the API server has a UID of its own; the
 * kubelet named the cgroup after the static pod's config hash. */
#define MEMBERS_MIRROR_ANNOTATION "kubernetes.io/config.mirror"

void members_init(struct members *m, const char *root, const char *node, const char *pin_dir)
{
	memset(m, 0, sizeof(*m));
	m->enabled = true;
	snprintf(m->root, sizeof(m->root), "%s", root);
	snprintf(m->node, sizeof(m->node), "%s", node ?: "");
	snprintf(m->dir, sizeof(m->dir), "%s/pods", pin_dir);
}

static void members_detach(struct members *m, const struct loader *l, struct member_pod *p,
			   bool unpin, const char *why)
{
	if (!p->att)
		return;
	loader_cg_release(&p->att->links, l, unpin);
	if (unpin) {
		m->detaches++;
		log_info("mesh: detached from pod %s/%s (%s): %s", p->ns, p->name, p->uid, why);
	}
	free(p->att);
	p->att = NULL;
	if (p->state == MEMBER_ATTACHED)
		p->state = MEMBER_PENDING;
}

static void members_free_pods(struct member_pod *pods, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(pods[i].ns);
		free(pods[i].name);
		free(pods[i].att);
	}
	free(pods);
}

/*
 * The list by (ns, name): open addressing, linear probing, power-of-two
 * capacity, at most half full. Without --node-name the list holds every
 * Pod of the cluster; a Pod delta finds, adds and drops its entry in O(1)
 * instead of a scan (and the list has no order to keep: a pod that goes is
 * replaced by the last one, whose slot follows it).
 */
struct member_slot {
	uint64_t hash;
	size_t pos;		/* index in pods[] + 1; 0 = empty */
};

static uint64_t members_hash(const char *ns, const char *name)
{
	uint64_t h = sm_hash_fnv1a64(SM_FNV64_OFFSET, ns, strlen(ns) + 1);	/* (its NUL) */

	return sm_hash_mix64(sm_hash_fnv1a64(h, name, strlen(name)));
}

/* The slot of (ns, name) in idx (cap slots), or the empty one its probe ends at. */
static size_t members_probe(const struct member_slot *idx, size_t cap, const struct member_pod *pods,
			    const char *ns, const char *name, uint64_t h)
{
	size_t i = h & (cap - 1);

	for (; idx[i].pos; i = (i + 1) & (cap - 1)) {
		const struct member_pod *p = &pods[idx[i].pos - 1];

		if (idx[i].hash == h && !strcmp(p->name, name) && !strcmp(p->ns, ns))
			break;
	}
	return i;
}

/* An empty index for n pods: its capacity in *cap. NULL when out of memory. */
static struct member_slot *members_index_alloc(size_t n, size_t *cap)
{
	*cap = 16;
	while (*cap < 2 * n + 2)
		*cap <<= 1;
	return calloc(*cap, sizeof(struct member_slot));
}

/* List m->pods[pos] in m->idx (not there; room for it made). */
static void members_index_put(struct members *m, size_t pos)
{
	const struct member_pod *p = &m->pods[pos];
	uint64_t h = members_hash(p->ns, p->name);
	size_t i = members_probe(m->idx, m->idx_cap, m->pods, p->ns, p->name, h);

	m->idx[i] = (struct member_slot){ .hash = h, .pos = pos + 1 };
}

/* m->idx holds n pods at most half full (made anew, larger). 0 or -ENOMEM. */
static int members_index_room(struct members *m, size_t n)
{
	struct member_slot *idx;
	size_t cap;

	if (m->idx_cap && 2 * n + 2 <= m->idx_cap)
		return 0;
	if (!(idx = members_index_alloc(n, &cap)))
		return -ENOMEM;
	free(m->idx);
	m->idx = idx;
	m->idx_cap = cap;
	for (size_t k = 0; k < m->n; k++)
		members_index_put(m, k);
	return 0;
}

static struct member_pod *members_lookup(const struct members *m, const char *ns, const char *name)
{
	size_t i;

	if (!m->idx_cap)
		return NULL;
	i = members_probe(m->idx, m->idx_cap, m->pods, ns, name, members_hash(ns, name));
	return m->idx[i].pos ? &m->pods[m->idx[i].pos - 1] : NULL;
}

/* The slot of m->pods[pos]. */
static size_t members_slot_of(const struct members *m, size_t pos)
{
	size_t i = members_hash(m->pods[pos].ns, m->pods[pos].name) & (m->idx_cap - 1);

	while (m->idx[i].pos != pos + 1)
		i = (i + 1) & (m->idx_cap - 1);
	return i;
}

/*
 * m->pods[at] leaves the list (its attachment handled already): freed, its
 * slot emptied (later slots of its probe run shift back), the last pod
 * moved into its place.
 */
static void members_unlist(struct members *m, size_t at)
{
	size_t mask = m->idx_cap - 1, i = members_slot_of(m, at), j, home;
	size_t last = m->n - 1;

	for (j = (i + 1) & mask; m->idx[j].pos; j = (j + 1) & mask) {
		home = m->idx[j].hash & mask;
		if (sm_probe_stays(home, i, j))
			continue;
		m->idx[i] = m->idx[j];
		i = j;
	}
	m->idx[i] = (struct member_slot){};
	free(m->pods[at].ns);
	free(m->pods[at].name);
	free(m->pods[at].att);
	if (at != last) {
		m->idx[members_slot_of(m, last)].pos = at + 1;
		m->pods[at] = m->pods[last];
	}
	m->n--;
}

static struct member_pod *members_find(struct member_pod *pods, size_t n, const char *uid)
{
	for (size_t i = 0; uid[0] && i < n; i++)
		if (!strcmp(pods[i].uid, uid))
			return &pods[i];
	return NULL;
}

static int members_uid_cmp(const void *a, const void *b)
{
	return strcmp((*(struct member_pod *const *)a)->uid, (*(struct member_pod *const *)b)->uid);
}

/* The first pod with uid in byuid (sorted by uid), or NULL. */
static struct member_pod *members_bsearch(struct member_pod **byuid, size_t n, const char *uid)
{
	size_t lo = 0, hi = n;

	if (!uid[0])
		return NULL;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(byuid[mid]->uid, uid) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && !strcmp(byuid[lo]->uid, uid) ? byuid[lo] : NULL;
}

/* The pod's entry in the new list: membership and the cgroup's UID. */
static int members_fill(struct member_pod *p, const struct pol_set *set, const struct pol_pod *pod)
{
	const char *uid = policy_label_get(&pod->meta.annotations, MEMBERS_MIRROR_ANNOTATION);
	enum pol_mesh_why why;

	p->ns = strdup(pod->meta.ns);
	p->name = strdup(pod->meta.name);
	if (!p->ns || !p->name)
		return -ENOMEM;
	p->member = policy_pod_in_mesh(set, pod, &why);
	p->why = policy_mesh_why_str(why);
	if (p->member && pod->finished) {
		p->member = false;
		p->why = "pod has finished (phase Succeeded or Failed)";
	}
	p->state = p->member ? MEMBER_PENDING : MEMBER_NOT_MEMBER;
	if (!uid)
		uid = pod->uid;
	if (kubepods_uid_ok(uid))
		snprintf(p->uid, sizeof(p->uid), "%s", uid);
	else
		p->uid_bad = uid != NULL;
	return 0;
}

/* Is a version of a pod one of this node's (listed by members_set)? */
static bool members_here(const struct members *m, const struct pol_pod *pod)
{
	return pod && (!m->node[0] || (pod->node_name && !strcmp(pod->node_name, m->node)));
}

int members_set(struct members *m, const struct loader *l, const struct pol_set *set)
{
	struct member_pod *pods = NULL, **byuid = NULL;
	struct member_slot *idx;
	size_t n = 0, n_here = 0, cap;

	for (size_t i = 0; i < set->n_pods; i++)
		n_here += members_here(m, &set->pods[i]);	/* not another node's */
	if (!(idx = members_index_alloc(n_here, &cap)) ||
	    (n_here && (!(pods = calloc(n_here, sizeof(*pods))) ||
			!(byuid = calloc(n_here, sizeof(*byuid)))))) {
		free(idx);
		free(pods);
		return -ENOMEM;
	}
	for (size_t i = 0; i < set->n_pods; i++) {
		const struct pol_pod *pod = &set->pods[i];
		uint64_t h = members_hash(pod->meta.ns, pod->meta.name);
		size_t s;

		if (!members_here(m, pod))
			continue;
		s = members_probe(idx, cap, pods, pod->meta.ns, pod->meta.name, h);
		if (idx[s].pos)
			continue;	/* a duplicate (an error in the set): the first is listed */
		idx[s] = (struct member_slot){ .hash = h, .pos = n + 1 };
		if (members_fill(&pods[n++], set, pod)) {
			members_free_pods(pods, n);
			free(byuid);
			free(idx);
			return -ENOMEM;
		}
	}
	for (size_t i = 0; i < n; i++)
		byuid[i] = &pods[i];
	qsort(byuid, n, sizeof(*byuid), members_uid_cmp);
	/* Attachments move to the new list; pods that left are detached. */
	for (size_t i = 0; i < m->n; i++) {
		struct member_pod *old = &m->pods[i], *p;

		p = members_bsearch(byuid, n, old->uid);
		if (!old->att) {
			if (p && p->member)	/* still pending: said so already */
				memcpy(p->note, old->note, sizeof(p->note));
			continue;
		}
		if (p && p->member && !p->att) {
			p->att = old->att;
			p->state = MEMBER_ATTACHED;
			old->att = NULL;
			continue;
		}
		members_detach(m, l, old, m->live, !p ? "no longer in the policy" : p->why);
	}
	free(byuid);
	members_free_pods(m->pods, m->n);
	free(m->idx);
	m->pods = pods;
	m->n = n;
	m->idx = idx;
	m->idx_cap = cap;
	return 0;
}

static void members_attach(struct members *m, const struct loader *l, struct member_pod *p);

int members_pod_change(struct members *m, const struct loader *l, const struct pol_set *set,
		       const struct pol_pod *from, const struct pol_pod *to)
{
	const struct pol_pod *id = to ?: from;	/* both versions have its ns and name */
	struct member_pod np = {}, *old;
	size_t at = m->n;

	if (!id)
		return 0;
	old = members_lookup(m, id->meta.ns, id->meta.name);
	if (old)
		at = old - m->pods;
	if (members_here(m, to)) {
		if (members_fill(&np, set, to))
			goto nomem;
		if (!old && (sm_room((void **)&m->pods, (m->n + 1) * sizeof(*m->pods)) ||
			     members_index_room(m, m->n + 1)))
			goto nomem;
	}
	/* as members_set: the attachment moves to the new version of its UID */
	if (old && old->att && np.ns && np.member && np.uid[0] && !strcmp(np.uid, old->uid)) {
		np.att = old->att;
		np.state = MEMBER_ATTACHED;
		old->att = NULL;
	} else if (old && old->att) {
		members_detach(m, l, old, m->live, np.ns && !strcmp(np.uid, old->uid) ? np.why :
			       "no longer in the policy");
	} else if (old && np.ns && np.member && !strcmp(np.uid, old->uid)) {
		memcpy(np.note, old->note, sizeof(np.note));	/* still pending: said so */
	}
	if (np.ns) {
		if (old) {
			free(old->ns);
			free(old->name);
			free(old->att);
		}
		m->pods[at] = np;
		if (!old) {
			members_index_put(m, at);
			m->n++;
		}
		if (m->live && np.member && !np.att)
			members_attach(m, l, &m->pods[at]);
	} else if (old) {
		members_unlist(m, at);
	}
	return 0;
nomem:
	free(np.ns);
	free(np.name);
	return -ENOMEM;
}

/* The pending pod's note changed: say so once. */
static void members_note(struct member_pod *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void members_note(struct member_pod *p, const char *fmt, ...)
{
	char note[sizeof(p->note)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(note, sizeof(note), fmt, ap);
	va_end(ap);
	if (!strcmp(note, p->note))
		return;
	snprintf(p->note, sizeof(p->note), "%s", note);
	log_info("mesh: pod %s/%s pending: %s", p->ns, p->name, note);
}

/* path must be a directory strictly below the kubepods root. */
static bool members_below_root(const struct members *m, const char *path)
{
	char real[PATH_MAX];
	size_t n = strlen(m->root);

	return realpath(path, real) && !strncmp(real, m->root, n) && real[n] == '/' && real[n + 1];
}

static void members_attach(struct members *m, const struct loader *l, struct member_pod *p)
{
	char path[PATH_MAX], dir[PATH_MAX], err[512];
	struct member_att *att;
	int ret;

	if (!p->uid[0]) {
		members_note(p, p->uid_bad ? "metadata.uid is not a pod UID: its cgroup cannot be found" :
			     "no metadata.uid in the policy: its cgroup cannot be found");
		return;
	}
	ret = kubepods_find_pod(m->root, p->uid, path, sizeof(path));
	if (ret == -ENOENT) {
		members_note(p, "no cgroup for UID %s under %s yet", p->uid, m->root);
		return;
	}
	if (ret || !members_below_root(m, path)) {
		members_note(p, "cgroup of UID %s: %s", p->uid,
			     ret ? strerror(-ret) : "resolves outside the kubepods cgroup: refused");
		return;
	}
	for (size_t i = 0; i < m->n; i++)
		if (&m->pods[i] != p && m->pods[i].att && !strcmp(m->pods[i].uid, p->uid)) {
			members_note(p, "pod %s/%s has the same UID and is attached",
				     m->pods[i].ns, m->pods[i].name);
			return;
		}
	att = calloc(1, sizeof(*att));
	if (!att) {
		members_note(p, "out of memory");
		return;
	}
	snprintf(dir, sizeof(dir), "%s/%s", m->dir, p->uid);
	ret = loader_cg_attach(l, path, dir, true, &att->links, err, sizeof(err));
	if (ret) {
		loader_cg_release(&att->links, l, true);
		free(att);
		m->failures++;
		members_note(p, "attach failed: %s", err);
		return;
	}
	snprintf(att->cgroup, sizeof(att->cgroup), "%s", path);
	for (int i = 0; i < LOADER_MAX_PROGS; i++)
		att->adopted |= att->links.adopted[i];
	p->att = att;
	p->state = MEMBER_ATTACHED;
	p->note[0] = '\0';
	m->attaches++;
	log_info("mesh: %s pod %s/%s (%s, %s) at %s", att->adopted ? "adopted the links of" : "attached to",
		 p->ns, p->name, p->uid, p->why, path);
}

/* The attached cgroup is still the one the links are on. */
static bool members_cgroup_same(const struct member_att *att)
{
	uint64_t id = loader_cgroup_id(att->cgroup);

	return att->links.cg_id ? id == att->links.cg_id : access(att->cgroup, F_OK) == 0;
}

void members_reconcile(struct members *m, const struct loader *l)
{
	if (!m->enabled || !m->live)
		return;
	for (size_t i = 0; i < m->n; i++) {
		struct member_pod *p = &m->pods[i];

		if (!p->member)
			continue;
		/* the pod's cgroup went (pod deleted) or was made anew */
		if (p->att && !members_cgroup_same(p->att))
			members_detach(m, l, p, true, "its cgroup is gone");
		if (!p->att)
			members_attach(m, l, p);
	}
}

void members_sweep_pins(struct members *m, const struct loader *l)
{
	DIR *d = m->enabled ? opendir(m->dir) : NULL;
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		struct loader_cg_links stale = {};
		struct member_pod *p;

		if (de->d_name[0] == '.')
			continue;
		p = members_find(m->pods, m->n, de->d_name);
		if (p && p->att)
			continue;
		snprintf(stale.dir, sizeof(stale.dir), "%s/%s", m->dir, de->d_name);
		loader_cg_release(&stale, l, true);
		log_info("mesh: removed the pinned links of pod UID %s (not attached now)", de->d_name);
	}
	closedir(d);
}

void members_tick(struct members *m, const struct loader *l, uint64_t now_ns)
{
	if (!m->enabled || !m->live || now_ns < m->next_scan_ns)
		return;
	m->next_scan_ns = now_ns + MEMBERS_RESCAN_NS;
	members_reconcile(m, l);
}

void members_close(struct members *m, const struct loader *l, bool keep)
{
	for (size_t i = 0; i < m->n; i++)
		members_detach(m, l, &m->pods[i], !keep, "agent exiting");
	if (!keep && m->enabled)
		rmdir(m->dir);
	members_free_pods(m->pods, m->n);
	free(m->idx);
	m->pods = NULL;
	m->n = 0;
	m->idx = NULL;
	m->idx_cap = 0;
}

void members_counts(const struct members *m, size_t *members, size_t *attached, size_t *pending)
{
	*members = *attached = *pending = 0;
	for (size_t i = 0; i < m->n; i++) {
		*members += m->pods[i].member;
		*attached += m->pods[i].state == MEMBER_ATTACHED;
		*pending += m->pods[i].state == MEMBER_PENDING;
	}
}

static int members_name_cmp(const void *a, const void *b)
{
	const struct member_pod *x = *(const struct member_pod *const *)a;
	const struct member_pod *y = *(const struct member_pod *const *)b;
	int c = strcmp(x->ns, y->ns);

	return c ? c : strcmp(x->name, y->name);
}

/* The pods listed by namespace and name (the list itself has no order). */
json_t *members_status_json(const struct members *m)
{
	static const char *const state[] = {
		[MEMBER_NOT_MEMBER] = "not-member",
		[MEMBER_PENDING] = "pending",
		[MEMBER_ATTACHED] = "attached",
	};
	json_t *o = json_object(), *pods = json_array();
	const struct member_pod **byname = m->n ? calloc(m->n, sizeof(*byname)) : NULL;
	size_t members, attached, pending;

	members_counts(m, &members, &attached, &pending);
	json_object_set_new(o, "kubepods_cgroup", json_string(m->root));
	json_object_set_new(o, "node_name", json_string(m->node));
	json_object_set_new(o, "pods_on_node", json_integer((json_int_t)m->n));
	json_object_set_new(o, "members", json_integer((json_int_t)members));
	json_object_set_new(o, "attached", json_integer((json_int_t)attached));
	json_object_set_new(o, "pending", json_integer((json_int_t)pending));
	json_object_set_new(o, "attaches", json_integer((json_int_t)m->attaches));
	json_object_set_new(o, "detaches", json_integer((json_int_t)m->detaches));
	json_object_set_new(o, "attach_failures", json_integer((json_int_t)m->failures));
	for (size_t i = 0; byname && i < m->n; i++)
		byname[i] = &m->pods[i];
	if (byname)
		qsort(byname, m->n, sizeof(*byname), members_name_cmp);
	for (size_t i = 0; i < m->n; i++) {
		const struct member_pod *p = byname ? byname[i] : &m->pods[i];
		json_t *j = json_pack("{s:s,s:s,s:s,s:b,s:s,s:s}", "namespace", p->ns, "name", p->name,
				      "uid", p->uid, "member", p->member, "state", state[p->state],
				      "why", p->why);

		if (p->att) {
			json_t *ids = json_array();

			for (int k = 0; k < LOADER_MAX_PROGS; k++)
				if (p->att->links.link_ids[k])
					json_array_append_new(ids, json_integer(p->att->links.link_ids[k]));
			json_object_set_new(j, "cgroup", json_string(p->att->cgroup));
			json_object_set_new(j, "adopted", json_boolean(p->att->adopted));
			json_object_set_new(j, "link_ids", ids);
		} else if (p->state == MEMBER_PENDING) {
			json_object_set_new(j, "pending", json_string(p->note));
		}
		json_array_append_new(pods, j);
	}
	free(byname);
	json_object_set_new(o, "pods", pods);
	return o;
}
