// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * http1 parser and chunked decoder: table-driven valid / invalid /
 * smuggling cases, every prefix of a valid head is INCOMPLETE, inputs that
 * end right at a PROT_NONE page (over-reads fault), chunked bodies fed whole,
 * byte by byte and in random splits.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "proxy/http1.h"
#include "test.h"

/* ---- helpers ---- */

static char *guard_base;
static size_t guard_page;

/* Copy s[0..n) so that it ends exactly where a PROT_NONE page starts. */
static const char *guard_place(const char *s, size_t n)
{
	if (!guard_base) {
		guard_page = (size_t)sysconf(_SC_PAGESIZE) * 32;
		guard_base = mmap(NULL, guard_page * 2, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (guard_base == MAP_FAILED) {
			guard_base = NULL;
			return NULL;
		}
		if (mprotect(guard_base + guard_page, guard_page, PROT_NONE))
			return NULL;
	}
	if (n > guard_page)
		return NULL;
	memcpy(guard_base + guard_page - n, s, n);
	return guard_base + guard_page - n;
}

static int str_is(struct http1_str s, const char *want)
{
	return s.n == strlen(want) && !memcmp(s.p, want, s.n);
}

#define ASSERT_SPAN(s, want) ({ int __ok = str_is(s, want);		\
	if (!__ok)							\
		TEST_FAIL_("%s: expected \"%s\", got \"%.*s\"", #s, want,	\
			   (int)(s).n, (s).p);				\
	__ok; })

/* ---- requests ---- */

struct req_case {
	const char *in;
	const char *method, *path, *query, *host;
	int minor;
	enum http1_body body;
	uint64_t cl;
	int keep_alive, expect, upgrade;
	size_t n_headers;
	size_t tail;		/* bytes after the head (pipelined / body) */
};

static const struct req_case req_valid[] = {
	{ "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
	  "GET", "/", "", "a", 1, HTTP1_BODY_NONE, 0, 1, 0, 0, 1, 0 },
	{ "GET /p/q?x=1&y=2 HTTP/1.1\r\nHost: svc.ns:8080\r\nUser-Agent: curl/7.88\r\nAccept: */*\r\n\r\n",
	  "GET", "/p/q", "x=1&y=2", "svc.ns:8080", 1, HTTP1_BODY_NONE, 0, 1, 0, 0, 3, 0 },
	{ "GET /? HTTP/1.1\r\nHost: a\r\n\r\n",
	  "GET", "/", "", "a", 1, HTTP1_BODY_NONE, 0, 1, 0, 0, 1, 0 },
	{ "POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
	  "POST", "/u", "", "a", 1, HTTP1_BODY_LENGTH, 5, 1, 0, 0, 2, 5 },
	{ "POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
	  "POST", "/u", "", "a", 1, HTTP1_BODY_NONE, 0, 1, 0, 0, 2, 0 },
	{ "POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n",
	  "POST", "/u", "", "a", 1, HTTP1_BODY_LENGTH, 5, 1, 0, 0, 3, 0 },
	{ "POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 7 , 7,7\r\n\r\n",
	  "POST", "/u", "", "a", 1, HTTP1_BODY_LENGTH, 7, 1, 0, 0, 2, 0 },
	{ "POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551615\r\n\r\n",
	  "POST", "/u", "", "a", 1, HTTP1_BODY_LENGTH, UINT64_MAX, 1, 0, 0, 2, 0 },
	{ "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
	  "POST", "/c", "", "a", 1, HTTP1_BODY_CHUNKED, 0, 1, 0, 0, 2, 15 },
	{ "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED \r\n\r\n",
	  "POST", "/c", "", "a", 1, HTTP1_BODY_CHUNKED, 0, 1, 0, 0, 2, 0 },
	{ "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
	  "GET", "/", "", "a", 1, HTTP1_BODY_NONE, 0, 0, 0, 0, 2, 0 },
	{ "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Close\r\n\r\n",
	  "GET", "/", "", "a", 1, HTTP1_BODY_NONE, 0, 0, 0, 0, 2, 0 },
	{ "GET / HTTP/1.0\r\n\r\n",
	  "GET", "/", "", "", 0, HTTP1_BODY_NONE, 0, 0, 0, 0, 0, 0 },
	{ "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
	  "GET", "/", "", "", 0, HTTP1_BODY_NONE, 0, 1, 0, 0, 1, 0 },
	{ "POST / HTTP/1.0\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabc",
	  "POST", "/", "", "", 0, HTTP1_BODY_LENGTH, 3, 0, 0, 0, 2, 3 },
	{ "PUT /f HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 10\r\n\r\n",
	  "PUT", "/f", "", "a", 1, HTTP1_BODY_LENGTH, 10, 1, 1, 0, 3, 0 },
	{ "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n"
	  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
	  "GET", "/ws", "", "a", 1, HTTP1_BODY_NONE, 0, 1, 0, 1, 5, 0 },
	{ "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n",
	  "GET", "/ws", "", "a", 1, HTTP1_BODY_NONE, 0, 1, 0, 0, 2, 0 },
	{ "GET http://example.com:81/a/b?c HTTP/1.1\r\nHost: other\r\n\r\n",
	  "GET", "/a/b", "c", "example.com:81", 1, HTTP1_BODY_NONE, 0, 1, 0, 0, 1, 0 },
	{ "GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n",
	  "GET", "/", "", "example.com", 1, HTTP1_BODY_NONE, 0, 1, 0, 0, 1, 0 },
	{ "GET HTTPS://h?q=1 HTTP/1.1\r\nHost: h\r\n\r\n",
	  "GET", "/", "q=1", "h", 1, HTTP1_BODY_NONE, 0, 1, 0, 0, 1, 0 },
	{ "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
	  "OPTIONS", "", "", "a", 1, HTTP1_BODY_NONE, 0, 1, 0, 0, 1, 0 },
	{ "CONNECT db.ns:5432 HTTP/1.1\r\nHost: db.ns:5432\r\n\r\n",
	  "CONNECT", "", "", "db.ns:5432", 1, HTTP1_BODY_NONE, 0, 1, 0, 0, 1, 0 },
	{ "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
	  "GET", "/", "", "a", 1, HTTP1_BODY_NONE, 0, 1, 0, 0, 1, 0 },
	{ "GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Ws: \t v a l \t \r\nX-Obs: caf\xc3\xa9\r\n"
	  "end-user: jason\r\n\r\nGET / HTTP/1.1\r\n",
	  "GET", "/", "", "a", 1, HTTP1_BODY_NONE, 0, 1, 0, 0, 5, 16 },
	{ "M-SEARCH! /~a%20b;c=d HTTP/1.1\r\nHost: \r\n!#$%&'*+-.^_`|~09azAZ: ok\r\n\r\n",
	  "M-SEARCH!", "/~a%20b;c=d", "", "", 1, HTTP1_BODY_NONE, 0, 1, 0, 0, 2, 0 },
};

static int req_check(const struct req_case *c, const char *buf, size_t len, size_t idx)
{
	struct http1_msg m;
	int r = http1_parse_request(buf, len, &m);
	int ok = 1;

	ok &= ASSERT_EQ(r, (long long)(len - c->tail));
	if (r < 0) {
		fprintf(stderr, "  case %zu\n", idx);
		return 0;
	}
	ok &= ASSERT_SPAN(m.method, c->method);
	ok &= ASSERT_SPAN(m.path, c->path);
	ok &= ASSERT_SPAN(m.query, c->query);
	ok &= ASSERT_SPAN(m.host, c->host);
	ok &= ASSERT_EQ(m.minor_version, c->minor);
	ok &= ASSERT_EQ(m.body, c->body);
	ok &= ASSERT_EQ(m.content_length, c->cl);
	ok &= ASSERT_EQ(m.keep_alive, c->keep_alive);
	ok &= ASSERT_EQ(m.expect_continue, c->expect);
	ok &= ASSERT_EQ(m.upgrade, c->upgrade);
	ok &= ASSERT_EQ(m.n_headers, c->n_headers);
	if (!ok)
		fprintf(stderr, "  case %zu\n", idx);
	return ok;
}

/*
 * A message cut after its headers (http1_msg_size, what the proxy keeps per
 * stream) keeps every field: headers[] is the last member. Under ASan a
 * read past the cut fails.
 */
TEST(http1_msg_cut_to_headers)
{
	static const char in[] = "POST /a?b=1 HTTP/1.1\r\nHost: svc:80\r\n"
				 "Content-Length: 5\r\nX-A: 1\r\n\r\n";
	struct http1_msg m, *c;
	const struct http1_header *h;

	ASSERT_EQ(http1_parse_request(in, sizeof(in) - 1, &m), (long long)(sizeof(in) - 1));
	ASSERT_EQ(m.n_headers, 3);
	ASSERT_EQ(http1_msg_size(m.n_headers),
		  sizeof(m) - (HTTP1_MAX_HEADERS - 3) * sizeof(struct http1_header));
	c = malloc(http1_msg_size(m.n_headers));
	if (!ASSERT_TRUE(c != NULL))
		return;
	memcpy(c, &m, http1_msg_size(m.n_headers));
	ASSERT_SPAN(c->method, "POST");
	ASSERT_SPAN(c->path, "/a");
	ASSERT_SPAN(c->host, "svc:80");
	ASSERT_EQ(c->body, HTTP1_BODY_LENGTH);
	ASSERT_EQ(c->content_length, 5);
	ASSERT_EQ(c->keep_alive, 1);
	h = http1_header_get(c, "x-a");
	if (ASSERT_TRUE(h != NULL))
		ASSERT_SPAN(h->value, "1");
	ASSERT_TRUE(http1_header_get(c, "x-none") == NULL);
	free(c);
}

TEST(http1_request_valid)
{
	for (size_t i = 0; i < sizeof(req_valid) / sizeof(req_valid[0]); i++) {
		const struct req_case *c = &req_valid[i];
		size_t len = strlen(c->in);
		const char *g = guard_place(c->in, len);

		req_check(c, c->in, len, i);
		if (ASSERT_TRUE(g))
			req_check(c, g, len, i);
	}
}

TEST(http1_request_fields)
{
	static const char in[] = "GET / HTTP/1.1\r\nHost: a\r\nX-Ws: \t v a l \t \r\nX-Empty:\r\n\r\n";
	struct http1_msg m;
	const struct http1_header *h;

	ASSERT_EQ(http1_parse_request(in, sizeof(in) - 1, &m), sizeof(in) - 1);
	h = http1_header_get(&m, "x-ws");
	if (ASSERT_TRUE(h)) {
		ASSERT_SPAN(h->name, "X-Ws");
		ASSERT_SPAN(h->value, "v a l");
	}
	h = http1_header_get(&m, "X-EMPTY");
	if (ASSERT_TRUE(h))
		ASSERT_EQ(h->value.n, 0);
	ASSERT_TRUE(http1_header_get(&m, "host") == &m.headers[0]);
	ASSERT_TRUE(http1_header_get(&m, "x-w") == NULL);
	ASSERT_SPAN(m.target, "/");
}

/*
 * A request whose head is pre, then 40 bytes of fill with octet c at pos,
 * then post, placed at a guard page (a scan past the input faults): true
 * when http1_parse_request takes it whole exactly if ok, else says why.
 */
static bool octet_case(const char *pre, char fill, int pos, int c, const char *post, bool ok)
{
	char in[128];
	struct http1_msg m;
	int n = snprintf(in, sizeof(in), "%s", pre), r;
	const char *g;

	for (int i = 0; i < 40; i++)
		in[n + i] = i == pos ? (char)c : fill;
	n += 40;
	n += snprintf(in + n, sizeof(in) - (size_t)n, "%s", post);
	g = guard_place(in, (size_t)n);
	if (!ASSERT_TRUE(g))
		return false;
	r = http1_parse_request(g, (size_t)n, &m);
	if (ok && r != n) {
		TEST_FAIL_("%s octet 0x%02x at %d: %d, want %d", pre, c, pos, r, n);
		return false;
	}
	if (!ok && r >= 0) {
		TEST_FAIL_("%s octet 0x%02x at %d: accepted", pre, c, pos);
		return false;
	}
	return true;
}

/*
 * Every octet at every position of a 40-byte value (the parser scans values
 * 16 bytes at a time): accepted exactly when it is HTAB, SP..'~' or
 * obs-text; CR/LF end the value early (EBAD: a bare CR or LF).
 */
TEST(http1_value_octets)
{
	for (int c = 0; c < 256; c++) {
		bool ok = c == '\t' || (c >= 0x20 && c <= 0x7e) || c >= 0x80;

		for (int pos = 0; pos < 40; pos++)
			if (!octet_case("GET / HTTP/1.1\r\nHost: a\r\nX-V: ", 'v', pos, c,
					"\r\n\r\n", ok))
				return;
	}
}

/*
 * Every octet at every position of a 40-byte field name (scanned 16 bytes
 * at a time): accepted exactly when it is a tchar, or a ':' after the
 * first position (the name ends there, the rest is value).
 */
TEST(http1_name_octets)
{
	static const char tchar[] = "!#$%&'*+-.^_`|~";

	for (int c = 0; c < 256; c++) {
		bool tok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
			   (c >= 'A' && c <= 'Z') || (c && strchr(tchar, c));

		for (int pos = 0; pos < 40; pos++)
			if (!octet_case("GET / HTTP/1.1\r\nHost: a\r\n", 'n', pos, c, ": v\r\n\r\n",
					tok || (c == ':' && pos > 0)))
				return;
	}
}

/*
 * http1_request_from_fields (an HTTP/2 head handed over without text) says
 * what http1_parse_request says about the same head as HTTP/1.1 text: the
 * same verdict, and for accepted heads the same derived fields.
 */
TEST(http1_request_from_fields_matches_text)
{
	static const struct {
		const char *method, *target;
		const char *fields[8][2];
	} cases[] = {
		{ "GET", "/a?b=1", { { "host", "svc" }, { "user-agent", "t" } } },
		{ "POST", "/sm.Echo/Say", { { "host", "svc:80" }, { "transfer-encoding", "chunked" },
					    { "content-type", "application/grpc" }, { "te", "trailers" } } },
		{ "POST", "/", { { "host", "svc" }, { "content-length", "0" } } },
		{ "PUT", "/", { { "host", "svc" }, { "content-length", "12" } } },
		{ "POST", "/", { { "host", "svc" }, { "content-length", "5" },
				 { "transfer-encoding", "chunked" } } },
		{ "POST", "/", { { "host", "svc" }, { "content-length", "5" }, { "content-length", "6" } } },
		{ "GET", "/", { { "user-agent", "no host" } } },
		{ "GET", "/", { { "host", "a" }, { "host", "b" } } },
		{ "GET", "/", { { "host", "a" }, { "x-ctl", "a\x01b" } } },
		{ "GET", "/", { { "host", "a" }, { "x-del", "a\x7f" } } },
		{ "GET", "/", { { "host", "a" }, { "x-obs", "caf\xc3\xa9" } } },
		{ "GET", "/", { { "host", "a" }, { "x-ows", " \tv \t" } } },
		{ "GET", "/", { { "host", "a" }, { "bad name", "v" } } },
		{ "GET", "/", { { "host", "a" }, { "connection", "close" } } },
		{ "GET", "/", { { "host", "a" }, { "expect", "100-continue" } } },
		{ "GET", "/", { { "host", "a" }, { "upgrade", "websocket" }, { "connection", "upgrade" } } },
		{ "OPTIONS", "*", { { "host", "a" } } },
		{ "GET", "*", { { "host", "a" } } },
		{ "GET", "http://other:81/p?q", { { "host", "a" } } },
		{ "GET", "nopath", { { "host", "a" } } },
		{ "G(T", "/", { { "host", "a" } } },
		{ "GET", "/caf\xc3\xa9", { { "host", "a" } } },
	};
	static struct http1_msg a, b;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[1024];
		int n = snprintf(text, sizeof(text), "%s %s HTTP/1.1\r\n", cases[i].method,
				 cases[i].target), ra, rb;
		size_t k;

		b.n_headers = 0;
		for (k = 0; k < 8 && cases[i].fields[k][0]; k++) {
			n += snprintf(text + n, sizeof(text) - (size_t)n, "%s: %s\r\n",
				      cases[i].fields[k][0], cases[i].fields[k][1]);
			b.headers[k].name = (struct http1_str){ cases[i].fields[k][0],
								strlen(cases[i].fields[k][0]) };
			b.headers[k].value = (struct http1_str){ cases[i].fields[k][1],
								 strlen(cases[i].fields[k][1]) };
		}
		b.n_headers = k;
		n += snprintf(text + n, sizeof(text) - (size_t)n, "\r\n");
		ra = http1_parse_request(text, (size_t)n, &a);
		rb = http1_request_from_fields(&b, cases[i].method, strlen(cases[i].method),
					       cases[i].target, strlen(cases[i].target));
		if ((ra < 0 ? ra : 0) != rb) {
			TEST_FAIL_("case %zu (%s %s): text %d, fields %d", i, cases[i].method,
				   cases[i].target, ra, rb);
			continue;
		}
		if (rb < 0)
			continue;
		if (a.body != b.body || a.content_length != b.content_length ||
		    a.keep_alive != b.keep_alive || a.expect_continue != b.expect_continue ||
		    a.upgrade != b.upgrade || a.n_headers != b.n_headers ||
		    a.minor_version != b.minor_version || !str_is(b.host, "") != !str_is(a.host, "") ||
		    a.host.n != b.host.n || memcmp(a.host.p, b.host.p, a.host.n) ||
		    a.path.n != b.path.n || memcmp(a.path.p, b.path.p, a.path.n) ||
		    a.query.n != b.query.n || memcmp(a.query.p, b.query.p, a.query.n)) {
			TEST_FAIL_("case %zu (%s %s): derived fields differ", i, cases[i].method,
				   cases[i].target);
			continue;
		}
		for (k = 0; k < a.n_headers; k++)
			if (a.headers[k].value.n != b.headers[k].value.n ||
			    memcmp(a.headers[k].value.p, b.headers[k].value.p, a.headers[k].value.n))
				TEST_FAIL_("case %zu: field %zu's value differs", i, k);
	}
}

/* Every strict prefix of every valid head: INCOMPLETE, also at a guard page. */
TEST(http1_request_every_prefix_incomplete)
{
	for (size_t i = 0; i < sizeof(req_valid) / sizeof(req_valid[0]); i++) {
		const char *in = req_valid[i].in;
		size_t head = strlen(in) - req_valid[i].tail;
		struct http1_msg m;

		for (size_t n = 0; n < head; n++) {
			const char *g = guard_place(in, n);

			if (!ASSERT_EQ(http1_parse_request(in, n, &m), HTTP1_INCOMPLETE) ||
			    !ASSERT_TRUE(g) ||
			    !ASSERT_EQ(http1_parse_request(g, n, &m), HTTP1_INCOMPLETE)) {
				fprintf(stderr, "  case %zu prefix %zu\n", i, n);
				break;
			}
		}
	}
}

struct bad_case {
	const char *in;
	size_t len;		/* 0: strlen(in) */
	int err;
};

#define BAD(s, e) { s, sizeof(s) - 1, e }

static const struct bad_case req_invalid[] = {
	/* request line */
	BAD("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_EBAD),
	BAD("GET /  HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_EBAD),
	BAD(" GET / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_EBAD),
	BAD("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_EBAD),
	BAD("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_EBAD),
	BAD("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", HTTP1_EBAD),
	BAD("GET / http/1.1\r\nHost: a\r\n\r\n", HTTP1_EBAD),
	BAD("GET / HTTP/1.x\r\nHost: a\r\n\r\n", HTTP1_EBAD),
	BAD("GET / HTTP/2.0\r\nHost: a\r\n\r\n", HTTP1_EVERSION),
	BAD("GET / HTTP/1.2\r\nHost: a\r\n\r\n", HTTP1_EVERSION),
	BAD("GET / HTTP/0.9\r\nHost: a\r\n\r\n", HTTP1_EVERSION),
	BAD("GET / HTTP/1.1\nHost: a\r\n\r\n", HTTP1_EBAD),
	BAD("GET / HTTP/1.1\rHost: a\r\n\r\n", HTTP1_EBAD),
	BAD("GET /a\nb HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_EBAD),
	BAD("GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_EBAD),
	BAD("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_EBAD),
	BAD("GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_EBAD),
	BAD("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_EBAD),
	BAD("\r\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_EBAD),
	/* target forms */
	BAD("GET * HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_EBAD),
	BAD("GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_EBAD),
	BAD("GET host:80 HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_EBAD),
	BAD("CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_EBAD),
	BAD("CONNECT host HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_EBAD),
	BAD("CONNECT host: HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_EBAD),
	BAD("GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_EBAD),
	BAD("GET http://u@h/x HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_EBAD),
	BAD("GET ftp://h/x HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_EBAD),
	/* header syntax */
	BAD("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", HTTP1_EBAD),
	BAD("GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n\tfolded\r\n\r\n", HTTP1_EBAD),
	BAD("GET / HTTP/1.1\r\n Host: a\r\n\r\n", HTTP1_EBAD),
	BAD("GET / HTTP/1.1\r\nHost : a\r\n\r\n", HTTP1_EBAD),
	BAD("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", HTTP1_EBAD),
	BAD("GET / HTTP/1.1\r\nX Y: 1\r\nHost: a\r\n\r\n", HTTP1_EBAD),
	BAD("GET / HTTP/1.1\r\n: v\r\nHost: a\r\n\r\n", HTTP1_EBAD),
	BAD("GET / HTTP/1.1\r\nX(y): 1\r\nHost: a\r\n\r\n", HTTP1_EBAD),
	BAD("GET / HTTP/1.1\r\nNoColon\r\nHost: a\r\n\r\n", HTTP1_EBAD),
	BAD("GET / HTTP/1.1\r\nHost: a\nX: 1\r\n\r\n", HTTP1_EBAD),
	BAD("GET / HTTP/1.1\r\nHost: a\r\nX: 1\n\r\n", HTTP1_EBAD),
	BAD("GET / HTTP/1.1\r\nHost: a\r\n\n", HTTP1_EBAD),
	BAD("GET / HTTP/1.1\r\nHost: a\rX: 1\r\n\r\n", HTTP1_EBAD),
	BAD("GET / HTTP/1.1\r\nHost: a\r\n\r\r", HTTP1_EBAD),
	BAD("GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", HTTP1_EBAD),
	BAD("GET / HTTP/1.1\r\nHost: a\r\nX: a\x01\r\n\r\n", HTTP1_EBAD),
	BAD("GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n", HTTP1_EBAD),
	BAD("GET / HTTP/1.1\r\nHost: a\r\nX\x80: a\r\n\r\n", HTTP1_EBAD),
	/* Host */
	BAD("GET / HTTP/1.1\r\n\r\n", HTTP1_EBAD),
	BAD("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", HTTP1_EBAD),
	BAD("GET / HTTP/1.1\r\nHost: a\r\nHOST: a\r\n\r\n", HTTP1_EBAD),
	/* Content-Length syntax */
	BAD("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", HTTP1_EBAD),
	BAD("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", HTTP1_EBAD),
	BAD("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", HTTP1_EBAD),
	BAD("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5a\r\n\r\n", HTTP1_EBAD),
	BAD("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 5\r\n\r\n", HTTP1_EBAD),
	BAD("POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", HTTP1_EBAD),
	BAD("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,\r\n\r\n", HTTP1_EBAD),
	BAD("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n", HTTP1_EBAD),
	BAD("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n", HTTP1_EBAD),
};

static const struct bad_case req_smuggle[] = {
	BAD("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP1_ESMUGGLE),
	BAD("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", HTTP1_ESMUGGLE),
	BAD("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", HTTP1_ESMUGGLE),
	BAD("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n", HTTP1_ESMUGGLE),
	BAD("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5, 6\r\n\r\n", HTTP1_ESMUGGLE),
	BAD("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 00000\r\nContent-Length: 1\r\n\r\n", HTTP1_ESMUGGLE),
	BAD("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n", HTTP1_ESMUGGLE),
	BAD("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", HTTP1_ESMUGGLE),
	BAD("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", HTTP1_ESMUGGLE),
	BAD("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP1_ESMUGGLE),
	BAD("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", HTTP1_ESMUGGLE),
	BAD("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", HTTP1_ESMUGGLE),
	BAD("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;x=1\r\n\r\n", HTTP1_ESMUGGLE),
	BAD("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", HTTP1_ESMUGGLE),
	BAD("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", HTTP1_ESMUGGLE),
	BAD("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,chunked\r\n\r\n", HTTP1_ESMUGGLE),
	BAD("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP1_ESMUGGLE),
	/* syntax tricks in the framing fields themselves: plain 400 */
	BAD("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", HTTP1_EBAD),
	BAD("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n chunked\r\n\r\n", HTTP1_EBAD),
	BAD("POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\n", HTTP1_EBAD),
	BAD("POST / HTTP/1.1\r\nHost: a\r\n Transfer-Encoding: chunked\r\n\r\n", HTTP1_EBAD),
	BAD("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\x0b" "chunked\r\n\r\n", HTTP1_EBAD),
	BAD("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\nContent-Length: 5\r\n\r\n", HTTP1_EBAD),
	BAD("POST / HTTP/1.1\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP1_EBAD),
	BAD("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\0\r\n\r\n", HTTP1_EBAD),
	BAD("POST / HTTP/1.1\r\nHost: a\r\nContent Length: 5\r\n\r\n", HTTP1_EBAD),
};

static void bad_run(const struct bad_case *t, size_t n, int is_req)
{
	for (size_t i = 0; i < n; i++) {
		const char *g = guard_place(t[i].in, t[i].len);
		struct http1_msg m;
		int r1, r2;

		if (is_req) {
			r1 = http1_parse_request(t[i].in, t[i].len, &m);
			r2 = g ? http1_parse_request(g, t[i].len, &m) : 0;
		} else {
			r1 = http1_parse_response(t[i].in, t[i].len, "GET", 3, &m);
			r2 = g ? http1_parse_response(g, t[i].len, "GET", 3, &m) : 0;
		}
		if (!ASSERT_EQ(r1, t[i].err) || !ASSERT_EQ(r2, t[i].err))
			fprintf(stderr, "  case %zu: %.*s\n", i, (int)t[i].len, t[i].in);
	}
}

TEST(http1_request_invalid)
{
	bad_run(req_invalid, sizeof(req_invalid) / sizeof(req_invalid[0]), 1);
}

TEST(http1_request_smuggling)
{
	bad_run(req_smuggle, sizeof(req_smuggle) / sizeof(req_smuggle[0]), 1);
}

TEST(http1_limits)
{
	size_t cap = HTTP1_MAX_HEAD + 4096, n;
	char *buf = malloc(cap);
	struct http1_msg m;

	if (!ASSERT_TRUE(buf))
		return;
	/* exactly HTTP1_MAX_HEADERS fields: fine; one more: 431 */
	n = (size_t)sprintf(buf, "GET / HTTP/1.1\r\nHost: a\r\n");
	for (int i = 1; i < HTTP1_MAX_HEADERS; i++)
		n += (size_t)sprintf(buf + n, "X-%d: v\r\n", i);
	memcpy(buf + n, "\r\n", 2);
	ASSERT_EQ(http1_parse_request(buf, n + 2, &m), n + 2);
	ASSERT_EQ(m.n_headers, HTTP1_MAX_HEADERS);
	n += (size_t)sprintf(buf + n, "X-last: v\r\n\r\n");
	ASSERT_EQ(http1_parse_request(buf, n, &m), HTTP1_ETOOLARGE);

	/* a head of exactly HTTP1_MAX_HEAD bytes is fine, one more is not */
	n = (size_t)sprintf(buf, "GET / HTTP/1.1\r\nHost: a\r\nX-Big: ");
	memset(buf + n, 'v', HTTP1_MAX_HEAD - n - 4);
	memcpy(buf + HTTP1_MAX_HEAD - 4, "\r\n\r\n", 4);
	ASSERT_EQ(http1_parse_request(buf, HTTP1_MAX_HEAD, &m), HTTP1_MAX_HEAD);
	ASSERT_EQ(http1_parse_request(buf, HTTP1_MAX_HEAD - 1, &m), HTTP1_INCOMPLETE);
	n = (size_t)sprintf(buf, "GET / HTTP/1.1\r\nHost: a\r\nX-Big: ");
	memset(buf + n, 'v', HTTP1_MAX_HEAD + 1 - n - 4);
	memcpy(buf + HTTP1_MAX_HEAD + 1 - 4, "\r\n\r\n", 4);
	ASSERT_EQ(http1_parse_request(buf, HTTP1_MAX_HEAD + 1, &m), HTTP1_ETOOLARGE);
	/* a slow giant head fails as soon as it passes the limit */
	ASSERT_EQ(http1_parse_request(buf, HTTP1_MAX_HEAD, &m), HTTP1_ETOOLARGE);
	ASSERT_EQ(http1_parse_request(buf, HTTP1_MAX_HEAD - 10, &m), HTTP1_INCOMPLETE);
	ASSERT_EQ(http1_parse_response("HTTP/1.1 200 OK\r\nX: ", 20,
				       "GET", 3, &m), HTTP1_INCOMPLETE);
	memcpy(buf, "HTTP/1.1 200 OK\r\nX: ", 20);
	memset(buf + 20, 'v', cap - 20);
	ASSERT_EQ(http1_parse_response(buf, cap, "GET", 3, &m), HTTP1_ETOOLARGE);
	free(buf);
}

TEST(http1_error_status)
{
	ASSERT_EQ(http1_error_status(HTTP1_EBAD), 400);
	ASSERT_EQ(http1_error_status(HTTP1_ESMUGGLE), 400);
	ASSERT_EQ(http1_error_status(HTTP1_ETOOLARGE), 431);
	ASSERT_EQ(http1_error_status(HTTP1_EVERSION), 505);
}

/* ---- responses ---- */

struct resp_case {
	const char *in;
	const char *req_method;
	int status;
	const char *reason;
	int minor;
	enum http1_body body;
	uint64_t cl;
	int keep_alive, upgrade;
	size_t n_headers;
	size_t tail;
};

static const struct resp_case resp_valid[] = {
	{ "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "GET",
	  200, "OK", 1, HTTP1_BODY_LENGTH, 2, 1, 0, 1, 2 },
	{ "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", "HEAD",
	  200, "OK", 1, HTTP1_BODY_NONE, 2, 1, 0, 1, 0 },
	{ "HTTP/1.1 204 \r\n\r\n", "GET",
	  204, "", 1, HTTP1_BODY_NONE, 0, 1, 0, 0, 0 },
	{ "HTTP/1.1 204\r\n\r\n", "GET",
	  204, "", 1, HTTP1_BODY_NONE, 0, 1, 0, 0, 0 },
	{ "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", "GET",
	  304, "Not Modified", 1, HTTP1_BODY_NONE, 10, 1, 0, 1, 0 },
	{ "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n", "POST",
	  100, "Continue", 1, HTTP1_BODY_NONE, 0, 1, 0, 0, 17 },
	{ "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
	  "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n", "GET",
	  101, "Switching Protocols", 1, HTTP1_BODY_NONE, 0, 1, 1, 3, 0 },
	{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "GET",
	  200, "OK", 1, HTTP1_BODY_CHUNKED, 0, 1, 0, 1, 5 },
	{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "GET",
	  200, "OK", 1, HTTP1_BODY_CHUNKED, 0, 1, 0, 1, 0 },
	{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "GET",
	  200, "OK", 1, HTTP1_BODY_CLOSE, 0, 0, 0, 1, 0 },
	{ "HTTP/1.1 200 OK\r\nServer: x\r\n\r\n", "GET",
	  200, "OK", 1, HTTP1_BODY_CLOSE, 0, 0, 0, 1, 0 },
	{ "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "GET",
	  200, "OK", 1, HTTP1_BODY_NONE, 0, 1, 0, 1, 0 },
	{ "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", "GET",
	  200, "OK", 0, HTTP1_BODY_LENGTH, 1, 0, 0, 1, 0 },
	{ "HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive\r\n\r\n", NULL,
	  200, "OK", 0, HTTP1_BODY_LENGTH, 1, 1, 0, 2, 0 },
	{ "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 3\r\nConnection: close\r\n\r\n", "GET",
	  503, "Service Unavailable", 1, HTTP1_BODY_LENGTH, 3, 0, 0, 2, 0 },
	{ "HTTP/1.1 200 Connection established\r\n\r\n", "CONNECT",
	  200, "Connection established", 1, HTTP1_BODY_NONE, 0, 1, 0, 0, 0 },
	{ "HTTP/1.1 404 N\xc3\xa4\tgt\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", "GET",
	  404, "N\xc3\xa4\tgt", 1, HTTP1_BODY_LENGTH, 5, 1, 0, 2, 0 },
};

TEST(http1_response_valid)
{
	for (size_t i = 0; i < sizeof(resp_valid) / sizeof(resp_valid[0]); i++) {
		const struct resp_case *c = &resp_valid[i];
		size_t len = strlen(c->in), head = len - c->tail;
		const char *g = guard_place(c->in, len);
		size_t mlen = c->req_method ? strlen(c->req_method) : 0;
		struct http1_msg m;
		int ok = 1;

		if (!ASSERT_TRUE(g))
			continue;
		ok &= ASSERT_EQ(http1_parse_response(g, len, c->req_method, mlen, &m),
				(long long)head);
		ok &= ASSERT_EQ(m.status, c->status);
		ok &= ASSERT_SPAN(m.reason, c->reason);
		ok &= ASSERT_EQ(m.minor_version, c->minor);
		ok &= ASSERT_EQ(m.body, c->body);
		ok &= ASSERT_EQ(m.content_length, c->cl);
		ok &= ASSERT_EQ(m.keep_alive, c->keep_alive);
		ok &= ASSERT_EQ(m.upgrade, c->upgrade);
		ok &= ASSERT_EQ(m.n_headers, c->n_headers);
		for (size_t n = 0; n < head; n++) {
			g = guard_place(c->in, n);
			if (!ASSERT_EQ(http1_parse_response(g, n, c->req_method, mlen, &m),
				       HTTP1_INCOMPLETE)) {
				ok = 0;
				fprintf(stderr, "  prefix %zu\n", n);
				break;
			}
		}
		if (!ok)
			fprintf(stderr, "  case %zu\n", i);
	}
}

static const struct bad_case resp_invalid[] = {
	BAD("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP1_ESMUGGLE),
	BAD("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", HTTP1_ESMUGGLE),
	BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", HTTP1_ESMUGGLE),
	BAD("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP1_ESMUGGLE),
	BAD("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", HTTP1_EBAD),
	BAD("HTTP/1.1 200 OK\nContent-Length: 1\r\n\r\n", HTTP1_EBAD),
	BAD("HTTP/1.1 200 OK\r\nX: 1\n\r\n", HTTP1_EBAD),
	BAD("HTTP/1.1 200 OK\r\n folded: 1\r\n\r\n", HTTP1_EBAD),
	BAD("HTTP/1.1 200 OK\r\nX : 1\r\n\r\n", HTTP1_EBAD),
	BAD("HTTP/1.1 200 O\x01K\r\n\r\n", HTTP1_EBAD),
	BAD("HTTP/1.1 2000 OK\r\n\r\n", HTTP1_EBAD),
	BAD("HTTP/1.1 20 OK\r\n\r\n", HTTP1_EBAD),
	BAD("HTTP/1.1 099 OK\r\n\r\n", HTTP1_EBAD),
	BAD("HTTP/1.1 600 OK\r\n\r\n", HTTP1_EBAD),
	BAD("HTTP/1.1  200 OK\r\n\r\n", HTTP1_EBAD),
	BAD("HTTP/1.1 200OK\r\n\r\n", HTTP1_EBAD),
	BAD("HTTP/2 200\r\n\r\n", HTTP1_EBAD),
	BAD("HTTP/2.0 200 OK\r\n\r\n", HTTP1_EVERSION),
	BAD("ICY 200 OK\r\n\r\n", HTTP1_EBAD),
};

TEST(http1_response_invalid)
{
	bad_run(resp_invalid, sizeof(resp_invalid) / sizeof(resp_invalid[0]), 0);
}

/* ---- chunked ---- */

struct chunk_case {
	const char *in;
	const char *payload;	/* NULL: expect HTTP1_EBAD */
	size_t tail;		/* bytes left after the final CRLF */
};

static const struct chunk_case chunk_cases[] = {
	{ "0\r\n\r\n", "", 0 },
	{ "5\r\nhello\r\n0\r\n\r\n", "hello", 0 },
	{ "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nGET / HTTP/1.1\r\n", "hello world", 16 },
	{ "A\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n", "0123456789abcdefghij", 0 },
	{ "00005\r\nhello\r\n000\r\n\r\n", "hello", 0 },
	{ "5;name=value;x=\"q;\"\r\nhello\r\n0;last\r\n\r\n", "hello", 0 },
	{ "5 ;ext\r\nhello\r\n0\t; e\r\n\r\n", "hello", 0 },
	{ "3\r\na\r\n\r\n0\r\nTrailer-A: 1\r\nX-Sum: abc\r\n\r\nNEXT", "a\r\n", 4 },
	/* bad */
	{ "\r\n", NULL, 0 },
	{ "g\r\n", NULL, 0 },
	{ "-5\r\nhello\r\n", NULL, 0 },
	{ "0x5\r\nhello\r\n", NULL, 0 },
	{ " 5\r\nhello\r\n", NULL, 0 },
	{ "5 \r\nhello\r\n", NULL, 0 },
	{ "5 x\r\nhello\r\n", NULL, 0 },
	{ "5\nhello\r\n0\r\n\r\n", NULL, 0 },
	{ "5\rhello\r\n0\r\n\r\n", NULL, 0 },
	{ "5\r\nhelloX\r\n0\r\n\r\n", NULL, 0 },
	{ "5\r\nhello\n0\r\n\r\n", NULL, 0 },
	{ "5\r\nhello\r0\r\n\r\n", NULL, 0 },
	{ "5\r\nhello0\r\n\r\n", NULL, 0 },
	{ "5\r\nhello\r\n0\r\n\n", NULL, 0 },
	{ "5\r\nhello\r\n0\r\nX: 1\n\r\n", NULL, 0 },
	{ "5\r\nhello\r\n0\r\n folded\r\n\r\n", NULL, 0 },
	{ "5\r\nhello\r\n0\r\n\r\r", NULL, 0 },
	{ "5;a\x01\r\nhello\r\n0\r\n\r\n", NULL, 0 },
	{ "10000000000000000\r\n", NULL, 0 },
	{ "ffffffffffffffffff\r\n", NULL, 0 },
};

/* Feed in pieces given by cut(); returns 1 and the payload, or 0 on EBAD. */
static int chunk_feed(const char *in, size_t len, size_t (*cut)(size_t left, unsigned *seed),
		      unsigned seed, size_t cap, char *payload, size_t *plen, size_t *consumed)
{
	struct http1_chunked c;
	struct http1_str out[8];
	size_t off = 0;

	http1_chunked_init(&c);
	*plen = 0;
	while (off < len && !c.done) {
		size_t piece = cut(len - off, &seed), n = cap;
		const char *g = guard_place(in + off, piece);
		int r;

		if (!g)
			return -1;
		r = http1_chunked_decode(&c, g, piece, out, &n);
		if (r < 0)
			return 0;
		for (size_t i = 0; i < n; i++) {
			if (out[i].p < g || out[i].p + out[i].n > g + r)
				return -1;
			memcpy(payload + *plen, out[i].p, out[i].n);
			*plen += out[i].n;
		}
		off += (size_t)r;
		if ((size_t)r < piece && !c.done && n < cap)
			return -1;	/* stopped early without a reason */
	}
	*consumed = off;
	return c.done ? 1 : 2;
}

static size_t cut_all(size_t left, unsigned *seed)
{
	return left;
}

static size_t cut_one(size_t left, unsigned *seed)
{
	return 1;
}

static size_t cut_rand(size_t left, unsigned *seed)
{
	size_t n = (size_t)rand_r(seed) % 7 + 1;

	return n < left ? n : left;
}

TEST(http1_chunked_table)
{
	static size_t (*const cuts[])(size_t, unsigned *) = { cut_all, cut_one, cut_rand };
	char payload[256];

	for (size_t i = 0; i < sizeof(chunk_cases) / sizeof(chunk_cases[0]); i++) {
		const struct chunk_case *t = &chunk_cases[i];
		size_t len = strlen(t->in);

		for (size_t k = 0; k < 3; k++) {
			for (unsigned seed = 1; seed <= (k == 2 ? 20u : 1u); seed++) {
				for (size_t cap = 1; cap <= 8; cap += 7) {
					size_t plen = 0, consumed = 0;
					int r = chunk_feed(t->in, len, cuts[k], seed, cap,
							   payload, &plen, &consumed);
					int ok;

					if (t->payload)
						ok = ASSERT_EQ(r, 1) &&
						     ASSERT_EQ(plen, strlen(t->payload)) &&
						     ASSERT_TRUE(!memcmp(payload, t->payload, plen)) &&
						     ASSERT_EQ(consumed, len - t->tail);
					else
						ok = ASSERT_EQ(r, 0);
					if (!ok) {
						fprintf(stderr, "  case %zu cut %zu seed %u cap %zu\n",
							i, k, seed, cap);
						goto next;
					}
				}
			}
		}
next:;
	}
}

TEST(http1_chunked_nul_and_prefixes)
{
	static const char in[] = "1\r\n\0\r\n0\r\n\r\n";
	static const char ok2[] = "5\r\nhello\r\n0\r\nT: 1\r\n\r\n";
	struct http1_chunked c;
	struct http1_str out[4];
	size_t n = 4;

	http1_chunked_init(&c);
	ASSERT_EQ(http1_chunked_decode(&c, in, sizeof(in) - 1, out, &n), sizeof(in) - 1);
	ASSERT_TRUE(c.done);
	if (ASSERT_EQ(n, 1))
		ASSERT_TRUE(out[0].n == 1 && out[0].p[0] == '\0');
	/* after done, nothing more is consumed */
	n = 4;
	ASSERT_EQ(http1_chunked_decode(&c, "5\r\n", 3, out, &n), 0);
	ASSERT_EQ(n, 0);

	/* every prefix of a valid body: no error, not done */
	for (size_t len = 0; len < sizeof(ok2) - 1; len++) {
		http1_chunked_init(&c);
		n = 4;
		if (!ASSERT_EQ(http1_chunked_decode(&c, guard_place(ok2, len), len, out, &n),
			       (long long)len) || !ASSERT_FALSE(c.done)) {
			fprintf(stderr, "  prefix %zu\n", len);
			break;
		}
	}
}

TEST(http1_chunked_errors_sticky_and_limits)
{
	struct http1_chunked c;
	struct http1_str out[2];
	char *line;
	size_t n = 2, len;

	http1_chunked_init(&c);
	ASSERT_EQ(http1_chunked_decode(&c, "z", 1, out, &n), HTTP1_EBAD);
	n = 2;
	ASSERT_EQ(http1_chunked_decode(&c, "0\r\n\r\n", 5, out, &n), HTTP1_EBAD);

	/* extensions up to the line limit are fine; beyond: EBAD */
	line = malloc(8192);
	if (!ASSERT_TRUE(line))
		return;
	memcpy(line, "1;", 2);
	memset(line + 2, 'e', 4096 - 2 - 1);
	memcpy(line + 4096 - 1, "\r\nx\r\n0\r\n\r\n", 10);
	len = 4096 - 1 + 10;
	http1_chunked_init(&c);
	n = 2;
	ASSERT_EQ(http1_chunked_decode(&c, line, len, out, &n), (long long)len);
	ASSERT_TRUE(c.done);
	memset(line + 2, 'e', 4096 - 2);
	memcpy(line + 4096, "\r\nx\r\n0\r\n\r\n", 10);
	http1_chunked_init(&c);
	n = 2;
	ASSERT_EQ(http1_chunked_decode(&c, line, 4096 + 10, out, &n), HTTP1_EBAD);
	/* the largest size that fits 64 bits is accepted */
	http1_chunked_init(&c);
	n = 2;
	ASSERT_EQ(http1_chunked_decode(&c, "ffffffffffffffff\r\nab", 20, out, &n), 20);
	ASSERT_EQ(c.left, UINT64_MAX - 2);
	ASSERT_EQ(n, 1);
	free(line);
}

/* Output capacity 1: decoding stops at each span and resumes. */
TEST(http1_chunked_small_out)
{
	static const char in[] = "2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n";
	struct http1_chunked c;
	struct http1_str out[1];
	char got[16];
	size_t off = 0, glen = 0, n;
	int r, calls = 0;

	http1_chunked_init(&c);
	while (!c.done && calls++ < 10) {
		n = 1;
		r = http1_chunked_decode(&c, in + off, sizeof(in) - 1 - off, out, &n);
		if (!ASSERT_GE(r, 0))
			return;
		for (size_t i = 0; i < n; i++) {
			memcpy(got + glen, out[i].p, out[i].n);
			glen += out[i].n;
		}
		off += (size_t)r;
	}
	ASSERT_TRUE(c.done);
	ASSERT_EQ(off, sizeof(in) - 1);
	ASSERT_EQ(glen, 5);
	ASSERT_TRUE(!memcmp(got, "abcde", 5));
	ASSERT_EQ(calls, 2);
}
