// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Mesh membership's pod list (agent/members.c) under Pod deltas, against a
 * reference model: a pod that comes, changes (same UID: the attachment
 * stays, the very same one; another UID: detached, the new one attached)
 * or goes leaves the list as the model says, over thousands of random
 * deltas in random order mixed with full passes (members_set); and a
 * rollout through a list of 10,000 pods (the profile to run under
 * callgrind: members_pod_change's instructions per delta).
 *
 * The unit tests load no BPF: the loader's three cgroup calls are test
 * doubles below. An attach records the cgroup's inode as the links'
 * cgroup id and a link id of its own; a release with unpin counts a
 * detach. The kubepods tree is a private directory with a cgroupfs
 * pod<uid> directory for each pod whose "cgroup" is there.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/members.h"
#include "common/log.h"
#include "test.h"

/* ---- test doubles for the loader ---- */

static uint32_t mt_next_link;	/* link ids handed out */
static size_t mt_unpinned;	/* releases that detached */

uint64_t loader_cgroup_id(const char *path)
{
	struct stat st;

	return stat(path, &st) ? 0 : (uint64_t)st.st_ino;
}

int loader_cg_attach(const struct loader *l, const char *path, const char *link_dir,
		     bool replace_stale, struct loader_cg_links *cl, char *err, size_t errlen)
{
	(void)l; (void)replace_stale; (void)err; (void)errlen;
	snprintf(cl->dir, sizeof(cl->dir), "%s", link_dir);
	cl->cg_id = loader_cgroup_id(path);
	cl->link_ids[0] = ++mt_next_link;
	return 0;
}

void loader_cg_release(struct loader_cg_links *cl, const struct loader *l, bool unpin)
{
	(void)l;
	if (unpin && cl->link_ids[0])
		mt_unpinned++;
	memset(cl->link_ids, 0, sizeof(cl->link_ids));
}

/* ---- the model ---- */

#define MT_NODE "node-1"
#define MT_NS 6			/* ns0 .. ns5: even ones are mesh namespaces */
#define MT_MAX 4096

static const char *const mt_ns[MT_NS] = { "ns0", "ns1", "ns2", "ns3", "ns4", "ns5" };

struct mt_pod {
	char name[32], uid[40];
	const char *ns;
	bool opt_out;		/* sidecar.istio.io/inject=false */
	bool here;		/* spec.nodeName is MT_NODE */
	bool finished;
	const struct member_att *att;	/* what it was attached with, NULL if not */
};

struct mt {
	struct mt_pod pods[MT_MAX];
	size_t n;
	char root[64];		/* the kubepods tree */
	char pin[64];
	struct pol_kv opt_out_kv, ns_kv;
	struct pol_namespace nss[MT_NS];
	struct pol_pod set_pods[MT_MAX];
	struct pol_set set;
	struct loader l;
	struct members m;
	uint32_t rnd;
};

static uint32_t mt_rand(struct mt *t)
{
	t->rnd = t->rnd * 1103515245u + 12345u;
	return t->rnd >> 8;
}

static void mt_pol_pod(struct mt *t, const struct mt_pod *p, struct pol_pod *out)
{
	memset(out, 0, sizeof(*out));
	out->meta.ns = (char *)p->ns;
	out->meta.name = (char *)p->name;
	out->meta.labels = (struct pol_labels){ p->opt_out ? &t->opt_out_kv : NULL, p->opt_out };
	out->uid = (char *)p->uid;
	out->node_name = p->here ? MT_NODE : "node-2";
	out->finished = p->finished;
}

/* The set as the model has it now (members_set reads its pods, a delta
 * its namespaces only). */
static void mt_sync_set(struct mt *t)
{
	for (size_t i = 0; i < t->n; i++)
		mt_pol_pod(t, &t->pods[i], &t->set_pods[i]);
	t->set.n_pods = t->n;
}

static void mt_cgroup(struct mt *t, const char *uid, bool there)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/pod%s", t->root, uid);
	if (there)
		mkdir(path, 0755);
	else
		rmdir(path);
}

static bool mt_cgroup_there(const struct mt *t, const char *uid)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/pod%s", t->root, uid);
	return !access(path, F_OK);
}

static void mt_new_uid(struct mt *t, char *uid)
{
	snprintf(uid, 40, "%08x-0000-4000-8000-%012x", mt_rand(t), mt_rand(t) ^ (unsigned)t->n);
}

static int mt_init(struct mt *t, const char *node, bool live, uint32_t seed)
{
	memset(t, 0, sizeof(*t));
	mt_unpinned = 0;
	t->rnd = seed;
	snprintf(t->root, sizeof(t->root), "/tmp/sm-members-XXXXXX");
	if (!mkdtemp(t->root))
		return -errno;
	snprintf(t->pin, sizeof(t->pin), "%s/pin", t->root);
	t->opt_out_kv = (struct pol_kv){ "sidecar.istio.io/inject", "false" };
	t->ns_kv = (struct pol_kv){ "istio-injection", "enabled" };
	for (size_t i = 0; i < MT_NS; i++) {
		t->nss[i].meta.name = (char *)mt_ns[i];
		t->nss[i].meta.labels = (struct pol_labels){ i % 2 ? NULL : &t->ns_kv, !(i % 2) };
	}
	t->set.nss = t->nss;
	t->set.n_nss = MT_NS;
	t->set.pods = t->set_pods;
	t->l.n_progs = 0;
	members_init(&t->m, t->root, node, t->pin);
	t->m.live = live;
	return 0;
}

static void mt_fini(struct mt *t)
{
	members_close(&t->m, &t->l, false);
	for (size_t i = 0; i < t->n; i++)
		mt_cgroup(t, t->pods[i].uid, false);
	rmdir(t->root);
}

/* The model's entry of (ns, name), by a scan (the reference). */
static struct mt_pod *mt_find(struct mt *t, const char *ns, const char *name)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->pods[i].ns == ns && !strcmp(t->pods[i].name, name))
			return &t->pods[i];
	return NULL;
}

static bool mt_member(const struct mt_pod *p)
{
	bool mesh_ns = !strcmp(p->ns, "ns0") || !strcmp(p->ns, "ns2") || !strcmp(p->ns, "ns4");

	return mesh_ns && !p->opt_out && !p->finished;
}

/*
 * The list holds exactly the model's pods of this node, each once, with
 * its UID and membership; when live, a member whose cgroup is there is
 * attached and one whose cgroup is not is pending. Each pod's attachment
 * is recorded in the model (keep, or every pod when all: an attached pod
 * must have the attachment recorded before, the very same one).
 */
static int mt_entry_cmp(const void *a, const void *b)
{
	const struct member_pod *x = *(const struct member_pod *const *)a;
	const struct member_pod *y = *(const struct member_pod *const *)b;
	int c = strcmp(x->ns, y->ns);

	return c ? c : strcmp(x->name, y->name);
}

static bool mt_check(struct mt *t, const char *what, size_t step, const struct mt_pod *keep, bool all)
{
	/* the list's entries by (ns, name), scanned by bisection: O(n log n) a step */
	const struct member_pod **by = calloc(t->m.n + 1, sizeof(*by));
	size_t want = 0;

	if (!ASSERT_TRUE(by))
		goto fail;
	for (size_t k = 0; k < t->m.n; k++)
		by[k] = &t->m.pods[k];
	qsort(by, t->m.n, sizeof(*by), mt_entry_cmp);
	for (size_t k = 1; k < t->m.n; k++)
		if (!ASSERT_TRUE(mt_entry_cmp(&by[k - 1], &by[k])))
			goto fail;	/* listed twice */
	for (size_t i = 0; i < t->n; i++) {
		struct mt_pod *p = &t->pods[i];
		struct member_pod key = { .ns = (char *)p->ns, .name = p->name };
		const struct member_pod *kp = &key, *e, **at;
		enum member_state st;

		if (t->m.node[0] && !p->here) {
			p->att = NULL;	/* not listed: detached */
			continue;
		}
		want++;
		at = bsearch(&kp, by, t->m.n, sizeof(*by), mt_entry_cmp);
		e = at ? *at : NULL;
		if (!ASSERT_TRUE(e) || !ASSERT_STREQ(e->uid, p->uid) ||
		    !ASSERT_EQ(e->member, mt_member(p)))
			goto fail;
		st = !e->member ? MEMBER_NOT_MEMBER :
		     t->m.live && mt_cgroup_there(t, p->uid) ? MEMBER_ATTACHED : MEMBER_PENDING;
		if (!ASSERT_EQ(e->state, st) || !ASSERT_EQ(!!e->att, st == MEMBER_ATTACHED))
			goto fail;
		if (p == keep && !ASSERT_TRUE(e->att && e->att == p->att))
			goto fail;	/* the same attachment, not a new one */
		if (all && e->att && !ASSERT_TRUE(e->att == p->att))
			goto fail;
		p->att = e->att;
	}
	if (ASSERT_EQ(t->m.n, want)) {
		free(by);
		return true;
	}
fail:
	free(by);
	fprintf(stderr, "  after %s (step %zu)\n", what, step);
	return false;
}

/* One random delta to the model and to the list; false on a failed check. */
static bool mt_step(struct mt *t, size_t step)
{
	uint32_t r = mt_rand(t) % 10;
	struct pol_pod from, to;
	struct mt_pod *p, was;
	const struct mt_pod *keep = NULL;
	const char *what;

	if (!t->n || (r < 4 && t->n < MT_MAX)) {
		p = &t->pods[t->n++];
		memset(p, 0, sizeof(*p));
		p->ns = mt_ns[mt_rand(t) % MT_NS];
		snprintf(p->name, sizeof(p->name), "pod-%u", mt_rand(t) % 100000);
		if (mt_find(t, p->ns, p->name) != p) {
			t->n--;		/* taken: an update of it instead */
			return true;
		}
		mt_new_uid(t, p->uid);
		p->opt_out = mt_rand(t) % 4 == 0;
		p->here = mt_rand(t) % 3 != 0;
		mt_cgroup(t, p->uid, mt_rand(t) % 4 != 0);
		mt_pol_pod(t, p, &to);
		what = "add";
		ASSERT_EQ(members_pod_change(&t->m, &t->l, &t->set, NULL, &to), 0);
		return mt_check(t, what, step, NULL, false);
	}
	p = &t->pods[mt_rand(t) % t->n];
	was = *p;
	mt_pol_pod(t, &was, &from);
	if (r < 7) {
		what = "update (same UID)";
		switch (mt_rand(t) % 4) {
		case 0: p->opt_out = !p->opt_out; break;
		case 1: p->here = !p->here; break;
		case 2: p->finished = !p->finished; break;
		default: break;		/* another field: the same entry */
		}
		if (was.att && mt_member(p) && (p->here || !t->m.node[0]))
			keep = p;
	} else if (r < 8) {
		what = "update (another UID)";
		mt_new_uid(t, p->uid);
		mt_cgroup(t, p->uid, true);
	} else {
		what = "delete";
		ASSERT_EQ(members_pod_change(&t->m, &t->l, &t->set, &from, NULL), 0);
		mt_cgroup(t, was.uid, false);
		*p = t->pods[--t->n];
		return mt_check(t, what, step, NULL, false);
	}
	mt_pol_pod(t, p, &to);
	ASSERT_EQ(members_pod_change(&t->m, &t->l, &t->set, &from, &to), 0);
	if (strcmp(was.uid, p->uid))
		mt_cgroup(t, was.uid, false);
	return mt_check(t, what, step, keep, false);
}

/* The status lists every pod once, by namespace and name. */
static void mt_status_sorted(struct mt *t)
{
	json_t *st = members_status_json(&t->m), *pods = json_object_get(st, "pods");
	char prev[128] = "", cur[128];

	ASSERT_EQ(json_array_size(pods), t->m.n);
	for (size_t i = 0; i < json_array_size(pods); i++) {
		json_t *p = json_array_get(pods, i);

		snprintf(cur, sizeof(cur), "%s/%s", json_string_value(json_object_get(p, "namespace")),
			 json_string_value(json_object_get(p, "name")));
		if (!ASSERT_TRUE(strcmp(prev, cur) < 0))
			break;
		memcpy(prev, cur, sizeof(prev));
	}
	json_decref(st);
}

static void mt_random(const char *node, uint32_t seed)
{
	struct mt *t = calloc(1, sizeof(*t));
	int verbosity = log_verbosity;

	if (!ASSERT_TRUE(t) || !ASSERT_EQ(mt_init(t, node, true, seed), 0)) {
		free(t);
		return;
	}
	log_verbosity = LOG_WARN;	/* one line per attach otherwise */
	for (size_t step = 0; step < 6000; step++) {
		if (!mt_step(t, step))
			break;
		if (step % 500 == 499) {
			/* a full pass: attachments move to the new list */
			mt_sync_set(t);
			if (!ASSERT_EQ(members_set(&t->m, &t->l, &t->set), 0))
				break;
			members_reconcile(&t->m, &t->l);
			if (!mt_check(t, "members_set", step, NULL, true))
				break;
		}
	}
	mt_status_sorted(t);
	members_close(&t->m, &t->l, false);
	ASSERT_EQ(mt_unpinned, t->m.detaches);
	log_verbosity = verbosity;
	mt_fini(t);
	free(t);
}

TEST(members_delta_random_node)
{
	mt_random(MT_NODE, 14);
}

/* without --node-name every Pod of the policy is listed */
TEST(members_delta_random_all_nodes)
{
	mt_random(NULL, 1400);
}

/* The cases by name: add, the same UID keeps its attachment, another UID
 * is a new one, another node's version leaves, delete. */
TEST(members_delta_cases)
{
	struct mt *t = calloc(1, sizeof(*t));
	struct pol_pod v1, v2;
	struct mt_pod *p;
	const struct member_att *att;
	size_t detaches;
	int verbosity = log_verbosity;

	if (!ASSERT_TRUE(t) || !ASSERT_EQ(mt_init(t, MT_NODE, true, 7), 0)) {
		free(t);
		return;
	}
	log_verbosity = LOG_WARN;
	p = &t->pods[t->n++];
	p->ns = "ns0";
	snprintf(p->name, sizeof(p->name), "web-1");
	snprintf(p->uid, sizeof(p->uid), "0f0e1d2c-0000-4000-8000-000000000001");
	p->here = true;
	mt_cgroup(t, p->uid, true);
	mt_pol_pod(t, p, &v1);
	ASSERT_EQ(members_pod_change(&t->m, &t->l, &t->set, NULL, &v1), 0);
	if (!mt_check(t, "add", 0, NULL, false) || !ASSERT_TRUE(t->m.n == 1 && t->m.pods[0].att))
		goto out;
	att = t->m.pods[0].att;

	/* a label that keeps it a member: the same attachment */
	mt_pol_pod(t, p, &v2);
	ASSERT_EQ(members_pod_change(&t->m, &t->l, &t->set, &v1, &v2), 0);
	ASSERT_TRUE(t->m.n == 1 && t->m.pods[0].att == att);
	ASSERT_EQ(t->m.attaches, 1);

	/* the pod recreated under its name: another UID, detached and attached anew */
	detaches = t->m.detaches;
	snprintf(p->uid, sizeof(p->uid), "0f0e1d2c-0000-4000-8000-000000000002");
	mt_cgroup(t, p->uid, true);
	mt_pol_pod(t, p, &v1);
	ASSERT_EQ(members_pod_change(&t->m, &t->l, &t->set, &v2, &v1), 0);
	mt_cgroup(t, "0f0e1d2c-0000-4000-8000-000000000001", false);
	ASSERT_EQ(t->m.detaches, detaches + 1);
	ASSERT_EQ(t->m.attaches, 2);
	if (!mt_check(t, "another UID", 1, NULL, false))
		goto out;

	/* opted out: detached, listed as not a member */
	p->opt_out = true;
	mt_pol_pod(t, p, &v2);
	ASSERT_EQ(members_pod_change(&t->m, &t->l, &t->set, &v1, &v2), 0);
	ASSERT_EQ(t->m.detaches, detaches + 2);
	if (!mt_check(t, "opt-out", 2, NULL, false))
		goto out;

	/* moved to another node: no longer listed */
	p->here = false;
	mt_pol_pod(t, p, &v1);
	ASSERT_EQ(members_pod_change(&t->m, &t->l, &t->set, &v2, &v1), 0);
	ASSERT_EQ(t->m.n, 0);

	/* back, then deleted */
	p->here = true;
	p->opt_out = false;
	mt_pol_pod(t, p, &v2);
	ASSERT_EQ(members_pod_change(&t->m, &t->l, &t->set, &v1, &v2), 0);
	ASSERT_TRUE(t->m.n == 1 && t->m.pods[0].att);
	ASSERT_EQ(members_pod_change(&t->m, &t->l, &t->set, &v2, NULL), 0);
	ASSERT_EQ(t->m.n, 0);
	ASSERT_EQ(t->m.detaches, detaches + 3);
	mt_cgroup(t, p->uid, false);
	t->n = 0;
out:
	log_verbosity = verbosity;
	mt_fini(t);
	free(t);
}

/*
 * A rollout through a list of 10,000 pods (--kubepods-cgroup without
 * --node-name: every Pod of the cluster is listed): 1,000 new pods come,
 * change once (scheduled) and 1,000 old ones go. The profile for
 * callgrind (`valgrind --tool=callgrind build/unit-tests members_rollout`:
 * members_pod_change's inclusive instructions / 3,000 deltas); no timing
 * is asserted here, only the list.
 */
TEST(members_rollout_10k)
{
	enum { MT_BIG = 10000, MT_ROLL = 1000 };
	struct pol_set set = {};
	struct pol_pod *pods = calloc(MT_BIG + MT_ROLL, sizeof(*pods));
	char (*names)[32] = calloc(MT_BIG + MT_ROLL, sizeof(*names));
	char (*uids)[40] = calloc(MT_BIG + MT_ROLL, sizeof(*uids));
	struct pol_namespace ns = {};
	struct pol_kv inj = { "istio-injection", "enabled" };
	struct members m;
	struct loader l = {};
	uint32_t rnd = 10000;

	if (!ASSERT_TRUE(pods && names && uids))
		goto out;
	ns.meta.name = "shop";
	ns.meta.labels = (struct pol_labels){ &inj, 1 };
	set.nss = &ns;
	set.n_nss = 1;
	for (size_t i = 0; i < MT_BIG + MT_ROLL; i++) {
		/* names in random order, as a watch delivers them */
		rnd = rnd * 1103515245u + 12345u;
		snprintf(names[i], sizeof(names[i]), "web-%08x-%05zu", rnd, i);
		snprintf(uids[i], sizeof(uids[i]), "%08x-0000-4000-8000-%012zx", rnd, i);
		pods[i].meta.ns = "shop";
		pods[i].meta.name = names[i];
		pods[i].uid = uids[i];
		pods[i].node_name = i % 2 ? "node-1" : NULL;
	}
	set.pods = pods;
	set.n_pods = MT_BIG;
	members_init(&m, "/nonexistent", NULL, "/nonexistent");
	if (!ASSERT_EQ(members_set(&m, &l, &set), 0))
		goto out;
	for (size_t k = 0; k < MT_ROLL; k++) {
		struct pol_pod *add = &pods[MT_BIG + k], *old = &pods[k * (MT_BIG / MT_ROLL)];
		struct pol_pod scheduled = *add;

		scheduled.node_name = "node-1";
		if (!ASSERT_EQ(members_pod_change(&m, &l, &set, NULL, add), 0) ||
		    !ASSERT_EQ(members_pod_change(&m, &l, &set, add, &scheduled), 0) ||
		    !ASSERT_EQ(members_pod_change(&m, &l, &set, old, NULL), 0))
			break;
	}
	ASSERT_EQ(m.n, MT_BIG);
	for (size_t i = 0; i < m.n; i++)
		if (!ASSERT_TRUE(m.pods[i].member && m.pods[i].state == MEMBER_PENDING))
			break;
	members_close(&m, &l, true);
out:
	free(uids);
	free(names);
	free(pods);
}
