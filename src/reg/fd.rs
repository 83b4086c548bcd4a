//! The fd registry: every live `libxl__ev_fd` registration.
//!
//! Invariants:
//! * A registration is live from [`FdRegistry::insert`] until
//!   [`FdRegistry::remove`]; only live registrations are found by fd number
//!   ([`FdRegistry::regs_for`]) or appear in the dense poll set.
//! * The dense poll set holds exactly one `pollfd` per live registration
//!   with non-zero events (swap-remove keeps it dense), so making a poll set
//!   is one copy.
//! * A registration's callback is out of the registry only while it runs
//!   (`take_cb` / `restore_cb`); it is not dispatched again meanwhile.
#![forbid(unsafe_code)]

use super::fdindex::FdIndex;
pub use super::fdindex::FdRegs;
use super::{AoId, EvFd};
use crate::sys::{self, PollFd};
use crate::token::Slab;

pub struct FdEntry<H> {
    pub fd: i32,
    pub events: i16,
    /// The fd is known to have been open when registered: false for a
    /// registration made without that check ([`FdRegistry::mark_unverified`])
    /// until the first poll of a set holding it is done; a `POLLNVAL` from
    /// that poll is a bad argument, not an fd closed while registered.
    pub verified: bool,
    /// Index in the registry's dense poll set (`NOT_DENSE` if events are 0).
    dense: u32,
    /// The application beforepoll set this was last dispatched for.
    app_gen: u32,
    /// `None` only while the callback is running.
    cb: Option<H>,
    /// The ao whose completion ends this registration.
    pub owner: Option<AoId>,
}

pub struct FdRegistry<H> {
    slab: Slab<FdEntry<H>>,
    /// fd number -> its live registrations (dispatch by fd).
    by_fd: FdIndex,
    /// One `pollfd` per registration with non-zero events.
    dense: Vec<PollFd>,
    /// Registrations marked unverified and not yet in a poll set.
    unverified: Vec<EvFd>,
    /// The registration behind each `dense` entry (its slot: live, so its
    /// generation need not be checked).
    dense_owner: Vec<u32>,
}

impl<H> Default for FdRegistry<H> {
    fn default() -> Self {
        FdRegistry { slab: Slab::new(), by_fd: FdIndex::default(), dense: Vec::new(), dense_owner: Vec::new(), unverified: Vec::new() }
    }
}

const NOT_DENSE: u32 = u32::MAX;

impl<H> FdRegistry<H> {
    pub fn len(&self) -> usize {
        self.slab.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    pub fn get(&self, ev: EvFd) -> Option<&FdEntry<H>> {
        self.slab.get(ev)
    }

    pub fn contains(&self, ev: EvFd) -> bool {
        self.slab.contains(ev)
    }

    pub fn tokens(&self) -> Vec<EvFd> {
        self.slab.tokens()
    }

    /// A new live registration.
    pub fn insert(&mut self, fd: i32, events: i16, cb: H, owner: Option<AoId>) -> EvFd {
        let ev = self.slab.insert(FdEntry { fd, events, verified: true, dense: NOT_DENSE, app_gen: 0, cb: Some(cb), owner });
        if events != 0 {
            self.dense_add(ev, fd, events);
        }
        let slab = &self.slab;
        self.by_fd.add(fd, ev, events, |t| slab.get(t).map_or(0, |e| e.events));
        ev
    }

    /// Ends a registration; its entry (callback included, unless running).
    pub fn remove(&mut self, ev: EvFd) -> Option<FdEntry<H>> {
        let e = self.slab.remove(ev)?;
        if e.dense != NOT_DENSE {
            self.dense_remove(e.dense);
        }
        self.by_fd.remove(e.fd, ev, e.events);
        Some(e)
    }

    /// Changes the events of a live registration; the old events.
    pub fn set_events(&mut self, ev: EvFd, events: i16) -> Option<i16> {
        let e = self.slab.get_mut(ev)?;
        let (fd, old, idx) = (e.fd, e.events, e.dense);
        e.events = events;
        self.by_fd.set_events(fd, old, events);
        match (idx == NOT_DENSE, events != 0) {
            (true, true) => self.dense_add(ev, fd, events),
            (false, false) => {
                self.slab.get_mut(ev).expect("live").dense = NOT_DENSE;
                self.dense_remove(idx);
            }
            (false, true) => self.dense[idx as usize].events = events,
            (true, false) => {}
        }
        Some(old)
    }

    /// Marks a registration made without checking that its fd is open
    /// (`verified`).
    pub fn mark_unverified(&mut self, ev: EvFd) {
        if let Some(e) = self.slab.get_mut(ev) {
            e.verified = false;
            self.unverified.push(ev);
        }
    }

    /// The unverified registrations a poll set made now holds: the poll of
    /// that set settles them (`POLLNVAL`, or open: [`FdRegistry::mark_verified`]).
    pub fn take_unverified(&mut self) -> Vec<EvFd> {
        std::mem::take(&mut self.unverified)
    }

    /// The first poll of a set holding `ev` is done: a `POLLNVAL` from now
    /// on means its fd was closed while registered.
    pub fn mark_verified(&mut self, ev: EvFd) {
        if let Some(e) = self.slab.get_mut(ev) {
            e.verified = true;
        }
    }

    /// Takes the callback out to run it (`None` if stale or running).
    pub fn take_cb(&mut self, ev: EvFd) -> Option<H> {
        self.slab.get_mut(ev).and_then(|e| e.cb.take())
    }

    /// Puts a callback back after it ran, if its registration is still live
    /// (it may have deregistered itself, or been replaced).
    pub fn restore_cb(&mut self, ev: EvFd, cb: H) {
        if let Some(e) = self.slab.get_mut(ev) {
            if e.cb.is_none() {
                e.cb = Some(cb);
            }
        }
    }

    /// True while the callback is out (running).
    pub fn running(&self, ev: EvFd) -> bool {
        self.slab.get(ev).is_some_and(|e| e.cb.is_none())
    }

    /// Appends one `pollfd` per live registration with non-zero events.
    pub fn fill_set(&self, fds: &mut Vec<PollFd>) {
        fds.extend_from_slice(&self.dense);
    }

    /// How many entries `fill_set` adds (registrations with events).
    pub fn set_len(&self) -> usize {
        self.dense.len()
    }

    /// Writes the poll set into `out` (exactly `set_len()` long).
    pub fn fill_into(&self, out: &mut [PollFd]) {
        out.copy_from_slice(&self.dense);
    }

    fn dense_add(&mut self, ev: EvFd, fd: i32, events: i16) {
        let idx = u32::try_from(self.dense.len()).expect("fewer than 2^32 registrations");
        super::grow_gently(&mut self.dense, 1);
        super::grow_gently(&mut self.dense_owner, 1);
        self.dense.push(sys::pollfd(fd, events));
        self.dense_owner.push(ev.index() as u32);
        if let Some(e) = self.slab.get_mut(ev) {
            e.dense = idx;
        }
    }

    fn dense_remove(&mut self, idx: u32) {
        let i = idx as usize;
        self.dense.swap_remove(i);
        self.dense_owner.swap_remove(i);
        if let Some(&moved) = self.dense_owner.get(i) {
            if let Some(e) = self.slab.get_mut_at(moved) {
                e.dense = idx;
            }
        }
    }

    pub fn app_gen(&self, ev: EvFd) -> Option<u32> {
        self.slab.get(ev).map(|e| e.app_gen)
    }

    pub fn set_app_gen(&mut self, ev: EvFd, gen: u32) {
        if let Some(e) = self.slab.get_mut(ev) {
            e.app_gen = gen;
        }
    }

    /// The registrations of `fd` (a copy: callers dispatch while it changes).
    pub fn regs_for(&self, fd: i32) -> Option<FdRegs> {
        self.by_fd.get(fd)
    }

    /// How many fds have registrations.
    pub fn distinct_fds(&self) -> usize {
        self.by_fd.len()
    }

    /// Every registered fd with the union of its registrations' events.
    pub fn fd_unions(&self) -> impl Iterator<Item = (i32, i16)> + '_ {
        self.by_fd.fds().map(|fd| (fd, self.union_events(fd)))
    }

    /// The union of the events the registrations of `fd` ask for.
    pub fn union_events(&self, fd: i32) -> i16 {
        match self.by_fd.direct(fd) {
            Some(t) => self.slab.get(t).map_or(0, |e| e.events),
            None => self.by_fd.multi_union(fd).unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::{POLLIN, POLLOUT};

    /// The dense poll set always holds exactly one entry per registration
    /// with events, whatever order registrations come and go in.
    #[test]
    fn dense_poll_set_matches_live_registrations_after_churn() {
        let mut reg: FdRegistry<()> = FdRegistry::default();
        let mut live = Vec::new();
        let mut x: u32 = 12345;
        for step in 0..2000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let r = (x >> 16) as usize;
            match r % 3 {
                0 | 1 if live.len() < 40 => {
                    let events = [0, POLLIN, POLLOUT][r % 3];
                    live.push(reg.insert(3 + (r % 8) as i32, events, (), None));
                }
                0 | 1 => {}
                _ if !live.is_empty() => {
                    let ev = live.swap_remove(r % live.len());
                    if step % 2 == 0 {
                        reg.remove(ev);
                    } else {
                        reg.set_events(ev, if r % 4 == 0 { 0 } else { POLLIN });
                        live.push(ev);
                    }
                }
                _ => {}
            }
            let mut set = Vec::new();
            reg.fill_set(&mut set);
            let mut want: Vec<(i32, i16)> =
                live.iter().filter_map(|&t| reg.get(t)).filter(|e| e.events != 0).map(|e| (e.fd, e.events)).collect();
            let mut got: Vec<(i32, i16)> = set.iter().map(|p| (p.fd, p.events)).collect();
            want.sort_unstable();
            got.sort_unstable();
            assert_eq!(got, want, "after step {step}");
            for fd in 3..11 {
                let union = live.iter().filter_map(|&t| reg.get(t)).filter(|e| e.fd == fd).fold(0, |a, e| a | e.events);
                assert_eq!(reg.union_events(fd), union, "union of fd {fd} after step {step}");
            }
        }
    }

    #[test]
    fn a_running_callback_is_out_until_restored_and_not_restored_into_a_new_registration() {
        let mut reg: FdRegistry<u8> = FdRegistry::default();
        let ev = reg.insert(5, POLLIN, 1, None);
        assert_eq!(reg.take_cb(ev), Some(1));
        assert!(reg.running(ev));
        assert_eq!(reg.take_cb(ev), None, "not dispatched again while it runs");
        reg.remove(ev); // it deregistered itself
        let ev2 = reg.insert(5, POLLIN, 2, None);
        reg.restore_cb(ev, 1); // stale: the slot's new occupant keeps its own
        assert_eq!(reg.take_cb(ev2), Some(2));
    }
}
