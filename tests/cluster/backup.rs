//! Backup and restore on the real binary (DESIGN §11): a three-node cluster holding
//! `BACKUP_KEYS` keys (100,000 by default; `BACKUP_KEYS=n` for more or fewer) is exported with
//! `mostdb backup FILE` while writes go on, then imported into a fresh cluster with `mostdb
//! restore FILE`: every key acknowledged before the export started is there with its value
//! (checked with a majority listing of the new cluster), and a second restore changes nothing
//! (an import stores only where newer).

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use serde_json::Value;

use crate::support::cluster::{Cluster, ClusterSpec};
use crate::support::{binary, kv, request, Client};

const KEYS_DEFAULT: usize = 100_000;
/// Operations per batch request while loading.
const LOAD_BATCH: usize = 128;

fn keys() -> usize {
    std::env::var("BACKUP_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(KEYS_DEFAULT)
}

fn mostdb(url: &str, args: &[&str]) -> std::process::Output {
    let mut command = Command::new(binary());
    command.args(args).env("MOSTDB_URL", url);
    for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("MOSTDB_") && n != "MOSTDB_URL")
    {
        command.env_remove(name);
    }
    command.output().expect("run mostdb")
}

/// Every key and value under `prefix`, by a majority listing through `c`.
fn listed(c: &mut Client, prefix: &str) -> BTreeMap<String, String> {
    let (mut out, mut cursor) = (BTreeMap::new(), None::<String>);
    loop {
        let mut path = format!("/mostdb/list?prefix={prefix}&limit=1000");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let answer: Value =
            serde_json::from_slice(&c.call(&request("GET", &path, &[], b"")).body).expect("json");
        assert_eq!(answer["code"], 200, "{answer}");
        for item in answer["result"]["items"].as_array().expect("items") {
            let key = item["key"].as_str().expect("key").to_string();
            out.insert(key, item["value"].as_str().expect("value").to_string());
        }
        match answer["result"]["cursor"].as_str() {
            Some(next) if answer["result"]["more"] == true => cursor = Some(next.to_string()),
            _ => return out,
        }
    }
}

#[test]
fn a_backup_taken_under_writes_restores_every_key_acknowledged_before_it() {
    let n = keys();
    let spec = ClusterSpec {
        op_timeout_ms: 5_000,
        ..ClusterSpec::default()
    };
    let source = Cluster::start(&spec);
    source.wait_links_up();
    let mut c = source.node(0).client();
    let value = |i: usize| format!("value-{i}-\u{e9}\"");
    for start in (0..n).step_by(LOAD_BATCH) {
        let ops: Vec<String> = (start..n.min(start + LOAD_BATCH))
            .map(|i| {
                let body =
                    serde_json::json!({"op":"set","key":format!("k/{i:07}"),"value":value(i)});
                body.to_string()
            })
            .collect();
        let resp = c.post(
            "/mostdb/batch",
            &format!(r#"{{"ops":[{}]}}"#, ops.join(",")),
        );
        assert!(!resp.body_str().contains("NotMost"), "{}", resp.body_str());
    }
    // Writes go on during the export (other keys).
    let stop = Arc::new(AtomicBool::new(false));
    let addr = source.node(1).addr();
    let writer = {
        let stop = stop.clone();
        thread::spawn(move || {
            let mut c = Client::connect(addr);
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                c.post("/mostdb/set", &kv(&format!("live/{i}"), "x"));
                i += 1;
            }
            i
        })
    };
    let dir = source.dir().join("backup.ndjson");
    let file = dir.to_str().expect("utf-8 path");
    let backup = mostdb(&source.node(2).url(), &["backup", file]);
    stop.store(true, Ordering::Relaxed);
    let live_writes = writer.join().expect("writer");
    assert!(backup.status.success(), "{backup:?}");
    let lines = std::fs::read_to_string(file)
        .expect("backup file")
        .lines()
        .count();
    assert!(lines >= n, "{lines} lines for {n} keys");

    let mut target = Cluster::start(&spec);
    target.wait_links_up();
    for i in 0..target.size() {
        target.wait_ready(i).expect("ready");
    }
    let restore = mostdb(&target.node(0).url(), &["restore", file]);
    assert!(restore.status.success(), "{restore:?}");
    let mut t = target.node(1).client();
    let restored = listed(&mut t, "k/");
    assert_eq!(restored.len(), n, "keys restored");
    for (i, (key, got)) in restored.iter().enumerate() {
        assert_eq!(key, &format!("k/{i:07}"));
        assert_eq!(got, &value(i), "{key}");
    }
    // Newer there than in the backup: a second restore does not undo it.
    t.post("/mostdb/set", &kv("k/0000000", "newer"));
    let again = mostdb(&target.node(2).url(), &["restore", file]);
    assert!(again.status.success(), "{again:?}");
    let got = listed(&mut t, "k/000000");
    assert_eq!(got.get("k/0000000").map(String::as_str), Some("newer"));
    println!("backup: {n} keys, {lines} lines, {live_writes} writes during the export");
}
