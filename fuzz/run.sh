#!/bin/sh
# fuzz/run.sh [SECONDS]: builds the `callseq` fuzz target and runs it for
# SECONDS (default $FUZZ_SECONDS or 60), seeded with the committed corpus
# fuzz/corpus/callseq. New inputs go to build/fuzz/corpus (not committed);
# a crash leaves its input in build/fuzz/ and fails the run.
#
# This is what `cargo fuzz run callseq` does (same libFuzzer, from the
# libfuzzer-sys crate; same instrumentation flags), without installing the
# cargo-fuzz binary: stable rustc with RUSTC_BOOTSTRAP=1 for -Zsanitizer,
# g++ for libFuzzer's C++. The library is built with ASan, so memory
# errors in it are crashes too.
#
# To grow the committed corpus after a long run (keep it small):
#   build/fuzz/callseq -set_cover_merge=1 -max_len=400 fuzz/corpus/callseq build/fuzz/corpus
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-${FUZZ_SECONDS:-60}}
out=$top/build/fuzz
mkdir -p "$out/corpus"
cd "$top/fuzz"
RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Zsanitizer=address \
-Cunsafe-allow-abi-mismatch=sanitizer -Cdebug-assertions" \
    CARGO_TARGET_DIR="$top/target/fuzz" cargo build --release --locked \
    --target x86_64-unknown-linux-gnu --bin callseq
cp "$top/target/fuzz/x86_64-unknown-linux-gnu/release/callseq" "$out/callseq"
cd "$out"
if ./callseq -max_total_time="$secs" -max_len=400 -len_control=0 -timeout=20 \
        -print_final_stats=1 -artifact_prefix="$out/" corpus "$top/fuzz/corpus/callseq" \
        > fuzz.log 2>&1; then
    grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units)' fuzz.log || true
    echo "PASS fuzz_callseq ($secs s)"
else
    tail -40 fuzz.log
    echo "FAIL fuzz_callseq: see build/fuzz/fuzz.log and the crash-* input in build/fuzz/"
    exit 1
fi
