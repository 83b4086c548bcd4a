//! Events: `libxl_event_check/wait/free`, `libxl_event_register_callbacks`,
//! and the `libxl_event` helpers (`init`, `init_type`, `dispose`,
//! `type_to_string`, `type_from_string`).

use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::Arc;

use super::boundary::{ctx_ref, entry};
use super::types::{libxl_ctx, libxl_event, libxl_event_hooks, libxl_event_type};

/// `libxl_event_predicate *`.
type Predicate = Option<unsafe extern "C" fn(ev: *const libxl_event, user: *mut c_void) -> c_int>;
use super::SendPtr;
use crate::reg::event::{Event, EventHooks, EventKind};
use crate::rc::{ERROR_FAIL, ERROR_INVAL};

const TYPE_NAMES: [(c_int, &CStr); 5] = [
    (1, c"domain_shutdown"),
    (2, c"domain_death"),
    (3, c"disk_eject"),
    (4, c"operation_complete"),
    (5, c"domain_create_console_available"),
];

/// Fills a C event from a core event.
fn to_c(ev: &Event) -> libxl_event {
    // SAFETY: libxl_event is plain data (integers and NULL pointers are
    // valid bit patterns); all-zero is libxl_event_init's result.
    let mut c: libxl_event = unsafe { std::mem::zeroed() };
    c.domid = ev.domid;
    c.domuuid = ev.domuuid;
    c.for_user = ev.for_user;
    c.type_ = ev.kind.type_num() as c_int;
    match ev.kind {
        EventKind::DomainShutdown { reason } => c.u.shutdown_reason = reason,
        EventKind::OperationComplete { rc } => c.u.operation_complete_rc = rc,
        EventKind::DomainDeath | EventKind::DomainCreateConsoleAvailable => {}
    }
    c
}

/// A heap copy of `ev` for the application (freed by `libxl_event_free`,
/// or by `free(3)`: it is `calloc`ed).
pub fn to_c_heap(ev: &Event) -> *mut libxl_event {
    // SAFETY: calloc has no preconditions; we check the result.
    let p = unsafe { libc::calloc(1, std::mem::size_of::<libxl_event>()) }.cast::<libxl_event>();
    if p.is_null() {
        std::process::abort(); // out of memory: as Rust's own allocator does
    }
    // SAFETY: `p` is a fresh, suitably aligned allocation of the right size.
    unsafe { p.write(to_c(ev)) };
    p
}

fn with_predicate(
    pred: Predicate,
    user: *mut c_void,
) -> impl FnMut(&Event) -> bool {
    let user = SendPtr(user);
    move |ev: &Event| match pred {
        None => true,
        Some(p) => {
            let c = to_c(ev);
            // SAFETY: the predicate is the application's; it gets a valid
            // event for the duration of the call and its own user pointer.
            unsafe { p(&c, user.get()) != 0 }
        }
    }
}

/// # Safety
/// `ctx` live; `event_r` writable; `predicate` NULL or callable.
#[no_mangle]
pub unsafe extern "C" fn libxl_event_check(
    ctx: *mut libxl_ctx,
    event_r: *mut *mut libxl_event,
    typemask: u64,
    predicate: Option<unsafe extern "C" fn(ev: *const libxl_event, user: *mut c_void) -> c_int>,
    predicate_user: *mut c_void,
) -> c_int {
    const ENTRY: &str = "libxl_event_check";
    // SAFETY: the caller passes NULL or a live ctx (this function's contract).
    let c = unsafe { ctx_ref(ctx) };
    entry(ENTRY, c, |egc| {
        crate::check_arg!(egc, !event_r.is_null(), ENTRY, "event_r", "NULL");
        match egc.event_check(typemask, &mut with_predicate(predicate, predicate_user)) {
            Ok(ev) => {
                // SAFETY: `event_r` was checked non-NULL; the caller
                // promises it is writable.
                unsafe { event_r.write(to_c_heap(&ev)) };
                0
            }
            Err(rc) => rc,
        }
    })
}

/// # Safety
/// As for `libxl_event_check`.
#[no_mangle]
pub unsafe extern "C" fn libxl_event_wait(
    ctx: *mut libxl_ctx,
    event_r: *mut *mut libxl_event,
    typemask: u64,
    predicate: Option<unsafe extern "C" fn(ev: *const libxl_event, user: *mut c_void) -> c_int>,
    predicate_user: *mut c_void,
) -> c_int {
    const ENTRY: &str = "libxl_event_wait";
    // SAFETY: the caller passes NULL or a live ctx (this function's contract).
    let c = unsafe { ctx_ref(ctx) };
    entry(ENTRY, c, |egc| {
        crate::check_arg!(egc, !event_r.is_null(), ENTRY, "event_r", "NULL (libxl would wait forever)");
        crate::check_arg!(egc, typemask & crate::reg::event::KNOWN_TYPES_MASK != 0, ENTRY, "typemask",
            format!("{typemask:#x} selects no event type (libxl would wait forever)"));
        match egc.event_wait(typemask, &mut with_predicate(predicate, predicate_user)) {
            Ok(ev) => {
                // SAFETY: `event_r` was checked non-NULL; the caller
                // promises it is writable.
                unsafe { event_r.write(to_c_heap(&ev)) };
                0
            }
            Err(rc) => rc,
        }
    })
}

/// # Safety
/// `event` NULL or an event from this library not yet freed. `ctx` unused
/// (may be NULL, as in libxl).
#[no_mangle]
pub unsafe extern "C" fn libxl_event_free(_ctx: *mut libxl_ctx, event: *mut libxl_event) {
    if event.is_null() {
        return;
    }
    // SAFETY: the caller gives us one of our events, not yet freed.
    unsafe { libxl_event_dispose(event) };
    // SAFETY: our events are calloc'd; this is its one free.
    unsafe { libc::free(event.cast()) };
}

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

/// Copies `*hooks` (NULL clears them). Not to be called concurrently with
/// other calls on this ctx (libxl's rule).
///
/// # Safety
/// `ctx` live; `hooks` NULL or valid; callbacks callable with `user`.
#[no_mangle]
pub unsafe extern "C" fn libxl_event_register_callbacks(
    ctx: *mut libxl_ctx,
    hooks: *const libxl_event_hooks,
    user: *mut c_void,
) {
    // SAFETY: the caller passes NULL or a live ctx (this function's contract).
    let c = unsafe { ctx_ref(ctx) };
    // SAFETY: `hooks` is NULL or valid for reads (this function's contract);
    // it is copied now.
    let hooks = unsafe { hooks.as_ref() }.copied();
    entry("libxl_event_register_callbacks", c, |egc| {
            let Some(h) = hooks else {
                egc.register_event_hooks(None);
                return;
            };
            let user = SendPtr(user);
            let occurs = h.event_occurs.map(|f| -> Arc<dyn Fn(Event) + Send + Sync> {
                Arc::new(move |ev: Event| {
                    let p = to_c_heap(&ev);
                    // SAFETY: the application's callback (its registration
                    // promises it callable), with its own user pointer and a
                    // heap event it now owns.
                    unsafe { f(user.get(), p) }
                })
            });
            let disaster = h.disaster.map(|f| -> crate::reg::event::DisasterFn {
                Arc::new(move |ty: u32, msg: &str, errnoval: i32| {
                    let m = std::ffi::CString::new(msg.replace('\0', " ")).expect("NULs replaced");
                    // SAFETY: the application's disaster hook, with its user
                    // pointer and a NUL-terminated message alive for the call.
                    unsafe { f(user.get(), ty as c_int, m.as_ptr(), errnoval) }
                })
            });
            if h.event_occurs_mask != 0 && occurs.is_none() {
                crate::xl_log!(egc.ctx, Error,
                    "libxl_event_register_callbacks: event_occurs_mask is {:#x} but event_occurs is NULL; \
                     those events will be queued instead", h.event_occurs_mask);
            }
            egc.register_event_hooks(Some(EventHooks { occurs_mask: h.event_occurs_mask, occurs, disaster }));
    })
}
