//! A fast hasher for the small integer keys of our maps (fd numbers,
//! tokens, abort keys): the multiply-rotate scheme of rustc's FxHash.
//!
//! Not collision-resistant against chosen keys. That is acceptable here:
//! the keys come from the application that owns the process (fd numbers it
//! registered, `for_event` values it chose), which can only slow itself
//! down; SipHash cost a quarter of a synchronous operation.
#![forbid(unsafe_code)]

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

const K: u64 = 0xf135_7aea_2e62_a9c5;

#[derive(Default, Clone, Copy)]
pub struct FxHasher {
    h: u64,
}

impl FxHasher {
    fn add(&mut self, w: u64) {
        self.h = (self.h.rotate_left(5) ^ w).wrapping_mul(K);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(w));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    fn write_i32(&mut self, i: i32) {
        self.add(i as u32 as u64);
    }
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    fn finish(&self) -> u64 {
        // Fold the high bits down: hashbrown takes its bucket index from
        // the low bits and its tag from the top 7.
        self.h.rotate_left(26)
    }
}

/// The hasher builder of [`FastMap`], for tables that hash by hand.
pub type FxBuild = BuildHasherDefault<FxHasher>;

pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;
pub type FastSet<K> = HashSet<K, BuildHasherDefault<FxHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_fds_spread_over_buckets() {
        let hash = |v: i32| {
            let mut h = FxHasher::default();
            h.write_i32(v);
            h.finish()
        };
        let mut low: Vec<u64> = (0..1024).map(|fd| hash(fd) & 1023).collect();
        low.sort_unstable();
        low.dedup();
        assert!(low.len() > 600, "only {} distinct buckets of 1024", low.len());
    }
}
