/*
 * test_glib.c - the GLib adapter (adapters/glib/libxl_glib.h): libxl's
 * osevents as GSources in a GMainContext.
 *
 * Scenario:
 *  - many threads: one thread runs a GMainLoop on its own context; 4
 *    worker threads run 100 operations each, a rotating mix of
 *      callback fdevent completed when its pipe is poked,
 *      callback fdevent aborted at once,
 *      callback progress (2 timeouts of 1 ms),
 *      callback progress (60 s) aborted at once (its timeout is then
 *        modified to fire now, and consumed when GLib reports it),
 *      synchronous fdevent on a readable pipe,
 *      synchronous progress (1 ms; libxl's own poller and the GLib loop
 *        race for the timeout),
 *      callback fdmodify on a socket pair (writable, then fd_modify to
 *        readable from inside the writable source's dispatch, then poked);
 *  - a stale source: GLib has found an fd source ready (check done), the
 *    operation is aborted before dispatch (the registration ends), then
 *    dispatch runs;
 *  - shutdown: after libxl_glib_shutdown nothing reaches libxl (a due
 *    timeout is not reported) and new registrations fail.
 * Success: every callback runs exactly once with its expected rc (0 or
 * ERROR_ABORTED) and every synchronous op returns 0; the adapter's
 * registrations drain to 0; the stale source reports nothing; after
 * shutdown no callback runs and registering fails with
 * ERROR_OSEVENT_REG_FAIL; everything is freed (valgrind).
 * Failure: a FAIL line naming the case and the first failed check; a
 * hang becomes a FAIL through the watchdog.
 */
#include "harness.h"

#include <pthread.h>
#include <sys/socket.h>

#include <libxl_glib.h>
#include <libxl_test_fdevent.h>
#include <libxl_test_fdmodify.h>
#include <libxl_test_progress.h>

#define WORKERS 4
#define OPS 100
#define KINDS 7

static int slow;

typedef struct {
    volatile int n;      /* completions */
    volatile int rc;
    int want;
} rec_t;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

static void op_done(libxl_ctx *ctx, int rc, void *for_callback)
{
    rec_t *r = for_callback;
    (void)ctx;
    pthread_mutex_lock(&mu);
    r->rc = rc;
    r->n++;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static libxl_asyncop_how cb_how(rec_t *r)
{
    libxl_asyncop_how h = { .callback = op_done };
    h.u.for_callback = r;
    return h;
}

/* The slowest completion seen by wait_rec, from the moment its cause (a
 * write, an abort, a 1 ms timer) was in place. */
static double worst_ms;

/* Waits (at most ms) until r completed; records how long that took. */
static void wait_rec(rec_t *r, int ms)
{
    double t0 = now_ms();
    struct timespec end;
    clock_gettime(CLOCK_REALTIME, &end);
    end.tv_sec += ms / 1000;
    end.tv_nsec += (ms % 1000) * 1000000L;
    if (end.tv_nsec >= 1000000000L) {
        end.tv_sec++;
        end.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&mu);
    while (!r->n && pthread_cond_timedwait(&cv, &mu, &end) == 0)
        ;
    double dt = now_ms() - t0;
    if (dt > worst_ms)
        worst_ms = dt;
    pthread_mutex_unlock(&mu);
}

static void close_pair(int p[2])
{
    close(p[0]);
    close(p[1]);
}

/* A ctx whose osevents go to the adapter, on a context of its own. */
typedef struct {
    GMainContext *mc;
    libxl_ctx *ctx;
    libxl_glib *g;
} fixture;

static void fixture_init(fixture *f, xentoollog_logger *lg)
{
    f->mc = g_main_context_new();
    f->ctx = test_ctx(lg);
    f->g = libxl_glib_new(f->ctx, f->mc);
}

/* The documented order: shutdown, libxl_ctx_free, libxl_glib_free. */
static void fixture_free(fixture *f)
{
    libxl_glib_shutdown(f->g);
    libxl_ctx_free(f->ctx);
    libxl_glib_free(f->g);
    while (g_main_context_iteration(f->mc, FALSE))
        ;
    g_main_context_unref(f->mc);
}

/*---------- many threads ----------*/

static libxl_ctx *sctx;
static rec_t recs[WORKERS][OPS];
static int start_rc[WORKERS][OPS];

static void *loop_thread(void *arg)
{
    g_main_loop_run(arg);
    return NULL;
}

static void *worker(void *arg)
{
    int w = (int)(intptr_t)arg;
    int wait_ms = slow ? 60000 : 10000;
    for (int k = 0; k < OPS; k++) {
        rec_t *r = &recs[w][k];
        libxl_asyncop_how how = cb_how(r);
        int p[2], rc = 0;
        if (k % KINDS == 6) {
            if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, p))
                abort();
        } else {
            test_pipe(p);
        }
        switch (k % KINDS) {
        case 0:                                     /* completed by the loop */
            r->want = 0;
            rc = libxl_test_fdevent(sctx, p[0], POLLIN, &how);
            pipe_poke(p[1]);
            wait_rec(r, wait_ms);
            break;
        case 1:                                     /* aborted */
            r->want = ERROR_ABORTED;
            rc = libxl_test_fdevent(sctx, p[0], POLLIN, &how);
            if (!rc)
                rc = libxl_ao_abort(sctx, &how);
            wait_rec(r, wait_ms);
            break;
        case 2:                                     /* two timeouts */
            r->want = 0;
            rc = libxl_test_progress(sctx, 2, 1, NULL, &how);
            wait_rec(r, wait_ms);
            break;
        case 3:                                     /* timeout aborted */
            r->want = ERROR_ABORTED;
            rc = libxl_test_progress(sctx, 1, 60000, NULL, &how);
            if (!rc)
                rc = libxl_ao_abort(sctx, &how);
            wait_rec(r, wait_ms);
            break;
        case 4:                                     /* synchronous fd */
            pipe_poke(p[1]);
            r->want = 0;
            r->rc = libxl_test_fdevent(sctx, p[0], POLLIN, NULL);
            __atomic_add_fetch(&r->n, 1, __ATOMIC_SEQ_CST);
            break;
        case 5:                                     /* synchronous timeout */
            r->want = 0;
            r->rc = libxl_test_progress(sctx, 1, 1, NULL, NULL);
            __atomic_add_fetch(&r->n, 1, __ATOMIC_SEQ_CST);
            break;
        case 6:                                     /* fd_modify */
            r->want = 0;
            rc = libxl_test_fdmodify(sctx, p[0], POLLOUT, POLLIN, &how);
            usleep(100);
            pipe_poke(p[1]);
            wait_rec(r, wait_ms);
            break;
        }
        start_rc[w][k] = rc;
        close_pair(p);
    }
    return NULL;
}

static void case_many_threads(xentoollog_logger *lg)
{
    case_begin("loop_thread_and_4_workers_x_100_ops_every_callback_once");
    fixture f;
    fixture_init(&f, lg);
    GMainLoop *ml = g_main_loop_new(f.mc, FALSE);
    libxl_glib *g = f.g;
    sctx = f.ctx;
    pthread_t lt, wt[WORKERS];
    pthread_create(&lt, NULL, loop_thread, ml);
    for (int w = 0; w < WORKERS; w++)
        pthread_create(&wt[w], NULL, worker, (void *)(intptr_t)w);
    for (int w = 0; w < WORKERS; w++)
        pthread_join(wt[w], NULL);

    /* Timeouts libxl asked to fire now are reported by the loop, and
     * every registration ends. */
    double end = now_ms() + (slow ? 30000 : 5000);
    while (libxl_glib_registrations(g) && now_ms() < end)
        usleep(1000);
    unsigned left = libxl_glib_registrations(g);
    if (left)
        case_fail("%u registration(s) left with the adapter", left);
    usleep(20000);                   /* let any late duplicate show */
    int bad = 0;
    for (int w = 0; w < WORKERS; w++) {
        for (int k = 0; k < OPS; k++) {
            rec_t *r = &recs[w][k];
            if (start_rc[w][k] || r->n != 1 || r->rc != r->want) {
                if (!bad++)
                    case_fail("worker %d op %d (kind %d): start rc %d, %d completion(s), rc %d (want %d)",
                              w, k, k % KINDS, start_rc[w][k], r->n, r->rc, r->want);
            }
        }
    }
    if (bad > 1)
        printf("# %d ops wrong in all\n", bad);
    /* the loop thread is woken for every registration, timeout and
     * completion: each must arrive promptly */
    if (worst_ms > prompt_ms())
        case_fail("the slowest callback arrived %.0f ms after its cause (> %.0f ms: not prompt)",
                  worst_ms, prompt_ms());

    libxl_glib_shutdown(g);
    g_main_loop_quit(ml);
    pthread_join(lt, NULL);
    g_main_loop_unref(ml);
    fixture_free(&f);
    case_end();
}

/*---------- a stale source ----------*/

static void case_stale_source(xentoollog_logger *lg)
{
    case_begin("source_dispatched_after_its_registration_ended_is_harmless");
    fixture f;
    fixture_init(&f, lg);
    g_main_context_acquire(f.mc);
    int p[2];
    test_pipe(p);
    rec_t r = { 0 };
    libxl_asyncop_how how = cb_how(&r);
    CHECK_RC(libxl_test_fdevent(f.ctx, p[0], POLLIN, &how), 0);
    CHECK_RC(libxl_glib_registrations(f.g), 1);
    pipe_poke(p[1]);

    /* One iteration, split: GLib finds the source ready... */
    gint prio, timeout;
    GPollFD fds[16];
    g_main_context_prepare(f.mc, &prio);
    int n = g_main_context_query(f.mc, prio, &timeout, fds, 16);
    g_poll(fds, n, 1000);
    CHECK(g_main_context_check(f.mc, prio, fds, n));
    /* ...the registration ends before dispatch... */
    CHECK_RC(libxl_ao_abort(f.ctx, &how), 0);
    CHECK_RC(r.n, 1);
    CHECK_RC(r.rc, ERROR_ABORTED);
    CHECK_RC(libxl_glib_registrations(f.g), 0);
    /* ...and dispatch comes anyway. */
    g_main_context_dispatch(f.mc);
    while (g_main_context_iteration(f.mc, FALSE))
        ;
    CHECK_RC(r.n, 1);

    g_main_context_release(f.mc);
    fixture_free(&f);
    close_pair(p);
    case_end();
}

/*---------- shutdown ----------*/

static void case_shutdown(xentoollog_logger *lg)
{
    case_begin("after_shutdown_nothing_is_reported_and_registering_fails");
    fixture f;
    fixture_init(&f, lg);
    rec_t r = { 0 }, r2 = { 0 };
    libxl_asyncop_how how = cb_how(&r), how2 = cb_how(&r2);
    CHECK_RC(libxl_test_progress(f.ctx, 1, 5, NULL, &how), 0);
    CHECK_RC(libxl_glib_registrations(f.g), 1);
    libxl_glib_shutdown(f.g);
    libxl_glib_shutdown(f.g);                    /* idempotent */
    for (double end = now_ms() + 30; now_ms() < end;) {
        while (g_main_context_iteration(f.mc, FALSE))
            ;
        usleep(1000);
    }
    CHECK_RC(r.n, 0);
    int p[2];
    test_pipe(p);
    CHECK_RC(libxl_test_fdevent(f.ctx, p[0], POLLIN, &how2), ERROR_OSEVENT_REG_FAIL);
    CHECK_RC(libxl_glib_registrations(f.g), 1);  /* libxl still holds its timeout */
    fixture_free(&f);
    CHECK(r.n == 0 && r2.n == 0);
    close_pair(p);
    case_end();
}

int main(void)
{
    slow = getenv("XL_TEST_SLOW") != NULL;
    watchdog(slow ? 600 : 60);
    xentoollog_logger *lg = test_logger();

    case_stale_source(lg);
    case_shutdown(lg);
    case_many_threads(lg);

    xtl_logger_destroy(lg);
    return h_finish();
}
