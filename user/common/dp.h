/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * dp: read the data path's maps into JSON. Shared by the agent (admin API,
 * through the skeleton's map fds) and sockmeshctl (through pinned maps when
 * the agent is down), so both show the same thing.
 */
#ifndef SOCKMESH_DP_H
#define SOCKMESH_DP_H

#include <jansson.h>
#include <stdint.h>

#include "sockmesh.h"

/* Map fds; -1 when absent. The order matches dp_map_names[]. */
struct dp_maps {
	int svc, route, cluster, bset, maglev, backend, be_active, be_stats,
	    svc_stats, conn_limit, rr, stats, pod, config, meta, sock_hash,
	    redir_tgt, l7_orig, l7_alive, sock_off, flow_stats, sock_flow, sk_flow,
	    overflow, nsip;
};

#define DP_N_MAPS (sizeof(struct dp_maps) / sizeof(int))
extern const char *const dp_map_names[DP_N_MAPS];	/* "sm_svc", ... */
extern const char *const dp_stat_names[SM_STAT_MAX];	/* "connect_translated", ... */

static inline int *dp_maps_at(struct dp_maps *m, size_t i)
{
	return &((int *)m)[i];
}

void dp_maps_init(struct dp_maps *m);	/* all -1 */
/* Open PIN/maps/<name> for every map. Returns 0 or -errno (first missing). */
int dp_maps_open_pinned(struct dp_maps *m, const char *pin_dir);
void dp_maps_close(struct dp_maps *m);

static inline uint64_t dp_meta_svc_id(const struct sm_svc_key *k)
{
	return ((uint64_t)k->vip << 32) | ((uint64_t)k->port << 16) | k->proto;
}

/* The one 64-bit id of a backend (meta key, agent tables); 0 only for 0.0.0.0:0. */
static inline uint64_t dp_meta_be_id(const struct sm_be_key *k)
{
	return ((uint64_t)k->addr << 32) | k->port;
}

const char *dp_lb_name(unsigned int lb);

/* Sum of a per-CPU __u64 counter array element-wise into out[n]. */
int dp_percpu_sum(int fd, const void *key, uint64_t *out, size_t n);

/*
 * Every entry of a per-CPU map whose value is n __u64 counters (n <= 16,
 * key_size <= 64), summed over CPUs: fn(key, sums, ctx) per entry. Entries
 * that vanish while walking (LRU) are skipped. Returns 0 or -errno.
 */
int dp_percpu_foreach(int fd, size_t key_size, size_t n,
		      void (*fn)(const void *key, const uint64_t *sums, void *ctx), void *ctx);

/* Display name of an sm_meta entry (zeroed when there is none). */
void dp_meta_get(const struct dp_maps *m, uint32_t kind, uint64_t id, struct sm_meta_val *out);

/* The maps whose entries /status counts ("map_entries"), in its order. */
enum dp_counted {
	DP_CNT_SVC = 0,
	DP_CNT_CLUSTER,
	DP_CNT_BACKEND,
	DP_CNT_BSET,
	DP_CNT_ROUTE,
	DP_CNT_MAGLEV,
	DP_CNT_CONN_LIMIT,	/* written by connect4 (maxConnections) */
	DP_CNT_SOCK_HASH,	/* written by sockops */
	DP_N_COUNTED,
};

struct dp_counted_map {
	const char *name;	/* "sm_svc" */
	size_t fd_off;		/* of its fd in struct dp_maps */
	size_t key_size;
};

extern const struct dp_counted_map dp_counted_maps[DP_N_COUNTED];

static inline int dp_counted_fd(const struct dp_maps *m, size_t i)
{
	return *(const int *)((const char *)m + dp_counted_maps[i].fd_off);
}

/*
 * Entries of a hash map by walking its keys: one syscall per entry (a
 * second at 100k entries). stop (may be NULL): checked every 1024 keys,
 * non-zero ends the walk early.
 */
uint32_t dp_map_count(int fd, size_t key_size, const volatile int *stop);
/* {"generation":..,"redirect":..,"counters":{..}}: cheap (no map walk) */
json_t *dp_status_json_base(const struct dp_maps *m);
/* dp_status_json_base + "map_entries": {name: entries}, every map walked */
json_t *dp_status_json(const struct dp_maps *m);
/* {"services":[...]} sorted by name, port */
json_t *dp_services_json(const struct dp_maps *m);
/* {"backends":[...]}; service filter ("ns/name", "name", or NULL) */
json_t *dp_backends_json(const struct dp_maps *m, const char *service);

/*
 * Mark a backend ejected until now + for_ns (0 = until restored), or clear
 * the mark. Preserves the agent's READY bit. Returns 0, -ENOENT (unknown
 * backend) or -errno.
 */
int dp_backend_eject(const struct dp_maps *m, const struct sm_be_key *k, uint64_t for_ns);
int dp_backend_restore(const struct dp_maps *m, const struct sm_be_key *k);

/* Parse "IP:PORT" into a backend key (network order). 0 or -EINVAL. */
int dp_parse_addr_port(const char *s, struct sm_be_key *k);

/* Monotonic clock in ns, the same clock as bpf_ktime_get_ns(). */
uint64_t dp_now_ns(void);

#endif /* SOCKMESH_DP_H */
