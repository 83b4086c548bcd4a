//! The C boundary: every `extern "C"` function of libxenlight.
//!
//! Entry points are thin: check arguments (one guard per precondition,
//! naming the argument), convert C values to core values, make one core
//! call through [`boundary::ffi_entry`], write outputs only on success, and
//! map the result to an `rc`. This module and `src/sys` are the only places
//! with raw pointers and `unsafe`.
//!
//! C callbacks (completion, progress, event hooks, osevent hooks) are
//! wrapped into closures the core can store; the pointers they carry are
//! the application's and are only passed back to it.

pub mod ao;
pub mod boundary;
pub mod childproc;
#[cfg(not(feature = "xen"))]
pub mod ctx;
pub mod ctxref;
pub mod event;
#[cfg(not(feature = "xen"))]
pub mod event_value;
#[cfg(feature = "xen")]
pub mod internal;
pub mod log;
pub mod osevent;
pub mod testops;
pub mod types;

/// A pointer the application gave us and gets back in a callback. We never
/// dereference it; moving it between threads is what libxl's API promises
/// the application ("callbacks may occur on any thread").
pub struct SendPtr<T>(pub *mut T);

impl<T> Clone for SendPtr<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for SendPtr<T> {}

// SAFETY: the pointer is only handed back to the application, which libxl's
// API allows on any thread; we never dereference it.
unsafe impl<T> Send for SendPtr<T> {}
// SAFETY: as above; shared access never dereferences it.
unsafe impl<T> Sync for SendPtr<T> {}

impl<T> SendPtr<T> {
    /// The pointer (a method, so closures capture the whole `SendPtr`).
    pub fn get(&self) -> *mut T {
        self.0
    }
}
