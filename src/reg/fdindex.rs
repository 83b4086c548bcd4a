//! fd number -> the live registrations of that fd.
//!
//! fd numbers are small, dense integers (the kernel hands out the lowest
//! free one), and an fd almost always has exactly one registration. So a
//! vector indexed by fd number (below [`DIRECT`]) holds that one
//! registration in 8 bytes; fds with several registrations, and numbers
//! beyond [`DIRECT`], go to a hash map, to a [`Multi`].
//!
//! Invariants:
//! * An fd has a direct entry or a map entry, never both; a map entry is
//!   never empty, and holds two or more registrations unless the fd is
//!   beyond [`DIRECT`]; `len` counts the fds with registrations.
//! * A [`Multi`] keeps its registrations in registration order, finds
//!   each in O(1) (`pos`), and counts them by events value (`counts`), so
//!   adding, removing and the union of their events cost the same with two
//!   registrations as with ten thousand on one fd. Removal leaves a hole,
//!   compacted once holes outnumber the live entries.
#![forbid(unsafe_code)]

use smallvec::{smallvec, SmallVec};

use super::EvFd;
use crate::fasthash::FastMap;

/// Registrations of one fd (almost always exactly one).
pub type FdRegs = SmallVec<[EvFd; 1]>;

/// fds below this are indexed directly.
pub const DIRECT: usize = 1 << 16;

/// The registrations of an fd that has several (or a large number).
#[derive(Default)]
pub struct Multi {
    /// In registration order; `None`: removed (a hole).
    regs: Vec<Option<EvFd>>,
    /// Where each live registration is in `regs`.
    pos: FastMap<EvFd, u32>,
    /// Live registrations per distinct events value (a few at most).
    counts: SmallVec<[(i16, u32); 2]>,
}

impl Multi {
    fn live(&self) -> usize {
        self.pos.len()
    }

    fn push(&mut self, ev: EvFd, events: i16) {
        let i = u32::try_from(self.regs.len()).expect("fewer than 2^32 registrations of one fd");
        self.regs.push(Some(ev));
        self.pos.insert(ev, i);
        self.count(events, true);
    }

    /// Removes `ev` (registered with `events`); false if it was not here.
    fn remove(&mut self, ev: EvFd, events: i16) -> bool {
        let Some(i) = self.pos.remove(&ev) else { return false };
        self.regs[i as usize] = None;
        self.count(events, false);
        if self.live() * 2 < self.regs.len() {
            self.regs.retain(Option::is_some);
            for (i, r) in self.regs.iter().enumerate() {
                self.pos.insert(r.expect("holes removed just above"), i as u32);
            }
        }
        true
    }

    fn count(&mut self, events: i16, add: bool) {
        match self.counts.iter().position(|c| c.0 == events) {
            Some(i) if add => self.counts[i].1 += 1,
            Some(i) => {
                self.counts[i].1 -= 1;
                if self.counts[i].1 == 0 {
                    self.counts.swap_remove(i);
                }
            }
            None if add => self.counts.push((events, 1)),
            None => debug_assert!(false, "events {events:#x} were not counted"),
        }
    }

    fn union(&self) -> i16 {
        self.counts.iter().fold(0, |acc, c| acc | c.0)
    }

    fn list(&self) -> FdRegs {
        self.regs.iter().flatten().copied().collect()
    }

    fn first(&self) -> Option<EvFd> {
        self.regs.iter().flatten().next().copied()
    }
}

#[derive(Default)]
pub struct FdIndex {
    direct: Vec<Option<EvFd>>,
    map: FastMap<i32, Multi>,
    len: usize,
}

fn direct_index(fd: i32) -> Option<usize> {
    usize::try_from(fd).ok().filter(|&i| i < DIRECT)
}

impl FdIndex {
    /// fds with at least one registration.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The registrations of `fd` (a copy: callers dispatch while the
    /// index changes).
    pub fn get(&self, fd: i32) -> Option<FdRegs> {
        if let Some(i) = direct_index(fd) {
            if let Some(Some(t)) = self.direct.get(i) {
                return Some(smallvec![*t]);
            }
        }
        self.map.get(&fd).map(Multi::list)
    }

    /// The one registration of `fd` if it has exactly one in the direct
    /// vector (its events are the registry's to tell).
    pub fn direct(&self, fd: i32) -> Option<EvFd> {
        direct_index(fd).and_then(|i| self.direct.get(i).copied().flatten())
    }

    /// The union of the events of `fd`'s registrations, if they are in the
    /// map (see [`FdIndex::direct`] for the others).
    pub fn multi_union(&self, fd: i32) -> Option<i16> {
        self.map.get(&fd).map(Multi::union)
    }

    /// Adds `ev` (asking for `events`) to `fd`'s list. `events_of` tells
    /// the events of the registration already there, if the fd moves from
    /// the direct vector to the map.
    pub fn add(&mut self, fd: i32, ev: EvFd, events: i16, events_of: impl FnOnce(EvFd) -> i16) {
        if let Some(i) = direct_index(fd) {
            if self.direct.len() <= i {
                let more = i + 1 - self.direct.len();
                super::grow_gently(&mut self.direct, more);
                self.direct.resize(i + 1, None);
            }
            if let Some(first) = self.direct[i].take() {
                let mut m = Multi::default();
                m.push(first, events_of(first));
                m.push(ev, events);
                self.map.insert(fd, m);
                return;
            }
            if let Some(m) = self.map.get_mut(&fd) {
                m.push(ev, events);
                return;
            }
            self.direct[i] = Some(ev);
            self.len += 1;
            return;
        }
        let m = self.map.entry(fd).or_default();
        if m.live() == 0 {
            self.len += 1;
        }
        m.push(ev, events);
    }

    /// Removes `ev` (asking for `events`) from `fd`'s list; returns true if
    /// none are left.
    pub fn remove(&mut self, fd: i32, ev: EvFd, events: i16) -> bool {
        let di = direct_index(fd);
        if let Some(i) = di {
            if self.direct.get(i) == Some(&Some(ev)) {
                self.direct[i] = None;
                self.len -= 1;
                return true;
            }
        }
        let Some(m) = self.map.get_mut(&fd) else { return true };
        m.remove(ev, events);
        match (m.live(), di) {
            (0, _) => {
                self.map.remove(&fd);
                self.len -= 1;
                true
            }
            (1, Some(i)) => {
                self.direct[i] = m.first();
                self.map.remove(&fd);
                false
            }
            _ => false,
        }
    }

    /// A registration of `fd` now asks for `new` instead of `old`.
    pub fn set_events(&mut self, fd: i32, old: i16, new: i16) {
        if let Some(m) = self.map.get_mut(&fd) {
            m.count(old, false);
            m.count(new, true);
        }
    }

    /// Every fd with at least one registration.
    pub fn fds(&self) -> impl Iterator<Item = i32> + '_ {
        let direct = self.direct.iter().enumerate().filter(|(_, r)| r.is_some()).map(|(i, _)| i as i32);
        direct.chain(self.map.keys().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::Slab;

    #[test]
    fn an_fd_is_listed_exactly_while_it_has_registrations() {
        let mut slab = Slab::new();
        let (a, b) = (slab.insert(()), slab.insert(()));
        let mut ix = FdIndex::default();
        for fd in [3, 70_000, -1] {
            ix.add(fd, a, 1, |_| 1);
            ix.add(fd, b, 4, |_| 1);
            assert_eq!(ix.get(fd).map(|r| r.len()), Some(2));
            assert_eq!(ix.multi_union(fd), Some(5));
            assert!(!ix.remove(fd, a, 1));
            assert_eq!(ix.get(fd).map(|r| r.to_vec()), Some(vec![b]));
            assert!(ix.remove(fd, b, 4));
            assert!(ix.get(fd).is_none());
        }
        assert_eq!(ix.len(), 0);
        ix.add(5, a, 1, |_| 1);
        ix.add(80_000, b, 1, |_| 1);
        let mut fds: Vec<i32> = ix.fds().collect();
        fds.sort_unstable();
        assert_eq!(fds, vec![5, 80_000]);
        assert_eq!(ix.len(), 2);
    }

    /// Ten thousand registrations on one fd: removal in any order keeps
    /// the rest in registration order and the union right, and costs O(1)
    /// each (a quadratic removal would take seconds here, not
    /// milliseconds; the benchmark B6 "all on one fd" measures it).
    #[test]
    fn many_registrations_of_one_fd_keep_order_and_union_through_removal() {
        let mut slab = Slab::new();
        let evs: Vec<EvFd> = (0..10_000).map(|_| slab.insert(())).collect();
        let mut ix = FdIndex::default();
        for (i, &ev) in evs.iter().enumerate() {
            ix.add(7, ev, if i == 4321 { 4 } else { 1 }, |_| 1);
        }
        assert_eq!(ix.multi_union(7), Some(5));
        let t0 = std::time::Instant::now();
        for (i, &ev) in evs.iter().enumerate().filter(|(i, _)| i % 3 != 0) {
            assert!(!ix.remove(7, ev, if i == 4321 { 4 } else { 1 }));
        }
        let spent = t0.elapsed();
        let want: Vec<EvFd> = evs.iter().enumerate().filter(|(i, _)| i % 3 == 0).map(|(_, &e)| e).collect();
        assert_eq!(ix.get(7).unwrap().to_vec(), want, "registration order kept");
        assert_eq!(ix.multi_union(7), Some(1), "the one POLLOUT-ish registration is gone");
        ix.set_events(7, 1, 2);
        assert_eq!(ix.multi_union(7), Some(3));
        assert!(spent.as_millis() < 1000, "removals took {spent:?}");
    }
}
