/*
 * test_xen_badxs.c: libxl against a xenstored that misbehaves: watch
 * events libxl must ignore, a reply of the wrong type, a broken message
 * header, a xenstored that stops answering.  Public API only.  Run under
 * run-nohv with FAKE_XENSTORED_CONTROL=1 (the fake xenstored's actions on
 * request, see xen/nohv/fake_xenstored.py), one scenario per run (some
 * leave xenstored unusable or dead):
 *
 *   test_xen_badxs bad-events | wrong-type | bad-header | mute | mute-locked
 *
 * None may crash, hang, leak an fd or leave a child; each failure must
 * surface as an error return (or a disaster report) promptly.
 */
#include "xtest.h"

#define CONTROL "/fake-xenstored/do"

static struct xs_handle *xs;
static xentoollog_logger *lg;

static int control(const char *action)
{
    if (xt_xs_put(xs, CONTROL, action)) {
        case_fail("fake xenstored refused '%s' (errno %d): is "
                  "FAKE_XENSTORED_CONTROL=1 set?", action, errno);
        return -1;
    }
    return 0;
}

static void check_no_event(libxl_ctx *ctx)
{
    libxl_event *ev = NULL;
    int rc = libxl_event_check(ctx, &ev, LIBXL_EVENTMASK_ALL, 0, 0);
    if (rc != ERROR_NOT_READY)
        case_fail("libxl_event_check = %s (event %s), expected ERROR_NOT_READY",
                  xt_err(rc), ev ? libxl_event_type_to_string(ev->type) : "-");
    if (ev) libxl_event_free(ctx, ev);
}

static libxl_ctx *start(const char *name, xt_snap *snap)
{
    case_begin(name);
    xt_disasters = 0;
    xt_snap_take(snap);
    return xt_ctx(lg);
}

static void finish(libxl_ctx *ctx, const xt_snap *snap, int disasters_ok)
{
    double t0 = now_ms();
    libxl_ctx_free(ctx);
    CHECK_PROMPT(t0, now_ms(), "libxl_ctx_free");
    xt_snap_check(snap);
    if (xt_disasters)
        fprintf(stderr, "     disaster hook called %d time(s): %s\n", xt_disasters,
                xt_disaster_msg);
    if (xt_disasters && !disasters_ok)
        case_fail("disaster hook called: %s", xt_disaster_msg);
    case_end();
}

/* Watch events with bad tokens (or paths) must be ignored: to make a
 * misrouted one visible, the eject node already reads "eject" (written
 * without firing), so a callback run for any of them would acknowledge
 * it and queue a DISK_EJECT. */
static void bad_events(void)
{
    xt_snap snap;
    libxl_ctx *ctx = start("xenstored_bad_watch_events_ignored", &snap);
    if (!ctx) { case_end(); return; }
    int devid = xt_xvd_devid(0);
    char ej[128], act[200];
    xt_eject_path(ej, sizeof(ej), 4, devid);
    CHECK(xt_setup_disk(xs, 4, "xvda", devid) == 0);
    libxl_evgen_disk_eject *evg = NULL;
    int rc = libxl_evenable_disk_eject(ctx, 4, "xvda", 0xbad, &evg);
    CHECK_RC(rc, 0);
    if (!rc) {
        xt_loop_for(ctx, 30, NULL, 0); /* its initial firing */
        snprintf(act, sizeof(act), "silent-write %s eject", ej);
        if (!control(act) && !control("bad-events")) {
            char *n = xt_xs_get(xs, "/fake-xenstored/bad-events-sent");
            fprintf(stderr, "     %s bad watch events sent\n", n ? n : "no");
            if (!n || atoi(n) < 8)
                case_fail("the fake xenstored sent %s bad events", n ? n : "no");
            free(n);
            xt_loop_for(ctx, 200, NULL, 0);
            check_no_event(ctx);
            char *v = xt_xs_get(xs, ej);
            if (!v || strcmp(v, "eject"))
                case_fail("%s = '%s': a bad watch event reached the watch's "
                          "callback", ej, v ? v : "(absent)");
            free(v);
            /* and the watch still works */
            double t0 = now_ms();
            CHECK(xt_xs_put(xs, ej, "eject") == 0);
            libxl_event *ev = NULL;
            rc = libxl_event_wait(ctx, &ev, LIBXL_EVENTMASK_ALL, 0, 0);
            double t = now_ms();
            CHECK_RC(rc, 0);
            if (ev) {
                xt_check_eject_event(ev, 4, "xvda", 0xbad);
                CHECK_PROMPT(t0, t, "DISK_EJECT after the bad events");
                libxl_event_free(ctx, ev);
            }
            xt_loop_for(ctx, 30, NULL, 0);
            check_no_event(ctx);
        }
        libxl_evdisable_disk_eject(ctx, evg);
    }
    finish(ctx, &snap, 0);
}

/* A reply of the wrong type: libxenstore drops the connection; libxl's
 * call fails, and so does every later one, promptly. */
static void wrong_type(void)
{
    xt_snap snap;
    libxl_ctx *ctx = start("xenstored_reply_of_wrong_type", &snap);
    if (!ctx) { case_end(); return; }
    char *name = libxl_domid_to_name(ctx, 0);
    if (!name || strcmp(name, "Domain-0"))
        case_fail("libxl_domid_to_name(0) = %s before the fault", name ? name : "NULL");
    free(name);
    if (!control("wrong-type-next")) {
        double t0 = now_ms();
        name = libxl_domid_to_name(ctx, 0);
        CHECK_PROMPT(t0, now_ms(), "libxl_domid_to_name's return");
        if (name) case_fail("libxl_domid_to_name(0) = '%s' from a reply of the "
                            "wrong type", name);
        free(name);
        t0 = now_ms();
        libxl_evgen_domain_death *dd = NULL;
        int rc = libxl_evenable_domain_death(ctx, 7, 0xd, &dd);
        CHECK_PROMPT(t0, now_ms(), "libxl_evenable_domain_death's return");
        fprintf(stderr, "     then libxl_evenable_domain_death = %s\n", xt_err(rc));
        if (!rc) {
            case_fail("libxl_evenable_domain_death succeeded on a dropped "
                      "xenstore connection");
            libxl_evdisable_domain_death(ctx, dd);
        }
        xt_loop_for(ctx, 50, NULL, 0);
        check_no_event(ctx);
    }
    finish(ctx, &snap, 1);
}

/* A header announcing an oversized payload, to a connection with a watch
 * (libxenstore's reader thread gives up on it, closing the socket). */
static void bad_header(void)
{
    xt_snap snap;
    libxl_ctx *ctx = start("xenstored_bad_header_mid_watch", &snap);
    if (!ctx) { case_end(); return; }
    int devid = xt_xvd_devid(1);
    CHECK(xt_setup_disk(xs, 4, "xvdb", devid) == 0);
    libxl_evgen_disk_eject *evg = NULL;
    int rc = libxl_evenable_disk_eject(ctx, 4, "xvdb", 0xbad2, &evg);
    CHECK_RC(rc, 0);
    if (!rc) {
        xt_loop_for(ctx, 30, NULL, 0);
        if (!control("bad-header")) {
            double t_bad = now_ms();
            xt_loop_for(ctx, 200, NULL, 0);
            check_no_event(ctx);
            fprintf(stderr, "     disaster hook %s within %.0f ms of the bad header\n",
                    xt_disasters ? "CALLED" : "not called", now_ms() - t_bad);
            double t0 = now_ms();
            char *name = libxl_domid_to_name(ctx, 0);
            CHECK_PROMPT(t0, now_ms(), "libxl_domid_to_name's return");
            if (name) case_fail("libxl_domid_to_name(0) = '%s' on a connection "
                                "libxenstore gave up", name);
            free(name);
        }
        double t0 = now_ms();
        libxl_evdisable_disk_eject(ctx, evg);
        CHECK_PROMPT(t0, now_ms(), "libxl_evdisable_disk_eject's return");
    }
    finish(ctx, &snap, 1);
}

/*---------- a xenstored that stops answering ----------*/

typedef struct {
    libxl_ctx *ctx;
    int what;        /* 0 libxl_domid_to_name, 1 libxl_evenable_domain_death */
    int returned;    /* atomic */
    int rc;
    double t;
} blocked_call;

static void *blocked_main(void *arg)
{
    blocked_call *b = arg;
    if (b->what == 0) {
        char *name = libxl_domid_to_name(b->ctx, 0);
        b->rc = name ? 0 : ERROR_FAIL;
        free(name);
    } else {
        libxl_evgen_domain_death *dd = NULL;
        b->rc = libxl_evenable_domain_death(b->ctx, 8, 0xe, &dd);
        if (!b->rc) libxl_evdisable_domain_death(b->ctx, dd);
    }
    b->t = now_ms();
    __atomic_store_n(&b->returned, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

typedef struct { int delay_ms; double t; int err; } killer;

static void *killer_main(void *arg)
{
    killer *k = arg;
    sleep_ms(k->delay_ms);
    const char *p = getenv("XENSTORED_PID");
    k->t = now_ms();
    if (!p || kill(atoi(p), SIGKILL)) k->err = p ? errno : -1;
    return NULL;
}

/* locked = 0: a plain xenstore read blocks (no watch, so libxenstore
 * reads the socket itself).  locked = 1: with a watch registered (reader
 * thread), a call that holds libxl's ctx lock blocks in xs_watch while
 * this thread runs the event loop (which needs that lock).  Either way
 * nothing can end the wait but xenstored's death (libxenstore has no
 * timeout); after kill -9 everything must return promptly, with an
 * error. */
static void mute(int locked)
{
    xt_snap snap;
    libxl_ctx *ctx = start(locked ? "xenstored_mute_with_ctx_lock_held"
                                  : "xenstored_mute_then_killed", &snap);
    if (!ctx) { case_end(); return; }
    if (!getenv("XENSTORED_PID")) {
        case_fail("XENSTORED_PID is not set (run under run-nohv)");
        libxl_ctx_free(ctx);
        case_end();
        return;
    }
    libxl_evgen_disk_eject *evg = NULL;
    int devid = xt_xvd_devid(2);
    if (locked) {
        CHECK(xt_setup_disk(xs, 4, "xvdc", devid) == 0);
        CHECK_RC(libxl_evenable_disk_eject(ctx, 4, "xvdc", 0xbad3, &evg), 0);
        xt_loop_for(ctx, 30, NULL, 0);
    }
    if (control("mute")) {
        if (evg) libxl_evdisable_disk_eject(ctx, evg);
        finish(ctx, &snap, 0);
        return;
    }
    blocked_call b = { .ctx = ctx, .what = locked };
    killer k = { .delay_ms = 300 };
    pthread_t tb, tk;
    pthread_create(&tb, NULL, blocked_main, &b);
    pthread_create(&tk, NULL, killer_main, &k);
    double t_loop_end = 0;
    if (locked) {
        sleep_ms(50); /* the blocked call holds the ctx lock by now */
        xt_loop_once(ctx, 10, NULL, 0); /* beforepoll waits for that lock */
        t_loop_end = now_ms();
    }
    pthread_join(tk, NULL);
    if (k.err) case_fail("kill -9 xenstored: errno %d", k.err);
    double wait_end = now_ms() + 2000;
    while (!__atomic_load_n(&b.returned, __ATOMIC_SEQ_CST) && now_ms() < wait_end)
        sleep_ms(5);
    if (!__atomic_load_n(&b.returned, __ATOMIC_SEQ_CST)) {
        printf("FAIL %s: the blocked call did not return within 2 s of "
               "xenstored's death\n", xt_case);
        fflush(stdout);
        _exit(1); /* cannot free a ctx in use */
    }
    pthread_join(tb, NULL);
    fprintf(stderr, "     the call returned %s %.1f ms %s xenstored was killed\n",
            xt_err(b.rc), b.t > k.t ? b.t - k.t : k.t - b.t,
            b.t >= k.t ? "after" : "BEFORE");
    CHECK_PROMPT(k.t, b.t, "the blocked call's return after the kill");
    if (!b.rc) case_fail("the blocked call succeeded");
    if (locked) {
        fprintf(stderr, "     the event loop's turn ended %.1f ms %s the kill\n",
                t_loop_end > k.t ? t_loop_end - k.t : k.t - t_loop_end,
                t_loop_end >= k.t ? "after" : "BEFORE");
        CHECK_PROMPT(k.t, t_loop_end, "the event loop's return after the kill");
    }
    if (evg) libxl_evdisable_disk_eject(ctx, evg);
    finish(ctx, &snap, 1);
}

int main(int argc, char **argv)
{
    watchdog_thread(30);
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    lg = xt_logger();
    xs = xt_xs_open();
    if (!xs) return 1;
    const char *what = argc > 1 ? argv[1] : "";
    if (!strcmp(what, "bad-events")) bad_events();
    else if (!strcmp(what, "wrong-type")) wrong_type();
    else if (!strcmp(what, "bad-header")) bad_header();
    else if (!strcmp(what, "mute")) mute(0);
    else if (!strcmp(what, "mute-locked")) mute(1);
    else {
        printf("FAIL badxs_setup: unknown scenario '%s'\n", what);
        return 1;
    }
    xs_close(xs);
    xtl_logger_destroy(lg);
    return xt_failures ? 1 : 0;
}
