//! What the core calls in the rest of Xen's libxl and in Xen's libraries
//! (the same imports Xen's `libxl_event.c` and `libxl_fork.c` have). They
//! exist only in the `make xen` link, as this whole module does.

use std::ffi::{c_char, c_int, c_uint, c_ulong, c_void};

use super::layout::{libxl__gc, libxl__xswait_state};
use crate::ffi::types::{libxl_ctx, libxl_event, libxl_event_type, xentoollog_logger};

extern "C" {
    // libxl_internal.c: the gc.
    pub fn libxl__free_all(gc: *mut libxl__gc);
    pub fn libxl__strdup(gc: *mut libxl__gc, s: *const c_char) -> *mut c_char;
    // libxl_xshelp.c
    pub fn libxl__xs_read(gc: *mut libxl__gc, t: u32, path: *const c_char) -> *mut c_char;
    // libxl_aoutils.c: waiting for a xenstore node.
    pub fn libxl__xswait_init(ss: *mut libxl__xswait_state);
    pub fn libxl__xswait_start(gc: *mut libxl__gc, ss: *mut libxl__xswait_state) -> c_int;
    pub fn libxl__xswait_stop(gc: *mut libxl__gc, ss: *mut libxl__xswait_state);
    // _libxl_types.c (generated): libxl_event's constructor and destructor.
    pub fn libxl_event_init(p: *mut libxl_event);
    pub fn libxl_event_init_type(p: *mut libxl_event, t: libxl_event_type);
    pub fn libxl_event_dispose(p: *mut libxl_event);
    pub fn libxl_event_type_to_string(t: libxl_event_type) -> *const c_char;
    // libxl.c
    pub fn libxl_fd_set_cloexec(ctx: *mut libxl_ctx, fd: c_int, cloexec: c_int) -> c_int;

    // libxenstore
    pub fn xs_open(flags: c_ulong) -> *mut c_void;
    pub fn xs_fileno(h: *mut c_void) -> c_int;
    pub fn xs_watch(h: *mut c_void, path: *const c_char, token: *const c_char) -> bool;
    pub fn xs_unwatch(h: *mut c_void, path: *const c_char, token: *const c_char) -> bool;
    pub fn xs_check_watch(h: *mut c_void) -> *mut *mut c_char;
    pub fn xs_path_is_subpath(parent: *const c_char, child: *const c_char) -> bool;
    pub fn xs_daemon_destroy_postfork(h: *mut c_void);

    // libxenevtchn
    pub fn xenevtchn_open(logger: *mut xentoollog_logger, flags: c_uint) -> *mut c_void;
    pub fn xenevtchn_fd(xce: *mut c_void) -> c_int;
    pub fn xenevtchn_pending(xce: *mut c_void) -> c_int;
    pub fn xenevtchn_unmask(xce: *mut c_void, port: u32) -> c_int;
    pub fn xenevtchn_close(xce: *mut c_void) -> c_int;
}

/// `XBT_NULL`: no transaction.
pub const XBT_NULL: u32 = 0;
