# xen/bench/bench.mk: the benchmarks on Xen's libxl (included by the
# top-level Makefile after xen/xen.mk).
#
# The test operations the benchmarks need and Xen's libxl lacks are built
# into libxenlight_test.so of both Xen builds (xen/bench/light-bench.mk,
# read by Xen's light Makefile through XEN_TEST_MK, beside light-tests.mk).

XEN_BENCH_SRC := xen/bench/libxl_test_bench.c xen/bench/light-bench.mk \
    $(wildcard include/libxl_test_*.h)
XEN_TEST_MK += -f $(CURDIR)/xen/bench/light-bench.mk XEN_BENCH_DIR=$(CURDIR)/xen/bench
$(XEN_T_STOCK)/.testlib: $(XEN_BENCH_SRC)
$(XEN_T_OURS)/.linked: $(XEN_BENCH_SRC)
