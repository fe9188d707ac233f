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

/* Escape a label value into out (always terminated). Returns the length. */
size_t prom_escape(const char *v, char *out, size_t outlen);

/*
 * Istio's workload name of a pod: app + "-" + version labels when both
 * exist (bookinfo's reviews-v1), else the app label, else the pod name.
 */
void prom_workload_name(const char *pod_name, const char *app, const char *version,
			char *out, size_t outlen);

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
