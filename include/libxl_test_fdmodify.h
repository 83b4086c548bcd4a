/*
 * libxl_test_fdmodify.h - test operation exercising the modification of
 * an fd registration (specific to this implementation; not in Xen).
 * Self-contained (includes <libxl.h>).
 */
#ifndef TEST_FDMODIFY_H
#define TEST_FDMODIFY_H

#include <libxl.h>

#ifdef __cplusplus
extern "C" {
#endif

int libxl_test_fdmodify(libxl_ctx *ctx, int fd, short events1,
                        short events2, const libxl_asyncop_how *ao_how)
                        LIBXL_EXTERNAL_CALLERS_ONLY;
/* Description: asynchronous operation that registers fd for the poll(2)
 *   events in events1; when one of them occurs, changes the registration
 *   to events2 (with osevent hooks: one fd_modify call); when one of
 *   those occurs, completes with 0.  fd is borrowed and must stay open
 *   until completion.  events1 or events2 may be 0 (the operation then
 *   waits until aborted).
 * Return value: as for any ao: with ao_how == NULL the result of the
 *   operation; otherwise 0 if it was started, and the result arrives
 *   via callback or OPERATION_COMPLETE event.
 * Errors: ERROR_INVAL (fd negative or not open, unknown poll bits),
 *   ERROR_ABORTED (libxl_ao_abort), ERROR_OSEVENT_REG_FAIL or an
 *   application hook's value if fd_register or fd_modify fails (a
 *   failing fd_modify completes the operation with its value),
 *   ERROR_FAIL (fd closed while registered: POLLNVAL).
 * Reentrancy: as for all ao initiators. */

#ifdef __cplusplus
}
#endif

#endif /* TEST_FDMODIFY_H */
