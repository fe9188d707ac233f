/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * proxy_h2: HTTP/2 (h2c) on both sides of the L7 proxy, on libnghttp2.
 *
 * Shape: the request engine (proxy_http.c) is one code path for both
 * protocols (router, retries, timeouts, faults, breakers, outlier
 * detection, mirrors, telemetry). An HTTP/2 stream is an engine connection
 * without a file descriptor: its bytes go through an in-memory bridge
 * (struct h2b) that carries one HTTP/1.1 exchange per stream:
 *
 *   client h2 conn --stream--> bridge ==h1 pipe==> engine dconn (fd -1)
 *   ==h1 pipe==> engine uconn (fd -1) --> bridge --stream--> backend h2 conn
 *   (pooled per backend per worker)
 *
 * so each stream is routed and load balanced on its own exactly like an
 * HTTP/1.1 request (per-request balancing of one client connection), and
 * either side may be HTTP/1.1 over TCP instead. The pipe replaces a socket
 * in the engine's four I/O calls (px_h2_pipe_*) and its events come from
 * px_h2_run, not epoll: no syscall, descriptor or epoll round trip per
 * stream. A client's request head goes to the engine parsed
 * (px_h2_pipe_head, no text); the rest is still HTTP/1.1: the engine's
 * upstream request and response heads are parsed once more by the bridge,
 * a backend's response head is written as text for the engine, bodies are
 * chunk-framed (trailers as chunked trailers). Measured (callgrind,
 * README scenario 6), the text itself is a few percent of the worker's
 * instructions: the per-field work (checks, routing, edits) stays with
 * any handoff.
 *
 * Request pseudo-headers are kept in one per-bridge buffer (no allocation
 * per stream), chunk-size and status lines are formatted by hand, and the
 * sessions keep no closed streams (no RFC 7540 priority tree to feed).
 * libnghttp2 allocates through a per-worker nghttp2_mem: free lists in
 * 64 B..4 KiB classes by halves (64, 96, 128, 192, ...; at most 128 KiB
 * kept per class) take the several small blocks per stream it allocates
 * and frees in bursts of as many streams as are in flight, past what
 * malloc's thread cache holds.
 * Measured (README scenario 6): above HAProxy's requests per CPU second,
 * not the 1.5x; what is left is spread over the kernel's TCP
 * (~40% of the worker's time), libnghttp2 (~27%; its HPACK most of it; two
 * sessions per request), the engine (~24%) and libc (~9%), with no
 * single function above ~5%.
 * The bridges' byte queues come from the same per-worker free lists.
 *
 * Flow control end to end: DATA is acknowledged (WINDOW_UPDATE) only once
 * the engine read it from the pipe; the engine's writes stop at
 * H2_PIPE_MAX unparsed bytes, and a bridge parses only while its stream has
 * less than H2_BODY_MAX queued for nghttp2. Frames are written once per
 * connection per loop turn (px_h2_flush). Closed stream connections and
 * bridges are recycled (at most 256 of each per worker).
 *
 * Memory per open stream: buffers are held only while bytes are in them.
 * The engine's read buffers go back to a per-worker stash once empty
 * (px_buf_drop), a bridge's queues are freed once empty and its
 * pseudo-header values once the head is written (b_trim), and the
 * engine keeps the parsed request cut to its headers. An open stream with
 * nothing in flight holds its engine connections (~1 KiB), two bridges,
 * its request head (copied for retries) and libnghttp2's stream state:
 * ~5 KiB in all (README scenario 6).
 *
 * Everything here belongs to one worker thread.
 */
#ifndef SOCKMESH_PROXY_H2_H
#define SOCKMESH_PROXY_H2_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct px_worker;
struct px_dconn;
struct px_pool;
struct px_uconn;
struct h2b;
struct l7_pool_cfg;

/* Default limits against hostile peers (README "HTTP/2 limits"). */
/* The settable ones (proxy_h2_limits, the agent's --h2-* flags) are in proxy.h. */
#define H2_MAX_OUTBOUND_ACK	1000	/* queued SETTINGS/PING ACKs (floods) */
#define H2_RESET_BURST		1000	/* client RST_STREAMs: token bucket burst */
#define H2_BODY_MAX		(64 * 1024)	/* queued body bytes per stream */

/*
 * d carries a complete client connection preface in d->in: turn the
 * connection into an HTTP/2 server session (d is closed, its socket,
 * buffered bytes and max_conns slot move on). Returns false when the
 * session could not be set up (the connection is closed either way).
 */
bool px_h2_takeover(struct px_dconn *d);

/*
 * The engine wants a connection to an HTTP/2 backend: returns a bridge whose
 * HTTP/1.1 requests (written with px_h2_pipe_writev) are sent as streams
 * over this worker's HTTP/2 connections to addr:port, or NULL with *err set.
 * From pool: maxRequestsPerConnection (streams per connection over its
 * life), maxConcurrentStreams (at once, besides the backend's SETTINGS),
 * idleTimeout (0 = 60 s).
 */
struct h2b *px_h2_up_open(struct px_worker *w, uint32_t addr, uint16_t port,
			  const struct l7_pool_cfg *pool, int *err);

/*
 * Bind the engine connection that owns the bridge (px_uconn_connect), so
 * that a failed HTTP/2 connect reaches the engine as a connect failure
 * (retry on connect-failure, outlier local origin), not as a reset.
 */
void px_h2_up_bind(struct h2b *b, struct px_uconn *u);

/*
 * The engine's end of a bridge, in place of a socket (the engine connection
 * has fd -1 and h2b set). Events reach the engine as px_dconn_event /
 * px_uconn_event calls from px_h2_run with EPOLLIN | EPOLLOUT, plus
 * EPOLLRDHUP once the bridge is closed, so the engine's edge-triggered
 * bookkeeping is the same as for a socket.
 *   px_h2_pipe_read: bytes copied (> 0), 0 = EOF, -EAGAIN = nothing yet.
 *   px_h2_pipe_writev: bytes taken (short when the bridge holds
 *     H2_PIPE_MAX unparsed), -EAGAIN = none, -EPIPE = bridge closed.
 *   px_h2_pipe_close: the engine closed its end; the bridge cancels an
 *     unfinished stream and is freed once it is closed too.
 */
#define H2_PIPE_MAX		(64 * 1024)	/* engine bytes the bridge holds unparsed */
ssize_t px_h2_pipe_read(struct h2b *b, void *buf, size_t room);
/*
 * The request head of a client stream, handed to the engine parsed, with
 * no HTTP/1.1 text: m filled as http1_parse_request would fill it for the
 * same head (http1_request_from_fields), names and values in
 * head[0..*len), which stays valid until the next px_h2_pipe_read / event
 * (the engine copies it at once). 1 = a head, 0 = none (none staged, or the
 * stream is gone), < 0 = HTTP1_E* (the engine answers 400/431 as for text).
 * Bytes read after it are the body, chunk-framed.
 */
struct http1_msg;
int px_h2_pipe_head(struct h2b *b, struct http1_msg *m, const char **head, size_t *len);
ssize_t px_h2_pipe_writev(struct h2b *b, const struct iovec *iov, int n_iov);
void px_h2_pipe_close(struct h2b *b);

/* epoll event for a PX_EV_H2 object (an HTTP/2 connection). */
void px_h2_event(void *obj, uint32_t events);

/* Move bytes of bridges woken during session calls (after every event batch). */
void px_h2_run(struct px_worker *w);
/* Write what the connections queued this turn: one write per connection (end of every turn). */
void px_h2_flush(struct px_worker *w);
/* Bridges still queued: the loop must not sleep. */
bool px_h2_busy(const struct px_worker *w);
/* Free closed objects (after the event batch, like px_reap). */
void px_h2_reap(struct px_worker *w);

/* Once a second: idle upstream connections. */
void px_h2_tick(struct px_worker *w);

/*
 * Graceful drain, called every loop turn once the proxy drains (since = when
 * it began): each client connection gets GOAWAY(2^31-1), after
 * PX_H2_DRAIN_NOTICE_MS the GOAWAY with the last stream it processed, and
 * is closed once its streams completed (Envoy's drain sequence). True when
 * no client HTTP/2 connection is left.
 */
#define PX_H2_DRAIN_NOTICE_MS	100
bool px_h2_drain(struct px_worker *w, uint64_t since);

/* Worker exit: GOAWAY and close everything. */
void px_h2_shutdown(struct px_worker *w);

/*
 * The engine marks its own replies on an HTTP/2 stream with this header
 * (the bridge strips it): only those become gRPC trailers-only statuses.
 */
#define PX_H2_LOCAL_HDR		"x-sockmesh-local"

/* Envoy's mapping of an HTTP status to a gRPC status (local replies). */
int px_h2_grpc_from_http(int status);
/* Envoy's mapping of a grpc-status to an HTTP status (retries, outlier detection). */
int px_h2_http_from_grpc(int grpc_status);

#endif /* SOCKMESH_PROXY_H2_H */
