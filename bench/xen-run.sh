#!/bin/sh
# xen-run.sh LIMIT PROG ARGS...: how bench/run.sh runs a benchmark on a Xen
# build, inside its run-nohv (which has started the fake xenstored, whose
# pid is in XENSTORED_PID):
#   - runs PROG under `timeout LIMIT` (here, so that the timeout kills the
#     program itself, not run-nohv's shell);
#   - checks that the fake xenstored (a Python process) is not in the
#     measured path: its read(2) count and bytes read (/proc/PID/io) must
#     not change while PROG runs; prints "xs-check: ok" or
#     "xs-check: read N bytes in M reads" (run.sh reports it);
#   - drops ld.so's "no version information available" warning (the
#     benchmarks are linked against libxenlight.so.4.17 with its
#     VERS_4.17.0 node; Xen links libxenlight_test.so without a version
#     script: harmless, every symbol still binds).
# Exits with PROG's status (124 if timed out).
limit=$1
shift
io() {
    awk '$1 == "rchar:" { r = $2 } $1 == "syscr:" { n = $2 } END { if (r != "") print r, n }' \
        "/proc/${XENSTORED_PID:-none}/io" 2>/dev/null
}
rcf=$(mktemp "${TMPDIR:-/tmp}/xen-run.XXXXXX") || exit 1
before=$(io)
{ { timeout "$limit" "$@"; echo $? > "$rcf"; } 2>&1 >&3 3>&- \
    | grep -v 'no version information available' >&2; } 3>&1
after=$(io)
rc=$(cat "$rcf")
rm -f "$rcf"
if [ -z "$before" ] || [ -z "$after" ]; then
    echo "xs-check: the fake xenstored's /proc/PID/io could not be read"
elif [ "$before" = "$after" ]; then
    echo "xs-check: ok"
else
    set -- $before $after
    echo "xs-check: read $(($3 - $1)) bytes in $(($4 - $2)) reads"
fi
exit "$rc"
