/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * kubepods: where the kubelet puts a pod's cgroup (cgroup v2), by pod UID.
 *
 * Relative to the node's kubepods cgroup (the --kubepods-cgroup root):
 *
 *   driver    QoS         directory
 *   cgroupfs  guaranteed  pod<uid>
 *   cgroupfs  burstable   burstable/pod<uid>
 *   cgroupfs  besteffort  besteffort/pod<uid>
 *   systemd   guaranteed  kubepods-pod<uid_>.slice
 *   systemd   burstable   kubepods-burstable.slice/kubepods-burstable-pod<uid_>.slice
 *   systemd   besteffort  kubepods-besteffort.slice/kubepods-besteffort-pod<uid_>.slice
 *
 * (<uid_>: the UID with '-' written as '_', as systemd unit names need.)
 * The pod-level cgroup holds every container of the pod, so programs
 * attached there see all of them. A UID is 1..KUBEPODS_UID_MAX characters
 * of [0-9a-fA-F-] (a UUID, or a static pod's config hash): anything else is
 * refused, so no path built here can leave the root.
 */
#ifndef SOCKMESH_KUBEPODS_H
#define SOCKMESH_KUBEPODS_H

#include <stdbool.h>
#include <stddef.h>

#define KUBEPODS_UID_MAX 64
#define KUBEPODS_N_LAYOUTS 6

bool kubepods_uid_ok(const char *uid);

/*
 * Layout i (0 .. KUBEPODS_N_LAYOUTS - 1, the table's order) of uid's pod
 * cgroup, relative to the root, into out. Returns 0, -EINVAL (bad uid or
 * i), -ENOSPC (out too small).
 */
int kubepods_pod_relpath(const char *uid, unsigned int i, char *out, size_t len);

/* "cgroupfs" or "systemd" for layout i. */
const char *kubepods_layout_driver(unsigned int i);

/*
 * The directory of uid's pod cgroup under root (root/relpath for the first
 * layout that is a directory; symbolic links are not followed). Returns 0,
 * -ENOENT (none yet: the kubelet may create it later), -EINVAL (bad uid),
 * -ENOSPC.
 */
int kubepods_find_pod(const char *root, const char *uid, char *out, size_t len);

#endif /* SOCKMESH_KUBEPODS_H */
