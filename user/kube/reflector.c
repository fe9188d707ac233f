// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * One kind's list+watch, as client-go's reflector (tools/cache/reflector.go)
 * does it:
 *
 *   DISCOVER (Istio kinds) -> LIST (pages of KUBE_LIST_LIMIT, continue)
 *     -> WATCH from the list's resourceVersion (allowWatchBookmarks,
 *        timeoutSeconds random in 5-10 min)
 *     -> server closes the stream: WATCH again from the last event's or
 *        bookmark's resourceVersion, at once
 *     -> stream broken / 5xx / 401 / 403: WAIT (exponential backoff with
 *        jitter), then WATCH again from there
 *     -> 410 Gone (at the start or as an ERROR event): LIST again; objects
 *        missing from the new list are deletions (store sweep)
 *   404: the kind is not served (a CRD not installed): an empty kind, one
 *   warning, checked again every minute.
 *
 * Pure: no I/O and no clock of its own (a big list page is parsed on a few
 * threads it starts and joins). The client (client.c) makes the
 * requests kube_refl_next asks for and feeds the answers back; the unit
 * tests do the same with canned answers and a fake clock.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kube/kube.h"

const struct kube_kind kube_kinds[KUBE_KIND_COUNT] = {
	[KUBE_NAMESPACE] = { "Namespace", "", "v1", "namespaces", false },
	[KUBE_SERVICE] = { "Service", "", "v1", "services", true },
	[KUBE_ENDPOINTSLICE] = { "EndpointSlice", "discovery.k8s.io", "v1", "endpointslices", true },
	[KUBE_POD] = { "Pod", "", "v1", "pods", true },
	[KUBE_VIRTUALSERVICE] = { "VirtualService", "networking.istio.io", NULL, "virtualservices", true },
	[KUBE_DESTINATIONRULE] = { "DestinationRule", "networking.istio.io", NULL, "destinationrules", true },
	[KUBE_GATEWAY] = { "Gateway", "networking.istio.io", NULL, "gateways", true },
};

const char *const kube_istio_versions[3] = { "v1", "v1beta1", "v1alpha3" };

#define ACCEPT_JSON "application/json"
#define ACCEPT_META_LIST "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
#define ACCEPT_META "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"

static uint64_t refl_rand(uint64_t *s)
{
	uint64_t x = *s;	/* xorshift64 */

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

uint64_t kube_backoff_ms(uint32_t failures, uint64_t *rnd)
{
	uint64_t d = KUBE_BACKOFF_MIN_MS;

	for (uint32_t i = 1; i < failures && d < KUBE_BACKOFF_MAX_MS; i++)
		d *= 2;
	if (d > KUBE_BACKOFF_MAX_MS)
		d = KUBE_BACKOFF_MAX_MS;
	/* jitter: uniform in [d/2, d], so that nodes do not come back in step */
	return d / 2 + refl_rand(rnd) % (d / 2 + 1);
}

const char *kube_refl_state_str(enum kube_refl_state s)
{
	static const char *const names[] = { "discovering", "listing", "watching", "waiting" };

	return s <= KR_WAIT ? names[s] : "?";
}

void kube_refl_init(struct kube_refl *r, const struct kube_kind *kind, uint32_t id, uint32_t prio,
		    const char *field_selector, bool meta_only, struct kube_store *st,
		    uint64_t rnd_seed)
{
	memset(r, 0, sizeof(*r));
	r->kind = kind;
	r->id = id;
	r->prio = prio;
	r->field_selector = field_selector ? strdup(field_selector) : NULL;
	r->meta_only = meta_only;
	r->store = st;
	r->rnd = rnd_seed ?: 0x9e3779b97f4a7c15ull;
	r->absent_recheck_ms = KUBE_ABSENT_RECHECK_MS;
	r->state = kind->version ? KR_LIST : KR_DISCOVER;
	if (kind->version)
		snprintf(r->version, sizeof(r->version), "%s", kind->version);
	snprintf(r->name, sizeof(r->name), "%s%s", kind->kind,
		 meta_only ? " (metadata)" : field_selector ? " (this node)" : "");
}

void kube_refl_fini(struct kube_refl *r)
{
	free(r->field_selector);
	free(r->cont);
	r->field_selector = r->cont = NULL;
}

/* Append s to p, percent-encoded as a query value. */
static size_t refl_qenc(char *p, size_t len, size_t off, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s && off + 4 < len; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.' || c == '~') {
			p[off++] = (char)c;
		} else {
			p[off++] = '%';
			p[off++] = hex[c >> 4];
			p[off++] = hex[c & 15];
		}
	}
	p[off] = '\0';
	return off;
}

static size_t refl_base(const struct kube_refl *r, char *path, size_t len)
{
	int n;

	if (!r->kind->group[0])
		n = snprintf(path, len, "/api/%s/%s", r->version, r->kind->resource);
	else
		n = snprintf(path, len, "/apis/%s/%s/%s", r->kind->group, r->version, r->kind->resource);
	return n < 0 ? 0 : (size_t)n >= len ? len - 1 : (size_t)n;
}

static size_t refl_param(char *path, size_t len, size_t off, const char *key, const char *val)
{
	int n = snprintf(path + off, len - off, "%c%s=", strchr(path, '?') ? '&' : '?', key);

	if (n < 0 || (size_t)n >= len - off)
		return off;
	return refl_qenc(path, len, off + (size_t)n, val);
}

enum kube_req kube_refl_next(struct kube_refl *r, uint64_t now_ns, char *path, size_t len,
			     const char **accept, uint64_t *due_ns)
{
	char num[24];
	size_t off;

	*due_ns = 0;
	if (r->state == KR_WAIT) {
		if (now_ns < r->due_ns) {
			*due_ns = r->due_ns;
			return KUBE_REQ_NONE;
		}
		r->state = r->after_wait;
	}
	*accept = ACCEPT_JSON;
	switch (r->state) {
	case KR_DISCOVER:
		snprintf(path, len, "/apis/%s", r->kind->group);
		return KUBE_REQ_DISCOVER;
	case KR_LIST:
		if (!r->cont)
			r->gen++;	/* a new list: what it does not name goes */
		off = refl_base(r, path, len);
		snprintf(num, sizeof(num), "%u", KUBE_LIST_LIMIT);
		off = refl_param(path, len, off, "limit", num);
		if (r->cont)
			off = refl_param(path, len, off, "continue", r->cont);
		if (r->field_selector)
			refl_param(path, len, off, "fieldSelector", r->field_selector);
		if (r->meta_only)
			*accept = ACCEPT_META_LIST;
		return KUBE_REQ_LIST;
	case KR_WATCH:
		off = refl_base(r, path, len);
		off = refl_param(path, len, off, "watch", "true");
		off = refl_param(path, len, off, "resourceVersion", r->rv);
		off = refl_param(path, len, off, "allowWatchBookmarks", "true");
		snprintf(num, sizeof(num), "%llu", (unsigned long long)(KUBE_WATCH_TIMEOUT_MIN_S +
			 refl_rand(&r->rnd) % (KUBE_WATCH_TIMEOUT_MAX_S - KUBE_WATCH_TIMEOUT_MIN_S + 1)));
		off = refl_param(path, len, off, "timeoutSeconds", num);
		if (r->field_selector)
			refl_param(path, len, off, "fieldSelector", r->field_selector);
		if (r->meta_only)
			*accept = ACCEPT_META;
		r->n_watches++;
		r->watch_start_ns = now_ns;
		r->watch_events = 0;
		return KUBE_REQ_WATCH;
	default:
		return KUBE_REQ_NONE;
	}
}

/* Wait before going to state next: backoff after an error. */
static void refl_backoff(struct kube_refl *r, enum kube_refl_state next, uint64_t now_ns)
{
	r->failures++;
	r->n_errors++;
	r->state = KR_WAIT;
	r->after_wait = next;
	r->due_ns = now_ns + kube_backoff_ms(r->failures, &r->rnd) * 1000000ull;
}

static void refl_ok(struct kube_refl *r)
{
	r->failures = 0;
	r->last_error[0] = '\0';
}

/* The message of a Status body, else the HTTP status. */
static void refl_error(struct kube_refl *r, const char *what, long status, const char *body,
		       size_t len)
{
	json_t *j = body && len ? json_loadb(body, len, 0, NULL) : NULL;
	const char *msg = json_string_value(json_object_get(j, "message"));

	r->last_status = (int)status;
	if (status == 0)
		snprintf(r->last_error, sizeof(r->last_error), "%s: %s", what,
			 body && len ? body : "API server unreachable");
	else if (status == 401)
		snprintf(r->last_error, sizeof(r->last_error), "%s: 401 Unauthorized (token rejected%s%s)",
			 what, msg ? ": " : "", msg ?: "");
	else if (status == 403)
		snprintf(r->last_error, sizeof(r->last_error), "%s: 403 Forbidden (RBAC: the agent needs "
			 "get/list/watch on %s%s%s)%s%s", what, r->kind->group, r->kind->group[0] ? "/" : "",
			 r->kind->resource, msg ? ": " : "", msg ?: "");
	else
		snprintf(r->last_error, sizeof(r->last_error), "%s: HTTP %ld%s%s", what, status,
			 msg ? ": " : "", msg ?: "");
	json_decref(j);
}

/* 404: not served. An empty kind (anything held goes), checked again later. */
static void refl_absent(struct kube_refl *r, uint64_t now_ns)
{
	r->gen++;
	kube_store_sweep(r->store, r->id, r->gen);
	if (!r->absent_warned)
		snprintf(r->warning, sizeof(r->warning), "%s: not served by the API server (%s%s%s not "
			 "installed?): empty until it is; checking every %u s", r->name, r->kind->resource,
			 r->kind->group[0] ? "." : "", r->kind->group, r->absent_recheck_ms / 1000);
	r->absent = r->absent_warned = r->synced = true;
	r->failures = 0;
	r->last_error[0] = '\0';
	free(r->cont);
	r->cont = NULL;
	r->rv[0] = '\0';
	r->state = KR_WAIT;
	r->after_wait = r->kind->version ? KR_LIST : KR_DISCOVER;
	r->due_ns = now_ns + r->absent_recheck_ms * 1000000ull;
}

static void refl_relist(struct kube_refl *r, const char *why)
{
	snprintf(r->warning, sizeof(r->warning), "%s: %s: listing again (objects missing from the "
		 "new list are deleted)", r->name, why);
	r->n_gone++;
	r->n_relists++;
	r->rv[0] = '\0';
	free(r->cont);
	r->cont = NULL;
	r->state = KR_LIST;
}

static void refl_set_rv_meta(struct kube_refl *r, json_t *meta)
{
	const char *rv = json_string_value(json_object_get(meta, "resourceVersion"));

	if (rv && *rv)
		snprintf(r->rv, sizeof(r->rv), "%s", rv);
}

static void refl_set_rv(struct kube_refl *r, json_t *obj)
{
	refl_set_rv_meta(r, json_object_get(obj, "metadata"));
}

/* ---- a List body cut into its items (kube_list_split) ---- */

static const char *ls_ws(const char *p, const char *e)
{
	while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* p at '"': past the closing quote, or NULL. */
static const char *ls_string(const char *p, const char *e)
{
	for (p++; p < e; p++) {
		if (*p == '\\')
			p++;
		else if (*p == '"')
			return p + 1;
	}
	return NULL;
}

/* p at a value: past it, or NULL (brackets are counted, not matched: jansson checks). */
static const char *ls_value(const char *p, const char *e)
{
	const char *s = p;
	size_t depth = 0;

	if (p >= e)
		return NULL;
	if (*p == '"')
		return ls_string(p, e);
	if (*p != '{' && *p != '[') {
		while (p < e && !strchr(",}] \t\r\n", *p))
			p++;
		return p > s ? p : NULL;
	}
	while (p < e) {
		if (*p == '"') {
			if (!(p = ls_string(p, e)))
				return NULL;
			continue;
		}
		if (*p == '{' || *p == '[')
			depth++;
		else if ((*p == '}' || *p == ']') && --depth == 0)
			return p + 1;
		p++;
	}
	return NULL;
}

static bool ls_key_is(const char *k, const char *ke, const char *name)
{
	size_t n = strlen(name);

	return (size_t)(ke - k) == n + 2 && !memcmp(k + 1, name, n);
}

/* The elements of the array at p ('['), appended to *items. */
static const char *ls_items(const char *p, const char *e, struct kube_span **items, size_t *n,
			    size_t *cap, int *err)
{
	p = ls_ws(p + 1, e);
	if (p < e && *p == ']')
		return p + 1;
	while (p < e) {
		const char *v = ls_value(p, e);

		if (!v)
			return NULL;
		if (*n == *cap) {
			size_t nc = *cap ? *cap * 2 : 512;
			struct kube_span *g = realloc(*items, nc * sizeof(*g));

			if (!g) {
				*err = -ENOMEM;
				return NULL;
			}
			*items = g;
			*cap = nc;
		}
		(*items)[(*n)++] = (struct kube_span){ p, (size_t)(v - p) };
		p = ls_ws(v, e);
		if (p < e && *p == ']')
			return p + 1;
		if (p >= e || *p != ',')
			return NULL;
		p = ls_ws(p + 1, e);
	}
	return NULL;
}

int kube_list_split(const char *body, size_t len, struct kube_span *meta, struct kube_span **items,
		    size_t *n)
{
	const char *p = body, *e = body + len;
	size_t cap = 0;
	bool have_items = false;
	int err = -EINVAL;

	*meta = (struct kube_span){ NULL, 0 };
	*items = NULL;
	*n = 0;
	p = ls_ws(p, e);
	if (p >= e || *p != '{')
		goto bad;
	p = ls_ws(p + 1, e);
	while (p < e && *p != '}') {
		const char *k = p, *ke, *v;

		if (*p != '"' || !(ke = ls_string(p, e)))
			goto bad;
		p = ls_ws(ke, e);
		if (p >= e || *p != ':')
			goto bad;
		p = ls_ws(p + 1, e);
		if (ls_key_is(k, ke, "items") && p < e && *p == '[') {
			*n = 0;		/* a repeated key: the last one counts, as in jansson */
			if (!(v = ls_items(p, e, items, n, &cap, &err)))
				goto bad;
			have_items = true;
		} else if (!(v = ls_value(p, e))) {
			goto bad;
		} else if (ls_key_is(k, ke, "metadata")) {
			*meta = (struct kube_span){ p, (size_t)(v - p) };
		} else if (ls_key_is(k, ke, "items")) {
			have_items = false;	/* not an array */
		}
		p = ls_ws(v, e);
		if (p < e && *p == ',')
			p = ls_ws(p + 1, e);
		else if (p >= e || *p != '}')
			goto bad;
	}
	if (p >= e || ls_ws(p + 1, e) != e || !have_items)
		goto bad;
	return 0;
bad:
	free(*items);
	*items = NULL;
	*n = 0;
	return err;
}

/*
 * The object as the policy loader reads it: kind and apiVersion set (list
 * items lack them; metadata-only objects say PartialObjectMetadata), the
 * server's bookkeeping that nothing reads dropped, parsed. obj is changed,
 * not taken. Reads only r's kind and version: list pages call it on several
 * threads, each on other items.
 */
static int refl_doc(const struct kube_refl *r, json_t *obj, struct kube_doc **out)
{
	json_t *meta = json_object_get(obj, "metadata");
	const char *name = json_string_value(json_object_get(meta, "name"));
	const char *ns = json_string_value(json_object_get(meta, "namespace"));
	char id[600], api[96];

	*out = NULL;
	if (!json_is_object(obj) || !name)
		return -EPROTO;
	if (r->kind->group[0])
		snprintf(api, sizeof(api), "%s/%s", r->kind->group, r->version);
	else
		snprintf(api, sizeof(api), "%s", r->version);
	json_object_set_new(obj, "apiVersion", json_string(api));
	json_object_set_new(obj, "kind", json_string(r->kind->kind));
	/*
	 * Held for as long as the object exists: only what sockmesh reads
	 * (client-go's SetTransform, as Cilium trims its informers' objects).
	 * A change to these alone (a new resourceVersion) is no change.
	 */
	json_object_del(meta, "managedFields");
	json_object_del(meta, "resourceVersion");
	json_object_del(meta, "creationTimestamp");
	json_object_del(meta, "generation");
	json_object_del(meta, "selfLink");
	if (strcmp(r->kind->kind, "Pod"))
		json_object_del(meta, "uid");	/* a Pod's is read (its cgroup) */
	json_object_del(json_object_get(meta, "annotations"),
			"kubectl.kubernetes.io/last-applied-configuration");
	kube_identity(id, sizeof(id), r->kind->kind, r->kind->namespaced ? ns : NULL, name);
	/* parsed here, on the client's thread(s), as the pages arrive */
	*out = kube_doc_new_json(id, obj);
	return *out ? 0 : -ENOMEM;
}

/* refl_doc, then into the store. Takes ownership of obj. */
static int refl_put(struct kube_refl *r, json_t *obj)
{
	struct kube_doc *doc;
	int ret = refl_doc(r, obj, &doc);

	json_decref(obj);
	if (ret)
		return ret;
	ret = kube_store_put(r->store, doc, r->id, r->prio, r->gen);
	return ret < 0 ? ret : 0;
}

/*
 * A list page's items made into documents, by up to REFL_PAGE_THREADS
 * threads: each item's text parsed by the thread that takes it (spans), or
 * the items of the page parsed whole (items).
 */
struct refl_page {
	const struct kube_refl *r;
	json_t *items;
	const struct kube_span *spans;
	struct kube_doc **docs;
	int *rets;
	size_t n;
	size_t next;		/* atomic: the next item to take */
	bool bad;		/* atomic: an item's text did not parse */
};

#define REFL_PAGE_THREADS 4
#define REFL_PAGE_PARALLEL_MIN 64	/* items: below, one thread */

static void *refl_page_worker(void *arg)
{
	struct refl_page *pg = arg;

	for (;;) {
		size_t i = __atomic_fetch_add(&pg->next, 1, __ATOMIC_RELAXED);

		json_t *obj;

		if (i >= pg->n)
			return NULL;
		if (pg->items) {
			pg->rets[i] = refl_doc(pg->r, json_array_get(pg->items, i), &pg->docs[i]);
			continue;
		}
		obj = json_loadb(pg->spans[i].p, pg->spans[i].len, 0, NULL);
		if (!obj) {
			__atomic_store_n(&pg->bad, true, __ATOMIC_RELAXED);
			pg->rets[i] = -EINVAL;
			continue;
		}
		pg->rets[i] = refl_doc(pg->r, obj, &pg->docs[i]);
		json_decref(obj);
	}
}

static void refl_page_parse(struct refl_page *pg)
{
	pthread_t tid[REFL_PAGE_THREADS - 1];
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	size_t want = pg->n < REFL_PAGE_PARALLEL_MIN || cpus < 2 ? 1 :
		      cpus > REFL_PAGE_THREADS ? REFL_PAGE_THREADS : (size_t)cpus;
	size_t k = 0;

	for (; k + 1 < want; k++)
		if (pthread_create(&tid[k], NULL, refl_page_worker, pg))
			break;	/* fewer threads, same result */
	refl_page_worker(pg);
	while (k--)
		pthread_join(tid[k], NULL);
}

static void refl_on_discover(struct kube_refl *r, long status, const char *body, size_t len,
			     uint64_t now_ns)
{
	json_t *j, *vs, *v;
	size_t i;

	if (status == 404) {
		refl_absent(r, now_ns);
		return;
	}
	if (status != 200) {
		refl_error(r, "discovery", status, body, len);
		refl_backoff(r, KR_DISCOVER, now_ns);
		return;
	}
	j = json_loadb(body, len, 0, NULL);
	vs = json_object_get(j, "versions");
	r->version[0] = '\0';
	for (size_t p = 0; p < 3 && !r->version[0]; p++)
		json_array_foreach(vs, i, v) {
			const char *ver = json_string_value(json_object_get(v, "version"));

			if (ver && !strcmp(ver, kube_istio_versions[p])) {
				snprintf(r->version, sizeof(r->version), "%s", ver);
				break;
			}
		}
	json_decref(j);
	if (!r->version[0]) {
		/* the group is there, but none of the versions we read */
		refl_absent(r, now_ns);
		return;
	}
	r->absent = false;
	r->state = KR_LIST;
}

static void refl_on_list(struct kube_refl *r, long status, const char *body, size_t len,
			 uint64_t now_ns)
{
	struct kube_span mspan, *spans = NULL;
	struct refl_page pg;
	json_t *j = NULL, *items = NULL, *meta = NULL;
	const char *cont;
	size_t i, n_spans = 0;
	int ret = 0, split;

	if (status == 404) {
		refl_absent(r, now_ns);
		return;
	}
	if (status == 410 && r->cont) {
		/* the continue token expired: list again from the start */
		refl_relist(r, "continue token expired (410)");
		return;
	}
	if (status != 200) {
		refl_error(r, "list", status, body, len);
		free(r->cont);
		r->cont = NULL;
		refl_backoff(r, KR_LIST, now_ns);
		return;
	}
	/*
	 * Each item parsed by the thread that takes it (a page of 500 is ~10
	 * ms on one), put in order; a body that does not cut cleanly (or an
	 * item that does not parse) is parsed whole, which says why.
	 */
	split = kube_list_split(body, len, &mspan, &spans, &n_spans);
	if (!split && mspan.p && !(meta = json_loadb(mspan.p, mspan.len, 0, NULL)))
		split = -EINVAL;
whole:
	if (split) {
		free(spans);
		spans = NULL;
		j = json_loadb(body, len, 0, NULL);
		items = json_object_get(j, "items");
		if (!json_is_array(items)) {
			json_decref(j);
			refl_error(r, "list", status, "not a List", 10);
			refl_backoff(r, KR_LIST, now_ns);
			return;
		}
		meta = json_incref(json_object_get(j, "metadata"));
	}
	pg = (struct refl_page){ .r = r, .items = items, .spans = spans,
				 .n = items ? json_array_size(items) : n_spans };
	pg.docs = calloc(pg.n + 1, sizeof(*pg.docs));
	pg.rets = calloc(pg.n + 1, sizeof(*pg.rets));
	if (!pg.docs || !pg.rets)
		ret = -ENOMEM;
	else
		refl_page_parse(&pg);
	if (!ret && pg.bad) {
		for (i = 0; i < pg.n; i++)
			kube_doc_put(pg.docs[i]);
		free(pg.docs);
		free(pg.rets);
		json_decref(meta);
		meta = NULL;
		split = -EINVAL;
		goto whole;
	}
	for (i = 0; !ret && i < pg.n; i++) {
		int pret = pg.rets[i];

		if (!pret) {
			pret = kube_store_put(r->store, pg.docs[i], r->id, r->prio, r->gen);
			pg.docs[i] = NULL;
		}
		if (pret == -EPROTO)	/* skipped, with a warning: the rest is good */
			snprintf(r->warning, sizeof(r->warning), "%s: list: an item without "
				 "metadata.name skipped", r->name);
		else if (pret < 0)
			ret = pret;
	}
	for (i = 0; pg.docs && i < pg.n; i++)
		kube_doc_put(pg.docs[i]);	/* after an error: not put */
	free(pg.docs);
	free(pg.rets);
	free(spans);
	cont = json_string_value(json_object_get(meta, "continue"));
	free(r->cont);
	r->cont = cont && *cont ? strdup(cont) : NULL;
	if (!r->cont)
		refl_set_rv_meta(r, meta);
	json_decref(meta);
	json_decref(j);
	if (ret) {
		snprintf(r->last_error, sizeof(r->last_error), "list: %s", strerror(-ret));
		free(r->cont);
		r->cont = NULL;
		refl_backoff(r, KR_LIST, now_ns);
		return;
	}
	if (r->cont)
		return;		/* next page at once */
	kube_store_sweep(r->store, r->id, r->gen);
	r->n_lists++;
	r->synced = true;
	r->absent = false;
	refl_ok(r);
	r->state = KR_WATCH;
}

void kube_refl_on_response(struct kube_refl *r, enum kube_req req, long status,
			   const char *body, size_t len, uint64_t now_ns)
{
	if (req == KUBE_REQ_DISCOVER)
		refl_on_discover(r, status, body, len, now_ns);
	else
		refl_on_list(r, status, body, len, now_ns);
}

int kube_refl_on_event(struct kube_refl *r, const char *line, size_t len, uint64_t now_ns)
{
	json_t *ev = json_loadb(line, len, 0, NULL), *obj;
	const char *type = json_string_value(json_object_get(ev, "type"));
	int ret = 0;

	obj = json_object_get(ev, "object");
	if (!type || !json_is_object(obj)) {
		json_decref(ev);
		snprintf(r->last_error, sizeof(r->last_error), "watch: not an event: %.60s", line);
		return -EPROTO;
	}
	if (!strcmp(type, "ADDED") || !strcmp(type, "MODIFIED")) {
		refl_set_rv(r, obj);
		ret = refl_put(r, json_incref(obj));
		if (ret == -EPROTO) {
			/* resuming would bring it again: skip it, say so, go on */
			snprintf(r->warning, sizeof(r->warning), "%s: watch: a %s object without "
				 "metadata.name skipped", r->name, type);
			ret = 0;
		}
		r->n_events++;
	} else if (!strcmp(type, "DELETED")) {
		json_t *meta = json_object_get(obj, "metadata");
		const char *name = json_string_value(json_object_get(meta, "name"));
		const char *ns = json_string_value(json_object_get(meta, "namespace"));
		char id[600];

		refl_set_rv(r, obj);
		if (name)
			kube_store_del(r->store, kube_identity(id, sizeof(id), r->kind->kind,
							      r->kind->namespaced ? ns : NULL, name),
				       r->id);
		r->n_events++;
	} else if (!strcmp(type, "BOOKMARK")) {
		refl_set_rv(r, obj);
		r->n_bookmarks++;
	} else if (!strcmp(type, "ERROR")) {
		json_int_t code = json_integer_value(json_object_get(obj, "code"));

		if (code == 410) {
			refl_relist(r, "watch: 410 Gone (resourceVersion compacted)");
			ret = -ESTALE;
		} else {
			refl_error(r, "watch", (long)code, line, len);
			ret = -EPROTO;
		}
	} else {
		ret = -EPROTO;
	}
	if (!ret) {
		refl_ok(r);
		r->watch_events++;
	}
	json_decref(ev);
	return ret;
}

void kube_refl_on_watch_end(struct kube_refl *r, long status, bool ok, const char *body,
			    size_t len, uint64_t now_ns)
{
	if (r->state != KR_WATCH)
		return;		/* an ERROR 410 event already asked for a list */
	if (status == 200 && ok && (r->watch_events ||
				    now_ns - r->watch_start_ns >= KUBE_WATCH_SHORT_MS * 1000000ull)) {
		r->state = KR_WATCH;	/* timeoutSeconds ran out: on from rv */
		return;
	}
	if (status == 200 && ok) {
		/* at once and empty: not a real watch; do not hammer the server */
		snprintf(r->last_error, sizeof(r->last_error), "watch: closed at once without an event");
		refl_backoff(r, KR_WATCH, now_ns);
		return;
	}
	if (status == 410) {
		refl_relist(r, "watch: HTTP 410 Gone");
		return;
	}
	if (status == 404) {
		refl_absent(r, now_ns);
		return;
	}
	/* broken stream, auth or server error: back off, resume from rv */
	if (status != 200 || !r->last_error[0])	/* else: what broke it (not an event) */
		refl_error(r, "watch", status == 200 ? 0 : status,
			   status == 200 ? "stream broken" : body, status == 200 ? 13 : len);
	refl_backoff(r, r->rv[0] ? KR_WATCH : KR_LIST, now_ns);
}
