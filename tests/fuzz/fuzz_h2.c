// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer target: the proxy's downstream HTTP/2 codec and what it feeds
 * (proxy_h2.c bridges -> the HTTP/1.1 engine -> router, faults, local
 * replies, the HTTP/2 upstream side). One proxy (one worker) is started at
 * start-up on 127.0.0.1 with a compiled policy: a gRPC service whose
 * /sm.Echo/Abort route aborts with grpcStatus and whose backend port on
 * 127.0.0.1 refuses connections (connect failures, retries, 503 -> grpc 14).
 * Each input is written after the client connection preface on a fresh
 * loopback connection; the answer is read until the proxy closes or goes
 * quiet. Invariants: the proxy answers every connection (the listener
 * keeps accepting: a closing probe request gets a reply) and nothing
 * crashes or leaks under ASan.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "compile/compile.h"
#include "policy/policy.h"
#include "proxy/proxy.h"
#include "proxy/upstream.h"

static const char fuzz_h2_yaml[] =
	"apiVersion: v1\nkind: List\nitems:\n"
	"- {apiVersion: v1, kind: Pod, metadata: {name: g1, namespace: default, labels: {app: g}},\n"
	"   status: {podIP: 127.0.0.1, conditions: [{type: Ready, status: \"True\"}]}}\n"
	"---\n"
	"apiVersion: v1\nkind: Service\nmetadata: {name: g, namespace: default}\n"
	"spec:\n  clusterIP: 10.96.1.30\n  selector: {app: g}\n"
	"  ports: [{name: grpc, port: 50051, targetPort: 1}]\n"
	"---\n"
	"apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: g, namespace: default}\n"
	"spec:\n  hosts: [g]\n  http:\n"
	"  - match: [{uri: {prefix: /sm.Echo/Abort}}]\n"
	"    fault: {abort: {grpcStatus: UNAVAILABLE, percentage: {value: 100}}}\n"
	"    route: [{destination: {host: g}}]\n"
	"  - match: [{headers: {x-http: {exact: \"1\"}}}]\n"
	"    fault: {abort: {httpStatus: 418, percentage: {value: 100}}}\n"
	"    route: [{destination: {host: g}}]\n"
	"  - route: [{destination: {host: g}}]\n"
	"    timeout: 200ms\n";

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
static const char probe[] = "GET / HTTP/1.1\r\nhost: g\r\nx-http: 1\r\nconnection: close\r\n\r\n";

static struct pol_set fuzz_set;
static struct compile_out fuzz_out;
static struct up_registry *fuzz_up;
static struct proxy *fuzz_px;
static uint16_t fuzz_port;

static int fuzz_orig_dst(void *ctx, uint32_t peer, uint16_t port, struct proxy_orig *o)
{
	inet_pton(AF_INET, "10.96.1.30", &o->vip);
	o->port = 50051;
	o->client_ip = htonl(INADDR_LOOPBACK);
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct proxy_opts o = { 0 };
	char line[512];

	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);
	policy_set_init(&fuzz_set);
	policy_load_buffer(&fuzz_set, "fuzz_h2.yaml", fuzz_h2_yaml, strlen(fuzz_h2_yaml));
	if (policy_validate(&fuzz_set) || fuzz_set.n_errors ||
	    compile_policy(&fuzz_set, &(struct compile_opts){ .l7_proxy = true }, &fuzz_out) ||
	    !fuzz_out.l7 || fuzz_out.l7->n_svcs != 1) {
		for (size_t i = 0; i < fuzz_set.n_diags; i++)
			fprintf(stderr, "%s\n", policy_diag_format(&fuzz_set.diags[i], line, sizeof(line)));
		abort();
	}
	fuzz_up = up_registry_new(NULL, NULL);
	o.workers = 1;
	o.listen_addr = htonl(INADDR_LOOPBACK);
	o.orig_dst = fuzz_orig_dst;
	o.up = fuzz_up;
	o.access_log_fd = -1;
	o.header_timeout_ms = 1000;
	fuzz_px = proxy_start(&o, l7_config_get(fuzz_out.l7), line, sizeof(line));
	if (!fuzz_up || !fuzz_px) {
		fprintf(stderr, "fuzz_h2: %s\n", line);
		abort();
	}
	fuzz_port = proxy_listen_port(fuzz_px);
	return 0;
}

static int fuzz_connect(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(fuzz_port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	for (int i = 0; i < 10; i++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd >= 0 && !connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
			/* closed with a reset: no TIME_WAIT, so millions of runs keep their ports */
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			return fd;
		}
		if (fd >= 0)
			close(fd);
		if (errno != EINTR)	/* libFuzzer's timers interrupt a connect: again */
			break;
	}
	perror("fuzz_h2: connect");
	abort();
}

/* Read until EOF or quiet_ms without bytes (at most 50 reads); returns bytes read. */
static size_t fuzz_drain(int fd, int quiet_ms)
{
	char buf[16384];
	size_t total = 0;

	for (int i = 0; i < 50; i++) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, quiet_ms) <= 0)
			break;
		n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		total += (size_t)n;
	}
	return total;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd;

	if (size > 65536)
		return 0;
	fd = fuzz_connect();
	if (write(fd, preface, sizeof(preface) - 1) != (ssize_t)(sizeof(preface) - 1) ||
	    (size && write(fd, data, size) < 0)) {
		close(fd);
		return 0;
	}
	shutdown(fd, SHUT_WR);
	fuzz_drain(fd, 100);
	close(fd);
	/* the proxy still serves: an HTTP/1.1 probe gets an answer (a second
	 * chance for a loaded machine; both within libFuzzer's 5 s timeout) */
	for (int tries = 0;; tries++) {
		size_t got;

		fd = fuzz_connect();
		got = write(fd, probe, sizeof(probe) - 1) == (ssize_t)(sizeof(probe) - 1) ?
		      fuzz_drain(fd, 2000) : 0;
		if (got)
			break;
		close(fd);
		if (tries) {
			json_t *st = proxy_stats_json(fuzz_px);
			char *js = st ? json_dumps(st, JSON_COMPACT) : NULL;

			fprintf(stderr, "fuzz_h2: the proxy stopped answering: %s\n", js ? js : "-");
			abort();
		}
	}
	close(fd);
	return 0;
}
