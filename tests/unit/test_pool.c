// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Connection-pool property test: the real proxy engine (two workers) on
 * loopback with an injected clock, driven by random interleavings of
 * requests, client closes, client resets, clock jumps (upstream idle
 * timeouts, downstream keep-alive idle timeouts, retry back-offs) and real
 * pauses, over kept-alive client connections, against two backends that
 * answer, delay, 503 (retried by Istio's default policy), reset, close
 * after answering and close connections left idle.
 *
 * Invariants (Envoy's circuit breakers as Istio configures them), checked
 * after every step for each client pod:
 *  - pending <= http1MaxPendingRequests, in flight <= http2MaxRequests,
 *    retries <= maxRetries; connections <= maxConnections + one per pool
 *    (Envoy: a host picked by the load balancer always gets a connection);
 *  - every answer is 200, a 503 or a 504; a 503 carries
 *    x-envoy-overloaded: true exactly when it is the overflow reply;
 *  - no request waits longer than a bound of real time (no hang: there is
 *    no route timeout that could rescue a stranded request);
 * and when traffic stops, after the upstream idle timeout, every counter is
 * back at zero and an idle cluster never refuses.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "proxy/proxy.h"
#include "test.h"
#include "test_loopback.h"

#define PP_HOSTS	2
#define PP_CLIENTS	12
#define PP_STEPS	300
#define PP_SEEDS	3
#define PP_WORKERS	2
#define PP_MAX_CONNS	2
#define PP_MAX_PENDING	2
#define PP_MAX_REQS	4
#define PP_MAX_RETRIES	1
#define PP_UP_IDLE_MS	200	/* virtual: pooled connections close after this */
#define PP_DOWN_IDLE_MS	1500	/* virtual: client keep-alive idle timeout */
#define PP_HANG_MS	10000	/* real: a request unanswered this long hangs (a loaded machine's bound) */
#define PP_BE_IDLE_MS	40	/* real: backends close connections idle this long */
#define PP_BE_CONNS	512
#define PP_VIP		0x0a60000bu	/* 10.96.0.11 */
#define PP_SRC_A	0x0a000107u	/* client pods 10.0.1.7 / 10.0.1.8 */
#define PP_SRC_B	0x0a000108u

/* "/t/..." takes the route with a timeout, per-try timeouts and retries on reset */
static const char *const pp_paths[] = { "/ok", "/ok", "/ok", "/slow", "/slow", "/503",
					"/reset", "/close", "/t/ok", "/t/slow", "/t/503",
					"/t/reset" };

/* ---- injected clock ---- */

static _Atomic uint64_t pp_clock = 1000000;

static uint64_t pp_clock_ms(void *ctx)
{
	(void)ctx;
	return atomic_load(&pp_clock);
}

static uint64_t pp_real_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- backends: thread per connection ---- */

struct pp_be {
	int lfd;
	uint16_t port;
	atomic_int stop;
	pthread_t th;
	pthread_mutex_t mu;
	pthread_t cth[PP_BE_CONNS];
	int n;
};

struct pp_be_conn_arg {
	struct pp_be *be;
	int fd;
};

static atomic_int pp_hold_go[2];

/* The connection thread owns its socket and closes it (with RST for /reset). */
static void *pp_be_conn(void *arg)
{
	struct pp_be_conn_arg *ca = arg;
	struct pp_be *be = ca->be;
	int fd = ca->fd, idle = 0;
	char buf[8192];
	size_t len = 0;

	free(ca);
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		char *e, *hold, reply[160];
		ssize_t n;
		int k;

		while (!(e = memmem(buf, len, "\r\n\r\n", 4))) {
			if (atomic_load(&be->stop))
				goto out;
			if (poll(&pfd, 1, 10) == 0) {
				/* a peer that closes connections left idle */
				if (!len && (idle += 10) >= PP_BE_IDLE_MS)
					goto out;
				continue;
			}
			n = recv(fd, buf + len, sizeof(buf) - len, 0);
			if (n <= 0)
				goto out;
			len += (size_t)n;
		}
		idle = 0;
		*e = '\0';	/* the request line and headers, for strstr */
		if (strstr(buf, "reset ")) {
			struct linger lg = { 1, 0 };

			setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			goto out;
		}
		if (strstr(buf, "slow "))
			usleep(20000);
		hold = strstr(buf, "/hold");
		/* "/holdN": answer (and close) once the test lets hold N go */
		while (hold && !atomic_load(&pp_hold_go[hold[5] & 1]) && !atomic_load(&be->stop))
			usleep(1000);
		k = snprintf(reply, sizeof(reply), "HTTP/1.1 %d X\r\ncontent-length: 2\r\n%s\r\nok",
			     strstr(buf, "503 ") ? 503 : 200,
			     strstr(buf, "close ") || hold ? "connection: close\r\n" : "");
		if (tlb_send_all(fd, reply, (size_t)k) || strstr(buf, "close ") || hold)
			goto out;
		len -= (size_t)(e + 4 - buf);
		memmove(buf, e + 4, len);
	}
out:
	close(fd);
	return NULL;
}

static void *pp_be_main(void *arg)
{
	struct pp_be *be = arg;

	while (!atomic_load(&be->stop)) {
		int fd = tlb_accept(be->lfd);
		struct pp_be_conn_arg *ca;

		if (fd < 0)
			continue;
		ca = malloc(sizeof(*ca));
		pthread_mutex_lock(&be->mu);
		if (!ca || be->n == PP_BE_CONNS) {
			free(ca);
			close(fd);
		} else {
			*ca = (struct pp_be_conn_arg){ be, fd };
			if (pthread_create(&be->cth[be->n], NULL, pp_be_conn, ca)) {
				free(ca);
				close(fd);
			} else {
				be->n++;
			}
		}
		pthread_mutex_unlock(&be->mu);
	}
	return NULL;
}

static int pp_be_start(struct pp_be *be)
{
	memset(be, 0, sizeof(*be));
	pthread_mutex_init(&be->mu, NULL);
	if (tlb_listen(256, &be->lfd, &be->port))
		return -1;
	return pthread_create(&be->th, NULL, pp_be_main, be) ? -1 : 0;
}

static void pp_be_stop(struct pp_be *be)
{
	atomic_store(&be->stop, 1);
	pthread_join(be->th, NULL);
	for (int i = 0; i < be->n; i++)
		pthread_join(be->cth[i], NULL);
	close(be->lfd);
	pthread_mutex_destroy(&be->mu);
}

/* ---- config: one service, one cluster of two hosts ---- */

struct pp_cfg {
	struct l7_config c;
	struct l7_svc svc;
	struct l7_vhost vh;
	struct l7_route routes[2];	/* "/t/": timeouts and retries; the rest */
	struct pol_http_route proutes[2];
	struct pol_http_match tmatch;
	struct l7_route_dest dest;
	struct l7_cluster cl, *clp;
	struct l7_svc *svcp;
	struct l7_config_hand hand;
	struct l7_host hosts[PP_HOSTS];
};

static void pp_build(struct pp_cfg *t, const struct pp_be *be)
{
	memset(t, 0, sizeof(*t));
	t->c.refs = 1;
	t->c.generation = 1;
	t->cl.id = 21;
	t->cl.name = "outbound|80||pool.default.svc.cluster.local";
	t->cl.fqdn = "pool.default.svc.cluster.local";
	t->cl.port = 80;
	t->cl.lb = L7_LB_LEAST_REQUEST;
	for (int i = 0; i < PP_HOSTS; i++) {
		t->hosts[i].addr = htonl(INADDR_LOOPBACK);
		t->hosts[i].port = be[i].port;
		t->hosts[i].ready = true;
	}
	t->cl.hosts = t->hosts;
	t->cl.n_hosts = PP_HOSTS;
	t->cl.pool.max_connections = PP_MAX_CONNS;
	t->cl.pool.http1_max_pending = PP_MAX_PENDING;
	t->cl.pool.max_requests = PP_MAX_REQS;
	t->cl.pool.max_retries = PP_MAX_RETRIES;
	t->cl.pool.idle_timeout_ms = PP_UP_IDLE_MS;
	t->clp = &t->cl;
	t->svc.vip = htonl(PP_VIP);
	t->svc.port = 80;
	t->svc.fqdn = t->cl.fqdn;
	t->svc.ns = "default";
	t->svc.name = "pool";
	t->svc.default_cluster = &t->cl;
	/*
	 * "/t/": route timeout 300 ms, per-try 100 ms, one retry on 5xx and
	 * reset (timeouts fire while requests wait and while they are on the
	 * wire). The rest: no timeout (nothing could rescue a stranded request,
	 * so the hang check means something) and Istio's default retries.
	 */
	t->dest.cluster = &t->cl;
	t->dest.weight = 100;
	t->tmatch.uri.kind = POL_SM_PREFIX;
	t->tmatch.uri.value = "/t/";
	for (int i = 0; i < 2; i++) {
		t->routes[i].pol = &t->proutes[i];
		t->proutes[i].name = i ? "rest" : "timeouts";
		t->routes[i].dests = &t->dest;
		t->routes[i].n_dests = 1;
		t->routes[i].total_weight = 100;
	}
	t->proutes[0].match = &t->tmatch;
	t->proutes[0].n_match = 1;
	t->routes[0].timeout_ms = 300;
	t->routes[0].has_retry = true;
	t->routes[0].retry = (struct l7_retry){ .attempts = 1, .per_try_timeout_ms = 100,
						.on = L7_RETRY_5XX | L7_RETRY_RESET,
						.backoff_base_ms = 25 };
	t->vh.name = "default/pool";
	t->vh.routes = t->routes;
	t->vh.n_routes = 2;
	t->svc.vhost = &t->vh;
	t->svcp = &t->svc;
	l7_config_hand(&t->c, &t->hand, &t->svcp, 1, &t->clp, 1);
}

/* Two client pods (breakers are per source): by the client port's parity. */
static int pp_orig_dst(void *ctx, uint32_t peer, uint16_t port, struct proxy_orig *o)
{
	(void)ctx;
	(void)peer;
	o->vip = htonl(PP_VIP);
	o->port = 80;
	o->client_ip = htonl(port & 1 ? PP_SRC_B : PP_SRC_A);
	return 0;
}

/* ---- clients ---- */

struct pp_client {
	int fd;
	bool outstanding;
	int last_status;
	uint64_t sent_real;
	uint64_t last_virtual;	/* last activity, on the proxy's clock */
	size_t len;
	char buf[4096];
};

struct pp_run {
	struct proxy *p;
	struct up_registry *up;
	uint16_t port;
	struct pp_client cl[PP_CLIENTS];
	unsigned int seed, seed0;
	unsigned long answers, overloaded, eof_idle;
	int failed;	/* stop after the first broken invariant */
};

static int pp_connect(uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

static void pp_close(struct pp_client *c, bool reset)
{
	if (c->fd < 0)
		return;
	if (reset) {
		struct linger lg = { 1, 0 };

		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	close(c->fd);
	c->fd = -1;
	c->outstanding = false;
	c->len = 0;
}

static void pp_fail(struct pp_run *r, const char *what, int slot)
{
	if (!r->failed)
		fprintf(stderr, "  seed %u: %s (client %d)\n", r->seed0, what, slot);
	r->failed = 1;
	test__failed = 1;
}

/* Parse every complete response a client has; checks each answer. */
static void pp_drain(struct pp_run *r, int i)
{
	struct pp_client *c = &r->cl[i];

	while (c->fd >= 0) {
		char *e, *cl;
		size_t hl, bl;
		ssize_t n;
		int status;
		bool over_hdr, over_body, closing;

		n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len, 0);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			/* the proxy closes a client connection only when idle (keep-alive timeout) */
			if (c->outstanding && atomic_load(&pp_clock) - c->last_virtual < PP_DOWN_IDLE_MS)
				pp_fail(r, "connection closed under an outstanding request", i);
			if (!c->outstanding)
				r->eof_idle++;
			pp_close(c, false);
			return;
		}
		if (n > 0)
			c->len += (size_t)n;
		c->buf[c->len] = '\0';
		e = strstr(c->buf, "\r\n\r\n");
		if (!e)
			return;
		hl = (size_t)(e + 4 - c->buf);
		cl = strcasestr(c->buf, "\ncontent-length:");
		bl = cl && cl < e ? strtoul(cl + 16, NULL, 10) : 0;
		if (c->len < hl + bl)
			return;
		if (!c->outstanding) {
			pp_fail(r, "a response nobody asked for", i);
			pp_close(c, false);
			return;
		}
		status = atoi(c->buf + 9);
		*e = '\0';
		over_hdr = strcasestr(c->buf, "\nx-envoy-overloaded: true") != NULL;
		closing = strcasestr(c->buf, "\nconnection: close") != NULL;
		*e = '\r';
		over_body = bl && memmem(c->buf + hl, bl, "overflow", 8) != NULL;
		if (status != 200 && status != 503 && status != 504)
			pp_fail(r, "answer neither 200, 503 nor 504", i);
		if (over_hdr != over_body || (over_hdr && status != 503))
			pp_fail(r, "x-envoy-overloaded without the overflow 503, or the reverse", i);
		r->answers++;
		r->overloaded += over_hdr;
		c->last_status = status;
		c->outstanding = false;
		c->last_virtual = atomic_load(&pp_clock);
		memmove(c->buf, c->buf + hl + bl, c->len - hl - bl);
		c->len -= hl + bl;
		if (closing)
			pp_close(c, false);
	}
}

static void pp_check(struct pp_run *r)
{
	static const uint32_t srcs[] = { PP_SRC_A, PP_SRC_B };
	uint64_t now = pp_real_ms();

	for (size_t s = 0; s < 2; s++) {
		uint32_t src = htonl(srcs[s]);

		if (up_cb_count(r->up, 21, src, UP_CB_PENDING) > PP_MAX_PENDING)
			pp_fail(r, "pending requests over http1MaxPendingRequests", -1);
		if (up_cb_count(r->up, 21, src, UP_CB_REQUESTS) > PP_MAX_REQS)
			pp_fail(r, "requests in flight over http2MaxRequests", -1);
		if (up_cb_count(r->up, 21, src, UP_CB_RETRIES) > PP_MAX_RETRIES)
			pp_fail(r, "retries over maxRetries", -1);
		if (up_cb_count(r->up, 21, src, UP_CB_CONNECTIONS) >
		    PP_MAX_CONNS + PP_WORKERS * PP_HOSTS)
			pp_fail(r, "connections over maxConnections + one per pool", -1);
	}
	for (int i = 0; i < PP_CLIENTS; i++)
		if (r->cl[i].outstanding && now - r->cl[i].sent_real > PP_HANG_MS)
			pp_fail(r, "request hangs", i);
}

static void pp_send_req(struct pp_run *r, int i)
{
	struct pp_client *c = &r->cl[i];
	char req[128];
	int n;

	if (c->outstanding)
		return;
	if (c->fd < 0) {
		c->fd = pp_connect(r->port);
		c->len = 0;
		if (c->fd < 0)
			return;
	}
	n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nhost: pool\r\n\r\n",
		     pp_paths[rand_r(&r->seed) % (sizeof(pp_paths) / sizeof(pp_paths[0]))]);
	for (int tries = 0; tries < 100; tries++) {
		struct pollfd pfd = { .fd = c->fd, .events = POLLOUT };

		if (send(c->fd, req, (size_t)n, MSG_NOSIGNAL) == n)
			break;
		if (errno != EAGAIN && errno != ENOTCONN) {
			/* closed by the proxy's keep-alive timeout: a client reconnects */
			pp_close(c, false);
			return;
		}
		poll(&pfd, 1, 10);
	}
	c->outstanding = true;
	c->sent_real = pp_real_ms();
	c->last_virtual = atomic_load(&pp_clock);
}

static void pp_advance(struct pp_run *r, uint64_t ms)
{
	atomic_fetch_add(&pp_clock, ms);
	proxy_kick(r->p);
}

static void pp_drain_all(struct pp_run *r)
{
	for (int i = 0; i < PP_CLIENTS; i++)
		pp_drain(r, i);
}

static bool pp_counters_zero(struct pp_run *r)
{
	static const uint32_t srcs[] = { PP_SRC_A, PP_SRC_B };

	for (size_t s = 0; s < 2; s++)
		for (int k = 0; k < UP_CB_MAX; k++)
			if (up_cb_count(r->up, 21, htonl(srcs[s]), (enum up_cb_kind)k))
				return false;
	return true;
}

static unsigned long pp_overloaded;	/* over every seed: the limits were hit */

/* The proxy (two workers, the injected clock) over cfg and r->up. */
static bool pp_start(struct pp_run *r, struct pp_cfg *cfg)
{
	struct proxy_opts o = { 0 };
	char err[256] = "";

	l7_config_get(&cfg->c);	/* the test owns the storage */
	o.workers = PP_WORKERS;
	o.listen_addr = htonl(INADDR_LOOPBACK);
	o.orig_dst = pp_orig_dst;
	o.up = r->up;
	o.access_log_fd = -1;
	o.idle_timeout_ms = PP_DOWN_IDLE_MS;
	o.clock_ms = pp_clock_ms;
	r->p = proxy_start(&o, &cfg->c, err, sizeof(err));
	if (!ASSERT_TRUE(r->p != NULL)) {
		fprintf(stderr, "  %s\n", err);
		return false;
	}
	r->port = proxy_listen_port(r->p);
	for (int i = 0; i < PP_CLIENTS; i++)
		r->cl[i].fd = -1;
	return true;
}

static void pp_one_run(unsigned int seed, const struct pp_be *be)
{
	static struct pp_cfg cfg;
	struct pp_run r = { .seed = seed, .seed0 = seed };
	uint64_t deadline;
	bool pending;
	int ok200 = 0;

	r.up = up_registry_new(NULL, NULL);
	pp_build(&cfg, be);
	if (!pp_start(&r, &cfg)) {
		up_registry_free(r.up);
		return;
	}

	for (int step = 0; step < PP_STEPS && !r.failed; step++) {
		int i = rand_r(&r.seed) % PP_CLIENTS, a = rand_r(&r.seed) % 100;

		if (a < 40)
			pp_send_req(&r, i);
		else if (a < 50)
			pp_close(&r.cl[i], false);	/* maybe abandoning a request */
		else if (a < 55)
			pp_close(&r.cl[i], true);	/* reset */
		else if (a < 80)
			pp_advance(&r, (uint64_t)(rand_r(&r.seed) % 60));
		else if (a < 85)
			pp_advance(&r, (uint64_t)(rand_r(&r.seed) % 2000));	/* idle timeouts */
		else
			usleep((useconds_t)(rand_r(&r.seed) % 10) * 1000);
		usleep(1000);
		pp_drain_all(&r);
		pp_check(&r);
	}
	/* every outstanding request is answered (back-offs need the clock to move) */
	deadline = pp_real_ms() + PP_HANG_MS;
	do {
		pending = false;
		pp_advance(&r, 5);
		usleep(2000);
		pp_drain_all(&r);
		pp_check(&r);
		for (int i = 0; i < PP_CLIENTS; i++)
			pending |= r.cl[i].outstanding;
	} while (pending && !r.failed && pp_real_ms() < deadline);
	if (pending)
		pp_fail(&r, "requests still unanswered at the end", -1);
	/* traffic stops: after the upstream idle timeout every counter is zero */
	for (int i = 0; i < PP_CLIENTS; i++)
		pp_close(&r.cl[i], false);
	deadline = pp_real_ms() + PP_HANG_MS;
	do {
		pp_advance(&r, PP_UP_IDLE_MS + 1);
		usleep(5000);
	} while (!pp_counters_zero(&r) && pp_real_ms() < deadline);
	if (!pp_counters_zero(&r)) {
		pp_fail(&r, "breaker counters not back to zero when traffic stopped", -1);
		for (int k = 0; k < UP_CB_MAX; k++)
			fprintf(stderr, "  counter %d: %" PRIu64 " + %" PRIu64 "\n", k,
				up_cb_count(r.up, 21, htonl(PP_SRC_A), (enum up_cb_kind)k),
				up_cb_count(r.up, 21, htonl(PP_SRC_B), (enum up_cb_kind)k));
	}
	/* an idle cluster never refuses: sequential requests on new connections */
	for (int n = 0; n < 12 && !r.failed; n++) {
		struct pp_client *c = &r.cl[0];
		char req[] = "GET /ok HTTP/1.1\r\nhost: pool\r\n\r\n";

		c->fd = pp_connect(r.port);
		if (c->fd < 0)
			continue;
		deadline = pp_real_ms() + PP_HANG_MS;
		while (send(c->fd, req, sizeof(req) - 1, MSG_NOSIGNAL) < 0 && errno == EAGAIN &&
		       pp_real_ms() < deadline)
			usleep(1000);
		c->outstanding = true;
		c->last_status = 0;
		c->sent_real = pp_real_ms();
		c->last_virtual = atomic_load(&pp_clock);
		while (c->outstanding && c->fd >= 0 && pp_real_ms() < deadline) {
			usleep(1000);
			pp_drain(&r, 0);
		}
		ok200 += c->last_status == 200;
		pp_close(c, false);
	}
	if (!r.failed && !ASSERT_EQ(ok200, 12))
		fprintf(stderr, "  seed %u: idle cluster refused\n", seed);
	ASSERT_TRUE(r.answers > 0);
	pp_overloaded += r.overloaded;
	proxy_stop(r.p);
	up_registry_free(r.up);
	ASSERT_EQ(cfg.c.refs, 1);
}

TEST(pool_property_keepalive_interleavings)
{
	static struct pp_be be[PP_HOSTS];
	int started = 0;

	signal(SIGPIPE, SIG_IGN);
	for (; started < PP_HOSTS; started++)
		if (!ASSERT_EQ(pp_be_start(&be[started]), 0))
			goto out;
	for (unsigned int seed = 1; seed <= PP_SEEDS && !test__failed; seed++)
		pp_one_run(seed * 7919u, be);
	if (!test__failed && !ASSERT_TRUE(pp_overloaded > 0))
		fprintf(stderr, "  no overflow in %d runs: the limits were never hit\n", PP_SEEDS);
out:
	while (started--)
		pp_be_stop(&be[started]);
}

/* ---- a slot freed on one worker serves a request pending on another ---- */

/* A client of pod A (even source port: pp_orig_dst) with one request sent. */
static int pp_xw_send(struct pp_run *r, int i, const char *path)
{
	struct pp_client *c = &r->cl[i];
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	char req[128];
	int n;

	for (int tries = 0; tries < 64; tries++) {
		pp_close(c, false);
		c->fd = pp_connect(r->port);
		if (c->fd < 0)
			return -1;
		if (!getsockname(c->fd, (struct sockaddr *)&sa, &sl) && !(ntohs(sa.sin_port) & 1))
			break;
	}
	n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nhost: pool\r\n\r\n", path);
	for (int tries = 0; tries < 100; tries++) {
		struct pollfd pfd = { .fd = c->fd, .events = POLLOUT };

		if (send(c->fd, req, (size_t)n, MSG_NOSIGNAL) == n) {
			c->outstanding = true;
			c->last_status = 0;
			c->sent_real = pp_real_ms();
			c->last_virtual = atomic_load(&pp_clock);
			return 0;
		}
		poll(&pfd, 1, 10);
	}
	return -1;
}

/* Drain until cond holds or the real-time bound passes (never the proxy's clock). */
#define PP_XW_WAIT(r, cond)                                                   \
	({                                                                    \
		uint64_t dl_ = pp_real_ms() + PP_HANG_MS;                     \
		while (!(cond) && pp_real_ms() < dl_) {                       \
			usleep(1000);                                         \
			pp_drain_all(r);                                      \
		}                                                             \
		(cond);                                                       \
	})

/*
 * maxConnections 2, one host, two workers, the clock frozen (no tick can
 * fire): c1 and c2 hold both connection slots, c3 queues behind c1 on its
 * worker. c2's answer closes its connection: c3 must be served while c1 is
 * still held, whichever worker c2 was on - by the registry waking c3's
 * worker, not by a poll. Rounds where c3 got a connection of its own (the
 * one an empty pool always gets) or where all share a worker prove less;
 * over the rounds the cross-worker case comes up with near certainty.
 */
TEST(pool_pending_woken_across_workers)
{
	static struct pp_be be[PP_HOSTS];	/* pp_build reads them all; one runs */
	static struct pp_cfg cfg;
	struct pp_run r = { .seed0 = 1 };
	uint32_t src = htonl(PP_SRC_A);
	int queued = 0;

	signal(SIGPIPE, SIG_IGN);
	if (!ASSERT_EQ(pp_be_start(&be[0]), 0))
		return;
	r.up = up_registry_new(NULL, NULL);
	pp_build(&cfg, be);
	cfg.cl.n_hosts = 1;
	cfg.cl.pool.http1_max_pending = 8;
	if (!pp_start(&r, &cfg))
		goto out_be;
	for (int round = 0; round < 24 && !r.failed; round++) {
		atomic_store(&pp_hold_go[0], 0);
		atomic_store(&pp_hold_go[1], 0);
		if (!ASSERT_EQ(pp_xw_send(&r, 1, "/hold1"), 0) ||
		    !ASSERT_TRUE(PP_XW_WAIT(&r, up_cb_count(r.up, 21, src, UP_CB_CONNECTIONS) == 1)) ||
		    !ASSERT_EQ(pp_xw_send(&r, 2, "/hold2"), 0) ||
		    !ASSERT_TRUE(PP_XW_WAIT(&r, up_cb_count(r.up, 21, src, UP_CB_CONNECTIONS) == 2)) ||
		    !ASSERT_EQ(pp_xw_send(&r, 3, "/close"), 0) ||
		    !ASSERT_TRUE(PP_XW_WAIT(&r, !r.cl[3].outstanding ||
					    up_cb_count(r.up, 21, src, UP_CB_PENDING) == 1)))
			break;
		if (r.cl[3].outstanding) {
			queued++;
			atomic_store(&pp_hold_go[0], 1);	/* "/hold2" */
			if (!ASSERT_TRUE(PP_XW_WAIT(&r, !r.cl[3].outstanding)))
				fprintf(stderr, "  round %d: a freed slot left a request queued\n",
					round);
			ASSERT_TRUE(r.cl[1].outstanding);	/* c1 still holds its slot */
			ASSERT_EQ(r.cl[3].last_status, 200);
		}
		atomic_store(&pp_hold_go[0], 1);
		atomic_store(&pp_hold_go[1], 1);
		ASSERT_TRUE(PP_XW_WAIT(&r, !r.cl[1].outstanding && !r.cl[2].outstanding &&
					       !r.cl[3].outstanding));
		for (int i = 1; i <= 3; i++)
			pp_close(&r.cl[i], false);
		ASSERT_TRUE(PP_XW_WAIT(&r, up_cb_count(r.up, 21, src, UP_CB_CONNECTIONS) == 0 &&
					       up_cb_count(r.up, 21, src, UP_CB_REQUESTS) == 0));
		if (test__failed)
			break;
	}
	ASSERT_TRUE(queued > 0);	/* the scenario happened at all */
	for (int i = 0; i < PP_CLIENTS; i++)
		pp_close(&r.cl[i], false);
	proxy_stop(r.p);
	ASSERT_EQ(cfg.c.refs, 1);
out_be:
	atomic_store(&pp_hold_go[0], 1);
	atomic_store(&pp_hold_go[1], 1);
	pp_be_stop(&be[0]);
	up_registry_free(r.up);
}
