// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "common/dp.h"

const char *const dp_map_names[DP_N_MAPS] = {
	"sm_svc", "sm_route", "sm_cluster", "sm_bset", "sm_maglev",
	"sm_backend", "sm_be_active", "sm_be_stats", "sm_svc_stats",
	"sm_conn_limit", "sm_rr", "sm_stats_v2", "sm_pod", "sm_config",
	"sm_meta", "sm_sock_hash", "sm_redir_tgt", "sm_l7_orig", "sm_l7_alive", "sm_sock_off",
	"sm_flow_stats", "sm_sock_flow", "sm_sk_flow", "sm_overflow", "sm_nsip",
};

const char *const dp_stat_names[SM_STAT_MAX] = {
	[SM_STAT_CONNECT_SEEN]		= "connect_seen",
	[SM_STAT_CONNECT_TRANSLATED]	= "connect_translated",
	[SM_STAT_CONNECT_NO_BACKEND]	= "connect_no_backend",
	[SM_STAT_CONNECT_OVERFLOW]	= "connect_overflow",
	[SM_STAT_CONNECT_PANIC]		= "connect_panic",
	[SM_STAT_CONNECT_ERR]		= "connect_error",
	[SM_STAT_GETPEERNAME]		= "getpeername_restored",
	[SM_STAT_SOCK_INSERT]		= "sock_inserted",
	[SM_STAT_SOCK_INSERT_ERR]	= "sock_insert_error",
	[SM_STAT_REDIRECT]		= "redirect",
	[SM_STAT_REDIRECT_MISS]		= "redirect_miss",
	[SM_STAT_REDIRECT_STICKY]	= "redirect_sticky_tcp",
	[SM_STAT_REDIRECT_OPTOUT]	= "redirect_opt_out",
	[SM_STAT_REDIRECT_ERR]		= "redirect_error",
	[SM_STAT_CONN_RELEASED]		= "conn_released",
	[SM_STAT_CONNECT_FAIL]		= "connect_fail",
	[SM_STAT_SOCK_REMOVE]		= "sock_removed_tcp",
	[SM_STAT_CONNECT_L7]		= "connect_l7",
	[SM_STAT_L7_ORIG_ERR]		= "l7_orig_error",
	[SM_STAT_L7_FALLBACK]		= "l7_fallback_l4",
	[SM_STAT_FLOW_ERR]		= "flow_counter_error",
	[SM_STAT_SOCK_REMOTE]		= "sock_not_inserted_remote",
	[SM_STAT_CONNECT_V4MAPPED]	= "connect_v4mapped",
	[SM_STAT_CONNECT_V6_NATIVE]	= "connect_v6_native",
};

void dp_maps_init(struct dp_maps *m)
{
	for (size_t i = 0; i < DP_N_MAPS; i++)
		*dp_maps_at(m, i) = -1;
}

int dp_maps_open_pinned(struct dp_maps *m, const char *pin_dir)
{
	char path[PATH_MAX];

	dp_maps_init(m);
	for (size_t i = 0; i < DP_N_MAPS; i++) {
		int fd;

		snprintf(path, sizeof(path), "%s/maps/%s", pin_dir, dp_map_names[i]);
		fd = bpf_obj_get(path);
		if (fd < 0) {
			int err = -errno;

			dp_maps_close(m);
			return err;
		}
		*dp_maps_at(m, i) = fd;
	}
	return 0;
}

void dp_maps_close(struct dp_maps *m)
{
	for (size_t i = 0; i < DP_N_MAPS; i++) {
		int *fd = dp_maps_at(m, i);

		if (*fd >= 0)
			close(*fd);
		*fd = -1;
	}
}

uint64_t dp_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

const char *dp_lb_name(unsigned int lb)
{
	switch (lb) {
	case SM_LB_LEAST_REQUEST: return "LEAST_REQUEST";
	case SM_LB_ROUND_ROBIN: return "ROUND_ROBIN";
	case SM_LB_RANDOM: return "RANDOM";
	case SM_LB_MAGLEV: return "MAGLEV";
	default: return "?";
	}
}

int dp_percpu_sum(int fd, const void *key, uint64_t *out, size_t n)
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t *vals;

	memset(out, 0, n * sizeof(*out));
	if (fd < 0 || ncpu <= 0)
		return -EINVAL;
	vals = calloc((size_t)ncpu, n * sizeof(uint64_t));
	if (!vals)
		return -ENOMEM;
	if (bpf_map_lookup_elem(fd, key, vals)) {
		int err = -errno;

		free(vals);
		return err;
	}
	for (int c = 0; c < ncpu; c++)
		for (size_t i = 0; i < n; i++)
			out[i] += vals[(size_t)c * n + i];
	free(vals);
	return 0;
}

#define DP_FOREACH_MAX_KEY	64
#define DP_FOREACH_MAX_N	16

int dp_percpu_foreach(int fd, size_t key_size, size_t n,
		      void (*fn)(const void *key, const uint64_t *sums, void *ctx), void *ctx)
{
	unsigned char key[DP_FOREACH_MAX_KEY], next[DP_FOREACH_MAX_KEY];
	uint64_t sums[DP_FOREACH_MAX_N];
	void *prev = NULL;
	uint32_t seen = 0;
	int ret;

	if (fd < 0 || key_size > sizeof(key) || n > DP_FOREACH_MAX_N)
		return -EINVAL;
	/*
	 * An entry evicted under our feet makes get_next_key start over from
	 * the first key: bounded like dp_map_count.
	 */
	while (!bpf_map_get_next_key(fd, prev, next) && ++seen < 10000000) {
		memcpy(key, next, key_size);
		prev = key;
		ret = dp_percpu_sum(fd, key, sums, n);
		if (ret == -ENOENT)
			continue;
		if (ret)
			return ret;
		fn(key, sums, ctx);
	}
	return 0;
}

void dp_meta_get(const struct dp_maps *m, uint32_t kind, uint64_t id, struct sm_meta_val *out)
{
	struct sm_meta_key k = { .kind = kind, .id = id };

	if (m->meta < 0 || bpf_map_lookup_elem(m->meta, &k, out))
		memset(out, 0, sizeof(*out));
	out->name[sizeof(out->name) - 1] = '\0';
	out->extra[sizeof(out->extra) - 1] = '\0';
}

static const char *dp_ip(uint32_t be, char *buf)
{
	struct in_addr a = { .s_addr = be };

	return inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN);
}

const struct dp_counted_map dp_counted_maps[DP_N_COUNTED] = {
	[DP_CNT_SVC]		= { "sm_svc", offsetof(struct dp_maps, svc), sizeof(struct sm_svc_key) },
	[DP_CNT_CLUSTER]	= { "sm_cluster", offsetof(struct dp_maps, cluster), sizeof(__u64) },
	[DP_CNT_BACKEND]	= { "sm_backend", offsetof(struct dp_maps, backend), sizeof(struct sm_be_key) },
	[DP_CNT_BSET]		= { "sm_bset", offsetof(struct dp_maps, bset), sizeof(struct sm_bset_key) },
	[DP_CNT_ROUTE]		= { "sm_route", offsetof(struct dp_maps, route), sizeof(struct sm_route_key) },
	[DP_CNT_MAGLEV]		= { "sm_maglev", offsetof(struct dp_maps, maglev), sizeof(struct sm_bset_key) },
	[DP_CNT_CONN_LIMIT]	= { "sm_conn_limit", offsetof(struct dp_maps, conn_limit),
				    sizeof(struct sm_limit_key) },
	[DP_CNT_SOCK_HASH]	= { "sm_sock_hash", offsetof(struct dp_maps, sock_hash), sizeof(struct sm_sock_key) },
};

uint32_t dp_map_count(int fd, size_t key_size, const volatile int *stop)
{
	unsigned char key[64], next[64];
	uint32_t n = 0;
	void *prev = NULL;

	if (fd < 0 || key_size > sizeof(key))
		return 0;
	while (!bpf_map_get_next_key(fd, prev, next)) {
		memcpy(key, next, key_size);
		prev = key;
		if (++n >= 10000000 || (stop && !(n & 1023) && *stop))
			break;
	}
	return n;
}

json_t *dp_status_json_base(const struct dp_maps *m)
{
	uint64_t cnt[1];
	struct sm_config_val cfg = {};
	uint32_t zero = 0;
	json_t *root = json_object(), *counters = json_object();

	if (m->config >= 0)
		bpf_map_lookup_elem(m->config, &zero, &cfg);
	json_object_set_new(root, "generation", json_integer((json_int_t)cfg.generation));
	json_object_set_new(root, "redirect", json_boolean(cfg.flags & SM_CFG_F_REDIRECT));
	for (uint32_t i = 0; i < SM_STAT_MAX; i++) {
		if (dp_percpu_sum(m->stats, &i, cnt, 1))
			cnt[0] = 0;
		json_object_set_new(counters, dp_stat_names[i] ? dp_stat_names[i] : "?",
				    json_integer((json_int_t)cnt[0]));
	}
	json_object_set_new(root, "counters", counters);
	return root;
}

json_t *dp_status_json(const struct dp_maps *m)
{
	json_t *root = dp_status_json_base(m), *maps = json_object();

	for (size_t i = 0; i < DP_N_COUNTED; i++)
		json_object_set_new(maps, dp_counted_maps[i].name,
				    json_integer(dp_map_count(dp_counted_fd(m, i),
							      dp_counted_maps[i].key_size, NULL)));
	json_object_set_new(root, "map_entries", maps);
	return root;
}

struct dp_be_info {
	struct sm_be_key key;
	struct sm_backend_val val;
	int64_t active;
	uint64_t total, connect_fail;
};

static void dp_backend_read(const struct dp_maps *m, const struct sm_be_key *k,
			    struct dp_be_info *bi)
{
	struct sm_be_active_val act = {};
	uint64_t st[2];

	memset(bi, 0, sizeof(*bi));
	bi->key = *k;
	if (m->backend >= 0)
		bpf_map_lookup_elem(m->backend, k, &bi->val);
	if (m->be_active >= 0 && !bpf_map_lookup_elem(m->be_active, k, &act))
		bi->active = act.active;
	if (!dp_percpu_sum(m->be_stats, k, st, 2)) {
		bi->total = st[0];
		bi->connect_fail = st[1];
	}
}

static int dp_be_ejected(const struct sm_backend_val *v, uint64_t now)
{
	return (v->flags & SM_BE_F_EJECTED) &&
	       (!v->eject_until_ns || v->eject_until_ns > now);
}

static const char *dp_be_state(const struct sm_backend_val *v, uint64_t now)
{
	if (!(v->flags & SM_BE_F_READY))
		return "not-ready";
	return dp_be_ejected(v, now) ? "ejected" : "ready";
}

/* Up to max distinct cluster ids the service routes to, with slot counts. */
static size_t dp_svc_clusters(const struct dp_maps *m, const struct sm_svc_val *sv,
			      uint64_t *ids, uint32_t *slots, size_t max)
{
	size_t n = 0;

	if (sv->route_slots <= 1) {
		ids[0] = sv->cluster_id;
		slots[0] = 1;
		return 1;
	}
	for (uint32_t s = 0; s < sv->route_slots; s++) {
		struct sm_route_key rk = { .route_id = sv->route_id, .slot = s };
		struct sm_route_val rv;
		size_t j;

		if (bpf_map_lookup_elem(m->route, &rk, &rv))
			continue;
		for (j = 0; j < n && ids[j] != rv.cluster_id; j++)
			;
		if (j == n) {
			if (n == max)
				continue;
			ids[n] = rv.cluster_id;
			slots[n++] = 0;
		}
		slots[j]++;
	}
	return n;
}

#define DP_MAX_CL 64

/* By name, then port, then VIP (the last: one order for every read). */
static int dp_svc_row_cmp(const void *pa, const void *pb)
{
	const json_t *a = *(const json_t *const *)pa, *b = *(const json_t *const *)pb;
	json_int_t pa_ = json_integer_value(json_object_get(a, "port"));
	json_int_t pb_ = json_integer_value(json_object_get(b, "port"));
	int c = strcmp(json_string_value(json_object_get(a, "name")) ?: "",
		       json_string_value(json_object_get(b, "name")) ?: "");

	if (c)
		return c;
	if (pa_ != pb_)
		return pa_ < pb_ ? -1 : 1;
	return strcmp(json_string_value(json_object_get(a, "vip")) ?: "",
		      json_string_value(json_object_get(b, "vip")) ?: "");
}

/* arr's rows sorted (qsort: 10k services are 10k rows); returns arr. */
static json_t *dp_services_sorted(json_t *arr)
{
	size_t n = json_array_size(arr);
	json_t **v = malloc((n ? n : 1) * sizeof(*v));

	if (!v)
		return arr;	/* unsorted, still whole */
	for (size_t i = 0; i < n; i++)
		v[i] = json_incref(json_array_get(arr, i));
	qsort(v, n, sizeof(*v), dp_svc_row_cmp);
	json_array_clear(arr);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, v[i]);
	free(v);
	return arr;
}

json_t *dp_services_json(const struct dp_maps *m)
{
	struct sm_svc_key key, next, *prev = NULL;
	json_t *arr = json_array();
	uint64_t now = dp_now_ns();

	while (m->svc >= 0 && !bpf_map_get_next_key(m->svc, prev, &next)) {
		struct sm_svc_val sv;
		struct sm_meta_val meta;
		uint64_t ids[DP_MAX_CL], st[4];
		uint32_t slots[DP_MAX_CL], total_slots = 0;
		size_t ncl;
		json_t *o, *cls, *route;
		char ip[INET_ADDRSTRLEN];
		int64_t active = 0;
		uint32_t n_total = 0, n_ready = 0, n_ejected = 0;

		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(m->svc, &key, &sv))
			continue;
		dp_meta_get(m, SM_META_SVC, dp_meta_svc_id(&key), &meta);
		o = json_object();
		json_object_set_new(o, "name", json_string(meta.name[0] ? meta.name : "?"));
		json_object_set_new(o, "port_name", json_string(meta.extra));
		json_object_set_new(o, "vip", json_string(dp_ip(key.vip, ip)));
		json_object_set_new(o, "port", json_integer(ntohs(key.port)));
		json_object_set_new(o, "path", json_string(sv.flags & SM_SVC_F_L7 ? "L7" : "L4"));
		ncl = dp_svc_clusters(m, &sv, ids, slots, DP_MAX_CL);
		for (size_t i = 0; i < ncl; i++)
			total_slots += slots[i];
		cls = json_array();
		route = json_array();
		for (size_t i = 0; i < ncl; i++) {
			struct sm_cluster_val cv;
			struct sm_meta_val cm;
			json_t *c = json_object();
			uint32_t ready = 0, ejected = 0;

			dp_meta_get(m, SM_META_CLUSTER, ids[i], &cm);
			json_object_set_new(c, "name", json_string(cm.name));
			json_object_set_new(c, "subset", json_string(cm.extra));
			if (!bpf_map_lookup_elem(m->cluster, &ids[i], &cv)) {
				json_object_set_new(c, "lb", json_string(dp_lb_name(cv.lb)));
				json_object_set_new(c, "max_connections", json_integer(cv.max_conns));
				json_object_set_new(c, "min_health_percent", json_integer(cv.min_health_pct));
				json_object_set_new(c, "backends", json_integer(cv.n_backends));
				for (uint32_t b = 0; b < cv.n_backends; b++) {
					struct sm_bset_key bk = { .set_id = cv.set_id, .idx = b };
					struct sm_be_key be;
					struct dp_be_info bi;

					if (bpf_map_lookup_elem(m->bset, &bk, &be))
						continue;
					dp_backend_read(m, &be, &bi);
					if (bi.val.flags & SM_BE_F_READY) {
						ready++;
						if (dp_be_ejected(&bi.val, now))
							ejected++;
					}
					active += bi.active;
				}
				json_object_set_new(c, "ready", json_integer(ready));
				json_object_set_new(c, "ejected", json_integer(ejected));
				if (i == 0) {
					json_object_set_new(o, "lb", json_string(dp_lb_name(cv.lb)));
					json_object_set_new(o, "max_connections", json_integer(cv.max_conns));
				}
				n_total += cv.n_backends;
				n_ready += ready;
				n_ejected += ejected;
			}
			json_array_append_new(cls, c);
			if (sv.route_slots > 1) {
				json_t *r = json_object();

				json_object_set_new(r, "cluster", json_string(cm.name));
				json_object_set_new(r, "weight_percent",
						    json_real(100.0 * slots[i] / total_slots));
				json_array_append_new(route, r);
			}
		}
		json_object_set_new(o, "clusters", cls);
		json_object_set_new(o, "route", route);
		json_object_set_new(o, "backends_total", json_integer(n_total));
		json_object_set_new(o, "backends_ready", json_integer(n_ready));
		json_object_set_new(o, "backends_ejected", json_integer(n_ejected));
		json_object_set_new(o, "active", json_integer(active));
		if (dp_percpu_sum(m->svc_stats, &key, st, 4))
			memset(st, 0, sizeof(st));
		json_object_set_new(o, "connects", json_integer((json_int_t)st[0]));
		json_object_set_new(o, "overflows", json_integer((json_int_t)st[1]));
		json_object_set_new(o, "no_backend", json_integer((json_int_t)st[2]));
		json_object_set_new(o, "panic", json_integer((json_int_t)st[3]));
		json_array_append_new(arr, o);
	}
	{
		json_t *root = json_object();

		json_object_set_new(root, "services", dp_services_sorted(arr));
		return root;
	}
}

static int dp_svc_matches(const char *name, const char *filter)
{
	const char *slash;

	if (!filter)
		return 1;
	if (!strcmp(name, filter))
		return 1;
	slash = strchr(name, '/');
	return slash && !strcmp(slash + 1, filter);
}

json_t *dp_backends_json(const struct dp_maps *m, const char *service)
{
	struct sm_svc_key key, next, *prev = NULL;
	json_t *arr = json_array(), *root;
	uint64_t now = dp_now_ns();

	while (m->svc >= 0 && !bpf_map_get_next_key(m->svc, prev, &next)) {
		struct sm_svc_val sv;
		struct sm_meta_val meta;
		uint64_t ids[DP_MAX_CL];
		uint32_t slots[DP_MAX_CL];
		size_t ncl;
		char ip[INET_ADDRSTRLEN], vip[INET_ADDRSTRLEN + 8];
		json_t *rows = json_array();

		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(m->svc, &key, &sv))
			continue;
		dp_meta_get(m, SM_META_SVC, dp_meta_svc_id(&key), &meta);
		if (!dp_svc_matches(meta.name, service)) {
			json_decref(rows);
			continue;
		}
		snprintf(vip, sizeof(vip), "%s:%u", dp_ip(key.vip, ip), ntohs(key.port));
		ncl = dp_svc_clusters(m, &sv, ids, slots, DP_MAX_CL);
		for (size_t i = 0; i < ncl; i++) {
			struct sm_cluster_val cv;
			struct sm_meta_val cm;

			if (bpf_map_lookup_elem(m->cluster, &ids[i], &cv))
				continue;
			dp_meta_get(m, SM_META_CLUSTER, ids[i], &cm);
			for (uint32_t b = 0; b < cv.n_backends; b++) {
				struct sm_bset_key bk = { .set_id = cv.set_id, .idx = b };
				struct sm_be_key be;
				struct dp_be_info bi;
				struct sm_meta_val bm;
				json_t *r = NULL, *subs;
				size_t j;

				if (bpf_map_lookup_elem(m->bset, &bk, &be))
					continue;
				/* one row per backend and service; subsets joined */
				for (j = 0; j < json_array_size(rows); j++) {
					json_t *x = json_array_get(rows, j);

					if (json_integer_value(json_object_get(x, "_id")) ==
					    (json_int_t)dp_meta_be_id(&be)) {
						r = x;
						break;
					}
				}
				if (!r) {
					dp_backend_read(m, &be, &bi);
					dp_meta_get(m, SM_META_BACKEND, dp_meta_be_id(&be), &bm);
					r = json_object();
					json_object_set_new(r, "_id", json_integer((json_int_t)dp_meta_be_id(&be)));
					json_object_set_new(r, "service", json_string(meta.name));
					json_object_set_new(r, "vip", json_string(vip));
					json_object_set_new(r, "address", json_string(dp_ip(be.addr, ip)));
					json_object_set_new(r, "port", json_integer(ntohs(be.port)));
					json_object_set_new(r, "pod", json_string(bm.name));
					json_object_set_new(r, "subsets", json_array());
					json_object_set_new(r, "state", json_string(dp_be_state(&bi.val, now)));
					if (dp_be_ejected(&bi.val, now) && bi.val.eject_until_ns)
						json_object_set_new(r, "eject_remaining_ms",
								    json_integer((json_int_t)((bi.val.eject_until_ns - now) / 1000000)));
					json_object_set_new(r, "active", json_integer(bi.active));
					json_object_set_new(r, "total", json_integer((json_int_t)bi.total));
					json_object_set_new(r, "connect_failures", json_integer((json_int_t)bi.connect_fail));
					json_array_append_new(rows, r);
				}
				subs = json_object_get(r, "subsets");
				if (cm.extra[0])
					json_array_append_new(subs, json_string(cm.extra));
			}
		}
		for (size_t j = 0; j < json_array_size(rows); j++) {
			json_t *x = json_array_get(rows, j);

			json_object_del(x, "_id");
			json_array_append(arr, x);
		}
		json_decref(rows);
	}
	root = json_object();
	json_object_set_new(root, "backends", arr);
	return root;
}

int dp_backend_eject(const struct dp_maps *m, const struct sm_be_key *k, uint64_t for_ns)
{
	struct sm_backend_val v;

	if (bpf_map_lookup_elem(m->backend, k, &v))
		return errno == ENOENT ? -ENOENT : -errno;
	v.flags |= SM_BE_F_EJECTED;
	v.eject_until_ns = for_ns ? dp_now_ns() + for_ns : 0;
	if (bpf_map_update_elem(m->backend, k, &v, BPF_EXIST))
		return -errno;
	return 0;
}

int dp_backend_restore(const struct dp_maps *m, const struct sm_be_key *k)
{
	struct sm_backend_val v;

	if (bpf_map_lookup_elem(m->backend, k, &v))
		return errno == ENOENT ? -ENOENT : -errno;
	v.flags &= ~SM_BE_F_EJECTED;
	v.eject_until_ns = 0;
	if (bpf_map_update_elem(m->backend, k, &v, BPF_EXIST))
		return -errno;
	return 0;
}

int dp_parse_addr_port(const char *s, struct sm_be_key *k)
{
	char ip[INET_ADDRSTRLEN];
	const char *colon = strrchr(s, ':');
	char *end;
	unsigned long port;
	struct in_addr a;

	memset(k, 0, sizeof(*k));
	if (!colon || (size_t)(colon - s) >= sizeof(ip))
		return -EINVAL;
	memcpy(ip, s, colon - s);
	ip[colon - s] = '\0';
	if (inet_pton(AF_INET, ip, &a) != 1)
		return -EINVAL;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || port == 0 || port > 65535)
		return -EINVAL;
	k->addr = a.s_addr;
	k->port = htons((uint16_t)port);
	return 0;
}
