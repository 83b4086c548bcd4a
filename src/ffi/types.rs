//! The C types of Xen's headers, with their exact layouts (x86-64 sizes
//! are asserted at compile time below and, from C, by `c-tests/`).
#![allow(non_camel_case_types)]

use std::ffi::{c_char, c_int, c_short, c_void};

/// `libxl_event_type` (an enum in C; int-sized).
pub type libxl_event_type = c_int;

/// `libxl_ctx`: opaque to C; really our `CtxBox`.
#[repr(C)]
pub struct libxl_ctx {
    _opaque: [u8; 0],
}

/// `xentoollog_logger`: three function pointers; called from the C shim.
#[repr(C)]
pub struct xentoollog_logger {
    pub vmessage: *mut c_void,
    pub progress: *mut c_void,
    pub destroy: *mut c_void,
}

pub type libxl_asyncop_callback = unsafe extern "C" fn(ctx: *mut libxl_ctx, rc: c_int, for_callback: *mut c_void);

#[repr(C)]
#[derive(Clone, Copy)]
pub union libxl_asyncop_how_u {
    pub for_event: u64,
    pub for_callback: *mut c_void,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct libxl_asyncop_how {
    pub callback: Option<libxl_asyncop_callback>,
    pub u: libxl_asyncop_how_u,
}

pub type libxl_asyncprogress_callback =
    unsafe extern "C" fn(ctx: *mut libxl_ctx, ev: *mut libxl_event, for_callback: *mut c_void);

#[repr(C)]
#[derive(Clone, Copy)]
pub struct libxl_asyncprogress_how {
    pub callback: Option<libxl_asyncprogress_callback>,
    pub for_event: u64,
    pub for_callback: *mut c_void,
}

/// `libxl_device_disk` (Xen 4.17), needed for `libxl_event`'s layout and
/// for disposing of a DISK_EJECT event.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct libxl_device_disk {
    pub backend_domid: u32,
    pub backend_domname: *mut c_char,
    pub pdev_path: *mut c_char,
    pub vdev: *mut c_char,
    pub backend: c_int,
    pub format: c_int,
    pub script: *mut c_char,
    pub removable: c_int,
    pub readwrite: c_int,
    pub is_cdrom: c_int,
    pub direct_io_safe: bool,
    pub discard_enable: c_int,
    pub specification: c_int,
    pub transport: c_int,
    pub irq: u32,
    pub base: u64,
    pub colo_enable: c_int,
    pub colo_restore_enable: c_int,
    pub colo_host: *mut c_char,
    pub colo_port: c_int,
    pub colo_export: *mut c_char,
    pub active_disk: *mut c_char,
    pub hidden_disk: *mut c_char,
    pub trusted: c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct libxl_event_disk_eject {
    pub vdev: *mut c_char,
    pub disk: libxl_device_disk,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub union libxl_event_u {
    pub shutdown_reason: u8,
    pub disk_eject: libxl_event_disk_eject,
    pub operation_complete_rc: c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct libxl_event {
    pub link: [*mut c_void; 2],
    pub domid: u32,
    pub domuuid: [u8; 16],
    pub for_user: u64,
    pub type_: c_int,
    pub u: libxl_event_u,
}


#[repr(C)]
#[derive(Clone, Copy)]
pub struct libxl_event_hooks {
    pub event_occurs_mask: u64,
    pub event_occurs: Option<unsafe extern "C" fn(user: *mut c_void, ev: *mut libxl_event)>,
    pub disaster: Option<unsafe extern "C" fn(user: *mut c_void, type_: c_int, msg: *const c_char, errnoval: c_int)>,
}

#[repr(C)]
pub struct libxl_osevent_hooks {
    pub fd_register: Option<
        unsafe extern "C" fn(user: *mut c_void, fd: c_int, for_app_out: *mut *mut c_void, events: c_short, for_libxl: *mut c_void) -> c_int,
    >,
    pub fd_modify:
        Option<unsafe extern "C" fn(user: *mut c_void, fd: c_int, for_app_io: *mut *mut c_void, events: c_short) -> c_int>,
    pub fd_deregister: Option<unsafe extern "C" fn(user: *mut c_void, fd: c_int, for_app: *mut c_void)>,
    pub timeout_register: Option<
        unsafe extern "C" fn(user: *mut c_void, for_app_out: *mut *mut c_void, abs: libc::timeval, for_libxl: *mut c_void) -> c_int,
    >,
    pub timeout_modify:
        Option<unsafe extern "C" fn(user: *mut c_void, for_app_io: *mut *mut c_void, abs: libc::timeval) -> c_int>,
    pub timeout_deregister: Option<unsafe extern "C" fn(user: *mut c_void, for_app: *mut c_void)>,
}

/// `libxl_sigchld_owner` (an enum in C; int-sized). Kept as an int so an
/// out-of-range value from C can be refused rather than be undefined.
pub type libxl_sigchld_owner = c_int;

#[repr(C)]
pub struct libxl_childproc_hooks {
    pub chldowner: libxl_sigchld_owner,
    pub fork_replacement: Option<unsafe extern "C" fn(user: *mut c_void) -> libc::pid_t>,
    pub reaped_callback: Option<unsafe extern "C" fn(pid: libc::pid_t, status: c_int, user: *mut c_void) -> c_int>,
}

const _: () = {
    assert!(std::mem::size_of::<libxl_event>() == 208);
    assert!(std::mem::offset_of!(libxl_event, for_user) == 40);
    assert!(std::mem::offset_of!(libxl_event, type_) == 48);
    assert!(std::mem::offset_of!(libxl_event, u) == 56);
    assert!(std::mem::size_of::<libxl_device_disk>() == 144);
    assert!(std::mem::offset_of!(libxl_device_disk, direct_io_safe) == 60);
    assert!(std::mem::size_of::<libxl_asyncop_how>() == 16);
    assert!(std::mem::size_of::<libxl_asyncprogress_how>() == 24);
    assert!(std::mem::size_of::<libxl_event_hooks>() == 24);
    assert!(std::mem::size_of::<libxl_osevent_hooks>() == 48);
    assert!(std::mem::size_of::<xentoollog_logger>() == 24);
    assert!(std::mem::size_of::<libxl_childproc_hooks>() == 24);
    assert!(std::mem::offset_of!(libxl_childproc_hooks, fork_replacement) == 8);
    assert!(std::mem::offset_of!(libxl_childproc_hooks, reaped_callback) == 16);
};
