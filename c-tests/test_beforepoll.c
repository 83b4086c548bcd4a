/*
 * test_beforepoll.c - the application-driven event loop:
 * libxl_osevent_beforepoll / poll(2) / libxl_osevent_afterpoll /
 * libxl_event_check.
 *
 * Scenario: a fresh ctx is asked for its poll set with no space (size
 * query), then with exactly the space it asked for, then with one slot
 * too few; K fd operations are started and the set must grow by exactly
 * K (and shrink back once they finish).  A pending 1000 ms progress
 * timer must reduce *timeout_upd (only ever reduce it; an overdue timer
 * makes it 0; no timer leaves it alone), and the `now` given to
 * afterpoll decides whether a timer is due (2 s ahead fires the 1000 ms
 * timer, the real now does not; 5 s behind does not fire an overdue
 * one, the real now then does).  Finally the
 * whole loop completes an fd operation when its pipe is written, also
 * when the write comes from another thread while the main thread sleeps
 * in poll(2), and an operation started by another thread while the main
 * thread sleeps wakes that poll (libxl's wakeup fd).
 *
 * Success: every case prints PASS and the program exits 0 within a
 * couple of seconds.
 * Failure: a FAIL line naming the broken expectation (wrong return code,
 * wrong count, invalid fd in the set, timeout not reduced or changed
 * when it should not be, timer fired too early or not at all, poll not
 * woken), or the watchdog's FAIL line if something hangs.
 */
#include "harness.h"

#include <pthread.h>

#include <libxl_test_fdevent.h>
#include <libxl_test_progress.h>

#define EMASK_OPCOMPLETE (1ULL << LIBXL_EVENT_TYPE_OPERATION_COMPLETE)
#define EMASK_PROGRESS (1ULL << LIBXL_EVENT_TYPE_DOMAIN_CREATE_CONSOLE_AVAILABLE)

static libxl_ctx *ctx;

/* ---- helpers ---- */

static int is_open_fd(int fd)
{
    return fd >= 0 && fcntl(fd, F_GETFD) != -1;
}

/* Number of poll slots the library currently wants (size query). */
static int needed_slots(void)
{
    int n = 0, t = -1;
    int rc = libxl_osevent_beforepoll(ctx, &n, NULL, &t, tv_now());
    if (rc != ERROR_BUFFERFULL && rc != 0)
        return -1000 + rc;
    return n;
}

/* A complete poll set: grows the array until it fits.  *fds is malloc'd
 * (caller frees).  Returns the beforepoll rc of the final call. */
static int get_set(struct pollfd **fds, int *nfds, int *timeout,
                   struct timeval now)
{
    int cap = 4, rc;
    *fds = NULL;
    for (int tries = 0; tries < 8; tries++) {
        struct pollfd *p = realloc(*fds, sizeof(*p) * cap);
        if (!p) abort();
        *fds = p;
        int n = cap;
        rc = libxl_osevent_beforepoll(ctx, &n, *fds, timeout, now);
        if (rc == ERROR_BUFFERFULL && n > cap) { cap = n; continue; }
        *nfds = n;
        return rc;
    }
    return rc;
}

static int set_has_fd(const struct pollfd *fds, int n, int fd, short ev)
{
    for (int i = 0; i < n; i++)
        if (fds[i].fd == fd && (fds[i].events & ev) == ev)
            return 1;
    return 0;
}

static struct timeval tv_add_ms(struct timeval tv, long ms)
{
    long long us = (long long)tv.tv_sec * 1000000 + tv.tv_usec + ms * 1000LL;
    tv.tv_sec = us / 1000000;
    tv.tv_usec = us % 1000000;
    return tv;
}

/* Removes the first queued event with the given type and for_user. */
struct want { int type; uint64_t for_user; };
static int pred_want(const libxl_event *ev, void *user)
{
    const struct want *w = user;
    return (int)ev->type == w->type && ev->for_user == w->for_user;
}

/* Checks for (and frees) a queued event; returns its rc for
 * OPERATION_COMPLETE (0 for others), or 1000 if none is queued. */
static int take_event(int type, uint64_t for_user)
{
    struct want w = { type, for_user };
    libxl_event *ev = NULL;
    int rc = libxl_event_check(ctx, &ev, LIBXL_EVENTMASK_ALL, pred_want, &w);
    if (rc) return 1000;
    int r = type == LIBXL_EVENT_TYPE_OPERATION_COMPLETE
        ? ev->u.operation_complete.rc : 0;
    libxl_event_free(ctx, ev);
    return r;
}

/* Runs the loop (beforepoll/poll/afterpoll) until the completion of
 * op `for_user` is queued or `rounds` rounds passed; returns its rc or
 * 1000 if it never came.  Poll timeout per round: `ms`. */
static int loop_until_complete(uint64_t for_user, int rounds, int ms,
                               int *rounds_used)
{
    for (int r = 0; r < rounds; r++) {
        struct pollfd *fds; int n, t = ms;
        if (get_set(&fds, &n, &t, tv_now()) != 0) { free(fds); return 2000; }
        poll(fds, n, t);
        libxl_osevent_afterpoll(ctx, n, fds, tv_now());
        free(fds);
        int rc = take_event(LIBXL_EVENT_TYPE_OPERATION_COMPLETE, for_user);
        if (rc != 1000) {
            if (rounds_used) *rounds_used = r + 1;
            return rc;
        }
    }
    return 1000;
}

/* Aborts a pending for_event op and discards its completion. */
static void abort_and_reap(uint64_t for_user)
{
    libxl_asyncop_how how = { .callback = NULL, .u.for_event = for_user };
    libxl_ao_abort(ctx, &how);
    if (take_event(LIBXL_EVENT_TYPE_OPERATION_COMPLETE, for_user) == 1000)
        loop_until_complete(for_user, 5, 100, NULL);
}

static int queue_empty(void)
{
    libxl_event *ev = NULL;
    int rc = libxl_event_check(ctx, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL);
    if (rc == 0) libxl_event_free(ctx, ev);
    return rc == ERROR_NOT_READY;
}

/* ---- cases ---- */

static int base_needed;

static void case_size_query(void)
{
    case_begin("beforepoll_size_query");
    int n = 0, t = -1;
    int rc = libxl_osevent_beforepoll(ctx, &n, NULL, &t, tv_now());
    CHECK_RC(rc, ERROR_BUFFERFULL);
    CHECK(n >= 1);
    CHECK_RC(t, -1); /* nothing pending: no timeout imposed */
    /* asking twice gives the same answer */
    int n2 = 0;
    CHECK_RC(libxl_osevent_beforepoll(ctx, &n2, NULL, &t, tv_now()),
             ERROR_BUFFERFULL);
    CHECK_RC(n2, n);
    base_needed = n;
    case_end();
}

static void case_exact_fill(void)
{
    case_begin("beforepoll_exact_array_filled");
    int n = base_needed > 0 ? base_needed : 1;
    struct pollfd *fds = calloc(n + 1, sizeof(*fds));
    for (int i = 0; i <= n; i++) { fds[i].fd = -77; fds[i].events = 0; }
    int io = n, t = -1;
    int rc = libxl_osevent_beforepoll(ctx, &io, fds, &t, tv_now());
    CHECK_RC(rc, 0);
    CHECK_RC(io, n);
    for (int i = 0; i < n && i < io; i++) {
        if (!is_open_fd(fds[i].fd))
            case_fail("slot %d: fd %d is not open", i, fds[i].fd);
        if (fds[i].events == 0)
            case_fail("slot %d: fd %d has events 0", i, fds[i].fd);
    }
    CHECK(fds[n].fd == -77); /* nothing written past the space given */
    /* the set is pollable: no POLLNVAL */
    int pr = poll(fds, n, 0);
    CHECK(pr >= 0);
    for (int i = 0; i < n; i++)
        if (fds[i].revents & POLLNVAL)
            case_fail("slot %d: POLLNVAL on fd %d", i, fds[i].fd);
    libxl_osevent_afterpoll(ctx, n, fds, tv_now());
    CHECK(queue_empty());
    free(fds);
    case_end();
}

#define K 3
static void case_grows_by_k(void)
{
    int p[K][2];
    case_begin("beforepoll_grows_by_k_fds");
    int before = needed_slots();
    CHECK_RC(before, base_needed);
    for (int k = 0; k < K; k++) {
        test_pipe(p[k]);
        libxl_asyncop_how how = { .callback = NULL, .u.for_event = 100 + k };
        CHECK_RC(libxl_test_fdevent(ctx, p[k][0], POLLIN, &how), 0);
    }
    int after = needed_slots();
    CHECK_RC(after, before + K);

    struct pollfd *fds; int n, t = -1;
    CHECK_RC(get_set(&fds, &n, &t, tv_now()), 0);
    CHECK_RC(n, before + K);
    for (int k = 0; k < K; k++)
        if (!set_has_fd(fds, n, p[k][0], POLLIN))
            case_fail("pipe fd %d (op %d) not in the set with POLLIN",
                      p[k][0], k);
    for (int i = 0; i < n; i++)
        if (!is_open_fd(fds[i].fd) || !fds[i].events)
            case_fail("slot %d: bad entry fd=%d events=%#x", i, fds[i].fd,
                      fds[i].events);
    free(fds);
    case_end();

    case_begin("beforepoll_too_small_array");
    {
        int need = needed_slots();
        CHECK_RC(need, before + K);
        struct pollfd *small = calloc(need, sizeof(*small));
        int io = need - 1, tt = -1;
        CHECK_RC(libxl_osevent_beforepoll(ctx, &io, small, &tt, tv_now()),
                 ERROR_BUFFERFULL);
        CHECK_RC(io, need);
        /* and with enough space it succeeds again */
        io = need;
        CHECK_RC(libxl_osevent_beforepoll(ctx, &io, small, &tt, tv_now()), 0);
        CHECK_RC(io, need);
        free(small);
    }
    case_end();

    case_begin("beforepoll_shrinks_when_ops_finish");
    for (int k = 0; k < K; k++) pipe_poke(p[k][1]);
    int got = 0;
    for (int round = 0; round < 5 && got < K; round++) {
        struct pollfd *f2; int n2, t2 = 1000;
        if (get_set(&f2, &n2, &t2, tv_now()) != 0) { free(f2); break; }
        poll(f2, n2, t2);
        libxl_osevent_afterpoll(ctx, n2, f2, tv_now());
        free(f2);
        for (int k = 0; k < K; k++) {
            int rc = take_event(LIBXL_EVENT_TYPE_OPERATION_COMPLETE, 100 + k);
            if (rc != 1000) { CHECK_RC(rc, 0); got++; }
        }
    }
    CHECK_RC(got, K);
    CHECK_RC(needed_slots(), base_needed);
    for (int k = 0; k < K; k++) { close(p[k][0]); close(p[k][1]); }
    case_end();
}

static void case_timeout_reduction(void)
{
    case_begin("beforepoll_timeout_reduced_to_pending_timer");
    libxl_asyncop_how how = { .callback = NULL, .u.for_event = 300 };
    libxl_asyncprogress_how aop = { .callback = NULL, .for_event = 301 };
    CHECK_RC(libxl_test_progress(ctx, 1, 1000, &aop, &how), 0);
    struct pollfd *fds; int n;
    int t = -1;
    CHECK_RC(get_set(&fds, &n, &t, tv_now()), 0);
    free(fds);
    if (t < 900 || t > 1000)
        case_fail("timeout_upd -1 became %d, expected 900..1000", t);
    t = 10;
    CHECK_RC(get_set(&fds, &n, &t, tv_now()), 0);
    free(fds);
    CHECK_RC(t, 10); /* never increased */
    t = 5000;
    CHECK_RC(get_set(&fds, &n, &t, tv_now()), 0);
    free(fds);
    if (t < 900 || t > 1000)
        case_fail("timeout_upd 5000 became %d, expected 900..1000", t);
    /* a size-only query reduces it too */
    int io = 0; t = -1;
    CHECK_RC(libxl_osevent_beforepoll(ctx, &io, NULL, &t, tv_now()),
             ERROR_BUFFERFULL);
    if (t < 900 || t > 1000)
        case_fail("size query: timeout_upd -1 became %d", t);
    abort_and_reap(300);
    take_event(LIBXL_EVENT_TYPE_DOMAIN_CREATE_CONSOLE_AVAILABLE, 301);
    CHECK(queue_empty());
    case_end();

    case_begin("beforepoll_overdue_timer_gives_zero_timeout");
    how.u.for_event = 310;
    aop.for_event = 311;
    CHECK_RC(libxl_test_progress(ctx, 1, 1, &aop, &how), 0);
    usleep(20 * 1000);
    t = -1;
    CHECK_RC(get_set(&fds, &n, &t, tv_now()), 0);
    free(fds);
    CHECK_RC(t, 0);
    t = 500;
    CHECK_RC(get_set(&fds, &n, &t, tv_now()), 0);
    CHECK_RC(t, 0);
    /* a `now` 5 s in the past: the timer is not due by that clock */
    for (int i = 0; i < n; i++) fds[i].revents = 0;
    libxl_osevent_afterpoll(ctx, n, fds, tv_add_ms(tv_now(), -5000));
    free(fds);
    CHECK(queue_empty());
    /* the real now: it fires (report, then completion) */
    for (int r = 0; r < 3; r++) {
        t = -1;
        if (get_set(&fds, &n, &t, tv_now()) == 0) {
            for (int i = 0; i < n; i++) fds[i].revents = 0;
            libxl_osevent_afterpoll(ctx, n, fds, tv_now());
        }
        free(fds);
    }
    CHECK_RC(take_event(LIBXL_EVENT_TYPE_DOMAIN_CREATE_CONSOLE_AVAILABLE, 311), 0);
    int orc = take_event(LIBXL_EVENT_TYPE_OPERATION_COMPLETE, 310);
    CHECK_RC(orc, 0);
    if (orc == 1000) abort_and_reap(310);
    CHECK(queue_empty());
    case_end();

    case_begin("beforepoll_timeout_untouched_without_timers");
    t = -1;
    CHECK_RC(get_set(&fds, &n, &t, tv_now()), 0);
    free(fds);
    CHECK_RC(t, -1);
    t = 12345;
    CHECK_RC(get_set(&fds, &n, &t, tv_now()), 0);
    free(fds);
    CHECK_RC(t, 12345);
    t = 0;
    CHECK_RC(get_set(&fds, &n, &t, tv_now()), 0);
    free(fds);
    CHECK_RC(t, 0);
    case_end();
}

static void case_now_argument(void)
{
    case_begin("afterpoll_real_now_does_not_fire_future_timer");
    libxl_asyncop_how how = { .callback = NULL, .u.for_event = 400 };
    libxl_asyncprogress_how aop = { .callback = NULL, .for_event = 401 };
    CHECK_RC(libxl_test_progress(ctx, 1, 1000, &aop, &how), 0);
    struct pollfd *fds; int n, t = -1;
    CHECK_RC(get_set(&fds, &n, &t, tv_now()), 0);
    for (int i = 0; i < n; i++) fds[i].revents = 0;
    libxl_osevent_afterpoll(ctx, n, fds, tv_now());
    free(fds);
    CHECK(queue_empty());
    case_end();

    case_begin("afterpoll_future_now_fires_timer");
    t = -1;
    CHECK_RC(get_set(&fds, &n, &t, tv_now()), 0);
    for (int i = 0; i < n; i++) fds[i].revents = 0;
    double t0 = now_ms();
    libxl_osevent_afterpoll(ctx, n, fds, tv_add_ms(tv_now(), 2000));
    free(fds);
    CHECK_PROMPT(t0, "afterpoll with a future now"); /* it did not sleep till the deadline */
    CHECK_RC(take_event(LIBXL_EVENT_TYPE_DOMAIN_CREATE_CONSOLE_AVAILABLE, 401), 0);
    int rc = take_event(LIBXL_EVENT_TYPE_OPERATION_COMPLETE, 400);
    /* completion follows the (only) report; allow it a few more turns,
     * each with a `now` 2 s ahead */
    for (int r = 0; r < 3 && rc == 1000; r++) {
        t = -1;
        if (get_set(&fds, &n, &t, tv_now()) == 0) {
            for (int i = 0; i < n; i++) fds[i].revents = 0;
            libxl_osevent_afterpoll(ctx, n, fds, tv_add_ms(tv_now(), 2000));
        }
        free(fds);
        rc = take_event(LIBXL_EVENT_TYPE_OPERATION_COMPLETE, 400);
    }
    CHECK_RC(rc, 0);
    CHECK(queue_empty());
    CHECK_PROMPT(t0, "the timer op's completion through afterpoll");
    if (rc == 1000) abort_and_reap(400);
    case_end();
}

static void case_full_loop(void)
{
    case_begin("loop_completes_fd_op_when_pipe_written");
    int p[2];
    test_pipe(p);
    libxl_asyncop_how how = { .callback = NULL, .u.for_event = 500 };
    CHECK_RC(libxl_test_fdevent(ctx, p[0], POLLIN, &how), 0);
    /* not ready: a round with a short poll completes nothing */
    CHECK_RC(loop_until_complete(500, 1, 20, NULL), 1000);
    pipe_poke(p[1]);
    int used = 0;
    double t0 = now_ms();
    int rc = loop_until_complete(500, 3, 2000, &used);
    CHECK_RC(rc, 0);
    CHECK(used >= 1 && used <= 2);
    CHECK_PROMPT(t0, "the loop completing the op on a written pipe");
    if (rc == 1000) abort_and_reap(500);
    CHECK(queue_empty());
    CHECK_RC(needed_slots(), base_needed);
    close(p[0]); close(p[1]);
    case_end();
}

struct poker { int fd; int delay_ms; };
static void *poker_thread(void *arg)
{
    struct poker *pk = arg;
    usleep(pk->delay_ms * 1000);
    pipe_poke(pk->fd);
    return NULL;
}

static void case_thread_poke(void)
{
    case_begin("poll_woken_by_pipe_written_from_other_thread");
    int p[2];
    test_pipe(p);
    libxl_asyncop_how how = { .callback = NULL, .u.for_event = 600 };
    CHECK_RC(libxl_test_fdevent(ctx, p[0], POLLIN, &how), 0);
    struct pollfd *fds; int n, t = 3000;
    CHECK_RC(get_set(&fds, &n, &t, tv_now()), 0);
    CHECK(set_has_fd(fds, n, p[0], POLLIN)); /* the pipe itself is watched */
    struct poker pk = { p[1], 100 };
    pthread_t th;
    pthread_create(&th, NULL, poker_thread, &pk);
    double t0 = now_ms();
    int pr = poll(fds, n, t);
    pthread_join(th, NULL);
    CHECK(pr > 0);
    CHECK_PROMPT(t0 + 100, "the application's poll() waking for the written pipe");
    libxl_osevent_afterpoll(ctx, n, fds, tv_now());
    free(fds);
    int rc = take_event(LIBXL_EVENT_TYPE_OPERATION_COMPLETE, 600);
    if (rc == 1000) rc = loop_until_complete(600, 2, 500, NULL);
    CHECK_RC(rc, 0);
    if (rc == 1000) abort_and_reap(600);
    CHECK(queue_empty());
    close(p[0]); close(p[1]);
    case_end();
}

struct starter { int fd; int delay_ms; int rc; double started; };
static void *starter_thread(void *arg)
{
    struct starter *st = arg;
    usleep(st->delay_ms * 1000);
    libxl_asyncop_how how = { .callback = NULL, .u.for_event = 700 };
    st->started = now_ms(); /* read after the join */
    st->rc = libxl_test_fdevent(ctx, st->fd, POLLIN, &how);
    return NULL;
}

static void case_thread_new_fd(void)
{
    case_begin("poll_woken_when_other_thread_adds_fd");
    int p[2];
    test_pipe(p);
    pipe_poke(p[1]); /* already readable: the new op can complete at once */
    struct pollfd *fds; int n, t = 3000;
    CHECK_RC(get_set(&fds, &n, &t, tv_now()), 0);
    CHECK(!set_has_fd(fds, n, p[0], 0));
    struct starter st = { p[0], 100, -999, 0 };
    pthread_t th;
    pthread_create(&th, NULL, starter_thread, &st);
    int pr = poll(fds, n, t);
    double woke = now_ms();
    pthread_join(th, NULL);
    CHECK_RC(st.rc, 0);
    CHECK(pr > 0);
    if (woke - st.started > prompt_ms())
        case_fail("the application's poll() woke %.0f ms after another thread added an fd "
                  "(> %.0f ms: the app poller was not woken promptly)", woke - st.started, prompt_ms());
    libxl_osevent_afterpoll(ctx, n, fds, tv_now());
    free(fds);
    int rc = take_event(LIBXL_EVENT_TYPE_OPERATION_COMPLETE, 700);
    if (rc == 1000) rc = loop_until_complete(700, 3, 1000, NULL);
    CHECK_RC(rc, 0);
    if (rc == 1000 && st.rc == 0) abort_and_reap(700);
    CHECK(queue_empty());
    close(p[0]); close(p[1]);
    case_end();
}

int main(void)
{
    watchdog(20);
    xentoollog_logger *lg = test_logger();
    ctx = test_ctx(lg);

    case_size_query();
    case_exact_fill();
    case_grows_by_k();
    case_timeout_reduction();
    case_now_argument();
    case_full_loop();
    case_thread_poke();
    case_thread_new_fd();

    libxl_ctx_free(ctx);
    xtl_logger_destroy(lg);
    return h_finish();
}
