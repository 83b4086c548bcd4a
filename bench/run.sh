#!/bin/sh
# run.sh BUILDDIR: runs every build/bench/bench_* program (each under
# `timeout`, BENCH_TIMEOUT seconds, default 120) and collects their rows
# into bench/results.md (with the date and nproc); their other stdout
# lines (notes, "skipped" lines) go to a Notes list below the table.
# Exit status 1 if a program failed (non-zero exit, or killed by timeout);
# a MISS is not a failure.
set -u
b=$1
limit=${BENCH_TIMEOUT:-120}
top=$(cd "$(dirname "$0")/.." && pwd)
out=$top/bench/results.md
tmp=$b/bench-results.tmp
rows=$b/bench-rows.tmp
notes=$b/bench-notes.tmp
one=$b/bench-one.tmp
: > "$rows"
: > "$notes"
status=0
start=$(date +%s)
for p in "$b"/bench/bench_*; do
    [ -x "$p" ] || continue
    name=$(basename "$p")
    echo "== $name" >&2
    { timeout "$limit" "$p"; echo $? > "$one.rc"; } | tee "$one"
    rc=$(cat "$one.rc")
    grep '^|' "$one" >> "$rows"
    grep -v '^|' "$one" | sed -e "s/^note: //" -e "s/^/- $name: /" >> "$notes"
    if [ "$rc" = 124 ]; then
        echo "bench: $name killed after ${limit}s" >&2; status=1
        echo "- $name: killed after ${limit} s (timeout)" >> "$notes"
    elif [ "$rc" != 0 ]; then
        echo "bench: $name failed (exit $rc)" >&2; status=1
        echo "- $name: FAILED (exit $rc)" >> "$notes"
    fi
done
{
    echo "# Benchmark results"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), nproc=$(nproc), QUICK=${QUICK:-0}, $(uname -m), $(($(date +%s) - start)) s"
    echo
    echo "| id | what | ours | baseline | ratio | target | result |"
    echo "|---|---|---|---|---|---|---|"
    cat "$rows"
    if [ -s "$notes" ]; then
        echo
        echo "Notes:"
        echo
        cat "$notes"
    fi
} > "$tmp"
rm -f "$rows" "$notes" "$one" "$one.rc"
cp "$tmp" "$out"
echo "wrote $out" >&2
exit $status
