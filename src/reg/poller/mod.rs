//! Pollers, wakeups and the baton.
//!
//! A poller is what one sleeping thread sleeps on. Threads in a
//! synchronous operation or in `libxl_event_wait` take a poller from the
//! idle pool and give it back when they leave; the *application poller* is
//! the one `libxl_osevent_beforepoll` hands to the application, and it is
//! always active. Each poller has its own wakeup pipe.
//!
//! This file is the pool and the baton (pure state, model-checked by
//! `tests/baton_model.rs`); [`interest`] is the ctx's kernel interest set
//! (one epoll instance, changed eagerly). The library's own event loop
//! turn is `egc::sleep`, the application poller (`libxl_osevent_beforepoll`
//! and `afterpoll`) `egc::app`.
//!
//! **What a sleeper waits on.** With few fds registered, a fresh `pollfd`
//! set made from the fd registry (a *poll set*); with many (or
//! `LIBXL_POLL_BACKEND=epoll`), the ctx's epoll instance, which every
//! registration change updates at once (an *epoll sleep*). A poll set goes
//! stale when an fd is added after it was made; an epoll sleep does not
//! (the kernel wakes the sleeper for a new fd), except for the fds polled
//! beside the instance. Either goes stale when a timeout is added (its
//! deadline may be earlier than the sleep's).
//!
//! **Unstale liveness** (the property the baton keeps): whenever any thread
//! sleeps on a set the library gave it, at least one sleeping thread's set
//! is up to date, or is about to be woken. How it is kept:
//! * adding an osevent marks `osevents_added` on every active poller whose
//!   set it makes stale (see above);
//! * every `Egc` passes the baton when it is disposed of (`Drop`), after
//!   any poller it used was put back: if the application poller is stale
//!   and *armed* (the application called beforepoll and not yet afterpoll,
//!   so it may be asleep on that set) it is woken; if no active internal
//!   poller is up to date, one stale one is woken (and counts as up to
//!   date: it will make a new set);
//! * making a set clears the poller's `osevents_added`;
//! * only sleepers are woken: an active internal poller whose thread is
//!   not asleep (it holds the lock, or runs callbacks unlocked) checks
//!   what it waits for and makes a fresh set before it sleeps, so it
//!   counts as up to date, and its thread never writes its own pipe.
//!   Because only code holding an `Egc` can add osevents, and every `Egc` is
//!   dropped before its thread leaves the library, the property holds on
//!   every exit path.
//!
//! Wakeups are merged: a poller's pipe is written only when it is believed
//! empty (`pipe_nonempty`), and drained when the poller sees it readable.
#![forbid(unsafe_code)]

use std::io;

pub mod interest;

pub use super::PollerId;
use crate::sys::epoll::EpollEvent;
use crate::sys::{wakeup::Wakeup, PollFd};
use crate::token::Slab;


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
    /// A wake byte is (believed to be) in the pipe.
    pipe_nonempty: bool,
    /// Osevents were added since this poller's set was made.
    pub osevents_added: bool,
    /// In use by a thread (or the application poller).
    active: bool,
    /// Its thread sleeps on its set (between making it, lock held, and
    /// taking the lock back). An internal poller that is not sleeping needs
    /// no wakeup: its thread checks what it waits for, and makes a fresh
    /// set, before it sleeps again (a thread never wakes itself).
    sleeping: bool,
    /// The thread using it waits for events (`libxl_event_wait`).
    pub wants_events: bool,
    /// Its set is an epoll sleep (else a poll set): new fds do not make it
    /// stale.
    on_ep: bool,
    /// The poll set last made for this poller (poll sets), or the fds
    /// polled beside the epoll instance (epoll sleeps).
    pub fds: Vec<PollFd>,
    /// Where an epoll sleep's results land.
    pub ep_buf: Vec<EpollEvent>,
}

impl<W: Clone> Clone for Poller<W> {
    /// Clones the flags and sets (for the model check).
    fn clone(&self) -> Self {
        Poller {
            wakeup: self.wakeup.clone(),
            pipe_nonempty: self.pipe_nonempty,
            osevents_added: self.osevents_added,
            active: self.active,
            sleeping: self.sleeping,
            wants_events: self.wants_events,
            on_ep: self.on_ep,
            fds: self.fds.clone(),
            ep_buf: Vec::new(),
        }
    }
}

impl<W: WakeFd> Poller<W> {
    fn new() -> io::Result<Poller<W>> {
        Ok(Poller {
            wakeup: W::open()?,
            pipe_nonempty: false,
            osevents_added: false,
            active: false,
            sleeping: false,
            wants_events: false,
            on_ep: false,
            fds: Vec::new(),
            ep_buf: Vec::new(),
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
    /// Where the last set handed out was written (address, entries), to
    /// tell an afterpoll on that very array from one on another.
    pub app_set_at: (usize, usize),
}

impl<W> Default for Pollers<W> {
    fn default() -> Self {
        Pollers { slab: Slab::new(), idle: Vec::new(), active: Vec::new(), app: None, app_armed: false, app_in_afterpoll: false, app_set_gen: 0, app_set_at: (0, 0) }
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
                p.sleeping = false;
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
    /// An internal poller whose thread is not sleeping is not written to
    /// (see `sleeping`); the application poller always is (the
    /// application's loop may be about to poll).
    pub fn wake(&mut self, id: PollerId) -> io::Result<()> {
        let is_app = self.app == Some(id);
        let p = self.get_mut(id);
        if p.pipe_nonempty || !(p.sleeping || is_app) {
            return Ok(());
        }
        p.pipe_nonempty = true;
        p.wakeup.wake()
    }

    /// Poller `id`'s thread starts (true: lock held, its set just made) or
    /// stops (false: lock taken back) sleeping on its set.
    pub fn set_sleeping(&mut self, id: PollerId, sleeping: bool) {
        self.get_mut(id).sleeping = sleeping;
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

    /// An osevent was added that makes every set stale (a timeout: its
    /// deadline may come before any sleeper's).
    pub fn note_osevent_added(&mut self) {
        self.mark_stale(|_| true);
    }

    /// An fd was added (or its events widened): poll sets are stale; epoll
    /// sleeps see it at once.
    pub fn note_fd_added(&mut self) {
        self.mark_stale(|p| !p.on_ep);
    }

    /// What epoll sleeps wait on changed other than through the instance
    /// (fds polled beside it, fds found closed, a new or dropped instance):
    /// they are stale.
    pub fn note_ep_sleep_changed(&mut self) {
        self.mark_stale(|p| p.on_ep);
    }

    fn mark_stale(&mut self, which: impl Fn(&Poller<W>) -> bool) {
        for &id in &self.active {
            if let Some(p) = self.slab.get_mut(id) {
                if which(p) {
                    p.osevents_added = true;
                }
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

    /// Poller `id` has just made a fresh set (`on_ep`: an epoll sleep): it
    /// is up to date.
    pub fn set_made(&mut self, id: PollerId, on_ep: bool) {
        let p = self.get_mut(id);
        p.osevents_added = false;
        p.on_ep = on_ep;
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
            let p = self.get_ref(id);
            if !p.osevents_added || !p.sleeping {
                // Someone is up to date and will wake as needed (a thread
                // that is not asleep makes a fresh set before it sleeps).
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys;

    fn pollers() -> Pollers {
        let mut p = Pollers::default();
        p.init_app().unwrap();
        p
    }

    fn woken(p: &Pollers, id: PollerId) -> bool {
        sys::poll::recheck(p.wakeup_fd(id), sys::POLLIN) & sys::POLLIN != 0
    }

    /// Two threads "sleep" (hold active pollers); an osevent is added;
    /// passing the baton wakes exactly one of them, and the armed
    /// application poller.
    #[test]
    fn unstale_liveness_one_stale_sleeper_is_woken_when_none_is_up_to_date() {
        let mut p = pollers();
        let (a, b) = (p.get().unwrap(), p.get().unwrap());
        p.set_sleeping(a, true);
        p.set_sleeping(b, true);
        p.app_armed = true; // as after a beforepoll
        p.note_osevent_added();
        p.baton_pass().unwrap();
        assert_eq!([a, b].iter().filter(|&&id| woken(&p, id)).count(), 1, "exactly one stale sleeper is woken");
        assert!(woken(&p, p.app()), "the application poller is woken too");
    }

    #[test]
    fn baton_is_not_passed_while_an_up_to_date_sleeper_exists() {
        let mut p = pollers();
        let a = p.get().unwrap();
        p.note_osevent_added();
        let b = p.get().unwrap(); // made its set after the add
        p.baton_pass().unwrap();
        assert!(!woken(&p, a) && !woken(&p, b), "b is up to date: nobody needs waking");
    }

    #[test]
    fn making_a_set_clears_the_stale_mark() {
        let mut p = pollers();
        let a = p.get().unwrap();
        p.note_osevent_added();
        p.set_made(a, false);
        p.baton_pass().unwrap();
        assert!(!woken(&p, a));
    }

    /// A new fd makes poll sets stale but not epoll sleeps (the kernel
    /// tells those of it); a change to what epoll sleeps poll beside the
    /// instance makes only those stale.
    #[test]
    fn fd_additions_make_only_poll_sets_stale() {
        let mut p = pollers();
        let (a, b) = (p.get().unwrap(), p.get().unwrap());
        p.set_made(a, false);
        p.set_made(b, true);
        p.note_fd_added();
        assert!(p.get_ref(a).osevents_added && !p.get_ref(b).osevents_added);
        p.set_made(a, false);
        p.note_ep_sleep_changed();
        assert!(!p.get_ref(a).osevents_added && p.get_ref(b).osevents_added);
    }

    #[test]
    fn wakeups_are_merged_and_drained() {
        let mut p = pollers();
        let a = p.get().unwrap();
        p.set_sleeping(a, true);
        for _ in 0..10 {
            p.wake(a).unwrap();
        }
        assert!(woken(&p, a));
        p.drain(a).unwrap();
        assert!(!woken(&p, a));
    }

    /// A poller whose thread is not asleep (it holds the lock, or runs
    /// callbacks) is neither written to nor picked as the stale victim: it
    /// makes a fresh set before it sleeps. The same poller asleep is.
    #[test]
    fn a_thread_never_wakes_itself() {
        let mut p = pollers();
        let a = p.get().unwrap();
        p.wake(a).unwrap();
        assert!(!woken(&p, a) && !p.is_woken(a), "awake thread: no byte written");
        p.note_osevent_added();
        p.baton_pass().unwrap();
        assert!(!woken(&p, a), "awake thread counts as up to date for the baton");
        p.set_sleeping(a, true);
        p.baton_pass().unwrap();
        assert!(woken(&p, a), "asleep on a stale set: woken");
        p.drain(a).unwrap();
        p.set_sleeping(a, false);
        p.put(a);
        let b = p.get().unwrap();
        p.wake(b).unwrap();
        assert!(!woken(&p, b), "put clears sleeping");
        p.wake(p.app()).unwrap();
        assert!(woken(&p, p.app()), "the application poller is always written");
    }

    #[test]
    fn poller_pool_reuses_pollers() {
        let mut p = pollers();
        let a = p.get().unwrap();
        p.put(a);
        let b = p.get().unwrap();
        assert_eq!(a, b);
        assert_eq!(p.total(), 2, "app poller + one pooled");
    }
}
