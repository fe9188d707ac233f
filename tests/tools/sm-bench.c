// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sm-bench: load and latency tool for `make bench` (bench/run.sh).
 *
 *   sm-bench serve --listen MODE@ADDR [--listen ...]
 *       MODE: echo (every byte back), sink (read to EOF, then 8 bytes:
 *       the byte count, little endian), accept (accept and close).
 *       ADDR: IP:PORT or unix:PATH. Thread per connection, blocking I/O.
 *       Prints "ready" once every listener is up; exits on SIGTERM/SIGINT.
 *   sm-bench pingpong --addr ADDR [--size B] [--iters N] [--warmup W] [--max-secs S]
 *       closed loop over one connection: write B bytes, read B bytes back;
 *       each iteration timed with clock_gettime(CLOCK_MONOTONIC).
 *       "pingpong iters N mean_us X p50_us X p99_us X max_us X"
 *   sm-bench stream --addr ADDR [--bytes N] [--chunk C] [--max-secs S]
 *       N bytes in C-byte writes, then waits for the sink's byte count, so
 *       the time covers delivery. "stream bytes N secs S mbps X" (MB/s, 1e6)
 *   sm-bench connect --addr ADDR [--count N] [--max-secs S]
 *       connect() + close (SO_LINGER 0: no TIME_WAIT pile-up) in a loop.
 *       "connect count N failed F secs S rate X p50_us X p99_us X"
 *
 * Blocking sockets on purpose: a redirected (sk_msg) socket may report
 * EAGAIN from a blocking read (README, hazard 2); reads retry it and count
 * it ("eagain K" is appended when K > 0). Every wait is bounded: SO_RCVTIMEO
 * / SO_SNDTIMEO of 5 s per call and --max-secs (default 60) per run.
 * Exit codes: 0 ok, 3 the run failed or was cut short, 1 error, 2 usage.
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
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/parse.h"

#define EXIT_FAILED	3
#define EXIT_USAGE	2
#define IO_TIMEOUT_S	5
#define BUF_SIZE	(256 * 1024)
#define MAX_LISTEN	8
#define BACKLOG		65535	/* with net.core.somaxconn raised in the pod (bench/run.sh) */
#define STACK_SIZE	(512 * 1024)

enum srv_mode { SRV_ECHO, SRV_SINK, SRV_ACCEPT };

struct bench_addr {
	struct sockaddr_storage sa;
	socklen_t len;
	int family;
};

struct bench_opts {
	struct bench_addr addr;
	int have_addr;
	unsigned long size, iters, warmup, bytes, chunk, count, max_secs;
};

static struct bench_opts o = {
	.size = 64, .iters = 10000, .warmup = 1000, .bytes = 256UL << 20,
	.chunk = 65536, .count = 10000, .max_secs = 60,
};
static unsigned long n_eagain;

static uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int bench_parse_addr(const char *s, struct bench_addr *a)
{
	char ip[INET_ADDRSTRLEN];
	const char *colon;
	unsigned long port;
	char *end;

	memset(a, 0, sizeof(*a));
	if (!strncmp(s, "unix:", 5)) {
		struct sockaddr_un *un = (struct sockaddr_un *)&a->sa;

		if (strlen(s + 5) >= sizeof(un->sun_path) || !s[5])
			return -EINVAL;
		un->sun_family = AF_UNIX;
		strcpy(un->sun_path, s + 5);
		a->len = sizeof(*un);
		a->family = AF_UNIX;
		return 0;
	}
	colon = strrchr(s, ':');
	if (!colon || (size_t)(colon - s) >= sizeof(ip))
		return -EINVAL;
	memcpy(ip, s, (size_t)(colon - s));
	ip[colon - s] = 0;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || *end || !port || port > 65535)
		return -EINVAL;
	{
		struct sockaddr_in *in = (struct sockaddr_in *)&a->sa;

		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, ip, &in->sin_addr) != 1)
			return -EINVAL;
	}
	a->len = sizeof(struct sockaddr_in);
	a->family = AF_INET;
	return 0;
}

static void bench_set_timeouts(int fd)
{
	struct timeval tv = { .tv_sec = IO_TIMEOUT_S };
	int one = 1;

	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Returns a connected blocking socket or -errno. */
static int bench_connect(const struct bench_addr *a)
{
	int fd = socket(a->family, SOCK_STREAM | SOCK_CLOEXEC, 0), err;

	if (fd < 0)
		return -errno;
	bench_set_timeouts(fd);
	while (connect(fd, (const struct sockaddr *)&a->sa, a->len)) {
		err = errno;
		if (err == EINTR)
			continue;
		close(fd);
		return -(err == EINPROGRESS ? ETIMEDOUT : err);
	}
	return fd;
}

/*
 * Reads exactly len bytes. EAGAIN before the socket timeout is the
 * redirected-socket quirk: counted and retried. 0, -errno, or -EPIPE on EOF.
 */
static int bench_read_full(int fd, void *buf, size_t len, unsigned long *eagain)
{
	char *p = buf;

	while (len) {
		uint64_t t0 = bench_now_ns();
		ssize_t r = read(fd, p, len);

		if (r > 0) {
			p += r;
			len -= (size_t)r;
			continue;
		}
		if (r == 0)
			return -EPIPE;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		if (bench_now_ns() - t0 >= IO_TIMEOUT_S * 900000000ULL)
			return -ETIMEDOUT;
		if (eagain)
			__atomic_add_fetch(eagain, 1, __ATOMIC_RELAXED);
	}
	return 0;
}

static int bench_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t w = write(fd, p, len);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* ---- serve ---- */

struct srv_listener {
	int fd;
	enum srv_mode mode;
};

struct srv_conn {
	int fd;
	enum srv_mode mode;
};

static void *srv_conn_thread(void *arg)
{
	struct srv_conn c = *(struct srv_conn *)arg;
	char *buf = malloc(BUF_SIZE);
	uint64_t total = 0;
	ssize_t r;

	free(arg);
	if (!buf)
		goto out;
	for (;;) {
		r = read(c.fd, buf, BUF_SIZE);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;	/* idle connections wait; the harness ends them */
		if (r <= 0)
			break;
		total += (uint64_t)r;
		if (c.mode == SRV_ECHO && bench_write_all(c.fd, buf, (size_t)r))
			break;
	}
	if (c.mode == SRV_SINK && r == 0)
		bench_write_all(c.fd, &total, sizeof(total));
out:
	free(buf);
	close(c.fd);
	return NULL;
}

static int srv_listen(const char *spec, struct srv_listener *l)
{
	static const char *const modes[] = {
		[SRV_ECHO] = "echo", [SRV_SINK] = "sink", [SRV_ACCEPT] = "accept",
	};
	const char *at = strchr(spec, '@');
	struct bench_addr a;
	int one = 1;
	size_t i;

	if (!at)
		return -EINVAL;
	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (strlen(modes[i]) == (size_t)(at - spec) &&
		    !strncmp(spec, modes[i], strlen(modes[i])))
			break;
	if (i == sizeof(modes) / sizeof(modes[0]) || bench_parse_addr(at + 1, &a))
		return -EINVAL;
	l->mode = (enum srv_mode)i;
	l->fd = socket(a.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l->fd < 0)
		return -errno;
	if (a.family == AF_UNIX)
		unlink(((struct sockaddr_un *)&a.sa)->sun_path);
	else
		setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l->fd, (struct sockaddr *)&a.sa, a.len) || listen(l->fd, BACKLOG)) {
		int err = -errno;

		close(l->fd);
		return err;
	}
	return 0;
}

static int cmd_serve(int nspec, char **specs)
{
	struct srv_listener ls[MAX_LISTEN];
	struct pollfd pfd[MAX_LISTEN + 1];
	pthread_attr_t attr;
	sigset_t mask;
	int sfd, one = 1;

	if (nspec < 1 || nspec > MAX_LISTEN)
		return EXIT_USAGE;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0)
		return 1;
	pfd[0] = (struct pollfd){ .fd = sfd, .events = POLLIN };
	for (int i = 0; i < nspec; i++) {
		int err = srv_listen(specs[i], &ls[i]);

		if (err) {
			fprintf(stderr, "sm-bench serve: %s: %s\n", specs[i], strerror(-err));
			return err == -EINVAL ? EXIT_USAGE : 1;
		}
		pfd[i + 1] = (struct pollfd){ .fd = ls[i].fd, .events = POLLIN };
	}
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, STACK_SIZE);
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		int r = poll(pfd, (nfds_t)nspec + 1, -1);

		if (r < 0 && errno != EINTR)
			return 1;
		if (r <= 0)
			continue;
		if (pfd[0].revents)
			return 0;
		for (int i = 0; i < nspec; i++) {
			struct srv_conn *c;
			pthread_t th;
			int cfd;

			if (!(pfd[i + 1].revents & POLLIN))
				continue;
			cfd = accept4(ls[i].fd, NULL, NULL, SOCK_CLOEXEC);
			if (cfd < 0)
				continue;
			if (ls[i].mode == SRV_ACCEPT) {
				close(cfd);
				continue;
			}
			c = malloc(sizeof(*c));
			if (!c) {
				close(cfd);
				continue;
			}
			*c = (struct srv_conn){ .fd = cfd, .mode = ls[i].mode };
			/* fails harmlessly on AF_UNIX */
			setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			if (pthread_create(&th, &attr, srv_conn_thread, c)) {
				close(cfd);
				free(c);
			}
		}
	}
}

/* ---- statistics over samples (ns) ---- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted samples; p in (0, 100]. */
static uint64_t pct(const uint64_t *s, size_t n, double p)
{
	size_t rank = (size_t)((p / 100.0) * (double)n + 0.999999);

	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return s[rank - 1];
}

static void print_eagain(void)
{
	if (n_eagain)
		printf(" eagain %lu", n_eagain);
	printf("\n");
}

/* ---- pingpong ---- */
static int cmd_pingpong(void)
{
	uint64_t *lat = calloc(o.iters, sizeof(*lat)), deadline, sum = 0;
	char *buf = malloc(o.size);
	unsigned long done = 0;
	int fd, err = 0;

	if (!lat || !buf)
		return 1;
	memset(buf, 'p', o.size);
	fd = bench_connect(&o.addr);
	if (fd < 0) {
		printf("ERR connect %s\n", strerrorname_np(-fd) ?: "?");
		return EXIT_FAILED;
	}
	deadline = bench_now_ns() + o.max_secs * 1000000000ULL;
	for (unsigned long i = 0; i < o.warmup + o.iters; i++) {
		uint64_t t0 = bench_now_ns();

		err = bench_write_all(fd, buf, o.size);
		if (!err)
			err = bench_read_full(fd, buf, o.size, &n_eagain);
		if (err)
			break;
		if (i >= o.warmup)
			lat[done++] = bench_now_ns() - t0;
		if (t0 > deadline)
			break;
	}
	close(fd);
	if (err || done < o.iters) {
		printf("ERR pingpong %s after %lu iterations\n",
		       err ? strerrorname_np(-err) ?: "?" : "max-secs", done);
		return EXIT_FAILED;
	}
	for (unsigned long i = 0; i < done; i++)
		sum += lat[i];
	qsort(lat, done, sizeof(*lat), cmp_u64);
	printf("pingpong iters %lu mean_us %.2f p50_us %.2f p99_us %.2f max_us %.2f",
	       done, (double)sum / (double)done / 1e3, pct(lat, done, 50) / 1e3,
	       pct(lat, done, 99) / 1e3, lat[done - 1] / 1e3);
	print_eagain();
	free(lat);
	free(buf);
	return 0;
}

/* ---- stream ---- */
static int cmd_stream(void)
{
	char *buf = malloc(o.chunk);
	uint64_t t0, deadline, got = 0;
	unsigned long sent = 0;
	double secs;
	int fd, err = 0;

	if (!buf)
		return 1;
	memset(buf, 's', o.chunk);
	t0 = bench_now_ns();
	deadline = t0 + o.max_secs * 1000000000ULL;
	fd = bench_connect(&o.addr);
	if (fd < 0) {
		printf("ERR connect %s\n", strerrorname_np(-fd) ?: "?");
		return EXIT_FAILED;
	}
	while (sent < o.bytes && !err) {
		size_t n = o.bytes - sent < o.chunk ? o.bytes - sent : o.chunk;

		err = bench_write_all(fd, buf, n);
		sent += n;
		if (bench_now_ns() > deadline)
			err = -ETIME;
	}
	if (!err) {
		shutdown(fd, SHUT_WR);
		err = bench_read_full(fd, &got, sizeof(got), &n_eagain);
	}
	close(fd);
	secs = (double)(bench_now_ns() - t0) / 1e9;
	if (err || got != sent) {
		printf("ERR stream %s sent %lu acked %llu\n",
		       err ? strerrorname_np(-err) ?: "?" : "short", sent,
		       (unsigned long long)got);
		return EXIT_FAILED;
	}
	printf("stream bytes %lu secs %.4f mbps %.1f", sent, secs, (double)sent / secs / 1e6);
	print_eagain();
	free(buf);
	return 0;
}

/* ---- connect ---- */
static int cmd_connect(void)
{
	uint64_t *lat = calloc(o.count, sizeof(*lat)), t0, deadline;
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	unsigned long done = 0, failed = 0;
	int first_err = 0;
	double secs;

	if (!lat)
		return 1;
	t0 = bench_now_ns();
	deadline = t0 + o.max_secs * 1000000000ULL;
	for (unsigned long i = 0; i < o.count; i++) {
		uint64_t c0 = bench_now_ns();
		int fd = socket(o.addr.family, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0)
			return 1;
		if (connect(fd, (struct sockaddr *)&o.addr.sa, o.addr.len)) {
			failed++;
			if (!first_err)
				first_err = errno;
		} else {
			lat[done++] = bench_now_ns() - c0;
		}
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(fd);
		if (c0 > deadline)
			break;
	}
	secs = (double)(bench_now_ns() - t0) / 1e9;
	if (!done) {
		printf("ERR connect %s\n", strerrorname_np(first_err) ?: "?");
		return EXIT_FAILED;
	}
	qsort(lat, done, sizeof(*lat), cmp_u64);
	printf("connect count %lu failed %lu secs %.4f rate %.0f p50_us %.2f p99_us %.2f\n",
	       done, failed, secs, (double)done / secs, pct(lat, done, 50) / 1e3,
	       pct(lat, done, 99) / 1e3);
	free(lat);
	return failed ? EXIT_FAILED : 0;
}

/* ---- options ---- */
static void bench_usage(FILE *f)
{
	fprintf(f,
		"usage: sm-bench serve --listen echo|sink|accept@ADDR [--listen ...]\n"
		"       sm-bench pingpong --addr ADDR [--size B] [--iters N] [--warmup W]\n"
		"       sm-bench stream   --addr ADDR [--bytes N] [--chunk C]\n"
		"       sm-bench connect  --addr ADDR [--count N]\n"
		"ADDR: IP:PORT or unix:PATH; every command takes --max-secs S (default 60)\n");
}


int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "addr", required_argument, NULL, 'a' },
		{ "listen", required_argument, NULL, 'l' },
		{ "size", required_argument, NULL, 's' },
		{ "iters", required_argument, NULL, 'i' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "bytes", required_argument, NULL, 'b' },
		{ "chunk", required_argument, NULL, 'k' },
		{ "count", required_argument, NULL, 'c' },
		{ "max-secs", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	char *specs[MAX_LISTEN];
	const char *cmd;
	int c, nspec = 0, bad = 0;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		bench_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : 0;
	}
	cmd = argv[1];
	optind = 2;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'a':
			bad |= bench_parse_addr(optarg, &o.addr) != 0;
			o.have_addr = 1;
			break;
		case 'l':
			if (nspec == MAX_LISTEN)
				bad = 1;
			else
				specs[nspec++] = optarg;
			break;
		case 's': bad |= sm_parse_uint(optarg, 1, 1 << 20, &o.size); break;
		case 'i': bad |= sm_parse_uint(optarg, 1, 100000000, &o.iters); break;
		case 'w': bad |= sm_parse_uint(optarg, 0, 100000000, &o.warmup); break;
		case 'b': bad |= sm_parse_uint(optarg, 1, 1UL << 40, &o.bytes); break;
		case 'k': bad |= sm_parse_uint(optarg, 1, 64UL << 20, &o.chunk); break;
		case 'c': bad |= sm_parse_uint(optarg, 1, 100000000, &o.count); break;
		case 'm': bad |= sm_parse_uint(optarg, 1, 86400, &o.max_secs); break;
		case 'h': bench_usage(stdout); return 0;
		default: bad = 1;
		}
	}
	if (bad || optind != argc)
		goto usage;
	signal(SIGPIPE, SIG_IGN);
	if (!strcmp(cmd, "serve"))
		return nspec ? cmd_serve(nspec, specs) : (bench_usage(stderr), EXIT_USAGE);
	if (!o.have_addr)
		goto usage;
	if (!strcmp(cmd, "pingpong"))
		return cmd_pingpong();
	if (!strcmp(cmd, "stream"))
		return cmd_stream();
	if (!strcmp(cmd, "connect"))
		return cmd_connect();
usage:
	bench_usage(stderr);
	return EXIT_USAGE;
}
