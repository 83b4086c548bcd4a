/*
 * fatal.h - checking that a misuse is fatal: run it in a forked child
 * and require that the child dies by SIGABRT (not a deadlock, not a clean
 * exit) with the expected message on its stderr.
 *
 * The child's stderr goes to a pipe the parent reads; the parent waits at
 * most `seconds` (a watchdog: a child still alive then is killed, and
 * the case fails as a deadlock).  Fork only while the test has no other
 * threads running.
 */
#ifndef XL_TEST_FATAL_H
#define XL_TEST_FATAL_H

#include <sys/wait.h>

#include "harness.h"

/* Runs fn(arg) in a child; fails the current case unless the child is
 * killed by SIGABRT within `seconds` and its stderr contains `expect`. */
static __attribute__((unused)) void expect_abort(void (*fn)(void *), void *arg,
                                                 const char *expect, int seconds)
{
    int p[2];
    if (pipe(p)) {
        case_fail("pipe: %s", strerror(errno));
        return;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        case_fail("fork: %s", strerror(errno));
        return;
    }
    if (pid == 0) {
        alarm(0);                 /* the parent's watchdog is not ours */
        dup2(p[1], 2);
        close(p[0]);
        close(p[1]);
        fn(arg);
        fprintf(stderr, "child: returned normally\n");
        _exit(0);
    }
    close(p[1]);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    static char err[16384];
    size_t len = 0;
    int status = 0, done = 0;
    double end = now_ms() + seconds * 1000.0;
    while (!done) {
        struct pollfd pf = { .fd = p[0], .events = POLLIN };
        poll(&pf, 1, 20);
        ssize_t r;
        while ((r = read(p[0], err + len, sizeof(err) - 1 - len)) > 0)
            len += r;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            done = 1;
        } else if (now_ms() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            case_fail("child still running after %d s: deadlock instead of abort", seconds);
            close(p[0]);
            return;
        }
    }
    ssize_t r;
    while ((r = read(p[0], err + len, sizeof(err) - 1 - len)) > 0)
        len += r;
    err[len] = 0;
    close(p[0]);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT)
        case_fail("child did not die by SIGABRT (status %#x); stderr: %.300s", status, err);
    else if (!strstr(err, expect))
        case_fail("child's stderr lacks \"%s\"; it was: %.300s", expect, err);
}

#endif /* XL_TEST_FATAL_H */
