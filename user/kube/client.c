// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The API client: libcurl's multi interface on a thread of its own drives
 * one reflector per kind. Over TLS libcurl negotiates HTTP/2 (ALPN) and,
 * with PIPEWAIT, multiplexes every list and watch on one connection, as
 * client-go does; a server without HTTP/2 gets one HTTP/1.1 connection per
 * open watch. The bearer token file is read again when it changes (bound
 * service-account tokens rotate) and after a 401; the CA file likewise
 * (libcurl then opens a new connection for the new CA).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <curl/curl.h>

#include "kube/kube.h"

#define KC_MAX_REFL 8
#define KC_MAX_BODY (256u << 20)	/* one list page (500 objects) is far below */
#define KC_LIST_TIMEOUT_S 60
#define KC_CONNECT_TIMEOUT_S 10

struct kc_file {			/* a file read again when it changes */
	const char *path;
	char *data;
	size_t len;
	struct timespec mtime;
	ino_t ino;
	off_t size;
	bool stale;			/* read it again before the next request */
};

struct kc_xfer {
	struct kube_client *c;
	struct kube_refl *r;
	enum kube_req req;
	CURL *h;
	struct curl_slist *hdrs;
	char *buf;
	size_t len, cap;
	bool aborted;			/* the reflector dropped the stream */
	char errbuf[CURL_ERROR_SIZE];
};

struct kube_client {
	const struct kube_creds *creds;
	CURLM *multi;
	pthread_t thread;
	bool thread_started;
	volatile int stop;
	pthread_mutex_t lock;		/* reflectors, counters, warnings */
	struct kube_refl refl[KC_MAX_REFL];
	char logged_err[KC_MAX_REFL][200];
	struct kc_xfer *xfer[KC_MAX_REFL];
	size_t n_refl;
	struct kc_file token, ca;
	bool verbose;
	bool reachable;
	uint64_t reachable_since_ns;	/* of the current state */
	uint64_t first_list_ns;		/* the first LIST request: monotonic ns, */
	uint64_t first_list_cpu_ns;	/* and the process's CPU time then */
	struct kube_client_counters cnt;
	char *warnings;
	size_t warn_len;
};

static uint64_t kc_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Locked: a line for the agent's log. */
static void kc_warn(struct kube_client *c, const char *fmt, const char *a, const char *b)
{
	char line[512];
	int n = snprintf(line, sizeof(line), fmt, a, b);
	char *w;

	if (n < 0 || c->warn_len > 65536)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	w = realloc(c->warnings, c->warn_len + (size_t)n + 2);
	if (!w)
		return;
	memcpy(w + c->warn_len, line, (size_t)n);
	c->warn_len += (size_t)n;
	w[c->warn_len++] = '\n';
	w[c->warn_len] = '\0';
	c->warnings = w;
}

/* Read f again when it changed on disk (or was marked stale). */
static int kc_file_refresh(struct kc_file *f)
{
	struct stat st;
	FILE *fp;
	char *data;
	size_t len = 0;

	if (!f->path)
		return 0;
	if (stat(f->path, &st))
		return -errno;
	if (!f->stale && f->data && st.st_ino == f->ino && st.st_size == f->size &&
	    st.st_mtim.tv_sec == f->mtime.tv_sec && st.st_mtim.tv_nsec == f->mtime.tv_nsec)
		return 0;
	fp = fopen(f->path, "re");
	if (!fp)
		return -errno;
	data = malloc((size_t)st.st_size + 1);
	if (data)
		len = fread(data, 1, (size_t)st.st_size, fp);
	fclose(fp);
	if (!data)
		return -ENOMEM;
	data[len] = '\0';
	/* a token file ends with a newline or not; the header must not */
	while (len && (data[len - 1] == '\n' || data[len - 1] == '\r'))
		data[--len] = '\0';
	free(f->data);
	f->data = data;
	f->len = len;
	f->ino = st.st_ino;
	f->size = st.st_size;
	f->mtime = st.st_mtim;
	f->stale = false;
	return 0;
}

static size_t kc_on_data(char *p, size_t sz, size_t nm, void *arg)
{
	struct kc_xfer *x = arg;
	size_t n = sz * nm;

	x->c->cnt.bytes_rx += n;
	if (x->aborted)
		return n;	/* dropped: removed after this round (kc_main) */
	if (x->len + n + 1 > x->cap) {
		size_t cap = x->cap ? x->cap : 16384;
		char *b;

		while (cap < x->len + n + 1)
			cap *= 2;
		if (cap > KC_MAX_BODY || !(b = realloc(x->buf, cap)))
			return 0;	/* aborts the transfer */
		x->buf = b;
		x->cap = cap;
	}
	memcpy(x->buf + x->len, p, n);
	x->len += n;
	x->buf[x->len] = '\0';
	if (x->req != KUBE_REQ_WATCH)
		return n;
	/* a watch: one JSON event per line */
	for (;;) {
		char *nl = memchr(x->buf, '\n', x->len);
		size_t ll;
		int ret;

		if (!nl)
			break;
		ll = (size_t)(nl - x->buf);
		ret = ll ? kube_refl_on_event(x->r, x->buf, ll, kc_now()) : 0;
		memmove(x->buf, nl + 1, x->len - ll - 1);
		x->len -= ll + 1;
		x->buf[x->len] = '\0';
		if (ll)
			x->c->cnt.events++;
		if (ret == -ESTALE)
			x->c->cnt.gone++;
		if (ret) {
			/*
			 * Drop the stream; the reflector knows what next. The
			 * handle is removed after this round (kc_main): on
			 * HTTP/2 that resets this stream only, the connection
			 * and the other watches stay.
			 */
			x->aborted = true;
			return n;
		}
	}
	return n;
}

static void kc_xfer_free(struct kc_xfer *x)
{
	if (!x)
		return;
	if (x->h) {
		curl_multi_remove_handle(x->c->multi, x->h);
		curl_easy_cleanup(x->h);
	}
	curl_slist_free_all(x->hdrs);
	free(x->buf);
	free(x);
}

static int kc_start(struct kube_client *c, size_t i, enum kube_req req, const char *path,
		    const char *accept)
{
	const struct kube_creds *cr = c->creds;
	struct kc_xfer *x = calloc(1, sizeof(*x));
	char url[4096], hdr[8192];
	CURL *h;

	if (!x)
		return -ENOMEM;
	x->c = c;
	x->r = &c->refl[i];
	x->req = req;
	h = x->h = curl_easy_init();
	if (!h) {
		free(x);
		return -ENOMEM;
	}
	snprintf(url, sizeof(url), "%s%s", cr->server, path);
	snprintf(hdr, sizeof(hdr), "Accept: %s", accept);
	x->hdrs = curl_slist_append(x->hdrs, hdr);
	if (kc_file_refresh(&c->token) == 0 && (c->token.data || cr->token)) {
		snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", c->token.data ?: cr->token);
		x->hdrs = curl_slist_append(x->hdrs, hdr);
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, x->hdrs);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "sockmesh-agent");
	curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(h, CURLOPT_PIPEWAIT, 1L);	/* wait to multiplex, not a new connection */
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)KC_CONNECT_TIMEOUT_S);
	/* a watch lasts up to timeoutSeconds; past that (and a minute) it is dead */
	curl_easy_setopt(h, CURLOPT_TIMEOUT, req == KUBE_REQ_WATCH ?
			 (long)KUBE_WATCH_TIMEOUT_MAX_S + 60 : (long)KC_LIST_TIMEOUT_S);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, 30L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, 10L);
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");	/* gzip when offered */
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, kc_on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->errbuf);
	curl_easy_setopt(h, CURLOPT_PRIVATE, x);
	curl_easy_setopt(h, CURLOPT_VERBOSE, (long)c->verbose);
	if (cr->insecure) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	} else if (cr->ca_pem || (kc_file_refresh(&c->ca) == 0 && c->ca.data)) {
		struct curl_blob ca = {
			.data = cr->ca_pem ?: c->ca.data,
			.len = cr->ca_pem ? cr->ca_pem_len : c->ca.len,
			.flags = CURL_BLOB_COPY,
		};

		curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &ca);
	}
	if (cr->cert_pem) {
		struct curl_blob b = { cr->cert_pem, cr->cert_pem_len, CURL_BLOB_COPY };

		curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &b);
		curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
	} else if (cr->cert_file) {
		curl_easy_setopt(h, CURLOPT_SSLCERT, cr->cert_file);
	}
	if (cr->key_pem) {
		struct curl_blob b = { cr->key_pem, cr->key_pem_len, CURL_BLOB_COPY };

		curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &b);
		curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
	} else if (cr->key_file) {
		curl_easy_setopt(h, CURLOPT_SSLKEY, cr->key_file);
	}
	if (!x->hdrs || curl_multi_add_handle(c->multi, h) != CURLM_OK) {
		kc_xfer_free(x);
		return -ENOMEM;
	}
	c->xfer[i] = x;
	c->cnt.requests++;
	return 0;
}

/*
 * A transport error with a client certificate in the kubeconfig: say which
 * certificate when it is the cause (libcurl's message alone names neither
 * the file nor the server's refusal). The server refuses it in the TLS
 * handshake (a certificate it cannot verify: kube-apiserver's
 * --client-ca-file), which arrives as an alert, or (TLS 1.3: the client
 * has finished its side of the handshake when the server checks the
 * certificate) as the connection closed before any answer. A certificate
 * that cannot be used at all (unreadable, its key not matching) fails
 * locally.
 */
static const char *kc_cert_error(const struct kube_creds *cr, CURL *h, CURLcode res,
				 const char *msg, char *buf, size_t len)
{
	const char *cert = cr->cert_file ?: "client-certificate-data";
	const char *alert = strstr(msg, "alert ");
	curl_off_t tls_us = 0;

	if (!cr->cert_file && !cr->cert_pem)
		return msg;
	curl_easy_getinfo(h, CURLINFO_APPCONNECT_TIME_T, &tls_us);
	if (res == CURLE_SSL_CERTPROBLEM)
		snprintf(buf, len, "client certificate %s: %s", cert, msg);
	else if (alert && (strstr(alert, "certificate") || strstr(alert, "unknown ca")))
		snprintf(buf, len, "TLS: the API server refused the client certificate %s (%s)", cert,
			 alert);
	else if (tls_us > 0 && (res == CURLE_SEND_ERROR || res == CURLE_RECV_ERROR ||
				res == CURLE_GOT_NOTHING))
		snprintf(buf, len, "TLS: the API server closed the connection after the handshake "
			 "(refused the client certificate %s?): %s", cert, msg);
	else
		return msg;
	return buf;
}

/* Locked: a transfer ended. */
static void kc_done(struct kube_client *c, size_t i, CURLcode res)
{
	struct kc_xfer *x = c->xfer[i];
	struct kube_refl *r = x->r;
	uint64_t now = kc_now();
	long status = 0;
	bool ok = res == CURLE_OK;
	const char *body = x->buf ?: "";
	size_t len = x->len;
	bool reachable;
	char why[320];

	curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &status);
	if (!ok && !x->aborted && !status) {
		body = kc_cert_error(c->creds, x->h, res, x->errbuf[0] ? x->errbuf : curl_easy_strerror(res),
				     why, sizeof(why));
		len = strlen(body);
	}
	reachable = status > 0 && status < 500;
	if (reachable != c->reachable) {
		c->reachable = reachable;
		c->reachable_since_ns = now;
	}
	if (status == 401)
		c->token.stale = c->ca.stale = true;	/* rotated? read both again */
	if (x->req == KUBE_REQ_WATCH)
		kube_refl_on_watch_end(r, status, ok, body, len, now);
	else
		kube_refl_on_response(r, x->req, ok ? status : 0, body, len, now);
	if (r->last_error[0] && strcmp(r->last_error, c->logged_err[i])) {
		c->cnt.errors++;
		kc_warn(c, "%s: %s (retrying with backoff)", r->name, r->last_error);
	} else if (!r->last_error[0] && c->logged_err[i][0]) {
		kc_warn(c, "%s: %s", r->name, "API server answers again");
	}
	snprintf(c->logged_err[i], sizeof(c->logged_err[i]), "%s", r->last_error);
	if (r->warning[0]) {
		kc_warn(c, "%s%s", r->warning, "");
		r->warning[0] = '\0';
	}
	c->xfer[i] = NULL;
	kc_xfer_free(x);
}

static void *kc_main(void *arg)
{
	struct kube_client *c = arg;
	char path[4096];

	while (!c->stop) {
		uint64_t now = kc_now(), next = now + 1000000000ull;
		int running, left, timeout;
		CURLMsg *m;

		pthread_mutex_lock(&c->lock);
		for (size_t i = 0; i < c->n_refl; i++) {
			const char *accept;
			uint64_t due;
			enum kube_req req;

			if (c->xfer[i])
				continue;
			req = kube_refl_next(&c->refl[i], now, path, sizeof(path), &accept, &due);
			if (req == KUBE_REQ_NONE) {
				if (due && due < next)
					next = due;
				continue;
			}
			if (req == KUBE_REQ_LIST && !c->first_list_ns) {
				struct timespec ts;

				clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
				c->first_list_ns = now;	/* locked */
				c->first_list_cpu_ns = (uint64_t)ts.tv_sec * 1000000000ull +
						       (uint64_t)ts.tv_nsec;
			}
			if (kc_start(c, i, req, path, accept)) {
				/* no memory: try again in a second */
				c->refl[i].state = KR_WAIT;
				c->refl[i].due_ns = now + 1000000000ull;
			}
		}
		curl_multi_perform(c->multi, &running);
		while ((m = curl_multi_info_read(c->multi, &left))) {
			struct kc_xfer *x = NULL;

			if (m->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
			for (size_t i = 0; x && i < c->n_refl; i++)
				if (c->xfer[i] == x) {
					kc_done(c, i, m->data.result);
					break;
				}
		}
		for (size_t i = 0; i < c->n_refl; i++)
			if (c->xfer[i] && c->xfer[i]->aborted)
				kc_done(c, i, CURLE_WRITE_ERROR);
		pthread_mutex_unlock(&c->lock);
		/* start what the answers asked for at once; else sleep till due */
		now = kc_now();
		timeout = next > now ? (int)((next - now) / 1000000) + 1 : 0;
		for (size_t i = 0; i < c->n_refl; i++)
			if (!c->xfer[i] && c->refl[i].state != KR_WAIT)
				timeout = 0;
		curl_multi_poll(c->multi, NULL, 0, timeout, NULL);
	}
	return NULL;
}

struct kube_client *kube_client_start(const struct kube_client_opts *o, char *err, size_t errlen)
{
	struct kube_client *c;
	char sel[320];
	uint64_t seed = o->rnd_seed ?: kc_now();
	uint32_t id = 1;

	if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
		snprintf(err, errlen, "libcurl: init failed");
		errno = ENOMEM;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c || !(c->multi = curl_multi_init())) {
		free(c);
		snprintf(err, errlen, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	c->creds = o->creds;
	c->verbose = o->curl_verbose;
	c->token.path = o->creds->token_file;
	c->ca.path = o->creds->ca_pem ? NULL : o->creds->ca_file;
	c->reachable_since_ns = kc_now();
	curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
	pthread_mutex_init(&c->lock, NULL);
#define KC_REFL(k, prio, sel, meta) \
	kube_refl_init(&c->refl[c->n_refl++], &kube_kinds[k], id++, prio, sel, meta, o->store, \
		       (seed += 0x9e3779b97f4a7c15ull))
	KC_REFL(KUBE_NAMESPACE, 0, NULL, false);
	KC_REFL(KUBE_SERVICE, 0, NULL, false);
	KC_REFL(KUBE_ENDPOINTSLICE, 0, NULL, false);
	if (o->node_name) {
		/* this node's pods in full; the others' labels only (subsets, names) */
		snprintf(sel, sizeof(sel), "spec.nodeName=%s", o->node_name);
		KC_REFL(KUBE_POD, 1, sel, false);
		snprintf(sel, sizeof(sel), "spec.nodeName!=%s", o->node_name);
		KC_REFL(KUBE_POD, 0, sel, true);
	} else {
		KC_REFL(KUBE_POD, 0, NULL, false);
	}
	KC_REFL(KUBE_VIRTUALSERVICE, 0, NULL, false);
	KC_REFL(KUBE_DESTINATIONRULE, 0, NULL, false);
	KC_REFL(KUBE_GATEWAY, 0, NULL, false);
#undef KC_REFL
	for (size_t i = 0; o->absent_recheck_ms && i < c->n_refl; i++)
		c->refl[i].absent_recheck_ms = o->absent_recheck_ms;
	if (pthread_create(&c->thread, NULL, kc_main, c)) {
		snprintf(err, errlen, "cannot start the API client thread");
		kube_client_stop(c);
		errno = EAGAIN;
		return NULL;
	}
	c->thread_started = true;
	return c;
}

void kube_client_stop(struct kube_client *c)
{
	if (!c)
		return;
	if (c->thread_started) {
		c->stop = 1;
		curl_multi_wakeup(c->multi);
		pthread_join(c->thread, NULL);
	}
	for (size_t i = 0; i < c->n_refl; i++) {
		kc_xfer_free(c->xfer[i]);
		kube_refl_fini(&c->refl[i]);
	}
	curl_multi_cleanup(c->multi);
	free(c->token.data);
	free(c->ca.data);
	free(c->warnings);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

bool kube_client_synced(struct kube_client *c, json_t *syncing)
{
	bool all = true;

	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->n_refl; i++)
		if (!c->refl[i].synced) {
			all = false;
			if (syncing)
				json_array_append_new(syncing, json_string(c->refl[i].name));
		}
	pthread_mutex_unlock(&c->lock);
	return all;
}

bool kube_client_reachable(struct kube_client *c, uint64_t *since_ns)
{
	bool r;

	pthread_mutex_lock(&c->lock);
	r = c->reachable;
	if (since_ns)
		*since_ns = c->reachable_since_ns;
	pthread_mutex_unlock(&c->lock);
	return r;
}

void kube_client_first_list(struct kube_client *c, uint64_t *mono_ns, uint64_t *cpu_ns)
{
	pthread_mutex_lock(&c->lock);
	*mono_ns = c->first_list_ns;
	*cpu_ns = c->first_list_cpu_ns;
	pthread_mutex_unlock(&c->lock);
}

json_t *kube_client_status(struct kube_client *c)
{
	json_t *kinds = json_array(), *st;
	uint64_t now = kc_now();

	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->n_refl; i++) {
		const struct kube_refl *r = &c->refl[i];

		json_array_append_new(kinds, json_pack(
			"{s:s,s:s,s:s,s:b,s:b,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:s}",
			"kind", r->name, "version", r->version, "state", kube_refl_state_str(r->state),
			"synced", r->synced, "absent", r->absent, "resource_version", r->rv,
			"objects", (json_int_t)kube_store_count(r->store, r->id),
			"lists", (json_int_t)r->n_lists, "relists", (json_int_t)r->n_relists,
			"watches", (json_int_t)r->n_watches, "events", (json_int_t)r->n_events,
			"bookmarks", (json_int_t)r->n_bookmarks, "last_error", r->last_error));
	}
	st = json_pack("{s:s,s:s,s:b,s:f,s:I,s:I,s:o}", "server", c->creds->server,
		       "context", c->creds->context ?: "", "reachable", c->reachable,
		       c->reachable ? "reachable_for_s" : "unreachable_for_s",
		       (now - c->reachable_since_ns) / 1e9, "bytes_received", (json_int_t)c->cnt.bytes_rx,
		       "requests", (json_int_t)c->cnt.requests, "kinds", kinds);
	pthread_mutex_unlock(&c->lock);
	return st;
}

char *kube_client_take_warnings(struct kube_client *c)
{
	char *w;

	pthread_mutex_lock(&c->lock);
	w = c->warnings;
	c->warnings = NULL;
	c->warn_len = 0;
	pthread_mutex_unlock(&c->lock);
	return w;
}

void kube_client_counters(struct kube_client *c, struct kube_client_counters *out)
{
	pthread_mutex_lock(&c->lock);
	*out = c->cnt;
	for (size_t i = 0; i < c->n_refl; i++)
		out->relists += c->refl[i].n_relists;
	pthread_mutex_unlock(&c->lock);
}
