/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * proxy internals shared by proxy.c (workers, event loop, timers,
 * listeners, pools, stats), proxy_http.c (the request/response engine)
 * and proxy_util.c (pure helpers, unit-tested).
 *
 * Threading: everything below struct proxy belongs to exactly one worker
 * thread; the only cross-thread data are the config mailbox (atomic
 * exchange), the stop flag, the per-worker counters (written by their
 * worker with relaxed stores, summed by readers) and the per-cluster
 * counter tables (insertions under a mutex the reader also takes).
 *
 * Event model: epoll, edge-triggered for connections (EPOLLIN | EPOLLOUT |
 * EPOLLRDHUP registered once, never modified), level-triggered for
 * listeners (paused on EMFILE). A connection remembers "readable" and
 * "writable" until a read or write comes back short; the pump for a
 * downstream connection then moves bytes both ways until nothing moves.
 */
#ifndef SOCKMESH_PROXY_INT_H
#define SOCKMESH_PROXY_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <strings.h>
#include <sys/uio.h>

#include "common/hash.h"
#include "proxy/http1.h"
#include "proxy/route.h"
#include "proxy/proxy.h"
#include "proxy/upstream.h"

#define PX_BUF_SIZE		(16 * 1024)	/* initial read buffer per connection */
#define PX_BUF_MAX		HTTP1_MAX_HEAD	/* grown only for long heads */
#define PX_UHEAD_ADD		256		/* first upstream head buffer: client head + this */
#define PX_REPLAY_MAX		(64 * 1024)	/* request bodies up to this are retriable */
/*
 * A shadow holds at most this much of its request body unsent (besides its
 * head), Envoy's default buffer limit (per_connection_buffer_limit_bytes),
 * which bounds its streamed shadows too; a worker's shadows together at
 * most PX_MIRROR_WORKER_MAX. Over either: the shadow is abandoned. Its
 * socket's send buffer is fixed at PX_MIRROR_SNDBUF (the kernel doubles
 * it), not autotuned up to tcp_wmem's 4 MiB.
 */
#define PX_MIRROR_PENDING_MAX	(1024 * 1024)
#define PX_MIRROR_WORKER_MAX	(32 * 1024 * 1024)
#define PX_MIRROR_SNDBUF	(128 * 1024)
#define PX_MIRRORS_MAX		256		/* in flight per worker */
#define PX_MIRROR_TIMEOUT_MS	10000		/* connect; answer after its request is whole */
#define PX_MAX_TRIES		32		/* avoid list and attempt cap */
#define PX_PUMP_ROUNDS		64		/* then yield to other connections */
#define PX_ACCEPT_BATCH		64
#define PX_EMFILE_PAUSE_MS	100
#define PX_TICK_MS		1000
#define PX_PENDING_TICK_MS	5		/* polling, only without the registry's waker */
#define PX_DEF_HEADER_TIMEOUT_MS 10000
#define PX_DEF_IDLE_TIMEOUT_MS	60000
#define PX_DEF_STREAM_IDLE_MS	300000		/* Envoy's stream_idle_timeout */
#define PX_DEF_CONNECT_TIMEOUT_MS 10000
#define PX_DEF_UP_IDLE_MS	60000
#define PX_BACKOFF_BASE_MS	25		/* Envoy: base 25 ms, max 10x */
#define PX_LOG_BUF		(64 * 1024)
#define PX_DFREE_MAX		256		/* stream connections kept for reuse per worker */
#define PX_BUF_STASH_MAX	64		/* empty PX_BUF_SIZE read buffers kept per worker */

/* Counters; one array per worker, summed on read. */
enum px_stat {
	PX_S_CX_TOTAL = 0,
	PX_S_CX_CLOSED,
	PX_S_CX_NO_ORIG,	/* refused: no original destination */
	PX_S_CX_OVERFLOW,	/* refused: max_conns */
	PX_S_CX_ACCEPT_ERR,	/* EMFILE/ENFILE/ENOMEM on accept */
	PX_S_RQ_TOTAL,
	PX_S_RQ_1XX,
	PX_S_RQ_2XX,
	PX_S_RQ_3XX,
	PX_S_RQ_4XX,
	PX_S_RQ_5XX,
	PX_S_RQ_NO_RESPONSE,	/* aborted before any status */
	PX_S_RQ_BAD,		/* parse errors (400/431/505) */
	PX_S_RQ_HEADER_TIMEOUT,
	PX_S_RQ_PREFLIGHT,
	PX_S_RQ_UPGRADE,
	PX_S_RETRIES,
	PX_S_RETRY_OVERFLOW,
	PX_S_UP_CX_TOTAL,
	PX_S_UP_CX_CLOSED,
	PX_S_UP_CX_CONNECT_FAIL,
	PX_S_UP_RQ_REUSED,	/* requests sent on a pooled connection */
	PX_S_UP_REDISPATCH,	/* pooled connection closed under us: resent */
	PX_S_MIRROR_SENT,	/* shadows started */
	PX_S_MIRROR_SKIPPED,	/* not started: no host, PX_MIRRORS_MAX, no memory */
	PX_S_MIRROR_COMPLETED,	/* answered (a final status; the answer is dropped) */
	PX_S_MIRROR_FAILED,	/* connect failure, reset, timeout before a status */
	PX_S_MIRROR_ABANDONED,	/* could not keep up: over PX_MIRROR_PENDING_MAX unsent */
	PX_S_MIRROR_CANCELLED,	/* the client's request ended before it was whole: reset */
	PX_S_LISTENER_ERR,
	PX_S_LOG_DROPPED,
	PX_S_CX_H2,		/* HTTP/2 (h2c prior knowledge) client connections */
	/* response flags, same order as enum px_flag */
	PX_S_F_FIRST,
	PX_S_MAX = PX_S_F_FIRST + 16,
};

/* Envoy response flags (the subset this proxy can produce). */
enum px_flag {
	PX_F_UH = 0,	/* no healthy upstream */
	PX_F_UF,	/* upstream connection failure */
	PX_F_UO,	/* upstream overflow (circuit breaker) */
	PX_F_NR,	/* no route */
	PX_F_URX,	/* upstream retry limit exceeded */
	PX_F_UT,	/* upstream request timeout */
	PX_F_UC,	/* upstream connection termination */
	PX_F_DC,	/* downstream connection termination */
	PX_F_FI,	/* fault injected abort */
	PX_F_DI,	/* fault injected delay */
	PX_F_UPE,	/* upstream protocol error */
	PX_F_SI,	/* stream idle timeout */
	PX_F_DPE,	/* downstream protocol error */
	PX_F_NC,	/* no cluster found (route to a host no Service has) */
	PX_F_MAX,
};

extern const char *const px_flag_names[PX_F_MAX];

/* Why a try failed (local origin), for retry decisions and outlier results. */
enum px_fail {
	PX_FAIL_NONE = 0,
	PX_FAIL_CONNECT,	/* refused / connect timeout */
	PX_FAIL_RESET,		/* reset or EOF before a complete response head */
	PX_FAIL_TIMEOUT,	/* per-try timeout */
	PX_FAIL_PROTOCOL,	/* unparsable response head */
};

enum px_ev_kind {
	PX_EV_LISTEN = 1,
	PX_EV_DCONN,
	PX_EV_UCONN,
	PX_EV_WAKE,
	PX_EV_H2,		/* proxy_h2.c: an HTTP/2 connection */
};

enum px_timer_kind {
	PX_T_DCONN = 1,		/* header / keep-alive idle / stream idle */
	PX_T_ROUTE,		/* route timeout */
	PX_T_TRY,		/* per-try timeout, backoff, fault delay */
	PX_T_UCONN,		/* connect timeout / pooled idle / mirror */
	PX_T_TICK,
};

/*
 * Timer in a per-worker binary heap. Re-arming later than heap_at is lazy
 * (the heap entry fires early and is re-inserted), so pushing a deadline
 * forward on every byte costs nothing.
 */
struct px_timer {
	uint64_t at;		/* deadline; 0 = disarmed */
	uint64_t heap_at;	/* key in the heap */
	int32_t idx;		/* heap position, -1 = not in heap */
	uint8_t kind;
};

struct px_buf {
	char *p;
	uint32_t off, len, cap;	/* unread bytes are p[off..len) */
};

struct px_worker;
struct px_dconn;
struct px_pool;

/* Worker-local reference to a config: no atomics per request. */
struct px_wcfg {
	struct l7_config *c;
	uint32_t users;
	bool retired;
	struct px_wcfg *next;
};

struct px_listener {
	uint8_t kind;		/* PX_EV_LISTEN */
	bool gateway;
	bool paused;
	bool seen;		/* reconcile mark */
	int fd;
	uint32_t addr;		/* network order */
	uint16_t port;		/* host order */
};

/*
 * Where a response that is read and dropped (a shadow's) stands:
 * px_mresp_scan is fed its bytes as they come.
 */
enum px_mresp_phase {
	PX_MR_HEAD = 0,		/* (1xx heads are skipped) */
	PX_MR_LENGTH,
	PX_MR_CHUNKED,
	PX_MR_CLOSE,		/* until EOF */
	PX_MR_DONE,
};

struct px_mresp {
	uint8_t phase;		/* enum px_mresp_phase */
	int status;		/* final status, 0 before its head */
	uint64_t left;		/* PX_MR_LENGTH */
	struct http1_chunked ck;
};

enum px_uconn_state {
	PX_U_CONNECTING = 1,
	PX_U_BUSY,
	PX_U_IDLE,
	PX_U_MIRROR,
};

struct px_uconn {
	uint8_t kind;		/* PX_EV_UCONN */
	uint8_t state;
	bool closed, rd_ready, wr_ready, rd_eof, err, werr, rdhup, connected;
	int fd;
	struct px_worker *w;
	struct px_pool *pool;	/* NULL for mirrors */
	struct px_dconn *d;	/* attached request, or NULL */
	struct h2b *h2b;	/* HTTP/2 backend: the bridge read and written instead of fd (-1) */
	struct px_buf in;
	uint32_t requests;	/* requests started on this connection */
	struct px_timer t;
	struct px_uconn *next, *prev;	/* pool idle list / mirror list */
	struct px_uconn *dead_next;
	/* mirror (proxy_mirror.c): a shadow of one request */
	struct px_buf mout;		/* request bytes not written yet */
	struct px_dconn *mowner;	/* the stream still feeding it; NULL once its request is whole */
	struct px_uconn *mnext;		/* next shadow of mowner */
	struct px_mresp mresp;		/* its answer, read and dropped */
	uint32_t mhead_len;		/* its head's length: not counted against PX_MIRROR_PENDING_MAX */
	uint8_t mend;			/* enum px_stat it is counted in when closed, 0 = by its answer */
	bool mhead;			/* a HEAD request: no response body */
};

/* Connections to one host for one cluster, in one worker. */
struct px_pool {
	uint64_t cluster_id;
	uint32_t addr;		/* network order */
	uint16_t port;
	uint32_t src;		/* client pod IP (breakers are per source), 0 = gateway */
	uint32_t n_conns;	/* open (connecting, busy, idle) */
	struct px_uconn *idle;	/* LIFO: warmest first */
	struct px_dconn *pend_head, *pend_tail;	/* waiting for a connection */
	/* the newest config that used this pool: breakers need the cluster */
	struct px_wcfg *cfg;
	const struct l7_cluster *cluster;
};

enum px_dstate {
	PX_D_HEAD = 1,		/* waiting for / parsing a request head */
	PX_D_STREAM,		/* a request in flight */
	PX_D_TUNNEL,		/* after 101: raw both ways */
	PX_D_LINGER,		/* write side shut, draining input before close */
};

enum px_rphase {
	PX_R_NONE = 0,		/* no try on the wire */
	PX_R_HEAD,		/* waiting for the response head */
	PX_R_BODY,		/* relaying the response body */
	PX_R_DONE,		/* complete response relayed from the upstream buffer */
};

enum px_try_timer {
	PX_TT_NONE = 0,
	PX_TT_PERTRY,
	PX_TT_BACKOFF,
	PX_TT_DELAY,
};

/*
 * gRPC length-prefixed messages (1 flag byte, 4 length bytes big-endian,
 * payload) counted in a body byte stream fed in pieces: px_grpc_msgs_scan.
 */
struct px_grpc_msgs {
	uint64_t n;		/* messages whose prefix was seen */
	uint64_t left;		/* payload bytes of the current message still to pass */
	uint32_t len;		/* length being assembled from the prefix */
	uint8_t hdr;		/* prefix bytes of the next message seen (0..4) */
};

/* One request/response exchange; a downstream connection has at most one. */
struct px_stream {
	bool active;
	bool local;		/* answered by the proxy */
	bool committed;		/* response head queued to the client */
	bool req_done;		/* whole request body scanned */
	bool req_sent;		/* ... and written upstream */
	bool replay_ok;		/* every body byte sent so far is in replay */
	bool req_cb;		/* holds UP_CB_REQUESTS */
	bool retry_cb;		/* holds UP_CB_RETRIES for the current try */
	bool pending;		/* holds UP_CB_PENDING, queued on pool */
	bool host_started;	/* up_host_request_start done */
	bool redispatched;	/* a stale pooled connection was replaced once */
	bool dechunk;		/* HTTP/1.0 client, chunked response: strip framing */
	bool resp_keepalive;
	bool origin_ok;		/* CORS origin allowed */
	bool gateway;
	bool retried_status;	/* last response would have been retried */
	uint8_t req_mode, resp_mode;	/* enum http1_body */
	uint8_t rphase;
	uint8_t tt;		/* enum px_try_timer */
	uint16_t flags;		/* 1 << px_flag */
	int status;
	uint32_t tries;
	uint32_t n_avoid;
	uint32_t avoid[PX_MAX_TRIES];
	uint64_t req_left, resp_left;
	struct http1_chunked req_ck, resp_ck;
	uint32_t in_scan;	/* body bytes validated at d->in.off */
	uint32_t u_scan;	/* response bytes validated at u->in.off */

	struct px_wcfg *cfg;
	const struct l7_svc *svc;
	const struct l7_gateway *gw;
	const struct l7_vhost *vhost;
	const struct l7_route *route;
	const struct pol_http_match *matched;
	const struct l7_route_dest *dest;
	const struct l7_cluster *cluster;
	const struct l7_host *host;
	const struct l7_pod *source;
	struct px_cstat *cstat;
	struct px_uconn *u;
	struct px_pool *pool;			/* while pending */
	struct px_dconn *pend_next, *pend_prev;	/* pool queue */
	struct px_dconn *wpend_next, *wpend_prev; /* worker's pending list */

	uint32_t head_len;
	uint32_t uhead_len, uhead_sent, uhead_attempt_off;
	uint32_t replay_len, replay_sent;
	uint32_t resp_parsed;	/* response bytes already found incomplete */
	const char *rid;	/* x-request-id value */
	size_t rid_len;
	bool rid_gen;
	bool bare;		/* no parsed request (parse error, header timeout) */
	const struct l7_retry *retry;
	char rid_buf[37];
	char ck_gen[17];	/* httpCookie ttl: the cookie value set, "" none */
	uint32_t src_ip;	/* network order */
	int grpc;		/* telemetry: PROXY_GRPC_NONE / _UNKNOWN / grpc-status */
	uint32_t cb_src;	/* breaker/pool key: the client pod, 0 on gateways */
	uint16_t port;		/* service or gateway port */
	uint64_t start_ms, try_start_ms, resp_head_ms;
	uint64_t start_wall_ms;
	uint64_t bytes_rx, bytes_tx;	/* body bytes, for the access log */
	/* Istio's request/response sizes (proxy.h): client bytes forwarded after
	 * the head (body, tunnel) and every byte written back to the client */
	uint64_t req_wire, resp_wire;
	/* gRPC messages each way (istio_request/response_messages_total), gRPC requests only */
	struct px_grpc_msgs req_msgs, resp_msgs;
	struct px_uconn *shadows;	/* mirrors fed the request body as it is scanned */

	/* ---- not reset between requests (px_stream_reset zeroes up to here) ---- */
	/* the parsed request: req_mem once a head was parsed, else px_req_none */
	const struct http1_msg *req;
	struct http1_msg *req_mem;	/* cut to its headers (http1_msg_size), pointers into head */
	uint32_t req_cap;
	char *head;
	char *uhead;		/* the upstream head; its tail is x-envoy-attempt-count */
	char *replay;		/* request body bytes sent so far, for retries */
	uint32_t head_cap, uhead_cap, replay_cap;
	struct px_timer t_route, t_try;
};

struct px_dconn {
	uint8_t kind;		/* PX_EV_DCONN */
	uint8_t state;
	bool closed, rd_ready, wr_ready, rd_eof, err, rdhup;
	bool close_after;	/* close once the current response is out */
	bool in_runq;
	bool in_pump;		/* px_dconn_pump on the stack */
	bool served;		/* a request ended on it (an idle one is kept-alive) */
	bool gateway;
	bool h2;		/* an HTTP/2 stream (h2b) or a connection handed to proxy_h2: */
				/* no max_conns slot, not counted in cx (its TCP connection is) */
	int fd;			/* -1 for an HTTP/2 stream */
	struct h2b *h2b;	/* HTTP/2 stream: the bridge read and written instead of fd */
	struct px_worker *w;
	uint32_t peer_addr;	/* network order */
	uint16_t peer_port;
	uint16_t listen_port;
	struct proxy_orig orig;
	struct px_buf in;
	struct px_buf out;	/* heads and local replies to the client */
	struct px_timer t;
	uint64_t last_io, head_start;
	uint32_t parsed;	/* bytes already found an incomplete head */
	struct px_stream st;
	struct px_dconn *next, *prev;	/* worker's connection list */
	struct px_dconn *rq_next;	/* run queue */
	struct px_dconn *dead_next;
};

/* Per-cluster counters of one worker. */
struct px_cstat {
	uint64_t id;
	char *name;
	uint64_t rq, rq_2xx, rq_3xx, rq_4xx, rq_5xx, retries, overflow, timeouts, cx_fail;
};

struct px_worker {
	struct proxy *p;
	int idx;
	pthread_t th;
	bool started;
	int ep;
	int wakefd;
	uint8_t wake_kind;	/* PX_EV_WAKE: epoll data points here */
	uint64_t now;		/* CLOCK_MONOTONIC ms, refreshed per loop */
	uint64_t rng;
	struct px_listener **ls;
	size_t n_ls, cap_ls;
	struct px_wcfg *cfg;
	struct px_wcfg *old_cfgs;	/* retired, freed when unused */
	_Atomic(struct l7_config *) mail;
	struct px_timer **heap;
	size_t n_heap, cap_heap;
	struct px_timer tick;
	struct px_pool **pools;		/* open addressing */
	size_t n_pools, cap_pools;
	size_t n_idle;			/* pooled connections idle, all pools */
	struct px_dconn *conns;
	struct px_dconn *runq, *runq_tail;
	struct px_dconn *dead_d;
	struct px_dconn *dfree;		/* closed HTTP/2 stream connections, buffers kept */
	uint32_t n_dfree;
	struct http1_msg req_parse;	/* a request head is parsed here, then copied to its stream */
	char *bstash;			/* empty read buffers, linked through their first bytes */
	uint32_t n_bstash;		/* <= PX_BUF_STASH_MAX */
	struct px_uconn *dead_u;
	struct px_uconn *mirrors;
	uint32_t n_mirrors;
	uint64_t mirror_pending;	/* bytes all shadows hold unsent (PX_MIRROR_WORKER_MAX) */
	struct px_dconn *pend, *pend_tail; /* streams waiting for a connection, oldest first */
	size_t n_pend;
	struct px_dconn **pend_snap;	/* px_pending_retry's snapshot */
	size_t cap_snap;
	atomic_bool pend_kick;		/* a connection slot was freed: retry w->pend */
	uint64_t accept_resume_at;
	struct px_h2w *h2;		/* proxy_h2.c state, NULL until first used */
	/* gauges px_h2_tick publishes once a second (relaxed stores): open client */
	/* HTTP/2 streams, and the bytes of I/O buffers they hold end to end */
	uint64_t h2_streams_open, h2_stream_buf_bytes;
	uint64_t drain_since;		/* proxy_drain: when this worker began, 0 = not yet */
	atomic_bool drained;		/* no client connection left (HTTP/1.1 or HTTP/2) */
	char *log;
	size_t log_len;
	char date[40];			/* IMF-fixdate cache for local replies */
	uint64_t date_sec;
	pthread_mutex_t cs_mu;		/* guards cstats insertions vs. readers */
	struct px_cstat **cstats;
	size_t n_cstats, cap_cstats;
	/* request series for /metrics (proxy_metrics.c), same locking as cstats */
	struct px_rstat **rstats;
	size_t n_rstats, cap_rstats;
	uint64_t s[PX_S_MAX] __attribute__((aligned(64)));
};

struct proxy {
	struct proxy_opts o;
	int nw;
	struct px_worker *w;
	uint16_t port;			/* bound mesh port */
	atomic_bool stop;
	atomic_bool draining;		/* proxy_drain: GOAWAY, let streams finish */
	pthread_mutex_t mu;
	struct l7_config *cfg;		/* the latest, one reference */
	atomic_uint n_conns;		/* downstream connections, all workers (max_conns) */
	bool wait_ev;			/* the registry wakes workers with pending requests */
	char listener_err[160];
	pthread_mutex_t err_mu;
};

/* ---- proxy.c: shared services for the engine ---- */
static inline void px_stat_inc(struct px_worker *w, enum px_stat k)
{
	__atomic_store_n(&w->s[k], w->s[k] + 1, __ATOMIC_RELAXED);
}

static inline void px_cs_add(uint64_t *c, uint64_t v)
{
	__atomic_store_n(c, *c + v, __ATOMIC_RELAXED);
}

/* A downstream connection's slot under max_conns (px_accept takes it). */
static inline void px_cx_slot_put(struct proxy *p)
{
	atomic_fetch_sub_explicit(&p->n_conns, 1, memory_order_relaxed);
}

uint64_t px_rand(struct px_worker *w);
/* read / writev on a connection: its socket, or an HTTP/2 stream's bridge (b non-NULL). */
ssize_t px_io_read(int fd, struct h2b *b, void *p, size_t n);
ssize_t px_io_writev(int fd, struct h2b *b, const struct iovec *iov, int c);
void px_timer_arm(struct px_worker *w, struct px_timer *t, uint64_t at);
void px_timer_cancel(struct px_timer *t);
void px_timer_remove(struct px_worker *w, struct px_timer *t);
void px_runq_add(struct px_dconn *d);
/* A non-blocking connect() after an epoll event: 1 connected, 0 not yet, -1 failed. */
int px_connect_result(int fd, uint32_t events);
struct px_cstat *px_cstat_get(struct px_worker *w, const struct l7_cluster *c);
/* proxy_metrics.c: count one finished request into its series (hot path). */
/* c NULL: a request no cluster took, labelled with svc (a Host; "" = unknown). */
void px_rstat_record(struct px_worker *w, uint32_t src_ip, uint32_t dst_ip,
		     const struct l7_cluster *c, const char *svc, int status, int grpc,
		     uint16_t flags, uint64_t dur_ms, uint64_t req_bytes, uint64_t resp_bytes,
		     uint64_t req_msgs, uint64_t resp_msgs);
void px_rstat_free(struct px_worker *w);
const char *px_date(struct px_worker *w);
void px_log_append(struct px_worker *w, const char *s, size_t n);
void px_wcfg_put(struct px_worker *w, struct px_wcfg *c);

struct px_pool *px_pool_get(struct px_worker *w, struct px_wcfg *cfg,
			    const struct l7_cluster *c, const struct l7_host *h, uint32_t src);
struct px_uconn *px_uconn_connect(struct px_worker *w, struct px_pool *pool,
				  uint32_t addr, uint16_t port, uint64_t timeout_ms, int *err);
void px_uconn_close(struct px_uconn *u);
void px_uconn_release(struct px_uconn *u, bool reusable);
/*
 * Read buffers are taken when bytes are to be read and given back once
 * empty (px_buf_drop), so an idle connection or an open HTTP/2 stream
 * with nothing in flight holds none. Empty PX_BUF_SIZE buffers wait in
 * the worker's stash (at most PX_BUF_STASH_MAX) for the next reader.
 */
char *px_buf_get(struct px_worker *w);
void px_buf_drop(struct px_worker *w, struct px_buf *b);
void px_buf_stash_free(struct px_worker *w);
void px_uconn_event(struct px_uconn *u, uint32_t events);
void px_pool_service(struct px_worker *w, struct px_pool *pool);
struct px_uconn *px_pool_take_idle(struct px_pool *pool);
/* Close the oldest idle connection of another pool of pl's cluster and source: true if one was. */
bool px_pool_reclaim_idle(struct px_worker *w, struct px_pool *pl);
/* Retry every pending stream of w, oldest first. */
void px_pending_retry(struct px_worker *w);
/* Have w retry its pending streams from its event loop (any thread). */
void px_pending_kick(struct px_worker *w);
/* h2: the backend speaks HTTP/2 (a cluster's pool settings), NULL = HTTP/1.1; pool may be NULL. */
struct px_uconn *px_uconn_open(struct px_worker *w, struct px_pool *pool,
			       const struct l7_pool_cfg *h2, uint32_t addr, uint16_t port,
			       uint64_t timeout_ms, int *err);

/*
 * ---- proxy_mirror.c: shadows (Istio mirror/mirrors) ----
 * A shadow is an upstream connection of its own (PX_U_MIRROR) that gets a
 * copy of the request as the engine scans it from the client: head,
 * body bytes and trailers in the client's framing (HTTP/2 clients' come
 * chunked), so streaming gRPC calls and large bodies are mirrored
 * without buffering the whole message. Its answer is read and dropped as
 * it arrives. Fire and forget: it never slows or fails the request it
 * copies; one that cannot keep up (more than PX_MIRROR_PENDING_MAX bytes
 * unsent) is abandoned (closed: an HTTP/2 shadow stream is reset).
 */
/*
 * Start a shadow of d's request to host h of cluster c. buf[0..len)
 * (cap bytes, malloc'd, taken) holds its head and the body bytes scanned
 * so far; whole: nothing follows, else px_mirror_feed the rest.
 */
void px_mirror_start(struct px_dconn *d, const struct l7_cluster *c, const struct l7_host *h,
		     char *buf, uint32_t len, uint32_t cap, bool whole);
/* Request bytes of d just scanned (body, chunk framing, trailers): to each of its shadows. */
void px_mirror_feed(struct px_dconn *d, const char *p, size_t n);
/* d's request is whole (its shadows finish on their own) or ended without it (they are reset). */
void px_mirror_detach(struct px_dconn *d, bool whole);
/* A shadow's events, and its close (counting how it ended); for proxy.c. */
void px_mirror_io(struct px_uconn *u);
void px_mirror_closed(struct px_uconn *u);

/* ---- proxy_http.c: the engine ---- */
/* Takes fd and the connection's max_conns slot; gives both back on failure. */
void px_dconn_open(struct px_worker *w, int fd, bool gateway, uint16_t listen_port,
		   uint32_t peer_addr, uint16_t peer_port, const struct proxy_orig *orig);
/* An HTTP/2 stream's engine connection on bridge b (no fd, no max_conns slot); NULL on ENOMEM. */
struct px_dconn *px_dconn_open_stream(struct px_worker *w, struct h2b *b, uint16_t listen_port,
				      uint32_t peer_addr, uint16_t peer_port,
				      const struct proxy_orig *orig);
void px_dconn_event(struct px_dconn *d, uint32_t events);
/* Drain step (every loop turn while draining): true when no HTTP/1.1 client connection is left. */
bool px_http_drain(struct px_worker *w);
void px_dconn_pump(struct px_dconn *d);
void px_dconn_close(struct px_dconn *d, int flag);
void px_dconn_timer(struct px_dconn *d);
void px_stream_timer(struct px_dconn *d, struct px_timer *t);
void px_stream_connect_failed(struct px_dconn *d);
void px_stream_pending_retry(struct px_dconn *d);

/* ---- proxy_util.c: pure helpers ---- */
void px_uuid4(uint64_t a, uint64_t b, char out[37]);
bool px_strmatch(const struct pol_strmatch *m, const char *s, size_t n);
bool px_retry_status(const struct l7_retry *r, int status);
bool px_retry_fail(const struct l7_retry *r, enum px_fail f);
/* gRPC: retryOn cancelled/deadline-exceeded/resource-exhausted/internal/unavailable. */
bool px_retry_grpc(const struct l7_retry *r, int grpc_status);
/* grpc-status in an HTTP/1.1 chunked trailer block p[0..n) (ends at the last chunk), or -1. */
int px_grpc_status_in_trailers(const char *p, size_t n);
/* Count the gRPC messages that start in p[0..n), the next piece of a body. */
void px_grpc_msgs_scan(struct px_grpc_msgs *g, const char *p, size_t n);
/*
 * Feed the next bytes of a response that is dropped: returns how many of
 * p[0..n) it used (a head is used whole once complete; until then 0, the
 * caller feeds it again with more) or -1 when malformed. head_req: the
 * request was HEAD. Done when r->phase is PX_MR_DONE.
 */
int px_mresp_scan(struct px_mresp *r, const char *p, size_t n, bool head_req);
/* grpc-status value: 0..16 (others as given, up to 99), -1 if malformed. */
int px_grpc_status_parse(const char *v, size_t n);
/* grpc-timeout (1..8 digits + H/M/S/m/u/n) in ms, rounded up; -EINVAL if malformed. */
int px_grpc_timeout_ms(const char *v, size_t n, uint64_t *ms);
uint64_t px_backoff_ms(uint64_t base_ms, uint32_t retry_n, uint64_t rnd);
extern const struct l7_retry px_retry_default;
int px_redirect_location(const struct pol_redirect *rd, const char *path, size_t path_len,
			 const char *query, size_t query_len, const char *host, size_t host_len,
			 uint16_t req_port, char *out, size_t outlen);
bool px_hdr_listed(const char *name, size_t n, char *const *list, size_t n_list);
bool px_kv_listed(const char *name, size_t n, const struct pol_kv *kv, size_t n_kv);
const char *px_reason(int status);
size_t px_flags_format(uint16_t flags, char *out, size_t outlen);
size_t px_time_format(uint64_t wall_ms, char *out, size_t outlen);
/*
 * a[0..an) equals lit, ASCII case-insensitively (inline: strlen of a
 * literal folds away; field names are short, so a byte loop beats a call
 * to strncasecmp, which the hop-by-hop and header class checks made per
 * field of every head).
 */
static inline bool px_ieq(const char *a, size_t an, const char *lit)
{
	size_t ln = __builtin_strlen(lit);

	return an == ln && http1_ascii_ieq(a, lit, ln);
}

#endif /* SOCKMESH_PROXY_INT_H */
