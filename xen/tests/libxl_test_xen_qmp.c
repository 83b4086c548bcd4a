/*
 * libxl_test_xen_qmp.c: test operation inside libxl (see the .h): one QMP
 * command through libxl__ev_qmp, bounded by a libxl__ev_time.
 * Compiled like a part of libxl, into libxenlight_test.so only.
 */
#include "libxl_internal.h"

#include "libxl_test_xen_qmp.h"

typedef struct {
    libxl__ao *ao;
    libxl__ev_qmp qmp;
    libxl__ev_time timeout;
    char **response_out;
} xtq_state;

static void xtq_qmp_done(libxl__egc *egc, libxl__ev_qmp *qmp,
                         const libxl__json_object *response, int rc);
static void xtq_timeout(libxl__egc *egc, libxl__ev_time *ev,
                        const struct timeval *requested_abs, int rc);

int libxl_test_xen_qmp(libxl_ctx *ctx, uint32_t domid, const char *cmd,
                       int timeout_ms, char **response_out,
                       const libxl_asyncop_how *ao_how)
{
    AO_CREATE(ctx, domid, ao_how);
    xtq_state *st;
    int rc;

    GCNEW(st);
    st->ao = ao;
    st->response_out = response_out;
    if (response_out) *response_out = NULL;
    libxl__ev_time_init(&st->timeout);
    libxl__ev_qmp_init(&st->qmp);
    st->qmp.ao = ao;
    st->qmp.domid = domid;
    st->qmp.payload_fd = -1;
    st->qmp.callback = xtq_qmp_done;

    rc = libxl__ev_time_register_rel(ao, &st->timeout, xtq_timeout, timeout_ms);
    if (rc) goto out;
    rc = libxl__ev_qmp_send(egc, &st->qmp, cmd, NULL);
    if (rc) goto out;
    return AO_INPROGRESS;

 out:
    libxl__ev_time_deregister(gc, &st->timeout);
    libxl__ev_qmp_dispose(gc, &st->qmp);
    return AO_CREATE_FAIL(rc);
}

static void xtq_qmp_done(libxl__egc *egc, libxl__ev_qmp *qmp,
                         const libxl__json_object *response, int rc)
{
    xtq_state *st = CONTAINER_OF(qmp, *st, qmp);
    STATE_AO_GC(st->ao);

    libxl__ev_time_deregister(gc, &st->timeout);
    if (!rc && st->response_out && response)
        *st->response_out = libxl__strdup(NOGC, JSON(response));
    LOG(DEBUG, "test_xen_qmp: reply rc=%d", rc);
    libxl__ev_qmp_dispose(gc, qmp);
    libxl__ao_complete(egc, ao, rc);
}

static void xtq_timeout(libxl__egc *egc, libxl__ev_time *ev,
                        const struct timeval *requested_abs, int rc)
{
    xtq_state *st = CONTAINER_OF(ev, *st, timeout);
    STATE_AO_GC(st->ao);

    /* ERROR_TIMEDOUT, or ERROR_ABORTED on libxl_ao_abort */
    LOG(DEBUG, "test_xen_qmp: %s", rc == ERROR_ABORTED ? "aborted" : "timed out");
    libxl__ev_qmp_dispose(gc, &st->qmp);
    libxl__ao_complete(egc, ao, rc);
}
