// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sockmeshctl: see and steer the node's data path. Talks to the agent's
 * admin socket; when the agent is down, reads (and for eject/restore,
 * writes) the pinned maps directly so the data path can be inspected in any
 * state. Exit codes: 0 ok, 1 error (one line on stderr).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <jansson.h>

#include "common/admin_api.h"
#include "common/dp.h"
#include "common/graph.h"
#include "common/http.h"
#include "compile/compile.h"
#include "policy/policy.h"
#include "common/prom.h"
#include "kube/kube.h"

#define CLI_TIMEOUT_MS 10000

static const char *cli_admin = SM_DEFAULT_ADMIN_SOCKET;
static const char *cli_pin = SM_DEFAULT_PIN_PATH;
static bool cli_json;
static const double cli_hist_bounds[SM_HIST_N_BUCKETS] = SM_HIST_BOUNDS;

static int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int cli_fail(const char *fmt, ...)
{
	va_list ap;

	fputs("sockmeshctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

/* Ask the agent; *agent_down set when nobody listens on the socket. */
static json_t *cli_agent_get(const char *method, const char *path, const char *body,
			     int *status, bool *agent_down)
{
	char *resp = NULL;
	json_t *j;
	int ret = http_unix_request(cli_admin, method, path, body, body ? strlen(body) : 0,
				    CLI_TIMEOUT_MS, &resp);

	*agent_down = false;
	if (ret < 0) {
		*agent_down = ret == -ENOENT || ret == -ECONNREFUSED;
		if (!*agent_down)
			cli_fail("admin socket %s: %s", cli_admin, strerror(-ret));
		return NULL;
	}
	*status = ret;
	j = json_loads(resp, 0, NULL);
	free(resp);
	if (!j)
		cli_fail("agent sent a response that is not JSON");
	return j;
}

static int cli_open_pinned(struct dp_maps *m)
{
	int ret = dp_maps_open_pinned(m, cli_pin);

	if (ret)
		cli_fail("agent not running (%s) and no pinned data path at %s: %s",
			 cli_admin, cli_pin, strerror(-ret));
	return ret;
}

/* GET from the agent, or compute from the pinned maps when it is down. */
static json_t *cli_read(const char *path, json_t *(*fallback)(const struct dp_maps *, const char *),
			const char *arg)
{
	bool down;
	int status = 0;
	json_t *j = cli_agent_get("GET", path, NULL, &status, &down);
	struct dp_maps m;

	if (j) {
		if (status != 200) {
			cli_fail("%s", json_string_value(json_object_get(j, "error")) ?: "agent error");
			json_decref(j);
			return NULL;
		}
		return j;
	}
	if (!down || cli_open_pinned(&m))
		return NULL;
	j = fallback(&m, arg);
	dp_maps_close(&m);
	if (j)
		json_object_set_new(j, "agent", json_string("down (read from pinned maps)"));
	return j;
}

static void cli_print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);

	if (s)
		puts(s);
	free(s);
}

static const char *js(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

static long long ji(json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

static json_t *cli_status_fallback(const struct dp_maps *m, const char *arg)
{
	json_t *st = dp_status_json(m), *progs = json_array();
	char path[PATH_MAX];
	static const char *const links[] = { "sm_connect4", "sm_connect6", "sm_getpeer4", "sm_getpeer6",
					     "sm_sockops", "sm_sock_rel" };

	(void)arg;
	json_object_set_new(st, "alive", json_false());
	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
		struct bpf_link_info li = {};
		__u32 len = sizeof(li);
		int fd;

		snprintf(path, sizeof(path), "%s/links/%s", cli_pin, links[i]);
		fd = bpf_obj_get(path);
		if (fd < 0)
			continue;
		if (!bpf_obj_get_info_by_fd(fd, &li, &len))
			json_array_append_new(progs, json_pack("{s:s,s:i,s:i}", "name", links[i],
						"prog_id", li.prog_id, "link_id", li.id));
		close(fd);
	}
	json_object_set_new(st, "programs", progs);
	json_object_set_new(st, "pin_path", json_string(cli_pin));
	/* --kubepods-cgroup: one directory of pinned links per attached pod */
	snprintf(path, sizeof(path), "%s/pods", cli_pin);
	{
		DIR *d = opendir(path);
		struct dirent *de;
		json_t *uids = json_array();

		while (d && (de = readdir(d)))
			if (de->d_name[0] != '.')
				json_array_append_new(uids, json_string(de->d_name));
		if (d) {
			closedir(d);
			json_object_set_new(st, "membership", json_pack("{s:o}", "pinned_pods", uids));
		} else {
			json_decref(uids);
		}
	}
	return st;
}

/* The membership part of `status` (agent with --kubepods-cgroup). */
static void cli_print_membership(json_t *mb)
{
	json_t *pods = json_object_get(mb, "pods"), *pinned = json_object_get(mb, "pinned_pods");

	if (pinned) {
		printf("mesh pods:   %zu with pinned links (agent down: membership unknown)\n",
		       json_array_size(pinned));
		for (size_t i = 0; i < json_array_size(pinned); i++)
			printf("  %s\n", json_string_value(json_array_get(pinned, i)));
		return;
	}
	printf("mesh pods:   under %s%s%s: %lld member(s), %lld attached, %lld pending\n",
	       js(mb, "kubepods_cgroup"), *js(mb, "node_name") ? ", node " : "", js(mb, "node_name"),
	       ji(mb, "members"), ji(mb, "attached"), ji(mb, "pending"));
	if (!json_array_size(pods))
		return;
	printf("  %-40s %-36s %-10s %s\n", "POD", "UID", "STATE", "WHY");
	for (size_t i = 0; i < json_array_size(pods); i++) {
		json_t *p = json_array_get(pods, i);
		char name[256];

		snprintf(name, sizeof(name), "%s/%s", js(p, "namespace"), js(p, "name"));
		printf("  %-40s %-36s %-10s %s%s\n", name, *js(p, "uid") ? js(p, "uid") : "-",
		       js(p, "state"), js(p, "why"),
		       json_is_true(json_object_get(p, "adopted")) ? " (adopted)" : "");
		if (*js(p, "cgroup"))
			printf("    cgroup %s\n", js(p, "cgroup"));
		if (*js(p, "pending"))
			printf("    pending: %s\n", js(p, "pending"));
	}
}

static int cmd_status(int argc, char **argv)
{
	json_t *j = cli_read(SM_API_STATUS, cli_status_fallback, NULL), *v, *progs;
	const char *k;

	(void)argc; (void)argv;
	if (!j)
		return 1;
	if (cli_json) {
		cli_print_json(j);
		json_decref(j);
		return 0;
	}
	printf("agent:       %s\n", json_is_true(json_object_get(j, "alive")) ?
	       "running" : "down (data path read from pinned maps)");
	if (json_object_get(j, "pid"))
		printf("pid:         %lld, up %.0f s, version %s\n", ji(j, "pid"),
		       json_real_value(json_object_get(j, "uptime_s")), js(j, "version"));
	if (*js(j, "cgroup"))
		printf("cgroup:      %s\n", js(j, "cgroup"));
	if (json_object_get(j, "membership"))
		cli_print_membership(json_object_get(j, "membership"));
	printf("pin path:    %s\n", js(j, "pin_path"));
	if (*js(j, "policy"))
		printf("policy:      %s (generation %lld, %lld reloads ok, %lld failed)\n",
		       js(j, "policy"), ji(j, "generation"), ji(j, "reloads_ok"), ji(j, "reloads_failed"));
	else
		printf("generation:  %lld\n", ji(j, "generation"));
	if (*js(j, "last_error"))
		printf("last error:  %s\n", js(j, "last_error"));
	printf("redirect:    %s\n", json_is_true(json_object_get(j, "redirect")) ? "on" : "off");
	progs = json_object_get(j, "programs");
	printf("programs:\n");
	for (size_t i = 0; i < json_array_size(progs); i++) {
		json_t *p = json_array_get(progs, i);

		printf("  %-14s %-28s prog %lld", js(p, "name"), js(p, "attach"), ji(p, "prog_id"));
		if (ji(p, "link_id"))
			printf("  link %lld", ji(p, "link_id"));
		putchar('\n');
	}
	printf("counters:\n");
	json_object_foreach(json_object_get(j, "counters"), k, v)
		printf("  %-24s %lld\n", k, (long long)json_integer_value(v));
	printf("map entries:\n");
	json_object_foreach(json_object_get(j, "map_entries"), k, v)
		printf("  %-24s %lld\n", k, (long long)json_integer_value(v));
	json_decref(j);
	return 0;
}

static json_t *cli_services_fallback(const struct dp_maps *m, const char *arg)
{
	(void)arg;
	return dp_services_json(m);
}

static int cmd_services(int argc, char **argv)
{
	json_t *j = cli_read(SM_API_SERVICES, cli_services_fallback, NULL), *arr;

	(void)argc; (void)argv;
	if (!j)
		return 1;
	if (cli_json) {
		cli_print_json(j);
		json_decref(j);
		return 0;
	}
	arr = json_object_get(j, "services");
	printf("%-22s %-20s %-4s %-13s %-8s %6s %8s %6s\n", "SERVICE", "VIP:PORT", "PATH", "LB",
	       "READY", "ACTIVE", "CONNECTS", "OVERFL");
	for (size_t i = 0; i < json_array_size(arr); i++) {
		json_t *s = json_array_get(arr, i), *route = json_object_get(s, "route");
		char vip[40], ready[24];

		snprintf(vip, sizeof(vip), "%s:%lld", js(s, "vip"), ji(s, "port"));
		snprintf(ready, sizeof(ready), "%lld/%lld", ji(s, "backends_ready") - ji(s, "backends_ejected"),
			 ji(s, "backends_total"));
		printf("%-22s %-20s %-4s %-13s %-8s %6lld %8lld %6lld\n", js(s, "name"), vip, js(s, "path"),
		       js(s, "lb"), ready, ji(s, "active"), ji(s, "connects"), ji(s, "overflows"));
		if (!strcmp(js(s, "path"), "L7") && *js(s, "why"))
			printf("  L7: %s%s\n", js(s, "why"),
			       json_is_false(json_object_get(s, "l7_proxy")) ? " (proxy off: kept at L4)" : "");
		else if (!strcmp(js(s, "path"), "L4") && *js(s, "l4_why"))
			printf("  L4: %s\n", js(s, "l4_why"));
		for (size_t r = 0; r < json_array_size(route); r++) {
			json_t *x = json_array_get(route, r);

			printf("  %s route %5.1f%% -> %s\n", r + 1 == json_array_size(route) ? "`-" : "|-",
			       json_real_value(json_object_get(x, "weight_percent")), js(x, "cluster"));
		}
	}
	if (json_object_get(j, "agent"))
		printf("(agent down: read from pinned maps at %s)\n", cli_pin);
	json_decref(j);
	return 0;
}

static json_t *cli_backends_fallback(const struct dp_maps *m, const char *arg)
{
	return dp_backends_json(m, arg);
}

static int cmd_backends(int argc, char **argv)
{
	const char *svc = argc > 1 ? argv[1] : NULL;
	char path[512];
	json_t *j, *arr;

	if (argc > 2)
		return cli_fail("usage: sockmeshctl backends [SERVICE]");
	snprintf(path, sizeof(path), SM_API_BACKENDS "%s%s", svc ? "?service=" : "", svc ? svc : "");
	j = cli_read(path, cli_backends_fallback, svc);
	if (!j)
		return 1;
	if (cli_json) {
		cli_print_json(j);
		json_decref(j);
		return 0;
	}
	arr = json_object_get(j, "backends");
	/* TOTAL: connections the kernel sent it; REQS: requests the L7 proxy sent it */
	printf("%-20s %-21s %-22s %-9s %-15s %6s %7s %7s %5s %3s\n", "SERVICE", "ADDRESS", "POD",
	       "SUBSETS", "STATE", "ACTIVE", "TOTAL", "REQS", "CFAIL", "EJ");
	for (size_t i = 0; i < json_array_size(arr); i++) {
		json_t *b = json_array_get(arr, i), *subs = json_object_get(b, "subsets");
		char addr[40], sub[64] = "";

		snprintf(addr, sizeof(addr), "%s:%lld", js(b, "address"), ji(b, "port"));
		for (size_t k = 0; k < json_array_size(subs); k++) {
			size_t l = strlen(sub);

			snprintf(sub + l, sizeof(sub) - l, "%s%s", l ? "," : "",
				 json_string_value(json_array_get(subs, k)));
		}
		char state[40];
		long long left = json_object_get(b, "returns_in_ms") ? ji(b, "returns_in_ms")
								     : ji(b, "eject_remaining_ms");

		if (!strcmp(js(b, "state"), "ejected") && left > 0)
			snprintf(state, sizeof(state), "ejected %llds", (left + 999) / 1000);
		else
			snprintf(state, sizeof(state), "%s", js(b, "state"));
		printf("%-20s %-21s %-22s %-9s %-15s %6lld %7lld %7lld %5lld %3lld\n", js(b, "service"),
		       addr, *js(b, "pod") ? js(b, "pod") : "-", sub[0] ? sub : "-", state,
		       ji(b, "active") + ji(b, "active_requests"), ji(b, "total"), ji(b, "requests"),
		       ji(b, "connect_failures"), ji(b, "times_ejected"));
	}
	if (json_object_get(j, "agent"))
		printf("(agent down: read from pinned maps at %s)\n", cli_pin);
	json_decref(j);
	return 0;
}

static void cli_print_match(json_t *m)
{
	const char *k;
	json_t *v;
	int first = 1;

	json_object_foreach(m, k, v) {
		const char *kk;
		json_t *vv;

		if (json_is_object(v) && json_object_get(v, "kind")) {
			const char *kind = js(v, "kind");

			printf("%s%s %s %s", first ? "" : " && ", k, kind, js(v, kind));
		} else if (json_is_object(v)) {
			json_object_foreach(v, kk, vv) {
				json_t *inner;
				const char *ik;

				json_object_foreach(vv, ik, inner)
					printf("%s%s[%s] %s %s", first ? "" : " && ", k, kk, ik,
					       json_is_string(inner) ? json_string_value(inner) : "");
				first = 0;
			}
		} else if (json_is_integer(v)) {
			printf("%s%s %lld", first ? "" : " && ", k, (long long)json_integer_value(v));
		} else if (json_is_string(v)) {
			printf("%s%s %s", first ? "" : " && ", k, json_string_value(v));
		}
		first = 0;
	}
	if (first)
		printf("any");
}

static int cmd_routes(int argc, char **argv)
{
	const char *svc = argc > 1 ? argv[1] : NULL;
	char path[512];
	bool down;
	int status = 0;
	json_t *j, *arr;

	if (argc > 2)
		return cli_fail("usage: sockmeshctl routes [SERVICE]");
	snprintf(path, sizeof(path), SM_API_ROUTES "%s%s", svc ? "?service=" : "", svc ? svc : "");
	j = cli_agent_get("GET", path, NULL, &status, &down);
	if (!j)
		return down ? cli_fail("agent not running (%s): routes live in the agent", cli_admin) : 1;
	if (cli_json) {
		cli_print_json(j);
		json_decref(j);
		return 0;
	}
	arr = json_object_get(j, "services");
	if (!json_array_size(arr))
		printf("no L7 service ports%s\n", json_is_true(json_object_get(j, "l7_enabled")) ? "" :
		       " (the agent runs without --l7-listen)");
	for (size_t i = 0; i < json_array_size(json_object_get(j, "l4_kept")); i++) {
		json_t *s = json_array_get(json_object_get(j, "l4_kept"), i);

		printf("%s %s:%lld  no L7 routes: %s\n", js(s, "service"), js(s, "vip"),
		       ji(s, "port"), js(s, "why"));
	}
	for (size_t i = 0; i < json_array_size(arr); i++) {
		json_t *s = json_array_get(arr, i), *routes = json_object_get(s, "routes");

		printf("%s %s:%lld  (%s)\n", js(s, "service"), js(s, "vip"), ji(s, "port"), js(s, "why"));
		if (!json_array_size(routes))
			printf("  #0  any -> %s\n", js(s, "default_cluster"));
		for (size_t r = 0; r < json_array_size(routes); r++) {
			json_t *x = json_array_get(routes, r), *ms = json_object_get(x, "match");
			json_t *ds = json_object_get(x, "route");

			printf("  #%-2zu ", r);
			if (!json_array_size(ms))
				printf("any");
			for (size_t m = 0; m < json_array_size(ms); m++) {
				if (m)
					printf(" || ");
				cli_print_match(json_array_get(ms, m));
			}
			printf(" ->");
			for (size_t d = 0; d < json_array_size(ds); d++)
				printf(" %s %lld%%", js(json_array_get(ds, d), "cluster"),
				       ji(json_array_get(ds, d), "weight"));
			if (json_object_get(x, "redirect"))
				printf(" redirect %lld", ji(json_object_get(x, "redirect"), "code"));
			if (json_object_get(x, "directResponse"))
				printf(" direct %lld", ji(json_object_get(x, "directResponse"), "status"));
			if (json_object_get(x, "timeout_ms"))
				printf("  timeout %lldms", ji(x, "timeout_ms"));
			if (json_is_true(json_object_get(json_object_get(x, "retries"), "configured")))
				printf("  retries %lld", ji(json_object_get(x, "retries"), "attempts"));
			if (json_object_get(x, "fault"))
				printf("  fault");
			putchar('\n');
		}
	}
	json_decref(j);
	return 0;
}

static int cli_collect_files(int argc, char **argv, const char ***files, size_t *n)
{
	*files = calloc(argc + 1, sizeof(**files));
	*n = 0;
	optind = 1;
	for (int c; (c = getopt(argc, argv, "f:")) != -1;) {
		if (c != 'f')
			return -EINVAL;
		(*files)[(*n)++] = optarg;
	}
	return *n && optind == argc ? 0 : -EINVAL;
}

/* validate's options: -f PATH and the agent's --max-* capacity flags. */
static int cli_validate_args(int argc, char **argv, const char **files, size_t *n,
			     struct sm_limits *lim)
{
	struct option opts[SM_LIMIT_COUNT + 1] = {};
	int c, idx = 0;

	sm_limits_options(opts, 'L');
	sm_limits_init(lim);
	*n = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "f:", opts, &idx)) != -1) {
		if (c == 'f')
			files[(*n)++] = optarg;
		else if (c != 'L' || sm_limits_set(lim, opts[idx].name, optarg))
			return -EINVAL;
	}
	return *n && optind == argc ? 0 : -EINVAL;
}

/* The agent's checks, in its order, without a kernel. */
static int cmd_validate(int argc, char **argv)
{
	const char **files = calloc(argc + 1, sizeof(*files));
	struct compile_out out = {};
	struct pol_cache *cache;
	struct sm_limits lim;
	size_t n, n_be = 0;
	struct pol_set set;
	char line[1024];
	int ret = 0;

	if (!files || cli_validate_args(argc, argv, files, &n, &lim)) {
		free(files);
		return cli_fail("usage: sockmeshctl validate -f FILE|DIR [-f ...] [--max-* N] "
				"(sockmesh-agent's capacity flags and defaults, N in %u..%u)",
				SM_LIMIT_MIN, SM_LIMIT_MAX);
	}
	/* through a document cache, as the agent loads: the same diagnostics */
	cache = policy_cache_new();
	policy_set_init(&set);
	if (cache) {
		policy_cache_begin(cache);
		policy_set_use_cache(&set, cache);
	}
	for (size_t i = 0; i < n; i++)
		policy_load_path(&set, files[i]);
	if (!set.n_errors)
		policy_validate(&set);
	if (!set.n_errors)
		ret = compile_policy(&set, &(struct compile_opts){ .limits = &lim, .l7_proxy = true },
				     &out);
	for (size_t i = 0; i < set.n_diags; i++)
		fprintf(set.diags[i].level == POL_DIAG_ERROR ? stderr : stdout, "%s\n",
			policy_diag_format(&set.diags[i], line, sizeof(line)));
	for (size_t i = 0; i < out.plan.n_svcs; i++)
		if (out.plan.svcs[i].n_clusters)
			n_be += out.plan.svcs[i].clusters[0].n_backends;
	if (set.n_errors || ret) {
		fprintf(stderr, "sockmeshctl: invalid: %zu error(s), %zu warning(s)\n",
			set.n_errors, set.n_warnings);
		ret = 1;
	} else {
		printf("valid: %zu service port(s), %zu backend(s), %zu warning(s)\n",
		       out.plan.n_svcs, n_be, set.n_warnings);
	}
	compile_out_free(&out);
	policy_set_free(&set);
	policy_cache_free(cache);
	free(files);
	return ret;
}

static char *cli_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (buf = malloc(n + 1)) && fread(buf, 1, n, f) == (size_t)n) {
		buf[n] = '\0';
		*len = n;
	} else {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

/* apply -f / delete -f: the files' objects by kind, namespace and name */
static int cli_files(int argc, char **argv, bool del)
{
	const char **files;
	size_t n;
	json_t *body = json_object(), *arr = json_array(), *j, *diags;
	char *text;
	bool down;
	int status = 0, ret = 0;

	if (cli_collect_files(argc, argv, &files, &n)) {
		free(files);
		json_decref(body);
		json_decref(arr);
		return cli_fail("usage: sockmeshctl %s -f FILE [-f ...]", del ? "delete" : "apply");
	}
	for (size_t i = 0; i < n; i++) {
		size_t len;
		char *c = cli_read_file(files[i], &len);
		const char *base = strrchr(files[i], '/');

		if (!c) {
			ret = cli_fail("%s: %s", files[i], strerror(errno ? errno : EIO));
			goto out;
		}
		json_array_append_new(arr, json_pack("{s:s,s:s%}", "name", base ? base + 1 : files[i],
						     "content", c, len));
		free(c);
	}
	json_object_set_new(body, "files", arr);
	arr = NULL;
	text = json_dumps(body, JSON_COMPACT);
	j = cli_agent_get("POST", del ? SM_API_DELETE : SM_API_APPLY, text, &status, &down);
	free(text);
	if (!j) {
		ret = down ? cli_fail("agent not running (%s): %s needs the agent", cli_admin,
				      del ? "delete" : "apply") : 1;
		goto out;
	}
	diags = json_object_get(j, "diagnostics");
	for (size_t i = 0; i < json_array_size(diags); i++)
		fprintf(status == 200 ? stdout : stderr, "%s\n", json_string_value(json_array_get(diags, i)));
	if (status != 200) {
		ret = cli_fail("%s", *js(j, "error") ? js(j, "error") :
			       del ? "delete failed" : "apply failed");
	} else {
		if (*js(j, "error"))
			fprintf(stderr, "sockmeshctl: %s\n", js(j, "error"));
		printf("%s: generation %lld\n", del ? "deleted" : "applied", ji(j, "generation"));
	}
	json_decref(j);
out:
	json_decref(arr);
	json_decref(body);
	free(files);
	return ret;
}

static int cmd_apply(int argc, char **argv)
{
	return cli_files(argc, argv, false);
}

static int cmd_delete(int argc, char **argv)
{
	return cli_files(argc, argv, true);
}

/* "30s", "500ms", "5m", "1h", "2" (seconds) -> ms; -1 when invalid */
static long long cli_parse_duration(const char *s)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || v < 0)
		return -1;
	if (!*end || !strcmp(end, "s"))
		return (long long)(v * 1000);
	if (!strcmp(end, "ms"))
		return (long long)v;
	if (!strcmp(end, "m"))
		return (long long)(v * 60000);
	if (!strcmp(end, "h"))
		return (long long)(v * 3600000);
	return -1;
}

static int cmd_eject_restore(int argc, char **argv, bool eject)
{
	static const struct option opts[] = { { "for", required_argument, NULL, 'F' }, {} };
	long long dur = 0;
	struct sm_be_key k;
	const char *addr;
	char body[256];
	json_t *j;
	bool down;
	int status = 0, ret;

	optind = 1;
	for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
		if (c != 'F' || !eject || (dur = cli_parse_duration(optarg)) < 0)
			return cli_fail("usage: sockmeshctl %s", eject ? "eject ADDR:PORT [--for DURATION]"
								  : "restore ADDR:PORT");
	}
	if (optind + 1 != argc || dp_parse_addr_port(argv[optind], &k))
		return cli_fail("usage: sockmeshctl %s", eject ? "eject ADDR:PORT [--for DURATION]"
							  : "restore ADDR:PORT");
	addr = argv[optind];
	snprintf(body, sizeof(body), "{\"address\":\"%s\",\"duration_ms\":%lld}", addr, dur);
	j = cli_agent_get("POST", eject ? SM_API_EJECT : SM_API_RESTORE, body, &status, &down);
	if (j) {
		ret = status == 200 ? 0 : cli_fail("%s: %s", addr, js(j, "error"));
		json_decref(j);
	} else if (down) {
		struct dp_maps m;

		if (cli_open_pinned(&m))
			return 1;
		ret = eject ? dp_backend_eject(&m, &k, (uint64_t)dur * 1000000ull) : dp_backend_restore(&m, &k);
		dp_maps_close(&m);
		if (ret)
			return cli_fail("%s: %s", addr, ret == -ENOENT ? "no such backend" : strerror(-ret));
	} else {
		return 1;
	}
	if (!ret) {
		if (eject && dur)
			printf("%s ejected for %.1f s\n", addr, dur / 1000.0);
		else
			printf("%s %s\n", addr, eject ? "ejected until restored" : "restored");
	}
	return ret;
}

static int cmd_eject(int argc, char **argv)
{
	return cmd_eject_restore(argc, argv, true);
}

static int cmd_restore(int argc, char **argv)
{
	return cmd_eject_restore(argc, argv, false);
}

/* explain --from POD --to URL [-H 'name: value']... [-X METHOD] */
static int cmd_explain(int argc, char **argv)
{
	const char *from = NULL, *to = NULL, *method = "GET";
	json_t *body = json_object(), *hdrs = json_object(), *j, *routes, *ds;
	char *text;
	bool down;
	int status = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (i + 1 >= argc)
			return cli_fail("%s needs a value", a);
		if (!strcmp(a, "--from"))
			from = argv[++i];
		else if (!strcmp(a, "--to"))
			to = argv[++i];
		else if (!strcmp(a, "-X") || !strcmp(a, "--method"))
			method = argv[++i];
		else if (!strcmp(a, "-H") || !strcmp(a, "--header")) {
			const char *h = argv[++i], *colon = strchr(h, ':');
			char name[256];

			if (!colon || colon == h || (size_t)(colon - h) >= sizeof(name))
				return cli_fail("-H wants 'name: value', got %s", h);
			snprintf(name, sizeof(name), "%.*s", (int)(colon - h), h);
			for (char *p = name; *p; p++)
				*p = (char)tolower((unsigned char)*p);
			colon++;
			while (*colon == ' ' || *colon == '\t')
				colon++;
			json_object_set_new(hdrs, name, json_string(colon));
		} else {
			return cli_fail("usage: sockmeshctl explain --from [NS/]POD --to URL "
					"[-H 'name: value']... [-X METHOD]");
		}
	}
	if (!to)
		return cli_fail("usage: sockmeshctl explain --from [NS/]POD --to URL "
				"[-H 'name: value']... [-X METHOD]");
	json_object_set_new(body, "to", json_string(to));
	if (from)
		json_object_set_new(body, "from", json_string(from));
	json_object_set_new(body, "method", json_string(method));
	json_object_set_new(body, "headers", hdrs);
	text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	j = cli_agent_get("POST", SM_API_EXPLAIN, text, &status, &down);
	free(text);
	if (!j)
		return down ? cli_fail("agent not running (%s): explain needs the agent", cli_admin) : 1;
	if (status != 200) {
		cli_fail("explain: %s", js(j, "error"));
		json_decref(j);
		return 1;
	}
	if (cli_json) {
		cli_print_json(j);
		json_decref(j);
		return 0;
	}
	if (!json_object_get(j, "service")) {
		printf("%s: %s\n", to, js(j, "why"));
		json_decref(j);
		return 0;
	}
	printf("%s -> %s %s:%lld\n", from ? from : "(any pod)", js(j, "service"), js(j, "vip"), ji(j, "port"));
	printf("path: %s (%s)\n", js(j, "path"), js(j, "why"));
	if (json_object_get(j, "virtual_service"))
		printf("VirtualService %s:\n", js(j, "virtual_service"));
	routes = json_object_get(j, "routes");
	for (size_t i = 0; i < json_array_size(routes); i++) {
		json_t *r = json_array_get(routes, i);
		const char *nm = js(r, "name");

		printf("  #%lld %s: %s", ji(r, "index"), *nm ? nm : "(unnamed)",
		       json_is_true(json_object_get(r, "matched")) ? "MATCHED" : "not matched");
		if (!json_is_true(json_object_get(r, "matched")))
			printf(" (%s)", js(r, "why"));
		else if (json_object_get(r, "matched_block"))
			printf(" (match block %lld)", ji(r, "matched_block"));
		putchar('\n');
	}
	if (json_object_get(j, "result"))
		printf("%s\n", js(j, "result"));
	if (json_object_get(j, "redirect"))
		printf("answered by the proxy: redirect %lld\n", ji(j, "redirect"));
	if (json_object_get(j, "direct_response"))
		printf("answered by the proxy: direct response %lld\n", ji(j, "direct_response"));
	ds = json_object_get(j, "destinations");
	for (size_t i = 0; i < json_array_size(ds); i++) {
		json_t *d = json_array_get(ds, i), *bs = json_object_get(d, "backends");
		const char *sub = js(d, "subset");

		printf("  -> %s subset %s weight %lld (%.1f%%)\n", js(d, "cluster"), *sub ? sub : "-",
		       ji(d, "weight"), json_number_value(json_object_get(d, "percent")));
		if (!json_array_size(bs))
			printf("       no backends\n");
		for (size_t k = 0; k < json_array_size(bs); k++) {
			json_t *b = json_array_get(bs, k);

			printf("       %s:%lld %-30s %s%s", js(b, "address"), ji(b, "port"), js(b, "pod"),
			       json_is_true(json_object_get(b, "eligible")) ? "eligible" : "NOT eligible: ",
			       json_is_true(json_object_get(b, "eligible")) ? "" : js(b, "state"));
			if (json_object_get(b, "returns_in_ms"))
				printf(" (returns in %lld ms)", ji(b, "returns_in_ms"));
			putchar('\n');
		}
	}
	json_decref(j);
	return 0;
}

static const char *cli_format;	/* -o dot|svg|png (graph) */

/* graph [-o dot|svg|png] [--window SECONDS] [--out FILE] */
static int cmd_graph(int argc, char **argv)
{
	const char *fmt = cli_format ? cli_format : "dot", *outp = NULL;
	double window = 0;
	bool down;
	int status = 0, ret = 0;
	json_t *j;
	char *dot;

	for (int i = 1; i < argc; i++) {
		if (i + 1 < argc && !strcmp(argv[i], "--window"))
			window = strtod(argv[++i], NULL);
		else if (i + 1 < argc && !strcmp(argv[i], "--out"))
			outp = argv[++i];
		else
			return cli_fail("usage: sockmeshctl graph [-o dot|svg|png|json] [--window SECONDS] "
					"[--out FILE]");
	}
	j = cli_agent_get("GET", SM_API_GRAPH, NULL, &status, &down);
	if (!j)
		return down ? cli_fail("agent not running (%s): the graph lives in the agent", cli_admin) : 1;
	if (window > 0) {
		/* rates over a fresh window: sample again and subtract */
		json_t *j2, *e1 = json_object_get(j, "edges"), *e2;

		usleep((useconds_t)(window * 1e6));
		j2 = cli_agent_get("GET", SM_API_GRAPH, NULL, &status, &down);
		if (!j2) {
			json_decref(j);
			return 1;
		}
		e2 = json_object_get(j2, "edges");
		for (size_t i = 0; i < json_array_size(e2); i++) {
			json_t *b = json_array_get(e2, i);
			static const char *const keys[] = { "requests", "errors", "connections",
							    "bytes_sent", "bytes_received" };

			for (size_t k = 0; k < json_array_size(e1); k++) {
				json_t *a = json_array_get(e1, k);

				if (strcmp(js(a, "source"), js(b, "source")) ||
				    strcmp(js(a, "destination"), js(b, "destination")) ||
				    strcmp(js(a, "protocol"), js(b, "protocol")))
					continue;
				for (size_t x = 0; x < sizeof(keys) / sizeof(keys[0]); x++)
					json_object_set_new(b, keys[x], json_integer(ji(b, keys[x]) - ji(a, keys[x])));
			}
		}
		json_decref(j);
		j = j2;
	} else {
		window = json_number_value(json_object_get(j, "uptime_s"));
	}
	if (cli_json) {
		cli_print_json(j);
		json_decref(j);
		return 0;
	}
	dot = graph_dot(j, window);
	json_decref(j);
	if (!dot)
		return cli_fail("out of memory");
	if (!strcmp(fmt, "dot")) {
		FILE *f = outp ? fopen(outp, "w") : stdout;

		if (!f) {
			ret = cli_fail("%s: %s", outp, strerror(errno));
		} else {
			fputs(dot, f);
			if (f != stdout && fclose(f))
				ret = cli_fail("%s: %s", outp, strerror(errno));
		}
	} else {
		/* Graphviz renders; its output goes where ours would */
		char cmd[PATH_MAX + 64];
		FILE *p;

		if (outp && strchr(outp, '\''))
			ret = cli_fail("--out: no quotes in the file name, please");
		else {
			snprintf(cmd, sizeof(cmd), "dot -T%s%s%s%s", fmt, outp ? " -o '" : "",
				 outp ? outp : "", outp ? "'" : "");
			p = popen(cmd, "w");
			if (!p) {
				ret = cli_fail("running dot: %s", strerror(errno));
			} else {
				fputs(dot, p);
				status = pclose(p);
				if (status)
					ret = cli_fail("dot -T%s failed (is graphviz installed? "
						       "apt-get install graphviz)", fmt);
			}
		}
	}
	free(dot);
	return ret;
}

/* One row of `top`: after minus before over dt seconds. */
static void cli_top_row(json_t *a, json_t *b, double dt)
{
	uint64_t bk[SM_HIST_N_BUCKETS], rq, er;
	json_t *ba = json_object_get(a, "buckets"), *bb = json_object_get(b, "buckets");
	bool l7 = !strcmp(js(b, "path"), "L7");
	char name[64], rate[16], errp[16], p50[16], p99[16], ej[16];
	double q50, q99;

	rq = (uint64_t)(ji(b, "requests") - (a ? ji(a, "requests") : 0));
	er = (uint64_t)(ji(b, "errors") - (a ? ji(a, "errors") : 0));
	for (int i = 0; i < SM_HIST_N_BUCKETS; i++)
		bk[i] = (uint64_t)(json_integer_value(json_array_get(bb, i)) -
				   (a ? json_integer_value(json_array_get(ba, i)) : 0));
	snprintf(name, sizeof(name), "%s:%lld", js(b, "service"), ji(b, "port"));
	if (strlen(name) > 28)
		memmove(name + 1, name + strlen(name) - 27, 28), name[0] = '~';
	if (l7) {
		snprintf(rate, sizeof(rate), "%.1f", rq / dt);
		snprintf(errp, sizeof(errp), rq ? "%.1f" : "-", rq ? 100.0 * er / rq : 0);
		q50 = prom_hist_quantile(cli_hist_bounds, bk, SM_HIST_N_BUCKETS, rq, 0.5);
		q99 = prom_hist_quantile(cli_hist_bounds, bk, SM_HIST_N_BUCKETS, rq, 0.99);
		snprintf(p50, sizeof(p50), q50 < 0 ? "-" : "%.1f", q50);
		snprintf(p99, sizeof(p99), q99 < 0 ? "-" : "%.1f", q99);
	} else {
		/* L4: the kernel counts connections, not requests */
		snprintf(rate, sizeof(rate), "%.1fc",
			 (double)(ji(b, "connects") - (a ? ji(a, "connects") : 0)) / dt);
		snprintf(errp, sizeof(errp), "-");
		snprintf(p50, sizeof(p50), "-");
		snprintf(p99, sizeof(p99), "-");
	}
	snprintf(ej, sizeof(ej), "%lld/%lld", ji(b, "backends_ejected"), ji(b, "backends_total"));
	printf("%-28s %-2s %8s %6s %7s %7s %6lld %7s\n", name, js(b, "path"), rate, errp, p50, p99,
	       ji(b, "active"), ej);
}

/* top [--interval S] [--once]: a refreshing per-service table, 80 columns */
static int cmd_top(int argc, char **argv)
{
	double interval = 2;
	bool once = false, down;
	int status = 0;
	json_t *prev = NULL;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--once"))
			once = true;
		else if (i + 1 < argc && !strcmp(argv[i], "--interval"))
			interval = strtod(argv[++i], NULL);
		else
			return cli_fail("usage: sockmeshctl top [--interval SECONDS] [--once]");
	}
	if (interval < 0.1)
		interval = 0.1;
	prev = cli_agent_get("GET", SM_API_TOP, NULL, &status, &down);
	if (!prev)
		return down ? cli_fail("agent not running (%s): top needs the agent", cli_admin) : 1;
	for (;;) {
		json_t *cur, *rows;

		usleep((useconds_t)(interval * 1e6));
		cur = cli_agent_get("GET", SM_API_TOP, NULL, &status, &down);
		if (!cur) {
			json_decref(prev);
			return 1;
		}
		if (cli_json) {
			cli_print_json(cur);
		} else {
			double dt = json_number_value(json_object_get(cur, "uptime_s")) -
				    json_number_value(json_object_get(prev, "uptime_s"));

			if (dt <= 0)
				dt = interval;
			if (!once && isatty(STDOUT_FILENO))
				printf("\033[H\033[J");	/* clear: only on a terminal */
			else if (!once)
				printf("\n");
			printf("sockmesh top: last %.1f s (rps for L7; L4 rows: connections/s)\n", dt);
			printf("%-28s %-2s %8s %6s %7s %7s %6s %7s\n", "SERVICE:PORT", "", "RPS", "ERR%",
			       "P50ms", "P99ms", "ACTIVE", "EJECTED");
			rows = json_object_get(cur, "services");
			for (size_t i = 0; i < json_array_size(rows); i++) {
				json_t *b = json_array_get(rows, i), *a = NULL, *pr = json_object_get(prev, "services");

				for (size_t k = 0; k < json_array_size(pr); k++) {
					json_t *x = json_array_get(pr, k);

					if (!strcmp(js(x, "service"), js(b, "service")) && ji(x, "port") == ji(b, "port"))
						a = x;
				}
				cli_top_row(a, b, dt);
			}
			fflush(stdout);
		}
		json_decref(prev);
		prev = cur;
		if (once)
			break;
	}
	json_decref(prev);
	return 0;
}

/* kubectl's names for the kinds the agent holds: plural, singular, short */
static const char *cli_kind(const char *s)
{
	static const struct { const char *kind, *names; } kinds[] = {
		{ "Namespace", " namespaces namespace ns " },
		{ "Service", " services service svc " },
		{ "EndpointSlice", " endpointslices endpointslice eps " },
		{ "Pod", " pods pod po " },
		{ "VirtualService", " virtualservices virtualservice vs " },
		{ "DestinationRule", " destinationrules destinationrule dr " },
		{ "Gateway", " gateways gateway gw " },
	};
	char w[80];

	snprintf(w, sizeof(w), " %s ", s);
	for (char *p = w; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strstr(kinds[i].names, w))
			return kinds[i].kind;
	return NULL;
}

static int cmd_get(int argc, char **argv)
{
	const char *kind = argc > 1 ? cli_kind(argv[1]) : NULL;
	char path[1024];
	json_t *j, *objs;
	bool down;
	int status = 0, ret;

	if (argc < 2 || argc > 3)
		return cli_fail("usage: sockmeshctl get KIND|all [NAMESPACE/NAME] [-o yaml|json]");
	if (!kind && strcmp(argv[1], "all"))
		return cli_fail("get: unknown kind %s (namespaces, services, endpointslices, pods, "
				"virtualservices, destinationrules, gateways, all)", argv[1]);
	snprintf(path, sizeof(path), "/objects%s%s%s%s", kind ? "?kind=" : "", kind ?: "",
		 argc > 2 ? (kind ? "&name=" : "?name=") : "", argc > 2 ? argv[2] : "");
	j = cli_agent_get("GET", path, NULL, &status, &down);
	if (!j)
		return down ? cli_fail("agent not running (%s): the objects live in the agent", cli_admin) : 1;
	if (status != 200) {
		ret = cli_fail("get: %s", js(j, "error"));
		json_decref(j);
		return ret;
	}
	objs = json_object_get(j, "objects");
	if (argc > 2 && !json_array_size(objs)) {
		json_decref(j);
		return cli_fail("get: %s %s not found", kind ?: "object", argv[2]);
	}
	if (cli_json)
		cli_print_json(objs);
	else if ((ret = kube_yaml_dump(objs, stdout)))
		fprintf(stderr, "sockmeshctl: get: %s\n", strerror(-ret));
	json_decref(j);
	return 0;
}

static int cmd_help(int argc, char **argv);

static const struct cli_cmd {
	const char *name;
	int (*fn)(int, char **);
	const char *help;
} cli_cmds[] = {
	{ "status", cmd_status, "status                          agent, programs, policy generation, counters" },
	{ "services", cmd_services, "services                        VIP:port, LB policy, ready/total, active, overflows" },
	{ "backends", cmd_backends, "backends [SERVICE]              address, pod, subsets, state, active, total, connect failures" },
	{ "routes", cmd_routes, "routes [SERVICE]                effective L7 routes in order (first match wins)" },
	{ "explain", cmd_explain, "explain --from POD --to URL [-H 'n: v']  dry run: route, subset, weight, eligible backends" },
	{ "graph", cmd_graph, "graph [-o dot|svg|png] [--window S] [--out FILE]  service graph (Graphviz)" },
	{ "top", cmd_top, "top [--interval S] [--once]     live table per service: rps, err %, p50/p99, ejected" },
	{ "validate", cmd_validate, "validate -f PATH [-f PATH]... [--max-* N]  check policy files as the agent would (no agent needed)" },
	{ "apply", cmd_apply, "apply -f FILE [-f FILE]...      create or update the files' objects (by kind/ns/name) through the agent" },
	{ "delete", cmd_delete, "delete -f FILE [-f FILE]...     delete the files' objects (by kind/ns/name) through the agent" },
	{ "get", cmd_get, "get KIND|all [NS/NAME] [-o yaml|json]  the objects an agent on the Kubernetes API holds" },
	{ "eject", cmd_eject, "eject ADDR:PORT [--for DUR]     stop new connections to a backend (30s, 5m, ...)" },
	{ "restore", cmd_restore, "restore ADDR:PORT               undo eject" },
	{ "help", cmd_help, "help" },
};

static int cmd_help(int argc, char **argv)
{
	(void)argc; (void)argv;
	printf("usage: sockmeshctl [--admin-socket PATH] [--pin-path DIR] [-o table|json] COMMAND\n\n"
	       "commands (any unique prefix works):\n");
	for (size_t i = 0; i < sizeof(cli_cmds) / sizeof(cli_cmds[0]); i++)
		printf("  %s\n", cli_cmds[i].help);
	printf("\ndefaults: --admin-socket %s, --pin-path %s\n", SM_DEFAULT_ADMIN_SOCKET, SM_DEFAULT_PIN_PATH);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "admin-socket", required_argument, NULL, 'a' },
		{ "pin-path", required_argument, NULL, 'P' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	const struct cli_cmd *found = NULL;
	size_t len;

	libbpf_set_print(NULL);
	/* Global options may come before or after the command
	 * ("sockmeshctl services -o json"): take them out first. */
	{
		int out = 1;

		for (int i = 1; i < argc; i++) {
			const char *a = argv[i], *val = NULL;
			int which = 0;

			for (const struct option *o = opts; o->name; o++) {
				size_t l = strlen(o->name);

				if (!strncmp(a, "--", 2) && !strncmp(a + 2, o->name, l) &&
				    (a[2 + l] == '\0' || a[2 + l] == '=')) {
					which = o->val;
					val = a[2 + l] == '=' ? a + 3 + l : NULL;
				}
			}
			if (!which && a[0] == '-' && a[1] && strchr("aPoh", a[1]) && !a[2])
				which = a[1];
			else if (!which && a[0] == '-' && a[1] == 'o' && a[2])
				which = 'o', val = a + 2;
			if (!which) {
				argv[out++] = argv[i];
				continue;
			}
			if (which == 'h')
				return cmd_help(0, NULL);
			if (!val) {
				if (i + 1 >= argc)
					return cli_fail("%s needs a value", a);
				val = argv[++i];
			}
			switch (which) {
			case 'a': cli_admin = val; break;
			case 'P': cli_pin = val; break;
			case 'o':
				if (!strcmp(val, "json"))
					cli_json = true;
				else if (!strcmp(val, "dot") || !strcmp(val, "svg") || !strcmp(val, "png") ||
					 !strcmp(val, "yaml"))
					cli_format = val;
				else if (strcmp(val, "table"))
					return cli_fail("-o takes table or json (graph: dot, svg, png; get: yaml)");
				break;
			}
		}
		argc = out;
		argv[argc] = NULL;
		optind = 1;
	}
	if (optind >= argc) {
		cmd_help(0, NULL);
		return 1;
	}
	len = strlen(argv[optind]);
	for (size_t i = 0; i < sizeof(cli_cmds) / sizeof(cli_cmds[0]); i++) {
		if (strncmp(cli_cmds[i].name, argv[optind], len))
			continue;
		if (found && strcmp(cli_cmds[i].name, argv[optind]))
			return cli_fail("%s is ambiguous", argv[optind]);
		found = &cli_cmds[i];
		if (!strcmp(cli_cmds[i].name, argv[optind]))
			break;
	}
	if (!found)
		return cli_fail("unknown command %s (see sockmeshctl help)", argv[optind]);
	return found->fn(argc - optind, argv + optind);
}
