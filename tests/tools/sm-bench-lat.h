/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * sm-bench-lat.h: what the open-loop load generators of `make bench` share
 * (sm-bench-http, sm-bench-h2): the clock, the FIFO of due times a busy
 * connection keeps, percentiles of sorted samples and the flag parsers.
 */
#ifndef SOCKMESH_BENCH_LAT_H
#define SOCKMESH_BENCH_LAT_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/parse.h"

static inline uint64_t lat_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Due times of requests waiting for a connection (or a stream slot on it). */
struct lat_queue {
	uint64_t *due;
	size_t head, len, cap;
};

static inline int lat_queue_push(struct lat_queue *q, uint64_t due)
{
	if (q->len == q->cap) {
		size_t ncap = q->cap ? q->cap * 2 : 64;
		uint64_t *n = malloc(ncap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		for (size_t i = 0; i < q->len; i++)
			n[i] = q->due[(q->head + i) % q->cap];
		free(q->due);
		q->due = n;
		q->cap = ncap;
		q->head = 0;
	}
	q->due[(q->head + q->len) % q->cap] = due;
	q->len++;
	return 0;
}

/* The oldest due time; the queue must not be empty. */
static inline uint64_t lat_queue_pop(struct lat_queue *q)
{
	uint64_t due = q->due[q->head];

	q->head = (q->head + 1) % q->cap;
	q->len--;
	return due;
}

static inline int lat_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The p-th percentile (nearest rank) of @n sorted nanosecond samples, in µs. */
static inline double lat_pct_us(const uint64_t *sorted, size_t n, double p)
{
	size_t rank = (size_t)(p / 100.0 * (double)n + 0.999999);

	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return (double)sorted[rank - 1] / 1e3;
}

/* "IP:PORT" (IPv4) into @sa. */
static inline int lat_parse_addr(const char *s, struct sockaddr_in *sa)
{
	char ip[INET_ADDRSTRLEN];
	const char *colon = strrchr(s, ':');
	uint64_t port;

	if (!colon || (size_t)(colon - s) >= sizeof(ip) || sm_parse_uint(colon + 1, 1, 65535, &port))
		return -EINVAL;
	memcpy(ip, s, (size_t)(colon - s));
	ip[colon - s] = 0;
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, ip, &sa->sin_addr) == 1 ? 0 : -EINVAL;
}

/* Seconds, fractions allowed, 0.01..3600. */
static inline int lat_parse_secs(const char *s, double *out)
{
	char *end;
	double v = strtod(s, &end);

	if (*end || end == s || !(v >= 0.01 && v <= 3600))
		return -EINVAL;
	*out = v;
	return 0;
}

#endif /* SOCKMESH_BENCH_LAT_H */
