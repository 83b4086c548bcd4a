/*
 * libxl_test_fdchain.h - test operation for the baton (ours; not in Xen).
 */
#ifndef TEST_FDCHAIN_H
#define TEST_FDCHAIN_H

#include <libxl.h>

#ifdef __cplusplus
extern "C" {
#endif

int libxl_test_fdchain(libxl_ctx *ctx, const int *fds, int nfds,
                       libxl_asyncop_how *ao_how)
                       LIBXL_EXTERNAL_CALLERS_ONLY;
/* Description: asynchronous operation that waits for fds[0] to be
 *   readable, then (from inside that fd's callback) stops watching it and
 *   starts watching fds[1], and so on; it completes with 0 once
 *   fds[nfds-1] has been readable. Each step adds an osevent from inside
 *   a callback: the pattern that makes other sleeping threads' fd sets
 *   stale, so it exercises the baton. The fds are not read or closed; the
 *   array is copied (it need not outlive the call).
 * Return value: as for any ao (ao_how == NULL: the result; otherwise 0
 *   once started, the result delivered later).
 * Errors: ERROR_INVAL (fds NULL, nfds < 1, a negative or closed fd),
 *   ERROR_ABORTED (libxl_ao_abort), ERROR_OSEVENT_REG_FAIL or a hook's
 *   own value (osevent hooks refused a registration).
 * Reentrancy: as for all ao initiators. */

#ifdef __cplusplus
}
#endif

#endif /* TEST_FDCHAIN_H */
