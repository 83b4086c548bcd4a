#!/usr/bin/env python3
"""Test-only xenstore client for the fake xenstored (or a real one's socket).

    xs read PATH            print the value (exit 1 if absent)
    xs write PATH VALUE
    xs rm PATH
    xs mkdir PATH
    xs ls PATH              one child name a line
    xs watch PATH [COUNT]   print "path token" per event (the initial one
                            included), stop after COUNT events (default 1)
    xs introduce DOMID / xs release DOMID   (fire @introduceDomain /
                            @releaseDomain)

Connects to $XENSTORED_PATH.  Errors print the xenstored error name (e.g.
ENOENT) to stderr and exit 1.
"""
import os
import socket
import struct
import sys

HDR = struct.Struct("<IIII")
OPS = {"ls": 1, "read": 2, "watch": 4, "introduce": 8, "release": 9,
       "write": 11, "mkdir": 12, "rm": 13}
XS_WATCH_EVENT, XS_ERROR = 15, 16


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        d = s.recv(n - len(buf))
        if not d:
            sys.exit("xs: connection closed by xenstored")
        buf += d
    return buf


def recv_msg(s):
    mtype, req_id, tx_id, ln = HDR.unpack(recv_exact(s, HDR.size))
    return mtype, recv_exact(s, ln) if ln else b""


def request(s, op, payload, req_id=1):
    s.sendall(HDR.pack(OPS[op], req_id, 0, len(payload)) + payload)
    while True:
        mtype, body = recv_msg(s)
        if mtype == XS_WATCH_EVENT:
            continue
        if mtype == XS_ERROR:
            sys.stderr.write("xs %s: %s\n" % (op, body.rstrip(b"\0").decode()))
            sys.exit(1)
        return body


def main():
    a = sys.argv[1:]
    if not a or a[0] not in OPS:
        sys.exit(__doc__)
    op = a[0]
    path = os.environ.get("XENSTORED_PATH", "/run/xenstored/socket")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
    except OSError as e:
        sys.exit("xs: cannot connect to %s: %s" % (path, e.strerror))
    if op == "write" and len(a) == 3:
        request(s, op, a[1].encode() + b"\0" + a[2].encode())
    elif op == "read" and len(a) == 2:
        sys.stdout.buffer.write(request(s, op, a[1].encode() + b"\0") + b"\n")
    elif op == "ls" and len(a) == 2:
        for k in request(s, op, a[1].encode() + b"\0").split(b"\0")[:-1]:
            sys.stdout.buffer.write(k + b"\n")
    elif op in ("rm", "mkdir", "introduce", "release") and len(a) == 2:
        request(s, op, a[1].encode() + b"\0")
    elif op == "watch" and len(a) in (2, 3):
        count = int(a[2]) if len(a) == 3 else 1
        payload = a[1].encode() + b"\0xs-watch\0"
        s.sendall(HDR.pack(OPS[op], 1, 0, len(payload)) + payload)
        while count > 0:
            mtype, body = recv_msg(s)
            if mtype == XS_ERROR:
                sys.exit("xs watch: " + body.rstrip(b"\0").decode())
            if mtype == XS_WATCH_EVENT:
                path, token = body.split(b"\0")[:2]
                print(path.decode(), token.decode(), flush=True)
                count -= 1
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
