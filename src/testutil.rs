//! Shared helpers for the core's unit tests (`cfg(test)` only).
#![forbid(unsafe_code)]

use std::os::fd::OwnedFd;

use crate::egc::Ctx;
use crate::log::{Level, Logger};
use crate::sys::Backend;

/// A ctx with no logger (CRITICAL still reaches stderr), the default
/// backend, and every fd check's finding fatal (`LIBXL_TEST_AUDIT=fail`):
/// no unit test may pass because a check rescued a sleeper.
pub fn ctx() -> Ctx {
    let mut ctx = Ctx::new(Logger::new(None, Level::Critical)).expect("ctx");
    ctx.audit_fail = true;
    ctx
}

/// As [`ctx`], with the pollers' backend forced.
pub fn ctx_with(backend: Backend) -> Ctx {
    let mut ctx = ctx();
    ctx.backend = backend;
    ctx
}

/// A ctx for the tests about fds closed while registered (the
/// application's misuse, which the fd checks find and report).
pub fn ctx_misuse(backend: Backend) -> Ctx {
    let mut ctx = ctx_with(backend);
    ctx.audit_fail = false;
    ctx
}

/// A non-blocking close-on-exec pipe: (read, write).
pub fn pipe() -> (OwnedFd, OwnedFd) {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK).expect("pipe")
}

/// As [`pipe`], with the read end at a number no other test will be
/// handed: for tests that close a registered fd (see
/// `sys::poll::dup_out_of_the_way`).
pub fn pipe_out_of_the_way() -> (OwnedFd, OwnedFd) {
    use std::os::fd::AsFd;
    let (r, w) = pipe();
    (crate::sys::poll::dup_out_of_the_way(r.as_fd()), w)
}

pub fn poke(w: &OwnedFd) {
    nix::unistd::write(w, b"x").expect("write");
}
