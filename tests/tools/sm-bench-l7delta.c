// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sm-bench-l7delta [SERVICES [EPS [PODS [REPS]]]]: the compiler's share of
 * an L7 delta at mesh scale, without BPF or root. SERVICES http Services
 * (port name "http", so every one is an L7 port with a cluster), EPS
 * endpoints each, PODS Pods holding the first endpoints' IPs (the L7 pod
 * table), a VirtualService with http routes from svc-0 to svc-1 / svc-2.
 * Loaded through a document cache as the agent loads it, compiled once;
 * then REPS times each of: one endpoint of svc-5 changed, the
 * VirtualService's weights changed, svc-7's first Pod relabelled. Each is
 * taken as the agent's delta takes it (cache delta, swap into the set,
 * compile_patch_*, the new L7 config replacing the old one, the old one
 * put) and timed (CLOCK_MONOTONIC, median and max in ms). The three steps
 * are the functions bench_ep_delta, bench_route_delta and bench_pod_delta:
 * `valgrind --tool=callgrind --toggle-collect='bench_*_delta'` counts
 * their instructions alone. First, bench_lookups: the proxy's per-request
 * lookups (service port by VIP, source pod by IP) on the config built.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compile/compile.h"
#include "policy/policy.h"

struct bench {
	struct pol_cache *c;
	struct pol_set set;
	struct compile_opts co;
	struct compile_out out;
	unsigned n, eps, pods;
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void ep_ip(unsigned k, char *buf, size_t len)
{
	k++;
	snprintf(buf, len, "10.%u.%u.%u", 128 + k / 65536, (k / 256) % 256, k % 256);
}

static char *slice_text(const struct bench *b, unsigned i, unsigned variant)
{
	char *buf = NULL, ip[32];
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	fprintf(f, "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
		"metadata: {name: svc-%u-1, namespace: bench, labels: {kubernetes.io/service-name: svc-%u}}\n"
		"addressType: IPv4\nports: [{name: http, port: 8080}]\nendpoints:\n", i, i);
	for (unsigned j = 0; j < b->eps; j++) {
		ep_ip(i * b->eps + j, ip, sizeof(ip));
		if (j == 0 && variant)
			snprintf(ip, sizeof(ip), "10.127.%u.%u", variant / 250, variant % 250 + 1);
		fprintf(f, "- {addresses: [%s], conditions: {ready: true}}\n", ip);
	}
	fclose(f);
	return buf;
}

static char *vs_text(unsigned w)
{
	char *s = NULL;

	if (asprintf(&s, "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
		     "metadata: {name: svc-0, namespace: bench}\n"
		     "spec:\n  hosts: [svc-0]\n  http:\n  - route:\n"
		     "    - {destination: {host: svc-1, port: {number: 80}}, weight: %u}\n"
		     "    - {destination: {host: svc-2, port: {number: 80}}, weight: %u}\n",
		     w, 100 - w) < 0)
		return NULL;
	return s;
}

static char *pod_text(const struct bench *b, unsigned k, const char *track)
{
	char *s = NULL, ip[32];

	ep_ip(k, ip, sizeof(ip));
	if (asprintf(&s, "apiVersion: v1\nkind: Pod\nmetadata: {name: pod-%u, namespace: bench, "
		     "labels: {app: svc-%u, track: %s}}\nspec: {nodeName: other}\n"
		     "status: {podIP: %s, phase: Running, conditions: [{type: Ready, status: 'True'}]}\n",
		     k, k / b->eps, track, ip) < 0)
		return NULL;
	return s;
}

static int load(struct bench *b, const char *file, char *text)
{
	int ret;

	if (!text)
		return -ENOMEM;
	ret = policy_load_buffer(&b->set, file, text, strlen(text));
	free(text);
	return ret;
}

static int setup(struct bench *b)
{
	char *buf = NULL, name[64];
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int ret;

	for (unsigned i = 0; i < b->n; i++) {
		fprintf(f, "---\napiVersion: v1\nkind: Service\nmetadata: {name: svc-%u, namespace: bench}\n"
			"spec: {clusterIP: 10.97.%u.%u, ports: [{name: http, port: 80, targetPort: 8080}]}\n",
			i, (i + 1) / 256, (i + 1) % 256);
		if (i == 5)
			continue;	/* its own file: the endpoint delta */
		fputs("---\n", f);
		char *s = slice_text(b, i, 0);
		fputs(s, f);
		free(s);
	}
	for (unsigned k = 0; k < b->pods; k++) {
		if (k == 7 * b->eps)
			continue;	/* its own file: the Pod delta */
		fputs("---\n", f);
		char *s = pod_text(b, k, "a");
		fputs(s, f);
		free(s);
	}
	fclose(f);
	b->c = policy_cache_new();
	if (!b->c)
		return -ENOMEM;
	policy_cache_begin(b->c);
	policy_set_init(&b->set);
	policy_set_use_cache(&b->set, b->c);
	ret = load(b, "b/all.yaml", buf);
	ret = ret ?: load(b, "b/eps5.yaml", slice_text(b, 5, 0));
	ret = ret ?: load(b, "b/vs.yaml", vs_text(50));
	if (!ret && 7 * b->eps < b->pods)
		ret = load(b, "b/pod.yaml", pod_text(b, 7 * b->eps, "a"));
	if (ret)
		return ret;
	if (policy_validate(&b->set) || b->set.n_errors) {
		fprintf(stderr, "policy does not validate\n");
		return -EINVAL;
	}
	b->co.l7_proxy = true;
	ret = compile_policy(&b->set, &b->co, &b->out);
	policy_cache_end(b->c);
	snprintf(name, sizeof(name), "%zu", b->out.l7 ? b->out.l7->n_clusters : 0);
	fprintf(stderr, "loaded: %u services, %u endpoints, %u pods; L7: %zu ports, %s clusters\n",
		b->n, b->n * b->eps, b->pods, b->out.l7 ? b->out.l7->n_svcs : 0, name);
	return ret;
}

static int names_add(void *arg, const char *ns, const char *name)
{
	const char **v = arg;
	size_t k;

	for (k = 0; v[2 * k]; k++)
		if (!strcmp(v[2 * k], ns) && !strcmp(v[2 * k + 1], name))
			return 0;
	if (k >= 7)
		return -ENOSPC;
	v[2 * k] = ns;
	v[2 * k + 1] = name;
	return 0;
}

/* One delta of file (new text) as the agent takes it; kind: 0 slice, 1 VS, 2 Pod. */
static int bench_delta(struct bench *b, const char *file, char *text, int kind)
{
	const char *nv[16] = { 0 }, *ns[8], *names[8];
	struct pol_delta d = { 0 };
	struct compile_opts co = b->co;
	struct l7_config *l7 = NULL;
	struct plan_patch pt;
	uint32_t ips[2];
	size_t n = 0;
	int ret;

	if (!text)
		return -ENOMEM;
	co.pods_known = true;	/* as the agent's delta: the Pod IPs it changed (none) */
	ret = policy_cache_delta(b->c, file, text, strlen(text), &d);
	free(text);
	if (ret || d.n_gone != 1 || d.n_added != 1)
		return ret ?: -EINVAL;
	switch (kind) {
	case 0:
		ret = policy_set_swap_eps(&b->set, &d.gone[0]->eps[0], &d.added[0]->eps[0]);
		names_add(nv, "bench", d.added[0]->eps[0].service_name);
		break;
	case 1:
		ret = policy_set_swap_vs(&b->set, &d.gone[0]->vss[0], &d.added[0]->vss[0]);
		names_add(nv, "bench", "svc-0");
		break;
	default:
		ret = policy_pod_services(&b->set, &d.gone[0]->pods[0], true, names_add, nv);
		ret = ret ?: policy_set_del_pod(&b->set, &d.gone[0]->pods[0]);
		ret = ret ?: policy_set_add_pod(&b->set, &d.added[0]->pods[0]);
		ips[0] = d.gone[0]->pods[0].ip;
		ips[1] = d.added[0]->pods[0].ip;
		co.pod_ips = ips;
		co.n_pod_ips = 2;
		break;
	}
	if (ret)
		goto out;
	for (; nv[2 * n]; n++) {
		ns[n] = nv[2 * n];
		names[n] = nv[2 * n + 1];
	}
	if (kind == 0)
		ret = compile_patch_services(&b->set, &co, &b->out, ns, names, n, &pt, &l7);
	else
		ret = compile_patch_routes(&b->set, &co, &b->out, ns, names, n, &pt, &l7);
	if (ret)
		goto out;
	if (l7) {	/* published: the old generation goes when its last user puts it */
		l7_config_put(b->out.l7);
		b->out.l7 = l7;
	}
	plan_patch_free(&pt);
	policy_delta_commit(b->c, &d);
	return 0;
out:
	policy_delta_free(b->c, &d);
	return ret;
}

__attribute__((noinline)) static int bench_ep_delta(struct bench *b, unsigned r)
{
	return bench_delta(b, "b/eps5.yaml", slice_text(b, 5, r + 1), 0);
}

__attribute__((noinline)) static int bench_route_delta(struct bench *b, unsigned r)
{
	return bench_delta(b, "b/vs.yaml", vs_text(r % 2 ? 30 : 70), 1);
}

__attribute__((noinline)) static int bench_pod_delta(struct bench *b, unsigned r)
{
	return bench_delta(b, "b/pod.yaml", pod_text(b, 7 * b->eps, r % 2 ? "a" : "b"), 2);
}

/*
 * The proxy's per-request lookups on the config built: the service port of
 * a connection's VIP and the source pod of its peer address, n of each
 * over every service and pod; returns the ns per lookup pair.
 */
__attribute__((noinline)) static double bench_lookups(const struct bench *b, unsigned n)
{
	const struct l7_config *c = b->out.l7;
	double t0 = now_ms();
	unsigned hit = 0;

	for (unsigned k = 0; k < n; k++) {
		unsigned i = (k * 7919u) % b->n + 1, p = (k * 104729u) % b->pods + 1;
		uint32_t vip = htonl(0x0a610000u | (i / 256) << 8 | (i % 256));
		uint32_t ip = htonl(0x0a000000u | (128 + p / 65536) << 16 | ((p / 256) % 256) << 8 |
				   (p % 256));

		hit += l7_config_find_svc(c, vip, 80) != NULL;
		hit += l7_config_find_pod(c, ip) != NULL;
	}
	if (hit != 2 * n)
		fprintf(stderr, "lookups: %u of %u found\n", hit, 2 * n);
	return (now_ms() - t0) * 1e6 / n;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	static int (*const step[])(struct bench *, unsigned) = {
		bench_ep_delta, bench_route_delta, bench_pod_delta,
	};
	static const char *const what[] = { "1-endpoint change", "http route weights", "Pod relabelled" };
	struct bench b = {
		.n = argc > 1 ? (unsigned)atoi(argv[1]) : 10000,
		.eps = argc > 2 ? (unsigned)atoi(argv[2]) : 10,
		.pods = argc > 3 ? (unsigned)atoi(argv[3]) : 10000,
	};
	unsigned reps = argc > 4 ? (unsigned)atoi(argv[4]) : 20;
	double *t = calloc(reps + 1, sizeof(*t));
	int ret;

	if (!t || b.n < 8 || !b.eps || !reps) {
		fprintf(stderr, "usage: %s [SERVICES>=8 [EPS [PODS [REPS]]]]\n", argv[0]);
		return 2;
	}
	if ((ret = setup(&b))) {
		fprintf(stderr, "setup: %s\n", strerror(-ret));
		return 1;
	}
	printf("%-20s ns %.1f (service port + source pod, %u pairs)\n", "lookups",
	       bench_lookups(&b, 2000000), 2000000);
	for (size_t s = 0; s < sizeof(step) / sizeof(step[0]); s++) {
		if (s == 2 && 7 * b.eps >= b.pods)
			continue;
		for (unsigned r = 0; r < reps; r++) {
			double t0 = now_ms();

			if ((ret = step[s](&b, r))) {
				fprintf(stderr, "%s: %s\n", what[s], strerror(-ret));
				return 1;
			}
			t[r] = now_ms() - t0;
		}
		qsort(t, reps, sizeof(*t), cmp_d);
		printf("%-20s ms p50 %.3f max %.3f (%u reps)\n", what[s], t[reps / 2], t[reps - 1],
		       reps);
	}
	compile_out_free(&b.out);
	policy_set_free(&b.set);
	policy_cache_free(b.c);
	free(t);
	return 0;
}
