//! `GET /mostdb/watch` on the real binary (DESIGN §11): a long poll answers "unchanged" at its
//! deadline, answers as soon as a set or a del lands (not at the next re-check), starting from
//! the version given or the one its first read found, and bad parameters are refused.

use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

fn watch(c: &mut Client, query: &str) -> Value {
    let resp = c.call(&request("GET", &format!("/mostdb/watch?{query}"), &[], b""));
    assert_eq!(resp.status, 200, "{}", resp.body_str());
    serde_json::from_slice(&resp.body).expect("json")
}

fn version_of(c: &mut Client, key: &str) -> String {
    let path = format!("/mostdb/get?key={key}&with_version=true");
    let got: Value =
        serde_json::from_slice(&c.call(&request("GET", &path, &[], b"")).body).expect("json");
    got["result"]["version"]
        .as_str()
        .expect("version")
        .to_string()
}

#[test]
fn a_watch_answers_when_the_key_changes_and_not_before() {
    let node = Node::start();
    let mut c = node.client();
    c.post("/mostdb/set", &kv("w", "1")).assert_json(200, OK);
    let v1 = version_of(&mut c, "w");

    // Nothing changes: unchanged at the deadline, with the version it started from.
    let started = Instant::now();
    let quiet = watch(&mut c, &format!("key=w&version={v1}&wait_ms=300"));
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(quiet["result"]["changed"], false, "{quiet}");
    assert_eq!(quiet["result"]["version"], v1.as_str());

    // A set while it waits: answered at once with the new value.
    let addr = node.addr();
    let writer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(300));
        Client::connect(addr).post("/mostdb/set", &kv("w", "2"));
    });
    let started = Instant::now();
    let set = watch(&mut c, "key=w&wait_ms=20000");
    writer.join().expect("writer");
    assert!(
        started.elapsed() < Duration::from_millis(1_500),
        "answered after {:?} (the re-check is 2 s: the store must wake it)",
        started.elapsed()
    );
    assert_eq!(set["result"]["changed"], true, "{set}");
    assert_eq!(set["result"]["value"], "2");
    let v2 = set["result"]["version"]
        .as_str()
        .expect("version")
        .to_string();
    assert!(v2 > v1);

    // An old version: answered at once; a delete: NotFound with the tombstone's version.
    let at_once = watch(&mut c, &format!("key=w&version={v1}"));
    assert_eq!(at_once["result"]["value"], "2", "{at_once}");
    c.post("/mostdb/del", &k("w")).assert_json(200, OK);
    let gone = watch(&mut c, &format!("key=w&version={v2}"));
    assert_eq!(gone["message"], "NotFound", "{gone}");
    assert!(gone["result"]["version"].as_str().expect("version") > v2.as_str());

    for bad in [
        "",
        "key=w&wait_ms=0",
        "key=w&wait_ms=300001",
        "key=w&version=nope",
    ] {
        let resp = c.call(&request("GET", &format!("/mostdb/watch?{bad}"), &[], b""));
        assert!(
            resp.body_str().contains("参数有误"),
            "{bad}: {}",
            resp.body_str()
        );
    }
}
