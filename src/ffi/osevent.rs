//! The application's event loop: `libxl_osevent_beforepoll/afterpoll`,
//! `libxl_osevent_register_hooks` and `libxl_osevent_occurred_fd/timeout`.

use std::ffi::{c_int, c_short, c_void};
use std::sync::Arc;

use super::boundary::{entry};
use super::ctxref::ctx_ref;
use super::types::{libxl_ctx, libxl_osevent_hooks};
use super::SendPtr;
use crate::check_arg;
use crate::reg::hooks::OseventHooks;
use crate::rc::{Rc, ERROR_BUFFERFULL, ERROR_OSEVENT_REG_FAIL};
use crate::sys::clock::{self, Timeval};
use crate::sys::PollFd;

fn tv_from_c(tv: libc::timeval) -> Timeval {
    Timeval { sec: tv.tv_sec, usec: tv.tv_usec }
}

fn tv_to_c(tv: Timeval) -> libc::timeval {
    libc::timeval { tv_sec: tv.sec, tv_usec: tv.usec }
}

/// # Safety
/// `ctx` live; `nfds_io`, `timeout_upd` valid; `fds` valid for `*nfds_io`
/// entries (may be NULL when `*nfds_io` is 0).
#[no_mangle]
pub unsafe extern "C" fn libxl_osevent_beforepoll(
    ctx: *mut libxl_ctx,
    nfds_io: *mut c_int,
    fds: *mut libc::pollfd,
    timeout_upd: *mut c_int,
    now: libc::timeval,
) -> c_int {
    const ENTRY: &str = "libxl_osevent_beforepoll";
    // SAFETY: the caller passes NULL or a live ctx (this function's contract).
    let c = unsafe { ctx_ref(ctx) };
    entry(ENTRY, c, |egc| {
        check_arg!(egc, !nfds_io.is_null(), ENTRY, "nfds_io", "NULL");
        check_arg!(egc, !timeout_upd.is_null(), ENTRY, "timeout_upd", "NULL");
        // SAFETY: checked non-NULL; readable by this function's contract.
        let space = unsafe { nfds_io.read() };
        check_arg!(egc, space >= 0, ENTRY, "*nfds_io", format!("{space} is negative"));
        check_arg!(egc, !fds.is_null() || space == 0, ENTRY, "fds", format!("NULL with *nfds_io = {space}"));
        let slice: &mut [PollFd] = if space == 0 {
            &mut []
        } else {
            // SAFETY: `fds` is non-NULL and valid for `*nfds_io` entries,
            // exclusively ours for the call (this function's contract).
            unsafe { std::slice::from_raw_parts_mut(fds, space as usize) }
        };
        let bp = egc.app_beforepoll(slice, clock::wall_to_mono(tv_from_c(now)));
        // SAFETY: checked non-NULL; writable by this function's contract.
        unsafe { nfds_io.write(bp.needed as c_int) };
        // SAFETY: checked non-NULL; readable by this function's contract.
        let old = unsafe { timeout_upd.read() };
        if bp.timeout >= 0 && (old < 0 || bp.timeout < old) {
            // SAFETY: checked non-NULL; writable by this function's contract.
            unsafe { timeout_upd.write(bp.timeout) };
        }
        if bp.fits {
            0
        } else {
            ERROR_BUFFERFULL
        }
    })
}

/// # Safety
/// `ctx` live; `fds` valid for `nfds` entries (NULL if `nfds` is 0).
#[no_mangle]
pub unsafe extern "C" fn libxl_osevent_afterpoll(
    ctx: *mut libxl_ctx,
    nfds: c_int,
    fds: *const libc::pollfd,
    now: libc::timeval,
) {
    const ENTRY: &str = "libxl_osevent_afterpoll";
    // SAFETY: the caller passes NULL or a live ctx (this function's contract).
    let c = unsafe { ctx_ref(ctx) };
    entry(ENTRY, c, |egc| {
        if nfds < 0 || (fds.is_null() && nfds > 0) {
            crate::xl_log!(egc.ctx, Error, "{ENTRY}: invalid argument {}: ignored",
                if nfds < 0 { format!("nfds ({nfds} is negative)") } else { format!("fds (NULL with nfds = {nfds})") });
            return;
        }
        let slice: &[PollFd] = if nfds == 0 {
            &[]
        } else {
            // SAFETY: `fds` is non-NULL and valid for `nfds` reads for the
            // call (this function's contract).
            unsafe { std::slice::from_raw_parts(fds, nfds as usize) }
        };
        egc.app_afterpoll(slice, clock::wall_to_mono(tv_from_c(now)));
    })
}

/// The application's hook table. libxl does not copy it: we read it at
/// each call, so it must outlive the ctx (as documented).
struct CHooks {
    table: SendPtr<libxl_osevent_hooks>,
    user: SendPtr<c_void>,
}

impl CHooks {
    fn t(&self) -> &libxl_osevent_hooks {
        // SAFETY: libxl_osevent_register_hooks's contract: the table stays
        // valid (and unchanged) for the ctx's lifetime.
        unsafe { &*self.table.get() }
    }
}

/// A hook's failure value: libxl passes any non-zero return through; 0
/// cannot be an error, so a failing hook returning 0 is impossible here.
fn hook_rc(r: c_int) -> Result<(), Rc> {
    if r == 0 {
        Ok(())
    } else {
        Err(r)
    }
}

impl OseventHooks for CHooks {
    fn fd_register(&self, fd: i32, events: i16, for_libxl: usize) -> Result<usize, Rc> {
        let Some(f) = self.t().fd_register else { return Err(ERROR_OSEVENT_REG_FAIL) };
        let mut reg: *mut c_void = std::ptr::null_mut();
        // SAFETY: the application's hook with its user pointer and a valid
        // out-pointer; `for_libxl` is an opaque token.
        hook_rc(unsafe { f(self.user.get(), fd, &mut reg, events as c_short, for_libxl as *mut c_void) })?;
        Ok(reg as usize)
    }

    fn fd_modify(&self, fd: i32, for_app: &mut usize, events: i16) -> Result<(), Rc> {
        let Some(f) = self.t().fd_modify else { return Err(ERROR_OSEVENT_REG_FAIL) };
        let mut reg = *for_app as *mut c_void;
        // SAFETY: as for fd_register.
        let r = unsafe { f(self.user.get(), fd, &mut reg, events as c_short) };
        *for_app = reg as usize;
        hook_rc(r)
    }

    fn fd_deregister(&self, fd: i32, for_app: usize) {
        if let Some(f) = self.t().fd_deregister {
            // SAFETY: as for fd_register.
            unsafe { f(self.user.get(), fd, for_app as *mut c_void) }
        }
    }

    fn timeout_register(&self, abs: Timeval, for_libxl: usize) -> Result<usize, Rc> {
        let Some(f) = self.t().timeout_register else { return Err(ERROR_OSEVENT_REG_FAIL) };
        let mut reg: *mut c_void = std::ptr::null_mut();
        // SAFETY: as for fd_register.
        hook_rc(unsafe { f(self.user.get(), &mut reg, tv_to_c(abs), for_libxl as *mut c_void) })?;
        Ok(reg as usize)
    }

    fn timeout_modify_now(&self, for_app: &mut usize) -> Result<(), Rc> {
        let Some(f) = self.t().timeout_modify else { return Err(ERROR_OSEVENT_REG_FAIL) };
        let mut reg = *for_app as *mut c_void;
        // SAFETY: as for fd_register.
        let r = unsafe { f(self.user.get(), &mut reg, libc::timeval { tv_sec: 0, tv_usec: 0 }) };
        *for_app = reg as usize;
        hook_rc(r)
    }
}

/// # Safety
/// `ctx` live; `hooks` NULL or valid for the ctx's lifetime.
#[no_mangle]
pub unsafe extern "C" fn libxl_osevent_register_hooks(
    ctx: *mut libxl_ctx,
    hooks: *const libxl_osevent_hooks,
    user: *mut c_void,
) {
    // SAFETY: the caller passes NULL or a live ctx (this function's contract).
    let c = unsafe { ctx_ref(ctx) };
    entry("libxl_osevent_register_hooks", c, |egc| {
        let h: Option<Arc<dyn OseventHooks>> = if hooks.is_null() {
            None
        } else {
            Some(Arc::new(CHooks { table: SendPtr(hooks.cast_mut()), user: SendPtr(user) }))
        };
        egc.register_osevent_hooks(h);
    })
}

/// # Safety
/// `ctx` live. `for_libxl` may be anything: it is checked as a token.
#[no_mangle]
pub unsafe extern "C" fn libxl_osevent_occurred_fd(
    ctx: *mut libxl_ctx,
    for_libxl: *mut c_void,
    fd: c_int,
    _events: c_short,
    revents: c_short,
) {
    // SAFETY: the caller passes NULL or a live ctx (this function's contract).
    let c = unsafe { ctx_ref(ctx) };
    entry("libxl_osevent_occurred_fd", c, |egc| {
        let _ = egc.osevent_occurred_fd(for_libxl as usize, fd, revents);
    })
}

/// # Safety
/// `ctx` live. `for_libxl` may be anything: it is checked as a token.
#[no_mangle]
pub unsafe extern "C" fn libxl_osevent_occurred_timeout(ctx: *mut libxl_ctx, for_libxl: *mut c_void) {
    // SAFETY: the caller passes NULL or a live ctx (this function's contract).
    let c = unsafe { ctx_ref(ctx) };
    entry("libxl_osevent_occurred_timeout", c, |egc| {
        let _ = egc.osevent_occurred_timeout(for_libxl as usize);
    })
}
