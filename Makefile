# libxenlight (event core) in Rust. See README.md.
#   make            build build/libxenlight.so.4.17 and build/libxentoollog.so.1
#   make demo       build and run the demo
#   make test       cargo tests + every C test; last line "N passed, N failed"
#   make glib       build/libxenlight-glib.so, the GLib adapter (adapters/glib)
#   make install PREFIX=/usr/local
#   make check-asan / check-valgrind / tsan / fuzz   (see README "Robustness checks")
#   make xen / test-xen   Xen 4.17's own libxl built on this core, and checked
#   make test-xen-asan / test-xen-tsan   the same under ASan+UBSan / TSan
#                   (core and libxl's C code instrumented; see xen/README.md)

CARGO   ?= cargo
CC      ?= gcc
PREFIX  ?= /usr/local
B       := build
PROFILE ?= release
CARGO_PROFILE_FLAG := $(if $(filter release,$(PROFILE)),--release,)
RLIB_DIR := target/$(PROFILE)

CFLAGS_T := -std=gnu11 -O2 -g -Wall -Wextra -Werror -I. -Iinclude
LDFLAGS_T := -L$(B) -Wl,-rpath,$(CURDIR)/$(B) -lxenlight -lxentoollog -lpthread

XL_SO   := $(B)/libxenlight.so.4.17.0
XTL_SO  := $(B)/libxentoollog.so.1.0
HEADERS := libxl_event.h $(wildcard include/*.h)
RUST_SRC := $(shell find src -name '*.rs' -o -name '*.c' -o -name '*.map') Cargo.toml build.rs

C_TESTS := $(patsubst c-tests/%.c,$(B)/c-tests/%,$(wildcard c-tests/test_*.c))
BENCHES := $(patsubst bench/%.c,$(B)/bench/%,$(wildcard bench/bench_*.c))

# The GLib adapter (adapters/glib, see its header): build/libxenlight-glib.so.
GLIB_CFLAGS := $(shell pkg-config --cflags glib-2.0 2>/dev/null)
GLIB_LIBS   := $(shell pkg-config --libs glib-2.0 2>/dev/null)
GLIB_SO     := $(B)/libxenlight-glib.so
GLIB_SO_V   := $(B)/libxenlight-glib.so.4.17.0
ifeq ($(GLIB_LIBS),)
$(info note: glib-2.0 not found by pkg-config: the GLib adapter and its test are skipped)
C_TESTS := $(filter-out $(B)/c-tests/test_glib%,$(C_TESTS))
else
GLIB_USERS := $(B)/c-tests/test_glib $(B)/c-tests/test_glib_example $(B)/bench/bench_hooks
$(GLIB_USERS): CFLAGS_T += $(GLIB_CFLAGS) -Iadapters/glib -DXL_HAVE_GLIB
$(GLIB_USERS): LDFLAGS_T += -lxenlight-glib $(GLIB_LIBS)
$(GLIB_USERS): $(GLIB_SO)
endif

.PHONY: all lib glib demo test cargo-test c-tests install clean
all: lib
lib: $(B)/libxenlight.so $(B)/libxentoollog.so

$(RLIB_DIR)/libxenlight.a: $(RUST_SRC) $(HEADERS)
	$(CARGO) build $(CARGO_PROFILE_FLAG) --lib

# The shipped library is linked from the staticlib so that every exported
# symbol carries Xen's version node (rustc's cdylib would impose its own).
$(XL_SO): $(RLIB_DIR)/libxenlight.a src/ffi/xenlight.map
	@mkdir -p $(B)
	$(CC) -shared -o $@ -Wl,--whole-archive $< -Wl,--no-whole-archive \
	    -Wl,--version-script=src/ffi/xenlight.map -Wl,-soname,libxenlight.so.4.17 \
	    -Wl,--gc-sections -Wl,-z,relro,-z,now -lpthread -ldl -lm
$(B)/libxenlight.so: $(XL_SO)
	ln -sf libxenlight.so.4.17.0 $(B)/libxenlight.so.4.17
	ln -sf libxenlight.so.4.17 $(B)/libxenlight.so

$(XTL_SO): src/xtl/xentoollog.c src/xtl/xentoollog.map include/xentoollog.h
	@mkdir -p $(B)
	$(CC) -std=gnu11 -Wall -Wextra -Werror -O2 -g -fPIC -Iinclude -shared \
	    -Wl,-soname,libxentoollog.so.1 -Wl,--version-script=src/xtl/xentoollog.map \
	    -o $@ src/xtl/xentoollog.c
$(B)/libxentoollog.so: $(XTL_SO)
	ln -sf libxentoollog.so.1.0 $(B)/libxentoollog.so.1
	ln -sf libxentoollog.so.1 $(B)/libxentoollog.so

glib: $(GLIB_SO)
# Versioned like libxenlight: soname libxenlight-glib.so.4.17.
$(GLIB_SO_V): adapters/glib/libxl_glib.c adapters/glib/libxl_glib.h $(HEADERS) | lib
	$(CC) -std=gnu11 -O2 -g -Wall -Wextra -Werror -fPIC -shared -I. -Iinclude $(GLIB_CFLAGS) \
	    -Wl,-soname,libxenlight-glib.so.4.17 -o $@ adapters/glib/libxl_glib.c \
	    -L$(B) -Wl,-rpath,$(CURDIR)/$(B) -lxenlight $(GLIB_LIBS)
$(GLIB_SO): $(GLIB_SO_V)
	ln -sf libxenlight-glib.so.4.17.0 $(B)/libxenlight-glib.so.4.17
	ln -sf libxenlight-glib.so.4.17 $(B)/libxenlight-glib.so

$(B)/c-tests/%: c-tests/%.c $(wildcard c-tests/*.h) $(HEADERS) | lib
	@mkdir -p $(B)/c-tests
	$(CC) $(CFLAGS_T) $< -o $@ $(LDFLAGS_T)

$(B)/bench/bench_hooks: c-tests/hookloop.h
$(B)/bench/%: bench/%.c bench/bench.h $(HEADERS) | lib
	@mkdir -p $(B)/bench
	$(CC) $(CFLAGS_T) -Ibench $< -o $@ $(LDFLAGS_T) -lm -ldl

# `make bench` (QUICK=1 for a short run): every bench/bench_*.c, results
# in bench/results.md; each program runs under `timeout` (BENCH_TIMEOUT,
# default 120 s). bench_timers resolves libxl_test_timeout with dlsym (-ldl).
# Where build/xen and build/xen-stock exist, every program also runs on the
# full library and on Xen's unmodified libxl 4.17, in the same run, their
# figures beside ours; `make bench-xen` builds those first: the full
# comparison (xen/bench/bench.mk, bench/README.md).
.PHONY: bench
bench: lib $(BENCHES) $(B)/bench/which_ops
	sh bench/run.sh $(B)

$(B)/demo: c-tests/demo.c $(HEADERS) | lib
	$(CC) $(CFLAGS_T) $< -o $@ $(LDFLAGS_T)

demo: $(B)/demo
	./$(B)/demo

cargo-test:
	$(CARGO) test $(CARGO_PROFILE_FLAG)

c-tests: lib $(C_TESTS)
	sh c-tests/run.sh $(B)

test: lib $(C_TESTS)
	sh c-tests/test-all.sh $(B)

# Everything a user links: libxenlight, libxentoollog and (with glib-2.0)
# the GLib adapter, their headers and pkg-config files.
install: lib $(if $(GLIB_LIBS),$(GLIB_SO))
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 755 $(XL_SO) $(XTL_SO) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libxenlight.so.4.17.0 $(DESTDIR)$(PREFIX)/lib/libxenlight.so.4.17
	ln -sf libxenlight.so.4.17 $(DESTDIR)$(PREFIX)/lib/libxenlight.so
	ln -sf libxentoollog.so.1.0 $(DESTDIR)$(PREFIX)/lib/libxentoollog.so.1
	ln -sf libxentoollog.so.1 $(DESTDIR)$(PREFIX)/lib/libxentoollog.so
	install -m 644 libxl_event.h include/*.h $(DESTDIR)$(PREFIX)/include/
	sed 's|@PREFIX@|$(PREFIX)|' xenlight.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/xenlight.pc
	sed 's|@PREFIX@|$(PREFIX)|' xentoollog.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/xentoollog.pc
ifneq ($(GLIB_LIBS),)
	install -m 755 $(GLIB_SO_V) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libxenlight-glib.so.4.17.0 $(DESTDIR)$(PREFIX)/lib/libxenlight-glib.so.4.17
	ln -sf libxenlight-glib.so.4.17 $(DESTDIR)$(PREFIX)/lib/libxenlight-glib.so
	install -m 644 adapters/glib/libxl_glib.h $(DESTDIR)$(PREFIX)/include/
	sed 's|@PREFIX@|$(PREFIX)|' adapters/glib/xenlight-glib.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/xenlight-glib.pc
endif

# `make install` into a scratch DESTDIR, then the README's GLib example
# built with pkg-config alone against that tree and run (c-tests/install_check.sh).
.PHONY: check-install
check-install: lib $(if $(GLIB_LIBS),$(GLIB_SO))
	sh c-tests/install_check.sh

clean:
	rm -rf $(B)
	$(CARGO) clean

# Every C test under valgrind memcheck: no leaks, no invalid access.
# (Children forked to check that a misuse aborts are not reported.)
VALGRIND := valgrind -q --child-silent-after-fork=yes --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=99 --track-fds=no
.PHONY: check-valgrind
check-valgrind: lib $(C_TESTS)
	XL_TEST_SLOW=1 XL_TEST_NO_RLIMIT_AS=1 sh c-tests/run.sh $(B) $(VALGRIND)

# Every C test under ASan + UBSan, the library built with ASan (see c-tests/asan.sh).
.PHONY: check-asan
check-asan: lib
	sh c-tests/asan.sh

# ThreadSanitizer over the multi-threaded C tests (see c-tests/tsan.sh).
.PHONY: tsan
tsan: lib
	sh c-tests/tsan.sh

# The call-sequence fuzz target (fuzz/run.sh): FUZZ_SECONDS (default 60)
# of libFuzzer over the property test's decoder and model, ASan on.
FUZZ_SECONDS ?= 60
.PHONY: fuzz
fuzz:
	sh fuzz/run.sh $(FUZZ_SECONDS)

# Xen 4.17 tools/libs built stock and with our core: see xen/README.md.
include xen/xen.mk
# The benchmarks on Xen's libxl too: make bench-xen, the test operations in
# Xen's libxenlight_test.so (xen/bench/bench.mk).
include xen/bench/bench.mk
