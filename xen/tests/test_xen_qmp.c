/*
 * test_xen_qmp.c: libxl's asynchronous QMP client (libxl__ev_qmp, in
 * libxl_qmp.c: an fd, a lock, an immediate, and here a timeout) against a
 * fake QEMU (fake_qemu.h), through the test operation libxl_test_xen_qmp
 * (libxl_test_xen_qmp.c, in libxenlight_test.so).  Run under
 * run-nohv --testlib, as root.
 *
 * libxl finds QEMU's QMP socket at XEN_RUN_DIR/qmp-libxl-<domid> and
 * takes a lock file in XEN_LIB_DIR first (both compiled in:
 * /var/run/xen, /var/lib/xen).  So that nothing on the host is touched,
 * the program first moves itself into a private mount namespace where
 * /run (/var/run) and /var/lib are empty tmpfs mounts, and creates the two
 * directories there.  domid 0 is used: the lock file's name needs the
 * domain's uuid (libxl_domain_info), and the nohv libxenctrl stand-in
 * knows only dom0.
 *
 * Cases: a normal exchange (synchronous ao; and asynchronous with the
 * reply in fragments behind an async QMP event), QEMU never answering
 * (after the greeting, or not even a greeting: ERROR_TIMEDOUT when the
 * op's timeout fires), libxl_ao_abort (ERROR_ABORTED), QEMU closing the
 * socket (ERROR_PROTOCOL_ERROR_QMP), no QEMU at all (ERROR_FAIL), and bad
 * input: not JSON, JSON that is no QMP message, a wrong id (all
 * ERROR_PROTOCOL_ERROR_QMP), an error reply (ERROR_QMP_COMMAND_NOT_FOUND),
 * a refused capabilities negotiation (ERROR_PROTOCOL_ERROR_QMP), a reply
 * of 1.5 MB without end (ERROR_BUFFERFULL).  Each must complete promptly
 * after its cause, with libxl's connection closed (the fake QEMU sees
 * EOF), no fd or child left.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "xtest.h"
#include "fake_qemu.h"
#include "libxl_test_xen_qmp.h"

#ifndef XEN_RUN_DIR
#error "XEN_RUN_DIR: compile with -include <tree>/tools/config.h"
#endif

#define DOMID 0
static char qmp_path[128];
static xentoollog_logger *lg;

/*---------- private /var/run/xen and /var/lib/xen ----------*/

static int private_dirs(char *why, size_t len)
{
    const char *dirs[] = { XEN_RUN_DIR, XEN_LIB_DIR };
    if (unshare(CLONE_NEWNS)) {
        snprintf(why, len, "unshare(CLONE_NEWNS): %s (needs root)", strerror(errno));
        return -1;
    }
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) {
        snprintf(why, len, "making / private: %s", strerror(errno));
        return -1;
    }
    for (int i = 0; i < 2; i++) {
        char parent[256], real[PATH_MAX];
        snprintf(parent, sizeof(parent), "%s", dirs[i]);
        *strrchr(parent, '/') = 0; /* /var/run, /var/lib */
        if (!realpath(parent, real)) {
            snprintf(why, len, "realpath %s: %s", parent, strerror(errno));
            return -1;
        }
        if (mount("xtest", real, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755")) {
            snprintf(why, len, "mount tmpfs on %s: %s", real, strerror(errno));
            return -1;
        }
        if (mkdir(dirs[i], 0755) && errno != EEXIST) {
            snprintf(why, len, "mkdir %s: %s", dirs[i], strerror(errno));
            return -1;
        }
    }
    return 0;
}

/*---------- one exchange ----------*/

typedef struct {
    const char *name;
    fq_mode mode;       /* -1: no QEMU listening at all */
    int timeout_ms;
    int abort_after_ms; /* > 0: libxl_ao_abort then */
    int want_rc;
    int sync;           /* synchronous ao (ao_how NULL) */
} qcase;

static void run_case(const qcase *c)
{
    xt_snap snap;
    case_begin(c->name);
    xt_disasters = 0;
    xt_snap_take(&snap);
    fake_qemu q;
    int have_q = (int)c->mode >= 0;
    if (have_q && fq_start(&q, qmp_path, c->mode)) {
        case_fail("fake QEMU on %s: %s", qmp_path, strerror(errno));
        case_end();
        return;
    }
    libxl_ctx *ctx = xt_ctx(lg);
    if (!ctx) {
        if (have_q) fq_stop(&q, 0);
        case_end();
        return;
    }
    char *resp = NULL;
    int rc;
    double t0 = now_ms();
    xt_done = 0;
    libxl_asyncop_how how = { .callback = xt_op_done, .u.for_callback = &xt_done };
    if (c->sync) {
        rc = libxl_test_xen_qmp(ctx, DOMID, "query-status", c->timeout_ms, &resp, NULL);
        xt_done = 1;
        xt_done_rc = rc;
        xt_done_t = now_ms();
    } else {
        rc = libxl_test_xen_qmp(ctx, DOMID, "query-status", c->timeout_ms, &resp, &how);
        if (rc) {
            case_fail("libxl_test_xen_qmp (async) = %s", xt_err(rc));
        } else {
            double t_abort = 0;
            if (c->abort_after_ms > 0) {
                xt_loop_until(ctx, &xt_done, 1, c->abort_after_ms, NULL, 0);
                if (!xt_done) {
                    t_abort = now_ms();
                    CHECK_RC(libxl_ao_abort(ctx, &how), 0);
                }
            }
            if (xt_loop_until(ctx, &xt_done, 1, c->timeout_ms + 3000, NULL, 0) != 1) {
                case_fail("no completion within %d ms", c->timeout_ms + 3000);
                libxl_ao_abort(ctx, &how);
                if (xt_loop_until(ctx, &xt_done, 1, 2000, NULL, 0) != 1)
                    xt_give_up("still in progress 2 s after libxl_ao_abort");
                xt_done = 0;
            }
            if (t_abort) CHECK_PROMPT(t_abort, xt_done_t, "completion after libxl_ao_abort");
        }
    }
    if (xt_done) {
        double dt = xt_done_t - t0;
        fprintf(stderr, "     completed rc=%s after %.1f ms\n", xt_err(xt_done_rc), dt);
        CHECK_RC(xt_done_rc, c->want_rc);
        if (c->want_rc == ERROR_TIMEDOUT) {
            /* not before the timeout; promptly after it */
            if (dt < c->timeout_ms - 1)
                case_fail("ERROR_TIMEDOUT after %.1f ms, before the %d ms timeout",
                          dt, c->timeout_ms);
            CHECK_PROMPT(t0 + c->timeout_ms, xt_done_t, "ERROR_TIMEDOUT after the deadline");
        } else if (!c->abort_after_ms) {
            /* the cause: the fake QEMU's last action (or the start) */
            double t_q = have_q ? fq_t_action(&q) : 0;
            double cause = t_q ? t_q : t0;
            CHECK_PROMPT(cause, xt_done_t, "completion after QEMU's last word");
        }
    }
    if (c->want_rc == 0 && xt_done && !xt_done_rc) {
        if (!resp || !strstr(resp, "\"running\""))
            case_fail("response %s, expected query-status's return value",
                      resp ? resp : "(none)");
        else
            fprintf(stderr, "     response: %s\n", resp);
    }
    free(resp);
    if (have_q) {
        /* libxl must have closed its QMP connection (before completing) */
        int by_itself = fq_stop(&q, (int)prompt_ms());
        if (!q.accepted) {
            case_fail("libxl never connected to the fake QEMU");
        } else if (c->mode != FQ_CLOSE_AT_ONCE && c->mode != FQ_CLOSE_AFTER_CMD) {
            if (!by_itself || !q.t_client_eof)
                case_fail("libxl's QMP connection still open %.0f ms after "
                          "completion", prompt_ms());
        }
        if (q.accepted && c->mode != FQ_SILENT && c->mode != FQ_CLOSE_AT_ONCE &&
            !q.got_caps)
            case_fail("libxl did not send qmp_capabilities first");
        if (q.accepted && (c->mode == FQ_NORMAL || c->mode == FQ_FRAGMENTED) &&
            strcmp(q.cmd, "query-status"))
            case_fail("fake QEMU got command '%s', expected query-status", q.cmd);
    }
    libxl_ctx_free(ctx);
    xt_snap_check(&snap);
    if (xt_disasters) case_fail("disaster hook called: %s", xt_disaster_msg);
    case_end();
}

int main(void)
{
    char why[300];
    /* before any thread exists (unshare(CLONE_NEWNS) requires it) */
    if (private_dirs(why, sizeof(why))) {
        printf("FAIL qmp_setup: cannot make a private %s and %s: %s\n",
               XEN_RUN_DIR, XEN_LIB_DIR, why);
        return 1;
    }
    watchdog_thread(40);
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    lg = xt_logger();
    snprintf(qmp_path, sizeof(qmp_path), "%s/qmp-libxl-%d", XEN_RUN_DIR, DOMID);

    static const qcase cases[] = {
        { "qmp_exchange_sync",             FQ_NORMAL,          2000, 0,  0, 1 },
        { "qmp_exchange_async_fragmented", FQ_FRAGMENTED,      2000, 0,  0, 0 },
        { "qmp_qemu_mute_times_out",       FQ_MUTE,             300, 0,  ERROR_TIMEDOUT, 0 },
        { "qmp_qemu_silent_times_out",     FQ_SILENT,           300, 0,  ERROR_TIMEDOUT, 0 },
        { "qmp_qemu_mute_sync_times_out",  FQ_MUTE,             200, 0,  ERROR_TIMEDOUT, 1 },
        { "qmp_aborted",                   FQ_MUTE,           10000, 50, ERROR_ABORTED, 0 },
        { "qmp_qemu_closes_after_command", FQ_CLOSE_AFTER_CMD, 2000, 0,  ERROR_PROTOCOL_ERROR_QMP, 0 },
        { "qmp_qemu_closes_at_once",       FQ_CLOSE_AT_ONCE,   2000, 0,  ERROR_PROTOCOL_ERROR_QMP, 0 },
        { "qmp_no_qemu",                   (fq_mode)-1,        2000, 0,  ERROR_FAIL, 0 },
        { "qmp_bad_not_json",              FQ_GARBAGE,         2000, 0,  ERROR_PROTOCOL_ERROR_QMP, 0 },
        { "qmp_bad_not_a_qmp_message",     FQ_NOT_OBJECT,      2000, 0,  ERROR_PROTOCOL_ERROR_QMP, 0 },
        { "qmp_bad_wrong_id",              FQ_WRONG_ID,        2000, 0,  ERROR_PROTOCOL_ERROR_QMP, 0 },
        { "qmp_error_reply",               FQ_ERROR_REPLY,     2000, 0,  ERROR_QMP_COMMAND_NOT_FOUND, 0 },
        { "qmp_bad_capabilities_refused",  FQ_BAD_CAPS,        2000, 0,  ERROR_PROTOCOL_ERROR_QMP, 0 },
        { "qmp_bad_endless_reply",         FQ_FLOOD,           5000, 0,  ERROR_BUFFERFULL, 0 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run_case(&cases[i]);
    xtl_logger_destroy(lg);
    return xt_failures ? 1 : 0;
}
