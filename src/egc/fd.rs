//! fd event sources (libxl's `libxl__ev_fd`): the verbs.
//!
//! Register = insert in the fd registry → tell the application's hooks →
//! tell the pollers and the kernel interest set → attach to the owning ao.
//! Deregister undoes each, in reverse.
//!
//! Invariants:
//! * **No spurious callbacks**: a callback runs only on a result that
//!   holds now for the registration's current events, and gets those
//!   revents. A result is taken as it is when it is fresh (this thread's
//!   own sleep found it, no other level of the lock was taken since, so no
//!   registration changed and nobody read the fd, and no callback has run
//!   since: [`Egc::fresh`]); otherwise the fd is polled again with zero
//!   timeout first. (One more exception: an fd the kernel has just said is
//!   closed, see [`Egc::fd_closed`].)
//! * The callback runs with the lock held, through the egc. It stays
//!   registered afterwards unless it (or anyone) deregisters it; it may
//!   deregister itself.
//! * **A closed fd cannot spin.** A callback that got `POLLNVAL` (the fd
//!   was closed while registered: the application's bug) is told once; if
//!   its registration is still live afterwards its events are set to 0, so
//!   no poller reports it again until it is modified or deregistered.
//! * With osevent hooks, every registration is mirrored to the application
//!   (`fd_register`/`fd_modify`/`fd_deregister`), with this registration's
//!   token as `for_libxl`.
#![forbid(unsafe_code)]

use super::Egc;
use crate::rc::{Rc, ERROR_INVAL};
use crate::reg::ao::Owned;
use crate::reg::{AoId, EvFd};
use crate::sys;

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

impl Egc<'_> {
    /// Registers interest in `events` on `fd`. With `owner`, the
    /// registration ends when that ao completes.
    pub fn ev_fd_register(&mut self, owner: Option<AoId>, fd: i32, events: i16, cb: FdCallback) -> Result<EvFd, Rc> {
        self.ev_fd_register_handler(owner, fd, events, FdHandler::Closure(cb))
    }

    /// Like `ev_fd_register`, calling `f(.., data)`.
    pub fn ev_fd_register_fn(&mut self, owner: Option<AoId>, fd: i32, events: i16, f: FdFn, data: u64) -> Result<EvFd, Rc> {
        self.ev_fd_register_handler(owner, fd, events, FdHandler::Fn(f, data))
    }

    /// Whether a registration made now can skip checking that its fd is
    /// open, leaving it to the first poll: only while the library's
    /// sleepers use poll sets (the kernel interest set would take an fd
    /// that is not open as a finding at once).
    pub fn fd_check_can_wait(&self) -> bool {
        self.s().interest.is_none() && !self.ctx.backend.wants_interest(self.s().fds.distinct_fds() + 1, false)
    }

    /// Like `ev_fd_register_fn`, for an fd not checked to be open (see
    /// `fd_check_can_wait`, which must hold): the next poll set made holds
    /// it, and if that poll says `POLLNVAL` the callback gets it without
    /// the closed-fd finding (the caller's argument was bad; the callback
    /// says so). After that poll it is an ordinary registration.
    pub fn ev_fd_register_fn_unverified(
        &mut self,
        owner: Option<AoId>,
        fd: i32,
        events: i16,
        f: FdFn,
        data: u64,
    ) -> Result<EvFd, Rc> {
        let ev = self.ev_fd_register_fn(owner, fd, events, f, data)?;
        self.st().fds.mark_unverified(ev);
        Ok(ev)
    }

    /// Touches: the fd registry, the application's hooks, the pollers and
    /// the kernel interest set, the owning ao.
    fn ev_fd_register_handler(&mut self, owner: Option<AoId>, fd: i32, events: i16, cb: FdHandler) -> Result<EvFd, Rc> {
        if fd < 0 {
            crate::xl_log!(self.ctx, Error, "ev_fd register: fd {fd} is negative");
            return Err(ERROR_INVAL);
        }
        let old = self.s().fds.union_events(fd);
        let ev = self.st().fds.insert(fd, events, cb, owner);
        if let Err(rc) = self.hook_fd_register(ev, fd, events) {
            self.st().fds.remove(ev);
            crate::xl_log!(self.ctx, Error, "ev_fd={ev} register fd={fd}: application's fd_register hook failed (rc={rc})");
            return Err(rc);
        }
        crate::xl_log!(self.ctx, Debug, "ev_fd={ev} register fd={fd} events={events:#x}");
        self.fd_interest(fd, old, old | events);
        if let Some(ao) = owner {
            self.ao_own(ao, Owned::Fd(ev));
        }
        Ok(ev)
    }

    /// Changes the events of a live registration. Widening the events makes
    /// poll sets stale, exactly like a new registration.
    pub fn ev_fd_modify(&mut self, ev: EvFd, events: i16) -> Result<(), Rc> {
        let Some(fd) = self.s().fds.get(ev).map(|e| e.fd) else {
            crate::xl_log!(self.ctx, Error, "ev_fd={ev} modify: not registered");
            return Err(ERROR_INVAL);
        };
        self.hook_fd_modify(ev, fd, events)?;
        let old_union = self.s().fds.union_events(fd);
        let old = self.st().fds.set_events(ev, events).expect("still registered");
        crate::xl_log!(self.ctx, Debug, "ev_fd={ev} modify fd={fd} events={old:#x}->{events:#x}");
        let new_union = self.s().fds.union_events(fd);
        self.fd_interest(fd, old_union, new_union);
        Ok(())
    }

    /// Ends a registration. Idempotent; safe from the source's own callback.
    pub fn ev_fd_deregister(&mut self, ev: EvFd) {
        let Some(e) = self.st().fds.remove(ev) else {
            return;
        };
        crate::xl_log!(self.ctx, Debug, "ev_fd={ev} deregister fd={}", e.fd);
        self.hook_fd_deregister(ev, e.fd);
        let new_union = self.s().fds.union_events(e.fd);
        self.fd_interest(e.fd, new_union | e.events, new_union);
    }

    pub fn ev_fd_isregistered(&self, ev: EvFd) -> bool {
        self.s().fds.contains(ev)
    }

    /// Something was seen on `fd` for registration `ev` (by a poller or the
    /// application's `occurred_fd`). Re-checks, then runs the callback.
    /// Stale tokens and mismatched fds are ignored. Returns whether the
    /// callback ran.
    pub(crate) fn fd_occurs(&mut self, ev: EvFd, fd: i32, revents_hint: i16) -> bool {
        let Some(events) = self.fd_dispatchable(ev, fd) else { return false };
        let revents = if self.fresh {
            revents_hint & (events | sys::POLLERR | sys::POLLHUP | sys::POLLNVAL)
        } else {
            sys::poll::recheck(fd, events)
        };
        crate::xl_log!(self.ctx, Debug, "ev_fd={ev} occurs fd={fd} events={events:#x} revents_hint={revents_hint:#x} revents_now={revents:#x} fresh={}", self.fresh);
        if revents == 0 {
            return false;
        }
        // POLLNVAL for a registration not yet settled (see
        // `ev_fd_register_fn_unverified`) is a bad argument, not a finding.
        if revents & sys::POLLNVAL != 0 && self.s().fds.get(ev).is_some_and(|e| e.verified) {
            self.interest_finding(crate::reg::poller::interest::Finding { fd, what: "is not open (POLLNVAL): closed while registered" });
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
        let fds = &self.s().fds;
        let Some(e) = fds.get(ev) else {
            crate::xl_log!(self.ctx, Debug, "ev_fd={ev} fd={fd}: stale (no longer registered), ignored");
            return None;
        };
        if e.fd != fd || fds.running(ev) {
            crate::xl_log!(self.ctx, Debug, "ev_fd={ev} fd={fd}: not this registration's fd ({}), ignored", e.fd);
            return None;
        }
        (e.events != 0).then_some(e.events)
    }

    /// Runs `ev`'s callback with `revents`; after `POLLNVAL`, parks the
    /// registration (events 0) if it is still there.
    fn fd_run(&mut self, ev: EvFd, fd: i32, events: i16, revents: i16) -> bool {
        if revents & sys::POLLNVAL != 0 {
            if self.s().fds.get(ev).is_some_and(|e| e.verified) {
                crate::xl_log!(self.ctx, Error, "ev_fd={ev} fd={fd}: POLLNVAL: the fd was closed while still registered with libxl");
            } else {
                crate::xl_log!(self.ctx, Debug, "ev_fd={ev} fd={fd}: POLLNVAL: not open when registered");
            }
        }
        let Some(mut cb) = self.st().fds.take_cb(ev) else { return false };
        // The callback may read any fd: results after it are re-checked.
        self.fresh = false;
        match &mut cb {
            FdHandler::Closure(f) => f(self, ev, fd, events, revents),
            FdHandler::Fn(f, data) => f(self, ev, fd, events, revents, *data),
        }
        self.st().fds.restore_cb(ev, cb);
        let parked = self.s().fds.get(ev).is_some_and(|e| e.fd == fd && e.events != 0);
        if revents & sys::POLLNVAL != 0 && parked {
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
        let ev = egc.ev_fd_register(None, r.as_raw_fd(), POLLIN, Box::new(|e, ev, _, _, _| e.ev_fd_deregister(ev))).unwrap();
        egc.fd_occurs(ev, r.as_raw_fd(), POLLIN);
        assert!(!egc.ev_fd_isregistered(ev));
        assert!(egc.s().fds.is_empty());
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
