/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * http1: zero-copy HTTP/1.1 request/response head parser and chunked body
 * decoder, strict about request smuggling (RFC 9112).
 *
 * The parser never copies: names and values point into the caller's
 * buffer, which must stay unchanged while the result is used. Contract
 * (picohttpparser's): returns the head length (> 0) when complete,
 * HTTP1_INCOMPLETE (-2) when more bytes are needed, or a negative
 * HTTP1_E* error. Every prefix of a valid head is INCOMPLETE, never an
 * error. Errors map to a response status with http1_error_status().
 */
#ifndef SOCKMESH_HTTP1_H
#define SOCKMESH_HTTP1_H

#include <stddef.h>
#include <stdint.h>

#define HTTP1_MAX_HEADERS	100
#define HTTP1_MAX_HEAD		(64 * 1024)	/* bytes; beyond: 431 */

/*
 * a[0..n) equals lit[0..n), ASCII case-insensitively (lit ASCII, any
 * case). Field names and the framing values are short and compared on
 * every head: 8 bytes at a time from 8 on, where lit has a letter both
 * sides get 0x20 (either case matches), elsewhere bytes must be equal (no
 * carry crosses a byte while lit's bytes are below 0x80; a word of lit
 * with others goes byte by byte); bytes one by one below 8.
 */
static inline int http1_ascii_ieq(const char *a, const char *lit, size_t n)
{
	if (n >= 8) {
		const uint64_t ones = 0x0101010101010101ull;

		for (size_t i = 0;; i += 8) {
			uint64_t x, y, l, m;

			if (i + 8 > n)
				i = n - 8;	/* the last, overlapping word */
			__builtin_memcpy(&x, a + i, 8);
			__builtin_memcpy(&y, lit + i, 8);
			if (y & ones * 0x80)
				break;
			l = y | ones * 0x20;
			m = ((l + ones * (0x80 - 'a')) & ~(l + ones * (0x80 - 'z' - 1)) & ones * 0x80) >> 2;
			if ((x | m) != (y | m))
				return 0;
			if (i + 8 == n)
				return 1;
		}
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char x = (unsigned char)a[i], y = (unsigned char)lit[i];

		if (x != y && ((x | 0x20) != (y | 0x20) || (unsigned)((x | 0x20) - 'a') >= 26u))
			return 0;
	}
	return 1;
}

enum http1_status {
	HTTP1_INCOMPLETE	= -2,
	HTTP1_EBAD		= -1,	/* malformed: 400 */
	HTTP1_ETOOLARGE		= -3,	/* head or too many headers: 431 */
	HTTP1_ESMUGGLE		= -4,	/* CL+TE, conflicting CL, bad TE: 400 */
	HTTP1_EVERSION		= -5,	/* not HTTP/1.x: 505 */
};

struct http1_str {
	const char *p;
	size_t n;
};

struct http1_header {
	struct http1_str name;		/* as sent; compare case-insensitively */
	struct http1_str value;		/* OWS trimmed */
};

/* Body framing decided from the head (RFC 9112 section 6). */
enum http1_body {
	HTTP1_BODY_NONE = 0,
	HTTP1_BODY_LENGTH,		/* content_length (> 0) bytes; CL 0 is NONE */
	HTTP1_BODY_CHUNKED,
	HTTP1_BODY_CLOSE,		/* response: until the connection closes */
};

struct http1_msg {
	/* request line */
	struct http1_str method;
	struct http1_str target;	/* request-target as sent */
	struct http1_str path;		/* target up to '?' (origin-form); for
					 * absolute-form the path part ("/" when
					 * none); empty for CONNECT and "*" */
	struct http1_str query;		/* after '?', may be empty */
	/* status line */
	int status;			/* response only */
	struct http1_str reason;
	int minor_version;		/* 0 or 1 */

	size_t n_headers;

	/* derived while parsing */
	enum http1_body body;
	uint64_t content_length;
	int keep_alive;			/* 1.1 default on, 1.0 default off, Connection: close/keep-alive */
	int expect_continue;		/* Expect: 100-continue */
	int upgrade;			/* Connection: upgrade + Upgrade: present */
	struct http1_str host;		/* request: authority of an absolute-form
					 * target (RFC 9112 3.2.2), else the Host
					 * header; empty when absent or response */
	/* last: a copy may keep only the n_headers in use (http1_msg_size) */
	struct http1_header headers[HTTP1_MAX_HEADERS];
};

_Static_assert(offsetof(struct http1_msg, headers) +
	       HTTP1_MAX_HEADERS * sizeof(struct http1_header) == sizeof(struct http1_msg),
	       "http1_msg: headers[] is the last member (http1_msg_size)");

/* Bytes of a struct http1_msg cut after its first n headers. */
#define http1_msg_size(n)	(offsetof(struct http1_msg, headers) + \
				 (n) * sizeof(struct http1_header))

/*
 * Parse a request head in buf[0..len). Empty lines before the request line
 * are skipped (RFC 9112 2.2) and counted in the returned length. The
 * request-target must be VCHARs: origin-form, absolute-form (http/https),
 * "*" with OPTIONS only, authority-form with CONNECT only. Expect is only
 * honoured for HTTP/1.1. The head is re-parsed from the start on every
 * call; all pointers in m are into buf (or static ""/"/"). Rejects: both Content-Length and
 * Transfer-Encoding; several differing Content-Lengths (identical repeats
 * are folded, as RFC 9110 allows); Transfer-Encoding other than a final
 * "chunked" (HTTP1_ESMUGGLE); obs-fold, bare LF or CR, NUL and other
 * control characters, whitespace before the colon, invalid token or
 * target characters (HTTP1_EBAD); HTTP/1.1 without Host (HTTP1_EBAD).
 */
int http1_parse_request(const char *buf, size_t len, struct http1_msg *m);

/*
 * The same request from fields already split (an HTTP/2 head handed over
 * without HTTP/1.1 text): method, request-target and m->headers[0 ..
 * m->n_headers) filled in by the caller, in the order the text would have
 * them, "host" among them. Every check and derivation
 * http1_parse_request applies to that head as text is applied here
 * (token and value octets, OWS trimmed, target forms, Host, Content-Length
 * / Transfer-Encoding smuggling rules, keep-alive; HTTP/1.1). Names and
 * values stay where the caller has them. Returns 0 or a negative HTTP1_E*.
 */
int http1_request_from_fields(struct http1_msg *m, const char *method, size_t method_n,
			      const char *target, size_t target_n);

/*
 * Parse a response head. req_method is the request's method, may be NULL
 * (HEAD and 1xx/204/304 have no body; 2xx to CONNECT neither). Both CL and
 * TE, TE in HTTP/1.0 or "chunked" twice: HTTP1_ESMUGGLE (a proxy answers
 * 502). TE without a final "chunked" and no framing at all: BODY_CLOSE with
 * keep_alive 0. Status must be 100..599.
 */
int http1_parse_response(const char *buf, size_t len, const char *req_method,
			 size_t req_method_len, struct http1_msg *m);

/* Response status for a parse error (400, 431, 505). */
int http1_error_status(int err);

/* First header named name (case-insensitive), or NULL. */
const struct http1_header *http1_header_get(const struct http1_msg *m, const char *name);

/*
 * Chunked body decoder, incremental and zero-copy: feed it bytes, it says
 * which of them are payload. Trailers are consumed and dropped.
 */
struct http1_chunked {
	int state;		/* internal */
	uint64_t left;		/* payload bytes left in the current chunk */
	size_t line;		/* length of the current size/trailer line */
	int done;		/* last chunk and trailers consumed */
	uint32_t trailer_lines;	/* bounded by HTTP1_MAX_HEADERS */
};

void http1_chunked_init(struct http1_chunked *c);

/*
 * Decode from in[0..len). Returns the number of input bytes consumed (>= 0)
 * or HTTP1_EBAD. Payload found in this call is reported as up to *n_out
 * spans (offset, length) into in; on entry *n_out is the capacity of out.
 * When c->done is set, bytes after the consumed count belong to the next
 * message. When out fills up, decoding stops early: call again with the
 * rest (a capacity of 0 makes no progress inside chunk data). Strict CRLF
 * everywhere; size lines (with extensions, which are ignored) and trailer
 * lines are bounded to 4096 bytes, trailers to HTTP1_MAX_HEADERS lines.
 * After HTTP1_EBAD every further call fails too.
 */
int http1_chunked_decode(struct http1_chunked *c, const char *in, size_t len,
			 struct http1_str *out, size_t *n_out);

#endif /* SOCKMESH_HTTP1_H */
