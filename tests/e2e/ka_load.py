#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""
ka_load: keep-alive HTTP/1.1 clients (Python's http.client, as every client
library keeps connections alive by default) for the connection-pool e2e tests.

  ka_load.py closed HOST:PORT PATH --clients N --requests M [--timeout S]
             [--close-every K]
      N threads, each with its own kept-alive connection, M requests each,
      back to back (closed loop). --close-every K: the client closes its
      connection after every K requests (a peer closing idle connections).
  ka_load.py open HOST:PORT PATH --rate R --duration S [--timeout S]
      Open loop: a request every 1/R s for S s whatever the answers, each on
      an idle kept-alive connection of a shared free list (a new one when
      none is idle).
  ka_load.py abandon HOST:PORT PATH --clients N --timeout S
      N concurrent requests whose clients give up after S s and close.
  ka_load.py seq HOST:PORT PATH --requests M [--timeout S] [--fresh]
      M requests one at a time on one kept-alive connection (--fresh: a new
      connection for each).
  ka_load.py drain HOST:PORT PATH [--timeout S]
      For a proxy's graceful drain: one connection answered once and left
      idle (kept alive), one request for PATH (a slow one) in flight on
      another; prints "started" once both are there, then, in the order they
      happen: "idle closed" when the peer closes the idle connection (EOF),
      and "inflight STATUS connection=VALUE" (or "inflight error") for the
      slow request.

Output, one "key N" per line, sorted: "status CODE N", "overloaded N"
(503s with x-envoy-overloaded: true), "timeout N" (no answer within the
client timeout: a hang), "error N" (reset/EOF with no answer), "done N".
Every wait is bounded by --timeout.
"""
import argparse
import http.client
import socket
import sys
import threading
import time
from collections import Counter

lock = threading.Lock()
tally = Counter()


def note(key):
    with lock:
        tally[key] += 1


def one(conn, path, timeout):
    """One request on conn; returns True when the connection can be kept."""
    conn.timeout = timeout
    if conn.sock is not None:
        conn.sock.settimeout(timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        r.read()
    except socket.timeout:
        note("timeout")
        conn.close()
        return False
    except (OSError, http.client.HTTPException):
        note("error")
        conn.close()
        return False
    note("status %d" % r.status)
    if r.status == 503 and r.getheader("x-envoy-overloaded") == "true":
        note("overloaded")
    note("done")
    return not r.will_close


def closed_loop(a, host, port):
    def run():
        c = http.client.HTTPConnection(host, port, timeout=a.timeout)
        for i in range(a.requests):
            if not one(c, a.path, a.timeout) or (a.close_every and (i + 1) % a.close_every == 0):
                c.close()
                c = http.client.HTTPConnection(host, port, timeout=a.timeout)
        c.close()
    ts = [threading.Thread(target=run) for _ in range(a.clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def open_loop(a, host, port):
    free, flock, ts = [], threading.Lock(), []

    def run():
        with flock:
            c = free.pop() if free else http.client.HTTPConnection(host, port, timeout=a.timeout)
        if one(c, a.path, a.timeout):
            with flock:
                free.append(c)
    n = int(a.rate * a.duration)
    start = time.monotonic()
    for i in range(n):
        delay = start + i / a.rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        t = threading.Thread(target=run)
        t.start()
        ts.append(t)
    for t in ts:
        t.join()
    for c in free:
        c.close()


def abandon(a, host, port):
    closed_loop(argparse.Namespace(clients=a.clients, requests=1, path=a.path,
                                   timeout=a.timeout, close_every=0), host, port)


def seq(a, host, port):
    c = None
    for _ in range(a.requests):
        if c is None or a.fresh:
            if c is not None:
                c.close()
            c = http.client.HTTPConnection(host, port, timeout=a.timeout)
        if not one(c, a.path, a.timeout):
            c.close()
            c = None
    if c is not None:
        c.close()


def drain(a, host, port):
    idle = http.client.HTTPConnection(host, port, timeout=a.timeout)
    idle.request("GET", "/")
    r = idle.getresponse()
    r.read()
    busy = http.client.HTTPConnection(host, port, timeout=a.timeout)
    busy.request("GET", a.path)
    events = []

    def wait_busy():
        try:
            r = busy.getresponse()
            r.read()
            events.append("inflight %d connection=%s" % (r.status, r.getheader("connection")))
        except (OSError, http.client.HTTPException):
            events.append("inflight error")
    t = threading.Thread(target=wait_busy)
    t.start()
    print("started", flush=True)
    end = time.monotonic() + a.timeout
    idle.sock.settimeout(0.05)
    while time.monotonic() < end and (idle.sock is not None or t.is_alive()):
        if idle.sock is not None:
            try:
                if idle.sock.recv(1) == b"":
                    events.append("idle closed")
                    idle.close()
            except socket.timeout:
                pass
            except OSError:
                events.append("idle closed")
                idle.close()
        else:
            time.sleep(0.05)
    t.join()
    for e in events:
        print(e)
    busy.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["closed", "open", "abandon", "seq", "drain"])
    p.add_argument("addr")
    p.add_argument("path")
    p.add_argument("--clients", type=int, default=1)
    p.add_argument("--requests", type=int, default=1)
    p.add_argument("--timeout", type=float, default=5.0)
    p.add_argument("--close-every", type=int, default=0)
    p.add_argument("--rate", type=float, default=10.0)
    p.add_argument("--duration", type=float, default=1.0)
    p.add_argument("--fresh", action="store_true")
    a = p.parse_args()
    host, port = a.addr.rsplit(":", 1)
    if not (0 < a.clients <= 256 and 0 < a.requests <= 100000 and 0 < a.timeout <= 60 and
            0 < a.rate <= 5000 and 0 < a.duration <= 60):
        print("ka_load: argument out of range", file=sys.stderr)
        return 2
    {"closed": closed_loop, "open": open_loop, "abandon": abandon, "seq": seq,
     "drain": drain}[a.mode](a, host, int(port))
    for k in sorted(tally):
        print(k, tally[k])
    return 0


if __name__ == "__main__":
    sys.exit(main())
