//! Compare-and-set across three real nodes (DESIGN §10), with clients on every node at once:
//!
//! * racing creates: for each key, one client per node sends create-if-absent with its own
//!   value at the same moment; at most one applies per key, and every later read (through any
//!   node) returns the winner's value;
//! * a counter incremented by read-then-CAS loops from every node: its final value equals
//!   the number of CAS that answered success (plus, at most, the indeterminate ones).
//!
//! * a CAS promise left behind without an accept (a compare that failed on a majority while
//!   the minority held an unacknowledged write below the ballot) does not keep the replicas
//!   apart: anti-entropy's copy is refused by the promise, and once the promise is old, a
//!   consensus read settles the key.
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
use crate::support::proxy::CutMode;
use crate::support::recorded::{
    check_counter, check_race, count_up, final_count, final_reads, CounterOut, Race, Run,
};
use crate::support::{k, kv, request, Resp, IO_TIMEOUT_MS};

use serde_json::Value;

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

/// How long the replicas may take to agree again after the partition heals (the promise must
/// first be twice the deadline old, then an anti-entropy pass settles it).
const SETTLE_MS: u64 = 30_000;

/// An answer's JSON (HTTP 200 expected).
fn json(resp: &Resp) -> Value {
    assert_eq!(resp.status, 200, "{}", resp.body_str());
    serde_json::from_slice(&resp.body).unwrap_or_else(|e| panic!("{e}: {}", resp.body_str()))
}

/// `mostdb_anti_entropy_copies_refused_total` of `node`.
fn copies_refused(cluster: &Cluster, node: usize) -> u64 {
    let resp = cluster
        .node(node)
        .client()
        .call(&request("GET", "/metrics", &[], b""));
    let text = resp.body_str();
    text.lines()
        .find_map(|l| l.strip_prefix("mostdb_anti_entropy_copies_refused_total "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no refused copies counter in:\n{text}"))
}

#[test]
fn a_promise_left_behind_does_not_keep_the_replicas_apart() {
    let env = |k: &str, v: &str| (k.to_string(), v.to_string());
    let mut cluster = Cluster::start(&ClusterSpec {
        op_timeout_ms: 1_000,
        env: vec![
            env("MOSTDB_HINTS", "off"),
            env("MOSTDB_ANTI_ENTROPY_INTERVAL_MS", "1000"),
        ],
        ..ClusterSpec::default()
    });
    cluster.wait_links_up();
    // A write through node 2 that only node 2 keeps: the others are paused while it is sent
    // (their kernels buffer it), then killed, which drops it unread.
    cluster.pause(0);
    cluster.pause(1);
    let lone = json(
        &cluster
            .node(2)
            .client()
            .post("/mostdb/set", &kv("left", "lone")),
    );
    assert_eq!(lone["indeterminate"], true, "{lone}");
    cluster.kill9(0);
    cluster.kill9(1);
    cluster.isolate(2, CutMode::Refuse);
    cluster.revive();
    cluster.wait_ready(0).expect("node 0 back");
    cluster.wait_ready(1).expect("node 1 back");
    // Through node 0: a compare that fails on the majority, which keeps the ballot promised
    // above the lone write, with nothing accepted at it.
    let failed = json(&cluster.node(0).client().post(
        "/mostdb/cas",
        r#"{"key":"left","expect":{"value":"other"},"value":"x"}"#,
    ));
    assert_eq!(failed["message"], "CompareFailed", "{failed}");
    cluster.heal_links();
    let locals = |cluster: &Cluster| -> Vec<String> {
        (0..cluster.size())
            .map(|n| {
                let resp = cluster.node(n).client().post("/mostdb/api/get", &k("left"));
                resp.body_str().to_string()
            })
            .collect()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(SETTLE_MS);
    loop {
        let now = locals(&cluster);
        if now.iter().all(|l| *l == now[0]) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the replicas still differ after {SETTLE_MS} ms: {now:?}\n{}",
            cluster.logs(30)
        );
        thread::sleep(std::time::Duration::from_millis(200));
    }
    let refused: u64 = (0..cluster.size())
        .map(|n| copies_refused(&cluster, n))
        .sum();
    assert!(
        refused > 0,
        "no copy was refused: the test did not leave a promise behind"
    );
    cluster.stop_all();
}
