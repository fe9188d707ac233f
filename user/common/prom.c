// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/grow.h"
#include "common/prom.h"

void prom_buf_free(struct prom_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static bool prom_reserve(struct prom_buf *b, size_t extra)
{
	size_t cap;
	char *np;

	if (b->oom)
		return false;
	if (b->len + extra + 1 <= b->cap)
		return true;
	cap = b->cap ? b->cap : 4096;
	while (cap < b->len + extra + 1)
		cap *= 2;
	np = realloc(b->p, cap);
	if (!np) {
		b->oom = true;
		return false;
	}
	b->p = np;
	b->cap = cap;
	return true;
}

void prom_printf(struct prom_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !prom_reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void prom_family(struct prom_buf *b, const char *name, const char *type, const char *help)
{
	prom_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

size_t prom_escape(const char *v, char *out, size_t outlen)
{
	size_t n = 0;

	if (!outlen)
		return 0;
	for (; v && *v && n + 3 < outlen; v++) {
		if (*v == '\\' || *v == '"') {
			out[n++] = '\\';
			out[n++] = *v;
		} else if (*v == '\n') {
			out[n++] = '\\';
			out[n++] = 'n';
		} else {
			out[n++] = *v;
		}
	}
	out[n] = '\0';
	return n;
}

void prom_sample(struct prom_buf *b, const char *name, const char *const *labels, double v)
{
	char esc[1024];

	prom_printf(b, "%s", name);
	for (size_t i = 0; labels && labels[i]; i += 2) {
		prom_escape(labels[i + 1] ? labels[i + 1] : "unknown", esc, sizeof(esc));
		prom_printf(b, "%s%s=\"%s\"", i ? "," : "{", labels[i], esc);
	}
	if (labels && labels[0])
		prom_printf(b, "}");
	prom_printf(b, " %.17g\n", v);
}

void prom_histogram(struct prom_buf *b, const char *name, const char *const *labels,
		    const double *bounds, const uint64_t *counts, size_t n, uint64_t count,
		    double sum)
{
	const char *l[2 * PROM_MAX_LABELS + 3];
	char metric[256], le[32];
	size_t nl = 0;
	uint64_t cum = 0;

	while (labels && labels[nl] && nl < 2 * PROM_MAX_LABELS) {
		l[nl] = labels[nl];
		l[nl + 1] = labels[nl + 1];
		nl += 2;
	}
	l[nl] = "le";
	l[nl + 1] = le;
	l[nl + 2] = NULL;
	snprintf(metric, sizeof(metric), "%s_bucket", name);
	for (size_t i = 0; i < n; i++) {
		cum += counts[i];
		snprintf(le, sizeof(le), "%.15g", bounds[i]);
		prom_sample(b, metric, l, (double)cum);
	}
	snprintf(le, sizeof(le), "+Inf");
	prom_sample(b, metric, l, (double)count);
	l[nl] = NULL;
	snprintf(metric, sizeof(metric), "%s_sum", name);
	prom_sample(b, metric, l, sum);
	snprintf(metric, sizeof(metric), "%s_count", name);
	prom_sample(b, metric, l, (double)count);
}

void prom_table_init(struct prom_table *t, const char *const *names, size_t n_names, size_t nv)
{
	memset(t, 0, sizeof(*t));
	t->names = names;
	t->n_names = n_names < PROM_MAX_LABELS ? n_names : PROM_MAX_LABELS;
	t->nv = nv;
}

static const char *prom_table_val(const struct prom_table *t, const char *const *vals, size_t i)
{
	if (vals[i] && (*vals[i] || (t->keep_empty & 1u << i)))
		return vals[i];
	return "unknown";
}

void prom_table_add(struct prom_table *t, const char *const *vals, const uint64_t *v)
{
	size_t len = 0, off;
	struct prom_row *r;
	char *mem;

	for (size_t i = 0; i < t->n_names; i++)
		len += strlen(prom_table_val(t, vals, i)) + 1;
	if (sm_grow((void **)&t->rows, &t->cap, t->n + 1, sizeof(*t->rows)) ||
	    !(mem = malloc(t->nv * sizeof(uint64_t) + len))) {
		t->oom = true;
		return;
	}
	r = &t->rows[t->n++];
	r->v = (uint64_t *)mem;
	r->vals = mem + t->nv * sizeof(uint64_t);
	r->len = len;
	memcpy(r->v, v, t->nv * sizeof(uint64_t));
	off = 0;
	for (size_t i = 0; i < t->n_names; i++) {
		const char *x = prom_table_val(t, vals, i);
		size_t xl = strlen(x) + 1;

		memcpy(r->vals + off, x, xl);
		off += xl;
	}
}

static int prom_row_cmp(const void *a, const void *b)
{
	const struct prom_row *x = a, *y = b;
	int c = memcmp(x->vals, y->vals, x->len < y->len ? x->len : y->len);

	return c ? c : (x->len > y->len) - (x->len < y->len);
}

void prom_table_merge(struct prom_table *t)
{
	size_t m = 0;

	if (t->n > 1)
		qsort(t->rows, t->n, sizeof(*t->rows), prom_row_cmp);
	for (size_t i = 0; i < t->n; i++) {
		if (m && !prom_row_cmp(&t->rows[m - 1], &t->rows[i])) {
			for (size_t k = 0; k < t->nv; k++)
				t->rows[m - 1].v[k] += t->rows[i].v[k];
			free(t->rows[i].v);
			continue;
		}
		t->rows[m++] = t->rows[i];
	}
	t->n = m;
}

void prom_table_free(struct prom_table *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->rows[i].v);
	free(t->rows);
	t->rows = NULL;
	t->n = t->cap = 0;
}

/* The row's label pairs in l (NULL-terminated). */
static void prom_row_labels(const struct prom_table *t, const struct prom_row *r, const char **l)
{
	const char *p = r->vals;

	for (size_t i = 0; i < t->n_names; i++) {
		l[2 * i] = t->names[i];
		l[2 * i + 1] = p;
		p += strlen(p) + 1;
	}
	l[2 * t->n_names] = NULL;
}

void prom_table_counter(struct prom_buf *b, const struct prom_table *t, const char *name,
			size_t vi, bool skip_zero)
{
	const char *l[2 * PROM_MAX_LABELS + 1];

	for (size_t i = 0; i < t->n && vi < t->nv; i++) {
		if (skip_zero && !t->rows[i].v[vi])
			continue;
		prom_row_labels(t, &t->rows[i], l);
		prom_sample(b, name, l, (double)t->rows[i].v[vi]);
	}
}

void prom_table_histogram(struct prom_buf *b, const struct prom_table *t, const char *name,
			  const double *bounds, size_t n, size_t vi, size_t ci)
{
	const char *l[2 * PROM_MAX_LABELS + 1];

	if (vi + n >= t->nv || ci >= t->nv)
		return;
	for (size_t i = 0; i < t->n; i++) {
		const uint64_t *v = t->rows[i].v;

		prom_row_labels(t, &t->rows[i], l);
		prom_histogram(b, name, l, bounds, v + vi, n, v[ci], (double)v[vi + n]);
	}
}

void prom_svc_fqdn(const char *nsname, char *out, size_t len)
{
	const char *slash = nsname ? strchr(nsname, '/') : NULL;

	if (slash)
		snprintf(out, len, "%s.%.*s.svc.cluster.local", slash + 1, (int)(slash - nsname), nsname);
	else
		snprintf(out, len, "%s", nsname ? nsname : "");
}

void prom_cluster_split(const char *cluster, char *fqdn, size_t flen, char *port, size_t plen)
{
	const char *f[4] = {}, *p = cluster;
	int n = 0;

	fqdn[0] = port[0] = '\0';
	for (; p && n < 4; n++) {
		f[n] = p;
		p = strchr(p, '|');
		if (p)
			p++;
	}
	if (n != 4 || p || !f[3][0])
		return;
	snprintf(port, plen, "%.*s", (int)(f[2] - f[1] - 1), f[1]);
	snprintf(fqdn, flen, "%s", f[3]);
}

void prom_workload_name(const char *pod_name, const char *app, const char *version,
			char *out, size_t outlen)
{
	if (app && *app && version && *version)
		snprintf(out, outlen, "%s-%s", app, version);
	else if (app && *app)
		snprintf(out, outlen, "%s", app);
	else
		snprintf(out, outlen, "%s", pod_name && *pod_name ? pod_name : "unknown");
}

void prom_fqdn_split(const char *fqdn, char *name, size_t nlen, char *ns, size_t nslen)
{
	const char *d1 = fqdn ? strchr(fqdn, '.') : NULL, *d2 = d1 ? strchr(d1 + 1, '.') : NULL;

	snprintf(name, nlen, "%.*s", d1 ? (int)(d1 - fqdn) : 0, fqdn ? fqdn : "");
	snprintf(ns, nslen, "%.*s", d2 ? (int)(d2 - d1 - 1) : 0, d1 ? d1 + 1 : "");
	if (!d1)
		snprintf(name, nlen, "%s", fqdn ? fqdn : "");
}

double prom_hist_quantile(const double *bounds, const uint64_t *counts, size_t n,
			  uint64_t total, double q)
{
	double rank = q * (double)total, cum = 0;

	if (!total || !n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		double lo = i ? bounds[i - 1] : 0;

		if (counts[i] && cum + (double)counts[i] >= rank)
			return lo + (bounds[i] - lo) * (rank - cum) / (double)counts[i];
		cum += (double)counts[i];
	}
	return bounds[n - 1];
}
