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
 *
 * Hostile-client modes (tests/e2e/test_hostile.sh):
 *
 *   --raw FILE [--trickle MS] [--out OUT]
 *       One connection: send FILE's bytes as they are (one byte every MS ms
 *       with --trickle) while reading responses, until the peer closes or
 *       --timeout. Prints the status tallies, "sent N" (bytes), "done N"
 *       (responses) and "end eof|reset|open MS" (how the connection ended,
 *       MS after the first byte was sent; "open": still open at --timeout).
 *       --out writes every response (head and body) to OUT.
 *   --hold N [--hold-ms MS]
 *       Open N idle connections one after another, watch them for MS ms
 *       (default 500), then send one request on each still open. Prints
 *       "connected N", "connect_failed N", "closed N" (closed by the peer
 *       while idle), the status tallies and "done N".
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
	const char *raw, *out;
	int trickle_ms;
	int hold, hold_ms;
} opt = { .count = 1, .conns = 1, .path = "/", .method = "GET", .timeout_ms = 10000,
	  .hold_ms = 500 };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static __thread FILE *body_fp;	/* where this response's body goes (--print, --out) */

static void body_out(const char *p, size_t n)
{
	if (body_fp)
		fwrite(p, 1, n, body_fp);
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

/* The request head the options describe; returns its length. */
static int req_head(char *req, size_t cap)
{
	int n;

	n = snprintf(req, cap, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: sm-hreq\r\n",
		     opt.method, opt.path, opt.host);
	for (int i = 0; i < opt.n_hdrs; i++)
		n += snprintf(req + n, cap - n, "%s\r\n", opt.hdrs[i]);
	if (opt.body_bytes > 0)
		n += snprintf(req + n, cap - n, "Content-Length: %ld\r\n", opt.body_bytes);
	n += snprintf(req + n, cap - n, "\r\n");
	return n;
}

/* Tally a response head: status, x-backend, x-envoy-overloaded. */
static void tally_head(const char *head, size_t hl, int status)
{
	char key[160];
	const char *v;
	size_t vl;

	snprintf(key, sizeof(key), "status %d", status);
	tally_add(key);
	if ((v = hdr_get(head, hl, "x-backend", &vl))) {
		snprintf(key, sizeof(key), "backend %.*s", (int)vl, v);
		tally_add(key);
	}
	if ((v = hdr_get(head, hl, "x-envoy-overloaded", &vl))) {
		snprintf(key, sizeof(key), "header x-envoy-overloaded: %.*s", (int)vl, v);
		tally_add(key);
	}
}

/*
 * Read one response: returns its status (> 0, tallied), or -errno when no
 * whole head came (EPIPE: the peer closed first). *body_err: 0 or -errno
 * from reading the body; *close_after: the connection ends after it.
 */
static int read_resp(int fd, struct resp *r, double deadline, int *close_after, int *body_err)
{
	long hl = read_head(fd, r, deadline);
	int status = 0;

	*body_err = 0;
	if (hl > 0 && sscanf(r->buf, "HTTP/1.%*d %d", &status) != 1)
		hl = -EPROTO;
	if (hl < 0)
		return (int)hl;
	if (body_fp)
		fwrite(r->buf, 1, hl, body_fp);
	tally_head(r->buf, hl, status);
	*body_err = read_body(fd, r, hl, status, deadline, close_after);
	return status;
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
	n = req_head(req, sizeof(req));

	for (;;) {
		long idx;
		double t0, deadline;
		int status, close_after = 0, err;
		char key[160];

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
		body_fp = opt.print && idx == 0 ? stdout : NULL;
		status = err ? err : read_resp(fd, r, deadline, &close_after, &err);
		body_fp = NULL;
		if (status < 0) {
			snprintf(key, sizeof(key), "ERR %s", ename(-status));
			tally_add(key);
			__atomic_add_fetch(&done_err, 1, __ATOMIC_RELAXED);
			close(fd);
			fd = -1;
			continue;
		}
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

static void print_tallies(void)
{
	qsort(tallies, n_tallies, sizeof(tallies[0]), cmp_tally);
	for (int i = 0; i < n_tallies; i++)
		printf("%s %ld\n", tallies[i].key, tallies[i].n);
}

/* --raw: the sender runs beside the reader, so a pipelined flood cannot deadlock. */
struct raw_send {
	int fd;
	const char *p;
	size_t n, sent;
	double deadline;
	double t_first;		/* when the first byte went out */
	volatile int stop;	/* the reader is done */
};

static void *raw_sender(void *arg)
{
	struct raw_send *rs = arg;
	size_t step = opt.trickle_ms > 0 ? 1 : rs->n;

	while (rs->sent < rs->n && !rs->stop) {
		size_t k = rs->n - rs->sent < step ? rs->n - rs->sent : step;

		if (!rs->sent)
			rs->t_first = now_ms();
		if (send_all(rs->fd, rs->p + rs->sent, k, rs->deadline))
			break;
		rs->sent += k;
		if (opt.trickle_ms > 0 && rs->sent < rs->n)
			usleep(opt.trickle_ms * 1000);
	}
	return NULL;
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (!fseek(f, 0, SEEK_END) && (n = ftell(f)) >= 0 && !fseek(f, 0, SEEK_SET) &&
	    (buf = malloc(n ? n : 1)) && fread(buf, 1, n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	*len = buf ? (size_t)n : 0;
	return buf;
}

static int run_raw(void)
{
	struct raw_send rs = { .fd = -1 };
	struct resp *r = calloc(1, sizeof(*r));
	FILE *out = NULL;
	pthread_t th;
	const char *how = "open";
	char *data;
	long done = 0;
	int close_after, err = 0;

	data = read_file(opt.raw, &rs.n);
	if (!data || !r || (opt.out && !(out = fopen(opt.out, "wb")))) {
		fprintf(stderr, "sm-hreq: %s: %s\n", data ? opt.out : opt.raw, strerror(errno));
		return 1;
	}
	rs.p = data;
	rs.deadline = now_ms() + opt.timeout_ms;
	rs.fd = conn_open(rs.deadline);
	if (rs.fd < 0) {
		printf("ERR %s 1\n", ename(-rs.fd));
		return 3;
	}
	rs.t_first = now_ms();
	pthread_create(&th, NULL, raw_sender, &rs);
	body_fp = out;
	for (;;) {
		int status = read_resp(rs.fd, r, rs.deadline, &close_after, &err);

		if (status > 0)
			done++;
		if (status < 0 || err) {
			err = status < 0 ? -status : -err;
			break;
		}
	}
	if (err == EPIPE)
		how = "eof";
	else if (err != ETIMEDOUT)
		how = err == ECONNRESET ? "reset" : ename(err);
	printf("end %s %.0f\n", how, now_ms() - rs.t_first);
	rs.stop = 1;
	shutdown(rs.fd, SHUT_RDWR);	/* wakes a sender blocked in poll */
	pthread_join(th, NULL);
	close(rs.fd);
	printf("sent %zu\n", rs.sent);
	print_tallies();
	printf("done %ld\n", done);
	if (out)
		fclose(out);
	free(data);
	free(r);
	return 0;
}

/* --hold: idle connections first, then one request on each that is still open. */
static int run_hold(void)
{
	int *fds = calloc(opt.hold, sizeof(*fds)), connected = 0, failed = 0, closed = 0;
	struct pollfd *pf = calloc(opt.hold, sizeof(*pf));
	struct resp *r = calloc(1, sizeof(*r));
	double deadline;
	char req[8192];
	long done = 0;
	int n, i;

	if (!fds || !pf || !r)
		return 1;
	for (i = 0; i < opt.hold; i++) {
		fds[i] = conn_open(now_ms() + opt.timeout_ms);
		if (fds[i] < 0)
			failed++;
		else
			connected++;
	}
	deadline = now_ms() + opt.hold_ms;
	for (;;) {
		int left = (int)(deadline - now_ms());

		for (i = 0; i < opt.hold; i++)
			pf[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN | POLLRDHUP };
		if (left <= 0 || poll(pf, opt.hold, left) <= 0)
			break;
		for (i = 0; i < opt.hold; i++) {
			char x;

			if (fds[i] < 0 || !pf[i].revents)
				continue;
			/* an idle connection hears nothing unless it is closed */
			if (recv(fds[i], &x, 1, MSG_DONTWAIT) <= 0 || (pf[i].revents & (POLLRDHUP | POLLHUP))) {
				close(fds[i]);
				fds[i] = -1;
				closed++;
			}
		}
	}
	n = req_head(req, sizeof(req));
	for (i = 0; i < opt.hold; i++) {
		int close_after, berr;

		if (fds[i] < 0)
			continue;
		r->len = 0;
		deadline = now_ms() + opt.timeout_ms;
		if (!send_all(fds[i], req, n, deadline) &&
		    read_resp(fds[i], r, deadline, &close_after, &berr) > 0)
			done++;
		close(fds[i]);
	}
	printf("connected %d\nconnect_failed %d\nclosed %d\n", connected, failed, closed);
	print_tallies();
	printf("done %ld\n", done);
	free(fds);
	free(pf);
	free(r);
	return 0;
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
		{ "timeout", required_argument, NULL, 't' }, { "print", no_argument, NULL, 'P' },
		{ "raw", required_argument, NULL, 'R' }, { "out", required_argument, NULL, 'o' },
		{ "trickle", required_argument, NULL, 'T' }, { "hold", required_argument, NULL, 'O' },
		{ "hold-ms", required_argument, NULL, 'M' }, {}
	};
	char ip[64] = "", *colon;
	pthread_t th[64];
	int c;

	while ((c = getopt_long(argc, argv, "a:n:c:p:h:m:H:b:t:PR:o:T:O:M:", lo, NULL)) != -1) {
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
		case 'R': opt.raw = optarg; break;
		case 'o': opt.out = optarg; break;
		case 'T': opt.trickle_ms = atoi(optarg); break;
		case 'O': opt.hold = atoi(optarg); break;
		case 'M': opt.hold_ms = atoi(optarg); break;
		default: goto usage;
		}
	}
	if (!opt.addr.sin_family || opt.count < 1 || opt.count > 10000000 || opt.conns < 1 ||
	    opt.conns > 64 || opt.timeout_ms < 1)
		goto usage;
	if (!opt.host)
		opt.host = ip;
	if (opt.raw)
		return run_raw();
	if (opt.hold)
		return opt.hold > 0 && opt.hold <= 4096 && opt.hold_ms >= 0 ? run_hold() : 2;
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
	print_tallies();
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
		"               [--method M] [-H 'name: value']... [--body-bytes N] [--timeout S] [--print]\n"
		"       sm-hreq --addr IP:PORT --raw FILE [--trickle MS] [--out FILE] [--timeout S]\n"
		"       sm-hreq --addr IP:PORT --hold N [--hold-ms MS] [request options]\n");
	return 2;
}
