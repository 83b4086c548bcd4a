/*
 * test_fdreuse.c - fd numbers reused across generations of registrations
 * (issue 12): no sleeper may wait on a kernel interest set that does not
 * hold the file now behind a registered number.
 *
 * Scenario, for each poller backend (auto, poll, epoll: chosen per ctx
 * with LIBXL_POLL_BACKEND) and each size N in 8, 31, 32, 33, 100, 300,
 * 1000, 5000, over three generations:
 *   - open N pipes and start one libxl_test_fdevent (for_event) on each
 *     read end; abort them all and collect their N completions
 *     (ERROR_ABORTED: the registrations are gone);
 *   - close every pipe (in ascending, descending or shuffled order), and
 *     open N new ones: the kernel hands back the same numbers;
 *   - start operations on the new pipes, write to a few of them one at a
 *     time and wait for each completion with libxl_event_wait.
 * Also: a synchronous operation on a reused number (another thread
 * writes), and a dup of a registered fd kept open (and its old file made
 * readable) after the original is closed and its number reused.
 *
 * Success: every completion arrives within 100 ms of the write that
 * causes it (far below the library's 1 s idle audit, which must not be
 * what rescues a sleeper), with the right rc, and nothing else
 * completes.  Failure: a FAIL line naming the case, backend and size,
 * with the measured delay; a hang ends in the watchdog's FAIL line.
 */
#include "harness.h"

#include <pthread.h>
#include <sys/resource.h>
#include <libxl_test_fdevent.h>

#define PROMPT_MS 100.0
#define T_OC LIBXL_EVENT_TYPE_OPERATION_COMPLETE

static const char *backend = "auto";

static int pred_user(const libxl_event *ev, void *user)
{
    return ev->type == T_OC && ev->for_user == *(const uint64_t *)user;
}

static libxl_ctx *new_ctx(xentoollog_logger *lg)
{
    if (strcmp(backend, "auto") == 0)
        unsetenv("LIBXL_POLL_BACKEND");
    else
        setenv("LIBXL_POLL_BACKEND", backend, 1);
    return test_ctx(lg);
}

static void close_pipes(int (*p)[2], int n, int order, unsigned *seed)
{
    int *idx = malloc(sizeof(int) * n);
    for (int i = 0; i < n; i++)
        idx[i] = order == 1 ? n - 1 - i : i;
    if (order == 2)
        for (int i = n - 1; i > 0; i--) {
            int j = rand_r(seed) % (i + 1), t = idx[i];
            idx[i] = idx[j];
            idx[j] = t;
        }
    for (int i = 0; i < n; i++) {
        close(p[idx[i]][0]);
        close(p[idx[i]][1]);
    }
    free(idx);
}

/* Starts an op (for_event user) on each read end. */
static int start_ops(libxl_ctx *ctx, int (*p)[2], int n, uint64_t base)
{
    for (int i = 0; i < n; i++) {
        libxl_asyncop_how how = { .callback = NULL, .u.for_event = base + i };
        int rc = libxl_test_fdevent(ctx, p[i][0], POLLIN, &how);
        if (rc) {
            case_fail("libxl_test_fdevent on fd %d rc=%d", p[i][0], rc);
            return rc;
        }
    }
    return 0;
}

/* Aborts every op and takes their completions (all ERROR_ABORTED). */
static void abort_all(libxl_ctx *ctx, int n, uint64_t base)
{
    for (int i = 0; i < n; i++) {
        libxl_asyncop_how how = { .callback = NULL, .u.for_event = base + i };
        int rc = libxl_ao_abort(ctx, &how);
        if (rc) { case_fail("libxl_ao_abort(op %d) rc=%d", i, rc); return; }
    }
    for (int i = 0; i < n; i++) {
        uint64_t u = base + i;
        libxl_event *ev = NULL;
        int rc = libxl_event_check(ctx, &ev, LIBXL_EVENTMASK_ALL, pred_user, &u);
        if (rc) { case_fail("op %d: no completion after abort (rc=%d)", i, rc); return; }
        if (ev->u.operation_complete.rc != ERROR_ABORTED)
            case_fail("op %d completed with %d, expected ERROR_ABORTED", i,
                      ev->u.operation_complete.rc);
        libxl_event_free(ctx, ev);
    }
}

/* Writes to pipe i and waits for op base+i: must complete, rc 0, promptly. */
static double poke_and_wait(libxl_ctx *ctx, int (*p)[2], int i, uint64_t base)
{
    uint64_t u = base + i;
    libxl_event *ev = NULL;
    double t0 = now_ms();
    pipe_poke(p[i][1]);
    int rc = libxl_event_wait(ctx, &ev, LIBXL_EVENTMASK_ALL, pred_user, &u);
    double dt = now_ms() - t0;
    if (rc) { case_fail("libxl_event_wait for fd %d rc=%d", p[i][0], rc); return dt; }
    if (ev->u.operation_complete.rc != 0)
        case_fail("op on fd %d completed with %d", p[i][0], ev->u.operation_complete.rc);
    libxl_event_free(ctx, ev);
    if (dt > PROMPT_MS)
        case_fail("fd %d (a reused number) was written but its completion took %.0f ms (> %.0f ms)",
                  p[i][0], dt, PROMPT_MS);
    return dt;
}

/* poke_and_wait, then drains the pipe and starts a fresh op in its place
 * (so that every pipe again has one op in progress). */
static double poke_wait_restart(libxl_ctx *ctx, int (*p)[2], int i, uint64_t base)
{
    double dt = poke_and_wait(ctx, p, i, base);
    char c;
    if (read(p[i][0], &c, 1) != 1) case_fail("drain fd %d", p[i][0]);
    libxl_asyncop_how how = { .callback = NULL, .u.for_event = base + i };
    int rc = libxl_test_fdevent(ctx, p[i][0], POLLIN, &how);
    if (rc) case_fail("restart op on fd %d rc=%d", p[i][0], rc);
    return dt;
}

static void check_nothing_queued(libxl_ctx *ctx)
{
    libxl_event *ev = NULL;
    if (libxl_event_check(ctx, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL) == 0) {
        case_fail("unexpected event type %d for_user %#llx", ev->type,
                  (unsigned long long)ev->for_user);
        libxl_event_free(ctx, ev);
    }
}

static void case_generations(xentoollog_logger *lg, int n, int order)
{
    static const char *orders[] = { "ascending", "descending", "shuffled" };
    char name[128];
    snprintf(name, sizeof(name), "reused_numbers_complete_promptly_%s_n%d_%s",
             backend, n, orders[order]);
    case_begin(name);
    libxl_ctx *ctx = new_ctx(lg);
    int (*p)[2] = calloc(n, sizeof(*p));
    unsigned seed = 12345 + n;
    double worst = 0;
    for (int i = 0; i < n; i++) test_pipe(p[i]);
    for (int gen = 0; gen < 3 && !h_reason[0]; gen++) {
        uint64_t base = (uint64_t)(gen + 1) << 32;
        if (start_ops(ctx, p, n, base)) break;
        /* a few completions in this generation, each on its own */
        for (int k = 0; k < 3 && !h_reason[0]; k++) {
            int i = (int)(((unsigned)rand_r(&seed)) % n);
            double dt = poke_wait_restart(ctx, p, i, base);
            if (dt > worst) worst = dt;
        }
        abort_all(ctx, n, base);
        check_nothing_queued(ctx);
        int old0 = p[0][0];
        close_pipes(p, n, order, &seed);
        for (int i = 0; i < n; i++) test_pipe(p[i]);
        if (order == 0 && p[0][0] != old0)
            case_fail("fd numbers were not reused (%d then %d): the test proves nothing",
                      old0, p[0][0]);
    }
    uint64_t base = (uint64_t)9 << 32;
    if (!h_reason[0] && !start_ops(ctx, p, n, base)) {
        double dt = poke_wait_restart(ctx, p, n - 1, base);
        if (dt > worst) worst = dt;
        abort_all(ctx, n, base);
    }
    check_nothing_queued(ctx);
    close_pipes(p, n, 0, &seed);
    free(p);
    libxl_ctx_free(ctx);
    if (worst > 20)
        fprintf(stderr, "%s: slowest completion %.1f ms\n", name, worst);
    case_end();
}

/* ---- a synchronous op on a reused number, the write from another thread ---- */

struct writer { int fd; int delay_ms; double at; };

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    usleep(w->delay_ms * 1000);
    w->at = now_ms();
    pipe_poke(w->fd);
    return NULL;
}

static void case_sync_reused(xentoollog_logger *lg, int n)
{
    char name[128];
    snprintf(name, sizeof(name), "sync_op_on_reused_number_returns_promptly_%s_n%d", backend, n);
    case_begin(name);
    libxl_ctx *ctx = new_ctx(lg);
    int (*p)[2] = calloc(n, sizeof(*p));
    unsigned seed = 777;
    for (int i = 0; i < n; i++) test_pipe(p[i]);
    for (int gen = 0; gen < 3 && !h_reason[0]; gen++) {
        uint64_t base = (uint64_t)(gen + 1) << 32;
        if (start_ops(ctx, p, n, base)) break;
        /* a synchronous op on the last pipe, written 30 ms later */
        int extra[2];
        test_pipe(extra);
        struct writer w = { .fd = extra[1], .delay_ms = 30 };
        pthread_t t;
        pthread_create(&t, NULL, writer_main, &w);
        int rc = libxl_test_fdevent(ctx, extra[0], POLLIN, NULL);
        double returned = now_ms();
        pthread_join(t, NULL); /* w.at is the writer's: read after the join */
        double dt = returned - w.at;
        if (rc) case_fail("synchronous op on fd %d rc=%d", extra[0], rc);
        if (dt > PROMPT_MS)
            case_fail("synchronous op on fd %d returned %.0f ms after the write (> %.0f ms)",
                      extra[0], dt, PROMPT_MS);
        close(extra[0]);
        close(extra[1]);
        abort_all(ctx, n, base);
        close_pipes(p, n, 2, &seed);
        for (int i = 0; i < n; i++) test_pipe(p[i]);
    }
    close_pipes(p, n, 0, &seed);
    free(p);
    check_nothing_queued(ctx);
    libxl_ctx_free(ctx);
    case_end();
}

/* ---- a dup keeps the old file alive after its number is reused ---- */

static void case_dup_kept(xentoollog_logger *lg, int n)
{
    char name[128];
    snprintf(name, sizeof(name), "dup_of_old_file_does_not_hide_or_fake_readiness_%s_n%d",
             backend, n);
    case_begin(name);
    libxl_ctx *ctx = new_ctx(lg);
    int (*p)[2] = calloc(n, sizeof(*p));
    int *dups = calloc(n, sizeof(int)), *oldw = calloc(n, sizeof(int));
    for (int i = 0; i < n; i++) test_pipe(p[i]);
    uint64_t base = (uint64_t)1 << 32;
    if (!start_ops(ctx, p, n, base)) {
        /* make the first op's fd number go through one generation first,
         * so the library's interest set has seen every number */
        poke_wait_restart(ctx, p, 0, base);
        abort_all(ctx, n, base);
        /* the old files live on through a dup, readable (and hung up):
         * nobody is registered on them any more */
        for (int i = 0; i < n; i++) {
            dups[i] = dup(p[i][0]);
            close(p[i][0]);
            pipe_poke(p[i][1]);
            close(p[i][1]);
            oldw[i] = -1;
        }
        for (int i = 0; i < n; i++) {
            if (pipe2(p[i], O_CLOEXEC | O_NONBLOCK)) { perror("pipe2"); exit(1); }
        }
        base = (uint64_t)2 << 32;
        if (!start_ops(ctx, p, n, base)) {
            libxl_event *ev = NULL;
            if (libxl_event_check(ctx, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL) == 0) {
                case_fail("an op completed from its number's old file (for_user %#llx)",
                          (unsigned long long)ev->for_user);
                libxl_event_free(ctx, ev);
            }
            poke_wait_restart(ctx, p, n / 2, base);
            poke_wait_restart(ctx, p, n - 1, base);
            abort_all(ctx, n, base);
        }
    }
    check_nothing_queued(ctx);
    for (int i = 0; i < n; i++) {
        close(dups[i]); if (oldw[i] >= 0) close(oldw[i]);
        close(p[i][0]); close(p[i][1]);
    }
    free(p); free(dups); free(oldw);
    libxl_ctx_free(ctx);
    case_end();
}

int main(void)
{
    static const int sizes[] = { 8, 31, 32, 33, 100, 300, 1000, 5000 };
    static const char *backends[] = { "auto", "poll", "epoll" };
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    /* the dup case holds 3 fds per registered one (old file, new pipe) */
    if (rl.rlim_cur < 3 * 5000 + 100) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < 3 * 5000 + 100) {
        printf("FAIL setup: RLIMIT_NOFILE is %llu, the 5000-fd cases need %d\n",
               (unsigned long long)rl.rlim_cur, 3 * 5000 + 100);
        return 1;
    }
    watchdog(200);
    xentoollog_logger *lg = test_logger();
    for (size_t b = 0; b < sizeof(backends) / sizeof(*backends); b++) {
        backend = backends[b];
        for (size_t s = 0; s < sizeof(sizes) / sizeof(*sizes); s++)
            for (int order = 0; order < 3; order++)
                case_generations(lg, sizes[s], order);
        for (size_t s = 0; s < sizeof(sizes) / sizeof(*sizes); s++) {
            case_sync_reused(lg, sizes[s]);
            case_dup_kept(lg, sizes[s]);
        }
    }
    xtl_logger_destroy(lg);
    return h_finish();
}
