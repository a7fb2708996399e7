//! Recovery without a vote on the real binary (DESIGN §4, §7).
//!
//! 1. A brand-new three-node cluster (every store empty) comes up ready on its own and serves.
//! 2. A node whose store is wiped comes back empty. Anti-entropy is off (`MOSTDB_ANTI_ENTROPY=
//!    off`), so only recovery can copy data to it. Before the wipe, key `x` is overwritten
//!    through node 1 while node 0 is cut off: only nodes 1 and 2 hold the new value. After the
//!    wipe, node 2 restarts with node 1 cut off from both others. Then it must not be ready,
//!    and no client operation may use its vote: a set and a get through node 0 (which can only
//!    reach node 2) must fail `NotMost`. Voting here would complete the set and read the old
//!    `x`, a stale read of an acknowledged write. When the links heal, node 2 copies from
//!    both peers, becomes ready, and its own replica (`POST /mostdb/api/get`) holds every
//!    acknowledged key.
//!
//! `RECOVERY_PLANT=off` starts every node with `MOSTDB_RECOVERY=off` (a wiped node votes at
//! once). Test 2 must then fail.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::support::cluster::{Cluster, ClusterSpec};
use crate::support::kv::{classify, KvClient, Reply};
use crate::support::proxy::CutMode;
use crate::support::{k, Client};

/// Keys written before the wipe (`RECOVERY_KEYS` overrides, for measuring).
const KEYS_DEFAULT: usize = 3_000;
/// Client threads that write them.
const WRITERS: usize = 4;
/// `MOSTDB_TIMEOUT_MS` of every node. The machine is shared and the build unoptimised.
const NODE_TIMEOUT_MS: u64 = 2_000;
/// How long a client waits for one answer.
const CLIENT_IO_TIMEOUT_MS: u64 = 6_000;
/// Attempts at one write before the test gives up.
const WRITE_ATTEMPTS_MAX: usize = 6;
/// The wiped node.
const WIPED: usize = 2;
/// The node cut off while node 2 recovers.
const CUT: usize = 1;
/// How long client operations probe whether the recovering node votes.
const PROBE_MS: u64 = 5_000;
/// Pause between two probes.
const PROBE_PAUSE_MS: u64 = 200;
/// Wrong keys named in a failure message.
const SHOWN_WRONG_KEYS: usize = 5;

fn spec() -> ClusterSpec {
    let mut spec = ClusterSpec {
        op_timeout_ms: NODE_TIMEOUT_MS,
        ..ClusterSpec::default()
    };
    spec.env.push(("MOSTDB_ANTI_ENTROPY".into(), "off".into()));
    if std::env::var("RECOVERY_PLANT").is_ok_and(|v| v == "off") {
        spec.env.push(("MOSTDB_RECOVERY".into(), "off".into()));
    }
    spec
}

fn keys() -> usize {
    std::env::var("RECOVERY_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(KEYS_DEFAULT)
}

fn key(i: usize) -> String {
    format!("rec-{i:06}")
}

/// Sets `(key(i), "v-i")` for every i through every node, each write until it is Ok.
fn write_keys(addrs: &[SocketAddr]) {
    let n = keys();
    let chunk = n.div_ceil(WRITERS);
    std::thread::scope(|s| {
        for t in 0..WRITERS {
            s.spawn(move || {
                let timeout = Duration::from_millis(CLIENT_IO_TIMEOUT_MS);
                let mut client = KvClient::new(addrs.to_vec(), timeout);
                for i in t * chunk..((t + 1) * chunk).min(n) {
                    set_ok(&mut client, &[0, 1, 2], &key(i), &format!("v-{i}"));
                }
            });
        }
    });
}

fn set_ok(client: &mut KvClient, nodes: &[usize], key: &str, value: &str) {
    let mut answers = Vec::new();
    for attempt in 0..WRITE_ATTEMPTS_MAX {
        let reply = client.set(nodes[attempt % nodes.len()], key, value);
        if reply == Reply::Ok {
            return;
        }
        answers.push(reply);
    }
    panic!("set {key} never succeeded: {answers:?}");
}

/// The value of `key` in the node's own replica (`None`: absent).
fn local_get(client: &mut Client, key: &str) -> Option<String> {
    let resp = client.post("/mostdb/api/get", &k(key));
    match classify(resp.status, &resp.body) {
        Reply::Value(value) => value,
        other => panic!("local get of {key}: {other:?}"),
    }
}

fn cut_both_ways(cluster: &Cluster, a: usize, b: usize) {
    cluster.link(a, b).cut(CutMode::Refuse);
    cluster.link(b, a).cut(CutMode::Refuse);
}

fn log_lines(cluster: &Cluster, node: usize, needle: &str) -> Vec<String> {
    std::fs::read_to_string(cluster.node(node).log_path())
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_brand_new_cluster_comes_up_on_its_own() {
    let started = Instant::now();
    // `start` waits until every node answers /readyz 200.
    let cluster = Cluster::start(&spec());
    eprintln!("new cluster ready in {} ms", started.elapsed().as_millis());
    let timeout = Duration::from_millis(CLIENT_IO_TIMEOUT_MS);
    let mut client = KvClient::new(cluster.addrs(), timeout);
    for node in 0..cluster.size() {
        let key = format!("new-{node}");
        assert_eq!(
            client.set(node, &key, "v"),
            Reply::Ok,
            "set via node {node}"
        );
        let other = (node + 1) % cluster.size();
        assert_eq!(
            client.get(other, &key),
            Reply::Value(Some("v".into())),
            "get via node {other}"
        );
    }
    if std::env::var("RECOVERY_PLANT").is_err() {
        for node in 0..cluster.size() {
            let lines = log_lines(&cluster, node, "a new cluster");
            assert_eq!(lines.len(), 1, "node {node} decided it was a new cluster");
        }
    }
}

#[test]
fn a_wiped_node_does_not_vote_until_it_has_copied_from_its_peers() {
    let mut cluster = Cluster::start(&spec());
    let timeout = Duration::from_millis(CLIENT_IO_TIMEOUT_MS);
    let mut client = KvClient::new(cluster.addrs(), timeout);
    let started = Instant::now();
    write_keys(&cluster.addrs());
    let n = keys();
    eprintln!("{n} sets took {} ms", started.elapsed().as_millis());
    set_ok(&mut client, &[0], "x", "old");
    // Only nodes 1 and 2 take the new x.
    cut_both_ways(&cluster, 0, 1);
    assert_eq!(client.set(1, "x", "new"), Reply::Ok, "x=new via node 1");
    cluster.kill9(WIPED);
    cluster.wipe_store(WIPED).expect("wipe node 2's store");
    cut_both_ways(&cluster, CUT, WIPED);
    // The restarted node keeps an audit log: its recovery is recorded there.
    let audit = cluster.dir().join("audit-wiped.log");
    cluster.set_env(WIPED, "MOSTDB_AUDIT_LOG", &audit.display().to_string());

    // Node 2 restarts empty; only node 0 reaches it.
    let mut failures = Vec::new();
    if cluster.restart(WIPED).is_ok() {
        failures.push("the wiped node was ready while a peer it must copy from was cut off".into());
    }
    // Node 0's link to node 2 comes back within its reconnect backoff: keep trying until
    // well after, so that a node that did vote would be seen doing it.
    let probing = Instant::now();
    let before = failures.len();
    while probing.elapsed() < Duration::from_millis(PROBE_MS) {
        let set = client.set(0, "y", "1");
        if !matches!(set, Reply::NotMost { .. }) {
            failures.push(format!(
                "a set through node 0 with only the recovering node reachable: {set:?}"
            ));
        }
        let get = client.get(0, "x");
        if !matches!(get, Reply::NotMost { .. }) {
            failures.push(format!(
                "a get of x through node 0 (acknowledged x=new): {get:?}"
            ));
        }
        if failures.len() > before {
            break;
        }
        std::thread::sleep(Duration::from_millis(PROBE_PAUSE_MS));
    }
    let own = client.set(WIPED, "z", "1");
    if !matches!(own, Reply::NotMost { .. }) {
        failures.push(format!("a set through the recovering node: {own:?}"));
    }
    assert!(failures.is_empty(), "recovery failures: {failures:#?}");
    assert!(
        !log_lines(&cluster, WIPED, "still recovering").is_empty(),
        "the wiped node says why it waits"
    );

    let healed = Instant::now();
    cluster.heal_links();
    cluster.wait_ready(WIPED).expect("the wiped node recovers");
    eprintln!(
        "node {WIPED} recovered {n} keys in {} ms after the links healed",
        healed.elapsed().as_millis()
    );
    for line in log_lines(&cluster, WIPED, "recover") {
        eprintln!("  {line}");
    }
    // The writer thread may take a moment after the node says it is ready.
    let recorded = Instant::now();
    let recovery = loop {
        let lines: Vec<String> = std::fs::read_to_string(&audit)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(r#""op":"recovery""#))
            .map(str::to_string)
            .collect();
        if lines.len() >= 2 || recorded.elapsed() > Duration::from_secs(5) {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(recovery.len(), 2, "started and finished: {recovery:?}");
    // The recovery left a promise floor (DESIGN §10) at or above every write it copied.
    let floor = std::fs::read_to_string(cluster.node(WIPED).store_root().join("promise-floor"))
        .expect("the recovered node records its promise floor");
    let floor: u64 = floor.trim().parse().expect("a number");
    assert!(floor > 0, "promise floor {floor}");
    assert!(recovery[0].contains(r#""outcome":"started""#) && recovery[1].contains("finished"));
    let mut node = cluster.node(WIPED).client();
    let mut wrong: Vec<String> = (0..n)
        .filter_map(|i| {
            let has = local_get(&mut node, &key(i));
            (has.as_deref() != Some(format!("v-{i}").as_str()))
                .then(|| format!("{}: has {has:?}", key(i)))
        })
        .collect();
    let x = local_get(&mut node, "x");
    if x.as_deref() != Some("new") {
        wrong.push(format!("x: has {x:?}"));
    }
    assert!(
        wrong.is_empty(),
        "{} keys wrong on the recovered node, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(SHOWN_WRONG_KEYS)]
    );
    assert_eq!(client.get(WIPED, "x"), Reply::Value(Some("new".into())));
    assert_eq!(
        client.set(WIPED, "z", "2"),
        Reply::Ok,
        "the node votes again"
    );
}
