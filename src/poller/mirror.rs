//! An internal poller's epoll mirror of the fd registry.
//!
//! The library's own pollers (synchronous operations, `libxl_event_wait`)
//! sleep in `epoll_wait` on an instance that mirrors the registry once
//! many fds are registered, so a wakeup costs O(ready fds), not
//! O(registered fds).
//!
//! Invariants:
//! * `have[fd]` is what this poller's epoll instance holds for `fd`, as
//!   far as we can tell (the data word is the fd number; the wakeup pipe's
//!   is [`WAKE`]).
//! * Every fd whose registrations changed since the last `sync` is in
//!   `dirty` (or `full_resync` is set); `sync`, done before each sleep,
//!   makes the instance hold, for each, the union of the live
//!   registrations' events. Changes are applied lazily, so an fd that is
//!   deregistered and registered again between two sleeps (an operation
//!   re-armed on the same fd) costs one `epoll_ctl` (a MOD that proves the
//!   entry still belongs to the same open file; if the fd number was
//!   closed and reused meanwhile it fails and we ADD the new file).
//! * **No stale entry survives.** epoll keys entries by open file
//!   description, so an fd closed (and perhaps reused) before we deleted it
//!   can leave an entry we cannot name any more if the description lives on
//!   elsewhere (a dup). Such an entry shows up as wakeups that dispatch
//!   nothing; after [`SPURIOUS_LIMIT`] such sleeps in a row (or at once, if
//!   a delete already failed with EBADF) the instance is rebuilt from the
//!   registry, which evicts it. Spurious wakeups never become spurious
//!   callbacks: every dispatch re-checks the fd first.
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

use std::io;
use std::sync::Arc;

use crate::ev::fd::FdRegistry;
use crate::fasthash::{FastMap, FastSet};
use crate::sys::epoll::{self, Epoll, EpollEvent, Op};
use crate::sys::{self, PollFd};

/// The data word of the wakeup pipe's entry.
pub const WAKE: u64 = u64::MAX;

/// Consecutive sleeps that woke for nothing before the instance is rebuilt.
pub const SPURIOUS_LIMIT: u32 = 8;

pub struct Mirror {
    pub ep: Arc<Epoll>,
    wake_fd: i32,
    have: FastMap<i32, i16>,
    dirty: FastSet<i32>,
    /// fds that lost their last registration since the last sync: if they
    /// are registered again, the fd number may now name another file.
    gone: FastSet<i32>,
    full_resync: bool,
    /// fds epoll refused, with their events.
    pub unpollable: Vec<PollFd>,
    /// The epoll result buffer (taken by the sleeping thread).
    pub buf: Vec<EpollEvent>,
    /// A delete failed with EBADF: a stale entry may exist.
    suspect_stale: bool,
    /// Consecutive sleeps that dispatched nothing.
    spurious: u32,
    /// How many times the instance was rebuilt (for tests and logs).
    pub rebuilds: u32,
    /// fds found closed, to report as `POLLNVAL` (see the invariants).
    closed: Vec<i32>,
}

impl Mirror {
    /// A new mirror of `reg`, with `wake_fd` in it.
    pub fn new(wake_fd: i32, reg: &FdRegistry) -> io::Result<Mirror> {
        let mut m = Mirror {
            ep: Arc::new(Self::instance(wake_fd)?),
            wake_fd,
            have: FastMap::default(),
            dirty: FastSet::default(),
            gone: FastSet::default(),
            full_resync: true,
            unpollable: Vec::new(),
            buf: epoll::events(64),
            suspect_stale: false,
            spurious: 0,
            rebuilds: 0,
            closed: Vec::new(),
        };
        m.sync(reg);
        Ok(m)
    }

    fn instance(wake_fd: i32) -> io::Result<Epoll> {
        let ep = Epoll::new()?;
        ep.ctl(Op::Add, wake_fd, sys::POLLIN, WAKE)?;
        Ok(ep)
    }

    /// `fd`'s registrations changed; `gone`: none are left.
    pub fn note_changed(&mut self, fd: i32, registry_len: usize, gone: bool) {
        if self.full_resync {
            return;
        }
        self.dirty.insert(fd);
        if gone && self.have.contains_key(&fd) {
            self.gone.insert(fd);
        }
        if self.dirty.len() > 2 * registry_len + 64 {
            self.dirty.clear();
            self.full_resync = true;
        }
    }

    /// Replaces the instance with a fresh one holding exactly the registry
    /// (evicts any stale entry). Keeps the old one if a new one cannot be
    /// made.
    fn rebuild(&mut self, reg: &FdRegistry) -> io::Result<()> {
        let ep = Self::instance(self.wake_fd)?;
        self.ep = Arc::new(ep);
        self.have.clear();
        self.unpollable.clear();
        self.full_resync = true;
        self.suspect_stale = false;
        self.spurious = 0;
        self.rebuilds += 1;
        self.sync(reg);
        Ok(())
    }

    /// Records what the last sleep dispatched; rebuilds the instance if
    /// wakeups keep finding nothing (see the invariants).
    pub fn after_sleep(&mut self, woke_for_fds: bool, dispatched: bool, reg: &FdRegistry) -> io::Result<()> {
        if !woke_for_fds || dispatched {
            self.spurious = 0;
            return Ok(());
        }
        self.spurious += 1;
        if self.suspect_stale || self.spurious >= SPURIOUS_LIMIT {
            self.rebuild(reg)?;
        }
        Ok(())
    }

    /// Brings the instance in line with the registry for every changed fd.
    pub fn sync(&mut self, reg: &FdRegistry) {
        if self.full_resync {
            self.full_resync = false;
            self.dirty.clear();
            // Entries kept across a "gone" are re-verified below.
            let gone = std::mem::take(&mut self.gone);
            for fd in gone {
                self.verify(fd);
            }
            let mut fds: FastSet<i32> = self.have.keys().copied().collect();
            fds.extend(self.unpollable.iter().map(|p| p.fd));
            fds.extend(reg.fds());
            for fd in fds {
                self.apply(fd, reg.union_events(fd));
            }
            return;
        }
        let dirty: Vec<i32> = self.dirty.drain().collect();
        for fd in dirty {
            if self.gone.remove(&fd) {
                self.verify(fd);
            }
            self.apply(fd, reg.union_events(fd));
        }
    }

    /// `fd` lost all its registrations since we added it: forget our
    /// record of it unless the kernel's entry still refers to the file the
    /// number names now (a MOD to the same events succeeds only then), so
    /// that `apply` ADDs or DELetes afresh.
    fn verify(&mut self, fd: i32) {
        if let Some(&h) = self.have.get(&fd) {
            if let Err(e) = self.ep.ctl(Op::Modify, fd, h, fd as u64) {
                self.have.remove(&fd);
                if e.raw_os_error() == Some(libc::EBADF) {
                    self.suspect_stale = true;
                }
            }
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
                match self.ep.ctl(Op::Delete, fd, 0, 0) {
                    Err(e) if e.raw_os_error() == Some(libc::EBADF) => {
                        // Closed before we got here: its entry went with the
                        // description, unless a dup keeps that alive.
                        self.suspect_stale = true;
                        Ok(())
                    }
                    _ => Ok(()),
                }
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
    /// queued as closed (reported as `POLLNVAL`; an fd that is no longer
    /// registered, or whose number now names another file, dispatches
    /// nothing) and marked for the next `sync`. O(fds); run only by a poller
    /// that has been idle for a whole [`AUDIT_MS`](super::AUDIT_MS).
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
            self.gone.remove(&fd);
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
    fn an_fd_leaves_the_mirror_when_its_last_registration_goes() {
        let ctx = testutil::ctx();
        let (r, _w) = testutil::pipe();
        let mut egc = Egc::new(&ctx, "test");
        let pid = egc.st().pollers.get().unwrap();
        let a = egc.ev_fd_register(None, r.as_raw_fd(), POLLIN, Box::new(|_, _, _, _, _| {})).unwrap();
        let b = egc.ev_fd_register(None, r.as_raw_fd(), crate::sys::POLLOUT, Box::new(|_, _, _, _, _| {})).unwrap();
        egc.mirror_ready(pid).unwrap();
        assert_eq!(mirror_len(&egc, pid), 1, "two registrations of one fd share one epoll entry");
        egc.ev_fd_deregister(a);
        egc.mirror_ready(pid).unwrap();
        assert_eq!(mirror_len(&egc, pid), 1, "one registration left");
        egc.ev_fd_deregister(b);
        egc.mirror_ready(pid).unwrap();
        assert_eq!(mirror_len(&egc, pid), 0, "removed at the next sync");
    }

    fn epoll_ctx() -> crate::ctx::Ctx {
        let mut ctx = testutil::ctx();
        ctx.backend = crate::sys::Backend::Epoll;
        ctx
    }

    /// An fd number closed and reused between two sleeps names another
    /// file: the mirror must add the new file, not trust its old record
    /// (else the new file's readiness is never seen: a hang).
    #[test]
    fn reused_fd_number_is_added_afresh_not_assumed_present() {
        let ctx = epoll_ctx();
        let (r1, w1) = testutil::pipe();
        let n = r1.as_raw_fd();
        let mut egc = Egc::new(&ctx, "test");
        let pid = egc.st().pollers.get().unwrap();
        let ev = egc.ev_fd_register(None, n, POLLIN, Box::new(|_, _, _, _, _| {})).unwrap();
        egc.mirror_ready(pid).unwrap();
        egc.ev_fd_deregister(ev);
        drop((r1, w1));
        let (r2, w2) = testutil::pipe();
        nix::unistd::dup2(r2.as_raw_fd(), n).unwrap(); // fd n is now the new pipe
        testutil::poke(&w2);
        egc.st().pollers.put(pid);
        let rc = crate::testops::fdevent::test_fdevent(&mut egc, n, POLLIN, AoHow::Sync);
        assert_eq!(rc, 0);
        nix::unistd::close(n).unwrap();
        drop(r2);
    }

    /// A file kept open by a dup after its fd number was closed leaves an
    /// epoll entry we cannot name; its wakeups dispatch nothing, and the
    /// mirror rebuilds itself instead of spinning.
    #[test]
    fn stale_entry_of_a_dup_kept_file_is_evicted_by_a_rebuild() {
        let ctx = epoll_ctx();
        let (r1, w1) = testutil::pipe();
        let n = r1.as_raw_fd();
        let kept = nix::unistd::dup(n).unwrap();
        let mut egc = Egc::new(&ctx, "test");
        let pid = egc.st().pollers.get().unwrap();
        let ev = egc.ev_fd_register(None, n, POLLIN, Box::new(|_, _, _, _, _| {})).unwrap();
        egc.mirror_ready(pid).unwrap();
        egc.ev_fd_deregister(ev);
        drop(r1);
        testutil::poke(&w1); // the old file is readable, through `kept`
        let (r2, _w2) = testutil::pipe();
        nix::unistd::dup2(r2.as_raw_fd(), n).unwrap();
        egc.ev_fd_register(None, n, POLLIN, Box::new(|_, _, _, _, _| panic!("not readable"))).unwrap();
        let ao = egc.ao_create(AoHow::ForEvent(1), 0).unwrap();
        egc.ev_time_register_rel(ao, 30, Box::new(|_, _, _| {})).unwrap();
        let t0 = std::time::Instant::now();
        // Each turn returns at once (stale wakeup) until the rebuild; then
        // the turn sleeps until the 30 ms timer fires.
        let mut turns = 0;
        while !egc.times.is_empty() && turns < super::SPURIOUS_LIMIT + 5 {
            egc.eventloop_iteration(pid).unwrap();
            turns += 1;
        }
        let m = egc.pollers.get_ref(pid).mirror.as_ref().unwrap();
        assert!(m.rebuilds >= 1, "the stale entry was not evicted");
        assert!(egc.times.is_empty(), "the timer fired: the poller slept normally after the rebuild");
        assert!(t0.elapsed().as_millis() >= 29);
        nix::unistd::close(n).unwrap();
        nix::unistd::close(kept).unwrap();
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
        let ctx = epoll_ctx();
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
        let ctx = epoll_ctx();
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
        let ctx = epoll_ctx();
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
