// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <stdlib.h>

#include "common/graph.h"
#include "common/prom.h"
#include "test.h"

TEST(prom_escape_table)
{
	static const struct { const char *in, *out; } t[] = {
		{ "plain", "plain" },
		{ "a\"b", "a\\\"b" },
		{ "back\\slash", "back\\\\slash" },
		{ "new\nline", "new\\nline" },
		{ "", "" },
	};
	char buf[64];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		prom_escape(t[i].in, buf, sizeof(buf));
		ASSERT_STREQ(buf, t[i].out);
	}
	/* truncation never splits an escape or overruns */
	prom_escape("\"\"\"\"\"\"", buf, 6);
	ASSERT_STREQ(buf, "\\\"\\\"");
}

TEST(prom_sample_format)
{
	struct prom_buf b = {};
	const char *l[] = { "code", "200", "w", NULL, "q", "a\"b", NULL };

	prom_family(&b, "x_total", "counter", "Help text.");
	prom_sample(&b, "x_total", l, 42);
	prom_sample(&b, "y", NULL, 1.5);
	ASSERT_FALSE(b.oom);
	ASSERT_STREQ(b.p, "# HELP x_total Help text.\n# TYPE x_total counter\n"
			  "x_total{code=\"200\",w=\"unknown\",q=\"a\\\"b\"} 42\ny 1.5\n");
	prom_buf_free(&b);
}

TEST(prom_buf_grows)
{
	struct prom_buf b = {};

	for (int i = 0; i < 2000; i++)
		prom_printf(&b, "line %04d\n", i);
	ASSERT_EQ(b.len, 2000 * 10);
	ASSERT_STRSTR(b.p, "line 1999\n");
	prom_buf_free(&b);
}

TEST(prom_workload_name_table)
{
	static const struct { const char *pod, *app, *ver, *out; } t[] = {
		{ "reviews-v1-5d8f7b6c4d-abcde", "reviews", "v1", "reviews-v1" },
		{ "tester-abc", "tester", NULL, "tester" },
		{ "lonely", NULL, "v1", "lonely" },
		{ NULL, NULL, NULL, "unknown" },
		{ "x", "", "", "x" },
	};
	char buf[64];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		prom_workload_name(t[i].pod, t[i].app, t[i].ver, buf, sizeof(buf));
		ASSERT_STREQ(buf, t[i].out);
	}
}

TEST(prom_fqdn_split_table)
{
	static const struct { const char *in, *name, *ns; } t[] = {
		{ "reviews.default.svc.cluster.local", "reviews", "default" },
		{ "a.b", "a", "" },
		{ "bare", "bare", "" },
		{ "", "", "" },
	};
	char n[64], ns[64];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		prom_fqdn_split(t[i].in, n, sizeof(n), ns, sizeof(ns));
		ASSERT_STREQ(n, t[i].name);
		ASSERT_STREQ(ns, t[i].ns);
	}
}

TEST(graph_dot_edges)
{
	json_t *g = json_pack("{s:[{s:s,s:s,s:s,s:s,s:I,s:I},{s:s,s:s,s:s,s:s,s:I,s:I},"
			      "{s:s,s:s,s:s,s:s,s:b,s:I}]}", "edges",
			      "source", "default/productpage-v1", "source_kind", "workload",
			      "destination", "reviews.default.svc.cluster.local", "destination_kind", "service",
			      "requests", (json_int_t)100, "errors", (json_int_t)6,
			      "source", "reviews.default.svc.cluster.local", "source_kind", "service",
			      "destination", "default/reviews-v1", "destination_kind", "workload",
			      "requests", (json_int_t)100, "errors", (json_int_t)5,
			      "source", "unknown", "source_kind", "unknown",
			      "destination", "db.default.svc.cluster.local", "destination_kind", "service",
			      "l4_only", 1, "connections", (json_int_t)7);
	char *dot = graph_dot(g, 10);

	ASSERT_TRUE(dot != NULL);
	ASSERT_STRSTR(dot, "digraph sockmesh {");
	ASSERT_STRSTR(dot, "\"reviews.default.svc.cluster.local\" [shape=triangle];");
	ASSERT_STRSTR(dot, "\"default/productpage-v1\" [shape=box];");
	/* 6 % errors: red; exactly 5 %: not red */
	ASSERT_STRSTR(dot, "\"default/productpage-v1\" -> \"reviews.default.svc.cluster.local\" "
			   "[label=\"10.00 rps\\n6.0% err\", color=\"red\"");
	ASSERT_STRSTR(dot, "\"reviews.default.svc.cluster.local\" -> \"default/reviews-v1\" "
			   "[label=\"10.00 rps\\n5.0% err\", color=\"darkgreen\"];");
	ASSERT_STRSTR(dot, "\"unknown\" -> \"db.default.svc.cluster.local\" [style=dashed, "
			   "label=\"0.70 cps\\n0 B/s tcp\"];");
	free(dot);
	dot = graph_dot(g, 0);
	ASSERT_STRSTR(dot, "label=\"100 req\\n6.0% err\"");
	free(dot);
	json_decref(g);
}

TEST(prom_hist_quantile_table)
{
	static const double bounds[] = { 1, 5, 10, 100 };
	static const struct { uint64_t c[4]; uint64_t total; double q, want; } t[] = {
		{ { 0, 0, 0, 0 }, 0, 0.5, -1 },
		{ { 10, 0, 0, 0 }, 10, 0.5, 0.5 },	/* half way into [0,1] */
		{ { 0, 10, 0, 0 }, 10, 0.5, 3 },	/* [1,5] */
		{ { 50, 0, 0, 50 }, 100, 0.99, 98.2 },	/* 49 of 50 into [10,100] */
		{ { 0, 0, 0, 0 }, 5, 0.5, 100 },	/* all above the last bound */
		{ { 1, 1, 1, 1 }, 4, 1.0, 100 },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		double got = prom_hist_quantile(bounds, t[i].c, 4, t[i].total, t[i].q);

		ASSERT_EQ((long long)(got * 1000 + (got < 0 ? -0.5 : 0.5)),
			  (long long)(t[i].want * 1000 + (t[i].want < 0 ? -0.5 : 0.5)));
	}
}

TEST(prom_histogram_format)
{
	static const double bounds[] = { 1, 10, 100 };
	static const uint64_t counts[] = { 2, 0, 3 };	/* and 1 above 100 */
	const char *l[] = { "svc", "a", NULL };
	struct prom_buf b = {};

	prom_histogram(&b, "x_bytes", l, bounds, counts, 3, 6, 1234);
	prom_histogram(&b, "y_ms", NULL, bounds, counts, 1, 2, 1.5);
	ASSERT_FALSE(b.oom);
	ASSERT_STREQ(b.p, "x_bytes_bucket{svc=\"a\",le=\"1\"} 2\n"
			  "x_bytes_bucket{svc=\"a\",le=\"10\"} 2\n"
			  "x_bytes_bucket{svc=\"a\",le=\"100\"} 5\n"
			  "x_bytes_bucket{svc=\"a\",le=\"+Inf\"} 6\n"
			  "x_bytes_sum{svc=\"a\"} 1234\n"
			  "x_bytes_count{svc=\"a\"} 6\n"
			  "y_ms_bucket{le=\"1\"} 2\n"
			  "y_ms_bucket{le=\"+Inf\"} 2\n"
			  "y_ms_sum 1.5\n"
			  "y_ms_count 2\n");
	prom_buf_free(&b);
}

/* Rows with equal labels are one series (two pods of one workload), sorted. */
TEST(prom_table_merges_equal_labels)
{
	static const char *const names[] = { "src", "dst", "flags" };
	static const struct { const char *v[3]; uint64_t c[2]; } rows[] = {
		{ { "web", "db-v1", "-" }, { 3, 100 } },
		{ { "web", "db-v1", "UF" }, { 0, 1 } },
		{ { "api", "", "-" }, { 1, 0 } },
		{ { "web", "db-v1", "-" }, { 2, 50 } },		/* the workload's second pod */
		{ { "api", NULL, "-" }, { 4, 0 } },		/* "" and NULL are both unknown */
	};
	struct prom_table t;
	struct prom_buf b = {};

	prom_table_init(&t, names, 3, 2);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		prom_table_add(&t, rows[i].v, rows[i].c);
	prom_table_merge(&t);
	ASSERT_EQ(t.n, 3);
	prom_table_counter(&b, &t, "opened", 0, true);
	prom_table_counter(&b, &t, "closed", 1, false);
	ASSERT_FALSE(t.oom);
	ASSERT_STREQ(b.p, "opened{src=\"api\",dst=\"unknown\",flags=\"-\"} 5\n"
			  "opened{src=\"web\",dst=\"db-v1\",flags=\"-\"} 5\n"
			  "closed{src=\"api\",dst=\"unknown\",flags=\"-\"} 0\n"
			  "closed{src=\"web\",dst=\"db-v1\",flags=\"-\"} 150\n"
			  "closed{src=\"web\",dst=\"db-v1\",flags=\"UF\"} 1\n");
	prom_buf_free(&b);
	prom_table_free(&t);
}

TEST(prom_table_keep_empty)
{
	static const char *const names[] = { "proto", "grpc" };
	const char *http[] = { "http", "" }, *grpc[] = { "grpc", "14" }, *none[] = { "", NULL };
	const uint64_t one[] = { 1 };
	struct prom_table t;
	struct prom_buf b = {};

	prom_table_init(&t, names, 2, 1);
	t.keep_empty = 1u << 1;		/* Istio's grpc_response_status: "" for HTTP */
	prom_table_add(&t, http, one);
	prom_table_add(&t, grpc, one);
	prom_table_add(&t, none, one);	/* NULL stays unknown, "" elsewhere too */
	prom_table_add(&t, http, one);
	prom_table_merge(&t);
	prom_table_counter(&b, &t, "rq", 0, false);
	ASSERT_FALSE(t.oom);
	ASSERT_STREQ(b.p, "rq{proto=\"grpc\",grpc=\"14\"} 1\n"
			  "rq{proto=\"http\",grpc=\"\"} 2\n"
			  "rq{proto=\"unknown\",grpc=\"unknown\"} 1\n");
	prom_buf_free(&b);
	prom_table_free(&t);
}

TEST(prom_table_histogram_rows)
{
	static const char *const names[] = { "code" };
	static const double bounds[] = { 100, 1000 };
	/* count, buckets (2), sum */
	const uint64_t a[] = { 3, 1, 2, 1500 }, c[] = { 1, 0, 0, 5000 };
	const char *va[] = { "200" }, *vc[] = { "503" };
	struct prom_table t;
	struct prom_buf b = {};

	prom_table_init(&t, names, 1, 4);
	prom_table_add(&t, vc, c);
	prom_table_add(&t, va, a);
	prom_table_add(&t, va, a);
	prom_table_merge(&t);
	prom_table_histogram(&b, &t, "rq_bytes", bounds, 2, 1, 0);
	ASSERT_STREQ(b.p, "rq_bytes_bucket{code=\"200\",le=\"100\"} 2\n"
			  "rq_bytes_bucket{code=\"200\",le=\"1000\"} 6\n"
			  "rq_bytes_bucket{code=\"200\",le=\"+Inf\"} 6\n"
			  "rq_bytes_sum{code=\"200\"} 3000\n"
			  "rq_bytes_count{code=\"200\"} 6\n"
			  "rq_bytes_bucket{code=\"503\",le=\"100\"} 0\n"
			  "rq_bytes_bucket{code=\"503\",le=\"1000\"} 0\n"
			  "rq_bytes_bucket{code=\"503\",le=\"+Inf\"} 1\n"
			  "rq_bytes_sum{code=\"503\"} 5000\n"
			  "rq_bytes_count{code=\"503\"} 1\n");
	/* out of range: nothing printed */
	prom_buf_free(&b);
	prom_table_histogram(&b, &t, "bad", bounds, 2, 2, 0);
	ASSERT_TRUE(b.p == NULL);
	prom_table_free(&t);
}

TEST(prom_svc_cluster_names_table)
{
	static const struct { const char *in, *fqdn, *port; } c[] = {
		{ "outbound|9080|v1|reviews.default.svc.cluster.local", "reviews.default.svc.cluster.local", "9080" },
		{ "outbound|9090||db.prod.svc.cluster.local", "db.prod.svc.cluster.local", "9090" },
		{ "outbound|9080|v1", "", "" },
		{ "a|b|c|d|e", "", "" },
		{ "", "", "" },
		{ NULL, "", "" },
	};
	char fqdn[128], port[16];

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		prom_cluster_split(c[i].in, fqdn, sizeof(fqdn), port, sizeof(port));
		ASSERT_STREQ(fqdn, c[i].fqdn);
		ASSERT_STREQ(port, c[i].port);
	}
	prom_svc_fqdn("default/reviews", fqdn, sizeof(fqdn));
	ASSERT_STREQ(fqdn, "reviews.default.svc.cluster.local");
	prom_svc_fqdn("bare", fqdn, sizeof(fqdn));
	ASSERT_STREQ(fqdn, "bare");
	prom_svc_fqdn("", fqdn, sizeof(fqdn));
	ASSERT_STREQ(fqdn, "");
}

TEST(graph_bytes_table)
{
	static const struct { double v; const char *out; } t[] = {
		{ 0, "0 B" }, { 1023, "1023 B" }, { 1024, "1.0 KiB" }, { 1536, "1.5 KiB" },
		{ 3 * 1048576.0, "3.0 MiB" }, { 2.5 * 1073741824.0, "2.5 GiB" },
		{ 5000 * 1099511627776.0, "5000.0 TiB" },
	};
	char buf[32];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		graph_bytes(t[i].v, buf, sizeof(buf));
		ASSERT_STREQ(buf, t[i].out);
	}
}

/* L4 edges from the kernel's flows: dashed, connection rate and bytes both ways. */
TEST(graph_dot_l4_edges)
{
	json_t *g = json_pack("{s:[{s:s,s:s,s:s,s:s,s:b,s:I,s:I,s:I,s:s}]}", "edges",
			      "source", "default/productpage-v1", "source_kind", "workload",
			      "destination", "ratings.default.svc.cluster.local",
			      "destination_kind", "service", "l4_only", 1,
			      "connections", (json_int_t)5, "bytes_sent", (json_int_t)110,
			      "bytes_received", (json_int_t)25000, "protocol", "tcp");
	char *dot = graph_dot(g, 10);

	ASSERT_STRSTR(dot, "\"default/productpage-v1\" -> \"ratings.default.svc.cluster.local\" "
			   "[style=dashed, label=\"0.50 cps\\n2.5 KiB/s tcp\"];");
	free(dot);
	dot = graph_dot(g, 0);
	ASSERT_STRSTR(dot, "[style=dashed, label=\"5 conns\\n24.5 KiB tcp\"];");
	free(dot);
	json_decref(g);
}
