//! The C ctx pointer to the core's ctx: the one unsafe step every public
//! entry point shares, and the seam between the two builds: in the
//! standalone library a `libxl_ctx *` is our own `Ctx`; inside Xen's libxl
//! it is libxl.c's `struct libxl__ctx`, whose core hangs off it
//! (`internal::ctx`).

use super::types::libxl_ctx;
use crate::egc::Ctx;

/// Turns the C ctx pointer into our ctx.
///
/// # Safety
/// `ctx` must be NULL or a pointer returned by `libxl_ctx_alloc` and not
/// yet passed to `libxl_ctx_free`.
#[cfg(not(feature = "xen"))]
pub unsafe fn ctx_ref<'a>(ctx: *mut libxl_ctx) -> Option<&'a Ctx> {
    // SAFETY: by this function's contract a non-NULL `ctx` is a live
    // `Box<Ctx>` leaked by libxl_ctx_alloc.
    unsafe { ctx.cast::<Ctx>().as_ref() }
}

/// Inside Xen's libxl the C ctx is libxl.c's `struct libxl__ctx`; its core
/// hangs off it (see `internal::ctx`). A ctx whose core is gone (or was
/// never made) is treated as NULL.
///
/// # Safety
/// `ctx` must be NULL or a live C ctx from `libxl_ctx_alloc`.
#[cfg(feature = "xen")]
pub unsafe fn ctx_ref<'a>(ctx: *mut libxl_ctx) -> Option<&'a Ctx> {
    // SAFETY: forwarded (this function's contract).
    unsafe { super::internal::ctx::core_of(ctx.cast()) }.map(|x| &x.core)
}

