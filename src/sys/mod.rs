//! The operating system, behind safe functions.
//!
//! This module and `src/ffi` are the only places with `unsafe` code. It
//! provides:
//!
//! * [`wakeup`]: a poller's wakeup channel, a non-blocking close-on-exec
//!   pipe whose read end sits in every fd set the poller sleeps on;
//! * [`poll`]: `poll(2)` over a slice of [`PollFd`], the zero-timeout
//!   re-check of one fd, and a check that an fd number is open;
//! * [`clock`]: the monotonic clock our deadlines use, the wall clock the
//!   application speaks (`struct timeval`), and conversion between them;
//! * [`epoll`]: the ctx's instance the library's own pollers sleep on once
//!   many fds are registered;
//! * [`process`]: starting a child (fork or the application's
//!   `fork_replacement`, a start handshake, then exec or an
//!   async-signal-safe closure), `waitpid` without blocking, `kill`;
//! * [`sigchld`]: the process-wide SIGCHLD handler, which writes a byte to
//!   each interested ctx's self-pipe, installed for the first such ctx and
//!   removed (previous disposition restored) after the last;
//! * [`lock`]: the ctx lock, a recursive pthread mutex (ours, or the C
//!   ctx's), and the state it guards, reached only by the thread holding it;
//! * [`atfork`]: the "no forking" lock, taken by `pthread_atfork` handlers
//!   around every fork, that guards the little process-wide state of the
//!   child-process machinery.
//!
//! Every system call's result goes through [`cvt`], the one place where
//! `-1` becomes the thread's `errno` — except in the SIGCHLD handler and in
//! a freshly forked child, which only compare `errno` with `EINTR` in
//! place (async-signal-safe code builds no `io::Error`).
//!
//! The sleep backend of the library's own pollers is chosen in one place,
//! [`backend`]: by default `Auto` (plain `poll(2)` while few fds are
//! registered, the ctx's epoll instance from [`EPOLL_MIN_FDS`] on); `LIBXL_POLL_BACKEND=poll`
//! or `=epoll` forces one path (a test aid, so both stay tested). The
//! application poller (`libxl_osevent_beforepoll`) always hands out a
//! `pollfd` array.

pub mod atfork;
pub mod clock;
pub mod carefd;
pub mod epoll;
pub mod lock;
pub mod poll;
pub mod process;
pub mod sigchld;
pub mod wakeup;

use std::io;

/// One `struct pollfd`, exactly as the kernel and `libxl_osevent_beforepoll`
/// callers see it.
pub type PollFd = libc::pollfd;

pub const POLLIN: i16 = libc::POLLIN;
pub const POLLPRI: i16 = libc::POLLPRI;
pub const POLLOUT: i16 = libc::POLLOUT;
pub const POLLERR: i16 = libc::POLLERR;
pub const POLLHUP: i16 = libc::POLLHUP;
pub const POLLNVAL: i16 = libc::POLLNVAL;

/// Sets `O_NONBLOCK` on an fd.
pub fn set_nonblock(fd: i32) -> io::Result<()> {
    // SAFETY: fcntl on a caller's fd number with integer arguments only.
    let fl = cvt(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    // SAFETY: as above.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) })?;
    Ok(())
}

/// Sets `FD_CLOEXEC` on an fd.
pub fn set_cloexec(fd: i32) -> io::Result<()> {
    // SAFETY: fcntl on a caller's fd number with integer arguments only.
    let fl = cvt(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
    // SAFETY: as above.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFD, fl | libc::FD_CLOEXEC) })?;
    Ok(())
}

/// The errno wrapper: a negative system-call result becomes the current
/// `errno` as an [`io::Error`]; anything else is returned unchanged.
pub fn cvt<T: IsMinusOne>(r: T) -> io::Result<T> {
    if r.is_minus_one() {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Integer results that use -1 for failure.
pub trait IsMinusOne: Copy {
    fn is_minus_one(self) -> bool;
}

impl IsMinusOne for i32 {
    fn is_minus_one(self) -> bool {
        self == -1
    }
}

impl IsMinusOne for isize {
    fn is_minus_one(self) -> bool {
        self == -1
    }
}

/// How the library's own pollers sleep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// poll(2) sets below `EPOLL_MIN_FDS` registered fds, the epoll
    /// instance from there on.
    Auto,
    Epoll,
    Poll,
}

/// From this many registered fds on, the library's own pollers sleep on
/// the ctx's epoll instance (made when a sleeper first wants it); below it
/// a fresh `poll` set is cheaper than keeping an instance in step (two
/// `epoll_ctl` calls per short-lived registration cost more than scanning
/// a few fds). Once made, the instance is dropped only when fewer than half
/// as many remain, so a count that hovers at the threshold does not
/// rebuild it every time.
pub const EPOLL_MIN_FDS: usize = 32;

/// The backend for a new ctx (see the module comment).
pub fn backend() -> Backend {
    match std::env::var_os("LIBXL_POLL_BACKEND") {
        Some(v) if v == "poll" => Backend::Poll,
        Some(v) if v == "epoll" => Backend::Epoll,
        _ => Backend::Auto,
    }
}

impl Backend {
    /// Whether the ctx should have an epoll instance with `nfds` fds
    /// registered (`have`: it has one now).
    pub fn wants_interest(self, nfds: usize, have: bool) -> bool {
        match self {
            Backend::Auto if have => nfds >= EPOLL_MIN_FDS / 2,
            Backend::Auto => nfds >= EPOLL_MIN_FDS,
            Backend::Epoll => true,
            Backend::Poll => false,
        }
    }
}

/// A fresh `pollfd` entry.
pub fn pollfd(fd: i32, events: i16) -> PollFd {
    PollFd { fd, events, revents: 0 }
}
