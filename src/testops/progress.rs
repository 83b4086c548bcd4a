//! `libxl_test_progress` (ours): reports `count` progress events of type
//! `DOMAIN_CREATE_CONSOLE_AVAILABLE`, one every `interval_ms` (the first
//! after one interval), then completes with 0. Aborting completes it with
//! `ERROR_ABORTED` (the pending timeout fires early with that rc).
#![forbid(unsafe_code)]

use crate::reg::ao::{AoHow, AopHow};
use crate::reg::AoId;
use crate::egc::Egc;
use crate::reg::event::{Event, EventKind};
use crate::rc::{Rc, ERROR_TIMEDOUT};

pub fn test_progress(egc: &mut Egc<'_>, count: u32, interval_ms: i32, aop: AopHow, how: AoHow) -> Rc {
    egc.ao_run(how, 0, |egc, ao| {
        if count == 0 {
            egc.ao_complete(ao, 0);
            return Ok(());
        }
        arm(egc, ao, count, interval_ms, aop)
    })
}

/// Waits one interval, reports, and re-arms until `left` reports are made.
fn arm(egc: &mut Egc<'_>, ao: AoId, left: u32, interval_ms: i32, aop: AopHow) -> Result<(), Rc> {
    egc.ev_time_register_rel(
        ao,
        interval_ms,
        Box::new(move |egc, _ev, rc| {
            if rc != ERROR_TIMEDOUT {
                egc.ao_complete(ao, rc);
                return;
            }
            let domid = 0;
            egc.ao_progress_report(ao, &aop, Event::new(domid, 0, EventKind::DomainCreateConsoleAvailable));
            if left == 1 {
                egc.ao_complete(ao, 0);
            } else if let Err(rc) = arm(egc, ao, left - 1, interval_ms, aop) {
                egc.ao_complete(ao, rc);
            }
        }),
    )?;
    Ok(())
}
