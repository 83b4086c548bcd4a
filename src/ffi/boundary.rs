//! The one boundary helper every entry point goes through.
//!
//! An entry point resolves its ctx pointer (`ctxref::ctx_ref`, the one
//! unsafe step every entry point shares) and hands the rest to [`entry`]:
//! `entry("libxl_foo", ctx, |egc| …)` refuses a NULL ctx (ERROR_INVAL and a
//! line on stderr, there being no logger to use), counts the thread as
//! inside the library (so `libxl_ctx_free` can detect use in progress),
//! takes the lock through an `Egc`, runs the body, and catches any panic so
//! that none crosses into C. A caught panic is logged CRITICAL and turned
//! into the return type's fallback ([`PanicOrDefault`]): `ERROR_FAIL` for
//! `int`; for `void`, a `disaster` report (the process exits if the
//! application registered no disaster hook). Nothing of the application's
//! runs while the panic unwinds (the egc's `Drop` checks).

use std::ffi::c_int;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;

use crate::egc::{Ctx, Egc};
use crate::rc::{ERROR_FAIL, ERROR_INVAL};

/// What an entry point returns when it cannot run its body.
pub trait PanicOrDefault: Sized {
    /// The ctx pointer was NULL.
    fn null_ctx() -> Self;
    /// The body panicked (already logged).
    fn panicked(ctx: &Ctx, entry: &str) -> Self;
}

impl PanicOrDefault for c_int {
    fn null_ctx() -> Self {
        ERROR_INVAL
    }
    fn panicked(_ctx: &Ctx, _entry: &str) -> Self {
        ERROR_FAIL
    }
}

impl PanicOrDefault for () {
    fn null_ctx() -> Self {}
    fn panicked(ctx: &Ctx, entry: &str) -> Self {
        let r = catch_unwind(AssertUnwindSafe(|| {
            let mut egc = Egc::new(ctx, entry);
            egc.disaster(&format!("internal error in {entry}"), 0);
        }));
        if r.is_err() {
            std::process::abort();
        }
    }
}

impl<T> PanicOrDefault for *mut T {
    fn null_ctx() -> Self {
        std::ptr::null_mut()
    }
    fn panicked(_ctx: &Ctx, _entry: &str) -> Self {
        std::ptr::null_mut()
    }
}

/// Counts a thread inside the library for the life of the guard.
struct Inside<'a>(&'a Ctx);

impl<'a> Inside<'a> {
    fn enter(ctx: &'a Ctx) -> Inside<'a> {
        ctx.entered.fetch_add(1, Ordering::SeqCst);
        Inside(ctx)
    }
}

impl Drop for Inside<'_> {
    fn drop(&mut self) {
        self.0.entered.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Runs `body` with the ctx locked (see the module comment).
pub fn entry<R: PanicOrDefault>(name: &'static str, ctx: Option<&Ctx>, body: impl FnOnce(&mut Egc<'_>) -> R) -> R {
    entry_ctx(name, ctx, |ctx| {
        let mut egc = Egc::new(ctx, name);
        body(&mut egc)
    })
}

/// Like [`entry`] for libxl's internal C API, entered by C code of libxl
/// itself (often from inside a callback the core made): a nested egc
/// (see `egc`); `foreign` is how many levels of the lock the C caller
/// holds that a sleep in `body` must release too.
pub fn entry_nested<R: PanicOrDefault>(
    name: &'static str,
    ctx: &Ctx,
    foreign: u32,
    body: impl FnOnce(&mut Egc<'_>) -> R,
) -> R {
    entry_ctx(name, Some(ctx), |ctx| {
        let mut egc = Egc::nested(ctx, foreign);
        body(&mut egc)
    })
}

/// Like [`entry`] for bodies that manage the lock themselves.
pub fn entry_ctx<R: PanicOrDefault>(name: &'static str, ctx: Option<&Ctx>, body: impl FnOnce(&Ctx) -> R) -> R {
    let Some(ctx) = ctx else {
        eprintln!("libxl: error: {name}: ctx is NULL");
        return R::null_ctx();
    };
    let _inside = Inside::enter(ctx);
    match catch_unwind(AssertUnwindSafe(|| body(ctx))) {
        Ok(r) => r,
        Err(p) => {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            crate::xl_log!(ctx, Critical, "{name}: internal error (panic: {what})");
            R::panicked(ctx, name)
        }
    }
}

/// `libxl_ctx_free`'s precondition: no other thread inside the library for
/// this ctx, and not called from one of its callbacks (this call itself is
/// counted inside, by [`entry_ctx`]). Fatal misuse otherwise, reported.
pub fn check_free_alone(c: &Ctx, entry: &str) {
    let inside = c.threads_inside().saturating_sub(1);
    if inside > 0 || crate::egc::holds_lock(c) {
        c.fatal(&format!(
            "{entry} called while {inside} other thread(s) are inside libxl for this ctx \
             (an operation in progress on another thread, or a free from one of the ctx's own callbacks)"
        ));
    }
}

/// One early-return guard per precondition: logs which argument is bad and
/// why, and makes the entry point return `ERROR_INVAL`.
#[macro_export]
macro_rules! check_arg {
    ($egc:expr, $cond:expr, $entry:expr, $arg:expr, $why:expr) => {
        if !$cond {
            $crate::xl_log!($egc.ctx, Error, "{}: invalid argument {}: {}", $entry, $arg, $why);
            return $crate::rc::ERROR_INVAL;
        }
    };
}
