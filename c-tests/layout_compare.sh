#!/bin/sh
# layout_compare.sh [BUILDDIR]
# Builds c-tests/layout_probe.c twice - against this project's headers
# (-I. -Iinclude) and against the system's Xen headers (libxen-dev) -
# and requires identical output.  Run from anywhere; BUILDDIR defaults
# to a temporary directory.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
CC=${CC:-gcc}
CFLAGS="-std=gnu11 -Wall -Wextra -Werror"

if [ ! -f /usr/include/libxl.h ] || [ ! -f /usr/include/libxl_event.h ]; then
    echo "layout_compare: /usr/include/libxl.h not found;" \
         "install Debian's libxen-dev to compare against Xen's headers"
    echo "FAIL layout_compare"
    exit 1
fi

if [ $# -ge 1 ]; then
    out=$1; mkdir -p "$out"
else
    out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
fi

if ! $CC $CFLAGS -I"$top" -I"$top/include" "$top/c-tests/layout_probe.c" \
        -o "$out/layout_probe_ours"; then
    echo "FAIL layout_compare: probe does not compile against our headers"
    exit 1
fi
if ! $CC $CFLAGS "$top/c-tests/layout_probe.c" -o "$out/layout_probe_xen"; then
    echo "FAIL layout_compare: probe does not compile against system headers"
    exit 1
fi
"$out/layout_probe_xen"  > "$out/layout_xen.txt"  || { echo "FAIL layout_compare: xen probe failed"; exit 1; }
"$out/layout_probe_ours" > "$out/layout_ours.txt" || { echo "FAIL layout_compare: our probe failed"; exit 1; }

if diff -u "$out/layout_xen.txt" "$out/layout_ours.txt"; then
    echo "PASS layout_compare ($(wc -l < "$out/layout_ours.txt") facts)"
    exit 0
fi
echo "FAIL layout_compare"
exit 1
