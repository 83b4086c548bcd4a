/*
 * libxl_test_timedereg.h - test operation exercising timeout
 * registration and deregistration.  Self-contained.
 */
#ifndef TEST_TIMEDEREG_H
#define TEST_TIMEDEREG_H

#include <libxl.h>

#ifdef __cplusplus
extern "C" {
#endif

int libxl_test_timedereg(libxl_ctx *ctx, libxl_asyncop_how *ao_how)
    LIBXL_EXTERNAL_CALLERS_ONLY;
/* Description: asynchronous operation that registers several timeouts,
 *   deregisters some before they fire and re-registers others from a
 *   timeout callback, then completes once the survivors have fired.
 * Return value: as for any ao (ao_how == NULL: result; else 0 if
 *   started, result delivered later).
 * Errors: ERROR_ABORTED, ERROR_OSEVENT_REG_FAIL (or a hook's value),
 *   ERROR_NOMEM.
 * Reentrancy: as for all ao initiators. */

#ifdef __cplusplus
}
#endif

#endif /* TEST_TIMEDEREG_H */
