#!/bin/sh
# xen/tests/test-xen-san.sh OUT [XL]: what `make test-xen-asan` and
# `make test-xen-tsan` run on a sanitizer build of the full libxl (OUT =
# build/xen-asan or build/xen-tsan, made by xen/xen.mk; build/xen-asan-stock
# or -tsan-stock: the same checks on stock libxl, for comparison; XL =
# Debian's xl, ASan only).
#   - the instrumentation: the core archive's __asan_* / __tsan_* references
#     are left undefined and every one is provided by the runtime; every
#     object of libxl's C code is instrumented; the library's sanitizer
#     references are all provided by the runtime;
#   - the negative control (san_control): a report must be caught;
#   - Xen's test_timedereg and test_fdderegrace; test_disk_eject (run.sh's);
#   - the event-core suite (xen/tests/suite.sh);
#   - c-tests/ (ASan: every program; TSan: test_baton, test_ao_modes,
#     test_abort, as c-tests/tsan.sh), instrumented, on the full library;
#   - ASan only: Debian's xl (not instrumented: run-nohv preloads libasan).
# Every program runs under OUT/run-nohv with XL_TEST_SLOW=1. ASan, LSan and
# TSan reports go to files (log_path, one per process, children included),
# OUT/tests/logs/reports/STEP.PROGRAM.PID; UBSan's to the program's stderr
# (see opts). Each report is a FAIL line naming the program, with the
# report's first lines; leak suppressions (xen/tests/lsan-xen.supp) must
# match exactly what they expect. One PASS/FAIL line per check, then
# "N passed, N failed"; exit 1 if any failed.
set -u
out=$(cd "${1:?usage: test-xen-san.sh OUT [XL]}" && pwd)
xl=${2:-}
top=$(cd "$(dirname "$0")/../.." && pwd)
san=$(cat "$out/SANITIZER")
tree=$(cat "$out/TREE")
light=$tree/tools/libs/light
logs=$out/tests/logs
reports=$logs/reports
rm -rf "$reports"
mkdir -p "$reports"
pass=0; fail=0
ok()  { echo "PASS $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1: $2"; fail=$((fail + 1)); }
T=${XEN_TEST_TIMEOUT:-300}
export XL_TEST_SLOW=1

# Xen's leaks that are not ours (see the file): LeakSanitizer only; what
# each entry must match, "pattern count bytes", sorted.
supp=$top/xen/tests/lsan-xen.supp
awk '/^# expect:/ { c = $3; b = $4 } /^leak:/ { print substr($0, 6), c, b }' "$supp" \
    | sort > "$logs/supp.expected"
# opts STEP: the sanitizer options for the programs of one step; reports
# go to $reports/STEP.<program>.<pid>.
opts() {
    case $san in
    asan)
        export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:exitcode=86:log_path=$reports/$1:log_exe_name=1"
        export LSAN_OPTIONS="suppressions=$supp:print_suppressions=1"
        # gcc's libubsan is a runtime apart from libasan, and its log_path
        # setting reaches libasan's copy of the call instead of its own:
        # UBSan reports go to stderr (see ubsan below), exit status 87.
        export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=87"
        # RLIMIT_AS cannot be combined with ASan's shadow memory.
        export XL_TEST_NO_RLIMIT_AS=1 ;;
    tsan)
        # Thread leaks are expected in the negative-control children of
        # the c-tests (they exit on purpose while a thread is stuck).
        export TSAN_OPTIONS="report_thread_leaks=0:exitcode=66:log_path=$reports/$1:log_exe_name=1" ;;
    esac
}
# found STEP: the report files of STEP's programs (one per line).
found() {
    for f in "$reports/$1".*; do
        if [ -s "$f" ]; then echo "$f"; fi
    done
}
# reports STEP: a FAIL line for each report of STEP's programs (ASan,
# LeakSanitizer, TSan; UBSan: see ubsan below) naming the program, with the
# report's first lines; and for each process where a leak suppression was
# used, a FAIL line unless every suppression used matched exactly what its
# "# expect:" line in $supp says. Returns 1 if there was any.
reports() {
    r=0
    for f in $(found "$1"); do
        rest=${f#"$reports/$1".}
        prog=${rest%.*}
        pid=${rest##*.}
        if grep -qE 'ERROR: |WARNING: ' "$f"; then
            r=1
            head=$(grep -m1 -E 'ERROR: |WARNING: ' "$f" | sed 's/^==.*==\(ERROR\|WARNING\)/\1/')
            bad "$1" "$san report in $prog (pid $pid): $head"
            grep -v '^$' "$f" | head -40 | sed 's/^/    /'
        elif grep -q 'Suppressions used:' "$f"; then
            wrong=$(awk '/^ *count +bytes +template/ { t = 1; next }
                         /^---/ { t = 0 } t && NF >= 3 { print $3, $1, $2 }' "$f" \
                    | sort | comm -23 - "$logs/supp.expected")
            if [ -n "$wrong" ]; then
                r=1
                bad "$1" "leak suppression in $prog (pid $pid) matched other than expected (pattern, allocations, bytes): $(echo $wrong) (expected: $(echo $(cat "$logs/supp.expected")))"
            fi
        else
            r=1
            bad "$1" "unexpected sanitizer output from $prog (pid $pid): $(head -1 "$f")"
        fi
    done
    return $r
}

# ubsan STEP LOG...: a FAIL line for each LOG (a program's stderr) holding
# a UBSan report ("runtime error:"), naming the program; returns 1 if any.
ubsan() {
    step=$1; shift
    r=0
    for l in "$@"; do
        [ -f "$l" ] || continue
        if grep -q 'runtime error:' "$l"; then
            r=1
            bad "$step" "UBSan report in $(basename "$l"): $(grep -m1 'runtime error:' "$l")"
            grep -m1 -A12 'runtime error:' "$l" | sed 's/^/    /'
        fi
    done
    return $r
}

echo "== $out: libxl built with $san"
rt=$(cat "$out/RUNTIME")
case $san in
    asan) pfx='__asan_' ;;
    tsan) pfx='__tsan_' ;;
    *) echo "unknown sanitizer '$san'"; exit 2 ;;
esac
# What the runtime provides: ASan, libasan's and libubsan's dynamic symbols;
# TSan, the symbols rustc's static runtime defines.
if [ "$san" = asan ]; then
    { nm -D --defined-only "$rt"
      nm -D --defined-only "$(readlink -f "$(${XEN_CC:-gcc} -print-file-name=libubsan.so)")"; } \
        | awk '{print $NF}' | sort -u > "$logs/runtime.syms"
else
    nm --defined-only "$rt" 2>/dev/null | awk 'NF == 3 {print $3}' | sort -u > "$logs/runtime.syms"
fi
if [ -f "$out/CORE_ARCHIVE" ]; then
    core=$(cat "$out/CORE_ARCHIVE")
    nm "$core" | awk -v p="^$pfx" '$1 == "U" && $2 ~ p {print $2}' | sort -u > "$logs/core.needs"
    defined=$(nm --defined-only "$core" | awk -v p="^$pfx" 'NF == 3 && $3 ~ p {print $3}' | head -3)
    missing=$(comm -23 "$logs/core.needs" "$logs/runtime.syms" | head -5)
    n=$(wc -l < "$logs/core.needs")
    if [ "$n" -eq 0 ]; then
        bad core_archive_instrumented "no ${pfx}* reference in $core"
    elif [ -n "$defined" ]; then
        bad core_archive_instrumented "the archive defines $(echo $defined)"
    elif [ -n "$missing" ]; then
        bad core_archive_instrumented "the runtime lacks $(echo $missing)"
    else
        ok "core_archive_instrumented ($n ${pfx}* references left undefined, all in the runtime $(basename "$rt"))"
    fi
fi
nobj=0; nsan=0
for o in "$light"/*.opic; do
    nobj=$((nobj + 1))
    if nm "$o" | grep -q " U $pfx"; then nsan=$((nsan + 1)); fi
done
if [ "$nobj" -gt 0 ] && [ "$nsan" -eq "$nobj" ]; then
    ok "libxl_c_instrumented (all $nobj objects of tools/libs/light reference ${pfx}*)"
else
    bad libxl_c_instrumented "$nsan of $nobj objects of $light reference ${pfx}*"
fi
nm -D --undefined-only "$out/libxenlight.so.4.17.0" | awk '{print $NF}' \
    | grep -E '^__(asan|ubsan|tsan)_' | sort -u > "$logs/lib.needs"
missing=$(comm -23 "$logs/lib.needs" "$logs/runtime.syms" | head -5)
if [ -s "$logs/lib.needs" ] && [ -z "$missing" ]; then
    ok "runtime_resolves_library ($(wc -l < "$logs/lib.needs") sanitizer references of libxenlight.so.4.17.0, all in the runtime)"
else
    bad runtime_resolves_library "missing from the runtime: ${missing:-no sanitizer reference at all}"
fi

echo "== negative control: a report must be caught"
case $san in asan) controls="heap-overflow leak ub" ;; tsan) controls=race ;; esac
for c in $controls; do
    opts "control-$c"
    timeout "$T" "$out/run-nohv" "$out/tests/san_control" "$c" > "$logs/control-$c.log" 2>&1
    st=$?
    n=$(found "control-$c" | wc -l)
    n=$((n + $(grep -c 'runtime error:' "$logs/control-$c.log")))
    if [ "$st" -ne 0 ] && [ "$n" -gt 0 ]; then
        ok "control_$c (exit status $st, $n report caught: $(grep -m1 -h -E 'ERROR: |WARNING: |runtime error' \
            $(found "control-$c") "$logs/control-$c.log" | sed 's/^==.*==\(ERROR\|WARNING\)/\1/' | cut -c1-70))"
    else
        bad "control_$c" "not caught: exit status $st, $n report (see $logs/control-$c.log)"
    fi
done

echo "== Xen's tests, the disk-eject watch"
for t in test_timedereg test_fdderegrace; do
    opts "$t"
    timeout "$T" "$out/run-nohv" --testlib "$out/$t" > "$logs/$t.log" 2>&1
    st=$?
    if reports "$t" && ubsan "$t" "$logs/$t.log"; then
        if [ "$st" -eq 0 ]; then ok "xen_$t"; else bad "xen_$t" "exit status $st (see $logs/$t.log)"; fi
    fi
done
opts test_disk_eject
timeout "$T" "$out/run-nohv" "$out/tests/test_disk_eject" > "$logs/test_disk_eject.out" \
    2> "$logs/test_disk_eject.log"
st=$?
if reports test_disk_eject && ubsan test_disk_eject "$logs/test_disk_eject.log"; then
    if [ "$st" -eq 0 ] && grep -q '^PASS ctx_free' "$logs/test_disk_eject.out"; then
        ok test_disk_eject
    else
        bad test_disk_eject "exit status $st: $(grep -m1 '^FAIL' "$logs/test_disk_eject.out") (see $logs/test_disk_eject.*)"
    fi
fi

echo "== the event-core suite"
opts suite
XEN_TEST_TIMEOUT=$T sh "$top/xen/tests/suite.sh" "$out" > "$logs/suite.txt" 2> "$logs/suite.err"
grep -E '^FAIL' "$logs/suite.txt"
sp=$(grep -c '^PASS' "$logs/suite.txt"); sf=$(grep -c '^FAIL' "$logs/suite.txt")
pass=$((pass + sp)); fail=$((fail + sf))
echo "(suite: $(tail -1 "$logs/suite.txt"), $(grep '^suite time' "$logs/suite.txt"))"
reports suite
ubsan suite "$logs"/suite-*.log

if [ -d "$out/c-tests" ]; then
    echo "== c-tests/ on the full library"
    opts c-tests
    XL_RESULTS="$out/tests/c-results" sh "$top/c-tests/run.sh" "$out" "$out/run-nohv" \
        > "$logs/c-tests.out" 2>&1
    grep -E '^(FAIL|N/A|SKIP)' "$logs/c-tests.out"; grep '^c-tests:' "$logs/c-tests.out"
    pass=$((pass + $(grep -c '^PASS' "$logs/c-tests.out")))
    fail=$((fail + $(grep -c '^FAIL' "$logs/c-tests.out")))
    reports c-tests
    ubsan c-tests "$out"/tests/c-results/*.err
fi

if [ "$san" = asan ] && [ -n "$xl" ] && [ -x "$xl" ]; then
    echo "== Debian's xl (not instrumented; the runtime preloaded by run-nohv)"
    for cmd in list info; do
        opts "xl-$cmd"
        timeout "$T" "$out/run-nohv" "$xl" $cmd > "$logs/xl-$cmd.log" 2>&1
        st=$?
        if reports "xl-$cmd" && ubsan "xl-$cmd" "$logs/xl-$cmd.log"; then
            if [ "$st" -eq 0 ] && grep -qE '^(Domain-0 *0 |xen_version *: 4\.17)' "$logs/xl-$cmd.log"; then
                ok "xl_$cmd"
            else
                bad "xl_$cmd" "exit status $st (see $logs/xl-$cmd.log)"
            fi
        fi
    done
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
