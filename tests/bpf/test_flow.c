// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * L4 telemetry (bpf/lib/flow.h), test-run through the SEC("syscall")
 * wrappers of progs/test_flow.bpf.c: the payload arithmetic sockops applies
 * to TCP's counters at close, and the opened/closed/bytes accounting of one
 * client socket and its node-local server, as sockops and sk_msg drive it.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "../unit/test.h"
#include "bpft.h"

#include "progs/test_flow.h"
#include "test_flow.skel.h"

#define TCP_ESTABLISHED	1
#define TCP_SYN_SENT	2
#define TCP_FIN_WAIT1	4
#define TCP_FIN_WAIT2	5
#define TCP_CLOSE_WAIT	8
#define TCP_LAST_ACK	9
#define TCP_CLOSING	11

TEST(flow_tcp_payload_table)
{
	static const struct {
		const char *what;
		__u64 acked, received;
		__u32 old_state, snd_una, write_seq, fin;
		__u64 tx, rx;
	} t[] = {
		{ "refused: nothing acked", 0, 0, TCP_SYN_SENT, 100, 101, 0, 0, 0 },
		{ "idle, reset", 1, 0, TCP_ESTABLISHED, 101, 101, 0, 0, 0 },
		{ "active close, both FINs", 5002, 23, TCP_FIN_WAIT2, 5102, 5102, 1, 5000, 22 },
		{ "passive close (LAST_ACK)", 102, 51, TCP_LAST_ACK, 900, 900, 1, 100, 50 },
		{ "simultaneous close", 12, 8, TCP_CLOSING, 7, 7, 1, 10, 7 },
		{ "orphan FIN_WAIT2, peer FIN not yet", 1002, 10, TCP_FIN_WAIT2, 9, 9, 0, 1000, 10 },
		{ "FIN queued, not acked, reset", 1001, 0, TCP_FIN_WAIT1, 5, 9, 0, 1000, 0 },
		{ "reset after the peer's FIN", 301, 8, TCP_CLOSE_WAIT, 3, 3, 1, 300, 7 },
		{ "reset, all acked, no FIN of ours", 301, 7, TCP_ESTABLISHED, 3, 3, 0, 300, 7 },
	};
	struct test_flow *skel = test_flow__open_and_load();

	if (!ASSERT_TRUE(skel != NULL))
		return;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct test_payload_ctx c = {
			.acked = t[i].acked, .received = t[i].received, .old_state = t[i].old_state,
			.snd_una = t[i].snd_una, .write_seq = t[i].write_seq, .fin_rcvd = t[i].fin,
		};
		LIBBPF_OPTS(bpf_test_run_opts, o, .ctx_in = &c, .ctx_size_in = sizeof(c));

		ASSERT_EQ(bpf_prog_test_run_opts(bpf_program__fd(skel->progs.test_payload), &o), 0);
		if (!ASSERT_EQ(c.tx, t[i].tx) || !ASSERT_EQ(c.rx, t[i].rx))
			fprintf(stderr, "  case: %s\n", t[i].what);
	}
	test_flow__destroy(skel);
}

static int flow_op(struct test_flow *skel, struct test_flow_ctx *c)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .ctx_in = c, .ctx_size_in = sizeof(*c));
	int err = bpf_prog_test_run_opts(bpf_program__fd(skel->progs.test_flow), &o);

	return err ? -1000 + err : c->ret;
}

/* sm_flow_stats of key, summed over CPUs (zeros when absent). */
static struct sm_flow_stats_val flow_get(struct test_flow *skel, const struct sm_flow_key *k)
{
	int ncpu = libbpf_num_possible_cpus();
	struct sm_flow_stats_val sum = {}, *v = calloc((size_t)ncpu, sizeof(*v));

	if (v && !bpf_map__lookup_elem(skel->maps.sm_flow_stats, k, sizeof(*k), v,
				       sizeof(*v) * (size_t)ncpu, 0))
		for (int c = 0; c < ncpu; c++) {
			sum.opened += v[c].opened;
			sum.closed += v[c].closed;
			sum.connect_fail += v[c].connect_fail;
			sum.tx_bytes += v[c].tx_bytes;
			sum.rx_bytes += v[c].rx_bytes;
		}
	free(v);
	return sum;
}

static int sock_flow_has(struct test_flow *skel, const struct sm_sock_key *k)
{
	struct sm_flow_key v;

	return !bpf_map__lookup_elem(skel->maps.sm_sock_flow, k, sizeof(*k), &v, sizeof(v), 0);
}

/*
 * A client and its node-local server. in_state: the client's flow is kept in
 * its sm_sk_state (what sockops does); else in sm_sk_flow (a client socket
 * an earlier version opened, whose flow the current programs finish).
 */
static void flow_client_and_local_server(__u32 in_state)
{
	struct test_flow *skel = test_flow__open_and_load();
	const __u32 st_sock = in_state ? SM_SK_F_TRANSLATED | SM_SK_F_COUNTED | SM_SK_F_FLOW : 0;
	struct sm_be_key be = { .addr = htonl(0x0af40014), .port = htons(9090) };
	struct sm_sock_key client = { .sip = htonl(0x0af4000b), .dip = be.addr,
				      .sport = htons(40000), .dport = be.port };
	struct sm_flow_key k = { .src = client.sip, .be = be,
				 .svc = { .vip = htonl(0x0a60011e), .port = htons(9090),
					  .proto = SM_IPPROTO_TCP } };
	struct test_flow_ctx c = { .op = TEST_FLOW_OPEN, .slot = 1, .src = k.src, .vip = k.svc.vip,
				   .vport = k.svc.port, .be = be, .sock = client,
				   .in_state = in_state };
	struct sm_flow_stats_val s;

	if (!ASSERT_TRUE(skel != NULL))
		return;
	ASSERT_EQ(flow_op(skel, &c), 0);
	ASSERT_EQ(c.flags, SM_FLOW_F_CLIENT | SM_FLOW_F_OPEN | SM_FLOW_F_UNLISTED);
	ASSERT_EQ(c.st_flags, st_sock ? st_sock | SM_SK_F_FLOW_OPEN : 0);
	c.op = TEST_FLOW_PUBLISH;
	ASSERT_EQ(flow_op(skel, &c), 0);
	ASSERT_EQ(c.flags, SM_FLOW_F_CLIENT | SM_FLOW_F_OPEN);
	ASSERT_EQ(c.st_flags, st_sock ? st_sock | SM_SK_F_FLOW_OPEN | SM_SK_F_FLOW_LISTED : 0);
	ASSERT_TRUE(sock_flow_has(skel, &client));

	/* the client redirects 5000 bytes: tx */
	c.op = TEST_FLOW_REDIRECT;
	c.size = 5000;
	c.sock = (struct sm_sock_key){ .sip = be.addr, .dip = client.sip,
				       .sport = be.port, .dport = client.sport };
	ASSERT_EQ(flow_op(skel, &c), 0);
	/* its server (slot 2) redirects 22 back: found through sm_sock_flow, rx */
	c.slot = 2;
	c.size = 22;
	c.sock = client;
	ASSERT_EQ(flow_op(skel, &c), 0);
	ASSERT_EQ(c.flags, SM_FLOW_F_PEER);
	/* another socket redirecting into an unknown peer: counted nowhere */
	c.slot = 3;
	c.sock.sport = htons(40001);
	ASSERT_EQ(flow_op(skel, &c), 0);
	ASSERT_EQ(c.flags, SM_FLOW_F_NONE);

	/*
	 * close with TCP's share: closed once however often TCP_CLOSE is seen;
	 * its sm_sock_flow entry goes
	 */
	c.op = TEST_FLOW_CLOSE;
	c.slot = 1;
	c.sock = client;
	c.old_state = TCP_LAST_ACK;
	c.tx = 7;
	c.rx = 3;
	ASSERT_EQ(flow_op(skel, &c), 0);
	ASSERT_EQ(c.flags, SM_FLOW_F_CLIENT | SM_FLOW_F_UNLISTED);
	ASSERT_EQ(c.st_flags, st_sock);
	ASSERT_FALSE(sock_flow_has(skel, &client));
	ASSERT_EQ(flow_op(skel, &c), 0);
	s = flow_get(skel, &k);
	ASSERT_EQ(s.opened, 1);
	ASSERT_EQ(s.closed, 1);
	ASSERT_EQ(s.connect_fail, 0);
	ASSERT_EQ(s.tx_bytes, 5007);
	ASSERT_EQ(s.rx_bytes, 25);

	/* the socket connects again and is refused: a connect failure */
	c.op = TEST_FLOW_OPEN;
	ASSERT_EQ(flow_op(skel, &c), 0);
	c.op = TEST_FLOW_CLOSE;
	c.old_state = TCP_SYN_SENT;
	c.tx = c.rx = 0;
	ASSERT_EQ(flow_op(skel, &c), 0);
	s = flow_get(skel, &k);
	ASSERT_EQ(s.opened, 2);
	ASSERT_EQ(s.closed, 1);		/* established ones only */
	ASSERT_EQ(s.connect_fail, 1);
	test_flow__destroy(skel);
}

TEST(flow_client_and_local_server)
{
	flow_client_and_local_server(1);
}

TEST(flow_client_and_local_server_sk_flow)
{
	flow_client_and_local_server(0);
}

static __u64 overflow_get(struct test_flow *skel, __u64 cluster, __be32 src)
{
	struct sm_overflow_key k = { .cluster_id = cluster, .src = src };

	return bpft_percpu_u64_sum(skel->maps.sm_overflow, &k, sizeof(k));
}

TEST(flow_overflow_by_source)
{
	struct test_flow *skel = test_flow__open_and_load();
	struct test_flow_ctx c = { .op = TEST_FLOW_OVERFLOW, .netns = 77, .cluster_id = 9 };
	__be32 pod = htonl(0x0af4000b);

	if (!ASSERT_TRUE(skel != NULL))
		return;
	/* a netns never seen connecting: source unknown (0) */
	ASSERT_EQ(flow_op(skel, &c), 0);
	ASSERT_EQ(overflow_get(skel, 9, 0), 1);
	/* learnt from its connects: counted under its IP */
	c.src = pod;
	ASSERT_EQ(flow_op(skel, &c), 0);
	c.src = 0;
	ASSERT_EQ(flow_op(skel, &c), 0);
	ASSERT_EQ(overflow_get(skel, 9, pod), 2);
	ASSERT_EQ(overflow_get(skel, 9, 0), 1);
	test_flow__destroy(skel);
}
