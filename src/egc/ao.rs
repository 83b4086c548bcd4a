//! Asynchronous operations (libxl's `libxl__ao`): the verbs.
//!
//! An operation's initiator calls, in this order:
//! `ao_create` → set up sources (`ev_fd_register`, `ev_time_register_*`,
//! `ao_abortable_register`, ...) → `ao_inprogress` (or `ao_create_fail` if
//! setup failed). Later, exactly once, some callback calls `ao_complete`.
//! `ao_run` is that whole pattern.
//!
//! The three modes (`libxl_asyncop_how`):
//! * synchronous (`ao_how == NULL`): the ao owns a poller and
//!   `ao_inprogress` runs the event loop on it until the ao is complete,
//!   then returns the ao's rc;
//! * callback: completion queues the application's callback, run after the
//!   lock is released;
//! * for_event: completion queues an `OPERATION_COMPLETE` event.
//!
//! Invariants:
//! * Completion is reported once every progress report has been delivered
//!   and every child it killed has been reaped; the ao is freed once its
//!   completion has been reported and neither the initiator nor an abort is
//!   using it.
//! * Sources registered with an owning ao are deregistered when it
//!   completes (newest first), so no source outlives its operation; a child
//!   process still running then is killed (SIGKILL) and reaped before
//!   completion is reported.
//! * Aborting runs every abortable's callback with `ERROR_ABORTED`, newest
//!   first (a root's abort list holds its abortables and its timeouts,
//!   which fire early); registering an abortable or a timeout on an
//!   aborting ao fails with `ERROR_ABORTED`.
//! * Nested aos share their root's abort state and must all be freed before
//!   the root completes.
#![forbid(unsafe_code)]


use super::Egc;
use crate::rc::{Rc, ERROR_ABORTED, ERROR_FAIL, ERROR_NOTFOUND};
use crate::reg::ao::abort::{AbortAction, AbortRef, AbortTarget};
use crate::reg::ao::{AbortKey, AoHow, AopHow, Mode, Owned, OwnedRef, Phase};
use crate::reg::event::{Event, EventKind};
use crate::reg::{AbrtId, AoId, EvTime};

/// An abortable's callback: `(egc, ERROR_ABORTED)`.
pub type AbortCallback = Box<dyn FnOnce(&mut Egc<'_>, Rc) + Send>;

/// `(egc, ERROR_ABORTED, data)`: an abortable's callback as a plain
/// function and a word (a C callback and its struct, no allocation).
pub type AbortFn = fn(&mut Egc<'_>, Rc, u64);

/// What an abortable runs.
pub enum AbortHandler {
    Closure(AbortCallback),
    Fn(AbortFn, u64),
}

impl Egc<'_> {
    /// Starts an ao. In synchronous mode this takes a poller, which can fail
    /// (out of fds): `ERROR_FAIL`, logged.
    pub fn ao_create(&mut self, how: AoHow, domid: u32) -> Result<AoId, Rc> {
        let (mode, key) = match how {
            AoHow::Sync => {
                let pid = match self.st().pollers.get() {
                    Ok(p) => p,
                    Err(e) => {
                        crate::xl_log_errno!(self.ctx, Error, e.raw_os_error().unwrap_or(0),
                            "cannot make a poller for a synchronous operation");
                        return Err(ERROR_FAIL);
                    }
                };
                (Mode::Sync { poller: Some(pid) }, AbortKey::SYNC)
            }
            AoHow::Callback { cb, key } => (Mode::Callback(Some(cb)), key),
            AoHow::ForEvent(fe) => (Mode::ForEvent(fe), AbortKey::event(fe)),
        };
        let ao = self.st().aos.create(mode, key, domid);
        crate::xl_log!(self.ctx, Debug, "ao {ao}: create: how={key:?}");
        Ok(ao)
    }

    /// The whole initiator pattern (libxl's AO_CREATE … AO_INPROGRESS /
    /// AO_CREATE_FAIL): create the ao, let `setup` register its sources,
    /// then either set it going or, if setup failed, make it vanish and
    /// return setup's error.
    pub fn ao_run(&mut self, how: AoHow, domid: u32, setup: impl FnOnce(&mut Egc<'_>, AoId) -> Result<(), Rc>) -> Rc {
        let ao = match self.ao_create(how, domid) {
            Ok(ao) => ao,
            Err(rc) => return rc,
        };
        match setup(self, ao) {
            Ok(()) => self.ao_inprogress(ao),
            Err(rc) => {
                self.ao_create_fail(ao);
                rc
            }
        }
    }

    /// The initiator has set the ao going. Synchronous: runs the event loop
    /// until the ao is complete and returns its rc. Otherwise returns 0.
    pub fn ao_inprogress(&mut self, ao: AoId) -> Rc {
        self.st().aos.get_mut(ao).set_constructing(false);
        crate::xl_log!(self.ctx, Debug, "ao {ao}: inprogress");
        let rc = if let Mode::Sync { poller: Some(pid) } = self.s().aos.get(ao).mode {
            loop {
                let e = self.st().aos.get_mut(ao);
                if !e.work_outstanding() {
                    e.phase = Phase::Notified;
                    break e.rc;
                }
                if let Err(rc) = self.eventloop_iteration(pid) {
                    crate::xl_log!(self.ctx, Error, "ao {ao}: error waiting for events (rc={rc}); retrying in 1s");
                    self.unlocked(|| std::thread::sleep(std::time::Duration::from_secs(1)));
                }
                self.flush_unlocked();
            }
        } else {
            0
        };
        if let Mode::Sync { poller } = &mut self.st().aos.get_mut(ao).mode {
            if let Some(pid) = poller.take() {
                self.st().pollers.put(pid);
            }
        }
        self.ao_manip_leave(ao);
        rc
    }

    /// The initiator failed before `ao_inprogress`: the ao vanishes without
    /// reporting anything; the initiator returns its error itself.
    pub fn ao_create_fail(&mut self, ao: AoId) {
        crate::xl_log!(self.ctx, Debug, "ao {ao}: create fail");
        self.ao_release_owned(ao);
        let e = self.st().aos.remove(ao).expect("live ao");
        if let Mode::Sync { poller: Some(pid) } = e.mode {
            self.st().pollers.put(pid);
        }
    }

    /// The operation is finished with `rc`. Exactly once per ao.
    pub fn ao_complete(&mut self, ao: AoId, rc: Rc) {
        if self.s().aos.get(ao).phase != Phase::Running {
            crate::xl_log!(self.ctx, Error, "ao {ao}: completed twice (rc={rc}); ignoring the second completion");
            debug_assert!(false, "ao completed twice");
            return;
        }
        if self.s().aos.in_a_tree(ao) {
            self.ctx.fatal("internal: an ao with live nested aos, or a nested ao, was completed");
        }
        crate::xl_log!(self.ctx, Debug, "ao {ao}: complete, rc={rc}");
        self.ao_release_owned(ao);
        let aos = &mut self.st().aos;
        aos.leave_index(ao);
        let e = aos.get_mut(ao);
        e.phase = Phase::Complete;
        e.rc = rc;
        self.ao_check_progress_reports(ao);
    }

    /// Completion is reported when no work is outstanding.
    fn ao_check_progress_reports(&mut self, ao: AoId) {
        let e = self.st().aos.get_mut(ao);
        if e.work_outstanding() {
            return;
        }
        let (domid, rc, constructing) = (e.domid, e.rc, e.constructing());
        match &mut e.mode {
            Mode::Sync { poller } => {
                // Its initiator's loop sees it; wake that loop unless the
                // initiator has not started it yet.
                if let (Some(pid), false) = (*poller, constructing) {
                    if let Err(err) = self.st().pollers.wake(pid) {
                        self.disaster("cannot wake a synchronous operation's poller", err.raw_os_error().unwrap_or(0));
                    }
                }
            }
            Mode::Callback(cb) => {
                if let Some(cb) = cb.take() {
                    crate::xl_log!(self.ctx, Debug, "ao {ao}: complete for callback");
                    self.queue_ao_call(Box::new(move || cb(rc)), ao);
                }
            }
            Mode::ForEvent(for_user) => {
                let for_user = *for_user;
                e.phase = Phase::Notified;
                self.event_occurred(Event::new(domid, for_user, EventKind::OperationComplete { rc }));
            }
            Mode::Nested => {}
        }
        self.ao_check_destroy(ao);
    }

    fn ao_check_destroy(&mut self, ao: AoId) {
        let Some(e) = self.s().aos.try_get(ao) else { return };
        if e.manip == 0 && e.phase == Phase::Notified {
            crate::xl_log!(self.ctx, Debug, "ao {ao}: destroy");
            self.st().aos.remove(ao);
        }
    }

    fn ao_manip_leave(&mut self, ao: AoId) {
        self.st().aos.get_mut(ao).manip -= 1;
        self.ao_check_destroy(ao);
    }

    /// The application's completion callback for `ao` has returned.
    pub(crate) fn ao_notified(&mut self, ao: AoId) {
        if let Some(e) = self.st().aos.try_get_mut(ao) {
            e.phase = Phase::Notified;
        }
        self.ao_check_destroy(ao);
    }

    /// A progress callback for `ao` has returned.
    pub(crate) fn ao_progress_delivered(&mut self, ao: AoId) {
        let Some(e) = self.st().aos.try_get_mut(ao) else { return };
        e.progress_outstanding -= 1;
        self.ao_check_progress_reports(ao);
    }

    /// Records that `ao` owns a source (released at completion).
    pub(crate) fn ao_own(&mut self, ao: AoId, what: Owned) {
        if let Some(e) = self.st().aos.try_get_mut(ao) {
            e.owned.push(OwnedRef::pack(what));
        }
    }

    fn ao_release_owned(&mut self, ao: AoId) {
        let owned = std::mem::take(&mut self.st().aos.get_mut(ao).owned);
        // Newest first, as a C operation would tear down.
        for &o in owned.as_slice().iter().rev() {
            match o.unpack() {
                Owned::Fd(ev) => self.ev_fd_deregister(ev),
                Owned::Time(ev) => self.ev_time_deregister(ev),
                Owned::Abortable(a) => self.ao_abortable_deregister(a),
                Owned::Child(ch) => self.ev_child_kill_deregister(ao, ch, crate::sys::process::SIGKILL),
            }
        }
    }

    /// A child of `ao` was killed; its root's completion now waits for the
    /// reaping. Returns the root to tell (`None` if the ao is gone).
    pub(crate) fn ao_killed_child_add(&mut self, ao: AoId) -> Option<AoId> {
        let aos = &mut self.st().aos;
        aos.try_get(ao)?;
        let root = aos.root_of(ao);
        aos.try_get_mut(root)?.killed_children += 1;
        Some(root)
    }

    /// A child killed on `ao`'s behalf has been reaped.
    pub(crate) fn ao_killed_child_reaped(&mut self, ao: AoId) {
        let Some(e) = self.st().aos.try_get_mut(ao) else { return };
        e.killed_children -= 1;
        if e.phase != Phase::Running {
            self.ao_check_progress_reports(ao);
        }
    }

    /// `ERROR_ABORTED` if the ao (or its root) is being aborted, else 0.
    pub fn ao_aborting(&self, ao: AoId) -> Rc {
        let aos = &self.s().aos;
        if aos.get(aos.root_of(ao)).aborting() {
            ERROR_ABORTED
        } else {
            0
        }
    }

    /// Asks to be told (once, with `ERROR_ABORTED`) if `ao` is aborted.
    /// Owned by `ao`: deregistered when it completes.
    pub fn ao_abortable_register(&mut self, ao: AoId, cb: AbortCallback) -> Result<AbrtId, Rc> {
        let root = self.abort_list_root(ao, "abortable")?;
        let a = self.st().aos.abortable_insert(root, AbortAction::Callback(AbortHandler::Closure(cb)));
        self.ao_own(ao, Owned::Abortable(a));
        Ok(a)
    }

    /// libxl's own `libxl__ao_abortable_register`: `f(egc, ERROR_ABORTED,
    /// data)` if `ao` (its root) is aborted; not owned by `ao` (its C
    /// caller deregisters it).
    pub fn ao_abortable_register_unowned(&mut self, ao: AoId, f: AbortFn, data: u64) -> Result<AbrtId, Rc> {
        let root = self.abort_list_root(ao, "abortable")?;
        Ok(self.st().aos.abortable_insert(root, AbortAction::Callback(AbortHandler::Fn(f, data))))
    }

    /// Asks for `ao` to be completed with `ERROR_ABORTED` if it is aborted
    /// (the usual abortable, without a closure; for a top-level ao just a
    /// flag). Ends with `ao`.
    pub fn ao_abortable_register_completes(&mut self, ao: AoId) -> Result<(), Rc> {
        let root = self.abort_list_root(ao, "abortable")?;
        if self.s().aos.is_nested(ao) {
            let a = self.st().aos.abortable_insert(root, AbortAction::CompleteAo(ao));
            self.ao_own(ao, Owned::Abortable(a));
        } else {
            self.st().aos.get_mut(ao).set_completes_on_abort(true);
        }
        Ok(())
    }

    /// The root whose abort list a new abortable or timeout of `ao` joins,
    /// or `ERROR_ABORTED` (logged) if that root is already aborting.
    fn abort_list_root(&self, ao: AoId, what: &str) -> Result<AoId, Rc> {
        let aos = &self.s().aos;
        let root = aos.root_of(ao);
        if aos.get(root).aborting() {
            crate::xl_log!(self.ctx, Debug, "ao {ao}: {what} registration refused: already aborting");
            return Err(ERROR_ABORTED);
        }
        Ok(root)
    }

    /// Idempotent.
    pub fn ao_abortable_deregister(&mut self, a: AbrtId) {
        self.st().aos.abortable_remove(a);
    }

    /// Aborting `ao` will fire timeout `ev` early (with `ERROR_ABORTED`);
    /// refused with `ERROR_ABORTED` if it is already aborting.
    pub(crate) fn ao_abortable_add_time(&mut self, ao: AoId, ev: EvTime) -> Result<(), Rc> {
        let root = self.abort_list_root(ao, "timeout")?;
        self.st().aos.abort_list_push(root, AbortRef::time(ev));
        Ok(())
    }

    /// Undoes `ao_abortable_add_time` (idempotent; `ao` may be gone).
    pub(crate) fn ao_abortable_remove_time(&mut self, ao: AoId, ev: EvTime) {
        let aos = &mut self.st().aos;
        let root = aos.root_of(ao);
        aos.abort_list_remove(root, AbortRef::time(ev));
    }

    /// `libxl_ao_abort`: finds the newest in-progress ao named by `key`.
    pub fn ao_abort(&mut self, key: AbortKey) -> Rc {
        let Some(ao) = self.st().aos.find(key) else {
            crate::xl_log!(self.ctx, Debug, "ao_abort: no operation in progress matches {key:?}");
            return ERROR_NOTFOUND;
        };
        let e = self.st().aos.get_mut(ao);
        if e.aborting() {
            return ERROR_ABORTED;
        }
        e.set_aborting(true);
        e.manip += 1;
        let completes = e.take_completes_on_abort();
        if self.s().aos.abort_list(ao).is_empty() && !completes {
            crate::xl_log!(self.ctx, Debug, "ao {ao}: abort requested and noted, but no-one interested");
        }
        while let Some(r) = self.st().aos.abort_list_pop(ao) {
            match r.target() {
                AbortTarget::Time(ev) => {
                    crate::xl_log!(self.ctx, Debug, "ao {ao}: ev_time={ev}: aborting");
                    self.ev_time_fire(ev, ERROR_ABORTED, false);
                }
                AbortTarget::Abortable(a) => {
                    let Some(ab) = self.st().aos.abortable_remove(a) else { continue };
                    crate::xl_log!(self.ctx, Debug, "ao {ao}: abrt={a}: aborting");
                    match ab.action {
                        AbortAction::Callback(AbortHandler::Closure(cb)) => cb(self, ERROR_ABORTED),
                        AbortAction::Callback(AbortHandler::Fn(f, data)) => f(self, ERROR_ABORTED, data),
                        AbortAction::CompleteAo(target) => self.ao_complete(target, ERROR_ABORTED),
                    }
                }
            }
            self.flush_unlocked();
        }
        if completes && self.s().aos.get(ao).phase == Phase::Running {
            crate::xl_log!(self.ctx, Debug, "ao {ao}: aborting: completes with ERROR_ABORTED");
            self.ao_complete(ao, ERROR_ABORTED);
        }
        self.ao_manip_leave(ao);
        0
    }

    /// Reports progress of `ao` as the application asked (`aop_how`).
    pub fn ao_progress_report(&mut self, ao: AoId, how: &AopHow, mut ev: Event) {
        match how {
            AopHow::Discard => {
                crate::xl_log!(self.ctx, Debug, "ao {ao}: progress report: ignored");
            }
            AopHow::ForEvent(fe) => {
                ev.for_user = *fe;
                crate::xl_log!(self.ctx, Debug, "ao {ao}: progress report: event queued type={}", ev.kind.type_num());
                self.event_occurred(ev);
            }
            AopHow::Callback { for_event, cb } => {
                ev.for_user = *for_event;
                self.st().aos.get_mut(ao).progress_outstanding += 1;
                crate::xl_log!(self.ctx, Debug, "ao {ao}: progress report: callback queued");
                let cb = cb.clone();
                self.queue_progress_call(Box::new(move || cb(ev)), ao);
            }
        }
    }

    /// A child ao sharing `parent`'s root (abort state). Free it with
    /// `nested_ao_free` before the root completes.
    pub fn nested_ao_create(&mut self, parent: AoId) -> AoId {
        let child = self.st().aos.create_nested(parent);
        crate::xl_log!(self.ctx, Debug, "ao {child}: nested ao, parent {parent}");
        child
    }

    pub fn nested_ao_free(&mut self, child: AoId) {
        self.ao_release_owned(child);
        self.st().aos.remove_nested(child).expect("live nested ao");
    }

    /// Keeps `extra` with `ao` until the core frees it (see `AoExtra`).
    pub fn ao_attach(&mut self, ao: AoId, extra: super::ctx::AoExtra) {
        self.st().aos.get_mut(ao).extra = extra;
    }

    /// `ao`'s phase, `None` once it has been freed.
    pub fn ao_phase(&self, ao: AoId) -> Option<Phase> {
        self.s().aos.try_get(ao).map(|e| e.phase)
    }

    /// True if `ao` is nested, or has live nested aos.
    pub fn ao_in_a_tree(&self, ao: AoId) -> bool {
        self.s().aos.in_a_tree(ao)
    }

    pub fn ao_is_nested(&self, ao: AoId) -> bool {
        self.s().aos.is_nested(ao)
    }

    /// True while `ao` exists (for tests and assertions).
    pub fn ao_exists(&self, ao: AoId) -> bool {
        self.s().aos.contains(ao)
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;
    use std::sync::atomic::{AtomicI32, Ordering};

    use super::*;
    use crate::reg::event::{Event, EventKind};
    use crate::rc::ERROR_ABORTED;
    use crate::rc::ERROR_TIMEDOUT;
    use crate::sys::POLLIN;
    use crate::testutil;

    fn event_ao(egc: &mut Egc<'_>, fe: u64) -> AoId {
        egc.ao_create(AoHow::ForEvent(fe), 0).unwrap()
    }

    fn completion_rc(egc: &mut Egc<'_>, fe: u64) -> Option<Rc> {
        match egc.event_check(u64::MAX, &mut |e| e.for_user == fe) {
            Ok(Event { kind: EventKind::OperationComplete { rc }, .. }) => Some(rc),
            _ => None,
        }
    }

    #[test]
    fn completing_an_ao_deregisters_the_sources_it_owns() {
        let ctx = testutil::ctx();
        let (r, _w) = testutil::pipe();
        let mut egc = Egc::new(&ctx, "test");
        let ao = event_ao(&mut egc, 1);
        let fd = egc.ev_fd_register(Some(ao), r.as_raw_fd(), POLLIN, Box::new(|_, _, _, _, _| {})).unwrap();
        let t = egc.ev_time_register_rel(ao, 10_000, Box::new(|_, _, _| {})).unwrap();
        let a = egc.ao_abortable_register(ao, Box::new(|_, _| {})).unwrap();
        assert_eq!(egc.ao_inprogress(ao), 0);
        egc.ao_complete(ao, 0);
        assert!(!egc.ev_fd_isregistered(fd));
        assert!(!egc.ev_time_isregistered(t));
        assert!(!egc.s().aos.abortable_exists(a));
        assert_eq!(completion_rc(&mut egc, 1), Some(0));
        assert!(!egc.ao_exists(ao), "reported and no longer in use: freed");
    }

    #[test]
    fn abort_runs_abortables_with_error_aborted() {
        let ctx = testutil::ctx();
        let mut egc = Egc::new(&ctx, "test");
        let ao = event_ao(&mut egc, 7);
        egc.ao_abortable_register(ao, Box::new(move |e, rc| e.ao_complete(ao, rc))).unwrap();
        egc.ao_inprogress(ao);
        assert_eq!(egc.ao_abort(AbortKey::event(7)), 0);
        assert_eq!(completion_rc(&mut egc, 7), Some(ERROR_ABORTED));
        assert_eq!(egc.ao_abort(AbortKey::event(7)), ERROR_NOTFOUND, "completed: no longer findable");
    }

    static ABORTED: parking_lot::Mutex<Vec<(u64, Rc)>> = parking_lot::const_mutex(Vec::new());
    fn note_abort(_: &mut Egc<'_>, rc: Rc, data: u64) {
        ABORTED.lock().push((data, rc));
    }

    /// libxl's own abortables: a function and its C struct's address, run
    /// by the abort; not released by the ao's completion (C deregisters).
    #[test]
    fn an_unowned_abortable_runs_its_function_with_its_data_word() {
        let ctx = testutil::ctx();
        let mut egc = Egc::new(&ctx, "test");
        let ao = event_ao(&mut egc, 41);
        let a = egc.ao_abortable_register_unowned(ao, note_abort, 0xabc).unwrap();
        egc.ao_inprogress(ao);
        assert_eq!(egc.ao_abort(AbortKey::event(41)), 0);
        assert_eq!(ABORTED.lock().iter().filter(|&&(d, _)| d == 0xabc).count(), 1);
        assert!(ABORTED.lock().contains(&(0xabc, ERROR_ABORTED)));
        assert!(!egc.s().aos.abortable_exists(a), "deregistered before it ran");
        egc.ao_complete(ao, ERROR_ABORTED);

        let ao = event_ao(&mut egc, 42);
        let b = egc.ao_abortable_register_unowned(ao, note_abort, 0xdef).unwrap();
        egc.ao_inprogress(ao);
        egc.ao_complete(ao, 0);
        assert!(egc.s().aos.abortable_exists(b), "not the ao's: still registered after completion");
        egc.ao_abortable_deregister(b);
        assert!(!egc.s().aos.abortable_exists(b));
    }

    #[test]
    fn abort_of_unknown_operation_is_notfound() {
        let ctx = testutil::ctx();
        let mut egc = Egc::new(&ctx, "test");
        let ao = event_ao(&mut egc, 1);
        egc.ao_inprogress(ao);
        assert_eq!(egc.ao_abort(AbortKey::event(2)), ERROR_NOTFOUND);
        assert_eq!(egc.ao_abort(AbortKey::SYNC), ERROR_NOTFOUND);
        assert_eq!(egc.ao_abort(AbortKey::callback(1, 1)), ERROR_NOTFOUND);
    }

    #[test]
    fn second_abort_of_an_aborting_ao_is_error_aborted() {
        let ctx = testutil::ctx();
        let mut egc = Egc::new(&ctx, "test");
        let ao = event_ao(&mut egc, 3);
        egc.ao_inprogress(ao); // no abortables: the abort is only noted
        assert_eq!(egc.ao_abort(AbortKey::event(3)), 0);
        assert_eq!(egc.ao_aborting(ao), ERROR_ABORTED);
        assert_eq!(egc.ao_abort(AbortKey::event(3)), ERROR_ABORTED);
        assert_eq!(
            egc.ao_abortable_register(ao, Box::new(|_, _| {})).err(),
            Some(ERROR_ABORTED),
            "registering on an aborting ao is refused"
        );
        egc.ao_complete(ao, ERROR_ABORTED);
    }

    #[test]
    fn aborting_cuts_a_timeout_short_with_error_aborted() {
        let ctx = testutil::ctx();
        let mut egc = Egc::new(&ctx, "test");
        let ao = event_ao(&mut egc, 4);
        egc.ev_time_register_rel(ao, 60_000, Box::new(move |e, _, rc| e.ao_complete(ao, rc))).unwrap();
        egc.ao_inprogress(ao);
        assert_eq!(egc.ao_abort(AbortKey::event(4)), 0);
        assert_eq!(completion_rc(&mut egc, 4), Some(ERROR_ABORTED));
    }

    #[test]
    fn a_timeout_is_on_its_roots_abort_list_exactly_while_registered() {
        let ctx = testutil::ctx();
        let mut egc = Egc::new(&ctx, "test");
        let root = event_ao(&mut egc, 6);
        let child = egc.nested_ao_create(root);
        let ev = egc.ev_time_register_rel(child, 60_000, Box::new(|_, _, _| panic!("deregistered"))).unwrap();
        assert!(egc.s().aos.abort_list(root).contains(&AbortRef::time(ev)), "listed on the root");
        egc.ev_time_deregister(ev);
        assert!(egc.s().aos.abort_list(root).is_empty(), "gone with the registration");
        let fired = std::sync::Arc::new(AtomicI32::new(0));
        let f = fired.clone();
        egc.ev_time_register_rel(child, 60_000, Box::new(move |_, _, rc| f.store(rc, Ordering::SeqCst))).unwrap();
        egc.ao_inprogress(root);
        assert_eq!(egc.ao_abort(AbortKey::event(6)), 0);
        assert_eq!(fired.load(Ordering::SeqCst), ERROR_ABORTED, "aborting the root fired the child's timeout");
        assert!(egc.s().aos.abort_list(root).is_empty());
        egc.nested_ao_free(child);
        egc.ao_complete(root, ERROR_ABORTED);
        assert_eq!(completion_rc(&mut egc, 6), Some(ERROR_ABORTED));
    }

    #[test]
    fn a_timeout_on_an_aborting_ao_is_refused() {
        let ctx = testutil::ctx();
        let mut egc = Egc::new(&ctx, "test");
        let ao = event_ao(&mut egc, 8);
        egc.ao_abortable_register(ao, Box::new(|_, _| {})).unwrap();
        egc.ao_inprogress(ao);
        assert_eq!(egc.ao_abort(AbortKey::event(8)), 0);
        let r = egc.ev_time_register_rel(ao, 10, Box::new(|_, _, _| {}));
        assert_eq!(r.err(), Some(ERROR_ABORTED));
        assert!(egc.s().times.is_empty(), "nothing left registered");
    }

    #[test]
    fn abort_finds_the_newest_matching_operation() {
        let ctx = testutil::ctx();
        let mut egc = Egc::new(&ctx, "test");
        let old = event_ao(&mut egc, 9);
        let new = event_ao(&mut egc, 9);
        for ao in [old, new] {
            egc.ao_abortable_register(ao, Box::new(move |e, rc| e.ao_complete(ao, rc))).unwrap();
            egc.ao_inprogress(ao);
        }
        assert_eq!(egc.ao_abort(AbortKey::event(9)), 0);
        assert!(egc.ao_exists(old) && !egc.ao_exists(new));
    }

    /// Starts an abortable for_event ao (aborting completes it).
    fn abortable_ao(egc: &mut Egc<'_>, fe: u64) -> AoId {
        let ao = event_ao(egc, fe);
        egc.ao_abortable_register_completes(ao).unwrap();
        egc.ao_inprogress(ao);
        ao
    }

    #[test]
    fn abort_index_built_by_the_first_abort_finds_the_newest_in_progress() {
        let ctx = testutil::ctx();
        let mut egc = Egc::new(&ctx, "test");
        let a = abortable_ao(&mut egc, 9);
        let b = abortable_ao(&mut egc, 9);
        let c = abortable_ao(&mut egc, 9);
        let other = abortable_ao(&mut egc, 7);
        egc.ao_complete(c, 0); // the newest is no longer in progress
        assert!(!egc.s().aos.index_live(), "no abort yet: no index");
        assert_eq!(egc.ao_abort(AbortKey::event(9)), 0);
        assert!(egc.s().aos.index_live());
        assert!(egc.ao_exists(a) && !egc.ao_exists(b), "b was the newest in progress");
        // With the index live, a new ao is found first, then the older one.
        let d = abortable_ao(&mut egc, 9);
        assert_eq!(egc.ao_abort(AbortKey::event(9)), 0);
        assert!(egc.ao_exists(a) && !egc.ao_exists(d));
        assert_eq!(egc.ao_abort(AbortKey::event(9)), 0);
        assert!(!egc.ao_exists(a));
        assert_eq!(egc.ao_abort(AbortKey::event(9)), ERROR_NOTFOUND);
        assert!(egc.ao_exists(other));
    }

    #[test]
    fn abort_index_dropped_when_no_ao_is_in_progress_and_rebuilt() {
        let ctx = testutil::ctx();
        let mut egc = Egc::new(&ctx, "test");
        abortable_ao(&mut egc, 3);
        assert_eq!(egc.ao_abort(AbortKey::event(3)), 0);
        assert!(!egc.s().aos.index_live(), "the last ao in progress went: index dropped");
        let old = abortable_ao(&mut egc, 3);
        let new = abortable_ao(&mut egc, 3);
        assert_eq!(egc.ao_abort(AbortKey::event(3)), 0);
        assert!(egc.ao_exists(old) && !egc.ao_exists(new));
    }

    /// The index is built in slab order, which a reused slot makes differ
    /// from creation order: the newest of a shared key is still found first.
    #[test]
    fn abort_index_built_in_slab_order_finds_the_newest_first() {
        let ctx = testutil::ctx();
        let mut egc = Egc::new(&ctx, "test");
        let gone = abortable_ao(&mut egc, 4); // the lowest slot
        let old = abortable_ao(&mut egc, 6);
        egc.ao_complete(gone, 0);
        assert!(!egc.ao_exists(gone));
        let new = abortable_ao(&mut egc, 6); // reuses the lowest slot
        assert!(new.index() < old.index(), "the newer ao comes first in slab order");
        assert_eq!(egc.ao_abort(AbortKey::event(6)), 0);
        assert!(egc.ao_exists(old) && !egc.ao_exists(new));
        assert_eq!(egc.ao_abort(AbortKey::event(6)), 0);
        assert!(!egc.ao_exists(old));
    }

    #[test]
    fn abort_index_orders_by_creation_across_the_sequence_wrap() {
        let ctx = testutil::ctx();
        let mut egc = Egc::new(&ctx, "test");
        egc.st().aos.set_next_seq(u32::MAX);
        let old = abortable_ao(&mut egc, 5); // seq u32::MAX
        let new = abortable_ao(&mut egc, 5); // seq 0
        assert_eq!(egc.ao_abort(AbortKey::event(5)), 0);
        assert!(egc.ao_exists(old) && !egc.ao_exists(new));
    }

    #[test]
    fn callback_completion_runs_once_after_unlock() {
        let ctx = testutil::ctx();
        let got = std::sync::Arc::new(AtomicI32::new(1));
        {
            let mut egc = Egc::new(&ctx, "test");
            let g = got.clone();
            let ao = egc
                .ao_create(
                    AoHow::Callback {
                        cb: Box::new(move |rc| {
                            assert_eq!(g.swap(rc, Ordering::SeqCst), 1, "called once");
                        }),
                        key: AbortKey::callback(1, 2),
                    },
                    0,
                )
                .unwrap();
            egc.ao_inprogress(ao);
            egc.ao_complete(ao, -9);
            assert_eq!(got.load(Ordering::SeqCst), 1, "not while locked");
        }
        assert_eq!(got.load(Ordering::SeqCst), -9);
        let egc = Egc::new(&ctx, "test");
        assert!(egc.s().aos.is_empty(), "freed after its callback returned");
    }

    #[test]
    fn completion_waits_for_outstanding_progress_callbacks() {
        let ctx = testutil::ctx();
        let order = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
        {
            let mut egc = Egc::new(&ctx, "test");
            let o1 = order.clone();
            let ao = egc
                .ao_create(
                    AoHow::Callback { cb: Box::new(move |_| o1.lock().push("done")), key: AbortKey::callback(1, 1) },
                    0,
                )
                .unwrap();
            let o2 = order.clone();
            let how = AopHow::Callback { for_event: 5, cb: std::sync::Arc::new(move |_| o2.lock().push("progress")) };
            egc.ao_progress_report(ao, &how, Event::new(0, 0, EventKind::DomainCreateConsoleAvailable));
            egc.ao_progress_report(ao, &how, Event::new(0, 0, EventKind::DomainCreateConsoleAvailable));
            egc.ao_inprogress(ao);
            egc.ao_complete(ao, 0);
        }
        assert_eq!(*order.lock(), vec!["progress", "progress", "done"]);
    }

    #[test]
    fn nested_aos_share_their_roots_abort_state() {
        let ctx = testutil::ctx();
        let mut egc = Egc::new(&ctx, "test");
        let root = event_ao(&mut egc, 11);
        let child = egc.nested_ao_create(root);
        let grandchild = egc.nested_ao_create(child);
        egc.ao_abortable_register(grandchild, Box::new(|_, _| {})).unwrap();
        egc.ao_inprogress(root);
        assert_eq!(egc.ao_abort(AbortKey::event(11)), 0);
        assert_eq!(egc.ao_aborting(grandchild), ERROR_ABORTED);
        egc.nested_ao_free(grandchild);
        egc.nested_ao_free(child);
        egc.ao_complete(root, ERROR_ABORTED);
        assert_eq!(completion_rc(&mut egc, 11), Some(ERROR_ABORTED));
    }

    #[test]
    fn synchronous_ao_runs_the_loop_until_complete() {
        let ctx = testutil::ctx();
        let (r, w) = testutil::pipe();
        let t = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(30));
            testutil::poke(&w);
            w
        });
        let mut egc = Egc::new(&ctx, "test");
        let rc = crate::testops::fdevent::test_fdevent(&mut egc, r.as_raw_fd(), POLLIN, AoHow::Sync, false);
        assert_eq!(rc, 0);
        drop(egc);
        drop(t.join());
        let egc = Egc::new(&ctx, "test");
        assert!(egc.s().aos.is_empty() && egc.s().fds.is_empty());
        assert_eq!(egc.s().pollers.active_count(), 1, "only the application poller stays active");
    }

    #[test]
    fn timeout_fires_with_error_timedout() {
        let ctx = testutil::ctx();
        let mut egc = Egc::new(&ctx, "test");
        let ao = egc.ao_create(AoHow::Sync, 0).unwrap();
        egc.ev_time_register_rel(ao, 5, Box::new(move |e, _, rc| e.ao_complete(ao, rc))).unwrap();
        assert_eq!(egc.ao_inprogress(ao), ERROR_TIMEDOUT);
    }
}

