/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * admin_api: the contract between sockmesh-agent's admin API and its
 * clients (sockmeshctl, scripts): default paths, request paths and the
 * request-duration histogram buckets /top and /metrics report. The agent
 * serves these, the CLI asks for them; neither includes the other.
 */
#ifndef SOCKMESH_ADMIN_API_H
#define SOCKMESH_ADMIN_API_H

#define SM_DEFAULT_PIN_PATH	"/sys/fs/bpf/sockmesh"
#define SM_DEFAULT_ADMIN_SOCKET	"/run/sockmesh/admin.sock"

/* Request paths (HTTP/1.1 + JSON; /metrics is Prometheus text). */
#define SM_API_HEALTHZ		"/healthz"
#define SM_API_READY		"/ready"
#define SM_API_STATUS		"/status"
#define SM_API_KUBERNETES	"/kubernetes"	/* the API client's state (--kubeconfig, --in-cluster) */
#define SM_API_OBJECTS		"/objects"	/* [?kind=KIND][&name=NS/NAME] */
#define SM_API_SERVICES		"/services"
#define SM_API_BACKENDS		"/backends"	/* [?service=NS/NAME] */
#define SM_API_ROUTES		"/routes"	/* [?service=NS/NAME] */
#define SM_API_CONFIG_DUMP	"/config_dump"
#define SM_API_METRICS		"/metrics"
#define SM_API_GRAPH		"/graph"
#define SM_API_TOP		"/top"
#define SM_API_EXPLAIN		"/explain"	/* POST */
#define SM_API_APPLY		"/apply"	/* POST {"files": [{name, content}]} */
#define SM_API_DELETE		"/delete"	/* POST {"files": [{name, content}]}: their objects go */
#define SM_API_RELOAD		"/reload"	/* POST */
#define SM_API_EJECT		"/eject"	/* POST */
#define SM_API_RESTORE		"/restore"	/* POST */

/*
 * Histogram upper bounds (ms for durations, bytes for sizes: one set) of
 * the proxy's request histograms; /top's "buckets" arrays hold
 * SM_HIST_N_BUCKETS counts in this order (not cumulative).
 */
#define SM_HIST_N_BUCKETS	19
#define SM_HIST_BOUNDS {						\
	0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, \
	60000, 300000, 600000, 1800000, 3600000,			\
}

#endif /* SOCKMESH_ADMIN_API_H */
