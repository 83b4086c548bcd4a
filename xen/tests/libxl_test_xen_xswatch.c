/*
 * libxl_test_xen_xswatch.c: test operation inside libxl (see the .h):
 * watches deregistered, and registered, from inside a watch callback.
 * Compiled like a part of libxl, into libxenlight_test.so only.
 */
#include "libxl_internal.h"

#include "libxl_test_xen_xswatch.h"

typedef struct {
    libxl__ao *ao;
    libxl__ev_xswatch w1, w2, w3;
    libxl__ao_abortable abrt;
    char *path2;
    bool w1_gone, w2_gone, w2_fired;
} xtxw_state;

static int counts[XTXW_N];

void libxl_test_xen_xswatch_counts(int counts_out[XTXW_N])
{
    memcpy(counts_out, counts, sizeof(counts));
}

static void xtxw_w1_cb(libxl__egc *egc, libxl__ev_xswatch *w,
                       const char *wpath, const char *epath);
static void xtxw_w2_cb(libxl__egc *egc, libxl__ev_xswatch *w,
                       const char *wpath, const char *epath);
static void xtxw_w3_cb(libxl__egc *egc, libxl__ev_xswatch *w,
                       const char *wpath, const char *epath);
static void xtxw_aborted(libxl__egc *egc, libxl__ao_abortable *abrt, int rc);

static void xtxw_teardown(libxl__gc *gc, xtxw_state *st)
{
    libxl__ev_xswatch_deregister(gc, &st->w1);
    libxl__ev_xswatch_deregister(gc, &st->w2);
    libxl__ev_xswatch_deregister(gc, &st->w3);
    libxl__ao_abortable_deregister(&st->abrt);
}

int libxl_test_xen_xswatch(libxl_ctx *ctx, const char *path1, const char *path2,
                           const char *path3, const libxl_asyncop_how *ao_how)
{
    AO_CREATE(ctx, 0, ao_how);
    int rc;
    xtxw_state *st;

    GCNEW(st);
    st->ao = ao;
    st->path2 = libxl__strdup(gc, path2);
    libxl__ev_xswatch_init(&st->w1);
    libxl__ev_xswatch_init(&st->w2);
    libxl__ev_xswatch_init(&st->w3);
    libxl__ao_abortable_init(&st->abrt);
    memset(counts, 0, sizeof(counts));
    counts[XTXW_W2_SLOT] = -1;

    st->abrt.ao = ao;
    st->abrt.callback = xtxw_aborted;
    rc = libxl__ao_abortable_register(&st->abrt);
    if (rc) goto out;
    rc = libxl__ev_xswatch_register(gc, &st->w1, xtxw_w1_cb, path1);
    if (rc) goto out;
    counts[XTXW_W1_SLOT] = st->w1.slotnum;
    rc = libxl__ev_xswatch_register(gc, &st->w3, xtxw_w3_cb, path3);
    if (rc) goto out;
    return AO_INPROGRESS;

 out:
    xtxw_teardown(gc, st);
    return AO_CREATE_FAIL(rc);
}

/* Reads the node the event names; "" if absent. */
static const char *xtxw_value(libxl__gc *gc, const char *wpath, const char *epath)
{
    if (!xs_path_is_subpath(wpath, epath)) counts[XTXW_WRONG_PATH]++;
    const char *v = libxl__xs_read(gc, XBT_NULL, epath);
    return v ? v : "";
}

static void xtxw_maybe_done(libxl__egc *egc, xtxw_state *st)
{
    STATE_AO_GC(st->ao);
    if (!st->w2_fired || !counts[XTXW_W3_POKES]) return;
    xtxw_teardown(gc, st);
    libxl__ao_complete(egc, ao, 0);
}

static void xtxw_w1_cb(libxl__egc *egc, libxl__ev_xswatch *w,
                       const char *wpath, const char *epath)
{
    xtxw_state *st = CONTAINER_OF(w, *st, w1);
    STATE_AO_GC(st->ao);
    counts[XTXW_W1_CALLS]++;
    if (st->w1_gone) { counts[XTXW_W1_CALLS_AFTER]++; return; }
    if (strncmp(xtxw_value(gc, wpath, epath), "fire", 4)) return;

    /* Deregister this very watch from inside its own callback, then
     * register another one, which takes the slot just freed. */
    libxl__ev_xswatch_deregister(gc, &st->w1);
    st->w1_gone = 1;
    int rc = libxl__ev_xswatch_register(gc, &st->w2, xtxw_w2_cb, st->path2);
    counts[XTXW_W2_REGISTER_RC] = rc;
    if (rc) {
        xtxw_teardown(gc, st);
        libxl__ao_complete(egc, ao, rc);
        return;
    }
    counts[XTXW_W2_SLOT] = st->w2.slotnum;
}

static void xtxw_w2_cb(libxl__egc *egc, libxl__ev_xswatch *w,
                       const char *wpath, const char *epath)
{
    xtxw_state *st = CONTAINER_OF(w, *st, w2);
    STATE_AO_GC(st->ao);
    counts[XTXW_W2_CALLS]++;
    if (st->w2_gone) { counts[XTXW_W2_CALLS_AFTER]++; return; }
    if (strcmp(xtxw_value(gc, wpath, epath), "fire")) return;
    libxl__ev_xswatch_deregister(gc, &st->w2);
    st->w2_gone = 1;
    st->w2_fired = 1;
    xtxw_maybe_done(egc, st);
}

static void xtxw_w3_cb(libxl__egc *egc, libxl__ev_xswatch *w,
                       const char *wpath, const char *epath)
{
    xtxw_state *st = CONTAINER_OF(w, *st, w3);
    STATE_AO_GC(st->ao);
    counts[XTXW_W3_CALLS]++;
    if (strcmp(xtxw_value(gc, wpath, epath), "poke")) return;
    counts[XTXW_W3_POKES]++;
    xtxw_maybe_done(egc, st);
}

static void xtxw_aborted(libxl__egc *egc, libxl__ao_abortable *abrt, int rc)
{
    xtxw_state *st = CONTAINER_OF(abrt, *st, abrt);
    STATE_AO_GC(st->ao);
    xtxw_teardown(gc, st);
    libxl__ao_complete(egc, ao, rc);
}
