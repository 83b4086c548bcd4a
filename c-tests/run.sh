#!/bin/sh
# run.sh BUILDDIR [WRAPPER...]
# Runs every C test binary BUILDDIR/c-tests/test_* (two at a time),
# optionally under WRAPPER (e.g. valgrind), prints each one's output and
# a summary line "c-tests: N passed, N failed". A binary that exits
# non-zero without any FAIL line (crash, hang killed by its watchdog or by
# the outer timeout) counts as one failure.
# Every test runs with LIBXL_TEST_AUDIT=fail: a registered fd found closed
# by the library's fd checks (the idle audit included) aborts the program,
# so no test passes because a periodic check rescued a sleeper. The cases
# about fds closed while registered make their ctx without it.
# XL_RESULTS names the results directory (default BUILDDIR/c-results).
# A case may print "N/A <name>: <why>" when it tests behaviour that is
# another project's code in the library under test (Xen's libxl.c in the
# full libxl); those are counted and named apart, never as passes.
set -u
b=$1; shift
out=${XL_RESULTS:-$b/c-results}
export LIBXL_TEST_AUDIT=fail
rm -rf "$out"; mkdir -p "$out"
ls "$b"/c-tests/test_* 2>/dev/null | grep -v '\.' | \
  xargs -P 2 -I{} sh -c '
    t={}; n=$(basename "$t"); o='"$out"'/$n.out
    timeout -k 5 240 "$@" "$t" >"$o" 2>"$o.err"; rc=$?
    if [ $rc -ne 0 ] && ! grep -q "^FAIL" "$o"; then
        echo "FAIL $n: exited with status $rc (crash or hang); stderr tail:" >>"$o"
        tail -5 "$o.err" | sed "s/^/    /" >>"$o"
    fi
    echo "$rc" >"$o.rc"' sh "$@"
pass=0; fail=0; na=0
for o in "$out"/*.out; do
    [ -e "$o" ] || continue
    cat "$o"
    p=$(grep -c '^PASS' "$o"); f=$(grep -c '^FAIL' "$o"); n=$(grep -c '^N/A' "$o")
    pass=$((pass + p)); fail=$((fail + f)); na=$((na + n))
done
if [ $na -gt 0 ]; then
    echo "c-tests: $pass passed, $fail failed ($na not applicable to this library: the N/A lines above)"
else
    echo "c-tests: $pass passed, $fail failed"
fi
[ $fail -eq 0 ]
