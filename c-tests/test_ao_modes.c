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
#include "apploop.h"

#include <pthread.h>
#include <libxl_test_fdevent.h>

/*---------- helpers ----------*/

/* For the re-entrancy case: a callback record that starts an op. */
typedef struct {
    cbrec rec;
    int start_fd;
    uint64_t start_for_event;
    int start_rc;
} starter;

/* Completion callback that starts another (for_event) op. */
static void starter_cb(libxl_ctx *ctx, int rc, void *for_callback)
{
    starter *st = for_callback;
    rec_cb(ctx, rc, &st->rec);
    libxl_asyncop_how how = ev_how(st->start_for_event);
    st->start_rc = libxl_test_fdevent(ctx, st->start_fd, POLLIN, &how);
}

/* Takes the next event of any type with libxl_event_wait: it must be the
 * successful completion of for_user fu. */
static void wait_next_completion(libxl_ctx *ctx, uint64_t fu)
{
    libxl_event *ev = NULL;
    int rc = libxl_event_wait(ctx, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL);
    CHECK_RC(rc, 0);
    if (!rc) check_complete(ctx, ev, fu, 0);
}

/*---------- synchronous mode ----------*/

static void case_sync_ready(xentoollog_logger *lg)
{
    libxl_ctx *ctx = app_case("sync_already_readable", lg);
    int p[2];
    test_pipe(p);
    pipe_poke(p[1]);
    double t0 = now_ms();
    CHECK_RC(libxl_test_fdevent(ctx, p[0], POLLIN, NULL), 0);
    CHECK_PROMPT(t0, "a synchronous op on a readable pipe");
    check_no_event(ctx); /* a synchronous op reports no event */
    close_pipe(p);
    app_case_end(ctx, NULL);
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
    libxl_ctx *ctx = app_case("sync_made_readable_by_thread", lg);
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
    CHECK_PROMPT(t0 + 50, "the synchronous op's return after its pipe was written");
    close_pipe(p);
    app_case_end(ctx, NULL);
}

/*---------- callback mode ----------*/

/* Driven by libxl_event_wait: the callback pokes a second pipe watched by
 * a for_event op, whose completion event ends the wait. */
static void case_callback_event_wait(xentoollog_logger *lg)
{
    libxl_ctx *ctx = app_case("callback_event_wait", lg);
    int a[2], s[2], b[2];
    test_pipe(a); test_pipe(s);
    cbrec r;
    cbrec_init(&r);
    r.poke_fd = s[1];

    libxl_asyncop_how how = cb_how(rec_cb, &r);
    CHECK_RC(libxl_test_fdevent(ctx, a[0], POLLIN, &how), 0);
    CHECK_RC(r.calls, 0);

    /* sentinel S: completes when the callback has run */
    libxl_asyncop_how hs = ev_how(501);
    CHECK_RC(libxl_test_fdevent(ctx, s[0], POLLIN, &hs), 0);

    /* B: lets event_wait run while A is not ready */
    start_pipe_op(ctx, b, 502);
    pipe_poke(b[1]);
    libxl_event *ev = NULL;
    uint64_t fu = 502;
    CHECK_RC(libxl_event_wait(ctx, &ev, OPCOMPLETE_MASK, pred_for_user, &fu), 0);
    check_complete(ctx, ev, 502, 0);
    if (r.calls != 0) case_fail("callback called (%d times) before its pipe was written", r.calls);

    double t0 = now_ms();
    pipe_poke(a[1]);
    fu = 501;
    ev = NULL;
    CHECK_RC(libxl_event_wait(ctx, &ev, OPCOMPLETE_MASK, pred_for_user, &fu), 0);
    CHECK_PROMPT(t0, "the callback and the sentinel's completion after the pipe was written");
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
    libxl_ctx *ctx = app_case("callback_app_poll_loop", lg);
    apploop L = { 0 };
    int a[2];
    test_pipe(a);
    cbrec r;
    cbrec_init(&r);
    libxl_asyncop_how how = cb_how(rec_cb, &r);
    CHECK_RC(libxl_test_fdevent(ctx, a[0], POLLIN, &how), 0);

    app_run_for(ctx, &L, 60);
    if (r.calls != 0) case_fail("callback called (%d times) before its pipe was written", r.calls);
    if (L.grew < 1) case_fail("beforepoll never reported ERROR_BUFFERFULL with 0 slots while an fd op is pending");

    double t0 = now_ms();
    pipe_poke(a[1]);
    if (!app_run_until(ctx, &L, &r.calls, 1, 5000))
        case_fail("callback not called within 5 s after the pipe was written");
    CHECK_PROMPT(t0, "the callback through the application's loop");
    app_run_for(ctx, &L, 30);
    CHECK_RC(r.calls, 1);
    CHECK_RC(r.rc, 0);
    CHECK(r.for_callback == &r);
    check_no_event(ctx);

    close_pipe(a);
    app_case_end(ctx, &L);
}

/*---------- for_event mode ----------*/

static void case_for_event_event_wait(xentoollog_logger *lg)
{
    libxl_ctx *ctx = app_case("for_event_event_wait", lg);
    int a[2], b[2];
    const uint64_t FU = 0x1234567890abULL;
    start_pipe_op(ctx, a, FU);
    check_no_event(ctx);

    /* let event_wait run a while with A not ready: another op completes */
    start_pipe_op(ctx, b, 7);
    pipe_poke(b[1]);
    wait_next_completion(ctx, 7); /* the first event must be B's, not A's */
    check_no_event(ctx);

    double t0 = now_ms();
    pipe_poke(a[1]);
    wait_next_completion(ctx, FU);
    CHECK_PROMPT(t0, "libxl_event_wait returning the completion");
    check_no_event(ctx); /* delivered exactly once */

    close_pipe(a); close_pipe(b);
    app_case_end(ctx, NULL);
}

static void case_for_event_apploop(xentoollog_logger *lg)
{
    libxl_ctx *ctx = app_case("for_event_app_poll_loop", lg);
    apploop L = { 0 };
    int a[2];
    start_pipe_op(ctx, a, 4242);

    app_run_for(ctx, &L, 60);
    check_no_event(ctx); /* not ready yet: no completion */
    if (L.grew < 1) case_fail("beforepoll never reported ERROR_BUFFERFULL with 0 slots while an fd op is pending");

    double t0 = now_ms();
    pipe_poke(a[1]);
    libxl_event *ev = NULL;
    int rc = app_wait_event(ctx, &L, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL, 5000);
    CHECK_RC(rc, 0);
    CHECK_PROMPT(t0, "the completion through the application's loop");
    if (!rc) check_complete(ctx, ev, 4242, 0);
    app_run_for(ctx, &L, 30);
    check_no_event(ctx);

    close_pipe(a);
    app_case_end(ctx, &L);
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

/* Starts NCONC for_event ops, for_user base + i waiting for POLLIN on a
 * new pipe p[i]; order is set to a random permutation of 0..NCONC-1. */
static void start_concurrent(libxl_ctx *ctx, int p[NCONC][2], int order[NCONC],
                             uint64_t base)
{
    for (int i = 0; i < NCONC; i++) {
        start_pipe_op(ctx, p[i], base + i);
        order[i] = i;
    }
    shuffle(order, NCONC);
}

/* One pipe at a time, in random order: the next event must be that
 * pipe's op. Driven by libxl_event_wait. */
static void case_concurrent_sequential(xentoollog_logger *lg, unsigned seed)
{
    libxl_ctx *ctx = app_case("concurrent_20_one_at_a_time", lg);
    int p[NCONC][2], order[NCONC];
    start_concurrent(ctx, p, order, 1000);
    check_no_event(ctx);
    for (int k = 0; k < NCONC; k++) {
        int i = order[k];
        double t0 = now_ms();
        pipe_poke(p[i][1]);
        libxl_event *ev = NULL;
        int rc = libxl_event_wait(ctx, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL);
        CHECK_RC(rc, 0);
        CHECK_PROMPT(t0, "libxl_event_wait returning the poked pipe's completion");
        if (rc) break;
        if (ev->for_user != (uint64_t)(1000 + i))
            case_fail("step %d (seed %u): poked pipe %d, got for_user %llu",
                      k, seed, i, (unsigned long long)ev->for_user);
        check_complete(ctx, ev, ev->for_user, 0);
    }
    check_no_event(ctx);
    for (int i = 0; i < NCONC; i++) close_pipe(p[i]);
    app_case_end(ctx, NULL);
}

/* All pipes written in random order at once; 20 distinct completions
 * collected through the application loop. */
static void case_concurrent_burst(xentoollog_logger *lg, unsigned seed)
{
    libxl_ctx *ctx = app_case("concurrent_20_burst", lg);
    apploop L = { 0 };
    int p[NCONC][2], order[NCONC], seen[NCONC] = { 0 };
    start_concurrent(ctx, p, order, 2000);
    app_run_for(ctx, &L, 20);
    check_no_event(ctx);
    double t0 = now_ms();
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
    CHECK_PROMPT(t0, "all 20 completions of the burst");
    app_run_for(ctx, &L, 30);
    check_no_event(ctx);
    for (int i = 0; i < NCONC; i++) CHECK_RC(seen[i], 1);
    for (int i = 0; i < NCONC; i++) close_pipe(p[i]);
    app_case_end(ctx, &L);
}

/*---------- re-entrancy from a completion callback ----------*/

static void case_start_from_callback(xentoollog_logger *lg)
{
    libxl_ctx *ctx = app_case("op_started_from_completion_callback", lg);
    apploop L = { 0 };
    int a[2], b[2];
    test_pipe(a); test_pipe(b);
    starter st;
    cbrec_init(&st.rec);
    st.start_fd = b[0];
    st.start_for_event = 31337;
    st.start_rc = 12345;
    libxl_asyncop_how how = cb_how(starter_cb, &st);
    CHECK_RC(libxl_test_fdevent(ctx, a[0], POLLIN, &how), 0);
    double t0 = now_ms();
    pipe_poke(a[1]);
    if (!app_run_until(ctx, &L, &st.rec.calls, 1, 5000))
        case_fail("first op's callback not called within 5 s");
    CHECK_PROMPT(t0, "the first op's callback");
    CHECK_RC(st.rec.rc, 0);
    CHECK_RC(st.start_rc, 0);
    /* the inner op must still be pending: its pipe is empty */
    app_run_for(ctx, &L, 30);
    check_no_event(ctx);
    t0 = now_ms();
    pipe_poke(b[1]);
    wait_next_completion(ctx, 31337);
    CHECK_PROMPT(t0, "the op started from the callback");
    check_no_event(ctx);
    CHECK_RC(st.rec.calls, 1);
    close_pipe(a); close_pipe(b);
    app_case_end(ctx, &L);
}

/*---------- POLLOUT ----------*/

static void case_pollout(xentoollog_logger *lg)
{
    libxl_ctx *ctx = app_case("pollout_write_end_immediate", lg);
    int a[2];
    test_pipe(a);
    double t0 = now_ms();
    CHECK_RC(libxl_test_fdevent(ctx, a[1], POLLOUT, NULL), 0);

    libxl_asyncop_how how = ev_how(99);
    CHECK_RC(libxl_test_fdevent(ctx, a[1], POLLOUT, &how), 0);
    wait_next_completion(ctx, 99);
    CHECK_PROMPT(t0, "two POLLOUT ops on an empty pipe");
    check_no_event(ctx);
    close_pipe(a);
    app_case_end(ctx, NULL);
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
