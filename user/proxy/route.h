/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * route: the proxy's router over the compiled L7 config (pure).
 * l7_route_match() finds the first http route of a virtual host that
 * matches a request (match blocks OR, conditions inside one block AND;
 * regex = whole-string PCRE2 match), l7_route_pick_dest() applies the
 * weights.
 */
#ifndef SOCKMESH_ROUTE_H
#define SOCKMESH_ROUTE_H

#include "compile/l7.h"

/* What the router needs to know about one request. */
struct l7_request_view {
	const char *method;	size_t method_len;
	const char *path;	size_t path_len;	/* without query */
	const char *query;	size_t query_len;	/* without '?' */
	const char *authority;	size_t authority_len;	/* Host */
	const char *scheme;				/* "http" */
	uint16_t port;					/* the service / gateway port */
	/* header lookup: returns value or NULL; name lower-case */
	const char *(*header)(const void *ctx, const char *name, size_t *len);
	const void *ctx;
	const struct l7_pod *source;			/* client pod, NULL if unknown */
	const char *gateway;				/* NULL = mesh, else "ns/name" */
	/* httpCookie with a ttl, request without the cookie: the value the
	 * proxy sets (Envoy hashes the cookie it generates), else NULL */
	const char *gen_cookie;
};

/*
 * First route of vh matching rq, or NULL (Envoy then answers 404 NR).
 * index and matched (may be NULL) receive its position, for logs and
 * explain, and the match block that matched (NULL when the route has none).
 */
const struct l7_route *l7_route_match(const struct l7_vhost *vh,
				      const struct l7_request_view *rq, size_t *index,
				      const struct pol_http_match **matched);

/* Weighted choice; rnd uniform in [0, 2^32). NULL when no weight > 0. */
const struct l7_route_dest *l7_route_pick_dest(const struct l7_route *r, uint32_t rnd);

/* Length of host without its ":port" (an IPv6 literal keeps its brackets). */
size_t route_host_len(const char *host, size_t len);

/* The vhost of a gateway for a Host header (exact, then longest wildcard). */
const struct l7_vhost *l7_gateway_find_vhost(const struct l7_gateway *gw, const char *host,
					     size_t host_len);

/*
 * Path after rewrite (uri prefix / regex). Writes a NUL-terminated string
 * into out (outlen bytes). Returns its length, or -ENOSPC. The matched
 * prefix is the route's uri match prefix when the match was a prefix.
 */
int l7_rewrite_path(const struct l7_route *r, const struct pol_http_match *matched,
		    const char *path, size_t path_len, char *out, size_t outlen);

#endif /* SOCKMESH_ROUTE_H */
