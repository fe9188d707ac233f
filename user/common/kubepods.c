// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/kubepods.h"

static const struct kubepods_layout {
	const char *driver;
	const char *dir;	/* parent under the root, "" or "x/" */
	const char *prefix;
	const char *suffix;
	bool underscores;	/* systemd unit names: '-' in the UID becomes '_' */
} kubepods_layouts[KUBEPODS_N_LAYOUTS] = {
	{ "cgroupfs", "", "pod", "", false },
	{ "cgroupfs", "burstable/", "pod", "", false },
	{ "cgroupfs", "besteffort/", "pod", "", false },
	{ "systemd", "", "kubepods-pod", ".slice", true },
	{ "systemd", "kubepods-burstable.slice/", "kubepods-burstable-pod", ".slice", true },
	{ "systemd", "kubepods-besteffort.slice/", "kubepods-besteffort-pod", ".slice", true },
};

bool kubepods_uid_ok(const char *uid)
{
	size_t n = uid ? strlen(uid) : 0;

	return n && n <= KUBEPODS_UID_MAX && strspn(uid, "0123456789abcdefABCDEF-") == n;
}

int kubepods_pod_relpath(const char *uid, unsigned int i, char *out, size_t len)
{
	const struct kubepods_layout *l;
	char u[KUBEPODS_UID_MAX + 1];
	int n;

	if (!kubepods_uid_ok(uid) || i >= KUBEPODS_N_LAYOUTS)
		return -EINVAL;
	l = &kubepods_layouts[i];
	snprintf(u, sizeof(u), "%s", uid);
	for (char *p = u; l->underscores && *p; p++)
		if (*p == '-')
			*p = '_';
	n = snprintf(out, len, "%s%s%s%s", l->dir, l->prefix, u, l->suffix);
	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

const char *kubepods_layout_driver(unsigned int i)
{
	return i < KUBEPODS_N_LAYOUTS ? kubepods_layouts[i].driver : "?";
}

int kubepods_find_pod(const char *root, const char *uid, char *out, size_t len)
{
	char rel[2 * KUBEPODS_UID_MAX + 64];
	struct stat st;
	int ret, n;

	for (unsigned int i = 0; i < KUBEPODS_N_LAYOUTS; i++) {
		if ((ret = kubepods_pod_relpath(uid, i, rel, sizeof(rel))))
			return ret;
		n = snprintf(out, len, "%s/%s", root, rel);
		if (n < 0 || (size_t)n >= len)
			return -ENOSPC;
		if (!lstat(out, &st) && S_ISDIR(st.st_mode))
			return 0;
	}
	out[0] = '\0';
	return -ENOENT;
}
