/*
 * libxl_test_timeout.h - test operation for timer benchmarks (ours; not
 * in Xen).
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
/* Description: asynchronous operation that completes with 0 once ms
 *   milliseconds have passed (on the monotonic clock).
 * Return value: as for any ao (ao_how == NULL: the result; otherwise 0
 *   once started, the result delivered later).
 * Errors: ERROR_INVAL (ms negative), ERROR_ABORTED (libxl_ao_abort),
 *   ERROR_OSEVENT_REG_FAIL or a hook's own value (osevent hooks refused
 *   the timeout).
 * Reentrancy: as for all ao initiators. */

#ifdef __cplusplus
}
#endif

#endif /* TEST_TIMEOUT_H */
