/*
 * test_faults.c - the OS misbehaving: operations are neither lost nor
 * doubled, nothing hangs, nothing spins, the ctx survives.
 *
 * Scenarios (each on the epoll backend and on LIBXL_POLL_BACKEND=poll,
 * which is read when a ctx is made):
 *  - signal storm: SIGALRM every 100 us (setitimer, handler without
 *    SA_RESTART, so every blocking call sees EINTR) while operations run
 *    in every mode at once: synchronous (another thread), callback,
 *    for_event collected by libxl_event_wait, and for_event driven by the
 *    application's own poll loop (beforepoll / poll / afterpoll);
 *  - POLLHUP (pipe whose write end is closed), POLLERR (full pipe whose
 *    read end is closed) and POLLNVAL (the application closes a
 *    registered fd: before the poller has seen it, after the poller has
 *    it in its set, and in the application's own poll loop);
 *  - a wakeup pipe nobody reads: thousands of completions wake the
 *    application poller and threads in libxl_event_wait;
 *  - out of fds (RLIMIT_NOFILE lowered, every fd taken): libxl_ctx_alloc,
 *    a synchronous operation and libxl_event_wait fail with ERROR_FAIL
 *    (no hang, no crash); with two fds free a synchronous operation runs
 *    on poll() instead of epoll; once fds are free again, all works.
 *
 * Success: every operation completes exactly once with the expected rc
 * (0; ERROR_FAIL for POLLNVAL), the storm delivered signals, refused
 * calls return ERROR_FAIL, beforepoll shows nothing left registered
 * afterwards. Failure: a FAIL line naming the case and what differed, or
 * the watchdog's FAIL line on a hang (the watchdog is a thread here:
 * SIGALRM belongs to the storm).
 */
#include "harness.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>

#include <libxl_test_fdevent.h>
#include <libxl_test_progress.h>
#include <libxl_test_timeout.h>

static void *const unused_helpers[] __attribute__((unused)) = {
    (void *)watchdog, (void *)run_in_child, (void *)status_str,
};

static const char *backend;     /* "epoll" or "poll" */
static xentoollog_logger *lg;
static char name[128];

static const char *cname(const char *base)
{
    snprintf(name, sizeof(name), "%s_%s", base, backend);
    return name;
}

static libxl_ctx *backend_ctx(void)
{
    setenv("LIBXL_POLL_BACKEND", backend, 1);
    return test_ctx(lg);
}

/* A ctx for the cases that close registered fds: the application's
 * misuse, which the library's fd checks find and report, so this ctx is
 * made without LIBXL_TEST_AUDIT=fail (every other ctx has it). */
static libxl_ctx *misuse_ctx(void)
{
    char *audit = getenv("LIBXL_TEST_AUDIT");
    audit = audit ? strdup(audit) : NULL;
    unsetenv("LIBXL_TEST_AUDIT");
    libxl_ctx *ctx = backend_ctx();
    if (audit) {
        setenv("LIBXL_TEST_AUDIT", audit, 1);
        free(audit);
    }
    return ctx;
}

static int pred_user(const libxl_event *ev, void *user)
{
    return ev->for_user == *(const uint64_t *)user;
}

/* Waits for the completion event of for_user; its rc, or 1000+rc of
 * libxl_event_wait if that failed. */
static int wait_completion(libxl_ctx *ctx, uint64_t for_user)
{
    libxl_event *ev = NULL;
    int rc = libxl_event_wait(ctx, &ev, LIBXL_EVENTMASK_ALL, pred_user, &for_user);
    if (rc)
        return 1000 + rc;
    rc = ev->type == LIBXL_EVENT_TYPE_OPERATION_COMPLETE ? ev->u.operation_complete.rc : 2000;
    libxl_event_free(ctx, ev);
    return rc;
}

/* Starts a for_event libxl_test_fdevent; its rc. */
static int fd_op(libxl_ctx *ctx, int fd, short events, uint64_t for_event)
{
    libxl_asyncop_how how = { .callback = NULL, .u.for_event = for_event };
    return libxl_test_fdevent(ctx, fd, events, &how);
}

/* Entries beforepoll wants: 1 means only the library's wakeup fd. */
static int beforepoll_count(libxl_ctx *ctx)
{
    int n = 0, t = -1;
    libxl_osevent_beforepoll(ctx, &n, NULL, &t, tv_now());
    return n;
}

/*---------- signal storm ----------*/

#define MAXOPS 4096
static atomic_int completions[MAXOPS];  /* per op id */
static atomic_int progress_seen;
static atomic_int nsignals;   /* signal handlers on several threads add to it */
static atomic_int next_id;

static void on_alarm(int sig)
{
    (void)sig;
    nsignals++;
}

static void storm(int on)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm; /* no SA_RESTART: EINTR everywhere */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = { { 0, on ? 100 : 0 }, { 0, on ? 100 : 0 } };
    setitimer(ITIMER_REAL, &it, NULL);
}

static void completed(libxl_ctx *ctx, int rc, void *user)
{
    (void)ctx;
    int id = (int)(intptr_t)user;
    if (rc == 0)
        atomic_fetch_add(&completions[id], 1);
    else
        atomic_fetch_add(&completions[id], 100); /* wrong rc: shows as a failure */
}

static void progress_cb(libxl_ctx *ctx, libxl_event *ev, void *user)
{
    (void)user;
    libxl_event_free(ctx, ev);
    atomic_fetch_add(&progress_seen, 1);
}

struct storm_args {
    libxl_ctx *ctx;
    int rounds;
    int failures;
};

/* Synchronous operations of three kinds, on their own thread. */
static void *sync_thread(void *arg)
{
    struct storm_args *a = arg;
    for (int i = 0; i < a->rounds; i++) {
        int p[2];
        test_pipe(p);
        pipe_poke(p[1]);
        int id = atomic_fetch_add(&next_id, 1);
        if (libxl_test_fdevent(a->ctx, p[0], POLLIN, NULL) == 0)
            atomic_fetch_add(&completions[id], 1);
        else
            a->failures++;
        close(p[0]); close(p[1]);
        id = atomic_fetch_add(&next_id, 1);
        if (libxl_test_timeout(a->ctx, 1, NULL) == 0)
            atomic_fetch_add(&completions[id], 1);
        else
            a->failures++;
        id = atomic_fetch_add(&next_id, 1);
        libxl_asyncprogress_how aop = { .callback = progress_cb };
        if (libxl_test_progress(a->ctx, 2, 1, &aop, NULL) == 0)
            atomic_fetch_add(&completions[id], 1);
        else
            a->failures++;
    }
    return NULL;
}

/* Pokes write ends handed over through a pipe, with short pauses. */
static int poke_queue[2];
static void *poker_thread(void *arg)
{
    (void)arg;
    for (;;) {
        int wfd;
        ssize_t r = read(poke_queue[0], &wfd, sizeof(wfd));
        if (r < 0 && (errno == EINTR || errno == EAGAIN)) {
            struct pollfd pf = { .fd = poke_queue[0], .events = POLLIN };
            poll(&pf, 1, 10);
            continue;
        }
        if (r != sizeof(wfd) || wfd < 0)
            return NULL;
        usleep(200); /* returns early on EINTR: fine */
        pipe_poke(wfd);
    }
}

static void case_signal_storm(void)
{
    case_begin(cname("signal_storm_every_op_completes_exactly_once"));
    libxl_ctx *ctx = backend_ctx();
    memset(completions, 0, sizeof(completions));
    atomic_store(&next_id, 0);
    atomic_store(&progress_seen, 0);
    nsignals = 0;
    test_pipe(poke_queue);
    pthread_t st, pt;
    struct storm_args sa = { ctx, 30, 0 };
    storm(1);
    pthread_create(&pt, NULL, poker_thread, NULL);
    pthread_create(&st, NULL, sync_thread, &sa);

    enum { N = 60 };
    int pipes[N][2], ids[N];
    int cb_ids[N];
    for (int i = 0; i < N; i++) {
        /* for_event, completed when the poker writes its pipe */
        test_pipe(pipes[i]);
        ids[i] = atomic_fetch_add(&next_id, 1);
        libxl_asyncop_how how = { .callback = NULL, .u.for_event = 10000 + ids[i] };
        CHECK_RC(libxl_test_fdevent(ctx, pipes[i][0], POLLIN, &how), 0);
        if (write(poke_queue[1], &pipes[i][1], sizeof(int)) != sizeof(int)) case_fail("poke queue");
        /* callback, completed by a timer */
        cb_ids[i] = atomic_fetch_add(&next_id, 1);
        libxl_asyncop_how cb = { .callback = completed, .u.for_callback = (void *)(intptr_t)cb_ids[i] };
        CHECK_RC(libxl_test_timeout(ctx, i % 3, &cb), 0);
    }
    /* half of the for_event ops through libxl_event_wait ... */
    for (int i = 0; i < N / 2; i++) {
        int rc = wait_completion(ctx, 10000 + ids[i]);
        if (rc == 0) atomic_fetch_add(&completions[ids[i]], 1);
        else case_fail("for_event op %d: rc %d", i, rc);
    }
    /* ... the other half through the application's own poll loop */
    int left = N - N / 2;
    double deadline = now_ms() + 30000;
    while (left > 0 && now_ms() < deadline) {
        struct pollfd fds[256];
        int n = 256, t = -1;
        if (libxl_osevent_beforepoll(ctx, &n, fds, &t, tv_now())) { case_fail("beforepoll"); break; }
        if (poll(fds, n, t < 0 || t > 100 ? 100 : t) < 0 && errno != EINTR) { case_fail("poll: %s", strerror(errno)); break; }
        libxl_osevent_afterpoll(ctx, n, fds, tv_now());
        libxl_event *ev;
        while (libxl_event_check(ctx, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL) == 0) {
            int id = (int)(ev->for_user - 10000);
            if (id >= 0 && id < MAXOPS && ev->u.operation_complete.rc == 0)
                atomic_fetch_add(&completions[id], 1);
            else
                case_fail("unexpected event for_user %llu", (unsigned long long)ev->for_user);
            libxl_event_free(ctx, ev);
            left--;
        }
    }
    int stop = -1;
    if (write(poke_queue[1], &stop, sizeof(stop)) != sizeof(stop)) case_fail("poke queue");
    pthread_join(st, NULL);
    pthread_join(pt, NULL);
    /* callback ops complete in whichever thread runs the loop: run it
     * (a synchronous op) until they all have */
    for (int tries = 0; tries < 1000; tries++) {
        int done = 1;
        for (int i = 0; i < N; i++)
            if (atomic_load(&completions[cb_ids[i]]) == 0) done = 0;
        if (done) break;
        libxl_test_timeout(ctx, 1, NULL);
    }
    storm(0);
    int total = atomic_load(&next_id);
    for (int id = 0; id < total; id++)
        if (atomic_load(&completions[id]) != 1)
            case_fail("op %d completed %d times (>= 100: wrong rc)", id, atomic_load(&completions[id]));
    CHECK_RC(sa.failures, 0);
    CHECK_RC(atomic_load(&progress_seen), 2 * sa.rounds);
    CHECK(nsignals > 100);
    CHECK_RC(beforepoll_count(ctx), 1);
    for (int i = 0; i < N; i++) { close(pipes[i][0]); close(pipes[i][1]); }
    close(poke_queue[0]); close(poke_queue[1]);
    libxl_ctx_free(ctx);
    case_end();
}

/*---------- POLLHUP / POLLERR / POLLNVAL ----------*/

static void case_revents(void)
{
    libxl_ctx *ctx = misuse_ctx();
    int p[2], q[2];

    case_begin(cname("pollhup_write_end_closed_completes"));
    test_pipe(p);
    CHECK_RC(fd_op(ctx, p[0], POLLIN, 1), 0);
    close(p[1]);
    CHECK_RC(wait_completion(ctx, 1), 0);
    CHECK_RC(libxl_test_fdevent(ctx, p[0], POLLIN, NULL), 0); /* synchronous too */
    close(p[0]);
    CHECK_RC(beforepoll_count(ctx), 1);
    case_end();

    case_begin(cname("pollerr_read_end_closed_completes"));
    test_pipe(p);
    while (write(p[1], "xxxxxxxxxxxxxxxx", 16) > 0) {} /* full: POLLOUT not ready */
    CHECK_RC(fd_op(ctx, p[1], POLLOUT, 2), 0);
    close(p[0]);
    CHECK_RC(wait_completion(ctx, 2), 0);
    close(p[1]);
    CHECK_RC(beforepoll_count(ctx), 1);
    case_end();

    /* The poller pool is warm from here on: closing an fd cannot hand
     * its number to a new wakeup pipe of the library's. */
    case_begin(cname("pollnval_fd_closed_before_the_poller_saw_it_completes_with_error"));
    test_pipe(p);
    CHECK_RC(fd_op(ctx, p[0], POLLIN, 3), 0);
    close(p[0]);
    CHECK_RC(wait_completion(ctx, 3), ERROR_FAIL);
    close(p[1]);
    CHECK_RC(beforepoll_count(ctx), 1);
    case_end();

    case_begin(cname("pollnval_fd_closed_while_in_the_pollers_set_completes_with_error"));
    test_pipe(p);
    test_pipe(q);
    CHECK_RC(fd_op(ctx, p[0], POLLIN, 4), 0);
    CHECK_RC(fd_op(ctx, q[0], POLLIN, 5), 0);
    pipe_poke(q[1]);
    CHECK_RC(wait_completion(ctx, 5), 0); /* the poller now watches p[0] */
    close(p[0]);
    CHECK_RC(wait_completion(ctx, 4), ERROR_FAIL);
    close(p[1]); close(q[0]); close(q[1]);
    CHECK_RC(beforepoll_count(ctx), 1);
    case_end();

    case_begin(cname("pollnval_in_the_applications_poll_loop_completes_with_error"));
    test_pipe(p);
    CHECK_RC(fd_op(ctx, p[0], POLLIN, 6), 0);
    close(p[0]);
    {
        struct pollfd fds[8];
        int n = 8, t = -1;
        CHECK_RC(libxl_osevent_beforepoll(ctx, &n, fds, &t, tv_now()), 0);
        CHECK(poll(fds, n, 1000) >= 1);
        libxl_osevent_afterpoll(ctx, n, fds, tv_now());
        libxl_event *ev = NULL;
        uint64_t u = 6;
        CHECK_RC(libxl_event_check(ctx, &ev, LIBXL_EVENTMASK_ALL, pred_user, &u), 0);
        if (ev) {
            CHECK_RC(ev->u.operation_complete.rc, ERROR_FAIL);
            libxl_event_free(ctx, ev);
        }
    }
    close(p[1]);
    CHECK_RC(beforepoll_count(ctx), 1);
    case_end();
    libxl_ctx_free(ctx);
}

/*---------- a wakeup pipe nobody reads ----------*/

enum { WAKES = 4000 };
static atomic_int got[WAKES];

struct waiter { libxl_ctx *ctx; int parity; };

static int pred_parity(const libxl_event *ev, void *user)
{
    return (int)(ev->for_user % 2) == *(const int *)user;
}

static void *waiter_thread(void *arg)
{
    struct waiter *w = arg;
    for (int i = 0; i < WAKES / 2; i++) {
        libxl_event *ev = NULL;
        if (libxl_event_wait(w->ctx, &ev, LIBXL_EVENTMASK_ALL, pred_parity, &w->parity))
            return NULL;
        if (ev->for_user < WAKES)
            atomic_fetch_add(&got[ev->for_user], 1);
        libxl_event_free(w->ctx, ev);
    }
    return NULL;
}

static void case_unread_wakeups(void)
{
    case_begin(cname("unread_wakeup_pipe_thousands_of_wakes_no_block_no_loss"));
    libxl_ctx *ctx = backend_ctx();
    memset(got, 0, sizeof(got));
    struct waiter w[2] = { { ctx, 0 }, { ctx, 1 } };
    pthread_t t[2];
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, waiter_thread, &w[i]);
    /* Each completion queues an event and wakes the application poller
     * (never read here) and the waiting threads. */
    for (int i = 0; i < WAKES; i++) {
        libxl_asyncop_how how = { .callback = NULL, .u.for_event = i };
        CHECK_RC(libxl_test_progress(ctx, 0, 0, NULL, &how), 0);
    }
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < WAKES; i++)
        if (atomic_load(&got[i]) != 1) { case_fail("event %d received %d times", i, atomic_load(&got[i])); break; }
    /* ... and the application poller is still woken, exactly as needed */
    struct pollfd fds[8];
    int n = 8, to = -1;
    CHECK_RC(libxl_osevent_beforepoll(ctx, &n, fds, &to, tv_now()), 0);
    CHECK_RC(n, 1);
    CHECK_RC(poll(fds, n, 0), 1);
    libxl_osevent_afterpoll(ctx, n, fds, tv_now());
    n = 8;
    CHECK_RC(libxl_osevent_beforepoll(ctx, &n, fds, &to, tv_now()), 0);
    CHECK_RC(poll(fds, n, 0), 0); /* drained by afterpoll */
    libxl_ctx_free(ctx);
    case_end();
}

/*---------- out of fds ----------*/

static int spare[1024], nspare;
static struct rlimit saved_nofile;

/* Lowers the fd limit and takes every fd left. */
static int exhaust_fds(void)
{
    getrlimit(RLIMIT_NOFILE, &saved_nofile);
    struct rlimit lim = { 64, saved_nofile.rlim_max };
    if (setrlimit(RLIMIT_NOFILE, &lim)) return -1;
    nspare = 0;
    int fd;
    while ((fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0 && nspare < 1024)
        spare[nspare++] = fd;
    return errno == EMFILE ? 0 : -1;
}

static void release_fds(int keep)
{
    while (nspare > keep) close(spare[--nspare]);
    if (keep == 0) setrlimit(RLIMIT_NOFILE, &saved_nofile);
}

static void case_out_of_fds(void)
{
    libxl_ctx *ctx = backend_ctx();   /* made while fds are plentiful */
    libxl_ctx *sentinel = (libxl_ctx *)(uintptr_t)0x5e4711e1, *c2 = sentinel;

    case_begin(cname("out_of_fds_calls_fail_cleanly"));
    if (exhaust_fds()) {
        case_fail("could not exhaust fds: %s", strerror(errno));
    } else {
        double t0 = now_ms();
        CHECK_RC(libxl_ctx_alloc(&c2, LIBXL_VERSION, 0, lg), ERROR_FAIL);
        /* Xen's libxl.c (the full libxl) clears *pctx on failure */
        CHECK(c2 == (full_libxl() ? NULL : sentinel));
        CHECK_RC(libxl_test_timeout(ctx, 1, NULL), ERROR_FAIL);
        libxl_event *ev = NULL;
        CHECK_RC(libxl_event_wait(ctx, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL), ERROR_FAIL);
        CHECK(ev == NULL);
        CHECK(now_ms() - t0 < 5000); /* refused, not retried */
        /* what needs no new fd still works */
        libxl_asyncop_how how = { .callback = NULL, .u.for_event = 7 };
        CHECK_RC(libxl_test_progress(ctx, 0, 0, NULL, &how), 0);
        CHECK_RC(wait_completion(ctx, 7), 0); /* queued: no poller needed */
        how.u.for_event = 8;
        CHECK_RC(libxl_test_timeout(ctx, 0, &how), 0);
        struct pollfd fds[8];
        int n = 8, t = -1;
        CHECK_RC(libxl_osevent_beforepoll(ctx, &n, fds, &t, tv_now()), 0);
        poll(fds, n, t);
        libxl_osevent_afterpoll(ctx, n, fds, tv_now());
        CHECK_RC(wait_completion(ctx, 8), 0);
    }
    case_end();

    case_begin(cname("two_fds_free_sync_op_runs_without_epoll"));
    /* a poller's wakeup pipe takes both: epoll_create1 fails, poll() is used */
    release_fds(nspare >= 2 ? nspare - 2 : 0);
    CHECK_RC(libxl_test_timeout(ctx, 1, NULL), 0);
    int p[2];
    release_fds(nspare >= 2 ? nspare - 2 : 0);
    test_pipe(p);
    pipe_poke(p[1]);
    CHECK_RC(libxl_test_fdevent(ctx, p[0], POLLIN, NULL), 0);
    close(p[0]); close(p[1]);
    case_end();

    case_begin(cname("ctx_works_again_once_fds_are_free"));
    release_fds(0);
    c2 = NULL;
    CHECK_RC(libxl_ctx_alloc(&c2, LIBXL_VERSION, 0, lg), 0);
    if (c2) {
        CHECK_RC(libxl_test_timeout(c2, 1, NULL), 0);
        libxl_ctx_free(c2);
    }
    CHECK_RC(libxl_test_timeout(ctx, 1, NULL), 0);
    libxl_asyncop_how how = { .callback = NULL, .u.for_event = 9 };
    CHECK_RC(libxl_test_timeout(ctx, 1, &how), 0);
    CHECK_RC(wait_completion(ctx, 9), 0);
    CHECK_RC(beforepoll_count(ctx), 1);
    case_end();
    libxl_ctx_free(ctx);
}

int main(void)
{
    watchdog_thread(120);
    lg = test_logger();
    static const char *backends[] = { "epoll", "poll" };
    for (int b = 0; b < 2; b++) {
        backend = backends[b];
        case_signal_storm();
        case_revents();
        case_unread_wakeups();
        case_out_of_fds();
    }
    xtl_logger_destroy(lg);
    return h_finish();
}
