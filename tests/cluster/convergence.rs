//! Convergence on the real binary (DESIGN §6, anti-entropy): three nodes on loopback; one
//! misses writes — stopped with kill -9 and restarted, or cut off from the others by per-link
//! proxies and healed — and its own replica (`POST /mostdb/api/get`, which reads only the
//! node's local copy, no quorum) must then hold every value and every delete within
//! `CONVERGE_MS`. The missed writes overwrite and delete keys the node held before, so a
//! tombstone that never arrived shows up as a stale value.
//!
//! Every node runs with `MOSTDB_HINTS=off`: hinted handoff would replay the missed writes by
//! itself (the `handoff` tests check that), and here anti-entropy alone must do it.
//! `CONVERGENCE_PLANT=no-anti-entropy` starts every node with `MOSTDB_ANTI_ENTROPY=off` (no
//! passes): both tests must then fail, which shows that they can and that nothing else (read
//! repair, hints) makes them pass.
//!
//! The measurements (time to converge, throughput with and without anti-entropy) are in
//! `benches/convergence.rs`.

use std::time::Duration;

use crate::support::cluster::{Cluster, ClusterSpec};
use crate::support::proxy::CutMode;
use crate::support::workload::{apply_to, wait_converged, write_all, Expected, Op};

/// How many keys a test writes: `initial` while every node is up, then, while one node misses
/// them, deletes of a third and overwrites of a third of those and `new` keys.
#[derive(Clone, Copy)]
struct Scale {
    initial: usize,
    new: usize,
}

/// The restart test: 10,000 writes and deletes missed.
const RESTART_SCALE: Scale = Scale {
    initial: 9_000,
    new: 4_000,
};
/// The partition test: 1,750 writes missed (every key is read back on all three nodes).
const PARTITION_SCALE: Scale = Scale {
    initial: 1_500,
    new: 750,
};
/// How long a node that missed writes may take to hold all of them (DESIGN §6 target).
const CONVERGE_MS: u64 = 10_000;
/// How long the writes of the first phase may take to reach every node (they go to all
/// three at once; this only covers a loaded machine).
const SETTLE_INITIAL_MS: u64 = 10_000;
/// `MOSTDB_TIMEOUT_MS` of every node: generous, the machine is shared and the build unoptimised.
const NODE_TIMEOUT_MS: u64 = 2_000;

fn key(i: usize) -> String {
    format!("conv-{i:06}")
}

fn plant_no_anti_entropy() -> bool {
    std::env::var("CONVERGENCE_PLANT").is_ok_and(|v| v == "no-anti-entropy")
}

fn spec(anti_entropy: bool) -> ClusterSpec {
    let mut spec = ClusterSpec {
        op_timeout_ms: NODE_TIMEOUT_MS,
        env: vec![("MOSTDB_HINTS".to_string(), "off".to_string())],
        ..ClusterSpec::default()
    };
    if !anti_entropy || plant_no_anti_entropy() {
        spec.env
            .push(("MOSTDB_ANTI_ENTROPY".to_string(), "off".to_string()));
    }
    spec
}

/// Every key set while all nodes are up.
fn initial_ops(scale: Scale) -> Vec<Op> {
    (0..scale.initial)
        .map(|i| Op::Set(key(i), format!("a-{i}")))
        .collect()
}

/// The writes one node misses: a third of the keys deleted, a third overwritten, new keys.
fn missed_ops(scale: Scale) -> Vec<Op> {
    let mut ops = Vec::new();
    for i in 0..scale.initial {
        match i % 3 {
            0 => ops.push(Op::Del(key(i))),
            1 => ops.push(Op::Set(key(i), format!("b-{i}"))),
            _ => {}
        }
    }
    ops.extend(
        (scale.initial..scale.initial + scale.new).map(|i| Op::Set(key(i), format!("c-{i}"))),
    );
    ops
}

/// Starts a cluster and writes the first phase through every node once they are all
/// connected; returns it once node 2 holds every key (so that the deletes it misses later
/// delete something it has).
fn start_with_initial_keys(expected: &mut Expected, scale: Scale) -> Cluster {
    let cluster = Cluster::start(&spec(true));
    cluster.wait_links_up();
    let ops = initial_ops(scale);
    write_all(&cluster.addrs(), &[0, 1, 2], &ops);
    apply_to(expected, &ops);
    let within = Duration::from_millis(SETTLE_INITIAL_MS);
    if let Err(wrong) = wait_converged(&cluster, &[2], expected, within) {
        panic!("the first writes did not all reach node 2: {wrong}");
    }
    cluster
}

#[test]
fn a_restarted_node_catches_up_on_what_it_missed() {
    let mut expected = Expected::new();
    let mut cluster = start_with_initial_keys(&mut expected, RESTART_SCALE);
    cluster.kill9(2);
    let ops = missed_ops(RESTART_SCALE);
    write_all(&cluster.addrs(), &[0, 1], &ops);
    apply_to(&mut expected, &ops);
    cluster.restart(2).expect("node 2 restarts");
    let within = Duration::from_millis(CONVERGE_MS);
    match wait_converged(&cluster, &[2], &expected, within) {
        Ok(took) => eprintln!(
            "restarted node holds all {} missed writes after {} ms",
            ops.len(),
            took.as_millis()
        ),
        Err(wrong) => panic!("node 2 did not converge within {CONVERGE_MS} ms: {wrong}"),
    }
    // The others held everything all along.
    let settled = Duration::from_millis(SETTLE_INITIAL_MS);
    wait_converged(&cluster, &[0, 1], &expected, settled).expect("nodes 0 and 1 agree");
}

#[test]
fn a_partitioned_node_converges_after_healing() {
    let mut expected = Expected::new();
    let cluster = start_with_initial_keys(&mut expected, PARTITION_SCALE);
    cluster.isolate(2, CutMode::Blackhole);
    let ops = missed_ops(PARTITION_SCALE);
    write_all(&cluster.addrs(), &[0, 1], &ops);
    apply_to(&mut expected, &ops);
    cluster.heal_links();
    let within = Duration::from_millis(CONVERGE_MS);
    match wait_converged(&cluster, &[0, 1, 2], &expected, within) {
        Ok(took) => eprintln!(
            "all nodes agree on {} keys {} ms after healing",
            expected.len(),
            took.as_millis()
        ),
        Err(wrong) => panic!("replicas did not converge within {CONVERGE_MS} ms: {wrong}"),
    }
}
