//! The test operations' C entry points: `libxl_test_fdevent`,
//! `libxl_test_timedereg` (Xen's), `libxl_test_progress`,
//! `libxl_test_fdmodify`, `libxl_test_fdchain`, `libxl_test_timeout` and
//! `libxl_test_childproc` (ours).

use std::ffi::{c_char, c_int, c_short, CStr};

use super::ao::{ao_how, aop_how};
use super::boundary::{entry};
use super::ctxref::ctx_ref;
use super::types::{libxl_asyncop_how, libxl_asyncprogress_how, libxl_ctx};
use super::SendPtr;
use crate::check_arg;
use crate::egc::Egc;
use crate::sys;
use crate::sys::process::ExecPlan;
use crate::testops;

/// Poll bits an fd operation may ask for.
const KNOWN_EVENTS: c_short = (libc::POLLIN
    | libc::POLLPRI
    | libc::POLLOUT
    | libc::POLLRDNORM
    | libc::POLLRDBAND
    | libc::POLLWRNORM
    | libc::POLLWRBAND
    | libc::POLLRDHUP) as c_short;

/// # Safety
/// `ctx` live; `ao_how` NULL or valid for reads.
#[no_mangle]
pub unsafe extern "C" fn libxl_test_fdevent(
    ctx: *mut libxl_ctx,
    fd: c_int,
    events: c_short,
    ao_how_c: *mut libxl_asyncop_how,
) -> c_int {
    const ENTRY: &str = "libxl_test_fdevent";
    // SAFETY: the caller passes NULL or a live ctx (this function's contract).
    let c = unsafe { ctx_ref(ctx) };
    // SAFETY: `ao_how` is NULL or valid for reads (this function's contract).
    let how = unsafe { ao_how(ctx, ao_how_c) };
    entry(ENTRY, c, |egc| {
        // Synchronous on poll sets: whether the fd is open is told by the
        // poll the call makes anyway (POLLNVAL), not by a syscall of its own.
        let lazy = matches!(how, crate::reg::ao::AoHow::Sync) && egc.fd_check_can_wait();
        match check_fd_args(egc, ENTRY, fd, !lazy, &[("events", events)]) {
            0 => testops::fdevent::test_fdevent(egc, fd, events, how, lazy),
            rc => rc,
        }
    })
}

/// # Safety
/// `ctx` live; `ao_how` NULL or valid for reads.
#[no_mangle]
pub unsafe extern "C" fn libxl_test_fdmodify(
    ctx: *mut libxl_ctx,
    fd: c_int,
    events1: c_short,
    events2: c_short,
    ao_how_c: *const libxl_asyncop_how,
) -> c_int {
    const ENTRY: &str = "libxl_test_fdmodify";
    // SAFETY: the caller passes NULL or a live ctx (this function's contract).
    let c = unsafe { ctx_ref(ctx) };
    // SAFETY: `ao_how` is NULL or valid for reads (this function's contract).
    let how = unsafe { ao_how(ctx, ao_how_c) };
    entry(ENTRY, c, |egc| match check_fd_args(egc, ENTRY, fd, true, &[("events1", events1), ("events2", events2)]) {
        0 => testops::fdmodify::test_fdmodify(egc, fd, events1, events2, how),
        rc => rc,
    })
}

/// The checks every fd test operation makes: `fd` open (if `open`; else
/// the operation finds out), only known poll bits in each named events
/// argument. `ERROR_INVAL` (logged) or 0.
fn check_fd_args(egc: &mut Egc<'_>, entry: &str, fd: c_int, open: bool, events: &[(&str, c_short)]) -> c_int {
    check_arg!(egc, fd >= 0, entry, "fd", format!("{fd} is negative"));
    check_arg!(egc, !open || sys::poll::fd_is_open(fd), entry, "fd", format!("{fd} is not an open file descriptor"));
    for &(name, ev) in events {
        check_arg!(egc, ev & !KNOWN_EVENTS == 0, entry, name, format!("{ev:#x} has unknown poll bits"));
    }
    0
}

/// # Safety
/// `ctx` live; `ao_how` NULL or valid for reads.
#[no_mangle]
pub unsafe extern "C" fn libxl_test_timedereg(ctx: *mut libxl_ctx, ao_how_c: *mut libxl_asyncop_how) -> c_int {
    // SAFETY: the caller passes NULL or a live ctx (this function's contract).
    let c = unsafe { ctx_ref(ctx) };
    // SAFETY: `ao_how` is NULL or valid for reads (this function's contract).
    let how = unsafe { ao_how(ctx, ao_how_c) };
    entry("libxl_test_timedereg", c, |egc| testops::timedereg::test_timedereg(egc, how))
}

/// # Safety
/// `ctx` live; `aop_how`, `ao_how` NULL or valid for reads.
#[no_mangle]
pub unsafe extern "C" fn libxl_test_progress(
    ctx: *mut libxl_ctx,
    count: c_int,
    interval_ms: c_int,
    aop_how_c: *const libxl_asyncprogress_how,
    ao_how_c: *const libxl_asyncop_how,
) -> c_int {
    const ENTRY: &str = "libxl_test_progress";
    // SAFETY: the caller passes NULL or a live ctx (this function's contract).
    let c = unsafe { ctx_ref(ctx) };
    // SAFETY: `ao_how` is NULL or valid for reads (this function's contract).
    let how = unsafe { ao_how(ctx, ao_how_c) };
    // SAFETY: `aop_how` is NULL or valid for reads (this function's contract).
    let aop = unsafe { aop_how(ctx, aop_how_c) };
    entry(ENTRY, c, |egc| {
        check_arg!(egc, count >= 0, ENTRY, "count", format!("{count} is negative"));
        check_arg!(egc, interval_ms >= 0, ENTRY, "interval_ms", format!("{interval_ms} is negative"));
        testops::progress::test_progress(egc, count as u32, interval_ms, aop, how)
    })
}

/// # Safety
/// `ctx` live; `fds` valid for `nfds` reads; `ao_how` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn libxl_test_fdchain(
    ctx: *mut libxl_ctx,
    fds: *const c_int,
    nfds: c_int,
    ao_how_c: *mut libxl_asyncop_how,
) -> c_int {
    const ENTRY: &str = "libxl_test_fdchain";
    // SAFETY: the caller passes NULL or a live ctx (this function's contract).
    let c = unsafe { ctx_ref(ctx) };
    // SAFETY: `ao_how` is NULL or valid for reads (this function's contract).
    let how = unsafe { ao_how(ctx, ao_how_c) };
    entry(ENTRY, c, |egc| {
        check_arg!(egc, !fds.is_null(), ENTRY, "fds", "NULL");
        check_arg!(egc, nfds >= 1, ENTRY, "nfds", format!("{nfds} is less than 1"));
        // SAFETY: `fds` is non-NULL and valid for `nfds` reads (this
        // function's contract); copied now.
        let v = unsafe { std::slice::from_raw_parts(fds, nfds as usize) }.to_vec();
        if let Some(bad) = v.iter().find(|&&fd| !sys::poll::fd_is_open(fd)) {
            check_arg!(egc, false, ENTRY, "fds", format!("contains {bad}, not an open file descriptor"));
        }
        testops::fdchain::test_fdchain(egc, v, how)
    })
}

/// # Safety
/// `ctx` live; `ao_how` NULL or valid for reads.
#[no_mangle]
pub unsafe extern "C" fn libxl_test_timeout(ctx: *mut libxl_ctx, ms: c_int, ao_how_c: *const libxl_asyncop_how) -> c_int {
    const ENTRY: &str = "libxl_test_timeout";
    // SAFETY: the caller passes NULL or a live ctx (this function's contract).
    let c = unsafe { ctx_ref(ctx) };
    // SAFETY: `ao_how` is NULL or valid for reads (this function's contract).
    let how = unsafe { ao_how(ctx, ao_how_c) };
    entry(ENTRY, c, |egc| {
        check_arg!(egc, ms >= 0, ENTRY, "ms", format!("{ms} is negative"));
        testops::timeout::test_timeout(egc, ms, how)
    })
}

/// # Safety
/// `ctx` live; `argv` NULL or a NULL-terminated array of C strings;
/// `status_r` NULL or writable until the operation completes; `ao_how`
/// NULL or valid for reads.
#[no_mangle]
pub unsafe extern "C" fn libxl_test_childproc(
    ctx: *mut libxl_ctx,
    argv: *const *const c_char,
    timeout_ms: c_int,
    status_r: *mut c_int,
    ao_how_c: *mut libxl_asyncop_how,
) -> c_int {
    const ENTRY: &str = "libxl_test_childproc";
    // SAFETY: the caller passes NULL or a live ctx (this function's contract).
    let c = unsafe { ctx_ref(ctx) };
    // SAFETY: `ao_how` is NULL or valid for reads (this function's contract).
    let how = unsafe { ao_how(ctx, ao_how_c) };
    entry(ENTRY, c, |egc| {
        check_arg!(egc, !argv.is_null(), ENTRY, "argv", "NULL");
        check_arg!(egc, !status_r.is_null(), ENTRY, "status_r", "NULL");
        let mut args = Vec::new();
        for i in 0.. {
            // SAFETY: `argv` is non-NULL and NULL-terminated (this
            // function's contract): entries up to the terminator are readable.
            let a = unsafe { argv.add(i).read() };
            if a.is_null() {
                break;
            }
            // SAFETY: each entry before the terminator is a C string.
            args.push(unsafe { CStr::from_ptr(a) }.to_owned());
        }
        check_arg!(egc, !args.is_empty(), ENTRY, "argv", "empty (argv[0] is NULL)");
        let plan = ExecPlan::new(args).expect("argv[0] checked non-NULL");
        let out = SendPtr(status_r);
        // Written only when the operation succeeds, lock held, before its
        // completion is reported.
        // SAFETY: `status_r` is writable until the operation completes (this
        // function's contract), and this runs before it completes.
        let on_status = Box::new(move |status: c_int| unsafe { out.get().write(status) });
        testops::childproc::test_childproc(egc, plan, timeout_ms, on_status, how)
    })
}
