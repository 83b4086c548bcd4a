/*
 * test_timedereg.c - Xen's timeout-deregistration scenario,
 * libxl_test_timedereg, driven through the public API.
 *
 * Scenario (inside the library, as in Xen's libxl_test_timedereg.c):
 * group 0 timeouts of 2000, 1000 and 2000 ms are registered; when the
 * 1000 ms one fires its two siblings are deregistered before they fire,
 * group 1 (1000, 2000, 3000 ms from then) is registered, and the
 * already-fired timeout is deregistered again (must be a harmless
 * no-op).  Group 1 must then fire in order, and after the last one no
 * timeout may remain registered; the operation completes with 0 (any
 * deviation makes it complete with an error, or - like a deregistered
 * timeout firing - disturbs the sequence).  So the run takes ~4 s.
 *
 * Three runs go at once on one ctx, each with its own timeouts:
 *  - synchronous (ao_how NULL) in a second thread: must return 0;
 *  - for_event: the main thread waits with libxl_event_wait for its
 *    OPERATION_COMPLETE (for_user 0x7d, rc 0);
 *  - callback: the callback must run exactly once with rc 0.
 * Each must take about 4 s (>= 3.9 s: group 1 was not fired early, the
 * deregistered group 0 timeouts at 2 s did not end it, < 7 s).
 *
 * Success: all cases PASS, exit 0, about 4 s in total.
 * Failure: a FAIL line (non-zero rc, wrong event, too early / late,
 * callback count wrong, stray events) or the watchdog's FAIL on a hang.
 */
#include "harness.h"

#include <pthread.h>

#include <libxl_test_timedereg.h>

#define FOR_EVENT 0x7d

static libxl_ctx *ctx;

struct sync_run { int rc; double ms; };

static void *sync_thread(void *arg)
{
    struct sync_run *r = arg;
    double t0 = now_ms();
    r->rc = libxl_test_timedereg(ctx, NULL);
    r->ms = now_ms() - t0;
    return NULL;
}

struct cb_state {
    pthread_mutex_t mu;
    int calls, rc;
    double t0, ms;
};
static struct cb_state cbs = { .mu = PTHREAD_MUTEX_INITIALIZER, .rc = -999 };

static void op_callback(libxl_ctx *c, int rc, void *for_callback)
{
    struct cb_state *s = for_callback;
    pthread_mutex_lock(&s->mu);
    s->calls++;
    s->rc = rc;
    s->ms = now_ms() - s->t0;
    pthread_mutex_unlock(&s->mu);
    (void)c;
}

static int cb_calls(void)
{
    pthread_mutex_lock(&cbs.mu);
    int n = cbs.calls;
    pthread_mutex_unlock(&cbs.mu);
    return n;
}

/* Runs the application loop until the callback has been called or
 * `ms` elapsed. */
static void pump_until_callback(int ms)
{
    double end = now_ms() + ms;
    while (!cb_calls() && now_ms() < end) {
        struct pollfd fds[16];
        int n = 16, t = 100;
        if (libxl_osevent_beforepoll(ctx, &n, fds, &t, tv_now()) != 0)
            return;
        poll(fds, n, t);
        libxl_osevent_afterpoll(ctx, n, fds, tv_now());
    }
}

static int pred_for_event(const libxl_event *ev, void *user)
{
    (void)user;
    return ev->type == LIBXL_EVENT_TYPE_OPERATION_COMPLETE &&
           ev->for_user == FOR_EVENT;
}

/* The scenario's last timer is due 4 s after the start: it must take
 * that long, and its completion must come promptly then. */
static void check_duration(const char *what, double ms)
{
    if (ms < 3900 || ms > 4000 + prompt_ms())
        case_fail("%s took %.0f ms, expected 4000 (+ at most %.0f)", what, ms, prompt_ms());
}

int main(void)
{
    watchdog(15);
    xentoollog_logger *lg = test_logger();
    ctx = test_ctx(lg);

    /* start all three */
    struct sync_run sr = { -999, 0 };
    pthread_t th;
    double t0 = now_ms();
    pthread_create(&th, NULL, sync_thread, &sr);

    libxl_asyncop_how ev_how = { .callback = NULL, .u.for_event = FOR_EVENT };
    int ev_start_rc = libxl_test_timedereg(ctx, &ev_how);

    cbs.t0 = now_ms();
    libxl_asyncop_how cb_how = { .callback = op_callback,
                                 .u.for_callback = &cbs };
    int cb_start_rc = libxl_test_timedereg(ctx, &cb_how);

    /* for_event: wait for its completion */
    case_begin("timedereg_for_event");
    CHECK_RC(ev_start_rc, 0);
    libxl_event *ev = NULL;
    int rc = ev_start_rc ? ev_start_rc
        : libxl_event_wait(ctx, &ev, LIBXL_EVENTMASK_ALL, pred_for_event, NULL);
    double ev_ms = now_ms() - t0;
    CHECK_RC(rc, 0);
    if (!rc) {
        CHECK_RC(ev->type, LIBXL_EVENT_TYPE_OPERATION_COMPLETE);
        CHECK_RC(ev->for_user, FOR_EVENT);
        CHECK_RC(ev->u.operation_complete.rc, 0);
        libxl_event_free(ctx, ev);
        check_duration("for_event run", ev_ms);
    }
    case_end();

    case_begin("timedereg_sync_in_thread");
    pthread_join(th, NULL);
    CHECK_RC(sr.rc, 0);
    check_duration("synchronous run", sr.ms);
    case_end();

    case_begin("timedereg_callback");
    CHECK_RC(cb_start_rc, 0);
    if (!cb_start_rc) pump_until_callback(3000);
    pthread_mutex_lock(&cbs.mu);
    int calls = cbs.calls, cbrc = cbs.rc;
    double cbms = cbs.ms;
    pthread_mutex_unlock(&cbs.mu);
    CHECK_RC(calls, 1);
    CHECK_RC(cbrc, 0);
    if (calls) check_duration("callback run", cbms);
    case_end();

    case_begin("timedereg_no_stray_events");
    /* a few more loop turns: nothing else may arrive (e.g. a second
     * completion, or a deregistered timeout firing late) */
    for (int i = 0; i < 3; i++) {
        struct pollfd fds[16];
        int n = 16, t = 50;
        CHECK_RC(libxl_osevent_beforepoll(ctx, &n, fds, &t, tv_now()), 0);
        CHECK(t == 50); /* no timeouts left pending */
        poll(fds, n, t);
        libxl_osevent_afterpoll(ctx, n, fds, tv_now());
    }
    ev = NULL;
    CHECK_RC(libxl_event_check(ctx, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL),
             ERROR_NOT_READY);
    if (ev) libxl_event_free(ctx, ev);
    CHECK_RC(cb_calls(), 1);
    case_end();

    libxl_ctx_free(ctx);
    xtl_logger_destroy(lg);
    return h_finish();
}
