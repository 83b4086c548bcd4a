/*
 * test_hooks_timedereg.c - Xen's timeout-deregistration scenario
 * (libxl_test_timedereg, see test_timedereg.c) with the application's
 * own loop: every timeout goes through the osevent hooks (hookloop.h).
 *
 * Scenario: two runs of the scenario at once, each on its own ctx with
 * hooks whose loop runs in its own thread:
 *  - callback mode: only the application's loop drives it (no libxl
 *    thread is waiting: every timeout fires through occurred_timeout);
 *  - synchronous (ao_how NULL) in the main thread: libxl's own poller
 *    and the application's loop both watch its timeouts (mixing styles;
 *    whichever reports a timeout first fires it).
 * Group 0's 0/0 and 0/2 are deregistered before they fire: through the
 * hooks that must be timeout_modify to {0,0} ("now"), never
 * timeout_deregister, and the nexus is consumed when the loop reports it.
 *
 * Success: both runs return/complete with 0 after ~4 s (>= 3.9 s, < 7 s);
 * each run's 6 timeouts were registered with timeout_register; the
 * callback run needed exactly 2 timeout_modify calls (0/0 and 0/2), the
 * sync run 2 to 6 (its poller may also fire 0/1 and 1/0..1/2 before the
 * loop reports them, each then modified to "now"); timeout_modify only ever got {0,0}, timeout_deregister was
 * never called, every registration value came back valid, and each
 * registry drains to empty; after libxl_ctx_free none is left.
 * Failure: a FAIL line naming the case and the first failed check, or
 * the watchdog's FAIL on a hang.
 */
#include "harness.h"
#include "hookloop.h"

#include <libxl_test_timedereg.h>

static volatile int cb_calls, cb_rc = -999;

static void op_callback(libxl_ctx *c, int rc, void *for_callback)
{
    (void)c; (void)for_callback;
    cb_rc = rc;
    __atomic_add_fetch(&cb_calls, 1, __ATOMIC_SEQ_CST);
}

/* The scenario's last timer is due 4 s after the start: it must take
 * that long, and its completion must come promptly then. */
static void check_duration(const char *what, double ms)
{
    if (ms < 3900 || ms > 4000 + prompt_ms())
        case_fail("%s took %.0f ms, expected 4000 (+ at most %.0f)", what, ms, prompt_ms());
}

/* A ctx whose osevents go to a hookloop run by its own thread. */
typedef struct {
    hookloop L;
    libxl_ctx *ctx;
    hookloop_thread loop;
} hooked;

static void hooked_start(hooked *h, xentoollog_logger *lg)
{
    hookloop_init(&h->L);
    h->ctx = test_ctx(lg);
    hookloop_attach(h->ctx, &h->L);
    hookloop_thread_start(&h->loop, h->ctx, &h->L);
}

/* Waits for the registry to drain, stops the loop, frees the ctx, and
 * checks the hook calls; modify calls must be in [min_mod, max_mod]. */
static void hooked_finish(hooked *h, int min_mod, int max_mod)
{
    hookloop *L = &h->L;
    int nfds = 0, nt = 1;
    for (int i = 0; i < 100 && (nfds || nt); i++) {
        usleep(10000);
        hookloop_count(L, &nfds, &nt, NULL);
    }
    hookloop_thread_stop(&h->loop);
    CHECK(nfds == 0 && nt == 0);
    CHECK_RC(L->t_timeout_register, 6);       /* every timeout is mirrored */
    if (L->t_timeout_modify < min_mod || L->t_timeout_modify > max_mod)
        case_fail("%d timeout_modify calls, expected %d to %d", L->t_timeout_modify, min_mod, max_mod);
    CHECK_RC(L->t_timeout_modify_not_now, 0);
    CHECK_RC(L->t_timeout_deregister, 0);
    CHECK_RC(L->t_bad_registration, 0);
    libxl_ctx_free(h->ctx);
    hookloop_count(L, &nfds, &nt, NULL);
    CHECK(nfds == 0 && nt == 0);
    hookloop_destroy(L);
}

int main(void)
{
    int slow = getenv("XL_TEST_SLOW") != NULL;
    watchdog(slow ? 300 : 30);
    xentoollog_logger *lg = test_logger();
    hooked a, b;
    hooked_start(&a, lg);
    hooked_start(&b, lg);

    libxl_asyncop_how how = { .callback = op_callback };
    double t0 = now_ms();
    int cb_start_rc = libxl_test_timedereg(a.ctx, &how);
    int sync_rc = libxl_test_timedereg(b.ctx, NULL);
    double sync_ms = now_ms() - t0;
    while (!cb_calls && now_ms() - t0 < 10000)
        usleep(1000);
    double cb_ms = now_ms() - t0;

    case_begin("timedereg_scenario_through_hooks_callback_mode");
    CHECK_RC(cb_start_rc, 0);
    if (!cb_calls)
        case_fail("no completion within 10 s");
    check_duration("callback run", cb_ms);
    CHECK_RC(cb_rc, 0);
    hooked_finish(&a, 2, 2);
    CHECK_RC(cb_calls, 1);
    case_end();

    case_begin("timedereg_scenario_sync_while_the_app_loop_delivers");
    CHECK_RC(sync_rc, 0);
    check_duration("sync run", sync_ms);
    hooked_finish(&b, 2, 6);
    case_end();

    xtl_logger_destroy(lg);
    return h_finish();
}
