#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""
grpc_echo: a real gRPC (HTTP/2) peer for the e2e tests, without generated
code (raw bytes in and out).

  grpc_echo.py serve PORT ID      unary /sm.Echo/Say answers "ID:<request>";
                                  prints "ready" once listening
  grpc_echo.py call HOST:PORT MSG [--count N] [--timeout S]
                                  N calls on one channel; prints "ok N",
                                  "reply <last reply>" or "error CODE"
"""
import sys
from concurrent import futures

import grpc


def serve(port, ident):
    def say(request, context):
        return ident.encode() + b":" + request

    handler = grpc.method_handlers_generic_handler(
        "sm.Echo", {"Say": grpc.unary_unary_rpc_method_handler(say)})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port("0.0.0.0:%d" % port)
    server.start()
    print("ready", flush=True)
    server.wait_for_termination(timeout=600)


def call(addr, msg, count, timeout):
    ok, reply = 0, b""
    with grpc.insecure_channel(addr) as ch:
        say = ch.unary_unary("/sm.Echo/Say")
        for _ in range(count):
            try:
                reply = say(msg.encode(), timeout=timeout)
                ok += 1
            except grpc.RpcError as e:
                print("error", e.code().name)
                break
    print("ok", ok)
    print("reply", reply.decode(errors="replace"))
    return 0 if ok == count else 3


def main():
    a = sys.argv[1:]
    if len(a) == 3 and a[0] == "serve":
        serve(int(a[1]), a[2])
        return 0
    if len(a) >= 3 and a[0] == "call":
        count, timeout = 1, 5.0
        if "--count" in a:
            count = int(a[a.index("--count") + 1])
        if "--timeout" in a:
            timeout = float(a[a.index("--timeout") + 1])
        if not (0 < count <= 10000 and 0 < timeout <= 60):
            return 2
        return call(a[1], a[2], count, timeout)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
