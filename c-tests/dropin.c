/*
 * dropin.c - proves that a program built against Debian's Xen 4.17
 * headers and libraries runs unchanged on our libxenlight.so.4.17.
 *
 * Build (system headers and libraries only, never -I. -Iinclude):
 *   gcc c-tests/dropin.c -o BUILDDIR/dropin -lxenlight -lxentoollog -ldl
 * Run via c-tests/dropin.sh, or:
 *   DROPIN_EXPECT_DIR=LIBDIR LD_LIBRARY_PATH=LIBDIR BUILDDIR/dropin
 * Prints "PASS dropin" (exit 0) or "FAIL dropin: reason" (exit 1).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <libxl.h>
#include <libxl_event.h>
#include <xentoollog.h>

/* Not shipped by Debian; prototype of our (and Xen's) test operation. */
typedef int test_fdevent_fn(libxl_ctx *ctx, int fd, short events,
                            libxl_asyncop_how *ao_how);

#define TIMEOUT_S 20

static xentoollog_logger_stdiostream *logger;
static libxl_ctx *ctx;
static int pipefd[2] = { -1, -1 };

static void cleanup(void)
{
    if (pipefd[0] >= 0) close(pipefd[0]);
    if (pipefd[1] >= 0) close(pipefd[1]);
    /* ctx is deliberately leaked on failure: freeing a ctx with a
     * possibly outstanding operation is not allowed. */
    if (logger) xtl_logger_destroy((xentoollog_logger *)logger);
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
    va_list al;

    fputs("FAIL dropin: ", stdout);
    va_start(al, fmt);
    vprintf(fmt, al);
    va_end(al);
    fputc('\n', stdout);
    fflush(stdout);
    cleanup();
    return 1;
}

static void on_alarm(int sig)
{
    static const char msg[] = "FAIL dropin: timed out (hang)\n";
    (void)sig;
    if (write(1, msg, sizeof(msg) - 1) < 0) { /* nothing to do */ }
    _exit(1);
}

/* Is the canonical form of path inside the canonical directory dir? */
static int path_is_under(const char *path, const char *dir)
{
    char rp[PATH_MAX], rd[PATH_MAX];
    size_t n;

    if (!realpath(path, rp) || !realpath(dir, rd))
        return 0;
    n = strlen(rd);
    while (n > 1 && rd[n - 1] == '/')
        rd[--n] = '\0';
    return strncmp(rp, rd, n) == 0 && (rp[n] == '/' || n == 1);
}

int main(void)
{
    const char *expect_dir = getenv("DROPIN_EXPECT_DIR");
    void *sym;
    Dl_info info;
    test_fdevent_fn *test_fdevent;
    libxl_event *ev = NULL;
    libxl_asyncop_how how;
    struct pollfd *fds;
    struct timeval now;
    int rc, nfds, timeout;
    char byte = 'x';

    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGALRM, on_alarm);
    alarm(TIMEOUT_S);

    /* 1. The libxl we are running on must be the one under test. */
    if (!expect_dir || !*expect_dir)
        return fail("DROPIN_EXPECT_DIR is not set");
    sym = dlsym(RTLD_DEFAULT, "libxl_ctx_alloc");
    if (!sym)
        return fail("libxl_ctx_alloc not found: %s", dlerror());
    if (!dladdr(sym, &info) || !info.dli_fname)
        return fail("dladdr could not locate libxl_ctx_alloc");
    if (!path_is_under(info.dli_fname, expect_dir))
        return fail("libxl_ctx_alloc comes from %s, not from under %s",
                    info.dli_fname, expect_dir);

    /* 2. Context creation with a Debian-built stdio logger. */
    logger = xtl_createlogger_stdiostream(stderr, XTL_DETAIL, 0);
    if (!logger)
        return fail("xtl_createlogger_stdiostream failed");
    rc = libxl_ctx_alloc(&ctx, LIBXL_VERSION, 0, (xentoollog_logger *)logger);
    if (rc != 0) {
        ctx = NULL;
        return fail("libxl_ctx_alloc returned %d", rc);
    }

    /* 3. Nothing can be pending yet. */
    rc = libxl_event_check(ctx, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL);
    if (rc != ERROR_NOT_READY)
        return fail("libxl_event_check on idle ctx returned %d, "
                    "expected ERROR_NOT_READY (%d)", rc, ERROR_NOT_READY);

    /* 4. beforepoll sizing protocol. */
    gettimeofday(&now, NULL);
    nfds = 0;
    timeout = -1;
    rc = libxl_osevent_beforepoll(ctx, &nfds, NULL, &timeout, now);
    if (rc != 0 && rc != ERROR_BUFFERFULL)
        return fail("libxl_osevent_beforepoll(nfds=0) returned %d", rc);
    if (nfds < 1)
        return fail("libxl_osevent_beforepoll wants %d fds, expected >= 1",
                    nfds);
    fds = calloc((size_t)nfds, sizeof(*fds));
    if (!fds)
        return fail("out of memory");
    timeout = -1;
    rc = libxl_osevent_beforepoll(ctx, &nfds, fds, &timeout, now);
    free(fds);
    if (rc != 0)
        return fail("libxl_osevent_beforepoll with enough space returned %d",
                    rc);

    /* 5. The test operation must be exported. */
    test_fdevent = (test_fdevent_fn *)dlsym(RTLD_DEFAULT, "libxl_test_fdevent");
    if (!test_fdevent)
        return fail("libxl_test_fdevent is not exported");

    if (pipe(pipefd))
        return fail("pipe: %s", strerror(errno));
    if (write(pipefd[1], &byte, 1) != 1)
        return fail("write to pipe: %s", strerror(errno));

    /* 6. Synchronous run on a readable fd. */
    rc = test_fdevent(ctx, pipefd[0], POLLIN, NULL);
    if (rc != 0)
        return fail("synchronous libxl_test_fdevent returned %d", rc);

    /* 7. Asynchronous run completing as an OPERATION_COMPLETE event. */
    memset(&how, 0, sizeof(how));
    how.callback = NULL;
    how.u.for_event = 42;
    rc = test_fdevent(ctx, pipefd[0], POLLIN, &how);
    if (rc != 0)
        return fail("asynchronous libxl_test_fdevent returned %d", rc);
    rc = libxl_event_wait(ctx, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL);
    if (rc != 0)
        return fail("libxl_event_wait returned %d", rc);
    if (!ev)
        return fail("libxl_event_wait returned 0 but no event");
    if (ev->type != LIBXL_EVENT_TYPE_OPERATION_COMPLETE ||
        ev->for_user != 42 || ev->u.operation_complete.rc != 0) {
        rc = fail("unexpected event: type %d for_user %llu rc %d",
                  (int)ev->type, (unsigned long long)ev->for_user,
                  ev->u.operation_complete.rc);
        libxl_event_free(ctx, ev);
        return rc;
    }
    libxl_event_free(ctx, ev);
    ev = NULL;

    /* 8. Aborting an operation that does not exist. */
    memset(&how, 0, sizeof(how));
    how.u.for_event = 0xdeadbeef;
    rc = libxl_ao_abort(ctx, &how);
    if (rc != ERROR_NOTFOUND)
        return fail("libxl_ao_abort of unknown how returned %d, "
                    "expected ERROR_NOTFOUND (%d)", rc, ERROR_NOTFOUND);

    /* 9. Child-process entry points (linked directly: the loader needs
     * them from our library, under VERS_4.17.0). */
    {
        static const libxl_childproc_hooks mainloop = {
            .chldowner = libxl_sigchld_owner_mainloop,
        };
        libxl_childproc_setmode(ctx, &mainloop, NULL);
        rc = libxl_childproc_reaped(ctx, getpid(), 0);
        if (rc != ERROR_UNKNOWN_CHILD)
            return fail("libxl_childproc_reaped of a foreign pid returned %d, "
                        "expected ERROR_UNKNOWN_CHILD (%d)", rc, ERROR_UNKNOWN_CHILD);
        libxl_childproc_sigchld_occurred(ctx);
        libxl_childproc_setmode(ctx, NULL, NULL);
    }

    /* 10. Teardown. */
    rc = libxl_ctx_free(ctx);
    ctx = NULL;
    if (rc != 0)
        return fail("libxl_ctx_free returned %d", rc);

    cleanup();
    alarm(0);
    printf("PASS dropin\n");
    return 0;
}
