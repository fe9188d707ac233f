/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * sm_limits: the map capacities (max_entries) behind the --max-* flags that
 * sockmesh-agent and `sockmeshctl validate` share. One table: the flag
 * names, their defaults (SM_MAX_* of sockmesh.h) and bounds, and which maps
 * each one sizes. The loader sizes the maps from it; the planner checks a
 * policy against it before anything is written.
 */
#ifndef SOCKMESH_LIMITS_H
#define SOCKMESH_LIMITS_H

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>

#include "sockmesh.h"

/* Bounds of every --max-* value (entries). */
#define SM_LIMIT_MIN	16u
#define SM_LIMIT_MAX	(1u << 24)

enum sm_limit {
	SM_LIMIT_SERVICES,	/* --max-services: sm_svc, sm_svc_stats */
	SM_LIMIT_CLUSTERS,	/* --max-clusters: sm_cluster, sm_rr, sm_conn_limit */
	SM_LIMIT_BACKENDS,	/* --max-backends: sm_backend, sm_be_active, sm_be_stats;
				 * sm_bset holds SM_BSET_PER_BACKEND x as many list slots */
	SM_LIMIT_ROUTE_SLOTS,	/* --max-route-slots: sm_route */
	SM_LIMIT_MAGLEV_SLOTS,	/* --max-maglev-slots: sm_maglev */
	SM_LIMIT_SOCKETS,	/* --max-sockets: sm_sock_hash, sm_redir_tgt */
	SM_LIMIT_COUNT,
};

/* Backend list slots (sm_bset) per --max-backends entry. */
#define SM_BSET_PER_BACKEND	2u
_Static_assert(SM_MAX_BSET == SM_BSET_PER_BACKEND * SM_MAX_BACKENDS,
	       "sm_bset's compiled size follows --max-backends' default");

struct sm_limit_desc {
	const char *flag;	/* without the leading "--" */
	uint32_t def;		/* the map's compiled max_entries */
	const char *what;	/* for --help and README */
};

extern const struct sm_limit_desc sm_limit_descs[SM_LIMIT_COUNT];

struct sm_limits {
	uint32_t v[SM_LIMIT_COUNT];
};

/* Every limit at its default. */
void sm_limits_init(struct sm_limits *l);

/*
 * Set the limit whose flag is name ("max-services", with or without "--")
 * from val. Returns 0, -ENOENT (not a limit flag) or -EINVAL (val is not an
 * integer in [SM_LIMIT_MIN, SM_LIMIT_MAX]).
 */
int sm_limits_set(struct sm_limits *l, const char *name, const char *val);

/*
 * max_entries of the map called name under these limits, or 0 when no
 * limit sizes it (the map keeps its compiled size).
 */
uint32_t sm_limits_map_entries(const struct sm_limits *l, const char *name);

/*
 * getopt_long() entries for every limit (required_argument, flag NULL, the
 * given val) into out[SM_LIMIT_COUNT]; the caller matches them by name.
 */
void sm_limits_options(struct option *out, int val);

/* One "  --max-x N   what (default D)" line per limit. */
void sm_limits_usage(FILE *f);

#endif /* SOCKMESH_LIMITS_H */
