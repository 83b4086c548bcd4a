/*
 * test_event_hooks.c - libxl_event_register_callbacks: delivery of events
 * to the application's event_occurs hook instead of the event queue.
 *
 * Scenario: hooks with event_occurs_mask = 1 << OPERATION_COMPLETE are
 * registered, then
 *  - for_event libxl_test_fdevent ops complete (pipe made readable);
 *  - a libxl_test_progress op reports for_event progress (type 5, not in
 *    the mask) and completes;
 *  - event_occurs itself starts another op (libxl calls are allowed
 *    there) whose completion also reaches event_occurs;
 *  - the hooks are re-registered with mask 0, and cleared with NULL.
 * Success: each completion in the mask reaches event_occurs exactly once,
 * with the registered user pointer and the right for_user/rc, and is never
 * retrievable with libxl_event_check; progress events still queue; the op
 * started inside event_occurs is started (rc 0) and completes; after
 * re-registration with mask 0 or NULL hooks completions queue again and
 * event_occurs is no longer called.
 * Failure: a FAIL line naming the case and the first failed check (event
 * delivered twice, to the wrong place, with wrong contents, or not at
 * all); hangs become FAIL via the watchdog.  Every event handed to the
 * test is freed (run under valgrind to check).
 */
#include "apploop.h"

#include <libxl_test_fdevent.h>
#include <libxl_test_progress.h>

/*---------- the event_occurs hook ----------*/

#define MAXREC 16

typedef struct {
    libxl_ctx *ctx;
    volatile int n;
    int bad_user;             /* called with a user pointer not ours */
    int type[MAXREC];
    uint64_t for_user[MAXREC];
    int rc[MAXREC];
    /* re-entrancy: on the completion of trigger_fu, start an op */
    uint64_t trigger_fu;
    int start_fd;
    uint64_t start_fu;
    int start_rc;
    int started;
} occ;

static occ g_occ; /* the record of the current case */

static void occurs(void *user, libxl_event *ev)
{
    occ *o = &g_occ;
    if (user != o)
        o->bad_user++;   /* not the user pointer we registered */
    int i = o->n;
    if (i < MAXREC) {
        o->type[i] = ev->type;
        o->for_user[i] = ev->for_user;
        o->rc[i] = ev->type == LIBXL_EVENT_TYPE_OPERATION_COMPLETE
                   ? ev->u.operation_complete.rc : 0;
    }
    o->n++;
    if (o->trigger_fu && ev->for_user == o->trigger_fu && !o->started) {
        o->started = 1;
        libxl_asyncop_how h = ev_how(o->start_fu);
        o->start_rc = libxl_test_fdevent(o->ctx, o->start_fd, POLLIN, &h);
    }
    libxl_event_free(o->ctx, ev); /* we own it */
}

static void register_mask(libxl_ctx *ctx, occ *o, uint64_t mask)
{
    libxl_event_hooks hooks;
    memset(&hooks, 0, sizeof(hooks));
    hooks.event_occurs_mask = mask;
    hooks.event_occurs = occurs;
    libxl_event_register_callbacks(ctx, &hooks, o);
    /* *hooks is copied: scribbling on it must not matter */
    memset(&hooks, 0xff, sizeof(hooks));
}

/* Resets the record for a new case and registers event_occurs for it
 * with event_occurs_mask = 1 << OPERATION_COMPLETE. */
static occ *occ_start(libxl_ctx *ctx)
{
    occ *o = &g_occ;
    memset(o, 0, sizeof(*o));
    o->ctx = ctx;
    o->start_fd = -1;
    o->start_rc = 12345;
    register_mask(ctx, o, OPCOMPLETE_MASK);
    return o;
}

/* Checks record i is a completion for fu with rc. */
static void check_rec(occ *o, int i, uint64_t fu, int rc)
{
    if (i >= o->n || i >= MAXREC) {
        case_fail("event_occurs record %d missing (%d calls)", i, o->n);
        return;
    }
    CHECK_RC(o->type[i], LIBXL_EVENT_TYPE_OPERATION_COMPLETE);
    CHECK_RC(o->for_user[i], fu);
    CHECK_RC(o->rc[i], rc);
    CHECK_RC(o->bad_user, 0);
}

/* Runs the loop until event_occurs has been called n times in all (else
 * fails with `what`), then settle_ms more: no further call may come. */
static void await_occurs(libxl_ctx *ctx, apploop *L, occ *o, int n, int settle_ms,
                         const char *what)
{
    if (!app_run_until(ctx, L, &o->n, n, 5000))
        case_fail("%s", what);
    app_run_for(ctx, L, settle_ms);
    CHECK_RC(o->n, n);
}

/*---------- cases ----------*/

static void case_completion_to_hook(xentoollog_logger *lg)
{
    libxl_ctx *ctx = app_case("completion_goes_to_event_occurs", lg);
    apploop L = { 0 };
    occ *o = occ_start(ctx);
    int p[2], q[2];
    start_pipe_op(ctx, p, 11);
    start_pipe_op(ctx, q, 12);
    app_run_for(ctx, &L, 30);
    CHECK_RC(o->n, 0);                   /* not before the fd is ready */
    pipe_poke(p[1]);
    await_occurs(ctx, &L, o, 1, 20, "event_occurs not called within 5 s");
    check_rec(o, 0, 11, 0);
    check_no_event(ctx);                 /* not also queued */
    pipe_poke(q[1]);
    await_occurs(ctx, &L, o, 2, 20, "second completion not delivered to event_occurs");
    check_rec(o, 1, 12, 0);
    check_no_event(ctx);
    close_pipe(p); close_pipe(q);
    app_case_end(ctx, &L);
}

static void case_progress_still_queued(xentoollog_logger *lg)
{
    libxl_ctx *ctx = app_case("progress_events_outside_mask_still_queue", lg);
    apploop L = { 0 };
    occ *o = occ_start(ctx);
    libxl_asyncprogress_how aop = { .callback = NULL, .for_event = 77 };
    libxl_asyncop_how h = ev_how(78);
    CHECK_RC(libxl_test_progress(ctx, 3, 10, &aop, &h), 0);
    expect_progress_events(ctx, 3, 77, 1);
    /* only the completion, once */
    await_occurs(ctx, &L, o, 1, 30, "completion not delivered to event_occurs");
    check_rec(o, 0, 78, 0);
    check_no_event(ctx);
    app_case_end(ctx, &L);
}

static void case_reentrant(xentoollog_logger *lg)
{
    libxl_ctx *ctx = app_case("event_occurs_starts_another_op", lg);
    apploop L = { 0 };
    occ *o = occ_start(ctx);
    int p[2], q[2];
    test_pipe(q);
    o->trigger_fu = 21;
    o->start_fd = q[0];
    o->start_fu = 22;
    start_pipe_op(ctx, p, 21);
    pipe_poke(p[1]);
    /* the inner op waits for its pipe */
    await_occurs(ctx, &L, o, 1, 30, "first completion not delivered to event_occurs");
    CHECK(o->started);
    CHECK_RC(o->start_rc, 0);
    pipe_poke(q[1]);
    await_occurs(ctx, &L, o, 2, 20, "op started inside event_occurs never completed");
    check_rec(o, 0, 21, 0);
    check_rec(o, 1, 22, 0);
    check_no_event(ctx);
    close_pipe(p); close_pipe(q);
    app_case_end(ctx, &L);
}

/* Drives one for_event op to completion and checks it was queued (and
 * retrieved with libxl_event_wait), not given to event_occurs. */
static void expect_queued_completion(libxl_ctx *ctx, occ *o, uint64_t fu)
{
    int p[2];
    int n0 = o->n;
    start_pipe_op(ctx, p, fu);
    pipe_poke(p[1]);
    libxl_event *ev = NULL;
    int rc = libxl_event_wait(ctx, &ev, OPCOMPLETE_MASK, NULL, NULL);
    CHECK_RC(rc, 0);
    if (!rc) check_complete(ctx, ev, fu, 0);
    CHECK_RC(o->n, n0);
    close_pipe(p);
}

/* Drives one for_event op to completion and checks it reached
 * event_occurs (and not the queue). */
static void expect_hooked_completion(libxl_ctx *ctx, apploop *L, occ *o, uint64_t fu)
{
    int p[2];
    int n0 = o->n;
    char what[64];
    snprintf(what, sizeof(what), "completion %llu not delivered to event_occurs",
             (unsigned long long)fu);
    start_pipe_op(ctx, p, fu);
    pipe_poke(p[1]);
    await_occurs(ctx, L, o, n0 + 1, 20, what);
    check_rec(o, n0, fu, 0);
    check_no_event(ctx);
    close_pipe(p);
}

static void case_reregister_mask0(xentoollog_logger *lg)
{
    libxl_ctx *ctx = app_case("reregister_mask0_completions_queue_again", lg);
    apploop L = { 0 };
    occ *o = occ_start(ctx);
    expect_hooked_completion(ctx, &L, o, 31);
    register_mask(ctx, o, 0);
    expect_queued_completion(ctx, o, 32);
    register_mask(ctx, o, OPCOMPLETE_MASK);  /* last registration wins */
    expect_hooked_completion(ctx, &L, o, 33);
    CHECK_RC(o->n, 2);
    app_case_end(ctx, &L);
}

static void case_null_clears(xentoollog_logger *lg)
{
    libxl_ctx *ctx = app_case("null_hooks_clear_registration", lg);
    apploop L = { 0 };
    occ *o = occ_start(ctx);
    expect_hooked_completion(ctx, &L, o, 41);
    libxl_event_register_callbacks(ctx, NULL, NULL);
    expect_queued_completion(ctx, o, 42);
    CHECK_RC(o->n, 1);
    app_case_end(ctx, &L);
}

int main(void)
{
    watchdog(60);
    xentoollog_logger *lg = test_logger();

    case_completion_to_hook(lg);
    case_progress_still_queued(lg);
    case_reentrant(lg);
    case_reregister_mask0(lg);
    case_null_clears(lg);

    xtl_logger_destroy(lg);
    return h_finish();
}
