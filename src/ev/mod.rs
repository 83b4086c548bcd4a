//! Event sources: the things an operation waits for.
//!
//! * [`fd`]: an fd becoming ready for some `poll` events (`EvFd`);
//! * [`time`]: a deadline on the monotonic clock (`EvTime`), always owned
//!   by an ao and cut short by aborting it;
//! * [`child`]: a child process, reaped and reported with its wait status
//!   (`EvChild`), owned by an ao, killed if the ao completes first; and the
//!   ctx's SIGCHLD mode;
//! * immediates: `Egc::immediate`, work run (lock held) before the egc is
//!   disposed of, outside the stack frame that asked for it.
//!
//! Sources are named by [`Token`](crate::token::Token) handles the caller
//! stores; deregistration is idempotent and safe at any time, including
//! from the source's own callback. A source registered with an owning ao is
//! deregistered automatically when that ao completes, so no operation can
//! leak a registration past its completion.
#![forbid(unsafe_code)]

pub mod child;
pub mod fd;
pub mod fdindex;
pub mod time;
