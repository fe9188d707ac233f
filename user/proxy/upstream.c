// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * upstream: the registry of runtime state the proxy workers share.
 *
 * State lives in fixed-bucket hash tables keyed by ids that survive config
 * reloads: per cluster id (round-robin cursor, overflow totals), per
 * (cluster id, source) breaker counters, per backend (addr, port) active
 * requests and outlier state. Entries are only ever added (under r->mu)
 * and freed with the registry, so a lookup walks a bucket chain without a
 * lock: a node is fully written before it is published with a release
 * store. The number of entries is bounded by the distinct clusters and
 * backends the agent has seen.
 *
 * Outlier detection follows Envoy's consecutive-error detector
 * (source/common/upstream/outlier_detection_impl.cc and the "Outlier
 * detection" architecture overview): counters per host, ejection on the
 * Nth consecutive error, time = base x multiplier capped at max, multiplier
 * decremented once per interval the host stays back in service. Its state
 * is guarded by r->omu; the ejected flag and the counters are also read
 * without it (atomics) so the per-request paths stay lock free when
 * nothing changes.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/hash.h"
#include "proxy/upstream.h"

#define UP_HOST_BUCKETS		1024
#define UP_CLUSTER_BUCKETS	256
#define UP_CB_BUCKETS		1024
#define UP_PICK_STACK		256	/* hosts handled without malloc in a pick */
#define UP_EVENT_NAME		256	/* cluster name copied into an event */
#define UP_MAX_EJECTION_DEFAULT_MS 300000ull	/* Envoy's max_ejection_time default */
#define UP_CONNECT_FAIL_FEED_MAX 64	/* kernel failures fed per call; more add nothing */

struct up_host_state {
	struct up_host_state *next;	/* bucket chain */
	struct up_host_state *all_next;	/* every host, for tick and free */
	uint32_t addr;			/* network order */
	uint16_t port;			/* host order */
	int64_t active;			/* atomic: outstanding requests */
	uint64_t requests;		/* atomic: requests sent to it, ever */
	uint8_t ejected;		/* atomic read; written under omu */
	/* consecutive error counters: atomic read, written under omu */
	uint32_t c5xx, cgw, clocal;
	/* under omu */
	uint32_t times_ejected;		/* Envoy's ejection time backoff multiplier */
	uint64_t until_ms;		/* ejected: when it returns */
	uint64_t interval_ms;		/* of the cluster that last ejected it */
	uint64_t next_decay_ms;		/* back in service: next multiplier decrement */
	char *cluster;			/* name of the cluster that last ejected it */
};

struct up_cluster_state {
	struct up_cluster_state *next;
	uint64_t id;
	uint64_t rr;			/* atomic round-robin cursor */
	uint64_t overflows[UP_CB_MAX];	/* atomic, over every source */
};

struct up_cb_state {
	struct up_cb_state *next;
	uint64_t id;
	uint32_t src;			/* network order; 0 = per cluster only */
	uint64_t count[UP_CB_MAX];	/* atomic: units held */
	uint64_t overflows[UP_CB_MAX];	/* atomic */
	uint32_t n_waiting;		/* atomic: bits set in wait_mask */
	uint64_t wait_mask[UP_WAIT_SLOTS / 64];	/* atomic: workers with waiters */
	uint32_t *wait_n;		/* [UP_WAIT_SLOTS], slot i written by worker i only */
};

struct up_registry {
	pthread_mutex_t mu;		/* inserts into the tables */
	pthread_mutex_t omu;		/* outlier detector state */
	up_outlier_cb cb;
	void *cb_ctx;
	struct up_host_state *hosts[UP_HOST_BUCKETS];
	struct up_host_state *all_hosts;
	struct up_cluster_state *clusters[UP_CLUSTER_BUCKETS];
	struct up_cb_state *cbs[UP_CB_BUCKETS];
	pthread_mutex_t wmu;		/* serializes up_registry_set_waker (calls load wake atomically) */
	up_wake_fn wake;
	void *wake_ctx;
};

/* An event collected under omu and delivered after it is released. */
struct up_event_buf {
	struct up_outlier_event ev;
	char cluster[UP_EVENT_NAME];
};

struct up_events {
	struct up_event_buf *v;
	size_t n, cap;
};

static uint64_t up_hash_bytes(const char *s, size_t len)
{
	return sm_hash_mix64(sm_hash_fnv1a64(SM_FNV64_OFFSET, s, len));
}

static uint64_t up_host_key(uint32_t addr, uint16_t port)
{
	return sm_hash_mix64(((uint64_t)addr << 16) | port);
}

/* Per-thread xorshift64*: workers never share a random state. */
static uint64_t up_rand64(void)
{
	static __thread uint64_t s;
	static uint64_t seq;

	if (!s) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		s = sm_hash_mix64((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^
			     (uintptr_t)&s ^ __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED)) | 1;
	}
	s ^= s >> 12;
	s ^= s << 25;
	s ^= s >> 27;
	return s * 0x2545f4914f6cdd1dull;
}

static uint32_t up_rand_below(uint32_t n)
{
	return (uint32_t)(((up_rand64() >> 32) * (uint64_t)n) >> 32);
}

/* ---- registry ---- */

struct up_registry *up_registry_new(up_outlier_cb cb, void *cb_ctx)
{
	struct up_registry *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	pthread_mutex_init(&r->mu, NULL);
	pthread_mutex_init(&r->omu, NULL);
	pthread_mutex_init(&r->wmu, NULL);
	r->cb = cb;
	r->cb_ctx = cb_ctx;
	return r;
}

void up_registry_free(struct up_registry *r)
{
	if (!r)
		return;
	for (struct up_host_state *h = r->all_hosts, *n; h; h = n) {
		n = h->all_next;
		free(h->cluster);
		free(h);
	}
	for (size_t i = 0; i < UP_CLUSTER_BUCKETS; i++)
		for (struct up_cluster_state *c = r->clusters[i], *n; c; c = n) {
			n = c->next;
			free(c);
		}
	for (size_t i = 0; i < UP_CB_BUCKETS; i++)
		for (struct up_cb_state *c = r->cbs[i], *n; c; c = n) {
			n = c->next;
			free(c->wait_n);
			free(c);
		}
	pthread_mutex_destroy(&r->wmu);
	pthread_mutex_destroy(&r->mu);
	pthread_mutex_destroy(&r->omu);
	free(r);
}

static struct up_host_state *up_host_find(struct up_registry *r, uint32_t addr, uint16_t port)
{
	size_t b = up_host_key(addr, port) % UP_HOST_BUCKETS;

	for (struct up_host_state *h = __atomic_load_n(&r->hosts[b], __ATOMIC_ACQUIRE); h;
	     h = h->next)
		if (h->addr == addr && h->port == port)
			return h;
	return NULL;
}

/* Find or create; NULL only when out of memory (callers then fail open). */
static struct up_host_state *up_host_get(struct up_registry *r, uint32_t addr, uint16_t port)
{
	size_t b = up_host_key(addr, port) % UP_HOST_BUCKETS;
	struct up_host_state *h = up_host_find(r, addr, port);

	if (h)
		return h;
	pthread_mutex_lock(&r->mu);
	h = up_host_find(r, addr, port);
	if (!h) {
		h = calloc(1, sizeof(*h));
		if (h) {
			h->addr = addr;
			h->port = port;
			h->next = r->hosts[b];
			/* all_hosts is read under omu (tick), so link it there too */
			pthread_mutex_lock(&r->omu);
			h->all_next = r->all_hosts;
			r->all_hosts = h;
			pthread_mutex_unlock(&r->omu);
			__atomic_store_n(&r->hosts[b], h, __ATOMIC_RELEASE);
		}
	}
	pthread_mutex_unlock(&r->mu);
	return h;
}

static struct up_cluster_state *up_cluster_find(struct up_registry *r, uint64_t id)
{
	size_t b = sm_hash_mix64(id) % UP_CLUSTER_BUCKETS;

	for (struct up_cluster_state *c = __atomic_load_n(&r->clusters[b], __ATOMIC_ACQUIRE); c;
	     c = c->next)
		if (c->id == id)
			return c;
	return NULL;
}

static struct up_cluster_state *up_cluster_get(struct up_registry *r, uint64_t id)
{
	size_t b = sm_hash_mix64(id) % UP_CLUSTER_BUCKETS;
	struct up_cluster_state *c = up_cluster_find(r, id);

	if (c)
		return c;
	pthread_mutex_lock(&r->mu);
	c = up_cluster_find(r, id);
	if (!c) {
		c = calloc(1, sizeof(*c));
		if (c) {
			c->id = id;
			c->next = r->clusters[b];
			__atomic_store_n(&r->clusters[b], c, __ATOMIC_RELEASE);
		}
	}
	pthread_mutex_unlock(&r->mu);
	return c;
}

static struct up_cb_state *up_cb_find(struct up_registry *r, uint64_t id, uint32_t src)
{
	size_t b = sm_hash_mix64(id ^ ((uint64_t)src << 20)) % UP_CB_BUCKETS;

	for (struct up_cb_state *c = __atomic_load_n(&r->cbs[b], __ATOMIC_ACQUIRE); c; c = c->next)
		if (c->id == id && c->src == src)
			return c;
	return NULL;
}

static struct up_cb_state *up_cb_get(struct up_registry *r, uint64_t id, uint32_t src)
{
	size_t b = sm_hash_mix64(id ^ ((uint64_t)src << 20)) % UP_CB_BUCKETS;
	struct up_cb_state *c = up_cb_find(r, id, src);

	if (c)
		return c;
	pthread_mutex_lock(&r->mu);
	c = up_cb_find(r, id, src);
	if (!c) {
		c = calloc(1, sizeof(*c));
		if (c) {
			c->id = id;
			c->src = src;
			c->next = r->cbs[b];
			__atomic_store_n(&r->cbs[b], c, __ATOMIC_RELEASE);
		}
	}
	pthread_mutex_unlock(&r->mu);
	return c;
}

/* ---- load balancing ---- */

void up_host_request_start(struct up_registry *r, const struct l7_host *h)
{
	struct up_host_state *s = up_host_get(r, h->addr, h->port);

	if (s) {
		__atomic_add_fetch(&s->active, 1, __ATOMIC_RELAXED);
		__atomic_add_fetch(&s->requests, 1, __ATOMIC_RELAXED);
	}
}

uint64_t up_host_requests(struct up_registry *r, uint32_t addr, uint16_t port)
{
	struct up_host_state *s = up_host_find(r, addr, port);

	return s ? __atomic_load_n(&s->requests, __ATOMIC_RELAXED) : 0;
}

void up_host_request_end(struct up_registry *r, const struct l7_host *h)
{
	struct up_host_state *s = up_host_find(r, h->addr, h->port);

	if (s)
		__atomic_sub_fetch(&s->active, 1, __ATOMIC_RELAXED);
}

static int64_t up_host_active(struct up_registry *r, const struct l7_host *h)
{
	struct up_host_state *s = up_host_find(r, h->addr, h->port);

	return s ? __atomic_load_n(&s->active, __ATOMIC_RELAXED) : 0;
}

static bool up_state_ejected(const struct up_host_state *s)
{
	return s && __atomic_load_n(&s->ejected, __ATOMIC_ACQUIRE);
}

/* Value of "name" in a "k=v; k2=v2" Cookie header, without the double
 * quotes of a quoted value (Envoy's parseCookieValue). */
const char *up_cookie_value(const char *hdr, size_t hlen, const char *name, size_t *len)
{
	size_t nlen = strlen(name), i = 0;

	while (i < hlen) {
		size_t s, e, eq;

		while (i < hlen && (hdr[i] == ' ' || hdr[i] == '\t' || hdr[i] == ';'))
			i++;
		s = i;
		while (i < hlen && hdr[i] != ';')
			i++;
		e = i;
		for (eq = s; eq < e && hdr[eq] != '='; eq++)
			;
		if (eq < e && eq - s == nlen && !memcmp(hdr + s, name, nlen)) {
			while (e > eq + 1 && (hdr[e - 1] == ' ' || hdr[e - 1] == '\t'))
				e--;
			if (e - eq - 1 >= 2 && hdr[eq + 1] == '"' && hdr[e - 1] == '"') {
				*len = e - eq - 3;
				return hdr + eq + 2;
			}
			*len = e - eq - 1;
			return hdr + eq + 1;
		}
	}
	return NULL;
}

/* Value of "name" in an "a=1&b=2" query string (not percent-decoded). */
static const char *up_query_value(const char *q, size_t qlen, const char *name, size_t *len)
{
	size_t nlen = strlen(name), i = 0;

	while (i < qlen) {
		size_t s = i, e, eq;

		while (i < qlen && q[i] != '&')
			i++;
		e = i++;
		for (eq = s; eq < e && q[eq] != '='; eq++)
			;
		if (eq - s == nlen && !memcmp(q + s, name, nlen)) {
			*len = eq < e ? e - eq - 1 : 0;
			return eq < e ? q + eq + 1 : q + e;
		}
	}
	return NULL;
}

/* The consistent-hash key of a request; false when the request has none. */
static bool up_hash_key(const struct l7_cluster *c, const struct l7_request_view *rq,
			uint32_t src_ip, uint64_t *key)
{
	const char *v = NULL;
	size_t len = 0;

	switch (c->hash_kind) {
	case POL_HASH_SOURCE_IP:
		*key = sm_hash_mix64(src_ip);
		return true;
	case POL_HASH_HEADER:
		if (rq && rq->header && c->hash_key)
			v = rq->header(rq->ctx, c->hash_key, &len);
		break;
	case POL_HASH_COOKIE:
		if (rq && rq->header && c->hash_key) {
			const char *ck = rq->header(rq->ctx, "cookie", &len);

			v = ck ? up_cookie_value(ck, len, c->hash_key, &len) : NULL;
		}
		if (!v && rq && rq->gen_cookie) {
			v = rq->gen_cookie;
			len = strlen(v);
		}
		break;
	case POL_HASH_QUERY:
		if (rq && rq->query && c->hash_key)
			v = up_query_value(rq->query, rq->query_len, c->hash_key, &len);
		break;
	default:
		break;
	}
	if (!v)
		return false;
	*key = up_hash_bytes(v, len);
	return true;
}

/*
 * Rendezvous (highest random weight) hashing: each host scores
 * mix(key, host) and the highest wins. Consistent like Envoy's ring or
 * Maglev (a host leaving moves only its own keys, to the others evenly)
 * without a table to build and cache per host set; O(hosts) per request.
 */
static uint32_t up_pick_hrw(const struct l7_cluster *c, const uint32_t *cand, size_t n, uint64_t key)
{
	uint32_t best = cand[0];
	uint64_t best_score = 0;

	for (size_t i = 0; i < n; i++) {
		const struct l7_host *h = &c->hosts[cand[i]];
		uint64_t score = sm_hash_mix64(key ^ up_host_key(h->addr, h->port));

		if (i == 0 || score > best_score) {
			best = cand[i];
			best_score = score;
		}
	}
	return best;
}

static bool up_in_avoid(uint32_t idx, const uint32_t *avoid, size_t n_avoid)
{
	for (size_t i = 0; i < n_avoid; i++)
		if (avoid[i] == idx)
			return true;
	return false;
}

static uint32_t up_pick_from(struct up_registry *r, const struct l7_cluster *c,
			     const struct l7_request_view *rq, uint32_t src_ip,
			     const uint32_t *cand, size_t n)
{
	uint64_t key;

	if (n == 1)
		return cand[0];
	switch (c->lb) {
	case L7_LB_ROUND_ROBIN: {
		struct up_cluster_state *cs = up_cluster_get(r, c->id);
		uint64_t i = cs ? __atomic_fetch_add(&cs->rr, 1, __ATOMIC_RELAXED) : up_rand64();

		return cand[i % n];
	}
	case L7_LB_RANDOM:
		return cand[up_rand_below((uint32_t)n)];
	case L7_LB_HASH:
		if (up_hash_key(c, rq, src_ip, &key))
			return up_pick_hrw(c, cand, n, key);
		return cand[up_rand_below((uint32_t)n)];
	case L7_LB_LEAST_REQUEST:
	default: {
		/* power of two choices: two distinct hosts, the less loaded wins */
		uint32_t a = up_rand_below((uint32_t)n);
		uint32_t b = up_rand_below((uint32_t)n - 1);

		if (b >= a)
			b++;
		if (up_host_active(r, &c->hosts[cand[b]]) < up_host_active(r, &c->hosts[cand[a]]))
			return cand[b];
		return cand[a];
	}
	}
}

int up_pick_host(struct up_registry *r, const struct l7_cluster *c,
		 const struct l7_request_view *rq, uint32_t src_ip,
		 const uint32_t *avoid, size_t n_avoid, uint64_t now_ms,
		 uint32_t *host_idx)
{
	uint32_t stack[UP_PICK_STACK], *cand = stack;
	size_t n_ready = 0, n_elig = 0, n = 0;
	bool panic;

	if (!c || !c->n_hosts)
		return -ENOENT;
	if (c->n_hosts > UP_PICK_STACK) {
		cand = malloc(c->n_hosts * sizeof(*cand));
		if (!cand)
			return -ENOMEM;
	}
	/* eligible (ready, not ejected) first, then the ejected ready ones behind them */
	for (size_t i = 0; i < c->n_hosts; i++) {
		const struct l7_host *h = &c->hosts[i];

		if (!h->ready)
			continue;
		n_ready++;
		if (!up_state_ejected(up_host_find(r, h->addr, h->port))) {
			if (n_elig != n_ready - 1)
				cand[n_ready - 1] = cand[n_elig];
			cand[n_elig++] = (uint32_t)i;
		} else {
			cand[n_ready - 1] = (uint32_t)i;
		}
	}
	/* panic (Envoy's healthy_panic_threshold = minHealthPercent): use every ready host */
	panic = n_ready && (uint64_t)n_elig * 100 < (uint64_t)c->outlier.min_health_pct * n_ready;
	n = panic ? n_ready : n_elig;
	if (!n) {
		if (cand != stack)
			free(cand);
		return -ENOENT;
	}
	if (n_avoid) {
		size_t k = 0;

		for (size_t i = 0; i < n; i++)
			if (!up_in_avoid(cand[i], avoid, n_avoid))
				cand[k++] = cand[i];
		/* all candidates tried before: any of them again rather than none */
		if (k)
			n = k;
	}
	*host_idx = up_pick_from(r, c, rq, src_ip, cand, n);
	if (cand != stack)
		free(cand);
	return 0;
}

/* ---- circuit breakers ---- */

static uint32_t up_cb_limit(const struct l7_cluster *c, enum up_cb_kind k)
{
	switch (k) {
	case UP_CB_PENDING:
		return c->pool.http1_max_pending;
	case UP_CB_REQUESTS:
		return c->pool.max_requests;
	case UP_CB_RETRIES:
		return c->pool.max_retries;
	case UP_CB_CONNECTIONS:
		return c->pool.max_connections;
	default:
		return 0;
	}
}

/*
 * Lost wake-ups: a waiter sets its bit then reads the count, a release
 * lowers the count then reads the bits; with a full fence between each
 * pair's store and load, at least one of them sees the other.
 */
static void up_cb_wake(struct up_registry *r, struct up_cb_state *s)
{
	up_wake_fn fn;
	void *ctx;

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!__atomic_load_n(&s->n_waiting, __ATOMIC_RELAXED))
		return;
	fn = __atomic_load_n(&r->wake, __ATOMIC_ACQUIRE);
	ctx = __atomic_load_n(&r->wake_ctx, __ATOMIC_ACQUIRE);
	if (!fn)
		return;
	for (unsigned int i = 0; i < UP_WAIT_SLOTS / 64; i++) {
		uint64_t m = __atomic_load_n(&s->wait_mask[i], __ATOMIC_RELAXED);

		while (m) {
			unsigned int b = (unsigned int)__builtin_ctzll(m);

			m &= m - 1;
			fn(ctx, i * 64 + b);
		}
	}
}

int up_registry_set_waker(struct up_registry *r, up_wake_fn fn, void *ctx)
{
	int err = 0;

	pthread_mutex_lock(&r->wmu);
	if (fn && r->wake) {
		err = -EBUSY;
	} else if (fn) {
		__atomic_store_n(&r->wake_ctx, ctx, __ATOMIC_RELEASE);
		__atomic_store_n(&r->wake, fn, __ATOMIC_RELEASE);
	} else if (r->wake_ctx == ctx) {
		__atomic_store_n(&r->wake, NULL, __ATOMIC_RELEASE);
		__atomic_store_n(&r->wake_ctx, NULL, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&r->wmu);
	return err;
}

bool up_cb_wait_begin(struct up_registry *r, const struct l7_cluster *c, uint32_t src_ip,
		      unsigned int slot)
{
	struct up_cb_state *s;
	uint32_t *wn, limit;

	if (slot >= UP_WAIT_SLOTS || !(s = up_cb_get(r, c->id, src_ip)))
		return true;
	wn = __atomic_load_n(&s->wait_n, __ATOMIC_ACQUIRE);
	if (!wn) {
		uint32_t *fresh = calloc(UP_WAIT_SLOTS, sizeof(*fresh));

		if (!fresh)
			return true;	/* the caller polls */
		if (__atomic_compare_exchange_n(&s->wait_n, &wn, fresh, false, __ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE))
			wn = fresh;
		else
			free(fresh);
	}
	if (wn[slot]++)
		return false;	/* the bit is set: every release since has seen it */
	__atomic_fetch_or(&s->wait_mask[slot / 64], 1ull << (slot % 64), __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&s->n_waiting, 1, __ATOMIC_SEQ_CST);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	limit = up_cb_limit(c, UP_CB_CONNECTIONS);
	return !limit || __atomic_load_n(&s->count[UP_CB_CONNECTIONS], __ATOMIC_RELAXED) < limit;
}

void up_cb_wait_end(struct up_registry *r, const struct l7_cluster *c, uint32_t src_ip,
		    unsigned int slot)
{
	struct up_cb_state *s;
	uint32_t *wn;

	if (slot >= UP_WAIT_SLOTS || !(s = up_cb_find(r, c->id, src_ip)))
		return;
	wn = __atomic_load_n(&s->wait_n, __ATOMIC_ACQUIRE);
	if (!wn || !wn[slot] || --wn[slot])
		return;
	__atomic_fetch_and(&s->wait_mask[slot / 64], ~(1ull << (slot % 64)), __ATOMIC_SEQ_CST);
	__atomic_sub_fetch(&s->n_waiting, 1, __ATOMIC_SEQ_CST);
}

bool up_cb_acquire_src(struct up_registry *r, const struct l7_cluster *c, uint32_t src_ip,
		       enum up_cb_kind k)
{
	struct up_cb_state *s;
	uint32_t limit;
	uint64_t cur;

	if ((unsigned)k >= UP_CB_MAX)
		return true;
	s = up_cb_get(r, c->id, src_ip);
	if (!s)
		return true;	/* out of memory: fail open, like the kernel path */
	limit = up_cb_limit(c, k);
	cur = __atomic_load_n(&s->count[k], __ATOMIC_RELAXED);
	do {
		if (limit && cur >= limit) {
			struct up_cluster_state *cs = up_cluster_get(r, c->id);

			__atomic_add_fetch(&s->overflows[k], 1, __ATOMIC_RELAXED);
			if (cs)
				__atomic_add_fetch(&cs->overflows[k], 1, __ATOMIC_RELAXED);
			return false;
		}
	} while (!__atomic_compare_exchange_n(&s->count[k], &cur, cur + 1, true, __ATOMIC_ACQ_REL,
					      __ATOMIC_RELAXED));
	return true;
}

void up_cb_release_src(struct up_registry *r, const struct l7_cluster *c, uint32_t src_ip,
		       enum up_cb_kind k)
{
	struct up_cb_state *s;
	uint64_t cur;

	if ((unsigned)k >= UP_CB_MAX)
		return;
	s = up_cb_find(r, c->id, src_ip);
	if (!s)
		return;
	cur = __atomic_load_n(&s->count[k], __ATOMIC_RELAXED);
	/* never below zero, even on an unpaired release */
	while (cur && !__atomic_compare_exchange_n(&s->count[k], &cur, cur - 1, true,
						   __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
		;
	if (k == UP_CB_CONNECTIONS)
		up_cb_wake(r, s);
}

void up_cb_force_src(struct up_registry *r, const struct l7_cluster *c, uint32_t src_ip,
		     enum up_cb_kind k)
{
	struct up_cb_state *s;

	if ((unsigned)k >= UP_CB_MAX || !(s = up_cb_get(r, c->id, src_ip)))
		return;
	__atomic_add_fetch(&s->count[k], 1, __ATOMIC_ACQ_REL);
}

bool up_cb_acquire(struct up_registry *r, const struct l7_cluster *c, enum up_cb_kind k)
{
	return up_cb_acquire_src(r, c, 0, k);
}

void up_cb_release(struct up_registry *r, const struct l7_cluster *c, enum up_cb_kind k)
{
	up_cb_release_src(r, c, 0, k);
}

uint64_t up_cb_overflows(struct up_registry *r, uint64_t cluster_id, enum up_cb_kind k)
{
	struct up_cluster_state *cs = up_cluster_find(r, cluster_id);

	if ((unsigned)k >= UP_CB_MAX || !cs)
		return 0;
	return __atomic_load_n(&cs->overflows[k], __ATOMIC_RELAXED);
}

uint64_t up_cb_count(struct up_registry *r, uint64_t cluster_id, uint32_t src_ip,
		     enum up_cb_kind k)
{
	struct up_cb_state *s = up_cb_find(r, cluster_id, src_ip);

	if ((unsigned)k >= UP_CB_MAX || !s)
		return 0;
	return __atomic_load_n(&s->count[k], __ATOMIC_RELAXED);
}

uint64_t up_cb_total(struct up_registry *r, uint64_t cluster_id, enum up_cb_kind k)
{
	uint64_t n = 0;

	if ((unsigned)k >= UP_CB_MAX)
		return 0;
	for (size_t b = 0; b < UP_CB_BUCKETS; b++)
		for (struct up_cb_state *c = __atomic_load_n(&r->cbs[b], __ATOMIC_ACQUIRE); c;
		     c = c->next)
			if (c->id == cluster_id)
				n += __atomic_load_n(&c->count[k], __ATOMIC_RELAXED);
	return n;
}

/* ---- outlier detection ---- */

static void up_events_push(struct up_events *e, const struct up_host_state *s, bool ejected,
			   const char *reason, const char *cluster)
{
	struct up_event_buf *b;

	if (e->n == e->cap) {
		size_t cap = e->cap ? e->cap * 2 : 8;
		struct up_event_buf *v = realloc(e->v, cap * sizeof(*v));

		if (!v)
			return;	/* out of memory: the state changed, only the report is lost */
		e->v = v;
		e->cap = cap;
	}
	b = &e->v[e->n++];
	memset(b, 0, sizeof(*b));
	snprintf(b->cluster, sizeof(b->cluster), "%s", cluster ? cluster : "");
	b->ev.addr = s->addr;
	b->ev.port = s->port;
	b->ev.ejected = ejected;
	b->ev.until_ms = ejected ? s->until_ms : 0;
	b->ev.times_ejected = s->times_ejected;
	b->ev.reason = reason;
}

static void up_events_deliver(struct up_registry *r, struct up_events *e)
{
	for (size_t i = 0; i < e->n; i++) {
		e->v[i].ev.cluster = e->v[i].cluster;
		if (r->cb)
			r->cb(r->cb_ctx, &e->v[i].ev);
	}
	free(e->v);
}

static uint64_t up_max_ejection_ms(const struct l7_outlier_cfg *o)
{
	uint64_t max = o->max_ejection_ms ? o->max_ejection_ms : UP_MAX_EJECTION_DEFAULT_MS;

	return max > o->base_ejection_ms ? max : o->base_ejection_ms;
}

/*
 * Envoy's ejectHost(): allowed when the ejected share after this ejection
 * stays within max_ejection_pct of the cluster's hosts, or when no host of
 * the cluster is ejected (one host can always be ejected). The multiplier
 * grows while base x multiplier < max + base, the time is min(base x
 * multiplier, max). Called with omu held.
 */
static void up_outlier_eject(struct up_registry *r, const struct l7_cluster *c,
			     struct up_host_state *s, const char *reason, uint64_t now_ms,
			     struct up_events *ev)
{
	const struct l7_outlier_cfg *o = &c->outlier;
	uint64_t base = o->base_ejection_ms, max = up_max_ejection_ms(o), t;
	size_t ejected = 0;

	for (size_t i = 0; i < c->n_hosts; i++) {
		const struct l7_host *h = &c->hosts[i];

		if (up_state_ejected(up_host_find(r, h->addr, h->port)))
			ejected++;
	}
	if (ejected && (uint64_t)(ejected + 1) * 100 > (uint64_t)o->max_ejection_pct * c->n_hosts)
		return;
	if ((uint64_t)s->times_ejected * base < max + base)
		s->times_ejected++;
	t = (uint64_t)s->times_ejected * base;
	s->until_ms = now_ms + (t < max ? t : max);
	s->interval_ms = o->interval_ms;
	free(s->cluster);
	s->cluster = c->name ? strdup(c->name) : NULL;
	__atomic_store_n(&s->ejected, 1, __ATOMIC_RELEASE);
	up_events_push(ev, s, true, reason, c->name);
}

enum up_err_kind { UP_ERR_5XX, UP_ERR_GATEWAY, UP_ERR_LOCAL };

/* A counter reached its threshold: try to eject, then restart the count (Envoy). */
static void up_outlier_detected(struct up_registry *r, const struct l7_cluster *c,
				struct up_host_state *s, enum up_err_kind kind, uint64_t now_ms,
				struct up_events *ev)
{
	static const char *const reasons[] = {
		[UP_ERR_5XX] = "consecutive_5xx",
		[UP_ERR_GATEWAY] = "consecutive_gateway_failure",
		[UP_ERR_LOCAL] = "consecutive_local_origin_failure",
	};

	/* already out (panic routing or in-flight requests): nothing more to do */
	if (s->ejected)
		return;
	up_outlier_eject(r, c, s, reasons[kind], now_ms, ev);
	switch (kind) {
	case UP_ERR_5XX:
		__atomic_store_n(&s->c5xx, 0, __ATOMIC_RELAXED);
		break;
	case UP_ERR_GATEWAY:
		__atomic_store_n(&s->cgw, 0, __ATOMIC_RELAXED);
		break;
	case UP_ERR_LOCAL:
		__atomic_store_n(&s->clocal, 0, __ATOMIC_RELAXED);
		break;
	}
}

static bool up_is_gateway(int status)
{
	return status == 502 || status == 503 || status == 504;
}

/* Envoy's putHttpResponseCode(): the gateway counter first, then the 5xx one. */
static void up_outlier_http(struct up_registry *r, const struct l7_cluster *c,
			    struct up_host_state *s, int status, uint64_t now_ms,
			    struct up_events *ev)
{
	const struct l7_outlier_cfg *o = &c->outlier;

	if (status < 500 || status > 599) {
		__atomic_store_n(&s->c5xx, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&s->cgw, 0, __ATOMIC_RELAXED);
		return;
	}
	if (up_is_gateway(status)) {
		uint32_t n = __atomic_add_fetch(&s->cgw, 1, __ATOMIC_RELAXED);

		if (o->consecutive_gateway && n >= o->consecutive_gateway)
			up_outlier_detected(r, c, s, UP_ERR_GATEWAY, now_ms, ev);
	} else {
		__atomic_store_n(&s->cgw, 0, __ATOMIC_RELAXED);
	}
	if (__atomic_add_fetch(&s->c5xx, 1, __ATOMIC_RELAXED) >= o->consecutive_5xx &&
	    o->consecutive_5xx)
		up_outlier_detected(r, c, s, UP_ERR_5XX, now_ms, ev);
}

void up_outlier_record(struct up_registry *r, const struct l7_cluster *c,
		       const struct l7_host *h, enum up_result res, int status,
		       uint64_t now_ms)
{
	const struct l7_outlier_cfg *o = &c->outlier;
	bool local = res != UP_RESULT_HTTP;
	struct up_events ev = { 0 };
	struct up_host_state *s;

	if (!o->enabled)
		return;
	s = up_host_get(r, h->addr, h->port);
	if (!s)
		return;
	/* the common case, a success with nothing to reset, takes no lock */
	if (!local && (status < 500 || status > 599) &&
	    !__atomic_load_n(&s->c5xx, __ATOMIC_RELAXED) &&
	    !__atomic_load_n(&s->cgw, __ATOMIC_RELAXED) &&
	    !__atomic_load_n(&s->clocal, __ATOMIC_RELAXED))
		return;
	pthread_mutex_lock(&r->omu);
	if (o->split_local_origin) {
		if (local) {
			uint32_t n = __atomic_add_fetch(&s->clocal, 1, __ATOMIC_RELAXED);

			if (o->consecutive_local_origin && n >= o->consecutive_local_origin)
				up_outlier_detected(r, c, s, UP_ERR_LOCAL, now_ms, &ev);
		} else {
			/* a response means the connection worked: local streak over */
			__atomic_store_n(&s->clocal, 0, __ATOMIC_RELAXED);
			up_outlier_http(r, c, s, status, now_ms, &ev);
		}
	} else {
		/* Envoy maps local-origin results to codes: timeout 504, others 503 */
		int code = !local ? status : res == UP_RESULT_TIMEOUT ? 504 : 503;

		up_outlier_http(r, c, s, code, now_ms, &ev);
	}
	pthread_mutex_unlock(&r->omu);
	up_events_deliver(r, &ev);
}

void up_outlier_connect_failures(struct up_registry *r, const struct l7_cluster *c,
				 const struct l7_host *h, uint64_t new_failures, uint64_t now_ms)
{
	if (new_failures > UP_CONNECT_FAIL_FEED_MAX)
		new_failures = UP_CONNECT_FAIL_FEED_MAX;
	for (uint64_t i = 0; i < new_failures; i++)
		up_outlier_record(r, c, h, UP_RESULT_CONNECT_FAIL, 0, now_ms);
}

/*
 * Walks every host the registry knows, not only cfg's, so a host ejected
 * under a cluster that a reload removed still returns.
 */
void up_outlier_tick(struct up_registry *r, const struct l7_config *cfg, uint64_t now_ms)
{
	struct up_events ev = { 0 };

	pthread_mutex_lock(&r->omu);
	for (struct up_host_state *s = r->all_hosts; s; s = s->all_next) {
		if (s->ejected) {
			if (now_ms < s->until_ms)
				continue;
			/* Envoy's unejectHost(): counters restart from zero */
			__atomic_store_n(&s->c5xx, 0, __ATOMIC_RELAXED);
			__atomic_store_n(&s->cgw, 0, __ATOMIC_RELAXED);
			__atomic_store_n(&s->clocal, 0, __ATOMIC_RELAXED);
			__atomic_store_n(&s->ejected, 0, __ATOMIC_RELEASE);
			s->until_ms = 0;
			s->next_decay_ms = now_ms + s->interval_ms;
			up_events_push(&ev, s, false, "interval", s->cluster);
		} else if (s->times_ejected && now_ms >= s->next_decay_ms) {
			/* one interval back in service: multiplier down by one */
			s->times_ejected--;
			s->next_decay_ms = now_ms + s->interval_ms;
		}
	}
	pthread_mutex_unlock(&r->omu);
	up_events_deliver(r, &ev);
}

bool up_host_ejected(struct up_registry *r, uint32_t addr, uint16_t port, uint64_t now_ms)
{
	return up_state_ejected(up_host_find(r, addr, port));
}

void up_host_info(struct up_registry *r, uint32_t addr, uint16_t port,
		  uint32_t *times_ejected, uint64_t *until_ms, int64_t *active_requests)
{
	struct up_host_state *s = up_host_find(r, addr, port);
	uint32_t t = 0;
	uint64_t u = 0;
	int64_t a = 0;

	if (s) {
		pthread_mutex_lock(&r->omu);
		t = s->times_ejected;
		u = s->ejected ? s->until_ms : 0;
		pthread_mutex_unlock(&r->omu);
		a = __atomic_load_n(&s->active, __ATOMIC_RELAXED);
	}
	if (times_ejected)
		*times_ejected = t;
	if (until_ms)
		*until_ms = u;
	if (active_requests)
		*active_requests = a;
}
