//! Root aos' abort lists: what aborting an ao runs.
//!
//! Invariants:
//! * Abortables (and timeouts, which aborting fires early) of a whole tree
//!   of nested aos are listed on the tree's root; an entry is on the list
//!   exactly while its registration is live.
//! * An entry names an abortable registration or a timeout, told apart by
//!   a tag bit tokens never use (`TIME_TAG`), so a timeout needs no
//!   abortable registration of its own.
//! * Aborting takes entries newest first.
#![forbid(unsafe_code)]

use super::super::{AbrtId, AoId, EvTime};
use crate::token::{Slab, Token};

/// What aborting does for one abortable.
pub enum AbortAction<A> {
    /// Run this (the egc's abort handler type).
    Callback(A),
    /// Complete this ao with `ERROR_ABORTED` (the common case, no closure).
    CompleteAo(AoId),
}

/// One entry of a root ao's abort list.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AbortRef(usize);

const TIME_TAG: usize = crate::token::MAX_SLOTS;

/// What an [`AbortRef`] names.
pub enum AbortTarget {
    Abortable(AbrtId),
    Time(EvTime),
}

impl AbortRef {
    pub fn abortable(a: AbrtId) -> AbortRef {
        AbortRef(a.to_usize())
    }

    pub fn time(ev: EvTime) -> AbortRef {
        AbortRef(ev.to_usize() | TIME_TAG)
    }

    pub fn target(self) -> AbortTarget {
        let tok = Token::from_usize(self.0 & !TIME_TAG).expect("made from a token");
        if self.0 & TIME_TAG != 0 {
            AbortTarget::Time(tok)
        } else {
            AbortTarget::Abortable(tok)
        }
    }
}

pub struct Abortable<A> {
    pub root: AoId,
    pub action: AbortAction<A>,
}

pub struct Abortables<A> {
    slab: Slab<Abortable<A>>,
}

impl<A> Default for Abortables<A> {
    fn default() -> Self {
        Abortables { slab: Slab::new() }
    }
}

impl<A> Abortables<A> {
    pub(super) fn clear(&mut self) {
        for a in self.slab.tokens() {
            self.slab.remove(a);
        }
    }

    pub(super) fn insert(&mut self, root: AoId, action: AbortAction<A>) -> AbrtId {
        self.slab.insert(Abortable { root, action })
    }

    pub(super) fn remove(&mut self, a: AbrtId) -> Option<Abortable<A>> {
        self.slab.remove(a)
    }

    pub(super) fn contains(&self, a: AbrtId) -> bool {
        self.slab.contains(a)
    }
}
