// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * http1: zero-copy HTTP/1.1 head parser and chunked decoder (RFC 9112).
 *
 * One pass over the head, character classes from 256-byte tables, no
 * allocation, no strlen on input. The parser only ever stops with an error
 * on bytes it has seen and knows to be wrong, and every framing decision
 * that needs the whole head (CL+TE, missing Host) is taken after the empty
 * line, so every prefix of a valid head is HTTP1_INCOMPLETE.
 *
 * Strictness follows what Envoy and llhttp do by default against request
 * smuggling: no obs-fold, no bare CR or LF, no whitespace before the colon,
 * Transfer-Encoding in a request only as exactly "chunked", never together
 * with Content-Length, and Content-Length lists only with identical values.
 */
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "proxy/http1.h"

#define HTTP1_CHUNK_LINE_MAX	4096	/* chunk-size line incl. extensions */

/* tchar (RFC 9110 5.6.2): used for methods and field names. */
static const unsigned char http1_tok[256] = {
	['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1,
	['*'] = 1, ['+'] = 1, ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1,
	['`'] = 1, ['|'] = 1, ['~'] = 1,
	['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1,
	['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
	['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1,
	['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1,
	['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1,
	['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
	['Y'] = 1, ['Z'] = 1,
	['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1,
	['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1,
	['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1,
	['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
	['y'] = 1, ['z'] = 1,
};

/* field-value octets: HTAB, SP, VCHAR, obs-text (RFC 9110 5.5) */
static const unsigned char http1_val[256] = {
	['\t'] = 1, [0x20 ... 0x7e] = 1, [0x80 ... 0xff] = 1,
};

/* request-target octets: VCHAR only (no SP, controls or obs-text) */
static const unsigned char http1_tgt[256] = {
	[0x21 ... 0x7e] = 1,
};

/* hex digit value + 1; 0 when not a hex digit */
static const unsigned char http1_hex1[256] = {
	['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5,
	['5'] = 6, ['6'] = 7, ['7'] = 8, ['8'] = 9, ['9'] = 10,
	['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
	['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};

#define U(p) ((unsigned char)*(p))

/*
 * The first byte in [p, end) that is not a field-value octet (http1_val:
 * HTAB, SP..'~', obs-text), or end. Header values are most of a head's
 * bytes: 16 at a time with SSE2 (never reading at or past end), then the
 * table for the tail.
 */
static inline const char *http1_val_span(const char *p, const char *end)
{
#ifdef __SSE2__
	const __m128i sp = _mm_set1_epi8(0x20), tab = _mm_set1_epi8('\t');
	const __m128i del = _mm_set1_epi8(0x7f), neg = _mm_set1_epi8(-1);

	while (end - p >= 16) {
		__m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
		/* signed: 0x00..0x1f are > -1 and < 0x20; obs-text is negative */
		__m128i ctl = _mm_and_si128(_mm_cmpgt_epi8(x, neg),
					    _mm_cmplt_epi8(x, sp));
		__m128i bad = _mm_or_si128(_mm_andnot_si128(_mm_cmpeq_epi8(x, tab), ctl),
					   _mm_cmpeq_epi8(x, del));
		int mask = _mm_movemask_epi8(bad);

		if (mask)
			return p + __builtin_ctz((unsigned)mask);
		p += 16;
	}
#endif
	while (p < end && http1_val[(unsigned char)*p])
		p++;
	return p;
}

/*
 * The first byte in [p, end) that is not a tchar, or end. Field names are
 * letters, digits and '-' almost always: 16 of those at a time with SSE2
 * (never reading at or past end); the table decides from the first other
 * byte on.
 */
static inline const char *http1_tok_span(const char *p, const char *end)
{
#ifdef __SSE2__
	while (end - p >= 16) {
		__m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
		__m128i l = _mm_or_si128(x, _mm_set1_epi8(0x20));	/* letters to lower case */
		__m128i alpha = _mm_and_si128(_mm_cmpgt_epi8(l, _mm_set1_epi8('a' - 1)),
					      _mm_cmplt_epi8(l, _mm_set1_epi8('z' + 1)));
		__m128i digit = _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8('0' - 1)),
					      _mm_cmplt_epi8(x, _mm_set1_epi8('9' + 1)));
		__m128i dash = _mm_cmpeq_epi8(x, _mm_set1_epi8('-'));
		unsigned mask = (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(alpha, digit),
									 dash));

		if (mask != 0xffff) {
			p += __builtin_ctz(~mask);
			break;
		}
		p += 16;
	}
#endif
	while (p < end && http1_tok[(unsigned char)*p])
		p++;
	return p;
}

/* Case-insensitive compare of s[0..n) with a lower-case literal. */
static inline int http1_ieq(const char *s, size_t n, const char *lit, size_t litn)
{
	return n == litn && http1_ascii_ieq(s, lit, n);
}

#define IEQ(s, n, lit) http1_ieq(s, n, lit, sizeof(lit) - 1)

static inline int http1_ows(char c)
{
	return c == ' ' || c == '\t';
}

/*
 * Iterate a comma-separated list: sets *e and *en to the next element, OWS
 * trimmed (possibly empty) and returns 1, or 0 at the end.
 */
struct http1_list {
	const char *p, *end;
	int done;
};

static int http1_list_next(struct http1_list *l, const char **e, size_t *en)
{
	const char *s, *t;

	if (l->done)
		return 0;
	s = l->p;
	while (s < l->end && http1_ows(*s))
		s++;
	t = s;
	while (t < l->end && *t != ',')
		t++;
	if (t == l->end)
		l->done = 1;
	else
		l->p = t + 1;
	while (t > s && http1_ows(t[-1]))
		t--;
	*e = s;
	*en = (size_t)(t - s);
	return 1;
}

/* Per-head facts gathered while scanning the fields. */
struct http1_scan {
	int is_request;
	int seen_host;
	int seen_cl;
	int seen_te;
	int te_chunked_last;	/* the last coding so far is "chunked" */
	int te_chunked;		/* how many times "chunked" appears */
	int te_other;		/* some coding other than a bare "chunked" */
	int conn_close;
	int conn_keep_alive;
	int conn_upgrade;
	int has_upgrade;
};

/* Content-Length: 1*DIGIT, or a list of them that must all agree. */
static int http1_field_cl(struct http1_scan *s, struct http1_msg *m,
			  const char *v, size_t vn)
{
	struct http1_list l = { v, v + vn, 0 };
	uint64_t first = 0;
	int n = 0, differ = 0;
	const char *e;
	size_t en;

	while (http1_list_next(&l, &e, &en)) {
		uint64_t x = 0;

		if (!en)
			return HTTP1_EBAD;
		for (size_t i = 0; i < en; i++) {
			unsigned d = (unsigned)(U(e + i) - '0');

			if (d > 9)
				return HTTP1_EBAD;
			if (x > (UINT64_MAX - d) / 10)
				return HTTP1_EBAD;
			x = x * 10 + d;
		}
		if (n++ == 0)
			first = x;
		else if (x != first)
			differ = 1;
	}
	if (differ || (s->seen_cl && m->content_length != first))
		return HTTP1_ESMUGGLE;
	s->seen_cl = 1;
	m->content_length = first;
	return 0;
}

/* Transfer-Encoding: remember whether "chunked" is there and last. */
static int http1_field_te(struct http1_scan *s, const char *v, size_t vn)
{
	struct http1_list l = { v, v + vn, 0 };
	const char *e;
	size_t en;

	s->seen_te = 1;
	if (IEQ(v, vn, "chunked")) {
		/* the usual value (trimmed by the caller): the list below, short */
		s->te_chunked++;
		s->te_chunked_last = 1;
		return 0;
	}
	while (http1_list_next(&l, &e, &en)) {
		if (!en)
			return HTTP1_ESMUGGLE;
		if (IEQ(e, en, "chunked")) {
			s->te_chunked++;
			s->te_chunked_last = 1;
		} else {
			s->te_other = 1;
			s->te_chunked_last = 0;
		}
	}
	return 0;
}

static void http1_field_connection(struct http1_scan *s, const char *v, size_t vn)
{
	struct http1_list l = { v, v + vn, 0 };
	const char *e;
	size_t en;

	while (http1_list_next(&l, &e, &en)) {
		if (IEQ(e, en, "close"))
			s->conn_close = 1;
		else if (IEQ(e, en, "keep-alive"))
			s->conn_keep_alive = 1;
		else if (IEQ(e, en, "upgrade"))
			s->conn_upgrade = 1;
	}
}

/* Fields that decide framing and connection handling; others pass. */
static inline __attribute__((always_inline)) int http1_field(struct http1_scan *s, struct http1_msg *m,
		       const struct http1_header *h)
{
	const char *n = h->name.p, *v = h->value.p;
	size_t nn = h->name.n, vn = h->value.n;

	switch (nn) {
	case 4:
		if (s->is_request && IEQ(n, nn, "host")) {
			if (s->seen_host)
				return HTTP1_EBAD;
			s->seen_host = 1;
			if (!m->host.p)
				m->host = h->value;
		}
		break;
	case 6:
		if (s->is_request && IEQ(n, nn, "expect") &&
		    IEQ(v, vn, "100-continue"))
			m->expect_continue = 1;
		break;
	case 7:
		if (IEQ(n, nn, "upgrade"))
			s->has_upgrade = 1;
		break;
	case 10:
		if (IEQ(n, nn, "connection"))
			http1_field_connection(s, v, vn);
		break;
	case 14:
		if (IEQ(n, nn, "content-length"))
			return http1_field_cl(s, m, v, vn);
		break;
	case 17:
		if (IEQ(n, nn, "transfer-encoding"))
			return http1_field_te(s, v, vn);
		break;
	}
	return 0;
}

/*
 * "HTTP/1.x" at p (8 bytes available). Returns the minor version, HTTP1_EBAD
 * when it is not an HTTP-version, HTTP1_EVERSION for another version.
 */
static int http1_version(const char *p)
{
	unsigned maj, min;

	if (memcmp(p, "HTTP/", 5) || p[6] != '.')
		return HTTP1_EBAD;
	maj = (unsigned)(U(p + 5) - '0');
	min = (unsigned)(U(p + 7) - '0');
	if (maj > 9 || min > 9)
		return HTTP1_EBAD;
	if (maj != 1 || min > 1)
		return HTTP1_EVERSION;
	return (int)min;
}

/* CRLF at *pp: advance past it, or INCOMPLETE, or EBAD (bare CR/LF, junk). */
static inline int http1_crlf(const char **pp, const char *end)
{
	const char *p = *pp;

	if (p == end)
		return HTTP1_INCOMPLETE;
	if (*p != '\r')
		return HTTP1_EBAD;
	if (p + 1 == end)
		return HTTP1_INCOMPLETE;
	if (p[1] != '\n')
		return HTTP1_EBAD;
	*pp = p + 2;
	return 0;
}

/*
 * Header fields up to and including the empty line. Returns 0 with *pp past
 * the empty line, or INCOMPLETE / an error.
 */
static int http1_fields(const char **pp, const char *end, struct http1_msg *m,
			struct http1_scan *s)
{
	const char *p = *pp;

	for (;;) {
		struct http1_header *h;
		const char *name, *v, *ve;
		int err;

		if (p == end)
			return HTTP1_INCOMPLETE;
		if (*p == '\r') {
			err = http1_crlf(&p, end);
			if (err)
				return err;
			*pp = p;
			return 0;
		}
		name = p;
		p = http1_tok_span(p, end);
		if (p == end)
			return HTTP1_INCOMPLETE;
		/* also catches obs-fold, empty names, "name :" and bare LF */
		if (*p != ':' || p == name)
			return HTTP1_EBAD;
		if (m->n_headers == HTTP1_MAX_HEADERS)
			return HTTP1_ETOOLARGE;
		h = &m->headers[m->n_headers];
		h->name.p = name;
		h->name.n = (size_t)(p - name);
		p++;
		while (p < end && http1_ows(*p))
			p++;
		v = p;
		p = http1_val_span(p, end);
		ve = p;
		err = http1_crlf(&p, end);
		if (err)
			return err;
		while (ve > v && http1_ows(ve[-1]))
			ve--;
		h->value.p = v;
		h->value.n = (size_t)(ve - v);
		m->n_headers++;
		err = http1_field(s, m, h);
		if (err)
			return err;
	}
}

static void http1_msg_reset(struct http1_msg *m)
{
	static const struct http1_str empty = { "", 0 };

	m->method = m->target = m->path = m->query = empty;
	m->reason = empty;
	m->host.p = NULL;
	m->host.n = 0;
	m->status = 0;
	m->minor_version = 1;
	m->n_headers = 0;
	m->body = HTTP1_BODY_NONE;
	m->content_length = 0;
	m->keep_alive = 0;
	m->expect_continue = 0;
	m->upgrade = 0;
}

/* Split target[0..n) at '?' into path and query. */
static void http1_split_query(struct http1_msg *m, const char *t, size_t n)
{
	const char *q = memchr(t, '?', n);

	m->path.p = t;
	if (q) {
		m->path.n = (size_t)(q - t);
		m->query.p = q + 1;
		m->query.n = n - m->path.n - 1;
	} else {
		m->path.n = n;
	}
}

/*
 * request-target forms (RFC 9112 3.2): origin-form for everything,
 * absolute-form ("http://authority/path", as sent to proxies) sets host and
 * path from the target, asterisk-form only for OPTIONS, authority-form only
 * (and always) for CONNECT.
 */
static int http1_target(struct http1_msg *m)
{
	const char *t = m->target.p, *end = t + m->target.n, *a, *ae;
	size_t skip;
	int is_connect = m->method.n == 7 && !memcmp(m->method.p, "CONNECT", 7);

	if (is_connect) {
		/* host ":" port; no path, no userinfo */
		const char *colon = NULL;

		for (a = t; a < end; a++) {
			if (*a == '/' || *a == '?' || *a == '#' || *a == '@')
				return HTTP1_EBAD;
			if (*a == ':')
				colon = a;
		}
		if (!colon || colon == t || colon + 1 == end)
			return HTTP1_EBAD;
		return 0;
	}
	if (*t == '/') {
		http1_split_query(m, t, m->target.n);
		return 0;
	}
	if (m->target.n == 1 && *t == '*') {
		if (m->method.n == 7 && !memcmp(m->method.p, "OPTIONS", 7))
			return 0;
		return HTTP1_EBAD;
	}
	if (m->target.n > 7 && IEQ(t, 7, "http://"))
		skip = 7;
	else if (m->target.n > 8 && IEQ(t, 8, "https://"))
		skip = 8;
	else
		return HTTP1_EBAD;
	a = t + skip;
	for (ae = a; ae < end && *ae != '/' && *ae != '?'; ae++)
		if (*ae == '@' || *ae == '#')
			return HTTP1_EBAD;
	if (ae == a)
		return HTTP1_EBAD;
	/* RFC 9112 3.2.2: the target's authority replaces Host */
	m->host.p = a;
	m->host.n = (size_t)(ae - a);
	if (ae == end || *ae == '?') {
		/* "http://h" and "http://h?q" mean path "/" */
		m->path.p = "/";
		m->path.n = 1;
		if (ae < end) {
			m->query.p = ae + 1;
			m->query.n = (size_t)(end - ae - 1);
		}
		return 0;
	}
	http1_split_query(m, ae, (size_t)(end - ae));
	return 0;
}

static int http1_too_large(size_t len, int err)
{
	/* a head still incomplete after HTTP1_MAX_HEAD bytes will not fit */
	if (err == HTTP1_INCOMPLETE && len >= HTTP1_MAX_HEAD)
		return HTTP1_ETOOLARGE;
	return err;
}

static void http1_conn_flags(struct http1_msg *m, const struct http1_scan *s)
{
	if (m->minor_version >= 1)
		m->keep_alive = !s->conn_close;
	else
		m->keep_alive = s->conn_keep_alive && !s->conn_close;
	m->upgrade = s->conn_upgrade && s->has_upgrade;
}

static int http1_request_end(struct http1_msg *m, struct http1_scan *sc);

static int http1_request(const char *buf, size_t len, struct http1_msg *m)
{
	const char *end = buf + (len < HTTP1_MAX_HEAD ? len : HTTP1_MAX_HEAD);
	const char *p = buf, *t;
	struct http1_scan s = { .is_request = 1 };
	int err;

	/* RFC 9112 2.2: a server SHOULD ignore empty lines before a request */
	while (p < end && *p == '\r') {
		err = http1_crlf(&p, end);
		if (err)
			return err;
	}
	m->method.p = p;
	while (p < end && http1_tok[U(p)])
		p++;
	if (p == end)
		return HTTP1_INCOMPLETE;
	if (*p != ' ' || p == m->method.p)
		return HTTP1_EBAD;
	m->method.n = (size_t)(p - m->method.p);
	t = ++p;
	while (p < end && http1_tgt[U(p)])
		p++;
	if (p == end)
		return HTTP1_INCOMPLETE;
	if (*p != ' ' || p == t)
		return HTTP1_EBAD;
	m->target.p = t;
	m->target.n = (size_t)(p - t);
	p++;
	if (end - p < 8)
		return HTTP1_INCOMPLETE;
	err = http1_version(p);
	if (err < 0)
		return err;
	m->minor_version = err;
	p += 8;
	err = http1_crlf(&p, end);
	if (err)
		return err;
	err = http1_target(m);
	if (err)
		return err;
	err = http1_fields(&p, end, m, &s);
	if (err)
		return err;
	err = http1_request_end(m, &s);
	return err ? err : (int)(p - buf);
}

int http1_parse_request(const char *buf, size_t len, struct http1_msg *m)
{
	http1_msg_reset(m);
	return http1_too_large(len, http1_request(buf, len, m));
}

int http1_request_from_fields(struct http1_msg *m, const char *method, size_t method_n,
			      const char *target, size_t target_n)
{
	struct http1_scan s = { .is_request = 1 };
	size_t n = m->n_headers, i;
	int err;

	if (n > HTTP1_MAX_HEADERS)
		return HTTP1_ETOOLARGE;
	http1_msg_reset(m);
	if (!method_n || http1_tok_span(method, method + method_n) != method + method_n)
		return HTTP1_EBAD;
	if (!target_n)
		return HTTP1_EBAD;
	for (i = 0; i < target_n; i++)
		if (!http1_tgt[(unsigned char)target[i]])
			return HTTP1_EBAD;
	m->method.p = method;
	m->method.n = method_n;
	m->target.p = target;
	m->target.n = target_n;
	err = http1_target(m);
	if (err)
		return err;
	for (i = 0; i < n; i++) {
		struct http1_header *h = &m->headers[i];
		const char *v = h->value.p, *ve = v + h->value.n;

		if (!h->name.n || http1_tok_span(h->name.p, h->name.p + h->name.n) !=
				  h->name.p + h->name.n)
			return HTTP1_EBAD;
		/* as the text parser: OWS around the value trimmed, then value octets only */
		while (v < ve && http1_ows(*v))
			v++;
		while (ve > v && http1_ows(ve[-1]))
			ve--;
		if (http1_val_span(v, ve) != ve)
			return HTTP1_EBAD;
		h->value.p = v;
		h->value.n = (size_t)(ve - v);
		m->n_headers = i + 1;
		err = http1_field(&s, m, h);
		if (err)
			return err;
	}
	return http1_request_end(m, &s);
}

/* After the fields: the decisions that need the whole request head. */
static int http1_request_end(struct http1_msg *m, struct http1_scan *sc)
{
	const struct http1_scan s = *sc;

	if (m->minor_version == 1 && !s.seen_host)
		return HTTP1_EBAD;
	if (!m->host.p) {
		m->host.p = "";
		m->host.n = 0;
	}
	if (s.seen_te) {
		/* RFC 9112 6.1: TE in 1.0 is a framing error; CL+TE smuggles */
		if (m->minor_version == 0 || s.seen_cl)
			return HTTP1_ESMUGGLE;
		if (s.te_other || s.te_chunked != 1 || !s.te_chunked_last)
			return HTTP1_ESMUGGLE;
		m->body = HTTP1_BODY_CHUNKED;
	} else if (s.seen_cl && m->content_length) {
		m->body = HTTP1_BODY_LENGTH;
	}
	if (m->minor_version == 0)
		m->expect_continue = 0;
	http1_conn_flags(m, &s);
	return 0;
}

static int http1_response(const char *buf, size_t len, const char *req_method,
			  size_t req_method_len, struct http1_msg *m)
{
	const char *end = buf + (len < HTTP1_MAX_HEAD ? len : HTTP1_MAX_HEAD);
	const char *p = buf, *r;
	struct http1_scan s = { .is_request = 0 };
	unsigned d0, d1, d2;
	int err;

	if (end - p < 8)
		return HTTP1_INCOMPLETE;
	err = http1_version(p);
	if (err < 0)
		return err;
	m->minor_version = err;
	p += 8;
	if (end - p < 4)
		return HTTP1_INCOMPLETE;
	d0 = (unsigned)(U(p + 1) - '0');
	d1 = (unsigned)(U(p + 2) - '0');
	d2 = (unsigned)(U(p + 3) - '0');
	if (*p != ' ' || d0 > 9 || d1 > 9 || d2 > 9)
		return HTTP1_EBAD;
	m->status = (int)(d0 * 100 + d1 * 10 + d2);
	if (m->status < 100 || m->status > 599)
		return HTTP1_EBAD;
	p += 4;
	if (p == end)
		return HTTP1_INCOMPLETE;
	/* "HTTP/1.1 204\r\n": reason phrase and its SP both missing */
	if (*p == ' ') {
		r = ++p;
		while (p < end && http1_val[U(p)])
			p++;
		m->reason.p = r;
		m->reason.n = (size_t)(p - r);
	}
	err = http1_crlf(&p, end);
	if (err)
		return err;
	err = http1_fields(&p, end, m, &s);
	if (err)
		return err;

	m->host.p = "";
	m->host.n = 0;
	if (s.seen_te && (s.seen_cl || m->minor_version == 0 || s.te_chunked > 1))
		return HTTP1_ESMUGGLE;
	http1_conn_flags(m, &s);
	if ((req_method_len == 4 && !memcmp(req_method, "HEAD", 4)) ||
	    m->status < 200 || m->status == 204 || m->status == 304 ||
	    (req_method_len == 7 && !memcmp(req_method, "CONNECT", 7) &&
	     m->status < 300)) {
		m->body = HTTP1_BODY_NONE;
	} else if (s.seen_te) {
		/* RFC 9112 6.3 (4): no final chunked: read until close */
		m->body = s.te_chunked_last ? HTTP1_BODY_CHUNKED : HTTP1_BODY_CLOSE;
	} else if (s.seen_cl) {
		m->body = m->content_length ? HTTP1_BODY_LENGTH : HTTP1_BODY_NONE;
	} else {
		m->body = HTTP1_BODY_CLOSE;
	}
	if (m->body == HTTP1_BODY_CLOSE)
		m->keep_alive = 0;
	return (int)(p - buf);
}

int http1_parse_response(const char *buf, size_t len, const char *req_method,
			 size_t req_method_len, struct http1_msg *m)
{
	http1_msg_reset(m);
	if (!req_method)
		req_method_len = 0;
	return http1_too_large(len, http1_response(buf, len, req_method,
						   req_method_len, m));
}

int http1_error_status(int err)
{
	switch (err) {
	case HTTP1_ETOOLARGE:
		return 431;
	case HTTP1_EVERSION:
		return 505;
	default:
		return 400;
	}
}

const struct http1_header *http1_header_get(const struct http1_msg *m, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < m->n_headers; i++) {
		const struct http1_header *h = &m->headers[i];

		if (h->name.n == n && http1_ascii_ieq(h->name.p, name, n))
			return h;
	}
	return NULL;
}

/* ---- chunked decoder ---- */

enum {
	CH_SIZE0 = 0,	/* first hex digit of a chunk size */
	CH_SIZE,	/* more hex digits */
	CH_SIZE_WS,	/* BWS after the size: only ';' may follow */
	CH_EXT,		/* chunk extensions, ignored */
	CH_SIZE_LF,
	CH_DATA,
	CH_DATA_CR,
	CH_DATA_LF,
	CH_TRAILER,	/* start of a trailer line or the final CRLF */
	CH_TRAILER_LINE,
	CH_TRAILER_LF,
	CH_FINAL_LF,
	CH_DONE,
	CH_ERROR,
};

void http1_chunked_init(struct http1_chunked *c)
{
	memset(c, 0, sizeof(*c));
	c->state = CH_SIZE0;
}

int http1_chunked_decode(struct http1_chunked *c, const char *in, size_t len,
			 struct http1_str *out, size_t *n_out)
{
	size_t cap = *n_out, n = 0, i = 0;
	int hx;

	*n_out = 0;
	if (c->state == CH_ERROR)
		return HTTP1_EBAD;
	if (len > INT32_MAX)
		len = INT32_MAX;
	while (i < len && c->state != CH_DONE) {
		unsigned char ch = (unsigned char)in[i];

		switch (c->state) {
		case CH_SIZE0:
		case CH_SIZE:
			hx = http1_hex1[ch];
			if (hx) {
				if (c->left > (UINT64_MAX >> 4))
					goto bad;
				c->left = c->left << 4 | (uint64_t)(hx - 1);
				c->state = CH_SIZE;
			} else if (c->state == CH_SIZE0) {
				goto bad;
			} else if (ch == ';') {
				c->state = CH_EXT;
			} else if (ch == ' ' || ch == '\t') {
				c->state = CH_SIZE_WS;
			} else if (ch == '\r') {
				c->state = CH_SIZE_LF;
			} else {
				goto bad;
			}
			break;
		case CH_SIZE_WS:
			if (ch == ';')
				c->state = CH_EXT;
			else if (ch != ' ' && ch != '\t')
				goto bad;
			break;
		case CH_EXT:
			if (ch == '\r')
				c->state = CH_SIZE_LF;
			else if (!http1_val[ch])
				goto bad;
			break;
		case CH_SIZE_LF:
			if (ch != '\n')
				goto bad;
			c->line = 0;
			c->state = c->left ? CH_DATA : CH_TRAILER;
			i++;
			continue;
		case CH_DATA: {
			size_t take = len - i;

			if (n == cap)
				goto out;
			if (take > c->left)
				take = (size_t)c->left;
			out[n].p = in + i;
			out[n].n = take;
			n++;
			i += take;
			c->left -= take;
			if (!c->left)
				c->state = CH_DATA_CR;
			continue;
		}
		case CH_DATA_CR:
			if (ch != '\r')
				goto bad;
			c->state = CH_DATA_LF;
			break;
		case CH_DATA_LF:
			if (ch != '\n')
				goto bad;
			c->state = CH_SIZE0;
			c->line = 0;
			i++;
			continue;
		case CH_TRAILER:
			if (ch == '\r') {
				c->state = CH_FINAL_LF;
			} else if (http1_tok[ch]) {
				c->state = CH_TRAILER_LINE;
			} else {
				/* obs-fold, bare LF, junk */
				goto bad;
			}
			break;
		case CH_TRAILER_LINE:
			if (ch == '\r')
				c->state = CH_TRAILER_LF;
			else if (!http1_val[ch])
				goto bad;
			break;
		case CH_TRAILER_LF:
			if (ch != '\n')
				goto bad;
			c->state = CH_TRAILER;
			c->line = 0;
			c->trailer_lines++;
			if (c->trailer_lines > HTTP1_MAX_HEADERS)
				goto bad;
			i++;
			continue;
		case CH_FINAL_LF:
			if (ch != '\n')
				goto bad;
			c->state = CH_DONE;
			c->done = 1;
			i++;
			continue;
		default:
			goto bad;
		}
		/* bytes of a size or trailer line: bounded */
		if (++c->line > HTTP1_CHUNK_LINE_MAX)
			goto bad;
		i++;
	}
out:
	*n_out = n;
	return (int)i;
bad:
	c->state = CH_ERROR;
	*n_out = 0;
	return HTTP1_EBAD;
}
