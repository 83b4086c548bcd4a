//! Timeout event sources (libxl's `libxl__ev_time`).
//!
//! Invariants:
//! * Every timeout belongs to an ao and is abortable: aborting the ao runs
//!   the callback with `ERROR_ABORTED`; reaching the deadline runs it with
//!   `ERROR_TIMEDOUT`. Either way the timeout is deregistered *before* its
//!   callback runs, and the callback runs at most once. A timeout is on its
//!   root ao's abort list exactly while it is registered (it needs no
//!   abortable registration of its own).
//! * Deadlines are monotonic nanoseconds, kept in a min-heap with lazy
//!   deletion: a heap entry whose token is no longer live is skipped, so
//!   deregistration is O(1) and finding the earliest is amortised O(log n).
//! * With osevent hooks, a finite timeout is mirrored by `timeout_register`
//!   with a hook token (a "nexus") as `for_libxl`. Deregistering asks the
//!   application to fire it at once (`timeout_modify` with `{0,0}`) and the
//!   nexus is released only when `libxl_osevent_occurred_timeout` comes back
//!   for it; `timeout_deregister` is never called.
#![forbid(unsafe_code)]

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::ao::AoId;
use crate::egc::Egc;
use crate::rc::{Rc, ERROR_TIMEDOUT};
use crate::sys;
use crate::token::{Slab, Token};

pub type EvTime = Token;

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

pub struct TimeEntry {
    /// Monotonic deadline; `None` waits forever (until aborted).
    pub deadline: Option<u64>,
    cb: Option<TimeHandler>,
    /// The hook token given to `timeout_register` (hooks only).
    pub nexus: Option<Token>,
    pub owner: AoId,
}

#[derive(Default)]
pub struct TimeRegistry {
    slab: Slab<TimeEntry>,
    heap: BinaryHeap<Reverse<(u64, EvTime)>>,
}

impl TimeRegistry {
    pub fn len(&self) -> usize {
        self.slab.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    /// The earliest live deadline.
    pub fn earliest(&mut self) -> Option<u64> {
        self.earliest_entry().map(|(d, _)| d)
    }

    fn earliest_entry(&mut self) -> Option<(u64, EvTime)> {
        while let Some(&Reverse((d, ev))) = self.heap.peek() {
            if self.slab.get(ev).is_some_and(|e| e.deadline == Some(d)) {
                return Some((d, ev));
            }
            self.heap.pop();
        }
        None
    }

    fn compact_if_sparse(&mut self) {
        if self.heap.len() > 64 && self.heap.len() > 2 * self.slab.len() {
            let slab = &self.slab;
            self.heap.retain(|Reverse((d, ev))| slab.get(*ev).is_some_and(|e| e.deadline == Some(*d)));
        }
    }

    pub fn tokens(&self) -> Vec<EvTime> {
        self.slab.tokens()
    }

    /// True if some timeout has a deadline (an osevent: one that hooks
    /// would mirror). Infinite timeouts are not osevents.
    pub fn has_finite(&self) -> bool {
        self.slab.iter().any(|(_, e)| e.deadline.is_some())
    }

    pub fn get(&self, ev: EvTime) -> Option<&TimeEntry> {
        self.slab.get(ev)
    }
}

impl Egc<'_> {
    /// A timeout `ms` milliseconds from now (negative: never, until the ao
    /// is aborted), owned by `ao`.
    pub fn ev_time_register_rel(&mut self, ao: AoId, ms: i32, cb: TimeCallback) -> Result<EvTime, Rc> {
        self.ev_time_register(ao, rel_deadline(ms), TimeHandler::Closure(cb))
    }

    /// Like `ev_time_register_rel` with a function and a data word.
    pub fn ev_time_register_rel_fn(&mut self, ao: AoId, ms: i32, f: TimeFn, data: u64) -> Result<EvTime, Rc> {
        self.ev_time_register(ao, rel_deadline(ms), TimeHandler::Fn(f, data))
    }

    /// A timeout at monotonic instant `deadline`, owned by `ao`.
    pub fn ev_time_register_abs(&mut self, ao: AoId, deadline: u64, cb: TimeCallback) -> Result<EvTime, Rc> {
        self.ev_time_register(ao, Some(deadline), TimeHandler::Closure(cb))
    }

    fn ev_time_register(&mut self, ao: AoId, deadline: Option<u64>, cb: TimeHandler) -> Result<EvTime, Rc> {
        let ev = self.st().times.slab.insert(TimeEntry { deadline, cb: Some(cb), nexus: None, owner: ao });
        if let Err(rc) = self.ao_abortable_add_time(ao, ev) {
            self.st().times.slab.remove(ev);
            return Err(rc);
        }
        if let Some(d) = deadline {
            match self.hook_timeout_register(ev, d) {
                Ok(nexus) => self.st().times.slab.get_mut(ev).expect("just inserted").nexus = nexus,
                Err(rc) => {
                    self.ao_abortable_remove_time(ao, ev);
                    self.st().times.slab.remove(ev);
                    crate::xl_log!(self.ctx, Error, "ev_time={ev}: application's timeout_register hook failed (rc={rc})");
                    return Err(rc);
                }
            }
            let st = self.st();
            st.times.heap.push(Reverse((d, ev)));
            st.pollers.note_osevent_added();
        }
        self.ao_own(ao, crate::ao::Owned::Time(ev));
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
        self.s().times.slab.contains(ev)
    }

    /// Removes a registration and its abortable and hook mirror; returns
    /// its callback. `fired_by_app`: the application already delivered the
    /// hook timeout, so no `timeout_modify` is needed.
    fn time_remove(&mut self, ev: EvTime, fired_by_app: bool) -> Option<TimeHandler> {
        let mut e = self.st().times.slab.remove(ev)?;
        self.ao_abortable_remove_time(e.owner, ev);
        if let Some(nexus) = e.nexus.take() {
            self.hook_timeout_release_ev(nexus, fired_by_app);
        }
        self.st().times.compact_if_sparse();
        e.cb.take()
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

    use crate::ao::AoHow;
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

    #[test]
    fn lazy_heap_is_compacted_when_mostly_dead() {
        let ctx = testutil::ctx();
        let mut egc = Egc::new(&ctx, "test");
        let ao = egc.ao_create(AoHow::ForEvent(1), 0).unwrap();
        let evs: Vec<_> =
            (0..1000).map(|_| egc.ev_time_register_rel(ao, 60_000, Box::new(|_, _, _| {})).unwrap()).collect();
        for ev in &evs[..990] {
            egc.ev_time_deregister(*ev);
        }
        assert!(egc.s().times.heap.len() <= 2 * egc.s().times.len().max(64), "heap {} live {}", egc.s().times.heap.len(), egc.s().times.len());
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
