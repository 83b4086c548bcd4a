//! `libxl_ctx_alloc` and `libxl_ctx_free`.

use std::collections::HashSet;
use std::ffi::{c_int, c_uint};

use parking_lot::Mutex;

use super::boundary::{entry_ctx};
use super::ctxref::ctx_ref;
use super::types::{libxl_ctx, xentoollog_logger};
use crate::egc::{Ctx, Egc};
use crate::rc::{ERROR_FAIL, ERROR_INVAL, ERROR_VERSION};

/// Addresses of live ctxs, so a double `libxl_ctx_free` is refused.
static LIVE: Mutex<Option<HashSet<usize>>> = Mutex::new(None);

/// `LIBXL_VERSION`.
const LIBXL_VERSION: c_int = 0;

/// # Safety
/// `pctx` must be NULL or writable; `lg` NULL or a logger that outlives
/// the ctx.
#[cfg(not(feature = "xen"))]
#[no_mangle]
pub unsafe extern "C" fn libxl_ctx_alloc(
    pctx: *mut *mut libxl_ctx,
    version: c_int,
    flags: c_uint,
    lg: *mut xentoollog_logger,
) -> c_int {
    let logger = super::log::logger_for(lg);
    let refuse = |why: std::fmt::Arguments<'_>, rc| {
        logger.log(crate::log::Level::Error, -1, format_args!("libxl_ctx_alloc: {why}"));
        rc
    };
    if pctx.is_null() {
        return refuse(format_args!("invalid argument pctx: NULL"), ERROR_INVAL);
    }
    if version != LIBXL_VERSION {
        return refuse(format_args!("version {version} is not LIBXL_VERSION ({LIBXL_VERSION})"), ERROR_VERSION);
    }
    if flags != 0 {
        return refuse(format_args!("invalid argument flags: {flags:#x} (no flags are defined)"), ERROR_INVAL);
    }
    let ctx = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || Ctx::new(logger))) {
        Ok(Ok(c)) => Box::new(c),
        Ok(Err(e)) => {
            let l = super::log::logger_for(lg);
            l.log(crate::log::Level::Error, e.raw_os_error().unwrap_or(-1), format_args!("libxl_ctx_alloc: cannot create the application poller"));
            return ERROR_FAIL;
        }
        Err(_) => return ERROR_FAIL,
    };
    crate::xl_log!(&ctx, Debug, "libxl_ctx_alloc: ctx {:p} ready", &*ctx);
    let p = Box::into_raw(ctx);
    LIVE.lock().get_or_insert_with(HashSet::new).insert(p as usize);
    // SAFETY: `pctx` was checked non-NULL and the caller promises it is writable.
    unsafe { *pctx = p.cast() };
    0
}

/// # Safety
/// `ctx` must be NULL or a ctx from `libxl_ctx_alloc` (a second free of the
/// same pointer is detected and refused while no new ctx reuses the address).
#[cfg(not(feature = "xen"))]
#[no_mangle]
pub unsafe extern "C" fn libxl_ctx_free(ctx: *mut libxl_ctx) -> c_int {
    const ENTRY: &str = "libxl_ctx_free";
    if ctx.is_null() {
        return 0;
    }
    if !LIVE.lock().as_ref().is_some_and(|s| s.contains(&(ctx as usize))) {
        eprintln!("libxl: error: {ENTRY}: {ctx:p} is not a live libxl ctx (freed twice?); ignored");
        return ERROR_INVAL;
    }
    // SAFETY: `ctx` is in the live set, so it is a live leaked Box<Ctx>.
    let c = unsafe { ctx_ref(ctx) };
    let rc = entry_ctx(ENTRY, c, |c| {
        super::boundary::check_free_alone(c, ENTRY);
        Egc::new(c, ENTRY).ctx_teardown();
        0
    });
    if rc != 0 {
        // The teardown panicked (reported): leave the ctx allocated rather
        // than free what may still be in use.
        return rc;
    }
    {
        let mut live = LIVE.lock();
        if let Some(s) = live.as_mut() {
            s.remove(&(ctx as usize));
            if s.is_empty() {
                *live = None; // nothing left allocated once every ctx is gone
            }
        }
    }
    // SAFETY: the pointer came from Box::into_raw in libxl_ctx_alloc and is
    // removed from the live set, so it is freed exactly once.
    drop(unsafe { Box::from_raw(ctx.cast::<Ctx>()) });
    0
}
