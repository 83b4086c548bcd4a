//! Events: `libxl_event_check/wait/free`, `libxl_event_register_callbacks`.
//! (The `libxl_event` value helpers are in `event_value`.)

use std::ffi::{c_int, c_void};
use std::sync::Arc;

use super::boundary::{entry};
use super::ctxref::ctx_ref;
use super::types::{libxl_ctx, libxl_event, libxl_event_hooks};

/// `libxl_event_predicate *`.
type Predicate = Option<unsafe extern "C" fn(ev: *const libxl_event, user: *mut c_void) -> c_int>;
use super::SendPtr;
use crate::reg::event::{Event, EventHooks, EventKind};

/// `libxl_event_dispose`: ours, or (inside Xen's libxl) the generated one.
#[cfg(not(feature = "xen"))]
use super::event_value::libxl_event_dispose as dispose;
#[cfg(feature = "xen")]
use super::internal::xenlibs::libxl_event_dispose as dispose;


/// Fills a C event from a core event of one of the kinds the core makes
/// itself (`None` for a foreign one: C made it, it is already C).
fn to_c(ev: &Event) -> Option<libxl_event> {
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
        EventKind::Foreign(_) => return None,
    }
    Some(c)
}

/// The event as the application gets it, on the heap (freed by
/// `libxl_event_free`, or by `free(3)`: it is `calloc`ed). A foreign event
/// (built by C inside libxl) is that very C event, given back with its
/// ownership, its `domid` and `for_user` as the core has them.
pub fn to_c_heap(ev: Event) -> *mut libxl_event {
    let Some(c) = to_c(&ev) else {
        let EventKind::Foreign(f) = ev.kind else { unreachable!("to_c makes every other kind") };
        let p = f.ev.into_addr() as *mut libxl_event;
        // SAFETY: a foreign event's address is a live C `libxl_event`
        // (its maker's promise, see `ffi::internal::event`), now ours alone.
        let e = unsafe { &mut *p };
        e.domid = ev.domid;
        e.for_user = ev.for_user;
        return p;
    };
    // SAFETY: calloc has no preconditions; we check the result.
    let p = unsafe { libc::calloc(1, std::mem::size_of::<libxl_event>()) }.cast::<libxl_event>();
    if p.is_null() {
        std::process::abort(); // out of memory: as Rust's own allocator does
    }
    // SAFETY: `p` is a fresh, suitably aligned allocation of the right size.
    unsafe { p.write(c) };
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
            let copy = to_c(ev);
            let c: *const libxl_event = match (&copy, &ev.kind) {
                (Some(c), _) => c,
                (None, EventKind::Foreign(f)) => f.ev.addr() as *const libxl_event,
                (None, _) => unreachable!("to_c makes every other kind"),
            };
            // SAFETY: the predicate is the application's; it gets a valid
            // event for the duration of the call and its own user pointer.
            unsafe { p(c, user.get()) != 0 }
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
                unsafe { event_r.write(to_c_heap(ev)) };
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
                unsafe { event_r.write(to_c_heap(ev)) };
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
    unsafe { dispose(event) };
    // SAFETY: our events are calloc'd; this is its one free.
    unsafe { libc::free(event.cast()) };
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
                    let p = to_c_heap(ev);
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
