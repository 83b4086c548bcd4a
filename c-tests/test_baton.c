/*
 * test_baton.c - the baton: no thread ever sleeps on a stale osevent set.
 *
 * Scenarios (issue 5), each with its own deadline so a hang fails fast:
 *  a  seed: thread A blocks in a synchronous libxl_test_fdevent; the main
 *     thread starts a for_event op on a NEW fd and only calls
 *     libxl_event_check; the new fd becomes ready; its completion must be
 *     delivered while A is still blocked (only A can notice the fd).
 *  b  application poller: main sleeps in poll() on the beforepoll set;
 *     another thread starts an op on a new fd, which becomes ready; main's
 *     poll must return (wakeup fd) and the next round deliver it.
 *  c  libxl_event_wait is woken by an op another thread adds.
 *  d  timers: a sleeper with no timeout (event_wait) must be woken when
 *     another thread adds a short timeout (libxl_test_progress).
 *  e  chains: libxl_test_fdchain over 6 fds, two other threads asleep in
 *     synchronous ops, main only checking events: every step adds an fd
 *     from inside a callback.
 *  f  stress: 4 threads x 2500 ops (synchronous, callback, for_event with
 *     event_wait, for_event with beforepoll/poll/afterpoll), fds made ready
 *     by a fifth thread: no hang, every completion exactly once, nothing
 *     left registered.
 * Promptness: each delivery must come within prompt_ms() (100 ms) of
 * what caused it, far below the library's 1 s idle audit, so a sleeper
 * rescued by a periodic re-check fails instead of passing late.
 * Negative control: the program re-runs itself with LIBXL_TEST_NO_BATON=1
 * for a (on poll sets), b and d, and those runs must report the hang
 * (they exit 1 with "FAIL <case>: hang"); if they pass, the tests cannot
 * detect a missing baton and the negative_control case fails. Case a on
 * the epoll instance must pass without the baton: there a new fd reaches
 * the sleeper through the kernel.
 * Success: every case prints PASS. Failure: a FAIL line naming the case.
 */
#include "harness.h"

#include <pthread.h>
#include <sys/wait.h>
#include <libxl_test_fdevent.h>
#include <libxl_test_fdchain.h>
#include <libxl_test_progress.h>

static int only_mode; /* running one case for the negative control */

/* ---- per-case deadline: a hang prints FAIL and ends the process ---- */

static pthread_mutex_t dl_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t dl_cv = PTHREAD_COND_INITIALIZER;
static int dl_armed;
static const char *dl_case;
static pthread_t dl_thread;

static void *deadline_thread(void *arg)
{
    int ms = (int)(long)arg;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) { until.tv_sec++; until.tv_nsec -= 1000000000L; }
    pthread_mutex_lock(&dl_mu);
    while (dl_armed) {
        if (pthread_cond_timedwait(&dl_cv, &dl_mu, &until) == ETIMEDOUT && dl_armed) {
            printf("FAIL %s: hang: nothing delivered within %d ms\n", dl_case, ms);
            fflush(stdout);
            _exit(1);
        }
    }
    pthread_mutex_unlock(&dl_mu);
    return NULL;
}

static void deadline_arm(const char *name, int ms)
{
    dl_case = name;
    dl_armed = 1;
    pthread_create(&dl_thread, NULL, deadline_thread, (void *)(long)ms);
}

static void deadline_disarm(void)
{
    pthread_mutex_lock(&dl_mu);
    dl_armed = 0;
    pthread_cond_signal(&dl_cv);
    pthread_mutex_unlock(&dl_mu);
    pthread_join(dl_thread, NULL);
}

static int has_user(const libxl_event *ev, void *u)
{
    return ev->for_user == (uint64_t)(uintptr_t)u;
}

/* ---- a thread blocked in a synchronous op on a never-ready pipe ---- */

struct blocker { libxl_ctx *ctx; int p[2]; pthread_t t; int done; int rc; };

static int is_done(struct blocker *b) { return __atomic_load_n(&b->done, __ATOMIC_ACQUIRE); }

static void *blocker_main(void *arg)
{
    struct blocker *b = arg;
    b->rc = libxl_test_fdevent(b->ctx, b->p[0], POLLIN, NULL);
    __atomic_store_n(&b->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void blocker_start(struct blocker *b, libxl_ctx *ctx)
{
    b->ctx = ctx;
    b->done = 0;
    test_pipe(b->p);
    pthread_create(&b->t, NULL, blocker_main, b);
    usleep(100 * 1000); /* let it reach poll() */
}

static void blocker_finish(struct blocker *b)
{
    pipe_poke(b->p[1]);
    pthread_join(b->t, NULL);
    CHECK_RC(b->rc, 0);
    close(b->p[0]);
    close(b->p[1]);
}

/* a */
static void case_seed(libxl_ctx *ctx)
{
    case_begin("a_seed_sync_sleeper_sees_new_fd");
    struct blocker A;
    blocker_start(&A, ctx);
    int p[2];
    test_pipe(p);
    libxl_asyncop_how how = { .callback = NULL, .u.for_event = 0xa };
    deadline_arm("a_seed_sync_sleeper_sees_new_fd", 2000);
    CHECK_RC(libxl_test_fdevent(ctx, p[0], POLLIN, &how), 0);
    double t0 = now_ms();
    pipe_poke(p[1]);
    libxl_event *ev = NULL;
    while (libxl_event_check(ctx, &ev, LIBXL_EVENTMASK_ALL, has_user, (void *)0xa) == ERROR_NOT_READY)
        usleep(1000);
    deadline_disarm();
    CHECK_PROMPT(t0, "delivery by the sleeper A after the new fd became ready");
    CHECK(!is_done(&A)); /* delivered by A's loop while A is still blocked */
    CHECK_RC(ev->u.operation_complete.rc, 0);
    libxl_event_free(ctx, ev);
    blocker_finish(&A);
    close(p[0]); close(p[1]);
    case_end();
}

/* b */
struct starter { libxl_ctx *ctx; int fd; uint64_t user; int delay_ms; double started; };
static pthread_mutex_t started_mu = PTHREAD_MUTEX_INITIALIZER;

static void *start_op_later(void *arg)
{
    struct starter *s = arg;
    usleep(s->delay_ms * 1000);
    libxl_asyncop_how how = { .callback = NULL, .u.for_event = s->user };
    /* recorded before the call: the op can complete (and the waiter see
     * it) before libxl_test_fdevent returns here */
    pthread_mutex_lock(&started_mu);
    s->started = now_ms();
    pthread_mutex_unlock(&started_mu);
    if (libxl_test_fdevent(s->ctx, s->fd, POLLIN, &how))
        printf("FAIL: starting op %llu failed\n", (unsigned long long)s->user);
    return NULL;
}

/* When the starter began its op (0 if not yet). */
static double started_at(struct starter *s)
{
    pthread_mutex_lock(&started_mu);
    double t = s->started;
    pthread_mutex_unlock(&started_mu);
    return t;
}

static void case_app_poller(libxl_ctx *ctx)
{
    case_begin("b_app_poller_woken_for_new_fd");
    int p[2];
    test_pipe(p);
    pipe_poke(p[1]); /* ready as soon as anyone watches it */
    struct starter st = { ctx, p[0], 0xb, 100, 0 };
    pthread_t t;
    pthread_create(&t, NULL, start_op_later, &st);
    deadline_arm("b_app_poller_woken_for_new_fd", 2500);
    struct pollfd fds[16];
    int rounds = 0, got = 0;
    while (!got && rounds < 4) {
        int nfds = 16, timeout = -1;
        CHECK_RC(libxl_osevent_beforepoll(ctx, &nfds, fds, &timeout, tv_now()), 0);
        int r = poll(fds, nfds, 2000);
        if (r > 0 && started_at(&st) > 0)
            CHECK_PROMPT(started_at(&st), "the application's poll() waking after the op began");
        if (r == 0) {
            if (only_mode) {
                printf("FAIL b_app_poller_woken_for_new_fd: hang: poll() slept 2 s on a stale set\n");
                fflush(stdout);
                _exit(1);
            }
            case_fail("poll() timed out on a stale set (round %d)", rounds);
            break;
        }
        libxl_osevent_afterpoll(ctx, nfds, fds, tv_now());
        rounds++;
        libxl_event *ev;
        if (libxl_event_check(ctx, &ev, LIBXL_EVENTMASK_ALL, has_user, (void *)0xb) == 0) {
            got = 1;
            libxl_event_free(ctx, ev);
        }
    }
    deadline_disarm();
    CHECK(got);
    CHECK(rounds <= 3); /* woken in round 1 (or it already had the fd), delivered by round 3 */
    pthread_join(t, NULL);
    close(p[0]); close(p[1]);
    case_end();
}

/* c */
static void case_event_wait(libxl_ctx *ctx)
{
    case_begin("c_event_wait_woken_by_other_threads_op");
    int p[2];
    test_pipe(p);
    pipe_poke(p[1]);
    struct starter st = { ctx, p[0], 0xc, 100, 0 };
    pthread_t t;
    pthread_create(&t, NULL, start_op_later, &st);
    deadline_arm("c_event_wait_woken_by_other_threads_op", 2000);
    libxl_event *ev = NULL;
    CHECK_RC(libxl_event_wait(ctx, &ev, LIBXL_EVENTMASK_ALL, has_user, (void *)0xc), 0);
    deadline_disarm();
    CHECK(started_at(&st) > 0);
    CHECK_PROMPT(started_at(&st), "libxl_event_wait returning after the op on a ready fd began");
    if (ev) libxl_event_free(ctx, ev);
    pthread_join(t, NULL);
    close(p[0]); close(p[1]);
    case_end();
}

/* d */
static double timer_started;

static void *start_timer_later(void *arg)
{
    libxl_ctx *ctx = arg;
    usleep(100 * 1000);
    libxl_asyncop_how how = { .callback = NULL, .u.for_event = 0xd };
    pthread_mutex_lock(&started_mu);
    timer_started = now_ms();
    pthread_mutex_unlock(&started_mu);
    if (libxl_test_progress(ctx, 1, 50, NULL, &how))
        printf("FAIL: starting the timer op failed\n");
    return NULL;
}

static void case_timer(libxl_ctx *ctx)
{
    case_begin("d_sleeper_without_timeout_woken_for_new_timer");
    pthread_t t;
    pthread_create(&t, NULL, start_timer_later, ctx);
    deadline_arm("d_sleeper_without_timeout_woken_for_new_timer", 2000);
    double t0 = now_ms();
    libxl_event *ev = NULL;
    CHECK_RC(libxl_event_wait(ctx, &ev, LIBXL_EVENTMASK_ALL, has_user, (void *)0xd), 0);
    deadline_disarm();
    CHECK(now_ms() - t0 >= 140); /* 100 ms before the op, 50 ms timer */
    pthread_mutex_lock(&started_mu);
    double started = timer_started;
    pthread_mutex_unlock(&started_mu);
    CHECK(started > 0);
    CHECK_PROMPT(started + 50, "libxl_event_wait returning after the 50 ms timer was due");
    if (ev) libxl_event_free(ctx, ev);
    pthread_join(t, NULL);
    case_end();
}

/* e */
static void case_chain(libxl_ctx *ctx)
{
    case_begin("e_fdchain_with_two_stale_sleepers");
    struct blocker A, B;
    blocker_start(&A, ctx);
    blocker_start(&B, ctx);
    enum { N = 6 };
    int p[N][2], fds[N];
    for (int i = 0; i < N; i++) { test_pipe(p[i]); fds[i] = p[i][0]; }
    libxl_asyncop_how how = { .callback = NULL, .u.for_event = 0xe };
    deadline_arm("e_fdchain_with_two_stale_sleepers", 3000);
    CHECK_RC(libxl_test_fdchain(ctx, fds, N, &how), 0);
    libxl_event *ev = NULL;
    double last = 0;
    for (int i = 0; i < N; i++) {
        usleep(5000);
        last = now_ms();
        pipe_poke(p[i][1]);
    }
    while (libxl_event_check(ctx, &ev, LIBXL_EVENTMASK_ALL, has_user, (void *)0xe) == ERROR_NOT_READY)
        usleep(1000);
    deadline_disarm();
    /* each step registers the next fd from a callback: one late wakeup
     * anywhere in the chain delays the completion past this bound */
    CHECK_PROMPT(last, "the chain's completion after its last fd became ready");
    CHECK_RC(ev->u.operation_complete.rc, 0);
    CHECK(!is_done(&A) && !is_done(&B));
    libxl_event_free(ctx, ev);
    blocker_finish(&A);
    blocker_finish(&B);
    for (int i = 0; i < N; i++) { close(p[i][0]); close(p[i][1]); }
    case_end();
}

/* f: stress */
enum { OPS = 2500, SYNC = 0, CB = 1, WAIT = 2, LOOP = 3, NTH = 4 };

static libxl_ctx *sctx;
static int spipe[NTH][2], notify[2];
static int cb_count[OPS];
static int stress_bad_flag;
static double stress_worst_ms; /* slowest op, from its poke to its completion */
static pthread_mutex_t worst_mu = PTHREAD_MUTEX_INITIALIZER;
#define stress_bad_set() __atomic_store_n(&stress_bad_flag, 1, __ATOMIC_RELAXED)
#define stress_bad (__atomic_load_n(&stress_bad_flag, __ATOMIC_RELAXED))

/* the poker: a queue of fds to make readable */
static pthread_mutex_t q_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_cv = PTHREAD_COND_INITIALIZER;
static int q_fd[64], q_n, q_stop;

static void poke_later(int fd)
{
    pthread_mutex_lock(&q_mu);
    while (q_n == 64) pthread_cond_wait(&q_cv, &q_mu);
    q_fd[q_n++] = fd;
    pthread_cond_broadcast(&q_cv);
    pthread_mutex_unlock(&q_mu);
}

static void *poker_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&q_mu);
    for (;;) {
        while (!q_n && !q_stop) pthread_cond_wait(&q_cv, &q_mu);
        if (!q_n && q_stop) break;
        int fd = q_fd[--q_n];
        pthread_cond_broadcast(&q_cv);
        pthread_mutex_unlock(&q_mu);
        pipe_poke(fd);
        pthread_mutex_lock(&q_mu);
    }
    pthread_mutex_unlock(&q_mu);
    return NULL;
}

static void drain(int fd)
{
    char c;
    while (read(fd, &c, 1) != 1) usleep(10);
}

static void cb_done(libxl_ctx *ctx, int rc, void *u)
{
    (void)ctx;
    int i = (int)(uintptr_t)u;
    if (rc || i < 0 || i >= OPS || __sync_add_and_fetch(&cb_count[i], 1) != 1) stress_bad_set();
    pipe_poke(notify[1]);
}

static void *stress_main(void *arg)
{
    int kind = (int)(long)arg;
    int rfd = spipe[kind][0], wfd = spipe[kind][1];
    for (int i = 0; i < OPS && !stress_bad; i++) {
        uint64_t user = ((uint64_t)(kind + 1) << 32) | (uint64_t)i;
        libxl_asyncop_how how = { .callback = NULL, .u.for_event = user };
        libxl_event *ev = NULL;
        double t0 = now_ms();
        poke_later(wfd);
        switch (kind) {
        case SYNC:
            if (libxl_test_fdevent(sctx, rfd, POLLIN, NULL)) stress_bad_set();
            break;
        case CB: {
            libxl_asyncop_how cbh = { .callback = cb_done, .u.for_callback = (void *)(uintptr_t)i };
            if (libxl_test_fdevent(sctx, rfd, POLLIN, &cbh)) stress_bad_set();
            /* wait for the callback by a synchronous op on the notify pipe */
            if (libxl_test_fdevent(sctx, notify[0], POLLIN, NULL)) stress_bad_set();
            drain(notify[0]);
            break;
        }
        case WAIT:
            if (libxl_test_fdevent(sctx, rfd, POLLIN, &how)) stress_bad_set();
            if (libxl_event_wait(sctx, &ev, LIBXL_EVENTMASK_ALL, has_user, (void *)(uintptr_t)user)) stress_bad_set();
            break;
        case LOOP:
            if (libxl_test_fdevent(sctx, rfd, POLLIN, &how)) stress_bad_set();
            while (libxl_event_check(sctx, &ev, LIBXL_EVENTMASK_ALL, has_user, (void *)(uintptr_t)user)) {
                struct pollfd fds[32];
                int nfds = 32, timeout = -1;
                if (libxl_osevent_beforepoll(sctx, &nfds, fds, &timeout, tv_now())) { stress_bad_set(); break; }
                poll(fds, nfds, timeout);
                libxl_osevent_afterpoll(sctx, nfds, fds, tv_now());
            }
            break;
        }
        if (ev) {
            if (ev->u.operation_complete.rc) stress_bad_set();
            libxl_event_free(sctx, ev);
        }
        double dt = now_ms() - t0;
        pthread_mutex_lock(&worst_mu);
        if (dt > stress_worst_ms) stress_worst_ms = dt;
        pthread_mutex_unlock(&worst_mu);
        drain(rfd);
    }
    return NULL;
}

static void case_stress(libxl_ctx *ctx)
{
    case_begin("f_stress_4_threads_10000_ops");
    sctx = ctx;
    for (int k = 0; k < NTH; k++) test_pipe(spipe[k]);
    test_pipe(notify);
    pthread_t poker, th[NTH];
    pthread_create(&poker, NULL, poker_main, NULL);
    deadline_arm("f_stress_4_threads_10000_ops", 60000);
    double t0 = now_ms();
    for (int k = 0; k < NTH; k++) pthread_create(&th[k], NULL, stress_main, (void *)(long)k);
    for (int k = 0; k < NTH; k++) pthread_join(th[k], NULL);
    deadline_disarm();
    pthread_mutex_lock(&q_mu);
    q_stop = 1;
    pthread_cond_broadcast(&q_cv);
    pthread_mutex_unlock(&q_mu);
    pthread_join(poker, NULL);
    CHECK(!stress_bad);
    for (int i = 0; i < OPS; i++)
        if (cb_count[i] != 1) { case_fail("callback %d ran %d times", i, cb_count[i]); break; }
    libxl_event *ev;
    CHECK_RC(libxl_event_check(ctx, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL), ERROR_NOT_READY);
    int nfds = 0, timeout = -1;
    libxl_osevent_beforepoll(ctx, &nfds, NULL, &timeout, tv_now());
    CHECK_RC(nfds, 1); /* only the library's wakeup fd: nothing left registered */
    fprintf(stderr, "stress: %d ops in %.0f ms, slowest %.1f ms\n", OPS * NTH, now_ms() - t0,
            stress_worst_ms);
    if (stress_worst_ms > prompt_ms())
        case_fail("an op took %.0f ms from its fd's write to its completion (> %.0f ms: not prompt)",
                  stress_worst_ms, prompt_ms());
    for (int k = 0; k < NTH; k++) { close(spipe[k][0]); close(spipe[k][1]); }
    close(notify[0]); close(notify[1]);
    case_end();
}

/* ---- negative control ---- */

/* Runs case `which` alone in a child with LIBXL_TEST_NO_BATON=1 (and
 * LIBXL_POLL_BACKEND=backend unless NULL: inherited). With expect_hang,
 * the case must report its hang; without, it must pass. */
static void negative_control(const char *self, const char *which, const char *backend,
                             int expect_hang)
{
    char name[96];
    snprintf(name, sizeof name, "negative_control_%s_%s_without_baton%s%s", which,
             expect_hang ? "hangs" : "passes", backend ? "_on_" : "", backend ? backend : "");
    case_begin(name);
    int out[2];
    if (pipe(out)) { case_fail("pipe"); case_end(); return; }
    pid_t pid = fork();
    if (pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        setenv("LIBXL_TEST_NO_BATON", "1", 1);
        if (backend) setenv("LIBXL_POLL_BACKEND", backend, 1);
        execl(self, self, "--only", which, (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    char buf[4096];
    ssize_t n, len = 0;
    while ((n = read(out[0], buf + len, sizeof(buf) - 1 - len)) > 0) len += n;
    buf[len] = 0;
    close(out[0]);
    int st;
    waitpid(pid, &st, 0);
    int hung = WIFEXITED(st) && WEXITSTATUS(st) == 1 && strstr(buf, ": hang");
    int passed = WIFEXITED(st) && WEXITSTATUS(st) == 0 && strstr(buf, "PASS ");
    if (expect_hang && !hung)
        case_fail("without the baton case %s did not report a hang (status %#x, output: %.200s)",
                  which, st, buf);
    if (!expect_hang && !passed)
        case_fail("without the baton case %s did not pass (status %#x, output: %.200s)",
                  which, st, buf);
    case_end();
}

int main(int argc, char **argv)
{
    xentoollog_logger *lg = test_logger();
    libxl_ctx *ctx = test_ctx(lg);
    if (argc == 3 && !strcmp(argv[1], "--only")) {
        only_mode = 1;
        watchdog(10);
        switch (argv[2][0]) {
        case 'a': case_seed(ctx); break;
        case 'b': case_app_poller(ctx); break;
        case 'd': case_timer(ctx); break;
        default: return 2;
        }
        return h_finish(); /* reached only if the case passed */
    }
    watchdog(150);
    case_seed(ctx);
    case_app_poller(ctx);
    case_event_wait(ctx);
    case_timer(ctx);
    case_chain(ctx);
    case_stress(ctx);
    libxl_ctx_free(ctx);
    xtl_logger_destroy(lg);
    /* argv[0], not /proc/self/exe: under valgrind the latter is valgrind */
    /* A sleeper on a poll set needs the baton to see a new fd; a sleeper
     * on the ctx's epoll instance sees it without (the instance is changed
     * at registration). The application poller and timers need the baton
     * on every backend. */
    negative_control(argv[0], "a", "poll", 1);
    negative_control(argv[0], "a", "epoll", 0);
    negative_control(argv[0], "b", NULL, 1);
    negative_control(argv[0], "d", NULL, 1);
    return h_finish();
}
