// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bpf/bpf.h>

#include "agent/apply.h"
#include "common/str.h"

#ifndef ENOTSUPP
#define ENOTSUPP 524	/* the kernel's, for "no batch ops on this map" */
#endif

struct apply_cluster {
	uint64_t id;
	uint32_t set_id;
	uint32_t refs;		/* cluster ids of applied services naming it */
	struct sm_cluster_val val;
	struct sm_be_key *keys;
	uint32_t *be_flags;	/* per backend: SM_BE_F_READY as this cluster has it */
	size_t n;
	uint32_t *maglev;
	uint32_t maglev_size;
	char *name;
	char *subset;
	int seen;		/* referenced by the plan being applied */
};

struct apply_svc {
	struct sm_svc_key key;
	struct sm_svc_val val;
	uint64_t *slot_ids;	/* cluster id per route slot */
	size_t n_slots;
	uint64_t *cluster_ids;	/* the plan service's clusters, in order */
	size_t n_clusters;
	char *name;
	char *port_name;
};

struct apply_be {
	struct sm_be_key key;
	uint32_t flags;
	uint32_t refs;		/* applied clusters that list it */
	uint32_t ready_refs;	/* ... of which with SM_BE_F_READY */
	char *pod;
};

struct apply_pod {
	struct sm_pod_key key;
	uint32_t flags;
};

static uint64_t apply_svc_id(const struct sm_svc_key *k)
{
	/* never 0 for a valid key: proto is TCP */
	return dp_meta_svc_id(k);
}

static void apply_cluster_free(struct apply_cluster *c)
{
	if (!c)
		return;
	free(c->keys);
	free(c->be_flags);
	free(c->maglev);
	free(c->name);
	free(c->subset);
	free(c);
}

static void apply_svc_free(struct apply_svc *s)
{
	if (!s)
		return;
	free(s->slot_ids);
	free(s->cluster_ids);
	free(s->name);
	free(s->port_name);
	free(s);
}

static void apply_be_free(struct apply_be *b)
{
	if (!b)
		return;
	free(b->pod);
	free(b);
}

static char *apply_strdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

static int apply_defer_add(struct apply_ctx *a, uint32_t kind, uint32_t id,
			   uint32_t n, uint32_t maglev_size)
{
	if (a->n_defer == a->cap_defer) {
		size_t cap = a->cap_defer ? a->cap_defer * 2 : 64;
		struct apply_defer *d = realloc(a->defer, cap * sizeof(*d));

		if (!d)
			return -ENOMEM;
		a->defer = d;
		a->cap_defer = cap;
	}
	a->defer[a->n_defer++] = (struct apply_defer){
		.due_ns = dp_now_ns() + APPLY_GRACE_NS,
		.kind = kind, .id = id, .n = n, .maglev_size = maglev_size,
	};
	return 0;
}

static void apply_expire(struct apply_ctx *a, uint64_t now_ns);

static void apply_meta_del(struct apply_ctx *a, uint32_t kind, uint64_t id)
{
	struct sm_meta_key k = { .kind = kind, .id = id };

	if (a->maps.meta >= 0)
		bpf_map_delete_elem(a->maps.meta, &k);
}

/*
 * Scan a map whose values (val_size != 0) or keys (val_size == 0) hold a
 * u32 id at id_off: return max id + 1.
 */
static uint32_t apply_scan_max(int fd, size_t key_size, size_t val_size, size_t id_off)
{
	unsigned char key[64], next[64], val[128];
	void *prev = NULL;
	uint32_t max = 0, id;

	if (fd < 0 || key_size > sizeof(key) || val_size > sizeof(val))
		return 1;
	while (!bpf_map_get_next_key(fd, prev, next)) {
		memcpy(key, next, key_size);
		prev = key;
		if (val_size && bpf_map_lookup_elem(fd, key, val))
			continue;
		memcpy(&id, (val_size ? val : key) + id_off, sizeof(id));
		if (id > max)
			max = id;
	}
	return max + 1;
}

int apply_init(struct apply_ctx *a, const struct dp_maps *m, uint32_t cfg_flags)
{
	struct sm_config_val cfg = {};
	uint32_t zero = 0, set_id, id;
	int err;

	memset(a, 0, sizeof(*a));
	a->maps = *m;
	a->cfg_flags = cfg_flags;
	/*
	 * Set ids above every one a previous agent left, in its clusters and
	 * in its sets (a set no cluster names any more still holds entries the
	 * sweep has not reached: a reused id would keep them).
	 */
	a->next_set_id = apply_scan_max(m->cluster, sizeof(__u64), sizeof(struct sm_cluster_val),
					offsetof(struct sm_cluster_val, set_id));
	set_id = apply_scan_max(m->bset, sizeof(struct sm_bset_key), 0,
				offsetof(struct sm_bset_key, set_id));
	if (set_id > a->next_set_id)
		a->next_set_id = set_id;
	a->next_route_id = apply_scan_max(m->svc, sizeof(struct sm_svc_key), sizeof(struct sm_svc_val),
					  offsetof(struct sm_svc_val, route_id));
	/* and route ids above every route table left, named or not */
	id = apply_scan_max(m->route, sizeof(struct sm_route_key), 0,
			    offsetof(struct sm_route_key, route_id));
	if (id > a->next_route_id)
		a->next_route_id = id;
	if (m->config >= 0 && !bpf_map_lookup_elem(m->config, &zero, &cfg))
		a->generation = cfg.generation;
	{
		struct sm_be_key k;

		/* a previous agent's backends may carry ejections to keep */
		a->maps_adopted = m->backend >= 0 && !bpf_map_get_next_key(m->backend, NULL, &k);
	}
	err = u64map_init(&a->clusters, 64);
	err = err ?: u64map_init(&a->svcs, 64);
	err = err ?: u64map_init(&a->backends, 64);
	err = err ?: u64map_init(&a->pods, 16);
	if (err) {
		apply_fini(a);
		return err;
	}
	/* Entries a previous agent left are ours to clean once the first
	 * plan is in place (they keep serving until then). */
	a->sweep_due_ns = 1;
	return 0;
}

static void apply_tables_free(struct u64map *cl, struct u64map *sv,
			      struct u64map *be, struct u64map *pods)
{
	for (size_t i = 0; i < cl->cap; i++)
		if (cl->keys[i])
			apply_cluster_free(cl->vals[i]);
	for (size_t i = 0; i < sv->cap; i++)
		if (sv->keys[i])
			apply_svc_free(sv->vals[i]);
	for (size_t i = 0; i < be->cap; i++)
		if (be->keys[i])
			apply_be_free(be->vals[i]);
	for (size_t i = 0; i < pods->cap; i++)
		if (pods->keys[i])
			free(pods->vals[i]);
	u64map_free(cl);
	u64map_free(sv);
	u64map_free(be);
	u64map_free(pods);
}

static void apply_batch_free(struct apply_batch *b);

void apply_fini(struct apply_ctx *a)
{
	if (a->names) {
		apply_batch_free(a->names);
		free(a->names);
		a->names = NULL;
	}
	apply_tables_free(&a->clusters, &a->svcs, &a->backends, &a->pods);
	u64map_free(&a->sweep.ids);
	a->sweep.ids_ok = false;
	free(a->defer);
	a->defer = NULL;
	a->n_defer = a->cap_defer = 0;
}

static uint32_t apply_map_size(int fd)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len))
		return UINT32_MAX;
	return info.max_entries;
}

static int apply_cluster_same_set(const struct apply_cluster *old, const struct plan_cluster *c)
{
	if (!old || old->n != c->n_backends || old->maglev_size != c->maglev_size)
		return 0;
	for (size_t i = 0; i < c->n_backends; i++)
		if (memcmp(&old->keys[i], &c->backends[i].key, sizeof(struct sm_be_key)))
			return 0;
	return !c->maglev_size ||
	       !memcmp(old->maglev, c->maglev, c->maglev_size * sizeof(uint32_t));
}

static int apply_svc_same_route(const struct apply_svc *old, const struct plan_service *s)
{
	if (!old || old->n_slots != s->n_slots)
		return 0;
	for (size_t k = 0; k < s->n_slots; k++)
		if (old->slot_ids[k] != s->clusters[s->slots[k]].id)
			return 0;
	return 1;
}

/* Slots the applied records use in the versioned maps (sign: +1 or -1). */
static void apply_live_cluster(struct apply_ctx *a, const struct apply_cluster *c, int sign)
{
	a->live_bset += (uint64_t)(sign * (int64_t)c->n);
	a->live_maglev += (uint64_t)(sign * (int64_t)c->maglev_size);
}

static void apply_live_svc(struct apply_ctx *a, const struct apply_svc *s, int sign)
{
	if (s->n_slots > 1)
		a->live_route += (uint64_t)(sign * (int64_t)s->n_slots);
}

/* Slots of one versioned map: live now, in their grace period, and new. */
struct apply_slots {
	uint64_t live, grace, add;
	const char *map, *flag;
	int fd;
};

/*
 * The plan itself fits the maps (plan_check_limits() ran before, against
 * the flags that sized them). What remains: the new versions of backend
 * lists, Maglev tables and route tables are written next to the versions
 * still in use, so live + grace + new must fit too. Checked before the
 * first write, so a change that does not fit leaves everything as it was.
 * -EAGAIN: it fits once the grace period of superseded versions is over.
 * The new versions are those of p's services idx[0..n) (idx NULL: all).
 */
static int apply_check_versions(struct apply_ctx *a, const struct plan *p, const size_t *idx,
				size_t n, char *err, size_t errlen)
{
	struct apply_slots v[] = {
		{ .map = "sm_bset", .flag = "--max-backends", .fd = a->maps.bset },
		{ .map = "sm_maglev", .flag = "--max-maglev-slots", .fd = a->maps.maglev },
		{ .map = "sm_route", .flag = "--max-route-slots", .fd = a->maps.route },
	};
	struct u64map seen = {};
	int ret;

	v[0].live = a->live_bset;
	v[1].live = a->live_maglev;
	v[2].live = a->live_route;
	for (size_t i = 0; i < a->n_defer; i++) {
		v[a->defer[i].kind ? 2 : 0].grace += a->defer[i].n;
		v[1].grace += a->defer[i].maglev_size;
	}
	if ((ret = u64map_init(&seen, 64)))
		return ret;
	for (size_t i = 0; i < n; i++) {
		const struct plan_service *s = &p->svcs[idx ? idx[i] : i];

		for (size_t j = 0; j < s->n_clusters; j++) {
			const struct plan_cluster *c = &s->clusters[j];

			if (u64map_get(&seen, c->id))
				continue;
			if ((ret = u64map_put(&seen, c->id, (void *)c)))
				goto out;
			if (!apply_cluster_same_set(u64map_get(&a->clusters, c->id), c)) {
				v[0].add += c->n_backends;
				v[1].add += c->maglev_size;
			}
		}
		if (s->n_slots > 1 && !apply_svc_same_route(u64map_get(&a->svcs, apply_svc_id(&s->key)), s))
			v[2].add += s->n_slots;
	}
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		uint32_t cap = apply_map_size(v[i].fd);

		if (!v[i].add || v[i].live + v[i].grace + v[i].add <= cap)
			continue;
		ret = v[i].live + v[i].add <= cap ? -EAGAIN : -E2BIG;
		snprintf(err, errlen, "%s: the change writes %llu new slots next to %llu in use and %llu "
			 "kept for connects in flight, over the %u it holds (%s)%s", v[i].map,
			 (unsigned long long)v[i].add, (unsigned long long)v[i].live,
			 (unsigned long long)v[i].grace, cap, v[i].flag,
			 ret == -EAGAIN ? "; it fits once superseded versions expire (1 s)" : "");
		goto out;
	}
out:
	u64map_free(&seen);
	return ret;
}

#define APPLY_UPDATE(fd, k, v, what) do {					\
	if (bpf_map_update_elem((fd), (k), (v), BPF_ANY)) {			\
		ret = -errno;							\
		snprintf(err, errlen, "updating %s: %s", (what), strerror(errno)); \
		goto fail;							\
	}									\
	a->last_writes++;							\
} while (0)

/*
 * Updates of one map, queued and written with BPF_MAP_UPDATE_BATCH: one
 * syscall per flush instead of one per entry (a 10k-service plan writes
 * ~250k entries). Kernels or map types without batch support fall back to
 * one update per entry. Order between maps is the caller's: flush a map
 * before writing entries of another map that point into it.
 */
struct apply_batch {
	int fd;
	uint32_t key_size, val_size;
	const char *what;
	bool count;		/* counts in last_writes (meta entries do not) */
	unsigned char *keys, *vals;
	size_t n, cap;
};

#define APPLY_BATCH(f, k, v, w, c)							{ .fd = (f), .key_size = sizeof(k), .val_size = sizeof(v), .what = (w), .count = (c) }

static int apply_batch_add(struct apply_batch *b, const void *key, const void *val)
{
	if (b->fd < 0)
		return 0;
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 256;
		unsigned char *k = realloc(b->keys, cap * b->key_size);

		if (!k)
			return -ENOMEM;
		b->keys = k;
		k = realloc(b->vals, cap * b->val_size);
		if (!k)
			return -ENOMEM;
		b->vals = k;
		b->cap = cap;
	}
	memcpy(b->keys + b->n * b->key_size, key, b->key_size);
	memcpy(b->vals + b->n * b->val_size, val, b->val_size);
	b->n++;
	return 0;
}

static int apply_batch_flush(struct apply_ctx *a, struct apply_batch *b, char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = BPF_ANY);
	size_t done = 0;
	int ret;

	while (done < b->n) {
		__u32 count = (__u32)(b->n - done);

		if (bpf_map_update_batch(b->fd, b->keys + done * b->key_size,
					 b->vals + done * b->val_size, &count, &opts) == 0) {
			done += count;
			continue;
		}
		if (count == 0 && (errno == EINVAL || errno == ENOTSUPP || errno == EOPNOTSUPP)) {
			/* no batch ops here: one entry at a time */
			for (; done < b->n; done++)
				if (bpf_map_update_elem(b->fd, b->keys + done * b->key_size,
							b->vals + done * b->val_size, BPF_ANY))
					break;
			if (done == b->n)
				break;
		} else {
			done += count;
		}
		ret = -errno;
		snprintf(err, errlen, "updating %s: %s", b->what, strerror(-ret));
		b->n = 0;
		return ret;
	}
	if (b->count)
		a->last_writes += (uint32_t)b->n;
	b->n = 0;
	return 0;
}

static void apply_batch_free(struct apply_batch *b)
{
	free(b->keys);
	free(b->vals);
	b->keys = b->vals = NULL;
	b->n = b->cap = 0;
}

static int apply_meta_queue(struct apply_batch *b, uint32_t kind, uint64_t id,
			    const char *name, const char *extra)
{
	struct sm_meta_key k = { .kind = kind, .id = id };
	struct sm_meta_val v;

	memset(&v, 0, sizeof(v));
	if (name)
		snprintf(v.name, sizeof(v.name), "%s", name);
	if (extra)
		snprintf(v.extra, sizeof(v.extra), "%s", extra);
	return apply_batch_add(b, &k, &v);
}

/* Queue a new version of a cluster's backend list; returns the set id. */
static int apply_queue_set(struct apply_ctx *a, const struct plan_cluster *c,
			   struct apply_batch *bset, struct apply_batch *maglev,
			   uint32_t *set_id)
{
	uint32_t id = a->next_set_id++;
	int ret = 0;

	for (uint32_t i = 0; i < c->n_backends && !ret; i++) {
		struct sm_bset_key k = { .set_id = id, .idx = i };

		ret = apply_batch_add(bset, &k, &c->backends[i].key);
	}
	for (uint32_t i = 0; i < c->maglev_size && !ret; i++) {
		struct sm_bset_key k = { .set_id = id, .idx = i };
		struct sm_maglev_val v = { .idx = c->maglev[i] };

		ret = apply_batch_add(maglev, &k, &v);
	}
	*set_id = id;
	return ret;
}

/* The batches of one apply, in the order they are flushed. */
struct apply_batches {
	struct apply_batch be, bset, maglev, cl, route, svc, meta;
};

static void apply_batches_init(struct apply_ctx *a, struct apply_batches *b)
{
	*b = (struct apply_batches){
		.be = APPLY_BATCH(a->maps.backend, struct sm_be_key, struct sm_backend_val,
				  "sm_backend", true),
		.bset = APPLY_BATCH(a->maps.bset, struct sm_bset_key, struct sm_be_key,
				    "sm_bset", true),
		.maglev = APPLY_BATCH(a->maps.maglev, struct sm_bset_key, struct sm_maglev_val,
				      "sm_maglev", true),
		.cl = APPLY_BATCH(a->maps.cluster, __u64, struct sm_cluster_val, "sm_cluster", true),
		.route = APPLY_BATCH(a->maps.route, struct sm_route_key, struct sm_route_val,
				     "sm_route", true),
		.svc = APPLY_BATCH(a->maps.svc, struct sm_svc_key, struct sm_svc_val, "sm_svc", true),
		.meta = APPLY_BATCH(a->maps.meta, struct sm_meta_key, struct sm_meta_val,
				    "sm_meta", false),
	};
}

static void apply_batches_free(struct apply_batches *b)
{
	struct apply_batch *all[] = { &b->be, &b->bset, &b->maglev, &b->cl, &b->route, &b->svc, &b->meta };

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		apply_batch_free(all[i]);
}

/* Queue the sm_backend entry of b (an ejection made by the CLI or outlier detection stays). */
static int apply_queue_backend(struct apply_ctx *a, struct apply_batches *q,
			       const struct apply_be *b, bool lookup)
{
	struct sm_backend_val v = {};

	if (lookup)
		bpf_map_lookup_elem(a->maps.backend, &b->key, &v);
	v.flags = (v.flags & SM_BE_F_EJECTED) | b->flags;
	v.pad = 0;
	return apply_batch_add(&q->be, &b->key, &v) ?:
	       apply_meta_queue(&q->meta, SM_META_BACKEND, dp_meta_be_id(&b->key), b->pod, NULL);
}

/*
 * The applied record of plan cluster c, with its backend list version: the
 * old one when the list is the same, else a new version queued. The
 * cluster entry and its name are queued when they change.
 */
static int apply_cluster_stage(struct apply_ctx *a, struct apply_batches *q,
			       const struct plan_cluster *c, const struct apply_cluster *old,
			       struct apply_cluster **out)
{
	struct apply_cluster *nc = calloc(1, sizeof(*nc));
	struct sm_cluster_val v = {
		.n_backends = (uint32_t)c->n_backends,
		.maglev_size = c->maglev_size,
		.max_conns = c->max_conns,
		.lb = c->lb,
		.min_health_pct = c->min_health_pct,
	};
	int ret = 0;

	*out = nc;
	if (!nc)
		return -ENOMEM;
	nc->id = c->id;
	nc->n = c->n_backends;
	nc->maglev_size = c->maglev_size;
	nc->name = apply_strdup(c->name);
	nc->subset = apply_strdup(c->subset);
	nc->keys = calloc(c->n_backends + 1, sizeof(*nc->keys));
	nc->be_flags = calloc(c->n_backends + 1, sizeof(*nc->be_flags));
	nc->maglev = calloc(c->maglev_size + 1, sizeof(*nc->maglev));
	if (!nc->keys || !nc->be_flags || !nc->maglev)
		return -ENOMEM;
	for (size_t b = 0; b < c->n_backends; b++) {
		nc->keys[b] = c->backends[b].key;
		nc->be_flags[b] = c->backends[b].flags & SM_BE_F_READY;
	}
	if (c->maglev_size)
		memcpy(nc->maglev, c->maglev, c->maglev_size * sizeof(uint32_t));
	if (apply_cluster_same_set(old, c))
		v.set_id = old->set_id;
	else if ((ret = apply_queue_set(a, c, &q->bset, &q->maglev, &v.set_id)))
		return ret;
	nc->set_id = v.set_id;
	nc->val = v;
	if (!old || memcmp(&old->val, &v, sizeof(v)))
		ret = apply_batch_add(&q->cl, &c->id, &v);
	if (!ret && (!old || !sm_streq(old->name, nc->name) ||
		     !sm_streq(old->subset, nc->subset)))
		ret = apply_meta_queue(&q->meta, SM_META_CLUSTER, c->id, c->name, c->subset);
	return ret;
}

/*
 * The applied record of plan service s (with clusters), with its weighted
 * route version (old one when the same, else queued); the service entry
 * and its name are queued when they change, a superseded route deferred.
 */
static int apply_svc_stage(struct apply_ctx *a, struct apply_batches *q,
			   const struct plan_service *s, const struct apply_svc *old,
			   struct apply_svc **out)
{
	struct apply_svc *ns = calloc(1, sizeof(*ns));
	struct sm_svc_val v = {};
	int ret;

	*out = ns;
	if (!ns)
		return -ENOMEM;
	ns->key = s->key;
	ns->name = malloc(strlen(s->ns) + strlen(s->name) + 2);
	ns->cluster_ids = calloc(s->n_clusters, sizeof(uint64_t));
	if (!ns->name || !ns->cluster_ids)
		return -ENOMEM;
	sprintf(ns->name, "%s/%s", s->ns, s->name);
	ns->port_name = apply_strdup(s->port_name);
	ns->n_clusters = s->n_clusters;
	for (size_t k = 0; k < s->n_clusters; k++)
		ns->cluster_ids[k] = s->clusters[k].id;
	if (s->n_slots > 1) {
		ns->slot_ids = calloc(s->n_slots, sizeof(uint64_t));
		if (!ns->slot_ids)
			return -ENOMEM;
		ns->n_slots = s->n_slots;
		for (size_t k = 0; k < s->n_slots; k++)
			ns->slot_ids[k] = s->clusters[s->slots[k]].id;
		v.route_slots = (uint16_t)s->n_slots;
		v.cluster_id = s->clusters[0].id;
		if (apply_svc_same_route(old, s)) {
			v.route_id = old->val.route_id;
		} else {
			v.route_id = a->next_route_id++;
			for (uint32_t k = 0; k < s->n_slots; k++) {
				struct sm_route_key rk = { .route_id = v.route_id, .slot = k };
				struct sm_route_val rv = { .cluster_id = ns->slot_ids[k] };

				if ((ret = apply_batch_add(&q->route, &rk, &rv)))
					return ret;
			}
		}
	} else {
		v.cluster_id = s->clusters[s->n_slots == 1 ? s->slots[0] : 0].id;
	}
	v.flags = s->flags;
	ns->val = v;
	if (!old || memcmp(&old->val, &v, sizeof(v))) {
		if ((ret = apply_batch_add(&q->svc, &s->key, &v)))
			return ret;
		if (old && old->n_slots > 1 && old->val.route_id != v.route_id)
			apply_defer_add(a, 1, old->val.route_id, (uint32_t)old->n_slots, 0);
	}
	if (!old || !sm_streq(old->name, ns->name) || !sm_streq(old->port_name, ns->port_name))
		return apply_meta_queue(&q->meta, SM_META_SVC, dp_meta_svc_id(&s->key),
					ns->name, ns->port_name);
	return 0;
}

/* Flush in dependency order: what an entry names is written before it. */
static int apply_batches_flush(struct apply_ctx *a, struct apply_batches *q, char *err,
			       size_t errlen)
{
	int ret;

	if ((ret = apply_batch_flush(a, &q->be, err, errlen)) ||
	    (ret = apply_batch_flush(a, &q->bset, err, errlen)) ||
	    (ret = apply_batch_flush(a, &q->maglev, err, errlen)) ||
	    (ret = apply_batch_flush(a, &q->cl, err, errlen)) ||
	    (ret = apply_batch_flush(a, &q->route, err, errlen)) ||
	    (ret = apply_batch_flush(a, &q->svc, err, errlen)))
		return ret;
	if (a->defer_names && !a->names && (a->names = malloc(sizeof(*a->names)))) {
		/* written once the data path serves: keys are disjoint from
		 * this apply's deletes (names of what the plan no longer has) */
		*a->names = q->meta;
		q->meta.keys = q->meta.vals = NULL;
		q->meta.n = q->meta.cap = 0;
	}
	apply_batch_flush(a, &q->meta, err, errlen);	/* names: best effort */
	err[0] = '\0';
	return 0;
}

void apply_flush_names(struct apply_ctx *a)
{
	char err[128];

	if (!a->names)
		return;
	apply_batch_flush(a, a->names, err, sizeof(err));
	apply_batch_free(a->names);
	free(a->names);
	a->names = NULL;
}

static void apply_svc_delete(struct apply_ctx *a, const struct apply_svc *old)
{
	bpf_map_delete_elem(a->maps.svc, &old->key);
	bpf_map_delete_elem(a->maps.svc_stats, &old->key);
	apply_meta_del(a, SM_META_SVC, dp_meta_svc_id(&old->key));
	if (old->n_slots > 1)
		apply_defer_add(a, 1, old->val.route_id, (uint32_t)old->n_slots, 0);
	a->last_deletes++;
}

static void apply_cluster_delete(struct apply_ctx *a, const struct apply_cluster *old)
{
	bpf_map_delete_elem(a->maps.cluster, &old->id);
	bpf_map_delete_elem(a->maps.rr, &old->id);
	apply_meta_del(a, SM_META_CLUSTER, old->id);
	apply_defer_add(a, 0, old->set_id, (uint32_t)old->n, old->maglev_size);
	a->last_deletes++;
}

static void apply_backend_delete(struct apply_ctx *a, const struct apply_be *old)
{
	struct sm_be_active_val act = {};

	bpf_map_delete_elem(a->maps.backend, &old->key);
	bpf_map_delete_elem(a->maps.be_stats, &old->key);
	apply_meta_del(a, SM_META_BACKEND, dp_meta_be_id(&old->key));
	/* live connections still give their count back: keep it */
	if (!bpf_map_lookup_elem(a->maps.be_active, &old->key, &act) && act.active <= 0)
		bpf_map_delete_elem(a->maps.be_active, &old->key);
	a->last_deletes++;
}

static void apply_write_config(struct apply_ctx *a)
{
	struct sm_config_val cfg = {
		.flags = a->cfg_flags, .generation = ++a->generation,
		.l7_addr = a->l7_addr, .l7_port = a->l7_port,
	};
	uint32_t zero = 0;

	if (a->maps.config >= 0)
		bpf_map_update_elem(a->maps.config, &zero, &cfg, BPF_ANY);
}

/*
 * After an apply failed the maps hold whole clusters from either plan.
 * Forget what we believe was applied so the next apply rewrites
 * everything, and let the sweep remove what neither plan claims. A sweep
 * that is running stops: with the tables empty it would claim nothing and
 * delete the data path that serves. It starts again, from the first map,
 * after the next apply that succeeds (the failed one may have written
 * behind where it stood).
 */
static void apply_forget(struct apply_ctx *a)
{
	apply_tables_free(&a->clusters, &a->svcs, &a->backends, &a->pods);
	u64map_init(&a->clusters, 64);
	u64map_init(&a->svcs, 64);
	u64map_init(&a->backends, 64);
	u64map_init(&a->pods, 16);
	a->live_bset = a->live_maglev = a->live_route = 0;
	a->sweep.ids_ok = false;
	a->sweep.at = 0;
	a->sweep.has_key = a->sweep.doomed = false;
	a->sweep_due_ns = 1;
}

int apply_plan(struct apply_ctx *a, const struct plan *p, char *err, size_t errlen)
{
	struct u64map ncl = {}, nsv = {}, nbe = {}, npod = {};
	struct apply_batches q;
	size_t n_cl_total = 0, n_be_total = 0;
	uint64_t t0 = dp_now_ns();
	int ret;

	apply_flush_names(a);	/* an earlier apply's, before this one's deletes */
	a->last_writes = a->last_deletes = 0;
	err[0] = '\0';
	apply_expire(a, t0);
	a->sweep.ids_ok = false;	/* the tables change */
	apply_batches_init(a, &q);

	for (size_t i = 0; i < p->n_svcs; i++) {
		n_cl_total += p->svcs[i].n_clusters;
		for (size_t j = 0; j < p->svcs[i].n_clusters; j++)
			n_be_total += p->svcs[i].clusters[j].n_backends;
	}
	if (p->n_pods > apply_map_size(a->maps.pod)) {
		snprintf(err, errlen, "%zu pods opt out of the redirect; sm_pod holds %u",
			 p->n_pods, apply_map_size(a->maps.pod));
		return -E2BIG;
	}
	if ((ret = apply_check_versions(a, p, NULL, p->n_svcs, err, errlen)))
		return ret;

	if ((ret = u64map_init(&ncl, n_cl_total)) || (ret = u64map_init(&nsv, p->n_svcs)) ||
	    (ret = u64map_init(&nbe, n_be_total)) || (ret = u64map_init(&npod, p->n_pods))) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}

	/* 1. Clusters (new backend list versions queued) and their backends. */
	for (size_t i = 0; i < p->n_svcs; i++) {
		for (size_t j = 0; j < p->svcs[i].n_clusters; j++) {
			const struct plan_cluster *c = &p->svcs[i].clusters[j];
			struct apply_cluster *nc;

			if (u64map_get(&ncl, c->id))
				continue;	/* shared by several services */
			ret = apply_cluster_stage(a, &q, c, u64map_get(&a->clusters, c->id), &nc);
			if (!ret && u64map_put(&ncl, c->id, nc))
				ret = -ENOMEM;
			if (ret) {
				if (!u64map_get(&ncl, c->id))
					apply_cluster_free(nc);
				goto fail;
			}
			for (size_t b = 0; b < c->n_backends; b++) {
				const struct plan_backend *pb = &c->backends[b];
				uint64_t id = dp_meta_be_id(&pb->key);
				struct apply_be *nb = u64map_get(&nbe, id);

				if (!nb) {
					nb = calloc(1, sizeof(*nb));
					if (!nb || u64map_put(&nbe, id, nb)) {
						free(nb);
						ret = -ENOMEM;
						goto fail;
					}
					nb->key = pb->key;
					nb->pod = apply_strdup(pb->pod);
				}
				nb->refs++;
				if (pb->flags & SM_BE_F_READY) {
					nb->ready_refs++;
					nb->flags = SM_BE_F_READY;
				}
			}
		}
	}
	/* Backend state first, so a new list never names an unknown one. */
	for (size_t i = 0; i < nbe.cap; i++) {
		struct apply_be *nb = nbe.vals[i], *old;

		if (!nbe.keys[i])
			continue;
		old = u64map_get(&a->backends, nbe.keys[i]);
		if (old && old->flags == nb->flags && sm_streq(old->pod, nb->pod))
			continue;
		/* a backend we did not write ourselves may come from a previous agent's maps */
		if ((ret = apply_queue_backend(a, &q, nb, old || a->maps_adopted)))
			goto fail;
	}
	ret = apply_batch_flush(a, &q.be, err, errlen);
	if (ret)
		goto fail;

	/* 2. Pods with flags (redirect opt-out). */
	for (size_t i = 0; i < p->n_pods; i++) {
		struct apply_pod *np = calloc(1, sizeof(*np)), *old;
		struct sm_pod_val v = { .flags = p->pods[i].flags };
		uint64_t id = (uint64_t)p->pods[i].key.addr | (1ull << 32);

		if (!np || u64map_put(&npod, id, np)) {
			free(np);
			ret = -ENOMEM;
			goto fail;
		}
		np->key = p->pods[i].key;
		np->flags = p->pods[i].flags;
		old = u64map_get(&a->pods, id);
		if (!old || old->flags != np->flags)
			APPLY_UPDATE(a->maps.pod, &np->key, &v, "sm_pod");
	}

	/* 3. Services: weighted route version first, then switch. */
	for (size_t i = 0; i < p->n_svcs; i++) {
		const struct plan_service *s = &p->svcs[i];
		uint64_t id = apply_svc_id(&s->key);
		struct apply_svc *ns;

		if (!s->n_clusters)
			continue;
		ret = apply_svc_stage(a, &q, s, u64map_get(&a->svcs, id), &ns);
		if (!ret && u64map_put(&nsv, id, ns))
			ret = -ENOMEM;
		if (ret) {
			if (!u64map_get(&nsv, id))
				apply_svc_free(ns);
			goto fail;
		}
		for (size_t k = 0; k < s->n_clusters; k++)
			((struct apply_cluster *)u64map_get(&ncl, s->clusters[k].id))->refs++;
	}
	if ((ret = apply_batches_flush(a, &q, err, errlen)))
		goto fail;

	/* 4. Remove what the plan no longer has, in reverse order. */
	for (size_t i = 0; i < a->svcs.cap; i++)
		if (a->svcs.keys[i] && !u64map_get(&nsv, a->svcs.keys[i]))
			apply_svc_delete(a, a->svcs.vals[i]);
	for (size_t i = 0; i < a->clusters.cap; i++) {
		struct apply_cluster *old = a->clusters.vals[i];
		struct apply_cluster *nc;

		if (!a->clusters.keys[i])
			continue;
		nc = u64map_get(&ncl, a->clusters.keys[i]);
		if (!nc)
			apply_cluster_delete(a, old);
		else if (nc->set_id != old->set_id)
			apply_defer_add(a, 0, old->set_id, (uint32_t)old->n, old->maglev_size);
	}
	for (size_t i = 0; i < a->backends.cap; i++)
		if (a->backends.keys[i] && !u64map_get(&nbe, a->backends.keys[i]))
			apply_backend_delete(a, a->backends.vals[i]);
	for (size_t i = 0; i < a->pods.cap; i++) {
		struct apply_pod *old = a->pods.vals[i];

		if (!a->pods.keys[i] || u64map_get(&npod, a->pods.keys[i]))
			continue;
		bpf_map_delete_elem(a->maps.pod, &old->key);
		a->last_deletes++;
	}

	apply_tables_free(&a->clusters, &a->svcs, &a->backends, &a->pods);
	a->clusters = ncl;
	a->svcs = nsv;
	a->backends = nbe;
	a->pods = npod;
	a->live_bset = a->live_maglev = a->live_route = 0;
	for (size_t i = 0; i < a->clusters.cap; i++)
		if (a->clusters.keys[i])
			apply_live_cluster(a, a->clusters.vals[i], 1);
	for (size_t i = 0; i < a->svcs.cap; i++)
		if (a->svcs.keys[i])
			apply_live_svc(a, a->svcs.vals[i], 1);

	apply_write_config(a);
	if (a->sweep_due_ns == 1)
		a->sweep_due_ns = dp_now_ns() + APPLY_GRACE_NS;
	a->last_apply_ns = dp_now_ns() - t0;
	apply_batches_free(&q);
	return 0;
fail:
	apply_batches_free(&q);
	if (!err[0])
		snprintf(err, errlen, "%s", strerror(-ret));
	apply_tables_free(&ncl, &nsv, &nbe, &npod);
	apply_forget(a);
	return ret;
}

/* ---- incremental: some services' clusters changed ---- */

/* Write b's state when its readiness (ready in any cluster that lists it) changed. */
static int apply_be_sync(struct apply_ctx *a, struct apply_batches *q, struct apply_be *b,
			 bool fresh)
{
	uint32_t want = b->ready_refs ? SM_BE_F_READY : 0;

	if (!b->refs || (!fresh && b->flags == want))
		return 0;	/* unlisted: deleted once the lists switched */
	b->flags = want;
	return apply_queue_backend(a, q, b, true);
}

/* One membership of a backend in a cluster more (flags: as that cluster has it). */
static int apply_be_ref(struct apply_ctx *a, struct apply_batches *q, const struct sm_be_key *key,
			uint32_t flags, const char *pod)
{
	uint64_t id = dp_meta_be_id(key);
	struct apply_be *b = u64map_get(&a->backends, id);
	bool fresh = !b;

	if (fresh) {
		b = calloc(1, sizeof(*b));
		if (!b || u64map_put(&a->backends, id, b)) {
			free(b);
			return -ENOMEM;
		}
		b->key = *key;
		b->pod = apply_strdup(pod);
	}
	b->refs++;
	b->ready_refs += !!(flags & SM_BE_F_READY);
	return apply_be_sync(a, q, b, fresh);
}

/* One membership less; a backend no cluster lists goes into gone. */
static int apply_be_unref(struct apply_ctx *a, struct apply_batches *q, const struct sm_be_key *key,
			  uint32_t flags, struct u64map *gone)
{
	uint64_t id = dp_meta_be_id(key);
	struct apply_be *b = u64map_get(&a->backends, id);

	if (!b || !b->refs || ((flags & SM_BE_F_READY) && !b->ready_refs))
		return -ESTALE;
	b->refs--;
	b->ready_refs -= !!(flags & SM_BE_F_READY);
	if (!b->refs)
		return u64map_put(gone, id, b);
	return apply_be_sync(a, q, b, false);
}

/* Memberships of the backends of nc instead of old's (old NULL: none). */
static int apply_be_diff(struct apply_ctx *a, struct apply_batches *q,
			 const struct apply_cluster *old, const struct apply_cluster *nc,
			 const struct plan_cluster *c, struct u64map *gone)
{
	int ret = 0;

	/* refs first, then unrefs: a backend that stays never drops to 0 */
	for (size_t b = 0; b < nc->n && !ret; b++)
		ret = apply_be_ref(a, q, &nc->keys[b], nc->be_flags[b], c->backends[b].pod);
	for (size_t b = 0; old && b < old->n && !ret; b++)
		ret = apply_be_unref(a, q, &old->keys[b], old->be_flags[b], gone);
	return ret;
}

/*
 * Entries the change adds next to those applied must fit: service ports
 * (sm_svc), clusters (sm_cluster) and backends (sm_backend) no applied
 * record has yet. Counted before the first write, as apply_check_versions.
 */
static int apply_check_new(struct apply_ctx *a, const struct plan *p, const size_t *idx, size_t n,
			   char *err, size_t errlen)
{
	size_t n_svc = 0, n_cl = 0, n_be = 0;
	struct u64map seen;
	int ret = u64map_init(&seen, 16);

	for (size_t i = 0; i < n && !ret; i++) {
		const struct plan_service *s = &p->svcs[idx[i]];

		n_svc += !u64map_get(&a->svcs, apply_svc_id(&s->key));
		for (size_t j = 0; j < s->n_clusters && !ret; j++) {
			const struct plan_cluster *c = &s->clusters[j];

			if (u64map_get(&seen, c->id))
				continue;
			if ((ret = u64map_put(&seen, c->id, (void *)c)))
				break;
			n_cl += !u64map_get(&a->clusters, c->id);
			for (size_t b = 0; b < c->n_backends; b++)
				n_be += !u64map_get(&a->backends, dp_meta_be_id(&c->backends[b].key));
		}
	}
	u64map_free(&seen);
	if (ret)
		return ret;
	/* (a backend in two new clusters counts twice: a bound, on the safe side) */
	if (a->svcs.n + n_svc > apply_map_size(a->maps.svc))
		snprintf(err, errlen, "sm_svc: %zu new service ports next to %zu do not fit (--max-services)",
			 n_svc, a->svcs.n);
	else if (a->clusters.n + n_cl > apply_map_size(a->maps.cluster))
		snprintf(err, errlen, "sm_cluster: %zu new clusters next to %zu do not fit (--max-clusters)",
			 n_cl, a->clusters.n);
	else if (a->backends.n + n_be > apply_map_size(a->maps.backend))
		snprintf(err, errlen, "sm_backend: %zu new backends next to %zu do not fit (--max-backends)",
			 n_be, a->backends.n);
	else
		return 0;
	return -E2BIG;
}

/* A service port the plan no longer has: its entry goes, its clusters lose a reference. */
static int apply_svc_gone(struct apply_ctx *a, const struct sm_svc_key *key, struct u64map *gone_cl)
{
	uint64_t id = apply_svc_id(key);
	struct apply_svc *old = u64map_get(&a->svcs, id);
	int ret = 0;

	if (!old)
		return 0;	/* never applied (it had no cluster) */
	apply_svc_delete(a, old);
	for (size_t k = 0; k < old->n_clusters && !ret; k++) {
		struct apply_cluster *c = u64map_get(&a->clusters, old->cluster_ids[k]);

		if (c && --c->refs == 0)
			ret = u64map_put(gone_cl, c->id, c);
	}
	u64map_del(&a->svcs, id);
	apply_live_svc(a, old, -1);
	apply_svc_free(old);
	return ret;
}

int apply_services(struct apply_ctx *a, const struct plan *p, const size_t *idx, size_t n,
		   const struct sm_svc_key *gone, size_t n_gone, char *err, size_t errlen)
{
	struct u64map seen = {}, gone_be = {}, gone_cl = {};
	struct apply_batches q;
	uint64_t t0 = dp_now_ns();
	int ret;

	apply_flush_names(a);	/* an earlier apply's, before this one's deletes */
	a->last_writes = a->last_deletes = 0;
	err[0] = '\0';
	apply_expire(a, t0);
	a->sweep.ids_ok = false;	/* the tables change */
	apply_batches_init(a, &q);
	for (size_t i = 0; i < n; i++)
		if (!p->svcs[idx[i]].n_clusters)
			return -ESTALE;	/* not programmed (apply_plan skips it) */
	if ((ret = apply_check_versions(a, p, idx, n, err, errlen)))
		return ret;
	if ((ret = u64map_init(&seen, 16)) || (ret = u64map_init(&gone_be, 16)) ||
	    (ret = u64map_init(&gone_cl, 16)))
		goto out;
	if ((ret = apply_check_new(a, p, idx, n, err, errlen)))
		goto out;

	/*
	 * From here on a failure leaves the maps as a mix (each entry whole):
	 * the tables are forgotten and the next apply rewrites everything.
	 * 1. Clusters: new versions of changed backend lists, backend state.
	 */
	for (size_t i = 0; i < n; i++) {
		const struct plan_service *s = &p->svcs[idx[i]];

		for (size_t j = 0; j < s->n_clusters; j++) {
			const struct plan_cluster *c = &s->clusters[j];
			struct apply_cluster *old = u64map_get(&a->clusters, c->id), *nc = NULL;

			if (u64map_get(&seen, c->id))
				continue;
			if ((ret = u64map_put(&seen, c->id, (void *)c)) ||
			    (ret = apply_cluster_stage(a, &q, c, old, &nc))) {
				apply_cluster_free(nc);
				goto fail;
			}
			if (old && !memcmp(&old->val, &nc->val, sizeof(nc->val)) &&
			    !memcmp(old->be_flags, nc->be_flags, nc->n * sizeof(*nc->be_flags))) {
				apply_cluster_free(nc);	/* same list, same readiness */
				continue;
			}
			if ((ret = apply_be_diff(a, &q, old, nc, c, &gone_be))) {
				apply_cluster_free(nc);
				goto fail;
			}
			nc->refs = old ? old->refs : 0;
			if ((ret = u64map_put(&a->clusters, c->id, nc))) {
				apply_cluster_free(nc);
				goto fail;
			}
			if (old && old->set_id != nc->set_id)
				apply_defer_add(a, 0, old->set_id, (uint32_t)old->n, old->maglev_size);
			if (old)
				apply_live_cluster(a, old, -1);
			apply_live_cluster(a, nc, 1);
			apply_cluster_free(old);
		}
	}

	/* 2. Services, and which clusters they name. */
	for (size_t i = 0; i < n; i++) {
		const struct plan_service *s = &p->svcs[idx[i]];
		uint64_t id = apply_svc_id(&s->key);
		struct apply_svc *old = u64map_get(&a->svcs, id), *ns;

		if ((ret = apply_svc_stage(a, &q, s, old, &ns))) {
			apply_svc_free(ns);
			goto fail;
		}
		for (size_t k = 0; k < ns->n_clusters; k++)
			((struct apply_cluster *)u64map_get(&a->clusters, ns->cluster_ids[k]))->refs++;
		for (size_t k = 0; old && k < old->n_clusters; k++) {
			struct apply_cluster *c = u64map_get(&a->clusters, old->cluster_ids[k]);

			if (c && --c->refs == 0 && (ret = u64map_put(&gone_cl, c->id, c)))
				goto fail;
		}
		if ((ret = u64map_put(&a->svcs, id, ns))) {
			apply_svc_free(ns);
			goto fail;
		}
		if (old)
			apply_live_svc(a, old, -1);
		apply_live_svc(a, ns, 1);
		apply_svc_free(old);
	}
	if ((ret = apply_batches_flush(a, &q, err, errlen)))
		goto fail;
	/* service ports gone: once the new entries are in, as apply_plan */
	for (size_t i = 0; i < n_gone; i++)
		if ((ret = apply_svc_gone(a, &gone[i], &gone_cl)))
			goto fail;

	/* 3. What no service names any more: clusters, then their backends. */
	for (size_t i = 0; i < gone_cl.cap; i++) {
		struct apply_cluster *c = gone_cl.vals[i];

		if (!gone_cl.keys[i] || c->refs)
			continue;
		for (size_t b = 0; b < c->n && !ret; b++)
			ret = apply_be_unref(a, &q, &c->keys[b], c->be_flags[b], &gone_be);
		apply_cluster_delete(a, c);
		apply_live_cluster(a, c, -1);
		u64map_del(&a->clusters, c->id);
		apply_cluster_free(c);
		if (ret)
			goto fail;
	}
	if ((ret = apply_batch_flush(a, &q.be, err, errlen)))
		goto fail;
	for (size_t i = 0; i < gone_be.cap; i++) {
		struct apply_be *b = gone_be.vals[i];

		if (!gone_be.keys[i] || b->refs)
			continue;
		apply_backend_delete(a, b);
		u64map_del(&a->backends, gone_be.keys[i]);
		apply_be_free(b);
	}
	apply_write_config(a);
	a->last_apply_ns = dp_now_ns() - t0;
	goto out;
fail:
	if (!err[0])
		snprintf(err, errlen, "%s", strerror(-ret));
	apply_forget(a);
out:
	u64map_free(&seen);
	u64map_free(&gone_be);
	u64map_free(&gone_cl);
	apply_batches_free(&q);
	return ret;
}

static void apply_delete_defer(struct apply_ctx *a, const struct apply_defer *d)
{
	if (d->kind == 0) {
		for (uint32_t i = 0; i < d->n; i++) {
			struct sm_bset_key k = { .set_id = d->id, .idx = i };

			bpf_map_delete_elem(a->maps.bset, &k);
		}
		for (uint32_t i = 0; i < d->maglev_size; i++) {
			struct sm_bset_key k = { .set_id = d->id, .idx = i };

			bpf_map_delete_elem(a->maps.maglev, &k);
		}
	} else {
		for (uint32_t i = 0; i < d->n; i++) {
			struct sm_route_key k = { .route_id = d->id, .slot = i };

			bpf_map_delete_elem(a->maps.route, &k);
		}
	}
}

int apply_pods(struct apply_ctx *a, const struct plan *p, const uint32_t *addrs, size_t n,
	       char *err, size_t errlen)
{
	size_t more = 0;
	int ret = 0;

	err[0] = '\0';
	for (size_t i = 0; i < n; i++)
		more += plan_pod_find(p, addrs[i]) &&
			!u64map_get(&a->pods, (uint64_t)addrs[i] | (1ull << 32));
	if (a->pods.n + more > apply_map_size(a->maps.pod)) {
		snprintf(err, errlen, "%zu pods opt out of the redirect; sm_pod holds %u",
			 a->pods.n + more, apply_map_size(a->maps.pod));
		return -E2BIG;
	}
	for (size_t i = 0; i < n; i++) {
		const struct plan_pod *pp = plan_pod_find(p, addrs[i]);
		uint64_t id = (uint64_t)addrs[i] | (1ull << 32);
		struct apply_pod *old = u64map_get(&a->pods, id);
		struct sm_pod_val v = {};

		if (!pp) {
			if (!old)
				continue;	/* (an address twice, or never flagged) */
			bpf_map_delete_elem(a->maps.pod, &old->key);
			a->last_deletes++;
			free(u64map_del(&a->pods, id));
			continue;
		}
		if (old && old->flags == pp->flags)
			continue;
		if (!old) {
			if (!(old = calloc(1, sizeof(*old))) || u64map_put(&a->pods, id, old)) {
				free(old);
				ret = -ENOMEM;
				goto fail;
			}
			old->key = pp->key;
		}
		old->flags = v.flags = pp->flags;
		APPLY_UPDATE(a->maps.pod, &old->key, &v, "sm_pod");
	}
	return 0;
fail:
	if (!err[0])
		snprintf(err, errlen, "%s", strerror(-ret));
	apply_forget(a);
	return ret;
}

/* Delete the superseded versions whose grace period is over. */
static void apply_expire(struct apply_ctx *a, uint64_t now_ns)
{
	size_t j = 0;

	for (size_t i = 0; i < a->n_defer; i++) {
		if (a->defer[i].due_ns <= now_ns)
			apply_delete_defer(a, &a->defer[i]);
		else
			a->defer[j++] = a->defer[i];
	}
	a->n_defer = j;
}

/* ---- the sweep: what the applied state does not claim goes ---- */

static int apply_claims_svc(struct apply_ctx *a, const void *k)
{
	return u64map_get(&a->svcs, apply_svc_id(k)) != NULL;
}

static int apply_claims_cluster(struct apply_ctx *a, const void *k)
{
	const __u64 *id = k;

	return *id && u64map_get(&a->clusters, *id) != NULL;
}

static int apply_claims_backend(struct apply_ctx *a, const void *k)
{
	return u64map_get(&a->backends, dp_meta_be_id(k)) != NULL;
}

#define APPLY_ID_SET	(1ull << 32)
#define APPLY_ID_ROUTE	(2ull << 32)

/*
 * The set and route ids the tables and the pending deletions use, indexed
 * for the sweep's claims (a scan of every cluster per sm_bset entry is
 * 10^9 steps at 10k services). Built at the first claim after the tables
 * changed (every apply, and apply_forget, clear ids_ok); deferred versions
 * that expire meanwhile stay claimed until then, which is safe: their own
 * timers deleted them. false: no memory, the claims scan instead.
 */
static bool apply_sweep_ids(struct apply_ctx *a)
{
	struct u64map *ids = &a->sweep.ids;
	int err;

	if (a->sweep.ids_ok)
		return true;
	u64map_free(ids);
	err = u64map_init(ids, a->clusters.n + a->svcs.n + a->n_defer);
	for (size_t i = 0; !err && i < a->clusters.cap; i++)
		if (a->clusters.keys[i])
			err = u64map_put(ids, APPLY_ID_SET |
					 ((struct apply_cluster *)a->clusters.vals[i])->set_id, a);
	for (size_t i = 0; !err && i < a->svcs.cap; i++) {
		const struct apply_svc *s = a->svcs.vals[i];

		if (a->svcs.keys[i] && s->n_slots > 1)
			err = u64map_put(ids, APPLY_ID_ROUTE | s->val.route_id, a);
	}
	for (size_t i = 0; !err && i < a->n_defer; i++)
		err = u64map_put(ids, (a->defer[i].kind ? APPLY_ID_ROUTE : APPLY_ID_SET) |
				 a->defer[i].id, a);
	if (err)
		u64map_free(ids);
	a->sweep.ids_ok = !err;
	return !err;
}

/* A set (sm_bset, sm_maglev) or route (sm_route) id applied or deferred. */
static int apply_id_in_use(struct apply_ctx *a, uint32_t kind, uint32_t id)
{
	if (apply_sweep_ids(a))
		return u64map_get(&a->sweep.ids, (kind ? APPLY_ID_ROUTE : APPLY_ID_SET) | id) != NULL;
	for (size_t i = 0; i < a->n_defer; i++)
		if (a->defer[i].kind == kind && a->defer[i].id == id)
			return 1;	/* its own timer deletes it */
	if (kind == 0) {
		for (size_t i = 0; i < a->clusters.cap; i++)
			if (a->clusters.keys[i] &&
			    ((struct apply_cluster *)a->clusters.vals[i])->set_id == id)
				return 1;
		return 0;
	}
	for (size_t i = 0; i < a->svcs.cap; i++) {
		const struct apply_svc *s = a->svcs.vals[i];

		if (a->svcs.keys[i] && s->n_slots > 1 && s->val.route_id == id)
			return 1;
	}
	return 0;
}

static int apply_claims_bset(struct apply_ctx *a, const void *k)
{
	const struct sm_bset_key *bk = k;

	return apply_id_in_use(a, 0, bk->set_id);
}

static int apply_claims_route(struct apply_ctx *a, const void *k)
{
	const struct sm_route_key *rk = k;

	return apply_id_in_use(a, 1, rk->route_id);
}

static int apply_claims_pod(struct apply_ctx *a, const void *k)
{
	const struct sm_pod_key *pk = k;

	return u64map_get(&a->pods, (uint64_t)pk->addr | (1ull << 32)) != NULL;
}

static int apply_claims_meta(struct apply_ctx *a, const void *k)
{
	const struct sm_meta_key *mk = k;
	struct sm_svc_key sk;
	struct sm_be_key bk;

	switch (mk->kind) {
	case SM_META_SVC:
		sk.vip = (uint32_t)(mk->id >> 32);
		sk.port = (uint16_t)(mk->id >> 16);
		sk.proto = (uint8_t)mk->id;
		sk.pad = 0;
		return apply_claims_svc(a, &sk);
	case SM_META_CLUSTER:
		return apply_claims_cluster(a, &mk->id);
	case SM_META_BACKEND:
		bk.addr = (uint32_t)(mk->id >> 32);
		bk.port = (uint16_t)mk->id;
		bk.pad = 0;
		return apply_claims_backend(a, &bk);
	default:
		return 0;
	}
}

/*
 * The maps the sweep walks, in the order connect4 reads them: a stale
 * entry is unreachable once those that lead to it are gone, so the kernel
 * (which adds sm_svc_stats, sm_rr and sm_be_stats entries for what it
 * reaches) does not recreate one behind the walk.
 */
static const struct apply_sweep_map {
	size_t fd_off;
	int (*claimed)(struct apply_ctx *a, const void *key);
	bool ids;		/* its claims use the id index */
} apply_sweep_maps[] = {
	{ offsetof(struct dp_maps, svc), apply_claims_svc, false },
	{ offsetof(struct dp_maps, svc_stats), apply_claims_svc, false },
	{ offsetof(struct dp_maps, route), apply_claims_route, true },
	{ offsetof(struct dp_maps, cluster), apply_claims_cluster, false },
	{ offsetof(struct dp_maps, rr), apply_claims_cluster, false },
	{ offsetof(struct dp_maps, bset), apply_claims_bset, true },
	{ offsetof(struct dp_maps, maglev), apply_claims_bset, true },
	{ offsetof(struct dp_maps, backend), apply_claims_backend, false },
	{ offsetof(struct dp_maps, be_stats), apply_claims_backend, false },
	{ offsetof(struct dp_maps, pod), apply_claims_pod, false },
	{ offsetof(struct dp_maps, meta), apply_claims_meta, false },
};

#define APPLY_SWEEP_N_MAPS (sizeof(apply_sweep_maps) / sizeof(apply_sweep_maps[0]))

static int apply_sweep_fd(const struct apply_ctx *a, uint32_t at)
{
	return *(const int *)((const char *)&a->maps + apply_sweep_maps[at - 1].fd_off);
}

/*
 * The walk leaves the key it stands on: it goes if it was nobody's when
 * the walk reached it and still is now (an apply since may claim it).
 */
static void apply_sweep_leave(struct apply_ctx *a, int fd)
{
	struct apply_sweep *sw = &a->sweep;

	if (sw->has_key && sw->doomed && !apply_sweep_maps[sw->at - 1].claimed(a, &sw->key) &&
	    !bpf_map_delete_elem(fd, &sw->key))
		sw->deleted++;
	sw->has_key = sw->doomed = false;
}

/* This thread's CPU time: a slice's own work, without what the scheduler took. */
static uint64_t apply_thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * One slice of the sweep: each map is walked with get_next_key from the
 * key the walk stands on, which is deleted (if doomed) only once the next
 * key is known, so the walk never loses its place by its own deletions.
 * If an apply deleted that key between slices, get_next_key from a missing
 * key gives the map's first key: the walk of that map starts over (more
 * work, same result). Entries added meanwhile are claimed ones, visited or
 * not. Stops after budget entries or at the first check past the time.
 * The id index is built at the start of a slice, never in the middle of
 * one (at 10k services the build is a slice's worth of work itself).
 */
static void apply_sweep_slice(struct apply_ctx *a)
{
	struct apply_sweep *sw = &a->sweep;
	uint32_t budget = sw->slice ? sw->slice : APPLY_SWEEP_SLICE;
	uint64_t t0 = dp_now_ns(), c0 = apply_thread_cpu_ns(), dt;
	union apply_map_key next;

	for (uint32_t done = 1; sw->at && done <= budget; done++) {
		int fd = apply_sweep_fd(a, sw->at);
		bool more;

		if (apply_sweep_maps[sw->at - 1].ids && !sw->ids_ok) {
			if (done > 1)
				break;
			apply_sweep_ids(a);
		}
		more = fd >= 0 && !bpf_map_get_next_key(fd, sw->has_key ? &sw->key : NULL, &next);

		apply_sweep_leave(a, fd);
		if (!more) {
			if (++sw->at > APPLY_SWEEP_N_MAPS) {
				sw->at = 0;
				sw->took_ns = dp_now_ns() - sw->start_ns;
			}
			continue;
		}
		sw->key = next;
		sw->has_key = true;
		sw->walked++;
		sw->doomed = !apply_sweep_maps[sw->at - 1].claimed(a, &sw->key);
		if (done % APPLY_SWEEP_CHECK == 0 && dp_now_ns() - t0 >= APPLY_SWEEP_SLICE_NS)
			break;
	}
	dt = dp_now_ns() - t0;
	sw->slices++;
	if (dt > sw->max_slice_ns)
		sw->max_slice_ns = dt;
	dt = apply_thread_cpu_ns() - c0;
	if (dt > sw->max_slice_cpu_ns)
		sw->max_slice_cpu_ns = dt;
}

bool apply_gc(struct apply_ctx *a, uint64_t now_ns)
{
	struct apply_sweep *sw = &a->sweep;

	apply_expire(a, now_ns);
	if (a->sweep_due_ns > 1 && a->sweep_due_ns <= now_ns) {
		/* due: start from the first map */
		a->sweep_due_ns = 0;
		sw->at = 1;
		sw->has_key = sw->doomed = false;
		sw->start_ns = dp_now_ns();
		sw->took_ns = sw->max_slice_ns = sw->max_slice_cpu_ns = 0;
		sw->slices = sw->walked = sw->deleted = 0;
	}
	if (sw->at)
		apply_sweep_slice(a);
	return sw->at != 0;
}
