//! A poller's wakeup channel: a pipe, both ends non-blocking and
//! close-on-exec from the moment they exist (`pipe2`).
//!
//! `wake` writes one byte; a full pipe already means "woken", so `EAGAIN`
//! counts as success. `drain` reads until the pipe is empty. Callers merge
//! repeated wakes themselves (the poller keeps a "pipe non-empty" flag), so
//! the pipe normally holds at most one byte.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::fcntl::OFlag;

use super::cvt;

#[derive(Debug)]
pub struct Wakeup {
    read: OwnedFd,
    write: OwnedFd,
}

impl Wakeup {
    /// Opens the pipe. Fails with the OS error (`EMFILE`, `ENFILE`, ...).
    pub fn new() -> io::Result<Wakeup> {
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
        Ok(Wakeup { read, write })
    }

    /// The end a sleeper polls for `POLLIN`.
    pub fn read_fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    /// The end [`write_byte`] pokes (e.g. from the SIGCHLD handler).
    pub fn write_fd(&self) -> RawFd {
        self.write.as_raw_fd()
    }

    /// Makes the read end readable.
    pub fn wake(&self) -> io::Result<()> {
        write_byte(self.write.as_raw_fd())
    }

    /// Empties the pipe.
    pub fn drain(&self) -> io::Result<()> {
        let mut buf = [0u8; 64];
        loop {
            match nix::unistd::read(self.read.as_raw_fd(), &mut buf) {
                Ok(n) if n == buf.len() => continue,
                Ok(_) => return Ok(()),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(nix::errno::Errno::EAGAIN) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// Writes one byte to a non-blocking fd; a full pipe is success.
pub fn write_byte(fd: RawFd) -> io::Result<()> {
    let byte = [0u8; 1];
    loop {
        // SAFETY: `byte` is a live one-byte buffer; `fd` is an fd number the
        // caller owns; write(2) has no other preconditions.
        let r = cvt(unsafe { libc::write(fd, byte.as_ptr().cast(), 1) });
        match r {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wakeup_fds_are_cloexec_and_nonblocking() {
        let w = Wakeup::new().unwrap();
        for fd in [w.read_fd(), w.write.as_raw_fd()] {
            let fdfl = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).unwrap();
            assert_ne!(fdfl & libc::FD_CLOEXEC, 0, "fd {fd} lacks FD_CLOEXEC");
            let fl = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFL).unwrap();
            assert_ne!(fl & libc::O_NONBLOCK, 0, "fd {fd} is blocking");
        }
    }

    #[test]
    fn full_pipe_wake_succeeds_and_drain_empties() {
        let w = Wakeup::new().unwrap();
        for _ in 0..100_000 {
            w.wake().unwrap();
        }
        w.drain().unwrap();
        assert_eq!(super::super::poll::recheck(w.read_fd(), super::super::POLLIN), 0);
    }
}
