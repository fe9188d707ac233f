/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * hash: the one 64-bit mixer and byte hash of user space. Hash tables,
 * Maglev permutations, consistent hashing and stats keys all use these.
 * Values are part of behaviour: plan_cluster_id() (FNV-1a) keys the
 * kernel's connection-limit entries, Maglev tables must not move across an
 * agent upgrade; change neither.
 */
#ifndef SOCKMESH_HASH_H
#define SOCKMESH_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SM_FNV64_OFFSET	0xcbf29ce484222325ULL
#define SM_FNV64_PRIME	0x100000001b3ULL

/* murmur3's fmix64: full avalanche (every input bit flips each output bit
 * with probability 1/2), a bijection, cheap. */
static inline uint64_t sm_hash_mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

/* FNV-1a over len bytes, continuing from h (SM_FNV64_OFFSET to start).
 * Weak low bits: mix the result before taking it modulo anything. */
static inline uint64_t sm_hash_fnv1a64(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= SM_FNV64_PRIME;
	}
	return h;
}

/*
 * The backward-shift delete of the linear-probing tables (u64map, the
 * endpoint index, the membership list): when slot hole empties, the entry
 * at slot j further along its probe run fills it unless its home slot lies
 * cyclically in (hole, j]. true: it stays where it is.
 */
static inline bool sm_probe_stays(size_t home, size_t hole, size_t j)
{
	return hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
}

#endif /* SOCKMESH_HASH_H */
