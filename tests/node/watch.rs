//! `GET /mostdb/watch` on the real binary (DESIGN §11): a long poll answers "unchanged" at its
//! deadline, answers as soon as a set or a del lands (not at the next re-check), starting from
//! the version given or the one its first read found, and bad parameters are refused. A prefix
//! watch reports each changed key under its prefix once per answer, as a quorum read finds it,
//! from the cursor a listing gave; waits for the next change; says resync for a cursor it
//! cannot vouch for.

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

#[test]
fn a_prefix_watch_reports_the_changes_under_its_prefix_from_a_listing_on() {
    let node = Node::start();
    let mut c = node.client();
    c.post("/mostdb/set", &kv("p/old", "0"))
        .assert_json(200, OK);
    let listed: Value = serde_json::from_slice(
        &c.call(&request(
            "GET",
            "/mostdb/list?prefix=p/&watch=true",
            &[],
            b"",
        ))
        .body,
    )
    .expect("json");
    assert_eq!(listed["result"]["items"][0]["key"], "p/old", "{listed}");
    let from = listed["result"]["watch"].as_str().expect("a watch cursor");

    for (key, value) in [("p/a", "1"), ("p/b", "2"), ("q/x", "9"), ("p/a", "3")] {
        c.post("/mostdb/set", &kv(key, value)).assert_json(200, OK);
    }
    c.post("/mostdb/del", &k("p/b")).assert_json(200, OK);
    let got = watch(&mut c, &format!("prefix=p/&cursor={from}&wait_ms=1000"));
    let result = &got["result"];
    assert_eq!(result["resync"], false, "{got}");
    let changes = result["changes"].as_array().expect("changes");
    let shown: Vec<(String, String)> = changes
        .iter()
        .map(|ch| {
            let what = match ch["deleted"] == true {
                true => "deleted".to_string(),
                false => ch["value"].as_str().expect("value").to_string(),
            };
            (ch["key"].as_str().expect("key").to_string(), what)
        })
        .collect();
    assert_eq!(
        shown,
        [("p/a".into(), "3".into()), ("p/b".into(), "deleted".into())],
        "each key once, as it is now, nothing outside the prefix: {got}"
    );
    assert!(changes
        .iter()
        .all(|ch| ch["version"].as_str().map(str::len) == Some(32)));
    let next = result["cursor"].as_str().expect("cursor").to_string();

    // Nothing new: no changes at the deadline, the same cursor.
    let started = Instant::now();
    let quiet = watch(&mut c, &format!("prefix=p/&cursor={next}&wait_ms=300"));
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(quiet["result"]["changes"], serde_json::json!([]), "{quiet}");
    assert_eq!(quiet["result"]["cursor"], next.as_str());

    // A change while it waits (after one outside the prefix): answered at once.
    let addr = node.addr();
    let writer = thread::spawn(move || {
        let mut c = Client::connect(addr);
        thread::sleep(Duration::from_millis(200));
        c.post("/mostdb/set", &kv("q/y", "no"));
        thread::sleep(Duration::from_millis(200));
        c.post("/mostdb/set", &kv("p/c", "4"));
    });
    let started = Instant::now();
    let woke = watch(&mut c, &format!("prefix=p/&cursor={next}&wait_ms=20000"));
    writer.join().expect("writer");
    assert!(
        started.elapsed() < Duration::from_millis(1_500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(woke["result"]["changes"][0]["key"], "p/c", "{woke}");
    assert_eq!(woke["result"]["changes"][0]["value"], "4", "{woke}");

    // Cursors it cannot vouch for: another run's, a future one, nonsense.
    for bad in ["1.1", "zz", &format!("{}9999999", &next)] {
        let resync = watch(&mut c, &format!("prefix=p/&cursor={bad}&wait_ms=1"));
        assert_eq!(resync["result"]["resync"], true, "{bad}: {resync}");
        assert_eq!(resync["result"]["changes"], serde_json::json!([]));
        assert!(resync["result"]["cursor"].is_string());
    }
    let resp = c.call(&request("GET", "/mostdb/watch?prefix=p/&key=p/a", &[], b""));
    assert!(resp.body_str().contains("参数有误"), "{}", resp.body_str());
}
