//! The application's osevent hooks: the verbs that call them and take the
//! application's reports (`libxl_osevent_occurred_fd/timeout`).
//!
//! Invariants:
//! * Hooks are called with the ctx lock held, as libxl documents, marked
//!   as application code (`egc::in_hook`): a hook that calls back into the
//!   library is illegal re-entry, caught as fatal misuse.
//! * Hooks may only be installed while no osevent exists: no fd and no
//!   finite timeout is registered (libxl asserts this; a timeout that
//!   waits forever is no osevent). A late call is fatal misuse.
//! * A failing `*_register` leaves nothing behind: the registration that
//!   needed it is undone and the hook's value is returned to the operation.
//! * Stale, duplicated or forged `for_libxl` values fail the tag or
//!   generation check and are ignored, logged at DEBUG.
#![forbid(unsafe_code)]

use std::sync::Arc;

use super::{in_hook, Egc};
use crate::rc::{Rc, ERROR_INVAL};
use crate::reg::hooks::{fd_for_libxl, timeout_for_libxl, token_from_for_libxl, OseventHooks};
use crate::reg::{EvFd, EvTime};
use crate::sys::clock;
use crate::token::Token;

impl Egc<'_> {
    fn hooks(&self) -> Option<Arc<dyn OseventHooks>> {
        self.s().hooks.hooks()
    }

    /// `libxl_osevent_register_hooks`.
    pub fn register_osevent_hooks(&mut self, hooks: Option<Arc<dyn OseventHooks>>) {
        if !self.s().fds.is_empty() || self.s().times.has_finite() {
            self.ctx.fatal(
                "libxl_osevent_register_hooks called while fds or timeouts are already registered \
                 (hooks must be installed before any osevent exists)",
            );
        }
        crate::xl_log!(self.ctx, Debug, "osevent hooks {}", if hooks.is_some() { "registered" } else { "cleared" });
        self.st().hooks.set_hooks(hooks);
    }

    /// Records the application's value for a live fd registration.
    fn set_fd_for_app(&mut self, ev: EvFd, for_app: usize) {
        if self.s().fds.contains(ev) {
            self.st().hooks.set_fd_for_app(ev, for_app);
        }
    }

    pub(crate) fn hook_fd_register(&mut self, ev: EvFd, fd: i32, events: i16) -> Result<(), Rc> {
        let Some(h) = self.hooks() else { return Ok(()) };
        let for_app = in_hook(self.ctx, || h.fd_register(fd, events, fd_for_libxl(ev)))?;
        self.set_fd_for_app(ev, for_app);
        Ok(())
    }

    pub(crate) fn hook_fd_modify(&mut self, ev: EvFd, fd: i32, events: i16) -> Result<(), Rc> {
        let Some(h) = self.hooks() else { return Ok(()) };
        let mut for_app = self.s().hooks.fd_for_app(ev);
        let r = in_hook(self.ctx, || h.fd_modify(fd, &mut for_app, events));
        // A failed modify may still have updated the registration value.
        self.set_fd_for_app(ev, for_app);
        r
    }

    pub(crate) fn hook_fd_deregister(&mut self, ev: EvFd, fd: i32) {
        let for_app = self.st().hooks.take_fd_for_app(ev);
        if let Some(h) = self.hooks() {
            in_hook(self.ctx, || h.fd_deregister(fd, for_app));
        }
    }

    /// Mirrors a finite timeout; returns its nexus (None without hooks).
    pub(crate) fn hook_timeout_register(&mut self, ev: EvTime, deadline: u64) -> Result<Option<Token>, Rc> {
        let Some(h) = self.hooks() else { return Ok(None) };
        let nexus = self.st().hooks.nexus_insert(ev);
        match in_hook(self.ctx, || h.timeout_register(clock::mono_to_wall(deadline), timeout_for_libxl(nexus))) {
            Ok(for_app) => {
                self.st().hooks.nexus_mut(nexus).expect("just inserted").for_app = for_app;
                Ok(Some(nexus))
            }
            Err(rc) => {
                self.st().hooks.nexus_remove(nexus);
                Err(rc)
            }
        }
    }

    /// The timeout behind `nexus` is gone. If the application has not
    /// reported it yet, ask it to fire at once; the nexus stays until it does.
    pub(crate) fn hook_timeout_release_ev(&mut self, nexus: Token, fired_by_app: bool) {
        if fired_by_app {
            self.st().hooks.nexus_remove(nexus);
            return;
        }
        let Some(n) = self.st().hooks.nexus_mut(nexus) else { return };
        n.ev = None;
        let mut for_app = n.for_app;
        if let Some(h) = self.hooks() {
            if let Err(rc) = in_hook(self.ctx, || h.timeout_modify_now(&mut for_app)) {
                crate::xl_log!(self.ctx, Error, "timeout nexus {nexus}: application's timeout_modify hook failed (rc={rc})");
            }
        }
        if let Some(n) = self.st().hooks.nexus_mut(nexus) {
            n.for_app = for_app;
        }
    }

    /// Turns an application's `for_libxl` back into a token of the kind
    /// asked for. Any value while no hooks are registered (we issued none)
    /// is the caller's bug: logged at ERROR naming `for_libxl`, ignored. A
    /// value we can never have issued (NULL, generation 0, the other
    /// kind's tag) is recognised and ignored at DEBUG, like a well-formed
    /// stale token (a normal race, handled by the caller).
    fn occurred_token(&self, entry: &str, for_libxl: usize, timeout: bool) -> Result<Token, Rc> {
        if !self.s().hooks.has_hooks() {
            crate::xl_log!(self.ctx, Error,
                "{entry}: invalid argument for_libxl ({for_libxl:#x}): no osevent hooks are registered, \
                 so libxl gave out no for_libxl values; ignored");
            return Err(ERROR_INVAL);
        }
        token_from_for_libxl(for_libxl, timeout).ok_or_else(|| {
            let kind = if timeout { "timeout_register" } else { "fd_register" };
            crate::xl_log!(self.ctx, Debug,
                "{entry}: for_libxl {for_libxl:#x} is not a value libxl gave to {kind} (forged or mistaken); ignored");
            ERROR_INVAL
        })
    }

    /// `libxl_osevent_occurred_fd`.
    pub fn osevent_occurred_fd(&mut self, for_libxl: usize, fd: i32, revents: i16) -> Result<(), Rc> {
        let ev = self.occurred_token("libxl_osevent_occurred_fd", for_libxl, false)?;
        self.fd_occurs(ev, fd, revents);
        Ok(())
    }

    /// `libxl_osevent_occurred_timeout`.
    pub fn osevent_occurred_timeout(&mut self, for_libxl: usize) -> Result<(), Rc> {
        let nexus = self.occurred_token("libxl_osevent_occurred_timeout", for_libxl, true)?;
        let Some(n) = self.s().hooks.nexus(nexus) else {
            crate::xl_log!(self.ctx, Debug, "occurred_timeout: nexus {nexus} is stale, ignored");
            return Ok(());
        };
        match n.ev {
            Some(ev) => {
                self.ev_time_fire(ev, crate::rc::ERROR_TIMEDOUT, true);
                self.st().hooks.nexus_remove(nexus);
            }
            None => {
                crate::xl_log!(self.ctx, Debug, "occurred_timeout: nexus {nexus} released (its timeout was deregistered)");
                self.st().hooks.nexus_remove(nexus);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

    use parking_lot::Mutex;

    use super::*;
    use crate::reg::hooks::TIMEOUT_TAG;
    use crate::sys::clock::Timeval;
    use crate::reg::ao::AoHow;
    use crate::rc::{ERROR_OSEVENT_REG_FAIL, ERROR_TIMEDOUT};
    use crate::sys::POLLIN;
    use crate::testutil;

    /// Records every hook call; can be told to fail registrations.
    #[derive(Default)]
    struct Recorder {
        calls: Mutex<Vec<String>>,
        fail_register: Mutex<Option<Rc>>,
        last_timeout_token: Mutex<usize>,
        last_fd_token: Mutex<usize>,
    }

    impl OseventHooks for Recorder {
        fn fd_register(&self, fd: i32, events: i16, for_libxl: usize) -> Result<usize, Rc> {
            if let Some(rc) = *self.fail_register.lock() {
                return Err(rc);
            }
            *self.last_fd_token.lock() = for_libxl;
            self.calls.lock().push(format!("fd_register {fd} {events}"));
            Ok(1000 + fd as usize)
        }
        fn fd_modify(&self, fd: i32, for_app: &mut usize, events: i16) -> Result<(), Rc> {
            self.calls.lock().push(format!("fd_modify {fd} {events} {for_app}"));
            Ok(())
        }
        fn fd_deregister(&self, fd: i32, for_app: usize) {
            self.calls.lock().push(format!("fd_deregister {fd} {for_app}"));
        }
        fn timeout_register(&self, _abs: Timeval, for_libxl: usize) -> Result<usize, Rc> {
            if let Some(rc) = *self.fail_register.lock() {
                return Err(rc);
            }
            *self.last_timeout_token.lock() = for_libxl;
            self.calls.lock().push("timeout_register".into());
            Ok(77)
        }
        fn timeout_modify_now(&self, for_app: &mut usize) -> Result<(), Rc> {
            self.calls.lock().push(format!("timeout_modify_now {for_app}"));
            Ok(())
        }
    }

    fn setup(ctx: &crate::egc::Ctx) -> Arc<Recorder> {
        let rec = Arc::new(Recorder::default());
        Egc::new(ctx, "test").register_osevent_hooks(Some(rec.clone()));
        rec
    }

    #[test]
    fn fd_registration_is_mirrored_with_the_apps_value() {
        let ctx = testutil::ctx();
        let rec = setup(&ctx);
        let (r, _w) = testutil::pipe();
        let fd = r.as_raw_fd();
        let mut egc = Egc::new(&ctx, "test");
        let ev = egc.ev_fd_register(None, fd, POLLIN, Box::new(|_, _, _, _, _| {})).unwrap();
        assert_eq!(*rec.last_fd_token.lock(), ev.to_usize(), "for_libxl is the registration's token");
        egc.ev_fd_modify(ev, POLLIN | crate::sys::POLLOUT).unwrap();
        egc.ev_fd_deregister(ev);
        let calls = rec.calls.lock().clone();
        let want = [format!("fd_register {fd} 1"), format!("fd_modify {fd} 5 {}", 1000 + fd), format!("fd_deregister {fd} {}", 1000 + fd)];
        assert_eq!(calls, want);
    }

    #[test]
    fn hook_failure_fails_the_registration_and_leaves_nothing_behind() {
        let ctx = testutil::ctx();
        let rec = setup(&ctx);
        *rec.fail_register.lock() = Some(ERROR_OSEVENT_REG_FAIL);
        let (r, _w) = testutil::pipe();
        let mut egc = Egc::new(&ctx, "test");
        let rc = crate::testops::fdevent::test_fdevent(&mut egc, r.as_raw_fd(), POLLIN, AoHow::ForEvent(1), false);
        assert_eq!(rc, ERROR_OSEVENT_REG_FAIL);
        assert!(egc.s().fds.is_empty() && egc.s().aos.is_empty() && egc.s().times.is_empty());
        *rec.fail_register.lock() = Some(42); // "any positive int" passes through too
        let ao = egc.ao_create(AoHow::ForEvent(2), 0).unwrap();
        assert_eq!(egc.ev_time_register_rel(ao, 1000, Box::new(|_, _, _| {})).err(), Some(42));
        assert!(egc.s().times.is_empty() && (egc.s().hooks.nexus_count() == 0));
    }

    #[test]
    fn deregistered_timeout_is_fired_now_and_its_nexus_kept_until_reported() {
        let ctx = testutil::ctx();
        let rec = setup(&ctx);
        let mut egc = Egc::new(&ctx, "test");
        let ao = egc.ao_create(AoHow::ForEvent(1), 0).unwrap();
        let ev = egc.ev_time_register_rel(ao, 60_000, Box::new(|_, _, _| panic!("must not fire"))).unwrap();
        let nexus = *rec.last_timeout_token.lock();
        egc.ev_time_deregister(ev);
        assert_eq!(rec.calls.lock().last().unwrap(), "timeout_modify_now 77");
        assert_eq!(egc.s().hooks.nexus_count(), 1, "kept until the application reports it");
        egc.osevent_occurred_timeout(nexus).unwrap();
        assert!((egc.s().hooks.nexus_count() == 0));
        egc.osevent_occurred_timeout(nexus).unwrap(); // duplicate: ignored
    }

    #[test]
    fn stale_occurred_timeout_is_ignored_after_its_slot_is_reused() {
        let ctx = testutil::ctx();
        let rec = setup(&ctx);
        let mut egc = Egc::new(&ctx, "test");
        let ao = egc.ao_create(AoHow::ForEvent(1), 0).unwrap();
        let fired = Arc::new(Mutex::new(0));
        let f = fired.clone();
        egc.ev_time_register_rel(ao, 60_000, Box::new(move |_, _, rc| {
            assert_eq!(rc, ERROR_TIMEDOUT);
            *f.lock() += 1;
        }))
        .unwrap();
        let first = *rec.last_timeout_token.lock();
        egc.osevent_occurred_timeout(first).unwrap();
        assert_eq!(*fired.lock(), 1);
        let f = fired.clone();
        egc.ev_time_register_rel(ao, 60_000, Box::new(move |_, _, _| *f.lock() += 100)).unwrap();
        let second = *rec.last_timeout_token.lock();
        let index = |v| token_from_for_libxl(v, true).unwrap().index();
        assert_eq!(index(first), index(second), "same slot, new generation");
        egc.osevent_occurred_timeout(first).unwrap(); // stale: same slot, old generation
        assert_eq!(*fired.lock(), 1);
    }

    /// Xen's rule is "no fd and no finite timeout yet": an operation
    /// waiting forever (until aborted) does not stop hooks being installed.
    #[test]
    fn hooks_may_be_installed_while_only_infinite_timeouts_exist() {
        let ctx = testutil::ctx();
        let ao = {
            let mut egc = Egc::new(&ctx, "test");
            let ao = egc.ao_create(AoHow::ForEvent(1), 0).unwrap();
            egc.ev_time_register_rel(ao, -1, Box::new(|_, _, _| {})).unwrap();
            ao
        };
        let rec = setup(&ctx); // would abort if the infinite timeout counted
        let mut egc = Egc::new(&ctx, "test");
        egc.ev_time_register_rel(ao, 60_000, Box::new(|_, _, _| {})).unwrap();
        assert_eq!(*rec.calls.lock(), vec!["timeout_register".to_string()]);
    }

    #[test]
    fn forged_for_libxl_values_are_ignored() {
        let ctx = testutil::ctx();
        setup(&ctx);
        let mut egc = Egc::new(&ctx, "test");
        assert_eq!(egc.osevent_occurred_fd(0, 3, POLLIN), Err(ERROR_INVAL));
        assert_eq!(egc.osevent_occurred_timeout(0), Err(ERROR_INVAL));
        assert_eq!(egc.osevent_occurred_fd(0xdead_beef_0000_0001, 3, POLLIN), Ok(()));
        assert_eq!(egc.osevent_occurred_timeout(12345 << 32), Err(ERROR_INVAL), "untagged: not a timeout token");
        assert_eq!(egc.osevent_occurred_timeout((12345 << 32) | TIMEOUT_TAG), Ok(()), "stale nexus");
    }

    /// An fd registration and a timeout nexus in the same slot of their
    /// own slabs (index 0, generation 1): each one's `for_libxl` given to
    /// the other kind's `occurred_*` must be recognised and ignored.
    #[test]
    fn fd_and_timeout_for_libxl_values_are_never_confused() {
        let ctx = testutil::ctx();
        let rec = setup(&ctx);
        let (r, w) = testutil::pipe();
        testutil::poke(&w);
        let fd = r.as_raw_fd();
        let fd_calls = Arc::new(Mutex::new(0));
        let timeouts = Arc::new(Mutex::new(0));
        let mut egc = Egc::new(&ctx, "test");
        let f = fd_calls.clone();
        egc.ev_fd_register(None, fd, POLLIN, Box::new(move |_, _, _, _, _| *f.lock() += 1)).unwrap();
        let ao = egc.ao_create(AoHow::ForEvent(1), 0).unwrap();
        let t = timeouts.clone();
        egc.ev_time_register_rel(ao, 60_000, Box::new(move |_, _, _| *t.lock() += 1)).unwrap();
        let (fd_tok, nexus) = (*rec.last_fd_token.lock(), *rec.last_timeout_token.lock());
        assert_eq!(fd_tok & !TIMEOUT_TAG, nexus & !TIMEOUT_TAG, "same slot and generation in each slab");
        assert_eq!(egc.osevent_occurred_timeout(fd_tok), Err(ERROR_INVAL));
        assert_eq!(egc.osevent_occurred_fd(nexus, fd, POLLIN), Err(ERROR_INVAL));
        assert_eq!((*fd_calls.lock(), *timeouts.lock()), (0, 0));
        egc.osevent_occurred_fd(fd_tok, fd, POLLIN).unwrap();
        egc.osevent_occurred_timeout(nexus).unwrap();
        assert_eq!((*fd_calls.lock(), *timeouts.lock()), (1, 1), "the right kinds are accepted");
    }

    #[test]
    fn occurred_reports_without_hooks_are_refused_even_if_they_look_like_live_tokens() {
        let ctx = testutil::ctx();
        let (r, w) = testutil::pipe();
        testutil::poke(&w);
        let n = Arc::new(Mutex::new(0));
        let mut egc = Egc::new(&ctx, "test");
        let n2 = n.clone();
        let ev = egc.ev_fd_register(None, r.as_raw_fd(), POLLIN, Box::new(move |_, _, _, _, _| *n2.lock() += 1)).unwrap();
        assert_eq!(egc.osevent_occurred_fd(ev.to_usize(), r.as_raw_fd(), POLLIN), Err(ERROR_INVAL));
        assert_eq!(*n.lock(), 0, "no hooks: libxl gave the application no token, so none is honoured");
    }
}
