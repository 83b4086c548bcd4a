#!/usr/bin/env python3
"""Test-only fake xenstored: the xs_wire protocol on a unix socket.

    fake_xenstored.py SOCKET_PATH [--pidfile FILE]

Serves any number of clients (libxenstore's xs_open(0) connects to
$XENSTORED_PATH).  Every connection is treated as dom0 (relative paths are
under /local/domain/0).  Supported: READ, WRITE, MKDIR, RM, DIRECTORY,
DIRECTORY_PART, GET_PERMS, SET_PERMS (stored, not enforced), WATCH (with the
immediate initial event), UNWATCH, RESET_WATCHES, TRANSACTION_START/END
(operations in a transaction apply immediately; abort does not roll back),
GET_DOMAIN_PATH, INTRODUCE (fires @introduceDomain), RELEASE (fires
@releaseDomain), IS_DOMAIN_INTRODUCED, RESUME, SET_TARGET.  Anything else
gets an ENOSYS error reply.

Watch events, as the C xenstored fires them: a change (write, mkdir, rm) of
node N fires every watch on N or on an ancestor of N, with path N; rm of N
also fires every watch on a descendant of N, with the watch's own path.
Events go to all connections, the writer's included, with each watch's own
token.  SIGTERM/SIGINT: remove the socket and exit; SIGKILL also works (the
clients see EOF either way).

Misbehaviour on request, for tests (xen/tests/test_xen_badxs.c): with
FAKE_XENSTORED_CONTROL=1 in the environment, a WRITE to /fake-xenstored/do
is not stored but performs its value, an action aimed at every OTHER
connection (the writer is the test; the others are libxl's):
  silent-write PATH VALUE  store VALUE at PATH without firing any watch
  bad-events     for each watch of the others, watch events that libxl
                 must ignore: unparsable tokens, the slot of another or of
                 no watch, the right slot with the wrong counter, the right
                 token with a path outside the watch (all with the watch's
                 own path but the last); their number is then readable at
                 /fake-xenstored/bad-events-sent
  wrong-type-next  the next request of another connection is answered
                 with a reply of the wrong message type
  bad-header     send the others a message header announcing a payload
                 longer than XENSTORE_PAYLOAD_MAX (libxenstore gives up on
                 the connection)
  mute           from now on never answer the others, nor send them watch
                 events (until the server is killed)
Without the variable, /fake-xenstored/do is an ordinary node.
"""
import os
import selectors
import signal
import socket
import struct
import sys

(XS_CONTROL, XS_DIRECTORY, XS_READ, XS_GET_PERMS, XS_WATCH, XS_UNWATCH,
 XS_TRANSACTION_START, XS_TRANSACTION_END, XS_INTRODUCE, XS_RELEASE,
 XS_GET_DOMAIN_PATH, XS_WRITE, XS_MKDIR, XS_RM, XS_SET_PERMS, XS_WATCH_EVENT,
 XS_ERROR, XS_IS_DOMAIN_INTRODUCED, XS_RESUME, XS_SET_TARGET) = range(20)
XS_RESET_WATCHES = XS_SET_TARGET + 2
XS_DIRECTORY_PART = XS_RESET_WATCHES + 1
HDR = struct.Struct("<IIII")  # type, req_id, tx_id, len
MAX_PAYLOAD = 4096
DOM0 = "/local/domain/0"
CONTROL_DIR = "/fake-xenstored"
CONTROL_NODE = CONTROL_DIR + "/do"


class XsError(Exception):
    pass


class Store:
    def __init__(self):
        self.nodes = {}   # path -> [value bytes, [perm strings]]
        self.kids = {}    # path -> ordered dict of child names
        self.generation = 0
        for p in ("/", "/local", "/local/domain", DOM0, "/tool", "/vm",
                  "/libxl"):
            self._create(p, b"", ["n0"])
        self.write(DOM0 + "/name", b"Domain-0")
        self.write(DOM0 + "/domid", b"0")
        self.write("/local/pool/0/name", b"Pool-0")  # as xen-init-dom0 does

    @staticmethod
    def parent(path):
        return "/" if path.count("/") == 1 else path.rsplit("/", 1)[0]

    def _create(self, path, value, perms):
        self.nodes[path] = [value, perms]
        self.kids[path] = {}
        if path != "/":
            self.kids[self.parent(path)][path.rsplit("/", 1)[1]] = None

    def _ensure(self, path):
        """Create path and any missing ancestors (inheriting perms)."""
        if path in self.nodes:
            return
        par = self.parent(path)
        self._ensure(par)
        self._create(path, b"", list(self.nodes[par][1]))

    def get(self, path):
        if path not in self.nodes:
            raise XsError("ENOENT")
        return self.nodes[path]

    def write(self, path, value):
        self._ensure(path)
        self.nodes[path][0] = value
        self.generation += 1

    def mkdir(self, path):
        self._ensure(path)
        self.generation += 1

    def rm(self, path):
        if path == "/":
            raise XsError("EINVAL")
        if path not in self.nodes:
            if self.parent(path) in self.nodes:
                return False  # like xenstored: not an error, no event
            raise XsError("ENOENT")
        for name in list(self.kids[path]):
            self.rm(path + "/" + name)
        del self.nodes[path]
        del self.kids[path]
        del self.kids[self.parent(path)][path.rsplit("/", 1)[1]]
        self.generation += 1
        return True

    def children(self, path):
        self.get(path)
        return list(self.kids[path])


def is_child(child, parent):
    """True if child is parent or below it (xenstored's is_child)."""
    if parent == "/":
        return child.startswith("/")
    return child == parent or child.startswith(parent + "/")


class Conn:
    def __init__(self, sock):
        self.sock = sock
        self.rbuf = b""
        self.wbuf = b""
        self.watches = []  # (abs path, path as given, token)


class Server:
    def __init__(self, path):
        self.path = path
        self.store = Store()
        self.conns = {}
        self.control = os.environ.get("FAKE_XENSTORED_CONTROL") == "1"
        self.muted = None       # the connection that muted the others
        self.wrong_type_for = None  # the connection whose peers get it
        self.introduced = {0}
        self.next_tx = 1
        self._after = []  # messages to send after the current reply
        self.sel = selectors.DefaultSelector()
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        self.lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.lsock.bind(path)
        self.lsock.listen(64)
        self.lsock.setblocking(False)
        self.sel.register(self.lsock, selectors.EVENT_READ, None)

    # -- plumbing ---------------------------------------------------------
    def send(self, c, mtype, req_id, tx_id, payload):
        c.wbuf += HDR.pack(mtype, req_id, tx_id, len(payload)) + payload
        self.flush(c)

    def flush(self, c):
        if c.sock is None:
            return
        try:
            while c.wbuf:
                n = c.sock.send(c.wbuf)
                c.wbuf = c.wbuf[n:]
        except BlockingIOError:
            pass
        except OSError:
            self.drop(c)
            return
        self.sel.modify(c.sock, selectors.EVENT_READ |
                        (selectors.EVENT_WRITE if c.wbuf else 0), c)

    def drop(self, c):
        if c.sock is None:
            return
        self.sel.unregister(c.sock)
        c.sock.close()
        c.sock = None
        del self.conns[id(c)]

    def run(self):
        while True:
            for key, ev in self.sel.select():
                if key.data is None:
                    try:
                        s, _ = self.lsock.accept()
                    except BlockingIOError:
                        continue
                    s.setblocking(False)
                    c = Conn(s)
                    self.conns[id(c)] = c
                    self.sel.register(s, selectors.EVENT_READ, c)
                    continue
                c = key.data
                if ev & selectors.EVENT_WRITE:
                    self.flush(c)
                if c.sock is not None and ev & selectors.EVENT_READ:
                    self.readable(c)

    def readable(self, c):
        try:
            data = c.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.drop(c)
            return
        c.rbuf += data
        while len(c.rbuf) >= HDR.size and c.sock is not None:
            mtype, req_id, tx_id, ln = HDR.unpack_from(c.rbuf)
            if ln > MAX_PAYLOAD:
                self.drop(c)
                return
            if len(c.rbuf) < HDR.size + ln:
                break
            payload = c.rbuf[HDR.size:HDR.size + ln]
            c.rbuf = c.rbuf[HDR.size + ln:]
            if self.muted is not None and c is not self.muted:
                continue  # swallowed: never answered
            try:
                reply = self.handle(c, mtype, tx_id, payload)
                rtype = mtype
            except XsError as e:
                reply, rtype = e.args[0].encode() + b"\0", XS_ERROR
            except (ValueError, UnicodeDecodeError):
                reply, rtype = b"EINVAL\0", XS_ERROR
            if len(reply) > MAX_PAYLOAD:
                reply, rtype = b"E2BIG\0", XS_ERROR
            if (self.wrong_type_for is not None and
                    c is not self.wrong_type_for):
                self.wrong_type_for = None
                rtype = XS_DIRECTORY if rtype != XS_DIRECTORY else XS_READ
            self.send(c, rtype, req_id, tx_id, reply)
            after, self._after = self._after, []
            for args in after:
                self.send(*args)

    # -- watches -----------------------------------------------------------
    def fire(self, name, recurse=False):
        for c in list(self.conns.values()):
            if self.muted is not None and c is not self.muted:
                continue
            for wabs, wgiven, token in c.watches:
                if name.startswith("@") or wabs.startswith("@"):
                    hit = name if name == wabs else None
                elif is_child(name, wabs):
                    hit = name
                elif recurse and is_child(wabs, name):
                    hit = wabs
                else:
                    hit = None
                if hit is None:
                    continue
                if not wgiven.startswith(("/", "@")):
                    hit = hit[len(DOM0) + 1:]  # relative watch: relative path
                self.send(c, XS_WATCH_EVENT, 0, 0,
                          hit.encode() + b"\0" + token + b"\0")

    # -- misbehaviour on request (FAKE_XENSTORED_CONTROL=1) ------------------
    def act(self, me, action):
        words = action.split(" ", 2)
        others = [c for c in self.conns.values() if c is not me]
        if words[0] == "silent-write" and len(words) == 3:
            self.store.write(self.canon(words[1]), words[2].encode())
        elif words[0] == "bad-events":
            n = 0
            for c in others:
                used = set()
                for _, _, token in c.watches:
                    try:
                        used.add(int(token.split(b"/")[0]))
                    except ValueError:
                        pass
                for wabs, wgiven, token in list(c.watches):
                    try:
                        slot_s, ctr_s = token.decode().split("/")
                        slot, ctr = int(slot_s), int(ctr_s, 16)
                    except ValueError:
                        continue
                    bad = [b"junk", slot_s.encode(), b"%d/zz" % slot,
                           b"%d/%x" % (slot, (ctr + 1) & 0xffffffff),
                           b"%d/%x" % (slot + 100000, ctr),
                           b"-1/%x" % ctr]
                    bad += [b"%d/%x" % (s, ctr) for s in range(8)
                            if s not in used]
                    path = wgiven.encode()
                    for t in bad:
                        self.send(c, XS_WATCH_EVENT, 0, 0, path + b"\0" + t + b"\0")
                        n += 1
                    if not wabs.startswith("@"):
                        for outside in (self.store.parent(wabs), "/unrelated/node"):
                            self.send(c, XS_WATCH_EVENT, 0, 0,
                                      outside.encode() + b"\0" + token + b"\0")
                            n += 1
            self.store.write(CONTROL_DIR + "/bad-events-sent", str(n).encode())
        elif words[0] == "wrong-type-next":
            self.wrong_type_for = me
        elif words[0] == "bad-header":
            for c in others:
                c.wbuf += HDR.pack(XS_READ, 0, 0, MAX_PAYLOAD + 1000)
                self.flush(c)
        elif words[0] == "mute":
            self.muted = me
        else:
            raise XsError("EINVAL")

    # -- requests ------------------------------------------------------------
    @staticmethod
    def canon(p, allow_special=False):
        if p.startswith("@"):
            if not allow_special:
                raise XsError("EINVAL")
            return p
        if not p.startswith("/"):
            p = DOM0 + "/" + p
        if len(p) > 1 and p.endswith("/") or "//" in p:
            raise XsError("EINVAL")
        return p

    @staticmethod
    def args(payload, n):
        parts = payload.split(b"\0")
        if len(parts) < n:
            raise XsError("EINVAL")
        return [x.decode("utf-8", "replace") for x in parts[:n]]

    def handle(self, c, mtype, tx_id, payload):
        st = self.store
        OK = b"OK\0"
        if mtype == XS_READ:
            return st.get(self.canon(self.args(payload, 1)[0]))[0]
        if mtype == XS_WRITE:
            i = payload.find(b"\0")
            if i < 0:
                raise XsError("EINVAL")
            p = self.canon(payload[:i].decode())
            if self.control and p == CONTROL_NODE:
                self.act(c, payload[i + 1:].decode())
                return OK
            st.write(p, payload[i + 1:])
            self.fire(p)
            return OK
        if mtype == XS_MKDIR:
            p = self.canon(self.args(payload, 1)[0])
            if p not in st.nodes:
                st.mkdir(p)
                self.fire(p)
            return OK
        if mtype == XS_RM:
            p = self.canon(self.args(payload, 1)[0])
            if st.rm(p):
                self.fire(p, recurse=True)
            return OK
        if mtype == XS_DIRECTORY:
            kids = st.children(self.canon(self.args(payload, 1)[0]))
            return b"".join(k.encode() + b"\0" for k in kids)
        if mtype == XS_DIRECTORY_PART:
            # "<generation>\0" then whole child names from byte offset off;
            # an extra "\0" once the list is complete.
            p, off = self.args(payload, 2)
            body = b"".join(k.encode() + b"\0"
                            for k in st.children(self.canon(p)))
            gen = str(st.generation).encode() + b"\0"
            rest = body[int(off or 0):]
            room = MAX_PAYLOAD - len(gen) - 1
            if len(rest) <= room:
                return gen + rest + b"\0"
            cut = rest.rfind(b"\0", 0, room) + 1
            return gen + rest[:cut]
        if mtype == XS_GET_PERMS:
            perms = st.get(self.canon(self.args(payload, 1)[0]))[1]
            return b"".join(x.encode() + b"\0" for x in perms)
        if mtype == XS_SET_PERMS:
            parts = [x.decode() for x in payload.split(b"\0")]
            if parts and parts[-1] == "":
                parts.pop()
            if len(parts) < 2:
                raise XsError("EINVAL")
            p = self.canon(parts[0])
            st.get(p)[1] = parts[1:]
            self.fire(p)
            return OK
        if mtype == XS_WATCH:
            path, token = self.args(payload, 2)
            wabs = self.canon(path, allow_special=True)
            c.watches.append((wabs, path, token.encode()))
            # The initial event follows the reply, as from xenstored.
            self._after.append(
                (c, XS_WATCH_EVENT, 0, 0,
                 path.encode() + b"\0" + token.encode() + b"\0"))
            return OK
        if mtype == XS_UNWATCH:
            path, token = self.args(payload, 2)
            wabs = self.canon(path, allow_special=True)
            for w in c.watches:
                if w[0] == wabs and w[2] == token.encode():
                    c.watches.remove(w)
                    return OK
            raise XsError("ENOENT")
        if mtype == XS_RESET_WATCHES:
            c.watches = []
            return OK
        if mtype == XS_TRANSACTION_START:
            tx = self.next_tx
            self.next_tx += 1
            return str(tx).encode() + b"\0"
        if mtype == XS_TRANSACTION_END:
            return OK
        if mtype == XS_GET_DOMAIN_PATH:
            domid = int(self.args(payload, 1)[0])
            return ("/local/domain/%d" % domid).encode() + b"\0"
        if mtype == XS_INTRODUCE:
            self.introduced.add(int(self.args(payload, 1)[0]))
            self.fire("@introduceDomain")
            return OK
        if mtype == XS_RELEASE:
            self.introduced.discard(int(self.args(payload, 1)[0]))
            self.fire("@releaseDomain")
            return OK
        if mtype == XS_IS_DOMAIN_INTRODUCED:
            domid = int(self.args(payload, 1)[0])
            return b"T\0" if domid in self.introduced else b"F\0"
        if mtype in (XS_RESUME, XS_SET_TARGET):
            return OK
        raise XsError("ENOSYS")


def main():
    argv = sys.argv[1:]
    pidfile = None
    if "--pidfile" in argv:
        i = argv.index("--pidfile")
        pidfile = argv[i + 1]
        del argv[i:i + 2]
    if len(argv) != 1:
        sys.exit("usage: fake_xenstored.py SOCKET_PATH [--pidfile FILE]")
    srv = Server(argv[0])

    def stop(signum, frame):
        try:
            os.unlink(srv.path)
        except OSError:
            pass
        os._exit(0)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if pidfile:
        with open(pidfile + ".tmp", "w") as f:
            f.write("%d\n" % os.getpid())
        os.rename(pidfile + ".tmp", pidfile)
    srv.run()


if __name__ == "__main__":
    main()
