// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/parse.h"
#include "common/sm_limits.h"

const struct sm_limit_desc sm_limit_descs[SM_LIMIT_COUNT] = {
	[SM_LIMIT_SERVICES] = { "max-services", SM_MAX_SERVICES,
				"Service VIP:port entries (sm_svc)" },
	[SM_LIMIT_CLUSTERS] = { "max-clusters", SM_MAX_CLUSTERS,
				"service port x subset clusters (sm_cluster)" },
	[SM_LIMIT_BACKENDS] = { "max-backends", SM_MAX_BACKENDS,
				"distinct backend addr:port (sm_backend; sm_bset: 2x list slots)" },
	[SM_LIMIT_ROUTE_SLOTS] = { "max-route-slots", SM_MAX_ROUTE,
				   "weighted tcp route slots, <= 1000 per route (sm_route)" },
	[SM_LIMIT_MAGLEV_SLOTS] = { "max-maglev-slots", SM_MAX_MAGLEV,
				    "Maglev slots, 4093..65521 per cluster (sm_maglev)" },
	[SM_LIMIT_SOCKETS] = { "max-sockets", SM_MAX_SOCKS,
			       "established mesh sockets (sm_sock_hash)" },
};

/* Which limit sizes which map, and by how much. */
static const struct {
	const char *map;
	enum sm_limit limit;
	uint32_t mult;
} sm_limit_maps[] = {
	{ "sm_svc", SM_LIMIT_SERVICES, 1 },
	{ "sm_svc_stats", SM_LIMIT_SERVICES, 1 },
	{ "sm_cluster", SM_LIMIT_CLUSTERS, 1 },
	{ "sm_rr", SM_LIMIT_CLUSTERS, 1 },
	{ "sm_conn_limit", SM_LIMIT_CLUSTERS, 1 },
	{ "sm_backend", SM_LIMIT_BACKENDS, 1 },
	{ "sm_be_active", SM_LIMIT_BACKENDS, 1 },
	{ "sm_be_stats", SM_LIMIT_BACKENDS, 1 },
	{ "sm_bset", SM_LIMIT_BACKENDS, SM_BSET_PER_BACKEND },
	{ "sm_route", SM_LIMIT_ROUTE_SLOTS, 1 },
	{ "sm_maglev", SM_LIMIT_MAGLEV_SLOTS, 1 },
	{ "sm_sock_hash", SM_LIMIT_SOCKETS, 1 },
	{ "sm_redir_tgt", SM_LIMIT_SOCKETS, 1 },
	{ "sm_sock_off", SM_LIMIT_SOCKETS, 1 },
	{ "sm_sock_flow", SM_LIMIT_SOCKETS, 1 },
};

_Static_assert(SM_MAX_META == SM_MAX_SERVICES + SM_MAX_CLUSTERS + SM_MAX_BACKENDS,
	       "sm_meta: one name per service, cluster and backend");

void sm_limits_init(struct sm_limits *l)
{
	for (size_t i = 0; i < SM_LIMIT_COUNT; i++)
		l->v[i] = sm_limit_descs[i].def;
}

int sm_limits_set(struct sm_limits *l, const char *name, const char *val)
{
	uint64_t v;

	if (!strncmp(name, "--", 2))
		name += 2;
	for (size_t i = 0; i < SM_LIMIT_COUNT; i++) {
		if (strcmp(name, sm_limit_descs[i].flag))
			continue;
		if (sm_parse_uint(val, SM_LIMIT_MIN, SM_LIMIT_MAX, &v))
			return -EINVAL;
		l->v[i] = (uint32_t)v;
		return 0;
	}
	return -ENOENT;
}

uint32_t sm_limits_map_entries(const struct sm_limits *l, const char *name)
{
	if (!strcmp(name, "sm_meta"))
		return l->v[SM_LIMIT_SERVICES] + l->v[SM_LIMIT_CLUSTERS] +
		       l->v[SM_LIMIT_BACKENDS];
	for (size_t i = 0; i < sizeof(sm_limit_maps) / sizeof(sm_limit_maps[0]); i++)
		if (!strcmp(name, sm_limit_maps[i].map))
			return l->v[sm_limit_maps[i].limit] * sm_limit_maps[i].mult;
	return 0;
}

void sm_limits_options(struct option *out, int val)
{
	for (size_t i = 0; i < SM_LIMIT_COUNT; i++)
		out[i] = (struct option){ sm_limit_descs[i].flag, required_argument, NULL, val };
}

void sm_limits_usage(FILE *f)
{
	char opt[40];

	for (size_t i = 0; i < SM_LIMIT_COUNT; i++) {
		snprintf(opt, sizeof(opt), "--%s N", sm_limit_descs[i].flag);
		fprintf(f, "  %-22s %s (default %u)\n", opt, sm_limit_descs[i].what,
			sm_limit_descs[i].def);
	}
}
