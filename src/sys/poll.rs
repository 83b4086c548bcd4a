//! `poll(2)`: the blocking sleep of a poller, the zero-timeout re-check
//! made before an fd callback runs, and an "is this fd open" probe used to
//! refuse closed fds with `ERROR_INVAL`.

use std::io;

use super::{cvt, PollFd};

/// Sleeps until an fd in `fds` is ready or `timeout_ms` passes (negative:
/// no limit). Returns how many entries have non-zero `revents`. `EINTR` is
/// returned to the caller, which simply goes round its loop again.
pub fn poll(fds: &mut [PollFd], timeout_ms: i32) -> io::Result<usize> {
    let n = fds.len() as libc::nfds_t;
    // SAFETY: `fds` is a valid, exclusively borrowed slice of `n` pollfds,
    // which is all poll(2) requires.
    let r = cvt(unsafe { libc::poll(fds.as_mut_ptr(), n, timeout_ms) })?;
    Ok(r as usize)
}

/// Polls one fd without sleeping and returns its current `revents` for
/// `events` (plus whatever the kernel always reports: ERR, HUP, NVAL).
/// `EINTR` is retried; any other failure reads as "nothing ready".
pub fn recheck(fd: i32, events: i16) -> i16 {
    let mut one = [super::pollfd(fd, events)];
    loop {
        match poll(&mut one, 0) {
            Ok(_) => return one[0].revents,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return 0,
        }
    }
}

/// True if `fd` names an open file description in this process.
pub fn fd_is_open(fd: i32) -> bool {
    if fd < 0 {
        return false;
    }
    // SAFETY: F_GETFD only reads the descriptor flags of an fd number;
    // any integer is an acceptable argument.
    let r = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    r != -1
}

/// Test aid: a close-on-exec dup of `fd` at a number no other test of
/// this process will be handed (well above the lowest free numbers the
/// kernel gives out), so that a test may close it while registered
/// without another thread reusing the number meanwhile.
#[cfg(test)]
pub fn dup_out_of_the_way(fd: std::os::fd::BorrowedFd<'_>) -> std::os::fd::OwnedFd {
    use std::os::fd::{AsRawFd, FromRawFd};
    use std::sync::atomic::{AtomicI32, Ordering};
    static NEXT: AtomicI32 = AtomicI32::new(0);
    let mut lim = libc::rlimit { rlim_cur: 1024, rlim_max: 1024 };
    // SAFETY: a valid out-pointer.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    let min = (lim.rlim_cur.min(1 << 20) / 2) as i32 + NEXT.fetch_add(1, Ordering::Relaxed) % 256;
    // SAFETY: F_DUPFD_CLOEXEC only reads `fd`'s number; the result is a
    // new fd that nobody else owns, which we take at once.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min) };
    assert!(r >= 0, "F_DUPFD_CLOEXEC: {}", io::Error::last_os_error());
    // SAFETY: as above.
    unsafe { std::os::fd::OwnedFd::from_raw_fd(r) }
}

/// Calls `f` with the index of every entry of `fds` with non-zero
/// `revents`, in order. Each entry is read as one 64-bit word, 32 entries
/// at a time, OR-ed together first, so a large set with few results costs
/// little more than reading it (about two instructions an entry). An array
/// that is not 8-byte aligned (allowed: `pollfd` needs only 4) takes a
/// slower entry-by-entry path.
pub fn for_each_ready(fds: &[PollFd], mut f: impl FnMut(usize)) {
    const _: () = assert!(std::mem::size_of::<PollFd>() == 8);
    const CHUNK: usize = 32;
    if fds.as_ptr().cast::<u64>().is_aligned() {
        // SAFETY: `pollfd` is `#[repr(C)] { i32, i16, i16 }`: 8 bytes with
        // no padding, so entry `i` is the initialised, 8-aligned u64 at
        // index `i`; the borrow keeps the array alive and unchanged.
        let words: &[u64] = unsafe { std::slice::from_raw_parts(fds.as_ptr().cast::<u64>(), fds.len()) };
        for (c, chunk) in words.chunks(CHUNK).enumerate() {
            if chunk.iter().fold(0, |acc, w| acc | w) & REVENTS_MASK == 0 {
                continue;
            }
            for (i, w) in chunk.iter().enumerate() {
                if w & REVENTS_MASK != 0 {
                    f(c * CHUNK + i);
                }
            }
        }
    } else {
        for (i, e) in fds.iter().enumerate() {
            if e.revents != 0 {
                f(i);
            }
        }
    }
}

/// The bits of a `pollfd` read as one native 64-bit word that hold `revents`.
const REVENTS_MASK: u64 = if cfg!(target_endian = "little") { 0xffff << 48 } else { 0xffff };

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn for_each_ready_finds_exactly_the_entries_with_revents() {
        let mut fds: Vec<PollFd> = (0..1000).map(|i| crate::sys::pollfd(i, crate::sys::POLLIN)).collect();
        for &i in &[0usize, 31, 32, 33, 500, 999] {
            fds[i].revents = if i % 2 == 0 { crate::sys::POLLIN } else { crate::sys::POLLNVAL };
        }
        fds[7].revents = -1; // all bits, including the sign bit
        let ready = |fds: &[PollFd]| {
            let mut out = Vec::new();
            for_each_ready(fds, |i| out.push(i));
            out
        };
        assert_eq!(ready(&fds), vec![0, 7, 31, 32, 33, 500, 999]);
        assert!(ready(&fds[..0]).is_empty());
        assert_eq!(ready(&fds[..32]), vec![0, 7, 31], "a partial last chunk");
        // The app's array need only be aligned for i32.
        let mut words = vec![0u32; 2 * 300 + 1];
        let tail = &mut words[1..];
        assert_ne!(tail.as_ptr() as usize % 8, 0, "the view starts off an 8-byte boundary");
        // SAFETY: 600 initialised u32s, 4-aligned, viewed as 300 pollfds
        // (i32 alignment, 8 bytes each, every bit pattern valid).
        let odd: &mut [PollFd] = unsafe { std::slice::from_raw_parts_mut(tail.as_mut_ptr().cast(), 300) };
        odd[299].revents = crate::sys::POLLHUP;
        assert_eq!(ready(odd), vec![299]);
    }
}
