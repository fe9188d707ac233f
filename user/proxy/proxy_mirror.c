// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * proxy_mirror: shadows of requests (Istio mirror/mirrors and
 * mirrorPercentage; Envoy's request_mirror_policies with streamed shadows).
 *
 * A shadow is an upstream connection of its own in state PX_U_MIRROR, to
 * one host of the mirror cluster, HTTP/2 when that cluster's port speaks
 * it. The engine gives it the request head it built (authority with
 * "-shadow") and then every request byte as it scans it from the client
 * (px_mirror_feed): body, chunk framing and trailers, so a client- or
 * bidi-streaming gRPC call is mirrored message by message and a large
 * upload is never held whole. As in Envoy, the shadow is tied to the
 * request until the request is whole; if the request ends before that
 * (client reset, local reply) the shadow is reset too
 * (px_mirror_detach(d, false)); once whole, it lives on by itself for
 * PX_MIRROR_TIMEOUT_MS to be answered.
 *
 * Fire and forget, without flow-control coupling: the copy is written at
 * once when the shadow's socket (or HTTP/2 pipe) takes it, else kept in
 * the shadow's own buffer; the client's request is read, acknowledged and
 * forwarded at the pace of its own upstream only. A shadow that holds
 * more than PX_MIRROR_PENDING_MAX unsent body bytes (or would take its
 * worker's shadows past PX_MIRROR_WORKER_MAX) cannot keep up: it is
 * abandoned (closed; an HTTP/2 shadow stream gets RST_STREAM CANCEL),
 * never the request it copies. 64 KiB proved too little: a fresh
 * shadow connection still connecting, or in slow start, falls that far
 * behind a warm pooled one within one event-loop turn of a fast upload. The answer is read and dropped as it
 * arrives (px_mresp_scan follows its framing to know when it is over).
 *
 * Every shadow started counts in mirror_rq_sent and once more, when it is
 * closed, in exactly one of mirror_rq_completed / _failed / _abandoned /
 * _cancelled.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "proxy/proxy_int.h"

static uint32_t mr_pending(const struct px_uconn *u)
{
	return u->mout.len - u->mout.off;
}

static void mr_end(struct px_uconn *u, enum px_stat how)
{
	u->mend = (uint8_t)how;
	px_uconn_close(u);
}

/* Write what is pending: false when the shadow was closed (write error). */
static bool mr_flush(struct px_uconn *u)
{
	while (mr_pending(u) && u->connected && u->wr_ready) {
		struct iovec iov = { u->mout.p + u->mout.off, mr_pending(u) };
		ssize_t n = px_io_writev(u->fd, u->h2b, &iov, 1);

		if (n < 0) {
			if (errno == EAGAIN) {
				u->wr_ready = false;
				break;
			}
			if (errno == EINTR)
				continue;
			mr_end(u, PX_S_MIRROR_FAILED);
			return false;
		}
		if ((size_t)n < iov.iov_len)
			u->wr_ready = false;
		u->mout.off += (uint32_t)n;
		u->w->mirror_pending -= (uint64_t)n;
	}
	if (!mr_pending(u) && u->mout.p) {
		/* an idle streaming shadow holds no buffer */
		free(u->mout.p);
		u->mout = (struct px_buf){ 0 };
	}
	return true;
}

/* Append p[0..n) to what u has pending; false when that would pass the limit. */
static bool mr_queue(struct px_uconn *u, const char *p, size_t n)
{
	struct px_buf *b = &u->mout;
	size_t live = mr_pending(u), cap = b->cap;

	if (live + n > PX_MIRROR_PENDING_MAX + u->mhead_len ||
	    u->w->mirror_pending + n > PX_MIRROR_WORKER_MAX)
		return false;
	if (b->off && b->len + n > b->cap) {
		memmove(b->p, b->p + b->off, live);
		b->len = (uint32_t)live;
		b->off = 0;
	}
	if (b->len + n > cap) {
		char *np;

		if (!cap)
			cap = 4096;
		while (cap < b->len + n)
			cap *= 2;
		np = realloc(b->p, cap);
		if (!np)
			return false;
		b->p = np;
		b->cap = (uint32_t)cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += (uint32_t)n;
	u->w->mirror_pending += n;
	return true;
}

static void mr_unlink_owner(struct px_uconn *u)
{
	struct px_uconn **pp;

	if (!u->mowner)
		return;
	for (pp = &u->mowner->st.shadows; *pp; pp = &(*pp)->mnext) {
		if (*pp == u) {
			*pp = u->mnext;
			break;
		}
	}
	u->mowner = NULL;
	u->mnext = NULL;
}

void px_mirror_closed(struct px_uconn *u)
{
	struct px_worker *w = u->w;
	enum px_stat how = u->mend ? (enum px_stat)u->mend :
			   u->mresp.status ? PX_S_MIRROR_COMPLETED : PX_S_MIRROR_FAILED;

	mr_unlink_owner(u);
	w->mirror_pending -= mr_pending(u);
	if (u->prev)
		u->prev->next = u->next;
	else if (w->mirrors == u)
		w->mirrors = u->next;
	if (u->next)
		u->next->prev = u->prev;
	u->next = u->prev = NULL;
	w->n_mirrors--;
	px_stat_inc(w, how);
}

void px_mirror_start(struct px_dconn *d, const struct l7_cluster *c, const struct l7_host *h,
		     char *buf, uint32_t len, uint32_t cap, bool whole)
{
	struct px_worker *w = d->w;
	const struct http1_msg *m = d->st.req;
	struct px_uconn *u;
	int err;

	if (w->n_mirrors >= PX_MIRRORS_MAX) {
		px_stat_inc(w, PX_S_MIRROR_SKIPPED);
		free(buf);
		return;
	}
	/* as HTTP/2 when the mirror cluster's port speaks it, like its requests */
	u = px_uconn_open(w, NULL, c->h2 ? &c->pool : NULL, h->addr, h->port,
			  PX_MIRROR_TIMEOUT_MS, &err);
	if (!u) {
		px_stat_inc(w, PX_S_MIRROR_SKIPPED);
		free(buf);
		return;
	}
	if (u->fd >= 0) {
		int sb = PX_MIRROR_SNDBUF;

		setsockopt(u->fd, SOL_SOCKET, SO_SNDBUF, &sb, sizeof(sb));
	}
	u->mout = (struct px_buf){ .p = buf, .len = len, .cap = cap };
	u->mhead_len = len;
	w->mirror_pending += len;
	u->mhead = px_ieq(m->method.p, m->method.n, "HEAD");
	u->state = PX_U_MIRROR;
	u->next = w->mirrors;
	u->prev = NULL;
	if (w->mirrors)
		w->mirrors->prev = u;
	w->mirrors = u;
	w->n_mirrors++;
	px_stat_inc(w, PX_S_MIRROR_SENT);
	if (!whole) {
		u->mowner = d;
		u->mnext = d->st.shadows;
		d->st.shadows = u;
	}
	/* bounds the connect, and a whole request's answer; a fed one's lives with its request */
	if (whole || !u->connected)
		px_timer_arm(w, &u->t, w->now + PX_MIRROR_TIMEOUT_MS);
	if (u->connected)
		px_mirror_io(u);
}

/*
 * A shadow still connecting when its request's bytes come: has the connect
 * completed meanwhile? Its epoll event waits for the next loop turn, and
 * one turn of a fast upload is more than PX_MIRROR_PENDING_MAX. False when
 * the shadow was closed (connect failure).
 */
static bool mr_poll_connect(struct px_uconn *u)
{
	struct pollfd pfd = { .fd = u->fd, .events = POLLOUT };
	uint32_t ev = 0;

	if (u->connected || u->fd < 0 || poll(&pfd, 1, 0) <= 0)
		return true;
	if (pfd.revents & POLLOUT)
		ev |= EPOLLOUT;
	if (pfd.revents & POLLERR)
		ev |= EPOLLERR;
	if (pfd.revents & POLLHUP)
		ev |= EPOLLHUP;
	px_uconn_event(u, ev);
	return !u->closed;
}

void px_mirror_feed(struct px_dconn *d, const char *p, size_t n)
{
	struct px_uconn *u, *next;

	for (u = d->st.shadows; u; u = next) {
		size_t k = 0;

		next = u->mnext;
		if (!mr_poll_connect(u))
			continue;
		if (u->connected && mr_pending(u)) {
			/* behind: try again now, not at the next turn's write event */
			u->wr_ready = true;
			if (!mr_flush(u))
				continue;
		}
		if (!mr_pending(u) && u->connected && u->wr_ready) {
			/* nothing queued: straight from the client's buffer, no copy */
			struct iovec iov = { (void *)p, n };
			ssize_t r = px_io_writev(u->fd, u->h2b, &iov, 1);

			if (r < 0 && errno != EAGAIN && errno != EINTR) {
				mr_end(u, PX_S_MIRROR_FAILED);
				continue;
			}
			k = r > 0 ? (size_t)r : 0;
			if (k < n)
				u->wr_ready = false;
		}
		if (k < n && !mr_queue(u, p + k, n - k))
			mr_end(u, PX_S_MIRROR_ABANDONED);
	}
}

void px_mirror_detach(struct px_dconn *d, bool whole)
{
	struct px_worker *w = d->w;

	while (d->st.shadows) {
		struct px_uconn *u = d->st.shadows;

		d->st.shadows = u->mnext;
		u->mnext = NULL;
		u->mowner = NULL;
		if (!whole) {
			mr_end(u, PX_S_MIRROR_CANCELLED);
			continue;
		}
		px_timer_arm(w, &u->t, w->now + PX_MIRROR_TIMEOUT_MS);
	}
}

void px_mirror_io(struct px_uconn *u)
{
	struct px_worker *w = u->w;

	if (u->closed || !u->connected)
		return;
	if (u->mowner && u->t.at)
		px_timer_cancel(&u->t);	/* connected: it lives as long as its request */
	if (!mr_flush(u))
		return;
	while (u->rd_ready) {
		struct px_buf *b = &u->in;
		ssize_t n;
		int k;

		if (!b->p) {
			b->p = px_buf_get(w);
			if (!b->p) {
				mr_end(u, PX_S_MIRROR_FAILED);
				return;
			}
			b->cap = PX_BUF_SIZE;
		}
		if (b->len == b->cap) {
			/* a head that does not fit: not an answer we can follow */
			mr_end(u, PX_S_MIRROR_FAILED);
			return;
		}
		n = px_io_read(u->fd, u->h2b, b->p + b->len, b->cap - b->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			u->rd_ready = false;
			break;
		}
		if (n <= 0) {
			/* EOF or reset: answered if its status came (a close-delimited body ends here) */
			px_uconn_close(u);
			return;
		}
		b->len += (uint32_t)n;
		k = px_mresp_scan(&u->mresp, b->p + b->off, b->len - b->off, u->mhead);
		if (k < 0) {
			mr_end(u, PX_S_MIRROR_FAILED);
			return;
		}
		b->off += (uint32_t)k;
		if (b->off == b->len)
			b->off = b->len = 0;
		else if (b->off) {
			memmove(b->p, b->p + b->off, b->len - b->off);
			b->len -= b->off;
			b->off = 0;
		}
		if (u->mresp.phase == PX_MR_DONE) {
			px_uconn_close(u);	/* answered: the exchange is over */
			return;
		}
	}
	if (!u->in.len)
		px_buf_drop(w, &u->in);
}
