# xen/light-tests.mk: read after Xen's tools/libs/light/Makefile (and after
# light-core.mk in the build/xen tree) by xen.mk:
#   make -C tools/libs/light -f Makefile [-f .../light-core.mk] \
#        -f .../xen/light-tests.mk XEN_TESTS_DIR=/abs/path/xen/tests ...
# Adds our "inside libxl" test operations, xen/tests/libxl_test_xen_*.c,
# to libxenlight_test.so the way Xen builds its own LIBXL_TESTS_INSIDE
# objects (libxl_test_timedereg.c, libxl_test_fdevent.c): compiled exactly
# like a piece of libxl (CFLAGS_LIBXL, config.h, libxl_internal.h), linked
# into the test library only.  libxenlight.so.4.17.0 does not get them.
ifeq ($(XEN_TESTS_DIR),)
$(error XEN_TESTS_DIR (the absolute path of xen/tests) is not set)
endif

XEN_TESTS_INSIDE := xswatch qmp child compose
XEN_TEST_OBJS    := $(foreach t,$(XEN_TESTS_INSIDE),libxl_test_xen_$t.opic)

$(XEN_TEST_OBJS): CFLAGS += $(CFLAGS_LIBXL) -include $(XEN_ROOT)/tools/config.h
$(XEN_TEST_OBJS): $(AUTOINCS) libxl.api-ok $(XEN_INCLUDE)/libxl.h libxl_internal.h

# (the source is elsewhere, so "libxl_internal.h" is found through -I.)
libxl_test_xen_%.opic: $(XEN_TESTS_DIR)/libxl_test_xen_%.c $(XEN_TESTS_DIR)/libxl_test_xen_%.h
	$(CC) $(CPPFLAGS) -DPIC $(CFLAGS) -I$(CURDIR) -fPIC -c -o $@ $< $(APPEND_CFLAGS)

# Xen's rule for libxenlight_test.so links $^: these prerequisites are
# linked in with its own.
libxenlight_test.so: $(XEN_TEST_OBJS)
