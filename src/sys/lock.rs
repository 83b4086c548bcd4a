//! The ctx lock: one recursive pthread mutex, and the state it guards.
//!
//! libxl's ctx lock is a recursive `pthread_mutex_t` in `struct
//! libxl__ctx`; the rest of libxl takes it directly (`CTX_LOCK`). So the
//! library's state is guarded by such a mutex: its own in the standalone
//! library ([`Locked::new`]), or the C ctx's field when built into Xen's
//! libxl ([`Locked::with_mutex`]). One mechanism either way.
//!
//! Invariants:
//! * The value is reached only through a [`Level`], and a `Level` exists
//!   only on a thread that holds the mutex (it takes one recursion level
//!   and gives it back when dropped; it cannot leave its thread).
//! * Several `Level`s of one thread (re-entry from a callback) share the
//!   value through a `RefCell`: a borrow held across a re-entry is a
//!   panic, never two `&mut` at once.
//! * [`Level::unlocked`] releases every level the thread holds — ours, and
//!   the ones its C caller took (`foreign`) — and takes them back after,
//!   only while the value is not borrowed.
//! * `owner`/`depth` record which thread holds how many of *our* levels,
//!   so a thread can tell that it is inside already (C code's own levels
//!   are not counted: the C caller says how many it holds).
//! * `epoch` counts the levels taken by [`Locked::lock`]: every way into
//!   the guarded value. A thread that released the lock ([`Level::unlocked`],
//!   which takes it back without counting) and finds `epoch` unchanged knows
//!   nobody reached the value meanwhile.

use std::cell::{OnceCell, RefCell, RefMut, UnsafeCell};
use std::io;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// A recursive mutex: ours, or one that belongs to C.
enum Mutex {
    Own(Box<UnsafeCell<libc::pthread_mutex_t>>),
    Foreign(*mut libc::pthread_mutex_t),
}

impl Mutex {
    fn ptr(&self) -> *mut libc::pthread_mutex_t {
        match self {
            Mutex::Own(m) => m.get(),
            Mutex::Foreign(p) => *p,
        }
    }
}

pub struct Locked<T> {
    mutex: Mutex,
    /// The thread holding our levels (its [`thread_key`]), 0 if none.
    owner: AtomicUsize,
    /// How many of our levels that thread holds.
    depth: AtomicU32,
    /// Levels taken by `lock` so far (changed only with the mutex held).
    epoch: AtomicU64,
    value: RefCell<T>,
}

// SAFETY: the RefCell is touched only through a Level, which exists only on
// the thread holding the mutex; the mutex orders one holder's accesses
// before the next's. The raw mutex pointer is only passed to pthread calls,
// which are thread-safe.
unsafe impl<T: Send> Sync for Locked<T> {}
// SAFETY: as above; the value moves with the struct.
unsafe impl<T: Send> Send for Locked<T> {}

/// A word unique to each live thread: its `pthread_t`. No thread-local
/// storage (usable while the thread's thread-locals are being destroyed,
/// and cheap: in a shared library a thread-local costs a call).
pub fn thread_key() -> usize {
    // SAFETY: pthread_self has no preconditions and cannot fail.
    unsafe { libc::pthread_self() as usize }
}

impl<T> Locked<T> {
    /// `value` behind a new recursive mutex of our own.
    pub fn new(value: T) -> io::Result<Locked<T>> {
        // SAFETY: all-zero is a valid bit pattern for these plain C structs
        // before their init functions run.
        let m: Box<UnsafeCell<libc::pthread_mutex_t>> = Box::new(UnsafeCell::new(unsafe { std::mem::zeroed() }));
        // SAFETY: as above.
        let mut attr: libc::pthread_mutexattr_t = unsafe { std::mem::zeroed() };
        // SAFETY: `attr` and `m` are valid, exclusively owned objects; each
        // call is the documented init sequence for a recursive mutex.
        let r = unsafe {
            let mut r = libc::pthread_mutexattr_init(&mut attr);
            if r == 0 {
                r = libc::pthread_mutexattr_settype(&mut attr, libc::PTHREAD_MUTEX_RECURSIVE);
                if r == 0 {
                    r = libc::pthread_mutex_init(m.get(), &attr);
                }
                libc::pthread_mutexattr_destroy(&mut attr);
            }
            r
        };
        if r != 0 {
            return Err(io::Error::from_raw_os_error(r));
        }
        Ok(Locked { mutex: Mutex::Own(m), owner: AtomicUsize::new(0), depth: AtomicU32::new(0), epoch: AtomicU64::new(0), value: RefCell::new(value) })
    }

    /// `value` behind a recursive mutex that belongs to C (libxl's
    /// `ctx->lock`).
    ///
    /// # Safety
    /// `mutex` is an initialised recursive pthread mutex that stays valid,
    /// and is not destroyed, for as long as the returned value lives.
    pub unsafe fn with_mutex(mutex: *mut libc::pthread_mutex_t, value: T) -> Locked<T> {
        Locked {
            mutex: Mutex::Foreign(mutex),
            owner: AtomicUsize::new(0),
            depth: AtomicU32::new(0),
            epoch: AtomicU64::new(0),
            value: RefCell::new(value),
        }
    }

    /// Takes one level of the lock (blocking).
    pub fn lock(&self) -> Level<'_, T> {
        self.raw_lock();
        let me = thread_key();
        self.owner.store(me, Ordering::Relaxed);
        self.depth.fetch_add(1, Ordering::Relaxed);
        // A plain load and store: only the mutex holder writes it.
        self.epoch.store(self.epoch.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
        Level { l: self, _not_send: PhantomData }
    }

    /// Levels taken by [`Locked::lock`] so far (see the module comment).
    /// Meaningful to the holder of the mutex.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Relaxed)
    }

    /// How many of our levels this thread holds (0: none).
    pub fn held_here(&self) -> u32 {
        if self.owner.load(Ordering::Relaxed) == thread_key() {
            self.depth.load(Ordering::Relaxed)
        } else {
            0
        }
    }

    /// The value, for whoever owns the whole `Locked` (no lock needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }

    fn raw_lock(&self) {
        // SAFETY: the mutex is initialised and alive (new / with_mutex).
        let r = unsafe { libc::pthread_mutex_lock(self.mutex.ptr()) };
        assert_eq!(r, 0, "pthread_mutex_lock of the ctx lock failed");
    }

    fn raw_unlock(&self) {
        // SAFETY: as in raw_lock; this thread holds a level.
        let r = unsafe { libc::pthread_mutex_unlock(self.mutex.ptr()) };
        assert_eq!(r, 0, "pthread_mutex_unlock of the ctx lock failed");
    }
}

impl<T> Drop for Locked<T> {
    fn drop(&mut self) {
        if let Mutex::Own(m) = &self.mutex {
            // SAFETY: ours, initialised, and unlocked (no Level outlives
            // the Locked it borrows).
            unsafe { libc::pthread_mutex_destroy(m.get()) };
        }
    }
}

/// One level of the lock, held by this thread.
pub struct Level<'a, T> {
    l: &'a Locked<T>,
    _not_send: PhantomData<*const ()>,
}

impl<'a, T> Level<'a, T> {
    /// The guarded value. A second borrow while this one lives (a re-entry
    /// from a callback made while it was held) panics.
    pub fn value(&mut self) -> RefMut<'_, T> {
        self.l.value.borrow_mut()
    }

    /// This level with the value borrowed on demand.
    pub fn guard(self) -> Guard<'a, T> {
        Guard::new(self)
    }

    /// Runs `f` with the lock released: every level this thread holds
    /// (ours, and `foreign` levels its C caller took), then takes them all
    /// back. The value must not be borrowed meanwhile.
    pub fn unlocked<R>(&mut self, foreign: u32, f: impl FnOnce() -> R) -> R {
        assert!(self.l.value.try_borrow_mut().is_ok(), "the ctx lock released while its state is borrowed");
        let ours = self.l.depth.swap(0, Ordering::Relaxed);
        self.l.owner.store(0, Ordering::Relaxed);
        for _ in 0..ours + foreign {
            self.l.raw_unlock();
        }
        let r = f();
        for _ in 0..ours + foreign {
            self.l.raw_lock();
        }
        self.l.owner.store(thread_key(), Ordering::Relaxed);
        self.l.depth.store(ours, Ordering::Relaxed);
        r
    }

    /// The `Locked` this level is of.
    pub fn locked(&self) -> &'a Locked<T> {
        self.l
    }
}

impl<T> Drop for Level<'_, T> {
    fn drop(&mut self) {
        if self.l.depth.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.l.owner.store(0, Ordering::Relaxed);
        }
        self.l.raw_unlock();
    }
}

/// A level of the lock with the value borrowed on demand: how the
/// library's egc reaches its state. The borrow is taken at first use and
/// given up by [`Guard::release`] (before calling code that may take
/// another level and borrow the value itself: C callbacks), by
/// [`Guard::unlocked`], and always before the level goes (field order).
pub struct Guard<'a, T> {
    /// Declared first: dropped before the level.
    value: OnceCell<RefMut<'a, T>>,
    level: Level<'a, T>,
}

impl<'a, T> Guard<'a, T> {
    pub fn new(level: Level<'a, T>) -> Guard<'a, T> {
        Guard { value: OnceCell::new(), level }
    }

    pub fn get(&self) -> &T {
        self.value.get_or_init(|| self.level.l.value.borrow_mut())
    }

    pub fn get_mut(&mut self) -> &mut T {
        if self.value.get().is_none() {
            let v = self.level.l.value.borrow_mut();
            let _ = self.value.set(v);
        }
        self.value.get_mut().expect("borrowed just above")
    }

    /// Gives up the borrow (taken again at the next use).
    pub fn release(&mut self) {
        self.value.take();
    }

    /// As [`Level::unlocked`], the borrow given up first.
    pub fn unlocked<R>(&mut self, foreign: u32, f: impl FnOnce() -> R) -> R {
        self.release();
        self.level.unlocked(foreign, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn levels_nest_on_one_thread_and_exclude_others() {
        let l = Arc::new(Locked::new(0u32).unwrap());
        let mut a = l.lock();
        let mut b = l.lock(); // recursive: no deadlock
        assert_eq!(l.held_here(), 2);
        *b.value() += 1;
        drop(b);
        *a.value() += 1;
        let l2 = l.clone();
        let t = std::thread::spawn(move || {
            assert_eq!(l2.held_here(), 0, "another thread holds nothing");
            *l2.lock().value() += 10;
        });
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(*a.value(), 2, "the other thread waits for every level");
        drop(a);
        t.join().unwrap();
        assert_eq!(*l.lock().value(), 12);
        assert_eq!(l.held_here(), 0);
    }

    #[test]
    fn unlocked_releases_every_level_including_foreign_ones() {
        let l = Arc::new(Locked::new(0u32).unwrap());
        l.raw_lock(); // a level C code took (CTX_LOCK), not counted as ours
        let _outer = l.lock();
        let mut inner = l.lock();
        assert_eq!(l.held_here(), 2);
        let l2 = l.clone();
        let got = inner.unlocked(1, || {
            // every level released: another thread can take the lock
            std::thread::spawn(move || *l2.lock().value() += 1).join().unwrap();
            7
        });
        assert_eq!(got, 7);
        assert_eq!(l.held_here(), 2);
        assert_eq!(*inner.value(), 1);
        drop(inner);
        drop(_outer);
        l.raw_unlock();
    }

    /// The epoch tells a thread that took the lock back whether anyone
    /// reached the value while it was released.
    #[test]
    fn epoch_unchanged_means_nobody_took_the_lock_meanwhile() {
        let l = Arc::new(Locked::new(0u32).unwrap());
        let mut a = l.lock();
        let e0 = l.epoch();
        a.unlocked(0, || {});
        assert_eq!(l.epoch(), e0, "taking it back is not counted");
        let l2 = l.clone();
        a.unlocked(0, || std::thread::spawn(move || drop(l2.lock())).join().unwrap());
        assert_ne!(l.epoch(), e0, "another thread's level is counted");
        let e1 = l.epoch();
        drop(l.lock());
        assert_ne!(l.epoch(), e1, "so is a nested level (a re-entry)");
    }

    #[test]
    fn a_guard_gives_its_borrow_up_for_a_reentry() {
        let l = Locked::new(0u32).unwrap();
        let mut g = l.lock().guard();
        *g.get_mut() += 1;
        g.release();
        {
            let mut inner = l.lock().guard(); // a re-entry (C callback)
            *inner.get_mut() += 1;
        }
        assert_eq!(*g.get(), 2, "borrowed again at the next use");
    }

    #[test]
    #[should_panic(expected = "already borrowed")]
    fn a_borrow_held_across_a_reentry_is_caught() {
        let l = Locked::new(0u32).unwrap();
        let mut a = l.lock();
        let mut b = l.lock();
        let _x = a.value();
        let _y = b.value();
    }
}
