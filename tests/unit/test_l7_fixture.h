/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Shared by test_l7.c and test_route.c: YAML -> policy -> compile_policy
 * (the agent's reload pipeline), and a request view built from strings.
 */
#ifndef SOCKMESH_TEST_L7_FIXTURE_H
#define SOCKMESH_TEST_L7_FIXTURE_H

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "compile/compile.h"
#include "proxy/route.h"
#include "test.h"

struct l7fx {
	struct pol_set set;
	struct plan plan;
	struct l7_config *c;
	int ret;
};

static inline void l7fx_dump(const struct pol_set *s)
{
	char buf[512];

	for (size_t i = 0; i < s->n_diags; i++)
		fprintf(stderr, "    %s\n", policy_diag_format(&s->diags[i], buf, sizeof(buf)));
}

/* Run the pipeline over yaml documents (NULL-terminated list of buffers / paths). */
static inline int l7fx_run(struct l7fx *f)
{
	struct compile_out out;

	f->ret = policy_validate(&f->set);
	if (f->set.n_errors && !f->ret)
		f->ret = -EINVAL;
	if (f->ret)
		return f->ret;
	f->ret = compile_policy(&f->set, &(struct compile_opts){ .l7_proxy = true }, &out);
	f->plan = out.plan;
	f->c = out.l7;
	return f->ret;
}

static inline int l7fx_load(struct l7fx *f, const char *yaml)
{
	memset(f, 0, sizeof(*f));
	policy_set_init(&f->set);
	policy_load_buffer(&f->set, "t.yaml", yaml, strlen(yaml));
	return l7fx_run(f);
}

/* Istio's samples, checked in (the runner works in the source tree). */
static inline const char *l7fx_compat_dir(void)
{
	const char *d = getenv("SOCKMESH_COMPAT_DIR");

	return d && *d ? d : "tests/compat/istio-samples";
}

/* The samples are part of the tree: missing is a failure, not a skip. */
static inline int l7fx_compat_ok(void)
{
	if (access(l7fx_compat_dir(), R_OK) == 0)
		return 1;
	TEST_FAIL_("%s: %s", l7fx_compat_dir(), strerror(errno));
	return 0;
}

/* Load compat sample files (NULL-terminated names). */
static inline int l7fx_load_compat(struct l7fx *f, const char *const *files)
{
	char path[1024];

	memset(f, 0, sizeof(*f));
	policy_set_init(&f->set);
	for (const char *const *n = files; *n; n++) {
		snprintf(path, sizeof(path), "%s/%s", l7fx_compat_dir(), *n);
		policy_load_path(&f->set, path);
	}
	return l7fx_run(f);
}

static inline void l7fx_free(struct l7fx *f)
{
	l7_config_put(f->c);
	plan_free(&f->plan);
	policy_set_free(&f->set);
	memset(f, 0, sizeof(*f));
}

static inline uint32_t l7fx_ip(const char *s)
{
	struct in_addr a = { 0 };

	inet_pton(AF_INET, s, &a);
	return a.s_addr;
}

static inline const struct l7_svc *l7fx_svc(const struct l7fx *f, const char *vip, uint16_t port)
{
	return l7_config_find_svc(f->c, l7fx_ip(vip), port);
}

static inline const struct plan_service *l7fx_plan_svc(const struct l7fx *f, const char *vip,
							uint16_t port)
{
	for (size_t i = 0; i < f->plan.n_svcs; i++)
		if (f->plan.svcs[i].key.vip == l7fx_ip(vip) &&
		    ntohs(f->plan.svcs[i].key.port) == port)
			return &f->plan.svcs[i];
	return NULL;
}

static inline const struct pol_diag *l7fx_diag(const struct pol_set *s, enum pol_diag_level lvl,
					       const char *sub)
{
	for (size_t i = 0; i < s->n_diags; i++)
		if (s->diags[i].level == lvl && strstr(s->diags[i].msg, sub))
			return &s->diags[i];
	return NULL;
}

/* A request: headers as "name: value\n" lines (names any case). */
struct l7fx_req {
	const char *method, *path, *query, *host, *headers;
	const char *source;		/* pod IP or NULL */
	const char *gateway;		/* NULL = mesh */
	uint16_t port;
};

static inline const char *l7fx_header(const void *ctx, const char *name, size_t *len)
{
	const char *p = ctx;
	size_t nl = strlen(name);

	while (p && *p) {
		const char *eol = strchr(p, '\n'), *colon = strchr(p, ':');

		if (!eol)
			eol = p + strlen(p);
		if (colon && colon < eol && (size_t)(colon - p) == nl &&
		    strncasecmp(p, name, nl) == 0) {
			const char *v = colon + 1;

			while (*v == ' ')
				v++;
			*len = (size_t)(eol - v);
			return v;
		}
		p = *eol ? eol + 1 : eol;
	}
	return NULL;
}

static inline void l7fx_view(const struct l7fx *f, const struct l7fx_req *r,
			     struct l7_request_view *v)
{
	memset(v, 0, sizeof(*v));
	v->method = r->method ? r->method : "GET";
	v->method_len = strlen(v->method);
	v->path = r->path ? r->path : "/";
	v->path_len = strlen(v->path);
	v->query = r->query;
	v->query_len = r->query ? strlen(r->query) : 0;
	v->authority = r->host;
	v->authority_len = r->host ? strlen(r->host) : 0;
	v->scheme = "http";
	v->port = r->port ? r->port : 9080;
	v->header = l7fx_header;
	v->ctx = r->headers ? r->headers : "";
	v->source = r->source ? l7_config_find_pod(f->c, l7fx_ip(r->source)) : NULL;
	v->gateway = r->gateway;
}

#endif /* SOCKMESH_TEST_L7_FIXTURE_H */
