//! Child processes (`libxl__ev_child_*`), SIGCHLD (`libxl__sigchld_*`),
//! careful fds (`libxl__carefd_*`, `libxl__atfork_init`) and the pipe
//! helpers, on the core's child machinery (`egc::child`, `sys::carefd`).
//!
//! `libxl__ev_child_fork` returns in both processes, as `fork` does: the
//! pid in the parent, 0 in the child, which then runs libxl's C code. The
//! core's start handshake still holds: the child returns only once the
//! parent has recorded its pid. In the child, the ctx stays locked (as in
//! libxl) and its xenstore connection is dropped (`ctx->xsh` = NULL).
//!
//! Invariants:
//! * `ch->pid` is the child's pid exactly while its death callback is
//!   pending; it is -1 before that callback runs, and after
//!   `libxl__ev_child_kill_deregister` (whose ao then waits for the reaping).

use std::ffi::{c_char, c_int, CStr};

use super::ao::ao_ref;
use super::ctx::{c_egc, core_of, core_of_gc, gc_ctx};
use super::layout::{ev_child_callback, libxl__ao, libxl__ev_child, libxl__gc};
use super::xenlibs::{libxl_fd_set_cloexec, xs_daemon_destroy_postfork, xs_fileno, xs_open};
use crate::egc::child::ChildForked;
use crate::egc::Egc;
use crate::ffi::boundary::{entry_ctx, entry_nested};
use crate::ffi::types::{libxl_childproc_hooks, libxl_ctx};
use crate::ffi::SendPtr;
use crate::rc::ERROR_FAIL;
use crate::sys::carefd::{self, Carefd};
use crate::token::Token;

/// libxl's default child-process hooks: libxl owns SIGCHLD, forks itself.
#[no_mangle]
pub static libxl__childproc_default_hooks: libxl_childproc_hooks =
    libxl_childproc_hooks { chldowner: 0, fork_replacement: None, reaped_callback: None };

/// # Safety
/// `gc` live; `ch` valid and not in use; the ctx not locked more than once
/// if the application's `fork_replacement` may block.
#[no_mangle]
pub unsafe extern "C" fn libxl__ev_child_fork(
    gc: *mut libxl__gc,
    ch: *mut libxl__ev_child,
    death: ev_child_callback,
) -> libc::pid_t {
    const ENTRY: &str = "libxl__ev_child_fork";
    // SAFETY: forwarded.
    let x = unsafe { core_of_gc(gc, ENTRY) };
    // SAFETY: as above.
    let c = unsafe { gc_ctx(gc) };
    let chp = SendPtr(ch);
    let cb = Box::new(move |egc: &mut Egc<'_>, _t, pid: i32, status: i32| {
        let ch = chp.get();
        // SAFETY: an in-use child struct is live until its death callback
        // (C must not free it before); libxl clears pid first.
        unsafe { (*ch).pid = -1 };
        let Some(death) = death else { return };
        let ce = c_egc(egc);
        egc.release_state();
        // SAFETY: C's callback with the egc and the struct it forked with.
        unsafe { death(ce, ch, pid, status) };
    });
    entry_ctx(ENTRY, Some(&x.core), |core| {
        let mut egc = Egc::nested(core, 0);
        match egc.ev_child_fork_returning(cb) {
            Ok(ChildForked::Parent(t, pid)) => {
                // SAFETY: valid (this function's contract); under the lock,
                // before the death callback can run.
                let chr = unsafe { &mut *ch };
                chr.pid = pid;
                chr.callback = death;
                chr.token = t.to_usize();
                pid
            }
            Ok(ChildForked::Child) => {
                // As libxl: the ctx stays locked in the child (the egc's
                // level is never given back), and the xenstore connection,
                // shared with the parent, is dropped.
                egc.release_state();
                std::mem::forget(egc);
                // SAFETY: the (copied) live ctx.
                let xsh = unsafe { (*c).xsh };
                if !xsh.is_null() {
                    // SAFETY: an open handle, given up in this process only.
                    unsafe { xs_daemon_destroy_postfork(xsh) };
                    // SAFETY: as above.
                    unsafe { (*c).xsh = std::ptr::null_mut() };
                }
                0
            }
            Err(rc) => rc,
        }
    })
}

/// # Safety
/// `ao` live; `ch` valid (in use or not).
#[no_mangle]
pub unsafe extern "C" fn libxl__ev_child_kill_deregister(ao: *mut libxl__ao, ch: *mut libxl__ev_child, sig: c_int) {
    const ENTRY: &str = "libxl__ev_child_kill_deregister";
    // SAFETY: valid (this function's contract).
    if unsafe { (*ch).pid } < 0 {
        return;
    }
    // SAFETY: forwarded.
    let (x, id) = unsafe { ao_ref(ao, ENTRY) };
    // SAFETY: valid.
    let Some(t) = Token::from_usize(unsafe { (*ch).token }) else {
        eprintln!("libxl: fatal: {ENTRY}: ev_child {ch:p} has no core handle");
        std::process::abort();
    };
    entry_nested(ENTRY, &x.core, 0, |egc| egc.ev_child_kill_deregister(id, t, sig));
    // SAFETY: valid.
    unsafe { (*ch).pid = -1 };
}

/// In a child from `libxl__ev_child_fork`: a xenstore connection of its own.
///
/// # Safety
/// `gc` live; `what` NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn libxl__ev_child_xenstore_reopen(gc: *mut libxl__gc, what: *const c_char) -> c_int {
    const ENTRY: &str = "libxl__ev_child_xenstore_reopen";
    // SAFETY: forwarded.
    let x = unsafe { core_of_gc(gc, ENTRY) };
    // SAFETY: as above.
    let c = unsafe { gc_ctx(gc) };
    // SAFETY: a live ctx.
    if !unsafe { (*c).xsh }.is_null() {
        eprintln!("libxl: fatal: {ENTRY}: the ctx still has a xenstore connection (not in a forked child?)");
        std::process::abort();
    }
    // SAFETY: xs_open has no preconditions.
    let xsh = unsafe { xs_open(0) };
    if xsh.is_null() {
        // SAFETY: NUL-terminated (this function's contract).
        let w = unsafe { CStr::from_ptr(what) }.to_string_lossy();
        crate::xl_log_errno!(&x.core, Error, std::io::Error::last_os_error().raw_os_error().unwrap_or(0), "{w}: xenstore reopen failed");
        return ERROR_FAIL;
    }
    // SAFETY: a live ctx; the handle is now its own.
    unsafe { (*c).xsh = xsh };
    // SAFETY: an open handle; a live ctx.
    unsafe { libxl_fd_set_cloexec(c.cast(), xs_fileno(xsh), 1) };
    0
}

/// # Safety
/// `gc` live.
#[no_mangle]
pub unsafe extern "C" fn libxl__sigchld_needed(gc: *mut libxl__gc) -> c_int {
    const ENTRY: &str = "libxl__sigchld_needed";
    // SAFETY: forwarded.
    let x = unsafe { core_of_gc(gc, ENTRY) };
    entry_nested(ENTRY, &x.core, 0, |egc| match egc.sigchld_needed() {
        Ok(()) => 0,
        Err(rc) => rc,
    })
}

/// Idempotent; nothing to do once the core is gone (`libxl_ctx_free`
/// calls this after disposing of its pollers).
///
/// # Safety
/// `gc` live.
#[no_mangle]
pub unsafe extern "C" fn libxl__sigchld_notneeded(gc: *mut libxl__gc) {
    // SAFETY: a live gc's ctx.
    let Some(x) = (unsafe { core_of(gc_ctx(gc)) }) else { return };
    entry_nested("libxl__sigchld_notneeded", &x.core, 0, |egc| egc.sigchld_notneeded());
}

/// Registers the atfork handlers that keep careful fds from being copied
/// unmarked into a child.
///
/// # Safety
/// None beyond C's: `ctx` is unused.
#[no_mangle]
pub unsafe extern "C" fn libxl__atfork_init(_ctx: *mut libxl_ctx) -> c_int {
    drop(crate::sys::atfork::lock());
    0
}

#[no_mangle]
pub extern "C" fn libxl__carefd_begin() {
    carefd::begin();
}

/// # Safety
/// This thread called `libxl__carefd_begin`.
#[no_mangle]
pub unsafe extern "C" fn libxl__carefd_unlock() {
    // SAFETY: forwarded (this function's contract).
    unsafe { carefd::unlock() };
}

/// # Safety
/// Inside `libxl__carefd_begin`; `fd` open.
#[no_mangle]
pub unsafe extern "C" fn libxl__carefd_record(_ctx: *mut libxl_ctx, fd: c_int) -> *mut Carefd {
    carefd::record(fd)
}

/// Records `fd` (if >= 0) and ends `libxl__carefd_begin`; errno is kept.
///
/// # Safety
/// Inside `libxl__carefd_begin`.
#[no_mangle]
pub unsafe extern "C" fn libxl__carefd_opened(_ctx: *mut libxl_ctx, fd: c_int) -> *mut Carefd {
    let saved = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    let cf = if fd >= 0 { carefd::record(fd) } else { std::ptr::null_mut() };
    // SAFETY: inside begin (this function's contract).
    unsafe { carefd::unlock() };
    // SAFETY: restoring this thread's errno.
    unsafe { *libc::__errno_location() = saved };
    cf
}

/// Closes and frees `cf` (NULL: nothing); returns close(2)'s result, errno
/// as close left it.
///
/// # Safety
/// `cf` NULL or from `libxl__carefd_record/opened`, not used again.
#[no_mangle]
pub unsafe extern "C" fn libxl__carefd_close(cf: *mut Carefd) -> c_int {
    if cf.is_null() {
        return 0;
    }
    // SAFETY: forwarded (this function's contract).
    match unsafe { carefd::close(cf) } {
        Ok(()) => 0,
        Err(e) => {
            // SAFETY: setting this thread's errno, as close(2) did.
            unsafe { *libc::__errno_location() = e.raw_os_error().unwrap_or(0) };
            -1
        }
    }
}

/// # Safety
/// `cf` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn libxl__carefd_fd(cf: *const Carefd) -> c_int {
    // SAFETY: NULL or live (this function's contract).
    unsafe { cf.as_ref() }.map_or(-1, |c| c.fd)
}

/// # Safety
/// `fds` points to two ints.
#[no_mangle]
pub unsafe extern "C" fn libxl__pipe_close(fds: *mut c_int) {
    for i in 0..2 {
        // SAFETY: two ints (this function's contract).
        let fd = unsafe { fds.add(i) };
        // SAFETY: as above.
        if unsafe { *fd } >= 0 {
            // SAFETY: the caller's own fd, closed once and forgotten.
            unsafe { libc::close(*fd) };
        }
        // SAFETY: as above.
        unsafe { *fd = -1 };
    }
}

fn errno() -> c_int {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Writes one byte to a non-blocking self-pipe (a full pipe is already a
/// wakeup); 0 or an errno value. Async-signal-safe.
#[no_mangle]
pub extern "C" fn libxl__self_pipe_wakeup(fd: c_int) -> c_int {
    loop {
        // SAFETY: writing one byte from a static buffer.
        let r = unsafe { libc::write(fd, [0u8].as_ptr().cast(), 1) };
        if r == 1 {
            return 0;
        }
        match errno() {
            libc::EINTR => continue,
            libc::EAGAIN => return 0,
            e => return e,
        }
    }
}

/// Empties a non-blocking self-pipe; 0 or an errno value.
#[no_mangle]
pub extern "C" fn libxl__self_pipe_eatall(fd: c_int) -> c_int {
    let mut buf = [0u8; 256];
    loop {
        // SAFETY: reading into a live local buffer of its length.
        let r = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if r == buf.len() as isize {
            continue;
        }
        if r >= 0 {
            return 0;
        }
        match errno() {
            libc::EINTR => continue,
            libc::EAGAIN => return 0,
            e => return e,
        }
    }
}
