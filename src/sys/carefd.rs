//! "Careful" fds (libxl's `libxl__carefd`): fds that a child process must
//! not inherit.
//!
//! An fd is opened between [`begin`] (the no-forking lock, so no fork can
//! copy it before it is marked) and [`record`], which sets close-on-exec,
//! so a child that execs never has it. A child that does *not* exec
//! (`libxl_postfork_child_noexec`) closes every recorded fd itself
//! ([`close_all_in_child`]), so the record keeps them all.
//!
//! Invariants:
//! * A recorded carefd is in `LIVE` until [`close`] (or the child's
//!   [`close_all_in_child`]); each is freed exactly once.
//! * `LIVE`'s mutex is only taken with the no-forking lock held, so it is
//!   never copied locked into a child.

use std::io;

use super::atfork;

/// One careful fd. C code holds it by address (`libxl__carefd *`).
pub struct Carefd {
    pub fd: i32,
}

/// Addresses of the live carefds (leaked boxes).
static LIVE: parking_lot::Mutex<Vec<usize>> = parking_lot::const_mutex(Vec::new());

/// Before opening an fd that is to be recorded: no fork until [`record`]
/// (or [`unlock`]).
pub fn begin() {
    atfork::lock_for_c();
}

/// Ends [`begin`] without recording anything.
///
/// # Safety
/// This thread called [`begin`] and has not yet ended it.
pub unsafe fn unlock() {
    // SAFETY: forwarded (this function's contract).
    unsafe { atfork::unlock_for_c() };
}

/// Records `fd` (close-on-exec from now on); the caller holds [`begin`].
pub fn record(fd: i32) -> *mut Carefd {
    let _ = super::set_cloexec(fd);
    let cf = Box::into_raw(Box::new(Carefd { fd }));
    LIVE.lock().push(cf as usize);
    cf
}

/// Closes and frees a carefd from [`record`].
///
/// # Safety
/// `cf` came from [`record`] and is not used again.
pub unsafe fn close(cf: *mut Carefd) -> io::Result<()> {
    let _g = atfork::lock();
    LIVE.lock().retain(|&c| c != cf as usize);
    // SAFETY: from record (Box::into_raw), removed from LIVE above: freed once.
    let cf = unsafe { Box::from_raw(cf) };
    if cf.fd < 0 {
        return Ok(());
    }
    // SAFETY: the carefd's own fd, closed once.
    super::cvt(unsafe { libc::close(cf.fd) }).map(drop)
}

/// In a child that will not exec: closes and frees every carefd; the fds
/// that could not be closed, with why.
pub fn close_all_in_child() -> Vec<(i32, io::Error)> {
    let _g = atfork::lock();
    let mut failed = Vec::new();
    for cf in std::mem::take(&mut *LIVE.lock()) {
        // SAFETY: every address in LIVE is a leaked Box<Carefd> (record),
        // taken out of LIVE above: freed once.
        let cf = unsafe { Box::from_raw(cf as *mut Carefd) };
        // SAFETY: the carefd's own fd (inherited), closed once.
        if cf.fd >= 0 && unsafe { libc::close(cf.fd) } != 0 {
            failed.push((cf.fd, io::Error::last_os_error()));
        }
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::IntoRawFd;

    #[test]
    fn a_recorded_fd_is_close_on_exec_and_closed_once() {
        let (r, w) = nix::unistd::pipe().unwrap();
        let fd = r.into_raw_fd();
        begin();
        let cf = record(fd);
        // SAFETY: begin() above, ended once.
        unsafe { unlock() };
        // SAFETY: plain fcntl query on our fd.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        assert!(flags & libc::FD_CLOEXEC != 0, "recorded fds are close-on-exec");
        // SAFETY: from record, used once.
        unsafe { close(cf) }.unwrap();
        // The pipe's only read end is gone: writing fails with EPIPE.
        let e = nix::unistd::write(&w, b"x").unwrap_err();
        assert_eq!(e, nix::errno::Errno::EPIPE, "closed by close()");
    }
}
