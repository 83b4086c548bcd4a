/*
 * xtest.h - helpers shared by the Xen-side test programs in xen/tests/
 * (the conventions of the project's c-tests/harness.h, in our own copy).
 *
 * Each program runs named cases; each case prints exactly one line,
 * "PASS <name>" or "FAIL <name>: <reason>", and the program exits 1 if
 * any case failed.  A watchdog thread turns a hang into a FAIL line and
 * exit status 3.  Liveness is asserted as promptness: what a cause
 * (an external xenstore write, a child's exit, a timeout's deadline, an
 * abort) makes happen must happen within prompt_ms() of it: 100 ms, or
 * 600 ms if XL_TEST_SLOW is set.
 *
 * Also here: an application poll loop over libxl_osevent_beforepoll /
 * afterpoll with extra application fds (xt_loop_*), a minimal poll()-based
 * registry for libxl's osevent hooks (xt_hooks_*), the fd and child
 * checks every case ends with (xt_fd_count, xt_children), and xenstore
 * helpers for the disk-eject setup.
 */
#ifndef XEN_XTEST_H
#define XEN_XTEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libxl.h>
#include <libxl_event.h>
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-compare" /* in libxl_utils.h */
#include <libxl_utils.h>
#pragma GCC diagnostic pop
#include <xenstore.h>
#include <xentoollog.h>

#define XT_UNUSED __attribute__((unused))

/*---------- cases ----------*/

static int xt_failures;
static const char *xt_case = "(none)";
static char xt_reason[600];

static XT_UNUSED void case_begin(const char *name)
{
    xt_case = name;
    xt_reason[0] = 0;
    fprintf(stderr, "---- case %s\n", name);
}

static void case_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void case_fail(const char *fmt, ...)
{
    if (xt_reason[0])
        return; /* keep the first reason */
    va_list al;
    va_start(al, fmt);
    vsnprintf(xt_reason, sizeof(xt_reason), fmt, al);
    va_end(al);
    fprintf(stderr, "     failure: %s\n", xt_reason);
}

static XT_UNUSED int case_end(void)
{
    int failed = xt_reason[0] != 0;
    if (failed) {
        printf("FAIL %s: %s\n", xt_case, xt_reason);
        xt_failures++;
    } else {
        printf("PASS %s\n", xt_case);
    }
    fflush(stdout);
    return !failed;
}

#define CHECK(cond) do {                                                  \
        if (!(cond)) case_fail("%s:%d: CHECK(%s) failed", __FILE__,       \
                               __LINE__, #cond);                          \
    } while (0)

#define CHECK_RC(expr, want) do {                                         \
        long long got_ = (expr), want_ = (want);                          \
        if (got_ != want_)                                                \
            case_fail("%s:%d: %s = %lld (%s), expected %lld (%s)",        \
                      __FILE__, __LINE__, #expr, got_,                    \
                      xt_err((int)got_), want_, xt_err((int)want_));      \
    } while (0)

/* "ERROR_FOO" (from libxl's own name for the code) or the number. */
static XT_UNUSED const char *xt_err(int rc)
{
    static char buf[8][48];
    static int i;
    if (!rc) return "0";
    char *b = buf[i++ % 8];
    const char *s = libxl_error_to_string((libxl_error)rc);
    if (!s) {
        snprintf(b, sizeof(buf[0]), "%d", rc);
        return b;
    }
    snprintf(b, sizeof(buf[0]), "ERROR_%s", s);
    for (char *c = b; *c; c++)
        if (*c >= 'a' && *c <= 'z') *c -= 'a' - 'A';
    return b;
}

/*---------- time ----------*/

static XT_UNUSED double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static XT_UNUSED double prompt_ms(void)
{
    return getenv("XL_TEST_SLOW") ? 600.0 : 100.0;
}

/* Fails the case if more than prompt_ms() passed from cause (t_cause,
 * now_ms() clock) to effect (t_effect). */
#define CHECK_PROMPT(t_cause, t_effect, what) do {                        \
        double dt_ = (t_effect) - (t_cause);                              \
        fprintf(stderr, "     %s: %.2f ms after its cause\n", (what), dt_);\
        if (dt_ > prompt_ms())                                            \
            case_fail("%s:%d: %s came %.0f ms after its cause "           \
                      "(> %.0f ms: not prompt)", __FILE__, __LINE__,      \
                      (what), dt_, prompt_ms());                          \
    } while (0)

static XT_UNUSED void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) && errno == EINTR)
        ;
}

static XT_UNUSED struct timeval tv_now(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return tv;
}

/*---------- watchdog ----------*/

static void xt_watchdog_fire(void)
{
    static const char pre[] = "FAIL watchdog: test hung (in case ";
    static const char post[] = ")\n";
    if (write(1, pre, sizeof(pre) - 1) < 0 ||
        write(1, xt_case, strlen(xt_case)) < 0 ||
        write(1, post, sizeof(post) - 1) < 0) { /* nothing to do */ }
    _exit(3);
}

static void *xt_watchdog_main(void *arg)
{
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL); /* signals are the test's */
    sleep((unsigned)(uintptr_t)arg);
    xt_watchdog_fire();
    return NULL;
}

/* A crash (in libxl or the test) names the case it happened in. */
static void xt_crashed(int sig)
{
    static const char pre[] = "FAIL ";
    static const char mid[] = ": crashed with signal ";
    char num[4] = { (char)('0' + sig / 10 % 10), (char)('0' + sig % 10), '\n', 0 };
    if (write(1, pre, sizeof(pre) - 1) < 0 ||
        write(1, xt_case, strlen(xt_case)) < 0 ||
        write(1, mid, sizeof(mid) - 1) < 0 ||
        write(1, num, 3) < 0 ||
        (xt_reason[0] && (write(2, xt_reason, strlen(xt_reason)) < 0 ||
                          write(2, "\n", 1) < 0))) { /* nothing to do */ }
    signal(sig, SIG_DFL);
    raise(sig);
}

/* A watchdog thread (SIGALRM stays free for the tests): prints a FAIL
 * line and exits 3 after `seconds`.  Also installs the crash reporter. */
static XT_UNUSED void watchdog_thread(unsigned seconds)
{
    static const int sigs[] = { SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL };
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        signal(sigs[i], xt_crashed);
    pthread_t t;
    if (pthread_create(&t, NULL, xt_watchdog_main, (void *)(uintptr_t)seconds)) {
        perror("pthread_create");
        exit(1);
    }
    pthread_detach(t);
}

/* Ends the program when an operation cannot be brought to completion
 * (libxl_ctx_free must not be called with it in progress). */
static XT_UNUSED void xt_give_up(const char *why)
{
    case_fail("%s: giving up (the ctx cannot be freed)", why);
    case_end();
    fflush(stdout);
    _exit(1);
}

/*---------- logging, ctx, disaster hook ----------*/

static XT_UNUSED xentoollog_logger *xt_logger(void)
{
    const char *e = getenv("XL_TEST_LOGLEVEL");
    int lvl = e ? atoi(e) : (getenv("XL_TEST_VERBOSE") ? XTL_DEBUG : XTL_INFO);
    return (xentoollog_logger *)xtl_createlogger_stdiostream(stderr, lvl, 0);
}

/* Disaster reports (libxl_event_hooks.disaster). */
static int xt_disasters;
static char xt_disaster_msg[300];

static void xt_disaster(void *user, libxl_event_type type, const char *msg,
                        int errnoval)
{
    (void)user;
    xt_disasters++;
    snprintf(xt_disaster_msg, sizeof(xt_disaster_msg), "type %d: %s (errno %d)",
             (int)type, msg, errnoval);
    fprintf(stderr, "     disaster hook: %s\n", xt_disaster_msg);
}

static const libxl_event_hooks xt_disaster_hooks = {
    .event_occurs_mask = 0,
    .event_occurs = NULL,
    .disaster = xt_disaster,
};

/* Events delivered through libxl_event_hooks.event_occurs (xt_cb_hooks):
 * the last one kept in xt_cb_event (the one before freed), counted in
 * xt_cb_events, its arrival time (now_ms) in xt_cb_t. */
static XT_UNUSED libxl_event *xt_cb_event;
static XT_UNUSED int xt_cb_events;
static XT_UNUSED double xt_cb_t;

static XT_UNUSED void xt_cb_event_occurs(void *user, libxl_event *ev)
{
    (void)user;
    xt_cb_events++;
    xt_cb_t = now_ms();
    if (xt_cb_event) libxl_event_free(NULL, xt_cb_event);
    xt_cb_event = ev;
}

static XT_UNUSED const libxl_event_hooks xt_cb_hooks = {
    .event_occurs_mask = LIBXL_EVENTMASK_ALL,
    .event_occurs = xt_cb_event_occurs,
    .disaster = xt_disaster,
};

/* Completions of operations whose ao_how names xt_op_done: counted in
 * xt_done, the last rc in xt_done_rc, its time (now_ms) in xt_done_t. */
static XT_UNUSED int xt_done;
static XT_UNUSED int xt_done_rc;
static XT_UNUSED double xt_done_t;

static XT_UNUSED void xt_op_done(libxl_ctx *ctx, int rc, void *for_callback)
{
    (void)ctx; (void)for_callback;
    xt_done++;
    xt_done_rc = rc;
    xt_done_t = now_ms();
}

/* A ctx with the disaster hook registered (all events still go to the
 * queue, event_occurs is NULL).  NULL (and a failed case) on error. */
static XT_UNUSED libxl_ctx *xt_ctx(xentoollog_logger *lg)
{
    libxl_ctx *ctx = NULL;
    int rc = libxl_ctx_alloc(&ctx, LIBXL_VERSION, 0, lg);
    if (rc || !ctx) {
        case_fail("libxl_ctx_alloc = %d", rc);
        return NULL;
    }
    libxl_event_register_callbacks(ctx, &xt_disaster_hooks, NULL);
    return ctx;
}

/*---------- fd and child checks ----------*/

/* The number of open fds of this process. */
static XT_UNUSED int xt_fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the DIR's own fd */
}

static XT_UNUSED void xt_fd_list(char *buf, size_t len)
{
    buf[0] = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d) return;
    struct dirent *e;
    size_t off = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[300], t[128];
        snprintf(p, sizeof(p), "/proc/self/fd/%s", e->d_name);
        ssize_t r = readlink(p, t, sizeof(t) - 1);
        t[r > 0 ? r : 0] = 0;
        off += snprintf(buf + off, off < len ? len - off : 0, "%s%s=%s",
                        off ? " " : "", e->d_name, t);
        if (off >= len) break;
    }
    closedir(d);
}

/* Children of this process: counts all of them and the zombies among
 * them (scans /proc for ppid == getpid(); nothing is reaped). */
static XT_UNUSED void xt_children(int *all, int *zombies)
{
    *all = *zombies = 0;
    DIR *d = opendir("/proc");
    if (!d) return;
    pid_t me = getpid();
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        char p[300], buf[512];
        snprintf(p, sizeof(p), "/proc/%s/stat", e->d_name);
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        ssize_t r = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (r <= 0) continue;
        buf[r] = 0;
        char *rp = strrchr(buf, ')'); /* "pid (comm) S ppid ..." */
        char st;
        int ppid;
        if (!rp || sscanf(rp + 1, " %c %d", &st, &ppid) != 2) continue;
        if (ppid != me) continue;
        (*all)++;
        if (st == 'Z') (*zombies)++;
    }
    closedir(d);
}

/* Whether process pid exists at all (as a zombie too). */
static XT_UNUSED int xt_pid_exists(pid_t pid)
{
    char p[64];
    snprintf(p, sizeof(p), "/proc/%ld", (long)pid);
    return access(p, F_OK) == 0;
}

/* Snapshot taken before a case's ctx is allocated, compared after it
 * has been freed: same fd count, no child, no zombie. */
typedef struct { int fds; char list[1024]; } xt_snap;

static XT_UNUSED void xt_snap_take(xt_snap *s)
{
    s->fds = xt_fd_count();
    xt_fd_list(s->list, sizeof(s->list));
}

static XT_UNUSED void xt_snap_check(const xt_snap *s)
{
    int fds = xt_fd_count();
    if (fds != s->fds) {
        char now[1024];
        xt_fd_list(now, sizeof(now));
        case_fail("%d fds open after libxl_ctx_free, %d before (before: %s; "
                  "after: %s)", fds, s->fds, s->list, now);
    }
    int all, zombies;
    xt_children(&all, &zombies);
    if (all || zombies)
        case_fail("%d child process(es) left, %d of them zombie(s)", all, zombies);
}

/*---------- xenstore (the test's own connection: an "external" writer) ----------*/

static XT_UNUSED struct xs_handle *xt_xs_open(void)
{
    struct xs_handle *xs = xs_open(0);
    if (!xs)
        printf("FAIL setup: xs_open: %s (is XENSTORED_PATH set? run under "
               "run-nohv)\n", strerror(errno));
    return xs;
}

static XT_UNUSED int xt_xs_put(struct xs_handle *xs, const char *path, const char *val)
{
    return xs_write(xs, XBT_NULL, path, val, strlen(val)) ? 0 : -1;
}

/* The node's value (malloc'd), or NULL if absent. */
static XT_UNUSED char *xt_xs_get(struct xs_handle *xs, const char *path)
{
    unsigned len = 0;
    return xs_read(xs, XBT_NULL, path, &len);
}

/* xvdX's device number for index i (0 = xvda). */
static XT_UNUSED int xt_xvd_devid(int i) { return (202 << 8) | (i << 4); }

/* Makes /local/domain/DOMID/device/vbd/DEVID look like an emulated
 * CD-ROM of a qdisk backend in dom0, with an empty eject node (what
 * libxl_evenable_disk_eject reads and watches). */
static XT_UNUSED int xt_setup_disk(struct xs_handle *xs, int domid, const char *vdev,
                                   int devid)
{
    char fe[128], be[128], p[192];
    snprintf(fe, sizeof(fe), "/local/domain/%d/device/vbd/%d", domid, devid);
    snprintf(be, sizeof(be), "/local/domain/0/backend/qdisk/%d/%d", domid, devid);
    int r = 0;
    snprintf(p, sizeof(p), "%s/dev", fe);      r |= xt_xs_put(xs, p, vdev);
    snprintf(p, sizeof(p), "%s/backend", fe);  r |= xt_xs_put(xs, p, be);
    snprintf(p, sizeof(p), "%s/eject", fe);    r |= xt_xs_put(xs, p, "");
    snprintf(p, sizeof(p), "%s/frontend", be); r |= xt_xs_put(xs, p, fe);
    return r;
}

static XT_UNUSED void xt_eject_path(char *buf, size_t len, int domid, int devid)
{
    snprintf(buf, len, "/local/domain/%d/device/vbd/%d/eject", domid, devid);
}

/* Checks a DISK_EJECT event against what the test set up. */
static XT_UNUSED void xt_check_eject_event(const libxl_event *ev, int domid,
                                           const char *vdev, libxl_ev_user user)
{
    if (ev->type != LIBXL_EVENT_TYPE_DISK_EJECT) {
        case_fail("event type %d (%s), expected DISK_EJECT", (int)ev->type,
                  libxl_event_type_to_string(ev->type));
        return;
    }
    if (ev->for_user != user)
        case_fail("for_user = %#llx, expected %#llx",
                  (unsigned long long)ev->for_user, (unsigned long long)user);
    if ((int)ev->domid != domid)
        case_fail("event domid %d, expected %d", (int)ev->domid, domid);
    const libxl_device_disk *d = &ev->u.disk_eject.disk;
    if (!d->vdev || strcmp(d->vdev, vdev))
        case_fail("event vdev '%s', expected '%s'", d->vdev ? d->vdev : "(null)", vdev);
    CHECK(d->backend == LIBXL_DISK_BACKEND_QDISK);
    CHECK(d->backend_domid == 0);
    CHECK(d->is_cdrom == 1);
}

/*---------- an application poll loop (libxl_osevent_beforepoll/afterpoll) ----------*/

#define XT_MAXFDS 256

/* An extra application fd polled alongside libxl's: cb(arg) when it is
 * readable. */
typedef struct {
    int fd;
    void (*cb)(void *arg);
    void *arg;
} xt_appfd;

/* One turn: poll libxl's fds (and the app's) for at most max_ms; then
 * afterpoll.  Returns 0, or a libxl error from beforepoll. */
static XT_UNUSED int xt_loop_once(libxl_ctx *ctx, int max_ms, xt_appfd *app, int napp)
{
    struct pollfd fds[XT_MAXFDS];
    int nfds = XT_MAXFDS - napp, timeout = max_ms;
    int rc = libxl_osevent_beforepoll(ctx, &nfds, fds, &timeout, tv_now());
    if (rc) return rc;
    if (timeout < 0 || timeout > max_ms) timeout = max_ms;
    for (int i = 0; i < napp; i++)
        fds[nfds + i] = (struct pollfd){ .fd = app[i].fd, .events = POLLIN };
    int r = poll(fds, nfds + napp, timeout);
    if (r < 0 && errno != EINTR) return ERROR_FAIL;
    if (r < 0)
        for (int i = 0; i < nfds + napp; i++) fds[i].revents = 0;
    for (int i = 0; i < napp; i++)
        if (fds[nfds + i].revents)
            app[i].cb(app[i].arg);
    libxl_osevent_afterpoll(ctx, nfds, fds, tv_now());
    return 0;
}

/* Runs the loop until *flag >= target or timeout_ms passed.
 * Returns 1 if reached, 0 on timeout, a libxl error if the loop failed. */
static XT_UNUSED int xt_loop_until(libxl_ctx *ctx, volatile int *flag, int target,
                                   int timeout_ms, xt_appfd *app, int napp)
{
    double end = now_ms() + timeout_ms;
    while (*flag < target) {
        double left = end - now_ms();
        if (left <= 0) return 0;
        int rc = xt_loop_once(ctx, (int)left + 1, app, napp);
        if (rc) return rc;
    }
    return 1;
}

/* Runs the loop for ms milliseconds. */
static XT_UNUSED void xt_loop_for(libxl_ctx *ctx, int ms, xt_appfd *app, int napp)
{
    static int never;
    xt_loop_until(ctx, &never, 1, ms, app, napp);
}

/*---------- a minimal registry for libxl's osevent hooks ----------*/
/*
 * Single-threaded: the hooks are only ever called from inside libxl
 * calls this thread makes.  for_app_registration is the slot's address.
 * A timeout slot is freed once it has been reported (libxl never
 * deregisters a timeout; timeout_modify only ever asks for "now").
 */
#define XT_HMAX 64
typedef struct {
    int used;
    int fd;
    short events;
    struct timeval abs;
    void *for_libxl;
} xt_hreg;

typedef struct {
    xt_hreg fds[XT_HMAX], timeouts[XT_HMAX];
    int n_fd_register, n_fd_deregister, n_timeout_register, n_bad;
} xt_hooks;

static xt_hreg *xt_hslot(xt_hreg *a)
{
    for (int i = 0; i < XT_HMAX; i++)
        if (!a[i].used) return &a[i];
    return NULL;
}

static int xt_h_fd_register(void *user, int fd, void **for_app, short events,
                            void *for_libxl)
{
    xt_hooks *H = user;
    xt_hreg *r = xt_hslot(H->fds);
    if (!r) return ERROR_OSEVENT_REG_FAIL;
    *r = (xt_hreg){ .used = 1, .fd = fd, .events = events, .for_libxl = for_libxl };
    *for_app = r;
    H->n_fd_register++;
    return 0;
}

static int xt_h_fd_modify(void *user, int fd, void **for_app, short events)
{
    xt_hooks *H = user;
    xt_hreg *r = *for_app;
    if (!r || !r->used || r->fd != fd) { H->n_bad++; return ERROR_OSEVENT_REG_FAIL; }
    r->events = events;
    return 0;
}

static void xt_h_fd_deregister(void *user, int fd, void *for_app)
{
    xt_hooks *H = user;
    xt_hreg *r = for_app;
    if (!r || !r->used || r->fd != fd) { H->n_bad++; return; }
    r->used = 0;
    H->n_fd_deregister++;
}

static int xt_h_timeout_register(void *user, void **for_app, struct timeval abs,
                                 void *for_libxl)
{
    xt_hooks *H = user;
    xt_hreg *r = xt_hslot(H->timeouts);
    if (!r) return ERROR_OSEVENT_REG_FAIL;
    *r = (xt_hreg){ .used = 1, .fd = -1, .abs = abs, .for_libxl = for_libxl };
    *for_app = r;
    H->n_timeout_register++;
    return 0;
}

static int xt_h_timeout_modify(void *user, void **for_app, struct timeval abs)
{
    xt_hooks *H = user;
    xt_hreg *r = *for_app;
    if (!r || !r->used) { H->n_bad++; return 0; }
    r->abs = abs;
    return 0;
}

static void xt_h_timeout_deregister(void *user, void *for_app)
{
    (void)user; (void)for_app; /* libxl never calls it */
}

static XT_UNUSED const libxl_osevent_hooks xt_osevent_hooks = {
    .fd_register = xt_h_fd_register,
    .fd_modify = xt_h_fd_modify,
    .fd_deregister = xt_h_fd_deregister,
    .timeout_register = xt_h_timeout_register,
    .timeout_modify = xt_h_timeout_modify,
    .timeout_deregister = xt_h_timeout_deregister,
};

static XT_UNUSED int xt_hooks_nfds(const xt_hooks *H)
{
    int n = 0;
    for (int i = 0; i < XT_HMAX; i++) n += H->fds[i].used;
    return n;
}

/* One turn of the hook-driven loop: poll what is registered (at most
 * max_ms), report ready fds and due timeouts. */
static XT_UNUSED void xt_hooks_run_once(libxl_ctx *ctx, xt_hooks *H, int max_ms)
{
    struct pollfd pfd[XT_HMAX];
    void *for_libxl[XT_HMAX];
    int n = 0, timeout = max_ms;
    for (int i = 0; i < XT_HMAX; i++) {
        xt_hreg *r = &H->fds[i];
        if (!r->used || !r->events) continue;
        pfd[n] = (struct pollfd){ .fd = r->fd, .events = r->events };
        for_libxl[n++] = r->for_libxl;
    }
    struct timeval now = tv_now();
    for (int i = 0; i < XT_HMAX; i++) {
        xt_hreg *t = &H->timeouts[i];
        if (!t->used) continue;
        long long us = (t->abs.tv_sec - now.tv_sec) * 1000000LL +
                       (t->abs.tv_usec - now.tv_usec);
        int ms = us <= 0 ? 0 : (int)((us + 999) / 1000);
        if (timeout < 0 || ms < timeout) timeout = ms;
    }
    if (poll(pfd, n, timeout) < 0) return;
    for (int i = 0; i < n; i++)
        if (pfd[i].revents)
            libxl_osevent_occurred_fd(ctx, for_libxl[i], pfd[i].fd,
                                      pfd[i].events, pfd[i].revents);
    now = tv_now();
    for (int i = 0; i < XT_HMAX; i++) {
        xt_hreg *t = &H->timeouts[i];
        if (!t->used || timercmp(&t->abs, &now, >)) continue;
        void *fl = t->for_libxl;
        t->used = 0;
        libxl_osevent_occurred_timeout(ctx, fl);
    }
}

#endif /* XEN_XTEST_H */
