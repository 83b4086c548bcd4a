#!/bin/sh
# asan.sh: every C test under AddressSanitizer + UndefinedBehaviorSanitizer
# (`make check-asan`), leak checking on.
# The Rust library is built with -Zsanitizer=address (stable rustc, via
# RUSTC_BOOTSTRAP, since no nightly toolchain is available; std itself is
# not rebuilt, so our crate and its dependencies are instrumented) and
# linked into libxenlight.so from the staticlib as usual, with its __asan_*
# references left to the runtime. The C tests and libxentoollog are built
# with gcc's -fsanitize=address,undefined, so gcc's libasan (which has
# every entry point rustc's LLVM emits: checked below) and libubsan are
# the runtime. Any report fails the test that made it (run.sh counts it).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
b=build/asan
t=target/asan/x86_64-unknown-linux-gnu/release
CC=${CC:-gcc}
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
mkdir -p "$b/c-tests"
RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Zsanitizer=address -Cunsafe-allow-abi-mismatch=sanitizer" \
    CARGO_TARGET_DIR=target/asan cargo build --release --lib --target x86_64-unknown-linux-gnu
# gcc's runtime must provide what the instrumented Rust code calls.
missing=$(comm -23 \
    "$(nm "$t/libxenlight.a" 2>/dev/null | awk '$1 == "U" && $2 ~ /^__asan/ {print $2}' | sort -u > "$b/need"; echo "$b/need")" \
    "$(nm -D "$($CC -print-file-name=libasan.so)" | awk '{print $NF}' | sort -u > "$b/have"; echo "$b/have")")
if [ -n "$missing" ]; then
    echo "FAIL asan_runtime: gcc's libasan lacks: $missing"; exit 1
fi
$CC -shared -o "$b/libxenlight.so.4.17.0" -Wl,--whole-archive "$t/libxenlight.a" -Wl,--no-whole-archive \
    -Wl,--version-script=src/ffi/xenlight.map -Wl,-soname,libxenlight.so.4.17 -lpthread -ldl -lm
ln -sf libxenlight.so.4.17.0 "$b/libxenlight.so.4.17"
ln -sf libxenlight.so.4.17 "$b/libxenlight.so"
$CC -std=gnu11 -O1 -g $SAN -fPIC -Iinclude -shared -Wl,-soname,libxentoollog.so.1 \
    -Wl,--version-script=src/xtl/xentoollog.map -o "$b/libxentoollog.so.1.0" src/xtl/xentoollog.c
ln -sf libxentoollog.so.1.0 "$b/libxentoollog.so.1"
ln -sf libxentoollog.so.1 "$b/libxentoollog.so"
# The GLib adapter and its tests, instrumented too (skipped without glib-2.0).
GLIB_CFLAGS=$(pkg-config --cflags glib-2.0 2>/dev/null || true)
GLIB_LIBS=$(pkg-config --libs glib-2.0 2>/dev/null || true)
if [ -n "$GLIB_LIBS" ]; then
    $CC -std=gnu11 -O1 -g $SAN -fPIC -shared -I. -Iinclude $GLIB_CFLAGS -Wl,-soname,libxenlight-glib.so \
        -o "$b/libxenlight-glib.so" adapters/glib/libxl_glib.c -L"$b" -lxenlight $GLIB_LIBS
fi
for src in c-tests/test_*.c; do
    n=$(basename "$src" .c)
    extra=""
    case $n in
        test_glib*)
            [ -n "$GLIB_LIBS" ] || continue
            extra="$GLIB_CFLAGS -Iadapters/glib -DXL_HAVE_GLIB -lxenlight-glib $GLIB_LIBS" ;;
    esac
    # shellcheck disable=SC2086
    $CC -std=gnu11 -O1 -g $SAN -Wall -Wextra -Werror -I. -Iinclude "$src" -o "$b/c-tests/$n" \
        -L"$b" -Wl,-rpath,"$top/$b" $extra -lxenlight -lxentoollog -lpthread
done
# RLIMIT_AS cannot be combined with ASan's shadow memory.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=86 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
XL_TEST_NO_RLIMIT_AS=1 XL_TEST_SLOW=1 \
    sh c-tests/run.sh "$b" > "$b/results.out" || status=$?
sed 's/^\(PASS\|FAIL\) /\1 asan:/' "$b/results.out"
exit ${status:-0}
