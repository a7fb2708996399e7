//! A write workload for the convergence tests: sets and deletes applied through chosen nodes by
//! a few client threads (every op retried on the next node until it is Ok), the state every key
//! should then read as, and a node's own copy of a key (`POST /mostdb/api/get`: no quorum).

use std::collections::BTreeMap;
use std::time::Duration;

use super::cluster::{classify, KvClient, Reply};
use super::{k, Client};

/// Client threads that apply a workload.
pub const WRITERS: usize = 4;
/// How long a client waits for one answer.
pub const CLIENT_IO_TIMEOUT_MS: u64 = 6_000;
/// Attempts at one write before the test gives up (a write can be indeterminate when the
/// machine stalls; repeating a set or del leaves the same final state).
pub const WRITE_ATTEMPTS_MAX: usize = 6;

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
pub fn write_all(ports: &[u16], nodes: &[usize], ops: &[Op]) {
    let chunk = ops.len().div_ceil(WRITERS).max(1);
    std::thread::scope(|s| {
        for (t, part) in ops.chunks(chunk).enumerate() {
            s.spawn(move || {
                let timeout = Duration::from_millis(CLIENT_IO_TIMEOUT_MS);
                let mut client = KvClient::new(ports.to_vec(), timeout);
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
