//! Values owned by the C code the core is built into.
//!
//! Inside Xen's libxl, some of what the core keeps is C memory: the
//! `libxl__ao` a C initiator got from `libxl__ao_create`, a `libxl_event`
//! that C code built and handed to `libxl__event_occurred`. The core keeps
//! such a value as a [`Foreign`]: its address and the function that frees
//! it. The core never looks inside; it only decides *when* the value goes.
//!
//! Invariants:
//! * A `Foreign` is freed exactly once: when it is dropped (its free
//!   function is called), or never, if [`Foreign::into_addr`] gave its
//!   address back to C with the ownership.
//! * The free function is the embedding layer's: it is the only code that
//!   knows what the address is.
#![forbid(unsafe_code)]

use std::fmt;

/// A C value the core owns: an address and how to free it.
pub struct Foreign {
    addr: usize,
    free: fn(usize),
}

impl Foreign {
    /// Takes ownership of the value at `addr`, to be freed by `free`.
    pub fn new(addr: usize, free: fn(usize)) -> Foreign {
        Foreign { addr, free }
    }

    pub fn addr(&self) -> usize {
        self.addr
    }

    /// Gives the value back (with its ownership): it will not be freed.
    pub fn into_addr(self) -> usize {
        let a = self.addr;
        std::mem::forget(self);
        a
    }
}

impl Drop for Foreign {
    fn drop(&mut self) {
        (self.free)(self.addr);
    }
}

impl PartialEq for Foreign {
    fn eq(&self, other: &Foreign) -> bool {
        self.addr == other.addr
    }
}

impl Eq for Foreign {}

impl fmt::Debug for Foreign {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Foreign({:#x})", self.addr)
    }
}

/// For tests of code that keeps foreign values: a free function that
/// records what it freed (tests use addresses of their own, so tests
/// running at once do not see each other's).
#[cfg(test)]
pub(crate) mod testing {
    static FREED: parking_lot::Mutex<Vec<usize>> = parking_lot::const_mutex(Vec::new());

    pub fn record(addr: usize) {
        FREED.lock().push(addr);
    }

    /// How many times `addr` has been freed.
    pub fn times_freed(addr: usize) -> usize {
        FREED.lock().iter().filter(|&&a| a == addr).count()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{record, times_freed};
    use super::*;

    #[test]
    fn a_foreign_value_is_freed_once_unless_given_back() {
        drop(Foreign::new(0xf0_0001, record));
        assert_eq!(times_freed(0xf0_0001), 1, "dropped: freed once");
        let f = Foreign::new(0xf0_0002, record);
        assert_eq!(f.into_addr(), 0xf0_0002);
        assert_eq!(times_freed(0xf0_0002), 0, "given back: not freed");
    }
}
