// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The production skeleton opens and loads: the verifier of the running
 * kernel accepts every program. Nothing is attached.
 */
#include <bpf/libbpf.h>
#include "../unit/test.h"

#include "sockmesh.skel.h"

TEST(load_all_programs)
{
	struct sockmesh *skel = sockmesh__open();
	struct bpf_program *prog;
	int n = 0;

	if (!ASSERT_TRUE(skel != NULL))
		return;
	if (ASSERT_EQ(sockmesh__load(skel), 0)) {
		bpf_object__for_each_program(prog, skel->obj) {
			ASSERT_TRUE(bpf_program__fd(prog) >= 0);
			n++;
		}
		ASSERT_EQ(n, 7);
		ASSERT_TRUE(bpf_program__fd(skel->progs.sm_connect4) >= 0);
		ASSERT_TRUE(bpf_program__fd(skel->progs.sm_connect6) >= 0);
		ASSERT_TRUE(bpf_program__fd(skel->progs.sm_getpeer4) >= 0);
		ASSERT_TRUE(bpf_program__fd(skel->progs.sm_getpeer6) >= 0);
		ASSERT_TRUE(bpf_program__fd(skel->progs.sm_sockops) >= 0);
		ASSERT_TRUE(bpf_program__fd(skel->progs.sm_redir) >= 0);
		ASSERT_TRUE(bpf_program__fd(skel->progs.sm_sock_rel) >= 0);
		ASSERT_TRUE(bpf_map__fd(skel->maps.sm_svc) >= 0);
		ASSERT_TRUE(bpf_map__fd(skel->maps.sm_sock_hash) >= 0);
	}
	sockmesh__destroy(skel);
}

/* The agent may shrink maps before load (small nodes, tests). */
TEST(load_with_resized_maps)
{
	struct sockmesh *skel = sockmesh__open();

	if (!ASSERT_TRUE(skel != NULL))
		return;
	ASSERT_EQ(bpf_map__set_max_entries(skel->maps.sm_maglev, 4096), 0);
	ASSERT_EQ(bpf_map__set_max_entries(skel->maps.sm_sock_hash, 1024), 0);
	ASSERT_EQ(sockmesh__load(skel), 0);
	ASSERT_EQ(bpf_map__max_entries(skel->maps.sm_maglev), 4096);
	sockmesh__destroy(skel);
}
