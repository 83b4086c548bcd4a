//! `libxl_test_fdevent`: completes when `fd` is ready for `events`;
//! abortable. The fd registration and the abortable are owned by the ao,
//! so completing it (either way) releases both.
#![forbid(unsafe_code)]

use crate::ao::AoHow;
use crate::egc::Egc;
use crate::rc::{Rc, ERROR_FAIL};
use crate::sys::POLLNVAL;

pub fn test_fdevent(egc: &mut Egc<'_>, fd: i32, events: i16, how: AoHow) -> Rc {
    egc.ao_run(how, 0, |egc, ao| {
        egc.ev_fd_register(
            Some(ao),
            fd,
            events,
            Box::new(move |egc, _ev, _fd, _events, revents| {
                let rc = if revents & POLLNVAL != 0 { ERROR_FAIL } else { 0 };
                egc.ao_complete(ao, rc);
            }),
        )?;
        egc.ao_abortable_register_completes(ao)?;
        Ok(())
    })
}
