//! Child processes (libxl's `libxl__ev_child`) and who owns SIGCHLD.
//!
//! An operation starts a child with [`Egc::ev_child_fork`]: the child runs
//! a [`ChildAction`] (normally an exec), and when it has been reaped the
//! operation's callback gets its wait status (lock held, like any source
//! callback). The child belongs to an ao: if the ao completes (or is
//! aborted, or fails setup) first, the child is killed with SIGKILL and the
//! ao's completion is held back until it has been reaped
//! ([`Egc::ev_child_kill_deregister`]; libxl's "outstanding killed child"),
//! so no operation leaves a zombie or a stray process behind.
//!
//! **Who reaps** depends on the ctx's `libxl_sigchld_owner` mode
//! (`libxl_childproc_setmode`):
//! * `Libxl` (default): SIGCHLD is ours while this ctx has children; we
//!   reap with `waitpid(-1)` while we have children, and hand pids we did
//!   not start to the application's `reaped_callback` (or log them).
//! * `LibxlAlways`: the same, permanently.
//! * `LibxlAlwaysSelectiveReap`: SIGCHLD is ours permanently but we only
//!   `waitpid(pid)` our own children; the application's are left alone.
//! * `Mainloop`: the application owns SIGCHLD and tells us
//!   (`libxl_childproc_reaped` with a pid it reaped, or
//!   `libxl_childproc_sigchld_occurred`, which makes us `waitpid(pid)` our
//!   own); we never touch the disposition.
//!
//! When SIGCHLD is ours, the ctx has a non-blocking close-on-exec self-pipe
//! registered with the process-wide handler (`sys::sigchld`); its read end
//! is an ordinary fd registration whose callback drains the pipe, then
//! reaps. The handler is installed before forking (so an early exit is not
//! missed) and, in `Libxl` mode, given up after the last child is reaped.
//!
//! **Several ctxs.** A `waitpid(-1)` in one ctx may reap another ctx's
//! child. A process-wide *directory* (pid → ctx, under the no-forking lock)
//! lets the reaper post such a status to the owner's mailbox and poke its
//! self-pipe instead of calling it foreign. A reaper holds the directory
//! across `waitpid(-1)` and the post, and a new child is entered in the
//! directory before it is let go (`sys::process` start handshake), so a
//! status is never lost between the two. (Xen's libxl requires at most one
//! such ctx to have children; here any number may.)
//!
//! Invariants:
//! * A child is in `children` (and the directory) from fork until reaped;
//!   its callback runs exactly once, after it has been reaped, never for a
//!   child that was killed-and-deregistered.
//! * We never `waitpid(-1)` in `LibxlAlwaysSelectiveReap` or `Mainloop`.
//! * The application's `reaped_callback` runs with the lock released; its
//!   `fork_replacement` runs with it held (libxl's rules).
//! * `libxl_childproc_setmode` only while the ctx has no children (libxl
//!   asserts; here fatal misuse, reported and aborted).
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;

use super::{in_hook, Egc};
use crate::rc::{Rc, ERROR_FAIL, ERROR_INVAL, ERROR_UNKNOWN_CHILD};
use crate::reg::ao::Owned;
use crate::reg::child::{ChildprocHooks, ChldOwner, Waiter};
use crate::reg::{AoId, EvChild, EvFd};
use crate::sys::atfork::{self, ForkSafe};
use crate::sys::process::{self, ChildAction, Forked, Wait};
use crate::sys::sigchld::{self, AddError};
use crate::sys::wakeup::{self, Wakeup};
use crate::sys::POLLIN;

/// The ctx's SIGCHLD arrangement: its mode, the application's hooks, the
/// self-pipe the handler writes and its fd registration, the handler slot.
#[derive(Default)]
pub struct SigchldState {
    owner: ChldOwner,
    hooks: Option<Arc<dyn ChildprocHooks>>,
    /// The self-pipe's registration with the handler, while SIGCHLD is ours.
    slot: Option<sigchld::Slot>,
    /// The ctx id this state is known by in the directory, once it is.
    dir_id: Option<usize>,
    /// Made the first time SIGCHLD is needed; kept until `ctx_free`. Never
    /// closed while the handler or the directory may still write to it
    /// (see `Drop`).
    selfpipe: Option<Wakeup>,
    /// The self-pipe's fd registration, while SIGCHLD is ours.
    selfpipe_ev: Option<EvFd>,
}

impl Drop for SigchldState {
    /// However the state goes (`libxl_ctx_free`, or a ctx simply dropped),
    /// first make sure no-one can write to the self-pipe any more: leave
    /// the handler's registry (which waits out running handlers) and the
    /// directory (whose posts poke the pipe); only then does the pipe close.
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            sigchld::remove_user(slot);
        }
        if let Some(id) = self.dir_id {
            directory(|d| {
                d.mail.remove(&id);
                d.owner.retain(|_, owner| *owner != id);
            });
        }
    }
}

/// Which side of [`Egc::ev_child_fork_returning`] this is.
pub enum ChildForked {
    /// The parent: the child's registration and pid.
    Parent(EvChild, i32),
    /// The child. The ctx here is a copy of the parent's; the caller's
    /// code decides what to do with it (libxl's leaves it locked).
    Child,
}

/// `(egc, ch, pid, wait status)`, once, after the child was reaped.
pub type ChildCallback = Box<dyn FnOnce(&mut Egc<'_>, EvChild, i32, i32) + Send>;

/// The process-wide directory (module doc): which ctx started which pid,
/// and statuses reaped on a ctx's behalf by another.
struct Directory {
    owner: BTreeMap<i32, usize>,
    mail: BTreeMap<usize, Mailbox>,
}

struct Mailbox {
    /// The owner's self-pipe write end (-1: none; it checks when called).
    wake_fd: i32,
    reaped: Vec<(i32, i32)>,
}

impl Default for Mailbox {
    fn default() -> Mailbox {
        Mailbox { wake_fd: -1, reaped: Vec::new() }
    }
}

impl Directory {
    /// Hands a status reaped on `owner`'s behalf to it, and pokes it.
    fn post(&mut self, owner: usize, pid: i32, status: i32) {
        let m = self.mail.entry(owner).or_default();
        m.reaped.push((pid, status));
        if m.wake_fd >= 0 {
            // The fd stays open while its mailbox exists (the owner removes
            // the mailbox, under this lock, before closing its pipe). A full
            // pipe is already a wake.
            let _ = wakeup::write_byte(m.wake_fd);
        }
    }
}

static DIRECTORY: ForkSafe<Directory> = ForkSafe::new(Directory { owner: BTreeMap::new(), mail: BTreeMap::new() });

fn directory<R>(f: impl FnOnce(&mut Directory) -> R) -> R {
    let g = atfork::lock();
    let mut d = DIRECTORY.with(&g);
    f(&mut d)
}

/// What one `waitpid(-1)` turned up.
enum Reaped {
    Ours(i32, i32),
    Foreign(i32, i32),
}

/// `libxl_postfork_child_noexec`, in a child of a process using libxl:
/// every ctx there is the parent's and dead, so forget their children and
/// mailboxes and give SIGCHLD back. Takes no ctx lock (its holder may not
/// exist in this process).
pub fn postfork_child_noexec() {
    directory(|d| {
        d.owner.clear();
        d.mail.clear();
    });
    sigchld::postfork_reset();
}

/// The self-pipe's fd callback.
fn sigchld_selfpipe_fd(egc: &mut Egc<'_>, _ev: EvFd, _fd: i32, _events: i16, revents: i16, _data: u64) {
    egc.sigchld_selfpipe_ready(revents);
}

impl Egc<'_> {
    /// SIGCHLD is (or, when `creating` a child, must be) ours.
    fn sigchld_ours(&self, creating: bool) -> bool {
        let st = self.s();
        match st.sigchld.owner {
            ChldOwner::Libxl => creating || !st.children.is_empty(),
            ChldOwner::Mainloop => false,
            ChldOwner::LibxlAlways | ChldOwner::LibxlAlwaysSelectiveReap => true,
        }
    }


    /// `libxl_childproc_setmode`.
    pub fn childproc_setmode(&mut self, owner: ChldOwner, hooks: Option<Arc<dyn ChildprocHooks>>) {
        let n = self.s().children.len();
        if n > 0 {
            self.ctx.fatal(&format!(
                "libxl_childproc_setmode called while the ctx has {n} child process(es); \
                 the mode may only be set before libxl has any children"
            ));
        }
        crate::xl_log!(self.ctx, Debug, "childproc: mode {owner:?}");
        let st = self.st();
        st.sigchld.owner = owner;
        st.sigchld.hooks = hooks;
        self.perhaps_sigchld_notneeded();
        if let Err(rc) = self.perhaps_sigchld_needed(false) {
            crate::xl_log!(self.ctx, Error, "childproc: cannot take SIGCHLD for mode {owner:?} (rc={rc}); will retry at the next fork");
        }
    }

    fn perhaps_sigchld_needed(&mut self, creating: bool) -> Result<(), Rc> {
        if self.sigchld_ours(creating) {
            self.sigchld_needed()?;
        }
        Ok(())
    }

    fn perhaps_sigchld_notneeded(&mut self) {
        if !self.sigchld_ours(false) {
            self.sigchld_notneeded();
        }
    }

    /// Makes SIGCHLD ours: self-pipe, its fd registration, the handler.
    /// Idempotent.
    pub fn sigchld_needed(&mut self) -> Result<(), Rc> {
        if self.s().sigchld.selfpipe.is_none() {
            let pipe = Wakeup::new().map_err(|e| {
                crate::xl_log_errno!(self.ctx, Error, e.raw_os_error().unwrap_or(0), "cannot create the SIGCHLD self-pipe");
                ERROR_FAIL
            })?;
            let (id, wake_fd) = (self.ctx.id, pipe.write_fd());
            directory(|d| d.mail.entry(id).or_default().wake_fd = wake_fd);
            let st = self.st();
            st.sigchld.dir_id = Some(id);
            st.sigchld.selfpipe = Some(pipe);
        }
        let (read_fd, write_fd) = {
            let p = self.s().sigchld.selfpipe.as_ref().expect("made above");
            (p.read_fd(), p.write_fd())
        };
        if self.s().sigchld.selfpipe_ev.is_none() {
            let ev = self.ev_fd_register_fn(None, read_fd, POLLIN, sigchld_selfpipe_fd, 0)?;
            self.st().sigchld.selfpipe_ev = Some(ev);
        }
        if self.s().sigchld.slot.is_none() {
            match sigchld::add_user(write_fd) {
                Ok(slot) => self.st().sigchld.slot = Some(slot),
                Err(AddError::ForeignHandler) => self.ctx.fatal(&format!(
                    "libxl needs SIGCHLD (childproc mode {:?}) but the application has its own SIGCHLD handler; \
                     an application that handles SIGCHLD must call libxl_childproc_setmode with \
                     libxl_sigchld_owner_mainloop",
                    self.s().sigchld.owner
                )),
                Err(AddError::Full) => {
                    crate::xl_log!(self.ctx, Error, "cannot take SIGCHLD: {} ctxs already want it", sigchld::MAX_USERS);
                    return Err(ERROR_FAIL);
                }
                Err(AddError::Os(e)) => {
                    crate::xl_log_errno!(self.ctx, Error, e.raw_os_error().unwrap_or(0), "cannot install the SIGCHLD handler");
                    return Err(ERROR_FAIL);
                }
            }
            crate::xl_log!(self.ctx, Debug, "childproc: SIGCHLD is ours");
        }
        Ok(())
    }

    /// Gives SIGCHLD up (the self-pipe itself is kept). Idempotent.
    pub fn sigchld_notneeded(&mut self) {
        if let Some(slot) = self.st().sigchld.slot.take() {
            sigchld::remove_user(slot);
            crate::xl_log!(self.ctx, Debug, "childproc: SIGCHLD no longer ours");
        }
        if let Some(ev) = self.st().sigchld.selfpipe_ev.take() {
            self.ev_fd_deregister(ev);
        }
    }

    /// Starts a child owned by `ao` that runs `action`; `cb` gets its wait
    /// status once it has been reaped. With the application's
    /// `fork_replacement`, that is called (lock held) instead of `fork`.
    pub fn ev_child_fork(&mut self, ao: AoId, action: ChildAction, cb: ChildCallback) -> Result<EvChild, Rc> {
        match self.child_fork(Some(ao), Some(action), cb)? {
            ChildForked::Parent(ch, _) => Ok(ch),
            ChildForked::Child => unreachable!("a child with an action never returns"),
        }
    }

    /// libxl's own `libxl__ev_child_fork`: like [`Egc::ev_child_fork`], but
    /// the child returns ([`ChildForked::Child`]; the caller's code runs in
    /// it), and no ao owns the child: the caller kills or waits for it.
    pub fn ev_child_fork_returning(&mut self, cb: ChildCallback) -> Result<ChildForked, Rc> {
        self.child_fork(None, None, cb)
    }

    fn child_fork(&mut self, owner: Option<AoId>, action: Option<ChildAction>, cb: ChildCallback) -> Result<ChildForked, Rc> {
        if let Err(rc) = self.perhaps_sigchld_needed(true) {
            self.perhaps_sigchld_notneeded();
            return Err(rc);
        }
        let hooks = self.s().sigchld.hooks.clone().filter(|h| h.has_fork_replacement());
        let ctx = self.ctx;
        let replacement = hooks.as_ref().map(|h| move || in_hook(ctx, || h.fork_replacement()));
        let replacement = replacement.as_ref().map(|f| f as &dyn Fn() -> io::Result<i32>);
        let spawned = match action {
            Some(action) => process::spawn(replacement, action),
            None => match process::fork_held(replacement) {
                Ok(Forked::Parent(s)) => Ok(s),
                Ok(Forked::Child) => return Ok(ChildForked::Child),
                Err(e) => Err(e),
            },
        };
        let spawned = match spawned {
            Ok(s) => s,
            Err(e) => {
                crate::xl_log_errno!(self.ctx, Error, e.raw_os_error().unwrap_or(0), "fork failed");
                self.perhaps_sigchld_notneeded();
                return Err(ERROR_FAIL);
            }
        };
        let (pid, id) = (spawned.pid, self.ctx.id);
        let st = self.st();
        let ch = st.children.insert(pid, Waiter::Op(cb));
        st.sigchld.dir_id = Some(id);
        directory(|d| d.owner.insert(pid, id));
        spawned.release();
        if let Some(ao) = owner {
            self.ao_own(ao, Owned::Child(ch));
        }
        crate::xl_log!(self.ctx, Debug, "ev_child={ch} fork: pid {pid}{}", match owner {
            Some(ao) => format!(", ao {ao}"),
            None => String::new(),
        });
        Ok(ChildForked::Parent(ch, pid))
    }

    /// The child's pid, while it has not been reaped or deregistered.
    pub fn ev_child_pid(&self, ch: EvChild) -> Option<i32> {
        self.s().children.get(ch).filter(|c| matches!(c.waiter, Waiter::Op(_))).map(|c| c.pid)
    }

    pub fn ev_child_inuse(&self, ch: EvChild) -> bool {
        self.ev_child_pid(ch).is_some()
    }

    /// Sends `sig` to the child and forgets its callback; the child stays
    /// on our books until reaped, and `ao`'s (root's) completion waits for
    /// that. Idempotent (a child already reaped or deregistered is left).
    pub fn ev_child_kill_deregister(&mut self, ao: AoId, ch: EvChild, sig: i32) {
        let Some(pid) = self.ev_child_pid(ch) else { return };
        let root = self.ao_killed_child_add(ao);
        let st = self.st();
        st.children.remove(ch);
        st.children.insert(pid, Waiter::Killed(root));
        crate::xl_log!(self.ctx, Debug, "ev_child={ch} pid {pid}: killed with signal {sig}, deregistered (ao {ao} waits for the reaping)");
        if let Err(e) = process::kill(pid, sig) {
            crate::xl_log_errno!(self.ctx, Error, e.raw_os_error().unwrap_or(0), "failed to kill child [{pid}] with signal {sig}");
        }
    }

    /// One of our children has been reaped: forget it, then run what
    /// waited for it.
    fn child_reaped_ours(&mut self, ch: EvChild, status: i32) {
        let st = self.st();
        let Some(child) = st.children.remove(ch) else { return };
        let pid = child.pid;
        match child.waiter {
            Waiter::Op(cb) => {
                crate::xl_log!(self.ctx, Debug, "ev_child={ch} pid {pid} {}", process::describe_status(status));
                cb(self, ch, pid, status);
            }
            Waiter::Killed(root) => {
                crate::xl_log!(self.ctx, Debug, "killed child [{pid}] (dying as expected) {}", process::describe_status(status));
                if let Some(ao) = root {
                    self.ao_killed_child_reaped(ao);
                }
            }
        }
    }

    /// `pid` was reaped by the application (`Mainloop`) or by us: 0 if it
    /// was ours, else `ERROR_UNKNOWN_CHILD`.
    fn child_reaped_pid(&mut self, pid: i32, status: i32) -> Rc {
        let Some(ch) = self.s().children.by_pid(pid) else { return ERROR_UNKNOWN_CHILD };
        directory(|d| d.owner.remove(&pid));
        self.child_reaped_ours(ch, status);
        self.perhaps_sigchld_notneeded();
        0
    }

    fn require_mainloop(&self, entry: &str) -> bool {
        let owner = self.s().sigchld.owner;
        if owner != ChldOwner::Mainloop {
            crate::xl_log!(self.ctx, Error,
                "{entry}: refused: only for libxl_sigchld_owner_mainloop (this ctx's mode is {owner:?}, \
                 in which libxl reaps its own children)");
        }
        owner == ChldOwner::Mainloop
    }

    /// `libxl_childproc_reaped`.
    pub fn childproc_reaped(&mut self, pid: i32, status: i32) -> Rc {
        if !self.require_mainloop("libxl_childproc_reaped") {
            return ERROR_INVAL;
        }
        let rc = self.child_reaped_pid(pid, status);
        if rc != 0 {
            crate::xl_log!(self.ctx, Debug, "libxl_childproc_reaped: pid {pid} is not a child of this ctx");
        }
        rc
    }

    /// `libxl_childproc_sigchld_occurred`.
    pub fn childproc_sigchld_occurred(&mut self) {
        if self.require_mainloop("libxl_childproc_sigchld_occurred") {
            self.childproc_checkall();
        }
    }

    /// The self-pipe is readable: drain it, then reap as the mode says.
    fn sigchld_selfpipe_ready(&mut self, revents: i16) {
        if revents & !POLLIN != 0 {
            crate::xl_log!(self.ctx, Error, "unexpected poll event {revents:#x} on the SIGCHLD self-pipe");
            self.disaster("unexpected poll event on the SIGCHLD self-pipe", 0);
        }
        if let Some(Err(e)) = self.s().sigchld.selfpipe.as_ref().map(Wakeup::drain) {
            self.disaster("cannot read the SIGCHLD self-pipe", e.raw_os_error().unwrap_or(0));
        }
        match self.s().sigchld.owner {
            ChldOwner::LibxlAlwaysSelectiveReap | ChldOwner::Mainloop => self.childproc_checkall(),
            ChldOwner::Libxl | ChldOwner::LibxlAlways => self.childproc_reap_all(),
        }
    }

    /// Delivers statuses other ctxs reaped for us.
    fn deliver_mail(&mut self) {
        let id = self.ctx.id;
        let mail = directory(|d| d.mail.get_mut(&id).map(|m| std::mem::take(&mut m.reaped)).unwrap_or_default());
        for (pid, status) in mail {
            if let Some(ch) = self.s().children.by_pid(pid) {
                crate::xl_log!(self.ctx, Debug, "child [{pid}] was reaped for us by another ctx");
                self.child_reaped_ours(ch, status);
            }
        }
    }

    /// Selective reaping: `waitpid(pid)` for each of our children, until a
    /// pass finds none that has exited (a callback may start new ones).
    fn childproc_checkall(&mut self) {
        self.deliver_mail();
        loop {
            let id = self.ctx.id;
            let mine: Vec<(EvChild, i32)> = self.s().children.pids();
            let mut reaped = Vec::new();
            for (ch, pid) in mine {
                match process::waitpid_nohang(pid) {
                    Ok(Wait::Reaped(_, status)) => {
                        directory(|d| d.owner.remove(&pid));
                        reaped.push((ch, status));
                    }
                    Ok(Wait::Running) => {}
                    Ok(Wait::NoChild) => {
                        // Another ctx's waitpid(-1) got it (and posted the
                        // status under the directory lock before we could
                        // take it), or someone broke the rules.
                        let posted = directory(|d| {
                            d.owner.remove(&pid);
                            let m = d.mail.get_mut(&id)?;
                            let i = m.reaped.iter().position(|&(p, _)| p == pid)?;
                            Some(m.reaped.swap_remove(i).1)
                        });
                        let status = posted.unwrap_or_else(|| {
                            self.disaster(&format!("waitpid() gave ECHILD for child [{pid}], which libxl started and had not reaped"), libc::ECHILD);
                            process::exit_status(255)
                        });
                        reaped.push((ch, status));
                    }
                    Err(e) => {
                        self.disaster("waitpid() failed", e.raw_os_error().unwrap_or(0));
                        return;
                    }
                }
            }
            if reaped.is_empty() {
                break;
            }
            for (ch, status) in reaped {
                self.child_reaped_ours(ch, status);
            }
        }
        self.perhaps_sigchld_notneeded();
    }

    /// Reaping everything (`Libxl`, `LibxlAlways`): `waitpid(-1)` while
    /// SIGCHLD is ours; other ctxs' children go to their mailboxes, the
    /// rest to the application.
    fn childproc_reap_all(&mut self) {
        self.deliver_mail();
        let id = self.ctx.id;
        while self.sigchld_ours(false) {
            let got = directory(|d| loop {
                match process::waitpid_nohang(-1)? {
                    Wait::Reaped(pid, status) => match d.owner.remove(&pid) {
                        Some(owner) if owner == id => return Ok(Some(Reaped::Ours(pid, status))),
                        Some(owner) => d.post(owner, pid, status),
                        None => return Ok(Some(Reaped::Foreign(pid, status))),
                    },
                    Wait::Running | Wait::NoChild => return Ok(None),
                }
            });
            match got {
                Ok(None) => break,
                Ok(Some(Reaped::Ours(pid, status))) => match self.s().children.by_pid(pid) {
                    Some(ch) => self.child_reaped_ours(ch, status),
                    None => self.foreign_child_reaped(pid, status),
                },
                Ok(Some(Reaped::Foreign(pid, status))) => self.foreign_child_reaped(pid, status),
                Err(e) => {
                    let e: io::Error = e;
                    self.disaster("waitpid() failed", e.raw_os_error().unwrap_or(0));
                    return;
                }
            }
        }
        self.perhaps_sigchld_notneeded();
    }

    /// We reaped a child nobody in libxl started: the application's
    /// `reaped_callback` hears of it (lock released), or it is logged.
    fn foreign_child_reaped(&mut self, pid: i32, status: i32) {
        let hooks = self.s().sigchld.hooks.clone();
        let rc = match hooks {
            Some(h) => self.unlocked(|| h.reaped_callback(pid, status)),
            None => None,
        };
        match rc {
            Some(0) => {}
            Some(ERROR_UNKNOWN_CHILD) | None => {
                crate::xl_log!(self.ctx, Warn, "unknown child [{pid}] {}", process::describe_status(status));
            }
            Some(rc) => self.disaster(
                &format!(
                    "reported by libxl_childproc_hooks->reaped_callback (for pid={pid}, status={status}; error code {rc})"
                ),
                0,
            ),
        }
    }

    /// For `libxl_ctx_free`: gives SIGCHLD up and forgets every child
    /// (still-running ones are logged: no-one will reap them for this ctx).
    pub fn childproc_teardown(&mut self) {
        self.sigchld_notneeded();
        let n = self.s().children.len();
        if n > 0 {
            crate::xl_log!(self.ctx, Error,
                "libxl_ctx_free: {n} child process(es) not yet reaped are forgotten (their operations never complete)");
        }
        let st = self.st();
        drop(std::mem::take(&mut st.children));
        drop(std::mem::take(&mut st.sigchld));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI32, Ordering};

    use super::*;
    use crate::reg::ao::{AbortKey, AoHow};
    use crate::reg::event::{Event, EventKind};
    use crate::rc::ERROR_ABORTED;
    use crate::sys::process::exit_status;
    use crate::sys::process::testing::{plan, wait_reaped};
    use crate::testutil;

    // The unit tests share one process with other tests that fork, so they
    // only use the modes that never waitpid(-1): selective and mainloop.
    // (The waitpid(-1) modes are tested from C, one process per scenario.)

    fn sh(script: &str) -> ChildAction {
        ChildAction::Exec(plan(&["sh", "-c", script]))
    }

    fn selective(egc: &mut Egc<'_>) {
        egc.childproc_setmode(ChldOwner::LibxlAlwaysSelectiveReap, None);
    }

    fn completion(egc: &mut Egc<'_>, fe: u64) -> Option<Rc> {
        match egc.event_check(u64::MAX, &mut |e| e.for_user == fe) {
            Ok(Event { kind: EventKind::OperationComplete { rc }, .. }) => Some(rc),
            _ => None,
        }
    }

    /// Runs the event loop on a fresh poller until `done`, at most 10 s.
    fn run_until(egc: &mut Egc<'_>, mut done: impl FnMut(&mut Egc<'_>) -> bool) {
        let pid = egc.st().pollers.get().unwrap();
        // A ticker wakes the poller now and then, so that a missed SIGCHLD
        // fails the test at the deadline instead of hanging it.
        let wake_fd = egc.s().pollers.wakeup_fd(pid);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = stop.clone();
        let ticker = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                std::thread::sleep(std::time::Duration::from_millis(50));
                let _ = wakeup::write_byte(wake_fd);
            }
        });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut reached = done(egc);
        while !reached && std::time::Instant::now() < deadline {
            let _ = egc.eventloop_iteration(pid);
            egc.flush_unlocked();
            reached = done(egc);
        }
        stop.store(true, Ordering::SeqCst);
        ticker.join().unwrap();
        egc.st().pollers.put(pid);
        assert!(reached, "condition not reached");
    }

    #[test]
    fn child_status_reaches_the_callback_in_selective_mode() {
        let ctx = testutil::ctx();
        let mut egc = Egc::new(&ctx, "test");
        selective(&mut egc);
        let got = Arc::new(AtomicI32::new(-1));
        let ao = egc.ao_create(AoHow::ForEvent(1), 0).unwrap();
        let g = got.clone();
        egc.ev_child_fork(ao, sh("exit 5"), Box::new(move |egc, _, _, st| {
            g.store(st, Ordering::SeqCst);
            egc.ao_complete(ao, 0);
        }))
        .unwrap();
        egc.ao_inprogress(ao);
        run_until(&mut egc, |e| completion(e, 1).is_some());
        assert_eq!(got.load(Ordering::SeqCst), exit_status(5));
        assert!(egc.s().children.is_empty());
    }

    /// libxl's `libxl__ev_child_fork`: the call returns in the child too,
    /// where the caller's code runs (here: exit 7); the parent's callback
    /// gets the status; no ao owns the child.
    #[test]
    fn a_returning_fork_runs_the_callers_code_in_the_child() {
        let ctx = testutil::ctx();
        let mut egc = Egc::new(&ctx, "test");
        selective(&mut egc);
        let got = Arc::new(AtomicI32::new(-1));
        let g = got.clone();
        let ao = egc.ao_create(AoHow::ForEvent(9), 0).unwrap();
        let ch = match egc.ev_child_fork_returning(Box::new(move |_, _, _, st| g.store(st, Ordering::SeqCst))).unwrap() {
            ChildForked::Child => process::exit_now(7),
            ChildForked::Parent(ch, pid) => {
                assert_eq!(egc.ev_child_pid(ch), Some(pid));
                ch
            }
        };
        egc.ao_inprogress(ao);
        egc.ao_complete(ao, 0);
        assert!(egc.ev_child_inuse(ch), "not the ao's: its completion does not kill the child");
        run_until(&mut egc, |e| e.s().children.is_empty());
        assert_eq!(got.load(Ordering::SeqCst), exit_status(7), "the child ran the caller's code");
        assert_eq!(completion(&mut egc, 9), Some(0));
    }

    #[test]
    fn completing_the_ao_kills_its_child_and_holds_completion_until_reaped() {
        let ctx = testutil::ctx();
        let mut egc = Egc::new(&ctx, "test");
        selective(&mut egc);
        let ao = egc.ao_create(AoHow::ForEvent(2), 0).unwrap();
        let ch = egc.ev_child_fork(ao, sh("sleep 10"), Box::new(|_, _, _, _| panic!("killed: no callback"))).unwrap();
        let pid = egc.ev_child_pid(ch).unwrap();
        egc.ao_inprogress(ao);
        egc.ao_complete(ao, ERROR_ABORTED);
        assert!(!egc.ev_child_inuse(ch), "deregistered at completion");
        assert_eq!(completion(&mut egc, 2), None, "not reported while the killed child is unreaped");
        assert_eq!(egc.s().children.len(), 1, "still on our books");
        run_until(&mut egc, |e| e.s().children.is_empty());
        assert_eq!(completion(&mut egc, 2), Some(ERROR_ABORTED));
        assert_eq!(process::waitpid_nohang(pid).unwrap(), Wait::NoChild, "reaped: no zombie");
    }

    #[test]
    fn aborting_an_op_kills_and_reaps_its_child() {
        let ctx = testutil::ctx();
        let mut egc = Egc::new(&ctx, "test");
        selective(&mut egc);
        let ao = egc.ao_create(AoHow::ForEvent(3), 0).unwrap();
        egc.ao_abortable_register(ao, Box::new(move |egc, rc| egc.ao_complete(ao, rc))).unwrap();
        egc.ev_child_fork(ao, sh("sleep 10"), Box::new(|_, _, _, _| panic!("killed: no callback"))).unwrap();
        egc.ao_inprogress(ao);
        assert_eq!(egc.ao_abort(AbortKey::event(3)), 0);
        run_until(&mut egc, |e| e.s().children.is_empty());
        assert_eq!(completion(&mut egc, 3), Some(ERROR_ABORTED));
    }

    #[test]
    fn mainloop_reaped_routes_our_pid_and_refuses_a_foreign_one() {
        let ctx = testutil::ctx();
        let mut egc = Egc::new(&ctx, "test");
        egc.childproc_setmode(ChldOwner::Mainloop, None);
        assert!(egc.s().sigchld.selfpipe.is_none(), "mainloop: no self-pipe, no handler");
        let ao = egc.ao_create(AoHow::ForEvent(4), 0).unwrap();
        let ch = egc.ev_child_fork(ao, sh("exit 9"), Box::new(move |egc, _, _, st| egc.ao_complete(ao, st >> 8))).unwrap();
        let pid = egc.ev_child_pid(ch).unwrap();
        egc.ao_inprogress(ao);
        assert_eq!(egc.childproc_reaped(std::process::id() as i32, 0), ERROR_UNKNOWN_CHILD);
        let status = wait_reaped(pid);
        assert_eq!(egc.childproc_reaped(pid, status), 0);
        assert_eq!(completion(&mut egc, 4), Some(9));
        assert_eq!(egc.childproc_reaped(pid, status), ERROR_UNKNOWN_CHILD, "only once");
    }

    #[test]
    fn mainloop_sigchld_occurred_reaps_only_our_children() {
        let ctx = testutil::ctx();
        let mut egc = Egc::new(&ctx, "test");
        egc.childproc_setmode(ChldOwner::Mainloop, None);
        let ao = egc.ao_create(AoHow::ForEvent(5), 0).unwrap();
        egc.ev_child_fork(ao, sh("exit 0"), Box::new(move |egc, _, _, _| egc.ao_complete(ao, 0))).unwrap();
        egc.ao_inprogress(ao);
        for _ in 0..5000 {
            egc.childproc_sigchld_occurred();
            if egc.s().children.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        assert_eq!(completion(&mut egc, 5), Some(0));
    }

    #[test]
    fn reaped_and_sigchld_occurred_are_refused_outside_mainloop_mode() {
        let ctx = testutil::ctx();
        let mut egc = Egc::new(&ctx, "test");
        assert_eq!(egc.childproc_reaped(1, 0), ERROR_INVAL);
        egc.childproc_sigchld_occurred(); // logged, nothing else
    }

    #[test]
    fn selective_mode_holds_sigchld_until_teardown_and_libxl_mode_only_while_children_exist() {
        let ctx = testutil::ctx();
        let mut egc = Egc::new(&ctx, "test");
        assert!(egc.s().sigchld.slot.is_none(), "default mode without children: not ours");
        selective(&mut egc);
        assert!(egc.s().sigchld.slot.is_some() && egc.s().sigchld.selfpipe_ev.is_some());
        egc.childproc_setmode(ChldOwner::Libxl, None);
        assert!(egc.s().sigchld.slot.is_none() && egc.s().sigchld.selfpipe_ev.is_none());
        selective(&mut egc);
        egc.childproc_teardown();
        assert!(egc.s().sigchld.slot.is_none() && egc.s().sigchld.selfpipe.is_none());
    }

    #[test]
    fn status_reaped_by_another_ctx_is_posted_to_the_owner() {
        let ctx = testutil::ctx();
        let mut egc = Egc::new(&ctx, "test");
        selective(&mut egc);
        let ao = egc.ao_create(AoHow::ForEvent(6), 0).unwrap();
        let ch = egc.ev_child_fork(ao, sh("exit 4"), Box::new(move |egc, _, _, st| egc.ao_complete(ao, st >> 8))).unwrap();
        let pid = egc.ev_child_pid(ch).unwrap();
        egc.ao_inprogress(ao);
        // Play another ctx's waitpid(-1) reaper that happened to get it.
        let status = wait_reaped(pid);
        let id = ctx.id;
        directory(|d| {
            assert_eq!(d.owner.remove(&pid), Some(id), "entered before the child could run");
            d.post(id, pid, status);
        });
        run_until(&mut egc, |e| e.s().children.is_empty());
        assert_eq!(completion(&mut egc, 6), Some(4));
    }
}
