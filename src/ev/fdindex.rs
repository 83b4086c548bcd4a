//! fd number -> the live registrations of that fd.
//!
//! fd numbers are small, dense integers (the kernel hands out the lowest
//! free one), so numbers below [`DIRECT`] index a vector directly (O(1),
//! 24 bytes per number) and only larger ones go to a hash map.
//!
//! Invariant: an fd maps to a non-empty list exactly while it has at least
//! one live registration; `len` counts those fds.
#![forbid(unsafe_code)]

use smallvec::SmallVec;

use super::fd::EvFd;
use crate::fasthash::FastMap;

/// Registrations of one fd (almost always exactly one).
pub type FdRegs = SmallVec<[EvFd; 1]>;

/// fds below this are indexed directly.
pub const DIRECT: usize = 1 << 16;

#[derive(Default)]
pub struct FdIndex {
    direct: Vec<FdRegs>,
    large: FastMap<i32, FdRegs>,
    len: usize,
}

impl FdIndex {
    /// fds with at least one registration.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, fd: i32) -> Option<&FdRegs> {
        let r = match usize::try_from(fd) {
            Ok(i) if i < DIRECT => self.direct.get(i),
            _ => self.large.get(&fd),
        };
        r.filter(|r| !r.is_empty())
    }

    pub fn add(&mut self, fd: i32, ev: EvFd) {
        let regs = match usize::try_from(fd) {
            Ok(i) if i < DIRECT => {
                if self.direct.len() <= i {
                    self.direct.resize_with(i + 1, FdRegs::new);
                }
                &mut self.direct[i]
            }
            _ => self.large.entry(fd).or_default(),
        };
        if regs.is_empty() {
            self.len += 1;
        }
        regs.push(ev);
    }

    /// Removes `ev` from `fd`'s list; returns true if none are left.
    pub fn remove(&mut self, fd: i32, ev: EvFd) -> bool {
        let (regs, large) = match usize::try_from(fd) {
            Ok(i) if i < DIRECT => match self.direct.get_mut(i) {
                Some(r) => (r, false),
                None => return true,
            },
            _ => match self.large.get_mut(&fd) {
                Some(r) => (r, true),
                None => return true,
            },
        };
        let before = regs.len();
        regs.retain(|x| *x != ev);
        let empty = regs.is_empty();
        if empty && before > 0 {
            self.len -= 1;
            if large {
                self.large.remove(&fd);
            } else {
                *regs = FdRegs::new(); // give back a spilled heap buffer
            }
        }
        empty
    }

    /// Every fd with at least one registration.
    pub fn fds(&self) -> impl Iterator<Item = i32> + '_ {
        let direct = self.direct.iter().enumerate().filter(|(_, r)| !r.is_empty()).map(|(i, _)| i as i32);
        direct.chain(self.large.keys().copied())
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
