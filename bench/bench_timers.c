/*
 * bench_timers.c - B3: per-op cost of timeouts against the number pending.
 *
 * K = 10, 1000, 100000 pending for_event libxl_test_timeout ops with long
 * timeouts (1-2 h, pseudo-random, so a sorted structure sees insertions
 * everywhere). At each K, per op:
 *  - register + abort: abort a pseudo-randomly chosen pending op
 *    (libxl_ao_abort by its for_event, then libxl_event_wait for its
 *    ERROR_ABORTED completion) and register its replacement
 *    (libxl_test_timeout); both timed separately, K stays constant;
 *  - fire: start a 0 ms op and collect its completion with
 *    libxl_event_wait (registration + firing + delivery).
 * Rows: cost(K)/cost(K=10) for K = 1000 and 100000 (target ≤ 2× at
 * 100000), and at K = 10 the absolute cost against a raw timerfd
 * equivalent (arm a 1 h timerfd; arm 1 ns + read; disarm), no target.
 * Filling to K stops at a deadline (20 s; QUICK 2 s), with a note.
 * Each op is timed on its own; the libxl figures are medians of 21 batch
 * means (bench_series_robust in bench.h).
 * libxl_test_timeout is resolved with dlsym at run time: this program
 * prints "B3 skipped: ..." and exits 0 against a library without it.
 */
#include "bench.h"
#include <dlfcn.h>
#include <sys/timerfd.h>
#include <libxl_test_timeout.h>

static __typeof__(libxl_test_timeout) *test_timeout;
static libxl_ctx *ctx;
static uint64_t seed = 0x9e3779b97f4a7c15ULL;
static double budget_ns;
static long min_ops;

#define FIRE_FU (1ULL << 40)

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_timers: %s (rc=%d)\n", what, rc);
    exit(1);
}

static void start(uint64_t fu, int ms)
{
    libxl_asyncop_how how = { .callback = NULL, .u.for_event = fu };
    int rc = test_timeout(ctx, ms, &how);
    if (rc) die("libxl_test_timeout", rc);
}

static int long_ms(void)
{
    return 3600000 + (int)(bench_rand(&seed) % 3600000);
}

/* Waits for the completion of the op with for_event fu, expecting rc. */
static void collect(uint64_t fu, int want_rc)
{
    libxl_event *ev;
    int rc = libxl_event_wait(ctx, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL);
    if (rc) die("libxl_event_wait", rc);
    if (ev->type != LIBXL_EVENT_TYPE_OPERATION_COMPLETE || ev->for_user != fu ||
        ev->u.operation_complete.rc != want_rc) {
        fprintf(stderr, "bench_timers: event type %d for_user %llu rc %d, wanted for_user %llu rc %d\n",
                ev->type, (unsigned long long)ev->for_user, ev->u.operation_complete.rc,
                (unsigned long long)fu, want_rc);
        exit(1);
    }
    libxl_event_free(ctx, ev);
}

/* Register/abort at K pending: returns per-op ns in *reg and *abrt. */
static bench_series s_reg, s_abrt, s_fire;

static void reg_abort(int K, long max, double *reg, double *abrt)
{
    bench_series_reset(&s_reg);
    bench_series_reset(&s_abrt);
    bench_budget b = bench_budget_start(budget_ns, min_ops, max);
    for (; bench_more(&b); b.n++) {
        uint64_t fu = 1 + bench_rand(&seed) % (uint64_t)K;
        libxl_asyncop_how how = { .callback = NULL, .u.for_event = fu };
        int ms = long_ms();
        double t0 = bench_now_ns();
        int rc = libxl_ao_abort(ctx, &how);
        if (rc) die("libxl_ao_abort", rc);
        collect(fu, ERROR_ABORTED);
        double t1 = bench_now_ns();
        start(fu, ms);
        double t2 = bench_now_ns();
        bench_series_add(&s_abrt, t1 - t0);
        bench_series_add(&s_reg, t2 - t1);
    }
    *reg = bench_series_robust(&s_reg);
    *abrt = bench_series_robust(&s_abrt);
}

static double fire(long max)
{
    bench_series_reset(&s_fire);
    bench_budget b = bench_budget_start(budget_ns, min_ops, max);
    for (; bench_more(&b); b.n++) {
        double t0 = bench_now_ns();
        start(FIRE_FU, 0);
        collect(FIRE_FU, 0);
        bench_series_add(&s_fire, bench_now_ns() - t0);
    }
    return bench_series_robust(&s_fire);
}

/* Raw baselines: one timerfd operation each, per op in ns. */
static void raw_timerfd(double *arm, double *round, double *disarm)
{
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
    if (tfd < 0) die("timerfd_create", 0);
    struct itimerspec hour = { .it_value = { .tv_sec = 3600 } };
    struct itimerspec ns1 = { .it_value = { .tv_nsec = 1 } };
    struct itimerspec off = { { 0, 0 }, { 0, 0 } };
    long n = 0;
    bench_budget b = bench_budget_start(budget_ns / 3, min_ops, 100000000);
    double ta = 0, td = 0;
    for (; bench_more(&b); b.n++) {
        double t0 = bench_now_ns();
        if (timerfd_settime(tfd, 0, &hour, NULL)) die("timerfd_settime", 0);
        double t1 = bench_now_ns();
        if (timerfd_settime(tfd, 0, &off, NULL)) die("timerfd_settime", 0);
        td += bench_now_ns() - t1;
        ta += t1 - t0;
        n++;
    }
    *arm = ta / n;
    *disarm = td / n;
    b = bench_budget_start(budget_ns / 3, min_ops, 100000000);
    for (; bench_more(&b); b.n++) {
        uint64_t exp;
        if (timerfd_settime(tfd, 0, &ns1, NULL)) die("timerfd_settime", 0);
        if (read(tfd, &exp, sizeof exp) != sizeof exp) die("timerfd read", 0);
    }
    *round = bench_budget_mean(&b);
    close(tfd);
}

int main(void)
{
    void *sym = dlsym(RTLD_DEFAULT, "libxl_test_timeout");
    if (!sym) {
        printf("B3 skipped: libxl_test_timeout not in this library\n");
        return 0;
    }
    memcpy(&test_timeout, &sym, sizeof sym);

    int quick = bench_quick();
    budget_ns = quick ? 0.1e9 : 1.0e9;
    min_ops = quick ? 100 : 1000;
    double fill_deadline_ns = quick ? 2e9 : 20e9;
    static const int Ks[] = { 10, 1000, 100000 };
    ctx = bench_ctx();

    double reg[3], abrt[3], fir[3];
    int Kdone[3];
    int pending = 0;
    for (int k = 0; k < 3; k++) {
        double t0 = bench_now_ns();
        while (pending < Ks[k]) {
            start((uint64_t)pending + 1, long_ms());
            pending++;
            if ((pending & 1023) == 0 && bench_now_ns() - t0 > fill_deadline_ns) break;
        }
        if (pending < Ks[k])
            bench_note("B3: filling to K=%d stopped at %d pending after %.1f s (registration too slow)",
                       Ks[k], pending, (bench_now_ns() - t0) / 1e9);
        Kdone[k] = pending;
        reg_abort(pending, min_ops / 10, &reg[k], &abrt[k]); /* warm up */
        fire(min_ops / 10);
        reg_abort(pending, 100000000, &reg[k], &abrt[k]);
        fir[k] = fire(100000000);
        if (pending < Ks[k]) { k++; for (; k < 3; k++) Kdone[k] = 0; break; }
    }

    for (int k = 1; k < 3; k++) {
        if (!Kdone[k]) continue;
        double tgt = Ks[k] == 100000 ? 2 : 0;
        char what[160];
        snprintf(what, sizeof what, "K=%d pending timeouts: register one (libxl_test_timeout)", Kdone[k]);
        bench_row("B3", what, reg[k], "same at K=10", reg[0], tgt, NULL);
        snprintf(what, sizeof what, "K=%d pending timeouts: fire one (0 ms op, libxl_event_wait)", Kdone[k]);
        bench_row("B3", what, fir[k], "same at K=10", fir[0], tgt, NULL);
        snprintf(what, sizeof what, "K=%d pending timeouts: abort one (libxl_ao_abort + collect event)", Kdone[k]);
        bench_row("B3", what, abrt[k], "same at K=10", abrt[0], tgt, NULL);
    }
    double r_arm, r_round, r_disarm;
    raw_timerfd(&r_arm, &r_round, &r_disarm);
    bench_row("B3", "K=10: register one timeout", reg[0], "timerfd_settime 1 h", r_arm, 0, NULL);
    bench_row("B3", "K=10: fire one 0 ms timeout", fir[0], "timerfd_settime 1 ns + read", r_round, 0, NULL);
    bench_row("B3", "K=10: abort one timeout + collect", abrt[0], "timerfd_settime disarm", r_disarm, 0, NULL);
    /* The ctx is not freed: it would discard (and log) the pending ops,
     * and aborting them all is B6's subject. */
    return 0;
}
