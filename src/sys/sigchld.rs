//! The process-wide SIGCHLD handler, shared by every ctx that needs it.
//!
//! Each interested ctx registers the write end of its own self-pipe
//! ([`add_user`]); the handler writes one byte to every registered pipe, and
//! each ctx's event loop sees its pipe's read end become readable, drains
//! it and reaps (see `ev::child`).
//!
//! Invariants:
//! * **Async-signal-safe handler.** It saves `errno`, loads each slot of a
//!   fixed array of atomics, `write(2)`s one byte to every fd found there
//!   (`EAGAIN`, a full pipe, already means "woken"; other errors are
//!   ignored), and restores `errno`. No lock, no allocation, no panic.
//! * **No write to a recycled fd.** The handler counts itself in
//!   `IN_HANDLER` *before* reading any slot. [`remove_user`] clears the
//!   slot, then waits until `IN_HANDLER` is zero before returning, so once
//!   it returns no handler still holds the old fd number and the caller may
//!   close the pipe. (All accesses are `SeqCst`: a handler that read the
//!   slot before it was cleared was counted before the clear.)
//! * **Install on first user, restore on last.** The first registration
//!   saves the current disposition and installs ours; the last removal puts
//!   the saved one back. Both happen under the no-forking lock
//!   ([`super::atfork`]), which also serialises them.
//! * A previous disposition other than `SIG_DFL`/`SIG_IGN` means the
//!   application handles SIGCHLD itself without having told libxl
//!   (`libxl_sigchld_owner_mainloop`): [`add_user`] refuses, leaving the
//!   application's handler in place.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering::SeqCst};

use super::atfork::{self, ForkSafe};

/// How many ctxs may want SIGCHLD at the same time.
pub const MAX_USERS: usize = 64;

/// Write ends of the interested ctxs' self-pipes; -1 is a free slot.
static PIPES: [AtomicI32; MAX_USERS] = [const { AtomicI32::new(-1) }; MAX_USERS];
/// Handlers currently running (on any thread).
static IN_HANDLER: AtomicUsize = AtomicUsize::new(0);

struct Installed {
    users: usize,
    /// The disposition we replaced, while ours is installed.
    saved: Option<libc::sigaction>,
}

static INSTALLED: ForkSafe<Installed> = ForkSafe::new(Installed { users: 0, saved: None });

/// A registration made by [`add_user`]; give it back to [`remove_user`].
#[derive(Debug, PartialEq, Eq)]
pub struct Slot(usize);

#[derive(Debug)]
pub enum AddError {
    /// The application has its own SIGCHLD handler installed.
    ForeignHandler,
    /// [`MAX_USERS`] ctxs already want SIGCHLD.
    Full,
    Os(io::Error),
}

extern "C" fn on_sigchld(_signo: libc::c_int) {
    // SAFETY: __errno_location returns this thread's errno slot, valid
    // for the life of the thread.
    let errno_p = unsafe { libc::__errno_location() };
    // SAFETY: reading our own thread's errno.
    let saved = unsafe { *errno_p };
    IN_HANDLER.fetch_add(1, SeqCst);
    let byte = 0u8;
    for slot in &PIPES {
        let fd = slot.load(SeqCst);
        if fd < 0 {
            continue;
        }
        loop {
            // SAFETY: `fd` is a registered self-pipe write end, kept open
            // until remove_user has seen this handler leave (module doc);
            // `byte` is a live one-byte buffer. write(2) is
            // async-signal-safe.
            let r = unsafe { libc::write(fd, std::ptr::addr_of!(byte).cast(), 1) };
            // SAFETY: as above.
            if r == -1 && unsafe { *errno_p } == libc::EINTR {
                continue;
            }
            break;
        }
    }
    IN_HANDLER.fetch_sub(1, SeqCst);
    // SAFETY: restoring our own thread's errno.
    unsafe { *errno_p = saved };
}

fn get_action() -> io::Result<libc::sigaction> {
    // SAFETY: an all-zero sigaction is a valid value to be overwritten.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a NULL new action only queries; `old` is writable.
    super::cvt(unsafe { libc::sigaction(libc::SIGCHLD, std::ptr::null(), &mut old) })?;
    Ok(old)
}

fn set_action(act: &libc::sigaction) -> io::Result<()> {
    // SAFETY: `act` is a fully initialised sigaction; NULL old action.
    super::cvt(unsafe { libc::sigaction(libc::SIGCHLD, act, std::ptr::null_mut()) })?;
    Ok(())
}

fn ours() -> libc::sigaction {
    // SAFETY: an all-zero sigaction is valid; we fill in what matters.
    let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
    act.sa_sigaction = on_sigchld as *const () as libc::sighandler_t;
    // SAFETY: sa_mask is a valid sigset_t to initialise.
    unsafe { libc::sigemptyset(&mut act.sa_mask) };
    act.sa_flags = libc::SA_NOCLDSTOP | libc::SA_RESTART;
    act
}

fn is_default_or_ignore(act: &libc::sigaction) -> bool {
    act.sa_flags & libc::SA_SIGINFO == 0 && (act.sa_sigaction == libc::SIG_DFL || act.sa_sigaction == libc::SIG_IGN)
}

/// Registers `write_fd` (a non-blocking pipe's write end) to receive a byte
/// on every SIGCHLD, installing the handler if this is the first user.
pub fn add_user(write_fd: RawFd) -> Result<Slot, AddError> {
    let g = atfork::lock();
    let mut inst = INSTALLED.with(&g);
    if inst.users == 0 {
        let old = get_action().map_err(AddError::Os)?;
        if !is_default_or_ignore(&old) {
            return Err(AddError::ForeignHandler);
        }
        set_action(&ours()).map_err(AddError::Os)?;
        inst.saved = Some(old);
    }
    for (i, slot) in PIPES.iter().enumerate() {
        if slot.compare_exchange(-1, write_fd, SeqCst, SeqCst).is_ok() {
            inst.users += 1;
            return Ok(Slot(i));
        }
    }
    if inst.users == 0 {
        restore(&mut inst);
    }
    Err(AddError::Full)
}

fn restore(inst: &mut Installed) {
    if let Some(old) = inst.saved.take() {
        // Cannot fail for SIGCHLD with a disposition the kernel gave us.
        let _ = set_action(&old);
    }
}

fn wait_for_handlers() {
    while IN_HANDLER.load(SeqCst) != 0 {
        std::thread::yield_now();
    }
}

/// Ends a registration. When it returns, no SIGCHLD handler will touch the
/// fd again, so the caller may close it. The last user's removal restores
/// the disposition saved by the first.
pub fn remove_user(slot: Slot) {
    let g = atfork::lock();
    let mut inst = INSTALLED.with(&g);
    PIPES[slot.0].store(-1, SeqCst);
    wait_for_handlers();
    inst.users -= 1;
    if inst.users == 0 {
        restore(&mut inst);
    }
}

/// In a child forked from a process using libxl (`libxl_postfork_child_noexec`):
/// forgets every registration (the ctxs they belong to are the parent's)
/// and restores the disposition saved when ours was installed.
pub fn postfork_reset() {
    let g = atfork::lock();
    let mut inst = INSTALLED.with(&g);
    for slot in &PIPES {
        slot.store(-1, SeqCst);
    }
    wait_for_handlers();
    inst.users = 0;
    restore(&mut inst);
}

/// True if our handler is SIGCHLD's disposition right now.
pub fn handler_installed() -> bool {
    get_action().is_ok_and(|a| a.sa_sigaction == on_sigchld as *const () as libc::sighandler_t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::poll::recheck;
    use crate::sys::wakeup::Wakeup;
    use crate::sys::POLLIN;

    /// Unit tests share one process: they only check what holds whatever
    /// other tests registered, and always leave as they found.
    #[test]
    fn sigchld_pokes_every_registered_pipe_and_not_removed_ones() {
        let (a, b) = (Wakeup::new().unwrap(), Wakeup::new().unwrap());
        let sa = add_user(a.write_fd()).unwrap();
        let sb = add_user(b.write_fd()).unwrap();
        assert!(handler_installed());
        remove_user(sb);
        // Other tests' children may have poked both meanwhile: start clean.
        a.drain().unwrap();
        b.drain().unwrap();
        // SAFETY: raising a signal whose handler (ours) is installed.
        unsafe { libc::raise(libc::SIGCHLD) };
        assert_ne!(recheck(a.read_fd(), POLLIN) & POLLIN, 0, "registered pipe poked");
        assert_eq!(recheck(b.read_fd(), POLLIN) & POLLIN, 0, "removed pipe untouched");
        remove_user(sa);
    }

    #[test]
    fn handler_preserves_errno_even_when_its_write_fails() {
        let a = Wakeup::new().unwrap();
        // Fill the pipe: the handler's write will fail with EAGAIN.
        // SAFETY: the fd is `a`'s write end, open for this whole test.
        let w = unsafe { std::os::fd::BorrowedFd::borrow_raw(a.write_fd()) };
        while nix::unistd::write(w, &[0u8; 4096]).is_ok() {}
        let s = add_user(a.write_fd()).unwrap();
        // SAFETY: __errno_location points at this thread's errno.
        unsafe { *libc::__errno_location() = libc::EDOM };
        // SAFETY: raising SIGCHLD with our handler installed.
        unsafe { libc::raise(libc::SIGCHLD) };
        // SAFETY: as above.
        assert_eq!(unsafe { *libc::__errno_location() }, libc::EDOM);
        remove_user(s);
    }
}
