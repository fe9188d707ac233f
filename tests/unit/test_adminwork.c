// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * user/agent/adminwork.c: the admin worker's queue. Jobs run in order on
 * its thread; past ADMINWORK_QUEUE_MAX waiting a submit is refused (the
 * caller keeps the job and answers 503); stop lets the running job finish
 * and drops the rest; every job is dropped exactly once.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "agent/adminwork.h"
#include "test.h"

struct aw_test {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	bool open;		/* the gate the first job waits at */
	bool first_running;
	int ran, dropped;
	int order[32];
};

struct aw_test_job {
	struct adminwork_job base;
	struct aw_test *t;
	int id;
	bool gate;		/* waits until t->open */
};

static void aw_run(struct adminwork_job *job, const struct dp_maps *m)
{
	struct aw_test_job *j = (struct aw_test_job *)job;
	struct aw_test *t = j->t;

	(void)m;
	pthread_mutex_lock(&t->mu);
	if (j->gate) {
		t->first_running = true;
		pthread_cond_broadcast(&t->cond);
		while (!t->open)
			pthread_cond_wait(&t->cond, &t->mu);
	}
	if (t->ran < 32)
		t->order[t->ran] = j->id;
	t->ran++;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->mu);
}

static void aw_drop(struct adminwork_job *job)
{
	struct aw_test_job *j = (struct aw_test_job *)job;

	pthread_mutex_lock(&j->t->mu);
	j->t->dropped++;
	pthread_mutex_unlock(&j->t->mu);
	free(j);
}

static struct aw_test_job *aw_job(struct aw_test *t, int id, bool gate)
{
	struct aw_test_job *j = calloc(1, sizeof(*j));

	if (j) {
		j->base.run = aw_run;
		j->base.drop = aw_drop;
		j->t = t;
		j->id = id;
		j->gate = gate;
	}
	return j;
}

static void aw_init(struct aw_test *t)
{
	*t = (struct aw_test){ 0 };
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->cond, NULL);
}

/* Submit the gated job and wait until the worker holds it. */
static struct adminwork *aw_start_gated(struct aw_test *t)
{
	struct dp_maps m;
	struct adminwork *w;

	dp_maps_init(&m);	/* no maps: nothing to dup */
	w = adminwork_start(&m);
	if (!w || adminwork_submit(w, &aw_job(t, 0, true)->base))
		return NULL;
	pthread_mutex_lock(&t->mu);
	while (!t->first_running)
		pthread_cond_wait(&t->cond, &t->mu);
	pthread_mutex_unlock(&t->mu);
	return w;
}

TEST(adminwork_queue_bound_and_order)
{
	struct aw_test t;
	struct adminwork *w;
	struct aw_test_job *extra;

	aw_init(&t);
	w = aw_start_gated(&t);
	ASSERT_TRUE(w != NULL);
	for (int i = 1; i <= ADMINWORK_QUEUE_MAX; i++)
		ASSERT_EQ(adminwork_submit(w, &aw_job(&t, i, false)->base), 0);
	/* one running, ADMINWORK_QUEUE_MAX waiting: refused, the caller keeps it */
	extra = aw_job(&t, 99, false);
	ASSERT_EQ(adminwork_submit(w, &extra->base), -EBUSY);
	aw_drop(&extra->base);
	pthread_mutex_lock(&t.mu);
	t.open = true;
	pthread_cond_broadcast(&t.cond);
	while (t.ran < ADMINWORK_QUEUE_MAX + 1)
		pthread_cond_wait(&t.cond, &t.mu);	/* each run signals */
	pthread_mutex_unlock(&t.mu);
	adminwork_stop(w);
	ASSERT_EQ(t.ran, ADMINWORK_QUEUE_MAX + 1);
	ASSERT_EQ(t.dropped, ADMINWORK_QUEUE_MAX + 2);	/* every job once, the refused one too */
	for (int i = 0; i <= ADMINWORK_QUEUE_MAX; i++)
		ASSERT_EQ(t.order[i], i);	/* in order */
}

static void *aw_stopper(void *w)
{
	adminwork_stop(w);
	return NULL;
}

TEST(adminwork_stop_drops_the_queue)
{
	struct aw_test t;
	struct adminwork *w;
	pthread_t stopper;

	aw_init(&t);
	w = aw_start_gated(&t);
	ASSERT_TRUE(w != NULL);
	for (int i = 1; i <= 3; i++)
		ASSERT_EQ(adminwork_submit(w, &aw_job(&t, i, false)->base), 0);
	/* stop while the first runs: it finishes; the others may run or be dropped */
	ASSERT_EQ(pthread_create(&stopper, NULL, aw_stopper, w), 0);
	pthread_mutex_lock(&t.mu);
	t.open = true;
	pthread_cond_broadcast(&t.cond);
	pthread_mutex_unlock(&t.mu);
	pthread_join(stopper, NULL);
	ASSERT_GE(t.ran, 1);
	ASSERT_LE(t.ran, 4);
	ASSERT_EQ(t.dropped, 4);	/* each job freed once, run or not */
	adminwork_stop(NULL);		/* NULL is fine */
}
