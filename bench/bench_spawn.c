/*
 * bench_spawn.c - B5: spawn + reap latency of a child process.
 *
 * libxl_test_childproc(ctx, {"/bin/true"}, -1, &status, NULL) - fork,
 * start handshake, exec, SIGCHLD through the self-pipe, reap, completion
 * - against a bare posix_spawn("/bin/true") + waitpid() (the baseline),
 * both measured here, in this run.  Two rows: the default SIGCHLD mode
 * (libxl: the handler and the self-pipe registration are set up and torn
 * down around every child) and libxl_always_selective_reap (set up once).
 * No target: the figure shows what the library adds to a process spawn.
 * Rounds of both alternate and each keeps its best round (shared, noisy
 * machines); in the second row the baseline's children also run our
 * SIGCHLD handler, as the application's would.
 */
#include "bench.h"
#include <spawn.h>
#include <sys/wait.h>
#include <libxl_test_childproc.h>

extern char **environ;

static const char *const argv_true[] = { "/bin/true", NULL };

static double per_op_lib(libxl_ctx *ctx, int n)
{
    int st;
    double t0 = bench_now_ns();
    for (int i = 0; i < n; i++) {
        if (libxl_test_childproc(ctx, argv_true, -1, &st, NULL) || st != 0) {
            fprintf(stderr, "bench_spawn: op failed\n");
            exit(1);
        }
    }
    return (bench_now_ns() - t0) / n;
}

static double per_op_bare(int n)
{
    double t0 = bench_now_ns();
    for (int i = 0; i < n; i++) {
        pid_t pid;
        int st;
        if (posix_spawn(&pid, argv_true[0], NULL, NULL, (char *const *)argv_true, environ) ||
            waitpid(pid, &st, 0) != pid || st != 0) {
            fprintf(stderr, "bench_spawn: posix_spawn failed\n");
            exit(1);
        }
    }
    return (bench_now_ns() - t0) / n;
}

/* Alternates rounds of both (the machine is shared and noisy) and keeps
 * each one's best round. */
static void measure(libxl_ctx *ctx, int n, double *ours, double *base)
{
    enum { ROUNDS = 5 };
    *ours = *base = 1e18;
    per_op_bare(n / 10); /* warm up */
    for (int r = 0; r < ROUNDS; r++) {
        double b = per_op_bare(n / ROUNDS), o = per_op_lib(ctx, n / ROUNDS);
        if (b < *base) *base = b;
        if (o < *ours) *ours = o;
    }
}

int main(void)
{
    int n = bench_quick() ? 200 : 2000;
    libxl_ctx *ctx = bench_ctx();
    double ours, base;

    measure(ctx, n, &ours, &base);
    bench_row("B5", "spawn+reap /bin/true, sync libxl_test_childproc (default SIGCHLD mode)",
              ours, "posix_spawn + waitpid", base, 0, NULL);

    libxl_childproc_hooks sel = { .chldowner = libxl_sigchld_owner_libxl_always_selective_reap };
    libxl_childproc_setmode(ctx, &sel, NULL);
    measure(ctx, n, &ours, &base);
    bench_row("B5s", "same, libxl_always_selective_reap (SIGCHLD taken once)",
              ours, "posix_spawn + waitpid", base, 0, NULL);

    libxl_ctx_free(ctx);
    return 0;
}
