// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent/loader.h"
#include "sockmesh.skel.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif
#ifndef CGROUP_SUPER_MAGIC
#define CGROUP_SUPER_MAGIC 0x27e0eb
#endif
#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

static int loader_has_cap(int cap)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = {};

	if (syscall(SYS_capget, &hdr, data))
		return 0;
	return !!(data[cap / 32].effective & (1u << (cap % 32)));
}

/* Where cgroup v2 is mounted, from /proc/mounts ("" if nowhere). */
static void loader_cgroup2_mount(char *out, size_t len)
{
	char dev[256], dir[PATH_MAX], type[64];
	FILE *f = fopen("/proc/mounts", "re");

	out[0] = '\0';
	if (!f)
		return;
	while (fscanf(f, "%255s %4095s %63s %*[^\n]", dev, dir, type) == 3) {
		if (!strcmp(type, "cgroup2")) {
			snprintf(out, len, "%s", dir);
			break;
		}
	}
	fclose(f);
}

/*
 * Whether the kernel takes a cgroup program for attach type at: load a
 * two-instruction program with that expected_attach_type (the kernel checks
 * it at load for sock_addr and sock programs; cgroup/connect6's and
 * getpeername6's IPv4-mapped path needs them as much as the IPv4 ones).
 */
static bool loader_probe_attach(enum bpf_prog_type t, enum bpf_attach_type at)
{
	const struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 1 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = at);
	int fd = bpf_prog_load(t, NULL, "GPL", insns, 2, &opts);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

int loader_check_node(const char *cgroup, const char *pin_dir, char *err, size_t errlen)
{
	struct statfs sfs;
	char path[PATH_MAX], mnt[PATH_MAX];
	static const struct { enum bpf_prog_type t; const char *name; } types[] = {
		{ BPF_PROG_TYPE_CGROUP_SOCK_ADDR, "cgroup_sock_addr (connect4/6, getpeername4/6)" },
		{ BPF_PROG_TYPE_CGROUP_SOCK, "cgroup_sock (sock_release)" },
		{ BPF_PROG_TYPE_SOCK_OPS, "sock_ops" },
		{ BPF_PROG_TYPE_SK_MSG, "sk_msg" },
	};
	static const struct { enum bpf_map_type t; const char *name; } maps[] = {
		{ BPF_MAP_TYPE_SOCKHASH, "sockhash" },
		{ BPF_MAP_TYPE_SK_STORAGE, "sk_storage" },
		{ BPF_MAP_TYPE_PERCPU_HASH, "percpu_hash" },
		{ BPF_MAP_TYPE_LRU_HASH, "lru_hash" },
		{ BPF_MAP_TYPE_LRU_PERCPU_HASH, "lru_percpu_hash" },
	};
	static const struct { enum bpf_prog_type t; enum bpf_func_id f; const char *name; } helpers[] = {
		{ BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_FUNC_get_netns_cookie, "bpf_get_netns_cookie in connect4/6" },
		{ BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_FUNC_sk_storage_get, "bpf_sk_storage_get in connect4/6" },
		{ BPF_PROG_TYPE_SOCK_OPS, BPF_FUNC_sock_hash_update, "bpf_sock_hash_update" },
		{ BPF_PROG_TYPE_SK_MSG, BPF_FUNC_msg_redirect_hash, "bpf_msg_redirect_hash" },
		{ BPF_PROG_TYPE_SK_MSG, BPF_FUNC_sk_storage_get, "bpf_sk_storage_get in sk_msg" },
		{ BPF_PROG_TYPE_SOCK_OPS, BPF_FUNC_skc_to_tcp_sock, "bpf_skc_to_tcp_sock in sock_ops" },
	};
	static const struct { enum bpf_prog_type t; enum bpf_attach_type at; const char *name; } attach[] = {
		{ BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_INET4_CONNECT, "cgroup/connect4" },
		{ BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_INET6_CONNECT, "cgroup/connect6" },
		{ BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_INET4_GETPEERNAME, "cgroup/getpeername4" },
		{ BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_INET6_GETPEERNAME, "cgroup/getpeername6" },
		{ BPF_PROG_TYPE_CGROUP_SOCK, BPF_CGROUP_INET_SOCK_RELEASE, "cgroup/sock_release" },
	};

	if (!(geteuid() == 0 || loader_has_cap(CAP_SYS_ADMIN) ||
	      (loader_has_cap(CAP_BPF) && loader_has_cap(CAP_NET_ADMIN)))) {
		snprintf(err, errlen, "needs root (CAP_SYS_ADMIN, or CAP_BPF + CAP_NET_ADMIN)");
		return -EPERM;
	}
	if (access("/sys/kernel/btf/vmlinux", R_OK)) {
		snprintf(err, errlen, "kernel BTF missing (/sys/kernel/btf/vmlinux): "
			 "needs a kernel built with CONFIG_DEBUG_INFO_BTF=y (6.1 or newer)");
		return -ENOTSUP;
	}
	if (statfs(cgroup, &sfs)) {
		snprintf(err, errlen, "cgroup %s: %s", cgroup, strerror(errno));
		return -errno;
	}
	if (sfs.f_type != CGROUP2_SUPER_MAGIC) {
		loader_cgroup2_mount(mnt, sizeof(mnt));
		if (sfs.f_type == CGROUP_SUPER_MAGIC)
			snprintf(err, errlen, "%s is a cgroup v1 hierarchy: sockmesh needs cgroup v2 "
				 "(EKS on Amazon Linux 2 uses cgroup v1; use Amazon Linux 2023 or Bottlerocket)",
				 cgroup);
		else if (mnt[0])
			snprintf(err, errlen, "%s is not in the cgroup v2 hierarchy (mounted at %s)",
				 cgroup, mnt);
		else
			snprintf(err, errlen, "%s is not a cgroup v2 directory and cgroup v2 is not mounted "
				 "(EKS on Amazon Linux 2 has cgroup v1: use Amazon Linux 2023 or Bottlerocket)",
				 cgroup);
		return -ENOTSUP;
	}
	/* bpffs: the pin dir, or its closest existing ancestor */
	snprintf(path, sizeof(path), "%s", pin_dir);
	while (statfs(path, &sfs)) {
		char *slash = strrchr(path, '/');

		if (!slash || slash == path) {
			snprintf(path, sizeof(path), "/");
			statfs(path, &sfs);
			break;
		}
		*slash = '\0';
	}
	if (sfs.f_type != BPF_FS_MAGIC) {
		snprintf(err, errlen, "pin path %s is not on a bpffs (mount -t bpf bpf /sys/fs/bpf)",
			 pin_dir);
		return -ENOTSUP;
	}
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (libbpf_probe_bpf_prog_type(types[i].t, NULL) != 1) {
			snprintf(err, errlen, "kernel lacks BPF program type %s (needs 6.1 or newer)",
				 types[i].name);
			return -ENOTSUP;
		}
	for (size_t i = 0; i < sizeof(attach) / sizeof(attach[0]); i++)
		if (!loader_probe_attach(attach[i].t, attach[i].at)) {
			snprintf(err, errlen, "kernel lacks BPF attach type %s (needs 6.1 or newer)",
				 attach[i].name);
			return -ENOTSUP;
		}
	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++)
		if (libbpf_probe_bpf_map_type(maps[i].t, NULL) != 1) {
			snprintf(err, errlen, "kernel lacks BPF map type %s (needs 6.1 or newer)",
				 maps[i].name);
			return -ENOTSUP;
		}
	for (size_t i = 0; i < sizeof(helpers) / sizeof(helpers[0]); i++)
		if (libbpf_probe_bpf_helper(helpers[i].t, helpers[i].f, NULL) != 1) {
			snprintf(err, errlen, "kernel lacks BPF helper %s (needs 6.1 or newer)",
				 helpers[i].name);
			return -ENOTSUP;
		}
	return 0;
}

int loader_check_kubepods_root(const char *path, char *real, size_t reallen,
			       char *err, size_t errlen)
{
	char dev[256], dir[PATH_MAX], type[64], rp[PATH_MAX], mp[PATH_MAX], ev[PATH_MAX + 16];
	bool is_mount = false;
	FILE *f;

	if (!realpath(path, rp)) {
		snprintf(err, errlen, "--kubepods-cgroup %s: %s", path, strerror(errno));
		return -errno;
	}
	f = fopen("/proc/mounts", "re");
	while (f && fscanf(f, "%255s %4095s %63s %*[^\n]", dev, dir, type) == 3)
		if (!strcmp(type, "cgroup2") && realpath(dir, mp) && !strcmp(mp, rp))
			is_mount = true;
	if (f)
		fclose(f);
	snprintf(ev, sizeof(ev), "%s/cgroup.events", rp);
	if (is_mount || access(ev, F_OK)) {
		snprintf(err, errlen, "--kubepods-cgroup %s is the cgroup v2 root: that would put kubelet, "
			 "containerd and hostNetwork pods under the programs; name the kubelet's kubepods "
			 "cgroup (%s/kubepods.slice with the systemd driver, %s/kubepods with cgroupfs)",
			 path, rp, rp);
		return -EINVAL;
	}
	snprintf(real, reallen, "%s", rp);
	return 0;
}

int loader_mkdirs(const char *dir)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s", dir);
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0700) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(path, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

uint64_t loader_cgroup_id(const char *path)
{
	struct {
		struct file_handle fh;
		uint64_t id;
	} h = { .fh.handle_bytes = sizeof(uint64_t) };
	int mount_id;

	if (name_to_handle_at(AT_FDCWD, path, &h.fh, &mount_id, 0))
		return 0;
	return h.id;
}

static void loader_maps_from_skel(struct loader *l)
{
	struct bpf_map *map;

	dp_maps_init(&l->maps);
	bpf_object__for_each_map(map, l->skel->obj) {
		for (size_t i = 0; i < DP_N_MAPS; i++)
			if (!strcmp(bpf_map__name(map), dp_map_names[i]))
				*dp_maps_at(&l->maps, i) = bpf_map__fd(map);
	}
}

/*
 * Maps whose whole content the first apply writes from the plan (before any
 * program is attached): a pinned one whose layout no longer matches (a
 * release that changed its flags or value, another --max-* size) is
 * replaced, not adopted. The old map lives on as long as the programs still
 * attached use it; the new programs see the new one, filled, once attached.
 * Maps with state the kernel or an operator wrote (connection counts,
 * sockets, ejections, totals) are never replaced: their layout must match.
 */
static const char *const loader_replaceable[] = {
	"sm_svc", "sm_route", "sm_cluster", "sm_bset", "sm_maglev", "sm_meta",
};

static bool loader_map_replaceable(const char *name)
{
	for (size_t i = 0; i < sizeof(loader_replaceable) / sizeof(loader_replaceable[0]); i++)
		if (!strcmp(name, loader_replaceable[i]))
			return true;
	return false;
}

/*
 * A map pinned at path: 0 = same layout as map (adopted), 1 = another
 * layout, replaceable: unpinned, the load creates and pins a new one
 * (recorded in l->replaced), 2 = another layout, not replaceable: left for
 * libbpf to refuse. -errno when it cannot be read or unpinned.
 */
static int loader_pin_check(struct loader *l, struct bpf_map *map, const char *path)
{
	struct bpf_map_info info = {};
	uint32_t len = sizeof(info);
	int fd, ret;

	fd = bpf_obj_get(path);
	if (fd < 0)
		return -errno;
	ret = bpf_obj_get_info_by_fd(fd, &info, &len);
	close(fd);
	if (ret)
		return -errno;
	if (info.type == bpf_map__type(map) && info.key_size == bpf_map__key_size(map) &&
	    info.value_size == bpf_map__value_size(map) &&
	    info.max_entries == bpf_map__max_entries(map) &&
	    info.map_flags == bpf_map__map_flags(map))
		return 0;
	if (!loader_map_replaceable(bpf_map__name(map)))
		return 2;
	if (unlink(path))
		return -errno;
	if (l->n_replaced < LOADER_MAX_REPLACED)
		snprintf(l->replaced[l->n_replaced++], sizeof(l->replaced[0]), "%s", bpf_map__name(map));
	return 1;
}

int loader_load(struct loader *l, const char *cgroup, const char *pin_dir,
		const struct sm_limits *lim, char *err, size_t errlen)
{
	char path[PATH_MAX];
	struct bpf_map *map;
	int ret;

	memset(l, 0, sizeof(*l));
	l->msg_prog_fd = -1;
	dp_maps_init(&l->maps);
	snprintf(l->cgroup, sizeof(l->cgroup), "%s", cgroup);
	snprintf(l->pin_dir, sizeof(l->pin_dir), "%s", pin_dir);

	snprintf(path, sizeof(path), "%s/maps", pin_dir);
	if ((ret = loader_mkdirs(path))) {
		snprintf(err, errlen, "creating %s: %s", path, strerror(-ret));
		return ret;
	}

	l->skel = sockmesh__open();
	if (!l->skel) {
		ret = -errno;
		snprintf(err, errlen, "opening the BPF object: %s", strerror(errno));
		return ret;
	}
	bpf_object__for_each_map(map, l->skel->obj) {
		const char *name = bpf_map__name(map);
		uint32_t want;

		if (strncmp(name, "sm_", 3))
			continue;	/* .rodata, .bss: not pinned */
		want = sm_limits_map_entries(lim, name);
		if (want && want != bpf_map__max_entries(map))
			bpf_map__set_max_entries(map, want);
		snprintf(path, sizeof(path), "%s/maps/%s", pin_dir, name);
		if (!access(path, F_OK)) {
			ret = loader_pin_check(l, map, path);
			if (ret < 0) {
				snprintf(err, errlen, "pinned map %s: %s", path, strerror(-ret));
				sockmesh__destroy(l->skel);
				l->skel = NULL;
				return ret;
			}
			if (ret == 0)
				l->adopted_maps = true;
			if (ret == 2 && !l->incompatible[0])
				snprintf(l->incompatible, sizeof(l->incompatible), "%s", name);
		}
		bpf_map__set_pin_path(map, path);
	}
	ret = sockmesh__load(l->skel);
	if (ret) {
		if (l->incompatible[0])
			snprintf(err, errlen, "loading BPF programs: %s (the pinned map %s/maps/%s "
				 "has another layout: from an incompatible sockmesh version or "
				 "another --max-* size; remove the pin path or use another "
				 "--pin-path)", strerror(-ret), pin_dir, l->incompatible);
		else
			snprintf(err, errlen, "loading BPF programs: %s%s", strerror(-ret),
				 l->adopted_maps ? " (pinned maps under the pin path may be from an "
				 "incompatible sockmesh version: remove them or use another --pin-path)" : "");
		sockmesh__destroy(l->skel);
		l->skel = NULL;
		return ret;
	}
	loader_maps_from_skel(l);
	return 0;
}

static int loader_prog_ids(struct loader_prog *p, int prog_fd, int link_fd)
{
	struct bpf_prog_info pi = {};
	struct bpf_link_info li = {};
	__u32 len = sizeof(pi);

	if (!bpf_obj_get_info_by_fd(prog_fd, &pi, &len))
		p->prog_id = pi.id;
	len = sizeof(li);
	if (link_fd >= 0 && !bpf_obj_get_info_by_fd(link_fd, &li, &len))
		p->link_id = li.id;
	return 0;
}

/* The programs' table (names, attach types, ids) and the sk_msg attach. */
static int loader_attach_progs(struct loader *l, char *err, size_t errlen)
{
	struct bpf_program *prog;
	int ret;

	bpf_object__for_each_program(prog, l->skel->obj) {
		enum bpf_prog_type type = bpf_program__type(prog);
		struct loader_prog *p;

		if (type != BPF_PROG_TYPE_SK_MSG && type != BPF_PROG_TYPE_CGROUP_SOCK_ADDR &&
		    type != BPF_PROG_TYPE_CGROUP_SOCK && type != BPF_PROG_TYPE_SOCK_OPS)
			continue;
		if (l->n_progs == LOADER_MAX_PROGS) {
			snprintf(err, errlen, "too many programs");
			return -E2BIG;
		}
		p = &l->progs[l->n_progs++];
		snprintf(p->name, sizeof(p->name), "%s", bpf_program__name(prog));
		p->prog = prog;
		loader_prog_ids(p, bpf_program__fd(prog), -1);
		if (type != BPF_PROG_TYPE_SK_MSG) {
			p->cgroup = true;
			snprintf(p->attach, sizeof(p->attach), "%s",
				 libbpf_bpf_attach_type_str(bpf_program__expected_attach_type(prog)) ?: "cgroup");
			continue;
		}
		snprintf(p->attach, sizeof(p->attach), "sockhash sm_sock_hash");
		/* replaces the program a previous agent attached */
		if (bpf_prog_attach(bpf_program__fd(prog), l->maps.sock_hash, BPF_SK_MSG_VERDICT, 0)) {
			ret = -errno;
			snprintf(err, errlen, "attaching %s to sm_sock_hash: %s", p->name, strerror(errno));
			return ret;
		}
		l->msg_prog_fd = bpf_program__fd(prog);
	}
	return 0;
}

int loader_attach(struct loader *l, char *err, size_t errlen)
{
	char dir[PATH_MAX];
	int ret;

	if ((ret = loader_attach_progs(l, err, errlen)))
		return ret;
	if (!l->cgroup[0])
		return 0;	/* per pod: members.c */
	snprintf(dir, sizeof(dir), "%s/links", l->pin_dir);
	ret = loader_cg_attach(l, l->cgroup, dir, false, &l->cg, err, errlen);
	for (int i = 0; i < l->n_progs; i++) {
		l->progs[i].link_id = l->cg.link_ids[i];
		l->progs[i].adopted = l->cg.adopted[i];
	}
	return ret;
}

/* Adopt the link pinned at path for prog on cgroup cg_id: NULL when there
 * is none (or it was stale and replace_stale removed it). */
static struct bpf_link *loader_adopt_link(const char *path, struct bpf_program *prog, uint64_t cg_id,
					  bool replace_stale, int *ret, char *err, size_t errlen)
{
	struct bpf_link_info li = {};
	__u32 len = sizeof(li);
	struct bpf_link *link;

	*ret = 0;
	link = access(path, F_OK) ? NULL : bpf_link__open(path);
	if (!link)
		return NULL;
	if (!bpf_obj_get_info_by_fd(bpf_link__fd(link), &li, &len) &&
	    li.type == BPF_LINK_TYPE_CGROUP && cg_id && li.cgroup.cgroup_id != cg_id) {
		if (replace_stale) {
			bpf_link__unpin(link);
			bpf_link__destroy(link);
			return NULL;
		}
		bpf_link__destroy(link);
		snprintf(err, errlen, "pinned link %s is attached to another cgroup "
			 "(id %llu): use another --pin-path", path,
			 (unsigned long long)li.cgroup.cgroup_id);
		*ret = -EEXIST;
		return NULL;
	}
	/* atomic program swap: no moment without a program */
	if (bpf_link__update_program(link, prog)) {
		*ret = -errno;
		bpf_link__destroy(link);
		snprintf(err, errlen, "replacing the program of %s: %s", path, strerror(-*ret));
		return NULL;
	}
	return link;
}

int loader_cg_attach(const struct loader *l, const char *path, const char *link_dir,
		     bool replace_stale, struct loader_cg_links *cl, char *err, size_t errlen)
{
	char pin[PATH_MAX];
	int cg_fd, ret = 0;

	memset(cl, 0, sizeof(*cl));
	snprintf(cl->dir, sizeof(cl->dir), "%s", link_dir);
	cl->cg_id = loader_cgroup_id(path);
	if ((ret = loader_mkdirs(link_dir))) {
		snprintf(err, errlen, "creating %s: %s", link_dir, strerror(-ret));
		return ret;
	}
	cg_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg_fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "opening cgroup %s: %s", path, strerror(errno));
		return ret;
	}
	for (int i = 0; i < l->n_progs && !ret; i++) {
		const struct loader_prog *p = &l->progs[i];
		struct bpf_link *link;

		if (!p->cgroup)
			continue;
		snprintf(pin, sizeof(pin), "%s/%s", link_dir, p->name);
		link = loader_adopt_link(pin, p->prog, cl->cg_id, replace_stale, &ret, err, errlen);
		if (ret)
			break;
		if (link) {
			cl->adopted[i] = true;
		} else {
			link = bpf_program__attach_cgroup(p->prog, cg_fd);
			if (!link) {
				ret = -errno;
				snprintf(err, errlen, "attaching %s to %s: %s", p->name, path, strerror(errno));
				break;
			}
			if ((ret = bpf_link__pin(link, pin))) {
				bpf_link__destroy(link);
				snprintf(err, errlen, "pinning %s: %s", pin, strerror(-ret));
				break;
			}
		}
		cl->links[i] = link;
		{
			struct bpf_link_info li = {};
			__u32 len = sizeof(li);

			if (!bpf_obj_get_info_by_fd(bpf_link__fd(link), &li, &len))
				cl->link_ids[i] = li.id;
		}
	}
	close(cg_fd);
	return ret;
}

void loader_cg_release(struct loader_cg_links *cl, const struct loader *l, bool unpin)
{
	char pin[PATH_MAX];

	for (int i = 0; i < LOADER_MAX_PROGS; i++) {
		if (cl->links[i]) {
			if (unpin)
				bpf_link__unpin(cl->links[i]);
			bpf_link__destroy(cl->links[i]);	/* closes our fd; pinned links stay */
			cl->links[i] = NULL;
		}
		/* a pin this agent could not open (another program set) goes too */
		if (unpin && cl->dir[0] && i < l->n_progs && l->progs[i].cgroup) {
			snprintf(pin, sizeof(pin), "%s/%s", cl->dir, l->progs[i].name);
			unlink(pin);
		}
	}
	if (unpin && cl->dir[0])
		rmdir(cl->dir);
}

void loader_close(struct loader *l, bool keep)
{
	char path[PATH_MAX];

	loader_cg_release(&l->cg, l, !keep);
	if (!keep && l->skel) {
		struct bpf_map *map;

		if (l->msg_prog_fd >= 0 && l->maps.sock_hash >= 0)
			bpf_prog_detach2(l->msg_prog_fd, l->maps.sock_hash, BPF_SK_MSG_VERDICT);
		bpf_object__for_each_map(map, l->skel->obj)
			if (bpf_map__is_pinned(map))
				bpf_map__unpin(map, NULL);
		snprintf(path, sizeof(path), "%s/maps", l->pin_dir);
		rmdir(path);
		snprintf(path, sizeof(path), "%s/links", l->pin_dir);
		rmdir(path);
		rmdir(l->pin_dir);
	}
	if (l->skel)
		sockmesh__destroy(l->skel);
	l->skel = NULL;
}

json_t *loader_status_json(const struct loader *l)
{
	json_t *arr = json_array();

	for (int i = 0; i < l->n_progs; i++) {
		json_t *p = json_object();

		json_object_set_new(p, "name", json_string(l->progs[i].name));
		json_object_set_new(p, "attach", json_string(l->progs[i].attach));
		json_object_set_new(p, "prog_id", json_integer(l->progs[i].prog_id));
		if (l->progs[i].link_id)
			json_object_set_new(p, "link_id", json_integer(l->progs[i].link_id));
		json_object_set_new(p, "adopted", json_boolean(l->progs[i].adopted));
		json_array_append_new(arr, p);
	}
	return arr;
}
