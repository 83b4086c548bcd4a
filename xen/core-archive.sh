#!/bin/sh
# core-archive.sh STATICLIB OUT.a
# Packs the core (the Rust staticlib built with the `xen` feature) into the
# archive `make xen` links into Xen's libxenlight in place of
# libxl_event.o + libxl_fork.o:
#   1. one relocatable object holding what libxl's C entry points need
#      (ld -r, rooted at every libxl_* / libxl__* symbol the library defines);
#   2. every other global symbol (the Rust standard library's and ours)
#      made local, so the .so (whose version script exports "*") exports
#      only libxl's functions;
#   3. libxl's internal functions given hidden visibility, as Xen's
#      `_hidden` declares them, except the nine that Xen's own build exports
#      (default visibility in libxl_internal.h; listed below);
#   4. our libxl_test_fdevent and libxl_test_timedereg made weak: Xen's
#      libxenlight_test.so links Xen's own C versions of them (built on
#      libxl's internal API), which then take their place there, while
#      libxenlight.so keeps ours (which the C tests of c-tests/ use).
#      Likewise libxl_test_timeout, libxl_test_progress and
#      libxl_test_childproc, whose C versions on libxl's internal API
#      (xen/bench/libxl_test_bench.c) libxenlight_test.so links so that the
#      benchmarks run the same test operations on Xen's core and on ours.
set -eu
lib=$1
out=$2
tmp=$out.d
rm -rf "$tmp"
mkdir -p "$tmp"
nm --defined-only -g "$lib" 2>/dev/null \
    | awk '$2 ~ /^[TDRB]$/ && $3 ~ /^libxl_/ { print $3 }' | sort -u > "$tmp/exports"
[ -s "$tmp/exports" ] || { echo "core-archive: no libxl_ symbols in $lib" >&2; exit 1; }
ld -r -o "$tmp/core.o" $(sed 's/^/-u /' "$tmp/exports") "$lib"
# (LLVM bitcode that rustc embeds is dropped: merged by ld -r it is
# garbage, which binutils' LLVM plugin then chokes on.)
objcopy --keep-global-symbols="$tmp/exports" --strip-debug \
    --remove-section=.llvmbc --remove-section=.llvmcmd "$tmp/core.o"
# Xen's default-visibility internal symbols: exported by its libxenlight.so.
cat > "$tmp/default" <<'LIST'
libxl__ao_aborting
libxl__childproc_default_hooks
libxl__domaindeathcheck_init
libxl__domaindeathcheck_stop
libxl__ev_immediate_register
libxl__self_pipe_eatall
libxl__self_pipe_wakeup
libxl__sigchld_needed
libxl__sigchld_notneeded
LIST
grep '^libxl__' "$tmp/exports" | grep -vxF -f "$tmp/default" > "$tmp/hidden" || true
printf '%s\n' libxl_test_fdevent libxl_test_timedereg \
    libxl_test_timeout libxl_test_progress libxl_test_childproc > "$tmp/weak"
python3 "$(dirname "$0")/elf-hide.py" "$tmp/core.o" "$tmp/hidden" "$tmp/weak"
rm -f "$out"
ar rcs "$out" "$tmp/core.o"
echo "core-archive: $(wc -l < "$tmp/exports") libxl symbols ($(wc -l < "$tmp/hidden") hidden) -> $out" >&2
