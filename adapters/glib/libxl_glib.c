/*
 * libxl_glib.c - libxl's osevent hooks on a GLib GMainContext (see
 * libxl_glib.h for the interface).
 *
 * Objects:
 *  - libxl_glib (g): one per ctx.  Refcounted: one reference for the
 *    application (dropped by libxl_glib_free) and one per registration,
 *    so a source that outlives everything else still finds g.
 *  - reg: one per fd or timeout libxl registers; its address is
 *    for_app_registration.  Refcounted: one reference while libxl holds
 *    the registration ("live"), one per GSource whose callback data it
 *    is (dropped by GLib's destroy notify when the source goes).  So a
 *    GSource that is dispatched after the registration ended, or after
 *    libxl_glib_free, still reads valid memory, sees it is stale and
 *    does nothing.
 *
 * Invariants (all under g->lock unless said otherwise):
 *  - Lock order: libxl's ctx lock (held around every hook) before
 *    g->lock before GLib's context lock.  g->lock is never held while
 *    calling libxl: a report copies what it needs, counts itself in
 *    g->inflight, unlocks, calls libxl, then relocks.
 *  - r->source is the one GSource that may report r; any other source
 *    of r that gets dispatched (replaced by fd_modify or timeout_modify,
 *    or destroyed on another thread while GLib was about to dispatch it)
 *    is stale and reports nothing.
 *  - r->live: libxl holds the registration.  An fd stops being live at
 *    fd_deregister; a timeout when the adapter starts reporting it
 *    (libxl_osevent_occurred_timeout consumes it; libxl never
 *    deregisters a timeout).  A timeout_modify that races with that
 *    report finds it not live and does nothing, as libxl_event.h asks.
 *  - Once g->shut is set, no report starts, and shutdown returns only
 *    when the reports in flight (other than the caller's own) are done.
 */
#include "libxl_glib.h"

#include <glib-unix.h>
#include <poll.h>
#include <sys/time.h>

#include <libxl_event.h>

struct libxl_glib {
    gint refs;                   /* atomic */
    libxl_ctx *ctx;
    GMainContext *context;
    GMutex lock;
    GCond idle;                  /* signalled when inflight drops */
    gboolean shut;
    int inflight;                /* reports into libxl in progress */
    struct reg *regs;            /* live registrations (doubly linked) */
    unsigned nregs;
};

typedef struct reg {
    gint refs;                   /* atomic */
    libxl_glib *g;               /* holds a reference on g */
    gboolean is_timeout;
    /* Under g->lock: */
    gboolean live;
    GSource *source;             /* our reference, or NULL */
    int fd;
    short events;
    void *for_libxl;
    struct reg *prev, *next;
} reg;

/* The adapter whose report is running on this thread, and how deeply
 * (a libxl callback run by a report may iterate the context again). */
static __thread libxl_glib *reporting_g;
static __thread int reporting_depth;

/*---------- references ----------*/

static void g_unref(libxl_glib *g)
{
    if (!g_atomic_int_dec_and_test(&g->refs))
        return;
    g_mutex_clear(&g->lock);
    g_cond_clear(&g->idle);
    g_main_context_unref(g->context);
    g_free(g);
}

static reg *reg_ref(reg *r)
{
    g_atomic_int_inc(&r->refs);
    return r;
}

static void reg_unref(gpointer data)
{
    reg *r = data;
    if (!g_atomic_int_dec_and_test(&r->refs))
        return;
    libxl_glib *g = r->g;
    g_free(r);
    g_unref(g);
}

/* A new live registration, linked into g (lock held); NULL once g is
 * shut down. */
static reg *reg_new(libxl_glib *g, gboolean is_timeout, void *for_libxl)
{
    if (g->shut)
        return NULL;
    reg *r = g_new0(reg, 1);
    r->refs = 1;                 /* libxl's */
    g_atomic_int_inc(&g->refs);
    r->g = g;
    r->is_timeout = is_timeout;
    r->live = TRUE;
    r->fd = -1;
    r->for_libxl = for_libxl;
    r->next = g->regs;
    if (g->regs)
        g->regs->prev = r;
    g->regs = r;
    g->nregs++;
    return r;
}

static void source_stop(reg *r)
{
    if (!r->source)
        return;
    g_source_destroy(r->source);
    g_source_unref(r->source);
    r->source = NULL;
}

/* r is no longer live: unlinked, its source gone (lock held).  The
 * caller drops libxl's reference after unlocking. */
static void reg_end(libxl_glib *g, reg *r)
{
    source_stop(r);
    r->live = FALSE;
    if (r->prev)
        r->prev->next = r->next;
    else
        g->regs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
    g->nregs--;
}

/*---------- sources and reports ----------*/

/* Wakes the context if another thread may be sleeping in it. */
static void wake(libxl_glib *g)
{
    if (!g_main_context_is_owner(g->context))
        g_main_context_wakeup(g->context);
}

static void source_start(libxl_glib *g, reg *r, GSource *s, GSourceFunc fn)
{
    g_source_set_callback(s, fn, reg_ref(r), reg_unref);
    g_source_attach(s, g->context);
    r->source = s;
    wake(g);
}

/* One report into libxl, from a source's dispatch. */
typedef struct {
    libxl_glib *g;
    void *for_libxl;
    short events;
    libxl_glib *prev_reporting;
} report;

/* Starts reporting r from the source being dispatched.  FALSE (report
 * nothing) if that source is stale or g is shut down.  Otherwise copies
 * what the report needs, counts it in flight and, for a timeout, ends
 * the registration (the report consumes it); the caller then calls
 * libxl, unlocked, and report_end. */
static gboolean report_begin(reg *r, report *rep)
{
    libxl_glib *g = r->g;
    g_mutex_lock(&g->lock);
    gboolean ok = !g->shut && r->live && r->source == g_main_current_source();
    if (ok) {
        g->inflight++;
        rep->g = g;
        rep->for_libxl = r->for_libxl;
        rep->events = r->events;
        if (r->is_timeout)
            reg_end(g, r);
    }
    g_mutex_unlock(&g->lock);
    if (ok) {
        rep->prev_reporting = reporting_g;
        reporting_g = g;
        reporting_depth++;
    }
    return ok;
}

static void report_end(report *rep)
{
    libxl_glib *g = rep->g;
    reporting_depth--;
    reporting_g = reporting_depth ? rep->prev_reporting : NULL;
    g_mutex_lock(&g->lock);
    if (--g->inflight == 0)
        g_cond_broadcast(&g->idle);
    g_mutex_unlock(&g->lock);
}

static short poll_events(GIOCondition c)
{
    return (c & G_IO_IN ? POLLIN : 0) | (c & G_IO_OUT ? POLLOUT : 0) |
           (c & G_IO_PRI ? POLLPRI : 0) | (c & G_IO_ERR ? POLLERR : 0) |
           (c & G_IO_HUP ? POLLHUP : 0) | (c & G_IO_NVAL ? POLLNVAL : 0);
}

static GIOCondition io_condition(short e)
{
    return (e & POLLIN ? G_IO_IN : 0) | (e & POLLOUT ? G_IO_OUT : 0) |
           (e & POLLPRI ? G_IO_PRI : 0);
}

static gboolean fd_ready(gint fd, GIOCondition cond, gpointer data)
{
    report rep;
    if (!report_begin(data, &rep))
        return G_SOURCE_REMOVE;
    libxl_osevent_occurred_fd(rep.g->ctx, rep.for_libxl, fd, rep.events, poll_events(cond));
    report_end(&rep);
    return G_SOURCE_CONTINUE;
}

static gboolean timeout_ready(gpointer data)
{
    report rep;
    if (!report_begin(data, &rep))
        return G_SOURCE_REMOVE;
    libxl_osevent_occurred_timeout(rep.g->ctx, rep.for_libxl);
    report_end(&rep);
    reg_unref(data);             /* libxl's reference: consumed */
    return G_SOURCE_REMOVE;
}

static void fd_source_start(libxl_glib *g, reg *r)
{
    if (r->events && !g->shut)
        source_start(g, r, g_unix_fd_source_new(r->fd, io_condition(r->events)),
                     G_SOURCE_FUNC(fd_ready));
}

/* A timeout source firing at abs ({0,0}: now). */
static void timeout_source_start(libxl_glib *g, reg *r, struct timeval abs)
{
    if (g->shut)
        return;
    guint ms = 0;
    if (abs.tv_sec || abs.tv_usec) {
        struct timeval now;
        gettimeofday(&now, NULL);
        gint64 us = (gint64)(abs.tv_sec - now.tv_sec) * G_USEC_PER_SEC + (abs.tv_usec - now.tv_usec);
        if (us > 0)
            ms = us / 1000 + (us % 1000 != 0);
    }
    source_start(g, r, g_timeout_source_new(ms), timeout_ready);
}

/*---------- the hooks (libxl's ctx lock held) ----------*/

static int hook_fd_register(void *user, int fd, void **for_app_registration_out,
                            short events, void *for_libxl)
{
    libxl_glib *g = user;
    g_mutex_lock(&g->lock);
    reg *r = reg_new(g, FALSE, for_libxl);
    if (r) {
        r->fd = fd;
        r->events = events;
        fd_source_start(g, r);
    }
    g_mutex_unlock(&g->lock);
    if (!r)
        return ERROR_OSEVENT_REG_FAIL;
    *for_app_registration_out = r;
    return 0;
}

static int hook_fd_modify(void *user, int fd, void **for_app_registration_update,
                          short events)
{
    libxl_glib *g = user;
    reg *r = *for_app_registration_update;
    (void)fd;
    g_mutex_lock(&g->lock);
    source_stop(r);
    r->events = events;
    fd_source_start(g, r);
    g_mutex_unlock(&g->lock);
    return 0;
}

static void hook_fd_deregister(void *user, int fd, void *for_app_registration)
{
    libxl_glib *g = user;
    reg *r = for_app_registration;
    (void)fd;
    g_mutex_lock(&g->lock);
    reg_end(g, r);
    g_mutex_unlock(&g->lock);
    reg_unref(r);
}

static int hook_timeout_register(void *user, void **for_app_registration_out,
                                 struct timeval abs, void *for_libxl)
{
    libxl_glib *g = user;
    g_mutex_lock(&g->lock);
    reg *r = reg_new(g, TRUE, for_libxl);
    if (r)
        timeout_source_start(g, r, abs);
    g_mutex_unlock(&g->lock);
    if (!r)
        return ERROR_OSEVENT_REG_FAIL;
    *for_app_registration_out = r;
    return 0;
}

/* libxl only asks for abs = {0,0} ("now"), possibly while the adapter is
 * already reporting this timeout: then r is no longer live. */
static int hook_timeout_modify(void *user, void **for_app_registration_update,
                               struct timeval abs)
{
    libxl_glib *g = user;
    reg *r = *for_app_registration_update;
    g_mutex_lock(&g->lock);
    if (r->live) {
        source_stop(r);
        timeout_source_start(g, r, abs);
    }
    g_mutex_unlock(&g->lock);
    return 0;
}

static const libxl_osevent_hooks hooks = {
    .fd_register = hook_fd_register,
    .fd_modify = hook_fd_modify,
    .fd_deregister = hook_fd_deregister,
    .timeout_register = hook_timeout_register,
    .timeout_modify = hook_timeout_modify,
    .timeout_deregister = NULL,  /* never called by libxl */
};

/*---------- the interface ----------*/

libxl_glib *libxl_glib_new(libxl_ctx *ctx, GMainContext *context)
{
    libxl_glib *g = g_new0(libxl_glib, 1);
    g->refs = 1;
    g->ctx = ctx;
    g->context = g_main_context_ref(context ? context : g_main_context_default());
    g_mutex_init(&g->lock);
    g_cond_init(&g->idle);
    libxl_osevent_register_hooks(ctx, &hooks, g);
    return g;
}

void libxl_glib_shutdown(libxl_glib *g)
{
    g_mutex_lock(&g->lock);
    g->shut = TRUE;
    int own = reporting_g == g ? reporting_depth : 0;
    while (g->inflight > own)
        g_cond_wait(&g->idle, &g->lock);
    for (reg *r = g->regs; r; r = r->next)
        source_stop(r);
    g_mutex_unlock(&g->lock);
}

void libxl_glib_free(libxl_glib *g)
{
    libxl_glib_shutdown(g);
    g_mutex_lock(&g->lock);
    reg *left = NULL;
    while (g->regs) {
        reg *r = g->regs;
        reg_end(g, r);
        r->next = left;          /* reuse the link for the drop list */
        left = r;
    }
    g_mutex_unlock(&g->lock);
    while (left) {
        reg *r = left;
        left = r->next;
        reg_unref(r);            /* libxl's reference: libxl is gone */
    }
    g_unref(g);
}

unsigned libxl_glib_registrations(libxl_glib *g)
{
    g_mutex_lock(&g->lock);
    unsigned n = g->nregs;
    g_mutex_unlock(&g->lock);
    return n;
}
