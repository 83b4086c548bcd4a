/*
 * test_ao_modes.c - libxl_test_fdevent(ctx, fd, POLLIN/POLLOUT, ao_how) in
 * the three asynchronous-operation modes of libxl_asyncop_how.
 *
 * Scenario: a pipe's read end is waited on for POLLIN
 *  - synchronously (ao_how NULL): on an already-readable pipe, and on a pipe
 *    another thread writes to after ~50 ms;
 *  - in callback mode and in for_event mode, each driven both by
 *    libxl_event_wait and by an application poll loop
 *    (libxl_osevent_beforepoll -> poll -> libxl_osevent_afterpoll ->
 *    libxl_event_check, growing the pollfd array on ERROR_BUFFERFULL);
 *  - 20 concurrent for_event ops on 20 pipes, made ready in random order
 *    (one at a time, and all in a burst);
 *  - an op started from inside a completion callback;
 *  - POLLOUT on a pipe's write end (ready at once).
 * Success: every op completes exactly once, with rc 0, reported the way its
 * ao_how asked (callback with the right for_callback / OPERATION_COMPLETE
 * event with the right for_user, domid 0), never before its fd is ready;
 * the synchronous call blocks until the fd is ready.
 * Failure: a FAIL line naming the case and the first failed check
 * (missing/duplicate/early completion, wrong rc or cookie, a synchronous
 * call that returned too early); a hang is turned into a FAIL by the
 * watchdog.
 */
#include "harness.h"

#include <pthread.h>
#include <libxl_test_fdevent.h>

#define OPCOMPLETE_MASK (1UL << LIBXL_EVENT_TYPE_OPERATION_COMPLETE)

/*---------- application poll loop ----------*/

typedef struct {
    struct pollfd *fds;
    int nalloc;
    int grew;          /* times ERROR_BUFFERFULL made us grow fds */
} apploop;

static void apploop_free(apploop *L)
{
    free(L->fds);
    L->fds = NULL;
    L->nalloc = 0;
}

/* One beforepoll -> poll -> afterpoll round, poll waiting at most
 * max_ms. Returns 0 or a libxl error. */
static int app_iter(libxl_ctx *ctx, apploop *L, int max_ms)
{
    int nfds, timeout, rc;
    for (;;) {
        nfds = L->nalloc;
        timeout = max_ms;
        rc = libxl_osevent_beforepoll(ctx, &nfds, L->fds, &timeout, tv_now());
        if (rc == ERROR_BUFFERFULL) {
            if (nfds <= L->nalloc) {
                case_fail("beforepoll: ERROR_BUFFERFULL but needs %d <= %d slots",
                          nfds, L->nalloc);
                return ERROR_FAIL;
            }
            struct pollfd *n = realloc(L->fds, nfds * sizeof(*n));
            if (!n) { perror("realloc"); exit(1); }
            L->fds = n;
            L->nalloc = nfds;
            L->grew++;
            continue;
        }
        if (rc) {
            case_fail("libxl_osevent_beforepoll rc=%d", rc);
            return rc;
        }
        break;
    }
    if (timeout > max_ms || timeout < 0)
        timeout = max_ms; /* libxl may only reduce it; be safe anyway */
    int r = poll(L->fds, nfds, timeout);
    if (r < 0 && errno != EINTR) {
        case_fail("poll: %s", strerror(errno));
        return ERROR_FAIL;
    }
    libxl_osevent_afterpoll(ctx, nfds, L->fds, tv_now());
    return 0;
}

/* Runs the application loop for about ms milliseconds. */
static void app_run_for(libxl_ctx *ctx, apploop *L, int ms)
{
    double end = now_ms() + ms;
    for (;;) {
        double left = end - now_ms();
        if (left <= 0) break;
        if (app_iter(ctx, L, (int)left + 1)) break;
    }
}

/* Runs the application loop until *counter >= target or timeout_ms
 * passed. Returns 1 if the target was reached. */
static int app_run_until(libxl_ctx *ctx, apploop *L, volatile int *counter,
                         int target, int timeout_ms)
{
    double end = now_ms() + timeout_ms;
    while (*counter < target) {
        double left = end - now_ms();
        if (left <= 0) return 0;
        if (app_iter(ctx, L, left > 100 ? 100 : (int)left + 1)) return 0;
    }
    return 1;
}

/* Gets an event through the application loop (libxl_event_check after
 * each round). Returns 0, ERROR_TIMEDOUT, or a libxl error. */
static int app_wait_event(libxl_ctx *ctx, apploop *L, libxl_event **ev_r,
                          uint64_t mask, libxl_event_predicate *pred,
                          void *pu, int timeout_ms)
{
    double end = now_ms() + timeout_ms;
    for (;;) {
        int rc = libxl_event_check(ctx, ev_r, mask, pred, pu);
        if (rc != ERROR_NOT_READY) return rc;
        double left = end - now_ms();
        if (left <= 0) return ERROR_TIMEDOUT;
        rc = app_iter(ctx, L, left > 100 ? 100 : (int)left + 1);
        if (rc) return rc;
    }
}

static int pred_for_user(const libxl_event *ev, void *u)
{
    return ev->for_user == *(const uint64_t *)u;
}

/* Checks ev is a successful OPERATION_COMPLETE for for_user; frees it. */
static void check_complete(libxl_ctx *ctx, libxl_event *ev, uint64_t for_user,
                           int want_rc)
{
    CHECK(ev != NULL);
    if (!ev) return;
    CHECK_RC(ev->type, LIBXL_EVENT_TYPE_OPERATION_COMPLETE);
    CHECK_RC(ev->for_user, for_user);
    CHECK_RC(ev->u.operation_complete.rc, want_rc);
    CHECK_RC(ev->domid, 0);
    libxl_event_free(ctx, ev);
}

/* Asserts no event at all is queued (no IO). */
static void check_no_event(libxl_ctx *ctx)
{
    libxl_event *ev = NULL;
    int rc = libxl_event_check(ctx, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL);
    if (rc == 0) {
        case_fail("unexpected event queued: type %d for_user %llu",
                  ev->type, (unsigned long long)ev->for_user);
        libxl_event_free(ctx, ev);
    } else {
        CHECK_RC(rc, ERROR_NOT_READY);
    }
}

static void close_pipe(int p[2])
{
    close(p[0]);
    close(p[1]);
}

/*---------- completion callback bookkeeping ----------*/

typedef struct {
    volatile int calls;
    int rc;
    void *for_callback;
    /* for the re-entrancy case */
    int start_fd;
    uint64_t start_for_event;
    int start_rc;
    /* for the event_wait case: poke this pipe when called */
    int poke_fd;
} cbrec;

static void rec_cb(libxl_ctx *ctx, int rc, void *for_callback)
{
    (void)ctx;
    cbrec *r = for_callback;
    r->calls++;
    r->rc = rc;
    r->for_callback = for_callback;
    if (r->poke_fd >= 0)
        pipe_poke(r->poke_fd);
}

/* Completion callback that starts another (for_event) op. */
static void starter_cb(libxl_ctx *ctx, int rc, void *for_callback)
{
    cbrec *r = for_callback;
    r->calls++;
    r->rc = rc;
    r->for_callback = for_callback;
    libxl_asyncop_how how = { .callback = NULL };
    how.u.for_event = r->start_for_event;
    r->start_rc = libxl_test_fdevent(ctx, r->start_fd, POLLIN, &how);
}

static void cbrec_init(cbrec *r)
{
    memset(r, 0, sizeof(*r));
    r->rc = 12345;
    r->poke_fd = -1;
    r->start_fd = -1;
}

/*---------- synchronous mode ----------*/

static void case_sync_ready(xentoollog_logger *lg)
{
    case_begin("sync_already_readable");
    libxl_ctx *ctx = test_ctx(lg);
    int p[2];
    test_pipe(p);
    pipe_poke(p[1]);
    double t0 = now_ms();
    CHECK_RC(libxl_test_fdevent(ctx, p[0], POLLIN, NULL), 0);
    double dt = now_ms() - t0;
    if (dt > 2000) case_fail("took %.0f ms on a readable pipe", dt);
    check_no_event(ctx); /* a synchronous op reports no event */
    close_pipe(p);
    libxl_ctx_free(ctx);
    case_end();
}

typedef struct { int fd; int delay_ms; } poker_arg;

static void *poker_thread(void *a)
{
    poker_arg *pa = a;
    usleep(pa->delay_ms * 1000);
    pipe_poke(pa->fd);
    return NULL;
}

static void case_sync_delayed(xentoollog_logger *lg)
{
    case_begin("sync_made_readable_by_thread");
    libxl_ctx *ctx = test_ctx(lg);
    int p[2];
    test_pipe(p);
    poker_arg pa = { p[1], 50 };
    pthread_t th;
    double t0 = now_ms();
    if (pthread_create(&th, NULL, poker_thread, &pa)) { perror("pthread_create"); exit(1); }
    int rc = libxl_test_fdevent(ctx, p[0], POLLIN, NULL);
    double dt = now_ms() - t0;
    pthread_join(th, NULL);
    CHECK_RC(rc, 0);
    if (dt < 40) case_fail("returned after %.1f ms, before the pipe was written (~50 ms)", dt);
    if (dt > 3000) case_fail("returned only after %.0f ms", dt);
    close_pipe(p);
    libxl_ctx_free(ctx);
    case_end();
}

/*---------- callback mode ----------*/

/* Driven by libxl_event_wait: the callback pokes a second pipe watched by
 * a for_event op, whose completion event ends the wait. */
static void case_callback_event_wait(xentoollog_logger *lg)
{
    case_begin("callback_event_wait");
    libxl_ctx *ctx = test_ctx(lg);
    int a[2], s[2], b[2];
    test_pipe(a); test_pipe(s); test_pipe(b);
    cbrec r;
    cbrec_init(&r);
    r.poke_fd = s[1];

    libxl_asyncop_how how = { .callback = rec_cb };
    how.u.for_callback = &r;
    CHECK_RC(libxl_test_fdevent(ctx, a[0], POLLIN, &how), 0);
    CHECK_RC(r.calls, 0);

    /* sentinel S: completes when the callback has run */
    libxl_asyncop_how hs = { .callback = NULL };
    hs.u.for_event = 501;
    CHECK_RC(libxl_test_fdevent(ctx, s[0], POLLIN, &hs), 0);

    /* B: lets event_wait run while A is not ready */
    libxl_asyncop_how hb = { .callback = NULL };
    hb.u.for_event = 502;
    CHECK_RC(libxl_test_fdevent(ctx, b[0], POLLIN, &hb), 0);
    pipe_poke(b[1]);
    libxl_event *ev = NULL;
    uint64_t fu = 502;
    CHECK_RC(libxl_event_wait(ctx, &ev, OPCOMPLETE_MASK, pred_for_user, &fu), 0);
    check_complete(ctx, ev, 502, 0);
    if (r.calls != 0) case_fail("callback called (%d times) before its pipe was written", r.calls);

    pipe_poke(a[1]);
    fu = 501;
    ev = NULL;
    CHECK_RC(libxl_event_wait(ctx, &ev, OPCOMPLETE_MASK, pred_for_user, &fu), 0);
    check_complete(ctx, ev, 501, 0);
    CHECK_RC(r.calls, 1);
    CHECK_RC(r.rc, 0);
    CHECK(r.for_callback == &r);
    check_no_event(ctx); /* callback mode queues no event */

    close_pipe(a); close_pipe(s); close_pipe(b);
    libxl_ctx_free(ctx);
    CHECK_RC(r.calls, 1);
    case_end();
}

static void case_callback_apploop(xentoollog_logger *lg)
{
    case_begin("callback_app_poll_loop");
    libxl_ctx *ctx = test_ctx(lg);
    apploop L = { 0 };
    int a[2];
    test_pipe(a);
    cbrec r;
    cbrec_init(&r);
    libxl_asyncop_how how = { .callback = rec_cb };
    how.u.for_callback = &r;
    CHECK_RC(libxl_test_fdevent(ctx, a[0], POLLIN, &how), 0);

    app_run_for(ctx, &L, 60);
    if (r.calls != 0) case_fail("callback called (%d times) before its pipe was written", r.calls);
    if (L.grew < 1) case_fail("beforepoll never reported ERROR_BUFFERFULL with 0 slots while an fd op is pending");

    pipe_poke(a[1]);
    if (!app_run_until(ctx, &L, &r.calls, 1, 5000))
        case_fail("callback not called within 5 s after the pipe was written");
    app_run_for(ctx, &L, 30);
    CHECK_RC(r.calls, 1);
    CHECK_RC(r.rc, 0);
    CHECK(r.for_callback == &r);
    check_no_event(ctx);

    close_pipe(a);
    apploop_free(&L);
    libxl_ctx_free(ctx);
    case_end();
}

/*---------- for_event mode ----------*/

static void case_for_event_event_wait(xentoollog_logger *lg)
{
    case_begin("for_event_event_wait");
    libxl_ctx *ctx = test_ctx(lg);
    int a[2], b[2];
    test_pipe(a); test_pipe(b);
    const uint64_t FU = 0x1234567890abULL;
    libxl_asyncop_how how = { .callback = NULL };
    how.u.for_event = FU;
    CHECK_RC(libxl_test_fdevent(ctx, a[0], POLLIN, &how), 0);
    check_no_event(ctx);

    /* let event_wait run a while with A not ready: another op completes */
    libxl_asyncop_how hb = { .callback = NULL };
    hb.u.for_event = 7;
    CHECK_RC(libxl_test_fdevent(ctx, b[0], POLLIN, &hb), 0);
    pipe_poke(b[1]);
    libxl_event *ev = NULL;
    CHECK_RC(libxl_event_wait(ctx, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL), 0);
    check_complete(ctx, ev, 7, 0); /* the first event must be B's, not A's */
    check_no_event(ctx);

    pipe_poke(a[1]);
    ev = NULL;
    CHECK_RC(libxl_event_wait(ctx, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL), 0);
    check_complete(ctx, ev, FU, 0);
    check_no_event(ctx); /* delivered exactly once */

    close_pipe(a); close_pipe(b);
    libxl_ctx_free(ctx);
    case_end();
}

static void case_for_event_apploop(xentoollog_logger *lg)
{
    case_begin("for_event_app_poll_loop");
    libxl_ctx *ctx = test_ctx(lg);
    apploop L = { 0 };
    int a[2];
    test_pipe(a);
    libxl_asyncop_how how = { .callback = NULL };
    how.u.for_event = 4242;
    CHECK_RC(libxl_test_fdevent(ctx, a[0], POLLIN, &how), 0);

    app_run_for(ctx, &L, 60);
    check_no_event(ctx); /* not ready yet: no completion */
    if (L.grew < 1) case_fail("beforepoll never reported ERROR_BUFFERFULL with 0 slots while an fd op is pending");

    pipe_poke(a[1]);
    libxl_event *ev = NULL;
    int rc = app_wait_event(ctx, &L, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL, 5000);
    CHECK_RC(rc, 0);
    if (!rc) check_complete(ctx, ev, 4242, 0);
    app_run_for(ctx, &L, 30);
    check_no_event(ctx);

    close_pipe(a);
    apploop_free(&L);
    libxl_ctx_free(ctx);
    case_end();
}

/*---------- many concurrent ops ----------*/

#define NCONC 20

static void shuffle(int *v, int n)
{
    for (int i = n - 1; i > 0; i--) {
        int j = rand() % (i + 1);
        int t = v[i]; v[i] = v[j]; v[j] = t;
    }
}

/* One pipe at a time, in random order: the next event must be that
 * pipe's op. Driven by libxl_event_wait. */
static void case_concurrent_sequential(xentoollog_logger *lg, unsigned seed)
{
    case_begin("concurrent_20_one_at_a_time");
    libxl_ctx *ctx = test_ctx(lg);
    int p[NCONC][2], order[NCONC];
    for (int i = 0; i < NCONC; i++) {
        test_pipe(p[i]);
        order[i] = i;
        libxl_asyncop_how how = { .callback = NULL };
        how.u.for_event = 1000 + i;
        CHECK_RC(libxl_test_fdevent(ctx, p[i][0], POLLIN, &how), 0);
    }
    shuffle(order, NCONC);
    check_no_event(ctx);
    for (int k = 0; k < NCONC; k++) {
        int i = order[k];
        pipe_poke(p[i][1]);
        libxl_event *ev = NULL;
        int rc = libxl_event_wait(ctx, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL);
        CHECK_RC(rc, 0);
        if (rc) break;
        if (ev->for_user != (uint64_t)(1000 + i))
            case_fail("step %d (seed %u): poked pipe %d, got for_user %llu",
                      k, seed, i, (unsigned long long)ev->for_user);
        check_complete(ctx, ev, ev->for_user, 0);
    }
    check_no_event(ctx);
    for (int i = 0; i < NCONC; i++) close_pipe(p[i]);
    libxl_ctx_free(ctx);
    case_end();
}

/* All pipes written in random order at once; 20 distinct completions
 * collected through the application loop. */
static void case_concurrent_burst(xentoollog_logger *lg, unsigned seed)
{
    case_begin("concurrent_20_burst");
    libxl_ctx *ctx = test_ctx(lg);
    apploop L = { 0 };
    int p[NCONC][2], order[NCONC], seen[NCONC] = { 0 };
    for (int i = 0; i < NCONC; i++) {
        test_pipe(p[i]);
        order[i] = i;
        libxl_asyncop_how how = { .callback = NULL };
        how.u.for_event = 2000 + i;
        CHECK_RC(libxl_test_fdevent(ctx, p[i][0], POLLIN, &how), 0);
    }
    shuffle(order, NCONC);
    app_run_for(ctx, &L, 20);
    check_no_event(ctx);
    for (int k = 0; k < NCONC; k++) pipe_poke(p[order[k]][1]);
    for (int k = 0; k < NCONC; k++) {
        libxl_event *ev = NULL;
        int rc = app_wait_event(ctx, &L, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL, 5000);
        if (rc) { case_fail("completion %d of %d missing (rc %d, seed %u)", k + 1, NCONC, rc, seed); break; }
        uint64_t fu = ev->for_user;
        if (fu < 2000 || fu >= 2000 + NCONC)
            case_fail("unknown for_user %llu", (unsigned long long)fu);
        else if (seen[fu - 2000]++)
            case_fail("for_user %llu delivered twice (seed %u)", (unsigned long long)fu, seed);
        check_complete(ctx, ev, fu, 0);
    }
    app_run_for(ctx, &L, 30);
    check_no_event(ctx);
    for (int i = 0; i < NCONC; i++) CHECK_RC(seen[i], 1);
    for (int i = 0; i < NCONC; i++) close_pipe(p[i]);
    apploop_free(&L);
    libxl_ctx_free(ctx);
    case_end();
}

/*---------- re-entrancy from a completion callback ----------*/

static void case_start_from_callback(xentoollog_logger *lg)
{
    case_begin("op_started_from_completion_callback");
    libxl_ctx *ctx = test_ctx(lg);
    apploop L = { 0 };
    int a[2], b[2];
    test_pipe(a); test_pipe(b);
    cbrec r;
    cbrec_init(&r);
    r.start_fd = b[0];
    r.start_for_event = 31337;
    r.start_rc = 12345;
    libxl_asyncop_how how = { .callback = starter_cb };
    how.u.for_callback = &r;
    CHECK_RC(libxl_test_fdevent(ctx, a[0], POLLIN, &how), 0);
    pipe_poke(a[1]);
    if (!app_run_until(ctx, &L, &r.calls, 1, 5000))
        case_fail("first op's callback not called within 5 s");
    CHECK_RC(r.rc, 0);
    CHECK_RC(r.start_rc, 0);
    /* the inner op must still be pending: its pipe is empty */
    app_run_for(ctx, &L, 30);
    check_no_event(ctx);
    pipe_poke(b[1]);
    libxl_event *ev = NULL;
    int rc = libxl_event_wait(ctx, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL);
    CHECK_RC(rc, 0);
    if (!rc) check_complete(ctx, ev, 31337, 0);
    check_no_event(ctx);
    CHECK_RC(r.calls, 1);
    close_pipe(a); close_pipe(b);
    apploop_free(&L);
    libxl_ctx_free(ctx);
    case_end();
}

/*---------- POLLOUT ----------*/

static void case_pollout(xentoollog_logger *lg)
{
    case_begin("pollout_write_end_immediate");
    libxl_ctx *ctx = test_ctx(lg);
    int a[2];
    test_pipe(a);
    double t0 = now_ms();
    CHECK_RC(libxl_test_fdevent(ctx, a[1], POLLOUT, NULL), 0);

    libxl_asyncop_how how = { .callback = NULL };
    how.u.for_event = 99;
    CHECK_RC(libxl_test_fdevent(ctx, a[1], POLLOUT, &how), 0);
    libxl_event *ev = NULL;
    int rc = libxl_event_wait(ctx, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL);
    CHECK_RC(rc, 0);
    if (!rc) check_complete(ctx, ev, 99, 0);
    double dt = now_ms() - t0;
    if (dt > 2000) case_fail("POLLOUT ops took %.0f ms on an empty pipe", dt);
    check_no_event(ctx);
    close_pipe(a);
    libxl_ctx_free(ctx);
    case_end();
}

int main(void)
{
    watchdog(60);
    unsigned seed = (unsigned)getpid() ^ (unsigned)time(NULL);
    srand(seed);
    xentoollog_logger *lg = test_logger();

    case_sync_ready(lg);
    case_sync_delayed(lg);
    case_callback_event_wait(lg);
    case_callback_apploop(lg);
    case_for_event_event_wait(lg);
    case_for_event_apploop(lg);
    case_concurrent_sequential(lg, seed);
    case_concurrent_burst(lg, seed);
    case_start_from_callback(lg);
    case_pollout(lg);

    xtl_logger_destroy(lg);
    return h_finish();
}
