// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prom.h"

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
