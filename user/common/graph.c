// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <stdio.h>
#include <string.h>

#include "common/graph.h"
#include "common/prom.h"

/* dot's quoted strings need \" and \\ escaped, like Prometheus labels */
static void graph_node(struct prom_buf *b, const char *name, const char *kind)
{
	char esc[600];

	prom_escape(name, esc, sizeof(esc));
	prom_printf(b, "  \"%s\" [shape=%s];\n", esc,
		    !strcmp(kind, "service") ? "triangle" : !strcmp(kind, "unknown") ? "ellipse" : "box");
}

void graph_bytes(double v, char *out, size_t len)
{
	static const char *const unit[] = { "KiB", "MiB", "GiB", "TiB" };
	int u = -1;

	while (v >= 1024 && u < 3) {
		v /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(out, len, "%.0f B", v);
	else
		snprintf(out, len, "%.1f %s", v, unit[u]);
}

/* L4 edge: connections and payload bytes (both directions) per second or in total. */
static void graph_l4_edge(struct prom_buf *b, const char *s, const char *d, const json_t *e,
			  double window_s)
{
	double cx = (double)json_integer_value(json_object_get(e, "connections"));
	double by = (double)json_integer_value(json_object_get(e, "bytes_sent")) +
		    (double)json_integer_value(json_object_get(e, "bytes_received"));
	char bs[32];

	graph_bytes(window_s > 0 ? by / window_s : by, bs, sizeof(bs));
	if (window_s > 0)
		prom_printf(b, "  \"%s\" -> \"%s\" [style=dashed, label=\"%.2f cps\\n%s/s tcp\"];\n",
			    s, d, cx / window_s, bs);
	else
		prom_printf(b, "  \"%s\" -> \"%s\" [style=dashed, label=\"%.0f conns\\n%s tcp\"];\n",
			    s, d, cx, bs);
}

char *graph_dot(const json_t *g, double window_s)
{
	json_t *edges = json_object_get(g, "edges");
	struct prom_buf b = {};
	char s[600], d[600];

	prom_printf(&b, "digraph sockmesh {\n  rankdir=LR;\n  node [fontname=\"Helvetica\"];\n"
			"  edge [fontname=\"Helvetica\", fontsize=10];\n");
	for (size_t i = 0; i < json_array_size(edges); i++) {
		json_t *e = json_array_get(edges, i);
		const char *src = json_string_value(json_object_get(e, "source")) ?: "unknown";
		const char *dst = json_string_value(json_object_get(e, "destination")) ?: "unknown";
		const char *sk = json_string_value(json_object_get(e, "source_kind")) ?: "workload";
		const char *dk = json_string_value(json_object_get(e, "destination_kind")) ?: "service";

		graph_node(&b, src, sk);
		graph_node(&b, dst, dk);
	}
	for (size_t i = 0; i < json_array_size(edges); i++) {
		json_t *e = json_array_get(edges, i);
		double rq = (double)json_integer_value(json_object_get(e, "requests"));
		double er = (double)json_integer_value(json_object_get(e, "errors"));
		double pct = rq > 0 ? 100.0 * er / rq : 0;
		bool l4 = json_is_true(json_object_get(e, "l4_only"));

		prom_escape(json_string_value(json_object_get(e, "source")) ?: "unknown", s, sizeof(s));
		prom_escape(json_string_value(json_object_get(e, "destination")) ?: "unknown", d, sizeof(d));
		if (l4) {
			graph_l4_edge(&b, s, d, e, window_s);
			continue;
		}
		if (window_s > 0)
			prom_printf(&b, "  \"%s\" -> \"%s\" [label=\"%.2f rps\\n%.1f%% err\"", s, d,
				    rq / window_s, pct);
		else
			prom_printf(&b, "  \"%s\" -> \"%s\" [label=\"%.0f req\\n%.1f%% err\"", s, d, rq, pct);
		prom_printf(&b, ", color=\"%s\"%s];\n", pct > GRAPH_ERR_RED_PCT ? "red" : "darkgreen",
			    pct > GRAPH_ERR_RED_PCT ? ", fontcolor=\"red\"" : "");
	}
	prom_printf(&b, "}\n");
	if (b.oom) {
		prom_buf_free(&b);
		return NULL;
	}
	return b.p;
}
