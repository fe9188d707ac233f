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
 *
 * Keys are IPv4 4-tuples whatever the socket family. An AF_INET6 socket
 * whose peer is v4-mapped (a client that dialled ::ffff:a.b.c.d, or a
 * socket a server listening on :: accepted from an IPv4 peer) is an IPv4
 * connection on the wire, and the kernel keeps its IPv4 addresses where
 * the ip4 context fields read them (skc_rcv_saddr, skc_daddr: set by
 * tcp_v4_connect and tcp_v4_syn_recv_sock, which tcp_v6_connect and
 * tcp_v6_syn_recv_sock call for mapped peers). So both ends of one
 * connection find each other whichever family each socket has. Native IPv6
 * sockets are not ours: their ip4 fields hold LOOPBACK4_IPV6 (127.0.0.6).
 */
#ifndef SM_BPF_SOCK_H
#define SM_BPF_SOCK_H

#include "common.h"

/* ::ffff:0:0/96, words in network order. */
static __always_inline int addr6_is_v4mapped(__u32 w0, __u32 w1, __u32 w2)
{
	return !w0 && !w1 && w2 == bpf_htonl(0x0000ffff);
}

/*
 * An IPv4 connection: AF_INET, or AF_INET6 with a v4-mapped peer. ctx is a
 * struct bpf_sock_ops or sk_msg_md (both have family and remote_ip6); the
 * ip6 words are loaded only for AF_INET6 sockets.
 */
#define SOCK_CTX_IS_IPV4(ctx)						\
	((ctx)->family == SM_AF_INET ||					\
	 ((ctx)->family == SM_AF_INET6 &&				\
	  addr6_is_v4mapped(SM_CTX_LOAD((ctx)->remote_ip6[0]),		\
			    SM_CTX_LOAD((ctx)->remote_ip6[1]),		\
			    SM_CTX_LOAD((ctx)->remote_ip6[2]))))

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
