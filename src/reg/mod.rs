//! Registries: the containers of the core's state.
//!
//! Each one stores, finds and removes; none calls a handler, knows the
//! egc, or changes another registry. Fields are private: what a registry
//! keeps in step internally (the fd registry's dense poll set and its index
//! by fd number, the abort index, the timeout heap) stays in step whatever
//! the caller does. A registry that holds callbacks is generic over their
//! type, so the handlers (which take the egc) are defined by the layer
//! above, `egc`, which orchestrates: insert → tell the application's hooks
//! → tell the pollers → attach to the ao.
//!
//! Handles are generation-checked [`Token`](crate::token::Token)s, so a
//! stale handle is recognised rather than reaching a reused slot.
#![forbid(unsafe_code)]

use crate::token::Token;

/// An asynchronous operation.
pub type AoId = Token;
/// An abortable registration of an ao.
pub type AbrtId = Token;
/// An fd registration.
pub type EvFd = Token;
/// A timeout registration.
pub type EvTime = Token;
/// A child process registration.
pub type EvChild = Token;
/// A poller.
pub type PollerId = Token;

pub mod ao;
pub mod child;
pub mod event;
pub mod fd;
pub mod fdindex;
pub mod few;
pub mod foreign;
pub mod hooks;
pub mod poller;
pub mod time;
pub mod watch;

/// Makes room for `more` items in `v`, growing it by a quarter at a time
/// (at least 64 items) rather than doubling: the registries' dense arrays
/// are per-registration memory, and doubling leaves up to half of them
/// unused (a quarter keeps the amortised copying linear).
pub fn grow_gently<T>(v: &mut Vec<T>, more: usize) {
    let need = v.len() + more;
    if need > v.capacity() {
        let target = need.max(v.capacity() + v.capacity() / 4).max(64);
        v.reserve_exact(target - v.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gentle_growth_leaves_at_most_a_quarter_unused() {
        let mut v: Vec<u64> = Vec::new();
        for i in 0..100_000u64 {
            grow_gently(&mut v, 1);
            v.push(i);
            assert!(v.capacity() <= (v.len() + v.len() / 4).max(64), "len {} capacity {}", v.len(), v.capacity());
        }
    }
}
