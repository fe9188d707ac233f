// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "agent.h"
#include "log.h"
#include "plan.h"
#include "policy.h"

static int reload_is_yaml(const char *name)
{
	size_t n = strlen(name);

	if (name[0] == '.')
		return 0;	/* editors' and our own temporary files */
	return (n > 5 && !strcmp(name + n - 5, ".yaml")) ||
	       (n > 4 && !strcmp(name + n - 4, ".yml"));
}

static int reload_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Load the policy directory with some files replaced/added from memory. */
static int reload_load_dir(struct pol_set *set, const char *dir,
			   const struct agent_file *files, size_t n_files)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **names = NULL, path[PATH_MAX];
	size_t n = 0, cap = 0;
	int ret = 0;

	if (!d)
		return policy_load_path(set, dir);
	while ((de = readdir(d))) {
		if (!reload_is_yaml(de->d_name))
			continue;
		if (n == cap) {
			char **nn;

			cap = cap ? cap * 2 : 32;
			nn = realloc(names, cap * sizeof(*names));
			if (!nn) {
				ret = -ENOMEM;
				goto out;
			}
			names = nn;
		}
		names[n] = strdup(de->d_name);
		if (!names[n]) {
			ret = -ENOMEM;
			goto out;
		}
		n++;
	}
	qsort(names, n, sizeof(*names), reload_name_cmp);
	for (size_t i = 0; i < n; i++) {
		size_t j;

		for (j = 0; j < n_files && strcmp(files[j].name, names[i]); j++)
			;
		if (j < n_files)
			continue;	/* replaced: loaded below */
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (policy_load_path(set, path) && !ret)
			ret = -EINVAL;
	}
	for (size_t j = 0; j < n_files; j++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[j].name);
		if (policy_load_buffer(set, path, files[j].content, files[j].len) && !ret)
			ret = -EINVAL;
	}
out:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return ret;
}

/* Write name into dir atomically (temporary file + rename). */
static int reload_write_file(const char *dir, const struct agent_file *f)
{
	char tmp[PATH_MAX], dst[PATH_MAX];
	size_t off = 0;
	int fd, ret = 0;

	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, f->name);
	snprintf(dst, sizeof(dst), "%s/%s", dir, f->name);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	while (off < f->len) {
		ssize_t w = write(fd, f->content + off, f->len - off);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		off += w;
	}
	if (!ret && fsync(fd))
		ret = -errno;
	close(fd);
	if (!ret && rename(tmp, dst))
		ret = -errno;
	if (ret)
		unlink(tmp);
	return ret;
}

int agent_reload(struct agent *ag, const struct agent_file *files, size_t n_files,
		 bool dry_run, json_t *diags, char *err, size_t errlen)
{
	struct pol_set set;
	struct plan plan = {};
	struct l7_config *l7 = NULL;
	char line[PATH_MAX + 400];
	uint64_t t0 = dp_now_ns();
	int ret;

	err[0] = '\0';
	if (n_files && !ag->policy_is_dir) {
		snprintf(err, errlen, "apply needs --policy to be a directory (it is the file %s)",
			 ag->policy_path);
		return -ENOTDIR;
	}
	policy_set_init(&set);
	if (ag->policy_is_dir)
		ret = reload_load_dir(&set, ag->policy_path, files, n_files);
	else
		ret = policy_load_path(&set, ag->policy_path);
	if (!set.n_errors)
		ret = policy_validate(&set);
	if (!set.n_errors && !ret)
		ret = plan_build(&set, &plan);
	if (!set.n_errors && !ret)
		ret = l7_config_build(&set, &plan, &l7);
	if (!ret && l7 && !ag->l7_enabled) {
		/* no listener: the kernel keeps these ports at L4 */
		for (size_t i = 0; i < plan.n_svcs; i++)
			if (plan.svcs[i].flags & SM_SVC_F_L7) {
				plan.svcs[i].flags &= ~SM_SVC_F_L7;
				if (!dry_run)
					log_warn("%s/%s:%u would be L7 (%s) but the L7 proxy is off "
						 "(--l7-listen): kept at L4", plan.svcs[i].ns,
						 plan.svcs[i].name, ntohs(plan.svcs[i].key.port),
						 plan.svcs[i].l7_why ?: "");
			}
	}

	for (size_t i = 0; i < set.n_diags; i++) {
		policy_diag_format(&set.diags[i], line, sizeof(line));
		if (diags)
			json_array_append_new(diags, json_string(line));
		if (!dry_run)
			log_msg(set.diags[i].level == POL_DIAG_ERROR ? LOG_ERROR :
				set.diags[i].level == POL_DIAG_WARNING ? LOG_WARN : LOG_DEBUG,
				"%s", line);
	}
	if (set.n_errors || ret) {
		snprintf(err, errlen, "policy rejected: %zu error(s); the running config is unchanged",
			 set.n_errors);
		if (!set.n_errors)
			snprintf(err, errlen, "policy rejected: %s; the running config is unchanged",
				 strerror(ret < 0 ? -ret : ret));
		ret = -EINVAL;
		goto out;
	}
	if (dry_run)
		goto out;

	/* The proxy learns the new routes before the kernel sends it new ports. */
	if (l7 && ag->proxy) {
		l7->generation = ag->ap.generation + 1;
		proxy_set_config(ag->proxy, l7_config_get(l7));
	}
	ret = apply_plan(&ag->ap, &plan, err, errlen);
	if (ret)
		goto out;
	if (l7) {
		if (ag->l7)
			l7_config_put(ag->l7);
		ag->l7 = l7;
		l7 = NULL;
	}
	for (size_t i = 0; i < n_files; i++) {
		int wret = reload_write_file(ag->policy_path, &files[i]);

		if (wret) {
			snprintf(err, errlen, "applied, but writing %s/%s failed: %s (the next "
				 "reload from disk will not include it)", ag->policy_path,
				 files[i].name, strerror(-wret));
			ret = wret;
		}
	}
	/* Membership changes apply with the policy that carries them. */
	if (ag->mb.enabled) {
		if (members_set(&ag->mb, &ag->ld, &set))
			log_err("mesh membership not updated: out of memory");
		members_reconcile(&ag->mb, &ag->ld);
	}
	ag->n_services = plan.n_svcs;
	ag->last_reload_ns = dp_now_ns() - t0;
	log_info("policy generation %llu applied: %zu service ports, %zu warnings, "
		 "%u map writes, %u deletes, %.2f ms (apply %.2f ms)",
		 (unsigned long long)ag->ap.generation, plan.n_svcs, set.n_warnings,
		 ag->ap.last_writes, ag->ap.last_deletes, ag->last_reload_ns / 1e6,
		 ag->ap.last_apply_ns / 1e6);
out:
	if (l7)
		l7_config_put(l7);
	plan_free(&plan);
	policy_set_free(&set);
	return ret;
}
