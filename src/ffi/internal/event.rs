//! Events C code makes (`libxl__event_new`, `libxl__event_occurred`), the
//! disaster report, and `libxl__ev_immediate_register`.
//!
//! An event C built (a DISK_EJECT with its disk, a DOMAIN_DEATH, a
//! progress report) goes into the core's queue as it is: a foreign event
//! that owns the C `libxl_event`, handed to the application unchanged
//! (`libxl_event_check/wait`, `event_occurs`) or freed with
//! `libxl_event_free` if nobody takes it.

use std::ffi::{c_char, c_int, CStr};

use super::ctx::{c_egc, core_of_gc};
use super::layout::{libxl__egc, libxl__ev_immediate, libxl__gc};
use super::xenlibs::{libxl_event_init, libxl_event_init_type};
use crate::egc::Egc;
use crate::ffi::boundary::entry_nested;
use crate::ffi::types::{libxl_event, libxl_event_type};
use crate::ffi::SendPtr;
use crate::reg::event::{Event, EventKind, ForeignEvent};
use crate::reg::foreign::Foreign;

fn free_c_event(addr: usize) {
    // SAFETY: `addr` is a C event handed to the core (`foreign_event`),
    // whose Foreign frees it exactly once.
    unsafe { crate::ffi::event::libxl_event_free(std::ptr::null_mut(), addr as *mut libxl_event) };
}

/// The core's event for a C event, which it now owns.
///
/// # Safety
/// `ev` is a live `libxl_event` from `libxl__event_new` (or made the same
/// way), given up by its C owner.
pub unsafe fn foreign_event(ev: *mut libxl_event) -> Event {
    // SAFETY: live (this function's contract).
    let e = unsafe { &*ev };
    let type_num = e.type_ as u32;
    let mut out = Event::new(e.domid, e.for_user, EventKind::Foreign(Box::new(ForeignEvent {
        type_num,
        ev: Foreign::new(ev as usize, free_c_event),
    })));
    out.domuuid = e.domuuid;
    out
}

/// # Safety
/// `egc` a live egc of a ctx with a core; the ctx locked.
#[no_mangle]
pub unsafe extern "C" fn libxl__event_new(
    egc: *mut libxl__egc,
    type_: libxl_event_type,
    domid: u32,
    for_user: u64,
) -> *mut libxl_event {
    let _ = egc;
    // SAFETY: calloc has no preconditions.
    let ev = unsafe { libc::calloc(1, std::mem::size_of::<libxl_event>()) }.cast::<libxl_event>();
    if ev.is_null() {
        eprintln!("libxl: fatal: libxl__event_new: out of memory");
        std::process::abort();
    }
    // SAFETY: a fresh allocation of a libxl_event, initialised by Xen's own
    // generated constructors.
    unsafe {
        libxl_event_init(ev);
        libxl_event_init_type(ev, type_);
    }
    // SAFETY: initialised just above.
    let e = unsafe { &mut *ev };
    e.domid = domid;
    e.for_user = for_user;
    ev
}

/// # Safety
/// `egc` a live egc; `event` a C event (from `libxl__event_new`) given up.
#[no_mangle]
pub unsafe extern "C" fn libxl__event_occurred(egc: *mut libxl__egc, event: *mut libxl_event) {
    const ENTRY: &str = "libxl__event_occurred";
    // SAFETY: a live egc (this function's contract).
    let x = unsafe { core_of_gc(std::ptr::addr_of_mut!((*egc).gc), ENTRY) };
    // SAFETY: given up by C (this function's contract).
    let ev = unsafe { foreign_event(event) };
    entry_nested(ENTRY, &x.core, 0, |e| e.event_occurred(ev));
}

/// # Safety
/// `gc` a live gc; `msg` a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn libxl__event_disaster(
    gc: *mut libxl__gc,
    msg: *const c_char,
    errnoval: c_int,
    type_: libxl_event_type,
    _file: *const c_char,
    _line: c_int,
    _func: *const c_char,
) {
    const ENTRY: &str = "libxl__event_disaster";
    // SAFETY: forwarded.
    let x = unsafe { core_of_gc(gc, ENTRY) };
    let m = if msg.is_null() {
        String::from("(no message)")
    } else {
        // SAFETY: NUL-terminated (this function's contract).
        unsafe { CStr::from_ptr(msg) }.to_string_lossy().into_owned()
    };
    entry_nested(ENTRY, &x.core, 0, |e| e.disaster_of(type_ as u32, &m, errnoval));
}

fn run_immediate(egc: &mut Egc<'_>, ei: SendPtr<libxl__ev_immediate>) {
    let ei = ei.get();
    // SAFETY: a registered immediate is live until its callback has run
    // (libxl's rule for libxl__ev_immediate).
    let Some(cb) = (unsafe { (*ei).callback }) else { return };
    let ce = c_egc(egc);
    egc.release_state();
    // SAFETY: C's callback with the egc and the struct it registered.
    unsafe { cb(ce, ei) };
}

/// Runs `ei->callback` soon, lock held, outside the caller's stack frame:
/// before this thread leaves libxl.
///
/// # Safety
/// `egc` a live egc; `ei` valid with `callback` set, until it has run; the
/// ctx locked.
#[no_mangle]
pub unsafe extern "C" fn libxl__ev_immediate_register(egc: *mut libxl__egc, ei: *mut libxl__ev_immediate) {
    const ENTRY: &str = "libxl__ev_immediate_register";
    // SAFETY: a live egc (this function's contract).
    let x = unsafe { core_of_gc(std::ptr::addr_of_mut!((*egc).gc), ENTRY) };
    let ei = SendPtr(ei);
    entry_nested(ENTRY, &x.core, 0, |e| e.immediate(Box::new(move |e| run_immediate(e, ei))));
}
