/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * loader: check the node, load the skeleton, pin maps and links under the
 * pin path, attach to one cgroup, adopt what a previous agent pinned.
 *
 * Pin layout: PIN/maps/<map name>, PIN/links/<program name>. The sk_msg
 * program is attached to sm_sock_hash (no link: libbpf 1.1 has no
 * attach_sockmap) and lives as long as the pinned map does.
 */
#ifndef SOCKMESH_LOADER_H
#define SOCKMESH_LOADER_H

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "dp.h"
#include "sm_limits.h"

#define LOADER_MAX_PROGS 8

struct loader_prog {
	char name[32];
	char attach[32];	/* "cgroup/connect4", "sockhash", ... */
	uint32_t prog_id;
	uint32_t link_id;	/* 0 for sk_msg */
	bool adopted;		/* replaced the program of a pinned link */
};

struct loader {
	struct sockmesh *skel;
	int cg_fd;
	uint64_t cg_id;
	char cgroup[PATH_MAX];
	char pin_dir[PATH_MAX];
	bool adopted_maps;	/* maps came from the pin path */
	struct dp_maps maps;
	struct bpf_link *links[LOADER_MAX_PROGS];
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

int loader_load(struct loader *l, const char *cgroup, const char *pin_dir,
		const struct sm_limits *lim, char *err, size_t errlen);
int loader_attach(struct loader *l, char *err, size_t errlen);

/*
 * keep = true: leave the pinned maps and links (the data path keeps
 * running; a new agent adopts them). keep = false: detach and unpin.
 */
void loader_close(struct loader *l, bool keep);

json_t *loader_status_json(const struct loader *l);

#endif /* SOCKMESH_LOADER_H */
