/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Common includes and constants for every sockmesh BPF object.
 * vmlinux.h carries no #defines, so the few UAPI values we need are named
 * here with an SM_ prefix (no clash with enums vmlinux.h may already hold).
 */
#ifndef SM_BPF_COMMON_H
#define SM_BPF_COMMON_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "sockmesh.h"

#define SM_AF_INET		2
#define SM_AF_INET6		10
#define SM_SOCK_STREAM		1

/* errno values returned to connect() through bpf_set_retval(). */
#define SM_ENOBUFS		105	/* maxConnections overflow */
#define SM_ECONNREFUSED		111	/* no healthy backend (kube-proxy REJECT) */

/* cgroup sock_addr / sock verdicts. */
#define SM_CG_REJECT		0
#define SM_CG_ALLOW		1

/* TCP states as in include/net/tcp_states.h. */
#define SM_TCP_SYN_SENT		2
#define SM_TCP_FIN_WAIT1	4
#define SM_TCP_FIN_WAIT2	5
#define SM_TCP_CLOSE		7
#define SM_TCP_LAST_ACK		9
#define SM_TCP_CLOSING		11

#define SM_LOOPBACK_NET		127	/* 127.0.0.0/8, first octet */

/* A single, non-combinable load of a context field. */
#define SM_CTX_LOAD(field)	(*(volatile typeof(field) *)&(field))

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

#endif /* SM_BPF_COMMON_H */
