//! How `libxl_ao_abort` finds an ao: by the fields libxl compares
//! ([`AbortKey`]), the newest in progress first.
//!
//! Invariants:
//! * `count` is the number of aos in progress.
//! * The index is built by the first lookup (from the creation numbers of
//!   the aos in progress) and kept while any ao is in progress; it is empty
//!   exactly when it was never built or nothing is in progress any more, so
//!   a program that never aborts never maintains it. While it exists it
//!   holds every ao in progress: the newest per key in `newest`, each older
//!   one reachable through `older`.
//! * Creation numbers are compared as ages (wrapping arithmetic), so their
//!   wrap after 2^32 aos does not reorder anything.
#![forbid(unsafe_code)]

use super::super::AoId;
use crate::fasthash::FastMap;

/// How `libxl_ao_abort` names an operation: exactly the fields libxl
/// compares. (Packed: `cb` is the callback's address, 0 for for_event,
/// 1 for synchronous; no function lives at address 0 or 1.)
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AbortKey {
    cb: usize,
    user: u64,
}

impl AbortKey {
    /// `ao_how == NULL`.
    pub const SYNC: AbortKey = AbortKey { cb: 1, user: 0 };

    /// `callback != NULL`: (callback address, for_callback).
    pub fn callback(cb: usize, for_callback: usize) -> AbortKey {
        AbortKey { cb: cb.max(2), user: for_callback as u64 }
    }

    /// `callback == NULL`: for_event.
    pub fn event(for_event: u64) -> AbortKey {
        AbortKey { cb: 0, user: for_event }
    }
}

impl std::fmt::Debug for AbortKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.cb {
            0 => write!(f, "for_event={:#x}", self.user),
            1 => write!(f, "synchronous"),
            cb => write!(f, "callback={cb:#x} for_callback={:#x}", self.user),
        }
    }
}

#[derive(Default)]
pub struct AbortIndex {
    /// Key -> the newest in-progress ao with it.
    newest: FastMap<AbortKey, AoId>,
    /// ao -> the next older in-progress ao with the same key (rare).
    older: FastMap<AoId, AoId>,
    /// The next creation number (wraps).
    next_seq: u32,
    count: usize,
}

impl AbortIndex {
    pub fn count(&self) -> usize {
        self.count
    }

    pub fn live(&self) -> bool {
        !self.newest.is_empty()
    }

    /// An ao with `key` is now in progress; its creation number.
    pub fn insert(&mut self, key: AbortKey, ao: AoId) -> u32 {
        let seq = self.next_seq;
        self.next_seq = seq.wrapping_add(1);
        self.count += 1;
        if self.live() {
            self.link(key, ao);
        }
        seq
    }

    /// Makes `ao` the newest with `key`.
    fn link(&mut self, key: AbortKey, ao: AoId) {
        if let Some(older) = self.newest.insert(key, ao) {
            self.older.insert(ao, older);
        }
    }

    /// `ao` (with `key`) is no longer in progress.
    pub fn remove(&mut self, key: AbortKey, _seq: u32, ao: AoId) {
        self.count -= 1;
        if !self.live() {
            return;
        }
        let older = self.older.remove(&ao);
        if self.newest.get(&key) == Some(&ao) {
            match older {
                Some(o) => self.newest.insert(key, o),
                None => self.newest.remove(&key),
            };
            return;
        }
        // Not the newest: unlink it from the chain of older ones.
        let mut cur = self.newest.get(&key).copied();
        while let Some(c) = cur {
            let next = self.older.get(&c).copied();
            if next == Some(ao) {
                match older {
                    Some(o) => self.older.insert(c, o),
                    None => self.older.remove(&c),
                };
                return;
            }
            cur = next;
        }
    }

    /// The newest in-progress ao with `key`. If the index is not built yet,
    /// builds it from `all` (every ao in progress: key, creation number, id).
    pub fn find<I: Iterator<Item = (AbortKey, u32, AoId)>>(&mut self, key: AbortKey, all: impl FnOnce() -> I) -> Option<AoId> {
        if !self.live() && self.count > 0 {
            let now = self.next_seq;
            let mut live: Vec<(u32, AbortKey, AoId)> = all().map(|(k, seq, ao)| (now.wrapping_sub(seq), k, ao)).collect();
            // Oldest (largest age) first, so the newest ends up in front.
            live.sort_unstable_by_key(|e| std::cmp::Reverse(e.0));
            self.newest.reserve(live.len());
            for (_, k, ao) in live {
                self.link(k, ao);
            }
        }
        self.newest.get(&key).copied()
    }

    #[cfg(test)]
    pub fn set_next_seq(&mut self, seq: u32) {
        self.next_seq = seq;
    }
}
