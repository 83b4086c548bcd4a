//! fd number -> the live registrations of that fd.
//!
//! fd numbers are small, dense integers (the kernel hands out the lowest
//! free one), and an fd almost always has exactly one registration. So a
//! vector indexed by fd number (below [`DIRECT`]) holds that one
//! registration in 8 bytes; fds with several registrations, and numbers
//! beyond [`DIRECT`], go to a hash map.
//!
//! Invariants: an fd has a direct entry or a map entry, never both; a map
//! entry is never empty, and holds two or more registrations unless the fd
//! is beyond [`DIRECT`]; `len` counts the fds with registrations.
#![forbid(unsafe_code)]

use smallvec::{smallvec, SmallVec};

use super::EvFd;
use crate::fasthash::FastMap;

/// Registrations of one fd (almost always exactly one).
pub type FdRegs = SmallVec<[EvFd; 1]>;

/// fds below this are indexed directly.
pub const DIRECT: usize = 1 << 16;

#[derive(Default)]
pub struct FdIndex {
    direct: Vec<Option<EvFd>>,
    map: FastMap<i32, FdRegs>,
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
        self.map.get(&fd).cloned()
    }

    pub fn add(&mut self, fd: i32, ev: EvFd) {
        if let Some(i) = direct_index(fd) {
            if self.direct.len() <= i {
                self.direct.resize(i + 1, None);
            }
            if let Some(first) = self.direct[i].take() {
                self.map.insert(fd, smallvec![first, ev]);
                return;
            }
            if let Some(regs) = self.map.get_mut(&fd) {
                regs.push(ev);
                return;
            }
            self.direct[i] = Some(ev);
            self.len += 1;
            return;
        }
        let regs = self.map.entry(fd).or_default();
        if regs.is_empty() {
            self.len += 1;
        }
        regs.push(ev);
    }

    /// Removes `ev` from `fd`'s list; returns true if none are left.
    pub fn remove(&mut self, fd: i32, ev: EvFd) -> bool {
        let di = direct_index(fd);
        if let Some(i) = di {
            if self.direct.get(i) == Some(&Some(ev)) {
                self.direct[i] = None;
                self.len -= 1;
                return true;
            }
        }
        let Some(regs) = self.map.get_mut(&fd) else { return true };
        regs.retain(|x| *x != ev);
        match (regs.len(), di) {
            (0, _) => {
                self.map.remove(&fd);
                self.len -= 1;
                true
            }
            (1, Some(i)) => {
                self.direct[i] = Some(regs[0]);
                self.map.remove(&fd);
                false
            }
            _ => false,
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
            ix.add(fd, a);
            ix.add(fd, b);
            assert_eq!(ix.get(fd).map(|r| r.len()), Some(2));
            assert!(!ix.remove(fd, a));
            assert_eq!(ix.get(fd).map(|r| r.to_vec()), Some(vec![b]));
            assert!(ix.remove(fd, b));
            assert!(ix.get(fd).is_none());
        }
        assert_eq!(ix.len(), 0);
        ix.add(5, a);
        ix.add(80_000, b);
        let mut fds: Vec<i32> = ix.fds().collect();
        fds.sort_unstable();
        assert_eq!(fds, vec![5, 80_000]);
        assert_eq!(ix.len(), 2);
    }
}
