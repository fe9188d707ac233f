// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sm-bench-http: HTTP/1.1 load generator for `make bench` scenario 2.
 *
 *   sm-bench-http --addr IP:PORT [--conns C] [--rate R] [--secs S (may be 0.5)]
 *                 [--path P] [-H 'name: value']...
 *
 * --rate R > 0: open loop. Request k is due at start + k/R seconds, spread
 *   evenly (not in timer bursts), on connection k % C; a connection still
 *   waiting for its previous response queues it. Latency runs from the due
 *   time to the last byte of the response, so a stall is charged to every
 *   request it delays (no coordinated omission).
 * --rate 0: closed loop, each connection sends its next request as soon as
 *   the previous response is complete (maximum rate).
 * Keep-alive connections, one request in flight per connection. Responses
 * must carry Content-Length. Single thread, epoll.
 *
 * stdout: "http requests N errors E secs S rps X p50_us X p99_us X
 *          p999_us X max_us X" then "backend NAME N" per value of the
 *          x-backend response header (sorted).
 * Exit: 0 ok, 3 errors or nothing completed, 1 runtime error, 2 usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/parse.h"
#include "sm-bench-lat.h"

#define EXIT_FAILED	3
#define EXIT_USAGE	2
#define MAX_CONNS	1024
#define MAX_HDRS	8
#define RBUF_SIZE	65536
#define MAX_BACKENDS	16
#define MAX_SAMPLES	(4 * 1000 * 1000)
#define STALL_NS	(5ULL * 1000000000ULL)	/* a response later than this is an error */
/*
 * The loop sleeps until this long before a request is due and polls from
 * there: a late wake-up would be charged to the request as latency.
 */
#define EARLY_NS	50000ULL

struct conn {
	int fd;
	int busy;		/* a request is in flight */
	uint64_t sent_due;	/* due time of the request in flight (ns) */
	struct lat_queue q;	/* due times of requests waiting for this connection */
	char *rbuf;
	size_t rlen;
};

static struct {
	struct sockaddr_in addr;
	unsigned long conns, rate;
	double secs;
	const char *path;
	const char *hdrs[MAX_HDRS];
	int nhdrs;
} o = { .conns = 8, .secs = 5.0, .path = "/" };

static char req[2048];
static size_t req_len;
static uint64_t *samples;
static size_t nsamples;
static unsigned long n_errors;
static struct {
	char name[32];
	unsigned long n;
} backends[MAX_BACKENDS];
static int nbackends;

static int conn_open(struct conn *c, int ep)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct timeval tv = { .tv_sec = 5 };
	int one = 1;

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -errno;
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)&o.addr, sizeof(o.addr))) {
		int err = -errno;

		close(c->fd);
		c->fd = -1;
		return err;
	}
	/* blocking connect (bounded by SO_SNDTIMEO), then non-blocking reads */
	fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
	ev.data.ptr = c;
	epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
	c->rlen = 0;
	c->busy = 0;
	return 0;
}

static int conn_send(struct conn *c, uint64_t due)
{
	size_t off = 0;

	while (off < req_len) {
		ssize_t w = write(c->fd, req + off, req_len - off);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		off += (size_t)w;
	}
	c->busy = 1;
	c->sent_due = due;
	return 0;
}

static void backend_count(const char *v, size_t len)
{
	int i;

	if (len >= sizeof(backends[0].name))
		len = sizeof(backends[0].name) - 1;
	for (i = 0; i < nbackends; i++)
		if (strlen(backends[i].name) == len && !memcmp(backends[i].name, v, len))
			break;
	if (i == nbackends) {
		if (nbackends == MAX_BACKENDS)
			return;
		memcpy(backends[i].name, v, len);
		backends[i].name[len] = 0;
		nbackends++;
	}
	backends[i].n++;
}

/*
 * Length of the complete response at the start of c->rbuf, 0 when more
 * bytes are needed, -EPROTO when it is not a response this tool handles.
 */
static ssize_t resp_complete(struct conn *c)
{
	char *end, *p, *line;
	long clen = -1;
	size_t head;

	if (c->rlen < 12)
		return 0;
	end = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
	if (!end)
		return c->rlen == RBUF_SIZE ? -EPROTO : 0;
	head = (size_t)(end - c->rbuf) + 4;
	if (memcmp(c->rbuf, "HTTP/1.1 2", 10))
		return -EPROTO;
	for (line = memchr(c->rbuf, '\n', head) + 1; line < end; line = p + 1) {
		p = memchr(line, '\n', (size_t)(end + 2 - line));
		if (!p)
			break;
		if (!strncasecmp(line, "content-length:", 15))
			clen = strtol(line + 15, NULL, 10);
		else if (!strncasecmp(line, "x-backend:", 10)) {
			char *v = line + 10;
			size_t n;

			while (*v == ' ')
				v++;
			n = (size_t)(p - v);
			while (n && (v[n - 1] == '\r' || v[n - 1] == ' '))
				n--;
			backend_count(v, n);
		}
	}
	if (clen < 0 || clen > RBUF_SIZE)
		return -EPROTO;
	return c->rlen >= head + (size_t)clen ? (ssize_t)(head + (size_t)clen) : 0;
}

/* Reads what is there; completes responses; sends the next queued request. */
static int conn_on_readable(struct conn *c)
{
	for (;;) {
		ssize_t r = read(c->fd, c->rbuf + c->rlen, RBUF_SIZE - c->rlen), n;

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			return 0;
		if (r <= 0)
			return r ? -errno : -EPIPE;
		c->rlen += (size_t)r;
		n = resp_complete(c);
		if (n < 0)
			return (int)n;
		if (n == 0)
			continue;
		if (!c->busy)
			return -EPROTO;
		if (nsamples < MAX_SAMPLES)
			samples[nsamples++] = lat_now_ns() - c->sent_due;
		memmove(c->rbuf, c->rbuf + n, c->rlen - (size_t)n);
		c->rlen -= (size_t)n;
		c->busy = 0;
		if (o.rate == 0)
			return conn_send(c, lat_now_ns());
		if (c->q.len)
			return conn_send(c, lat_queue_pop(&c->q));
		return 0;
	}
}

static int cmp_backend(const void *a, const void *b)
{
	return strcmp(a, b);	/* name is the first member */
}

static int run(void)
{
	struct conn *cs = calloc(o.conns, sizeof(*cs));
	struct epoll_event evs[64];
	uint64_t t0, end, next_due, k = 0, interval;
	int ep = epoll_create1(EPOLL_CLOEXEC);

	if (!cs || ep < 0)
		return 1;
	for (unsigned long i = 0; i < o.conns; i++) {
		int err;

		cs[i].rbuf = malloc(RBUF_SIZE);
		if (!cs[i].rbuf)
			return 1;
		err = conn_open(&cs[i], ep);
		if (err) {
			printf("ERR connect %s\n", strerrorname_np(-err) ?: "?");
			return EXIT_FAILED;
		}
	}
	interval = o.rate ? 1000000000ULL / o.rate : 0;
	t0 = lat_now_ns();
	end = t0 + (uint64_t)(o.secs * 1e9);
	next_due = t0;
	if (!o.rate)
		for (unsigned long i = 0; i < o.conns; i++)
			if (conn_send(&cs[i], t0))
				n_errors++;
	for (;;) {
		uint64_t now = lat_now_ns();
		struct timespec ts = { 0 };
		int n;

		/* schedule every request that is due */
		while (o.rate && next_due <= now && next_due < end) {
			struct conn *c = &cs[k % o.conns];

			if (c->fd >= 0 && (c->busy ? lat_queue_push(&c->q, next_due) : conn_send(c, next_due)))
				n_errors++;
			k++;
			next_due = t0 + k * interval;
		}
		if (now >= end + (o.rate ? STALL_NS : 0))
			break;
		if (now >= end) {
			int idle = 1;

			for (unsigned long i = 0; i < o.conns; i++)
				if (cs[i].fd >= 0 && (cs[i].busy || cs[i].q.len))
					idle = 0;
			if (idle || !o.rate)
				break;
		}
		if (o.rate && next_due < end && next_due > now)
			ts.tv_nsec = next_due - now > EARLY_NS ? (long)(next_due - now - EARLY_NS) : 0;
		else
			ts.tv_nsec = 10000000;
		n = epoll_pwait2(ep, evs, 64, &ts, NULL);
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;

			if (conn_on_readable(c)) {
				n_errors++;
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				close(c->fd);
				n_errors += c->q.len;
				c->q.len = 0;
				if (conn_open(c, ep))
					c->fd = -1;
			}
		}
	}
	/* open loop: what is still owed after the stall allowance failed; the
	 * closed loop just stops with one request per connection in flight */
	for (unsigned long i = 0; o.rate && i < o.conns; i++)
		if (cs[i].fd >= 0 && (cs[i].busy || cs[i].q.len))
			n_errors += (unsigned long)cs[i].busy + cs[i].q.len;
	{
		double secs = (double)(lat_now_ns() - t0) / 1e9;

		if (!nsamples) {
			printf("ERR no responses (errors %lu)\n", n_errors);
			return EXIT_FAILED;
		}
		qsort(samples, nsamples, sizeof(*samples), lat_cmp_u64);
		if (!o.rate)
			secs = o.secs;
		printf("http requests %zu errors %lu secs %.3f rps %.0f p50_us %.1f p99_us %.1f "
		       "p999_us %.1f max_us %.1f\n", nsamples, n_errors, secs,
		       (double)nsamples / secs, lat_pct_us(samples, nsamples, 50),
		       lat_pct_us(samples, nsamples, 99), lat_pct_us(samples, nsamples, 99.9),
		       (double)samples[nsamples - 1] / 1e3);
		qsort(backends, (size_t)nbackends, sizeof(backends[0]), cmp_backend);
		for (int i = 0; i < nbackends; i++)
			printf("backend %s %lu\n", backends[i].name, backends[i].n);
	}
	return n_errors ? EXIT_FAILED : 0;
}


static void usage(FILE *f)
{
	fprintf(f, "usage: sm-bench-http --addr IP:PORT [--conns C] [--rate R (0: max)] [--secs S]\n"
		   "                     [--path P] [-H 'name: value']...\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "addr", required_argument, NULL, 'a' },
		{ "conns", required_argument, NULL, 'c' },
		{ "rate", required_argument, NULL, 'r' },
		{ "secs", required_argument, NULL, 's' },
		{ "path", required_argument, NULL, 'p' },
		{ "header", required_argument, NULL, 'H' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c, have_addr = 0, n;

	while ((c = getopt_long(argc, argv, "H:h", opts, NULL)) != -1) {
		switch (c) {
		case 'a':
			if (lat_parse_addr(optarg, &o.addr))
				goto bad;
			have_addr = 1;
			break;
		case 'c':
			if (sm_parse_uint(optarg, 1, MAX_CONNS, &o.conns))
				goto bad;
			break;
		case 'r':
			if (sm_parse_uint(optarg, 0, 1000000, &o.rate))
				goto bad;
			break;
		case 's':
			if (lat_parse_secs(optarg, &o.secs))
				goto bad;
			break;
		case 'p':
			o.path = optarg;
			break;
		case 'H':
			if (o.nhdrs == MAX_HDRS || strpbrk(optarg, "\r\n"))
				goto bad;
			o.hdrs[o.nhdrs++] = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			goto bad;
		}
	}
	if (!have_addr || optind != argc)
		goto bad;
	n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: bench\r\nUser-Agent: sm-bench-http\r\n", o.path);
	for (int i = 0; i < o.nhdrs && n > 0 && (size_t)n < sizeof(req); i++)
		n += snprintf(req + n, sizeof(req) - (size_t)n, "%s\r\n", o.hdrs[i]);
	if (n <= 0 || (size_t)n + 3 > sizeof(req))
		goto bad;
	n += snprintf(req + n, sizeof(req) - (size_t)n, "\r\n");
	req_len = (size_t)n;
	/* timers fire on time instead of up to 50 µs late (the default slack) */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	samples = malloc(MAX_SAMPLES * sizeof(*samples));
	if (!samples)
		return 1;
	return run();
bad:
	usage(stderr);
	return EXIT_USAGE;
}
