/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * mapcount: the entries of the data path's maps for /status and /metrics
 * without blocking the agent's loop.
 *
 * Counting a BPF hash map takes one syscall per entry: at 10k services and
 * 100k endpoints a walk of every map holds its thread for 86 ms on an idle
 * machine, for hundreds of ms on a loaded one (bench scenario 5).
 * The maps the agent writes (sm_svc, sm_cluster, sm_backend and the
 * versioned sm_bset, sm_maglev, sm_route) need no walk: the apply tables
 * know what is in them (what was applied, plus the superseded versions
 * still in their grace period). Those the kernel writes (sm_conn_limit,
 * sm_sock_hash) are walked on a thread of its own; so are all of them
 * while the tables are not the whole truth (a data path adopted from an
 * earlier agent, or an apply that failed half-way, until the sweep).
 */
#ifndef SOCKMESH_MAPCOUNT_H
#define SOCKMESH_MAPCOUNT_H

#include <stdint.h>

#include "agent/apply.h"
#include "common/dp.h"

#define MAPCOUNT_ALL ((1u << DP_N_COUNTED) - 1)

struct mapcount;

/* Start the walker on its own copies of m's fds. NULL with errno on failure. */
struct mapcount *mapcount_start(const struct dp_maps *m);
/* Stop it (a walk in progress ends within 1024 keys) and free it; NULL is fine. */
void mapcount_stop(struct mapcount *mc);
/* An eventfd, readable when a walk has finished (mapcount_done() reads it). */
int mapcount_fd(const struct mapcount *mc);
/*
 * Walk the maps of mask (bits of enum dp_counted) once more. Returns the
 * walk's ticket: its counts are in once mapcount_done() >= ticket. Requests
 * made while a walk runs are served by the next one.
 */
uint64_t mapcount_request(struct mapcount *mc, uint32_t mask);
/* The ticket of the last walk finished (and the eventfd drained). */
uint64_t mapcount_done(struct mapcount *mc);
/* The counts of each map's last walk (0 when never walked) into counts. */
void mapcount_last(struct mapcount *mc, uint32_t counts[DP_N_COUNTED]);
/*
 * The maps the agent writes, counted by its apply tables into counts.
 * Returns the mask of those counted; 0 when the tables are not the whole
 * truth (their maps must be walked).
 */
uint32_t mapcount_from_apply(const struct apply_ctx *a, uint32_t counts[DP_N_COUNTED]);

#endif /* SOCKMESH_MAPCOUNT_H */
