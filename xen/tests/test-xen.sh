#!/bin/sh
# xen/tests/test-xen.sh OUT XL BUILDDIR: what `make test-xen` runs on the
# full libxl (OUT = build/xen, Xen 4.17's libxl sources built on this
# core; XL = Debian's xl; BUILDDIR = the standalone build, for c-tests/):
#   - the core's view of Xen's structs and of libxl's internal prototypes,
#     compiled against Xen's own libxl_internal.h (xen/checks/);
#   - the exported symbol set against Debian's libxenlight.so.4.17;
#   - xen/tests/run.sh: Xen's own test programs, the disk-eject watch,
#     Debian's xl, the event-core suite;
#   - every C test of c-tests/ and the demo, on the full library;
#   - valgrind over the public-API xenstore-watch programs (ctx_free frees
#     everything).
# One PASS/FAIL line per check (N/A lines from c-tests/ are listed), then
# "N passed, N failed"; exit 1 if any failed.
set -u
out=$(cd "${1:?usage: test-xen.sh OUT XL BUILDDIR}" && pwd)
xl=${2:-}
b=${3:-build}
top=$(cd "$(dirname "$0")/../.." && pwd)
tree=$(cat "$out/TREE")
light=$tree/tools/libs/light
logs=$out/tests/logs
mkdir -p "$logs"
pass=0; fail=0
ok()  { echo "PASS $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1: $2"; fail=$((fail + 1)); }
xcc() { (cd "$light" && ${XEN_CC:-gcc} -std=gnu11 -fsyntax-only -D__XEN_TOOLS__ \
    -include ../../config.h -I. -I../../include "$1") > "$2" 2>&1; }

echo "== the core against Xen's libxl_internal.h"
if n=$(python3 "$top/xen/checks/layout.py" "$top/src/ffi/internal/layout.rs" "$logs/layout_check.c") \
        && xcc "$logs/layout_check.c" "$logs/layout_check.log"; then
    ok "xen_struct_layouts ($n offsets and sizes)"
else
    bad xen_struct_layouts "see $logs/layout_check.log"; tail -5 "$logs/layout_check.log"
fi
h=$(ls -t "$top"/target/release-xen/build/xenlight-*/out/cbindgen.h 2>/dev/null | head -1)
if [ -z "$h" ]; then
    bad xen_internal_prototypes "no cbindgen output of the xen build (make xen first)"
elif n=$(python3 "$top/xen/checks/protos.py" "$h" "$logs/proto_check.c") \
        && xcc "$logs/proto_check.c" "$logs/proto_check.log"; then
    ok "xen_internal_prototypes ($n declarations agree with libxl_internal.h)"
else
    bad xen_internal_prototypes "see $logs/proto_check.log"; grep error "$logs/proto_check.log" | head -5
fi

echo "== exported symbols against Debian's libxenlight.so.4.17"
deb=$(ls /usr/lib/*/libxenlight.so.4.17.0 2>/dev/null | head -1)
if [ -z "$deb" ]; then
    bad symbol_set "Debian's libxenlight.so.4.17.0 is not installed (package libxenmisc4.17)"
else
    nm -D --defined-only "$deb" | awk '{print $NF}' | sort -u > "$logs/symbols.debian"
    nm -D --defined-only "$out/libxenlight.so.4.17.0" | awk '{print $NF}' | sort -u > "$logs/symbols.ours"
    missing=$(comm -23 "$logs/symbols.debian" "$logs/symbols.ours")
    extra=$(comm -13 "$logs/symbols.debian" "$logs/symbols.ours" | tr '\n' ' ')
    if [ -z "$missing" ]; then
        ok "symbol_set (all $(wc -l < "$logs/symbols.debian") of Debian's, same version node; also ours: $extra)"
    else
        bad symbol_set "not exported: $(echo $missing | head -c 400)"
    fi
fi

echo "== Xen's tests, the disk-eject watch, Debian's xl, the event-core suite"
sh "$top/xen/tests/run.sh" "$out" $xl > "$logs/run.out" 2>&1
grep -E '^(PASS|FAIL)' "$logs/run.out" | grep -v '^PASS' ; grep -E '^\(event-core suite' "$logs/run.out"
pass=$((pass + $(grep -c '^PASS' "$logs/run.out"))); fail=$((fail + $(grep -c '^FAIL' "$logs/run.out")))
echo "$(grep -c '^PASS' "$logs/run.out") passed in xen/tests/run.sh"

echo "== c-tests/ and the demo on the full library"
XL_RESULTS="$out/tests/c-results" sh "$top/c-tests/run.sh" "$b" "$out/run-nohv" > "$logs/c-tests.out" 2>&1
grep -E '^(FAIL|N/A)' "$logs/c-tests.out"; grep '^c-tests:' "$logs/c-tests.out"
pass=$((pass + $(grep -c '^PASS' "$logs/c-tests.out"))); fail=$((fail + $(grep -c '^FAIL' "$logs/c-tests.out")))
if "$out/run-nohv" "$b/demo" > "$logs/demo.log" 2>&1; then ok demo; else bad demo "exit status $? (see $logs/demo.log)"; fi

echo "== valgrind: the xenstore-watch programs free everything"
if command -v valgrind >/dev/null 2>&1; then
    for t in test_disk_eject test_xen_watch; do
        if XL_TEST_SLOW=1 timeout 300 "$out/run-nohv" valgrind -q --leak-check=full \
                --errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
                "$out/tests/$t" > "$logs/valgrind-$t.log" 2>&1; then
            ok "valgrind_$t"
        else
            bad "valgrind_$t" "exit status $? (see $logs/valgrind-$t.log)"
            grep -E "==[0-9]+== (Invalid|.*definitely|.*indirectly)" "$logs/valgrind-$t.log" | head -5
        fi
    done
else
    bad valgrind "valgrind is not installed"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
