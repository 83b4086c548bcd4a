/*
 * libxl_test_fdevent.h - test operation exercising fd event handling.
 * Self-contained (includes <libxl.h>).
 */
#ifndef TEST_FDEVENT_H
#define TEST_FDEVENT_H

#include <libxl.h>

#ifdef __cplusplus
extern "C" {
#endif

int libxl_test_fdevent(libxl_ctx *ctx, int fd, short events,
                       libxl_asyncop_how *ao_how)
                       LIBXL_EXTERNAL_CALLERS_ONLY;
/* Description: asynchronous operation that waits until fd reports one
 *   of the poll(2) events in events, then completes.  fd is borrowed
 *   and must stay open until completion.
 * Return value: as for any ao: with ao_how == NULL the result of the
 *   operation; otherwise 0 if it was started, and the result arrives
 *   via callback or OPERATION_COMPLETE event.
 * Errors: ERROR_ABORTED (libxl_ao_abort), ERROR_OSEVENT_REG_FAIL or an
 *   application hook's value if the fd cannot be registered,
 *   ERROR_NOMEM.
 * Reentrancy: as for all ao initiators; not from callbacks that forbid
 *   reentry. */

#ifdef __cplusplus
}
#endif

#endif /* TEST_FDEVENT_H */
