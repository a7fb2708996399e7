//! Listing on the real binary (DESIGN §11): three nodes, one of which missed writes (stopped
//! while keys were overwritten, deleted and created, with hints and anti-entropy off so that
//! only the listing itself can make up for it). A majority listing through the stale node,
//! page by page, shows exactly what a read of each key shows, its local listing shows its own
//! stale copy, and the majority listing repairs what it settled. With two nodes down there
//! is no majority to list.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::support::cluster::{Cluster, ClusterSpec};
use crate::support::{kv, request, Client};

const KEYS: usize = 60;
/// What node 2 misses: a third of the keys deleted, a third overwritten, 10 created.
const MISSED_DELETES: usize = KEYS / 3;
const MISSED_OVERWRITES: usize = KEYS / 3;
const MISSED_CREATES: usize = 10;

fn env(k: &str, v: &str) -> (String, String) {
    (k.to_string(), v.to_string())
}

/// Every page of `GET /mostdb/list?{query}` through `c`, `limit` items a page: the items in
/// order, and the number of pages.
fn list_all(c: &mut Client, query: &str, limit: usize) -> (Vec<(String, String)>, usize) {
    let (mut items, mut pages, mut cursor) = (Vec::new(), 0, None::<String>);
    loop {
        let mut path = format!("/mostdb/list?{query}&limit={limit}");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let resp = c.call(&request("GET", &path, &[], b""));
        assert_eq!(resp.status, 200, "{}", resp.body_str());
        let answer: Value = serde_json::from_slice(&resp.body).expect("json");
        assert_eq!(answer["code"], 200, "{answer}");
        pages += 1;
        let result = &answer["result"];
        for item in result["items"].as_array().expect("items") {
            let key = item["key"].as_str().expect("key").to_string();
            let value = item["value"].as_str().unwrap_or_default().to_string();
            items.push((key, value));
        }
        if result["more"] != true {
            return (items, pages);
        }
        cursor = Some(result["cursor"].as_str().expect("cursor").to_string());
        assert!(pages < 1_000, "the listing does not end");
    }
}

#[test]
fn a_majority_listing_shows_what_the_stale_node_missed_and_repairs_it() {
    let mut cluster = Cluster::start(&ClusterSpec {
        op_timeout_ms: 2_000,
        env: vec![
            env("MOSTDB_HINTS", "off"),
            env("MOSTDB_ANTI_ENTROPY", "off"),
        ],
        ..ClusterSpec::default()
    });
    cluster.wait_links_up();
    let mut c0 = cluster.node(0).client();
    let mut expected = BTreeMap::new();
    for i in 0..KEYS {
        let (key, value) = (format!("p/{i:03}"), format!("a{i}"));
        let resp = c0.post("/mostdb/set", &kv(&key, &value));
        assert_eq!(resp.status, 200);
        expected.insert(key, value);
    }
    c0.post("/mostdb/set", &kv("q/outside", "x"));
    cluster.stop(2);
    // Missed by node 2: a third deleted, a third overwritten, some created.
    for i in 0..KEYS {
        let key = format!("p/{i:03}");
        match i % 3 {
            0 => {
                let resp = c0.post("/mostdb/del", &format!(r#"{{"key":"{key}"}}"#));
                assert!(resp.body_str().contains("true"), "{}", resp.body_str());
                expected.remove(&key);
            }
            1 => {
                let value = format!("b{i}");
                c0.post("/mostdb/set", &kv(&key, &value));
                expected.insert(key, value);
            }
            _ => {}
        }
    }
    for i in KEYS..KEYS + MISSED_CREATES {
        let (key, value) = (format!("p/{i:03}"), format!("n{i}"));
        c0.post("/mostdb/set", &kv(&key, &value));
        expected.insert(key, value);
    }
    cluster.restart(2).expect("node 2 back");
    cluster.wait_links_up();
    let want: Vec<(String, String)> = expected.into_iter().collect();
    let mut c2 = cluster.node(2).client();
    // Its own copy is stale: the deleted keys are still there.
    let (local, _) = list_all(&mut c2, "prefix=p/&consistency=local", 1_000);
    assert_eq!(local.len(), KEYS, "node 2's own copy");
    // Through node 2, a majority listing shows the current state, page by page.
    let (majority, pages) = list_all(&mut c2, "prefix=p%2F", 7);
    assert_eq!(majority, want);
    assert!(pages >= want.len() / 7, "{pages} pages");
    // What it settled, it repaired. A settling get repairs the replicas whose answers it had
    // when it ended: node 2's (its own) nearly always, not always under load, so most of what
    // node 2 missed must now be there (without settling, none of it is).
    let (local, _) = list_all(&mut c2, "prefix=p/&consistency=local", 1_000);
    let local: BTreeMap<String, String> = local.into_iter().collect();
    let wanted: BTreeMap<String, String> = want.iter().cloned().collect();
    let keys: std::collections::BTreeSet<&String> = local.keys().chain(wanted.keys()).collect();
    let missed = MISSED_DELETES + MISSED_OVERWRITES + MISSED_CREATES;
    let stale = keys
        .iter()
        .filter(|k| local.get(**k) != wanted.get(**k))
        .count();
    assert!(
        stale * 2 < missed,
        "node 2 still differs on {stale} of the {missed} keys it missed after the listing"
    );
    // keys_only, and a range instead of a prefix.
    let (keys, _) = list_all(&mut c0, "start=p/010&end=p/020&keys_only=true", 100);
    let want_keys: Vec<(String, String)> = want
        .iter()
        .filter(|(k, _)| k.as_str() >= "p/010" && k.as_str() < "p/020")
        .map(|(k, _)| (k.clone(), String::new()))
        .collect();
    assert_eq!(keys, want_keys);
    // No majority: nothing is listed as if it were.
    cluster.stop(1);
    cluster.stop(2);
    let resp = c0.call(&request("GET", "/mostdb/list?prefix=p/", &[], b""));
    assert_eq!(
        resp.body_str(),
        r#"{"code":500,"message":"NotMost","success":false}"#
    );
    cluster.stop_all();
}
