// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * upstream: outlier detection with an injected clock (Envoy semantics),
 * load balancing (round robin, P2C, random, consistent hash, avoid list,
 * panic), circuit breakers, and a bounded multi-thread smoke test.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "test.h"
#include "proxy/upstream.h"

#define FX_MAX_HOSTS 16

struct fx {
	struct l7_host hosts[FX_MAX_HOSTS];
	struct l7_cluster c;
};

static void fx_init(struct fx *f, size_t n, uint8_t lb)
{
	memset(f, 0, sizeof(*f));
	for (size_t i = 0; i < n; i++) {
		f->hosts[i].addr = htonl(0x0a000001u + (uint32_t)i);	/* 10.0.0.1.. */
		f->hosts[i].port = 8080;
		f->hosts[i].ready = true;
	}
	f->c.id = 42;
	f->c.name = "outbound|80||svc.ns.svc.cluster.local";
	f->c.lb = lb;
	f->c.hosts = f->hosts;
	f->c.n_hosts = n;
	f->c.outlier.enabled = true;
	f->c.outlier.consecutive_5xx = 3;
	f->c.outlier.interval_ms = 10000;
	f->c.outlier.base_ejection_ms = 30000;
	f->c.outlier.max_ejection_ms = 300000;
	f->c.outlier.max_ejection_pct = 100;
}

struct evlog {
	struct up_outlier_event ev[64];
	char cluster[64][128];
	size_t n;
};

static void evlog_cb(void *ctx, const struct up_outlier_event *ev)
{
	struct evlog *l = ctx;

	if (l->n >= 64)
		return;
	l->ev[l->n] = *ev;
	snprintf(l->cluster[l->n], sizeof(l->cluster[0]), "%s", ev->cluster ? ev->cluster : "");
	l->ev[l->n].cluster = l->cluster[l->n];
	l->n++;
}

static bool fx_ejected(struct up_registry *r, const struct fx *f, size_t i)
{
	return up_host_ejected(r, f->hosts[i].addr, f->hosts[i].port, 0);
}

static void fx_http(struct up_registry *r, struct fx *f, size_t i, int status, uint64_t now)
{
	up_outlier_record(r, &f->c, &f->hosts[i], UP_RESULT_HTTP, status, now);
}

static uint32_t fx_times(struct up_registry *r, const struct fx *f, size_t i)
{
	uint32_t t;

	up_host_info(r, f->hosts[i].addr, f->hosts[i].port, &t, NULL, NULL);
	return t;
}

static uint64_t fx_until(struct up_registry *r, const struct fx *f, size_t i)
{
	uint64_t u;

	up_host_info(r, f->hosts[i].addr, f->hosts[i].port, NULL, &u, NULL);
	return u;
}

/* ---- outlier detection ---- */

TEST(upstream_outlier_ejects_on_nth_5xx)
{
	struct evlog log = { 0 };
	struct up_registry *r = up_registry_new(evlog_cb, &log);
	struct fx f;

	fx_init(&f, 3, L7_LB_ROUND_ROBIN);
	fx_http(r, &f, 0, 500, 1000);
	fx_http(r, &f, 0, 503, 1000);
	ASSERT_FALSE(fx_ejected(r, &f, 0));
	ASSERT_EQ(log.n, 0);
	fx_http(r, &f, 0, 599, 1000);
	ASSERT_TRUE(fx_ejected(r, &f, 0));
	ASSERT_FALSE(fx_ejected(r, &f, 1));
	if (ASSERT_EQ(log.n, 1)) {
		ASSERT_TRUE(log.ev[0].ejected);
		ASSERT_EQ(log.ev[0].addr, f.hosts[0].addr);
		ASSERT_EQ(log.ev[0].port, 8080);
		ASSERT_EQ(log.ev[0].until_ms, 31000);
		ASSERT_EQ(log.ev[0].times_ejected, 1);
		ASSERT_STREQ(log.ev[0].reason, "consecutive_5xx");
		ASSERT_STREQ(log.ev[0].cluster, f.c.name);
	}
	ASSERT_EQ(fx_until(r, &f, 0), 31000);
	up_registry_free(r);
}

TEST(upstream_outlier_success_resets)
{
	struct up_registry *r = up_registry_new(NULL, NULL);
	struct fx f;

	fx_init(&f, 3, L7_LB_ROUND_ROBIN);
	fx_http(r, &f, 0, 500, 0);
	fx_http(r, &f, 0, 500, 0);
	fx_http(r, &f, 0, 200, 0);
	fx_http(r, &f, 0, 500, 0);
	fx_http(r, &f, 0, 500, 0);
	ASSERT_FALSE(fx_ejected(r, &f, 0));
	fx_http(r, &f, 0, 404, 0);	/* 4xx is not an error */
	fx_http(r, &f, 0, 500, 0);
	fx_http(r, &f, 0, 500, 0);
	ASSERT_FALSE(fx_ejected(r, &f, 0));
	fx_http(r, &f, 0, 500, 0);
	ASSERT_TRUE(fx_ejected(r, &f, 0));
	up_registry_free(r);
}

TEST(upstream_outlier_disabled_or_zero)
{
	struct up_registry *r = up_registry_new(NULL, NULL);
	struct fx f;

	fx_init(&f, 2, L7_LB_ROUND_ROBIN);
	f.c.outlier.enabled = false;
	for (int i = 0; i < 20; i++)
		fx_http(r, &f, 0, 500, 0);
	ASSERT_FALSE(fx_ejected(r, &f, 0));
	f.c.outlier.enabled = true;
	f.c.outlier.consecutive_5xx = 0;	/* off */
	for (int i = 0; i < 20; i++)
		fx_http(r, &f, 0, 500, 0);
	ASSERT_FALSE(fx_ejected(r, &f, 0));
	up_registry_free(r);
}

TEST(upstream_outlier_gateway_errors)
{
	struct evlog log = { 0 };
	struct up_registry *r = up_registry_new(evlog_cb, &log);
	struct fx f;

	fx_init(&f, 4, L7_LB_ROUND_ROBIN);
	f.c.outlier.consecutive_5xx = 0;
	f.c.outlier.consecutive_gateway = 3;
	/* 500 is a 5xx but no gateway error: it never ejects and breaks a streak */
	for (int i = 0; i < 10; i++)
		fx_http(r, &f, 1, 500, 0);
	ASSERT_FALSE(fx_ejected(r, &f, 1));
	fx_http(r, &f, 1, 502, 0);
	fx_http(r, &f, 1, 502, 0);
	fx_http(r, &f, 1, 500, 0);
	fx_http(r, &f, 1, 502, 0);
	fx_http(r, &f, 1, 502, 0);
	ASSERT_FALSE(fx_ejected(r, &f, 1));
	fx_http(r, &f, 0, 502, 0);
	fx_http(r, &f, 0, 503, 0);
	ASSERT_FALSE(fx_ejected(r, &f, 0));
	fx_http(r, &f, 0, 504, 0);
	ASSERT_TRUE(fx_ejected(r, &f, 0));
	if (ASSERT_EQ(log.n, 1))
		ASSERT_STREQ(log.ev[0].reason, "consecutive_gateway_failure");
	/* local-origin failures count as gateway errors without the split */
	up_outlier_record(r, &f.c, &f.hosts[2], UP_RESULT_CONNECT_FAIL, 0, 0);
	up_outlier_record(r, &f.c, &f.hosts[2], UP_RESULT_TIMEOUT, 0, 0);
	ASSERT_FALSE(fx_ejected(r, &f, 2));
	up_outlier_record(r, &f.c, &f.hosts[2], UP_RESULT_RESET, 0, 0);
	ASSERT_TRUE(fx_ejected(r, &f, 2));
	up_registry_free(r);
}

TEST(upstream_outlier_local_origin_no_split)
{
	struct up_registry *r = up_registry_new(NULL, NULL);
	struct fx f;

	fx_init(&f, 3, L7_LB_ROUND_ROBIN);
	up_outlier_record(r, &f.c, &f.hosts[0], UP_RESULT_CONNECT_FAIL, 0, 0);
	fx_http(r, &f, 0, 500, 0);
	ASSERT_FALSE(fx_ejected(r, &f, 0));
	up_outlier_record(r, &f.c, &f.hosts[0], UP_RESULT_TIMEOUT, 0, 0);
	ASSERT_TRUE(fx_ejected(r, &f, 0));
	/* the kernel's connect failures feed the same counter */
	up_outlier_connect_failures(r, &f.c, &f.hosts[1], 2, 0);
	ASSERT_FALSE(fx_ejected(r, &f, 1));
	up_outlier_connect_failures(r, &f.c, &f.hosts[1], 1, 0);
	ASSERT_TRUE(fx_ejected(r, &f, 1));
	up_registry_free(r);
}

TEST(upstream_outlier_split_local_origin)
{
	struct evlog log = { 0 };
	struct up_registry *r = up_registry_new(evlog_cb, &log);
	struct fx f;

	fx_init(&f, 4, L7_LB_ROUND_ROBIN);
	f.c.outlier.split_local_origin = true;
	f.c.outlier.consecutive_local_origin = 2;
	/* local failures do not count as 5xx with the split */
	fx_http(r, &f, 0, 500, 0);
	fx_http(r, &f, 0, 500, 0);
	up_outlier_connect_failures(r, &f.c, &f.hosts[0], 1, 0);
	ASSERT_FALSE(fx_ejected(r, &f, 0));
	fx_http(r, &f, 0, 500, 0);
	ASSERT_TRUE(fx_ejected(r, &f, 0));
	if (ASSERT_EQ(log.n, 1))
		ASSERT_STREQ(log.ev[0].reason, "consecutive_5xx");
	/* a response (even a 5xx) proves the connection: the local streak ends */
	up_outlier_record(r, &f.c, &f.hosts[1], UP_RESULT_CONNECT_FAIL, 0, 0);
	fx_http(r, &f, 1, 503, 0);
	up_outlier_record(r, &f.c, &f.hosts[1], UP_RESULT_RESET, 0, 0);
	ASSERT_FALSE(fx_ejected(r, &f, 1));
	up_outlier_record(r, &f.c, &f.hosts[1], UP_RESULT_TIMEOUT, 0, 0);
	ASSERT_TRUE(fx_ejected(r, &f, 1));
	if (ASSERT_EQ(log.n, 2))
		ASSERT_STREQ(log.ev[1].reason, "consecutive_local_origin_failure");
	/* consecutive_local_origin 0 = off */
	f.c.outlier.consecutive_local_origin = 0;
	up_outlier_connect_failures(r, &f.c, &f.hosts[2], 50, 0);
	ASSERT_FALSE(fx_ejected(r, &f, 2));
	up_registry_free(r);
}

/* Eject host i by 3 errors at now, return it by a tick at its until time. */
static uint64_t fx_eject_and_return(struct up_registry *r, struct fx *f, size_t i, uint64_t now)
{
	uint64_t until;

	for (int k = 0; k < 3; k++)
		fx_http(r, f, i, 500, now);
	until = fx_until(r, f, i);
	up_outlier_tick(r, NULL, until - 1);
	if (!ASSERT_TRUE(fx_ejected(r, f, i)))
		return 0;
	up_outlier_tick(r, NULL, until);
	ASSERT_FALSE(fx_ejected(r, f, i));
	return until - now;
}

TEST(upstream_outlier_time_grows_with_times_ejected)
{
	struct evlog log = { 0 };
	struct up_registry *r = up_registry_new(evlog_cb, &log);
	struct fx f;
	uint64_t now = 5000;

	fx_init(&f, 2, L7_LB_ROUND_ROBIN);
	f.c.outlier.base_ejection_ms = 1000;
	f.c.outlier.interval_ms = 1000000;	/* no decay in this test */
	for (uint64_t k = 1; k <= 4; k++) {
		uint64_t d = fx_eject_and_return(r, &f, 0, now);

		ASSERT_EQ(d, 1000 * k);
		ASSERT_EQ(fx_times(r, &f, 0), k);
		now += d + 1;
	}
	/* every ejection and every return reported; a return says ejected=false */
	if (ASSERT_EQ(log.n, 8)) {
		ASSERT_TRUE(log.ev[6].ejected);
		ASSERT_EQ(log.ev[6].times_ejected, 4);
		ASSERT_FALSE(log.ev[7].ejected);
		ASSERT_EQ(log.ev[7].addr, f.hosts[0].addr);
		ASSERT_STREQ(log.ev[7].cluster, f.c.name);
		ASSERT_EQ(fx_until(r, &f, 0), 0);
	}
	up_registry_free(r);
}

TEST(upstream_outlier_time_capped)
{
	struct up_registry *r = up_registry_new(NULL, NULL);
	static const uint64_t want[] = { 1000, 2000, 2500, 2500, 2500 };
	static const uint32_t want_times[] = { 1, 2, 3, 4, 4 };
	struct fx f;
	uint64_t now = 0;

	fx_init(&f, 2, L7_LB_ROUND_ROBIN);
	f.c.outlier.base_ejection_ms = 1000;
	f.c.outlier.max_ejection_ms = 2500;
	f.c.outlier.interval_ms = 1000000;
	for (size_t k = 0; k < 5; k++) {
		ASSERT_EQ(fx_eject_and_return(r, &f, 0, now), want[k]);
		/* Envoy stops growing the multiplier once base x n >= max + base */
		ASSERT_EQ(fx_times(r, &f, 0), want_times[k]);
		now += 10000;
	}
	/* max below base: base wins (Envoy uses max(base, max)) */
	f.c.outlier.max_ejection_ms = 500;
	ASSERT_EQ(fx_eject_and_return(r, &f, 1, now), 1000);
	ASSERT_EQ(fx_eject_and_return(r, &f, 1, now + 5000), 1000);
	up_registry_free(r);
}

TEST(upstream_outlier_multiplier_decays)
{
	struct up_registry *r = up_registry_new(NULL, NULL);
	struct fx f;
	uint64_t d;

	fx_init(&f, 2, L7_LB_ROUND_ROBIN);
	f.c.outlier.base_ejection_ms = 1000;
	f.c.outlier.interval_ms = 500;
	ASSERT_EQ(fx_eject_and_return(r, &f, 0, 0), 1000);	/* back at 1000 */
	ASSERT_EQ(fx_eject_and_return(r, &f, 0, 1100), 2000);	/* back at 3100 */
	ASSERT_EQ(fx_times(r, &f, 0), 2);
	up_outlier_tick(r, NULL, 3599);
	ASSERT_EQ(fx_times(r, &f, 0), 2);
	up_outlier_tick(r, NULL, 3600);		/* one healthy interval */
	ASSERT_EQ(fx_times(r, &f, 0), 1);
	up_outlier_tick(r, NULL, 3700);		/* not yet another interval */
	ASSERT_EQ(fx_times(r, &f, 0), 1);
	up_outlier_tick(r, NULL, 4100);
	ASSERT_EQ(fx_times(r, &f, 0), 0);
	up_outlier_tick(r, NULL, 9000);
	ASSERT_EQ(fx_times(r, &f, 0), 0);
	/* fully decayed: the next ejection is base again */
	d = fx_eject_and_return(r, &f, 0, 10000);
	ASSERT_EQ(d, 1000);
	/* no decay while ejected */
	for (int k = 0; k < 3; k++)
		fx_http(r, &f, 1, 500, 20000);
	up_outlier_tick(r, NULL, 20900);
	ASSERT_TRUE(fx_ejected(r, &f, 1));
	ASSERT_EQ(fx_times(r, &f, 1), 1);
	up_registry_free(r);
}

TEST(upstream_outlier_max_ejection_percent)
{
	struct up_registry *r = up_registry_new(NULL, NULL);
	struct fx f;

	/* 10 hosts, 10%: one at a time */
	fx_init(&f, 10, L7_LB_ROUND_ROBIN);
	f.c.outlier.max_ejection_pct = 10;
	for (int k = 0; k < 3; k++)
		fx_http(r, &f, 0, 500, 0);
	ASSERT_TRUE(fx_ejected(r, &f, 0));
	for (int k = 0; k < 6; k++)
		fx_http(r, &f, 1, 500, 0);
	ASSERT_FALSE(fx_ejected(r, &f, 1));
	up_outlier_tick(r, NULL, 30000);
	ASSERT_FALSE(fx_ejected(r, &f, 0));
	for (int k = 0; k < 3; k++)
		fx_http(r, &f, 1, 500, 30000);
	ASSERT_TRUE(fx_ejected(r, &f, 1));
	up_registry_free(r);

	/* 2 hosts, 10%: 50% > 10%, but one host can always be ejected */
	r = up_registry_new(NULL, NULL);
	fx_init(&f, 2, L7_LB_ROUND_ROBIN);
	f.c.outlier.max_ejection_pct = 10;
	for (int k = 0; k < 3; k++)
		fx_http(r, &f, 0, 500, 0);
	ASSERT_TRUE(fx_ejected(r, &f, 0));
	for (int k = 0; k < 3; k++)
		fx_http(r, &f, 1, 500, 0);
	ASSERT_FALSE(fx_ejected(r, &f, 1));
	up_registry_free(r);

	/* 10 hosts, 20%: two, not three */
	r = up_registry_new(NULL, NULL);
	fx_init(&f, 10, L7_LB_ROUND_ROBIN);
	f.c.outlier.max_ejection_pct = 20;
	for (size_t h = 0; h < 3; h++)
		for (int k = 0; k < 3; k++)
			fx_http(r, &f, h, 500, 0);
	ASSERT_TRUE(fx_ejected(r, &f, 0));
	ASSERT_TRUE(fx_ejected(r, &f, 1));
	ASSERT_FALSE(fx_ejected(r, &f, 2));
	up_registry_free(r);
}

TEST(upstream_outlier_survives_reload)
{
	struct up_registry *r = up_registry_new(NULL, NULL);
	struct fx f, g;

	fx_init(&f, 3, L7_LB_ROUND_ROBIN);
	for (int k = 0; k < 3; k++)
		fx_http(r, &f, 1, 500, 0);
	/* a new config: new structs, same ids and addresses */
	fx_init(&g, 3, L7_LB_ROUND_ROBIN);
	for (int k = 0; k < 6; k++) {
		uint32_t idx;

		ASSERT_EQ(up_pick_host(r, &g.c, NULL, 0, NULL, 0, 0, &idx), 0);
		ASSERT_NE(idx, 1);
	}
	/* a host that left the config still returns on tick */
	g.c.n_hosts = 1;
	up_outlier_tick(r, &(struct l7_config){ 0 }, 30000);
	ASSERT_FALSE(fx_ejected(r, &f, 1));
	up_registry_free(r);
}

/* ---- load balancing ---- */

TEST(upstream_lb_round_robin_exact)
{
	struct up_registry *r = up_registry_new(NULL, NULL);
	struct fx f;
	uint32_t idx, prev = UINT32_MAX;

	fx_init(&f, 4, L7_LB_ROUND_ROBIN);
	f.hosts[1].ready = false;
	for (int k = 0; k < 3; k++)
		fx_http(r, &f, 2, 500, 0);
	ASSERT_TRUE(fx_ejected(r, &f, 2));
	/* eligible {0, 3}: strict alternation */
	for (int k = 0; k < 20; k++) {
		ASSERT_EQ(up_pick_host(r, &f.c, NULL, 0, NULL, 0, 0, &idx), 0);
		ASSERT_TRUE(idx == 0 || idx == 3);
		ASSERT_NE(idx, prev);
		prev = idx;
	}
	/* all 4 back: each host exactly once per 4 picks */
	f.hosts[1].ready = true;
	up_outlier_tick(r, NULL, 30000);
	for (int round = 0; round < 5; round++) {
		int seen[4] = { 0 };

		for (int k = 0; k < 4; k++) {
			ASSERT_EQ(up_pick_host(r, &f.c, NULL, 0, NULL, 0, 0, &idx), 0);
			seen[idx]++;
		}
		for (int k = 0; k < 4; k++)
			ASSERT_EQ(seen[k], 1);
	}
	up_registry_free(r);
}

TEST(upstream_lb_no_host)
{
	struct up_registry *r = up_registry_new(NULL, NULL);
	struct fx f;
	uint32_t idx;

	fx_init(&f, 2, L7_LB_LEAST_REQUEST);
	f.hosts[0].ready = false;
	f.hosts[1].ready = false;
	ASSERT_EQ(up_pick_host(r, &f.c, NULL, 0, NULL, 0, 0, &idx), -ENOENT);
	f.c.n_hosts = 0;
	ASSERT_EQ(up_pick_host(r, &f.c, NULL, 0, NULL, 0, 0, &idx), -ENOENT);
	/* one host, ejected, no panic threshold: no healthy upstream */
	fx_init(&f, 1, L7_LB_LEAST_REQUEST);
	for (int k = 0; k < 3; k++)
		fx_http(r, &f, 0, 500, 0);
	ASSERT_TRUE(fx_ejected(r, &f, 0));
	ASSERT_EQ(up_pick_host(r, &f.c, NULL, 0, NULL, 0, 0, &idx), -ENOENT);
	up_registry_free(r);
}

TEST(upstream_lb_panic)
{
	struct up_registry *r = up_registry_new(NULL, NULL);
	struct fx f;
	uint32_t idx;
	int seen[3] = { 0 };

	fx_init(&f, 3, L7_LB_ROUND_ROBIN);
	for (size_t h = 0; h < 2; h++)
		for (int k = 0; k < 3; k++)
			fx_http(r, &f, h, 500, 0);
	ASSERT_TRUE(fx_ejected(r, &f, 0));
	ASSERT_TRUE(fx_ejected(r, &f, 1));
	/* 33% healthy, no threshold: only host 2 */
	for (int k = 0; k < 9; k++) {
		ASSERT_EQ(up_pick_host(r, &f.c, NULL, 0, NULL, 0, 0, &idx), 0);
		ASSERT_EQ(idx, 2);
	}
	/* 33% < 50%: panic, ejections ignored */
	f.c.outlier.min_health_pct = 50;
	for (int k = 0; k < 9; k++) {
		ASSERT_EQ(up_pick_host(r, &f.c, NULL, 0, NULL, 0, 0, &idx), 0);
		seen[idx]++;
	}
	ASSERT_EQ(seen[0], 3);
	ASSERT_EQ(seen[1], 3);
	ASSERT_EQ(seen[2], 3);
	/* 33% >= 30%: no panic */
	f.c.outlier.min_health_pct = 30;
	for (int k = 0; k < 5; k++) {
		ASSERT_EQ(up_pick_host(r, &f.c, NULL, 0, NULL, 0, 0, &idx), 0);
		ASSERT_EQ(idx, 2);
	}
	/* panic never uses a host that is not ready */
	f.c.outlier.min_health_pct = 100;
	f.hosts[0].ready = false;
	for (int k = 0; k < 10; k++) {
		ASSERT_EQ(up_pick_host(r, &f.c, NULL, 0, NULL, 0, 0, &idx), 0);
		ASSERT_NE(idx, 0);
	}
	up_registry_free(r);
}

TEST(upstream_lb_p2c_prefers_less_loaded)
{
	struct up_registry *r = up_registry_new(NULL, NULL);
	struct fx f;
	int seen[3] = { 0 };
	uint32_t idx;

	fx_init(&f, 3, L7_LB_LEAST_REQUEST);
	for (int k = 0; k < 5; k++)
		up_host_request_start(r, &f.hosts[1]);
	for (int k = 0; k < 10; k++)
		up_host_request_start(r, &f.hosts[2]);
	/* two distinct of three: host 0 wins 2/3, host 1 1/3, host 2 never */
	for (int k = 0; k < 3000; k++) {
		ASSERT_EQ(up_pick_host(r, &f.c, NULL, 0, NULL, 0, 0, &idx), 0);
		seen[idx]++;
	}
	ASSERT_GE(seen[0], 1800);
	ASSERT_LE(seen[0], 2200);
	ASSERT_GE(seen[1], 800);
	ASSERT_EQ(seen[2], 0);
	for (int k = 0; k < 10; k++)
		up_host_request_end(r, &f.hosts[2]);
	{
		int64_t a;

		up_host_info(r, f.hosts[2].addr, 8080, NULL, NULL, &a);
		ASSERT_EQ(a, 0);
		up_host_info(r, f.hosts[1].addr, 8080, NULL, NULL, &a);
		ASSERT_EQ(a, 5);
	}
	/* requests sent, ever: ended ones count too */
	ASSERT_EQ(up_host_requests(r, f.hosts[2].addr, 8080), 10);
	ASSERT_EQ(up_host_requests(r, f.hosts[1].addr, 8080), 5);
	ASSERT_EQ(up_host_requests(r, f.hosts[0].addr, 8080), 0);
	up_registry_free(r);
}

TEST(upstream_lb_random_spread)
{
	struct up_registry *r = up_registry_new(NULL, NULL);
	struct fx f;
	int seen[4] = { 0 };
	uint32_t idx;

	fx_init(&f, 4, L7_LB_RANDOM);
	for (int k = 0; k < 4000; k++) {
		ASSERT_EQ(up_pick_host(r, &f.c, NULL, 0, NULL, 0, 0, &idx), 0);
		if (ASSERT_TRUE(idx < 4))
			seen[idx]++;
	}
	for (int k = 0; k < 4; k++) {
		ASSERT_GE(seen[k], 800);
		ASSERT_LE(seen[k], 1200);
	}
	up_registry_free(r);
}

struct fx_req {
	const char *hdr_name[4];
	const char *hdr_val[4];
};

static const char *fx_req_header(const void *ctx, const char *name, size_t *len)
{
	const struct fx_req *q = ctx;

	for (int i = 0; i < 4 && q->hdr_name[i]; i++)
		if (!strcmp(q->hdr_name[i], name)) {
			*len = strlen(q->hdr_val[i]);
			return q->hdr_val[i];
		}
	return NULL;
}

static uint32_t fx_pick_hdr(struct up_registry *r, const struct fx *f, const char *name,
			    const char *val)
{
	struct fx_req q = { { name }, { val } };
	struct l7_request_view rq = { .header = fx_req_header, .ctx = &q };
	uint32_t idx = UINT32_MAX;

	ASSERT_EQ(up_pick_host(r, &f->c, &rq, 0, NULL, 0, 0, &idx), 0);
	return idx;
}

TEST(upstream_lb_hash_header_consistent)
{
	struct up_registry *r = up_registry_new(NULL, NULL);
	struct fx f, g;
	uint32_t before[200];
	int per_host[5] = { 0 }, moved = 0;
	char key[32];

	fx_init(&f, 5, L7_LB_HASH);
	f.c.hash_kind = POL_HASH_HEADER;
	f.c.hash_key = "x-user";
	for (int k = 0; k < 20; k++)
		ASSERT_EQ(fx_pick_hdr(r, &f, "x-user", "jason"), fx_pick_hdr(r, &f, "x-user", "jason"));
	for (int k = 0; k < 200; k++) {
		snprintf(key, sizeof(key), "user-%d", k);
		before[k] = fx_pick_hdr(r, &f, "x-user", key);
		if (ASSERT_TRUE(before[k] < 5))
			per_host[before[k]]++;
	}
	for (int h = 0; h < 5; h++)
		ASSERT_GE(per_host[h], 15);
	/* host 2 leaves (a new host set without it): only its keys move */
	fx_init(&g, 5, L7_LB_HASH);
	g.c.hash_kind = POL_HASH_HEADER;
	g.c.hash_key = "x-user";
	g.hosts[2] = g.hosts[4];
	g.c.n_hosts = 4;
	for (int k = 0; k < 200; k++) {
		uint32_t now;

		snprintf(key, sizeof(key), "user-%d", k);
		now = fx_pick_hdr(r, &g, "x-user", key);
		if (before[k] == 2) {
			moved++;
			continue;
		}
		/* same backend (index 4 became index 2 in g) */
		ASSERT_EQ(g.hosts[now].addr, f.hosts[before[k]].addr);
	}
	ASSERT_EQ(moved, per_host[2]);
	/* no header: still served (random) */
	ASSERT_TRUE(fx_pick_hdr(r, &f, "other", "x") < 5);
	up_registry_free(r);
}

TEST(upstream_lb_hash_cookie_query_source)
{
	struct up_registry *r = up_registry_new(NULL, NULL);
	struct fx f;
	uint32_t a, b, idx;
	struct fx_req q1 = { { "cookie" }, { "a=1; session=abc; z=9" } };
	struct fx_req q2 = { { "cookie" }, { "session=abc" } };
	struct l7_request_view rq1 = { .header = fx_req_header, .ctx = &q1 };
	struct l7_request_view rq2 = { .header = fx_req_header, .ctx = &q2 };
	int distinct = 0;

	fx_init(&f, 8, L7_LB_HASH);
	f.c.hash_kind = POL_HASH_COOKIE;
	f.c.hash_key = "session";
	ASSERT_EQ(up_pick_host(r, &f.c, &rq1, 0, NULL, 0, 0, &a), 0);
	for (int k = 0; k < 10; k++) {
		ASSERT_EQ(up_pick_host(r, &f.c, &rq2, 0, NULL, 0, 0, &b), 0);
		ASSERT_EQ(a, b);
	}
	/* httpCookie ttl: the generated value picks the host the cookie it
	 * becomes (sent back quoted, as Envoy sets it) picks later; a cookie
	 * present wins over a generated one */
	{
		struct fx_req q3 = { { "cookie" }, { "z=1; session=\"0123456789abcdef\"" } };
		struct fx_req none = { { "x" }, { "y" } };
		struct l7_request_view gen = { .header = fx_req_header, .ctx = &none,
					       .gen_cookie = "0123456789abcdef" };
		struct l7_request_view back = { .header = fx_req_header, .ctx = &q3 };
		size_t n;

		ASSERT_EQ(up_pick_host(r, &f.c, &gen, 0, NULL, 0, 0, &a), 0);
		for (int k = 0; k < 10; k++) {
			ASSERT_EQ(up_pick_host(r, &f.c, &back, 0, NULL, 0, 0, &b), 0);
			ASSERT_EQ(a, b);
		}
		gen.ctx = &q2;
		ASSERT_EQ(up_pick_host(r, &f.c, &rq2, 0, NULL, 0, 0, &a), 0);
		ASSERT_EQ(up_pick_host(r, &f.c, &gen, 0, NULL, 0, 0, &b), 0);
		ASSERT_EQ(a, b);
		ASSERT_TRUE(up_cookie_value("a=\"\"; b=\"x", 10, "a", &n) != NULL);
		ASSERT_EQ(n, 0);
		ASSERT_TRUE(up_cookie_value("a=\"\"; b=\"x", 10, "b", &n) != NULL);
		ASSERT_EQ(n, 2);	/* one quote is no quoting */
	}

	f.c.hash_kind = POL_HASH_QUERY;
	f.c.hash_key = "u";
	{
		struct l7_request_view x = { .query = "a=1&u=jason&b", .query_len = 13 };
		struct l7_request_view y = { .query = "u=jason", .query_len = 7 };

		ASSERT_EQ(up_pick_host(r, &f.c, &x, 0, NULL, 0, 0, &a), 0);
		for (int k = 0; k < 10; k++) {
			ASSERT_EQ(up_pick_host(r, &f.c, &y, 0, NULL, 0, 0, &b), 0);
			ASSERT_EQ(a, b);
		}
	}

	f.c.hash_kind = POL_HASH_SOURCE_IP;
	ASSERT_EQ(up_pick_host(r, &f.c, NULL, htonl(0x0a010203), NULL, 0, 0, &a), 0);
	for (int k = 0; k < 10; k++) {
		ASSERT_EQ(up_pick_host(r, &f.c, NULL, htonl(0x0a010203), NULL, 0, 0, &b), 0);
		ASSERT_EQ(a, b);
	}
	/* different sources spread */
	{
		int seen[8] = { 0 };

		for (uint32_t s = 1; s <= 64; s++) {
			ASSERT_EQ(up_pick_host(r, &f.c, NULL, htonl(0x0a000000 + s), NULL, 0, 0, &idx), 0);
			seen[idx]++;
		}
		for (int k = 0; k < 8; k++)
			distinct += seen[k] > 0;
		ASSERT_GE(distinct, 6);
	}
	up_registry_free(r);
}

TEST(upstream_lb_avoid_previous_hosts)
{
	struct up_registry *r = up_registry_new(NULL, NULL);
	static const uint8_t lbs[] = { L7_LB_ROUND_ROBIN, L7_LB_RANDOM, L7_LB_LEAST_REQUEST, L7_LB_HASH };
	struct fx f;
	uint32_t idx;

	for (size_t l = 0; l < sizeof(lbs); l++) {
		uint32_t avoid2[] = { 0, 1 }, avoid_all[] = { 0, 1, 2 };

		fx_init(&f, 3, lbs[l]);
		f.c.hash_kind = POL_HASH_SOURCE_IP;
		for (int k = 0; k < 20; k++) {
			ASSERT_EQ(up_pick_host(r, &f.c, NULL, 7, avoid2, 2, 0, &idx), 0);
			ASSERT_EQ(idx, 2);
			/* all tried: still an answer */
			ASSERT_EQ(up_pick_host(r, &f.c, NULL, 7, avoid_all, 3, 0, &idx), 0);
			ASSERT_TRUE(idx < 3);
		}
	}
	/* hash with avoid: the next host of the key, and stable */
	{
		uint32_t first, again, avoid[1];

		fx_init(&f, 5, L7_LB_HASH);
		f.c.hash_kind = POL_HASH_SOURCE_IP;
		ASSERT_EQ(up_pick_host(r, &f.c, NULL, 99, NULL, 0, 0, &first), 0);
		avoid[0] = first;
		ASSERT_EQ(up_pick_host(r, &f.c, NULL, 99, avoid, 1, 0, &idx), 0);
		ASSERT_NE(idx, first);
		ASSERT_EQ(up_pick_host(r, &f.c, NULL, 99, avoid, 1, 0, &again), 0);
		ASSERT_EQ(again, idx);
	}
	up_registry_free(r);
}

TEST(upstream_lb_many_hosts)
{
	struct up_registry *r = up_registry_new(NULL, NULL);
	struct l7_host *hosts = calloc(600, sizeof(*hosts));
	struct l7_cluster c = { .id = 7, .lb = L7_LB_ROUND_ROBIN, .hosts = hosts, .n_hosts = 600 };
	uint32_t idx;

	if (!ASSERT_TRUE(hosts != NULL))
		return;
	for (uint32_t i = 0; i < 600; i++)
		hosts[i] = (struct l7_host){ .addr = htonl(0x0b000000 + i), .port = 80, .ready = true };
	for (uint32_t k = 0; k < 1200; k++) {
		ASSERT_EQ(up_pick_host(r, &c, NULL, 0, NULL, 0, 0, &idx), 0);
		ASSERT_EQ(idx, k % 600);
	}
	free(hosts);
	up_registry_free(r);
}

/* ---- circuit breakers ---- */

TEST(upstream_cb_limits_and_overflow)
{
	static const enum up_cb_kind kinds[] = {
		UP_CB_PENDING, UP_CB_REQUESTS, UP_CB_RETRIES, UP_CB_CONNECTIONS,
	};
	struct up_registry *r = up_registry_new(NULL, NULL);
	struct fx f;

	fx_init(&f, 1, L7_LB_ROUND_ROBIN);
	f.c.pool.http1_max_pending = 1;
	f.c.pool.max_requests = 2;
	f.c.pool.max_retries = 3;
	f.c.pool.max_connections = 4;
	for (size_t i = 0; i < 4; i++) {
		enum up_cb_kind k = kinds[i];
		uint32_t limit = (uint32_t)i + 1;

		for (uint32_t n = 0; n < limit; n++)
			ASSERT_TRUE(up_cb_acquire(r, &f.c, k));
		ASSERT_FALSE(up_cb_acquire(r, &f.c, k));
		ASSERT_FALSE(up_cb_acquire(r, &f.c, k));
		ASSERT_EQ(up_cb_overflows(r, f.c.id, k), 2);
		ASSERT_EQ(up_cb_count(r, f.c.id, 0, k), limit);
		up_cb_release(r, &f.c, k);
		ASSERT_TRUE(up_cb_acquire(r, &f.c, k));
		for (uint32_t n = 0; n < limit; n++)
			up_cb_release(r, &f.c, k);
		/* an unpaired release does not wrap */
		up_cb_release(r, &f.c, k);
		ASSERT_EQ(up_cb_count(r, f.c.id, 0, k), 0);
		ASSERT_EQ(up_cb_overflows(r, f.c.id, k), 2);
	}
	ASSERT_EQ(up_cb_overflows(r, 999, UP_CB_PENDING), 0);
	up_registry_free(r);
}

struct wakelog {
	unsigned int slots[8];
	int n;
};

static void wakelog_cb(void *ctx, unsigned int slot)
{
	struct wakelog *l = ctx;

	if (l->n < 8)
		l->slots[l->n] = slot;
	l->n++;
}

TEST(upstream_cb_wait_wakes_only_waiters)
{
	struct up_registry *r = up_registry_new(NULL, NULL);
	struct wakelog log = { 0 }, other = { 0 };
	uint32_t src = 0x0a000107;
	struct fx f;

	fx_init(&f, 1, L7_LB_ROUND_ROBIN);
	f.c.pool.max_connections = 1;
	ASSERT_EQ(up_registry_set_waker(r, wakelog_cb, &log), 0);
	ASSERT_EQ(up_registry_set_waker(r, wakelog_cb, &other), -EBUSY);
	/* nobody waits: a release calls nobody */
	ASSERT_TRUE(up_cb_acquire_src(r, &f.c, src, UP_CB_CONNECTIONS));
	up_cb_release_src(r, &f.c, src, UP_CB_CONNECTIONS);
	ASSERT_EQ(log.n, 0);
	/* full: workers 3 and 200 wait (two requests on 3), a release wakes each once */
	ASSERT_TRUE(up_cb_acquire_src(r, &f.c, src, UP_CB_CONNECTIONS));
	ASSERT_FALSE(up_cb_wait_begin(r, &f.c, src, 3));
	ASSERT_FALSE(up_cb_wait_begin(r, &f.c, src, 3));
	ASSERT_FALSE(up_cb_wait_begin(r, &f.c, src, 200));
	/* other kinds and other sources free no connection slot */
	ASSERT_TRUE(up_cb_acquire_src(r, &f.c, src, UP_CB_PENDING));
	up_cb_release_src(r, &f.c, src, UP_CB_PENDING);
	ASSERT_TRUE(up_cb_acquire_src(r, &f.c, src + 1, UP_CB_CONNECTIONS));
	up_cb_release_src(r, &f.c, src + 1, UP_CB_CONNECTIONS);
	ASSERT_EQ(log.n, 0);
	up_cb_release_src(r, &f.c, src, UP_CB_CONNECTIONS);
	ASSERT_EQ(log.n, 2);
	ASSERT_EQ(log.slots[0], 3);
	ASSERT_EQ(log.slots[1], 200);
	/* a slot free while registering: the waiter retries itself */
	ASSERT_TRUE(up_cb_wait_begin(r, &f.c, src, 5));
	up_cb_wait_end(r, &f.c, src, 5);
	/* worker 3 still has one waiter after one ends; none after both */
	up_cb_wait_end(r, &f.c, src, 3);
	up_cb_wait_end(r, &f.c, src, 200);
	log.n = 0;
	ASSERT_TRUE(up_cb_acquire_src(r, &f.c, src, UP_CB_CONNECTIONS));
	up_cb_release_src(r, &f.c, src, UP_CB_CONNECTIONS);
	ASSERT_EQ(log.n, 1);
	ASSERT_EQ(log.slots[0], 3);
	up_cb_wait_end(r, &f.c, src, 3);
	up_cb_wait_end(r, &f.c, src, 3);	/* unpaired: no wrap */
	/* a slot out of range is never registered: "retry now", then the caller polls */
	ASSERT_TRUE(up_cb_wait_begin(r, &f.c, src, UP_WAIT_SLOTS));
	log.n = 0;
	ASSERT_TRUE(up_cb_acquire_src(r, &f.c, src, UP_CB_CONNECTIONS));
	up_cb_release_src(r, &f.c, src, UP_CB_CONNECTIONS);
	ASSERT_EQ(log.n, 0);
	/* cleared by its owner only, then another may set one */
	ASSERT_EQ(up_registry_set_waker(r, NULL, &other), 0);
	ASSERT_EQ(up_registry_set_waker(r, wakelog_cb, &other), -EBUSY);
	ASSERT_EQ(up_registry_set_waker(r, NULL, &log), 0);
	ASSERT_EQ(up_registry_set_waker(r, wakelog_cb, &other), 0);
	up_registry_free(r);
}

TEST(upstream_cb_unlimited_and_per_source)
{
	struct up_registry *r = up_registry_new(NULL, NULL);
	struct fx f;

	fx_init(&f, 1, L7_LB_ROUND_ROBIN);
	for (int n = 0; n < 10000; n++)
		ASSERT_TRUE(up_cb_acquire(r, &f.c, UP_CB_REQUESTS));
	ASSERT_EQ(up_cb_overflows(r, f.c.id, UP_CB_REQUESTS), 0);
	ASSERT_EQ(up_cb_count(r, f.c.id, 0, UP_CB_REQUESTS), 10000);

	/* per client: one full source does not block another; overflows add up */
	f.c.pool.http1_max_pending = 1;
	ASSERT_TRUE(up_cb_acquire_src(r, &f.c, 1, UP_CB_PENDING));
	ASSERT_FALSE(up_cb_acquire_src(r, &f.c, 1, UP_CB_PENDING));
	ASSERT_TRUE(up_cb_acquire_src(r, &f.c, 2, UP_CB_PENDING));
	ASSERT_FALSE(up_cb_acquire_src(r, &f.c, 2, UP_CB_PENDING));
	ASSERT_EQ(up_cb_overflows(r, f.c.id, UP_CB_PENDING), 2);
	up_cb_release_src(r, &f.c, 1, UP_CB_PENDING);
	ASSERT_TRUE(up_cb_acquire_src(r, &f.c, 1, UP_CB_PENDING));
	up_registry_free(r);
}

/* ---- concurrency ---- */

struct fx_thread {
	struct up_registry *r;
	struct fx *f;
	unsigned seed;
	int ok_picks;
	int ticker;
};

#define FX_ITERS 20000

static void *fx_hammer(void *arg)
{
	struct fx_thread *t = arg;
	static const int codes[] = { 200, 200, 200, 500, 503, 404 };

	for (int i = 0; i < FX_ITERS; i++) {
		uint32_t idx;
		uint64_t now = (uint64_t)i;

		if (up_pick_host(t->r, &t->f->c, NULL, 0, NULL, 0, now, &idx) == 0) {
			const struct l7_host *h = &t->f->hosts[idx];
			bool got = up_cb_acquire(t->r, &t->f->c, UP_CB_REQUESTS);

			up_host_request_start(t->r, h);
			up_outlier_record(t->r, &t->f->c, h, UP_RESULT_HTTP,
					  codes[rand_r(&t->seed) % 6], now);
			up_host_request_end(t->r, h);
			if (got)
				up_cb_release(t->r, &t->f->c, UP_CB_REQUESTS);
			t->ok_picks++;
		}
		if (t->ticker && i % 16 == 0)
			up_outlier_tick(t->r, NULL, now);
	}
	return NULL;
}

static void fx_count_event(void *ctx, const struct up_outlier_event *ev)
{
	long *n = ctx;

	__atomic_add_fetch(&n[ev->ejected ? 0 : 1], 1, __ATOMIC_RELAXED);
}

TEST(upstream_concurrency_smoke)
{
	long events[2] = { 0, 0 };
	struct up_registry *r = up_registry_new(fx_count_event, events);
	struct fx f;
	struct fx_thread t[4];
	pthread_t th[4];

	fx_init(&f, 8, L7_LB_LEAST_REQUEST);
	f.c.pool.max_requests = 3;
	f.c.outlier.base_ejection_ms = 50;
	f.c.outlier.interval_ms = 20;
	f.c.outlier.max_ejection_pct = 50;
	f.c.outlier.min_health_pct = 10;
	for (int i = 0; i < 4; i++) {
		t[i] = (struct fx_thread){ .r = r, .f = &f, .seed = (unsigned)i + 1, .ticker = i == 0 };
		ASSERT_EQ(pthread_create(&th[i], NULL, fx_hammer, &t[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		ASSERT_GE(t[i].ok_picks, 1);
	}
	ASSERT_EQ(up_cb_count(r, f.c.id, 0, UP_CB_REQUESTS), 0);
	for (size_t h = 0; h < 8; h++) {
		int64_t a;

		up_host_info(r, f.hosts[h].addr, 8080, NULL, NULL, &a);
		ASSERT_EQ(a, 0);
	}
	/* ejections happened and every return matches an ejection */
	ASSERT_GE(events[0], 1);
	ASSERT_LE(events[1], events[0]);
	up_outlier_tick(r, NULL, UINT64_MAX / 2);
	ASSERT_EQ(events[1], events[0]);
	for (size_t h = 0; h < 8; h++)
		ASSERT_FALSE(fx_ejected(r, &f, h));
	up_registry_free(r);
}
