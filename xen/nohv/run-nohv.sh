#!/bin/sh
# run-nohv [--testlib] CMD ARGS...   (installed as build/xen*/run-nohv)
#
# Runs CMD against the Xen libraries in this script's directory on a machine
# without a hypervisor:
#   - starts the fake xenstored (nohv/fake_xenstored.py) on a fresh socket in
#     a temporary directory;
#   - exports XENSTORED_PATH (libxenstore's xs_open(0) connects there),
#     XENSTORED_PID (kill it to make xenstored die under the test), and puts
#     nohv/ first on PATH so that `xs read|write|rm|ls|watch ...` talks to it;
#   - LD_LIBRARY_PATH=<this directory>, LD_PRELOAD=nohv/libxc_stub.so (the
#     libxenctrl stand-in: one host, dom0 only);
#   - with --testlib, libxenlight.so.4.17 resolves to libxenlight_test.so
#     (how Xen's own test_* programs must be run);
#   - in a sanitizer build (build/xen-asan), nohv/preload names the
#     sanitizer's runtime: it goes first in LD_PRELOAD, before the stub, so
#     that it is the first library loaded in every program (ASan requires
#     it, and programs that are not instrumented, e.g. xl, need it to load
#     the instrumented libxenlight);
#   - runs CMD ARGS..., stops the server, removes the temporary directory
#     and exits with CMD's status.
set -u
here=$(cd "$(dirname "$0")" && pwd)
libpath=$here
if [ "${1:-}" = --testlib ]; then
    libpath=$here/testlib:$here
    shift
fi
if [ $# -eq 0 ]; then
    echo "usage: run-nohv [--testlib] CMD ARGS..." >&2
    exit 2
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/xen-nohv.XXXXXX") || exit 1
spid=
cleanup() {
    if [ -n "$spid" ]; then
        kill "$spid" 2>/dev/null
        wait "$spid" 2>/dev/null
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

python3 "$here/nohv/fake_xenstored.py" "$tmp/socket" --pidfile "$tmp/pid" &
spid=$!
i=0
while [ ! -f "$tmp/pid" ]; do
    if ! kill -0 "$spid" 2>/dev/null || [ $i -ge 500 ]; then
        echo "run-nohv: the fake xenstored did not start" >&2
        exit 1
    fi
    sleep 0.01
    i=$((i + 1))
done

export XENSTORED_PATH="$tmp/socket"
export XENSTORED_PID="$spid"
export PATH="$here/nohv:$PATH"
export LD_LIBRARY_PATH="$libpath${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
first=
if [ -f "$here/nohv/preload" ]; then
    first=$(cat "$here/nohv/preload"):
fi
export LD_PRELOAD="$first$here/nohv/libxc_stub.so${LD_PRELOAD:+:$LD_PRELOAD}"

"$@"
rc=$?
exit $rc
