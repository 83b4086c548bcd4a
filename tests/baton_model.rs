//! Exhaustive model check of the baton protocol (issue 5).
//!
//! Checker: stateright, breadth-first over every interleaving. Why
//! stateright and not loom or shuttle: every change to poller state happens
//! under the ctx lock, so the protocol *is* a state machine whose steps are
//! whole critical sections (enter, add an osevent, make a set and sleep, be
//! woken, leave); what must be explored is the order of those steps across
//! threads, plus when sleepers wake. loom and shuttle explore interleavings
//! of individual atomic operations and need their own primitives in place
//! of `poll(2)` on pipes; stateright checks exactly the step order, and
//! reports a shortest counterexample.
//!
//! The model drives the library's own `Pollers` (the same code the library
//! runs: `get`, `put`, `note_osevent_added`, `set_made`, `baton_pass`,
//! `drain`), instantiated with a wake mechanism that does nothing because
//! `Pollers` already records a pending wake (`is_woken`).
//!
//! Property **unstale liveness**: in every state where no thread holds the
//! lock and some thread sleeps on a set the library gave it (an internal
//! poller, or the application between beforepoll and afterpoll), at least
//! one sleeper's set is up to date, or a wake is pending for it.
//! Negative control: the same model with baton passing switched off (what
//! `LIBXL_TEST_NO_BATON=1` does in the library) must yield a counterexample.

use std::hash::{Hash, Hasher};
use std::io;

use stateright::{Checker, Model, Property};
use xenlight::reg::poller::{PollerId, Pollers, WakeFd};

/// A wake mechanism that does nothing (the model reads `is_woken`).
#[derive(Clone, Debug)]
struct NullWake;

impl WakeFd for NullWake {
    fn open() -> io::Result<Self> {
        Ok(NullWake)
    }
    fn wake(&self) -> io::Result<()> {
        Ok(())
    }
    fn drain(&self) -> io::Result<()> {
        Ok(())
    }
    fn read_fd(&self) -> i32 {
        -1
    }
}

/// A library thread (a synchronous operation or `libxl_event_wait`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Th {
    Outside,
    /// Holds the lock; may have taken a poller.
    InLib(Option<PollerId>),
    /// Sleeps on a set made at `version`.
    Asleep(PollerId, u32),
}

/// The application's loop thread (beforepoll/poll/afterpoll).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum App {
    Outside,
    InLib,
    Asleep(u32),
}

#[derive(Clone)]
struct S {
    pollers: Pollers<NullWake>,
    threads: Vec<Th>,
    app: App,
    /// Bumped by every osevent added: a set is up to date iff it was made
    /// at the current version.
    version: u32,
    adds_left: u32,
}

impl S {
    fn lock_held(&self) -> bool {
        self.app == App::InLib || self.threads.iter().any(|t| matches!(t, Th::InLib(_)))
    }
    /// The poller state that matters, for state identity.
    fn key(&self) -> impl Hash + Eq + '_ {
        let pol: Vec<(PollerId, bool, bool)> = self
            .pollers
            .active_ids()
            .iter()
            .map(|&id| (id, self.pollers.get_ref(id).osevents_added, self.pollers.is_woken(id)))
            .collect();
        (pol, &self.threads, &self.app, self.version, self.adds_left)
    }
}

impl std::fmt::Debug for S {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pol: Vec<String> = self
            .pollers
            .active_ids()
            .iter()
            .map(|&id| format!("{id}{}{}", if self.pollers.get_ref(id).osevents_added { " stale" } else { "" },
                if self.pollers.is_woken(id) { " woken" } else { "" }))
            .collect();
        write!(f, "threads={:?} app={:?} version={} pollers={pol:?}", self.threads, self.app, self.version)
    }
}

impl PartialEq for S {
    fn eq(&self, o: &S) -> bool {
        self.key() == o.key()
    }
}
impl Eq for S {}
impl Hash for S {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.key().hash(h)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum A {
    Enter(usize),
    GetPoller(usize),
    Add(usize),
    Sleep(usize),
    Wake(usize),
    Leave(usize),
    AppBeforepollAndSleep,
    AppWake,
    AppAdd,
    AppLeave,
}

struct BatonModel {
    threads: usize,
    adds: u32,
    baton: bool,
}

impl BatonModel {
    fn leave(&self, s: &mut S) {
        if self.baton {
            s.pollers.baton_pass().unwrap();
        }
    }
}

impl Model for BatonModel {
    type State = S;
    type Action = A;

    fn init_states(&self) -> Vec<S> {
        let mut pollers = Pollers::default();
        pollers.init_app().unwrap();
        vec![S { pollers, threads: vec![Th::Outside; self.threads], app: App::Outside, version: 0, adds_left: self.adds }]
    }

    fn actions(&self, s: &S, acts: &mut Vec<A>) {
        let locked = s.lock_held();
        for (i, t) in s.threads.iter().enumerate() {
            match t {
                Th::Outside if !locked => acts.push(A::Enter(i)),
                Th::InLib(p) => {
                    if s.adds_left > 0 {
                        acts.push(A::Add(i));
                    }
                    match p {
                        None => acts.push(A::GetPoller(i)),
                        Some(_) => acts.push(A::Sleep(i)),
                    }
                    acts.push(A::Leave(i));
                }
                // A sleeper wakes if a wake is pending, or (nondeterministically)
                // if its set is up to date and something on it happens.
                Th::Asleep(p, v) if !locked && (s.pollers.is_woken(*p) || *v == s.version) => acts.push(A::Wake(i)),
                _ => {}
            }
        }
        let app = s.pollers.app();
        match s.app {
            App::Outside if !locked => acts.push(A::AppBeforepollAndSleep),
            App::InLib => {
                if s.adds_left > 0 {
                    acts.push(A::AppAdd);
                }
                acts.push(A::AppLeave);
            }
            App::Asleep(v) if !locked && (s.pollers.is_woken(app) || v == s.version) => acts.push(A::AppWake),
            _ => {}
        }
    }

    fn next_state(&self, s: &S, a: A) -> Option<S> {
        let mut s = s.clone();
        let app = s.pollers.app();
        let add = |s: &mut S| {
            s.version += 1;
            s.adds_left -= 1;
            s.pollers.note_osevent_added();
        };
        match a {
            A::Enter(i) => s.threads[i] = Th::InLib(None),
            A::GetPoller(i) => s.threads[i] = Th::InLib(Some(s.pollers.get().unwrap())),
            A::Add(_) | A::AppAdd => add(&mut s),
            A::Sleep(i) => {
                let Th::InLib(Some(p)) = s.threads[i] else { unreachable!() };
                s.pollers.set_made(p, false);
                s.pollers.set_sleeping(p, true);
                s.threads[i] = Th::Asleep(p, s.version);
            }
            A::Wake(i) => {
                let Th::Asleep(p, _) = s.threads[i] else { unreachable!() };
                s.pollers.set_sleeping(p, false);
                s.pollers.drain(p).unwrap();
                s.threads[i] = Th::InLib(Some(p));
            }
            A::Leave(i) => {
                if let Th::InLib(Some(p)) = s.threads[i] {
                    s.pollers.put(p);
                }
                s.threads[i] = Th::Outside;
                self.leave(&mut s);
            }
            A::AppBeforepollAndSleep => {
                s.pollers.set_made(app, false);
                s.pollers.app_armed = true;
                s.app = App::Asleep(s.version);
                self.leave(&mut s); // beforepoll's egc passes the baton too
            }
            A::AppWake => {
                s.pollers.app_armed = false;
                s.pollers.drain(app).unwrap();
                s.app = App::InLib;
            }
            A::AppLeave => {
                s.app = App::Outside;
                self.leave(&mut s);
            }
        }
        Some(s)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![Property::always("unstale liveness", |_, s: &S| {
            if s.lock_held() {
                return true; // the lock holder is awake and will pass the baton
            }
            let mut sleepers = Vec::new();
            for t in &s.threads {
                if let Th::Asleep(p, v) = t {
                    sleepers.push((*p, *v));
                }
            }
            if let App::Asleep(v) = s.app {
                sleepers.push((s.pollers.app(), v));
            }
            sleepers.is_empty() || sleepers.iter().any(|&(p, v)| v == s.version || s.pollers.is_woken(p))
        })]
    }
}

fn check(threads: usize, adds: u32, baton: bool) -> (bool, usize) {
    let checker = BatonModel { threads, adds, baton }.checker().spawn_bfs().join();
    let found = checker.discovery("unstale liveness").is_some();
    if found && baton {
        eprintln!("counterexample: {:#?}", checker.discovery("unstale liveness").map(|p| p.into_actions()));
    }
    (found, checker.unique_state_count())
}

#[test]
fn unstale_liveness_holds_in_every_interleaving_two_threads() {
    let (violated, states) = check(2, 3, true);
    assert!(!violated);
    assert!(states > 100, "the model explored {states} states");
}

#[test]
fn unstale_liveness_holds_in_every_interleaving_three_threads() {
    let (violated, states) = check(3, 4, true);
    assert!(!violated);
    assert!(states > 100_000, "the model explored {states} states");
}

#[test]
fn negative_control_without_the_baton_the_checker_finds_a_stale_sleeper() {
    let (violated, _) = check(2, 1, false);
    assert!(violated, "with baton passing off the property must fail");
    let checker = BatonModel { threads: 2, adds: 1, baton: false }.checker().spawn_bfs().join();
    let path = checker.discovery("unstale liveness").expect("counterexample");
    let acts = path.into_actions();
    assert!(acts.contains(&A::Add(0)) || acts.contains(&A::Add(1)) || acts.contains(&A::AppAdd));
}

/// The explored space grows with the threads and osevents modelled: a
/// model that stopped exploring (a pruned action, a state that no longer
/// changes) would show here as a flat count.
#[test]
fn the_state_space_grows_with_threads_and_osevents() {
    let (_, two) = check(2, 2, true);
    let (_, two_more_adds) = check(2, 3, true);
    let (_, three) = check(3, 2, true);
    assert!(two_more_adds > two, "more osevents, more states ({two} -> {two_more_adds})");
    assert!(three > 10 * two, "a third thread multiplies the states ({two} -> {three})");
}
