// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "agent/agent.h"
#include "common/grow.h"
#include "common/log.h"
#include "common/str.h"
#include "policy/policy.h"

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
	char **paths = NULL, path[PATH_MAX];
	size_t n = 0, cap = 0;
	int ret = 0;

	if (!d)
		return policy_load_path(set, dir);
	/* the files on disk that are not replaced, as paths */
	while ((de = readdir(d))) {
		size_t j;

		if (!reload_is_yaml(de->d_name))
			continue;
		for (j = 0; j < n_files && strcmp(files[j].name, de->d_name); j++)
			;
		if (j < n_files)
			continue;	/* replaced: loaded below */
		if (n == cap) {
			char **nn;

			cap = cap ? cap * 2 : 32;
			nn = realloc(paths, cap * sizeof(*paths));
			if (!nn) {
				ret = -ENOMEM;
				goto out;
			}
			paths = nn;
		}
		if (asprintf(&paths[n], "%s/%s", dir, de->d_name) < 0) {
			ret = -ENOMEM;
			goto out;
		}
		n++;
	}
	qsort(paths, n, sizeof(*paths), reload_name_cmp);
	/* a directory of many files parses in parallel as one big file would */
	if (set->cache && n > 1 && policy_cache_prefetch(set->cache, paths, n)) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (policy_load_path(set, paths[i]) && !ret)
			ret = -EINVAL;
	for (size_t j = 0; j < n_files; j++) {
		if (files[j].remove)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, files[j].name);
		if (policy_load_buffer(set, path, files[j].content, files[j].len) && !ret)
			ret = -EINVAL;
	}
out:
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
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
	if (f->remove)
		return unlink(dst) && errno != ENOENT ? -errno : 0;
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

/* Write the files given in memory into the policy directory. */
static int reload_write_files(struct agent *ag, const struct agent_file *files, size_t n_files,
			      char *err, size_t errlen)
{
	int ret = 0;

	for (size_t i = 0; i < n_files; i++) {
		int wret = reload_write_file(ag->policy_path, &files[i]);

		if (wret) {
			snprintf(err, errlen, "applied, but writing %s/%s failed: %s (the next "
				 "reload from disk will not include it)", ag->policy_path,
				 files[i].name, strerror(-wret));
			ret = wret;
		}
	}
	return ret;
}

/*
 * "file:line:col: level: msg"; an object from the API server is its own
 * one-line JSON document named "Kind ns/name": "Kind ns/name: level: msg"
 * (the message carries the field path).
 */
static const char *reload_diag_format(const struct agent *ag, const struct pol_diag *d,
				      char *buf, size_t len)
{
	struct pol_diag k;

	if (!ag->kube)
		return policy_diag_format(d, buf, len);
	k = *d;
	k.loc.line = 0;
	return policy_diag_format(&k, buf, len);
}

/* The set's diagnostics as "file:line:col: level: msg" strings into diags (may be NULL). */
static void reload_diags_json(const struct agent *ag, const struct pol_set *set, json_t *diags)
{
	char line[PATH_MAX + 400];

	for (size_t i = 0; diags && i < set->n_diags; i++) {
		reload_diag_format(ag, &set->diags[i], line, sizeof(line));
		json_array_append_new(diags, json_string(line));
	}
}

void agent_cur_drop(struct agent *ag)
{
	if (!ag->cur)
		return;
	agent_prepared_free(ag->cur);
	free(ag->cur);
	ag->cur = NULL;
}

void agent_prepared_free(struct agent_prepared *pp)
{
	compile_out_free(&pp->out);
	policy_set_free(&pp->set);
	/* the set is gone: documents no load used since begin can go */
	if (pp->cache)
		policy_cache_end(pp->cache);
	memset(pp, 0, sizeof(*pp));
}

/* What the compiler needs to know of this agent. */
static void reload_compile_opts(const struct agent *ag, struct compile_opts *co)
{
	memset(co, 0, sizeof(*co));
	co->limits = &ag->limits;
	/* the node's own pods: the only peers worth a sockhash slot */
	co->node = ag->mb.enabled ? ag->mb.node : NULL;
	co->l7_proxy = ag->l7_enabled;
}

int agent_prepare(struct agent *ag, const struct agent_file *files, size_t n_files,
		  bool dry_run, json_t *diags, struct agent_prepared *pp,
		  char *err, size_t errlen)
{
	bool quiet = dry_run;
	char line[PATH_MAX + 400];
	int ret;

	memset(pp, 0, sizeof(*pp));
	pp->t0 = dp_now_ns();
	err[0] = '\0';
	if (n_files && ag->kube) {
		snprintf(err, errlen, "apply: this agent takes its objects from the Kubernetes API "
			 "(%s); change them there", "--kubeconfig / --in-cluster");
		return -ENOTDIR;
	}
	if (n_files && !ag->policy_is_dir) {
		snprintf(err, errlen, "apply needs --policy to be a directory (it is the file %s)",
			 ag->policy_path);
		return -ENOTDIR;
	}
	policy_set_init(&pp->set);
	/*
	 * A dry run parses without the cache: it must not drop the documents
	 * the applied set borrows. A real load frees that set first.
	 */
	if (ag->pcache && !dry_run) {
		agent_cur_drop(ag);
		pp->cache = ag->pcache;
		policy_cache_begin(pp->cache);
		policy_set_use_cache(&pp->set, pp->cache);
	}
	if (ag->kube)
		ret = agent_kube_load(ag, &pp->set);
	else if (ag->policy_is_dir)
		ret = reload_load_dir(&pp->set, ag->policy_path, files, n_files);
	else
		ret = policy_load_path(&pp->set, ag->policy_path);
	if (!pp->set.n_errors)
		ret = policy_validate(&pp->set);
	pp->t_load = dp_now_ns();
	if (pp->cache)
		policy_cache_stats(pp->cache, &pp->docs_parsed, &pp->docs_reused);
	if (!pp->set.n_errors && !ret) {
		struct compile_opts co;

		reload_compile_opts(ag, &co);
		ret = compile_policy(&pp->set, &co, &pp->out);
	}
	pp->t_plan = dp_now_ns();
	if (!ret && !ag->l7_enabled && !quiet) {
		const struct plan *plan = &pp->out.plan;

		/* no listener: the kernel keeps these ports at L4 */
		for (size_t i = 0; i < plan->n_svcs; i++)
			if (plan->svcs[i].l7_why)
				log_warn("%s/%s:%u would be L7 (%s) but the L7 proxy is off "
					 "(--l7-listen): kept at L4", plan->svcs[i].ns,
					 plan->svcs[i].name, ntohs(plan->svcs[i].key.port),
					 plan->svcs[i].l7_why);
	}

	reload_diags_json(ag, &pp->set, diags);
	for (size_t i = 0; i < pp->set.n_diags; i++) {
		reload_diag_format(ag, &pp->set.diags[i], line, sizeof(line));
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
	if (pp->out.l7 && ag->proxy) {
		pp->out.l7->generation = ag->ap.generation + 1;
		proxy_set_config(ag->proxy, l7_config_get(pp->out.l7));
	}
	ret = apply_plan(&ag->ap, &pp->out.plan, err, errlen);
	if (ret)
		goto out;
	if (pp->out.l7) {
		if (ag->l7)
			l7_config_put(ag->l7);
		ag->l7 = pp->out.l7;
		pp->out.l7 = NULL;
	}
	ret = reload_write_files(ag, files, n_files, err, errlen);
	/* Membership changes apply with the policy that carries them. */
	if (ag->mb.enabled) {
		if (members_set(&ag->mb, &ag->ld, &pp->set))
			log_err("mesh membership not updated: out of memory");
		members_reconcile(&ag->mb, &ag->ld);
	}
	ag->n_services = pp->out.plan.n_svcs;
	/* parse + plan + apply: at the start, loading the programs falls between */
	ag->last_reload_ns = (pp->t_plan - pp->t0) + (dp_now_ns() - t_commit);
	log_info("policy generation %llu applied: %zu service ports, %zu warnings, "
		 "%u map writes, %u deletes, %zu of %zu documents parsed, "
		 "%.2f ms (parse %.2f ms, plan %.2f ms, apply %.2f ms)",
		 (unsigned long long)ag->ap.generation, pp->out.plan.n_svcs, pp->set.n_warnings,
		 ag->ap.last_writes, ag->ap.last_deletes, pp->docs_parsed,
		 pp->docs_parsed + pp->docs_reused, ag->last_reload_ns / 1e6,
		 (pp->t_load - pp->t0) / 1e6, (pp->t_plan - pp->t_load) / 1e6,
		 ag->ap.last_apply_ns / 1e6);
	/* keep what was applied: a later change of EndpointSlices patches it */
	if (pp->cache && (ag->cur = malloc(sizeof(*ag->cur)))) {
		policy_cache_end(pp->cache);
		*ag->cur = *pp;
		ag->cur->cache = NULL;	/* ended */
		ag->cur->out.l7 = NULL;	/* ag->l7 */
		ag->n_docs = pp->docs_parsed + pp->docs_reused;
		memset(pp, 0, sizeof(*pp));
		/*
		 * The table a Pod delta looks its services up in (~5 ms at 100k
		 * endpoints), now that the maps are written rather than at the
		 * first Pod event; without memory, that event builds it.
		 */
		policy_index_endpoints(&ag->cur->set);
	}
out:
	agent_prepared_free(pp);
	return ret;
}

/* ---- deltas: a change of EndpointSlices only ---- */

/* The path a policy file was loaded under; NULL: not a file of the policy. */
static const char *reload_delta_path(const struct agent *ag, const char *name, char *buf,
				     size_t len)
{
	const char *base = strrchr(ag->policy_path, '/');

	if (ag->kube)
		return name;	/* an object's identity */
	if (!ag->policy_is_dir)
		return !strcmp(name, base ? base + 1 : ag->policy_path) ? ag->policy_path : NULL;
	if (!reload_is_yaml(name))
		return NULL;
	snprintf(buf, len, "%s/%s", ag->policy_path, name);
	return buf;
}

/*
 * A changed object: from (in the applied set) is replaced by to; from
 * NULL: a new object, to NULL: a deleted one. replace: from goes and to
 * comes (another place in the set; an in-place swap keeps the position).
 */
enum reload_kind {
	RELOAD_EPS, RELOAD_POD, RELOAD_VS, RELOAD_DR, RELOAD_SVC, RELOAD_NS, RELOAD_GW, RELOAD_N
};

struct reload_swap {
	enum reload_kind kind;
	const void *from, *to;
	const struct pol_set *gone;	/* from's document */
	bool replace;
};

static const char *const reload_kinds[] = {
	[RELOAD_EPS] = "EndpointSlice", [RELOAD_POD] = "Pod",
	[RELOAD_VS] = "VirtualService", [RELOAD_DR] = "DestinationRule",
	[RELOAD_SVC] = "Service", [RELOAD_NS] = "Namespace", [RELOAD_GW] = "Gateway",
};

/* The one object of a document's set (every kind starts with its pol_meta). */
static const void *reload_doc_obj(const struct pol_set *doc, enum reload_kind k)
{
	switch (k) {
	case RELOAD_POD: return &doc->pods[0];
	case RELOAD_VS: return &doc->vss[0];
	case RELOAD_DR: return &doc->drs[0];
	case RELOAD_SVC: return &doc->svcs[0];
	case RELOAD_NS: return &doc->nss[0];
	case RELOAD_GW: return &doc->gws[0];
	default: return &doc->eps[0];
	}
}

static int reload_doc_kind(const struct pol_set *doc)
{
	const char *kind = policy_set_single_kind(doc);

	for (size_t k = 0; kind && k < RELOAD_N; k++)
		if (!strcmp(kind, reload_kinds[k]))
			return (int)k;
	return -1;
}

/* (a Namespace has no namespace) */
static bool reload_same_name(const struct pol_meta *a, const struct pol_meta *b)
{
	return sm_streq(a->ns, b->ns) && !strcmp(a->name, b->name);
}

/* The applied set's object of this kind and identity, or NULL. */
static const struct pol_meta *reload_set_find(const struct pol_set *set, enum reload_kind kind,
					      const struct pol_meta *m)
{
	const void *arr;
	size_t n, stride;

	switch (kind) {
	case RELOAD_SVC:
		return (const struct pol_meta *)policy_index_service(set, m->ns, strlen(m->ns),
								     m->name, strlen(m->name));
	case RELOAD_VS: arr = set->vss; n = set->n_vss; stride = sizeof(*set->vss); break;
	case RELOAD_DR: arr = set->drs; n = set->n_drs; stride = sizeof(*set->drs); break;
	case RELOAD_POD: arr = set->pods; n = set->n_pods; stride = sizeof(*set->pods); break;
	case RELOAD_NS: arr = set->nss; n = set->n_nss; stride = sizeof(*set->nss); break;
	case RELOAD_GW: arr = set->gws; n = set->n_gws; stride = sizeof(*set->gws); break;
	default: arr = set->eps; n = set->n_eps; stride = sizeof(*set->eps); break;
	}
	for (size_t i = 0; i < n; i++) {
		const struct pol_meta *o = (const void *)((const char *)arr + i * stride);

		if (reload_same_name(o, m))
			return o;
	}
	return NULL;
}

/*
 * Is the identity of new object d->added[i] (kind) taken, by an object of
 * the set or by another new one (two files defining one object: the full
 * load says so)?
 */
static bool reload_taken(const struct pol_set *set, const struct pol_delta *d, size_t i,
			 enum reload_kind kind)
{
	const struct pol_meta *m = reload_doc_obj(d->added[i], kind);

	if (reload_set_find(set, kind, m))
		return true;
	for (size_t k = 0; k < d->n_added; k++)
		if (k != i && reload_doc_kind(d->added[k]) == (int)kind &&
		    reload_same_name(reload_doc_obj(d->added[k], kind), m))
			return true;
	return false;
}

struct reload_delta {
	struct pol_delta d;
	struct reload_swap *sw;
	size_t n_sw, n_swapped;
	const char **ns, **svc;		/* services the changed objects feed */
	size_t n_svcs, cap_svcs;
	struct plan_patch pt;
	struct l7_config *l7;
	struct pol_diag *diags;		/* the applied set's, for the undo */
	size_t n_diags, n_warnings, n_errors;
	size_t n_kind[RELOAD_N];	/* swaps by enum reload_kind */
	char why[400];			/* not a delta: why */
	bool kube;			/* objects from the API server, by identity */
	bool l7_svc;			/* a changed Service the L7 pass reads */
	bool l7_pods;			/* the L7 config's pod table changes */
	uint32_t *pod_addrs;		/* addresses of sm_pod entries to redo */
	size_t n_pod_addrs;
	struct plan_pod *plan_pods;	/* the plan's pods before (undo) */
	size_t n_plan_pods;
	bool pods_patched;		/* (cur->out.plan.pods is new) */
	size_t n_here;			/* Pod swaps of this node's pods */
	char bad[400];			/* ... the changed object that fails, if one does */
	const char *bad_msg;		/* (in why) */
};

static void reload_why(struct reload_delta *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void reload_why(struct reload_delta *r, const char *fmt, ...)
{
	va_list ap;

	if (r->why[0])
		return;
	va_start(ap, fmt);
	vsnprintf(r->why, sizeof(r->why), fmt, ap);
	va_end(ap);
}

static bool reload_vs_same_hosts(const struct pol_vs *a, const struct pol_vs *b)
{
	if (a->n_hosts != b->n_hosts)
		return false;
	for (size_t h = 0; h < a->n_hosts; h++)
		if (!sm_streq(a->hosts[h], b->hosts[h]))
			return false;
	return true;
}

/*
 * A changed document with errors of its own (parse time: a bad field, a
 * wrong type) is not a delta. From the API server, the object is
 * rejected alone (r->bad, r->bad_msg: its first error, as the full load
 * names it); from files, the full reload reports every error with its
 * place and keeps the running config. true: such a document.
 */
static bool reload_delta_doc_errors(struct reload_delta *r)
{
	for (size_t i = 0; i < r->d.n_added; i++) {
		const struct pol_set *doc = r->d.added[i];
		const struct pol_diag *e = NULL;

		for (size_t k = 0; k < doc->n_diags && !e; k++)
			if (doc->diags[k].level == POL_DIAG_ERROR)
				e = &doc->diags[k];
		if (!e)
			continue;
		if (r->kube && e->loc.file) {
			/* (an object's document: its file is its identity) */
			reload_why(r, "%s", e->msg);
			snprintf(r->bad, sizeof(r->bad), "%s", e->loc.file);
			r->bad_msg = r->why;
		} else {
			reload_why(r, "%s:%u: a changed document has errors", e->loc.file ?: "?",
				   e->loc.line);
		}
		return true;
	}
	return false;
}

/*
 * Pair each new document of r->d with the gone one it replaces (same
 * kind, namespace and name): one EndpointSlice, Service, VirtualService,
 * DestinationRule or Pod. Those without a partner are new or deleted
 * objects of these kinds. Fills r->sw, r->n_sw; 1: not such a change
 * (r->why).
 */
static int reload_delta_pairs(const struct pol_set *set, struct reload_delta *r)
{
	const struct pol_delta *d = &r->d;
	bool *paired = calloc(d->n_gone + 1, sizeof(*paired));
	size_t n = 0;

	if (!paired)
		return -ENOMEM;
	if (reload_delta_doc_errors(r))
		goto no;
	for (size_t i = 0; i < d->n_added; i++) {
		int kind = reload_doc_kind(d->added[i]);
		const struct pol_meta *a, *g = NULL;
		size_t k;

		if (kind < 0) {
			reload_why(r, "a changed document: not one object of a kind a delta takes");
			goto no;
		}
		a = reload_doc_obj(d->added[i], kind);
		for (k = 0; k < d->n_gone; k++) {
			if (reload_doc_kind(d->gone[k]) != kind)
				continue;
			g = reload_doc_obj(d->gone[k], kind);
			if (reload_same_name(g, a))
				break;
		}
		if (k == d->n_gone) {
			/* (objects from the API server are unique by identity: no scan) */
			if (!r->kube && reload_taken(set, d, i, kind)) {
				reload_why(r, "%s %s/%s is defined twice", reload_kinds[kind],
					   a->ns ?: "", a->name);
				goto no;
			}
			/* (a slice before its Service: it feeds nothing yet, with a warning) */
			r->sw[n++] = (struct reload_swap){ .kind = kind, .to = a };
			continue;
		}
		if (paired[k]) {
			reload_why(r, "%s %s/%s is defined twice", reload_kinds[kind], a->ns ?: "",
				   a->name);
			goto no;
		}
		paired[k] = true;
		r->sw[n] = (struct reload_swap){ .kind = kind, .from = g, .to = a, .gone = d->gone[k] };
		switch (kind) {
		case RELOAD_POD:
			/* relabelled, another IP, ...: it goes and comes again */
			r->sw[n].replace = !policy_pod_same_but_ready((const void *)g,
								      (const void *)a);
			break;
		case RELOAD_EPS:
			r->sw[n].replace = !sm_streq(((const struct pol_eps *)a)->service_name,
						     ((const struct pol_eps *)g)->service_name);
			break;
		case RELOAD_SVC:
		case RELOAD_NS:
		case RELOAD_GW:		/* (feeds the L7 config's gateways alone) */
			r->sw[n].replace = true;
			break;
		case RELOAD_VS:
			/* other hosts: it goes, and comes where a load puts it */
			r->sw[n].replace = !reload_vs_same_hosts((const void *)g, (const void *)a);
			break;
		case RELOAD_DR:
			r->sw[n].replace = !sm_streq(((const struct pol_dr *)a)->host,
						     ((const struct pol_dr *)g)->host);
			break;
		default:
			break;
		}
		n++;
	}
	/* deleted objects */
	for (size_t k = 0; k < d->n_gone; k++) {
		int kind = reload_doc_kind(d->gone[k]);

		if (paired[k])
			continue;
		if (kind < 0) {
			reload_why(r, "a document of several objects is deleted");
			goto no;
		}
		r->sw[n++] = (struct reload_swap){ .kind = kind, .gone = d->gone[k],
						   .from = reload_doc_obj(d->gone[k], kind) };
	}
	free(paired);
	r->n_sw = n;
	return 0;
no:
	free(paired);
	return 1;
}

static int reload_add(struct pol_set *set, enum reload_kind kind, const void *obj)
{
	switch (kind) {
	case RELOAD_SVC: return policy_set_add_svc(set, obj);
	case RELOAD_VS: return policy_set_add_vs(set, obj);
	case RELOAD_DR: return policy_set_add_dr(set, obj);
	case RELOAD_EPS: return policy_set_add_eps(set, obj);
	case RELOAD_POD: return policy_set_add_pod(set, obj);
	case RELOAD_NS: return policy_set_add_ns(set, obj);
	case RELOAD_GW: return policy_set_add_gw(set, obj);
	default: return -EINVAL;
	}
}

static int reload_del(struct pol_set *set, enum reload_kind kind, const void *obj)
{
	switch (kind) {
	case RELOAD_SVC: return policy_set_del_svc(set, obj);
	case RELOAD_VS: return policy_set_del_vs(set, obj);
	case RELOAD_DR: return policy_set_del_dr(set, obj);
	case RELOAD_EPS: return policy_set_del_eps(set, obj);
	case RELOAD_POD: return policy_set_del_pod(set, obj);
	case RELOAD_NS: return policy_set_del_ns(set, obj);
	case RELOAD_GW: return policy_set_del_gw(set, obj);
	default: return -EINVAL;
	}
}

static int reload_swap(struct pol_set *set, const struct reload_swap *sw, bool undo)
{
	const void *from = undo ? sw->to : sw->from, *to = undo ? sw->from : sw->to;
	int ret;

	if (!from)
		return reload_add(set, sw->kind, to);
	if (!to)
		return reload_del(set, sw->kind, from);
	if (sw->replace) {
		if ((ret = reload_del(set, sw->kind, from)))
			return ret;
		if ((ret = reload_add(set, sw->kind, to)))
			reload_add(set, sw->kind, from);	/* back (room was there) */
		return ret;
	}
	switch (sw->kind) {
	case RELOAD_POD: return policy_set_swap_pod(set, from, to);
	case RELOAD_VS: return policy_set_swap_vs(set, from, to);
	case RELOAD_DR: return policy_set_swap_dr(set, from, to);
	default: return policy_set_swap_eps(set, from, to);
	}
}

/* Put the set and plan back as they were applied; drop the new documents. */
static void reload_delta_undo(struct agent *ag, struct reload_delta *r)
{
	struct pol_set *set = &ag->cur->set;

	plan_patch_undo(&ag->cur->out.plan, &r->pt);
	if (r->pods_patched) {
		free(ag->cur->out.plan.pods);
		ag->cur->out.plan.pods = r->plan_pods;
		ag->cur->out.plan.n_pods = r->n_plan_pods;
		r->plan_pods = NULL;
	}
	for (size_t i = r->n_swapped; i-- > 0;)
		reload_swap(set, &r->sw[i], true);
	if (r->diags) {
		/* what validation and the re-plan changed */
		free(set->diags);
		set->diags = r->diags;
		r->diags = NULL;
	}
	set->n_diags = r->n_diags;
	set->n_warnings = r->n_warnings;
	set->n_errors = r->n_errors;
	if (r->l7)
		l7_config_put(r->l7);
	policy_delta_free(ag->pcache, &r->d);
}

static void reload_delta_free(struct reload_delta *r)
{
	free(r->sw);
	free(r->ns);
	free(r->svc);
	free(r->diags);
	free(r->pod_addrs);
	free(r->plan_pods);
}

/* Read the changed files into r->d. 1: not a delta. */
static int reload_delta_load(struct agent *ag, const struct agent_file *files, size_t n_files,
			     char *const *names, size_t n_names, struct reload_delta *r)
{
	char path[PATH_MAX];

	for (size_t i = 0; i < n_files + n_names; i++) {
		const char *name = i < n_files ? files[i].name : names[i - n_files];
		const char *p = reload_delta_path(ag, name, path, sizeof(path));
		char *buf = NULL;
		size_t len = 0;
		int ret;

		if (!p)
			continue;	/* not a policy file: nothing to load */
		if (i < n_files) {
			buf = (char *)files[i].content;
			len = files[i].len;
		} else if ((ret = policy_read_file(p, &buf, &len)) == -ENOENT) {
			buf = NULL;	/* a deleted file: its documents go */
			len = 0;
		} else if (ret) {
			reload_why(r, "%s: %s", p, strerror(-ret));
			return ret == -ENOMEM ? ret : 1;
		}
		ret = policy_cache_delta(ag->pcache, p, buf ?: "", len, &r->d);
		if (ret == -ENOENT && len)	/* a new file: its documents come */
			ret = policy_cache_delta_new(ag->pcache, p, buf, len, &r->d);
		if (i >= n_files)
			free(buf);
		if (ret == -EEXIST)
			continue;
		if (ret) {
			reload_why(r, "%s: not in the last load", p);
			return ret == -ENOMEM ? ret : 1;	/* gone, new, unreadable */
		}
	}
	return 0;
}

static int reload_svc_add(struct reload_delta *r, const char *ns, const char *name)
{
	for (size_t k = 0; k < r->n_svcs; k++)
		if (!strcmp(r->ns[k], ns) && !strcmp(r->svc[k], name))
			return 0;
	if (r->n_svcs == r->cap_svcs) {
		size_t cap = r->cap_svcs ? r->cap_svcs * 2 : 16;
		const char **a = realloc(r->ns, cap * sizeof(*a)), **b;

		if (!a)
			return -ENOMEM;
		r->ns = a;
		if (!(b = realloc(r->svc, cap * sizeof(*b))))
			return -ENOMEM;
		r->svc = b;
		r->cap_svcs = cap;
	}
	r->ns[r->n_svcs] = ns;
	r->svc[r->n_svcs++] = name;
	return 0;
}

static int reload_svc_note(void *arg, const char *ns, const char *name)
{
	return reload_svc_add(arg, ns, name);
}

/*
 * The services a version of a changed object feeds (see below); ready: a
 * Pod whose readiness alone changed.
 */
static int reload_obj_services(const struct pol_set *set, struct reload_delta *r,
			       enum reload_kind kind, const void *obj, bool ready)
{
	const struct pol_service *svc;
	const struct pol_eps *e = obj;
	const struct pol_pod *p = obj;
	const struct pol_vs *vs = obj;
	const struct pol_dr *dr = obj;
	const struct pol_meta *m = obj;
	int ret = 0;

	if (!obj)
		return 0;
	switch (kind) {
	case RELOAD_SVC:
		return reload_svc_add(r, m->ns, m->name);
	case RELOAD_EPS:
		return e->service_name ? reload_svc_add(r, e->meta.ns, e->service_name) : 0;
	case RELOAD_VS:
		for (size_t h = 0; h < vs->n_hosts && !ret; h++)
			if ((svc = policy_find_service(set, vs->hosts[h], vs->meta.ns)))
				ret = reload_svc_add(r, svc->meta.ns, svc->meta.name);
		return ret;
	case RELOAD_DR:
		if ((svc = policy_find_service(set, dr->host, dr->meta.ns)))
			ret = reload_svc_add(r, svc->meta.ns, svc->meta.name);
		return ret;
	case RELOAD_POD:
		return policy_pod_services(set, p, !ready, reload_svc_note, r);
	default:
		return 0;
	}
}

/*
 * The services the changed objects feed, each once, for both versions: a
 * Service itself; a slice's service; a pod's (policy_pod_services), those
 * whose slices name it or carry its IP and those whose selector picks it
 * when they have no EndpointSlices; a VirtualService's, the services its
 * hosts name; a DestinationRule's, its host's (the services whose tcp
 * routes send to them are re-planned with them: plan_patch_services).
 * Called before the swap and after it (after: a new object's services).
 * A Pod's are found once, before: the slices and selectors they come from
 * are the same after, but for those of the change, which name their own.
 */
static int reload_delta_services(const struct pol_set *set, struct reload_delta *r, bool after)
{
	int ret = 0;

	for (size_t i = 0; i < r->n_sw && !ret; i++) {
		const struct reload_swap *sw = &r->sw[i];
		bool ready = sw->kind == RELOAD_POD && sw->from && sw->to && !sw->replace;

		if (after && sw->kind == RELOAD_POD)
			continue;

		ret = reload_obj_services(set, r, sw->kind, sw->from, ready);
		/* (a readiness change: both versions feed the same) */
		if (!ret && !ready)
			ret = reload_obj_services(set, r, sw->kind, sw->to, false);
	}
	return ret;
}

/*
 * Does the change touch what the L7 pass reads (compile_patch_routes)? It
 * reads DestinationRules, the http routes of VirtualServices and the
 * Services they or their ports make L7 (l7_config_reads_service); a
 * VirtualService without http routes, before and after, or a plain TCP
 * Service only change the plan (compile_patch_services: the L7 decisions
 * stay).
 */
static bool reload_delta_l7_inputs(const struct reload_delta *r)
{
	if (r->n_kind[RELOAD_DR] || r->n_kind[RELOAD_GW] || r->l7_svc || r->l7_pods)
		return true;
	for (size_t i = 0; i < r->n_sw; i++)
		if (r->sw[i].kind == RELOAD_VS && (compile_vs_l7_input(r->sw[i].from) ||
						   compile_vs_l7_input(r->sw[i].to)))
			return true;
	return false;
}

static bool reload_diag_eq(const struct pol_diag *a, const struct pol_diag *b)
{
	return a->level == b->level && a->loc.line == b->loc.line && a->loc.col == b->loc.col &&
	       sm_streq(a->loc.file, b->loc.file) && !strcmp(a->msg, b->msg);
}

static void reload_diag_count(struct pol_set *set, const struct pol_diag *g, int sign)
{
	if (g->level == POL_DIAG_ERROR)
		set->n_errors += (size_t)sign;
	else if (g->level == POL_DIAG_WARNING)
		set->n_warnings += (size_t)sign;
}

/*
 * The cross-object checks the change can change the outcome of
 * (policy_validate_change), run on the set as it is, into *out (the set's
 * own diagnostics stay as they are).
 */
static int reload_checks(struct pol_set *set, const struct reload_delta *r, bool routes,
			 struct pol_diag **out, size_t *n_out)
{
	struct pol_set keep = *set;
	int ret;

	set->diags = NULL;
	set->n_diags = set->n_errors = set->n_warnings = 0;
	ret = policy_validate_change(set, r->ns, r->svc, r->n_svcs, routes);
	*out = set->diags;
	*n_out = set->n_diags;
	set->diags = keep.diags;
	set->n_diags = keep.n_diags;
	set->n_errors = keep.n_errors;
	set->n_warnings = keep.n_warnings;
	return ret == -EINVAL ? 0 : ret;
}

/*
 * What the planning said about the objects that went (inside their
 * documents) goes with them: their documents are freed once the delta is
 * taken, and the re-plan says it again of what is still true.
 */
static void reload_diags_drop_gone(struct pol_set *set, const struct reload_delta *r)
{
	for (size_t i = 0; i < r->n_sw; i++)
		if (r->sw[i].from && r->sw[i].gone)
			policy_set_drop_doc_diags(set, r->sw[i].gone,
						  ((const struct pol_meta *)r->sw[i].from)->loc.file);
}

/*
 * Replace what the checks said before the change (before[]) by what they
 * say after it (after[]), and drop what the planning said about the
 * objects that went (inside their documents): the diagnostics of the
 * changed objects are replaced, those of the others stay. An error after
 * the change is not a delta (the full load rejects the object: r->why).
 */
static int reload_diags_replace(struct pol_set *set, struct reload_delta *r,
				const struct pol_diag *before, size_t n_before,
				const struct pol_diag *after, size_t n_after)
{
	struct pol_diag *nd;

	for (size_t i = 0; i < n_after; i++)
		if (after[i].level == POL_DIAG_ERROR) {
			reload_why(r, "%s", after[i].msg);
			/* where it is: an object's identity, from the API server */
			snprintf(r->bad, sizeof(r->bad), "%s", after[i].loc.file ?: "");
			r->bad_msg = r->why;
			return 1;
		}
	for (size_t i = 0; i < n_before; i++)
		for (size_t k = 0; k < set->n_diags; k++)
			if (reload_diag_eq(&set->diags[k], &before[i])) {
				reload_diag_count(set, &set->diags[k], -1);
				memmove(&set->diags[k], &set->diags[k + 1],
					(set->n_diags - k - 1) * sizeof(*set->diags));
				set->n_diags--;
				break;
			}
	reload_diags_drop_gone(set, r);
	if (!n_after)
		return 0;
	nd = realloc(set->diags, (set->n_diags + n_after) * sizeof(*nd));
	if (!nd)
		return -ENOMEM;
	set->diags = nd;
	for (size_t i = 0; i < n_after; i++) {
		set->diags[set->n_diags++] = after[i];
		reload_diag_count(set, &after[i], 1);
	}
	return 0;
}

/* Log the diagnostics of the set the applied one did not have. */
static void reload_diags_news(const struct agent *ag, const struct pol_set *set,
			      const struct reload_delta *r)
{
	char line[PATH_MAX + 400];

	for (size_t i = 0; i < set->n_diags; i++) {
		size_t k;

		for (k = 0; k < r->n_diags && !reload_diag_eq(&r->diags[k], &set->diags[i]); k++)
			;
		if (k < r->n_diags)
			continue;
		reload_diag_format(ag, &set->diags[i], line, sizeof(line));
		log_msg(set->diags[i].level == POL_DIAG_ERROR ? LOG_ERROR :
			set->diags[i].level == POL_DIAG_WARNING ? LOG_WARN : LOG_DEBUG, "%s", line);
	}
}

/* Is a version of a Pod one of this node's (mesh membership)? */
static bool reload_pod_here(const struct agent *ag, const struct pol_pod *p)
{
	return p && ag->mb.enabled &&
	       (!ag->mb.node[0] || (p->node_name && !strcmp(p->node_name, ag->mb.node)));
}

/* Has a version of a Pod an entry in the L7 config's pod table? */
static bool reload_pod_l7(const struct pol_pod *p)
{
	return p && p->ip && !p->host_network;
}

/* An address whose sm_pod entry a delta redoes (once each). */
static int reload_pod_addr(struct reload_delta *r, const struct pol_pod *p, const char *node)
{
	uint32_t *a;

	if (!p || !plan_pod_flags(p, node))
		return 0;
	for (size_t k = 0; k < r->n_pod_addrs; k++)
		if (r->pod_addrs[k] == p->ip)
			return 0;
	if (!(a = realloc(r->pod_addrs, (r->n_pod_addrs + 1) * sizeof(*a))))
		return -ENOMEM;
	r->pod_addrs = a;
	a[r->n_pod_addrs++] = p->ip;
	return 0;
}

/*
 * What a Pod that comes, goes or changes more than its readiness feeds
 * besides the services (policy_pod_services): the L7 config's pod table
 * (source workloads and telemetry by IP: r->l7_pods); sm_pod's entries of
 * its addresses when a version opts out of the redirect or runs on this
 * node (r->pod_addrs: plan_pods_patch, apply_pods); the mesh membership of
 * this node's pods (r->n_here: members_pod_change).
 */
static int reload_delta_pods(const struct agent *ag, struct reload_delta *r)
{
	const char *node = ag->mb.enabled ? ag->mb.node : NULL;
	int ret;

	for (size_t i = 0; i < r->n_sw; i++) {
		const struct reload_swap *sw = &r->sw[i];
		const struct pol_pod *f = sw->from, *t = sw->to;

		if (sw->kind != RELOAD_POD || (f && t && !sw->replace))
			continue;	/* (readiness: only the services it feeds) */
		if ((ret = reload_pod_addr(r, f, node)) || (ret = reload_pod_addr(r, t, node)))
			return ret;
		r->n_here += reload_pod_here(ag, f) || reload_pod_here(ag, t);
		r->l7_pods |= reload_pod_l7(f) || reload_pod_l7(t);
	}
	return 0;
}

/*
 * The plan's sm_pod entries of the addresses the change redoes (before:
 * r->plan_pods, for the undo). 0 or -ENOMEM.
 */
static int reload_patch_pods(struct agent *ag, struct reload_delta *r)
{
	struct plan *plan = &ag->cur->out.plan;
	const char *node = ag->mb.enabled ? ag->mb.node : NULL;
	struct plan_pod *copy;
	int ret = 0;

	if (!r->n_pod_addrs)
		return 0;
	copy = malloc((plan->n_pods + 1) * sizeof(*copy));
	if (!copy)
		return -ENOMEM;
	if (plan->n_pods)
		memcpy(copy, plan->pods, plan->n_pods * sizeof(*copy));
	/* the plan's own array stays as it was, for the undo */
	r->plan_pods = plan->pods;
	r->n_plan_pods = plan->n_pods;
	plan->pods = copy;
	r->pods_patched = true;
	for (size_t k = 0; k < r->n_pod_addrs && !ret; k++)
		ret = plan_pods_patch(&ag->cur->set, plan, node, r->pod_addrs[k]);
	return ret;
}

/* This node's pods that changed join, leave or change in the mesh membership. */
static void reload_members_pods(struct agent *ag, const struct reload_delta *r)
{
	for (size_t i = 0; r->n_here && i < r->n_sw; i++) {
		const struct reload_swap *sw = &r->sw[i];

		if (sw->kind != RELOAD_POD || (sw->from && sw->to && !sw->replace) ||
		    (!reload_pod_here(ag, sw->from) && !reload_pod_here(ag, sw->to)))
			continue;
		if (!members_pod_change(&ag->mb, &ag->ld, &ag->cur->set, sw->from, sw->to))
			continue;
		/* no memory for the one pod: the whole pass, as a full load runs it */
		if (members_set(&ag->mb, &ag->ld, &ag->cur->set))
			log_err("mesh membership not updated: out of memory");
		members_reconcile(&ag->mb, &ag->ld);
		return;
	}
}

/*
 * Swap the changed objects into the applied set and check what they can
 * change against it. 0: done; 1: not a delta (r->why).
 */
static int reload_delta_swap(struct agent *ag, struct reload_delta *r)
{
	struct pol_set *set = &ag->cur->set;
	struct pol_diag *before = NULL, *after = NULL;
	size_t n_before = 0, n_after = 0;
	bool checks, routes;
	int ret;

	if ((ret = reload_delta_pairs(set, r)) || (ret = reload_delta_pods(ag, r)))
		return ret;
	for (size_t i = 0; i < r->n_sw; i++)
		r->n_kind[r->sw[i].kind]++;
	/* the services fed, before the change (a deleted object's) ... */
	if ((ret = reload_delta_services(set, r, false)))
		return ret;
	/*
	 * Services and routes: their cross-object checks; a slice that comes
	 * or goes: whether its Service is there; endpoints and readiness: none
	 */
	routes = r->n_kind[RELOAD_SVC] || r->n_kind[RELOAD_VS] || r->n_kind[RELOAD_DR];
	checks = routes;
	for (size_t i = 0; i < r->n_sw; i++)
		checks |= r->sw[i].kind == RELOAD_EPS && (!r->sw[i].from || !r->sw[i].to ||
							  r->sw[i].replace);
	r->diags = malloc((set->n_diags + 1) * sizeof(*r->diags));
	if (!r->diags)
		return -ENOMEM;
	if (set->n_diags)
		memcpy(r->diags, set->diags, set->n_diags * sizeof(*r->diags));
	for (size_t i = 0; i < r->n_sw; i++)
		if (r->sw[i].kind == RELOAD_SVC && r->sw[i].from)
			r->l7_svc |= l7_config_reads_service(set, r->sw[i].from);
	if (checks && (ret = reload_checks(set, r, routes, &before, &n_before)))
		goto out;
	for (; r->n_swapped < r->n_sw; r->n_swapped++)
		if ((ret = reload_swap(set, &r->sw[r->n_swapped], false))) {
			reload_why(r, "%s: %s", reload_kinds[r->sw[r->n_swapped].kind],
				   strerror(-ret));
			ret = ret == -ENOMEM ? ret : 1;
			goto out;	/* not done: not undone either */
		}
	/* ... and after it (a new object's) */
	if ((ret = reload_delta_services(set, r, true)))
		goto out;
	for (size_t i = 0; i < r->n_sw; i++)
		if (r->sw[i].kind == RELOAD_SVC && r->sw[i].to)
			r->l7_svc |= l7_config_reads_service(set, r->sw[i].to);
	if (checks && !(ret = reload_checks(set, r, routes, &after, &n_after)))
		ret = reload_diags_replace(set, r, before, n_before, after, n_after);
	else if (!checks)
		reload_diags_drop_gone(set, r);
	/* the new documents' own (parse time) diagnostics, as a full load gathers them */
	for (size_t i = 0; !ret && i < r->d.n_added; i++)
		ret = policy_set_add_doc_diags(set, r->d.added[i]);
out:
	free(before);
	free(after);
	return ret;
}

/* Is name one of the changed files (objects)? */
static bool reload_changed(const struct agent_file *files, size_t n_files, char *const *names,
			   size_t n_names, const char *name)
{
	for (size_t i = 0; i < n_files; i++)
		if (!strcmp(files[i].name, name))
			return true;
	for (size_t i = 0; i < n_names; i++)
		if (!strcmp(names[i], name))
			return true;
	return false;
}

/*
 * Returns 0 (applied), 1 (not a delta, or not done: reload everything) or
 * 2 (see agent_reload_delta).
 * Everything up to the apply can be undone; a failed apply forgets what
 * the maps hold, and the full reload that follows rewrites them.
 */
static int agent_delta(struct agent *ag, const struct agent_file *files, size_t n_files,
		       char *const *names, size_t n_names, json_t *diags, char *err, size_t errlen)
{
	struct agent_prepared *cur = ag->cur;
	struct reload_delta r = {};
	uint32_t *pod_ips = NULL;
	uint64_t t0 = dp_now_ns(), t_load, t_plan;
	char ns_note[64] = "";
	int ret;

	if (!cur || !ag->pcache || cur->set.n_errors)
		return 1;
	r.n_diags = cur->set.n_diags;
	r.n_warnings = cur->set.n_warnings;
	r.n_errors = cur->set.n_errors;
	r.kube = ag->kube != NULL;
	ret = reload_delta_load(ag, files, n_files, names, n_names, &r);
	if (ret)
		goto undo;
	if (!r.d.n_gone && !r.d.n_added) {
		log_info("policy unchanged (%zu documents compared)", r.d.n_docs);
		policy_delta_free(ag->pcache, &r.d);
		reload_diags_json(ag, &cur->set, diags);	/* still true */
		return 0;
	}
	r.sw = calloc(r.d.n_added + r.d.n_gone + 1, sizeof(*r.sw));
	if (!r.sw) {
		ret = -ENOMEM;
		goto undo;
	}
	ret = reload_delta_swap(ag, &r);
	t_load = dp_now_ns();
	if (!ret && !(pod_ips = calloc(2 * r.n_sw + 1, sizeof(*pod_ips))))
		ret = -ENOMEM;
	if (!ret) {
		struct compile_opts co;

		reload_compile_opts(ag, &co);
		/* the L7 pod table changes at these IPs only (both versions of each Pod) */
		for (size_t i = 0; i < r.n_sw; i++) {
			const struct pol_pod *f = r.sw[i].from, *t = r.sw[i].to;

			if (r.sw[i].kind != RELOAD_POD)
				continue;
			if (f && f->ip)
				pod_ips[co.n_pod_ips++] = f->ip;
			if (t && t->ip)
				pod_ips[co.n_pod_ips++] = t->ip;
		}
		co.pods_known = true;
		co.pod_ips = pod_ips;
		cur->out.l7 = ag->l7;	/* borrowed: the config the proxy runs */
		if (reload_delta_l7_inputs(&r))
			ret = compile_patch_routes(&cur->set, &co, &cur->out, r.ns, r.svc, r.n_svcs,
						   &r.pt, &r.l7);
		else
			ret = compile_patch_services(&cur->set, &co, &cur->out, r.ns, r.svc,
						     r.n_svcs, &r.pt, &r.l7);
		cur->out.l7 = NULL;
		free(pod_ips);
		if (ret == -ESTALE)
			reload_why(&r, "a re-planned service port would change more than a delta "
				   "does (another Service's VIP:port)");
	}
	if (!ret && cur->set.n_errors) {
		reload_why(&r, "the re-plan found errors");
		ret = 1;
	}
	if (!ret)
		ret = reload_patch_pods(ag, &r);
	if (ret)
		goto undo;
	t_plan = dp_now_ns();

	if (r.l7 && ag->proxy) {
		r.l7->generation = ag->ap.generation + 1;
		proxy_set_config(ag->proxy, l7_config_get(r.l7));
	}
	ret = apply_services(&ag->ap, &cur->out.plan, r.pt.idx, r.pt.n, r.pt.gone, r.pt.n_gone,
			     err, errlen);
	if (!ret && r.n_pod_addrs)
		ret = apply_pods(&ag->ap, &cur->out.plan, r.pod_addrs, r.n_pod_addrs, err, errlen);
	if (ret) {
		log_info("incremental apply not done (%s): reloading everything", err);
		if (r.l7 && ag->proxy)
			proxy_set_config(ag->proxy, l7_config_get(ag->l7));
		ret = 1;
		goto undo;
	}
	if (r.l7) {
		l7_config_put(ag->l7);
		ag->l7 = r.l7;
		r.l7 = NULL;
	}
	/* a Namespace's labels decide which of this node's pods are in the mesh */
	if (r.n_kind[RELOAD_NS] && ag->mb.enabled) {
		if (members_set(&ag->mb, &ag->ld, &cur->set))
			log_err("mesh membership not updated: out of memory");
		members_reconcile(&ag->mb, &ag->ld);
	} else if (ag->mb.enabled) {
		reload_members_pods(ag, &r);	/* this node's pods alone */
	}
	ag->n_docs += r.d.n_added - r.d.n_gone;
	ag->n_services = cur->out.plan.n_svcs;
	ag->last_reload_ns = dp_now_ns() - t0;
	/* (only when there are: the line's format stays) */
	if (r.n_kind[RELOAD_NS])
		snprintf(ns_note, sizeof(ns_note), ", %zu Namespaces", r.n_kind[RELOAD_NS]);
	if (r.n_kind[RELOAD_GW])
		snprintf(ns_note + strlen(ns_note), sizeof(ns_note) - strlen(ns_note),
			 ", %zu Gateways", r.n_kind[RELOAD_GW]);
	reload_diags_news(ag, &cur->set, &r);
	log_info("policy generation %llu applied: %zu service ports, %zu warnings, "
		 "%u map writes, %u deletes, %zu of %zu documents parsed, "
		 "%.2f ms (parse %.2f ms, plan %.2f ms, apply %.2f ms); incremental: "
		 "%zu EndpointSlices, %zu Pods, %zu Services, %zu VirtualServices, "
		 "%zu DestinationRules%s; %zu service ports re-planned (%zu new, %zu gone)",
		 (unsigned long long)ag->ap.generation, cur->out.plan.n_svcs, cur->set.n_warnings,
		 ag->ap.last_writes, ag->ap.last_deletes, r.d.n_added, ag->n_docs,
		 ag->last_reload_ns / 1e6, (t_load - t0) / 1e6, (t_plan - t_load) / 1e6,
		 ag->ap.last_apply_ns / 1e6, r.n_kind[RELOAD_EPS], r.n_kind[RELOAD_POD],
		 r.n_kind[RELOAD_SVC], r.n_kind[RELOAD_VS], r.n_kind[RELOAD_DR], ns_note, r.pt.n,
		 r.pt.n_added, r.pt.n_gone);
	policy_delta_commit(ag->pcache, &r.d);	/* the replaced documents go */
	reload_diags_json(ag, &cur->set, diags);
	plan_patch_free(&r.pt);
	reload_delta_free(&r);
	return 0;
undo:
	/* not a delta, or it could not be done (no memory): reload everything */
	if (ret == -ENOMEM)
		reload_why(&r, "out of memory");
	ret = 1;
	if (ag->kube && r.bad_msg && reload_changed(files, n_files, names, n_names, r.bad)) {
		/* an object from the API server that fails: rejected alone by the caller */
		size_t kl = strlen(r.bad);

		log_info("not a delta (%s): %s fails validation", r.why, r.bad);
		snprintf(err, errlen, "%s\t%s", r.bad, !strncmp(r.bad_msg, r.bad, kl) &&
			 !strncmp(r.bad_msg + kl, ": ", 2) ? r.bad_msg + kl + 2 : r.bad_msg);
		ret = 2;
	} else {
		log_info("not a delta (%s): reloading everything", r.why[0] ? r.why : "?");
	}
	reload_delta_undo(ag, &r);
	reload_delta_free(&r);
	return ret;
}

int agent_reload_delta(struct agent *ag, const struct agent_file *files, size_t n_files,
		       json_t *diags, char *err, size_t errlen)
{
	return agent_delta(ag, files, n_files, NULL, 0, diags, err, errlen);
}

int agent_reload(struct agent *ag, const struct agent_file *files, size_t n_files,
		 bool dry_run, json_t *diags, char *err, size_t errlen)
{
	struct agent_prepared pp;
	int ret;

	if (!dry_run && n_files && ag->policy_is_dir) {
		ret = agent_delta(ag, files, n_files, NULL, 0, diags, err, errlen);
		if (ret <= 0)
			return ret ?: reload_write_files(ag, files, n_files, err, errlen);
		err[0] = '\0';
	}
	ret = agent_prepare(ag, files, n_files, dry_run, diags, &pp, err, errlen);
	if (ret)
		return ret;
	if (dry_run) {
		agent_prepared_free(&pp);
		return 0;
	}
	return agent_commit(ag, &pp, files, n_files, err, errlen);
}

static void reload_changed_clear(struct agent *ag)
{
	for (size_t i = 0; i < ag->n_changed; i++)
		free(ag->changed[i]);
	ag->n_changed = 0;
	ag->changed_all = false;
}

int agent_reload_changed(struct agent *ag, json_t *diags, char *err, size_t errlen)
{
	int ret = 1;

	if (!ag->changed_all && ag->n_changed)
		ret = agent_delta(ag, NULL, 0, ag->changed, ag->n_changed, diags, err, errlen);
	reload_changed_clear(ag);
	if (ret <= 0)
		return ret;
	return agent_reload(ag, NULL, 0, false, diags, err, errlen);
}

/* ---- apply -f / delete -f: objects by identity ---- */

/* An object of the directory whose document goes: file (a path) and line. */
struct reload_cut {
	const char *file;
	uint32_t line;
};

struct reload_take {
	struct agent *ag;
	const struct agent_file *files;
	size_t n_files;
	bool del;
	struct reload_cut *cuts;
	size_t n_cuts, cap_cuts, n_missing;
	char *missing;			/* "Kind ns/name" of the first one (delete) */
	/* one file at a time: where its objects are, which go */
	const char *file;
	uint32_t *lines;
	bool *cut;
	size_t n_lines, cap_lines;
	char *err;
	size_t errlen;
};

/* Is path one of the applied files (replaced as a whole)? */
static bool reload_take_applied(const struct reload_take *t, const char *path)
{
	size_t dl = strlen(t->ag->policy_path);

	if (strncmp(path, t->ag->policy_path, dl) || path[dl] != '/')
		return false;
	for (size_t i = 0; i < t->n_files; i++)
		if (!strcmp(path + dl + 1, t->files[i].name))
			return true;
	return false;
}

static int reload_take_obj(const char *kind, const struct pol_meta *theirs,
			   const struct pol_meta *ours, void *arg)
{
	struct reload_take *t = arg;

	if (!ours || !ours->loc.file) {
		if (t->del && !t->n_missing++ &&
		    asprintf(&t->missing, "%s %s/%s", kind, theirs->ns, theirs->name) < 0)
			t->missing = NULL;
		return 0;
	}
	if (!t->del && reload_take_applied(t, ours->loc.file))
		return 0;	/* its file is replaced anyway */
	if (sm_grow((void **)&t->cuts, &t->cap_cuts, t->n_cuts + 1, sizeof(*t->cuts)))
		return -ENOMEM;
	t->cuts[t->n_cuts++] = (struct reload_cut){ ours->loc.file, ours->loc.line };
	return 0;
}

/* Every object of t->file: its line, and whether it goes. */
static int reload_take_line(const char *kind, const struct pol_meta *obj,
			    const struct pol_meta *ours, void *arg)
{
	struct reload_take *t = arg;
	bool cut = false;

	(void)ours;
	if (!obj->loc.file || strcmp(obj->loc.file, t->file))
		return 0;
	for (size_t k = 0; k < t->n_cuts && !cut; k++)
		cut = !strcmp(t->cuts[k].file, t->file) && t->cuts[k].line == obj->loc.line;
	if (sm_grow((void **)&t->lines, &t->cap_lines, t->n_lines + 1, sizeof(*t->lines)) ||
	    !(t->cut = realloc(t->cut, t->cap_lines * sizeof(*t->cut))))
		return -ENOMEM;
	t->lines[t->n_lines] = obj->loc.line;
	t->cut[t->n_lines++] = cut;
	(void)kind;
	return 0;
}

/* The file t->file without the documents that go, as an agent_file. */
static int reload_take_file(struct reload_take *t, struct agent_file *f)
{
	const char *base = t->file + strlen(t->ag->policy_path) + 1;
	char *buf = NULL, *out = NULL;
	size_t len = 0, out_len = 0;
	int ret;

	t->n_lines = 0;
	ret = policy_set_foreach(&t->ag->cur->set, reload_take_line, t);
	if (!ret && !(ret = policy_read_file(t->file, &buf, &len)))
		ret = policy_doc_cut(buf, len, t->lines, t->cut, t->n_lines, &out, &out_len);
	free(buf);
	if (ret == -EBUSY)
		snprintf(t->err, t->errlen, "%s: an object to %s shares its document with others "
			 "(a List): edit that file", t->file, t->del ? "delete" : "replace");
	else if (ret)
		snprintf(t->err, t->errlen, "%s: %s", t->file, strerror(-ret));
	if (ret)
		return ret;
	/* its own name: a delta frees the documents (and file names) that go */
	*f = (struct agent_file){ .name = strdup(base), .content = out, .len = out_len,
				  .remove = policy_text_blank(out, out_len) };
	if (!f->name) {
		free(out);
		return -ENOMEM;
	}
	return 0;
}

/*
 * The files the apply (or delete) changes besides its own: *extra, each
 * content malloc'd. 0 with none when nothing applied is known (no
 * applied set, or the files do not parse: the load reports that).
 */
static int reload_take_over(struct reload_take *t, struct agent_file **extra, size_t *n_extra)
{
	struct agent *ag = t->ag;
	struct pol_set in;
	size_t dl = strlen(ag->policy_path);
	int ret = 0;

	*extra = NULL;
	*n_extra = 0;
	if (!ag->cur) {
		if (t->del)
			snprintf(t->err, t->errlen, "delete: the last reload failed, so what is "
				 "applied is not known: fix the policy first");
		return t->del ? -ENOENT : 0;
	}
	policy_set_init(&in);
	for (size_t i = 0; i < t->n_files; i++)
		policy_load_buffer(&in, t->files[i].name, t->files[i].content, t->files[i].len);
	if (in.n_errors) {
		snprintf(t->err, t->errlen, "%s: %zu error(s): fix the files first",
			 t->del ? "delete" : "apply", in.n_errors);
		policy_set_free(&in);
		return t->del ? -EINVAL : 0;
	}
	ret = policy_set_match(&ag->cur->set, &in, reload_take_obj, t);
	policy_set_free(&in);
	if (!ret && t->del && !t->n_cuts) {
		snprintf(t->err, t->errlen, "%s not found: nothing to delete", t->missing ?: "object");
		ret = -ENOENT;
	}
	for (size_t k = 0; k < t->n_cuts && !ret; k++) {
		size_t j;

		if (strncmp(t->cuts[k].file, ag->policy_path, dl) || t->cuts[k].file[dl] != '/' ||
		    strchr(t->cuts[k].file + dl + 1, '/')) {
			snprintf(t->err, t->errlen, "%s is not a file of %s", t->cuts[k].file,
				 ag->policy_path);
			ret = -EINVAL;
			break;
		}
		for (j = 0; j < k && strcmp(t->cuts[j].file, t->cuts[k].file); j++)
			;
		if (j < k)
			continue;	/* that file is done */
		if (!(*extra = reallocarray(*extra, *n_extra + 1, sizeof(**extra)))) {
			ret = -ENOMEM;
			break;
		}
		t->file = t->cuts[k].file;
		ret = reload_take_file(t, &(*extra)[*n_extra]);
		if (!ret)
			(*n_extra)++;
	}
	if (ret) {
		for (size_t i = 0; i < *n_extra; i++)
		{
			free((char *)(*extra)[i].content);
			free((char *)(*extra)[i].name);
		}
		free(*extra);
		*extra = NULL;
		*n_extra = 0;
	}
	return ret;
}

int agent_apply_files(struct agent *ag, const struct agent_file *files, size_t n_files,
		      bool dry_run, bool del, json_t *diags, char *err, size_t errlen)
{
	struct reload_take t = {
		.ag = ag, .files = files, .n_files = n_files, .del = del, .err = err,
		.errlen = errlen,
	};
	struct agent_file *extra, *all = NULL;
	size_t n_extra, n_all;
	int ret;

	err[0] = '\0';
	if (ag->kube || !ag->policy_is_dir)
		return agent_reload(ag, files, n_files, dry_run, diags, err, errlen);
	ret = reload_take_over(&t, &extra, &n_extra);
	if (!ret) {
		n_all = (del ? 0 : n_files) + n_extra;
		all = calloc(n_all + 1, sizeof(*all));
		if (!all)
			ret = -ENOMEM;
	}
	if (!ret) {
		if (!del)
			memcpy(all, files, n_files * sizeof(*all));
		if (n_extra)
			memcpy(all + (del ? 0 : n_files), extra, n_extra * sizeof(*all));
		for (size_t i = 0; i < n_extra; i++)
			log_info("%s: %s %s", extra[i].name, extra[i].remove ? "removed: its objects" :
				 "rewritten without the documents of objects", del ? "deleted" :
				 "applied from another file");
		ret = agent_reload(ag, all, n_all, dry_run, diags, err, errlen);
		if (!ret && del && t.n_missing)
			snprintf(err, errlen, "%zu object(s) not found (%s): the others are deleted",
				 t.n_missing, t.missing ?: "?");
	}
	for (size_t i = 0; i < n_extra; i++) {
		free((char *)extra[i].content);
		free((char *)extra[i].name);
	}
	free(extra);
	free(all);
	free(t.cuts);
	free(t.lines);
	free(t.cut);
	free(t.missing);
	return ret;
}
