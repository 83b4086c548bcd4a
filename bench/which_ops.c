/*
 * which_ops.c - which test operations the benchmarks would call (not a
 * benchmark: run.sh runs it once per library, the way it runs the
 * benchmarks, e.g. under build/xen/run-nohv --testlib).
 *
 * For each name on the command line prints one line
 *     NAME FILE IMPL
 * FILE: the shared object the dynamic linker resolves NAME to (dladdr),
 * or "-" if no loaded object defines it; IMPL: "xenbench" if it is the C
 * version of xen/bench/libxl_test_bench.c (that file's
 * libxl_test_xenbench_impl(NAME) returns its own function's address, not
 * one found through symbol lookup, so equality proves it), else "other"
 * (run.sh then tells Xen's C libxl_test_fdevent from our Rust ones by
 * the library's symbol table).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include <libxl.h>

/* Keeps libxenlight a dependency of this program whatever the linker's
 * --as-needed default. */
int (*const which_ops_keep)(libxl_ctx *) = libxl_ctx_free;

int main(int argc, char **argv)
{
    void *(*impl)(const char *) = NULL;
    void *s = dlsym(RTLD_DEFAULT, "libxl_test_xenbench_impl");
    if (s) *(void **)&impl = s;
    for (int i = 1; i < argc; i++) {
        void *f = dlsym(RTLD_DEFAULT, argv[i]);
        Dl_info di;
        char path[PATH_MAX];
        if (!f || !dladdr(f, &di) || !di.dli_fname) {
            printf("%s - -\n", argv[i]);
            continue;
        }
        if (!realpath(di.dli_fname, path)) snprintf(path, sizeof path, "%s", di.dli_fname);
        printf("%s %s %s\n", argv[i], path, impl && impl(argv[i]) == f ? "xenbench" : "other");
    }
    return 0;
}
