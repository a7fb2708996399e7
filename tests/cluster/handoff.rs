//! Hinted handoff on the real binary (DESIGN §6): three nodes with anti-entropy switched off
//! (`MOSTDB_ANTI_ENTROPY=off`), so that only hints can bring a node up to date. Node 2 is
//! killed, a few thousand sets and deletes go through the other two, node 2 is restarted, and
//! its own replica (`POST /mostdb/api/get`: the node's local copy, no quorum) must then hold
//! every value and every delete within `CATCH_UP_MS`. The missed writes overwrite and delete
//! keys node 2 held before, so a tombstone that never arrived shows up as a stale value.
//!
//! The control runs the same with hints off too (`MOSTDB_HINTS=off`) and requires node 2 to
//! be still behind at the end of the same window: nothing but hints makes the first test
//! pass. `HANDOFF_PLANT=no-hints` switches hints off in the first test as well, which must
//! then fail.
//!
//! The nodes' logs say how fast each core replayed its hints ("hints replayed; queue empty",
//! with `per_s`); the first test prints those lines with the time node 2 took to catch up.

use std::time::{Duration, Instant};

use crate::support::cluster::{Cluster, ClusterSpec};
use crate::support::workload::{apply_to, local_get, write_all, Expected, Op};

/// Keys written while every node is up.
const INITIAL_KEYS: usize = 3_000;
/// Keys first written while node 2 is down.
const NEW_KEYS: usize = 1_000;
/// How long the restarted node may take to hold every write it missed.
const CATCH_UP_MS: u64 = 10_000;
/// How long the first writes may take to reach every node (they go to all three at once;
/// this only covers a loaded machine).
const SETTLE_INITIAL_MS: u64 = 10_000;
/// `MOSTDB_TIMEOUT_MS` of every node: generous, the machine is shared and the build unoptimised.
const NODE_TIMEOUT_MS: u64 = 2_000;
/// Pause before re-reading the keys a node does not hold yet.
const RECHECK_PAUSE_MS: u64 = 100;
/// Wrong keys named in a failure message.
const SHOWN_WRONG_KEYS: usize = 5;
/// The restarted node.
const DOWN: usize = 2;

fn key(i: usize) -> String {
    format!("hint-{i:06}")
}

fn spec(hints: bool) -> ClusterSpec {
    let mut spec = ClusterSpec {
        op_timeout_ms: NODE_TIMEOUT_MS,
        ..ClusterSpec::default()
    };
    spec.env.push(("MOSTDB_ANTI_ENTROPY".into(), "off".into()));
    let planted = std::env::var("HANDOFF_PLANT").is_ok_and(|v| v == "no-hints");
    if !hints || planted {
        spec.env.push(("MOSTDB_HINTS".into(), "off".into()));
    }
    spec
}

fn initial_ops() -> Vec<Op> {
    (0..INITIAL_KEYS)
        .map(|i| Op::Set(key(i), format!("a-{i}")))
        .collect()
}

/// The writes node 2 misses: a third of the keys deleted, a third overwritten, new keys.
fn missed_ops() -> Vec<Op> {
    let mut ops = Vec::new();
    for i in 0..INITIAL_KEYS {
        match i % 3 {
            0 => ops.push(Op::Del(key(i))),
            1 => ops.push(Op::Set(key(i), format!("b-{i}"))),
            _ => {}
        }
    }
    ops.extend((INITIAL_KEYS..INITIAL_KEYS + NEW_KEYS).map(|i| Op::Set(key(i), format!("c-{i}"))));
    ops
}

/// Waits until node `node`'s own replica reads as `expected` for every key; returns how long
/// that took, or (at `within`) how many keys were still wrong, with a few examples.
fn wait_caught_up(
    cluster: &Cluster,
    node: usize,
    expected: &Expected,
    within: Duration,
) -> Result<Duration, (usize, String)> {
    let started = Instant::now();
    let mut client = cluster.node(node).client();
    let mut pending: Vec<(&String, &Option<String>)> = expected.iter().collect();
    loop {
        pending.retain(|(key, want)| local_get(&mut client, key) != **want);
        if pending.is_empty() {
            return Ok(started.elapsed());
        }
        if started.elapsed() >= within {
            let shown: Vec<String> = pending
                .iter()
                .take(SHOWN_WRONG_KEYS)
                .map(|(key, want)| {
                    let has = local_get(&mut client, key);
                    format!("{key}: want {want:?}, has {has:?}")
                })
                .collect();
            return Err((pending.len(), format!("{shown:?}")));
        }
        std::thread::sleep(Duration::from_millis(RECHECK_PAUSE_MS));
    }
}

/// Starts a cluster, writes the first keys through every node and waits until node 2 holds
/// them; kills node 2, writes what it misses through the others, restarts it. Returns the
/// cluster, what every key should read as, and how many writes node 2 missed.
fn miss_writes_and_restart(hints: bool) -> (Cluster, Expected, usize) {
    let mut cluster = Cluster::start(&spec(hints));
    // A write sent before every link is up may miss node 2 for good (hints are off in the
    // control test, anti-entropy in both).
    cluster.wait_links_up();
    let mut expected = Expected::new();
    let ops = initial_ops();
    write_all(&cluster.addrs(), &[0, 1, 2], &ops);
    apply_to(&mut expected, &ops);
    let settle = Duration::from_millis(SETTLE_INITIAL_MS);
    if let Err((wrong, shown)) = wait_caught_up(&cluster, DOWN, &expected, settle) {
        panic!("the first writes did not all reach node {DOWN}: {wrong} wrong, e.g. {shown}");
    }
    cluster.kill9(DOWN);
    let missed = missed_ops();
    let started = Instant::now();
    write_all(&cluster.addrs(), &[0, 1], &missed);
    eprintln!(
        "{} writes missed by node {DOWN} took {} ms",
        missed.len(),
        started.elapsed().as_millis()
    );
    apply_to(&mut expected, &missed);
    cluster.restart(DOWN).expect("node 2 restarts");
    (cluster, expected, missed.len())
}

/// The nodes' log lines about replayed hints.
fn replay_lines(cluster: &Cluster) -> Vec<String> {
    (0..cluster.size())
        .filter_map(|i| std::fs::read_to_string(cluster.node(i).log_path()).ok())
        .flat_map(|log| {
            log.lines()
                .filter(|l| l.contains("hints replayed"))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn a_restarted_node_gets_every_write_it_missed_from_hints() {
    let (cluster, expected, missed) = miss_writes_and_restart(true);
    let within = Duration::from_millis(CATCH_UP_MS);
    match wait_caught_up(&cluster, DOWN, &expected, within) {
        Ok(took) => eprintln!(
            "node {DOWN} holds all {missed} missed writes (sets and deletes) {} ms after it was ready",
            took.as_millis()
        ),
        Err((wrong, shown)) => panic!(
            "node {DOWN} still has {wrong} of {} keys wrong after {CATCH_UP_MS} ms, e.g. {shown}",
            expected.len()
        ),
    }
    for line in replay_lines(&cluster) {
        eprintln!("  {line}");
    }
}

#[test]
fn without_hints_the_restarted_node_stays_behind() {
    let (cluster, expected, missed) = miss_writes_and_restart(false);
    let within = Duration::from_millis(CATCH_UP_MS);
    match wait_caught_up(&cluster, DOWN, &expected, within) {
        Ok(took) => panic!(
            "node {DOWN} caught up on {missed} writes in {} ms without hints or anti-entropy: \
             the hint test would prove nothing",
            took.as_millis()
        ),
        // Every missed write is still missing: nothing else delivered any of them.
        Err((wrong, _)) => assert_eq!(wrong, missed, "keys node {DOWN} lacks without hints"),
    }
    assert!(replay_lines(&cluster).is_empty(), "no hints were replayed");
}
