/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Shared by test_compile.c and tests/fuzz/fuzz_compile.c:
 *
 * compile_agree_check(): the kernel plan and the L7 config that
 * compile_policy() produced agree on every cluster id both know: name,
 * load balancer, connection limit, outlier settings (minHealthPercent is
 * the part the kernel uses), and hosts.
 *
 * compile_gen_policy(): a random policy as YAML (Services with http/tcp/
 * grpc ports, Pods, DestinationRules with random trafficPolicy, subsets and
 * portLevelSettings at both levels, VirtualServices with http and tcp
 * routes to subsets), driven by a byte source: a seeded PRNG in the unit
 * test, the fuzzer's input in the fuzz target.
 */
#ifndef SOCKMESH_COMPILE_AGREE_H
#define SOCKMESH_COMPILE_AGREE_H

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compile/compile.h"

/* The kernel's LB for what the proxy does: consistent hashes other than the
 * source IP need the proxy (the kernel warns and uses LEAST_REQUEST). */
static inline int compile_agree_lb(const struct l7_cluster *lc)
{
	switch (lc->lb) {
	case L7_LB_ROUND_ROBIN:
		return SM_LB_ROUND_ROBIN;
	case L7_LB_RANDOM:
		return SM_LB_RANDOM;
	case L7_LB_HASH:
		return lc->hash_kind == POL_HASH_SOURCE_IP ? SM_LB_MAGLEV : SM_LB_LEAST_REQUEST;
	default:
		return SM_LB_LEAST_REQUEST;
	}
}

static inline const struct l7_cluster *compile_agree_l7(const struct l7_config *c, uint64_t id)
{
	for (size_t i = 0; c && i < c->n_clusters; i++)
		if (l7_config_cluster(c, i)->id == id)
			return l7_config_cluster(c, i);
	return NULL;
}

/*
 * 0 when they agree (*n_checked: clusters compared), else -1 and why in
 * msg. The plan may hold a cluster id more than once (a service port and
 * another's tcp route both use it): every copy must agree.
 */
static inline int compile_agree_check(const struct compile_out *o, size_t *n_checked,
				      char *msg, size_t len)
{
	*n_checked = 0;
	for (size_t i = 0; i < o->plan.n_svcs; i++) {
		const struct plan_service *ps = &o->plan.svcs[i];

		for (size_t j = 0; j < ps->n_clusters; j++) {
			const struct plan_cluster *pc = &ps->clusters[j];
			const struct l7_cluster *lc = compile_agree_l7(o->l7, pc->id);
			uint32_t mh;

			if (!lc)
				continue;
			(*n_checked)++;
			mh = lc->outlier.enabled ? lc->outlier.min_health_pct : 0;
			if (strcmp(pc->name, lc->name) || pc->lb != compile_agree_lb(lc) ||
			    pc->max_conns != lc->pool.max_connections || pc->min_health_pct != mh ||
			    pc->n_backends != lc->n_hosts) {
				snprintf(msg, len, "%s: kernel lb %u max_conns %u min_health %u "
					 "backends %zu; L7 %s lb %u (hash %u) max_conns %u "
					 "min_health %u hosts %zu", pc->name, pc->lb, pc->max_conns,
					 pc->min_health_pct, pc->n_backends, lc->name, lc->lb,
					 lc->hash_kind, lc->pool.max_connections, mh, lc->n_hosts);
				return -1;
			}
			for (size_t k = 0; k < pc->n_backends; k++) {
				const struct plan_backend *b = &pc->backends[k];
				const struct l7_host *h = &lc->hosts[k];

				if (b->key.addr != h->addr || ntohs(b->key.port) != h->port ||
				    !!(b->flags & SM_BE_F_READY) != h->ready) {
					snprintf(msg, len, "%s: backend %zu differs", pc->name, k);
					return -1;
				}
			}
		}
	}
	return 0;
}

/* ---- random policies ---- */

struct compile_gen {
	/* next random byte; 0 when the source is dry */
	uint8_t (*byte)(void *ctx);
	void *ctx;
	char *buf;
	size_t len, cap;
	int oom;
};

static inline unsigned compile_gen_pick(struct compile_gen *g, unsigned n)
{
	return n ? g->byte(g->ctx) % n : 0;
}

__attribute__((format(printf, 2, 3)))
static inline void compile_gen_put(struct compile_gen *g, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(g->buf + g->len, g->cap - g->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			g->oom = 1;
			return;
		}
		if ((size_t)n < g->cap - g->len)
			break;
		char *nb = realloc(g->buf, g->cap * 2 + n + 1);

		if (!nb) {
			g->oom = 1;
			return;
		}
		g->buf = nb;
		g->cap = g->cap * 2 + n + 1;
	}
	g->len += n;
}

/* One trafficPolicy body at indent ind (may be empty: then "{}"). */
static inline void compile_gen_tp(struct compile_gen *g, const char *ind, int with_ports,
				  const uint16_t *ports, size_t n_ports)
{
	static const char *const simple[] = { "ROUND_ROBIN", "RANDOM", "LEAST_REQUEST",
					       "LEAST_CONN", "PASSTHROUGH", "UNSPECIFIED" };
	unsigned what = compile_gen_pick(g, 16);
	int any = 0;

	if (what & 1) {
		unsigned k = compile_gen_pick(g, 9);

		any = 1;
		if (k < 6)
			compile_gen_put(g, "\n%sloadBalancer: {simple: %s}", ind, simple[k]);
		else if (k == 6)
			compile_gen_put(g, "\n%sloadBalancer: {consistentHash: {useSourceIp: true}}", ind);
		else if (k == 7)
			compile_gen_put(g, "\n%sloadBalancer: {consistentHash: {httpHeaderName: X-User}}", ind);
		else
			compile_gen_put(g, "\n%sloadBalancer: {consistentHash: {httpQueryParameterName: u}}", ind);
	}
	if (what & 2) {
		unsigned k = compile_gen_pick(g, 4);

		any = 1;
		compile_gen_put(g, "\n%sconnectionPool:", ind);
		if (k != 1)
			compile_gen_put(g, "\n%s  tcp: {maxConnections: %u, connectTimeout: %ums}", ind,
					1 + compile_gen_pick(g, 50), 1 + compile_gen_pick(g, 200));
		if (k != 0)
			compile_gen_put(g, "\n%s  http: {http1MaxPendingRequests: %u, maxRetries: %u}", ind,
					1 + compile_gen_pick(g, 20), compile_gen_pick(g, 5));
	}
	if (what & 4) {
		any = 1;
		compile_gen_put(g, "\n%soutlierDetection: {consecutive5xxErrors: %u, interval: %us, "
				"baseEjectionTime: %us, minHealthPercent: %u}", ind,
				compile_gen_pick(g, 6), 1 + compile_gen_pick(g, 30),
				1 + compile_gen_pick(g, 60), compile_gen_pick(g, 101));
	}
	if (with_ports && (what & 8) && n_ports) {
		unsigned n = 1 + compile_gen_pick(g, (unsigned)n_ports);

		any = 1;
		compile_gen_put(g, "\n%sportLevelSettings:", ind);
		for (unsigned i = 0; i < n && i < n_ports; i++) {
			char sub[32];
			size_t before;

			compile_gen_put(g, "\n%s- port: {number: %u}", ind, ports[i]);
			snprintf(sub, sizeof(sub), "%s  ", ind);
			before = g->len;
			compile_gen_tp(g, sub, 0, NULL, 0);
			if (g->len == before)	/* an entry needs one setting */
				compile_gen_put(g, "\n%sloadBalancer: {simple: RANDOM}", sub);
		}
	}
	(void)any;
}

/*
 * A random policy into g->buf (NUL-terminated). Services svc0..svc2 in
 * namespace default, VIPs 10.96.0.1.., pods with version labels v1..v3.
 */
static inline int compile_gen_policy(struct compile_gen *g)
{
	static const char *const pnames[] = { "http", "http-web", "tcp", "tcp-db", "grpc",
					      "http2", "web", "mongo" };
	struct {
		unsigned n_ports, n_subsets;
		int has_dr;
		uint16_t ports[2];
	} sv[3];
	unsigned n_svcs = 1 + compile_gen_pick(g, 3);

	g->len = 0;
	g->cap = 4096;
	g->buf = malloc(g->cap);
	if (!g->buf)
		return -1;
	g->buf[0] = '\0';
	/* the shape first: routes name only subsets that exist */
	for (unsigned s = 0; s < n_svcs; s++) {
		sv[s].n_ports = 1 + compile_gen_pick(g, 2);
		sv[s].has_dr = compile_gen_pick(g, 4) != 0;
		sv[s].n_subsets = sv[s].has_dr ? compile_gen_pick(g, 4) : 0;
		for (unsigned p = 0; p < sv[s].n_ports; p++) {
			sv[s].ports[p] = (uint16_t)(8080 + p + compile_gen_pick(g, 2) * 10);
			if (p && sv[s].ports[p] == sv[s].ports[0])
				sv[s].ports[p]++;
		}
	}
	for (unsigned s = 0; s < n_svcs; s++) {
		unsigned n_pods = compile_gen_pick(g, 5);

		compile_gen_put(g, "---\napiVersion: v1\nkind: Service\nmetadata: {name: svc%u, "
				"namespace: default}\nspec:\n  clusterIP: 10.96.0.%u\n"
				"  selector: {app: svc%u}\n  ports:", s, s + 1, s);
		for (unsigned p = 0; p < sv[s].n_ports; p++)
			compile_gen_put(g, "\n  - {name: %s-%u, port: %u, targetPort: %u%s}",
					pnames[compile_gen_pick(g, 8)], p, sv[s].ports[p], 9000 + p,
					compile_gen_pick(g, 4) == 0 ? ", appProtocol: http" : "");
		compile_gen_put(g, "\n");
		for (unsigned i = 0; i < n_pods; i++)
			compile_gen_put(g, "---\napiVersion: v1\nkind: Pod\nmetadata: {name: svc%u-%u, "
					"namespace: default, labels: {app: svc%u, version: v%u}}\n"
					"status: {podIP: 10.1.%u.%u, conditions: [{type: Ready, "
					"status: \"%s\"}]}\n", s, i, s, 1 + compile_gen_pick(g, 3),
					s, i + 1, compile_gen_pick(g, 4) ? "True" : "False");
		if (sv[s].has_dr) {
			compile_gen_put(g, "---\napiVersion: networking.istio.io/v1\n"
					"kind: DestinationRule\nmetadata: {name: svc%u, namespace: default}\n"
					"spec:\n  host: svc%u\n  trafficPolicy:", s, s);
			compile_gen_tp(g, "    ", 1, sv[s].ports, sv[s].n_ports);
			compile_gen_put(g, "\n    tls: {mode: DISABLE}\n");
			if (sv[s].n_subsets)
				compile_gen_put(g, "  subsets:\n");
			for (unsigned k = 0; k < sv[s].n_subsets; k++) {
				compile_gen_put(g, "  - name: v%u\n    labels: {version: v%u}\n", k + 1, k + 1);
				if (compile_gen_pick(g, 2)) {
					compile_gen_put(g, "    trafficPolicy:");
					compile_gen_tp(g, "      ", 1, sv[s].ports, sv[s].n_ports);
					compile_gen_put(g, "\n      tls: {mode: DISABLE}\n");
				}
			}
		}
		if (compile_gen_pick(g, 2)) {
			unsigned kind = compile_gen_pick(g, 2), n_dest = 1 + compile_gen_pick(g, 3);

			compile_gen_put(g, "---\napiVersion: networking.istio.io/v1\n"
					"kind: VirtualService\nmetadata: {name: svc%u, namespace: default}\n"
					"spec:\n  hosts: [svc%u]\n  %s:\n  - %sroute:", s, s,
					kind ? "tcp" : "http",
					kind ? "match: [{port: 8080}]\n    " : "");
			for (unsigned d = 0; d < n_dest; d++) {
				unsigned to = compile_gen_pick(g, n_svcs);
				unsigned ss = sv[to].n_subsets ? compile_gen_pick(g, sv[to].n_subsets + 1) : 0;

				compile_gen_put(g, "\n    - destination: {host: svc%u, port: {number: %u}",
						to, sv[to].ports[compile_gen_pick(g, sv[to].n_ports)]);
				if (ss)
					compile_gen_put(g, ", subset: v%u", ss);
				compile_gen_put(g, "}\n      weight: %u",
						100 / n_dest + (d == 0 ? 100 % n_dest : 0));
			}
			compile_gen_put(g, "\n");
		}
	}
	return g->oom ? -1 : 0;
}

#endif /* SOCKMESH_COMPILE_AGREE_H */
