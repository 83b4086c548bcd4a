/*
 * bench_scale.c - B2: per-event cost against the number of registered fds.
 *
 * K = 10, 100, 1000, 9000 (QUICK: up to 1000) pending for_event
 * libxl_test_fdevent ops, each on its own pipe (K is clamped to what
 * RLIMIT_NOFILE allows after raising the soft limit to the hard one; a
 * note says so). One event = make one pipe (chosen pseudo-randomly)
 * readable, collect that op's completion, drain the pipe, re-arm it (start
 * a new op on it). Measured per event, at each K:
 *  (a) through libxl_event_wait;
 *  (b) through the application's loop: beforepoll, poll, afterpoll,
 *      libxl_event_check; reported is the library's share, the time in
 *      beforepoll + afterpoll per event (clock_gettime around just those
 *      two calls), against an application filling its own pollfd array of
 *      K+1 entries in the same place of the same kind of loop (right after
 *      a poll() over the same K pipes, so with the same cold caches);
 *      target: ≤ 1.5× at K = 9000. Shown beside it: the same fill in a
 *      tight, hot loop, and the library's share against the application's
 *      fill plus its scan of the array for the ready entry after poll()
 *      (stopping at the n-th ready one, which afterpoll cannot: it is not
 *      told n), which is what the application's own loop pays;
 *  (c) through osevent hooks that keep libxl's fds in an epoll set of our
 *      own (registered before any op): epoll_wait, libxl_osevent_occurred_fd,
 *      libxl_event_check.
 * Baselines for (a) and (c), same fds, same run: a raw poll() loop (write,
 * poll all K, find the ready one, drain, re-arm), a raw epoll loop
 * (write, epoll_wait, drain; target for (a) and (c): ≤ 1.5× at K = 9000)
 * and the same epoll loop re-registering the ready fd per event
 * (epoll_ctl DEL + ADD), which is what a loop pays whose watches last one
 * operation, as libxl's do: an op's fd registration ends when it
 * completes and the re-arm is a new op (shown, no target). Extra rows:
 * cost(K=9000)/cost(K=10) through event_wait and through hooks, and the
 * raw epoll loop's own, for reference.
 * Each measurement runs for a time budget (1 s; QUICK 0.1 s) after a
 * warm-up, so the whole program stays under a minute (QUICK: a few s).
 * Every event is timed on its own; a figure is the median of 21 batch
 * means (bench_series_robust), so a burst of noise from the rest of the
 * machine spoils a few batches rather than the figure.
 */
#include "bench.h"
#include <errno.h>
#include <sys/epoll.h>
#include <sys/time.h>
#include <libxl_test_fdevent.h>

#define FU(i) ((uint64_t)(i) + 1) /* for_event of the op on pipe i */

static int *rfd, *wfd;  /* pipe i: rfd[i] (read end, watched), wfd[i] */
static libxl_ctx *ctx_a;  /* (a) and (b): libxl's own pollers */
static libxl_ctx *ctx_h;  /* (c): osevent hooks */
static double budget_ns;
static long min_events;

static void die(const char *what)
{
    fprintf(stderr, "bench_scale: %s\n", what);
    exit(1);
}

static void poke(int i)
{
    if (write(wfd[i], "x", 1) != 1) die("write");
}

static void drain(int i)
{
    char c[16];
    if (read(rfd[i], c, sizeof c) < 1) die("drain: pipe not readable");
}

static void arm(libxl_ctx *ctx, int i)
{
    libxl_asyncop_how how = { .callback = NULL, .u.for_event = FU(i) };
    int rc = libxl_test_fdevent(ctx, rfd[i], POLLIN, &how);
    if (rc) { fprintf(stderr, "bench_scale: libxl_test_fdevent rc=%d\n", rc); exit(1); }
}

/* Checks that ev is the successful completion of the op on pipe i. */
static void check_ev(libxl_ctx *ctx, libxl_event *ev, int i)
{
    if (ev->type != LIBXL_EVENT_TYPE_OPERATION_COMPLETE || ev->for_user != FU(i) ||
        ev->u.operation_complete.rc != 0) {
        fprintf(stderr, "bench_scale: unexpected event type %d for_user %llu rc %d (wanted pipe %d)\n",
                ev->type, (unsigned long long)ev->for_user, ev->u.operation_complete.rc, i);
        exit(1);
    }
    libxl_event_free(ctx, ev);
}

/*---------- osevent hooks on an epoll set of ours ----------*/

static int hep = -1; /* the hooks' epoll set */

typedef struct {
    int fd;
    short events;
    void *for_libxl;
} hreg;

typedef struct htimer {
    struct timeval abs;
    void *for_libxl;
    struct htimer *next;
} htimer;
static htimer *htimers; /* unsorted; the benchmark's ops use none */

static uint32_t poll2ep(short ev)
{
    return (ev & POLLIN ? EPOLLIN : 0) | (ev & POLLOUT ? EPOLLOUT : 0) |
           (ev & POLLPRI ? EPOLLPRI : 0);
}

static short ep2poll(uint32_t ev)
{
    return (ev & EPOLLIN ? POLLIN : 0) | (ev & EPOLLOUT ? POLLOUT : 0) |
           (ev & EPOLLPRI ? POLLPRI : 0) | (ev & EPOLLERR ? POLLERR : 0) |
           (ev & EPOLLHUP ? POLLHUP : 0);
}

static int h_fd_register(void *user, int fd, void **for_app, short events, void *for_libxl)
{
    (void)user;
    hreg *r = malloc(sizeof *r);
    if (!r) return ERROR_OSEVENT_REG_FAIL;
    r->fd = fd;
    r->events = events;
    r->for_libxl = for_libxl;
    struct epoll_event e = { .events = poll2ep(events), .data.ptr = r };
    if (epoll_ctl(hep, EPOLL_CTL_ADD, fd, &e)) {
        free(r);
        return ERROR_OSEVENT_REG_FAIL;
    }
    *for_app = r;
    return 0;
}

static int h_fd_modify(void *user, int fd, void **for_app, short events)
{
    (void)user;
    hreg *r = *for_app;
    struct epoll_event e = { .events = poll2ep(events), .data.ptr = r };
    if (epoll_ctl(hep, EPOLL_CTL_MOD, fd, &e)) return ERROR_OSEVENT_REG_FAIL;
    r->events = events;
    return 0;
}

static void h_fd_deregister(void *user, int fd, void *for_app)
{
    (void)user;
    epoll_ctl(hep, EPOLL_CTL_DEL, fd, NULL);
    free(for_app);
}

static int h_timeout_register(void *user, void **for_app, struct timeval abs, void *for_libxl)
{
    (void)user;
    htimer *t = malloc(sizeof *t);
    if (!t) return ERROR_OSEVENT_REG_FAIL;
    t->abs = abs;
    t->for_libxl = for_libxl;
    t->next = htimers;
    htimers = t;
    *for_app = t;
    return 0;
}

static int h_timeout_modify(void *user, void **for_app, struct timeval abs)
{
    (void)user;
    ((htimer *)*for_app)->abs = abs;
    return 0;
}

static void h_timeout_deregister(void *user, void *for_app)
{
    (void)user;
    (void)for_app; /* never called (libxl_event.h) */
}

static const libxl_osevent_hooks hooks = {
    .fd_register = h_fd_register,
    .fd_modify = h_fd_modify,
    .fd_deregister = h_fd_deregister,
    .timeout_register = h_timeout_register,
    .timeout_modify = h_timeout_modify,
    .timeout_deregister = h_timeout_deregister,
};

/* Fires due hook timeouts; returns the epoll_wait timeout (ms, -1 none). */
static int h_timeouts(void)
{
    if (!htimers) return -1;
    struct timeval now;
    gettimeofday(&now, NULL);
    long best = -1;
    for (htimer **pp = &htimers; *pp;) {
        htimer *t = *pp;
        long ms = (t->abs.tv_sec - now.tv_sec) * 1000 + (t->abs.tv_usec - now.tv_usec) / 1000;
        if (ms <= 0) {
            *pp = t->next;
            void *fl = t->for_libxl;
            free(t);
            libxl_osevent_occurred_timeout(ctx_h, fl);
            return 0; /* the list may have changed: rescan */
        }
        if (best < 0 || ms < best) best = ms;
        pp = &t->next;
    }
    return (int)best;
}

/* One round of the application's hook loop: wait, report one fd. */
static void h_iter(void)
{
    struct epoll_event e;
    int n = epoll_wait(hep, &e, 1, h_timeouts());
    if (n < 0 && errno != EINTR) die("epoll_wait");
    if (n == 1) {
        hreg *r = e.data.ptr;
        libxl_osevent_occurred_fd(ctx_h, r->for_libxl, r->fd, r->events, ep2poll(e.events));
    }
}

/*---------- the loops; each returns ns per event ----------*/

static uint64_t seed;

static int pick(int K)
{
    return (int)(bench_rand(&seed) % (uint64_t)K);
}

/* Every loop times each event (two clock reads, ~40 ns, are inside the
 * figure) into `per_ev` and reports bench_series_robust of it. */
static bench_series per_ev;

static double loop_wait(int K, long n_max)
{
    bench_series_reset(&per_ev);
    bench_budget b = bench_budget_start(budget_ns, min_events, n_max);
    for (; bench_more(&b); b.n++) {
        double e0 = bench_now_ns();
        int i = pick(K);
        poke(i);
        libxl_event *ev;
        if (libxl_event_wait(ctx_a, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL)) die("libxl_event_wait");
        check_ev(ctx_a, ev, i);
        drain(i);
        arm(ctx_a, i);
        bench_series_add(&per_ev, bench_now_ns() - e0);
    }
    return bench_series_robust(&per_ev);
}

static struct pollfd *bp_fds;
static int bp_cap;
static bench_series shares;

/* (b): returns ns per event; *share = beforepoll+afterpoll ns per event. */
static double loop_beforepoll(int K, long n_max, double *share)
{
    bench_series_reset(&per_ev);
    bench_series_reset(&shares);
    bench_budget b = bench_budget_start(budget_ns, min_events, n_max);
    for (; bench_more(&b); b.n++) {
        double e0 = bench_now_ns(), lib = 0;
        int i = pick(K);
        poke(i);
        for (int got = 0; !got;) {
            struct timeval now;
            gettimeofday(&now, NULL);
            int nfds = bp_cap, timeout = -1;
            double t0 = bench_now_ns();
            int rc = libxl_osevent_beforepoll(ctx_a, &nfds, bp_fds, &timeout, now);
            double t1 = bench_now_ns();
            lib += t1 - t0;
            if (rc == ERROR_BUFFERFULL) {
                bp_fds = realloc(bp_fds, nfds * sizeof *bp_fds);
                if (!bp_fds) die("realloc");
                bp_cap = nfds;
                continue;
            }
            if (rc) die("libxl_osevent_beforepoll");
            if (poll(bp_fds, nfds, timeout) < 0 && errno != EINTR) die("poll");
            gettimeofday(&now, NULL);
            t0 = bench_now_ns();
            libxl_osevent_afterpoll(ctx_a, nfds, bp_fds, now);
            lib += bench_now_ns() - t0;
            libxl_event *ev;
            while (libxl_event_check(ctx_a, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL) == 0) {
                check_ev(ctx_a, ev, i);
                got = 1;
            }
        }
        drain(i);
        arm(ctx_a, i);
        bench_series_add(&shares, lib);
        bench_series_add(&per_ev, bench_now_ns() - e0);
    }
    *share = bench_series_robust(&shares);
    return bench_series_robust(&per_ev);
}

/* What an application polling the pipes itself does before each poll():
 * fill n pollfds (rfd has kmax+1 entries), kept by the barrier from being
 * optimised away. */
static void app_fill(struct pollfd *a, int n)
{
    for (int j = 0; j < n; j++) {
        a[j].fd = rfd[j];
        a[j].events = POLLIN;
        a[j].revents = 0;
    }
    __asm__ volatile("" : : "r"(a) : "memory");
}

/* Baseline for (b) in the same conditions: an application polling the
 * same K pipes with a loop of its own fills its pollfd array (K+1 entries,
 * as many as beforepoll hands out) in the same place, right after the
 * previous poll() over them. Returns ns per fill. */
static double loop_appfill(int K, long n_max, double *fill_scan)
{
    struct pollfd *a = calloc(K + 1, sizeof *a);
    if (!a) die("calloc");
    bench_series fills = { 0 }, both = { 0 };
    bench_budget b = bench_budget_start(budget_ns, min_events, n_max);
    for (; bench_more(&b); b.n++) {
        int i = pick(K);
        poke(i);
        double t0 = bench_now_ns();
        app_fill(a, K + 1);
        double t1 = bench_now_ns();
        int n = poll(a, K, -1);
        if (n < 1) die("appfill poll");
        /* The scan any poll loop makes for its results, stopping at the
         * n-th ready entry (as the library cannot: afterpoll is not told n). */
        double t2 = bench_now_ns();
        int ready = -1;
        for (int j = 0, seen = 0; j < K && seen < n; j++) {
            if (a[j].revents) {
                seen++;
                ready = j;
            }
        }
        __asm__ volatile("" : : "r"(ready) : "memory");
        double t3 = bench_now_ns();
        bench_series_add(&fills, t1 - t0);
        bench_series_add(&both, (t1 - t0) + (t3 - t2));
        if (ready != i || !(a[i].revents & POLLIN)) die("appfill: wrong fd ready");
        drain(i);
    }
    double r = bench_series_robust(&fills);
    *fill_scan = bench_series_robust(&both);
    free(fills.v);
    free(both.v);
    free(a);
    return r;
}

static double loop_hooks(int K, long n_max)
{
    bench_series_reset(&per_ev);
    bench_budget b = bench_budget_start(budget_ns, min_events, n_max);
    for (; bench_more(&b); b.n++) {
        double e0 = bench_now_ns();
        int i = pick(K);
        poke(i);
        libxl_event *ev;
        for (;;) {
            h_iter();
            if (libxl_event_check(ctx_h, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL) == 0) break;
        }
        check_ev(ctx_h, ev, i);
        drain(i);
        arm(ctx_h, i);
        bench_series_add(&per_ev, bench_now_ns() - e0);
    }
    return bench_series_robust(&per_ev);
}

static struct pollfd *raw_fds; /* rfd[0..K-1], POLLIN */

static double loop_rawpoll(int K, long n_max)
{
    bench_series_reset(&per_ev);
    bench_budget b = bench_budget_start(budget_ns, min_events, n_max);
    for (; bench_more(&b); b.n++) {
        double e0 = bench_now_ns();
        int i = pick(K);
        poke(i);
        if (poll(raw_fds, K, -1) < 1) die("raw poll");
        int found = -1;
        for (int j = 0; j < K; j++) {
            if (raw_fds[j].revents) {
                found = j;
                raw_fds[j].revents = 0; /* re-arm */
            }
        }
        if (found != i) die("raw poll: wrong fd ready");
        drain(found);
        bench_series_add(&per_ev, bench_now_ns() - e0);
    }
    return bench_series_robust(&per_ev);
}

static int rep = -1; /* the raw epoll set: rfd[0..K-1] */

/* The raw epoll loop. With `rereg`, it also re-registers the ready fd per
 * event (DEL when its "operation" ends, ADD for the next one): what any
 * loop pays whose watches live as long as one operation, as libxl's do (an
 * op's fd registration ends when it completes; the re-arm is a new op). */
static double loop_rawepoll(int K, long n_max, int rereg)
{
    bench_series_reset(&per_ev);
    bench_budget b = bench_budget_start(budget_ns, min_events, n_max);
    for (; bench_more(&b); b.n++) {
        double e0 = bench_now_ns();
        int i = pick(K);
        poke(i);
        struct epoll_event e;
        if (epoll_wait(rep, &e, 1, -1) != 1) die("raw epoll_wait");
        if ((int)e.data.u32 != i) die("raw epoll: wrong fd ready");
        if (rereg && epoll_ctl(rep, EPOLL_CTL_DEL, rfd[i], NULL)) die("epoll_ctl DEL");
        drain(i);
        if (rereg) {
            e.events = EPOLLIN;
            e.data.u32 = (uint32_t)i;
            if (epoll_ctl(rep, EPOLL_CTL_ADD, rfd[i], &e)) die("epoll_ctl ADD");
        }
        bench_series_add(&per_ev, bench_now_ns() - e0);
    }
    return bench_series_robust(&per_ev);
}

/* Filling a pollfd array of n entries in a tight loop (hot caches): shown
 * beside the in-loop fill, for reference. */
static double fill_cost(int n)
{
    struct pollfd *a = malloc(n * sizeof *a);
    if (!a) die("malloc");
    long reps = 0;
    double t0 = bench_now_ns(), t;
    do {
        for (int r = 0; r < 100; r++) app_fill(a, n);
        reps += 100;
        t = bench_now_ns();
    } while (t - t0 < budget_ns / 10);
    free(a);
    return (t - t0) / reps;
}

/* Runs one measurement, after a warm-up of min_events/2 events; every
 * loop sees the same pseudo-random pipe sequence. `call` uses n_max. */
#define MEASURE(call)                                                    \
    ({                                                                   \
        long n_max = min_events / 2;                                     \
        seed = 0x9e3779b97f4a7c15ULL;                                    \
        call;                                                            \
        n_max = 100000000;                                               \
        seed = 0x2545f4914f6cdd1dULL;                                    \
        call;                                                            \
    })

int main(void)
{
    int quick = bench_quick();
    budget_ns = quick ? 0.1e9 : 1.0e9;
    min_events = quick ? 30 : 100;
    static const int Ks_full[] = { 10, 100, 1000, 9000 };
    static const int Ks_quick[] = { 10, 100, 1000 };
    const int *Ks = quick ? Ks_quick : Ks_full;
    int nK = quick ? 3 : 4;

    long lim = bench_raise_nofile();
    int kmax_fd = (int)((lim - 64) / 2); /* 2 fds per op; 64 for stdio, epoll, libxl */
    int want = Ks[nK - 1];
    int kmax = want;
    if (kmax > kmax_fd) {
        kmax = kmax_fd;
        bench_note("B2: K=%d clamped to %d (RLIMIT_NOFILE %ld, 2 fds per op)", want, kmax, lim);
    }

    rfd = calloc(kmax + 1, sizeof *rfd);
    wfd = calloc(kmax + 1, sizeof *wfd);
    raw_fds = calloc(kmax + 1, sizeof *raw_fds);
    if (!rfd || !wfd || !raw_fds) die("calloc");
    for (int i = 0; i < kmax; i++) {
        int p[2];
        if (pipe2(p, O_CLOEXEC | O_NONBLOCK)) die("pipe2");
        rfd[i] = p[0];
        wfd[i] = p[1];
        raw_fds[i] = (struct pollfd){ .fd = p[0], .events = POLLIN };
    }
    hep = epoll_create1(EPOLL_CLOEXEC);
    rep = epoll_create1(EPOLL_CLOEXEC);
    if (hep < 0 || rep < 0) die("epoll_create1");

    ctx_a = bench_ctx();
    ctx_h = bench_ctx();
    libxl_osevent_register_hooks(ctx_h, &hooks, NULL); /* before any op */

    double a10 = 0, c10 = 0, aK = 0, cK = 0, re10 = 0, reK = 0;
    int armed = 0, lastK = 0;
    for (int k = 0; k < nK; k++) {
        int K = Ks[k] < kmax ? Ks[k] : kmax;
        if (K <= armed) continue;
        for (int i = armed; i < K; i++) {
            arm(ctx_a, i);
            arm(ctx_h, i);
            struct epoll_event e = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
            if (epoll_ctl(rep, EPOLL_CTL_ADD, rfd[i], &e)) die("epoll_ctl");
        }
        armed = K;

        double share = 0;
        double a = MEASURE(loop_wait(K, n_max));
        double bt = MEASURE(loop_beforepoll(K, n_max, &share));
        double c = MEASURE(loop_hooks(K, n_max));
        double rp = MEASURE(loop_rawpoll(K, n_max));
        double re = MEASURE(loop_rawepoll(K, n_max, 0));
        double rr = MEASURE(loop_rawepoll(K, n_max, 1));
        double appscan = 0;
        double appfill = MEASURE(loop_appfill(K, n_max, &appscan));
        double fill = fill_cost(K + 1);

        char what[200], tb[32];
        snprintf(what, sizeof what, "K=%d: per event via libxl_event_wait (write, wait, drain, re-arm)", K);
        bench_row("B2a", what, a, "raw poll() loop", rp, 0, NULL);
        bench_row("B2a", what, a, "raw epoll loop", re, k == nK - 1 ? 1.5 : 0, NULL);
        bench_row("B2a", what, a, "raw epoll loop re-registering the fd per event", rr, 0, NULL);
        snprintf(what, sizeof what,
                 "K=%d: library's share (beforepoll+afterpoll) per event via the app's poll loop "
                 "(whole event %s)", K, bench_fmt(bt, tb, sizeof tb));
        char bw[120];
        snprintf(bw, sizeof bw, "the app filling %d pollfds in its own poll loop", K + 1);
        bench_row("B2b", what, share, bw, appfill, k == nK - 1 ? 1.5 : 0, NULL);
        snprintf(bw, sizeof bw, "the app filling %d pollfds and scanning them for the ready one", K + 1);
        bench_row("B2b", what, share, bw, appscan, 0, NULL);
        snprintf(what, sizeof what, "K=%d: the app filling its %d pollfds in its poll loop (B2b's baseline)", K, K + 1);
        snprintf(bw, sizeof bw, "the same fill in a tight loop, hot caches");
        bench_row("B2b", what, appfill, bw, fill, 0, NULL);
        snprintf(what, sizeof what, "K=%d: per event via osevent hooks on epoll (epoll_wait, occurred_fd, event_check)", K);
        bench_row("B2c", what, c, "raw poll() loop", rp, 0, NULL);
        bench_row("B2c", what, c, "raw epoll loop", re, k == nK - 1 ? 1.5 : 0, NULL);
        bench_row("B2c", what, c, "raw epoll loop re-registering the fd per event", rr, 0, NULL);
        if (K == 10) { a10 = a; c10 = c; re10 = re; }
        aK = a; cK = c; reK = re; lastK = K;
    }
    if (lastK > 10 && a10 > 0) {
        char what[160], bw[40];
        snprintf(bw, sizeof bw, "same at K=10");
        snprintf(what, sizeof what, "scaling: per event via libxl_event_wait at K=%d", lastK);
        bench_row("B2a", what, aK, bw, a10, 0, NULL);
        snprintf(what, sizeof what, "scaling: per event via osevent hooks at K=%d", lastK);
        bench_row("B2c", what, cK, bw, c10, 0, NULL);
        snprintf(what, sizeof what, "for reference, the kernel's own scaling: raw epoll loop at K=%d", lastK);
        bench_row("B2", what, reK, bw, re10, 0, NULL);
    }

    /* Tear down: complete every pending op (all pipes readable at once). */
    for (int i = 0; i < armed; i++) poke(i);
    char *seen = calloc((size_t)kmax + 1, 1);
    for (int n = 0; n < armed; n++) {
        libxl_event *ev;
        if (libxl_event_wait(ctx_a, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL)) die("final wait");
        if (ev->for_user < 1 || ev->for_user > (uint64_t)armed || seen[ev->for_user - 1]++ ||
            ev->u.operation_complete.rc)
            die("final completion (libxl pollers)");
        libxl_event_free(ctx_a, ev);
    }
    memset(seen, 0, armed);
    for (int n = 0; n < armed;) {
        libxl_event *ev;
        if (libxl_event_check(ctx_h, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL)) { h_iter(); continue; }
        if (ev->for_user < 1 || ev->for_user > (uint64_t)armed || seen[ev->for_user - 1]++ ||
            ev->u.operation_complete.rc)
            die("final completion (hooks)");
        libxl_event_free(ctx_h, ev);
        n++;
    }
    free(seen);
    libxl_ctx_free(ctx_a);
    libxl_ctx_free(ctx_h);
    for (int i = 0; i < armed; i++) { close(rfd[i]); close(wfd[i]); }
    return 0;
}
