//! The Egc ("event generation context"): the guard every entry point holds.
//!
//! An `Egc` is one level of the ctx lock (`sys::lock`) held by this
//! thread, the only way to the ctx's state ([`Egc::st`]), and the guard's
//! duties. Code inside the library never calls the application directly
//! from deep inside; it defers:
//! * *immediates*: internal callbacks that must not run re-entrantly inside
//!   the code that scheduled them; they run, lock held, before the outer
//!   egc goes;
//! * *application calls*: event callbacks, progress callbacks and ao
//!   completion callbacks; they run after the lock is released.
//!
//! Deferred work belongs to the thread that made it (one queue per thread
//! and ctx, kept in the ctx's state): whichever egc of that thread is *outer* — made by a public
//! entry point — runs it when it goes. Dropping an `Egc`, on every path,
//! passes the baton (see `poller`) and releases its level; an outer one
//! first runs the immediates and afterwards, unlocked, the application
//! calls. No exit path can forget the baton because no exit path skips
//! `Drop`; and nothing is run while a panic unwinds (the boundary reports
//! the panic instead).
//!
//! A *nested* egc ([`Egc::nested`]) is what libxl's internal C API takes
//! when C code calls into the core, often from inside a callback the core
//! made (re-entry is the normal case there): it takes another level and
//! leaves deferred work to whoever flushes this thread's queue (an outer
//! egc, or C's `libxl__egc_cleanup_2_ul_cb_gc`).
//!
//! Invariants:
//! * State is reached only through `st()`, a borrow of this egc: no borrow
//!   of it can live across a callback (callbacks take `&mut Egc`).
//! * A thread inside an application hook the library calls with the lock
//!   held (osevent hooks, event predicates, `disaster`, `fork_replacement`)
//!   may not enter the library's public API for that ctx: that is fatal
//!   misuse (libxl_event.h forbids it), reported, never a deadlock.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::sync::atomic::Ordering;

pub mod ao;
pub mod app;
pub mod child;
pub mod ctx;
#[cfg(test)]
mod differential_tests;
pub mod event;
pub mod fd;
pub mod hooks;
pub mod interest;
pub mod sleep;
pub mod time;

pub use self::ctx::{Ctx, State};
use crate::reg::AoId;
use crate::sys::lock::{thread_key, Guard};

pub type Immediate = Box<dyn FnOnce(&mut Egc<'_>) + Send>;
pub type AppFn = Box<dyn FnOnce() + Send>;

/// An application call queued for after unlock, with the bookkeeping to do
/// (lock held again) once it has returned.
pub struct AppCall {
    /// `event_occurs` or a progress callback, or a completion callback.
    run: AppFn,
    then: After,
}

pub enum After {
    Nothing,
    /// A progress report for this ao was delivered.
    ProgressDelivered(AoId),
    /// This ao's completion callback has returned.
    AoNotified(AoId),
}

/// One thread's deferred work for one ctx.
#[derive(Default)]
struct Deferred {
    /// The thread (`sys::lock::thread_key`).
    thread: usize,
    immediates: VecDeque<Immediate>,
    app_events: VecDeque<AppCall>,
    app_progress: VecDeque<AppCall>,
    app_aos: VecDeque<AppCall>,
}

impl Deferred {
    fn has_app_calls(&self) -> bool {
        !(self.app_events.is_empty() && self.app_progress.is_empty() && self.app_aos.is_empty())
    }

    fn is_empty(&self) -> bool {
        self.immediates.is_empty() && !self.has_app_calls()
    }

    /// Application calls in libxl's order: events, progress, completions.
    fn take_app_calls(&mut self) -> Vec<AppCall> {
        let mut v: Vec<AppCall> = self.app_events.drain(..).collect();
        v.extend(self.app_progress.drain(..));
        v.extend(self.app_aos.drain(..));
        v
    }
}

/// The deferred work of each thread inside the library for this ctx. It is
/// kept in the ctx's state (under its lock), not in thread-local storage:
/// a program may free its ctx from an exit handler, after its main
/// thread's thread-locals are gone (xl does).
#[derive(Default)]
pub struct DeferredQueues {
    queues: Vec<Deferred>,
}

impl DeferredQueues {
    fn of(&mut self, thread: usize) -> &mut Deferred {
        let i = match self.queues.iter().position(|q| q.thread == thread) {
            Some(i) => i,
            None => {
                self.queues.push(Deferred { thread, ..Deferred::default() });
                self.queues.len() - 1
            }
        };
        &mut self.queues[i]
    }

    /// `thread`'s queue, if it has one (reading needs no new queue).
    fn find(&mut self, thread: usize) -> Option<&mut Deferred> {
        self.queues.iter_mut().find(|q| q.thread == thread)
    }

    /// Drops `thread`'s queue if it is empty.
    fn forget(&mut self, thread: usize) {
        if let Some(i) = self.queues.iter().position(|q| q.thread == thread && q.is_empty()) {
            self.queues.swap_remove(i);
        }
    }
}

/// True if this thread holds one of our levels of `ctx`'s lock.
pub fn holds_lock(ctx: &Ctx) -> bool {
    ctx.state.held_here() > 0
}

/// Runs `f`, an application hook called with the lock held, marking the
/// ctx as inside it: the hook entering the library is caught. The hooks
/// run with the lock held, so only the thread holding it can be inside
/// one: the mark is a count in the ctx (touched under the lock), read by
/// an entry point once it holds the lock too.
pub fn in_hook<R>(ctx: &Ctx, f: impl FnOnce() -> R) -> R {
    ctx.in_hook.fetch_add(1, Ordering::Relaxed);
    struct Out<'a>(&'a Ctx);
    impl Drop for Out<'_> {
        fn drop(&mut self) {
            self.0.in_hook.fetch_sub(1, Ordering::Relaxed);
        }
    }
    let _out = Out(ctx);
    f()
}

/// Whether the thread holding `ctx`'s lock (the caller, once it holds it)
/// is inside one of the application's hooks.
fn inside_hook(ctx: &Ctx) -> bool {
    ctx.in_hook.load(Ordering::Relaxed) > 0
}

pub struct Egc<'c> {
    pub ctx: &'c Ctx,
    guard: Guard<'c, State>,
    /// Made by a public entry point: runs this thread's deferred work.
    outer: bool,
    /// Lock levels this thread's C caller holds besides ours (libxl's
    /// "locked exactly once" entry points): released with ours while a
    /// poller sleeps.
    foreign: u32,
    /// What the embedding layer keeps for the callbacks this egc makes
    /// (inside Xen's libxl: the C `libxl__egc` they are passed, whose gc
    /// holds what they allocate). Dropped when the callbacks made so far
    /// are all done: at the end of [`Egc::flush_unlocked`] (each round of a
    /// loop) and when the egc goes.
    attached: Option<Box<dyn std::any::Any>>,
    /// The fd results being dispatched are fresh: taken by this egc's own
    /// sleep, with no other level of the lock taken since and no callback
    /// run since (see `fd`'s "no spurious callbacks"). Set by a sleep for
    /// its dispatch; cleared by every fd callback and when the dispatch
    /// ends.
    pub(crate) fresh: bool,
    /// A `libxl_osevent_beforepoll` handed out a set: when this egc lets
    /// the lock go, the lock's epoch is noted for the afterpoll (`app`).
    pub(crate) app_set_made: bool,
}

impl<'c> Egc<'c> {
    /// A public entry point's egc: takes the lock. Entering from inside an
    /// application hook of this ctx is fatal misuse.
    pub fn new(ctx: &'c Ctx, entry: &str) -> Egc<'c> {
        let guard = ctx.state.lock().guard();
        if inside_hook(ctx) {
            ctx.fatal(&format!(
                "{entry} called re-entrantly while this thread is inside libxl with the ctx locked \
                 (from an osevent hook, an event predicate, the disaster callback or fork_replacement); \
                 libxl_event.h forbids calling libxl from those"
            ));
        }
        Egc::with_guard(ctx, guard, true, 0)
    }

    /// The one constructor: an egc holding `guard`'s level.
    fn with_guard(ctx: &'c Ctx, guard: Guard<'c, State>, outer: bool, foreign: u32) -> Egc<'c> {
        Egc { ctx, guard, outer, foreign, attached: None, fresh: false, app_set_made: false }
    }

    /// An egc for code already inside the library (libxl's internal C
    /// API): another level of the lock; deferred work is left to whoever
    /// flushes this thread's queue. `foreign`: lock levels the C caller
    /// holds that a sleep must release too (0 unless the entry point is
    /// one libxl calls with the ctx "locked exactly once").
    pub fn nested(ctx: &'c Ctx, foreign: u32) -> Egc<'c> {
        Egc::with_guard(ctx, ctx.state.lock().guard(), false, foreign)
    }

    /// The ctx's state, to change. A borrow of this egc: it cannot be held
    /// across a callback (which takes `&mut Egc`).
    pub fn st(&mut self) -> &mut State {
        self.guard.get_mut()
    }

    /// The ctx's state, to read.
    pub fn s(&self) -> &State {
        self.guard.get()
    }

    /// Gives up this egc's borrow of the state before calling code that may
    /// enter the library again with an egc of its own (a C callback).
    pub fn release_state(&mut self) {
        self.guard.release();
    }

    /// Runs `f` with the lock released (a poller's sleep; an application
    /// call), then re-takes it. Only the thread's only egc of this ctx may
    /// do so: an outer one up the stack would find the state changed under
    /// it (libxl: "must be called with the ctx locked exactly once").
    pub fn unlocked<R>(&mut self, f: impl FnOnce() -> R) -> R {
        let ours = self.ctx.state.held_here();
        if ours != 1 {
            self.ctx.fatal(&format!(
                "libxl would release the ctx lock while {} other level(s) of it are held on this thread \
                 (a synchronous operation or event wait started from inside a libxl callback)",
                ours.saturating_sub(1)
            ));
        }
        self.guard.unlocked(self.foreign, f)
    }

    /// The embedding layer's value for this egc's callbacks (see
    /// `attached`), made by `make` if there is none (or one of another
    /// type) yet.
    pub fn attachment<T: 'static>(&mut self, make: impl FnOnce() -> T) -> &mut T {
        if !self.attached.as_ref().is_some_and(|a| a.is::<T>()) {
            self.attached = Some(Box::new(make()));
        }
        self.attached.as_mut().and_then(|a| a.downcast_mut::<T>()).expect("made just above")
    }

    /// Schedules an internal callback to run (lock held) before this
    /// thread's outer egc is disposed of, outside the caller's stack frame.
    pub fn immediate(&mut self, f: Immediate) {
        self.deferred(|d| d.immediates.push_back(f));
    }

    /// This thread's deferred work.
    fn deferred<R>(&mut self, f: impl FnOnce(&mut Deferred) -> R) -> R {
        let t = thread_key();
        f(self.st().deferred.of(t))
    }

    pub(crate) fn queue_event_call(&mut self, run: AppFn) {
        self.deferred(|d| d.app_events.push_back(AppCall { run, then: After::Nothing }));
    }

    pub(crate) fn queue_progress_call(&mut self, run: AppFn, ao: AoId) {
        self.deferred(|d| d.app_progress.push_back(AppCall { run, then: After::ProgressDelivered(ao) }));
    }

    pub(crate) fn queue_ao_call(&mut self, run: AppFn, ao: AoId) {
        self.deferred(|d| d.app_aos.push_back(AppCall { run, then: After::AoNotified(ao) }));
    }

    /// Runs pending immediates (lock held), in order, until none are left.
    pub fn run_immediates(&mut self) {
        let t = thread_key();
        while let Some(f) = self.st().deferred.find(t).and_then(|d| d.immediates.pop_front()) {
            f(self);
        }
    }

    fn take_app_calls(&mut self) -> Vec<AppCall> {
        let t = thread_key();
        self.st().deferred.find(t).map(Deferred::take_app_calls).unwrap_or_default()
    }

    /// libxl's "cleanup_2" step inside a loop: runs immediates, then the
    /// queued application calls with the lock released, then re-locks.
    /// Does not pass the baton: the caller is still in the event loop.
    pub fn flush_unlocked(&mut self) {
        self.run_immediates();
        loop {
            let calls = self.take_app_calls();
            if calls.is_empty() {
                break;
            }
            for AppCall { run, then } in calls {
                self.unlocked(run);
                self.after_app_call(then);
            }
            self.run_immediates();
        }
        self.attached = None;
    }

    fn after_app_call(&mut self, then: After) {
        match then {
            After::Nothing => {}
            After::ProgressDelivered(ao) => self.ao_progress_delivered(ao),
            After::AoNotified(ao) => self.ao_notified(ao),
        }
    }

    /// Runs this thread's deferred work for `ctx` with no lock held (libxl's
    /// `libxl__egc_cleanup_2_ul_cb_gc`): immediates under a level of the
    /// lock, application calls without, each one's bookkeeping under a new
    /// outer egc (whose own drop runs what that queued).
    pub fn run_deferred(ctx: &Ctx) {
        let e = Egc::with_guard(ctx, ctx.state.lock().guard(), true, 0);
        drop(e);
    }
}

impl Drop for Egc<'_> {
    fn drop(&mut self) {
        self.release();
        if self.app_set_made {
            // The lock is still held (its level goes after this), and every
            // level this egc's bookkeeping took is counted by now.
            self.ctx.app_set_epoch.store(self.ctx.state.epoch(), std::sync::atomic::Ordering::Relaxed);
        }
    }
}

impl Egc<'_> {
    /// What dropping an egc does before its lock level goes: immediates,
    /// the baton, the application calls.
    fn release(&mut self) {
        if std::thread::panicking() {
            // The boundary reports the panic; the lock level goes with the
            // `Level`. Nothing of the application's runs now.
            return;
        }
        if self.outer {
            self.run_immediates();
        }
        self.baton_pass();
        if !self.outer {
            return;
        }
        // This egc's level goes with `self.level` after this function; the
        // application calls must run with it released, so the work is done
        // by fresh egcs below, one per bookkeeping step, after a detour:
        // take the calls now, release, run them.
        let ctx = self.ctx;
        let calls = self.take_app_calls();
        if calls.is_empty() {
            let t = thread_key();
            self.st().deferred.forget(t);
            return;
        }
        self.guard.unlocked(self.foreign, || run_app_calls(ctx, calls));
    }
}

/// Runs application calls with the lock released; each one's bookkeeping
/// re-locks through a fresh outer egc, whose drop passes the baton and runs
/// what the bookkeeping queued (e.g. a completion after the last progress
/// report).
fn run_app_calls(ctx: &Ctx, calls: Vec<AppCall>) {
    for AppCall { run, then } in calls {
        run();
        if !matches!(then, After::Nothing) {
            let mut e = Egc::with_guard(ctx, ctx.state.lock().guard(), true, 0);
            e.after_app_call(then);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;
    use crate::testutil;

    #[test]
    fn app_calls_run_after_the_lock_is_released() {
        let ctx = Arc::new(testutil::ctx());
        let ran_unlocked = Arc::new(AtomicUsize::new(0));
        {
            let mut egc = Egc::new(&ctx, "test");
            let (c, r) = (ctx.clone(), ran_unlocked.clone());
            egc.queue_event_call(Box::new(move || {
                // another thread can take the lock: nobody holds it
                let c2 = c.clone();
                let free = std::thread::spawn(move || {
                    drop(Egc::new(&c2, "probe"));
                    true
                })
                .join()
                .unwrap();
                if free && !holds_lock(&c) {
                    r.fetch_add(1, Ordering::SeqCst);
                }
            }));
            assert_eq!(ran_unlocked.load(Ordering::SeqCst), 0, "queued, not run, while locked");
        }
        assert_eq!(ran_unlocked.load(Ordering::SeqCst), 1);
        assert!(!holds_lock(&ctx), "egc released the lock");
    }

    #[test]
    fn immediates_run_in_order_with_the_lock_held() {
        let ctx = testutil::ctx();
        let log = Arc::new(parking_lot::Mutex::new(Vec::new()));
        {
            let mut egc = Egc::new(&ctx, "test");
            for i in 0..3 {
                let l = log.clone();
                egc.immediate(Box::new(move |e| {
                    assert!(holds_lock(e.ctx));
                    l.lock().push(i);
                    if i == 0 {
                        let l2 = l.clone();
                        e.immediate(Box::new(move |_| l2.lock().push(10)));
                    }
                }));
            }
        }
        assert_eq!(*log.lock(), vec![0, 1, 2, 10]);
    }

    #[test]
    fn unlocked_section_releases_the_lock() {
        let ctx = testutil::ctx();
        let mut egc = Egc::new(&ctx, "test");
        assert!(holds_lock(&ctx));
        let inside = egc.unlocked(|| holds_lock(&ctx));
        assert!(!inside);
        assert!(holds_lock(&ctx));
        drop(egc);
        assert!(!holds_lock(&ctx));
    }

    /// Work deferred by a nested egc (libxl's internal API, entered from C)
    /// waits for the thread's outer egc, and runs when that one goes.
    #[test]
    fn a_nested_egcs_deferred_work_runs_when_the_outer_one_goes() {
        let ctx = testutil::ctx();
        let ran = Arc::new(AtomicUsize::new(0));
        let mut outer = Egc::new(&ctx, "test");
        {
            let mut inner = Egc::nested(&ctx, 0);
            let r = ran.clone();
            inner.queue_event_call(Box::new(move || {
                r.fetch_add(1, Ordering::SeqCst);
            }));
        }
        assert_eq!(ran.load(Ordering::SeqCst), 0, "still deferred: the outer egc holds the lock");
        outer.st(); // the outer egc is still usable
        drop(outer);
        assert_eq!(ran.load(Ordering::SeqCst), 1);
    }

    struct Flag(Arc<AtomicUsize>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// The embedding layer's value for a round of callbacks (a C egc and
    /// its gc) lives until the round is done: a flush, or the egc going.
    #[test]
    fn an_attachment_lives_until_its_round_of_callbacks_is_done() {
        let ctx = testutil::ctx();
        let dropped = Arc::new(AtomicUsize::new(0));
        let mut egc = Egc::new(&ctx, "test");
        let d = dropped.clone();
        egc.attachment(|| Flag(d));
        let d = dropped.clone();
        egc.attachment(|| -> Flag { unreachable!("{d:?}: made once per round") });
        assert_eq!(dropped.load(Ordering::SeqCst), 0);
        egc.flush_unlocked();
        assert_eq!(dropped.load(Ordering::SeqCst), 1, "a flush ends the round");
        let d = dropped.clone();
        egc.attachment(|| Flag(d));
        drop(egc);
        assert_eq!(dropped.load(Ordering::SeqCst), 2, "the egc going ends it too");
    }

    /// Deferred work is kept in the ctx's state, per thread: a thread's
    /// work is run by that thread's outer egc, never by another thread's.
    #[test]
    fn deferred_work_belongs_to_the_thread_that_made_it() {
        let ctx = Arc::new(testutil::ctx());
        let ran_on = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let mut mine = Egc::nested(&ctx, 0);
        let r = ran_on.clone();
        mine.queue_event_call(Box::new(move || r.lock().push(std::thread::current().id())));
        drop(mine); // nested: leaves the work queued
        let c2 = ctx.clone();
        std::thread::spawn(move || drop(Egc::new(&c2, "other thread"))).join().unwrap();
        assert!(ran_on.lock().is_empty(), "another thread's egc does not run this thread's work");
        Egc::run_deferred(&ctx);
        assert_eq!(*ran_on.lock(), vec![std::thread::current().id()]);
    }

    #[test]
    fn deferred_work_of_a_c_frame_runs_at_its_cleanup() {
        let ctx = testutil::ctx();
        let ran = Arc::new(AtomicUsize::new(0));
        {
            let mut e = Egc::nested(&ctx, 0);
            let r = ran.clone();
            e.queue_event_call(Box::new(move || {
                r.fetch_add(1, Ordering::SeqCst);
            }));
        }
        assert_eq!(ran.load(Ordering::SeqCst), 0);
        Egc::run_deferred(&ctx);
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        assert!(!holds_lock(&ctx));
    }
}
