/*
 * libxl_test_xen_xswatch.h: a test operation inside libxl (built into
 * libxenlight_test.so only) for xenstore watches deregistered, and
 * registered, from inside a watch callback (libxl__ev_xswatch).
 */
#ifndef LIBXL_TEST_XEN_XSWATCH_H
#define LIBXL_TEST_XEN_XSWATCH_H

#include <libxl.h>

/*
 * Registers internal watches on path1 (w1) and path3 (w3).  Callbacks read
 * the node named by the event and ignore it unless it reads:
 *   w1, "fire..." (any value starting so): w1's callback deregisters w1 and, from the same callback,
 *       registers w2 on path2 (which reuses w1's slot in libxl's table);
 *   w2, "fire": w2 deregisters itself;
 *   w3, "poke": counted.
 * The ao completes (rc 0) once w2 has fired and w3 has been poked, with
 * every watch deregistered; libxl_ao_abort completes it with
 * ERROR_ABORTED (watches deregistered).
 */
int libxl_test_xen_xswatch(libxl_ctx *ctx, const char *path1, const char *path2,
                           const char *path3, const libxl_asyncop_how *ao_how)
                           LIBXL_EXTERNAL_CALLERS_ONLY;

enum {
    XTXW_W1_CALLS,          /* callback calls of w1 */
    XTXW_W1_CALLS_AFTER,    /* ... after w1 deregistered itself (must be 0) */
    XTXW_W2_CALLS,
    XTXW_W2_CALLS_AFTER,
    XTXW_W3_CALLS,
    XTXW_W3_POKES,          /* w3 calls that read "poke" */
    XTXW_WRONG_PATH,        /* calls whose event path is not under the watch's */
    XTXW_W1_SLOT,           /* libxl's slot numbers of w1 and w2 */
    XTXW_W2_SLOT,
    XTXW_W2_REGISTER_RC,    /* libxl__ev_xswatch_register's rc for w2 */
    XTXW_N
};

/* The counters of the last (or current) libxl_test_xen_xswatch. */
void libxl_test_xen_xswatch_counts(int counts_out[XTXW_N])
                           LIBXL_EXTERNAL_CALLERS_ONLY;

#endif
