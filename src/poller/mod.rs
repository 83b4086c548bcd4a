//! Pollers, wakeups and the baton.
//!
//! A poller is what one sleeping thread sleeps on: a set of `pollfd`s made
//! from the fd registry, plus the read end of its own wakeup pipe. Threads in
//! a synchronous operation or in `libxl_event_wait` take a poller from the
//! idle pool and give it back when they leave; the *application poller* is
//! the one `libxl_osevent_beforepoll` hands to the application, and it is
//! always active.
//!
//! **Unstale liveness** (the property the baton keeps): whenever any thread
//! sleeps on a set the library gave it, at least one sleeping thread's set is
//! up to date, or is about to be woken. How it is kept:
//! * registering an fd, widening its events or registering a timeout marks
//!   every active poller `osevents_added` (its set is now stale);
//! * every `Egc` passes the baton when it is disposed of (`Drop`), after any
//!   poller it used was put back: if the application poller is stale and
//!   *armed* (the application called beforepoll and not yet afterpoll, so
//!   it may be asleep on that set) it is woken; if no active internal poller
//!   is up to date, one stale one is woken (and counts as up to date: it
//!   will rebuild its set);
//! * making a set clears the poller's `osevents_added`.
//!   Because only code holding an `Egc` can add osevents, and every `Egc` is
//!   dropped before its thread leaves the library, the property holds on
//!   every exit path.
//!
//! Wakeups are merged: a poller's pipe is written only when it is believed
//! empty (`pipe_nonempty`), and drained when the poller sees it readable.
//!
//! POLLNVAL: a set entry whose registration has gone (stale token) is
//! skipped, so an fd deregistered and closed while a thread slept cannot
//! trip anything; NVAL on a live registration reaches that source's callback
//! after the re-check, so the operation sees it (and is then no longer
//! polled: see `ev::fd`). A sleeper is not woken when one of its fds is
//! closed, so an internal poller that has fds to watch and has seen nothing
//! for [`AUDIT_MS`] checks them again (the *idle audit*) without refreshing
//! its set otherwise: a closed fd is reported within a second, and a stale
//! set stays stale (the baton tests still see a missing baton).
#![forbid(unsafe_code)]

use std::io;

pub mod mirror;

use crate::egc::Egc;
use crate::rc::{Rc, ERROR_FAIL};
use crate::sys::{self, wakeup::Wakeup, PollFd};
use crate::token::{Slab, Token};

pub type PollerId = Token;

/// How a poller is woken. The library uses [`Wakeup`] (a pipe); the baton
/// model check (`tests/baton_model.rs`) runs this same code with a wake
/// mechanism that does nothing, since `pipe_nonempty` already records
/// whether a poller has been woken.
pub trait WakeFd: Sized {
    fn open() -> io::Result<Self>;
    fn wake(&self) -> io::Result<()>;
    fn drain(&self) -> io::Result<()>;
    fn read_fd(&self) -> i32;
}

impl WakeFd for Wakeup {
    fn open() -> io::Result<Self> {
        Wakeup::new()
    }
    fn wake(&self) -> io::Result<()> {
        Wakeup::wake(self)
    }
    fn drain(&self) -> io::Result<()> {
        Wakeup::drain(self)
    }
    fn read_fd(&self) -> i32 {
        Wakeup::read_fd(self)
    }
}

pub struct Poller<W = Wakeup> {
    wakeup: W,
    /// The epoll mirror this poller sleeps on (internal pollers, made on
    /// first use; see [`mirror`]).
    pub mirror: Option<Box<mirror::Mirror>>,
    /// A wake byte is (believed to be) in the pipe.
    pipe_nonempty: bool,
    /// Osevents were added since this poller's set was made.
    pub osevents_added: bool,
    /// In use by a thread (or the application poller).
    active: bool,
    /// The thread using it waits for events (`libxl_event_wait`).
    pub wants_events: bool,
    /// The set last made for this poller (poll backend).
    pub fds: Vec<PollFd>,
}

impl<W: Clone> Clone for Poller<W> {
    /// Clones the flags and sets (for the model check); the epoll mirror,
    /// an OS object, is not cloned.
    fn clone(&self) -> Self {
        Poller {
            wakeup: self.wakeup.clone(),
            mirror: None,
            pipe_nonempty: self.pipe_nonempty,
            osevents_added: self.osevents_added,
            active: self.active,
            wants_events: self.wants_events,
            fds: self.fds.clone(),
        }
    }
}

impl<W: WakeFd> Poller<W> {
    fn new() -> io::Result<Poller<W>> {
        Ok(Poller {
            mirror: None,
            wakeup: W::open()?,
            pipe_nonempty: false,
            osevents_added: false,
            active: false,
            wants_events: false,
            fds: Vec::new(),
        })
    }
}

#[derive(Clone)]
pub struct Pollers<W = Wakeup> {
    slab: Slab<Poller<W>>,
    idle: Vec<PollerId>,
    /// Active pollers in activation order; the application poller first.
    active: Vec<PollerId>,
    app: Option<PollerId>,
    /// The application holds a set from `libxl_osevent_beforepoll` and has
    /// not yet called `libxl_osevent_afterpoll`: it may be sleeping on it.
    /// Outside that window it is not sleeping on any set of ours (its next
    /// beforepoll makes a fresh one), so it needs no wakeups.
    pub app_armed: bool,
    /// The application is inside `libxl_osevent_afterpoll` (an event
    /// queued now need not wake its poll: it checks events next).
    pub app_in_afterpoll: bool,
    /// Counts the application's beforepoll sets (0: none yet). An fd
    /// registration is dispatched from the application's afterpoll at most
    /// once per set (as libxl does), whatever array the application passes.
    pub app_set_gen: u32,
}

impl<W> Default for Pollers<W> {
    fn default() -> Self {
        Pollers { slab: Slab::new(), idle: Vec::new(), active: Vec::new(), app: None, app_armed: false, app_in_afterpoll: false, app_set_gen: 0 }
    }
}

impl<W: WakeFd> Pollers<W> {
    pub fn init_app(&mut self) -> io::Result<()> {
        let id = self.get()?;
        self.app = Some(id);
        Ok(())
    }

    pub fn app(&self) -> PollerId {
        self.app.expect("application poller exists from ctx creation")
    }

    /// Takes a poller from the idle pool (or makes one) and activates it.
    pub fn get(&mut self) -> io::Result<PollerId> {
        let id = match self.idle.pop() {
            Some(id) => id,
            None => self.slab.insert(Poller::new()?),
        };
        let p = self.slab.get_mut(id).expect("pooled poller exists");
        p.active = true;
        p.osevents_added = false;
        p.wants_events = false;
        self.active.push(id);
        Ok(id)
    }

    /// Deactivates a poller and returns it to the pool.
    pub fn put(&mut self, id: PollerId) {
        if let Some(p) = self.slab.get_mut(id) {
            if p.active {
                p.active = false;
                p.wants_events = false;
                self.active.retain(|&a| a != id);
                self.idle.push(id);
            }
        }
    }

    pub fn get_mut(&mut self, id: PollerId) -> &mut Poller<W> {
        self.slab.get_mut(id).expect("live poller")
    }

    pub fn get_ref(&self, id: PollerId) -> &Poller<W> {
        self.slab.get(id).expect("live poller")
    }

    /// Makes the poller's wakeup fd readable (once; repeats are merged).
    pub fn wake(&mut self, id: PollerId) -> io::Result<()> {
        let p = self.get_mut(id);
        if p.pipe_nonempty {
            return Ok(());
        }
        p.pipe_nonempty = true;
        p.wakeup.wake()
    }

    /// Empties the wakeup pipe after the poller saw it readable.
    pub fn drain(&mut self, id: PollerId) -> io::Result<()> {
        let p = self.get_mut(id);
        p.pipe_nonempty = false;
        p.wakeup.drain()
    }

    pub fn wakeup_fd(&self, id: PollerId) -> i32 {
        self.get_ref(id).wakeup.read_fd()
    }

    /// An fd or timeout was added: every active poller's set is stale.
    pub fn note_osevent_added(&mut self) {
        for &id in &self.active {
            if let Some(p) = self.slab.get_mut(id) {
                p.osevents_added = true;
            }
        }
    }

    /// `fd`'s registrations changed (`gone`: none are left): every epoll
    /// mirror must look again before its poller next sleeps.
    pub fn note_fd_changed(&mut self, fd: i32, registry_len: usize, gone: bool) {
        for (_, p) in self.slab.iter_mut() {
            if let Some(m) = p.mirror.as_mut() {
                m.note_changed(fd, registry_len, gone);
            }
        }
    }

    /// Wakes every active poller whose thread waits for events.
    pub fn wake_event_waiters(&mut self) -> io::Result<()> {
        for i in 0..self.active.len() {
            let id = self.active[i];
            if self.get_ref(id).wants_events {
                self.wake(id)?;
            }
        }
        Ok(())
    }

    /// Poller `id` has just made a fresh set: it is up to date.
    pub fn set_made(&mut self, id: PollerId) {
        self.get_mut(id).osevents_added = false;
    }

    /// Passes the baton (see the module comment): wakes the application
    /// poller if it is stale, and one stale internal poller if no internal
    /// poller is up to date. Called, lock held, by every `Egc` on its way
    /// out, after any poller it used was put back.
    pub fn baton_pass(&mut self) -> io::Result<()> {
        for id in self.baton_victims() {
            self.wake(id)?;
        }
        Ok(())
    }

    /// The baton decision. Returns the pollers to wake; clears their
    /// `osevents_added`.
    fn baton_victims(&mut self) -> Vec<PollerId> {
        let mut wake = Vec::new();
        let app = self.app;
        let armed = self.app_armed;
        if let Some(app) = app {
            let p = self.get_mut(app);
            if p.osevents_added && armed {
                p.osevents_added = false;
                wake.push(app);
            }
        }
        let mut victim = None;
        for &id in &self.active {
            if Some(id) == app {
                continue;
            }
            if !self.get_ref(id).osevents_added {
                // Someone is up to date and will wake as needed.
                return wake;
            }
            victim.get_or_insert(id);
        }
        if let Some(v) = victim {
            self.get_mut(v).osevents_added = false;
            wake.push(v);
        }
        wake
    }

    /// Pollers currently active (the application poller included).
    pub fn active_count(&self) -> usize {
        self.active.len()
    }

    pub fn total(&self) -> usize {
        self.slab.len()
    }

    /// Active pollers, the application poller first.
    pub fn active_ids(&self) -> &[PollerId] {
        &self.active
    }

    /// True if a wake is pending for poller `id` (its pipe holds a byte).
    pub fn is_woken(&self, id: PollerId) -> bool {
        self.get_ref(id).pipe_nonempty
    }
}

/// How long an internal poller with fds to watch sleeps at most before it
/// checks them again (the *idle audit*): a registered fd that the
/// application closes while a thread sleeps on it wakes nobody, so without
/// this its operation would wait forever. Each audit is one poll of the
/// same set (poll backend) or one `epoll_ctl` per fd (epoll backend), only
/// after a whole period with nothing ready.
pub const AUDIT_MS: i32 = 1000;

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
    /// Passes the baton (see the module comment). Called by `Egc::drop`.
    pub fn baton_pass(&mut self) {
        if self.ctx.no_baton {
            return;
        }
        if let Err(e) = self.st().pollers.baton_pass() {
            self.disaster("cannot write a poller's wakeup pipe", e.raw_os_error().unwrap_or(0));
        }
    }

    /// Builds poller `pid`'s set from the fd registry and returns the
    /// timeout (ms, -1 for none) implied by the earliest deadline.
    pub fn make_set(&mut self, pid: PollerId, now: u64) -> i32 {
        let st = self.st();
        let wake_fd = st.pollers.wakeup_fd(pid);
        let (fds_reg, pollers) = (&st.fds, &mut st.pollers);
        let p = pollers.get_mut(pid);
        p.fds.clear();
        fds_reg.fill_set(&mut p.fds);
        p.fds.push(sys::pollfd(wake_fd, sys::POLLIN));
        pollers.set_made(pid);
        match st.times.earliest() {
            Some(deadline) => timeout_ms(deadline, now),
            None => -1,
        }
    }

    /// One turn of the library's own event loop on poller `pid`: bring its
    /// set up to date, sleep (unlocked), dispatch what happened. `EINTR` is
    /// a turn in which nothing happened. Sleeps on the poller's epoll mirror
    /// (O(ready) per wakeup), or on a freshly made `pollfd` set with the
    /// poll backend or if the mirror cannot be made (out of fds).
    pub fn eventloop_iteration(&mut self, pid: PollerId) -> Result<(), Rc> {
        if self.ctx.backend.use_epoll(self.fds.set_len()) {
            match self.mirror_ready(pid) {
                Ok(()) => return self.eventloop_iteration_epoll(pid),
                Err(e) => crate::xl_log_errno!(self.ctx, Warn, e.raw_os_error().unwrap_or(0),
                    "cannot make an epoll set for a poller; using poll() this time"),
            }
        }
        let start = sys::clock::mono_ns();
        let timeout = self.make_set(pid, start);
        let p = self.st().pollers.get_mut(pid);
        let mut fds = std::mem::take(&mut p.fds);
        let audit = fds.len() > 1;
        // Idle for a whole audit period: poll the same set again, which
        // reports any fd closed meanwhile as POLLNVAL (the kernel does not
        // wake a sleeper when one of its fds is closed).
        let r = self.unlocked(|| loop {
            let (slice, capped) = sleep_slice(timeout, start, audit);
            match sys::poll::poll(&mut fds, slice) {
                Ok(0) if capped => continue,
                other => break other,
            }
        });
        let result = self.sleep_result(r.map(|_| ()));
        if result.is_ok() {
            self.afterpoll_internal(pid, &fds, sys::clock::mono_ns());
        }
        self.st().pollers.get_mut(pid).fds = fds;
        result
    }

    /// Makes or updates poller `pid`'s epoll mirror.
    pub(crate) fn mirror_ready(&mut self, pid: PollerId) -> io::Result<()> {
        let st = self.st();
        let wake_fd = st.pollers.wakeup_fd(pid);
        let (fds, pollers) = (&st.fds, &mut st.pollers);
        let p = pollers.get_mut(pid);
        match p.mirror.as_mut() {
            Some(m) => m.sync(fds),
            None => p.mirror = Some(Box::new(mirror::Mirror::new(wake_fd, fds)?)),
        }
        Ok(())
    }

    fn eventloop_iteration_epoll(&mut self, pid: PollerId) -> Result<(), Rc> {
        let start = sys::clock::mono_ns();
        let st = self.st();
        st.pollers.set_made(pid);
        let timeout = st.times.earliest().map_or(-1, |d| timeout_ms(d, start));
        let m = st.pollers.get_mut(pid).mirror.as_mut().expect("mirror made above");
        let ep = m.ep.clone();
        let mut buf = std::mem::take(&mut m.buf);
        let mut unpollable = m.unpollable.clone();
        let audit = !m.is_empty();
        // fds already known to be closed are reported without sleeping.
        let mut ready = m.take_closed();
        let mut r = Ok(());
        while ready.is_empty() {
            let (slice, capped) = sleep_slice(timeout, start, audit);
            r = self.unlocked(|| mirror::sleep(&ep, &mut buf, &mut unpollable, slice, &mut ready));
            if r.is_err() || !ready.is_empty() || !capped {
                break;
            }
            // Idle for a whole audit period: look for registered fds the
            // application closed (epoll drops them without a word). The
            // set is not otherwise refreshed: this is still the same sleep.
            let Some(m) = self.st().pollers.get_mut(pid).mirror.as_mut() else { break };
            m.audit();
            ready = m.take_closed();
        }
        if let Some(m) = self.st().pollers.get_mut(pid).mirror.as_mut() {
            m.buf = buf;
        }
        let result = self.sleep_result(r);
        if result.is_ok() {
            let (mut woke_for_fds, mut dispatched) = (false, false);
            for &(data, revents) in &ready {
                if data == mirror::WAKE {
                    self.drain_wakeup(pid);
                    continue;
                }
                woke_for_fds = true;
                dispatched |= self.dispatch_fd(data as i32, revents, None);
            }
            let st = self.st();
            let (fds, pollers) = (&st.fds, &mut st.pollers);
            if let Some(m) = pollers.get_mut(pid).mirror.as_mut() {
                let before = m.rebuilds;
                if let Err(e) = m.after_sleep(woke_for_fds, dispatched, fds) {
                    crate::xl_log_errno!(self.ctx, Warn, e.raw_os_error().unwrap_or(0), "cannot rebuild a poller's epoll set");
                } else if m.rebuilds != before {
                    crate::xl_log!(self.ctx, Debug, "poller {pid}: epoll set rebuilt (wakeups for fds no longer registered)");
                }
            }
            self.fire_due_timeouts(sys::clock::mono_ns());
        }
        result
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

    fn drain_wakeup(&mut self, pid: PollerId) {
        if let Err(e) = self.st().pollers.drain(pid) {
            self.disaster("cannot read a poller's wakeup pipe", e.raw_os_error().unwrap_or(0));
        }
    }

    /// Something happened on `fd`: every current registration of it gets
    /// the chance to run (each re-checks first, so a stale or reused fd
    /// number never produces a spurious callback).
    /// Returns whether any callback ran. With `app_gen`, a registration
    /// already dispatched for that beforepoll set is skipped.
    fn dispatch_fd(&mut self, fd: i32, revents: i16, app_gen: Option<u32>) -> bool {
        let Some(regs) = self.fds.regs_for(fd) else { return false };
        let mut ran = false;
        for &ev in regs.iter() {
            if let Some(g) = app_gen {
                if self.fds.app_gen(ev) == Some(g) {
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

    /// Dispatches the results of a poll over a set made for poller `pid`:
    /// fd callbacks by fd number (each fd once, however many entries it
    /// had), the wakeup pipe, then every timeout due at or before `now`.
    /// Entries whose fd has no registration any more (deregistered while the
    /// set was out, e.g. POLLNVAL after a close) are skipped.
    pub fn afterpoll_internal(&mut self, pid: PollerId, fds: &[PollFd], now: u64) {
        self.afterpoll_dispatch(pid, fds, now, None);
    }

    fn afterpoll_dispatch(&mut self, pid: PollerId, fds: &[PollFd], now: u64, app_gen: Option<u32>) {
        let wake = self.pollers.wakeup_fd(pid);
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
        self.fire_due_timeouts(now);
    }
}

/// What `libxl_osevent_beforepoll` tells the application.
pub struct BeforePoll {
    /// Entries the library wants (`*nfds_io` on return).
    pub needed: usize,
    /// Milliseconds until the earliest timeout (-1: none).
    pub timeout: i32,
    /// The set fitted in the space given.
    pub fits: bool,
}

impl Egc<'_> {
    /// `libxl_osevent_beforepoll`: makes the application poller's set,
    /// copies it into `space` if it fits, and clears that poller's stale
    /// mark (it now has an up-to-date set).
    pub fn app_beforepoll(&mut self, space: &mut [PollFd], now: u64) -> BeforePoll {
        let st = self.st();
        let app = st.pollers.app();
        let needed = st.fds.set_len() + 1;
        let fits = needed <= space.len();
        let wake_fd = st.pollers.wakeup_fd(app);
        if fits {
            // Written straight into the application's array: the library's
            // share of a beforepoll is one copy of the dense set.
            st.fds.fill_into(&mut space[..needed - 1]);
            space[needed - 1] = sys::pollfd(wake_fd, sys::POLLIN);
        }
        st.pollers.set_made(app);
        st.pollers.app_armed = true;
        if fits {
            st.pollers.app_set_gen = st.pollers.app_set_gen.wrapping_add(1).max(1);
        }
        let timeout = st.times.earliest().map_or(-1, |d| timeout_ms(d, now));
        BeforePoll { needed, timeout, fits }
    }

    /// `libxl_osevent_afterpoll`: dispatches `fds` (the set from the last
    /// beforepoll, with revents filled in by poll) and due timeouts.
    pub fn app_afterpoll(&mut self, fds: &[PollFd], now: u64) {
        let app = self.pollers.app();
        let st = self.st();
        st.pollers.app_armed = false;
        let gen = st.pollers.app_set_gen;
        if gen == 0 {
            // No beforepoll yet: nothing in `fds` can be ours to dispatch.
            crate::xl_log!(self.ctx, Debug, "libxl_osevent_afterpoll before any beforepoll: fds ignored");
            self.fire_due_timeouts(now);
            return;
        }
        st.pollers.app_in_afterpoll = true;
        self.afterpoll_dispatch(app, fds, now, Some(gen));
        self.st().pollers.app_in_afterpoll = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil;

    fn woken(egc: &Egc<'_>, id: PollerId) -> bool {
        sys::poll::recheck(egc.pollers.wakeup_fd(id), sys::POLLIN) & sys::POLLIN != 0
    }

    /// Two threads "sleep" (hold active pollers); an fd is added; when the
    /// adder's egc goes, exactly one sleeper must be woken.
    #[test]
    fn unstale_liveness_one_stale_sleeper_is_woken_when_none_is_up_to_date() {
        let ctx = testutil::ctx();
        let (a, b);
        {
            let mut egc = Egc::new(&ctx, "test");
            a = egc.st().pollers.get().unwrap();
            b = egc.st().pollers.get().unwrap();
            egc.st().pollers.app_armed = true; // as after a beforepoll
        }
        let (r, _w) = testutil::pipe();
        let mut egc = Egc::new(&ctx, "test");
        egc.ev_fd_register(None, std::os::fd::AsRawFd::as_raw_fd(&r), sys::POLLIN, Box::new(|_, _, _, _, _| {}))
            .unwrap();
        egc.baton_pass();
        let n = [a, b].iter().filter(|&&p| woken(&egc, p)).count();
        assert_eq!(n, 1, "exactly one stale sleeper is woken");
        assert!(woken(&egc, egc.pollers.app()), "the application poller is woken too");
    }

    /// Between afterpoll and the next beforepoll the application sleeps on
    /// no set of ours; waking it then would only cost it a spurious round.
    #[test]
    fn app_poller_is_woken_only_while_it_holds_a_beforepoll_set() {
        let ctx = testutil::ctx();
        let (r, _w) = testutil::pipe();
        let mut egc = Egc::new(&ctx, "test");
        let app = egc.pollers.app();
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

    #[test]
    fn baton_is_not_passed_while_an_up_to_date_sleeper_exists() {
        let ctx = testutil::ctx();
        let mut egc = Egc::new(&ctx, "test");
        let a = egc.st().pollers.get().unwrap();
        egc.st().pollers.note_osevent_added();
        let b = egc.st().pollers.get().unwrap(); // made its set after the add
        egc.baton_pass();
        assert!(!woken(&egc, a) && !woken(&egc, b), "b is up to date: nobody needs waking");
    }

    #[test]
    fn making_a_set_clears_the_stale_mark() {
        let ctx = testutil::ctx();
        let mut egc = Egc::new(&ctx, "test");
        let a = egc.st().pollers.get().unwrap();
        egc.st().pollers.note_osevent_added();
        egc.make_set(a, sys::clock::mono_ns());
        egc.baton_pass();
        assert!(!woken(&egc, a));
    }

    #[test]
    fn wakeups_are_merged_and_drained() {
        let ctx = testutil::ctx();
        let mut egc = Egc::new(&ctx, "test");
        let a = egc.st().pollers.get().unwrap();
        for _ in 0..10 {
            egc.st().pollers.wake(a).unwrap();
        }
        assert!(woken(&egc, a));
        egc.st().pollers.drain(a).unwrap();
        assert!(!woken(&egc, a));
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

    #[test]
    fn poller_pool_reuses_pollers() {
        let ctx = testutil::ctx();
        let mut egc = Egc::new(&ctx, "test");
        let a = egc.st().pollers.get().unwrap();
        egc.st().pollers.put(a);
        let b = egc.st().pollers.get().unwrap();
        assert_eq!(a, b);
        assert_eq!(egc.pollers.total(), 2, "app poller + one pooled");
    }

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
    fn sync_op_on_an_fd_closed_while_registered_completes_with_an_error_on_the_poll_backend() {
        let mut ctx = testutil::ctx();
        ctx.backend = sys::Backend::Poll;
        let mut egc = Egc::new(&ctx, "test");
        let rc = crate::testops::fdevent::test_fdevent(&mut egc, 1 << 29, sys::POLLIN, crate::ao::AoHow::Sync);
        assert_eq!(rc, crate::rc::ERROR_FAIL);
    }

    #[test]
    fn timeout_ms_rounds_up_and_clamps() {
        assert_eq!(timeout_ms(10, 20), 0);
        assert_eq!(timeout_ms(1_000_001, 0), 2);
        assert_eq!(timeout_ms(u64::MAX, 0), 2_000_000_000);
    }
}
