/*
 * test_osevent_hooks.c - libxl_osevent_register_hooks and
 * libxl_osevent_occurred_fd/_timeout, against a model of the
 * application's registry (hookloop.h: a minimal poll() loop driven only
 * by the hooks; nothing calls beforepoll/afterpoll or libxl_event_wait).
 *
 * Scenario, one case each:
 *  - fd roundtrip: a callback libxl_test_fdevent op registers its fd
 *    (fd_register), the pipe becomes readable, the loop reports it
 *    (occurred_fd), the op completes and the fd is deregistered with the
 *    application's own registration value;
 *  - every kind of hook is called with the ctx lock held (a second
 *    thread's libxl call cannot finish while the hook runs);
 *  - libxl_test_fdmodify: the change of events reaches fd_modify, the
 *    registration value and for_libxl are kept, a report for the old
 *    events is ignored, events 0 keep a quiet registration; a failing
 *    fd_modify fails the op with the hook's
 *    value and the value it stored is honoured by fd_deregister;
 *  - timeouts fire through occurred_timeout (no modify needed);
 *  - a timeout deregistered early (abort) is modified to {0,0} ("now"),
 *    never deregistered, and consumed when the loop reports it;
 *  - stale fd and timeout tokens (after deregistration, after the slot
 *    was reused, duplicated deliveries) and forged values are ignored and
 *    logged at DEBUG (never ERROR);
 *  - fd_register/timeout_register failing (ERROR_OSEVENT_REG_FAIL or a
 *    positive int) fail the op with that value in every mode and leave
 *    the registry clean; later ops work;
 *  - libxl_ctx_free with ops in progress deregisters every fd; what is
 *    left are timeouts libxl asked to fire now;
 *  - mixing styles: synchronous ops in the main thread complete while a
 *    loop thread delivers occurred_* calls (and a callback op is
 *    completed by that loop thread alone);
 *  - fatal misuse, each in a forked child that must die by SIGABRT with
 *    the rule on stderr (a watchdog turns a deadlock into a FAIL):
 *    occurred_fd called from inside fd_register, occurred_timeout from
 *    inside timeout_modify, and libxl_osevent_register_hooks after an fd
 *    was registered.
 * Every case also checks, after libxl_ctx_free, that no fd is left in
 * the registry, that timeout_deregister was never called, that
 * timeout_modify only ever got {0,0} and that each hook got a valid
 * registration value.
 * Success: every case PASS, in about a second.
 * Failure: a FAIL line naming the case and the first failed check; a
 * hang becomes a FAIL through the watchdog.
 */
#include "harness.h"
#include "fatal.h"
#include "hookloop.h"

#include <stdint.h>
#include <sys/socket.h>

#include <libxl_test_fdevent.h>
#include <libxl_test_fdmodify.h>
#include <libxl_test_progress.h>

static int slow;   /* XL_TEST_SLOW (valgrind): longer waits */

/*---------- a logger that counts what the library reports ----------*/

typedef struct {
    xentoollog_logger vtable;
    pthread_mutex_t mu;
    int show;           /* forward messages at or above this level */
    int ignored;        /* DEBUG messages saying a report was ignored */
    int errors;         /* messages at ERROR or above */
} counting_logger;

static void counting_vmessage(xentoollog_logger *lg, xentoollog_level level,
                              int errnoval, const char *context,
                              const char *format, va_list al)
{
    counting_logger *c = (counting_logger *)lg;
    char msg[1024];
    vsnprintf(msg, sizeof(msg), format, al);
    (void)errnoval;
    pthread_mutex_lock(&c->mu);
    if (level == XTL_DEBUG && strstr(msg, "ignored"))
        c->ignored++;
    if (level >= XTL_ERROR)
        c->errors++;
    pthread_mutex_unlock(&c->mu);
    if ((int)level >= c->show)
        fprintf(stderr, "%s: %s: %s\n", context ? context : "", xtl_level_to_string(level), msg);
}

static void counting_destroy(xentoollog_logger *lg) { (void)lg; }

static counting_logger clog = {
    .vtable = { .vmessage = counting_vmessage, .destroy = counting_destroy },
    .mu = PTHREAD_MUTEX_INITIALIZER,
};

static int clog_get(int *field)
{
    pthread_mutex_lock(&clog.mu);
    int v = *field;
    pthread_mutex_unlock(&clog.mu);
    return v;
}

/* Checks that since the counts were ign and err, at least n reports
 * were logged as ignored at DEBUG, and nothing at ERROR. */
static void expect_ignored(int ign, int err, int n)
{
    int nign = clog_get(&clog.ignored) - ign;
    if (nign < n)
        case_fail("%d of %d ignored reports logged at DEBUG", nign, n);
    CHECK_RC(clog_get(&clog.errors), err);
}

/*---------- helpers ----------*/

typedef struct {
    volatile int n;
    volatile int rc;
} done_t;

static void op_done(libxl_ctx *ctx, int rc, void *for_callback)
{
    done_t *d = for_callback;
    (void)ctx;
    d->rc = rc;
    __atomic_add_fetch(&d->n, 1, __ATOMIC_SEQ_CST);
}

static libxl_asyncop_how cb_how(done_t *d)
{
    libxl_asyncop_how h = { .callback = op_done };
    h.u.for_callback = d;
    return h;
}

/* Opens pipe p and starts a callback-mode libxl_test_fdevent op waiting
 * for p[0] to be readable, completing into *d. Returns its ao_how. */
static libxl_asyncop_how start_fd_op(libxl_ctx *ctx, int p[2], done_t *d)
{
    test_pipe(p);
    libxl_asyncop_how how = cb_how(d);
    CHECK_RC(libxl_test_fdevent(ctx, p[0], POLLIN, &how), 0);
    return how;
}

/* Starts a callback-mode op whose one osevent is a 60 s timeout
 * (libxl_test_progress, count 1, aop_how NULL), completing into *d.
 * Returns its ao_how. */
static libxl_asyncop_how start_timeout_op(libxl_ctx *ctx, done_t *d)
{
    libxl_asyncop_how how = cb_how(d);
    CHECK_RC(libxl_test_progress(ctx, 1, 60000, NULL, &how), 0);
    return how;
}

static libxl_ctx *hooked_ctx(hookloop *L)
{
    hookloop_init(L);
    libxl_ctx *ctx = test_ctx(&clog.vtable);
    hookloop_attach(ctx, L);
    return ctx;
}

/* Starts a case on a ctx with hooks (see hooked_case_end). */
static libxl_ctx *hooked_case(const char *name, hookloop *L)
{
    case_begin(name);
    return hooked_ctx(L);
}

/* Frees the ctx, then checks what every case must leave behind. */
static void hooked_free(libxl_ctx *ctx, hookloop *L)
{
    libxl_ctx_free(ctx);
    int nfds, nt, nnow;
    hookloop_count(L, &nfds, &nt, &nnow);
    if (nfds)
        case_fail("%d fd(s) still registered after libxl_ctx_free", nfds);
    if (nt != nnow)
        case_fail("%d timeout(s) left after libxl_ctx_free that libxl did not ask to fire now", nt - nnow);
    CHECK_RC(L->t_timeout_deregister, 0);
    CHECK_RC(L->t_timeout_modify_not_now, 0);
    CHECK_RC(L->t_bad_registration, 0);
    hookloop_destroy(L);
}

static void hooked_case_end(libxl_ctx *ctx, hookloop *L)
{
    hooked_free(ctx, L);
    case_end();
}

/* Runs the loop until d completes: with want_rc, and within prompt_ms()
 * of `due` (now_ms() when its cause happened, e.g. a pipe written). */
static void wait_done(libxl_ctx *ctx, hookloop *L, done_t *d, int want_rc, const char *what,
                      double due)
{
    if (!hookloop_run_until(ctx, L, &d->n, 1, slow ? 30000 : 5000))
        case_fail("%s: no completion within the time limit", what);
    else if (d->rc != want_rc)
        case_fail("%s: completed with rc %d, expected %d", what, d->rc, want_rc);
    else
        CHECK_PROMPT(due, what);
}

static void close_pair(int p[2])
{
    close(p[0]);
    close(p[1]);
}

/* The for_libxl of the (only) live timeout registration, or NULL. */
static void *live_timeout(hookloop *L)
{
    void *v = NULL;
    pthread_mutex_lock(&L->lock);
    for (int i = 0; i < HL_MAX && !v; i++)
        if (L->timeouts[i].used)
            v = L->timeouts[i].for_libxl;
    pthread_mutex_unlock(&L->lock);
    return v;
}

/* Our tokens keep the slot number in the low 32 bits (the rest is the
 * generation): two values with equal low bits name the same slot. */
static int same_slot(void *a, void *b)
{
    return ((uintptr_t)a & 0xffffffffu) == ((uintptr_t)b & 0xffffffffu);
}

/*---------- cases ----------*/

static void case_fd_roundtrip(void)
{
    hookloop L;
    libxl_ctx *ctx = hooked_case("fd_roundtrip_register_readable_occurred_deregister", &L);
    int p[2];
    done_t d = { 0 };
    start_fd_op(ctx, p, &d);
    hl_reg *r = hookloop_find_fd(&L, p[0]);
    CHECK(r && r->events == POLLIN && r->for_libxl);
    CHECK_RC(L.t_fd_register, 1);
    hookloop_run_for(ctx, &L, 30);
    CHECK_RC(d.n, 0);                        /* not before it is readable */
    pipe_poke(p[1]);
    wait_done(ctx, &L, &d, 0, "fdevent", now_ms());
    CHECK(hookloop_find_fd(&L, p[0]) == NULL);
    CHECK_RC(L.t_fd_deregister, 1);
    CHECK_RC(L.t_bad_registration, 0);       /* with our registration value */
    hookloop_run_for(ctx, &L, 10);
    CHECK_RC(d.n, 1);
    close_pair(p);
    hooked_case_end(ctx, &L);
}

/* A helper thread calls libxl_event_check while a hook sleeps; it may
 * only return after the hook has returned. */
static struct {
    libxl_ctx *ctx;
    const char *hook;
    pthread_t th;
    int started;
    double hook_end, helper_end;
} lk;

static void *lk_helper(void *arg)
{
    libxl_event *ev = NULL;
    (void)arg;
    if (libxl_event_check(lk.ctx, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL) == 0)
        libxl_event_free(lk.ctx, ev);
    lk.helper_end = now_ms();
    return NULL;
}

static void lk_probe(hookloop *L, const char *hook, int fd, void *for_libxl)
{
    (void)L; (void)fd; (void)for_libxl;
    if (lk.started || strcmp(hook, lk.hook))
        return;
    lk.started = 1;
    pthread_create(&lk.th, NULL, lk_helper, NULL);
    usleep(50000);
    lk.hook_end = now_ms();
}

static void lk_expect(const char *hook)
{
    if (!lk.started) {
        case_fail("%s was not called", hook);
        return;
    }
    pthread_join(lk.th, NULL);
    if (lk.helper_end < lk.hook_end)
        case_fail("a libxl call returned while %s was running: the ctx lock was not held", hook);
}

static void lk_arm(const char *hook)
{
    lk.hook = hook;
    lk.started = 0;
}

static void case_lock_held(void)
{
    hookloop L;
    libxl_ctx *ctx = hooked_case("hooks_are_called_with_the_ctx_lock_held", &L);
    lk.ctx = ctx;
    L.t_in_hook = lk_probe;
    int p[2];
    done_t d = { 0 }, t = { 0 };

    lk_arm("fd_register");
    start_fd_op(ctx, p, &d);
    lk_expect("fd_register");

    lk_arm("fd_deregister");
    pipe_poke(p[1]);
    wait_done(ctx, &L, &d, 0, "fdevent", now_ms());
    lk_expect("fd_deregister");

    lk_arm("timeout_register");
    libxl_asyncop_how thow = start_timeout_op(ctx, &t);
    lk_expect("timeout_register");

    lk_arm("timeout_modify");
    CHECK_RC(libxl_ao_abort(ctx, &thow), 0);
    lk_expect("timeout_modify");
    CHECK_RC(t.rc, ERROR_ABORTED);

    L.t_in_hook = NULL;
    close_pair(p);
    hooked_case_end(ctx, &L);
}

static void socket_pair(int s[2])
{
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, s)) {
        perror("socketpair");
        exit(1);
    }
}

/* Opens socket pair s and starts a callback-mode libxl_test_fdmodify op
 * on s[0]: POLLOUT (ready at once), then `events`; completing into *d.
 * Returns its ao_how. */
static libxl_asyncop_how start_modify_op(libxl_ctx *ctx, int s[2], done_t *d, short events)
{
    socket_pair(s);
    libxl_asyncop_how how = cb_how(d);
    CHECK_RC(libxl_test_fdmodify(ctx, s[0], POLLOUT, events, &how), 0);
    return how;
}

static void case_modify(void)
{
    hookloop L;
    libxl_ctx *ctx = hooked_case("modify_on_events_change_keeps_the_registration", &L);
    int s[2];
    done_t d = { 0 };
    /* Writable at once; then wait for readable. */
    start_modify_op(ctx, s, &d, POLLIN);
    hl_reg *r = hookloop_find_fd(&L, s[0]);
    CHECK(r && r->events == POLLOUT);
    void *tok = r ? r->for_libxl : NULL;
    if (!hookloop_run_until(ctx, &L, &L.t_fd_modify, 1, 5000))
        case_fail("fd_modify not called");
    hl_reg *r2 = hookloop_find_fd(&L, s[0]);
    CHECK(r2 == r);                            /* same registration value */
    CHECK(r2 && r2->events == POLLIN && r2->for_libxl == tok);
    CHECK_RC(d.n, 0);
    /* A late report for the old events (the socket is still writable). */
    libxl_osevent_occurred_fd(ctx, tok, s[0], POLLOUT, POLLOUT);
    hookloop_run_for(ctx, &L, 20);
    CHECK_RC(d.n, 0);
    pipe_poke(s[1]);
    wait_done(ctx, &L, &d, 0, "fdmodify", now_ms());
    CHECK(hookloop_find_fd(&L, s[0]) == NULL);
    CHECK_RC(L.t_fd_modify, 1);
    close_pair(s);
    hooked_case_end(ctx, &L);
}

/* libxl may register or modify with events 0: the registration stays,
 * reports nothing, and ends normally. */
static void case_modify_to_no_events(void)
{
    hookloop L;
    libxl_ctx *ctx = hooked_case("modify_to_no_events_keeps_a_quiet_registration", &L);
    int s[2];
    done_t d = { 0 };
    libxl_asyncop_how how = start_modify_op(ctx, s, &d, 0);
    if (!hookloop_run_until(ctx, &L, &L.t_fd_modify, 1, 5000))
        case_fail("fd_modify not called");
    hl_reg *r = hookloop_find_fd(&L, s[0]);
    CHECK(r && r->events == 0);
    pipe_poke(s[1]);
    hookloop_run_for(ctx, &L, 20);
    CHECK_RC(d.n, 0);
    CHECK_RC(libxl_ao_abort(ctx, &how), 0);
    CHECK(d.n == 1 && d.rc == ERROR_ABORTED);
    CHECK(hookloop_find_fd(&L, s[0]) == NULL);
    close_pair(s);
    hooked_case_end(ctx, &L);
}

static void case_modify_failure(void)
{
    hookloop L;
    libxl_ctx *ctx = hooked_case("failing_fd_modify_fails_the_op_and_its_updated_value_is_kept", &L);
    L.t_fail_fd_modify = 7;      /* moves the registration, then fails */
    int s[2];
    done_t d = { 0 };
    start_modify_op(ctx, s, &d, POLLIN);
    hl_reg *r = hookloop_find_fd(&L, s[0]);
    wait_done(ctx, &L, &d, 7, "fdmodify with failing fd_modify", now_ms());
    CHECK_RC(L.t_fd_modify, 1);
    CHECK_RC(L.t_fd_deregister, 1);
    CHECK_RC(L.t_bad_registration, 0);   /* deregister got the moved slot */
    CHECK(hookloop_find_fd(&L, s[0]) == NULL);
    CHECK(r != NULL && !r->used);
    close_pair(s);
    hooked_case_end(ctx, &L);
}

static void case_timeouts_fire(void)
{
    hookloop L;
    libxl_ctx *ctx = hooked_case("timeouts_fire_through_occurred_timeout", &L);
    done_t d = { 0 };
    libxl_asyncop_how how = cb_how(&d);
    double t0 = now_ms();
    CHECK_RC(libxl_test_progress(ctx, 3, 20, NULL, &how), 0);
    CHECK_RC(L.t_timeout_register, 1);
    wait_done(ctx, &L, &d, 0, "progress", t0 + 3 * 20);
    double ms = now_ms() - t0;
    if (ms < 59)
        case_fail("3 timeouts of 20 ms done in %.1f ms: fired early", ms);
    CHECK_RC(L.t_timeout_register, 3);
    CHECK_RC(L.t_timeout_modify, 0);     /* reported ones need no modify */
    int nfds, nt;
    hookloop_count(&L, &nfds, &nt, NULL);
    CHECK_RC(nt, 0);
    hooked_case_end(ctx, &L);
}

static void case_deregistered_timeout(void)
{
    hookloop L;
    libxl_ctx *ctx = hooked_case("deregistered_timeout_is_modified_to_now_never_deregistered", &L);
    done_t d = { 0 };
    libxl_asyncop_how how = start_timeout_op(ctx, &d);
    void *nexus = live_timeout(&L);
    CHECK(nexus != NULL);
    CHECK_RC(libxl_ao_abort(ctx, &how), 0);
    CHECK_RC(d.n, 1);
    CHECK_RC(d.rc, ERROR_ABORTED);
    CHECK_RC(L.t_timeout_modify, 1);
    CHECK_RC(L.t_timeout_modify_not_now, 0);
    CHECK_RC(L.t_timeout_deregister, 0);
    int nfds, nt, nnow;
    hookloop_count(&L, &nfds, &nt, &nnow);
    CHECK(nt == 1 && nnow == 1);          /* kept until the loop reports it */
    hookloop_run_once(ctx, &L, 0);
    hookloop_count(&L, &nfds, &nt, &nnow);
    CHECK_RC(nt, 0);
    int ign = clog_get(&clog.ignored);
    libxl_osevent_occurred_timeout(ctx, nexus);    /* duplicate report */
    CHECK(clog_get(&clog.ignored) > ign);
    CHECK_RC(d.n, 1);
    hooked_case_end(ctx, &L);
}

static void case_stale_fd_tokens(void)
{
    hookloop L;
    libxl_ctx *ctx = hooked_case("stale_duplicated_and_forged_fd_tokens_are_ignored", &L);
    int pa[2], pb[2];
    done_t da = { 0 }, db = { 0 };
    start_fd_op(ctx, pa, &da);
    hl_reg *ra = hookloop_find_fd(&L, pa[0]);
    void *tok_a = ra ? ra->for_libxl : NULL;
    pipe_poke(pa[1]);
    wait_done(ctx, &L, &da, 0, "op A", now_ms());
    start_fd_op(ctx, pb, &db);
    hl_reg *rb = hookloop_find_fd(&L, pb[0]);
    void *tok_b = rb ? rb->for_libxl : NULL;
    CHECK(tok_a && tok_b && tok_a != tok_b);
    if (!same_slot(tok_a, tok_b))
        case_fail("precondition: B's registration did not reuse A's slot");
    pipe_poke(pb[1]);              /* B is ready, but not yet reported */

    int ign = clog_get(&clog.ignored), err = clog_get(&clog.errors);
    libxl_osevent_occurred_fd(ctx, tok_a, pa[0], POLLIN, POLLIN);  /* after deregister */
    libxl_osevent_occurred_fd(ctx, tok_a, pb[0], POLLIN, POLLIN);  /* after slot reuse */
    void *forged[] = { NULL, (void *)1, (void *)-1, (void *)0xdeadbeef00000000ull,
                       (void *)((uintptr_t)tok_b ^ (1ull << 40)), /* other generation */
                       (void *)((uintptr_t)tok_b | (1u << 31)),   /* a timeout's tag */
                       &L };
    for (size_t i = 0; i < sizeof(forged) / sizeof(forged[0]); i++)
        libxl_osevent_occurred_fd(ctx, forged[i], pb[0], POLLIN, POLLIN);
    libxl_osevent_occurred_fd(ctx, tok_b, pa[0], POLLIN, POLLIN);  /* right token, wrong fd */
    CHECK_RC(db.n, 0);
    expect_ignored(ign, err, 10);

    libxl_osevent_occurred_fd(ctx, tok_b, pb[0], POLLIN, POLLIN);
    CHECK_RC(db.n, 1);
    CHECK_RC(db.rc, 0);
    libxl_osevent_occurred_fd(ctx, tok_b, pb[0], POLLIN, POLLIN);  /* duplicate */
    CHECK_RC(db.n, 1);
    CHECK(hookloop_find_fd(&L, pb[0]) == NULL);
    close_pair(pa);
    close_pair(pb);
    hooked_case_end(ctx, &L);
}

static void case_stale_timeout_tokens(void)
{
    hookloop L;
    libxl_ctx *ctx = hooked_case("stale_duplicated_and_forged_timeout_tokens_are_ignored", &L);
    done_t d1 = { 0 }, d2 = { 0 }, df = { 0 };
    libxl_asyncop_how h1 = cb_how(&d1);
    double t1 = now_ms();
    CHECK_RC(libxl_test_progress(ctx, 1, 5, NULL, &h1), 0);
    void *n1 = live_timeout(&L);
    wait_done(ctx, &L, &d1, 0, "first timeout op", t1 + 5);
    libxl_asyncop_how h2 = start_timeout_op(ctx, &d2);
    void *n2 = live_timeout(&L);
    CHECK(n1 && n2 && n1 != n2);
    if (!same_slot(n1, n2))
        case_fail("precondition: the second timeout did not reuse the first's slot");
    int p[2];
    libxl_asyncop_how hf = start_fd_op(ctx, p, &df);
    hl_reg *rf = hookloop_find_fd(&L, p[0]);
    void *fd_tok = rf ? rf->for_libxl : NULL;

    int ign = clog_get(&clog.ignored), err = clog_get(&clog.errors);
    libxl_osevent_occurred_timeout(ctx, n1);          /* stale, slot reused */
    libxl_osevent_occurred_timeout(ctx, fd_tok);      /* an fd's token */
    libxl_osevent_occurred_timeout(ctx, NULL);
    libxl_osevent_occurred_timeout(ctx, (void *)-1);
    libxl_osevent_occurred_timeout(ctx, &L);
    CHECK_RC(d2.n, 0);
    CHECK_RC(df.n, 0);
    expect_ignored(ign, err, 5);

    CHECK_RC(libxl_ao_abort(ctx, &h2), 0);
    CHECK_RC(d2.rc, ERROR_ABORTED);
    hookloop_run_once(ctx, &L, 0);                    /* reports n2 */
    libxl_osevent_occurred_timeout(ctx, n2);          /* duplicate */
    CHECK_RC(d2.n, 1);
    CHECK_RC(libxl_ao_abort(ctx, &hf), 0);
    CHECK_RC(df.n, 1);
    close_pair(p);
    hooked_case_end(ctx, &L);
}

static void case_register_failure(void)
{
    hookloop L;
    libxl_ctx *ctx = hooked_case("failing_register_hook_fails_the_op_and_leaves_the_registry_clean", &L);
    int p[2];
    test_pipe(p);
    pipe_poke(p[1]);           /* would complete at once if registered */
    done_t d = { 0 };
    libxl_asyncop_how how = cb_how(&d);
    libxl_asyncop_how evh = { .callback = NULL };
    evh.u.for_event = 99;

    const int fails[] = { ERROR_OSEVENT_REG_FAIL, 5 };
    for (int i = 0; i < 2; i++) {
        L.t_fail_fd_register = fails[i];
        CHECK_RC(libxl_test_fdevent(ctx, p[0], POLLIN, &how), fails[i]);
        CHECK_RC(libxl_test_fdevent(ctx, p[0], POLLIN, &evh), fails[i]);
        CHECK_RC(libxl_test_fdevent(ctx, p[0], POLLIN, NULL), fails[i]);
        L.t_fail_fd_register = 0;
        L.t_fail_timeout_register = fails[i];
        CHECK_RC(libxl_test_progress(ctx, 1, 1, NULL, &how), fails[i]);
        CHECK_RC(libxl_test_progress(ctx, 1, 1, NULL, NULL), fails[i]);
        L.t_fail_timeout_register = 0;
    }
    int nfds, nt;
    hookloop_count(&L, &nfds, &nt, NULL);
    CHECK(nfds == 0 && nt == 0);
    CHECK_RC(L.t_fd_deregister, 0);
    hookloop_run_for(ctx, &L, 10);
    CHECK_RC(d.n, 0);                    /* failed ops report nothing */
    libxl_event *ev = NULL;
    CHECK_RC(libxl_event_check(ctx, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL), ERROR_NOT_READY);

    /* The registry is consistent: the same ops now work. */
    double t0 = now_ms();
    CHECK_RC(libxl_test_fdevent(ctx, p[0], POLLIN, &how), 0);
    wait_done(ctx, &L, &d, 0, "fdevent after failures", t0);
    done_t t = { 0 };
    libxl_asyncop_how thow = cb_how(&t);
    t0 = now_ms();
    CHECK_RC(libxl_test_progress(ctx, 1, 1, NULL, &thow), 0);
    wait_done(ctx, &L, &t, 0, "progress after failures", t0 + 1);
    close_pair(p);
    hooked_case_end(ctx, &L);
}

static void case_ctx_free(void)
{
    hookloop L;
    libxl_ctx *ctx = hooked_case("ctx_free_with_ops_in_progress_empties_the_registry", &L);
    int p[2];
    done_t d = { 0 }, t = { 0 };
    start_fd_op(ctx, p, &d);
    start_timeout_op(ctx, &t);
    int nfds, nt;
    hookloop_count(&L, &nfds, &nt, NULL);
    CHECK(nfds == 1 && nt == 1);
    hooked_free(ctx, &L);        /* checks: no fd left, timeouts "now" */
    CHECK_RC(L.t_fd_deregister, 1);
    CHECK(d.n == 0 && t.n == 0); /* discarded ops never complete */
    close_pair(p);
    case_end();
}

/* Mixing styles: a loop thread delivers occurred_* while the main thread
 * runs synchronous ops (libxl's own poller also watches every osevent). */
static void *mix_poker(void *arg)
{
    usleep(5000);
    pipe_poke(*(int *)arg);
    return NULL;
}

static void case_mixing_styles(void)
{
    hookloop L;
    libxl_ctx *ctx = hooked_case("sync_ops_complete_while_a_loop_thread_delivers_occurred_calls", &L);
    hookloop_thread loop;
    hookloop_thread_start(&loop, ctx, &L);
    for (int i = 0; i < 10; i++) {
        int p[2], s[2];
        test_pipe(p);
        socket_pair(s);
        pthread_t poker;
        pthread_create(&poker, NULL, mix_poker, &p[1]);
        CHECK_RC(libxl_test_fdevent(ctx, p[0], POLLIN, NULL), 0);
        pthread_join(poker, NULL);
        CHECK_RC(libxl_test_progress(ctx, 2, 2, NULL, NULL), 0);
        pthread_create(&poker, NULL, mix_poker, &s[1]);
        CHECK_RC(libxl_test_fdmodify(ctx, s[0], POLLOUT, POLLIN, NULL), 0);
        pthread_join(poker, NULL);
        /* No thread of libxl's is waiting now: only the loop thread can
         * complete this one. */
        done_t d = { 0 };
        libxl_asyncop_how how = cb_how(&d);
        double t0 = now_ms();
        CHECK_RC(libxl_test_fdevent(ctx, p[0], POLLIN, &how), 0);
        for (double end = now_ms() + (slow ? 30000 : 5000); !d.n && now_ms() < end;)
            usleep(1000);
        if (d.n != 1 || d.rc != 0)
            case_fail("callback op: %d completions, rc %d", d.n, d.rc);
        /* its pipe is still readable: the loop thread completes it at once */
        CHECK_PROMPT(t0, "the loop thread completing an op on a readable pipe");
        close_pair(p);
        close_pair(s);
    }
    hookloop_thread_stop(&loop);
    /* Timeouts the sync ops' own poller fired were modified to "now":
     * the loop reports them and the registry drains. */
    int nfds = 0, nt = 1;
    for (int i = 0; i < 100 && (nfds || nt); i++) {
        hookloop_run_once(ctx, &L, 10);
        hookloop_count(&L, &nfds, &nt, NULL);
    }
    CHECK(nfds == 0 && nt == 0);
    hooked_case_end(ctx, &L);
}

/*---------- fatal misuse (forked children) ----------*/

static hookloop fL;
static libxl_ctx *fctx;

static void reenter_occurred_fd(hookloop *L, const char *hook, int fd, void *for_libxl)
{
    (void)L;
    if (!strcmp(hook, "fd_register"))
        libxl_osevent_occurred_fd(fctx, for_libxl, fd, POLLIN, POLLIN);
}

static void reenter_occurred_timeout(hookloop *L, const char *hook, int fd, void *for_libxl)
{
    (void)L; (void)fd;
    if (!strcmp(hook, "timeout_modify"))
        libxl_osevent_occurred_timeout(fctx, for_libxl);
}

static void child_reenter_fd(void *arg)
{
    (void)arg;
    fctx = hooked_ctx(&fL);
    fL.t_in_hook = reenter_occurred_fd;
    int p[2];
    test_pipe(p);
    done_t d = { 0 };
    libxl_asyncop_how how = cb_how(&d);
    libxl_test_fdevent(fctx, p[0], POLLIN, &how);
}

static void child_reenter_timeout(void *arg)
{
    (void)arg;
    fctx = hooked_ctx(&fL);
    fL.t_in_hook = reenter_occurred_timeout;
    done_t d = { 0 };
    libxl_asyncop_how how = cb_how(&d);
    libxl_test_progress(fctx, 1, 60000, NULL, &how);
    libxl_ao_abort(fctx, &how);
}

static void child_late_hooks(void *arg)
{
    (void)arg;
    hookloop_init(&fL);
    fctx = test_ctx(&clog.vtable);
    int p[2];
    test_pipe(p);
    done_t d = { 0 };
    libxl_asyncop_how how = cb_how(&d);
    libxl_test_fdevent(fctx, p[0], POLLIN, &how);
    hookloop_attach(fctx, &fL);
}

static void case_fatal(const char *name, void (*child)(void *), const char *expect)
{
    case_begin(name);
    expect_abort(child, NULL, expect, slow ? 60 : 10);
    case_end();
}

int main(void)
{
    slow = getenv("XL_TEST_SLOW") != NULL;
    watchdog(slow ? 600 : 60);
    const char *lvl = getenv("XL_TEST_LOGLEVEL");
    clog.show = lvl ? atoi(lvl) : XTL_WARN;

    case_fd_roundtrip();
    case_lock_held();
    case_modify();
    case_modify_to_no_events();
    case_modify_failure();
    case_timeouts_fire();
    case_deregistered_timeout();
    case_stale_fd_tokens();
    case_stale_timeout_tokens();
    case_register_failure();
    case_ctx_free();
    case_mixing_styles();
    case_fatal("occurred_fd_from_inside_fd_register_is_fatal", child_reenter_fd,
               "libxl_osevent_occurred_fd called re-entrantly");
    case_fatal("occurred_timeout_from_inside_timeout_modify_is_fatal", child_reenter_timeout,
               "libxl_osevent_occurred_timeout called re-entrantly");
    case_fatal("register_hooks_after_an_fd_is_registered_is_fatal", child_late_hooks,
               "libxl_osevent_register_hooks called while");
    return h_finish();
}
