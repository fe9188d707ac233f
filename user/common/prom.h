/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * prom: Prometheus text exposition format 0.0.4 into a growable buffer,
 * plus the Istio label helpers the admin API's /metrics needs.
 */
#ifndef SOCKMESH_PROM_H
#define SOCKMESH_PROM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct prom_buf {
	char *p;
	size_t len, cap;
	bool oom;		/* an append failed; the text is incomplete */
};

void prom_buf_free(struct prom_buf *b);
void prom_printf(struct prom_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "# HELP name help\n# TYPE name type\n" */
void prom_family(struct prom_buf *b, const char *name, const char *type, const char *help);
/*
 * One sample: name{k1="v1",...} value. labels is a NULL-terminated list of
 * key, value pairs; values are escaped (\\, \", \n); NULL values become "unknown".
 */
void prom_sample(struct prom_buf *b, const char *name, const char *const *labels, double v);

/*
 * One histogram series: name_bucket{labels...,le="B"} cumulative for every
 * bound, le="+Inf" = count, then name_sum and name_count. counts[n] are
 * non-cumulative (observations above the last bound are count - their sum).
 * labels as prom_sample, at most PROM_MAX_LABELS pairs.
 */
#define PROM_MAX_LABELS 16
void prom_histogram(struct prom_buf *b, const char *name, const char *const *labels,
		    const double *bounds, const uint64_t *counts, size_t n, uint64_t count,
		    double sum);

/*
 * prom_table: samples aggregated by label set. Rows are added with their
 * label values and nv counters; prom_table_merge() sorts them and sums rows
 * whose values are all equal (two pods of one workload are one Istio
 * series; the exposition format forbids a series twice). Then the emitters
 * print one family from one counter (or histogram) of every row.
 */
struct prom_row {
	char *vals;		/* label values, each NUL-terminated, back to back */
	size_t len;		/* bytes in vals */
	uint64_t *v;		/* nv counters, same allocation as vals */
};

struct prom_table {
	const char *const *names;	/* label names, n_names <= PROM_MAX_LABELS */
	size_t n_names, nv;
	struct prom_row *rows;
	size_t n, cap;
	uint32_t keep_empty;		/* bit i: label i's "" stays "" (else "unknown") */
	bool oom;			/* a row was lost: the caller answers 500 */
};

void prom_table_init(struct prom_table *t, const char *const *names, size_t n_names, size_t nv);
/*
 * vals: n_names label values (NULL or "" -> "unknown", except "" stays for
 * the labels in t->keep_empty, set after init); v: nv counters.
 */
void prom_table_add(struct prom_table *t, const char *const *vals, const uint64_t *v);
void prom_table_merge(struct prom_table *t);
void prom_table_free(struct prom_table *t);
/* name{labels} v[vi] for every row; skip_zero leaves rows with v[vi] == 0 out. */
void prom_table_counter(struct prom_buf *b, const struct prom_table *t, const char *name,
			size_t vi, bool skip_zero);
/* A histogram per row: bucket counts v[vi .. vi+n-1], sum v[vi+n], count v[ci]. */
void prom_table_histogram(struct prom_buf *b, const struct prom_table *t, const char *name,
			  const double *bounds, size_t n, size_t vi, size_t ci);

/* Escape a label value into out (always terminated). Returns the length. */
size_t prom_escape(const char *v, char *out, size_t outlen);

/*
 * Istio's workload name of a pod: app + "-" + version labels when both
 * exist (bookinfo's reviews-v1), else the app label, else the pod name.
 */
void prom_workload_name(const char *pod_name, const char *app, const char *version,
			char *out, size_t outlen);

/* "ns/name" (a service's display name) -> "name.ns.svc.cluster.local"; other shapes as is. */
void prom_svc_fqdn(const char *nsname, char *out, size_t len);

/*
 * Envoy's cluster name "outbound|PORT|SUBSET|FQDN" -> FQDN and PORT (empty
 * when the name is not of that shape).
 */
void prom_cluster_split(const char *cluster, char *fqdn, size_t flen, char *port, size_t plen);

/* "name.ns.svc.cluster.local" -> name, ns (empty when not of that shape). */
void prom_fqdn_split(const char *fqdn, char *name, size_t nlen, char *ns, size_t nslen);

/*
 * Quantile q (0..1) of a histogram with non-cumulative bucket counts over
 * upper bounds[n] (plus an implicit +Inf bucket holding total - sum),
 * interpolated linearly inside the bucket like Prometheus'
 * histogram_quantile. Returns -1 when total is 0; the last bound when the
 * quantile falls into +Inf.
 */
double prom_hist_quantile(const double *bounds, const uint64_t *counts, size_t n,
			  uint64_t total, double q);

#endif /* SOCKMESH_PROM_H */
