//! The timeout registry: every live `libxl__ev_time` registration.
//!
//! Invariants:
//! * Deadlines are monotonic nanoseconds, kept in a min-heap with lazy
//!   deletion: a heap entry whose registration is gone (or whose deadline
//!   changed) is skipped, so removal is O(1) and finding the earliest is
//!   amortised O(log n); the heap is compacted when mostly dead.
//! * A registration without a deadline (waits forever, until its ao is
//!   aborted) is not in the heap.
#![forbid(unsafe_code)]

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::{AoId, EvTime};
use crate::token::{Slab, Token};

pub struct TimeEntry<H> {
    /// Monotonic deadline; `None` waits forever (until aborted).
    pub deadline: Option<u64>,
    cb: Option<H>,
    /// The hook token given to `timeout_register` (hooks only).
    pub nexus: Option<Token>,
    /// The ao whose abort fires this timeout early.
    pub owner: AoId,
}

impl<H> TimeEntry<H> {
    /// The callback, to run it.
    pub fn take_cb(&mut self) -> Option<H> {
        self.cb.take()
    }
}

pub struct TimeRegistry<H> {
    slab: Slab<TimeEntry<H>>,
    heap: BinaryHeap<Reverse<(u64, EvTime)>>,
}

impl<H> Default for TimeRegistry<H> {
    fn default() -> Self {
        TimeRegistry { slab: Slab::new(), heap: BinaryHeap::new() }
    }
}

impl<H> TimeRegistry<H> {
    pub fn len(&self) -> usize {
        self.slab.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    pub fn get(&self, ev: EvTime) -> Option<&TimeEntry<H>> {
        self.slab.get(ev)
    }

    pub fn contains(&self, ev: EvTime) -> bool {
        self.slab.contains(ev)
    }

    pub fn tokens(&self) -> Vec<EvTime> {
        self.slab.tokens()
    }

    /// A new registration.
    pub fn insert(&mut self, deadline: Option<u64>, cb: H, owner: AoId) -> EvTime {
        let ev = self.slab.insert(TimeEntry { deadline, cb: Some(cb), nexus: None, owner });
        if let Some(d) = deadline {
            self.heap.push(Reverse((d, ev)));
        }
        ev
    }

    pub fn set_nexus(&mut self, ev: EvTime, nexus: Option<Token>) {
        if let Some(e) = self.slab.get_mut(ev) {
            e.nexus = nexus;
        }
    }

    /// Ends a registration; its entry.
    pub fn remove(&mut self, ev: EvTime) -> Option<TimeEntry<H>> {
        let e = self.slab.remove(ev)?;
        if self.heap.len() > 64 && self.heap.len() > 2 * self.slab.len() {
            let slab = &self.slab;
            self.heap.retain(|Reverse((d, ev))| slab.get(*ev).is_some_and(|e| e.deadline == Some(*d)));
        }
        Some(e)
    }

    /// The earliest live deadline.
    pub fn earliest(&mut self) -> Option<u64> {
        self.earliest_entry().map(|(d, _)| d)
    }

    /// The earliest live deadline and its registration.
    pub fn earliest_entry(&mut self) -> Option<(u64, EvTime)> {
        while let Some(&Reverse((d, ev))) = self.heap.peek() {
            if self.slab.get(ev).is_some_and(|e| e.deadline == Some(d)) {
                return Some((d, ev));
            }
            self.heap.pop();
        }
        None
    }

    /// True if some timeout has a deadline (an osevent: one that hooks
    /// would mirror). Infinite timeouts are not osevents.
    pub fn has_finite(&self) -> bool {
        self.slab.iter().any(|(_, e)| e.deadline.is_some())
    }

    /// Heap entries, live or dead (for tests of the compaction).
    pub fn heap_len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ao() -> AoId {
        crate::token::Slab::new().insert(())
    }

    #[test]
    fn earliest_skips_removed_registrations_and_the_heap_is_compacted_when_mostly_dead() {
        let mut reg: TimeRegistry<()> = TimeRegistry::default();
        let owner = ao();
        let evs: Vec<_> = (0..1000u64).map(|i| reg.insert(Some(1000 + i), (), owner)).collect();
        for ev in &evs[..990] {
            reg.remove(*ev);
        }
        assert_eq!(reg.earliest(), Some(1990));
        assert!(reg.heap_len() <= 2 * reg.len().max(64), "heap {} live {}", reg.heap_len(), reg.len());
    }

    #[test]
    fn infinite_timeout_is_not_in_the_heap() {
        let mut reg: TimeRegistry<()> = TimeRegistry::default();
        let ev = reg.insert(None, (), ao());
        assert!(reg.contains(ev));
        assert_eq!(reg.earliest(), None);
        assert!(!reg.has_finite());
    }
}
