#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""
grpc_echo: a real gRPC (HTTP/2) peer for the e2e tests, without generated
code (raw bytes in and out).

  grpc_echo.py serve PORT ID [--fail CODE]
        /sm.Echo/Say     unary: "ID:<request>" (or aborts with CODE, e.g. UNAVAILABLE);
                         a request "mirror-..." is also printed as "say <request>"
        /sm.Echo/Fail    unary: aborts with the status named by the request
        /sm.Echo/Sleep   unary: sleeps <request> seconds, then "ID:slept"
        /sm.Echo/Count   server streaming: <request> = N[:DELAY] -> N replies "ID:i",
                         DELAY seconds apart
      SIGTERM: graceful stop (GOAWAY, in-flight RPCs get 10 s, prints "stopping")
        /sm.Echo/Sum     client streaming: "ID:<n messages>:<bytes>" (printed as
                         "sum N BYTES" when the first message is "mirror-...",
                         "sum-reset N BYTES" when the call was reset)
        /sm.Echo/Chat    bidi: each message echoed as "ID:<message>" (a message
                         "mirror-..." is printed as "chat <message>")
      prints "ready" once listening
  grpc_echo.py call HOST:PORT MSG [--count N] [--timeout S] [--md K=V]
        N calls on one channel; prints "ok N", "reply <last reply>" or "error CODE"
  grpc_echo.py spread HOST:PORT N [--md K=V]
        N unary calls on ONE channel (one HTTP/2 connection); prints
        "backend ID COUNT" per answering backend and "error CODE COUNT"
  grpc_echo.py status HOST:PORT METHOD MSG [--timeout S]
        one unary call; prints "status CODE" (OK on success)
  grpc_echo.py streams HOST:PORT
        server, client and bidi streaming on one channel; prints one line each
  grpc_echo.py mstreams HOST:PORT N
        client streaming (N messages "mirror-..." of 1000 bytes) then bidi
        (mirror-a, -b, -c, 50 ms apart); prints "client-streaming REPLY", "bidi REPLIES"
  grpc_echo.py mcancel HOST:PORT
        client streaming, a message "mirror-cancel-I" per 100 ms, cancelled by the
        client (RST_STREAM) after 1 s; prints "status CODE"
  grpc_echo.py count HOST:PORT N DELAY [--md K=V]
        one server-streaming call; prints "count <messages> <last>" or "error CODE <messages>"
  grpc_echo.py par HOST:PORT N METHOD MSG
        N concurrent unary calls on one channel; prints "status CODE COUNT"
  grpc_echo.py load HOST:PORT N CONC SECS
        N Sleep(SECS) calls, CONC in flight, on one channel with client retries
        off (grpc.enable_retries 0); prints "started" once CONC are sent, then
        "status CODE COUNT"
"""
import signal
import sys
import time
from concurrent import futures

import grpc


def serve(port, ident, fail):
    def say(request, context):
        if fail:
            context.abort(getattr(grpc.StatusCode, fail), "configured to fail")
        if request.startswith(b"mirror-"):
            print("say", request.decode(errors="replace"), flush=True)
        return ident.encode() + b":" + request

    def fail_m(request, context):
        context.abort(getattr(grpc.StatusCode, request.decode()), "asked to fail")

    def sleep(request, context):
        time.sleep(min(float(request.decode()), 10.0))
        return ident.encode() + b":slept"

    def count(request, context):
        n, _, delay = request.decode().partition(":")
        for i in range(min(int(n), 10000)):
            if delay and i:
                time.sleep(min(float(delay), 1.0))
            yield b"%s:%d" % (ident.encode(), i)

    def sum_m(it, context):
        n = b = 0
        mirror = False
        try:
            for m in it:
                mirror = mirror or (not n and m.startswith(b"mirror-"))
                n += 1
                b += len(m)
        except Exception:
            if mirror:	# the client reset the call
                print("sum-reset", n, b, flush=True)
            raise
        if mirror:
            # a reset can end the iterator quietly, its cancel seen a moment later
            time.sleep(0.2)
            print("sum" if context.is_active() else "sum-reset", n, b, flush=True)
        return b"%s:%d:%d" % (ident.encode(), n, b)

    def chat(it, context):
        for m in it:
            if m.startswith(b"mirror-"):
                print("chat", m.decode(errors="replace"), flush=True)
            yield ident.encode() + b":" + m

    handler = grpc.method_handlers_generic_handler("sm.Echo", {
        "Say": grpc.unary_unary_rpc_method_handler(say),
        "Fail": grpc.unary_unary_rpc_method_handler(fail_m),
        "Sleep": grpc.unary_unary_rpc_method_handler(sleep),
        "Count": grpc.unary_stream_rpc_method_handler(count),
        "Sum": grpc.stream_unary_rpc_method_handler(sum_m),
        "Chat": grpc.stream_stream_rpc_method_handler(chat),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port("0.0.0.0:%d" % port)
    server.start()

    def term(signum, frame):
        print("stopping", flush=True)
        server.stop(10)

    signal.signal(signal.SIGTERM, term)
    print("ready", flush=True)
    server.wait_for_termination(timeout=600)


def opt(a, name, default, conv=str):
    return conv(a[a.index(name) + 1]) if name in a else default


def metadata(a):
    md = []
    for i, x in enumerate(a):
        if x == "--md":
            k, v = a[i + 1].split("=", 1)
            md.append((k, v))
    return md


def call(addr, msg, count, timeout, md):
    ok, reply = 0, b""
    with grpc.insecure_channel(addr) as ch:
        say = ch.unary_unary("/sm.Echo/Say")
        for _ in range(count):
            try:
                reply = say(msg.encode(), timeout=timeout, metadata=md)
                ok += 1
            except grpc.RpcError as e:
                print("error", e.code().name)
                break
    print("ok", ok)
    print("reply", reply.decode(errors="replace"))
    return 0 if ok == count else 3


def spread(addr, n, md):
    seen, errs = {}, {}
    with grpc.insecure_channel(addr) as ch:
        say = ch.unary_unary("/sm.Echo/Say")
        for _ in range(n):
            try:
                r = say(b"x", timeout=10, metadata=md).decode()
                k = r.split(":", 1)[0]
                seen[k] = seen.get(k, 0) + 1
            except grpc.RpcError as e:
                errs[e.code().name] = errs.get(e.code().name, 0) + 1
    for k in sorted(seen):
        print("backend", k, seen[k])
    for k in sorted(errs):
        print("error", k, errs[k])
    return 0


def status(addr, method, msg, timeout):
    with grpc.insecure_channel(addr) as ch:
        m = ch.unary_unary("/sm.Echo/" + method)
        try:
            m(msg.encode(), timeout=timeout)
            print("status OK")
        except grpc.RpcError as e:
            print("status", e.code().name)
    return 0


def streams(addr):
    with grpc.insecure_channel(addr) as ch:
        got = list(ch.unary_stream("/sm.Echo/Count")(b"50", timeout=10))
        print("server-streaming", len(got), got[-1].decode() if got else "-")
        big = [b"m" * 1000 for _ in range(200)]	# 200 kB: more than one window
        r = ch.stream_unary("/sm.Echo/Sum")(iter(big), timeout=10)
        print("client-streaming", r.decode())
        out = list(ch.stream_stream("/sm.Echo/Chat")(iter([b"a", b"b", b"c"]), timeout=10))
        print("bidi", " ".join(x.decode() for x in out))
    return 0


def mstreams(addr, n):
    """Client streaming (n messages of 1000 bytes) and bidi, messages named mirror-*."""
    def paced(msgs):
        for m in msgs:
            time.sleep(0.05)	# one at a time: a stream, not one burst
            yield m

    with grpc.insecure_channel(addr) as ch:
        msgs = [(b"mirror-%06d-" % i).ljust(1000, b"m") for i in range(n)]
        r = ch.stream_unary("/sm.Echo/Sum")(iter(msgs), timeout=30)
        print("client-streaming", r.decode(), flush=True)
        out = ch.stream_stream("/sm.Echo/Chat")(paced([b"mirror-a", b"mirror-b", b"mirror-c"]),
                                                timeout=30)
        print("bidi", " ".join(x.decode() for x in out), flush=True)
    return 0


def mcancel(addr):
    """Client streaming, one message "mirror-cancel-..." per 100 ms, cancelled after 1 s."""
    def slow():
        for i in range(100):
            yield b"mirror-cancel-%d" % i
            time.sleep(0.1)

    with grpc.insecure_channel(addr) as ch:
        f = ch.stream_unary("/sm.Echo/Sum").future(slow(), timeout=30)
        time.sleep(1)
        f.cancel()
        try:
            f.result()
            print("status OK")
        except grpc.FutureCancelledError:
            print("status CANCELLED")
        except grpc.RpcError as e:
            print("status", e.code().name)
    return 0


def count_call(addr, n, delay, md):
    got = []
    with grpc.insecure_channel(addr) as ch:
        try:
            for m in ch.unary_stream("/sm.Echo/Count")(b"%d:%s" % (n, delay.encode()),
                                                       timeout=30, metadata=md):
                got.append(m.decode())
                if len(got) == 1:
                    print("first", flush=True)
            print("count", len(got), got[-1] if got else "-")
        except grpc.RpcError as e:
            print("error", e.code().name, len(got))
    return 0


def tally(res, f):
    """Count a finished future's status code (OK or the error's name) in res."""
    try:
        f.result()
        k = "OK"
    except grpc.RpcError as e:
        k = e.code().name
    res[k] = res.get(k, 0) + 1


def par(addr, n, method, msg):
    res = {}
    with grpc.insecure_channel(addr) as ch:
        m = ch.unary_unary("/sm.Echo/" + method)
        futs = [m.future(msg.encode(), timeout=10) for _ in range(n)]
        for f in futs:
            tally(res, f)
    for k in sorted(res):
        print("status", k, res[k])
    return 0


def load(addr, n, conc, secs):
    """n Sleep RPCs, conc in flight on one channel, no client-side retries."""
    res = {}
    with grpc.insecure_channel(addr, options=[("grpc.enable_retries", 0)]) as ch:
        m = ch.unary_unary("/sm.Echo/Sleep")
        pending = []
        for i in range(n):
            pending.append(m.future(secs.encode(), timeout=20))
            if i + 1 == conc:
                print("started", flush=True)
            if len(pending) >= conc:
                tally(res, pending.pop(0))
        for f in pending:
            tally(res, f)
    for k in sorted(res):
        print("status", k, res[k])
    return 0


def main():
    a = sys.argv[1:]
    if len(a) >= 3 and a[0] == "serve":
        serve(int(a[1]), a[2], opt(a, "--fail", None))
        return 0
    if len(a) >= 3 and a[0] == "call":
        count, timeout = opt(a, "--count", 1, int), opt(a, "--timeout", 5.0, float)
        if not (0 < count <= 10000 and 0 < timeout <= 60):
            return 2
        return call(a[1], a[2], count, timeout, metadata(a))
    if len(a) >= 3 and a[0] == "spread":
        n = int(a[2])
        if not 0 < n <= 10000:
            return 2
        return spread(a[1], n, metadata(a))
    if len(a) >= 4 and a[0] == "status":
        return status(a[1], a[2], a[3], opt(a, "--timeout", 5.0, float))
    if len(a) == 5 and a[0] == "par" and 0 < int(a[2]) <= 100:
        return par(a[1], int(a[2]), a[3], a[4])
    if len(a) >= 4 and a[0] == "count" and 0 < int(a[2]) <= 1000:
        return count_call(a[1], int(a[2]), a[3], metadata(a))
    if len(a) == 5 and a[0] == "load" and 0 < int(a[2]) <= 10000 and 0 < int(a[3]) <= 100:
        return load(a[1], int(a[2]), int(a[3]), a[4])
    if len(a) == 2 and a[0] == "streams":
        return streams(a[1])
    if len(a) == 2 and a[0] == "mcancel":
        return mcancel(a[1])
    if len(a) == 3 and a[0] == "mstreams" and 0 < int(a[2]) <= 100000:
        return mstreams(a[1], int(a[2]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
