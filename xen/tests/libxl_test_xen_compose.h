/*
 * libxl_test_xen_compose.h: test operations inside libxl (built into
 * libxenlight_test.so only) for the parts of libxl's internal event API
 * that are built on its other parts: waiting for a device state
 * (libxl__ev_devstate_wait), watching for a domain's death
 * (libxl__domaindeathcheck_*), trees of nested aos, and progress reports
 * (libxl__ao_progress_gethow/_report, as libxl_domain_create_new uses them).
 */
#ifndef LIBXL_TEST_XEN_COMPOSE_H
#define LIBXL_TEST_XEN_COMPOSE_H

#include <libxl.h>

/* libxl__ev_devstate_wait for `path` to read `state`, at most `ms`
 * milliseconds; the ao completes with the devstate callback's rc (0,
 * ERROR_TIMEDOUT, ERROR_INVAL if the node was removed, ERROR_ABORTED). */
int libxl_test_xen_devstate(libxl_ctx *ctx, const char *path, int state, int ms,
                            const libxl_asyncop_how *ao_how)
                            LIBXL_EXTERNAL_CALLERS_ONLY;

/* libxl__domaindeathcheck_start on `domid`; the ao completes with the
 * check's rc: ERROR_DOMAIN_DESTROYED once /local/domain/DOMID is gone,
 * ERROR_ABORTED on libxl_ao_abort. */
int libxl_test_xen_deathcheck(libxl_ctx *ctx, uint32_t domid,
                              const libxl_asyncop_how *ao_how)
                              LIBXL_EXTERNAL_CALLERS_ONLY;

/* A tree of aos, root -> child -> grandchild (libxl__nested_ao_create):
 * the grandchild registers an abortable, the child a timeout that never
 * expires by itself (libxl__ev_time_register_rel with -1 ms). Aborting
 * the root must reach both (each gets ERROR_ABORTED); then the nested aos
 * are freed and the root completes with ERROR_ABORTED. */
int libxl_test_xen_nested(libxl_ctx *ctx, const libxl_asyncop_how *ao_how)
                          LIBXL_EXTERNAL_CALLERS_ONLY;

enum {
    XTXC_ABORTABLE_RC,      /* the grandchild's abortable got this rc */
    XTXC_TIMEOUT_RC,        /* the child's timeout got this rc */
    XTXC_ABORTING_BEFORE,   /* libxl__ao_aborting(grandchild) before the abort */
    XTXC_ABORTING_AFTER,    /* ... and inside its abortable's callback */
    XTXC_N
};
void libxl_test_xen_nested_counts(int counts_out[XTXC_N]) LIBXL_EXTERNAL_CALLERS_ONLY;

/* `n` progress reports (DOMAIN_CREATE_CONSOLE_AVAILABLE, domid 7) made
 * the way libxl_domain_create_new makes them, in the initiator; then the
 * ao completes (rc 0) from an immediate callback. */
int libxl_test_xen_progress(libxl_ctx *ctx, int n,
                            const libxl_asyncprogress_how *aop_how,
                            const libxl_asyncop_how *ao_how)
                            LIBXL_EXTERNAL_CALLERS_ONLY;

#endif
