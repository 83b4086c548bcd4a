//! The parts of libxl's internal event API built only on its other parts:
//! waiting for a device's backend state (`libxl__ev_devstate_wait`, on
//! aoutils.c's xenstore waiter) and watching for a domain's death
//! (`libxl__domaindeathcheck_*`, an abortable plus a xenstore watch), and
//! the poller hooks `libxl.c` calls.

use std::ffi::{c_char, c_int, CStr, CString};

use super::ao::{libxl__ao_abortable_deregister, libxl__ao_abortable_register};
use super::ctx::{core_of, dispose_shell, make_core};
use super::layout::{
    libxl__ao, libxl__ao_abortable, libxl__ctx, libxl__domaindeathcheck, libxl__egc, libxl__ev_devstate,
    libxl__ev_xswatch, libxl__gc, libxl__poller, libxl__xswait_state,
};
use super::xenlibs::{libxl__strdup, libxl__xs_read, libxl__xswait_init, libxl__xswait_start, libxl__xswait_stop, XBT_NULL};
use super::xswatch::{libxl__ev_xswatch_deregister, libxl__ev_xswatch_register};
use crate::rc::{ERROR_DOMAIN_DESTROYED, ERROR_INVAL, ERROR_TIMEDOUT};

fn lossy(p: *const c_char) -> String {
    if p.is_null() {
        return "(null)".into();
    }
    // SAFETY: a NUL-terminated string from C.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// A copy of `s` in `gc` (freed with it).
///
/// # Safety
/// `gc` live.
unsafe fn gc_string(gc: *mut libxl__gc, s: &str) -> *mut c_char {
    let c = CString::new(s).expect("no NUL in our own strings");
    // SAFETY: a live gc and a NUL-terminated string (copied).
    unsafe { libxl__strdup(gc, c.as_ptr()) }
}

/// Logs through the ctx's core (if it still has one).
///
/// # Safety
/// `gc` live.
unsafe fn with_core(gc: *mut libxl__gc, f: impl FnOnce(&crate::egc::Ctx)) {
    // SAFETY: a live gc's ctx.
    if let Some(x) = unsafe { core_of((*gc).owner.cast()) } {
        f(&x.core)
    }
}

unsafe extern "C" fn devstate_callback(egc: *mut libxl__egc, xsw: *mut libxl__xswait_state, rc: c_int, sstate: *const c_char) {
    // SAFETY: `xsw` is the `w` member of a libxl__ev_devstate (the only
    // waiter registered with this callback).
    let ds = unsafe { xsw.byte_sub(std::mem::offset_of!(libxl__ev_devstate, w)) }.cast::<libxl__ev_devstate>();
    // SAFETY: the egc C passed us.
    let gc = unsafe { std::ptr::addr_of_mut!((*egc).gc) };
    // SAFETY: a live devstate (its waiter is calling).
    let (wanted, path) = unsafe { ((*ds).wanted, (*ds).w.path) };
    let rc = if rc != 0 {
        if rc == ERROR_TIMEDOUT {
            // SAFETY: live gc.
            unsafe { with_core(gc, |c| crate::xl_log!(c, Debug, "backend {} wanted state {wanted} timed out", lossy(path))) };
        }
        rc
    } else if sstate.is_null() {
        // SAFETY: live gc.
        unsafe { with_core(gc, |c| crate::xl_log!(c, Debug, "backend {} wanted state {wanted} but it was removed", lossy(path))) };
        ERROR_INVAL
    } else {
        // SAFETY: the state string xswait read for us.
        let got: c_int = unsafe { CStr::from_ptr(sstate) }.to_str().ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
        if got != wanted {
            // SAFETY: live gc.
            unsafe { with_core(gc, |c| crate::xl_log!(c, Debug, "backend {} wanted state {wanted} still waiting state {got}", lossy(path))) };
            return;
        }
        // SAFETY: live gc.
        unsafe { with_core(gc, |c| crate::xl_log!(c, Debug, "backend {} wanted state {wanted} ok", lossy(path))) };
        0
    };
    // SAFETY: the devstate's own waiter (libxl__ev_devstate_cancel).
    unsafe { libxl__xswait_stop(gc, std::ptr::addr_of_mut!((*ds).w)) };
    // SAFETY: a live devstate.
    if let Some(cb) = unsafe { (*ds).callback } {
        // SAFETY: C's callback with its egc and devstate.
        unsafe { cb(egc, ds, rc) };
    }
}

/// Waits (up to `milliseconds`) for the xenstore node `state_path` to read
/// `state`; `cb` gets 0, `ERROR_TIMEDOUT`, `ERROR_ABORTED`, `ERROR_INVAL`
/// (the node was removed) or `ERROR_FAIL`.
///
/// # Safety
/// `ao` live; `ds` valid until its callback; `state_path` NUL-terminated
/// and valid as long.
#[no_mangle]
pub unsafe extern "C" fn libxl__ev_devstate_wait(
    ao: *mut libxl__ao,
    ds: *mut libxl__ev_devstate,
    cb: super::layout::ev_devstate_callback,
    state_path: *const c_char,
    state: c_int,
    milliseconds: c_int,
) -> c_int {
    // SAFETY: a live ao (this function's contract): its gc.
    let gc = unsafe { std::ptr::addr_of_mut!((*ao).gc) };
    // SAFETY: valid (this function's contract).
    let w = unsafe { std::ptr::addr_of_mut!((*ds).w) };
    // SAFETY: as above.
    unsafe { libxl__xswait_init(w) };
    // SAFETY: live gc.
    let what = unsafe { gc_string(gc, &format!("backend {} (hoping for state change to {state})", lossy(state_path))) };
    // SAFETY: valid; the fields xswait's caller fills in.
    unsafe {
        (*ds).wanted = state;
        (*ds).callback = cb;
        (*w).ao = ao;
        (*w).what = what;
        (*w).path = state_path;
        (*w).timeout_ms = milliseconds;
        (*w).callback = Some(devstate_callback);
    }
    // SAFETY: a filled-in waiter and a live gc.
    let rc = unsafe { libxl__xswait_start(gc, w) };
    if rc != 0 {
        // SAFETY: as above.
        unsafe { libxl__xswait_stop(gc, w) };
    }
    rc
}

/// # Safety
/// `dc` valid.
#[no_mangle]
pub unsafe extern "C" fn libxl__domaindeathcheck_init(dc: *mut libxl__domaindeathcheck) {
    // SAFETY: valid (this function's contract); as the _init inlines.
    unsafe {
        (*dc).abrt.registered = false;
        (*dc).watch.slotnum = -1;
    }
}

/// # Safety
/// `gc` live; `dc` valid (started, or initialised).
#[no_mangle]
pub unsafe extern "C" fn libxl__domaindeathcheck_stop(gc: *mut libxl__gc, dc: *mut libxl__domaindeathcheck) {
    // SAFETY: valid (this function's contract): its own members.
    unsafe {
        libxl__ao_abortable_deregister(std::ptr::addr_of_mut!((*dc).abrt));
        libxl__ev_xswatch_deregister(gc, std::ptr::addr_of_mut!((*dc).watch));
    }
}

unsafe extern "C" fn deathcheck_watch(egc: *mut libxl__egc, w: *mut libxl__ev_xswatch, watch_path: *const c_char, _event_path: *const c_char) {
    // SAFETY: `w` is the `watch` member of a domaindeathcheck (the only
    // watch registered with this callback).
    let dc = unsafe { w.byte_sub(std::mem::offset_of!(libxl__domaindeathcheck, watch)) }.cast::<libxl__domaindeathcheck>();
    // SAFETY: the egc C passed us.
    let gc = unsafe { std::ptr::addr_of_mut!((*egc).gc) };
    // SAFETY: a live gc; NUL-terminated path.
    let p = unsafe { libxl__xs_read(gc, XBT_NULL, watch_path) };
    let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    if !p.is_null() {
        return; // the domain is still there
    }
    // `watch_path` is the watch's own path, which stopping frees: copied
    // first (Xen's libxl_event.c logs it after the stop, a use after free).
    let watch_path = lossy(watch_path);
    // SAFETY: forwarded.
    unsafe { libxl__domaindeathcheck_stop(gc, dc) };
    if e != libc::ENOENT {
        // SAFETY: a live gc's ctx.
        if let Some(x) = unsafe { core_of((*gc).owner.cast()) } {
            crate::ffi::boundary::entry_nested("domain death check", &x.core, 0, |eg| {
                eg.disaster("failed to read xenstore for domain detach check", e)
            });
        }
        return;
    }
    // SAFETY: a live deathcheck.
    let (what, domid, cb) = unsafe { ((*dc).what, (*dc).domid, (*dc).callback) };
    // SAFETY: live gc.
    unsafe {
        with_core(gc, |c| {
            crate::xl_log!(c, Error, "{}: domain {domid} removed ({watch_path} no longer in xenstore)", lossy(what))
        })
    };
    if let Some(cb) = cb {
        // SAFETY: C's callback with its egc and deathcheck.
        unsafe { cb(egc, dc, ERROR_DOMAIN_DESTROYED) };
    }
}

unsafe extern "C" fn deathcheck_abort(egc: *mut libxl__egc, abrt: *mut libxl__ao_abortable, rc: c_int) {
    // SAFETY: `abrt` is the `abrt` member of a domaindeathcheck.
    let dc = unsafe { abrt.byte_sub(std::mem::offset_of!(libxl__domaindeathcheck, abrt)) }.cast::<libxl__domaindeathcheck>();
    // SAFETY: the egc C passed us.
    let gc = unsafe { std::ptr::addr_of_mut!((*egc).gc) };
    // SAFETY: forwarded.
    unsafe { libxl__domaindeathcheck_stop(gc, dc) };
    // SAFETY: a live deathcheck.
    if let Some(cb) = unsafe { (*dc).callback } {
        // SAFETY: C's callback with its egc and deathcheck.
        unsafe { cb(egc, dc, rc) };
    }
}

/// Watches `/local/domain/<domid>`: the callback gets
/// `ERROR_DOMAIN_DESTROYED` when it disappears, or `ERROR_ABORTED`.
///
/// # Safety
/// `ao` live; `dc` valid with `what`, `domid`, `callback` set.
#[no_mangle]
pub unsafe extern "C" fn libxl__domaindeathcheck_start(ao: *mut libxl__ao, dc: *mut libxl__domaindeathcheck) -> c_int {
    // SAFETY: a live ao: its gc.
    let gc = unsafe { std::ptr::addr_of_mut!((*ao).gc) };
    // SAFETY: valid (this function's contract).
    let domid = unsafe { (*dc).domid };
    // SAFETY: live gc.
    let path = unsafe { gc_string(gc, &format!("/local/domain/{domid}")) };
    // SAFETY: valid; its own members.
    unsafe {
        libxl__domaindeathcheck_init(dc);
        (*dc).abrt.ao = ao;
        (*dc).abrt.callback = Some(deathcheck_abort);
    }
    // SAFETY: as above.
    let mut rc = unsafe { libxl__ao_abortable_register(std::ptr::addr_of_mut!((*dc).abrt)) };
    if rc == 0 {
        // SAFETY: as above.
        rc = unsafe { libxl__ev_xswatch_register(gc, std::ptr::addr_of_mut!((*dc).watch), Some(deathcheck_watch), path) };
    }
    if rc != 0 {
        // SAFETY: as above.
        unsafe { libxl__domaindeathcheck_stop(gc, dc) };
    }
    rc
}

/// `libxl_ctx_alloc`'s `ctx->poller_app = libxl__poller_get(gc)`: the
/// first call makes the ctx's core (see `ctx`).
///
/// # Safety
/// `gc` live; the ctx's lock initialised.
#[no_mangle]
pub unsafe extern "C" fn libxl__poller_get(gc: *mut libxl__gc) -> *mut libxl__poller {
    // SAFETY: a live gc.
    let c: *mut libxl__ctx = unsafe { (*gc).owner.cast() };
    // SAFETY: a live ctx.
    if unsafe { core_of(c) }.is_some() {
        // Only libxl.c calls this, once; a later call gets a shell with
        // nothing behind it (the core's pollers are its own).
        // SAFETY: calloc has no preconditions.
        return unsafe { libc::calloc(1, std::mem::size_of::<libxl__poller>()) }.cast();
    }
    // SAFETY: a live ctx without a core, lock initialised (contract).
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe { make_core(c) })) {
        Ok(Ok(p)) => p,
        _ => std::ptr::null_mut(),
    }
}

/// Puts a poller on the C ctx's idle list (where `libxl_ctx_free` finds
/// it, disposes of it and frees it).
///
/// # Safety
/// `ctx` live; `p` NULL or a poller from `libxl__poller_get`.
#[no_mangle]
pub unsafe extern "C" fn libxl__poller_put(ctx: *mut crate::ffi::types::libxl_ctx, p: *mut libxl__poller) {
    if p.is_null() {
        return;
    }
    let c = ctx.cast::<libxl__ctx>();
    // SAFETY: a live ctx and poller: XEN_LIST_INSERT_HEAD(&pollers_idle, p, entry).
    unsafe {
        let first = (*c).pollers_idle;
        (*p).entry.a = first.cast();
        if !first.is_null() {
            (*first).entry.b = std::ptr::addr_of_mut!((*p).entry.a).cast();
        }
        (*c).pollers_idle = p;
        (*p).entry.b = std::ptr::addr_of_mut!((*c).pollers_idle).cast();
    }
}

/// # Safety
/// `p` a poller from `libxl__poller_get`, not yet disposed of.
#[no_mangle]
pub unsafe extern "C" fn libxl__poller_dispose(p: *mut libxl__poller) {
    // SAFETY: forwarded.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe { dispose_shell(p) }));
}
