// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sockmesh-agent: loads the kernel data path and attaches it to one cgroup
 * (--cgroup) or to each mesh pod's cgroup under the kubelet's kubepods
 * cgroup (--kubepods-cgroup, members.c), keeps its maps filled from the
 * policy files, and serves the admin API.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <sched.h>
#include <dirent.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent/agent.h"
#include "common/parse.h"
#include "common/log.h"

static void usage(FILE *f)
{
	fprintf(f,
"usage: sockmesh-agent (--kubepods-cgroup PATH | --cgroup PATH)\n"
"                      (--policy FILE|DIR | --kubeconfig PATH | --in-cluster) [options]\n"
"\n"
"  --kubepods-cgroup PATH the kubelet's kubepods cgroup v2 directory (e.g.\n"
"                         /sys/fs/cgroup/kubepods.slice): attach to each mesh pod's\n"
"                         cgroup below it (Namespace/pod labels as in Istio), never to\n"
"                         PATH itself; the cgroup v2 root is refused\n"
"  --node-name NAME       with --kubepods-cgroup: only Pods with spec.nodeName NAME\n"
"  --cgroup PATH          instead: one cgroup v2 directory to attach to (only there)\n"
"  --policy FILE|DIR      Kubernetes/Istio YAML; a directory is watched (inotify)\n"
"  --kubeconfig PATH      instead of --policy: list+watch the Kubernetes API server of\n"
"                         this kubeconfig's current-context (token, tokenFile, client\n"
"                         certificates, certificate-authority[-data])\n"
"  --in-cluster           the same with the pod's service account (the DaemonSet)\n"
"  --reload-debounce MS   reload MS ms after the last file change (default %u, 0..%u);\n"
"                         from the API: a lone change at once, bursts coalesced over MS\n"
"  --pin-path DIR         bpffs directory for maps and links (default %s)\n"
"  --admin-socket PATH    admin API unix socket (default %s)\n"
"  --admin-listen ADDR:PORT also serve the admin API's GET endpoints on TCP\n"
"                         (e.g. 127.0.0.1:15000 for Prometheus; read-only)\n"
"  --keep-on-exit         leave the pinned data path running on exit\n"
"  --l7-listen ADDR[:PORT] the L7 proxy's listener, an address pods can reach\n"
"                         (the node IP; port default %u). Without it HTTP ports stay L4\n"
"  --gateway-bind ADDR    address for Istio Gateway listeners (default 0.0.0.0)\n"
"  --workers N            L7 proxy worker threads (default: one per CPU)\n"
"  --l7-max-conns N       downstream connections the L7 proxy holds open at once,\n"
"                         all workers and listeners together (default %u, max %u);\n"
"                         over it a connection is accepted and closed at once\n"
"                         (counted as downstream_cx_overflow)\n"
"  --l7-header-timeout MS a request head must be complete MS ms after its first\n"
"                         byte, else 408 and close (slowloris; default %u, %u..%u)\n"
"  --l7-drain-time MS     on SIGTERM, HTTP/2 clients get GOAWAY, HTTP/1.1 responses\n"
"                         Connection: close (idle kept-alive connections close), and\n"
"                         requests in flight up to MS ms to complete before the proxy closes\n"
"                         (default %u, max %u; 0 = close at once)\n"
"  --h2-max-concurrent-streams N  HTTP/2 streams per client connection, advertised\n"
"                         in SETTINGS (default %u)\n"
"  --h2-max-header-list N decoded bytes per header block; over it the stream is\n"
"                         reset (HPACK bombs; default %u)\n"
"  --h2-max-continuations N  CONTINUATION frames per header block (default %u)\n"
"  --h2-reset-rate N      client RST_STREAMs per second after a burst (rapid\n"
"                         reset; default %u)\n"
"  --h2-max-settings N    entries per SETTINGS frame (default %u)\n"
"  --access-log PATH      Envoy-format access log (\"-\" = stdout; default off)\n"
"  --netns PATH           join this network namespace first (tests, demo)\n"
"  --no-l7-redirect       keep the proxy's own sockets out of the sk_msg short cut\n"
"  --insecure-policy-perms accept policy files writable by non-root users\n"
"  --keep-caps            keep all capabilities (default: drop all but CAP_BPF,\n"
"                         CAP_NET_ADMIN, CAP_NET_BIND_SERVICE, CAP_PERFMON after attaching)\n"
"  --no-redirect          disable the sk_msg short cut node-wide\n"
"  -v, --verbose          more logs (twice: libbpf debug)\n"
"  -h, --help\n"
"\n"
"Map capacities (%u..%u; a policy that does not fit is rejected with file:line:col):\n",
		AGENT_RELOAD_DEBOUNCE_MS, AGENT_RELOAD_DEBOUNCE_MAX_MS,
		AGENT_DEFAULT_PIN, AGENT_DEFAULT_ADMIN, L7_DEFAULT_LISTEN_PORT, AGENT_L7_MAX_CONNS,
		AGENT_L7_MAX_CONNS_MAX, AGENT_L7_HEADER_TIMEOUT_MS, AGENT_L7_HEADER_TIMEOUT_MIN_MS,
		AGENT_L7_HEADER_TIMEOUT_MAX_MS, AGENT_L7_DRAIN_MS, AGENT_L7_DRAIN_MAX_MS,
		PROXY_H2_MAX_CONCURRENT, PROXY_H2_MAX_HEADER_LIST, PROXY_H2_MAX_CONTINUATIONS,
		PROXY_H2_RESET_RATE, PROXY_H2_MAX_SETTINGS, SM_LIMIT_MIN, SM_LIMIT_MAX);
	sm_limits_usage(f);
	fprintf(f, "\nSignals: SIGHUP reloads the policy (and mesh membership); SIGTERM/SIGINT\n"
		"detach and unpin (unless --keep-on-exit).\n");
}

static int agent_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG && log_verbosity < LOG_DEBUG + 1)
		return 0;
	if (level == LIBBPF_INFO && log_verbosity < LOG_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

/*
 * Every proxied connection holds up to two descriptors (client and
 * upstream): raise the soft open-file limit to the hard one and say so
 * when even that cannot hold --l7-max-conns (accept then pauses on EMFILE
 * before the cap is reached).
 */
static void agent_raise_nofile(uint32_t max_conns)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl))
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY && 2ull * max_conns + 256 > rl.rlim_cur)
		log_warn("open-file limit %llu holds fewer than --l7-max-conns %u proxied connections "
			 "(2 descriptors each); raise it (LimitNOFILE) or lower the cap",
			 (unsigned long long)rl.rlim_cur, max_conns);
}

/* Watch the policy directory (or the file's directory, for editors' renames). */
static int agent_watch(struct agent *ag)
{
	char dir[PATH_MAX];
	char *slash;

	ag->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (ag->inotify_fd < 0)
		return -errno;
	snprintf(dir, sizeof(dir), "%s", ag->policy_path);
	if (!ag->policy_is_dir) {
		slash = strrchr(dir, '/');
		if (slash && slash != dir)
			*slash = '\0';
		else
			snprintf(dir, sizeof(dir), "%s", slash ? "/" : ".");
	}
	if (inotify_add_watch(ag->inotify_fd, dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM |
			      IN_DELETE | IN_CREATE) < 0)
		return -errno;
	return 0;
}

/* Remember a changed policy file for the delta reload (each name once). */
static void agent_note_changed(struct agent *ag, const char *name)
{
	for (size_t i = 0; i < ag->n_changed; i++)
		if (!strcmp(ag->changed[i], name))
			return;
	if (ag->n_changed == AGENT_MAX_CHANGED ||
	    !(ag->changed[ag->n_changed] = strdup(name))) {
		ag->changed_all = true;
		return;
	}
	ag->n_changed++;
}

static void agent_inotify(struct agent *ag)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	const char *base = strrchr(ag->policy_path, '/');
	ssize_t n;

	base = base ? base + 1 : ag->policy_path;
	while ((n = read(ag->inotify_fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;

			p += sizeof(*ev) + ev->len;
			if (ev->mask & IN_Q_OVERFLOW) {
				ag->changed_all = true;	/* events lost: reload everything */
				ag->reload_due_ns = dp_now_ns() + ag->reload_debounce_ms * 1000000ull;
				continue;
			}
			if (!ev->len || ev->name[0] == '.')
				continue;
			if (!ag->policy_is_dir && strcmp(ev->name, base))
				continue;
			agent_note_changed(ag, ev->name);
			ag->reload_due_ns = dp_now_ns() + ag->reload_debounce_ms * 1000000ull;
		}
	}
}

/* changed: the files inotify named (a delta when they only change endpoints) */
static void agent_do_reload(struct agent *ag, const char *why, bool changed)
{
	char err[512];
	json_t *diags = json_array();
	int ret;

	log_info("reloading policy (%s)", why);
	ret = changed ? agent_reload_changed(ag, diags, err, sizeof(err)) :
			agent_reload(ag, NULL, 0, false, diags, err, sizeof(err));
	json_decref(ag->last_diags);
	ag->last_diags = diags;
	if (ret) {
		ag->reloads_failed++;
		snprintf(ag->last_error, sizeof(ag->last_error), "%s", err);
		log_err("%s", err);
		if (ret == -EAGAIN) {
			ag->reload_due_ns = dp_now_ns() + APPLY_GRACE_NS;
			log_info("reloading again in %llu ms", APPLY_GRACE_NS / 1000000);
		}
	} else {
		ag->reloads_ok++;
		ag->last_error[0] = '\0';
	}
}

static int agent_parse_listen(const char *s, uint32_t *addr, uint16_t *port)
{
	char ip[INET_ADDRSTRLEN];
	const char *colon = strchr(s, ':');
	size_t n = colon ? (size_t)(colon - s) : strlen(s);

	*port = L7_DEFAULT_LISTEN_PORT;
	if (n >= sizeof(ip))
		return -EINVAL;
	memcpy(ip, s, n);
	ip[n] = '\0';
	if (inet_pton(AF_INET, ip, addr) != 1 || !*addr)
		return -EINVAL;
	if (colon) {
		char *end;
		unsigned long p = strtoul(colon + 1, &end, 10);

		if (*end || !p || p > 65535)
			return -EINVAL;
		*port = (uint16_t)p;
	}
	return 0;
}

/* proxy -> kernel: the VIP a connection was for (and forget it). */
static int agent_orig_dst(void *ctx, uint32_t peer_addr, uint16_t peer_port, struct proxy_orig *o)
{
	struct agent *ag = ctx;
	struct sm_l7_orig_key k = { .addr = peer_addr, .port = htons(peer_port) };
	struct sm_l7_orig_val v;

	if (ag->ld.maps.l7_orig < 0 || bpf_map_lookup_elem(ag->ld.maps.l7_orig, &k, &v))
		return -ENOENT;
	bpf_map_delete_elem(ag->ld.maps.l7_orig, &k);
	o->vip = v.vip;
	o->port = ntohs(v.port);
	o->client_ip = peer_addr;
	o->netns_cookie = v.netns_cookie;
	return 0;
}

/* outlier detection -> kernel backend map, so L4 connects skip the host too. */
static void agent_outlier_event(void *ctx, const struct up_outlier_event *ev)
{
	struct agent *ag = ctx;
	struct sm_be_key k = { .addr = ev->addr, .port = htons(ev->port) };
	char ip[INET_ADDRSTRLEN];
	uint64_t now_ms = dp_now_ns() / 1000000;
	int ret;

	inet_ntop(AF_INET, &ev->addr, ip, sizeof(ip));
	if (ev->ejected) {
		ret = dp_backend_eject(&ag->ld.maps, &k,
				       ev->until_ms > now_ms ? (ev->until_ms - now_ms) * 1000000ull : 1);
		__atomic_add_fetch(&ag->outlier_ejections, 1, __ATOMIC_RELAXED);
		log_info("outlier: ejected %s:%u from %s (%s, %u time(s), for %llu ms)%s", ip, ev->port,
			 ev->cluster ?: "?", ev->reason ?: "?", ev->times_ejected,
			 (unsigned long long)(ev->until_ms > now_ms ? ev->until_ms - now_ms : 0),
			 ret ? " (not in the kernel map)" : "");
	} else {
		dp_backend_restore(&ag->ld.maps, &k);
		__atomic_add_fetch(&ag->outlier_returns, 1, __ATOMIC_RELAXED);
		log_info("outlier: %s:%u returned to %s", ip, ev->port, ev->cluster ?: "?");
	}
}

/*
 * proxy -> sockhash: the proxy's sockets to and from pods join sm_sock_hash
 * (under their own 4-tuple, as sockops keys pod sockets), so a pod -> agent
 * -> pod hop on this node rides the sk_msg short cut on both legs. The
 * sticky per-socket decision in sm_redir applies to them as to any socket.
 * sockops does not run for them (the agent is outside the mesh cgroup), so
 * on close the agent itself drops the sm_redir_tgt and sm_sock_off marks.
 * Loopback is never used on these legs, so the netns cookie stays 0.
 */
static void agent_sock_hook(void *ctx, int fd, bool open)
{
	struct agent *ag = ctx;
	struct sockaddr_in l, r;
	socklen_t ll = sizeof(l), rl = sizeof(r);
	struct sm_sock_key k = {};

	if (ag->ld.maps.sock_hash < 0 || getsockname(fd, (struct sockaddr *)&l, &ll) ||
	    getpeername(fd, (struct sockaddr *)&r, &rl) || l.sin_family != AF_INET ||
	    (ntohl(l.sin_addr.s_addr) >> 24) == 127)
		return;
	k.sip = l.sin_addr.s_addr;
	k.dip = r.sin_addr.s_addr;
	k.sport = l.sin_port;
	k.dport = r.sin_port;
	if (open) {
		__u64 v = (__u64)fd;	/* sm_sock_hash values are 8 bytes */

		static int warned;

		if (bpf_map_update_elem(ag->ld.maps.sock_hash, &k, &v, BPF_NOEXIST) &&
		    !__atomic_exchange_n(&warned, 1, __ATOMIC_RELAXED))
			log_warn("proxy socket not added to sm_sock_hash: %s (the proxy's hops use TCP)",
				 strerror(errno));
	} else {
		if (ag->ld.maps.redir_tgt >= 0)
			bpf_map_delete_elem(ag->ld.maps.redir_tgt, &k);
		if (ag->ld.maps.sock_off >= 0)
			bpf_map_delete_elem(ag->ld.maps.sock_off, &k);
	}
}

/* The proxy's heartbeat for connect4 (sm_l7_alive): a thread of its own,
 * so a long reload on the main loop does not look like a dead agent. */
static volatile int agent_beat_stop;

static void *agent_beat_main(void *arg)
{
	struct agent *ag = arg;
	__u32 zero = 0;

	while (!agent_beat_stop) {
		__u64 now = dp_now_ns();

		bpf_map_update_elem(ag->ld.maps.l7_alive, &zero, &now, BPF_ANY);
		usleep(SM_L7_BEAT_NS / 1000);
	}
	return NULL;
}

static int agent_start_proxy(struct agent *ag, char *err, size_t errlen)
{
	struct proxy_opts o = {
		.workers = ag->workers,
		.listen_addr = ag->l7_addr,
		.listen_port = ag->l7_port,
		.gateway_bind = ag->gateway_bind,
		.max_conns = ag->l7_max_conns,
		.header_timeout_ms = ag->l7_header_timeout_ms,
		.idle_timeout_ms = 60000,
		.orig_dst = agent_orig_dst,
		.orig_dst_ctx = ag,
		.up = ag->up,
		.access_log_fd = ag->access_log_fd,
		.sock_hook = ag->l7_redirect ? agent_sock_hook : NULL,
		.sock_hook_ctx = ag,
		.h2 = ag->h2,
	};

	agent_raise_nofile(ag->l7_max_conns);
	ag->proxy = proxy_start(&o, l7_config_get(ag->l7), err, errlen);
	if (!ag->proxy)
		return -EINVAL;
	if (ag->ld.maps.l7_alive >= 0 && pthread_create(&ag->beat_thread, NULL, agent_beat_main, ag) == 0)
		ag->beat_running = true;
	return 0;
}

/* Last kernel connect-failure count seen per backend (UINT64_MAX = new). */
static uint64_t *agent_cfail_seen(struct agent *ag, const struct sm_be_key *k)
{
	uint64_t id = dp_meta_be_id(k);	/* never 0 for a real backend */
	uint64_t *v;

	if (!ag->cfail_seen.cap && u64map_init(&ag->cfail_seen, 64))
		return NULL;
	v = u64map_get(&ag->cfail_seen, id);
	if (v)
		return v;
	v = malloc(sizeof(*v));
	if (!v || u64map_put(&ag->cfail_seen, id, v)) {
		free(v);
		return NULL;
	}
	*v = UINT64_MAX;
	return v;
}

/*
 * Every tick: outlier returns; every second: connect failures the kernel
 * counted for L7 hosts feed the same detector.
 */
static void agent_l7_tick(struct agent *ag, uint64_t now_ns)
{
	struct l7_config *c = ag->l7;

	if (!ag->up || !c)
		return;
	up_outlier_tick(ag->up, c, now_ns / 1000000);
	if (now_ns - ag->last_cfail_scan_ns < 1000000000ull)
		return;
	ag->last_cfail_scan_ns = now_ns;
	for (size_t i = 0; i < c->n_clusters; i++) {
		const struct l7_cluster *cl = l7_config_cluster(c, i);

		if (!cl->outlier.enabled)
			continue;
		for (size_t h = 0; h < cl->n_hosts; h++) {
			struct sm_be_key k = { .addr = cl->hosts[h].addr, .port = htons(cl->hosts[h].port) };
			uint64_t st[2], *seen;

			if (dp_percpu_sum(ag->ld.maps.be_stats, &k, st, 2))
				continue;
			seen = agent_cfail_seen(ag, &k);
			if (seen && *seen != UINT64_MAX && st[1] > *seen)
				up_outlier_connect_failures(ag->up, cl, &cl->hosts[h], st[1] - *seen,
							    now_ns / 1000000);
			if (seen)
				*seen = st[1];
		}
	}
}

/*
 * A policy anyone but root can write is a way into every pod's traffic:
 * refuse it (and its directory) unless the operator says otherwise.
 */
static int agent_check_policy_perms(const char *path, bool is_dir, char *err, size_t errlen)
{
	struct stat st;

	if (stat(path, &st))
		return -errno;
	if (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH))) {
		snprintf(err, errlen, "policy %s %s %s: writable by non-root users (owner uid %u, mode %03o); "
			 "fix the permissions or pass --insecure-policy-perms", is_dir ? "directory" : "file",
			 path, is_dir ? "is" : "is", st.st_uid, st.st_mode & 0777);
		return -EPERM;
	}
	if (is_dir) {
		DIR *d = opendir(path);
		struct dirent *de;
		char f[PATH_MAX];
		int ret = 0;

		if (!d)
			return -errno;
		while (!ret && (de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			snprintf(f, sizeof(f), "%s/%s", path, de->d_name);
			ret = agent_check_policy_perms(f, false, err, errlen);
			if (ret == -ENOENT)
				ret = 0;
		}
		closedir(d);
		return ret;
	}
	return 0;
}

/*
 * After attaching, keep only what the running agent needs: CAP_BPF (map
 * reads and writes: kernel.unprivileged_bpf_disabled), CAP_NET_ADMIN
 * (program swap on a future adoption is done at start, but SO_* tuning of
 * proxy sockets may need it) and CAP_NET_BIND_SERVICE (Gateway ports < 1024).
 * Everything else (CAP_SYS_ADMIN, CAP_DAC_OVERRIDE, ...) goes, so a bug in
 * the proxy cannot be turned into a root shell's worth of privilege.
 */
static int agent_drop_caps(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = {};
	static const int keep[] = { CAP_NET_ADMIN, CAP_NET_BIND_SERVICE, 39 /* CAP_BPF */,
				    38 /* CAP_PERFMON */ };

	for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
		data[keep[i] / 32].effective |= 1u << (keep[i] % 32);
		data[keep[i] / 32].permitted |= 1u << (keep[i] % 32);
	}
	if (prctl(PR_SET_KEEPCAPS, 0) || syscall(SYS_capset, &hdr, data))
		return -errno;
	return 0;
}

/* ---- command line: one table of options ---- */

/* What the command line decides beyond struct agent. */
struct agent_args {
	const char *cgroup, *pin, *netns, *kubepods, *node_name;
	const char *kubeconfig;		/* --kubeconfig: objects from the API */
	bool in_cluster;		/* --in-cluster: the same, service account */
	bool insecure_perms, keep_caps;
	uint32_t cfg_flags;		/* SM_CFG_F_* */
};

struct agent_opt;
typedef int (*agent_opt_fn)(struct agent *ag, struct agent_args *a, const char *arg,
			    const struct agent_opt *o);

/*
 * One command-line option: its name, short letter (0: none), whether it
 * takes an argument, bounds for a number or what a valid value looks like
 * (for the error message) and the function that stores it. A setter
 * returns 0 or -EINVAL; the parser prints "--NAME ARG: expected ..." once.
 */
struct agent_opt {
	const char *name;
	int short_opt;
	int has_arg;
	agent_opt_fn set;
	uint64_t min, max;		/* a number in min..max (max 0: not a number) */
	const char *expect;		/* else: what a valid value looks like */
	const char *unit;		/* of the number, for the message */
	size_t off, size;		/* opt_arg_* / opt_ag_*: the field set */
};

static int agent_opt_uint(const char *arg, const struct agent_opt *o, uint64_t *v)
{
	return sm_parse_uint(arg, o->min, o->max, v) ? -EINVAL : 0;
}

/* A string option kept as given: a field of struct agent_args. */
static int opt_arg_str(struct agent *ag, struct agent_args *a, const char *arg,
		       const struct agent_opt *o)
{
	*(const char **)((char *)a + o->off) = arg;
	return 0;
}

/* A flag: a bool of struct agent_args. */
static int opt_arg_true(struct agent *ag, struct agent_args *a, const char *arg,
			const struct agent_opt *o)
{
	*(bool *)((char *)a + o->off) = true;
	return 0;
}

/* A flag: a bool of struct agent. */
static int opt_ag_true(struct agent *ag, struct agent_args *a, const char *arg,
		       const struct agent_opt *o)
{
	*(bool *)((char *)ag + o->off) = true;
	return 0;
}

/* A number in o->min..o->max into an unsigned field of struct agent (o->size bytes). */
static int opt_ag_uint(struct agent *ag, struct agent_args *a, const char *arg,
		       const struct agent_opt *o)
{
	uint64_t v;
	uint32_t v32;

	if (agent_opt_uint(arg, o, &v))
		return -EINVAL;
	if (o->size == sizeof(v)) {
		memcpy((char *)ag + o->off, &v, sizeof(v));
		return 0;
	}
	v32 = (uint32_t)v;	/* max fits: the table says so */
	memcpy((char *)ag + o->off, &v32, sizeof(v32));
	return 0;
}

/* A path copied into a char array of struct agent (o->size bytes). */
static int opt_ag_path(struct agent *ag, struct agent_args *a, const char *arg,
		       const struct agent_opt *o)
{
	int n = snprintf((char *)ag + o->off, o->size, "%s", arg);

	return n < 0 || (size_t)n >= o->size ? -ENAMETOOLONG : 0;
}

static int opt_no_redirect(struct agent *ag, struct agent_args *a, const char *arg,
			   const struct agent_opt *o)
{
	a->cfg_flags &= ~SM_CFG_F_REDIRECT;
	return 0;
}

static int opt_l7_listen(struct agent *ag, struct agent_args *a, const char *arg,
			 const struct agent_opt *o)
{
	if (agent_parse_listen(arg, &ag->l7_addr, &ag->l7_port))
		return -EINVAL;
	ag->l7_enabled = true;
	return 0;
}

static int opt_gateway_bind(struct agent *ag, struct agent_args *a, const char *arg,
			    const struct agent_opt *o)
{
	return inet_pton(AF_INET, arg, &ag->gateway_bind) == 1 ? 0 : -EINVAL;
}

static int opt_access_log(struct agent *ag, struct agent_args *a, const char *arg,
			  const struct agent_opt *o)
{
	if (ag->access_log_fd >= 0)
		close(ag->access_log_fd);
	ag->access_log_fd = strcmp(arg, "-") ? open(arg, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
						     0640) : dup(1);
	if (ag->access_log_fd < 0) {
		fprintf(stderr, "sockmesh-agent: --access-log %s: %s\n", arg, strerror(errno));
		return -errno;
	}
	return 0;
}

static int opt_no_l7_redirect(struct agent *ag, struct agent_args *a, const char *arg,
			      const struct agent_opt *o)
{
	ag->l7_redirect = false;
	return 0;
}

static int opt_verbose(struct agent *ag, struct agent_args *a, const char *arg,
		       const struct agent_opt *o)
{
	log_verbosity++;
	return 0;
}

#define AGENT_OPT_HELP 'h'

/* name, short letter (0: none), argument, setter[, .min/.max/.unit or .expect] */
#define AGENT_OPT(n, s, arg, fn, ...) \
	{ .name = (n), .short_opt = (s), .has_arg = (arg), .set = (fn), __VA_ARGS__ }

#define ARG_FIELD(f) .off = offsetof(struct agent_args, f)
#define AG_FLAG(f) .off = offsetof(struct agent, f)
#define AG_PATH(f) .off = offsetof(struct agent, f), .size = sizeof(((struct agent *)0)->f)
/* an unsigned number (int workers: 1..256 fits) */
#define AG_FIELD(f) AG_PATH(f)

_Static_assert(sizeof(((struct agent *)0)->workers) == sizeof(uint32_t), "--workers: 4 bytes");
_Static_assert(sizeof(((struct agent *)0)->l7_max_conns) == sizeof(uint32_t), "4 bytes");
_Static_assert(sizeof(((struct agent *)0)->l7_header_timeout_ms) == sizeof(uint64_t), "8 bytes");
_Static_assert(sizeof(((struct agent *)0)->l7_drain_ms) == sizeof(uint32_t), "4 bytes");
_Static_assert(sizeof(((struct agent *)0)->reload_debounce_ms) == sizeof(uint64_t), "8 bytes");
_Static_assert(sizeof(((struct agent *)0)->h2.max_concurrent_streams) == sizeof(uint32_t) &&
	       sizeof(((struct agent *)0)->h2.max_header_list) == sizeof(uint32_t) &&
	       sizeof(((struct agent *)0)->h2.max_continuations) == sizeof(uint32_t) &&
	       sizeof(((struct agent *)0)->h2.reset_rate) == sizeof(uint32_t) &&
	       sizeof(((struct agent *)0)->h2.max_settings) == sizeof(uint32_t), "--h2-*: 4 bytes");

static const struct agent_opt agent_opts[] = {
	AGENT_OPT("cgroup", 'c', required_argument, opt_arg_str, ARG_FIELD(cgroup)),
	AGENT_OPT("kubepods-cgroup", 0, required_argument, opt_arg_str, ARG_FIELD(kubepods)),
	AGENT_OPT("node-name", 0, required_argument, opt_arg_str, ARG_FIELD(node_name)),
	AGENT_OPT("policy", 'p', required_argument, opt_ag_path, AG_PATH(policy_path),
		  .expect = "a shorter path"),
	AGENT_OPT("kubeconfig", 0, required_argument, opt_arg_str, ARG_FIELD(kubeconfig)),
	AGENT_OPT("in-cluster", 0, no_argument, opt_arg_true, ARG_FIELD(in_cluster)),
	AGENT_OPT("pin-path", 'P', required_argument, opt_arg_str, ARG_FIELD(pin)),
	AGENT_OPT("admin-socket", 'a', required_argument, opt_ag_path, AG_PATH(admin_path),
		  .expect = "a shorter path"),
	AGENT_OPT("admin-listen", 0, required_argument, opt_ag_path, AG_PATH(admin_tcp),
		  .expect = "ADDR:PORT"),
	AGENT_OPT("keep-on-exit", 'k', no_argument, opt_ag_true, AG_FLAG(keep_on_exit)),
	AGENT_OPT("no-redirect", 'R', no_argument, opt_no_redirect),
	AGENT_OPT("l7-listen", 0, required_argument, opt_l7_listen, .expect = "IPv4[:PORT]"),
	AGENT_OPT("gateway-bind", 0, required_argument, opt_gateway_bind, .expect = "IPv4"),
	AGENT_OPT("workers", 0, required_argument, opt_ag_uint, AG_FIELD(workers), .min = 1, .max = 256),
	AGENT_OPT("access-log", 0, required_argument, opt_access_log),
	AGENT_OPT("netns", 0, required_argument, opt_arg_str, ARG_FIELD(netns)),
	AGENT_OPT("insecure-policy-perms", 0, no_argument, opt_arg_true, ARG_FIELD(insecure_perms)),
	AGENT_OPT("keep-caps", 0, no_argument, opt_arg_true, ARG_FIELD(keep_caps)),
	AGENT_OPT("no-l7-redirect", 0, no_argument, opt_no_l7_redirect),
	AGENT_OPT("l7-max-conns", 0, required_argument, opt_ag_uint, AG_FIELD(l7_max_conns),
		  .min = 1, .max = AGENT_L7_MAX_CONNS_MAX, .unit = " connections"),
	AGENT_OPT("l7-header-timeout", 0, required_argument, opt_ag_uint,
		  AG_FIELD(l7_header_timeout_ms), .min = AGENT_L7_HEADER_TIMEOUT_MIN_MS,
		  .max = AGENT_L7_HEADER_TIMEOUT_MAX_MS, .unit = " milliseconds"),
	AGENT_OPT("l7-drain-time", 0, required_argument, opt_ag_uint, AG_FIELD(l7_drain_ms),
		  .min = 0, .max = AGENT_L7_DRAIN_MAX_MS, .unit = " milliseconds"),
	AGENT_OPT("h2-max-concurrent-streams", 0, required_argument, opt_ag_uint,
		  AG_FIELD(h2.max_concurrent_streams), .min = 1, .max = 1u << 20, .unit = " streams"),
	AGENT_OPT("h2-max-header-list", 0, required_argument, opt_ag_uint,
		  AG_FIELD(h2.max_header_list), .min = 1024, .max = 1u << 20, .unit = " bytes"),
	AGENT_OPT("h2-max-continuations", 0, required_argument, opt_ag_uint,
		  AG_FIELD(h2.max_continuations), .min = 1, .max = 1024, .unit = " frames"),
	AGENT_OPT("h2-reset-rate", 0, required_argument, opt_ag_uint,
		  AG_FIELD(h2.reset_rate), .min = 1, .max = 1u << 20, .unit = " resets per second"),
	AGENT_OPT("h2-max-settings", 0, required_argument, opt_ag_uint,
		  AG_FIELD(h2.max_settings), .min = 7, .max = 1024, .unit = " entries"),
	AGENT_OPT("reload-debounce", 0, required_argument, opt_ag_uint,
		  AG_FIELD(reload_debounce_ms), .min = 0, .max = AGENT_RELOAD_DEBOUNCE_MAX_MS,
		  .unit = " milliseconds"),
	AGENT_OPT("verbose", 'v', no_argument, opt_verbose),
	AGENT_OPT("help", AGENT_OPT_HELP, no_argument, NULL),
};

#define AGENT_N_OPTS (sizeof(agent_opts) / sizeof(agent_opts[0]))
/* getopt values of long-only options: past every character */
#define AGENT_OPT_LONG 1000
/* getopt value of the --max-* capacities (sm_limits) */
#define AGENT_OPT_LIMIT 1

static const struct agent_opt *agent_opt_find(int c)
{
	if (c >= AGENT_OPT_LONG && c < AGENT_OPT_LONG + (int)AGENT_N_OPTS)
		return &agent_opts[c - AGENT_OPT_LONG];
	for (size_t i = 0; i < AGENT_N_OPTS; i++)
		if (agent_opts[i].short_opt && agent_opts[i].short_opt == c)
			return &agent_opts[i];
	return NULL;
}

enum { AGENT_PARSE_OK = 0, AGENT_PARSE_FAIL, AGENT_PARSE_HELP };

/* Defaults, then the command line, then what the options require of each other. */
static int agent_parse(int argc, char **argv, struct agent *ag, struct agent_args *a)
{
	struct option opts[AGENT_N_OPTS + SM_LIMIT_COUNT + 1] = {};
	char shorts[2 * AGENT_N_OPTS + 1] = "";
	struct stat st;
	size_t ns = 0;
	int c, idx = 0;

	memset(a, 0, sizeof(*a));
	a->pin = AGENT_DEFAULT_PIN;
	a->cfg_flags = SM_CFG_F_REDIRECT;
	snprintf(ag->admin_path, sizeof(ag->admin_path), "%s", AGENT_DEFAULT_ADMIN);
	ag->admin_fd = -1;
	ag->admin_tcp_fd = -1;
	ag->inotify_fd = -1;
	ag->access_log_fd = -1;
	ag->l7_redirect = true;
	ag->l7_max_conns = AGENT_L7_MAX_CONNS;
	ag->l7_header_timeout_ms = AGENT_L7_HEADER_TIMEOUT_MS;
	ag->l7_drain_ms = AGENT_L7_DRAIN_MS;
	ag->reload_debounce_ms = AGENT_RELOAD_DEBOUNCE_MS;
	sm_limits_init(&ag->limits);

	for (size_t i = 0; i < AGENT_N_OPTS; i++) {
		const struct agent_opt *o = &agent_opts[i];

		opts[i] = (struct option){ o->name, o->has_arg, NULL,
					   o->short_opt ? o->short_opt : AGENT_OPT_LONG + (int)i };
		if (o->short_opt) {
			shorts[ns++] = (char)o->short_opt;
			if (o->has_arg == required_argument)
				shorts[ns++] = ':';
		}
	}
	sm_limits_options(opts + AGENT_N_OPTS, AGENT_OPT_LIMIT);
	while ((c = getopt_long(argc, argv, shorts, opts, &idx)) != -1) {
		const struct agent_opt *o;

		if (c == AGENT_OPT_LIMIT) {
			if (sm_limits_set(&ag->limits, opts[idx].name, optarg)) {
				fprintf(stderr, "sockmesh-agent: --%s: expected %u..%u\n", opts[idx].name,
					SM_LIMIT_MIN, SM_LIMIT_MAX);
				return AGENT_PARSE_FAIL;
			}
			continue;
		}
		if (c == AGENT_OPT_HELP) {
			usage(stdout);
			return AGENT_PARSE_HELP;
		}
		o = agent_opt_find(c);
		if (!o) {
			usage(stderr);
			return AGENT_PARSE_FAIL;
		}
		if (o->set(ag, a, optarg, o)) {
			if (o->max)
				fprintf(stderr, "sockmesh-agent: --%s %s: expected %llu..%llu%s\n",
					o->name, optarg ?: "", (unsigned long long)o->min,
					(unsigned long long)o->max, o->unit ?: "");
			else if (o->expect)
				fprintf(stderr, "sockmesh-agent: --%s %s: expected %s\n", o->name,
					optarg ?: "", o->expect);
			return AGENT_PARSE_FAIL;
		}
	}
	if (!!ag->policy_path[0] + !!a->kubeconfig + a->in_cluster > 1) {
		fprintf(stderr, "sockmesh-agent: --policy, --kubeconfig and --in-cluster exclude each "
			"other (one source of objects)\n");
		return AGENT_PARSE_FAIL;
	}
	if ((!a->cgroup && !a->kubepods) || (!ag->policy_path[0] && !a->kubeconfig && !a->in_cluster) ||
	    optind != argc) {
		fprintf(stderr, "sockmesh-agent: --kubepods-cgroup (or --cgroup) and --policy are "
			"required (or --kubeconfig or --in-cluster instead of --policy)\n");
		usage(stderr);
		return AGENT_PARSE_FAIL;
	}
	if (a->cgroup && a->kubepods) {
		fprintf(stderr, "sockmesh-agent: --cgroup and --kubepods-cgroup exclude each other\n");
		return AGENT_PARSE_FAIL;
	}
	if (a->node_name && !a->kubepods) {
		fprintf(stderr, "sockmesh-agent: --node-name needs --kubepods-cgroup\n");
		return AGENT_PARSE_FAIL;
	}
	if (ag->policy_path[0] && stat(ag->policy_path, &st)) {
		fprintf(stderr, "sockmesh-agent: policy %s: %s\n", ag->policy_path, strerror(errno));
		return AGENT_PARSE_FAIL;
	}
	ag->policy_is_dir = ag->policy_path[0] && S_ISDIR(st.st_mode);
	return AGENT_PARSE_OK;
}

/* ---- start, loop, stop ---- */

/*
 * Check the node, load and plan the policy, load the data path, fill it,
 * attach, start the proxy and the admin API. Returns 0 (running), 1 (failed
 * before the data path was loaded: nothing to undo) or -1 (failed after:
 * agent_stop undoes it).
 */
static int agent_start(struct agent *ag, const struct agent_args *a, int *sfd)
{
	const char *what = a->cgroup ?: a->kubepods;
	struct agent_prepared prepared;
	char kubepods_real[PATH_MAX];
	uint32_t cfg_flags = a->cfg_flags;
	char err[1024];
	sigset_t mask;
	int ret;

	libbpf_set_print(agent_libbpf_print);
	if (ag->policy_path[0] && !a->insecure_perms &&
	    (ret = agent_check_policy_perms(ag->policy_path, ag->policy_is_dir, err, sizeof(err)))) {
		fprintf(stderr, "sockmesh-agent: %s\n", ret == -EPERM ? err : strerror(-ret));
		return 1;
	}
	if (a->netns) {
		int fd = open(a->netns, O_RDONLY | O_CLOEXEC);

		if (fd < 0 || setns(fd, CLONE_NEWNET)) {
			fprintf(stderr, "sockmesh-agent: --netns %s: %s\n", a->netns, strerror(errno));
			return 1;
		}
		close(fd);
	}
	if ((ret = loader_check_node(what, a->pin, err, sizeof(err))) ||
	    (a->kubepods && (ret = loader_check_kubepods_root(a->kubepods, kubepods_real,
							      sizeof(kubepods_real), err,
							      sizeof(err))))) {
		fprintf(stderr, "sockmesh-agent: %s\n", err);
		return 1;
	}
	if (a->kubepods)
		members_init(&ag->mb, kubepods_real, a->node_name, a->pin);

	/* Load and plan the policy before touching the kernel: a bad file at
	 * start must not leave a half-configured data path behind. The plan
	 * is applied once the maps are there (one parse, not two). */
	ag->last_diags = json_array();
	ag->pcache = policy_cache_new();
	if (!ag->pcache) {
		fprintf(stderr, "sockmesh-agent: out of memory\n");
		return 1;
	}
	/* from the API: the first apply once every kind has been listed */
	if ((a->kubeconfig || a->in_cluster) &&
	    (ret = agent_kube_start(ag, a->kubeconfig, a->node_name, err, sizeof(err)))) {
		fprintf(stderr, "sockmesh-agent: %s\n", err);
		json_decref(ag->last_diags);
		ag->last_diags = NULL;
		policy_cache_free(ag->pcache);
		ag->pcache = NULL;
		return 1;
	}
	/* /ready can say which kinds are still syncing while they do */
	if (ag->kube && (ret = admin_listen(ag, err, sizeof(err)))) {
		fprintf(stderr, "sockmesh-agent: %s\n", err);
		json_decref(ag->last_diags);
		ag->last_diags = NULL;
		agent_kube_stop(ag);
		policy_cache_free(ag->pcache);
		ag->pcache = NULL;
		return 1;
	}
	/* blocked from here: a stop while the API server lists undoes the load */
	sigemptyset(&mask);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	*sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);

	if (ag->kube) {
		uint64_t t0 = dp_now_ns();

		ag->starting = true;
		/*
		 * The data path loads (verifier, map creation: about half a
		 * second) while the client's thread lists. Nothing is written
		 * or attached until the first apply: new maps stay empty, an
		 * adopted data path keeps serving what it holds.
		 */
		if ((ret = loader_load(&ag->ld, a->cgroup ?: "", a->pin, &ag->limits, err,
				       sizeof(err)))) {
			fprintf(stderr, "sockmesh-agent: %s\n", err);
			json_decref(ag->last_diags);
			ag->last_diags = NULL;
			agent_kube_stop(ag);
			admin_close(ag);
			policy_cache_free(ag->pcache);
			ag->pcache = NULL;
			return 1;
		}
		log_info("data path loaded in %.1f ms while the API server lists",
			 (dp_now_ns() - t0) / 1e6);
		if (agent_kube_wait_synced(ag))
			return -1;	/* stopped before the first sync */
	}
	ret = ag->kube ? agent_kube_prepare(ag, ag->last_diags, &prepared, err, sizeof(err)) :
			 agent_prepare(ag, NULL, 0, false, ag->last_diags, &prepared, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "sockmesh-agent: %s\n", err);
		if (ag->kube)
			return -1;	/* the data path is loaded: agent_stop undoes it */
		json_decref(ag->last_diags);
		ag->last_diags = NULL;
		if (ag->admin_fd >= 0)
			admin_close(ag);
		policy_cache_free(ag->pcache);
		ag->pcache = NULL;
		return 1;
	}

	if (!ag->kube &&
	    (ret = loader_load(&ag->ld, a->cgroup ?: "", a->pin, &ag->limits, err, sizeof(err)))) {
		fprintf(stderr, "sockmesh-agent: %s\n", err);
		agent_prepared_free(&prepared);
		policy_cache_free(ag->pcache);
		ag->pcache = NULL;
		json_decref(ag->last_diags);
		ag->last_diags = NULL;
		if (ag->admin_fd >= 0)
			admin_close(ag);
		return 1;
	}
	/* Knowing its node, the agent keeps off-node peers out of the sockhash. */
	if (a->kubepods && a->node_name && (cfg_flags & SM_CFG_F_REDIRECT))
		cfg_flags |= SM_CFG_F_LOCAL_ONLY;
	if ((ret = apply_init(&ag->ap, &ag->ld.maps, cfg_flags))) {
		fprintf(stderr, "sockmesh-agent: %s\n", strerror(-ret));
		agent_prepared_free(&prepared);
		return -1;
	}
	/* Fresh maps hold nothing foreign: the full sweep (a syscall per entry)
	 * is only for a data path adopted from an earlier agent. */
	if (!ag->ld.adopted_maps)
		ag->ap.sweep_due_ns = 0;
	ag->up = up_registry_new(agent_outlier_event, ag);
	if (!ag->up) {
		fprintf(stderr, "sockmesh-agent: out of memory\n");
		agent_prepared_free(&prepared);
		return -1;
	}
	ag->ap.defer_names = true;	/* written once attached, below */
	ag->ap.l7_addr = ag->l7_enabled ? ag->l7_addr : 0;
	ag->ap.l7_port = ag->l7_enabled ? htons(ag->l7_port) : 0;
	/* Fill the maps before attaching: the first connect sees a whole config. */
	ret = agent_commit(ag, &prepared, NULL, 0, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "sockmesh-agent: %s\n", err);
		return -1;
	}
	ag->reloads_ok++;
	ag->starting = false;
	if ((ret = loader_attach(&ag->ld, err, sizeof(err)))) {
		fprintf(stderr, "sockmesh-agent: %s\n", err);
		return -1;
	}
	if (ag->kube)
		agent_kube_log_ready(ag);
	ag->ap.defer_names = false;
	apply_flush_names(&ag->ap);
	if (ag->mb.enabled) {
		/* sk_msg is on the sockhash now: sockets sockops adds get it */
		ag->mb.live = true;
		members_reconcile(&ag->mb, &ag->ld);
		members_sweep_pins(&ag->mb, &ag->ld);
		ag->mb.next_scan_ns = dp_now_ns() + MEMBERS_RESCAN_NS;
	}
	if (ag->l7_enabled && (ret = agent_start_proxy(ag, err, sizeof(err)))) {
		fprintf(stderr, "sockmesh-agent: %s\n", err);
		return -1;
	}
	if (ag->admin_fd < 0 && (ret = admin_listen(ag, err, sizeof(err)))) {
		fprintf(stderr, "sockmesh-agent: %s\n", err);
		return -1;
	}
	if (!ag->kube && (ret = agent_watch(ag)))
		log_warn("cannot watch %s (%s): reload with SIGHUP", ag->policy_path, strerror(-ret));
	ag->started_ns = dp_now_ns();
	if (!a->keep_caps && geteuid() == 0 && (ret = agent_drop_caps()))
		log_warn("could not drop capabilities: %s", strerror(-ret));
	if (ag->mb.enabled) {
		size_t nm, na, np;

		members_counts(&ag->mb, &nm, &na, &np);
		log_info("attaching per mesh pod under %s%s%s: %zu member(s), %zu attached, %zu pending "
			 "(%s pinned data path at %s), admin API at %s", ag->mb.root,
			 a->node_name ? ", node " : "", a->node_name ?: "", nm, na, np,
			 ag->ld.adopted_maps ? "adopted the" : "new", a->pin, ag->admin_path);
	} else {
		log_info("attached to %s (%s pinned data path at %s), admin API at %s",
			 a->cgroup, ag->ld.adopted_maps ? "adopted the" : "new", a->pin, ag->admin_path);
	}
	for (int i = 0; i < ag->ld.n_progs; i++)
		log_info("  %-14s %-28s prog id %u%s", ag->ld.progs[i].name, ag->ld.progs[i].attach,
			 ag->ld.progs[i].prog_id, ag->ld.progs[i].adopted ? " (replaced in place)" : "");
	for (int i = 0; i < ag->ld.n_replaced; i++)
		log_info("  pinned map %s had another layout (another version or --max-* size): "
			 "replaced by a new one, filled before the programs were swapped",
			 ag->ld.replaced[i]);
	return 0;
}

/* Signals, policy file changes, admin requests, timers; until SIGTERM/SIGINT. */
static void agent_loop(struct agent *ag, int sfd)
{
	bool running = true, sweeping = false, held = false;

	while (running) {
		struct pollfd pfd[AGENT_MAX_ADMIN_CONNS + 5];
		int n = 0, na, nev, timeout = 250;
		uint64_t now = dp_now_ns();

		pfd[n++] = (struct pollfd){ .fd = sfd, .events = POLLIN };
		pfd[n++] = (struct pollfd){ .fd = ag->inotify_fd, .events = POLLIN };
		pfd[n++] = (struct pollfd){ .fd = agent_kube_pollfd(ag), .events = POLLIN };
		na = admin_pollfds(ag, pfd + n, AGENT_MAX_ADMIN_CONNS + 2);
		if (ag->reload_due_ns)
			timeout = ag->reload_due_ns > now ? (int)((ag->reload_due_ns - now) / 1000000) + 1 : 0;
		if (ag->kube && agent_kube_timeout_ms(ag, now) < timeout)
			timeout = agent_kube_timeout_ms(ag, now);
		if (sweeping)
			timeout = 0;	/* the next slice once what waits is served */
		nev = poll(pfd, n + na, timeout);
		if (nev < 0 && errno != EINTR)
			break;
		if (pfd[0].revents) {
			struct signalfd_siginfo si;

			while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGHUP)
					agent_do_reload(ag, "SIGHUP", false);
				else
					running = false;
			}
		}
		if (pfd[1].revents)
			agent_inotify(ag);
		admin_handle(ag, pfd + n, na);
		now = dp_now_ns();
		agent_kube_tick(ag, pfd[2].revents, now);
		if (ag->reload_due_ns && ag->reload_due_ns <= now) {
			ag->reload_due_ns = 0;
			agent_do_reload(ag, "policy files changed", true);
		}
		admin_expire(ag, now);
		/*
		 * A sweep slice per turn; a turn that had events holds its slice
		 * back once, so what they started (an admin request is accepted
		 * in one turn, read and answered in the next) is served before it.
		 */
		if (sweeping && nev > 0 && !held) {
			held = true;
		} else {
			held = false;
			sweeping = ag->ap.sweep.at || (ag->ap.sweep_due_ns > 1 && ag->ap.sweep_due_ns <= now);
			if (!apply_gc(&ag->ap, now) && sweeping)
				log_info("swept the maps: %u stale entries of %u deleted in %.1f ms, "
					 "%u slices, longest %.2f ms (CPU %.2f ms)", ag->ap.sweep.deleted,
					 ag->ap.sweep.walked, ag->ap.sweep.took_ns / 1e6,
					 ag->ap.sweep.slices, ag->ap.sweep.max_slice_ns / 1e6,
					 ag->ap.sweep.max_slice_cpu_ns / 1e6);
			sweeping = ag->ap.sweep.at != 0;	/* slices left: poll, then the next */
		}
		agent_l7_tick(ag, now);
		members_tick(&ag->mb, &ag->ld, now);
	}
}

/*
 * Stop the proxy and the heartbeat, free everything, and detach and unpin
 * unless --keep-on-exit (or a failed start on an adopted data path, which
 * a running node still uses). Returns exit_code.
 */
static int agent_stop(struct agent *ag, int exit_code)
{
	if (ag->beat_running) {
		__u32 zero = 0;
		__u64 gone = 0;

		agent_beat_stop = 1;
		pthread_join(ag->beat_thread, NULL);
		/* say so at once: connect4 balances L7 ports at L4 until the next agent */
		bpf_map_update_elem(ag->ld.maps.l7_alive, &zero, &gone, BPF_ANY);
	}
	/* new connections go L4 now (l7_alive 0); HTTP/2 clients get GOAWAY, streams finish */
	if (ag->proxy && !exit_code)
		proxy_drain(ag->proxy, ag->l7_drain_ms);
	admin_work_stop(ag);	/* its answers read the proxy and the registry */
	agent_kube_stop(ag);
	if (ag->proxy)
		proxy_stop(ag->proxy);
	if (ag->l7)
		l7_config_put(ag->l7);
	if (ag->up)
		up_registry_free(ag->up);
	for (size_t i = 0; i < ag->cfail_seen.cap; i++)
		if (ag->cfail_seen.keys[i])
			free(ag->cfail_seen.vals[i]);
	u64map_free(&ag->cfail_seen);
	admin_close(ag);
	if (ag->inotify_fd >= 0)
		close(ag->inotify_fd);
	apply_fini(&ag->ap);
	agent_cur_drop(ag);
	for (size_t i = 0; i < ag->n_changed; i++)
		free(ag->changed[i]);
	policy_cache_free(ag->pcache);
	/* never tear down a data path adopted from a running node on a failed start */
	members_close(&ag->mb, &ag->ld, ag->keep_on_exit || (exit_code && ag->ld.adopted_maps));
	loader_close(&ag->ld, ag->keep_on_exit || (exit_code && ag->ld.adopted_maps));
	json_decref(ag->last_diags);
	return exit_code;
}

/*
 * jemalloc's options when the agent is linked with it (read at its first
 * allocation; the MALLOC_CONF environment variable still overrides them):
 * a background thread returns freed pages after 1 s instead of waiting for
 * the next allocation to notice them. Measured (scenario 6, the proxy at
 * rest after its policy load): 24.8 MB RSS with jemalloc's defaults, 13.2 MB
 * with these, 11.0 MB with glibc's malloc; requests per CPU-second the same
 * within the noise. glibc's malloc and the ASan agent ignore the symbol.
 */
const char *malloc_conf = "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0";

int main(int argc, char **argv)
{
	static struct agent ag;
	struct agent_args args;
	int ret, sfd = -1;

	log_prog = "sockmesh-agent";
	ret = agent_parse(argc, argv, &ag, &args);
	if (ret != AGENT_PARSE_OK)
		return ret == AGENT_PARSE_HELP ? 0 : 1;
	ret = agent_start(&ag, &args, &sfd);
	if (ret > 0)
		return 1;
	if (ret < 0)
		return agent_stop(&ag, 1);
	agent_loop(&ag, sfd);
	log_info("exiting: %s", ag.keep_on_exit ? "the pinned data path keeps running"
						: "detaching and unpinning");
	return agent_stop(&ag, 0);
}
