//! fd event sources (libxl's `libxl__ev_fd`).
//!
//! Invariants:
//! * A registration is live from `ev_fd_register` until `ev_fd_deregister`
//!   (or its owning ao's completion); only live registrations appear in
//!   poll sets, and only they are dispatched.
//! * **No spurious callbacks**: before a callback runs, the fd is polled
//!   again with zero timeout for the registration's current events; the
//!   callback runs only if something holds *now*, and gets those revents.
//! * The callback runs with the lock held, through the egc. It stays
//!   registered afterwards unless it (or anyone) deregisters it.
//! * **A closed fd cannot spin.** A callback that got `POLLNVAL` (the fd
//!   was closed while registered: the application's bug) is told once; if
//!   its registration is still live afterwards its events are set to 0, so
//!   no poller reports it again until it is modified or deregistered.
//! * With osevent hooks, every registration is mirrored to the application
//!   (`fd_register`/`fd_modify`/`fd_deregister`), with this registration's
//!   token as `for_libxl`.
#![forbid(unsafe_code)]

use crate::ao::AoId;
use crate::egc::Egc;
use crate::rc::{Rc, ERROR_INVAL};
use crate::sys::{self, PollFd};
use crate::token::{Slab, Token};

pub type EvFd = Token;

/// `(egc, ev, fd, events, revents)`.
pub type FdCallback = Box<dyn FnMut(&mut Egc<'_>, EvFd, i32, i16, i16) + Send>;

/// A plain function with a data word: `(egc, ev, fd, events, revents,
/// data)`. The shape of a C callback with its user pointer, and no
/// allocation per registration.
pub type FdFn = fn(&mut Egc<'_>, EvFd, i32, i16, i16, u64);

/// What runs when a registration's fd is ready.
pub enum FdHandler {
    Closure(FdCallback),
    Fn(FdFn, u64),
}

pub struct FdEntry {
    pub fd: i32,
    pub events: i16,
    /// Index in the registry's dense poll set (`NOT_DENSE` if events are 0).
    dense: u32,
    /// The application beforepoll set this was last dispatched for.
    app_gen: u32,
    /// `None` only while the callback is running.
    cb: Option<FdHandler>,
    pub owner: Option<AoId>,
}

pub use super::fdindex::FdRegs;
use super::fdindex::FdIndex;

#[derive(Default)]
pub struct FdRegistry {
    slab: Slab<FdEntry>,
    /// fd number -> its live registrations (dispatch by fd).
    by_fd: FdIndex,
    /// One `pollfd` per registration with non-zero events, kept dense
    /// (swap-remove), so making a poll set is one copy.
    dense: Vec<PollFd>,
    /// The registration behind each `dense` entry.
    dense_owner: Vec<EvFd>,
}

const NOT_DENSE: u32 = u32::MAX;

impl FdRegistry {
    pub fn len(&self) -> usize {
        self.slab.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    pub fn get(&self, ev: EvFd) -> Option<&FdEntry> {
        self.slab.get(ev)
    }

    /// Appends one `pollfd` per live registration with non-zero events.
    pub fn fill_set(&self, fds: &mut Vec<PollFd>) {
        fds.extend_from_slice(&self.dense);
    }

    /// How many entries `fill_set` adds (registrations with events).
    pub fn set_len(&self) -> usize {
        self.dense.len()
    }

    /// Writes the poll set into `out` (exactly `set_len()` long).
    pub fn fill_into(&self, out: &mut [PollFd]) {
        out.copy_from_slice(&self.dense);
    }

    fn dense_add(&mut self, ev: EvFd, fd: i32, events: i16) {
        let idx = u32::try_from(self.dense.len()).expect("fewer than 2^32 registrations");
        self.dense.push(sys::pollfd(fd, events));
        self.dense_owner.push(ev);
        if let Some(e) = self.slab.get_mut(ev) {
            e.dense = idx;
        }
    }

    fn dense_remove(&mut self, idx: u32) {
        let i = idx as usize;
        self.dense.swap_remove(i);
        self.dense_owner.swap_remove(i);
        if let Some(&moved) = self.dense_owner.get(i) {
            if let Some(e) = self.slab.get_mut(moved) {
                e.dense = idx;
            }
        }
    }

    pub fn tokens(&self) -> Vec<EvFd> {
        self.slab.tokens()
    }

    pub(crate) fn app_gen(&self, ev: EvFd) -> Option<u32> {
        self.slab.get(ev).map(|e| e.app_gen)
    }

    pub(crate) fn set_app_gen(&mut self, ev: EvFd, gen: u32) {
        if let Some(e) = self.slab.get_mut(ev) {
            e.app_gen = gen;
        }
    }

    /// Every fd with at least one registration.
    pub fn fds(&self) -> impl Iterator<Item = i32> + '_ {
        self.by_fd.fds()
    }

    /// The registrations of `fd`.
    pub fn regs_for(&self, fd: i32) -> Option<FdRegs> {
        self.by_fd.get(fd)
    }

    /// How many fds have registrations.
    pub fn distinct_fds(&self) -> usize {
        self.by_fd.len()
    }

    /// Every registered fd with the union of its registrations' events.
    pub fn fd_unions(&self) -> impl Iterator<Item = (i32, i16)> + '_ {
        self.by_fd.fds().map(|fd| (fd, self.union_events(fd)))
    }

    /// The union of the events the registrations of `fd` ask for.
    pub fn union_events(&self, fd: i32) -> i16 {
        self.by_fd.get(fd).map_or(0, |r| {
            r.iter().filter_map(|&t| self.slab.get(t)).fold(0, |acc, e| acc | e.events)
        })
    }
}

impl Egc<'_> {
    /// Registers interest in `events` on `fd`. With `owner`, the
    /// registration ends when that ao completes.
    pub fn ev_fd_register(
        &mut self,
        owner: Option<AoId>,
        fd: i32,
        events: i16,
        cb: FdCallback,
    ) -> Result<EvFd, Rc> {
        self.ev_fd_register_handler(owner, fd, events, FdHandler::Closure(cb))
    }

    /// Like `ev_fd_register`, calling `f(.., data)`.
    pub fn ev_fd_register_fn(&mut self, owner: Option<AoId>, fd: i32, events: i16, f: FdFn, data: u64) -> Result<EvFd, Rc> {
        self.ev_fd_register_handler(owner, fd, events, FdHandler::Fn(f, data))
    }

    fn ev_fd_register_handler(
        &mut self,
        owner: Option<AoId>,
        fd: i32,
        events: i16,
        cb: FdHandler,
    ) -> Result<EvFd, Rc> {
        if fd < 0 {
            crate::xl_log!(self.ctx, Error, "ev_fd register: fd {fd} is negative");
            return Err(ERROR_INVAL);
        }
        let ev = self.st().fds.slab.insert(FdEntry { fd, events, dense: NOT_DENSE, app_gen: 0, cb: Some(cb), owner });
        if let Err(rc) = self.hook_fd_register(ev, fd, events) {
            self.st().fds.slab.remove(ev);
            crate::xl_log!(self.ctx, Error, "ev_fd={ev} register fd={fd}: application's fd_register hook failed (rc={rc})");
            return Err(rc);
        }
        crate::xl_log!(self.ctx, Debug, "ev_fd={ev} register fd={fd} events={events:#x}");
        if let Some(ao) = owner {
            self.ao_own(ao, crate::ao::Owned::Fd(ev));
        }
        let st = self.st();
        let old = st.fds.union_events(fd);
        if events != 0 {
            st.fds.dense_add(ev, fd, events);
        }
        st.fds.by_fd.add(fd, ev);
        self.fd_interest(fd, old, old | events);
        Ok(ev)
    }

    /// Changes the events of a live registration. Widening the events makes
    /// sleepers' sets stale, exactly like a new registration.
    pub fn ev_fd_modify(&mut self, ev: EvFd, events: i16) -> Result<(), Rc> {
        let Some(e) = self.s().fds.slab.get(ev) else {
            crate::xl_log!(self.ctx, Error, "ev_fd={ev} modify: not registered");
            return Err(ERROR_INVAL);
        };
        let (fd, old) = (e.fd, e.events);
        self.hook_fd_modify(ev, fd, events)?;
        let reg = &mut self.st().fds;
        let old_union = reg.union_events(fd);
        let e = reg.slab.get_mut(ev).expect("still registered");
        e.events = events;
        let idx = e.dense;
        match (idx == NOT_DENSE, events != 0) {
            (true, true) => reg.dense_add(ev, fd, events),
            (false, false) => {
                reg.slab.get_mut(ev).expect("still registered").dense = NOT_DENSE;
                reg.dense_remove(idx);
            }
            (false, true) => reg.dense[idx as usize].events = events,
            (true, false) => {}
        }
        crate::xl_log!(self.ctx, Debug, "ev_fd={ev} modify fd={fd} events={old:#x}->{events:#x}");
        let new_union = self.s().fds.union_events(fd);
        self.fd_interest(fd, old_union, new_union);
        Ok(())
    }

    /// Ends a registration. Idempotent; safe from the source's own callback.
    pub fn ev_fd_deregister(&mut self, ev: EvFd) {
        let Some(e) = self.st().fds.slab.remove(ev) else {
            return;
        };
        crate::xl_log!(self.ctx, Debug, "ev_fd={ev} deregister fd={}", e.fd);
        self.hook_fd_deregister(ev, e.fd);
        let st = self.st();
        if e.dense != NOT_DENSE {
            st.fds.dense_remove(e.dense);
        }
        st.fds.by_fd.remove(e.fd, ev);
        let new_union = st.fds.union_events(e.fd);
        self.fd_interest(e.fd, new_union | e.events, new_union);
    }

    /// `fd`'s union of events went from `old` to `new`: tells the sleepers
    /// (a widening makes poll sets stale) and the kernel interest set, if
    /// there is one, at once, while the fd is open. Drops that set when so
    /// few fds remain that poll sets are cheaper (a sleeper makes it again
    /// when it wants it: `eventloop_iteration`).
    fn fd_interest(&mut self, fd: i32, old: i16, new: i16) {
        let backend = self.ctx.backend;
        let st = self.st();
        if new & !old != 0 {
            st.pollers.note_fd_added();
        }
        let nfds = st.fds.by_fd.len();
        let want = backend.wants_interest(nfds, st.interest.is_some());
        match (want, st.interest.as_mut()) {
            (true, Some(interest)) => {
                let changed = interest.change(fd, old, new);
                if changed.sleep_set {
                    st.pollers.note_ep_sleep_changed();
                }
                self.interest_found(changed.finding.into_iter().collect());
            }
            (true, None) | (false, None) => {}
            (false, Some(_)) => {
                st.interest = None;
                st.pollers.note_ep_sleep_changed();
                crate::xl_log!(self.ctx, Debug, "poller: {nfds} fds registered: back to poll sets");
            }
        }
    }

    /// Makes the kernel interest set anew from the registry (when a sleeper
    /// first wants it, or after a finding: a closed file may have left an
    /// entry we cannot name). Sleepers on the old one are stale. Failing
    /// (out of fds), sleepers use poll sets and the next one tries again.
    pub(crate) fn interest_rebuild(&mut self) {
        let st = self.st();
        let closed_before = st.interest.as_mut().map(|i| i.take_closed()).unwrap_or_default();
        match crate::poller::interest::Interest::build(st.fds.fd_unions()) {
            Ok((mut interest, found)) => {
                interest.requeue_closed(closed_before);
                st.interest = Some(interest);
                st.pollers.note_ep_sleep_changed();
                crate::xl_log!(self.ctx, Debug, "poller: epoll set made for {} fds", self.s().fds.by_fd.len());
                for f in found {
                    self.interest_finding(f);
                }
            }
            Err(e) => {
                st.interest = None;
                st.pollers.note_ep_sleep_changed();
                crate::xl_log_errno!(self.ctx, Warn, e.raw_os_error().unwrap_or(0),
                    "cannot make an epoll set for the pollers; using poll sets");
            }
        }
    }

    /// Findings of a change or of the idle audit: each is logged, and the
    /// kernel interest set is made anew once (a closed file kept alive by
    /// a dup may have left an entry we can no longer name, which would
    /// wake sleepers for nothing).
    pub(crate) fn interest_found(&mut self, found: Vec<crate::poller::interest::Finding>) {
        if found.is_empty() {
            return;
        }
        for f in found {
            self.interest_finding(f);
        }
        self.interest_rebuild();
    }

    /// A registered fd was found closed while registered (the application
    /// broke libxl's rule that a registered fd stays open until it is
    /// deregistered). Logged at WARN naming the fd; fatal under
    /// `LIBXL_TEST_AUDIT=fail`, so that no test passes because a check
    /// rescued a sleeper.
    pub(crate) fn interest_finding(&mut self, f: crate::poller::interest::Finding) {
        crate::xl_log!(self.ctx, Warn, "fd {}: registered fd {}", f.fd, f.what);
        if self.ctx.audit_fail {
            self.ctx.fatal(&format!("LIBXL_TEST_AUDIT=fail: fd {} {} (found by the fd checks)", f.fd, f.what));
        }
    }

    pub fn ev_fd_isregistered(&self, ev: EvFd) -> bool {
        self.s().fds.slab.contains(ev)
    }

    pub(crate) fn set_fd_for_app(&mut self, ev: EvFd, for_app: usize) {
        if self.s().fds.slab.contains(ev) {
            self.st().hooks.fd_for_app.insert(ev, for_app);
        }
    }

    /// Something was seen on `fd` for registration `ev` (by a poller or the
    /// application's `occurred_fd`). Re-checks, then runs the callback.
    /// Stale tokens and mismatched fds are ignored. Returns whether the
    /// callback ran.
    pub(crate) fn fd_occurs(&mut self, ev: EvFd, fd: i32, revents_hint: i16) -> bool {
        let Some(events) = self.fd_dispatchable(ev, fd) else { return false };
        let revents = sys::poll::recheck(fd, events);
        crate::xl_log!(self.ctx, Debug, "ev_fd={ev} occurs fd={fd} events={events:#x} revents_hint={revents_hint:#x} revents_now={revents:#x}");
        if revents == 0 {
            return false;
        }
        if revents & sys::POLLNVAL != 0 {
            self.interest_finding(crate::poller::interest::Finding { fd, what: "is not open (POLLNVAL): closed while registered" });
        }
        self.fd_run(ev, fd, events, revents)
    }

    /// The kernel said `fd`'s file is gone (an fd check's finding: the
    /// application closed it while registered). Each registration of it
    /// that asks for events is told `POLLNVAL`, without a re-check: the
    /// number may name another file by now (even one of the library's).
    pub(crate) fn fd_closed(&mut self, fd: i32) {
        let Some(regs) = self.s().fds.regs_for(fd) else { return };
        for &ev in regs.iter() {
            if let Some(events) = self.fd_dispatchable(ev, fd) {
                self.fd_run(ev, fd, events, sys::POLLNVAL);
            }
        }
    }

    /// The events of `ev` if it may be dispatched for `fd` now: live, for
    /// this fd, not running, asking for something (a registration parked
    /// after `POLLNVAL`, or modified to 0, is told nothing more).
    fn fd_dispatchable(&self, ev: EvFd, fd: i32) -> Option<i16> {
        let Some(e) = self.s().fds.slab.get(ev) else {
            crate::xl_log!(self.ctx, Debug, "ev_fd={ev} fd={fd}: stale (no longer registered), ignored");
            return None;
        };
        if e.fd != fd || e.cb.is_none() {
            crate::xl_log!(self.ctx, Debug, "ev_fd={ev} fd={fd}: not this registration's fd ({}), ignored", e.fd);
            return None;
        }
        (e.events != 0).then_some(e.events)
    }

    /// Runs `ev`'s callback with `revents`; after `POLLNVAL`, parks the
    /// registration (events 0) if it is still there.
    fn fd_run(&mut self, ev: EvFd, fd: i32, events: i16, revents: i16) -> bool {
        if revents & sys::POLLNVAL != 0 {
            crate::xl_log!(self.ctx, Error, "ev_fd={ev} fd={fd}: POLLNVAL: the fd was closed while still registered with libxl");
        }
        let mut cb = self.st().fds.slab.get_mut(ev).and_then(|e| e.cb.take()).expect("checked by fd_dispatchable");
        match &mut cb {
            FdHandler::Closure(f) => f(self, ev, fd, events, revents),
            FdHandler::Fn(f, data) => f(self, ev, fd, events, revents, *data),
        }
        let Some(e) = self.st().fds.slab.get_mut(ev) else { return true };
        if e.cb.is_none() {
            e.cb = Some(cb);
        }
        if revents & sys::POLLNVAL != 0 && e.fd == fd && e.events != 0 {
            crate::xl_log!(self.ctx, Error, "ev_fd={ev} fd={fd}: closed but still registered: no longer polled");
            if let Err(rc) = self.ev_fd_modify(ev, 0) {
                crate::xl_log!(self.ctx, Error, "ev_fd={ev} fd={fd}: cannot stop polling it (rc={rc})");
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use crate::egc::Egc;
    use crate::sys::POLLIN;
    use crate::testutil;

    fn counting(n: &Arc<AtomicUsize>) -> super::FdCallback {
        let n = n.clone();
        Box::new(move |_, _, _, _, _| {
            n.fetch_add(1, Ordering::SeqCst);
        })
    }

    #[test]
    fn no_spurious_callback_when_the_condition_no_longer_holds() {
        let ctx = testutil::ctx();
        let (r, _w) = testutil::pipe();
        let n = Arc::new(AtomicUsize::new(0));
        let mut egc = Egc::new(&ctx, "test");
        let ev = egc.ev_fd_register(None, r.as_raw_fd(), POLLIN, counting(&n)).unwrap();
        // A poller claims POLLIN, but the pipe is empty now: no callback.
        egc.fd_occurs(ev, r.as_raw_fd(), POLLIN);
        assert_eq!(n.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn callback_runs_when_ready_and_stays_registered() {
        let ctx = testutil::ctx();
        let (r, w) = testutil::pipe();
        let n = Arc::new(AtomicUsize::new(0));
        let mut egc = Egc::new(&ctx, "test");
        let ev = egc.ev_fd_register(None, r.as_raw_fd(), POLLIN, counting(&n)).unwrap();
        testutil::poke(&w);
        egc.fd_occurs(ev, r.as_raw_fd(), 0);
        egc.fd_occurs(ev, r.as_raw_fd(), 0);
        assert_eq!(n.load(Ordering::SeqCst), 2);
        assert!(egc.ev_fd_isregistered(ev));
    }

    #[test]
    fn stale_fd_token_is_ignored_after_slot_reuse() {
        let ctx = testutil::ctx();
        let (r, w) = testutil::pipe();
        testutil::poke(&w);
        let (old_n, new_n) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let mut egc = Egc::new(&ctx, "test");
        let old = egc.ev_fd_register(None, r.as_raw_fd(), POLLIN, counting(&old_n)).unwrap();
        egc.ev_fd_deregister(old);
        let new = egc.ev_fd_register(None, r.as_raw_fd(), POLLIN, counting(&new_n)).unwrap();
        assert_eq!(old.index(), new.index(), "slot reused");
        egc.fd_occurs(old, r.as_raw_fd(), POLLIN);
        assert_eq!((old_n.load(Ordering::SeqCst), new_n.load(Ordering::SeqCst)), (0, 0));
        egc.fd_occurs(new, r.as_raw_fd(), POLLIN);
        assert_eq!(new_n.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn callback_may_deregister_itself() {
        let ctx = testutil::ctx();
        let (r, w) = testutil::pipe();
        testutil::poke(&w);
        let mut egc = Egc::new(&ctx, "test");
        let ev = egc
            .ev_fd_register(None, r.as_raw_fd(), POLLIN, Box::new(|e, ev, _, _, _| e.ev_fd_deregister(ev)))
            .unwrap();
        egc.fd_occurs(ev, r.as_raw_fd(), POLLIN);
        assert!(!egc.ev_fd_isregistered(ev));
        assert!(egc.s().fds.is_empty());
    }

    /// The dense poll set always holds exactly one entry per registration
    /// with events, whatever order registrations come and go in.
    #[test]
    fn dense_poll_set_matches_live_registrations_after_churn() {
        let ctx = testutil::ctx();
        let pipes: Vec<_> = (0..8).map(|_| testutil::pipe()).collect();
        let mut egc = Egc::new(&ctx, "test");
        let mut live = Vec::new();
        let mut x: u32 = 12345;
        for step in 0..2000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let r = (x >> 16) as usize;
            match r % 3 {
                0 | 1 if live.len() < 40 => {
                    let fd = pipes[r % pipes.len()].0.as_raw_fd();
                    let events = [0, POLLIN, crate::sys::POLLOUT][r % 3];
                    live.push(egc.ev_fd_register(None, fd, events, Box::new(|_, _, _, _, _| {})).unwrap());
                }
                0 | 1 => {}
                _ if !live.is_empty() => {
                    let ev = live.swap_remove(r % live.len());
                    if step % 2 == 0 {
                        egc.ev_fd_deregister(ev);
                    } else {
                        egc.ev_fd_modify(ev, if r % 4 == 0 { 0 } else { POLLIN }).unwrap();
                        live.push(ev);
                    }
                }
                _ => {}
            }
            let mut set = Vec::new();
            egc.s().fds.fill_set(&mut set);
            let mut want: Vec<(i32, i16)> = live
                .iter()
                .filter_map(|&t| egc.s().fds.get(t))
                .filter(|e| e.events != 0)
                .map(|e| (e.fd, e.events))
                .collect();
            let mut got: Vec<(i32, i16)> = set.iter().map(|p| (p.fd, p.events)).collect();
            want.sort_unstable();
            got.sort_unstable();
            assert_eq!(got, want, "after step {step}");
        }
    }

    /// The application closes a registered fd (misuse): the re-check
    /// before dispatch sees POLLNVAL; the callback is told once and the
    /// registration is parked, on either backend.
    #[test]
    fn a_fd_closed_while_registered_is_reported_once_and_then_no_longer_polled() {
        for backend in [crate::sys::Backend::Poll, crate::sys::Backend::Epoll] {
            let ctx = testutil::ctx_misuse(backend);
            let n = Arc::new(AtomicUsize::new(0));
            let (r, w) = testutil::pipe_out_of_the_way();
            let fd = r.as_raw_fd();
            let mut egc = Egc::new(&ctx, "test");
            let ev = egc.ev_fd_register(None, fd, POLLIN, counting(&n)).unwrap();
            assert_eq!(egc.s().fds.set_len(), 1);
            drop((r, w));
            egc.fd_occurs(ev, fd, crate::sys::POLLIN);
            assert_eq!(n.load(Ordering::SeqCst), 1, "{backend:?}: the callback sees POLLNVAL once");
            assert!(egc.ev_fd_isregistered(ev), "still registered: only the owner may deregister it");
            assert_eq!(egc.s().fds.get(ev).unwrap().events, 0, "parked");
            assert_eq!(egc.s().fds.set_len(), 0, "no longer in any poll set, so it cannot spin");
            egc.fd_occurs(ev, fd, crate::sys::POLLNVAL);
            assert_eq!(n.load(Ordering::SeqCst), 1, "{backend:?}: once");
            egc.ev_fd_deregister(ev);
        }
    }

    #[test]
    fn negative_fd_is_refused() {
        let ctx = testutil::ctx();
        let mut egc = Egc::new(&ctx, "test");
        assert_eq!(egc.ev_fd_register(None, -1, POLLIN, Box::new(|_, _, _, _, _| {})).err(), Some(crate::rc::ERROR_INVAL));
        assert!(egc.s().fds.is_empty());
    }
}
