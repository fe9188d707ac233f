/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * loader: check the node, load the skeleton, pin maps and links under the
 * pin path, attach the cgroup programs to a cgroup (one, with --cgroup; each
 * mesh pod's, with --kubepods-cgroup: user/agent/members.c), adopt what a
 * previous agent pinned.
 *
 * Pin layout: PIN/maps/<map name>; PIN/links/<program name> (--cgroup);
 * PIN/pods/<pod uid>/<program name> (--kubepods-cgroup). The sk_msg program
 * is attached to sm_sock_hash (no link: libbpf 1.1 has no attach_sockmap)
 * and lives as long as the pinned map does.
 */
#ifndef SOCKMESH_LOADER_H
#define SOCKMESH_LOADER_H

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/dp.h"
#include "common/sm_limits.h"

#define LOADER_MAX_PROGS 8
#define LOADER_MAX_REPLACED 8

struct loader_prog {
	char name[32];
	char attach[32];	/* "cgroup/connect4", "sockhash", ... */
	struct bpf_program *prog;
	bool cgroup;		/* attached to cgroups (through a bpf_link) */
	uint32_t prog_id;
	uint32_t link_id;	/* --cgroup mode's link; 0 for sk_msg and per pod */
	bool adopted;		/* replaced the program of a pinned link */
};

/* One cgroup's links, indexed like struct loader's progs[]. */
struct loader_cg_links {
	struct bpf_link *links[LOADER_MAX_PROGS];
	uint32_t link_ids[LOADER_MAX_PROGS];
	bool adopted[LOADER_MAX_PROGS];
	uint64_t cg_id;
	char dir[PATH_MAX];	/* where the links are pinned */
};

struct loader {
	struct sockmesh *skel;
	char cgroup[PATH_MAX];	/* --cgroup; "" with --kubepods-cgroup */
	char pin_dir[PATH_MAX];
	bool adopted_maps;	/* maps came from the pin path */
	/* pinned maps of another layout replaced by new ones (loader_pin_check) */
	char replaced[LOADER_MAX_REPLACED][16];
	int n_replaced;
	char incompatible[16];	/* first pinned map of another, kept layout */
	struct dp_maps maps;
	struct loader_cg_links cg;	/* --cgroup mode's links (PIN/links) */
	struct loader_prog progs[LOADER_MAX_PROGS];
	int n_progs;
	int msg_prog_fd;
};

/*
 * Everything the agent needs before it touches the kernel: privileges, BTF,
 * cgroup v2 at cgroup, bpffs under pin_dir, program/map types and helpers
 * (feature probes). Returns 0 or -errno with a one-line reason in err.
 */
int loader_check_node(const char *cgroup, const char *pin_dir, char *err, size_t errlen);

/*
 * --kubepods-cgroup PATH: refuses a cgroup v2 root (a mount point of
 * cgroup2, or a cgroup without cgroup.events, which only the root lacks):
 * that would put kubelet, containerd and hostNetwork pods under the
 * programs. Writes the resolved path to real. 0 or -errno with err.
 */
int loader_check_kubepods_root(const char *path, char *real, size_t reallen,
			       char *err, size_t errlen);

/* cgroup: "" when the cgroup programs are attached per pod (members.c). */
int loader_load(struct loader *l, const char *cgroup, const char *pin_dir,
		const struct sm_limits *lim, char *err, size_t errlen);

/* sk_msg to sm_sock_hash; with --cgroup also the cgroup programs there. */
int loader_attach(struct loader *l, char *err, size_t errlen);

/*
 * Attach every cgroup program to the cgroup at path through a bpf_link
 * pinned as link_dir/<program> (link_dir is created). A link already pinned
 * there is adopted: its program is swapped in place (bpf_link_update, no
 * moment without a program). A pinned link on another cgroup is refused
 * (-EEXIST) unless replace_stale: then it is unpinned and attached anew.
 * On error, cl holds what was attached so far (release it).
 */
int loader_cg_attach(const struct loader *l, const char *path, const char *link_dir,
		     bool replace_stale, struct loader_cg_links *cl, char *err, size_t errlen);

/* Close cl's links; unpin = true also removes the pins (and link_dir if
 * empty), which detaches the programs. */
void loader_cg_release(struct loader_cg_links *cl, const struct loader *l, bool unpin);

/* The cgroup v2 id of path (what bpf_link_info reports), 0 on error. */
uint64_t loader_cgroup_id(const char *path);

/* mkdir -p with mode 0700. 0 or -errno. */
int loader_mkdirs(const char *dir);

/*
 * keep = true: leave the pinned maps and links (the data path keeps
 * running; a new agent adopts them). keep = false: detach and unpin.
 */
void loader_close(struct loader *l, bool keep);

json_t *loader_status_json(const struct loader *l);

#endif /* SOCKMESH_LOADER_H */
