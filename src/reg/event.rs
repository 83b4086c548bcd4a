//! Events for the application: their values, and the queue behind
//! `libxl_event_check` and `libxl_event_wait`.
//!
//! Invariants: the queue keeps events in the order they occurred; an event
//! is in it until a check or wait takes it (or `libxl_ctx_free` discards
//! it). Which events go to `event_occurs` instead is the registered hooks'
//! mask.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::sync::Arc;

use super::foreign::Foreign;
use crate::rc::Rc;

/// `libxl_event_type` values.
pub const EVENT_DOMAIN_SHUTDOWN: u32 = 1;
pub const EVENT_DOMAIN_DEATH: u32 = 2;
pub const EVENT_DISK_EJECT: u32 = 3;
pub const EVENT_OPERATION_COMPLETE: u32 = 4;
pub const EVENT_DOMAIN_CREATE_CONSOLE_AVAILABLE: u32 = 5;

/// The typemask bits of every event type that exists: a wait whose mask
/// has none of them could never return.
pub const KNOWN_TYPES_MASK: u64 = (1 << EVENT_DOMAIN_SHUTDOWN)
    | (1 << EVENT_DOMAIN_DEATH)
    | (1 << EVENT_DISK_EJECT)
    | (1 << EVENT_OPERATION_COMPLETE)
    | (1 << EVENT_DOMAIN_CREATE_CONSOLE_AVAILABLE);

#[derive(Debug, PartialEq, Eq)]
pub enum EventKind {
    DomainShutdown { reason: u8 },
    DomainDeath,
    OperationComplete { rc: Rc },
    DomainCreateConsoleAvailable,
    /// An event C code built (inside Xen's libxl: a `libxl_event` from
    /// `libxl__event_new`, with whatever its type carries); handed to the
    /// application as it is. Boxed: rare, and the common kinds stay small.
    Foreign(Box<ForeignEvent>),
}

/// See [`EventKind::Foreign`].
#[derive(Debug, PartialEq, Eq)]
pub struct ForeignEvent {
    pub type_num: u32,
    pub ev: Foreign,
}

impl EventKind {
    pub fn type_num(&self) -> u32 {
        match self {
            EventKind::DomainShutdown { .. } => EVENT_DOMAIN_SHUTDOWN,
            EventKind::DomainDeath => EVENT_DOMAIN_DEATH,
            EventKind::OperationComplete { .. } => EVENT_OPERATION_COMPLETE,
            EventKind::DomainCreateConsoleAvailable => EVENT_DOMAIN_CREATE_CONSOLE_AVAILABLE,
            EventKind::Foreign(f) => f.type_num,
        }
    }
}

/// `libxl_event`, without the C list link.
#[derive(Debug, PartialEq, Eq)]
pub struct Event {
    pub domid: u32,
    pub domuuid: [u8; 16],
    pub for_user: u64,
    pub kind: EventKind,
}

impl Event {
    pub fn new(domid: u32, for_user: u64, kind: EventKind) -> Event {
        Event { domid, domuuid: [0; 16], for_user, kind }
    }

    /// The bit `typemask` and `event_occurs_mask` use for this event.
    pub fn mask_bit(&self) -> u64 {
        1u64 << self.kind.type_num()
    }
}

/// The application's `disaster` hook: `(event type or 0, message, errno)`.
pub type DisasterFn = Arc<dyn Fn(u32, &str, i32) + Send + Sync>;

/// `libxl_event_hooks`, converted.
pub struct EventHooks {
    pub occurs_mask: u64,
    pub occurs: Option<Arc<dyn Fn(Event) + Send + Sync>>,
    /// `(event type or 0, message, errno)`; called with the lock held.
    pub disaster: Option<DisasterFn>,
}

#[derive(Default)]
pub struct EventState {
    queue: VecDeque<Event>,
    hooks: Option<Arc<EventHooks>>,
}

impl EventState {
    pub fn set_hooks(&mut self, hooks: Option<EventHooks>) {
        self.hooks = hooks.map(Arc::new);
    }

    /// The `event_occurs` callback if `ev`'s type is in its mask.
    pub fn occurs_for(&self, ev: &Event) -> Option<Arc<dyn Fn(Event) + Send + Sync>> {
        self.hooks.as_ref().filter(|h| h.occurs_mask & ev.mask_bit() != 0).and_then(|h| h.occurs.clone())
    }

    pub fn disaster_hook(&self) -> Option<DisasterFn> {
        self.hooks.as_ref().and_then(|h| h.disaster.clone())
    }

    pub fn push(&mut self, ev: Event) {
        self.queue.push_back(ev);
    }

    /// Removes and returns the first queued event `matches` accepts.
    pub fn take_first(&mut self, matches: impl FnMut(&Event) -> bool) -> Option<Event> {
        let i = self.queue.iter().position(matches)?;
        self.queue.remove(i)
    }

    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Drops queued events (for `libxl_ctx_free`); returns how many.
    pub fn discard_all(&mut self) -> usize {
        let n = self.queue.len();
        self.queue.clear();
        n
    }
}


#[cfg(test)]
mod tests {
    use super::*;
    use crate::reg::foreign::testing::{record, times_freed};

    fn foreign(type_num: u32, addr: usize) -> Event {
        Event::new(0, 0, EventKind::Foreign(Box::new(ForeignEvent { type_num, ev: Foreign::new(addr, record) })))
    }

    /// A C event (inside Xen's libxl) is filtered by its own type, and one
    /// nobody takes is freed with the queue.
    #[test]
    fn a_foreign_event_keeps_its_type_and_is_freed_if_never_taken() {
        let (eject, death) = (0xe0_0001, 0xe0_0002);
        let mut q = EventState::default();
        q.push(foreign(EVENT_DISK_EJECT, eject));
        q.push(foreign(EVENT_DOMAIN_DEATH, death));
        let e = q.take_first(|e| e.mask_bit() == 1 << EVENT_DOMAIN_DEATH).expect("by type");
        let EventKind::Foreign(f) = e.kind else { panic!("foreign") };
        assert_eq!(f.ev.into_addr(), death, "handed over, not freed");
        assert_eq!(q.discard_all(), 1);
        assert_eq!((times_freed(eject), times_freed(death)), (1, 0), "the untaken one freed, once");
    }
}
