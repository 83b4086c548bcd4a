//! `libxl_test_fdevent`: completes when `fd` is ready for `events`;
//! abortable. The fd registration and the abortable are owned by the ao,
//! so completing it (either way) releases both.
#![forbid(unsafe_code)]

use crate::reg::ao::AoHow;
use crate::egc::Egc;
use crate::reg::EvFd;
use crate::token::Token;
use crate::rc::{Rc, ERROR_FAIL};
use crate::sys::POLLNVAL;

pub fn test_fdevent(egc: &mut Egc<'_>, fd: i32, events: i16, how: AoHow) -> Rc {
    egc.ao_run(how, 0, |egc, ao| {
        egc.ev_fd_register_fn(Some(ao), fd, events, ready, ao.to_usize() as u64)?;
        egc.ao_abortable_register_completes(ao)?;
        Ok(())
    })
}

/// The fd is ready: the operation is done (an fd closed under it fails).
fn ready(egc: &mut Egc<'_>, _ev: EvFd, _fd: i32, _events: i16, revents: i16, ao: u64) {
    let ao = Token::from_usize(ao as usize).expect("registered with an ao token");
    let rc = if revents & POLLNVAL != 0 { ERROR_FAIL } else { 0 };
    egc.ao_complete(ao, rc);
}
