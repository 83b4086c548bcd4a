//! The application's osevent hooks (`libxl_osevent_register_hooks`) and the
//! tokens the library hands it.
//!
//! Invariants:
//! * **Tokens, not pointers.** `for_libxl` for an fd is the fd
//!   registration's own token; for a timeout it is a *nexus* token that
//!   lives until the application reports that timeout (which it must,
//!   after `timeout_modify` to `{0,0}` or when it fires), tagged with
//!   [`TIMEOUT_TAG`] so that neither kind can pass for the other (libxl
//!   keeps two nexus pools for the same reason).
//! * A nexus stands for at most one timeout (`ev`), and none once that
//!   timeout is gone; it is removed only when the application reports it.
#![forbid(unsafe_code)]

use std::sync::Arc;

use super::{EvFd, EvTime};
use crate::rc::Rc;
use crate::sys::clock::Timeval;
use crate::token::{Slab, Token, MAX_SLOTS};

/// Set in every timeout nexus's `for_libxl`, clear in every fd's: bit 30,
/// which no packed token uses (slot indices stay below [`MAX_SLOTS`]).
pub const TIMEOUT_TAG: usize = MAX_SLOTS;

/// The `for_libxl` value given to `fd_register` for registration `ev`.
pub fn fd_for_libxl(ev: EvFd) -> usize {
    ev.to_usize()
}

/// The `for_libxl` value given to `timeout_register` for `nexus`.
pub fn timeout_for_libxl(nexus: Token) -> usize {
    nexus.to_usize() | TIMEOUT_TAG
}

/// Reads back a `for_libxl` value of the given kind; `None` if it cannot
/// be one (wrong kind, or no token at all).
pub fn token_from_for_libxl(v: usize, timeout: bool) -> Option<Token> {
    if (v & TIMEOUT_TAG != 0) != timeout {
        return None;
    }
    Token::from_usize(v & !TIMEOUT_TAG)
}

/// The hook table, as the core sees it. Implemented by `src/ffi` over the
/// C function pointers. Errors are the hook's own return value (negative
/// libxl code or any positive int).
pub trait OseventHooks: Send + Sync {
    fn fd_register(&self, fd: i32, events: i16, for_libxl: usize) -> Result<usize, Rc>;
    fn fd_modify(&self, fd: i32, for_app: &mut usize, events: i16) -> Result<(), Rc>;
    fn fd_deregister(&self, fd: i32, for_app: usize);
    fn timeout_register(&self, abs: Timeval, for_libxl: usize) -> Result<usize, Rc>;
    /// `timeout_modify` with `abs = {0,0}`: "fire as soon as possible".
    fn timeout_modify_now(&self, for_app: &mut usize) -> Result<(), Rc>;
}

/// A timeout registered with the application.
pub struct TimeNexus {
    /// The timeout it stands for, until deregistered.
    pub ev: Option<EvTime>,
    pub for_app: usize,
}

#[derive(Default)]
pub struct HookState {
    hooks: Option<Arc<dyn OseventHooks>>,
    time_nexi: Slab<TimeNexus>,
    /// The application's registration value of each fd registration
    /// (hooks only, so kept here rather than in every registration).
    fd_for_app: crate::fasthash::FastMap<EvFd, usize>,
}

impl HookState {
    pub fn hooks(&self) -> Option<Arc<dyn OseventHooks>> {
        self.hooks.clone()
    }

    pub fn has_hooks(&self) -> bool {
        self.hooks.is_some()
    }

    pub fn set_hooks(&mut self, hooks: Option<Arc<dyn OseventHooks>>) {
        self.hooks = hooks;
    }

    /// The application's value for fd registration `ev` (0 if none).
    pub fn fd_for_app(&self, ev: EvFd) -> usize {
        self.fd_for_app.get(&ev).copied().unwrap_or(0)
    }

    pub fn set_fd_for_app(&mut self, ev: EvFd, for_app: usize) {
        self.fd_for_app.insert(ev, for_app);
    }

    pub fn take_fd_for_app(&mut self, ev: EvFd) -> usize {
        self.fd_for_app.remove(&ev).unwrap_or(0)
    }

    /// A nexus for timeout `ev`, before its `timeout_register` call.
    pub fn nexus_insert(&mut self, ev: EvTime) -> Token {
        self.time_nexi.insert(TimeNexus { ev: Some(ev), for_app: 0 })
    }

    pub fn nexus(&self, nexus: Token) -> Option<&TimeNexus> {
        self.time_nexi.get(nexus)
    }

    pub fn nexus_mut(&mut self, nexus: Token) -> Option<&mut TimeNexus> {
        self.time_nexi.get_mut(nexus)
    }

    pub fn nexus_remove(&mut self, nexus: Token) {
        self.time_nexi.remove(nexus);
    }

    /// Nexi alive (timeouts the application has not reported yet).
    pub fn nexus_count(&self) -> usize {
        self.time_nexi.len()
    }
}

