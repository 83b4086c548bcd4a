/*
 * libxl_test_xen_child.c: test operations inside libxl (see the .h):
 * child processes through libxl__ev_child_fork and libxl__async_exec_start.
 * Compiled like a part of libxl, into libxenlight_test.so only.
 */
#include "libxl_internal.h"

#include "libxl_test_xen_child.h"

/*---------- libxl__ev_child_fork + libxl__ev_time + libxl__ao_abortable ----------*/

typedef struct {
    libxl__ao *ao;
    libxl__ev_child child;
    libxl__ev_time timeout;
    libxl__ao_abortable abrt;
    int *status_out;
    int rc;
} xtc_state;

static void xtc_child_died(libxl__egc *egc, libxl__ev_child *child,
                           pid_t pid, int status);
static void xtc_timeout(libxl__egc *egc, libxl__ev_time *ev,
                        const struct timeval *requested_abs, int rc);
static void xtc_aborted(libxl__egc *egc, libxl__ao_abortable *abrt, int rc);

int libxl_test_xen_child(libxl_ctx *ctx, int exit_after_ms, int exit_status,
                         int timeout_ms, pid_t *pid_out, int *status_out,
                         const libxl_asyncop_how *ao_how)
{
    AO_CREATE(ctx, 0, ao_how);
    xtc_state *st;
    int rc;
    pid_t pid;

    GCNEW(st);
    st->ao = ao;
    st->status_out = status_out;
    st->rc = 0;
    *status_out = -1;
    *pid_out = -1;
    libxl__ev_child_init(&st->child);
    libxl__ev_time_init(&st->timeout);
    libxl__ao_abortable_init(&st->abrt);

    st->abrt.ao = ao;
    st->abrt.callback = xtc_aborted;
    rc = libxl__ao_abortable_register(&st->abrt);
    if (rc) goto out;
    if (timeout_ms > 0) {
        rc = libxl__ev_time_register_rel(ao, &st->timeout, xtc_timeout,
                                         timeout_ms);
        if (rc) goto out;
    }

    pid = libxl__ev_child_fork(gc, &st->child, xtc_child_died);
    if (pid < 0) {
        rc = pid;
        goto out;
    }
    if (!pid) {
        /* child: no libxl from here on */
        if (exit_after_ms < 0)
            for (;;) pause();
        if (exit_after_ms) usleep(exit_after_ms * 1000);
        _exit(exit_status);
    }
    *pid_out = pid;
    LOG(DEBUG, "test_xen_child: forked [%ld]", (long)pid);
    return AO_INPROGRESS;

 out:
    libxl__ev_time_deregister(gc, &st->timeout);
    libxl__ao_abortable_deregister(&st->abrt);
    return AO_CREATE_FAIL(rc);
}

static void xtc_child_died(libxl__egc *egc, libxl__ev_child *child,
                           pid_t pid, int status)
{
    xtc_state *st = CONTAINER_OF(child, *st, child);
    STATE_AO_GC(st->ao);

    LOG(DEBUG, "test_xen_child: [%ld] died, status %#x", (long)pid, status);
    libxl__ev_time_deregister(gc, &st->timeout);
    libxl__ao_abortable_deregister(&st->abrt);
    *st->status_out = status;
    libxl__ao_complete(egc, ao, st->rc);
}

static void xtc_timeout(libxl__egc *egc, libxl__ev_time *ev,
                        const struct timeval *requested_abs, int rc)
{
    xtc_state *st = CONTAINER_OF(ev, *st, timeout);
    STATE_AO_GC(st->ao);

    if (rc == ERROR_ABORTED) {
        /* the abort reached the timeout first: handle it as an abort */
        xtc_aborted(egc, &st->abrt, rc);
        return;
    }
    LOG(DEBUG, "test_xen_child: timeout, killing [%ld]", (long)st->child.pid);
    st->rc = rc; /* ERROR_TIMEDOUT; completion when libxl reports the death */
    libxl__ao_abortable_deregister(&st->abrt);
    if (kill(st->child.pid, SIGKILL))
        LOGE(ERROR, "test_xen_child: kill [%ld]", (long)st->child.pid);
}

static void xtc_aborted(libxl__egc *egc, libxl__ao_abortable *abrt, int rc)
{
    xtc_state *st = CONTAINER_OF(abrt, *st, abrt);
    STATE_AO_GC(st->ao);

    LOG(DEBUG, "test_xen_child: aborted, kill-deregistering [%ld]",
        (long)st->child.pid);
    libxl__ev_time_deregister(gc, &st->timeout);
    libxl__ao_abortable_deregister(&st->abrt);
    libxl__ev_child_kill_deregister(ao, &st->child, SIGKILL);
    libxl__ao_complete(egc, ao, rc);
}

/*---------- libxl__async_exec_start ----------*/

typedef struct {
    libxl__async_exec_state aes;
    int *status_out;
} xtae_state;

static void xtae_done(libxl__egc *egc, libxl__async_exec_state *aes,
                      int rc, int status);

int libxl_test_xen_async_exec(libxl_ctx *ctx, const char *const *argv,
                              int timeout_ms, pid_t *pid_out, int *status_out,
                              const libxl_asyncop_how *ao_how)
{
    AO_CREATE(ctx, 0, ao_how);
    xtae_state *st;
    int rc, n;

    GCNEW(st);
    st->status_out = status_out;
    *status_out = -1;
    *pid_out = -1;
    for (n = 0; argv[n]; n++) ;
    libxl__async_exec_init(&st->aes);
    st->aes.ao = ao;
    st->aes.what = libxl__sprintf(gc, "test_xen_async_exec %s", argv[0]);
    st->aes.timeout_ms = timeout_ms;
    st->aes.callback = xtae_done;
    st->aes.stdfds[0] = st->aes.stdfds[1] = st->aes.stdfds[2] = -1;
    GCNEW_ARRAY(st->aes.args, n + 1);
    for (int i = 0; i < n; i++)
        st->aes.args[i] = libxl__strdup(gc, argv[i]);
    st->aes.args[n] = NULL;
    st->aes.env = NULL;

    rc = libxl__async_exec_start(&st->aes);
    if (rc) return AO_CREATE_FAIL(rc);
    *pid_out = st->aes.child.pid;
    return AO_INPROGRESS;
}

static void xtae_done(libxl__egc *egc, libxl__async_exec_state *aes,
                      int rc, int status)
{
    xtae_state *st = CONTAINER_OF(aes, *st, aes);
    STATE_AO_GC(aes->ao);

    *st->status_out = status;
    libxl__ao_complete(egc, ao, rc);
}
