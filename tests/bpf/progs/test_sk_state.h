/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Stand-in for the sm_sk_state socket storage in SEC("syscall") test
 * programs (sk_storage needs a real socket): one hash slot per test socket,
 * keyed by a number the driver chooses. Include after lib/maps.h.
 */
#ifndef SM_TEST_SK_STATE_H
#define SM_TEST_SK_STATE_H

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct sm_sk_state);
	__uint(max_entries, 256);
} test_state SEC(".maps");

/* The state of test socket slot, created zeroed when create (as F_CREATE). */
static __always_inline struct sm_sk_state *test_sk_state_slot(__u32 slot, int create)
{
	struct sm_sk_state zero = {};

	if (create)
		bpf_map_update_elem(&test_state, &slot, &zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(&test_state, &slot);
}

#endif /* SM_TEST_SK_STATE_H */
