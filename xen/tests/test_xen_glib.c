/*
 * test_xen_glib.c: libxl's xenstore watches (libxl_evenable_disk_eject)
 * driven by a GLib main loop through this project's GLib adapter
 * (adapters/glib: libxl's osevent hooks as GSources), against Xen's libxl
 * and the fake xenstored.  Run under run-nohv.
 *
 * Cases:
 *   (a) glib_disk_eject_to_event_occurs: the application iterates its own
 *       GMainContext; an external write of "eject" (from another thread)
 *       must reach the event_occurs callback within prompt_ms();
 *   (b) glib_disk_eject_queued_for_event_check: the same with events
 *       queued, taken by libxl_event_check after the iteration;
 *   both: libxl acknowledges (the node reads "" again), evdisable leaves
 *   the adapter with no registration, libxl_ctx_free + libxl_glib_free
 *   leave no fd or child behind.
 */
#include "xtest.h"

#include <glib.h>
#include <libxl_glib.h>

#define USER_TAG ((libxl_ev_user)0x91ab0000000000feULL)

static struct xs_handle *xs;
static xentoollog_logger *lg;

typedef struct {
    pthread_t th;
    char path[128];
    double t;
    int err;
} writer;

static void *writer_main(void *arg)
{
    writer *w = arg;
    sleep_ms(30);
    w->t = now_ms();
    if (xt_xs_put(xs, w->path, "eject")) w->err = errno ? errno : -1;
    return NULL;
}

static gboolean tick(gpointer data)
{
    (void)data;
    return G_SOURCE_CONTINUE; /* only wakes the loop: the deadline is ours */
}

static void run_case(int with_callback)
{
    xt_snap snap;
    case_begin(with_callback ? "glib_disk_eject_to_event_occurs"
                             : "glib_disk_eject_queued_for_event_check");
    xt_disasters = 0;
    xt_snap_take(&snap);
    int domid = 2, devid = xt_xvd_devid(4 + with_callback);
    const char *vdev = with_callback ? "xvdf" : "xvde";
    CHECK(xt_setup_disk(xs, domid, vdev, devid) == 0);

    libxl_ctx *ctx = NULL;
    int rc = libxl_ctx_alloc(&ctx, LIBXL_VERSION, 0, lg);
    if (rc) { case_fail("libxl_ctx_alloc = %d", rc); case_end(); return; }
    GMainContext *mc = g_main_context_new();
    libxl_glib *g = libxl_glib_new(ctx, mc);
    libxl_event_register_callbacks(ctx, with_callback ? &xt_cb_hooks : &xt_disaster_hooks, NULL);
    GSource *ticker = g_timeout_source_new(20);
    g_source_set_callback(ticker, tick, NULL, NULL);
    g_source_attach(ticker, mc);

    libxl_evgen_disk_eject *evg = NULL;
    rc = libxl_evenable_disk_eject(ctx, domid, vdev, USER_TAG + with_callback, &evg);
    if (rc || !evg) case_fail("libxl_evenable_disk_eject = %s", xt_err(rc));
    if (evg && libxl_glib_registrations(g) < 1)
        case_fail("the adapter holds no registration after libxl_evenable_disk_eject");
    for (int i = 0; evg && i < 5; i++) g_main_context_iteration(mc, FALSE); /* initial firing */

    for (int round = 0; evg && round < 3; round++) {
        xt_cb_events = 0;
        writer w;
        memset(&w, 0, sizeof(w));
        xt_eject_path(w.path, sizeof(w.path), domid, devid);
        if (pthread_create(&w.th, NULL, writer_main, &w)) { perror("pthread_create"); exit(1); }
        libxl_event *ev = NULL;
        double t = 0, end = now_ms() + 2000;
        while (now_ms() < end) {
            g_main_context_iteration(mc, TRUE);
            if (with_callback && xt_cb_events) { ev = xt_cb_event; xt_cb_event = NULL; t = xt_cb_t; break; }
            if (!with_callback &&
                libxl_event_check(ctx, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL) == 0) {
                t = now_ms();
                break;
            }
        }
        pthread_join(w.th, NULL);
        if (w.err) case_fail("external xs_write failed (errno %d)", w.err);
        if (!ev) { case_fail("round %d: no DISK_EJECT within 2 s of the write", round); break; }
        xt_check_eject_event(ev, domid, vdev, USER_TAG + with_callback);
        CHECK_PROMPT(w.t, t, "DISK_EJECT through the GLib loop");
        libxl_event_free(ctx, ev);
        if (with_callback && xt_cb_events != 1)
            case_fail("%d event_occurs calls for one eject", xt_cb_events);
        char *v = xt_xs_get(xs, w.path);
        if (!v || v[0]) case_fail("%s = '%s' after the event, expected '' (libxl's acknowledgement)",
                                  w.path, v ? v : "(absent)");
        free(v);
    }
    if (evg) {
        libxl_evdisable_disk_eject(ctx, evg);
        if (libxl_glib_registrations(g) != 0)
            case_fail("%u registration(s) left in the adapter after the last watch was disabled",
                      libxl_glib_registrations(g));
    }
    g_source_destroy(ticker);
    g_source_unref(ticker);
    libxl_ctx_free(ctx);
    libxl_glib_free(g);
    g_main_context_unref(mc);
    if (xt_cb_event) { libxl_event_free(NULL, xt_cb_event); xt_cb_event = NULL; }
    xt_snap_check(&snap);
    if (xt_disasters) case_fail("disaster hook called: %s", xt_disaster_msg);
    case_end();
}

int main(void)
{
    watchdog_thread(30);
    setvbuf(stdout, NULL, _IOLBF, 0);
    lg = xt_logger();
    xs = xt_xs_open();
    run_case(1);
    run_case(0);
    xs_close(xs);
    xtl_logger_destroy(lg);
    return xt_failures ? 1 : 0;
}
