/*
 * libxl_test_xen_qmp.h: a test operation inside libxl (built into
 * libxenlight_test.so only) that drives libxl's asynchronous QMP client,
 * libxl__ev_qmp (libxl_qmp.c), with a timeout of its own.
 */
#ifndef LIBXL_TEST_XEN_QMP_H
#define LIBXL_TEST_XEN_QMP_H

#include <libxl.h>

/*
 * Sends the QMP command `cmd` (no arguments) to the QEMU of `domid`
 * through libxl__ev_qmp: libxl takes the QMP lock
 * (XEN_LIB_DIR/userdata-l.<domid>.<uuid>.qmp-socket-lock), connects to
 * XEN_RUN_DIR/qmp-libxl-<domid>, reads the greeting, negotiates
 * capabilities, sends the command and waits for its reply.
 *
 * A timeout (libxl__ev_time, registered with the ao, so libxl_ao_abort
 * reaches it too) of timeout_ms bounds the whole exchange.  The ao
 * completes with:
 *   0                         the command's "return" arrived; if
 *                             response_out, *response_out = its JSON
 *                             (malloc'd, the caller frees it)
 *   ERROR_TIMEDOUT            no reply within timeout_ms
 *   ERROR_ABORTED             libxl_ao_abort
 *   anything else             libxl__ev_qmp's own error (ERROR_QMP_*,
 *                             ERROR_PROTOCOL_ERROR_QMP, ERROR_FAIL, ...)
 * The QMP connection is closed (libxl__ev_qmp_dispose) before completion.
 */
int libxl_test_xen_qmp(libxl_ctx *ctx, uint32_t domid, const char *cmd,
                       int timeout_ms, char **response_out,
                       const libxl_asyncop_how *ao_how)
                       LIBXL_EXTERNAL_CALLERS_ONLY;

#endif
