/*
 * libxl_glib.h - run libxl's event machinery in a GLib main loop.
 *
 * The adapter registers libxl's osevent hooks (libxl_osevent_register_hooks)
 * and turns every fd and timeout libxl asks for into a GSource attached
 * to a GMainContext, the way libvirt plugs libxl into its own loop.  When
 * a source fires, the adapter reports it with libxl_osevent_occurred_fd
 * or _timeout; completions, events and progress callbacks then run as
 * usual (on the thread that iterates the context, or on a thread inside
 * a synchronous libxl call).  libxl's synchronous calls and
 * libxl_event_wait keep working from any thread alongside.
 *
 * Library: build/libxenlight-glib.so (`make glib`); compile with
 * `pkg-config --cflags glib-2.0` and link with
 * `-lxenlight-glib -lxenlight $(pkg-config --libs glib-2.0)`.
 *
 * Life cycle, in this order:
 *     libxl_ctx_alloc(&ctx, ...);
 *     g = libxl_glib_new(ctx, context);     before any libxl operation
 *     ... iterate context (g_main_loop_run) while using ctx ...
 *     libxl_glib_shutdown(g);               no more reports into libxl
 *     libxl_ctx_free(ctx);
 *     libxl_glib_free(g);
 *
 * Thread safety: the hooks run on whichever thread is inside libxl,
 * with libxl's ctx lock held; the adapter's own lock is taken inside
 * them and never held while it calls libxl (libxl_event.h's lock rule
 * (a)).  A source added from a thread other than the one iterating the
 * context wakes that context.  Reentrancy: the adapter's functions must
 * not be called from inside a libxl osevent hook.
 */
#ifndef LIBXL_GLIB_H
#define LIBXL_GLIB_H

#include <glib.h>
#include <libxl.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct libxl_glib libxl_glib;

libxl_glib *libxl_glib_new(libxl_ctx *ctx, GMainContext *context);
/* Description: installs the adapter as ctx's osevent hooks; libxl's fds
 *   and timeouts become GSources in context (NULL: the global default
 *   context), which is referenced until libxl_glib_free.
 * Return value: the adapter, owned by the caller.
 * Errors: none (GLib aborts when memory runs out).  Calling it after an
 *   operation has registered an fd or a timeout is fatal misuse of
 *   libxl_osevent_register_hooks (libxl logs it and aborts).
 * Reentrancy: call right after libxl_ctx_alloc, before other threads
 *   use ctx. */

void libxl_glib_shutdown(libxl_glib *g);
/* Description: stops reporting into libxl: when it returns, no source
 *   of g will call libxl again, and reports in progress on other threads
 *   have finished.  Sources are detached; registrations libxl still
 *   holds are kept until libxl releases them (libxl_ctx_free does) or
 *   libxl_glib_free.  Operations that register an fd or timeout after
 *   this fail with ERROR_OSEVENT_REG_FAIL.  Idempotent.
 * Reentrancy: any thread, including from a libxl callback that g's own
 *   report is running (that report is not waited for). */

void libxl_glib_free(libxl_glib *g);
/* Description: after libxl_ctx_free(ctx): shuts g down if needed,
 *   destroys the sources left (timeouts libxl asked to fire now, which
 *   no longer matter) and frees g.  A source already being dispatched on
 *   another thread finishes harmlessly.  Calling it while ctx is alive
 *   leaves libxl with dangling registrations: don't. */

unsigned libxl_glib_registrations(libxl_glib *g);
/* Description: how many registrations libxl holds with g now: fds, and
 *   timeouts not yet reported back.  For tests and diagnostics. */

#ifdef __cplusplus
}
#endif

#endif /* LIBXL_GLIB_H */
