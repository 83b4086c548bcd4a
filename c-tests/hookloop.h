/*
 * hookloop.h - a minimal application-owned poll() loop driving libxl
 * through its osevent hooks (libxl_osevent_register_hooks), the way a
 * program with its own event loop plugs libxl in.  The C tests use it
 * and the README quotes it.
 *
 * The application keeps a registry of the fds and timeouts libxl wants.
 * libxl fills it through the hooks - from any thread that is inside
 * libxl, with libxl's ctx lock held - and the loop thread polls what is
 * registered and reports back with libxl_osevent_occurred_fd/_timeout.
 *
 * Invariants:
 *  - Lock hierarchy (libxl_event.h, rule (a)): `lock` is taken inside
 *    the hooks, so it is never held while calling libxl.
 *  - A hook called from a thread other than the loop's writes the
 *    self-pipe, so the loop re-reads the registry before sleeping on a
 *    stale set.
 *  - for_app_registration is the registry slot's address.  A slot is
 *    freed by fd_deregister, or for a timeout once the loop has reported
 *    it (libxl_osevent_occurred_timeout consumes the registration: libxl
 *    never deregisters a timeout, and timeout_modify only ever asks for
 *    "now", abs = {0,0}).  While the report is in flight the slot stays
 *    reserved (HL_REPORTING): a timeout_modify racing with it must be
 *    ignored, never applied to a new registration in a reused slot.
 *  - What the loop reports may be stale by the time libxl sees it (the
 *    registration changed while it polled): libxl recognises and ignores
 *    stale reports, so the loop need not re-check.
 *  - After libxl_ctx_free, no fd is registered; timeouts left are ones
 *    libxl asked to fire now: drop them without reporting
 *    (hookloop_destroy).
 *
 * The `t_*` fields are test aids (failure injection and call counts);
 * an application would not have them.
 */
#ifndef XL_TEST_HOOKLOOP_H
#define XL_TEST_HOOKLOOP_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <libxl.h>
#include <libxl_event.h>

#define HL_MAX 64

enum { HL_FREE, HL_REGISTERED, HL_REPORTING };

/* One registration: an fd (fd, events) or a timeout (abs). */
typedef struct {
    int used;             /* HL_FREE, HL_REGISTERED, or for a timeout
                           * HL_REPORTING */
    int fd;
    short events;
    struct timeval abs;   /* {0,0}: fire now */
    void *for_libxl;
} hl_reg;

typedef struct hookloop {
    pthread_mutex_t lock;            /* guards the registry */
    hl_reg fds[HL_MAX];
    hl_reg timeouts[HL_MAX];
    int wake[2];                     /* self-pipe */

    /* Test aids.  t_fail_*: the value the hook returns instead of
     * succeeding (0: succeed).  t_in_hook: called first in every hook,
     * with the lock not held. */
    int t_fail_fd_register, t_fail_fd_modify, t_fail_timeout_register;
    void (*t_in_hook)(struct hookloop *L, const char *hook, int fd, void *for_libxl);
    int t_fd_register, t_fd_modify, t_fd_deregister;
    int t_timeout_register, t_timeout_modify, t_timeout_modify_not_now;
    int t_timeout_deregister, t_bad_registration;
} hookloop;

/* The thread running hookloop_run_once for L, if any. */
static __thread hookloop *hl_running;

static void hl_wake(hookloop *L)
{
    if (hl_running == L)
        return; /* the loop re-reads the registry before it sleeps again */
    char c = 0;
    if (write(L->wake[1], &c, 1) < 0 && errno != EAGAIN)
        perror("hookloop: wake");
}

static void hl_test_probe(hookloop *L, const char *hook, int fd, void *for_libxl)
{
    if (L->t_in_hook)
        L->t_in_hook(L, hook, fd, for_libxl);
}

/*---------- the hooks ----------*/

static hl_reg *hl_free_slot(hl_reg *slots)
{
    for (int i = 0; i < HL_MAX; i++)
        if (slots[i].used == HL_FREE)
            return &slots[i];
    return NULL;
}

/* Stores r in a free slot of `slots` and gives its address to libxl;
 * or fails with the injected value, or ERROR_OSEVENT_REG_FAIL if full. */
static int hl_insert(hookloop *L, hl_reg *slots, int *calls, const int *fail,
                     hl_reg r, void **for_app_registration_out)
{
    int rc = ERROR_OSEVENT_REG_FAIL;
    pthread_mutex_lock(&L->lock);
    (*calls)++;
    hl_reg *slot = *fail ? NULL : hl_free_slot(slots);
    if (*fail) {
        rc = *fail;
    } else if (slot) {
        *slot = r;
        *for_app_registration_out = slot;
        hl_wake(L);
        rc = 0;
    }
    pthread_mutex_unlock(&L->lock);
    return rc;
}

static int hl_fd_register(void *user, int fd, void **for_app_registration_out,
                          short events, void *for_libxl)
{
    hookloop *L = user;
    hl_test_probe(L, "fd_register", fd, for_libxl);
    hl_reg r = { .used = HL_REGISTERED, .fd = fd, .events = events, .for_libxl = for_libxl };
    return hl_insert(L, L->fds, &L->t_fd_register, &L->t_fail_fd_register, r,
                     for_app_registration_out);
}

static int hl_fd_modify(void *user, int fd, void **for_app_registration_update,
                        short events)
{
    hookloop *L = user;
    hl_test_probe(L, "fd_modify", fd, NULL);
    hl_reg *r = *for_app_registration_update;
    int rc = 0;
    pthread_mutex_lock(&L->lock);
    L->t_fd_modify++;
    if (!r || !r->used || r->fd != fd) {
        L->t_bad_registration++;
        rc = ERROR_OSEVENT_REG_FAIL;
    } else if (L->t_fail_fd_modify) {
        /* Fail, but move the (unchanged) registration to another slot
         * first: libxl must honour the updated value. */
        rc = L->t_fail_fd_modify;
        hl_reg *moved = hl_free_slot(L->fds);
        if (moved) {
            *moved = *r;
            r->used = HL_FREE;
            *for_app_registration_update = moved;
        }
    } else {
        r->events = events;
        hl_wake(L);
    }
    pthread_mutex_unlock(&L->lock);
    return rc;
}

static void hl_fd_deregister(void *user, int fd, void *for_app_registration)
{
    hookloop *L = user;
    hl_test_probe(L, "fd_deregister", fd, NULL);
    hl_reg *r = for_app_registration;
    pthread_mutex_lock(&L->lock);
    L->t_fd_deregister++;
    if (!r || !r->used || r->fd != fd)
        L->t_bad_registration++;
    else
        r->used = HL_FREE;
    pthread_mutex_unlock(&L->lock);
}

static int hl_timeout_register(void *user, void **for_app_registration_out,
                               struct timeval abs, void *for_libxl)
{
    hookloop *L = user;
    hl_test_probe(L, "timeout_register", -1, for_libxl);
    hl_reg r = { .used = HL_REGISTERED, .fd = -1, .abs = abs, .for_libxl = for_libxl };
    return hl_insert(L, L->timeouts, &L->t_timeout_register, &L->t_fail_timeout_register, r,
                     for_app_registration_out);
}

/* Only ever called with abs = {0,0}: "fire as soon as possible".  It may
 * race with the loop reporting this timeout: a slot being reported is
 * left alone. */
static int hl_timeout_modify(void *user, void **for_app_registration_update,
                             struct timeval abs)
{
    hookloop *L = user;
    hl_test_probe(L, "timeout_modify", -1, NULL);
    hl_reg *t = *for_app_registration_update;
    pthread_mutex_lock(&L->lock);
    L->t_timeout_modify++;
    if (abs.tv_sec || abs.tv_usec)
        L->t_timeout_modify_not_now++;
    if (!t || t->used == HL_FREE) {
        L->t_bad_registration++;
    } else if (t->used == HL_REGISTERED) {
        t->abs = abs;
        hl_wake(L);
    }
    pthread_mutex_unlock(&L->lock);
    return 0;
}

/* libxl never calls this (it is part of a deprecated mode of use). */
static void hl_timeout_deregister(void *user, void *for_app_registration)
{
    hookloop *L = user;
    (void)for_app_registration;
    pthread_mutex_lock(&L->lock);
    L->t_timeout_deregister++;
    pthread_mutex_unlock(&L->lock);
}

static const libxl_osevent_hooks hookloop_hooks = {
    .fd_register = hl_fd_register,
    .fd_modify = hl_fd_modify,
    .fd_deregister = hl_fd_deregister,
    .timeout_register = hl_timeout_register,
    .timeout_modify = hl_timeout_modify,
    .timeout_deregister = hl_timeout_deregister,
};

/*---------- setup ----------*/

static void hookloop_init(hookloop *L)
{
    memset(L, 0, sizeof(*L));
    pthread_mutex_init(&L->lock, NULL);
    if (pipe(L->wake)) {
        perror("hookloop: pipe");
        abort();
    }
    for (int i = 0; i < 2; i++) {
        fcntl(L->wake[i], F_SETFL, O_NONBLOCK);
        fcntl(L->wake[i], F_SETFD, FD_CLOEXEC);
    }
}

/* Call right after libxl_ctx_alloc, before any operation. */
static void hookloop_attach(libxl_ctx *ctx, hookloop *L)
{
    libxl_osevent_register_hooks(ctx, &hookloop_hooks, L);
}

/* After libxl_ctx_free: drops what is left (see the invariants). */
static void hookloop_destroy(hookloop *L)
{
    close(L->wake[0]);
    close(L->wake[1]);
    pthread_mutex_destroy(&L->lock);
}

/*---------- the loop ----------*/

static struct timeval hl_now(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return tv;
}

static double hl_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int hl_ms_until(struct timeval abs, struct timeval now)
{
    long long us = (abs.tv_sec - now.tv_sec) * 1000000LL + (abs.tv_usec - now.tv_usec);
    return us <= 0 ? 0 : (int)((us + 999) / 1000);
}

/* One turn: sleep (at most max_ms) until a registered fd is ready or a
 * timeout is due, then report to libxl.  Returns 0, or -1 if poll fails. */
static int hookloop_run_once(libxl_ctx *ctx, hookloop *L, int max_ms)
{
    struct pollfd pfd[HL_MAX + 1];
    void *for_libxl[HL_MAX + 1];
    int n = 0, timeout = max_ms;

    pthread_mutex_lock(&L->lock);
    pfd[n++] = (struct pollfd){ .fd = L->wake[0], .events = POLLIN };
    for (int i = 0; i < HL_MAX; i++) {
        hl_reg *r = &L->fds[i];
        if (!r->used || !r->events)
            continue;
        pfd[n] = (struct pollfd){ .fd = r->fd, .events = r->events };
        for_libxl[n++] = r->for_libxl;
    }
    struct timeval now = hl_now();
    for (int i = 0; i < HL_MAX; i++) {
        if (L->timeouts[i].used != HL_REGISTERED)
            continue;
        int ms = hl_ms_until(L->timeouts[i].abs, now);
        if (timeout < 0 || ms < timeout)
            timeout = ms;
    }
    pthread_mutex_unlock(&L->lock);

    if (poll(pfd, n, timeout) < 0 && errno != EINTR)
        return -1;

    hl_running = L;
    if (pfd[0].revents) {
        char buf[64];
        while (read(L->wake[0], buf, sizeof(buf)) > 0)
            ;
    }
    for (int i = 1; i < n; i++) {
        if (pfd[i].revents)
            libxl_osevent_occurred_fd(ctx, for_libxl[i], pfd[i].fd,
                                      pfd[i].events, pfd[i].revents);
    }
    /* Due timeouts: mark them as being reported, report them, then free
     * their slots. */
    hl_reg *due[HL_MAX];
    int ndue = 0;
    pthread_mutex_lock(&L->lock);
    now = hl_now();
    for (int i = 0; i < HL_MAX; i++) {
        hl_reg *t = &L->timeouts[i];
        if (t->used == HL_REGISTERED && hl_ms_until(t->abs, now) == 0) {
            t->used = HL_REPORTING;
            due[ndue++] = t;
        }
    }
    pthread_mutex_unlock(&L->lock);
    for (int i = 0; i < ndue; i++) {
        libxl_osevent_occurred_timeout(ctx, due[i]->for_libxl);
        pthread_mutex_lock(&L->lock);
        due[i]->used = HL_FREE;
        pthread_mutex_unlock(&L->lock);
    }
    hl_running = NULL;
    return 0;
}

/*---------- test helpers ----------*/

/* Runs the loop for about ms milliseconds. */
static __attribute__((unused)) void hookloop_run_for(libxl_ctx *ctx, hookloop *L, int ms)
{
    double end = hl_now_ms() + ms;
    for (double left; (left = end - hl_now_ms()) > 0;)
        if (hookloop_run_once(ctx, L, (int)left + 1))
            break;
}

/* Runs the loop until *counter >= target; 0 if timeout_ms passed first. */
static __attribute__((unused)) int hookloop_run_until(libxl_ctx *ctx, hookloop *L,
                                                      volatile int *counter, int target,
                                                      int timeout_ms)
{
    double end = hl_now_ms() + timeout_ms;
    while (*counter < target) {
        double left = end - hl_now_ms();
        if (left <= 0)
            return 0;
        if (hookloop_run_once(ctx, L, left > 100 ? 100 : (int)left + 1))
            return 0;
    }
    return 1;
}

/* A thread running the loop, from hookloop_thread_start until
 * hookloop_thread_stop. */
typedef struct {
    libxl_ctx *ctx;
    hookloop *L;
    int stop;            /* atomic */
    pthread_t th;
} hookloop_thread;

static void *hl_thread_main(void *arg)
{
    hookloop_thread *T = arg;
    while (!__atomic_load_n(&T->stop, __ATOMIC_SEQ_CST))
        hookloop_run_once(T->ctx, T->L, 100);
    return NULL;
}

static __attribute__((unused)) void hookloop_thread_start(hookloop_thread *T, libxl_ctx *ctx,
                                                          hookloop *L)
{
    *T = (hookloop_thread){ .ctx = ctx, .L = L };
    pthread_create(&T->th, NULL, hl_thread_main, T);
}

static __attribute__((unused)) void hookloop_thread_stop(hookloop_thread *T)
{
    __atomic_store_n(&T->stop, 1, __ATOMIC_SEQ_CST);
    hl_wake(T->L);
    pthread_join(T->th, NULL);
}

/* Counts live registrations: fds, timeouts, and of those timeouts the
 * ones libxl asked to fire now. */
static __attribute__((unused)) void hookloop_count(hookloop *L, int *nfds, int *ntimeouts,
                                                   int *nnow)
{
    int f = 0, t = 0, z = 0;
    pthread_mutex_lock(&L->lock);
    for (int i = 0; i < HL_MAX; i++) {
        f += L->fds[i].used;
        if (L->timeouts[i].used) {
            t++;
            z += !L->timeouts[i].abs.tv_sec && !L->timeouts[i].abs.tv_usec;
        }
    }
    pthread_mutex_unlock(&L->lock);
    *nfds = f;
    *ntimeouts = t;
    if (nnow)
        *nnow = z;
}

/* The registration of fd, or NULL. */
static __attribute__((unused)) hl_reg *hookloop_find_fd(hookloop *L, int fd)
{
    hl_reg *found = NULL;
    pthread_mutex_lock(&L->lock);
    for (int i = 0; i < HL_MAX && !found; i++)
        if (L->fds[i].used && L->fds[i].fd == fd)
            found = &L->fds[i];
    pthread_mutex_unlock(&L->lock);
    return found;
}

#endif /* XL_TEST_HOOKLOOP_H */
