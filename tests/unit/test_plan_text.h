/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Shared by test_delta.c and test_poddelta.c: everything plan_build (and
 * plan_mark_local) decides, as text, so a patched plan and a full rebuild
 * compare with one strcmp.
 */
#ifndef SOCKMESH_TEST_PLAN_TEXT_H
#define SOCKMESH_TEST_PLAN_TEXT_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <arpa/inet.h>

#include "compile/plan.h"

static inline char *plan_text(const struct plan *p)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	for (size_t i = 0; i < p->n_svcs; i++) {
		const struct plan_service *s = &p->svcs[i];

		fprintf(f, "svc %x:%u %s flags %u order %zu slots", ntohl(s->key.vip),
			ntohs(s->key.port), s->fqdn, s->flags, s->order);
		for (size_t k = 0; k < s->n_slots; k++)
			fprintf(f, " %u", s->slots[k]);
		fputc('\n', f);
		for (size_t j = 0; j < s->n_clusters; j++) {
			const struct plan_cluster *c = &s->clusters[j];
			uint64_t mh = 0;

			for (uint32_t k = 0; k < c->maglev_size; k++)
				mh = mh * 31 + c->maglev[k];
			fprintf(f, "  cluster %llx %s lb %u max %u maglev %u/%llx:",
				(unsigned long long)c->id, c->name, c->lb, c->max_conns,
				c->maglev_size, (unsigned long long)mh);
			for (size_t b = 0; b < c->n_backends; b++)
				fprintf(f, " %x:%u/%u/%s", ntohl(c->backends[b].key.addr),
					ntohs(c->backends[b].key.port), c->backends[b].flags,
					c->backends[b].pod ?: "-");
			fputc('\n', f);
		}
	}
	for (size_t i = 0; i < p->n_pods; i++)
		fprintf(f, "pod %x flags %u\n", ntohl(p->pods[i].key.addr), p->pods[i].flags);
	fclose(f);
	return buf;
}

#endif /* SOCKMESH_TEST_PLAN_TEXT_H */
