/*
 * test_disk_eject.c: libxl's public xenstore-watch path, end to end, against
 * Xen's own libxl (stock or with our event core) and the fake xenstored.
 * Run it under run-nohv: build/xen/run-nohv build/xen/tests/test_disk_eject
 * (or the same in build/xen-stock).
 *
 * libxl_evenable_disk_eject(ctx, 1, "hdc") watches
 * /local/domain/1/device/vbd/5632/eject (5632 = hdc's device number); when
 * that node reads "eject", libxl acknowledges by writing "" there and queues a
 * LIBXL_EVENT_TYPE_DISK_EJECT for the user.  The test writes "eject" over its
 * own xenstore connection (an "external" writer) and checks that
 * libxl_event_wait returns the event, with for_user intact, within 100 ms
 * (600 ms with XL_TEST_SLOW=1, as in the suite: under valgrind or a
 * sanitizer the first event alone can take 110 ms).
 *
 * Each case prints "PASS <name>" or "FAIL <name>: <reason>"; the program
 * exits 1 if any failed.  XL_TEST_VERBOSE=1 logs libxl at debug level.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <libxl.h>
#include <libxl_event.h>
#include <xenstore.h>
#include <xentoollog.h>

#define DOMID      1
#define VDEV       "hdc"
#define FE         "/local/domain/1/device/vbd/5632"
#define BE         "/local/domain/0/backend/qdisk/1/5632"
#define USER_TAG   ((libxl_ev_user)0x5eed0123456789abULL)
#define LATENCY_MS (getenv("XL_TEST_SLOW") ? 600.0 : 100.0)

static int failures;
static const char *cur;
static char reason[512];

static void begin(const char *name) { cur = name; reason[0] = 0; }
static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
    if (reason[0]) return;
    va_list al;
    va_start(al, fmt);
    vsnprintf(reason, sizeof(reason), fmt, al);
    va_end(al);
}
static void end(void)
{
    if (reason[0]) { printf("FAIL %s: %s\n", cur, reason); failures++; }
    else printf("PASS %s\n", cur);
    fflush(stdout);
}
#define CHECK(c) do { if (!(c)) fail("%s:%d: CHECK(%s) failed", \
                                     __FILE__, __LINE__, #c); } while (0)

static void watchdog(int sig)
{
    (void)sig;
    static const char msg[] = "FAIL watchdog: test hung (alarm fired)\n";
    if (write(1, msg, sizeof(msg) - 1) < 0) { /* nothing */ }
    _exit(3);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int xs_put(struct xs_handle *xs, const char *path, const char *val)
{
    return xs_write(xs, XBT_NULL, path, val, strlen(val)) ? 0 : -1;
}

/* Write "eject" externally, then wait for libxl's event; checks it. */
static void eject_round(libxl_ctx *ctx, struct xs_handle *xs)
{
    libxl_event *ev = NULL;
    CHECK(xs_put(xs, FE "/eject", "eject") == 0);
    double t0 = now_ms();
    int rc = libxl_event_wait(ctx, &ev, LIBXL_EVENTMASK_ALL, 0, 0);
    double dt = now_ms() - t0;
    if (rc) { fail("libxl_event_wait = %d", rc); return; }
    CHECK(ev != NULL);
    if (!ev) return;
    if (ev->type != LIBXL_EVENT_TYPE_DISK_EJECT)
        fail("event type %d (%s), expected DISK_EJECT", ev->type,
             libxl_event_type_to_string(ev->type));
    if (ev->for_user != USER_TAG)
        fail("for_user = %#llx, expected %#llx",
             (unsigned long long)ev->for_user, (unsigned long long)USER_TAG);
    CHECK(ev->domid == DOMID);
    if (ev->type == LIBXL_EVENT_TYPE_DISK_EJECT) {
        libxl_device_disk *d = &ev->u.disk_eject.disk;
        CHECK(d->vdev && !strcmp(d->vdev, VDEV));
        CHECK(d->backend == LIBXL_DISK_BACKEND_QDISK);
        CHECK(d->backend_domid == 0);
        CHECK(d->is_cdrom == 1);
    }
    if (dt > LATENCY_MS)
        fail("event arrived %.1f ms after the write (limit %.0f ms)",
             dt, LATENCY_MS);
    fprintf(stderr, "test_disk_eject: event %.2f ms after the write\n", dt);
    libxl_event_free(ctx, ev);

    /* libxl acknowledged by writing "" to the eject node. */
    unsigned len = 0;
    char *v = xs_read(xs, XBT_NULL, FE "/eject", &len);
    CHECK(v && len == 0);
    free(v);
}

int main(void)
{
    signal(SIGALRM, watchdog);
    alarm(20);
    setvbuf(stdout, NULL, _IOLBF, 0);

    xentoollog_logger_stdiostream *lg = xtl_createlogger_stdiostream(
        stderr, getenv("XL_TEST_VERBOSE") ? XTL_DEBUG : XTL_WARN, 0);
    libxl_ctx *ctx = NULL;
    libxl_evgen_disk_eject *evg = NULL;
    struct xs_handle *xs = NULL;

    begin("setup_xenstore");
    xs = xs_open(0);
    if (!xs) {
        fail("xs_open: %s (is XENSTORED_PATH set? run under run-nohv)",
             strerror(errno));
    } else {
        CHECK(xs_put(xs, FE "/dev", VDEV) == 0);
        CHECK(xs_put(xs, FE "/backend", BE) == 0);
        CHECK(xs_put(xs, FE "/eject", "") == 0);
        CHECK(xs_put(xs, BE "/frontend", FE) == 0);
    }
    end();
    if (!xs) return 1;

    begin("ctx_alloc");
    int rc = libxl_ctx_alloc(&ctx, LIBXL_VERSION, 0, (xentoollog_logger *)lg);
    if (rc) fail("libxl_ctx_alloc = %d", rc);
    end();
    if (rc) return 1;

    begin("evenable_disk_eject");
    rc = libxl_evenable_disk_eject(ctx, DOMID, VDEV, USER_TAG, &evg);
    if (rc) fail("libxl_evenable_disk_eject = %d", rc);
    CHECK(evg != NULL);
    end();
    if (rc) return 1;

    begin("eject_event_promptly");
    eject_round(ctx, xs);
    end();

    begin("eject_event_again");
    eject_round(ctx, xs);
    end();

    begin("no_event_after_evdisable");
    libxl_evdisable_disk_eject(ctx, evg);
    evg = NULL;
    CHECK(xs_put(xs, FE "/eject", "eject") == 0);
    {
        /* Let libxl process whatever arrives for 200 ms (through the
         * application's own poll loop), then expect no event. */
        double t_end = now_ms() + 200;
        struct pollfd fds[16];
        for (;;) {
            double left = t_end - now_ms();
            if (left <= 0) break;
            int nfds = 16, timeout = (int)left + 1;
            struct timeval tv;
            gettimeofday(&tv, 0);
            rc = libxl_osevent_beforepoll(ctx, &nfds, fds, &timeout, tv);
            if (rc) { fail("libxl_osevent_beforepoll = %d", rc); break; }
            if (timeout < 0 || timeout > (int)left + 1) timeout = (int)left + 1;
            poll(fds, nfds, timeout);
            gettimeofday(&tv, 0);
            libxl_osevent_afterpoll(ctx, nfds, fds, tv);
        }
        libxl_event *ev = NULL;
        rc = libxl_event_check(ctx, &ev, LIBXL_EVENTMASK_ALL, 0, 0);
        if (rc != ERROR_NOT_READY)
            fail("libxl_event_check = %d (event type %d), expected "
                 "ERROR_NOT_READY", rc, ev ? (int)ev->type : -1);
        if (ev) libxl_event_free(ctx, ev);
        /* Nobody acknowledged it this time. */
        unsigned len = 0;
        char *v = xs_read(xs, XBT_NULL, FE "/eject", &len);
        CHECK(v && !strcmp(v, "eject"));
        free(v);
    }
    end();

    begin("ctx_free");
    libxl_ctx_free(ctx);
    xs_close(xs);
    xtl_logger_destroy((xentoollog_logger *)lg);
    end();

    return failures ? 1 : 0;
}
