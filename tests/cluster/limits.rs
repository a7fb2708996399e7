//! `MOSTDB_MAX_VALUE_BYTES` in a cluster: it bounds what a node's own clients may submit, never
//! what its peers replicate to it (peer frames are bounded by the highest value any node may
//! set). So a node whose limit is lower than its peers' still takes their larger values, and
//! a limit raised at runtime with `PUT /admin/config?scope=cluster` takes larger values at once
//! on every node, the request body bound included.
//!
//! Checked to fail on the code before: there each node's peer frames were bounded by its own
//! limit at start, so node 2 refused the frame carrying its peers' 2 MiB value (closing the
//! link) and never held it, and raising the limit at runtime was refused (409).

use std::time::Duration;

use crate::support::cluster::{Cluster, ClusterSpec};
use crate::support::workload::{wait_converged, Expected};
use crate::support::{kv, request, OK};

const MIB: usize = 1024 * 1024;
/// How long every node may take to hold a value written through one of them.
const CONVERGE_MS: u64 = 15_000;
/// `MOSTDB_TIMEOUT_MS`: large values through an unoptimised build on a shared machine.
const NODE_TIMEOUT_MS: u64 = 5_000;

/// `len` bytes of printable text that differ from position to position.
fn value(len: usize, seed: u8) -> String {
    (0..len)
        .map(|i| char::from(b'a' + ((i * 7 + seed as usize) % 26) as u8))
        .collect()
}

fn spec(env: &[(&str, &str)]) -> ClusterSpec {
    ClusterSpec {
        op_timeout_ms: NODE_TIMEOUT_MS,
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..ClusterSpec::default()
    }
}

fn converged(cluster: &Cluster, key: &str, value: &str) {
    let expected: Expected = [(key.to_string(), Some(value.to_string()))].into();
    if let Err(e) = wait_converged(
        cluster,
        &[0, 1, 2],
        &expected,
        Duration::from_millis(CONVERGE_MS),
    ) {
        panic!("{e}\n{}", cluster.logs(40));
    }
}

#[test]
fn a_node_with_a_lower_limit_still_takes_its_peers_larger_values() {
    let mut cluster = Cluster::start(&spec(&[]));
    cluster.stop(2);
    cluster.set_env(2, "MOSTDB_MAX_VALUE_BYTES", "1MiB");
    cluster
        .restart(2)
        .expect("node 2 restarts with a 1 MiB limit");
    cluster.wait_links_up();

    let big = value(2 * MIB, 1);
    cluster
        .node(0)
        .client()
        .post("/mostdb/set", &kv("big", &big))
        .assert_json(200, OK);
    converged(&cluster, "big", &big);

    // Node 2's own clients are still held to its limit.
    cluster
        .node(2)
        .client()
        .post("/mostdb/set", &kv("big2", &value(3 * MIB / 2, 4)))
        .assert_bad_param_with_detail();
}

#[test]
fn a_limit_raised_cluster_wide_at_runtime_takes_larger_values_everywhere() {
    let cluster = Cluster::start(&spec(&[("MOSTDB_MAX_VALUE_BYTES", "1MiB")]));
    cluster.wait_links_up();
    let big = value(3 * MIB / 2, 2);
    cluster
        .node(1)
        .client()
        .post("/mostdb/set", &kv("big", &big))
        .assert_bad_param_with_detail();

    let raise = br#"{"MOSTDB_MAX_VALUE_BYTES":"4MiB"}"#;
    let resp =
        cluster
            .node(0)
            .client()
            .call(&request("PUT", "/admin/config?scope=cluster", &[], raise));
    assert_eq!(resp.status, 200, "{}", resp.body_str());

    cluster
        .node(1)
        .client()
        .post("/mostdb/set", &kv("big", &big))
        .assert_json(200, OK);
    converged(&cluster, "big", &big);
    // 3 MiB: over the old body bound (1 MiB and 1 MiB of room) as well as the old limit.
    let bigger = value(3 * MIB, 3);
    cluster
        .node(2)
        .client()
        .post("/mostdb/set", &kv("bigger", &bigger))
        .assert_json(200, OK);
    converged(&cluster, "bigger", &bigger);
}
