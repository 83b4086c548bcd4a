# xen/bench/light-bench.mk: read after Xen's tools/libs/light/Makefile (and
# after light-core.mk and light-tests.mk) by xen.mk, through XEN_TEST_MK
# (extended in xen/bench/bench.mk):
#   make -C tools/libs/light -f Makefile [...] -f .../xen/bench/light-bench.mk \
#        XEN_BENCH_DIR=/abs/path/xen/bench ...
# Adds the test operations the benchmarks need and Xen's libxl lacks
# (xen/bench/libxl_test_bench.c: libxl_test_timeout, libxl_test_progress,
# libxl_test_childproc, in C on libxl's internal API) to
# libxenlight_test.so, compiled and linked exactly as light-tests.mk does
# with xen/tests/libxl_test_xen_*.c.  libxenlight.so.4.17.0 does not get them.
ifeq ($(XEN_BENCH_DIR),)
$(error XEN_BENCH_DIR (the absolute path of xen/bench) is not set)
endif

XEN_BENCH_OBJS := libxl_test_bench.opic

$(XEN_BENCH_OBJS): CFLAGS += $(CFLAGS_LIBXL) -include $(XEN_ROOT)/tools/config.h
$(XEN_BENCH_OBJS): $(AUTOINCS) libxl.api-ok $(XEN_INCLUDE)/libxl.h libxl_internal.h

# (the source is elsewhere, so "libxl_internal.h" is found through -I.;
# the project's include/libxl_test_*.h by a path relative to the source)
libxl_test_bench.opic: $(XEN_BENCH_DIR)/libxl_test_bench.c $(wildcard $(XEN_BENCH_DIR)/../../include/libxl_test_*.h)
	$(CC) $(CPPFLAGS) -DPIC $(CFLAGS) -I$(CURDIR) -fPIC -c -o $@ $< $(APPEND_CFLAGS)

# Xen's rule for libxenlight_test.so links $^.
libxenlight_test.so: $(XEN_BENCH_OBJS)
