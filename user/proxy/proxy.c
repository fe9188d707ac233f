// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * proxy: workers, event loop, timers, listeners, upstream pools, mirrors,
 * counters and config swaps. The request engine is in proxy_http.c; the
 * threading and event model are described in proxy_int.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "proxy/proxy_h2.h"
#include "proxy/proxy_int.h"

#define PX_MAX_WORKERS	256
#define PX_EVENTS	256

#define px_container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

static uint64_t px_clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t px_now(const struct proxy *p)
{
	return p->o.clock_ms ? p->o.clock_ms(p->o.clock_ctx) : px_clock_ms();
}

/* xorshift64*: per worker, not for secrets (request ids, weights, jitter). */
uint64_t px_rand(struct px_worker *w)
{
	uint64_t x = w->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	w->rng = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* ---- timers: binary min-heap on heap_at ---- */

static void px_heap_set(struct px_worker *w, size_t i, struct px_timer *t)
{
	w->heap[i] = t;
	t->idx = (int32_t)i;
}

static void px_heap_up(struct px_worker *w, size_t i)
{
	struct px_timer *t = w->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (w->heap[parent]->heap_at <= t->heap_at)
			break;
		px_heap_set(w, i, w->heap[parent]);
		i = parent;
	}
	px_heap_set(w, i, t);
}

static void px_heap_down(struct px_worker *w, size_t i)
{
	struct px_timer *t = w->heap[i];

	for (;;) {
		size_t l = 2 * i + 1, m = i;
		uint64_t best = t->heap_at;

		if (l < w->n_heap && w->heap[l]->heap_at < best) {
			m = l;
			best = w->heap[l]->heap_at;
		}
		if (l + 1 < w->n_heap && w->heap[l + 1]->heap_at < best)
			m = l + 1;
		if (m == i)
			break;
		px_heap_set(w, i, w->heap[m]);
		i = m;
	}
	px_heap_set(w, i, t);
}

static int px_heap_insert(struct px_worker *w, struct px_timer *t, uint64_t at)
{
	if (w->n_heap == w->cap_heap) {
		size_t cap = w->cap_heap ? w->cap_heap * 2 : 256;
		struct px_timer **h = realloc(w->heap, cap * sizeof(*h));

		if (!h)
			return -ENOMEM;
		w->heap = h;
		w->cap_heap = cap;
	}
	t->heap_at = at;
	px_heap_set(w, w->n_heap++, t);
	px_heap_up(w, w->n_heap - 1);
	return 0;
}

void px_timer_arm(struct px_worker *w, struct px_timer *t, uint64_t at)
{
	t->at = at;
	if (!at)
		return;
	if (t->idx >= 0) {
		if (at >= t->heap_at)
			return;		/* lazy: fires early, re-inserted */
		t->heap_at = at;
		px_heap_up(w, (size_t)t->idx);
		return;
	}
	if (px_heap_insert(w, t, at))
		t->at = 0;	/* out of memory: the idle timers still bound the connection */
}

void px_timer_cancel(struct px_timer *t)
{
	t->at = 0;
}

void px_timer_remove(struct px_worker *w, struct px_timer *t)
{
	size_t i;

	t->at = 0;
	if (t->idx < 0)
		return;
	i = (size_t)t->idx;
	t->idx = -1;
	w->n_heap--;
	if (i == w->n_heap)
		return;
	px_heap_set(w, i, w->heap[w->n_heap]);
	px_heap_up(w, i);
	px_heap_down(w, (size_t)w->heap[i]->idx);
}

static struct px_timer *px_heap_pop(struct px_worker *w)
{
	struct px_timer *t = w->heap[0];

	t->idx = -1;
	w->n_heap--;
	if (w->n_heap) {
		px_heap_set(w, 0, w->heap[w->n_heap]);
		px_heap_down(w, 0);
	}
	return t;
}

static void px_uconn_timer(struct px_uconn *u);
static void px_worker_tick(struct px_worker *w);
static void px_pending_wake(void *ctx, unsigned int slot);

static void px_timers_run(struct px_worker *w)
{
	while (w->n_heap && w->heap[0]->heap_at <= w->now) {
		struct px_timer *t = px_heap_pop(w);

		if (!t->at)
			continue;
		if (t->at > w->now) {
			if (px_heap_insert(w, t, t->at))
				t->at = 0;
			continue;
		}
		t->at = 0;
		switch (t->kind) {
		case PX_T_DCONN:
			px_dconn_timer(px_container_of(t, struct px_dconn, t));
			break;
		case PX_T_ROUTE:
			px_stream_timer(px_container_of(t, struct px_dconn, st.t_route), t);
			break;
		case PX_T_TRY:
			px_stream_timer(px_container_of(t, struct px_dconn, st.t_try), t);
			break;
		case PX_T_UCONN:
			px_uconn_timer(px_container_of(t, struct px_uconn, t));
			break;
		case PX_T_TICK:
			px_worker_tick(w);
			px_h2_tick(w);
			break;
		}
	}
}

void px_runq_add(struct px_dconn *d)
{
	struct px_worker *w = d->w;

	/* a connection being pumped right now keeps going by itself */
	if (d->in_runq || d->closed || d->in_pump)
		return;
	d->in_runq = true;
	d->rq_next = NULL;
	if (w->runq_tail)
		w->runq_tail->rq_next = d;
	else
		w->runq = d;
	w->runq_tail = d;
}

static void px_runq_run(struct px_worker *w)
{
	struct px_dconn *d = w->runq;

	/* only what is queued now: a connection that yields again waits a round */
	w->runq = w->runq_tail = NULL;
	while (d) {
		struct px_dconn *next = d->rq_next;

		d->in_runq = false;
		if (!d->closed)
			px_dconn_pump(d);
		d = next;
	}
}

/* ---- config references ---- */

static struct px_wcfg *px_wcfg_new(struct l7_config *c)
{
	struct px_wcfg *wc = calloc(1, sizeof(*wc));

	if (wc)
		wc->c = c;
	return wc;
}

static void px_wcfg_free(struct px_worker *w, struct px_wcfg *wc)
{
	struct px_wcfg **pp;

	for (pp = &w->old_cfgs; *pp; pp = &(*pp)->next)
		if (*pp == wc) {
			*pp = wc->next;
			break;
		}
	if (wc->c)
		l7_config_put(wc->c);
	free(wc);
}

void px_wcfg_put(struct px_worker *w, struct px_wcfg *wc)
{
	if (!wc)
		return;
	wc->users--;
	if (wc->retired && !wc->users)
		px_wcfg_free(w, wc);
}

/* ---- counters ---- */

static int px_cstat_grow(struct px_worker *w)
{
	size_t cap = w->cap_cstats ? w->cap_cstats * 2 : 64, i;
	struct px_cstat **t = calloc(cap, sizeof(*t));

	if (!t)
		return -ENOMEM;
	for (i = 0; i < w->cap_cstats; i++) {
		struct px_cstat *c = w->cstats[i];
		size_t j;

		if (!c)
			continue;
		for (j = sm_hash_mix64(c->id) & (cap - 1); t[j]; j = (j + 1) & (cap - 1))
			;
		t[j] = c;
	}
	free(w->cstats);
	w->cstats = t;
	w->cap_cstats = cap;
	return 0;
}

struct px_cstat *px_cstat_get(struct px_worker *w, const struct l7_cluster *c)
{
	struct px_cstat *cs;
	size_t i;

	if (w->cap_cstats) {
		for (i = sm_hash_mix64(c->id) & (w->cap_cstats - 1); w->cstats[i];
		     i = (i + 1) & (w->cap_cstats - 1))
			if (w->cstats[i]->id == c->id)
				return w->cstats[i];
	}
	cs = calloc(1, sizeof(*cs));
	if (!cs)
		return NULL;
	cs->id = c->id;
	cs->name = strdup(c->name ? c->name : "?");
	if (!cs->name) {
		free(cs);
		return NULL;
	}
	pthread_mutex_lock(&w->cs_mu);
	if ((w->n_cstats + 1) * 2 > w->cap_cstats && px_cstat_grow(w)) {
		pthread_mutex_unlock(&w->cs_mu);
		free(cs->name);
		free(cs);
		return NULL;
	}
	for (i = sm_hash_mix64(c->id) & (w->cap_cstats - 1); w->cstats[i];
	     i = (i + 1) & (w->cap_cstats - 1))
		;
	w->cstats[i] = cs;
	w->n_cstats++;
	pthread_mutex_unlock(&w->cs_mu);
	return cs;
}

const char *px_date(struct px_worker *w)
{
	uint64_t sec = w->now / 1000;

	if (sec != w->date_sec || !w->date[0]) {
		time_t t = time(NULL);
		struct tm tm;

		gmtime_r(&t, &tm);
		strftime(w->date, sizeof(w->date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		w->date_sec = sec;
	}
	return w->date;
}

static void px_log_flush(struct px_worker *w)
{
	ssize_t n;

	if (!w->log_len)
		return;
	n = write(w->p->o.access_log_fd, w->log, w->log_len);
	if (n < 0 || (size_t)n < w->log_len)
		px_stat_inc(w, PX_S_LOG_DROPPED);
	w->log_len = 0;
}

void px_log_append(struct px_worker *w, const char *s, size_t n)
{
	if (!w->log)
		return;
	if (w->log_len + n > PX_LOG_BUF)
		px_log_flush(w);
	if (n > PX_LOG_BUF) {
		px_stat_inc(w, PX_S_LOG_DROPPED);
		return;
	}
	memcpy(w->log + w->log_len, s, n);
	w->log_len += n;
}

/* ---- listeners ---- */

static int px_listen_socket(uint32_t addr, uint16_t port, int *fd_out)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = addr };
	int one = 1, fd, err;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 4096)) {
		err = -errno;
		close(fd);
		return err;
	}
	*fd_out = fd;
	return 0;
}

static int px_listener_add(struct px_worker *w, uint32_t addr, uint16_t port, bool gateway,
			   int *err_out)
{
	struct px_listener *l;
	struct epoll_event ev;
	int fd = -1, err;

	err = px_listen_socket(addr, port, &fd);
	if (err) {
		*err_out = err;
		return err;
	}
	if (w->n_ls == w->cap_ls) {
		size_t cap = w->cap_ls ? w->cap_ls * 2 : 4;
		struct px_listener **ls = realloc(w->ls, cap * sizeof(*ls));

		if (!ls) {
			close(fd);
			return *err_out = -ENOMEM;
		}
		w->ls = ls;
		w->cap_ls = cap;
	}
	l = calloc(1, sizeof(*l));
	if (!l) {
		close(fd);
		return *err_out = -ENOMEM;
	}
	l->kind = PX_EV_LISTEN;
	l->fd = fd;
	l->gateway = gateway;
	l->addr = addr;
	l->port = port;
	l->seen = true;
	ev.events = EPOLLIN;
	ev.data.ptr = l;
	if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev)) {
		err = -errno;
		close(fd);
		free(l);
		return *err_out = err;
	}
	w->ls[w->n_ls++] = l;
	return 0;
}

static void px_listener_pause(struct px_worker *w, bool pause)
{
	size_t i;

	for (i = 0; i < w->n_ls; i++) {
		struct px_listener *l = w->ls[i];
		struct epoll_event ev = { .events = pause ? 0 : EPOLLIN, .data.ptr = l };

		if (l->paused == pause)
			continue;
		epoll_ctl(w->ep, EPOLL_CTL_MOD, l->fd, &ev);
		l->paused = pause;
	}
}

static void px_listener_error(struct px_worker *w, uint32_t addr, uint16_t port, int err)
{
	struct proxy *p = w->p;
	char a[INET_ADDRSTRLEN];

	px_stat_inc(w, PX_S_LISTENER_ERR);
	inet_ntop(AF_INET, &addr, a, sizeof(a));
	pthread_mutex_lock(&p->err_mu);
	snprintf(p->listener_err, sizeof(p->listener_err), "gateway listener %s:%u: %s", a,
		 port, strerror(-err));
	pthread_mutex_unlock(&p->err_mu);
}

/* Open listeners for new Gateway servers, close those of removed ones. */
static void px_gateways_reconcile(struct px_worker *w)
{
	const struct l7_config *c = w->cfg ? w->cfg->c : NULL;
	struct proxy *p = w->p;
	size_t i, j, k;

	for (i = 0; i < w->n_ls; i++)
		if (w->ls[i]->gateway)
			w->ls[i]->seen = false;
	for (i = 0; c && i < c->n_gateways; i++) {
		for (j = 0; j < c->gateways[i].n_servers; j++) {
			const struct l7_gw_server *s = &c->gateways[i].servers[j];
			uint32_t addr = p->o.gateway_bind;
			bool found = false;
			int err = 0;

			if (s->bind && inet_pton(AF_INET, s->bind, &addr) != 1) {
				px_listener_error(w, 0, s->port, -EINVAL);
				continue;
			}
			if (!s->port || (s->port == p->port && addr == p->o.listen_addr))
				continue;
			for (k = 0; k < w->n_ls; k++) {
				struct px_listener *l = w->ls[k];

				if (l->gateway && l->port == s->port && l->addr == addr) {
					l->seen = true;
					found = true;
				}
			}
			if (!found && px_listener_add(w, addr, s->port, true, &err))
				px_listener_error(w, addr, s->port, err);
		}
	}
	for (i = 0; i < w->n_ls;) {
		struct px_listener *l = w->ls[i];

		if (l->gateway && !l->seen) {
			close(l->fd);
			free(l);
			w->ls[i] = w->ls[--w->n_ls];
			continue;
		}
		i++;
	}
}

/*
 * Reserve a downstream connection slot under max_conns: one counter for
 * all workers, so the limit is exact however SO_REUSEPORT spreads the
 * connections (px_cx_slot_put gives it back when the connection closes).
 */
static bool px_cx_slot_take(struct proxy *p)
{
	unsigned int n = atomic_fetch_add_explicit(&p->n_conns, 1, memory_order_relaxed);

	if (!p->o.max_conns || n < p->o.max_conns)
		return true;
	px_cx_slot_put(p);
	return false;
}

static void px_accept(struct px_worker *w, struct px_listener *l)
{
	struct proxy *p = w->p;
	int i;

	for (i = 0; i < PX_ACCEPT_BATCH; i++) {
		struct sockaddr_in sa;
		socklen_t sl = sizeof(sa);
		struct proxy_orig orig = { 0 };
		int fd;

		fd = accept4(l->fd, (struct sockaddr *)&sa, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				/* out of descriptors: stop accepting for a moment */
				px_stat_inc(w, PX_S_CX_ACCEPT_ERR);
				px_listener_pause(w, true);
				w->accept_resume_at = w->now + PX_EMFILE_PAUSE_MS;
				px_timer_arm(w, &w->tick, w->accept_resume_at);
			}
			return;
		}
		/*
		 * No open relay: only connections connect4 redirected. Looked
		 * up first, so a connection refused below still consumes its
		 * sm_l7_orig entry.
		 */
		if (!l->gateway &&
		    (!p->o.orig_dst || p->o.orig_dst(p->o.orig_dst_ctx, sa.sin_addr.s_addr,
						     ntohs(sa.sin_port), &orig))) {
			px_stat_inc(w, PX_S_CX_NO_ORIG);
			close(fd);
			continue;
		}
		if (!px_cx_slot_take(p)) {
			/* over max_conns: closed before a byte is read, as Envoy does */
			px_stat_inc(w, PX_S_CX_OVERFLOW);
			close(fd);
			continue;
		}
		px_dconn_open(w, fd, l->gateway, l->port, sa.sin_addr.s_addr, ntohs(sa.sin_port),
			      &orig);
	}
}

/* ---- upstream pools ---- */

static uint64_t px_pool_hash(uint64_t id, uint32_t addr, uint16_t port, uint32_t src)
{
	return sm_hash_mix64(id ^ sm_hash_mix64(((uint64_t)addr << 16) | port) ^ ((uint64_t)src << 32));
}

static int px_pools_grow(struct px_worker *w)
{
	size_t cap = w->cap_pools ? w->cap_pools * 2 : 64, i;
	struct px_pool **t = calloc(cap, sizeof(*t));

	if (!t)
		return -ENOMEM;
	for (i = 0; i < w->cap_pools; i++) {
		struct px_pool *pl = w->pools[i];
		size_t j;

		if (!pl)
			continue;
		for (j = px_pool_hash(pl->cluster_id, pl->addr, pl->port, pl->src) & (cap - 1); t[j];
		     j = (j + 1) & (cap - 1))
			;
		t[j] = pl;
	}
	free(w->pools);
	w->pools = t;
	w->cap_pools = cap;
	return 0;
}

struct px_pool *px_pool_get(struct px_worker *w, struct px_wcfg *cfg,
			    const struct l7_cluster *c, const struct l7_host *h, uint32_t src)
{
	struct px_pool *pl = NULL;
	size_t i;

	if (w->cap_pools) {
		for (i = px_pool_hash(c->id, h->addr, h->port, src) & (w->cap_pools - 1); w->pools[i];
		     i = (i + 1) & (w->cap_pools - 1)) {
			struct px_pool *x = w->pools[i];

			if (x->cluster_id == c->id && x->addr == h->addr && x->port == h->port &&
			    x->src == src) {
				pl = x;
				break;
			}
		}
	}
	if (!pl) {
		if ((w->n_pools + 1) * 2 > w->cap_pools && px_pools_grow(w))
			return NULL;
		pl = calloc(1, sizeof(*pl));
		if (!pl)
			return NULL;
		pl->cluster_id = c->id;
		pl->addr = h->addr;
		pl->port = h->port;
		pl->src = src;
		for (i = px_pool_hash(c->id, h->addr, h->port, src) & (w->cap_pools - 1); w->pools[i];
		     i = (i + 1) & (w->cap_pools - 1))
			;
		w->pools[i] = pl;
		w->n_pools++;
	}
	/* the breakers need a live cluster: follow the newest config */
	if (pl->cfg != cfg && (!pl->cfg || pl->cfg->retired || !cfg->c || !pl->cfg->c ||
			       cfg->c->generation >= pl->cfg->c->generation)) {
		cfg->users++;
		px_wcfg_put(w, pl->cfg);
		pl->cfg = cfg;
		pl->cluster = c;
	}
	return pl;
}

struct px_uconn *px_pool_take_idle(struct px_pool *pool)
{
	struct px_uconn *u = pool->idle;

	if (!u)
		return NULL;
	pool->idle = u->next;
	if (u->next)
		u->next->prev = NULL;
	u->next = u->prev = NULL;
	u->state = PX_U_BUSY;
	u->w->n_idle--;
	px_timer_cancel(&u->t);
	return u;
}

bool px_pool_reclaim_idle(struct px_worker *w, struct px_pool *pl)
{
	/* an overloaded cluster's pools rarely keep idle connections: skip the walk */
	for (size_t i = 0; w->n_idle && i < w->cap_pools; i++) {
		struct px_pool *x = w->pools[i];
		struct px_uconn *u;

		if (!x || x == pl || !x->idle || x->cluster_id != pl->cluster_id || x->src != pl->src)
			continue;
		for (u = x->idle; u->next; u = u->next)	/* LIFO list: the tail is the coldest */
			;
		px_uconn_close(u);
		return true;
	}
	return false;
}

void px_pool_service(struct px_worker *w, struct px_pool *pool)
{
	struct px_dconn *d;

	while ((d = pool->pend_head)) {
		px_stream_pending_retry(d);
		if (pool->pend_head == d)
			break;
	}
}

void px_pending_retry(struct px_worker *w)
{
	struct px_dconn *fallback[64], **snap = fallback, *d;
	size_t cap = 64, n = 0, i;

	/* a snapshot: a retry can requeue (retry back-off) or close streams */
	if (w->n_pend > cap) {
		if (w->n_pend > w->cap_snap) {
			size_t nc = w->n_pend * 2;
			struct px_dconn **ns = realloc(w->pend_snap, nc * sizeof(*ns));

			if (ns) {
				w->pend_snap = ns;
				w->cap_snap = nc;
			}
		}
		if (w->cap_snap >= w->n_pend) {
			snap = w->pend_snap;
			cap = w->cap_snap;
		}
	}
	for (d = w->pend; d && n < cap; d = d->st.wpend_next)
		snap[n++] = d;
	for (i = 0; i < n; i++)
		if (!snap[i]->closed && snap[i]->st.pending)
			px_stream_pending_retry(snap[i]);
	/* out of memory for the whole queue: the rest on the next tick */
	if (d)
		px_timer_arm(w, &w->tick, w->now + PX_PENDING_TICK_MS);
}

static void px_pool_drop_cfg(struct px_worker *w, struct px_pool *pl)
{
	if (pl->n_conns || pl->pend_head || !pl->cfg || !pl->cfg->retired)
		return;
	px_wcfg_put(w, pl->cfg);
	pl->cfg = NULL;
	pl->cluster = NULL;
}

/* ---- upstream connections ---- */

struct px_uconn *px_uconn_open(struct px_worker *w, struct px_pool *pool,
			       const struct l7_pool_cfg *h2, uint32_t addr, uint16_t port,
			       uint64_t timeout_ms, int *err)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = addr };
	struct epoll_event ev;
	struct px_uconn *u;
	struct h2b *h2b = NULL;
	int fd, one = 1, r = 0;

	if (h2) {
		/* an HTTP/2 backend: a bridge into this worker's h2 connections to it */
		h2b = px_h2_up_open(w, addr, port, h2, err);
		if (!h2b)
			return NULL;
		u = calloc(1, sizeof(*u));
		if (!u) {
			*err = -ENOMEM;
			px_h2_pipe_close(h2b);
			return NULL;
		}
		u->fd = -1;
		u->h2b = h2b;
		px_h2_up_bind(h2b, u);
		goto opened;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*err = -errno;
		return NULL;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	if (r && errno != EINPROGRESS) {
		*err = -errno;
		close(fd);
		return NULL;
	}
	u = calloc(1, sizeof(*u));
	if (!u) {
		*err = -ENOMEM;
		close(fd);
		return NULL;
	}
	u->fd = fd;
	if (!r && w->p->o.sock_hook)
		w->p->o.sock_hook(w->p->o.sock_hook_ctx, fd, true);
	ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
	ev.data.ptr = u;
	if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev)) {
		*err = -errno;
		close(fd);
		free(u);
		return NULL;
	}
opened:
	u->kind = PX_EV_UCONN;
	u->state = PX_U_CONNECTING;
	u->w = w;
	u->pool = pool;
	u->t.kind = PX_T_UCONN;
	u->t.idx = -1;
	if (!r) {
		/* an h2 bridge is connected at once: its h2 connection reports a failed connect */
		u->connected = true;
		u->wr_ready = true;
		u->state = PX_U_BUSY;
	}
	if (!u->connected)
		px_timer_arm(w, &u->t, w->now + (timeout_ms ? timeout_ms : PX_DEF_CONNECT_TIMEOUT_MS));
	if (pool)
		pool->n_conns++;
	px_stat_inc(w, PX_S_UP_CX_TOTAL);
	return u;
}

struct px_uconn *px_uconn_connect(struct px_worker *w, struct px_pool *pool,
				  uint32_t addr, uint16_t port, uint64_t timeout_ms, int *err)
{
	const struct l7_cluster *c = pool ? pool->cluster : NULL;

	return px_uconn_open(w, pool, c && c->h2 ? &c->pool : NULL, addr, port, timeout_ms, err);
}

static void px_idle_unlink(struct px_uconn *u)
{
	struct px_pool *pool = u->pool;

	if (u->prev)
		u->prev->next = u->next;
	else if (pool && pool->idle == u)
		pool->idle = u->next;
	if (u->next)
		u->next->prev = u->prev;
	u->next = u->prev = NULL;
}

void px_uconn_close(struct px_uconn *u)
{
	struct px_worker *w = u->w;
	struct px_pool *pool = u->pool;

	if (u->closed)
		return;
	u->closed = true;
	if (u->state == PX_U_IDLE) {
		px_idle_unlink(u);
		w->n_idle--;
	}
	else if (u->state == PX_U_MIRROR)
		px_mirror_closed(u);
	px_timer_remove(w, &u->t);
	if (u->h2b) {
		px_h2_pipe_close(u->h2b);
		u->h2b = NULL;
	} else if (u->fd >= 0) {
		if (u->connected && w->p->o.sock_hook)
			w->p->o.sock_hook(w->p->o.sock_hook_ctx, u->fd, false);
		close(u->fd);
	}
	u->fd = -1;
	u->d = NULL;
	u->dead_next = w->dead_u;
	w->dead_u = u;
	px_stat_inc(w, PX_S_UP_CX_CLOSED);
	if (pool) {
		pool->n_conns--;
		if (pool->cluster)
			up_cb_release_src(w->p->o.up, pool->cluster, pool->src, UP_CB_CONNECTIONS);
		if (pool->pend_head)
			px_pool_service(w, pool);
		px_pool_drop_cfg(w, pool);
	}
}

void px_uconn_release(struct px_uconn *u, bool reusable)
{
	struct px_worker *w = u->w;
	struct px_pool *pool = u->pool;
	uint64_t idle;

	u->d = NULL;
	if (!reusable || u->closed || !pool || !pool->cluster || w->p->stop) {
		px_uconn_close(u);
		return;
	}
	u->in.off = u->in.len = 0;
	px_buf_drop(w, &u->in);
	u->state = PX_U_IDLE;
	w->n_idle++;
	u->prev = NULL;
	u->next = pool->idle;
	if (pool->idle)
		pool->idle->prev = u;
	pool->idle = u;
	idle = pool->cluster->pool.idle_timeout_ms;
	px_timer_arm(w, &u->t, w->now + (idle ? idle : PX_DEF_UP_IDLE_MS));
	if (pool->pend_head)
		px_pool_service(w, pool);
}

int px_connect_result(int fd, uint32_t events)
{
	int e = 0;
	socklen_t el = sizeof(e);

	if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
		return 0;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) || e ||
	    (events & (EPOLLERR | EPOLLHUP)) == (EPOLLERR | EPOLLHUP))
		return -1;
	return 1;
}

static bool px_uconn_check_connect(struct px_uconn *u, uint32_t events)
{
	int r;

	if (u->connected)
		return true;
	r = px_connect_result(u->fd, events);
	if (!r)
		return false;
	if (r < 0) {
		px_stat_inc(u->w, PX_S_UP_CX_CONNECT_FAIL);
		if (u->d)
			px_stream_connect_failed(u->d);
		else
			px_uconn_close(u);
		return false;
	}
	u->connected = true;
	if (u->w->p->o.sock_hook)
		u->w->p->o.sock_hook(u->w->p->o.sock_hook_ctx, u->fd, true);
	if (u->state == PX_U_CONNECTING) {
		u->state = PX_U_BUSY;
		px_timer_cancel(&u->t);
	}
	return true;
}

/*
 * Connection I/O: a socket, or for HTTP/2 the bridge's in-memory pipe
 * (proxy_h2.h), with a socket's return convention.
 */
ssize_t px_io_read(int fd, struct h2b *b, void *p, size_t n)
{
	ssize_t r;

	if (!b)
		return read(fd, p, n);
	r = px_h2_pipe_read(b, p, n);
	if (r < 0) {
		errno = (int)-r;
		return -1;
	}
	return r;
}

ssize_t px_io_writev(int fd, struct h2b *b, const struct iovec *iov, int c)
{
	ssize_t r;

	if (!b)
		return writev(fd, iov, c);
	r = px_h2_pipe_writev(b, iov, c);
	if (r < 0) {
		errno = (int)-r;
		return -1;
	}
	return r;
}

void px_uconn_event(struct px_uconn *u, uint32_t events)
{
	if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		u->rdhup = true;
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		u->rd_ready = true;
	if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
		u->wr_ready = true;
	if (!px_uconn_check_connect(u, events))
		return;
	switch (u->state) {
	case PX_U_IDLE:
		/* the server closed (or spoke out of turn): drop it */
		if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
			px_uconn_close(u);
		return;
	case PX_U_MIRROR:
		px_mirror_io(u);
		return;
	default:
		if (u->d)
			px_dconn_pump(u->d);
		else
			px_uconn_close(u);
	}
}

static void px_uconn_timer(struct px_uconn *u)
{
	if (u->closed)
		return;
	if (u->state == PX_U_CONNECTING && !u->connected) {
		px_stat_inc(u->w, PX_S_UP_CX_CONNECT_FAIL);
		if (u->d)
			px_stream_connect_failed(u->d);
		else
			px_uconn_close(u);
		return;
	}
	if (u->state == PX_U_IDLE || u->state == PX_U_MIRROR)
		px_uconn_close(u);
}

/* ---- worker ---- */

static void px_worker_tick(struct px_worker *w)
{
	uint64_t next = w->now + PX_TICK_MS;

	if (w->accept_resume_at) {
		if (w->accept_resume_at <= w->now) {
			w->accept_resume_at = 0;
			px_listener_pause(w, false);
		} else if (w->accept_resume_at < next) {
			next = w->accept_resume_at;
		}
	}
	if (w->pend) {
		px_pending_retry(w);
		if (w->pend && !w->p->wait_ev && w->now + PX_PENDING_TICK_MS < next)
			next = w->now + PX_PENDING_TICK_MS;
	}
	px_timer_arm(w, &w->tick, next);
}

static void px_worker_set_cfg(struct px_worker *w, struct l7_config *c)
{
	struct px_wcfg *wc = px_wcfg_new(c), *old = w->cfg;
	size_t i;

	if (!wc) {
		l7_config_put(c);
		return;
	}
	w->cfg = wc;
	if (old) {
		old->retired = true;
		if (!old->users) {
			px_wcfg_free(w, old);
		} else {
			old->next = w->old_cfgs;
			w->old_cfgs = old;
		}
	}
	/* pools with connections move to the new cluster of the same id */
	for (i = 0; i < w->cap_pools; i++) {
		struct px_pool *pl = w->pools[i];
		const struct l7_cluster *cl;

		if (!pl || !pl->cfg || !pl->cfg->retired)
			continue;
		if ((cl = l7_config_find_cluster(c, pl->cluster_id))) {
			wc->users++;
			px_wcfg_put(w, pl->cfg);
			pl->cfg = wc;
			pl->cluster = cl;
		}
		px_pool_drop_cfg(w, pl);
	}
	px_gateways_reconcile(w);
}

static void px_worker_wake(struct px_worker *w)
{
	struct l7_config *c;
	uint64_t v;

	while (read(w->wakefd, &v, sizeof(v)) == sizeof(v))
		;
	c = atomic_exchange(&w->mail, NULL);
	if (c)
		px_worker_set_cfg(w, c);
	if (atomic_exchange(&w->pend_kick, false) && w->pend)
		px_pending_retry(w);
}

static void px_dconn_free(struct px_dconn *d)
{
	free(d->in.p);
	free(d->out.p);
	free(d->st.head);
	free(d->st.uhead);
	free(d->st.replay);
	free(d->st.req_mem);
	free(d);
}

static void px_reap(struct px_worker *w)
{
	while (w->dead_d) {
		struct px_dconn *d = w->dead_d;

		w->dead_d = d->dead_next;
		if (d->h2 && w->n_dfree < PX_DFREE_MAX && !w->p->stop) {
			/* an HTTP/2 stream's: kept with its buffers for the next stream */
			d->dead_next = w->dfree;
			w->dfree = d;
			w->n_dfree++;
			continue;
		}
		px_dconn_free(d);
	}
	while (w->dead_u) {
		struct px_uconn *u = w->dead_u;

		w->dead_u = u->dead_next;
		free(u->in.p);
		free(u->mout.p);
		free(u);
	}
}

static void px_worker_shutdown(struct px_worker *w)
{
	size_t i;

	px_h2_shutdown(w);
	while (w->conns)
		px_dconn_close(w->conns, PX_F_DC);
	while (w->mirrors)
		px_uconn_close(w->mirrors);
	for (i = 0; i < w->cap_pools; i++) {
		struct px_pool *pl = w->pools ? w->pools[i] : NULL;

		if (!pl)
			continue;
		while (pl->idle)
			px_uconn_close(pl->idle);
	}
	px_reap(w);
	while (w->dfree) {
		struct px_dconn *d = w->dfree;

		w->dfree = d->dead_next;
		px_dconn_free(d);
	}
	px_buf_stash_free(w);
	for (i = 0; i < w->cap_pools; i++) {
		struct px_pool *pl = w->pools ? w->pools[i] : NULL;

		if (!pl)
			continue;
		px_wcfg_put(w, pl->cfg);
		free(pl);
	}
	free(w->pools);
	w->pools = NULL;
	w->cap_pools = w->n_pools = 0;
	for (i = 0; i < w->n_ls; i++) {
		close(w->ls[i]->fd);
		free(w->ls[i]);
	}
	w->n_ls = 0;
	px_log_flush(w);
}

#define PX_DRAIN_POLL_MS	10

static void px_worker_drain(struct px_worker *w)
{
	if (atomic_load_explicit(&w->drained, memory_order_relaxed))
		return;
	if (!w->drain_since)
		w->drain_since = w->now ? w->now : 1;
	/* both every turn: each closes what is idle and marks the rest */
	if (px_h2_drain(w, w->drain_since) & px_http_drain(w))
		atomic_store(&w->drained, true);
}

static void *px_worker_main(void *arg)
{
	struct px_worker *w = arg;
	struct proxy *p = w->p;
	struct epoll_event evs[PX_EVENTS];

	w->now = px_now(p);
	px_gateways_reconcile(w);
	px_timer_arm(w, &w->tick, w->now + PX_TICK_MS);
	while (!atomic_load_explicit(&p->stop, memory_order_relaxed)) {
		int timeout = -1, n, i;

		if (atomic_load_explicit(&p->draining, memory_order_relaxed))
			px_worker_drain(w);
		if (w->runq || px_h2_busy(w)) {
			timeout = 0;
		} else if (w->drain_since && !atomic_load(&w->drained)) {
			timeout = PX_DRAIN_POLL_MS;
		} else if (w->n_heap) {
			uint64_t at = w->heap[0]->heap_at;

			timeout = at <= w->now ? 0 : at - w->now > 60000 ? 60000 :
								(int)(at - w->now);
		}
		n = epoll_wait(w->ep, evs, PX_EVENTS, timeout);
		w->now = px_now(p);
		for (i = 0; i < n; i++) {
			uint8_t kind = *(uint8_t *)evs[i].data.ptr;

			switch (kind) {
			case PX_EV_LISTEN:
				px_accept(w, evs[i].data.ptr);
				break;
			case PX_EV_DCONN: {
				struct px_dconn *d = evs[i].data.ptr;

				if (!d->closed)
					px_dconn_event(d, evs[i].events);
				break;
			}
			case PX_EV_UCONN: {
				struct px_uconn *u = evs[i].data.ptr;

				if (!u->closed)
					px_uconn_event(u, evs[i].events);
				break;
			}
			case PX_EV_WAKE:
				px_worker_wake(w);
				break;
			case PX_EV_H2:
				px_h2_event(evs[i].data.ptr, evs[i].events);
				break;
			}
		}
		px_h2_run(w);
		px_timers_run(w);
		px_runq_run(w);
		px_h2_run(w);
		px_h2_flush(w);
		px_reap(w);
		px_h2_reap(w);
		px_log_flush(w);
	}
	px_worker_shutdown(w);
	return NULL;
}

static void px_worker_free(struct px_worker *w)
{
	struct l7_config *c;

	if (w->ep >= 0)
		close(w->ep);
	if (w->wakefd >= 0)
		close(w->wakefd);
	for (size_t i = 0; i < w->n_ls; i++) {
		close(w->ls[i]->fd);
		free(w->ls[i]);
	}
	free(w->ls);
	while (w->old_cfgs)
		px_wcfg_free(w, w->old_cfgs);
	if (w->cfg) {
		w->cfg->retired = true;
		px_wcfg_free(w, w->cfg);
		w->cfg = NULL;
	}
	c = atomic_exchange(&w->mail, NULL);
	if (c)
		l7_config_put(c);
	free(w->heap);
	free(w->pend_snap);
	for (size_t i = 0; i < w->cap_cstats; i++) {
		if (w->cstats[i]) {
			free(w->cstats[i]->name);
			free(w->cstats[i]);
		}
	}
	free(w->cstats);
	px_rstat_free(w);
	free(w->log);
	pthread_mutex_destroy(&w->cs_mu);
}

static int px_worker_init(struct proxy *p, struct px_worker *w, int idx, struct l7_config *c,
			  char *err, size_t errlen)
{
	struct epoll_event ev;
	int e = 0;

	w->p = p;
	w->idx = idx;
	w->wake_kind = PX_EV_WAKE;
	w->tick.kind = PX_T_TICK;
	w->tick.idx = -1;
	w->wakefd = -1;
	pthread_mutex_init(&w->cs_mu, NULL);
	if (getrandom(&w->rng, sizeof(w->rng), 0) != sizeof(w->rng))
		w->rng = px_clock_ms() ^ ((uint64_t)idx << 32);
	w->rng |= 1;
	w->ep = epoll_create1(EPOLL_CLOEXEC);
	if (w->ep < 0) {
		snprintf(err, errlen, "epoll_create1: %s", strerror(errno));
		return -errno;
	}
	w->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->wakefd < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		return -errno;
	}
	ev.events = EPOLLIN;
	ev.data.ptr = &w->wake_kind;
	if (epoll_ctl(w->ep, EPOLL_CTL_ADD, w->wakefd, &ev)) {
		snprintf(err, errlen, "epoll_ctl: %s", strerror(errno));
		return -errno;
	}
	if (p->o.access_log_fd >= 0) {
		w->log = malloc(PX_LOG_BUF);
		if (!w->log) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
	}
	w->cfg = px_wcfg_new(c ? l7_config_get(c) : NULL);
	if (!w->cfg) {
		if (c)
			l7_config_put(c);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (px_listener_add(w, p->o.listen_addr, p->port, false, &e)) {
		char a[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &p->o.listen_addr, a, sizeof(a));
		snprintf(err, errlen, "listen %s:%u: %s", a, p->port, strerror(-e));
		return e;
	}
	if (!p->port) {
		struct sockaddr_in sa;
		socklen_t sl = sizeof(sa);

		if (getsockname(w->ls[0]->fd, (struct sockaddr *)&sa, &sl)) {
			snprintf(err, errlen, "getsockname: %s", strerror(errno));
			return -errno;
		}
		p->port = ntohs(sa.sin_port);
	}
	return 0;
}

static void px_free(struct proxy *p)
{
	int i;

	if (p->wait_ev)
		up_registry_set_waker(p->o.up, NULL, p);
	for (i = 0; i < p->nw; i++)
		px_worker_free(&p->w[i]);
	free(p->w);
	if (p->cfg)
		l7_config_put(p->cfg);
	pthread_mutex_destroy(&p->mu);
	pthread_mutex_destroy(&p->err_mu);
	free(p);
}

struct proxy *proxy_start(const struct proxy_opts *o, struct l7_config *config,
			  char *err, size_t errlen)
{
	sigset_t all, old;
	struct proxy *p;
	long ncpu;
	int i, e;

	if (!o->up) {
		snprintf(err, errlen, "proxy: no upstream registry");
		if (config)
			l7_config_put(config);
		errno = EINVAL;
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(err, errlen, "out of memory");
		if (config)
			l7_config_put(config);
		errno = ENOMEM;
		return NULL;
	}
	p->o = *o;
	p->cfg = config;
	p->port = o->listen_port;
	pthread_mutex_init(&p->mu, NULL);
	pthread_mutex_init(&p->err_mu, NULL);
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	p->nw = o->workers > 0 ? o->workers : ncpu > 0 ? (int)ncpu : 1;
	if (p->nw > PX_MAX_WORKERS)
		p->nw = PX_MAX_WORKERS;
	p->w = calloc((size_t)p->nw, sizeof(*p->w));
	if (!p->w) {
		snprintf(err, errlen, "out of memory");
		p->nw = 0;
		px_free(p);
		errno = ENOMEM;
		return NULL;
	}
	for (i = 0; i < p->nw; i++) {
		p->w[i].ep = -1;
		p->w[i].wakefd = -1;
	}
	/* one proxy per registry is woken; another one polls (PX_PENDING_TICK_MS) */
	p->wait_ev = !up_registry_set_waker(p->o.up, px_pending_wake, p);
	for (i = 0; i < p->nw; i++) {
		e = px_worker_init(p, &p->w[i], i, config, err, errlen);
		if (e) {
			px_free(p);
			errno = -e;
			return NULL;
		}
	}
	/* workers inherit a full signal mask: signals belong to the agent's threads */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (i = 0; i < p->nw; i++) {
		e = pthread_create(&p->w[i].th, NULL, px_worker_main, &p->w[i]);
		if (e) {
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			snprintf(err, errlen, "pthread_create: %s", strerror(e));
			proxy_stop(p);
			errno = e;
			return NULL;
		}
		p->w[i].started = true;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return p;
}

uint16_t proxy_listen_port(const struct proxy *p)
{
	return p->port;
}

static void px_wake(struct px_worker *w)
{
	uint64_t one = 1;
	ssize_t n = write(w->wakefd, &one, sizeof(one));

	(void)n;	/* a full counter already means "wake up" */
}

void px_pending_kick(struct px_worker *w)
{
	/* one write until the worker has looked */
	if (!atomic_exchange(&w->pend_kick, true))
		px_wake(w);
}

/* The registry's waker: a connection slot of a cluster w waits for was freed. */
static void px_pending_wake(void *ctx, unsigned int slot)
{
	struct proxy *p = ctx;

	if (slot < (unsigned int)p->nw)
		px_pending_kick(&p->w[slot]);
}

void proxy_kick(struct proxy *p)
{
	for (int i = 0; i < p->nw; i++)
		px_wake(&p->w[i]);
}

void proxy_set_config(struct proxy *p, struct l7_config *config)
{
	struct l7_config *old;
	int i;

	pthread_mutex_lock(&p->mu);
	old = p->cfg;
	p->cfg = config;
	for (i = 0; i < p->nw; i++) {
		struct l7_config *prev;

		prev = atomic_exchange(&p->w[i].mail, config ? l7_config_get(config) : NULL);
		if (prev)
			l7_config_put(prev);
		px_wake(&p->w[i]);
	}
	pthread_mutex_unlock(&p->mu);
	if (old)
		l7_config_put(old);
}

void proxy_drain(struct proxy *p, unsigned int ms)
{
	const struct timespec nap = { .tv_nsec = PX_DRAIN_POLL_MS * 1000000L };
	uint64_t end;
	int i, done;

	if (!p)
		return;
	atomic_store(&p->draining, true);
	proxy_kick(p);	/* a proxy that proxy_new returned has all workers started */
	end = px_clock_ms() + ms;
	do {
		for (i = done = 0; i < p->nw; i++)
			done += !p->w[i].started || atomic_load(&p->w[i].drained);
		if (done == p->nw)
			return;
		nanosleep(&nap, NULL);
	} while (px_clock_ms() < end);
}

void proxy_stop(struct proxy *p)
{
	int i;

	if (!p)
		return;
	atomic_store(&p->stop, true);
	for (i = 0; i < p->nw; i++)
		if (p->w[i].started)
			px_wake(&p->w[i]);
	for (i = 0; i < p->nw; i++)
		if (p->w[i].started)
			pthread_join(p->w[i].th, NULL);
	px_free(p);
}

static const char *const px_stat_names[PX_S_F_FIRST] = {
	[PX_S_CX_TOTAL] = "downstream_cx_total",
	[PX_S_CX_CLOSED] = "downstream_cx_closed",
	[PX_S_CX_NO_ORIG] = "downstream_cx_refused_no_orig_dst",
	[PX_S_CX_OVERFLOW] = "downstream_cx_overflow",
	[PX_S_CX_ACCEPT_ERR] = "downstream_cx_accept_errors",
	[PX_S_RQ_TOTAL] = "downstream_rq_total",
	[PX_S_RQ_1XX] = "downstream_rq_1xx",
	[PX_S_RQ_2XX] = "downstream_rq_2xx",
	[PX_S_RQ_3XX] = "downstream_rq_3xx",
	[PX_S_RQ_4XX] = "downstream_rq_4xx",
	[PX_S_RQ_5XX] = "downstream_rq_5xx",
	[PX_S_RQ_NO_RESPONSE] = "downstream_rq_no_response",
	[PX_S_RQ_BAD] = "downstream_rq_bad",
	[PX_S_RQ_HEADER_TIMEOUT] = "downstream_rq_header_timeout",
	[PX_S_RQ_PREFLIGHT] = "downstream_rq_cors_preflight",
	[PX_S_RQ_UPGRADE] = "downstream_rq_upgrade",
	[PX_S_RETRIES] = "upstream_rq_retry",
	[PX_S_RETRY_OVERFLOW] = "upstream_rq_retry_overflow",
	[PX_S_UP_CX_TOTAL] = "upstream_cx_total",
	[PX_S_UP_CX_CLOSED] = "upstream_cx_closed",
	[PX_S_UP_CX_CONNECT_FAIL] = "upstream_cx_connect_fail",
	[PX_S_UP_RQ_REUSED] = "upstream_rq_reused_cx",
	[PX_S_UP_REDISPATCH] = "upstream_rq_stale_cx_resent",
	[PX_S_MIRROR_SENT] = "mirror_rq_sent",
	[PX_S_MIRROR_SKIPPED] = "mirror_rq_skipped",
	[PX_S_MIRROR_COMPLETED] = "mirror_rq_completed",
	[PX_S_MIRROR_FAILED] = "mirror_rq_failed",
	[PX_S_MIRROR_ABANDONED] = "mirror_rq_abandoned",
	[PX_S_MIRROR_CANCELLED] = "mirror_rq_cancelled",
	[PX_S_LISTENER_ERR] = "listener_errors",
	[PX_S_LOG_DROPPED] = "access_log_dropped",
	[PX_S_CX_H2] = "downstream_cx_http2",
};

static uint64_t px_sum(struct proxy *p, int k)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < p->nw; i++)
		v += __atomic_load_n(&p->w[i].s[k], __ATOMIC_RELAXED);
	return v;
}

static void px_json_add_cluster(json_t *clusters, const struct px_cstat *cs)
{
	json_t *c = json_object_get(clusters, cs->name);
	static const char *const keys[] = { "rq_total", "rq_2xx", "rq_3xx", "rq_4xx", "rq_5xx",
					    "rq_retry", "rq_overflow", "rq_timeout",
					    "cx_connect_fail" };
	const uint64_t *vals[] = { &cs->rq, &cs->rq_2xx, &cs->rq_3xx, &cs->rq_4xx, &cs->rq_5xx,
				   &cs->retries, &cs->overflow, &cs->timeouts, &cs->cx_fail };
	size_t i;

	if (!c) {
		c = json_object();
		if (!c)
			return;
		json_object_set_new(clusters, cs->name, c);
	}
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		json_t *v = json_object_get(c, keys[i]);
		json_int_t cur = v ? json_integer_value(v) : 0;

		json_object_set_new(c, keys[i], json_integer(cur + (json_int_t)
			__atomic_load_n(vals[i], __ATOMIC_RELAXED)));
	}
}

/* Sum of a px_h2_tick gauge over the workers: 0 streams open, 1 their buffer bytes. */
static uint64_t px_sum_gauge(struct proxy *p, int which)
{
	uint64_t v = 0;

	for (int i = 0; i < p->nw; i++)
		v += __atomic_load_n(which ? &p->w[i].h2_stream_buf_bytes : &p->w[i].h2_streams_open,
				     __ATOMIC_RELAXED);
	return v;
}

json_t *proxy_stats_json(struct proxy *p)
{
	json_t *o = json_object(), *flags, *clusters;
	int i, k;

	if (!o)
		return NULL;
	for (k = 0; k < PX_S_F_FIRST; k++)
		json_object_set_new(o, px_stat_names[k], json_integer((json_int_t)px_sum(p, k)));
	json_object_set_new(o, "downstream_cx_active",
			    json_integer((json_int_t)(px_sum(p, PX_S_CX_TOTAL) -
						      px_sum(p, PX_S_CX_CLOSED))));
	json_object_set_new(o, "upstream_cx_active",
			    json_integer((json_int_t)(px_sum(p, PX_S_UP_CX_TOTAL) -
						      px_sum(p, PX_S_UP_CX_CLOSED))));
	json_object_set_new(o, "h2_streams_open", json_integer((json_int_t)px_sum_gauge(p, 0)));
	json_object_set_new(o, "h2_stream_buffer_bytes", json_integer((json_int_t)px_sum_gauge(p, 1)));
	json_object_set_new(o, "workers", json_integer(p->nw));
	/* the limits in force: 0 = none; timeouts after defaults */
	json_object_set_new(o, "max_conns", json_integer(p->o.max_conns));
	json_object_set_new(o, "header_timeout_ms",
			    json_integer((json_int_t)(p->o.header_timeout_ms ? p->o.header_timeout_ms :
						      PX_DEF_HEADER_TIMEOUT_MS)));
	json_object_set_new(o, "listen_port", json_integer(p->port));
	flags = json_object();
	for (k = 0; k < PX_F_MAX; k++)
		json_object_set_new(flags, px_flag_names[k],
				    json_integer((json_int_t)px_sum(p, PX_S_F_FIRST + k)));
	json_object_set_new(o, "response_flags", flags);
	clusters = json_object();
	for (i = 0; i < p->nw; i++) {
		struct px_worker *w = &p->w[i];
		size_t j;

		pthread_mutex_lock(&w->cs_mu);
		for (j = 0; j < w->cap_cstats; j++)
			if (w->cstats[j])
				px_json_add_cluster(clusters, w->cstats[j]);
		pthread_mutex_unlock(&w->cs_mu);
	}
	json_object_set_new(o, "clusters", clusters);
	pthread_mutex_lock(&p->err_mu);
	if (p->listener_err[0])
		json_object_set_new(o, "listener_last_error", json_string(p->listener_err));
	pthread_mutex_unlock(&p->err_mu);
	pthread_mutex_lock(&p->mu);
	if (p->cfg)
		json_object_set_new(o, "config_generation",
				    json_integer((json_int_t)p->cfg->generation));
	pthread_mutex_unlock(&p->mu);
	return o;
}
