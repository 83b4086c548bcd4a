/*
 * libxl_test_bench.c: this project's test operations that bench/ uses and
 * Xen's libxl lacks, written in C on libxl's internal API (as Xen's own
 * libxl_test_fdevent.c is), so that every benchmark runs on Xen's
 * unmodified libxl 4.17 and, with the very same code, on the full library
 * (Xen's libxl on our core):
 *
 *   libxl_test_timeout    (include/libxl_test_timeout.h)
 *   libxl_test_progress   (include/libxl_test_progress.h)
 *   libxl_test_childproc  (include/libxl_test_childproc.h)
 *
 * Same names, signatures and semantics as the Rust ones (src/testops/,
 * src/ffi/testops.rs).  Compiled exactly like a piece of libxl
 * (CFLAGS_LIBXL, config.h, libxl_internal.h) into libxenlight_test.so only
 * (xen/bench/light-bench.mk).  In build/xen's libxenlight_test.so the
 * core's Rust versions are weak (xen/core-archive.sh), so these take their
 * place there, as Xen's libxl_test_fdevent.c does for libxl_test_fdevent;
 * libxenlight.so.4.17.0 keeps the Rust ones.
 *
 * libxl_test_xenbench_impl(name) returns this file's function of that name
 * (its own address, not through the PLT): bench/run.sh compares it with
 * what the dynamic linker resolves, to say which implementation ran.
 */
#include "libxl_internal.h"

#include "../../include/libxl_test_timeout.h"
#include "../../include/libxl_test_progress.h"
#include "../../include/libxl_test_childproc.h"

/*---------- libxl_test_timeout: completes with 0 after ms ----------*/

typedef struct {
    libxl__ao *ao;
    libxl__ev_time time;
} xb_timeout_state;

static void xb_timeout_done(libxl__egc *egc, libxl__ev_time *ev,
                            const struct timeval *requested_abs, int rc)
{
    xb_timeout_state *st = CONTAINER_OF(ev, *st, time);
    STATE_AO_GC(st->ao);

    /* the callback runs deregistered; ERROR_ABORTED: libxl_ao_abort */
    libxl__ao_complete(egc, ao, rc == ERROR_TIMEDOUT ? 0 : rc);
}

static int xb_test_timeout(libxl_ctx *ctx, int ms,
                           const libxl_asyncop_how *ao_how)
{
    xb_timeout_state *st;
    int rc;

    if (ms < 0) {
        LIBXL__LOG(ctx, XTL_ERROR,
                   "libxl_test_timeout: invalid argument ms: %d is negative", ms);
        return ERROR_INVAL;
    }

    AO_CREATE(ctx, 0, ao_how);
    GCNEW(st);
    st->ao = ao;
    libxl__ev_time_init(&st->time);
    rc = libxl__ev_time_register_rel(ao, &st->time, xb_timeout_done, ms);
    if (rc) return AO_CREATE_FAIL(rc);
    return AO_INPROGRESS;
}

/*---------- libxl_test_progress: count reports, then 0 ----------*/

typedef struct {
    libxl__ao *ao;
    libxl__ev_time time;
    libxl_asyncprogress_how aop_how;
    int left, interval_ms;
} xb_progress_state;

static void xb_progress_tick(libxl__egc *egc, libxl__ev_time *ev,
                             const struct timeval *requested_abs, int rc)
{
    xb_progress_state *st = CONTAINER_OF(ev, *st, time);
    STATE_AO_GC(st->ao);

    if (rc != ERROR_TIMEDOUT) /* ERROR_ABORTED: no more reports */
        goto out;
    libxl__ao_progress_report(egc, ao, &st->aop_how,
        NEW_EVENT(egc, DOMAIN_CREATE_CONSOLE_AVAILABLE, 0,
                  st->aop_how.for_event));
    if (--st->left == 0) {
        rc = 0;
        goto out;
    }
    rc = libxl__ev_time_register_rel(ao, &st->time, xb_progress_tick,
                                     st->interval_ms);
    if (rc) goto out;
    return;

 out:
    libxl__ao_complete(egc, ao, rc);
}

static int xb_test_progress(libxl_ctx *ctx, int count, int interval_ms,
                            const libxl_asyncprogress_how *aop_how,
                            const libxl_asyncop_how *ao_how)
{
    xb_progress_state *st;
    int rc;

    if (count < 0 || interval_ms < 0) {
        LIBXL__LOG(ctx, XTL_ERROR,
                   "libxl_test_progress: invalid argument %s: %d is negative",
                   count < 0 ? "count" : "interval_ms",
                   count < 0 ? count : interval_ms);
        return ERROR_INVAL;
    }

    AO_CREATE(ctx, 0, ao_how);
    GCNEW(st);
    st->ao = ao;
    st->left = count;
    st->interval_ms = interval_ms;
    libxl__ao_progress_gethow(&st->aop_how, aop_how);
    libxl__ev_time_init(&st->time);
    if (count == 0) {
        libxl__ao_complete(egc, ao, 0);
        return AO_INPROGRESS;
    }
    rc = libxl__ev_time_register_rel(ao, &st->time, xb_progress_tick,
                                     interval_ms);
    if (rc) return AO_CREATE_FAIL(rc);
    return AO_INPROGRESS;
}

/*---------- libxl_test_childproc: run argv, its wait status ----------*/

/*
 * With timeout_ms >= 0 an ev_time bounds it (an abort makes it fire
 * early, with ERROR_ABORTED); otherwise an abortable.  Either way the
 * child is handed to the ao with libxl__ev_child_kill_deregister (SIGKILL)
 * and libxl reports the completion only once it has been reaped.
 */
typedef struct {
    libxl__ao *ao;
    libxl__ev_child child;
    libxl__ev_time time;
    libxl__ao_abortable abrt;
    char **argv;
    int *status_r;
} xb_child_state;

static void xb_child_stop(libxl__egc *egc, xb_child_state *st, int rc)
{
    STATE_AO_GC(st->ao);

    libxl__ev_time_deregister(gc, &st->time);
    libxl__ao_abortable_deregister(&st->abrt);
    if (libxl__ev_child_inuse(&st->child))
        libxl__ev_child_kill_deregister(ao, &st->child, SIGKILL);
    libxl__ao_complete(egc, ao, rc);
}

static void xb_child_timeout(libxl__egc *egc, libxl__ev_time *ev,
                             const struct timeval *requested_abs, int rc)
{
    xb_child_state *st = CONTAINER_OF(ev, *st, time);
    xb_child_stop(egc, st, rc); /* ERROR_TIMEDOUT or ERROR_ABORTED */
}

static void xb_child_aborted(libxl__egc *egc, libxl__ao_abortable *abrt,
                             int rc)
{
    xb_child_state *st = CONTAINER_OF(abrt, *st, abrt);
    xb_child_stop(egc, st, rc);
}

static void xb_child_died(libxl__egc *egc, libxl__ev_child *child,
                          pid_t pid, int status)
{
    xb_child_state *st = CONTAINER_OF(child, *st, child);
    STATE_AO_GC(st->ao);

    libxl__ev_time_deregister(gc, &st->time);
    libxl__ao_abortable_deregister(&st->abrt);
    *st->status_r = status;
    libxl__ao_complete(egc, ao, 0);
}

static int xb_test_childproc(libxl_ctx *ctx, const char *const *argv,
                             int timeout_ms, int *status_r,
                             libxl_asyncop_how *ao_how)
{
    xb_child_state *st;
    int rc, n;
    pid_t pid;

    if (!argv || !status_r || !argv[0]) {
        LIBXL__LOG(ctx, XTL_ERROR, "libxl_test_childproc: invalid argument %s",
                   !argv ? "argv: NULL" : !status_r ? "status_r: NULL" :
                   "argv: empty (argv[0] is NULL)");
        return ERROR_INVAL;
    }

    AO_CREATE(ctx, 0, ao_how);
    GCNEW(st);
    st->ao = ao;
    st->status_r = status_r;
    libxl__ev_child_init(&st->child);
    libxl__ev_time_init(&st->time);
    libxl__ao_abortable_init(&st->abrt);
    /* argv copied now, before the fork: the child only execs */
    for (n = 0; argv[n]; n++) ;
    GCNEW_ARRAY(st->argv, n + 1);
    for (int i = 0; i < n; i++)
        st->argv[i] = libxl__strdup(gc, argv[i]);
    st->argv[n] = NULL;

    /* abort handling first: no child for an ao that cannot be aborted */
    if (timeout_ms >= 0) {
        rc = libxl__ev_time_register_rel(ao, &st->time, xb_child_timeout,
                                         timeout_ms);
    } else {
        st->abrt.ao = ao;
        st->abrt.callback = xb_child_aborted;
        rc = libxl__ao_abortable_register(&st->abrt);
    }
    if (rc) goto out;

    pid = libxl__ev_child_fork(gc, &st->child, xb_child_died);
    if (pid < 0) {
        rc = pid;
        goto out;
    }
    if (!pid) {
        /* child: execvp, as the Rust op does; 127 if that fails */
        execvp(st->argv[0], st->argv);
        _exit(127);
    }
    return AO_INPROGRESS;

 out:
    libxl__ev_time_deregister(gc, &st->time);
    libxl__ao_abortable_deregister(&st->abrt);
    return AO_CREATE_FAIL(rc);
}

/*---------- the exported names ----------*/

int libxl_test_timeout(libxl_ctx *ctx, int ms,
                       const libxl_asyncop_how *ao_how)
    __attribute__((alias("xb_test_timeout")));
int libxl_test_progress(libxl_ctx *ctx, int count, int interval_ms,
                        const libxl_asyncprogress_how *aop_how,
                        const libxl_asyncop_how *ao_how)
    __attribute__((alias("xb_test_progress")));
int libxl_test_childproc(libxl_ctx *ctx, const char *const *argv,
                         int timeout_ms, int *status_r,
                         libxl_asyncop_how *ao_how)
    __attribute__((alias("xb_test_childproc")));

void *libxl_test_xenbench_impl(const char *name);
void *libxl_test_xenbench_impl(const char *name)
{
    if (!strcmp(name, "libxl_test_timeout")) return (void *)xb_test_timeout;
    if (!strcmp(name, "libxl_test_progress")) return (void *)xb_test_progress;
    if (!strcmp(name, "libxl_test_childproc")) return (void *)xb_test_childproc;
    return NULL;
}
