//! xenstore watches (`libxl__ev_xswatch_*`) on the C ctx's xenstore handle.
//!
//! libxl's watches all share `ctx->xsh` (the handle the rest of libxl uses
//! for its reads and writes): the first registration registers an fd
//! source (`ctx->watch_efd`) on `xs_fileno`, the last deregistration
//! removes it. Each watch takes a slot; its xenstore token is
//! `"<slot>/<counter in hex>"`, the counter making each registration of a
//! slot distinct. When the fd is readable every queued watch event is
//! read (`xs_check_watch`) and given to the watch its token names, if that
//! watch is still the one in the slot and the event path is at or below
//! the watched path. xenstored fires each new watch once at once; libxl's
//! callers rely on that first event.
//!
//! Invariants:
//! * A slot holds a watch exactly while it is registered (`slotnum >= 0`);
//!   an event for an empty slot, another counter or an unrelated path is
//!   dropped (logged at DEBUG), never delivered.
//! * `ctx->watch_efd` is registered exactly while some watch is.
//! * A watch may be deregistered from inside its own callback (and its slot
//!   reused at once: the counter tells the old events from the new).

use std::ffi::{c_char, c_int, c_short, CStr, CString};

use super::ctx::{core_of_gc, gc_ctx, XenCtx};
use super::fd::{libxl__ev_fd_deregister, libxl__ev_fd_register};
use super::layout::{ev_xswatch_callback, libxl__ctx, libxl__egc, libxl__ev_fd, libxl__ev_xswatch, libxl__gc};
use super::xenlibs::{xs_check_watch, xs_fileno, xs_path_is_subpath, xs_unwatch, xs_watch};
use crate::ffi::boundary::entry_nested;
use crate::rc::{ERROR_FAIL, ERROR_NOMEM};
use crate::reg::watch::{self, parse_token};
use crate::sys::{POLLERR, POLLHUP, POLLIN};

fn token(slot: usize, counter: u32) -> CString {
    CString::new(watch::token(slot, counter)).expect("digits only")
}

fn lossy(p: *const c_char) -> String {
    if p.is_null() {
        return "(null)".into();
    }
    // SAFETY: a NUL-terminated string from C or libxenstore.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

fn errno() -> c_int {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Deregisters the watch fd once no watch is left.
///
/// # Safety
/// `gc` live; `c` its ctx.
unsafe fn check_fd_deregister(x: &XenCtx, gc: *mut libxl__gc, c: *mut libxl__ctx) {
    if x.xen.lock().value().watches.live() == 0 {
        // SAFETY: the ctx's own embedded ev_fd.
        unsafe { libxl__ev_fd_deregister(gc, std::ptr::addr_of_mut!((*c).watch_efd)) };
    }
}

/// # Safety
/// `gc` live; `w` valid and not registered; `path` a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn libxl__ev_xswatch_register(
    gc: *mut libxl__gc,
    w: *mut libxl__ev_xswatch,
    func: ev_xswatch_callback,
    path: *const c_char,
) -> c_int {
    const ENTRY: &str = "libxl__ev_xswatch_register";
    // SAFETY: forwarded.
    let x = unsafe { core_of_gc(gc, ENTRY) };
    // SAFETY: as above.
    let c = unsafe { gc_ctx(gc) };
    // The whole registration is one step under the ctx lock.
    let _level = x.xen.lock();
    // SAFETY: a live ctx.
    let xsh = unsafe { (*c).xsh };
    if xsh.is_null() {
        crate::xl_log!(&x.core, Error, "{ENTRY}: no xenstore connection (in a forked child?)");
        return ERROR_FAIL;
    }
    // SAFETY: a live ctx's embedded ev_fd.
    let efd = unsafe { std::ptr::addr_of_mut!((*c).watch_efd) };
    // SAFETY: as above.
    if unsafe { (*efd).fd } < 0 {
        // SAFETY: the ctx's open xenstore handle.
        let fd = unsafe { xs_fileno(xsh) };
        if fd < 0 {
            crate::xl_log_errno!(&x.core, Error, errno(), "{ENTRY}: cannot get the xenstore watch fd");
            return ERROR_FAIL;
        }
        // SAFETY: forwarded; the ctx's ev_fd, not registered.
        let rc = unsafe { libxl__ev_fd_register(gc, efd, Some(watchfd_callback), fd, POLLIN) };
        if rc != 0 {
            return rc;
        }
    }
    // SAFETY: NUL-terminated (this function's contract).
    let path_copy = unsafe { libc::strdup(path) };
    if path_copy.is_null() {
        // SAFETY: as above.
        unsafe { check_fd_deregister(x, gc, c) };
        return ERROR_NOMEM;
    }
    let (slot, counter) = x.xen.lock().value().watches.reserve();
    let tok = token(slot, counter);
    crate::xl_log!(&x.core, Debug, "watch w={w:p} wpath={} token={}: register slotnum={slot}", lossy(path), lossy(tok.as_ptr()));
    // SAFETY: the ctx's open handle and two NUL-terminated strings.
    if !unsafe { xs_watch(xsh, path, tok.as_ptr()) } {
        let e = errno();
        crate::xl_log_errno!(&x.core, Error, e, "create watch for path {}", lossy(path));
        x.xen.lock().value().watches.give_back(slot);
        // SAFETY: our strdup, not handed out.
        unsafe { libc::free(path_copy.cast()) };
        // SAFETY: as above.
        unsafe { check_fd_deregister(x, gc, c) };
        return ERROR_FAIL;
    }
    // SAFETY: valid (this function's contract); under the lock.
    let wr = unsafe { &mut *w };
    wr.slotnum = slot as c_int;
    wr.counterval = counter;
    wr.path = path_copy;
    wr.callback = func;
    x.xen.lock().value().watches.fill(slot, w as usize);
    0
}

/// Legal from inside the watch's own callback; always frees `w->path`.
///
/// # Safety
/// `gc` live; `w` registered or initialised (`slotnum` -1).
#[no_mangle]
pub unsafe extern "C" fn libxl__ev_xswatch_deregister(gc: *mut libxl__gc, w: *mut libxl__ev_xswatch) {
    const ENTRY: &str = "libxl__ev_xswatch_deregister";
    // SAFETY: forwarded.
    let x = unsafe { core_of_gc(gc, ENTRY) };
    // SAFETY: as above.
    let c = unsafe { gc_ctx(gc) };
    let _level = x.xen.lock();
    // SAFETY: valid (this function's contract).
    let (slot, counter, path) = unsafe { ((*w).slotnum, (*w).counterval, (*w).path) };
    if slot >= 0 {
        let tok = token(slot as usize, counter);
        crate::xl_log!(&x.core, Debug, "watch w={w:p} wpath={} token={}: deregister slotnum={slot}", lossy(path), lossy(tok.as_ptr()));
        // SAFETY: a live ctx.
        let xsh = unsafe { (*c).xsh };
        // SAFETY: the ctx's handle and two NUL-terminated strings.
        if xsh.is_null() || !unsafe { xs_unwatch(xsh, path, tok.as_ptr()) } {
            // Its events will keep coming, and be dropped (wrong counter).
            crate::xl_log_errno!(&x.core, Error, errno(), "remove watch for path {}", lossy(path));
        }
        x.xen.lock().value().watches.give_back(slot as usize);
        // SAFETY: valid (this function's contract).
        unsafe { (*w).slotnum = -1 };
        // SAFETY: as above.
        unsafe { check_fd_deregister(x, gc, c) };
    }
    // SAFETY: `path` is our strdup or NULL (libxl frees it in any case).
    unsafe { libc::free(path.cast()) };
    // SAFETY: valid.
    unsafe { (*w).path = std::ptr::null_mut() };
}

/// # Safety
/// `gc` live.
#[no_mangle]
pub unsafe extern "C" fn libxl__watch_slot_contents(gc: *mut libxl__gc, slotnum: c_int) -> *mut libxl__ev_xswatch {
    // SAFETY: forwarded.
    let x = unsafe { core_of_gc(gc, "libxl__watch_slot_contents") };
    let w = x.xen.lock().value().watches.get(i64::from(slotnum));
    w.map_or(std::ptr::null_mut(), |w| w as *mut libxl__ev_xswatch)
}

fn disaster(x: &XenCtx, msg: &str, errnoval: c_int) {
    entry_nested("watch fd", &x.core, 0, |e| e.disaster(msg, errnoval));
}

/// The watch fd's callback: delivers every queued watch event.
unsafe extern "C" fn watchfd_callback(egc: *mut libxl__egc, _ev: *mut libxl__ev_fd, _fd: c_int, _events: c_short, revents: c_short) {
    // SAFETY: the egc we made for this callback.
    let gc = unsafe { std::ptr::addr_of_mut!((*egc).gc) };
    // SAFETY: as above.
    let x = unsafe { core_of_gc(gc, "xenstore watch") };
    // SAFETY: as above.
    let c = unsafe { gc_ctx(gc) };
    if revents & (POLLERR | POLLHUP) != 0 {
        disaster(x, "unexpected poll event on watch fd", 0);
    }
    loop {
        // SAFETY: a live ctx.
        let xsh = unsafe { (*c).xsh };
        if xsh.is_null() {
            return;
        }
        // SAFETY: the ctx's open handle; non-blocking.
        let ev = unsafe { xs_check_watch(xsh) };
        if ev.is_null() {
            match errno() {
                libc::EAGAIN => break,
                libc::EINTR => continue,
                e => {
                    disaster(x, "cannot check/read watches", e);
                    return;
                }
            }
        }
        // SAFETY: xs_check_watch's result: an array of (at least) the
        // event path and the token, in one malloc'd block.
        let (epath, tok) = unsafe { (*ev, *ev.add(1)) };
        // SAFETY: NUL-terminated strings in that block.
        let tok_bytes = unsafe { CStr::from_ptr(tok) }.to_bytes();
        match parse_token(tok_bytes) {
            None => crate::xl_log!(&x.core, Error, "watch epath={} token={}: failed to parse token", lossy(epath), lossy(tok)),
            Some((slot, counter)) => {
                let w = x.xen.lock().value().watches.get(slot);
                match w.map(|w| w as *mut libxl__ev_xswatch) {
                    None => crate::xl_log!(&x.core, Debug, "watch epath={} token={}: empty slot", lossy(epath), lossy(tok)),
                    // SAFETY: a registered watch is live.
                    Some(w) if unsafe { (*w).counterval } != counter => {
                        crate::xl_log!(&x.core, Debug, "watch w={w:p} epath={} token={}: counter != {counter:x}", lossy(epath), lossy(tok))
                    }
                    // SAFETY: as above; both paths NUL-terminated.
                    Some(w) if !unsafe { xs_path_is_subpath((*w).path, epath) } => {
                        crate::xl_log!(&x.core, Debug, "watch w={w:p} token={}: unexpected epath={}", lossy(tok), lossy(epath))
                    }
                    Some(w) => {
                        // SAFETY: as above.
                        let (cb, wpath) = unsafe { ((*w).callback, (*w).path) };
                        crate::xl_log!(&x.core, Debug, "watch w={w:p} wpath={} token={}: event epath={}", lossy(wpath), lossy(tok), lossy(epath));
                        if let Some(cb) = cb {
                            // SAFETY: C's callback with the egc we were
                            // given and the watch it registered.
                            unsafe { cb(egc, w, wpath, epath) };
                        }
                    }
                }
            }
        }
        // SAFETY: xs_check_watch's malloc'd block, freed once.
        unsafe { libc::free(ev.cast()) };
    }
}
