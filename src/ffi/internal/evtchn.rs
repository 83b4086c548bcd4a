//! Event channels (`libxl__ev_evtchn_*`, `libxl__ctx_evtchn_init`) on the
//! C ctx's `xenevtchn` handle, `ctx->xce` (which libxl's suspend code also
//! uses directly, so it stays a real handle in the C ctx).
//!
//! A waiter is one-shot: it waits for one notification on its port. While
//! any waiter waits, `ctx->evtchn_efd` is registered on the handle's fd;
//! when it is readable, pending ports are fetched and each is given to the
//! newest waiter on it, which stops waiting before its callback runs (the
//! callback may wait again). Event-channel devices may not honour
//! `O_NONBLOCK`, so the fd is polled again before every fetch.
//!
//! Invariants:
//! * A waiter is listed here exactly while its `waiting` is set.
//! * `ctx->evtchn_efd` is registered exactly while a handle is open and
//!   someone waits (it may also stay registered after an error until the
//!   next cancel, as in libxl).
//!
//! These functions do not take the lock themselves in libxl: the caller
//! holds it. Here they take a level of it anyway (it is recursive).

use std::ffi::{c_int, c_short};

use super::ctx::{core_of_gc, gc_ctx, XenCtx};
use super::fd::{libxl__ev_fd_deregister, libxl__ev_fd_register};
use super::layout::{libxl__ctx, libxl__egc, libxl__ev_evtchn, libxl__ev_fd, libxl__gc};
use super::xenlibs::{xenevtchn_close, xenevtchn_fd, xenevtchn_open, xenevtchn_pending, xenevtchn_unmask};
use crate::ffi::boundary::entry_nested;
use crate::rc::ERROR_FAIL;
use crate::sys::POLLIN;

fn errno() -> c_int {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// # Safety
/// `gc` live.
#[no_mangle]
pub unsafe extern "C" fn libxl__ctx_evtchn_init(gc: *mut libxl__gc) -> c_int {
    const ENTRY: &str = "libxl__ctx_evtchn_init";
    // SAFETY: forwarded.
    let x = unsafe { core_of_gc(gc, ENTRY) };
    // SAFETY: as above.
    let c = unsafe { gc_ctx(gc) };
    let _level = x.xen.lock();
    // SAFETY: a live ctx.
    if !unsafe { (*c).xce }.is_null() {
        return 0;
    }
    // SAFETY: a live ctx's logger (or NULL), as libxl passes it.
    let xce = unsafe { xenevtchn_open((*c).lg, 0) };
    if xce.is_null() {
        crate::xl_log_errno!(&x.core, Error, errno(), "cannot open libxc evtchn handle");
        return ERROR_FAIL;
    }
    // SAFETY: an open handle.
    let fd = unsafe { xenevtchn_fd(xce) };
    if fd < 0 || crate::sys::set_nonblock(fd).is_err() {
        crate::xl_log_errno!(&x.core, Error, errno(), "cannot set up the evtchn fd {fd}");
        // SAFETY: our handle, closed once.
        unsafe { xenevtchn_close(xce) };
        return ERROR_FAIL;
    }
    // SAFETY: a live ctx; closed by libxl_ctx_free.
    unsafe { (*c).xce = xce };
    0
}

/// Deregisters the evtchn fd if nobody waits.
///
/// # Safety
/// `gc` live; `c` its ctx.
unsafe fn check_fd_deregister(x: &XenCtx, gc: *mut libxl__gc, c: *mut libxl__ctx) {
    // SAFETY: a live ctx.
    let open = !unsafe { (*c).xce }.is_null();
    if open && x.xen.lock().value().evtchn_waiters.is_empty() {
        // SAFETY: the ctx's own embedded ev_fd.
        unsafe { libxl__ev_fd_deregister(gc, std::ptr::addr_of_mut!((*c).evtchn_efd)) };
    }
}

/// # Safety
/// `gc` live; `evev` valid with `callback` and `port` set; the ctx locked.
#[no_mangle]
pub unsafe extern "C" fn libxl__ev_evtchn_wait(gc: *mut libxl__gc, evev: *mut libxl__ev_evtchn) -> c_int {
    const ENTRY: &str = "libxl__ev_evtchn_wait";
    // SAFETY: forwarded.
    let x = unsafe { core_of_gc(gc, ENTRY) };
    // SAFETY: as above.
    let c = unsafe { gc_ctx(gc) };
    let _level = x.xen.lock();
    // SAFETY: forwarded.
    let rc = unsafe { libxl__ctx_evtchn_init(gc) };
    if rc != 0 {
        // SAFETY: as above.
        unsafe { check_fd_deregister(x, gc, c) };
        return rc;
    }
    // SAFETY: a live ctx; its handle is open (just checked).
    let (efd, xce) = unsafe { (std::ptr::addr_of_mut!((*c).evtchn_efd), (*c).xce) };
    // SAFETY: the ctx's embedded ev_fd.
    if unsafe { (*efd).fd } < 0 {
        // SAFETY: an open handle.
        let fd = unsafe { xenevtchn_fd(xce) };
        // SAFETY: the ctx's ev_fd, not registered.
        let rc = unsafe { libxl__ev_fd_register(gc, efd, Some(evtchn_fd_callback), fd, POLLIN) };
        if rc != 0 {
            return rc;
        }
    }
    // SAFETY: valid (this function's contract).
    let (waiting, port) = unsafe { ((*evev).waiting, (*evev).port) };
    if waiting {
        return 0;
    }
    // SAFETY: an open handle.
    if unsafe { xenevtchn_unmask(xce, port as u32) } != 0 {
        crate::xl_log_errno!(&x.core, Error, errno(), "cannot unmask event channel {port}");
        // SAFETY: as above.
        unsafe { check_fd_deregister(x, gc, c) };
        return ERROR_FAIL;
    }
    // SAFETY: valid.
    unsafe { (*evev).waiting = true };
    x.xen.lock().value().evtchn_waiters.push(evev as usize);
    0
}

/// # Safety
/// `gc` live; `evev` valid; the ctx locked.
#[no_mangle]
pub unsafe extern "C" fn libxl__ev_evtchn_cancel(gc: *mut libxl__gc, evev: *mut libxl__ev_evtchn) {
    const ENTRY: &str = "libxl__ev_evtchn_cancel";
    // SAFETY: valid (this function's contract).
    if !unsafe { (*evev).waiting } {
        return;
    }
    // SAFETY: forwarded.
    let x = unsafe { core_of_gc(gc, ENTRY) };
    // SAFETY: as above.
    let c = unsafe { gc_ctx(gc) };
    let _level = x.xen.lock();
    // SAFETY: valid.
    unsafe { (*evev).waiting = false };
    x.xen.lock().value().evtchn_waiters.retain(|&w| w != evev as usize);
    // SAFETY: as above.
    unsafe { check_fd_deregister(x, gc, c) };
}

/// A problem on the evtchn fd: disaster, and the fd is deregistered.
///
/// # Safety
/// `gc` live; `c` its ctx.
unsafe fn bad_revents(x: &XenCtx, gc: *mut libxl__gc, c: *mut libxl__ctx, revents: c_short) {
    crate::xl_log!(&x.core, Error, "unexpected poll event on event channel fd: {revents:#x}");
    entry_nested("evtchn fd", &x.core, 0, |e| e.disaster("unexpected poll event on event channel fd", 0));
    // SAFETY: the ctx's own embedded ev_fd.
    unsafe { libxl__ev_fd_deregister(gc, std::ptr::addr_of_mut!((*c).evtchn_efd)) };
}

unsafe extern "C" fn evtchn_fd_callback(egc: *mut libxl__egc, _ev: *mut libxl__ev_fd, fd: c_int, _events: c_short, revents: c_short) {
    // SAFETY: the egc we made for this callback.
    let gc = unsafe { std::ptr::addr_of_mut!((*egc).gc) };
    // SAFETY: as above.
    let x = unsafe { core_of_gc(gc, "event channel") };
    // SAFETY: as above.
    let c = unsafe { gc_ctx(gc) };
    if revents & !POLLIN != 0 {
        // SAFETY: forwarded.
        unsafe { bad_revents(x, gc, c, revents) };
        return;
    }
    loop {
        let now = crate::sys::poll::recheck(fd, POLLIN);
        if now == 0 {
            break;
        }
        if now & !POLLIN != 0 {
            // SAFETY: forwarded.
            unsafe { bad_revents(x, gc, c, now) };
            return;
        }
        // SAFETY: a live ctx whose handle is open while its fd is registered.
        let port = unsafe { xenevtchn_pending((*c).xce) };
        if port < 0 {
            let e = errno();
            if e == libc::EAGAIN {
                break;
            }
            entry_nested("evtchn fd", &x.core, 0, |eg| {
                eg.disaster("unexpected failure fetching occurring event port number from evtchn", e)
            });
            return;
        }
        let found = {
            let mut l = x.xen.lock();
            let mut v = l.value();
            let list = &mut v.evtchn_waiters;
            // SAFETY: listed waiters are live (C cancels before freeing).
            let i = list.iter().rposition(|&w| unsafe { (*(w as *mut libxl__ev_evtchn)).port } == port);
            i.map(|i| list.remove(i) as *mut libxl__ev_evtchn)
        };
        let Some(evev) = found else {
            crate::xl_log!(&x.core, Debug, "ev_evtchn port={port}: no-one cared");
            continue;
        };
        // SAFETY: live (as above), no longer listed.
        unsafe { (*evev).waiting = false };
        // SAFETY: as above.
        if let Some(cb) = unsafe { (*evev).callback } {
            // SAFETY: C's callback with our egc and its own waiter.
            unsafe { cb(egc, evev) };
        }
    }
}
