// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * adminwork: whole-map admin answers off the agent's loop (see adminwork.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "agent/adminwork.h"

struct adminwork {
	struct dp_maps maps;		/* dup'd: the thread never sees a closed fd */
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	struct adminwork_job *head, **tail;
	size_t n;			/* queued, not running */
};

static void *adminwork_main(void *arg)
{
	struct adminwork *w = arg;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		struct adminwork_job *job;

		while (!w->stop && !w->head)
			pthread_cond_wait(&w->cond, &w->lock);
		if (w->stop)
			break;
		job = w->head;
		w->head = job->next;
		if (!w->head)
			w->tail = &w->head;
		w->n--;
		pthread_mutex_unlock(&w->lock);
		job->run(job, &w->maps);
		job->drop(job);
		pthread_mutex_lock(&w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

struct adminwork *adminwork_start(const struct dp_maps *m)
{
	struct adminwork *w = calloc(1, sizeof(*w));
	int err = ENOMEM;

	if (!w)
		goto fail;
	dp_maps_init(&w->maps);
	for (size_t i = 0; i < DP_N_MAPS; i++) {
		int fd = *dp_maps_at((struct dp_maps *)m, i);
		int *own = dp_maps_at(&w->maps, i);

		if (fd >= 0 && (*own = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0) {
			err = errno;
			goto fail;
		}
	}
	w->tail = &w->head;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	err = pthread_create(&w->thread, NULL, adminwork_main, w);
	if (!err)
		return w;
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
fail:
	if (w)
		dp_maps_close(&w->maps);
	free(w);
	errno = err;
	return NULL;
}

int adminwork_submit(struct adminwork *w, struct adminwork_job *job)
{
	int ret = 0;

	job->next = NULL;
	pthread_mutex_lock(&w->lock);
	if (w->n >= ADMINWORK_QUEUE_MAX || w->stop) {
		ret = -EBUSY;
	} else {
		*w->tail = job;
		w->tail = &job->next;
		w->n++;
		pthread_cond_signal(&w->cond);
	}
	pthread_mutex_unlock(&w->lock);
	return ret;
}

void adminwork_stop(struct adminwork *w)
{
	struct adminwork_job *job;

	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	while ((job = w->head)) {
		w->head = job->next;
		job->drop(job);
	}
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	dp_maps_close(&w->maps);
	free(w);
}
