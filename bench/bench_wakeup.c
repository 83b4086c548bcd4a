/*
 * bench_wakeup.c - B4: cross-thread wakeup latency (issue 5).
 *
 * Thread A sleeps in libxl_event_wait. Thread B starts a for_event
 * libxl_test_fdevent on an already-readable pipe: A's poller set is now
 * stale, B's egc passes the baton and wakes A, A rebuilds its set, sees
 * the fd, completes the op and returns the event. Measured: from just
 * before B's call to A's return. Baseline, same run: A sleeps in poll() on
 * a pipe, B writes it; from just before the write to poll's return.
 */
#include "bench.h"
#include <pthread.h>
#include <libxl_test_fdevent.h>

static libxl_ctx *ctx;
static int ready[2], raw[2];
static int use_lib;
static volatile double t_start;
static pthread_barrier_t bar;

static void *sleeper(void *arg)
{
    int n = (int)(long)arg;
    double *sum = malloc(sizeof(double));
    *sum = 0;
    for (int i = 0; i < n; i++) {
        pthread_barrier_wait(&bar);
        if (use_lib) {
            libxl_event *ev;
            if (libxl_event_wait(ctx, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL)) exit(1);
            libxl_event_free(ctx, ev);
        } else {
            struct pollfd pf = { .fd = raw[0], .events = POLLIN };
            if (poll(&pf, 1, -1) != 1) exit(1);
            char c;
            if (read(raw[0], &c, 1) != 1) exit(1);
        }
        *sum += bench_now_ns() - t_start;
        pthread_barrier_wait(&bar);
    }
    return sum;
}

static double run(int lib, int n)
{
    use_lib = lib;
    pthread_t t;
    pthread_create(&t, NULL, sleeper, (void *)(long)n);
    libxl_asyncop_how how = { .callback = NULL, .u.for_event = 1 };
    for (int i = 0; i < n; i++) {
        pthread_barrier_wait(&bar);
        usleep(200); /* let A fall asleep */
        t_start = bench_now_ns();
        if (lib) {
            if (libxl_test_fdevent(ctx, ready[0], POLLIN, &how)) exit(1);
        } else {
            if (write(raw[1], "x", 1) != 1) exit(1);
        }
        pthread_barrier_wait(&bar);
    }
    void *sum;
    pthread_join(t, &sum);
    double avg = *(double *)sum / n;
    free(sum);
    return avg;
}

int main(void)
{
    int n = bench_quick() ? 200 : 2000;
    ctx = bench_ctx();
    pthread_barrier_init(&bar, NULL, 2);
    if (pipe2(ready, O_CLOEXEC | O_NONBLOCK) || pipe2(raw, O_CLOEXEC)) return 1;
    if (write(ready[1], "x", 1) != 1) return 1;
    run(1, n / 10); /* warm up */
    double ours = run(1, n);
    double base = run(0, n);
    bench_row("B4", "cross-thread wakeup: op added by B, sleeper A in libxl_event_wait returns", ours,
              "raw pipe write → poll() return", base, 0, NULL);
    libxl_ctx_free(ctx);
    return 0;
}
