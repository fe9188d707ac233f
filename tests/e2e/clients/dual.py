#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# An AF_INET6 client for tests/e2e/test_dualstack.sh: every socket is
# AF_INET6 and dials an IPv4 address as ::ffff:a.b.c.d, as dual-stack
# runtimes do (Python's own socket.create_connection does not: it resolves
# to AF_INET first). Output lines are parsed by the test:
#   who HOST PORT N         "v1=N v2=N ... ERR=N" (names sorted)
#   peer HOST PORT          getpeername() of a connected socket: "ADDR PORT"
#   hold HOST PORT N FILE [quiet]
#                           "conn I NAME" / "conn I ERR ENAME", "done"; closes
#                           once FILE exists (30 s at most); quiet: the server
#                           sends no id line, "conn I ok"
#   bulk HOST PORT BYTES    to an sm-server sink: "bulk ok BYTES" / "bulk MISMATCH ..."
#   echo HOST PORT BYTES    to an echo server, compared: "echo ok BYTES" / "echo MISMATCH at I"
#   http HOST PORT PATH     the status line, then the body's "id=" line
#   native ADDR6 PORT       connect to a native IPv6 address: "ok" / "ERR ENAME"
import errno
import os
import socket
import sys
import threading
import time

TIMEOUT = 10.0
PATTERN = bytes(i % 251 for i in range(251 * 261))  # a whole number of periods


def dial(host, port):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    s.connect(("::ffff:" + host, port))
    return s


def ename(e):
    return errno.errorcode.get(e.errno, str(e)) if e.errno else type(e).__name__


def readline(s):
    b = b""
    while not b.endswith(b"\n"):
        c = s.recv(1)
        if not c:
            raise EOFError
        b += c
    return b[:-1].decode()


def pattern_at(off, n):
    out = bytearray()
    while len(out) < n:
        i = (off + len(out)) % 251
        out += PATTERN[i:i + n - len(out)]
    return bytes(out)


def fnv1a64(h, data):
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
    return h


def who(host, port, n):
    tally, errs = {}, 0
    for _ in range(n):
        try:
            with dial(host, port) as s:
                k = readline(s)
                tally[k] = tally.get(k, 0) + 1
        except (OSError, EOFError):
            errs += 1
    print("".join("%s=%d " % (k, tally[k]) for k in sorted(tally)) + "ERR=%d" % errs)


def peer(host, port):
    with dial(host, port) as s:
        a = s.getpeername()
        print(a[0], a[1])


def hold(host, port, n, path, quiet):
    held = []
    for i in range(1, n + 1):
        try:
            s = dial(host, port)
            held.append(s)
            print("conn %d %s" % (i, "ok" if quiet else readline(s)), flush=True)
        except OSError as e:
            print("conn %d ERR %s" % (i, ename(e)), flush=True)
    print("done", flush=True)
    for _ in range(600):
        if os.path.exists(path):
            break
        time.sleep(0.05)
    for s in held:
        s.close()


def bulk(host, port, n):
    h, off = 0xcbf29ce484222325, 0
    with dial(host, port) as s:
        while off < n:
            chunk = pattern_at(off, min(65536, n - off))
            h = fnv1a64(h, chunk)
            s.sendall(chunk)
            off += len(chunk)
        s.shutdown(socket.SHUT_WR)
        want, got = "%d %016x" % (n, h), readline(s)
        print("bulk ok %d" % n if got == want else "bulk MISMATCH sent %s got %s" % (want, got))


def echo(host, port, n):
    with dial(host, port) as s:
        w = threading.Thread(target=lambda: s.sendall(pattern_at(0, n)))
        w.start()
        got = 0
        while got < n:
            b = s.recv(65536)
            if not b:
                break
            if b != pattern_at(got, len(b)):
                print("echo MISMATCH at %d" % got)
                return
            got += len(b)
        w.join()
        print("echo ok %d" % n if got == n else "echo SHORT %d" % got)


def http(host, port, path):
    with dial(host, port) as s:
        s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (path, host)).encode())
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
    lines = data.decode(errors="replace").split("\r\n")
    print(lines[0])
    for line in data.decode(errors="replace").splitlines():
        if line.startswith("id="):
            print(line)


def native(addr, port):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    try:
        s.connect((addr, port))
        print("ok")
    except OSError as e:
        print("ERR", ename(e))
    finally:
        s.close()


def main(a):
    cmd = a[0]
    if cmd == "who":
        who(a[1], int(a[2]), int(a[3]))
    elif cmd == "peer":
        peer(a[1], int(a[2]))
    elif cmd == "hold":
        hold(a[1], int(a[2]), int(a[3]), a[4], a[5:] == ["quiet"])
    elif cmd == "bulk":
        bulk(a[1], int(a[2]), int(a[3]))
    elif cmd == "echo":
        echo(a[1], int(a[2]), int(a[3]))
    elif cmd == "http":
        http(a[1], int(a[2]), a[3])
    elif cmd == "native":
        native(a[1], int(a[2]))
    else:
        sys.exit("usage: see the head of this file")


main(sys.argv[1:])
