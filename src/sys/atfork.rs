//! The "no forking" lock: process-wide state that `fork(2)` must never
//! copy half-updated.
//!
//! A mutex held by some thread when another thread forks stays locked for
//! ever in the child (the holder does not exist there). The child-process
//! machinery keeps a little process-wide state (the SIGCHLD disposition we
//! saved, which ctx owns which pid), and a child that calls
//! `libxl_postfork_child_noexec` and then uses libxl again needs it
//! consistent. So that state is only touched while holding [`lock`]'s
//! guard, and `pthread_atfork` handlers take the same lock around every
//! `fork()` in the process: a fork waits until no thread is inside.
//!
//! Rules:
//! * Never fork (or call anything that forks) while holding a
//!   [`ForkGuard`]: the prepare handler would wait for ourselves.
//! * [`ForkSafe`] data can only be reached with a guard in hand, so its
//!   inner mutex is never held across a fork either.
//! * The handlers are registered the first time the lock is taken (while
//!   holding it), as libxl does; forks before that find nothing to protect.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, Ordering};

struct RawLock(UnsafeCell<libc::pthread_mutex_t>);

// SAFETY: a pthread mutex is made to be shared between threads; we only
// ever pass its address to pthread_mutex_lock/unlock.
unsafe impl Sync for RawLock {}

static NO_FORKING: RawLock = RawLock(UnsafeCell::new(libc::PTHREAD_MUTEX_INITIALIZER));
/// Written only while holding `NO_FORKING`.
static HANDLERS_REGISTERED: AtomicBool = AtomicBool::new(false);

fn raw_lock() {
    // SAFETY: NO_FORKING is a statically initialised mutex that lives for
    // the whole program.
    let r = unsafe { libc::pthread_mutex_lock(NO_FORKING.0.get()) };
    assert_eq!(r, 0, "pthread_mutex_lock on the no-forking lock");
}

fn raw_unlock() {
    // SAFETY: as above; callers hold the lock (a guard, or the atfork
    // prepare handler that took it on this thread).
    let r = unsafe { libc::pthread_mutex_unlock(NO_FORKING.0.get()) };
    debug_assert_eq!(r, 0);
}

extern "C" fn atfork_prepare() {
    raw_lock();
}

extern "C" fn atfork_release() {
    raw_unlock();
}

/// Proof that this thread holds the no-forking lock. Not `Send`: it must
/// be released by the thread that took it.
pub struct ForkGuard {
    _not_send: std::marker::PhantomData<*const ()>,
}

/// Takes the no-forking lock (registering the atfork handlers on first use).
pub fn lock() -> ForkGuard {
    raw_lock();
    if !HANDLERS_REGISTERED.load(Ordering::Relaxed) {
        // SAFETY: the three handlers are plain functions with no
        // preconditions; pthread_atfork only records them.
        let r = unsafe { libc::pthread_atfork(Some(atfork_prepare), Some(atfork_release), Some(atfork_release)) };
        // Only ENOMEM is possible; without the handlers a fork can still
        // copy a held lock, which is the pre-existing (libxl) situation.
        HANDLERS_REGISTERED.store(r == 0, Ordering::Relaxed);
    }
    ForkGuard { _not_send: std::marker::PhantomData }
}

/// Takes the no-forking lock for C code that releases it in another call
/// (libxl's `libxl__carefd_begin` ... `libxl__carefd_unlock`); same thread.
pub fn lock_for_c() {
    std::mem::forget(lock());
}

/// Releases a [`lock_for_c`].
///
/// # Safety
/// This thread holds the lock through [`lock_for_c`].
pub unsafe fn unlock_for_c() {
    raw_unlock();
}

impl Drop for ForkGuard {
    fn drop(&mut self) {
        raw_unlock();
    }
}

/// Data that may only be touched under the no-forking lock.
pub struct ForkSafe<T> {
    inner: parking_lot::Mutex<T>,
}

impl<T> ForkSafe<T> {
    pub const fn new(v: T) -> ForkSafe<T> {
        ForkSafe { inner: parking_lot::const_mutex(v) }
    }

    /// The data, for as long as `guard` is held. The inner mutex is never
    /// contended: every user holds the no-forking lock first.
    pub fn with<'a>(&'a self, _guard: &'a ForkGuard) -> parking_lot::MutexGuard<'a, T> {
        self.inner.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static COUNTER: ForkSafe<u32> = ForkSafe::new(0);

    #[test]
    fn fork_safe_data_is_reached_through_the_guard() {
        let g = lock();
        *COUNTER.with(&g) += 1;
        assert!(*COUNTER.with(&g) >= 1);
        drop(g);
        // The lock is free again (a second take does not deadlock).
        drop(lock());
    }
}
