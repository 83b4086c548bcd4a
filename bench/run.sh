#!/bin/sh
# run.sh BUILDDIR: runs every build/bench/bench_* program (each under
# `timeout`, BENCH_TIMEOUT seconds, default 120) and collects their rows
# into bench/results.md (with the date and nproc); their other stdout
# lines (notes, "skipped" lines) go to a Notes list below the table.
#
# Each program runs on the standalone library (column "ours", as the
# program prints it) and then, in the same run and right after it, on
# every Xen build that exists (never built here: `make bench-xen` does):
#   xr  build/xen/run-nohv            the full library (Xen's libxl on our
#                                     core), the core's Rust test ops
#   xc  build/xen/run-nohv --testlib  the same library, test ops in C on
#                                     libxl's internal API
#   st  build/xen-stock/run-nohv --testlib
#                                     Xen's unmodified libxl 4.17, the same
#                                     C test ops
# (inside run-nohv through bench/xen-run.sh, which checks that the fake
# xenstored stays out of the measured path). Their figures become extra
# columns of the same rows: "figure (ratio to the baseline that run
# measured itself[, PASS/MISS against the row's target])". Rows are matched
# by id, description (measured values in it ignored) and baseline; a row
# only another library printed gets a row of its own.
# build/bench/which_ops tells, per library, which implementation of each
# test operation the programs bind to; a program whose test operation a
# library lacks is not run there (a note says so).
#
# Exit status 1 if a program failed (non-zero exit, or killed by timeout);
# a MISS is not a failure.
set -u
b=$(cd "$1" && pwd)
limit=${BENCH_TIMEOUT:-120}
top=$(cd "$(dirname "$0")/.." && pwd)
out=$top/bench/results.md
w=$b/bench-run.tmp
rm -rf "$w"
mkdir -p "$w"
: > "$w/rows"
: > "$w/notes"
status=0
start=$(date +%s)

title() {
    case $1 in
        std) echo "ours" ;;
        xr) echo "full libxl, Rust ops" ;;
        xc) echo "full libxl, C ops" ;;
        st) echo "libxl 4.17, C ops" ;;
    esac
}
# the library each configuration's programs should bind to
libfile() {
    case $1 in
        std) echo "$b/libxenlight.so.4.17.0" ;;
        xr) echo "$b/xen/libxenlight.so.4.17.0" ;;
        xc) echo "$b/xen/libxenlight_test.so" ;;
        st) echo "$b/xen-stock/libxenlight_test.so" ;;
    esac
}
# run CFG PROG ARGS...: PROG on configuration CFG, under the time limit
run() {
    c=$1
    shift
    case $c in
        std) timeout "$limit" "$@" ;;
        xr) "$b/xen/run-nohv" sh "$top/bench/xen-run.sh" "$limit" "$@" ;;
        xc) "$b/xen/run-nohv" --testlib sh "$top/bench/xen-run.sh" "$limit" "$@" ;;
        st) "$b/xen-stock/run-nohv" --testlib sh "$top/bench/xen-run.sh" "$limit" "$@" ;;
    esac
}

# ---- which libraries -------------------------------------------------------
cfgs=std
missing_xen=
have_py=yes
command -v python3 >/dev/null 2>&1 || have_py=
for x in xen xen-stock; do
    if [ -f "$b/$x/.done" ] && [ -x "$b/$x/run-nohv" ] && [ -n "$have_py" ]; then
        case $x in xen) cfgs="$cfgs xr xc" ;; xen-stock) cfgs="$cfgs st" ;; esac
    else
        missing_xen="$missing_xen $x"
    fi
done
if [ -n "$missing_xen" ] && [ -z "$have_py" ]; then
    echo "- the Xen builds need python3 (run-nohv's fake xenstored): not found, not run" >> "$w/notes"
fi
# A Xen build older than what it is built from still runs, with a note.
if [ -f "$b/xen/.done" ] && [ -n "$(find "$top/src" "$top/xen/bench/libxl_test_bench.c" "$top/xen/bench/light-bench.mk" \
        "$top/xen/core-archive.sh" $top/include/libxl_test_*.h \
        -newer "$b/xen/.done" 2>/dev/null | head -1)" ]; then
    echo "- build/xen is older than src/ or xen/bench/: its columns are an older core's (make bench-xen relinks it)" >> "$w/notes"
fi
# build/xen with another core (make xen-selfcheck links Xen's own into it)
if [ -f "$b/xen/CORE_ARCHIVE" ] && [ "$(cat "$b/xen/CORE_ARCHIVE")" != "$b/xen-core/libxl-core.a" ]; then
    echo "- build/xen is linked with $(cat "$b/xen/CORE_ARCHIVE"), not our core: its columns are that core's (make bench-xen relinks ours)" >> "$w/notes"
fi
if [ -f "$b/xen-stock/.done" ] && [ -n "$(find "$top/xen/bench/libxl_test_bench.c" "$top/xen/bench/light-bench.mk" -newer "$b/xen-stock/.done" 2>/dev/null | head -1)" ]; then
    echo "- build/xen-stock is older than xen/bench/: its test ops may be an older version (make bench-xen rebuilds them)" >> "$w/notes"
fi

# ---- which test operations each library runs --------------------------------
# impl OP FILE WHICH: describes the implementation of OP found in FILE
impl() {
    if [ "$2" = - ]; then echo "absent"; return; fi
    if [ "$3" = xenbench ]; then echo "C, xen/bench/libxl_test_bench.c"; return; fi
    # Xen's libxl_test_fdevent.c: OP sits beside that file's static functions
    if nm -n "$2" 2>/dev/null | awk -v s="$1" '
            { a[NR] = $1; n[NR] = $NF } $NF == s && NF == 3 { at = NR }
            END {
                if (!at) exit 1
                for (i = at - 1; i > 1 && a[i] == a[at]; i--) ;
                for (j = at + 1; j < NR && a[j] == a[at]; j++) ;
                exit !(n[i] ~ /^(tfe_|fdevent_complete)/ || n[j] ~ /^(tfe_|fdevent_complete)/)
            }'; then
        echo "Xen's C, libxl_test_fdevent.c"
    elif nm "$2" 2>/dev/null | grep -q testops; then
        echo "Rust, src/testops"
    else
        echo "unknown"
    fi
}
ops=$(cat "$top"/bench/bench_*.c | grep -o 'libxl_test_[a-z]*' | sort -u)
: > "$w/impls"
for c in $cfgs; do
    if [ -x "$b/bench/which_ops" ]; then
        # shellcheck disable=SC2086
        run "$c" "$b/bench/which_ops" $ops 2>/dev/null | grep '^libxl_test_' > "$w/$c.ops"
    else
        : > "$w/$c.ops"
    fi
    line=
    expect=$(libfile "$c")
    while read -r op file which; do
        d=$(impl "$op" "$file" "$which")
        [ "$file" = - ] || [ "$file" = "$(readlink -f "$expect")" ] || d="$d, in $file (not $expect!)"
        line="$line${line:+; }\`$op\`: $d"
    done < "$w/$c.ops"
    [ -n "$line" ] || line="not checked (build/bench/which_ops missing)"
    echo "- **$(title "$c")** ($(echo "$expect" | sed "s|^$top/||")): $line" >> "$w/impls"
done

# ---- the programs -------------------------------------------------------------
xs_ok=0
xs_bad=
for p in "$b"/bench/bench_*; do
    [ -x "$p" ] || continue
    name=$(basename "$p")
    needs=$(grep -o 'libxl_test_[a-z]*' "$top/bench/$name.c" 2>/dev/null | sort -u)
    : > "$w/prog"
    for c in $cfgs; do
        t=$(title "$c")
        label=
        [ "$c" = std ] || label=" [$t]"
        absent=
        for op in $needs; do
            if grep -q "^$op - " "$w/$c.ops"; then absent="$absent $op"; fi
        done
        if [ -n "$absent" ]; then
            echo "- $name$label: not run:$absent not in $(libfile "$c" | sed "s|^$top/||")" >> "$w/notes"
            continue
        fi
        echo "== $name ($t)" >&2
        { run "$c" "$p"; echo $? > "$w/rc"; } | tee "$w/one" | grep -v '^xs-check:'
        rc=$(cat "$w/rc")
        grep '^|' "$w/one" | sed "s/^/$c	/" >> "$w/prog"
        grep -v -e '^|' -e '^xs-check:' "$w/one" | sed -e "s/^note: //" -e "s/^/- $name$label: /" >> "$w/notes"
        xs=$(sed -n 's/^xs-check: //p' "$w/one")
        if [ "$xs" = ok ]; then
            xs_ok=$((xs_ok + 1))
        elif [ "$c" != std ]; then
            xs_bad="$xs_bad- $name$label: the fake xenstored ${xs:-was not checked}
"
        fi
        if [ "$rc" = 124 ]; then
            echo "bench: $name ($t) killed after ${limit}s" >&2; status=1
            echo "- $name$label: killed after ${limit} s (timeout)" >> "$w/notes"
        elif [ "$rc" != 0 ]; then
            echo "bench: $name ($t) failed (exit $rc)" >&2; status=1
            echo "- $name$label: FAILED (exit $rc)" >> "$w/notes"
        fi
    done
    # one row per measurement, the other libraries' figures beside ours
    awk -F '\t' -v cfgs="$cfgs" '
        BEGIN { n = split(cfgs, C, " ") }
        {
            c = $1; r = $2
            sub(/^\| */, "", r); sub(/ *\|$/, "", r)
            if (split(r, f, / \| /) < 7) next
            bw = f[4]; sub(/: [^:]*$/, "", bw)
            nw = f[2]; gsub(/[0-9]+(\.[0-9]+)? (ns|µs|ms|s)/, "#", nw)
            k = f[1] SUBSEP nw SUBSEP bw
            k = k SUBSEP (++seen[c, k])
            if (!(k in known)) {
                known[k] = 1; keys[++nk] = k
                id[k] = f[1]; what[k] = f[2]; base[k] = bw; tgt[k] = f[6]
            }
            if (c == "std") mine[k] = $2
            fig[c, k] = f[3] " (" f[5] (f[7] == "PASS" || f[7] == "MISS" ? ", " f[7] : "") ")"
        }
        END {
            for (i = 1; i <= nk; i++) {
                k = keys[i]
                line = (k in mine) ? mine[k] : "| " id[k] " | " what[k] " | — | " base[k] " | — | " tgt[k] " | — |"
                for (j = 1; j <= n; j++)
                    if (C[j] != "std") line = line " " ((C[j], k) in fig ? fig[C[j], k] : "—") " |"
                print line
            }
        }' "$w/prog" >> "$w/rows"
done

# ---- bench/results.md -----------------------------------------------------------
hdr="| id | what | ours | baseline | ratio | target | result |"
sep="|---|---|---|---|---|---|---|"
for c in $cfgs; do
    [ "$c" = std ] && continue
    hdr="$hdr $(title "$c") |"
    sep="$sep---|"
done
{
    echo "# Benchmark results"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), nproc=$(nproc), QUICK=${QUICK:-0}, $(uname -m), $(($(date +%s) - start)) s"
    echo
    if [ "$cfgs" = std ]; then
        echo "All figures are ours only: the standalone library (build/libxenlight.so)."
        echo "Xen's libxl 4.17 and the full library (Xen's libxl on our core) are not"
        echo "built here (\`make bench-xen\` builds build/xen and build/xen-stock and adds"
        echo "their figures beside ours)."
    else
        echo "*ours*, *baseline*, *ratio*, *target* and *result* are the standalone"
        echo "library's (build/libxenlight.so, our Rust test operations). Each further"
        echo "column is the same benchmark program run in this same \`make bench\`, right"
        echo "after ours, on another library: its figure and, in brackets, the ratio to"
        echo "the baseline that run measured itself (with PASS/MISS where the row has a"
        echo "target). *full libxl* is Xen's libxl 4.17 on our core (build/xen);"
        echo "*libxl 4.17* is Xen's unmodified libxl with its own event core"
        echo "(build/xen-stock). *C ops*: the test operations the benchmarks call, in C"
        echo "on libxl's internal API, the same code on both cores (a comparison of the"
        echo "cores); *Rust ops*: the core's own, the same code as ours (the cost of"
        echo "being inside Xen's libxl). — : not measured there (see the notes)."
        echo "Ranges over several runs, and why the full library differs from ours:"
        echo "README.md, \"Beside Xen's libxl\"."
        [ -n "$missing_xen" ] && echo "Not built, so not shown:$missing_xen (\`make bench-xen\` builds them)."
        echo
        echo "Test operations each library ran (bound at run time, bench/which_ops.c):"
        echo
        cat "$w/impls"
        echo
        if [ -z "$xs_bad" ]; then
            echo "The fake xenstored that libxl_ctx_alloc needs on the Xen builds read"
            echo "nothing while any of the $xs_ok runs on them lasted (its /proc/PID/io,"
            echo "bench/xen-run.sh): it is not in the measured path."
        else
            echo "The fake xenstored was not idle during some runs:"
            echo
            printf '%s' "$xs_bad"
        fi
    fi
    echo
    echo "$hdr"
    echo "$sep"
    cat "$w/rows"
    if [ -s "$w/notes" ]; then
        echo
        echo "Notes:"
        echo
        cat "$w/notes"
    fi
} > "$w/results.md"
cp "$w/results.md" "$out"
rm -rf "$w"
echo "wrote $out" >&2
exit $status
