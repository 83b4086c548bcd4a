/*
 * bench_sync.c - B1: a synchronous operation's pure library overhead.
 *
 * libxl_test_fdevent(ctx, fd, POLLIN, NULL) on a pipe that is already
 * readable, against one raw poll() on the same fd (the baseline), both
 * measured here, in this run. Target: ≤ 4× the raw poll.
 *
 * Cross-thread variant (no target): the main thread blocks in the
 * synchronous libxl_test_fdevent on an empty pipe; another thread, after
 * a barrier and 200 µs (to let it fall asleep), writes the pipe. Measured:
 * from just before the write to the sync call's return. Baseline, same
 * run and handshake: the main thread blocks in a raw poll() on the pipe.
 * (Same pattern as bench_wakeup.c.)
 */
#include "bench.h"
#include <pthread.h>
#include <libxl_test_fdevent.h>

static int xp[2];
static volatile double t_start;
static pthread_barrier_t bar;

static void *writer(void *arg)
{
    int n = (int)(long)arg;
    for (int i = 0; i < n; i++) {
        pthread_barrier_wait(&bar);
        usleep(200); /* let the main thread fall asleep */
        t_start = bench_now_ns();
        if (write(xp[1], "x", 1) != 1) exit(1);
        pthread_barrier_wait(&bar);
    }
    return NULL;
}

/* Per-wakeup latency, main thread sleeping in the library (lib) or poll. */
static double cross(libxl_ctx *ctx, int lib, int n)
{
    pthread_t t;
    pthread_create(&t, NULL, writer, (void *)(long)n);
    double sum = 0;
    struct pollfd pf = { .fd = xp[0], .events = POLLIN };
    for (int i = 0; i < n; i++) {
        pthread_barrier_wait(&bar);
        if (lib) {
            int rc = libxl_test_fdevent(ctx, xp[0], POLLIN, NULL);
            if (rc) { fprintf(stderr, "sync op failed rc=%d\n", rc); exit(1); }
        } else {
            if (poll(&pf, 1, -1) != 1) exit(1);
        }
        sum += bench_now_ns() - t_start;
        char c;
        if (read(xp[0], &c, 1) != 1) exit(1);
        pthread_barrier_wait(&bar);
    }
    pthread_join(t, NULL);
    return sum / n;
}

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

    bench_row("B1", "sync libxl_test_fdevent, fd already readable", ours, "one raw poll()", base, 4, NULL);

    int nx = bench_quick() ? 200 : 2000;
    pthread_barrier_init(&bar, NULL, 2);
    if (pipe2(xp, O_CLOEXEC)) return 1;
    cross(ctx, 1, nx / 10); /* warm up */
    double xours = cross(ctx, 1, nx);
    double xbase = cross(ctx, 0, nx);
    bench_row("B1", "cross-thread: sync libxl_test_fdevent blocked, other thread writes the pipe → return",
              xours, "raw cross-thread pipe write → poll() return", xbase, 0, NULL);
    libxl_ctx_free(ctx);
    return 0;
}
