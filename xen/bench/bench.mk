# xen/bench/bench.mk: the benchmarks on Xen's libxl (included by the
# top-level Makefile after xen/xen.mk; see bench/README.md).
#
#   make bench       every bench/bench_*.c on the standalone library and, when
#                    they are built, on build/xen (the full library) and on
#                    build/xen-stock (Xen's unmodified libxl 4.17); never
#                    builds them itself
#   make bench-xen   builds (or refreshes) build/xen and build/xen-stock
#                    first, then the same: the full comparison
#
# The test operations the benchmarks need and Xen's libxl lacks are built
# into libxenlight_test.so of both Xen builds (xen/bench/light-bench.mk,
# read by Xen's light Makefile through XEN_TEST_MK, beside light-tests.mk).

XEN_BENCH_SRC := xen/bench/libxl_test_bench.c xen/bench/light-bench.mk \
    $(wildcard include/libxl_test_*.h)
XEN_TEST_MK += -f $(CURDIR)/xen/bench/light-bench.mk XEN_BENCH_DIR=$(CURDIR)/xen/bench
$(XEN_T_STOCK)/.testlib: $(XEN_BENCH_SRC)
$(XEN_T_OURS)/.linked: $(XEN_BENCH_SRC)

.PHONY: bench-xen
bench-xen: lib $(BENCHES) $(B)/bench/which_ops $(XEN_O_OURS)/.done $(XEN_O_STOCK)/.done
	sh bench/run.sh $(B)
