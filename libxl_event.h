/*
 * libxl_event.h - event and OS-event interface of libxenlight.
 *
 * ABI-identical to Xen 4.17's libxl_event.h for the functions this
 * library implements (domain/disk event generators are not provided).
 *
 * Two ways of driving libxl are offered and may be mixed:
 *  1. poll loop: libxl_osevent_beforepoll -> poll(2) ->
 *     libxl_osevent_afterpoll -> drain with libxl_event_check;
 *  2. hooks: the application's own event loop registers libxl's fds
 *     and timeouts (libxl_osevent_register_hooks) and reports them with
 *     libxl_osevent_occurred_fd/_timeout.
 * libxl_event_wait runs style 1 internally.
 */
#ifndef LIBXL_EVENT_H
#define LIBXL_EVENT_H

#include <libxl.h>
#include <poll.h>
#include <sys/time.h>

#ifdef __cplusplus
extern "C" {
#endif

/*---------- receiving events ----------*/

#define LIBXL_EVENTMASK_ALL (~(unsigned long)0)
/* typemask selecting every event type (bit n = event type n). */

typedef int libxl_event_predicate(const libxl_event*, void *user);
/* Returns non-0 to accept the event, 0 to skip it.  Must not fail and
 * must not call libxl (it runs with libxl's ctx lock held). */

int libxl_event_check(libxl_ctx *ctx, libxl_event **event_r,
                      uint64_t typemask,
                      libxl_event_predicate *predicate, void *predicate_user)
                      LIBXL_EXTERNAL_CALLERS_ONLY;
/* Removes from the queue the first already-occurred event whose type
 * bit is in typemask and which predicate (NULL = any) accepts.
 * Return value: 0 with *event_r set (caller owns it, free with
 * libxl_event_free), or ERROR_NOT_READY if nothing matches.
 * Does not perform any IO. */

int libxl_event_wait(libxl_ctx *ctx, libxl_event **event_r,
                     uint64_t typemask,
                     libxl_event_predicate *predicate, void *predicate_user)
                     LIBXL_EXTERNAL_CALLERS_ONLY;
/* As libxl_event_check, but blocks (polling libxl's fds and timeouts
 * itself) until a matching event exists.  Returns 0 or an error from
 * the poll machinery (e.g. ERROR_FAIL).
 * Reentrancy: not from within libxl callbacks. */

void libxl_event_free(libxl_ctx *ctx, libxl_event *event);
/* Disposes and frees an event obtained from libxl.  NULL is ignored.
 * ctx may be NULL. */

typedef struct libxl_event_hooks {
    uint64_t event_occurs_mask;
    void (*event_occurs)(void *user,
#ifndef LIBXL_HAVE_NONCONST_EVENT_OCCURS_EVENT_ARG
                         const
#endif
                         libxl_event *event);
    void (*disaster)(void *user, libxl_event_type type,
                     const char *msg, int errnoval);
} libxl_event_hooks;

void libxl_event_register_callbacks(libxl_ctx *ctx,
                                    const libxl_event_hooks *hooks, void *user);
/* Events whose type bit is in event_occurs_mask are delivered by
 * calling event_occurs(user, event) instead of being queued; the
 * callee owns event and must libxl_event_free it.  event_occurs may be
 * NULL only if the mask is 0.
 * disaster(user, type, msg, errnoval) reports an unrecoverable failure
 * in event machinery (type 0 = any type may be lost); if it is NULL
 * such a failure is logged as XTL_CRITICAL and the process exits.
 * *hooks is copied.  The last registration wins.
 * Reentrancy: event_occurs MAY call libxl; disaster must NOT.  Both run
 * on any thread that is inside libxl.  Do not call this function
 * concurrently with other uses of ctx. */

/*---------- poll-loop integration ----------*/

struct pollfd;

int libxl_osevent_beforepoll(libxl_ctx *ctx, int *nfds_io,
                             struct pollfd *fds, int *timeout_upd,
                             struct timeval now)
                             LIBXL_EXTERNAL_CALLERS_ONLY;
/* On entry *nfds_io is the number of slots at fds (may be 0 with
 * fds == NULL); on return it is the number libxl needs.
 * Return value: 0 with fds[0..*nfds_io-1] filled for poll(2), or
 * ERROR_BUFFERFULL if the space was too small (fds then undefined; grow
 * the array to *nfds_io and call again).  *timeout_upd (milliseconds,
 * negative = infinite) is only ever reduced.  now: current time. */

void libxl_osevent_afterpoll(libxl_ctx *ctx, int nfds, const struct pollfd *fds,
                             struct timeval now)
                             LIBXL_EXTERNAL_CALLERS_ONLY;
/* Performs the IO and timeouts implied by poll's results for the array
 * from the latest beforepoll, queueing any resulting events.
 * Only one thread at a time may use the beforepoll/afterpoll pair. */

typedef struct libxl_osevent_hooks {
  int (*fd_register)(void *user, int fd, void **for_app_registration_out,
                     short events, void *for_libxl);
  int (*fd_modify)(void *user, int fd, void **for_app_registration_update,
                   short events);
  void (*fd_deregister)(void *user, int fd, void *for_app_registration);
  int (*timeout_register)(void *user, void **for_app_registration_out,
                          struct timeval abs, void *for_libxl);
  int (*timeout_modify)(void *user, void **for_app_registration_update,
                         struct timeval abs);
  void (*timeout_deregister)(void *user, void *for_app_registration);
} libxl_osevent_hooks;
/* Application-side registry of libxl's fds and timeouts.
 * register/modify return 0 on success (optionally storing a cookie
 * that libxl passes back later), or ERROR_OSEVENT_REG_FAIL / a positive
 * value on failure, leaving the registration unchanged; that value is
 * propagated to libxl's caller.  events may be 0.  timeout_modify is
 * only called with abs = {0,0} ("fire as soon as possible") and may race
 * with the timeout firing; timeout_deregister is never called.
 * Lock hierarchy: the hooks are called with libxl's ctx lock held; an
 * application lock taken inside a hook must either never be held while
 * calling libxl, or always be held while calling libxl. */

void libxl_osevent_register_hooks(libxl_ctx *ctx,
                                  const libxl_osevent_hooks *hooks,
                                  void *user);
/* Installs hooks (at most once per ctx), before any fd or finite
 * timeout is registered: a later call is fatal misuse (XTL_CRITICAL
 * naming the rule, then abort).  *hooks is NOT copied and must outlive
 * ctx.  Synchronous operations and libxl_event_wait still use libxl's
 * own pollers, which watch every registration too.
 * Reentrancy: the hooks must not call libxl; a libxl_osevent_occurred_*
 * call from inside a hook is fatal misuse, as above. */

void libxl_osevent_occurred_fd(libxl_ctx *ctx, void *for_libxl,
                               int fd, short events, short revents)
                               LIBXL_EXTERNAL_CALLERS_ONLY;
/* Reports poll-style readiness revents on a registered fd; for_libxl
 * and events are those from the latest register/modify.  Any thread,
 * any time: reports for stale registrations (modified, deregistered,
 * or whose slot was reused), duplicated reports and for_libxl values
 * libxl never gave (or gave for a timeout) are recognised, logged at
 * DEBUG and ignored; the fd is re-checked before anything runs.
 * Reentrancy: never from inside a hook (fatal misuse, see above). */

void libxl_osevent_occurred_timeout(libxl_ctx *ctx, void *for_libxl)
                                    LIBXL_EXTERNAL_CALLERS_ONLY;
/* Reports that a registered timeout fired, or that one libxl modified
 * to {0,0} was honoured; the registration is thereby consumed (the
 * application forgets it).  Stale, duplicated and foreign for_libxl
 * values are ignored as for libxl_osevent_occurred_fd.
 * Reentrancy: as libxl_osevent_occurred_fd. */

/*---------- child processes and SIGCHLD ----------*/

typedef enum {
    libxl_sigchld_owner_libxl,
    /* libxl handles SIGCHLD while it has children and reaps every
     * child, including the application's (see reaped_callback). */
    libxl_sigchld_owner_mainloop,
    /* The application handles SIGCHLD and calls libxl_childproc_reaped
     * or libxl_childproc_sigchld_occurred (not from a signal handler). */
    libxl_sigchld_owner_libxl_always,
    /* libxl handles SIGCHLD permanently and reaps all children. */
    libxl_sigchld_owner_libxl_always_selective_reap,
    /* libxl handles SIGCHLD permanently but reaps only its own
     * children; the application waitpid()s its own. */
} libxl_sigchld_owner;

typedef struct {
    libxl_sigchld_owner chldowner;
    pid_t (*fork_replacement)(void *user);
    /* Optional; used instead of fork(2) with the same contract.  Must
     * not call libxl. */
    int (*reaped_callback)(pid_t, int status, void *user);
    /* Optional; with libxl owning SIGCHLD, called (outside signal
     * context) for children libxl reaped but did not start.  Return 0
     * if recognised, ERROR_UNKNOWN_CHILD if not; anything else is a
     * disaster.  May call libxl. */
} libxl_childproc_hooks;

void libxl_childproc_setmode(libxl_ctx *ctx, const libxl_childproc_hooks *hooks,
                             void *user);
/* hooks == NULL means { libxl_sigchld_owner_libxl, NULL, NULL }.
 * *hooks is NOT copied and must outlive ctx.  Call before ctx has any
 * children, not concurrently with other uses of ctx. */

int libxl_childproc_reaped(libxl_ctx *ctx, pid_t, int status)
                           LIBXL_EXTERNAL_CALLERS_ONLY;
/* With libxl_sigchld_owner_mainloop: the application reaped pid with
 * status.  Returns 0 if it was libxl's child, else ERROR_UNKNOWN_CHILD.
 * Reentrancy: not from signal handlers. */

void libxl_childproc_sigchld_occurred(libxl_ctx *ctx)
                           LIBXL_EXTERNAL_CALLERS_ONLY;
/* With libxl_sigchld_owner_mainloop: SIGCHLD arrived; libxl reaps its
 * own children (waitpid on specific pids only).
 * Reentrancy: not from signal handlers. */

void libxl_postfork_child_noexec(libxl_ctx *ctx);
/* Call in a child forked from a process holding ctxs that will not
 * exec: gives back SIGCHLD (the disposition saved when libxl installed
 * its handler is restored) and forgets the parent's children.  Takes no
 * lock.  All ctxs inherited from the parent become unusable (do not use
 * or free them; their fds are close-on-exec); new ones may be made. */

#ifdef __cplusplus
}
#endif

#endif /* LIBXL_EVENT_H */
