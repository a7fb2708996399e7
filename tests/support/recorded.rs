//! A recorded run on a cluster ([`Run`]: its nodes, clock, process ids and stop flag), its
//! statistics per phase ([`PhaseStats`]: requests by what their answer tells), the final reads
//! that end it after healing, and two compare-and-set workloads (DESIGN §10) with one client
//! per node, run until the run stops or for a number of rounds, with their checks. The fault
//! test runs them under its nemeses:
//!
//! * **racing creates**: in each round every client sends create-if-absent with a value of its
//!   own on the same fresh key, at once (a barrier), through its own node first. At most one
//!   may apply per key; afterwards every read of the key returns the winner or, if none
//!   applied for certain, absence or one of the indeterminate tries ([`check_race`]). Every
//!   attempt is recorded as the fault test records its clients', so the keys' histories are
//!   checked for linearizability too.
//! * **a counter** incremented by read-then-CAS loops: read with its version, CAS one up
//!   expecting that version (expecting absent while there is none). Its final value is at
//!   least the number of CAS that applied and at most that plus the indeterminate ones
//!   ([`check_counter`]).
//!
//! Must not import the `mostdb` library.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Barrier, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::history::{CasAnswer, Expect, KvOp, Outcome, Rec, Rng};
use super::kv::{interpret, KvClient, Padding, Reply, ReplyClass, REPLY_CLASSES};

/// Nodes a racer tries for one create, moving on only after an answer that proves the attempt
/// had no effect (never after an indeterminate one).
pub const RACE_ATTEMPTS_MAX: usize = 3;
/// Race problems listed by [`verify_race_and_counter`] (the rest are counted).
pub const RACE_PROBLEMS_LISTED_MAX: usize = 10;
/// A final read is retried this many rounds (over all the nodes it may use), this far apart.
pub const FINAL_READ_ROUNDS_MAX: usize = 20;
pub const FINAL_READ_RETRY_MS: u64 = 250;

/// A recorded run on a cluster: its nodes, how long a client waits for an answer, the flag
/// that stops the clients, the clock of the history, its process ids, how its clients pad
/// values, and the keys whose state an indeterminate write left uncertain.
pub struct Run {
    pub addrs: Vec<SocketAddr>,
    pub io_timeout: Duration,
    pub stop: AtomicBool,
    pub t0: Instant,
    pub next_pid: AtomicU64,
    pub padding: Option<Padding>,
    suspects: Mutex<VecDeque<String>>,
}

impl Run {
    pub fn new(addrs: Vec<SocketAddr>, io_timeout: Duration) -> Run {
        Run {
            addrs,
            io_timeout,
            stop: AtomicBool::new(false),
            t0: Instant::now(),
            next_pid: AtomicU64::new(0),
            padding: None,
            suspects: Mutex::new(VecDeque::new()),
        }
    }
    /// The same run, its clients padding values as `padding` says.
    pub fn padded(mut self, padding: Padding) -> Run {
        self.padding = Some(padding);
        self
    }
    pub fn now_ns(&self) -> u64 {
        self.t0.elapsed().as_nanos() as u64
    }
    pub fn now_ms(&self) -> u64 {
        self.t0.elapsed().as_millis() as u64
    }
    /// A guard that stops the run when dropped, however the scope ends.
    pub fn stop_on_drop(&self) -> impl Drop + '_ {
        struct StopOnDrop<'a>(&'a AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        StopOnDrop(&self.stop)
    }
    /// Notes `key`: an indeterminate write may have left a value there that only some
    /// replicas hold (at most [`SUSPECTS_MAX`] keys wait).
    pub fn suspect(&self, key: &str) {
        let mut keys = self.suspects.lock().unwrap_or_else(PoisonError::into_inner);
        if keys.len() >= SUSPECTS_MAX {
            keys.pop_front();
        }
        keys.push_back(key.to_string());
    }
    /// The oldest key [`Run::suspect`] noted and nobody took yet.
    pub fn take_suspect(&self) -> Option<String> {
        let mut keys = self.suspects.lock().unwrap_or_else(PoisonError::into_inner);
        keys.pop_front()
    }
    pub fn new_pid(&self) -> u64 {
        self.next_pid.fetch_add(1, Ordering::Relaxed)
    }
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
    pub fn client(&self) -> KvClient {
        KvClient::new(self.addrs.clone(), self.io_timeout).padded(self.padding.clone())
    }
}

/// Keys [`Run::suspect`] holds at most (the oldest go first).
pub const SUSPECTS_MAX: usize = 64;

/// A sliding window of keys (STACK.md §5.3: many keys, so each key's history stays small
/// enough for the checker): `active` keys at a time, moving on by one key every `ops_per_key`
/// of its operations, so each key gets about `ops_per_key` operations. Key n is `name(n)`.
pub struct Window {
    pub active: u64,
    pub ops_per_key: u64,
    pub name: fn(u64) -> String,
    issued: AtomicU64,
}

impl Window {
    pub fn new(active: u64, ops_per_key: u64, name: fn(u64) -> String) -> Window {
        let issued = AtomicU64::new(0);
        Window {
            active,
            ops_per_key,
            name,
            issued,
        }
    }

    /// The key of the next operation.
    pub fn pick(&self, rng: &mut Rng) -> String {
        let n = self.issued.fetch_add(1, Ordering::Relaxed);
        (self.name)(n / self.ops_per_key + rng.below(self.active))
    }

    /// The key range, in key order, that holds the window now with `behind` keys before it
    /// and `ahead` after it (in the window's order): from the first name to just after the
    /// last. Names must be of one length for the range to hold no other of the window's keys.
    pub fn range(&self, behind: u64, ahead: u64) -> (String, String) {
        let w = self.issued.load(Ordering::Relaxed) / self.ops_per_key;
        let (a, b) = (
            (self.name)(w.saturating_sub(behind)),
            (self.name)(w + self.active + ahead),
        );
        (a.clone().min(b.clone()), format!("{}~", a.max(b)))
    }
}

// ------------------------------------------------------------------------------------------------
// Statistics

/// Counts for one phase: attempts by class, and logical operations (an operation may take
/// several attempts on different nodes) by outcome.
#[derive(Clone, Copy, Debug, Default)]
pub struct PhaseStats {
    pub attempts: [u64; REPLY_CLASSES],
    /// The CAS among `attempts`.
    pub cas: [u64; REPLY_CLASSES],
    pub ops: u64,
    pub ops_ok: u64,
    pub ops_indeterminate: u64,
    pub ops_failed: u64,
    pub latency_max_ns: u64,
}

impl PhaseStats {
    pub fn add(&mut self, o: &PhaseStats) {
        for (a, b) in self.attempts.iter_mut().zip(o.attempts) {
            *a += b;
        }
        for (a, b) in self.cas.iter_mut().zip(o.cas) {
            *a += b;
        }
        self.ops += o.ops;
        self.ops_ok += o.ops_ok;
        self.ops_indeterminate += o.ops_indeterminate;
        self.ops_failed += o.ops_failed;
        self.latency_max_ns = self.latency_max_ns.max(o.latency_max_ns);
    }
    pub fn attempts_total(&self) -> u64 {
        self.attempts.iter().sum()
    }
    pub fn n(&self, c: ReplyClass) -> u64 {
        self.attempts[c as usize]
    }
}

/// Prints a row of counts per named phase and one of their total, then the total's shares.
pub fn print_stats(rows: &[(&str, &PhaseStats)]) {
    let mut total = PhaseStats::default();
    println!(
        "{:<12} {:>7} {:>6} {:>6} {:>6} | {:>7} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>5} {:>8}",
        "phase",
        "ops",
        "ok",
        "indet",
        "failed",
        "reqs",
        "ok",
        "nf",
        "cmpF",
        "NotMst",
        "NM-ind",
        "503",
        "unsent",
        "lost",
        "max ms"
    );
    for (name, s) in rows {
        total.add(s);
        print_row(name, s);
    }
    print_row("total", &total);
    let pct = |a: u64, b: u64| 100.0 * a as f64 / b.max(1) as f64;
    let reqs = total.attempts_total();
    println!(
        "operations {}: success {:.2} %, indeterminate {:.2} %, failed {:.2} %; requests {}: \
         success (incl. NotFound, CompareFailed) {:.2} %, NotMost {:.2} % (indeterminate {:.2} %), \
         lost {:.2} %",
        total.ops,
        pct(total.ops_ok, total.ops),
        pct(total.ops_indeterminate, total.ops),
        pct(total.ops_failed, total.ops),
        reqs,
        pct(
            total.n(ReplyClass::Ok)
                + total.n(ReplyClass::NotFound)
                + total.n(ReplyClass::CompareFailed),
            reqs
        ),
        pct(
            total.n(ReplyClass::NotMost) + total.n(ReplyClass::NotMostIndeterminate),
            reqs
        ),
        pct(total.n(ReplyClass::NotMostIndeterminate), reqs),
        pct(total.n(ReplyClass::Lost), reqs),
    );
}

/// How the CAS requests in `phases` were answered, in shares, as one line named `name`.
pub fn print_cas_answers(name: &str, phases: &[&PhaseStats]) {
    let mut c = [0u64; REPLY_CLASSES];
    for s in phases {
        for (a, b) in c.iter_mut().zip(s.cas) {
            *a += b;
        }
    }
    let n: u64 = c.iter().sum();
    let pct = |classes: &[ReplyClass]| {
        let k: u64 = classes.iter().map(|&x| c[x as usize]).sum();
        100.0 * k as f64 / n.max(1) as f64
    };
    use ReplyClass::*;
    println!(
        "CAS requests {name}: {n}: applied {:.2} %, compare failed {:.2} %, NotMost {:.2} %, \
         indeterminate {:.2} % (NotMost-indeterminate {:.2} %, lost {:.2} %), refused \
         (503, not sent) {:.2} %",
        pct(&[Ok]),
        pct(&[CompareFailed]),
        pct(&[NotMost]),
        pct(&[NotMostIndeterminate, Lost, Unexpected]),
        pct(&[NotMostIndeterminate]),
        pct(&[Lost]),
        pct(&[Unavailable, NotSent]),
    );
}

fn print_row(name: &str, s: &PhaseStats) {
    let a = |c: ReplyClass| s.n(c);
    println!(
        "{:<12} {:>7} {:>6} {:>6} {:>6} | {:>7} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>5} {:>8.1}",
        name,
        s.ops,
        s.ops_ok,
        s.ops_indeterminate,
        s.ops_failed,
        s.attempts_total(),
        a(ReplyClass::Ok),
        a(ReplyClass::NotFound),
        a(ReplyClass::CompareFailed),
        a(ReplyClass::NotMost),
        a(ReplyClass::NotMostIndeterminate),
        a(ReplyClass::Unavailable),
        a(ReplyClass::NotSent),
        a(ReplyClass::Lost),
        s.latency_max_ns as f64 / 1e6
    );
}

// ------------------------------------------------------------------------------------------------
// Final reads

/// The final reads of a run, each recorded as an op of a process of its own.
#[derive(Default)]
pub struct FinalReads {
    pub recs: Vec<Rec>,
    /// Reads that no node answered (one entry per read: the key).
    pub unreadable: Vec<String>,
    /// Every attempt's answer, by class.
    pub classes: [u64; REPLY_CLASSES],
    pub unexpected: Vec<String>,
}

/// Reads every key once more after healing, through a quorum: through any node, and a race
/// key through every node (each must return the race's winner). Reads left when `budget` is
/// spent count as unreadable.
pub fn final_reads(run: &Run, keys: &BTreeSet<String>, budget: Duration) -> FinalReads {
    let mut kv = run.client();
    let mut out = FinalReads::default();
    let n = run.addrs.len();
    let deadline = Instant::now() + budget;
    for (i, key) in keys.iter().enumerate() {
        let through: Vec<(usize, usize)> = if Race::is_race_key(key) {
            (0..n).map(|node| (node, 1)).collect()
        } else {
            vec![(i % n, n)]
        };
        for (first, tries) in through {
            let nodes = (first..first + tries).map(|a| a % n);
            match final_read(run, &mut kv, key, nodes, deadline, &mut out) {
                Some(rec) => out.recs.push(rec),
                None => out.unreadable.push(key.clone()),
            }
        }
    }
    out
}

/// One read of `key` through `nodes` in turn, in rounds until one answers.
fn final_read(
    run: &Run,
    kv: &mut KvClient,
    key: &str,
    nodes: impl Iterator<Item = usize> + Clone,
    deadline: Instant,
    out: &mut FinalReads,
) -> Option<Rec> {
    for round in 0..FINAL_READ_ROUNDS_MAX {
        if Instant::now() >= deadline {
            break;
        }
        for node in nodes.clone() {
            let call_ns = run.now_ns();
            let reply = kv.get(node, key);
            let ret_ns = run.now_ns();
            let (outcome, op, class, odd) = interpret(KvOp::Get(None), reply);
            out.unexpected.extend(odd);
            out.classes[class as usize] += 1;
            if outcome == Outcome::Ok {
                return Some(Rec {
                    pid: run.new_pid(),
                    key: key.to_string(),
                    op,
                    outcome,
                    call_ns,
                    ret_ns,
                });
            }
        }
        if round + 1 < FINAL_READ_ROUNDS_MAX {
            std::thread::sleep(Duration::from_millis(FINAL_READ_RETRY_MS));
        }
    }
    None
}

// ------------------------------------------------------------------------------------------------
// Racing creates

/// The racing creates of one run: one racer per node, in rounds.
pub struct Race {
    barrier: Barrier,
    /// Whether the round the racers are about to start runs (the leader decides).
    go: AtomicBool,
    pause: Duration,
    rounds_max: usize,
}

/// What one racer did: every attempt, as recorded for the history, and its answers by class.
#[derive(Default)]
pub struct RacerOut {
    pub recs: Vec<Rec>,
    pub classes: [u64; REPLY_CLASSES],
    pub unexpected: Vec<String>,
}

impl Race {
    /// `racers` clients (one per node), `pause` between rounds, at most `rounds_max` rounds.
    pub fn new(racers: usize, pause: Duration, rounds_max: usize) -> Race {
        Race {
            barrier: Barrier::new(racers),
            go: AtomicBool::new(false),
            pause,
            rounds_max,
        }
    }

    /// The key raced for in round `round`.
    pub fn key(round: usize) -> String {
        format!("race-{round}")
    }

    pub fn is_race_key(key: &str) -> bool {
        key.starts_with("race-")
    }

    /// Racer `me`: one create per round until the run stops or the rounds are done. Every
    /// racer must run (the barrier waits for all); all stop after the same round.
    pub fn run(&self, me: usize, run: &Run) -> RacerOut {
        let mut kv = run.client();
        let mut out = RacerOut::default();
        let mut pid = run.new_pid();
        for round in 0.. {
            if self.barrier.wait().is_leader() {
                let go = round < self.rounds_max && !run.stopped();
                self.go.store(go, Ordering::SeqCst);
            }
            // Nobody reads `go` before the leader wrote it, nor after it writes it again (it
            // waits at the first barrier of the next round for everybody).
            self.barrier.wait();
            if !self.go.load(Ordering::SeqCst) {
                break;
            }
            self.create(me, round, run, &mut kv, &mut pid, &mut out);
            std::thread::sleep(self.pause);
        }
        out
    }

    /// One racer's create-if-absent of round `round`, through its own node first.
    fn create(
        &self,
        me: usize,
        round: usize,
        run: &Run,
        kv: &mut KvClient,
        pid: &mut u64,
        out: &mut RacerOut,
    ) {
        let key = Race::key(round);
        let n = run.addrs.len();
        for attempt in 0..RACE_ATTEMPTS_MAX.min(n) {
            let node = (me + attempt) % n;
            // A value per attempt: a definitely failed one must never be observed.
            let value = format!("{key}-n{me}-a{attempt}");
            let call_ns = run.now_ns();
            let reply = kv.cas(node, &key, &Expect::Absent, Some(&value));
            let ret_ns = run.now_ns();
            let op = KvOp::Cas {
                expect: Expect::Absent,
                new: Some(value),
                answer: CasAnswer::Open,
            };
            let (outcome, op, class, odd) = interpret(op, reply);
            out.classes[class as usize] += 1;
            out.unexpected.extend(odd);
            out.recs.push(Rec {
                pid: *pid,
                key: key.clone(),
                op,
                outcome,
                call_ns,
                ret_ns,
            });
            match outcome {
                Outcome::Ok => break,
                Outcome::Indeterminate => {
                    *pid = run.new_pid();
                    break;
                }
                Outcome::Failed => {}
            }
        }
    }
}

/// What the races came to, per key.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RaceSummary {
    pub keys: usize,
    /// Keys whose create applied for certain.
    pub won: usize,
    /// Keys with no certain winner but an indeterminate try.
    pub undecided: usize,
}

/// Checks the races: at most one create applied per key, and every read of a race key among
/// `reads` (after healing) returned the winner or, with no certain winner, absence or an
/// indeterminate try's value. A race key is never deleted, so the first value it holds stays:
/// a failed compare must report the value read after healing (not absence). Returns the
/// summary and the problems.
pub fn check_race(attempts: &[Rec], reads: &[Rec]) -> (RaceSummary, Vec<String>) {
    #[derive(Default)]
    struct Tries<'a> {
        applied: Vec<&'a str>,
        maybe: Vec<&'a str>,
        /// What failed compares reported.
        found: Vec<Option<&'a str>>,
    }
    let mut keys: BTreeMap<&str, Tries> = BTreeMap::new();
    for r in attempts.iter().filter(|r| Race::is_race_key(&r.key)) {
        let tries = keys.entry(r.key.as_str()).or_default();
        match (&r.op, r.outcome) {
            (
                KvOp::Cas {
                    new: Some(v),
                    answer: CasAnswer::Applied,
                    ..
                },
                Outcome::Ok,
            ) => tries.applied.push(v),
            (KvOp::Cas { new: Some(v), .. }, Outcome::Indeterminate) => tries.maybe.push(v),
            (
                KvOp::Cas {
                    answer: CasAnswer::CompareFailed(found),
                    ..
                },
                Outcome::Ok,
            ) => tries.found.push(found.as_deref()),
            _ => {}
        }
    }
    let mut problems = Vec::new();
    let mut summary = RaceSummary {
        keys: keys.len(),
        ..RaceSummary::default()
    };
    for (key, tries) in &keys {
        if tries.applied.len() > 1 {
            problems.push(format!("{key}: {} creates applied", tries.applied.len()));
        }
        match tries.applied.first() {
            Some(_) => summary.won += 1,
            None if !tries.maybe.is_empty() => summary.undecided += 1,
            None => {}
        }
    }
    for r in reads.iter().filter(|r| Race::is_race_key(&r.key)) {
        let (KvOp::Get(read), Outcome::Ok) = (&r.op, r.outcome) else {
            continue;
        };
        let tries = keys.get(r.key.as_str());
        let winner = tries.and_then(|t| t.applied.first());
        let fine = match (winner, read) {
            (Some(w), _) => read.as_deref() == Some(*w),
            (None, None) => true,
            (None, Some(v)) => tries.is_some_and(|t| t.maybe.contains(&v.as_str())),
        };
        let found = tries.map(|t| t.found.clone()).unwrap_or_default();
        if !fine || found.iter().any(|f| f.is_none() || *f != read.as_deref()) {
            let maybe = tries.map(|t| t.maybe.clone()).unwrap_or_default();
            problems.push(format!(
                "{}: read {read:?} after healing; winner {winner:?}, indeterminate tries \
                 {maybe:?}, failed compares found {found:?}",
                r.key
            ));
        }
    }
    (summary, problems)
}

// ------------------------------------------------------------------------------------------------
// The counter

/// What one client's increments came to.
#[derive(Clone, Debug, Default)]
pub struct CounterOut {
    pub applied: u64,
    pub compare_failed: u64,
    /// Definitely not applied (NotMost, 503, not sent).
    pub failed: u64,
    pub indeterminate: u64,
    /// Increments not tried: the read failed.
    pub reads_failed: u64,
    /// Answers that made no sense.
    pub unexpected: Vec<String>,
}

impl CounterOut {
    /// Adds `o`'s counts (not its answers).
    pub fn add(&mut self, o: &CounterOut) {
        self.applied += o.applied;
        self.compare_failed += o.compare_failed;
        self.failed += o.failed;
        self.indeterminate += o.indeterminate;
        self.reads_failed += o.reads_failed;
    }
    pub fn attempts(&self) -> u64 {
        self.applied + self.compare_failed + self.failed + self.indeterminate + self.reads_failed
    }
}

/// Client `me` increments `key` through node `me`, `pause` apart, until the run stops or it
/// made `attempts_max` attempts.
pub fn count_up(me: usize, key: &str, run: &Run, pause: Duration, attempts_max: u64) -> CounterOut {
    let mut kv = run.client();
    let mut out = CounterOut::default();
    while !run.stopped() && out.attempts() < attempts_max {
        if let Err(e) = increment(&mut kv, me, key, &mut out) {
            out.unexpected.push(e);
        }
        std::thread::sleep(pause);
    }
    out
}

/// One increment: read the counter with its version, CAS it one up against that version.
fn increment(
    kv: &mut KvClient,
    node: usize,
    key: &str,
    out: &mut CounterOut,
) -> Result<(), String> {
    let reply = match kv.get_versioned(node, key) {
        Reply::Value(None) => kv.cas(node, key, &Expect::Absent, Some("1")),
        Reply::Versioned { value, version } => {
            let n: u64 = value
                .parse()
                .map_err(|e| format!("counter {key} holds {value:?}: {e}"))?;
            kv.cas_at_version(node, key, &version, &(n + 1).to_string())
        }
        Reply::Unexpected(e) => {
            out.reads_failed += 1;
            return Err(format!("counter read: {e}"));
        }
        _ => {
            out.reads_failed += 1;
            return Ok(());
        }
    };
    let op = KvOp::Cas {
        expect: Expect::Absent,
        new: None,
        answer: CasAnswer::Open,
    };
    let (outcome, _, class, odd) = interpret(op, reply);
    match (outcome, class) {
        (Outcome::Ok, ReplyClass::CompareFailed) => out.compare_failed += 1,
        (Outcome::Ok, _) => out.applied += 1,
        (Outcome::Failed, _) => out.failed += 1,
        (Outcome::Indeterminate, _) => out.indeterminate += 1,
    }
    odd.map_or(Ok(()), Err)
}

/// The counter's value after healing (absent counts as 0), read through any node, within
/// `budget`; `Ok(None)` if no node answered.
pub fn final_count(run: &Run, key: &str, budget: Duration) -> Result<Option<u64>, String> {
    let mut out = FinalReads::default();
    let nodes = 0..run.addrs.len();
    let deadline = Instant::now() + budget;
    let read = final_read(run, &mut run.client(), key, nodes, deadline, &mut out);
    match read.map(|r| r.op) {
        None => Ok(None),
        Some(KvOp::Get(None)) => Ok(Some(0)),
        Some(KvOp::Get(Some(v))) => v
            .parse()
            .map(Some)
            .map_err(|e| format!("counter {key} holds {v:?}: {e}")),
        Some(op) => Err(format!("counter {key}: read as {op:?}")),
    }
}

/// The counter's final value must be at least the CAS that applied, at most those plus the
/// indeterminate ones.
pub fn check_counter(value: u64, counts: &CounterOut) -> Result<(), String> {
    let (low, high) = (counts.applied, counts.applied + counts.indeterminate);
    if (low..=high).contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "counter: final value {value}, but {low} increments applied and {} were \
             indeterminate (want {low}..={high})",
            counts.indeterminate
        ))
    }
}

/// The racing creates' and the counter's checks ([`check_race`], [`check_counter`]), and a
/// line of what each came to. `recs` holds the races' attempts, `finals` the reads after
/// healing, `race_answers` the racers' answers by class, `count` the counter's final value.
/// The counter's problem comes first, and at most [`RACE_PROBLEMS_LISTED_MAX`] of the races'
/// (a broken protocol breaks many races, which would hide the rest).
pub fn verify_race_and_counter(
    recs: &[Rec],
    finals: &[Rec],
    race_answers: &[u64; REPLY_CLASSES],
    counted: &CounterOut,
    count: Result<Option<u64>, String>,
) -> Vec<String> {
    let mut problems = verify_counter(counted, count);
    let (race, race_problems) = check_race(recs, finals);
    let a = |c: ReplyClass| race_answers[c as usize];
    println!(
        "racing creates: {} keys, {} with a winner, {} with only indeterminate tries; answers: \
         applied {}, compare failed {}, NotMost {}, indeterminate {}, refused {}",
        race.keys,
        race.won,
        race.undecided,
        a(ReplyClass::Ok),
        a(ReplyClass::CompareFailed),
        a(ReplyClass::NotMost),
        a(ReplyClass::NotMostIndeterminate) + a(ReplyClass::Lost) + a(ReplyClass::Unexpected),
        a(ReplyClass::Unavailable) + a(ReplyClass::NotSent),
    );
    if race.won * 2 < race.keys {
        problems.push(format!(
            "racing creates: a winner in {} of {} races only",
            race.won, race.keys
        ));
    }
    let n = race_problems.len();
    problems.extend(race_problems.into_iter().take(RACE_PROBLEMS_LISTED_MAX));
    if n > RACE_PROBLEMS_LISTED_MAX {
        problems.push(format!(
            "racing creates: … and {} more problems",
            n - RACE_PROBLEMS_LISTED_MAX
        ));
    }
    problems
}

/// The counter's check, and a line of what it came to.
fn verify_counter(counted: &CounterOut, count: Result<Option<u64>, String>) -> Vec<String> {
    let value = match count {
        Ok(Some(v)) => v,
        Ok(None) => return vec!["counter: the final read failed on every node".into()],
        Err(e) => return vec![e],
    };
    println!(
        "counter: {value} after {} increments applied ({} indeterminate, {} compare failed, {} \
         failed, {} reads failed)",
        counted.applied,
        counted.indeterminate,
        counted.compare_failed,
        counted.failed,
        counted.reads_failed
    );
    let mut problems: Vec<String> = check_counter(value, counted).err().into_iter().collect();
    if counted.applied == 0 {
        problems.push("counter: no increment applied".into());
    }
    problems
}
