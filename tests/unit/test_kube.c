// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * user/kube: kubeconfig parsing, the object store, and the reflector's
 * state machine driven with canned API answers and a fake clock (no
 * network: the reflector is pure, the client only carries its requests).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kube/kube.h"
#include "policy/policy.h"
#include "test.h"

static char *kt_write(const char *dir, const char *name, const char *text)
{
	static char path[4][512];
	static int k;
	char *p = path[k++ % 4];
	FILE *f;

	snprintf(p, 512, "%s/%s", dir, name);
	f = fopen(p, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
	return p;
}

static char *kt_dir(void)
{
	static char d[64];

	snprintf(d, sizeof(d), "/tmp/sm-unit-kube.XXXXXX");
	return mkdtemp(d);
}

static void kt_rmdir(const char *d, const char *const *files)
{
	char p[512];

	for (; *files; files++) {
		snprintf(p, sizeof(p), "%s/%s", d, *files);
		unlink(p);
	}
	rmdir(d);
}

static const char kt_kubeconfig[] =
	"apiVersion: v1\n"
	"kind: Config\n"
	"current-context: b\n"
	"clusters:\n"
	"- name: c1\n"
	"  cluster: {server: 'https://10.0.0.1:6443/', certificate-authority: certs/ca.crt}\n"
	"- name: c2\n"
	"  cluster:\n"
	"    server: https://api.example:443\n"
	"    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==\n"
	"    insecure-skip-tls-verify: true\n"
	"contexts:\n"
	"- {name: a, context: {cluster: c1, user: u1}}\n"
	"- {name: b, context: {cluster: c2, user: u2, namespace: kube-system}}\n"
	"users:\n"
	"- name: u1\n"
	"  user: {tokenFile: /var/run/tok, client-certificate: c.crt, client-key: /abs/c.key}\n"
	"- name: u2\n"
	"  user:\n"
	"    token: abc.def\n"
	"    client-certificate-data: Y2VydA==\n"
	"    client-key-data: a2V5\n";

TEST(kube_config_current_context)
{
	char *d = kt_dir(), err[256];
	struct kube_creds c;

	if (!ASSERT_TRUE(d))
		return;
	ASSERT_EQ(kube_config_load(kt_write(d, "config", kt_kubeconfig), NULL, &c, err, sizeof(err)), 0);
	ASSERT_STREQ(c.server, "https://api.example:443");
	ASSERT_STREQ(c.context, "b");
	ASSERT_TRUE(c.insecure);
	ASSERT_STREQ(c.ca_pem, "-----BEGIN CERTIFICATE-----\n");
	ASSERT_STREQ(c.token, "abc.def");
	ASSERT_STREQ(c.cert_pem, "cert");
	ASSERT_EQ(c.key_pem_len, 3);
	ASSERT_TRUE(!c.ca_file && !c.token_file);
	kube_creds_free(&c);
	kt_rmdir(d, (const char *const[]){ "config", NULL });
}

TEST(kube_config_named_context_relative_paths)
{
	char *d = kt_dir(), err[256], want[600];
	struct kube_creds c;

	if (!ASSERT_TRUE(d))
		return;
	ASSERT_EQ(kube_config_load(kt_write(d, "config", kt_kubeconfig), "a", &c, err, sizeof(err)), 0);
	ASSERT_STREQ(c.server, "https://10.0.0.1:6443");	/* trailing '/' dropped */
	ASSERT_FALSE(c.insecure);
	snprintf(want, sizeof(want), "%s/certs/ca.crt", d);	/* as kubectl: next to the file */
	ASSERT_STREQ(c.ca_file, want);
	snprintf(want, sizeof(want), "%s/c.crt", d);
	ASSERT_STREQ(c.cert_file, want);
	ASSERT_STREQ(c.key_file, "/abs/c.key");
	ASSERT_STREQ(c.token_file, "/var/run/tok");
	ASSERT_TRUE(!c.token);
	kube_creds_free(&c);
	kt_rmdir(d, (const char *const[]){ "config", NULL });
}

TEST(kube_config_errors)
{
	static const struct {
		const char *desc, *text, *context, *want;
	} cases[] = {
		{ "no current-context", "apiVersion: v1\nclusters: []\n", NULL, "no current-context" },
		{ "unknown context", kt_kubeconfig, "zz", "context \"zz\" not found" },
		{ "cluster without server", "current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\n"
		  "clusters: [{name: c, cluster: {}}]\n", NULL, "cluster \"c\" not found or without server" },
		{ "exec plugin", "current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
		  "clusters: [{name: c, cluster: {server: 'https://a'}}]\n"
		  "users: [{name: u, user: {exec: {command: aws}}}]\n", NULL, "exec and auth-provider" },
		{ "bad base64", "current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\n"
		  "clusters: [{name: c, cluster: {server: 'https://a', certificate-authority-data: '#!'}}]\n",
		  NULL, "certificate-authority-data: not base64" },
		{ "certificate without key", "current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
		  "clusters: [{name: c, cluster: {server: 'https://a'}}]\n"
		  "users: [{name: u, user: {client-certificate: c.crt}}]\n", NULL, "needs its key" },
		{ "not a URL", "current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\n"
		  "clusters: [{name: c, cluster: {server: 'a:6443'}}]\n", NULL, "expected https://" },
		{ "not YAML", "a: [b\n", NULL, "config:" },
	};
	char *d = kt_dir(), err[256];
	struct kube_creds c;

	if (!ASSERT_TRUE(d))
		return;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		if (!ASSERT_EQ(kube_config_load(kt_write(d, "config", cases[i].text), cases[i].context, &c,
						err, sizeof(err)) < 0, 1))
			fprintf(stderr, "  case: %s\n", cases[i].desc);
		if (!ASSERT_STRSTR(err, cases[i].want))
			fprintf(stderr, "  case: %s\n", cases[i].desc);
	}
	ASSERT_EQ(kube_config_load("/nonexistent/kubeconfig", NULL, &c, err, sizeof(err)), -EINVAL);
	kt_rmdir(d, (const char *const[]){ "config", NULL });
}

TEST(kube_config_in_cluster)
{
	char err[256];
	struct kube_creds c;

	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	ASSERT_EQ(kube_config_in_cluster("/sa", &c, err, sizeof(err)), 0);
	ASSERT_STREQ(c.server, "https://10.96.0.1:443");
	ASSERT_STREQ(c.token_file, "/sa/token");
	ASSERT_STREQ(c.ca_file, "/sa/ca.crt");
	kube_creds_free(&c);
	setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
	ASSERT_EQ(kube_config_in_cluster("/sa", &c, err, sizeof(err)), 0);
	ASSERT_STREQ(c.server, "https://[fd00::1]:443");
	kube_creds_free(&c);
	unsetenv("KUBERNETES_SERVICE_HOST");
	ASSERT_EQ(kube_config_in_cluster("/sa", &c, err, sizeof(err)), -EINVAL);
	ASSERT_STRSTR(err, "KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
}

static struct kube_doc *kt_doc(const char *name, const char *text)
{
	return kube_doc_new(name, text, strlen(text));
}

TEST(kube_store_changes_by_identity)
{
	struct kube_store *st = kube_store_new(-1);
	struct kube_change *c;
	struct kube_doc **docs;
	size_t n;

	if (!ASSERT_TRUE(st))
		return;
	ASSERT_EQ(kube_store_put(st, kt_doc("Service default/a", "{1}"), 1, 0, 1), 1);
	ASSERT_EQ(kube_store_put(st, kt_doc("Service default/b", "{2}"), 1, 0, 1), 1);
	ASSERT_EQ(kube_store_put(st, kt_doc("Service default/a", "{1}"), 1, 0, 1), 0);	/* same text */
	ASSERT_EQ(kube_store_put(st, kt_doc("Service default/a", "{3}"), 1, 0, 1), 1);
	ASSERT_EQ(kube_store_take(st, &c, &n, NULL), 0);
	ASSERT_EQ(n, 2);	/* each identity once, its latest state */
	for (size_t i = 0; i < n; i++)
		if (!strcmp(c[i].name, "Service default/a"))
			ASSERT_STREQ(c[i].doc->text, "{3}");
	kube_changes_free(c, n);
	ASSERT_EQ(kube_store_take(st, &c, &n, NULL), 0);
	ASSERT_EQ(n, 0);
	/* a delete by another owner is not one; by the owner it is */
	ASSERT_EQ(kube_store_del(st, "Service default/a", 2), 0);
	ASSERT_EQ(kube_store_del(st, "Service default/a", 1), 1);
	ASSERT_EQ(kube_store_take(st, &c, &n, NULL), 0);
	if (ASSERT_EQ(n, 1)) {
		ASSERT_STREQ(c[0].name, "Service default/a");
		ASSERT_TRUE(c[0].doc == NULL);
	}
	kube_changes_free(c, n);
	/* relist: what generation 2 did not put is deleted */
	ASSERT_EQ(kube_store_put(st, kt_doc("Service default/c", "{4}"), 1, 0, 2), 1);
	ASSERT_EQ(kube_store_sweep(st, 1, 2), 1);	/* b */
	ASSERT_EQ(kube_store_snapshot(st, &docs, &n), 0);
	if (ASSERT_EQ(n, 1))
		ASSERT_STREQ(docs[0]->name, "Service default/c");
	kube_docs_free(docs, n);
	/* a full object (priority 1) is not replaced by a metadata-only one */
	ASSERT_EQ(kube_store_put(st, kt_doc("Pod default/p", "{full}"), 5, 1, 1), 1);
	ASSERT_EQ(kube_store_put(st, kt_doc("Pod default/p", "{meta}"), 6, 0, 1), 0);
	ASSERT_EQ(kube_store_del(st, "Pod default/p", 6), 0);
	ASSERT_EQ(kube_store_count(st, 5), 1);
	kube_store_free(st);
}

TEST(kube_store_many)
{
	struct kube_store *st = kube_store_new(-1);
	struct kube_change *c;
	char name[64];
	size_t n;

	if (!ASSERT_TRUE(st))
		return;
	for (int i = 0; i < 5000; i++) {	/* past the table's growth steps */
		snprintf(name, sizeof(name), "EndpointSlice ns/s-%d", i);
		if (kube_store_put(st, kt_doc(name, "{}"), 1, 0, 1) != 1)
			break;
	}
	ASSERT_EQ(kube_store_count(st, 1), 5000);
	ASSERT_EQ(kube_store_take(st, &c, &n, NULL), 0);
	ASSERT_EQ(n, 5000);
	kube_changes_free(c, n);
	ASSERT_EQ(kube_store_sweep(st, 1, 2), 5000);
	ASSERT_EQ(kube_store_take(st, &c, &n, NULL), 0);
	ASSERT_EQ(n, 5000);
	kube_changes_free(c, n);
	ASSERT_EQ(kube_store_count(st, 1), 0);
	kube_store_free(st);
}

/* ---- reflector ---- */
#define MS 1000000ull

struct kt_refl {
	struct kube_store *st;
	struct kube_refl r;
	char path[2048];
	const char *accept;
	uint64_t due;
};

static void kt_refl_init(struct kt_refl *t, enum kube_kind_id k, const char *sel, bool meta)
{
	t->st = kube_store_new(-1);
	kube_refl_init(&t->r, &kube_kinds[k], 1, 0, sel, meta, t->st, 42);
}

static void kt_refl_fini(struct kt_refl *t)
{
	kube_refl_fini(&t->r);
	kube_store_free(t->st);
}

static enum kube_req kt_next(struct kt_refl *t, uint64_t now)
{
	return kube_refl_next(&t->r, now, t->path, sizeof(t->path), &t->accept, &t->due);
}

static void kt_resp(struct kt_refl *t, enum kube_req req, long status, const char *body, uint64_t now)
{
	kube_refl_on_response(&t->r, req, status, body, strlen(body), now);
}

static int kt_ev(struct kt_refl *t, const char *line)
{
	return kube_refl_on_event(&t->r, line, strlen(line), 0);
}

static size_t kt_take(struct kt_refl *t, const char *name, const char **text)
{
	static char buf[1024];
	struct kube_change *c;
	size_t n;

	*text = NULL;
	if (kube_store_take(t->st, &c, &n, NULL))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(c[i].name, name)) {
			snprintf(buf, sizeof(buf), "%s", c[i].doc ? c[i].doc->text : "(deleted)");
			*text = buf;
		}
	kube_changes_free(c, n);
	return n;
}

TEST(kube_refl_list_pages_then_watch)
{
	struct kt_refl t;
	const char *text;

	kt_refl_init(&t, KUBE_ENDPOINTSLICE, NULL, false);
	ASSERT_EQ(kt_next(&t, 0), KUBE_REQ_LIST);
	ASSERT_STREQ(t.path, "/apis/discovery.k8s.io/v1/endpointslices?limit=500");
	kt_resp(&t, KUBE_REQ_LIST, 200,
		"{\"metadata\": {\"resourceVersion\": \"10\", \"continue\": \"tok/1=\"}, \"items\": ["
		"{\"metadata\": {\"name\": \"a\", \"namespace\": \"ns\", \"managedFields\": [{}],"
		" \"resourceVersion\": \"9\", \"uid\": \"u-1\", \"creationTimestamp\": \"2026-01-01T00:00:00Z\","
		" \"generation\": 2, \"annotations\": {\"kubectl.kubernetes.io/last-applied-configuration\": \"{}\", \"x\": \"y\"}}}]}", 0);
	ASSERT_FALSE(t.r.synced);	/* one page of two */
	ASSERT_EQ(kt_next(&t, 0), KUBE_REQ_LIST);
	ASSERT_STREQ(t.path, "/apis/discovery.k8s.io/v1/endpointslices?limit=500&continue=tok%2F1%3D");
	kt_resp(&t, KUBE_REQ_LIST, 200,
		"{\"metadata\": {\"resourceVersion\": \"12\"}, \"items\": [{\"metadata\": {\"name\": \"b\", \"namespace\": \"ns\"}}]}", 0);
	ASSERT_TRUE(t.r.synced);
	ASSERT_STREQ(t.r.rv, "12");
	ASSERT_EQ(kt_take(&t, "EndpointSlice ns/a", &text), 2);
	/* kind and apiVersion set; the server's bookkeeping dropped */
	ASSERT_STREQ(text, "{\"metadata\":{\"name\":\"a\",\"namespace\":\"ns\",\"annotations\":"
		     "{\"x\":\"y\"}},\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\"}");
	ASSERT_EQ(kt_next(&t, 0), KUBE_REQ_WATCH);
	ASSERT_STRSTR(t.path, "?watch=true&resourceVersion=12&allowWatchBookmarks=true&timeoutSeconds=");
	{
		int secs = atoi(strstr(t.path, "timeoutSeconds=") + 15);

		ASSERT_GE(secs, KUBE_WATCH_TIMEOUT_MIN_S);
		ASSERT_LE(secs, KUBE_WATCH_TIMEOUT_MAX_S);
	}
	ASSERT_EQ(kt_ev(&t, "{\"type\": \"MODIFIED\", \"object\": {\"metadata\": {\"name\": \"a\", \"namespace\": \"ns\", \"resourceVersion\": \"13\"}, \"endpoints\": []}}"), 0);
	ASSERT_EQ(kt_take(&t, "EndpointSlice ns/a", &text), 1);
	/* a new resourceVersion alone (the bookkeeping the agent drops) is no change */
	ASSERT_EQ(kt_ev(&t, "{\"type\": \"MODIFIED\", \"object\": {\"metadata\": {\"name\": \"a\", \"namespace\": \"ns\", \"resourceVersion\": \"15\"}, \"endpoints\": []}}"), 0);
	ASSERT_EQ(kt_take(&t, "EndpointSlice ns/a", &text), 0);
	/* an object without a name is skipped (resuming would bring it again) */
	ASSERT_EQ(kt_ev(&t, "{\"type\": \"ADDED\", \"object\": {\"metadata\": {\"resourceVersion\": \"14\"}}}"), 0);
	ASSERT_STRSTR(t.r.warning, "without metadata.name skipped");
	ASSERT_EQ(kt_ev(&t, "{\"type\": \"BOOKMARK\", \"object\": {\"metadata\": {\"resourceVersion\": \"20\"}}}"), 0);
	ASSERT_STREQ(t.r.rv, "20");
	ASSERT_EQ(kt_ev(&t, "{\"type\": \"DELETED\", \"object\": {\"metadata\": {\"name\": \"b\", \"namespace\": \"ns\", \"resourceVersion\": \"21\"}}}"), 0);
	ASSERT_EQ(kt_take(&t, "EndpointSlice ns/b", &text), 1);
	ASSERT_STREQ(text, "(deleted)");
	/* the server ends the watch (timeoutSeconds): on from the last rv, at once */
	kube_refl_on_watch_end(&t.r, 200, true, "", 0, 0);
	ASSERT_EQ(kt_next(&t, 0), KUBE_REQ_WATCH);
	ASSERT_STRSTR(t.path, "resourceVersion=21&");
	/* closed at once without an event: backoff, not a tight loop */
	kube_refl_on_watch_end(&t.r, 200, true, "", 0, 10 * MS);
	ASSERT_EQ(t.r.state, KR_WAIT);
	ASSERT_EQ(kt_next(&t, 10 * MS), KUBE_REQ_NONE);
	ASSERT_EQ(kt_next(&t, t.r.due_ns), KUBE_REQ_WATCH);
	/* quiet but long: a normal end */
	kube_refl_on_watch_end(&t.r, 200, true, "", 0, t.r.due_ns + KUBE_WATCH_SHORT_MS * MS);
	ASSERT_EQ(t.r.state, KR_WATCH);
	kt_refl_fini(&t);
}

TEST(kube_refl_gone_relists_and_diffs)
{
	struct kt_refl t;
	const char *text;

	kt_refl_init(&t, KUBE_SERVICE, NULL, false);
	kt_next(&t, 0);
	kt_resp(&t, KUBE_REQ_LIST, 200, "{\"metadata\": {\"resourceVersion\": \"5\"}, \"items\": ["
		"{\"metadata\": {\"name\": \"a\", \"namespace\": \"d\"}}, {\"metadata\": {\"name\": \"b\", \"namespace\": \"d\"}}]}", 0);
	kt_take(&t, "", &text);
	ASSERT_EQ(kt_next(&t, 0), KUBE_REQ_WATCH);
	/* ERROR 410 mid-stream: drop the stream, list again */
	ASSERT_EQ(kt_ev(&t, "{\"type\": \"ERROR\", \"object\": {\"kind\": \"Status\", \"code\": 410}}"), -ESTALE);
	kube_refl_on_watch_end(&t.r, 200, false, "", 0, 0);	/* ignored: listing */
	ASSERT_EQ(kt_next(&t, 0), KUBE_REQ_LIST);
	kt_resp(&t, KUBE_REQ_LIST, 200, "{\"metadata\": {\"resourceVersion\": \"90\"}, \"items\": ["
		"{\"metadata\": {\"name\": \"a\", \"namespace\": \"d\"}}]}", 0);
	ASSERT_EQ(kt_take(&t, "Service d/b", &text), 1);	/* a unchanged; b gone */
	ASSERT_STREQ(text, "(deleted)");
	ASSERT_EQ(t.r.n_relists, 1);
	/* HTTP 410 at the start of a watch does the same */
	ASSERT_EQ(kt_next(&t, 0), KUBE_REQ_WATCH);
	kube_refl_on_watch_end(&t.r, 410, true, "", 0, 0);
	ASSERT_EQ(kt_next(&t, 0), KUBE_REQ_LIST);
	ASSERT_STRSTR(t.r.warning, "410");
	kt_refl_fini(&t);
}

TEST(kube_refl_backoff_and_resume)
{
	struct kt_refl t;
	uint64_t now = 1000 * MS, prev = 0;

	kt_refl_init(&t, KUBE_SERVICE, NULL, false);
	/* list errors: waits grow (jittered in [d/2, d]), up to the cap */
	for (int i = 1; i <= 10; i++) {
		uint64_t d = KUBE_BACKOFF_MIN_MS;

		for (int k = 1; k < i && d < KUBE_BACKOFF_MAX_MS; k++)
			d *= 2;
		if (d > KUBE_BACKOFF_MAX_MS)
			d = KUBE_BACKOFF_MAX_MS;
		ASSERT_EQ(kt_next(&t, now), KUBE_REQ_LIST);
		kt_resp(&t, KUBE_REQ_LIST, i == 3 ? 403 : 503, "{\"message\": \"boom\"}", now);
		ASSERT_EQ(t.r.state, KR_WAIT);
		ASSERT_GE(t.r.due_ns - now, d / 2 * MS);
		ASSERT_LE(t.r.due_ns - now, d * MS);
		if (i == 3)
			ASSERT_STRSTR(t.r.last_error, "403 Forbidden (RBAC: the agent needs get/list/watch on services): boom");
		ASSERT_EQ(kt_next(&t, now), KUBE_REQ_NONE);	/* not before due */
		ASSERT_EQ(t.due, t.r.due_ns);
		now = t.r.due_ns;
		prev = d;
	}
	ASSERT_EQ(prev, KUBE_BACKOFF_MAX_MS);
	ASSERT_FALSE(t.r.synced);
	ASSERT_EQ(kt_next(&t, now), KUBE_REQ_LIST);
	kt_resp(&t, KUBE_REQ_LIST, 200, "{\"metadata\": {\"resourceVersion\": \"7\"}, \"items\": []}", now);
	ASSERT_EQ(t.r.failures, 0);
	ASSERT_STREQ(t.r.last_error, "");
	/* a broken stream: back off, then resume from the last event's rv (no list) */
	ASSERT_EQ(kt_next(&t, now), KUBE_REQ_WATCH);
	ASSERT_EQ(kt_ev(&t, "{\"type\": \"ADDED\", \"object\": {\"metadata\": {\"name\": \"x\", \"resourceVersion\": \"8\"}}}"), 0);
	kube_refl_on_watch_end(&t.r, 200, false, "", 0, now);
	ASSERT_EQ(t.r.state, KR_WAIT);
	ASSERT_EQ(kt_next(&t, t.r.due_ns), KUBE_REQ_WATCH);
	ASSERT_STRSTR(t.path, "resourceVersion=8&");
	/* a line that is not an event drops the stream; resumed the same way */
	ASSERT_EQ(kt_ev(&t, "garbage"), -EPROTO);
	kube_refl_on_watch_end(&t.r, 200, false, "", 0, now);
	ASSERT_STRSTR(t.r.last_error, "not an event");
	ASSERT_EQ(kt_next(&t, t.r.due_ns), KUBE_REQ_WATCH);
	/* 401: backoff, watch again (the client reads the token again) */
	kube_refl_on_watch_end(&t.r, 401, false, "{\"message\": \"Unauthorized\"}", 27, now);
	ASSERT_STRSTR(t.r.last_error, "401 Unauthorized");
	ASSERT_EQ(kt_next(&t, t.r.due_ns), KUBE_REQ_WATCH);
	kt_refl_fini(&t);
}

TEST(kube_refl_istio_discovery_and_absent)
{
	struct kt_refl t;
	const char *text;
	uint64_t now = 0;

	kt_refl_init(&t, KUBE_VIRTUALSERVICE, NULL, false);
	ASSERT_EQ(kt_next(&t, now), KUBE_REQ_DISCOVER);
	ASSERT_STREQ(t.path, "/apis/networking.istio.io");
	kt_resp(&t, KUBE_REQ_DISCOVER, 404, "{}", now);
	ASSERT_TRUE(t.r.synced);	/* an empty kind does not hold readiness back */
	ASSERT_TRUE(t.r.absent);
	ASSERT_STRSTR(t.r.warning, "virtualservices.networking.istio.io not installed?");
	ASSERT_EQ(kt_next(&t, now + 59000 * MS), KUBE_REQ_NONE);
	ASSERT_EQ(kt_next(&t, now + KUBE_ABSENT_RECHECK_MS * MS), KUBE_REQ_DISCOVER);
	/* installed since: v1 not served, v1beta1 preferred over v1alpha3 */
	kt_resp(&t, KUBE_REQ_DISCOVER, 200, "{\"versions\": [{\"version\": \"v1alpha3\"}, {\"version\": \"v1beta1\"}]}", now);
	ASSERT_EQ(kt_next(&t, now), KUBE_REQ_LIST);
	ASSERT_STREQ(t.path, "/apis/networking.istio.io/v1beta1/virtualservices?limit=500");
	kt_resp(&t, KUBE_REQ_LIST, 200, "{\"metadata\": {\"resourceVersion\": \"3\"}, \"items\": ["
		"{\"metadata\": {\"name\": \"r\", \"namespace\": \"d\"}}]}", now);
	ASSERT_FALSE(t.r.absent);
	ASSERT_EQ(kt_take(&t, "VirtualService d/r", &text), 1);
	ASSERT_STRSTR(text, "\"apiVersion\":\"networking.istio.io/v1beta1\"");
	/* the CRD removed: a 404 on the watch empties the kind */
	ASSERT_EQ(kt_next(&t, now), KUBE_REQ_WATCH);
	kube_refl_on_watch_end(&t.r, 404, true, "", 0, now);
	ASSERT_EQ(kt_take(&t, "VirtualService d/r", &text), 1);
	ASSERT_STREQ(text, "(deleted)");
	kt_refl_fini(&t);
}

TEST(kube_refl_pods_metadata_and_node)
{
	struct kt_refl t;
	const char *text;

	kt_refl_init(&t, KUBE_POD, "spec.nodeName!=node-1", true);
	ASSERT_EQ(kt_next(&t, 0), KUBE_REQ_LIST);
	ASSERT_STREQ(t.path, "/api/v1/pods?limit=500&fieldSelector=spec.nodeName%21%3Dnode-1");
	ASSERT_STREQ(t.accept, "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json");
	kt_resp(&t, KUBE_REQ_LIST, 200, "{\"kind\": \"PartialObjectMetadataList\", \"metadata\": {\"resourceVersion\": \"3\"}, "
		"\"items\": [{\"metadata\": {\"name\": \"p\", \"namespace\": \"d\", \"labels\": {\"app\": \"a\"}}}]}", 0);
	ASSERT_EQ(kt_take(&t, "Pod d/p", &text), 1);
	ASSERT_STRSTR(text, "\"apiVersion\":\"v1\",\"kind\":\"Pod\"");	/* loads as a Pod */
	ASSERT_EQ(kt_next(&t, 0), KUBE_REQ_WATCH);
	ASSERT_STREQ(t.accept, "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json");
	ASSERT_EQ(kt_ev(&t, "{\"type\": \"MODIFIED\", \"object\": {\"kind\": \"PartialObjectMetadata\", \"apiVersion\": \"meta.k8s.io/v1\", "
			    "\"metadata\": {\"name\": \"p\", \"namespace\": \"d\", \"resourceVersion\": \"4\"}}}"), 0);
	ASSERT_EQ(kt_take(&t, "Pod d/p", &text), 1);
	ASSERT_STRSTR(text, "\"kind\":\"Pod\"");
	kt_refl_fini(&t);
}

TEST(kube_identity_names)
{
	char b[128];

	ASSERT_STREQ(kube_identity(b, sizeof(b), "Service", "default", "web"), "Service default/web");
	ASSERT_STREQ(kube_identity(b, sizeof(b), "Namespace", NULL, "default"), "Namespace default");
}

/*
 * The JSON node source: an object parsed from its jansson tree loads as the
 * same text parsed by libyaml does: the same objects, the same messages
 * (field paths included), only without line and column.
 */
TEST(kube_json_source_same_as_yaml)
{
	static const char *const docs[] = {
		"{\"apiVersion\": \"discovery.k8s.io/v1\", \"kind\": \"EndpointSlice\", \"metadata\": "
		"{\"name\": \"e\", \"namespace\": \"ns\", \"labels\": {\"kubernetes.io/service-name\": \"web\"}}, "
		"\"addressType\": \"IPv4\", \"ports\": [{\"name\": \"http\", \"port\": 8080}], \"endpoints\": "
		"[{\"addresses\": [\"10.0.0.1\"], \"conditions\": {\"ready\": false}}, {\"addresses\": [\"10.0.0.2\"]}]}",
		/* bad values: an address, a port as a real, a boolean as a string, a typo */
		"{\"apiVersion\": \"discovery.k8s.io/v1\", \"kind\": \"EndpointSlice\", \"metadata\": "
		"{\"name\": \"e\", \"namespace\": \"ns\", \"labels\": {\"kubernetes.io/service-name\": \"web\"}}, "
		"\"addressType\": \"IPv4\", \"ports\": [{\"name\": \"http\", \"port\": 80.5}], \"endpoints\": "
		"[{\"addresses\": [\"10.0.0.1\"], \"conditions\": {\"ready\": \"yes\"}}, "
		"{\"addresses\": [\"10.244.0.300\"], \"condtions\": {}}]}",
		"{\"apiVersion\": \"discovery.k8s.io/v1\", \"kind\": \"EndpointSlice\", \"metadata\": "
		"{\"namespace\": \"ns\"}, \"endpoints\": null, \"ports\": [{\"port\": -1}]}",
	};

	for (size_t k = 0; k < sizeof(docs) / sizeof(docs[0]); k++) {
		json_t *root = json_loads(docs[k], 0, NULL);
		struct pol_cache *c = policy_cache_new();
		struct kube_doc *d = kube_doc_new_json("EndpointSlice ns/e", root);
		size_t parsed = 0, reused;
		struct pol_set j, y;

		ASSERT_TRUE(root && c && d);
		json_decref(root);
		policy_set_init(&j);
		policy_set_init(&y);
		policy_set_use_cache(&j, c);
		policy_cache_begin(c);
		policy_cache_offer(c, d->pd);
		policy_load_buffer(&j, d->name, d->text, d->len);
		policy_cache_offers_clear(c);
		policy_cache_stats(c, &parsed, &reused);
		ASSERT_EQ(parsed, 1);	/* the offered document, not a new parse */
		policy_load_buffer(&y, "EndpointSlice ns/e", d->text, d->len);	/* libyaml */
		ASSERT_EQ(j.n_eps, y.n_eps);
		ASSERT_EQ(j.n_diags, y.n_diags);
		ASSERT_EQ(j.n_errors, y.n_errors);
		for (size_t i = 0; i < j.n_diags && i < y.n_diags; i++) {
			ASSERT_STREQ(j.diags[i].msg, y.diags[i].msg);
			ASSERT_EQ(j.diags[i].loc.line, 0);	/* no line and column from a tree */
			ASSERT_GE(y.diags[i].loc.line, 1);
		}
		if (k == 0) {
			ASSERT_EQ(j.n_eps, 1);
			ASSERT_EQ(j.eps[0].n_endpoints, 2);
			ASSERT_FALSE(j.eps[0].endpoints[0].ready);
			ASSERT_TRUE(j.eps[0].endpoints[1].ready);
			ASSERT_EQ(j.eps[0].ports[0].port, 8080);
		} else {
			ASSERT_GE(j.n_errors, 1);
		}
		policy_set_free(&j);	/* borrowed the document's objects: first */
		policy_set_free(&y);
		policy_cache_free(c);
		kube_doc_put(d);
	}
}

/* A page big enough to be parsed on several threads: every item, in order. */
TEST(kube_refl_big_page)
{
	size_t cap = 64 << 10, off = 0, n;
	char *body = malloc(cap);
	struct kube_change *c;
	struct kt_refl t;

	ASSERT_TRUE(body != NULL);
	off += (size_t)snprintf(body + off, cap - off, "{\"metadata\": {\"resourceVersion\": \"7\"}, \"items\": [");
	for (int i = 0; i < 300; i++)
		off += (size_t)snprintf(body + off, cap - off, i == 150 ?
					", {\"metadata\": {\"namespace\": \"ns\"}}" :	/* no name */
					"%s{\"metadata\": {\"name\": \"s%d\", "
					"\"namespace\": \"ns\", \"resourceVersion\": \"%d\"}, \"spec\": "
					"{\"clusterIP\": \"10.96.%d.%d\"}}", i ? ", " : "",
					i, i, i / 250, i % 250 + 1);
	snprintf(body + off, cap - off, "]}");
	kt_refl_init(&t, KUBE_SERVICE, NULL, false);
	ASSERT_EQ(kt_next(&t, 0), KUBE_REQ_LIST);
	kt_resp(&t, KUBE_REQ_LIST, 200, body, 0);
	ASSERT_TRUE(t.r.synced);
	ASSERT_STRSTR(t.r.warning, "without metadata.name skipped");	/* item 150 */
	ASSERT_EQ(kube_store_take(t.st, &c, &n, NULL), 0);
	ASSERT_EQ(n, 299);
	for (size_t i = 0; i < n; i++) {
		char want[32];

		snprintf(want, sizeof(want), "Service ns/s%zu", i < 150 ? i : i + 1);
		ASSERT_STREQ(c[i].name, want);	/* in the page's order */
		ASSERT_TRUE(c[i].doc && c[i].doc->pd);
		ASSERT_STRSTR(c[i].doc->text, "\"kind\":\"Service\"");
	}
	kube_changes_free(c, n);
	kt_refl_fini(&t);
	free(body);
}

/* The text of span s, for comparison. */
static const char *kt_span(const struct kube_span *s)
{
	static char buf[256];

	snprintf(buf, sizeof(buf), "%.*s", (int)s->len, s->p);
	return buf;
}

TEST(kube_list_split_cases)
{
	static const struct {
		const char *desc, *body;
		int ret;
		size_t n;
		const char *meta, *first, *last;
	} cases[] = {
		{ "plain", "{\"kind\":\"List\",\"metadata\":{\"continue\":\"x\"},\"items\":[{\"a\":1},{\"b\":[2,3]}]}",
		  0, 2, "{\"continue\":\"x\"}", "{\"a\":1}", "{\"b\":[2,3]}" },
		{ "spaces, items before metadata", " {\n \"items\" : [ {\"a\" : \"}]\"} ,\t{} ] , \"metadata\": {} }\n",
		  0, 2, "{}", "{\"a\" : \"}]\"}", "{}" },
		{ "brackets and escaped quotes in strings", "{\"items\":[{\"s\":\"a\\\"]},{\\\\\"},{\"t\":\"\\\\\"}]}",
		  0, 2, NULL, "{\"s\":\"a\\\"]},{\\\\\"}", "{\"t\":\"\\\\\"}" },
		{ "empty items", "{\"metadata\":{\"resourceVersion\":\"5\"},\"items\":[]}", 0, 0,
		  "{\"resourceVersion\":\"5\"}", NULL, NULL },
		{ "scalars in items (their parse says no)", "{\"items\":[1, true ,\"x\"]}", 0, 3, NULL, "1", "\"x\"" },
		{ "a repeated items key: the last", "{\"items\":[{}],\"items\":[{\"z\":0}]}", 0, 1, NULL,
		  "{\"z\":0}", "{\"z\":0}" },
		{ "no items", "{\"metadata\":{}}", -EINVAL, 0, NULL, NULL, NULL },
		{ "items not an array", "{\"items\":{}}", -EINVAL, 0, NULL, NULL, NULL },
		{ "items null after an array", "{\"items\":[{}],\"items\":null}", -EINVAL, 0, NULL, NULL, NULL },
		{ "not an object", "[{\"items\":[]}]", -EINVAL, 0, NULL, NULL, NULL },
		{ "cut short", "{\"items\":[{\"a\":1},{\"b\"", -EINVAL, 0, NULL, NULL, NULL },
		{ "unterminated string", "{\"items\":[\"abc]}", -EINVAL, 0, NULL, NULL, NULL },
		{ "trailing garbage", "{\"items\":[]} x", -EINVAL, 0, NULL, NULL, NULL },
		{ "missing comma", "{\"items\":[{} {}]}", -EINVAL, 0, NULL, NULL, NULL },
		{ "empty", "", -EINVAL, 0, NULL, NULL, NULL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kube_span meta, *items;
		size_t n;
		int ret = kube_list_split(cases[i].body, strlen(cases[i].body), &meta, &items, &n);

		printf("    %s\n", cases[i].desc);
		ASSERT_EQ(ret, cases[i].ret);
		ASSERT_EQ(n, cases[i].n);
		if (!ret && cases[i].meta)
			ASSERT_STREQ(kt_span(&meta), cases[i].meta);
		else if (!ret)
			ASSERT_TRUE(meta.p == NULL);
		if (n) {
			ASSERT_STREQ(kt_span(&items[0]), cases[i].first);
			ASSERT_STREQ(kt_span(&items[n - 1]), cases[i].last);
		}
		free(items);
	}
}

/*
 * A page whose items cut cleanly but one does not parse goes back to the
 * whole-page parse: the same error as a body that is not a List, nothing put.
 */
TEST(kube_refl_page_item_bad_json)
{
	struct kube_change *c;
	struct kt_refl t;
	size_t n;

	kt_refl_init(&t, KUBE_SERVICE, NULL, false);
	ASSERT_EQ(kt_next(&t, 0), KUBE_REQ_LIST);
	kt_resp(&t, KUBE_REQ_LIST, 200, "{\"metadata\": {\"resourceVersion\": \"7\"}, \"items\": ["
		"{\"metadata\": {\"name\": \"a\", \"namespace\": \"ns\"}}, {\"metadata\": {\"name\": tru}}]}", 0);
	ASSERT_FALSE(t.r.synced);
	ASSERT_EQ(t.r.state, KR_WAIT);
	ASSERT_STREQ(t.r.last_error, "list: HTTP 200");	/* as a body that is not a List */
	ASSERT_EQ(kube_store_take(t.st, &c, &n, NULL), 0);
	ASSERT_EQ(n, 0);
	kube_changes_free(c, n);
	/* the list's metadata after the items, continue and resourceVersion read */
	ASSERT_EQ(kt_next(&t, t.r.due_ns), KUBE_REQ_LIST);
	kt_resp(&t, KUBE_REQ_LIST, 200, "{\"items\": [{\"metadata\": {\"name\": \"a\", \"namespace\": "
		"\"ns\"}}], \"metadata\": {\"resourceVersion\": \"9\"}}", 0);
	ASSERT_TRUE(t.r.synced);
	ASSERT_STREQ(t.r.rv, "9");
	ASSERT_EQ(kube_store_take(t.st, &c, &n, NULL), 0);
	ASSERT_EQ(n, 1);
	kube_changes_free(c, n);
	kt_refl_fini(&t);
}

/* The document text: byte for byte json_dumps(COMPACT | PRESERVE_ORDER). */
TEST(kube_json_compact_as_jansson)
{
	static const char *const docs[] = {
		"{}", "[]", "{\"a\":[],\"b\":{},\"c\":[{}]}",
		"{\"z\":1,\"a\":2,\"m\":{\"y\":null,\"b\":true,\"c\":false}}",
		"{\"s\":\"quote \\\" backslash \\\\ slash / tab \\t nl \\n cr \\r bs \\b ff \\f\"}",
		"{\"ctl\":\"\\u0001\\u001f\\u007f end\",\"nul\":\"a\\u0000b\"}",
		"{\"utf8\":\"h\\u00e9llo \\u2028 \\ud83d\\ude00 \\u65e5\\u672c\"}",
		"{\"k\\\"ey\\n\":\"v\"}",
		"{\"i\":[0,-1,9223372036854775807,-9223372036854775807],\"r\":[1.0,-0.5,1e300,2.5e-7,3.14159265358979]}",
		"{\"metadata\":{\"name\":\"a\",\"namespace\":\"ns\",\"labels\":{\"app\":\"x\"}},"
		"\"endpoints\":[{\"addresses\":[\"10.0.0.1\"],\"conditions\":{\"ready\":true}}]}",
	};

	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		json_error_t e;
		json_t *j = json_loads(docs[i], JSON_ALLOW_NUL, &e);
		char *want, *got;
		size_t len;

		ASSERT_TRUE(j != NULL);
		want = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
		got = kube_json_compact(j, &len);
		ASSERT_TRUE(want && got);
		ASSERT_STREQ(got, want);
		ASSERT_EQ(len, strlen(want));
		free(want);
		free(got);
		json_decref(j);
	}
	{
		/* a string with a NUL (its length, not strlen): as jansson writes it */
		json_t *j = json_pack("{s:s%}", "k", "a\0b", (size_t)3);
		char *want = json_dumps(j, JSON_COMPACT), *got;
		size_t len;

		got = kube_json_compact(j, &len);
		ASSERT_STREQ(got, want);
		ASSERT_STREQ(got, "{\"k\":\"a\\u0000b\"}");
		free(want);
		free(got);
		json_decref(j);
	}
}
