// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sm-hreq: a small HTTP/1.1 client for tests: N requests over keep-alive
 * connections, tallied by status code and by the x-backend response header.
 *
 *   sm-hreq --addr IP:PORT [--count N] [--conns C] [--path P] [--host H]
 *           [--method M] [-H 'name: value']... [--body-bytes N] [--timeout S]
 *           [--print]
 *
 * Output (sorted, one per line): "status CODE N", "backend NAME N",
 * "header NAME: VALUE N" for x-envoy-overloaded, "ERR ENAME N", then
 * "latency_ms p50 X p99 Y max Z", "bytes sent S received R" (every byte
 * written to and read from the sockets) and "done N". --print prints the first
 * response whole (head and body) instead. Exit 0 when every request got a
 * response, 3 otherwise, 2 usage, 1 error. Every wait is bounded.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_TALLY 256
#define MAX_HDRS 16

struct tally {
	char key[128];
	long n;
};

static struct {
	struct sockaddr_in addr;
	long count;
	int conns;
	const char *path, *host, *method;
	const char *hdrs[MAX_HDRS];
	int n_hdrs;
	long body_bytes;
	int timeout_ms;
	int print;
} opt = { .count = 1, .conns = 1, .path = "/", .method = "GET", .timeout_ms = 10000 };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static __thread int print_now;	/* --print: this response's body goes to stdout */

static void body_out(const char *p, size_t n)
{
	if (print_now)
		fwrite(p, 1, n, stdout);
}
static struct tally tallies[MAX_TALLY];
static int n_tallies;
static long next_req, done_ok, done_err;
static double *lat;
static long n_lat;

static void tally_add(const char *key)
{
	int i;

	pthread_mutex_lock(&lock);
	for (i = 0; i < n_tallies && strcmp(tallies[i].key, key); i++)
		;
	if (i == n_tallies && n_tallies < MAX_TALLY)
		snprintf(tallies[n_tallies++].key, sizeof(tallies[0].key), "%s", key);
	if (i < MAX_TALLY)
		tallies[i].n++;
	pthread_mutex_unlock(&lock);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int wait_fd(int fd, short ev, double deadline)
{
	struct pollfd p = { .fd = fd, .events = ev };
	int left = (int)(deadline - now_ms());

	if (left <= 0)
		return -ETIMEDOUT;
	left = poll(&p, 1, left);
	if (left < 0)
		return -errno;
	return left ? 0 : -ETIMEDOUT;
}

static int conn_open(double deadline)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1, err;
	socklen_t l = sizeof(err);

	if (fd < 0)
		return -errno;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&opt.addr, sizeof(opt.addr)) && errno != EINPROGRESS) {
		err = -errno;
		close(fd);
		return err;
	}
	if ((err = wait_fd(fd, POLLOUT, deadline))) {
		close(fd);
		return err;
	}
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l);
	if (err) {
		close(fd);
		return -err;
	}
	return fd;
}

static long bytes_sent, bytes_rcvd;

/* recv() that counts what it got. */
static ssize_t rx(int fd, void *buf, size_t len)
{
	ssize_t n = recv(fd, buf, len, 0);

	if (n > 0)
		__atomic_add_fetch(&bytes_rcvd, n, __ATOMIC_RELAXED);
	return n;
}

static int send_all(int fd, const char *p, size_t n, double deadline)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EAGAIN) {
				int err = wait_fd(fd, POLLOUT, deadline);

				if (err)
					return err;
				continue;
			}
			return -errno;
		}
		__atomic_add_fetch(&bytes_sent, (long)w, __ATOMIC_RELAXED);
		p += w;
		n -= w;
	}
	return 0;
}

struct resp {
	char buf[65536];
	size_t len;		/* bytes in buf */
};

/* Read until the head is complete; returns head length or -errno. */
static long read_head(int fd, struct resp *r, double deadline)
{
	for (;;) {
		char *e = r->len ? memmem(r->buf, r->len, "\r\n\r\n", 4) : NULL;
		ssize_t n;

		if (e)
			return e + 4 - r->buf;
		if (r->len == sizeof(r->buf))
			return -E2BIG;
		n = rx(fd, r->buf + r->len, sizeof(r->buf) - r->len);
		if (n == 0)
			return -EPIPE;
		if (n < 0) {
			int err;

			if (errno != EAGAIN)
				return -errno;
			if ((err = wait_fd(fd, POLLIN, deadline)))
				return err;
			continue;
		}
		r->len += n;
	}
}

static const char *hdr_get(const char *head, size_t hl, const char *name, size_t *vl)
{
	size_t nl = strlen(name);

	for (const char *p = memmem(head, hl, "\r\n", 2); p && p + 2 < head + hl;
	     p = memmem(p + 2, head + hl - p - 2, "\r\n", 2)) {
		const char *l = p + 2, *e = memmem(l, head + hl - l, "\r\n", 2);

		if (!e)
			break;
		if ((size_t)(e - l) > nl && l[nl] == ':' && !strncasecmp(l, name, nl)) {
			const char *v = l + nl + 1;

			while (v < e && (*v == ' ' || *v == '\t'))
				v++;
			*vl = e - v;
			return v;
		}
	}
	return NULL;
}

/* Consume the body that follows a head of length hl; -errno on failure. */
static int read_body(int fd, struct resp *r, size_t hl, int status, double deadline, int *close_after)
{
	size_t vl;
	const char *cl = hdr_get(r->buf, hl, "content-length", &vl);
	const char *te = hdr_get(r->buf, hl, "transfer-encoding", &vl);
	const char *cn = hdr_get(r->buf, hl, "connection", &vl);
	/* decide from the head before the body overwrites it */
	int chunked = te && !strncasecmp(te, "chunked", 7), has_cl = cl != NULL;
	long long want = cl ? strtoll(cl, NULL, 10) : 0;

	*close_after = cn && !strncasecmp(cn, "close", 5);
	memmove(r->buf, r->buf + hl, r->len - hl);
	r->len -= hl;
	if (status / 100 == 1 || status == 204 || status == 304 || !strcmp(opt.method, "HEAD"))
		return 0;
	if (chunked) {
		/* size line, data (streamed), CRLF; after the 0 chunk, trailer lines to an empty one */
		long long left = -1;	/* -1: expecting a size line */
		int trailers = 0;

		for (;;) {
			char *e;

			if (left > 0) {
				size_t take = r->len < (size_t)left ? r->len : (size_t)left;

				body_out(r->buf, take);
				memmove(r->buf, r->buf + take, r->len - take);
				r->len -= take;
				left -= take;
			}
			if (left == 0 && r->len >= 2) {	/* CRLF after the data */
				memmove(r->buf, r->buf + 2, r->len - 2);
				r->len -= 2;
				left = -1;
			}
			while (left < 0 && (e = memmem(r->buf, r->len, "\r\n", 2))) {
				size_t used = e - r->buf + 2;

				if (trailers && e == r->buf) {
					memmove(r->buf, r->buf + 2, r->len - 2);
					r->len -= 2;
					return 0;
				}
				if (!trailers) {
					long long sz = strtoll(r->buf, NULL, 16);

					if (sz == 0)
						trailers = 1;
					else
						left = sz;
				}
				memmove(r->buf, r->buf + used, r->len - used);
				r->len -= used;
				if (left > 0)
					break;
			}
			if (left > 0 && r->len)
				continue;
			{
				ssize_t n;
				int err;

				if (r->len == sizeof(r->buf))
					return -E2BIG;	/* a size or trailer line longer than the buffer */
				if ((err = wait_fd(fd, POLLIN, deadline)))
					return err;
				n = rx(fd, r->buf + r->len, sizeof(r->buf) - r->len);
				if (n <= 0)
					return n ? -errno : -EPIPE;
				r->len += n;
			}
		}
	}
	if (!has_cl) {
		*close_after = 1;	/* until close */
		for (;;) {
			ssize_t n;
			int err = wait_fd(fd, POLLIN, deadline);

			if (err)
				return err;
			n = rx(fd, r->buf, sizeof(r->buf));
			if (n <= 0)
				return 0;
			body_out(r->buf, n);
		}
	}
	while (want > 0) {
		ssize_t n;
		int err;

		if ((long long)r->len >= want) {
			body_out(r->buf, want);
			memmove(r->buf, r->buf + want, r->len - want);
			r->len -= want;
			return 0;
		}
		want -= r->len;
		body_out(r->buf, r->len);
		r->len = 0;
		if ((err = wait_fd(fd, POLLIN, deadline)))
			return err;
		n = rx(fd, r->buf, sizeof(r->buf));
		if (n <= 0)
			return n ? -errno : -EPIPE;
		r->len = n;
	}
	return 0;
}

static const char *ename(int err)
{
	switch (err) {
	case ECONNREFUSED: return "ECONNREFUSED";
	case ECONNRESET: return "ECONNRESET";
	case ETIMEDOUT: return "ETIMEDOUT";
	case EPIPE: return "EOF";
	case ENETUNREACH: return "ENETUNREACH";
	case E2BIG: return "E2BIG";
	case EHOSTUNREACH: return "EHOSTUNREACH";
	default: return "EOTHER";
	}
}

static void *worker(void *arg)
{
	struct resp *r = calloc(1, sizeof(*r));
	char req[8192], *body = NULL;
	int fd = -1, n;

	(void)arg;
	if (opt.body_bytes > 0) {
		body = malloc(opt.body_bytes);
		memset(body, 'b', opt.body_bytes);
	}
	n = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: sm-hreq\r\n",
		     opt.method, opt.path, opt.host);
	for (int i = 0; i < opt.n_hdrs; i++)
		n += snprintf(req + n, sizeof(req) - n, "%s\r\n", opt.hdrs[i]);
	if (body)
		n += snprintf(req + n, sizeof(req) - n, "Content-Length: %ld\r\n", opt.body_bytes);
	n += snprintf(req + n, sizeof(req) - n, "\r\n");

	for (;;) {
		long idx;
		double t0, deadline;
		long hl;
		int status = 0, close_after = 0, err;
		char key[160];
		size_t vl;
		const char *v;

		pthread_mutex_lock(&lock);
		idx = next_req < opt.count ? next_req++ : -1;
		pthread_mutex_unlock(&lock);
		if (idx < 0)
			break;
		t0 = now_ms();
		deadline = t0 + opt.timeout_ms;
		if (fd < 0) {
			fd = conn_open(deadline);
			r->len = 0;
			if (fd < 0) {
				snprintf(key, sizeof(key), "ERR %s", ename(-fd));
				tally_add(key);
				__atomic_add_fetch(&done_err, 1, __ATOMIC_RELAXED);
				fd = -1;
				continue;
			}
		}
		err = send_all(fd, req, n, deadline);
		if (!err && body)
			err = send_all(fd, body, opt.body_bytes, deadline);
		hl = err ? err : read_head(fd, r, deadline);
		if (hl > 0 && sscanf(r->buf, "HTTP/1.%*d %d", &status) != 1)
			hl = -EPROTO;
		if (hl < 0) {
			snprintf(key, sizeof(key), "ERR %s", ename((int)-hl));
			tally_add(key);
			__atomic_add_fetch(&done_err, 1, __ATOMIC_RELAXED);
			close(fd);
			fd = -1;
			continue;
		}
		if (opt.print && idx == 0) {
			fwrite(r->buf, 1, hl, stdout);
			print_now = 1;
		}
		snprintf(key, sizeof(key), "status %d", status);
		tally_add(key);
		if ((v = hdr_get(r->buf, hl, "x-backend", &vl))) {
			snprintf(key, sizeof(key), "backend %.*s", (int)vl, v);
			tally_add(key);
		}
		if ((v = hdr_get(r->buf, hl, "x-envoy-overloaded", &vl))) {
			snprintf(key, sizeof(key), "header x-envoy-overloaded: %.*s", (int)vl, v);
			tally_add(key);
		}
		err = read_body(fd, r, hl, status, deadline, &close_after);
		print_now = 0;
		pthread_mutex_lock(&lock);
		lat[n_lat++] = now_ms() - t0;
		pthread_mutex_unlock(&lock);
		__atomic_add_fetch(&done_ok, 1, __ATOMIC_RELAXED);
		if (err || close_after) {
			close(fd);
			fd = -1;
		}
	}
	if (fd >= 0)
		close(fd);
	free(body);
	free(r);
	return NULL;
}

static int cmp_tally(const void *a, const void *b)
{
	return strcmp(((const struct tally *)a)->key, ((const struct tally *)b)->key);
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "addr", required_argument, NULL, 'a' }, { "count", required_argument, NULL, 'n' },
		{ "conns", required_argument, NULL, 'c' }, { "path", required_argument, NULL, 'p' },
		{ "host", required_argument, NULL, 'h' }, { "method", required_argument, NULL, 'm' },
		{ "header", required_argument, NULL, 'H' }, { "body-bytes", required_argument, NULL, 'b' },
		{ "timeout", required_argument, NULL, 't' }, { "print", no_argument, NULL, 'P' }, {}
	};
	char ip[64] = "", *colon;
	pthread_t th[64];
	int c;

	while ((c = getopt_long(argc, argv, "a:n:c:p:h:m:H:b:t:P", lo, NULL)) != -1) {
		switch (c) {
		case 'a':
			snprintf(ip, sizeof(ip), "%s", optarg);
			colon = strrchr(ip, ':');
			if (!colon)
				goto usage;
			*colon = '\0';
			opt.addr.sin_family = AF_INET;
			opt.addr.sin_port = htons((uint16_t)atoi(colon + 1));
			if (inet_pton(AF_INET, ip, &opt.addr.sin_addr) != 1)
				goto usage;
			break;
		case 'n': opt.count = atol(optarg); break;
		case 'c': opt.conns = atoi(optarg); break;
		case 'p': opt.path = optarg; break;
		case 'h': opt.host = optarg; break;
		case 'm': opt.method = optarg; break;
		case 'H':
			if (opt.n_hdrs == MAX_HDRS)
				goto usage;
			opt.hdrs[opt.n_hdrs++] = optarg;
			break;
		case 'b': opt.body_bytes = atol(optarg); break;
		case 't': opt.timeout_ms = (int)(atof(optarg) * 1000); break;
		case 'P': opt.print = 1; break;
		default: goto usage;
		}
	}
	if (!opt.addr.sin_family || opt.count < 1 || opt.count > 10000000 || opt.conns < 1 ||
	    opt.conns > 64 || opt.timeout_ms < 1)
		goto usage;
	if (!opt.host)
		opt.host = ip;
	lat = calloc(opt.count, sizeof(*lat));
	if (!lat)
		return 1;
	if (opt.print)
		opt.count = 1;
	for (int i = 0; i < opt.conns; i++)
		pthread_create(&th[i], NULL, worker, NULL);
	for (int i = 0; i < opt.conns; i++)
		pthread_join(th[i], NULL);
	if (opt.print)
		return done_err ? 3 : 0;
	qsort(tallies, n_tallies, sizeof(tallies[0]), cmp_tally);
	for (int i = 0; i < n_tallies; i++)
		printf("%s %ld\n", tallies[i].key, tallies[i].n);
	if (n_lat) {
		qsort(lat, n_lat, sizeof(*lat), cmp_d);
		printf("latency_ms p50 %.3f p99 %.3f max %.3f\n", lat[n_lat / 2],
		       lat[(long)(n_lat * 0.99) < n_lat ? (long)(n_lat * 0.99) : n_lat - 1], lat[n_lat - 1]);
	}
	printf("bytes sent %ld received %ld\n", bytes_sent, bytes_rcvd);
	printf("done %ld\n", done_ok);
	return done_err ? 3 : 0;
usage:
	fprintf(stderr, "usage: sm-hreq --addr IP:PORT [--count N] [--conns C] [--path P] [--host H]\n"
		"               [--method M] [-H 'name: value']... [--body-bytes N] [--timeout S] [--print]\n");
	return 2;
}
