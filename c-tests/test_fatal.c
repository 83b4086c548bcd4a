/*
 * test_fatal.c - misuse that libxl defines as fatal is detected and
 * reported, never a deadlock or silent corruption.
 *
 * Scenario: each case runs in a forked child (run_in_child: stderr
 * captured, killed by SIGALRM after a few seconds) and commits one
 * fatal misuse:
 *  - an osevent hook (called with the ctx lock held) calls into libxl;
 *  - an event predicate (lock held) calls into libxl;
 *  - an osevent hook frees the ctx;
 *  - libxl_ctx_free while another thread is inside a synchronous
 *    operation on that ctx;
 *  - libxl_ctx_free from the ctx's own completion callback, and from its
 *    event_occurs callback;
 *  - libxl_osevent_register_hooks after an fd is registered.
 * Then one case that is not misuse but an environment failure: running
 * out of memory (RLIMIT_AS) while operations are being queued (Rust
 * aborts on allocation failure, as libxl exits).
 *
 * Success: each child dies of SIGABRT (not SIGALRM: that would be a
 * deadlock; not SIGSEGV; not a normal exit), and its stderr holds
 * "fatal misuse" and the words naming the rule (for the OOM case:
 * "memory allocation"). Failure: a FAIL line with the child's status and
 * the tail of its stderr.
 */
#include "harness.h"

#include <pthread.h>
#include <sys/resource.h>

#include <libxl_test_fdevent.h>
#include <libxl_test_progress.h>

static void *const unused_helpers[] __attribute__((unused)) = {
    (void *)now_ms, (void *)watchdog_thread,
};

/* Expects the child running fn to abort, with every word in `words`
 * (NULL-terminated) on its stderr. */
static void expect_abort(const char *name, void (*fn)(void *), const char **words)
{
    case_begin(name);
    char *err = NULL;
    int st = run_in_child(fn, NULL, 10, &err);
    if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGABRT) {
        size_t n = strlen(err);
        case_fail("child ended with %s, not SIGABRT%s; stderr tail: %.300s",
                  status_str(st),
                  WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM ? " (deadlock)" : "",
                  n > 300 ? err + n - 300 : err);
    }
    for (const char **w = words; *w; w++)
        if (!strstr(err, *w))
            case_fail("stderr lacks \"%s\": %.300s", *w, err);
    free(err);
    case_end();
}

static libxl_ctx *ctx;

static libxl_ctx *child_ctx(void)
{
    return test_ctx((xentoollog_logger *)xtl_createlogger_stdiostream(stderr, XTL_ERROR, 0));
}

/* ---- an osevent hook calls libxl ---- */

static int hook_fd_register_calls_libxl(void *user, int fd, void **out,
                                        short events, void *for_libxl)
{
    (void)user; (void)fd; (void)out; (void)events; (void)for_libxl;
    libxl_event *ev;
    libxl_event_check(ctx, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL);
    return 0;
}

static int hook_fd_register_frees_ctx(void *user, int fd, void **out,
                                      short events, void *for_libxl)
{
    (void)user; (void)fd; (void)out; (void)events; (void)for_libxl;
    libxl_ctx_free(ctx);
    return 0;
}

static int hook_fd_modify(void *u, int fd, void **io, short ev)
{ (void)u; (void)fd; (void)io; (void)ev; return 0; }
static void hook_fd_deregister(void *u, int fd, void *r)
{ (void)u; (void)fd; (void)r; }
static int hook_timeout_register(void *u, void **out, struct timeval abs, void *fl)
{ (void)u; (void)out; (void)abs; (void)fl; return 0; }
static int hook_timeout_modify(void *u, void **io, struct timeval abs)
{ (void)u; (void)io; (void)abs; return 0; }

static libxl_osevent_hooks hooks_calling_libxl = {
    .fd_register = hook_fd_register_calls_libxl, .fd_modify = hook_fd_modify,
    .fd_deregister = hook_fd_deregister, .timeout_register = hook_timeout_register,
    .timeout_modify = hook_timeout_modify,
};
static libxl_osevent_hooks hooks_freeing_ctx = {
    .fd_register = hook_fd_register_frees_ctx, .fd_modify = hook_fd_modify,
    .fd_deregister = hook_fd_deregister, .timeout_register = hook_timeout_register,
    .timeout_modify = hook_timeout_modify,
};

static void start_fd_op(void)
{
    int p[2];
    test_pipe(p);
    libxl_asyncop_how how = { .callback = NULL, .u.for_event = 1 };
    libxl_test_fdevent(ctx, p[0], POLLIN, &how);
}

static void child_hook_calls_libxl(void *arg)
{
    (void)arg;
    ctx = child_ctx();
    libxl_osevent_register_hooks(ctx, &hooks_calling_libxl, NULL);
    start_fd_op();
}

static void child_hook_frees_ctx(void *arg)
{
    (void)arg;
    ctx = child_ctx();
    libxl_osevent_register_hooks(ctx, &hooks_freeing_ctx, NULL);
    start_fd_op();
}

/* ---- a predicate calls libxl ---- */

static int pred_calls_libxl(const libxl_event *ev, void *user)
{
    (void)ev; (void)user;
    libxl_ao_abort(ctx, NULL);
    return 1;
}

static void child_predicate_calls_libxl(void *arg)
{
    (void)arg;
    ctx = child_ctx();
    libxl_asyncop_how how = { .callback = NULL, .u.for_event = 2 };
    libxl_test_progress(ctx, 0, 0, NULL, &how); /* queues one event */
    libxl_event *ev;
    libxl_event_check(ctx, &ev, LIBXL_EVENTMASK_ALL, pred_calls_libxl, NULL);
}

/* ---- libxl_ctx_free while another thread is inside ---- */

static int entered[2];

static void progress_then_block(libxl_ctx *c, libxl_event *ev, void *user)
{
    (void)c; (void)user;
    libxl_event_free(ctx, ev);
    pipe_poke(entered[1]);   /* tell main we are inside libxl ... */
    for (;;) pause();        /* ... and stay there */
}

static void *sync_op_thread(void *arg)
{
    (void)arg;
    libxl_asyncprogress_how aop = { .callback = progress_then_block };
    libxl_test_progress(ctx, 2, 1, &aop, NULL);
    return NULL;
}

static void child_free_while_other_thread_inside(void *arg)
{
    (void)arg;
    ctx = child_ctx();
    test_pipe(entered);
    pthread_t t;
    pthread_create(&t, NULL, sync_op_thread, NULL);
    struct pollfd pfd = { .fd = entered[0], .events = POLLIN };
    poll(&pfd, 1, 5000);
    libxl_ctx_free(ctx);
}

/* ---- libxl_ctx_free from the ctx's own callbacks ---- */

static void completion_frees_ctx(libxl_ctx *c, int rc, void *user)
{
    (void)rc; (void)user;
    libxl_ctx_free(c);
}

static void child_free_from_completion_callback(void *arg)
{
    (void)arg;
    ctx = child_ctx();
    libxl_asyncop_how how = { .callback = completion_frees_ctx };
    libxl_test_progress(ctx, 0, 0, NULL, &how);
}

static void occurs_frees_ctx(void *user, libxl_event *ev)
{
    (void)user;
    libxl_event_free(ctx, ev);
    libxl_ctx_free(ctx);
}

static void child_free_from_event_occurs(void *arg)
{
    (void)arg;
    ctx = child_ctx();
    static libxl_event_hooks eh = {
        .event_occurs_mask = LIBXL_EVENTMASK_ALL, .event_occurs = occurs_frees_ctx,
    };
    libxl_event_register_callbacks(ctx, &eh, NULL);
    libxl_asyncop_how how = { .callback = NULL, .u.for_event = 3 };
    libxl_test_progress(ctx, 0, 0, NULL, &how);
}

/* ---- hooks registered too late ---- */

static void child_register_hooks_late(void *arg)
{
    (void)arg;
    ctx = child_ctx();
    start_fd_op();
    libxl_osevent_register_hooks(ctx, &hooks_calling_libxl, NULL);
}

/* ---- out of memory ---- */

static void child_out_of_memory(void *arg)
{
    (void)arg;
    ctx = child_ctx();
    long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f || fscanf(f, "%ld", &pages) != 1) _exit(10);
    fclose(f);
    rlim_t cap = (rlim_t)pages * sysconf(_SC_PAGESIZE) + (32 << 20);
    struct rlimit rl = { cap, cap };
    if (setrlimit(RLIMIT_AS, &rl)) _exit(11);
    /* Completed for_event operations pile up in the queue, unread. */
    libxl_asyncop_how how = { .callback = NULL };
    for (uint64_t i = 0; i < 100000000; i++) {
        how.u.for_event = i;
        libxl_test_progress(ctx, 0, 0, NULL, &how);
    }
    _exit(12); /* never ran out: the test is broken */
}

int main(void)
{
    static const char *w_hook[] = { "fatal misuse", "re-entrantly", "libxl_event_check", NULL };
    static const char *w_pred[] = { "fatal misuse", "re-entrantly", "libxl_ao_abort", NULL };
    static const char *w_hook_free[] = { "fatal misuse", "libxl_ctx_free", NULL };
    static const char *w_thread[] = { "fatal misuse", "libxl_ctx_free", "inside libxl", NULL };
    static const char *w_late[] = { "fatal misuse", "libxl_osevent_register_hooks", NULL };
    static const char *w_oom[] = { "memory allocation", NULL };

    expect_abort("hook_calling_libxl_aborts_naming_the_rule", child_hook_calls_libxl, w_hook);
    expect_abort("predicate_calling_libxl_aborts_naming_the_rule", child_predicate_calls_libxl, w_pred);
    expect_abort("ctx_free_from_a_hook_aborts", child_hook_frees_ctx, w_hook_free);
    expect_abort("ctx_free_while_another_thread_is_inside_aborts",
                 child_free_while_other_thread_inside, w_thread);
    expect_abort("ctx_free_from_its_completion_callback_aborts",
                 child_free_from_completion_callback, w_thread);
    expect_abort("ctx_free_from_its_event_occurs_callback_aborts",
                 child_free_from_event_occurs, w_thread);
    expect_abort("register_hooks_after_fds_exist_aborts", child_register_hooks_late, w_late);
    /* RLIMIT_AS cannot be used under valgrind or ASan (both reserve far
     * more address space than any useful limit). */
    if (getenv("XL_TEST_NO_RLIMIT_AS"))
        printf("SKIP out_of_memory_aborts_with_a_message: XL_TEST_NO_RLIMIT_AS set\n");
    else
        expect_abort("out_of_memory_aborts_with_a_message", child_out_of_memory, w_oom);
    return h_finish();
}
