//! The Egc ("event generation context"): the guard every entry point holds.
//!
//! An `Egc` owns the ctx lock. Code inside the library queues work on it
//! instead of calling the application directly:
//! * *immediates*: internal callbacks that must not run re-entrantly inside
//!   the code that scheduled them; they run, lock held, before the egc goes;
//! * *application calls*: event callbacks, progress callbacks and ao
//!   completion callbacks; they run after the lock is released.
//!
//! Dropping an `Egc`, on every path, does in order: run immediates, pass the
//! baton (see `poller`), release the lock, run the application calls. No exit
//! path can forget the baton because no exit path skips `Drop`.
//!
//! Invariant: while a thread has an `Egc` for a ctx, that ctx is in the
//! thread's held set; creating a second `Egc` for it on the same thread is
//! illegal re-entry and is reported as fatal.
#![forbid(unsafe_code)]

use std::cell::RefCell;
use std::collections::VecDeque;
use std::ops::{Deref, DerefMut};

use parking_lot::MutexGuard;

use crate::ao::AoId;
use crate::ctx::{Ctx, State};

thread_local! {
    /// Ids of the ctxs whose lock this thread holds right now.
    static HELD: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

fn held_push(id: usize) {
    HELD.with(|h| h.borrow_mut().push(id));
}

fn held_pop(id: usize) {
    HELD.with(|h| {
        let mut h = h.borrow_mut();
        if let Some(pos) = h.iter().rposition(|&x| x == id) {
            h.remove(pos);
        }
    });
}

/// True if this thread holds `ctx`'s lock.
pub fn holds_lock(ctx: &Ctx) -> bool {
    HELD.with(|h| h.borrow().contains(&ctx.id))
}

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

pub struct Egc<'c> {
    pub ctx: &'c Ctx,
    guard: Option<MutexGuard<'c, State>>,
    immediates: VecDeque<Immediate>,
    app_events: VecDeque<AppCall>,
    app_progress: VecDeque<AppCall>,
    app_aos: VecDeque<AppCall>,
}

impl<'c> Egc<'c> {
    /// Takes the ctx lock. Illegal re-entry (this thread already holds it)
    /// is fatal misuse.
    pub fn new(ctx: &'c Ctx, entry: &str) -> Egc<'c> {
        if holds_lock(ctx) {
            ctx.fatal(&format!(
                "{entry} called re-entrantly while this thread is inside libxl with the ctx locked \
                 (from an osevent hook, an event predicate or the disaster callback); \
                 libxl_event.h forbids calling libxl from those"
            ));
        }
        let guard = ctx.state.lock();
        held_push(ctx.id);
        Egc {
            ctx,
            guard: Some(guard),
            immediates: VecDeque::new(),
            app_events: VecDeque::new(),
            app_progress: VecDeque::new(),
            app_aos: VecDeque::new(),
        }
    }

    /// Runs `f` with the lock released (a poller's sleep), then re-takes it.
    pub fn unlocked<R>(&mut self, f: impl FnOnce() -> R) -> R {
        let id = self.ctx.id;
        let guard = self.guard.as_mut().expect("egc holds its guard");
        held_pop(id);
        let r = MutexGuard::unlocked(guard, f);
        held_push(id);
        r
    }

    /// Schedules an internal callback to run (lock held) before this egc
    /// is disposed of, outside the caller's stack frame.
    pub fn immediate(&mut self, f: Immediate) {
        self.immediates.push_back(f);
    }

    pub(crate) fn queue_event_call(&mut self, run: AppFn) {
        self.app_events.push_back(AppCall { run, then: After::Nothing });
    }

    pub(crate) fn queue_progress_call(&mut self, run: AppFn, ao: AoId) {
        self.app_progress.push_back(AppCall { run, then: After::ProgressDelivered(ao) });
    }

    pub(crate) fn queue_ao_call(&mut self, run: AppFn, ao: AoId) {
        self.app_aos.push_back(AppCall { run, then: After::AoNotified(ao) });
    }

    /// Runs pending immediates (lock held), in order, until none are left.
    pub fn run_immediates(&mut self) {
        while let Some(f) = self.immediates.pop_front() {
            f(self);
        }
    }

    fn has_app_calls(&self) -> bool {
        !(self.app_events.is_empty() && self.app_progress.is_empty() && self.app_aos.is_empty())
    }

    /// libxl's "cleanup_2" step inside a loop: runs immediates, then the
    /// queued application calls with the lock released, then re-locks.
    /// Does not pass the baton: the caller is still in the event loop.
    pub fn flush_unlocked(&mut self) {
        self.run_immediates();
        while self.has_app_calls() {
            let calls = self.take_app_calls();
            for call in calls {
                let AppCall { run, then } = call;
                self.unlocked(run);
                self.after_app_call(then);
            }
            self.run_immediates();
        }
    }

    fn take_app_calls(&mut self) -> Vec<AppCall> {
        if !self.has_app_calls() {
            return Vec::new();
        }
        let mut v: Vec<AppCall> = self.app_events.drain(..).collect();
        v.extend(self.app_progress.drain(..));
        v.extend(self.app_aos.drain(..));
        v
    }

    fn after_app_call(&mut self, then: After) {
        match then {
            After::Nothing => {}
            After::ProgressDelivered(ao) => self.ao_progress_delivered(ao),
            After::AoNotified(ao) => self.ao_notified(ao),
        }
    }

    pub fn st(&mut self) -> &mut State {
        self.guard.as_mut().expect("egc holds its guard")
    }
}

impl Deref for Egc<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        self.guard.as_ref().expect("egc holds its guard")
    }
}

impl DerefMut for Egc<'_> {
    fn deref_mut(&mut self) -> &mut State {
        self.st()
    }
}

impl Drop for Egc<'_> {
    fn drop(&mut self) {
        if self.guard.is_none() {
            return; // already disposed of by hand (callback bookkeeping)
        }
        self.run_immediates();
        self.baton_pass();
        let ctx = self.ctx;
        let mut calls = self.take_app_calls();
        held_pop(ctx.id);
        drop(self.guard.take());
        // Application calls run unlocked. Their bookkeeping re-locks through
        // a fresh egc, whose own drop passes the baton and runs whatever
        // the bookkeeping queued (e.g. a completion after the last progress
        // report).
        while !calls.is_empty() {
            let batch = std::mem::take(&mut calls);
            for call in batch {
                let AppCall { run, then } = call;
                run();
                if !matches!(then, After::Nothing) {
                    let mut e = Egc::new(ctx, "libxl (callback bookkeeping)");
                    e.after_app_call(then);
                    e.run_immediates();
                    e.baton_pass();
                    calls.extend(e.take_app_calls());
                    held_pop(ctx.id);
                    drop(e.guard.take());
                }
            }
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
        let ctx = testutil::ctx();
        let ran = Arc::new(AtomicUsize::new(0));
        {
            let mut egc = Egc::new(&ctx, "test");
            let r = ran.clone();
            egc.queue_event_call(Box::new(move || {
                r.fetch_add(1, Ordering::SeqCst);
            }));
            assert_eq!(ran.load(Ordering::SeqCst), 0, "queued, not run, while locked");
        }
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        assert!(ctx.state.try_lock().is_some(), "egc released the lock");
    }

    #[test]
    fn egc_releases_lock_before_app_calls() {
        let ctx = Arc::new(testutil::ctx());
        let seen_unlocked = Arc::new(AtomicUsize::new(0));
        {
            let mut egc = Egc::new(&ctx, "test");
            let (c, s) = (ctx.clone(), seen_unlocked.clone());
            egc.queue_event_call(Box::new(move || {
                if c.state.try_lock().is_some() && !holds_lock(&c) {
                    s.fetch_add(1, Ordering::SeqCst);
                }
            }));
        }
        assert_eq!(seen_unlocked.load(Ordering::SeqCst), 1);
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
    fn unlocked_section_clears_the_held_record() {
        let ctx = testutil::ctx();
        let mut egc = Egc::new(&ctx, "test");
        assert!(holds_lock(&ctx));
        let inside = egc.unlocked(|| holds_lock(&ctx));
        assert!(!inside);
        assert!(holds_lock(&ctx));
        drop(egc);
        assert!(!holds_lock(&ctx));
    }
}
