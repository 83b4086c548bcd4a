/*
 * bench_hooks.c - H1..H4: the per-event cost of running libxl from the
 * application's own event loop (osevent hooks), against libxl's own loop
 * (libxl_event_wait), measured here, in this run.  No targets.
 *
 * One "event" is one operation's whole life: start it, its fd or timeout
 * is registered, becomes ready, is reported, the operation completes and
 * the registration ends.
 *  - hooks: callback-mode ops driven by c-tests/hookloop.h (a minimal
 *    poll() loop on the hooks); each completion callback starts the next
 *    op from the loop thread, as an event-driven application does;
 *  - GLib: the same through adapters/glib (g_main_context_iteration);
 *  - baseline: for_event ops, each collected with libxl_event_wait on a
 *    ctx without hooks.
 * fd events use libxl_test_fdevent on a pipe that is already readable;
 * timeouts use libxl_test_progress with one 0 ms timeout.
 */
#include "bench.h"
#include "c-tests/hookloop.h"

#include <libxl_test_fdevent.h>
#include <libxl_test_progress.h>
#ifdef XL_HAVE_GLIB
#include <libxl_glib.h>
#endif

enum kind { FD, TIMEOUT };

static struct {
    libxl_ctx *ctx;
    enum kind kind;
    int fd;
    int left;            /* ops still to start */
    int done;            /* ops completed */
    int failed;
} run;

static void start_op(void);

static void op_done(libxl_ctx *ctx, int rc, void *for_callback)
{
    (void)ctx; (void)for_callback;
    if (rc)
        run.failed++;
    run.done++;
    if (run.left > 0)
        start_op();
}

static void start_op(void)
{
    libxl_asyncop_how how = { .callback = op_done };
    run.left--;
    int rc = run.kind == FD ? libxl_test_fdevent(run.ctx, run.fd, POLLIN, &how)
                            : libxl_test_progress(run.ctx, 1, 0, NULL, &how);
    if (rc) {
        fprintf(stderr, "bench: op start failed (rc %d)\n", rc);
        exit(1);
    }
}

static void run_begin(libxl_ctx *ctx, enum kind kind, int fd, int n)
{
    run.ctx = ctx;
    run.kind = kind;
    run.fd = fd;
    run.left = n;
    run.done = run.failed = 0;
}

static void run_check(const char *what)
{
    if (run.failed) {
        fprintf(stderr, "bench: %s: %d ops failed\n", what, run.failed);
        exit(1);
    }
}

/* ns per op through the hook-driven poll() loop. */
static double through_hooks(enum kind kind, int fd, int n)
{
    hookloop L;
    hookloop_init(&L);
    libxl_ctx *ctx = bench_ctx();
    hookloop_attach(ctx, &L);
    double t0 = 0;
    for (int pass = 0; pass < 2; pass++) {      /* warm-up, then measure */
        int ops = pass ? n : n / 10;
        run_begin(ctx, kind, fd, ops);
        t0 = bench_now_ns();
        start_op();
        while (run.done < ops)
            hookloop_run_once(ctx, &L, 1000);
        run_check("hooks");
    }
    double ns = (bench_now_ns() - t0) / n;
    libxl_ctx_free(ctx);
    hookloop_destroy(&L);
    return ns;
}

#ifdef XL_HAVE_GLIB
/* ns per op through the GLib adapter. */
static double through_glib(enum kind kind, int fd, int n)
{
    GMainContext *mc = g_main_context_new();
    libxl_ctx *ctx = bench_ctx();
    libxl_glib *g = libxl_glib_new(ctx, mc);
    double t0 = 0;
    for (int pass = 0; pass < 2; pass++) {
        int ops = pass ? n : n / 10;
        run_begin(ctx, kind, fd, ops);
        t0 = bench_now_ns();
        start_op();
        while (run.done < ops)
            g_main_context_iteration(mc, TRUE);
        run_check("glib");
    }
    double ns = (bench_now_ns() - t0) / n;
    libxl_glib_shutdown(g);
    libxl_ctx_free(ctx);
    libxl_glib_free(g);
    g_main_context_unref(mc);
    return ns;
}
#endif

/* ns per op with libxl's own loop: for_event op + libxl_event_wait. */
static double through_event_wait(enum kind kind, int fd, int n)
{
    libxl_ctx *ctx = bench_ctx();
    libxl_asyncop_how how = { .callback = NULL };
    double t0 = 0;
    for (int pass = 0; pass < 2; pass++) {
        int ops = pass ? n : n / 10;
        t0 = bench_now_ns();
        for (int i = 0; i < ops; i++) {
            how.u.for_event = i + 1;
            int rc = kind == FD ? libxl_test_fdevent(ctx, fd, POLLIN, &how)
                                : libxl_test_progress(ctx, 1, 0, NULL, &how);
            libxl_event *ev = NULL;
            if (rc || libxl_event_wait(ctx, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL) ||
                ev->u.operation_complete.rc) {
                fprintf(stderr, "bench: event_wait op failed\n");
                exit(1);
            }
            libxl_event_free(ctx, ev);
        }
    }
    double ns = (bench_now_ns() - t0) / n;
    libxl_ctx_free(ctx);
    return ns;
}

int main(void)
{
    int n = bench_quick() ? 5000 : 50000;
    int p[2];
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) || write(p[1], "x", 1) != 1)
        return 1;

    double wait_fd = through_event_wait(FD, p[0], n);
    double wait_to = through_event_wait(TIMEOUT, -1, n);
    bench_row("H1", "fd event through hooks (poll() loop)", through_hooks(FD, p[0], n),
              "libxl_event_wait", wait_fd, 0, NULL);
    bench_row("H2", "timeout through hooks (poll() loop)", through_hooks(TIMEOUT, -1, n),
              "libxl_event_wait", wait_to, 0, NULL);
#ifdef XL_HAVE_GLIB
    bench_row("H3", "fd event through the GLib adapter", through_glib(FD, p[0], n),
              "libxl_event_wait", wait_fd, 0, NULL);
    bench_row("H4", "timeout through the GLib adapter", through_glib(TIMEOUT, -1, n),
              "libxl_event_wait", wait_to, 0, NULL);
#endif
    close(p[0]);
    close(p[1]);
    return 0;
}
