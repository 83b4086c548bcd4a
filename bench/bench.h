/*
 * bench.h - shared helpers for the benchmark programs bench/bench_*.c.
 *
 * Every figure is printed beside a baseline measured in the same run on
 * the same machine, as a ratio, one markdown table row each:
 *   | id | what | ours | baseline (what) | ratio | target | PASS/MISS |
 * Targets are goals, not tests: a MISS never fails `make bench`.
 * QUICK=1 in the environment asks for fewer iterations.
 */
#ifndef XL_BENCH_H
#define XL_BENCH_H

#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libxl.h>
#include <libxl_event.h>
#include <xentoollog.h>

static __attribute__((unused)) int bench_quick(void)
{
    const char *q = getenv("QUICK");
    return q && *q && strcmp(q, "0") != 0;
}

static __attribute__((unused)) double bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* A ctx whose logger drops everything below ERROR (benchmarks measure the
 * event core, not log formatting). */
static __attribute__((unused)) libxl_ctx *bench_ctx(void)
{
    xentoollog_logger *lg =
        (xentoollog_logger *)xtl_createlogger_stdiostream(stderr, XTL_ERROR, 0);
    libxl_ctx *ctx = NULL;
    if (libxl_ctx_alloc(&ctx, LIBXL_VERSION, 0, lg)) {
        fprintf(stderr, "bench: libxl_ctx_alloc failed\n");
        exit(1);
    }
    return ctx;
}

/* Formats a duration in ns with a unit. */
static __attribute__((unused)) const char *bench_fmt(double ns, char *buf, size_t n)
{
    if (ns < 1e3) snprintf(buf, n, "%.0f ns", ns);
    else if (ns < 1e6) snprintf(buf, n, "%.2f µs", ns / 1e3);
    else if (ns < 1e9) snprintf(buf, n, "%.2f ms", ns / 1e6);
    else snprintf(buf, n, "%.2f s", ns / 1e9);
    return buf;
}

/*
 * One result row. `ours` and `base` are in ns (or any common unit when
 * `unit` is given, e.g. "B" for bytes); `target_ratio` <= 0 means no
 * target. PASS when ours/base <= target_ratio.
 */
static __attribute__((unused)) void bench_row(const char *id, const char *what, double ours,
                                              const char *base_what, double base,
                                              double target_ratio, const char *unit)
{
    char a[32], b[32], t[32];
    if (unit) {
        snprintf(a, sizeof a, "%.0f %s", ours, unit);
        snprintf(b, sizeof b, "%.0f %s", base, unit);
    } else {
        bench_fmt(ours, a, sizeof a);
        bench_fmt(base, b, sizeof b);
    }
    double ratio = base > 0 ? ours / base : 0;
    if (target_ratio > 0) snprintf(t, sizeof t, "≤ %.2g×", target_ratio);
    else snprintf(t, sizeof t, "-");
    printf("| %s | %s | %s | %s: %s | %.2f× | %s | %s |\n", id, what, a, base_what, b, ratio, t,
           target_ratio > 0 ? (ratio <= target_ratio ? "PASS" : "MISS") : "-");
    fflush(stdout);
}

#endif /* XL_BENCH_H */
