//! The child registry: every child process the library started and has
//! not reaped yet (libxl's `libxl__ev_child`), and the application's
//! childproc hooks.
//!
//! Invariants: a child is in the registry (and found by pid) from fork
//! until reaped; its waiter is an operation's callback, or — once killed
//! and deregistered — the (root) ao whose completion waits for the
//! reaping.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::io;

use super::{AoId, EvChild};
use crate::rc::Rc;
use crate::token::Slab;

/// `libxl_sigchld_owner`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ChldOwner {
    #[default]
    Libxl,
    Mainloop,
    LibxlAlways,
    LibxlAlwaysSelectiveReap,
}

impl ChldOwner {
    /// The enum value as C has it (`None` if it is not one).
    pub fn from_c(v: i32) -> Option<ChldOwner> {
        Some(match v {
            0 => ChldOwner::Libxl,
            1 => ChldOwner::Mainloop,
            2 => ChldOwner::LibxlAlways,
            3 => ChldOwner::LibxlAlwaysSelectiveReap,
            _ => return None,
        })
    }
}

/// The application's `libxl_childproc_hooks` function pointers, as the
/// core sees them (implemented by `src/ffi`).
pub trait ChildprocHooks: Send + Sync {
    fn has_fork_replacement(&self) -> bool;
    /// Called with the lock held, instead of `fork(2)`.
    fn fork_replacement(&self) -> io::Result<i32>;
    /// `None` if the application gave no `reaped_callback`; else its rc.
    /// Called with the lock released.
    fn reaped_callback(&self, pid: i32, status: i32) -> Option<Rc>;
}

/// What waits for a child.
pub enum Waiter<H> {
    /// An operation's child: its callback.
    Op(H),
    /// Killed and deregistered; its (root) ao waits for the reaping.
    Killed(Option<AoId>),
}

pub struct Child<H> {
    pub pid: i32,
    pub waiter: Waiter<H>,
}

pub struct ChildRegistry<H> {
    children: Slab<Child<H>>,
    by_pid: HashMap<i32, EvChild>,
}

impl<H> Default for ChildRegistry<H> {
    fn default() -> Self {
        ChildRegistry { children: Slab::new(), by_pid: HashMap::new() }
    }
}

impl<H> ChildRegistry<H> {
    pub fn len(&self) -> usize {
        self.children.len()
    }

    pub fn is_empty(&self) -> bool {
        self.children.is_empty()
    }

    pub fn insert(&mut self, pid: i32, waiter: Waiter<H>) -> EvChild {
        let ch = self.children.insert(Child { pid, waiter });
        self.by_pid.insert(pid, ch);
        ch
    }

    pub fn remove(&mut self, ch: EvChild) -> Option<Child<H>> {
        let c = self.children.remove(ch)?;
        if self.by_pid.get(&c.pid) == Some(&ch) {
            self.by_pid.remove(&c.pid);
        }
        Some(c)
    }

    pub fn get(&self, ch: EvChild) -> Option<&Child<H>> {
        self.children.get(ch)
    }

    pub fn by_pid(&self, pid: i32) -> Option<EvChild> {
        self.by_pid.get(&pid).copied()
    }

    /// Every child: (registration, pid).
    pub fn pids(&self) -> Vec<(EvChild, i32)> {
        self.children.iter().map(|(ch, c)| (ch, c.pid)).collect()
    }
}
