#!/bin/sh
# xen/tests/suite.sh OUT: the event-core test suite against one Xen build
# (OUT = build/xen-stock or build/xen, with OUT/tests/ built by xen.mk).
#
# Runs each program under OUT/run-nohv (a fresh fake xenstored per run;
# --testlib for those that call our test operations in
# libxenlight_test.so), passes their "PASS name" / "FAIL name: why" lines
# through, turns a program that dies without saying why into a FAIL line,
# and ends with "N passed, N failed" (exit 1 if any failed).
# Logs (libxl's messages, timings): OUT/tests/logs/suite-*.log.
# XL_TEST_SLOW=1 widens the promptness bound from 100 ms to 600 ms.
set -u
out=${1:?usage: suite.sh OUT}
out=$(cd "$out" && pwd)
logs=$out/tests/logs
mkdir -p "$logs"
T=${XEN_TEST_TIMEOUT:-90}
pass=0
fail=0
start=$(date +%s.%N)

# run LOGNAME [ENV=VAL ...] [--testlib] PROG ARGS...
run() {
    name=$1
    shift
    envs=
    while :; do
        case "$1" in *=*) envs="$envs $1"; shift ;; *) break ;; esac
    done
    lib=
    if [ "$1" = --testlib ]; then lib=--testlib; shift; fi
    prog=$1
    shift
    if [ ! -x "$out/tests/$prog" ]; then
        echo "FAIL $name: $out/tests/$prog not built"
        fail=$((fail + 1))
        return
    fi
    t0=$(date +%s.%N)
    # shellcheck disable=SC2086
    env $envs timeout -s KILL "$T" "$out/run-nohv" $lib "$out/tests/$prog" "$@" \
        > "$logs/suite-$name.out" 2> "$logs/suite-$name.log"
    st=$?
    t1=$(date +%s.%N)
    cat "$logs/suite-$name.out"
    p=$(grep -c '^PASS ' "$logs/suite-$name.out")
    f=$(grep -c '^FAIL ' "$logs/suite-$name.out")
    pass=$((pass + p))
    fail=$((fail + f))
    if [ "$st" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL $name: exit status $st with no FAIL line (crash or hang? see $logs/suite-$name.log)"
        fail=$((fail + 1))
    elif [ "$st" -eq 0 ] && [ "$p" -eq 0 ]; then
        echo "FAIL $name: no case ran"
        fail=$((fail + 1))
    fi
    echo "  ($name: $(awk "BEGIN { printf \"%.2f\", $t1 - $t0 }") s)" >&2
}

echo "== event-core suite: $out"
run watch                    test_xen_watch
run watch-xenstored-killed   test_xen_watch --kill-xenstored
if [ -x "$out/tests/test_xen_glib" ]; then
    run glib                 test_xen_glib
else
    echo "note: test_xen_glib not built (GLib not installed): the GLib adapter is not run here" >&2
fi
run xswatch                  --testlib test_xen_xswatch
run qmp                      --testlib test_xen_qmp
run compose                  --testlib test_xen_compose
for m in libxl mainloop-reaped mainloop-sigchld-occurred always always-selective; do
    run "child-$m"           --testlib test_xen_child "$m"
done
for s in bad-events wrong-type bad-header mute mute-locked; do
    run "badxs-$s"           FAKE_XENSTORED_CONTROL=1 test_xen_badxs "$s"
done

end=$(date +%s.%N)
echo "suite time: $(awk "BEGIN { printf \"%.1f\", $end - $start }") s"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
