// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sockmesh-agent: loads and attaches the kernel data path to one cgroup,
 * keeps its maps filled from the policy files, and serves the admin API.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "agent.h"
#include "log.h"

static void usage(FILE *f)
{
	fprintf(f,
"usage: sockmesh-agent --cgroup PATH --policy FILE|DIR [options]\n"
"\n"
"  --cgroup PATH          cgroup v2 directory to attach to (only there)\n"
"  --policy FILE|DIR      Kubernetes/Istio YAML; a directory is watched (inotify)\n"
"  --pin-path DIR         bpffs directory for maps and links (default %s)\n"
"  --admin-socket PATH    admin API unix socket (default %s)\n"
"  --keep-on-exit         leave the pinned data path running on exit\n"
"  --no-redirect          disable the sk_msg short cut node-wide\n"
"  --max-services N       sm_svc capacity (default %u)\n"
"  --max-clusters N       sm_cluster capacity (default %u)\n"
"  --max-backends N       sm_backend capacity (default %u)\n"
"  --max-sockets N        sm_sock_hash capacity (default %u)\n"
"  -v, --verbose          more logs (twice: libbpf debug)\n"
"  -h, --help\n"
"\n"
"Signals: SIGHUP reloads the policy; SIGTERM/SIGINT detach and unpin\n"
"(unless --keep-on-exit).\n",
		AGENT_DEFAULT_PIN, AGENT_DEFAULT_ADMIN, SM_MAX_SERVICES, SM_MAX_CLUSTERS,
		SM_MAX_BACKENDS, SM_MAX_SOCKS);
}

static int agent_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG && log_verbosity < LOG_DEBUG + 1)
		return 0;
	if (level == LIBBPF_INFO && log_verbosity < LOG_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static int parse_cap(const char *s, uint32_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < 16 || v > (1u << 24))
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
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
			if (!ev->len || ev->name[0] == '.')
				continue;
			if (!ag->policy_is_dir && strcmp(ev->name, base))
				continue;
			ag->reload_due_ns = dp_now_ns() + AGENT_RELOAD_DEBOUNCE_NS;
		}
	}
}

static void agent_do_reload(struct agent *ag, const char *why)
{
	char err[512];
	json_t *diags = json_array();
	int ret;

	log_info("reloading policy (%s)", why);
	ret = agent_reload(ag, NULL, 0, false, diags, err, sizeof(err));
	json_decref(ag->last_diags);
	ag->last_diags = diags;
	if (ret) {
		ag->reloads_failed++;
		snprintf(ag->last_error, sizeof(ag->last_error), "%s", err);
		log_err("%s", err);
	} else {
		ag->reloads_ok++;
		ag->last_error[0] = '\0';
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "cgroup", required_argument, NULL, 'c' },
		{ "policy", required_argument, NULL, 'p' },
		{ "pin-path", required_argument, NULL, 'P' },
		{ "admin-socket", required_argument, NULL, 'a' },
		{ "keep-on-exit", no_argument, NULL, 'k' },
		{ "no-redirect", no_argument, NULL, 'R' },
		{ "max-services", required_argument, NULL, 1 },
		{ "max-clusters", required_argument, NULL, 2 },
		{ "max-backends", required_argument, NULL, 3 },
		{ "max-sockets", required_argument, NULL, 4 },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	static struct agent ag;
	struct loader_caps caps = {};
	const char *cgroup = NULL, *pin = AGENT_DEFAULT_PIN;
	uint32_t cfg_flags = SM_CFG_F_REDIRECT;
	char err[1024];
	struct stat st;
	sigset_t mask;
	int c, sfd, ret, exit_code = 1;
	bool running = true;

	log_prog = "sockmesh-agent";
	snprintf(ag.admin_path, sizeof(ag.admin_path), "%s", AGENT_DEFAULT_ADMIN);
	ag.admin_fd = -1;
	ag.inotify_fd = -1;
	while ((c = getopt_long(argc, argv, "c:p:P:a:kRvh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': cgroup = optarg; break;
		case 'p': snprintf(ag.policy_path, sizeof(ag.policy_path), "%s", optarg); break;
		case 'P': pin = optarg; break;
		case 'a': snprintf(ag.admin_path, sizeof(ag.admin_path), "%s", optarg); break;
		case 'k': ag.keep_on_exit = true; break;
		case 'R': cfg_flags &= ~SM_CFG_F_REDIRECT; break;
		case 1: case 2: case 3: case 4: {
			uint32_t *dst = c == 1 ? &caps.services : c == 2 ? &caps.clusters :
					c == 3 ? &caps.backends : &caps.sockets;

			if (parse_cap(optarg, dst)) {
				fprintf(stderr, "sockmesh-agent: %s: expected 16..16777216\n", opts[c + 5].name);
				return 1;
			}
			break;
		}
		case 'v': log_verbosity++; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 1;
		}
	}
	if (!cgroup || !ag.policy_path[0] || optind != argc) {
		fprintf(stderr, "sockmesh-agent: --cgroup and --policy are required\n");
		usage(stderr);
		return 1;
	}
	if (stat(ag.policy_path, &st)) {
		fprintf(stderr, "sockmesh-agent: policy %s: %s\n", ag.policy_path, strerror(errno));
		return 1;
	}
	ag.policy_is_dir = S_ISDIR(st.st_mode);
	libbpf_set_print(agent_libbpf_print);

	if ((ret = loader_check_node(cgroup, pin, err, sizeof(err)))) {
		fprintf(stderr, "sockmesh-agent: %s\n", err);
		return 1;
	}

	/* Validate the policy before touching the kernel: a bad file at start
	 * must not leave a half-configured data path behind. */
	{
		json_t *d = json_array();

		ret = agent_reload(&ag, NULL, 0, true, d, err, sizeof(err));
		if (ret) {
			for (size_t i = 0; i < json_array_size(d); i++)
				fprintf(stderr, "%s\n", json_string_value(json_array_get(d, i)));
			fprintf(stderr, "sockmesh-agent: %s\n", err);
			json_decref(d);
			return 1;
		}
		json_decref(d);
	}

	sigemptyset(&mask);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);

	if ((ret = loader_load(&ag.ld, cgroup, pin, &caps, err, sizeof(err)))) {
		fprintf(stderr, "sockmesh-agent: %s\n", err);
		return 1;
	}
	if ((ret = apply_init(&ag.ap, &ag.ld.maps, cfg_flags))) {
		fprintf(stderr, "sockmesh-agent: %s\n", strerror(-ret));
		goto out;
	}
	/* Fill the maps before attaching: the first connect sees a whole config. */
	ag.last_diags = json_array();
	ret = agent_reload(&ag, NULL, 0, false, ag.last_diags, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "sockmesh-agent: %s\n", err);
		goto out;
	}
	ag.reloads_ok++;
	if ((ret = loader_attach(&ag.ld, err, sizeof(err)))) {
		fprintf(stderr, "sockmesh-agent: %s\n", err);
		goto out;
	}
	if ((ret = admin_listen(&ag, err, sizeof(err)))) {
		fprintf(stderr, "sockmesh-agent: %s\n", err);
		goto out;
	}
	if ((ret = agent_watch(&ag)))
		log_warn("cannot watch %s (%s): reload with SIGHUP", ag.policy_path, strerror(-ret));
	ag.started_ns = dp_now_ns();
	log_info("attached to %s (%s pinned data path at %s), admin API at %s",
		 cgroup, ag.ld.adopted_maps ? "adopted the" : "new", pin, ag.admin_path);
	for (int i = 0; i < ag.ld.n_progs; i++)
		log_info("  %-14s %-28s prog id %u%s", ag.ld.progs[i].name, ag.ld.progs[i].attach,
			 ag.ld.progs[i].prog_id, ag.ld.progs[i].adopted ? " (replaced in place)" : "");

	while (running) {
		struct pollfd pfd[AGENT_MAX_ADMIN_CONNS + 4];
		int n = 0, na, timeout = 250;
		uint64_t now = dp_now_ns();

		pfd[n++] = (struct pollfd){ .fd = sfd, .events = POLLIN };
		pfd[n++] = (struct pollfd){ .fd = ag.inotify_fd, .events = POLLIN };
		na = admin_pollfds(&ag, pfd + n, AGENT_MAX_ADMIN_CONNS + 2);
		if (ag.reload_due_ns)
			timeout = ag.reload_due_ns > now ? (int)((ag.reload_due_ns - now) / 1000000) + 1 : 0;
		if (poll(pfd, n + na, timeout) < 0 && errno != EINTR)
			break;
		if (pfd[0].revents) {
			struct signalfd_siginfo si;

			while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGHUP)
					agent_do_reload(&ag, "SIGHUP");
				else
					running = false;
			}
		}
		if (pfd[1].revents)
			agent_inotify(&ag);
		admin_handle(&ag, pfd + n, na);
		now = dp_now_ns();
		if (ag.reload_due_ns && ag.reload_due_ns <= now) {
			ag.reload_due_ns = 0;
			agent_do_reload(&ag, "policy files changed");
		}
		admin_expire(&ag, now);
		apply_gc(&ag.ap, now);
	}
	exit_code = 0;
	log_info("exiting: %s", ag.keep_on_exit ? "the pinned data path keeps running"
						 : "detaching and unpinning");
out:
	admin_close(&ag);
	if (ag.inotify_fd >= 0)
		close(ag.inotify_fd);
	apply_fini(&ag.ap);
	/* never tear down a data path adopted from a running node on a failed start */
	loader_close(&ag.ld, ag.keep_on_exit || (exit_code && ag.ld.adopted_maps));
	json_decref(ag.last_diags);
	return exit_code;
}
