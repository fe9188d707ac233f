/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * sm_sock_hash keys. A socket is stored under its own 4-tuple (local first),
 * all network order; the sender's peer is found by swapping the halves.
 *
 * Context byte order (checked on 6.1 filter.c and on this kernel): in
 * bpf_sock_ops and sk_msg_md, local_port is host order and remote_port is
 * the network-order port shifted into the upper 16 bits (little endian);
 * bpf_sock (cgroup/sock_release) has src_port host order and dst_port a
 * network-order __be16.
 *
 * netns_cookie is non-zero only for loopback (127/8): pod IPs are unique on a
 * node, 127.0.0.1 is not, and two pods must never be joined.
 */
#ifndef SM_BPF_SOCK_H
#define SM_BPF_SOCK_H

#include "common.h"

static __always_inline int sock_is_loopback(__be32 addr)
{
	return (bpf_ntohl(addr) >> 24) == SM_LOOPBACK_NET;
}

/* Fill *own and *peer from local/remote halves (network order). */
static __always_inline void sock_keys(__be32 lip, __be16 lport, __be32 rip, __be16 rport,
				      __u64 netns, struct sm_sock_key *own,
				      struct sm_sock_key *peer)
{
	if (!sock_is_loopback(lip) && !sock_is_loopback(rip))
		netns = 0;
	own->sip = lip;
	own->dip = rip;
	own->sport = lport;
	own->dport = rport;
	own->pad = 0;
	own->netns_cookie = netns;
	peer->sip = rip;
	peer->dip = lip;
	peer->sport = rport;
	peer->dport = lport;
	peer->pad = 0;
	peer->netns_cookie = netns;
}

/* remote_port of sock_ops / sk_msg_md -> __be16. */
static __always_inline __be16 sock_ctx_rport(__u32 remote_port)
{
	return (__be16)(remote_port >> 16);
}

#endif /* SM_BPF_SOCK_H */
