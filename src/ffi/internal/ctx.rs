//! The seam between Xen's C ctx and the core: where the core lives, when it
//! is made and freed, and the C egc the core's callbacks into C get.
//!
//! Xen's `libxl.c` allocates `struct libxl__ctx`, initialises its lock (a
//! recursive mutex) and its event fields, and calls `libxl__poller_get`
//! once, for `ctx->poller_app`. That call makes the core: a [`XenCtx`]
//! whose state is guarded by the C ctx's own `lock` (one lock: C's
//! `CTX_LOCK` and the core's egc take levels of the same mutex), kept in a
//! field of the C ctx that only Xen's event core used (`core`, see
//! `layout`). `libxl_ctx_free` gives the poller back (`libxl__poller_put`)
//! and disposes of it (`libxl__poller_dispose`): that frees the core, after
//! everything C still had registered has been released.
//!
//! Invariants:
//! * A C ctx has a core from its `poller_app` until that poller is
//!   disposed of; the internal API on a ctx without one is a caller bug,
//!   reported (fatal) rather than followed into freed memory.
//! * The Xen-specific state ([`XenState`]: watch slots, event-channel
//!   waiters) is guarded by the same mutex as the core's.
//! * Each C callback the core makes gets a C egc whose gc holds what the
//!   callback allocates; it is freed when the callbacks of that round are
//!   done (the core's egc attachment), as libxl frees its egc's gc.

use std::ffi::c_void;

use super::layout::{libxl__ctx, libxl__egc, libxl__gc, libxl__poller, Link2};
use super::xenlibs::libxl__free_all;
use crate::egc::{Ctx, Egc};
use crate::ffi::types::libxl_ctx;
use crate::sys::lock::Locked;

/// The core of one C ctx, and the Xen-specific state beside it.
pub struct XenCtx {
    pub core: Ctx,
    pub xen: Locked<XenState>,
    /// The shell given to C as `ctx->poller_app`.
    app_shell: usize,
}

/// What the core keeps for Xen's own event sources.
#[derive(Default)]
pub struct XenState {
    pub watches: crate::reg::watch::Watches,
    /// The waiting `libxl__ev_evtchn`s (addresses), oldest first.
    pub evtchn_waiters: Vec<usize>,
}

/// The C ctx a gc belongs to.
///
/// # Safety
/// `gc` is a live libxl gc (its `owner` is a live C ctx).
pub unsafe fn gc_ctx(gc: *mut libxl__gc) -> *mut libxl__ctx {
    // SAFETY: a live gc (this function's contract).
    unsafe { (*gc).owner.cast() }
}

/// The core of C ctx `c`, if it has one.
///
/// # Safety
/// `c` is NULL or a live C ctx (from `libxl_ctx_alloc`).
pub unsafe fn core_of<'a>(c: *mut libxl__ctx) -> Option<&'a XenCtx> {
    if c.is_null() {
        return None;
    }
    // SAFETY: a live C ctx (this function's contract).
    let p = unsafe { (*c).core }.cast::<XenCtx>();
    // SAFETY: `core` is NULL or the XenCtx made by `libxl__poller_get`,
    // live until `libxl__poller_dispose` clears the field.
    unsafe { p.as_ref() }
}

/// The core of the C ctx a gc belongs to; a ctx without one is fatal.
///
/// # Safety
/// As for [`gc_ctx`].
pub unsafe fn core_of_gc<'a>(gc: *mut libxl__gc, entry: &str) -> &'a XenCtx {
    // SAFETY: forwarded (this function's contract).
    let c = unsafe { gc_ctx(gc) };
    // SAFETY: as above.
    match unsafe { core_of(c) } {
        Some(x) => x,
        None => {
            eprintln!("libxl: fatal: {entry} on a libxl ctx without an event core (freed, or never made)");
            std::process::abort();
        }
    }
}

/// The C egc the callbacks of `egc`'s current round get (see the module
/// doc): made on first use, freed with the round.
pub fn c_egc(egc: &mut Egc<'_>) -> *mut libxl__egc {
    let host = egc.ctx.host as *mut libxl_ctx;
    let e = egc.attachment(|| CEgc::new(host));
    &mut *e.0
}

/// A C `libxl__egc` on the heap (its list heads point into itself).
struct CEgc(Box<libxl__egc>);

impl CEgc {
    fn new(ctx: *mut libxl_ctx) -> CEgc {
        let none = Link2 { a: std::ptr::null_mut(), b: std::ptr::null_mut() };
        let mut e = Box::new(libxl__egc {
            gc: libxl__gc { alloc_maxsize: 0, alloc_ptrs: std::ptr::null_mut(), owner: ctx },
            occurred_for_callback: none,
            aos_for_callback: none,
            aops_for_callback: none,
            ev_immediates: none,
        });
        // As LIBXL_INIT_EGC: each empty list's "last" points at its "first".
        for l in [&mut e.occurred_for_callback, &mut e.aos_for_callback, &mut e.aops_for_callback, &mut e.ev_immediates] {
            l.b = std::ptr::addr_of_mut!(l.a).cast();
        }
        CEgc(e)
    }
}

impl Drop for CEgc {
    fn drop(&mut self) {
        // SAFETY: our own gc, initialised in `new`; C code allocated into
        // it with libxl's allocators; freed once, here.
        unsafe { libxl__free_all(&mut self.0.gc) };
    }
}

/// Makes the core of C ctx `c` (its first `libxl__poller_get`) and
/// returns the shell that stands for the application's poller.
///
/// # Safety
/// `c` is a live C ctx whose `lock` is initialised, and that has no core.
pub unsafe fn make_core(c: *mut libxl__ctx) -> Result<*mut libxl__poller, std::io::Error> {
    // SAFETY: a live C ctx (this function's contract).
    let lg = unsafe { (*c).lg };
    // SAFETY: as above; the mutex lives in the C ctx, which outlives the
    // core (freed in libxl__poller_dispose, before libxl.c destroys the
    // mutex and frees the ctx).
    let lock = unsafe { std::ptr::addr_of_mut!((*c).lock) };
    let core = Ctx::with_lock(crate::ffi::log::logger_for(lg), c as usize, |st| {
        // SAFETY: as above: initialised (libxl.c, before poller_get),
        // recursive, and alive for as long as the core.
        Ok(unsafe { Locked::with_mutex(lock, st) })
    })?;
    // SAFETY: as above.
    let xen = unsafe { Locked::with_mutex(lock, XenState::default()) };
    // SAFETY: calloc has no preconditions; checked below.
    let shell = unsafe { libc::calloc(1, std::mem::size_of::<libxl__poller>()) }.cast::<libxl__poller>();
    if shell.is_null() {
        return Err(std::io::Error::from_raw_os_error(libc::ENOMEM));
    }
    // SAFETY: a fresh, zeroed allocation of the right size.
    unsafe { (*shell).ctx = c };
    let x = Box::new(XenCtx { core, xen, app_shell: shell as usize });
    crate::xl_log!(&x.core, Debug, "libxl ctx {c:p}: event core ready");
    // SAFETY: a live C ctx; `core` is ours to write.
    unsafe { (*c).core = Box::into_raw(x).cast::<c_void>() };
    Ok(shell)
}

/// Frees the core of the C ctx whose application-poller shell this is
/// (`libxl__poller_dispose` of it, from `libxl_ctx_free`); other shells
/// have nothing to free.
///
/// # Safety
/// `p` is a shell made here, not yet disposed of.
pub unsafe fn dispose_shell(p: *mut libxl__poller) {
    // SAFETY: a live shell (this function's contract).
    let c = unsafe { (*p).ctx };
    // SAFETY: the shell's ctx is live (libxl_ctx_free disposes of pollers
    // before freeing it).
    let Some(x) = (unsafe { core_of(c) }) else { return };
    if x.app_shell != p as usize {
        return;
    }
    Egc::new(&x.core, "libxl_ctx_free").ctx_teardown();
    // SAFETY: a live C ctx; the core is detached before it is freed.
    let raw = unsafe { std::mem::replace(&mut (*c).core, std::ptr::null_mut()) };
    // SAFETY: made by Box::into_raw in make_core; detached above, so freed
    // exactly once.
    drop(unsafe { Box::from_raw(raw.cast::<XenCtx>()) });
}
