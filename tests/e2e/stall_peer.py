#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""
stall_peer: a backend that misbehaves at the TCP level, for the e2e tests
(mirror targets that cannot keep up or go away). Speaks no protocol.

  stall_peer.py PORT stall   accepts connections and never reads from them
                             (their windows fill up; they stay open)
  stall_peer.py PORT reset   accepts, reads the first bytes that come, then
                             closes with a reset (SO_LINGER 0)

prints "ready" once listening and "accepted N" for the Nth connection;
exits after 600 s at the latest.
"""
import select
import socket
import struct
import sys
import time


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in ("stall", "reset"):
        print(__doc__, file=sys.stderr)
        return 2
    port, mode = int(sys.argv[1]), sys.argv[2]
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if mode == "stall":
        # small receive buffers (inherited by accepted sockets): windows close after a few kB
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    ls.bind(("0.0.0.0", port))
    ls.listen(64)
    print("ready", flush=True)
    held, n, end = [], 0, time.monotonic() + 600
    while time.monotonic() < end:
        r, _, _ = select.select([ls], [], [], 1.0)
        if not r:
            continue
        c, _ = ls.accept()
        n += 1
        print("accepted", n, flush=True)
        if mode == "stall":
            held.append(c)
            continue
        c.settimeout(5)
        try:
            c.recv(4096)
        except OSError:
            pass
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
