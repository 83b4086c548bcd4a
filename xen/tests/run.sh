#!/bin/sh
# xen/tests/run.sh OUT [XL]: the no-hypervisor checks of one Xen build
# (OUT = build/xen-stock or build/xen, as made by xen/xen.mk; XL = Debian's
# xl binary, e.g. build/xen-xl/xl; its cases are skipped without it).
#
# One "PASS name" / "FAIL name: why" line per case, then "N passed, N failed";
# exits 1 if any failed.  Logs of each case: OUT/tests/logs/.
# The event-core suite (xen/tests/suite.sh) runs last; its cases count here.
set -u
out=${1:?usage: run.sh OUT [XL]}
xl=${2:-}
out=$(cd "$out" && pwd)
logs=$out/tests/logs
mkdir -p "$logs"
run="$out/run-nohv"
T=${XEN_TEST_TIMEOUT:-60}
pass=0
fail=0
ok()  { echo "PASS $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1: $2"; fail=$((fail + 1)); }

echo "== $out"

# libxenlight: soname, and every exported symbol carries VERS_4.17.0
so=$out/libxenlight.so.4.17.0
soname=$(objdump -p "$so" | awk '$1=="SONAME" {print $2}')
unversioned=$(nm -D --defined-only "$so" | awk '$NF !~ /@@VERS_4\.17\.0$/ && $NF != "VERS_4.17.0"' | head -5)
nexp=$(nm -D --defined-only "$so" | grep -c '@@VERS_4\.17\.0$')
if [ "$soname" != libxenlight.so.4.17 ]; then
    bad libxenlight_soname_versions "soname is '$soname'"
elif [ -n "$unversioned" ]; then
    bad libxenlight_soname_versions "not in VERS_4.17.0: $(echo $unversioned)"
else
    ok "libxenlight_soname_versions ($nexp symbols @@VERS_4.17.0)"
fi

# Xen's own test programs (they must find libxenlight_test.so: --testlib)
for t in test_timedereg test_fdderegrace; do
    if timeout "$T" "$run" --testlib "$out/$t" > "$logs/$t.log" 2>&1; then
        ok "xen_$t"
    else
        bad "xen_$t" "exit status $? (see $logs/$t.log)"
    fi
done

# libxl public API: disk-eject xenstore watch
if [ -x "$out/tests/test_disk_eject" ]; then
    timeout "$T" "$run" "$out/tests/test_disk_eject" > "$logs/test_disk_eject.out" \
        2> "$logs/test_disk_eject.log"
    st=$?
    sed 's/^/  /' "$logs/test_disk_eject.out"
    grep -h "event .* ms after" "$logs/test_disk_eject.log" | sed 's/^/  /'
    if [ $st -eq 0 ] && grep -q '^PASS ctx_free' "$logs/test_disk_eject.out"; then
        ok test_disk_eject
    else
        bad test_disk_eject "exit status $st (see $logs/test_disk_eject.*)"
    fi
else
    bad test_disk_eject "$out/tests/test_disk_eject not built"
fi

# Debian's xl against this build
if [ -n "$xl" ] && [ -x "$xl" ]; then
    lib=$(LD_LIBRARY_PATH=$out ldd "$xl" | awk '$1=="libxenlight.so.4.17" {print $3}')
    case "$lib" in
        "$out"/*) ok xl_uses_this_libxenlight ;;
        *) bad xl_uses_this_libxenlight "ldd says '$lib'" ;;
    esac
    if LD_BIND_NOW=1 timeout "$T" "$run" "$xl" help > "$logs/xl-help.log" 2>&1; then
        ok xl_help_bind_now
    else
        bad xl_help_bind_now "exit status $? (see $logs/xl-help.log)"
    fi
    if timeout "$T" "$run" "$xl" list > "$logs/xl-list.log" 2>&1 &&
            grep -q '^Domain-0 *0 ' "$logs/xl-list.log"; then
        ok xl_list
        sed 's/^/  /' "$logs/xl-list.log"
    else
        bad xl_list "(see $logs/xl-list.log)"
    fi
    if timeout "$T" "$run" "$xl" info > "$logs/xl-info.log" 2>&1 &&
            grep -q '^xen_version *: 4\.17' "$logs/xl-info.log"; then
        ok xl_info
    else
        bad xl_info "(see $logs/xl-info.log)"
    fi
else
    echo "(no xl given: xl cases skipped)"
fi

# the event-core suite (its own PASS/FAIL lines and counts)
here=$(cd "$(dirname "$0")" && pwd)
sh "$here/suite.sh" "$out" > "$logs/suite.txt"
sed '$d' "$logs/suite.txt"
counts=$(tail -1 "$logs/suite.txt")
echo "(event-core suite: $counts)"
case "$counts" in
    *" passed, "*" failed")
        pass=$((pass + ${counts%% passed*}))
        f=${counts#*passed, }
        fail=$((fail + ${f%% failed}))
        ;;
    *) bad event_core_suite "no counts from suite.sh (see $logs/suite.txt)" ;;
esac

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
