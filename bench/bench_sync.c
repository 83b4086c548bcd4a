/*
 * bench_sync.c - B1: a synchronous operation's pure library overhead.
 *
 * libxl_test_fdevent(ctx, fd, POLLIN, NULL) on a pipe that is already
 * readable, against one raw poll() on the same fd (the baseline), both
 * measured here, in this run. Target (issue 7): ≤ 8× the raw poll
 * (Xen 4.17's libxl measures 16-18×).
 */
#include "bench.h"
#include <libxl_test_fdevent.h>

int main(void)
{
    int n = bench_quick() ? 20000 : 200000;
    libxl_ctx *ctx = bench_ctx();
    int p[2];
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK)) return 1;
    if (write(p[1], "x", 1) != 1) return 1;

    for (int i = 0; i < n / 10; i++) libxl_test_fdevent(ctx, p[0], POLLIN, NULL); /* warm up */

    double t0 = bench_now_ns();
    for (int i = 0; i < n; i++) {
        if (libxl_test_fdevent(ctx, p[0], POLLIN, NULL)) { fprintf(stderr, "op failed\n"); return 1; }
    }
    double ours = (bench_now_ns() - t0) / n;

    struct pollfd pf = { .fd = p[0], .events = POLLIN };
    t0 = bench_now_ns();
    for (int i = 0; i < n; i++) {
        if (poll(&pf, 1, -1) != 1) return 1;
    }
    double base = (bench_now_ns() - t0) / n;

    bench_row("B1", "sync libxl_test_fdevent, fd already readable", ours, "one raw poll()", base, 8, NULL);
    libxl_ctx_free(ctx);
    return 0;
}
