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
#include "harness.h"

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

/*---------- helpers ----------*/

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

static occ *g_occ; /* the record of the current case */

static void occurs(void *user, libxl_event *ev)
{
    occ *o = g_occ;
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

static void occ_init(occ *o, libxl_ctx *ctx)
{
    memset(o, 0, sizeof(*o));
    o->ctx = ctx;
    o->start_fd = -1;
    o->start_rc = 12345;
    g_occ = o;
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

/*---------- cases ----------*/

static void case_completion_to_hook(xentoollog_logger *lg)
{
    case_begin("completion_goes_to_event_occurs");
    libxl_ctx *ctx = test_ctx(lg);
    apploop L = { 0 };
    occ o;
    occ_init(&o, ctx);
    register_mask(ctx, &o, OPCOMPLETE_MASK);
    int p[2], q[2];
    test_pipe(p); test_pipe(q);
    libxl_asyncop_how h1 = ev_how(11), h2 = ev_how(12);
    CHECK_RC(libxl_test_fdevent(ctx, p[0], POLLIN, &h1), 0);
    CHECK_RC(libxl_test_fdevent(ctx, q[0], POLLIN, &h2), 0);
    app_run_for(ctx, &L, 30);
    CHECK_RC(o.n, 0);                    /* not before the fd is ready */
    pipe_poke(p[1]);
    if (!app_run_until(ctx, &L, &o.n, 1, 5000))
        case_fail("event_occurs not called within 5 s");
    app_run_for(ctx, &L, 20);
    CHECK_RC(o.n, 1);
    check_rec(&o, 0, 11, 0);
    check_no_event(ctx);                 /* not also queued */
    pipe_poke(q[1]);
    if (!app_run_until(ctx, &L, &o.n, 2, 5000))
        case_fail("second completion not delivered to event_occurs");
    app_run_for(ctx, &L, 20);
    CHECK_RC(o.n, 2);
    check_rec(&o, 1, 12, 0);
    check_no_event(ctx);
    close_pipe(p); close_pipe(q);
    apploop_free(&L);
    libxl_ctx_free(ctx);
    case_end();
}

static void case_progress_still_queued(xentoollog_logger *lg)
{
    case_begin("progress_events_outside_mask_still_queue");
    libxl_ctx *ctx = test_ctx(lg);
    apploop L = { 0 };
    occ o;
    occ_init(&o, ctx);
    register_mask(ctx, &o, OPCOMPLETE_MASK);
    libxl_asyncprogress_how aop = { .callback = NULL, .for_event = 77 };
    libxl_asyncop_how h = ev_how(78);
    CHECK_RC(libxl_test_progress(ctx, 3, 10, &aop, &h), 0);
    for (int i = 0; i < 3; i++) {
        libxl_event *ev = NULL;
        int rc = libxl_event_wait(ctx, &ev, PROGRESS_MASK, NULL, NULL);
        CHECK_RC(rc, 0);
        if (rc) break;
        CHECK_RC(ev->type, LIBXL_EVENT_TYPE_DOMAIN_CREATE_CONSOLE_AVAILABLE);
        CHECK_RC(ev->for_user, 77);
        libxl_event_free(ctx, ev);
    }
    if (!app_run_until(ctx, &L, &o.n, 1, 5000))
        case_fail("completion not delivered to event_occurs");
    app_run_for(ctx, &L, 30);
    CHECK_RC(o.n, 1);                    /* only the completion, once */
    check_rec(&o, 0, 78, 0);
    check_no_event(ctx);
    apploop_free(&L);
    libxl_ctx_free(ctx);
    case_end();
}

static void case_reentrant(xentoollog_logger *lg)
{
    case_begin("event_occurs_starts_another_op");
    libxl_ctx *ctx = test_ctx(lg);
    apploop L = { 0 };
    occ o;
    occ_init(&o, ctx);
    int p[2], q[2];
    test_pipe(p); test_pipe(q);
    o.trigger_fu = 21;
    o.start_fd = q[0];
    o.start_fu = 22;
    register_mask(ctx, &o, OPCOMPLETE_MASK);
    libxl_asyncop_how h = ev_how(21);
    CHECK_RC(libxl_test_fdevent(ctx, p[0], POLLIN, &h), 0);
    pipe_poke(p[1]);
    if (!app_run_until(ctx, &L, &o.n, 1, 5000))
        case_fail("first completion not delivered to event_occurs");
    CHECK(o.started);
    CHECK_RC(o.start_rc, 0);
    app_run_for(ctx, &L, 30);
    CHECK_RC(o.n, 1);                    /* inner op waits for its pipe */
    pipe_poke(q[1]);
    if (!app_run_until(ctx, &L, &o.n, 2, 5000))
        case_fail("op started inside event_occurs never completed");
    app_run_for(ctx, &L, 20);
    CHECK_RC(o.n, 2);
    check_rec(&o, 0, 21, 0);
    check_rec(&o, 1, 22, 0);
    check_no_event(ctx);
    close_pipe(p); close_pipe(q);
    apploop_free(&L);
    libxl_ctx_free(ctx);
    case_end();
}

/* Drives one for_event op to completion and checks it was queued (and
 * retrieved with libxl_event_wait), not given to event_occurs. */
static void expect_queued_completion(libxl_ctx *ctx, occ *o, uint64_t fu)
{
    int p[2];
    test_pipe(p);
    int n0 = o->n;
    libxl_asyncop_how h = ev_how(fu);
    CHECK_RC(libxl_test_fdevent(ctx, p[0], POLLIN, &h), 0);
    pipe_poke(p[1]);
    libxl_event *ev = NULL;
    int rc = libxl_event_wait(ctx, &ev, OPCOMPLETE_MASK, NULL, NULL);
    CHECK_RC(rc, 0);
    if (!rc) {
        CHECK_RC(ev->type, LIBXL_EVENT_TYPE_OPERATION_COMPLETE);
        CHECK_RC(ev->for_user, fu);
        CHECK_RC(ev->u.operation_complete.rc, 0);
        libxl_event_free(ctx, ev);
    }
    CHECK_RC(o->n, n0);
    close_pipe(p);
}

/* Drives one for_event op to completion and checks it reached
 * event_occurs (and not the queue). */
static void expect_hooked_completion(libxl_ctx *ctx, apploop *L, occ *o, uint64_t fu)
{
    int p[2];
    test_pipe(p);
    int n0 = o->n;
    libxl_asyncop_how h = ev_how(fu);
    CHECK_RC(libxl_test_fdevent(ctx, p[0], POLLIN, &h), 0);
    pipe_poke(p[1]);
    if (!app_run_until(ctx, L, &o->n, n0 + 1, 5000))
        case_fail("completion %llu not delivered to event_occurs", (unsigned long long)fu);
    app_run_for(ctx, L, 20);
    CHECK_RC(o->n, n0 + 1);
    check_rec(o, n0, fu, 0);
    check_no_event(ctx);
    close_pipe(p);
}

static void case_reregister_mask0(xentoollog_logger *lg)
{
    case_begin("reregister_mask0_completions_queue_again");
    libxl_ctx *ctx = test_ctx(lg);
    apploop L = { 0 };
    occ o;
    occ_init(&o, ctx);
    register_mask(ctx, &o, OPCOMPLETE_MASK);
    expect_hooked_completion(ctx, &L, &o, 31);
    register_mask(ctx, &o, 0);
    expect_queued_completion(ctx, &o, 32);
    register_mask(ctx, &o, OPCOMPLETE_MASK);  /* last registration wins */
    expect_hooked_completion(ctx, &L, &o, 33);
    CHECK_RC(o.n, 2);
    apploop_free(&L);
    libxl_ctx_free(ctx);
    case_end();
}

static void case_null_clears(xentoollog_logger *lg)
{
    case_begin("null_hooks_clear_registration");
    libxl_ctx *ctx = test_ctx(lg);
    apploop L = { 0 };
    occ o;
    occ_init(&o, ctx);
    register_mask(ctx, &o, OPCOMPLETE_MASK);
    expect_hooked_completion(ctx, &L, &o, 41);
    libxl_event_register_callbacks(ctx, NULL, NULL);
    expect_queued_completion(ctx, &o, 42);
    CHECK_RC(o.n, 1);
    apploop_free(&L);
    libxl_ctx_free(ctx);
    case_end();
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
