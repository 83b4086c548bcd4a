//! An internal poller's epoll mirror of the fd registry.
//!
//! The library's own pollers (synchronous operations, `libxl_event_wait`)
//! sleep in `epoll_wait` on an instance that mirrors the registry, so a
//! wakeup costs O(ready fds), not O(registered fds).
//!
//! Invariants:
//! * `have[fd]` is exactly what this poller's epoll instance holds for `fd`
//!   (the data word is the fd number; the wakeup pipe's is [`WAKE`]).
//! * Every fd whose registrations changed since the last `sync` is in
//!   `dirty` (or `full_resync` is set); `sync` makes the instance hold, for
//!   each, the union of the live registrations' events.
//! * When an fd's last registration goes, it is deleted from every mirror
//!   at once, while the fd is certainly still open: so a closed fd whose
//!   number is reused can never leave a stale entry behind (epoll keys
//!   entries by file description, not by number).
//! * fds epoll refuses (`EPERM`: regular files; `ENOSPC`/`ENOMEM`: the
//!   user's epoll watch limit or kernel memory) are kept in `unpollable` and
//!   `poll`ed beside the epoll fd, so every fd the registry accepts is
//!   watched.
//! * **A closed fd is reported, never silently dropped.** An fd the
//!   application closed while it was still registered (`EBADF` when the
//!   mirror adds it; or gone from the instance, which epoll does silently
//!   when the file is closed, found by [`Mirror::audit`]) is queued in
//!   `closed` and reported as `POLLNVAL` at the next sleep, as `poll(2)`
//!   would report it, so its operation sees the error instead of waiting
//!   forever.
//!
//! The instance is shared (`Arc`) so the sleeping thread can wait on it
//! without the lock while other threads, lock held, change it: epoll_ctl
//! and epoll_wait may run concurrently.
#![forbid(unsafe_code)]

use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::Arc;

use crate::ev::fd::FdRegistry;
use crate::sys::epoll::{self, Epoll, EpollEvent, Op};
use crate::sys::{self, PollFd};

/// The data word of the wakeup pipe's entry.
pub const WAKE: u64 = u64::MAX;

pub struct Mirror {
    pub ep: Arc<Epoll>,
    have: HashMap<i32, i16>,
    dirty: HashSet<i32>,
    full_resync: bool,
    /// fds epoll refused, with their events.
    pub unpollable: Vec<PollFd>,
    /// The epoll result buffer (taken by the sleeping thread).
    pub buf: Vec<EpollEvent>,
    /// fds found closed, to report as `POLLNVAL` (see the invariants).
    closed: Vec<i32>,
}

impl Mirror {
    /// A new mirror of `reg`, with `wake_fd` in it.
    pub fn new(wake_fd: i32, reg: &FdRegistry) -> io::Result<Mirror> {
        let ep = Epoll::new()?;
        ep.ctl(Op::Add, wake_fd, sys::POLLIN, WAKE)?;
        let mut m = Mirror {
            ep: Arc::new(ep),
            have: HashMap::new(),
            dirty: HashSet::new(),
            full_resync: true,
            unpollable: Vec::new(),
            buf: epoll::events(64),
            closed: Vec::new(),
        };
        m.sync(reg);
        Ok(m)
    }

    /// `fd`'s registrations changed.
    pub fn note_changed(&mut self, fd: i32, registry_len: usize) {
        if self.full_resync {
            return;
        }
        self.dirty.insert(fd);
        if self.dirty.len() > 2 * registry_len + 64 {
            self.dirty.clear();
            self.full_resync = true;
        }
    }

    /// `fd` has no registration left: remove it now.
    pub fn remove_now(&mut self, fd: i32) {
        self.dirty.remove(&fd);
        if self.have.remove(&fd).is_some() {
            // ENOENT/EBADF cannot leave anything stale (see the invariants).
            let _ = self.ep.ctl(Op::Delete, fd, 0, 0);
        }
        self.unpollable.retain(|p| p.fd != fd);
    }

    /// Brings the instance in line with the registry for every changed fd.
    pub fn sync(&mut self, reg: &FdRegistry) {
        if self.full_resync {
            self.full_resync = false;
            self.dirty.clear();
            let mut fds: HashSet<i32> = self.have.keys().copied().collect();
            fds.extend(self.unpollable.iter().map(|p| p.fd));
            fds.extend(reg.fds());
            for fd in fds {
                self.apply(fd, reg.union_events(fd));
            }
            return;
        }
        let dirty: Vec<i32> = self.dirty.drain().collect();
        for fd in dirty {
            self.apply(fd, reg.union_events(fd));
        }
    }

    fn apply(&mut self, fd: i32, want: i16) {
        if let Some(p) = self.unpollable.iter_mut().find(|p| p.fd == fd) {
            p.events = want;
            if want == 0 {
                self.unpollable.retain(|p| p.fd != fd);
            }
            return;
        }
        let have = self.have.get(&fd).copied();
        let r = match (have, want) {
            (None, 0) => return,
            (Some(h), w) if h == w => return,
            (Some(_), 0) => {
                self.have.remove(&fd);
                self.ep.ctl(Op::Delete, fd, 0, 0)
            }
            (Some(_), w) => self.ep.ctl(Op::Modify, fd, w, fd as u64).or_else(|e| {
                if e.raw_os_error() == Some(libc::ENOENT) {
                    self.ep.ctl(Op::Add, fd, w, fd as u64)
                } else {
                    Err(e)
                }
            }),
            (None, w) => self.ep.ctl(Op::Add, fd, w, fd as u64).or_else(|e| {
                if e.raw_os_error() == Some(libc::EEXIST) {
                    self.ep.ctl(Op::Modify, fd, w, fd as u64)
                } else {
                    Err(e)
                }
            }),
        };
        match r {
            Ok(()) if want != 0 => {
                self.have.insert(fd, want);
            }
            Ok(()) => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::ENOSPC | libc::ENOMEM)) => {
                self.have.remove(&fd);
                self.unpollable.push(sys::pollfd(fd, want));
            }
            // EBADF: the application closed a registered fd. Report it as
            // poll(2) would (POLLNVAL) rather than watch nothing forever.
            Err(_) => {
                self.have.remove(&fd);
                self.closed.push(fd);
            }
        }
    }

    /// Checks that every fd this instance should hold is still in it: epoll
    /// forgets an fd silently when its file is closed. Each one gone is
    /// queued as closed (reported as `POLLNVAL`) and marked for the next
    /// `sync`. O(fds); run only by a poller that has been idle for a whole
    /// [`AUDIT_MS`](super::AUDIT_MS).
    pub fn audit(&mut self) {
        let gone: Vec<i32> = self
            .have
            .iter()
            .filter(|&(&fd, &ev)| {
                matches!(self.ep.ctl(Op::Modify, fd, ev, fd as u64),
                    Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::EBADF)))
            })
            .map(|(&fd, _)| fd)
            .collect();
        for fd in gone {
            self.have.remove(&fd);
            if !self.full_resync {
                self.dirty.insert(fd);
            }
            self.closed.push(fd);
        }
    }

    /// Takes the fds found closed, as `(fd, POLLNVAL)` results.
    pub fn take_closed(&mut self) -> Ready {
        self.closed.drain(..).map(|fd| (fd as u64, sys::POLLNVAL)).collect()
    }

    /// How many fds the instance holds (for tests).
    pub fn len(&self) -> usize {
        self.have.len()
    }

    pub fn is_empty(&self) -> bool {
        self.have.is_empty()
    }
}

/// What a sleep on a mirror saw: (fd or [`WAKE`] as data, revents).
pub type Ready = Vec<(u64, i16)>;

/// Sleeps (lock released by the caller) on `ep`, plus `unpollable` fds if
/// any, for up to `timeout` ms; fills `ready`.
pub fn sleep(ep: &Epoll, buf: &mut [EpollEvent], unpollable: &mut [PollFd], timeout: i32, ready: &mut Ready) -> io::Result<()> {
    ready.clear();
    let mut ep_timeout = timeout;
    if !unpollable.is_empty() {
        let mut set: Vec<PollFd> = Vec::with_capacity(unpollable.len() + 1);
        set.push(sys::pollfd(ep.raw_fd(), sys::POLLIN));
        set.extend(unpollable.iter().copied());
        sys::poll::poll(&mut set, timeout)?;
        for p in &set[1..] {
            if p.revents != 0 {
                ready.push((p.fd as u64, p.revents));
            }
        }
        if set[0].revents == 0 {
            return Ok(());
        }
        ep_timeout = 0;
    }
    for ev in ep.wait(buf, ep_timeout)? {
        ready.push((epoll::data(ev), epoll::revents(ev)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

    use crate::ao::AoHow;
    use crate::egc::Egc;
    use crate::rc::ERROR_TIMEDOUT;
    use crate::sys::POLLIN;
    use crate::testutil;

    fn mirror_len(egc: &Egc<'_>, pid: crate::poller::PollerId) -> usize {
        egc.pollers.get_ref(pid).mirror.as_ref().map_or(0, |m| m.len())
    }

    #[test]
    fn an_fd_leaves_every_mirror_when_its_last_registration_goes() {
        let ctx = testutil::ctx();
        let (r, _w) = testutil::pipe();
        let mut egc = Egc::new(&ctx, "test");
        let pid = egc.st().pollers.get().unwrap();
        let a = egc.ev_fd_register(None, r.as_raw_fd(), POLLIN, Box::new(|_, _, _, _, _| {})).unwrap();
        let b = egc.ev_fd_register(None, r.as_raw_fd(), crate::sys::POLLOUT, Box::new(|_, _, _, _, _| {})).unwrap();
        egc.mirror_ready(pid).unwrap();
        assert_eq!(mirror_len(&egc, pid), 1, "two registrations of one fd share one epoll entry");
        egc.ev_fd_deregister(a);
        assert_eq!(mirror_len(&egc, pid), 1, "one registration left");
        egc.ev_fd_deregister(b);
        assert_eq!(mirror_len(&egc, pid), 0, "removed at once, not at the next sync");
    }

    #[test]
    fn a_regular_file_fd_is_watched_by_poll_beside_epoll() {
        let ctx = testutil::ctx();
        let f = std::fs::File::open("/proc/self/status").unwrap();
        let mut egc = Egc::new(&ctx, "test");
        let rc = crate::testops::fdevent::test_fdevent(&mut egc, f.as_raw_fd(), POLLIN, AoHow::Sync);
        assert_eq!(rc, 0, "epoll refuses regular files (EPERM); the poller must still see it ready");
    }

    /// An fd number that is never open (above any fd limit we run with).
    const NEVER_OPEN: i32 = 1 << 29;

    #[test]
    fn a_registered_fd_that_is_closed_is_reported_as_pollnval_not_watched_forever() {
        let ctx = testutil::ctx();
        let mut egc = Egc::new(&ctx, "test");
        let pid = egc.st().pollers.get().unwrap();
        egc.ev_fd_register(None, NEVER_OPEN, POLLIN, Box::new(|_, _, _, _, _| {})).unwrap();
        egc.mirror_ready(pid).unwrap();
        let m = egc.st().pollers.get_mut(pid).mirror.as_mut().unwrap();
        assert_eq!(m.take_closed(), vec![(NEVER_OPEN as u64, crate::sys::POLLNVAL)], "EBADF from epoll_ctl is reported");
        assert!(m.take_closed().is_empty(), "once");
    }

    #[test]
    fn audit_finds_an_fd_closed_while_in_the_epoll_set() {
        let ctx = testutil::ctx();
        let (r, _w) = testutil::pipe();
        let fd = r.as_raw_fd();
        let mut egc = Egc::new(&ctx, "test");
        let pid = egc.st().pollers.get().unwrap();
        egc.ev_fd_register(None, fd, POLLIN, Box::new(|_, _, _, _, _| {})).unwrap();
        egc.mirror_ready(pid).unwrap();
        let m = egc.st().pollers.get_mut(pid).mirror.as_mut().unwrap();
        m.audit();
        assert!(m.take_closed().is_empty(), "an open fd passes the audit");
        drop(r); // the application closes a registered fd: epoll forgets it silently
        m.audit();
        assert_eq!(m.take_closed(), vec![(fd as u64, crate::sys::POLLNVAL)]);
        assert_eq!(m.len(), 0);
    }

    #[test]
    fn sync_op_on_an_fd_closed_while_registered_completes_with_an_error() {
        let ctx = testutil::ctx();
        let mut egc = Egc::new(&ctx, "test");
        let rc = crate::testops::fdevent::test_fdevent(&mut egc, NEVER_OPEN, POLLIN, AoHow::Sync);
        assert_eq!(rc, crate::rc::ERROR_FAIL, "POLLNVAL completes the op with an error");
        assert!(egc.fds.is_empty());
    }

    #[test]
    fn mirror_follows_changes_made_while_its_poller_was_idle() {
        let ctx = testutil::ctx();
        let (r1, w1) = testutil::pipe();
        let mut egc = Egc::new(&ctx, "test");
        // A first synchronous op builds the pooled poller's mirror.
        let ao = egc.ao_create(AoHow::Sync, 0).unwrap();
        egc.ev_time_register_rel(ao, 1, Box::new(move |e, _, rc| e.ao_complete(ao, rc))).unwrap();
        assert_eq!(egc.ao_inprogress(ao), ERROR_TIMEDOUT);
        // Registered while that poller is idle in the pool: must be seen.
        testutil::poke(&w1);
        let rc = crate::testops::fdevent::test_fdevent(&mut egc, r1.as_raw_fd(), POLLIN, AoHow::Sync);
        assert_eq!(rc, 0);
    }
}
