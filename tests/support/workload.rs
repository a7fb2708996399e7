//! A write workload for the convergence tests and benches: sets and deletes applied through
//! chosen nodes by a few client threads (every op retried on the next node until it is Ok),
//! the state every key should then read as, a node's own copy of a key (`POST
//! /mostdb/api/get`: no quorum), and a wait until chosen nodes' own copies all read so.
//!
//! Must not import the `mostdb` library.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::cluster::Cluster;
use super::kv::{classify, KvClient, Reply};
use super::{k, Client};

/// Client threads that apply a workload.
pub const WRITERS: usize = 4;
/// How long a client waits for one answer.
pub const CLIENT_IO_TIMEOUT_MS: u64 = 6_000;
/// Attempts at one write before the test gives up (a write can be indeterminate when the
/// machine stalls; repeating a set or del leaves the same final state).
pub const WRITE_ATTEMPTS_MAX: usize = 6;
/// Pause before re-reading the keys a node does not hold yet.
pub const RECHECK_PAUSE_MS: u64 = 100;
/// Wrong keys named in a failure message.
pub const SHOWN_WRONG_KEYS: usize = 5;

/// What every key should read as (`None`: absent or deleted).
pub type Expected = BTreeMap<String, Option<String>>;

#[derive(Clone, Debug)]
pub enum Op {
    Set(String, String),
    Del(String),
}

pub fn apply_to(expected: &mut Expected, ops: &[Op]) {
    for op in ops {
        match op {
            Op::Set(k, v) => expected.insert(k.clone(), Some(v.clone())),
            Op::Del(k) => expected.insert(k.clone(), None),
        };
    }
}

/// Applies `ops` through `nodes` (round robin) with `WRITERS` threads; every op must end Ok.
pub fn write_all(addrs: &[SocketAddr], nodes: &[usize], ops: &[Op]) {
    let chunk = ops.len().div_ceil(WRITERS).max(1);
    std::thread::scope(|s| {
        for (t, part) in ops.chunks(chunk).enumerate() {
            s.spawn(move || {
                let timeout = Duration::from_millis(CLIENT_IO_TIMEOUT_MS);
                let mut client = KvClient::new(addrs.to_vec(), timeout);
                for (i, op) in part.iter().enumerate() {
                    write_one(&mut client, nodes, t + i, op);
                }
            });
        }
    });
}

fn write_one(client: &mut KvClient, nodes: &[usize], turn: usize, op: &Op) {
    let mut answers = Vec::new();
    for attempt in 0..WRITE_ATTEMPTS_MAX {
        let node = nodes[(turn + attempt) % nodes.len()];
        let reply = match op {
            Op::Set(k, v) => client.set(node, k, v),
            Op::Del(k) => client.del(node, k),
        };
        if reply == Reply::Ok {
            return;
        }
        answers.push(reply);
    }
    panic!("{op:?} never succeeded: {answers:?}");
}

/// The value of `key` in the node's own replica (`None`: absent or deleted).
pub fn local_get(client: &mut Client, key: &str) -> Option<String> {
    let resp = client.post("/mostdb/api/get", &k(key));
    match classify(resp.status, &resp.body) {
        Reply::Value(value) => value,
        other => panic!("local get of {key}: {other:?}"),
    }
}

/// Waits until the own replica of each of `nodes` reads as `expected` for every key; returns
/// how long that took, or which keys were still wrong at `within`.
pub fn wait_converged(
    cluster: &Cluster,
    nodes: &[usize],
    expected: &Expected,
    within: Duration,
) -> Result<Duration, String> {
    let started = Instant::now();
    let mut clients: Vec<Client> = nodes.iter().map(|&n| cluster.node(n).client()).collect();
    let mut pending: Vec<Vec<(&String, &Option<String>)>> =
        nodes.iter().map(|_| expected.iter().collect()).collect();
    loop {
        for (client, keys) in clients.iter_mut().zip(&mut pending) {
            keys.retain(|(key, want)| local_get(client, key) != **want);
        }
        if pending.iter().all(Vec::is_empty) {
            return Ok(started.elapsed());
        }
        if started.elapsed() >= within {
            return Err(describe_wrong(cluster, nodes, &mut clients, &pending));
        }
        std::thread::sleep(Duration::from_millis(RECHECK_PAUSE_MS));
    }
}

fn describe_wrong(
    cluster: &Cluster,
    nodes: &[usize],
    clients: &mut [Client],
    pending: &[Vec<(&String, &Option<String>)>],
) -> String {
    let mut text = String::new();
    for ((&node, client), keys) in nodes.iter().zip(clients).zip(pending) {
        let shown: Vec<String> = keys
            .iter()
            .take(SHOWN_WRONG_KEYS)
            .map(|(key, want)| format!("{key}: want {want:?}, has {:?}", local_get(client, key)))
            .collect();
        text.push_str(&format!(
            "node {node} ({}): {} keys wrong, e.g. {shown:?}; ",
            cluster.node(node).url(),
            keys.len()
        ));
    }
    text
}
