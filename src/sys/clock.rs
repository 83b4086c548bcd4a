//! Clocks. Deadlines inside the library are nanoseconds on the monotonic
//! clock, so a wall-clock step never fires or starves a timeout. The
//! application speaks wall-clock `struct timeval` (the `now` argument of
//! beforepoll/afterpoll, the `abs` given to `timeout_register`); we convert
//! at that edge by the current offset between the two clocks.

/// Nanoseconds on `CLOCK_MONOTONIC`.
pub fn mono_ns() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is always available on Linux");
    ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
}

/// A wall-clock time, as `struct timeval` holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timeval {
    pub sec: i64,
    pub usec: i64,
}

impl Timeval {
    fn as_ns(self) -> i128 {
        self.sec as i128 * 1_000_000_000 + self.usec as i128 * 1_000
    }
    fn from_ns(ns: i128) -> Timeval {
        let sec = ns.div_euclid(1_000_000_000);
        let usec = ns.rem_euclid(1_000_000_000) / 1_000;
        Timeval { sec: sec as i64, usec: usec as i64 }
    }
}

/// The wall clock now (`CLOCK_REALTIME`).
pub fn wall_now() -> Timeval {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME)
        .expect("CLOCK_REALTIME is always available on Linux");
    Timeval { sec: ts.tv_sec(), usec: ts.tv_nsec() / 1_000 }
}

/// The monotonic instant that corresponds to the wall-clock time `tv`.
/// Times before the monotonic epoch clamp to 0 (that is: long past).
pub fn wall_to_mono(tv: Timeval) -> u64 {
    let delta = tv.as_ns() - wall_now().as_ns();
    let m = mono_ns() as i128 + delta;
    m.clamp(0, u64::MAX as i128) as u64
}

/// The wall-clock time that corresponds to the monotonic instant `mono`.
pub fn mono_to_wall(mono: u64) -> Timeval {
    let delta = mono as i128 - mono_ns() as i128;
    Timeval::from_ns(wall_now().as_ns() + delta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_and_mono_roundtrip_within_a_millisecond() {
        let m = mono_ns() + 5_000_000_000;
        let back = wall_to_mono(mono_to_wall(m));
        assert!(back.abs_diff(m) < 1_000_000, "{back} vs {m}");
    }

    #[test]
    fn timeval_from_negative_ns_normalises_usec() {
        let tv = Timeval::from_ns(-1_500);
        assert_eq!(tv, Timeval { sec: -1, usec: 999_998 });
    }
}
