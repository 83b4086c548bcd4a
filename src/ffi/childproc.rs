//! Child processes: `libxl_childproc_setmode`, `libxl_childproc_reaped`,
//! `libxl_childproc_sigchld_occurred`, `libxl_postfork_child_noexec`.

use std::ffi::{c_int, c_void};
use std::io;
use std::sync::Arc;

use super::boundary::{entry, entry_ctx};
use super::ctxref::ctx_ref;
use super::types::{libxl_childproc_hooks, libxl_ctx};
use super::SendPtr;
use crate::egc::child;
use crate::reg::child::{ChildprocHooks, ChldOwner};
use crate::rc::Rc;

/// The application's hook table. libxl does not copy it: the function
/// pointers are read at each use, so it must outlive the ctx (as
/// documented); the mode is taken once, at `libxl_childproc_setmode`.
struct CChildHooks {
    table: SendPtr<libxl_childproc_hooks>,
    user: SendPtr<c_void>,
}

impl CChildHooks {
    fn t(&self) -> &libxl_childproc_hooks {
        // SAFETY: libxl_childproc_setmode's contract: the table stays valid
        // for the ctx's lifetime.
        unsafe { &*self.table.get() }
    }
}

impl ChildprocHooks for CChildHooks {
    fn has_fork_replacement(&self) -> bool {
        self.t().fork_replacement.is_some()
    }

    fn fork_replacement(&self) -> io::Result<i32> {
        let Some(f) = self.t().fork_replacement else { return Err(io::Error::from_raw_os_error(libc::ENOSYS)) };
        // SAFETY: the application's fork replacement with its user pointer;
        // it behaves like fork(2), setting errno on failure.
        let pid = unsafe { f(self.user.get()) };
        if pid == -1 {
            Err(io::Error::last_os_error())
        } else {
            Ok(pid)
        }
    }

    fn reaped_callback(&self, pid: i32, status: i32) -> Option<Rc> {
        let f = self.t().reaped_callback?;
        // SAFETY: the application's callback with its user pointer.
        Some(unsafe { f(pid, status, self.user.get()) })
    }
}

/// # Safety
/// `ctx` live; `hooks` NULL or valid for the ctx's lifetime.
#[no_mangle]
pub unsafe extern "C" fn libxl_childproc_setmode(
    ctx: *mut libxl_ctx,
    hooks: *const libxl_childproc_hooks,
    user: *mut c_void,
) {
    const ENTRY: &str = "libxl_childproc_setmode";
    // SAFETY: the caller passes NULL or a live ctx (this function's contract).
    let c = unsafe { ctx_ref(ctx) };
    // SAFETY: `hooks` is NULL or valid for the ctx's lifetime (this
    // function's contract).
    let table = unsafe { hooks.as_ref() };
    // Inside Xen's libxl, libxl_ctx_free (libxl.c) calls this first, with
    // `osevent_in_hook` raised by 1000: its misuse is caught here, named.
    #[cfg(feature = "xen")]
    let entry_name = {
        let cx = ctx.cast::<super::internal::layout::libxl__ctx>();
        // SAFETY: a live C ctx (this function's contract) if it has a core.
        if c.is_some() && unsafe { (*cx).osevent_in_hook } >= 1000 {
            "libxl_ctx_free"
        } else {
            ENTRY
        }
    };
    #[cfg(not(feature = "xen"))]
    let entry_name = ENTRY;
    if entry_name != ENTRY {
        entry_ctx(entry_name, c, |c| super::boundary::check_free_alone(c, "libxl_ctx_free"));
    }
    // Inside Xen's libxl, C code reads the hooks from the C ctx too (the
    // middle process of libxl__spawn_spawn forks with fork_replacement).
    #[cfg(feature = "xen")]
    if c.is_some() {
        let cx = ctx.cast::<super::internal::layout::libxl__ctx>();
        let hooks: *const libxl_childproc_hooks = if hooks.is_null() {
            &super::internal::child::libxl__childproc_default_hooks
        } else {
            hooks
        };
        // SAFETY: a live C ctx (this function's contract; it has a core).
        unsafe {
            (*cx).childproc_hooks = hooks;
            (*cx).childproc_user = user;
        }
    }
    entry(entry_name, c, |egc| {
            let Some(h) = table else {
                return egc.childproc_setmode(ChldOwner::Libxl, None);
            };
            let Some(owner) = ChldOwner::from_c(h.chldowner) else {
                crate::xl_log!(egc.ctx, Error,
                    "{ENTRY}: invalid argument hooks->chldowner: {} is not a libxl_sigchld_owner; mode unchanged",
                    h.chldowner);
                return;
            };
            let table = SendPtr(hooks.cast_mut());
            egc.childproc_setmode(owner, Some(Arc::new(CChildHooks { table, user: SendPtr(user) })));
    })
}

/// # Safety
/// `ctx` live.
#[no_mangle]
pub unsafe extern "C" fn libxl_childproc_reaped(ctx: *mut libxl_ctx, pid: libc::pid_t, status: c_int) -> c_int {
    // SAFETY: the caller passes NULL or a live ctx (this function's contract).
    let c = unsafe { ctx_ref(ctx) };
    entry("libxl_childproc_reaped", c, |egc| egc.childproc_reaped(pid, status))
}

/// # Safety
/// `ctx` live.
#[no_mangle]
pub unsafe extern "C" fn libxl_childproc_sigchld_occurred(ctx: *mut libxl_ctx) {
    // SAFETY: the caller passes NULL or a live ctx (this function's contract).
    let c = unsafe { ctx_ref(ctx) };
    entry("libxl_childproc_sigchld_occurred", c, |egc| egc.childproc_sigchld_occurred())
}

/// Takes no ctx lock: in the child, a thread of the parent may have held
/// it at the fork, and that thread does not exist here.
///
/// # Safety
/// `ctx` NULL or a ctx inherited from the parent (it is only logged to).
#[no_mangle]
pub unsafe extern "C" fn libxl_postfork_child_noexec(ctx: *mut libxl_ctx) {
    const ENTRY: &str = "libxl_postfork_child_noexec";
    // SAFETY: the caller passes NULL or a ctx inherited from the parent
    // (this function's contract), whose memory exists in this process.
    let c = unsafe { ctx_ref(ctx) };
    entry_ctx(ENTRY, c, |c| {
        for (fd, e) in crate::sys::carefd::close_all_in_child() {
            crate::xl_log_errno!(c, Warn, e.raw_os_error().unwrap_or(0), "{ENTRY}: failed to close fd={fd} (perhaps of another libxl ctx)");
        }
        child::postfork_child_noexec();
        crate::xl_log!(c, Debug, "{ENTRY}: SIGCHLD handling, careful fds and child records of the parent's ctxs released");
    })
}
