/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * http: the small HTTP/1.1 subset the admin API speaks (one request per
 * connection, Content-Length bodies, JSON). Enough for `curl --unix-socket`
 * and for sockmeshctl; the L7 proxy has its own parser.
 */
#ifndef SOCKMESH_HTTP_H
#define SOCKMESH_HTTP_H

#include <stddef.h>

#define HTTP_HEAD_MAX	8192
#define HTTP_BODY_MAX	(16u << 20)	/* 16 MiB: a large policy file */

struct http_req {
	char method[16];
	char path[1024];	/* path without the query */
	char query[1024];	/* after '?', may be empty */
	size_t content_length;
	const char *body;	/* points into the caller's buffer */
};

/*
 * Parse a request held in buf[0..len). Returns the total request length
 * (head + body) when complete, 0 when more bytes are needed, -EINVAL when
 * malformed, -E2BIG when the head or body exceeds the limits above.
 */
int http_parse_request(const char *buf, size_t len, struct http_req *req);

/*
 * Find query parameter name in q ("a=1&b=2"); copies its (not decoded)
 * value to out. Returns 0 or -ENOENT.
 */
int http_query_get(const char *q, const char *name, char *out, size_t outlen);

/* Reason phrase for a status code. */
const char *http_reason(int status);

/*
 * Client: connect to a unix socket, send one request, read the whole
 * response. On success returns the status code and sets *body (malloc'd,
 * NUL-terminated; caller frees). Returns -errno on failure. Bounded by
 * timeout_ms for connect, send and receive.
 */
int http_unix_request(const char *sock_path, const char *method,
		      const char *path, const char *body, size_t body_len,
		      int timeout_ms, char **resp_body);

#endif /* SOCKMESH_HTTP_H */
