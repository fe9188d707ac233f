/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * adminwork: admin requests that read whole BPF maps (/services, /backends,
 * /top) answered on a thread of their own, so the agent's loop (deltas,
 * /healthz, timers) never waits for them.
 *
 * At 10k services / 100k endpoints such a request is a few hundred
 * thousand map lookups and a JSON body of tens of MB: seconds on a loaded
 * machine, all of it on the loop before. Now the loop parses the request,
 * takes what the answer needs from the agent (a reference of the L7
 * config; the upstream registry and the proxy, which live as long as the
 * agent and are read under their own locks) and queues a job; the thread
 * reads the maps through its own copies of their fds (the kernel's view,
 * as `sockmeshctl` reads the pinned maps), builds the body, sends it and
 * closes the connection.
 */
#ifndef SOCKMESH_ADMINWORK_H
#define SOCKMESH_ADMINWORK_H

#include <stddef.h>

#include "common/dp.h"

#define ADMINWORK_QUEUE_MAX 8	/* jobs waiting; more: the loop answers 503 */

struct adminwork_job {
	struct adminwork_job *next;
	/* on the thread, with its copy of the maps; then drop */
	void (*run)(struct adminwork_job *job, const struct dp_maps *m);
	/* frees the job (also one never run: the worker stopped first) */
	void (*drop)(struct adminwork_job *job);
};

struct adminwork;

/* Start the thread on its own copies of m's fds. NULL with errno on failure. */
struct adminwork *adminwork_start(const struct dp_maps *m);
/*
 * Queue job: 0 (the worker owns it from here on), or -EBUSY when
 * ADMINWORK_QUEUE_MAX jobs wait or the worker stops (the caller keeps it).
 */
int adminwork_submit(struct adminwork *w, struct adminwork_job *job);
/* Let the running job finish, drop the queued ones, stop; NULL is fine. */
void adminwork_stop(struct adminwork *w);

#endif /* SOCKMESH_ADMINWORK_H */
