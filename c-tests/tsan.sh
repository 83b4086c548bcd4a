#!/bin/sh
# tsan.sh: ThreadSanitizer over the multi-threaded C tests (`make tsan`).
# The Rust library is built with -Zsanitizer=thread (stable rustc, via
# RUSTC_BOOTSTRAP, since no nightly toolchain is available); std itself is
# not rebuilt, so only our crate and its dependencies are instrumented.
# The C tests are compiled with gcc's -fsanitize=thread and linked with
# rustc's TSan runtime (gcc 12's libtsan lacks entry points LLVM emits).
# Any report fails the run.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
b=build/tsan
t=target/tsan/x86_64-unknown-linux-gnu/release
rt=$(rustc --print sysroot)/lib/rustlib/x86_64-unknown-linux-gnu/lib/librustc-stable_rt.tsan.a
mkdir -p "$b"
RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Zsanitizer=thread -Cunsafe-allow-abi-mismatch=sanitizer" \
    CARGO_TARGET_DIR=target/tsan cargo build --release --lib --target x86_64-unknown-linux-gnu
${CC:-gcc} -shared -o "$b/libxenlight.so.4.17.0" -Wl,--whole-archive "$t/libxenlight.a" -Wl,--no-whole-archive \
    -Wl,--version-script=src/ffi/xenlight.map -Wl,-soname,libxenlight.so.4.17 -lpthread -ldl -lm
ln -sf libxenlight.so.4.17.0 "$b/libxenlight.so.4.17"
ln -sf libxenlight.so.4.17 "$b/libxenlight.so"
cp -P build/libxentoollog.so* "$b/"
status=0
for t in test_baton test_ao_modes test_abort; do
    ${CC:-gcc} -std=gnu11 -O1 -g -fsanitize=thread -I. -Iinclude -c "c-tests/$t.c" -o "$b/$t.o"
    ${CC:-gcc} -o "$b/$t" "$b/$t.o" -Wl,--whole-archive "$rt" -Wl,--no-whole-archive \
        -L"$b" -Wl,-rpath,"$top/$b" -lxenlight -lxentoollog -lpthread -ldl -lm -lrt
    # Thread leaks are expected in the negative-control children (they
    # exit on purpose while a thread is stuck); races are not.
    if LIBXL_TEST_AUDIT=fail XL_TEST_SLOW=1 TSAN_OPTIONS="report_thread_leaks=0 exitcode=66" \
        "$b/$t" > "$b/$t.out" 2>&1 \
        && ! grep -q "WARNING: ThreadSanitizer" "$b/$t.out"; then
        echo "PASS tsan_$t"
    else
        echo "FAIL tsan_$t"; grep -A20 "WARNING: ThreadSanitizer" "$b/$t.out" | head -60; status=1
    fi
done
exit $status
