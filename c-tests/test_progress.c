/*
 * test_progress.c - progress reporting of an ao, via
 * libxl_test_progress(ctx, count, interval_ms, aop_how, ao_how).
 *
 * Scenario: the op reports `count` DOMAIN_CREATE_CONSOLE_AVAILABLE
 * progress events interval_ms apart, then completes with 0:
 *  - aop_how for_event (77), ao_how for_event: events via libxl_event_wait;
 *  - aop_how callback, ao_how callback: driven by an application poll loop;
 *  - aop_how NULL: reports discarded;
 *  - count 0;
 *  - synchronous (ao_how NULL) with for_event progress, and with callback
 *    progress;
 *  - negative count / interval_ms.
 * Success: exactly `count` progress events (type 5, for_user 77, domid 0),
 * all before the completion (OPERATION_COMPLETE with the ao's for_user and
 * rc 0, or the completion callback with rc 0), spaced by at least about
 * interval_ms; none when aop_how is NULL or count is 0; the synchronous
 * call returns 0 after about count*interval_ms with its for_event progress
 * events then retrievable by libxl_event_check; ERROR_INVAL for negative
 * arguments with nothing started.
 * Failure: a FAIL line naming the case and the first failed check (missing,
 * extra, misordered or early events, wrong cookies/types/rc); hangs become
 * FAIL via the watchdog.
 */
#include "apploop.h"

#include <libxl_test_progress.h>

/*---------- helpers ----------*/

/* Collects events with libxl_event_wait until the completion for
 * ao_for_user; checks count progress events for_user 77 come first,
 * spaced >= ~interval. */
static void collect_for_event(libxl_ctx *ctx, int count, int interval,
                              uint64_t ao_for_user, double t_start,
                              int want_progress)
{
    int progress = 0;
    double prev = t_start, first_gap = -1, min_gap = 1e9;
    for (;;) {
        libxl_event *ev = NULL;
        int rc = libxl_event_wait(ctx, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL);
        if (rc) { case_fail("libxl_event_wait rc=%d", rc); return; }
        double t = now_ms();
        if (ev->type == LIBXL_EVENT_TYPE_DOMAIN_CREATE_CONSOLE_AVAILABLE) {
            CHECK_RC(ev->for_user, 77);
            CHECK_RC(ev->domid, 0);
            progress++;
            double gap = t - prev;
            if (progress == 1) first_gap = gap;
            if (gap < min_gap) min_gap = gap;
            prev = t;
            /* Each report's timer is armed when the previous one fired, so
             * the k-th report cannot exist before k intervals have passed
             * (however late the consumer picks the events up). */
            if (t - t_start < progress * interval - 1.0)
                case_fail("progress event %d after %.1f ms, before %d intervals of %d ms",
                          progress, t - t_start, progress, interval);
            libxl_event_free(ctx, ev);
            if (progress > count + 5) { case_fail("runaway progress events"); return; }
            continue;
        }
        CHECK_RC(ev->type, LIBXL_EVENT_TYPE_OPERATION_COMPLETE);
        CHECK_RC(ev->for_user, ao_for_user);
        CHECK_RC(ev->u.operation_complete.rc, 0);
        CHECK_RC(ev->domid, 0);
        libxl_event_free(ctx, ev);
        break;
    }
    CHECK_RC(progress, want_progress);
    if (want_progress > 0) {
        /* events are retrieved as soon as they occur; allow some slack */
        if (first_gap < interval * 0.8)
            case_fail("first progress event after %.1f ms, interval is %d", first_gap, interval);
        (void)min_gap; /* consumer-side gaps shrink when it falls behind */
        double total = prev - t_start;
        if (total < count * interval * 0.9)
            case_fail("%d events took only %.1f ms", count, total);
        /* each timer is armed when the previous one fires: a late
         * wakeup anywhere shows in the total */
        if (total > count * interval + prompt_ms())
            case_fail("%d events took %.1f ms: not prompt (> %d x %d + %.0f ms)", count, total,
                      count, interval, prompt_ms());
    }
    check_no_event(ctx);
}

/* Runs libxl_test_progress(count, interval) with progress per *aop (a
 * for_event 77 one, or NULL) and completion event ao_for_user, and checks
 * its events with collect_for_event. Returns the time it was started. */
static double run_for_event(libxl_ctx *ctx, int count, int interval,
                            libxl_asyncprogress_how *aop, uint64_t ao_for_user)
{
    libxl_asyncop_how h = ev_how(ao_for_user);
    double t0 = now_ms();
    CHECK_RC(libxl_test_progress(ctx, count, interval, aop, &h), 0);
    collect_for_event(ctx, count, interval, ao_for_user, t0, aop ? count : 0);
    return t0;
}

/*---------- cases ----------*/

static void case_for_event(xentoollog_logger *lg)
{
    libxl_ctx *ctx = app_case("progress_for_event", lg);
    libxl_asyncprogress_how aop = { .callback = NULL, .for_event = 77 };
    run_for_event(ctx, 5, 30, &aop, 78);
    app_case_end(ctx, NULL);
}

typedef struct {
    volatile int progress;
    cbrec done;            /* the completion (rec_cb) */
    int bad;               /* progress callback got a wrong event/cookie */
    int progress_after_done;
    double t[16];
} pstate;

static void pstate_init(pstate *s)
{
    memset(s, 0, sizeof(*s));
    cbrec_init(&s->done);
}

static void prog_cb(libxl_ctx *ctx, libxl_event *ev, void *fc)
{
    pstate *s = fc;
    if (!ev) {
        s->bad++;
    } else {
        if (ev->type != LIBXL_EVENT_TYPE_DOMAIN_CREATE_CONSOLE_AVAILABLE ||
            ev->for_user != 77 || ev->domid != 0)
            s->bad++;
        libxl_event_free(ctx, ev);
    }
    if (s->done.calls) s->progress_after_done++;
    if (s->progress < 16) s->t[s->progress] = now_ms();
    s->progress++;
}

static void case_callback(xentoollog_logger *lg)
{
    libxl_ctx *ctx = app_case("progress_callback", lg);
    apploop L = { 0 };
    pstate s;
    pstate_init(&s);
    libxl_asyncprogress_how aop = { .callback = prog_cb, .for_event = 77, .for_callback = &s };
    libxl_asyncop_how h = cb_how(rec_cb, &s.done);
    double t0 = now_ms();
    CHECK_RC(libxl_test_progress(ctx, 6, 20, &aop, &h), 0);
    CHECK_RC(s.progress, 0); /* the first report is an interval away */
    if (!app_run_until(ctx, &L, &s.done.calls, 1, 5000))
        case_fail("no completion callback (progress %d)", s.progress);
    CHECK_PROMPT(t0 + 6 * 20, "the completion callback after 6 intervals of 20 ms");
    app_run_for(ctx, &L, 50);
    CHECK_RC(s.done.calls, 1);
    CHECK_RC(s.done.rc, 0);
    CHECK_RC(s.progress, 6);
    CHECK_RC(s.bad, 0);
    CHECK_RC(s.progress_after_done, 0);
    if (s.progress >= 6) {
        if (s.t[0] - t0 < 16) case_fail("first progress after %.1f ms (interval 20)", s.t[0] - t0);
        for (int i = 1; i < 6; i++)
            if (s.t[i] - s.t[i - 1] < 12)
                case_fail("progress %d only %.1f ms after the previous", i, s.t[i] - s.t[i - 1]);
    }
    check_no_event(ctx); /* callbacks: nothing queued */
    app_case_end(ctx, &L);
}

static void case_null_aop(xentoollog_logger *lg)
{
    libxl_ctx *ctx = app_case("progress_null_aop_discards", lg);
    double t0 = run_for_event(ctx, 3, 15, NULL, 80);
    /* the op still took its intervals */
    double dt = now_ms() - t0;
    if (dt < 3 * 15 * 0.9) case_fail("completed after %.1f ms, expected >= ~45", dt);
    app_case_end(ctx, NULL);
}

static void case_count_zero(xentoollog_logger *lg)
{
    libxl_ctx *ctx = app_case("progress_count_zero", lg);
    libxl_asyncprogress_how aop = { .callback = NULL, .for_event = 77 };
    run_for_event(ctx, 0, 10, &aop, 79);
    /* synchronous, and with a progress callback that must not be called */
    pstate s;
    pstate_init(&s);
    libxl_asyncprogress_how aopc = { .callback = prog_cb, .for_event = 77, .for_callback = &s };
    CHECK_RC(libxl_test_progress(ctx, 0, 10, &aopc, NULL), 0);
    CHECK_RC(s.progress, 0);
    check_no_event(ctx);
    app_case_end(ctx, NULL);
}

static void case_sync_for_event(xentoollog_logger *lg)
{
    libxl_ctx *ctx = app_case("progress_sync_for_event", lg);
    libxl_asyncprogress_how aop = { .callback = NULL, .for_event = 77 };
    double t0 = now_ms();
    int rc = libxl_test_progress(ctx, 4, 25, &aop, NULL);
    double dt = now_ms() - t0;
    CHECK_RC(rc, 0);
    if (dt < 4 * 25 * 0.9) case_fail("returned after %.1f ms, expected >= ~100", dt);
    if (dt > 4 * 25 + prompt_ms()) case_fail("returned after %.1f ms: not prompt", dt);
    expect_progress_events(ctx, 4, 77, 0); /* queued before the return */
    check_no_event(ctx); /* no 5th event, no OPERATION_COMPLETE */
    app_case_end(ctx, NULL);
}

static void case_sync_callback(xentoollog_logger *lg)
{
    libxl_ctx *ctx = app_case("progress_sync_callback_before_return", lg);
    pstate s;
    pstate_init(&s);
    libxl_asyncprogress_how aop = { .callback = prog_cb, .for_event = 77, .for_callback = &s };
    CHECK_RC(libxl_test_progress(ctx, 3, 10, &aop, NULL), 0);
    /* libxl: with ao_how NULL, progress callbacks happen strictly before
     * the call returns */
    CHECK_RC(s.progress, 3);
    CHECK_RC(s.bad, 0);
    check_no_event(ctx);
    app_case_end(ctx, NULL);
}

static void case_inval(xentoollog_logger *lg)
{
    libxl_ctx *ctx = app_case("progress_negative_args_inval", lg);
    apploop L = { 0 };
    pstate s;
    pstate_init(&s);
    libxl_asyncprogress_how aop = { .callback = NULL, .for_event = 77 };
    libxl_asyncop_how h = ev_how(81);
    libxl_asyncop_how hc = cb_how(rec_cb, &s.done);
    CHECK_RC(libxl_test_progress(ctx, -1, 10, &aop, &h), ERROR_INVAL);
    CHECK_RC(libxl_test_progress(ctx, 2, -1, &aop, &h), ERROR_INVAL);
    CHECK_RC(libxl_test_progress(ctx, -1, 10, &aop, &hc), ERROR_INVAL);
    CHECK_RC(libxl_test_progress(ctx, 2, -5, NULL, &hc), ERROR_INVAL);
    CHECK_RC(libxl_test_progress(ctx, -3, 10, &aop, NULL), ERROR_INVAL);
    CHECK_RC(libxl_test_progress(ctx, 1, -10, &aop, NULL), ERROR_INVAL);
    /* nothing was started: no completion, no progress, no callback */
    app_run_for(ctx, &L, 60);
    check_no_event(ctx);
    CHECK_RC(s.done.calls, 0);
    CHECK_RC(libxl_ao_abort(ctx, &h), ERROR_NOTFOUND);
    app_case_end(ctx, &L);
}

int main(void)
{
    watchdog(60);
    xentoollog_logger *lg = test_logger();

    case_for_event(lg);
    case_callback(lg);
    case_null_aop(lg);
    case_count_zero(lg);
    case_sync_for_event(lg);
    case_sync_callback(lg);
    case_inval(lg);

    xtl_logger_destroy(lg);
    return h_finish();
}
