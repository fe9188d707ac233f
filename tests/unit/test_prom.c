// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <stdlib.h>

#include "graph.h"
#include "prom.h"
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
			   "label=\"0.70 cps\\ntcp\"];");
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
