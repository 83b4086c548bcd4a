/*
 * libxl_test_xen_child.h: test operations inside libxl (built into
 * libxenlight_test.so only) that start child processes the way libxl's
 * own code does: libxl__ev_child_fork with a libxl__ev_time timeout and a
 * libxl__ao_abortable, and libxl__async_exec_start (libxl_aoutils.c).
 */
#ifndef LIBXL_TEST_XEN_CHILD_H
#define LIBXL_TEST_XEN_CHILD_H

#include <sys/types.h>
#include <libxl.h>

/*
 * Forks a child with libxl__ev_child_fork.  The child sleeps
 * exit_after_ms and _exit(exit_status)s; with exit_after_ms < 0 it waits
 * for a signal forever.  *pid_out is set before this returns.
 *   - The child's death (libxl's child callback) completes the ao with 0,
 *     *status_out = its wait status.
 *   - timeout_ms > 0: a libxl__ev_time; when it fires the op SIGKILLs the
 *     child, and completes with ERROR_TIMEDOUT once libxl reports its
 *     death (*status_out = that status).
 *   - libxl_ao_abort: a libxl__ao_abortable; its callback hands the child
 *     over with libxl__ev_child_kill_deregister(ao, child, SIGKILL) and
 *     completes with ERROR_ABORTED at once; libxl holds the completion
 *     back until the killed child has been reaped.  *status_out = -1.
 */
int libxl_test_xen_child(libxl_ctx *ctx, int exit_after_ms, int exit_status,
                         int timeout_ms, pid_t *pid_out, int *status_out,
                         const libxl_asyncop_how *ao_how)
                         LIBXL_EXTERNAL_CALLERS_ONLY;

/*
 * libxl__async_exec_start: runs argv (argv[0] looked up in PATH, stdio
 * inherited) with a timeout of timeout_ms.  Completes with the rc libxl
 * gives its callback: 0 (the exit status, even nonzero, in *status_out),
 * ERROR_TIMEDOUT (libxl SIGKILLed it), ERROR_ABORTED (libxl_ao_abort:
 * killed too).  *pid_out is set before this returns.
 */
int libxl_test_xen_async_exec(libxl_ctx *ctx, const char *const *argv,
                              int timeout_ms, pid_t *pid_out, int *status_out,
                              const libxl_asyncop_how *ao_how)
                              LIBXL_EXTERNAL_CALLERS_ONLY;

#endif
