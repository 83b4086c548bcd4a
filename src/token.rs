//! Generation-checked slots: the handles we give out (to operations inside
//! the library and, as `for_libxl`, to the application) are a slot index
//! plus the slot's generation, never pointers.
//!
//! Invariants:
//! * Removing a value bumps its slot's generation, so every token issued for
//!   the old value stops matching; `get` rejects it. A reused slot therefore
//!   never answers to a stale token.
//! * A token is a non-zero word (the generation is never 0), so it can
//!   travel through a C `void *` and come back, and `Option<Token>` costs
//!   no more than a token.
//! * Slots live in fixed-size pages, so a slab never reallocates (no
//!   copying, no doubling slack beyond one page). A page keeps its slots'
//!   generations apart from their values, so a value's alignment costs
//!   no padding beside its 4-byte generation.
//! * Slot indices stay below [`MAX_SLOTS`] (2^30), so bits 30 and 31 of a
//!   packed token are always clear: users may use them to tag what kind of
//!   token a word holds (the osevent hooks, an ao's lists do).
//! * A token is 64 bits (32 of generation, 32 of slot), and travels through
//!   a C `void *`: the crate builds only where pointers are 64 bits wide
//!   (refused at compile time elsewhere, rather than silently dropping the
//!   generation, which is what makes a stale token recognisable).
#![forbid(unsafe_code)]

#[cfg(not(target_pointer_width = "64"))]
compile_error!(
    "libxenlight's event core packs 64-bit generation-checked tokens into C pointers \
     (for_libxl); it supports 64-bit targets only (x86_64, aarch64, ...)"
);

const _: () = assert!(std::mem::size_of::<Token>() == 8 && std::mem::size_of::<Option<Token>>() == 8);

use std::fmt;
use std::num::NonZeroU64;

/// Slots per slab: indices never use bits 30 and 31.
pub const MAX_SLOTS: usize = 1 << 30;

/// A handle to a slot's current occupant: generation (high 32 bits, never
/// 0) and slot index (low 32 bits).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Token(NonZeroU64);

impl Token {
    fn new(idx: u32, gen: u32) -> Token {
        let v = (u64::from(gen.max(1)) << 32) | u64::from(idx);
        Token(NonZeroU64::new(v).expect("generation is non-zero"))
    }

    fn idx(self) -> u32 {
        self.0.get() as u32
    }

    fn gen(self) -> u32 {
        (self.0.get() >> 32) as u32
    }

    /// The token as a non-zero word (for `void *for_libxl`).
    pub fn to_usize(self) -> usize {
        self.0.get() as usize
    }

    /// Unpacks a word made by `to_usize`. Any other value gives a token that
    /// `get` will reject (or `None` if it cannot be a token at all).
    pub fn from_usize(v: usize) -> Option<Token> {
        if (v as u64) >> 32 == 0 {
            return None;
        }
        NonZeroU64::new(v as u64).map(Token)
    }

    pub fn index(self) -> usize {
        self.idx() as usize
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.idx(), self.gen())
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Slots per page.
const PAGE: usize = 256;

/// `PAGE` slots (or fewer, in the last page): slot `i` is `gens[i]` and
/// `vals[i]`, both vectors allocated at full size once.
#[derive(Clone)]
struct Page<T> {
    gens: Vec<u32>,
    vals: Vec<Option<T>>,
}

/// A slab of `T` addressed by [`Token`].
#[derive(Clone)]
pub struct Slab<T> {
    pages: Vec<Page<T>>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab { pages: Vec::new(), free: Vec::new(), len: 0 }
    }
}

impl<T> Slab<T> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Slot `idx`: its generation and value.
    fn slot(&self, idx: u32) -> Option<(u32, &Option<T>)> {
        let i = idx as usize;
        let p = self.pages.get(i / PAGE)?;
        Some((*p.gens.get(i % PAGE)?, p.vals.get(i % PAGE)?))
    }

    fn slot_mut(&mut self, idx: u32) -> Option<(&mut u32, &mut Option<T>)> {
        let i = idx as usize;
        let p = self.pages.get_mut(i / PAGE)?;
        Some((p.gens.get_mut(i % PAGE)?, p.vals.get_mut(i % PAGE)?))
    }

    /// Stores `val` and returns its token.
    pub fn insert(&mut self, val: T) -> Token {
        self.len += 1;
        if let Some(idx) = self.free.pop() {
            let (gen, slot) = self.slot_mut(idx).expect("free list holds valid slots");
            debug_assert!(slot.is_none());
            *slot = Some(val);
            return Token::new(idx, *gen);
        }
        if self.pages.last().is_none_or(|p| p.vals.len() == PAGE) {
            self.pages.push(Page { gens: Vec::with_capacity(PAGE), vals: Vec::with_capacity(PAGE) });
        }
        let n = self.pages.len() - 1;
        let page = &mut self.pages[n];
        let at = n * PAGE + page.vals.len();
        assert!(at < MAX_SLOTS, "a slab holds fewer than 2^30 slots");
        let idx = at as u32;
        page.gens.push(1);
        page.vals.push(Some(val));
        Token::new(idx, 1)
    }

    pub fn get(&self, t: Token) -> Option<&T> {
        let (gen, val) = self.slot(t.idx())?;
        if gen != t.gen() {
            return None;
        }
        val.as_ref()
    }

    pub fn get_mut(&mut self, t: Token) -> Option<&mut T> {
        let (gen, val) = self.slot_mut(t.idx())?;
        if *gen != t.gen() {
            return None;
        }
        val.as_mut()
    }

    /// The value in slot `index`, whatever its generation: for callers
    /// that keep slot numbers of values they know to be live.
    pub fn get_mut_at(&mut self, index: u32) -> Option<&mut T> {
        self.slot_mut(index)?.1.as_mut()
    }

    pub fn contains(&self, t: Token) -> bool {
        self.get(t).is_some()
    }

    /// Takes the value out and retires the token.
    pub fn remove(&mut self, t: Token) -> Option<T> {
        let (gen, slot) = self.slot_mut(t.idx())?;
        if *gen != t.gen() || slot.is_none() {
            return None;
        }
        let v = slot.take();
        *gen = gen.wrapping_add(1).max(1);
        self.free.push(t.idx());
        self.len -= 1;
        v
    }

    /// Every live (token, value) pair, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (Token, &T)> {
        self.pages
            .iter()
            .flat_map(|p| p.gens.iter().zip(p.vals.iter()))
            .enumerate()
            .filter_map(|(i, (&gen, v))| v.as_ref().map(|v| (Token::new(i as u32, gen), v)))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (Token, &mut T)> {
        self.pages
            .iter_mut()
            .flat_map(|p| p.gens.iter().zip(p.vals.iter_mut()))
            .enumerate()
            .filter_map(|(i, (&gen, v))| v.as_mut().map(move |v| (Token::new(i as u32, gen), v)))
    }

    /// Live tokens, collected (for loops that mutate the slab).
    pub fn tokens(&self) -> Vec<Token> {
        self.iter().map(|(t, _)| t).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_token_after_slot_reuse_is_ignored() {
        let mut s = Slab::new();
        let a = s.insert("a");
        assert_eq!(s.remove(a), Some("a"));
        let b = s.insert("b");
        assert_eq!(a.index(), b.index(), "slot is reused");
        assert_eq!(s.get(a), None);
        assert_eq!(s.remove(a), None);
        assert_eq!(s.get(b), Some(&"b"));
    }

    #[test]
    fn token_roundtrips_through_usize_and_is_never_zero() {
        let mut s = Slab::new();
        for i in 0..10 {
            let t = s.insert(i);
            let w = t.to_usize();
            assert_ne!(w, 0);
            assert_eq!(Token::from_usize(w), Some(t));
        }
        assert_eq!(Token::from_usize(0), None);
        assert_eq!(Token::from_usize(7), None, "generation 0 is never issued");
    }

    #[test]
    fn forged_token_is_rejected() {
        let mut s = Slab::new();
        s.insert(1);
        let forged = Token::from_usize((99usize << 32) | 5).unwrap();
        assert_eq!(std::mem::size_of::<Option<Token>>(), 8);
        assert_eq!(s.get(forged), None);
    }
}
