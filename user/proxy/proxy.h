/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * proxy: the agent's HTTP/1.1 proxy. One worker thread per core, each with
 * its own epoll loop, its own SO_REUSEPORT listener(s) and its own upstream
 * connection pools. Mesh connections arrive on the L7 listener because
 * connect4 rewrote their destination; the proxy recovers the original VIP
 * through the orig_dst callback and refuses connections without one (no
 * open relay). Gateway servers of the config get their own listeners.
 */
#ifndef SOCKMESH_PROXY_H
#define SOCKMESH_PROXY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/admin_api.h"
#include "compile/l7.h"
#include "proxy/upstream.h"

struct proxy;

struct proxy_orig {
	uint32_t vip;			/* network order */
	uint16_t port;			/* host order */
	uint32_t client_ip;		/* network order: the client pod */
	uint64_t netns_cookie;
};

/* Returns 0 and fills o, or -ENOENT (not redirected by connect4: refuse). */
typedef int (*proxy_orig_dst_fn)(void *ctx, uint32_t peer_addr, uint16_t peer_port,
				 struct proxy_orig *o);

struct proxy_opts {
	int workers;			/* 0 = one per online CPU */
	uint32_t listen_addr;		/* network order; the mesh L7 listener */
	uint16_t listen_port;		/* host order; default 15001 */
	uint32_t gateway_bind;		/* network order; default for Gateway servers */
	uint32_t max_conns;		/* downstream connections open at once, all workers and
					 * listeners together; over: accepted and closed at once
					 * (downstream_cx_overflow). 0 = no limit */
	uint64_t header_timeout_ms;	/* a request head must be whole this long after its
					 * first byte, else 408 and close (slowloris) */
	uint64_t idle_timeout_ms;	/* downstream keep-alive idle */
	proxy_orig_dst_fn orig_dst;
	void *orig_dst_ctx;
	struct up_registry *up;		/* shared LB / breaker / outlier state */
	int access_log_fd;		/* -1 = off; Envoy's default text format */
	/*
	 * Called with every mesh-side socket: open = true once it is
	 * connected (accepted from a pod; connected to a backend), false just
	 * before it is closed. The agent puts it into the sockhash so the
	 * proxy's hops ride the sk_msg short cut too. May be NULL.
	 */
	void (*sock_hook)(void *ctx, int fd, bool open);
	void *sock_hook_ctx;
	uint64_t stream_idle_timeout_ms; /* no bytes either way while a request is
					 * in flight; 0 = 300 s (Envoy's default) */
	/*
	 * The workers' clock in milliseconds (every timeout, idle timer and
	 * back-off runs on it); NULL = CLOCK_MONOTONIC. Tests inject one and
	 * call proxy_kick after moving it.
	 */
	uint64_t (*clock_ms)(void *ctx);
	void *clock_ctx;
	/*
	 * HTTP/2 limits against hostile clients (0 = the default in
	 * proxy_h2.h): streams a client may open at once (SETTINGS), decoded
	 * header list bytes per block (HPACK bomb), CONTINUATION frames per
	 * block, RST_STREAMs per second after a burst of 1000 (rapid reset),
	 * entries per SETTINGS frame. Over a limit: the connection gets
	 * GOAWAY (ENHANCE_YOUR_CALM / PROTOCOL_ERROR), the stream a reset.
	 */
	/* 0 = default: PROXY_H2_* below (the agent's --h2-* flags) */
	struct proxy_h2_limits {
		uint32_t max_concurrent_streams;
		uint32_t max_header_list;
		uint32_t max_continuations;
		uint32_t reset_rate;
		uint32_t max_settings;
	} h2;
};

/* Defaults against hostile HTTP/2 peers (README "Hostile HTTP/2 clients"). */
#define PROXY_H2_MAX_CONCURRENT		256		/* streams per client connection (SETTINGS) */
#define PROXY_H2_MAX_HEADER_LIST	(64 * 1024)	/* bytes, decoded (HPACK bomb) */
#define PROXY_H2_MAX_CONTINUATIONS	8		/* CONTINUATION frames per header block */
#define PROXY_H2_MAX_SETTINGS		32		/* entries per SETTINGS frame */
#define PROXY_H2_RESET_RATE		33		/* client RST_STREAMs per second after the burst */

/*
 * Bind listeners and start the workers with config (takes one reference,
 * also on failure). Returns NULL with err filled on failure. Timeouts of
 * 0 take defaults: header 10 s, keep-alive idle 60 s. listen_port 0 binds
 * an ephemeral port (see proxy_listen_port).
 */
struct proxy *proxy_start(const struct proxy_opts *o, struct l7_config *config,
			  char *err, size_t errlen);

/* The mesh listener's bound port (host order). */
uint16_t proxy_listen_port(const struct proxy *p);

/* Wake every worker to reread an injected clock (proxy_opts.clock_ms). */
void proxy_kick(struct proxy *p);

/* Swap the config (takes one reference); in-flight requests keep theirs. */
void proxy_set_config(struct proxy *p, struct l7_config *config);

/* Stop accepting, close everything, join the workers, free. */
/*
 * Graceful drain before proxy_stop (agent restart): HTTP/2 clients get GOAWAY,
 * HTTP/1.1 connections idle between requests are closed and the others close
 * after their current response (Connection: close); streams and requests in
 * flight get up to ms milliseconds to complete. Returns when no client
 * connection is left or the time is up; what is left is closed by proxy_stop.
 */
void proxy_drain(struct proxy *p, unsigned int ms);
void proxy_stop(struct proxy *p);

/* Counters: requests by code class, overflows (UO), no healthy (UH), retries, ... */
json_t *proxy_stats_json(struct proxy *p);

/*
 * Request series for Istio's istio_requests_total,
 * istio_request_duration_milliseconds, istio_request_bytes,
 * istio_response_bytes and, for gRPC, istio_request_messages_total /
 * istio_response_messages_total (length-prefixed messages each way). The hot path stores ids only (pod IPs, cluster);
 * the caller resolves labels from its current l7_config.
 *
 * Sizes are wire bytes on the client's connection, as Istio's stats filter
 * takes them (downstream bytes meter): request = head as received + body
 * bytes forwarded upstream; response = every byte written back to the
 * client for this request (head, body, interim 1xx).
 */
#define PROXY_N_BUCKETS SM_HIST_N_BUCKETS
/* Envoy's default histogram bounds, which Istio keeps for durations (ms) and sizes (bytes). */
extern const double proxy_hist_bounds[PROXY_N_BUCKETS];

/* One histogram: non-cumulative counts; over the last bound: count - sum of buckets. */
struct proxy_hist {
	uint64_t sum;
	uint64_t buckets[PROXY_N_BUCKETS];
};

struct proxy_rseries {
	uint32_t src_ip;		/* network order; 0 = gateway / unknown */
	uint32_t dst_ip;		/* the chosen host; 0 = none (local reply) */
	char fqdn[256];			/* destination service; "" = unknown */
	int code;			/* 0 = no response */
	int grpc;			/* PROXY_GRPC_NONE (request_protocol http), PROXY_GRPC_UNKNOWN
					 * (grpc, no grpc-status seen) or the grpc-status */
	char flags[64];			/* Envoy response flags, "-" = none */
	uint64_t count;
	uint64_t req_msgs, resp_msgs;	/* gRPC messages each way (gRPC requests only) */
	struct proxy_hist dur_ms, req_bytes, resp_bytes;
};

#define PROXY_GRPC_NONE		(-1)
#define PROXY_GRPC_UNKNOWN	(-2)

/* Merged over workers, sorted by (fqdn, src, dst, code, grpc, flags). *out malloc'd. Returns 0 or -ENOMEM. */
int proxy_request_series(struct proxy *p, struct proxy_rseries **out, size_t *n);

#endif /* SOCKMESH_PROXY_H */
