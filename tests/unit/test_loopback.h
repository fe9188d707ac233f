/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Loopback socket helpers shared by the tests that run the real proxy
 * (test_proxy.c, test_pool.c): a listener on an ephemeral 127.0.0.1 port
 * and a blocking send-all.
 */
#ifndef SOCKMESH_TEST_LOOPBACK_H
#define SOCKMESH_TEST_LOOPBACK_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

/* Listen on 127.0.0.1:<ephemeral>; 0 and *lfd, *port (host order), or -1. */
static inline int tlb_listen(int backlog, int *lfd, uint16_t *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	*lfd = fd;
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, backlog) ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl))
		return -1;
	*port = ntohs(sa.sin_port);
	return 0;
}

/* One accepted connection, or -1 when none came within 20 ms (poll the stop flag). */
static inline int tlb_accept(int lfd)
{
	struct pollfd pfd = { .fd = lfd, .events = POLLIN };

	if (poll(&pfd, 1, 20) <= 0)
		return -1;
	return accept(lfd, NULL, NULL);
}

/* Write all of s; 0 or -1 (no SIGPIPE). */
static inline int tlb_send_all(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);

		if (w <= 0)
			return -1;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

#endif /* SOCKMESH_TEST_LOOPBACK_H */
