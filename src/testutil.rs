//! Shared helpers for the core's unit tests (`cfg(test)` only).
#![forbid(unsafe_code)]

use std::os::fd::OwnedFd;

use crate::ctx::Ctx;
use crate::log::{Level, Logger};

/// A ctx with no logger (CRITICAL still reaches stderr).
pub fn ctx() -> Ctx {
    Ctx::new(Logger::new(None, Level::Critical)).expect("ctx")
}

/// A non-blocking close-on-exec pipe: (read, write).
pub fn pipe() -> (OwnedFd, OwnedFd) {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK).expect("pipe")
}

pub fn poke(w: &OwnedFd) {
    nix::unistd::write(w, b"x").expect("write");
}
