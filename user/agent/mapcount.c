// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * mapcount: map entry counts off the agent's loop (see mapcount.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "agent/mapcount.h"

struct mapcount {
	int fds[DP_N_COUNTED];		/* dup'd: the walker never sees a closed fd */
	int efd;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	volatile int stop;
	uint32_t pending;		/* maps asked for since the last walk began */
	uint64_t asked, done;		/* tickets: last asked, last walk finished */
	uint32_t counts[DP_N_COUNTED];
};

static void *mapcount_main(void *arg)
{
	struct mapcount *mc = arg;

	pthread_mutex_lock(&mc->lock);
	for (;;) {
		uint32_t mask, counts[DP_N_COUNTED];
		uint64_t ticket, one = 1;
		ssize_t ret;

		while (!mc->stop && !mc->pending)
			pthread_cond_wait(&mc->cond, &mc->lock);
		if (mc->stop)
			break;
		mask = mc->pending;
		ticket = mc->asked;
		mc->pending = 0;
		pthread_mutex_unlock(&mc->lock);
		for (size_t i = 0; i < DP_N_COUNTED; i++)
			if (mask & (1u << i))
				counts[i] = dp_map_count(mc->fds[i], dp_counted_maps[i].key_size,
							 &mc->stop);
		pthread_mutex_lock(&mc->lock);
		for (size_t i = 0; i < DP_N_COUNTED; i++)
			if (mask & (1u << i))
				mc->counts[i] = counts[i];
		mc->done = ticket;
		/* a counter never near full: read by the loop, added to once per walk */
		ret = write(mc->efd, &one, sizeof(one));
		(void)ret;
	}
	pthread_mutex_unlock(&mc->lock);
	return NULL;
}

struct mapcount *mapcount_start(const struct dp_maps *m)
{
	struct mapcount *mc = calloc(1, sizeof(*mc));
	int err;

	if (!mc)
		return NULL;
	mc->efd = -1;
	for (size_t i = 0; i < DP_N_COUNTED; i++) {
		int fd = dp_counted_fd(m, i);

		mc->fds[i] = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
		if (fd >= 0 && mc->fds[i] < 0)
			goto fail;
	}
	mc->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (mc->efd < 0)
		goto fail;
	pthread_mutex_init(&mc->lock, NULL);
	pthread_cond_init(&mc->cond, NULL);
	err = pthread_create(&mc->thread, NULL, mapcount_main, mc);
	if (err) {
		pthread_cond_destroy(&mc->cond);
		pthread_mutex_destroy(&mc->lock);
		errno = err;
		goto fail;
	}
	return mc;
fail:
	err = errno;
	for (size_t i = 0; i < DP_N_COUNTED; i++)
		if (mc->fds[i] >= 0)
			close(mc->fds[i]);
	if (mc->efd >= 0)
		close(mc->efd);
	free(mc);
	errno = err;
	return NULL;
}

void mapcount_stop(struct mapcount *mc)
{
	if (!mc)
		return;
	pthread_mutex_lock(&mc->lock);
	mc->stop = 1;
	pthread_cond_signal(&mc->cond);
	pthread_mutex_unlock(&mc->lock);
	pthread_join(mc->thread, NULL);
	pthread_cond_destroy(&mc->cond);
	pthread_mutex_destroy(&mc->lock);
	for (size_t i = 0; i < DP_N_COUNTED; i++)
		if (mc->fds[i] >= 0)
			close(mc->fds[i]);
	close(mc->efd);
	free(mc);
}

int mapcount_fd(const struct mapcount *mc)
{
	return mc->efd;
}

uint64_t mapcount_request(struct mapcount *mc, uint32_t mask)
{
	uint64_t ticket;

	pthread_mutex_lock(&mc->lock);
	if (mask) {
		mc->pending |= mask;
		mc->asked++;
		pthread_cond_signal(&mc->cond);
	}
	ticket = mc->asked;
	pthread_mutex_unlock(&mc->lock);
	return ticket;
}

uint64_t mapcount_done(struct mapcount *mc)
{
	uint64_t v, done;
	ssize_t ret = read(mc->efd, &v, sizeof(v));	/* EAGAIN: nothing new */

	(void)ret;
	pthread_mutex_lock(&mc->lock);
	done = mc->done;
	pthread_mutex_unlock(&mc->lock);
	return done;
}

void mapcount_last(struct mapcount *mc, uint32_t counts[DP_N_COUNTED])
{
	pthread_mutex_lock(&mc->lock);
	memcpy(counts, mc->counts, sizeof(mc->counts));
	pthread_mutex_unlock(&mc->lock);
}

uint32_t mapcount_from_apply(const struct apply_ctx *a, uint32_t counts[DP_N_COUNTED])
{
	uint64_t bset = a->live_bset, maglev = a->live_maglev, route = a->live_route;

	/* an adopted data path or a failed apply: foreign entries until the sweep */
	if (apply_sweep_pending(a))
		return 0;
	for (size_t i = 0; i < a->n_defer; i++) {
		if (a->defer[i].kind == 0) {
			bset += a->defer[i].n;
			maglev += a->defer[i].maglev_size;
		} else {
			route += a->defer[i].n;
		}
	}
	counts[DP_CNT_SVC] = (uint32_t)a->svcs.n;
	counts[DP_CNT_CLUSTER] = (uint32_t)a->clusters.n;
	counts[DP_CNT_BACKEND] = (uint32_t)a->backends.n;
	counts[DP_CNT_BSET] = (uint32_t)bset;
	counts[DP_CNT_MAGLEV] = (uint32_t)maglev;
	counts[DP_CNT_ROUTE] = (uint32_t)route;
	return 1u << DP_CNT_SVC | 1u << DP_CNT_CLUSTER | 1u << DP_CNT_BACKEND | 1u << DP_CNT_BSET |
	       1u << DP_CNT_MAGLEV | 1u << DP_CNT_ROUTE;
}
