//! The ctx's kernel interest set: one epoll instance holding every
//! registered fd, changed *eagerly*. It is made (from the registry) when a
//! sleeper first wants it, so a ctx whose threads never sleep in the
//! library pays nothing for it, and kept in step from then on.
//!
//! libxl's contract is that a registered fd stays open until it is
//! deregistered. So the instance is changed at the moment an fd's
//! registrations change (register, modify, deregister: `change`), while
//! the fd is certainly open and names the file the registration means.
//! Nothing is cached by fd number: what the instance holds for an fd is,
//! by construction, the union of the events of that fd's live
//! registrations (the caller passes the union before and after each
//! change), so an fd number closed and reused between two sleeps cannot
//! leave a stale entry behind, and a sleeper waiting on the instance sees
//! an fd added by another thread at once.
//!
//! Invariants:
//! * **Exact.** For every registered fd with a non-zero union of events,
//!   the instance holds exactly one entry, for the file the fd names, with
//!   that union (data word: the fd number) — or, if epoll refuses the file
//!   (`EPERM`: regular files; `ENOSPC`/`ENOMEM`: the user's watch limit or
//!   kernel memory), the fd is in `unpollable` with that union, and
//!   sleepers `poll` it beside the instance. Nothing else is in either.
//! * **Misuse is found, never absorbed.** An fd the application closed
//!   while it was still registered breaks the first invariant (epoll drops
//!   the file silently; a dup may keep its entry alive). Whenever a change
//!   or the idle audit meets one (`EBADF`/`ENOENT` where the registry says
//!   the fd is present), it is returned as a [`Finding`]: the caller logs
//!   it, reports `POLLNVAL` to the registrations (queued in `closed` for
//!   the next sleep) and, since a dup'd file may have left an entry we can
//!   no longer name, replaces the instance with a fresh one built from the
//!   registry.
//!
//! The instance is shared (`Arc`): a sleeper waits on it without the lock
//! while other threads change it; `epoll_ctl` and `epoll_wait` may run
//! concurrently.
#![forbid(unsafe_code)]

use std::io;
use std::sync::Arc;

use crate::sys::epoll::{Epoll, Op};
use crate::sys::{self, PollFd};

/// A registered fd found closed (or its number now naming another file):
/// the application broke libxl's contract, or the set is wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Finding {
    pub fd: i32,
    pub what: &'static str,
}

/// What a change did that the caller must act on.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changed {
    /// The fds sleepers `poll` beside the instance changed (`unpollable`
    /// or `closed`): sleepers on the instance are stale.
    pub sleep_set: bool,
    pub finding: Option<Finding>,
}

pub struct Interest {
    ep: Arc<Epoll>,
    /// fds epoll refused, with their union of events.
    unpollable: Vec<PollFd>,
    /// Registered fds found closed, to report as `POLLNVAL` at the next
    /// sleep (each once).
    closed: Vec<i32>,
}

impl Interest {
    /// A new instance holding `fds` (fd, union of events), with what was
    /// found on the way (fds already closed).
    pub fn build(fds: impl Iterator<Item = (i32, i16)>) -> io::Result<(Interest, Vec<Finding>)> {
        let mut i = Interest { ep: Arc::new(Epoll::new()?), unpollable: Vec::new(), closed: Vec::new() };
        let mut found = Vec::new();
        for (fd, events) in fds {
            if let Some(f) = i.change(fd, 0, events).finding {
                found.push(f);
            }
        }
        Ok((i, found))
    }

    /// `fd`'s union of events goes from `old` to `new` (0: not registered,
    /// or no events). Call it for every change, while `fd` is open.
    pub fn change(&mut self, fd: i32, old: i16, new: i16) -> Changed {
        if old == new {
            return Changed::default();
        }
        if let Some(pos) = self.unpollable.iter().position(|p| p.fd == fd) {
            if new == 0 {
                self.unpollable.swap_remove(pos);
            } else {
                self.unpollable[pos].events = new;
            }
            return Changed { sleep_set: true, finding: None };
        }
        let r = match (old, new) {
            (0, _) => self.ep.ctl(Op::Add, fd, new, fd as u64),
            (_, 0) => self.ep.ctl(Op::Delete, fd, 0, 0),
            _ => self.ep.ctl(Op::Modify, fd, new, fd as u64),
        };
        match r.map_err(|e| e.raw_os_error().unwrap_or(0)) {
            Ok(()) => Changed::default(),
            Err(libc::EPERM | libc::ENOSPC | libc::ENOMEM) if new != 0 => {
                if old != 0 {
                    // Was in the instance: refused only by MOD, so the
                    // entry is still there; take it out before polling.
                    let _ = self.ep.ctl(Op::Delete, fd, 0, 0);
                }
                self.unpollable.push(sys::pollfd(fd, new));
                Changed { sleep_set: true, finding: None }
            }
            Err(libc::EEXIST) if old == 0 => {
                // The file is in the instance although the registry had no
                // interest in this fd: only misuse (a registered fd closed
                // and its file put back at the same number) gets here.
                let _ = self.ep.ctl(Op::Modify, fd, new, fd as u64);
                let what = "was already in the epoll set (closed and reopened while registered?)";
                Changed { sleep_set: false, finding: Some(Finding { fd, what }) }
            }
            Err(e) => {
                let what = match (old, new, e) {
                    (0, _, _) => "is not open (registered while closed)",
                    (_, 0, _) => "was closed before it was deregistered",
                    _ => "was closed (or its number reused) while registered",
                };
                if new != 0 {
                    self.closed.push(fd);
                }
                Changed { sleep_set: new != 0, finding: Some(Finding { fd, what }) }
            }
        }
    }

    /// The idle audit: every fd the registry says is in the instance
    /// (`fds`: fd, union of events) must still be there, for the file its
    /// number names now. O(fds) `epoll_ctl` calls; run only by a sleeper
    /// that saw nothing for a whole audit period. Each fd missing is
    /// queued as closed and returned.
    pub fn audit(&mut self, fds: impl Iterator<Item = (i32, i16)>) -> Vec<Finding> {
        let mut found = Vec::new();
        for (fd, events) in fds {
            if events == 0 || self.unpollable.iter().any(|p| p.fd == fd) {
                continue;
            }
            if let Err(e) = self.ep.ctl(Op::Modify, fd, events, fd as u64) {
                if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::EBADF)) {
                    self.closed.push(fd);
                    found.push(Finding { fd, what: "was closed (or its number reused) while registered" });
                }
            }
        }
        found
    }

    /// What a sleeper waits on: the instance, and the fds polled beside it.
    pub fn sleep_set(&self) -> (Arc<Epoll>, &[PollFd]) {
        (self.ep.clone(), &self.unpollable)
    }

    /// Takes the fds found closed, to dispatch as `POLLNVAL`.
    pub fn take_closed(&mut self) -> Vec<i32> {
        std::mem::take(&mut self.closed)
    }

    /// Puts back fds found closed (and not yet reported) when the instance
    /// is replaced.
    pub fn requeue_closed(&mut self, fds: Vec<i32>) {
        for fd in fds {
            if !self.closed.contains(&fd) {
                self.closed.push(fd);
            }
        }
    }

    /// How many fds the instance should hold (for tests).
    pub fn unpollable_len(&self) -> usize {
        self.unpollable.len()
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

    use super::*;
    use crate::sys::{POLLIN, POLLOUT};
    use crate::testutil;

    fn ready(i: &Interest) -> Vec<(u64, i16)> {
        let mut buf = crate::sys::epoll::events(16);
        let (ep, _) = i.sleep_set();
        ep.wait(&mut buf, 0).unwrap().iter().map(|e| (crate::sys::epoll::data(e), crate::sys::epoll::revents(e))).collect()
    }

    #[test]
    fn changes_are_applied_at_once_and_exactly() {
        let (r, w) = testutil::pipe();
        let fd = r.as_raw_fd();
        let (mut i, found) = Interest::build(std::iter::empty()).unwrap();
        assert!(found.is_empty());
        assert_eq!(i.change(fd, 0, POLLIN), Changed::default());
        testutil::poke(&w);
        assert_eq!(ready(&i), vec![(fd as u64, POLLIN)], "added at once");
        assert_eq!(i.change(fd, POLLIN, POLLIN | POLLOUT), Changed::default());
        assert_eq!(i.change(fd, POLLIN | POLLOUT, 0), Changed::default());
        assert!(ready(&i).is_empty(), "removed at once");
    }

    /// The defect of issue 12: an fd number deregistered, closed and reused
    /// by another file between two sleeps must be seen for the new file.
    #[test]
    fn reused_fd_number_names_the_new_file_at_once() {
        let (mut i, _) = Interest::build(std::iter::empty()).unwrap();
        let (r1, w1) = testutil::pipe_out_of_the_way();
        let n = r1.as_raw_fd();
        i.change(n, 0, POLLIN);
        i.change(n, POLLIN, 0); // deregistered while open
        drop((r1, w1));
        let (r2, w2) = testutil::pipe();
        nix::unistd::dup2(r2.as_raw_fd(), n).unwrap();
        assert_eq!(i.change(n, 0, POLLIN), Changed::default(), "a plain ADD of the new file");
        testutil::poke(&w2);
        assert_eq!(ready(&i), vec![(n as u64, POLLIN)]);
        nix::unistd::close(n).unwrap();
    }

    #[test]
    fn a_dup_kept_old_file_leaves_no_entry_behind() {
        let (mut i, _) = Interest::build(std::iter::empty()).unwrap();
        let (r1, w1) = testutil::pipe();
        let n = r1.as_raw_fd();
        let kept = nix::unistd::dup(n).unwrap();
        i.change(n, 0, POLLIN);
        i.change(n, POLLIN, 0); // deregistered while open: the entry goes
        drop(r1);
        testutil::poke(&w1); // the old file is readable, through `kept`
        assert!(ready(&i).is_empty(), "no entry of the old file is left");
        nix::unistd::close(kept).unwrap();
    }

    #[test]
    fn regular_files_are_polled_beside_the_instance() {
        let f = std::fs::File::open("/proc/self/status").unwrap();
        let (mut i, _) = Interest::build(std::iter::empty()).unwrap();
        assert!(i.change(f.as_raw_fd(), 0, POLLIN).sleep_set, "the sleep set changed");
        assert_eq!(i.unpollable_len(), 1);
        assert!(i.change(f.as_raw_fd(), POLLIN, 0).sleep_set);
        assert_eq!(i.unpollable_len(), 0);
    }

    #[test]
    fn closed_while_registered_is_a_finding_from_change_and_audit() {
        let (mut i, _) = Interest::build(std::iter::empty()).unwrap();
        let (r, _w) = testutil::pipe_out_of_the_way();
        let fd = r.as_raw_fd();
        i.change(fd, 0, POLLIN);
        assert!(i.audit([(fd, POLLIN)].into_iter()).is_empty(), "an open fd passes the audit");
        drop(r); // the application closes a registered fd: epoll forgets it silently
        let found = i.audit([(fd, POLLIN)].into_iter());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].fd, fd);
        assert_eq!(i.take_closed(), vec![fd], "reported as POLLNVAL at the next sleep");
        assert!(i.change(fd, POLLIN, 0).finding.is_some(), "its deregistration finds it gone too");
        let (_, found) = Interest::build([(1 << 29, POLLIN)].into_iter()).unwrap();
        assert_eq!(found.len(), 1, "a never-open fd is found at build");
    }
}
