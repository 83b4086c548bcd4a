/*
 * test_fdderegrace.c - Xen's test_fdderegrace scenario (fd
 * deregistration racing with the application's poll), re-expressed with
 * pipes and more checks.
 *
 * Scenario A (Xen's): an fd operation registers the read end R of a
 * pipe; R appears in the set from libxl_osevent_beforepoll; the
 * operation is then aborted (libxl deregisters R; its completion,
 * ERROR_ABORTED, is queued) and R is closed - all BEFORE the
 * application polls, so poll reports POLLNVAL for R's slot.  afterpoll
 * with that result must not crash, abort, report a disaster or produce
 * any event, and the ctx keeps working: a following operation completes.
 *
 * Scenario A' is the same with the fd deregistered because the operation
 * completed (dispatched inside libxl_event_wait) instead of an abort.
 *
 * Scenario B (fd number reused): as A, but before afterpoll a NEW pipe's
 * read end is put at R's number and a new operation registers it.  The
 * stale POLLNVAL must not complete the new operation (neither with 0
 * nor with an error); it completes (rc 0) only once its pipe is really
 * written.
 *
 * Scenario C (stale readiness): R is written, poll reports POLLIN for it,
 * then the operation is aborted, R closed and its number reused by an
 * empty pipe watched by a new operation; afterpoll with the stale POLLIN
 * must not complete the new operation (libxl re-checks the fd before
 * dispatching); it completes once really written.
 *
 * Success: every case prints PASS; exit 0 in well under a second.
 * Failure: crash/abort (exit status, no FAIL line), a disaster callback,
 * a FAIL line (new op completed by a stale result, missing or extra
 * events), or the watchdog's FAIL line on a hang.
 */
#include "harness.h"

#include <libxl_test_fdevent.h>

#define T_OC LIBXL_EVENT_TYPE_OPERATION_COMPLETE

static libxl_ctx *ctx;
static int disasters;
static char disaster_msg[256];

static void on_disaster(void *user, libxl_event_type type, const char *msg,
                        int errnoval)
{
    (void)user; (void)type; (void)errnoval;
    disasters++;
    snprintf(disaster_msg, sizeof(disaster_msg), "%s", msg ? msg : "(null)");
}

static int pred_user(const libxl_event *ev, void *user)
{
    return ev->type == T_OC && ev->for_user == *(const uint64_t *)user;
}

/* Takes op for_user's completion if queued: its rc, or 1000 if none. */
static int take_completion(uint64_t for_user)
{
    libxl_event *ev = NULL;
    if (libxl_event_check(ctx, &ev, 1ULL << T_OC, pred_user, &for_user))
        return 1000;
    int rc = ev->u.operation_complete.rc;
    libxl_event_free(ctx, ev);
    return rc;
}

static int queue_empty(void)
{
    libxl_event *ev = NULL;
    int rc = libxl_event_check(ctx, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL);
    if (rc == 0) libxl_event_free(ctx, ev);
    return rc == ERROR_NOT_READY;
}

static int start_op(int fd, uint64_t for_user)
{
    libxl_asyncop_how how = { .callback = NULL, .u.for_event = for_user };
    return libxl_test_fdevent(ctx, fd, POLLIN, &how);
}

static int abort_op(uint64_t for_user)
{
    libxl_asyncop_how how = { .callback = NULL, .u.for_event = for_user };
    return libxl_ao_abort(ctx, &how);
}

/* beforepoll into fds[cap]; returns nfds or -1. */
static int before(struct pollfd *fds, int cap)
{
    int n = cap, t = -1;
    if (libxl_osevent_beforepoll(ctx, &n, fds, &t, tv_now()) != 0)
        return -1;
    return n;
}

static int slot_of(const struct pollfd *fds, int n, int fd)
{
    for (int i = 0; i < n; i++)
        if (fds[i].fd == fd) return i;
    return -1;
}

/* One plain loop turn with a short poll. */
static void loop_turn(int ms)
{
    struct pollfd fds[32];
    int n = before(fds, 32);
    if (n < 0) return;
    poll(fds, n, ms);
    libxl_osevent_afterpoll(ctx, n, fds, tv_now());
}

/* Runs loop turns until op for_user completes; rc or 1000. */
static int wait_completion(uint64_t for_user, int turns)
{
    for (int i = 0; i < turns; i++) {
        int rc = take_completion(for_user);
        if (rc != 1000) return rc;
        loop_turn(200);
    }
    return take_completion(for_user);
}

/* Puts a fresh pipe's read end at fd number `num` (which must be free);
 * returns the write end, or -1. */
static int new_pipe_at(int num, int *rfd_out)
{
    int q[2];
    test_pipe(q);
    if (q[0] != num) {
        if (dup3(q[0], num, O_CLOEXEC) != num) return -1;
        close(q[0]);
        fcntl(num, F_SETFL, O_NONBLOCK);
    }
    *rfd_out = num;
    return q[1];
}

/* Scenario A. */
static void case_nval_after_dereg(void)
{
    case_begin("pollnval_of_deregistered_closed_fd_ignored");
    int p[2];
    test_pipe(p);
    int d0 = disasters;
    CHECK_RC(start_op(p[0], 1), 0);
    struct pollfd fds[32];
    int n = before(fds, 32);
    CHECK(n > 0);
    int slot = n > 0 ? slot_of(fds, n, p[0]) : -1;
    CHECK(slot >= 0); /* the registered fd is in the set */

    CHECK_RC(abort_op(1), 0);
    int rc = take_completion(1);
    CHECK_RC(rc, ERROR_ABORTED);
    close(p[0]);

    int pr = n > 0 ? poll(fds, n, 0) : -1;
    CHECK(pr >= 1);
    if (slot >= 0 && !(fds[slot].revents & POLLNVAL))
        case_fail("test setup: poll gave revents %#x for the closed fd, "
                  "not POLLNVAL", fds[slot].revents);
    if (n > 0) libxl_osevent_afterpoll(ctx, n, fds, tv_now());
    CHECK_RC(disasters, d0);
    CHECK(queue_empty()); /* nothing reported for the stale entry */
    close(p[1]);
    case_end();

    case_begin("ctx_works_after_stale_pollnval");
    int q[2];
    test_pipe(q);
    CHECK_RC(start_op(q[0], 2), 0);
    pipe_poke(q[1]);
    CHECK_RC(wait_completion(2, 5), 0);
    /* and the synchronous path too */
    pipe_poke(q[1]);
    CHECK_RC(libxl_test_fdevent(ctx, q[0], POLLIN, NULL), 0);
    CHECK_RC(disasters, d0);
    CHECK(queue_empty());
    close(q[0]); close(q[1]);
    case_end();
}

/* Scenario A, with the fd deregistered by the operation completing
 * (dispatched by libxl_event_wait's own poller, not the application's)
 * rather than by an abort. */
static void case_nval_after_completion_elsewhere(void)
{
    case_begin("pollnval_after_op_completed_by_event_wait");
    int p[2];
    test_pipe(p);
    int d0 = disasters;
    CHECK_RC(start_op(p[0], 5), 0);
    struct pollfd fds[32];
    int n = before(fds, 32);
    int slot = n > 0 ? slot_of(fds, n, p[0]) : -1;
    CHECK(slot >= 0);
    pipe_poke(p[1]);
    uint64_t u = 5;
    libxl_event *ev = NULL;
    int rc = libxl_event_wait(ctx, &ev, 1ULL << T_OC, pred_user, &u);
    CHECK_RC(rc, 0);
    if (!rc) {
        CHECK_RC(ev->u.operation_complete.rc, 0);
        libxl_event_free(ctx, ev);
    }
    close(p[0]);
    if (n > 0) poll(fds, n, 0);
    if (slot >= 0 && !(fds[slot].revents & POLLNVAL))
        case_fail("test setup: no POLLNVAL (revents %#x)", fds[slot].revents);
    if (n > 0) libxl_osevent_afterpoll(ctx, n, fds, tv_now());
    CHECK_RC(disasters, d0);
    CHECK(queue_empty());
    close(p[1]);
    /* still working */
    int q[2];
    test_pipe(q);
    pipe_poke(q[1]);
    CHECK_RC(libxl_test_fdevent(ctx, q[0], POLLIN, NULL), 0);
    close(q[0]); close(q[1]);
    case_end();
}

/* Scenario B. */
static void case_reused_number_nval(void)
{
    case_begin("reused_fd_number_not_completed_by_stale_pollnval");
    int p[2];
    test_pipe(p);
    int d0 = disasters;
    int num = p[0];
    CHECK_RC(start_op(num, 10), 0);
    struct pollfd fds[32];
    int n = before(fds, 32);
    int slot = n > 0 ? slot_of(fds, n, num) : -1;
    CHECK(slot >= 0);
    CHECK_RC(abort_op(10), 0);
    CHECK_RC(take_completion(10), ERROR_ABORTED);
    close(num);
    if (n > 0) poll(fds, n, 0);
    if (slot >= 0 && !(fds[slot].revents & POLLNVAL))
        case_fail("test setup: no POLLNVAL (revents %#x)", fds[slot].revents);

    int rfd = -1;
    int wfd = new_pipe_at(num, &rfd);
    CHECK(wfd >= 0 && rfd == num);
    CHECK_RC(start_op(rfd, 11), 0);
    if (n > 0) libxl_osevent_afterpoll(ctx, n, fds, tv_now());
    int rc = take_completion(11);
    if (rc != 1000)
        case_fail("new op on the reused fd number completed (rc %d) from "
                  "the stale POLLNVAL", rc);
    CHECK_RC(disasters, d0);
    /* a normal turn (pipe still empty): still not complete */
    loop_turn(10);
    if (rc == 1000) {
        int rc2 = take_completion(11);
        if (rc2 != 1000)
            case_fail("new op completed (rc %d) with its pipe empty", rc2);
        rc = rc2;
    }
    if (rc == 1000) {
        /* really ready now: it must complete, successfully */
        if (wfd >= 0) pipe_poke(wfd);
        CHECK_RC(wait_completion(11, 5), 0);
    }
    CHECK_RC(disasters, d0);
    CHECK(queue_empty());
    close(p[1]);
    if (rfd >= 0) close(rfd);
    if (wfd >= 0) close(wfd);
    case_end();
}

/* Scenario C. */
static void case_reused_number_stale_pollin(void)
{
    case_begin("reused_fd_number_not_completed_by_stale_pollin");
    int p[2];
    test_pipe(p);
    int d0 = disasters;
    int num = p[0];
    CHECK_RC(start_op(num, 20), 0);
    struct pollfd fds[32];
    int n = before(fds, 32);
    int slot = n > 0 ? slot_of(fds, n, num) : -1;
    CHECK(slot >= 0);
    pipe_poke(p[1]);
    if (n > 0) poll(fds, n, 0);
    if (slot >= 0 && !(fds[slot].revents & POLLIN))
        case_fail("test setup: no POLLIN (revents %#x)", fds[slot].revents);
    CHECK_RC(abort_op(20), 0);
    CHECK_RC(take_completion(20), ERROR_ABORTED);
    close(num);
    close(p[1]);

    int rfd = -1;
    int wfd = new_pipe_at(num, &rfd);
    CHECK(wfd >= 0 && rfd == num);
    CHECK_RC(start_op(rfd, 21), 0);
    if (n > 0) libxl_osevent_afterpoll(ctx, n, fds, tv_now());
    int rc = take_completion(21);
    if (rc != 1000)
        case_fail("new op on the reused fd number completed (rc %d) from "
                  "the stale POLLIN although its pipe is empty", rc);
    CHECK_RC(disasters, d0);
    if (rc == 1000) {
        if (wfd >= 0) pipe_poke(wfd);
        CHECK_RC(wait_completion(21, 5), 0);
    }
    CHECK_RC(disasters, d0);
    CHECK(queue_empty());
    if (rfd >= 0) close(rfd);
    if (wfd >= 0) close(wfd);
    case_end();
}

/* Scenario B with the new pipe already readable: completing is then
 * allowed (at this afterpoll or the next turn), and must be rc 0, not an
 * error derived from the stale POLLNVAL. */
static void case_reused_number_really_ready(void)
{
    case_begin("reused_fd_number_ready_completes_ok");
    int p[2];
    test_pipe(p);
    int d0 = disasters;
    int num = p[0];
    CHECK_RC(start_op(num, 30), 0);
    struct pollfd fds[32];
    int n = before(fds, 32);
    CHECK(n > 0 && slot_of(fds, n, num) >= 0);
    CHECK_RC(abort_op(30), 0);
    CHECK_RC(take_completion(30), ERROR_ABORTED);
    close(num);
    close(p[1]);
    if (n > 0) poll(fds, n, 0);
    int rfd = -1;
    int wfd = new_pipe_at(num, &rfd);
    CHECK(wfd >= 0 && rfd == num);
    if (wfd >= 0) pipe_poke(wfd);
    CHECK_RC(start_op(rfd, 31), 0);
    if (n > 0) libxl_osevent_afterpoll(ctx, n, fds, tv_now());
    CHECK_RC(wait_completion(31, 5), 0);
    CHECK_RC(disasters, d0);
    CHECK(queue_empty());
    if (rfd >= 0) close(rfd);
    if (wfd >= 0) close(wfd);
    case_end();
}

int main(void)
{
    watchdog(20);
    xentoollog_logger *lg = test_logger();
    ctx = test_ctx(lg);
    libxl_event_hooks hooks = { .event_occurs_mask = 0,
                                .event_occurs = NULL,
                                .disaster = on_disaster };
    libxl_event_register_callbacks(ctx, &hooks, NULL);

    case_nval_after_dereg();
    case_nval_after_completion_elsewhere();
    case_reused_number_nval();
    case_reused_number_stale_pollin();
    case_reused_number_really_ready();

    if (disasters)
        printf("# last disaster message: %s\n", disaster_msg);
    libxl_ctx_free(ctx);
    xtl_logger_destroy(lg);
    return h_finish();
}
