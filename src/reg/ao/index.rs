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
//! * `newest` holds ao handles only (8 bytes and a control byte each): an
//!   ao's key is read from its entry (`key_of`), which every ao in the
//!   index has, since only aos in progress are in it.
#![forbid(unsafe_code)]

use std::hash::BuildHasher;

use hashbrown::hash_table::Entry;
use hashbrown::HashTable;

use super::super::AoId;
use crate::fasthash::{FastMap, FxBuild};

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

fn hash(key: AbortKey) -> u64 {
    FxBuild::default().hash_one(key)
}

#[derive(Default)]
pub struct AbortIndex {
    /// The newest in-progress ao of each key (found by its key).
    newest: HashTable<AoId>,
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
    /// `key_of` tells the key of any ao in progress.
    pub fn insert(&mut self, key: AbortKey, ao: AoId, key_of: impl Fn(AoId) -> AbortKey) -> u32 {
        let seq = self.next_seq;
        self.next_seq = seq.wrapping_add(1);
        self.count += 1;
        if self.live() {
            self.link(key, ao, &key_of);
        }
        seq
    }

    /// Makes `ao` the newest with `key`.
    fn link(&mut self, key: AbortKey, ao: AoId, key_of: &impl Fn(AoId) -> AbortKey) {
        match self.newest.entry(hash(key), |&a| key_of(a) == key, |&a| hash(key_of(a))) {
            Entry::Occupied(mut o) => {
                let older = std::mem::replace(o.get_mut(), ao);
                self.older.insert(ao, older);
            }
            Entry::Vacant(v) => {
                v.insert(ao);
            }
        }
    }

    /// The newest in-progress ao with `key`, if the index is built.
    fn newest_of(&self, key: AbortKey, key_of: &impl Fn(AoId) -> AbortKey) -> Option<AoId> {
        self.newest.find(hash(key), |&a| key_of(a) == key).copied()
    }

    /// `ao` (with `key`) is no longer in progress.
    pub fn remove(&mut self, key: AbortKey, _seq: u32, ao: AoId, key_of: impl Fn(AoId) -> AbortKey) {
        self.count -= 1;
        if !self.live() {
            return;
        }
        let older = self.older.remove(&ao);
        if let Ok(mut o) = self.newest.find_entry(hash(key), |&a| a == ao) {
            match older {
                Some(next) => *o.get_mut() = next,
                None => {
                    o.remove();
                }
            }
            return;
        }
        // Not the newest: unlink it from the chain of older ones.
        let mut cur = self.newest_of(key, &key_of);
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
    /// builds it from `all` (every ao in progress: key, creation number,
    /// id); `seq_of` tells the creation number of an ao in progress.
    pub fn find<I: Iterator<Item = (AbortKey, u32, AoId)>>(
        &mut self,
        key: AbortKey,
        all: impl FnOnce() -> I,
        key_of: impl Fn(AoId) -> AbortKey,
        seq_of: impl Fn(AoId) -> u32,
    ) -> Option<AoId> {
        if !self.live() && self.count > 0 {
            self.build(all(), &key_of, &seq_of);
        }
        self.newest_of(key, &key_of)
    }

    /// Builds the index in one pass: each ao goes in as the only one of its
    /// key; the aos of keys that several share (rare) are then ordered by
    /// age and linked, oldest first, so the newest ends up in front.
    fn build(
        &mut self,
        all: impl Iterator<Item = (AbortKey, u32, AoId)>,
        key_of: &impl Fn(AoId) -> AbortKey,
        seq_of: &impl Fn(AoId) -> u32,
    ) {
        let now = self.next_seq;
        self.newest.reserve(self.count, |&a| hash(key_of(a)));
        let mut shared: Vec<(u32, AbortKey, AoId)> = Vec::new();
        for (k, seq, ao) in all {
            match self.newest.entry(hash(k), |&a| key_of(a) == k, |&a| hash(key_of(a))) {
                Entry::Vacant(v) => {
                    v.insert(ao);
                }
                Entry::Occupied(_) => shared.push((now.wrapping_sub(seq), k, ao)),
            }
        }
        if shared.is_empty() {
            return;
        }
        let mut keys: Vec<AbortKey> = shared.iter().map(|e| e.1).collect();
        keys.sort_unstable_by_key(|k| hash(*k));
        keys.dedup();
        for k in keys {
            if let Ok(o) = self.newest.find_entry(hash(k), |&a| key_of(a) == k) {
                let (first, _) = o.remove();
                shared.push((now.wrapping_sub(seq_of(first)), k, first));
            }
        }
        shared.sort_unstable_by_key(|e| std::cmp::Reverse(e.0));
        for (_, k, ao) in shared {
            self.link(k, ao, key_of);
        }
    }

    #[cfg(test)]
    pub fn set_next_seq(&mut self, seq: u32) {
        self.next_seq = seq;
    }
}
