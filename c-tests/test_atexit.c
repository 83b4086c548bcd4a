/*
 * test_atexit.c - a ctx used and freed from an exit handler.
 *
 * xl frees its ctx in an atexit handler. glibc runs the main thread's
 * thread-local destructors before the atexit handlers, so by then the
 * library may not rely on any thread-local of that thread: entering it,
 * deferring work (an operation's completion), logging and freeing the ctx
 * must all work without them.
 *
 * Success: the exit handler's case PASSes and the program exits 0.
 * Failure: a FAIL line, or a crash/abort in the handler (the library
 * touching a destroyed thread-local panics, and no panic may cross into
 * C: the process aborts).
 */
#include "harness.h"

#include <libxl_test_fdevent.h>

#define FOR_EVENT 0xa7

static libxl_ctx *ctx;
static xentoollog_logger *lg;
static int calls;

static void op_done(libxl_ctx *c, int rc, void *for_callback)
{
    (void)c;
    if (rc == 0) (*(int *)for_callback)++;
}

static void at_exit(void)
{
    case_begin("ctx_used_and_freed_from_an_exit_handler");
    int p[2];
    test_pipe(p);
    pipe_poke(p[1]);
    /* synchronous: a poller, the baton, the egc's deferred work */
    CHECK_RC(libxl_test_fdevent(ctx, p[0], POLLIN, NULL), 0);
    /* for_event: a queued event, taken by libxl_event_wait */
    libxl_asyncop_how ev_how = { .callback = NULL, .u.for_event = FOR_EVENT };
    CHECK_RC(libxl_test_fdevent(ctx, p[0], POLLIN, &ev_how), 0);
    libxl_event *ev = NULL;
    CHECK_RC(libxl_event_wait(ctx, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL), 0);
    if (ev) {
        CHECK(ev->for_user == FOR_EVENT);
        libxl_event_free(ctx, ev);
    }
    /* callback: the completion is an application call made after unlock */
    libxl_asyncop_how cb_how = { .callback = op_done, .u.for_callback = &calls };
    CHECK_RC(libxl_test_fdevent(ctx, p[0], POLLIN, &cb_how), 0);
    for (int i = 0; i < 100 && !calls; i++) {
        libxl_event *e = NULL;
        if (libxl_event_check(ctx, &e, LIBXL_EVENTMASK_ALL, NULL, NULL) == 0) libxl_event_free(ctx, e);
        /* the callback comes from the thread dispatching: run the loop */
        int nfds = 16, timeout = 10;
        struct pollfd fds[16];
        struct timeval now = tv_now();
        if (libxl_osevent_beforepoll(ctx, &nfds, fds, &timeout, now) == 0) {
            poll(fds, nfds, timeout);
            libxl_osevent_afterpoll(ctx, nfds, fds, tv_now());
        }
    }
    CHECK(calls == 1);
    CHECK_RC(libxl_ctx_free(ctx), 0);
    xtl_logger_destroy(lg);
    close(p[0]);
    close(p[1]);
    case_end();
    fflush(stdout);
    _exit(h_finish());
}

int main(void)
{
    watchdog(30);
    lg = test_logger();
    ctx = test_ctx(lg);
    /* Use the library on this thread first, so that whatever
     * thread-locals it has here exist, and are destroyed at exit. */
    int p[2];
    test_pipe(p);
    pipe_poke(p[1]);
    if (libxl_test_fdevent(ctx, p[0], POLLIN, NULL) != 0) {
        printf("FAIL setup: first operation\n");
        return 1;
    }
    close(p[0]);
    close(p[1]);
    atexit(at_exit);
    return 0;
}
