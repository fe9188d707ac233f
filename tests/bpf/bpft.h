/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Helpers shared by the tests/bpf drivers. */
#ifndef SM_BPFT_H
#define SM_BPFT_H

#include <stdlib.h>
#include <bpf/libbpf.h>

/* A per-CPU map's __u64 value at key, summed over CPUs (0 when absent). */
static inline __u64 bpft_percpu_u64_sum(const struct bpf_map *map, const void *key, size_t key_size)
{
	int ncpu = libbpf_num_possible_cpus();
	__u64 sum = 0, *v = ncpu > 0 ? calloc((size_t)ncpu, sizeof(*v)) : NULL;

	if (v && !bpf_map__lookup_elem(map, key, key_size, v, sizeof(*v) * (size_t)ncpu, 0))
		for (int c = 0; c < ncpu; c++)
			sum += v[c];
	free(v);
	return sum;
}

#endif /* SM_BPFT_H */
