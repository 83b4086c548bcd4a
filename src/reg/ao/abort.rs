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
use super::AoRegistry;
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
}

impl<A> AoRegistry<A> {
    /// Lists `r` on `root`'s abort list.
    pub fn abort_list_push(&mut self, root: AoId, r: AbortRef) {
        self.get_mut(root).abortables.push(r);
    }

    /// Takes `r` off `root`'s abort list, if both are still there.
    pub fn abort_list_remove(&mut self, root: AoId, r: AbortRef) {
        if let Some(e) = self.try_get_mut(root) {
            if let Some(pos) = e.abortables.iter().rposition(|&x| x == r) {
                e.abortables.swap_remove(pos);
            }
        }
    }

    /// The newest entry of `root`'s abort list, taken off it.
    pub fn abort_list_pop(&mut self, root: AoId) -> Option<AbortRef> {
        self.try_get_mut(root)?.abortables.pop()
    }

    pub fn abort_list(&self, root: AoId) -> &[AbortRef] {
        &self.get(root).abortables
    }

    /// A new abortable on `root`'s list.
    pub fn abortable_insert(&mut self, root: AoId, action: AbortAction<A>) -> AbrtId {
        let a = self.abortables.slab.insert(Abortable { root, action });
        self.abort_list_push(root, AbortRef::abortable(a));
        a
    }

    /// Ends an abortable registration (idempotent); off its root's list.
    pub fn abortable_remove(&mut self, a: AbrtId) -> Option<Abortable<A>> {
        let ab = self.abortables.slab.remove(a)?;
        self.abort_list_remove(ab.root, AbortRef::abortable(a));
        Some(ab)
    }

    pub fn abortable_exists(&self, a: AbrtId) -> bool {
        self.abortables.slab.contains(a)
    }
}
