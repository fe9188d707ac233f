// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * route: the pure request router over an l7_config (Envoy's route matching
 * as Istio configures it). It reads the validated policy routes
 * (struct pol_http_route: regexes compiled and header names lower-cased
 * at load) through the config's l7_route.
 *
 *  - http[] first match wins; match blocks OR, conditions in a block AND.
 *  - StringMatch exact / prefix case-sensitive unless ignoreUriCase (uri
 *    only; never for regex, as Envoy's case_sensitive); regex is a
 *    whole-string PCRE2 match (compiled ANCHORED | ENDANCHORED).
 *  - headers: names case-insensitive (the caller's lookup takes lower
 *    case), values case-sensitive. A missing header fails every header
 *    condition except presence. withoutHeaders is Istio's translation to
 *    Envoy: invert_match with treat_missing_header_as_empty, so a missing
 *    header is matched as "" and the result inverted (absent passes
 *    exact "a", prefix "a", regex "a+", fails exact "" / prefix "" / a
 *    regex matching ""); presence {} inverted passes only when absent.
 *  - queryParams: first occurrence of the name, no percent-decoding.
 *  - match.gateways restricts a block; without it the VirtualService's
 *    gateways apply ("mesh" when it lists none).
 *  - rewrite.uri is Envoy's prefix_rewrite: it replaces the matched prefix;
 *    for an exact or regex path match the whole path; a block without a uri
 *    match is Istio's catch-all prefix "/". uriRegexRewrite is Envoy's
 *    regex_rewrite: every match is replaced, \0..\9 name groups.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "proxy/route.h"

#define L7_MESH "mesh"

static bool route_regex(const void *re, const char *s, size_t len)
{
	pcre2_match_data *md;
	int rc;

	if (!re)
		return false;
	/* Per call: the config is shared by every worker thread. */
	md = pcre2_match_data_create(1, NULL);
	if (!md)
		return false;
	rc = pcre2_match(re, (PCRE2_SPTR)s, len, 0, 0, md, NULL);
	pcre2_match_data_free(md);
	return rc >= 0;
}

/* ignore_case: ignoreUriCase (Envoy's case_sensitive: never for regex) */
static bool route_sm(const struct pol_strmatch *m, bool ignore_case, const char *s, size_t len)
{
	size_t vl;

	switch (m->kind) {
	case POL_SM_NONE:
		return true;
	case POL_SM_PRESENT:
		return s != NULL;
	default:
		break;
	}
	if (!s)
		return false;
	vl = m->value ? strlen(m->value) : 0;
	switch (m->kind) {
	case POL_SM_EXACT:
		if (vl != len)
			return false;
		return ignore_case ? strncasecmp(s, m->value, len) == 0 :
				     memcmp(s, m->value, len) == 0;
	case POL_SM_PREFIX:
		if (vl > len)
			return false;
		return ignore_case ? strncasecmp(s, m->value, vl) == 0 :
				     memcmp(s, m->value, vl) == 0;
	case POL_SM_REGEX:
		return route_regex(m->re, s, len);
	default:
		return false;
	}
}

static const char *route_header(const struct l7_request_view *rq, const char *name,
				size_t *len)
{
	if (!rq->header)
		return NULL;
	return rq->header(rq->ctx, name, len);
}

/* First value of a query parameter; *present false when absent. */
static const char *route_query(const struct l7_request_view *rq, const char *name,
			       size_t *len)
{
	size_t nl = strlen(name);
	const char *p = rq->query, *end = rq->query ? rq->query + rq->query_len : NULL;

	while (p && p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *pe = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(pe - p));
		size_t kl = (size_t)((eq ? eq : pe) - p);

		if (kl == nl && memcmp(p, name, nl) == 0) {
			if (eq) {
				*len = (size_t)(pe - eq - 1);
				return eq + 1;
			}
			*len = 0;
			return pe;
		}
		p = amp ? amp + 1 : end;
	}
	return NULL;
}

static bool route_gateway_in(char *const *gws, size_t n, const char *gw)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(gws[i], gw) == 0)
			return true;
	return false;
}

/* match.gateways as written: "mesh", "ns/name", or "name" in the VS's ns. */
static bool route_match_gateway_in(char *const *gws, size_t n, const char *ns,
				   const char *gw)
{
	size_t nl = ns ? strlen(ns) : 0;

	for (size_t i = 0; i < n; i++) {
		const char *g = gws[i];

		if (strcmp(g, L7_MESH) == 0 || strchr(g, '/')) {
			if (strcmp(g, gw) == 0)
				return true;
		} else if (ns && strncmp(gw, ns, nl) == 0 && gw[nl] == '/' &&
			   strcmp(gw + nl + 1, g) == 0) {
			return true;
		}
	}
	return false;
}

static bool route_gateway_ok(const struct l7_vhost *vh, const struct pol_http_match *m,
			     const struct l7_request_view *rq)
{
	const char *gw = rq->gateway ? rq->gateway : L7_MESH;

	if (m && m->n_gateways)
		return route_match_gateway_in(m->gateways, m->n_gateways, vh->ns, gw);
	if (vh->n_gateways)
		return route_gateway_in(vh->gateways, vh->n_gateways, gw);
	return strcmp(gw, L7_MESH) == 0;
}

static bool route_block(const struct l7_vhost *vh, const struct pol_http_match *m,
			const struct l7_request_view *rq)
{
	const char *v;
	size_t len = 0;

	if (!route_gateway_ok(vh, m, rq))
		return false;
	if (m->port && m->port != rq->port)
		return false;
	if (m->uri.kind && !route_sm(&m->uri, m->ignore_uri_case, rq->path, rq->path_len))
		return false;
	if (m->scheme.kind && !route_sm(&m->scheme, false, rq->scheme,
					rq->scheme ? strlen(rq->scheme) : 0))
		return false;
	if (m->method.kind && !route_sm(&m->method, false, rq->method, rq->method_len))
		return false;
	if (m->authority.kind && !route_sm(&m->authority, false, rq->authority,
					   rq->authority_len))
		return false;
	for (size_t i = 0; i < m->n_headers; i++) {
		v = route_header(rq, m->headers[i].name, &len);
		if (!route_sm(&m->headers[i].m, false, v, len))
			return false;
	}
	for (size_t i = 0; i < m->n_without_headers; i++) {
		const struct pol_strmatch *wm = &m->without_headers[i].m;

		v = route_header(rq, m->without_headers[i].name, &len);
		if (!v && wm->kind != POL_SM_PRESENT) {
			v = "";		/* treat_missing_header_as_empty */
			len = 0;
		}
		if (route_sm(wm, false, v, len))
			return false;
	}
	for (size_t i = 0; i < m->n_query_params; i++) {
		v = route_query(rq, m->query_params[i].name, &len);
		if (!route_sm(&m->query_params[i].m, false, v, len))
			return false;
	}
	if (m->source_namespace && (!rq->source || !rq->source->ns ||
				    strcmp(rq->source->ns, m->source_namespace)))
		return false;
	if (m->source_labels.n && (!rq->source ||
				   !policy_labels_match(&m->source_labels, &rq->source->labels)))
		return false;
	return true;
}

const struct l7_route *l7_route_match(const struct l7_vhost *vh,
				      const struct l7_request_view *rq, size_t *index,
				      const struct pol_http_match **matched)
{
	if (!vh || !rq)
		return NULL;
	for (size_t i = 0; i < vh->n_routes; i++) {
		const struct l7_route *r = &vh->routes[i];
		const struct pol_http_route *pr = r->pol;

		if (pr->n_match == 0) {
			if (!route_gateway_ok(vh, NULL, rq))
				continue;
			if (index)
				*index = i;
			if (matched)
				*matched = NULL;
			return r;
		}
		for (size_t m = 0; m < pr->n_match; m++) {
			if (!route_block(vh, &pr->match[m], rq))
				continue;
			if (index)
				*index = i;
			if (matched)
				*matched = &pr->match[m];
			return r;
		}
	}
	return NULL;
}

const struct l7_route_dest *l7_route_pick_dest(const struct l7_route *r, uint32_t rnd)
{
	uint64_t target, acc = 0;

	if (!r || !r->total_weight)
		return NULL;
	/* rnd uniform in [0, 2^32): each destination gets weight/total of it. */
	target = ((uint64_t)rnd * r->total_weight) >> 32;
	for (size_t i = 0; i < r->n_dests; i++) {
		acc += r->dests[i].weight;
		if (target < acc)
			return &r->dests[i];
	}
	return NULL;
}

size_t route_host_len(const char *host, size_t len)
{
	if (len && host[0] == '[') {
		const char *rb = memchr(host, ']', len);

		return rb ? (size_t)(rb - host) + 1 : len;
	}
	for (size_t i = len; i > 0; i--) {
		if (host[i - 1] == ':')
			return i - 1;
		if (host[i - 1] < '0' || host[i - 1] > '9')
			break;
	}
	return len;
}

const struct l7_vhost *l7_gateway_find_vhost(const struct l7_gateway *gw, const char *host,
					     size_t host_len)
{
	const struct l7_vhost *best = NULL, *star = NULL;
	size_t best_len = 0;

	if (!gw)
		return NULL;
	host_len = host ? route_host_len(host, host_len) : 0;
	for (size_t v = 0; v < gw->n_vhosts; v++) {
		const struct l7_vhost *vh = gw->vhosts[v];

		for (size_t d = 0; d < vh->n_domains; d++) {
			const char *dom = vh->domains[d];
			size_t dl = strlen(dom);

			if (strcmp(dom, "*") == 0) {
				if (!star)
					star = vh;
				continue;
			}
			if (!host_len)
				continue;
			if (dom[0] == '*' && dom[1] == '.') {
				/* "*.example.com" needs a non-empty label before the suffix */
				if (host_len > dl - 1 &&
				    strncasecmp(host + host_len - (dl - 1), dom + 1, dl - 1) == 0 &&
				    dl > best_len) {
					best = vh;
					best_len = dl;
				}
				continue;
			}
			if (dl == host_len && strncasecmp(host, dom, dl) == 0)
				return vh;
		}
	}
	return best ? best : star;
}

static int route_put(char *out, size_t outlen, size_t *o, const char *s, size_t n)
{
	if (*o + n >= outlen)
		return -ENOSPC;
	memcpy(out + *o, s, n);
	*o += n;
	return 0;
}

/* Envoy regex_rewrite: replace every match; \N inserts group N. */
static int route_regex_rewrite(const struct l7_route *r, const char *path, size_t len,
			       char *out, size_t outlen)
{
	const struct pol_rewrite *rw = &r->pol->rewrite;
	const char *subst = rw->regex_rewrite ? rw->regex_rewrite : "";
	/* Per call: the code is shared by every worker thread, match data not. */
	pcre2_match_data *md = pcre2_match_data_create_from_pattern(rw->re, NULL);
	size_t start = 0, o = 0;
	int err = 0, rc;

	if (!md)
		return -ENOMEM;
	while (start <= len) {
		PCRE2_SIZE *ov;

		rc = pcre2_match(rw->re, (PCRE2_SPTR)path, len, start, 0, md, NULL);
		if (rc < 0)
			break;
		ov = pcre2_get_ovector_pointer(md);
		if ((err = route_put(out, outlen, &o, path + start, ov[0] - start)))
			goto out;
		for (const char *s = subst; *s; s++) {
			if (s[0] == '\\' && s[1] >= '0' && s[1] <= '9') {
				int g = s[1] - '0';

				s++;
				if (g < rc && ov[2 * g] != PCRE2_UNSET &&
				    (err = route_put(out, outlen, &o, path + ov[2 * g],
						     ov[2 * g + 1] - ov[2 * g])))
					goto out;
				continue;
			}
			if (s[0] == '\\' && s[1] == '\\')
				s++;
			if ((err = route_put(out, outlen, &o, s, 1)))
				goto out;
		}
		if (ov[1] == ov[0]) {
			/* empty match: copy one char and move on */
			if (ov[1] < len && (err = route_put(out, outlen, &o, path + ov[1], 1)))
				goto out;
			start = ov[1] + 1;
		} else {
			start = ov[1];
		}
	}
	if (start < len && (err = route_put(out, outlen, &o, path + start, len - start)))
		goto out;
	out[o] = '\0';
out:
	pcre2_match_data_free(md);
	return err ? err : (int)o;
}

int l7_rewrite_path(const struct l7_route *r, const struct pol_http_match *matched,
		    const char *path, size_t path_len, char *out, size_t outlen)
{
	const struct pol_rewrite *rw = r ? &r->pol->rewrite : NULL;
	size_t o = 0, keep = 0;
	int err;

	if (!outlen)
		return -ENOSPC;
	if (rw && rw->re)
		return route_regex_rewrite(r, path, path_len, out, outlen);
	if (!rw || !rw->uri) {
		if ((err = route_put(out, outlen, &o, path, path_len)))
			return err;
		out[o] = '\0';
		return (int)o;
	}
	if (!matched || matched->uri.kind == POL_SM_NONE ||
	    matched->uri.kind == POL_SM_PRESENT) {
		keep = path_len ? 1 : 0;	/* catch-all prefix "/" */
	} else if (matched->uri.kind == POL_SM_PREFIX) {
		keep = strlen(matched->uri.value);
		if (keep > path_len)
			keep = path_len;
	} else {
		keep = path_len;		/* exact / regex: the whole path */
	}
	if ((err = route_put(out, outlen, &o, rw->uri, strlen(rw->uri))) ||
	    (err = route_put(out, outlen, &o, path + keep, path_len - keep)))
		return err;
	out[o] = '\0';
	return (int)o;
}
