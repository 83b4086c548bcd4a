//! Keeping the ctx's kernel interest set (`reg::poller::interest`) in
//! step with the fd registry: the verbs the fd verbs call at every change,
//! the sleepers call to make the set, and every fd check calls with what it
//! found.
//!
//! Invariants: the set, while it exists, holds the union of each
//! registered fd's events (changed at once, while the fd is open); poll
//! sets and epoll sleeps it makes stale are marked so (see the baton in
//! `reg::poller`); a finding (a registered fd found closed) is logged at
//! WARN naming the fd, fatal under `LIBXL_TEST_AUDIT=fail`, and the set is
//! then made anew, which evicts any entry a closed file kept alive by a
//! dup may have left.
#![forbid(unsafe_code)]

use super::Egc;

impl Egc<'_> {
    /// `fd`'s union of events went from `old` to `new`: tells the sleepers
    /// (a widening makes poll sets stale) and the kernel interest set, if
    /// there is one, at once, while the fd is open. Drops that set when so
    /// few fds remain that poll sets are cheaper (a sleeper makes it again
    /// when it wants it: `eventloop_iteration`).
    pub(super) fn fd_interest(&mut self, fd: i32, old: i16, new: i16) {
        let backend = self.ctx.backend;
        let st = self.st();
        if new & !old != 0 {
            st.pollers.note_fd_added();
        }
        let nfds = st.fds.distinct_fds();
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
        match crate::reg::poller::interest::Interest::build(st.fds.fd_unions()) {
            Ok((mut interest, found)) => {
                interest.requeue_closed(closed_before);
                st.interest = Some(interest);
                st.pollers.note_ep_sleep_changed();
                crate::xl_log!(self.ctx, Debug, "poller: epoll set made for {} fds", self.s().fds.distinct_fds());
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
    pub(crate) fn interest_found(&mut self, found: Vec<crate::reg::poller::interest::Finding>) {
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
    pub(crate) fn interest_finding(&mut self, f: crate::reg::poller::interest::Finding) {
        crate::xl_log!(self.ctx, Warn, "fd {}: registered fd {}", f.fd, f.what);
        if self.ctx.audit_fail {
            self.ctx.fatal(&format!("LIBXL_TEST_AUDIT=fail: fd {} {} (found by the fd checks)", f.fd, f.what));
        }
    }
}
