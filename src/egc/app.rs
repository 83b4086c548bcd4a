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
//! * Results about fds no longer registered are ignored, and every
//!   dispatch re-checks its fd, so a stale array cannot cause a callback.
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
        }
        let timeout = st.times.earliest().map_or(-1, |d| timeout_ms(d, now));
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
        self.afterpoll_dispatch(app, fds, Some(now), Some(gen));
        self.st().pollers.app_in_afterpoll = false;
    }
}
