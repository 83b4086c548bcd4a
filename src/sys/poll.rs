//! `poll(2)`: the blocking sleep of a poller, the zero-timeout re-check
//! made before an fd callback runs, and an "is this fd open" probe used to
//! refuse closed fds with `ERROR_INVAL`.

use std::io;

use super::{cvt, PollFd};

/// Sleeps until an fd in `fds` is ready or `timeout_ms` passes (negative:
/// no limit). Returns how many entries have non-zero `revents`. `EINTR` is
/// returned to the caller, which simply goes round its loop again.
pub fn poll(fds: &mut [PollFd], timeout_ms: i32) -> io::Result<usize> {
    let n = fds.len() as libc::nfds_t;
    // SAFETY: `fds` is a valid, exclusively borrowed slice of `n` pollfds,
    // which is all poll(2) requires.
    let r = cvt(unsafe { libc::poll(fds.as_mut_ptr(), n, timeout_ms) })?;
    Ok(r as usize)
}

/// Polls one fd without sleeping and returns its current `revents` for
/// `events` (plus whatever the kernel always reports: ERR, HUP, NVAL).
/// `EINTR` is retried; any other failure reads as "nothing ready".
pub fn recheck(fd: i32, events: i16) -> i16 {
    let mut one = [super::pollfd(fd, events)];
    loop {
        match poll(&mut one, 0) {
            Ok(_) => return one[0].revents,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return 0,
        }
    }
}

/// True if `fd` names an open file description in this process.
pub fn fd_is_open(fd: i32) -> bool {
    if fd < 0 {
        return false;
    }
    // SAFETY: F_GETFD only reads the descriptor flags of an fd number;
    // any integer is an acceptable argument.
    let r = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    r != -1
}
