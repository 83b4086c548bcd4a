//! epoll(7): the sleep of the library's own pollers, so that a wakeup costs
//! O(ready fds) rather than O(registered fds). The instance is
//! close-on-exec. Event bits: on Linux `EPOLLIN/PRI/OUT/ERR/HUP/RDNORM/
//! RDBAND/WRNORM/WRBAND/RDHUP` have the values of the matching `POLL*`
//! bits, so poll events convert by widening.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::cvt;

pub type EpollEvent = libc::epoll_event;

#[derive(Debug)]
pub struct Epoll {
    fd: OwnedFd,
}

/// What `ctl` should do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Add,
    Modify,
    Delete,
}

impl Epoll {
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: epoll_create1 has no memory preconditions.
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
        Ok(Epoll { fd: unsafe { OwnedFd::from_raw_fd(fd) } })
    }

    pub fn raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// `epoll_ctl` for `fd` with poll-style `events` (level-triggered) and
    /// the word `data` reported back with them.
    pub fn ctl(&self, op: Op, fd: i32, events: i16, data: u64) -> io::Result<()> {
        let op = match op {
            Op::Add => libc::EPOLL_CTL_ADD,
            Op::Modify => libc::EPOLL_CTL_MOD,
            Op::Delete => libc::EPOLL_CTL_DEL,
        };
        let mut ev = libc::epoll_event { events: events as u16 as u32, u64: data };
        // SAFETY: `ev` is a valid epoll_event for the duration of the call.
        cvt(unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), op, fd, &mut ev) })?;
        Ok(())
    }

    /// Waits up to `timeout_ms` (negative: no limit); returns the filled
    /// prefix of `out`.
    pub fn wait<'a>(&self, out: &'a mut [EpollEvent], timeout_ms: i32) -> io::Result<&'a [EpollEvent]> {
        let max = out.len().min(i32::MAX as usize) as i32;
        // SAFETY: `out` is a valid, exclusively borrowed buffer of `max` events.
        let n = cvt(unsafe { libc::epoll_wait(self.fd.as_raw_fd(), out.as_mut_ptr(), max, timeout_ms) })?;
        Ok(&out[..n as usize])
    }
}

/// A zeroed event buffer of `n` entries.
pub fn events(n: usize) -> Vec<EpollEvent> {
    vec![libc::epoll_event { events: 0, u64: 0 }; n]
}

/// The poll-style bits of an epoll result.
pub fn revents(ev: &EpollEvent) -> i16 {
    ev.events as u16 as i16
}

/// The data word of an epoll result.
pub fn data(ev: &EpollEvent) -> u64 {
    ev.u64
}
