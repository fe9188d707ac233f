// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sm-client: TCP test client for sockmesh e2e tests and benchmarks.
 * Pairs with sm-server. Every socket wait is bounded by --timeout (SO_SNDTIMEO
 * bounds connect() and write(), SO_RCVTIMEO bounds read()). Sockets stay
 * blocking on purpose: hazard 2 (EAGAIN from a blocking read() on a
 * redirected socket) only shows on blocking reads.
 *
 * Subcommands and their stdout (parsed by scripts, one record per line):
 *   who   --addr A --count N [--hold] [--hold-timeout S]
 *         without --hold: "NAME count" per server id, then "ERR ENAME count"
 *         per failure kind, all sorted (strcmp)
 *         with --hold: "conn I NAME" / "conn I ERR ENAME" as each of the N
 *         connects finishes (I from 1), then "done", then the connections
 *         stay open until stdin reaches EOF (ignored when stdin is
 *         /dev/null), SIGTERM/SIGINT/SIGUSR1, or --hold-timeout (default 60s);
 *         then the sorted tally as without --hold
 *   peer  --addr A [--first F]     "IP:PORT" from getpeername(), or "ERR ENAME";
 *         --first: the same socket first connects to F, which must fail
 *         ("first ENAME" is printed before), then to A
 *   bulk  --addr A --bytes N [--chunk C] [--seed S]
 *         "bulk ok bytes N fnv HASH secs S"  or
 *         "bulk MISMATCH sent N HASH got M HASH2"  or "ERR ENAME"
 *   order --addr A --conns N [--records R]
 *         "conn I BAD at K" / "conn I BAD reply LINE" / "conn I ERR ENAME" for
 *         each failed connection,
 *         then "conns N ok K bad B"
 *   eagain --addr A --transfers N --bytes B
 *         "conn I ERR ENAME" / "transfer I BAD" for failures, then
 *         "transfers N eagain K bad B"
 *   rate  --addr A --count N       "ERR ENAME count" lines for failures, then
 *         "connects N failed F secs S rate R"
 * ENAME is the errno name (ECONNREFUSED, ENETUNREACH, ETIMEDOUT, ...) or EOF
 * when the peer closed before sending what was expected, EPROTO when it sent
 * something malformed.
 * Exit codes: 0 all good, 3 some connection or check failed (output still
 * complete), 1 runtime error, 2 usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "common/parse.h"

#define EXIT_FAILED	3
#define EXIT_USAGE	2
#define ORDER_REC_LEN	16		/* "seq=%08u ..\n" */
#define FNV_OFFSET	0xcbf29ce484222325ULL
#define FNV_PRIME	0x100000001b3ULL
#define ERR_EOF		100000		/* pseudo errno: peer closed early */
#define ERR_PROTO	EPROTO
#define MAX_TALLY	256
#define EAGAIN_REUSED	4		/* connections reused in eagain's 2nd half */

struct cli_opts {
	struct sockaddr_in addr, first;
	int have_addr, have_first;
	unsigned long count, bytes, chunk, records, seed;
	int hold, hold_timeout_s, timeout_ms;
};

static struct cli_opts o = {
	.chunk = 65536, .records = 200, .hold_timeout_s = 60, .timeout_ms = 5000,
};

static uint64_t cli_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static const char *cli_err_name(int err)
{
	static char buf[16];
	const char *n;

	if (err == ERR_EOF)
		return "EOF";
	n = strerrorname_np(err);
	if (n)
		return n;
	snprintf(buf, sizeof(buf), "E%d", err);
	return buf;
}

/* ---- tally of names (server ids and error names), printed sorted ---- */
struct tally {
	char name[64];
	unsigned long n;
};

static struct tally tallies[MAX_TALLY];
static int ntallies;

static void tally_add(const char *name)
{
	for (int i = 0; i < ntallies; i++) {
		if (!strcmp(tallies[i].name, name)) {
			tallies[i].n++;
			return;
		}
	}
	if (ntallies == MAX_TALLY)
		name = "OVERFLOW";
	if (ntallies < MAX_TALLY) {
		snprintf(tallies[ntallies].name, sizeof(tallies[0].name), "%s", name);
		tallies[ntallies++].n = 1;
	}
}

static void tally_add_err(int err)
{
	char name[64];

	snprintf(name, sizeof(name), "ERR %s", cli_err_name(err));
	tally_add(name);
}

static int tally_cmp(const void *a, const void *b)
{
	return strcmp(((const struct tally *)a)->name, ((const struct tally *)b)->name);
}

static void tally_print(void)
{
	qsort(tallies, (size_t)ntallies, sizeof(tallies[0]), tally_cmp);
	for (int i = 0; i < ntallies; i++)
		printf("%s %lu\n", tallies[i].name, tallies[i].n);
}

/* ---- bounded blocking socket I/O ---- */

/* Returns a connected blocking socket or -errno. */
/* connect() fd to sa: 0 or -errno. */
static int cli_connect_to(int fd, const struct sockaddr_in *sa)
{
	int err;

	while (connect(fd, (const struct sockaddr *)sa, sizeof(*sa))) {
		err = errno;
		if (err == EINTR)
			continue;
		/* A blocking connect cut short by SO_SNDTIMEO reports EINPROGRESS. */
		return -(err == EINPROGRESS ? ETIMEDOUT : err);
	}
	return 0;
}

/* A new socket (timeouts, TCP_NODELAY) connected to o.addr: fd or -errno. */
static int cli_connect(void)
{
	struct timeval tv = {
		.tv_sec = o.timeout_ms / 1000, .tv_usec = (o.timeout_ms % 1000) * 1000,
	};
	int fd, err, one = 1;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* peer --first: an attempt that must fail, on the same socket */
	if (o.have_first) {
		err = cli_connect_to(fd, &o.first);
		printf("first %s\n", err ? cli_err_name(-err) : "CONNECTED");
		if (!err) {
			close(fd);
			return -EISCONN;
		}
	}
	err = cli_connect_to(fd, &o.addr);
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

/*
 * Blocking read that counts and retries spurious EAGAIN (hazard 2); an
 * expired SO_RCVTIMEO also reports EAGAIN and is told apart by the time the
 * call took. Returns bytes, 0 on EOF, -errno.
 */
static ssize_t cli_read(int fd, void *buf, size_t len, unsigned long *eagain)
{
	uint64_t start = cli_now_us();

	for (;;) {
		uint64_t t0 = cli_now_us();
		ssize_t r = read(fd, buf, len);

		if (r >= 0)
			return r;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		if (cli_now_us() - t0 >= (uint64_t)o.timeout_ms * 900 ||
		    cli_now_us() - start >= (uint64_t)o.timeout_ms * 2000)
			return -ETIMEDOUT;
		if (eagain)
			(*eagain)++;
	}
}

static int cli_read_full(int fd, void *buf, size_t len, unsigned long *eagain)
{
	char *p = buf;

	while (len) {
		ssize_t r = cli_read(fd, p, len, eagain);

		if (r < 0)
			return (int)r;
		if (r == 0)
			return -ERR_EOF;
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

/* Reads one '\n'-terminated line (without it) into buf; 0 or -errno (-ERR_EOF). */
static int cli_read_line(int fd, char *buf, size_t size)
{
	size_t n = 0;

	for (;;) {
		char ch;
		ssize_t r = cli_read(fd, &ch, 1, NULL);

		if (r < 0)
			return (int)r;
		if (r == 0)
			return -ERR_EOF;
		if (ch == '\n')
			break;
		if (n + 1 >= size)
			return -ERR_PROTO;
		buf[n++] = ch;
	}
	buf[n] = 0;
	return 0;
}

static int cli_write_all(int fd, const void *buf, size_t len)
{
	uint64_t start = cli_now_us();
	const char *p = buf;

	while (len) {
		ssize_t w = write(fd, p, len);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return -errno;
			if (cli_now_us() - start >= (uint64_t)o.timeout_ms * 900)
				return -ETIMEDOUT;
			continue;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

static int cli_errnum(int neg)
{
	return -neg;
}

/* ---- who ---- */

/* Connects and reads the id line; fills name or returns an error code. */
static int who_one(char *name, size_t size, int *fd_out)
{
	int fd = cli_connect(), err;

	if (fd < 0)
		return fd;
	err = cli_read_line(fd, name, size);
	if (err) {
		close(fd);
		return err;
	}
	if (fd_out)
		*fd_out = fd;
	else
		close(fd);
	return 0;
}

static int stdin_is_devnull(void)
{
	struct stat a, b;

	return !fstat(0, &a) && !stat("/dev/null", &b) && S_ISCHR(a.st_mode) &&
	       a.st_rdev == b.st_rdev;
}

static void who_hold_wait(void)
{
	int ignore_stdin = stdin_is_devnull();
	uint64_t deadline = cli_now_us() + (uint64_t)o.hold_timeout_s * 1000000;
	struct pollfd pfd[2];
	sigset_t mask;
	int sfd;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGUSR1);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	pfd[0] = (struct pollfd){ .fd = sfd, .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = ignore_stdin ? -1 : 0, .events = POLLIN };
	for (;;) {
		uint64_t now = cli_now_us();
		char buf[256];
		int r;

		if (now >= deadline)
			break;
		r = poll(pfd, 2, (int)((deadline - now) / 1000) + 1);
		if (r < 0 && errno != EINTR)
			break;
		if (r <= 0)
			continue;
		if (pfd[0].revents)
			break;
		if (pfd[1].revents) {
			ssize_t n = read(0, buf, sizeof(buf));

			if (n <= 0)
				break;
		}
	}
	if (sfd >= 0)
		close(sfd);
}

static int cmd_who(void)
{
	unsigned long failed = 0;
	int *fds = NULL;

	if (o.hold) {
		fds = calloc(o.count, sizeof(*fds));
		if (!fds)
			return 1;
	}
	for (unsigned long i = 0; i < o.count; i++) {
		char name[64];
		int err = who_one(name, sizeof(name), o.hold ? &fds[i] : NULL);

		if (err) {
			failed++;
			tally_add_err(cli_errnum(err));
			if (o.hold) {
				fds[i] = -1;
				printf("conn %lu ERR %s\n", i + 1, cli_err_name(cli_errnum(err)));
			}
		} else {
			tally_add(name);
			if (o.hold)
				printf("conn %lu %s\n", i + 1, name);
		}
		if (o.hold)
			fflush(stdout);
	}
	if (o.hold) {
		printf("done\n");
		fflush(stdout);
		who_hold_wait();
		for (unsigned long i = 0; i < o.count; i++)
			if (fds[i] >= 0)
				close(fds[i]);
		free(fds);
	}
	tally_print();
	return failed ? EXIT_FAILED : 0;
}

/* ---- peer ---- */
static int cmd_peer(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	char ip[INET_ADDRSTRLEN];
	int fd = cli_connect();

	if (fd < 0) {
		printf("ERR %s\n", cli_err_name(-fd));
		return EXIT_FAILED;
	}
	if (getpeername(fd, (struct sockaddr *)&sa, &len)) {
		printf("ERR %s\n", cli_err_name(errno));
		close(fd);
		return EXIT_FAILED;
	}
	inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof(ip));
	printf("%s:%u\n", ip, ntohs(sa.sin_port));
	close(fd);
	return 0;
}

/* ---- bulk ---- */
static uint64_t prng_next(uint64_t *s)
{
	/* xorshift64*: deterministic, fast, and good enough to defeat patterns */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

static int cmd_bulk(void)
{
	uint64_t s = 0x9E3779B97F4A7C15ULL ^ o.seed, h = FNV_OFFSET, t0;
	unsigned long long got_bytes;
	unsigned long sent = 0;
	char line[128], *buf;
	unsigned long long got_h;
	int fd, err;

	if (!s)
		s = 1;
	buf = malloc(o.chunk + 8);
	if (!buf)
		return 1;
	t0 = cli_now_us();
	fd = cli_connect();
	if (fd < 0) {
		printf("ERR %s\n", cli_err_name(-fd));
		free(buf);
		return EXIT_FAILED;
	}
	while (sent < o.bytes) {
		size_t n = o.bytes - sent < o.chunk ? o.bytes - sent : o.chunk;

		for (size_t i = 0; i < n; i += 8) {
			uint64_t v = prng_next(&s);

			memcpy(buf + i, &v, 8);
		}
		for (size_t i = 0; i < n; i++) {
			h ^= (unsigned char)buf[i];
			h *= FNV_PRIME;
		}
		err = cli_write_all(fd, buf, n);
		if (err)
			goto fail;
		sent += n;
	}
	shutdown(fd, SHUT_WR);
	err = cli_read_line(fd, line, sizeof(line));
	if (err)
		goto fail;
	close(fd);
	free(buf);
	if (sscanf(line, "%llu %llx", &got_bytes, &got_h) != 2 ||
	    got_bytes != sent || got_h != h) {
		printf("bulk MISMATCH sent %lu %016llx got %s\n", sent,
		       (unsigned long long)h, line);
		return EXIT_FAILED;
	}
	printf("bulk ok bytes %lu fnv %016llx secs %.3f\n", sent,
	       (unsigned long long)h, (double)(cli_now_us() - t0) / 1e6);
	return 0;
fail:
	printf("ERR %s\n", cli_err_name(cli_errnum(err)));
	close(fd);
	free(buf);
	return EXIT_FAILED;
}

/* ---- order (hazard 1) ---- */

/*
 * Writes o.records records in writes of 1, 1, 2, 3, 5, 8, ... records; the
 * first write goes out the moment connect() returns, before the server side
 * can have accepted, which is the window in which hazard 1 reorders.
 * Returns 0 when the server answered "OK <records>".
 */
static int order_one(unsigned long idx)
{
	size_t cap = o.records * ORDER_REC_LEN + 1;
	char *buf = malloc(cap), line[64];
	unsigned long a = 1, b = 1, done = 0;
	int fd, err;

	if (!buf)
		return -ENOMEM;
	for (unsigned long i = 0; i < o.records; i++)
		snprintf(buf + i * ORDER_REC_LEN, ORDER_REC_LEN + 1, "seq=%08lu ..\n", i % 100000000);
	fd = cli_connect();
	if (fd < 0) {
		free(buf);
		printf("conn %lu ERR %s\n", idx, cli_err_name(-fd));
		return fd;
	}
	while (done < o.records) {
		unsigned long n = a < o.records - done ? a : o.records - done;

		err = cli_write_all(fd, buf + done * ORDER_REC_LEN, n * ORDER_REC_LEN);
		if (err)
			goto fail;
		done += n;
		b += a;
		a = b - a;
	}
	shutdown(fd, SHUT_WR);
	err = cli_read_line(fd, line, sizeof(line));
	if (err)
		goto fail;
	close(fd);
	free(buf);
	{
		char want[32];

		snprintf(want, sizeof(want), "OK %lu", o.records);
		if (strcmp(line, want)) {
			if (!strncmp(line, "BAD at ", 7))
				printf("conn %lu %s\n", idx, line);
			else
				printf("conn %lu BAD reply %s\n", idx, line);
			return -ERR_PROTO;
		}
	}
	return 0;
fail:
	printf("conn %lu ERR %s\n", idx, cli_err_name(cli_errnum(err)));
	close(fd);
	free(buf);
	return err;
}

static int cmd_order(void)
{
	unsigned long ok = 0, bad = 0;

	for (unsigned long i = 1; i <= o.count; i++) {
		if (order_one(i))
			bad++;
		else
			ok++;
		fflush(stdout);
	}
	printf("conns %lu ok %lu bad %lu\n", o.count, ok, bad);
	return bad ? EXIT_FAILED : 0;
}

/* ---- eagain (hazard 2) ---- */
static void eagain_fill(unsigned char *p, size_t n, unsigned long t)
{
	for (size_t j = 0; j < n; j++)
		p[j] = (unsigned char)(t * 131 + j * 7 + (j >> 8));
}

/* One request/response over fd in chunks small enough never to deadlock. */
static int eagain_transfer(int fd, unsigned long t, unsigned char *out,
			   unsigned char *in, unsigned long *eagain)
{
	size_t off = 0;

	eagain_fill(out, o.bytes, t);
	while (off < o.bytes) {
		size_t n = o.bytes - off < 16384 ? o.bytes - off : 16384;
		int err = cli_write_all(fd, out + off, n);

		if (err)
			return err;
		err = cli_read_full(fd, in + off, n, eagain);
		if (err)
			return err;
		off += n;
	}
	return memcmp(out, in, o.bytes) ? -ERR_PROTO : 0;
}

static int cmd_eagain(void)
{
	unsigned char *out = malloc(o.bytes), *in = malloc(o.bytes);
	unsigned long half = o.count / 2, eagain = 0, bad = 0;
	int fds[EAGAIN_REUSED];

	if (!out || !in)
		return 1;
	/* First half: a new connection per transfer. */
	for (unsigned long t = 0; t < half; t++) {
		int fd = cli_connect(), err;

		if (fd < 0) {
			printf("conn %lu ERR %s\n", t + 1, cli_err_name(-fd));
			bad++;
			continue;
		}
		err = eagain_transfer(fd, t, out, in, &eagain);
		if (err) {
			printf("transfer %lu BAD %s\n", t + 1, cli_err_name(cli_errnum(err)));
			bad++;
		}
		close(fd);
	}
	/* Second half: a few long-lived connections used in turn. */
	for (int i = 0; i < EAGAIN_REUSED; i++) {
		fds[i] = cli_connect();
		if (fds[i] < 0 && o.count > half) {
			printf("conn %lu ERR %s\n", half + i + 1, cli_err_name(-fds[i]));
			fflush(stdout);
		}
	}
	for (unsigned long t = half; t < o.count; t++) {
		int *fd = &fds[t % EAGAIN_REUSED], err;

		if (*fd < 0) {
			bad++;
			continue;
		}
		err = eagain_transfer(*fd, t, out, in, &eagain);
		if (err) {
			printf("transfer %lu BAD %s\n", t + 1, cli_err_name(cli_errnum(err)));
			bad++;
			close(*fd);
			*fd = -1;
		}
	}
	for (int i = 0; i < EAGAIN_REUSED; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(out);
	free(in);
	printf("transfers %lu eagain %lu bad %lu\n", o.count, eagain, bad);
	return bad ? EXIT_FAILED : 0;
}

/* ---- rate ---- */
static int cmd_rate(void)
{
	uint64_t t0 = cli_now_us();
	unsigned long failed = 0;
	double secs;

	for (unsigned long i = 0; i < o.count; i++) {
		int fd = cli_connect();

		if (fd < 0) {
			failed++;
			tally_add_err(-fd);
			continue;
		}
		close(fd);
	}
	secs = (double)(cli_now_us() - t0) / 1e6;
	tally_print();
	printf("connects %lu failed %lu secs %.3f rate %.0f\n", o.count, failed,
	       secs, secs > 0 ? (double)(o.count - failed) / secs : 0.0);
	return failed ? EXIT_FAILED : 0;
}

/* ---- options ---- */
static void cli_usage(FILE *f)
{
	fprintf(f,
		"usage: sm-client COMMAND --addr IP:PORT [options] [--timeout SECS]\n"
		"  who    --count N [--hold] [--hold-timeout S]  tally of server ids\n"
		"  peer   [--first IP:PORT]                     print getpeername() [after a failed connect]\n"
		"  bulk   --bytes N [--chunk C] [--seed S]      checksum via sm-server sink\n"
		"  order  --conns N [--records R]               write-ordering stress (server: order)\n"
		"  eagain --transfers N --bytes B               blocking-read EAGAIN stress (server: echo)\n"
		"  rate   --count N                             connect/close rate\n"
		"--timeout bounds each connect/read/write (default 5s).\n"
		"exit: 0 ok, 3 some connection/check failed, 1 error, 2 usage\n");
}


static int cli_parse_addr(const char *s, struct sockaddr_in *sa)
{
	char ip[INET_ADDRSTRLEN];
	const char *colon = strrchr(s, ':');
	unsigned long port;

	if (!colon || (size_t)(colon - s) >= sizeof(ip))
		return -EINVAL;
	memcpy(ip, s, (size_t)(colon - s));
	ip[colon - s] = 0;
	if (sm_parse_uint(colon + 1, 1, 65535, &port))
		return -EINVAL;
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((unsigned short)port);
	return inet_pton(AF_INET, ip, &sa->sin_addr) == 1 ? 0 : -EINVAL;
}

enum cli_need { NEED_COUNT = 1, NEED_BYTES = 2 };

static const struct cli_cmd {
	const char *name;
	int (*fn)(void);
	int need;
} cli_cmds[] = {
	{ "who", cmd_who, NEED_COUNT },
	{ "peer", cmd_peer, 0 },
	{ "bulk", cmd_bulk, NEED_BYTES },
	{ "order", cmd_order, NEED_COUNT },
	{ "eagain", cmd_eagain, NEED_COUNT | NEED_BYTES },
	{ "rate", cmd_rate, NEED_COUNT },
};

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "addr", required_argument, NULL, 'a' },
		{ "first", required_argument, NULL, 'f' },
		{ "count", required_argument, NULL, 'c' },
		{ "conns", required_argument, NULL, 'c' },
		{ "transfers", required_argument, NULL, 'c' },
		{ "bytes", required_argument, NULL, 'b' },
		{ "chunk", required_argument, NULL, 'k' },
		{ "records", required_argument, NULL, 'r' },
		{ "seed", required_argument, NULL, 's' },
		{ "hold", no_argument, NULL, 'H' },
		{ "hold-timeout", required_argument, NULL, 'T' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const struct cli_cmd *cmd = NULL;
	int c, have_count = 0, have_bytes = 0;
	unsigned long v;
	sigset_t mask;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		cli_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : 0;
	}
	for (size_t i = 0; i < sizeof(cli_cmds) / sizeof(cli_cmds[0]); i++)
		if (!strcmp(argv[1], cli_cmds[i].name))
			cmd = &cli_cmds[i];
	if (!cmd) {
		fprintf(stderr, "sm-client: unknown command '%s'\n", argv[1]);
		goto bad_usage;
	}
	optind = 2;
	while ((c = getopt_long(argc, argv, "a:f:c:b:k:r:s:HT:t:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (cli_parse_addr(optarg, &o.first)) {
				fprintf(stderr, "sm-client: bad --first '%s' (want IP:PORT)\n", optarg);
				goto bad_usage;
			}
			o.have_first = 1;
			break;
		case 'a':
			if (cli_parse_addr(optarg, &o.addr)) {
				fprintf(stderr, "sm-client: bad --addr '%s' (want IP:PORT)\n", optarg);
				goto bad_usage;
			}
			o.have_addr = 1;
			break;
		case 'c':
			if (sm_parse_uint(optarg, 0, 100000000, &o.count))
				goto bad_usage;
			have_count = 1;
			break;
		case 'b':
			if (sm_parse_uint(optarg, 0, 1UL << 40, &o.bytes))
				goto bad_usage;
			have_bytes = 1;
			break;
		case 'k':
			if (sm_parse_uint(optarg, 1, 64UL << 20, &o.chunk))
				goto bad_usage;
			break;
		case 'r':
			if (sm_parse_uint(optarg, 0, 10000000, &o.records))
				goto bad_usage;
			break;
		case 's':
			if (sm_parse_uint(optarg, 0, ~0UL, &o.seed))
				goto bad_usage;
			break;
		case 'H':
			o.hold = 1;
			break;
		case 'T':
			if (sm_parse_uint(optarg, 0, 86400, &v))
				goto bad_usage;
			o.hold_timeout_s = (int)v;
			break;
		case 't':
			if (sm_parse_uint(optarg, 1, 3600, &v))
				goto bad_usage;
			o.timeout_ms = (int)v * 1000;
			break;
		case 'h':
			cli_usage(stdout);
			return 0;
		default:
			goto bad_usage;
		}
	}
	if (optind != argc || !o.have_addr ||
	    ((cmd->need & NEED_COUNT) && !have_count) ||
	    ((cmd->need & NEED_BYTES) && !have_bytes) ||
	    (!strcmp(cmd->name, "eagain") && (!o.bytes || o.bytes > (256UL << 20))) ||
	    (o.hold && strcmp(cmd->name, "who")) || (o.have_first && strcmp(cmd->name, "peer"))) {
		fprintf(stderr, "sm-client %s: missing or bad options\n", cmd->name);
		goto bad_usage;
	}
	/* --hold waits on a signalfd; block the signals before anything else. */
	if (o.hold) {
		sigemptyset(&mask);
		sigaddset(&mask, SIGTERM);
		sigaddset(&mask, SIGINT);
		sigaddset(&mask, SIGUSR1);
		sigprocmask(SIG_BLOCK, &mask, NULL);
	}
	signal(SIGPIPE, SIG_IGN);
	c = cmd->fn();
	fflush(stdout);
	return c;

bad_usage:
	cli_usage(stderr);
	return EXIT_USAGE;
}
