//! Timeout event sources (libxl's `libxl__ev_time`): the verbs.
//!
//! Invariants:
//! * Every timeout belongs to an ao and is abortable: aborting the ao runs
//!   the callback with `ERROR_ABORTED`; reaching the deadline runs it with
//!   `ERROR_TIMEDOUT`. Either way the timeout is deregistered *before* its
//!   callback runs, and the callback runs at most once. A timeout is on its
//!   root ao's abort list exactly while it is registered (it needs no
//!   abortable registration of its own).
//! * A finite timeout makes every poller's set stale (its deadline may be
//!   earlier than theirs).
//! * With osevent hooks, a finite timeout is mirrored by `timeout_register`
//!   with a hook token (a "nexus") as `for_libxl`. Deregistering asks the
//!   application to fire it at once (`timeout_modify` with `{0,0}`) and the
//!   nexus is released only when `libxl_osevent_occurred_timeout` comes back
//!   for it; `timeout_deregister` is never called.
#![forbid(unsafe_code)]

use super::Egc;
use crate::rc::{Rc, ERROR_TIMEDOUT};
use crate::reg::ao::Owned;
use crate::reg::{AoId, EvTime};
use crate::sys;

/// Absolute deadline for a relative `ms` (negative: none).
fn rel_deadline(ms: i32) -> Option<u64> {
    if ms < 0 {
        None
    } else {
        Some(sys::clock::mono_ns() + ms as u64 * 1_000_000)
    }
}

/// `(egc, ev, rc)` with rc `ERROR_TIMEDOUT` or `ERROR_ABORTED`.
pub type TimeCallback = Box<dyn FnOnce(&mut Egc<'_>, EvTime, Rc) + Send>;

/// `(egc, ev, rc, data)`: a callback as a plain function and a word.
pub type TimeFn = fn(&mut Egc<'_>, EvTime, Rc, u64);

/// What a timeout runs: a closure, or (no allocation) a function and its
/// data word.
pub enum TimeHandler {
    Closure(TimeCallback),
    Fn(TimeFn, u64),
}

impl Egc<'_> {
    /// A timeout `ms` milliseconds from now (negative: never, until the ao
    /// is aborted), owned by `ao`.
    pub fn ev_time_register_rel(&mut self, ao: AoId, ms: i32, cb: TimeCallback) -> Result<EvTime, Rc> {
        self.ev_time_register(ao, rel_deadline(ms), TimeHandler::Closure(cb), true)
    }

    /// Like `ev_time_register_rel` with a function and a data word.
    pub fn ev_time_register_rel_fn(&mut self, ao: AoId, ms: i32, f: TimeFn, data: u64) -> Result<EvTime, Rc> {
        self.ev_time_register(ao, rel_deadline(ms), TimeHandler::Fn(f, data), true)
    }

    /// A timeout at monotonic instant `deadline`, owned by `ao`.
    pub fn ev_time_register_abs(&mut self, ao: AoId, deadline: u64, cb: TimeCallback) -> Result<EvTime, Rc> {
        self.ev_time_register(ao, Some(deadline), TimeHandler::Closure(cb), true)
    }

    /// libxl's own `libxl__ev_time_register_*`: a timeout at monotonic
    /// `deadline` (`None`: never) that `ao`'s abort fires early, but that
    /// `ao` does not own: its C caller deregisters it, as libxl requires.
    pub fn ev_time_register_unowned(&mut self, ao: AoId, deadline: Option<u64>, f: TimeFn, data: u64) -> Result<EvTime, Rc> {
        self.ev_time_register(ao, deadline, TimeHandler::Fn(f, data), false)
    }

    /// `own`: released when `ao` completes (the core's own operations).
    fn ev_time_register(&mut self, ao: AoId, deadline: Option<u64>, cb: TimeHandler, own: bool) -> Result<EvTime, Rc> {
        let ev = self.st().times.insert(deadline, cb, ao);
        if let Err(rc) = self.ao_abortable_add_time(ao, ev) {
            self.st().times.remove(ev);
            return Err(rc);
        }
        if let Some(d) = deadline {
            match self.hook_timeout_register(ev, d) {
                Ok(nexus) => self.st().times.set_nexus(ev, nexus),
                Err(rc) => {
                    self.ao_abortable_remove_time(ao, ev);
                    self.st().times.remove(ev);
                    crate::xl_log!(self.ctx, Error, "ev_time={ev}: application's timeout_register hook failed (rc={rc})");
                    return Err(rc);
                }
            }
            self.st().pollers.note_osevent_added();
        }
        if own {
            self.ao_own(ao, Owned::Time(ev));
        }
        crate::xl_log!(self.ctx, Debug, "ev_time={ev} register ao={ao} in {}", match deadline {
            Some(d) => format!("{}us", d.saturating_sub(sys::clock::mono_ns()) / 1000),
            None => "never".to_string(),
        });
        Ok(ev)
    }

    /// Ends a registration without running its callback. Idempotent.
    pub fn ev_time_deregister(&mut self, ev: EvTime) {
        if self.time_remove(ev, false).is_some() {
            crate::xl_log!(self.ctx, Debug, "ev_time={ev} deregister");
        }
    }

    pub fn ev_time_isregistered(&self, ev: EvTime) -> bool {
        self.s().times.contains(ev)
    }

    /// Removes a registration and its abortable and hook mirror; returns
    /// its callback. `fired_by_app`: the application already delivered the
    /// hook timeout, so no `timeout_modify` is needed.
    fn time_remove(&mut self, ev: EvTime, fired_by_app: bool) -> Option<TimeHandler> {
        let mut e = self.st().times.remove(ev)?;
        self.ao_abortable_remove_time(e.owner, ev);
        if let Some(nexus) = e.nexus.take() {
            self.hook_timeout_release_ev(nexus, fired_by_app);
        }
        e.take_cb()
    }

    /// Deregisters `ev` and runs its callback with `rc`.
    pub(crate) fn ev_time_fire(&mut self, ev: EvTime, rc: Rc, fired_by_app: bool) {
        if let Some(cb) = self.time_remove(ev, fired_by_app) {
            crate::xl_log!(self.ctx, Debug, "ev_time={ev} occurs rc={}", crate::rc::name(rc));
            match cb {
                TimeHandler::Closure(f) => f(self, ev, rc),
                TimeHandler::Fn(f, data) => f(self, ev, rc, data),
            }
        }
    }

    /// Fires, in deadline order, every timeout due at or before `now`.
    /// [`Egc::fire_due_timeouts`] at the clock's time, read only if a
    /// timeout is registered.
    pub(crate) fn fire_due_timeouts_now(&mut self) {
        if self.st().times.earliest().is_some() {
            self.fire_due_timeouts(crate::sys::clock::mono_ns());
        }
    }

    pub(crate) fn fire_due_timeouts(&mut self, now: u64) {
        while let Some((d, ev)) = self.st().times.earliest_entry() {
            if d > now {
                break;
            }
            self.ev_time_fire(ev, ERROR_TIMEDOUT, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use parking_lot::Mutex;

    use crate::reg::ao::AoHow;
    use crate::egc::Egc;
    use crate::rc::ERROR_TIMEDOUT;
    use crate::testutil;

    #[test]
    fn timeouts_fire_in_deadline_order() {
        let ctx = testutil::ctx();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut egc = Egc::new(&ctx, "test");
        let ao = egc.ao_create(AoHow::ForEvent(1), 0).unwrap();
        let base = crate::sys::clock::mono_ns();
        for (i, ms) in [30u64, 10, 20].into_iter().enumerate() {
            let o = order.clone();
            egc.ev_time_register_abs(ao, base + ms * 1_000_000, Box::new(move |_, _, rc| {
                assert_eq!(rc, ERROR_TIMEDOUT);
                o.lock().push(i);
            }))
            .unwrap();
        }
        egc.fire_due_timeouts(base + 25_000_000);
        assert_eq!(*order.lock(), vec![1, 2]);
        egc.fire_due_timeouts(base + 100_000_000);
        assert_eq!(*order.lock(), vec![1, 2, 0]);
        assert!(egc.s().times.is_empty());
    }

    #[test]
    fn deregistered_timeout_never_fires() {
        let ctx = testutil::ctx();
        let fired = Arc::new(Mutex::new(false));
        let mut egc = Egc::new(&ctx, "test");
        let ao = egc.ao_create(AoHow::ForEvent(1), 0).unwrap();
        let f = fired.clone();
        let ev = egc.ev_time_register_rel(ao, 0, Box::new(move |_, _, _| *f.lock() = true)).unwrap();
        egc.ev_time_deregister(ev);
        egc.ev_time_deregister(ev); // idempotent
        egc.fire_due_timeouts(u64::MAX);
        assert!(!*fired.lock());
        assert_eq!(egc.st().times.earliest(), None);
    }

    fn fired_into(egc: &mut Egc<'_>, _ev: crate::reg::EvTime, rc: crate::rc::Rc, data: u64) {
        let _ = egc;
        FIRED.lock().push((data, rc));
    }
    static FIRED: Mutex<Vec<(u64, crate::rc::Rc)>> = parking_lot::const_mutex(Vec::new());

    /// libxl's own timeouts: the ao's abort fires them, but its completion
    /// does not take them away (C deregisters them itself).
    #[test]
    fn an_unowned_timeout_outlives_its_aos_completion_and_abort_still_fires_it() {
        let ctx = testutil::ctx();
        let mut egc = Egc::new(&ctx, "test");
        let ao = egc.ao_create(AoHow::ForEvent(31), 0).unwrap();
        let kept = egc.ev_time_register_unowned(ao, Some(u64::MAX / 2), fired_into, 310).unwrap();
        egc.ao_inprogress(ao);
        egc.ao_complete(ao, 0);
        assert!(egc.ev_time_isregistered(kept), "not released at completion");
        egc.ev_time_deregister(kept);

        let ao = egc.ao_create(AoHow::ForEvent(32), 0).unwrap();
        let never = egc.ev_time_register_unowned(ao, None, fired_into, 320).unwrap();
        egc.ao_inprogress(ao);
        assert_eq!(egc.ao_abort(crate::reg::ao::AbortKey::event(32)), 0);
        assert!(!egc.ev_time_isregistered(never));
        assert!(FIRED.lock().contains(&(320, crate::rc::ERROR_ABORTED)), "aborting fired it with its data word");
        assert!(!FIRED.lock().iter().any(|&(d, _)| d == 310), "the deregistered one never fired");
        egc.ao_complete(ao, crate::rc::ERROR_ABORTED);
    }

    #[test]
    fn infinite_timeout_is_not_in_the_heap() {
        let ctx = testutil::ctx();
        let mut egc = Egc::new(&ctx, "test");
        let ao = egc.ao_create(AoHow::ForEvent(1), 0).unwrap();
        let ev = egc.ev_time_register_rel(ao, -1, Box::new(|_, _, _| {})).unwrap();
        assert!(egc.ev_time_isregistered(ev));
        assert_eq!(egc.st().times.earliest(), None);
    }
}
