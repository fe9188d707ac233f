// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sm-server: TCP test server for sockmesh e2e tests and benchmarks.
 *
 *   sm-server --port P [--id NAME] [--mode id|echo|sink|hold|order]
 *             [--bind ADDR] [--max-conns N] [--idle-timeout SECS]
 *
 * One thread per connection over blocking sockets: hazard 2 (EAGAIN from a
 * blocking read() on a redirected socket) only shows on blocking reads, so
 * the server must not poll before reading. Every read() that fails with
 * EAGAIN without SO_RCVTIMEO having expired is counted and retried.
 *
 * stdout (parsed by scripts):
 *   "ready"                                   once listening
 *   "stats conns N eagain K bad B"            on SIGUSR1, and on SIGTERM/SIGINT
 *                                             before exiting 0
 * Per mode, what a client sees:
 *   id     "NAME\n" on accept, then every byte echoed back
 *   echo   every byte echoed back
 *   sink   reads to EOF, then "<bytes> <fnv1a64 as %016llx>\n", close
 *   hold   reads and discards until EOF; never writes
 *   order  16-byte records "seq=%08u ..\n" (seq from 0) to EOF, then
 *          "OK <records>\n" or "BAD at <first bad record index>\n", close
 * Exit codes: 0 after SIGTERM/SIGINT, 1 runtime error, 2 usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/parse.h"

#define SRV_BUF_SIZE	65536
#define SRV_STACK_SIZE	(256 * 1024)	/* threads only hold one buffer */
#define SRV_BACKLOG	4096
#define ORDER_REC_LEN	16		/* "seq=%08u ..\n" */
#define FNV_OFFSET	0xcbf29ce484222325ULL
#define FNV_PRIME	0x100000001b3ULL

enum srv_mode { MODE_ID, MODE_ECHO, MODE_SINK, MODE_HOLD, MODE_ORDER };

static const char *const srv_mode_names[] = {
	[MODE_ID] = "id", [MODE_ECHO] = "echo", [MODE_SINK] = "sink",
	[MODE_HOLD] = "hold", [MODE_ORDER] = "order",
};

struct srv_cfg {
	const char *id;
	size_t id_len;
	enum srv_mode mode;
	int idle_timeout_ms;	/* 0: reads block forever */
};

static struct srv_cfg cfg = { .id = "server", .mode = MODE_ID };
static unsigned long stat_conns, stat_eagain, stat_bad, stat_active;

static uint64_t srv_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Blocking read that hides and counts spurious EAGAIN. With SO_RCVTIMEO an
 * expired timeout also reports EAGAIN; it is told apart by the time the call
 * took. Returns bytes read, 0 on EOF, -1 with errno set.
 */
static ssize_t srv_read(int fd, void *buf, size_t len)
{
	for (;;) {
		uint64_t t0 = srv_now_ms();
		ssize_t r = read(fd, buf, len);

		if (r >= 0)
			return r;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		if (cfg.idle_timeout_ms &&
		    srv_now_ms() - t0 >= (uint64_t)cfg.idle_timeout_ms * 9 / 10) {
			errno = ETIMEDOUT;
			return -1;
		}
		__atomic_add_fetch(&stat_eagain, 1, __ATOMIC_RELAXED);
	}
}

static int srv_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t w = write(fd, p, len);

		if (w < 0) {
			if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
				continue;
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

static void srv_serve_echo(int fd, char *buf)
{
	ssize_t r;

	while ((r = srv_read(fd, buf, SRV_BUF_SIZE)) > 0)
		if (srv_write_all(fd, buf, (size_t)r))
			return;
}

static void srv_serve_sink(int fd, char *buf)
{
	unsigned long long bytes = 0;
	uint64_t h = FNV_OFFSET;
	char line[64];
	ssize_t r;
	int n;

	while ((r = srv_read(fd, buf, SRV_BUF_SIZE)) > 0) {
		for (ssize_t i = 0; i < r; i++) {
			h ^= (unsigned char)buf[i];
			h *= FNV_PRIME;
		}
		bytes += (unsigned long long)r;
	}
	if (r < 0)
		return;
	n = snprintf(line, sizeof(line), "%llu %016llx\n", bytes,
		     (unsigned long long)h);
	srv_write_all(fd, line, (size_t)n);
}

static void srv_serve_order(int fd, char *buf)
{
	char rec[ORDER_REC_LEN + 1], pend[ORDER_REC_LEN], line[64];
	unsigned int seq = 0;
	long bad_at = -1;
	size_t plen = 0;
	ssize_t r;
	int n;

	while ((r = srv_read(fd, buf, SRV_BUF_SIZE)) > 0) {
		for (ssize_t i = 0; i < r; i++) {
			pend[plen++] = buf[i];
			if (plen < ORDER_REC_LEN)
				continue;
			plen = 0;
			snprintf(rec, sizeof(rec), "seq=%08u ..\n", seq % 100000000);
			if (bad_at < 0 && memcmp(rec, pend, ORDER_REC_LEN))
				bad_at = seq;
			seq++;
		}
	}
	if (r < 0)
		return;
	if (bad_at < 0 && plen)
		bad_at = seq;
	if (bad_at < 0) {
		n = snprintf(line, sizeof(line), "OK %u\n", seq);
	} else {
		__atomic_add_fetch(&stat_bad, 1, __ATOMIC_RELAXED);
		n = snprintf(line, sizeof(line), "BAD at %ld\n", bad_at);
	}
	srv_write_all(fd, line, (size_t)n);
}

static void *srv_conn_thread(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char *buf = malloc(SRV_BUF_SIZE);

	if (!buf)
		goto out;
	switch (cfg.mode) {
	case MODE_ID:
		if (srv_write_all(fd, cfg.id, cfg.id_len) ||
		    srv_write_all(fd, "\n", 1))
			break;
		srv_serve_echo(fd, buf);
		break;
	case MODE_ECHO:
		srv_serve_echo(fd, buf);
		break;
	case MODE_SINK:
		srv_serve_sink(fd, buf);
		break;
	case MODE_ORDER:
		srv_serve_order(fd, buf);
		break;
	case MODE_HOLD:
		while (srv_read(fd, buf, SRV_BUF_SIZE) > 0)
			;
		break;
	}
out:
	free(buf);
	close(fd);
	__atomic_sub_fetch(&stat_active, 1, __ATOMIC_RELAXED);
	return NULL;
}

static void srv_print_stats(void)
{
	printf("stats conns %lu eagain %lu bad %lu\n",
	       __atomic_load_n(&stat_conns, __ATOMIC_RELAXED),
	       __atomic_load_n(&stat_eagain, __ATOMIC_RELAXED),
	       __atomic_load_n(&stat_bad, __ATOMIC_RELAXED));
	fflush(stdout);
}

static void srv_usage(FILE *f)
{
	fprintf(f,
		"usage: sm-server --port P [--id NAME] [--mode id|echo|sink|hold|order]\n"
		"                 [--bind ADDR] [--max-conns N] [--idle-timeout SECS]\n"
		"  --max-conns N       connections served at once (default 4096); more\n"
		"                      wait in the listen backlog\n"
		"  --idle-timeout S    close a connection idle for S seconds (default 0: never)\n"
		"prints \"ready\" when listening; \"stats conns N eagain K bad B\" on SIGUSR1\n"
		"and on SIGTERM/SIGINT (then exits 0)\n");
}

static int srv_parse_mode(const char *s, enum srv_mode *mode)
{
	for (size_t i = 0; i < sizeof(srv_mode_names) / sizeof(srv_mode_names[0]); i++) {
		if (!strcmp(s, srv_mode_names[i])) {
			*mode = (enum srv_mode)i;
			return 0;
		}
	}
	return -EINVAL;
}


static int srv_listen(const char *bind_addr, unsigned short port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	int one = 1, fd;

	if (inet_pton(AF_INET, bind_addr, &sa.sin_addr) != 1) {
		fprintf(stderr, "sm-server: bad --bind address '%s'\n", bind_addr);
		return -1;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		perror("sm-server: socket");
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(fd, SRV_BACKLOG)) {
		fprintf(stderr, "sm-server: listen on %s:%u: %s\n", bind_addr, port,
			strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int srv_spawn(pthread_attr_t *attr, int cfd)
{
	struct timeval tv = {
		.tv_sec = cfg.idle_timeout_ms / 1000,
		.tv_usec = (cfg.idle_timeout_ms % 1000) * 1000,
	};
	pthread_t th;
	int one = 1;

	if (cfg.idle_timeout_ms)
		setsockopt(cfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	__atomic_add_fetch(&stat_conns, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&stat_active, 1, __ATOMIC_RELAXED);
	if (pthread_create(&th, attr, srv_conn_thread, (void *)(intptr_t)cfd)) {
		__atomic_sub_fetch(&stat_active, 1, __ATOMIC_RELAXED);
		close(cfd);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "id", required_argument, NULL, 'i' },
		{ "mode", required_argument, NULL, 'm' },
		{ "bind", required_argument, NULL, 'b' },
		{ "max-conns", required_argument, NULL, 'n' },
		{ "idle-timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *bind_addr = "0.0.0.0";
	unsigned long port = 0, max_conns = 4096, v;
	struct pollfd pfd[2];
	pthread_attr_t attr;
	sigset_t mask;
	int c, lfd, sfd;

	while ((c = getopt_long(argc, argv, "p:i:m:b:n:t:h", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (sm_parse_uint(optarg, 1, 65535, &port))
				goto bad_usage;
			break;
		case 'i':
			cfg.id = optarg;
			break;
		case 'm':
			if (srv_parse_mode(optarg, &cfg.mode))
				goto bad_usage;
			break;
		case 'b':
			bind_addr = optarg;
			break;
		case 'n':
			if (sm_parse_uint(optarg, 1, 1000000, &max_conns))
				goto bad_usage;
			break;
		case 't':
			if (sm_parse_uint(optarg, 0, 86400, &v))
				goto bad_usage;
			cfg.idle_timeout_ms = (int)v * 1000;
			break;
		case 'h':
			srv_usage(stdout);
			return 0;
		default:
			goto bad_usage;
		}
	}
	if (optind != argc || !port || strchr(cfg.id, '\n'))
		goto bad_usage;
	cfg.id_len = strlen(cfg.id);

	/* Signals arrive through a signalfd so worker threads never see EINTR. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0) {
		perror("sm-server: signalfd");
		return 1;
	}
	lfd = srv_listen(bind_addr, (unsigned short)port);
	if (lfd < 0)
		return 1;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, SRV_STACK_SIZE);

	printf("ready\n");
	fflush(stdout);

	pfd[0] = (struct pollfd){ .fd = sfd, .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = lfd, .events = POLLIN };
	for (;;) {
		int full = __atomic_load_n(&stat_active, __ATOMIC_RELAXED) >= max_conns;
		int r = poll(pfd, full ? 1 : 2, full ? 20 : -1);

		if (r < 0 && errno != EINTR) {
			perror("sm-server: poll");
			return 1;
		}
		if (r > 0 && (pfd[0].revents & POLLIN)) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				srv_print_stats();
				if (si.ssi_signo != SIGUSR1)
					return 0;
			}
		}
		if (!full && r > 0 && (pfd[1].revents & POLLIN)) {
			int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

			if (cfd < 0) {
				if (errno == EMFILE || errno == ENFILE)
					usleep(10000);
				continue;
			}
			srv_spawn(&attr, cfd);
		}
	}

bad_usage:
	srv_usage(stderr);
	return 2;
}
