//! `libxl_test_timeout` (ours): completes with 0 after `ms` milliseconds;
//! aborting completes it with `ERROR_ABORTED` (the timeout fires early).
#![forbid(unsafe_code)]

use crate::reg::ao::AoHow;
use crate::egc::Egc;
use crate::reg::EvTime;
use crate::rc::{Rc, ERROR_TIMEDOUT};
use crate::token::Token;

pub fn test_timeout(egc: &mut Egc<'_>, ms: i32, how: AoHow) -> Rc {
    egc.ao_run(how, 0, |egc, ao| {
        egc.ev_time_register_rel_fn(ao, ms, done, ao.to_usize() as u64)?;
        Ok(())
    })
}

/// The timeout fired (0) or was cut short by an abort.
fn done(egc: &mut Egc<'_>, _ev: EvTime, rc: Rc, ao: u64) {
    let ao = Token::from_usize(ao as usize).expect("registered with an ao token");
    egc.ao_complete(ao, if rc == ERROR_TIMEDOUT { 0 } else { rc });
}
