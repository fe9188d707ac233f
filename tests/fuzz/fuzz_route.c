// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer target: route matching on parsed requests. One l7_config is
 * built at start-up from a fixed policy (the agent's reload pipeline:
 * policy_load_buffer -> policy_validate -> compile_policy)
 * with header, prefix, exact, regex, queryParams, withoutHeaders and
 * ignoreUriCase matches, prefix and regex rewrites, weights and a Gateway.
 * Each input is parsed as a request head (http1_parse_request); a complete
 * one is routed on the mesh service and the gateway like the proxy does
 * (l7_route_match, l7_route_pick_dest, l7_rewrite_path). Invariants: a
 * matched route belongs to the vhost, a picked destination to the route,
 * a rewritten path fits its buffer and is NUL-terminated at its length.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy/http1.h"
#include "compile/compile.h"
#include "proxy/route.h"
#include "policy/policy.h"

static const char fuzz_route_yaml[] =
	"apiVersion: v1\nkind: List\nitems:\n"
	"- {apiVersion: v1, kind: Pod, metadata: {name: r1, namespace: default, labels: {app: reviews, version: v1}},\n"
	"   status: {podIP: 10.244.0.12, conditions: [{type: Ready, status: \"True\"}]}}\n"
	"- {apiVersion: v1, kind: Pod, metadata: {name: r2, namespace: default, labels: {app: reviews, version: v2}},\n"
	"   status: {podIP: 10.244.0.13, conditions: [{type: Ready, status: \"True\"}]}}\n"
	"- {apiVersion: v1, kind: Pod, metadata: {name: r3, namespace: default, labels: {app: reviews, version: v3}},\n"
	"   status: {podIP: 10.244.0.14, conditions: [{type: Ready, status: \"True\"}]}}\n"
	"---\n"
	"apiVersion: v1\nkind: Service\nmetadata: {name: reviews, namespace: default}\n"
	"spec:\n  clusterIP: 10.96.1.20\n  selector: {app: reviews}\n"
	"  ports: [{name: http, port: 9080, targetPort: 9080}]\n"
	"---\n"
	"apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews, namespace: default}\n"
	"spec:\n  host: reviews\n  subsets:\n"
	"  - {name: v1, labels: {version: v1}}\n  - {name: v2, labels: {version: v2}}\n"
	"  - {name: v3, labels: {version: v3}}\n"
	"---\n"
	"apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews, namespace: default}\n"
	"spec:\n  hosts: [reviews, bookinfo.example.com]\n  gateways: [mesh, bookinfo-gateway]\n  http:\n"
	"  - match:\n    - headers:\n        end-user: {exact: jason}\n"
	"    route:\n    - destination: {host: reviews, subset: v2}\n"
	"  - match:\n    - uri: {prefix: /v3only}\n      ignoreUriCase: true\n"
	"    rewrite: {uri: /rewritten}\n"
	"    route:\n    - destination: {host: reviews, subset: v3}\n"
	"  - match:\n    - uri: {regex: \"/api/v[0-9]+/(users|books)/[a-z0-9-]*\"}\n"
	"      method: {regex: \"GET|HEAD\"}\n"
	"    rewrite:\n      uriRegexRewrite: {match: \"^/api/v([0-9]+)/(.*)$\", rewrite: \"/v\\\\1/\\\\2\"}\n"
	"    route:\n    - destination: {host: reviews, subset: v1}\n"
	"  - match:\n    - queryParams:\n        debug: {exact: \"1\"}\n        id: {regex: \"[0-9]{1,6}\"}\n"
	"    - uri: {exact: /exact}\n      withoutHeaders:\n        x-skip: {prefix: \"y\"}\n"
	"    - authority: {prefix: bookinfo}\n      scheme: {exact: http}\n"
	"    rewrite: {uri: /, authority: rewritten.local}\n"
	"    route:\n    - destination: {host: reviews, subset: v2}\n"
	"  - route:\n    - destination: {host: reviews, subset: v1}\n      weight: 90\n"
	"    - destination: {host: reviews, subset: v3}\n      weight: 10\n"
	"---\n"
	"apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: bookinfo-gateway, namespace: default}\n"
	"spec:\n  selector: {istio: ingressgateway}\n  servers:\n"
	"  - port: {number: 8080, name: http, protocol: HTTP}\n    hosts: [\"bookinfo.example.com\", \"*.example.org\"]\n";

static struct pol_set fuzz_set;
static struct compile_out fuzz_out;
static struct l7_config *fuzz_cfg;
static const struct l7_svc *fuzz_svc;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct in_addr vip;
	char line[512];

	(void)argc;
	(void)argv;
	policy_set_init(&fuzz_set);
	policy_load_buffer(&fuzz_set, "fuzz_route.yaml", fuzz_route_yaml, strlen(fuzz_route_yaml));
	if (policy_validate(&fuzz_set) || fuzz_set.n_errors ||
	    compile_policy(&fuzz_set, &(struct compile_opts){ .l7_proxy = true }, &fuzz_out)) {
		for (size_t i = 0; i < fuzz_set.n_diags; i++)
			fprintf(stderr, "%s\n", policy_diag_format(&fuzz_set.diags[i], line, sizeof(line)));
		abort();
	}
	fuzz_cfg = fuzz_out.l7;
	inet_pton(AF_INET, "10.96.1.20", &vip);
	fuzz_svc = l7_config_find_svc(fuzz_cfg, vip.s_addr, 9080);
	if (!fuzz_svc || !fuzz_svc->vhost || fuzz_cfg->n_gateways != 1) {
		fprintf(stderr, "fuzz_route: fixture has no routed service or gateway\n");
		abort();
	}
	return 0;
}

static const char *fuzz_header(const void *ctx, const char *name, size_t *len)
{
	const struct http1_msg *m = ctx;
	size_t nl = strlen(name);

	for (size_t i = 0; i < m->n_headers; i++) {
		const struct http1_header *h = &m->headers[i];

		if (h->name.n == nl && strncasecmp(h->name.p, name, nl) == 0) {
			*len = h->value.n;
			return h->value.p;
		}
	}
	return NULL;
}

static void fuzz_route_one(const struct l7_vhost *vh, const struct l7_request_view *rq,
			   const struct http1_msg *m, uint32_t rnd)
{
	const struct pol_http_match *matched = NULL;
	const struct l7_route *r;
	const struct l7_route_dest *d;
	char out[256];
	size_t idx = 0;
	int n;

	r = l7_route_match(vh, rq, &idx, &matched);
	if (!r)
		return;
	if (idx >= vh->n_routes || r != &vh->routes[idx])
		abort();
	d = l7_route_pick_dest(r, rnd);
	if (d && (d < r->dests || d >= r->dests + r->n_dests))
		abort();
	n = l7_rewrite_path(r, matched, m->path.p, m->path.n, out, sizeof(out));
	if (n >= 0 && ((size_t)n >= sizeof(out) || out[n] != '\0'))
		abort();
	if (n < 0 && n != -ENOSPC)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a private copy, so reads past the end hit ASan's redzone */
	char *buf = malloc(size ? size : 1);
	struct http1_msg m;
	struct l7_request_view rq = { 0 };
	const struct l7_vhost *vh;
	uint32_t rnd = 0;
	int r;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	r = http1_parse_request(buf, size, &m);
	if (r <= 0)
		goto out;
	for (size_t i = 0; i < 4 && i < size; i++)
		rnd = rnd << 8 | data[size - 1 - i];
	rq.method = m.method.p;
	rq.method_len = m.method.n;
	rq.path = m.path.p;
	rq.path_len = m.path.n;
	rq.query = m.query.p;
	rq.query_len = m.query.n;
	rq.authority = m.host.p;
	rq.authority_len = m.host.n;
	rq.scheme = "http";
	rq.port = 9080;
	rq.header = fuzz_header;
	rq.ctx = &m;
	fuzz_route_one(fuzz_svc->vhost, &rq, &m, rnd);

	vh = l7_gateway_find_vhost(&fuzz_cfg->gateways[0], m.host.p, m.host.n);
	if (vh) {
		rq.port = 8080;
		rq.gateway = fuzz_cfg->gateways[0].name;
		fuzz_route_one(vh, &rq, &m, rnd);
	}
out:
	free(buf);
	return 0;
}
