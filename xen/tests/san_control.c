/*
 * san_control.c: the negative control of make test-xen-asan / -tsan
 * (xen/tests/test-xen-san.sh). Built and run exactly like the tested
 * programs (same flags, same runtime, under run-nohv, same options); each
 * mode must produce a sanitizer report, which the script must catch, or the
 * harness proves nothing.
 *   heap-overflow  (ASan) reads one byte past a malloc'd block
 *   leak           (LeakSanitizer) loses the only pointer to a block
 *   ub             (UBSan) signed integer overflow
 *   race           (TSan) two threads write one variable, unsynchronised
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile int shared;
static void *writer(void *arg)
{
    (void)arg;
    shared++;
    return NULL;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "heap-overflow")) {
        char *volatile p = malloc(8);
        int r = p[8];
        free(p);
        return r;
    }
    if (!strcmp(mode, "leak")) {
        void *volatile p = malloc(64);
        p = NULL;
        (void)p;
        return 0;
    }
    if (!strcmp(mode, "ub")) {
        volatile int i = 0x7fffffff;
        i = i + argc;
        return i == 0;
    }
    if (!strcmp(mode, "race")) {
        pthread_t t;
        pthread_create(&t, NULL, writer, NULL);
        shared++;
        pthread_join(t, NULL);
        return 0;
    }
    fprintf(stderr, "usage: san_control heap-overflow|leak|ub|race\n");
    return 2;
}
