//! The seeded protocol simulator (DESIGN §9, layer 2): the crate's replica rules and
//! coordinator state machines, driven through a simulated cluster with faults, checked
//! against invariants I1–I8 at every step and for linearizability per key at the end, and
//! against the clock bound of DESIGN §14: B1 no replica stores a version beyond its physical
//! clock plus the bound, B2 no clock observes a value beyond it.

mod clients;
mod config;
pub mod history;
mod rng;
pub mod scenarios;
mod skew;
mod world;

use std::time::Instant;

/// Events one seed may take; far above what a seed needs (a runaway is a failure).
const STEPS_MAX: u64 = 2_000_000;

/// What a seed did, summed over seeds for the report and the coverage checks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub ok: u64,
    pub not_most: u64,
    pub indeterminate: u64,
    pub reads_ok: u64,
    pub reads_failed: u64,
    pub safe_writes: u64,
    pub versions_asked: u64,
    pub repairs: u64,
    pub hints: u64,
    pub copies: u64,
    pub strays: u64,
    pub aborted: u64,
    pub crashes: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub not_sent: u64,
    pub cuts: u64,
    /// Amnesia faults, recoveries finished, client operations refused while recovering.
    pub wipes: u64,
    pub recoveries: u64,
    pub refused: u64,
    /// Versions a replica refused as beyond its clock bound (and recoveries held back by one),
    /// values a clock did not observe, far clock jumps, forged far-future versions.
    pub refused_future: u64,
    pub ignored_observations: u64,
    pub far_jumps: u64,
    pub forged: u64,
    /// CAS outcomes: applied, compare failed, definite and indeterminate failures.
    pub cas_applied: u64,
    pub cas_compare_failed: u64,
    pub cas_failed: u64,
    pub cas_indeterminate: u64,
    /// Writes with a time to live, and reads that found a key expired (NotFound at an
    /// expiry's version).
    pub expiring_writes: u64,
    pub reads_expired: u64,
    /// Invariant violations let through (non-strict runs only).
    pub violations: u64,
}

impl Stats {
    fn add(&mut self, o: &Stats) {
        self.ok += o.ok;
        self.not_most += o.not_most;
        self.indeterminate += o.indeterminate;
        self.reads_ok += o.reads_ok;
        self.reads_failed += o.reads_failed;
        self.safe_writes += o.safe_writes;
        self.versions_asked += o.versions_asked;
        self.repairs += o.repairs;
        self.hints += o.hints;
        self.copies += o.copies;
        self.strays += o.strays;
        self.aborted += o.aborted;
        self.crashes += o.crashes;
        self.lost += o.lost;
        self.duplicated += o.duplicated;
        self.not_sent += o.not_sent;
        self.cuts += o.cuts;
        self.wipes += o.wipes;
        self.recoveries += o.recoveries;
        self.refused += o.refused;
        self.refused_future += o.refused_future;
        self.ignored_observations += o.ignored_observations;
        self.far_jumps += o.far_jumps;
        self.forged += o.forged;
        self.cas_applied += o.cas_applied;
        self.cas_compare_failed += o.cas_compare_failed;
        self.cas_failed += o.cas_failed;
        self.cas_indeterminate += o.cas_indeterminate;
        self.expiring_writes += o.expiring_writes;
        self.reads_expired += o.reads_expired;
        self.violations += o.violations;
    }
}

/// What one seed ended with: its stats and, on failure, a printable report.
pub struct SeedRun {
    pub stats: Stats,
    pub failure: Option<String>,
    /// Every operation's outcome, in order: two runs of a seed must agree exactly.
    pub outcomes: String,
}

/// Runs one seed to the end (every client's operations done). `strict`: an invariant
/// violation ends the run as a failure; otherwise only the linearizability check can fail it.
pub fn run_seed(seed: u64, strict: bool) -> SeedRun {
    let mut w = world::World::new(seed);
    w.strict = strict;
    w.start_background();
    let mut clients = clients::Clients::new(&mut w);
    let result =
        run_events(&mut w, &mut clients).and_then(|()| history::check(&w.history.recs, w.cfg.keys));
    let outcomes = w
        .history
        .recs
        .iter()
        .map(|r| {
            format!(
                "{} {} {:?} {:?} {:?} {}\n",
                r.pid, r.key, r.op, r.call, r.ret, r.note
            )
        })
        .collect();
    SeedRun {
        stats: w.stats.clone(),
        failure: result
            .err()
            .map(|e| format!("seed {seed} FAILED at t={} ms: {e}\n{:?}", w.now, w.cfg)),
        outcomes,
    }
}

fn run_events(w: &mut world::World, clients: &mut clients::Clients) -> world::Check {
    let mut steps = 0;
    let trace = std::env::var_os("SIM_TRACE").is_some();
    while !clients.all_done() {
        let event = w.pop().ok_or("the event queue ran dry")?;
        if trace {
            println!("{:>5} {event:?}", w.now);
        }
        clients.step(w, event)?;
        // I2 at every step: no replica holds less than it has revealed.
        for node in 0..w.cfg.nodes {
            w.check_revealed(node)?;
        }
        // I8 at every step: every quorum that may vote meets each acknowledged write.
        w.check_intersection()?;
        steps += 1;
        if steps > STEPS_MAX {
            return Err(format!("no end after {STEPS_MAX} events"));
        }
    }
    Ok(())
}

/// A seed that panics (a `debug_assert!` of the coordinator) is a failure too.
fn run_caught(seed: u64, strict: bool) -> SeedRun {
    std::panic::catch_unwind(|| run_seed(seed, strict)).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        SeedRun {
            stats: Stats::default(),
            failure: Some(format!("seed {seed} PANICKED: {message}")),
            outcomes: String::new(),
        }
    })
}

/// Seeds `first..first + count`: (failures, summed stats). Prints the first few failures.
pub fn run_seeds(first: u64, count: u64, strict: bool) -> (Vec<u64>, Stats) {
    let started = Instant::now();
    let mut failed = Vec::new();
    let mut total = Stats::default();
    let mut slowest = (0.0, first);
    for seed in first..first + count {
        let seed_started = Instant::now();
        let run = run_caught(seed, strict);
        let took = seed_started.elapsed().as_secs_f64();
        if took > slowest.0 {
            slowest = (took, seed);
        }
        total.add(&run.stats);
        if let Some(report) = run.failure {
            if failed.len() < 3 {
                println!("{report}\nreplay: SIM_SEED={seed} cargo test --test simulation\n");
            }
            failed.push(seed);
        }
    }
    println!(
        "simulation: {count} seeds from {first}, {} failed, {:.1} s (slowest: seed {}, {:.0} ms)\n{total:?}",
        failed.len(),
        started.elapsed().as_secs_f64(),
        slowest.1,
        slowest.0 * 1e3
    );
    if !failed.is_empty() {
        println!("failing seeds: {failed:?}");
    }
    (failed, total)
}
