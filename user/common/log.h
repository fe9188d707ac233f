/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* log: one-line messages from the agent and the CLI (never from libraries). */
#ifndef SOCKMESH_LOG_H
#define SOCKMESH_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

extern int log_verbosity;	/* messages above this level are dropped */
extern const char *log_prog;	/* prefix, e.g. "sockmesh-agent" */

void log_msg(enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_err(...)	log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)	log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)	log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)	log_msg(LOG_DEBUG, __VA_ARGS__)

#endif /* SOCKMESH_LOG_H */
