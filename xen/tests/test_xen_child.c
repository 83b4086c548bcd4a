/*
 * test_xen_child.c: child processes started by libxl's own C code
 * (libxl__ev_child_fork with a libxl__ev_time and a libxl__ao_abortable,
 * libxl__ev_child_kill_deregister, libxl__async_exec_start), through the
 * test operations of libxl_test_xen_child.c (in libxenlight_test.so), in
 * one of libxl's SIGCHLD modes.  Run under run-nohv --testlib:
 *
 *   test_xen_child MODE     MODE = libxl | mainloop-reaped |
 *                                  mainloop-sigchld-occurred | always |
 *                                  always-selective
 *
 *   libxl             libxl_sigchld_owner_libxl (the default): libxl
 *                     handles SIGCHLD while it has children
 *   mainloop-reaped   libxl_sigchld_owner_mainloop: the application
 *                     catches SIGCHLD, reaps with waitpid(-1) and hands
 *                     each status to libxl_childproc_reaped
 *   mainloop-sigchld-occurred   the same owner; the application calls
 *                     libxl_childproc_sigchld_occurred and libxl reaps
 *                     its own children (only)
 *   always            libxl_sigchld_owner_libxl_always: libxl reaps every
 *                     child; the application's come back through
 *                     libxl_childproc_hooks.reaped_callback
 *   always-selective  libxl_sigchld_owner_libxl_always_selective_reap:
 *                     libxl reaps only its own children
 *
 * Cases: a child that exits (its status reported), one that exits at
 * once, one killed on timeout (ERROR_TIMEDOUT, SIGKILL status), one killed
 * on libxl_ao_abort (ERROR_ABORTED; the completion must come only after
 * the child has been reaped), ten at once, libxl__async_exec_start
 * (exit status, timeout, abort), a synchronous call (not in the mainloop
 * modes: the application could not reap during it), and an application
 * child beside libxl's (who reaps it, per mode).  Promptly, and each ctx
 * freed with no fd, child or zombie left.
 */
#include "xtest.h"
#include "libxl_test_xen_child.h"

static xentoollog_logger *lg;
static const char *mode;
static libxl_childproc_hooks hooks;
static int mainloop; /* the application reaps */
static libxl_ctx *cur_ctx;

/*---------- the application's SIGCHLD handling (mainloop modes) ----------*/

static int sigchld_pipe[2] = { -1, -1 };
static pid_t app_child = -1;     /* the application's own child, if any */
static int app_child_status = -1;
static int app_child_reaped_by; /* 1 app's waitpid, 2 libxl's reaped_callback */
static int unknown_to_libxl;    /* libxl_childproc_reaped said UNKNOWN_CHILD */
static int reaped_callback_calls;

static void on_sigchld(int sig)
{
    (void)sig;
    int e = errno;
    if (write(sigchld_pipe[1], "c", 1) < 0) { /* pipe full: fine */ }
    errno = e;
}

static void app_reap_own(void)
{
    if (app_child <= 0 || app_child_reaped_by) return;
    int st;
    if (waitpid(app_child, &st, WNOHANG) == app_child) {
        app_child_status = st;
        app_child_reaped_by = 1;
    }
}

/* The application's SIGCHLD self-pipe became readable. */
static void app_sigchld_readable(void *arg)
{
    (void)arg;
    char buf[64];
    while (read(sigchld_pipe[0], buf, sizeof(buf)) > 0) ;
    if (!strcmp(mode, "mainloop-reaped")) {
        int st;
        pid_t pid;
        while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
            int rc = libxl_childproc_reaped(cur_ctx, pid, st);
            if (rc == ERROR_UNKNOWN_CHILD) {
                unknown_to_libxl++;
                if (pid == app_child) {
                    app_child_status = st;
                    app_child_reaped_by = 1;
                }
            } else if (rc) {
                case_fail("libxl_childproc_reaped(%ld) = %s", (long)pid, xt_err(rc));
            }
        }
    } else {
        libxl_childproc_sigchld_occurred(cur_ctx);
        app_reap_own();
    }
}

static xt_appfd app_fds[1];
static int napp;

/* libxl_childproc_hooks.reaped_callback (always mode) */
static int on_reaped(pid_t pid, int status, void *user)
{
    (void)user;
    reaped_callback_calls++;
    if (pid == app_child) {
        app_child_status = status;
        app_child_reaped_by = 2;
        return 0;
    }
    return ERROR_UNKNOWN_CHILD;
}

/*---------- ops ----------*/

#define MAXOPS 10
typedef struct {
    int done, rc;
    double t;
    pid_t pid;
    int status;
    int pid_alive_at_completion;
} op;
static op ops[MAXOPS];

static void op_done(libxl_ctx *ctx, int rc, void *for_callback)
{
    (void)ctx;
    op *o = for_callback;
    o->done++;
    o->rc = rc;
    o->t = now_ms();
    o->pid_alive_at_completion = o->pid > 0 && xt_pid_exists(o->pid);
}

static libxl_asyncop_how how_for(op *o)
{
    libxl_asyncop_how h = { .callback = op_done, .u.for_callback = o };
    return h;
}

/* Loops until ops[0..n-1] are all done; 0 if not within ms. */
static int wait_ops(libxl_ctx *ctx, int n, int ms)
{
    static int alldone;
    double end = now_ms() + ms;
    for (;;) {
        alldone = 1;
        for (int i = 0; i < n; i++) alldone &= ops[i].done > 0;
        if (alldone) return 1;
        double left = end - now_ms();
        if (left <= 0) return 0;
        xt_loop_once(ctx, left > 50 ? 50 : (int)left + 1, app_fds, napp);
    }
}

static libxl_ctx *begin(const char *name, xt_snap *snap)
{
    char full[128];
    static char names[64][128];
    static int nn;
    snprintf(full, sizeof(full), "%s[%s]", name, mode);
    snprintf(names[nn % 64], sizeof(names[0]), "%s", full);
    case_begin(names[nn++ % 64]);
    xt_disasters = 0;
    memset(ops, 0, sizeof(ops));
    app_child = -1;
    app_child_status = -1;
    app_child_reaped_by = unknown_to_libxl = reaped_callback_calls = 0;
    xt_snap_take(snap);
    libxl_ctx *ctx = xt_ctx(lg);
    if (ctx) libxl_childproc_setmode(ctx, &hooks, NULL);
    cur_ctx = ctx;
    return ctx;
}

static void end(libxl_ctx *ctx, const xt_snap *snap)
{
    /* anything still in progress would make libxl_ctx_free assert */
    for (int i = 0; i < MAXOPS; i++)
        if (ops[i].pid > 0 && !ops[i].done) {
            libxl_asyncop_how h = how_for(&ops[i]);
            libxl_ao_abort(ctx, &h);
        }
    for (int i = 0; i < MAXOPS; i++)
        if (ops[i].pid > 0 && !ops[i].done) {
            double e = now_ms() + 2000;
            while (!ops[i].done && now_ms() < e)
                xt_loop_once(ctx, 50, app_fds, napp);
            if (!ops[i].done) xt_give_up("an op still in progress 2 s after its abort");
        }
    libxl_ctx_free(ctx);
    cur_ctx = NULL;
    xt_snap_check(snap);
    if (xt_disasters) case_fail("disaster hook called: %s", xt_disaster_msg);
    case_end();
}

static void check_exited(const op *o, int want)
{
    if (!WIFEXITED(o->status) || WEXITSTATUS(o->status) != want)
        case_fail("child [%ld] status %#x, expected exit %d", (long)o->pid,
                  o->status, want);
}

static void check_killed(const op *o)
{
    if (!WIFSIGNALED(o->status) || WTERMSIG(o->status) != SIGKILL)
        case_fail("child [%ld] status %#x, expected killed by SIGKILL",
                  (long)o->pid, o->status);
}

/*---------- cases ----------*/

static void case_exit(int after_ms, int status, int sync)
{
    xt_snap snap;
    libxl_ctx *ctx = begin(sync ? "child_exit_sync" : after_ms ? "child_exit_status"
                                                         : "child_exit_at_once", &snap);
    if (!ctx) { case_end(); return; }
    op *o = &ops[0];
    double t0 = now_ms();
    if (sync) {
        int rc = libxl_test_xen_child(ctx, after_ms, status, 5000, &o->pid,
                                      &o->status, NULL);
        o->done = 1;
        o->rc = rc;
        o->t = now_ms();
    } else {
        libxl_asyncop_how h = how_for(o);
        int rc = libxl_test_xen_child(ctx, after_ms, status, 5000, &o->pid,
                                      &o->status, &h);
        CHECK_RC(rc, 0);
        if (!rc && !wait_ops(ctx, 1, 3000))
            case_fail("no completion within 3 s of a child exiting after %d ms",
                      after_ms);
    }
    if (o->done) {
        CHECK_RC(o->rc, 0);
        check_exited(o, status);
        CHECK_PROMPT(t0 + after_ms, o->t, "completion after the child's exit");
    }
    end(ctx, &snap);
}

static void case_timeout(void)
{
    xt_snap snap;
    libxl_ctx *ctx = begin("child_killed_on_timeout", &snap);
    if (!ctx) { case_end(); return; }
    op *o = &ops[0];
    libxl_asyncop_how h = how_for(o);
    double t0 = now_ms();
    int rc = libxl_test_xen_child(ctx, -1, 0, 100, &o->pid, &o->status, &h);
    CHECK_RC(rc, 0);
    if (!rc && !wait_ops(ctx, 1, 3000))
        case_fail("no completion within 3 s (timeout 100 ms)");
    if (o->done) {
        CHECK_RC(o->rc, ERROR_TIMEDOUT);
        check_killed(o);
        if (o->t - t0 < 99)
            case_fail("completed after %.1f ms, before its 100 ms timeout", o->t - t0);
        CHECK_PROMPT(t0 + 100, o->t, "completion after the timeout");
    }
    end(ctx, &snap);
}

static void case_abort(void)
{
    xt_snap snap;
    libxl_ctx *ctx = begin("child_killed_on_abort", &snap);
    if (!ctx) { case_end(); return; }
    op *o = &ops[0];
    libxl_asyncop_how h = how_for(o);
    int rc = libxl_test_xen_child(ctx, -1, 0, 10000, &o->pid, &o->status, &h);
    CHECK_RC(rc, 0);
    if (!rc) {
        wait_ops(ctx, 1, 30);
        CHECK(!o->done);
        double t_abort = now_ms();
        CHECK_RC(libxl_ao_abort(ctx, &h), 0);
        if (!wait_ops(ctx, 1, 3000))
            case_fail("no completion within 3 s of libxl_ao_abort");
        if (o->done) {
            CHECK_RC(o->rc, ERROR_ABORTED);
            CHECK_PROMPT(t_abort, o->t, "completion after libxl_ao_abort");
            if (o->pid_alive_at_completion)
                case_fail("the op completed while its killed child [%ld] was "
                          "not reaped yet", (long)o->pid);
        }
    }
    end(ctx, &snap);
}

static void case_ten(void)
{
    xt_snap snap;
    libxl_ctx *ctx = begin("ten_children_at_once", &snap);
    if (!ctx) { case_end(); return; }
    double t0 = now_ms();
    int started = 0;
    for (int i = 0; i < MAXOPS; i++) {
        libxl_asyncop_how h = how_for(&ops[i]);
        int rc = libxl_test_xen_child(ctx, 10 + 3 * i, i, 5000, &ops[i].pid,
                                      &ops[i].status, &h);
        if (rc) case_fail("libxl_test_xen_child #%d = %s", i, xt_err(rc));
        else started++;
    }
    if (started == MAXOPS) {
        if (!wait_ops(ctx, MAXOPS, 3000))
            case_fail("not all ten completed within 3 s");
        for (int i = 0; i < MAXOPS; i++) {
            if (!ops[i].done) continue;
            if (ops[i].done > 1) case_fail("op %d completed %d times", i, ops[i].done);
            CHECK_RC(ops[i].rc, 0);
            check_exited(&ops[i], i);
            CHECK_PROMPT(t0 + 10 + 3 * i, ops[i].t, "completion after a child's exit");
        }
    }
    end(ctx, &snap);
}

static void case_async_exec(int kind /* 0 exit, 1 timeout, 2 abort */)
{
    static const char *names[] = { "async_exec_exit_status", "async_exec_timeout",
                                   "async_exec_abort" };
    xt_snap snap;
    libxl_ctx *ctx = begin(names[kind], &snap);
    if (!ctx) { case_end(); return; }
    static const char *const exit3[] = { "/bin/sh", "-c", "exit 3", NULL };
    static const char *const sleep10[] = { "sleep", "10", NULL };
    op *o = &ops[0];
    libxl_asyncop_how h = how_for(o);
    double t0 = now_ms();
    int timeout = kind == 1 ? 100 : 10000;
    int rc = libxl_test_xen_async_exec(ctx, kind ? sleep10 : exit3, timeout,
                                       &o->pid, &o->status, &h);
    CHECK_RC(rc, 0);
    double t_cause = t0;
    if (!rc && kind == 2) {
        wait_ops(ctx, 1, 30);
        CHECK(!o->done);
        t_cause = now_ms();
        CHECK_RC(libxl_ao_abort(ctx, &h), 0);
    }
    if (kind == 1) t_cause = t0 + timeout;
    if (!rc && !wait_ops(ctx, 1, 5000))
        case_fail("no completion within 5 s");
    if (o->done) {
        if (kind == 0) {
            CHECK_RC(o->rc, 0);
            check_exited(o, 3);
        } else {
            CHECK_RC(o->rc, kind == 1 ? ERROR_TIMEDOUT : ERROR_ABORTED);
            check_killed(o);
        }
        if (kind == 1 && o->t - t0 < timeout - 1)
            case_fail("completed after %.1f ms, before its %d ms timeout",
                      o->t - t0, timeout);
        /* (sh's exit takes a few ms of its own: the bound is from the
         * start for kind 0) */
        CHECK_PROMPT(t_cause, o->t, "completion");
    }
    end(ctx, &snap);
}

/* An application child beside libxl's. */
static void case_app_child(void)
{
    xt_snap snap;
    libxl_ctx *ctx = begin("app_child_beside_libxl_child", &snap);
    if (!ctx) { case_end(); return; }
    op *o = &ops[0];
    libxl_asyncop_how h = how_for(o);
    int rc = libxl_test_xen_child(ctx, 60, 4, 5000, &o->pid, &o->status, &h);
    CHECK_RC(rc, 0);
    fflush(stdout);
    fflush(stderr);
    app_child = fork();
    if (app_child == 0) {
        usleep(20000);
        _exit(5);
    }
    double t_app_exit = now_ms() + 20;
    if (!rc && !wait_ops(ctx, 1, 3000))
        case_fail("libxl's op did not complete within 3 s");
    /* let the application's child's death be handled too */
    double end_t = now_ms() + 2000;
    while (!app_child_reaped_by && now_ms() < end_t) {
        xt_loop_once(ctx, 20, app_fds, napp);
        if (!strcmp(mode, "always-selective") || !strcmp(mode, "libxl"))
            app_reap_own(); /* the application reaps its own */
    }
    double t_reaped = now_ms();
    if (o->done) {
        CHECK_RC(o->rc, 0);
        check_exited(o, 4);
    }
    if (!app_child_reaped_by) {
        case_fail("the application's child was never reaped");
    } else {
        if (!WIFEXITED(app_child_status) || WEXITSTATUS(app_child_status) != 5)
            case_fail("application child status %#x, expected exit 5", app_child_status);
        int want_by = !strcmp(mode, "always") ? 2 : 1;
        if (app_child_reaped_by != want_by)
            case_fail("application child reaped by %s, expected %s",
                      app_child_reaped_by == 2 ? "libxl (reaped_callback)" : "the application",
                      want_by == 2 ? "libxl (reaped_callback)" : "the application");
        if (want_by == 2)
            CHECK_PROMPT(t_app_exit, t_reaped, "reaped_callback after the app child's exit");
    }
    if (!strcmp(mode, "mainloop-reaped") && unknown_to_libxl != 1)
        case_fail("libxl_childproc_reaped said ERROR_UNKNOWN_CHILD %d times, "
                  "expected once (for the application's child)", unknown_to_libxl);
    if (!strcmp(mode, "always-selective") && reaped_callback_calls)
        case_fail("reaped_callback called %d times in selective-reap mode",
                  reaped_callback_calls);
    end(ctx, &snap);
}

int main(int argc, char **argv)
{
    mode = argc > 1 ? argv[1] : "libxl";
    watchdog_thread(60);
    setvbuf(stdout, NULL, _IOLBF, 0);
    lg = xt_logger();
    hooks.reaped_callback = on_reaped;
    if (!strcmp(mode, "libxl")) {
        hooks.chldowner = libxl_sigchld_owner_libxl;
        hooks.reaped_callback = NULL;
    } else if (!strcmp(mode, "mainloop-reaped") ||
               !strcmp(mode, "mainloop-sigchld-occurred")) {
        hooks.chldowner = libxl_sigchld_owner_mainloop;
        mainloop = 1;
    } else if (!strcmp(mode, "always")) {
        hooks.chldowner = libxl_sigchld_owner_libxl_always;
    } else if (!strcmp(mode, "always-selective")) {
        hooks.chldowner = libxl_sigchld_owner_libxl_always_selective_reap;
    } else {
        printf("FAIL child_setup: unknown mode '%s'\n", mode);
        return 1;
    }
    if (mainloop) {
        if (pipe2(sigchld_pipe, O_CLOEXEC | O_NONBLOCK)) { perror("pipe2"); return 1; }
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_sigchld;
        sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
        sigaction(SIGCHLD, &sa, NULL);
        app_fds[0] = (xt_appfd){ .fd = sigchld_pipe[0], .cb = app_sigchld_readable };
        napp = 1;
    }

    case_exit(20, 7, 0);
    case_exit(0, 0, 0);
    if (!mainloop) case_exit(20, 9, 1);
    case_timeout();
    case_abort();
    case_ten();
    case_async_exec(0);
    case_async_exec(1);
    case_async_exec(2);
    if (strcmp(mode, "libxl")) case_app_child();

    xtl_logger_destroy(lg);
    return xt_failures ? 1 : 0;
}
