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
  - TLS with the certificate it is given (the test makes a CA with openssl)

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
State (objects, tokens, CRDs) is saved to --state after every change (not with
--no-save) and read back at start; a restarted server starts its resourceVersions far above the
old ones and without history, as a new etcd revision space would.
"""
import argparse
import base64
import bisect
import copy
import http.server
import json
import os
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
        if path and os.path.exists(path):
            with open(path) as f:
                d = json.load(f)
            self.tokens = d["tokens"]
            self.crds = d["crds"]
            self.istio_versions = d.get("istio_versions", self.istio_versions)
            for o in d["objects"]:
                self.put(o, save=False)
            self.min_rv = self.rv
            self.log = []   # a new server has no history

    def save(self):
        if not self.path or self.no_save:
            return
        objs = [o for r in self.objs.values() for o in r.values()]
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"tokens": self.tokens, "crds": self.crds, "objects": objs,
                       "istio_versions": self.istio_versions}, f)
        os.rename(tmp, self.path)

    def put(self, o, save=True):
        res = BY_KIND[o["kind"]]
        m = o.setdefault("metadata", {})
        if KINDS[res][2]:
            m.setdefault("namespace", "default")
        key = (m.get("namespace", ""), m["name"])
        old = self.objs[res].get(key)
        self.rv += 1
        m["resourceVersion"] = str(self.rv)
        m["uid"] = old["metadata"]["uid"] if old else str(uuid.uuid4())
        m.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
        # what a real server adds and the agent must drop
        m["managedFields"] = [{"manager": "kubectl", "operation": "Apply",
                               "fieldsV1": {"f:metadata": {}}}]
        self.objs[res][key] = o
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


def as_meta(o):
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": o["metadata"]}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    st = None
    args = None

    def log_message(self, fmt, *a):
        if self.args.verbose:
            sys.stderr.write("apiserver: " + (fmt % a) + "\n")

    def send_json(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        with self.st.cv:
            self.st.bytes += len(data)

    def status(self, code, reason, msg):
        self.send_json(code, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                              "message": msg, "reason": reason, "code": code})

    def count(self, what):
        with self.st.cv:
            self.st.stats[what] = self.st.stats.get(what, 0) + 1

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(n) or b"{}")

    def do_POST(self):
        st = self.st
        u = urllib.parse.urlparse(self.path)
        if not u.path.startswith("/_control/"):
            return self.status(405, "MethodNotAllowed", "read-only test server")
        what = u.path[len("/_control/"):]
        b = self.body()
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
                return self.status(404, "NotFound", what)
            st.cv.notify_all()
            rv = st.rv
        self.send_json(200, {"resourceVersion": str(rv)})

    def do_GET(self):
        st = self.st
        u = urllib.parse.urlparse(self.path)
        q = dict(urllib.parse.parse_qsl(u.query))
        parts = [p for p in u.path.split("/") if p]
        if u.path == "/_control/stats":
            with st.cv:
                return self.send_json(200, {"requests": st.stats, "watches": st.watches,
                                            "bytes": st.bytes, "rv": st.rv})
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in st.tokens:
            self.count("401")
            return self.status(401, "Unauthorized", "Unauthorized")
        if parts == ["apis", ISTIO]:
            self.count("discover")
            if not st.crds:
                return self.status(404, "NotFound", "the server could not find the requested resource")
            vs = [{"groupVersion": ISTIO + "/" + v, "version": v} for v in st.istio_versions]
            return self.send_json(200, {"kind": "APIGroup", "apiVersion": "v1", "name": ISTIO,
                                        "versions": vs, "preferredVersion": vs[0]})
        if len(parts) == 3 and parts[:2] == ["api", "v1"]:
            res = parts[2]
        elif len(parts) == 4 and parts[0] == "apis":
            res = parts[3]
            if res not in KINDS or KINDS[res][1] != parts[1]:
                return self.status(404, "NotFound", "not found")
            if parts[1] == ISTIO and (not st.crds or parts[2] not in st.istio_versions):
                self.count("404 " + res)
                return self.status(404, "NotFound", "the server could not find the requested resource")
            version = parts[2]
        else:
            return self.status(404, "NotFound", "not found")
        if res not in KINDS:
            return self.status(404, "NotFound", "not found")
        if len(parts) == 3:
            version = "v1"
        watch = q.get("watch") in ("true", "1")
        verb = "watch" if watch else "list"
        if st.forbid.get(res) == verb:
            self.count("403 " + res)
            return self.status(403, "Forbidden", '%s is forbidden: User "system:serviceaccount:'
                               'sockmesh:sockmesh-agent" cannot %s resource "%s"' % (res, verb, res))
        self.count(verb + " " + res)
        meta = "as=PartialObjectMetadata" in self.headers.get("Accept", "")
        kind, group = KINDS[res][0], KINDS[res][1]
        api = (group + "/" + version) if group else version
        if watch:
            return self.watch(res, kind, api, q, meta)
        return self.list(res, kind, api, q, meta)

    def list(self, res, kind, api, q, meta):
        st = self.st
        sel = q.get("fieldSelector", "")
        limit = int(q.get("limit") or 0)
        with st.cv:
            if q.get("continue"):
                rv, off = json.loads(base64.b64decode(q["continue"]))
                if rv < st.min_rv:
                    return self.status(410, "Expired", "The provided continue parameter is too old")
                # a consistent snapshot would need history; objects are few: list now
            else:
                rv, off = st.rv, 0
            items = sorted(st.objs[res].items())
            items = [copy.deepcopy(o) for _, o in items if field_match(sel, o)]
        cont = ""
        if limit and off + limit < len(items):
            cont = base64.b64encode(json.dumps([rv, off + limit]).encode()).decode()
            items = items[off:off + limit]
        else:
            items = items[off:]
        for o in items:  # list items carry no kind/apiVersion
            o.pop("kind", None)
            o.pop("apiVersion", None)
        if meta:
            items = [{"metadata": o["metadata"]} for o in items]
        self.send_json(200, {"kind": ("PartialObjectMetadataList" if meta else kind + "List"),
                             "apiVersion": "meta.k8s.io/v1" if meta else api,
                             "metadata": {"resourceVersion": str(rv), "continue": cont},
                             "items": items})

    def chunk(self, obj):
        data = (json.dumps(obj) + "\n").encode() if not isinstance(obj, bytes) else obj
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()
        with self.st.cv:
            self.st.bytes += len(data)

    def watch(self, res, kind, api, q, meta):
        st = self.st
        sel = q.get("fieldSelector", "")
        try:
            since = int(q.get("resourceVersion") or 0)
        except ValueError:
            since = 0
        timeout = min(float(q.get("timeoutSeconds") or 1800), self.args.max_watch_s)
        bookmarks = q.get("allowWatchBookmarks") == "true"
        with st.cv:
            if since and since < st.min_rv and self.args.gone_as_status:
                return self.status(410, "Expired", "too old resource version: %d (%d)" % (since, st.min_rv))
            epoch = st.epoch
            st.watches += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        end = time.time() + timeout
        last_bm = time.time()
        sent = since
        try:
            with st.cv:
                if since and since < st.min_rv:
                    self.gone(since)
                    return
            while time.time() < end:
                out = []
                with st.cv:
                    st.cv.wait(0.2)
                    if st.epoch != epoch:
                        epoch = st.epoch
                        if st.epoch_what == "compact":
                            out.append(("gone", None))
                        elif st.epoch_what == "close":
                            out.append(("close", None))
                        else:
                            out.append(("garbage", None))
                    else:
                        start = bisect.bisect_right(st.log, sent, key=lambda e: e[0])
                        for rv, r, typ, o, old in st.log[start:]:
                            if r != res:
                                continue
                            now_in, was_in = field_match(sel, o), old is not None and field_match(sel, old)
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
                            sent = rv
                            if t:
                                out.append((t, copy.deepcopy(o)))
                        if not out and sent < st.rv:
                            sent = st.rv
                for t, o in out:
                    if t == "gone":
                        self.gone(sent)
                        return
                    if t == "close":
                        return
                    if t == "garbage":
                        self.chunk(b"this is not json\n")
                        continue
                    o.setdefault("kind", kind)
                    o.setdefault("apiVersion", api)
                    self.chunk({"type": t, "object": as_meta(o) if meta else o})
                if bookmarks and time.time() - last_bm >= self.args.bookmark_s:
                    last_bm = time.time()
                    with st.cv:
                        rv = st.rv
                    self.chunk({"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": api,
                                "metadata": {"resourceVersion": str(max(rv, sent))}}})
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

    def gone(self, rv):
        self.chunk({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                    "message": "too old resource version: %d (%d)" % (rv, self.st.min_rv),
                    "reason": "Expired", "code": 410}})


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self):
        # no reverse DNS lookup (HTTPServer.server_bind does one)
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


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
    ap.add_argument("--crds", action="store_true")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    st = State(args.state, args.no_save)
    if args.token and not st.tokens:
        st.tokens = args.token
    if args.crds:
        st.crds = True
    st.save()
    Handler.st = st
    Handler.args = args
    host, port = args.listen.rsplit(":", 1)
    srv = Server((host, int(port)), Handler)
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        ctx.set_alpn_protocols(["http/1.1"])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print("ready %s:%d" % (host, srv.server_address[1]), flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
