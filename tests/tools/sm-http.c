// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sm-http: HTTP/1.1 test backend for the L7 proxy's e2e tests.
 *
 *   sm-http --port P [--bind ADDR] [--id NAME] [--status N] [--idle-close MS]
 *
 * One thread per connection, blocking sockets, keep-alive and pipelining.
 * Every response carries "x-backend: NAME" and, unless told otherwise, a
 * text/plain body:
 *   id=NAME method=M path=P host=H
 *   hdr NAME: VALUE            per request header starting with "x-" or
 *                              "end-user" (name in lower case, in order)
 *   body_bytes_received=N      when the request had a body (CL or chunked)
 *
 * Knobs, as query parameter (?status=503) or header (x-sm-status: 503;
 * '-' and '_' are interchangeable in header names, the header wins):
 *   status=N       respond N (no body for 1xx/204/304, none for HEAD)
 *   delay_ms=N     sleep N ms before responding (after reading the body)
 *   body_bytes=N   body is N bytes of 'x' instead of the text above
 *   chunked=1      respond with Transfer-Encoding: chunked
 *   close=1        respond with Connection: close, then close
 *   reset=1        no response: close with RST (SO_LINGER 0)
 *   flaky=N        503 for the first N requests (that carry flaky) per path
 *                  since the process started, then the normal status
 *   fail_ratio=P   503 with probability P percent
 * --log prints "req METHOD PATH host=HOST body_bytes=N" (-1: no body) per
 * request, once its body is read.
 * --idle-close MS closes a kept-alive connection that stays idle MS ms
 * between requests (like nginx's keepalive_timeout): a peer that closes
 * idle connections under a client's pool.
 * Expect: 100-continue gets "HTTP/1.1 100 Continue" before the body is read.
 * Connection: Upgrade + Upgrade: websocket gets 101 with the right
 * Sec-WebSocket-Accept, then every byte is echoed back raw until EOF.
 *
 * stdout: "ready" once listening; "stats requests N" on SIGUSR1 and before
 * exiting 0 on SIGTERM/SIGINT. Exit codes: 1 runtime error, 2 usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HTTP_BUF_SIZE	(64 * 1024)	/* also the largest request head */
#define HTTP_MAX_HDRS	100
#define HTTP_STACK_SIZE	(256 * 1024)
#define HTTP_CHUNK_OUT	8192		/* response chunk size */
#define HTTP_MAX_FLAKY	1024		/* distinct paths tracked for flaky= */
#define WS_GUID		"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

static const char *srv_id = "sm-http";
static long srv_status = 200;	/* --status: the answer when a request names none */
static long srv_idle_close_ms;	/* --idle-close: 0 = keep idle connections */
static int srv_log;		/* --log: one stdout line per request */
static unsigned long stat_requests;

struct flaky_ent {
	char *path;
	unsigned long seen;
};

static pthread_mutex_t flaky_lock = PTHREAD_MUTEX_INITIALIZER;
static struct flaky_ent flaky_tab[HTTP_MAX_FLAKY];
static size_t flaky_n;

/* ---- SHA-1 (FIPS 180-4) and base64, for Sec-WebSocket-Accept ---- */

struct sha1 {
	uint32_t h[5];
	uint64_t len;
	unsigned char blk[64];
	size_t n;
};

static uint32_t rol32(uint32_t x, int r)
{
	return x << r | x >> (32 - r);
}

static void sha1_block(struct sha1 *s, const unsigned char *p)
{
	uint32_t w[80], a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3], e = s->h[4];

	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
		       (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (int i = 16; i < 80; i++)
		w[i] = rol32(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
	for (int i = 0; i < 80; i++) {
		uint32_t f, k, t;

		if (i < 20) {
			f = (b & c) | (~b & d);
			k = 0x5a827999;
		} else if (i < 40) {
			f = b ^ c ^ d;
			k = 0x6ed9eba1;
		} else if (i < 60) {
			f = (b & c) | (b & d) | (c & d);
			k = 0x8f1bbcdc;
		} else {
			f = b ^ c ^ d;
			k = 0xca62c1d6;
		}
		t = rol32(a, 5) + f + e + k + w[i];
		e = d;
		d = c;
		c = rol32(b, 30);
		b = a;
		a = t;
	}
	s->h[0] += a;
	s->h[1] += b;
	s->h[2] += c;
	s->h[3] += d;
	s->h[4] += e;
}

static void sha1_init(struct sha1 *s)
{
	static const uint32_t iv[5] = {
		0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0 };

	memcpy(s->h, iv, sizeof(iv));
	s->len = 0;
	s->n = 0;
}

static void sha1_update(struct sha1 *s, const void *data, size_t len)
{
	const unsigned char *p = data;

	s->len += len;
	while (len--) {
		s->blk[s->n++] = *p++;
		if (s->n == 64) {
			sha1_block(s, s->blk);
			s->n = 0;
		}
	}
}

static void sha1_final(struct sha1 *s, unsigned char out[20])
{
	uint64_t bits = s->len * 8;
	unsigned char pad = 0x80, len8[8];

	sha1_update(s, &pad, 1);
	pad = 0;
	while (s->n != 56)
		sha1_update(s, &pad, 1);
	for (int i = 0; i < 8; i++)
		len8[i] = (unsigned char)(bits >> (56 - 8 * i));
	sha1_update(s, len8, 8);
	for (int i = 0; i < 20; i++)
		out[i] = (unsigned char)(s->h[i / 4] >> (24 - 8 * (i % 4)));
}

static void base64_encode(const unsigned char *in, size_t n, char *out)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		*out++ = tab[v >> 18];
		*out++ = tab[(v >> 12) & 63];
		*out++ = tab[(v >> 6) & 63];
		*out++ = tab[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);

		*out++ = tab[v >> 18];
		*out++ = tab[(v >> 12) & 63];
		*out++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		*out++ = '=';
	}
	*out = '\0';
}

/* Sec-WebSocket-Accept for key: base64(SHA-1(key GUID)), 28 chars + NUL. */
static void ws_accept(const char *key, size_t n, char out[29])
{
	struct sha1 s;
	unsigned char d[20];

	sha1_init(&s);
	sha1_update(&s, key, n);
	sha1_update(&s, WS_GUID, sizeof(WS_GUID) - 1);
	sha1_final(&s, d);
	base64_encode(d, sizeof(d), out);
}

/* ---- connection I/O ---- */

struct conn {
	int fd;
	size_t len;		/* bytes buffered in buf */
	char buf[HTTP_BUF_SIZE];
	unsigned int seed;
};

/*
 * Blocking read that retries EAGAIN: a socket redirected by sk_msg can
 * report it on a blocking read. Returns bytes, 0 on EOF, -1 on error.
 */
static ssize_t conn_read(int fd, void *buf, size_t len)
{
	for (;;) {
		ssize_t r = read(fd, buf, len);
		struct pollfd pfd = { .fd = fd, .events = POLLIN };

		if (r >= 0)
			return r;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		poll(&pfd, 1, 100);
	}
}

static int conn_write(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t w = send(fd, p, len, MSG_NOSIGNAL);

		if (w < 0) {
			struct pollfd pfd = { .fd = fd, .events = POLLOUT };

			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				poll(&pfd, 1, 100);
				continue;
			}
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Read more into the buffer. Returns bytes read, 0 on EOF or full, -1. */
static ssize_t conn_fill(struct conn *c)
{
	ssize_t r;

	if (c->len == sizeof(c->buf))
		return 0;
	r = conn_read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
	if (r > 0)
		c->len += (size_t)r;
	return r;
}

static void conn_consume(struct conn *c, size_t n)
{
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
}

/* A CRLF-terminated line at the start of the buffer: its length without CRLF. */
static ssize_t conn_line(struct conn *c)
{
	for (;;) {
		char *e = memmem(c->buf, c->len, "\r\n", 2);

		if (e)
			return e - c->buf;
		if (conn_fill(c) <= 0)
			return -1;
	}
}

/* ---- request ---- */

struct str {
	const char *p;
	size_t n;
};

struct req {
	struct str method, path, query, host;
	int minor;
	struct str hname[HTTP_MAX_HDRS], hval[HTTP_MAX_HDRS];
	size_t nh;
	size_t head_len;
	long long cl;		/* -1: none */
	int chunked, expect, close, keep_alive, upgrade_conn, websocket;
	struct str ws_key;
};

static int str_ieq(struct str s, const char *lit)
{
	return s.n == strlen(lit) && !strncasecmp(s.p, lit, s.n);
}

/* Does the comma list v contain token tok (case-insensitive)? */
static int list_has(struct str v, const char *tok)
{
	size_t tn = strlen(tok), i = 0;

	while (i < v.n) {
		size_t s, e;

		while (i < v.n && (v.p[i] == ' ' || v.p[i] == '\t' || v.p[i] == ','))
			i++;
		s = i;
		while (i < v.n && v.p[i] != ',')
			i++;
		e = i;
		while (e > s && (v.p[e - 1] == ' ' || v.p[e - 1] == '\t'))
			e--;
		if (e - s == tn && !strncasecmp(v.p + s, tok, tn))
			return 1;
	}
	return 0;
}

/* Lenient parse of the head in c->buf[0..head_len). 0 or -1 (400). */
static int req_parse(const char *b, size_t head_len, struct req *r)
{
	const char *p = b, *end = b + head_len - 2, *sp1, *sp2, *eol, *q;
	int conn_close = 0, conn_ka = 0, has_upgrade_ws = 0;

	memset(r, 0, sizeof(*r));
	r->cl = -1;
	r->head_len = head_len;
	eol = memmem(p, (size_t)(end - p), "\r\n", 2);
	if (!eol)
		eol = end;
	sp1 = memchr(p, ' ', (size_t)(eol - p));
	if (!sp1)
		return -1;
	sp2 = memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1));
	if (!sp2 || eol - sp2 != 9 || memcmp(sp2 + 1, "HTTP/1.", 7))
		return -1;
	r->minor = sp2[8] == '0' ? 0 : 1;
	r->method = (struct str){ p, (size_t)(sp1 - p) };
	r->path = (struct str){ sp1 + 1, (size_t)(sp2 - sp1 - 1) };
	q = memchr(r->path.p, '?', r->path.n);
	if (q) {
		r->query = (struct str){ q + 1, (size_t)(r->path.p + r->path.n - q - 1) };
		r->path.n = (size_t)(q - r->path.p);
	}
	r->host = (struct str){ "", 0 };
	p = eol + 2;
	while (p < end) {
		const char *colon, *v, *ve;

		eol = memmem(p, (size_t)(end - p), "\r\n", 2);
		if (!eol)
			eol = end;
		colon = memchr(p, ':', (size_t)(eol - p));
		if (!colon || colon == p)
			return -1;
		v = colon + 1;
		while (v < eol && (*v == ' ' || *v == '\t'))
			v++;
		ve = eol;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		if (r->nh < HTTP_MAX_HDRS) {
			struct str n = { p, (size_t)(colon - p) }, val = { v, (size_t)(ve - v) };

			r->hname[r->nh] = n;
			r->hval[r->nh] = val;
			r->nh++;
			if (str_ieq(n, "host"))
				r->host = val;
			else if (str_ieq(n, "content-length"))
				r->cl = strtoll(v, NULL, 10);
			else if (str_ieq(n, "transfer-encoding"))
				r->chunked = list_has(val, "chunked");
			else if (str_ieq(n, "expect"))
				r->expect = str_ieq(val, "100-continue");
			else if (str_ieq(n, "connection")) {
				conn_close |= list_has(val, "close");
				conn_ka |= list_has(val, "keep-alive");
				r->upgrade_conn |= list_has(val, "upgrade");
			} else if (str_ieq(n, "upgrade"))
				has_upgrade_ws = list_has(val, "websocket");
			else if (str_ieq(n, "sec-websocket-key"))
				r->ws_key = val;
		}
		p = eol + 2;
	}
	r->keep_alive = r->minor ? !conn_close : conn_ka && !conn_close;
	r->websocket = r->upgrade_conn && has_upgrade_ws && r->ws_key.n;
	return 0;
}

/* Knob from header x-sm-<name> ('-' == '_') or query parameter name. */
static int req_knob(const struct req *r, const char *name, long long *out)
{
	size_t nn = strlen(name), i = 0;

	for (size_t h = 0; h < r->nh; h++) {
		struct str n = r->hname[h];
		size_t j;

		if (n.n != nn + 5 || strncasecmp(n.p, "x-sm-", 5))
			continue;
		for (j = 0; j < nn; j++) {
			char a = n.p[5 + j], b = name[j];

			if (a == '-')
				a = '_';
			if ((a | 0x20) != (b | 0x20))
				break;
		}
		if (j == nn) {
			*out = strtoll(r->hval[h].p, NULL, 10);
			return 1;
		}
	}
	while (i < r->query.n) {
		const char *k = r->query.p + i;
		const char *amp = memchr(k, '&', r->query.n - i);
		size_t kl = amp ? (size_t)(amp - k) : r->query.n - i;

		if (kl > nn && k[nn] == '=' && !memcmp(k, name, nn)) {
			char num[32];
			size_t vl = kl - nn - 1 < sizeof(num) - 1 ? kl - nn - 1 : sizeof(num) - 1;

			memcpy(num, k + nn + 1, vl);
			num[vl] = '\0';
			*out = strtoll(num, NULL, 10);
			return 1;
		}
		i += kl + 1;
	}
	return 0;
}

static long long req_knob_or(const struct req *r, const char *name, long long def)
{
	long long v;

	return req_knob(r, name, &v) ? v : def;
}

/* The flaky= counter for this path; 1 when this request must fail. */
static int flaky_hit(struct str path, long long n)
{
	unsigned long seen = 0;
	size_t i;

	pthread_mutex_lock(&flaky_lock);
	for (i = 0; i < flaky_n; i++)
		if (strlen(flaky_tab[i].path) == path.n &&
		    !memcmp(flaky_tab[i].path, path.p, path.n))
			break;
	if (i == flaky_n && flaky_n < HTTP_MAX_FLAKY) {
		flaky_tab[i].path = strndup(path.p, path.n);
		if (flaky_tab[i].path)
			flaky_n++;
	}
	if (i < flaky_n)
		seen = ++flaky_tab[i].seen;
	pthread_mutex_unlock(&flaky_lock);
	return seen && (long long)seen <= n;
}

/* ---- bodies ---- */

/* Read and drop a request body; returns bytes of payload or -1. */
static long long body_read(struct conn *c, const struct req *r)
{
	long long total = 0;

	if (r->chunked) {
		for (;;) {
			ssize_t ln = conn_line(c);
			unsigned long long size;
			char *e;

			if (ln <= 0)
				return -1;
			size = strtoull(c->buf, &e, 16);
			if (e == c->buf)
				return -1;
			conn_consume(c, (size_t)ln + 2);
			if (!size)
				break;
			size += 2;	/* CRLF after the data */
			total += (long long)size - 2;
			while (size) {
				size_t take;

				if (!c->len && conn_fill(c) <= 0)
					return -1;
				take = c->len < size ? c->len : (size_t)size;
				conn_consume(c, take);
				size -= take;
			}
		}
		for (;;) {	/* trailers up to the empty line */
			ssize_t ln = conn_line(c);

			if (ln < 0)
				return -1;
			conn_consume(c, (size_t)ln + 2);
			if (!ln)
				return total;
		}
	}
	if (r->cl > 0) {
		unsigned long long left = (unsigned long long)r->cl;

		while (left) {
			size_t take;

			if (!c->len && conn_fill(c) <= 0)
				return -1;
			take = c->len < left ? c->len : (size_t)left;
			conn_consume(c, take);
			left -= take;
		}
		total = r->cl;
	}
	return total;
}

static const char *status_reason(int s)
{
	switch (s) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "Status";
	}
}

/* Growable text buffer for response bodies. */
struct out {
	char *p;
	size_t n, cap;
};

static int out_add(struct out *o, const char *s, size_t n)
{
	if (o->n + n + 1 > o->cap) {
		size_t cap = (o->cap ? o->cap : 1024);
		char *np;

		while (cap < o->n + n + 1)
			cap *= 2;
		np = realloc(o->p, cap);
		if (!np)
			return -1;
		o->p = np;
		o->cap = cap;
	}
	memcpy(o->p + o->n, s, n);
	o->n += n;
	o->p[o->n] = '\0';
	return 0;
}

static int out_printf(struct out *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int out_printf(struct out *o, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	return out_add(o, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static void body_text(struct out *o, const struct req *r, long long got)
{
	out_printf(o, "id=%s method=%.*s path=%.*s host=%.*s\n", srv_id,
		   (int)r->method.n, r->method.p, (int)r->path.n, r->path.p,
		   (int)r->host.n, r->host.p);
	for (size_t i = 0; i < r->nh; i++) {
		struct str n = r->hname[i];

		if ((n.n >= 2 && !strncasecmp(n.p, "x-", 2)) ||
		    (n.n >= 8 && !strncasecmp(n.p, "end-user", 8))) {
			out_add(o, "hdr ", 4);
			for (size_t j = 0; j < n.n; j++) {
				char ch = n.p[j];

				if (ch >= 'A' && ch <= 'Z')
					ch += 32;
				out_add(o, &ch, 1);
			}
			out_printf(o, ": %.*s\n", (int)r->hval[i].n, r->hval[i].p);
		}
	}
	if (got >= 0)
		out_printf(o, "body_bytes_received=%lld\n", got);
}

static int respond(struct conn *c, const struct req *r, int status, long long got,
		   int closing)
{
	struct out body = { 0 }, head = { 0 };
	int chunked = req_knob_or(r, "chunked", 0) != 0;
	int no_body = status < 200 || status == 204 || status == 304;
	int is_head = str_ieq(r->method, "HEAD");
	long long bb = req_knob_or(r, "body_bytes", -1);
	int rc = -1;

	if (srv_log) {
		printf("req %.*s %.*s host=%.*s body_bytes=%lld\n", (int)r->method.n, r->method.p,
		       (int)r->path.n, r->path.p, (int)r->host.n, r->host.p, got);
		fflush(stdout);
	}
	if (!no_body) {
		if (bb >= 0) {
			for (long long i = 0; i < bb; i += 4096) {
				static const char xs[4096] = { [0 ... 4095] = 'x' };
				size_t n = bb - i < 4096 ? (size_t)(bb - i) : 4096;

				if (out_add(&body, xs, n))
					goto out;
			}
		} else {
			body_text(&body, r, got);
		}
	}
	out_printf(&head, "HTTP/1.1 %d %s\r\ncontent-type: text/plain\r\nx-backend: %s\r\n",
		   status, status_reason(status), srv_id);
	if (!no_body) {
		if (chunked)
			out_printf(&head, "transfer-encoding: chunked\r\n");
		else
			out_printf(&head, "content-length: %zu\r\n", body.n);
	}
	if (closing)
		out_printf(&head, "connection: close\r\n");
	else if (!r->minor)
		out_printf(&head, "connection: keep-alive\r\n");
	out_add(&head, "\r\n", 2);
	if (!head.p || conn_write(c->fd, head.p, head.n))
		goto out;
	if (no_body || is_head) {
		rc = 0;
		goto out;
	}
	if (!chunked) {
		rc = body.n ? conn_write(c->fd, body.p, body.n) : 0;
		goto out;
	}
	for (size_t off = 0; off < body.n; off += HTTP_CHUNK_OUT) {
		size_t n = body.n - off < HTTP_CHUNK_OUT ? body.n - off : HTTP_CHUNK_OUT;
		char hdr[32];
		int hn = snprintf(hdr, sizeof(hdr), "%zx\r\n", n);

		if (conn_write(c->fd, hdr, (size_t)hn) || conn_write(c->fd, body.p + off, n) ||
		    conn_write(c->fd, "\r\n", 2))
			goto out;
	}
	rc = conn_write(c->fd, "0\r\n\r\n", 5);
out:
	free(body.p);
	free(head.p);
	return rc;
}

static void reply_simple(int fd, int status)
{
	char b[256];
	int n = snprintf(b, sizeof(b),
			 "HTTP/1.1 %d %s\r\nx-backend: %s\r\ncontent-length: 0\r\n"
			 "connection: close\r\n\r\n", status, status_reason(status), srv_id);

	conn_write(fd, b, (size_t)n);
}

static void reset_close(int fd)
{
	struct linger l = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}

static void ws_echo(struct conn *c, const struct req *r)
{
	char accept[29], head[512];
	int n;

	ws_accept(r->ws_key.p, r->ws_key.n, accept);
	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
		     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\nx-backend: %s\r\n\r\n",
		     accept, srv_id);
	if (conn_write(c->fd, head, (size_t)n))
		return;
	if (c->len && conn_write(c->fd, c->buf, c->len))
		return;
	for (;;) {
		ssize_t got = conn_read(c->fd, c->buf, sizeof(c->buf));

		if (got <= 0 || conn_write(c->fd, c->buf, (size_t)got))
			return;
	}
}

/* Serve one request. Returns 1 to keep the connection, 0 to close it. */
static int serve_one(struct conn *c)
{
	long long got = -1, status, flaky, ratio, delay;
	int closing = 1;
	size_t hl;
	struct req r;
	char *end, *head;

	while (!(end = memmem(c->buf, c->len, "\r\n\r\n", 4))) {
		ssize_t n;

		if (!c->len && srv_idle_close_ms > 0) {
			struct pollfd pfd = { .fd = c->fd, .events = POLLIN };

			if (poll(&pfd, 1, (int)srv_idle_close_ms) == 0)
				return 0;	/* idle too long: close */
		}
		n = conn_fill(c);

		if (n < 0 || (n == 0 && c->len < sizeof(c->buf)))
			return 0;
		if (n == 0) {
			reply_simple(c->fd, 431);
			return 0;
		}
	}
	/* the head gets its own copy: reading the body reuses the buffer */
	hl = (size_t)(end - c->buf) + 4;
	head = malloc(hl);
	if (!head)
		return 0;
	memcpy(head, c->buf, hl);
	conn_consume(c, hl);
	if (req_parse(head, hl, &r)) {
		reply_simple(c->fd, 400);
		goto out;
	}
	__atomic_add_fetch(&stat_requests, 1, __ATOMIC_RELAXED);
	if (req_knob_or(&r, "reset", 0)) {
		reset_close(c->fd);
		goto out;
	}
	if (r.websocket) {
		ws_echo(c, &r);
		goto out;
	}
	if (r.chunked || r.cl > 0) {
		if (r.expect && r.minor &&
		    conn_write(c->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25))
			goto out;
		got = body_read(c, &r);
		if (got < 0)
			goto out;
	} else if (r.cl == 0) {
		got = 0;
	}
	status = req_knob_or(&r, "status", srv_status);
	if (status < 100 || status > 599)
		status = 200;
	flaky = req_knob_or(&r, "flaky", 0);
	if (flaky > 0 && flaky_hit(r.path, flaky))
		status = 503;
	ratio = req_knob_or(&r, "fail_ratio", 0);
	if (ratio > 0 && rand_r(&c->seed) % 100 < ratio)
		status = 503;
	delay = req_knob_or(&r, "delay_ms", 0);
	if (delay > 0) {
		struct timespec ts = { delay / 1000, (delay % 1000) * 1000000 };

		while (nanosleep(&ts, &ts) && errno == EINTR)
			;
	}
	closing = req_knob_or(&r, "close", 0) || !r.keep_alive;
	if (respond(c, &r, (int)status, got, closing))
		closing = 1;
out:
	free(head);
	return !closing;
}

static void *conn_thread(void *arg)
{
	struct conn *c = arg;

	while (serve_one(c))
		;
	close(c->fd);
	free(c);
	return NULL;
}

static void *accept_thread(void *arg)
{
	int lfd = (int)(intptr_t)arg;
	pthread_attr_t attr;
	unsigned int seed = (unsigned int)time(NULL) ^ (unsigned int)getpid();

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, HTTP_STACK_SIZE);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (;;) {
		int fd = accept(lfd, NULL, NULL), one = 1;
		struct conn *c;
		pthread_t t;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE ||
			    errno == ENFILE)
				continue;
			perror("sm-http: accept");
			exit(1);
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = malloc(sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->len = 0;
		c->seed = seed++;
		if (pthread_create(&t, &attr, conn_thread, c)) {
			close(fd);
			free(c);
		}
	}
	return NULL;
}

static void usage(void)
{
	fprintf(stderr, "usage: sm-http --port P [--bind ADDR] [--id NAME] [--status N] "
		"[--idle-close MS] [--log]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "bind", required_argument, NULL, 'b' },
		{ "id", required_argument, NULL, 'i' },
		{ "status", required_argument, NULL, 's' },
		{ "idle-close", required_argument, NULL, 'I' },
		{ "log", no_argument, NULL, 'L' },
		{ 0 },
	};
	struct sockaddr_in sa = { .sin_family = AF_INET };
	const char *bind_addr = "0.0.0.0";
	long port = -1;
	int lfd, one = 1, sig, o;
	sigset_t set;
	pthread_t t;

	while ((o = getopt_long(argc, argv, "p:b:i:s:", opts, NULL)) != -1) {
		switch (o) {
		case 'p':
			port = strtol(optarg, NULL, 10);
			break;
		case 'b':
			bind_addr = optarg;
			break;
		case 'i':
			srv_id = optarg;
			break;
		case 'L':
			srv_log = 1;
			break;
		case 'I':
			srv_idle_close_ms = strtol(optarg, NULL, 10);
			if (srv_idle_close_ms <= 0 || srv_idle_close_ms > 3600000)
				usage();
			break;
		case 's':
			srv_status = strtol(optarg, NULL, 10);
			if (srv_status < 100 || srv_status > 599)
				usage();
			break;
		default:
			usage();
		}
	}
	if (port < 0 || port > 65535 || optind != argc)
		usage();
	if (inet_pton(AF_INET, bind_addr, &sa.sin_addr) != 1)
		usage();
	sa.sin_port = htons((uint16_t)port);

	/* signals are taken by sigwait() in the main thread only */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 4096)) {
		perror("sm-http: listen");
		return 1;
	}
	if (pthread_create(&t, NULL, accept_thread, (void *)(intptr_t)lfd)) {
		perror("sm-http: thread");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		if (sigwait(&set, &sig))
			continue;
		printf("stats requests %lu\n",
		       __atomic_load_n(&stat_requests, __ATOMIC_RELAXED));
		fflush(stdout);
		if (sig != SIGUSR1)
			return 0;
	}
}
