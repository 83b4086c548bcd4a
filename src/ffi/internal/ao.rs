//! libxl's internal ao API (`libxl__ao_*`, `libxl__nested_ao_*`, the egc
//! cleanups) on the core's aos.
//!
//! A C ao is a `libxl__ao` the core `calloc`s: C code allocates into its
//! `gc` and reads its `domid`; the core keeps its handle in the struct and
//! the struct with the core's ao (`AoExtra`), so the struct is freed —
//! `libxl__free_all(&ao->gc)` then `free` — exactly when the core frees
//! the ao (completion reported and no initiator or abort using it), or at
//! `libxl__ao_create_fail` / `libxl__nested_ao_free`.
//!
//! Invariants:
//! * An ao pointer C passes in is checked (magic, live handle); one that is
//!   not, or no longer, an ao is fatal (Xen asserts the same).
//! * `libxl__ao_inprogress` is entered with the ctx locked exactly once by
//!   C (`AO_INPROGRESS`): a synchronous ao's loop releases that level too
//!   while it sleeps.

use std::ffi::{c_char, c_int, CStr};
use std::sync::Arc;

use super::ctx::{c_egc, core_of, core_of_gc, gc_ctx, XenCtx};
use super::event::foreign_event;
use super::layout::{libxl__ao, libxl__ao_abortable, libxl__ctx, libxl__egc, libxl__gc, LIBXL__AO_MAGIC, LIBXL__AO_MAGIC_DESTROYED};
use super::xenlibs::libxl__free_all;
use crate::egc::Egc;
use crate::ffi::boundary::entry_nested;
use crate::ffi::types::{libxl_asyncop_how, libxl_asyncprogress_how, libxl_ctx, libxl_event};
use crate::ffi::SendPtr;
use crate::rc::Rc;
use crate::reg::ao::{AopHow, Phase};
use crate::reg::event::Event;
use crate::reg::foreign::Foreign;
use crate::reg::AoId;
use crate::token::Token;

fn fatal(entry: &str, what: std::fmt::Arguments<'_>) -> ! {
    eprintln!("libxl: fatal: {entry}: {what}");
    std::process::abort();
}

/// The core and handle of a C ao.
///
/// # Safety
/// `ao` is NULL or points to memory that was a `libxl__ao` from this core.
pub(super) unsafe fn ao_ref<'a>(ao: *mut libxl__ao, entry: &str) -> (&'a XenCtx, AoId) {
    if ao.is_null() {
        fatal(entry, format_args!("ao is NULL"));
    }
    // SAFETY: as this function's contract says.
    let a = unsafe { &*ao };
    if a.magic != LIBXL__AO_MAGIC {
        fatal(entry, format_args!("ao {ao:p} is not a live ao (magic {:#x})", a.magic));
    }
    // SAFETY: a live ao's gc owner is its live C ctx.
    let x = unsafe { core_of(a.gc.owner.cast()) }.unwrap_or_else(|| fatal(entry, format_args!("ao {ao:p}'s ctx has no event core")));
    let id = Token::from_usize(a.token).unwrap_or_else(|| fatal(entry, format_args!("ao {ao:p} has no core handle")));
    (x, id)
}

/// Frees a C ao the core no longer has (its `AoExtra`'s free function).
fn free_c_ao(addr: usize) {
    let ao = addr as *mut libxl__ao;
    // SAFETY: `addr` is a `libxl__ao` this module calloc'd and attached to
    // exactly one core ao, which the core frees exactly once.
    let a = unsafe { &mut *ao };
    a.magic = LIBXL__AO_MAGIC_DESTROYED;
    // SAFETY: its gc, initialised at creation; C allocated into it with
    // libxl's allocators.
    unsafe { libxl__free_all(&mut a.gc) };
    // SAFETY: calloc'd by this module; freed once (above).
    unsafe { libc::free(ao.cast()) };
}

/// A zeroed C ao for ctx `c`, with its gc set up, attached to core ao
/// `id` (NULL and nothing attached if out of memory).
fn new_c_ao(egc: &mut Egc<'_>, c: *mut libxl_ctx, id: AoId, domid: u32) -> *mut libxl__ao {
    // SAFETY: calloc has no preconditions; checked below.
    let ao = unsafe { libc::calloc(1, std::mem::size_of::<libxl__ao>()) }.cast::<libxl__ao>();
    if ao.is_null() {
        return ao;
    }
    // SAFETY: a fresh zeroed allocation of the right size and alignment;
    // all-zero is a valid libxl__ao.
    let a = unsafe { &mut *ao };
    a.magic = LIBXL__AO_MAGIC;
    a.gc.owner = c;
    a.domid = domid;
    a.token = id.to_usize();
    egc.ao_attach(id, Some(Foreign::new(ao as usize, free_c_ao)));
    ao
}

fn c_str(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: a non-NULL __FILE__/__func__ string from C.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// # Safety
/// `ctx` a live C ctx, locked by the caller; `how` NULL or readable.
#[no_mangle]
pub unsafe extern "C" fn libxl__ao_create(
    ctx: *mut libxl_ctx,
    domid: u32,
    how: *const libxl_asyncop_how,
    file: *const c_char,
    line: c_int,
    func: *const c_char,
) -> *mut libxl__ao {
    const ENTRY: &str = "libxl__ao_create";
    // SAFETY: a live C ctx (this function's contract).
    let Some(x) = (unsafe { core_of(ctx.cast::<libxl__ctx>()) }) else { fatal(ENTRY, format_args!("ctx has no event core")) };
    // SAFETY: `how` NULL or readable; copied now (libxl copies `*how`).
    let core_how = unsafe { crate::ffi::ao::ao_how(ctx, how) };
    entry_nested(ENTRY, &x.core, 0, |egc| {
        let id = match egc.ao_create(core_how, domid) {
            Ok(id) => id,
            Err(_) => return std::ptr::null_mut(),
        };
        let ao = new_c_ao(egc, ctx, id, domid);
        if ao.is_null() {
            crate::xl_log!(egc.ctx, Error, "{ENTRY}: out of memory");
            egc.ao_create_fail(id);
            return ao;
        }
        // SAFETY: `how` NULL or readable (as above); `ao` is ours.
        if let Some(h) = unsafe { how.as_ref() } {
            // SAFETY: our fresh ao.
            unsafe { (*ao).how = *h };
        }
        crate::xl_log!(egc.ctx, Debug, "ao {id}: C ao {ao:p} for {}:{line} {}() domid={domid}", c_str(file), c_str(func));
        ao
    })
}

/// # Safety
/// `ao` a live ao in its initiator; the ctx locked exactly once by C.
#[no_mangle]
pub unsafe extern "C" fn libxl__ao_inprogress(
    ao: *mut libxl__ao,
    _file: *const c_char,
    _line: c_int,
    _func: *const c_char,
) -> c_int {
    const ENTRY: &str = "libxl__ao_inprogress";
    // SAFETY: forwarded (this function's contract).
    let (x, id) = unsafe { ao_ref(ao, ENTRY) };
    // The C ao may be freed by the time this returns: not touched after.
    entry_nested(ENTRY, &x.core, 1, |egc| egc.ao_inprogress(id))
}

/// # Safety
/// `ao` a live ao in its initiator, not yet in progress.
#[no_mangle]
pub unsafe extern "C" fn libxl__ao_create_fail(ao: *mut libxl__ao) {
    const ENTRY: &str = "libxl__ao_create_fail";
    // SAFETY: forwarded.
    let (x, id) = unsafe { ao_ref(ao, ENTRY) };
    entry_nested(ENTRY, &x.core, 0, |egc| {
        if egc.ao_phase(id) != Some(Phase::Running) {
            fatal(ENTRY, format_args!("ao {ao:p} already completed"));
        }
        egc.ao_create_fail(id)
    })
}

/// # Safety
/// `ao` a live ao, not yet complete; the ctx locked.
#[no_mangle]
pub unsafe extern "C" fn libxl__ao_complete(_egc: *mut libxl__egc, ao: *mut libxl__ao, rc: c_int) {
    const ENTRY: &str = "libxl__ao_complete";
    // SAFETY: forwarded.
    let (x, id) = unsafe { ao_ref(ao, ENTRY) };
    entry_nested(ENTRY, &x.core, 0, |egc| {
        if egc.ao_phase(id) != Some(Phase::Running) {
            fatal(ENTRY, format_args!("ao {ao:p} completed twice"));
        }
        egc.ao_complete(id, rc)
    })
}

/// # Safety
/// `ao` a live ao, not yet complete.
#[no_mangle]
pub unsafe extern "C" fn libxl__ao_inprogress_gc(ao: *mut libxl__ao) -> *mut libxl__gc {
    const ENTRY: &str = "libxl__ao_inprogress_gc";
    // SAFETY: forwarded.
    let (x, id) = unsafe { ao_ref(ao, ENTRY) };
    let running = entry_nested(ENTRY, &x.core, 0, |egc| c_int::from(egc.ao_phase(id) == Some(Phase::Running)));
    if running != 1 {
        fatal(ENTRY, format_args!("ao {ao:p} is already complete (STATE_AO_GC after libxl__ao_complete)"));
    }
    // SAFETY: a live ao (checked); its gc lives as long as it does.
    unsafe { std::ptr::addr_of_mut!((*ao).gc) }
}

/// # Safety
/// `ao` a live ao.
#[no_mangle]
pub unsafe extern "C" fn libxl__ao_aborting(ao: *mut libxl__ao) -> c_int {
    const ENTRY: &str = "libxl__ao_aborting";
    // SAFETY: forwarded.
    let (x, id) = unsafe { ao_ref(ao, ENTRY) };
    entry_nested(ENTRY, &x.core, 0, |egc| egc.ao_aborting(id))
}

/// An abortable's callback: C's, with the struct it registered.
fn abortable_fire(egc: &mut Egc<'_>, rc: Rc, data: u64) {
    let abrt = data as usize as *mut libxl__ao_abortable;
    // SAFETY: `data` is the registered struct, live while registered (C
    // deregisters before freeing); the core runs this once, deregistered.
    unsafe { (*abrt).registered = false };
    // SAFETY: as above.
    let Some(cb) = (unsafe { (*abrt).callback }) else { return };
    let ce = c_egc(egc);
    egc.release_state();
    // SAFETY: C's callback with the egc and struct it expects.
    unsafe { cb(ce, abrt, rc) };
}

/// # Safety
/// `abrt` valid, with `ao` and `callback` filled in; the ctx locked.
#[no_mangle]
pub unsafe extern "C" fn libxl__ao_abortable_register(abrt: *mut libxl__ao_abortable) -> c_int {
    const ENTRY: &str = "libxl__ao_abortable_register";
    // SAFETY: valid (this function's contract).
    let a = unsafe { &mut *abrt };
    // SAFETY: forwarded: `ao` filled in by the caller.
    let (x, id) = unsafe { ao_ref(a.ao, ENTRY) };
    entry_nested(ENTRY, &x.core, 0, |egc| match egc.ao_abortable_register_unowned(id, abortable_fire, abrt as usize as u64) {
        Ok(t) => {
            a.token = t.to_usize();
            a.registered = true;
            0
        }
        Err(rc) => rc,
    })
}

/// # Safety
/// `abrt` valid (registered, or initialised with `_init`).
#[no_mangle]
pub unsafe extern "C" fn libxl__ao_abortable_deregister(abrt: *mut libxl__ao_abortable) {
    const ENTRY: &str = "libxl__ao_abortable_deregister";
    // SAFETY: valid (this function's contract).
    let a = unsafe { &mut *abrt };
    if !a.registered {
        return;
    }
    // SAFETY: a registered abortable's ao is live.
    let (x, _) = unsafe { ao_ref(a.ao, ENTRY) };
    let Some(t) = Token::from_usize(a.token) else { fatal(ENTRY, format_args!("abortable {abrt:p} has no core handle")) };
    entry_nested(ENTRY, &x.core, 0, |egc| egc.ao_abortable_deregister(t));
    a.registered = false;
}

/// # Safety
/// `parent` a live ao; the ctx locked.
#[no_mangle]
pub unsafe extern "C" fn libxl__nested_ao_create(parent: *mut libxl__ao) -> *mut libxl__ao {
    const ENTRY: &str = "libxl__nested_ao_create";
    // SAFETY: forwarded.
    let (x, pid) = unsafe { ao_ref(parent, ENTRY) };
    // SAFETY: checked live above.
    let ctx = unsafe { (*parent).gc.owner };
    entry_nested(ENTRY, &x.core, 0, |egc| {
        let id = egc.nested_ao_create(pid);
        let ao = new_c_ao(egc, ctx, id, 0);
        if ao.is_null() {
            // libxl's allocators give up the same way on no memory.
            fatal(ENTRY, format_args!("out of memory"));
        }
        ao
    })
}

/// # Safety
/// `child` a live nested ao.
#[no_mangle]
pub unsafe extern "C" fn libxl__nested_ao_free(child: *mut libxl__ao) {
    const ENTRY: &str = "libxl__nested_ao_free";
    // SAFETY: forwarded.
    let (x, id) = unsafe { ao_ref(child, ENTRY) };
    entry_nested(ENTRY, &x.core, 0, |egc| {
        if !egc.ao_is_nested(id) {
            fatal(ENTRY, format_args!("ao {child:p} is not a nested ao"));
        }
        egc.nested_ao_free(id)
    })
}

/// The `callback` `libxl__ao_progress_gethow` records when the application
/// wants no progress reports: reports made with it are discarded.
unsafe extern "C" fn progress_ignored(_ctx: *mut libxl_ctx, _ev: *mut libxl_event, _user: *mut std::ffi::c_void) {}

/// # Safety
/// `in_state` writable; `from_app` NULL or readable.
#[no_mangle]
pub unsafe extern "C" fn libxl__ao_progress_gethow(in_state: *mut libxl_asyncprogress_how, from_app: *const libxl_asyncprogress_how) {
    // SAFETY: NULL or readable (this function's contract).
    let h = match unsafe { from_app.as_ref() } {
        Some(h) => *h,
        None => libxl_asyncprogress_how { callback: Some(progress_ignored), for_event: 0, for_callback: std::ptr::null_mut() },
    };
    // SAFETY: writable (this function's contract).
    unsafe { in_state.write(h) };
}

/// # Safety
/// `ao` a live top-level ao; `how` from `libxl__ao_progress_gethow`, valid
/// until the report is delivered; `ev` a C event from `libxl__event_new`,
/// now ours.
#[no_mangle]
pub unsafe extern "C" fn libxl__ao_progress_report(
    _egc: *mut libxl__egc,
    ao: *mut libxl__ao,
    how: *const libxl_asyncprogress_how,
    ev: *mut libxl_event,
) {
    const ENTRY: &str = "libxl__ao_progress_report";
    // SAFETY: forwarded.
    let (x, id) = unsafe { ao_ref(ao, ENTRY) };
    // SAFETY: a C event handed over (this function's contract).
    let event: Event = unsafe { foreign_event(ev) };
    // SAFETY: readable (this function's contract); copied now.
    let h = unsafe { *how };
    // SAFETY: as for `ao_ref` (checked live).
    let ctx = SendPtr(unsafe { (*ao).gc.owner });
    let aop = match h.callback {
        Some(cb) if cb as *const () == progress_ignored as *const () => AopHow::Discard,
        None => AopHow::ForEvent(event.for_user),
        Some(cb) => {
            let user = SendPtr(h.for_callback);
            AopHow::Callback {
                for_event: event.for_user,
                cb: Arc::new(move |ev: Event| {
                    let p = crate::ffi::event::to_c_heap(ev);
                    // SAFETY: the application's progress callback, with its
                    // ctx, its user pointer and an event it now owns.
                    unsafe { cb(ctx.get(), p, user.get()) }
                }),
            }
        }
    };
    entry_nested(ENTRY, &x.core, 0, |egc| {
        if egc.ao_is_nested(id) {
            fatal(ENTRY, format_args!("progress reported on nested ao {ao:p}"));
        }
        egc.ao_progress_report(id, &aop, event)
    })
}

/// Passes the baton (see `egc`): the C caller is about to leave libxl.
///
/// # Safety
/// `gc` a live gc of a ctx with a core; the ctx locked.
#[no_mangle]
pub unsafe extern "C" fn libxl__egc_ao_cleanup_1_baton(gc: *mut libxl__gc) {
    const ENTRY: &str = "libxl__egc_ao_cleanup_1_baton";
    // SAFETY: forwarded.
    let x = unsafe { core_of_gc(gc, ENTRY) };
    // The nested egc passes the baton when it goes.
    entry_nested(ENTRY, &x.core, 0, |_| ());
}

/// Runs what this thread deferred for the ctx (immediates, then the
/// application's callbacks, unlocked), then frees the egc's gc.
///
/// # Safety
/// `egc` a live C egc (`AO_CREATE`'s); the ctx not locked by this thread.
#[no_mangle]
pub unsafe extern "C" fn libxl__egc_cleanup_2_ul_cb_gc(egc: *mut libxl__egc) {
    const ENTRY: &str = "libxl__egc_cleanup_2_ul_cb_gc";
    // SAFETY: a live egc (this function's contract).
    let gc = unsafe { std::ptr::addr_of_mut!((*egc).gc) };
    // SAFETY: its gc belongs to a live ctx.
    let c = unsafe { gc_ctx(gc) };
    // SAFETY: as above.
    if let Some(x) = unsafe { core_of(c) } {
        crate::ffi::boundary::entry_ctx(ENTRY, Some(&x.core), Egc::run_deferred);
    }
    // SAFETY: the egc's own gc, freed once per use as libxl does.
    unsafe { libxl__free_all(gc) };
}
