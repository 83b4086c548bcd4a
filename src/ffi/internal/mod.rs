//! libxl's internal C API on this core: what the rest of Xen's libxl (the
//! 60 other `.c` files of `tools/libs/light`) calls in `libxl_event.c` and
//! `libxl_fork.c`, built only for `make xen` (cargo feature `xen`).
//!
//! Each function is a thin layer: find the core from the C ctx (through
//! the gc, ao or egc C passes), take a nested egc (a level of the C ctx's
//! own lock, see `egc`), make one of the core's verbs, and keep the C
//! struct's public fields in step. C structs keep Xen's layouts
//! ([`layout`]); the core's handle of a registration lives in the struct's
//! private field. Callbacks into C get the exact struct pointer C
//! registered, and a C egc ([`ctx::c_egc`]).
//!
//! | file | libxl's functions |
//! |---|---|
//! | `ctx` | (the seam: where the core lives, its C egc) |
//! | `ao` | `libxl__ao_*`, `libxl__nested_ao_*`, `libxl__egc_*cleanup*` |
//! | `fd` | `libxl__ev_fd_*`, `libxl__ev_time_*` |
//! | `xswatch` | `libxl__ev_xswatch_*`, `libxl__watch_slot_contents` |
//! | `evtchn` | `libxl__ev_evtchn_*`, `libxl__ctx_evtchn_init` |
//! | `event` | `libxl__event_new/_occurred/_disaster`, `libxl__ev_immediate_register` |
//! | `child` | `libxl__ev_child_*`, `libxl__sigchld_*`, `libxl__carefd_*`, `libxl__atfork_init`, pipes |
//! | `compose` | `libxl__ev_devstate_wait`, `libxl__domaindeathcheck_*`, `libxl__poller_get/_put/_dispose` |

pub mod ao;
pub mod child;
pub mod compose;
pub mod ctx;
pub mod event;
pub mod evtchn;
pub mod fd;
pub mod layout;
pub mod xenlibs;
pub mod xswatch;
