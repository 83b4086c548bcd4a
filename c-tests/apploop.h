/*
 * apploop.h - an application poll loop and event helpers shared by the C
 * tests that drive libxl through libxl_osevent_beforepoll/afterpoll
 * (test_abort.c, test_ao_modes.c, test_event_hooks.c, test_progress.c,
 * test_childproc.c).
 *
 * The loop: libxl_osevent_beforepoll -> poll -> libxl_osevent_afterpoll,
 * growing the pollfd array on ERROR_BUFFERFULL; libxl_event_check after a
 * round picks up what it completed.  Failures are reported with
 * case_fail (harness.h) against the current case.
 */
#ifndef XL_TEST_APPLOOP_H
#define XL_TEST_APPLOOP_H

#include "harness.h"

#include <stdint.h>
#include <libxl_test_fdevent.h>

#define OPCOMPLETE_MASK (1UL << LIBXL_EVENT_TYPE_OPERATION_COMPLETE)
#define PROGRESS_MASK (1UL << LIBXL_EVENT_TYPE_DOMAIN_CREATE_CONSOLE_AVAILABLE)

/*---------- application poll loop ----------*/

typedef struct {
    struct pollfd *fds;
    int nalloc;
    int grew;          /* times ERROR_BUFFERFULL made us grow fds */
} apploop;

static __attribute__((unused)) void apploop_free(apploop *L)
{
    free(L->fds);
    L->fds = NULL;
    L->nalloc = 0;
}

/* One beforepoll -> poll -> afterpoll round, poll waiting at most
 * max_ms, with the application's own fd app_fd (if >= 0) polled for
 * POLLIN in the same poll (e.g. its SIGCHLD self-pipe); *app_ready (if
 * not NULL) says whether it was readable.  Returns 0 or a libxl error. */
static __attribute__((unused)) int app_iter_with(libxl_ctx *ctx, apploop *L, int max_ms,
                                                 int app_fd, int *app_ready)
{
    int nfds, timeout, rc;
    int extra = app_fd >= 0;      /* slot 0 is the application's fd */
    if (app_ready) *app_ready = 0;
    for (;;) {
        nfds = L->nalloc > extra ? L->nalloc - extra : 0;
        timeout = max_ms;
        rc = libxl_osevent_beforepoll(ctx, &nfds, L->fds ? L->fds + extra : NULL,
                                      &timeout, tv_now());
        if (rc == ERROR_BUFFERFULL) {
            if (nfds + extra <= L->nalloc) {
                case_fail("beforepoll: ERROR_BUFFERFULL but needs %d <= %d slots",
                          nfds, L->nalloc - extra);
                return ERROR_FAIL;
            }
            struct pollfd *n = realloc(L->fds, (nfds + extra) * sizeof(*n));
            if (!n) { perror("realloc"); exit(1); }
            L->fds = n;
            L->nalloc = nfds + extra;
            L->grew++;
            continue;
        }
        if (rc) {
            case_fail("libxl_osevent_beforepoll rc=%d", rc);
            return rc;
        }
        break;
    }
    if (extra) {
        L->fds[0].fd = app_fd;
        L->fds[0].events = POLLIN;
        L->fds[0].revents = 0;
    }
    if (timeout > max_ms || timeout < 0)
        timeout = max_ms; /* libxl may only reduce it; be safe anyway */
    if (poll(L->fds, nfds + extra, timeout) < 0 && errno != EINTR) {
        case_fail("poll: %s", strerror(errno));
        return ERROR_FAIL;
    }
    libxl_osevent_afterpoll(ctx, nfds, L->fds + extra, tv_now());
    if (extra && app_ready) *app_ready = L->fds[0].revents != 0;
    return 0;
}

/* One beforepoll -> poll -> afterpoll round, poll waiting at most
 * max_ms. Returns 0 or a libxl error. */
static __attribute__((unused)) int app_iter(libxl_ctx *ctx, apploop *L, int max_ms)
{
    return app_iter_with(ctx, L, max_ms, -1, NULL);
}

/* Runs the application loop for about ms milliseconds. */
static __attribute__((unused)) void app_run_for(libxl_ctx *ctx, apploop *L, int ms)
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
static __attribute__((unused)) int app_run_until(libxl_ctx *ctx, apploop *L,
                                                 volatile int *counter,
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
static __attribute__((unused)) int app_wait_event(libxl_ctx *ctx, apploop *L,
                                                  libxl_event **ev_r, uint64_t mask,
                                                  libxl_event_predicate *pred,
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

/*---------- cases ----------*/

/* Starts case `name` on a fresh ctx (see app_case_end). */
static __attribute__((unused)) libxl_ctx *app_case(const char *name,
                                                   xentoollog_logger *lg)
{
    case_begin(name);
    return test_ctx(lg);
}

/* Ends the case: frees L's pollfds (L may be NULL) and the ctx. */
static __attribute__((unused)) void app_case_end(libxl_ctx *ctx, apploop *L)
{
    if (L)
        apploop_free(L);
    libxl_ctx_free(ctx);
    case_end();
}

/*---------- ao_how and events ----------*/

/* An ao_how asking for an OPERATION_COMPLETE event with for_user fu. */
static __attribute__((unused)) libxl_asyncop_how ev_how(uint64_t fu)
{
    libxl_asyncop_how h = { .callback = NULL };
    h.u.for_event = fu;
    return h;
}

/* An ao_how asking for callback(ctx, rc, for_callback). */
static __attribute__((unused)) libxl_asyncop_how
cb_how(void (*callback)(libxl_ctx *, int, void *), void *for_callback)
{
    libxl_asyncop_how h = { .callback = callback };
    h.u.for_callback = for_callback;
    return h;
}

/* Opens pipe p and starts a for_event libxl_test_fdevent op (for_user
 * fu) that completes once p[0] is readable. */
static __attribute__((unused)) void start_pipe_op(libxl_ctx *ctx, int p[2], uint64_t fu)
{
    test_pipe(p);
    libxl_asyncop_how h = ev_how(fu);
    CHECK_RC(libxl_test_fdevent(ctx, p[0], POLLIN, &h), 0);
}

static __attribute__((unused)) int pred_for_user(const libxl_event *ev, void *u)
{
    return ev->for_user == *(const uint64_t *)u;
}

/* Checks ev is an OPERATION_COMPLETE for for_user with want_rc, domid 0;
 * frees it. */
static __attribute__((unused)) void check_complete(libxl_ctx *ctx, libxl_event *ev,
                                                   uint64_t for_user, int want_rc)
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
static __attribute__((unused)) void check_no_event(libxl_ctx *ctx)
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

/* Takes n progress events (DOMAIN_CREATE_CONSOLE_AVAILABLE, for_user fu)
 * off the queue, with libxl_event_wait if `wait`, else with
 * libxl_event_check (no IO: they must be queued already). */
static __attribute__((unused)) void expect_progress_events(libxl_ctx *ctx, int n,
                                                           uint64_t fu, int wait)
{
    for (int i = 0; i < n; i++) {
        libxl_event *ev = NULL;
        int rc = wait ? libxl_event_wait(ctx, &ev, PROGRESS_MASK, NULL, NULL)
                      : libxl_event_check(ctx, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL);
        if (rc) {
            case_fail("progress event %d of %d missing (rc %d)", i + 1, n, rc);
            break;
        }
        CHECK_RC(ev->type, LIBXL_EVENT_TYPE_DOMAIN_CREATE_CONSOLE_AVAILABLE);
        CHECK_RC(ev->for_user, fu);
        libxl_event_free(ctx, ev);
    }
}

static __attribute__((unused)) void close_pipe(int p[2])
{
    close(p[0]);
    close(p[1]);
}

/*---------- completion callback bookkeeping ----------*/

typedef struct {
    volatile int calls;
    int rc;
    void *for_callback;
    int poke_fd;       /* >= 0: rec_cb pokes this pipe when called */
} cbrec;

static __attribute__((unused)) void cbrec_init(cbrec *r)
{
    memset(r, 0, sizeof(*r));
    r->rc = 12345;
    r->poke_fd = -1;
}

/* Completion callback recording its calls into the cbrec for_callback. */
static __attribute__((unused)) void rec_cb(libxl_ctx *ctx, int rc, void *for_callback)
{
    (void)ctx;
    cbrec *r = for_callback;
    r->calls++;
    r->rc = rc;
    r->for_callback = for_callback;
    if (r->poke_fd >= 0)
        pipe_poke(r->poke_fd);
}

#endif /* XL_TEST_APPLOOP_H */
