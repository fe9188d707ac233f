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

void agent_prepared_free(struct agent_prepared *pp)
{
	if (pp->l7)
		l7_config_put(pp->l7);
	plan_free(&pp->plan);
	policy_set_free(&pp->set);
	/* the set is gone: documents no load used since begin can go */
	if (pp->cache)
		policy_cache_end(pp->cache);
	memset(pp, 0, sizeof(*pp));
}

int agent_prepare(struct agent *ag, const struct agent_file *files, size_t n_files,
		  bool quiet, json_t *diags, struct agent_prepared *pp,
		  char *err, size_t errlen)
{
	char line[PATH_MAX + 400];
	int ret;

	memset(pp, 0, sizeof(*pp));
	pp->t0 = dp_now_ns();
	err[0] = '\0';
	if (n_files && !ag->policy_is_dir) {
		snprintf(err, errlen, "apply needs --policy to be a directory (it is the file %s)",
			 ag->policy_path);
		return -ENOTDIR;
	}
	policy_set_init(&pp->set);
	if (ag->pcache) {
		pp->cache = ag->pcache;
		policy_cache_begin(pp->cache);
		policy_set_use_cache(&pp->set, pp->cache);
	}
	if (ag->policy_is_dir)
		ret = reload_load_dir(&pp->set, ag->policy_path, files, n_files);
	else
		ret = policy_load_path(&pp->set, ag->policy_path);
	if (!pp->set.n_errors)
		ret = policy_validate(&pp->set);
	pp->t_load = dp_now_ns();
	if (pp->cache)
		policy_cache_stats(pp->cache, &pp->docs_parsed, &pp->docs_reused);
	if (!pp->set.n_errors && !ret)
		ret = plan_build(&pp->set, &pp->plan);
	if (!pp->set.n_errors && !ret)
		ret = plan_check_limits(&pp->set, &pp->plan, &ag->limits);
	/* the node's own pods: the only peers worth a sockhash slot */
	if (!pp->set.n_errors && !ret && ag->mb.enabled && ag->mb.node[0])
		ret = plan_mark_local(&pp->set, &pp->plan, ag->mb.node);
	if (!pp->set.n_errors && !ret)
		ret = l7_config_build(&pp->set, &pp->plan, &pp->l7);
	pp->t_plan = dp_now_ns();
	if (!ret && pp->l7 && !ag->l7_enabled) {
		struct plan *plan = &pp->plan;

		/* no listener: the kernel keeps these ports at L4 */
		for (size_t i = 0; i < plan->n_svcs; i++)
			if (plan->svcs[i].flags & SM_SVC_F_L7) {
				plan->svcs[i].flags &= ~SM_SVC_F_L7;
				if (!quiet)
					log_warn("%s/%s:%u would be L7 (%s) but the L7 proxy is off "
						 "(--l7-listen): kept at L4", plan->svcs[i].ns,
						 plan->svcs[i].name, ntohs(plan->svcs[i].key.port),
						 plan->svcs[i].l7_why ?: "");
			}
	}

	for (size_t i = 0; i < pp->set.n_diags; i++) {
		policy_diag_format(&pp->set.diags[i], line, sizeof(line));
		if (diags)
			json_array_append_new(diags, json_string(line));
		if (!quiet)
			log_msg(pp->set.diags[i].level == POL_DIAG_ERROR ? LOG_ERROR :
				pp->set.diags[i].level == POL_DIAG_WARNING ? LOG_WARN : LOG_DEBUG,
				"%s", line);
	}
	if (pp->set.n_errors || ret) {
		snprintf(err, errlen, "policy rejected: %zu error(s); the running config is unchanged",
			 pp->set.n_errors);
		if (!pp->set.n_errors)
			snprintf(err, errlen, "policy rejected: %s; the running config is unchanged",
				 strerror(ret < 0 ? -ret : ret));
		agent_prepared_free(pp);
		return -EINVAL;
	}
	return 0;
}

int agent_commit(struct agent *ag, struct agent_prepared *pp, const struct agent_file *files,
		 size_t n_files, char *err, size_t errlen)
{
	uint64_t t_commit = dp_now_ns();
	int ret;

	err[0] = '\0';
	/* The proxy learns the new routes before the kernel sends it new ports. */
	if (pp->l7 && ag->proxy) {
		pp->l7->generation = ag->ap.generation + 1;
		proxy_set_config(ag->proxy, l7_config_get(pp->l7));
	}
	ret = apply_plan(&ag->ap, &pp->plan, err, errlen);
	if (ret)
		goto out;
	if (pp->l7) {
		if (ag->l7)
			l7_config_put(ag->l7);
		ag->l7 = pp->l7;
		pp->l7 = NULL;
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
		if (members_set(&ag->mb, &ag->ld, &pp->set))
			log_err("mesh membership not updated: out of memory");
		members_reconcile(&ag->mb, &ag->ld);
	}
	ag->n_services = pp->plan.n_svcs;
	/* parse + plan + apply: at the start, loading the programs falls between */
	ag->last_reload_ns = (pp->t_plan - pp->t0) + (dp_now_ns() - t_commit);
	log_info("policy generation %llu applied: %zu service ports, %zu warnings, "
		 "%u map writes, %u deletes, %zu of %zu documents parsed, "
		 "%.2f ms (parse %.2f ms, plan %.2f ms, apply %.2f ms)",
		 (unsigned long long)ag->ap.generation, pp->plan.n_svcs, pp->set.n_warnings,
		 ag->ap.last_writes, ag->ap.last_deletes, pp->docs_parsed,
		 pp->docs_parsed + pp->docs_reused, ag->last_reload_ns / 1e6,
		 (pp->t_load - pp->t0) / 1e6, (pp->t_plan - pp->t_load) / 1e6,
		 ag->ap.last_apply_ns / 1e6);
out:
	agent_prepared_free(pp);
	return ret;
}

int agent_reload(struct agent *ag, const struct agent_file *files, size_t n_files,
		 bool dry_run, json_t *diags, char *err, size_t errlen)
{
	struct agent_prepared pp;
	int ret;

	ret = agent_prepare(ag, files, n_files, dry_run, diags, &pp, err, errlen);
	if (ret)
		return ret;
	if (dry_run) {
		agent_prepared_free(&pp);
		return 0;
	}
	return agent_commit(ag, &pp, files, n_files, err, errlen);
}
