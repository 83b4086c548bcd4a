//! The ao registry: every asynchronous operation (libxl's `libxl__ao`).
//!
//! An ao's life, in [`Phase`]s: `Running` from creation (the initiator sets
//! it up, `constructing`, until `ao_inprogress`), `Complete` once
//! `ao_complete` gave its rc (its report then waits for outstanding
//! progress callbacks and killed children), `Notified` once the report is
//! being made; it is freed when notified and no user (`manip`: the
//! initiator, an abort in progress) holds it.
//!
//! Files: this one holds the entries; [`index`] is how `libxl_ao_abort`
//! finds an ao in progress (built on first use); [`abort`] is the root
//! aos' abort lists (abortables, and timeouts that aborting fires early).
//!
//! Invariants:
//! * An ao is *in progress* (findable by `libxl_ao_abort`) exactly while
//!   it is `Running` and not nested.
//! * Nested aos point at their root; a root counts its nested aos, which
//!   must all be freed before it completes.
//! * Sources an ao owns are listed in `owned`, released (by the egc) when
//!   it completes.
#![forbid(unsafe_code)]

pub mod abort;
pub mod index;

use std::sync::Arc;

use self::abort::{AbortAction, AbortRef, Abortable};
pub use self::index::AbortKey;
use super::event::Event;
use super::{AbrtId, AoId, EvChild, EvFd, EvTime, PollerId};
use crate::fasthash::FastMap;
use crate::rc::Rc;
use crate::token::Slab;
use super::few::Few;

/// The application's completion callback, already bound to its arguments.
pub type AppRcFn = Box<dyn FnOnce(Rc) + Send>;

/// `libxl_asyncop_how`, converted.
pub enum AoHow {
    Sync,
    Callback { cb: AppRcFn, key: AbortKey },
    ForEvent(u64),
}

/// `libxl_asyncprogress_how`, converted.
#[derive(Clone)]
pub enum AopHow {
    Discard,
    ForEvent(u64),
    Callback { for_event: u64, cb: Arc<dyn Fn(Event) + Send + Sync> },
}

/// How an ao reports its completion.
pub enum Mode {
    /// `ao_inprogress` runs the loop on this poller until it is complete.
    Sync { poller: Option<PollerId> },
    Callback(Option<AppRcFn>),
    ForEvent(u64),
    /// A nested ao: reports nothing itself.
    Nested,
}

/// A source an ao owns (released when it completes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owned {
    Fd(EvFd),
    Time(EvTime),
    Abortable(AbrtId),
    Child(EvChild),
}

/// An [`Owned`] in one word: the token, its kind in bits 30 and 31 (which
/// no token uses, see `token`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct OwnedRef(std::num::NonZeroU64);

const KIND_SHIFT: u32 = 30;
const KIND_MASK: u64 = 3 << KIND_SHIFT;
const _: () = assert!(crate::token::MAX_SLOTS as u64 == 1 << KIND_SHIFT);

impl OwnedRef {
    pub fn pack(o: Owned) -> OwnedRef {
        let (kind, t) = match o {
            Owned::Fd(t) => (0u64, t),
            Owned::Time(t) => (1, t),
            Owned::Abortable(t) => (2, t),
            Owned::Child(t) => (3, t),
        };
        let v = t.to_usize() as u64 | kind << KIND_SHIFT;
        OwnedRef(std::num::NonZeroU64::new(v).expect("a token is non-zero"))
    }

    pub fn unpack(self) -> Owned {
        let v = self.0.get();
        let t = crate::token::Token::from_usize((v & !KIND_MASK) as usize).expect("packed from a token");
        match (v & KIND_MASK) >> KIND_SHIFT {
            0 => Owned::Fd(t),
            1 => Owned::Time(t),
            2 => Owned::Abortable(t),
            _ => Owned::Child(t),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Not complete yet (setting up while `constructing`).
    Running,
    /// `ao_complete` gave its rc; the report waits for outstanding work.
    Complete,
    /// Its completion has been (or is being) reported.
    Notified,
}

pub struct AoEntry<X = ()> {
    pub mode: Mode,
    pub domid: u32,
    pub phase: Phase,
    /// [`CONSTRUCTING`], [`ABORTING`], [`COMPLETES_ON_ABORT`] (one byte:
    /// see the size check below).
    flags: u8,
    pub rc: Rc,
    /// Users that keep the ao alive (the initiator, an abort in progress:
    /// at most two).
    pub manip: u16,
    pub progress_outstanding: u32,
    /// (Root) children killed on this ao's behalf, not yet reaped.
    pub killed_children: u32,
    pub owned: Few<OwnedRef>,
    /// How `libxl_ao_abort` names it.
    key: AbortKey,
    /// Creation number: orders aos with the same key (see `index`).
    seq: u32,
    /// (Root) what aborting runs, newest last.
    abortables: Few<AbortRef>,
    /// What the embedding layer keeps with the ao, dropped with it (inside
    /// Xen's libxl: the C `libxl__ao`; nothing in the standalone library).
    pub extra: X,
}

/// Between `ao_create` and `ao_inprogress`.
const CONSTRUCTING: u8 = 1;
/// (Root) an abort was requested.
const ABORTING: u8 = 2;
/// Aborting completes it with `ERROR_ABORTED` (the usual abortable, kept
/// as a flag rather than an entry of its own).
const COMPLETES_ON_ABORT: u8 = 4;

impl<X> AoEntry<X> {
    fn flag(&self, f: u8) -> bool {
        self.flags & f != 0
    }

    fn set_flag(&mut self, f: u8, on: bool) {
        if on {
            self.flags |= f;
        } else {
            self.flags &= !f;
        }
    }

    /// Between `ao_create` and `ao_inprogress`.
    pub fn constructing(&self) -> bool {
        self.flag(CONSTRUCTING)
    }

    pub fn set_constructing(&mut self, on: bool) {
        self.set_flag(CONSTRUCTING, on);
    }

    /// (Root) an abort was requested.
    pub fn aborting(&self) -> bool {
        self.flag(ABORTING)
    }

    pub fn set_aborting(&mut self, on: bool) {
        self.set_flag(ABORTING, on);
    }

    /// Aborting completes it with `ERROR_ABORTED` (the usual abortable).
    pub fn set_completes_on_abort(&mut self, on: bool) {
        self.set_flag(COMPLETES_ON_ABORT, on);
    }

    /// Whether aborting completes it, the flag cleared.
    pub fn take_completes_on_abort(&mut self) -> bool {
        let was = self.flag(COMPLETES_ON_ABORT);
        self.set_flag(COMPLETES_ON_ABORT, false);
        was
    }

    /// Complete, with every progress report delivered and every killed
    /// child reaped: its completion may be reported.
    pub fn work_outstanding(&self) -> bool {
        self.phase == Phase::Running || self.progress_outstanding > 0 || self.killed_children > 0
    }

    fn in_progress(&self) -> bool {
        self.phase == Phase::Running && !matches!(self.mode, Mode::Nested)
    }
}

/// The abort key of `ao`, which is in the slab (the index holds only aos
/// in progress).
fn slab_key<X>(slab: &Slab<AoEntry<X>>, ao: AoId) -> AbortKey {
    slab.get(ao).expect("an ao in the abort index is live").key
}

pub struct AoRegistry<A, X = ()> {
    slab: Slab<AoEntry<X>>,
    index: index::AbortIndex,
    /// Nested ao -> its root (nested aos are rare: kept aside).
    nested_root: FastMap<AoId, AoId>,
    /// Root -> how many nested aos it has.
    nested_progeny: FastMap<AoId, u32>,
    abortables: abort::Abortables<A>,
}

impl<A, X> Default for AoRegistry<A, X> {
    fn default() -> Self {
        AoRegistry {
            slab: Slab::new(),
            index: index::AbortIndex::default(),
            nested_root: FastMap::default(),
            nested_progeny: FastMap::default(),
            abortables: abort::Abortables::default(),
        }
    }
}

impl<A, X: Default> AoRegistry<A, X> {
    pub fn len(&self) -> usize {
        self.slab.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    pub fn contains(&self, ao: AoId) -> bool {
        self.slab.contains(ao)
    }

    /// Aos in progress (created, not yet complete).
    pub fn inprogress_count(&self) -> usize {
        self.index.count()
    }

    /// A new top-level ao, in progress, held by its initiator.
    pub fn create(&mut self, mode: Mode, key: AbortKey, domid: u32) -> AoId {
        let ao = self.slab.insert(AoEntry::new(mode, key, domid, 1));
        let slab = &self.slab;
        let seq = self.index.insert(key, ao, |a| slab_key(slab, a));
        self.get_mut(ao).seq = seq;
        ao
    }

    /// A nested ao under `parent`'s root.
    pub fn create_nested(&mut self, parent: AoId) -> AoId {
        let root = self.root_of(parent);
        let domid = self.get(root).domid;
        *self.nested_progeny.entry(root).or_insert(0) += 1;
        let child = self.slab.insert(AoEntry::new(Mode::Nested, AbortKey::SYNC, domid, 0));
        self.nested_root.insert(child, root);
        child
    }

    /// Frees a nested ao; its entry.
    pub fn remove_nested(&mut self, child: AoId) -> Option<AoEntry<X>> {
        let e = self.slab.remove(child)?;
        if let Some(root) = self.nested_root.remove(&child) {
            if let Some(n) = self.nested_progeny.get_mut(&root) {
                *n -= 1;
                if *n == 0 {
                    self.nested_progeny.remove(&root);
                }
            }
        }
        Some(e)
    }

    /// True if `ao` is nested, or has nested aos.
    pub fn in_a_tree(&self, ao: AoId) -> bool {
        self.nested_root.contains_key(&ao) || self.nested_progeny.contains_key(&ao)
    }

    pub fn is_nested(&self, ao: AoId) -> bool {
        self.nested_root.contains_key(&ao)
    }

    /// Takes `ao` out of the set `libxl_ao_abort` searches (it completed,
    /// or its creation failed).
    pub fn leave_index(&mut self, ao: AoId) {
        let Some(e) = self.slab.get(ao) else { return };
        if e.in_progress() {
            let (key, seq) = (e.key, e.seq);
            let slab = &self.slab;
            self.index.remove(key, seq, ao, |a| slab_key(slab, a));
        }
    }

    /// Frees an ao; its entry.
    pub fn remove(&mut self, ao: AoId) -> Option<AoEntry<X>> {
        self.leave_index(ao);
        self.slab.remove(ao)
    }

    pub fn get(&self, ao: AoId) -> &AoEntry<X> {
        self.slab.get(ao).expect("ao handle used after the ao was freed")
    }

    pub fn get_mut(&mut self, ao: AoId) -> &mut AoEntry<X> {
        self.slab.get_mut(ao).expect("ao handle used after the ao was freed")
    }

    pub fn try_get(&self, ao: AoId) -> Option<&AoEntry<X>> {
        self.slab.get(ao)
    }

    pub fn try_get_mut(&mut self, ao: AoId) -> Option<&mut AoEntry<X>> {
        self.slab.get_mut(ao)
    }

    pub fn root_of(&self, ao: AoId) -> AoId {
        self.nested_root.get(&ao).copied().unwrap_or(ao)
    }

    /// The newest in-progress ao `key` names (`libxl_ao_abort`).
    pub fn find(&mut self, key: AbortKey) -> Option<AoId> {
        let slab = &self.slab;
        self.index.find(
            key,
            || slab.iter().filter(|(_, e)| e.in_progress()).map(|(ao, e)| (e.key, e.seq, ao)),
            |a| slab_key(slab, a),
            |a| slab.get(a).expect("an ao in the abort index is live").seq,
        )
    }

    pub fn ids(&self) -> Vec<AoId> {
        self.slab.tokens()
    }

    /// Drops every ao (for `libxl_ctx_free`); how many were in progress.
    pub fn discard_all(&mut self) -> usize {
        let n = self.inprogress_count();
        self.index = index::AbortIndex::default();
        self.nested_root.clear();
        self.nested_progeny.clear();
        for ao in self.slab.tokens() {
            self.slab.remove(ao);
        }
        self.abortables.clear();
        n
    }

    /// Lists `r` on `root`'s abort list.
    pub fn abort_list_push(&mut self, root: AoId, r: AbortRef) {
        self.get_mut(root).abortables.push(r);
    }

    /// Takes `r` off `root`'s abort list, if both are still there.
    pub fn abort_list_remove(&mut self, root: AoId, r: AbortRef) {
        if let Some(e) = self.try_get_mut(root) {
            e.abortables.remove(r);
        }
    }

    /// The newest entry of `root`'s abort list, taken off it.
    pub fn abort_list_pop(&mut self, root: AoId) -> Option<AbortRef> {
        self.try_get_mut(root)?.abortables.pop()
    }

    pub fn abort_list(&self, root: AoId) -> &[AbortRef] {
        self.get(root).abortables.as_slice()
    }

    /// A new abortable on `root`'s list.
    pub fn abortable_insert(&mut self, root: AoId, action: AbortAction<A>) -> AbrtId {
        let a = self.abortables.insert(root, action);
        self.abort_list_push(root, AbortRef::abortable(a));
        a
    }

    /// Ends an abortable registration (idempotent); off its root's list.
    pub fn abortable_remove(&mut self, a: AbrtId) -> Option<Abortable<A>> {
        let ab = self.abortables.remove(a)?;
        self.abort_list_remove(ab.root, AbortRef::abortable(a));
        Some(ab)
    }

    pub fn abortable_exists(&self, a: AbrtId) -> bool {
        self.abortables.contains(a)
    }

    /// The abort index exists (for tests).
    pub fn index_live(&self) -> bool {
        self.index.live()
    }

    /// Sets the next creation number (for tests of its wrap).
    #[cfg(test)]
    pub fn set_next_seq(&mut self, seq: u32) {
        self.index.set_next_seq(seq);
    }
}

impl<X: Default> AoEntry<X> {
    fn new(mode: Mode, key: AbortKey, domid: u32, manip: u16) -> AoEntry<X> {
        let constructing = !matches!(mode, Mode::Nested);
        AoEntry {
            mode,
            domid,
            phase: Phase::Running,
            flags: if constructing { CONSTRUCTING } else { 0 },
            rc: 0,
            manip,
            progress_outstanding: 0,
            killed_children: 0,
            owned: Few::Zero,
            key,
            seq: 0,
            abortables: Few::Zero,
            extra: X::default(),
        }
    }
}

// Sizes that matter for the memory figure (B6: heap per pending op): an
// entry is one slab slot, checked at compile time.
const _: () = assert!(std::mem::size_of::<AoEntry<()>>() == 96);
const _: () = assert!(std::mem::size_of::<Few<OwnedRef>>() == 16 && std::mem::size_of::<Few<AbortRef>>() == 16);
const _: () = assert!(std::mem::size_of::<AbortKey>() == 16);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reg::foreign::testing::{record, times_freed};
    use crate::reg::foreign::Foreign;

    /// Inside Xen's libxl an ao carries its C `libxl__ao`: freed exactly
    /// when the registry drops the ao (removed, nested freed, or all
    /// discarded), never before.
    #[test]
    fn an_aos_extra_goes_with_it() {
        let (ra, rn, rb) = (0xa0_0001, 0xa0_0002, 0xa0_0003);
        let mut r: AoRegistry<(), Option<Foreign>> = AoRegistry::default();
        let a = r.create(Mode::ForEvent(1), AbortKey::event(1), 0);
        r.get_mut(a).extra = Some(Foreign::new(ra, record));
        let n = r.create_nested(a);
        r.get_mut(n).extra = Some(Foreign::new(rn, record));
        let b = r.create(Mode::ForEvent(2), AbortKey::event(2), 0);
        r.get_mut(b).extra = Some(Foreign::new(rb, record));
        assert_eq!(times_freed(ra) + times_freed(rn) + times_freed(rb), 0);
        drop(r.remove_nested(n));
        assert_eq!((times_freed(rn), times_freed(ra)), (1, 0));
        drop(r.remove(a));
        assert_eq!((times_freed(ra), times_freed(rb)), (1, 0));
        r.discard_all();
        assert_eq!((times_freed(ra), times_freed(rn), times_freed(rb)), (1, 1, 1));
    }
}
