# xen/light-san.mk: read after Xen's tools/libs/light/Makefile (and after
# light-core.mk / light-tests.mk) when xen.mk builds a sanitizer tree
# (build/xen-tree/asan, tsan, ...):
#   make -C tools/libs/light -f Makefile ... -f .../xen/light-san.mk \
#        EXTRA_CFLAGS_XEN_TOOLS='-fsanitize=...' PREPEND_LDFLAGS_XEN_TOOLS=... \
#        XEN_SAN_EXE_LDFLAGS='...'
# The sanitizer flags themselves reach every compile and link through Xen's
# own hooks (EXTRA_CFLAGS_XEN_TOOLS, PREPEND_LDFLAGS_XEN_TOOLS, tools/Rules.mk).
# This file only adds XEN_SAN_EXE_LDFLAGS to the link of Xen's test
# programs (test_timedereg, test_fdderegrace; `private`: not inherited by
# their prerequisite libxenlight_test.so), not to the libraries: under
# TSan the runtime (rustc's, static) must be linked into each program and
# the libraries leave their __tsan_* references to it.
$(TEST_PROGS): private APPEND_LDFLAGS += $(XEN_SAN_EXE_LDFLAGS)
