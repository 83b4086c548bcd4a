//! Processes: starting a child ([`spawn`]), waiting for one
//! ([`waitpid_nohang`]), signalling one ([`kill`]), and describing a wait
//! status for logs.
//!
//! What runs in a child between `fork` and `exec` must be
//! async-signal-safe: the parent may have other threads, holding locks the
//! child will never see released. So the child's work is described before
//! forking ([`ChildAction`]) and everything it needs is allocated then:
//! an exec ([`ExecPlan`]: argv as C strings and the pointer array), or a
//! closure whose author promised the same ([`ChildAction::from_fn`], an
//! `unsafe` constructor for that reason, like std's `pre_exec`).
//!
//! **Start handshake.** [`spawn`] makes the child wait, before doing
//! anything, until the parent calls [`Spawned::release`]. That lets the
//! parent record the pid (in every table a reaper might consult) before the
//! child can possibly exit and be reaped by someone else's `waitpid(-1)`.
//! Release is a byte written to a pipe, not the pipe's closing: a process
//! forked meanwhile by another thread (another held child, or a child of
//! the application that never execs) also holds the write end, so EOF
//! could come late or never. If the parent drops [`Spawned`] without
//! releasing, or dies first, the child exits with status 127 without
//! running its action. The pipe is close-on-exec and closed in the child
//! before its action runs, so nothing leaks.

use std::ffi::{c_char, CString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::fcntl::OFlag;

use super::cvt;

pub const SIGKILL: i32 = libc::SIGKILL;

/// `argv` for `execvp`, ready before the fork.
pub struct ExecPlan {
    _argv: Vec<CString>,
    /// Pointers into `_argv`'s heap buffers (stable while it lives), then NULL.
    ptrs: Vec<*const c_char>,
}

// SAFETY: the raw pointers point into the CStrings this struct owns and
// are only read (by execvp); moving the struct moves ownership with them.
unsafe impl Send for ExecPlan {}

impl ExecPlan {
    /// `None` if `argv` is empty. `argv[0]` is searched for in `PATH`
    /// unless it contains a `/`, as `execvp` does.
    pub fn new(argv: Vec<CString>) -> Option<ExecPlan> {
        if argv.is_empty() {
            return None;
        }
        let mut ptrs: Vec<*const c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        Some(ExecPlan { _argv: argv, ptrs })
    }

    /// In the child: exec, or exit with status 127 if that fails.
    fn exec(&self) -> ! {
        // SAFETY: `ptrs` is a NULL-terminated array of NUL-terminated
        // strings owned by self. glibc's execvp searches PATH with stack
        // buffers only (posix_spawnp relies on that in a CLONE_VM child),
        // so it is safe after fork in a threaded process.
        unsafe { libc::execvp(self.ptrs[0], self.ptrs.as_ptr()) };
        exit_now(127)
    }
}

/// What a child does once forked.
pub enum ChildAction {
    /// `execvp` the plan; exit status 127 if the exec fails.
    Exec(ExecPlan),
    /// Run a closure, then exit with status 0 (if it returns).
    Closure(Box<dyn FnOnce() + Send>),
}

impl ChildAction {
    /// A child that runs `f`.
    ///
    /// # Safety
    /// `f` runs in a freshly forked child of a possibly multi-threaded
    /// process: it may only do async-signal-safe work (no locks another
    /// thread might hold, no allocation unless the allocator is fork-safe),
    /// typically a few `dup2`/`close` calls and an `exec*`, or `_exit`.
    pub unsafe fn from_fn(f: impl FnOnce() + Send + 'static) -> ChildAction {
        ChildAction::Closure(Box::new(f))
    }

    fn run(self) -> ! {
        match self {
            ChildAction::Exec(plan) => plan.exec(),
            ChildAction::Closure(f) => {
                f();
                exit_now(0)
            }
        }
    }
}

/// `_exit(2)`: ends the child without running the parent's atexit
/// handlers or flushing its stdio buffers (they belong to the parent).
pub fn exit_now(status: i32) -> ! {
    // SAFETY: _exit has no preconditions and is async-signal-safe.
    unsafe { libc::_exit(status) }
}

/// A child that exists but has not started its action yet. Dropped
/// without [`release`](Spawned::release), the child exits (status 127).
pub struct Spawned {
    pub pid: i32,
    /// A byte written here lets the child go.
    go: OwnedFd,
}

impl Spawned {
    /// Lets the child run its action.
    pub fn release(self) {
        // A fresh pipe has room for a byte: this cannot block or fail
        // short of the child's read end being gone (the child is dead).
        let _ = super::wakeup::write_byte(self.go.as_raw_fd());
    }
}

/// Forks (with `fork_replacement` if given: the application's function,
/// which must behave like `fork(2)`), and in the child waits for
/// [`Spawned::release`], then runs `action`. Returns the child in the
/// parent; never returns in the child.
pub fn spawn(fork_replacement: Option<&dyn Fn() -> io::Result<i32>>, action: ChildAction) -> io::Result<Spawned> {
    match fork_held(fork_replacement)? {
        Forked::Parent(s) => Ok(s),
        Forked::Child => action.run(),
    }
}

/// Which side of a [`fork_held`] this is.
pub enum Forked {
    Parent(Spawned),
    /// The child, released by the parent: it carries on from the call.
    Child,
}

/// Forks as [`spawn`] does, but the child returns (once the parent has
/// released it) instead of running an action: for C callers such as Xen's
/// libxl, whose child code follows the call (`libxl__ev_child_fork`
/// returns 0 in the child). What that code may do is the caller's affair.
pub fn fork_held(fork_replacement: Option<&dyn Fn() -> io::Result<i32>>) -> io::Result<Forked> {
    let (hold, go) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    let pid = match fork_replacement {
        Some(f) => f()?,
        // SAFETY: the child only runs `child_wait` below (close, poll,
        // read: async-signal-safe) before returning to its caller, whose
        // contract covers what it does next. The parent continues normally.
        None => cvt(unsafe { libc::fork() })?,
    };
    if pid == 0 {
        if !child_wait(parent, hold.as_raw_fd(), go.as_raw_fd()) {
            exit_now(127);
        }
        std::mem::forget(hold); // closed by child_wait
        std::mem::forget(go);
        return Ok(Forked::Child);
    }
    drop(hold);
    Ok(Forked::Parent(Spawned { pid, go }))
}

/// The child's side of the handshake: wait for the release byte, checking
/// now and then that the parent still exists. True if released (both pipe
/// ends are closed either way).
fn child_wait(parent: i32, hold: i32, go: i32) -> bool {
    // SAFETY: closing this process's copy of the write end (so that the
    // parent dropping its copy can read as EOF here); async-signal-safe.
    unsafe { libc::close(go) };
    let mut byte = 0u8;
    let released = loop {
        let mut pfd = super::pollfd(hold, super::POLLIN);
        // SAFETY: one live pollfd; poll is async-signal-safe.
        let r = unsafe { libc::poll(&mut pfd, 1, 200) };
        if r > 0 {
            // SAFETY: reading one byte into a live buffer from our copy of
            // the handshake pipe's read end; async-signal-safe.
            let n = unsafe { libc::read(hold, std::ptr::addr_of_mut!(byte).cast(), 1) };
            // SAFETY: reading our own errno.
            let e = unsafe { *libc::__errno_location() };
            if n == -1 && (e == libc::EINTR || e == libc::EAGAIN) {
                continue;
            }
            break n == 1; // EOF: dropped without release
        }
        // SAFETY: getppid has no preconditions and is async-signal-safe.
        if r == 0 && unsafe { libc::getppid() } != parent {
            break false; // the parent died before releasing us
        }
    };
    // SAFETY: closing this process's copy of the read end.
    unsafe { libc::close(hold) };
    released
}

/// What `waitpid(pid, WNOHANG)` found.
#[derive(Debug, PartialEq, Eq)]
pub enum Wait {
    /// This child was reaped: (pid, wait status).
    Reaped(i32, i32),
    /// Children exist but none (matching) has changed state.
    Running,
    /// `ECHILD`: no such child (or no children at all).
    NoChild,
}

/// `waitpid(pid, &status, WNOHANG)` (`pid` -1: any child). `EINTR` is
/// retried; errors other than `ECHILD` are returned.
pub fn waitpid_nohang(pid: i32) -> io::Result<Wait> {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a live, writable int.
        match cvt(unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) }) {
            Ok(0) => return Ok(Wait::Running),
            Ok(got) => return Ok(Wait::Reaped(got, status)),
            Err(e) if e.raw_os_error() == Some(libc::ECHILD) => return Ok(Wait::NoChild),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// `kill(pid, sig)`.
pub fn kill(pid: i32, sig: i32) -> io::Result<()> {
    // SAFETY: kill has no memory preconditions.
    cvt(unsafe { libc::kill(pid, sig) })?;
    Ok(())
}

/// "exited with status N", "killed by signal N", for log lines.
pub fn describe_status(status: i32) -> String {
    if libc::WIFEXITED(status) {
        format!("exited with status {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        let core = if libc::WCOREDUMP(status) { " (core dumped)" } else { "" };
        format!("died from signal {}{core}", libc::WTERMSIG(status))
    } else {
        format!("changed state (wait status {status:#x})")
    }
}

/// The wait status of a child that exited with `code` (libxl reports a
/// child whose status was lost as having exited with 255).
pub fn exit_status(code: u8) -> i32 {
    i32::from(code) << 8
}

/// Helpers for the unit tests that start children (here, in `ev::child`
/// and in `testops`).
#[cfg(test)]
pub mod testing {
    use super::*;

    /// An exec plan from string literals.
    pub fn plan(args: &[&str]) -> ExecPlan {
        ExecPlan::new(args.iter().map(|a| CString::new(*a).unwrap()).collect()).unwrap()
    }

    /// Reaps `pid` (polling), panicking after 5 s; its wait status.
    pub fn wait_reaped(pid: i32) -> i32 {
        let t0 = std::time::Instant::now();
        loop {
            if let Wait::Reaped(_, st) = waitpid_nohang(pid).unwrap() {
                return st;
            }
            assert!(t0.elapsed().as_secs() < 5, "child {pid} not reaped within 5 s");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{plan, wait_reaped as wait_blocking};
    use super::*;

    #[test]
    fn exec_searches_path_and_reports_the_exit_status() {
        let s = spawn(None, ChildAction::Exec(plan(&["sh", "-c", "exit 7"]))).unwrap();
        let pid = s.pid;
        s.release();
        let st = wait_blocking(pid);
        assert!(libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 7, "{}", describe_status(st));
    }

    #[test]
    fn exec_failure_is_exit_status_127() {
        for argv in [&["/nonexistent/program"][..], &["no-such-program-in-path-xyz"][..]] {
            let s = spawn(None, ChildAction::Exec(plan(argv))).unwrap();
            let pid = s.pid;
            s.release();
            assert_eq!(wait_blocking(pid), exit_status(127));
        }
    }

    #[test]
    fn child_waits_for_release_before_running() {
        let s = spawn(None, ChildAction::Exec(plan(&["true"]))).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(30));
        assert_eq!(waitpid_nohang(s.pid).unwrap(), Wait::Running, "held until released");
        let pid = s.pid;
        s.release();
        assert_eq!(wait_blocking(pid), 0);
    }

    #[test]
    fn child_dropped_without_release_exits_127_without_running() {
        let s = spawn(None, ChildAction::Exec(plan(&["sh", "-c", "exit 0"]))).unwrap();
        let pid = s.pid;
        drop(s);
        assert_eq!(wait_blocking(pid), exit_status(127));
    }

    /// Regression (found by test_childproc two_ctxs, two threads forking
    /// at once): a child forked while another is held inherits a copy of
    /// the other's release pipe, so release must not wait for every copy
    /// of it to be closed.
    #[test]
    fn held_child_is_released_while_another_holds_its_pipe() {
        let a = spawn(None, ChildAction::Exec(plan(&["true"]))).unwrap();
        let b = spawn(None, ChildAction::Exec(plan(&["sleep", "10"]))).unwrap(); // holds a's pipe
        let (pa, pb) = (a.pid, b.pid);
        a.release();
        assert_eq!(wait_blocking(pa), 0, "a released while b holds a copy of its pipe");
        b.release();
        kill(pb, SIGKILL).unwrap();
        assert_eq!(wait_blocking(pb), libc::SIGKILL);
    }

    #[test]
    fn waitpid_of_a_non_child_is_nochild() {
        assert_eq!(waitpid_nohang(1).unwrap(), Wait::NoChild);
    }

    #[test]
    fn describe_status_names_exits_and_signals() {
        assert_eq!(describe_status(exit_status(3)), "exited with status 3");
        assert_eq!(describe_status(libc::SIGKILL), "died from signal 9");
    }

    #[test]
    fn empty_argv_has_no_plan() {
        assert!(ExecPlan::new(Vec::new()).is_none());
    }
}
