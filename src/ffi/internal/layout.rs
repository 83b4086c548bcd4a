//! Xen 4.17's structs that libxl's C code shares with the event core, with
//! their exact x86-64 layouts (`tools/libs/light/libxl_internal.h`).
//!
//! C code embeds these structs by value, initialises them with the header's
//! inlines (`libxl__ev_fd_init` writes `fd = -1`, ...) and reads a few
//! public fields (`ev_fd.fd`, `ev_child.pid`, `ao->gc`, `ao->domid`, ...).
//! So every offset C touches is fixed; the fields C never touches (Xen's
//! list links and nexus pointers) are where the core keeps its handle of
//! the registration (a generation-checked token), named here for that use.
//! Offsets are asserted below at compile time, and against Xen's own
//! header by `make xen` (`xen/layout_check.c`, built from the same numbers).
#![allow(non_camel_case_types)]

use std::ffi::{c_char, c_int, c_short, c_void};

use crate::ffi::types::{libxl_asyncop_how, libxl_ctx};

// Callback types are nullable function pointers (`Option<fn>`), as C
// stores them.

/// `libxl__gc`: the mini-GC every libxl function allocates into.
#[repr(C)]
pub struct libxl__gc {
    pub alloc_maxsize: c_int,
    pub alloc_ptrs: *mut *mut c_void,
    pub owner: *mut libxl_ctx,
}

/// Two pointers: a `XEN_LIST_ENTRY`, `XEN_TAILQ_ENTRY`, `XEN_TAILQ_HEAD`
/// or `XEN_STAILQ_HEAD`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Link2 {
    pub a: *mut c_void,
    pub b: *mut c_void,
}

/// `libxl__egc`: on the C caller's stack (`AO_CREATE`), or made by us for
/// the callbacks we make. Only `gc` is used outside Xen's core; the lists
/// are initialised as `LIBXL_INIT_EGC` does and never used by this core
/// (its deferred work is per thread, see `egc`).
#[repr(C)]
pub struct libxl__egc {
    pub gc: libxl__gc,
    pub occurred_for_callback: Link2,
    pub aos_for_callback: Link2,
    pub aops_for_callback: Link2,
    pub ev_immediates: Link2,
}

pub type ev_fd_callback = Option<unsafe extern "C" fn(*mut libxl__egc, *mut libxl__ev_fd, c_int, c_short, c_short)>;

#[repr(C)]
pub struct libxl__ev_fd {
    /// -1 while not registered (C's `_init`, `_isregistered`).
    pub fd: c_int,
    pub events: c_short,
    pub func: ev_fd_callback,
    _entry: Link2,
    /// Xen: `nexus`. Here: the core's registration token.
    pub token: usize,
}

pub type ao_abortable_callback = Option<unsafe extern "C" fn(*mut libxl__egc, *mut libxl__ao_abortable, c_int)>;

#[repr(C)]
pub struct libxl__ao_abortable {
    pub ao: *mut libxl__ao,
    pub callback: ao_abortable_callback,
    pub registered: bool,
    /// Xen: `entry` (a list link). Here: the core's registration token.
    pub token: usize,
    _entry_rest: *mut c_void,
}

pub type ev_time_callback = Option<unsafe extern "C" fn(*mut libxl__egc, *mut libxl__ev_time, *const libc::timeval, c_int)>;

#[repr(C)]
pub struct libxl__ev_time {
    /// NULL while not registered; cleared before the callback runs.
    pub func: ev_time_callback,
    pub infinite: c_int,
    _entry: Link2,
    /// The requested deadline (wall clock), passed back to the callback.
    pub abs: libc::timeval,
    /// Xen: `nexus`. Here: the core's registration token.
    pub token: usize,
    /// Xen's own abort hook for the timeout; C's `_init` clears its
    /// `registered`. The core fires timeouts on abort by itself.
    pub abrt: libxl__ao_abortable,
}

pub type ev_xswatch_callback =
    Option<unsafe extern "C" fn(*mut libxl__egc, *mut libxl__ev_xswatch, *const c_char, *const c_char)>;

#[repr(C)]
pub struct libxl__ev_xswatch {
    pub path: *mut c_char,
    pub callback: ev_xswatch_callback,
    /// -1 while not registered.
    pub slotnum: c_int,
    pub counterval: u32,
}

pub type ev_evtchn_callback = Option<unsafe extern "C" fn(*mut libxl__egc, *mut libxl__ev_evtchn)>;

#[repr(C)]
pub struct libxl__ev_evtchn {
    pub callback: ev_evtchn_callback,
    pub port: c_int,
    pub waiting: bool,
    _entry: Link2,
}

pub type ev_child_callback = Option<unsafe extern "C" fn(*mut libxl__egc, *mut libxl__ev_child, libc::pid_t, c_int)>;

#[repr(C)]
pub struct libxl__ev_child {
    /// -1 while not in use; set to -1 before the death callback.
    pub pid: libc::pid_t,
    pub callback: ev_child_callback,
    /// Xen: `entry` (a list link). Here: the core's registration token.
    pub token: usize,
    _entry_rest: *mut c_void,
}

pub type ev_immediate_callback = Option<unsafe extern "C" fn(*mut libxl__egc, *mut libxl__ev_immediate)>;

#[repr(C)]
pub struct libxl__ev_immediate {
    pub callback: ev_immediate_callback,
    _entry: *mut c_void,
}

/// `libxl__ao`: allocated (calloc) and freed by the core; C code uses only
/// `gc` and `domid`.
#[repr(C)]
pub struct libxl__ao {
    pub magic: u32,
    _flags: u32,
    _manip_refcnt: c_int,
    _nested_root: *mut c_void,
    _nested_progeny: c_int,
    _progress_reports_outstanding: c_int,
    _rc: c_int,
    _abortables: *mut c_void,
    /// Xen: `inprogress_entry` (a list link). Here: the core's ao token.
    pub token: usize,
    _inprogress_rest: *mut c_void,
    pub gc: libxl__gc,
    pub how: libxl_asyncop_how,
    _poller: *mut c_void,
    pub domid: u32,
    _entry_for_callback: Link2,
    _outstanding_killed_child: c_int,
}

pub const LIBXL__AO_MAGIC: u32 = 0xA0FA_CE00;
pub const LIBXL__AO_MAGIC_DESTROYED: u32 = 0xA0DE_AD00;

/// `libxl__poller`: C walks `ctx->pollers_idle` through `entry` and frees
/// each one after `libxl__poller_dispose`. The core's pollers are its own;
/// the one C holds (`ctx->poller_app`) is a shell that says which C ctx
/// it belongs to, so that disposing of it can free the core.
#[repr(C)]
pub struct libxl__poller {
    pub entry: Link2,
    /// The C ctx whose core this shell stands for (NULL: none).
    pub ctx: *mut libxl__ctx,
    _rest: [u8; 56],
}

/// `struct libxl__ctx`, as far as the core uses it (libxl.c allocates it).
#[repr(C)]
pub struct libxl__ctx {
    pub lg: *mut crate::ffi::types::xentoollog_logger,
    pub xch: *mut c_void,
    pub xsh: *mut c_void,
    pub nogc_gc: libxl__gc,
    _event_hooks: *mut c_void,
    _event_hooks_user: *mut c_void,
    pub lock: libc::pthread_mutex_t,
    _occurred: Link2,
    pub osevent_in_hook: c_int,
    _osevent_hooks: *mut c_void,
    _osevent_user: *mut c_void,
    pub poller_app: *mut libxl__poller,
    _pollers_event: *mut c_void,
    /// `XEN_LIST_HEAD`: the first idle poller.
    pub pollers_idle: *mut libxl__poller,
    _pollers_active: *mut c_void,
    /// Xen: `hook_fd_nexi_idle`, never touched outside Xen's core. Here:
    /// the core ([`super::ctx::XenCtx`]) this C ctx owns.
    pub core: *mut c_void,
    _hook_timeout_nexi_idle: *mut c_void,
    _efds: *mut c_void,
    _etimes: Link2,
    _watch_slots: *mut c_void,
    pub watch_nslots: c_int,
    _nwatches: c_int,
    _watch_freeslots: *mut c_void,
    _watch_counter: u32,
    pub watch_efd: libxl__ev_fd,
    pub xce: *mut c_void,
    _evtchns_waiting: *mut c_void,
    pub evtchn_efd: libxl__ev_fd,
    _aos_inprogress: *mut c_void,
    _death_list: Link2,
    _death_reported: Link2,
    _death_watch: libxl__ev_xswatch,
    _disk_eject_evgens: *mut c_void,
    pub childproc_hooks: *const crate::ffi::types::libxl_childproc_hooks,
    pub childproc_user: *mut c_void,
    pub sigchld_selfpipe: [c_int; 2],
    pub sigchld_selfpipe_efd: libxl__ev_fd,
    _children: *mut c_void,
    _sigchld_user_registered: bool,
    _sigchld_users_entry: Link2,
}

/// `libxl__xswait_state` (aoutils.c's xenstore waiter, C code).
#[repr(C)]
pub struct libxl__xswait_state {
    pub ao: *mut libxl__ao,
    pub what: *const c_char,
    pub path: *const c_char,
    pub timeout_ms: c_int,
    pub callback: xswait_callback,
    _time_ev: libxl__ev_time,
    _watch_ev: libxl__ev_xswatch,
}

pub type xswait_callback = Option<unsafe extern "C" fn(*mut libxl__egc, *mut libxl__xswait_state, c_int, *const c_char)>;

pub type ev_devstate_callback = Option<unsafe extern "C" fn(*mut libxl__egc, *mut libxl__ev_devstate, c_int)>;

#[repr(C)]
pub struct libxl__ev_devstate {
    pub wanted: c_int,
    pub callback: ev_devstate_callback,
    pub w: libxl__xswait_state,
}

pub type domaindeathcheck_callback = Option<unsafe extern "C" fn(*mut libxl__egc, *mut libxl__domaindeathcheck, c_int)>;

#[repr(C)]
pub struct libxl__domaindeathcheck {
    pub what: *const c_char,
    pub domid: u32,
    pub callback: domaindeathcheck_callback,
    pub abrt: libxl__ao_abortable,
    pub watch: libxl__ev_xswatch,
}

/// `offsetof(T, field) == N` and `sizeof(T) == N`, checked here at compile
/// time and, from the same list, against Xen's header (`make xen` compiles
/// `xen/layout_check.c`, which `tests/xen_layout.rs` keeps equal to this).
/// A field C knows by another name is written `ours = xens @ N`.
macro_rules! layout {
    ($( $t:ident { size $size:expr $(, $f:ident $(= $xf:ident)? @ $off:expr)* } )*) => {
        const _: () = {
            $(
                assert!(std::mem::size_of::<$t>() == $size);
                $( assert!(std::mem::offset_of!($t, $f) == $off); )*
            )*
        };
    };
}

layout! {
    libxl__gc { size 24, alloc_maxsize @ 0, alloc_ptrs @ 8, owner @ 16 }
    libxl__egc { size 88, gc @ 0, occurred_for_callback @ 24, aos_for_callback @ 40, aops_for_callback @ 56, ev_immediates @ 72 }
    libxl__ev_fd { size 40, fd @ 0, events @ 4, func @ 8, token = nexus @ 32 }
    libxl__ao_abortable { size 40, ao @ 0, callback @ 8, registered @ 16, token = entry @ 24 }
    libxl__ev_time { size 96, func @ 0, infinite @ 8, abs @ 32, token = nexus @ 48, abrt @ 56 }
    libxl__ev_xswatch { size 24, path @ 0, callback @ 8, slotnum @ 16, counterval @ 20 }
    libxl__ev_evtchn { size 32, callback @ 0, port @ 8, waiting @ 12 }
    libxl__ev_child { size 32, pid @ 0, callback @ 8, token = entry @ 16 }
    libxl__ev_immediate { size 16, callback @ 0 }
    libxl__ao { size 144, magic @ 0, token = inprogress_entry @ 48, gc @ 64, how @ 88, domid @ 112 }
    libxl__poller { size 80, entry @ 0, ctx = fd_polls @ 16 }
    libxl__ctx { size 512, lg @ 0, xch @ 8, xsh @ 16, nogc_gc @ 24, lock @ 64, osevent_in_hook @ 120,
        poller_app @ 144, pollers_idle @ 160, core = hook_fd_nexi_idle @ 176, watch_nslots @ 224, watch_efd @ 248,
        xce @ 288, evtchn_efd @ 304, childproc_hooks @ 416, childproc_user @ 424,
        sigchld_selfpipe @ 432, sigchld_selfpipe_efd @ 440 }
    libxl__xswait_state { size 160, ao @ 0, what @ 8, path @ 16, timeout_ms @ 24, callback @ 32 }
    libxl__ev_devstate { size 176, wanted @ 0, callback @ 8, w @ 16 }
    libxl__domaindeathcheck { size 88, what @ 0, domid @ 8, callback @ 16, abrt @ 24, watch @ 64 }
}
