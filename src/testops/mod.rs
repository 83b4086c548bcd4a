//! Test operations, written only on the internal API (ao, ev_fd, ev_time,
//! ev_child, abortables, progress reports), as a real libxl operation would be.
//! Each takes an `Egc` and an `AoHow` and returns what the public function
//! returns: the operation's rc when synchronous, else 0 or a setup error.
#![forbid(unsafe_code)]

pub mod childproc;
pub mod fdchain;
pub mod fdevent;
pub mod fdmodify;
pub mod progress;
pub mod timedereg;
pub mod timeout;
