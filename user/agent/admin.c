// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * admin: the agent's HTTP/1.1 + JSON API on a root-only unix socket.
 * One request per connection, handled on the agent's main loop; every
 * connection has a deadline so a stuck client cannot hold a slot.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "agent/agent.h"
#include "common/log.h"
#include "common/prom.h"
#include "agent/telemetry.h"
#include "agent/mapcount.h"
#include "agent/adminwork.h"

static int admin_mkdir_parent(const char *path)
{
	char dir[PATH_MAX];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0755) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(dir, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

/* --admin-listen ADDR:PORT: the same API over TCP, for scrapers and probes. */
static int admin_listen_tcp(struct agent *ag, char *err, size_t errlen)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct sm_be_key k;
	int fd, one = 1, ret;

	if (dp_parse_addr_port(ag->admin_tcp, &k)) {
		snprintf(err, errlen, "--admin-listen %s: want IPv4ADDR:PORT", ag->admin_tcp);
		return -EINVAL;
	}
	sa.sin_addr.s_addr = k.addr;
	sa.sin_port = k.port;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 64)) {
		ret = -errno;
		snprintf(err, errlen, "--admin-listen %s: %s", ag->admin_tcp, strerror(errno));
		close(fd);
		return ret;
	}
	ag->admin_tcp_fd = fd;
	return 0;
}

int admin_listen(struct agent *ag, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, ret;
	mode_t old;

	for (int i = 0; i < AGENT_MAX_ADMIN_CONNS; i++)
		ag->conns[i].fd = -1;
	if (strlen(ag->admin_path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "admin socket path too long");
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, ag->admin_path);
	if ((ret = admin_mkdir_parent(ag->admin_path))) {
		snprintf(err, errlen, "creating the directory of %s: %s", ag->admin_path, strerror(-ret));
		return ret;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* a socket file left by a killed agent: take it over if nobody answers */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		close(fd);
		snprintf(err, errlen, "another agent is serving %s", ag->admin_path);
		return -EADDRINUSE;
	}
	unlink(ag->admin_path);
	old = umask(0177);	/* 0600: root only */
	ret = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (ret || listen(fd, 64)) {
		ret = -errno;
		snprintf(err, errlen, "admin socket %s: %s", ag->admin_path, strerror(errno));
		close(fd);
		return ret;
	}
	chmod(ag->admin_path, 0600);
	ag->admin_fd = fd;
	if (ag->admin_tcp[0] && (ret = admin_listen_tcp(ag, err, errlen))) {
		close(ag->admin_fd);
		unlink(ag->admin_path);
		ag->admin_fd = -1;
		return ret;
	}
	return 0;
}

static void admin_conn_close(struct admin_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

void admin_close(struct agent *ag)
{
	for (int i = 0; i < AGENT_MAX_ADMIN_CONNS; i++)
		if (ag->conns[i].fd >= 0)
			admin_conn_close(&ag->conns[i]);
	if (ag->admin_fd >= 0) {
		close(ag->admin_fd);
		unlink(ag->admin_path);
	}
	ag->admin_fd = -1;
	if (ag->admin_tcp_fd >= 0)
		close(ag->admin_tcp_fd);
	ag->admin_tcp_fd = -1;
	mapcount_stop(ag->mapcount);
	ag->mapcount = NULL;
	admin_work_stop(ag);
}

void admin_work_stop(struct agent *ag)
{
	adminwork_stop(ag->adminwork);
	ag->adminwork = NULL;
}

int admin_pollfds(struct agent *ag, struct pollfd *pfd, int max)
{
	int n = 0;

	if (ag->admin_fd >= 0 && n < max)
		pfd[n++] = (struct pollfd){ .fd = ag->admin_fd, .events = POLLIN };
	if (ag->admin_tcp_fd >= 0 && n < max)
		pfd[n++] = (struct pollfd){ .fd = ag->admin_tcp_fd, .events = POLLIN };
	for (int i = 0; i < AGENT_MAX_ADMIN_CONNS && n < max; i++)
		if (ag->conns[i].fd >= 0 && !ag->conns[i].wait_ticket)
			pfd[n++] = (struct pollfd){ .fd = ag->conns[i].fd, .events = POLLIN };
	/* last: with every slot taken, none waits for it (a waiting one is not polled) */
	if (ag->mapcount && n < max)
		pfd[n++] = (struct pollfd){ .fd = mapcount_fd(ag->mapcount), .events = POLLIN };
	return n;
}

static void admin_send(int fd, int status, json_t *body)
{
	char head[256];
	char *text = json_dumps(body, JSON_INDENT(2) | JSON_SORT_KEYS);
	size_t len = text ? strlen(text) : 0;
	struct timeval tv = { .tv_sec = 2 };
	int hl;

	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	hl = snprintf(head, sizeof(head),
		      "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
		      "Content-Length: %zu\r\nConnection: close\r\n\r\n",
		      status, http_reason(status), len + 1);
	if (send(fd, head, hl, MSG_NOSIGNAL | (len ? MSG_MORE : 0)) == hl && len) {
		size_t off = 0;

		while (off < len) {
			ssize_t w = send(fd, text + off, len - off, MSG_NOSIGNAL);

			if (w <= 0)
				break;
			off += w;
		}
		send(fd, "\n", 1, MSG_NOSIGNAL);
	}
	free(text);
}

static void admin_send_text(int fd, int status, const char *ctype, const char *text, size_t len)
{
	char head[256];
	struct timeval tv = { .tv_sec = 2 };
	int hl;

	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	hl = snprintf(head, sizeof(head),
		      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
		      "Content-Length: %zu\r\nConnection: close\r\n\r\n",
		      status, http_reason(status), ctype, len);
	if (send(fd, head, hl, MSG_NOSIGNAL | (len ? MSG_MORE : 0)) == hl) {
		size_t off = 0;

		while (off < len) {
			ssize_t w = send(fd, text + off, len - off, MSG_NOSIGNAL);

			if (w <= 0)
				break;
			off += w;
		}
	}
}

/* GET /metrics: Prometheus text format 0.0.4. */
static void admin_metrics(struct agent *ag, int fd)
{
	struct prom_buf b = {};

	telemetry_metrics(ag, &b);
	if (b.oom) {
		static const char msg[] = "out of memory\n";

		admin_send_text(fd, 500, "text/plain", msg, sizeof(msg) - 1);
	} else {
		admin_send_text(fd, 200, "text/plain; version=0.0.4; charset=utf-8", b.p ? b.p : "", b.len);
	}
	prom_buf_free(&b);
}

static json_t *admin_error(const char *msg)
{
	return json_pack("{s:s}", "error", msg);
}

/*
 * Count the maps the apply tables cannot (mapcount.h), starting the walker
 * at the first call. Returns the walk's ticket, or 0 when there is no
 * walker (out of memory or threads).
 */
static uint64_t admin_map_count(struct agent *ag)
{
	uint32_t counts[DP_N_COUNTED];

	if (!ag->mapcount && !(ag->mapcount = mapcount_start(&ag->ld.maps))) {
		log_warn("cannot start the map counter thread (%s): map entries are not counted",
			 strerror(errno));
		return 0;
	}
	return mapcount_request(ag->mapcount, MAPCOUNT_ALL & ~mapcount_from_apply(&ag->ap, counts));
}

json_t *admin_map_entries(struct agent *ag, bool ask)
{
	uint32_t counts[DP_N_COUNTED] = {};
	json_t *maps = json_object();

	if (ask)
		admin_map_count(ag);
	if (ag->mapcount)
		mapcount_last(ag->mapcount, counts);
	/* the tables, when they are the whole truth, over the walks: newer */
	mapcount_from_apply(&ag->ap, counts);
	for (size_t i = 0; i < DP_N_COUNTED; i++)
		json_object_set_new(maps, dp_counted_maps[i].name, json_integer(counts[i]));
	return maps;
}

/*
 * The sweep of an adopted data path: "none" (fresh maps), "due" (after the
 * first apply and its grace period, or the next apply that succeeds),
 * "running", "done"; its figures once it started.
 */
static json_t *admin_sweep_json(const struct apply_sweep *sw, uint64_t due_ns)
{
	const char *state = sw->at ? "running" : due_ns ? "due" : sw->slices ? "done" : "none";

	return json_pack("{s:s, s:i, s:i, s:i, s:f, s:f, s:f}", "state", state,
			 "walked", (json_int_t)sw->walked, "deleted", (json_int_t)sw->deleted,
			 "slices", (json_int_t)sw->slices,
			 "longest_slice_ms", sw->max_slice_ns / 1e6,
			 "longest_slice_cpu_ms", sw->max_slice_cpu_ns / 1e6,
			 "took_ms", (sw->at ? dp_now_ns() - sw->start_ns : sw->took_ns) / 1e6);
}

/* Answered once the map counts it asked for are in (admin_read parks it). */
static json_t *admin_status(struct agent *ag)
{
	json_t *st = dp_status_json_base(&ag->ld.maps);

	json_object_set_new(st, "map_entries", admin_map_entries(ag, false));

	json_object_set_new(st, "version", json_string(SOCKMESH_VERSION));
	json_object_set_new(st, "pid", json_integer(getpid()));
	json_object_set_new(st, "alive", json_true());
	json_object_set_new(st, "uptime_s", json_real((dp_now_ns() - ag->started_ns) / 1e9));
	json_object_set_new(st, "cgroup", json_string(ag->ld.cgroup));
	if (ag->mb.enabled)
		json_object_set_new(st, "membership", members_status_json(&ag->mb));
	json_object_set_new(st, "pin_path", json_string(ag->ld.pin_dir));
	json_object_set_new(st, "policy", json_string(ag->policy_path));
	json_object_set_new(st, "adopted", json_boolean(ag->ld.adopted_maps));
	{
		json_t *rep = json_array();

		for (int i = 0; i < ag->ld.n_replaced; i++)
			json_array_append_new(rep, json_string(ag->ld.replaced[i]));
		json_object_set_new(st, "replaced_maps", rep);
	}
	json_object_set_new(st, "programs", loader_status_json(&ag->ld));
	json_object_set_new(st, "reloads_ok", json_integer((json_int_t)ag->reloads_ok));
	json_object_set_new(st, "reloads_failed", json_integer((json_int_t)ag->reloads_failed));
	json_object_set_new(st, "last_error", json_string(ag->last_error));
	json_object_set_new(st, "last_reload_ms", json_real(ag->last_reload_ns / 1e6));
	json_object_set_new(st, "last_apply_ms", json_real(ag->ap.last_apply_ns / 1e6));
	json_object_set_new(st, "sweep", admin_sweep_json(&ag->ap.sweep, ag->ap.sweep_due_ns));
	json_object_set_new(st, "diagnostics", json_incref(ag->last_diags));
	json_object_set_new(st, "l7_enabled", json_boolean(ag->l7_enabled));
	if (ag->proxy)
		json_object_set_new(st, "proxy", proxy_stats_json(ag->proxy));
	json_object_set_new(st, "outlier_ejections", json_integer((json_int_t)ag->outlier_ejections));
	json_object_set_new(st, "outlier_returns", json_integer((json_int_t)ag->outlier_returns));
	if (ag->kube)
		json_object_set_new(st, "kubernetes", agent_kube_status(ag));
	return st;
}

/* POST /apply {"files":[{"name":"x.yaml","content":"..."}], "dry_run":false} */
/* POST /apply, /delete {"files": [{name, content}], "dry_run": bool} */
static int admin_files(struct agent *ag, const struct http_req *req, bool del, json_t **out)
{
	json_error_t jerr;
	json_t *body = json_loadb(req->body, req->content_length, 0, &jerr), *files;
	struct agent_file *fv = NULL;
	json_t *diags = json_array();
	char err[512];
	size_t n;
	int ret, status;

	if (!body || !json_is_array(files = json_object_get(body, "files"))) {
		*out = admin_error(body ? "body needs a \"files\" array" : jerr.text);
		json_decref(body);
		json_decref(diags);
		return 400;
	}
	n = json_array_size(files);
	fv = calloc(n + 1, sizeof(*fv));
	for (size_t i = 0; fv && i < n; i++) {
		json_t *f = json_array_get(files, i);
		const char *name = json_string_value(json_object_get(f, "name"));
		json_t *c = json_object_get(f, "content");

		if (!name || !*name || strchr(name, '/') || name[0] == '.' || !json_is_string(c)) {
			*out = admin_error("each file needs a plain \"name\" (no '/') and a \"content\" string");
			free(fv);
			json_decref(body);
			json_decref(diags);
			return 400;
		}
		fv[i] = (struct agent_file){ .name = name, .content = json_string_value(c),
					     .len = json_string_length(c) };
	}
	ret = agent_apply_files(ag, fv, n, json_is_true(json_object_get(body, "dry_run")), del,
				diags, err, sizeof(err));
	status = ret == 0 ? 200 : ret == -EINVAL ? 422 : ret == -ENOTDIR || ret == -EBUSY ? 409 :
		 ret == -ENOENT ? 404 : 500;
	if (ret == 0 && !json_is_true(json_object_get(body, "dry_run")))
		ag->reloads_ok++;
	*out = json_pack("{s:b,s:I,s:s,s:o}", "applied", ret == 0,
			 "generation", (json_int_t)ag->ap.generation, "error", err,
			 "diagnostics", diags);
	free(fv);
	json_decref(body);
	return status;
}

static int admin_apply(struct agent *ag, const struct http_req *req, json_t **out)
{
	return admin_files(ag, req, false, out);
}

static int admin_delete(struct agent *ag, const struct http_req *req, json_t **out)
{
	return admin_files(ag, req, true, out);
}

/* POST /eject {"address":"10.0.0.1:9080","duration_ms":30000}, /restore */
static int admin_eject(struct agent *ag, const struct http_req *req, bool eject, json_t **out)
{
	json_t *body = json_loadb(req->body, req->content_length, 0, NULL);
	const char *addr = json_string_value(json_object_get(body, "address"));
	json_int_t dur = json_integer_value(json_object_get(body, "duration_ms"));
	struct sm_be_key k;
	int ret;

	if (!addr || dp_parse_addr_port(addr, &k) || dur < 0) {
		json_decref(body);
		*out = admin_error("body needs \"address\": \"IP:PORT\" (and \"duration_ms\" >= 0)");
		return 400;
	}
	ret = eject ? dp_backend_eject(&ag->ld.maps, &k, (uint64_t)dur * 1000000ull)
		    : dp_backend_restore(&ag->ld.maps, &k);
	if (ret) {
		*out = admin_error(ret == -ENOENT ? "no such backend" : strerror(-ret));
		json_decref(body);
		return ret == -ENOENT ? 404 : 500;
	}
	log_info("backend %s %s%s", addr, eject ? "ejected" : "restored",
		 eject && dur ? " for a while" : "");
	*out = json_pack("{s:s,s:s}", "address", addr, "state", eject ? "ejected" : "ready");
	json_decref(body);
	return 200;
}

static const char *admin_kind(enum pol_sm_kind k)
{
	switch (k) {
	case POL_SM_EXACT: return "exact";
	case POL_SM_PREFIX: return "prefix";
	case POL_SM_REGEX: return "regex";
	case POL_SM_PRESENT: return "present";
	default: return "any";
	}
}

static void admin_sm(json_t *o, const char *key, const struct pol_strmatch *m)
{
	if (m->kind == POL_SM_NONE)
		return;
	json_object_set_new(o, key, json_pack("{s:s,s:s}", admin_kind(m->kind),
					      m->value ? m->value : "", "kind", admin_kind(m->kind)));
}

static json_t *admin_kvs(const struct pol_kvmatch *kv, size_t n)
{
	json_t *o = json_object();

	for (size_t i = 0; i < n; i++)
		json_object_set_new(o, kv[i].name, json_pack("{s:s}", admin_kind(kv[i].m.kind),
							     kv[i].m.value ? kv[i].m.value : ""));
	return o;
}

static json_t *admin_route_json(const struct l7_route *r, size_t idx)
{
	json_t *o = json_object(), *ms = json_array(), *ds = json_array();
	const struct pol_http_route *pr = r->pol;

	json_object_set_new(o, "index", json_integer((json_int_t)idx));
	if (pr->name)
		json_object_set_new(o, "name", json_string(pr->name));
	for (size_t i = 0; i < pr->n_match; i++) {
		const struct pol_http_match *m = &pr->match[i];
		json_t *x = json_object();

		admin_sm(x, "uri", &m->uri);
		admin_sm(x, "method", &m->method);
		admin_sm(x, "authority", &m->authority);
		admin_sm(x, "scheme", &m->scheme);
		if (m->n_headers)
			json_object_set_new(x, "headers", admin_kvs(m->headers, m->n_headers));
		if (m->n_without_headers)
			json_object_set_new(x, "withoutHeaders", admin_kvs(m->without_headers, m->n_without_headers));
		if (m->n_query_params)
			json_object_set_new(x, "queryParams", admin_kvs(m->query_params, m->n_query_params));
		if (m->port)
			json_object_set_new(x, "port", json_integer(m->port));
		if (m->source_namespace)
			json_object_set_new(x, "sourceNamespace", json_string(m->source_namespace));
		if (m->source_labels.n) {
			json_t *l = json_object();

			for (size_t k = 0; k < m->source_labels.n; k++)
				json_object_set_new(l, m->source_labels.v[k].key,
						    json_string(m->source_labels.v[k].value));
			json_object_set_new(x, "sourceLabels", l);
		}
		json_array_append_new(ms, x);
	}
	json_object_set_new(o, "match", ms);
	for (size_t i = 0; i < r->n_dests; i++)
		json_array_append_new(ds, json_pack("{s:s,s:i}", "cluster",
						    r->dests[i].cluster ? r->dests[i].cluster->name : "?",
						    "weight", (int)r->dests[i].weight));
	json_object_set_new(o, "route", ds);
	if (pr->redirect.set)
		json_object_set_new(o, "redirect", json_pack("{s:s?,s:s?,s:i}", "uri", pr->redirect.uri,
							     "authority", pr->redirect.authority,
							     "code", pr->redirect.code ? pr->redirect.code : 301));
	if (pr->direct.set)
		json_object_set_new(o, "directResponse", json_pack("{s:i}", "status", pr->direct.status));
	if (pr->rewrite.uri || pr->rewrite.authority || pr->rewrite.re)
		json_object_set_new(o, "rewrite", json_pack("{s:s?,s:s?}", "uri", pr->rewrite.uri,
							    "authority", pr->rewrite.authority));
	if (r->timeout_ms)
		json_object_set_new(o, "timeout_ms", json_integer((json_int_t)r->timeout_ms));
	json_object_set_new(o, "retries", json_pack("{s:i,s:I,s:b}", "attempts", (int)r->retry.attempts,
						    "perTryTimeout_ms", (json_int_t)r->retry.per_try_timeout_ms,
						    "configured", r->has_retry));
	if (l7_fault_abort(pr) || l7_fault_delay(pr))
		json_object_set_new(o, "fault", json_pack("{s:f,s:I,s:f,s:i}",
							  "delay_percent", l7_fault_delay(pr) ? pr->fault.delay_percent : 0.0,
							  "delay_ms", (json_int_t)l7_fault_delay(pr),
							  "abort_percent", l7_fault_abort(pr) ? pr->fault.abort_percent : 0.0,
							  "abort_status", l7_fault_abort(pr)));
	if (r->n_mirrors)
		json_object_set_new(o, "mirrors", json_integer((json_int_t)r->n_mirrors));
	return o;
}

/* GET /routes[?service=ns/name|name]: the effective L7 routes, in order. */
static json_t *admin_routes(struct agent *ag, const char *svc)
{
	json_t *arr = json_array(), *l4;
	const struct l7_config *c = ag->l7;
	char vip[INET_ADDRSTRLEN], name[512];

	for (size_t i = 0; c && i < c->n_svcs; i++) {
		const struct l7_svc *s = l7_config_svc(c, i);
		json_t *o, *routes;

		snprintf(name, sizeof(name), "%s/%s", s->ns, s->name);
		if (svc && strcmp(svc, name) && strcmp(svc, s->name) && strcmp(svc, s->fqdn))
			continue;
		routes = json_array();
		inet_ntop(AF_INET, &s->vip, vip, sizeof(vip));
		o = json_pack("{s:s,s:s,s:i,s:s,s:s}", "service", name, "vip", vip, "port", s->port,
			      "why", s->why ? s->why : "", "default_cluster",
			      s->default_cluster ? s->default_cluster->name : "");
		if (s->vhost) {
			json_object_set_new(o, "virtual_service", json_string(s->vhost->name));
			for (size_t r = 0; r < s->vhost->n_routes; r++)
				json_array_append_new(routes, admin_route_json(&s->vhost->routes[r], r));
		}
		json_object_set_new(o, "routes", routes);
		json_array_append_new(arr, o);
	}
	l4 = json_array();
	for (size_t i = 0; c && i < c->n_l4_ports; i++) {
		const struct l7_l4_port *p = &c->l4_ports[i];

		if (svc && strcmp(svc, p->name) && strcmp(svc, strchr(p->name, '/') + 1))
			continue;
		inet_ntop(AF_INET, &p->vip, vip, sizeof(vip));
		json_array_append_new(l4, json_pack("{s:s,s:s,s:i,s:s}", "service", p->name,
						    "vip", vip, "port", p->port, "why", p->why));
	}
	return json_pack("{s:o,s:o,s:b}", "services", arr, "l4_kept", l4,
			 "l7_enabled", ag->l7_enabled);
}

static const char *admin_lb_name(uint8_t lb, uint8_t hk)
{
	switch (lb) {
	case L7_LB_ROUND_ROBIN: return "ROUND_ROBIN";
	case L7_LB_RANDOM: return "RANDOM";
	case L7_LB_HASH:
		return hk == POL_HASH_SOURCE_IP ? "consistentHash(useSourceIp)" :
		       hk == POL_HASH_HEADER ? "consistentHash(httpHeaderName)" :
		       hk == POL_HASH_COOKIE ? "consistentHash(httpCookie)" : "consistentHash";
	default: return "LEAST_REQUEST";
	}
}

static json_t *admin_cluster_json(struct agent *ag, const struct l7_cluster *c)
{
	const struct l7_pool_cfg *p = &c->pool;
	const struct l7_outlier_cfg *o = &c->outlier;
	json_t *hosts = json_array(), *j;
	char a[INET_ADDRSTRLEN];

	for (size_t i = 0; i < c->n_hosts; i++) {
		inet_ntop(AF_INET, &c->hosts[i].addr, a, sizeof(a));
		json_array_append_new(hosts, json_pack("{s:s,s:i,s:b,s:s?}", "address", a,
						       "port", c->hosts[i].port, "ready", c->hosts[i].ready,
						       "pod", c->hosts[i].pod));
	}
	j = json_pack("{s:s,s:s?,s:s?,s:i,s:s,s:s?,s:o,"
			 "s:{s:I,s:I,s:I,s:I,s:I,s:I,s:I},"
			 "s:{s:b,s:I,s:I,s:b,s:I,s:I,s:I,s:I,s:I,s:I}}",
			 "name", c->name, "service", c->fqdn, "subset", c->subset, "port", c->port,
			 "lb", admin_lb_name(c->lb, c->hash_kind), "hash_key", c->hash_key,
			 "hosts", hosts,
			 "connection_pool",
			 "max_connections", (json_int_t)p->max_connections,
			 "connect_timeout_ms", (json_int_t)p->connect_timeout_ms,
			 "http1_max_pending_requests", (json_int_t)p->http1_max_pending,
			 "http2_max_requests", (json_int_t)p->max_requests,
			 "max_requests_per_connection", (json_int_t)p->max_requests_per_conn,
			 "max_retries", (json_int_t)p->max_retries,
			 "idle_timeout_ms", (json_int_t)p->idle_timeout_ms,
			 "outlier_detection",
			 "enabled", o->enabled, "consecutive_5xx", (json_int_t)o->consecutive_5xx,
			 "consecutive_gateway_errors", (json_int_t)o->consecutive_gateway,
			 "split_external_local_origin_errors", o->split_local_origin,
			 "consecutive_local_origin_failures", (json_int_t)o->consecutive_local_origin,
			 "interval_ms", (json_int_t)o->interval_ms,
			 "base_ejection_ms", (json_int_t)o->base_ejection_ms,
			 "max_ejection_ms", (json_int_t)o->max_ejection_ms,
			 "max_ejection_percent", (json_int_t)o->max_ejection_pct,
			 "min_health_percent", (json_int_t)o->min_health_pct);
	/* units held right now over every client pod: all zero when traffic stops */
	if (j && ag->up)
		json_object_set_new(j, "circuit_breakers_in_use", json_pack("{s:I,s:I,s:I,s:I}",
			"connections", (json_int_t)up_cb_total(ag->up, c->id, UP_CB_CONNECTIONS),
			"pending", (json_int_t)up_cb_total(ag->up, c->id, UP_CB_PENDING),
			"requests", (json_int_t)up_cb_total(ag->up, c->id, UP_CB_REQUESTS),
			"retries", (json_int_t)up_cb_total(ag->up, c->id, UP_CB_RETRIES)));
	return j;
}

/* GET /config_dump: the effective L7 config after defaults, plus the L4 view. */
static json_t *admin_config_dump(struct agent *ag)
{
	json_t *root = admin_routes(ag, NULL), *cls = json_array(), *gws = json_array();
	const struct l7_config *c = ag->l7;

	for (size_t i = 0; c && i < c->n_clusters; i++)
		json_array_append_new(cls, admin_cluster_json(ag, l7_config_cluster(c, i)));
	for (size_t i = 0; c && i < c->n_gateways; i++) {
		json_t *srv = json_array(), *vhs = json_array();

		for (size_t k = 0; k < c->gateways[i].n_servers; k++)
			json_array_append_new(srv, json_pack("{s:i,s:s?}", "port",
							     c->gateways[i].servers[k].port,
							     "bind", c->gateways[i].servers[k].bind));
		for (size_t k = 0; k < c->gateways[i].n_vhosts; k++)
			json_array_append_new(vhs, json_string(c->gateways[i].vhosts[k]->name));
		json_array_append_new(gws, json_pack("{s:s,s:o,s:o}", "name", c->gateways[i].name,
						     "servers", srv, "virtual_services", vhs));
	}
	json_object_set_new(root, "clusters", cls);
	json_object_set_new(root, "gateways", gws);
	json_object_set_new(root, "generation", json_integer((json_int_t)ag->ap.generation));
	json_object_set_new(root, "l7_generation", json_integer(c ? (json_int_t)c->generation : 0));
	json_object_set_new(root, "l4", dp_services_json(&ag->ld.maps));
	return root;
}

/*
 * What /services, /backends and /top read besides the maps: on the loop
 * the agent's own, on the admin worker a reference of the L7 config (the
 * upstream registry and the proxy live as long as the agent and are read
 * under their own locks).
 */
struct admin_view {
	struct l7_config *l7;
	struct up_registry *up;
	struct proxy *proxy;
	bool l7_enabled;
	uint64_t started_ns;
};

static struct admin_view admin_view_of(struct agent *ag)
{
	return (struct admin_view){ .l7 = ag->l7, .up = ag->up, .proxy = ag->proxy,
				    .l7_enabled = ag->l7_enabled, .started_ns = ag->started_ns };
}

/* Add L7 facts to /services and /backends rows the kernel maps produced. */
static void admin_l7_annotate(const struct admin_view *ag, json_t *root)
{
	json_t *svcs = json_object_get(root, "services"), *bes = json_object_get(root, "backends");
	uint64_t now_ms = dp_now_ns() / 1000000;

	for (size_t i = 0; ag->l7 && i < json_array_size(svcs); i++) {
		json_t *s = json_array_get(svcs, i);
		struct in_addr a;
		const struct l7_svc *ls;

		if (inet_pton(AF_INET, json_string_value(json_object_get(s, "vip")) ?: "", &a) != 1)
			continue;
		ls = l7_config_find_svc(ag->l7, a.s_addr, (uint16_t)json_integer_value(json_object_get(s, "port")));
		if (ls) {
			json_object_set_new(s, "why", json_string(ls->why ? ls->why : ""));
			json_object_set_new(s, "l7_proxy", json_boolean(ag->l7_enabled));
		} else {
			const char *l4 = l7_config_l4_why(ag->l7, a.s_addr,
				(uint16_t)json_integer_value(json_object_get(s, "port")));

			json_object_set_new(s, "why", json_string(l4 ? l4 :
				"no http routes, HTTP port name or L7 policy"));
			if (l4)
				json_object_set_new(s, "l4_why", json_string(l4));
		}
	}
	for (size_t i = 0; ag->up && i < json_array_size(bes); i++) {
		json_t *b = json_array_get(bes, i);
		struct in_addr a;
		uint32_t times = 0;
		uint64_t until = 0;
		int64_t active = 0;

		if (inet_pton(AF_INET, json_string_value(json_object_get(b, "address")) ?: "", &a) != 1)
			continue;
		up_host_info(ag->up, a.s_addr, (uint16_t)json_integer_value(json_object_get(b, "port")),
			     &times, &until, &active);
		json_object_set_new(b, "times_ejected", json_integer(times));
		json_object_set_new(b, "active_requests", json_integer(active));
		json_object_set_new(b, "requests",
				    json_integer((json_int_t)up_host_requests(ag->up, a.s_addr,
					(uint16_t)json_integer_value(json_object_get(b, "port")))));
		if (until > now_ms)
			json_object_set_new(b, "returns_in_ms", json_integer((json_int_t)(until - now_ms)));
	}
}

/* ---- POST /explain: a dry run of the routing decision ---- */

static const char *admin_explain_header(const void *ctx, const char *name, size_t *len)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)ctx, key, v) {
		if (!strcasecmp(key, name) && json_is_string(v)) {
			*len = json_string_length(v);
			return json_string_value(v);
		}
	}
	return NULL;
}

/* "http://host[:port]/path?query" (scheme optional) */
static int admin_parse_url(const char *url, char *host, size_t hlen, uint16_t *port,
			   const char **path, size_t *path_len, const char **query)
{
	const char *p = url, *h, *e;
	unsigned long pv = 80;

	if (!strncmp(p, "http://", 7))
		p += 7;
	else if (strstr(p, "://"))
		return -EINVAL;
	h = p;
	e = h + strcspn(h, ":/?");
	if (e == h || (size_t)(e - h) >= hlen)
		return -EINVAL;
	snprintf(host, hlen, "%.*s", (int)(e - h), h);
	if (*e == ':') {
		char *end;

		pv = strtoul(e + 1, &end, 10);
		if (end == e + 1 || pv == 0 || pv > 65535)
			return -EINVAL;
		e = end;
	}
	*port = (uint16_t)pv;
	*query = strchr(e, '?');
	if (*e == '/') {
		*path = e;
		*path_len = *query ? (size_t)(*query - e) : strlen(e);
	} else {
		*path = "/";
		*path_len = 1;
	}
	return 0;
}

static bool admin_host_is_svc(const char *host, const char *ns, const char *name, const char *fqdn)
{
	char buf[512];

	if (!strcmp(host, name) || (fqdn && !strcmp(host, fqdn)))
		return true;
	snprintf(buf, sizeof(buf), "%s.%s", name, ns);
	if (!strcmp(host, buf))
		return true;
	snprintf(buf, sizeof(buf), "%s.%s.svc", name, ns);
	return !strcmp(host, buf);
}

static const struct l7_pod *admin_find_pod(const struct l7_config *c, const char *spec)
{
	const char *slash = strchr(spec, '/');

	for (size_t i = 0; c && i < c->n_pods; i++) {
		const struct l7_pod *p = l7_config_pod(c, i);

		if (slash ? (!strncmp(spec, p->ns, slash - spec) && !p->ns[slash - spec] &&
			     !strcmp(slash + 1, p->name)) : !strcmp(spec, p->name))
			return p;
	}
	return NULL;
}

static json_t *admin_explain_backends(struct agent *ag, const struct l7_cluster *cl, json_t *kbe)
{
	json_t *arr = json_array();
	uint64_t now_ms = dp_now_ns() / 1000000;
	char a[INET_ADDRSTRLEN];

	for (size_t i = 0; i < cl->n_hosts; i++) {
		const struct l7_host *h = &cl->hosts[i];
		const char *state = h->ready ? "ready" : "not ready";
		uint32_t times = 0;
		uint64_t until = 0;
		int64_t active = 0;
		json_t *o;

		inet_ntop(AF_INET, &h->addr, a, sizeof(a));
		for (size_t k = 0; k < json_array_size(kbe); k++) {
			json_t *b = json_array_get(kbe, k);

			if (!strcmp(json_string_value(json_object_get(b, "address")) ?: "", a) &&
			    json_integer_value(json_object_get(b, "port")) == h->port)
				state = json_string_value(json_object_get(b, "state")) ?: state;
		}
		if (ag->up)
			up_host_info(ag->up, h->addr, h->port, &times, &until, &active);
		o = json_pack("{s:s,s:i,s:s?,s:s,s:b}", "address", a, "port", h->port, "pod", h->pod,
			      "state", state, "eligible", h->ready && !strcmp(state, "ready"));
		if (until > now_ms)
			json_object_set_new(o, "returns_in_ms", json_integer((json_int_t)(until - now_ms)));
		json_object_set_new(o, "times_ejected", json_integer(times));
		json_array_append_new(arr, o);
	}
	return arr;
}

static json_t *admin_explain_dest(struct agent *ag, const struct l7_cluster *cl, uint32_t w,
				  uint32_t total, json_t *kbe)
{
	return json_pack("{s:s,s:s?,s:I,s:f,s:o}", "cluster", cl->name, "subset", cl->subset,
			 "weight", (json_int_t)w, "percent", total ? 100.0 * w / total : 100.0,
			 "backends", admin_explain_backends(ag, cl, kbe));
}

static int admin_explain(struct agent *ag, const struct http_req *req, json_t **out)
{
	json_t *body = json_loadb(req->body, req->content_length, 0, NULL);
	const char *url = json_string_value(json_object_get(body, "to"));
	const char *from = json_string_value(json_object_get(body, "from"));
	const char *method = json_string_value(json_object_get(body, "method")) ?: "GET";
	json_t *hdrs = json_object_get(body, "headers"), *res, *routes, *kbe = NULL, *l4;
	const char *path, *query;
	size_t path_len;
	json_t *kroot;
	const struct l7_svc *s = NULL;
	const struct l7_pod *src = NULL;
	struct in_addr vip;
	char host[256], name[512];
	bool is_ip;
	uint16_t port;

	if (!url || admin_parse_url(url, host, sizeof(host), &port, &path, &path_len, &query) ||
	    (hdrs && !json_is_object(hdrs))) {
		*out = admin_error("body needs \"to\": \"http://HOST[:PORT]/PATH\", optional \"from\": "
				   "\"[ns/]pod\" and \"headers\": {name: value}");
		json_decref(body);
		return 400;
	}
	if (from && !(src = admin_find_pod(ag->l7, from))) {
		snprintf(name, sizeof(name), "no pod %s in the policy", from);
		*out = admin_error(name);
		json_decref(body);
		return 404;
	}
	is_ip = inet_pton(AF_INET, host, &vip) == 1;
	for (size_t i = 0; ag->l7 && i < ag->l7->n_svcs && !s; i++) {
		const struct l7_svc *x = l7_config_svc(ag->l7, i);

		if (x->port == port && (is_ip ? x->vip == vip.s_addr :
					admin_host_is_svc(host, x->ns, x->name, x->fqdn)))
			s = x;
	}
	res = json_pack("{s:s,s:s?}", "to", url, "from", src ? from : NULL);
	if (src)
		json_object_set_new(res, "source", json_pack("{s:s,s:s}", "namespace", src->ns,
							     "name", src->name));
	if (!s) {
		/* not an L7 port: the kernel's view decides (L4 or not in the mesh) */
		json_t *svcs;

		l4 = dp_services_json(&ag->ld.maps);
		svcs = json_object_get(l4, "services");
		for (size_t i = 0; i < json_array_size(svcs); i++) {
			json_t *x = json_array_get(svcs, i);
			const char *nm = json_string_value(json_object_get(x, "name")) ?: "";
			const char *sl = strchr(nm, '/');
			char ns[256];

			if (json_integer_value(json_object_get(x, "port")) != port)
				continue;
			snprintf(ns, sizeof(ns), "%.*s", sl ? (int)(sl - nm) : 0, nm);
			if (is_ip ? !strcmp(json_string_value(json_object_get(x, "vip")) ?: "", host)
				  : (sl && admin_host_is_svc(host, ns, sl + 1, NULL))) {
				json_object_set_new(res, "service", json_string(nm));
				json_object_set_new(res, "vip", json_incref(json_object_get(x, "vip")));
				json_object_set_new(res, "port", json_integer(port));
				struct in_addr va;
				const char *l4 = NULL;

				if (inet_pton(AF_INET, json_string_value(json_object_get(x, "vip")) ?: "",
					      &va) == 1)
					l4 = l7_config_l4_why(ag->l7, va.s_addr, (uint16_t)port);
				json_object_set_new(res, "path", json_string("L4"));
				json_object_set_new(res, "why", json_string(l4 ? l4 :
					"no http routes, HTTP port name or L7 policy: connect4 picks a backend "
					"in the kernel"));
				json_object_set_new(res, "l4", json_incref(x));
				break;
			}
		}
		json_decref(l4);
		if (!json_object_get(res, "path")) {
			json_object_set_new(res, "path", json_string("none"));
			json_object_set_new(res, "why", json_string(
				"no mesh service has this host and port: the connection is not touched"));
		}
		json_decref(body);
		*out = res;
		return 200;
	}
	inet_ntop(AF_INET, &s->vip, host, sizeof(host));
	snprintf(name, sizeof(name), "%s/%s", s->ns, s->name);
	json_object_set_new(res, "service", json_string(name));
	json_object_set_new(res, "vip", json_string(host));
	json_object_set_new(res, "port", json_integer(port));
	json_object_set_new(res, "path", json_string(ag->l7_enabled ? "L7" : "L4"));
	json_object_set_new(res, "why", json_string(ag->l7_enabled ? (s->why ? s->why : "") :
		"would be L7, but the agent runs without --l7-listen"));
	kroot = dp_backends_json(&ag->ld.maps, name);
	kbe = json_object_get(kroot, "backends");
	routes = json_array();
	if (s->vhost) {
		struct l7_request_view rq = {
			.method = method, .method_len = strlen(method),
			.path = path, .path_len = path_len,
			.query = query ? query + 1 : NULL, .query_len = query ? strlen(query + 1) : 0,
			.authority = url, .authority_len = 0,
			.scheme = "http", .port = port, .header = admin_explain_header,
			.ctx = hdrs ? hdrs : json_object(), .source = src,
		};
		const char *auth = json_string_value(json_object_get(hdrs, "host"));
		char authbuf[300];
		const struct l7_route *hit = NULL;

		/* the Host header the client would send */
		if (!auth) {
			char h2[256];
			const char *ps, *qs;
			size_t pl;
			uint16_t p2;

			admin_parse_url(url, h2, sizeof(h2), &p2, &ps, &pl, &qs);
			snprintf(authbuf, sizeof(authbuf), p2 == 80 ? "%s" : "%s:%u", h2, p2);
			auth = authbuf;
		}
		rq.authority = auth;
		rq.authority_len = strlen(auth);
		json_object_set_new(res, "virtual_service", json_string(s->vhost->name));
		for (size_t i = 0; i < s->vhost->n_routes && !hit; i++) {
			struct l7_vhost one = *s->vhost;
			const struct l7_route *r = &s->vhost->routes[i];
			const struct pol_http_match *m = NULL;
			size_t idx;
			json_t *o;

			one.routes = (struct l7_route *)r;
			one.n_routes = 1;
			hit = l7_route_match(&one, &rq, &idx, &m);
			o = json_pack("{s:i,s:s?,s:b,s:o}", "index", (int)i, "name", r->pol->name,
				      "matched", hit != NULL, "rule", admin_route_json(r, i));
			if (hit && m)
				json_object_set_new(o, "matched_block", json_integer(m - r->pol->match));
			if (!hit)
				json_object_set_new(o, "why", json_string(r->pol->n_match > 1 ?
					"none of its match blocks matched" : "its match block did not match"));
			json_array_append_new(routes, o);
			if (hit) {
				json_t *ds = json_array();

				for (size_t d = 0; d < r->n_dests; d++)
					json_array_append_new(ds, admin_explain_dest(ag, r->dests[d].cluster,
						r->dests[d].weight, r->total_weight, kbe));
				json_object_set_new(res, "matched_route", json_integer((json_int_t)i));
				json_object_set_new(res, "destinations", ds);
				if (r->pol->redirect.set)
					json_object_set_new(res, "redirect", json_integer(r->pol->redirect.code ?
											 r->pol->redirect.code : 301));
				if (r->pol->direct.set)
					json_object_set_new(res, "direct_response", json_integer(r->pol->direct.status));
			}
		}
		if (!hit)
			json_object_set_new(res, "result", json_string("no route matched: 404 (NR)"));
		if (!hdrs)
			json_decref((json_t *)rq.ctx);
	} else if (s->default_cluster) {
		json_t *ds = json_array();

		json_array_append_new(ds, admin_explain_dest(ag, s->default_cluster, 100, 100, kbe));
		json_object_set_new(res, "destinations", ds);
		json_object_set_new(res, "result", json_string("no VirtualService: the service's default cluster"));
	}
	json_object_set_new(res, "routes", routes);
	json_decref(kroot);
	json_decref(body);
	*out = res;
	return 200;
}

/* GET /top: per service port, the kernel's view plus the proxy's request totals. */
static json_t *admin_top(const struct admin_view *ag, const struct dp_maps *m)
{
	struct proxy_rseries *v = NULL;
	size_t n = 0;
	json_t *sv = dp_services_json(m), *svcs = json_object_get(sv, "services");
	json_t *rows = json_array();
	json_t *done = json_object();
	char fqdn[512];

	if (ag->proxy && proxy_request_series(ag->proxy, &v, &n))
		n = 0;
	admin_l7_annotate(ag, sv);
	for (size_t i = 0; i < json_array_size(svcs); i++) {
		json_t *s = json_array_get(svcs, i), *b = json_array();
		uint64_t rq = 0, err = 0, bk[PROXY_N_BUCKETS] = {};
		bool l7 = !strcmp(json_string_value(json_object_get(s, "path")) ?: "", "L7");

		prom_svc_fqdn(json_string_value(json_object_get(s, "name")) ?: "?", fqdn, sizeof(fqdn));
		/* the series carry no port: a service's requests go to its first L7 port */
		if (l7 && !json_object_get(done, fqdn)) {
			json_object_set_new(done, fqdn, json_true());
			for (size_t k = 0; k < n; k++) {
				if (strcmp(v[k].fqdn, fqdn))
					continue;
				rq += v[k].count;
				if (v[k].code >= 500 || v[k].code == 0)
					err += v[k].count;
				for (int x = 0; x < PROXY_N_BUCKETS; x++)
					bk[x] += v[k].dur_ms.buckets[x];
			}
		}
		for (int x = 0; x < PROXY_N_BUCKETS; x++)
			json_array_append_new(b, json_integer((json_int_t)bk[x]));
		json_array_append_new(rows, json_pack("{s:O,s:s,s:O,s:O,s:O,s:O,s:O,s:O,s:O,s:I,s:I,s:o}",
			"service", json_object_get(s, "name"), "fqdn", fqdn,
			"vip", json_object_get(s, "vip"), "port", json_object_get(s, "port"),
			"path", json_object_get(s, "path"), "active", json_object_get(s, "active"),
			"backends_total", json_object_get(s, "backends_total"),
			"backends_ejected", json_object_get(s, "backends_ejected"),
			"connects", json_object_get(s, "connects"),
			"requests", (json_int_t)rq, "errors", (json_int_t)err, "buckets", b));
	}
	free(v);
	json_decref(done);
	json_decref(sv);
	return json_pack("{s:o,s:f}", "services", rows, "uptime_s", (dp_now_ns() - ag->started_ns) / 1e9);
}

/* ---- the route table: one handler per (method, path) ---- */

static int admin_h_healthz(struct agent *ag, const struct http_req *req, json_t **out)
{
	*out = json_pack("{s:s}", "status", "ok");
	return 200;
}

static int admin_h_ready(struct agent *ag, const struct http_req *req, json_t **out)
{
	bool ready = ag->ap.generation > 0;

	*out = json_pack("{s:b,s:I}", "ready", ready, "generation", (json_int_t)ag->ap.generation);
	if (ag->kube)
		json_object_set_new(*out, "syncing", agent_kube_syncing(ag));
	return ready ? 200 : 503;
}

/* /status's kubernetes part alone: no map walk, cheap to poll */
static int admin_h_kubernetes(struct agent *ag, const struct http_req *req, json_t **out)
{
	if (!ag->kube) {
		*out = admin_error("this agent reads policy files (--policy)");
		return 404;
	}
	*out = agent_kube_status(ag);
	json_object_set_new(*out, "generation", json_integer((json_int_t)ag->ap.generation));
	return 200;
}

/* the objects an agent on the Kubernetes API holds [?kind=KIND][&name=NS/NAME] */
static int admin_h_objects(struct agent *ag, const struct http_req *req, json_t **out)
{
	char kind[64], name[600];
	int hk = !http_query_get(req->query, "kind", kind, sizeof(kind));
	int hn = !http_query_get(req->query, "name", name, sizeof(name));
	json_t *objs;

	if (agent_kube_objects(ag, hk ? kind : NULL, hn ? name : NULL, &objs)) {
		*out = admin_error(ag->kube ? "out of memory" : "this agent reads policy files "
				   "(--policy): they are its objects");
		return ag->kube ? 500 : 404;
	}
	*out = json_pack("{s:o}", "objects", objs);
	return 200;
}

/* GET /status without the map counter thread (admin_read waits for it when there is one) */
static int admin_h_status(struct agent *ag, const struct http_req *req, json_t **out)
{
	json_t *walked = dp_status_json(&ag->ld.maps);

	*out = admin_status(ag);
	json_object_set(*out, "map_entries", json_object_get(walked, "map_entries"));
	json_decref(walked);
	return 200;
}

/* The body of a whole-map GET: on the admin worker, or on the loop without one. */
enum admin_map_get { ADMIN_GET_SERVICES, ADMIN_GET_BACKENDS, ADMIN_GET_TOP };

static json_t *admin_map_get_json(enum admin_map_get what, const struct admin_view *v,
				  const struct dp_maps *m, const char *svc)
{
	json_t *out;

	if (what == ADMIN_GET_TOP)
		return admin_top(v, m);
	out = what == ADMIN_GET_SERVICES ? dp_services_json(m) : dp_backends_json(m, svc);
	admin_l7_annotate(v, out);
	return out;
}

static int admin_h_services(struct agent *ag, const struct http_req *req, json_t **out)
{
	struct admin_view v = admin_view_of(ag);

	*out = admin_map_get_json(ADMIN_GET_SERVICES, &v, &ag->ld.maps, NULL);
	return 200;
}

static int admin_h_backends(struct agent *ag, const struct http_req *req, json_t **out)
{
	struct admin_view v = admin_view_of(ag);
	char svc[256];
	int has = !http_query_get(req->query, "service", svc, sizeof(svc));

	*out = admin_map_get_json(ADMIN_GET_BACKENDS, &v, &ag->ld.maps, has ? svc : NULL);
	return 200;
}

static int admin_h_routes(struct agent *ag, const struct http_req *req, json_t **out)
{
	char svc[256];
	int has = !http_query_get(req->query, "service", svc, sizeof(svc));

	*out = admin_routes(ag, has ? svc : NULL);
	return 200;
}

static int admin_h_config_dump(struct agent *ag, const struct http_req *req, json_t **out)
{
	*out = admin_config_dump(ag);
	return 200;
}

static int admin_h_top(struct agent *ag, const struct http_req *req, json_t **out)
{
	struct admin_view v = admin_view_of(ag);

	*out = admin_map_get_json(ADMIN_GET_TOP, &v, &ag->ld.maps, NULL);
	return 200;
}

static int admin_h_graph(struct agent *ag, const struct http_req *req, json_t **out)
{
	*out = telemetry_graph(ag);
	return 200;
}

static int admin_h_reload(struct agent *ag, const struct http_req *req, json_t **out)
{
	char err[512];
	json_t *diags = json_array();
	int ret = agent_reload(ag, NULL, 0, false, diags, err, sizeof(err));

	if (ret)
		ag->reloads_failed++;
	else
		ag->reloads_ok++;
	*out = json_pack("{s:b,s:I,s:s,s:o}", "applied", ret == 0, "generation",
			 (json_int_t)ag->ap.generation, "error", err, "diagnostics", diags);
	return ret ? 422 : 200;
}

static int admin_h_eject(struct agent *ag, const struct http_req *req, json_t **out)
{
	return admin_eject(ag, req, true, out);
}

static int admin_h_restore(struct agent *ag, const struct http_req *req, json_t **out)
{
	return admin_eject(ag, req, false, out);
}

/* GET /metrics writes Prometheus text itself (admin_read). */
static const struct admin_route {
	const char *method;
	const char *path;
	int (*handler)(struct agent *ag, const struct http_req *req, json_t **out);
} admin_routes_table[] = {
	{ "GET",  SM_API_HEALTHZ,	admin_h_healthz },
	{ "GET",  SM_API_READY,		admin_h_ready },
	{ "GET",  SM_API_STATUS,	admin_h_status },
	{ "GET",  SM_API_KUBERNETES,	admin_h_kubernetes },
	{ "GET",  SM_API_OBJECTS,	admin_h_objects },
	{ "GET",  SM_API_SERVICES,	admin_h_services },
	{ "GET",  SM_API_BACKENDS,	admin_h_backends },
	{ "GET",  SM_API_ROUTES,	admin_h_routes },
	{ "GET",  SM_API_CONFIG_DUMP,	admin_h_config_dump },
	{ "GET",  SM_API_TOP,		admin_h_top },
	{ "GET",  SM_API_GRAPH,		admin_h_graph },
	{ "POST", SM_API_EXPLAIN,	admin_explain },
	{ "POST", SM_API_APPLY,		admin_apply },
	{ "POST", SM_API_DELETE,	admin_delete },
	{ "POST", SM_API_RELOAD,	admin_h_reload },
	{ "POST", SM_API_EJECT,		admin_h_eject },
	{ "POST", SM_API_RESTORE,	admin_h_restore },
};

#define ADMIN_N_ROUTES (sizeof(admin_routes_table) / sizeof(admin_routes_table[0]))

/* Before the first apply (syncing from the API) only these answer. */
static bool admin_starting_route(const struct http_req *req)
{
	return !strcmp(req->method, "GET") &&
	       (!strcmp(req->path, SM_API_HEALTHZ) || !strcmp(req->path, SM_API_READY) ||
		!strcmp(req->path, SM_API_KUBERNETES));
}

static int admin_route(struct agent *ag, const struct http_req *req, json_t **out)
{
	bool path_known = !strcmp(req->path, SM_API_METRICS);
	char help[512];
	size_t off;

	if (ag->starting && !admin_starting_route(req)) {
		*out = admin_error("starting: nothing is applied until every kind has synced "
				   "from the Kubernetes API (GET " SM_API_READY " lists them)");
		return 503;
	}
	for (size_t i = 0; i < ADMIN_N_ROUTES; i++) {
		const struct admin_route *r = &admin_routes_table[i];

		if (strcmp(req->path, r->path))
			continue;
		if (!strcmp(req->method, r->method))
			return r->handler(ag, req, out);
		path_known = true;
	}
	if (path_known) {
		*out = admin_error("method not allowed");
		return 405;
	}
	off = (size_t)snprintf(help, sizeof(help), "not found: try GET %s", SM_API_METRICS);
	for (size_t i = 0; i < ADMIN_N_ROUTES && off < sizeof(help); i++)
		off += (size_t)snprintf(help + off, sizeof(help) - off, " %s %s",
					admin_routes_table[i].method, admin_routes_table[i].path);
	*out = admin_error(help);
	return 404;
}

/* A whole-map GET for the admin worker: the connection is the job's. */
struct admin_map_job {
	struct adminwork_job base;
	enum admin_map_get what;
	int fd;
	bool has_svc;
	char svc[256];
	struct admin_view v;		/* v.l7: a reference */
};

static void admin_map_job_run(struct adminwork_job *job, const struct dp_maps *m)
{
	struct admin_map_job *j = (struct admin_map_job *)job;
	json_t *out = admin_map_get_json(j->what, &j->v, m, j->has_svc ? j->svc : NULL);

	admin_send(j->fd, out ? 200 : 500, out);
	json_decref(out);
}

static void admin_map_job_drop(struct adminwork_job *job)
{
	struct admin_map_job *j = (struct admin_map_job *)job;

	close(j->fd);
	if (j->v.l7)
		l7_config_put(j->v.l7);
	free(j);
}

/*
 * GET /services, /backends, /top: queue the request for the admin worker
 * (started at the first one) and forget the connection; the worker answers
 * and closes it. false: not such a request, or no worker (out of memory or
 * threads): answered on the loop as before.
 */
static bool admin_offload(struct agent *ag, struct admin_conn *c, const struct http_req *req)
{
	struct admin_map_job *j;
	enum admin_map_get what;
	json_t *busy;

	if (strcmp(req->method, "GET"))
		return false;
	if (!strcmp(req->path, SM_API_SERVICES))
		what = ADMIN_GET_SERVICES;
	else if (!strcmp(req->path, SM_API_BACKENDS))
		what = ADMIN_GET_BACKENDS;
	else if (!strcmp(req->path, SM_API_TOP))
		what = ADMIN_GET_TOP;
	else
		return false;
	if (!ag->adminwork && !(ag->adminwork = adminwork_start(&ag->ld.maps))) {
		log_warn("cannot start the admin worker thread (%s): %s answered on the loop",
			 strerror(errno), req->path);
		return false;
	}
	j = calloc(1, sizeof(*j));
	if (!j)
		return false;
	j->base.run = admin_map_job_run;
	j->base.drop = admin_map_job_drop;
	j->what = what;
	j->has_svc = what == ADMIN_GET_BACKENDS &&
		     !http_query_get(req->query, "service", j->svc, sizeof(j->svc));
	j->v = admin_view_of(ag);
	if (j->v.l7)
		l7_config_get(j->v.l7);
	j->fd = c->fd;
	c->fd = -1;		/* the job's now */
	if (adminwork_submit(ag->adminwork, &j->base)) {
		busy = admin_error("busy: too many /services, /backends or /top requests in progress");
		admin_send(j->fd, 503, busy);
		json_decref(busy);
		admin_map_job_drop(&j->base);
	}
	admin_conn_close(c);
	return true;
}

static void admin_accept(struct agent *ag, int lfd)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), i;

		if (fd < 0)
			return;
		for (i = 0; i < AGENT_MAX_ADMIN_CONNS && ag->conns[i].fd >= 0; i++)
			;
		if (i == AGENT_MAX_ADMIN_CONNS) {
			json_t *e = admin_error("too many admin connections");

			admin_send(fd, 503, e);
			json_decref(e);
			close(fd);
			continue;
		}
		ag->conns[i].fd = fd;
		ag->conns[i].read_only = lfd != ag->admin_fd;
		ag->conns[i].deadline_ns = dp_now_ns() + AGENT_ADMIN_TIMEOUT_NS;
	}
}

static void admin_read(struct agent *ag, struct admin_conn *c)
{
	struct http_req req;
	json_t *out = NULL;
	int ret, status;

	for (;;) {
		ssize_t r;

		if (c->cap - c->len < 4096) {
			size_t cap = c->cap ? c->cap * 2 : 8192;
			char *nb;

			if (cap > HTTP_BODY_MAX + HTTP_HEAD_MAX + 8192) {
				out = admin_error("request too large");
				admin_send(c->fd, 413, out);
				goto done;
			}
			nb = realloc(c->buf, cap);
			if (!nb)
				goto done;
			c->buf = nb;
			c->cap = cap;
		}
		r = recv(c->fd, c->buf + c->len, c->cap - c->len - 1, 0);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (r <= 0)
			goto done;
		c->len += r;
	}
	ret = http_parse_request(c->buf, c->len, &req);
	if (ret == 0)
		return;	/* incomplete */
	if (ret < 0) {
		out = admin_error(ret == -E2BIG ? "request too large" : "malformed request");
		admin_send(c->fd, ret == -E2BIG ? 431 : 400, out);
		goto done;
	}
	if (c->read_only && strcmp(req.method, "GET")) {
		out = admin_error("the TCP admin listener is read-only: use the unix socket");
		admin_send(c->fd, 405, out);
		goto done;
	}
	if (!ag->starting && !strcmp(req.path, SM_API_METRICS) && !strcmp(req.method, "GET")) {
		admin_metrics(ag, c->fd);
		goto done;
	}
	/* /services, /backends, /top: built and sent by the admin worker */
	if (!ag->starting && admin_offload(ag, c, &req))
		return;
	/* /status waits for the maps to be counted, off the loop (admin_counted) */
	if (!ag->starting && !strcmp(req.path, SM_API_STATUS) && !strcmp(req.method, "GET") &&
	    (c->wait_ticket = admin_map_count(ag)))
		return;
	status = admin_route(ag, &req, &out);
	admin_send(c->fd, status, out);
done:
	json_decref(out);
	admin_conn_close(c);
}

/* A map count is in: answer the /status requests that waited for it. */
static void admin_counted(struct agent *ag)
{
	uint64_t done = mapcount_done(ag->mapcount);

	for (int i = 0; i < AGENT_MAX_ADMIN_CONNS; i++) {
		struct admin_conn *c = &ag->conns[i];
		json_t *st;

		if (c->fd < 0 || !c->wait_ticket || c->wait_ticket > done)
			continue;
		st = admin_status(ag);
		admin_send(c->fd, 200, st);
		json_decref(st);
		admin_conn_close(c);
	}
}

void admin_handle(struct agent *ag, struct pollfd *pfd, int n)
{
	for (int i = 0; i < n; i++) {
		if (!pfd[i].revents)
			continue;
		if (ag->mapcount && pfd[i].fd == mapcount_fd(ag->mapcount)) {
			admin_counted(ag);
			continue;
		}
		if (pfd[i].fd == ag->admin_fd || pfd[i].fd == ag->admin_tcp_fd) {
			admin_accept(ag, pfd[i].fd);
			continue;
		}
		for (int j = 0; j < AGENT_MAX_ADMIN_CONNS; j++)
			if (ag->conns[j].fd == pfd[i].fd) {
				admin_read(ag, &ag->conns[j]);
				break;
			}
	}
}

void admin_expire(struct agent *ag, uint64_t now_ns)
{
	for (int i = 0; i < AGENT_MAX_ADMIN_CONNS; i++)
		if (ag->conns[i].fd >= 0 && ag->conns[i].deadline_ns < now_ns)
			admin_conn_close(&ag->conns[i]);
}
