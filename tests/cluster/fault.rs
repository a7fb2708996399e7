//! Jepsen-style fault test on the real binary (DESIGN.md §9, layer 3): three nodes on loopback,
//! concurrent clients on many keys, and nemeses in turn — kill -9 and restart, SIGSTOP longer
//! than the deadline, a partition of one node through per-link proxies, a quiet period — with
//! at most one node faulty at a time. The clients get, set, delete and compare-and-set (DESIGN
//! §10: expecting absent, present, or a value, mostly the one they last saw), so CAS is checked
//! as linearizable together with plain writes. Every operation is recorded and each key's
//! history is checked for linearizability (todc-utils' WGL checker, time-boxed); acknowledged
//! writes must survive (a final read of every key after healing is part of the checked
//! history), a definitely failed write must never be observed, and ≥ 90 % of operations must
//! succeed. Beside the clients, under the same nemeses, one client per node races
//! create-if-absent on fresh keys and one per node increments a counter by read-then-CAS
//! (`support/recorded.rs`): at most one create applies per key and every node reads the
//! winner after healing; the counter ends between the increments that applied and those plus
//! the indeterminate ones. Two listers list a window of the clients' keys page by page
//! (`support/lister.rs`); each page's items and the keys it skipped are reads in the history.
//! Those keys are named downwards, so keys created while a node was away sort before keys it
//! holds, and some of their values are big: a replica's page is then cut by its byte budget
//! before its limit, where a wrong page cut skips keys (a cut by the limit cannot show it: the
//! merged page is then full before any cut). After each fault the listers list through the
//! node that came back.
//!
//! `FAULT_SECS` sets the length of the fault schedule (default 60 s). `FAULT_PLANT=wipe` makes
//! the kill nemesis also delete the killed node's store and switches recovery off
//! (`MOSTDB_RECOVERY=off`), so the wiped node votes at once: the test must then fail (lost
//! acknowledged writes), which shows it can. `FAULT_PLANT=wipe-recover` wipes with recovery on:
//! the test must pass. Built with `--features planted-cas-no-writeback`,
//! `planted-cas-ignore-promise` or `planted-list-cut-largest` (the nodes run the binary built
//! with the test), the test must fail too: non-linearizable histories.
//!
//! The harness's own pieces (the link proxy, the answer classification, the checker and its
//! model of CAS on synthetic histories) are tested in `fault_harness.rs`.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::support::cluster::{Cluster, ClusterSpec};
use crate::support::history::{
    self, splitmix64, visible_failures, CasAnswer, Expect, KvOp, Outcome, Rec, Rng,
};
use crate::support::kv::{interpret, KvClient, Padding, ReplyClass, REPLY_CLASSES};
use crate::support::lister::{
    final_passes, list_loop, list_reads, print_listers, Attend, Focus, ListPlan, ListReads,
    ListerOut,
};
use crate::support::proxy::CutMode;
use crate::support::recorded::{
    count_up, final_count, final_reads, print_cas_answers, print_stats, verify_race_and_counter,
    CounterOut, PhaseStats, Race, RacerOut, Run, Window,
};

#[path = "fault_verify.rs"]
mod fault_verify;
use fault_verify::{report_run, verify};

/// Concurrent client threads.
const CLIENTS: usize = 8;
/// Length of the fault schedule when `FAULT_SECS` is not set.
const FAULT_SECS_DEFAULT: u64 = 60;
/// `MOSTDB_TIMEOUT_MS` of every node.
const NODE_TIMEOUT_MS: u64 = 1_000;
/// How long a client waits for one answer before counting the request as lost.
const CLIENT_IO_TIMEOUT_MS: u64 = 3_000;
/// Nodes a client tries for one operation, moving on only after an answer that proves the
/// attempt had no effect (never after an indeterminate write).
const ATTEMPTS_MAX: usize = 3;
/// Keys come from sliding windows ([`Window`]: `ACTIVE` keys at a time, `OPS_PER_KEY`
/// operations each). About half the operations go to a few hot keys, where clients collide;
/// the rest to many cold keys that each live long enough to see several faults, but for
/// `LISTED_PERCENT` to the listed keys: named downwards (`l{999999 - n}`), with big values.
/// The listers list each of the hot and the listed window with the keys it reaches next and
/// older keys behind it.
const HOT_KEYS_ACTIVE: u64 = 10;
const HOT_OPS_PER_KEY: u64 = 150;
const COLD_KEYS_ACTIVE: u64 = 1_000;
const COLD_OPS_PER_KEY: u64 = 100;
const LISTED_PERCENT: u64 = 8;
const LISTED_KEYS_ACTIVE: u64 = 4;
const LISTED_OPS_PER_KEY: u64 = 8;
const LISTED_AHEAD: u64 = 4;
const LISTED_BEHIND: u64 = 12;
const LISTED_PREFIX: &str = "l";
const HOT_BEHIND: u64 = 10;
/// `BIG_PERCENT` of the listed keys' values are `BIG_VALUE_BYTES` on the wire: two never fit
/// a replica's page (`LIST_PAGE_BYTES_MAX` in src/limits.rs, 256 KiB).
const BIG_PERCENT: u64 = 45;
const BIG_VALUE_BYTES: usize = 140_000;
const _: () = assert!(2 * BIG_VALUE_BYTES > 256 * 1024);
/// Listers, their page limits (one drawn per pass), their pause between passes, and how long
/// after a fault ends they list through the node that came back.
const LISTERS: usize = 2;
const LIST_LIMIT_MIN: usize = 3;
const LIST_LIMIT_MAX: usize = 6;
const LIST_PASS_PAUSE_MS: u64 = 250;
const LIST_FOCUS_MS: u64 = 1_500;
/// Pause of a client after an operation that failed on every node it tried (bounds the
/// request rate against a cluster that refuses everything).
const FAILED_OP_BACKOFF_MS: u64 = 20;
/// Operation mix, in percent: get, set, del, and CAS for the rest.
const GET_PERCENT: u64 = 45;
const SET_PERCENT: u64 = 22;
const DEL_PERCENT: u64 = 8;
/// What a CAS expects, in percent of CAS: absent, present, a stale or never-written value,
/// and for the rest the state the client last saw for the key (absent if it saw none).
const CAS_ABSENT_PERCENT: u64 = 15;
const CAS_PRESENT_PERCENT: u64 = 10;
const CAS_STALE_PERCENT: u64 = 10;
/// CAS that delete instead of writing a new value, in percent.
const CAS_DELETE_PERCENT: u64 = 15;
/// Keys a client remembers the last state it saw of (forgotten all at once beyond).
const SEEN_KEYS_MAX: usize = 4_096;
/// Pause of each racer between two rounds of racing creates (one fresh key per round).
const RACE_PAUSE_MS: u64 = 50;
/// The key of the counter incremented by read-then-CAS from every node, and the pause of each
/// of its clients between two increments.
const COUNTER_KEY: &str = "counter";
const COUNTER_PAUSE_MS: u64 = 10;
/// How long each nemesis holds its fault.
const KILL_HOLD_MS: u64 = 4_000;
const PAUSE_HOLD_MS: u64 = 2_500;
const PARTITION_HOLD_MS: u64 = 4_000;
/// In the half of a one-way partition where nobody reaches the node: how long it misses
/// writes before the listers list through it (their merges repair what they list).
const DEAF_UNLISTED_MS: u64 = 1_200;
const _: () = assert!(DEAF_UNLISTED_MS < PARTITION_HOLD_MS / 2);
const QUIET_MS: u64 = 3_000;
/// Time budget of one key's linearizability check; beyond it the key is "unknown".
const CHECK_BUDGET_PER_KEY_MS: u64 = 10_000;
/// Time budget of all keys' checks together (keys left unchecked are "unknown").
const CHECK_BUDGET_TOTAL_MS: u64 = 120_000;
/// Time budget of all final reads together (keys left unread fail the test), and again of the
/// counter's.
const FINAL_READS_TOTAL_MS: u64 = 60_000;
/// Problems printed when the test fails (the rest are counted).
const PROBLEMS_SHOWN_MAX: usize = 80;
/// Share of operations that must succeed while at most one node is faulty.
const SUCCESS_SHARE_MIN: f64 = 0.90;
/// A pause must hold a node for longer than its peers' deadline.
const _: () = assert!(PAUSE_HOLD_MS > 2 * NODE_TIMEOUT_MS);
const _: () = assert!(CLIENT_IO_TIMEOUT_MS > 2 * NODE_TIMEOUT_MS);

// ------------------------------------------------------------------------------------------------
// Phases and statistics

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Phase {
    Quiet = 0,
    Kill = 1,
    Pause = 2,
    Partition = 3,
    Final = 4,
}

const PHASES: [Phase; 5] = [
    Phase::Quiet,
    Phase::Kill,
    Phase::Pause,
    Phase::Partition,
    Phase::Final,
];

impl Phase {
    fn from_u8(v: u8) -> Phase {
        PHASES[usize::from(v).min(PHASES.len() - 1)]
    }
    fn name(self) -> &'static str {
        match self {
            Phase::Quiet => "quiet",
            Phase::Kill => "kill -9",
            Phase::Pause => "SIGSTOP",
            Phase::Partition => "partition",
            Phase::Final => "final reads",
        }
    }
}

type Stats = [PhaseStats; PHASES.len()];

/// What every client thread shares.
struct Ctx {
    /// Nodes, clock, process ids and the stop flag (shared with the CAS race and counter).
    run: Run,
    phase: AtomicU8,
    hot: Window,
    cold: Window,
    listed: Window,
    /// The listers' focus ([`Focus`]) and until when it holds (ms on the run's clock).
    focus: Mutex<Option<(Focus, u64)>>,
    seed: u64,
}

impl Ctx {
    /// A key from the listed, hot or cold window (see [`HOT_KEYS_ACTIVE`]).
    fn pick_key(&self, rng: &mut Rng) -> String {
        match rng.below(100) {
            p if p < LISTED_PERCENT => self.listed.pick(rng),
            p if p % 2 == 0 => self.hot.pick(rng),
            _ => self.cold.pick(rng),
        }
    }

    /// The listers' focus, while it holds.
    fn list_focus(&self) -> Option<Focus> {
        let focus = *self.focus.lock().unwrap_or_else(PoisonError::into_inner);
        let now = self.run.now_ms();
        focus.filter(|f| now < f.1).map(|f| f.0)
    }

    /// From now on for `ms`, the listers attend to `node` as `how` says.
    fn set_focus(&self, node: usize, how: Attend, ms: u64) {
        let now = self.run.now_ms();
        let mut focus = self.focus.lock().unwrap_or_else(PoisonError::into_inner);
        let id = focus.map_or(1, |f| f.0.id + 1);
        *focus = Some((Focus { id, node, how }, now + ms));
    }
}

/// What the listers list now: the listed window (first after a fault) and the hot one.
fn list_ranges(ctx: &Ctx) -> [(String, String); 2] {
    let listed = ctx.listed.range(LISTED_BEHIND, LISTED_AHEAD);
    [listed, ctx.hot.range(HOT_BEHIND, 1)]
}

/// Key names of the windows, of one length each (a window is then a range of keys).
fn hot_key(n: u64) -> String {
    format!("h{n:06}")
}
fn cold_key(n: u64) -> String {
    format!("c{n}")
}
fn listed_key(n: u64) -> String {
    format!("{LISTED_PREFIX}{:06}", 999_999u64.saturating_sub(n))
}

/// What a client thread hands back.
#[derive(Default)]
struct ClientOut {
    recs: Vec<Rec>,
    stats: Stats,
    unexpected: Vec<String>,
}

// ------------------------------------------------------------------------------------------------
// The workload

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Get,
    Set,
    Del,
    Cas,
}

/// What a client last saw of a key (`None`: absent), and what it saw before that.
#[derive(Clone, Default)]
struct Seen {
    last: Option<String>,
    before: Option<String>,
}

/// One client thread: its connections, its process id, and what it saw of each key.
struct Client<'a> {
    id: usize,
    ctx: &'a Ctx,
    rng: Rng,
    kv: KvClient,
    pid: u64,
    seq: u64,
    seen: HashMap<String, Seen>,
    out: ClientOut,
}

fn client_loop(id: usize, ctx: &Ctx) -> ClientOut {
    let mut c = Client {
        id,
        ctx,
        rng: Rng(ctx.seed ^ (id as u64).wrapping_mul(0xA076_1D64_78BD_642F)),
        kv: ctx.run.client(),
        pid: ctx.run.new_pid(),
        seq: 0,
        seen: HashMap::new(),
        out: ClientOut::default(),
    };
    while !ctx.run.stop.load(Ordering::Relaxed) {
        let key = ctx.pick_key(&mut c.rng);
        let kind = match c.rng.below(100) {
            p if p < GET_PERCENT => Kind::Get,
            p if p < GET_PERCENT + SET_PERCENT => Kind::Set,
            p if p < GET_PERCENT + SET_PERCENT + DEL_PERCENT => Kind::Del,
            _ => Kind::Cas,
        };
        let phase = Phase::from_u8(ctx.phase.load(Ordering::Relaxed));
        let done = c.run_op(&key, kind, phase);
        let st = &mut c.out.stats[phase as usize];
        st.ops += 1;
        match done {
            Outcome::Ok => st.ops_ok += 1,
            Outcome::Indeterminate => st.ops_indeterminate += 1,
            Outcome::Failed => {
                st.ops_failed += 1;
                std::thread::sleep(Duration::from_millis(FAILED_OP_BACKOFF_MS));
            }
        }
    }
    c.out
}

impl Client<'_> {
    /// One operation: tried on up to [`ATTEMPTS_MAX`] nodes, every attempt recorded.
    fn run_op(&mut self, key: &str, kind: Kind, phase: Phase) -> Outcome {
        let n = self.ctx.run.addrs.len();
        let mut first = self.rng.below(n as u64) as usize;
        // While the listers attend to a fault's node, the listed keys' ops go first to the
        // others: the node's own reads would repair what it missed.
        if let Some(f) = self
            .ctx
            .list_focus()
            .filter(|_| key.starts_with(LISTED_PREFIX))
        {
            first = (f.node + 1 + self.rng.below(n as u64 - 1) as usize) % n;
        }
        let mut done = Outcome::Failed;
        for attempt in 0..ATTEMPTS_MAX.min(n) {
            let node = (first + attempt) % n;
            let op = self.make_op(key, kind);
            let call_ns = self.ctx.run.now_ns();
            let reply = match &op {
                KvOp::Set(v) => self.kv.set(node, key, v),
                KvOp::Del => self.kv.del(node, key),
                KvOp::Get(_) => self.kv.get(node, key),
                KvOp::Cas { expect, new, .. } => self.kv.cas(node, key, expect, new.as_deref()),
            };
            let ret_ns = self.ctx.run.now_ns();
            let (outcome, op, class, odd) = interpret(op, reply);
            self.out.unexpected.extend(odd);
            let st = &mut self.out.stats[phase as usize];
            st.attempts[class as usize] += 1;
            if kind == Kind::Cas {
                st.cas[class as usize] += 1;
            }
            st.latency_max_ns = st.latency_max_ns.max(ret_ns - call_ns);
            if outcome == Outcome::Ok {
                self.saw(key, &op);
            }
            let write = op.is_write();
            self.out.recs.push(Rec {
                pid: self.pid,
                key: key.to_string(),
                op,
                outcome,
                call_ns,
                ret_ns,
            });
            done = outcome;
            if outcome == Outcome::Indeterminate && write {
                // This process may still have the op in flight: go on as another one.
                self.pid = self.ctx.run.new_pid();
                self.ctx.run.suspect(key);
                break;
            }
            if outcome == Outcome::Ok {
                break;
            }
        }
        done
    }

    /// The op of one attempt: every write gets a value of its own, so a value names its write.
    fn make_op(&mut self, key: &str, kind: Kind) -> KvOp {
        let mut value = || {
            self.seq += 1;
            format!("{}-{}", self.id, self.seq)
        };
        match kind {
            Kind::Get => KvOp::Get(None),
            Kind::Del => KvOp::Del,
            Kind::Set => KvOp::Set(value()),
            Kind::Cas => {
                let new = value();
                let new = (self.rng.below(100) >= CAS_DELETE_PERCENT).then_some(new);
                KvOp::Cas {
                    expect: self.expectation(key),
                    new,
                    answer: CasAnswer::Open,
                }
            }
        }
    }

    /// What a CAS expects: mostly the state this client last saw, so compares both hold and
    /// fail (others wrote since).
    fn expectation(&mut self, key: &str) -> Expect {
        let seen = self.seen.get(key).cloned().unwrap_or_default();
        match self.rng.below(100) {
            p if p < CAS_ABSENT_PERCENT => Expect::Absent,
            p if p < CAS_ABSENT_PERCENT + CAS_PRESENT_PERCENT => Expect::Present,
            p if p < CAS_ABSENT_PERCENT + CAS_PRESENT_PERCENT + CAS_STALE_PERCENT => {
                let never = format!("never-{}", self.rng.below(1_000));
                Expect::Value(seen.before.unwrap_or(never))
            }
            _ => seen.last.map_or(Expect::Absent, Expect::Value),
        }
    }

    /// Remembers the state an acknowledged op saw or made.
    fn saw(&mut self, key: &str, op: &KvOp) {
        let state = match op {
            KvOp::Get(v) => v.clone(),
            KvOp::Set(v) => Some(v.clone()),
            KvOp::Del => None,
            KvOp::Cas {
                new,
                answer: CasAnswer::Applied,
                ..
            } => new.clone(),
            KvOp::Cas {
                answer: CasAnswer::CompareFailed(found),
                ..
            } => found.clone(),
            KvOp::Cas { .. } => return,
        };
        if self.seen.len() >= SEEN_KEYS_MAX && !self.seen.contains_key(key) {
            self.seen.clear();
        }
        let seen = self.seen.entry(key.to_string()).or_default();
        let last = std::mem::replace(&mut seen.last, state);
        if last.is_some() {
            seen.before = last;
        }
    }
}

// ------------------------------------------------------------------------------------------------
// The nemeses

/// One fault as it was applied.
struct Event {
    phase: Phase,
    node: usize,
    start_ms: u64,
    end_ms: u64,
}

/// Quiet, kill -9, pause, partition, in turn, for `secs`; the faulty node rotates. Every other
/// partition (the first one included) is one-way, in two halves: first the node cannot send
/// (its writes stay on it alone, while the others' merges take its page: the listers list
/// around it), then it cannot be reached (it misses the others' writes, and its merges take
/// their pages: the listers list through it). After each fault the listers list through the
/// node for [`LIST_FOCUS_MS`]. Runs on the thread that owns the cluster (restarted nodes die
/// with the thread that spawned them).
fn run_nemeses(cluster: &mut Cluster, ctx: &Ctx, secs: u64) -> Result<Vec<Event>, String> {
    let wipe = std::env::var("FAULT_PLANT").is_ok_and(|v| v.starts_with("wipe"));
    let end = Instant::now() + Duration::from_secs(secs);
    let schedule = [Phase::Quiet, Phase::Kill, Phase::Pause, Phase::Partition];
    let mut events = Vec::new();
    let (mut faults, mut partitions) = (0usize, 0usize);
    for step in 0.. {
        if Instant::now() >= end {
            break;
        }
        let phase = schedule[step % schedule.len()];
        // Shifted by one every round, so each nemesis meets every node in turn.
        let node = (faults + faults / cluster.size()) % cluster.size();
        let start_ms = ctx.run.now_ms();
        ctx.phase.store(phase as u8, Ordering::SeqCst);
        match phase {
            Phase::Quiet => {
                let until = (Instant::now() + Duration::from_millis(QUIET_MS)).min(end);
                std::thread::sleep(until.saturating_duration_since(Instant::now()));
            }
            Phase::Kill => {
                cluster.kill9(node);
                if wipe {
                    cluster.wipe_store(node).map_err(|e| format!("wipe: {e}"))?;
                }
                std::thread::sleep(Duration::from_millis(KILL_HOLD_MS));
                cluster
                    .restart(node)
                    .map_err(|e| format!("restart of node {node} after kill -9: {e}"))?;
            }
            Phase::Pause => {
                cluster.pause(node);
                std::thread::sleep(Duration::from_millis(PAUSE_HOLD_MS));
                cluster.resume(node);
            }
            Phase::Partition if partitions % 2 == 0 => {
                partitions += 1;
                let half = PARTITION_HOLD_MS / 2;
                cluster.cut_from(node, CutMode::Blackhole);
                ctx.set_focus(node, Attend::Without, half);
                std::thread::sleep(Duration::from_millis(half));
                cluster.heal_links();
                cluster.cut_to(node, CutMode::Blackhole);
                ctx.set_focus(node, Attend::Around, DEAF_UNLISTED_MS);
                std::thread::sleep(Duration::from_millis(DEAF_UNLISTED_MS));
                ctx.set_focus(
                    node,
                    Attend::Through,
                    half - DEAF_UNLISTED_MS + LIST_FOCUS_MS,
                );
                std::thread::sleep(Duration::from_millis(half - DEAF_UNLISTED_MS));
                cluster.heal_links();
            }
            Phase::Partition => {
                partitions += 1;
                cluster.isolate(node, CutMode::Blackhole);
                std::thread::sleep(Duration::from_millis(PARTITION_HOLD_MS));
                cluster.heal_links();
            }
            Phase::Final => unreachable!("not scheduled"),
        }
        if phase != Phase::Quiet {
            faults += 1;
            ctx.set_focus(node, Attend::Through, LIST_FOCUS_MS);
        }
        let node = if phase == Phase::Quiet {
            usize::MAX
        } else {
            node
        };
        events.push(Event {
            phase,
            node,
            start_ms,
            end_ms: ctx.run.now_ms(),
        });
    }
    ctx.phase.store(Phase::Quiet as u8, Ordering::SeqCst);
    Ok(events)
}

// ------------------------------------------------------------------------------------------------
// The fault test

fn fault_secs() -> u64 {
    std::env::var("FAULT_SECS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(FAULT_SECS_DEFAULT)
}

#[test]
fn linearizable_under_kill_pause_and_partition() {
    let secs = fault_secs();
    let mut spec = ClusterSpec {
        op_timeout_ms: NODE_TIMEOUT_MS,
        ..ClusterSpec::default()
    };
    if std::env::var("FAULT_PLANT").is_ok_and(|v| v == "wipe") {
        spec.env.push(("MOSTDB_RECOVERY".into(), "off".into()));
    }
    let mut cluster = Cluster::start(&spec);
    let seed = splitmix64(std::process::id() as u64 ^ cluster.addrs()[0].port() as u64);
    println!(
        "fault test: {} nodes on {:?}, {CLIENTS} clients, {secs} s, seed {seed:#x}, dir {}",
        cluster.size(),
        cluster.addrs(),
        cluster.dir().display()
    );
    let padding = Padding {
        prefix: LISTED_PREFIX,
        percent: BIG_PERCENT,
        bytes: BIG_VALUE_BYTES,
    };
    let io_timeout = Duration::from_millis(CLIENT_IO_TIMEOUT_MS);
    let ctx = Ctx {
        run: Run::new(cluster.addrs(), io_timeout).padded(padding),
        phase: AtomicU8::new(Phase::Quiet as u8),
        hot: Window::new(HOT_KEYS_ACTIVE, HOT_OPS_PER_KEY, hot_key),
        cold: Window::new(COLD_KEYS_ACTIVE, COLD_OPS_PER_KEY, cold_key),
        listed: Window::new(LISTED_KEYS_ACTIVE, LISTED_OPS_PER_KEY, listed_key),
        focus: Mutex::new(None),
        seed,
    };
    let (nemesis, outs) = run_workload(&mut cluster, &ctx, secs);
    let events = match nemesis {
        Ok(ev) => ev,
        Err(e) => panic!("nemesis failed: {e}"),
    };
    let mut g = gather(outs.clients, outs.racers, outs.counters);
    let (mut listers, ranges) = (outs.listers, list_ranges(&ctx));
    listers.push(final_passes(&ctx.run, &ranges, LIST_LIMIT_MAX));
    let (list, list_problems) = list_reads(&listers, &mut g.recs);
    g.problems.extend(list_problems);
    let finals = final_phase(&ctx, &mut g);
    let budget = Duration::from_millis(FINAL_READS_TOTAL_MS);
    let count = final_count(&ctx.run, COUNTER_KEY, budget);
    let (recs, stats, mut problems) = (g.recs, g.stats, g.problems);
    let statuses = cluster.stop_all();
    for (i, st) in statuses.iter().enumerate() {
        if !st.is_some_and(|s| s.success()) {
            problems.push(format!("node {i} did not stop cleanly on SIGTERM: {st:?}"));
        }
    }
    report_run(&events, &stats);
    print_listers(&listers, &list);
    problems.extend(verify_race_and_counter(
        &recs,
        &finals,
        &g.race_answers,
        &g.counted,
        count,
    ));
    problems.extend(verify(&recs, &finals, &stats, &list));
    if !problems.is_empty() {
        let shown = problems.len().min(PROBLEMS_SHOWN_MAX);
        panic!(
            "fault test failed ({} problems, first {shown} shown):\n{}",
            problems.len(),
            problems[..shown].join("\n")
        );
    }
}

/// The final reads of every key of the history, after healing, counted as the final phase;
/// what failed goes to the problems.
fn final_phase(ctx: &Ctx, g: &mut Gathered) -> Vec<Rec> {
    let keys: BTreeSet<String> = g.recs.iter().map(|r| r.key.clone()).collect();
    let budget = Duration::from_millis(FINAL_READS_TOTAL_MS);
    let finals = final_reads(&ctx.run, &keys, budget);
    let st = &mut g.stats[Phase::Final as usize];
    (st.ops_ok, st.ops_failed) = (finals.recs.len() as u64, finals.unreadable.len() as u64);
    st.ops = st.ops_ok + st.ops_failed;
    st.attempts = finals.classes;
    let unexpected = finals.unexpected.iter();
    g.problems
        .extend(unexpected.map(|u| format!("unexpected answer: {u}")));
    let unread = finals.unreadable.iter();
    g.problems
        .extend(unread.map(|k| format!("final read failed: {k}")));
    finals.recs
}

/// What the workload's threads hand back.
struct Outs {
    clients: Vec<ClientOut>,
    racers: Vec<RacerOut>,
    counters: Vec<CounterOut>,
    listers: Vec<ListerOut>,
}

/// The threads' outputs together: the recorded history (clients' and racers'), the clients'
/// statistics, the answers that made no sense, the racers' answers, the counter's counts.
struct Gathered {
    recs: Vec<Rec>,
    stats: Stats,
    problems: Vec<String>,
    race_answers: [u64; REPLY_CLASSES],
    counted: CounterOut,
}

fn gather(clients: Vec<ClientOut>, racers: Vec<RacerOut>, counters: Vec<CounterOut>) -> Gathered {
    let mut g = Gathered {
        recs: Vec::new(),
        stats: Default::default(),
        problems: Vec::new(),
        race_answers: [0; REPLY_CLASSES],
        counted: CounterOut::default(),
    };
    for o in clients {
        g.recs.extend(o.recs);
        for (a, b) in g.stats.iter_mut().zip(o.stats.iter()) {
            a.add(b);
        }
        g.problems.extend(o.unexpected);
    }
    for o in racers {
        g.recs.extend(o.recs);
        g.race_answers = std::array::from_fn(|i| g.race_answers[i] + o.classes[i]);
        g.problems.extend(o.unexpected);
    }
    for o in counters {
        g.counted.add(&o);
        g.problems.extend(o.unexpected);
    }
    g.problems = g
        .problems
        .iter()
        .map(|u| format!("unexpected answer: {u}"))
        .collect();
    g
}

/// The clients, the racers, the counter's clients and the listers, under the nemeses for
/// `secs`; the cluster is healed before they are stopped.
fn run_workload(cluster: &mut Cluster, ctx: &Ctx, secs: u64) -> (Result<Vec<Event>, String>, Outs) {
    let nodes = cluster.size();
    let race = Race::new(nodes, Duration::from_millis(RACE_PAUSE_MS), usize::MAX);
    let pause = Duration::from_millis(COUNTER_PAUSE_MS);
    let (listed, hot, focus) = (
        || list_ranges(ctx)[0].clone(),
        || list_ranges(ctx)[1].clone(),
        || ctx.list_focus(),
    );
    let plan = ListPlan {
        ranges: &[&listed, &hot],
        focus: &focus,
        limits: LIST_LIMIT_MIN..=LIST_LIMIT_MAX,
        pause: Duration::from_millis(LIST_PASS_PAUSE_MS),
        seed: ctx.seed,
    };
    std::thread::scope(|s| {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|id| s.spawn(move || client_loop(id, ctx)))
            .collect();
        let race = &race;
        let racers: Vec<_> = (0..nodes)
            .map(|me| s.spawn(move || race.run(me, &ctx.run)))
            .collect();
        let counters: Vec<_> = (0..nodes)
            .map(|me| s.spawn(move || count_up(me, COUNTER_KEY, &ctx.run, pause, u64::MAX)))
            .collect();
        let plan = &plan;
        let listers: Vec<_> = (0..LISTERS)
            .map(|me| s.spawn(move || list_loop(me, &ctx.run, plan)))
            .collect();
        let result = {
            // However the nemesis ends, the client threads finish.
            let _stop = ctx.run.stop_on_drop();
            run_nemeses(cluster, ctx, secs).and_then(|ev| cluster.heal_all().map(|()| ev))
        };
        let outs = Outs {
            clients: clients
                .into_iter()
                .map(|h| h.join().unwrap_or_default())
                .collect(),
            racers: racers
                .into_iter()
                .map(|h| h.join().unwrap_or_default())
                .collect(),
            counters: counters
                .into_iter()
                .map(|h| h.join().unwrap_or_default())
                .collect(),
            listers: listers
                .into_iter()
                .map(|h| h.join().unwrap_or_default())
                .collect(),
        };
        (result, outs)
    })
}
