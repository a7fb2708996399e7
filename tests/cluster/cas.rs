//! Compare-and-set across three real nodes (DESIGN §10), with clients on every node at once:
//!
//! * racing creates: for each key, one client per node sends create-if-absent with its own
//!   value at the same moment; at most one applies per key, and every later read (through any
//!   node) returns the winner's value;
//! * a counter incremented by read-then-CAS loops from every node: its final value equals
//!   the number of CAS that answered success (plus, at most, the indeterminate ones).
//!
//! The workloads and their checks are `support/recorded.rs`'s, which the fault test runs under
//! its nemeses; here the cluster is healthy. The shares of outcomes are printed
//! (`cargo test --test cluster cas:: -- --nocapture`).

use std::collections::BTreeSet;
use std::thread;
use std::time::Duration;

use crate::support::cluster::{Cluster, ClusterSpec};
use crate::support::history::{self, Verdict};
use crate::support::kv::ReplyClass;
use crate::support::recorded::{
    check_counter, check_race, count_up, final_count, final_reads, CounterOut, Race, Run,
};
use crate::support::IO_TIMEOUT_MS;

/// Keys raced for in the creates test.
const RACE_KEYS: usize = 40;
/// Increments each node's client attempts in the counter test.
const COUNTER_ATTEMPTS: u64 = 60;
/// `MOSTDB_TIMEOUT_MS`: an unoptimised build on a shared machine.
const NODE_TIMEOUT_MS: u64 = 3_000;
/// Time budget of the final reads.
const FINAL_READS_MS: u64 = 30_000;

fn start() -> (Cluster, Run) {
    let cluster = Cluster::start(&ClusterSpec {
        op_timeout_ms: NODE_TIMEOUT_MS,
        ..ClusterSpec::default()
    });
    cluster.wait_links_up();
    let run = Run::new(cluster.addrs(), Duration::from_millis(IO_TIMEOUT_MS));
    (cluster, run)
}

#[test]
fn racing_creates_from_every_node_apply_at_most_once_per_key() {
    let (cluster, run) = start();
    let race = Race::new(cluster.size(), Duration::ZERO, RACE_KEYS);
    let (race, run) = (&race, &run);
    let racers: Vec<_> = thread::scope(|s| {
        let racers: Vec<_> = (0..cluster.size())
            .map(|me| s.spawn(move || race.run(me, run)))
            .collect();
        racers
            .into_iter()
            .map(|t| t.join().expect("racer"))
            .collect()
    });
    let unexpected: Vec<&String> = racers.iter().flat_map(|o| &o.unexpected).collect();
    assert!(unexpected.is_empty(), "{unexpected:?}");
    let attempts: Vec<_> = racers.iter().flat_map(|o| o.recs.iter().cloned()).collect();
    let keys: BTreeSet<String> = (0..RACE_KEYS).map(Race::key).collect();
    let finals = final_reads(run, &keys, Duration::from_millis(FINAL_READS_MS));
    assert!(finals.unreadable.is_empty(), "{:?}", finals.unreadable);
    let (race, problems) = check_race(&attempts, &finals.recs);
    assert!(problems.is_empty(), "{problems:#?}\n{}", cluster.logs(30));
    let mut all = attempts;
    all.extend(finals.recs);
    for r in history::check(&all, Duration::from_secs(10)) {
        assert_eq!(r.verdict, Verdict::Linearizable, "{}", r.key);
    }
    let count = |c: ReplyClass| racers.iter().map(|o| o.classes[c as usize]).sum::<u64>();
    println!(
        "racing creates: {} of {} keys had a winner; answers: applied {}, compare failed {}, \
         not most {}, indeterminate {}",
        race.won,
        race.keys,
        count(ReplyClass::Ok),
        count(ReplyClass::CompareFailed),
        count(ReplyClass::NotMost),
        count(ReplyClass::NotMostIndeterminate) + count(ReplyClass::Lost)
    );
    assert_eq!(race.keys, RACE_KEYS);
    assert!(
        race.won * 2 >= RACE_KEYS,
        "a winner in {} of {RACE_KEYS} races only",
        race.won
    );
}

#[test]
fn a_counter_incremented_by_cas_from_every_node_counts_every_success() {
    let (cluster, run) = start();
    cluster
        .node(0)
        .client()
        .post("/mostdb/set", r#"{"key":"counter","value":"0"}"#);
    let run = &run;
    let outs: Vec<CounterOut> = thread::scope(|s| {
        let workers: Vec<_> = (0..cluster.size())
            .map(|me| {
                s.spawn(move || count_up(me, "counter", run, Duration::ZERO, COUNTER_ATTEMPTS))
            })
            .collect();
        workers
            .into_iter()
            .map(|t| t.join().expect("worker"))
            .collect()
    });
    let mut total = CounterOut::default();
    for o in &outs {
        assert!(o.unexpected.is_empty(), "{:?}", o.unexpected);
        total.add(o);
    }
    let budget = Duration::from_millis(FINAL_READS_MS);
    let value = final_count(run, "counter", budget)
        .expect("a number")
        .expect("a node answered");
    println!(
        "counter: {value} after {} successful CAS ({} indeterminate, {} compare failed, {} not \
         most, {} reads failed) of {} attempts",
        total.applied,
        total.indeterminate,
        total.compare_failed,
        total.failed,
        total.reads_failed,
        total.attempts()
    );
    if let Err(e) = check_counter(value, &total) {
        panic!("{e}\n{}", cluster.logs(30));
    }
    assert!(total.applied > 0, "no increment ever applied");
}
