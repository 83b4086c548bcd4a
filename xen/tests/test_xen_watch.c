/*
 * test_xen_watch.c: libxl's xenstore watches through the public API
 * (libxl_evenable_disk_eject), against Xen's own libxl and the fake
 * xenstored.  Run under run-nohv:
 *
 *   run-nohv tests/test_xen_watch                   cases (a)-(e)
 *   run-nohv tests/test_xen_watch --kill-xenstored  case (f)
 *
 * libxl_evenable_disk_eject(ctx, domid, vdev) watches
 * /local/domain/DOMID/device/vbd/DEVID/eject; when that node reads
 * "eject", libxl writes "" there (its acknowledgement) and queues a
 * DISK_EJECT event for the application.  The test is the "external"
 * writer, over its own xenstore connection; for the liveness cases the
 * write comes from another thread while libxl's loop is blocked, and the
 * event must reach the application within prompt_ms() of the write.
 *
 * Every case allocates its own ctx and ends with libxl_ctx_free; the fd
 * count must then be what it was before, with no child left.
 */
#include "xtest.h"

#define USER_TAG ((libxl_ev_user)0x5eed0123456789abULL)

static struct xs_handle *xs;
static xentoollog_logger *lg;

/*---------- an external write from another thread, after a delay ----------*/

typedef struct {
    pthread_t th;
    int delay_ms;
    int n;
    char paths[64][128];
    double t_first, t_last; /* now_ms() just before the first/last write */
    int err;
} writer;

static void *writer_main(void *arg)
{
    writer *w = arg;
    sleep_ms(w->delay_ms);
    for (int i = 0; i < w->n; i++) {
        double t = now_ms();
        if (i == 0) w->t_first = t;
        w->t_last = t;
        if (xt_xs_put(xs, w->paths[i], "eject")) w->err = errno ? errno : -1;
    }
    return NULL;
}

static void writer_start(writer *w, int delay_ms)
{
    w->delay_ms = delay_ms;
    w->err = 0;
    if (pthread_create(&w->th, NULL, writer_main, w)) {
        perror("pthread_create");
        exit(1);
    }
}

static void writer_join(writer *w)
{
    pthread_join(w->th, NULL);
    if (w->err) case_fail("external xs_write failed (errno %d)", w->err);
}

static void one_writer(writer *w, int domid, int devid)
{
    memset(w, 0, sizeof(*w));
    w->n = 1;
    xt_eject_path(w->paths[0], sizeof(w->paths[0]), domid, devid);
}

/* The eject node reads "" again: libxl acknowledged. */
static void check_acked(int domid, int devid)
{
    char p[128];
    xt_eject_path(p, sizeof(p), domid, devid);
    char *v = xt_xs_get(xs, p);
    if (!v || v[0])
        case_fail("%s = '%s' after the event, expected '' (libxl's "
                  "acknowledgement)", p, v ? v : "(absent)");
    free(v);
}

/* No event queued now (after the loop ran). */
static void check_no_event(libxl_ctx *ctx)
{
    libxl_event *ev = NULL;
    int rc = libxl_event_check(ctx, &ev, LIBXL_EVENTMASK_ALL, 0, 0);
    if (rc != ERROR_NOT_READY)
        case_fail("libxl_event_check = %s (event type %s), expected "
                  "ERROR_NOT_READY", xt_err(rc),
                  ev ? libxl_event_type_to_string(ev->type) : "-");
    if (ev) libxl_event_free(ctx, ev);
}

static libxl_evgen_disk_eject *enable(libxl_ctx *ctx, int domid, const char *vdev,
                                      libxl_ev_user user)
{
    libxl_evgen_disk_eject *evg = NULL;
    int rc = libxl_evenable_disk_eject(ctx, domid, vdev, user, &evg);
    if (rc) case_fail("libxl_evenable_disk_eject(%d, %s) = %s", domid, vdev, xt_err(rc));
    else if (!evg) case_fail("libxl_evenable_disk_eject gave no evgen");
    return rc ? NULL : evg;
}

static void finish_ctx(libxl_ctx *ctx, const xt_snap *snap)
{
    libxl_ctx_free(ctx);
    xt_snap_check(snap);
    if (xt_disasters)
        case_fail("disaster hook called: %s", xt_disaster_msg);
}

static void start_case(const char *name, xt_snap *snap)
{
    case_begin(name);
    xt_disasters = 0;
    xt_snap_take(snap);
}

/*---------- (a) libxl_event_wait ----------*/

static void case_event_wait(void)
{
    xt_snap snap;
    start_case("watch_event_wait", &snap);
    int devid = xt_xvd_devid(0);
    CHECK(xt_setup_disk(xs, 1, "xvda", devid) == 0);
    libxl_ctx *ctx = xt_ctx(lg);
    if (!ctx) { case_end(); return; }
    libxl_evgen_disk_eject *evg = enable(ctx, 1, "xvda", USER_TAG);
    for (int round = 0; evg && round < 3; round++) {
        writer w;
        one_writer(&w, 1, devid);
        writer_start(&w, 30); /* while libxl_event_wait is blocked */
        libxl_event *ev = NULL;
        int rc = libxl_event_wait(ctx, &ev, LIBXL_EVENTMASK_ALL, 0, 0);
        double t = now_ms();
        writer_join(&w);
        CHECK_RC(rc, 0);
        if (ev) {
            xt_check_eject_event(ev, 1, "xvda", USER_TAG);
            CHECK_PROMPT(w.t_last, t, "DISK_EJECT through libxl_event_wait");
            libxl_event_free(ctx, ev);
        }
        check_acked(1, devid);
    }
    if (evg) libxl_evdisable_disk_eject(ctx, evg);
    finish_ctx(ctx, &snap);
    case_end();
}

/*---------- (b) the application's own beforepoll/poll/afterpoll loop ----------*/

static void case_own_loop(void)
{
    xt_snap snap;
    start_case("watch_own_poll_loop", &snap);
    int devid = xt_xvd_devid(1);
    CHECK(xt_setup_disk(xs, 1, "xvdb", devid) == 0);
    libxl_ctx *ctx = xt_ctx(lg);
    if (!ctx) { case_end(); return; }
    libxl_evgen_disk_eject *evg = enable(ctx, 1, "xvdb", USER_TAG + 1);
    for (int round = 0; evg && round < 3; round++) {
        writer w;
        one_writer(&w, 1, devid);
        /* Let libxl see the watch's initial firing first (no event). */
        xt_loop_for(ctx, 20, NULL, 0);
        check_no_event(ctx);
        writer_start(&w, 30);
        libxl_event *ev = NULL;
        double end = now_ms() + 2000, t = 0;
        while (!ev && now_ms() < end) {
            int rc = xt_loop_once(ctx, 1000, NULL, 0);
            if (rc) { case_fail("libxl_osevent_beforepoll = %s", xt_err(rc)); break; }
            rc = libxl_event_check(ctx, &ev, LIBXL_EVENTMASK_ALL, 0, 0);
            t = now_ms();
            if (rc && rc != ERROR_NOT_READY)
                case_fail("libxl_event_check = %s", xt_err(rc));
        }
        writer_join(&w);
        if (!ev) {
            case_fail("no DISK_EJECT within 2 s of the write (round %d)", round);
            break;
        }
        xt_check_eject_event(ev, 1, "xvdb", USER_TAG + 1);
        CHECK_PROMPT(w.t_last, t, "DISK_EJECT through beforepoll/poll/afterpoll");
        libxl_event_free(ctx, ev);
        check_acked(1, devid);
    }
    if (evg) libxl_evdisable_disk_eject(ctx, evg);
    finish_ctx(ctx, &snap);
    case_end();
}

/*---------- (c) osevent hooks ----------*/

/* with_callback: events through libxl_event_hooks.event_occurs instead
 * of libxl_event_check. */
static void case_hooks(int with_callback)
{
    xt_snap snap;
    start_case(with_callback ? "watch_osevent_hooks_event_callback"
                             : "watch_osevent_hooks_event_check", &snap);
    int devid = xt_xvd_devid(2 + with_callback);
    const char *vdev = with_callback ? "xvdd" : "xvdc";
    CHECK(xt_setup_disk(xs, 1, vdev, devid) == 0);
    static xt_hooks H;
    memset(&H, 0, sizeof(H));
    libxl_ctx *ctx = NULL;
    int rc = libxl_ctx_alloc(&ctx, LIBXL_VERSION, 0, lg);
    if (rc) { case_fail("libxl_ctx_alloc = %d", rc); case_end(); return; }
    libxl_osevent_register_hooks(ctx, &xt_osevent_hooks, &H);
    libxl_event_register_callbacks(ctx, with_callback ? &xt_cb_hooks : &xt_disaster_hooks,
                                   NULL);
    xt_cb_events = 0;
    xt_cb_event = NULL;
    libxl_evgen_disk_eject *evg = enable(ctx, 1, vdev, USER_TAG + 2);
    if (evg && xt_hooks_nfds(&H) < 1)
        case_fail("no fd registered through the fd_register hook after "
                  "libxl_evenable_disk_eject");
    for (int round = 0; evg && round < 3; round++) {
        for (int i = 0; i < 4; i++) xt_hooks_run_once(ctx, &H, 5); /* initial firing */
        writer w;
        one_writer(&w, 1, devid);
        writer_start(&w, 30);
        libxl_event *ev = NULL;
        double end = now_ms() + 2000, t = 0;
        int before = xt_cb_events;
        while (now_ms() < end) {
            xt_hooks_run_once(ctx, &H, 1000);
            if (with_callback) {
                if (xt_cb_events > before) { ev = xt_cb_event; xt_cb_event = NULL; t = xt_cb_t; break; }
            } else {
                rc = libxl_event_check(ctx, &ev, LIBXL_EVENTMASK_ALL, 0, 0);
                t = now_ms();
                if (!rc) break;
                if (rc != ERROR_NOT_READY)
                    case_fail("libxl_event_check = %s", xt_err(rc));
            }
        }
        writer_join(&w);
        if (!ev) {
            case_fail("no DISK_EJECT within 2 s of the write (round %d)", round);
            break;
        }
        xt_check_eject_event(ev, 1, vdev, USER_TAG + 2);
        CHECK_PROMPT(w.t_last, t, with_callback ? "DISK_EJECT to event_occurs"
                                               : "DISK_EJECT (hooks + event_check)");
        libxl_event_free(ctx, ev);
        check_acked(1, devid);
        if (with_callback && xt_cb_events != before + 1)
            case_fail("%d event_occurs calls for one eject", xt_cb_events - before);
    }
    if (evg) {
        libxl_evdisable_disk_eject(ctx, evg);
        if (xt_hooks_nfds(&H) != 0)
            case_fail("%d fd(s) still registered through the hooks after the "
                      "last watch was disabled", xt_hooks_nfds(&H));
    }
    libxl_ctx_free(ctx);
    if (xt_hooks_nfds(&H) != 0)
        case_fail("%d fd(s) still registered after libxl_ctx_free", xt_hooks_nfds(&H));
    if (H.n_bad) case_fail("%d hook calls with a bad registration", H.n_bad);
    if (xt_cb_event) { libxl_event_free(NULL, xt_cb_event); xt_cb_event = NULL; }
    xt_snap_check(&snap);
    if (xt_disasters) case_fail("disaster hook called: %s", xt_disaster_msg);
    case_end();
}

/*---------- (d) many watches ----------*/

#define NDOM 5
#define NVDEV 10
#define NW (NDOM * NVDEV)

static void case_many(void)
{
    xt_snap snap;
    start_case("watch_50_evgens_random_order", &snap);
    char vdevs[NW][8];
    int domids[NW], devids[NW];
    for (int i = 0; i < NW; i++) {
        domids[i] = 11 + i / NVDEV;
        devids[i] = xt_xvd_devid(i % NVDEV);
        snprintf(vdevs[i], sizeof(vdevs[i]), "xvd%c", 'a' + i % NVDEV);
        CHECK(xt_setup_disk(xs, domids[i], vdevs[i], devids[i]) == 0);
    }
    libxl_ctx *ctx = xt_ctx(lg);
    if (!ctx) { case_end(); return; }
    libxl_evgen_disk_eject *evg[NW] = { 0 };
    int nenabled = 0;
    for (int i = 0; i < NW; i++) {
        evg[i] = enable(ctx, domids[i], vdevs[i], 0x1000 + i);
        nenabled += !!evg[i];
    }
    if (nenabled == NW) {
        xt_loop_for(ctx, 50, NULL, 0); /* the 50 initial firings */
        check_no_event(ctx);
        /* all 50 ejects, in a random (seeded) order, from another thread */
        int order[NW];
        for (int i = 0; i < NW; i++) order[i] = i;
        srand(20240501);
        for (int i = NW - 1; i > 0; i--) {
            int j = rand() % (i + 1), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        writer w;
        memset(&w, 0, sizeof(w));
        w.n = NW;
        for (int i = 0; i < NW; i++)
            xt_eject_path(w.paths[i], sizeof(w.paths[i]), domids[order[i]],
                          devids[order[i]]);
        int seen[NW] = { 0 }, got = 0;
        double t_last_ev = 0;
        writer_start(&w, 20);
        while (got < NW) {
            libxl_event *ev = NULL;
            int rc = libxl_event_wait(ctx, &ev, LIBXL_EVENTMASK_ALL, 0, 0);
            if (rc) { case_fail("libxl_event_wait = %s", xt_err(rc)); break; }
            t_last_ev = now_ms();
            long i = (long)ev->for_user - 0x1000;
            if (ev->type != LIBXL_EVENT_TYPE_DISK_EJECT || i < 0 || i >= NW) {
                case_fail("unexpected event type %s for_user %#llx",
                          libxl_event_type_to_string(ev->type),
                          (unsigned long long)ev->for_user);
            } else {
                if (seen[i]++) case_fail("evgen %ld: its event delivered twice", i);
                xt_check_eject_event(ev, domids[i], vdevs[i], 0x1000 + i);
            }
            libxl_event_free(ctx, ev);
            got++;
        }
        writer_join(&w);
        fprintf(stderr, "     50 writes took %.1f ms\n", w.t_last - w.t_first);
        CHECK_PROMPT(w.t_last, t_last_ev, "the last of 50 DISK_EJECTs");
        for (int i = 0; i < NW; i++) {
            if (seen[i] != 1) case_fail("evgen %d: %d events", i, seen[i]);
            check_acked(domids[i], devids[i]);
        }
        xt_loop_for(ctx, 50, NULL, 0);
        check_no_event(ctx);
    }
    for (int i = 0; i < NW; i++)
        if (evg[i]) libxl_evdisable_disk_eject(ctx, evg[i]);
    finish_ctx(ctx, &snap);
    case_end();
}

/*---------- (e) evdisable ----------*/

static void case_evdisable(void)
{
    xt_snap snap;
    start_case("watch_evdisable_stops_events", &snap);
    int da = xt_xvd_devid(4), db = xt_xvd_devid(5);
    CHECK(xt_setup_disk(xs, 2, "xvde", da) == 0);
    CHECK(xt_setup_disk(xs, 2, "xvdf", db) == 0);
    libxl_ctx *ctx = xt_ctx(lg);
    if (!ctx) { case_end(); return; }
    libxl_evgen_disk_eject *a = enable(ctx, 2, "xvde", 0xa);
    libxl_evgen_disk_eject *b = enable(ctx, 2, "xvdf", 0xb);
    if (a && b) {
        xt_loop_for(ctx, 20, NULL, 0);
        libxl_evdisable_disk_eject(ctx, a);
        a = NULL;
        writer w;
        memset(&w, 0, sizeof(w));
        w.n = 2;
        xt_eject_path(w.paths[0], sizeof(w.paths[0]), 2, da);
        xt_eject_path(w.paths[1], sizeof(w.paths[1]), 2, db);
        writer_start(&w, 20);
        libxl_event *ev = NULL;
        int rc = libxl_event_wait(ctx, &ev, LIBXL_EVENTMASK_ALL, 0, 0);
        double t = now_ms();
        writer_join(&w);
        CHECK_RC(rc, 0);
        if (ev) {
            xt_check_eject_event(ev, 2, "xvdf", 0xb);
            CHECK_PROMPT(w.t_last, t, "DISK_EJECT of the evgen still enabled");
            libxl_event_free(ctx, ev);
        }
        xt_loop_for(ctx, 150, NULL, 0);
        check_no_event(ctx);
        char p[128];
        xt_eject_path(p, sizeof(p), 2, da);
        char *v = xt_xs_get(xs, p);
        if (!v || strcmp(v, "eject"))
            case_fail("%s = '%s': something acknowledged the eject of a "
                      "disabled evgen", p, v ? v : "(absent)");
        free(v);
        check_acked(2, db);
    }
    if (a) libxl_evdisable_disk_eject(ctx, a);
    if (b) libxl_evdisable_disk_eject(ctx, b);
    finish_ctx(ctx, &snap);
    case_end();
}

/* A watch set on a node that already reads "eject" fires at once
 * (xenstore's initial watch event): re-enabling gives the pending event. */
static void case_reenable(void)
{
    xt_snap snap;
    start_case("watch_reenable_sees_pending_eject", &snap);
    int d = xt_xvd_devid(6);
    CHECK(xt_setup_disk(xs, 2, "xvdg", d) == 0);
    libxl_ctx *ctx = xt_ctx(lg);
    if (!ctx) { case_end(); return; }
    libxl_evgen_disk_eject *a = enable(ctx, 2, "xvdg", 0xc1);
    if (a) {
        libxl_evdisable_disk_eject(ctx, a);
        char p[128];
        xt_eject_path(p, sizeof(p), 2, d);
        CHECK(xt_xs_put(xs, p, "eject") == 0);
        xt_loop_for(ctx, 30, NULL, 0);
        check_no_event(ctx);
        double t0 = now_ms();
        a = enable(ctx, 2, "xvdg", 0xc2);
        libxl_event *ev = NULL;
        int rc = a ? libxl_event_wait(ctx, &ev, LIBXL_EVENTMASK_ALL, 0, 0) : -1;
        double t = now_ms();
        if (a) CHECK_RC(rc, 0);
        if (ev) {
            xt_check_eject_event(ev, 2, "xvdg", 0xc2);
            CHECK_PROMPT(t0, t, "DISK_EJECT after re-enabling");
            libxl_event_free(ctx, ev);
            check_acked(2, d);
        }
    }
    if (a) libxl_evdisable_disk_eject(ctx, a);
    finish_ctx(ctx, &snap);
    case_end();
}

/*---------- (f) xenstored killed under libxl ----------*/

static void case_kill_xenstored(void)
{
    xt_snap snap;
    start_case("xenstored_killed_mid_watch", &snap);
    const char *pids = getenv("XENSTORED_PID");
    if (!pids) {
        case_fail("XENSTORED_PID is not set (run under run-nohv)");
        case_end();
        return;
    }
    int d = xt_xvd_devid(7);
    CHECK(xt_setup_disk(xs, 3, "xvdh", d) == 0);
    libxl_ctx *ctx = xt_ctx(lg);
    if (!ctx) { case_end(); return; }
    libxl_evgen_disk_eject *a = enable(ctx, 3, "xvdh", 0xf1);
    if (a) {
        xt_loop_for(ctx, 30, NULL, 0);
        if (kill(atoi(pids), SIGKILL))
            case_fail("kill -9 %s: %s", pids, strerror(errno));
        double t_kill = now_ms();
        /* libxl's loop keeps running: no event, no crash, no hang */
        xt_loop_for(ctx, 300, NULL, 0);
        libxl_event *ev = NULL;
        int rc = libxl_event_check(ctx, &ev, LIBXL_EVENTMASK_ALL, 0, 0);
        fprintf(stderr, "     after kill -9: disaster hook %s within %.0f ms; "
                "event_check = %s\n", xt_disasters ? "CALLED" : "not called",
                now_ms() - t_kill, xt_err(rc));
        if (ev) {
            case_fail("event %s after xenstored died",
                      libxl_event_type_to_string(ev->type));
            libxl_event_free(ctx, ev);
        }
        /* The next operations that talk to xenstore must fail, promptly.
         * (Not libxl_evenable_disk_eject: when its xenstore read fails,
         * its error path deregisters a watch it never initialised and
         * crashes in xs_unwatch(NULL path): a bug in libxl_disk.c.) */
        double t0 = now_ms();
        libxl_evgen_domain_death *dd = NULL;
        rc = libxl_evenable_domain_death(ctx, 5, 0xf2, &dd);
        double t1 = now_ms();
        fprintf(stderr, "     libxl_evenable_domain_death after the kill = %s\n",
                xt_err(rc));
        if (!rc) {
            if (!xt_disasters)
                case_fail("libxl_evenable_domain_death succeeded with xenstored "
                          "dead, and no disaster was reported");
            if (dd) libxl_evdisable_domain_death(ctx, dd);
        }
        CHECK_PROMPT(t0, t1, "the failure of libxl_evenable_domain_death");
        t0 = now_ms();
        char *name = libxl_domid_to_name(ctx, 0);
        t1 = now_ms();
        fprintf(stderr, "     libxl_domid_to_name(0) after the kill = %s\n",
                name ? name : "NULL");
        if (name) case_fail("libxl_domid_to_name(0) = '%s' with xenstored dead", name);
        free(name);
        CHECK_PROMPT(t0, t1, "the failure of libxl_domid_to_name");
        t0 = now_ms();
        libxl_evdisable_disk_eject(ctx, a); /* its xs_unwatch fails: logged */
        CHECK_PROMPT(t0, now_ms(), "libxl_evdisable_disk_eject");
    }
    double t0 = now_ms();
    libxl_ctx_free(ctx);
    CHECK_PROMPT(t0, now_ms(), "libxl_ctx_free");
    xt_snap_check(&snap);
    case_end();
}

int main(int argc, char **argv)
{
    watchdog_thread(30);
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    lg = xt_logger();
    xs = xt_xs_open();
    if (!xs) return 1;

    if (argc > 1 && !strcmp(argv[1], "--kill-xenstored")) {
        case_kill_xenstored();
    } else {
        case_event_wait();
        case_own_loop();
        case_hooks(0);
        case_hooks(1);
        case_many();
        case_evdisable();
        case_reenable();
    }
    xs_close(xs);
    xtl_logger_destroy(lg);
    return xt_failures ? 1 : 0;
}
