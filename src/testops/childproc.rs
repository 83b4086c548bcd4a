//! `libxl_test_childproc` (ours): runs a program as a child process and
//! completes with 0 once it has been reaped, handing its wait status to
//! `on_status` first. With `timeout_ms >= 0` a timeout completes the
//! operation with `ERROR_TIMEDOUT`; `libxl_ao_abort` completes it with
//! `ERROR_ABORTED` (the timeout, or an abortable, fires early). Either way
//! the child is still running when the ao completes, so completing kills it
//! (SIGKILL) and the completion is reported only after it has been reaped
//! (see `ev::child`): the caller never sees a zombie or a stray process.
#![forbid(unsafe_code)]

use crate::reg::ao::AoHow;
use crate::egc::Egc;
use crate::rc::Rc;
use crate::sys::process::{ChildAction, ExecPlan};

pub fn test_childproc(
    egc: &mut Egc<'_>,
    plan: ExecPlan,
    timeout_ms: i32,
    on_status: Box<dyn FnOnce(i32) + Send>,
    how: AoHow,
) -> Rc {
    egc.ao_run(how, 0, |egc, ao| {
        // Abort handling first, so that a child is never started for an ao
        // that cannot be aborted any more.
        if timeout_ms >= 0 {
            egc.ev_time_register_rel(ao, timeout_ms, Box::new(move |egc, _ev, rc| egc.ao_complete(ao, rc)))?;
        } else {
            egc.ao_abortable_register(ao, Box::new(move |egc, rc| egc.ao_complete(ao, rc)))?;
        }
        egc.ev_child_fork(
            ao,
            ChildAction::Exec(plan),
            Box::new(move |egc, _ch, _pid, status| {
                on_status(status);
                egc.ao_complete(ao, 0);
            }),
        )?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI32, Ordering};
    use std::sync::Arc;

    use super::*;
    use crate::reg::child::ChldOwner;
    use crate::rc::ERROR_TIMEDOUT;
    use crate::sys::process::exit_status;
    use crate::sys::process::testing::plan;
    use crate::testutil;

    fn run(args: &[&str], timeout_ms: i32) -> (Rc, i32) {
        let ctx = testutil::ctx();
        let mut egc = Egc::new(&ctx, "test");
        egc.childproc_setmode(ChldOwner::LibxlAlwaysSelectiveReap, None);
        let st = Arc::new(AtomicI32::new(-1));
        let s = st.clone();
        let rc = test_childproc(&mut egc, plan(args), timeout_ms, Box::new(move |v| s.store(v, Ordering::SeqCst)), AoHow::Sync);
        assert!(egc.s().children.is_empty(), "no child left on the books");
        (rc, st.load(Ordering::SeqCst))
    }

    #[test]
    fn synchronous_run_returns_the_wait_status() {
        assert_eq!(run(&["sh", "-c", "exit 3"], -1), (0, exit_status(3)));
    }

    #[test]
    fn exec_failure_is_exit_status_127() {
        assert_eq!(run(&["/no/such/program"], -1), (0, exit_status(127)));
    }

    #[test]
    fn timeout_kills_and_reaps_and_leaves_the_status_alone() {
        let t0 = std::time::Instant::now();
        assert_eq!(run(&["sleep", "10"], 20), (ERROR_TIMEDOUT, -1));
        assert!(t0.elapsed() < std::time::Duration::from_secs(5));
    }
}
