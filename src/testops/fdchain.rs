//! `libxl_test_fdchain` (ours): waits for `fds[0]` readable, then, from
//! inside that callback, deregisters it and registers `fds[1]`, and so on,
//! completing after the last. Each step adds an osevent from a callback,
//! which makes every other sleeper's set stale: the baton's test pattern.
#![forbid(unsafe_code)]

use crate::reg::ao::AoHow;
use crate::reg::AoId;
use crate::egc::Egc;
use crate::rc::Rc;
use crate::sys::POLLIN;

pub fn test_fdchain(egc: &mut Egc<'_>, fds: Vec<i32>, how: AoHow) -> Rc {
    egc.ao_run(how, 0, |egc, ao| {
        egc.ao_abortable_register_completes(ao)?;
        step(egc, ao, fds, 0)
    })
}

fn step(egc: &mut Egc<'_>, ao: AoId, fds: Vec<i32>, i: usize) -> Result<(), Rc> {
    let fd = fds[i];
    crate::xl_log!(egc.ctx, Debug, "fdchain ao={ao}: step {i}: waiting for fd {fd}");
    let mut fds = Some(fds);
    egc.ev_fd_register(
        Some(ao),
        fd,
        POLLIN,
        Box::new(move |egc, ev, _fd, _events, _revents| {
            egc.ev_fd_deregister(ev);
            let Some(fds) = fds.take() else { return };
            if i + 1 == fds.len() {
                egc.ao_complete(ao, 0);
            } else if let Err(rc) = step(egc, ao, fds, i + 1) {
                egc.ao_complete(ao, rc);
            }
        }),
    )?;
    Ok(())
}
