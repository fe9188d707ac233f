/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * kube: the agent as a Kubernetes API client (list+watch, as client-go's
 * reflector does), feeding objects by identity into the policy loader.
 *
 *   kubeconfig.c  credentials: kubectl's kubeconfig, or in-cluster
 *   store.c       objects by identity ("Kind ns/name" -> JSON document),
 *                 with the set of identities changed since the last take
 *   reflector.c   one kind's list/watch state machine (pure: the transport
 *                 and the clock are the caller's)
 *   client.c      libcurl multi (HTTP/2: all watches on one connection,
 *                 TLS) on its own thread, driving the reflectors
 *
 * Library code: no printing; 0 / -errno; messages into err buffers or
 * into the status the client reports.
 */
#ifndef SOCKMESH_KUBE_H
#define SOCKMESH_KUBE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KUBE_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

/* ---- credentials (kubeconfig.c) ---- */
struct kube_creds {
	char *server;		/* "https://host:port", no trailing '/' */
	char *ca_file;		/* certificate-authority (absolute path) or NULL */
	char *ca_pem;		/* certificate-authority-data, decoded, or NULL */
	size_t ca_pem_len;
	bool insecure;		/* insecure-skip-tls-verify */
	char *token;		/* user token, or NULL */
	char *token_file;	/* user tokenFile (re-read when it changes) or NULL */
	char *cert_file, *key_file;	/* client-certificate / client-key */
	char *cert_pem, *key_pem;	/* their -data forms, decoded */
	size_t cert_pem_len, key_pem_len;
	char *context;		/* the context used ("in-cluster" for in-cluster) */
};

/*
 * kubectl's kubeconfig: the current-context (or context, when not NULL),
 * its cluster and user. Relative paths are relative to the file's
 * directory, as kubectl resolves them. Returns 0 or -errno with a
 * one-line reason in err.
 */
int kube_config_load(const char *path, const char *context, struct kube_creds *c,
		     char *err, size_t errlen);
/*
 * In-cluster: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT,
 * the service account's token file and CA under sa_dir (KUBE_SA_DIR).
 */
int kube_config_in_cluster(const char *sa_dir, struct kube_creds *c, char *err, size_t errlen);
void kube_creds_free(struct kube_creds *c);

/* ---- kinds ---- */
enum kube_kind_id {
	KUBE_NAMESPACE = 0,
	KUBE_SERVICE,
	KUBE_ENDPOINTSLICE,
	KUBE_POD,
	KUBE_VIRTUALSERVICE,
	KUBE_DESTINATIONRULE,
	KUBE_GATEWAY,
	KUBE_KIND_COUNT,
};

struct kube_kind {
	const char *kind;	/* "EndpointSlice" */
	const char *group;	/* "" (core), "discovery.k8s.io", "networking.istio.io" */
	const char *version;	/* served version; NULL: discovered (Istio) */
	const char *resource;	/* "endpointslices" */
	bool namespaced;
};

extern const struct kube_kind kube_kinds[KUBE_KIND_COUNT];
/* Istio's networking versions, most preferred first. */
extern const char *const kube_istio_versions[3];

/* ---- object store (store.c) ---- */

struct pol_doc;

/*
 * One object as a document for the policy loader: its compact JSON (kind
 * and apiVersion set; managedFields, the last-applied annotation and the
 * server's bookkeeping that nothing reads dropped, see reflector.c).
 * Immutable once made; shared by reference count between the store, a
 * view and a reload in progress. Made from a list page or watch event, it
 * is the object already parsed (pd), and its text is pd's: the object is
 * held once, by the store and the policy cache alike.
 */
struct kube_doc {
	uint32_t refs;		/* atomic */
	uint32_t len;		/* of text, without the NUL */
	char *name;		/* identity: "Kind ns/name" ("Namespace name") */
	const char *text;	/* NUL-terminated JSON: pd's, else owned */
	struct pol_doc *pd;	/* the parsed object (a reference) or NULL */
};

/*
 * obj as compact JSON, byte for byte what json_dumps(obj, JSON_COMPACT |
 * JSON_PRESERVE_ORDER) writes (the document text of an object), in about
 * half its time: one pass into one growing buffer, strings copied in runs
 * between the characters JSON escapes. malloc'd, NUL-terminated, *len
 * without the NUL; NULL with errno on failure.
 */
char *kube_json_compact(const json_t *obj, size_t *len);
/* A document of a copy of text, not parsed. */
struct kube_doc *kube_doc_new(const char *name, const char *text, size_t len);
/* The document of the JSON object obj, parsed now (policy_doc_parse_json). */
struct kube_doc *kube_doc_new_json(const char *name, const json_t *obj);
struct kube_doc *kube_doc_get(struct kube_doc *d);
void kube_doc_put(struct kube_doc *d);

/* "Kind ns/name" into buf (len >= 2 * 253 + 32 holds any); returns buf. */
char *kube_identity(char *buf, size_t len, const char *kind, const char *ns, const char *name);

struct kube_store;
/*
 * notify_fd >= 0: an eventfd written when the first change after a take
 * is recorded (the agent's poll loop wakes up). Thread-safe.
 */
struct kube_store *kube_store_new(int notify_fd);
void kube_store_free(struct kube_store *st);

/*
 * Put the object name (a document taking ownership of one reference of
 * doc) for owner (a reflector id) in generation gen (relists sweep the
 * older ones). An entry of a higher-priority owner (prio) is not replaced
 * by a lower one. Returns 1 (changed: recorded), 0 (same text) or -errno.
 */
int kube_store_put(struct kube_store *st, struct kube_doc *doc, uint32_t owner, uint32_t prio,
		   uint64_t gen);
/* Delete name if owner holds it. 1: deleted, 0: not there. */
int kube_store_del(struct kube_store *st, const char *name, uint32_t owner);
/* Delete every object of owner not put in generation gen (relist: the
 * objects missing from the new list are deletions). Returns how many. */
size_t kube_store_sweep(struct kube_store *st, uint32_t owner, uint64_t gen);
size_t kube_store_count(struct kube_store *st, uint32_t owner);

/* A change: the object's new document (a reference), NULL when deleted. */
struct kube_change {
	char *name;			/* malloc'd */
	struct kube_doc *doc;
};

/*
 * Changes recorded since the last take (each identity once, latest state).
 * since_ns (may be NULL): when the oldest of them was recorded
 * (CLOCK_MONOTONIC), for the propagation delay.
 */
int kube_store_take(struct kube_store *st, struct kube_change **out, size_t *n, uint64_t *since_ns);
void kube_changes_free(struct kube_change *c, size_t n);
/* Every document (references), sorted by identity. */
int kube_store_snapshot(struct kube_store *st, struct kube_doc ***out, size_t *n);
void kube_docs_free(struct kube_doc **d, size_t n);
/* The document of name (a reference) or NULL. */
struct kube_doc *kube_store_get(struct kube_store *st, const char *name);

/* ---- reflector (reflector.c): one kind's list+watch ---- */
enum kube_refl_state {
	KR_DISCOVER = 0,	/* Istio: GET /apis/networking.istio.io */
	KR_LIST,		/* paginated LIST */
	KR_WATCH,		/* WATCH from rv */
	KR_WAIT,		/* backoff, or an absent kind's recheck */
};

enum kube_req {
	KUBE_REQ_NONE = 0,
	KUBE_REQ_DISCOVER,
	KUBE_REQ_LIST,
	KUBE_REQ_WATCH,
};

#define KUBE_LIST_LIMIT 500
#define KUBE_BACKOFF_MIN_MS 500
#define KUBE_BACKOFF_MAX_MS 30000
#define KUBE_ABSENT_RECHECK_MS 60000	/* a CRD that is not installed */
#define KUBE_WATCH_TIMEOUT_MIN_S 300	/* watch timeoutSeconds: random in */
#define KUBE_WATCH_TIMEOUT_MAX_S 600	/* [MIN, MAX], as client-go's 5-10 min */
#define KUBE_WATCH_SHORT_MS 1000	/* a watch closed sooner without an event is
					 * an error (client-go's "very short watch") */

struct kube_refl {
	const struct kube_kind *kind;
	uint32_t id;			/* store owner */
	uint32_t prio;			/* full objects over metadata-only */
	char name[48];			/* "Pod (this node)", for status */
	char *field_selector;		/* NULL or "spec.nodeName=node" */
	bool meta_only;			/* PartialObjectMetadata */
	struct kube_store *store;

	enum kube_refl_state state;
	enum kube_refl_state after_wait;
	char version[16];		/* served version (discovered for Istio) */
	char rv[64];			/* resourceVersion to watch from; "" = list */
	char *cont;			/* continue token while paging */
	uint64_t gen;			/* list generation (store sweep) */
	uint64_t due_ns;		/* KR_WAIT until */
	uint64_t watch_start_ns;	/* of the open watch */
	uint64_t watch_events;		/* events and bookmarks on it */
	uint32_t failures;		/* consecutive, for the backoff */
	uint64_t rnd;			/* xorshift state: jitter, watch timeouts */
	bool synced;			/* listed once (or absent) */
	bool absent;			/* 404: kind not served (CRD not installed) */
	bool absent_warned;
	uint32_t absent_recheck_ms;	/* KUBE_ABSENT_RECHECK_MS (tests: shorter) */
	uint64_t n_events, n_bookmarks, n_relists, n_lists, n_watches, n_errors;
	uint64_t n_gone;		/* 410s */
	int last_status;		/* last HTTP status */
	char last_error[200];		/* "" after a success */
	char warning[200];		/* a new warning for the log, taken by the client */
};

/* id: store owner; field_selector may be NULL; rnd_seed != 0. */
void kube_refl_init(struct kube_refl *r, const struct kube_kind *kind, uint32_t id, uint32_t prio,
		    const char *field_selector, bool meta_only, struct kube_store *st,
		    uint64_t rnd_seed);
void kube_refl_fini(struct kube_refl *r);
/*
 * What to fetch now: KUBE_REQ_NONE while waiting (*due_ns says until
 * when), else the request whose path (with query) is written to path and
 * Accept header to *accept.
 */
enum kube_req kube_refl_next(struct kube_refl *r, uint64_t now_ns, char *path, size_t len,
			     const char **accept, uint64_t *due_ns);
/* A whole response to a DISCOVER or LIST request (status 0: transport error). */
void kube_refl_on_response(struct kube_refl *r, enum kube_req req, long status,
			   const char *body, size_t len, uint64_t now_ns);
/*
 * One line of a watch stream (one event). Returns 0, or -ESTALE when the
 * stream must be dropped (410 Gone: the reflector relists), -EPROTO for a
 * line that is not an event (the stream is dropped and resumed).
 */
int kube_refl_on_event(struct kube_refl *r, const char *line, size_t len, uint64_t now_ns);
/* The watch ended: status 200 and ok = closed by the server (timeoutSeconds). */
void kube_refl_on_watch_end(struct kube_refl *r, long status, bool ok, const char *body,
			    size_t len, uint64_t now_ns);
/*
 * A List response body cut into the top-level "metadata" value and each
 * element of its "items" array, as byte ranges, so that every item is
 * parsed on its own (on several threads, each freeing its own) instead of
 * the whole page at once on the client's thread. Checks the structure only
 * (strings, nesting): the values are parsed later, and an item that does
 * not parse sends the page back to json_loadb of the whole, which says
 * why. 0; -EINVAL: not an object with an "items" array (parse it whole);
 * -ENOMEM. *items is malloc'd (NULL when empty); meta->p NULL when absent.
 */
struct kube_span {
	const char *p;
	size_t len;
};
int kube_list_split(const char *body, size_t len, struct kube_span *meta, struct kube_span **items,
		    size_t *n);
/* The backoff after failures consecutive errors, jittered: in ms. */
uint64_t kube_backoff_ms(uint32_t failures, uint64_t *rnd);
const char *kube_refl_state_str(enum kube_refl_state s);

/* ---- YAML output (yaml_out.c) ---- */
#include <stdio.h>
/* The objects of the array objs as YAML documents ("---" each) on f. 0 or -errno. */
int kube_yaml_dump(json_t *objs, FILE *f);

/* ---- client (client.c) ---- */
struct kube_client;
struct kube_client_opts {
	const struct kube_creds *creds;
	const char *node_name;		/* NULL: every Pod in full */
	struct kube_store *store;
	uint64_t rnd_seed;
	uint32_t absent_recheck_ms;	/* 0: KUBE_ABSENT_RECHECK_MS */
	bool curl_verbose;		/* libcurl's own trace on stderr (agent -vv) */
};
/* Starts the client's thread. NULL with errno and err on failure. */
struct kube_client *kube_client_start(const struct kube_client_opts *o, char *err, size_t errlen);
void kube_client_stop(struct kube_client *c);
/* Every kind listed at least once (or absent). syncing (may be NULL) gets
 * the names of the kinds still syncing. */
bool kube_client_synced(struct kube_client *c, json_t *syncing);
/* The API server answered the last request (no transport error, no 5xx) */
bool kube_client_reachable(struct kube_client *c, uint64_t *since_ns);
/*
 * When the first LIST request went out (CLOCK_MONOTONIC ns) and the
 * process's CPU time then (CLOCK_PROCESS_CPUTIME_ID ns); 0 before it.
 */
void kube_client_first_list(struct kube_client *c, uint64_t *mono_ns, uint64_t *cpu_ns);
/* {server, context, reachable, kinds: [...]} */
json_t *kube_client_status(struct kube_client *c);
/* Warnings the reflectors raised since the last call, one per line (malloc'd) or NULL. */
char *kube_client_take_warnings(struct kube_client *c);
struct kube_client_counters {
	uint64_t bytes_rx, requests, events, relists, errors, gone;
};
void kube_client_counters(struct kube_client *c, struct kube_client_counters *out);

#endif /* SOCKMESH_KUBE_H */
