/*
 * bench_memory.c - B6: heap per pending op, and aborting many ops.
 *
 * K = 10000 pending for_event libxl_test_fdevent ops, each on its own fd:
 * an eventfd (one fd per op, never readable, so 10000 ops fit the 20000
 * fd limit; with a lower RLIMIT_NOFILE, as many as allowed, with a note).
 *  - Heap per pending op: glibc mallinfo2() just before and after starting
 *    the K ops, uordblks (in-use heap chunks) + hblkhd (mmapped chunks:
 *    large arrays are mmapped and missing from uordblks), divided by K.
 *    This program allocates nothing between the two calls (fds, arrays and
 *    the ao_how are made before), and one op is started and aborted first
 *    so one-time allocations (registries, first fd) are not counted.
 *    Baseline = the target, 192 B: ratio ≤ 1 is PASS.
 *    Measured twice, each in a fresh ctx: with no abort index (built by the
 *    first libxl_ao_abort and dropped when no op is in progress), and again
 *    with the index live (an op kept pending across a libxl_ao_abort);
 *    the target is judged on the second, the worst case.
 *  - Abort: libxl_ao_abort on each op by its own for_event value, in a
 *    pseudo-random order, then collect all K ERROR_ABORTED completions
 *    (libxl_event_check; libxl_event_wait if none is queued); the total
 *    time against the 10 ms target. Twice: each op on its own fd (the ops
 *    of the heap figure), and all K ops on one fd (a third fresh ctx).
 */
#include "bench.h"
#include <malloc.h>
#include <sys/eventfd.h>
#include <libxl_test_fdevent.h>

static __attribute__((noreturn)) void die(const char *what, int rc)
{
    fprintf(stderr, "bench_memory: %s (rc=%d)\n", what, rc);
    exit(1);
}

static double heap_now(void)
{
    struct mallinfo2 m = mallinfo2();
    return (double)m.uordblks + (double)m.hblkhd;
}

/* One fresh ctx: K ops started (heap measured around that), then all
 * aborted one by one in `order` and collected (timed). With `indexed`, a
 * sentinel op stays in progress across an abort of nothing (which builds
 * the abort index, ERROR_NOTFOUND) before the K ops start. */
static void run(int K, const int *efd, const int *order, char *seen, int indexed, int one_fd,
                double *per_op, double *t_abort)
{
    libxl_ctx *ctx = bench_ctx();
    libxl_asyncop_how how = { .callback = NULL };
    libxl_asyncop_how sentinel = { .callback = NULL, .u.for_event = (uint64_t)K + 2 };
    libxl_event *ev;
    int rc;

    /* Warm up: one op started, aborted and collected. */
    how.u.for_event = (uint64_t)K + 1;
    if ((rc = libxl_test_fdevent(ctx, efd[K], POLLIN, &how))) die("libxl_test_fdevent", rc);
    if ((rc = libxl_ao_abort(ctx, &how))) die("libxl_ao_abort", rc);
    if ((rc = libxl_event_wait(ctx, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL))) die("libxl_event_wait", rc);
    libxl_event_free(ctx, ev);
    if (indexed) {
        if ((rc = libxl_test_fdevent(ctx, efd[K], POLLIN, &sentinel))) die("libxl_test_fdevent", rc);
        how.u.for_event = (uint64_t)K + 3;
        if ((rc = libxl_ao_abort(ctx, &how)) != ERROR_NOTFOUND) die("libxl_ao_abort of nothing", rc);
    }

    double h0 = heap_now();
    for (int i = 0; i < K; i++) {
        how.u.for_event = (uint64_t)i + 1;
        if ((rc = libxl_test_fdevent(ctx, efd[one_fd ? K : i], POLLIN, &how))) die("libxl_test_fdevent", rc);
    }
    double h1 = heap_now();
    *per_op = (h1 - h0) / K;

    double t0 = bench_now_ns();
    for (int n = 0; n < K; n++) {
        how.u.for_event = (uint64_t)order[n] + 1;
        if ((rc = libxl_ao_abort(ctx, &how))) die("libxl_ao_abort", rc);
    }
    for (int n = 0; n < K; n++) {
        rc = libxl_event_check(ctx, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL);
        if (rc == ERROR_NOT_READY) rc = libxl_event_wait(ctx, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL);
        if (rc) die("collecting", rc);
        if (ev->type != LIBXL_EVENT_TYPE_OPERATION_COMPLETE || ev->for_user < 1 ||
            ev->for_user > (uint64_t)K || seen[ev->for_user - 1]++ ||
            ev->u.operation_complete.rc != ERROR_ABORTED)
            die("unexpected completion", ev->u.operation_complete.rc);
        libxl_event_free(ctx, ev);
    }
    *t_abort = bench_now_ns() - t0;
    if (indexed && (rc = libxl_ao_abort(ctx, &sentinel))) die("libxl_ao_abort (sentinel)", rc);
    libxl_ctx_free(ctx);
}

int main(void)
{
    const int want = 10000;
    long lim = bench_raise_nofile();
    int K = want;
    if (K > lim - 64) {
        K = (int)(lim - 64);
        bench_note("B6: K=%d clamped to %d (RLIMIT_NOFILE %ld, 1 eventfd per op)", want, K, lim);
    }
    if (K < 1) die("no fds to spare", (int)lim);
    int *efd = malloc((K + 1) * sizeof *efd);
    int *order = malloc(K * sizeof *order);
    char *seen = calloc(K, 1);
    if (!efd || !order || !seen) die("malloc", 0);
    for (int i = 0; i <= K; i++) {
        efd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (efd[i] < 0) die("eventfd", 0);
    }
    for (int i = 0; i < K; i++) order[i] = i;
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    for (int i = K - 1; i > 0; i--) {
        int j = (int)(bench_rand(&seed) % (uint64_t)(i + 1));
        int t = order[i]; order[i] = order[j]; order[j] = t;
    }

    double per_op, per_op_indexed, per_op_one_fd, t_abort, t_abort_one_fd, t_unused;
    run(K, efd, order, seen, 0, 0, &per_op, &t_abort);
    memset(seen, 0, (size_t)K);
    run(K, efd, order, seen, 1, 0, &per_op_indexed, &t_unused);
    memset(seen, 0, (size_t)K);
    run(K, efd, order, seen, 0, 1, &per_op_one_fd, &t_abort_one_fd);

    char what[160];
    snprintf(what, sizeof what, "heap per pending fdevent op at K=%d (no abort index)", K);
    bench_row("B6", what, per_op, "target", 192, 0, "B");
    snprintf(what, sizeof what, "heap per pending fdevent op at K=%d, abort index live", K);
    bench_row("B6", what, per_op_indexed, "target", 192, 1, "B");
    snprintf(what, sizeof what, "abort %d pending ops one by one (libxl_ao_abort) + collect their events", K);
    bench_row("B6", what, t_abort, "target", 10e6, 1, NULL);
    snprintf(what, sizeof what, "abort %d pending ops all on one fd one by one + collect their events", K);
    bench_row("B6", what, t_abort_one_fd, "target", 10e6, 1, NULL);

    for (int i = 0; i <= K; i++) close(efd[i]);
    free(efd);
    free(order);
    free(seen);
    return 0;
}
