/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* base64 decoding (VirtualService body.bytes, kubeconfig *-data fields). */
#ifndef SOCKMESH_B64_H
#define SOCKMESH_B64_H

#include <stddef.h>

/*
 * Standard or URL-safe base64, padding and line breaks optional, into a
 * malloc'd NUL-terminated *out of *out_len bytes. Returns 0, -EINVAL (not
 * base64) or -ENOMEM.
 */
int sm_b64_decode(const char *in, char **out, size_t *out_len);

#endif /* SOCKMESH_B64_H */
