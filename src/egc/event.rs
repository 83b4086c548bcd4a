//! Events for the application: the verbs (`event_occurred`,
//! `libxl_event_check`, `libxl_event_wait`, `disaster`).
//!
//! Invariants:
//! * Each event is delivered exactly once: to `event_occurs` if its type's
//!   bit is in the registered mask (after the lock is released), otherwise
//!   into the queue, from which check/wait remove it.
//! * Queueing an event wakes every thread waiting in `libxl_event_wait`,
//!   and the application poller unless the application is inside afterpoll
//!   (after which it checks events), so no waiter sleeps past an event.
//! * Predicates run with the lock held, marked as application code: they
//!   must not call libxl (caught as fatal re-entry).
//! * check/wait are O(n) in the number of queued events that do not match,
//!   as libxl documents.
#![forbid(unsafe_code)]

use super::{in_hook, Egc};
use crate::rc::{Rc, ERROR_FAIL, ERROR_NOT_READY};
use crate::reg::event::{Event, EventHooks};

impl Egc<'_> {
    /// `libxl_event_register_callbacks`.
    pub fn register_event_hooks(&mut self, hooks: Option<EventHooks>) {
        self.st().events.set_hooks(hooks);
    }

    /// An event happened: to `event_occurs` or into the queue.
    pub fn event_occurred(&mut self, ev: Event) {
        let occurs = self.s().events.occurs_for(&ev);
        if let Some(occurs) = occurs {
            crate::xl_log!(self.ctx, Debug, "event type={} for_user={:#x}: to event_occurs callback", ev.kind.type_num(), ev.for_user);
            self.queue_event_call(Box::new(move || occurs(ev)));
            return;
        }
        crate::xl_log!(self.ctx, Debug, "event type={} for_user={:#x}: queued", ev.kind.type_num(), ev.for_user);
        let st = self.st();
        st.events.push(ev);
        let app = st.pollers.app();
        // Wake the application unless it is in afterpoll (it checks events
        // next): it may have checked already and be about to sleep.
        let wake_app = !st.pollers.app_in_afterpoll;
        let r = st.pollers.wake_event_waiters().and_then(|()| if wake_app { st.pollers.wake(app) } else { Ok(()) });
        if let Err(e) = r {
            self.disaster("cannot wake a thread waiting for events", e.raw_os_error().unwrap_or(0));
        }
    }

    /// Removes and returns the first queued event matching `typemask` and
    /// `pred`, or `ERROR_NOT_READY`.
    pub fn event_check(&mut self, typemask: u64, pred: &mut dyn FnMut(&Event) -> bool) -> Result<Event, Rc> {
        let ctx = self.ctx;
        let events = &mut self.st().events;
        in_hook(ctx, || events.take_first(|ev| typemask & ev.mask_bit() != 0 && pred(ev))).ok_or(ERROR_NOT_READY)
    }

    /// Like `event_check`, but runs the event loop until a match arrives.
    /// An event already queued is returned without taking a poller (so
    /// even when none can be made: out of fds).
    pub fn event_wait(&mut self, typemask: u64, pred: &mut dyn FnMut(&Event) -> bool) -> Result<Event, Rc> {
        match self.event_check(typemask, pred) {
            Err(ERROR_NOT_READY) => {}
            other => return other,
        }
        let pid = match self.st().pollers.get() {
            Ok(p) => p,
            Err(e) => {
                crate::xl_log_errno!(self.ctx, Error, e.raw_os_error().unwrap_or(0), "libxl_event_wait: cannot make a poller");
                return Err(ERROR_FAIL);
            }
        };
        self.st().pollers.get_mut(pid).wants_events = true;
        let r = loop {
            match self.event_check(typemask, pred) {
                Err(ERROR_NOT_READY) => {}
                other => break other,
            }
            if let Err(rc) = self.eventloop_iteration(pid) {
                break Err(rc);
            }
            self.flush_unlocked();
        };
        self.st().pollers.put(pid);
        r
    }

    /// Something wholly unrecoverable happened in the event machinery.
    /// Logs CRITICAL, then calls the application's `disaster` hook (lock
    /// held, as libxl does); without one, the program exits, as in libxl.
    pub fn disaster(&mut self, msg: &str, errnoval: i32) {
        self.disaster_of(0, msg, errnoval)
    }

    /// [`Egc::disaster`] relating to events of type `ty` (0: none).
    pub fn disaster_of(&mut self, ty: u32, msg: &str, errnoval: i32) {
        match ty {
            0 => crate::xl_log_errno!(self.ctx, Critical, errnoval, "DISASTER in event loop: {msg}"),
            _ => crate::xl_log_errno!(self.ctx, Critical, errnoval, "DISASTER in event loop: {msg} (relates to event type {ty})"),
        }
        let hook = self.s().events.disaster_hook();
        match hook {
            Some(d) => in_hook(self.ctx, || d(ty, msg, errnoval)),
            None => {
                crate::xl_log!(self.ctx, Critical, "DISASTER in event loop not handled by libxl application");
                eprintln!("libxl: fatal error, exiting program: DISASTER in event loop not handled by libxl application");
                std::process::exit(-1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reg::event::*;
    use std::sync::Arc;
    use crate::testutil;

    fn op(fe: u64) -> Event {
        Event::new(0, fe, EventKind::OperationComplete { rc: 0 })
    }

    #[test]
    fn check_honours_typemask_and_predicate_and_keeps_order() {
        let ctx = testutil::ctx();
        let mut egc = Egc::new(&ctx, "test");
        egc.event_occurred(Event::new(0, 9, EventKind::DomainCreateConsoleAvailable));
        for fe in 1..=3 {
            egc.event_occurred(op(fe));
        }
        let only_ops = 1u64 << EVENT_OPERATION_COMPLETE;
        assert_eq!(egc.event_check(only_ops, &mut |e| e.for_user == 2).unwrap().for_user, 2);
        assert_eq!(egc.event_check(only_ops, &mut |_| true).unwrap().for_user, 1);
        assert_eq!(egc.event_check(only_ops, &mut |e| e.for_user == 9), Err(ERROR_NOT_READY));
        assert_eq!(egc.event_check(u64::MAX, &mut |_| true).unwrap().for_user, 9);
        assert_eq!(egc.s().events.queued(), 1);
    }

    #[test]
    fn events_in_the_hook_mask_go_to_the_callback_not_the_queue() {
        let ctx = testutil::ctx();
        let got = Arc::new(parking_lot::Mutex::new(Vec::new()));
        {
            let mut egc = Egc::new(&ctx, "test");
            let g = got.clone();
            egc.register_event_hooks(Some(EventHooks {
                occurs_mask: 1 << EVENT_OPERATION_COMPLETE,
                occurs: Some(Arc::new(move |e| g.lock().push(e.for_user))),
                disaster: None,
            }));
            egc.event_occurred(op(5));
            egc.event_occurred(Event::new(0, 6, EventKind::DomainCreateConsoleAvailable));
            assert_eq!(egc.s().events.queued(), 1, "only the unmasked type is queued");
        }
        assert_eq!(*got.lock(), vec![5]);
    }

    #[test]
    fn queued_event_wakes_event_waiters() {
        let ctx = testutil::ctx();
        let mut egc = Egc::new(&ctx, "test");
        let w = egc.st().pollers.get().unwrap();
        egc.st().pollers.get_mut(w).wants_events = true;
        egc.st().pollers.set_sleeping(w, true);
        egc.event_occurred(op(1));
        let fd = egc.s().pollers.wakeup_fd(w);
        assert_ne!(crate::sys::poll::recheck(fd, crate::sys::POLLIN), 0);
    }
}
