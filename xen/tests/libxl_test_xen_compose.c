/*
 * libxl_test_xen_compose.c: test operations inside libxl (see the .h).
 * Compiled like a part of libxl, into libxenlight_test.so only.
 */
#include "libxl_internal.h"

#include "libxl_test_xen_compose.h"

/*---------- libxl__ev_devstate_wait ----------*/

typedef struct {
    libxl__ao *ao;
    libxl__ev_devstate ds;
} xtxd_state;

static void xtxd_done(libxl__egc *egc, libxl__ev_devstate *ds, int rc)
{
    xtxd_state *st = CONTAINER_OF(ds, *st, ds);
    STATE_AO_GC(st->ao);
    libxl__ao_complete(egc, ao, rc);
}

int libxl_test_xen_devstate(libxl_ctx *ctx, const char *path, int state, int ms,
                            const libxl_asyncop_how *ao_how)
{
    AO_CREATE(ctx, 0, ao_how);
    xtxd_state *st;
    GCNEW(st);
    st->ao = ao;
    libxl__ev_devstate_init(&st->ds);
    int rc = libxl__ev_devstate_wait(ao, &st->ds, xtxd_done,
                                     libxl__strdup(gc, path), state, ms);
    if (rc) return AO_CREATE_FAIL(rc);
    return AO_INPROGRESS;
}

/*---------- libxl__domaindeathcheck ----------*/

typedef struct {
    libxl__ao *ao;
    libxl__domaindeathcheck dc;
} xtxk_state;

static void xtxk_done(libxl__egc *egc, libxl__domaindeathcheck *dc, int rc)
{
    xtxk_state *st = CONTAINER_OF(dc, *st, dc);
    STATE_AO_GC(st->ao);
    libxl__ao_complete(egc, ao, rc);
}

int libxl_test_xen_deathcheck(libxl_ctx *ctx, uint32_t domid,
                              const libxl_asyncop_how *ao_how)
{
    AO_CREATE(ctx, 0, ao_how);
    xtxk_state *st;
    GCNEW(st);
    st->ao = ao;
    st->dc.what = "test domain";
    st->dc.domid = domid;
    st->dc.callback = xtxk_done;
    int rc = libxl__domaindeathcheck_start(ao, &st->dc);
    if (rc) return AO_CREATE_FAIL(rc);
    return AO_INPROGRESS;
}

/*---------- nested aos ----------*/

typedef struct {
    libxl__ao *root, *child, *grandchild;
    libxl__ao_abortable abrt;  /* on the grandchild */
    libxl__ev_time time;       /* on the child */
    int fired;
} xtxn_state;

static int nested_counts[XTXC_N];

void libxl_test_xen_nested_counts(int counts_out[XTXC_N])
{
    memcpy(counts_out, nested_counts, sizeof(nested_counts));
}

static void xtxn_maybe_done(libxl__egc *egc, xtxn_state *st)
{
    if (++st->fired < 2) return;
    libxl__ao *ao = st->root;
    libxl__nested_ao_free(st->grandchild);
    libxl__nested_ao_free(st->child);
    libxl__ao_complete(egc, ao, ERROR_ABORTED);
}

static void xtxn_aborted(libxl__egc *egc, libxl__ao_abortable *abrt, int rc)
{
    xtxn_state *st = CONTAINER_OF(abrt, *st, abrt);
    nested_counts[XTXC_ABORTABLE_RC] = rc;
    nested_counts[XTXC_ABORTING_AFTER] = libxl__ao_aborting(st->grandchild);
    xtxn_maybe_done(egc, st);
}

static void xtxn_timeout(libxl__egc *egc, libxl__ev_time *ev,
                         const struct timeval *requested_abs, int rc)
{
    xtxn_state *st = CONTAINER_OF(ev, *st, time);
    (void)requested_abs;
    nested_counts[XTXC_TIMEOUT_RC] = rc;
    xtxn_maybe_done(egc, st);
}

int libxl_test_xen_nested(libxl_ctx *ctx, const libxl_asyncop_how *ao_how)
{
    AO_CREATE(ctx, 0, ao_how);
    xtxn_state *st;
    GCNEW(st);
    for (int i = 0; i < XTXC_N; i++) nested_counts[i] = 1; /* "not set" */
    st->root = ao;
    st->child = libxl__nested_ao_create(ao);
    st->grandchild = libxl__nested_ao_create(st->child);
    libxl__ao_abortable_init(&st->abrt);
    libxl__ev_time_init(&st->time);
    nested_counts[XTXC_ABORTING_BEFORE] = libxl__ao_aborting(st->grandchild);
    st->abrt.ao = st->grandchild;
    st->abrt.callback = xtxn_aborted;
    int rc = libxl__ao_abortable_register(&st->abrt);
    if (!rc) rc = libxl__ev_time_register_rel(st->child, &st->time, xtxn_timeout, -1);
    if (rc) {
        libxl__ao_abortable_deregister(&st->abrt);
        libxl__ev_time_deregister(gc, &st->time);
        libxl__nested_ao_free(st->grandchild);
        libxl__nested_ao_free(st->child);
        return AO_CREATE_FAIL(rc);
    }
    return AO_INPROGRESS;
}

/*---------- progress reports ----------*/

typedef struct {
    libxl__ao *ao;
    libxl_asyncprogress_how how;
    libxl__ev_immediate ei;
} xtxp_state;

static void xtxp_done(libxl__egc *egc, libxl__ev_immediate *ei)
{
    xtxp_state *st = CONTAINER_OF(ei, *st, ei);
    STATE_AO_GC(st->ao);
    libxl__ao_complete(egc, ao, 0);
}

int libxl_test_xen_progress(libxl_ctx *ctx, int n,
                            const libxl_asyncprogress_how *aop_how,
                            const libxl_asyncop_how *ao_how)
{
    AO_CREATE(ctx, 0, ao_how);
    xtxp_state *st;
    GCNEW(st);
    st->ao = ao;
    libxl__ao_progress_gethow(&st->how, aop_how);
    for (int i = 0; i < n; i++) {
        libxl_event *ev = NEW_EVENT(egc, DOMAIN_CREATE_CONSOLE_AVAILABLE, 7,
                                    st->how.for_event);
        libxl__ao_progress_report(egc, ao, &st->how, ev);
    }
    st->ei.callback = xtxp_done;
    libxl__ev_immediate_register(egc, &st->ei);
    return AO_INPROGRESS;
}
