# xen/xen.mk: build Xen 4.17's own tools/libs (libxenlight and the libraries
# it needs) from Debian's source package, stock and with our event core.
# Included at the end of the top-level Makefile; see xen/README.md.
#
#   make xen-core         build/xen-core/libxl-core.a: this core, as the
#                         archive that replaces libxl_event.o + libxl_fork.o
#   make xen-stock        build/xen-stock/: Xen's libxl, unmodified
#   make xen              build/xen/: libxl without libxl_event.o and
#                         libxl_fork.o, $(XL_CORE_ARCHIVE) linked in instead
#   make xen-own-core     build/xen-own-core/libxl-own-core.a: Xen's own
#                         libxl_event.opic + libxl_fork.opic (for xen-selfcheck)
#   make xen-check-stock  the tests of xen/tests/ against build/xen-stock
#   make xen-check        the same against build/xen
#   make xen-suite OUT=build/xen-stock (or OUT=build/xen)
#                         only the event-core test suite (xen/tests/suite.sh)
#   make xen-selfcheck    `xen` with XL_CORE_ARCHIVE=the own-core archive,
#                         then xen-check: proves the mechanism
#   make xen-xl           build/xen-xl/xl: Debian's xl binary (not installed)
#   make test-xen         everything checked on build/xen (xen/tests/test-xen.sh)
#   make test-xen-asan    build/xen-asan: the core and libxl's C code (only
#                         tools/libs/light rebuilt) under ASan + UBSan; Xen's
#                         two tests, the suite, every c-tests/ program and xl
#                         run on it (xen/tests/test-xen-san.sh); ~3 min
#   make test-xen-tsan    build/xen-tsan: the same under TSan (rustc's runtime
#                         linked into each program); Xen's two tests, the
#                         suite, c-tests' test_baton, test_ao_modes, test_abort
#   make test-xen-asan-stock / test-xen-tsan-stock
#                         the same checks (no c-tests) on stock libxl built
#                         the same way: is a finding Xen's?
#   make xen-clean        remove everything below (the fetched source too)

XEN_DEB_VERSION := 4.17.5+72-g01140da4e8
XEN_B        ?= build
XEN_SRC      := $(XEN_B)/xen-src/xen-$(XEN_DEB_VERSION)
XEN_T_STOCK  := $(XEN_B)/xen-tree/stock
XEN_T_OURS   := $(XEN_B)/xen-tree/ours
XEN_O_STOCK  := $(XEN_B)/xen-stock
XEN_O_OURS   := $(XEN_B)/xen
XEN_OWN_CORE := $(XEN_B)/xen-own-core/libxl-own-core.a
XEN_XL       := $(XEN_B)/xen-xl/xl
XEN_XL_DONE  := $(XEN_B)/xen-xl/.done

# The static archive that replaces libxl_event.o + libxl_fork.o in `make xen`
# (by default this project's core, see xen/core-archive.sh), and any
# libraries it needs beyond libxl's own (e.g. -lm).
XEN_CORE        := $(XEN_B)/xen-core/libxl-core.a
XL_CORE_ARCHIVE ?= $(XEN_CORE)
XL_CORE_LIBS    ?=

XEN_JOBS     ?= 2
# CONFIG_LIBNL=n: no COLO / remus network buffering, as in Debian's own build
# (and whether libnl-3-dev happens to be installed no longer matters).
XEN_MAKEVARS := debug=n CONFIG_LIBNL=n
XEN_CONFIGURE := ./configure --disable-seabios --disable-ovmf --disable-ipxe \
    --disable-rombios --disable-qemu-traditional \
    --with-system-qemu=/usr/bin/qemu-system-i386 --disable-pvshim \
    --disable-golang --disable-ocamltools --disable-xsmpolicy --disable-systemd
# Xen's own makes run without the outer make's flags and command-line
# variables (CC=, CFLAGS=, PROFILE=, ... must not leak into Xen's build).
XEN_SUBMAKE  := env -u MAKEFLAGS -u MFLAGS -u MAKEOVERRIDES $(MAKE)

# Our "inside libxl" test operations, linked into libxenlight_test.so of
# both builds (xen/light-tests.mk), and the suite's programs.
XEN_TESTS_INSIDE_SRC := $(wildcard xen/tests/libxl_test_xen_*.[ch])
XEN_TEST_MK  := -f $(CURDIR)/xen/light-tests.mk XEN_TESTS_DIR=$(CURDIR)/xen/tests
XEN_SUITE_PUBLIC  := test_xen_watch test_xen_badxs $(if $(GLIB_LIBS),test_xen_glib)
XEN_SUITE_TESTLIB := test_xen_xswatch test_xen_qmp test_xen_child test_xen_compose
XEN_SUITE_PROGS   := $(XEN_SUITE_PUBLIC) $(XEN_SUITE_TESTLIB)

XEN_NOHV_SRC := xen/nohv/xc_stub.c xen/nohv/xc_stub.map \
    xen/nohv/fake_xenstored.py xen/nohv/xs.py xen/nohv/run-nohv.sh
XEN_CC       ?= gcc

.PHONY: xen-fetch xen-stock xen xen-own-core xen-selfcheck xen-check \
    xen-check-stock xen-suite xen-xl xen-clean

# The core built for Xen's libxl (cargo feature `xen`: libxl's internal C
# API, src/ffi/internal), packed as one object exporting libxl's symbols only.
# `make xen-core` builds just this archive (for a Xen tree of one's own).
.PHONY: xen-core
xen-core: $(XEN_CORE)
$(XEN_CORE): $(RUST_SRC) $(HEADERS) xen/core-archive.sh xen/elf-hide.py
	$(CARGO) rustc --lib --profile release-xen --features xen --crate-type staticlib
	sh xen/core-archive.sh target/release-xen/libxenlight.a $@

xen-fetch: $(XEN_SRC)/.unpacked
$(XEN_SRC)/.unpacked: xen/fetch.sh
	sh xen/fetch.sh $(XEN_B)/xen-src >/dev/null

# ---- the stock tree: a copy of the pristine source, configured and built --
$(XEN_T_STOCK)/.configured: $(XEN_SRC)/.unpacked
	rm -rf $(XEN_T_STOCK) && mkdir -p $(dir $(XEN_T_STOCK))
	cp -a $(XEN_SRC) $(XEN_T_STOCK)
	cd $(XEN_T_STOCK)/tools && $(XEN_CONFIGURE) > ../configure.log 2>&1 \
	    || { tail -20 ../configure.log; exit 1; }
	touch $@

$(XEN_T_STOCK)/.built: $(XEN_T_STOCK)/.configured
	@echo "building Xen tools/libs in $(XEN_T_STOCK) (log: $(XEN_T_STOCK)/build.log)"
	{ $(XEN_SUBMAKE) -C $(XEN_T_STOCK)/tools/include $(XEN_MAKEVARS) && \
	  $(XEN_SUBMAKE) -C $(XEN_T_STOCK)/tools/libs -j$(XEN_JOBS) $(XEN_MAKEVARS); } \
	    > $(XEN_T_STOCK)/build.log 2>&1 || { tail -30 $(XEN_T_STOCK)/build.log; exit 1; }
	touch $@

# The stock tree's libxenlight_test.so, relinked with our test operations
# (xen/light-tests.mk; libxenlight.so.4.17.0 is not touched).
$(XEN_T_STOCK)/.testlib: $(XEN_T_STOCK)/.built xen/light-tests.mk $(XEN_TESTS_INSIDE_SRC)
	rm -f $(XEN_T_STOCK)/tools/libs/light/libxenlight_test.so
	$(XEN_SUBMAKE) -C $(XEN_T_STOCK)/tools/libs/light -f Makefile $(XEN_TEST_MK) \
	    $(XEN_MAKEVARS) libxenlight_test.so > $(XEN_T_STOCK)/testlib.log 2>&1 \
	    || { tail -30 $(XEN_T_STOCK)/testlib.log; exit 1; }
	touch $@

# ---- the "ours" tree: a copy of the built stock tree with the 2-line patch;
# only tools/libs/light is relinked in it. -----------------------------------
$(XEN_T_OURS)/.patched: $(XEN_T_STOCK)/.built xen/light-core.patch
	rm -rf $(XEN_T_OURS)
	cp -a $(XEN_T_STOCK) $(XEN_T_OURS)
	# dependency files name the stock tree's absolute paths: point them here
	find $(XEN_T_OURS) -name '.*.d' -o -name '.*.d2' | xargs sed -i \
	    's|$(abspath $(XEN_T_STOCK))/|$(abspath $(XEN_T_OURS))/|g'
	patch -d $(XEN_T_OURS) -p1 < xen/light-core.patch
	rm -f $(XEN_T_OURS)/tools/libs/light/libxenlight.a
	touch $@

# Relinks whenever the archive changes or another archive (or XL_CORE_LIBS)
# is named (the .args file changes only then).
XEN_OURS_ARGS := $(XEN_T_OURS)/.core-args
$(XEN_OURS_ARGS): FORCE_XEN_ARGS
	@mkdir -p $(dir $@)
	@echo '$(abspath $(XL_CORE_ARCHIVE)) $(XL_CORE_LIBS)' > $@.new
	@if cmp -s $@.new $@; then rm $@.new; else mv $@.new $@; fi
.PHONY: FORCE_XEN_ARGS
FORCE_XEN_ARGS:

$(XEN_T_OURS)/.linked: $(XEN_T_OURS)/.patched $(XL_CORE_ARCHIVE) $(XEN_OURS_ARGS) \
        xen/light-core.mk xen/light-tests.mk $(XEN_TESTS_INSIDE_SRC)
	cd $(XEN_T_OURS)/tools/libs/light && rm -f libxenlight.so.4.17.0 libxenlight_test.so
	$(XEN_SUBMAKE) -C $(XEN_T_OURS)/tools/libs/light -f Makefile -f $(CURDIR)/xen/light-core.mk \
	    $(XEN_TEST_MK) $(XEN_MAKEVARS) XL_CORE_ARCHIVE=$(abspath $(XL_CORE_ARCHIVE)) \
	    XL_CORE_LIBS='$(XL_CORE_LIBS)' all > $(XEN_T_OURS)/relink.log 2>&1 \
	    || { tail -30 $(XEN_T_OURS)/relink.log; exit 1; }
	touch $@

# ---- output directories ----------------------------------------------------
# $(call xen-install,TREE,OUT): the libraries (all of tools/libs, symlinks
# kept), libxenlight_test.so and Xen's test programs, testlib/ (where
# libxenlight.so.4.17 is libxenlight_test.so), the no-hypervisor kit and
# run-nohv.
define xen-install
	rm -rf $(2).tmp && mkdir -p $(2).tmp/nohv $(2).tmp/testlib
	cp -P $(1)/tools/libs/*/lib*.so* $(2).tmp/
	rm -f $(2).tmp/libxenlight_test.so
	cp $(1)/tools/libs/light/libxenlight_test.so \
	   $(1)/tools/libs/light/test_timedereg $(1)/tools/libs/light/test_fdderegrace $(2).tmp/
	ln -s ../libxenlight_test.so $(2).tmp/testlib/libxenlight.so.4.17
	$(XEN_CC) -std=gnu11 -O2 -Wall -Wextra -Werror -shared -fPIC -D__XEN_TOOLS__ \
	    -I$(1)/tools/include -Wl,--version-script=xen/nohv/xc_stub.map \
	    -o $(2).tmp/nohv/libxc_stub.so xen/nohv/xc_stub.c
	cp xen/nohv/fake_xenstored.py $(2).tmp/nohv/
	cp xen/nohv/xs.py $(2).tmp/nohv/xs
	cp xen/nohv/run-nohv.sh $(2).tmp/run-nohv
	chmod +x $(2).tmp/run-nohv $(2).tmp/nohv/xs $(2).tmp/nohv/fake_xenstored.py
	echo '$(abspath $(1))' > $(2).tmp/TREE
	rm -rf $(2) && mv $(2).tmp $(2)
endef

xen-stock: $(XEN_O_STOCK)/.done
$(XEN_O_STOCK)/.done: $(XEN_T_STOCK)/.built $(XEN_T_STOCK)/.testlib $(XEN_NOHV_SRC)
	$(call xen-install,$(XEN_T_STOCK),$(XEN_O_STOCK))
	touch $@

xen: $(XEN_O_OURS)/.done
$(XEN_O_OURS)/.done: $(XEN_T_OURS)/.linked $(XEN_NOHV_SRC)
	$(call xen-install,$(XEN_T_OURS),$(XEN_O_OURS))
	echo '$(abspath $(XL_CORE_ARCHIVE))' > $(XEN_O_OURS)/CORE_ARCHIVE
	touch $@

# Xen's own event core as a static archive, from the stock build's objects.
xen-own-core: $(XEN_OWN_CORE)
$(XEN_OWN_CORE): $(XEN_T_STOCK)/.built
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $(XEN_T_STOCK)/tools/libs/light/libxl_event.opic \
	          $(XEN_T_STOCK)/tools/libs/light/libxl_fork.opic

xen-selfcheck: $(XEN_OWN_CORE)
	$(MAKE) --no-print-directory xen-check-stock
	$(MAKE) --no-print-directory xen-check XL_CORE_ARCHIVE=$(XEN_OWN_CORE) XL_CORE_LIBS=

# ---- Debian's xl, unpacked (not installed) ---------------------------------
xen-xl: $(XEN_XL_DONE)
$(XEN_XL_DONE): xen/fetch.sh
	sh xen/fetch.sh --xl $(XEN_B)/xen-xl >/dev/null
	touch $@

# ---- tests -------------------------------------------------------------------
# The test programs, compiled against the headers (and config.h) of the tree
# they test.  The suite's programs that call our test operations link with
# libxenlight_test.so (whose soname is libxenlight.so.4.17: run them with
# run-nohv --testlib); the others with libxenlight.so.
XEN_TEST_HDRS := $(wildcard xen/tests/*.h)
$(XEN_O_STOCK)/tests/%: XEN_T := $(XEN_T_STOCK)
$(XEN_O_OURS)/tests/%: XEN_T := $(XEN_T_OURS)
# test_xen_glib also links this project's GLib adapter (build/), which then
# runs on the Xen build's libxenlight (run-nohv's LD_LIBRARY_PATH).
XEN_GLIB_FLAGS = $(GLIB_CFLAGS) -Iadapters/glib $(CURDIR)/$(GLIB_SO_V) $(GLIB_LIBS) \
    -Wl,-rpath,$(CURDIR)/$(B)
define xen-test-cc
	@mkdir -p $(dir $@)
	$(XEN_CC) -std=gnu11 -O2 -g -Wall -Wextra -Wno-format-truncation -Werror \
	    -include $(XEN_T)/tools/config.h -I$(XEN_T)/tools/include \
	    $< -o $@ -L$(dir $@).. -Wl,-rpath-link,$(dir $@).. \
	    $(if $(filter $(notdir $@),$(XEN_SUITE_TESTLIB)),$(dir $@)../libxenlight_test.so,-lxenlight) \
	    $(if $(filter test_xen_glib,$(notdir $@)),$(XEN_GLIB_FLAGS)) \
	    -lxenstore -lxentoollog -lpthread
endef
$(XEN_O_STOCK)/tests/test_xen_glib $(XEN_O_OURS)/tests/test_xen_glib: $(GLIB_SO)
$(XEN_O_STOCK)/tests/%: xen/tests/%.c $(XEN_TEST_HDRS) $(XEN_O_STOCK)/.done
	$(xen-test-cc)
$(XEN_O_OURS)/tests/%: xen/tests/%.c $(XEN_TEST_HDRS) $(XEN_O_OURS)/.done
	$(xen-test-cc)

XEN_TESTS_STOCK := $(addprefix $(XEN_O_STOCK)/tests/,test_disk_eject $(XEN_SUITE_PROGS))
XEN_TESTS_OURS  := $(addprefix $(XEN_O_OURS)/tests/,test_disk_eject $(XEN_SUITE_PROGS))

xen-check-stock: $(XEN_TESTS_STOCK) $(XEN_XL_DONE)
	sh xen/tests/run.sh $(XEN_O_STOCK) $(XEN_XL)
xen-check: $(XEN_TESTS_OURS) $(XEN_XL_DONE)
	sh xen/tests/run.sh $(XEN_O_OURS) $(XEN_XL)

# make xen-suite OUT=build/xen-stock | OUT=build/xen: only the suite
# (xen/tests/suite.sh: PASS/FAIL lines, then "N passed, N failed").
OUT ?= $(XEN_O_STOCK)
xen-suite: $(if $(filter $(XEN_O_OURS),$(OUT:/=)),$(XEN_TESTS_OURS),$(XEN_TESTS_STOCK))
	@case '$(OUT:/=)' in $(XEN_O_STOCK)|$(XEN_O_OURS)) ;; \
	  *) echo "xen-suite: OUT must be $(XEN_O_STOCK) or $(XEN_O_OURS)"; exit 2;; esac
	sh xen/tests/suite.sh $(OUT)

# make test-xen: the full libxl checked (xen/tests/test-xen.sh): layouts and
# prototypes against Xen's header, the symbol set against Debian's, Xen's
# own tests, xl, the event-core suite, c-tests/ and the demo, valgrind.
.PHONY: test-xen
test-xen: $(XEN_O_OURS)/.done $(XEN_TESTS_OURS) $(XEN_XL_DONE) lib $(C_TESTS) $(B)/demo
	sh xen/tests/test-xen.sh $(XEN_O_OURS) $(XEN_XL) $(B)

xen-clean:
	rm -rf $(XEN_B)/xen-src $(XEN_B)/xen-tree $(XEN_O_STOCK) $(XEN_O_OURS) \
	    $(dir $(XEN_OWN_CORE)) $(dir $(XEN_XL)) \
	    $(foreach n,asan tsan asan-stock tsan-stock,$(XEN_B)/xen-$(n)) \
	    $(XEN_B)/xen-core/libxl-core-asan.a* $(XEN_B)/xen-core/libxl-core-tsan.a* \
	    target/xen-asan target/xen-tsan

# ---- sanitizer builds: make test-xen-asan / make test-xen-tsan ---------------
# (xen/README.md, "Sanitizer builds".) The core built with rustc's sanitizer
# (as c-tests/asan.sh and tsan.sh build the standalone library, here with the
# `xen` feature) and packed by core-archive.sh; a copy of the built stock
# tree, build/xen-tree/NAME, with light-core.patch applied and only
# tools/libs/light recompiled, its C code instrumented with gcc through
# Xen's own make variables (EXTRA_CFLAGS_XEN_TOOLS, PREPEND_LDFLAGS_XEN_TOOLS;
# light-san.mk adds the runtime to Xen's test programs); installed as
# build/xen-NAME/, laid out like build/xen/. NAME-stock: the same build of
# the stock libxl (Xen's own event core, instrumented the same way), to tell
# whether a finding is Xen's.
#
#   ASan: Rust -Zsanitizer=address, C -fsanitize=address,undefined; gcc's
#   libasan/libubsan are the runtime (libxenlight.so needs them);
#   run-nohv preloads libasan first (nohv/preload), so programs that are not
#   instrumented (xl) load the library too.
#   TSan: Rust -Zsanitizer=thread, C -fsanitize=thread (compile only); the
#   libraries leave __tsan_* to the program, which links rustc's TSan
#   runtime statically (gcc 12's libtsan lacks entry points LLVM emits):
#   only programs linked that way can load build/xen-tsan's libxenlight.
XEN_RUST_HOST ?= x86_64-unknown-linux-gnu
XEN_TSAN_RT    = $(shell rustc --print sysroot)/lib/rustlib/$(XEN_RUST_HOST)/lib/librustc-stable_rt.tsan.a
# The runtime (recorded in build/xen-NAME/RUNTIME; ASan's is preloaded).
XEN_SAN_RUNTIME_asan = $(realpath $(shell $(XEN_CC) -print-file-name=libasan.so))
XEN_SAN_RUNTIME_tsan = $(XEN_TSAN_RT)
# -Cforce-frame-pointers: the runtimes' fast unwinder then walks through
# the core's frames (std is not rebuilt: its frames may still cut a stack).
XEN_SAN_RUSTFLAGS_asan := -Zsanitizer=address -Cunsafe-allow-abi-mismatch=sanitizer -Cforce-frame-pointers=yes
XEN_SAN_RUSTFLAGS_tsan := -Zsanitizer=thread -Cunsafe-allow-abi-mismatch=sanitizer -Cforce-frame-pointers=yes
# C: compile flags (every compile in tools/libs/light and our programs);
# link flags of the libraries; what a program links to get the runtime.
XEN_SAN_CFLAGS_asan   := -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
XEN_SAN_CFLAGS_tsan   := -g -fsanitize=thread -fno-omit-frame-pointer
XEN_SAN_LIBLDF_asan   := -fsanitize=address,undefined
XEN_SAN_LIBLDF_tsan   :=
XEN_SAN_RT_asan       := -fsanitize=address,undefined
XEN_SAN_RT_tsan        = -rdynamic -Wl,--whole-archive $(XEN_TSAN_RT) -Wl,--no-whole-archive \
                         -lpthread -ldl -lm -lrt
# The c-tests each build runs: every one under ASan; under TSan the three
# multi-threaded ones c-tests/tsan.sh runs.
XEN_SAN_CTESTS_asan := $(notdir $(C_TESTS))
XEN_SAN_CTESTS_tsan := test_baton test_ao_modes test_abort

.PHONY: xen-asan xen-tsan xen-asan-stock xen-tsan-stock \
    test-xen-asan test-xen-tsan test-xen-asan-stock test-xen-tsan-stock

# The core archive: build/xen-core/libxl-core-SAN.a (target/xen-SAN/).
$(XEN_B)/xen-core/libxl-core-%.a: $(RUST_SRC) $(HEADERS) xen/core-archive.sh xen/elf-hide.py
	RUSTC_BOOTSTRAP=1 RUSTFLAGS='$(XEN_SAN_RUSTFLAGS_$*)' CARGO_TARGET_DIR=target/xen-$* \
	    $(CARGO) rustc --lib --profile release-xen --features xen --crate-type staticlib \
	    --target $(XEN_RUST_HOST)
	sh xen/core-archive.sh target/xen-$*/$(XEN_RUST_HOST)/release-xen/libxenlight.a $@

# $(call xen-san-rules,NAME,SAN,CORE): tree build/xen-tree/NAME and output
# build/xen-NAME built with sanitizer SAN (asan, tsan) around CORE (a core
# archive; empty: Xen's own libxl_event.c/libxl_fork.c, not patched out).
define xen-san-rules
XEN_T_$(1) := $(XEN_B)/xen-tree/$(1)
XEN_O_$(1) := $(XEN_B)/xen-$(1)

# The flags the tree is built with: a change recopies and recompiles it.
$(XEN_B)/xen-tree/.$(1).flags: FORCE_XEN_ARGS
	@mkdir -p $$(dir $$@)
	@echo '$$(XEN_SAN_CFLAGS_$(2)) / $$(XEN_SAN_LIBLDF_$(2)) / $$(XEN_SAN_RT_$(2)) / $(3)' > $$@.new
	@if cmp -s $$@.new $$@; then rm $$@.new; else mv $$@.new $$@; fi

# A copy of the built stock tree; tools/libs/light's objects removed.
$(XEN_B)/xen-tree/$(1)/.copied: $(XEN_T_STOCK)/.built xen/light-core.patch $(XEN_B)/xen-tree/.$(1).flags
	rm -rf $(XEN_B)/xen-tree/$(1)
	cp -a $(XEN_T_STOCK) $(XEN_B)/xen-tree/$(1)
	find $(XEN_B)/xen-tree/$(1) -name '.*.d' -o -name '.*.d2' | xargs sed -i \
	    's|$$(abspath $(XEN_T_STOCK))/|$$(abspath $(XEN_B)/xen-tree/$(1))/|g'
	$(if $(3),patch -d $(XEN_B)/xen-tree/$(1) -p1 < xen/light-core.patch)
	cd $(XEN_B)/xen-tree/$(1)/tools/libs/light && rm -f *.o *.opic libxenlight.a \
	    libxenlight.so.4.17.0 libxenlight_test.so test_timedereg test_fdderegrace \
	    libxl-save-helper testidl
	touch $$@

# Only what build/xen-NAME needs is built (the libraries, Xen's two tests);
# a new core archive only relinks.
$(XEN_B)/xen-tree/$(1)/.built: $(XEN_B)/xen-tree/$(1)/.copied $(3) xen/light-core.mk \
        xen/light-tests.mk xen/light-san.mk $(XEN_TESTS_INSIDE_SRC)
	@echo "building tools/libs/light with $(2) in $(XEN_B)/xen-tree/$(1) (log: $(XEN_B)/xen-tree/$(1)/build.log)"
	cd $(XEN_B)/xen-tree/$(1)/tools/libs/light && \
	    rm -f libxenlight.so.4.17.0 libxenlight_test.so test_timedereg test_fdderegrace
	$(XEN_SUBMAKE) -C $(XEN_B)/xen-tree/$(1)/tools/libs/light -j$(XEN_JOBS) -f Makefile \
	    $(if $(3),-f $(CURDIR)/xen/light-core.mk XL_CORE_ARCHIVE=$(abspath $(3))) \
	    $(XEN_TEST_MK) -f $(CURDIR)/xen/light-san.mk $(XEN_MAKEVARS) \
	    EXTRA_CFLAGS_XEN_TOOLS='$$(XEN_SAN_CFLAGS_$(2))' \
	    PREPEND_LDFLAGS_XEN_TOOLS='$$(XEN_SAN_LIBLDF_$(2))' \
	    XEN_SAN_EXE_LDFLAGS='$$(XEN_SAN_RT_$(2))' \
	    libxenlight.so.4.17.0 libxenlight_test.so test_timedereg test_fdderegrace \
	    > $(XEN_B)/xen-tree/$(1)/build.log 2>&1 || { tail -30 $(XEN_B)/xen-tree/$(1)/build.log; exit 1; }
	touch $$@

xen-$(1): $(XEN_B)/xen-$(1)/.done
$(XEN_B)/xen-$(1)/.done: $(XEN_B)/xen-tree/$(1)/.built $(XEN_NOHV_SRC)
	$$(call xen-install,$(XEN_B)/xen-tree/$(1),$(XEN_B)/xen-$(1))
	echo '$$(XEN_SAN_RUNTIME_$(2))' > $(XEN_B)/xen-$(1)/RUNTIME
	$(if $(filter asan,$(2)),cp $(XEN_B)/xen-$(1)/RUNTIME $(XEN_B)/xen-$(1)/nohv/preload)
	echo $(2) > $(XEN_B)/xen-$(1)/SANITIZER
	$(if $(3),echo '$(abspath $(3))' > $(XEN_B)/xen-$(1)/CORE_ARCHIVE)
	touch $$@

# The suite's programs and test_disk_eject, instrumented (compiled, then
# linked with the runtime: gcc -fsanitize=thread would link gcc's libtsan);
# test_xen_glib with the instrumented GLib adapter of c-tests/ below.
$(XEN_B)/xen-$(1)/tests/%: xen/tests/%.c $(XEN_TEST_HDRS) $(XEN_B)/xen-$(1)/.done
	@mkdir -p $$(dir $$@)
	$(XEN_CC) -std=gnu11 -O1 -g -Wall -Wextra -Wno-format-truncation -Werror $$(XEN_SAN_CFLAGS_$(2)) \
	    -include $(XEN_B)/xen-tree/$(1)/tools/config.h -I$(XEN_B)/xen-tree/$(1)/tools/include \
	    $$(if $$(filter test_xen_glib,$$*),$(GLIB_CFLAGS) -Iadapters/glib) -c $$< -o $$@.o
	$(XEN_CC) -o $$@ $$@.o -L$(XEN_B)/xen-$(1) -Wl,-rpath-link,$(XEN_B)/xen-$(1) \
	    $$(if $$(filter $$(notdir $$@),$(XEN_SUITE_TESTLIB)),$(XEN_B)/xen-$(1)/libxenlight_test.so,-lxenlight) \
	    $$(if $$(filter test_xen_glib,$$*),-L$(XEN_B)/xen-$(1)/c-tests \
	        -Wl$$(comma)-rpath$$(comma)'$$$$ORIGIN/../c-tests' -lxenlight-glib $(GLIB_LIBS)) \
	    -lxenstore -lxentoollog -lpthread $$(XEN_SAN_RT_$(2))
	rm -f $$@.o
$(XEN_B)/xen-$(1)/tests/test_xen_glib: $(XEN_B)/xen-$(1)/c-tests/libxenlight-glib.so

# c-tests/ programs, instrumented, linked with this build's libxenlight
# (run-nohv's LD_LIBRARY_PATH finds it; no rpath); with glib, the adapter
# instrumented too, next to them.
$(XEN_B)/xen-$(1)/c-tests/%: c-tests/%.c $(wildcard c-tests/*.h) $(HEADERS) $(XEN_B)/xen-$(1)/.done
	@mkdir -p $$(dir $$@)
	$(CC) -std=gnu11 -O1 -g -Wall -Wextra -Werror $$(XEN_SAN_CFLAGS_$(2)) -I. -Iinclude \
	    $$(if $$(filter test_glib%,$$*),$(GLIB_CFLAGS) -Iadapters/glib -DXL_HAVE_GLIB) -c $$< -o $$@.o
	$(CC) -o $$@ $$@.o -L$(XEN_B)/xen-$(1) -Wl,-rpath-link,$(XEN_B)/xen-$(1) \
	    $$(if $$(filter test_glib%,$$*),-L$(XEN_B)/xen-$(1)/c-tests -Wl$$(comma)-rpath$$(comma)'$$$$ORIGIN' \
	        -lxenlight-glib $(GLIB_LIBS)) \
	    -lxenlight -lxentoollog -lpthread $$(XEN_SAN_RT_$(2))
	rm -f $$@.o
$(addprefix $(XEN_B)/xen-$(1)/c-tests/,$(filter test_glib%,$(XEN_SAN_CTESTS_$(2)))): \
    $(XEN_B)/xen-$(1)/c-tests/libxenlight-glib.so
$(XEN_B)/xen-$(1)/c-tests/libxenlight-glib.so: adapters/glib/libxl_glib.c adapters/glib/libxl_glib.h \
        $(HEADERS) $(XEN_B)/xen-$(1)/.done
	@mkdir -p $$(dir $$@)
	$(CC) -std=gnu11 -O1 -g -Wall -Wextra -Werror -fPIC -shared $$(XEN_SAN_CFLAGS_$(2)) -I. -Iinclude \
	    $(GLIB_CFLAGS) -Wl,-soname,libxenlight-glib.so -o $$@ adapters/glib/libxl_glib.c \
	    -L$(XEN_B)/xen-$(1) -Wl,-rpath-link,$(XEN_B)/xen-$(1) -lxenlight $(GLIB_LIBS) $$(XEN_SAN_LIBLDF_$(2))

# The negative control: a program that must make the sanitizer report.
$(XEN_B)/xen-$(1)/tests/san_control: xen/tests/san_control.c $(XEN_B)/xen-$(1)/.done
	@mkdir -p $$(dir $$@)
	$(XEN_CC) -std=gnu11 -O0 -g $$(XEN_SAN_CFLAGS_$(2)) -c $$< -o $$@.o
	$(XEN_CC) -o $$@ $$@.o -lpthread $$(XEN_SAN_RT_$(2))
	rm -f $$@.o
endef

comma := ,
$(eval $(call xen-san-rules,asan,asan,$(XEN_B)/xen-core/libxl-core-asan.a))
$(eval $(call xen-san-rules,tsan,tsan,$(XEN_B)/xen-core/libxl-core-tsan.a))
$(eval $(call xen-san-rules,asan-stock,asan,))
$(eval $(call xen-san-rules,tsan-stock,tsan,))

XEN_SAN_SUITE := $(addprefix tests/,test_disk_eject $(XEN_SUITE_PROGS) san_control)
XEN_SAN_TESTS_asan := $(addprefix $(XEN_O_asan)/,$(XEN_SAN_SUITE) \
    $(addprefix c-tests/,$(XEN_SAN_CTESTS_asan)))
XEN_SAN_TESTS_tsan := $(addprefix $(XEN_O_tsan)/,$(XEN_SAN_SUITE) \
    $(addprefix c-tests/,$(XEN_SAN_CTESTS_tsan)))

# make test-xen-asan / test-xen-tsan: xen/tests/test-xen-san.sh (the checks
# are listed there and in xen/README.md); NAME-stock: the same on stock
# libxl (no c-tests: they need our test operations), for comparison.
test-xen-asan: $(XEN_O_asan)/.done $(XEN_SAN_TESTS_asan) $(XEN_XL_DONE)
	sh xen/tests/test-xen-san.sh $(XEN_O_asan) $(XEN_XL)
test-xen-tsan: $(XEN_O_tsan)/.done $(XEN_SAN_TESTS_tsan)
	sh xen/tests/test-xen-san.sh $(XEN_O_tsan)
test-xen-asan-stock: $(XEN_O_asan-stock)/.done \
        $(addprefix $(XEN_O_asan-stock)/,$(XEN_SAN_SUITE)) $(XEN_XL_DONE)
	sh xen/tests/test-xen-san.sh $(XEN_O_asan-stock) $(XEN_XL)
test-xen-tsan-stock: $(XEN_O_tsan-stock)/.done $(addprefix $(XEN_O_tsan-stock)/,$(XEN_SAN_SUITE))
	sh xen/tests/test-xen-san.sh $(XEN_O_tsan-stock)
