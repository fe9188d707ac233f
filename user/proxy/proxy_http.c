// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * proxy_http: the request engine. One downstream connection carries one
 * request at a time (pipelined requests wait in its read buffer, answered
 * in order). For each request: parse the head, route (VirtualService
 * match, redirect, direct response, CORS, faults), pick a destination and
 * a host, take a pooled upstream connection (or queue behind the
 * connection limit, Envoy's pending requests), stream the body both ways
 * through bounded buffers, retry on the route's conditions, log.
 *
 * Bodies are never buffered whole: request and response bytes flow from
 * one connection's read buffer straight to the other socket (writev with
 * the head). Chunked framing is validated with http1_chunked_decode and
 * passed through verbatim; only an HTTP/1.0 client gets a chunked response
 * de-chunked in place (and the connection closed to delimit it).
 * Request bodies up to PX_REPLAY_MAX are also kept for retries.
 *
 * Expect: 100-continue is forwarded; the upstream's 100 (any 1xx but 101)
 * is relayed to the client, so the backend decides, as with Envoy's
 * proxy_100_continue.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "proxy/proxy_h2.h"
#include "proxy/proxy_int.h"

/* ---- small growable buffer for heads ---- */

/* The request of a stream without one (bare, or none parsed yet). */
static const struct http1_msg px_req_none = {
	.method = { "", 0 }, .target = { "", 0 }, .path = { "", 0 }, .query = { "", 0 },
	.reason = { "", 0 }, .minor_version = 1,
};

struct px_sb {
	char *p;
	uint32_t len, cap;
	bool oom;
};

static __attribute__((noinline)) bool sb_grow(struct px_sb *b, size_t more)
{
	size_t need = (size_t)b->len + more, cap;
	char *np;

	if (b->oom)
		return false;
	if (need <= b->cap)
		return true;
	cap = b->cap ? b->cap : 1024;
	while (cap < need)
		cap *= 2;
	if (cap > UINT32_MAX / 2) {
		b->oom = true;
		return false;
	}
	np = realloc(b->p, cap);
	if (!np) {
		b->oom = true;
		return false;
	}
	b->p = np;
	b->cap = (uint32_t)cap;
	return true;
}

/*
 * Room for more bytes. Inline, as the writers below: a head is written a
 * few bytes at a time, a dozen calls per head, and the room is there.
 */
static inline bool sb_reserve(struct px_sb *b, size_t more)
{
	if (__builtin_expect(!b->oom && (size_t)b->len + more <= b->cap, 1))
		return true;
	return sb_grow(b, more);
}

static inline void sb_put(struct px_sb *b, const char *s, size_t n)
{
	if (!n || !sb_reserve(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += (uint32_t)n;
}

static inline void sb_puts(struct px_sb *b, const char *s)
{
	sb_put(b, s, strlen(s));
}

static inline void sb_hdr(struct px_sb *b, const char *name, size_t nn, const char *v, size_t vn)
{
	if (!sb_reserve(b, nn + vn + 4))
		return;
	memcpy(b->p + b->len, name, nn);
	b->len += (uint32_t)nn;
	b->p[b->len++] = ':';
	b->p[b->len++] = ' ';
	memcpy(b->p + b->len, v, vn);
	b->len += (uint32_t)vn;
	b->p[b->len++] = '\r';
	b->p[b->len++] = '\n';
}

static void sb_hdrz(struct px_sb *b, const char *name, const char *v)
{
	sb_hdr(b, name, strlen(name), v, strlen(v));
}

/* "name: v0, v1, ...\r\n" (a CORS list as written); nothing when n is 0 */
static void sb_hdr_list(struct px_sb *b, const char *name, char *const *v, size_t n)
{
	if (!n)
		return;
	sb_puts(b, name);
	sb_puts(b, ": ");
	for (size_t i = 0; i < n; i++) {
		if (i)
			sb_puts(b, ", ");
		sb_puts(b, v[i]);
	}
	sb_puts(b, "\r\n");
}

static void sb_u64(struct px_sb *b, uint64_t v)
{
	char tmp[24];
	int i = (int)sizeof(tmp);

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	sb_put(b, tmp + i, sizeof(tmp) - (size_t)i);
}

/* the connection's output buffer as a px_sb, appended to */
static struct px_sb out_sb(struct px_dconn *d)
{
	struct px_sb b = { d->out.p, d->out.len, d->out.cap, false };

	if (d->out.off && d->out.off == d->out.len)
		b.len = d->out.off = d->out.len = 0;
	return b;
}

static void out_sb_done(struct px_dconn *d, struct px_sb *b)
{
	d->out.p = b->p;
	d->out.cap = b->cap;
	d->out.len = b->len;
	if (b->oom)
		d->err = true;	/* no memory for a head: give the connection up */
}

/* ---- header classes ---- */

enum {
	H_OTHER = 0,
	H_HOP,		/* connection, keep-alive, proxy-connection, te, upgrade */
	H_HOST,
	H_ATTEMPT,	/* x-envoy-attempt-count: we set our own */
	H_XFF,
	H_XFP,
	H_ORIG_PATH,
	H_TE,		/* transfer-encoding */
	H_RQ_TIMEOUT,	/* x-envoy-upstream-rq-timeout-ms: consumed (mesh) */
};

static int px_hdr_class(const char *n, size_t len)
{
	switch (len) {
	case 2:
		return px_ieq(n, len, "te") ? H_HOP : H_OTHER;
	case 4:
		return px_ieq(n, len, "host") ? H_HOST : H_OTHER;
	case 7:
		return px_ieq(n, len, "upgrade") ? H_HOP : H_OTHER;
	case 10:
		return px_ieq(n, len, "connection") || px_ieq(n, len, "keep-alive") ? H_HOP :
										      H_OTHER;
	case 15:
		return px_ieq(n, len, "x-forwarded-for") ? H_XFF : H_OTHER;
	case 16:
		return px_ieq(n, len, "proxy-connection") ? H_HOP : H_OTHER;
	case 17:
		if (px_ieq(n, len, "x-forwarded-proto"))
			return H_XFP;
		return px_ieq(n, len, "transfer-encoding") ? H_TE : H_OTHER;
	case 21:
		if (px_ieq(n, len, "x-envoy-attempt-count"))
			return H_ATTEMPT;
		return px_ieq(n, len, "x-envoy-original-path") ? H_ORIG_PATH : H_OTHER;
	case 30:
		return px_ieq(n, len, "x-envoy-upstream-rq-timeout-ms") ? H_RQ_TIMEOUT : H_OTHER;
	}
	return H_OTHER;
}

static bool px_ops_drop(const struct pol_hdr_ops *o, const char *n, size_t nn)
{
	/* most routes edit no headers: no calls for empty lists */
	return o && ((o->n_remove && px_hdr_listed(n, nn, o->remove, o->n_remove)) ||
		     (o->set.n && px_kv_listed(n, nn, o->set.v, o->set.n)));
}

/* host / :authority in headers set or add: Istio makes it the host rewrite */
static bool px_is_authority(const char *key)
{
	return key && (strcasecmp(key, "host") == 0 || strcasecmp(key, ":authority") == 0);
}

static const char *px_ops_authority(const struct pol_hdr_ops *o)
{
	const char *a = NULL;
	size_t i;

	if (!o)
		return NULL;
	for (i = 0; i < o->set.n; i++)
		if (px_is_authority(o->set.v[i].key))
			a = o->set.v[i].value;
	for (i = 0; i < o->add.n && !a; i++)
		if (px_is_authority(o->add.v[i].key))
			a = o->add.v[i].value;
	return a && *a ? a : NULL;
}

static void px_kv_append(struct px_sb *b, const struct pol_kv *kv)
{
	if (kv->key && !px_is_authority(kv->key))
		sb_hdrz(b, kv->key, kv->value ? kv->value : "");
}

/* set (inner level first; the outer level wins on the same name), then add */
static void px_ops_append(struct px_sb *b, const struct pol_hdr_ops *inner,
			  const struct pol_hdr_ops *outer)
{
	size_t i;

	if (inner)
		for (i = 0; i < inner->set.n; i++)
			if (!outer || !px_kv_listed(inner->set.v[i].key, strlen(inner->set.v[i].key),
						    outer->set.v, outer->set.n))
				px_kv_append(b, &inner->set.v[i]);
	if (outer)
		for (i = 0; i < outer->set.n; i++)
			px_kv_append(b, &outer->set.v[i]);
	if (inner)
		for (i = 0; i < inner->add.n; i++)
			px_kv_append(b, &inner->add.v[i]);
	if (outer)
		for (i = 0; i < outer->add.n; i++)
			px_kv_append(b, &outer->add.v[i]);
}

/* ---- request view for the router and the load balancer ---- */

static const char *px_view_header(const void *ctx, const char *name, size_t *len)
{
	const struct http1_msg *m = ctx;
	size_t nl = strlen(name), i;

	for (i = 0; i < m->n_headers; i++) {
		const struct http1_header *h = &m->headers[i];

		if (h->name.n == nl && strncasecmp(h->name.p, name, nl) == 0) {
			*len = h->value.n;
			return h->value.p;
		}
	}
	return NULL;
}

static void st_view(struct px_dconn *d, struct l7_request_view *v)
{
	struct px_stream *st = &d->st;
	const struct http1_msg *m = st->req;

	memset(v, 0, sizeof(*v));
	v->method = m->method.p;
	v->method_len = m->method.n;
	v->path = m->path.p;
	v->path_len = m->path.n;
	v->query = m->query.p;
	v->query_len = m->query.n;
	v->authority = m->host.p;
	v->authority_len = m->host.n;
	v->scheme = "http";
	v->port = st->port;
	v->header = px_view_header;
	v->ctx = m;
	v->source = st->source;
	v->gateway = st->gw ? st->gw->name : NULL;
	v->gen_cookie = st->ck_gen[0] ? st->ck_gen : NULL;
}

/*
 * consistentHash.httpCookie with a ttl and a request without the cookie:
 * Envoy generates one from the downstream connection's addresses (one
 * value per connection), hashes it, and sets it on the response.
 */
static void st_cookie_gen(struct px_dconn *d)
{
	struct px_stream *st = &d->st;
	const struct l7_cluster *c = st->cluster;
	const struct http1_header *ck;
	uint64_t x;
	size_t n;

	if (st->ck_gen[0] || c->hash_kind != POL_HASH_COOKIE || c->cookie_ttl_s < 0 ||
	    !c->hash_key || st->bare)
		return;
	ck = http1_header_get(st->req, "cookie");
	if (ck && up_cookie_value(ck->value.p, ck->value.n, c->hash_key, &n))
		return;
	x = sm_hash_mix64(((uint64_t)d->peer_addr << 16 | d->peer_port) ^
			  sm_hash_mix64((uint64_t)d->orig.vip << 16 | st->port));
	snprintf(st->ck_gen, sizeof(st->ck_gen), "%016llx", (unsigned long long)x);
}

/* Envoy's makeSetCookieValue: name="value"; Max-Age=N; Path=P; HttpOnly */
static void st_cookie_put(struct px_stream *st, struct px_sb *b)
{
	const struct l7_cluster *c = st->cluster;

	if (!st->ck_gen[0] || !c)
		return;
	sb_puts(b, "set-cookie: ");
	sb_puts(b, c->hash_key);
	sb_puts(b, "=\"");
	sb_puts(b, st->ck_gen);
	sb_puts(b, "\"");
	if (c->cookie_ttl_s > 0) {
		sb_puts(b, "; Max-Age=");
		sb_u64(b, (uint64_t)c->cookie_ttl_s);
	}
	if (c->cookie_path && *c->cookie_path) {
		sb_puts(b, "; Path=");
		sb_puts(b, c->cookie_path);
	}
	sb_puts(b, "; HttpOnly\r\n");
}

/* ---- stream lifecycle ---- */

static void st_reset(struct px_dconn *d)
{
	memset(&d->st, 0, offsetof(struct px_stream, req));
	d->st.grpc = PROXY_GRPC_NONE;
}

static bool px_pct_hit(struct px_worker *w, double pct)
{
	if (pct <= 0)
		return false;
	if (pct >= 100)
		return true;
	return (double)(px_rand(w) % 1000000) < pct * 10000.0;
}

static void st_pend_del(struct px_dconn *d)
{
	struct px_stream *st = &d->st;
	struct px_worker *w = d->w;
	struct px_pool *pl = st->pool;

	if (!st->pending)
		return;
	if (st->pend_prev)
		st->pend_prev->st.pend_next = st->pend_next;
	else
		pl->pend_head = st->pend_next;
	if (st->pend_next)
		st->pend_next->st.pend_prev = st->pend_prev;
	else
		pl->pend_tail = st->pend_prev;
	if (st->wpend_prev)
		st->wpend_prev->st.wpend_next = st->wpend_next;
	else
		w->pend = st->wpend_next;
	if (st->wpend_next)
		st->wpend_next->st.wpend_prev = st->wpend_prev;
	else
		w->pend_tail = st->wpend_prev;
	w->n_pend--;
	st->pend_next = st->pend_prev = st->wpend_next = st->wpend_prev = NULL;
	st->pending = false;
	if (w->p->wait_ev)
		up_cb_wait_end(w->p->o.up, st->cluster, st->cb_src, (unsigned int)w->idx);
	up_cb_release_src(w->p->o.up, st->cluster, st->cb_src, UP_CB_PENDING);
}

static void st_pend_add(struct px_dconn *d)
{
	struct px_stream *st = &d->st;
	struct px_worker *w = d->w;
	struct px_pool *pl = st->pool;

	st->pending = true;
	st->pend_next = NULL;
	st->pend_prev = pl->pend_tail;
	if (pl->pend_tail)
		pl->pend_tail->st.pend_next = d;
	else
		pl->pend_head = d;
	pl->pend_tail = d;
	st->wpend_next = NULL;
	st->wpend_prev = w->pend_tail;
	if (w->pend_tail)
		w->pend_tail->st.wpend_next = d;
	else
		w->pend = d;
	w->pend_tail = d;
	w->n_pend++;
	/*
	 * A slot another worker frees wakes this one (px_pending_wake); a
	 * slot freed while registering is retried now. Without the waker
	 * (another proxy owns the registry's), poll.
	 */
	if (!w->p->wait_ev)
		px_timer_arm(w, &w->tick, w->now + PX_PENDING_TICK_MS);
	else if (up_cb_wait_begin(w->p->o.up, st->cluster, st->cb_src, (unsigned int)w->idx))
		px_pending_kick(w);
}

/* Drop the upstream connection of the current try (never reused). */
static void st_detach(struct px_dconn *d)
{
	struct px_stream *st = &d->st;

	if (st->u) {
		px_uconn_close(st->u);
		st->u = NULL;
	}
	st->rphase = PX_R_NONE;
	st->u_scan = 0;
	st->resp_parsed = 0;
}

/* End of one try's claim on its host and its retry slot. */
static void st_try_release(struct px_dconn *d)
{
	struct px_stream *st = &d->st;
	struct up_registry *up = d->w->p->o.up;

	if (st->host_started) {
		up_host_request_end(up, st->host);
		st->host_started = false;
	}
	if (st->retry_cb) {
		up_cb_release_src(up, st->cluster, st->cb_src, UP_CB_RETRIES);
		st->retry_cb = false;
	}
	if (st->tt == PX_TT_PERTRY) {
		px_timer_cancel(&st->t_try);
		st->tt = PX_TT_NONE;
	}
}

static void st_cleanup(struct px_dconn *d)
{
	struct px_stream *st = &d->st;
	struct px_worker *w = d->w;

	px_timer_remove(w, &st->t_route);
	px_timer_remove(w, &st->t_try);
	st_pend_del(d);
	st_try_release(d);
	if (st->req_cb) {
		up_cb_release_src(w->p->o.up, st->cluster, st->cb_src, UP_CB_REQUESTS);
		st->req_cb = false;
	}
	if (st->cfg) {
		px_wcfg_put(w, st->cfg);
		st->cfg = NULL;
	}
}

static size_t px_fmt_str(char *o, size_t room, const char *p, size_t n)
{
	if (!p || !n)
		n = 1, p = "-";
	if (n > 512)
		n = 512;
	if (n > room)
		n = room;
	memcpy(o, p, n);
	return n;
}

static void st_log(struct px_dconn *d)
{
	struct px_stream *st = &d->st;
	struct px_worker *w = d->w;
	const struct http1_msg *m = st->req;
	const struct http1_header *ua = NULL, *xff = NULL;
	char line[4096], flags[64], ts[40], up[32] = "-", svc_time[24] = "-";
	size_t n = 0, room = sizeof(line) - 2;
	int k;

	if (!w->log)
		return;
	if (!st->bare) {
		ua = http1_header_get(m, "user-agent");
		xff = http1_header_get(m, "x-forwarded-for");
	}
	px_time_format(st->start_wall_ms, ts, sizeof(ts));
	px_flags_format(st->flags, flags, sizeof(flags));
	if (st->host) {
		char a[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &st->host->addr, a, sizeof(a));
		snprintf(up, sizeof(up), "%s:%u", a, st->host->port);
	}
	if (st->resp_head_ms)
		snprintf(svc_time, sizeof(svc_time), "%llu",
			 (unsigned long long)(st->resp_head_ms - st->try_start_ms));
	k = snprintf(line, room, "[%s] \"", ts);
	n = (size_t)k;
	n += px_fmt_str(line + n, room - n, st->bare ? NULL : m->method.p, st->bare ? 0 : m->method.n);
	line[n++] = ' ';
	n += px_fmt_str(line + n, room - n, st->bare ? NULL : m->target.p, st->bare ? 0 : m->target.n);
	k = snprintf(line + n, room - n, " %s\" %d %s %llu %llu %llu %s \"",
		     st->bare ? "-" : m->minor_version ? "HTTP/1.1" : "HTTP/1.0", st->status, flags,
		     (unsigned long long)st->bytes_rx, (unsigned long long)st->bytes_tx,
		     (unsigned long long)(w->now - st->start_ms), svc_time);
	n += (size_t)k < room - n ? (size_t)k : room - n;
	n += px_fmt_str(line + n, room - n, xff ? xff->value.p : NULL, xff ? xff->value.n : 0);
	n += px_fmt_str(line + n, room - n, "\" \"", 3);
	n += px_fmt_str(line + n, room - n, ua ? ua->value.p : NULL, ua ? ua->value.n : 0);
	n += px_fmt_str(line + n, room - n, "\" \"", 3);
	n += px_fmt_str(line + n, room - n, st->rid, st->rid_len);
	n += px_fmt_str(line + n, room - n, "\" \"", 3);
	n += px_fmt_str(line + n, room - n, st->bare ? NULL : m->host.p, st->bare ? 0 : m->host.n);
	n += px_fmt_str(line + n, room - n, "\" \"", 3);
	n += px_fmt_str(line + n, room - n, up, strlen(up));
	line[n++] = '"';
	line[n++] = '\n';
	px_log_append(w, line, n);
}

static void st_count(struct px_dconn *d)
{
	struct px_stream *st = &d->st;
	struct px_worker *w = d->w;
	int cls = st->status / 100, i;

	if (cls >= 1 && cls <= 5)
		px_stat_inc(w, PX_S_RQ_1XX + cls - 1);
	else
		px_stat_inc(w, PX_S_RQ_NO_RESPONSE);
	if (st->cstat) {
		uint64_t *c = cls == 2 ? &st->cstat->rq_2xx : cls == 3 ? &st->cstat->rq_3xx :
			      cls == 4 ? &st->cstat->rq_4xx : cls == 5 ? &st->cstat->rq_5xx : NULL;

		if (c)
			px_cs_add(c, 1);
	}
	for (i = 0; i < PX_F_MAX; i++)
		if (st->flags & (1u << i))
			px_stat_inc(w, PX_S_F_FIRST + i);
}

static void d_io_rearm(struct px_dconn *d);

/*
 * Istio's request series. A local reply (no route, fault abort, overflow,
 * timeout) counts under the service the request was addressed to, as
 * Istio's stats filter labels destination_service: the route's cluster,
 * else the service of the VIP the client dialled, else (gateways) the Host
 * header without its port; never "unknown" when any of them is known.
 */
static void st_record(struct px_dconn *d)
{
	struct px_stream *st = &d->st;
	const struct l7_cluster *c = st->cluster;
	char host[256] = "";

	if (!c && st->svc)
		c = st->svc->default_cluster;
	if (!c && !st->bare && st->req->host.n) {
		const char *p = st->req->host.p, *colon = memchr(p, ':', st->req->host.n);
		size_t n = colon && p[0] != '[' ? (size_t)(colon - p) : st->req->host.n;

		snprintf(host, sizeof(host), "%.*s", (int)n, p);
	}
	px_rstat_record(d->w, st->src_ip, st->host ? st->host->addr : 0, c, host, st->status,
			st->grpc, st->flags, d->w->now - st->start_ms, st->head_len + st->req_wire,
			st->resp_wire, st->req_msgs.n, st->resp_msgs.n);
}

/*
 * The exchange is over (or aborted): account, log, hand the upstream
 * connection back (or close it), free the request's claims.
 */
static void st_end(struct px_dconn *d, bool aborted)
{
	struct px_stream *st = &d->st;
	struct px_uconn *u = st->u;

	d->served = true;
	if (st->shadows)
		px_mirror_detach(d, false);	/* the request ended before it was whole */
	st_count(d);
	st_record(d);
	st_log(d);
	if (u) {
		const struct l7_cluster *c = st->cluster;
		bool reuse = !aborted && !st->local && st->rphase == PX_R_DONE &&
			     st->resp_keepalive && st->req_sent && u->in.off == u->in.len &&
			     !u->err && !u->werr && !u->rd_eof && d->state != PX_D_TUNNEL &&
			     (!c->pool.max_requests_per_conn ||
			      u->requests < c->pool.max_requests_per_conn);

		st->u = NULL;
		px_uconn_release(u, reuse);
	}
	st_cleanup(d);
	st_reset(d);
	d->state = PX_D_HEAD;
	d->head_start = 0;
	d->parsed = 0;
	d->last_io = d->w->now;
}

/* Close the client connection; a request in flight is logged as aborted. */
void px_dconn_close(struct px_dconn *d, int flag)
{
	struct px_worker *w = d->w;

	if (d->closed)
		return;
	if (d->st.active) {
		if (flag >= 0)
			d->st.flags |= (uint16_t)(1u << flag);
		st_end(d, true);
	}
	d->closed = true;
	px_timer_remove(w, &d->t);
	if (d->h2b) {
		px_h2_pipe_close(d->h2b);
		d->h2b = NULL;
	} else if (d->fd >= 0) {
		if (!d->gateway && w->p->o.sock_hook)
			w->p->o.sock_hook(w->p->o.sock_hook_ctx, d->fd, false);
		close(d->fd);
	}
	d->fd = -1;
	if (d->prev)
		d->prev->next = d->next;
	else
		w->conns = d->next;
	if (d->next)
		d->next->prev = d->prev;
	d->dead_next = w->dead_d;
	w->dead_d = d;
	if (!d->h2) {
		px_cx_slot_put(w->p);
		px_stat_inc(w, PX_S_CX_CLOSED);
	}
}

/*
 * Close after the response: when unread request bytes may still arrive,
 * shut the write side and drain for a moment first, so the kernel does not
 * answer them with a reset that destroys the response in flight.
 */
static void d_finish(struct px_dconn *d)
{
	/* an HTTP/2 stream: the bridge keeps what was written, nothing to linger for */
	if (d->rd_eof || d->err || d->h2) {
		px_dconn_close(d, -1);
		return;
	}
	shutdown(d->fd, SHUT_WR);
	d->state = PX_D_LINGER;
	d->in.off = d->in.len = 0;
	px_timer_arm(d->w, &d->t, d->w->now + 1000);
}

/* ---- local replies ---- */

static void st_local(struct px_dconn *d, int status, const char *body, size_t blen,
		     const char *extra, int flag, bool route_headers)
{
	struct px_stream *st = &d->st;
	bool head_only;
	struct px_sb b;

	if (flag >= 0)
		st->flags |= (uint16_t)(1u << flag);
	if (st->committed) {
		/* the client already has a response head: all we can do is close */
		px_dconn_close(d, -1);
		return;
	}
	/* the request is over without its upstream: a shadow of a part of it ends too (Envoy) */
	if (st->shadows)
		px_mirror_detach(d, false);
	st_detach(d);
	st_pend_del(d);
	st_try_release(d);
	px_timer_cancel(&st->t_route);
	px_timer_cancel(&st->t_try);
	st->tt = PX_TT_NONE;
	st->local = true;
	st->committed = true;
	st->status = status;
	if (st->grpc != PROXY_GRPC_NONE && status != 200)
		st->grpc = px_h2_grpc_from_http(status);	/* what the client sees */
	if (!st->req_done)
		d->close_after = true;
	head_only = !st->bare && px_ieq(st->req->method.p, st->req->method.n, "HEAD");
	b = out_sb(d);
	sb_puts(&b, "HTTP/1.1 ");
	sb_u64(&b, (uint64_t)status);
	sb_puts(&b, " ");
	sb_puts(&b, px_reason(status));
	sb_puts(&b, "\r\ncontent-length: ");
	sb_u64(&b, blen);
	sb_puts(&b, "\r\n");
	if (blen)
		sb_puts(&b, "content-type: text/plain\r\n");
	if (extra)
		sb_puts(&b, extra);
	if (route_headers && st->route)
		px_ops_append(&b, NULL, &st->route->pol->headers.response);
	if (st->origin_ok)
		sb_hdr(&b, "access-control-allow-origin", 27,
		       http1_header_get(st->req, "origin")->value.p,
		       http1_header_get(st->req, "origin")->value.n);
	sb_hdrz(&b, "date", px_date(d->w));
	sb_puts(&b, "server: envoy\r\n");
	if (d->h2b)
		sb_puts(&b, PX_H2_LOCAL_HDR ": 1\r\n");
	if (d->close_after)
		sb_puts(&b, "connection: close\r\n");
	else if (!st->bare && st->req->minor_version == 0)
		sb_puts(&b, "connection: keep-alive\r\n");
	sb_puts(&b, "\r\n");
	if (!head_only) {
		sb_put(&b, body, blen);
		st->bytes_tx = blen;
	}
	out_sb_done(d, &b);
}

static void st_local_str(struct px_dconn *d, int status, const char *body, const char *extra,
			 int flag)
{
	st_local(d, status, body, body ? strlen(body) : 0, extra, flag, false);
}

#define PX_BODY_RESET "upstream connect error or disconnect/reset before headers. reset reason: "

static void st_overflow(struct px_dconn *d)
{
	struct px_stream *st = &d->st;

	if (st->cstat)
		px_cs_add(&st->cstat->overflow, 1);
	st_local_str(d, 503, PX_BODY_RESET "overflow", "x-envoy-overloaded: true\r\n", PX_F_UO);
}

/* A stream for a request that never parsed (errors, header timeout). */
static void st_begin_bare(struct px_dconn *d)
{
	struct px_stream *st = &d->st;

	st_reset(d);
	st->active = true;
	st->bare = true;
	st->req = &px_req_none;
	st->req_done = false;
	st->start_ms = d->w->now;
	if (d->w->log) {
		struct timeval tv;

		gettimeofday(&tv, NULL);
		st->start_wall_ms = (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
	}
	d->state = PX_D_STREAM;
	d->close_after = true;
}

/* ---- upstream head ---- */

static void px_put_authority(struct px_sb *b, const char *a, size_t n, bool shadow)
{
	const char *colon;

	if (!shadow) {
		sb_put(b, a, n);
		return;
	}
	/* Envoy: "-shadow" goes on the host, before any port */
	colon = memchr(a, ':', n);
	if (colon) {
		sb_put(b, a, (size_t)(colon - a));
		sb_puts(b, "-shadow");
		sb_put(b, colon, n - (size_t)(colon - a));
	} else {
		sb_put(b, a, n);
		sb_puts(b, "-shadow");
	}
}

/*
 * The head sent upstream: path and authority rewritten, hop-by-hop fields
 * dropped, route and destination header operations applied, request id and
 * x-forwarded-* added; x-envoy-attempt-count last so retries patch it.
 */
static void st_build_head(struct px_dconn *d, struct px_sb *b, bool mirror,
			  uint32_t *attempt_off)
{
	struct px_stream *st = &d->st;
	const struct http1_msg *m = st->req;
	const struct l7_route *r = st->route;
	const struct pol_hdr_ops *ro = r ? &r->pol->headers.request : NULL;
	const struct pol_hdr_ops *dop = st->dest && st->dest->headers ?
						&st->dest->headers->request : NULL;
	const struct http1_header *upg = NULL;
	const char *path = m->path.p, *auth = m->host.p, *ops_auth;
	size_t pn = m->path.n, an = m->host.n, i;
	bool rewritten = false, have_xfp = false;
	const struct http1_header *xff = NULL;
	char pbuf[8192];

	if (r && (r->pol->rewrite.uri || r->pol->rewrite.re)) {
		int n = l7_rewrite_path(r, st->matched, m->path.p, m->path.n, pbuf, sizeof(pbuf));

		if (n >= 0) {
			path = pbuf;
			pn = (size_t)n;
			rewritten = pn != m->path.n || memcmp(pbuf, m->path.p, pn) != 0;
		}
	}
	if (r && r->pol->rewrite.authority && *r->pol->rewrite.authority) {
		auth = r->pol->rewrite.authority;
		an = strlen(auth);
	}
	/* Istio: a host (:authority) header set or added is the host rewrite,
	 * a destination's over the route's */
	if ((ops_auth = px_ops_authority(dop)) || (ops_auth = px_ops_authority(ro))) {
		auth = ops_auth;
		an = strlen(auth);
	}
	if (!an && st->svc && st->svc->fqdn) {
		auth = st->svc->fqdn;	/* HTTP/1.0 without Host */
		an = strlen(auth);
	}
	sb_reserve(b, st->head_len + 512);
	sb_put(b, m->method.p, m->method.n);
	sb_put(b, " ", 1);
	sb_put(b, path, pn);
	if (m->query.n) {
		sb_put(b, "?", 1);
		sb_put(b, m->query.p, m->query.n);
	}
	sb_puts(b, " HTTP/1.1\r\nhost: ");
	px_put_authority(b, auth, an, mirror);
	sb_puts(b, "\r\n");
	for (i = 0; i < m->n_headers; i++) {
		const struct http1_header *h = &m->headers[i];

		switch (px_hdr_class(h->name.p, h->name.n)) {
		case H_HOP:
			if (h->name.n == 7)
				upg = h;
			continue;
		case H_HOST:
		case H_ATTEMPT:
			continue;
		case H_ORIG_PATH:
			if (rewritten)
				continue;
			break;
		case H_XFF:
			if (st->gateway) {
				xff = h;
				continue;
			}
			break;
		case H_XFP:
			have_xfp = true;
			break;
		case H_RQ_TIMEOUT:
			if (!st->gateway)
				continue;
			break;
		}
		if (px_ops_drop(ro, h->name.p, h->name.n) || px_ops_drop(dop, h->name.p, h->name.n))
			continue;
		sb_hdr(b, h->name.p, h->name.n, h->value.p, h->value.n);
	}
	px_ops_append(b, dop, ro);
	if (st->rid_gen)
		sb_hdr(b, "x-request-id", 12, st->rid, st->rid_len);
	if (!have_xfp)
		sb_puts(b, "x-forwarded-proto: http\r\n");
	if (rewritten) {
		sb_puts(b, "x-envoy-original-path: ");
		sb_put(b, m->path.p, m->path.n);
		if (m->query.n) {
			sb_put(b, "?", 1);
			sb_put(b, m->query.p, m->query.n);
		}
		sb_puts(b, "\r\n");
	}
	if (st->gateway) {
		/* the gateway is the edge: append the client address (Envoy use_remote_address) */
		char a[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &d->peer_addr, a, sizeof(a));
		sb_puts(b, "x-forwarded-for: ");
		if (xff && xff->value.n) {
			sb_put(b, xff->value.p, xff->value.n);
			sb_puts(b, ",");
		}
		sb_puts(b, a);
		sb_puts(b, "\r\n");
	}
	if (mirror)
		sb_puts(b, "connection: close\r\n");
	else if (m->upgrade && upg)
		sb_puts(b, "connection: upgrade\r\n");
	if (m->upgrade && upg && !mirror)
		sb_hdr(b, "upgrade", 7, upg->value.p, upg->value.n);
	if (attempt_off)
		*attempt_off = b->len;
	sb_puts(b, "x-envoy-attempt-count: 1\r\n\r\n");
}

static void st_patch_attempt(struct px_stream *st)
{
	struct px_sb b = { st->uhead, st->uhead_attempt_off, st->uhead_cap, false };

	sb_puts(&b, "x-envoy-attempt-count: ");
	sb_u64(&b, st->tries);
	sb_puts(&b, "\r\n\r\n");
	st->uhead = b.p;
	st->uhead_cap = b.cap;
	st->uhead_len = b.len;
}

/*
 * Start the route's shadows (mirrorPercentage each): head with the
 * "-shadow" authority, then the body bytes scanned so far; the rest
 * follows as it is scanned (st_scan_req -> px_mirror_feed).
 */
static void st_mirrors(struct px_dconn *d)
{
	struct px_stream *st = &d->st;
	struct px_worker *w = d->w;
	const struct l7_route *r = st->route;
	struct l7_request_view v;
	size_t i;

	if (!r || !r->n_mirrors)
		return;
	st_view(d, &v);
	for (i = 0; i < r->n_mirrors; i++) {
		const struct l7_mirror *mi = &r->mirrors[i];
		struct px_sb b = { 0 };
		uint32_t idx;

		if (!mi->cluster || !px_pct_hit(w, mi->pct))
			continue;
		if (up_pick_host(w->p->o.up, mi->cluster, &v, st->src_ip, NULL, 0, w->now, &idx) ||
		    idx >= mi->cluster->n_hosts) {
			px_stat_inc(w, PX_S_MIRROR_SKIPPED);
			continue;
		}
		st_build_head(d, &b, true, NULL);
		sb_put(&b, d->in.p + d->in.off, st->in_scan);
		if (b.oom) {
			free(b.p);
			px_stat_inc(w, PX_S_MIRROR_SKIPPED);
			continue;
		}
		px_mirror_start(d, mi->cluster, &mi->cluster->hosts[idx], b.p, (uint32_t)b.len,
				(uint32_t)b.cap, st->req_done);
	}
}

/* ---- tries ---- */

static void st_try(struct px_dconn *d);
static void st_try_fail(struct px_dconn *d, enum px_fail f);

static void st_attach(struct px_dconn *d, struct px_uconn *u)
{
	struct px_stream *st = &d->st;

	u->d = d;
	u->requests++;
	if (u->requests > 1)
		px_stat_inc(d->w, PX_S_UP_RQ_REUSED);
	st->u = u;
	st->uhead_sent = 0;
	st->replay_sent = 0;
	st->req_sent = false;
	st->rphase = PX_R_HEAD;
	st->u_scan = 0;
	st->resp_parsed = 0;
	px_runq_add(d);
}

/* An idle pooled connection, a new one, or a place in the pending queue. */
static void st_get_conn(struct px_dconn *d)
{
	struct px_stream *st = &d->st;
	struct px_worker *w = d->w;
	struct up_registry *up = w->p->o.up;
	struct px_pool *pl = st->pool;
	struct px_uconn *u;
	int err = 0;

	u = px_pool_take_idle(pl);
	if (u) {
		st_pend_del(d);
		st_attach(d, u);
		return;
	}
	/*
	 * maxConnections: a new connection under the limit; at the limit,
	 * first close an idle connection this worker keeps for another host
	 * of the cluster (its slot serves a waiting request better). Envoy's
	 * rule then: a pool with no connection at all always gets one, even
	 * over the limit, so a request queued to it is never stranded by
	 * connections other pools (other hosts, other workers) hold; the
	 * overshoot is bounded by one per pool.
	 */
	if (up_cb_acquire_src(up, st->cluster, st->cb_src, UP_CB_CONNECTIONS) ||
	    (px_pool_reclaim_idle(w, pl) &&
	     up_cb_acquire_src(up, st->cluster, st->cb_src, UP_CB_CONNECTIONS)) ||
	    (!pl->n_conns && (up_cb_force_src(up, st->cluster, st->cb_src, UP_CB_CONNECTIONS),
			      true))) {
		st_pend_del(d);
		u = px_uconn_connect(w, pl, st->host->addr, st->host->port,
				     st->cluster->pool.connect_timeout_ms, &err);
		if (!u) {
			up_cb_release_src(up, st->cluster, st->cb_src, UP_CB_CONNECTIONS);
			px_stat_inc(w, PX_S_UP_CX_CONNECT_FAIL);
			st_try_fail(d, PX_FAIL_CONNECT);
			return;
		}
		st_attach(d, u);
		return;
	}
	if (st->pending)
		return;
	if (!up_cb_acquire_src(up, st->cluster, st->cb_src, UP_CB_PENDING)) {
		st_overflow(d);
		return;
	}
	st_pend_add(d);
}

void px_stream_pending_retry(struct px_dconn *d)
{
	if (d->closed || !d->st.pending)
		return;
	st_get_conn(d);
	if (!d->closed && !d->st.pending)
		px_runq_add(d);
}

static void st_try(struct px_dconn *d)
{
	struct px_stream *st = &d->st;
	struct px_worker *w = d->w;
	struct up_registry *up = w->p->o.up;
	struct l7_request_view v;
	uint32_t idx = 0;

	st->tries++;
	if (st->tries > 1) {
		px_stat_inc(w, PX_S_RETRIES);
		if (st->cstat)
			px_cs_add(&st->cstat->retries, 1);
	}
	st_patch_attempt(st);
	st_cookie_gen(d);
	st_view(d, &v);
	if (up_pick_host(up, st->cluster, &v, st->src_ip, st->avoid, st->n_avoid, w->now, &idx) ||
	    idx >= st->cluster->n_hosts) {
		st_local_str(d, 503, "no healthy upstream", NULL, PX_F_UH);
		return;
	}
	st->host = &st->cluster->hosts[idx];
	if (st->n_avoid < PX_MAX_TRIES)
		st->avoid[st->n_avoid++] = idx;
	up_host_request_start(up, st->host);
	st->host_started = true;
	st->try_start_ms = w->now;
	st->resp_head_ms = 0;
	if (st->retry->per_try_timeout_ms) {
		st->tt = PX_TT_PERTRY;
		px_timer_arm(w, &st->t_try, w->now + st->retry->per_try_timeout_ms);
	}
	st->pool = px_pool_get(w, st->cfg, st->cluster, st->host, st->cb_src);
	if (!st->pool) {
		st_local_str(d, 503, "out of memory", NULL, -1);
		return;
	}
	st_get_conn(d);
}

static bool st_route_expired(struct px_dconn *d)
{
	const struct px_stream *st = &d->st;

	return st->route && st->route->timeout_ms && st->t_route.at && st->t_route.at <= d->w->now;
}

/*
 * Retry? Envoy's order: the condition, attempts left, the body still
 * replayable, the retry circuit breaker. Takes the RETRIES slot.
 */
static bool st_can_retry(struct px_dconn *d, bool retriable)
{
	struct px_stream *st = &d->st;
	struct px_worker *w = d->w;

	if (st->retry_cb) {
		/* the slot of the try that just ended */
		up_cb_release_src(w->p->o.up, st->cluster, st->cb_src, UP_CB_RETRIES);
		st->retry_cb = false;
	}
	if (!retriable || st->committed || !st->replay_ok || st->tries > st->retry->attempts ||
	    st->tries >= PX_MAX_TRIES || st_route_expired(d) || w->p->stop)
		return false;
	if (!up_cb_acquire_src(w->p->o.up, st->cluster, st->cb_src, UP_CB_RETRIES)) {
		px_stat_inc(w, PX_S_RETRY_OVERFLOW);
		return false;
	}
	st->retry_cb = true;
	return true;
}

static void st_schedule_retry(struct px_dconn *d)
{
	struct px_stream *st = &d->st;
	struct px_worker *w = d->w;
	bool held = st->retry_cb;

	/* keep the RETRIES slot across the back-off; st_try_release drops the host only */
	st->retry_cb = false;
	st_try_release(d);
	st->retry_cb = held;
	st->tt = PX_TT_BACKOFF;
	px_timer_arm(w, &st->t_try, w->now + px_backoff_ms(st->retry->backoff_base_ms,
							  st->tries, px_rand(w)) + 1);
}

static enum up_result px_fail_result(enum px_fail f)
{
	switch (f) {
	case PX_FAIL_CONNECT:
		return UP_RESULT_CONNECT_FAIL;
	case PX_FAIL_TIMEOUT:
		return UP_RESULT_TIMEOUT;
	default:
		return UP_RESULT_RESET;
	}
}

static void st_try_fail(struct px_dconn *d, enum px_fail f)
{
	struct px_stream *st = &d->st;
	struct px_worker *w = d->w;
	struct px_uconn *u = st->u;
	char body[128];
	bool retriable;

	/* a pooled connection the server closed under us: resend once, not a try */
	if (f == PX_FAIL_RESET && u && u->requests > 1 && u->in.len == u->in.off &&
	    !st->redispatched && st->replay_ok) {
		st->redispatched = true;
		px_stat_inc(w, PX_S_UP_REDISPATCH);
		st_detach(d);
		st_get_conn(d);
		return;
	}
	if (st->host)
		up_outlier_record(w->p->o.up, st->cluster, st->host, px_fail_result(f), 0, w->now);
	if (f == PX_FAIL_CONNECT && st->cstat)
		px_cs_add(&st->cstat->cx_fail, 1);
	if (f == PX_FAIL_TIMEOUT && st->cstat)
		px_cs_add(&st->cstat->timeouts, 1);
	st_detach(d);
	st_pend_del(d);
	if (st->retry_cb) {
		up_cb_release_src(w->p->o.up, st->cluster, st->cb_src, UP_CB_RETRIES);
		st->retry_cb = false;
	}
	retriable = px_retry_fail(st->retry, f);
	if (st_can_retry(d, retriable)) {
		st_schedule_retry(d);
		return;
	}
	if (retriable && st->tries > 1)
		st->flags |= 1u << PX_F_URX;
	if (f == PX_FAIL_TIMEOUT) {
		st_local_str(d, 504, "upstream request timeout", NULL, PX_F_UT);
		return;
	}
	/* Envoy's router: "retried and the latest" once a retry was made */
	snprintf(body, sizeof(body), "upstream connect error or disconnect/reset before headers. %sreset reason: %s",
		 st->tries > 1 ? "retried and the latest " : "",
		 f == PX_FAIL_CONNECT ? "connection failure" :
		 f == PX_FAIL_PROTOCOL ? "protocol error" : "connection termination");
	if (f == PX_FAIL_CONNECT)
		st_local_str(d, 503, body, NULL, PX_F_UF);
	else if (f == PX_FAIL_PROTOCOL)
		st_local_str(d, 502, body, NULL, PX_F_UPE);
	else
		st_local_str(d, 503, body, NULL, PX_F_UC);
}

void px_stream_connect_failed(struct px_dconn *d)
{
	if (d->closed || !d->st.active)
		return;
	st_try_fail(d, PX_FAIL_CONNECT);
	if (!d->closed)
		px_dconn_pump(d);
}

/*
 * The route timeout; a gRPC client's grpc-timeout shortens it (Istio sets
 * Envoy's grpc_timeout_header_max to the route timeout, 0 = unbounded).
 * In the mesh (Envoy's internal requests) x-envoy-upstream-rq-timeout-ms
 * replaces the route timeout, 0 = none; the header is consumed.
 */
static void st_arm_route_timeout(struct px_dconn *d)
{
	struct px_stream *st = &d->st;
	uint64_t t = st->route ? st->route->timeout_ms : 0, g;
	const struct http1_header *gt = NULL, *et = NULL;

	/* both headers in one walk of the request's fields (the first of each) */
	for (size_t i = 0; !st->bare && i < st->req->n_headers; i++) {
		const struct http1_header *h = &st->req->headers[i];

		if (!gt && px_ieq(h->name.p, h->name.n, "grpc-timeout"))
			gt = h;
		else if (!et && !st->gateway &&
			 px_ieq(h->name.p, h->name.n, "x-envoy-upstream-rq-timeout-ms"))
			et = h;
	}
	if (et && et->value.n && et->value.n <= 10) {
		uint64_t v = 0;
		size_t i;

		for (i = 0; i < et->value.n && et->value.p[i] >= '0' && et->value.p[i] <= '9'; i++)
			v = v * 10 + (uint64_t)(et->value.p[i] - '0');
		if (i == et->value.n)
			t = v;
	}
	if (gt && !px_grpc_timeout_ms(gt->value.p, gt->value.n, &g) && (!t || g < t))
		t = g ? g : 1;
	if (t && !st->t_route.at)
		px_timer_arm(d->w, &st->t_route, d->w->now + t);
}

static bool st_is_grpc(const struct px_dconn *d)
{
	const struct http1_header *ct = d->st.bare ? NULL : http1_header_get(d->st.req, "content-type");

	return ct && ct->value.n >= 16 && strncasecmp(ct->value.p, "application/grpc", 16) == 0;
}

/* A trailers-only gRPC reply (HTTP 200, grpc-status), as Envoy sends for gRPC requests. */
static void st_local_grpc(struct px_dconn *d, int grpc_status, const char *msg, int flag)
{
	char extra[160];

	d->st.grpc = grpc_status;
	snprintf(extra, sizeof(extra), "content-type: application/grpc\r\ngrpc-status: %d\r\n"
		 "grpc-message: %s\r\n", grpc_status, msg);
	st_local(d, 200, "", 0, extra, flag, true);
}

/* After routing and any fault delay: abort fault, destination, breakers, first try. */
static void st_forward(struct px_dconn *d)
{
	struct px_stream *st = &d->st;
	struct px_worker *w = d->w;
	const struct l7_route *r = st->route;
	struct px_sb b;

	/* Envoy resolves the route's (weighted) cluster before the fault filter runs */
	if (r) {
		st->dest = l7_route_pick_dest(r, (uint32_t)px_rand(w));
		st->cluster = st->dest ? st->dest->cluster : NULL;
	} else {
		st->cluster = st->svc ? st->svc->default_cluster : NULL;
	}
	if (r && (l7_fault_abort(r->pol) || l7_fault_abort_grpc(r->pol)) &&
	    px_pct_hit(w, r->pol->fault.abort_percent)) {
		int grpc = l7_fault_abort_grpc(r->pol);

		if (grpc && (st_is_grpc(d) || !l7_fault_abort(r->pol)))
			st_local_grpc(d, grpc - 1, "fault filter abort", PX_F_FI);
		else
			st_local_str(d, l7_fault_abort(r->pol), "fault filter abort", NULL, PX_F_FI);
		return;
	}
	if (st->cluster && st->cluster->missing) {
		/* Envoy's router: cluster not found, 503 without a body (NC) */
		st_local_str(d, 503, NULL, NULL, PX_F_NC);
		return;
	}
	if (!st->cluster) {
		st_local_str(d, 503, "no healthy upstream", NULL, PX_F_UH);
		return;
	}
	st->cstat = px_cstat_get(w, st->cluster);
	if (st->cstat)
		px_cs_add(&st->cstat->rq, 1);
	if (!up_cb_acquire_src(w->p->o.up, st->cluster, st->cb_src, UP_CB_REQUESTS)) {
		st_overflow(d);
		return;
	}
	st->req_cb = true;
	st_mirrors(d);
	if (!st->uhead) {
		/* sized to the client's head and what is added to it (it grows if need be), not 1 KiB */
		st->uhead = malloc(st->head_len + PX_UHEAD_ADD);
		st->uhead_cap = st->uhead ? st->head_len + PX_UHEAD_ADD : 0;
	}
	b = (struct px_sb){ st->uhead, 0, st->uhead_cap, false };
	st_build_head(d, &b, false, &st->uhead_attempt_off);
	st->uhead = b.p;
	st->uhead_cap = b.cap;
	st->uhead_len = b.len;
	if (b.oom) {
		st_local_str(d, 503, "out of memory", NULL, -1);
		return;
	}
	if (st->req->upgrade)
		px_stat_inc(w, PX_S_RQ_UPGRADE);
	if (st->req_done)
		st_arm_route_timeout(d);
	st_try(d);
}

static void st_cors_preflight(struct px_dconn *d, const struct http1_header *origin)
{
	const struct pol_cors *c = &d->st.route->pol->cors;
	struct px_sb b = { 0 };

	px_stat_inc(d->w, PX_S_RQ_PREFLIGHT);
	sb_hdr(&b, "access-control-allow-origin", 27, origin->value.p, origin->value.n);
	sb_hdr_list(&b, "access-control-allow-methods", c->allow_methods, c->n_allow_methods);
	sb_hdr_list(&b, "access-control-allow-headers", c->allow_headers, c->n_allow_headers);
	if (c->max_age_s >= 0) {
		sb_puts(&b, "access-control-max-age: ");
		sb_u64(&b, (uint64_t)c->max_age_s);
		sb_puts(&b, "\r\n");
	}
	if (c->allow_credentials == 1)
		sb_puts(&b, "access-control-allow-credentials: true\r\n");
	sb_put(&b, "", 1);
	d->st.origin_ok = false;	/* already in the extra headers */
	st_local(d, 200, NULL, 0, b.oom ? NULL : b.p, -1, false);
	free(b.p);
}

static void px_relocate(struct http1_str *s, const char *from, size_t n, char *to)
{
	if (s->p >= from && s->p < from + n)
		s->p = to + (s->p - from);
}

/*
 * Copy the parsed head (w->req_parse) out of the read buffer so the buffer
 * can move on, and the parsed request cut to the headers it has: an open
 * stream keeps a few hundred bytes of it, not HTTP1_MAX_HEADERS slots.
 */
static int st_copy_head(struct px_dconn *d, const char *from, size_t hlen)
{
	struct px_stream *st = &d->st;
	const struct http1_msg *parsed = &d->w->req_parse;
	size_t i, msz = http1_msg_size(parsed->n_headers);
	struct http1_msg *m;

	if (msz > st->req_cap) {
		m = realloc(st->req_mem, msz);
		if (!m)
			return -ENOMEM;
		st->req_mem = m;
		st->req_cap = (uint32_t)msz;
	}
	m = st->req_mem;
	memcpy(m, parsed, msz);
	st->req = m;
	if (hlen > st->head_cap) {
		char *np = realloc(st->head, hlen);

		if (!np)
			return -ENOMEM;
		st->head = np;
		st->head_cap = (uint32_t)hlen;
	}
	memcpy(st->head, from, hlen);
	px_relocate(&m->method, from, hlen, st->head);
	px_relocate(&m->target, from, hlen, st->head);
	px_relocate(&m->path, from, hlen, st->head);
	px_relocate(&m->query, from, hlen, st->head);
	px_relocate(&m->reason, from, hlen, st->head);
	px_relocate(&m->host, from, hlen, st->head);
	for (i = 0; i < m->n_headers; i++) {
		px_relocate(&m->headers[i].name, from, hlen, st->head);
		px_relocate(&m->headers[i].value, from, hlen, st->head);
	}
	st->head_len = (uint32_t)hlen;
	return 0;
}

static const struct l7_vhost *st_gateway_vhost(struct px_dconn *d, const struct l7_config *c)
{
	struct px_stream *st = &d->st;
	const char *h = st->req->host.p;
	size_t hn = st->req->host.n, i, j;
	const char *colon = hn ? memchr(h, ':', hn) : NULL;

	if (colon)
		hn = (size_t)(colon - h);
	for (i = 0; c && i < c->n_gateways; i++) {
		const struct l7_gateway *g = &c->gateways[i];

		for (j = 0; j < g->n_servers; j++) {
			const struct l7_vhost *vh;

			if (g->servers[j].port != d->listen_port)
				continue;
			vh = l7_gateway_find_vhost(g, h ? h : "", hn);
			if (vh) {
				st->gw = g;
				return vh;
			}
			break;
		}
	}
	return NULL;
}

/* A request head was parsed and copied to the stream (st_copy_head): start it. */
static void st_begin(struct px_dconn *d)
{
	struct px_stream *st = &d->st;
	struct px_worker *w = d->w;
	const struct http1_msg *m;
	const struct http1_header *h, *origin;
	const struct l7_config *c;
	struct l7_request_view v;

	m = st->req;
	d->parsed = 0;
	d->head_start = 0;
	st->active = true;
	st->start_ms = w->now;
	if (w->log) {
		struct timeval tv;

		gettimeofday(&tv, NULL);
		st->start_wall_ms = (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
	}
	d->state = PX_D_STREAM;
	px_stat_inc(w, PX_S_RQ_TOTAL);
	st->cfg = w->cfg;
	st->cfg->users++;
	c = st->cfg->c;
	st->replay_ok = true;
	st->replay_len = 0;
	st->req_mode = (uint8_t)m->body;
	st->req_left = m->content_length;
	if (m->body == HTTP1_BODY_CHUNKED)
		http1_chunked_init(&st->req_ck);
	st->req_done = m->body == HTTP1_BODY_NONE ||
		       (m->body == HTTP1_BODY_LENGTH && !m->content_length);
	if (!m->keep_alive)
		d->close_after = true;
	st->retry = &px_retry_default;
	h = http1_header_get(m, "x-request-id");
	if (h && h->value.n) {
		st->rid = h->value.p;
		st->rid_len = h->value.n;
	} else {
		px_uuid4(px_rand(w), px_rand(w), st->rid_buf);
		st->rid = st->rid_buf;
		st->rid_len = 36;
		st->rid_gen = true;
	}
	st->gateway = d->gateway;
	st->grpc = st_is_grpc(d) ? PROXY_GRPC_UNKNOWN : PROXY_GRPC_NONE;
	if (!d->gateway) {
		st->src_ip = d->orig.client_ip;
		st->cb_src = d->orig.client_ip;
		st->port = d->orig.port;
		st->svc = c ? l7_config_find_svc(c, d->orig.vip, d->orig.port) : NULL;
		if (!st->svc) {
			st_local_str(d, 404, NULL, NULL, PX_F_NR);
			return;
		}
		st->vhost = st->svc->vhost;
	} else {
		st->src_ip = d->peer_addr;
		st->port = d->listen_port;
		st->vhost = st_gateway_vhost(d, c);
		if (!st->vhost) {
			st_local_str(d, 404, NULL, NULL, PX_F_NR);
			return;
		}
	}
	st->source = c ? l7_config_find_pod(c, st->src_ip) : NULL;
	if (st->vhost) {
		size_t idx;

		st_view(d, &v);
		st->route = l7_route_match(st->vhost, &v, &idx, &st->matched);
		if (!st->route) {
			st_local_str(d, 404, NULL, NULL, PX_F_NR);
			return;
		}
		if (st->route->has_retry)
			st->retry = &st->route->retry;
	}
	if (st->route) {
		const struct l7_route *r = st->route;

		origin = r->pol->cors.set ? http1_header_get(m, "origin") : NULL;
		if (origin && origin->value.n) {
			size_t i;

			for (i = 0; i < r->pol->cors.n_allow_origins; i++)
				if (px_strmatch(&r->pol->cors.allow_origins[i], origin->value.p,
						origin->value.n)) {
					st->origin_ok = true;
					break;
				}
		}
		if (r->pol->redirect.set) {
			char loc[8192 + 64], extra[8192 + 96];
			int n = px_redirect_location(&r->pol->redirect, m->path.p, m->path.n, m->query.p,
						     m->query.n, m->host.p, m->host.n, st->port,
						     loc, sizeof(loc));

			if (n < 0) {
				st_local_str(d, 414, NULL, NULL, -1);
				return;
			}
			snprintf(extra, sizeof(extra), "location: %s\r\n", loc);
			st_local(d, r->pol->redirect.code ? r->pol->redirect.code : 301, NULL, 0,
				 extra, -1, true);
			return;
		}
		if (r->pol->direct.set) {
			st_local(d, r->pol->direct.status, r->pol->direct.body,
				 r->pol->direct.body ? r->pol->direct.body_len : 0, NULL, -1, true);
			return;
		}
		if (st->origin_ok && px_ieq(m->method.p, m->method.n, "OPTIONS") &&
		    http1_header_get(m, "access-control-request-method")) {
			st_cors_preflight(d, origin);
			return;
		}
		if (l7_fault_delay(r->pol) && px_pct_hit(w, r->pol->fault.delay_percent)) {
			st->flags |= 1u << PX_F_DI;
			st->tt = PX_TT_DELAY;
			px_timer_arm(w, &st->t_try, w->now + l7_fault_delay(r->pol));
			return;
		}
	}
	st_forward(d);
}

/* ---- byte movement ---- */

static bool px_buf_room(struct px_worker *w, struct px_buf *b, bool may_grow)
{
	if (!b->p) {
		b->p = px_buf_get(w);
		if (!b->p)
			return false;
		b->cap = PX_BUF_SIZE;
	}
	if (b->off == b->len)
		b->off = b->len = 0;
	if (b->len < b->cap)
		return true;
	if (b->off) {
		memmove(b->p, b->p + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
		return true;
	}
	if (may_grow && b->cap < PX_BUF_MAX) {
		char *np = realloc(b->p, PX_BUF_MAX);

		if (!np)
			return false;
		b->p = np;
		b->cap = PX_BUF_MAX;
		return true;
	}
	return false;
}

static bool d_read(struct px_dconn *d)
{
	struct px_buf *b = &d->in;
	size_t room;
	ssize_t n;

	if (!d->rd_ready || d->rd_eof || d->err)
		return false;
	if (d->state == PX_D_LINGER) {
		char sink[4096];

		n = px_io_read(d->fd, d->h2b, sink, sizeof(sink));
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			px_dconn_close(d, -1);
			return true;
		}
		if (n < 0 && errno == EAGAIN)
			d->rd_ready = false;
		return n > 0;
	}
	/* heads may grow the buffer; bodies wait for room (backpressure) */
	if (!px_buf_room(d->w, b, d->state == PX_D_HEAD))
		return false;
	room = b->cap - b->len;
	n = px_io_read(d->fd, d->h2b, b->p + b->len, room);
	if (n > 0) {
		b->len += (uint32_t)n;
		d->last_io = d->w->now;
		if ((size_t)n < room && !d->rdhup)
			d->rd_ready = false;
		return true;
	}
	if (n == 0) {
		d->rd_eof = true;
		return true;
	}
	if (errno == EAGAIN) {
		d->rd_ready = false;
		return false;
	}
	if (errno == EINTR)
		return true;
	d->err = true;
	return true;
}

static bool u_read(struct px_dconn *d, struct px_uconn *u)
{
	struct px_buf *b = &u->in;
	size_t room;
	ssize_t n;

	if (!u->rd_ready || u->rd_eof || u->err || !u->connected)
		return false;
	if (!px_buf_room(d->w, b, d->st.rphase == PX_R_HEAD))
		return false;
	room = b->cap - b->len;
	n = px_io_read(u->fd, u->h2b, b->p + b->len, room);
	if (n > 0) {
		b->len += (uint32_t)n;
		d->last_io = d->w->now;
		if ((size_t)n < room && !u->rdhup)
			u->rd_ready = false;
		return true;
	}
	if (n == 0) {
		u->rd_eof = true;
		return true;
	}
	if (errno == EAGAIN) {
		u->rd_ready = false;
		return false;
	}
	if (errno == EINTR)
		return true;
	u->err = true;
	return true;
}

static void st_replay_add(struct px_stream *st, const char *p, size_t n)
{
	if (!st->replay_ok)
		return;
	if ((size_t)st->replay_len + n > PX_REPLAY_MAX) {
		st->replay_ok = false;	/* too big to retry: stream it without a copy */
		return;
	}
	if (st->replay_len + n > st->replay_cap) {
		size_t cap = st->replay_cap ? st->replay_cap : 4096;
		char *np;

		while (cap < st->replay_len + n)
			cap *= 2;
		np = realloc(st->replay, cap);
		if (!np) {
			st->replay_ok = false;
			return;
		}
		st->replay = np;
		st->replay_cap = (uint32_t)cap;
	}
	memcpy(st->replay + st->replay_len, p, n);
	st->replay_len += (uint32_t)n;
	st->replay_sent += (uint32_t)n;
}

/* Request direction: head, replayed body, then live body (or tunnel bytes). */
static bool u_write(struct px_dconn *d)
{
	struct px_stream *st = &d->st;
	struct px_uconn *u = st->u;
	struct iovec iov[3];
	size_t live, total = 0, k;
	bool tunnel = d->state == PX_D_TUNNEL;
	ssize_t n;
	int c = 0;

	if (!u || !u->connected || !u->wr_ready || u->werr || u->err)
		return false;
	if (!tunnel && st->uhead_sent < st->uhead_len) {
		iov[c].iov_base = st->uhead + st->uhead_sent;
		iov[c++].iov_len = st->uhead_len - st->uhead_sent;
	}
	if (!tunnel && st->replay_ok && st->replay_sent < st->replay_len) {
		iov[c].iov_base = st->replay + st->replay_sent;
		iov[c++].iov_len = st->replay_len - st->replay_sent;
	}
	live = tunnel ? d->in.len - d->in.off : st->in_scan;
	if (live) {
		iov[c].iov_base = d->in.p + d->in.off;
		iov[c++].iov_len = live;
	}
	if (!c)
		return false;
	for (k = 0; k < (size_t)c; k++)
		total += iov[k].iov_len;
	n = px_io_writev(u->fd, u->h2b, iov, c);
	if (n < 0) {
		if (errno == EAGAIN) {
			u->wr_ready = false;
			return false;
		}
		if (errno == EINTR)
			return true;
		u->werr = true;
		return true;
	}
	if ((size_t)n < total)
		u->wr_ready = false;
	k = (size_t)n;
	if (!tunnel && st->uhead_sent < st->uhead_len) {
		size_t x = st->uhead_len - st->uhead_sent;

		x = x < k ? x : k;
		st->uhead_sent += (uint32_t)x;
		k -= x;
	}
	if (!tunnel && st->replay_ok && st->replay_sent < st->replay_len) {
		size_t x = st->replay_len - st->replay_sent;

		x = x < k ? x : k;
		st->replay_sent += (uint32_t)x;
		k -= x;
	}
	if (k) {
		st->req_wire += k;
		if (!tunnel) {
			st_replay_add(st, d->in.p + d->in.off, k);
			st->in_scan -= (uint32_t)k;
			st->bytes_rx += k;
		}
		d->in.off += (uint32_t)k;
		if (d->in.off == d->in.len)
			d->in.off = d->in.len = 0;
	}
	if (!tunnel && st->req_done && !st->in_scan && st->uhead_sent == st->uhead_len &&
	    (!st->replay_ok || st->replay_sent == st->replay_len))
		st->req_sent = true;
	d->last_io = d->w->now;
	return true;
}

/* Response direction: queued heads, then validated body bytes (or tunnel bytes). */
static bool d_write(struct px_dconn *d)
{
	struct px_stream *st = &d->st;
	struct px_uconn *u = st->u;
	struct iovec iov[2];
	size_t body = 0, head, total, k;
	ssize_t n;
	int c = 0;

	if (!d->wr_ready || d->err || d->state == PX_D_LINGER)
		return false;
	head = d->out.len - d->out.off;
	if (head) {
		iov[c].iov_base = d->out.p + d->out.off;
		iov[c++].iov_len = head;
	}
	if (u && d->state == PX_D_TUNNEL)
		body = u->in.len - u->in.off;
	else if (u && (st->rphase == PX_R_BODY || st->rphase == PX_R_DONE))
		body = st->u_scan;
	if (body) {
		iov[c].iov_base = u->in.p + u->in.off;
		iov[c++].iov_len = body;
	}
	if (!c)
		return false;
	total = head + body;
	n = px_io_writev(d->fd, d->h2b, iov, c);
	if (n < 0) {
		if (errno == EAGAIN) {
			d->wr_ready = false;
			return false;
		}
		if (errno == EINTR)
			return true;
		d->err = true;
		return true;
	}
	if ((size_t)n < total)
		d->wr_ready = false;
	k = (size_t)n;
	if (st->active)
		st->resp_wire += k;
	if (head) {
		size_t x = head < k ? head : k;

		d->out.off += (uint32_t)x;
		if (d->out.off == d->out.len)
			d->out.off = d->out.len = 0;
		k -= x;
	}
	if (k) {
		u->in.off += (uint32_t)k;
		if (d->state != PX_D_TUNNEL) {
			st->u_scan -= (uint32_t)k;
			st->bytes_tx += k;
		}
		if (u->in.off == u->in.len)
			u->in.off = u->in.len = 0;
	}
	d->last_io = d->w->now;
	return true;
}

static void st_req_complete(struct px_dconn *d)
{
	d->st.req_done = true;
	if (d->st.shadows)
		px_mirror_detach(d, true);	/* whole: they finish by themselves */
	if (d->st.req_cb)
		st_arm_route_timeout(d);
}

/* Validate request body bytes as they arrive; they are forwarded as scanned. */
static bool st_scan_req(struct px_dconn *d)
{
	struct px_stream *st = &d->st;
	size_t avail;
	char *p;

	if (st->req_done || st->bare)
		return false;
	avail = d->in.len - d->in.off - st->in_scan;
	if (!avail)
		return false;
	p = d->in.p + d->in.off + st->in_scan;
	if (st->req_mode == HTTP1_BODY_LENGTH) {
		size_t n = avail < st->req_left ? avail : (size_t)st->req_left;

		if (st->grpc != PROXY_GRPC_NONE)
			px_grpc_msgs_scan(&st->req_msgs, p, n);
		if (st->shadows)
			px_mirror_feed(d, p, n);
		st->req_left -= n;
		st->in_scan += (uint32_t)n;
		if (!st->req_left)
			st_req_complete(d);
		return n > 0;
	}
	while (avail) {
		struct http1_str spans[16];
		size_t ns = 16;
		int r = http1_chunked_decode(&st->req_ck, p, avail, spans, &ns);

		for (size_t i = 0; i < ns && r >= 0 && st->grpc != PROXY_GRPC_NONE; i++)
			px_grpc_msgs_scan(&st->req_msgs, spans[i].p, spans[i].n);
		if (r < 0) {
			px_stat_inc(d->w, PX_S_RQ_BAD);
			d->close_after = true;
			st_local_str(d, 400, "Bad Request", NULL, PX_F_DPE);
			return true;
		}
		if (st->shadows && r)
			px_mirror_feed(d, p, (size_t)r);
		st->in_scan += (uint32_t)r;
		p += r;
		avail -= (size_t)r;
		if (st->req_ck.done) {
			st_req_complete(d);
			break;
		}
		if (!r)
			break;
	}
	return true;
}

/* In place: keep only the payload spans of a chunked response (HTTP/1.0 client). */
static size_t px_dechunk(struct px_buf *b, char *p, size_t consumed, const struct http1_str *sp,
			 size_t ns)
{
	char *w = p;
	size_t i, tail;

	for (i = 0; i < ns; i++) {
		memmove(w, sp[i].p, sp[i].n);
		w += sp[i].n;
	}
	tail = (size_t)(b->p + b->len - (p + consumed));
	memmove(w, p + consumed, tail);
	b->len -= (uint32_t)(p + consumed - w);
	return (size_t)(w - p);
}

static bool st_scan_resp(struct px_dconn *d)
{
	struct px_stream *st = &d->st;
	struct px_uconn *u = st->u;
	size_t avail = u->in.len - u->in.off - st->u_scan;
	char *p = u->in.p + u->in.off + st->u_scan;
	bool prog = false;

	if (avail) {
		switch (st->resp_mode) {
		case HTTP1_BODY_LENGTH: {
			size_t n = avail < st->resp_left ? avail : (size_t)st->resp_left;

			if (st->grpc != PROXY_GRPC_NONE)
				px_grpc_msgs_scan(&st->resp_msgs, p, n);
			st->resp_left -= n;
			st->u_scan += (uint32_t)n;
			if (!st->resp_left)
				st->rphase = PX_R_DONE;
			prog = n > 0;
			break;
		}
		case HTTP1_BODY_CLOSE:
			st->u_scan += (uint32_t)avail;
			prog = true;
			break;
		case HTTP1_BODY_CHUNKED:
			while (avail) {
				struct http1_str spans[32];
				size_t ns = 32, fwd;
				int r = http1_chunked_decode(&st->resp_ck, p, avail, spans, &ns);

				for (size_t i = 0; i < ns && r >= 0 && st->grpc != PROXY_GRPC_NONE; i++)
					px_grpc_msgs_scan(&st->resp_msgs, spans[i].p, spans[i].n);
				if (r < 0) {
					st->flags |= 1u << PX_F_UPE;
					px_dconn_close(d, -1);
					return true;
				}
				fwd = (size_t)r;
				if (st->dechunk)
					fwd = px_dechunk(&u->in, p, (size_t)r, spans, ns);
				st->u_scan += (uint32_t)fwd;
				p += fwd;
				avail -= (size_t)r;
				prog = true;
				if (st->resp_ck.done) {
					/* the last chunk's trailers: gRPC's status, for telemetry */
					if (st->grpc != PROXY_GRPC_NONE && !st->dechunk) {
						int g = px_grpc_status_in_trailers(p - fwd, (size_t)r);

						if (g >= 0)
							st->grpc = g;
					}
					st->rphase = PX_R_DONE;
					break;
				}
				if (!r)
					break;
			}
			break;
		default:
			st->rphase = PX_R_DONE;
			break;
		}
	}
	if (st->rphase == PX_R_BODY && (u->rd_eof || u->err) &&
	    u->in.len - u->in.off == st->u_scan) {
		if (st->resp_mode == HTTP1_BODY_CLOSE) {
			st->rphase = PX_R_DONE;
			st->resp_keepalive = false;
		} else {
			/* truncated: the client can only learn it from the close */
			st->flags |= 1u << PX_F_UC;
			if (!st->u_scan && d->out.len == d->out.off) {
				px_dconn_close(d, -1);
				return true;
			}
		}
		return true;
	}
	return prog;
}

/* The client's response head: upstream's fields minus hop-by-hop, plus ours. */
static void st_commit_head(struct px_dconn *d, const struct http1_msg *rm)
{
	struct px_stream *st = &d->st;
	const struct pol_hdr_ops *ro = st->route ? &st->route->pol->headers.response : NULL;
	const struct pol_hdr_ops *dop = st->dest && st->dest->headers ?
						&st->dest->headers->response : NULL;
	const struct http1_header *upg = NULL;
	bool tunnel = rm->status == 101;
	struct px_sb b;
	size_t i;

	st->dechunk = rm->body == HTTP1_BODY_CHUNKED && st->req->minor_version == 0;
	if (rm->body == HTTP1_BODY_CLOSE || st->dechunk || !st->req_done)
		d->close_after = true;
	b = out_sb(d);
	sb_reserve(&b, 512);
	sb_puts(&b, "HTTP/1.1 ");
	sb_u64(&b, (uint64_t)rm->status);
	sb_puts(&b, " ");
	sb_put(&b, rm->reason.p, rm->reason.n);
	sb_puts(&b, "\r\n");
	for (i = 0; i < rm->n_headers; i++) {
		const struct http1_header *h = &rm->headers[i];
		int cls = px_hdr_class(h->name.p, h->name.n);

		if (cls == H_HOP) {
			if (h->name.n == 7)
				upg = h;
			continue;
		}
		if (cls == H_TE && st->dechunk)
			continue;
		if (px_ops_drop(ro, h->name.p, h->name.n) || px_ops_drop(dop, h->name.p, h->name.n))
			continue;
		/* the proxy's own mark for the HTTP/2 bridge: a backend cannot send it */
		if (d->h2b && px_ieq(h->name.p, h->name.n, PX_H2_LOCAL_HDR))
			continue;
		sb_hdr(&b, h->name.p, h->name.n, h->value.p, h->value.n);
	}
	px_ops_append(&b, dop, ro);
	if (st->origin_ok) {
		const struct pol_cors *c = &st->route->pol->cors;
		const struct http1_header *o = http1_header_get(st->req, "origin");

		sb_hdr(&b, "access-control-allow-origin", 27, o->value.p, o->value.n);
		if (c->allow_credentials == 1)
			sb_puts(&b, "access-control-allow-credentials: true\r\n");
		sb_hdr_list(&b, "access-control-expose-headers", c->expose_headers,
			    c->n_expose_headers);
	}
	sb_puts(&b, "x-envoy-upstream-service-time: ");
	sb_u64(&b, st->resp_head_ms - st->try_start_ms);
	sb_puts(&b, "\r\n");
	st_cookie_put(st, &b);
	if (tunnel) {
		sb_puts(&b, "connection: upgrade\r\n");
		if (upg)
			sb_hdr(&b, "upgrade", 7, upg->value.p, upg->value.n);
	} else if (d->close_after) {
		sb_puts(&b, "connection: close\r\n");
	} else if (st->req->minor_version == 0) {
		sb_puts(&b, "connection: keep-alive\r\n");
	}
	sb_puts(&b, "\r\n");
	out_sb_done(d, &b);
	st->committed = true;
}

static bool st_resp_head(struct px_dconn *d, const struct http1_msg *rm, size_t hlen)
{
	struct px_stream *st = &d->st;
	struct px_worker *w = d->w;
	struct px_uconn *u = st->u;
	int status = rm->status;
	const struct http1_header *gs = http1_header_get(rm, "grpc-status");
	int grpc = gs ? px_grpc_status_parse(gs->value.p, gs->value.n) : -1;

	st->resp_parsed = 0;
	if (status >= 100 && status < 200 && status != 101) {
		/* interim (100 Continue, 103): relay to HTTP/1.1 clients as is */
		if (st->req->minor_version >= 1) {
			struct px_sb b = out_sb(d);

			sb_put(&b, u->in.p + u->in.off, hlen);
			out_sb_done(d, &b);
		}
		u->in.off += (uint32_t)hlen;
		return true;
	}
	if (status == 101 && !st->req->upgrade) {
		st_try_fail(d, PX_FAIL_PROTOCOL);
		return true;
	}
	st->resp_head_ms = w->now;
	if (grpc >= 0 && st->grpc != PROXY_GRPC_NONE)
		st->grpc = grpc;	/* trailers-only */
	/* Envoy feeds outlier detection the HTTP mapping of a trailers-only grpc-status */
	up_outlier_record(w->p->o.up, st->cluster, st->host, UP_RESULT_HTTP,
			  grpc > 0 ? px_h2_http_from_grpc(grpc) : status, w->now);
	if (px_retry_status(st->retry, status) || (grpc > 0 && px_retry_grpc(st->retry, grpc))) {
		bool retry = st_can_retry(d, true);

		if (retry) {
			/* drop this answer and its connection; try another host */
			st->retried_status = true;
			st_detach(d);
			st_schedule_retry(d);
			return true;
		}
		if (st->tries > 1)
			st->flags |= 1u << PX_F_URX;
	}
	st_try_release(d);
	st->status = status;
	st_commit_head(d, rm);
	u->in.off += (uint32_t)hlen;
	st->resp_mode = (uint8_t)rm->body;
	st->resp_left = rm->content_length;
	st->resp_keepalive = rm->keep_alive && rm->body != HTTP1_BODY_CLOSE;
	if (rm->body == HTTP1_BODY_CHUNKED)
		http1_chunked_init(&st->resp_ck);
	if (status == 101) {
		px_timer_cancel(&st->t_route);
		d->state = PX_D_TUNNEL;
		st->rphase = PX_R_NONE;
		return true;
	}
	if (rm->body == HTTP1_BODY_NONE ||
	    (rm->body == HTTP1_BODY_LENGTH && !rm->content_length))
		st->rphase = PX_R_DONE;
	else
		st->rphase = PX_R_BODY;
	return true;
}

static bool st_resp(struct px_dconn *d)
{
	struct px_stream *st = &d->st;
	struct px_uconn *u = st->u;

	if (st->rphase == PX_R_HEAD) {
		size_t avail = u->in.len - u->in.off;

		if (avail && avail != st->resp_parsed) {
			struct http1_msg rm;
			int r = http1_parse_response(u->in.p + u->in.off, avail, st->req->method.p,
						     st->req->method.n, &rm);

			if (r > 0) {
				st_resp_head(d, &rm, (size_t)r);
				/* scan the body bytes that came with the head: one writev for both */
				if (!d->closed && st->u && st->rphase == PX_R_BODY)
					st_scan_resp(d);
				return true;
			}
			if (r != HTTP1_INCOMPLETE) {
				st_try_fail(d, PX_FAIL_PROTOCOL);
				return true;
			}
			st->resp_parsed = (uint32_t)avail;
		}
		if (u->err || u->rd_eof) {
			st_try_fail(d, PX_FAIL_RESET);
			return true;
		}
		return false;
	}
	if (st->rphase == PX_R_BODY)
		return st_scan_resp(d);
	return false;
}

/* ---- HTTP/2 ---- */

#define PX_H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define PX_H2_PREFACE_LEN 24

/* ---- per-state steps ---- */

/* Answer a request head that did not parse (r: HTTP1_E*). */
static void d_head_bad(struct px_dconn *d, int r)
{
	int status = http1_error_status(r);

	px_stat_inc(d->w, PX_S_RQ_BAD);
	st_begin_bare(d);
	st_local_str(d, status, px_reason(status), NULL, PX_F_DPE);
	d->in.off = d->in.len = 0;
}

static bool d_head(struct px_dconn *d)
{
	struct px_buf *b = &d->in;
	size_t avail = b->len - b->off;
	int r;

	if (d->err) {
		px_dconn_close(d, -1);
		return true;
	}
	if (d->h2b && !avail) {
		/* an HTTP/2 stream's head comes parsed, without HTTP/1.1 text */
		const char *head;
		size_t hlen;

		r = px_h2_pipe_head(d->h2b, &d->w->req_parse, &head, &hlen);
		if (r < 0) {
			d_head_bad(d, r);
			return true;
		}
		if (r > 0) {
			if (st_copy_head(d, head, hlen)) {
				px_dconn_close(d, -1);
				return true;
			}
			/* the body bytes already there, as the text path has them with the head */
			d->rd_ready = true;
			d_read(d);
			if (!d->closed)
				st_begin(d);
			return true;
		}
	}
	if (!avail) {
		if (d->rd_eof) {
			px_dconn_close(d, -1);
			return true;
		}
		return false;
	}
	if (!d->head_start)
		d->head_start = d->w->now;
	if (!d->gateway && memcmp(b->p + b->off, PX_H2_PREFACE,
				  avail < PX_H2_PREFACE_LEN ? avail : PX_H2_PREFACE_LEN) == 0) {
		if (avail >= PX_H2_PREFACE_LEN)
			return px_h2_takeover(d);	/* Envoy's auto codec: h2c prior knowledge */
		if (d->rd_eof)
			px_dconn_close(d, -1);
		return d->rd_eof;	/* a prefix of the preface: wait for the rest */
	}
	if (avail == d->parsed) {
		if (d->rd_eof) {
			px_dconn_close(d, -1);
			return true;
		}
		return false;
	}
	r = http1_parse_request(b->p + b->off, avail, &d->w->req_parse);
	if (r == HTTP1_INCOMPLETE) {
		d->parsed = (uint32_t)avail;
		if (d->rd_eof || (b->off == 0 && b->len == b->cap && b->cap >= PX_BUF_MAX)) {
			px_dconn_close(d, -1);
			return true;
		}
		return false;
	}
	if (r < 0) {
		d_head_bad(d, r);
		return true;
	}
	if (st_copy_head(d, b->p + b->off, (size_t)r)) {
		px_dconn_close(d, -1);
		return true;
	}
	b->off += (uint32_t)r;
	st_begin(d);
	return true;
}

static bool st_step(struct px_dconn *d)
{
	struct px_stream *st = &d->st;
	bool prog = false;

	if (d->err) {
		px_dconn_close(d, PX_F_DC);
		return true;
	}
	if (!st->req_done)
		prog |= st_scan_req(d);
	if (d->closed || !st->active)
		return true;
	if (d->rd_eof && !st->req_done && !st->local) {
		px_dconn_close(d, PX_F_DC);
		return true;
	}
	/*
	 * The client went away while its request waits without an upstream
	 * connection (pending queue, retry back-off, fault delay): reset the
	 * stream as Envoy does on a downstream close (DC), so it gives its
	 * pending and in-flight breaker units back now, not at the stream
	 * idle timeout (a client that gave up must not hold the queue).
	 */
	if (d->rd_eof && !st->local && !st->committed && !st->u) {
		px_dconn_close(d, PX_F_DC);
		return true;
	}
	if (d->rd_eof)
		d->close_after = true;
	if (st->local || !st->u)
		return prog;
	prog |= u_write(d);
	prog |= u_read(d, st->u);
	prog |= st_resp(d);
	return prog;
}

static bool tun_step(struct px_dconn *d)
{
	struct px_stream *st = &d->st;
	struct px_uconn *u = st->u;
	bool prog = false;

	if (!u || d->err || u->err || u->werr) {
		st_end(d, true);
		px_dconn_close(d, -1);
		return true;
	}
	prog |= u_write(d);
	prog |= u_read(d, u);
	/* either side closed and everything it sent is delivered: end the tunnel */
	if ((d->rd_eof && d->in.len == d->in.off) || (u->rd_eof && u->in.len == u->in.off)) {
		if (u->rd_eof && u->in.len != u->in.off)
			return prog;
		st_end(d, true);
		d->close_after = true;
		d_finish(d);
		return true;
	}
	return prog;
}

/* Response fully relayed (or local reply flushed): next request or close. */
static bool d_check_done(struct px_dconn *d)
{
	struct px_stream *st = &d->st;

	if (d->state != PX_D_STREAM || !st->active || d->out.len != d->out.off)
		return false;
	if (!st->local && !(st->rphase == PX_R_DONE && !st->u_scan))
		return false;
	st_end(d, false);
	if (d->close_after)
		d_finish(d);
	return true;
}

void px_dconn_pump(struct px_dconn *d)
{
	bool was_in = d->in_pump;
	int rounds = 0;

	d->in_pump = true;
	while (!d->closed) {
		bool prog = false;

		if (++rounds > PX_PUMP_ROUNDS) {
			d->in_pump = false;
			px_runq_add(d);
			return;
		}
		prog |= d_read(d);
		if (d->closed)
			return;
		switch (d->state) {
		case PX_D_HEAD:
			prog |= d_head(d);
			break;
		case PX_D_STREAM:
			prog |= st_step(d);
			break;
		case PX_D_TUNNEL:
			prog |= tun_step(d);
			break;
		case PX_D_LINGER:
			break;
		}
		if (d->closed)
			return;
		prog |= d_write(d);
		if (d->err && d->state != PX_D_LINGER) {
			px_dconn_close(d, PX_F_DC);
			return;
		}
		prog |= d_check_done(d);
		if (!prog)
			break;
	}
	d->in_pump = was_in;
	if (d->closed)
		return;
	if (!was_in) {
		/* nothing left to move: the buffers go back (an idle stream holds none) */
		px_buf_drop(d->w, &d->in);
		if (d->st.u && !d->st.u->closed)
			px_buf_drop(d->w, &d->st.u->in);
		if (d->out.p && d->out.off == d->out.len) {
			free(d->out.p);
			d->out = (struct px_buf){ 0 };
		}
	}
	d_io_rearm(d);
}

/*
 * Graceful drain of HTTP/1.1 client connections (Envoy's drain for HTTP/1):
 * a kept-alive connection idle between requests is closed now, every other
 * one closes after its current (or first) response, which carries
 * Connection: close. HTTP/2 streams' engine connections are left to
 * proxy_h2's drain. True when none is left.
 */
bool px_http_drain(struct px_worker *w)
{
	bool left = false;

	for (struct px_dconn *d = w->conns, *nx; d; d = nx) {
		nx = d->next;
		if (d->h2 || d->closed)
			continue;
		/* a new connection may have its first request on the way: it is waited for */
		if (d->state == PX_D_HEAD && d->served && !d->st.active &&
		    d->in.len == d->in.off && !d->in_pump) {
			px_dconn_close(d, -1);
			continue;
		}
		d->close_after = true;
		left = true;
	}
	return !left;
}

/* ---- connection events and timers ---- */

static struct px_dconn *d_new(struct px_worker *w, int fd, bool gateway, uint16_t listen_port,
			      uint32_t peer_addr, uint16_t peer_port,
			      const struct proxy_orig *orig)
{
	struct px_dconn *d = w->dfree;

	if (d) {
		/* a recycled stream connection: zeroed, its buffers kept */
		struct px_buf in = d->in, out = d->out;
		char *head = d->st.head, *uhead = d->st.uhead, *replay = d->st.replay;
		uint32_t head_cap = d->st.head_cap, uhead_cap = d->st.uhead_cap;
		uint32_t replay_cap = d->st.replay_cap, req_cap = d->st.req_cap;
		struct http1_msg *req_mem = d->st.req_mem;

		w->dfree = d->dead_next;
		w->n_dfree--;
		memset(d, 0, sizeof(*d));
		d->in = (struct px_buf){ .p = in.p, .cap = in.cap };
		d->out = (struct px_buf){ .p = out.p, .cap = out.cap };
		d->st.head = head;
		d->st.head_cap = head_cap;
		d->st.uhead = uhead;
		d->st.uhead_cap = uhead_cap;
		d->st.replay = replay;
		d->st.replay_cap = replay_cap;
		d->st.req_mem = req_mem;
		d->st.req_cap = req_cap;
	} else {
		d = calloc(1, sizeof(*d));
		if (!d)
			return NULL;
	}
	d->kind = PX_EV_DCONN;
	d->state = PX_D_HEAD;
	d->fd = fd;
	d->w = w;
	d->gateway = gateway;
	d->listen_port = listen_port;
	d->peer_addr = peer_addr;
	d->peer_port = peer_port;
	if (orig)
		d->orig = *orig;
	d->t.kind = PX_T_DCONN;
	d->t.idx = -1;
	d->st.t_route.kind = PX_T_ROUTE;
	d->st.t_route.idx = -1;
	d->st.t_try.kind = PX_T_TRY;
	d->st.t_try.idx = -1;
	d->st.grpc = PROXY_GRPC_NONE;
	d->st.req = &px_req_none;
	d->last_io = w->now;
	return d;
}

static void d_link(struct px_dconn *d)
{
	struct px_worker *w = d->w;

	d->next = w->conns;
	if (w->conns)
		w->conns->prev = d;
	w->conns = d;
	d_io_rearm(d);
}

void px_dconn_open(struct px_worker *w, int fd, bool gateway, uint16_t listen_port,
		   uint32_t peer_addr, uint16_t peer_port, const struct proxy_orig *orig)
{
	struct epoll_event ev;
	struct px_dconn *d;
	int one = 1;

	d = d_new(w, fd, gateway, listen_port, peer_addr, peer_port, orig);
	if (!d) {
		close(fd);
		px_cx_slot_put(w->p);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
	ev.data.ptr = d;
	if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev)) {
		close(fd);
		free(d);
		px_cx_slot_put(w->p);
		return;
	}
	if (!gateway && w->p->o.sock_hook)
		w->p->o.sock_hook(w->p->o.sock_hook_ctx, fd, true);
	px_stat_inc(w, PX_S_CX_TOTAL);
	d_link(d);
}

struct px_dconn *px_dconn_open_stream(struct px_worker *w, struct h2b *b, uint16_t listen_port,
				      uint32_t peer_addr, uint16_t peer_port,
				      const struct proxy_orig *orig)
{
	struct px_dconn *d = d_new(w, -1, false, listen_port, peer_addr, peer_port, orig);

	if (!d)
		return NULL;
	d->h2 = true;
	d->h2b = b;
	d->wr_ready = true;
	/* one exchange per stream: close once the response is out, not at the bridge's EOF */
	d->close_after = true;
	d_link(d);
	return d;
}

void px_dconn_event(struct px_dconn *d, uint32_t events)
{
	if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		d->rdhup = true;
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		d->rd_ready = true;
	if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
		d->wr_ready = true;
	px_dconn_pump(d);
}

static uint64_t d_deadline(struct px_dconn *d)
{
	const struct proxy_opts *o = &d->w->p->o;
	uint64_t stream_idle = o->stream_idle_timeout_ms ? o->stream_idle_timeout_ms :
							     PX_DEF_STREAM_IDLE_MS;

	switch (d->state) {
	case PX_D_HEAD:
		if (d->in.len != d->in.off) {
			if (!d->head_start)
				d->head_start = d->w->now;
			return d->head_start + (o->header_timeout_ms ? o->header_timeout_ms :
								       PX_DEF_HEADER_TIMEOUT_MS);
		}
		return d->last_io + (o->idle_timeout_ms ? o->idle_timeout_ms :
							  PX_DEF_IDLE_TIMEOUT_MS);
	case PX_D_LINGER:
		return d->t.at ? d->t.at : d->w->now;
	default:
		return d->last_io + stream_idle;
	}
}

static void d_io_rearm(struct px_dconn *d)
{
	if (d->state == PX_D_LINGER)
		return;
	px_timer_arm(d->w, &d->t, d_deadline(d));
}

void px_dconn_timer(struct px_dconn *d)
{
	struct px_worker *w = d->w;
	uint64_t at;

	if (d->closed)
		return;
	if (d->state == PX_D_LINGER) {
		px_dconn_close(d, -1);
		return;
	}
	at = d_deadline(d);
	if (at > w->now) {
		px_timer_arm(w, &d->t, at);
		return;
	}
	switch (d->state) {
	case PX_D_HEAD:
		if (d->in.len == d->in.off) {
			px_dconn_close(d, -1);	/* keep-alive idle */
			return;
		}
		/* slowloris: the head did not arrive in time */
		px_stat_inc(w, PX_S_RQ_HEADER_TIMEOUT);
		st_begin_bare(d);
		d->in.off = d->in.len = 0;
		st_local_str(d, 408, "request header timeout", NULL, -1);
		break;
	case PX_D_STREAM:
		if (d->st.committed) {
			px_dconn_close(d, PX_F_SI);
			return;
		}
		st_local_str(d, 504, "stream timeout", NULL, PX_F_SI);
		break;
	default:
		px_dconn_close(d, PX_F_SI);
		return;
	}
	px_dconn_pump(d);
}

void px_stream_timer(struct px_dconn *d, struct px_timer *t)
{
	struct px_stream *st = &d->st;
	struct px_worker *w = d->w;

	if (d->closed || !st->active)
		return;
	if (t == &st->t_route) {
		/* route timeout: covers every try and back-off */
		if (st->host_started)
			up_outlier_record(w->p->o.up, st->cluster, st->host, UP_RESULT_TIMEOUT, 0,
					  w->now);
		if (st->cstat)
			px_cs_add(&st->cstat->timeouts, 1);
		if (st->committed) {
			px_dconn_close(d, PX_F_UT);
			return;
		}
		st_local_str(d, 504, "upstream request timeout", NULL, PX_F_UT);
	} else {
		enum px_try_timer tt = st->tt;

		st->tt = PX_TT_NONE;
		switch (tt) {
		case PX_TT_PERTRY:
			st->tt = PX_TT_PERTRY;	/* st_try_fail releases it */
			st_try_fail(d, PX_FAIL_TIMEOUT);
			break;
		case PX_TT_BACKOFF:
			st_try(d);
			break;
		case PX_TT_DELAY:
			st_forward(d);
			break;
		default:
			return;
		}
	}
	if (!d->closed)
		px_dconn_pump(d);
}
