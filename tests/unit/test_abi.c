// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Pins the layout of every struct in include/sockmesh.h. The expected
 * numbers were computed by hand from the header; if one of these fails, a
 * map's layout changed: rename that map (sm_svc -> sm_svc_v2) and update
 * the numbers here in the same commit.
 */
#include <stddef.h>

#include "sockmesh.h"
#include "test.h"

#define ABI_SIZE(t, sz) _Static_assert(sizeof(struct t) == (sz), #t " size")
#define ABI_OFF(t, f, off) \
	_Static_assert(offsetof(struct t, f) == (off), #t "." #f " offset")

ABI_SIZE(sm_svc_key, 8);
ABI_OFF(sm_svc_key, vip, 0);
ABI_OFF(sm_svc_key, port, 4);
ABI_OFF(sm_svc_key, proto, 6);
ABI_OFF(sm_svc_key, pad, 7);

ABI_SIZE(sm_svc_val, 16);
ABI_OFF(sm_svc_val, cluster_id, 0);
ABI_OFF(sm_svc_val, route_id, 8);
ABI_OFF(sm_svc_val, route_slots, 12);
ABI_OFF(sm_svc_val, flags, 14);

ABI_SIZE(sm_route_key, 8);
ABI_OFF(sm_route_key, route_id, 0);
ABI_OFF(sm_route_key, slot, 4);

ABI_SIZE(sm_route_val, 8);
ABI_OFF(sm_route_val, cluster_id, 0);

ABI_SIZE(sm_cluster_val, 24);
ABI_OFF(sm_cluster_val, set_id, 0);
ABI_OFF(sm_cluster_val, n_backends, 4);
ABI_OFF(sm_cluster_val, maglev_size, 8);
ABI_OFF(sm_cluster_val, max_conns, 12);
ABI_OFF(sm_cluster_val, lb, 16);
ABI_OFF(sm_cluster_val, min_health_pct, 17);
ABI_OFF(sm_cluster_val, flags, 18);
ABI_OFF(sm_cluster_val, pad, 20);

ABI_SIZE(sm_bset_key, 8);
ABI_OFF(sm_bset_key, set_id, 0);
ABI_OFF(sm_bset_key, idx, 4);

ABI_SIZE(sm_be_key, 8);
ABI_OFF(sm_be_key, addr, 0);
ABI_OFF(sm_be_key, port, 4);
ABI_OFF(sm_be_key, pad, 6);

ABI_SIZE(sm_maglev_val, 4);
ABI_OFF(sm_maglev_val, idx, 0);

ABI_SIZE(sm_backend_val, 16);
ABI_OFF(sm_backend_val, flags, 0);
ABI_OFF(sm_backend_val, pad, 4);
ABI_OFF(sm_backend_val, eject_until_ns, 8);

ABI_SIZE(sm_be_active_val, 8);
ABI_OFF(sm_be_active_val, active, 0);

ABI_SIZE(sm_be_stats_val, 16);
ABI_OFF(sm_be_stats_val, conns_total, 0);
ABI_OFF(sm_be_stats_val, connect_fail, 8);

ABI_SIZE(sm_svc_stats_val, 32);
ABI_OFF(sm_svc_stats_val, connects, 0);
ABI_OFF(sm_svc_stats_val, overflows, 8);
ABI_OFF(sm_svc_stats_val, no_backend, 16);
ABI_OFF(sm_svc_stats_val, panic, 24);

ABI_SIZE(sm_limit_key, 16);
ABI_OFF(sm_limit_key, netns_cookie, 0);
ABI_OFF(sm_limit_key, cluster_id, 8);

ABI_SIZE(sm_limit_val, 8);
ABI_OFF(sm_limit_val, active, 0);

ABI_SIZE(sm_sock_key, 24);
ABI_OFF(sm_sock_key, sip, 0);
ABI_OFF(sm_sock_key, dip, 4);
ABI_OFF(sm_sock_key, sport, 8);
ABI_OFF(sm_sock_key, dport, 10);
ABI_OFF(sm_sock_key, pad, 12);
ABI_OFF(sm_sock_key, netns_cookie, 16);

ABI_SIZE(sm_pod_key, 4);
ABI_OFF(sm_pod_key, addr, 0);

ABI_SIZE(sm_pod_val, 4);
ABI_OFF(sm_pod_val, flags, 0);

ABI_SIZE(sm_config_val, 24);
ABI_OFF(sm_config_val, flags, 0);
ABI_OFF(sm_config_val, l7_addr, 4);
ABI_OFF(sm_config_val, generation, 8);
ABI_OFF(sm_config_val, l7_port, 16);
ABI_OFF(sm_config_val, pad, 18);
ABI_SIZE(sm_l7_orig_key, 8);
ABI_OFF(sm_l7_orig_key, port, 4);
ABI_SIZE(sm_l7_orig_val, 16);
ABI_OFF(sm_l7_orig_val, netns_cookie, 8);

ABI_SIZE(sm_sk_state, 40);
ABI_OFF(sm_sk_state, orig_vip, 0);
ABI_OFF(sm_sk_state, orig_port, 4);
ABI_OFF(sm_sk_state, flags, 6);
ABI_OFF(sm_sk_state, be, 8);
ABI_OFF(sm_sk_state, cluster_id, 16);
ABI_OFF(sm_sk_state, netns_cookie, 24);
ABI_OFF(sm_sk_state, redir, 32);
ABI_OFF(sm_sk_state, release, 36);

ABI_SIZE(sm_flow_key, 20);
ABI_OFF(sm_flow_key, src, 0);
ABI_OFF(sm_flow_key, svc, 4);
ABI_OFF(sm_flow_key, be, 12);

ABI_SIZE(sm_flow_stats_val, 40);
ABI_OFF(sm_flow_stats_val, opened, 0);
ABI_OFF(sm_flow_stats_val, closed, 8);
ABI_OFF(sm_flow_stats_val, connect_fail, 16);
ABI_OFF(sm_flow_stats_val, tx_bytes, 24);
ABI_OFF(sm_flow_stats_val, rx_bytes, 32);

ABI_SIZE(sm_sk_flow, 24);
ABI_OFF(sm_sk_flow, key, 0);
ABI_OFF(sm_sk_flow, flags, 20);

ABI_SIZE(sm_overflow_key, 16);
ABI_OFF(sm_overflow_key, cluster_id, 0);
ABI_OFF(sm_overflow_key, src, 8);
ABI_OFF(sm_overflow_key, pad, 12);

ABI_SIZE(sm_meta_key, 16);
ABI_OFF(sm_meta_key, kind, 0);
ABI_OFF(sm_meta_key, pad, 4);
ABI_OFF(sm_meta_key, id, 8);

ABI_SIZE(sm_meta_val, 192);
ABI_OFF(sm_meta_val, name, 0);
ABI_OFF(sm_meta_val, extra, 128);

/* Values stored in maps or shared with the CLI: append-only. */
_Static_assert(SM_LB_LEAST_REQUEST == 0 && SM_LB_ROUND_ROBIN == 1 &&
	       SM_LB_RANDOM == 2 && SM_LB_MAGLEV == 3, "sm_lb values");
_Static_assert(SM_BE_F_READY == 1 && SM_BE_F_EJECTED == 2, "sm_be_flags");
_Static_assert(SM_STAT_CONNECT_SEEN == 0 && SM_STAT_CONNECT_FAIL == 15 &&
	       SM_STAT_MAX > SM_STAT_CONNECT_FAIL && SM_STAT_SOCK_REMOTE == 21 &&
	       SM_STAT_CONNECT_V4MAPPED == 22 && SM_STAT_CONNECT_V6_NATIVE == 23 &&
	       SM_STAT_MAX <= SM_STAT_SLOTS, "sm_stat indices");
_Static_assert(SM_POD_F_NO_REDIRECT == 1 && SM_POD_F_LOCAL == 2 && SM_CFG_F_REDIRECT == 1 &&
	       SM_CFG_F_LOCAL_ONLY == 2 && SM_SVC_F_L7 == 1, "flag values");
_Static_assert(SM_META_SVC == 1 && SM_META_CLUSTER == 2 && SM_META_BACKEND == 3,
	       "sm_meta_kind");
_Static_assert(SM_REDIR_UNDECIDED == 0 && SM_REDIR_ON == 1 && SM_REDIR_OFF == 2,
	       "sm_redir_mode");
_Static_assert(SM_FLOW_F_CLIENT == 1 && SM_FLOW_F_OPEN == 2 && SM_FLOW_F_PEER == 4 &&
	       SM_FLOW_F_NONE == 8, "sm_flow_flags");
_Static_assert(SM_STAT_L7_FALLBACK == 19 && SM_STAT_FLOW_ERR == 20 && SM_STAT_SOCK_REMOTE == 21,
	       "sm_stat appended");

/* Runtime twin, so the runner lists the ABI check and it can fail visibly. */
TEST(abi_layout)
{
	static const struct { const char *name; size_t got, want; } c[] = {
		{ "sm_svc_key", sizeof(struct sm_svc_key), 8 },
		{ "sm_svc_val", sizeof(struct sm_svc_val), 16 },
		{ "sm_cluster_val", sizeof(struct sm_cluster_val), 24 },
		{ "sm_be_key", sizeof(struct sm_be_key), 8 },
		{ "sm_backend_val", sizeof(struct sm_backend_val), 16 },
		{ "sm_limit_key", sizeof(struct sm_limit_key), 16 },
		{ "sm_sock_key", sizeof(struct sm_sock_key), 24 },
		{ "sm_sk_state", sizeof(struct sm_sk_state), 40 },
		{ "sm_flow_key", sizeof(struct sm_flow_key), 20 },
		{ "sm_flow_stats_val", sizeof(struct sm_flow_stats_val), 40 },
		{ "sm_sk_flow", sizeof(struct sm_sk_flow), 24 },
		{ "sm_overflow_key", sizeof(struct sm_overflow_key), 16 },
		{ "sm_meta_key", sizeof(struct sm_meta_key), 16 },
		{ "sm_meta_val", sizeof(struct sm_meta_val), 192 },
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
		if (!ASSERT_EQ(c[i].got, c[i].want))
			fprintf(stderr, "  struct %s\n", c[i].name);
	/* The Maglev bounds are primes and the route table fits a __u16 count. */
	ASSERT_EQ(SM_MAGLEV_MIN_SIZE, 4093);
	ASSERT_EQ(SM_MAGLEV_MAX_SIZE, 65521);
	ASSERT_LE(SM_MAX_ROUTE_SLOTS, 65535);
}
