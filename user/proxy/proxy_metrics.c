// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * proxy_metrics: per-worker request series for the Prometheus scrape. Each
 * worker owns an open-addressing table keyed by (source pod, destination
 * host, cluster, status, flags), a local reply no cluster took by the Host
 * it named instead of the cluster; only insertions take the worker's cs_mu
 * (readers hold it while walking), counter updates are relaxed stores by
 * the owning worker, so the hot path costs a hash probe and a few adds.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/proxy_int.h"

const double proxy_hist_bounds[PROXY_N_BUCKETS] = SM_HIST_BOUNDS;

struct px_rstat {
	uint64_t cluster_id;
	uint32_t src_ip, dst_ip;
	int code;
	uint16_t flags;
	char *fqdn;
	uint64_t count;
	uint64_t req_msgs, resp_msgs;	/* gRPC messages */
	struct proxy_hist dur_ms, req_bytes, resp_bytes;
};

static uint64_t px_rs_hash(uint64_t cid, uint32_t src, uint32_t dst, int code, uint16_t flags)
{
	return sm_hash_mix64(cid ^ ((uint64_t)src << 32 | dst) * 0x9e3779b97f4a7c15ull ^
			     ((uint64_t)(uint32_t)code << 16 | flags) * 0xc2b2ae3d27d4eb4full);
}

/* The hash key's cluster part: the cluster id, or the Host of a request no cluster took. */
static uint64_t px_rs_cid(uint64_t cid, const char *svc)
{
	uint64_t h = 0xcbf29ce484222325ull;	/* FNV-1a */

	if (cid)
		return cid;
	for (; svc && *svc; svc++)
		h = (h ^ (unsigned char)*svc) * 0x100000001b3ull;
	return h;
}

static size_t px_rs_slot(struct px_rstat **t, size_t cap, const struct px_rstat *r)
{
	size_t i = px_rs_hash(px_rs_cid(r->cluster_id, r->fqdn), r->src_ip, r->dst_ip, r->code,
			      r->flags) & (cap - 1);

	while (t[i])
		i = (i + 1) & (cap - 1);
	return i;
}

static struct px_rstat *px_rstat_find(struct px_worker *w, uint64_t cid, const char *svc,
				      uint32_t src, uint32_t dst, int code, uint16_t flags)
{
	size_t i;

	if (!w->cap_rstats)
		return NULL;
	for (i = px_rs_hash(px_rs_cid(cid, svc), src, dst, code, flags) & (w->cap_rstats - 1);
	     w->rstats[i]; i = (i + 1) & (w->cap_rstats - 1)) {
		struct px_rstat *r = w->rstats[i];

		if (r->cluster_id == cid && r->src_ip == src && r->dst_ip == dst &&
		    r->code == code && r->flags == flags && (cid || !strcmp(r->fqdn, svc)))
			return r;
	}
	return NULL;
}

static struct px_rstat *px_rstat_add(struct px_worker *w, const struct l7_cluster *c,
				     const char *svc, uint32_t src, uint32_t dst, int code,
				     uint16_t flags)
{
	struct px_rstat *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	*r = (struct px_rstat){ .cluster_id = c ? c->id : 0, .src_ip = src, .dst_ip = dst,
				.code = code, .flags = flags };
	r->fqdn = strdup(c ? (c->fqdn ? c->fqdn : "") : svc);
	if (!r->fqdn) {
		free(r);
		return NULL;
	}
	pthread_mutex_lock(&w->cs_mu);
	if ((w->n_rstats + 1) * 2 > w->cap_rstats) {
		size_t cap = w->cap_rstats ? w->cap_rstats * 2 : 64;
		struct px_rstat **t = calloc(cap, sizeof(*t));

		if (!t) {
			pthread_mutex_unlock(&w->cs_mu);
			free(r->fqdn);
			free(r);
			return NULL;
		}
		for (size_t i = 0; i < w->cap_rstats; i++)
			if (w->rstats[i])
				t[px_rs_slot(t, cap, w->rstats[i])] = w->rstats[i];
		free(w->rstats);
		w->rstats = t;
		w->cap_rstats = cap;
	}
	w->rstats[px_rs_slot(w->rstats, w->cap_rstats, r)] = r;
	w->n_rstats++;
	pthread_mutex_unlock(&w->cs_mu);
	return r;
}

/* One observation into a histogram owned by this worker (relaxed stores). */
static void px_hist_add(struct proxy_hist *h, uint64_t v)
{
	px_cs_add(&h->sum, v);
	for (int b = 0; b < PROXY_N_BUCKETS; b++)
		if ((double)v <= proxy_hist_bounds[b]) {
			px_cs_add(&h->buckets[b], 1);
			break;
		}
}

static void px_hist_load(struct proxy_hist *dst, const struct proxy_hist *h)
{
	dst->sum = __atomic_load_n(&h->sum, __ATOMIC_RELAXED);
	for (int b = 0; b < PROXY_N_BUCKETS; b++)
		dst->buckets[b] = __atomic_load_n(&h->buckets[b], __ATOMIC_RELAXED);
}

static void px_hist_merge(struct proxy_hist *dst, const struct proxy_hist *h)
{
	dst->sum += h->sum;
	for (int b = 0; b < PROXY_N_BUCKETS; b++)
		dst->buckets[b] += h->buckets[b];
}

void px_rstat_record(struct px_worker *w, uint32_t src_ip, uint32_t dst_ip,
		     const struct l7_cluster *c, const char *svc, int status, int grpc,
		     uint16_t flags, uint64_t dur_ms, uint64_t req_bytes, uint64_t resp_bytes,
		     uint64_t req_msgs, uint64_t resp_msgs)
{
	uint64_t cid = c ? c->id : 0;
	struct px_rstat *r;

	/* the key's code carries the gRPC part above the HTTP status: grpc + 2 (0 = http) */
	status = (status & 0xffff) | (grpc + 2) << 16;
	if (!svc)
		svc = "";
	r = px_rstat_find(w, cid, svc, src_ip, dst_ip, status, flags);
	if (!r && !(r = px_rstat_add(w, c, svc, src_ip, dst_ip, status, flags)))
		return;
	px_cs_add(&r->count, 1);
	if (req_msgs)
		px_cs_add(&r->req_msgs, req_msgs);
	if (resp_msgs)
		px_cs_add(&r->resp_msgs, resp_msgs);
	px_hist_add(&r->dur_ms, dur_ms);
	px_hist_add(&r->req_bytes, req_bytes);
	px_hist_add(&r->resp_bytes, resp_bytes);
}

void px_rstat_free(struct px_worker *w)
{
	for (size_t i = 0; i < w->cap_rstats; i++)
		if (w->rstats[i]) {
			free(w->rstats[i]->fqdn);
			free(w->rstats[i]);
		}
	free(w->rstats);
	w->rstats = NULL;
	w->cap_rstats = w->n_rstats = 0;
}

static int px_rseries_cmp(const void *a, const void *b)
{
	const struct proxy_rseries *x = a, *y = b;
	int c = strcmp(x->fqdn, y->fqdn);

	if (c)
		return c;
	if (x->src_ip != y->src_ip)
		return x->src_ip < y->src_ip ? -1 : 1;
	if (x->dst_ip != y->dst_ip)
		return x->dst_ip < y->dst_ip ? -1 : 1;
	if (x->code != y->code)
		return x->code < y->code ? -1 : 1;
	if (x->grpc != y->grpc)
		return x->grpc < y->grpc ? -1 : 1;
	return strcmp(x->flags, y->flags);
}

int proxy_request_series(struct proxy *p, struct proxy_rseries **out, size_t *n)
{
	struct proxy_rseries *v = NULL;
	size_t len = 0, cap = 0, m = 0;

	for (int i = 0; i < p->nw; i++) {
		struct px_worker *w = &p->w[i];

		pthread_mutex_lock(&w->cs_mu);
		for (size_t j = 0; j < w->cap_rstats; j++) {
			const struct px_rstat *r = w->rstats[j];
			struct proxy_rseries *s;

			if (!r)
				continue;
			if (len == cap) {
				size_t nc = cap ? cap * 2 : 64;
				struct proxy_rseries *nv = realloc(v, nc * sizeof(*nv));

				if (!nv) {
					pthread_mutex_unlock(&w->cs_mu);
					free(v);
					return -ENOMEM;
				}
				v = nv;
				cap = nc;
			}
			s = &v[len++];
			memset(s, 0, sizeof(*s));
			s->src_ip = r->src_ip;
			s->dst_ip = r->dst_ip;
			s->code = r->code & 0xffff;
			s->grpc = (r->code >> 16) - 2;
			snprintf(s->fqdn, sizeof(s->fqdn), "%s", r->fqdn);
			px_flags_format(r->flags, s->flags, sizeof(s->flags));
			s->count = __atomic_load_n(&r->count, __ATOMIC_RELAXED);
			s->req_msgs = __atomic_load_n(&r->req_msgs, __ATOMIC_RELAXED);
			s->resp_msgs = __atomic_load_n(&r->resp_msgs, __ATOMIC_RELAXED);
			px_hist_load(&s->dur_ms, &r->dur_ms);
			px_hist_load(&s->req_bytes, &r->req_bytes);
			px_hist_load(&s->resp_bytes, &r->resp_bytes);
		}
		pthread_mutex_unlock(&w->cs_mu);
	}
	if (len)
		qsort(v, len, sizeof(*v), px_rseries_cmp);
	/* the same series from several workers (and cluster ids of one fqdn) merge */
	for (size_t i = 0; i < len; i++) {
		if (m && !px_rseries_cmp(&v[m - 1], &v[i])) {
			v[m - 1].count += v[i].count;
			v[m - 1].req_msgs += v[i].req_msgs;
			v[m - 1].resp_msgs += v[i].resp_msgs;
			px_hist_merge(&v[m - 1].dur_ms, &v[i].dur_ms);
			px_hist_merge(&v[m - 1].req_bytes, &v[i].req_bytes);
			px_hist_merge(&v[m - 1].resp_bytes, &v[i].resp_bytes);
			continue;
		}
		if (m != i)
			v[m] = v[i];
		m++;
	}
	*out = v;
	*n = m;
	return 0;
}
