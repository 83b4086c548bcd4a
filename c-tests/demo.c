/*
 * demo.c - `make demo`: one asynchronous operation completing in each of
 * libxl's styles, with readable output.
 *
 * The operation is libxl_test_fdevent: "complete when this fd is
 * readable". Each scenario makes a pipe, starts the operation, writes the
 * pipe a little later (from another thread), and shows how the completion
 * reaches the program:
 *   1. synchronous        (ao_how == NULL: the call blocks)
 *   2. callback           (ao_how->callback, driven by libxl_event_wait)
 *   3. for_event          (an OPERATION_COMPLETE event from libxl_event_wait)
 *   4. application loop   (beforepoll / poll / afterpoll / event_check)
 *   5. progress reports   (libxl_test_progress, events then completion)
 *   6. abort              (libxl_ao_abort on a pending operation)
 *   7. osevent hooks      (the application's own poll() loop: c-tests/hookloop.h)
 *   8. child process      (libxl_test_childproc runs a command, gets its status)
 * Exit status 0 if every scenario behaved as described.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <libxl.h>
#include <libxl_event.h>
#include <libxl_test_fdevent.h>
#include <libxl_test_progress.h>
#include <libxl_test_childproc.h>
#include <sys/wait.h>
#include <xentoollog.h>

#include "hookloop.h"

static int failures;
static struct timespec t0;

static double ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0.tv_sec) * 1e3 + (t.tv_nsec - t0.tv_nsec) / 1e6;
}

#define SAY(...) do { printf("  [%7.1f ms] ", ms()); printf(__VA_ARGS__); printf("\n"); fflush(stdout); } while (0)
#define EXPECT(cond, what) do { if (cond) SAY("ok: %s", what); \
        else { SAY("UNEXPECTED: %s", what); failures++; } } while (0)

struct poke { int fd; int delay_ms; };

static void *poker(void *arg)
{
    struct poke *p = arg;
    usleep(p->delay_ms * 1000);
    SAY("(another thread writes the pipe)");
    if (write(p->fd, "x", 1) != 1) abort();
    return NULL;
}

static pthread_t poke_later(struct poke *p, int fd, int delay_ms)
{
    pthread_t t;
    p->fd = fd;
    p->delay_ms = delay_ms;
    pthread_create(&t, NULL, poker, p);
    return t;
}

static int done_rc = 12345;
static void on_done(libxl_ctx *ctx, int rc, void *for_callback)
{
    (void)ctx;
    SAY("completion callback: rc=%d for_callback=\"%s\"", rc, (const char *)for_callback);
    done_rc = rc;
}

int main(void)
{
    clock_gettime(CLOCK_MONOTONIC, &t0);
    xentoollog_logger *lg =
        (xentoollog_logger *)xtl_createlogger_stdiostream(stderr, XTL_ERROR, 0);
    libxl_ctx *ctx;
    int rc = libxl_ctx_alloc(&ctx, LIBXL_VERSION, 0, lg);
    if (rc) { printf("libxl_ctx_alloc failed: %d\n", rc); return 1; }
    printf("libxenlight event-core demo (ctx %p)\n", (void *)ctx);

    int p[2];
    struct poke pk;
    pthread_t t;
    libxl_event *ev;

    printf("\n1. synchronous: libxl_test_fdevent(ctx, fd, POLLIN, NULL) blocks\n");
    if (pipe2(p, O_CLOEXEC)) return 1;
    t = poke_later(&pk, p[1], 100);
    rc = libxl_test_fdevent(ctx, p[0], POLLIN, NULL);
    SAY("returned rc=%d", rc);
    EXPECT(rc == 0, "the call returned 0 once the fd was readable");
    pthread_join(t, NULL); close(p[0]); close(p[1]);

    printf("\n2. callback: ao_how.callback runs when the operation completes\n");
    if (pipe2(p, O_CLOEXEC)) return 1;
    libxl_asyncop_how how_cb = { .callback = on_done, .u.for_callback = "scenario 2" };
    rc = libxl_test_fdevent(ctx, p[0], POLLIN, &how_cb);
    SAY("initiator returned rc=%d (operation in progress)", rc);
    t = poke_later(&pk, p[1], 100);
    /* Nothing is queued for callback ops; run the loop by waiting for an
     * event that the next scenario's completion will provide. */
    libxl_asyncop_how how_ev = { .callback = NULL, .u.for_event = 3 };
    int p3[2];
    if (pipe2(p3, O_CLOEXEC)) return 1;
    pthread_join(t, NULL);
    if (write(p3[1], "x", 1) != 1) return 1;
    rc = libxl_test_fdevent(ctx, p3[0], POLLIN, &how_ev);
    rc = libxl_event_wait(ctx, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL);
    EXPECT(done_rc == 0, "the callback ran with rc=0 while the program waited in libxl_event_wait");

    printf("\n3. for_event: an OPERATION_COMPLETE event\n");
    SAY("libxl_event_wait returned rc=%d: type=%s for_user=%llu rc=%d", rc,
        libxl_event_type_to_string(ev->type), (unsigned long long)ev->for_user,
        ev->u.operation_complete.rc);
    EXPECT(rc == 0 && ev->type == LIBXL_EVENT_TYPE_OPERATION_COMPLETE && ev->for_user == 3,
           "event carries for_user=3 and the operation's rc");
    libxl_event_free(ctx, ev);
    close(p[0]); close(p[1]); close(p3[0]); close(p3[1]);

    printf("\n4. application loop: beforepoll / poll / afterpoll / event_check\n");
    if (pipe2(p, O_CLOEXEC)) return 1;
    how_ev.u.for_event = 4;
    libxl_test_fdevent(ctx, p[0], POLLIN, &how_ev);
    t = poke_later(&pk, p[1], 100);
    struct pollfd *fds = NULL;
    int got = 0, rounds = 0;
    while (!got && rounds < 100) {
        int nfds = 0, timeout = -1;
        struct timeval now;
        gettimeofday(&now, NULL);
        rc = libxl_osevent_beforepoll(ctx, &nfds, NULL, &timeout, now);
        fds = realloc(fds, sizeof(*fds) * nfds);
        rc = libxl_osevent_beforepoll(ctx, &nfds, fds, &timeout, now);
        if (rounds == 0) SAY("beforepoll: libxl wants %d fd(s), timeout %d", nfds, timeout);
        poll(fds, nfds, timeout);
        gettimeofday(&now, NULL);
        libxl_osevent_afterpoll(ctx, nfds, fds, now);
        rounds++;
        while (libxl_event_check(ctx, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL) == 0) {
            SAY("event_check: type=%s for_user=%llu rc=%d (after %d poll round(s))",
                libxl_event_type_to_string(ev->type), (unsigned long long)ev->for_user,
                ev->u.operation_complete.rc, rounds);
            got = ev->for_user == 4;
            libxl_event_free(ctx, ev);
        }
    }
    free(fds);
    EXPECT(got, "the completion arrived through the application's own poll loop");
    pthread_join(t, NULL); close(p[0]); close(p[1]);

    printf("\n5. progress: 3 reports 50 ms apart, then completion\n");
    libxl_asyncprogress_how aop = { .callback = NULL, .for_event = 50 };
    how_ev.u.for_event = 5;
    libxl_test_progress(ctx, 3, 50, &aop, &how_ev);
    int reports = 0, complete = 0;
    while (!complete) {
        libxl_event_wait(ctx, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL);
        SAY("event: type=%s for_user=%llu", libxl_event_type_to_string(ev->type),
            (unsigned long long)ev->for_user);
        if (ev->type == LIBXL_EVENT_TYPE_DOMAIN_CREATE_CONSOLE_AVAILABLE) reports++;
        else complete = 1;
        libxl_event_free(ctx, ev);
    }
    EXPECT(reports == 3, "three progress events before the completion");

    printf("\n6. abort: libxl_ao_abort on an operation that would never finish\n");
    if (pipe2(p, O_CLOEXEC)) return 1;
    how_ev.u.for_event = 6;
    libxl_test_fdevent(ctx, p[0], POLLIN, &how_ev);
    rc = libxl_ao_abort(ctx, &how_ev);
    SAY("libxl_ao_abort returned %d", rc);
    libxl_event_wait(ctx, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL);
    SAY("event: for_user=%llu rc=%d", (unsigned long long)ev->for_user, ev->u.operation_complete.rc);
    EXPECT(ev->u.operation_complete.rc == ERROR_ABORTED, "completed with ERROR_ABORTED");
    libxl_event_free(ctx, ev);
    close(p[0]); close(p[1]);

    printf("\n7. osevent hooks: libxl registers its fds in the application's own loop\n");
    hookloop L;
    hookloop_init(&L);
    libxl_ctx *hctx;
    if (libxl_ctx_alloc(&hctx, LIBXL_VERSION, 0, lg)) return 1;
    hookloop_attach(hctx, &L);
    if (pipe2(p, O_CLOEXEC)) return 1;
    how_ev.u.for_event = 7;
    libxl_test_fdevent(hctx, p[0], POLLIN, &how_ev);
    SAY("the application's registry now holds libxl's fd %d", p[0]);
    t = poke_later(&pk, p[1], 100);
    got = 0;
    for (rounds = 0; !got && rounds < 100; rounds++) {
        hookloop_run_once(hctx, &L, 1000);
        if (libxl_event_check(hctx, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL) == 0) {
            SAY("event_check: type=%s for_user=%llu rc=%d", libxl_event_type_to_string(ev->type),
                (unsigned long long)ev->for_user, ev->u.operation_complete.rc);
            got = ev->for_user == 7;
            libxl_event_free(hctx, ev);
        }
    }
    EXPECT(got, "the loop reported the fd with libxl_osevent_occurred_fd and the op completed");
    pthread_join(t, NULL); close(p[0]); close(p[1]);
    libxl_ctx_free(hctx);
    hookloop_destroy(&L);

    printf("\n8. child process: libxl_test_childproc runs a command and reaps it\n");
    const char *const argv8[] = { "sh", "-c", "exit 3", NULL };
    int status = -1;
    rc = libxl_test_childproc(ctx, argv8, 5000, &status, NULL);
    SAY("returned rc=%d, child exit status %d", rc, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    EXPECT(rc == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 3, "the command's exit status came back");

    libxl_ctx_free(ctx);
    xtl_logger_destroy(lg);
    printf("\n%s\n", failures ? "demo: SOMETHING UNEXPECTED HAPPENED" : "demo: all scenarios behaved as described");
    return failures ? 1 : 0;
}
