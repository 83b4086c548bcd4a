/*
 * test_badinput.c - invalid arguments to the public entry points.
 *
 * Scenario: every entry point is called with bad input: NULL / wrong
 * version / non-zero flags to libxl_ctx_alloc, a NULL ctx everywhere, a
 * NULL event_r, bad fds and poll bits for libxl_test_fdevent, bad
 * pointers and counts for libxl_osevent_beforepoll/afterpoll, negative
 * counts for libxl_test_progress, unknown event types for the string
 * helpers, aborts of operations that do not exist.  The ctx's logger
 * writes to an open_memstream buffer so that each ERROR_INVAL can be
 * checked to have logged a line naming the offending argument (as a
 * whole word).  A NULL ctx has no logger: that refusal goes to stderr,
 * which is captured for the check.
 *
 * Success: each call gives ERROR_INVAL (or the documented result:
 * ERROR_VERSION for a wrong version, 0 for libxl_ctx_free(NULL),
 * ERROR_NOTFOUND for aborting nothing, NULL / ERROR_FAIL for unknown
 * type names), *pctx is left alone on failure, void functions just
 * return, nothing hangs or crashes, nothing is removed from the event
 * queue by a refused call, and at the end the same ctx still completes
 * operations (synchronous and for_event).  Every case prints PASS.
 * Also: a typemask selecting no event type for libxl_event_wait (libxl
 * would wait forever), forged / stale / duplicated for_libxl values to
 * libxl_osevent_occurred_* (with and without hooks), afterpoll with an
 * array that is not the one beforepoll filled, odd `now` values, a
 * double libxl_ctx_free, libxl_ctx_free with operations in progress,
 * hooks registered twice or with NULL entries, an event_occurs mask
 * without event_occurs, and the other test operations' bad arguments.
 * Failure: a FAIL line naming the call and the code it returned or the
 * missing log word; a crash (non-zero exit, no FAIL line); or the
 * watchdog's FAIL line on a hang.
 */
#include "harness.h"

#include <limits.h>

#include <libxl_test_fdchain.h>
#include <libxl_test_fdevent.h>
#include <libxl_test_progress.h>
#include <libxl_test_timedereg.h>
#include <libxl_test_timeout.h>

/* harness helper this program has no use for (silences -Wunused) */
static void *const unused_helpers[] __attribute__((unused)) = {
    (void *)test_logger,
};
static libxl_ctx *ctx;
static FILE *logf;
static char *logbuf;
static size_t loglen;

/* ---- log capture ---- */

static size_t log_mark(void)
{
    fflush(logf);
    return loglen;
}

static int is_ident(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_';
}

/* `word` occurs in text as a whole identifier. */
static int has_word(const char *text, const char *word)
{
    size_t wl = strlen(word);
    for (const char *p = text; (p = strstr(p, word)); p++) {
        if ((p == text || !is_ident(p[-1])) && !is_ident(p[wl]))
            return 1;
    }
    return 0;
}

/* The log since `mark` names `word`; fails the case if not. */
static void check_logged(size_t mark, const char *word, const char *call)
{
    fflush(logf);
    const char *since = mark <= loglen ? logbuf + mark : "";
    if (!has_word(since, word))
        case_fail("%s: no log line naming \"%s\" (log: \"%.200s\")", call,
                  word, since);
}

#define CHECK_INVAL_LOGGED(expr, word) do {                               \
        size_t m_ = log_mark();                                           \
        CHECK_RC((expr), ERROR_INVAL);                                    \
        check_logged(m_, (word), #expr);                                  \
    } while (0)

/* stderr capture, for the NULL-ctx refusals (no logger to use) */
static int saved_stderr = -1;
static FILE *errcap;

static void stderr_capture_begin(void)
{
    fflush(stderr);
    errcap = tmpfile();
    saved_stderr = dup(2);
    if (!errcap || saved_stderr < 0) { perror("capture"); exit(1); }
    dup2(fileno(errcap), 2);
}

/* Returns a malloc'd copy of what was written to stderr meanwhile. */
static char *stderr_capture_end(void)
{
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    off_t len = lseek(fileno(errcap), 0, SEEK_END);
    if (len < 0) len = 0;
    char *s = calloc(1, len + 1);
    if (len > 0 && pread(fileno(errcap), s, len, 0) != len) s[0] = 0;
    fclose(errcap);
    return s;
}

/* ---- event helpers ---- */

static int pred_user(const libxl_event *ev, void *user)
{
    return ev->for_user == *(const uint64_t *)user;
}

static int take_completion(uint64_t for_user)
{
    libxl_event *ev = NULL;
    if (libxl_event_check(ctx, &ev, LIBXL_EVENTMASK_ALL, pred_user, &for_user))
        return 1000;
    int rc = ev->u.operation_complete.rc;
    libxl_event_free(ctx, ev);
    return rc;
}

/* If a bad call was wrongly accepted and started an op, cancel it. */
static void cancel_if_started(int rc, uint64_t for_user)
{
    if (rc != 0) return;
    libxl_asyncop_how how = { .callback = NULL, .u.for_event = for_user };
    libxl_ao_abort(ctx, &how);
    uint64_t u = for_user;
    libxl_event *ev = NULL;
    if (libxl_event_wait(ctx, &ev, LIBXL_EVENTMASK_ALL, pred_user, &u) == 0)
        libxl_event_free(ctx, ev);
}

static int queue_count_and_drain(void)
{
    int n = 0;
    libxl_event *ev;
    while (libxl_event_check(ctx, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL) == 0) {
        libxl_event_free(ctx, ev);
        n++;
    }
    return n;
}

/* ---- cases ---- */

static void case_ctx_alloc(xentoollog_logger *lg)
{
    libxl_ctx *sentinel = (libxl_ctx *)(uintptr_t)0x5e4711e1;
    libxl_ctx *c;

    case_begin("ctx_alloc_null_pctx");
    if (full_libxl()) {
        case_na("libxl_ctx_alloc is Xen's libxl.c here, which writes *pctx unchecked");
    } else {
        size_t m = log_mark();
        CHECK_RC(libxl_ctx_alloc(NULL, LIBXL_VERSION, 0, lg), ERROR_INVAL);
        check_logged(m, "pctx", "libxl_ctx_alloc(NULL, ...)");
    }
    case_end();

    case_begin("ctx_alloc_wrong_version");
    {
        c = sentinel;
        size_t m = log_mark();
        int rc = libxl_ctx_alloc(&c, 1, 0, lg);
        CHECK_RC(rc, ERROR_VERSION);
        /* Xen's libxl.c refuses the version silently and clears *pctx */
        CHECK(c == (full_libxl() ? NULL : sentinel));
        if (!full_libxl()) check_logged(m, "version", "libxl_ctx_alloc(version 1)");
        if (rc == 0 && c != sentinel) libxl_ctx_free(c);
    }
    case_end();

    case_begin("ctx_alloc_nonzero_flags");
    {
        c = sentinel;
        size_t m = log_mark();
        int rc = libxl_ctx_alloc(&c, LIBXL_VERSION, 1, lg);
        if (full_libxl()) {
            /* Xen's libxl.c defines no flags and ignores them */
            CHECK_RC(rc, 0);
            CHECK(c != sentinel && c != NULL);
        } else {
            CHECK_RC(rc, ERROR_INVAL);
            CHECK(c == sentinel);
            check_logged(m, "flags", "libxl_ctx_alloc(flags 1)");
        }
        if (rc == 0 && c != sentinel) libxl_ctx_free(c);
    }
    case_end();

    case_begin("ctx_free_null");
    CHECK_RC(libxl_ctx_free(NULL), 0);
    case_end();
}

static void case_null_ctx(void)
{
    int p[2];
    test_pipe(p);
    libxl_event *ev = NULL;
    libxl_asyncop_how how = { .callback = NULL, .u.for_event = 5 };
    struct pollfd fds[4];
    int n = 4, t = -1;
    memset(fds, 0, sizeof(fds));

    case_begin("null_ctx_refused");
    stderr_capture_begin();
    int r1 = libxl_event_check(NULL, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL);
    int r2 = libxl_event_wait(NULL, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL);
    int r3 = libxl_ao_abort(NULL, &how);
    int r4 = libxl_test_fdevent(NULL, p[0], POLLIN, &how);
    int r5 = libxl_osevent_beforepoll(NULL, &n, fds, &t, tv_now());
    int r6 = libxl_test_progress(NULL, 1, 1, NULL, &how);
    int r7 = libxl_test_timedereg(NULL, &how);
    int r8 = libxl_ao_abort(NULL, NULL);
    /* void entry points: must simply return */
    libxl_osevent_afterpoll(NULL, 0, NULL, tv_now());
    libxl_osevent_afterpoll(NULL, 4, fds, tv_now());
    libxl_event_register_callbacks(NULL, NULL, NULL);
    libxl_osevent_occurred_fd(NULL, NULL, p[0], POLLIN, POLLIN);
    libxl_osevent_occurred_timeout(NULL, NULL);
    char *err = stderr_capture_end();
    CHECK_RC(r1, ERROR_INVAL);
    CHECK_RC(r2, ERROR_INVAL);
    CHECK_RC(r3, ERROR_INVAL);
    CHECK_RC(r4, ERROR_INVAL);
    CHECK_RC(r5, ERROR_INVAL);
    CHECK_RC(r6, ERROR_INVAL);
    CHECK_RC(r7, ERROR_INVAL);
    CHECK_RC(r8, ERROR_INVAL);
    CHECK(ev == NULL);
    case_end();

    case_begin("null_ctx_reported_on_stderr");
    /* with no ctx there is no logger: the refusal names ctx on stderr */
    CHECK(has_word(err, "ctx"));
    CHECK(strstr(err, "libxl_event_check") != NULL);
    CHECK(strstr(err, "libxl_test_fdevent") != NULL);
    free(err);
    case_end();
    close(p[0]); close(p[1]);
}

static void case_event_r_null(void)
{
    libxl_asyncop_how how = { .callback = NULL, .u.for_event = 42 };

    case_begin("event_check_null_event_r");
    /* one event queued: a refused call must not consume it */
    CHECK_RC(libxl_test_progress(ctx, 0, 0, NULL, &how), 0);
    CHECK_INVAL_LOGGED(libxl_event_check(ctx, NULL, LIBXL_EVENTMASK_ALL,
                                         NULL, NULL), "event_r");
    CHECK_RC(take_completion(42), 0);
    case_end();

    case_begin("event_wait_null_event_r");
    CHECK_RC(libxl_test_progress(ctx, 0, 0, NULL, &how), 0);
    CHECK_INVAL_LOGGED(libxl_event_wait(ctx, NULL, LIBXL_EVENTMASK_ALL,
                                        NULL, NULL), "event_r");
    CHECK_RC(take_completion(42), 0);
    /* and with nothing queued it must not hang either */
    CHECK_INVAL_LOGGED(libxl_event_wait(ctx, NULL, LIBXL_EVENTMASK_ALL,
                                        NULL, NULL), "event_r");
    CHECK_RC(queue_count_and_drain(), 0);
    case_end();
}

static void case_fdevent_bad(void)
{
    int p[2];
    test_pipe(p);
    libxl_asyncop_how how = { .callback = NULL, .u.for_event = 60 };
    int rc;

    case_begin("test_fdevent_fd_minus_one");
    {
        size_t m = log_mark();
        rc = libxl_test_fdevent(ctx, -1, POLLIN, &how);
        CHECK_RC(rc, ERROR_INVAL);
        check_logged(m, "fd", "libxl_test_fdevent(fd -1)");
        cancel_if_started(rc, 60);
    }
    case_end();

    case_begin("test_fdevent_closed_fd");
    {
        int q[2];
        test_pipe(q);
        int dead = q[0];
        close(q[0]);
        close(q[1]);
        how.u.for_event = 61;
        size_t m = log_mark();
        rc = libxl_test_fdevent(ctx, dead, POLLIN, &how);
        CHECK_RC(rc, ERROR_INVAL);
        check_logged(m, "fd", "libxl_test_fdevent(closed fd)");
        cancel_if_started(rc, 61);
    }
    case_end();

    case_begin("test_fdevent_unknown_event_bit");
    {
        how.u.for_event = 62;
        size_t m = log_mark();
        rc = libxl_test_fdevent(ctx, p[0], 0x4000, &how);
        CHECK_RC(rc, ERROR_INVAL);
        check_logged(m, "events", "libxl_test_fdevent(events 0x4000)");
        cancel_if_started(rc, 62);
        how.u.for_event = 63;
        m = log_mark();
        rc = libxl_test_fdevent(ctx, p[0], POLLIN | 0x4000, &how);
        CHECK_RC(rc, ERROR_INVAL);
        check_logged(m, "events", "libxl_test_fdevent(POLLIN|0x4000)");
        cancel_if_started(rc, 63);
    }
    CHECK_RC(queue_count_and_drain(), 0);
    case_end();
    close(p[0]); close(p[1]);
}

static void case_beforepoll_bad(void)
{
    struct pollfd fds[8];
    int n, t;

    case_begin("beforepoll_null_nfds_io");
    t = -1;
    CHECK_INVAL_LOGGED(libxl_osevent_beforepoll(ctx, NULL, fds, &t, tv_now()),
                       "nfds_io");
    CHECK_RC(t, -1);
    case_end();

    case_begin("beforepoll_negative_nfds_io");
    n = -1; t = -1;
    CHECK_INVAL_LOGGED(libxl_osevent_beforepoll(ctx, &n, fds, &t, tv_now()),
                       "nfds_io");
    n = -1;
    CHECK_INVAL_LOGGED(libxl_osevent_beforepoll(ctx, &n, NULL, &t, tv_now()),
                       "nfds_io");
    case_end();

    case_begin("beforepoll_null_fds_with_space");
    n = 3; t = -1;
    CHECK_INVAL_LOGGED(libxl_osevent_beforepoll(ctx, &n, NULL, &t, tv_now()),
                       "fds");
    case_end();

    case_begin("beforepoll_null_timeout_upd");
    n = 8;
    CHECK_INVAL_LOGGED(libxl_osevent_beforepoll(ctx, &n, fds, NULL, tv_now()),
                       "timeout_upd");
    n = 0;
    CHECK_INVAL_LOGGED(libxl_osevent_beforepoll(ctx, &n, NULL, NULL, tv_now()),
                       "timeout_upd");
    case_end();

    case_begin("beforepoll_valid_after_refusals");
    n = 8; t = -1;
    CHECK_RC(libxl_osevent_beforepoll(ctx, &n, fds, &t, tv_now()), 0);
    CHECK(n >= 1 && n <= 8);
    case_end();

    case_begin("afterpoll_bad_args_just_return");
    {
        int p[2];
        test_pipe(p);
        libxl_asyncop_how how = { .callback = NULL, .u.for_event = 70 };
        CHECK_RC(libxl_test_fdevent(ctx, p[0], POLLIN, &how), 0);
        n = 8; t = -1;
        CHECK_RC(libxl_osevent_beforepoll(ctx, &n, fds, &t, tv_now()), 0);
        pipe_poke(p[1]);
        poll(fds, n, 0);
        libxl_osevent_afterpoll(ctx, -1, fds, tv_now());
        libxl_osevent_afterpoll(ctx, -100, NULL, tv_now());
        libxl_osevent_afterpoll(ctx, n, NULL, tv_now());
        libxl_osevent_afterpoll(ctx, 1, NULL, tv_now());
        /* a refused afterpoll dispatches nothing */
        CHECK_RC(take_completion(70), 1000);
        /* a proper one afterwards still works */
        libxl_osevent_afterpoll(ctx, n, fds, tv_now());
        int rc = take_completion(70);
        if (rc == 1000) {
            uint64_t u = 70;
            libxl_event *ev = NULL;
            rc = libxl_event_wait(ctx, &ev, LIBXL_EVENTMASK_ALL, pred_user, &u);
            if (rc == 0) { rc = ev->u.operation_complete.rc; libxl_event_free(ctx, ev); }
        }
        CHECK_RC(rc, 0);
        close(p[0]); close(p[1]);
    }
    case_end();
}

static void case_misc(void)
{
    case_begin("event_free_null_noop");
    libxl_event_free(ctx, NULL);
    libxl_event_free(NULL, NULL);
    case_end();

    case_begin("event_type_to_string");
    const char *s = libxl_event_type_to_string(99);
    CHECK(s == NULL);
    CHECK(libxl_event_type_to_string(0) == NULL);
    CHECK(libxl_event_type_to_string(-1) == NULL);
    s = libxl_event_type_to_string(LIBXL_EVENT_TYPE_OPERATION_COMPLETE);
    CHECK(s != NULL && strcmp(s, "operation_complete") == 0);
    s = libxl_event_type_to_string(LIBXL_EVENT_TYPE_DOMAIN_CREATE_CONSOLE_AVAILABLE);
    CHECK(s != NULL && strcmp(s, "domain_create_console_available") == 0);
    case_end();

    case_begin("event_type_from_string");
    libxl_event_type t = 0;
    CHECK_RC(libxl_event_type_from_string("OPERATION_COMPLETE", &t), 0);
    CHECK_RC(t, 4);
    t = 0;
    CHECK_RC(libxl_event_type_from_string("domain_death", &t), 0);
    CHECK_RC(t, LIBXL_EVENT_TYPE_DOMAIN_DEATH);
    t = 77;
    CHECK_RC(libxl_event_type_from_string("no_such_event", &t), ERROR_FAIL);
    CHECK_RC(t, 77);
    CHECK_RC(libxl_event_type_from_string("", &t), ERROR_FAIL);
    CHECK_RC(libxl_event_type_from_string("operation_complete_x", &t), ERROR_FAIL);
    CHECK_RC(t, 77);
    case_end();

    case_begin("event_type_from_string_null_args_refused");
    if (full_libxl()) {
        case_na("libxl_event_type_from_string is Xen's generated code here, which does not check its arguments");
    } else {
        /* documented in our libxl.h: NULL arguments are ERROR_INVAL */
        CHECK_RC(libxl_event_type_from_string(NULL, &t), ERROR_INVAL);
        CHECK_RC(libxl_event_type_from_string("domain_death", NULL), ERROR_INVAL);
    }
    case_end();

    case_begin("test_progress_negative_args");
    {
        libxl_asyncop_how how = { .callback = NULL, .u.for_event = 80 };
        size_t m = log_mark();
        int rc = libxl_test_progress(ctx, -1, 10, NULL, &how);
        CHECK_RC(rc, ERROR_INVAL);
        check_logged(m, "count", "libxl_test_progress(count -1)");
        cancel_if_started(rc, 80);
        how.u.for_event = 81;
        m = log_mark();
        rc = libxl_test_progress(ctx, 1, -5, NULL, &how);
        CHECK_RC(rc, ERROR_INVAL);
        check_logged(m, "interval_ms", "libxl_test_progress(interval -5)");
        cancel_if_started(rc, 81);
        /* synchronous too (must not block) */
        CHECK_INVAL_LOGGED(libxl_test_progress(ctx, -3, 0, NULL, NULL), "count");
        CHECK_RC(queue_count_and_drain(), 0);
    }
    case_end();

    case_begin("ao_abort_nothing_running");
    {
        libxl_asyncop_how how = { .callback = NULL, .u.for_event = 12345 };
        CHECK_RC(libxl_ao_abort(ctx, &how), ERROR_NOTFOUND);
        CHECK_RC(libxl_ao_abort(ctx, NULL), ERROR_NOTFOUND);
    }
    case_end();
}


/* ---- cases added for robustness (issue 8) ---- */

static void case_event_wait_typemask(void)
{
    case_begin("event_wait_typemask_selecting_no_type_refused");
    libxl_event *ev = NULL;
    CHECK_INVAL_LOGGED(libxl_event_wait(ctx, &ev, 0, NULL, NULL), "typemask");
    CHECK_INVAL_LOGGED(libxl_event_wait(ctx, &ev, 1 /* type 0: none */, NULL, NULL), "typemask");
    CHECK_INVAL_LOGGED(libxl_event_wait(ctx, &ev, ~0ULL << 6, NULL, NULL), "typemask");
    CHECK(ev == NULL);
    /* libxl_event_check does no waiting: it simply finds nothing */
    CHECK_RC(libxl_event_check(ctx, &ev, 0, NULL, NULL), ERROR_NOT_READY);
    case_end();
}

static void case_other_testops_bad(void)
{
    case_begin("test_fdevent_huge_fd_refused");
    libxl_asyncop_how how = { .callback = NULL, .u.for_event = 90 };
    CHECK_INVAL_LOGGED(libxl_test_fdevent(ctx, INT_MAX, POLLIN, &how), "fd");
    case_end();

    case_begin("test_fdchain_bad_args_refused");
    int fds[1] = { 0 };
    CHECK_INVAL_LOGGED(libxl_test_fdchain(ctx, NULL, 1, &how), "fds");
    CHECK_INVAL_LOGGED(libxl_test_fdchain(ctx, fds, 0, &how), "nfds");
    CHECK_INVAL_LOGGED(libxl_test_fdchain(ctx, fds, -5, &how), "nfds");
    fds[0] = -1;
    CHECK_INVAL_LOGGED(libxl_test_fdchain(ctx, fds, 1, &how), "fds");
    case_end();

    case_begin("test_timeout_negative_ms_refused");
    CHECK_INVAL_LOGGED(libxl_test_timeout(ctx, -1, &how), "ms");
    CHECK_INVAL_LOGGED(libxl_test_timeout(ctx, INT_MIN, NULL), "ms");
    CHECK_RC(queue_count_and_drain(), 0);
    case_end();
}

static void case_afterpoll_forged(void)
{
    int p[2];
    test_pipe(p);
    pipe_poke(p[1]);
    libxl_asyncop_how how = { .callback = NULL, .u.for_event = 91 };

    case_begin("afterpoll_before_any_beforepoll_dispatches_nothing");
    {
        libxl_ctx *c2 = test_ctx(NULL);
        struct pollfd f[2] = { { .fd = p[0], .events = POLLIN, .revents = POLLIN },
                               { .fd = 0, .events = POLLIN, .revents = POLLIN } };
        CHECK_RC(libxl_test_fdevent(c2, p[0], POLLIN, &how), 0);
        libxl_osevent_afterpoll(c2, 2, f, tv_now());
        libxl_event *ev = NULL;
        CHECK_RC(libxl_event_check(c2, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL), ERROR_NOT_READY);
        libxl_ctx_free(c2); /* the op is discarded */
    }
    case_end();

    case_begin("afterpoll_with_a_forged_array_dispatches_only_what_holds");
    {
        CHECK_RC(libxl_test_fdevent(ctx, p[0], POLLIN, &how), 0);
        struct pollfd fds[8];
        int n = 8, t = -1;
        CHECK_RC(libxl_osevent_beforepoll(ctx, &n, fds, &t, tv_now()), 0);
        /* wrong fd numbers, garbage revents, more entries than given */
        struct pollfd forged[8];
        for (int i = 0; i < 8; i++)
            forged[i] = (struct pollfd){ .fd = 1000 + i, .events = POLLIN, .revents = (short)0xffff };
        libxl_osevent_afterpoll(ctx, 8, forged, tv_now());
        CHECK_RC(take_completion(91), 1000); /* no entry named the op's fd */
        /* the real array, with garbage revents: re-checked, so it completes */
        for (int i = 0; i < n; i++) fds[i].revents = (short)0xffff;
        libxl_osevent_afterpoll(ctx, n, fds, tv_now());
        CHECK_RC(take_completion(91), 0);
        /* the same array again: nothing is dispatched twice */
        libxl_osevent_afterpoll(ctx, n, fds, tv_now());
        CHECK_RC(queue_count_and_drain(), 0);
    }
    case_end();

    case_begin("beforepoll_odd_now_values_accepted");
    {
        struct pollfd fds[8];
        int n, t;
        struct timeval odd[] = { { -5, 0 }, { 0, -1 }, { 0, 5000000 }, { LONG_MAX / 2, 999999 } };
        for (unsigned i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
            n = 8; t = -1;
            CHECK_RC(libxl_osevent_beforepoll(ctx, &n, fds, &t, odd[i]), 0);
            libxl_osevent_afterpoll(ctx, 0, NULL, odd[i]);
        }
        CHECK_RC(queue_count_and_drain(), 0);
    }
    case_end();
    close(p[0]); close(p[1]);
}

static void case_occurred_without_hooks(void)
{
    case_begin("occurred_without_hooks_refused_naming_for_libxl");
    int p[2];
    test_pipe(p);
    pipe_poke(p[1]);
    libxl_asyncop_how how = { .callback = NULL, .u.for_event = 92 };
    CHECK_RC(libxl_test_fdevent(ctx, p[0], POLLIN, &how), 0);
    size_t m = log_mark();
    libxl_osevent_occurred_fd(ctx, NULL, p[0], POLLIN, POLLIN);
    check_logged(m, "for_libxl", "occurred_fd(NULL)");
    m = log_mark();
    /* the first fd registration's token, guessed: still refused */
    libxl_osevent_occurred_fd(ctx, (void *)(uintptr_t)0x100000000ULL, p[0], POLLIN, POLLIN);
    check_logged(m, "for_libxl", "occurred_fd(guessed)");
    m = log_mark();
    libxl_osevent_occurred_timeout(ctx, (void *)(uintptr_t)0x1234);
    check_logged(m, "for_libxl", "occurred_timeout(forged)");
    CHECK_RC(take_completion(92), 1000); /* nothing was dispatched */
    cancel_if_started(0, 92);
    close(p[0]); close(p[1]);
    case_end();
}

/* Drains c's queue; each event must be a successful completion. */
static int drain_completions_ok(libxl_ctx *c)
{
    int n = 0;
    libxl_event *ev;
    while (libxl_event_check(c, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL) == 0) {
        CHECK_RC(ev->type, LIBXL_EVENT_TYPE_OPERATION_COMPLETE);
        CHECK_RC(ev->u.operation_complete.rc, 0);
        libxl_event_free(c, ev);
        n++;
    }
    return n;
}

/* Minimal application-side registry for the hook cases. */
struct hreg { int fd; void *for_libxl; int live; };
static struct hreg hfds[16], htimes[16];
static int nderegistered;

static int h_fd_register(void *u, int fd, void **out, short events, void *for_libxl)
{
    (void)u; (void)events;
    for (int i = 0; i < 16; i++)
        if (!hfds[i].live) {
            hfds[i] = (struct hreg){ fd, for_libxl, 1 };
            *out = &hfds[i];
            return 0;
        }
    return ERROR_OSEVENT_REG_FAIL;
}
static int h_fd_modify(void *u, int fd, void **io, short events)
{ (void)u; (void)fd; (void)io; (void)events; return 0; }
static void h_fd_deregister(void *u, int fd, void *reg)
{
    (void)u; (void)fd;
    ((struct hreg *)reg)->live = 0;
    nderegistered++;
}
static int h_timeout_register(void *u, void **out, struct timeval abs, void *for_libxl)
{
    (void)u; (void)abs;
    for (int i = 0; i < 16; i++)
        if (!htimes[i].live) {
            htimes[i] = (struct hreg){ -1, for_libxl, 1 };
            *out = &htimes[i];
            return 0;
        }
    return ERROR_OSEVENT_REG_FAIL;
}
static int h_timeout_modify(void *u, void **io, struct timeval abs)
{ (void)u; (void)io; (void)abs; return 0; }

static libxl_osevent_hooks good_hooks = {
    .fd_register = h_fd_register, .fd_modify = h_fd_modify,
    .fd_deregister = h_fd_deregister, .timeout_register = h_timeout_register,
    .timeout_modify = h_timeout_modify,
};
static libxl_osevent_hooks null_register_hooks = {
    .fd_register = NULL, .fd_modify = h_fd_modify,
    .fd_deregister = h_fd_deregister, .timeout_register = NULL,
    .timeout_modify = h_timeout_modify,
};

static void case_hooks(xentoollog_logger *lg)
{
    libxl_ctx *h = test_ctx(lg);
    int p[2];
    test_pipe(p);
    libxl_asyncop_how how = { .callback = NULL, .u.for_event = 93 };

    case_begin("hooks_with_null_register_entries_refuse_ops");
    libxl_osevent_register_hooks(h, &null_register_hooks, NULL);
    CHECK_RC(libxl_test_fdevent(h, p[0], POLLIN, &how), ERROR_OSEVENT_REG_FAIL);
    CHECK_RC(libxl_test_timeout(h, 10, &how), ERROR_OSEVENT_REG_FAIL);
    case_end();

    case_begin("hooks_registered_twice_before_any_osevent_last_wins");
    libxl_osevent_register_hooks(h, &good_hooks, NULL);
    CHECK_RC(libxl_test_fdevent(h, p[0], POLLIN, &how), 0);
    CHECK(hfds[0].live && hfds[0].fd == p[0]);
    case_end();

    case_begin("occurred_fd_forged_stale_duplicated_ignored");
    {
        void *tok = hfds[0].for_libxl;
        size_t m = log_mark();
        libxl_osevent_occurred_fd(h, NULL, p[0], POLLIN, POLLIN);
        check_logged(m, "for_libxl", "occurred_fd(NULL)");
        /* well-formed but never issued: ignored quietly */
        libxl_osevent_occurred_fd(h, (void *)(uintptr_t)0x7777000000000005ULL, p[0], POLLIN, POLLIN);
        /* the right token with the wrong fd: ignored */
        libxl_osevent_occurred_fd(h, tok, p[1], POLLIN, POLLIN);
        /* the right token, but the fd is not ready: no spurious callback */
        libxl_osevent_occurred_fd(h, tok, p[0], POLLIN, POLLIN);
        libxl_event *ev = NULL;
        CHECK_RC(libxl_event_check(h, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL), ERROR_NOT_READY);
        pipe_poke(p[1]);
        libxl_osevent_occurred_fd(h, tok, p[0], POLLIN, POLLIN);
        libxl_osevent_occurred_fd(h, tok, p[0], POLLIN, POLLIN); /* now stale */
        CHECK_RC(drain_completions_ok(h), 1);
        CHECK(!hfds[0].live); /* deregistered through the hook */
    }
    case_end();

    case_begin("occurred_timeout_forged_stale_duplicated_ignored");
    {
        how.u.for_event = 94;
        CHECK_RC(libxl_test_timeout(h, 0, &how), 0);
        void *tok = htimes[0].for_libxl;
        CHECK(htimes[0].live);
        libxl_osevent_occurred_timeout(h, (void *)(uintptr_t)0x7777000000000003ULL);
        libxl_event *ev = NULL;
        CHECK_RC(libxl_event_check(h, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL), ERROR_NOT_READY);
        htimes[0].live = 0;
        libxl_osevent_occurred_timeout(h, tok);
        libxl_osevent_occurred_timeout(h, tok); /* duplicate: stale */
        CHECK_RC(drain_completions_ok(h), 1);
    }
    case_end();

    case_begin("ctx_free_with_ops_in_progress_discards_and_deregisters");
    {
        int before = nderegistered;
        how.u.for_event = 95;
        test_pipe(p);
        CHECK_RC(libxl_test_fdevent(h, p[0], POLLIN, &how), 0);
        size_t m = log_mark();
        CHECK_RC(libxl_ctx_free(h), 0);
        check_logged(m, "discarded", "libxl_ctx_free with an op in progress");
        CHECK_RC(nderegistered, before + 1);
        close(p[0]); close(p[1]);
    }
    case_end();
}

static void case_occurs_mask_without_callback(void)
{
    case_begin("event_occurs_mask_without_callback_queues_instead");
    libxl_event_hooks eh = { .event_occurs_mask = LIBXL_EVENTMASK_ALL, .event_occurs = NULL };
    size_t m = log_mark();
    libxl_event_register_callbacks(ctx, &eh, NULL);
    check_logged(m, "event_occurs", "register_callbacks(mask, NULL)");
    libxl_asyncop_how how = { .callback = NULL, .u.for_event = 96 };
    CHECK_RC(libxl_test_progress(ctx, 0, 0, NULL, &how), 0);
    CHECK_RC(take_completion(96), 0);
    libxl_event_register_callbacks(ctx, NULL, NULL);
    case_end();
}

static void case_ctx_free_twice(xentoollog_logger *lg)
{
    case_begin("ctx_free_twice_refused");
    if (full_libxl()) {
        case_na("libxl_ctx_free is Xen's libxl.c here, which frees the ctx: a second call is a use after free");
    } else {
        libxl_ctx *c = test_ctx(lg);
        CHECK_RC(libxl_ctx_free(c), 0);
        stderr_capture_begin();
        int rc = libxl_ctx_free(c);
        char *err = stderr_capture_end();
        CHECK_RC(rc, ERROR_INVAL);
        CHECK(strstr(err, "libxl_ctx_free") != NULL);
        free(err);
    }
    case_end();
}

static void case_ctx_still_usable(void)
{
    case_begin("ctx_usable_after_bad_input");
    int p[2];
    test_pipe(p);
    pipe_poke(p[1]);
    CHECK_RC(libxl_test_fdevent(ctx, p[0], POLLIN, NULL), 0);
    libxl_asyncop_how how = { .callback = NULL, .u.for_event = 99 };
    CHECK_RC(libxl_test_fdevent(ctx, p[0], POLLIN, &how), 0);
    uint64_t u = 99;
    libxl_event *ev = NULL;
    int rc = libxl_event_wait(ctx, &ev, LIBXL_EVENTMASK_ALL, pred_user, &u);
    CHECK_RC(rc, 0);
    if (!rc) {
        CHECK_RC(ev->type, LIBXL_EVENT_TYPE_OPERATION_COMPLETE);
        CHECK_RC(ev->u.operation_complete.rc, 0);
        libxl_event_free(ctx, ev);
    }
    CHECK_RC(libxl_test_progress(ctx, 1, 1, NULL, NULL), 0);
    CHECK_RC(queue_count_and_drain(), 0);
    close(p[0]); close(p[1]);
    case_end();
}

int main(void)
{
    watchdog(20);
    logf = open_memstream(&logbuf, &loglen);
    if (!logf) { perror("open_memstream"); return 1; }
    xentoollog_logger *lg =
        (xentoollog_logger *)xtl_createlogger_stdiostream(logf, XTL_DEBUG, 0);
    if (!lg) { printf("FAIL setup: no logger\n"); return 1; }

    case_ctx_alloc(lg);
    ctx = test_ctx(lg);
    case_null_ctx();
    case_event_r_null();
    case_fdevent_bad();
    case_beforepoll_bad();
    case_misc();
    case_event_wait_typemask();
    case_other_testops_bad();
    case_afterpoll_forged();
    case_occurred_without_hooks();
    case_hooks(lg);
    case_occurs_mask_without_callback();
    case_ctx_free_twice(lg);
    case_ctx_still_usable();

    libxl_ctx_free(ctx);
    xtl_logger_destroy(lg);
    fclose(logf);
    if (getenv("XL_TEST_LOGLEVEL"))
        fprintf(stderr, "%s", logbuf ? logbuf : "");
    free(logbuf);
    return h_finish();
}
