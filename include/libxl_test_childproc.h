/*
 * libxl_test_childproc.h - test operation exercising child processes
 * and SIGCHLD handling (specific to this implementation; not in Xen).
 * Self-contained (includes <libxl.h>).
 */
#ifndef TEST_CHILDPROC_H
#define TEST_CHILDPROC_H

#include <libxl.h>

#ifdef __cplusplus
extern "C" {
#endif

int libxl_test_childproc(libxl_ctx *ctx, const char *const *argv,
                         int timeout_ms, int *status_r,
                         libxl_asyncop_how *ao_how)
                         LIBXL_EXTERNAL_CALLERS_ONLY;
/* Description: asynchronous operation that runs argv (a NULL-terminated
 *   array; argv[0] is looked up in PATH unless it contains a '/') as a
 *   child process of libxl, started with the ctx's fork_replacement if
 *   it set one, and reaped as its libxl_childproc_setmode mode says.
 *   When the child has exited, its wait status (as from waitpid(2)) is
 *   stored in *status_r and the operation completes with 0.  A program
 *   that cannot be executed gives a child exit status of 127.
 *   With timeout_ms >= 0, a child still running after timeout_ms
 *   milliseconds is killed with SIGKILL and reaped, and the operation
 *   completes with ERROR_TIMEDOUT; timeout_ms < 0 means no limit.
 *   argv is copied before the call returns.  *status_r is written only
 *   on success, at completion: with a callback or for_event ao_how it
 *   must stay valid until the operation completes.
 * Return value: as for any ao (ao_how == NULL: result; else 0 if
 *   started, result delivered later).
 * Errors: ERROR_INVAL (argv NULL or empty, status_r NULL; logged,
 *   naming the argument), ERROR_TIMEDOUT (timeout_ms passed),
 *   ERROR_ABORTED (libxl_ao_abort: the child is killed with SIGKILL and
 *   reaped first), ERROR_FAIL (fork failed, or SIGCHLD could not be
 *   taken), ERROR_OSEVENT_REG_FAIL or an osevent hook's value (the
 *   SIGCHLD self-pipe or the timeout could not be registered).
 *   Completion is never reported while the child is unreaped.
 * Reentrancy: as for all ao initiators. */

#ifdef __cplusplus
}
#endif

#endif /* TEST_CHILDPROC_H */
