/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* agent: the node agent's state, shared by main.c, reload.c and admin.c. */
#ifndef SOCKMESH_AGENT_H
#define SOCKMESH_AGENT_H

#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "agent/apply.h"
#include "common/admin_api.h"
#include "common/http.h"
#include "compile/compile.h"
#include "common/sm_limits.h"
#include "agent/loader.h"
#include "agent/members.h"
#include "proxy/proxy.h"
#include "proxy/upstream.h"

#define SOCKMESH_VERSION "0.1.0"
#define AGENT_DEFAULT_PIN SM_DEFAULT_PIN_PATH
#define AGENT_DEFAULT_ADMIN SM_DEFAULT_ADMIN_SOCKET
#define AGENT_MAX_ADMIN_CONNS 16
#define AGENT_ADMIN_TIMEOUT_NS (5ull * 1000 * 1000 * 1000)
#define AGENT_RELOAD_DEBOUNCE_MS 100	/* --reload-debounce default (Istio's PILOT_DEBOUNCE_AFTER) */
#define AGENT_RELOAD_DEBOUNCE_MAX_MS 10000
#define AGENT_MAX_CHANGED 1024	/* files named for one delta reload (a rollout) */
/* L7 proxy hardening defaults (--l7-max-conns, --l7-header-timeout) */
#define AGENT_L7_MAX_CONNS	16384		/* downstream connections, whole proxy */
#define AGENT_L7_MAX_CONNS_MAX	(1u << 20)	/* fs.nr_open's default */
#define AGENT_L7_HEADER_TIMEOUT_MS 10000	/* request head complete after its first byte */
#define AGENT_L7_HEADER_TIMEOUT_MIN_MS 100
#define AGENT_L7_HEADER_TIMEOUT_MAX_MS 600000	/* 10 min */
/* --l7-drain-time: on SIGTERM, HTTP/2 streams in flight get this long after GOAWAY */
#define AGENT_L7_DRAIN_MS	3000
#define AGENT_L7_DRAIN_MAX_MS	60000

/* A policy file given in memory (POST /apply), replacing one on disk. */
struct agent_file {
	const char *name;	/* base name, e.g. "reviews.yaml" */
	const char *content;
	size_t len;
	bool remove;		/* the file goes (it holds no document any more) */
};

struct agent_kube;
struct mapcount;
struct adminwork;
struct prom_buf;
struct pol_set;

struct admin_conn {
	int fd;
	char *buf;
	size_t len, cap;
	uint64_t deadline_ns;
	bool read_only;		/* came in on --admin-listen: GET only */
	uint64_t wait_ticket;	/* GET /status answered once this map count is in
				 * (mapcount.h); 0: not waiting */
};

struct agent {
	struct loader ld;
	struct members mb;		/* --kubepods-cgroup: per-pod attach */
	struct apply_ctx ap;
	struct sm_limits limits;	/* --max-*: map sizes, checked at every reload */
	char policy_path[PATH_MAX];
	bool policy_is_dir;
	char admin_path[PATH_MAX];
	bool keep_on_exit;
	int admin_fd;
	int admin_tcp_fd;		/* --admin-listen: read-only (GET) API, -1 = off */
	char admin_tcp[64];		/* "ADDR:PORT" or "" */
	struct admin_conn conns[AGENT_MAX_ADMIN_CONNS];
	bool starting;			/* admin API up, nothing applied yet: only
					 * /healthz, /ready and /kubernetes answer */
	int inotify_fd;
	uint64_t reload_due_ns;		/* debounced file-change reload */
	uint64_t reload_debounce_ms;	/* --reload-debounce */
	uint64_t started_ns;
	/* last reload */
	uint64_t reloads_ok, reloads_failed;
	json_t *last_diags;		/* array of "file:line:col: level: msg" */
	struct pol_cache *pcache;	/* parsed policy documents, reused */
	struct agent_prepared *cur;	/* the set and plan applied last (what a
					 * delta patches), or NULL */
	char *changed[AGENT_MAX_CHANGED]; /* policy files inotify reported since */
	size_t n_changed;		/* the last reload (base names) */
	bool changed_all;		/* too many, or the queue overflowed */
	size_t n_docs;			/* policy documents applied */
	char last_error[512];
	uint64_t last_reload_ns;	/* duration of the last successful reload */
	size_t n_services, n_backends;
	/* L7 */
	bool l7_enabled;
	bool l7_redirect;		/* proxy sockets join the sockhash */
	bool beat_running;
	pthread_t beat_thread;		/* sm_l7_alive heartbeat */
	uint32_t l7_addr;		/* network order */
	uint16_t l7_port;		/* host order */
	uint32_t gateway_bind;		/* network order */
	int workers;
	uint32_t l7_max_conns;		/* --l7-max-conns */
	uint64_t l7_header_timeout_ms;	/* --l7-header-timeout */
	uint32_t l7_drain_ms;		/* --l7-drain-time */
	struct proxy_h2_limits h2;	/* --h2-* (0 = proxy_h2.h defaults) */
	int access_log_fd;
	struct l7_config *l7;		/* current (one reference held) */
	struct up_registry *up;
	struct proxy *proxy;
	uint64_t outlier_ejections, outlier_returns;
	uint64_t last_cfail_scan_ns;
	struct u64map cfail_seen;	/* backend -> kernel connect failures seen */
	struct agent_kube *kube;	/* objects from the API server (kube_src.c), or NULL */
	struct mapcount *mapcount;	/* map entries counted off the loop (admin.c), or NULL */
	struct adminwork *adminwork;	/* /services, /backends, /top off the loop, or NULL */
};

/*
 * Load the policy (disk, with files optionally replaced or added), validate,
 * plan and apply. On any error nothing changes in the kernel and the
 * running config stays. diags (may be NULL) receives every diagnostic as a
 * string. Returns 0, -EINVAL (policy invalid) or -errno (apply failed).
 */
int agent_reload(struct agent *ag, const struct agent_file *files, size_t n_files,
		 bool dry_run, json_t *diags, char *err, size_t errlen);

/*
 * `sockmeshctl apply -f` / `delete -f`: objects by identity (kind,
 * namespace, name), as kubectl applies them. apply: the files replace
 * those of their names, and an object of theirs that another file of the
 * policy directory defines moves: that file is rewritten without its
 * document (removed when nothing is left). delete: the documents of the
 * files' objects are cut from the files that define them. Then as
 * agent_reload. Returns 0, -EINVAL (policy invalid), -ENOENT (delete:
 * none of the objects is applied), -EBUSY (an object shares a document
 * with others: a List), -ENOTDIR or -errno.
 */
int agent_apply_files(struct agent *ag, const struct agent_file *files, size_t n_files,
		      bool dry_run, bool del, json_t *diags, char *err, size_t errlen);

/*
 * The reload after the policy files in ag->changed changed on disk: when
 * they only changed EndpointSlices (the same slices, other endpoints), the
 * applied set and plan are patched and only the services those slices
 * feed are re-planned and written (a delta: cost of the change, not of the
 * policy); anything else is agent_reload. Clears ag->changed.
 */
int agent_reload_changed(struct agent *ag, json_t *diags, char *err, size_t errlen);

/*
 * agent_reload in two steps, for the start: prepare (load, validate, plan;
 * no kernel access; dry_run: diagnostics not logged, the document cache
 * and the applied state left alone) before the data path
 * is loaded, commit (apply) once it is. Both free pp when they fail;
 * commit always frees it; agent_prepared_free for one not committed.
 */
struct agent_prepared {
	struct pol_set set;
	struct compile_out out;		/* plan and L7 config */
	struct pol_cache *cache;	/* ag->pcache, ended when freed */
	size_t docs_parsed, docs_reused;
	uint64_t t0, t_load, t_plan;
};

int agent_prepare(struct agent *ag, const struct agent_file *files, size_t n_files,
		  bool dry_run, json_t *diags, struct agent_prepared *pp,
		  char *err, size_t errlen);
int agent_commit(struct agent *ag, struct agent_prepared *pp, const struct agent_file *files,
		 size_t n_files, char *err, size_t errlen);
void agent_prepared_free(struct agent_prepared *pp);
/* Forget the applied set and plan (the next change reloads everything). */
void agent_cur_drop(struct agent *ag);

/*
 * A change of objects given in memory, named by identity (kube_src.c): as
 * a delta when the objects are EndpointSlices, Pod readiness, Services,
 * VirtualServices or DestinationRules that come, change or go. Returns 0
 * (applied), 1 (not a delta: load everything) or 2: one of the changed
 * objects fails validation against the rest (err: "identity\tmessage");
 * the caller may reject it alone and try the rest again.
 */
int agent_reload_delta(struct agent *ag, const struct agent_file *files, size_t n_files,
		       json_t *diags, char *err, size_t errlen);

/* ---- objects from the Kubernetes API (kube_src.c) ---- */
/* kubeconfig NULL: in-cluster. Starts the API client. 0 or -errno with err. */
int agent_kube_start(struct agent *ag, const char *kubeconfig, const char *node_name,
		     char *err, size_t errlen);
void agent_kube_stop(struct agent *ag);
/* Block until every kind has been listed (logs what is still syncing). */
int agent_kube_wait_synced(struct agent *ag);
/* The first apply is attached: how long from the first LIST, at what CPU. */
void agent_kube_log_ready(struct agent *ag);
/* agent_prepare of the API's objects, leaving out the ones that fail. */
int agent_kube_prepare(struct agent *ag, json_t *diags, struct agent_prepared *pp,
		       char *err, size_t errlen);
/* agent_prepare's source: every object the agent holds. */
int agent_kube_load(struct agent *ag, struct pol_set *set);
int agent_kube_pollfd(const struct agent *ag);
int agent_kube_timeout_ms(const struct agent *ag, uint64_t now_ns);
void agent_kube_tick(struct agent *ag, bool readable, uint64_t now_ns);
json_t *agent_kube_status(struct agent *ag);
json_t *agent_kube_syncing(struct agent *ag);
/* The objects the agent applied, of kind (NULL: all; case-insensitive) and
 * name ("ns/name" or a cluster-scoped name; NULL: all). -ENOENT: no API source. */
int agent_kube_objects(struct agent *ag, const char *kind, const char *name, json_t **out);
void agent_kube_metrics(struct agent *ag, struct prom_buf *b);

int admin_listen(struct agent *ag, char *err, size_t errlen);
void admin_close(struct agent *ag);
/*
 * Finish the admin answer being built off the loop and drop the queued
 * ones (adminwork.h): before the proxy and the upstream registry go.
 * admin_close does it too.
 */
void admin_work_stop(struct agent *ag);
/* poll() bookkeeping: fill fds; handle events. */
int admin_pollfds(struct agent *ag, struct pollfd *pfd, int max);
void admin_handle(struct agent *ag, struct pollfd *pfd, int n);
void admin_expire(struct agent *ag, uint64_t now_ns);
/*
 * {"sm_svc": entries, ...} without blocking the loop: the maps the agent
 * writes from its apply tables, the others from their last count off the
 * loop (mapcount.h); ask: count those again (the next call sees it).
 */
json_t *admin_map_entries(struct agent *ag, bool ask);

#endif /* SOCKMESH_AGENT_H */
