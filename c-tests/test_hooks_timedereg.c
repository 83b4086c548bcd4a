/*
 * test_hooks_timedereg.c - Xen's timeout-deregistration scenario
 * (libxl_test_timedereg, see test_timedereg.c) with the application's
 * own loop: every timeout goes through the osevent hooks (hookloop.h).
 *
 * Scenario: one ctx with hooks.  Two runs of the scenario at once:
 *  - callback mode, driven only by the application's loop in the main
 *    thread (occurred_timeout for every timeout that fires);
 *  - synchronous (ao_how NULL) in a second thread: libxl's own poller
 *    and the application's loop both watch its timeouts (mixing styles).
 * Group 0's 0/0 and 0/2 are deregistered before they fire: through the
 * hooks that must be timeout_modify to {0,0} ("now"), never
 * timeout_deregister, and the nexus is consumed when the loop reports it.
 *
 * Success: both runs return/complete with 0 after ~4 s (>= 3.9 s, < 7 s);
 * the callback run's 6 timeouts were registered with timeout_register;
 * timeout_modify only ever got {0,0}, timeout_deregister was never
 * called, every registration value came back valid, and the registry
 * drains to empty; after libxl_ctx_free no fd and no timeout is left.
 * Failure: a FAIL line naming the case and the first failed check, or
 * the watchdog's FAIL on a hang.
 */
#include "harness.h"
#include "hookloop.h"

#include <libxl_test_timedereg.h>

static libxl_ctx *ctx;

struct sync_run { int rc; double ms; };

static void *sync_thread(void *arg)
{
    struct sync_run *r = arg;
    double t0 = now_ms();
    r->rc = libxl_test_timedereg(ctx, NULL);
    r->ms = now_ms() - t0;
    return NULL;
}

static volatile int cb_calls, cb_rc = -999;

static void op_callback(libxl_ctx *c, int rc, void *for_callback)
{
    (void)c; (void)for_callback;
    cb_rc = rc;
    __atomic_add_fetch(&cb_calls, 1, __ATOMIC_SEQ_CST);
}

static void check_duration(const char *what, double ms)
{
    if (ms < 3900 || ms >= 7000)
        case_fail("%s took %.0f ms, expected about 4000", what, ms);
}

int main(void)
{
    int slow = getenv("XL_TEST_SLOW") != NULL;
    watchdog(slow ? 300 : 30);
    xentoollog_logger *lg = test_logger();
    hookloop L;
    hookloop_init(&L);
    ctx = test_ctx(lg);
    hookloop_attach(ctx, &L);

    struct sync_run sr = { .rc = -999 };
    pthread_t th;
    pthread_create(&th, NULL, sync_thread, &sr);

    case_begin("timedereg_scenario_through_hooks_callback_mode");
    libxl_asyncop_how how = { .callback = op_callback };
    double t0 = now_ms();
    CHECK_RC(libxl_test_timedereg(ctx, &how), 0);
    if (!hookloop_run_until(ctx, &L, &cb_calls, 1, 10000))
        case_fail("no completion within 10 s");
    check_duration("callback run", now_ms() - t0);
    CHECK_RC(cb_rc, 0);
    hookloop_run_for(ctx, &L, 20);
    CHECK_RC(cb_calls, 1);
    case_end();

    case_begin("timedereg_scenario_sync_while_the_app_loop_delivers");
    /* Keep delivering until the sync run is done. */
    double end = now_ms() + 10000;
    while (sr.rc == -999 && now_ms() < end)
        hookloop_run_once(ctx, &L, 20);
    pthread_join(th, NULL);
    CHECK_RC(sr.rc, 0);
    check_duration("sync run", sr.ms);
    case_end();

    case_begin("timedereg_through_hooks_never_deregisters_a_timeout");
    int nfds = 0, nt = 1;
    for (int i = 0; i < 100 && (nfds || nt); i++) {
        hookloop_run_once(ctx, &L, 10);
        hookloop_count(&L, &nfds, &nt, NULL);
    }
    CHECK(nfds == 0 && nt == 0);
    CHECK_RC(L.t_timeout_register, 12);   /* 6 per run: every timeout is mirrored */
    /* 0/0 and 0/2 of each run, plus any of the sync run's that its own
     * poller fired before the loop reported them. */
    CHECK(L.t_timeout_modify >= 4 && L.t_timeout_modify <= 8);
    CHECK_RC(L.t_timeout_modify_not_now, 0);
    CHECK_RC(L.t_timeout_deregister, 0);
    CHECK_RC(L.t_bad_registration, 0);
    libxl_ctx_free(ctx);
    hookloop_count(&L, &nfds, &nt, NULL);
    CHECK(nfds == 0 && nt == 0);
    case_end();

    hookloop_destroy(&L);
    xtl_logger_destroy(lg);
    return h_finish();
}
