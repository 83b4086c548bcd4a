/*
 * test_glib_example.c - the README's GLib example ("Using your own event
 * loop"), kept compiling and running: libxl operations completing inside
 * a GMainLoop through the GLib adapter.
 * Success: "PASS readme_glib_example" (both operations completed with 0
 * and the loop quit).  Failure: a FAIL line, or the watchdog's.
 */
#include <stdio.h>
#include <unistd.h>

#include <libxl.h>
#include <libxl_event.h>
#include <libxl_glib.h>
#include <libxl_test_progress.h>

static int pending = 2, failures;

static void done(libxl_ctx *ctx, int rc, void *loop)
{
    (void)ctx;
    printf("# operation complete: rc=%d\n", rc);
    failures += rc != 0;
    if (--pending == 0)
        g_main_loop_quit(loop);
}

int main(void)
{
    alarm(30);                                   /* test watchdog */
    libxl_ctx *ctx;
    if (libxl_ctx_alloc(&ctx, LIBXL_VERSION, 0, NULL))
        return 1;
    GMainLoop *loop = g_main_loop_new(NULL, FALSE);
    libxl_glib *g = libxl_glib_new(ctx, NULL);   /* before any operation */

    libxl_asyncop_how how = { .callback = done, .u.for_callback = loop };
    libxl_test_progress(ctx, 3, 10, NULL, &how); /* any asynchronous ops */
    libxl_test_progress(ctx, 1, 20, NULL, &how);
    g_main_loop_run(loop);                       /* completions run here */

    libxl_glib_shutdown(g);                      /* then, in this order: */
    libxl_ctx_free(ctx);
    libxl_glib_free(g);
    g_main_loop_unref(loop);

    printf("%s readme_glib_example\n", failures || pending ? "FAIL" : "PASS");
    return failures || pending;
}
