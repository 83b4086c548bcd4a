//! Differential test of the pollers' two ways to sleep: the same random
//! sequence of fd registrations, modifications, deregistrations, closes,
//! reopenings of the same numbers, dups and readiness changes is applied
//! to three ctxs — poll sets forced, the epoll instance forced, and the
//! default (which switches between them as the number of fds crosses the
//! threshold) — on the *same* pipes, and every loop turn must dispatch the
//! same callbacks with the same revents in each.
//!
//! Closes here are libxl-legal (an fd is closed only with nothing
//! registered on it). The application closing a registered fd is misuse
//! whose outcome depends on who takes the number next (the library itself
//! may, for a new epoll instance); it has its own tests per backend
//! (`ev::fd`, `poller::sleep`).
#![forbid(unsafe_code)]

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::reg::ao::AoHow;
use crate::reg::AoId;
use crate::egc::Egc;
use crate::reg::EvFd;
use crate::sys::{Backend, POLLIN, POLLOUT};
use crate::testutil;

/// What one ctx's callbacks saw in one turn: (registration label, revents).
type Seen = Arc<Mutex<Vec<(usize, i16)>>>;

struct Slot {
    r: OwnedFd,
    w: OwnedFd,
}

/// One registration, in every ctx.
struct Reg {
    slot: usize,
    fd: i32,
    evs: Vec<EvFd>,
}

struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n.max(1)
    }
}

fn new_slot() -> Slot {
    let (r, w) = testutil::pipe();
    Slot { r, w }
}

/// One turn of each ctx's loop; every turn ends by a 0 ms timer, so none
/// blocks. Returns what each ctx's callbacks saw, sorted (the order of
/// results differs between poll and epoll; each fd is dispatched once a
/// turn either way).
fn turn(egcs: &mut [Egc<'_>], pids: &[crate::reg::poller::PollerId], aos: &[AoId], seen: &[Seen]) -> Vec<Vec<(usize, i16)>> {
    let mut out = Vec::new();
    for (i, egc) in egcs.iter_mut().enumerate() {
        egc.ev_time_register_rel(aos[i], 0, Box::new(|_, _, _| {})).unwrap();
        egc.eventloop_iteration(pids[i]).unwrap();
        let mut v = std::mem::take(&mut *seen[i].lock());
        v.sort_unstable();
        out.push(v);
    }
    out
}

fn run_sequence(seed: u64, steps: usize) {
    let backends = [Backend::Poll, Backend::Epoll, Backend::Auto];
    let ctxs: Vec<_> = backends.iter().map(|&b| testutil::ctx_misuse(b)).collect();
    let mut egcs: Vec<Egc<'_>> = ctxs.iter().map(|c| Egc::new(c, "test")).collect();
    let pids: Vec<_> = egcs.iter_mut().map(|e| e.st().pollers.get().unwrap()).collect();
    let aos: Vec<_> = egcs.iter_mut().map(|e| e.ao_create(AoHow::ForEvent(1), 0).unwrap()).collect();
    let seen: Vec<Seen> = (0..ctxs.len()).map(|_| Seen::default()).collect();
    let mut rng = Lcg(seed);
    let nslots = 1 + rng.next(60);
    let mut slots: Vec<Slot> = (0..nslots).map(|_| new_slot()).collect();
    let mut regs: Vec<Option<Reg>> = Vec::new();
    let mut log = Vec::new();
    for step in 0..steps {
        let live_on = |regs: &[Option<Reg>], s: usize| regs.iter().flatten().filter(|r| r.slot == s).count();
        match rng.next(9) {
            0 | 1 => {
                let s = rng.next(nslots);
                let events = [POLLIN, POLLOUT, POLLIN | POLLOUT][rng.next(3)];
                // The read end, or now and then the write end.
                let fd = if rng.next(4) == 0 { slots[s].w.as_raw_fd() } else { slots[s].r.as_raw_fd() };
                let label = regs.len();
                let evs = egcs
                    .iter_mut()
                    .zip(&seen)
                    .map(|(e, sn)| {
                        let sn = sn.clone();
                        e.ev_fd_register(None, fd, events, Box::new(move |_, _, _, _, rev| sn.lock().push((label, rev))))
                            .unwrap()
                    })
                    .collect();
                regs.push(Some(Reg { slot: s, fd, evs }));
                log.push(format!("register #{label} fd {fd} {events:#x}"));
            }
            2 => {
                let live: Vec<usize> = (0..regs.len()).filter(|&i| regs[i].is_some()).collect();
                if live.is_empty() {
                    continue;
                }
                let i = live[rng.next(live.len())];
                let r = regs[i].as_mut().unwrap();
                let events = [0, POLLIN, POLLOUT, POLLIN | POLLOUT][rng.next(4)];
                for (e, &ev) in egcs.iter_mut().zip(&r.evs) {
                    e.ev_fd_modify(ev, events).unwrap();
                }
                log.push(format!("modify #{i} fd {} {events:#x}", r.fd));
            }
            3 => {
                let live: Vec<usize> = (0..regs.len()).filter(|&i| regs[i].is_some()).collect();
                if live.is_empty() {
                    continue;
                }
                let i = live[rng.next(live.len())];
                let r = regs[i].take().unwrap();
                for (e, &ev) in egcs.iter_mut().zip(&r.evs) {
                    e.ev_fd_deregister(ev);
                }
                log.push(format!("deregister #{i} fd {}", r.fd));
            }
            4 => {
                // Close and reopen: the new pipe takes the lowest free
                // numbers, normally the ones just closed. Only with nothing
                // registered on it (libxl: a registered fd stays open).
                let s = rng.next(nslots);
                if live_on(&regs, s) > 0 {
                    continue;
                }
                let stand_in = new_slot();
                drop(std::mem::replace(&mut slots[s], stand_in));
                slots[s] = new_slot();
                log.push(format!("reopen slot {s}: fds {} {}", slots[s].r.as_raw_fd(), slots[s].w.as_raw_fd()));
            }
            5 => {
                // Dup then close: the same file under a new number; the old
                // number free for the next pipe.
                let s = rng.next(nslots);
                if live_on(&regs, s) > 0 {
                    continue;
                }
                let d = slots[s].r.try_clone().unwrap(); // F_DUPFD_CLOEXEC
                log.push(format!("dup slot {s}: fd {} to fd {}", slots[s].r.as_raw_fd(), d.as_raw_fd()));
                slots[s].r = d;
            }
            6 | 7 => {
                let s = rng.next(nslots);
                let _ = nix::unistd::write(&slots[s].w, b"x");
                log.push(format!("poke slot {s}"));
            }
            8 => {
                let s = rng.next(nslots);
                let mut buf = [0u8; 256];
                while matches!(nix::unistd::read(slots[s].r.as_raw_fd(), &mut buf), Ok(n) if n > 0) {}
                log.push(format!("drain slot {s}"));
            }
            _ => {}
        }
        let seen_now = turn(&mut egcs, &pids, &aos, &seen);
        compare(&seen_now, seed, step, &log);
    }
    for r in regs.into_iter().flatten() {
        for (e, &ev) in egcs.iter_mut().zip(&r.evs) {
            e.ev_fd_deregister(ev);
        }
    }
    for (e, &ao) in egcs.iter_mut().zip(&aos) {
        e.ao_complete(ao, 0);
    }
}

fn compare(seen: &[Vec<(usize, i16)>], seed: u64, step: usize, log: &[String]) {
    for (i, s) in seen.iter().enumerate().skip(1) {
        if *s != seen[0] {
            let tail: Vec<&String> = log.iter().rev().take(12).rev().collect();
            panic!(
                "seed {seed} step {step}: backend #{i} dispatched {s:?}, poll sets dispatched {:?}\nlast steps: {tail:#?}",
                seen[0]
            );
        }
    }
}

#[test]
fn poll_and_epoll_dispatch_the_same_callbacks_under_fd_number_reuse() {
    for seed in 0..60u64 {
        run_sequence(seed * 7919 + 1, 250);
    }
}
