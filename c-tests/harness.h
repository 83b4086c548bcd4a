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
#include <stdint.h>
#include <unistd.h>

#include <dlfcn.h>
#include <libxl.h>
#include <libxl_event.h>
#include <xentoollog.h>

static int h_failures;
static const char *h_case = "(none)";
static char h_reason[512];
static char h_na[512];

/* True when the library is the full libxl (Xen's libxl sources built on
 * this core: `make xen`, build/xen/). There, libxl_ctx_alloc/free and the
 * generated libxl_event_* helpers are Xen's own C code, with Xen's
 * behaviour (they do not check NULL arguments, for instance). */
static __attribute__((unused)) int full_libxl(void)
{
    return dlsym(RTLD_DEFAULT, "libxl_domain_create_new") != NULL;
}

/* Marks the current case as not applicable to this library, saying why;
 * it prints "N/A <name>: <why>" instead of PASS (c-tests/run.sh lists
 * these). Only for behaviour that is another project's code there. */
static __attribute__((unused)) void case_na(const char *why)
{
    snprintf(h_na, sizeof(h_na), "%s", why);
}

/* Starts a case; the case fails if any CHECK fails before case_end(). */
static void case_begin(const char *name)
{
    h_case = name;
    h_reason[0] = 0;
    h_na[0] = 0;
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
    if (h_na[0] && !h_reason[0]) {
        printf("N/A %s: %s\n", h_case, h_na);
    } else if (h_reason[0]) {
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

/* A watchdog that does not use SIGALRM (for tests that need the signal
 * themselves): a thread that prints the FAIL line and exits the program
 * after `seconds`. */
#include <pthread.h>
static void *h_watchdog_thread(void *arg)
{
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL); /* signals are the test's */
    sleep((unsigned)(uintptr_t)arg);
    h_watchdog_fired(0);
    return NULL;
}

static __attribute__((unused)) void watchdog_thread(unsigned seconds)
{
    pthread_t t;
    if (pthread_create(&t, NULL, h_watchdog_thread, (void *)(uintptr_t)seconds)) {
        perror("pthread_create");
        exit(1);
    }
    pthread_detach(t);
}

/* Runs fn(arg) in a forked child (stderr captured, SIGALRM reset to its
 * default and armed for `seconds`, so a deadlock ends as SIGALRM, not a
 * hang). Returns the child's wait status and stores what it wrote to
 * stderr in *err (malloc'd, NUL-terminated). If fn returns, the child
 * exits 0. */
#include <sys/wait.h>
static __attribute__((unused)) int run_in_child(void (*fn)(void *), void *arg,
                                                unsigned seconds, char **err)
{
    int p[2];
    if (pipe(p)) { perror("pipe"); exit(1); }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); exit(1); }
    if (pid == 0) {
        close(p[0]);
        dup2(p[1], 2);
        close(p[1]);
        signal(SIGALRM, SIG_DFL);
        alarm(seconds);
        fn(arg);
        _exit(0);
    }
    close(p[1]);
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 1024 > cap) buf = realloc(buf, cap *= 2);
        ssize_t r = read(p[0], buf + len, cap - len - 1);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        len += r;
    }
    buf[len] = 0;
    close(p[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    *err = buf;
    return status;
}

/* Describes a wait status for a FAIL line. */
static __attribute__((unused)) const char *status_str(int status)
{
    static char s[64];
    if (WIFEXITED(status))
        snprintf(s, sizeof(s), "exit %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(s, sizeof(s), "signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        snprintf(s, sizeof(s), "status %#x", status);
    return s;
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

/* Liveness is promptness: a wakeup a test waits for must come within
 * prompt_ms() of what caused it - far below the library's 1 s idle audit
 * (src/poller/sleep.rs), so a sleeper rescued only by a periodic re-check
 * fails the test instead of passing late.  Under valgrind and the
 * sanitizers (XL_TEST_SLOW) everything runs several times slower: the
 * bound grows, and stays below the audit period. */
static __attribute__((unused)) double prompt_ms(void)
{
    return getenv("XL_TEST_SLOW") ? 600.0 : 100.0;
}

/* Fails the case if more than prompt_ms() passed since t0 (now_ms()). */
#define CHECK_PROMPT(t0, what) do {                                       \
        double dt_ = now_ms() - (t0);                                     \
        if (dt_ > prompt_ms())                                            \
            case_fail("%s:%d: %s took %.0f ms after its cause "           \
                      "(> %.0f ms: not prompt)", __FILE__, __LINE__,      \
                      (what), dt_, prompt_ms());                          \
    } while (0)

static __attribute__((unused)) struct timeval tv_now(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return tv;
}

#endif /* XL_TEST_HARNESS_H */
