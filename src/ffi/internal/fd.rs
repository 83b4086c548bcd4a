//! `libxl__ev_fd_*` and `libxl__ev_time_*` on the core's fd and timeout
//! registrations.
//!
//! The C struct is the registration as C sees it (`fd` is -1 while not
//! registered, `func` NULL for a timeout not registered); the core's token
//! for it lives in the struct's private field. The core's callback is a
//! plain function with the struct's address as its data word: no
//! allocation per registration, and C gets back the exact pointer it
//! registered (`CONTAINER_OF`).
//!
//! Invariants:
//! * The C fields and the core's registration change together, under the
//!   lock: `fd >= 0` exactly while the core has the registration; a
//!   timeout's `func` is non-NULL exactly while it is registered, and is
//!   cleared before its callback runs (so the callback may register it
//!   again).
//! * Deregistering what is not registered does nothing (libxl allows it).

use std::ffi::{c_int, c_short};

use super::ao::ao_ref;
use super::ctx::{c_egc, core_of_gc};
use super::layout::{ev_fd_callback, ev_time_callback, libxl__ao, libxl__ev_fd, libxl__ev_time, libxl__gc};
use crate::egc::Egc;
use crate::ffi::boundary::entry_nested;
use crate::rc::Rc;
use crate::reg::{EvFd, EvTime};
use crate::sys::clock::{self, Timeval};
use crate::token::Token;

fn fd_ready(egc: &mut Egc<'_>, _ev: EvFd, fd: i32, events: i16, revents: i16, data: u64) {
    let ev = data as usize as *mut libxl__ev_fd;
    // SAFETY: the struct registered with this token: live while registered
    // (C deregisters before freeing), and the core calls only live ones.
    let Some(func) = (unsafe { (*ev).func }) else { return };
    let ce = c_egc(egc);
    egc.release_state();
    // SAFETY: C's callback with the egc and the struct it registered.
    unsafe { func(ce, ev, fd, events, revents) };
}

/// # Safety
/// `gc` a live gc; `ev` valid and not registered.
#[no_mangle]
pub unsafe extern "C" fn libxl__ev_fd_register(
    gc: *mut libxl__gc,
    ev: *mut libxl__ev_fd,
    func: ev_fd_callback,
    fd: c_int,
    events: c_short,
) -> c_int {
    const ENTRY: &str = "libxl__ev_fd_register";
    // SAFETY: forwarded.
    let x = unsafe { core_of_gc(gc, ENTRY) };
    entry_nested(ENTRY, &x.core, 0, |egc| match egc.ev_fd_register_fn(None, fd, events, fd_ready, ev as usize as u64) {
        Ok(t) => {
            // SAFETY: valid (this function's contract); written under the
            // lock, before any callback can run.
            let e = unsafe { &mut *ev };
            e.fd = fd;
            e.events = events;
            e.func = func;
            e.token = t.to_usize();
            0
        }
        Err(rc) => rc,
    })
}

fn fd_token(entry: &str, ev: &libxl__ev_fd) -> EvFd {
    Token::from_usize(ev.token).unwrap_or_else(|| {
        eprintln!("libxl: fatal: {entry}: ev_fd {:p} (fd {}) has no core handle", ev, ev.fd);
        std::process::abort()
    })
}

/// # Safety
/// `gc` a live gc; `ev` registered.
#[no_mangle]
pub unsafe extern "C" fn libxl__ev_fd_modify(gc: *mut libxl__gc, ev: *mut libxl__ev_fd, events: c_short) -> c_int {
    const ENTRY: &str = "libxl__ev_fd_modify";
    // SAFETY: forwarded.
    let x = unsafe { core_of_gc(gc, ENTRY) };
    // SAFETY: valid (this function's contract).
    let e = unsafe { &mut *ev };
    if e.fd < 0 {
        crate::xl_log!(&x.core, Error, "{ENTRY}: ev_fd {ev:p} is not registered");
        return crate::rc::ERROR_INVAL;
    }
    let t = fd_token(ENTRY, e);
    entry_nested(ENTRY, &x.core, 0, |egc| match egc.ev_fd_modify(t, events) {
        Ok(()) => {
            e.events = events;
            0
        }
        Err(rc) => rc,
    })
}

/// # Safety
/// `gc` a live gc; `ev` registered or initialised (`fd` -1).
#[no_mangle]
pub unsafe extern "C" fn libxl__ev_fd_deregister(gc: *mut libxl__gc, ev: *mut libxl__ev_fd) {
    const ENTRY: &str = "libxl__ev_fd_deregister";
    // SAFETY: valid (this function's contract).
    let e = unsafe { &mut *ev };
    if e.fd < 0 {
        return;
    }
    // SAFETY: forwarded.
    let x = unsafe { core_of_gc(gc, ENTRY) };
    let t = fd_token(ENTRY, e);
    entry_nested(ENTRY, &x.core, 0, |egc| egc.ev_fd_deregister(t));
    e.fd = -1;
}

fn time_fire(egc: &mut Egc<'_>, _ev: EvTime, rc: Rc, data: u64) {
    let ev = data as usize as *mut libxl__ev_time;
    // SAFETY: the struct registered with this token (live while
    // registered); the core has just deregistered it and runs this once.
    // No reference to it is held across the C call (which may re-register
    // it).
    let Some(func) = (unsafe { (*ev).func.take() }) else { return };
    let ce = c_egc(egc);
    egc.release_state();
    // SAFETY: as above.
    let abs = unsafe { std::ptr::addr_of!((*ev).abs) };
    // SAFETY: C's callback with the egc, the struct it registered and its
    // requested deadline (in the struct, as libxl passes it).
    unsafe { func(ce, ev, abs, rc) };
}

/// Registers `ev` on `ao` for monotonic `deadline` (None: never), with
/// `abs` as the deadline C asked for.
///
/// # Safety
/// `ao` a live ao; `ev` valid and not registered.
unsafe fn time_register(
    entry: &'static str,
    ao: *mut libxl__ao,
    ev: *mut libxl__ev_time,
    func: ev_time_callback,
    deadline: Option<u64>,
    abs: Timeval,
) -> c_int {
    // SAFETY: forwarded.
    let (x, id) = unsafe { ao_ref(ao, entry) };
    entry_nested(entry, &x.core, 0, |egc| match egc.ev_time_register_unowned(id, deadline, time_fire, ev as usize as u64) {
        Ok(t) => {
            // SAFETY: valid (this function's contract); under the lock.
            let e = unsafe { &mut *ev };
            e.func = func;
            e.infinite = c_int::from(deadline.is_none());
            e.abs = libc::timeval { tv_sec: abs.sec, tv_usec: abs.usec };
            e.token = t.to_usize();
            0
        }
        Err(rc) => rc,
    })
}

/// # Safety
/// `ao` a live ao; `ev` valid and not registered.
#[no_mangle]
pub unsafe extern "C" fn libxl__ev_time_register_rel(
    ao: *mut libxl__ao,
    ev: *mut libxl__ev_time,
    func: ev_time_callback,
    milliseconds: c_int,
) -> c_int {
    let (deadline, abs) = if milliseconds < 0 {
        (None, Timeval { sec: 0, usec: 0 })
    } else {
        let d = clock::mono_ns() + milliseconds as u64 * 1_000_000;
        (Some(d), clock::mono_to_wall(d))
    };
    // SAFETY: forwarded.
    unsafe { time_register("libxl__ev_time_register_rel", ao, ev, func, deadline, abs) }
}

/// # Safety
/// `ao` a live ao; `ev` valid and not registered.
#[no_mangle]
pub unsafe extern "C" fn libxl__ev_time_register_abs(
    ao: *mut libxl__ao,
    ev: *mut libxl__ev_time,
    func: ev_time_callback,
    abs: libc::timeval,
) -> c_int {
    let abs = Timeval { sec: abs.tv_sec, usec: abs.tv_usec };
    // SAFETY: forwarded.
    unsafe { time_register("libxl__ev_time_register_abs", ao, ev, func, Some(clock::wall_to_mono(abs)), abs) }
}

/// # Safety
/// `gc` a live gc; `ev` registered or initialised (`func` NULL).
#[no_mangle]
pub unsafe extern "C" fn libxl__ev_time_deregister(gc: *mut libxl__gc, ev: *mut libxl__ev_time) {
    const ENTRY: &str = "libxl__ev_time_deregister";
    // SAFETY: valid (this function's contract).
    let e = unsafe { &mut *ev };
    if e.func.is_none() {
        return;
    }
    // SAFETY: forwarded.
    let x = unsafe { core_of_gc(gc, ENTRY) };
    let Some(t) = Token::from_usize(e.token) else {
        eprintln!("libxl: fatal: {ENTRY}: ev_time {ev:p} has no core handle");
        std::process::abort()
    };
    entry_nested(ENTRY, &x.core, 0, |egc| egc.ev_time_deregister(t));
    e.func = None;
}
