/*
 * libxl_test_timeout.h - test operation exercising timeouts (specific
 * to this implementation; not in Xen).  Used by bench/bench_timers.c.
 */
#ifndef TEST_TIMEOUT_H
#define TEST_TIMEOUT_H

#include <libxl.h>

#ifdef __cplusplus
extern "C" {
#endif

int libxl_test_timeout(libxl_ctx *ctx, int ms,
                       const libxl_asyncop_how *ao_how)
                       LIBXL_EXTERNAL_CALLERS_ONLY;
/* Description: asynchronous operation that registers one timeout ms
 *   milliseconds from now and completes with 0 when it fires (ms == 0:
 *   already due, so it fires at the next libxl_event_wait, afterpoll
 *   or hook timeout report).  It uses no fds.
 * Return value: as for any ao (ao_how == NULL: result; else 0 if
 *   started, result delivered later).
 * Errors: ERROR_INVAL (ms negative), ERROR_ABORTED (libxl_ao_abort:
 *   the timeout is removed and the operation completes), ERROR_NOMEM,
 *   ERROR_OSEVENT_REG_FAIL or an application hook's value if the
 *   timeout cannot be registered with the osevent hooks.
 * Reentrancy: as for all ao initiators. */

#ifdef __cplusplus
}
#endif

#endif /* TEST_TIMEOUT_H */
