/*
 * test_abort.c - libxl_ao_abort on libxl_test_fdevent and
 * libxl_test_progress operations.
 *
 * Scenario: operations are started on pipes that are never (or not yet)
 * made readable, or on a progress op mid-way, and aborted:
 *  - a pending for_event op; a pending callback op (matched on
 *    callback + for_callback only); a how that matches no op;
 *  - the same op aborted twice; an op aborted after it completed;
 *  - a synchronous op (how NULL) aborted from a second thread, and
 *    how NULL with no synchronous op in progress;
 *  - libxl_test_progress (count 10, interval 20 ms) aborted after 3
 *    progress reports, from the application and from inside the 3rd
 *    progress callback.
 * Success: libxl's documented return values (0 when an abort was
 * requested, ERROR_NOTFOUND when nothing matches or the op already
 * completed, ERROR_ABORTED when the op is already being aborted), the
 * aborted op completes exactly once with ERROR_ABORTED, unrelated ops are
 * unaffected (complete with 0 later), and no progress is reported after an
 * aborted op's completion.
 * Failure: a FAIL line naming the case and the first failed check (wrong
 * abort return value, wrong/missing/duplicate completion, progress after
 * completion); hangs are turned into FAIL by the watchdog.
 */
#include "harness.h"

#include <pthread.h>
#include <libxl_test_fdevent.h>
#include <libxl_test_progress.h>

#define OPCOMPLETE_MASK (1UL << LIBXL_EVENT_TYPE_OPERATION_COMPLETE)
#define PROGRESS_MASK (1UL << LIBXL_EVENT_TYPE_DOMAIN_CREATE_CONSOLE_AVAILABLE)

/*---------- application poll loop ----------*/

typedef struct {
    struct pollfd *fds;
    int nalloc;
} apploop;

static void apploop_free(apploop *L)
{
    free(L->fds);
    L->fds = NULL;
    L->nalloc = 0;
}

static int app_iter(libxl_ctx *ctx, apploop *L, int max_ms)
{
    int nfds, timeout, rc;
    for (;;) {
        nfds = L->nalloc;
        timeout = max_ms;
        rc = libxl_osevent_beforepoll(ctx, &nfds, L->fds, &timeout, tv_now());
        if (rc == ERROR_BUFFERFULL && nfds > L->nalloc) {
            struct pollfd *n = realloc(L->fds, nfds * sizeof(*n));
            if (!n) { perror("realloc"); exit(1); }
            L->fds = n;
            L->nalloc = nfds;
            continue;
        }
        if (rc) {
            case_fail("libxl_osevent_beforepoll rc=%d", rc);
            return rc;
        }
        break;
    }
    if (timeout > max_ms || timeout < 0)
        timeout = max_ms;
    if (poll(L->fds, nfds, timeout) < 0 && errno != EINTR) {
        case_fail("poll: %s", strerror(errno));
        return ERROR_FAIL;
    }
    libxl_osevent_afterpoll(ctx, nfds, L->fds, tv_now());
    return 0;
}

static void app_run_for(libxl_ctx *ctx, apploop *L, int ms)
{
    double end = now_ms() + ms;
    for (;;) {
        double left = end - now_ms();
        if (left <= 0) break;
        if (app_iter(ctx, L, (int)left + 1)) break;
    }
}

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

/*---------- helpers ----------*/

static int pred_for_user(const libxl_event *ev, void *u)
{
    return ev->for_user == *(const uint64_t *)u;
}

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

static void check_no_event(libxl_ctx *ctx)
{
    libxl_event *ev = NULL;
    int rc = libxl_event_check(ctx, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL);
    if (rc == 0) {
        case_fail("unexpected event queued: type %d for_user %llu rc %d",
                  ev->type, (unsigned long long)ev->for_user,
                  ev->type == LIBXL_EVENT_TYPE_OPERATION_COMPLETE
                      ? ev->u.operation_complete.rc : 0);
        libxl_event_free(ctx, ev);
    } else {
        CHECK_RC(rc, ERROR_NOT_READY);
    }
}

/* Waits (application loop, up to 5 s) for the completion of for_user. */
static void expect_completion(libxl_ctx *ctx, apploop *L, uint64_t fu, int want_rc)
{
    libxl_event *ev = NULL;
    int rc = app_wait_event(ctx, L, &ev, OPCOMPLETE_MASK, pred_for_user, &fu, 5000);
    if (rc) {
        case_fail("no completion for for_user %llu (rc %d)", (unsigned long long)fu, rc);
        return;
    }
    check_complete(ctx, ev, fu, want_rc);
}

static libxl_asyncop_how ev_how(uint64_t fu)
{
    libxl_asyncop_how h = { .callback = NULL };
    h.u.for_event = fu;
    return h;
}

static void close_pipe(int p[2])
{
    close(p[0]);
    close(p[1]);
}

typedef struct {
    volatile int calls;
    int rc;
    void *for_callback;
} cbrec;

static void rec_cb(libxl_ctx *ctx, int rc, void *for_callback)
{
    (void)ctx;
    cbrec *r = for_callback;
    r->calls++;
    r->rc = rc;
    r->for_callback = for_callback;
}

/* Same signature, different address: must not match rec_cb's ops. */
static void other_cb(libxl_ctx *ctx, int rc, void *for_callback)
{
    (void)ctx; (void)rc;
    cbrec *r = for_callback;
    r->calls += 1000;
}

/*---------- cases ----------*/

static void case_abort_for_event(xentoollog_logger *lg)
{
    case_begin("abort_pending_for_event_op");
    libxl_ctx *ctx = test_ctx(lg);
    apploop L = { 0 };
    int p[2];
    test_pipe(p);
    libxl_asyncop_how h = ev_how(501);
    CHECK_RC(libxl_test_fdevent(ctx, p[0], POLLIN, &h), 0);
    app_run_for(ctx, &L, 20);
    check_no_event(ctx);
    libxl_asyncop_how a = ev_how(501);
    CHECK_RC(libxl_ao_abort(ctx, &a), 0);
    libxl_event *ev = NULL;
    CHECK_RC(libxl_event_wait(ctx, &ev, OPCOMPLETE_MASK, NULL, NULL), 0);
    check_complete(ctx, ev, 501, ERROR_ABORTED);
    /* the fd registration is gone: readiness now produces nothing */
    pipe_poke(p[1]);
    app_run_for(ctx, &L, 40);
    check_no_event(ctx);
    close_pipe(p);
    apploop_free(&L);
    libxl_ctx_free(ctx);
    case_end();
}

static void case_abort_callback(xentoollog_logger *lg)
{
    case_begin("abort_pending_callback_op_matches_callback_and_for_callback");
    libxl_ctx *ctx = test_ctx(lg);
    apploop L = { 0 };
    int p[2];
    test_pipe(p);
    cbrec r = { 0, 12345, NULL }, other = { 0, 12345, NULL };
    libxl_asyncop_how h = { .callback = rec_cb };
    h.u.for_callback = &r;
    CHECK_RC(libxl_test_fdevent(ctx, p[0], POLLIN, &h), 0);

    libxl_asyncop_how a;
    a = (libxl_asyncop_how){ .callback = rec_cb };
    a.u.for_callback = &other;                   /* right callback, wrong cookie */
    CHECK_RC(libxl_ao_abort(ctx, &a), ERROR_NOTFOUND);
    a = (libxl_asyncop_how){ .callback = other_cb };
    a.u.for_callback = &r;                       /* wrong callback, right cookie */
    CHECK_RC(libxl_ao_abort(ctx, &a), ERROR_NOTFOUND);
    a = (libxl_asyncop_how){ .callback = NULL };
    a.u.for_callback = &r;                       /* for_event mode, same bits */
    CHECK_RC(libxl_ao_abort(ctx, &a), ERROR_NOTFOUND);
    CHECK_RC(libxl_ao_abort(ctx, NULL), ERROR_NOTFOUND); /* not synchronous */
    app_run_for(ctx, &L, 20);
    CHECK_RC(r.calls, 0);

    a = (libxl_asyncop_how){ .callback = rec_cb };
    a.u.for_callback = &r;
    CHECK_RC(libxl_ao_abort(ctx, &a), 0);
    if (!app_run_until(ctx, &L, &r.calls, 1, 5000))
        case_fail("aborted callback op never completed");
    app_run_for(ctx, &L, 20);
    CHECK_RC(r.calls, 1);
    CHECK_RC(r.rc, ERROR_ABORTED);
    CHECK(r.for_callback == &r);
    CHECK_RC(other.calls, 0);
    check_no_event(ctx);
    close_pipe(p);
    apploop_free(&L);
    libxl_ctx_free(ctx);
    case_end();
}

static void case_abort_notfound(xentoollog_logger *lg)
{
    case_begin("abort_unmatched_how_notfound_no_effect");
    libxl_ctx *ctx = test_ctx(lg);
    apploop L = { 0 };
    int p[2], q[2];
    test_pipe(p); test_pipe(q);
    libxl_asyncop_how h1 = ev_how(601), h2 = ev_how(602);
    CHECK_RC(libxl_test_fdevent(ctx, p[0], POLLIN, &h1), 0);
    CHECK_RC(libxl_test_fdevent(ctx, q[0], POLLIN, &h2), 0);
    libxl_asyncop_how a = ev_how(603);
    CHECK_RC(libxl_ao_abort(ctx, &a), ERROR_NOTFOUND);
    a = (libxl_asyncop_how){ .callback = rec_cb };
    a.u.for_event = 601;  /* callback mode: must not match a for_event op */
    CHECK_RC(libxl_ao_abort(ctx, &a), ERROR_NOTFOUND);
    app_run_for(ctx, &L, 30);
    check_no_event(ctx);
    pipe_poke(p[1]);
    pipe_poke(q[1]);
    expect_completion(ctx, &L, 601, 0);
    expect_completion(ctx, &L, 602, 0);
    check_no_event(ctx);
    close_pipe(p); close_pipe(q);
    apploop_free(&L);
    libxl_ctx_free(ctx);
    case_end();
}

static void case_abort_twice(xentoollog_logger *lg)
{
    case_begin("abort_same_op_twice");
    libxl_ctx *ctx = test_ctx(lg);
    apploop L = { 0 };
    int p[2];
    test_pipe(p);
    libxl_asyncop_how h = ev_how(701);
    CHECK_RC(libxl_test_fdevent(ctx, p[0], POLLIN, &h), 0);
    libxl_asyncop_how a = ev_how(701);
    CHECK_RC(libxl_ao_abort(ctx, &a), 0);
    /* Has the first abort already completed the op?  (event_check does
     * no IO, so this only sees what the abort itself did.) */
    libxl_event *ev = NULL;
    int completed = libxl_event_check(ctx, &ev, OPCOMPLETE_MASK, NULL, NULL) == 0;
    int rc2 = libxl_ao_abort(ctx, &a);
    if (completed) {
        /* completed ops are no longer in progress: NOTFOUND */
        if (rc2 != ERROR_NOTFOUND)
            case_fail("second abort after the op completed: rc %d, expected ERROR_NOTFOUND", rc2);
        check_complete(ctx, ev, 701, ERROR_ABORTED);
    } else {
        /* still in progress and already being aborted: ERROR_ABORTED */
        if (rc2 != ERROR_ABORTED)
            case_fail("second abort of an op being aborted: rc %d, expected ERROR_ABORTED", rc2);
        expect_completion(ctx, &L, 701, ERROR_ABORTED);
    }
    app_run_for(ctx, &L, 20);
    check_no_event(ctx);          /* exactly one completion */
    CHECK_RC(libxl_ao_abort(ctx, &a), ERROR_NOTFOUND);
    close_pipe(p);
    apploop_free(&L);
    libxl_ctx_free(ctx);
    case_end();
}

static void case_abort_after_complete(xentoollog_logger *lg)
{
    case_begin("abort_after_completion_notfound");
    libxl_ctx *ctx = test_ctx(lg);
    apploop L = { 0 };
    int p[2], q[2];
    test_pipe(p); test_pipe(q);
    libxl_asyncop_how h = ev_how(801);
    CHECK_RC(libxl_test_fdevent(ctx, p[0], POLLIN, &h), 0);
    pipe_poke(p[1]);
    expect_completion(ctx, &L, 801, 0);
    CHECK_RC(libxl_ao_abort(ctx, &h), ERROR_NOTFOUND);

    cbrec r = { 0, 12345, NULL };
    libxl_asyncop_how hc = { .callback = rec_cb };
    hc.u.for_callback = &r;
    CHECK_RC(libxl_test_fdevent(ctx, q[0], POLLIN, &hc), 0);
    pipe_poke(q[1]);
    if (!app_run_until(ctx, &L, &r.calls, 1, 5000))
        case_fail("callback op never completed");
    CHECK_RC(r.rc, 0);
    CHECK_RC(libxl_ao_abort(ctx, &hc), ERROR_NOTFOUND);
    app_run_for(ctx, &L, 20);
    CHECK_RC(r.calls, 1);
    check_no_event(ctx);
    close_pipe(p); close_pipe(q);
    apploop_free(&L);
    libxl_ctx_free(ctx);
    case_end();
}

typedef struct {
    libxl_ctx *ctx;
    int rc;
    int tries;
} aborter_arg;

static void *aborter_thread(void *v)
{
    aborter_arg *a = v;
    usleep(100 * 1000);
    /* Retry briefly in case the main thread has not entered libxl yet. */
    for (a->tries = 1; ; a->tries++) {
        a->rc = libxl_ao_abort(a->ctx, NULL);
        if (a->rc != ERROR_NOTFOUND || a->tries >= 150) break;
        usleep(20 * 1000);
    }
    return NULL;
}

static void case_abort_sync(xentoollog_logger *lg)
{
    case_begin("abort_sync_op_from_other_thread");
    libxl_ctx *ctx = test_ctx(lg);
    int p[2];
    test_pipe(p);
    aborter_arg aa = { ctx, 12345, 0 };
    pthread_t th;
    double t0 = now_ms();
    if (pthread_create(&th, NULL, aborter_thread, &aa)) { perror("pthread_create"); exit(1); }
    int rc = libxl_test_fdevent(ctx, p[0], POLLIN, NULL); /* never ready */
    double dt = now_ms() - t0;
    pthread_join(th, NULL);
    CHECK_RC(rc, ERROR_ABORTED);
    CHECK_RC(aa.rc, 0);
    if (dt < 90) case_fail("synchronous op returned after %.1f ms, before the abort (~100 ms)", dt);
    check_no_event(ctx);
    /* nothing synchronous is running any more */
    CHECK_RC(libxl_ao_abort(ctx, NULL), ERROR_NOTFOUND);
    close_pipe(p);
    libxl_ctx_free(ctx);
    case_end();
}

static void case_abort_sync_none(xentoollog_logger *lg)
{
    case_begin("abort_null_without_sync_op_notfound");
    libxl_ctx *ctx = test_ctx(lg);
    apploop L = { 0 };
    CHECK_RC(libxl_ao_abort(ctx, NULL), ERROR_NOTFOUND);
    /* an async op in progress must not be taken for the synchronous one */
    int p[2];
    test_pipe(p);
    libxl_asyncop_how h = ev_how(901);
    CHECK_RC(libxl_test_fdevent(ctx, p[0], POLLIN, &h), 0);
    CHECK_RC(libxl_ao_abort(ctx, NULL), ERROR_NOTFOUND);
    app_run_for(ctx, &L, 20);
    check_no_event(ctx);
    pipe_poke(p[1]);
    expect_completion(ctx, &L, 901, 0);
    close_pipe(p);
    apploop_free(&L);
    libxl_ctx_free(ctx);
    case_end();
}

/* Progress op aborted by the application after 3 progress events. */
static void case_abort_progress(xentoollog_logger *lg)
{
    case_begin("abort_progress_op_midway");
    libxl_ctx *ctx = test_ctx(lg);
    apploop L = { 0 };
    libxl_asyncprogress_how aop = { .callback = NULL, .for_event = 9001 };
    libxl_asyncop_how h = ev_how(9002);
    CHECK_RC(libxl_test_progress(ctx, 10, 20, &aop, &h), 0);
    int progress = 0, completed = 0, after = 0;
    double end = now_ms() + 5000;
    while (!completed && now_ms() < end) {
        libxl_event *ev = NULL;
        int rc = libxl_event_wait(ctx, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL);
        CHECK_RC(rc, 0);
        if (rc) break;
        if (ev->type == LIBXL_EVENT_TYPE_DOMAIN_CREATE_CONSOLE_AVAILABLE) {
            CHECK_RC(ev->for_user, 9001);
            progress++;
            libxl_event_free(ctx, ev);
            if (progress == 3)
                CHECK_RC(libxl_ao_abort(ctx, &h), 0);
        } else {
            completed = 1;
            check_complete(ctx, ev, 9002, ERROR_ABORTED);
        }
    }
    CHECK(completed);
    CHECK_RC(progress, 3);
    /* wait well beyond the remaining intervals: no more progress */
    double t_end = now_ms() + 100;
    while (now_ms() < t_end) {
        libxl_event *ev = NULL;
        if (app_wait_event(ctx, &L, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL,
                           (int)(t_end - now_ms()) + 1) == 0) {
            after++;
            libxl_event_free(ctx, ev);
        }
    }
    if (after) case_fail("%d events arrived after the aborted op completed", after);
    CHECK_RC(libxl_ao_abort(ctx, &h), ERROR_NOTFOUND);
    apploop_free(&L);
    libxl_ctx_free(ctx);
    case_end();
}

/* Same, with progress and completion by callback, aborted from inside the
 * 3rd progress callback. */
typedef struct {
    libxl_ctx *ctx;
    volatile int progress, done;
    int progress_after_done;
    int bad_type;
    int abort_rc;
    int done_rc;
    libxl_asyncop_how how;
} pstate;

static void prog_cb(libxl_ctx *ctx, libxl_event *ev, void *fc)
{
    pstate *s = fc;
    if (!ev || ev->type != LIBXL_EVENT_TYPE_DOMAIN_CREATE_CONSOLE_AVAILABLE)
        s->bad_type++;
    libxl_event_free(ctx, ev);
    if (s->done) s->progress_after_done++;
    s->progress++;
    if (s->progress == 3)
        s->abort_rc = libxl_ao_abort(ctx, &s->how);
}

static void done_cb(libxl_ctx *ctx, int rc, void *fc)
{
    (void)ctx;
    pstate *s = fc;
    s->done_rc = rc;
    s->done++;
}

static void case_abort_progress_from_callback(xentoollog_logger *lg)
{
    case_begin("abort_progress_op_from_progress_callback");
    libxl_ctx *ctx = test_ctx(lg);
    apploop L = { 0 };
    pstate s;
    memset(&s, 0, sizeof(s));
    s.ctx = ctx;
    s.abort_rc = s.done_rc = 12345;
    s.how.callback = done_cb;
    s.how.u.for_callback = &s;
    libxl_asyncprogress_how aop = { .callback = prog_cb, .for_event = 1, .for_callback = &s };
    CHECK_RC(libxl_test_progress(ctx, 10, 20, &aop, &s.how), 0);
    if (!app_run_until(ctx, &L, &s.done, 1, 5000))
        case_fail("op did not complete (progress %d)", s.progress);
    app_run_for(ctx, &L, 100);
    CHECK_RC(s.abort_rc, 0);
    CHECK_RC(s.done, 1);
    CHECK_RC(s.done_rc, ERROR_ABORTED);
    CHECK_RC(s.progress, 3);
    CHECK_RC(s.progress_after_done, 0);
    CHECK_RC(s.bad_type, 0);
    check_no_event(ctx);
    apploop_free(&L);
    libxl_ctx_free(ctx);
    case_end();
}

int main(void)
{
    watchdog(60);
    xentoollog_logger *lg = test_logger();

    case_abort_for_event(lg);
    case_abort_callback(lg);
    case_abort_notfound(lg);
    case_abort_twice(lg);
    case_abort_after_complete(lg);
    case_abort_sync(lg);
    case_abort_sync_none(lg);
    case_abort_progress(lg);
    case_abort_progress_from_callback(lg);

    xtl_logger_destroy(lg);
    return h_finish();
}
