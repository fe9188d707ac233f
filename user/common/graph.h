/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * graph: the service graph (GET /graph) as Graphviz dot, the way Kiali
 * draws it: workloads are boxes, services triangles; L7 edges carry the
 * request rate and error share, red above 5 % errors; L4 edges (the
 * kernel's flows) are dashed and carry the connection rate and bytes.
 */
#ifndef SOCKMESH_GRAPH_H
#define SOCKMESH_GRAPH_H

#include <jansson.h>

#define GRAPH_ERR_RED_PCT 5.0

/*
 * g: {"edges":[{"source":S,"source_kind":"workload"|"service"|"unknown",
 *   "destination":D,"destination_kind":..,"requests":N,"errors":N,
 *   "l4_only":bool,"connections":N,"bytes_sent":N,"bytes_received":N}]}.
 * Rates are per window_s (window_s <= 0: totals). Returns malloc'd text or
 * NULL (ENOMEM).
 */
char *graph_dot(const json_t *g, double window_s);

/* Bytes for a label: "512 B", "1.5 KiB", "3.0 MiB", "2.1 GiB". */
void graph_bytes(double v, char *out, size_t len);

#endif /* SOCKMESH_GRAPH_H */
