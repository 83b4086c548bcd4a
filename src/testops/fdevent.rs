//! `libxl_test_fdevent`: completes when `fd` is ready for `events`;
//! abortable. The fd registration and the abortable are owned by the ao,
//! so completing it (either way) releases both.
#![forbid(unsafe_code)]

use crate::reg::ao::AoHow;
use crate::egc::Egc;
use crate::reg::EvFd;
use crate::token::Token;
use crate::rc::{Rc, ERROR_FAIL, ERROR_INVAL};
use crate::sys::POLLNVAL;

/// Set in the callback's data word beside the ao token (bit 31, which no
/// token uses): the fd was not checked to be open.
const UNCHECKED: u64 = 1 << 31;

/// With `unchecked` (a synchronous call whose fd the caller did not check:
/// see `Egc::fd_check_can_wait`), an fd that is not open is found by the
/// first poll, and the operation fails with `ERROR_INVAL`, logged as a bad
/// argument, as the check would have.
pub fn test_fdevent(egc: &mut Egc<'_>, fd: i32, events: i16, how: AoHow, unchecked: bool) -> Rc {
    egc.ao_run(how, 0, |egc, ao| {
        let data = ao.to_usize() as u64;
        if unchecked {
            egc.ev_fd_register_fn_unverified(Some(ao), fd, events, ready, data | UNCHECKED)?;
        } else {
            egc.ev_fd_register_fn(Some(ao), fd, events, ready, data)?;
        }
        egc.ao_abortable_register_completes(ao)?;
        Ok(())
    })
}

/// The fd is ready: the operation is done (an fd closed under it fails;
/// one that was never open is the caller's bad argument).
fn ready(egc: &mut Egc<'_>, _ev: EvFd, fd: i32, _events: i16, revents: i16, data: u64) {
    let ao = Token::from_usize((data & !UNCHECKED) as usize).expect("registered with an ao token");
    let rc = match (revents & POLLNVAL != 0, data & UNCHECKED != 0) {
        (false, _) => 0,
        (true, false) => ERROR_FAIL,
        (true, true) => {
            crate::xl_log!(egc.ctx, Error, "libxl_test_fdevent: invalid argument fd: {fd} is not an open file descriptor");
            ERROR_INVAL
        }
    };
    egc.ao_complete(ao, rc);
}
