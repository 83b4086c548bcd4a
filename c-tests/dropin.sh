#!/bin/sh
# dropin.sh LIBDIR BUILDDIR
# Builds c-tests/dropin.c against the SYSTEM (Debian libxen-dev) headers
# and libraries, then runs it with LD_LIBRARY_PATH=LIBDIR so that our
# libxenlight.so.4.17 in LIBDIR replaces Debian's at run time.
set -u
if [ $# -ne 2 ]; then
    echo "usage: $0 LIBDIR BUILDDIR"; echo "FAIL dropin: bad usage"; exit 2
fi
top=$(cd "$(dirname "$0")/.." && pwd)
CC=${CC:-gcc}

if [ ! -f /usr/include/libxl.h ]; then
    echo "dropin: /usr/include/libxl.h not found; install Debian's libxen-dev"
    echo "FAIL dropin"
    exit 1
fi
if [ ! -e "$1/libxenlight.so.4.17" ]; then
    echo "FAIL dropin: $1/libxenlight.so.4.17 does not exist"
    exit 1
fi
libdir=$(cd "$1" && pwd)
mkdir -p "$2"
builddir=$(cd "$2" && pwd)

if ! $CC "$top/c-tests/dropin.c" -o "$builddir/dropin" \
        -lxenlight -lxentoollog -ldl; then
    echo "FAIL dropin: cannot build against system libxen-dev"
    exit 1
fi

log="$builddir/dropin.out"
DROPIN_EXPECT_DIR=$libdir LD_LIBRARY_PATH=$libdir "$builddir/dropin" >"$log"
rc=$?
cat "$log"
if [ $rc -eq 0 ] && grep -q '^PASS dropin' "$log"; then
    exit 0
fi
if ! grep -q '^FAIL dropin' "$log"; then
    # The program did not get to report: loader failure (e.g. missing
    # symbol or missing version node VERS_4.17.0) or a crash.
    if [ $rc -gt 128 ]; then
        echo "FAIL dropin: killed by signal $((rc - 128))"
    else
        echo "FAIL dropin: did not run to completion (exit status $rc;" \
             "see loader messages above)"
    fi
fi
[ $rc -eq 0 ] && rc=1
exit $rc
