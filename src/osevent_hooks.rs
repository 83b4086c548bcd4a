//! The application's osevent hooks (`libxl_osevent_register_hooks`) and the
//! tokens we hand it.
//!
//! Invariants:
//! * Hooks are called with the ctx lock held, as libxl documents. A hook
//!   that calls back into the library is illegal re-entry, caught by the
//!   egc (see `egc`), never a deadlock.
//! * **Tokens, not pointers.** `for_libxl` for an fd is the fd
//!   registration's own token; for a timeout it is a *nexus* token that
//!   lives until the application reports that timeout (which it must,
//!   after `timeout_modify` to `{0,0}` or when it fires). Stale, duplicated
//!   or forged values fail the generation check and are ignored.
//! * Hooks may only be installed while no fd or timeout is registered
//!   (libxl asserts this); a late call is fatal misuse.
//! * A failing `*_register` leaves nothing behind: the registration that
//!   needed it is undone and the hook's value is returned to the operation.
#![forbid(unsafe_code)]

use std::sync::Arc;

use crate::egc::Egc;
use crate::ev::fd::EvFd;
use crate::ev::time::EvTime;
use crate::rc::{Rc, ERROR_INVAL};
use crate::sys::clock::{self, Timeval};
use crate::token::{Slab, Token};

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
    pub hooks: Option<Arc<dyn OseventHooks>>,
    pub time_nexi: Slab<TimeNexus>,
}

impl Egc<'_> {
    fn hooks(&self) -> Option<Arc<dyn OseventHooks>> {
        self.hooks.hooks.clone()
    }

    /// `libxl_osevent_register_hooks`.
    pub fn register_osevent_hooks(&mut self, hooks: Option<Arc<dyn OseventHooks>>) {
        if !self.fds.is_empty() || !self.times.is_empty() {
            self.ctx.fatal(
                "libxl_osevent_register_hooks called while fds or timeouts are already registered \
                 (hooks must be installed before any osevent exists)",
            );
        }
        crate::xl_log!(self.ctx, Debug, "osevent hooks {}", if hooks.is_some() { "registered" } else { "cleared" });
        self.st().hooks.hooks = hooks;
    }

    pub(crate) fn hook_fd_register(&mut self, ev: EvFd, fd: i32, events: i16) -> Result<(), Rc> {
        let Some(h) = self.hooks() else { return Ok(()) };
        let for_app = h.fd_register(fd, events, ev.to_usize())?;
        self.set_fd_for_app(ev, for_app);
        Ok(())
    }

    pub(crate) fn hook_fd_modify(&mut self, ev: EvFd, fd: i32, events: i16) -> Result<(), Rc> {
        let Some(h) = self.hooks() else { return Ok(()) };
        let mut for_app = self.fds.get(ev).map_or(0, |e| e.for_app);
        let r = h.fd_modify(fd, &mut for_app, events);
        // A failed modify may still have updated the registration value.
        self.set_fd_for_app(ev, for_app);
        r
    }

    pub(crate) fn hook_fd_deregister(&mut self, fd: i32, for_app: usize) {
        if let Some(h) = self.hooks() {
            h.fd_deregister(fd, for_app);
        }
    }

    /// Mirrors a finite timeout; returns its nexus (None without hooks).
    pub(crate) fn hook_timeout_register(&mut self, ev: EvTime, deadline: u64) -> Result<Option<Token>, Rc> {
        let Some(h) = self.hooks() else { return Ok(None) };
        let nexus = self.st().hooks.time_nexi.insert(TimeNexus { ev: Some(ev), for_app: 0 });
        match h.timeout_register(clock::mono_to_wall(deadline), nexus.to_usize()) {
            Ok(for_app) => {
                self.st().hooks.time_nexi.get_mut(nexus).expect("just inserted").for_app = for_app;
                Ok(Some(nexus))
            }
            Err(rc) => {
                self.st().hooks.time_nexi.remove(nexus);
                Err(rc)
            }
        }
    }

    /// The timeout behind `nexus` is gone. If the application has not
    /// reported it yet, ask it to fire at once; the nexus stays until it does.
    pub(crate) fn hook_timeout_release_ev(&mut self, nexus: Token, fired_by_app: bool) {
        if fired_by_app {
            self.st().hooks.time_nexi.remove(nexus);
            return;
        }
        let Some(n) = self.st().hooks.time_nexi.get_mut(nexus) else { return };
        n.ev = None;
        let mut for_app = n.for_app;
        if let Some(h) = self.hooks() {
            if let Err(rc) = h.timeout_modify_now(&mut for_app) {
                crate::xl_log!(self.ctx, Error, "timeout nexus {nexus}: application's timeout_modify hook failed (rc={rc})");
            }
        }
        if let Some(n) = self.st().hooks.time_nexi.get_mut(nexus) {
            n.for_app = for_app;
        }
    }

    /// `libxl_osevent_occurred_fd`.
    pub fn osevent_occurred_fd(&mut self, for_libxl: usize, fd: i32, revents: i16) -> Result<(), Rc> {
        let Some(ev) = Token::from_usize(for_libxl) else {
            crate::xl_log!(self.ctx, Debug, "occurred_fd: for_libxl {for_libxl:#x} is not a token we issued, ignored");
            return Err(ERROR_INVAL);
        };
        self.fd_occurs(ev, fd, revents);
        Ok(())
    }

    /// `libxl_osevent_occurred_timeout`.
    pub fn osevent_occurred_timeout(&mut self, for_libxl: usize) -> Result<(), Rc> {
        let Some(nexus) = Token::from_usize(for_libxl) else {
            crate::xl_log!(self.ctx, Debug, "occurred_timeout: for_libxl {for_libxl:#x} is not a token we issued, ignored");
            return Err(ERROR_INVAL);
        };
        let Some(n) = self.st().hooks.time_nexi.get(nexus) else {
            crate::xl_log!(self.ctx, Debug, "occurred_timeout: nexus {nexus} is stale, ignored");
            return Ok(());
        };
        match n.ev {
            Some(ev) => {
                self.ev_time_fire(ev, crate::rc::ERROR_TIMEDOUT, true);
                self.st().hooks.time_nexi.remove(nexus);
            }
            None => {
                crate::xl_log!(self.ctx, Debug, "occurred_timeout: nexus {nexus} released (its timeout was deregistered)");
                self.st().hooks.time_nexi.remove(nexus);
            }
        }
        Ok(())
    }
}
