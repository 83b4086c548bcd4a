//! The `libxl_event` value helpers (`init`, `init_type`, `dispose`,
//! `type_to_string`, `type_from_string`). Inside Xen's libxl its generated
//! `_libxl_types.c` provides them, so this file is only in the standalone
//! library.

use std::ffi::{c_char, c_int, CStr};

use super::types::{libxl_event, libxl_event_type};
use crate::rc::{ERROR_FAIL, ERROR_INVAL};

const TYPE_NAMES: [(c_int, &CStr); 5] = [
    (1, c"domain_shutdown"),
    (2, c"domain_death"),
    (3, c"disk_eject"),
    (4, c"operation_complete"),
    (5, c"domain_create_console_available"),
];

/// # Safety
/// `p` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn libxl_event_init(p: *mut libxl_event) {
    if !p.is_null() {
        // SAFETY: `p` is writable; all-zero is a valid libxl_event.
        unsafe { p.write(std::mem::zeroed()) };
    }
}

/// # Safety
/// `p` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn libxl_event_init_type(p: *mut libxl_event, type_: libxl_event_type) {
    if !p.is_null() {
        // SAFETY: `p` is writable (this function's contract); all-zero is a
        // valid libxl_event with the type set after.
        unsafe { p.write(libxl_event { type_, ..std::mem::zeroed() }) };
    }
}

/// Frees what the event owns (a DISK_EJECT event's strings) and clears it.
///
/// # Safety
/// `p` NULL or a valid event whose owned strings were malloc'd.
#[no_mangle]
pub unsafe extern "C" fn libxl_event_dispose(p: *mut libxl_event) {
    if p.is_null() {
        return;
    }
    // SAFETY: `p` is a valid event (this function's contract).
    let ev = unsafe { &mut *p };
    if ev.type_ == crate::reg::event::EVENT_DISK_EJECT as c_int {
        // SAFETY: a DISK_EJECT event's union holds its disk_eject member.
        let de = unsafe { &mut ev.u.disk_eject };
        let d = &de.disk;
        for s in [
            de.vdev, d.backend_domname, d.pdev_path, d.vdev, d.script, d.colo_host, d.colo_export,
            d.active_disk, d.hidden_disk,
        ] {
            // SAFETY: the event owns its strings, malloc'd or NULL; each is
            // freed once and the whole event cleared below.
            unsafe { libc::free(s.cast()) };
        }
    }
    // SAFETY: all-zero is a valid libxl_event (libxl_event_init's result).
    *ev = unsafe { std::mem::zeroed() };
}

/// Xen's lower-case name of an event type; NULL if unknown.
#[no_mangle]
pub extern "C" fn libxl_event_type_to_string(p: libxl_event_type) -> *const c_char {
    TYPE_NAMES.iter().find(|(v, _)| *v == p).map_or(std::ptr::null(), |(_, n)| n.as_ptr())
}

/// Case-insensitive inverse of `libxl_event_type_to_string`.
///
/// # Safety
/// `s` NULL or a NUL-terminated string; `e` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn libxl_event_type_from_string(s: *const c_char, e: *mut libxl_event_type) -> c_int {
    if s.is_null() || e.is_null() {
        return ERROR_INVAL;
    }
    // SAFETY: `s` is a NUL-terminated string by contract.
    let s = unsafe { CStr::from_ptr(s) }.to_bytes();
    match TYPE_NAMES.iter().find(|(_, n)| n.to_bytes().eq_ignore_ascii_case(s)) {
        Some((v, _)) => {
            // SAFETY: `e` checked non-NULL, writable by contract.
            unsafe { *e = *v };
            0
        }
        None => ERROR_FAIL,
    }
}

