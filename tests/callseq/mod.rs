//! Random sequences of public calls, checked against a model.
//!
//! Shared by the property test (`tests/callseq_prop.rs`, proptest feeds it
//! random bytes) and the fuzz target (`fuzz/fuzz_targets/callseq.rs`,
//! libFuzzer feeds it bytes): [`decode`] turns bytes into [`Step`]s, and
//! [`run`] performs them through the C ABI on one ctx, single-threaded,
//! checking after every step and at the end:
//!
//! * **exactly once**: every operation completes once (callback, event or
//!   synchronous return), with an rc its history allows (0 for an fd op
//!   only if its pipe held data after it started; `ERROR_ABORTED` only if
//!   it was aborted);
//! * **no event lost or duplicated**: every event names a live operation
//!   of ours; every progress report arrives, before its completion when
//!   delivered by callback; at the end the queue is empty;
//! * **aborts** answer as libxl documents (`0`, `ERROR_ABORTED` the second
//!   time, `ERROR_NOTFOUND` once completed; `NULL` with no synchronous op
//!   in progress is `ERROR_NOTFOUND`);
//! * **bad input** is refused with `ERROR_INVAL` and changes nothing;
//! * **fd numbers reused**: a pipe may be closed and opened anew (the
//!   kernel hands back its numbers) or moved to a dup'd number (its old
//!   number free for the next pipe); its operations are aborted first, as
//!   libxl requires an fd to stay open while registered. Operations on the
//!   new file behave as on any other (the defect of issue 12: a sleeper
//!   whose kernel interest set missed the new file waited for the 1 s
//!   idle audit);
//! * **prompt**: `libxl_event_wait` for an operation sure to complete
//!   returns well before the library's 1 s idle audit could have rescued
//!   it (every run has `LIBXL_TEST_AUDIT=fail`: an audit finding aborts);
//! * **no registration leaks**: once every operation has completed,
//!   beforepoll asks for the wakeup fd only and no timeout; with osevent
//!   hooks, every `fd_register` was matched by an `fd_deregister` and
//!   every timeout was fired or asked to fire; `libxl_ctx_free` returns 0.
//!
//! The sequence never commits misuse libxl defines as fatal (that aborts
//! by design and is tested in `c-tests/test_fatal.c`), never waits for
//! something that cannot happen (single-threaded), and never hands the
//! library a pointer it cannot check. This is a client of the C ABI, so it
//! calls `unsafe extern "C"` functions; each call documents why it is sound.

#![allow(dead_code)]

use std::cell::RefCell;
use std::ffi::{c_int, c_short, c_void};
use std::os::fd::{AsRawFd, OwnedFd};
use std::ptr::{null, null_mut};

use xenlight::ffi::ao::libxl_ao_abort;
use xenlight::ffi::ctx::{libxl_ctx_alloc, libxl_ctx_free};
use xenlight::ffi::event::{libxl_event_check, libxl_event_free, libxl_event_register_callbacks, libxl_event_wait};
use xenlight::ffi::osevent::{
    libxl_osevent_afterpoll, libxl_osevent_beforepoll, libxl_osevent_occurred_fd, libxl_osevent_occurred_timeout,
    libxl_osevent_register_hooks,
};
use xenlight::ffi::testops::{libxl_test_fdevent, libxl_test_progress, libxl_test_timeout};
use xenlight::ffi::types::{
    libxl_asyncop_how, libxl_asyncop_how_u, libxl_asyncprogress_how, libxl_ctx, libxl_event, libxl_event_hooks,
    libxl_osevent_hooks,
};
use xenlight::rc::{ERROR_ABORTED, ERROR_BUFFERFULL, ERROR_INVAL, ERROR_NOTFOUND, ERROR_NOT_READY};

const PIPES: usize = 4;
/// How long a wait for an operation sure to complete may take: half the
/// library's idle audit period (slow builds included: ASan under fuzzing).
const PROMPT_MS: u128 = 500;
const MAX_OPS: usize = 40;
const EV_OPERATION_COMPLETE: c_int = 4;
const EV_PROGRESS: c_int = 5; // DOMAIN_CREATE_CONSOLE_AVAILABLE, as libxl_test_progress reports
const COMPLETE_BASE: u64 = 1000; // for_user of an op's completion event
const PROGRESS_BASE: u64 = 5000; // for_user of an op's progress events
const CROWD_BASE: u64 = 1 << 40; // for_user of a crowd's ops (see `crowd`)
/// fds a crowd registers at once: more than the library's threshold for
/// sleeping on its epoll instance, so a crowd makes and drops it.
const CROWD: usize = 40;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    ForEvent,
    Callback,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aop {
    Discard,
    ForEvent,
    Callback,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Fd { pipe: usize },
    Timeout { ms: i32 },
    Progress { count: i32, interval: i32, aop: Aop },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Start { kind: Kind, mode: Mode },
    Sync { kind: Kind },
    Poke { pipe: usize },
    Drain { pipe: usize },
    Abort { op: usize },
    AbortNull,
    CheckAny,
    CheckOp { op: usize },
    WaitOp { op: usize },
    AppLoop { poll_ms: i32 },
    HookLoop,
    Forged { value: u64, timeout: bool },
    EventHooks { on: bool },
    BadCall { which: u8 },
    /// Aborts the pipe's operations, closes it and opens a new pipe.
    Reopen { pipe: usize },
    /// Aborts the pipe's operations, moves its read end to a dup'd number
    /// and closes the old one (the same file lives on, elsewhere).
    DupSwap { pipe: usize },
    /// Registers many fds at once, then releases them (see `Run::crowd`).
    Crowd,
    Sleep,
}

/// The ctx's set-up, from the first byte: half of all sequences force the
/// library's own pollers onto the ctx's epoll instance, a quarter onto
/// poll sets, the rest use the default (poll sets for these few fds).
#[derive(Clone, Copy, Debug)]
pub struct Setup {
    pub osevent_hooks: bool,
    pub backend: Backend,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Auto,
    Poll,
    Epoll,
}

fn kind(b: &mut impl Iterator<Item = u8>) -> Kind {
    let x = b.next().unwrap_or(0);
    match x % 3 {
        0 => Kind::Fd { pipe: (x as usize / 3) % PIPES },
        1 => Kind::Timeout { ms: (x as i32 / 3) % 4 },
        _ => Kind::Progress {
            count: (x as i32 / 3) % 3,
            interval: (x as i32 / 9) % 2,
            aop: [Aop::Discard, Aop::ForEvent, Aop::Callback][(x as usize / 18) % 3],
        },
    }
}

/// Bytes to a set-up and a sequence of steps (total: any bytes decode).
pub fn decode(data: &[u8]) -> (Setup, Vec<Step>) {
    let mut b = data.iter().copied();
    let first = b.next().unwrap_or(0);
    let backend = match (first >> 1) & 3 {
        0 | 1 => Backend::Epoll,
        2 => Backend::Poll,
        _ => Backend::Auto,
    };
    let setup = Setup { osevent_hooks: first & 1 != 0, backend };
    let mut steps = Vec::new();
    while let Some(op) = b.next() {
        let arg = |b: &mut std::iter::Copied<std::slice::Iter<'_, u8>>| b.next().unwrap_or(0);
        let step = match op % 16 {
            0 | 1 => Step::Start { kind: kind(&mut b), mode: if op & 16 != 0 { Mode::Callback } else { Mode::ForEvent } },
            2 => Step::Sync { kind: kind(&mut b) },
            3 => Step::Poke { pipe: arg(&mut b) as usize % PIPES },
            4 => Step::Drain { pipe: arg(&mut b) as usize % PIPES },
            5 => Step::Abort { op: arg(&mut b) as usize },
            6 => Step::AbortNull,
            7 => Step::CheckAny,
            8 => Step::CheckOp { op: arg(&mut b) as usize },
            9 => Step::WaitOp { op: arg(&mut b) as usize },
            10 => Step::AppLoop { poll_ms: (op as i32 >> 4) % 2 },
            11 => Step::HookLoop,
            12 => {
                let mut v = 0u64;
                for _ in 0..8 {
                    v = v << 8 | arg(&mut b) as u64;
                }
                Step::Forged { value: v, timeout: op & 16 != 0 }
            }
            13 => Step::EventHooks { on: op & 16 != 0 },
            14 => Step::BadCall { which: arg(&mut b) },
            _ => match (op >> 4) % 4 {
                1 => Step::Reopen { pipe: arg(&mut b) as usize % PIPES },
                2 => Step::DupSwap { pipe: arg(&mut b) as usize % PIPES },
                3 => Step::Crowd,
                _ => Step::Sleep,
            },
        };
        steps.push(step);
        if steps.len() >= 200 {
            break;
        }
    }
    (setup, steps)
}

/* ---------- what the callbacks record (this thread only) ---------- */

#[derive(Default)]
struct Rec {
    /// (op, rc) from completion callbacks and delivered events, in order.
    completions: Vec<(usize, c_int)>,
    /// op per progress report delivered (callback or event).
    progress: Vec<usize>,
    errors: Vec<String>,
    disasters: usize,
    /// Application side of the osevent hooks.
    fds: Vec<AppFd>,
    times: Vec<AppTime>,
    fd_registers: usize,
    fd_deregisters: usize,
}

#[derive(Clone, Copy)]
struct AppFd {
    fd: c_int,
    events: c_short,
    for_libxl: usize,
    live: bool,
}

#[derive(Clone, Copy)]
struct AppTime {
    /// Wall-clock deadline in µs; 0 = "fire as soon as possible".
    abs_us: i64,
    for_libxl: usize,
    live: bool,
}

thread_local! {
    static REC: RefCell<Rec> = RefCell::new(Rec::default());
}

fn rec<R>(f: impl FnOnce(&mut Rec) -> R) -> R {
    REC.with(|r| f(&mut r.borrow_mut()))
}

/// Records an event the application received (from check/wait or the
/// event_occurs hook) and frees it.
fn take_event(ctx: *mut libxl_ctx, ev: *mut libxl_event) {
    // SAFETY: `ev` is a live event the library just handed us.
    let (ty, for_user, rc) = unsafe { ((*ev).type_, (*ev).for_user, (*ev).u.operation_complete_rc) };
    rec(|r| match ty {
        EV_OPERATION_COMPLETE if (COMPLETE_BASE..PROGRESS_BASE).contains(&for_user) => {
            r.completions.push(((for_user - COMPLETE_BASE) as usize, rc))
        }
        EV_OPERATION_COMPLETE if for_user >= CROWD_BASE => {
            if rc != ERROR_ABORTED {
                r.errors.push(format!("crowd op {for_user:#x} completed with {rc}"));
            }
        }
        EV_PROGRESS if (PROGRESS_BASE..CROWD_BASE).contains(&for_user) => {
            r.progress.push((for_user - PROGRESS_BASE) as usize)
        }
        _ => r.errors.push(format!("unexpected event type {ty} for_user {for_user}")),
    });
    // SAFETY: ours to free, once.
    unsafe { libxl_event_free(ctx, ev) };
}

unsafe extern "C" fn on_complete(_ctx: *mut libxl_ctx, rc: c_int, for_callback: *mut c_void) {
    rec(|r| r.completions.push((for_callback as usize, rc)));
}

unsafe extern "C" fn on_progress(ctx: *mut libxl_ctx, ev: *mut libxl_event, _user: *mut c_void) {
    take_event(ctx, ev);
}

unsafe extern "C" fn on_event(user: *mut c_void, ev: *mut libxl_event) {
    take_event(user.cast(), ev);
}

unsafe extern "C" fn on_disaster(_user: *mut c_void, _ty: c_int, _msg: *const std::ffi::c_char, _errno: c_int) {
    rec(|r| r.disasters += 1);
}

unsafe extern "C" fn hook_fd_register(_u: *mut c_void, fd: c_int, out: *mut *mut c_void, events: c_short, fl: *mut c_void) -> c_int {
    let i = rec(|r| {
        r.fd_registers += 1;
        r.fds.push(AppFd { fd, events, for_libxl: fl as usize, live: true });
        r.fds.len()
    });
    // SAFETY: the library passes a valid out-pointer.
    unsafe { *out = i as *mut c_void };
    0
}

unsafe extern "C" fn hook_fd_modify(_u: *mut c_void, _fd: c_int, io: *mut *mut c_void, events: c_short) -> c_int {
    // SAFETY: the library passes a valid in/out pointer holding our cookie.
    let i = unsafe { *io } as usize;
    rec(|r| match r.fds.get_mut(i.wrapping_sub(1)) {
        Some(f) if f.live => f.events = events,
        _ => r.errors.push(format!("fd_modify of unknown registration {i}")),
    });
    0
}

unsafe extern "C" fn hook_fd_deregister(_u: *mut c_void, _fd: c_int, reg: *mut c_void) {
    let i = reg as usize;
    rec(|r| {
        r.fd_deregisters += 1;
        match r.fds.get_mut(i.wrapping_sub(1)) {
            Some(f) if f.live => f.live = false,
            _ => r.errors.push(format!("fd_deregister of unknown or dead registration {i}")),
        }
    });
}

unsafe extern "C" fn hook_timeout_register(_u: *mut c_void, out: *mut *mut c_void, abs: libc::timeval, fl: *mut c_void) -> c_int {
    let i = rec(|r| {
        r.times.push(AppTime { abs_us: abs.tv_sec * 1_000_000 + abs.tv_usec, for_libxl: fl as usize, live: true });
        r.times.len()
    });
    // SAFETY: as for hook_fd_register.
    unsafe { *out = i as *mut c_void };
    0
}

unsafe extern "C" fn hook_timeout_modify(_u: *mut c_void, io: *mut *mut c_void, abs: libc::timeval) -> c_int {
    // SAFETY: as for hook_fd_modify.
    let i = unsafe { *io } as usize;
    rec(|r| match r.times.get_mut(i.wrapping_sub(1)) {
        Some(t) if t.live => t.abs_us = abs.tv_sec * 1_000_000 + abs.tv_usec,
        _ => r.errors.push(format!("timeout_modify of unknown registration {i}")),
    });
    0
}

static HOOKS: libxl_osevent_hooks = libxl_osevent_hooks {
    fd_register: Some(hook_fd_register),
    fd_modify: Some(hook_fd_modify),
    fd_deregister: Some(hook_fd_deregister),
    timeout_register: Some(hook_timeout_register),
    timeout_modify: Some(hook_timeout_modify),
    timeout_deregister: None,
};

/* ---------- the model ---------- */

struct Op {
    kind: Kind,
    mode: Mode,
    aborted: bool,
    /// An fd op's pipe held data at some point since it started.
    could_fire: bool,
    done: Option<c_int>,
    progress: i32,
}

struct Pipe {
    r: OwnedFd,
    w: OwnedFd,
    has_data: bool,
}

struct Run {
    setup: Setup,
    ctx: *mut libxl_ctx,
    pipes: Vec<Pipe>,
    ops: Vec<Op>,
    event_hooks: bool,
}

type Check = Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

fn now_us() -> i64 {
    let mut tv = libc::timeval { tv_sec: 0, tv_usec: 0 };
    // SAFETY: a valid out-pointer; no timezone.
    unsafe { libc::gettimeofday(&mut tv, null_mut()) };
    tv.tv_sec * 1_000_000 + tv.tv_usec
}

fn tv_now() -> libc::timeval {
    let us = now_us();
    libc::timeval { tv_sec: us / 1_000_000, tv_usec: us % 1_000_000 }
}

/// A non-blocking close-on-exec pipe, empty.
fn new_pipe() -> Result<Pipe, String> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
        .map_err(|e| format!("pipe: {e}"))?;
    Ok(Pipe { r, w, has_data: false })
}

fn poll_one(fd: c_int, events: c_short) -> c_short {
    let mut p = libc::pollfd { fd, events, revents: 0 };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, 0) };
    p.revents
}

impl Run {
    fn new(setup: Setup) -> Result<Run, String> {
        match setup.backend {
            Backend::Poll => std::env::set_var("LIBXL_POLL_BACKEND", "poll"),
            Backend::Epoll => std::env::set_var("LIBXL_POLL_BACKEND", "epoll"),
            Backend::Auto => std::env::remove_var("LIBXL_POLL_BACKEND"),
        }
        REC.with(|r| *r.borrow_mut() = Rec::default());
        let mut ctx = null_mut();
        // SAFETY: a valid out-pointer; no logger.
        let rc = unsafe { libxl_ctx_alloc(&mut ctx, 0, 0, null_mut()) };
        ensure!(rc == 0, "libxl_ctx_alloc: {rc}");
        if setup.osevent_hooks {
            // SAFETY: a live ctx, no osevents yet; HOOKS is 'static.
            unsafe { libxl_osevent_register_hooks(ctx, &HOOKS, null_mut()) };
        }
        let pipes = (0..PIPES).map(|_| new_pipe()).collect::<Result<Vec<_>, _>>()?;
        Ok(Run { setup, ctx, pipes, ops: Vec::new(), event_hooks: false })
    }

    fn how(&self, id: usize, mode: Mode) -> libxl_asyncop_how {
        match mode {
            Mode::ForEvent => {
                libxl_asyncop_how { callback: None, u: libxl_asyncop_how_u { for_event: COMPLETE_BASE + id as u64 } }
            }
            Mode::Callback => libxl_asyncop_how {
                callback: Some(on_complete),
                u: libxl_asyncop_how_u { for_callback: id as *mut c_void },
            },
        }
    }

    /// Starts an op; `how` None means synchronous. Returns the call's rc.
    fn start(&mut self, id: usize, kind: Kind, how: Option<libxl_asyncop_how>) -> c_int {
        let hp = how.as_ref().map_or(null(), |h| h as *const libxl_asyncop_how);
        match kind {
            // SAFETY: live ctx; `hp` NULL or a valid how for the call.
            Kind::Fd { pipe } => unsafe {
                libxl_test_fdevent(self.ctx, self.pipes[pipe].r.as_raw_fd(), libc::POLLIN, hp.cast_mut())
            },
            // SAFETY: as above.
            Kind::Timeout { ms } => unsafe { libxl_test_timeout(self.ctx, ms, hp) },
            Kind::Progress { count, interval, aop } => {
                let a = match aop {
                    Aop::Discard => None,
                    Aop::ForEvent => Some(libxl_asyncprogress_how {
                        callback: None,
                        for_event: PROGRESS_BASE + id as u64,
                        for_callback: null_mut(),
                    }),
                    Aop::Callback => Some(libxl_asyncprogress_how {
                        callback: Some(on_progress),
                        for_event: PROGRESS_BASE + id as u64,
                        for_callback: null_mut(),
                    }),
                };
                let ap = a.as_ref().map_or(null(), |a| a as *const libxl_asyncprogress_how);
                // SAFETY: as above; `ap` NULL or valid.
                unsafe { libxl_test_progress(self.ctx, count, interval, ap, hp) }
            }
        }
    }

    /// Whether waiting for op `id` is sure to end (single-threaded: no one
    /// else will make its fd ready).
    fn will_complete(&self, id: usize) -> bool {
        let op = &self.ops[id];
        op.done.is_none()
            && (op.aborted
                || match op.kind {
                    Kind::Fd { pipe } => self.pipes[pipe].has_data,
                    Kind::Timeout { .. } | Kind::Progress { .. } => true,
                })
    }

    /// Applies what the callbacks recorded since the last step.
    fn absorb(&mut self) -> Check {
        let (completions, progress, errors, disasters) = rec(|r| {
            (std::mem::take(&mut r.completions), std::mem::take(&mut r.progress), std::mem::take(&mut r.errors), r.disasters)
        });
        ensure!(errors.is_empty(), "callback errors: {errors:?}");
        ensure!(disasters == 0, "disaster reported");
        for id in progress {
            let op = self.ops.get_mut(id).ok_or(format!("progress for unknown op {id}"))?;
            ensure!(op.done.is_none() || matches!(op.kind, Kind::Progress { aop: Aop::ForEvent, .. }),
                "progress callback for op {id} after its completion");
            op.progress += 1;
        }
        for (id, rc) in completions {
            self.complete(id, rc)?;
        }
        Ok(())
    }

    fn complete(&mut self, id: usize, rc: c_int) -> Check {
        let op = self.ops.get_mut(id).ok_or(format!("completion of unknown op {id}"))?;
        ensure!(op.done.is_none(), "op {id} completed twice (first {:?}, now {rc})", op.done);
        let ok = match rc {
            0 => match op.kind {
                Kind::Fd { .. } => op.could_fire,
                _ => true,
            },
            ERROR_ABORTED => op.aborted,
            _ => false,
        };
        ensure!(ok, "op {id} ({:?}) completed with rc {rc} (aborted {}, could fire {})", op.kind, op.aborted, op.could_fire);
        if let Kind::Progress { count, aop: Aop::Callback, .. } = op.kind {
            ensure!(rc != 0 || op.progress == count, "op {id}: completed after {} of {count} progress callbacks", op.progress);
        }
        op.done = Some(rc);
        Ok(())
    }

    fn poke(&mut self, pipe: usize) {
        let _ = nix::unistd::write(&self.pipes[pipe].w, b"x");
        self.pipes[pipe].has_data = true;
        for op in &mut self.ops {
            if op.kind == (Kind::Fd { pipe }) && op.done.is_none() {
                op.could_fire = true;
            }
        }
    }

    /// Aborts every operation still registered on `pipe`'s read end, so
    /// that it may be closed (libxl: a registered fd stays open).
    fn release_pipe(&mut self, pipe: usize) -> Check {
        for id in 0..self.ops.len() {
            let op = &self.ops[id];
            if op.kind == (Kind::Fd { pipe }) && op.done.is_none() && !op.aborted {
                self.abort(id)?;
            }
        }
        Ok(())
    }

    /// Closes `pipe` and opens a new one in its place: the kernel hands
    /// back the lowest free numbers, normally the ones just closed.
    fn reopen(&mut self, pipe: usize) -> Check {
        self.release_pipe(pipe)?;
        // Close the old pipe before making its replacement, so that the
        // replacement takes its numbers: a stand-in holds the slot meanwhile.
        let stand_in = new_pipe()?;
        drop(std::mem::replace(&mut self.pipes[pipe], stand_in));
        self.pipes[pipe] = new_pipe()?;
        Ok(())
    }

    /// Registers a crowd of fds at once (an op on each of [`CROWD`] new
    /// pipes), then aborts those ops, takes their completions and closes
    /// the pipes: the library's pollers cross to its epoll instance and
    /// back, and every number the crowd used is free for reuse.
    fn crowd(&mut self) -> Check {
        let pipes = (0..CROWD).map(|_| new_pipe()).collect::<Result<Vec<_>, _>>()?;
        let how = |i: usize| libxl_asyncop_how { callback: None, u: libxl_asyncop_how_u { for_event: CROWD_BASE + i as u64 } };
        for (i, p) in pipes.iter().enumerate() {
            let mut h = how(i);
            // SAFETY: live ctx, an open fd, a valid how.
            let rc = unsafe { libxl_test_fdevent(self.ctx, p.r.as_raw_fd(), libc::POLLIN, &mut h) };
            ensure!(rc == 0, "crowd op {i}: start rc {rc}");
        }
        for i in 0..CROWD {
            let h = how(i);
            // SAFETY: as above.
            let rc = unsafe { libxl_ao_abort(self.ctx, &h) };
            ensure!(rc == 0, "crowd op {i}: abort rc {rc}");
        }
        if !self.event_hooks {
            unsafe extern "C" fn pred(ev: *const libxl_event, _user: *mut c_void) -> c_int {
                // SAFETY: a valid event for the call.
                c_int::from(unsafe { (*ev).for_user } >= CROWD_BASE)
            }
            for i in 0..CROWD {
                let mut ev = null_mut();
                // SAFETY: live ctx, valid out-pointer and predicate.
                let rc = unsafe { libxl_event_check(self.ctx, &mut ev, u64::MAX, Some(pred), null_mut()) };
                ensure!(rc == 0, "crowd op {i}: no completion queued after its abort ({rc})");
                take_event(self.ctx, ev);
            }
        }
        drop(pipes);
        Ok(())
    }

    /// Moves `pipe`'s read end to a dup'd number and closes the old one:
    /// the same file (and its data) under a new number, the old number
    /// free for reuse.
    fn dup_swap(&mut self, pipe: usize) -> Check {
        self.release_pipe(pipe)?;
        let old = self.pipes[pipe].r.as_raw_fd();
        // SAFETY: F_DUPFD_CLOEXEC on an fd we own; the result is a new fd
        // we take ownership of at once.
        let d = unsafe { libc::fcntl(old, libc::F_DUPFD_CLOEXEC, 0) };
        ensure!(d >= 0, "dup: {}", std::io::Error::last_os_error());
        // SAFETY: `d` was just returned by the kernel and is owned by nobody else.
        self.pipes[pipe].r = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(d) };
        Ok(())
    }

    fn drain(&mut self, pipe: usize) {
        let mut buf = [0u8; 64];
        while matches!(nix::unistd::read(self.pipes[pipe].r.as_raw_fd(), &mut buf), Ok(n) if n > 0) {}
        self.pipes[pipe].has_data = false;
    }

    fn check_queue(&mut self, pred_op: Option<usize>) -> c_int {
        unsafe extern "C" fn pred(ev: *const libxl_event, user: *mut c_void) -> c_int {
            // SAFETY: the library passes a valid event for the call.
            let fu = unsafe { (*ev).for_user };
            c_int::from(fu == user as u64)
        }
        let mut ev = null_mut();
        let (p, u) = match pred_op {
            Some(id) => (Some(pred as unsafe extern "C" fn(*const libxl_event, *mut c_void) -> c_int), (COMPLETE_BASE + id as u64) as *mut c_void),
            None => (None, null_mut()),
        };
        // SAFETY: live ctx, valid out-pointer, predicate with its user value.
        let rc = unsafe { libxl_event_check(self.ctx, &mut ev, u64::MAX, p, u) };
        if rc == 0 {
            take_event(self.ctx, ev);
        }
        rc
    }

    fn app_loop(&mut self, poll_ms: i32) -> Check {
        let mut fds = vec![libc::pollfd { fd: -1, events: 0, revents: 0 }; 2];
        let (mut n, mut t) = (fds.len() as c_int, -1);
        // SAFETY: live ctx; `fds` has room for `n` entries.
        let mut rc = unsafe { libxl_osevent_beforepoll(self.ctx, &mut n, fds.as_mut_ptr(), &mut t, tv_now()) };
        if rc == ERROR_BUFFERFULL {
            fds.resize(n as usize, libc::pollfd { fd: -1, events: 0, revents: 0 });
            t = -1;
            // SAFETY: as above, with the size the library asked for.
            rc = unsafe { libxl_osevent_beforepoll(self.ctx, &mut n, fds.as_mut_ptr(), &mut t, tv_now()) };
        }
        ensure!(rc == 0, "beforepoll: {rc}");
        let wait = if t < 0 { poll_ms } else { t.min(poll_ms) };
        // SAFETY: `n` valid pollfds.
        unsafe { libc::poll(fds.as_mut_ptr(), n as libc::nfds_t, wait) };
        // SAFETY: the array beforepoll filled, `n` entries.
        unsafe { libxl_osevent_afterpoll(self.ctx, n, fds.as_ptr(), tv_now()) };
        Ok(())
    }

    /// The application's side of the osevent hooks: report ready fds and
    /// due timeouts.
    fn hook_loop(&mut self) {
        let (fds, times) = rec(|r| {
            let now = now_us();
            let fds: Vec<AppFd> = r.fds.iter().copied().filter(|f| f.live && f.events != 0).collect();
            let mut times = Vec::new();
            for t in r.times.iter_mut().filter(|t| t.live && t.abs_us <= now) {
                t.live = false; // reported: the application forgets it
                times.push(*t);
            }
            (fds, times)
        });
        for f in fds {
            let revents = poll_one(f.fd, f.events);
            if revents != 0 {
                // SAFETY: live ctx; `for_libxl` is what the hook was given.
                unsafe { libxl_osevent_occurred_fd(self.ctx, f.for_libxl as *mut c_void, f.fd, f.events, revents) };
            }
        }
        for t in times {
            // SAFETY: as above.
            unsafe { libxl_osevent_occurred_timeout(self.ctx, t.for_libxl as *mut c_void) };
        }
    }

    fn set_event_hooks(&mut self, on: bool) {
        let hooks = libxl_event_hooks {
            event_occurs_mask: (1 << EV_OPERATION_COMPLETE) | (1 << EV_PROGRESS),
            event_occurs: Some(on_event),
            disaster: Some(on_disaster),
        };
        let quiet = libxl_event_hooks { event_occurs_mask: 0, event_occurs: None, disaster: Some(on_disaster) };
        let h = if on { &hooks } else { &quiet };
        // SAFETY: live ctx; the hooks are copied; `user` is the ctx, which
        // on_event uses to free events.
        unsafe { libxl_event_register_callbacks(self.ctx, h, self.ctx.cast()) };
        self.event_hooks = on;
    }

    fn abort(&mut self, id: usize) -> Check {
        let how = self.how(id, self.ops[id].mode);
        // SAFETY: live ctx, valid how.
        let rc = unsafe { libxl_ao_abort(self.ctx, &how) };
        // Judged against what was known before the call: the abort itself
        // completes the op (its callback runs, its event is queued).
        let op = &mut self.ops[id];
        let observed = op.done.is_some();
        match rc {
            0 => {
                ensure!(!op.aborted, "op {id}: second abort returned 0");
                ensure!(!observed, "op {id}: abort returned 0 after its completion was reported");
                op.aborted = true;
            }
            ERROR_ABORTED => ensure!(op.aborted, "op {id}: ERROR_ABORTED though never aborted"),
            // A for_event op may have completed with its event still queued.
            ERROR_NOTFOUND => ensure!(
                observed || op.mode == Mode::ForEvent,
                "op {id}: ERROR_NOTFOUND while still in progress"
            ),
            _ => return Err(format!("op {id}: abort returned {rc}")),
        }
        self.absorb()
    }

    fn bad_call(&mut self, which: u8) -> Check {
        let ctx = self.ctx;
        let mut ev = null_mut();
        let before = rec(|r| r.completions.len());
        // SAFETY: each call gets the live ctx and valid or NULL pointers;
        // the arguments are bad only in ways the library must check.
        let rc = unsafe {
            match which % 11 {
                0 => libxl_event_check(ctx, null_mut(), u64::MAX, None, null_mut()),
                1 => libxl_event_wait(ctx, null_mut(), u64::MAX, None, null_mut()),
                2 => libxl_test_fdevent(ctx, -1, libc::POLLIN, null_mut()),
                3 => libxl_test_fdevent(ctx, self.pipes[0].r.as_raw_fd(), 0x4000, null_mut()),
                4 => {
                    let mut n = -1;
                    let mut t = -1;
                    libxl_osevent_beforepoll(ctx, &mut n, null_mut(), &mut t, tv_now())
                }
                5 => libxl_test_progress(ctx, -1, 0, null(), null()),
                6 => libxl_event_wait(ctx, &mut ev, 0, None, null_mut()),
                7 => libxl_test_timeout(ctx, -5, null()),
                8 => {
                    libxl_osevent_afterpoll(ctx, -3, null(), tv_now());
                    libxl_osevent_occurred_fd(ctx, null_mut(), 0, libc::POLLIN, libc::POLLIN);
                    libxl_osevent_occurred_timeout(ctx, null_mut());
                    libxl_event_free(ctx, null_mut());
                    ERROR_INVAL
                }
                9 => {
                    let how = libxl_asyncop_how { callback: None, u: libxl_asyncop_how_u { for_event: 999_999 } };
                    let rc = libxl_ao_abort(ctx, &how);
                    if rc == ERROR_NOTFOUND { ERROR_INVAL } else { rc }
                }
                _ => {
                    let (mut n, mut t) = (0, -1);
                    let rc = libxl_osevent_beforepoll(ctx, &mut n, null_mut(), &mut t, tv_now());
                    if rc == ERROR_BUFFERFULL && n >= 1 { ERROR_INVAL } else { rc }
                }
            }
        };
        ensure!(rc == ERROR_INVAL, "bad call {} returned {rc}", which % 11);
        ensure!(ev.is_null(), "bad call {} wrote its output", which % 11);
        ensure!(rec(|r| r.completions.len()) == before, "bad call {} completed something", which % 11);
        Ok(())
    }

    fn step(&mut self, s: &Step) -> Check {
        match *s {
            Step::Start { .. } | Step::Sync { .. } if self.ops.len() >= MAX_OPS => {}
            Step::Start { kind, mode } => {
                let id = self.ops.len();
                let could_fire = matches!(kind, Kind::Fd { pipe } if self.pipes[pipe].has_data);
                self.ops.push(Op { kind, mode, aborted: false, could_fire, done: None, progress: 0 });
                let how = self.how(id, mode);
                let rc = self.start(id, kind, Some(how));
                ensure!(rc == 0, "start of op {id} {kind:?} {mode:?}: rc {rc}");
            }
            Step::Sync { kind } => {
                if let Kind::Fd { pipe } = kind {
                    if !self.pipes[pipe].has_data {
                        return Ok(()); // would wait forever, single-threaded
                    }
                }
                // Recorded as a callback-mode op whose callback is never
                // registered: aborting its key must find nothing.
                let id = self.ops.len();
                self.ops.push(Op { kind, mode: Mode::Callback, aborted: false, could_fire: true, done: None, progress: 0 });
                let rc = self.start(id, kind, None);
                self.absorb()?;
                self.complete(id, rc)?;
            }
            Step::Poke { pipe } => self.poke(pipe),
            Step::Drain { pipe } => self.drain(pipe),
            Step::Abort { op } => {
                if !self.ops.is_empty() {
                    let id = op % self.ops.len();
                    self.abort(id)?; // a synchronous op's key is never found
                }
            }
            Step::AbortNull => {
                // SAFETY: live ctx; NULL names the synchronous op.
                let rc = unsafe { libxl_ao_abort(self.ctx, null()) };
                ensure!(rc == ERROR_NOTFOUND, "abort(NULL) with no synchronous op: {rc}");
            }
            Step::CheckAny => {
                let rc = self.check_queue(None);
                ensure!(rc == 0 || rc == ERROR_NOT_READY, "event_check: {rc}");
            }
            Step::CheckOp { op } => {
                if !self.ops.is_empty() {
                    let rc = self.check_queue(Some(op % self.ops.len()));
                    ensure!(rc == 0 || rc == ERROR_NOT_READY, "event_check: {rc}");
                }
            }
            Step::WaitOp { op } => {
                if !self.ops.is_empty() {
                    let id = op % self.ops.len();
                    if self.ops[id].mode == Mode::ForEvent && !self.event_hooks && self.will_complete(id) {
                        self.wait_for(id)?;
                    }
                }
            }
            Step::AppLoop { poll_ms } => {
                if !self.setup.osevent_hooks {
                    self.app_loop(poll_ms)?;
                }
            }
            Step::HookLoop => {
                if self.setup.osevent_hooks {
                    self.hook_loop();
                }
            }
            Step::Forged { value, timeout } => {
                // SAFETY: live ctx; any for_libxl value is checked as a token.
                unsafe {
                    if timeout {
                        libxl_osevent_occurred_timeout(self.ctx, value as usize as *mut c_void);
                    } else {
                        libxl_osevent_occurred_fd(self.ctx, value as usize as *mut c_void, self.pipes[0].r.as_raw_fd(), libc::POLLIN, libc::POLLIN);
                    }
                }
            }
            Step::EventHooks { on } => self.set_event_hooks(on),
            Step::BadCall { which } => self.bad_call(which)?,
            Step::Reopen { pipe } => self.reopen(pipe)?,
            Step::DupSwap { pipe } => self.dup_swap(pipe)?,
            Step::Crowd => self.crowd()?,
            Step::Sleep => std::thread::sleep(std::time::Duration::from_millis(1)),
        }
        self.absorb()
    }

    fn wait_for(&mut self, id: usize) -> Check {
        unsafe extern "C" fn pred(ev: *const libxl_event, user: *mut c_void) -> c_int {
            // SAFETY: a valid event for the call.
            c_int::from(unsafe { (*ev).for_user } == user as u64)
        }
        let mut ev = null_mut();
        let t0 = std::time::Instant::now();
        // SAFETY: live ctx, valid out-pointer and predicate.
        let rc = unsafe { libxl_event_wait(self.ctx, &mut ev, u64::MAX, Some(pred), (COMPLETE_BASE + id as u64) as *mut c_void) };
        ensure!(rc == 0, "event_wait for op {id}: {rc}");
        // Every op here is sure to complete within a few ms (its pipe holds
        // data, or its timers are a few ms): well before the 1 s audit.
        let ms = t0.elapsed().as_millis();
        ensure!(ms < PROMPT_MS, "event_wait for op {id} ({:?}) took {ms} ms: not prompt", self.ops[id].kind);
        take_event(self.ctx, ev);
        Ok(())
    }

    /// Aborts everything still pending, collects every completion, checks
    /// that nothing is left, frees the ctx.
    fn finish(mut self) -> Check {
        for id in 0..self.ops.len() {
            if self.ops[id].done.is_none() && !self.ops[id].aborted {
                self.abort(id)?;
            }
        }
        for _ in 0..2000 {
            while self.check_queue(None) == 0 {}
            self.absorb()?;
            if self.ops.iter().all(|o| o.done.is_some()) {
                break;
            }
            if self.setup.osevent_hooks {
                self.hook_loop();
            } else {
                self.app_loop(1)?;
            }
            self.absorb()?;
        }
        for (id, op) in self.ops.iter().enumerate() {
            ensure!(op.done.is_some(), "op {id} ({:?}, {:?}, aborted {}) never completed", op.kind, op.mode, op.aborted);
            if let (Kind::Progress { count, aop: Aop::ForEvent | Aop::Callback, .. }, Some(rc)) = (op.kind, op.done) {
                ensure!(op.progress <= count, "op {id}: {} progress reports of {count}", op.progress);
                ensure!(rc != 0 || op.progress == count, "op {id}: {} progress reports of {count}", op.progress);
            }
        }
        ensure!(self.check_queue(None) == ERROR_NOT_READY, "events left in the queue");
        if self.setup.osevent_hooks {
            // Timeouts the library asked to fire "now" are reported back.
            self.hook_loop();
            let (live_fds, live_times, regs, deregs) = rec(|r| {
                (r.fds.iter().filter(|f| f.live).count(), r.times.iter().filter(|t| t.live).count(), r.fd_registers, r.fd_deregisters)
            });
            ensure!(live_fds == 0 && regs == deregs, "fd registrations leaked: {live_fds} live, {regs} registered, {deregs} deregistered");
            ensure!(live_times == 0, "{live_times} timeout registrations never fired or released");
        } else {
            let (mut n, mut t) = (0, -1);
            // SAFETY: live ctx; size query with no array.
            let rc = unsafe { libxl_osevent_beforepoll(self.ctx, &mut n, null_mut(), &mut t, tv_now()) };
            ensure!(rc == ERROR_BUFFERFULL && n == 1, "registrations leaked: beforepoll wants {n} entries (rc {rc})");
            ensure!(t == -1, "a timeout is still registered ({t} ms)");
        }
        // SAFETY: live ctx, no thread inside it; freed once.
        let rc = unsafe { libxl_ctx_free(self.ctx) };
        self.ctx = null_mut();
        ensure!(rc == 0, "libxl_ctx_free: {rc}");
        self.absorb()
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if !self.ctx.is_null() {
            // SAFETY: a live ctx of ours, abandoned after a failed check.
            unsafe { libxl_ctx_free(self.ctx) };
        }
    }
}

/// Runs the sequence `data` decodes to; `Err` describes the first
/// violated property.
pub fn run(data: &[u8]) -> Check {
    let (setup, steps) = decode(data);
    let mut r = Run::new(setup)?;
    for (i, s) in steps.iter().enumerate() {
        r.step(s).map_err(|e| format!("step {i} {s:?}: {e}"))?;
    }
    r.finish().map_err(|e| format!("at the end: {e}"))
}
