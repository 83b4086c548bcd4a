/*
 * harness.h - shared helpers for the C tests in c-tests/.
 *
 * Each test program runs named cases; each case prints exactly one line,
 * "PASS <name>" or "FAIL <name>: <reason>", and the program exits 1 if any
 * case failed. A watchdog (alarm) turns a hang into a FAIL line and exit,
 * so a broken event loop fails fast instead of blocking CI.
 */
#ifndef XL_TEST_HARNESS_H
#define XL_TEST_HARNESS_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
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
#include <xentoollog.h>

static int h_failures;
static const char *h_case = "(none)";
static char h_reason[512];

/* Starts a case; the case fails if any CHECK fails before case_end(). */
static void case_begin(const char *name)
{
    h_case = name;
    h_reason[0] = 0;
}

static void case_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void case_fail(const char *fmt, ...)
{
    if (h_reason[0])
        return; /* keep the first reason */
    va_list al;
    va_start(al, fmt);
    vsnprintf(h_reason, sizeof(h_reason), fmt, al);
    va_end(al);
}

static void case_end(void)
{
    if (h_reason[0]) {
        printf("FAIL %s: %s\n", h_case, h_reason);
        h_failures++;
    } else {
        printf("PASS %s\n", h_case);
    }
    fflush(stdout);
}

#define CHECK(cond) do {                                                  \
        if (!(cond)) case_fail("%s:%d: CHECK(%s) failed", __FILE__,       \
                               __LINE__, #cond);                          \
    } while (0)

#define CHECK_RC(expr, want) do {                                         \
        long long got_ = (expr), want_ = (want);                          \
        if (got_ != want_)                                                \
            case_fail("%s:%d: %s = %lld, expected %lld", __FILE__,        \
                      __LINE__, #expr, got_, want_);                      \
    } while (0)

static void h_watchdog_fired(int sig)
{
    (void)sig;
    static const char msg[] = "FAIL watchdog: test hung (alarm fired)\n";
    if (write(1, msg, sizeof(msg) - 1) < 0) { /* nothing to do */ }
    _exit(3);
}

/* Arms a watchdog of `seconds` for the whole program (or the next step). */
static __attribute__((unused)) void watchdog(unsigned seconds)
{
    signal(SIGALRM, h_watchdog_fired);
    alarm(seconds);
}

static int h_finish(void)
{
    return h_failures ? 1 : 0;
}

/* A logger: stderr at the level in $XL_TEST_LOGLEVEL (default WARN). */
static __attribute__((unused)) xentoollog_logger *test_logger(void)
{
    const char *e = getenv("XL_TEST_LOGLEVEL");
    int lvl = e ? atoi(e) : XTL_WARN;
    return (xentoollog_logger *)xtl_createlogger_stdiostream(stderr, lvl, 0);
}

static __attribute__((unused)) libxl_ctx *test_ctx(xentoollog_logger *lg)
{
    libxl_ctx *ctx = NULL;
    int rc = libxl_ctx_alloc(&ctx, LIBXL_VERSION, 0, lg);
    if (rc || !ctx) {
        printf("FAIL setup: libxl_ctx_alloc rc=%d\n", rc);
        exit(1);
    }
    return ctx;
}

/* A pipe with both ends close-on-exec and non-blocking. */
static __attribute__((unused)) void test_pipe(int p[2])
{
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK)) {
        perror("pipe2");
        exit(1);
    }
}

static __attribute__((unused)) void pipe_poke(int wfd)
{
    char c = 'x';
    if (write(wfd, &c, 1) != 1) {
        perror("write");
        exit(1);
    }
}

static __attribute__((unused)) double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static __attribute__((unused)) struct timeval tv_now(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return tv;
}

#endif /* XL_TEST_HARNESS_H */
