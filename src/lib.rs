//! libxenlight's event core in Rust, behind Xen's C ABI.
//!
//! Map (see `../shared/design.md`): `ffi` is the C boundary; `sys` is the
//! operating system; `ctx`, `egc`, `poller`, `ev`, `ao`, `event` and
//! `osevent_hooks` are the safe core; `testops` are operations written on
//! the internal API only. Data flows one way: an OS event enters through
//! `ffi`, becomes a call on a source in `ev`, whose callback drives an `ao`,
//! whose completion becomes an `event` or an application callback released
//! by the `Egc` on its way out.

pub mod egc;
pub mod fasthash;
pub mod ffi;
pub mod log;
pub mod rc;
pub mod reg;
pub mod sys;
pub mod testops;
pub mod token;

#[cfg(test)]
mod testutil;
