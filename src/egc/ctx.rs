//! The ctx: one lock around all state, plus the logger.
//!
//! Invariants:
//! * **One lock.** Every registry (fds, timeouts, aos, events, pollers, hook
//!   tokens, children) lives in [`State`] behind `Ctx::state`, a recursive
//!   pthread mutex (`sys::lock`; in Xen's libxl, the C ctx's own `lock`).
//!   It is taken only through an [`Egc`](crate::egc::Egc) and released only
//!   while a poller sleeps and while application callbacks run (event, ao
//!   completion and progress callbacks). Osevent hooks are called with it
//!   held, as in libxl.
//! * **No illegal re-entry.** A thread inside an application hook made with
//!   the lock held (osevent hook, predicate, `disaster`) that calls the
//!   library's public API is caught (`egc::in_hook`) and reported as fatal
//!   misuse, never left to deadlock or to corrupt a half-done change.
//! * The ctx is `Sync`: any thread may call any entry point at any time.
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::sys::lock::Locked;

use crate::log::{Level, Logger};
use crate::reg::ao::AoRegistry;
use crate::reg::child::ChildRegistry;
use crate::reg::event::EventState;
use crate::reg::fd::FdRegistry;
use crate::reg::hooks::HookState;
use crate::reg::poller::{interest::Interest, Pollers};
use crate::reg::time::TimeRegistry;

use super::ao::AbortHandler;
use super::child::{ChildCallback, SigchldState};
use super::fd::FdHandler;
use super::time::TimeHandler;
use super::Egc;

// What one pending operation's registrations cost (B6), at compile time:
// an fd registration (with its handler) and a timeout are one slab slot each.
const _: () = assert!(std::mem::size_of::<crate::reg::fd::FdEntry<FdHandler>>() == 48);
const _: () = assert!(std::mem::size_of::<crate::reg::time::TimeEntry<TimeHandler>>() == 56);
const _: () = assert!(std::mem::size_of::<crate::reg::event::Event>() == 48);

/// What an ao carries for the layer the core is embedded in: inside Xen's
/// libxl, the C `libxl__ao` (freed when the core frees the ao); nothing in
/// the standalone library, whose aos stay as small as they were.
#[cfg(feature = "xen")]
pub type AoExtra = Option<crate::reg::foreign::Foreign>;
#[cfg(not(feature = "xen"))]
pub type AoExtra = ();

/// Everything the lock guards: the registries, and the ctx's SIGCHLD
/// arrangement.
#[derive(Default)]
pub struct State {
    pub fds: FdRegistry<FdHandler>,
    pub times: TimeRegistry<TimeHandler>,
    pub aos: AoRegistry<AbortHandler, AoExtra>,
    pub events: EventState,
    pub pollers: Pollers,
    /// The kernel interest set the library's own pollers sleep on once
    /// many fds are registered (see `reg::poller::interest`).
    pub interest: Option<Interest>,
    pub hooks: HookState,
    pub children: ChildRegistry<ChildCallback>,
    pub sigchld: SigchldState,
    /// Work each thread inside deferred (see `egc`).
    pub deferred: super::DeferredQueues,
}

pub struct Ctx {
    pub(crate) state: Locked<State>,
    pub logger: Logger,
    /// The address of the C ctx this core belongs to when built into Xen's
    /// libxl (0 in the standalone library): the embedding layer's, never
    /// read by the core.
    pub host: usize,
    /// Unique per ctx, for the per-thread record of held locks.
    pub(crate) id: usize,
    /// Test aid (`LIBXL_TEST_NO_BATON=1`): never pass the baton. Only for
    /// the negative-control tests that prove the baton is needed.
    pub(crate) no_baton: bool,
    /// Threads currently inside a public entry point of this ctx.
    pub(crate) entered: AtomicUsize,
    /// How deep the lock holder is in the application's hooks (see
    /// `egc::in_hook`); changed only under the lock.
    pub(crate) in_hook: AtomicUsize,
    /// How the library's own pollers sleep (`sys::backend`).
    pub(crate) backend: crate::sys::Backend,
    /// Test aid (`LIBXL_TEST_AUDIT=fail`): a registered fd found closed
    /// (by the idle audit or any other fd check) aborts the program, so
    /// that no test passes because a check rescued a sleeper.
    pub(crate) audit_fail: bool,
    /// The lock's epoch when the last `libxl_osevent_beforepoll` that
    /// handed out a set released the lock (see `app`); `u64::MAX`: none.
    pub(crate) app_set_epoch: AtomicU64,
}

static NEXT_CTX_ID: AtomicUsize = AtomicUsize::new(1);

impl Ctx {
    /// A ctx with its application poller (the one beforepoll hands out),
    /// its state behind a recursive mutex of its own.
    pub fn new(logger: Logger) -> Result<Ctx, std::io::Error> {
        Ctx::with_lock(logger, 0, Locked::new)
    }

    /// A ctx whose state is guarded by the lock `lock` makes around it
    /// (inside Xen's libxl: the C ctx's own `lock`, see `sys::lock`), and
    /// that belongs to the C ctx at address `host` (0: none).
    pub fn with_lock(
        logger: Logger,
        host: usize,
        lock: impl FnOnce(State) -> Result<Locked<State>, std::io::Error>,
    ) -> Result<Ctx, std::io::Error> {
        let no_baton = std::env::var_os("LIBXL_TEST_NO_BATON").is_some_and(|v| v == "1");
        let mut state = State::default();
        state.pollers.init_app()?;
        let ctx = Ctx {
            state: lock(state)?,
            host,
            logger,
            id: NEXT_CTX_ID.fetch_add(1, Ordering::Relaxed),
            no_baton,
            entered: AtomicUsize::new(0),
            in_hook: AtomicUsize::new(0),
            backend: crate::sys::backend(),
            audit_fail: std::env::var_os("LIBXL_TEST_AUDIT").is_some_and(|v| v == "fail"),
            app_set_epoch: AtomicU64::new(u64::MAX),
        };
        if no_baton {
            crate::xl_log!(&ctx, Warn, "LIBXL_TEST_NO_BATON=1: baton passing disabled (test aid; hangs are expected)");
        }
        Ok(ctx)
    }

    /// Reports misuse that libxl treats as fatal, then aborts the process.
    pub fn fatal(&self, rule: &str) -> ! {
        self.logger.log(Level::Critical, -1, format_args!("fatal misuse of libxl: {rule}"));
        eprintln!("libxl: fatal misuse: {rule}");
        std::process::abort();
    }

    /// How many threads are inside the library for this ctx right now.
    pub fn threads_inside(&self) -> usize {
        self.entered.load(Ordering::SeqCst)
    }
}

impl Egc<'_> {
    /// Everything `libxl_ctx_free` releases, lock held: SIGCHLD and child
    /// records, fd registrations (each `fd_deregister` hook is called),
    /// timeouts, aos and queued events. Pending operations are not cancelled silently: each kind of
    /// leftover is logged at ERROR, since their completions will never be
    /// reported.
    pub fn ctx_teardown(&mut self) {
        self.childproc_teardown();
        let inprogress = self.s().aos.inprogress_count();
        if inprogress > 0 {
            crate::xl_log!(self.ctx, Error,
                "libxl_ctx_free: {inprogress} asynchronous operation(s) still in progress are discarded; \
                 their completions will never be reported");
        }
        for ev in self.s().fds.tokens() {
            self.ev_fd_deregister(ev);
        }
        for ev in self.s().times.tokens() {
            self.ev_time_deregister(ev);
        }
        self.st().aos.discard_all();
        let queued = self.st().events.discard_all();
        if queued > 0 {
            crate::xl_log!(self.ctx, Debug, "libxl_ctx_free: {queued} queued event(s) never retrieved are freed");
        }
        crate::xl_log!(self.ctx, Debug, "libxl_ctx_free: ctx {:p} freed", self.ctx);
    }
}
