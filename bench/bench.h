/*
 * bench.h - shared helpers for the benchmark programs bench/bench_*.c.
 *
 * Every figure is printed beside a baseline measured in the same run on
 * the same machine, as a ratio, one markdown table row each:
 *   | id | what | ours | baseline (what) | ratio | target | PASS/MISS |
 * Targets are goals, not tests: a MISS never fails `make bench`.
 * QUICK=1 in the environment asks for fewer iterations.
 * Other stdout lines (bench_note: "note: ...", or a "... skipped: ..."
 * line) are collected by run.sh into a Notes list below the table.
 */
#ifndef XL_BENCH_H
#define XL_BENCH_H

#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
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

/* A note (clamped K, a skipped benchmark, ...): one stdout line that
 * run.sh puts under the table. */
static __attribute__((unused, format(printf, 1, 2))) void bench_note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("note: ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
}

/* Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft
 * limit (or the old one if it could not be raised). */
static __attribute__((unused)) long bench_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl)) return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit r2 = rl;
        r2.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &r2) == 0) rl = r2;
    }
    return rl.rlim_cur == RLIM_INFINITY ? 1L << 20 : (long)rl.rlim_cur;
}

/* xorshift64: a cheap deterministic pseudo-random sequence. */
static __attribute__((unused)) uint64_t bench_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/*
 * A time-budgeted measuring loop: bench_more(&b) is true until at least
 * `min` iterations were done and `budget_ns` has passed, or `max` were
 * done. Usage: for (bench_budget b = bench_budget_start(...);
 * bench_more(&b); b.n++) { ... }; the mean per iteration is then
 * bench_budget_mean(&b) (includes the loop's own clock reads, ~20 ns).
 */
typedef struct {
    long n, min, max;
    double t0, budget_ns, end;
} bench_budget;

static __attribute__((unused)) bench_budget bench_budget_start(double budget_ns, long min, long max)
{
    bench_budget b = { .n = 0, .min = min, .max = max, .budget_ns = budget_ns };
    b.t0 = bench_now_ns();
    return b;
}

static __attribute__((unused)) int bench_more(bench_budget *b)
{
    if (b->n >= b->max) { b->end = bench_now_ns(); return 0; }
    if (b->n < b->min) return 1;
    double t = bench_now_ns();
    if (t - b->t0 >= b->budget_ns) { b->end = t; return 0; }
    return 1;
}

static __attribute__((unused)) double bench_budget_mean(const bench_budget *b)
{
    return b->n ? (b->end - b->t0) / b->n : 0;
}

/*
 * A series of per-iteration measurements, summarised robustly: the series
 * is cut into BENCH_BATCHES consecutive batches and the figure is the
 * median of the batch means. A burst of interference from the rest of the
 * machine (another tenant, a daemon waking) spoils a few batches, not the
 * figure; a steady cost shows in every batch, so it is not hidden.
 */
#define BENCH_BATCHES 21

typedef struct {
    double *v;
    long n, cap;
} bench_series;

static __attribute__((unused)) void bench_series_add(bench_series *s, double x)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 4096;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
        if (!s->v) { fprintf(stderr, "bench: out of memory\n"); exit(1); }
    }
    s->v[s->n++] = x;
}

static int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of the batch means (the plain mean with fewer samples than batches). */
static __attribute__((unused)) double bench_series_robust(const bench_series *s)
{
    if (s->n == 0) return 0;
    if (s->n < BENCH_BATCHES) {
        double sum = 0;
        for (long i = 0; i < s->n; i++) sum += s->v[i];
        return sum / s->n;
    }
    double means[BENCH_BATCHES];
    for (int b = 0; b < BENCH_BATCHES; b++) {
        long lo = s->n * b / BENCH_BATCHES, hi = s->n * (b + 1) / BENCH_BATCHES;
        double sum = 0;
        for (long i = lo; i < hi; i++) sum += s->v[i];
        means[b] = sum / (hi - lo);
    }
    qsort(means, BENCH_BATCHES, sizeof means[0], bench_cmp_double);
    return means[BENCH_BATCHES / 2];
}

static __attribute__((unused)) void bench_series_reset(bench_series *s)
{
    s->n = 0;
}

#endif /* XL_BENCH_H */
