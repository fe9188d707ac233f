// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * proxy_h2: HTTP/2 sessions (libnghttp2) bridged to the HTTP/1.1 engine;
 * see proxy_h2.h for the shape.
 *
 * A bridge (struct h2b) stands in for a socket between an HTTP/2 stream
 * and an engine connection (rx: what the engine wrote, tx: what it reads).
 * It turns one direction into HTTP/2 and the other into HTTP/1.1:
 *   downstream bridge (!up): h2 request -> its head parsed (no text,
 *                            px_h2_pipe_head), its body h1 chunked bytes,
 *                            to the engine dconn; h1 response from it ->
 *                            h2 response.
 *   upstream bridge (up):    h1 requests from the engine uconn (keep-alive:
 *                            one after another) -> h2 streams on a backend
 *                            connection; h2 responses -> h1 bytes back.
 * Messages produced for the engine are chunked (trailers carry gRPC's
 * grpc-status), except bodiless ones.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy/proxy_h2.h"
#include "proxy/proxy_int.h"

#define H2_READ_CHUNK		(32 * 1024)
#define H2_TRAILER_MAX		(16 * 1024)
#define H2_UP_CONNECT_MS	10000
#define H2_FREE_MAX		256	/* stream bridges kept for reuse per worker */
#define H2_MEM_MAX		4096	/* nghttp2 blocks cached in 64 B .. 4 KiB classes */
#define H2_MEM_CLASSES		13	/* 64, 96, 128, 192, ... H2_MEM_MAX (h2_mem_class) */
#define H2_MEM_KEEP		(256 * 1024)	/* bytes of free blocks kept per class */
#define H2_SBUF_MIN		1008	/* a byte queue's first block: the 1 KiB class */

struct h2_sbuf {
	char *p;
	size_t off, len, cap;
};

struct h2_conn;

/* Request pseudo-headers (and content-length) kept from the h2 head. */
enum { PS_METHOD, PS_PATH, PS_AUTHORITY, PS_CL, PS_N };

enum h1_state {
	H1_HEAD = 0,
	H1_LEN,		/* content-length body */
	H1_CK_SIZE,	/* chunk size line */
	H1_CK_DATA,
	H1_CK_CRLF,	/* CRLF after chunk data */
	H1_CK_TRAILER,	/* trailer lines up to the empty line */
	H1_CLOSE,	/* until EOF */
	H1_DONE,
	H1_DISCARD,	/* body of a response replaced by a local gRPC status */
};

struct h2b {
	bool up;
	bool dead;
	bool rd_eof, rd_ready;
	bool deferred;		/* data provider waits for body bytes */
	bool body_eof;		/* fd -> h2 message fully parsed */
	bool chunked_out;	/* h2 -> fd message is chunked */
	bool head_sent;		/* h2 -> fd head written */
	bool in_trailers;	/* collecting a trailer block */
	bool resp_done;		/* the h2 -> fd (up) / fd -> h2 (down) response is complete */
	bool grpc;		/* gRPC request (content-type application/grpc*) */
	bool end_on_head;	/* HEADERS carried END_STREAM */
	bool head_req;		/* HEAD request */
	struct px_worker *w;
	struct h2_conn *c;	/* the stream's connection, NULL when none */
	int32_t sid;		/* stream on c, -1 = none */
	int status;
	uint8_t h1;		/* enum h1_state: fd -> h2 parser */
	uint64_t left;
	size_t ck_line;
	struct h2_sbuf rx;	/* h1 bytes the engine wrote (the pipe's engine -> h2 direction) */
	struct h2_sbuf body;	/* decoded payload for DATA frames */
	struct h2_sbuf trl;	/* h1 trailer block */
	struct h2_sbuf tx;	/* h1 bytes for the engine to read */
	struct h2_sbuf hdr;	/* h2 -> h1 regular headers being collected */
	struct h2_sbuf ps;	/* values of the PS_* fields, back to back */
	uint32_t ps_off[PS_N], ps_len[PS_N];
	uint8_t ps_set;		/* 1 << PS_*: seen (the first one counts) */
	size_t unacked;		/* DATA bytes queued in tx, not yet consumed */
	/* upstream target */
	uint32_t addr;
	uint16_t port;
	uint32_t max_streams, max_concurrent;
	uint64_t idle_ms;
	struct h2b *next, *prev;	/* on c */
	struct h2b *wnext, *wprev;	/* worker's bridge list */
	struct h2b *dead_next;
	struct px_uconn *u;	/* up: the engine connection at the other end, or NULL */
	struct px_dconn *d;	/* down: the engine connection at the other end, or NULL */
	bool queued;
	bool eng_closed;	/* the engine closed its end (px_h2_pipe_close) */
	bool eng_wblocked;	/* the engine's last write was short: tell it when rx drains */
	bool nq;		/* on the notify queue */
	bool staged;		/* down: a request head staged at the front of tx (b_stage_head) */
	bool stage_cl0;		/* ... of a POST/PUT that ended with its HEADERS */
	uint32_t stage_ps, stage_len;	/* its pseudo-header bytes, and all of it */
	struct h2b *rq_next;	/* worker's h2 run queue */
	struct h2b *nq_next;	/* worker's engine notify queue */
};

struct h2_conn {
	uint8_t kind;		/* PX_EV_H2 */
	bool up, dead, connected, rd_ready, wr_ready, in_cb, goaway;
	bool flushq;		/* on the worker's flush list */
	bool rdhup;		/* the peer shut its side (or an error): read until EOF */
	uint8_t drain;		/* client conn: 1 = GOAWAY(2^31-1) sent, 2 = final GOAWAY sent */
	int fd;
	struct px_worker *w;
	nghttp2_session *s;
	struct h2_sbuf out;
	uint32_t addr;		/* peer (up: backend), network order */
	uint16_t port;
	uint16_t listen_port;
	uint32_t peer_addr;
	uint16_t peer_port;
	struct proxy_orig orig;
	uint32_t n_streams, total_streams, max_streams, max_concurrent;
	uint64_t idle_ms, idle_since, opened;
	struct h2b *bridges;
	struct h2_conn *next, *prev;
	struct h2_conn *dead_next;
	struct h2_conn *fq_next;	/* worker's flush list */
	int32_t hb_sid;		/* stream of the header block being received ... */
	struct h2b *hb;		/* ... and its bridge (cb_begin_headers; NULL once unlinked) */
};

struct px_h2w {
	struct proxy_h2_limits lim;	/* defaults filled in */
	struct h2_conn *conns;
	struct h2b *bridges;
	struct h2_conn *dead_c;
	struct h2b *dead_b;
	struct h2b *rq, *rq_tail;
	struct h2b *nq, *nq_tail;	/* bridges whose engine end has an event */
	struct h2_conn *fq;		/* connections with frames to send this turn */
	struct h2b *bfree;		/* freed stream bridges, buffers kept (H2_FREE_MAX) */
	uint32_t n_bfree;
	nghttp2_session_callbacks *cbs;
	nghttp2_option *opt_srv, *opt_cli;
	nghttp2_mem mem;		/* h2_mem_*: the sessions' allocator */
	struct h2_mblk *mfree[H2_MEM_CLASSES];
	uint32_t n_mfree[H2_MEM_CLASSES];
};

/*
 * In front of every block nghttp2 gets: its size class (-1 = malloc'd to
 * size). 16 bytes, so the block keeps malloc's alignment.
 */
struct h2_mblk {
	struct h2_mblk *next;	/* on a free list */
	long cls;
};
_Static_assert(sizeof(struct h2_mblk) == 16, "h2_mblk keeps 16-byte alignment");

/* ---- the sessions' allocator ---- */

/*
 * libnghttp2 allocates and frees several small blocks per stream (stream,
 * outbound items, header name/value buffers, copied header lists) in bursts
 * of as many streams as are in flight, past what malloc's per-thread cache
 * holds. Everything of one worker's sessions is freed on that worker, so a
 * free list per size class, bounded by H2_MEM_KEEP bytes, serves them.
 */
/*
 * Classes go up by halves (64, 96, 128, 192, ... 3072, 4096 bytes with the
 * header): a block wastes at most a third of itself, not half.
 */
static int h2_mem_class(size_t n)
{
	int b;

	n += sizeof(struct h2_mblk);
	if (n <= 64)
		return 0;
	if (n > H2_MEM_MAX)
		return -1;
	b = 63 - __builtin_clzll((unsigned long long)(n - 1));	/* 2^b < n <= 2^(b+1) */
	return 2 * (b - 6) + (n <= (size_t)3 << (b - 1) ? 1 : 2);
}

static size_t h2_mem_size(long c)
{
	return (size_t)(c & 1 ? 96 : 64) << (c / 2);
}

static void *h2_mem_malloc(size_t n, void *ud)
{
	struct px_h2w *hw = ud;
	int c = h2_mem_class(n);
	struct h2_mblk *h;

	if (c >= 0 && hw && hw->mfree[c]) {
		h = hw->mfree[c];
		hw->mfree[c] = h->next;
		hw->n_mfree[c]--;
	} else {
		h = malloc(c >= 0 ? h2_mem_size(c) : sizeof(*h) + n);
		if (!h)
			return NULL;
	}
	h->cls = c;
	return h + 1;
}

static void h2_mem_free(void *p, void *ud)
{
	struct px_h2w *hw = ud;
	struct h2_mblk *h;
	long c;

	if (!p)
		return;
	h = (struct h2_mblk *)p - 1;
	c = h->cls;
	if (c >= 0 && hw && hw->n_mfree[c] < H2_MEM_KEEP / h2_mem_size(c)) {
		h->next = hw->mfree[c];
		hw->mfree[c] = h;
		hw->n_mfree[c]++;
		return;
	}
	free(h);
}

static void *h2_mem_calloc(size_t nmemb, size_t size, void *ud)
{
	size_t n;
	void *p;

	if (__builtin_mul_overflow(nmemb, size, &n))
		return NULL;
	p = h2_mem_malloc(n, ud);
	if (p)
		memset(p, 0, n);
	return p;
}

static void *h2_mem_realloc(void *p, size_t n, void *ud)
{
	struct h2_mblk *h;
	size_t have;
	void *q;

	if (!p)
		return h2_mem_malloc(n, ud);
	if (!n) {
		h2_mem_free(p, ud);
		return NULL;
	}
	h = (struct h2_mblk *)p - 1;
	if (h->cls < 0) {
		if (n > SIZE_MAX - sizeof(*h))
			return NULL;
		h = realloc(h, sizeof(*h) + n);
		return h ? h + 1 : NULL;
	}
	have = h2_mem_size(h->cls) - sizeof(*h);
	if (n <= have)
		return p;
	q = h2_mem_malloc(n, ud);
	if (q) {
		memcpy(q, p, have);
		h2_mem_free(p, ud);
	}
	return q;
}

/* ---- byte queues ---- */

/*
 * The worker thread's HTTP/2 state (one per worker thread for its life,
 * set by h2w_init): the bridges' byte queues take their memory from its
 * size-class free lists, as the sessions do. A stream's queues are
 * taken and given back once per message; through malloc that was ~8% of
 * the worker's instructions (realloc growing from empty each time).
 * Before h2w_init (never on a worker with streams) blocks come from malloc.
 */
static __thread struct px_h2w *h2_tls;

/* Bytes usable in block p from h2_mem_malloc(n) (its class may hold more). */
static size_t h2_mem_usable(const void *p, size_t n)
{
	long c = ((const struct h2_mblk *)p - 1)->cls;

	return c >= 0 ? h2_mem_size(c) - sizeof(struct h2_mblk) : n;
}

/* Room for n more bytes; the live bytes move to the front. */
static int sb_reserve(struct h2_sbuf *b, size_t n)
{
	size_t live = b->len - b->off, want;
	char *p;

	if (b->len + n <= b->cap)
		return 0;
	if (live + n <= b->cap) {
		memmove(b->p, b->p + b->off, live);
		b->off = 0;
		b->len = live;
		return 0;
	}
	want = live + n;
	if (want < 2 * b->cap)
		want = 2 * b->cap;
	if (want < H2_SBUF_MIN)
		want = H2_SBUF_MIN;
	p = h2_mem_malloc(want, h2_tls);
	if (!p)
		return -ENOMEM;
	if (live)
		memcpy(p, b->p + b->off, live);
	h2_mem_free(b->p, h2_tls);
	b->p = p;
	b->cap = h2_mem_usable(p, want);
	b->off = 0;
	b->len = live;
	return 0;
}

/* inline: a few bytes at a time on every head; the room check is the fast path */
static inline int sb_add(struct h2_sbuf *b, const void *s, size_t n)
{
	if (!n)
		return 0;
	if (b->off && b->off == b->len)
		b->off = b->len = 0;
	if (b->len + n > b->cap && sb_reserve(b, n))
		return -ENOMEM;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	return 0;
}

static inline int sb_str(struct h2_sbuf *b, const char *s)
{
	return sb_add(b, s, strlen(s));
}

static size_t sb_live(const struct h2_sbuf *b)
{
	return b->len - b->off;
}

/* Append src's unread bytes (src may never have been allocated). */
static int sb_add_sb(struct h2_sbuf *b, const struct h2_sbuf *src)
{
	return sb_live(src) ? sb_add(b, src->p + src->off, sb_live(src)) : 0;
}

static void sb_free(struct h2_sbuf *b)
{
	h2_mem_free(b->p, h2_tls);
	memset(b, 0, sizeof(*b));
}

/* An emptied queue gives its memory back (taken again by sb_add). */
static void sb_drop(struct h2_sbuf *b)
{
	if (b->p && b->off == b->len)
		sb_free(b);
}

static struct px_h2w *h2w(struct px_worker *w)
{
	return w->h2;
}

/* Queue a bridge to move bytes after the current session call returns. */
static void b_wake(struct h2b *b)
{
	struct px_h2w *hw = h2w(b->w);

	if (b->queued || b->dead)
		return;
	b->queued = true;
	b->rq_next = NULL;
	if (hw->rq_tail)
		hw->rq_tail->rq_next = b;
	else
		hw->rq = b;
	hw->rq_tail = b;
}

/*
 * The engine end of the bridge has something to do (bytes to read, room to
 * write, EOF): queue an event for it. Delivered from px_h2_run, never from
 * inside a session call, so the engine may call back into the bridge.
 */
static void b_notify(struct h2b *b)
{
	struct px_h2w *hw = h2w(b->w);

	if (b->nq || b->eng_closed || !(b->u || b->d))
		return;
	b->nq = true;
	b->nq_next = NULL;
	if (hw->nq_tail)
		hw->nq_tail->nq_next = b;
	else
		hw->nq = b;
	hw->nq_tail = b;
}

/* ---- gRPC status mapping (Envoy's Grpc::Utility) ---- */

int px_h2_grpc_from_http(int status)
{
	switch (status) {
	case 400: return 13;	/* INTERNAL */
	case 401: return 16;	/* UNAUTHENTICATED */
	case 403: return 7;	/* PERMISSION_DENIED */
	case 404: return 12;	/* UNIMPLEMENTED */
	case 429: case 502: case 503: case 504: return 14;	/* UNAVAILABLE */
	default: return 2;	/* UNKNOWN */
	}
}

int px_h2_http_from_grpc(int g)
{
	switch (g) {
	case 0: return 200;
	case 1: return 499;	/* CANCELLED */
	case 2: return 500;
	case 3: return 400;
	case 4: return 504;	/* DEADLINE_EXCEEDED */
	case 5: return 404;
	case 6: return 409;
	case 7: return 403;
	case 8: return 429;	/* RESOURCE_EXHAUSTED */
	case 9: return 400;
	case 10: return 409;
	case 11: return 400;
	case 12: return 501;
	case 13: return 500;
	case 14: return 503;	/* UNAVAILABLE */
	case 15: return 500;
	case 16: return 401;
	default: return 500;
	}
}

/* ---- lifetimes ---- */

static void c_flush(struct h2_conn *c);
static void b_pump(struct h2b *b);

static void b_unlink_conn(struct h2b *b)
{
	struct h2_conn *c = b->c;

	if (!c)
		return;
	if (b->unacked) {
		/* DATA we hold for a stream that ends: give the connection window back */
		nghttp2_session_consume_connection(c->s, b->unacked);
		b->unacked = 0;
	}
	if (c->hb == b)
		c->hb = NULL;	/* cb_header's cached lookup */
	if (b->sid >= 0) {
		nghttp2_session_set_stream_user_data(c->s, b->sid, NULL);
		if (c->n_streams)
			c->n_streams--;
		if (!c->n_streams)
			c->idle_since = c->w->now;
	}
	if (b->prev)
		b->prev->next = b->next;
	else
		c->bridges = b->next;
	if (b->next)
		b->next->prev = b->prev;
	b->next = b->prev = NULL;
	b->c = NULL;
	b->sid = -1;
}

static void b_link_conn(struct h2b *b, struct h2_conn *c, int32_t sid)
{
	b->c = c;
	b->sid = sid;
	b->next = c->bridges;
	b->prev = NULL;
	if (c->bridges)
		c->bridges->prev = b;
	c->bridges = b;
	c->n_streams++;
	c->total_streams++;
	nghttp2_session_set_stream_user_data(c->s, sid, b);
}

static void b_msg_reset(struct h2b *b)
{
	b->ps.off = b->ps.len = 0;
	b->ps_set = 0;
	b->hdr.off = b->hdr.len = 0;
	b->body.off = b->body.len = 0;
	b->trl.off = b->trl.len = 0;
	b->status = 0;
	b->h1 = H1_HEAD;
	b->left = 0;
	b->ck_line = 0;
	b->deferred = b->body_eof = b->chunked_out = b->head_sent = false;
	b->in_trailers = b->resp_done = b->grpc = b->end_on_head = b->head_req = false;
	b->staged = b->stage_cl0 = false;
}

/* Close the bridge: the engine sees EOF (a reset mid-message). */
static void b_close(struct h2b *b)
{
	struct px_h2w *hw = h2w(b->w);

	if (b->dead)
		return;
	b->dead = true;
	b_unlink_conn(b);
	/* the engine reads what is left in tx, then EOF; it frees us by detaching */
	b_notify(b);
	if (b->wprev)
		b->wprev->wnext = b->wnext;
	else
		hw->bridges = b->wnext;
	if (b->wnext)
		b->wnext->wprev = b->wprev;
	b->dead_next = hw->dead_b;
	hw->dead_b = b;
}

static void b_destroy(struct h2b *b)
{
	sb_free(&b->rx);
	sb_free(&b->body);
	sb_free(&b->trl);
	sb_free(&b->tx);
	sb_free(&b->hdr);
	sb_free(&b->ps);
	free(b);
}

/*
 * The bridge's emptied queues give their memory back, and the pseudo-header
 * values once the head they went into is written: an open stream with
 * nothing in flight holds no buffer (nghttp2's stream state and the bridge
 * itself are what is left).
 */
static void b_trim(struct h2b *b)
{
	sb_drop(&b->rx);
	sb_drop(&b->body);
	sb_drop(&b->trl);
	sb_drop(&b->tx);
	sb_drop(&b->hdr);
	if (b->head_sent)
		sb_free(&b->ps);
}

static void b_free(struct h2b *b)
{
	struct px_h2w *hw = h2w(b->w);

	b_msg_reset(b);
	if (!b->up && hw->n_bfree < H2_FREE_MAX) {
		/* a stream's bridge: kept with its buffers for the next stream */
		b->dead_next = hw->bfree;
		hw->bfree = b;
		hw->n_bfree++;
		return;
	}
	b_destroy(b);
}

static struct h2b *b_new(struct px_worker *w, bool up)
{
	struct px_h2w *hw = h2w(w);
	struct h2b *b = hw->bfree;

	if (b) {
		struct h2_sbuf keep[6] = { b->rx, b->body, b->trl, b->tx, b->hdr, b->ps };

		hw->bfree = b->dead_next;
		hw->n_bfree--;
		memset(b, 0, sizeof(*b));
		b->rx = keep[0];
		b->body = keep[1];
		b->trl = keep[2];
		b->tx = keep[3];
		b->hdr = keep[4];
		b->ps = keep[5];
		b->rx.off = b->rx.len = b->body.off = b->body.len = b->trl.off = b->trl.len = 0;
		b->tx.off = b->tx.len = b->hdr.off = b->hdr.len = 0;
		b->ps.off = b->ps.len = 0;
	} else {
		b = calloc(1, sizeof(*b));
		if (!b)
			return NULL;
	}
	b->up = up;
	b->w = w;
	b->sid = -1;
	b->wnext = hw->bridges;
	if (hw->bridges)
		hw->bridges->wprev = b;
	hw->bridges = b;
	return b;
}

static void c_close(struct h2_conn *c)
{
	struct px_h2w *hw = h2w(c->w);

	if (c->dead)
		return;
	c->dead = true;
	while (c->bridges) {
		struct h2b *b = c->bridges;
		/* the backend never answered the connect: the engine retries / counts it as such */
		struct px_uconn *u = c->up && !c->connected ? b->u : NULL;

		b_close(b);
		if (u && u->d && !u->closed)
			px_stream_connect_failed(u->d);
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	if (!c->up) {
		/* the client's TCP connection: its accept took the slot and counted it */
		px_cx_slot_put(c->w->p);
		px_stat_inc(c->w, PX_S_CX_CLOSED);
	} else {
		px_stat_inc(c->w, PX_S_UP_CX_CLOSED);	/* opened ones count in UP_CX_TOTAL */
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		hw->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->dead_next = hw->dead_c;
	hw->dead_c = c;
}

/* ---- h1 serialization (h2 -> fd) ---- */

static bool h1_hop_by_hop(const char *n, size_t nl)
{
	/* by length first: most header names are none of these */
	switch (nl) {
	case 2: return px_ieq(n, nl, "te");
	case 4: return px_ieq(n, nl, "host");
	case 7: return px_ieq(n, nl, "upgrade");
	case 10: return px_ieq(n, nl, "connection") || px_ieq(n, nl, "keep-alive");
	case 14: return px_ieq(n, nl, "content-length") || px_ieq(n, nl, "http2-settings");
	case 16: return px_ieq(n, nl, "proxy-connection");
	case 17: return px_ieq(n, nl, "transfer-encoding");
	default: return false;
	}
}

static bool is_grpc_ct(const char *v, size_t n)
{
	return n >= 16 && strncasecmp(v, "application/grpc", 16) == 0;
}

/* Keep the first value of PS_* field i (no allocation per stream). */
static int b_ps_set(struct h2b *b, int i, const uint8_t *v, size_t n)
{
	size_t off = b->ps.len;

	if (b->ps_set & (1u << i))
		return 0;
	if (sb_add(&b->ps, v, n))
		return -ENOMEM;
	b->ps_off[i] = (uint32_t)off;
	b->ps_len[i] = (uint32_t)n;
	b->ps_set |= 1u << i;
	return 0;
}

static bool b_ps_is(const struct h2b *b, int i, const char *lit)
{
	size_t n = strlen(lit);

	return (b->ps_set & (1u << i)) && b->ps_len[i] == n &&
	       memcmp(b->ps.p + b->ps_off[i], lit, n) == 0;
}

/* Field i's value into dst, dflt when it was not seen. */
static int b_ps_put(struct h2_sbuf *dst, const struct h2b *b, int i, const char *dflt)
{
	if (!(b->ps_set & (1u << i)))
		return sb_str(dst, dflt);
	if (!b->ps_len[i])
		return 0;
	return sb_add(dst, b->ps.p + b->ps_off[i], b->ps_len[i]);
}

/* Decimal v (< 1000, >= 100) as 3 digits: a status code. */
static void put_status(char *d, int v)
{
	d[0] = (char)('0' + v / 100 % 10);
	d[1] = (char)('0' + v / 10 % 10);
	d[2] = (char)('0' + v % 10);
}

/* The collected h2 response head as an h1 head into tx (upstream bridges). */
static int b_emit_head(struct h2b *b)
{
	char line[13] = "HTTP/1.1 ";
	int st = b->status;
	int err = 0;

	/* nghttp2 checked :status is 3 digits */
	put_status(line + 9, st);
	line[12] = ' ';
	err |= sb_add(&b->tx, line, sizeof(line));
	err |= sb_str(&b->tx, px_reason(st));
	err |= sb_add(&b->tx, "\r\n", 2);
	if (b->end_on_head) {
		if (st >= 200 && st != 204 && st != 304) {
			err |= sb_str(&b->tx, "content-length: ");
			err |= b_ps_put(&b->tx, b, PS_CL, "0");
			err |= sb_str(&b->tx, "\r\n");
		}
	} else {
		err |= sb_str(&b->tx, "transfer-encoding: chunked\r\n");
		b->chunked_out = true;
	}
	err |= sb_add_sb(&b->tx, &b->hdr);
	err |= sb_str(&b->tx, "\r\n");
	b->hdr.off = b->hdr.len = 0;
	b->head_sent = true;
	return err ? -ENOMEM : 0;
}

/*
 * A client's request head for the engine, handed over parsed (no HTTP/1.1
 * text; px_h2_pipe_head): the pseudo-header values, then the regular
 * fields as "name: value\r\n" lines, are staged at the front of tx, where
 * the engine copies them from; DATA that follows goes behind them,
 * chunk-framed (the engine's body path is unchanged).
 */
static int b_stage_head(struct h2b *b)
{
	int err = 0;

	if (!(b->ps_set & (1u << PS_METHOD)) || !(b->ps_set & (1u << PS_PATH)))
		return -EPROTO;
	b->head_req = b_ps_is(b, PS_METHOD, "HEAD");
	b->chunked_out = !b->end_on_head;
	/* a bodiless POST/PUT says so (the ps values are gone by the handover) */
	b->stage_cl0 = b->end_on_head && (b_ps_is(b, PS_METHOD, "POST") || b_ps_is(b, PS_METHOD, "PUT"));
	b->stage_ps = (uint32_t)sb_live(&b->ps);
	err |= sb_add_sb(&b->tx, &b->ps);
	err |= sb_add_sb(&b->tx, &b->hdr);
	b->stage_len = (uint32_t)(b->stage_ps + sb_live(&b->hdr));
	b->hdr.off = b->hdr.len = 0;
	b->head_sent = true;
	b->staged = true;
	return err ? -ENOMEM : 0;
}

static int b_emit_end(struct h2b *b)
{
	int err = 0;

	if (b->chunked_out) {
		err |= sb_str(&b->tx, "0\r\n");
		err |= sb_add_sb(&b->tx, &b->hdr);
		err |= sb_str(&b->tx, "\r\n");
	}
	b->hdr.off = b->hdr.len = 0;
	return err ? -ENOMEM : 0;
}

/* ---- nghttp2 callbacks ---- */

static struct h2b *cb_bridge(nghttp2_session *s, int32_t sid)
{
	return nghttp2_session_get_stream_user_data(s, sid);
}

static int cb_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct h2_conn *c = ud;
	struct h2b *b;

	if (f->hd.type != NGHTTP2_HEADERS)
		return 0;
	b = cb_bridge(s, f->hd.stream_id);
	/* the block's fields come next, one cb_header each: look the stream up once */
	c->hb_sid = f->hd.stream_id;
	c->hb = b;
	if (b) {
		if (b->head_sent || (b->up && b->status))
			b->in_trailers = b->head_sent;
		return 0;
	}
	if (c->up || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	if (c->goaway)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	b = b_new(c->w, false);
	if (!b)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	b_link_conn(b, c, f->hd.stream_id);
	c->hb = b;
	return 0;
}

static int cb_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
		     size_t nl, const uint8_t *value, size_t vl, uint8_t flags, void *ud)
{
	struct h2_conn *c = ud;
	struct h2b *b = c->hb_sid == f->hd.stream_id ? c->hb : cb_bridge(s, f->hd.stream_id);
	int slot = -1;
	char *line;

	if (!b || f->hd.type != NGHTTP2_HEADERS)
		return 0;
	if (nl && name[0] == ':') {
		if (b->in_trailers)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		if (b->up) {
			if (nl == 7 && memcmp(name, ":status", 7) == 0) {
				b->status = 0;
				for (size_t i = 0; i < vl && i < 3; i++)
					b->status = b->status * 10 + (value[i] - '0');
			}
			return 0;
		}
		if (nl == 7 && memcmp(name, ":method", 7) == 0)
			slot = PS_METHOD;
		else if (nl == 5 && memcmp(name, ":path", 5) == 0)
			slot = PS_PATH;
		else if (nl == 10 && memcmp(name, ":authority", 10) == 0)
			slot = PS_AUTHORITY;
		if (slot >= 0 && b_ps_set(b, slot, value, vl))
			return NGHTTP2_ERR_CALLBACK_FAILURE;
		return 0;
	}
	if (nl == 4 && memcmp(name, "host", 4) == 0 && !b->up) {
		/* :authority comes first (pseudo-headers lead): it wins */
		return b_ps_set(b, PS_AUTHORITY, value, vl) ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
	}
	if (nl == 12 && memcmp(name, "content-type", 12) == 0 && is_grpc_ct((const char *)value, vl))
		b->grpc = true;
	if (nl == 14 && memcmp(name, "content-length", 14) == 0)
		return b_ps_set(b, PS_CL, value, vl) ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
	if (h1_hop_by_hop((const char *)name, nl))
		return 0;
	if (sb_live(&b->hdr) + nl + vl > h2w(b->w)->lim.max_header_list)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;	/* the stream gets a reset */
	if (b->hdr.off && b->hdr.off == b->hdr.len)
		b->hdr.off = b->hdr.len = 0;
	if (sb_reserve(&b->hdr, nl + vl + 4))
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	/* "name: value\r\n" in one go (nghttp2 checked both for CR, LF, NUL) */
	line = b->hdr.p + b->hdr.len;
	memcpy(line, name, nl);
	memcpy(line + nl, ": ", 2);
	memcpy(line + nl + 2, value, vl);
	memcpy(line + nl + 2 + vl, "\r\n", 2);
	b->hdr.len += nl + vl + 4;
	(void)flags;
	return 0;
}

/* A downstream request head is complete: open its engine connection. */
static int b_start_down(struct h2b *b)
{
	struct h2_conn *c = b->c;

	if (b_stage_head(b))
		return -EPROTO;
	b->d = px_dconn_open_stream(c->w, b, c->listen_port, c->peer_addr, c->peer_port,
				    &c->orig);
	if (!b->d)
		return -ENOMEM;
	b_notify(b);
	return 0;
}

static int cb_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct h2_conn *c = ud;
	struct h2b *b;
	bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;

	if (f->hd.type == NGHTTP2_GOAWAY) {
		c->goaway = true;
		return 0;
	}
	if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
		return 0;
	b = cb_bridge(s, f->hd.stream_id);
	if (!b)
		return 0;
	if (f->hd.type == NGHTTP2_HEADERS) {
		if (b->up && b->status >= 100 && b->status < 200 && !b->head_sent) {
			b->hdr.off = b->hdr.len = 0;	/* interim: dropped */
			b->status = 0;
			return 0;
		}
		if (!b->head_sent) {
			b->end_on_head = end;
			if (b->up) {
				if (b_emit_head(b))
					return NGHTTP2_ERR_CALLBACK_FAILURE;
			} else if (b_start_down(b)) {
				nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, f->hd.stream_id,
							  NGHTTP2_INTERNAL_ERROR);
				b_close(b);
				return 0;
			}
		} else if (!end) {
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;	/* trailers must end */
		}
	}
	if (end && !(f->hd.type == NGHTTP2_HEADERS && b->end_on_head && !b->in_trailers)) {
		if (b_emit_end(b))
			return NGHTTP2_ERR_CALLBACK_FAILURE;
	}
	if (end && b->up)
		b->resp_done = true;
	b->in_trailers = false;
	b_wake(b);
	return 0;
}

static int cb_data(nghttp2_session *s, uint8_t flags, int32_t sid, const uint8_t *data,
		   size_t len, void *ud)
{
	struct h2b *b = cb_bridge(s, sid);
	char line[24], *p = line + sizeof(line);
	int err = 0;

	if (!b || b->dead) {
		nghttp2_session_consume(s, sid, len);
		return 0;
	}
	if (!len)
		return 0;
	/* the chunk-size line, "%zx\r\n" */
	*--p = '\n';
	*--p = '\r';
	for (size_t v = len; v; v >>= 4)
		*--p = "0123456789abcdef"[v & 15];
	err |= sb_add(&b->tx, p, (size_t)(line + sizeof(line) - p));
	err |= sb_add(&b->tx, data, len);
	err |= sb_add(&b->tx, "\r\n", 2);
	b->unacked += len;
	b_wake(b);
	(void)flags;
	return err ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
}

static int cb_stream_close(nghttp2_session *s, int32_t sid, uint32_t code, void *ud)
{
	struct h2b *b = cb_bridge(s, sid);

	if (!b)
		return 0;
	if (b->up && b->resp_done && !code) {
		/* response complete: ready for the engine's next request */
		b_unlink_conn(b);
		b_msg_reset(b);
		b_wake(b);
		return 0;
	}
	if (!b->up && b->resp_done) {
		b_close(b);
		return 0;
	}
	/*
	 * Reset (RST_STREAM, GOAWAY past this stream, client gone) before the
	 * exchange completed: the engine sees its connection close, which it
	 * treats as a reset (retry / UC) upstream and DC downstream.
	 */
	b_close(b);
	return 0;
}

static ssize_t cb_read_body(nghttp2_session *s, int32_t sid, uint8_t *buf, size_t len,
			    uint32_t *dflags, nghttp2_data_source *src, void *ud)
{
	struct h2b *b = src->ptr;
	size_t n = sb_live(&b->body);

	if (n > len)
		n = len;
	if (n) {
		memcpy(buf, b->body.p + b->body.off, n);
		b->body.off += n;
		sb_drop(&b->body);
	}
	if (n && !b->rd_eof) {
		b->rd_ready = true;	/* room again: read the bridge */
		b_wake(b);
	}
	if (sb_live(&b->body))
		return (ssize_t)n;
	if (!b->body_eof) {
		if (n)
			return (ssize_t)n;
		b->deferred = true;
		return NGHTTP2_ERR_DEFERRED;
	}
	*dflags |= NGHTTP2_DATA_FLAG_EOF;
	if (sb_live(&b->trl)) {
		nghttp2_nv nv[HTTP1_MAX_HEADERS];
		size_t nn = 0;
		char *p = b->trl.p + b->trl.off, *end = b->trl.p + b->trl.len;

		while (p < end && nn < HTTP1_MAX_HEADERS) {
			char *eol = memchr(p, '\n', (size_t)(end - p));
			char *colon = memchr(p, ':', eol ? (size_t)(eol - p) : 0);
			char *v, *ve;

			if (!eol)
				break;
			ve = eol;
			if (ve > p && ve[-1] == '\r')
				ve--;
			if (colon) {
				/* nghttp2 lower-cases the names it copies */
				v = colon + 1;
				while (v < ve && (*v == ' ' || *v == '\t'))
					v++;
				while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
					ve--;
				if (!h1_hop_by_hop(p, (size_t)(colon - p)))
					nv[nn++] = (nghttp2_nv){ (uint8_t *)p, (uint8_t *)v,
								 (size_t)(colon - p), (size_t)(ve - v),
								 NGHTTP2_NV_FLAG_NONE };
			}
			p = eol + 1;
		}
		if (nn) {
			*dflags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
			if (nghttp2_submit_trailer(s, sid, nv, nn))
				*dflags &= ~NGHTTP2_DATA_FLAG_NO_END_STREAM;
		}
		b->trl.off = b->trl.len = 0;
	}
	if (!b->up)
		b->resp_done = true;
	return (ssize_t)n;
}

static ssize_t cb_send(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *ud)
{
	return NGHTTP2_ERR_WOULDBLOCK;	/* mem_send is used instead */
}

static void h2_mem_drop(struct px_h2w *hw)
{
	for (int c = 0; c < H2_MEM_CLASSES; c++) {
		while (hw->mfree[c]) {
			struct h2_mblk *h = hw->mfree[c];

			hw->mfree[c] = h->next;
			free(h);
		}
		hw->n_mfree[c] = 0;
	}
}

/* ---- sessions ---- */

static int h2w_init(struct px_worker *w)
{
	struct px_h2w *hw;

	if (w->h2)
		return 0;
	hw = calloc(1, sizeof(*hw));
	if (!hw)
		return -ENOMEM;
	if (nghttp2_session_callbacks_new(&hw->cbs) || nghttp2_option_new(&hw->opt_srv) ||
	    nghttp2_option_new(&hw->opt_cli)) {
		nghttp2_session_callbacks_del(hw->cbs);
		nghttp2_option_del(hw->opt_srv);
		free(hw);
		return -ENOMEM;
	}
	hw->lim = w->p->o.h2;
	hw->mem = (nghttp2_mem){ .mem_user_data = hw, .malloc = h2_mem_malloc,
				 .free = h2_mem_free, .calloc = h2_mem_calloc,
				 .realloc = h2_mem_realloc };
	if (!hw->lim.max_concurrent_streams)
		hw->lim.max_concurrent_streams = PROXY_H2_MAX_CONCURRENT;
	if (!hw->lim.max_header_list)
		hw->lim.max_header_list = PROXY_H2_MAX_HEADER_LIST;
	if (!hw->lim.max_continuations)
		hw->lim.max_continuations = PROXY_H2_MAX_CONTINUATIONS;
	if (!hw->lim.reset_rate)
		hw->lim.reset_rate = PROXY_H2_RESET_RATE;
	if (!hw->lim.max_settings)
		hw->lim.max_settings = PROXY_H2_MAX_SETTINGS;
	nghttp2_session_callbacks_set_send_callback(hw->cbs, cb_send);
	nghttp2_session_callbacks_set_on_begin_headers_callback(hw->cbs, cb_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(hw->cbs, cb_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(hw->cbs, cb_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(hw->cbs, cb_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(hw->cbs, cb_stream_close);
	for (int i = 0; i < 2; i++) {
		nghttp2_option *o = i ? hw->opt_cli : hw->opt_srv;

		nghttp2_option_set_no_auto_window_update(o, 1);
		nghttp2_option_set_max_settings(o, hw->lim.max_settings);
		nghttp2_option_set_max_outbound_ack(o, H2_MAX_OUTBOUND_ACK);
		nghttp2_option_set_max_continuations(o, hw->lim.max_continuations);
		nghttp2_option_set_max_deflate_dynamic_table_size(o, 4096);
		/* no RFC 7540 priority tree: closed streams need not be kept */
		nghttp2_option_set_no_closed_streams(o, 1);
	}
	/* rapid reset: RST_STREAMs beyond the bucket end the connection (GOAWAY) */
	nghttp2_option_set_stream_reset_rate_limit(hw->opt_srv, H2_RESET_BURST, hw->lim.reset_rate);
	w->h2 = hw;
	h2_tls = hw;
	return 0;
}

static struct h2_conn *c_new(struct px_worker *w, int fd, bool up)
{
	struct px_h2w *hw = h2w(w);
	nghttp2_settings_entry iv[3];
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET };
	struct h2_conn *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return NULL;
	c->kind = PX_EV_H2;
	c->up = up;
	c->fd = fd;
	c->w = w;
	c->opened = c->idle_since = w->now;
	c->hb_sid = -1;
	r = up ? nghttp2_session_client_new3(&c->s, hw->cbs, c, hw->opt_cli, &hw->mem) :
		 nghttp2_session_server_new3(&c->s, hw->cbs, c, hw->opt_srv, &hw->mem);
	if (r) {
		free(c);
		return NULL;
	}
	iv[0] = (nghttp2_settings_entry){ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
					  hw->lim.max_concurrent_streams };
	iv[1] = (nghttp2_settings_entry){ NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, hw->lim.max_header_list };
	/* client: no push; server: RFC 7540 priorities off, so PRIORITY floods cost nothing */
	iv[2] = up ? (nghttp2_settings_entry){ NGHTTP2_SETTINGS_ENABLE_PUSH, 0 } :
		     (nghttp2_settings_entry){ NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1 };
	if (nghttp2_submit_settings(c->s, NGHTTP2_FLAG_NONE, iv, 3)) {
		nghttp2_session_del(c->s);
		free(c);
		return NULL;
	}
	ev.data.ptr = c;
	if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev)) {
		nghttp2_session_del(c->s);
		free(c);
		return NULL;
	}
	c->next = hw->conns;
	if (hw->conns)
		hw->conns->prev = c;
	hw->conns = c;
	return c;
}

/* Feed bytes to the session; false when the connection must close. */
static bool c_recv(struct h2_conn *c, const void *p, size_t n)
{
	ssize_t r;

	c->in_cb = true;
	r = nghttp2_session_mem_recv(c->s, p, n);
	c->in_cb = false;
	return r >= 0 && (size_t)r == n;
}

static void c_read(struct h2_conn *c)
{
	char buf[H2_READ_CHUNK];

	while (c->rd_ready && !c->dead) {
		ssize_t n = read(c->fd, buf, sizeof(buf));

		if (n > 0) {
			if (!c_recv(c, buf, (size_t)n)) {
				c_flush(c);
				c_close(c);
				return;
			}
			/* short: the socket is empty now, the next bytes bring a new edge */
			if ((size_t)n < sizeof(buf) && !c->rdhup)
				c->rd_ready = false;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			if (errno == EAGAIN)
				c->rd_ready = false;
			continue;
		}
		c_close(c);	/* EOF or error: every stream on it ends */
		return;
	}
}

/*
 * Serialize pending frames (up to H2_BODY_MAX queued) and write them with
 * one write() per batch; closes when the session is over. Called once per
 * loop turn for every connection that has something to send (c_mark).
 */
static void c_flush(struct h2_conn *c)
{
	if (c->dead || c->in_cb)
		return;
	for (;;) {
		ssize_t n;

		while (sb_live(&c->out) < H2_BODY_MAX) {
			const uint8_t *data;

			c->in_cb = true;
			n = nghttp2_session_mem_send(c->s, &data);
			c->in_cb = false;
			if (n < 0) {
				c_close(c);
				return;
			}
			if (!n)
				break;
			if (sb_add(&c->out, data, (size_t)n)) {
				c_close(c);
				return;
			}
		}
		if (!sb_live(&c->out) || !c->connected || !c->wr_ready)
			break;
		n = write(c->fd, c->out.p + c->out.off, sb_live(&c->out));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN) {
				c_close(c);
				return;
			}
			c->wr_ready = false;
			return;
		}
		c->out.off += (size_t)n;
		if (sb_live(&c->out)) {
			c->wr_ready = false;	/* short: the socket is full, EPOLLOUT follows */
			return;
		}
	}
	if (!nghttp2_session_want_read(c->s) && !nghttp2_session_want_write(c->s) &&
	    !sb_live(&c->out))
		c_close(c);
}

/* c has frames to send: flush it once at the end of this loop turn (px_h2_flush). */
static void c_mark(struct h2_conn *c)
{
	struct px_h2w *hw = h2w(c->w);

	if (c->flushq || c->dead)
		return;
	c->flushq = true;
	c->fq_next = hw->fq;
	hw->fq = c;
}

static bool c_check_connect(struct h2_conn *c, uint32_t events)
{
	int r;

	if (c->connected)
		return true;
	r = px_connect_result(c->fd, events);
	if (!r)
		return false;
	if (r < 0) {
		px_stat_inc(c->w, PX_S_UP_CX_CONNECT_FAIL);
		c_close(c);
		return false;
	}
	c->connected = true;
	return true;
}

static void c_event(struct h2_conn *c, uint32_t events)
{
	if (c->up && !c_check_connect(c, events))
		return;
	if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->rdhup = true;	/* read to EOF: no new edge will come */
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->rd_ready = true;
	if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
		c->wr_ready = true;
	c_read(c);
	c_mark(c);
}

/* ---- fd -> h2: parse the engine's HTTP/1.1 message ---- */

/* What b_submit_head does with an HTTP/1.1 field, by its name. */
enum { SF_PASS, SF_DROP, SF_CL, SF_CT, SF_LOCAL, SF_RID };

static uint8_t b_field_class(const char *n, size_t nl, bool up)
{
	/* by length first: most names are none of these */
	switch (nl) {
	case 12:
		if (px_ieq(n, nl, "content-type"))
			return SF_CT;
		return px_ieq(n, nl, "x-request-id") ? SF_RID : SF_PASS;
	case 14:
		if (px_ieq(n, nl, "content-length"))
			return SF_CL;
		break;
	case 16:
		if (!up && px_ieq(n, nl, PX_H2_LOCAL_HDR))
			return SF_LOCAL;
		break;
	case 2: case 4: case 7: case 10: case 17:
		break;
	default:
		return SF_PASS;
	}
	return h1_hop_by_hop(n, nl) ? SF_DROP : SF_PASS;
}

static int b_submit_head(struct h2b *b, struct h2_conn *c, const struct http1_msg *m)
{
	nghttp2_nv nv[HTTP1_MAX_HEADERS + 6];
	uint8_t cls[HTTP1_MAX_HEADERS];
	char status[4];
	size_t nn = 0, nh = m->n_headers < HTTP1_MAX_HEADERS ? m->n_headers : HTTP1_MAX_HEADERS;
	nghttp2_data_provider dp = { .source.ptr = b, .read_callback = cb_read_body };
	bool has_body = b->h1 != H1_DONE || sb_live(&b->body);
	bool grpc_resp = false, replace = false, local = false;
	int grpc_status = 0;
	char gs[8];
	int32_t r;

	/*
	 * nghttp2 copies (and lower-cases) every name and value not flagged
	 * NO_COPY: literals are not copied (they outlive the frame), the rest
	 * is (the engine's bytes move on before the frame is sent)
	 */
#define NV(n, nl, v, vl) (nv[nn++] = (nghttp2_nv){ (uint8_t *)(n), (uint8_t *)(v), nl, vl, \
							NGHTTP2_NV_FLAG_NONE })
#define NV_LIT(n, v, vl) (nv[nn++] = (nghttp2_nv){ (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, vl, \
							   NGHTTP2_NV_FLAG_NO_COPY_NAME })
#define NV_LIT2(n, v) (nv[nn++] = (nghttp2_nv){ (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, \
						sizeof(v) - 1, NGHTTP2_NV_FLAG_NO_COPY_NAME | \
						NGHTTP2_NV_FLAG_NO_COPY_VALUE })
	/* each name classified once (b_field_class) */
	for (size_t i = 0; i < nh; i++) {
		const struct http1_header *h = &m->headers[i];

		cls[i] = b_field_class(h->name.p, h->name.n, b->up);
		if (cls[i] == SF_CT && is_grpc_ct(h->value.p, h->value.n))
			grpc_resp = true;
		else if (cls[i] == SF_LOCAL)
			local = true;
	}
	if (b->up) {
		NV_LIT(":method", m->method.p, m->method.n);
		NV_LIT2(":scheme", "http");
		NV_LIT(":authority", m->host.p, m->host.n);
		NV_LIT(":path", m->target.p, m->target.n);
		if (grpc_resp)
			NV_LIT2("te", "trailers");
	} else {
		/*
		 * a gRPC client gets the proxy's own non-gRPC replies (local 503s,
		 * timeouts...) as a trailers-only status, as Envoy's local replies;
		 * a backend's response passes as it is (the client maps its status)
		 */
		replace = b->grpc && local && !grpc_resp && m->status >= 200;
		put_status(status, replace ? 200 : m->status);
		NV_LIT(":status", status, 3);
		if (replace) {
			grpc_status = px_h2_grpc_from_http(m->status);
			snprintf(gs, sizeof(gs), "%d", grpc_status);
			NV_LIT2("content-type", "application/grpc");
			NV_LIT("grpc-status", gs, strlen(gs));
			NV_LIT("grpc-message", px_reason(m->status), strlen(px_reason(m->status)));
		}
	}
	for (size_t i = 0; i < nh && nn < sizeof(nv) / sizeof(nv[0]); i++) {
		const struct http1_header *h = &m->headers[i];

		switch (cls[i]) {
		case SF_DROP:
		case SF_LOCAL:
			continue;
		case SF_CT:
			if (replace)
				continue;
			break;
		case SF_CL:
			if (replace || m->body != HTTP1_BODY_LENGTH)
				continue;
			break;
		}
		NV(h->name.p, h->name.n, h->value.p, h->value.n);
		/*
		 * a request id differs on every request: indexing it would only
		 * churn the HPACK table, evicting the fields that do repeat
		 */
		if (cls[i] == SF_RID)
			nv[nn - 1].flags = NGHTTP2_NV_FLAG_NO_INDEX;
	}
#undef NV
#undef NV_LIT
#undef NV_LIT2
	if (replace) {
		b->h1 = b->h1 == H1_DONE ? H1_DONE : H1_DISCARD;
		has_body = false;
	}
	if (b->up) {
		r = nghttp2_submit_request(c->s, NULL, nv, nn, has_body ? &dp : NULL, b);
		if (r < 0)
			return -EPROTO;
		b_link_conn(b, c, r);
		return 0;
	}
	if (!has_body)
		b->resp_done = true;
	return nghttp2_submit_response(c->s, b->sid, nv, nn, has_body ? &dp : NULL) ? -EPROTO : 0;
}

/* An upstream connection with room for one more stream, or a new one. */
static struct h2_conn *b_up_conn(struct h2b *b)
{
	struct px_h2w *hw = h2w(b->w);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(b->port),
				  .sin_addr.s_addr = b->addr };
	struct h2_conn *c;
	int fd, one = 1, r;

	for (c = hw->conns; c; c = c->next) {
		uint32_t limit;

		if (!c->up || c->dead || c->goaway || c->addr != b->addr || c->port != b->port)
			continue;
		if (c->max_streams && c->total_streams >= c->max_streams)
			continue;
		limit = nghttp2_session_get_remote_settings(c->s,
							   NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
		if (c->max_concurrent && c->max_concurrent < limit)
			limit = c->max_concurrent;	/* DestinationRule maxConcurrentStreams */
		if (c->n_streams < limit)
			return c;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	if (r && errno != EINPROGRESS) {
		close(fd);
		return NULL;
	}
	c = c_new(b->w, fd, true);
	if (!c) {
		close(fd);
		return NULL;
	}
	c->connected = !r;
	c->addr = b->addr;
	c->port = b->port;
	c->max_streams = b->max_streams;
	c->max_concurrent = b->max_concurrent;
	c->idle_ms = b->idle_ms;
	px_stat_inc(b->w, PX_S_UP_CX_TOTAL);
	return c;
}

/* Parse a head from rx; 1 = parsed, 0 = need more, < 0 = bad. */
static int b_parse_head(struct h2b *b)
{
	struct http1_msg m;
	size_t avail = sb_live(&b->rx);
	struct h2_conn *c;
	int r;

	if (b->up)
		r = http1_parse_request(b->rx.p + b->rx.off, avail, &m);
	else
		r = http1_parse_response(b->rx.p + b->rx.off, avail, b->head_req ? "HEAD" : "GET",
					 b->head_req ? 4 : 3, &m);
	if (r == HTTP1_INCOMPLETE)
		return avail > HTTP1_MAX_HEAD ? -E2BIG : 0;
	if (r < 0)
		return -EPROTO;
	if (!b->up && m.status < 200) {
		b->rx.off += (size_t)r;	/* interim (100 Continue): not forwarded */
		return 1;
	}
	switch (m.body) {
	case HTTP1_BODY_NONE: b->h1 = H1_DONE; break;
	case HTTP1_BODY_LENGTH: b->h1 = H1_LEN; b->left = m.content_length; break;
	case HTTP1_BODY_CHUNKED: b->h1 = H1_CK_SIZE; break;
	case HTTP1_BODY_CLOSE: b->h1 = H1_CLOSE; break;
	}
	if (b->h1 == H1_DONE)
		b->body_eof = true;
	c = b->c;
	if (b->up) {
		c = b_up_conn(b);
		if (!c)
			return -ECONNREFUSED;
		b->head_req = m.method.n == 4 && memcmp(m.method.p, "HEAD", 4) == 0;
	}
	r = b_submit_head(b, c, &m) ? -EPROTO : r;
	if (r < 0)
		return r;
	b->rx.off += (size_t)r;
	return 2;
}

/* Decode body bytes from rx into body/trl; false on a framing error. */
static bool b_parse_body(struct h2b *b)
{
	while (sb_live(&b->rx) && b->h1 != H1_DONE && sb_live(&b->body) < H2_BODY_MAX) {
		char *p = b->rx.p + b->rx.off;
		size_t n = sb_live(&b->rx), take;
		bool discard = b->h1 == H1_DISCARD;

		switch (b->h1) {
		case H1_DISCARD:
		case H1_CLOSE:
			if (!discard && sb_add(&b->body, p, n))
				return false;
			b->rx.off += n;
			break;
		case H1_LEN:
		case H1_CK_DATA:
			take = n < b->left ? n : (size_t)b->left;
			if (sb_add(&b->body, p, take))
				return false;
			b->rx.off += take;
			b->left -= take;
			if (!b->left)
				b->h1 = b->h1 == H1_LEN ? H1_DONE : H1_CK_CRLF;
			break;
		case H1_CK_CRLF:
			if (n < 2)
				return true;
			if (p[0] != '\r' || p[1] != '\n')
				return false;
			b->rx.off += 2;
			b->h1 = H1_CK_SIZE;
			break;
		case H1_CK_SIZE: {
			char *eol = memchr(p, '\n', n);
			uint64_t v = 0;
			size_t i = 0;

			if (!eol)
				return n < 4096;
			for (; p + i < eol && isxdigit((unsigned char)p[i]) && i < 16; i++)
				v = v * 16 + (uint64_t)(isdigit((unsigned char)p[i]) ? p[i] - '0' :
							(tolower((unsigned char)p[i]) - 'a' + 10));
			if (!i)
				return false;
			b->rx.off += (size_t)(eol - p) + 1;
			b->left = v;
			b->h1 = v ? H1_CK_DATA : H1_CK_TRAILER;
			break;
		}
		case H1_CK_TRAILER: {
			char *eol = memchr(p, '\n', n);
			size_t ll;

			if (!eol)
				return n < 4096;
			ll = (size_t)(eol - p) + 1;
			if (ll <= 2) {
				b->h1 = H1_DONE;
			} else if (sb_live(&b->trl) + ll > H2_TRAILER_MAX || sb_add(&b->trl, p, ll)) {
				return false;
			}
			b->rx.off += ll;
			break;
		}
		default:
			return false;
		}
	}
	if (b->h1 == H1_DONE)
		b->body_eof = true;
	return true;
}

/*
 * The engine writes straight into rx (px_h2_pipe_writev): nothing to read;
 * tell a blocked writer once rx has room again.
 */
static void b_read(struct h2b *b)
{
	b->rd_ready = false;
}

static void b_rx_room(struct h2b *b)
{
	if (b->eng_wblocked && sb_live(&b->rx) < H2_PIPE_MAX) {
		b->eng_wblocked = false;
		b_notify(b);
	}
}

/* tx is read by the engine (px_h2_pipe_read): tell it there is some. */
static void b_write(struct h2b *b)
{
	if (!sb_live(&b->tx))
		return;
	if (b->eng_closed) {
		/* nobody to deliver to; b_pump cancels the stream (rd_eof) */
		b->tx.off = b->tx.len = 0;
		return;
	}
	b_notify(b);
}

/* Move bytes both ways between the bridge's fd and its stream. */
static void b_pump(struct h2b *b)
{
	struct h2_conn *c;

	if (b->dead)
		return;
	b_write(b);
	for (int round = 0; round < 64 && !b->dead; round++) {
		bool more_body = false;

		b_read(b);
		if (b->dead)
			return;
		if (b->h1 == H1_HEAD && sb_live(&b->rx)) {
			int r;

			if (!b->up && !b->c) {
				b_close(b);	/* the client's stream is gone */
				return;
			}
			if (b->up && b->sid >= 0) {
				b_close(b);	/* pipelined request: not from our engine */
				return;
			}
			r = b_parse_head(b);
			if (r == -ECONNREFUSED && b->u && b->u->d && !b->u->closed) {
				struct px_uconn *u = b->u;

				b_close(b);	/* no connection to the backend: a connect failure */
				px_stream_connect_failed(u->d);
				return;
			}
			if (r < 0) {
				if (b->c && b->sid >= 0)
					nghttp2_submit_rst_stream(b->c->s, NGHTTP2_FLAG_NONE, b->sid,
								  NGHTTP2_INTERNAL_ERROR);
				c = b->c;
				b_close(b);
				if (c)
					c_flush(c);
				return;
			}
			if (r == 0 && !b->rd_eof)
				break;
			if (r == 1)
				continue;
		}
		if (b->h1 != H1_HEAD && !b_parse_body(b)) {
			c = b->c;
			if (c && b->sid >= 0)
				nghttp2_submit_rst_stream(c->s, NGHTTP2_FLAG_NONE, b->sid,
							  NGHTTP2_PROTOCOL_ERROR);
			b_close(b);
			if (c)
				c_flush(c);
			return;
		}
		if (b->rd_eof && b->h1 == H1_CLOSE) {
			b->h1 = H1_DONE;
			b->body_eof = true;
		}
		if (b->rd_eof && b->h1 == H1_DISCARD) {
			c = b->c;	/* the replacing status went out with the head */
			b_close(b);
			if (c)
				c_mark(c);
			return;
		}
		if (b->h1 == H1_DONE && !b->body_eof)
			b->body_eof = true;
		c = b->c;
		if (c && b->sid >= 0 && b->deferred && (sb_live(&b->body) || b->body_eof)) {
			b->deferred = false;
			nghttp2_session_resume_data(c->s, b->sid);
		}
		more_body = b->rd_ready && sb_live(&b->body) < H2_BODY_MAX && !b->rd_eof;
		if (!more_body && !(b->h1 == H1_HEAD && sb_live(&b->rx)))
			break;
	}
	if (b->dead)
		return;
	b_rx_room(b);
	b_trim(b);
	/* the engine closed its end */
	if (b->rd_eof && !sb_live(&b->tx)) {
		if (!b->c || b->sid < 0) {
			if (b->up || !b->c) {
				b_close(b);	/* idle pooled connection / stream gone */
				return;
			}
		} else if (!b->body_eof || b->up) {
			c = b->c;	/* mid-exchange: cancel the stream */
			nghttp2_submit_rst_stream(c->s, NGHTTP2_FLAG_NONE, b->sid, NGHTTP2_CANCEL);
			b_close(b);
			c_flush(c);
			return;
		}
	}
	if (b->c)
		c_mark(b->c);
}

/* ---- entry points ---- */

bool px_h2_takeover(struct px_dconn *d)
{
	struct px_worker *w = d->w;
	struct h2_conn *c;
	size_t n = d->in.len - d->in.off;
	int fd;

	if (h2w_init(w)) {
		px_dconn_close(d, -1);
		return false;
	}
	epoll_ctl(w->ep, EPOLL_CTL_DEL, d->fd, NULL);
	fd = dup(d->fd);
	if (fd < 0) {
		px_dconn_close(d, -1);
		return false;
	}
	c = c_new(w, fd, false);
	if (!c) {
		close(fd);
		px_dconn_close(d, -1);
		return false;
	}
	/* the same TCP connection: the h2 connection takes d's max_conns slot and cx counts */
	d->h2 = true;
	c->connected = true;
	c->listen_port = d->listen_port;
	c->peer_addr = d->peer_addr;
	c->peer_port = d->peer_port;
	c->orig = d->orig;
	c->rd_ready = true;
	c->wr_ready = true;
	px_stat_inc(w, PX_S_CX_H2);
	if (!c_recv(c, d->in.p + d->in.off, n)) {
		c_flush(c);
		c_close(c);
	}
	d->in.off = d->in.len = 0;
	px_dconn_close(d, -1);
	if (!c->dead) {
		c_read(c);
		c_flush(c);
	}
	px_h2_run(w);
	return false;
}

void px_h2_up_bind(struct h2b *b, struct px_uconn *u)
{
	b->u = u;
}

struct h2b *px_h2_up_open(struct px_worker *w, uint32_t addr, uint16_t port,
			  const struct l7_pool_cfg *pool, int *err)
{
	struct h2b *b;

	*err = h2w_init(w);
	if (*err)
		return NULL;
	b = b_new(w, true);
	if (!b) {
		*err = -ENOMEM;
		return NULL;
	}
	b->addr = addr;
	b->port = port;
	b->max_streams = pool->max_requests_per_conn;
	b->max_concurrent = pool->max_concurrent_streams;
	b->idle_ms = pool->idle_timeout_ms ? pool->idle_timeout_ms : PX_DEF_UP_IDLE_MS;
	return b;
}

ssize_t px_h2_pipe_read(struct h2b *b, void *buf, size_t room)
{
	size_t n = sb_live(&b->tx);

	if (b->staged)
		return b->dead ? 0 : -EAGAIN;	/* the head goes by px_h2_pipe_head */
	if (!n) {
		sb_drop(&b->tx);	/* e.g. emptied by px_h2_pipe_head */
		return b->dead ? 0 : -EAGAIN;
	}
	if (n > room)
		n = room;
	memcpy(buf, b->tx.p + b->tx.off, n);
	b->tx.off += n;
	if (!sb_live(&b->tx)) {
		sb_drop(&b->tx);
		if (!b->dead && b->unacked && b->c && b->sid >= 0) {
			/* DATA passed on: only now may the peer send more (WINDOW_UPDATE) */
			nghttp2_session_consume(b->c->s, b->sid, b->unacked);
			b->unacked = 0;
			b_wake(b);
		}
	}
	return (ssize_t)n;
}

int px_h2_pipe_head(struct h2b *b, struct http1_msg *m, const char **head, size_t *len)
{
	const char *base, *p, *end;
	struct http1_str auth = { "", 0 };
	size_t n = 0;
	int r;

	if (!b->staged || b->dead)
		return 0;
	b->staged = false;
	base = b->tx.p + b->tx.off;
	p = base + b->stage_ps;
	end = base + b->stage_len;
	if (b->ps_set & (1u << PS_AUTHORITY))
		auth = (struct http1_str){ base + b->ps_off[PS_AUTHORITY], b->ps_len[PS_AUTHORITY] };
	/* the fields in the order the HTTP/1.1 text had them (h1_hop_by_hop dropped the rest) */
	m->headers[n++] = (struct http1_header){ { "host", 4 }, auth };
	if (b->chunked_out)
		m->headers[n++] = (struct http1_header){ { "transfer-encoding", 17 }, { "chunked", 7 } };
	else if (b->stage_cl0)
		m->headers[n++] = (struct http1_header){ { "content-length", 14 }, { "0", 1 } };
	/* "name: value\r\n" lines from cb_header: nghttp2 let no ':' into names, no CR/LF anywhere */
	while (p < end) {
		const char *colon = memchr(p, ':', (size_t)(end - p));
		const char *eol = colon ? memchr(colon, '\r', (size_t)(end - colon)) : NULL;

		if (!eol)
			break;
		if (n == HTTP1_MAX_HEADERS) {
			n++;	/* too many: http1_request_from_fields says so */
			break;
		}
		m->headers[n++] = (struct http1_header){ { p, (size_t)(colon - p) },
							 { colon + 2, (size_t)(eol - colon - 2) } };
		p = eol + 2;
	}
	m->n_headers = n;
	r = http1_request_from_fields(m, base + b->ps_off[PS_METHOD], b->ps_len[PS_METHOD],
				      base + b->ps_off[PS_PATH], b->ps_len[PS_PATH]);
	if (!r && b->stage_len > HTTP1_MAX_HEAD)
		r = HTTP1_ETOOLARGE;
	*head = base;
	*len = b->stage_len;
	/* consumed: the bytes stay put until the engine's next read (it copies them first) */
	b->tx.off += b->stage_len;
	return r < 0 ? r : 1;
}

ssize_t px_h2_pipe_writev(struct h2b *b, const struct iovec *iov, int n_iov)
{
	size_t live = sb_live(&b->rx), room, done = 0, total = 0;

	if (b->dead)
		return -EPIPE;
	room = live < H2_PIPE_MAX ? H2_PIPE_MAX - live : 0;
	for (int i = 0; i < n_iov; i++) {
		size_t k = iov[i].iov_len < room - done ? iov[i].iov_len : room - done;

		total += iov[i].iov_len;
		if (k && sb_add(&b->rx, iov[i].iov_base, k))
			return done ? (ssize_t)done : -ENOMEM;
		done += k;
	}
	if (done < total)
		b->eng_wblocked = true;	/* short write: the engine waits for room */
	if (!done)
		return -EAGAIN;
	b->rd_ready = true;
	b_wake(b);
	return (ssize_t)done;
}

void px_h2_pipe_close(struct h2b *b)
{
	b->u = NULL;
	b->d = NULL;
	b->eng_closed = true;
	b->rd_eof = true;
	b->rd_ready = true;
	if (!b->dead)
		b_wake(b);
}

void px_h2_event(void *obj, uint32_t events)
{
	struct h2_conn *c = obj;

	if (!c->dead)
		c_event(c, events);
}

/* Deliver the engine's queued bridge events (EOF as EPOLLRDHUP, as a socket would). */
static void b_notify_run(struct px_h2w *hw)
{
	struct h2b *b = hw->nq;

	hw->nq = b->nq_next;
	if (!hw->nq)
		hw->nq_tail = NULL;
	b->nq = false;
	if (b->eng_closed)
		return;
	if (b->up && b->u && !b->u->closed)
		px_uconn_event(b->u, EPOLLIN | EPOLLOUT | (b->dead ? EPOLLRDHUP : 0));
	else if (!b->up && b->d && !b->d->closed)
		px_dconn_event(b->d, EPOLLIN | EPOLLOUT | (b->dead ? EPOLLRDHUP : 0));
}

#define H2_RUN_MAX 4096	/* bridge pumps and engine events per loop turn; the rest stay queued */

void px_h2_run(struct px_worker *w)
{
	struct px_h2w *hw = h2w(w);

	for (int i = 0; hw && (hw->rq || hw->nq) && i < H2_RUN_MAX; i++) {
		struct h2b *b = hw->rq;

		if (!b) {
			b_notify_run(hw);
			continue;
		}
		hw->rq = b->rq_next;
		if (!hw->rq)
			hw->rq_tail = NULL;
		b->queued = false;
		if (!b->dead)
			b_pump(b);
	}
}

void px_h2_flush(struct px_worker *w)
{
	struct px_h2w *hw = h2w(w);

	while (hw && hw->fq) {
		struct h2_conn *c = hw->fq;

		hw->fq = c->fq_next;
		c->flushq = false;
		c_flush(c);
	}
}

bool px_h2_busy(const struct px_worker *w)
{
	return w->h2 && (w->h2->rq || w->h2->nq);
}

/* Bytes of the byte queues bridge b holds. */
static uint64_t b_buf_bytes(const struct h2b *b)
{
	return b->rx.cap + b->body.cap + b->trl.cap + b->tx.cap + b->hdr.cap + b->ps.cap;
}

/*
 * The I/O buffers the open client streams hold, end to end: their bridges'
 * queues, their engine connections' read and output buffers, the upstream
 * connection's read buffer and, for an HTTP/2 backend, its bridge's
 * queues (not the request head the engine keeps for retries). An open
 * stream with nothing in flight holds none (tests/unit/test_proxy.c).
 */
static void h2_publish_gauges(struct px_worker *w, struct px_h2w *hw)
{
	uint64_t n = 0, bytes = 0;

	for (struct h2b *b = hw->bridges; b; b = b->wnext) {
		const struct px_dconn *d = b->d;

		if (b->up || !b->c || b->dead)
			continue;
		n++;
		bytes += b_buf_bytes(b);
		if (!d || d->closed)
			continue;
		bytes += d->in.cap + d->out.cap;
		if (d->st.u && !d->st.u->closed) {
			bytes += d->st.u->in.cap;
			if (d->st.u->h2b)
				bytes += b_buf_bytes(d->st.u->h2b);
		}
	}
	__atomic_store_n(&w->h2_streams_open, n, __ATOMIC_RELAXED);
	__atomic_store_n(&w->h2_stream_buf_bytes, bytes, __ATOMIC_RELAXED);
}

void px_h2_tick(struct px_worker *w)
{
	struct px_h2w *hw = h2w(w);

	if (!hw)
		return;
	h2_publish_gauges(w, hw);
	for (struct h2_conn *c = hw->conns, *nx; c; c = nx) {
		nx = c->next;
		if (!c->up) {
			uint64_t idle = w->p->o.idle_timeout_ms ? w->p->o.idle_timeout_ms :
								  PX_DEF_IDLE_TIMEOUT_MS;

			/* a client connection without streams: Envoy's idle_timeout, then GOAWAY */
			if (!c->n_streams && w->now - c->idle_since > idle) {
				nghttp2_session_terminate_session(c->s, NGHTTP2_NO_ERROR);
				c_flush(c);
				c_close(c);
			}
			continue;
		}
		if (!c->connected && w->now - c->opened > H2_UP_CONNECT_MS) {
			px_stat_inc(w, PX_S_UP_CX_CONNECT_FAIL);
			c_close(c);
		} else if (!c->n_streams && w->now - c->idle_since > c->idle_ms) {
			nghttp2_session_terminate_session(c->s, NGHTTP2_NO_ERROR);
			c_flush(c);
			c_close(c);
		}
	}
}

void px_h2_reap(struct px_worker *w)
{
	struct px_h2w *hw = h2w(w);

	if (!hw)
		return;
	for (struct h2b **pp = &hw->dead_b; *pp;) {
		struct h2b *b = *pp;

		/* the engine still holds it (it reads tx, then EOF) or an event is queued */
		if (b->queued || b->nq || b->u || b->d) {
			pp = &b->dead_next;
			continue;
		}
		*pp = b->dead_next;
		b_free(b);
	}
	px_h2_flush(w);	/* unlinks dead connections from the flush list */
	while (hw->dead_c) {
		struct h2_conn *c = hw->dead_c;

		hw->dead_c = c->dead_next;
		nghttp2_session_del(c->s);
		sb_free(&c->out);
		free(c);
	}
}

bool px_h2_drain(struct px_worker *w, uint64_t since)
{
	struct px_h2w *hw = h2w(w);
	bool final = w->now - since >= PX_H2_DRAIN_NOTICE_MS, left = false;

	if (!hw)
		return true;
	for (struct h2_conn *c = hw->conns, *nx; c; c = nx) {
		nx = c->next;
		if (c->up)
			continue;
		if (!c->drain) {
			/* streams the client opens meanwhile still count (RFC 9113 6.8) */
			if (nghttp2_submit_shutdown_notice(c->s)) {
				c_close(c);
				continue;
			}
			c->drain = 1;
		}
		if (final && c->drain == 1) {
			if (nghttp2_submit_goaway(c->s, NGHTTP2_FLAG_NONE,
						  nghttp2_session_get_last_proc_stream_id(c->s),
						  NGHTTP2_NO_ERROR, NULL, 0)) {
				c_close(c);
				continue;
			}
			c->drain = 2;
		}
		c_flush(c);
		if (c->dead)
			continue;
		if (c->drain == 2 && !c->n_streams && !sb_live(&c->out)) {
			c_close(c);
			continue;
		}
		left = true;
	}
	return !left;
}

void px_h2_shutdown(struct px_worker *w)
{
	struct px_h2w *hw = h2w(w);

	if (!hw)
		return;
	while (hw->conns) {
		struct h2_conn *c = hw->conns;

		nghttp2_session_terminate_session(c->s, NGHTTP2_NO_ERROR);
		c_flush(c);
		c_close(c);
	}
	while (hw->bridges)
		b_close(hw->bridges);
	while (hw->rq) {
		hw->rq->queued = false;
		hw->rq = hw->rq->rq_next;
	}
	while (hw->nq) {
		hw->nq->nq = false;
		hw->nq = hw->nq->nq_next;
	}
	/* engine connections still attached: they close after us, without the bridge */
	for (struct h2b *b = hw->dead_b; b; b = b->dead_next) {
		if (b->u)
			b->u->h2b = NULL;
		if (b->d)
			b->d->h2b = NULL;
		b->u = NULL;
		b->d = NULL;
	}
	px_h2_reap(w);
	while (hw->bfree) {
		struct h2b *b = hw->bfree;

		hw->bfree = b->dead_next;
		b_destroy(b);
	}
	nghttp2_session_callbacks_del(hw->cbs);
	nghttp2_option_del(hw->opt_srv);
	nghttp2_option_del(hw->opt_cli);
	h2_mem_drop(hw);
	free(hw);
	w->h2 = NULL;
	h2_tls = NULL;
}
