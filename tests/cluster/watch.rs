//! A watch under a partition on the real binary (DESIGN §11): a write that reaches only the
//! watching node's own replica (the others are paused) wakes the watch, but no majority read
//! shows it, so the watch does not report it: at its deadline it answers NotMost. Once the
//! others answer again, a write that completes is reported. The same for a prefix watch.

use std::thread;
use std::time::Duration;

use serde_json::Value;

use crate::support::cluster::{Cluster, ClusterSpec};
use crate::support::{kv, request, Client};

fn env(k: &str, v: &str) -> (String, String) {
    (k.to_string(), v.to_string())
}

fn watch(c: &mut Client, query: &str) -> Value {
    let resp = c.call(&request("GET", &format!("/mostdb/watch?{query}"), &[], b""));
    assert_eq!(resp.status, 200, "{}", resp.body_str());
    serde_json::from_slice(&resp.body).expect("json")
}

/// Three nodes without hints or anti-entropy (only the write itself reaches a replica), links up.
fn without_convergence() -> Cluster {
    let cluster = Cluster::start(&ClusterSpec {
        op_timeout_ms: 1_000,
        env: vec![
            env("MOSTDB_HINTS", "off"),
            env("MOSTDB_ANTI_ENTROPY", "off"),
        ],
        ..ClusterSpec::default()
    });
    cluster.wait_links_up();
    cluster
}

#[test]
fn a_watch_reports_no_change_that_a_majority_does_not_hold() {
    let mut cluster = without_convergence();
    let mut c0 = cluster.node(0).client();
    c0.post("/mostdb/set", &kv("w", "v1"));
    let start = watch(&mut c0, "key=w&wait_ms=1");
    assert_eq!(start["result"]["changed"], false, "{start}");
    let v1 = start["result"]["version"]
        .as_str()
        .expect("version")
        .to_string();

    cluster.pause(1);
    cluster.pause(2);
    let addr = cluster.node(0).addr();
    let watcher = thread::spawn(move || {
        let mut c = Client::connect(addr);
        watch(&mut c, &format!("key=w&version={v1}&wait_ms=3000"))
    });
    thread::sleep(Duration::from_millis(200));
    // Stored by node 0 alone (the others are paused): it wakes the watch.
    let lone = c0.post("/mostdb/set", &kv("w", "lone"));
    assert!(lone.body_str().contains("NotMost"), "{}", lone.body_str());
    let answer = watcher.join().expect("watcher");
    assert_eq!(
        answer,
        serde_json::json!({"code":500,"message":"NotMost","success":false}),
        "a watch reported what no majority holds"
    );

    // The others back: a write that completes is reported.
    cluster.resume(1);
    cluster.resume(2);
    cluster.wait_links_up();
    let addr = cluster.node(1).addr();
    let watcher = thread::spawn(move || {
        let mut c = Client::connect(addr);
        let now = watch(&mut c, "key=w&wait_ms=1");
        let since = now["result"]["version"]
            .as_str()
            .expect("version")
            .to_string();
        watch(&mut c, &format!("key=w&version={since}&wait_ms=10000"))
    });
    thread::sleep(Duration::from_millis(500));
    c0.post("/mostdb/set", &kv("w", "v2"));
    let answer = watcher.join().expect("watcher");
    assert_eq!(answer["result"]["value"], "v2", "{answer}");
    cluster.stop_all();
}

#[test]
fn a_prefix_watch_reports_no_change_that_a_majority_does_not_hold() {
    let mut cluster = without_convergence();
    let mut c0 = cluster.node(0).client();
    c0.post("/mostdb/set", &kv("p/w", "v1"));
    let start = watch(&mut c0, "prefix=p/&wait_ms=1");
    let cursor = start["result"]["cursor"]
        .as_str()
        .expect("cursor")
        .to_string();

    cluster.pause(1);
    cluster.pause(2);
    let addr = cluster.node(0).addr();
    let from = cursor.clone();
    let watcher = thread::spawn(move || {
        let mut c = Client::connect(addr);
        watch(&mut c, &format!("prefix=p/&cursor={from}&wait_ms=3000"))
    });
    thread::sleep(Duration::from_millis(200));
    // Stored by node 0 alone: it is in node 0's feed, but no quorum read shows it.
    let lone = c0.post("/mostdb/set", &kv("p/w", "lone"));
    assert!(lone.body_str().contains("NotMost"), "{}", lone.body_str());
    let answer = watcher.join().expect("watcher");
    assert_eq!(
        answer["result"]["changes"],
        serde_json::json!([]),
        "a prefix watch reported what no majority holds: {answer}"
    );
    assert_eq!(
        answer["result"]["cursor"], cursor,
        "the unconfirmed change holds the cursor"
    );

    // The others back: a write that completes is reported, through another node's feed.
    cluster.resume(1);
    cluster.resume(2);
    cluster.wait_links_up();
    let addr = cluster.node(1).addr();
    let watcher = thread::spawn(move || {
        let mut c = Client::connect(addr);
        watch(&mut c, "prefix=p/&wait_ms=10000")
    });
    thread::sleep(Duration::from_millis(500));
    c0.post("/mostdb/set", &kv("p/w", "v2"));
    let answer = watcher.join().expect("watcher");
    assert_eq!(answer["result"]["changes"][0]["value"], "v2", "{answer}");
    cluster.stop_all();
}
