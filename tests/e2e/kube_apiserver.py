#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""A Kubernetes API server for tests (Python stdlib only).

It follows the API conventions the agent depends on:
  - LIST with limit/continue (a continue token of a compacted revision: 410),
    metadata.resourceVersion of the list; PartialObjectMetadataList when the
    Accept header asks for it (as=PartialObjectMetadataList;g=meta.k8s.io;v=v1)
  - WATCH (?watch=true) from a resourceVersion: ADDED/MODIFIED/DELETED events,
    BOOKMARKs (allowWatchBookmarks) every --bookmark-s, closed after
    timeoutSeconds; a resourceVersion older than the last compaction gets an
    ERROR event with code 410 (as the API server does), or HTTP 410 with
    --gone-as-status
  - fieldSelector spec.nodeName=X / spec.nodeName!=X on pods (an object that
    stops matching is DELETED from that watch, one that starts is ADDED)
  - bearer tokens (401 otherwise), 403 for a verb taken away, 404 for a kind
    whose CRD is not installed (the Istio group is absent until installed)
  - TLS with the certificate it is given (the test makes a CA with openssl);
    with --h2 it offers HTTP/2 (ALPN, python3-h2) and serves every request of
    a connection as a stream of it, watches side by side
    (/_control/stats: h2_connections and http1_requests count API traffic,
    not the test's control requests; h2_max_open_streams)

Test control, on the same port without auth (loopback only), JSON bodies:
  POST /_control/apply    {"objects": [obj, ...]}   create or update
  POST /_control/delete   {"objects": [{"kind","metadata":{"namespace","name"}}]}
  POST /_control/compact  every open watch gets ERROR 410; older rvs are gone
  POST /_control/close    close every open watch stream
  POST /_control/garbage  a line that is not JSON into every open watch
  POST /_control/tokens   {"tokens": [...]}         the tokens accepted
  POST /_control/forbid   {"resource": "pods", "verb": "watch"} (verb "" = allow again)
  POST /_control/crds     {"installed": true, "versions": ["v1beta1"]}
  GET  /_control/stats    requests per verb/resource, open watches, bytes sent
  GET  /_control/requests the API requests so far (the last 10000), oldest first:
                          {verb, path, query, accept, user, code}
With --client-ca the server asks for a client certificate (as kube-apiserver's
--client-ca-file: optional, verified against that CA when given; a certificate
it cannot verify fails the TLS handshake); its CN is the user, no token needed.
With --strict-accept the Accept header is negotiated as kube-apiserver does:
as=PartialObjectMetadataList;g=meta.k8s.io;v=v1 serves a list as metadata and
as=PartialObjectMetadata;g=meta.k8s.io;v=v1 a watch; any other as= form is
skipped for the next media range, and 406 when none is left.
State (objects, tokens, CRDs) is saved to --state after every change (not with
--no-save) and read back at start; a restarted server starts its resourceVersions far above the
old ones and without history, as a new etcd revision space would.
"""
import argparse
import base64
import bisect
import collections
import copy
import http.server
import json
import os
import socket
import socketserver
import ssl
import sys
import threading
import time
import urllib.parse
import uuid

KINDS = {
    # resource: (kind, group, namespaced)
    "namespaces": ("Namespace", "", False),
    "services": ("Service", "", True),
    "pods": ("Pod", "", True),
    "endpointslices": ("EndpointSlice", "discovery.k8s.io", True),
    "virtualservices": ("VirtualService", "networking.istio.io", True),
    "destinationrules": ("DestinationRule", "networking.istio.io", True),
    "gateways": ("Gateway", "networking.istio.io", True),
}
BY_KIND = {v[0]: k for k, v in KINDS.items()}
ISTIO = "networking.istio.io"


class State:
    def __init__(self, path, no_save=False):
        self.path = path
        self.no_save = no_save
        self.cv = threading.Condition()
        self.objs = {r: {} for r in KINDS}   # resource -> (ns, name) -> obj
        # list path: each object's list-item JSON (full, metadata-only),
        # serialized once per version, and each resource's keys in order
        self.ser = {r: {} for r in KINDS}    # resource -> (ns, name) -> (bytes, bytes)
        self.order = {r: None for r in KINDS}
        self.log = []                        # (rv, resource, type, obj, old)
        self.rv = int(time.time() * 1000) % 10**12 * 1000  # fresh revision space
        self.min_rv = self.rv                # watch history starts here
        self.tokens = []
        self.forbid = {}                     # resource -> verb
        self.crds = False
        self.istio_versions = ["v1", "v1beta1", "v1alpha3"]
        self.epoch = 0                       # bumped by compact/close/garbage
        self.epoch_what = ""
        self.stats = {}
        self.bytes = 0
        self.watches = 0
        self.h2_conns = 0
        self.h2_max_streams = 0
        self.h1_requests = 0
        self.list_cpu_s = 0.0                # the list path's own CPU time
        self.requests = collections.deque(maxlen=10000)   # /_control/requests
        if path and os.path.exists(path):
            with open(path) as f:
                d = json.load(f)
            self.tokens = d["tokens"]
            self.crds = d["crds"]
            self.istio_versions = d.get("istio_versions", self.istio_versions)
            for o in d["objects"]:
                self.put(o, save=False, keep_uid=True)   # etcd keeps them
            self.min_rv = self.rv
            self.log = []   # a new server has no history
            # serialized ahead, as the API server's watch cache holds them:
            # a list costs the joining of pages, not JSON encoding
            for res in KINDS:
                for key in self.keys(res):
                    self.item_json(res, key, res == "pods")

    def item_json(self, res, key, meta):
        """A list item (no kind/apiVersion) as JSON bytes (both forms made
        at once); under cv."""
        c = self.ser[res].get(key)
        if c is None:
            o = self.objs[res][key]
            c = (json.dumps({k: v for k, v in o.items() if k not in ("kind", "apiVersion")}).encode(),
                 json.dumps({"metadata": o["metadata"]}).encode())
            self.ser[res][key] = c
        return c[1] if meta else c[0]

    def keys(self, res):
        """The resource's keys in list order; under cv."""
        if self.order[res] is None:
            self.order[res] = sorted(self.objs[res])
        return self.order[res]

    def save(self):
        if not self.path or self.no_save:
            return
        objs = [o for r in self.objs.values() for o in r.values()]
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"tokens": self.tokens, "crds": self.crds, "objects": objs,
                       "istio_versions": self.istio_versions}, f)
        os.rename(tmp, self.path)

    def put(self, o, save=True, keep_uid=False):
        res = BY_KIND[o["kind"]]
        m = o.setdefault("metadata", {})
        if KINDS[res][2]:
            m.setdefault("namespace", "default")
        key = (m.get("namespace", ""), m["name"])
        old = self.objs[res].get(key)
        self.rv += 1
        m["resourceVersion"] = str(self.rv)
        m["uid"] = old["metadata"]["uid"] if old else \
            m["uid"] if keep_uid and m.get("uid") else str(uuid.uuid4())
        m.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
        # what a real server adds and the agent must drop
        m["managedFields"] = [{"manager": "kubectl", "operation": "Apply",
                               "fieldsV1": {"f:metadata": {}}}]
        self.objs[res][key] = o
        self.ser[res].pop(key, None)
        if not old:
            self.order[res] = None
        self.log.append((self.rv, res, "MODIFIED" if old else "ADDED", o, old))
        if save:
            self.save()

    def delete(self, o):
        res = BY_KIND[o["kind"]]
        m = o["metadata"]
        key = (m.get("namespace", "default") if KINDS[res][2] else "", m["name"])
        old = self.objs[res].pop(key, None)
        if old is None:
            return False
        self.ser[res].pop(key, None)
        self.order[res] = None
        self.rv += 1
        gone = copy.deepcopy(old)
        gone["metadata"]["resourceVersion"] = str(self.rv)
        self.log.append((self.rv, res, "DELETED", gone, old))
        self.save()
        return True


def field_match(sel, o):
    if not sel:
        return True
    for term in sel.split(","):
        if "!=" in term:
            k, v = term.split("!=", 1)
            neg = True
        else:
            k, v = term.split("=", 1)
            neg = False
        cur = o
        for p in k.split("."):
            cur = cur.get(p, {}) if isinstance(cur, dict) else {}
        cur = cur if isinstance(cur, str) else ""
        if (cur == v) == neg:
            return False
    return True


def negotiate(accept, watch):
    """kube-apiserver's choice for an Accept header: False (full objects),
    True (metadata only) or None (406). A list takes as=PartialObjectMetadataList,
    a watch as=PartialObjectMetadata (each g=meta.k8s.io;v=v1)."""
    want = "PartialObjectMetadata" if watch else "PartialObjectMetadataList"
    for rng in (accept or "*/*").split(","):
        parts = [p.strip() for p in rng.split(";")]
        if parts[0] not in ("application/json", "application/*", "*/*"):
            continue
        params = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        params.pop("q", None)
        if "as" not in params:
            return False
        if params == {"as": want, "g": "meta.k8s.io", "v": "v1"}:
            return True
    return None


def peer_cn(sock):
    """The CN of a verified client certificate on sock, or None."""
    try:
        cert = sock.getpeercert()
    except (AttributeError, ValueError):
        return None
    for rdn in (cert or {}).get("subject", ()):
        for k, v in rdn:
            if k == "commonName":
                return v
    return None


def as_meta(o):
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": o["metadata"]}


def status_obj(code, reason, msg):
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure",
            "message": msg, "reason": reason, "code": code}


class Api:
    """The API's answers, whatever the protocol: handle() returns
    ("json", code, body), ("raw", code, JSON bytes) or ("watch", Watch)."""

    def __init__(self, st, args):
        self.st = st
        self.args = args

    def count(self, what):
        with self.st.cv:
            self.st.stats[what] = self.st.stats.get(what, 0) + 1

    def handle(self, method, path, headers, body):
        st = self.st
        u = urllib.parse.urlparse(path)
        if method == "POST":
            return self.control(u, body)
        q = dict(urllib.parse.parse_qsl(u.query))
        parts = [p for p in u.path.split("/") if p]
        if u.path == "/_control/requests":
            with st.cv:
                return ("json", 200, {"requests": list(st.requests)})
        if u.path.startswith("/_control/"):
            return self.serve_api(u, q, parts, headers, {})
        rec = {"verb": "", "path": u.path, "query": q, "accept": headers.get("accept", ""),
               "user": "", "code": 0}
        r = self.serve_api(u, q, parts, headers, rec)
        rec["code"] = r[1] if r[0] == "json" else 200
        with st.cv:
            st.requests.append(rec)
        return r

    def serve_api(self, u, q, parts, headers, rec):
        st = self.st
        if u.path == "/_control/stats":
            with st.cv:
                return ("json", 200, {"requests": st.stats, "watches": st.watches, "bytes": st.bytes,
                                      "rv": st.rv, "h2_connections": st.h2_conns,
                                      "h2_max_open_streams": st.h2_max_streams,
                                      "http1_requests": st.h1_requests,
                                      "list_cpu_ms": round(st.list_cpu_s * 1000, 1)})
        auth = headers.get("authorization", "")
        cn = headers.get(":client-cn")   # a verified client certificate (--client-ca)
        rec["user"] = ("cert:" + cn) if cn else ("token:" + auth[7:]) if auth.startswith("Bearer ") else ""
        if cn is None and (not auth.startswith("Bearer ") or auth[7:] not in st.tokens):
            self.count("401")
            return ("json", 401, status_obj(401, "Unauthorized", "Unauthorized"))
        if parts == ["apis", ISTIO]:
            self.count("discover")
            if not st.crds:
                return ("json", 404, status_obj(404, "NotFound", "the server could not find the requested resource"))
            vs = [{"groupVersion": ISTIO + "/" + v, "version": v} for v in st.istio_versions]
            return ("json", 200, {"kind": "APIGroup", "apiVersion": "v1", "name": ISTIO,
                                  "versions": vs, "preferredVersion": vs[0]})
        version = "v1"
        if len(parts) == 3 and parts[:2] == ["api", "v1"]:
            res = parts[2]
        elif len(parts) == 4 and parts[0] == "apis":
            res = parts[3]
            if res not in KINDS or KINDS[res][1] != parts[1]:
                return ("json", 404, status_obj(404, "NotFound", "not found"))
            if parts[1] == ISTIO and (not st.crds or parts[2] not in st.istio_versions):
                self.count("404 " + res)
                return ("json", 404, status_obj(404, "NotFound", "the server could not find the requested resource"))
            version = parts[2]
        else:
            return ("json", 404, status_obj(404, "NotFound", "not found"))
        if res not in KINDS:
            return ("json", 404, status_obj(404, "NotFound", "not found"))
        watch = q.get("watch") in ("true", "1")
        verb = "watch" if watch else "list"
        rec["verb"] = verb
        if st.forbid.get(res) == verb:
            self.count("403 " + res)
            return ("json", 403, status_obj(403, "Forbidden", '%s is forbidden: User "system:serviceaccount:'
                                            'sockmesh:sockmesh-agent" cannot %s resource "%s"' % (res, verb, res)))
        self.count(verb + " " + res)
        meta = "as=PartialObjectMetadata" in headers.get("accept", "")
        if self.args.strict_accept:
            meta = negotiate(headers.get("accept", ""), watch)
            if meta is None:
                self.count("406 " + res)
                return ("json", 406, status_obj(406, "NotAcceptable", "only the following media types "
                                                "are accepted: application/json, application/json;as="
                                                "PartialObjectMetadata%s;g=meta.k8s.io;v=v1"
                                                % ("" if watch else "List")))
        kind, group = KINDS[res][0], KINDS[res][1]
        api = (group + "/" + version) if group else version
        if watch:
            w = Watch(self, res, kind, api, q, meta)
            if w.gone_status:
                return ("json", 410, status_obj(410, "Expired", w.gone_status))
            return ("watch", w)
        return self.list(res, kind, api, q, meta)

    def control(self, u, b):
        st = self.st
        if not u.path.startswith("/_control/"):
            return ("json", 405, status_obj(405, "MethodNotAllowed", "read-only test server"))
        what = u.path[len("/_control/"):]
        with st.cv:
            if what == "apply":
                for o in b["objects"]:
                    st.put(o)
            elif what == "delete":
                for o in b["objects"]:
                    st.delete(o)
            elif what in ("compact", "close", "garbage"):
                if what == "compact":
                    st.min_rv = st.rv + 1
                st.epoch += 1
                st.epoch_what = what
            elif what == "tokens":
                st.tokens = b["tokens"]
                st.save()
            elif what == "forbid":
                st.forbid[b["resource"]] = b.get("verb", "")
            elif what == "crds":
                st.crds = bool(b["installed"])
                st.istio_versions = b.get("versions", st.istio_versions)
                st.save()
            else:
                return ("json", 404, status_obj(404, "NotFound", what))
            st.cv.notify_all()
            return ("json", 200, {"resourceVersion": str(st.rv)})

    def list(self, res, kind, api, q, meta):
        t0 = time.thread_time()
        r = self.list_page(res, kind, api, q, meta)
        with self.st.cv:
            self.st.list_cpu_s += time.thread_time() - t0
        return r

    def list_page(self, res, kind, api, q, meta):
        st = self.st
        sel = q.get("fieldSelector", "")
        limit = int(q.get("limit") or 0)
        with st.cv:
            if q.get("continue"):
                rv, off = json.loads(base64.b64decode(q["continue"]))
                if rv < st.min_rv:
                    return ("json", 410, status_obj(410, "Expired", "The provided continue parameter is too old"))
                # a consistent snapshot would need history; objects are few: list now
            else:
                rv, off = st.rv, 0
            keys = st.keys(res)
            if sel:
                keys = [k for k in keys if field_match(sel, st.objs[res][k])]
            cont = ""
            if limit and off + limit < len(keys):
                cont = base64.b64encode(json.dumps([rv, off + limit]).encode()).decode()
                keys = keys[off:off + limit]
            else:
                keys = keys[off:]
            # the page from each object's JSON, serialized once (as the API
            # server serves lists from its watch cache)
            items = b",".join(st.item_json(res, k, meta) for k in keys)
        head = json.dumps({"kind": ("PartialObjectMetadataList" if meta else kind + "List"),
                           "apiVersion": "meta.k8s.io/v1" if meta else api,
                           "metadata": {"resourceVersion": str(rv), "continue": cont}}).encode()
        return ("raw", 200, head[:-1] + b', "items": [' + items + b"]}")


class Watch:
    """One watch stream: poll() (under st.cv) returns what to send now, as
    lines (bytes), and whether the stream ends after them."""

    def __init__(self, api, res, kind, apiver, q, meta):
        st = api.st
        self.st, self.res, self.kind, self.apiver, self.meta = st, res, kind, apiver, meta
        self.sel = q.get("fieldSelector", "")
        try:
            self.sent = int(q.get("resourceVersion") or 0)
        except ValueError:
            self.sent = 0
        self.end = time.time() + min(float(q.get("timeoutSeconds") or 1800), api.args.max_watch_s)
        self.bookmarks = q.get("allowWatchBookmarks") == "true"
        self.bookmark_s = api.args.bookmark_s
        self.last_bm = time.time()
        self.gone_status = None
        self.pending_gone = False
        with st.cv:
            self.epoch = st.epoch
            if self.sent and self.sent < st.min_rv:
                if api.args.gone_as_status:
                    self.gone_status = "too old resource version: %d (%d)" % (self.sent, st.min_rv)
                else:
                    self.pending_gone = True

    def gone(self):
        return (json.dumps({"type": "ERROR", "object": status_obj(
            410, "Expired", "too old resource version: %d (%d)" % (self.sent, self.st.min_rv))}) + "\n").encode()

    def poll(self):
        st = self.st
        if self.pending_gone:
            return [self.gone()], True
        if time.time() >= self.end:
            return [], True
        out = []
        if st.epoch != self.epoch:
            self.epoch = st.epoch
            if st.epoch_what == "compact":
                return [self.gone()], True
            if st.epoch_what == "close":
                return [], True
            out.append(b"this is not json\n")
        start = bisect.bisect_right(st.log, self.sent, key=lambda e: e[0])
        for rv, r, typ, o, old in st.log[start:]:
            if r != self.res:
                continue
            now_in, was_in = field_match(self.sel, o), old is not None and field_match(self.sel, old)
            if typ == "DELETED":
                t = "DELETED" if was_in else None
            elif now_in and was_in:
                t = "MODIFIED"
            elif now_in:
                t = "ADDED"
            elif was_in:
                t, o = "DELETED", dict(old, metadata=dict(old["metadata"], resourceVersion=str(rv)))
            else:
                t = None
            if t:
                o = copy.deepcopy(o)
                o.setdefault("kind", self.kind)
                o.setdefault("apiVersion", self.apiver)
                out.append((json.dumps({"type": t, "object": as_meta(o) if self.meta else o}) + "\n").encode())
        self.sent = max(self.sent, st.rv)
        if self.bookmarks and time.time() - self.last_bm >= self.bookmark_s:
            self.last_bm = time.time()
            out.append((json.dumps({"type": "BOOKMARK", "object": {
                "kind": self.kind, "apiVersion": self.apiver,
                "metadata": {"resourceVersion": str(self.sent)}}}) + "\n").encode())
        return out, False


class Handler(http.server.BaseHTTPRequestHandler):
    """HTTP/1.1: one request at a time per connection, a watch holds it."""
    protocol_version = "HTTP/1.1"
    api = None

    def log_message(self, fmt, *a):
        if self.api.args.verbose:
            sys.stderr.write("apiserver: " + (fmt % a) + "\n")

    def send_json(self, code, body):
        self.send_bytes(code, json.dumps(body).encode())

    def send_bytes(self, code, data):
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        with self.api.st.cv:
            self.api.st.bytes += len(data)

    def serve(self, method):
        body = {}
        if method == "POST":
            n = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(n) or b"{}")
        headers = {k.lower(): v for k, v in self.headers.items()}
        cn = peer_cn(self.connection)
        if cn is not None:
            headers[":client-cn"] = cn
        if not self.path.startswith("/_control/"):
            with self.api.st.cv:
                self.api.st.h1_requests += 1
        r = self.api.handle(method, self.path, headers, body)
        if r[0] == "json":
            return self.send_json(r[1], r[2])
        if r[0] == "raw":
            return self.send_bytes(r[1], r[2])
        self.watch(r[1])

    def do_GET(self):
        self.serve("GET")

    def do_POST(self):
        self.serve("POST")

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()
        with self.api.st.cv:
            self.api.st.bytes += len(data)

    def watch(self, w):
        st = self.api.st
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        with st.cv:
            st.watches += 1
        try:
            while True:
                with st.cv:
                    st.cv.wait(0.2)
                    lines, done = w.poll()
                for line in lines:
                    self.chunk(line)
                if done:
                    break
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            return
        finally:
            with st.cv:
                st.watches -= 1
            try:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except OSError:
                pass
            self.close_connection = True


class H2Conn:
    """HTTP/2 (ALPN h2, python3-h2): every request a stream of one
    connection, watches side by side, as the API server serves client-go."""

    def __init__(self, sock, api):
        import h2.config
        import h2.connection
        self.sock, self.api, self.st = sock, api, api.st
        self.conn = h2.connection.H2Connection(config=h2.config.H2Configuration(
            client_side=False, header_encoding="utf-8"))
        self.reqs = {}      # stream -> [headers, body bytes]
        self.watches = {}   # stream -> Watch
        self.out = {}       # stream -> [bytes pending, end after]
        self.counted = False

    def respond(self, sid, code, data, end):
        self.conn.send_headers(sid, [(":status", str(code)), ("content-type", "application/json")])
        self.out[sid] = [data, end]
        with self.st.cv:
            self.st.bytes += len(data)

    def flush(self):
        import h2.exceptions
        for sid in list(self.out):
            data, end = self.out[sid]
            try:
                while data:
                    n = min(len(data), self.conn.local_flow_control_window(sid),
                            self.conn.max_outbound_frame_size)
                    if n <= 0:
                        break
                    self.conn.send_data(sid, data[:n])
                    data = data[n:]
                self.out[sid][0] = data
                if not data and end:
                    self.conn.end_stream(sid)
                    del self.out[sid]
            except (h2.exceptions.StreamClosedError, h2.exceptions.NoSuchStreamError):
                # the client reset it (a watch it dropped): that stream only
                self.drop(sid)
        pending = self.conn.data_to_send()
        if pending:
            self.sock.sendall(pending)

    def request(self, sid):
        hdrs, body = self.reqs.pop(sid)
        hdrs.pop(":client-cn", None)
        cn = peer_cn(self.sock)
        if cn is not None:
            hdrs[":client-cn"] = cn
        method, path = hdrs.get(":method", "GET"), hdrs.get(":path", "/")
        if not self.counted and not path.startswith("/_control/"):
            self.counted = True     # a connection that carries the API, not the test's control
            with self.st.cv:
                self.st.h2_conns += 1
        r = self.api.handle(method, path, hdrs, json.loads(body or b"{}") if method == "POST" else {})
        if r[0] in ("json", "raw"):
            self.respond(sid, r[1], json.dumps(r[2]).encode() if r[0] == "json" else r[2], True)
        else:
            self.respond(sid, 200, b"", False)
            self.watches[sid] = r[1]
            with self.st.cv:
                self.st.watches += 1
                self.st.h2_max_streams = max(self.st.h2_max_streams, len(self.watches))

    def drop(self, sid):
        if self.watches.pop(sid, None) is not None:
            with self.st.cv:
                self.st.watches -= 1
        self.out.pop(sid, None)

    def serve(self):
        import h2.events
        import h2.exceptions
        self.conn.initiate_connection()
        self.sock.sendall(self.conn.data_to_send())
        self.sock.settimeout(0.05)
        try:
            while True:
                try:
                    data = self.sock.recv(65536)
                    if not data:
                        sys.stderr.write("apiserver: h2 connection closed by the client\n")
                        return
                except (socket.timeout, ssl.SSLWantReadError):
                    data = None
                if data:
                    for ev in self.conn.receive_data(data):
                        if isinstance(ev, h2.events.RequestReceived):
                            self.reqs[ev.stream_id] = [dict(ev.headers), b""]
                            if ev.stream_ended:
                                self.request(ev.stream_id)
                        elif isinstance(ev, h2.events.DataReceived):
                            self.reqs[ev.stream_id][1] += ev.data
                            self.conn.acknowledge_received_data(len(ev.data), ev.stream_id)
                        elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id in self.reqs:
                            self.request(ev.stream_id)
                        elif isinstance(ev, h2.events.StreamReset):
                            self.drop(ev.stream_id)
                        elif isinstance(ev, h2.events.ConnectionTerminated):
                            return
                with self.st.cv:
                    polled = [(sid, w.poll()) for sid, w in self.watches.items()]
                for sid, (lines, done) in polled:
                    if sid not in self.out:
                        self.out[sid] = [b"", False]
                    self.out[sid][0] += b"".join(lines)
                    with self.st.cv:
                        self.st.bytes += sum(len(x) for x in lines)
                    if done:
                        self.out[sid][1] = True
                        self.drop_watch_only(sid)
                self.flush()
        except (OSError, ssl.SSLError, h2.exceptions.ProtocolError) as e:
            sys.stderr.write("apiserver: h2 connection closed: %r\n" % (e,))
            return
        finally:
            for sid in list(self.watches):
                self.drop(sid)

    def drop_watch_only(self, sid):
        if self.watches.pop(sid, None) is not None:
            with self.st.cv:
                self.st.watches -= 1


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    api = None

    def server_bind(self):
        # no reverse DNS lookup (HTTPServer.server_bind does one)
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def finish_request(self, request, client_address):
        if isinstance(request, ssl.SSLSocket) and request.selected_alpn_protocol() == "h2":
            H2Conn(request, self.api).serve()
        else:
            super().finish_request(request, client_address)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--state")
    ap.add_argument("--no-save", action="store_true", help="read --state at start only (benchmarks)")
    ap.add_argument("--token", action="append", default=[])
    ap.add_argument("--bookmark-s", type=float, default=1.0)
    ap.add_argument("--max-watch-s", type=float, default=600)
    ap.add_argument("--gone-as-status", action="store_true")
    ap.add_argument("--h2", action="store_true", help="offer HTTP/2 (ALPN h2; python3-h2)")
    ap.add_argument("--crds", action="store_true")
    ap.add_argument("--client-ca", help="ask for client certificates, verified against this CA")
    ap.add_argument("--strict-accept", action="store_true",
                    help="negotiate Accept (PartialObjectMetadata[List]) as kube-apiserver: 406 otherwise")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    st = State(args.state, args.no_save)
    if args.token and not st.tokens:
        st.tokens = args.token
    if args.crds:
        st.crds = True
    st.save()
    api = Api(st, args)
    Handler.api = api
    host, port = args.listen.rsplit(":", 1)
    srv = Server((host, int(port)), Handler)
    srv.api = api
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        if args.client_ca:
            ctx.verify_mode = ssl.CERT_OPTIONAL
            ctx.load_verify_locations(args.client_ca)
        ctx.set_alpn_protocols(["h2", "http/1.1"] if args.h2 else ["http/1.1"])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print("ready %s:%d" % (host, srv.server_address[1]), flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
