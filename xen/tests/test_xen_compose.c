/*
 * test_xen_compose.c: the parts of libxl's internal event API built on
 * its other parts, through the test operations of
 * libxl_test_xen_compose.c (run with run-nohv --testlib):
 *
 *   devstate_*: libxl__ev_devstate_wait on a xenstore node: reaches the
 *     state (an external write, promptly), times out, the node removed,
 *     aborted;
 *   deathcheck_*: libxl__domaindeathcheck: the domain's xenstore dir
 *     removed (promptly: ERROR_DOMAIN_DESTROYED), aborted;
 *   nested_abort_reaches_the_whole_tree: aborting a root ao fires the
 *     abortable of its grandchild and the timeout of its child;
 *   progress_*: libxl__ao_progress_report in each mode (callback,
 *     for_event, discarded, with a synchronous ao): every report delivered
 *     once, all of them before the completion.
 * Every case ends with the fd/child snapshot check.
 */
#include "xtest.h"

#include "libxl_test_xen_compose.h"

static struct xs_handle *xs;
static xentoollog_logger *lg;

#define DS_PATH "/local/domain/0/backend/xtest/9/0/state"

typedef struct {
    pthread_t th;
    int delay_ms;
    const char *path, *value; /* value NULL: rm */
    double t;
    int err;
} writer;

static void *writer_main(void *arg)
{
    writer *w = arg;
    sleep_ms(w->delay_ms);
    w->t = now_ms();
    if (w->value ? xt_xs_put(xs, w->path, w->value) : !xs_rm(xs, XBT_NULL, w->path))
        w->err = errno ? errno : -1;
    return NULL;
}

static void writer_go(writer *w, int delay_ms, const char *path, const char *value)
{
    memset(w, 0, sizeof(*w));
    w->delay_ms = delay_ms;
    w->path = path;
    w->value = value;
    if (pthread_create(&w->th, NULL, writer_main, w)) { perror("pthread_create"); exit(1); }
}

static void writer_done(writer *w)
{
    pthread_join(w->th, NULL);
    if (w->err) case_fail("external xenstore change of %s failed (errno %d)", w->path, w->err);
}

/* Waits for the OPERATION_COMPLETE of for_user `fe`; its rc, and when. */
static int wait_done(libxl_ctx *ctx, uint64_t fe, double *t)
{
    libxl_event *ev = NULL;
    int rc = libxl_event_wait(ctx, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL);
    *t = now_ms();
    if (rc) { case_fail("libxl_event_wait = %s", xt_err(rc)); return 1; }
    int r = 1;
    if (ev->type != LIBXL_EVENT_TYPE_OPERATION_COMPLETE || ev->for_user != fe)
        case_fail("event type %d for_user %#llx, expected OPERATION_COMPLETE for %#llx",
                  (int)ev->type, (unsigned long long)ev->for_user, (unsigned long long)fe);
    else
        r = ev->u.operation_complete.rc;
    libxl_event_free(ctx, ev);
    return r;
}

static libxl_ctx *start(const char *name, xt_snap *snap)
{
    case_begin(name);
    xt_disasters = 0;
    xt_snap_take(snap);
    return xt_ctx(lg);
}

static void finish(libxl_ctx *ctx, const xt_snap *snap)
{
    libxl_ctx_free(ctx);
    xt_snap_check(snap);
    if (xt_disasters) case_fail("disaster hook called: %s", xt_disaster_msg);
    case_end();
}

static void case_devstate(const char *name, const char *change, int abort, int ms, int want)
{
    xt_snap snap;
    libxl_ctx *ctx = start(name, &snap);
    CHECK(xt_xs_put(xs, DS_PATH, "1") == 0);
    libxl_asyncop_how how = { .callback = NULL, .u.for_event = 0xd5 };
    double t0 = now_ms(), t;
    CHECK_RC(libxl_test_xen_devstate(ctx, DS_PATH, 4, ms, &how), 0);
    writer w;
    int wrote = 0;
    if (change) {
        /* first a state that is not the one waited for, then the change */
        CHECK(xt_xs_put(xs, DS_PATH, "2") == 0);
        writer_go(&w, 40, DS_PATH, strcmp(change, "rm") ? change : NULL);
        wrote = 1;
    }
    if (abort) {
        sleep_ms(40);
        t0 = now_ms();
        CHECK_RC(libxl_ao_abort(ctx, &how), 0);
    }
    int rc = wait_done(ctx, 0xd5, &t);
    if (wrote) writer_done(&w);
    CHECK_RC(rc, want);
    if (wrote) CHECK_PROMPT(w.t, t, "devstate callback after the xenstore change");
    else if (abort) CHECK_PROMPT(t0, t, "devstate completion after the abort");
    else {
        if (t - t0 < ms - 1) case_fail("timed out after %.1f ms, asked for %d", t - t0, ms);
        CHECK_PROMPT(t0 + ms, t, "devstate timeout");
    }
    xs_rm(xs, XBT_NULL, DS_PATH);
    finish(ctx, &snap);
}

static void case_deathcheck(const char *name, int abort)
{
    xt_snap snap;
    libxl_ctx *ctx = start(name, &snap);
    CHECK(xt_xs_put(xs, "/local/domain/7/name", "guest") == 0);
    libxl_asyncop_how how = { .callback = NULL, .u.for_event = 0xdc };
    CHECK_RC(libxl_test_xen_deathcheck(ctx, 7, &how), 0);
    double t;
    writer w;
    if (abort) {
        sleep_ms(40);
        double t0 = now_ms();
        CHECK_RC(libxl_ao_abort(ctx, &how), 0);
        CHECK_RC(wait_done(ctx, 0xdc, &t), ERROR_ABORTED);
        CHECK_PROMPT(t0, t, "deathcheck completion after the abort");
    } else {
        writer_go(&w, 40, "/local/domain/7", NULL);
        int rc = wait_done(ctx, 0xdc, &t);
        writer_done(&w);
        CHECK_RC(rc, ERROR_DOMAIN_DESTROYED);
        CHECK_PROMPT(w.t, t, "deathcheck callback after the domain's removal");
    }
    xs_rm(xs, XBT_NULL, "/local/domain/7");
    finish(ctx, &snap);
}

static void case_nested(void)
{
    xt_snap snap;
    libxl_ctx *ctx = start("nested_abort_reaches_the_whole_tree", &snap);
    libxl_asyncop_how how = { .callback = NULL, .u.for_event = 0x1e };
    CHECK_RC(libxl_test_xen_nested(ctx, &how), 0);
    libxl_event *ev = NULL;
    CHECK_RC(libxl_event_check(ctx, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL), ERROR_NOT_READY);
    CHECK_RC(libxl_ao_abort(ctx, &how), 0);
    double t;
    CHECK_RC(wait_done(ctx, 0x1e, &t), ERROR_ABORTED);
    int c[XTXC_N];
    libxl_test_xen_nested_counts(c);
    CHECK_RC(c[XTXC_ABORTING_BEFORE], 0);
    CHECK_RC(c[XTXC_ABORTABLE_RC], ERROR_ABORTED);
    CHECK_RC(c[XTXC_TIMEOUT_RC], ERROR_ABORTED);
    CHECK_RC(c[XTXC_ABORTING_AFTER], ERROR_ABORTED);
    CHECK_RC(libxl_ao_abort(ctx, &how), ERROR_NOTFOUND);
    finish(ctx, &snap);
}

/* The order the application saw things in: 'p' per progress report, 'c'
 * for the completion. */
static char seen[64];
static int nseen;

static void note(char what)
{
    if (nseen < (int)sizeof(seen) - 1) seen[nseen++] = what;
    seen[nseen] = 0;
}

static void progress_cb(libxl_ctx *ctx, libxl_event *ev, void *user)
{
    if (ev->type != LIBXL_EVENT_TYPE_DOMAIN_CREATE_CONSOLE_AVAILABLE || ev->domid != 7 ||
        user != (void *)seen)
        note('?');
    else
        note('p');
    libxl_event_free(ctx, ev);
}

static void done_cb(libxl_ctx *ctx, int rc, void *user)
{
    (void)ctx;
    note(rc == 0 && user == (void *)seen ? 'c' : '!');
}

static void case_progress(const char *name, int aop_mode, int sync)
{
    xt_snap snap;
    libxl_ctx *ctx = start(name, &snap);
    nseen = 0;
    seen[0] = 0;
    libxl_asyncprogress_how aop = { .callback = NULL, .for_event = 0x70, .for_callback = seen };
    if (aop_mode == 1) aop.callback = progress_cb;
    libxl_asyncop_how how = { .callback = done_cb, .u.for_callback = seen };
    CHECK_RC(libxl_test_xen_progress(ctx, 3, aop_mode ? &aop : NULL, sync ? NULL : &how), 0);
    if (sync) note('c');
    const char *want = aop_mode == 1 ? "pppc" : "c";
    if (strcmp(seen, want))
        case_fail("the application saw '%s', expected '%s' (p: a progress report, c: completion)",
                  seen, want);
    /* for_event progress: three events, in the queue */
    int events = 0;
    libxl_event *ev = NULL;
    while (libxl_event_check(ctx, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL) == 0) {
        if (ev->type == LIBXL_EVENT_TYPE_DOMAIN_CREATE_CONSOLE_AVAILABLE && ev->for_user == 0x70 &&
            ev->domid == 7)
            events++;
        else
            case_fail("unexpected event type %d for_user %#llx", (int)ev->type,
                      (unsigned long long)ev->for_user);
        libxl_event_free(ctx, ev);
    }
    CHECK_RC(events, aop_mode == 2 ? 3 : 0);
    finish(ctx, &snap);
}

int main(void)
{
    watchdog_thread(60);
    setvbuf(stdout, NULL, _IOLBF, 0);
    lg = xt_logger();
    xs = xt_xs_open();
    case_devstate("devstate_reaches_the_state", "4", 0, 3000, 0);
    case_devstate("devstate_times_out", NULL, 0, 150, ERROR_TIMEDOUT);
    case_devstate("devstate_node_removed", "rm", 0, 3000, ERROR_INVAL);
    case_devstate("devstate_aborted", NULL, 1, 3000, ERROR_ABORTED);
    case_deathcheck("deathcheck_domain_removed", 0);
    case_deathcheck("deathcheck_aborted", 1);
    case_nested();
    case_progress("progress_to_callbacks_before_completion", 1, 0);
    case_progress("progress_as_events", 2, 0);
    case_progress("progress_discarded", 0, 0);
    case_progress("progress_to_callbacks_of_a_synchronous_op", 1, 1);
    xs_close(xs);
    xtl_logger_destroy(lg);
    return xt_failures ? 1 : 0;
}
