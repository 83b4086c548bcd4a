/*
 * test_event_filter.c - typemask and predicate semantics of
 * libxl_event_check and libxl_event_wait.
 *
 * Scenario: a queue is built holding, in this order, OPERATION_COMPLETE
 * events for_user 1 and 2, two progress events (type
 * DOMAIN_CREATE_CONSOLE_AVAILABLE, for_user 1001) and OPERATION_COMPLETE
 * for_user 3, 4, 5 (operations from libxl_test_progress).  Then:
 *  - a typemask of only the OPERATION_COMPLETE bit yields 1..5 in order
 *    and never a progress event; the progress-only mask yields the two
 *    progress events although completions precede them;
 *  - a predicate accepting for_user == 3 returns exactly that event, gets
 *    predicate_user passed through, and leaves the rest queued in order;
 *  - nothing matching (predicate rejecting all, mask of an absent type,
 *    mask 0) gives ERROR_NOT_READY and removes nothing;
 *  - libxl_event_wait with a predicate matching only an operation that
 *    completes ~60 ms later blocks until then and returns it, while the
 *    events of another operation arriving meanwhile, and the prebuilt
 *    queue, stay queued;
 *  - LIBXL_EVENTMASK_ALL matches every type (queue drained in order).
 *
 * Success: every case prints PASS; exit 0 in well under a second.
 * Failure: a FAIL line (wrong event returned, event lost or reordered,
 * predicate_user not passed, wait returned early or a wrong event), or
 * the watchdog's FAIL line if libxl_event_wait hangs.
 */
#include "harness.h"

#include <libxl_test_progress.h>

#define BIT(t) (1ULL << (t))
#define T_OC LIBXL_EVENT_TYPE_OPERATION_COMPLETE
#define T_PR LIBXL_EVENT_TYPE_DOMAIN_CREATE_CONSOLE_AVAILABLE
#define PROG_USER 1001
#define PROG_DONE 1002

static libxl_ctx *ctx;

struct exp { int type; uint64_t for_user; };

/* The queue build_queue() makes, in order. */
static const struct exp FULL[] = {
    { T_OC, 1 }, { T_OC, 2 }, { T_PR, PROG_USER }, { T_PR, PROG_USER },
    { T_OC, 3 }, { T_OC, 4 }, { T_OC, 5 },
};
#define NFULL (int)(sizeof(FULL) / sizeof(FULL[0]))

static int pred_user_is(const libxl_event *ev, void *user)
{
    return ev->for_user == *(const uint64_t *)user;
}

/* Queues an immediate OPERATION_COMPLETE (rc 0) for for_user. */
static int instant_op(uint64_t for_user)
{
    libxl_asyncop_how how = { .callback = NULL, .u.for_event = for_user };
    return libxl_test_progress(ctx, 0, 0, NULL, &how);
}

/* Builds FULL; returns 0 on success. */
static int build_queue(void)
{
    if (instant_op(1) || instant_op(2)) return -1;
    libxl_asyncop_how how = { .callback = NULL, .u.for_event = PROG_DONE };
    libxl_asyncprogress_how aop = { .callback = NULL, .for_event = PROG_USER };
    if (libxl_test_progress(ctx, 2, 1, &aop, &how)) return -2;
    /* wait for that operation's completion only: its two progress
     * reports stay queued */
    uint64_t want = PROG_DONE;
    libxl_event *ev = NULL;
    int rc = libxl_event_wait(ctx, &ev, BIT(T_OC), pred_user_is, &want);
    if (rc) return -3;
    int bad = ev->type != T_OC || ev->for_user != PROG_DONE
        || ev->u.operation_complete.rc != 0;
    libxl_event_free(ctx, ev);
    if (bad) return -4;
    if (instant_op(3) || instant_op(4) || instant_op(5)) return -5;
    return 0;
}

/* Drains the whole queue with LIBXL_EVENTMASK_ALL and compares it with
 * exp[0..n-1]; fails the case on any difference. */
static void expect_queue(const struct exp *exp, int n, const char *what)
{
    for (int i = 0; ; i++) {
        libxl_event *ev = NULL;
        int rc = libxl_event_check(ctx, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL);
        if (rc == ERROR_NOT_READY) {
            if (i != n)
                case_fail("%s: queue had %d events, expected %d", what, i, n);
            return;
        }
        if (rc) { case_fail("%s: event_check rc=%d", what, rc); return; }
        if (i >= n)
            case_fail("%s: extra event #%d type %d for_user %llu", what, i,
                      ev->type, (unsigned long long)ev->for_user);
        else if ((int)ev->type != exp[i].type || ev->for_user != exp[i].for_user)
            case_fail("%s: event #%d is type %d for_user %llu, expected "
                      "type %d for_user %llu", what, i, ev->type,
                      (unsigned long long)ev->for_user, exp[i].type,
                      (unsigned long long)exp[i].for_user);
        libxl_event_free(ctx, ev);
        if (i > 100) return;
    }
}

/* FULL without the entries whose for_user/type match (drop_type == 0:
 * any type with that for_user). */
static int full_without(struct exp *out, int drop_type, uint64_t drop_user)
{
    int n = 0;
    for (int i = 0; i < NFULL; i++) {
        if (FULL[i].for_user == drop_user &&
            (drop_type == 0 || FULL[i].type == drop_type))
            continue;
        out[n++] = FULL[i];
    }
    return n;
}

static int setup_case(const char *name)
{
    case_begin(name);
    int rc = build_queue();
    if (rc) case_fail("could not build the event queue (step %d)", rc);
    return rc;
}

static void case_mask_opcomplete(void)
{
    if (setup_case("check_mask_opcomplete_only")) { case_end(); return; }
    for (uint64_t u = 1; u <= 5; u++) {
        libxl_event *ev = NULL;
        int rc = libxl_event_check(ctx, &ev, BIT(T_OC), NULL, NULL);
        CHECK_RC(rc, 0);
        if (rc) break;
        if ((int)ev->type != T_OC)
            case_fail("mask OPERATION_COMPLETE returned type %d", ev->type);
        if (ev->for_user != u)
            case_fail("got for_user %llu, expected %llu",
                      (unsigned long long)ev->for_user, (unsigned long long)u);
        CHECK_RC(ev->u.operation_complete.rc, 0);
        libxl_event_free(ctx, ev);
    }
    libxl_event *ev = NULL;
    CHECK_RC(libxl_event_check(ctx, &ev, BIT(T_OC), NULL, NULL), ERROR_NOT_READY);
    /* the progress events are still there */
    static const struct exp left[] = { { T_PR, PROG_USER }, { T_PR, PROG_USER } };
    expect_queue(left, 2, "after draining completions");
    case_end();
}

static void case_mask_progress(void)
{
    if (setup_case("check_mask_progress_only")) { case_end(); return; }
    for (int i = 0; i < 2; i++) {
        libxl_event *ev = NULL;
        int rc = libxl_event_check(ctx, &ev, BIT(T_PR), NULL, NULL);
        CHECK_RC(rc, 0);
        if (rc) break;
        CHECK_RC(ev->type, T_PR);
        CHECK_RC(ev->for_user, PROG_USER);
        libxl_event_free(ctx, ev);
    }
    libxl_event *ev = NULL;
    CHECK_RC(libxl_event_check(ctx, &ev, BIT(T_PR), NULL, NULL), ERROR_NOT_READY);
    struct exp left[NFULL];
    int n = full_without(left, T_PR, PROG_USER);
    expect_queue(left, n, "after draining progress");
    case_end();
}

struct pred_rec {
    uint64_t want;
    int calls;
    int bad_user;      /* calls with a user pointer other than ours */
    void *self;
};

static int pred_record(const libxl_event *ev, void *user)
{
    struct pred_rec *r = user;
    r->calls++;
    if (r->self != r) r->bad_user++;
    return ev->for_user == r->want;
}

static void case_predicate_selects(void)
{
    if (setup_case("check_predicate_selects_one_keeps_order")) { case_end(); return; }
    struct pred_rec r = { 3, 0, 0, NULL };
    r.self = &r;
    libxl_event *ev = NULL;
    int rc = libxl_event_check(ctx, &ev, LIBXL_EVENTMASK_ALL, pred_record, &r);
    CHECK_RC(rc, 0);
    if (!rc) {
        CHECK_RC(ev->type, T_OC);
        CHECK_RC(ev->for_user, 3);
        CHECK_RC(ev->u.operation_complete.rc, 0);
        libxl_event_free(ctx, ev);
    }
    CHECK(r.calls >= 1);
    CHECK_RC(r.bad_user, 0);
    /* the same predicate again: nothing left for it */
    CHECK_RC(libxl_event_check(ctx, &ev, LIBXL_EVENTMASK_ALL, pred_record, &r),
             ERROR_NOT_READY);
    struct exp left[NFULL];
    int n = full_without(left, 0, 3);
    expect_queue(left, n, "after taking for_user 3");
    case_end();
}

static void case_predicate_and_mask(void)
{
    /* predicate and mask combine: for_user PROG_USER is only progress */
    if (setup_case("check_predicate_and_mask_both_apply")) { case_end(); return; }
    uint64_t want = PROG_USER;
    libxl_event *ev = NULL;
    CHECK_RC(libxl_event_check(ctx, &ev, BIT(T_OC), pred_user_is, &want),
             ERROR_NOT_READY);
    want = 4;
    CHECK_RC(libxl_event_check(ctx, &ev, BIT(T_PR), pred_user_is, &want),
             ERROR_NOT_READY);
    int rc = libxl_event_check(ctx, &ev, BIT(T_OC), pred_user_is, &want);
    CHECK_RC(rc, 0);
    if (!rc) { CHECK_RC(ev->for_user, 4); libxl_event_free(ctx, ev); }
    struct exp left[NFULL];
    int n = full_without(left, 0, 4);
    expect_queue(left, n, "after taking for_user 4");
    case_end();
}

static int pred_reject_all(const libxl_event *ev, void *user)
{
    (void)ev;
    struct pred_rec *r = user;
    r->calls++;
    if (r->self != r) r->bad_user++;
    return 0;
}

static void case_nothing_matches(void)
{
    if (setup_case("check_nothing_matches_not_ready_nothing_removed")) { case_end(); return; }
    struct pred_rec r = { 0, 0, 0, NULL };
    r.self = &r;
    libxl_event *ev = NULL;
    CHECK_RC(libxl_event_check(ctx, &ev, LIBXL_EVENTMASK_ALL, pred_reject_all, &r),
             ERROR_NOT_READY);
    /* every queued event was offered to the predicate, with our pointer */
    CHECK(r.calls >= NFULL);
    CHECK_RC(r.bad_user, 0);
    CHECK_RC(libxl_event_check(ctx, &ev, BIT(LIBXL_EVENT_TYPE_DOMAIN_DEATH),
                               NULL, NULL), ERROR_NOT_READY);
    CHECK_RC(libxl_event_check(ctx, &ev, 0, NULL, NULL), ERROR_NOT_READY);
    CHECK_RC(libxl_event_check(ctx, &ev, BIT(63), NULL, NULL), ERROR_NOT_READY);
    uint64_t want = 77;
    CHECK_RC(libxl_event_check(ctx, &ev, LIBXL_EVENTMASK_ALL, pred_user_is, &want),
             ERROR_NOT_READY);
    expect_queue(FULL, NFULL, "after non-matching checks");
    case_end();
}

static void case_wait_for_later(void)
{
    if (setup_case("wait_predicate_blocks_until_matching_event")) { case_end(); return; }
    /* op Q: report + completion at ~10 ms (arrive while we wait);
     * op W: completion at ~60 ms (the one we wait for). */
    libxl_asyncop_how qhow = { .callback = NULL, .u.for_event = 800 };
    libxl_asyncprogress_how qaop = { .callback = NULL, .for_event = 801 };
    libxl_asyncop_how whow = { .callback = NULL, .u.for_event = 900 };
    double t0 = now_ms();
    CHECK_RC(libxl_test_progress(ctx, 1, 10, &qaop, &qhow), 0);
    CHECK_RC(libxl_test_progress(ctx, 1, 60, NULL, &whow), 0);
    uint64_t want = 900;
    libxl_event *ev = NULL;
    int rc = libxl_event_wait(ctx, &ev, LIBXL_EVENTMASK_ALL, pred_user_is, &want);
    double el = now_ms() - t0;
    CHECK_RC(rc, 0);
    if (!rc) {
        CHECK_RC(ev->type, T_OC);
        CHECK_RC(ev->for_user, 900);
        CHECK_RC(ev->u.operation_complete.rc, 0);
        libxl_event_free(ctx, ev);
    }
    if (el < 50) case_fail("event_wait returned after %.1f ms, before the "
                           "operation could complete (~60 ms)", el);
    CHECK_PROMPT(t0 + 60, "libxl_event_wait returning the matching completion (due at 60 ms)");
    /* Q's events arrived meanwhile and were left queued, after FULL */
    struct exp all[NFULL + 2];
    for (int i = 0; i < NFULL; i++) all[i] = FULL[i];
    all[NFULL] = (struct exp){ T_PR, 801 };
    all[NFULL + 1] = (struct exp){ T_OC, 800 };
    expect_queue(all, NFULL + 2, "after event_wait");
    case_end();
}

static void case_wait_mask(void)
{
    /* event_wait honours the typemask too: waiting for a progress event
     * must not return the already-queued completions */
    if (setup_case("wait_typemask_skips_queued_other_types")) { case_end(); return; }
    libxl_asyncop_how how = { .callback = NULL, .u.for_event = 950 };
    libxl_asyncprogress_how aop = { .callback = NULL, .for_event = 951 };
    /* take the two prebuilt progress events away first */
    for (int i = 0; i < 2; i++) {
        libxl_event *e = NULL;
        if (libxl_event_check(ctx, &e, BIT(T_PR), NULL, NULL) == 0)
            libxl_event_free(ctx, e);
    }
    double t0 = now_ms();
    CHECK_RC(libxl_test_progress(ctx, 1, 40, &aop, &how), 0);
    libxl_event *ev = NULL;
    int rc = libxl_event_wait(ctx, &ev, BIT(T_PR), NULL, NULL);
    double el = now_ms() - t0;
    CHECK_RC(rc, 0);
    if (!rc) {
        CHECK_RC(ev->type, T_PR);
        CHECK_RC(ev->for_user, 951);
        libxl_event_free(ctx, ev);
    }
    if (el < 30) case_fail("event_wait returned after %.1f ms", el);
    CHECK_PROMPT(t0 + 40, "libxl_event_wait returning the progress event (due at 40 ms)");
    /* its completion comes with (right after) the report; collect it */
    uint64_t want = 950;
    rc = libxl_event_wait(ctx, &ev, BIT(T_OC), pred_user_is, &want);
    CHECK_RC(rc, 0);
    if (!rc) libxl_event_free(ctx, ev);
    struct exp left[NFULL];
    int n = full_without(left, T_PR, PROG_USER);
    expect_queue(left, n, "after event_wait(progress)");
    case_end();
}

static void case_mask_all(void)
{
    if (setup_case("eventmask_all_matches_every_type_in_order")) { case_end(); return; }
    expect_queue(FULL, NFULL, "LIBXL_EVENTMASK_ALL");
    /* the same with an explicit mask of both types */
    if (build_queue()) { case_fail("rebuild failed"); case_end(); return; }
    for (int i = 0; i < NFULL; i++) {
        libxl_event *ev = NULL;
        int rc = libxl_event_check(ctx, &ev, BIT(T_OC) | BIT(T_PR), NULL, NULL);
        CHECK_RC(rc, 0);
        if (rc) break;
        if ((int)ev->type != FULL[i].type || ev->for_user != FULL[i].for_user)
            case_fail("explicit mask: event #%d out of order", i);
        libxl_event_free(ctx, ev);
    }
    libxl_event *ev = NULL;
    CHECK_RC(libxl_event_check(ctx, &ev, LIBXL_EVENTMASK_ALL, NULL, NULL),
             ERROR_NOT_READY);
    case_end();
}

int main(void)
{
    watchdog(20);
    xentoollog_logger *lg = test_logger();
    ctx = test_ctx(lg);

    case_mask_opcomplete();
    case_mask_progress();
    case_predicate_selects();
    case_predicate_and_mask();
    case_nothing_matches();
    case_wait_for_later();
    case_wait_mask();
    case_mask_all();

    libxl_ctx_free(ctx);
    xtl_logger_destroy(lg);
    return h_finish();
}
