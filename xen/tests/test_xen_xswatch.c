/*
 * test_xen_xswatch.c: a libxl-internal xenstore watch deregistered (and
 * another registered) from inside its own callback, through the test
 * operation libxl_test_xen_xswatch (libxl_test_xen_xswatch.c, in
 * libxenlight_test.so).  Run under run-nohv --testlib.
 *
 * libxl__ev_xswatch_deregister is documented as legal from inside the
 * watch's own callback (libxl_event.c).  After the op has registered w1
 * (path1) and w3 (path3) and their initial firings have been handled, the
 * test writes with libxl's loop idle, so that when the loop next runs
 * libxenstore already holds, in this order: w1's event for path1 =
 * "fire", w1's event for path1 = "fire2", w3's event for path3 = "poke".
 * w1's callback (first event; the node reads "fire2" by then, which is a
 * "fire...") deregisters w1 and registers w2, which takes w1's slot in
 * libxl's watch table.  Then:
 *  - the second queued event for w1 must reach nobody (w1 is gone, and
 *    w2 in the same slot has another counter value and path);
 *  - w3's event, behind them in the same batch, must reach w3, once;
 *  - w2 works: a later write of path2 = "fire" completes the op.
 */
#include "xtest.h"
#include "libxl_test_xen_xswatch.h"

#define P1 "/local/domain/0/xtest/selfdereg/p1"
#define P2 "/local/domain/0/xtest/selfdereg/p2"
#define P3 "/local/domain/0/xtest/selfdereg/p3"

static void case_selfdereg(struct xs_handle *xs, xentoollog_logger *lg, int round)
{
    xt_snap snap;
    case_begin(round ? "xswatch_deregister_in_callback_again"
                     : "xswatch_deregister_in_callback");
    xt_disasters = 0;
    xt_snap_take(&snap);
    CHECK(xt_xs_put(xs, P1, "") == 0);
    CHECK(xt_xs_put(xs, P2, "") == 0);
    CHECK(xt_xs_put(xs, P3, "") == 0);
    libxl_ctx *ctx = xt_ctx(lg);
    if (!ctx) { case_end(); return; }
    libxl_asyncop_how how = { .callback = xt_op_done, .u.for_callback = &xt_done };
    xt_done = 0;
    int rc = libxl_test_xen_xswatch(ctx, P1, P2, P3, &how);
    CHECK_RC(rc, 0);
    if (!rc) {
        xt_loop_for(ctx, 30, NULL, 0); /* the initial firings of w1 and w3 */
        /* queue: w1 "fire", w1 "fire2", w3 "poke" (libxl's loop is idle) */
        CHECK(xt_xs_put(xs, P1, "fire") == 0);
        CHECK(xt_xs_put(xs, P1, "fire2") == 0);
        double t_poke = now_ms();
        CHECK(xt_xs_put(xs, P3, "poke") == 0);
        int c[XTXW_N];
        /* the loop runs until w3 has seen "poke" (and w2 is registered) */
        double end = now_ms() + 2000;
        do {
            xt_loop_once(ctx, 20, NULL, 0);
            libxl_test_xen_xswatch_counts(c);
        } while (!c[XTXW_W3_POKES] && now_ms() < end);
        CHECK_PROMPT(t_poke, now_ms(), "w3's event behind the self-deregistration");
        xt_loop_for(ctx, 30, NULL, 0); /* anything else pending */
        libxl_test_xen_xswatch_counts(c);
        fprintf(stderr, "     w1 slot %d, w2 slot %d; calls: w1 %d, w2 %d, w3 %d\n",
                c[XTXW_W1_SLOT], c[XTXW_W2_SLOT], c[XTXW_W1_CALLS],
                c[XTXW_W2_CALLS], c[XTXW_W3_CALLS]);
        CHECK_RC(c[XTXW_W2_REGISTER_RC], 0);
        if (c[XTXW_W1_CALLS_AFTER])
            case_fail("w1's callback called %d time(s) after it deregistered "
                      "itself", c[XTXW_W1_CALLS_AFTER]);
        /* w1: its initial firing and "fire", nothing more */
        if (c[XTXW_W1_CALLS] != 2)
            case_fail("w1's callback called %d times, expected 2 (initial "
                      "event, \"fire\")", c[XTXW_W1_CALLS]);
        if (c[XTXW_W3_POKES] != 1)
            case_fail("w3 saw \"poke\" %d times, expected once", c[XTXW_W3_POKES]);
        if (c[XTXW_W2_SLOT] != c[XTXW_W1_SLOT])
            fprintf(stderr, "     (w2 did not reuse w1's slot)\n");
        /* w2: only its initial firing so far, fire2 of w1 not misrouted */
        if (c[XTXW_W2_CALLS] != 1)
            case_fail("w2's callback called %d times before its path was "
                      "written, expected 1 (its initial event)", c[XTXW_W2_CALLS]);
        if (c[XTXW_WRONG_PATH])
            case_fail("%d callback(s) for an event path outside the watch",
                      c[XTXW_WRONG_PATH]);
        CHECK(!xt_done);
        /* now w2 fires: it deregisters itself and the op completes */
        double t_fire = now_ms();
        CHECK(xt_xs_put(xs, P2, "fire") == 0);
        if (xt_loop_until(ctx, &xt_done, 1, 2000, NULL, 0) != 1) {
            case_fail("the op did not complete within 2 s of w2's write");
            libxl_ao_abort(ctx, &how);
            if (xt_loop_until(ctx, &xt_done, 1, 2000, NULL, 0) != 1)
                xt_give_up("still in progress 2 s after libxl_ao_abort");
        } else {
            CHECK_RC(xt_done_rc, 0);
            CHECK_PROMPT(t_fire, xt_done_t, "completion after w2's event");
        }
        CHECK(xt_xs_put(xs, P2, "fire") == 0); /* nobody listens now */
        CHECK(xt_xs_put(xs, P1, "fire") == 0);
        xt_loop_for(ctx, 30, NULL, 0);
        libxl_test_xen_xswatch_counts(c);
        if (c[XTXW_W1_CALLS_AFTER] || c[XTXW_W2_CALLS_AFTER])
            case_fail("a callback called after its watch deregistered itself "
                      "(w1 %d, w2 %d)", c[XTXW_W1_CALLS_AFTER],
                      c[XTXW_W2_CALLS_AFTER]);
        CHECK(xt_done == 1);
    }
    libxl_ctx_free(ctx);
    xt_snap_check(&snap);
    if (xt_disasters) case_fail("disaster hook called: %s", xt_disaster_msg);
    case_end();
}

/* The op aborted while its watches wait: ERROR_ABORTED, promptly. */
static void case_abort(struct xs_handle *xs, xentoollog_logger *lg)
{
    xt_snap snap;
    case_begin("xswatch_op_aborted");
    xt_disasters = 0;
    xt_snap_take(&snap);
    libxl_ctx *ctx = xt_ctx(lg);
    if (!ctx) { case_end(); return; }
    CHECK(xt_xs_put(xs, P1, "") == 0);
    libxl_asyncop_how how = { .callback = xt_op_done, .u.for_callback = &xt_done };
    xt_done = 0;
    int rc = libxl_test_xen_xswatch(ctx, P1, P2, P3, &how);
    CHECK_RC(rc, 0);
    if (!rc) {
        xt_loop_for(ctx, 20, NULL, 0);
        double t0 = now_ms();
        CHECK_RC(libxl_ao_abort(ctx, &how), 0);
        if (xt_loop_until(ctx, &xt_done, 1, 2000, NULL, 0) != 1) {
            xt_give_up("no completion within 2 s of libxl_ao_abort");
        } else {
            CHECK_RC(xt_done_rc, ERROR_ABORTED);
            CHECK_PROMPT(t0, xt_done_t, "completion after libxl_ao_abort");
        }
        int c[XTXW_N];
        CHECK(xt_xs_put(xs, P1, "fire") == 0);
        xt_loop_for(ctx, 30, NULL, 0);
        libxl_test_xen_xswatch_counts(c);
        if (c[XTXW_W1_CALLS] > 1)
            case_fail("w1 called after the abort deregistered it");
    }
    libxl_ctx_free(ctx);
    xt_snap_check(&snap);
    if (xt_disasters) case_fail("disaster hook called: %s", xt_disaster_msg);
    case_end();
}

int main(void)
{
    watchdog_thread(30);
    setvbuf(stdout, NULL, _IOLBF, 0);
    xentoollog_logger *lg = xt_logger();
    struct xs_handle *xs = xt_xs_open();
    if (!xs) return 1;
    case_selfdereg(xs, lg, 0);
    case_selfdereg(xs, lg, 1);
    case_abort(xs, lg);
    xs_close(xs);
    xtl_logger_destroy(lg);
    return xt_failures ? 1 : 0;
}
