//! `libxl_test_fdmodify` (ours): an operation that changes what it waits
//! for, so that `ev_fd_modify` (and with osevent hooks, the application's
//! `fd_modify`) is exercised through the public API.
//!
//! In order: register `fd` for `events1` → when one of them holds, modify
//! the registration to `events2` → when one of those holds, complete with
//! 0. A failing modify completes the operation with the failure's rc (the
//! hook's value); POLLNVAL completes it with `ERROR_FAIL`; aborting
//! completes it with `ERROR_ABORTED`. The registration and the abortable
//! are owned by the ao, so completion (any way) releases both.
#![forbid(unsafe_code)]

use crate::reg::ao::AoHow;
use crate::egc::Egc;
use crate::rc::{Rc, ERROR_FAIL};
use crate::sys::POLLNVAL;

pub fn test_fdmodify(egc: &mut Egc<'_>, fd: i32, events1: i16, events2: i16, how: AoHow) -> Rc {
    egc.ao_run(how, 0, |egc, ao| {
        let mut modified = false;
        egc.ev_fd_register(
            Some(ao),
            fd,
            events1,
            Box::new(move |egc, ev, _fd, _events, revents| {
                if revents & POLLNVAL != 0 {
                    egc.ao_complete(ao, ERROR_FAIL);
                } else if modified {
                    egc.ao_complete(ao, 0);
                } else {
                    modified = true;
                    if let Err(rc) = egc.ev_fd_modify(ev, events2) {
                        egc.ao_complete(ao, rc);
                    }
                }
            }),
        )?;
        egc.ao_abortable_register_completes(ao)?;
        Ok(())
    })
}
