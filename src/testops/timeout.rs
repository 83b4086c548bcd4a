//! `libxl_test_timeout` (ours): completes with 0 after `ms` milliseconds;
//! aborting completes it with `ERROR_ABORTED` (the timeout fires early).
#![forbid(unsafe_code)]

use crate::ao::AoHow;
use crate::egc::Egc;
use crate::rc::{Rc, ERROR_TIMEDOUT};

pub fn test_timeout(egc: &mut Egc<'_>, ms: i32, how: AoHow) -> Rc {
    egc.ao_run(how, 0, |egc, ao| {
        egc.ev_time_register_rel(
            ao,
            ms,
            Box::new(move |egc, _ev, rc| egc.ao_complete(ao, if rc == ERROR_TIMEDOUT { 0 } else { rc })),
        )?;
        Ok(())
    })
}
