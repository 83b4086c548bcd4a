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
	    $(dir $(XEN_OWN_CORE)) $(dir $(XEN_XL))
