/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * graph: the service graph (GET /graph) as Graphviz dot, the way Kiali
 * draws it: workloads are boxes, services triangles; edges carry the
 * request rate and error share, red above 5 % errors, dashed when only
 * L4 connections were seen.
 */
#ifndef SOCKMESH_GRAPH_H
#define SOCKMESH_GRAPH_H

#include <jansson.h>

#define GRAPH_ERR_RED_PCT 5.0

/*
 * g: {"edges":[{"source":S,"source_kind":"workload"|"service"|"unknown",
 *   "destination":D,"destination_kind":..,"requests":N,"errors":N,
 *   "l4_only":bool,"connections":N}]}. Rates are requests / window_s
 * (window_s <= 0: counts only). Returns malloc'd text or NULL (ENOMEM).
 */
char *graph_dot(const json_t *g, double window_s);

#endif /* SOCKMESH_GRAPH_H */
