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
#include "apploop.h"

#include <pthread.h>
#include <libxl_test_fdevent.h>
#include <libxl_test_progress.h>

/*---------- helpers ----------*/

/* Waits (application loop, up to 5 s) for the completion of for_user. */
/* Its cause (a write, an abort) has just happened: the completion must
 * come, promptly. */
static void expect_completion(libxl_ctx *ctx, apploop *L, uint64_t fu, int want_rc)
{
    libxl_event *ev = NULL;
    double t0 = now_ms();
    int rc = app_wait_event(ctx, L, &ev, OPCOMPLETE_MASK, pred_for_user, &fu, 5000);
    if (rc) {
        case_fail("no completion for for_user %llu (rc %d)", (unsigned long long)fu, rc);
        return;
    }
    CHECK_PROMPT(t0, "the completion through the application's loop");
    check_complete(ctx, ev, fu, want_rc);
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
    libxl_ctx *ctx = app_case("abort_pending_for_event_op", lg);
    apploop L = { 0 };
    int p[2];
    start_pipe_op(ctx, p, 501);
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
    app_case_end(ctx, &L);
}

static void case_abort_callback(xentoollog_logger *lg)
{
    libxl_ctx *ctx = app_case("abort_pending_callback_op_matches_callback_and_for_callback", lg);
    apploop L = { 0 };
    int p[2];
    test_pipe(p);
    cbrec r, other;
    cbrec_init(&r);
    cbrec_init(&other);
    libxl_asyncop_how h = cb_how(rec_cb, &r);
    CHECK_RC(libxl_test_fdevent(ctx, p[0], POLLIN, &h), 0);

    libxl_asyncop_how a;
    a = cb_how(rec_cb, &other);                  /* right callback, wrong cookie */
    CHECK_RC(libxl_ao_abort(ctx, &a), ERROR_NOTFOUND);
    a = cb_how(other_cb, &r);                    /* wrong callback, right cookie */
    CHECK_RC(libxl_ao_abort(ctx, &a), ERROR_NOTFOUND);
    a = cb_how(NULL, &r);                        /* for_event mode, same bits */
    CHECK_RC(libxl_ao_abort(ctx, &a), ERROR_NOTFOUND);
    CHECK_RC(libxl_ao_abort(ctx, NULL), ERROR_NOTFOUND); /* not synchronous */
    app_run_for(ctx, &L, 20);
    CHECK_RC(r.calls, 0);

    a = cb_how(rec_cb, &r);
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
    app_case_end(ctx, &L);
}

static void case_abort_notfound(xentoollog_logger *lg)
{
    libxl_ctx *ctx = app_case("abort_unmatched_how_notfound_no_effect", lg);
    apploop L = { 0 };
    int p[2], q[2];
    start_pipe_op(ctx, p, 601);
    start_pipe_op(ctx, q, 602);
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
    app_case_end(ctx, &L);
}

static void case_abort_twice(xentoollog_logger *lg)
{
    libxl_ctx *ctx = app_case("abort_same_op_twice", lg);
    apploop L = { 0 };
    int p[2];
    start_pipe_op(ctx, p, 701);
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
    app_case_end(ctx, &L);
}

static void case_abort_after_complete(xentoollog_logger *lg)
{
    libxl_ctx *ctx = app_case("abort_after_completion_notfound", lg);
    apploop L = { 0 };
    int p[2], q[2];
    start_pipe_op(ctx, p, 801);
    pipe_poke(p[1]);
    expect_completion(ctx, &L, 801, 0);
    libxl_asyncop_how h = ev_how(801);
    CHECK_RC(libxl_ao_abort(ctx, &h), ERROR_NOTFOUND);

    test_pipe(q);
    cbrec r;
    cbrec_init(&r);
    libxl_asyncop_how hc = cb_how(rec_cb, &r);
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
    app_case_end(ctx, &L);
}

typedef struct {
    libxl_ctx *ctx;
    int rc;
    int tries;
    double aborted_at; /* read after the join */
} aborter_arg;

static void *aborter_thread(void *v)
{
    aborter_arg *a = v;
    usleep(100 * 1000);
    /* Retry briefly in case the main thread has not entered libxl yet. */
    for (a->tries = 1; ; a->tries++) {
        a->aborted_at = now_ms();
        a->rc = libxl_ao_abort(a->ctx, NULL);
        if (a->rc != ERROR_NOTFOUND || a->tries >= 150) break;
        usleep(20 * 1000);
    }
    return NULL;
}

static void case_abort_sync(xentoollog_logger *lg)
{
    libxl_ctx *ctx = app_case("abort_sync_op_from_other_thread", lg);
    int p[2];
    test_pipe(p);
    aborter_arg aa = { ctx, 12345, 0, 0 };
    pthread_t th;
    double t0 = now_ms();
    if (pthread_create(&th, NULL, aborter_thread, &aa)) { perror("pthread_create"); exit(1); }
    int rc = libxl_test_fdevent(ctx, p[0], POLLIN, NULL); /* never ready */
    double dt = now_ms() - t0;
    pthread_join(th, NULL);
    CHECK_PROMPT(aa.aborted_at, "the synchronous op's return after another thread aborted it");
    CHECK_RC(rc, ERROR_ABORTED);
    CHECK_RC(aa.rc, 0);
    if (dt < 90) case_fail("synchronous op returned after %.1f ms, before the abort (~100 ms)", dt);
    check_no_event(ctx);
    /* nothing synchronous is running any more */
    CHECK_RC(libxl_ao_abort(ctx, NULL), ERROR_NOTFOUND);
    close_pipe(p);
    app_case_end(ctx, NULL);
}

static void case_abort_sync_none(xentoollog_logger *lg)
{
    libxl_ctx *ctx = app_case("abort_null_without_sync_op_notfound", lg);
    apploop L = { 0 };
    CHECK_RC(libxl_ao_abort(ctx, NULL), ERROR_NOTFOUND);
    /* an async op in progress must not be taken for the synchronous one */
    int p[2];
    start_pipe_op(ctx, p, 901);
    CHECK_RC(libxl_ao_abort(ctx, NULL), ERROR_NOTFOUND);
    app_run_for(ctx, &L, 20);
    check_no_event(ctx);
    pipe_poke(p[1]);
    expect_completion(ctx, &L, 901, 0);
    close_pipe(p);
    app_case_end(ctx, &L);
}

/* Progress op aborted by the application after 3 progress events. */
static void case_abort_progress(xentoollog_logger *lg)
{
    libxl_ctx *ctx = app_case("abort_progress_op_midway", lg);
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
    app_case_end(ctx, &L);
}

/* Same, with progress and completion by callback, aborted from inside the
 * 3rd progress callback. */
typedef struct {
    libxl_ctx *ctx;
    volatile int progress;
    cbrec done;            /* the completion (rec_cb) */
    int progress_after_done;
    int bad_type;
    int abort_rc;
    libxl_asyncop_how how;
} pstate;

static void prog_cb(libxl_ctx *ctx, libxl_event *ev, void *fc)
{
    pstate *s = fc;
    if (!ev || ev->type != LIBXL_EVENT_TYPE_DOMAIN_CREATE_CONSOLE_AVAILABLE)
        s->bad_type++;
    libxl_event_free(ctx, ev);
    if (s->done.calls) s->progress_after_done++;
    s->progress++;
    if (s->progress == 3)
        s->abort_rc = libxl_ao_abort(ctx, &s->how);
}

static void case_abort_progress_from_callback(xentoollog_logger *lg)
{
    libxl_ctx *ctx = app_case("abort_progress_op_from_progress_callback", lg);
    apploop L = { 0 };
    pstate s;
    memset(&s, 0, sizeof(s));
    s.ctx = ctx;
    s.abort_rc = 12345;
    cbrec_init(&s.done);
    s.how = cb_how(rec_cb, &s.done);
    libxl_asyncprogress_how aop = { .callback = prog_cb, .for_event = 1, .for_callback = &s };
    CHECK_RC(libxl_test_progress(ctx, 10, 20, &aop, &s.how), 0);
    if (!app_run_until(ctx, &L, &s.done.calls, 1, 5000))
        case_fail("op did not complete (progress %d)", s.progress);
    app_run_for(ctx, &L, 100);
    CHECK_RC(s.abort_rc, 0);
    CHECK_RC(s.done.calls, 1);
    CHECK_RC(s.done.rc, ERROR_ABORTED);
    CHECK_RC(s.progress, 3);
    CHECK_RC(s.progress_after_done, 0);
    CHECK_RC(s.bad_type, 0);
    check_no_event(ctx);
    app_case_end(ctx, &L);
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
