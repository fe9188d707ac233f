/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * telemetry: the agent's GET /metrics (Prometheus text 0.0.4, Istio's names
 * and labels) and GET /graph, from the proxy's request series and the
 * kernel's per-CPU counters. Ids (pod IPs, VIPs, cluster ids) become labels
 * here, at scrape time, from the current policy.
 */
#ifndef SOCKMESH_TELEMETRY_H
#define SOCKMESH_TELEMETRY_H

#include <jansson.h>

#include "agent/agent.h"
#include "common/prom.h"

/* Every family into b (b->oom set when memory ran out). */
void telemetry_metrics(struct agent *ag, struct prom_buf *b);

/*
 * {"edges":[...],"uptime_s":S}: L7 edges (requests, errors) from the proxy,
 * L4 edges (connections, bytes each way, "l4_only":true) from the kernel's
 * flow counters; both as workload -> service and service -> workload.
 */
json_t *telemetry_graph(struct agent *ag);

#endif /* SOCKMESH_TELEMETRY_H */
