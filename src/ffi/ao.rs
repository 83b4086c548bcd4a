//! `libxl_ao_abort` and the conversion of `libxl_asyncop_how` /
//! `libxl_asyncprogress_how` into core values.

use std::ffi::c_int;
use std::sync::Arc;

use super::boundary::{entry};
use super::ctxref::ctx_ref;
use super::types::{libxl_asyncop_how, libxl_asyncprogress_how, libxl_ctx};
use super::SendPtr;
use crate::reg::ao::{AbortKey, AoHow, AopHow};
use crate::reg::event::Event;

/// The abort key `how` names (NULL: the synchronous operation).
///
/// # Safety
/// `how` NULL or valid for reads.
pub unsafe fn abort_key(how: *const libxl_asyncop_how) -> AbortKey {
    // SAFETY: `how` is NULL or valid for reads (this function's contract).
    match unsafe { how.as_ref() } {
        None => AbortKey::SYNC,
        Some(h) => match h.callback {
            // SAFETY: both union members are plain data; any bits are valid.
            Some(cb) => AbortKey::callback(cb as usize, unsafe { h.u.for_callback } as usize),
            // SAFETY: as above.
            None => AbortKey::event(unsafe { h.u.for_event }),
        },
    }
}

/// Converts `ao_how` (copied now: it need not outlive the call).
///
/// # Safety
/// `ctx` live; `how` NULL or valid for reads.
pub unsafe fn ao_how(ctx: *mut libxl_ctx, how: *const libxl_asyncop_how) -> AoHow {
    // SAFETY: `how` is NULL or valid for reads (this function's contract).
    let Some(h) = (unsafe { how.as_ref() }) else { return AoHow::Sync };
    // SAFETY: as above.
    let key = unsafe { abort_key(how) };
    match h.callback {
        None => {
            // SAFETY: plain-data union read.
            AoHow::ForEvent(unsafe { h.u.for_event })
        }
        Some(cb) => {
            let ctx = SendPtr(ctx);
            // SAFETY: plain-data union read.
            let user = SendPtr(unsafe { h.u.for_callback });
            AoHow::Callback {
                // SAFETY: the application's callback, with its own ctx and
                // user pointer, called once (after the lock is released).
                cb: Box::new(move |rc| unsafe { cb(ctx.get(), rc, user.get()) }),
                key,
            }
        }
    }
}

/// Converts a progress `how` (NULL: discard the reports).
///
/// # Safety
/// `ctx` live; `how` NULL or valid for reads.
pub unsafe fn aop_how(ctx: *mut libxl_ctx, how: *const libxl_asyncprogress_how) -> AopHow {
    // SAFETY: `how` is NULL or valid for reads (this function's contract).
    let Some(h) = (unsafe { how.as_ref() }) else { return AopHow::Discard };
    match h.callback {
        None => AopHow::ForEvent(h.for_event),
        Some(cb) => {
            let (ctx, user) = (SendPtr(ctx), SendPtr(h.for_callback));
            AopHow::Callback {
                for_event: h.for_event,
                cb: Arc::new(move |ev: Event| {
                    let p = super::event::to_c_heap(ev);
                    // SAFETY: the application's callback with its own
                    // pointers and a heap event it now owns.
                    unsafe { cb(ctx.get(), p, user.get()) }
                }),
            }
        }
    }
}

/// # Safety
/// `ctx` live; `how` NULL or valid for reads.
#[no_mangle]
pub unsafe extern "C" fn libxl_ao_abort(ctx: *mut libxl_ctx, how: *const libxl_asyncop_how) -> c_int {
    // SAFETY: the caller passes NULL or a live ctx (this function's contract).
    let c = unsafe { ctx_ref(ctx) };
    // SAFETY: `how` is NULL or valid for reads (this function's contract).
    let key = unsafe { abort_key(how) };
    entry("libxl_ao_abort", c, |egc| egc.ao_abort(key))
}
