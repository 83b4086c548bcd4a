//! The application poller: `libxl_osevent_beforepoll` hands the
//! application a `pollfd` set (every registration with events, plus the
//! poller's wakeup pipe) and a timeout; `libxl_osevent_afterpoll`
//! dispatches what its `poll` found.
//!
//! Invariants:
//! * The application poller is *armed* from beforepoll to afterpoll: only
//!   then may it be asleep on a set of ours, so only then does the baton
//!   wake it (see `poller`).
//! * A registration is dispatched from afterpoll at most once per
//!   beforepoll set, whatever array the application passes back (as libxl
//!   does): each registration remembers the set it was last dispatched for.
//! * Results about fds no longer registered are ignored, and a result is
//!   re-checked before its callback runs unless it is fresh: the array is
//!   the one the last beforepoll wrote (same address and length) and no
//!   level of the lock was taken between that beforepoll letting the lock
//!   go and this afterpoll (the lock's epoch), so the application's poll,
//!   which came in between, saw exactly our registrations and nobody has
//!   read their fds since. A stale array cannot cause a callback.
#![forbid(unsafe_code)]

use crate::egc::Egc;
use crate::sys::{self, PollFd};

use super::sleep::timeout_ms;

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
        st.pollers.set_made(app, false);
        st.pollers.app_armed = true;
        if fits {
            st.pollers.app_set_gen = st.pollers.app_set_gen.wrapping_add(1).max(1);
            st.pollers.app_set_at = (space.as_ptr() as usize, needed);
        }
        let timeout = st.times.earliest().map_or(-1, |d| timeout_ms(d, now));
        self.app_set_made |= fits;
        BeforePoll { needed, timeout, fits }
    }

    /// `libxl_osevent_afterpoll`: dispatches `fds` (the set from the last
    /// beforepoll, with revents filled in by poll) and due timeouts.
    pub fn app_afterpoll(&mut self, fds: &[PollFd], now: u64) {
        let app = self.s().pollers.app();
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
        let same_array = st.pollers.app_set_at == (fds.as_ptr() as usize, fds.len());
        // This afterpoll's own level is the one taken since beforepoll.
        let untouched = self.ctx.state.epoch() == self.ctx.app_set_epoch.load(std::sync::atomic::Ordering::Relaxed).wrapping_add(1);
        self.fresh = untouched && same_array;
        self.afterpoll_dispatch(app, fds, Some(now), Some(gen));
        self.fresh = false;
        self.st().pollers.app_in_afterpoll = false;
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use crate::egc::Egc;
    use crate::sys::{self, PollFd, POLLIN};
    use crate::testutil;

    /// A ctx with one registration on a pipe that is never readable, whose
    /// callback counts its runs; and a beforepoll set for it in `set`
    /// (beforepoll's egc dropped, as when the application's call returns).
    fn armed(ctx: &crate::egc::Ctx, set: &mut Vec<PollFd>) -> (Arc<AtomicUsize>, std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
        let (r, w) = testutil::pipe();
        let ran = Arc::new(AtomicUsize::new(0));
        let n = ran.clone();
        let mut egc = Egc::new(ctx, "test");
        egc.ev_fd_register(None, r.as_raw_fd(), POLLIN, Box::new(move |_, _, _, _, _| {
            n.fetch_add(1, Ordering::SeqCst);
        }))
        .unwrap();
        drop(egc);
        set.resize(2, sys::pollfd(-1, 0));
        let bp = Egc::new(ctx, "beforepoll").app_beforepoll(set, sys::clock::mono_ns());
        assert!(bp.fits);
        (ran, r, w)
    }

    /// What the application's poll would have said: the pipe readable.
    fn claim_readable(set: &mut [PollFd], fd: i32) {
        set.iter_mut().filter(|p| p.fd == fd).for_each(|p| p.revents = POLLIN);
    }

    /// Nothing happened between beforepoll and afterpoll but the
    /// application's poll, on the array beforepoll wrote: its result is
    /// dispatched as it is (no second poll). (The pipe is in fact empty:
    /// only a trusted result can run the callback.)
    #[test]
    fn an_untouched_beforepoll_set_is_dispatched_as_the_application_polled_it() {
        let ctx = testutil::ctx();
        let mut set = Vec::new();
        let (ran, r, _w) = armed(&ctx, &mut set);
        claim_readable(&mut set, r.as_raw_fd());
        Egc::new(&ctx, "afterpoll").app_afterpoll(&set, sys::clock::mono_ns());
        assert_eq!(ran.load(Ordering::SeqCst), 1);
    }

    /// Another thread took the lock between beforepoll and afterpoll (it
    /// may have read the fd or changed registrations): re-checked, and the
    /// empty pipe runs no callback.
    #[test]
    fn a_set_is_rechecked_when_the_lock_was_taken_since_beforepoll() {
        let ctx = testutil::ctx();
        let mut set = Vec::new();
        let (ran, r, _w) = armed(&ctx, &mut set);
        std::thread::scope(|s| {
            s.spawn(|| drop(Egc::new(&ctx, "other")));
        });
        claim_readable(&mut set, r.as_raw_fd());
        Egc::new(&ctx, "afterpoll").app_afterpoll(&set, sys::clock::mono_ns());
        assert_eq!(ran.load(Ordering::SeqCst), 0, "a stale result ran a callback");
    }

    /// An array other than the one beforepoll wrote (a copy, an older
    /// one): re-checked.
    #[test]
    fn another_array_than_beforepolls_is_rechecked() {
        let ctx = testutil::ctx();
        let mut set = Vec::new();
        let (ran, r, _w) = armed(&ctx, &mut set);
        let mut copy = set.clone();
        claim_readable(&mut copy, r.as_raw_fd());
        Egc::new(&ctx, "afterpoll").app_afterpoll(&copy, sys::clock::mono_ns());
        assert_eq!(ran.load(Ordering::SeqCst), 0, "a result on another array ran a callback");
    }
}
