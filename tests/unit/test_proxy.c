// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Proxy tests: the pure helpers (table-driven), then the real engine on
 * loopback: proxy_start with a hand-built l7_config and an orig_dst stub,
 * a thread-per-connection test backend, plain blocking clients.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "proxy/proxy_h2.h"
#include "proxy/proxy_int.h"
#include "test.h"
#include "test_loopback.h"

/* ---- pure helpers ---- */

TEST(proxy_uuid4_format)
{
	char a[37], b[37];

	px_uuid4(0x0123456789abcdefull, 0xfedcba9876543210ull, a);
	px_uuid4(1, 2, b);
	ASSERT_EQ(strlen(a), 36);
	ASSERT_EQ(a[8], '-');
	ASSERT_EQ(a[13], '-');
	ASSERT_EQ(a[14], '4');
	ASSERT_TRUE(strchr("89ab", a[19]) != NULL);
	ASSERT_TRUE(strcmp(a, b) != 0);
}

TEST(proxy_retry_decisions)
{
	static const struct {
		uint32_t on;
		uint16_t code;
		int status;
		bool want;
	} st[] = {
		{ L7_RETRY_5XX, 0, 500, true },
		{ L7_RETRY_5XX, 0, 503, true },
		{ L7_RETRY_5XX, 0, 404, false },
		{ L7_RETRY_GATEWAY_ERROR, 0, 500, false },
		{ L7_RETRY_GATEWAY_ERROR, 0, 502, true },
		{ L7_RETRY_GATEWAY_ERROR, 0, 504, true },
		{ L7_RETRY_RETRIABLE_4XX, 0, 409, true },
		{ L7_RETRY_RETRIABLE_4XX, 0, 404, false },
		{ L7_RETRY_STATUS_CODES, 429, 429, true },
		{ L7_RETRY_CONNECT_FAILURE, 0, 503, false },
		{ L7_RETRY_RESET, 0, 503, false },
	};
	static const struct {
		uint32_t on;
		enum px_fail f;
		bool want;
	} ft[] = {
		{ L7_RETRY_5XX, PX_FAIL_TIMEOUT, true },
		{ L7_RETRY_5XX, PX_FAIL_CONNECT, true },
		{ L7_RETRY_GATEWAY_ERROR, PX_FAIL_RESET, true },
		{ L7_RETRY_RESET, PX_FAIL_TIMEOUT, true },
		{ L7_RETRY_CONNECT_FAILURE, PX_FAIL_CONNECT, true },
		{ L7_RETRY_CONNECT_FAILURE, PX_FAIL_RESET, false },
		{ L7_RETRY_CONNECT_FAILURE, PX_FAIL_TIMEOUT, false },
		{ L7_RETRY_RETRIABLE_4XX, PX_FAIL_RESET, false },
		{ L7_RETRY_5XX, PX_FAIL_NONE, false },
	};
	size_t i;

	for (i = 0; i < sizeof(st) / sizeof(st[0]); i++) {
		struct l7_retry r = { .attempts = 2, .on = st[i].on };

		if (st[i].code) {
			r.codes[0] = st[i].code;
			r.n_codes = 1;
		}
		if (!ASSERT_EQ(px_retry_status(&r, st[i].status), st[i].want))
			fprintf(stderr, "  status case %zu\n", i);
	}
	for (i = 0; i < sizeof(ft) / sizeof(ft[0]); i++) {
		struct l7_retry r = { .attempts = 2, .on = ft[i].on };

		if (!ASSERT_EQ(px_retry_fail(&r, ft[i].f), ft[i].want))
			fprintf(stderr, "  fail case %zu\n", i);
	}
	/* Istio's default: connect failures and 503 only */
	ASSERT_TRUE(px_retry_status(&px_retry_default, 503));
	ASSERT_FALSE(px_retry_status(&px_retry_default, 500));
	ASSERT_TRUE(px_retry_fail(&px_retry_default, PX_FAIL_CONNECT));
	ASSERT_FALSE(px_retry_fail(&px_retry_default, PX_FAIL_RESET));
	ASSERT_EQ(px_retry_default.attempts, 2);
	/* ... and gRPC's unavailable and cancelled (Istio's default retryOn) */
	ASSERT_TRUE(px_retry_grpc(&px_retry_default, 14));
	ASSERT_TRUE(px_retry_grpc(&px_retry_default, 1));
	ASSERT_FALSE(px_retry_grpc(&px_retry_default, 4));
	ASSERT_FALSE(px_retry_grpc(&px_retry_default, 0));
}

TEST(proxy_grpc_helpers)
{
	static const struct {
		const char *v;
		int rc;
		uint64_t ms;
	} to[] = {
		{ "1S", 0, 1000 }, { "500m", 0, 500 }, { "2M", 0, 120000 }, { "1H", 0, 3600000 },
		{ "1500u", 0, 2 }, { "1n", 0, 1 }, { "0m", 0, 0 }, { "99999999S", 0, 99999999000ULL },
		{ "123456789S", -EINVAL, 0 },	/* 9 digits */
		{ "S", -EINVAL, 0 }, { "10", -EINVAL, 0 }, { "1s", -EINVAL, 0 }, { "-1S", -EINVAL, 0 },
		{ "", -EINVAL, 0 },
	};
	static const struct {
		uint32_t on;
		int g;
		bool want;
	} rt[] = {
		{ L7_RETRY_GRPC_CANCELLED, 1, true }, { L7_RETRY_GRPC_DEADLINE, 4, true },
		{ L7_RETRY_GRPC_EXHAUSTED, 8, true }, { L7_RETRY_GRPC_INTERNAL, 13, true },
		{ L7_RETRY_GRPC_UNAVAILABLE, 14, true }, { L7_RETRY_GRPC_UNAVAILABLE, 13, false },
		{ L7_RETRY_5XX, 14, false },	/* 5xx is about :status, not grpc-status */
		{ ~0u, 0, false }, { ~0u, 2, false },
	};
	size_t i;

	for (i = 0; i < sizeof(to) / sizeof(to[0]); i++) {
		uint64_t ms = 7;
		int rc = px_grpc_timeout_ms(to[i].v, strlen(to[i].v), &ms);

		if (!ASSERT_EQ(rc, to[i].rc) || (!rc && !ASSERT_EQ(ms, to[i].ms)))
			fprintf(stderr, "  grpc-timeout \"%s\"\n", to[i].v);
	}
	for (i = 0; i < sizeof(rt) / sizeof(rt[0]); i++) {
		struct l7_retry r = { .attempts = 1, .on = rt[i].on };

		if (!ASSERT_EQ(px_retry_grpc(&r, rt[i].g), rt[i].want))
			fprintf(stderr, "  grpc retry case %zu\n", i);
	}
	{
		static const char t1[] = "0\r\ngrpc-status: 14\r\ngrpc-message: x\r\n\r\n";
		static const char t2[] = "0\r\ngrpc-message: a\r\nGrpc-Status:0\r\n\r\n";
		static const char t3[] = "0\r\nx-grpc-status: 3\r\n\r\n";
		static const char t4[] = "0\r\ngrpc-status: x\r\n\r\n";

		ASSERT_EQ(px_grpc_status_in_trailers(t1, sizeof(t1) - 1), 14);
		ASSERT_EQ(px_grpc_status_in_trailers(t2, sizeof(t2) - 1), 0);
		ASSERT_EQ(px_grpc_status_in_trailers(t3, sizeof(t3) - 1), -1);
		ASSERT_EQ(px_grpc_status_in_trailers(t4, sizeof(t4) - 1), -1);
		ASSERT_EQ(px_grpc_status_in_trailers("0\r\n\r\n", 5), -1);
	}
	ASSERT_EQ(px_grpc_status_parse("14", 2), 14);
	ASSERT_EQ(px_grpc_status_parse("0", 1), 0);
	ASSERT_EQ(px_grpc_status_parse("", 0), -1);
	ASSERT_EQ(px_grpc_status_parse("1x", 2), -1);
	ASSERT_EQ(px_grpc_status_parse("140", 3), -1);
	/* Envoy's Grpc::Utility mappings: {http, grpc} one way, {grpc, http} the other */
	{
		static const int h2g[][2] = { { 503, 14 }, { 504, 14 }, { 429, 14 }, { 404, 12 },
					      { 403, 7 }, { 401, 16 }, { 400, 13 }, { 500, 2 } };
		static const int g2h[][2] = { { 14, 503 }, { 4, 504 }, { 0, 200 }, { 12, 501 },
					      { 99, 500 } };

		for (i = 0; i < sizeof(h2g) / sizeof(h2g[0]); i++)
			ASSERT_EQ(px_h2_grpc_from_http(h2g[i][0]), h2g[i][1]);
		for (i = 0; i < sizeof(g2h) / sizeof(g2h[0]); i++)
			ASSERT_EQ(px_h2_http_from_grpc(g2h[i][0]), g2h[i][1]);
	}
}

/* gRPC length-prefixed messages counted across arbitrary piece boundaries. */
TEST(proxy_grpc_msgs_scan)
{
	/* three messages: 3 bytes, 0 bytes, 300 bytes (a length over one byte) */
	static char body[5 + 3 + 5 + 5 + 300];
	struct px_grpc_msgs g;
	size_t n = sizeof(body);

	memset(body, 'x', sizeof(body));
	memcpy(body, "\0\0\0\0\3", 5);
	memcpy(body + 8, "\0\0\0\0\0", 5);
	memcpy(body + 13, "\1\0\0\x01\x2c", 5);	/* compressed flag, 300 */
	memset(&g, 0, sizeof(g));
	px_grpc_msgs_scan(&g, body, n);
	ASSERT_EQ(g.n, 3);
	ASSERT_EQ(g.left, 0);
	ASSERT_EQ(g.hdr, 0);
	/* every split point, and byte by byte */
	for (size_t cut = 0; cut <= n; cut++) {
		memset(&g, 0, sizeof(g));
		px_grpc_msgs_scan(&g, body, cut);
		px_grpc_msgs_scan(&g, body + cut, n - cut);
		if (!ASSERT_EQ(g.n, 3))
			fprintf(stderr, "  cut at %zu\n", cut);
	}
	memset(&g, 0, sizeof(g));
	for (size_t i = 0; i < n; i++)
		px_grpc_msgs_scan(&g, body + i, 1);
	ASSERT_EQ(g.n, 3);
	/* a message still being received: counted once its prefix is in */
	memset(&g, 0, sizeof(g));
	px_grpc_msgs_scan(&g, body + 13, 10);
	ASSERT_EQ(g.n, 1);
	ASSERT_EQ(g.left, 295);
}

/*
 * A shadow's answer is followed through its framing while it is dropped:
 * fed in two pieces cut anywhere (the caller keeps what was not used and
 * feeds it again with more), it ends where the response ends.
 */
static int t_mresp_feed(const char *resp, size_t n, size_t cut, bool head_req, struct px_mresp *r,
			size_t *end)
{
	char buf[512];
	size_t have = 0, off = 0, fed = 0;
	int k;

	memset(r, 0, sizeof(*r));
	*end = 0;
	while (fed < n || have) {
		size_t add = fed < cut ? cut - fed : n - fed;

		memcpy(buf + have, resp + fed, add);
		have += add;
		fed += add;
		k = px_mresp_scan(r, buf, have, head_req);
		if (k < 0)
			return -1;
		off += (size_t)k;
		memmove(buf, buf + k, have - (size_t)k);
		have -= (size_t)k;
		if (r->phase == PX_MR_DONE) {
			*end = off;
			return 0;
		}
		if (!add)
			break;
	}
	return 0;
}

TEST(proxy_mirror_response_scan)
{
	static const struct {
		const char *desc, *resp;
		bool head_req;
		int status;
		bool done;		/* the response ends inside resp */
		size_t end;		/* where (0 = the whole input) */
	} tc[] = {
		{ "content-length body", "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhelloXX",
		  false, 200, true, 43 },
		{ "no body (204)", "HTTP/1.1 204 No Content\r\n\r\nXX", false, 204, true, 27 },
		{ "HEAD: the length is not a body", "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n",
		  true, 200, true, 0 },
		{ "chunked with trailers (gRPC over the bridge)",
		  "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
		  "7\r\n\0\0\0\0\2ok\r\n0\r\ngrpc-status: 0\r\n\r\n", false, 200, true, 0 },
		{ "100 Continue, then the final head", "HTTP/1.1 100 Continue\r\n\r\n"
		  "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n", false, 503, true,
		  0 },
		{ "until close", "HTTP/1.0 200 OK\r\n\r\nsome body", false, 200, false, 0 },
		{ "chunked, cut short", "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
		  "5\r\nhel", false, 200, false, 0 },
		{ "head cut short", "HTTP/1.1 200 OK\r\ncontent-le", false, 0, false, 0 },
	};

	for (size_t i = 0; i < sizeof(tc) / sizeof(tc[0]); i++) {
		/* the chunked case carries NULs: its length is the literal's */
		size_t n = i == 3 ? sizeof("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
					   "7\r\n\0\0\0\0\2ok\r\n0\r\ngrpc-status: 0\r\n\r\n") - 1 :
				    strlen(tc[i].resp);
		size_t want_end = tc[i].end ? tc[i].end : n;

		for (size_t cut = 0; cut <= n; cut++) {
			struct px_mresp r;
			size_t end;
			int rc = t_mresp_feed(tc[i].resp, n, cut, tc[i].head_req, &r, &end);

			if (!ASSERT_EQ(rc, 0) || !ASSERT_EQ(r.status, tc[i].status) ||
			    !ASSERT_EQ(r.phase == PX_MR_DONE, tc[i].done) ||
			    (tc[i].done && !ASSERT_EQ(end, want_end))) {
				fprintf(stderr, "  %s, cut at %zu\n", tc[i].desc, cut);
				break;
			}
		}
	}
	/* malformed: an error, not a wait */
	{
		struct px_mresp r = { 0 };

		ASSERT_EQ(px_mresp_scan(&r, "HTTP/1.1 2x0 OK\r\n\r\n", 19, false), -1);
		memset(&r, 0, sizeof(r));
		ASSERT_EQ(px_mresp_scan(&r, "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
					50, false), -1);
	}
}

TEST(proxy_backoff_bounds)
{
	uint64_t r, max1 = 0, max3 = 0, max9 = 0;
	int i;

	for (i = 0; i < 20000; i++) {
		r = (uint64_t)i * 2654435761u;
		uint64_t a = px_backoff_ms(25, 1, r), b = px_backoff_ms(25, 3, r),
			 c = px_backoff_ms(25, 9, r);

		max1 = a > max1 ? a : max1;
		max3 = b > max3 ? b : max3;
		max9 = c > max9 ? c : max9;
	}
	ASSERT_LE(max1, 24);		/* [0, 25) */
	ASSERT_GE(max1, 20);
	ASSERT_LE(max3, 174);		/* [0, 7 * 25) */
	ASSERT_GE(max3, 150);
	ASSERT_LE(max9, 249);		/* capped at 10 x base */
	ASSERT_GE(max9, 200);
	ASSERT_LE(px_backoff_ms(0, 1, 1000), 24);	/* 0 = Envoy's 25 ms */
}

/* An emptied read buffer goes back to the worker, a live one stays; the stash is bounded. */
TEST(proxy_buf_stash)
{
	struct px_worker w = { 0 };
	struct px_buf b = { 0 }, big = { 0 };
	struct px_buf many[PX_BUF_STASH_MAX + 2];
	char *p;
	uint32_t i;

	px_buf_drop(&w, &b);			/* none held: nothing to do */
	ASSERT_EQ(w.n_bstash, 0);
	b.p = px_buf_get(&w);
	ASSERT_TRUE(b.p != NULL);
	b.cap = PX_BUF_SIZE;
	b.len = 10;
	b.off = 4;
	px_buf_drop(&w, &b);			/* unread bytes: kept */
	ASSERT_TRUE(b.p != NULL);
	ASSERT_EQ(w.n_bstash, 0);
	b.off = b.len;
	p = b.p;
	px_buf_drop(&w, &b);			/* empty: back to the worker */
	ASSERT_TRUE(b.p == NULL);
	ASSERT_EQ(b.cap, 0);
	ASSERT_EQ(w.n_bstash, 1);
	ASSERT_TRUE(px_buf_get(&w) == p);	/* reused, not allocated */
	ASSERT_EQ(w.n_bstash, 0);
	b = (struct px_buf){ .p = p, .cap = PX_BUF_SIZE };
	px_buf_drop(&w, &b);
	big.p = malloc(PX_BUF_MAX);		/* a grown one is freed, not kept */
	ASSERT_TRUE(big.p != NULL);
	big.cap = PX_BUF_MAX;
	px_buf_drop(&w, &big);
	ASSERT_TRUE(big.p == NULL);
	ASSERT_EQ(w.n_bstash, 1);
	for (i = 0; i < PX_BUF_STASH_MAX + 2; i++)
		many[i] = (struct px_buf){ .p = px_buf_get(&w), .cap = PX_BUF_SIZE };
	for (i = 0; i < PX_BUF_STASH_MAX + 2; i++)
		px_buf_drop(&w, &many[i]);
	ASSERT_EQ(w.n_bstash, PX_BUF_STASH_MAX);
	px_buf_stash_free(&w);
	ASSERT_EQ(w.n_bstash, 0);
	ASSERT_TRUE(w.bstash == NULL);
}

TEST(proxy_redirect_location)
{
	static const struct {
		const char *uri, *auth, *scheme;
		uint16_t port;
		const char *path, *query, *host, *want;
	} t[] = {
		{ "/new", NULL, NULL, 0, "/old", "a=1", "svc:8080", "http://svc:8080/new?a=1" },
		{ "/new?b=2", NULL, NULL, 0, "/old", "a=1", "svc", "http://svc/new?b=2" },
		{ NULL, "other.example", "https", 0, "/p", "", "svc", "https://other.example/p" },
		{ NULL, NULL, NULL, 9090, "/p", "", "svc:80", "http://svc:9090/p" },
		{ NULL, "x.y:1", NULL, 2, "/", "", "svc", "http://x.y:2/" },
		/* a scheme change drops the request's default port, no other */
		{ NULL, NULL, "https", 0, "/p", "", "svc:80", "https://svc/p" },
		{ NULL, NULL, "https", 0, "/p", "", "svc:8080", "https://svc:8080/p" },
		{ NULL, NULL, "http", 0, "/p", "", "svc:80", "http://svc:80/p" },
		{ NULL, NULL, "https", 0, "/p", "", "[fd00::1]:80", "https://[fd00::1]/p" },
		{ NULL, NULL, NULL, 9090, "/p", "", "[fd00::1]:80", "http://[fd00::1]:9090/p" },
	};
	char out[256];
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct pol_redirect rd = { .set = true, .uri = (char *)t[i].uri,
					  .authority = (char *)t[i].auth,
					  .scheme = (char *)t[i].scheme, .port = t[i].port };
		int n = px_redirect_location(&rd, t[i].path, strlen(t[i].path), t[i].query,
					     strlen(t[i].query), t[i].host, strlen(t[i].host), 80,
					     out, sizeof(out));

		ASSERT_GE(n, 0);
		ASSERT_STREQ(out, t[i].want);
	}
	{
		struct pol_redirect rd = { .set = true, .uri = "/a-long-path" };

		ASSERT_EQ(px_redirect_location(&rd, "/", 1, "", 0, "h", 1, 80, out, 8), -ENOSPC);
	}
	{
		/* derivePort FROM_REQUEST_PORT: the port the route serves (Istio's
		 * port_redirect); an explicit port wins; FROM_PROTOCOL_DEFAULT none */
		struct pol_redirect rd = { .set = true, .uri = "/n",
					  .derive_port = POL_DERIVE_PORT_REQUEST };

		ASSERT_GE(px_redirect_location(&rd, "/o", 2, "", 0, "svc", 3, 9080, out, sizeof(out)), 0);
		ASSERT_STREQ(out, "http://svc:9080/n");
		ASSERT_GE(px_redirect_location(&rd, "/o", 2, "", 0, "svc:1", 5, 9080, out, sizeof(out)), 0);
		ASSERT_STREQ(out, "http://svc:9080/n");
		rd.port = 7;
		ASSERT_GE(px_redirect_location(&rd, "/o", 2, "", 0, "svc", 3, 9080, out, sizeof(out)), 0);
		ASSERT_STREQ(out, "http://svc:7/n");
		rd.port = 0;
		rd.derive_port = POL_DERIVE_PORT_PROTOCOL_DEFAULT;
		ASSERT_GE(px_redirect_location(&rd, "/o", 2, "", 0, "svc:1", 5, 9080, out, sizeof(out)), 0);
		ASSERT_STREQ(out, "http://svc:1/n");
	}
}

/* px_ieq: ASCII letters fold, nothing else does (0x0d is not '-', '@' not '`'). */
TEST(proxy_ieq_ascii_fold)
{
	static const struct { const char *a, *lit; bool eq; } cases[] = {
		{ "Content-Length", "content-length", true },
		{ "CONTENT-LENGTH", "content-length", true },
		{ "content-length", "Content-Length", true },
		{ "HEAD", "HEAD", true },
		{ "head", "HEAD", true },
		{ "content\rlength", "content-length", false },
		{ "content-lengt", "content-length", false },
		{ "content-lengthx", "content-length", false },
		{ "@", "`", false },
		/* 8 bytes and more go a word at a time, the last word overlapping */
		{ "Transfer-Encoding", "transfer-encoding", true },
		{ "transfer-encodinG", "transfer-encoding", true },
		{ "transfer\rencoding", "transfer-encoding", false },
		{ "transfer-encodinh", "transfer-encoding", false },
		{ "X-SOCKMESH-LOCAL", "x-sockmesh-local", true },
		{ "x-sockmesh-loca\xcc", "x-sockmesh-local", false },
		{ "ABCDEFGH", "abcdefgh", true },
		{ "ABC@EFGH", "abc`efgh", false },
		{ "x{request-id", "x[request-id", false },
		{ "[", "{", false },
		{ "^", "~", false },
		{ "\x10", "0", false },
		{ "", "", true },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (px_ieq(cases[i].a, strlen(cases[i].a), cases[i].lit) != cases[i].eq)
			TEST_FAIL_("px_ieq(\"%s\", \"%s\") != %d", cases[i].a, cases[i].lit,
				   cases[i].eq);
}

TEST(proxy_strmatch_cors)
{
	struct pol_strmatch ex = { .kind = POL_SM_EXACT, .value = "http://a.com" };
	struct pol_strmatch star = { .kind = POL_SM_EXACT, .value = "*" };
	struct pol_strmatch pre = { .kind = POL_SM_PREFIX, .value = "http://" };

	ASSERT_TRUE(px_strmatch(&ex, "http://a.com", 12));
	ASSERT_FALSE(px_strmatch(&ex, "http://a.co", 11));
	ASSERT_FALSE(px_strmatch(&ex, "HTTP://A.COM", 12));
	ASSERT_TRUE(px_strmatch(&star, "anything", 8));
	ASSERT_TRUE(px_strmatch(&pre, "http://b", 8));
	ASSERT_FALSE(px_strmatch(&pre, "https://b", 9));
}

TEST(proxy_flags_and_time_format)
{
	char b[64];

	px_flags_format(0, b, sizeof(b));
	ASSERT_STREQ(b, "-");
	px_flags_format((1u << PX_F_UO), b, sizeof(b));
	ASSERT_STREQ(b, "UO");
	px_flags_format((1u << PX_F_UT) | (1u << PX_F_URX), b, sizeof(b));
	ASSERT_STREQ(b, "URX,UT");
	px_time_format(1460751420310ull, b, sizeof(b));
	ASSERT_STREQ(b, "2016-04-15T20:17:00.310Z");
	ASSERT_STREQ(px_reason(503), "Service Unavailable");
}

/* ---- test backend: one thread per connection ---- */

#define BE_MAX_CONNS 128

struct be {
	int lfd;
	uint16_t port;
	pthread_t th;
	atomic_int stop;
	atomic_int flaky;	/* next N /flaky requests answer 503 */
	atomic_int conns;
	atomic_int requests;
	atomic_int shadow;	/* requests with a "-shadow" host (mirrors) */
	atomic_long shadow_body;	/* their body bytes (chunked: with the framing) */
	pthread_mutex_t mu;
	int cfd[BE_MAX_CONNS];
	pthread_t cth[BE_MAX_CONNS];
	int n;
};

struct be_conn {
	struct be *be;
	int fd;
	int id;
};

static int be_reply(int fd, int id, int status, const char *extra, const char *body, size_t blen)
{
	char head[512];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d X\r\ncontent-length: %zu\r\nx-conn: %d\r\n%s\r\n", status,
			 blen, id, extra ? extra : "");

	if (tlb_send_all(fd, head, (size_t)n))
		return -1;
	return tlb_send_all(fd, body, blen);
}

static bool be_has(const char *head, size_t hlen, const char *needle)
{
	char tmp[16384];

	if (hlen >= sizeof(tmp))
		hlen = sizeof(tmp) - 1;
	memcpy(tmp, head, hlen);
	tmp[hlen] = '\0';
	return strcasestr(tmp, needle) != NULL;
}

static void *be_conn_main(void *arg)
{
	struct be_conn *c = arg;
	size_t cap = 256 * 1024, len = 0;
	char *buf = malloc(cap);

	while (buf) {
		char *e, *sp, path[256] = "", reply[80000];
		size_t hlen, blen = 0, cl = 0;
		bool chunked;
		ssize_t n;

		while (!(e = memmem(buf, len, "\r\n\r\n", 4))) {
			n = recv(c->fd, buf + len, cap - len, 0);
			if (n <= 0)
				goto out;
			len += (size_t)n;
		}
		hlen = (size_t)(e - buf) + 4;
		sp = memchr(buf, ' ', hlen);
		if (sp) {
			char *sp2 = memchr(sp + 1, ' ', hlen - (size_t)(sp + 1 - buf));

			if (sp2 && (size_t)(sp2 - sp - 1) < sizeof(path)) {
				memcpy(path, sp + 1, (size_t)(sp2 - sp - 1));
				path[sp2 - sp - 1] = '\0';
			}
		}
		chunked = be_has(buf, hlen, "transfer-encoding: chunked");
		if (be_has(buf, hlen, "\ncontent-length:")) {
			char tmp[16384], *p;

			memcpy(tmp, buf, hlen < sizeof(tmp) - 1 ? hlen : sizeof(tmp) - 1);
			tmp[hlen < sizeof(tmp) - 1 ? hlen : sizeof(tmp) - 1] = '\0';
			p = strcasestr(tmp, "\ncontent-length:");
			cl = strtoul(p + 16, NULL, 10);
		}
		if (be_has(buf, hlen, "expect: 100-continue") &&
		    tlb_send_all(c->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25))
			goto out;
		if (chunked) {
			while (!memmem(buf + hlen, len - hlen, "0\r\n\r\n", 5)) {
				n = recv(c->fd, buf + len, cap - len, 0);
				if (n <= 0)
					goto out;
				len += (size_t)n;
			}
			blen = (size_t)((char *)memmem(buf + hlen, len - hlen, "0\r\n\r\n", 5) + 5 -
					(buf + hlen));
		} else {
			while (len - hlen < cl) {
				n = recv(c->fd, buf + len, cap - len, 0);
				if (n <= 0)
					goto out;
				len += (size_t)n;
			}
			blen = cl;
		}
		atomic_fetch_add(&c->be->requests, 1);
		if (be_has(buf, hlen, "\nhost: svc-shadow")) {
			atomic_fetch_add(&c->be->shadow_body, (long)blen);
			atomic_fetch_add(&c->be->shadow, 1);
		}
		if (strstr(path, "/status/")) {
			if (be_reply(c->fd, c->id, atoi(strstr(path, "/status/") + 8), NULL, "s", 1))
				goto out;
		} else if (strstr(path, "/slow/")) {
			usleep((useconds_t)atoi(strstr(path, "/slow/") + 6) * 1000);
			if (be_reply(c->fd, c->id, 200, NULL, "slow", 4))
				goto out;
		} else if (strstr(path, "/big")) {
			int k = snprintf(reply, sizeof(reply), "got %zu", blen);

			if (be_reply(c->fd, c->id, 200, NULL, reply, (size_t)k))
				goto out;
		} else if (strstr(path, "/chunked")) {
			static const char r[] = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
						"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";

			if (tlb_send_all(c->fd, r, sizeof(r) - 1))
				goto out;
		} else if (strstr(path, "/ws")) {
			static const char r[] = "HTTP/1.1 101 Switching Protocols\r\n"
						"connection: upgrade\r\nupgrade: websocket\r\n\r\n";

			if (tlb_send_all(c->fd, r, sizeof(r) - 1))
				goto out;
			len -= hlen;
			memmove(buf, buf + hlen, len);
			for (;;) {
				if (len && tlb_send_all(c->fd, buf, len))
					goto out;
				len = 0;
				n = recv(c->fd, buf, cap, 0);
				if (n <= 0)
					goto out;
				len = (size_t)n;
			}
		} else {
			/* echo (also /flaky once recovered): head and body back */
			int status = 200;

			if (strstr(path, "/flaky") && atomic_fetch_sub(&c->be->flaky, 1) > 0)
				status = 503;
			if (hlen + blen + 8 > sizeof(reply))
				blen = sizeof(reply) - hlen - 8;
			memcpy(reply, buf, hlen);
			memcpy(reply + hlen, "---\n", 4);
			memcpy(reply + hlen + 4, buf + hlen, blen);
			if (be_reply(c->fd, c->id, status, NULL, reply, hlen + 4 + blen))
				goto out;
		}
		memmove(buf, buf + hlen + blen, len - hlen - blen);
		len -= hlen + blen;
	}
out:
	free(buf);
	free(c);
	return NULL;
}

static void *be_main(void *arg)
{
	struct be *be = arg;

	while (!atomic_load(&be->stop)) {
		int fd = tlb_accept(be->lfd);
		struct be_conn *c;

		if (fd < 0)
			continue;
		pthread_mutex_lock(&be->mu);
		if (be->n == BE_MAX_CONNS) {
			pthread_mutex_unlock(&be->mu);
			close(fd);
			continue;
		}
		c = malloc(sizeof(*c));
		c->be = be;
		c->fd = fd;
		c->id = atomic_fetch_add(&be->conns, 1) + 1;
		be->cfd[be->n] = fd;
		if (pthread_create(&be->cth[be->n], NULL, be_conn_main, c)) {
			close(fd);
			free(c);
		} else {
			be->n++;
		}
		pthread_mutex_unlock(&be->mu);
	}
	return NULL;
}

static int be_start(struct be *be)
{
	memset(be, 0, sizeof(*be));
	pthread_mutex_init(&be->mu, NULL);
	if (tlb_listen(128, &be->lfd, &be->port))
		return -1;
	return pthread_create(&be->th, NULL, be_main, be) ? -1 : 0;
}

static void be_stop(struct be *be)
{
	int i;

	atomic_store(&be->stop, 1);
	pthread_join(be->th, NULL);
	for (i = 0; i < be->n; i++)
		shutdown(be->cfd[i], SHUT_RDWR);
	for (i = 0; i < be->n; i++) {
		void *ret;

		pthread_join(be->cth[i], &ret);
		close(be->cfd[i]);
	}
	close(be->lfd);
	pthread_mutex_destroy(&be->mu);
}

/* ---- client ---- */

struct cl {
	int fd;
	size_t len;
	size_t rx;		/* bytes received since cl_open */
	char buf[131072];
};

struct cresp {
	int status;
	char head[8192];
	char body[65536];
	size_t blen;
};

static int cl_open(struct cl *c, uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct timeval tv = { .tv_sec = 10 };	/* a bound for a loaded machine, never waited out */

	c->len = c->rx = 0;
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (c->fd < 0)
		return -1;
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(c->fd);
		return -1;
	}
	return 0;
}

static void cl_close(struct cl *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static int cl_send(struct cl *c, const char *s)
{
	return tlb_send_all(c->fd, s, strlen(s));
}

static int cl_fill(struct cl *c)
{
	ssize_t n;

	if (c->len == sizeof(c->buf))
		return -1;
	n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
	if (n <= 0)
		return -1;
	c->len += (size_t)n;
	c->rx += (size_t)n;
	return 0;
}

static const char *cl_hdr(const struct cresp *r, const char *name, char *out, size_t outlen)
{
	char needle[128];
	const char *p, *e;

	snprintf(needle, sizeof(needle), "\n%s:", name);
	p = strcasestr(r->head, needle);
	if (!p)
		return NULL;
	p += strlen(needle);
	while (*p == ' ')
		p++;
	e = strstr(p, "\r\n");
	snprintf(out, outlen, "%.*s", (int)(e ? e - p : (long)strlen(p)), p);
	return out;
}

/* One response (1xx included); -1 on EOF/timeout before it is complete. */
static int cl_resp(struct cl *c, struct cresp *r)
{
	char *e, v[64];
	size_t hlen;

	memset(r, 0, sizeof(*r));
	while (!(e = memmem(c->buf, c->len, "\r\n\r\n", 4)))
		if (cl_fill(c))
			return -1;
	hlen = (size_t)(e - c->buf) + 4;
	if (hlen >= sizeof(r->head))
		return -1;
	memcpy(r->head, c->buf, hlen);
	r->status = atoi(r->head + 9);
	memmove(c->buf, c->buf + hlen, c->len - hlen);
	c->len -= hlen;
	if (r->status < 200 || r->status == 204 || r->status == 304)
		return 0;
	if (cl_hdr(r, "content-length", v, sizeof(v))) {
		size_t cl = strtoul(v, NULL, 10);

		while (c->len < cl)
			if (cl_fill(c))
				return -1;
		if (cl >= sizeof(r->body))
			return -1;
		memcpy(r->body, c->buf, cl);
		r->blen = cl;
		memmove(c->buf, c->buf + cl, c->len - cl);
		c->len -= cl;
	} else if (cl_hdr(r, "transfer-encoding", v, sizeof(v))) {
		for (;;) {
			size_t sz;
			char *le;

			while (!(le = memmem(c->buf, c->len, "\r\n", 2)))
				if (cl_fill(c))
					return -1;
			sz = strtoul(c->buf, NULL, 16);
			while (c->len < (size_t)(le - c->buf) + 2 + sz + 2)
				if (cl_fill(c))
					return -1;
			memcpy(r->body + r->blen, le + 2, sz);
			r->blen += sz;
			hlen = (size_t)(le - c->buf) + 2 + sz + 2;
			memmove(c->buf, c->buf + hlen, c->len - hlen);
			c->len -= hlen;
			if (!sz)
				break;
		}
	} else {
		while (!cl_fill(c))
			;
		memcpy(r->body, c->buf, c->len);
		r->blen = c->len;
		c->len = 0;
	}
	r->body[r->blen < sizeof(r->body) ? r->blen : sizeof(r->body) - 1] = '\0';
	return 0;
}

static bool cl_eof(struct cl *c)
{
	char x;

	return recv(c->fd, &x, 1, 0) <= 0;
}

/* ---- hand-built config ---- */

#define T_VIP 0x0a60000au	/* 10.96.0.10 (host order) */
#define T_SVC_PORT 80
#define T_SRC 0x0a000105u	/* 10.0.1.5 */

enum { R_DIRECT, R_REDIR, R_TIMEOUT, R_RETRY, R_CB, R_FAULT, R_RW, R_CORS, R_PERTRY, R_PT, R_MIRROR, R_B, R_N };

struct tcfg {
	struct l7_config c;
	struct l7_svc svc;
	struct l7_vhost vh;
	struct l7_route routes[R_N];
	struct pol_http_route proutes[R_N];	/* what the routes resolve */
	struct pol_http_match matches[R_N];
	struct l7_route_dest dests[R_N];
	struct l7_cluster a, cb, dead;
	struct l7_cluster *clusters[3];
	struct l7_svc *svcp;
	struct l7_config_hand hand;
	struct l7_host host_a, host_cb, host_dead;
	struct pol_kv req_set, resp_set;
	char *cors_methods[2];
	struct pol_strmatch cors_origin;
	/* gateway "default/gw": a.example.com answers directly, *.example.com echoes */
	struct l7_mirror mirror;
	struct l7_gateway gw;
	struct l7_gw_server gw_srv;
	char *gw_srv_hosts[1];
	struct l7_vhost gvh[2], *gvhp[2];
	char *gvh_dom[2][1];
	char *gvh_gws[1];
	struct l7_route groutes[2];
	struct pol_http_route gproutes[2];
	struct l7_route_dest gdest;
};

static atomic_int t_refuse;

static int t_orig_dst(void *ctx, uint32_t peer, uint16_t port, struct proxy_orig *o)
{
	if (atomic_load(&t_refuse))
		return -ENOENT;
	o->vip = htonl(T_VIP);
	o->port = T_SVC_PORT;
	o->client_ip = htonl(T_SRC);
	return 0;
}

static void t_cluster(struct l7_cluster *c, uint64_t id, const char *name, struct l7_host *h,
		      uint16_t port)
{
	c->id = id;
	c->name = (char *)name;
	c->fqdn = "svc.default.svc.cluster.local";
	c->port = 80;
	c->lb = L7_LB_ROUND_ROBIN;
	h->addr = htonl(INADDR_LOOPBACK);
	h->port = port;
	h->ready = true;
	c->hosts = h;
	c->n_hosts = 1;
}

static void t_prefix(struct tcfg *t, int i, const char *prefix, struct l7_cluster *dest)
{
	struct l7_route *r = &t->routes[i];

	t->matches[i].uri.kind = POL_SM_PREFIX;
	t->matches[i].uri.value = (char *)prefix;
	r->pol = &t->proutes[i];
	t->proutes[i].name = (char *)prefix;
	t->proutes[i].match = &t->matches[i];
	t->proutes[i].n_match = 1;
	if (dest) {
		t->dests[i].cluster = dest;
		t->dests[i].weight = 100;
		r->dests = &t->dests[i];
		r->n_dests = 1;
		r->total_weight = 100;
	}
}

static uint16_t t_gw_port;

static void t_build_gateway(struct tcfg *t)
{
	int i;

	t->gw.name = "default/gw";
	t->gw_srv.port = t_gw_port;
	t->gw_srv.bind = "127.0.0.1";
	t->gw_srv_hosts[0] = "*";
	t->gw_srv.hosts = t->gw_srv_hosts;
	t->gw_srv.n_hosts = 1;
	t->gw.servers = &t->gw_srv;
	t->gw.n_servers = 1;
	t->gvh_dom[0][0] = "a.example.com";
	t->gvh_dom[1][0] = "*.example.com";
	t->gvh_gws[0] = "default/gw";
	t->groutes[0].pol = &t->gproutes[0];
	t->groutes[1].pol = &t->gproutes[1];
	t->gproutes[0].direct = (struct pol_direct_response){ .set = true, .status = 200,
							      .body = "gw-a", .body_len = 4 };
	t->gdest.cluster = &t->a;
	t->gdest.weight = 1;
	t->groutes[1].dests = &t->gdest;
	t->groutes[1].n_dests = 1;
	t->groutes[1].total_weight = 1;
	for (i = 0; i < 2; i++) {
		t->gvh[i].name = i ? "default/wild" : "default/a";
		t->gvh[i].domains = t->gvh_dom[i];
		t->gvh[i].n_domains = 1;
		t->gvh[i].gateways = t->gvh_gws;
		t->gvh[i].n_gateways = 1;
		t->gvh[i].routes = &t->groutes[i];
		t->gvh[i].n_routes = 1;
		t->gvhp[i] = &t->gvh[i];
	}
	t->gw.vhosts = t->gvhp;
	t->gw.n_vhosts = 2;
	t->c.gateways = &t->gw;
	t->c.n_gateways = 1;
}

static void t_build(struct tcfg *t, uint16_t be_port, uint16_t dead_port, const char *direct_body)
{
	memset(t, 0, sizeof(*t));
	t->c.refs = 1;
	t->c.generation = 1;
	t_cluster(&t->a, 11, "outbound|80||svc.default.svc.cluster.local", &t->host_a, be_port);
	t_cluster(&t->cb, 12, "outbound|80|cb|svc.default.svc.cluster.local", &t->host_cb, be_port);
	t->cb.pool.max_connections = 1;
	t->cb.pool.http1_max_pending = 1;
	t_cluster(&t->dead, 13, "outbound|80|dead|svc.default.svc.cluster.local", &t->host_dead,
		  dead_port);
	t->dead.pool.connect_timeout_ms = 200;
	t->clusters[0] = &t->a;
	t->clusters[1] = &t->cb;
	t->clusters[2] = &t->dead;

	t_prefix(t, R_DIRECT, "/direct", NULL);
	t->proutes[R_DIRECT].direct = (struct pol_direct_response){
		.set = true, .status = 200, .body = (char *)direct_body,
		.body_len = strlen(direct_body) };
	t_prefix(t, R_REDIR, "/redir", NULL);
	t->proutes[R_REDIR].redirect = (struct pol_redirect){ .set = true, .uri = "/new",
							      .code = 302 };
	t_prefix(t, R_TIMEOUT, "/timeout", &t->a);
	t->routes[R_TIMEOUT].timeout_ms = 150;
	t_prefix(t, R_RETRY, "/retry", &t->a);
	t->routes[R_RETRY].has_retry = true;
	t->routes[R_RETRY].retry = (struct l7_retry){ .attempts = 3, .on = L7_RETRY_5XX,
						      .backoff_base_ms = 5 };
	t_prefix(t, R_CB, "/cb", &t->cb);
	t_prefix(t, R_FAULT, "/fault", &t->a);
	t->proutes[R_FAULT].fault = (struct pol_fault){ .abort_set = true, .abort_percent = 100,
							.abort_status = 418 };
	t_prefix(t, R_RW, "/rw", &t->a);
	t->proutes[R_RW].rewrite.uri = "/echo";
	t->proutes[R_RW].rewrite.authority = "rewritten.local";
	t->req_set = (struct pol_kv){ "x-added", "yes" };
	t->resp_set = (struct pol_kv){ "x-resp", "r" };
	t->proutes[R_RW].headers.request.set = (struct pol_labels){ &t->req_set, 1 };
	t->proutes[R_RW].headers.response.set = (struct pol_labels){ &t->resp_set, 1 };
	t_prefix(t, R_CORS, "/cors", &t->a);
	t->cors_origin = (struct pol_strmatch){ .kind = POL_SM_EXACT, .value = "http://ok.example" };
	t->cors_methods[0] = "GET";
	t->cors_methods[1] = "POST";
	t->proutes[R_CORS].cors = (struct pol_cors){ .set = true, .allow_origins = &t->cors_origin,
						     .n_allow_origins = 1,
						     .allow_methods = t->cors_methods,
						     .n_allow_methods = 2, .max_age_s = 60,
						     .allow_credentials = -1 };
	t_prefix(t, R_PERTRY, "/dead", &t->dead);
	t->routes[R_PERTRY].has_retry = true;
	t->routes[R_PERTRY].retry = (struct l7_retry){ .attempts = 1,
						       .on = L7_RETRY_CONNECT_FAILURE,
						       .backoff_base_ms = 5 };
	t_prefix(t, R_PT, "/pt", &t->a);
	t->routes[R_PT].has_retry = true;
	t->routes[R_PT].retry = (struct l7_retry){ .attempts = 1, .on = L7_RETRY_5XX,
						   .per_try_timeout_ms = 100,
						   .backoff_base_ms = 5 };
	t_prefix(t, R_MIRROR, "/mirror", &t->a);
	t->mirror = (struct l7_mirror){ .cluster = &t->cb, .pct = 100 };
	t->routes[R_MIRROR].mirrors = &t->mirror;
	t->routes[R_MIRROR].n_mirrors = 1;
	t_prefix(t, R_B, "/b/", &t->a);

	t->vh.name = "default/svc";
	t->vh.routes = t->routes;
	t->vh.n_routes = R_N;
	t->svc.vip = htonl(T_VIP);
	t->svc.port = T_SVC_PORT;
	t->svc.fqdn = "svc.default.svc.cluster.local";
	t->svc.vhost = &t->vh;
	t->svc.default_cluster = &t->a;
	t->svcp = &t->svc;
	l7_config_hand(&t->c, &t->hand, &t->svcp, 1, t->clusters, 3);
	t_build_gateway(t);
}

/* ---- integration ---- */

struct tenv {
	struct be be;
	struct up_registry *up;
	struct proxy *p;
	uint16_t port;
	struct tcfg cfg, cfg2;
	int logp[2];
};

#define ASSERT_LT_100(i) ASSERT_LE(i, 99)

static int t_get_port(uint16_t port, const char *req, struct cresp *r)
{
	struct cl *c = malloc(sizeof(*c));
	int rc;

	if (!c || cl_open(c, port)) {
		free(c);
		return -1;
	}
	rc = cl_send(c, req) ? -1 : cl_resp(c, r);
	cl_close(c);
	free(c);
	return rc;
}

static int t_get(struct tenv *e, const char *req, struct cresp *r)
{
	return t_get_port(e->port, req, r);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void t_basic(struct tenv *e, struct cl *c, struct cresp *r)
{
	char v[128];

	ASSERT_EQ(cl_open(c, e->port), 0);
	ASSERT_EQ(cl_send(c, "GET /b/echo?x=1 HTTP/1.1\r\nHost: svc\r\nUser-Agent: t\r\n\r\n"), 0);
	ASSERT_EQ(cl_resp(c, r), 0);
	ASSERT_EQ(r->status, 200);
	ASSERT_STRSTR(r->body, "GET /b/echo?x=1 HTTP/1.1");
	ASSERT_STRSTR(r->body, "x-request-id: ");
	ASSERT_STRSTR(r->body, "x-envoy-attempt-count: 1");
	ASSERT_STRSTR(r->body, "x-forwarded-proto: http");
	ASSERT_STRSTR(r->body, "host: svc\r\n");
	ASSERT_TRUE(cl_hdr(r, "x-envoy-upstream-service-time", v, sizeof(v)) != NULL);
	ASSERT_TRUE(cl_hdr(r, "x-conn", v, sizeof(v)) != NULL);
	{
		char first[16];

		snprintf(first, sizeof(first), "%s", v);
		/* keep-alive on both sides: same client and upstream connection */
		ASSERT_EQ(cl_send(c, "GET /b/echo HTTP/1.1\r\nHost: svc\r\nx-request-id: abc\r\n\r\n"), 0);
		ASSERT_EQ(cl_resp(c, r), 0);
		ASSERT_EQ(r->status, 200);
		ASSERT_STRSTR(r->body, "x-request-id: abc\r\n");
		ASSERT_STREQ(cl_hdr(r, "x-conn", v, sizeof(v)), first);
		/* pipelined: two requests in one write, answered in order */
		ASSERT_EQ(cl_send(c, "GET /b/echo?n=1 HTTP/1.1\r\nHost: svc\r\n\r\n"
				     "GET /b/echo?n=2 HTTP/1.1\r\nHost: svc\r\n\r\n"), 0);
		ASSERT_EQ(cl_resp(c, r), 0);
		ASSERT_STRSTR(r->body, "?n=1 ");
		ASSERT_EQ(cl_resp(c, r), 0);
		ASSERT_STRSTR(r->body, "?n=2 ");
		ASSERT_STREQ(cl_hdr(r, "x-conn", v, sizeof(v)), first);
	}
	cl_close(c);
}

static void t_local(struct tenv *e, struct cresp *r)
{
	char v[256];

	ASSERT_EQ(t_get(e, "GET /nothing HTTP/1.1\r\nHost: svc\r\n\r\n", r), 0);
	ASSERT_EQ(r->status, 404);
	ASSERT_EQ(t_get(e, "GET /direct HTTP/1.1\r\nHost: svc\r\n\r\n", r), 0);
	ASSERT_EQ(r->status, 200);
	ASSERT_STREQ(r->body, "direct!");
	ASSERT_EQ(t_get(e, "GET /redir/x?q=1 HTTP/1.1\r\nHost: svc:80\r\n\r\n", r), 0);
	ASSERT_EQ(r->status, 302);
	ASSERT_STREQ(cl_hdr(r, "location", v, sizeof(v)), "http://svc:80/new?q=1");
	ASSERT_EQ(t_get(e, "GET /fault HTTP/1.1\r\nHost: svc\r\n\r\n", r), 0);
	ASSERT_EQ(r->status, 418);
	ASSERT_STREQ(r->body, "fault filter abort");
}

/* Requests, request and response bytes over every series of the proxy. */
static void t_size_totals(struct proxy *p, uint64_t *rq, uint64_t *req, uint64_t *resp)
{
	struct proxy_rseries *v = NULL;
	size_t n = 0;

	*rq = *req = *resp = 0;
	if (proxy_request_series(p, &v, &n))
		return;
	for (size_t i = 0; i < n; i++) {
		*rq += v[i].count;
		*req += v[i].req_bytes.sum;
		*resp += v[i].resp_bytes.sum;
	}
	free(v);
}

/*
 * Istio's istio_request_bytes / istio_response_bytes: the wire bytes of each
 * exchange on the client's connection, exactly what the client sent and got
 * (bodies with Content-Length and chunked, a local reply).
 */
static void t_sizes(struct tenv *e, struct cl *c, struct cresp *r)
{
	static const char *const req[] = {
		"GET /b/echo?s=1 HTTP/1.1\r\nHost: svc\r\n\r\n",
		"POST /b/echo HTTP/1.1\r\nHost: svc\r\nContent-Length: 11\r\n\r\nhello world",
		("POST /b/echo HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked\r\n\r\n"
		 "5\r\nhello\r\n0\r\n\r\n"),
		"GET /direct HTTP/1.1\r\nHost: svc\r\n\r\n",
	};
	uint64_t rq0, q0, s0, rq1 = 0, q1 = 0, s1 = 0, sent = 0;

	/* earlier steps' last requests are accounted a moment after their replies */
	t_size_totals(e->p, &rq0, &q0, &s0);
	for (int i = 0; i < 50; i++) {
		uint64_t prev = rq0;

		usleep(20000);
		t_size_totals(e->p, &rq0, &q0, &s0);
		if (rq0 == prev)
			break;
	}
	ASSERT_EQ(cl_open(c, e->port), 0);
	for (size_t i = 0; i < sizeof(req) / sizeof(req[0]); i++) {
		ASSERT_EQ(cl_send(c, req[i]), 0);
		sent += strlen(req[i]);
		ASSERT_EQ(cl_resp(c, r), 0);
		ASSERT_EQ(r->status, 200);
	}
	ASSERT_EQ(c->len, 0);		/* nothing read beyond the last response */
	/* the proxy accounts a request once its response is out: wait for the 4 */
	for (int i = 0; i < 2000 && rq1 < rq0 + 4; i++) {
		usleep(5000);
		t_size_totals(e->p, &rq1, &q1, &s1);
	}
	ASSERT_EQ(rq1 - rq0, 4);
	ASSERT_EQ(q1 - q0, sent);
	ASSERT_EQ(s1 - s0, c->rx);
	cl_close(c);
}

static void t_rewrite_cors(struct tenv *e, struct cresp *r)
{
	char v[256];

	ASSERT_EQ(t_get(e, "GET /rw/x HTTP/1.1\r\nHost: svc\r\nx-added: no\r\n\r\n", r), 0);
	ASSERT_EQ(r->status, 200);
	ASSERT_STRSTR(r->body, "GET /echo/x HTTP/1.1");
	ASSERT_STRSTR(r->body, "host: rewritten.local\r\n");
	ASSERT_STRSTR(r->body, "x-added: yes\r\n");
	ASSERT_TRUE(strstr(r->body, "x-added: no") == NULL);
	ASSERT_STRSTR(r->body, "x-envoy-original-path: /rw/x\r\n");
	ASSERT_STREQ(cl_hdr(r, "x-resp", v, sizeof(v)), "r");

	ASSERT_EQ(t_get(e, "OPTIONS /cors HTTP/1.1\r\nHost: svc\r\nOrigin: http://ok.example\r\n"
			   "Access-Control-Request-Method: POST\r\n\r\n", r), 0);
	ASSERT_EQ(r->status, 200);
	ASSERT_STREQ(cl_hdr(r, "access-control-allow-origin", v, sizeof(v)), "http://ok.example");
	ASSERT_STREQ(cl_hdr(r, "access-control-allow-methods", v, sizeof(v)), "GET, POST");
	ASSERT_STREQ(cl_hdr(r, "access-control-max-age", v, sizeof(v)), "60");
	ASSERT_TRUE(cl_hdr(r, "x-conn", v, sizeof(v)) == NULL);	/* answered locally */
	ASSERT_EQ(t_get(e, "GET /cors/echo HTTP/1.1\r\nHost: svc\r\nOrigin: http://ok.example\r\n\r\n",
			r), 0);
	ASSERT_EQ(r->status, 200);
	ASSERT_STREQ(cl_hdr(r, "access-control-allow-origin", v, sizeof(v)), "http://ok.example");
	ASSERT_EQ(t_get(e, "GET /cors/echo HTTP/1.1\r\nHost: svc\r\nOrigin: http://bad.example\r\n\r\n",
			r), 0);
	ASSERT_TRUE(cl_hdr(r, "access-control-allow-origin", v, sizeof(v)) == NULL);
}

static void t_retry_timeout(struct tenv *e, struct cresp *r)
{
	uint64_t t0;

	atomic_store(&e->be.flaky, 2);
	ASSERT_EQ(t_get(e, "GET /retry/flaky HTTP/1.1\r\nHost: svc\r\n\r\n", r), 0);
	ASSERT_EQ(r->status, 200);
	ASSERT_STRSTR(r->body, "x-envoy-attempt-count: 3\r\n");
	/* attempts exhausted: the upstream's last 503 goes out as is */
	atomic_store(&e->be.flaky, 10);
	ASSERT_EQ(t_get(e, "GET /retry/flaky HTTP/1.1\r\nHost: svc\r\n\r\n", r), 0);
	ASSERT_EQ(r->status, 503);
	ASSERT_STRSTR(r->body, "x-envoy-attempt-count: 4\r\n");
	atomic_store(&e->be.flaky, 0);

	/* (backends far slower than the timeouts: the upper bounds leave a
	 * loaded machine room and still tell the timeout from the answer) */
	t0 = now_ms();
	ASSERT_EQ(t_get(e, "GET /timeout/slow/2500 HTTP/1.1\r\nHost: svc\r\n\r\n", r), 0);
	ASSERT_EQ(r->status, 504);
	ASSERT_STREQ(r->body, "upstream request timeout");
	ASSERT_GE(now_ms() - t0, 140);
	ASSERT_LE(now_ms() - t0, 2000);

	/* per-try timeout is retried under 5xx; both tries time out: 504 UT + URX */
	{
		int before = atomic_load(&e->be.requests);

		t0 = now_ms();
		ASSERT_EQ(t_get(e, "GET /pt/slow/2500 HTTP/1.1\r\nHost: svc\r\n\r\n", r), 0);
		ASSERT_EQ(r->status, 504);
		ASSERT_GE(now_ms() - t0, 195);
		ASSERT_LE(now_ms() - t0, 2000);
		ASSERT_EQ(atomic_load(&e->be.requests) - before, 2);
	}

	/* connection refused, retried once on connect-failure, then 503 UF */
	ASSERT_EQ(t_get(e, "GET /dead HTTP/1.1\r\nHost: svc\r\n\r\n", r), 0);
	ASSERT_EQ(r->status, 503);
	ASSERT_STRSTR(r->body, "connection failure");
}

static void t_overflow(struct tenv *e, struct cresp *r)
{
	static struct cl cs[3];
	int ok = 0, over = 0, i;
	char v[64];

	for (i = 0; i < 3; i++) {
		ASSERT_EQ(cl_open(&cs[i], e->port), 0);
		/* (600 ms: the three are in flight together on a slow machine too) */
		ASSERT_EQ(cl_send(&cs[i], "GET /cb/slow/600 HTTP/1.1\r\nHost: svc\r\n\r\n"), 0);
		usleep(20000);	/* arrival order: connection, pending, overflow */
	}
	for (i = 0; i < 3; i++) {
		if (!ASSERT_EQ(cl_resp(&cs[i], r), 0))
			continue;
		if (r->status == 200)
			ok++;
		if (r->status == 503 && cl_hdr(r, "x-envoy-overloaded", v, sizeof(v)) &&
		    strcmp(v, "true") == 0)
			over++;
		cl_close(&cs[i]);
	}
	ASSERT_EQ(ok, 2);
	ASSERT_EQ(over, 1);
	ASSERT_GE(up_cb_overflows(e->up, 12, UP_CB_PENDING), 1);
}

static void t_bodies(struct tenv *e, struct cl *c, struct cresp *r)
{
	char v[64];

	/* chunked request body passes through; chunked response too */
	ASSERT_EQ(cl_open(c, e->port), 0);
	ASSERT_EQ(cl_send(c, "POST /b/echo HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked\r\n\r\n"
			     "5\r\nhello\r\n"), 0);
	usleep(20000);
	ASSERT_EQ(cl_send(c, "6\r\n world\r\n0\r\n\r\n"), 0);
	ASSERT_EQ(cl_resp(c, r), 0);
	ASSERT_EQ(r->status, 200);
	ASSERT_STRSTR(r->body, "---\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
	ASSERT_EQ(cl_send(c, "GET /b/chunked HTTP/1.1\r\nHost: svc\r\n\r\n"), 0);
	ASSERT_EQ(cl_resp(c, r), 0);
	ASSERT_EQ(r->status, 200);
	ASSERT_STREQ(r->body, "hello world");
	/* 100-continue: the backend's 100 is relayed before the body is sent */
	ASSERT_EQ(cl_send(c, "POST /b/echo HTTP/1.1\r\nHost: svc\r\nExpect: 100-continue\r\n"
			     "Content-Length: 5\r\n\r\n"), 0);
	ASSERT_EQ(cl_resp(c, r), 0);
	ASSERT_EQ(r->status, 100);
	ASSERT_EQ(cl_send(c, "abcde"), 0);
	ASSERT_EQ(cl_resp(c, r), 0);
	ASSERT_EQ(r->status, 200);
	ASSERT_STRSTR(r->body, "---\nabcde");
	cl_close(c);

	/* HTTP/1.0: de-chunked body, connection closed */
	ASSERT_EQ(cl_open(c, e->port), 0);
	ASSERT_EQ(cl_send(c, "GET /b/chunked HTTP/1.0\r\n\r\n"), 0);
	ASSERT_EQ(cl_resp(c, r), 0);
	ASSERT_EQ(r->status, 200);
	ASSERT_STREQ(r->body, "hello world");
	ASSERT_TRUE(cl_hdr(r, "transfer-encoding", v, sizeof(v)) == NULL);
	cl_close(c);

	/* a body larger than the buffers streams through with backpressure */
	{
		static char big[300000];
		struct sockaddr_in sa;
		char head[128];

		memset(big, 'z', sizeof(big));
		ASSERT_EQ(cl_open(c, e->port), 0);
		snprintf(head, sizeof(head), "POST /b/big HTTP/1.1\r\nHost: svc\r\n"
					     "Content-Length: %zu\r\n\r\n", sizeof(big) - 100000);
		ASSERT_EQ(cl_send(c, head), 0);
		ASSERT_EQ(tlb_send_all(c->fd, big, sizeof(big) - 100000), 0);
		ASSERT_EQ(cl_resp(c, r), 0);
		ASSERT_EQ(r->status, 200);
		ASSERT_STREQ(r->body, "got 200000");
		(void)sa;
		cl_close(c);
	}
}

static void t_upgrade(struct tenv *e, struct cl *c, struct cresp *r)
{
	ASSERT_EQ(cl_open(c, e->port), 0);
	ASSERT_EQ(cl_send(c, "GET /b/ws HTTP/1.1\r\nHost: svc\r\nConnection: Upgrade\r\n"
			     "Upgrade: websocket\r\n\r\n"), 0);
	ASSERT_EQ(cl_resp(c, r), 0);
	ASSERT_EQ(r->status, 101);
	ASSERT_EQ(cl_send(c, "ping-1"), 0);
	while (c->len < 6 && !cl_fill(c))
		;
	ASSERT_EQ(c->len, 6);
	ASSERT_TRUE(memcmp(c->buf, "ping-1", 6) == 0);
	cl_close(c);
}

static void t_malformed(struct tenv *e, struct cl *c, struct cresp *r)
{
	char v[64];

	ASSERT_EQ(cl_open(c, e->port), 0);
	ASSERT_EQ(cl_send(c, "POST /b/echo HTTP/1.1\r\nHost: svc\r\nContent-Length: 5\r\n"
			     "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), 0);
	ASSERT_EQ(cl_resp(c, r), 0);
	ASSERT_EQ(r->status, 400);
	ASSERT_STREQ(cl_hdr(r, "connection", v, sizeof(v)), "close");
	ASSERT_TRUE(cl_eof(c));
	cl_close(c);
	ASSERT_EQ(cl_open(c, e->port), 0);
	ASSERT_EQ(cl_send(c, "GET / HTTP/2.0\r\nHost: svc\r\n\r\n"), 0);
	ASSERT_EQ(cl_resp(c, r), 0);
	ASSERT_EQ(r->status, 505);
	cl_close(c);
	ASSERT_EQ(cl_open(c, e->port), 0);
	ASSERT_EQ(cl_send(c, "\x01\x02garbage\r\n\r\n"), 0);
	ASSERT_EQ(cl_resp(c, r), 0);
	ASSERT_EQ(r->status, 400);
	cl_close(c);
	/* the next connection still works */
	ASSERT_EQ(t_get(e, "GET /b/echo HTTP/1.1\r\nHost: svc\r\n\r\n", r), 0);
	ASSERT_EQ(r->status, 200);

	/* no original destination: refused without a byte */
	atomic_store(&t_refuse, 1);
	ASSERT_EQ(cl_open(c, e->port), 0);
	cl_send(c, "GET /b/echo HTTP/1.1\r\nHost: svc\r\n\r\n");
	ASSERT_TRUE(cl_eof(c));
	cl_close(c);
	atomic_store(&t_refuse, 0);
}

static uint16_t t_free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	uint16_t port = 0;

	if (fd >= 0 && !bind(fd, (struct sockaddr *)&sa, sizeof(sa)) &&
	    !getsockname(fd, (struct sockaddr *)&sa, &sl))
		port = ntohs(sa.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static void t_gateway(struct tenv *e, struct cl *c, struct cresp *r)
{
	int i;

	/* the worker opens Gateway listeners itself: give it a moment */
	for (i = 0; i < 100 && cl_open(c, t_gw_port); i++)
		usleep(10000);
	if (!ASSERT_LT_100(i))
		return;
	ASSERT_EQ(cl_send(c, "GET /x HTTP/1.1\r\nHost: a.example.com:8080\r\n\r\n"), 0);
	ASSERT_EQ(cl_resp(c, r), 0);
	ASSERT_EQ(r->status, 200);
	ASSERT_STREQ(r->body, "gw-a");
	ASSERT_EQ(cl_send(c, "GET /b/echo HTTP/1.1\r\nHost: b.example.com\r\n"
			     "X-Forwarded-For: 1.2.3.4\r\n\r\n"), 0);
	ASSERT_EQ(cl_resp(c, r), 0);
	ASSERT_EQ(r->status, 200);
	ASSERT_STRSTR(r->body, "x-forwarded-for: 1.2.3.4,127.0.0.1\r\n");
	ASSERT_EQ(cl_send(c, "GET / HTTP/1.1\r\nHost: other.org\r\n\r\n"), 0);
	ASSERT_EQ(cl_resp(c, r), 0);
	ASSERT_EQ(r->status, 404);
	cl_close(c);
	/* gateway connections need no original destination */
	atomic_store(&t_refuse, 1);
	ASSERT_EQ(t_get_port(t_gw_port, "GET / HTTP/1.1\r\nHost: a.example.com\r\n\r\n", r), 0);
	ASSERT_EQ(r->status, 200);
	atomic_store(&t_refuse, 0);
}

static void t_mirror(struct tenv *e, struct cl *c, struct cresp *r)
{
	static char big[200000];
	char head[128];
	int i;

	ASSERT_EQ(t_get(e, "GET /mirror/echo HTTP/1.1\r\nHost: svc\r\n\r\n", r), 0);
	ASSERT_EQ(r->status, 200);
	ASSERT_STRSTR(r->body, "host: svc\r\n");
	for (i = 0; i < 2000 && atomic_load(&e->be.shadow) < 1; i++)
		usleep(5000);
	ASSERT_EQ(atomic_load(&e->be.shadow), 1);

	/*
	 * Bodies are streamed to the shadow as they come: one over the old
	 * 64 KiB bound, and a chunked one whose pieces arrive apart.
	 */
	memset(big, 'b', sizeof(big));
	snprintf(head, sizeof(head), "POST /mirror/big HTTP/1.1\r\nHost: svc\r\n"
		 "Content-Length: %zu\r\n\r\n", sizeof(big));
	ASSERT_EQ(cl_open(c, e->port), 0);
	ASSERT_EQ(cl_send(c, head), 0);
	ASSERT_EQ(tlb_send_all(c->fd, big, sizeof(big)), 0);
	ASSERT_EQ(cl_resp(c, r), 0);
	ASSERT_EQ(r->status, 200);
	ASSERT_STREQ(r->body, "got 200000");
	ASSERT_EQ(cl_send(c, "POST /mirror/big HTTP/1.1\r\nHost: svc\r\n"
			  "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"), 0);
	usleep(20000);
	ASSERT_EQ(cl_send(c, "6\r\n world\r\n0\r\n\r\n"), 0);
	ASSERT_EQ(cl_resp(c, r), 0);
	ASSERT_EQ(r->status, 200);
	cl_close(c);
	for (i = 0; i < 2000 && atomic_load(&e->be.shadow) < 3; i++)
		usleep(5000);
	ASSERT_EQ(atomic_load(&e->be.shadow), 3);
	/* 200000 + the chunked body as framed: "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n" */
	ASSERT_EQ(atomic_load(&e->be.shadow_body), 200000 + 26);
}

static void t_reload(struct tenv *e, struct cl *c, struct cresp *r)
{
	int before = atomic_load(&e->be.requests);

	/*
	 * A request in flight keeps the config it started with: the new one
	 * comes once the backend has the request (routed by the old config),
	 * not after a time a slow machine may need more than.
	 */
	ASSERT_EQ(cl_open(c, e->port), 0);
	ASSERT_EQ(cl_send(c, "GET /b/slow/300 HTTP/1.1\r\nHost: svc\r\n\r\n"), 0);
	for (int i = 0; i < 2000 && atomic_load(&e->be.requests) == before; i++)
		usleep(5000);
	ASSERT_NE(atomic_load(&e->be.requests), before);
	t_build(&e->cfg2, e->be.port, 1, "direct-v2");
	e->cfg2.c.generation = 2;
	l7_config_get(&e->cfg2.c);	/* keep one: the test owns the storage */
	proxy_set_config(e->p, &e->cfg2.c);
	ASSERT_EQ(cl_resp(c, r), 0);
	ASSERT_EQ(r->status, 200);
	ASSERT_STREQ(r->body, "slow");
	for (int i = 0; i < 10000 && __atomic_load_n(&e->cfg.c.refs, __ATOMIC_ACQUIRE) != 1; i++)
		usleep(1000);
	ASSERT_EQ(e->cfg.c.refs, 1);	/* the worker let go of the old one */
	cl_close(c);
	ASSERT_EQ(t_get(e, "GET /direct HTTP/1.1\r\nHost: svc\r\n\r\n", r), 0);
	ASSERT_STREQ(r->body, "direct-v2");
	ASSERT_EQ(t_get(e, "GET /b/echo HTTP/1.1\r\nHost: svc\r\n\r\n", r), 0);
	ASSERT_EQ(r->status, 200);
}

/*
 * Local replies are counted under the service they were addressed to, as
 * Istio's stats filter labels them (the route's cluster, else the Host
 * header's service): fault aborts (FI), no route (NR), overflow (UO),
 * timeouts (UT), never destination_service "unknown".
 */
static void t_local_reply_series(struct tenv *e)
{
	static const struct { const char *flags; int code; } want[] = {
		{ "FI", 418 }, { "NR", 404 }, { "UO", 503 }, { "UT", 504 },
	};
	struct proxy_rseries *v = NULL;
	size_t n = 0;

	if (!ASSERT_EQ(proxy_request_series(e->p, &v, &n), 0))
		return;
	for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
		bool seen = false;

		for (size_t i = 0; i < n; i++) {
			if (v[i].code != want[k].code || strcmp(v[i].flags, want[k].flags))
				continue;
			seen = true;
			/* a gateway request for a host no route serves: that Host */
			if (!strcmp(v[i].fqdn, "other.org") && !strcmp(want[k].flags, "NR"))
				continue;
			if (!ASSERT_STREQ(v[i].fqdn, "svc.default.svc.cluster.local"))
				fprintf(stderr, "  series %d %s\n", want[k].code, want[k].flags);
		}
		if (!ASSERT_TRUE(seen))
			fprintf(stderr, "  no series %d %s\n", want[k].code, want[k].flags);
	}
	free(v);
}

static void t_stats_log(struct tenv *e)
{
	json_t *j = proxy_stats_json(e->p);
	json_t *flags = json_object_get(j, "response_flags");
	char buf[65536];
	ssize_t n;

	ASSERT_GE(json_integer_value(json_object_get(j, "downstream_rq_total")), 20);
	ASSERT_GE(json_integer_value(json_object_get(j, "downstream_cx_refused_no_orig_dst")), 1);
	ASSERT_GE(json_integer_value(json_object_get(j, "downstream_rq_bad")), 3);
	ASSERT_GE(json_integer_value(json_object_get(j, "upstream_rq_retry")), 5);
	ASSERT_GE(json_integer_value(json_object_get(flags, "NR")), 1);
	ASSERT_GE(json_integer_value(json_object_get(flags, "UO")), 1);
	ASSERT_GE(json_integer_value(json_object_get(flags, "UT")), 1);
	ASSERT_GE(json_integer_value(json_object_get(flags, "FI")), 1);
	ASSERT_GE(json_integer_value(json_object_get(flags, "UF")), 1);
	ASSERT_GE(json_integer_value(json_object_get(flags, "URX")), 1);
	ASSERT_TRUE(json_object_get(json_object_get(j, "clusters"),
				    "outbound|80|cb|svc.default.svc.cluster.local") != NULL);
	json_decref(j);
	t_local_reply_series(e);
	n = read(e->logp[0], buf, sizeof(buf) - 1);
	ASSERT_GE(n, 1);
	if (n > 0) {
		buf[n] = '\0';
		ASSERT_STRSTR(buf, "\"GET /nothing HTTP/1.1\" 404 NR ");
		ASSERT_STRSTR(buf, "\"GET /timeout/slow/2500 HTTP/1.1\" 504 UT ");
		ASSERT_STRSTR(buf, "\"127.0.0.1:");
	}
}

TEST(proxy_loopback_integration)
{
	static struct tenv e;
	static struct cl c;
	static struct cresp r;
	struct proxy_opts o = { 0 };
	char err[256] = "";

	signal(SIGPIPE, SIG_IGN);
	if (!ASSERT_EQ(be_start(&e.be), 0))
		return;
	if (!ASSERT_EQ(pipe2(e.logp, O_NONBLOCK), 0))
		return;
	fcntl(e.logp[0], F_SETPIPE_SZ, 1 << 20);
	e.up = up_registry_new(NULL, NULL);
	t_gw_port = t_free_port();
	t_build(&e.cfg, e.be.port, 1, "direct!");
	l7_config_get(&e.cfg.c);	/* keep one: the test owns the storage */
	o.workers = 1;
	o.listen_addr = htonl(INADDR_LOOPBACK);
	o.listen_port = 0;
	o.orig_dst = t_orig_dst;
	o.up = e.up;
	o.access_log_fd = e.logp[1];
	o.header_timeout_ms = 2000;
	e.p = proxy_start(&o, &e.cfg.c, err, sizeof(err));
	if (!ASSERT_TRUE(e.p != NULL)) {
		fprintf(stderr, "  %s\n", err);
		be_stop(&e.be);
		return;
	}
	e.port = proxy_listen_port(e.p);
	c.fd = -1;

	t_basic(&e, &c, &r);
	t_local(&e, &r);
	t_sizes(&e, &c, &r);
	t_rewrite_cors(&e, &r);
	t_retry_timeout(&e, &r);
	t_overflow(&e, &r);
	t_bodies(&e, &c, &r);
	t_upgrade(&e, &c, &r);
	t_malformed(&e, &c, &r);
	t_gateway(&e, &c, &r);
	t_mirror(&e, &c, &r);
	t_reload(&e, &c, &r);
	usleep(20000);
	t_stats_log(&e);

	proxy_stop(e.p);
	ASSERT_EQ(e.cfg.c.refs, 1);
	ASSERT_EQ(e.cfg2.c.refs, 1);
	be_stop(&e.be);
	up_registry_free(e.up);
	close(e.logp[0]);
	close(e.logp[1]);
}

/* A proxy counter from proxy_stats_json. */
static long long t_stat(struct proxy *p, const char *name)
{
	json_t *j = proxy_stats_json(p);
	long long v = json_integer_value(json_object_get(j, name));

	json_decref(j);
	return v;
}

/* Wait up to 10 s for a counter to reach want; returns the last value. */
static long long t_stat_wait(struct proxy *p, const char *name, long long want)
{
	long long v = t_stat(p, name);

	for (int i = 0; i < 1000 && v != want; i++) {
		usleep(10000);
		v = t_stat(p, name);
	}
	return v;
}

/*
 * Hostile clients: max_conns is one limit for all workers (connections
 * over it are accepted and closed before a byte, counted as overflow), a
 * slot comes back when its connection closes; a head that never completes
 * gets 408 and a close after header_timeout_ms from its first byte.
 */
TEST(proxy_limits)
{
	static struct tcfg cfg;
	static struct cl held[4], extra, c;
	static struct cresp r;
	struct proxy_opts o = { 0 };
	struct up_registry *up = up_registry_new(NULL, NULL);
	const char *get = "GET /direct HTTP/1.1\r\nHost: svc\r\n\r\n";
	char err[256] = "";
	struct proxy *p;
	uint64_t t0, ms;
	int i;

	signal(SIGPIPE, SIG_IGN);
	t_build(&cfg, 1, 1, "direct!");
	l7_config_get(&cfg.c);	/* keep one: the test owns the storage */
	o.workers = 2;
	o.listen_addr = htonl(INADDR_LOOPBACK);
	o.orig_dst = t_orig_dst;
	o.up = up;
	o.access_log_fd = -1;
	o.max_conns = 4;
	o.header_timeout_ms = 300;
	p = proxy_start(&o, &cfg.c, err, sizeof(err));
	if (!ASSERT_TRUE(p != NULL)) {
		fprintf(stderr, "  %s\n", err);
		up_registry_free(up);
		return;
	}
	for (i = 0; i < 4; i++)
		ASSERT_EQ(cl_open(&held[i], proxy_listen_port(p)), 0);
	ASSERT_EQ(t_stat_wait(p, "downstream_cx_active", 4), 4);
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(cl_open(&extra, proxy_listen_port(p)), 0);
		ASSERT_TRUE(cl_eof(&extra));	/* over the limit: closed at once */
		cl_close(&extra);
	}
	ASSERT_EQ(t_stat(p, "downstream_cx_overflow"), 2);
	for (i = 0; i < 4; i++) {		/* the admitted ones are served */
		ASSERT_EQ(cl_send(&held[i], get), 0);
		ASSERT_EQ(cl_resp(&held[i], &r), 0);
		ASSERT_EQ(r.status, 200);
	}
	cl_close(&held[0]);
	ASSERT_EQ(t_stat_wait(p, "downstream_cx_active", 3), 3);
	ASSERT_EQ(t_get_port(proxy_listen_port(p), get, &r), 0);	/* a slot came back */
	ASSERT_EQ(r.status, 200);
	ASSERT_EQ(t_stat(p, "downstream_cx_overflow"), 2);

	/* slowloris: the blank line never comes */
	ASSERT_EQ(t_stat_wait(p, "downstream_cx_active", 3), 3);
	ASSERT_EQ(cl_open(&c, proxy_listen_port(p)), 0);
	t0 = now_ms();
	ASSERT_EQ(cl_send(&c, "GET /direct HTTP/1.1\r\nHost: svc\r\n"), 0);
	ASSERT_EQ(cl_resp(&c, &r), 0);
	ms = now_ms() - t0;
	ASSERT_EQ(r.status, 408);
	ASSERT_TRUE(cl_eof(&c));
	ASSERT_GE(ms, 290);
	ASSERT_LE(ms, 3000);	/* the 300 ms, not a default of seconds; room for a slow machine */
	ASSERT_EQ(t_stat(p, "downstream_rq_header_timeout"), 1);
	cl_close(&c);
	for (i = 1; i < 4; i++)
		cl_close(&held[i]);
	ASSERT_EQ(t_stat_wait(p, "downstream_cx_active", 0), 0);
	ASSERT_EQ(t_stat(p, "max_conns"), 4);
	ASSERT_EQ(t_stat(p, "header_timeout_ms"), 300);
	proxy_stop(p);
	ASSERT_EQ(cfg.c.refs, 1);
	up_registry_free(up);
}

/* ---- HTTP/2: an idle stream holds no buffer ---- */

/* An HTTP/2 frame header into p (9 bytes). */
static size_t h2t_frame(uint8_t *p, uint32_t len, uint8_t type, uint8_t flags, uint32_t sid)
{
	p[0] = (uint8_t)(len >> 16);
	p[1] = (uint8_t)(len >> 8);
	p[2] = (uint8_t)len;
	p[3] = type;
	p[4] = flags;
	p[5] = (uint8_t)(sid >> 24);
	p[6] = (uint8_t)(sid >> 16);
	p[7] = (uint8_t)(sid >> 8);
	p[8] = (uint8_t)sid;
	return 9;
}

/* HPACK literal field without indexing, new name, no Huffman (short strings). */
static size_t h2t_field(uint8_t *p, const char *n, const char *v)
{
	size_t nl = strlen(n), vl = strlen(v), o = 0;

	p[o++] = 0;
	p[o++] = (uint8_t)nl;
	memcpy(p + o, n, nl);
	o += nl;
	p[o++] = (uint8_t)vl;
	memcpy(p + o, v, vl);
	return o + vl;
}

/*
 * A client HTTP/2 stream whose request head went out and nothing else
 * (HEADERS without END_STREAM; the backend waits for the body): once the
 * proxy forwarded the head and went idle, the stream holds no I/O buffer
 * anywhere on its path (bridge queues, engine read/output buffers, the
 * upstream connection's read buffer), per the gauges px_h2_tick
 * publishes. Then the body comes and the response goes back as usual.
 */
TEST(proxy_h2_idle_stream_holds_no_buffer)
{
	static struct tcfg cfg;
	static struct be be;
	static struct cl c;
	struct proxy_opts o = { 0 };
	struct up_registry *up = up_registry_new(NULL, NULL);
	uint8_t out[512], in[4096];
	size_t n = 0, hb, got = 0;
	long long open = 0, bytes = -1;
	char err[256] = "";
	bool resp = false;
	struct proxy *p;

	signal(SIGPIPE, SIG_IGN);
	if (!ASSERT_EQ(be_start(&be), 0))
		return;
	t_build(&cfg, be.port, 1, "direct!");
	l7_config_get(&cfg.c);
	o.workers = 1;
	o.listen_addr = htonl(INADDR_LOOPBACK);
	o.orig_dst = t_orig_dst;
	o.up = up;
	o.access_log_fd = -1;
	p = proxy_start(&o, &cfg.c, err, sizeof(err));
	if (!ASSERT_TRUE(p != NULL)) {
		fprintf(stderr, "  %s\n", err);
		be_stop(&be);
		up_registry_free(up);
		return;
	}
	ASSERT_EQ(cl_open(&c, proxy_listen_port(p)), 0);
	memcpy(out, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
	n = 24;
	n += h2t_frame(out + n, 0, 4, 0, 0);			/* SETTINGS */
	hb = n;
	n += 9;
	n += h2t_field(out + n, ":method", "POST");
	n += h2t_field(out + n, ":scheme", "http");
	n += h2t_field(out + n, ":path", "/b/idle");
	n += h2t_field(out + n, ":authority", "svc");
	n += h2t_field(out + n, "content-type", "application/grpc");
	h2t_frame(out + hb, (uint32_t)(n - hb - 9), 1, 0x4, 1);	/* HEADERS, END_HEADERS */
	ASSERT_EQ(tlb_send_all(c.fd, (const char *)out, n), 0);

	/* the gauges come once a second: the stream open, its buffers gone */
	for (int i = 0; i < 1000 && !(open == 1 && bytes == 0); i++) {
		usleep(10000);
		open = t_stat(p, "h2_streams_open");
		bytes = t_stat(p, "h2_stream_buffer_bytes");
	}
	ASSERT_EQ(open, 1);
	ASSERT_EQ(bytes, 0);

	n = h2t_frame(out, 2, 0, 0x1, 1);			/* DATA "hi", END_STREAM */
	memcpy(out + n, "hi", 2);
	n += 2;
	ASSERT_EQ(tlb_send_all(c.fd, (const char *)out, n), 0);
	for (int i = 0; i < 1000 && !resp; i++) {
		struct pollfd pfd = { .fd = c.fd, .events = POLLIN };
		ssize_t r;

		if (poll(&pfd, 1, 10) <= 0)
			continue;
		r = recv(c.fd, in + got, sizeof(in) - got, 0);
		if (r <= 0)
			break;
		got += (size_t)r;
		/* frames: a HEADERS on stream 1 is the response head */
		for (size_t off = 0; off + 9 <= got;) {
			uint32_t len = (uint32_t)in[off] << 16 | (uint32_t)in[off + 1] << 8 | in[off + 2];
			uint32_t sid = ((uint32_t)in[off + 5] << 24 | (uint32_t)in[off + 6] << 16 |
					(uint32_t)in[off + 7] << 8 | in[off + 8]) & 0x7fffffff;

			if (in[off + 3] == 1 && sid == 1)
				resp = true;
			off += 9 + len;
		}
		if (got == sizeof(in))
			break;
	}
	ASSERT_TRUE(resp);
	ASSERT_EQ(atomic_load(&be.requests), 1);
	cl_close(&c);
	proxy_stop(p);
	ASSERT_EQ(cfg.c.refs, 1);
	be_stop(&be);
	up_registry_free(up);
}
