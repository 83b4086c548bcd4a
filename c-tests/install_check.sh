#!/bin/sh
# install_check.sh: `make install` into a scratch DESTDIR, then build the
# README's GLib example (c-tests/test_glib_example.c) and a plain event-API
# program with pkg-config alone against that tree, and run them: what an
# application sees after installing.  Prints PASS/FAIL lines.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
CC=${CC:-gcc}
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
prefix=/usr/local
if ! make -s install DESTDIR="$d/root" PREFIX="$prefix" >"$d/install.log" 2>&1; then
    echo "FAIL install_into_destdir"; tail -5 "$d/install.log"; exit 1
fi
echo "PASS install_into_destdir"
# The installed .pc files, their prefix pointed into the DESTDIR tree (as a
# package build's staging test does); every other package (glib-2.0) is
# the system's.
mkdir -p "$d/pc"
for pc in "$d/root$prefix/lib/pkgconfig"/*.pc; do
    sed "s|^prefix=.*|prefix=$d/root$prefix|" "$pc" > "$d/pc/$(basename "$pc")"
done
export PKG_CONFIG_PATH="$d/pc"
status=0
check() { # name pc-packages source
    name=$1 pkgs=$2 src=$3
    if flags=$(pkg-config --cflags --libs $pkgs 2>"$d/pc.err") &&
       $CC -std=gnu11 -Wall -Werror "$src" -o "$d/$name" $flags 2>"$d/cc.err" &&
       DROPIN_EXPECT_DIR="$d/root$prefix/lib" LD_LIBRARY_PATH="$d/root$prefix/lib" \
           timeout 30 "$d/$name" >"$d/$name.out" 2>&1 &&
       ! grep -q '^FAIL' "$d/$name.out"; then
        echo "PASS installed_$name"
    else
        echo "FAIL installed_$name"; cat "$d/pc.err" "$d/cc.err"; tail -5 "$d/$name.out" 2>/dev/null
        status=1
    fi
}
check event_api "xenlight xentoollog" c-tests/dropin.c
if pkg-config --exists glib-2.0; then
    # The installed adapter: the README's example, built with -DXL_HAVE_GLIB
    # as the tests build it.
    CC="$CC -DXL_HAVE_GLIB" check glib_example "xenlight-glib xentoollog" c-tests/test_glib_example.c
fi
exit $status
