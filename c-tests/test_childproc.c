/*
 * test_childproc.c - child processes and SIGCHLD ownership, in each of
 * the four libxl_sigchld_owner modes (libxl_childproc_setmode).
 *
 * Scenario: every (mode, case) pair runs in a fresh process forked from
 * this program's main(), which never touches libxl itself, so each
 * scenario starts with SIGCHLD at its default and no libxl state.  In
 * mainloop mode the scenario is the application that owns SIGCHLD: its
 * own handler writes to a self-pipe, and a reaper thread (or, in the
 * mainloop_selfpipe cases, the application's single-threaded poll loop)
 * either waitpid(-1)s and passes each status to libxl_childproc_reaped,
 * or calls libxl_childproc_sigchld_occurred.  Cases, using
 * libxl_test_childproc in all three ao styles (sync, for_event,
 * callback):
 *  - exit_status: exit codes and death by signal come back in *status_r;
 *  - exec_failure: a missing program (by path, by PATH search) is 127;
 *  - timeout: a sleeping child is killed and reaped, ERROR_TIMEDOUT,
 *    *status_r untouched; a quick child beats its timeout;
 *  - abort: libxl_ao_abort (for_event, callback, and a synchronous op
 *    from another thread) kills and reaps the child, ERROR_ABORTED;
 *  - concurrent_100: 100 children at once, each status to its own op;
 *  - two_ctxs: two ctxs in two threads run children at the same time;
 *    the SIGCHLD disposition is libxl's only while some ctx needs it and
 *    the previous one (SIG_IGN here) is restored after the last;
 *  - app_children: the application's own children are left alone
 *    (selective: it waitpid()s them itself), reported to reaped_callback
 *    (libxl, libxl_always), or come back from libxl_childproc_reaped as
 *    ERROR_UNKNOWN_CHILD (mainloop);
 *  - mainloop_selfpipe_reaped / _sigchld_occurred (mainloop only): the
 *    application's own poll loop with its self-pipe, no threads;
 *  - reaped_foreign_pid: libxl_childproc_reaped with pids libxl did not
 *    start is ERROR_UNKNOWN_CHILD in mainloop mode (ERROR_INVAL, refused,
 *    in the modes where libxl reaps);
 *  - fork_replacement: the application's fork replacement is used;
 *  - fd_check: a child started by libxl and a child the application
 *    forks itself (while libxl has fds, a SIGCHLD self-pipe and a child
 *    running) see exactly the fds that a child forked before
 *    libxl_ctx_alloc sees (each lists /proc/self/fd after exec);
 *  - postfork_noexec: a forked child calls libxl_postfork_child_noexec,
 *    finds SIGCHLD given back, and uses a new ctx to run a child;
 *  - foreign_handler_is_fatal (libxl mode): an application that installed
 *    its own SIGCHLD handler without saying so is stopped (abort);
 *  - bad_input: NULL/empty argv, NULL status_r, an unknown chldowner.
 * Every case ends by checking /proc: no child process of the scenario is
 * left, zombie or running.
 * Success: one PASS line per (mode, case).
 * Failure: a FAIL line naming the mode, case and first failed check; a
 * scenario process that crashes or hangs (watchdog) gets a FAIL line from
 * main().
 */
#include "apploop.h"

#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <libxl_test_childproc.h>

enum { M_LIBXL, M_MAINLOOP, M_ALWAYS, M_SELECTIVE, NMODES };
static const char *const mode_names[NMODES] = {
    "libxl", "mainloop", "libxl_always", "libxl_always_selective_reap",
};
static const libxl_sigchld_owner mode_values[NMODES] = {
    libxl_sigchld_owner_libxl, libxl_sigchld_owner_mainloop,
    libxl_sigchld_owner_libxl_always,
    libxl_sigchld_owner_libxl_always_selective_reap,
};

static int mode;                  /* this scenario's mode */
static char self_exe[PATH_MAX];   /* for the fd lister */
static char case_name[128];
static xentoollog_logger *lg;

static void begin(const char *what)
{
    snprintf(case_name, sizeof case_name, "%s/%s", mode_names[mode], what);
    case_begin(case_name);
}

/*---------- a table of (pid, status) seen by the application ----------*/

#define MAXREC 512
static pthread_mutex_t rec_mx = PTHREAD_MUTEX_INITIALIZER;
static struct { pid_t pid; int status; } app_reaped[MAXREC], app_forked[MAXREC];
static int n_app_reaped, n_app_forked;

static void record(pid_t pid, int status, int forked)
{
    pthread_mutex_lock(&rec_mx);
    if (forked && n_app_forked < MAXREC)
        app_forked[n_app_forked++].pid = pid;
    else if (!forked && n_app_reaped < MAXREC) {
        app_reaped[n_app_reaped].pid = pid;
        app_reaped[n_app_reaped++].status = status;
    }
    pthread_mutex_unlock(&rec_mx);
}

/* Status of pid if the application (its reaper, or reaped_callback) has
 * seen it, else -1. */
static int reaped_status(pid_t pid)
{
    int st = -1;
    pthread_mutex_lock(&rec_mx);
    for (int i = 0; i < n_app_reaped; i++)
        if (app_reaped[i].pid == pid) st = app_reaped[i].status;
    pthread_mutex_unlock(&rec_mx);
    return st;
}

static int forks_seen(void)
{
    pthread_mutex_lock(&rec_mx);
    int n = n_app_forked;
    pthread_mutex_unlock(&rec_mx);
    return n;
}

static pid_t last_fork(void)
{
    pthread_mutex_lock(&rec_mx);
    pid_t p = n_app_forked ? app_forked[n_app_forked - 1].pid : 0;
    pthread_mutex_unlock(&rec_mx);
    return p;
}

/*---------- childproc hooks ----------*/

static int use_fork_replacement;

/* fork_replacement: called by libxl with its lock held; must not call
 * libxl.  Records the pid in the parent. */
static pid_t app_fork(void *user)
{
    (void)user;
    pid_t p = fork();
    if (p > 0) record(p, 0, 1);
    return p;
}

/* reaped_callback (libxl, libxl_always): children libxl did not start. */
static int app_reaped_cb(pid_t pid, int status, void *user)
{
    (void)user;
    record(pid, status, 0);
    return 0;
}

static libxl_childproc_hooks hooks;

static void set_mode(libxl_ctx *ctx)
{
    hooks.chldowner = mode_values[mode];
    hooks.fork_replacement = use_fork_replacement ? app_fork : NULL;
    hooks.reaped_callback =
        (mode == M_LIBXL || mode == M_ALWAYS) ? app_reaped_cb : NULL;
    libxl_childproc_setmode(ctx, &hooks, NULL);
}

static libxl_ctx *new_ctx(void)
{
    libxl_ctx *ctx = test_ctx(lg);
    set_mode(ctx);
    return ctx;
}

/*---------- mainloop mode: the application owns SIGCHLD ----------*/

static int app_pipe[2] = { -1, -1 };

static void app_on_sigchld(int sig)
{
    (void)sig;
    int e = errno;
    if (write(app_pipe[1], "c", 1) < 0) { /* full: already woken */ }
    errno = e;
}

static void app_take_sigchld(void)
{
    test_pipe(app_pipe);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = app_on_sigchld;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, NULL);
}

static void drain(int fd)
{
    char buf[64];
    while (read(fd, buf, sizeof buf) > 0) {}
}

enum { VIA_REAPED = 1, VIA_SIGCHLD_OCCURRED = 2 };
static pthread_mutex_t reaper_mx = PTHREAD_MUTEX_INITIALIZER;
static libxl_ctx *reaper_ctxs[4];
static int reaper_nctx;
static int reaper_via = VIA_REAPED;

/* What the application does when its self-pipe says SIGCHLD happened. */
static void app_reap_pass(void)
{
    pthread_mutex_lock(&reaper_mx);
    if (reaper_via == VIA_SIGCHLD_OCCURRED) {
        for (int i = 0; i < reaper_nctx; i++)
            libxl_childproc_sigchld_occurred(reaper_ctxs[i]);
    } else {
        for (;;) {
            int st;
            pid_t p = waitpid(-1, &st, WNOHANG);
            if (p <= 0) break;
            int claimed = 0;
            for (int i = 0; i < reaper_nctx; i++) {
                int rc = libxl_childproc_reaped(reaper_ctxs[i], p, st);
                if (rc == 0) claimed++;
                else if (rc != ERROR_UNKNOWN_CHILD)
                    case_fail("libxl_childproc_reaped(%d) = %d", (int)p, rc);
            }
            if (claimed > 1) case_fail("pid %d claimed by %d ctxs", (int)p, claimed);
            if (!claimed) record(p, st, 0);   /* the application's own */
        }
    }
    pthread_mutex_unlock(&reaper_mx);
}

static void reaper_add(libxl_ctx *ctx)
{
    pthread_mutex_lock(&reaper_mx);
    reaper_ctxs[reaper_nctx++] = ctx;
    pthread_mutex_unlock(&reaper_mx);
}

static void reaper_remove(libxl_ctx *ctx)
{
    pthread_mutex_lock(&reaper_mx);
    for (int i = 0; i < reaper_nctx; i++)
        if (reaper_ctxs[i] == ctx) reaper_ctxs[i] = reaper_ctxs[--reaper_nctx];
    pthread_mutex_unlock(&reaper_mx);
}

static atomic_int reaper_stop;   /* written by the main thread, read by the reaper */
static pthread_t reaper_th;
static int reaper_running;

static void *reaper_main(void *u)
{
    (void)u;
    struct pollfd pf = { .fd = app_pipe[0], .events = POLLIN };
    while (!reaper_stop) {
        poll(&pf, 1, 50);
        drain(app_pipe[0]);
        app_reap_pass();
    }
    return NULL;
}

/* Per-scenario setup: mainloop mode takes SIGCHLD and (unless the case
 * reaps in its own loop) starts the reaper thread. */
static void env_begin(int with_reaper)
{
    if (mode != M_MAINLOOP) return;
    app_take_sigchld();
    if (with_reaper) {
        reaper_stop = 0;
        if (pthread_create(&reaper_th, NULL, reaper_main, NULL)) { perror("pthread_create"); exit(1); }
        reaper_running = 1;
    }
}

static void env_end(void)
{
    if (reaper_running) {
        reaper_stop = 1;
        pthread_join(reaper_th, NULL);
        reaper_running = 0;
    }
}

static libxl_ctx *env_ctx(void)
{
    libxl_ctx *ctx = new_ctx();
    if (mode == M_MAINLOOP) reaper_add(ctx);
    return ctx;
}

static void env_ctx_free(libxl_ctx *ctx)
{
    if (mode == M_MAINLOOP) reaper_remove(ctx);
    libxl_ctx_free(ctx);
}

/*---------- the application's poll loop ----------*/

static apploop L;
static int inline_via;          /* mainloop_selfpipe: reap in this loop */

/* One round of the application's loop; with inline_via, its SIGCHLD
 * self-pipe is in the same poll and handled here. */
static void loop_once(libxl_ctx *ctx, int max_ms)
{
    int ready = 0;
    app_iter_with(ctx, &L, max_ms, inline_via ? app_pipe[0] : -1, &ready);
    if (ready) {
        drain(app_pipe[0]);
        reaper_via = inline_via;
        app_reap_pass();
    }
}

/* Runs the loop until *flag >= target; 0 on timeout. */
static int loop_until(libxl_ctx *ctx, volatile int *flag, int target, int ms)
{
    double end = now_ms() + ms;
    while (*flag < target) {
        if (now_ms() > end) return 0;
        loop_once(ctx, 50);
    }
    return 1;
}

/*---------- running the test operation ----------*/

enum { AO_SYNC, AO_EVENT, AO_CALLBACK, NAO };
static const char *const ao_names[NAO] = { "sync", "for_event", "callback" };

/* Waits for the completion event of for_user; its rc, or 1000 if none. */
static int wait_completion(libxl_ctx *ctx, uint64_t fu, int via_loop)
{
    libxl_event *ev = NULL;
    if (via_loop) {
        double end = now_ms() + 10000;
        while (libxl_event_check(ctx, &ev, OPCOMPLETE_MASK, pred_for_user, &fu)) {
            if (now_ms() > end) return 1000;
            loop_once(ctx, 50);
        }
    } else if (libxl_event_wait(ctx, &ev, OPCOMPLETE_MASK, pred_for_user, &fu)) {
        return 1000;
    }
    int rc = ev->u.operation_complete.rc;
    libxl_event_free(ctx, ev);
    return rc;
}

static uint64_t next_user = 1;

static int run_op_(libxl_ctx *ctx, const char *const *argv, int timeout_ms,
                   int *status, int how)
{
    int rc;
    if (how == AO_SYNC)
        return libxl_test_childproc(ctx, argv, timeout_ms, status, NULL);
    if (how == AO_EVENT) {
        libxl_asyncop_how h = ev_how(next_user++);
        rc = libxl_test_childproc(ctx, argv, timeout_ms, status, &h);
        if (rc) return rc;
        return wait_completion(ctx, h.u.for_event, inline_via != 0);
    }
    cbrec r;
    cbrec_init(&r);
    libxl_asyncop_how h = cb_how(rec_cb, &r);
    rc = libxl_test_childproc(ctx, argv, timeout_ms, status, &h);
    if (rc) return rc;
    if (!loop_until(ctx, &r.calls, 1, 10000)) case_fail("callback never came");
    return r.rc;
}

/* How long the last run_op took, start to completion. */
static double last_op_ms;

/* Runs argv in ao style `how` to completion; returns the op's rc. */
static int run_op(libxl_ctx *ctx, const char *const *argv, int timeout_ms,
                  int *status, int how)
{
    double t0 = now_ms();
    int rc = run_op_(ctx, argv, timeout_ms, status, how);
    last_op_ms = now_ms() - t0;
    return rc;
}

/* The last run_op's child took about `expected` ms (0: it exits at once;
 * else its own sleep or the op's timeout): its death (or the timeout)
 * must reach the operation promptly after that. */
static void check_prompt_op(double expected, const char *what)
{
    if (last_op_ms > expected + prompt_ms())
        case_fail("%s: completed %.0f ms after it started, %.0f ms after its child exited or "
                  "timed out (> %.0f ms: not prompt)", what, last_op_ms, last_op_ms - expected,
                  prompt_ms());
}

/*---------- process checks ----------*/

/* Fails the case if this process has any child, zombie or not. */
static void check_no_children(void)
{
    DIR *d = opendir("/proc");
    struct dirent *de;
    pid_t me = getpid();
    if (!d) { case_fail("opendir /proc: %s", strerror(errno)); return; }
    while ((de = readdir(d))) {
        if (de->d_name[0] < '0' || de->d_name[0] > '9') continue;
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/%s/stat", de->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        char *rp = strrchr(buf, ')');
        char state;
        int ppid;
        if (rp && sscanf(rp + 1, " %c %d", &state, &ppid) == 2 && ppid == me)
            case_fail("child %s left behind (state %c)", de->d_name, state);
    }
    closedir(d);
}

static int process_gone(pid_t pid)
{
    return pid > 0 && kill(pid, 0) == -1 && errno == ESRCH;
}

static void *sigchld_disposition(void)
{
    struct sigaction sa;
    sigaction(SIGCHLD, NULL, &sa);
    return (void *)sa.sa_handler;
}

static int exited_with(int st, int code)
{
    return WIFEXITED(st) && WEXITSTATUS(st) == code;
}

/* Waits for the application's own child in the way its mode allows. */
static int app_child_wait(libxl_ctx *ctx, pid_t pid)
{
    int st;
    if (mode == M_SELECTIVE ||
        (mode == M_MAINLOOP && (!reaper_running || reaper_via == VIA_SIGCHLD_OCCURRED))) {
        if (waitpid(pid, &st, 0) != pid) { case_fail("waitpid: %s", strerror(errno)); return -1; }
        return st;
    }
    /* libxl (or the application's reaper thread) reaps it: let libxl's
     * loop run (with a short child of its own, so that in libxl mode it
     * owns SIGCHLD meanwhile) until the status has been reported. */
    static const char *const nap[] = { "sleep", "0.02", NULL };
    for (int i = 0; i < 500; i++) {
        if ((st = reaped_status(pid)) != -1) return st;
        int s;
        libxl_test_childproc(ctx, nap, -1, &s, NULL);
    }
    case_fail("the application's child %d was never reported", (int)pid);
    return -1;
}

/* fork + exec argv, as the application itself would. */
static pid_t app_spawn(const char *const *argv)
{
    pid_t p = fork();
    if (p == 0) {
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    if (p < 0) case_fail("fork: %s", strerror(errno));
    return p;
}

/*---------- cases ----------*/

static const char *const sh_exit42[] = { "sh", "-c", "exit 42", NULL };
static const char *const sh_killself[] = { "sh", "-c", "kill -TERM $$", NULL };
static const char *const sleep10[] = { "sleep", "10", NULL };
static const char *const true_[] = { "true", NULL };

static void c_exit_status(void)
{
    begin("exit_status");
    env_begin(1);
    libxl_ctx *ctx = env_ctx();
    for (int how = 0; how < NAO; how++) {
        int st = -1;
        CHECK_RC(run_op(ctx, sh_exit42, -1, &st, how), 0);
        check_prompt_op(0, ao_names[how]);
        if (!exited_with(st, 42)) case_fail("%s: status %#x, want exit 42", ao_names[how], st);
        st = -1;
        CHECK_RC(run_op(ctx, sh_killself, -1, &st, how), 0);
        check_prompt_op(0, ao_names[how]);
        if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGTERM)
            case_fail("%s: status %#x, want SIGTERM", ao_names[how], st);
    }
    env_ctx_free(ctx);
    env_end();
    apploop_free(&L);
    check_no_children();
    case_end();
}

/* A child whose exec fails exits without exec; under valgrind that child
 * is leak-checked, and memory that only another thread of the parent
 * referred to reads as lost there (that thread does not exist in it).  So
 * cases whose children may exit without exec run without helper threads:
 * in mainloop mode the application reaps in its own poll loop, and the
 * synchronous style (which needs a second thread to reap) is left out. */
static void env_begin_threadless(void)
{
    env_begin(0);
    if (mode == M_MAINLOOP) inline_via = VIA_REAPED;
}

static void c_exec_failure(void)
{
    begin("exec_failure");
    env_begin_threadless();
    libxl_ctx *ctx = env_ctx();
    static const char *const by_path[] = { "/nonexistent/program", "x", NULL };
    static const char *const by_search[] = { "no-such-program-xyzzy", NULL };
    for (int how = mode == M_MAINLOOP ? AO_EVENT : AO_SYNC; how < NAO; how++) {
        int st = -1;
        CHECK_RC(run_op(ctx, by_path, -1, &st, how), 0);
        check_prompt_op(0, ao_names[how]);
        if (!exited_with(st, 127)) case_fail("%s: by path: status %#x", ao_names[how], st);
        st = -1;
        CHECK_RC(run_op(ctx, by_search, -1, &st, how), 0);
        check_prompt_op(0, ao_names[how]);
        if (!exited_with(st, 127)) case_fail("%s: PATH search: status %#x", ao_names[how], st);
    }
    env_ctx_free(ctx);
    env_end();
    apploop_free(&L);
    check_no_children();
    case_end();
}

static void c_timeout(void)
{
    begin("timeout");
    use_fork_replacement = 1;   /* to learn the children's pids */
    env_begin(1);
    libxl_ctx *ctx = env_ctx();
    for (int how = 0; how < NAO; how++) {
        int st = 12345;
        double t0 = now_ms();
        CHECK_RC(run_op(ctx, sleep10, 50, &st, how), ERROR_TIMEDOUT);
        double dt = now_ms() - t0;
        CHECK_RC(st, 12345);
        if (dt < 45) case_fail("%s: timed out after %.0f ms", ao_names[how], dt);
        check_prompt_op(50, ao_names[how]);
        if (!process_gone(last_fork()))
            case_fail("%s: child %d not reaped at completion", ao_names[how], (int)last_fork());
        CHECK_RC(run_op(ctx, true_, 5000, &st, how), 0);
        check_prompt_op(0, ao_names[how]);
        CHECK_RC(st, 0);
    }
    env_ctx_free(ctx);
    env_end();
    apploop_free(&L);
    check_no_children();
    case_end();
}

typedef struct { libxl_ctx *ctx; int rc; } aborter;

static void *abort_sync_later(void *u)
{
    aborter *a = u;
    usleep(100 * 1000);
    for (int i = 0; i < 200; i++) {
        a->rc = libxl_ao_abort(a->ctx, NULL);
        if (a->rc != ERROR_NOTFOUND) break;
        usleep(10 * 1000);
    }
    return NULL;
}

static void c_abort(void)
{
    begin("abort");
    use_fork_replacement = 1;
    env_begin(1);
    libxl_ctx *ctx = env_ctx();
    int st = 12345;

    libxl_asyncop_how h = ev_how(77);
    CHECK_RC(libxl_test_childproc(ctx, sleep10, -1, &st, &h), 0);
    pid_t pid = last_fork();
    CHECK_RC(libxl_ao_abort(ctx, &h), 0);
    CHECK_RC(wait_completion(ctx, 77, 0), ERROR_ABORTED);
    if (!process_gone(pid)) case_fail("for_event: child %d not reaped at completion", (int)pid);

    cbrec r;
    cbrec_init(&r);
    libxl_asyncop_how hc = cb_how(rec_cb, &r);
    CHECK_RC(libxl_test_childproc(ctx, sleep10, 60000, &st, &hc), 0);
    pid = last_fork();
    loop_once(ctx, 10);
    CHECK_RC(libxl_ao_abort(ctx, &hc), 0);
    if (!loop_until(ctx, &r.calls, 1, 5000)) case_fail("aborted callback op never completed");
    CHECK_RC(r.rc, ERROR_ABORTED);
    if (!process_gone(pid)) case_fail("callback: child %d not reaped at completion", (int)pid);

    aborter a = { ctx, 1000 };
    pthread_t th;
    pthread_create(&th, NULL, abort_sync_later, &a);
    CHECK_RC(libxl_test_childproc(ctx, sleep10, -1, &st, NULL), ERROR_ABORTED);
    pthread_join(th, NULL);
    CHECK_RC(a.rc, 0);
    if (!process_gone(last_fork())) case_fail("sync: child not reaped at completion");
    CHECK_RC(st, 12345);

    env_ctx_free(ctx);
    env_end();
    apploop_free(&L);
    check_no_children();
    case_end();
}

static void c_concurrent_100(void)
{
    begin("concurrent_100");
    reaper_via = VIA_SIGCHLD_OCCURRED;
    env_begin(1);
    libxl_ctx *ctx = env_ctx();
    enum { N = 100 };
    static int st[N];
    static char script[N][32];
    for (int i = 0; i < N; i++) {
        snprintf(script[i], sizeof script[i], "exit %d", i % 50);
        const char *argv[] = { "sh", "-c", script[i], NULL };
        st[i] = -1;
        libxl_asyncop_how h = ev_how(1000 + i);
        CHECK_RC(libxl_test_childproc(ctx, argv, -1, &st[i], &h), 0);
    }
    for (int n = 0; n < N; n++) {
        libxl_event *ev = NULL;
        if (libxl_event_wait(ctx, &ev, OPCOMPLETE_MASK, NULL, NULL)) {
            case_fail("libxl_event_wait failed after %d completions", n);
            break;
        }
        int i = (int)ev->for_user - 1000;
        CHECK_RC(ev->u.operation_complete.rc, 0);
        if (i < 0 || i >= N || !exited_with(st[i], i % 50))
            case_fail("op %d: status %#x", i, i >= 0 && i < N ? st[i] : -1);
        libxl_event_free(ctx, ev);
    }
    env_ctx_free(ctx);
    env_end();
    check_no_children();
    case_end();
}

typedef struct { libxl_ctx *ctx; int base; int bad; } worker;

static void *worker_main(void *u)
{
    worker *w = u;
    for (int i = 0; i < 10; i++) {
        char script[32];
        snprintf(script, sizeof script, "exit %d", w->base + i);
        const char *argv[] = { "sh", "-c", script, NULL };
        int st = -1;
        int rc = libxl_test_childproc(w->ctx, argv, -1, &st, NULL);
        if (rc || !exited_with(st, w->base + i)) w->bad++;
    }
    return NULL;
}

static void c_two_ctxs(void)
{
    begin("two_ctxs");
    /* A previous disposition other than the default, to be restored. */
    if (mode != M_MAINLOOP) signal(SIGCHLD, SIG_IGN);
    env_begin(1);
    void *before = sigchld_disposition();
    libxl_ctx *c1 = env_ctx(), *c2 = env_ctx();
    int always = mode == M_ALWAYS || mode == M_SELECTIVE;
    if (always && sigchld_disposition() == before) case_fail("handler not installed at setmode");
    if (!always && sigchld_disposition() != before) case_fail("disposition changed with no children");

    worker w1 = { c1, 10, 0 }, w2 = { c2, 30, 0 };
    pthread_t t1, t2;
    pthread_create(&t1, NULL, worker_main, &w1);
    pthread_create(&t2, NULL, worker_main, &w2);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    CHECK_RC(w1.bad, 0);
    CHECK_RC(w2.bad, 0);

    if (mode == M_LIBXL && sigchld_disposition() != before)
        case_fail("libxl mode: handler still installed with no children");
    env_ctx_free(c1);
    if (always && sigchld_disposition() == before) case_fail("handler removed while the 2nd ctx needs it");
    env_ctx_free(c2);
    if (sigchld_disposition() != before) case_fail("previous SIGCHLD disposition not restored");
    env_end();
    check_no_children();
    case_end();
}

static void c_app_children(void)
{
    begin("app_children");
    env_begin(1);
    libxl_ctx *ctx = env_ctx();
    static const char *const app_argv[] = { "sh", "-c", "sleep 0.05; exit 5", NULL };
    pid_t mine = app_spawn(app_argv);
    /* libxl runs children meanwhile: one outlives the application's. */
    static const char *const slow[] = { "sleep", "0.2", NULL };
    int st = -1;
    CHECK_RC(run_op(ctx, slow, -1, &st, AO_SYNC), 0);
    check_prompt_op(200, "sync sleep 0.2");
    CHECK_RC(run_op(ctx, sh_exit42, -1, &st, AO_EVENT), 0);
    check_prompt_op(0, "for_event exit 42");
    if (mode == M_SELECTIVE) {
        if (reaped_status(mine) != -1) case_fail("libxl reaped the application's child");
        int r = waitpid(mine, &st, WNOHANG);
        if (r != mine) case_fail("the application's child was not left for it (waitpid = %d)", r);
        else if (!exited_with(st, 5)) case_fail("app child status %#x", st);
    } else {
        st = app_child_wait(ctx, mine);
        if (st != -1 && !exited_with(st, 5)) case_fail("app child reported with status %#x", st);
    }
    env_ctx_free(ctx);
    env_end();
    check_no_children();
    case_end();
}

static void mainloop_selfpipe(const char *name, int via)
{
    begin(name);
    env_begin(0);              /* no threads: this loop reaps */
    inline_via = via;
    libxl_ctx *ctx = new_ctx();
    reaper_add(ctx);
    enum { N = 10 };
    int st[N];
    for (int i = 0; i < N; i++) {
        char script[32];
        snprintf(script, sizeof script, "exit %d", i);
        const char *argv[] = { "sh", "-c", script, NULL };
        libxl_asyncop_how h = ev_how(500 + i);
        st[i] = -1;
        CHECK_RC(libxl_test_childproc(ctx, argv, -1, &st[i], &h), 0);
    }
    for (int i = 0; i < N; i++) {
        CHECK_RC(wait_completion(ctx, 500 + i, 1), 0);
        if (!exited_with(st[i], i)) case_fail("op %d: status %#x", i, st[i]);
    }
    int s = -1;
    CHECK_RC(run_op(ctx, sh_exit42, -1, &s, AO_CALLBACK), 0);
    check_prompt_op(0, "callback op");
    if (!exited_with(s, 42)) case_fail("callback op: status %#x", s);
    CHECK_RC(run_op(ctx, sleep10, 30, &s, AO_EVENT), ERROR_TIMEDOUT);
    check_prompt_op(30, "for_event op timing out");
    reaper_remove(ctx);
    libxl_ctx_free(ctx);
    inline_via = 0;
    apploop_free(&L);
    check_no_children();
    case_end();
}

static void c_mainloop_selfpipe_reaped(void)
{
    mainloop_selfpipe("mainloop_selfpipe_reaped", VIA_REAPED);
}

static void c_mainloop_selfpipe_sigchld_occurred(void)
{
    mainloop_selfpipe("mainloop_selfpipe_sigchld_occurred", VIA_SIGCHLD_OCCURRED);
}

static void c_reaped_foreign_pid(void)
{
    begin("reaped_foreign_pid");
    env_begin(0);
    libxl_ctx *ctx = new_ctx();
    int want = mode == M_MAINLOOP ? ERROR_UNKNOWN_CHILD : ERROR_INVAL;
    CHECK_RC(libxl_childproc_reaped(ctx, getpid(), 0), want);
    CHECK_RC(libxl_childproc_reaped(ctx, 1, 0), want);
    pid_t mine = app_spawn(true_);
    int st;
    if (mode == M_SELECTIVE || mode == M_MAINLOOP) {
        CHECK_RC(waitpid(mine, &st, 0), mine);
        CHECK_RC(libxl_childproc_reaped(ctx, mine, st), want);
    } else {
        app_child_wait(ctx, mine);
    }
    libxl_ctx_free(ctx);
    check_no_children();
    case_end();
}

static void c_fork_replacement(void)
{
    begin("fork_replacement");
    use_fork_replacement = 1;
    env_begin(1);
    libxl_ctx *ctx = env_ctx();
    int before = forks_seen(), st = -1;
    CHECK_RC(run_op(ctx, sh_exit42, -1, &st, AO_SYNC), 0);
    check_prompt_op(0, "sync op with fork_replacement");
    if (!exited_with(st, 42)) case_fail("status %#x", st);
    CHECK_RC(forks_seen() - before, 1);
    if (!process_gone(last_fork())) case_fail("child %d not reaped", (int)last_fork());
    env_ctx_free(ctx);
    env_end();
    check_no_children();
    case_end();
}

/*---------- fd check ----------*/

/* The lister: this program re-executed with --list-fds FILE writes one
 * line per fd it has open (but the one reading the directory), "N -> target". */
static int list_fds(const char *out)
{
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    DIR *d = opendir("/proc/self/fd");
    if (!d) return 2;
    int fds[256], n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < 256) {
        if (de->d_name[0] == '.') continue;
        int fd = atoi(de->d_name);
        if (fd != dirfd(d)) fds[n++] = fd;
    }
    FILE *f = fopen(tmp, "w");
    if (!f) return 2;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (fds[j] < fds[i]) { int t = fds[i]; fds[i] = fds[j]; fds[j] = t; }
    for (int i = 0; i < n; i++) {
        char p[64], target[PATH_MAX];
        snprintf(p, sizeof p, "/proc/self/fd/%d", fds[i]);
        ssize_t l = readlink(p, target, sizeof target - 1);
        target[l > 0 ? l : 0] = 0;
        fprintf(f, "%d -> %s\n", fds[i], target);
    }
    closedir(d);
    if (fclose(f)) return 2;
    return rename(tmp, out) ? 2 : 0;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return strdup("(missing)");
    char *buf = calloc(1, 8192);
    size_t n = fread(buf, 1, 8191, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

static void c_fd_check(void)
{
    begin("fd_check");
    char dir[] = "/tmp/xl-fdcheck-XXXXXX";
    if (!mkdtemp(dir)) { case_fail("mkdtemp"); case_end(); return; }
    char f_before[64], f_lib[64], f_app[64];
    snprintf(f_before, sizeof f_before, "%s/before", dir);
    snprintf(f_lib, sizeof f_lib, "%s/lib", dir);
    snprintf(f_app, sizeof f_app, "%s/app", dir);
    const char *argv_before[] = { self_exe, "--list-fds", f_before, NULL };
    const char *argv_lib[] = { self_exe, "--list-fds", f_lib, NULL };
    const char *argv_app[] = { self_exe, "--list-fds", f_app, NULL };

    pid_t early = app_spawn(argv_before);
    int st;
    waitpid(early, &st, 0);

    env_begin(1);
    libxl_ctx *ctx = env_ctx();
    /* libxl busy: a child running, its fds and SIGCHLD pipe in place */
    int bst;
    libxl_asyncop_how h = ev_how(9);
    CHECK_RC(libxl_test_childproc(ctx, sleep10, -1, &bst, &h), 0);
    loop_once(ctx, 10);

    CHECK_RC(run_op(ctx, argv_lib, -1, &st, AO_SYNC), 0);
    if (!exited_with(st, 0)) case_fail("library child status %#x", st);
    st = app_child_wait(ctx, app_spawn(argv_app));
    if (!exited_with(st, 0)) case_fail("application child status %#x", st);
    libxl_ao_abort(ctx, &h);
    CHECK_RC(wait_completion(ctx, 9, 0), ERROR_ABORTED);

    char *a = slurp(f_before), *b = slurp(f_lib), *c = slurp(f_app);
    if (strcmp(a, b)) case_fail("library child's fds differ:\n--- before ctx_alloc:\n%s--- libxl's child:\n%s", a, b);
    if (strcmp(a, c)) case_fail("application child's fds differ:\n--- before ctx_alloc:\n%s--- app's child:\n%s", a, c);
    free(a); free(b); free(c);
    unlink(f_before); unlink(f_lib); unlink(f_app); rmdir(dir);
    env_ctx_free(ctx);
    env_end();
    apploop_free(&L);
    check_no_children();
    case_end();
}

/*---------- postfork ----------*/

static libxl_ctx *parent_ctx;  /* global: still reachable in the child */

static void c_postfork_noexec(void)
{
    begin("postfork_noexec");
    void *orig = sigchld_disposition();
    env_begin_threadless();    /* the child below exits without exec */
    parent_ctx = env_ctx();
    int bst;
    libxl_asyncop_how h = ev_how(5);
    CHECK_RC(libxl_test_childproc(parent_ctx, sleep10, -1, &bst, &h), 0);
    void *in_parent = sigchld_disposition();
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) {
        int bad = 0;
        libxl_postfork_child_noexec(parent_ctx);
        if (mode != M_MAINLOOP && sigchld_disposition() != orig) bad |= 1;
        if (mode == M_MAINLOOP && sigchld_disposition() != in_parent) bad |= 2;
        signal(SIGCHLD, SIG_DFL);  /* the app's reaping stays in the parent */
        libxl_ctx *c = test_ctx(lg);
        libxl_childproc_setmode(c, NULL, NULL);
        int st = -1;
        if (libxl_test_childproc(c, sh_exit42, -1, &st, NULL) || !exited_with(st, 42)) bad |= 4;
        libxl_ctx_free(c);
        _exit(bad);
    }
    int st = app_child_wait(parent_ctx, p);
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st))
        case_fail("noexec child status %#x (1: SIGCHLD not restored, 2: app's handler touched, 4: child op failed)", st);
    libxl_ao_abort(parent_ctx, &h);
    CHECK_RC(wait_completion(parent_ctx, 5, inline_via != 0), ERROR_ABORTED);
    env_ctx_free(parent_ctx);
    parent_ctx = NULL;
    env_end();
    check_no_children();
    case_end();
}

static void c_foreign_handler_is_fatal(void)
{
    begin("foreign_handler_is_fatal");
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 2);   /* the CRITICAL line is expected */
        app_take_sigchld();
        libxl_ctx *c = test_ctx(NULL);
        int st;
        libxl_test_childproc(c, true_, -1, &st, NULL);
        _exit(0);
    }
    int st;
    waitpid(p, &st, 0);
    if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGABRT)
        case_fail("status %#x, want SIGABRT", st);
    check_no_children();
    case_end();
}

/*---------- bad input ----------*/

static void c_bad_input(void)
{
    begin("bad_input");
    char *buf = NULL;
    size_t len = 0;
    FILE *mf = open_memstream(&buf, &len);
    xentoollog_logger *ml = (xentoollog_logger *)xtl_createlogger_stdiostream(mf, XTL_ERROR, 0);
    libxl_ctx *ctx = test_ctx(ml);
    int st = 12345;
    static const char *const empty[] = { NULL };
    struct { int rc; const char *word; } r[3];
    r[0].rc = libxl_test_childproc(ctx, NULL, -1, &st, NULL); r[0].word = "argv";
    r[1].rc = libxl_test_childproc(ctx, empty, -1, &st, NULL); r[1].word = "argv";
    r[2].rc = libxl_test_childproc(ctx, true_, -1, NULL, NULL); r[2].word = "status_r";
    fflush(mf);
    for (int i = 0; i < 3; i++) CHECK_RC(r[i].rc, ERROR_INVAL);
    if (!strstr(buf, "invalid argument argv")) case_fail("no log line naming argv: %s", buf);
    if (!strstr(buf, "invalid argument status_r")) case_fail("no log line naming status_r: %s", buf);
    CHECK_RC(st, 12345);
    libxl_childproc_hooks bad = { .chldowner = (libxl_sigchld_owner)7 };
    libxl_childproc_setmode(ctx, &bad, NULL);
    fflush(mf);
    if (!strstr(buf, "chldowner")) case_fail("no log line naming chldowner: %s", buf);
    CHECK_RC(libxl_childproc_reaped(NULL, 1, 0), ERROR_INVAL);
    /* still usable, in the default mode */
    CHECK_RC(libxl_test_childproc(ctx, sh_exit42, -1, &st, NULL), 0);
    if (!exited_with(st, 42)) case_fail("status %#x after refusals", st);
    libxl_ctx_free(ctx);
    xtl_logger_destroy(ml);
    fclose(mf);
    free(buf);
    check_no_children();
    case_end();
}

/*---------- main: each (mode, case) in its own process ----------*/

typedef struct {
    void (*fn)(void);
    const char *name;
    unsigned modes;   /* bit per mode */
} tcase;

#define ALL ((1u << NMODES) - 1)
static const tcase cases[] = {
    { c_exit_status, "exit_status", ALL },
    { c_exec_failure, "exec_failure", ALL },
    { c_timeout, "timeout", ALL },
    { c_abort, "abort", ALL },
    { c_concurrent_100, "concurrent_100", ALL },
    { c_two_ctxs, "two_ctxs", ALL },
    { c_app_children, "app_children", ALL },
    { c_mainloop_selfpipe_reaped, "mainloop_selfpipe_reaped", 1u << M_MAINLOOP },
    { c_mainloop_selfpipe_sigchld_occurred, "mainloop_selfpipe_sigchld_occurred", 1u << M_MAINLOOP },
    { c_reaped_foreign_pid, "reaped_foreign_pid", ALL },
    { c_fork_replacement, "fork_replacement", ALL },
    { c_fd_check, "fd_check", ALL },
    { c_postfork_noexec, "postfork_noexec", ALL },
    { c_foreign_handler_is_fatal, "foreign_handler_is_fatal", 1u << M_LIBXL },
    { c_bad_input, "bad_input", 1u << M_LIBXL },
};

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--list-fds"))
        return list_fds(argv[2]);
    ssize_t l = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    if (l <= 0) { perror("readlink /proc/self/exe"); return 1; }
    self_exe[l] = 0;
    const char *only = argc > 1 ? argv[1] : NULL;   /* e.g. "mainloop/abort" */
    unsigned budget = getenv("XL_TEST_SLOW") ? 300 : 60;

    for (int m = 0; m < NMODES; m++) {
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            if (!(cases[i].modes & (1u << m))) continue;
            char name[128];
            snprintf(name, sizeof name, "%s/%s", mode_names[m], cases[i].name);
            if (only && strcmp(only, name) && strcmp(only, mode_names[m])) continue;
            fflush(stdout);
            pid_t p = fork();
            if (p < 0) { perror("fork"); return 1; }
            if (p == 0) {
                mode = m;
                watchdog(budget);
                lg = test_logger();
                cases[i].fn();
                xtl_logger_destroy(lg);
                exit(h_finish());
            }
            int st;
            while (waitpid(p, &st, 0) < 0 && errno == EINTR) {}
            if (WIFEXITED(st) && WEXITSTATUS(st) == 0) continue;
            h_failures++;
            if (!(WIFEXITED(st) && WEXITSTATUS(st) == 1))
                printf("FAIL %s: scenario process %s %d\n", name,
                       WIFEXITED(st) ? "exited with status" : "died from signal",
                       WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
        }
    }
    return h_finish();
}
