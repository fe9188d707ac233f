// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * telemetry: /metrics and /graph. Label sets are built per id (series of the
 * proxy, flow of the kernel) and then aggregated by prom_table, because ids
 * are finer than labels: two backend pods of one workload, or one pod
 * reached through two service ports, are one Istio series.
 */
#include <stdio.h>
#include <string.h>

#include "common/dp.h"
#include "agent/telemetry.h"

/* Istio's workload labels of one pod IP ("unknown" for pods not in the policy). */
struct tm_wl {
	char workload[256], ns[128], app[128];
};

/* A destination service's labels. */
struct tm_svc {
	char fqdn[256], name[128], ns[128];
};

static const char *tm_label(const struct pol_labels *l, const char *key)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i].key, key))
			return l->v[i].value;
	return NULL;
}

static void tm_wl_of(const struct l7_config *c, uint32_t ip, struct tm_wl *o)
{
	const struct l7_pod *p = c && ip ? l7_config_find_pod(c, ip) : NULL;
	const char *app = p ? tm_label(&p->labels, "app") : NULL;

	if (!p) {
		snprintf(o->workload, sizeof(o->workload), "unknown");
		snprintf(o->ns, sizeof(o->ns), "unknown");
		snprintf(o->app, sizeof(o->app), "unknown");
		return;
	}
	prom_workload_name(p->name, app, tm_label(&p->labels, "version"), o->workload,
			   sizeof(o->workload));
	snprintf(o->ns, sizeof(o->ns), "%s", p->ns ? p->ns : "unknown");
	snprintf(o->app, sizeof(o->app), "%s", app ? app : "unknown");
}

/* Graph node of a workload: "ns/workload", or "unknown". */
static void tm_wl_node(const struct tm_wl *w, char *out, size_t len)
{
	if (strcmp(w->workload, "unknown"))
		snprintf(out, len, "%s/%s", w->ns, w->workload);
	else
		snprintf(out, len, "unknown");
}

/* Empty parts become "unknown" when the row is added (prom_table_add). */
static void tm_svc_of(const char *fqdn, struct tm_svc *o)
{
	snprintf(o->fqdn, sizeof(o->fqdn), "%s", fqdn && *fqdn ? fqdn : "unknown");
	prom_fqdn_split(fqdn, o->name, sizeof(o->name), o->ns, sizeof(o->ns));
}

/* A service port's FQDN from its VIP:port, through the display names in sm_meta. */
static void tm_svc_of_key(const struct dp_maps *m, const struct sm_svc_key *k, struct tm_svc *o)
{
	struct sm_meta_val meta;
	char fqdn[sizeof(o->fqdn)];

	dp_meta_get(m, SM_META_SVC, dp_meta_svc_id(k), &meta);
	prom_svc_fqdn(meta.name, fqdn, sizeof(fqdn));
	tm_svc_of(fqdn, o);
}

/* ---- graph edges, accumulated by (source, destination, protocol) ---- */

static void tm_edge_add(json_t *acc, const char *src, const char *dst, bool l4,
			const char *const *keys, const uint64_t *vals, size_t n)
{
	const char *sk = !strcmp(src, "unknown") ? "unknown" : strchr(src, '/') ? "workload" : "service";
	const char *dk = strchr(dst, '/') ? "workload" : "service";
	char key[1200];
	json_t *e;

	snprintf(key, sizeof(key), "%s|%s|%s", src, dst, l4 ? "tcp" : "http");
	e = json_object_get(acc, key);
	if (!e) {
		e = json_pack("{s:s,s:s,s:s,s:s,s:b,s:s}", "source", src, "source_kind", sk,
			      "destination", dst, "destination_kind", dk, "l4_only", l4,
			      "protocol", l4 ? "tcp" : "http");
		json_object_set_new(acc, key, e);
	}
	for (size_t i = 0; i < n; i++)
		json_object_set_new(e, keys[i], json_integer(json_integer_value(json_object_get(e, keys[i])) +
							     (json_int_t)vals[i]));
}

/* ---- L7: the proxy's request series ---- */

enum {
	TM_RQ_COUNT = 0,
	TM_RQ_DUR = 1,					/* buckets, then sum */
	TM_RQ_REQ = TM_RQ_DUR + PROXY_N_BUCKETS + 1,
	TM_RQ_RESP = TM_RQ_REQ + PROXY_N_BUCKETS + 1,
	TM_RQ_REQ_MSGS = TM_RQ_RESP + PROXY_N_BUCKETS + 1,
	TM_RQ_RESP_MSGS,
	TM_RQ_NV,
};

#define TM_RQ_GRPC_LABEL 12	/* grpc_response_status in tm_rq_labels */

static const char *const tm_rq_labels[] = {
	"reporter", "source_workload", "source_workload_namespace", "source_app",
	"destination_workload", "destination_workload_namespace", "destination_app",
	"destination_service", "destination_service_name", "destination_service_namespace",
	"request_protocol", "response_code", "grpc_response_status", "response_flags",
};

static void tm_hist_put(uint64_t *v, const struct proxy_hist *h)
{
	memcpy(v, h->buckets, sizeof(h->buckets));
	v[PROXY_N_BUCKETS] = h->sum;
}

static void tm_requests(struct agent *ag, struct prom_buf *b)
{
	static const struct { const char *name, *help; size_t vi; } hist[] = {
		{ "istio_request_duration_milliseconds", "Request durations in milliseconds.", TM_RQ_DUR },
		{ "istio_request_bytes", "Request sizes in bytes: head as received plus body.", TM_RQ_REQ },
		{ "istio_response_bytes", "Response sizes in bytes: all written back to the client.",
		  TM_RQ_RESP },
	};
	struct proxy_rseries *s = NULL;
	struct prom_table t;
	size_t n = 0;

	if (ag->proxy && proxy_request_series(ag->proxy, &s, &n))
		n = 0;
	prom_table_init(&t, tm_rq_labels, sizeof(tm_rq_labels) / sizeof(tm_rq_labels[0]), TM_RQ_NV);
	/* istio_stats: grpc_response_status is empty for HTTP and for gRPC without a status */
	t.keep_empty = 1u << TM_RQ_GRPC_LABEL;
	for (size_t i = 0; i < n; i++) {
		struct tm_wl src, dst;
		struct tm_svc svc;
		uint64_t v[TM_RQ_NV];
		char code[16], grpc[16] = "";
		/* Istio: request_protocol grpc for gRPC requests; grpc_response_status "" unless known */
		const char *vals[] = { "source", src.workload, src.ns, src.app, dst.workload, dst.ns,
				       dst.app, svc.fqdn, svc.name, svc.ns,
				       s[i].grpc == PROXY_GRPC_NONE ? "http" : "grpc", code, grpc,
				       s[i].flags };

		tm_wl_of(ag->l7, s[i].src_ip, &src);
		tm_wl_of(ag->l7, s[i].dst_ip, &dst);
		tm_svc_of(s[i].fqdn, &svc);
		snprintf(code, sizeof(code), "%d", s[i].code);
		if (s[i].grpc >= 0)
			snprintf(grpc, sizeof(grpc), "%d", s[i].grpc);
		v[TM_RQ_COUNT] = s[i].count;
		v[TM_RQ_REQ_MSGS] = s[i].req_msgs;
		v[TM_RQ_RESP_MSGS] = s[i].resp_msgs;
		tm_hist_put(v + TM_RQ_DUR, &s[i].dur_ms);
		tm_hist_put(v + TM_RQ_REQ, &s[i].req_bytes);
		tm_hist_put(v + TM_RQ_RESP, &s[i].resp_bytes);
		prom_table_add(&t, vals, v);
	}
	free(s);
	prom_table_merge(&t);
	prom_family(b, "istio_requests_total", "counter", "Requests the sockmesh proxy handled.");
	prom_table_counter(b, &t, "istio_requests_total", TM_RQ_COUNT, false);
	/* gRPC only (HTTP rows have none): messages each way, as Istio's stats filter */
	prom_family(b, "istio_request_messages_total", "counter",
		    "gRPC messages sent by clients through the sockmesh proxy.");
	prom_table_counter(b, &t, "istio_request_messages_total", TM_RQ_REQ_MSGS, true);
	prom_family(b, "istio_response_messages_total", "counter",
		    "gRPC messages sent back to clients through the sockmesh proxy.");
	prom_table_counter(b, &t, "istio_response_messages_total", TM_RQ_RESP_MSGS, true);
	for (size_t h = 0; h < sizeof(hist) / sizeof(hist[0]); h++) {
		prom_family(b, hist[h].name, "histogram", hist[h].help);
		prom_table_histogram(b, &t, hist[h].name, proxy_hist_bounds, PROXY_N_BUCKETS,
				     hist[h].vi, TM_RQ_COUNT);
	}
	if (t.oom)
		b->oom = true;
	prom_table_free(&t);
}

/* ---- L4: the kernel's flows (bpf/lib/flow.h) ---- */

#define TM_FLOW_N (sizeof(struct sm_flow_stats_val) / sizeof(uint64_t))
_Static_assert(sizeof(struct sm_flow_stats_val) == 5 * sizeof(uint64_t), "flow counters are __u64s");

enum { TM_TCP_OPENED, TM_TCP_CLOSED, TM_TCP_SENT, TM_TCP_RECEIVED, TM_TCP_NV };

static const char *const tm_tcp_labels[] = {
	"reporter", "source_workload", "source_workload_namespace", "source_app",
	"destination_workload", "destination_workload_namespace", "destination_app",
	"destination_service", "destination_service_name", "destination_service_namespace",
	"request_protocol", "response_flags",
};

struct tm_walk {
	struct agent *ag;
	struct prom_table *t;	/* /metrics rows, or NULL */
	json_t *acc;		/* /graph edges, or NULL */
};

static void tm_flow(const void *key, const uint64_t *sums, void *arg)
{
	static const char *const ek[] = { "connections", "bytes_sent", "bytes_received" };
	const struct sm_flow_key *k = key;
	struct tm_walk *w = arg;
	struct sm_flow_stats_val s;
	struct tm_wl src, dst;
	struct tm_svc svc;
	const char *vals[] = { "source", src.workload, src.ns, src.app, dst.workload, dst.ns,
			       dst.app, svc.fqdn, svc.name, svc.ns, "tcp", "-" };

	memcpy(&s, sums, sizeof(s));
	tm_wl_of(w->ag->l7, k->src, &src);
	tm_wl_of(w->ag->l7, k->be.addr, &dst);
	tm_svc_of_key(&w->ag->ld.maps, &k->svc, &svc);
	if (w->t) {
		/* Istio's direction: sent = to the client (rx), received = from it (tx) */
		uint64_t v[TM_TCP_NV] = { s.opened, s.closed, s.rx_bytes, s.tx_bytes };
		uint64_t fail[TM_TCP_NV] = { 0, s.connect_fail, 0, 0 };

		prom_table_add(w->t, vals, v);
		if (s.connect_fail) {
			vals[11] = "UF";	/* Envoy's upstream connection failure */
			prom_table_add(w->t, vals, fail);
		}
	}
	if (w->acc) {
		uint64_t ev[] = { s.opened, s.rx_bytes, s.tx_bytes };
		char sn[400], dn[400];

		tm_wl_node(&src, sn, sizeof(sn));
		tm_wl_node(&dst, dn, sizeof(dn));
		tm_edge_add(w->acc, sn, svc.fqdn, true, ek, ev, 3);
		if (strcmp(dn, "unknown"))
			tm_edge_add(w->acc, svc.fqdn, dn, true, ek, ev, 3);
	}
}

static void tm_tcp(struct agent *ag, struct prom_buf *b)
{
	static const struct { const char *name, *help; size_t vi; } fam[] = {
		{ "istio_tcp_connections_opened_total", "TCP connections opened (L4 service ports).",
		  TM_TCP_OPENED },
		{ "istio_tcp_connections_closed_total", "TCP connections closed (L4 service ports).",
		  TM_TCP_CLOSED },
		{ "istio_tcp_sent_bytes_total", "Payload bytes sent to the client (response direction).",
		  TM_TCP_SENT },
		{ "istio_tcp_received_bytes_total", "Payload bytes received from the client (request direction).",
		  TM_TCP_RECEIVED },
	};
	struct prom_table t;
	struct tm_walk w = { .ag = ag, .t = &t };

	prom_table_init(&t, tm_tcp_labels, sizeof(tm_tcp_labels) / sizeof(tm_tcp_labels[0]), TM_TCP_NV);
	dp_percpu_foreach(ag->ld.maps.flow_stats, sizeof(struct sm_flow_key), TM_FLOW_N, tm_flow, &w);
	prom_table_merge(&t);
	/* a series appears with its first count, as in Istio (the "UF" rows never open) */
	for (size_t i = 0; i < sizeof(fam) / sizeof(fam[0]); i++) {
		prom_family(b, fam[i].name, "counter", fam[i].help);
		prom_table_counter(b, &t, fam[i].name, fam[i].vi, true);
	}
	if (t.oom)
		b->oom = true;
	prom_table_free(&t);
}

/* ---- maxConnections refusals per (client pod, cluster) ---- */

static const char *const tm_ovf_labels[] = {
	"source_workload", "source_workload_namespace", "source_app", "destination_service",
	"destination_service_port", "destination_cluster",
};

static void tm_overflow(const void *key, const uint64_t *sums, void *arg)
{
	const struct sm_overflow_key *k = key;
	struct tm_walk *w = arg;
	struct sm_meta_val cm;
	struct tm_wl src;
	char fqdn[256], port[16];
	const char *vals[] = { src.workload, src.ns, src.app, fqdn, port, cm.name };

	tm_wl_of(w->ag->l7, k->src, &src);
	dp_meta_get(&w->ag->ld.maps, SM_META_CLUSTER, k->cluster_id, &cm);
	prom_cluster_split(cm.name, fqdn, sizeof(fqdn), port, sizeof(port));
	prom_table_add(w->t, vals, sums);
}

static void tm_overflows(struct agent *ag, struct prom_buf *b)
{
	struct prom_table t;
	struct tm_walk w = { .ag = ag, .t = &t };

	prom_table_init(&t, tm_ovf_labels, sizeof(tm_ovf_labels) / sizeof(tm_ovf_labels[0]), 1);
	dp_percpu_foreach(ag->ld.maps.overflow, sizeof(struct sm_overflow_key), 1, tm_overflow, &w);
	prom_table_merge(&t);
	prom_family(b, "sockmesh_connect_overflows_total", "counter",
		    "Connects refused by maxConnections, per client workload and destination cluster.");
	prom_table_counter(b, &t, "sockmesh_connect_overflows_total", 0, false);
	if (t.oom)
		b->oom = true;
	prom_table_free(&t);
}

/* ---- the rest of the kernel's and the agent's own counters ---- */

static void tm_kernel(struct agent *ag, struct prom_buf *b)
{
	static const struct { const char *metric, *counter, *help; } kc[] = {
		{ "sockmesh_redirects_total", "redirect", "Messages sk_msg redirected to a local peer." },
		{ "sockmesh_redirect_misses_total", "redirect_miss", "Messages passed to TCP: no local peer." },
		{ "sockmesh_connect_no_backend_total", "connect_no_backend", "Connects refused: no healthy backend." },
		{ "sockmesh_connects_l7_total", "connect_l7", "Connects sent to the agent's L7 proxy." },
		{ "sockmesh_flow_counter_errors_total", "flow_counter_error",
		  "L4 telemetry events lost: no room for a counter." },
	};
	/* the map fill levels as counted off the loop (mapcount.h): one scrape old */
	json_t *st = dp_status_json_base(&ag->ld.maps), *cnt = json_object_get(st, "counters"), *x;
	const char *key;

	for (size_t i = 0; i < sizeof(kc) / sizeof(kc[0]); i++) {
		prom_family(b, kc[i].metric, "counter", kc[i].help);
		prom_sample(b, kc[i].metric, NULL,
			    (double)json_integer_value(json_object_get(cnt, kc[i].counter)));
	}
	prom_family(b, "sockmesh_outlier_ejections_total", "counter", "Backends ejected by outlier detection.");
	prom_sample(b, "sockmesh_outlier_ejections_total", NULL, (double)ag->outlier_ejections);
	prom_family(b, "sockmesh_outlier_returns_total", "counter", "Ejected backends returned.");
	prom_sample(b, "sockmesh_outlier_returns_total", NULL, (double)ag->outlier_returns);
	prom_family(b, "sockmesh_policy_generation", "gauge", "Generation of the applied policy.");
	prom_sample(b, "sockmesh_policy_generation", NULL, (double)ag->ap.generation);
	prom_family(b, "sockmesh_map_entries", "gauge", "Entries in the data path's BPF maps.");
	json_object_set_new(st, "map_entries", admin_map_entries(ag, true));
	json_object_foreach(json_object_get(st, "map_entries"), key, x) {
		const char *l[] = { "map", key, NULL };

		prom_sample(b, "sockmesh_map_entries", l, (double)json_integer_value(x));
	}
	json_decref(st);
}

/* The L7 proxy's downstream protections: what it refused and why. */
static void tm_proxy(struct agent *ag, struct prom_buf *b)
{
	static const char cx[] = "sockmesh_proxy_downstream_cx_refused_total",
			  rq[] = "sockmesh_proxy_downstream_rq_rejected_total";
	static const struct { const char *metric, *help, *label, *stat; } rc[] = {
		{ cx, "Client connections the L7 proxy closed at once (max_conns: over "
		      "--l7-max-conns; no_orig_dst: not sent by connect4).",
		  "max_conns", "downstream_cx_overflow" },
		{ cx, NULL, "no_orig_dst", "downstream_cx_refused_no_orig_dst" },
		{ rq, "Requests the L7 proxy answered itself and closed (bad_request: 400/431/505; "
		      "header_timeout: 408 after --l7-header-timeout).",
		  "bad_request", "downstream_rq_bad" },
		{ rq, NULL, "header_timeout", "downstream_rq_header_timeout" },
	};
	static const char *const mr[] = { "sent", "skipped", "completed", "failed", "abandoned",
					   "cancelled" };
	json_t *st;

	if (!ag->proxy || !(st = proxy_stats_json(ag->proxy)))
		return;
	for (size_t i = 0; i < sizeof(rc) / sizeof(rc[0]); i++) {
		const char *l[] = { "reason", rc[i].label, NULL };

		if (rc[i].help)
			prom_family(b, rc[i].metric, "counter", rc[i].help);
		prom_sample(b, rc[i].metric, l,
			    (double)json_integer_value(json_object_get(st, rc[i].stat)));
	}
	/* request mirroring: the proxy's mirror_rq_* counters (README "Mirrors") */
	prom_family(b, "sockmesh_proxy_mirror_requests_total", "counter",
		    "Shadow requests of VirtualService mirrors: sent, skipped (not started), and how "
		    "each sent one ended: completed (answered), failed (connect, reset, timeout), "
		    "abandoned (over 1 MiB unsent), cancelled (its request ended first).");
	for (size_t i = 0; i < sizeof(mr) / sizeof(mr[0]); i++) {
		const char *l[] = { "result", mr[i], NULL };
		char key[32];

		snprintf(key, sizeof(key), "mirror_rq_%s", mr[i]);
		prom_sample(b, "sockmesh_proxy_mirror_requests_total", l,
			    (double)json_integer_value(json_object_get(st, key)));
	}
	prom_family(b, "sockmesh_proxy_downstream_cx_active", "gauge",
		    "Client connections the L7 proxy holds open.");
	prom_sample(b, "sockmesh_proxy_downstream_cx_active", NULL,
		    (double)json_integer_value(json_object_get(st, "downstream_cx_active")));
	prom_family(b, "sockmesh_proxy_downstream_cx_limit", "gauge",
		    "Client connections the L7 proxy holds at most (--l7-max-conns).");
	prom_sample(b, "sockmesh_proxy_downstream_cx_limit", NULL,
		    (double)json_integer_value(json_object_get(st, "max_conns")));
	json_decref(st);
}

void telemetry_metrics(struct agent *ag, struct prom_buf *b)
{
	tm_requests(ag, b);
	tm_tcp(ag, b);
	tm_overflows(ag, b);
	tm_kernel(ag, b);
	tm_proxy(ag, b);
	agent_kube_metrics(ag, b);
}

json_t *telemetry_graph(struct agent *ag)
{
	static const char *const rk[] = { "requests", "errors" };
	struct proxy_rseries *v = NULL;
	json_t *acc = json_object(), *edges = json_array(), *e;
	struct tm_walk w = { .ag = ag, .acc = acc };
	const char *key;
	size_t n = 0;

	if (ag->proxy && proxy_request_series(ag->proxy, &v, &n))
		n = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t rv[] = { v[i].count, v[i].code >= 500 || v[i].code == 0 ? v[i].count : 0 };
		const char *svc = v[i].fqdn[0] ? v[i].fqdn : "unknown";
		struct tm_wl s, d;
		char sn[400], dn[400];

		tm_wl_of(ag->l7, v[i].src_ip, &s);
		tm_wl_of(ag->l7, v[i].dst_ip, &d);
		tm_wl_node(&s, sn, sizeof(sn));
		tm_wl_node(&d, dn, sizeof(dn));
		tm_edge_add(acc, sn, svc, false, rk, rv, 2);
		if (v[i].dst_ip && strcmp(dn, "unknown"))
			tm_edge_add(acc, svc, dn, false, rk, rv, 2);
	}
	free(v);
	dp_percpu_foreach(ag->ld.maps.flow_stats, sizeof(struct sm_flow_key), TM_FLOW_N, tm_flow, &w);
	json_object_foreach(acc, key, e)
		json_array_append(edges, e);
	json_decref(acc);
	return json_pack("{s:o,s:f}", "edges", edges, "uptime_s", (dp_now_ns() - ag->started_ns) / 1e9);
}
