// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sm-bench-h2: HTTP/2 (h2c, prior knowledge) load generator and backend for
 * `make bench` scenario 6, on libnghttp2. Single thread, epoll.
 *
 *   sm-bench-h2 load --addr IP:PORT [--conns C] [--streams M] [--rate R]
 *                    [--secs S] [--path P] [--body BYTES] [-H 'name: value']...
 *     gRPC-shaped unary requests: POST, content-type application/grpc,
 *     te: trailers, a BYTES body. --rate R > 0: open loop. Request k is due
 *     at start + k/R s (spread evenly) on connection k % C; when that
 *     connection already has M streams in flight it waits in the
 *     connection's queue. Latency runs from the due time to the end of the
 *     response stream, so a stall is charged to every request it delays (no
 *     coordinated omission). --rate 0: closed loop, M streams in flight per
 *     connection. A 2xx response ended cleanly is a success; anything else
 *     (status, RST_STREAM, a connection lost, nothing after 5 s) an error.
 *     stdout: "h2 requests N errors E secs S rps X p50_us X p99_us X
 *              p999_us X max_us X lag_p99_us X", lag: how late this loop
 *     noticed requests were due (its own scheduling delay, a floor under
 *     every latency figure on a busy machine).
 *
 *   sm-bench-h2 hold --addr IP:PORT --total N [--conns C] [--path P]
 *                    [--hold-secs S] [--max-secs T] [-H 'name: value']...
 *     Opens N streams over C connections (N/C each, the rest on the first
 *     ones) whose request bodies stay open, and waits until every stream
 *     has its response head (they are then open end to end through a
 *     proxy). Prints "open N opened O secs X" and holds them until SIGUSR1
 *     or --hold-secs (default 30), then ends every request and waits for
 *     the responses. Opening and holding are bounded by --max-secs (default
 *     60), the responses after it by 5 s more.
 *     stdout (last line): "hold streams N opened O completed K errors E"
 *
 *   sm-bench-h2 serve --listen IP:PORT [--body BYTES] [--max-streams M]
 *     Backend: every request gets its response head (200,
 *     application/grpc) at once; the BYTES body and the trailer
 *     grpc-status: 0 follow when the request has ended. Advertises
 *     SETTINGS_MAX_CONCURRENT_STREAMS M (default 128, nginx's default).
 *
 * Exit: 0 ok, 3 errors or nothing completed, 1 runtime error, 2 usage.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/parse.h"
#include "sm-bench-lat.h"

#define EXIT_FAILED	3
#define EXIT_USAGE	2
#define MAX_CONNS	4096
#define MAX_HDRS	8
#define MAX_BODY	(1 << 20)
#define MAX_SAMPLES	(4 * 1000 * 1000)
#define MAX_TOTAL	1000000
#define STALL_NS	(5ULL * 1000000000ULL)	/* a response later than this is an error */
#define EARLY_NS	50000ULL	/* wake this long before a request is due, then poll */
#define RBUF_SIZE	65536
#define NS		1000000000ULL

enum mode { MODE_LOAD, MODE_HOLD, MODE_SERVE };

static struct {
	enum mode mode;
	struct sockaddr_in addr;
	char authority[32];
	uint64_t conns, streams, rate, body, total, max_streams;
	double secs, hold_secs, max_secs;
	const char *path;
	nghttp2_nv hdrs[MAX_HDRS];
	int nhdrs;
} o = {
	.conns = 4, .streams = 16, .body = 1024, .max_streams = 128,
	.secs = 5.0, .hold_secs = 30.0, .max_secs = 60.0, .path = "/",
};

static char *body;
static uint64_t *samples, *lags;
static size_t nsamples, nlags;
static unsigned long n_errors, n_opened, n_completed, n_closed;
static nghttp2_session_callbacks *cbs;
static uint64_t load_end;	/* closed loop: no new request after this */

/* One stream, client or server side; linked into its connection's list. */
struct stream {
	struct stream *next, *prev;
	struct conn *c;
	int32_t id;
	int status;		/* client: the response's :status */
	int head;		/* client: response head seen; server: response submitted */
	int req_ended;		/* server: the request has ended; hold client: end it now */
	uint64_t due;		/* client: due time (ns) */
	size_t sent;		/* body bytes handed to nghttp2 */
};

struct conn {
	int fd;
	int dead;
	uint32_t ev;		/* events armed in epoll */
	nghttp2_session *s;
	struct stream head;	/* list sentinel */
	uint64_t inflight;
	struct lat_queue q;	/* due times waiting for a stream slot */
};

static int ep = -1;

#define MAKE_NV(n, v) { (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), \
			NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE }

static void stream_link(struct conn *c, struct stream *st)
{
	st->c = c;
	st->next = c->head.next;
	st->prev = &c->head;
	c->head.next->prev = st;
	c->head.next = st;
}

static void stream_del(struct stream *st)
{
	st->prev->next = st->next;
	st->next->prev = st->prev;
	free(st);
}

static struct conn *conn_new(int fd)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->fd = fd;
	c->head.next = c->head.prev = &c->head;
	return c;
}

/* Closes the socket; the streams still open are counted by the caller. */
static void conn_close(struct conn *c)
{
	if (c->dead)
		return;
	c->dead = 1;
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	nghttp2_session_del(c->s);
	c->s = NULL;
	while (c->head.next != &c->head)
		stream_del(c->head.next);
}

static ssize_t on_send(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *user)
{
	struct conn *c = user;
	ssize_t w;

	do
		w = send(c->fd, data, len, MSG_NOSIGNAL);
	while (w < 0 && errno == EINTR);
	if (w < 0)
		return errno == EAGAIN ? NGHTTP2_ERR_WOULDBLOCK : NGHTTP2_ERR_CALLBACK_FAILURE;
	return w;
}

/* Sends what nghttp2 has; arms EPOLLOUT while the socket is full. */
static int conn_flush(struct conn *c)
{
	uint32_t want = EPOLLIN;
	struct epoll_event ev;

	if (c->dead)
		return -EPIPE;
	if (nghttp2_session_send(c->s))
		return -EIO;
	if (nghttp2_session_want_write(c->s))
		want |= EPOLLOUT;
	if (want != c->ev) {
		ev.events = want;
		ev.data.ptr = c;
		if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev))
			return -errno;
		c->ev = want;
	}
	return 0;
}

static int conn_on_readable(struct conn *c)
{
	uint8_t buf[RBUF_SIZE];

	for (;;) {
		ssize_t r = read(c->fd, buf, sizeof(buf));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			break;
		if (r <= 0)
			return r ? -errno : -EPIPE;
		if (nghttp2_session_mem_recv(c->s, buf, (size_t)r) != r)
			return -EPROTO;
	}
	return conn_flush(c);
}

/* ---- body data sources ---- */

/* Client request body: BYTES (load), or nothing until told (hold). */
static ssize_t req_body_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len,
			     uint32_t *flags, nghttp2_data_source *src, void *user)
{
	struct stream *st = src->ptr;
	size_t n;

	if (o.mode == MODE_HOLD) {
		if (!st->req_ended)
			return NGHTTP2_ERR_DEFERRED;
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		return 0;
	}
	n = o.body - st->sent < len ? o.body - st->sent : len;
	memcpy(buf, body + st->sent, n);
	st->sent += n;
	if (st->sent == o.body)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

/* Server response body: BYTES once the request has ended, then trailers. */
static ssize_t resp_body_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len,
			      uint32_t *flags, nghttp2_data_source *src, void *user)
{
	static const nghttp2_nv trailer[] = { MAKE_NV("grpc-status", "0") };
	struct stream *st = src->ptr;
	size_t n;

	if (!st->req_ended)
		return NGHTTP2_ERR_DEFERRED;
	n = o.body - st->sent < len ? o.body - st->sent : len;
	memcpy(buf, body + st->sent, n);
	st->sent += n;
	if (st->sent == o.body) {
		*flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
		if (nghttp2_submit_trailer(s, id, trailer, 1))
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	return (ssize_t)n;
}

/* ---- client ---- */

static int client_submit(struct conn *c, uint64_t due)
{
	nghttp2_nv nva[6 + MAX_HDRS] = {
		MAKE_NV(":method", "POST"),
		MAKE_NV(":scheme", "http"),
		MAKE_NV(":path", o.path),
		MAKE_NV(":authority", o.authority),
		MAKE_NV("content-type", "application/grpc"),
		MAKE_NV("te", "trailers"),
	};
	nghttp2_data_provider prd = { .read_callback = req_body_read };
	struct stream *st = calloc(1, sizeof(*st));
	int32_t id;

	if (!st)
		return -ENOMEM;
	memcpy(nva + 6, o.hdrs, (size_t)o.nhdrs * sizeof(nva[0]));
	st->due = due;
	prd.source.ptr = st;
	id = nghttp2_submit_request(c->s, NULL, nva, 6 + (size_t)o.nhdrs, &prd, st);
	if (id < 0) {
		free(st);
		return -EIO;
	}
	st->id = id;
	stream_link(c, st);
	c->inflight++;
	return 0;
}

static int client_on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
			    size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
			    void *user)
{
	struct stream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);

	if (st && f->hd.type == NGHTTP2_HEADERS && namelen == 7 && !memcmp(name, ":status", 7))
		st->status = (int)strtol((const char *)value, NULL, 10);
	(void)valuelen;
	return 0;
}

static int client_on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *user)
{
	struct stream *st;

	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_RESPONSE)
		return 0;
	st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
	if (st && !st->head && st->status >= 200) {
		st->head = 1;
		n_opened++;
	}
	return 0;
}

static int client_on_stream_close(nghttp2_session *s, int32_t id, uint32_t err, void *user)
{
	struct stream *st = nghttp2_session_get_stream_user_data(s, id);
	struct conn *c = user;

	if (!st)
		return 0;
	n_closed++;
	if (err || st->status < 200 || st->status > 299)
		n_errors++;
	else if (o.mode == MODE_HOLD && !st->req_ended)
		n_errors++;	/* a held stream must not end before we end it */
	else {
		n_completed++;
		if (o.mode == MODE_LOAD && nsamples < MAX_SAMPLES)
			samples[nsamples++] = lat_now_ns() - st->due;
	}
	stream_del(st);
	c->inflight--;
	if (o.mode != MODE_LOAD)
		return 0;
	if (c->q.len) {
		if (client_submit(c, lat_queue_pop(&c->q)))
			n_errors++;
	} else if (!o.rate && lat_now_ns() < load_end) {
		if (client_submit(c, lat_now_ns()))
			n_errors++;
	}
	return 0;
}

/* Blocking connect (bounded by SO_SNDTIMEO), then a non-blocking session. */
static struct conn *client_open(void)
{
	nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20 },
	};
	struct epoll_event ev = { .events = EPOLLIN };
	struct timeval tv = { .tv_sec = 5 };
	struct conn *c;
	int one = 1, fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&o.addr, sizeof(o.addr)) ||
	    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) || !(c = conn_new(fd))) {
		printf("ERR connect %s\n", strerrorname_np(errno) ?: "?");
		close(fd);
		return NULL;
	}
	ev.data.ptr = c;
	c->ev = EPOLLIN;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) || nghttp2_session_client_new(&c->s, cbs, c) ||
	    nghttp2_submit_settings(c->s, NGHTTP2_FLAG_NONE, iv, 2) ||
	    /* the connection window too: held responses add up */
	    nghttp2_session_set_local_window_size(c->s, NGHTTP2_FLAG_NONE, 0, 1 << 24)) {
		printf("ERR session\n");
		close(fd);
		return NULL;
	}
	return c;
}

static struct conn **clients_open(void)
{
	struct conn **cs = calloc(o.conns, sizeof(*cs));

	if (!cs)
		return NULL;
	for (uint64_t i = 0; i < o.conns; i++)
		if (!(cs[i] = client_open()))
			return NULL;
	return cs;
}

/* Waits for events up to @wait_ns; a connection that fails has its streams counted as errors. */
static int clients_poll(uint64_t wait_ns, int sfd)
{
	struct epoll_event evs[64];
	struct timespec ts = { .tv_sec = (time_t)(wait_ns / NS), .tv_nsec = (long)(wait_ns % NS) };
	int n, got_signal = 0;

	n = epoll_pwait2(ep, evs, 64, &ts, NULL);
	for (int i = 0; i < n; i++) {
		struct conn *c = evs[i].data.ptr;
		int err;

		if (!c) {
			struct signalfd_siginfo si;

			got_signal = read(sfd, &si, sizeof(si)) == sizeof(si);
			continue;
		}
		if (c->dead)
			continue;
		err = evs[i].events & EPOLLIN ? conn_on_readable(c) : conn_flush(c);
		if (err) {
			n_errors += c->inflight + c->q.len;
			n_closed += c->inflight;
			c->inflight = 0;
			c->q.len = 0;
			conn_close(c);
		}
	}
	return got_signal;
}

static int run_load(void)
{
	uint64_t t0, end, next_due, k = 0, interval;
	struct conn **cs;

	samples = malloc(MAX_SAMPLES * sizeof(*samples));
	lags = malloc(MAX_SAMPLES * sizeof(*lags));
	cs = clients_open();
	if (!samples || !lags || !cs)
		return EXIT_FAILED;
	interval = o.rate ? NS / o.rate : 0;
	t0 = lat_now_ns();
	end = load_end = t0 + (uint64_t)(o.secs * 1e9);
	next_due = t0;
	for (uint64_t i = 0; !o.rate && i < o.conns; i++) {
		for (uint64_t j = 0; j < o.streams; j++)
			if (client_submit(cs[i], t0))
				n_errors++;
		if (conn_flush(cs[i]))
			return EXIT_FAILED;
	}
	for (;;) {
		uint64_t now = lat_now_ns(), wait;
		int busy = 0;

		/* submit every request that is due */
		while (o.rate && next_due <= now && next_due < end) {
			struct conn *c = cs[k % o.conns];

			if (nlags < MAX_SAMPLES)
				lags[nlags++] = now - next_due;
			if (c->dead || (c->inflight < o.streams ? client_submit(c, next_due) :
					lat_queue_push(&c->q, next_due)))
				n_errors++;
			else if (conn_flush(c))
				n_errors++;
			k++;
			next_due = t0 + k * interval;
		}
		for (uint64_t i = 0; i < o.conns; i++)
			if (!cs[i]->dead && (cs[i]->inflight || cs[i]->q.len))
				busy = 1;
		if (now >= end && (!busy || now >= end + STALL_NS))
			break;
		if (o.rate && next_due < end && next_due > now)
			wait = next_due - now > EARLY_NS ? next_due - now - EARLY_NS : 0;
		else
			wait = 10000000;
		clients_poll(wait, -1);
	}
	/* what is still owed after the stall allowance failed */
	for (uint64_t i = 0; i < o.conns; i++)
		if (!cs[i]->dead)
			n_errors += cs[i]->inflight + cs[i]->q.len;
	if (!nsamples) {
		printf("ERR no responses (errors %lu)\n", n_errors);
		return EXIT_FAILED;
	}
	qsort(samples, nsamples, sizeof(*samples), lat_cmp_u64);
	qsort(lags, nlags, sizeof(*lags), lat_cmp_u64);
	printf("h2 requests %zu errors %lu secs %.3f rps %.0f p50_us %.1f p99_us %.1f "
	       "p999_us %.1f max_us %.1f lag_p99_us %.1f\n", nsamples, n_errors, o.secs,
	       (double)nsamples / o.secs, lat_pct_us(samples, nsamples, 50),
	       lat_pct_us(samples, nsamples, 99), lat_pct_us(samples, nsamples, 99.9),
	       (double)samples[nsamples - 1] / 1e3, nlags ? lat_pct_us(lags, nlags, 99) : 0.0);
	return n_errors ? EXIT_FAILED : 0;
}

static int run_hold(void)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	uint64_t t0 = lat_now_ns(), deadline, until;
	struct conn **cs;
	sigset_t set;
	int sfd;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	if (sigprocmask(SIG_BLOCK, &set, NULL) || (sfd = signalfd(-1, &set, SFD_CLOEXEC)) < 0 ||
	    epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev))
		return 1;
	deadline = t0 + (uint64_t)(o.max_secs * 1e9);
	cs = clients_open();
	if (!cs)
		return EXIT_FAILED;
	for (uint64_t k = 0; k < o.total; k++)
		if (client_submit(cs[k % o.conns], 0))
			n_errors++;
	for (uint64_t i = 0; i < o.conns; i++)
		if (conn_flush(cs[i]))
			return EXIT_FAILED;
	while (n_opened + n_closed < o.total && lat_now_ns() < deadline)
		clients_poll(10000000, sfd);
	printf("open %lu opened %lu secs %.3f\n", (unsigned long)o.total, n_opened,
	       (double)(lat_now_ns() - t0) / 1e9);
	fflush(stdout);
	until = lat_now_ns() + (uint64_t)(o.hold_secs * 1e9);
	if (until > deadline)
		until = deadline;
	while (n_closed < o.total && lat_now_ns() < until)
		if (clients_poll(10000000, sfd))
			break;
	/* end every request; the responses follow */
	for (uint64_t i = 0; i < o.conns; i++) {
		struct conn *c = cs[i];

		if (c->dead)
			continue;
		for (struct stream *st = c->head.next; st != &c->head; st = st->next) {
			st->req_ended = 1;
			nghttp2_session_resume_data(c->s, st->id);
		}
		if (conn_flush(c)) {
			n_errors += c->inflight;
			n_closed += c->inflight;
			c->inflight = 0;
			conn_close(c);
		}
	}
	/* the responses get STALL_NS, even when opening used up --max-secs */
	deadline = lat_now_ns() + STALL_NS;
	while (n_closed < o.total && lat_now_ns() < deadline)
		clients_poll(10000000, sfd);
	n_errors += o.total - n_closed;
	printf("hold streams %lu opened %lu completed %lu errors %lu\n", (unsigned long)o.total,
	       n_opened, n_completed, n_errors);
	return n_errors || n_completed != o.total ? EXIT_FAILED : 0;
}

/* ---- server ---- */

static int server_on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *user)
{
	struct stream *st;

	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	st = calloc(1, sizeof(*st));
	if (!st)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	st->id = f->hd.stream_id;
	stream_link(user, st);
	return nghttp2_session_set_stream_user_data(s, st->id, st) ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
}

static int server_on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *user)
{
	static const nghttp2_nv hdrs[] = {
		MAKE_NV(":status", "200"),
		MAKE_NV("content-type", "application/grpc"),
	};
	nghttp2_data_provider prd = { .read_callback = resp_body_read };
	struct stream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);

	if (!st || (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA))
		return 0;
	if (f->hd.flags & NGHTTP2_FLAG_END_STREAM) {
		st->req_ended = 1;
		if (st->head)
			nghttp2_session_resume_data(s, st->id);
	}
	if (f->hd.type == NGHTTP2_HEADERS && !st->head) {
		st->head = 1;
		prd.source.ptr = st;
		if (nghttp2_submit_response(s, st->id, hdrs, 2, &prd))
			return NGHTTP2_ERR_CALLBACK_FAILURE;
	}
	return 0;
}

static int server_on_stream_close(nghttp2_session *s, int32_t id, uint32_t err, void *user)
{
	struct stream *st = nghttp2_session_get_stream_user_data(s, id);

	if (st)
		stream_del(st);
	return 0;
}

static int server_accept(int lfd)
{
	nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, (uint32_t)o.max_streams },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20 },
	};

	for (;;) {
		struct epoll_event ev = { .events = EPOLLIN };
		int one = 1, fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *c;

		if (fd < 0)
			return errno == EAGAIN || errno == EINTR || errno == ECONNABORTED ? 0 : -errno;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = conn_new(fd);
		if (!c) {
			close(fd);
			continue;
		}
		ev.data.ptr = c;
		c->ev = EPOLLIN;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) ||
		    nghttp2_session_server_new(&c->s, cbs, c) ||
		    nghttp2_submit_settings(c->s, NGHTTP2_FLAG_NONE, iv, 2) ||
		    nghttp2_session_set_local_window_size(c->s, NGHTTP2_FLAG_NONE, 0, 1 << 24) ||
		    conn_flush(c)) {
			conn_close(c);
			free(c);
		}
	}
}

static int run_serve(void)
{
	struct epoll_event evs[64], ev = { .events = EPOLLIN };
	int one = 1, lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	static int lmark;	/* epoll tag of the listener */

	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(lfd, (struct sockaddr *)&o.addr, sizeof(o.addr)) || listen(lfd, 4096)) {
		fprintf(stderr, "sm-bench-h2: listen: %s\n", strerror(errno));
		return 1;
	}
	ev.data.ptr = &lmark;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev))
		return 1;
	for (;;) {
		int n = epoll_wait(ep, evs, 64, -1);

		if (n < 0 && errno != EINTR)
			return 1;
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;

			if (evs[i].data.ptr == &lmark) {
				if (server_accept(lfd))
					fprintf(stderr, "sm-bench-h2: accept: %s\n", strerror(errno));
				continue;
			}
			if (evs[i].events & EPOLLIN ? conn_on_readable(c) : conn_flush(c)) {
				conn_close(c);
				free(c);
				continue;
			}
			if (!nghttp2_session_want_read(c->s) && !nghttp2_session_want_write(c->s)) {
				conn_close(c);
				free(c);
			}
		}
	}
}

/* ---- options ---- */

static void usage(FILE *f)
{
	fprintf(f, "usage: sm-bench-h2 load --addr IP:PORT [--conns C] [--streams M] [--rate R (0: max)]\n"
		   "                        [--secs S] [--path P] [--body BYTES] [-H 'name: value']...\n"
		   "       sm-bench-h2 hold --addr IP:PORT --total N [--conns C] [--path P]\n"
		   "                        [--hold-secs S] [--max-secs T] [-H 'name: value']...\n"
		   "       sm-bench-h2 serve --listen IP:PORT [--body BYTES] [--max-streams M]\n");
}

/* "Name: value" -> a lower-case name (HTTP/2) and the value after blanks. */
static int parse_header(char *s)
{
	char *colon = strchr(s, ':'), *v;

	if (o.nhdrs == MAX_HDRS || !colon || colon == s || strpbrk(s, "\r\n"))
		return -EINVAL;
	*colon = 0;
	for (char *p = s; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
		;
	o.hdrs[o.nhdrs++] = (nghttp2_nv){ (uint8_t *)s, (uint8_t *)v, strlen(s), strlen(v),
					  NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE };
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "addr", required_argument, NULL, 'a' },
		{ "listen", required_argument, NULL, 'a' },
		{ "conns", required_argument, NULL, 'c' },
		{ "streams", required_argument, NULL, 'm' },
		{ "rate", required_argument, NULL, 'r' },
		{ "secs", required_argument, NULL, 's' },
		{ "path", required_argument, NULL, 'p' },
		{ "body", required_argument, NULL, 'b' },
		{ "total", required_argument, NULL, 'n' },
		{ "hold-secs", required_argument, NULL, 'o' },
		{ "max-secs", required_argument, NULL, 'x' },
		{ "max-streams", required_argument, NULL, 'M' },
		{ "header", required_argument, NULL, 'H' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct rlimit rl;
	int c, have_addr = 0;

	if (argc < 2)
		goto bad;
	if (!strcmp(argv[1], "load"))
		o.mode = MODE_LOAD;
	else if (!strcmp(argv[1], "hold"))
		o.mode = MODE_HOLD;
	else if (!strcmp(argv[1], "serve"))
		o.mode = MODE_SERVE;
	else if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return 0;
	} else
		goto bad;
	optind = 2;
	while ((c = getopt_long(argc, argv, "H:h", opts, NULL)) != -1) {
		int err = 0;

		switch (c) {
		case 'a':
			err = lat_parse_addr(optarg, &o.addr);
			have_addr = !err;
			snprintf(o.authority, sizeof(o.authority), "%s", optarg);
			break;
		case 'c': err = sm_parse_uint(optarg, 1, MAX_CONNS, &o.conns); break;
		case 'm': err = sm_parse_uint(optarg, 1, 1 << 16, &o.streams); break;
		case 'r': err = sm_parse_uint(optarg, 0, 10000000, &o.rate); break;
		case 's': err = lat_parse_secs(optarg, &o.secs); break;
		case 'p': o.path = optarg; break;
		case 'b': err = sm_parse_uint(optarg, 0, MAX_BODY, &o.body); break;
		case 'n': err = sm_parse_uint(optarg, 1, MAX_TOTAL, &o.total); break;
		case 'o': err = lat_parse_secs(optarg, &o.hold_secs); break;
		case 'x': err = lat_parse_secs(optarg, &o.max_secs); break;
		case 'M': err = sm_parse_uint(optarg, 1, 1u << 31, &o.max_streams); break;
		case 'H': err = parse_header(optarg); break;
		case 'h': usage(stdout); return 0;
		default: goto bad;
		}
		if (err)
			goto bad;
	}
	if (!have_addr || optind != argc || (o.mode == MODE_HOLD && !o.total))
		goto bad;
	if (o.mode == MODE_HOLD && o.total < o.conns)
		o.conns = o.total;
	/* thousands of streams, and through nginx a connection per stream */
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	/* timers fire on time instead of up to 50 µs late (the default slack) */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	body = malloc(o.body + 1);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (!body || ep < 0 || nghttp2_session_callbacks_new(&cbs))
		return 1;
	memset(body, 'x', o.body);
	nghttp2_session_callbacks_set_send_callback(cbs, on_send);
	if (o.mode == MODE_SERVE) {
		nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, server_on_begin_headers);
		nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, server_on_frame_recv);
		nghttp2_session_callbacks_set_on_stream_close_callback(cbs, server_on_stream_close);
		signal(SIGPIPE, SIG_IGN);
		return run_serve();
	}
	nghttp2_session_callbacks_set_on_header_callback(cbs, client_on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, client_on_frame_recv);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, client_on_stream_close);
	return o.mode == MODE_LOAD ? run_load() : run_hold();
bad:
	usage(stderr);
	return EXIT_USAGE;
}
