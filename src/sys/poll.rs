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

/// Appends to `out` the index of every entry of `fds` with non-zero
/// `revents`. Scans the array as plain 64-bit words, 32 entries at a time,
/// so that a large set with few results costs little more than reading it.
pub fn ready_indices(fds: &[PollFd], out: &mut Vec<usize>) {
    const _: () = assert!(std::mem::size_of::<PollFd>() == 8);
    // SAFETY: `pollfd` is `#[repr(C)] { i32, i16, i16 }`: 8 bytes with no
    // padding, so the slice is `8 * len` initialised bytes; u8 needs no
    // alignment; the borrow keeps it alive and shared.
    let bytes: &[u8] = unsafe { std::slice::from_raw_parts(fds.as_ptr().cast::<u8>(), std::mem::size_of_val(fds)) };
    // `revents` is the top 16 bits of each entry read as a native word.
    let revents_of = |e: &[u8]| u64::from_ne_bytes(e.try_into().expect("8 bytes")) & REVENTS_MASK;
    for (c, chunk) in bytes.chunks(256).enumerate() {
        if chunk.chunks_exact(8).fold(0u64, |acc, e| acc | revents_of(e)) == 0 {
            continue;
        }
        for (i, e) in chunk.chunks_exact(8).enumerate() {
            if revents_of(e) != 0 {
                out.push(c * 32 + i);
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
    fn ready_indices_finds_exactly_the_entries_with_revents() {
        let mut fds: Vec<PollFd> = (0..1000).map(|i| crate::sys::pollfd(i, crate::sys::POLLIN)).collect();
        for &i in &[0usize, 31, 32, 33, 500, 999] {
            fds[i].revents = if i % 2 == 0 { crate::sys::POLLIN } else { crate::sys::POLLNVAL };
        }
        fds[7].revents = -1; // all bits, including the sign bit
        let mut out = Vec::new();
        ready_indices(&fds, &mut out);
        assert_eq!(out, vec![0, 7, 31, 32, 33, 500, 999]);
        out.clear();
        ready_indices(&fds[..0], &mut out);
        assert!(out.is_empty());
    }
}
