#!/bin/sh
# run.sh BUILDDIR: runs every build/bench/bench_* program and collects
# their rows into bench/results.md (with the date and nproc).
set -u
b=$1
top=$(cd "$(dirname "$0")/.." && pwd)
out=$top/bench/results.md
tmp=$b/bench-results.tmp
{
    echo "# Benchmark results"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), nproc=$(nproc), QUICK=${QUICK:-0}, $(uname -m)"
    echo
    echo "| id | what | ours | baseline | ratio | target | result |"
    echo "|---|---|---|---|---|---|---|"
} > "$tmp"
status=0
for p in "$b"/bench/bench_*; do
    [ -x "$p" ] || continue
    echo "== $(basename "$p")" >&2
    if ! "$p" | tee -a "$tmp"; then
        echo "bench: $(basename "$p") failed" >&2; status=1
    fi
done
cp "$tmp" "$out"
echo "wrote $out" >&2
exit $status
