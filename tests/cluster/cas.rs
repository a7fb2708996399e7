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
//! The shares of outcomes are printed (`cargo test --test cluster cas:: -- --nocapture`).

use std::sync::{Arc, Barrier};
use std::thread;

use serde_json::Value;

use crate::support::cluster::{Cluster, ClusterSpec};
use crate::support::proxy::CutMode;
use crate::support::{k, kv, request, Client, Resp};

const CAS: &str = "/mostdb/cas";
/// Keys raced for in the creates test.
const RACE_KEYS: usize = 40;
/// Increments each node's client attempts in the counter test.
const COUNTER_ATTEMPTS: usize = 60;
/// `MOSTDB_TIMEOUT_MS`: an unoptimised build on a shared machine.
const NODE_TIMEOUT_MS: u64 = 3_000;

fn json(resp: &Resp) -> Value {
    assert_eq!(resp.status, 200, "{}", resp.body_str());
    serde_json::from_slice(&resp.body).unwrap_or_else(|e| panic!("{e}: {}", resp.body_str()))
}

fn start() -> Cluster {
    let cluster = Cluster::start(&ClusterSpec {
        op_timeout_ms: NODE_TIMEOUT_MS,
        ..ClusterSpec::default()
    });
    cluster.wait_links_up();
    cluster
}

/// How a CAS ended, from its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Applied,
    CompareFailed,
    NotMost,
    Indeterminate,
}

fn outcome(answer: &Value) -> Outcome {
    match (answer["code"].as_u64(), answer["indeterminate"].as_bool()) {
        (Some(200), _) => Outcome::Applied,
        (Some(409), _) => Outcome::CompareFailed,
        (Some(500), Some(true)) => Outcome::Indeterminate,
        (Some(500), _) if answer["message"] == "NotMost" => Outcome::NotMost,
        _ => panic!("not a CAS answer: {answer}"),
    }
}

#[test]
fn racing_creates_from_every_node_apply_at_most_once_per_key() {
    let cluster = start();
    let nodes = cluster.size();
    let barrier = Arc::new(Barrier::new(nodes));
    let racers: Vec<_> = (0..nodes)
        .map(|n| {
            let addr = cluster.node(n).addr();
            let barrier = barrier.clone();
            thread::spawn(move || {
                let mut c = Client::connect(addr);
                (0..RACE_KEYS)
                    .map(|key| {
                        let body = format!(
                            r#"{{"key":"race-{key}","expect":{{"absent":true}},"value":"node-{n}"}}"#
                        );
                        barrier.wait();
                        outcome(&json(&c.post(CAS, &body)))
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let outcomes: Vec<Vec<Outcome>> = racers
        .into_iter()
        .map(|t| t.join().expect("racer"))
        .collect();
    let mut won = 0;
    for key in 0..RACE_KEYS {
        let per_node: Vec<Outcome> = outcomes.iter().map(|o| o[key]).collect();
        let winners: Vec<usize> = (0..nodes)
            .filter(|&n| per_node[n] == Outcome::Applied)
            .collect();
        assert!(winners.len() <= 1, "race-{key}: {per_node:?}");
        if let [winner] = winners[..] {
            won += 1;
            for reader in 0..nodes {
                let got = json(
                    &cluster
                        .node(reader)
                        .client()
                        .post("/mostdb/get", &k(&format!("race-{key}"))),
                );
                assert_eq!(
                    got["result"]["value"],
                    format!("node-{winner}"),
                    "race-{key} read through node {reader}: {got} after {per_node:?}\n{}",
                    cluster.logs(30)
                );
            }
        }
    }
    let count = |o| outcomes.iter().flatten().filter(|x| **x == o).count();
    println!(
        "racing creates: {won} of {RACE_KEYS} keys had a winner; outcomes: applied {}, \
         compare failed {}, not most {}, indeterminate {}",
        count(Outcome::Applied),
        count(Outcome::CompareFailed),
        count(Outcome::NotMost),
        count(Outcome::Indeterminate)
    );
    assert!(
        won * 2 >= RACE_KEYS,
        "a winner in {won} of {RACE_KEYS} races only"
    );
}

/// One increment: read the counter with its version, CAS it one up against that version.
fn increment(c: &mut Client) -> Outcome {
    let path = "/mostdb/get?key=counter&with_version=true";
    let got = json(&c.call(&request("GET", path, &[], b"")));
    let (Some(value), Some(version)) = (
        got["result"]["value"].as_str(),
        got["result"]["version"].as_str(),
    ) else {
        return Outcome::NotMost; // the read failed (NotMost): nothing tried
    };
    let next: u64 = value.parse::<u64>().expect("a number") + 1;
    let body =
        format!(r#"{{"key":"counter","expect":{{"version":"{version}"}},"value":"{next}"}}"#);
    outcome(&json(&c.post(CAS, &body)))
}

#[test]
fn a_counter_incremented_by_cas_from_every_node_counts_every_success() {
    let cluster = start();
    cluster
        .node(0)
        .client()
        .post("/mostdb/set", r#"{"key":"counter","value":"0"}"#);
    let workers: Vec<_> = (0..cluster.size())
        .map(|n| {
            let addr = cluster.node(n).addr();
            thread::spawn(move || {
                let mut c = Client::connect(addr);
                (0..COUNTER_ATTEMPTS)
                    .map(|_| increment(&mut c))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let outcomes: Vec<Outcome> = workers
        .into_iter()
        .flat_map(|t| t.join().expect("worker"))
        .collect();
    let count = |o| outcomes.iter().filter(|x| **x == o).count() as u64;
    let (applied, indeterminate) = (count(Outcome::Applied), count(Outcome::Indeterminate));
    let got = json(&cluster.node(1).client().post("/mostdb/get", &k("counter")));
    let value: u64 = got["result"]["value"]
        .as_str()
        .expect("a value")
        .parse()
        .expect("a number");
    println!(
        "counter: {value} after {applied} successful CAS ({indeterminate} indeterminate, {} \
         compare failed, {} not most) of {} attempts",
        count(Outcome::CompareFailed),
        count(Outcome::NotMost),
        outcomes.len()
    );
    assert!(
        (applied..=applied + indeterminate).contains(&value),
        "counter {value}, {applied} applied, {indeterminate} indeterminate\n{}",
        cluster.logs(30)
    );
    assert!(applied > 0, "no increment ever applied");
}

/// How long the replicas may take to agree again after the partition heals (the promise must
/// first be twice the deadline old, then an anti-entropy pass settles it).
const SETTLE_MS: u64 = 30_000;

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
        CAS,
        r#"{"key":"left","expect":{"value":"other"},"value":"x"}"#,
    ));
    assert_eq!(outcome(&failed), Outcome::CompareFailed, "{failed}");
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
