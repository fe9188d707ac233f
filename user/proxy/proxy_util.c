// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * proxy_util: pure helpers of the proxy (no I/O, no worker state), so the
 * unit tests can call them directly: retry decisions, back-off, redirect
 * locations, CORS origin matching, request ids, log field formatting.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "proxy/proxy_int.h"

const char *const px_flag_names[PX_F_MAX] = {
	[PX_F_UH] = "UH", [PX_F_UF] = "UF", [PX_F_UO] = "UO", [PX_F_NR] = "NR",
	[PX_F_URX] = "URX", [PX_F_UT] = "UT", [PX_F_UC] = "UC", [PX_F_DC] = "DC",
	[PX_F_FI] = "FI", [PX_F_DI] = "DI", [PX_F_UPE] = "UPE", [PX_F_SI] = "SI",
	[PX_F_DPE] = "DPE", [PX_F_NC] = "NC",
};

void px_uuid4(uint64_t a, uint64_t b, char out[37])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t v[16];
	int i, o = 0;

	for (i = 0; i < 8; i++) {
		v[i] = (uint8_t)(a >> (i * 8));
		v[8 + i] = (uint8_t)(b >> (i * 8));
	}
	v[6] = (v[6] & 0x0f) | 0x40;	/* version 4 */
	v[8] = (v[8] & 0x3f) | 0x80;	/* RFC 4122 variant */
	for (i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[v[i] >> 4];
		out[o++] = hex[v[i] & 15];
	}
	out[o] = '\0';
}

static bool px_re_whole(void *re, const char *s, size_t n)
{
	pcre2_match_data *md;
	bool ok = false;
	int rc;

	md = pcre2_match_data_create_from_pattern(re, NULL);
	if (!md)
		return false;
	rc = pcre2_match(re, (PCRE2_SPTR)s, n, 0, 0, md, NULL);
	if (rc > 0) {
		PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);

		/* whole-string semantics even when compiled unanchored */
		ok = ov[0] == 0 && ov[1] == n;
	}
	pcre2_match_data_free(md);
	return ok;
}

bool px_strmatch(const struct pol_strmatch *m, const char *s, size_t n)
{
	size_t vn;

	switch (m->kind) {
	case POL_SM_NONE:
	case POL_SM_PRESENT:
		return true;
	case POL_SM_EXACT:
		if (!m->value)
			return false;
		if (strcmp(m->value, "*") == 0)
			return true;
		vn = strlen(m->value);
		if (vn != n)
			return false;
		return memcmp(m->value, s, n) == 0;
	case POL_SM_PREFIX:
		if (!m->value)
			return false;
		vn = strlen(m->value);
		if (vn > n)
			return false;
		return memcmp(m->value, s, vn) == 0;
	case POL_SM_REGEX:
		return m->re && px_re_whole(m->re, s, n);
	}
	return false;
}

bool px_retry_status(const struct l7_retry *r, int status)
{
	size_t i;

	if ((r->on & L7_RETRY_5XX) && status >= 500 && status <= 599)
		return true;
	if ((r->on & L7_RETRY_GATEWAY_ERROR) && status >= 502 && status <= 504)
		return true;
	if ((r->on & L7_RETRY_RETRIABLE_4XX) && status == 409)
		return true;
	/* Istio lists codes without "retriable-status-codes": codes count either way */
	for (i = 0; i < r->n_codes && i < L7_RETRY_MAX_CODES; i++)
		if (r->codes[i] == status)
			return true;
	return false;
}

bool px_retry_grpc(const struct l7_retry *r, int g)
{
	switch (g) {
	case 1: return r->on & L7_RETRY_GRPC_CANCELLED;
	case 4: return r->on & L7_RETRY_GRPC_DEADLINE;
	case 8: return r->on & L7_RETRY_GRPC_EXHAUSTED;
	case 13: return r->on & L7_RETRY_GRPC_INTERNAL;
	case 14: return r->on & L7_RETRY_GRPC_UNAVAILABLE;
	default: return false;
	}
}

int px_grpc_status_parse(const char *v, size_t n)
{
	int g = 0;

	if (!n || n > 2)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		g = g * 10 + (v[i] - '0');
	}
	return g;
}

int px_grpc_status_in_trailers(const char *p, size_t n)
{
	static const char name[] = "grpc-status:";
	const size_t nl = sizeof(name) - 1;

	/* a trailer line starts after a CRLF; the value runs to the next CR */
	for (const char *q = p; (q = memchr(q, '\r', n - (size_t)(q - p))); q++) {
		size_t i = (size_t)(q - p), v, e;

		if (i + 2 + nl > n)
			break;
		if (p[i + 1] != '\n' || strncasecmp(p + i + 2, name, nl))
			continue;
		for (v = i + 2 + nl; v < n && (p[v] == ' ' || p[v] == '\t'); v++)
			;
		for (e = v; e < n && p[e] != '\r' && p[e] != ' ' && p[e] != '\t'; e++)
			;
		return px_grpc_status_parse(p + v, e - v);
	}
	return -1;
}

int px_mresp_scan(struct px_mresp *r, const char *p, size_t n, bool head_req)
{
	size_t used = 0;

	while (used < n && r->phase != PX_MR_DONE) {
		const char *q = p + used;
		size_t left = n - used;

		switch (r->phase) {
		case PX_MR_HEAD: {
			struct http1_msg m;
			int h = http1_parse_response(q, left, head_req ? "HEAD" : NULL,
						     head_req ? 4 : 0, &m);

			if (h == HTTP1_INCOMPLETE)
				return (int)used;
			if (h < 0)
				return -1;
			used += (size_t)h;
			if (m.status < 200)
				break;	/* 100 Continue and the like: the final head follows */
			r->status = m.status;
			switch (m.body) {
			case HTTP1_BODY_LENGTH:
				r->left = m.content_length;
				r->phase = PX_MR_LENGTH;
				break;
			case HTTP1_BODY_CHUNKED:
				http1_chunked_init(&r->ck);
				r->phase = PX_MR_CHUNKED;
				break;
			case HTTP1_BODY_CLOSE:
				r->phase = PX_MR_CLOSE;
				break;
			default:
				r->phase = PX_MR_DONE;
				break;
			}
			break;
		}
		case PX_MR_LENGTH: {
			size_t k = left < r->left ? left : (size_t)r->left;

			r->left -= k;
			used += k;
			if (!r->left)
				r->phase = PX_MR_DONE;
			break;
		}
		case PX_MR_CHUNKED: {
			struct http1_str spans[16];
			size_t ns = 16;
			int k = http1_chunked_decode(&r->ck, q, left, spans, &ns);

			if (k < 0)
				return -1;
			used += (size_t)k;
			if (r->ck.done)
				r->phase = PX_MR_DONE;
			else if (!k)
				return (int)used;
			break;
		}
		case PX_MR_CLOSE:
			used = n;
			break;
		}
	}
	return (int)used;
}

void px_grpc_msgs_scan(struct px_grpc_msgs *g, const char *p, size_t n)
{
	while (n) {
		if (g->left) {
			size_t k = n < g->left ? n : (size_t)g->left;

			g->left -= k;
			p += k;
			n -= k;
			continue;
		}
		/* prefix: the flag byte, then the length, one byte at a time across pieces */
		if (g->hdr)
			g->len = g->len << 8 | (uint8_t)*p;
		p++;
		n--;
		if (++g->hdr == 5) {
			g->n++;
			g->left = g->len;
			g->len = 0;
			g->hdr = 0;
		}
	}
}

int px_grpc_timeout_ms(const char *v, size_t n, uint64_t *ms)
{
	uint64_t x = 0;

	/* gRPC over HTTP/2: TimeoutValue is at most 8 ASCII digits, then a unit */
	if (n < 2 || n > 9)
		return -EINVAL;
	for (size_t i = 0; i + 1 < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -EINVAL;
		x = x * 10 + (uint64_t)(v[i] - '0');
	}
	switch (v[n - 1]) {
	case 'H': x *= 3600000; break;
	case 'M': x *= 60000; break;
	case 'S': x *= 1000; break;
	case 'm': break;
	case 'u': x = (x + 999) / 1000; break;
	case 'n': x = (x + 999999) / 1000000; break;
	default: return -EINVAL;
	}
	*ms = x;
	return 0;
}

/*
 * Envoy's wouldRetryFromReset: 5xx, gateway-error and reset cover every
 * local-origin failure (resets, per-try timeouts, connect failures);
 * connect-failure only connect failures.
 */
bool px_retry_fail(const struct l7_retry *r, enum px_fail f)
{
	if (f == PX_FAIL_NONE)
		return false;
	if (r->on & (L7_RETRY_5XX | L7_RETRY_GATEWAY_ERROR | L7_RETRY_RESET))
		return true;
	if (f == PX_FAIL_CONNECT && (r->on & (L7_RETRY_CONNECT_FAILURE | L7_RETRY_REFUSED_STREAM)))
		return true;
	return false;
}

/*
 * Envoy's jittered exponential back-off: a uniform draw from
 * [0, (2^n - 1) * base), the ceiling capped at 10 * base.
 */
uint64_t px_backoff_ms(uint64_t base_ms, uint32_t retry_n, uint64_t rnd)
{
	uint64_t ceil, cap;

	if (!base_ms)
		base_ms = PX_BACKOFF_BASE_MS;
	cap = base_ms * 10;
	if (retry_n == 0)
		retry_n = 1;
	if (retry_n >= 16)
		ceil = cap;
	else
		ceil = ((1ull << retry_n) - 1) * base_ms;
	if (ceil > cap)
		ceil = cap;
	return ceil ? rnd % ceil : 0;
}

/*
 * Istio's default when a route sets no retries: 2 attempts on
 * connect-failure, refused-stream and 503 (retriable-status-codes).
 */
const struct l7_retry px_retry_default = {
	.attempts = 2,
	.on = L7_RETRY_CONNECT_FAILURE | L7_RETRY_REFUSED_STREAM | L7_RETRY_STATUS_CODES |
	      L7_RETRY_GRPC_UNAVAILABLE | L7_RETRY_GRPC_CANCELLED,
	.codes = { 503 },
	.n_codes = 1,
	.backoff_base_ms = PX_BACKOFF_BASE_MS,
};

/*
 * Envoy's RouteEntryImplBase::newUri for Istio's HTTPRedirect: the port is
 * redirect.port, else with derivePort FROM_REQUEST_PORT the port the route
 * serves (Istio writes the listener port into port_redirect), else none
 * (FROM_PROTOCOL_DEFAULT: the host as it came). A new port replaces the
 * request host's; a scheme change drops the request's default port (":80":
 * requests reach the proxy over plain HTTP). authority replaces the host.
 */
int px_redirect_location(const struct pol_redirect *rd, const char *path, size_t path_len,
			 const char *query, size_t query_len, const char *host, size_t host_len,
			 uint16_t req_port, char *out, size_t outlen)
{
	const char *scheme = rd->scheme && *rd->scheme ? rd->scheme : "http";
	const char *h = host;
	size_t hn = host_len;
	const char *pth = path;
	size_t pn = path_len;
	uint16_t port = rd->port;
	bool keep_query;
	int n;

	if (!port && rd->derive_port == POL_DERIVE_PORT_REQUEST)
		port = req_port;
	if (rd->authority && *rd->authority) {
		h = rd->authority;
		hn = strlen(h);
	} else if (!port && strcmp(scheme, "http") != 0) {
		size_t bare = route_host_len(h, hn);

		if (hn - bare == 3 && memcmp(h + bare, ":80", 3) == 0)
			hn = bare;
	}
	if (port)
		hn = route_host_len(h, hn);
	if (rd->uri && *rd->uri) {
		pth = rd->uri;
		pn = strlen(pth);
	}
	/* a query in the redirect path replaces the request's (Envoy) */
	keep_query = query_len && !memchr(pth, '?', pn);
	if (port)
		n = snprintf(out, outlen, "%s://%.*s:%u%.*s%s%.*s", scheme, (int)hn, h,
			     port, (int)pn, pth, keep_query ? "?" : "",
			     keep_query ? (int)query_len : 0, query ? query : "");
	else
		n = snprintf(out, outlen, "%s://%.*s%.*s%s%.*s", scheme, (int)hn, h,
			     (int)pn, pth, keep_query ? "?" : "",
			     keep_query ? (int)query_len : 0, query ? query : "");
	if (n < 0 || (size_t)n >= outlen)
		return -ENOSPC;
	return n;
}

bool px_hdr_listed(const char *name, size_t n, char *const *list, size_t n_list)
{
	size_t i;

	for (i = 0; i < n_list; i++)
		if (list[i] && px_ieq(name, n, list[i]))
			return true;
	return false;
}

bool px_kv_listed(const char *name, size_t n, const struct pol_kv *kv, size_t n_kv)
{
	size_t i;

	for (i = 0; i < n_kv; i++)
		if (kv[i].key && px_ieq(name, n, kv[i].key))
			return true;
	return false;
}

const char *px_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 413: return "Payload Too Large";
	case 418: return "I'm a teapot";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	}
	return "Unknown";
}

size_t px_flags_format(uint16_t flags, char *out, size_t outlen)
{
	size_t n = 0;
	int i;

	if (!outlen)
		return 0;
	out[0] = '\0';
	for (i = 0; i < PX_F_MAX; i++) {
		size_t fl;

		if (!(flags & (1u << i)))
			continue;
		fl = strlen(px_flag_names[i]);
		if (n + fl + 2 > outlen)
			break;
		if (n)
			out[n++] = ',';
		memcpy(out + n, px_flag_names[i], fl);
		n += fl;
		out[n] = '\0';
	}
	if (!n && outlen >= 2) {
		out[0] = '-';
		out[1] = '\0';
		n = 1;
	}
	return n;
}

/* Envoy's %START_TIME%: 2016-04-15T20:17:00.310Z */
size_t px_time_format(uint64_t wall_ms, char *out, size_t outlen)
{
	time_t s = (time_t)(wall_ms / 1000);
	struct tm tm;
	int n;

	gmtime_r(&s, &tm);
	n = snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900,
		     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		     (unsigned)(wall_ms % 1000));
	return n < 0 ? 0 : (size_t)n >= outlen ? outlen - 1 : (size_t)n;
}

/* ---- read buffers ---- */

char *px_buf_get(struct px_worker *w)
{
	char *p = w->bstash;

	if (!p)
		return malloc(PX_BUF_SIZE);
	memcpy(&w->bstash, p, sizeof(w->bstash));
	w->n_bstash--;
	return p;
}

void px_buf_drop(struct px_worker *w, struct px_buf *b)
{
	if (!b->p || b->off != b->len)
		return;
	if (b->cap == PX_BUF_SIZE && w->n_bstash < PX_BUF_STASH_MAX) {
		memcpy(b->p, &w->bstash, sizeof(w->bstash));
		w->bstash = b->p;
		w->n_bstash++;
	} else {
		free(b->p);
	}
	*b = (struct px_buf){ 0 };
}

void px_buf_stash_free(struct px_worker *w)
{
	while (w->bstash) {
		char *p = w->bstash;

		memcpy(&w->bstash, p, sizeof(w->bstash));
		free(p);
	}
	w->n_bstash = 0;
}
