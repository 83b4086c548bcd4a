//! xenstore watch slots (libxl's `watch_slots`): which watch each slot
//! holds, and the tokens that name a registration in xenstore.
//!
//! A watch's xenstore token is `"<slot>/<counter in hex>"`. The counter is
//! taken anew for every registration, so an event still queued for an
//! earlier user of the slot (xenstored may deliver it after the unwatch)
//! carries another counter and is told apart.
//!
//! Invariants:
//! * A slot holds a watch (its C address, inside Xen's libxl) exactly while
//!   that watch is registered; `live` counts the full slots.
//! * A freed slot is reused before the table grows.
//! * A token is parsed strictly: anything but `<decimal>/<hex>` is refused.
#![forbid(unsafe_code)]

/// The watch slots of one ctx.
#[derive(Default)]
pub struct Watches {
    slots: Vec<usize>,
    free: Vec<usize>,
    counter: u32,
    live: usize,
}

impl Watches {
    /// An empty slot for a new registration (reserved until filled or
    /// given back), and the counter for its token.
    pub fn reserve(&mut self) -> (usize, u32) {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.push(0);
            self.slots.len() - 1
        });
        let c = self.counter;
        self.counter = self.counter.wrapping_add(1);
        (slot, c)
    }

    /// The registration in `slot` is live: the slot holds `w` (non-zero).
    pub fn fill(&mut self, slot: usize, w: usize) {
        debug_assert!(w != 0 && self.slots[slot] == 0);
        self.slots[slot] = w;
        self.live += 1;
    }

    /// Empties `slot` (a deregistration, or a reservation given up).
    pub fn give_back(&mut self, slot: usize) {
        if let Some(s) = self.slots.get_mut(slot) {
            if *s != 0 {
                self.live -= 1;
            }
            *s = 0;
            self.free.push(slot);
        }
    }

    /// The watch in `slot`, if any (any number: a token names it).
    pub fn get(&self, slot: i64) -> Option<usize> {
        usize::try_from(slot).ok().and_then(|s| self.slots.get(s)).copied().filter(|&w| w != 0)
    }

    /// How many watches are registered.
    pub fn live(&self) -> usize {
        self.live
    }
}

/// The token of the registration in `slot` with `counter`.
pub fn token(slot: usize, counter: u32) -> String {
    format!("{slot}/{counter:x}")
}

/// A token back into its slot and counter; `None` if it is not one.
pub fn parse_token(t: &[u8]) -> Option<(i64, u32)> {
    let s = std::str::from_utf8(t).ok()?;
    let (slot, counter) = s.split_once('/')?;
    if slot.is_empty() || counter.is_empty() || !slot.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !counter.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some((slot.parse().ok()?, u32::from_str_radix(counter, 16).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_tokens_round_trip_and_junk_is_refused() {
        let t = token(12, 0xbeef);
        assert_eq!(t, "12/beef");
        assert_eq!(parse_token(t.as_bytes()), Some((12, 0xbeef)));
        for junk in [&b""[..], b"12", b"x/1", b"1/zz", b"1/2/3", b"/1", b"1/", b"-1/1", b"+1/1", b"1/+a", b" 1/1"] {
            assert_eq!(parse_token(junk), None, "{:?}", std::str::from_utf8(junk));
        }
    }

    #[test]
    fn a_slot_holds_a_watch_exactly_while_it_is_registered() {
        let mut w = Watches::default();
        let (a, ca) = w.reserve();
        assert_eq!(w.get(a as i64), None, "reserved, not yet filled");
        w.fill(a, 0x1000);
        let (b, cb) = w.reserve();
        w.fill(b, 0x2000);
        assert_ne!(a, b);
        assert_ne!(ca, cb, "every registration takes a new counter");
        assert_eq!(w.live(), 2);
        w.give_back(a);
        assert_eq!(w.get(a as i64), None);
        assert_eq!(w.get(b as i64), Some(0x2000));
        let (again, c2) = w.reserve();
        assert_eq!(again, a, "a freed slot is reused before the table grows");
        assert_ne!(c2, ca, "with another counter: the old slot's late events are told apart");
        assert_eq!(w.live(), 1);
        assert_eq!(w.get(-1), None);
        assert_eq!(w.get(99), None);
    }
}
