//! One turn of the library's own event loop (synchronous operations and
//! `libxl_event_wait`): bring the poller's set up to date, sleep with the
//! lock released, dispatch what happened.
//!
//! Invariants:
//! * The set a turn sleeps on is made under the lock, after which the
//!   poller counts as up to date (see the baton in `poller`): a poll set is
//!   copied from the fd registry; an epoll sleep waits on the ctx's kernel
//!   interest set (plus the fds polled beside it), which is always current.
//! * Dispatch goes by fd number, and every registration re-checks its fd
//!   before its callback runs (`ev::fd`), so a result about a number that
//!   was deregistered, closed or reused meanwhile runs no callback.
//! * **The idle audit is a diagnostic.** A sleeper that has fds to watch
//!   and saw nothing for [`AUDIT_MS`] checks them (a poll set: polls the
//!   same set again, which reports a closed fd as `POLLNVAL`; an epoll
//!   sleep: asks the kernel whether each registered fd is still in the
//!   instance). It finds only fds the application closed while they were
//!   registered, which the kernel does not report to a sleeper; every
//!   finding is logged at WARN naming the fd (fatal under
//!   `LIBXL_TEST_AUDIT=fail`). It never refreshes a set: a stale set stays
//!   stale, so a missing wakeup still shows as a hang in the tests.
#![forbid(unsafe_code)]

use std::io;

use crate::reg::PollerId;
use crate::egc::Egc;
use crate::rc::{Rc, ERROR_FAIL};
use crate::sys::{self, epoll, PollFd};

/// How long a sleeper with fds to watch sleeps at most before the idle
/// audit (see the module comment).
pub const AUDIT_MS: i32 = 1000;

/// Results of an epoll sleep's harvest, at most this many per turn.
const EP_BATCH: usize = 64;

/// The next slice of a sleep of `timeout` ms (negative: none) begun at
/// `start`: `(ms, capped)`, where `capped` means the slice was cut to
/// [`AUDIT_MS`] (only if `audit`) and the sleep is not over when it ends.
fn sleep_slice(timeout: i32, start: u64, audit: bool) -> (i32, bool) {
    let remaining = if timeout < 0 {
        None
    } else {
        let spent = (sys::clock::mono_ns().saturating_sub(start) / 1_000_000).min(i32::MAX as u64) as i32;
        Some((timeout - spent).max(0))
    };
    match remaining {
        Some(ms) if !audit || ms <= AUDIT_MS => (ms, false),
        None if !audit => (-1, false),
        _ => (AUDIT_MS, true),
    }
}

/// The first look of a sleep that may block (`timeout` not 0): a poll
/// with zero timeout. When something is ready already (a synchronous
/// operation on a ready fd) it is the only poll of the turn, and the
/// kernel's cheapest (it neither reads the clock nor queues the thread on
/// the fds' wait queues); otherwise it costs one short syscall before a
/// sleep. Returns the number of ready entries (0 after a zero-timeout
/// poll, or when none is ready).
fn look(set: &mut [PollFd], timeout: i32) -> io::Result<usize> {
    if timeout == 0 {
        return Ok(0);
    }
    sys::poll::poll(set, 0)
}

/// Milliseconds from `now` to `deadline`, as poll(2) wants them: 0 if past,
/// rounded up, at most 2 000 000 000.
pub fn timeout_ms(deadline: u64, now: u64) -> i32 {
    if deadline <= now {
        return 0;
    }
    let ms = (deadline - now).div_ceil(1_000_000);
    ms.min(2_000_000_000) as i32
}

impl Egc<'_> {
    /// Passes the baton (see `poller`). Called by `Egc::drop`.
    pub fn baton_pass(&mut self) {
        if self.ctx.no_baton {
            return;
        }
        if let Err(e) = self.st().pollers.baton_pass() {
            self.disaster("cannot write a poller's wakeup pipe", e.raw_os_error().unwrap_or(0));
        }
    }

    /// Builds poller `pid`'s poll set from the fd registry and returns the
    /// timeout (ms, -1 for none) implied by the earliest deadline, as seen
    /// from `now()` (called only if there is a deadline).
    pub fn make_set(&mut self, pid: PollerId, now: impl FnOnce() -> u64) -> i32 {
        let st = self.st();
        let wake_fd = st.pollers.wakeup_fd(pid);
        let (fds_reg, pollers) = (&st.fds, &mut st.pollers);
        let p = pollers.get_mut(pid);
        p.fds.clear();
        fds_reg.fill_set(&mut p.fds);
        p.fds.push(sys::pollfd(wake_fd, sys::POLLIN));
        pollers.set_made(pid, false);
        match st.times.earliest() {
            Some(deadline) => timeout_ms(deadline, now()),
            None => -1,
        }
    }

    /// One turn of the library's own event loop on poller `pid`. `EINTR`
    /// is a turn in which nothing happened.
    pub fn eventloop_iteration(&mut self, pid: PollerId) -> Result<(), Rc> {
        if self.ctx.backend.wants_interest(self.s().fds.distinct_fds(), self.s().interest.is_some()) {
            if self.s().interest.is_none() {
                // Made when first wanted, then kept in step by every
                // registration: a ctx whose threads never sleep in the
                // library (osevent hooks, the application's loop) pays
                // nothing for it.
                self.interest_rebuild();
            }
            if self.s().interest.is_some() {
                return self.eventloop_iteration_epoll(pid);
            }
        }
        // The clock is read only for a deadline (`sleep_slice` needs
        // `start` only then).
        let mut start = 0;
        let timeout = self.make_set(pid, || {
            start = sys::clock::mono_ns();
            start
        });
        // Registrations not yet known to name an open fd are settled by
        // this poll: a POLLNVAL for one below is a bad argument (see `fd`).
        let settling = self.st().fds.take_unverified();
        let p = self.st().pollers.get_mut(pid);
        let mut fds = std::mem::take(&mut p.fds);
        let audit = fds.len() > 1;
        // Idle for a whole audit period: poll the same set again, which
        // reports any fd closed meanwhile as POLLNVAL (the kernel does not
        // wake a sleeper when one of its fds is closed).
        let (r, fresh) = self.sleep_on(pid, || {
            match look(&mut fds, timeout) {
                Ok(0) => {}
                other => return other,
            }
            loop {
                let (slice, capped) = sleep_slice(timeout, start, audit);
                match sys::poll::poll(&mut fds, slice) {
                    Ok(0) if capped => continue,
                    other => break other,
                }
            }
        });
        let result = self.sleep_result(r.map(|_| ()));
        if result.is_ok() {
            self.fresh = fresh;
            self.afterpoll_internal(pid, &fds);
            self.fresh = false;
        }
        for ev in settling {
            self.st().fds.mark_verified(ev);
        }
        self.st().pollers.get_mut(pid).fds = fds;
        result
    }

    /// A turn sleeping on the ctx's kernel interest set: `poll` on the
    /// instance, the poller's wakeup pipe and the fds epoll refused, then
    /// (if the instance is readable) a non-blocking harvest of its results.
    fn eventloop_iteration_epoll(&mut self, pid: PollerId) -> Result<(), Rc> {
        let st = self.st();
        let mut start = 0;
        let timeout = st.times.earliest().map_or(-1, |d| {
            start = sys::clock::mono_ns();
            timeout_ms(d, start)
        });
        let interest = st.interest.as_mut().expect("checked by the caller");
        let mut closed = interest.take_closed();
        let (ep, beside) = interest.sleep_set();
        let wake_fd = st.pollers.wakeup_fd(pid);
        st.pollers.set_made(pid, true);
        let audit = !st.fds.is_empty();
        let p = st.pollers.get_mut(pid);
        let mut set = std::mem::take(&mut p.fds);
        set.clear();
        set.push(sys::pollfd(ep.raw_fd(), sys::POLLIN));
        set.push(sys::pollfd(wake_fd, sys::POLLIN));
        set.extend_from_slice(beside);
        let mut buf = std::mem::take(&mut p.ep_buf);
        buf.resize(EP_BATCH, epoll::events(1)[0]);
        let mut harvested = 0;
        let mut r = Ok(());
        let mut fresh;
        loop {
            // fds found closed are reported now: look, but do not sleep.
            let (slice, capped) = if closed.is_empty() { sleep_slice(timeout, start, audit) } else { (0, false) };
            let slept;
            (slept, fresh) = self.sleep_on(pid, || -> io::Result<usize> {
                let n = if slice != 0 && set.len() == 2 {
                    // The first look asks the instance itself: when an fd
                    // is ready, that is the turn's only syscall. Nothing
                    // else of the set needs looking at first: no fd is
                    // polled beside the instance, and the wakeup pipe is
                    // written only while this thread sleeps.
                    set.iter_mut().for_each(|p| p.revents = 0);
                    harvested = ep.wait(&mut buf, 0)?.len();
                    if harvested > 0 {
                        return Ok(harvested);
                    }
                    sys::poll::poll(&mut set, slice)?
                } else {
                    match look(&mut set, slice)? {
                        0 => sys::poll::poll(&mut set, slice)?,
                        n => n,
                    }
                };
                if n > 0 && set[0].revents != 0 {
                    harvested = ep.wait(&mut buf, 0)?.len();
                }
                Ok(n)
            });
            match slept {
                Ok(0) if capped => {
                    closed = self.idle_audit();
                    if closed.is_empty() {
                        continue;
                    }
                }
                Ok(_) => break,
                Err(e) => {
                    r = Err(e);
                    break;
                }
            }
        }
        let result = self.sleep_result(r);
        if result.is_ok() {
            // (A callback for a closed fd clears `fresh`.)
            self.fresh = fresh;
            for fd in closed {
                self.fd_closed(fd);
            }
            if set[1].revents != 0 {
                self.drain_wakeup(pid);
            }
            for p in &set[2..] {
                if p.revents != 0 {
                    self.dispatch_fd(p.fd, p.revents, None);
                }
            }
            for ev in &buf[..harvested] {
                self.dispatch_fd(epoll::data(ev) as i32, epoll::revents(ev), None);
            }
            self.fresh = false;
            self.fire_due_timeouts_now();
        }
        let p = self.st().pollers.get_mut(pid);
        p.fds = set;
        p.ep_buf = buf;
        result
    }

    /// The epoll sleep's idle audit (see the module comment): returns the
    /// registered fds found closed, to dispatch as `POLLNVAL`.
    fn idle_audit(&mut self) -> Vec<i32> {
        self.audit_interest();
        self.st().interest.as_mut().map(|i| i.take_closed()).unwrap_or_default()
    }

    /// Asks the kernel whether every registered fd is still in the epoll
    /// instance; what is missing is a finding, queued as closed.
    fn audit_interest(&mut self) {
        let st = self.st();
        let Some(interest) = st.interest.as_mut() else { return };
        let found = interest.audit(st.fds.fd_unions());
        self.interest_found(found);
    }


    /// Sleeps on poller `pid`'s set, just made: marks the poller sleeping
    /// (only a sleeping poller is woken, see `poller`), runs `f` with the
    /// lock released, and says whether the results are fresh: nobody took
    /// the lock meanwhile (the lock's epoch, see `fd`).
    fn sleep_on<R>(&mut self, pid: PollerId, f: impl FnOnce() -> R) -> (R, bool) {
        self.st().pollers.set_sleeping(pid, true);
        let epoch = self.ctx.state.epoch();
        let r = self.unlocked(f);
        let fresh = self.ctx.state.epoch() == epoch;
        self.st().pollers.set_sleeping(pid, false);
        (r, fresh)
    }

    /// Maps the result of a sleep: EINTR is an empty turn.
    fn sleep_result(&mut self, r: io::Result<()>) -> Result<(), Rc> {
        match r {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
            Err(e) => {
                crate::xl_log_errno!(self.ctx, Error, e.raw_os_error().unwrap_or(0), "waiting for events failed");
                Err(ERROR_FAIL)
            }
        }
    }

    pub(super) fn drain_wakeup(&mut self, pid: PollerId) {
        if let Err(e) = self.st().pollers.drain(pid) {
            self.disaster("cannot read a poller's wakeup pipe", e.raw_os_error().unwrap_or(0));
        }
    }

    /// Something happened on `fd`: every current registration of it gets
    /// the chance to run (each re-checks first, so a stale or reused fd
    /// number never produces a spurious callback).
    /// Returns whether any callback ran. With `app_gen`, a registration
    /// already dispatched for that beforepoll set is skipped.
    pub(super) fn dispatch_fd(&mut self, fd: i32, revents: i16, app_gen: Option<u32>) -> bool {
        let Some(regs) = self.s().fds.regs_for(fd) else { return false };
        let mut ran = false;
        for &ev in regs.iter() {
            if let Some(g) = app_gen {
                if self.s().fds.app_gen(ev) == Some(g) {
                    continue;
                }
            }
            if self.fd_occurs(ev, fd, revents) {
                ran = true;
                if let Some(g) = app_gen {
                    self.st().fds.set_app_gen(ev, g);
                }
            }
        }
        ran
    }

    /// Dispatches the results of a poll over a poll set made for poller
    /// `pid`: fd callbacks by fd number (each fd once, however many entries
    /// it had), the wakeup pipe, then every timeout due at or before `now`.
    pub fn afterpoll_internal(&mut self, pid: PollerId, fds: &[PollFd]) {
        self.afterpoll_dispatch(pid, fds, None, None);
    }

    /// As `afterpoll_internal`, the clock read `now` (`None`: read here,
    /// only if a timeout is registered).
    pub(super) fn afterpoll_dispatch(&mut self, pid: PollerId, fds: &[PollFd], now: Option<u64>, app_gen: Option<u32>) {
        let wake = self.s().pollers.wakeup_fd(pid);
        let mut ready: smallvec::SmallVec<[(i32, i16); 8]> = smallvec::SmallVec::new();
        sys::poll::for_each_ready(fds, |i| ready.push((fds[i].fd, fds[i].revents)));
        ready.sort_unstable_by_key(|r| r.0);
        let mut i = 0;
        while i < ready.len() {
            let (fd, mut revents) = ready[i];
            while i + 1 < ready.len() && ready[i + 1].0 == fd {
                i += 1;
                revents |= ready[i].1;
            }
            i += 1;
            if fd == wake {
                self.drain_wakeup(pid);
            } else {
                self.dispatch_fd(fd, revents, app_gen);
            }
        }
        match now {
            Some(now) => self.fire_due_timeouts(now),
            None => self.fire_due_timeouts_now(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

    use super::*;
    use crate::reg::ao::AoHow;
    use crate::rc::ERROR_TIMEDOUT;
    use crate::sys::POLLIN;
    use crate::testutil;

    #[test]
    fn idle_sleep_is_cut_into_audit_slices_only_when_fds_are_watched() {
        let now = sys::clock::mono_ns();
        assert_eq!(sleep_slice(-1, now, false), (-1, false), "nothing to audit: sleep as long as asked");
        assert_eq!(sleep_slice(-1, now, true), (AUDIT_MS, true));
        assert_eq!(sleep_slice(5 * AUDIT_MS, now, true), (AUDIT_MS, true));
        assert_eq!(sleep_slice(10, now, true), (10, false), "a slice never outlasts the deadline");
        assert_eq!(sleep_slice(10, now - 50_000_000, true), (0, false), "deadline already past");
    }

    #[test]
    fn timeout_ms_rounds_up_and_clamps() {
        assert_eq!(timeout_ms(10, 20), 0);
        assert_eq!(timeout_ms(1_000_001, 0), 2);
        assert_eq!(timeout_ms(u64::MAX, 0), 2_000_000_000);
    }

    /// A regular file is refused by epoll; the sleeper polls it beside the
    /// instance and sees it ready.
    #[test]
    fn a_regular_file_fd_is_watched_by_poll_beside_epoll() {
        let ctx = testutil::ctx_with(crate::sys::Backend::Epoll);
        let f = std::fs::File::open("/proc/self/status").unwrap();
        let mut egc = Egc::new(&ctx, "test");
        let rc = crate::testops::fdevent::test_fdevent(&mut egc, f.as_raw_fd(), POLLIN, AoHow::Sync, false);
        assert_eq!(rc, 0, "epoll refuses regular files (EPERM); the poller must still see it ready");
    }

    /// An fd number that is never open (above any fd limit we run with).
    const NEVER_OPEN: i32 = 1 << 29;

    /// Registering an fd that is not open is the kernel's to report at
    /// once: poll says POLLNVAL, epoll_ctl says EBADF.
    #[test]
    fn sync_op_on_an_fd_that_is_not_open_completes_with_an_error_at_once_on_each_backend() {
        for backend in [sys::Backend::Poll, sys::Backend::Epoll] {
            let ctx = testutil::ctx_misuse(backend);
            let mut egc = Egc::new(&ctx, "test");
            let t0 = std::time::Instant::now();
            let rc = crate::testops::fdevent::test_fdevent(&mut egc, NEVER_OPEN, POLLIN, AoHow::Sync, false);
            assert_eq!(rc, crate::rc::ERROR_FAIL, "{backend:?}: POLLNVAL completes the op with an error");
            assert!(t0.elapsed().as_millis() < 100, "{backend:?}: promptly, not by the audit");
            assert!(egc.s().fds.is_empty());
        }
    }

    /// A synchronous op whose fd was not checked (poll sets: the poll it
    /// makes anyway tells): an fd that is not open is the caller's bad
    /// argument, `ERROR_INVAL` at once, and no closed-fd finding (this ctx
    /// aborts on one); an open one is settled by that first poll and is an
    /// ordinary registration afterwards.
    #[test]
    fn an_unchecked_fd_is_settled_by_the_first_poll() {
        let ctx = testutil::ctx_with(sys::Backend::Poll);
        let mut egc = Egc::new(&ctx, "test");
        assert!(egc.fd_check_can_wait());
        let t0 = std::time::Instant::now();
        let rc = crate::testops::fdevent::test_fdevent(&mut egc, NEVER_OPEN, POLLIN, AoHow::Sync, true);
        assert_eq!(rc, crate::rc::ERROR_INVAL);
        assert!(t0.elapsed().as_millis() < 100);
        assert!(egc.s().fds.is_empty());
        let (r, w) = testutil::pipe();
        let ev = egc.ev_fd_register_fn_unverified(None, r.as_raw_fd(), POLLIN, |_, _, _, _, _, _| {}, 0).unwrap();
        assert!(!egc.s().fds.get(ev).unwrap().verified);
        let ao = egc.ao_create(AoHow::ForEvent(1), 0).unwrap();
        egc.ev_time_register_rel(ao, 0, Box::new(|_, _, _| {})).unwrap(); // bounds the turn
        let pid = egc.st().pollers.get().unwrap();
        egc.eventloop_iteration(pid).unwrap();
        assert!(egc.s().fds.get(ev).unwrap().verified, "the poll of a set holding it settled it");
        egc.st().pollers.put(pid);
        egc.ev_fd_deregister(ev);
        egc.ao_complete(ao, 0);
        drop(w);
    }

    /// An fd the application closes while a thread sleeps on it wakes
    /// nobody (the kernel does not tell a sleeper; epoll forgets the file
    /// silently): the idle audit finds it within one audit period and
    /// reports POLLNVAL, on each backend.
    #[test]
    fn closed_while_a_sleeper_waits_is_found_by_the_idle_audit_on_each_backend() {
        for backend in [sys::Backend::Poll, sys::Backend::Epoll] {
            let ctx = testutil::ctx_misuse(backend);
            let (r, w) = testutil::pipe_out_of_the_way();
            let fd = r.as_raw_fd();
            let got = std::sync::Arc::new(std::sync::atomic::AtomicI32::new(0));
            let mut egc = Egc::new(&ctx, "test");
            let g = got.clone();
            egc.ev_fd_register(None, fd, POLLIN, Box::new(move |_, _, _, _, rev| {
                g.store(rev.into(), std::sync::atomic::Ordering::SeqCst);
            }))
            .unwrap();
            let pid = egc.st().pollers.get().unwrap();
            // Bounds every turn, so a missed close fails instead of hanging.
            let ao = egc.ao_create(AoHow::ForEvent(1), 0).unwrap();
            egc.ev_time_register_rel(ao, 2500, Box::new(|_, _, _| {})).unwrap();
            let closer = std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(50));
                drop(r); // misuse: closed while registered, while the turn sleeps
                w // kept open: no POLLHUP wakes the sleeper
            });
            let t0 = std::time::Instant::now();
            while got.load(std::sync::atomic::Ordering::SeqCst) == 0 && t0.elapsed().as_millis() < 3000 {
                egc.eventloop_iteration(pid).unwrap();
            }
            drop(closer.join().unwrap());
            assert_eq!(got.load(std::sync::atomic::Ordering::SeqCst) as i16, sys::POLLNVAL, "{backend:?}");
            let ms = t0.elapsed().as_millis();
            assert!((900..2400).contains(&ms), "{backend:?}: found by the audit after one period: {ms} ms");
            egc.ao_complete(ao, 0);
            egc.st().pollers.put(pid);
        }
    }

    /// Two registrations on one readable pipe, each callback draining it:
    /// the sleep's fresh result serves the first; the second is re-checked
    /// (the first callback may have read the fd) and does not run. On each
    /// backend.
    #[test]
    fn fresh_results_are_trusted_only_until_a_callback_runs() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        for backend in [sys::Backend::Poll, sys::Backend::Epoll] {
            let ctx = testutil::ctx_with(backend);
            let (r, w) = testutil::pipe();
            let fd = r.as_raw_fd();
            nix::unistd::write(&w, b"x").unwrap();
            let ran = std::sync::Arc::new(AtomicUsize::new(0));
            let mut egc = Egc::new(&ctx, "test");
            for _ in 0..2 {
                let n = ran.clone();
                egc.ev_fd_register(None, fd, POLLIN, Box::new(move |_, _, fd, _, _| {
                    n.fetch_add(1, Ordering::SeqCst);
                    let mut b = [0u8; 8];
                    let _ = nix::unistd::read(fd, &mut b);
                }))
                .unwrap();
            }
            let pid = egc.st().pollers.get().unwrap();
            egc.eventloop_iteration(pid).unwrap();
            assert_eq!(ran.load(Ordering::SeqCst), 1, "{backend:?}: the second callback's result was stale");
            assert!(!egc.fresh, "{backend:?}: nothing is fresh after the dispatch");
            egc.st().pollers.put(pid);
        }
    }

    /// A sleeper whose poll saw an fd readable, while another thread held
    /// the lock and read the fd dry before the sleeper took the lock back:
    /// the result is not fresh, it is re-checked, no callback runs. On each
    /// backend.
    #[test]
    fn a_result_is_rechecked_when_another_thread_held_the_lock_meanwhile() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        for backend in [sys::Backend::Poll, sys::Backend::Epoll] {
            let ctx = testutil::ctx_with(backend);
            let (r1, w1) = testutil::pipe();
            let (r2, w2) = testutil::pipe();
            let ran = std::sync::Arc::new(AtomicUsize::new(0));
            let mut egc = Egc::new(&ctx, "test");
            let n = ran.clone();
            egc.ev_fd_register(None, r1.as_raw_fd(), POLLIN, Box::new(move |_, _, _, _, _| {
                n.fetch_add(1, Ordering::SeqCst);
            }))
            .unwrap();
            egc.ev_fd_register(None, r2.as_raw_fd(), POLLIN, Box::new(|_, _, _, _, _| {})).unwrap();
            let pid = egc.st().pollers.get().unwrap();
            std::thread::scope(|s| {
                s.spawn(|| {
                    // Taken once the sleeper has released it to poll.
                    let other = Egc::new(&ctx, "other");
                    nix::unistd::write(&w1, b"x").unwrap();
                    std::thread::sleep(std::time::Duration::from_millis(30)); // its poll returns
                    let mut b = [0u8; 8];
                    nix::unistd::read(r1.as_raw_fd(), &mut b).unwrap(); // read dry
                    nix::unistd::write(&w2, b"y").unwrap(); // (in case its poll missed w1)
                    drop(other);
                });
                std::thread::sleep(std::time::Duration::from_millis(10));
                egc.eventloop_iteration(pid).unwrap();
            });
            assert_eq!(ran.load(Ordering::SeqCst), 0, "{backend:?}: a stale result ran a callback");
            egc.st().pollers.put(pid);
        }
    }

    /// A timeout added while a thread sleeps on the epoll instance makes
    /// its sleep stale (the deadline may be earlier): the baton wakes it.
    #[test]
    fn epoll_sleeps_go_stale_for_timeouts_not_for_fds() {
        let ctx = testutil::ctx_with(sys::Backend::Epoll);
        let (r, _w) = testutil::pipe();
        let mut egc = Egc::new(&ctx, "test");
        let pid = egc.st().pollers.get().unwrap();
        let ao = egc.ao_create(AoHow::ForEvent(1), 0).unwrap();
        egc.ev_fd_register(None, r.as_raw_fd(), POLLIN, Box::new(|_, _, _, _, _| {})).unwrap();
        egc.ev_time_register_rel(ao, 0, Box::new(|_, _, rc| assert_eq!(rc, ERROR_TIMEDOUT))).unwrap();
        egc.eventloop_iteration(pid).unwrap(); // an epoll sleep; fires the timer
        assert!(!egc.s().pollers.get_ref(pid).osevents_added);
        let (r2, _w2) = testutil::pipe();
        egc.ev_fd_register(None, r2.as_raw_fd(), POLLIN, Box::new(|_, _, _, _, _| {})).unwrap();
        assert!(!egc.s().pollers.get_ref(pid).osevents_added, "a new fd is in the instance already");
        egc.ev_time_register_rel(ao, 50, Box::new(|_, _, _| {})).unwrap();
        assert!(egc.s().pollers.get_ref(pid).osevents_added, "a new timeout makes it stale");
        egc.ao_complete(ao, 0);
    }

    fn woken(egc: &Egc<'_>, id: crate::reg::PollerId) -> bool {
        sys::poll::recheck(egc.s().pollers.wakeup_fd(id), sys::POLLIN) & sys::POLLIN != 0
    }

    /// Between afterpoll and the next beforepoll the application sleeps on
    /// no set of ours; waking it then would only cost it a spurious round.
    #[test]
    fn app_poller_is_woken_only_while_it_holds_a_beforepoll_set() {
        let ctx = testutil::ctx();
        let (r, _w) = testutil::pipe();
        let mut egc = Egc::new(&ctx, "test");
        let app = egc.s().pollers.app();
        egc.ev_fd_register(None, std::os::fd::AsRawFd::as_raw_fd(&r), sys::POLLIN, Box::new(|_, _, _, _, _| {}))
            .unwrap();
        egc.baton_pass();
        assert!(!woken(&egc, app), "not armed: no wakeup");
        let mut space = vec![sys::pollfd(-1, 0); 4];
        egc.app_beforepoll(&mut space, sys::clock::mono_ns());
        egc.ev_fd_register(None, std::os::fd::AsRawFd::as_raw_fd(&r), sys::POLLOUT, Box::new(|_, _, _, _, _| {}))
            .unwrap();
        egc.baton_pass();
        assert!(woken(&egc, app), "armed and stale: woken");
    }

    /// Negative control: with the test switch set, the same situation as
    /// above leaves every stale sleeper asleep.
    #[test]
    fn no_baton_switch_leaves_stale_sleepers_asleep() {
        let mut ctx = testutil::ctx();
        ctx.no_baton = true;
        let mut egc = Egc::new(&ctx, "test");
        let a = egc.st().pollers.get().unwrap();
        egc.st().pollers.note_osevent_added();
        egc.baton_pass();
        assert!(!woken(&egc, a));
    }
}
