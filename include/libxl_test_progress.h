/*
 * libxl_test_progress.h - test operation exercising ao progress
 * reporting (specific to this implementation; not in Xen).
 */
#ifndef TEST_PROGRESS_H
#define TEST_PROGRESS_H

#include <libxl.h>

#ifdef __cplusplus
extern "C" {
#endif

int libxl_test_progress(libxl_ctx *ctx, int count, int interval_ms,
                        const libxl_asyncprogress_how *aop_how,
                        const libxl_asyncop_how *ao_how)
                        LIBXL_EXTERNAL_CALLERS_ONLY;
/* Description: asynchronous operation that reports count progress
 *   events of type LIBXL_EVENT_TYPE_DOMAIN_CREATE_CONSOLE_AVAILABLE,
 *   interval_ms apart (the first after interval_ms), via aop_how
 *   (NULL discards them), then completes with 0.
 * Return value: as for any ao (ao_how == NULL: result; else 0 if
 *   started, result delivered later).
 * Errors: ERROR_INVAL (count or interval_ms negative), ERROR_ABORTED
 *   (libxl_ao_abort; remaining reports are not made), ERROR_NOMEM.
 * Reentrancy: as for all ao initiators. */

#ifdef __cplusplus
}
#endif

#endif /* TEST_PROGRESS_H */
