// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The agent's objects from the Kubernetes API (--kubeconfig, --in-cluster)
 * instead of policy files.
 *
 * The client (user/kube) keeps the live store up to date on its thread.
 * The agent keeps a view: the objects it applied. A change moves objects
 * from the store into the view and applies them: as a delta when the
 * reload path can (EndpointSlices, Services, VirtualServices and
 * DestinationRules that come, change or go, Pod readiness: see reload.c),
 * else by loading the whole view (the document cache re-parses only the
 * changed objects). Each object is one document whose "file" is its
 * identity, "Kind ns/name", so every diagnostic names the object.
 *
 * An object that fails validation is rejected alone: the view gets its
 * previous version back (or loses it, when it had none) and the rest of
 * the change applies. When a change breaks another object (a subset a
 * VirtualService names is gone), the whole batch is put back. When the API
 * server is unreachable nothing changes: the last applied config stays.
 */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "kube/kube.h"
#include "common/log.h"
#include "policy/policy.h"
#include "common/prom.h"

#define KUBE_RETRY_MS 1000	/* after an apply that failed (not a rejection) */

/*
 * jemalloc's control call when the agent is linked with it (the Makefile's
 * LDLIBS_MALLOC), else NULL (the ASan agent, glibc's malloc).
 */
extern int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen)
	__attribute__((weak));

/* Hand the allocator's free memory back to the kernel. */
static void kube_release_memory(void)
{
	if (mallctl)
		mallctl("arena.4096.purge", NULL, NULL, NULL, 0);	/* MALLCTL_ARENAS_ALL */
	else
		malloc_trim(0);
}

/* propagation: from the client thread recording a change to the maps holding it */
static const double kube_prop_bounds[] = { 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1,
					   0.2, 0.5, 1, 2, 5 };
#define KUBE_PROP_N (sizeof(kube_prop_bounds) / sizeof(kube_prop_bounds[0]))

struct agent_kube {
	struct kube_creds creds;
	struct kube_store *live;	/* the client's */
	struct kube_store *view;	/* what the agent applied */
	struct kube_client *client;
	int efd;
	bool pending;			/* the store recorded changes */
	uint64_t due_ns;		/* apply then (0: nothing due) */
	uint64_t last_apply_ns;
	bool retry_full;		/* the view is ahead of the maps: reload it all */
	bool trim;			/* a full load freed a set: give memory back */
	bool started;			/* the first tick (after the first apply) ran */
	bool was_reachable;
	json_t *rejected;		/* identity -> message */
	uint64_t n_rejected_total, n_applies, n_deltas;
	uint64_t last_prop_ns;		/* of the last apply */
	uint64_t prop_counts[KUBE_PROP_N + 1], prop_count;
	double prop_sum_s;
};

int agent_kube_start(struct agent *ag, const char *kubeconfig, const char *node_name,
		     char *err, size_t errlen)
{
	struct agent_kube *k = calloc(1, sizeof(*k));
	struct kube_client_opts o = {};
	int ret;

	if (!k)
		return -ENOMEM;
	k->efd = -1;
	ret = kubeconfig ? kube_config_load(kubeconfig, NULL, &k->creds, err, errlen) :
			   kube_config_in_cluster(getenv("SOCKMESH_SA_DIR") ?: KUBE_SA_DIR, &k->creds,
						  err, errlen);
	if (ret) {
		free(k);
		return ret;
	}
	k->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	k->rejected = json_object();
	if (k->efd < 0 || !k->rejected || !(k->live = kube_store_new(k->efd)) ||
	    !(k->view = kube_store_new(-1))) {
		snprintf(err, errlen, "out of memory");
		ag->kube = k;
		agent_kube_stop(ag);
		return -ENOMEM;
	}
	o.creds = &k->creds;
	o.node_name = node_name;
	o.store = k->live;
	o.curl_verbose = log_verbosity > LOG_DEBUG;	/* -vv, as libbpf's debug */
	/* tests: a CRD installed later is found sooner than the minute */
	if (getenv("SM_KUBE_ABSENT_RECHECK_MS"))
		o.absent_recheck_ms = (uint32_t)strtoul(getenv("SM_KUBE_ABSENT_RECHECK_MS"), NULL, 10);
	ag->kube = k;
	k->client = kube_client_start(&o, err, errlen);
	if (!k->client) {
		ret = -errno;
		agent_kube_stop(ag);
		return ret;
	}
	k->was_reachable = true;
	log_info("objects from the Kubernetes API at %s (context %s)%s%s", k->creds.server,
		 k->creds.context, node_name ? ": this node's Pods in full, others as metadata, node " :
		 ": every Pod in full", node_name ?: "");
	return 0;
}

void agent_kube_stop(struct agent *ag)
{
	struct agent_kube *k = ag->kube;

	if (!k)
		return;
	kube_client_stop(k->client);
	kube_store_free(k->live);
	kube_store_free(k->view);
	if (k->efd >= 0)
		close(k->efd);
	json_decref(k->rejected);
	kube_creds_free(&k->creds);
	free(k);
	ag->kube = NULL;
}

static void kube_log_warnings(struct agent_kube *k)
{
	char *w = kube_client_take_warnings(k->client), *save = NULL;

	for (char *l = w ? strtok_r(w, "\n", &save) : NULL; l; l = strtok_r(NULL, "\n", &save))
		log_warn("kubernetes: %s", l);
	free(w);
}

int agent_kube_wait_synced(struct agent *ag)
{
	struct agent_kube *k = ag->kube;
	uint64_t t0 = dp_now_ns(), said = t0;

	while (!kube_client_synced(k->client, NULL)) {
		struct pollfd pfd[AGENT_MAX_ADMIN_CONNS + 2];
		int na = admin_pollfds(ag, pfd, AGENT_MAX_ADMIN_CONNS + 2);
		sigset_t pend;
		uint64_t now;

		/* blocked (signalfd): a stop before the first sync ends the start */
		if (!sigpending(&pend) && (sigismember(&pend, SIGTERM) || sigismember(&pend, SIGINT))) {
			log_info("stopping before every kind synced");
			return -EINTR;
		}

		/*
		 * The admin API answers /ready (syncing kinds) meanwhile; the
		 * sync is checked every 5 ms (the first apply starts on average
		 * 2.5 ms after the last page, not 10 ms: ~200 idle wake-ups).
		 */
		if (poll(pfd, na, 5) > 0)
			admin_handle(ag, pfd, na);
		admin_expire(ag, dp_now_ns());
		kube_log_warnings(k);
		now = dp_now_ns();
		if (now - said >= 5000000000ull) {
			json_t *s = json_array();
			char *txt;

			kube_client_synced(k->client, s);
			txt = json_dumps(s, JSON_COMPACT);
			log_info("waiting for the API server: still syncing %s", txt ?: "?");
			free(txt);
			json_decref(s);
			said = now;
		}
	}
	kube_log_warnings(k);
	log_info("every kind synced from the API server in %.1f ms", (dp_now_ns() - t0) / 1e6);
	return 0;
}

void agent_kube_log_ready(struct agent *ag)
{
	uint64_t t0, cpu0, cpu;
	struct timespec ts;

	kube_client_first_list(ag->kube->client, &t0, &cpu0);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	cpu = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	log_info("ready: %.1f ms from the first LIST request to the first apply attached, agent CPU "
		 "%.1f ms in that time (%.1f ms since exec, data path load included)",
		 (dp_now_ns() - t0) / 1e6, (cpu - cpu0) / 1e6, cpu / 1e6);
}

int agent_kube_load(struct agent *ag, struct pol_set *set)
{
	struct kube_doc **docs;
	size_t n;
	int ret = 0;

	if (kube_store_snapshot(ag->kube->view, &docs, &n))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		/* parsed on the client's thread: the cache takes that, not a new parse */
		if (set->cache && docs[i]->pd)
			policy_cache_offer(set->cache, docs[i]->pd);
		if (policy_load_buffer(set, docs[i]->name, docs[i]->text, docs[i]->len) && !ret)
			ret = -EINVAL;
	}
	if (set->cache)
		policy_cache_offers_clear(set->cache);
	kube_docs_free(docs, n);
	return ret;
}

/* The view takes the store's changes; olds[i]: what the view held (a reference). */
static void kube_view_take(struct agent_kube *k, struct kube_change *c, size_t n,
			   struct kube_doc **olds)
{
	struct kube_change *drop;
	size_t nd;

	for (size_t i = 0; i < n; i++) {
		olds[i] = kube_store_get(k->view, c[i].name);
		if (c[i].doc)
			kube_store_put(k->view, kube_doc_get(c[i].doc), 0, 0, 0);
		else
			kube_store_del(k->view, c[i].name, 0);
		json_object_del(k->rejected, c[i].name);
	}
	if (!kube_store_take(k->view, &drop, &nd, NULL))	/* the view records no changes */
		kube_changes_free(drop, nd);
}

static void kube_view_revert(struct agent_kube *k, const char *name, struct kube_doc *old)
{
	struct kube_change *drop;
	size_t nd;

	if (old)
		kube_store_put(k->view, kube_doc_get(old), 0, 0, 0);
	else
		kube_store_del(k->view, name, 0);
	if (!kube_store_take(k->view, &drop, &nd, NULL))
		kube_changes_free(drop, nd);
}

/*
 * "field.path: message" of a rejection, the path from the object's root as
 * kubectl names it: the policy's messages say "Kind.spec.x: msg" or
 * "unknown field "f" in Kind.spec.x (typo?...)". Anything else is kept.
 */
static void kube_reject_msg(const char *name, const char *msg, char *out, size_t len)
{
	size_t kl = strcspn(name, " ");
	const char *in, *f, *end;

	if (!strncmp(msg, name, kl) && msg[kl] == '.') {
		snprintf(out, len, "%s", msg + kl + 1);
		return;
	}
	if (!strncmp(msg, "unknown field \"", 15) && (in = strstr(msg, "\" in ")) &&
	    !strncmp(in + 5, name, kl) && in[5 + kl] == '.') {
		f = msg + 15;
		in += 5 + kl + 1;
		end = in + strcspn(in, " ");
		snprintf(out, len, "%.*s.%.*s: unknown field%s", (int)(end - in), in,
			 (int)(in - 5 - kl - 1 - f), f, end);
		return;
	}
	snprintf(out, len, "%s", msg);
}

/* Logged and in /status as "Kind ns/name: field.path: message". */
static void kube_reject(struct agent_kube *k, const char *name, const char *msg, bool had_old)
{
	char m[1024];

	kube_reject_msg(name, msg, m, sizeof(m));
	log_err("%s: %s", name, m);
	log_info("%s rejected: %s", name, had_old ? "the previous version stays applied" :
		 "not applied");
	json_object_set_new(k->rejected, name, json_string(m));
	k->n_rejected_total++;
}

/* The object a diagnostic line names ("Kind ns/name:line:col: error: msg"). */
static bool kube_diag_is(const char *diag, const char *name, const char **msg)
{
	size_t n = strlen(name);
	const char *e;

	if (strncmp(diag, name, n) || diag[n] != ':' || !(e = strstr(diag + n, ": error: ")))
		return false;
	*msg = e + 9;
	return true;
}

static const char *kube_diag_error(json_t *d, const char *name)
{
	size_t i;
	json_t *v;
	const char *msg;

	json_array_foreach(d, i, v)
		if (kube_diag_is(json_string_value(v) ?: "", name, &msg))
			return msg;
	return NULL;
}

/*
 * Load the view and plan it; objects that fail are rejected (see the top)
 * and the load tried again without them.
 */
static int kube_prepare(struct agent *ag, struct kube_change *c, struct kube_doc **olds, size_t n,
			json_t *diags, struct agent_prepared *pp, char *err, size_t errlen)
{
	struct agent_kube *k = ag->kube;
	bool *reverted = calloc(n + 1, sizeof(*reverted));
	int ret = -EINVAL;

	if (!reverted)
		return -ENOMEM;
	for (int pass = 0; pass < 4; pass++) {
		json_t *d = json_array();
		const char *msg, *first = NULL;
		size_t n_rev = 0, i;
		bool earlier;
		json_t *v;

		ret = agent_prepare(ag, NULL, 0, false, d, pp, err, errlen);
		if (!ret || ret != -EINVAL) {
			json_array_extend(diags, d);
			json_decref(d);
			break;
		}
		/* 1. changed objects that fail themselves */
		for (i = 0; i < n; i++)
			if (!reverted[i] && (msg = kube_diag_error(d, c[i].name))) {
				kube_reject(k, c[i].name, msg, olds[i]);
				kube_view_revert(k, c[i].name, olds[i]);
				reverted[i] = true;
				n_rev++;
			}
		/* 2. a change that breaks other objects: the whole batch goes back */
		json_array_foreach(d, i, v)
			if (!first && strstr(json_string_value(v) ?: "", ": error: "))
				first = json_string_value(v);
		for (i = 0; !n_rev && ag->ap.generation && i < n; i++)
			if (!reverted[i]) {
				kube_reject(k, c[i].name, first ?: err, olds[i]);
				kube_view_revert(k, c[i].name, olds[i]);
				reverted[i] = true;
			}
		if (!n_rev && ag->ap.generation)
			n_rev = 1;
		/* 3. nothing applied yet: leave out every object that fails */
		earlier = n_rev > 0;
		json_array_foreach(d, i, v) {
			const char *s = json_string_value(v) ?: "", *e = strstr(s, ": error: ");
			const char *colon = strchr(s, ':');
			char name[600];

			if (earlier || !e || !colon || (size_t)(colon - s) >= sizeof(name))
				continue;
			memcpy(name, s, (size_t)(colon - s));
			name[colon - s] = '\0';
			if (json_object_get(k->rejected, name))
				continue;
			kube_reject(k, name, e + 9, false);
			kube_view_revert(k, name, NULL);
			n_rev++;
		}
		json_decref(d);
		if (!n_rev)
			break;
	}
	free(reverted);
	return ret;
}

int agent_kube_prepare(struct agent *ag, json_t *diags, struct agent_prepared *pp,
		       char *err, size_t errlen)
{
	struct agent_kube *k = ag->kube;
	struct kube_change *c = NULL;
	struct kube_doc **olds;
	size_t n = 0;
	int ret;

	if (kube_store_take(k->live, &c, &n, NULL))
		return -ENOMEM;
	olds = calloc(n + 1, sizeof(*olds));
	if (!olds) {
		kube_changes_free(c, n);
		return -ENOMEM;
	}
	kube_view_take(k, c, n, olds);
	ret = kube_prepare(ag, c, olds, n, diags, pp, err, errlen);
	kube_docs_free(olds, n);
	kube_changes_free(c, n);
	return ret;
}

/*
 * The change as a delta (agent_reload_delta). A changed object that fails
 * validation against the rest is rejected alone and the delta tried
 * again without it. 0: applied; else load the view.
 */
static int kube_delta(struct agent *ag, struct kube_change *c, struct kube_doc **olds,
		      struct agent_file *files, size_t n, json_t *diags, char *err, size_t errlen)
{
	size_t n_files = n;
	int ret;

	while ((ret = agent_reload_delta(ag, files, n_files, diags, err, errlen)) == 2) {
		char *msg = strchr(err, '\t');
		size_t i, f;

		if (!msg)
			break;
		*msg++ = '\0';
		for (i = 0; i < n && strcmp(c[i].name, err); i++)
			;
		for (f = 0; f < n_files && strcmp(files[f].name, err); f++)
			;
		if (i == n || f == n_files)
			break;
		kube_reject(ag->kube, c[i].name, msg, olds[i]);
		kube_view_revert(ag->kube, c[i].name, olds[i]);
		files[f] = files[--n_files];	/* none left: "unchanged" */
	}
	err[0] = '\0';
	return ret;
}

/* Apply what the store recorded since the last time. */
static void kube_apply(struct agent *ag)
{
	struct agent_kube *k = ag->kube;
	struct kube_change *c = NULL;
	struct kube_doc **olds = NULL;
	struct agent_file *files = NULL;
	struct agent_prepared pp;
	json_t *diags = json_array();
	char err[512] = "";
	uint64_t since = 0;
	size_t n = 0;
	int ret;

	k->last_apply_ns = dp_now_ns();
	if (kube_store_take(k->live, &c, &n, &since))
		goto out;
	if (!n) {
		/* nothing new, but a failed apply left the view ahead of the maps */
		if (k->retry_full) {
			ret = agent_prepare(ag, NULL, 0, false, diags, &pp, err, sizeof(err));
			if (!ret)
				ret = agent_commit(ag, &pp, NULL, 0, err, sizeof(err));
			k->retry_full = ret != 0;
			if (ret)
				log_err("kubernetes: applying again failed: %s", err);
		}
		goto out;
	}
	olds = calloc(n, sizeof(*olds));
	files = calloc(n, sizeof(*files));
	if (!olds || !files) {
		/* the changes are lost for now: the next full apply gets them */
		log_err("kubernetes: out of memory applying %zu changes", n);
		goto out;
	}
	kube_view_take(k, c, n, olds);
	log_debug("kubernetes: applying %zu change(s) (%s%s%s), %.2f ms after the first arrived", n,
		  c[0].name, c[0].doc ? "" : " deleted", n > 1 ? ", ..." : "", (dp_now_ns() - since) / 1e6);
	for (size_t i = 0; i < n; i++) {
		files[i] = (struct agent_file){ .name = c[i].name,
						.content = c[i].doc ? c[i].doc->text : "",
						.len = c[i].doc ? c[i].doc->len : 0 };
		if (c[i].doc && c[i].doc->pd && ag->pcache)
			policy_cache_offer(ag->pcache, c[i].doc->pd);	/* parsed already */
	}
	k->n_applies++;
	/* objects that come, change or go: a delta; anything else loads the view */
	ret = kube_delta(ag, c, olds, files, n, diags, err, sizeof(err));
	if (ag->pcache)
		policy_cache_offers_clear(ag->pcache);
	if (ret == 0) {
		k->n_deltas++;
		k->last_apply_ns = 0;	/* the window guards full loads: none after a delta */
	} else {
		json_array_clear(diags);
		ret = kube_prepare(ag, c, olds, n, diags, &pp, err, sizeof(err));
		if (!ret)
			ret = agent_commit(ag, &pp, NULL, 0, err, sizeof(err));
		k->trim = true;
	}
	json_decref(ag->last_diags);
	ag->last_diags = json_incref(diags);
	if (ret) {
		ag->reloads_failed++;
		snprintf(ag->last_error, sizeof(ag->last_error), "%s", err);
		if (ret == -EINVAL) {
			/* what validation left after the rejections: wait for the next change */
			log_err("kubernetes: %zu change(s) not applied: %s", n, err);
		} else {
			log_err("kubernetes: %zu change(s) not applied: %s; trying again in %u ms", n,
				err, KUBE_RETRY_MS);
			k->retry_full = true;
			k->pending = true;
			k->due_ns = dp_now_ns() + KUBE_RETRY_MS * 1000000ull;
		}
	} else {
		k->retry_full = false;
		double d;
		size_t b = 0;

		ag->reloads_ok++;
		ag->last_error[0] = '\0';
		k->last_prop_ns = dp_now_ns() - since;
		d = k->last_prop_ns / 1e9;
		while (b < KUBE_PROP_N && d > kube_prop_bounds[b])
			b++;
		k->prop_counts[b]++;
		k->prop_count++;
		k->prop_sum_s += d;
	}
out:
	json_decref(diags);
	kube_docs_free(olds, olds ? n : 0);
	free(files);
	kube_changes_free(c, n);
}

int agent_kube_pollfd(const struct agent *ag)
{
	return ag->kube ? ag->kube->efd : -1;
}

int agent_kube_timeout_ms(const struct agent *ag, uint64_t now_ns)
{
	const struct agent_kube *k = ag->kube;

	if (!k)
		return -1;
	if (k->due_ns)
		return k->due_ns > now_ns ? (int)((k->due_ns - now_ns) / 1000000) + 1 : 0;
	return 1000;	/* warnings, reachability */
}

/*
 * A change after a quiet debounce window (--reload-debounce, Istio's
 * 100 ms) applies at once; changes that follow a full apply sooner are
 * gathered and applied together when the window since it ends (after a
 * delta, which costs less than the wait, there is none: a Service and its
 * slice on two watches are two deltas, not 100 ms). The store signals only
 * its first change after a take, so a burst costs one wake-up.
 */
void agent_kube_tick(struct agent *ag, bool readable, uint64_t now_ns)
{
	struct agent_kube *k = ag->kube;
	uint64_t debounce = ag->reload_debounce_ms * 1000000ull, since;
	bool reachable;

	if (!k)
		return;
	/*
	 * After the first apply and after full loads: the list pages parsed on
	 * the client's thread (its own malloc arena) and the set a full load
	 * replaced leave free memory the allocator keeps; hand it back (tens of MB
	 * at 100k endpoints, a few ms).
	 */
	if (k->trim || !k->started) {
		kube_release_memory();
		k->trim = false;
		k->started = true;
	}
	if (readable) {
		uint64_t v;

		if (read(k->efd, &v, sizeof(v)) == sizeof(v) && !k->due_ns) {
			k->pending = true;
			k->due_ns = now_ns - k->last_apply_ns >= debounce ? now_ns :
				    k->last_apply_ns + debounce;
		}
	}
	kube_log_warnings(k);
	reachable = kube_client_reachable(k->client, &since);
	if (reachable != k->was_reachable) {
		if (reachable)
			log_info("kubernetes: API server %s reachable again", k->creds.server);
		else
			log_warn("kubernetes: API server %s unreachable: keeping the last applied "
				 "config (generation %llu) until it answers", k->creds.server,
				 (unsigned long long)ag->ap.generation);
		k->was_reachable = reachable;
	}
	if (k->pending && k->due_ns && k->due_ns <= now_ns) {
		k->pending = false;
		k->due_ns = 0;
		kube_apply(ag);
	}
}

json_t *agent_kube_status(struct agent *ag)
{
	struct agent_kube *k = ag->kube;
	json_t *st, *syncing = json_array();
	bool reachable = kube_client_reachable(k->client, NULL);

	st = kube_client_status(k->client);
	json_object_set_new(st, "synced", json_boolean(kube_client_synced(k->client, syncing)));
	json_object_set_new(st, "syncing", syncing);
	json_object_set_new(st, "rejected", json_deep_copy(k->rejected));
	json_object_set_new(st, "applies", json_integer((json_int_t)k->n_applies));
	json_object_set_new(st, "deltas", json_integer((json_int_t)k->n_deltas));
	json_object_set_new(st, "last_propagation_ms", json_real(k->last_prop_ns / 1e6));
	json_object_set_new(st, "serving", json_string(reachable ? "the API server's objects" :
			    "the last applied config (API server unreachable)"));
	return st;
}

int agent_kube_objects(struct agent *ag, const char *kind, const char *name, json_t **out)
{
	struct kube_doc **docs;
	json_t *arr;
	size_t n, kl = kind ? strlen(kind) : 0;

	*out = NULL;
	if (!ag->kube)
		return -ENOENT;
	if (kube_store_snapshot(ag->kube->view, &docs, &n))
		return -ENOMEM;
	arr = json_array();
	for (size_t i = 0; arr && i < n; i++) {
		const char *id = docs[i]->name;	/* "Kind ns/name" */

		if (kind && (strncasecmp(id, kind, kl) || id[kl] != ' '))
			continue;
		if (name && strcmp(id + strcspn(id, " ") + 1, name))
			continue;
		json_array_append_new(arr, json_loadb(docs[i]->text, docs[i]->len, 0, NULL));
	}
	kube_docs_free(docs, n);
	*out = arr;
	return arr ? 0 : -ENOMEM;
}

json_t *agent_kube_syncing(struct agent *ag)
{
	json_t *s = json_array();

	if (ag->kube)
		kube_client_synced(ag->kube->client, s);
	return s;
}

void agent_kube_metrics(struct agent *ag, struct prom_buf *b)
{
	struct agent_kube *k = ag->kube;
	struct kube_client_counters c;

	if (!k)
		return;
	kube_client_counters(k->client, &c);
	prom_family(b, "sockmesh_kube_api_reachable", "gauge",
		    "1 when the API server answered the last request; 0: the agent keeps the last applied config.");
	prom_printf(b, "sockmesh_kube_api_reachable %d\n", kube_client_reachable(k->client, NULL));
	prom_family(b, "sockmesh_kube_synced", "gauge", "1 once every kind has been listed.");
	prom_printf(b, "sockmesh_kube_synced %d\n", kube_client_synced(k->client, NULL));
	prom_family(b, "sockmesh_kube_rejected_objects", "gauge",
		    "Objects whose latest version failed validation (the previous one stays).");
	prom_printf(b, "sockmesh_kube_rejected_objects %zu\n", json_object_size(k->rejected));
	prom_family(b, "sockmesh_kube_rejections_total", "counter", "Object versions rejected.");
	prom_printf(b, "sockmesh_kube_rejections_total %llu\n", (unsigned long long)k->n_rejected_total);
	prom_family(b, "sockmesh_kube_propagation_seconds", "histogram",
		    "From a change arriving from the API server to the maps holding it.");
	prom_histogram(b, "sockmesh_kube_propagation_seconds", NULL, kube_prop_bounds, k->prop_counts,
		       KUBE_PROP_N, k->prop_count, k->prop_sum_s);
	prom_family(b, "sockmesh_kube_events_total", "counter", "Watch events received.");
	prom_printf(b, "sockmesh_kube_events_total %llu\n", (unsigned long long)c.events);
	prom_family(b, "sockmesh_kube_relists_total", "counter", "Relists after 410 Gone.");
	prom_printf(b, "sockmesh_kube_relists_total %llu\n", (unsigned long long)c.relists);
	prom_family(b, "sockmesh_kube_request_errors_total", "counter", "Failed API requests.");
	prom_printf(b, "sockmesh_kube_request_errors_total %llu\n", (unsigned long long)c.errors);
	prom_family(b, "sockmesh_kube_received_bytes_total", "counter", "Bytes received from the API server.");
	prom_printf(b, "sockmesh_kube_received_bytes_total %llu\n", (unsigned long long)c.bytes_rx);
}
