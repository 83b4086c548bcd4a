//! libxenlight's event core in Rust, behind Xen's C ABI.
//!
//! Map (see `docs/design.md`): `ffi` is the C boundary; `egc` is the guard
//! every entry point holds and its verbs (the orchestration layer); `reg`
//! the registries it orchestrates; `sys` the operating system; `testops`
//! operations written on the verbs only. Dependencies run one way: ffi,
//! testops → egc → reg → token, rc, log, sys. Data flows the same way: an
//! OS event enters through `ffi`, becomes a call on a source's verb, whose
//! callback drives an ao, whose completion becomes an event or an
//! application callback released by the `Egc` on its way out.

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
