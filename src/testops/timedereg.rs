//! `libxl_test_timedereg`: Xen's timeout-deregistration scenario.
//!
//! Group 0 is three timeouts at 2000, 1000 and 2000 ms. When 0/1 fires
//! (first), its callback deregisters 0/0 and 0/2 (due at the same moment
//! as each other, not yet fired), registers group 1 at 1000, 2000 and 3000
//! ms, and deregisters 0/1 again (already gone: must be a no-op). Then 1/0,
//! 1/1 and 1/2 must fire in that order, and after the last nothing may be
//! left registered. Success completes the ao with 0; any deviation is
//! logged and completes it with `ERROR_FAIL` (where Xen's asserts).
#![forbid(unsafe_code)]

use std::sync::Arc;

use parking_lot::Mutex;

use crate::reg::ao::AoHow;
use crate::reg::AoId;
use crate::egc::Egc;
use crate::reg::EvTime;
use crate::rc::{Rc, ERROR_FAIL, ERROR_TIMEDOUT};

const MS: [[i32; 3]; 2] = [[2000, 1000, 2000], [1000, 2000, 3000]];

#[derive(Default)]
struct Scenario {
    et: [[Option<EvTime>; 3]; 2],
    seq: u32,
}

type Shared = Arc<Mutex<Scenario>>;

pub fn test_timedereg(egc: &mut Egc<'_>, how: AoHow) -> Rc {
    egc.ao_run(how, 0, |egc, ao| regs(egc, ao, 0, &Arc::new(Mutex::new(Scenario::default()))))
}

fn regs(egc: &mut Egc<'_>, ao: AoId, group: usize, sc: &Shared) -> Result<(), Rc> {
    crate::xl_log!(egc.ctx, Debug, "timedereg: registering group {group}");
    for (i, &ms) in MS[group].iter().enumerate() {
        let sc2 = sc.clone();
        let ev = egc.ev_time_register_rel(ao, ms, Box::new(move |egc, ev, rc| occurs(egc, ao, ev, rc, &sc2)))?;
        sc.lock().et[group][i] = Some(ev);
    }
    Ok(())
}

fn fail(egc: &mut Egc<'_>, ao: AoId, why: &str) {
    crate::xl_log!(egc.ctx, Error, "timedereg: scenario violated: {why}");
    egc.ao_complete(ao, ERROR_FAIL);
}

fn occurs(egc: &mut Egc<'_>, ao: AoId, ev: EvTime, rc: Rc, sc: &Shared) {
    if rc != ERROR_TIMEDOUT {
        egc.ao_complete(ao, rc);
        return;
    }
    let (seq, et) = {
        let mut s = sc.lock();
        s.seq += 1;
        (s.seq - 1, s.et)
    };
    crate::xl_log!(egc.ctx, Debug, "timedereg: ev_time={ev} occurs seq={seq}");
    match seq {
        0 => {
            if et[0][1] != Some(ev) {
                return fail(egc, ao, "the first timeout to fire was not 0/1");
            }
            for ev in [et[0][0], et[0][2]].into_iter().flatten() {
                egc.ev_time_deregister(ev);
            }
            if let Err(rc) = regs(egc, ao, 1, sc) {
                egc.ao_complete(ao, rc);
                return;
            }
            if let Some(ev) = et[0][1] {
                egc.ev_time_deregister(ev); // already fired: a no-op
            }
        }
        1 | 2 => {
            if et[1][seq as usize - 1] != Some(ev) {
                fail(egc, ao, "group 1 fired out of order");
            }
        }
        3 => {
            if et[1][2] != Some(ev) {
                return fail(egc, ao, "the last timeout was not 1/2");
            }
            let left = et.iter().flatten().flatten().filter(|&&e| egc.ev_time_isregistered(e)).count();
            if left != 0 {
                return fail(egc, ao, "timeouts still registered after the last one fired");
            }
            egc.ao_complete(ao, 0);
        }
        _ => fail(egc, ao, "a deregistered timeout fired"),
    }
}
