//! Compare-and-set on the real binary (DESIGN §10), one node: every expectation, both
//! changes, the answers' envelopes byte for byte where they carry no version, versions that a
//! get with `with_version` and a CAS agree on, expiry (`ttl_ms`) for get and CAS, and
//! malformed bodies answered with the original's 参数有误 while nothing changes; expired keys
//! that nobody reads are reclaimed by the sweeper.

use serde_json::Value;

use crate::support::*;

const CAS: &str = "/mostdb/cas";
const GET: &str = "/mostdb/get";
const SET: &str = "/mostdb/set";

fn json(resp: &Resp) -> Value {
    serde_json::from_slice(&resp.body).unwrap_or_else(|e| panic!("{e}: {}", resp.body_str()))
}

fn cas(c: &mut Client, body: &str) -> Value {
    let resp = c.post(CAS, body);
    assert_eq!(resp.status, 200, "{}", resp.body_str());
    json(&resp)
}

fn version_of(answer: &Value) -> String {
    answer["result"]["version"]
        .as_str()
        .unwrap_or_else(|| panic!("no version in {answer}"))
        .to_string()
}

#[test]
fn create_if_absent_then_compare_by_value_and_by_version() {
    let node = Node::start();
    let mut c = node.client();
    let created = cas(
        &mut c,
        r#"{"key":"t","expect":{"absent":true},"value":"a"}"#,
    );
    assert_eq!(created["code"], 200);
    assert_eq!(created["success"], true);
    let v1 = version_of(&created);
    assert_eq!(v1.len(), 32);

    // A second create finds the first, and says so with its version.
    let again = cas(
        &mut c,
        r#"{"key":"t","expect":{"absent":true},"value":"b"}"#,
    );
    assert_eq!(
        again,
        serde_json::json!({"code":409,"message":"CompareFailed","success":false,
            "result":{"key":"t","value":"a","version":v1}})
    );

    // The version a get reports is the one a CAS can expect.
    let got_v = json(&c.call(&request(
        "GET",
        &format!("{GET}?key=t&with_version=true"),
        &[],
        b"",
    )));
    assert_eq!(got_v["result"]["value"], "a");
    assert_eq!(version_of(&got_v), v1);
    let by_post = json(&c.post(GET, r#"{"key":"t","with_version":true}"#));
    assert_eq!(version_of(&by_post), v1);
    c.post(GET, &k("t")).assert_json(200, &got("t", "a"));

    let by_value = cas(&mut c, r#"{"key":"t","expect":{"value":"a"},"value":"c"}"#);
    let v2 = version_of(&by_value);
    assert!(v2 > v1, "versions grow: {v1} then {v2}");
    let stale = format!(r#"{{"key":"t","expect":{{"version":"{v1}"}},"value":"d"}}"#);
    assert_eq!(cas(&mut c, &stale)["message"], "CompareFailed");
    let fresh = format!(r#"{{"key":"t","expect":{{"version":"{v2}"}},"delete":true}}"#);
    assert_eq!(cas(&mut c, &fresh)["code"], 200);
    c.post(GET, &k("t")).assert_json(200, NOT_FOUND);

    // Absent now: "present" fails without a value, "absent" holds.
    let missing = cas(
        &mut c,
        r#"{"key":"t","expect":{"present":true},"value":"x"}"#,
    );
    assert_eq!(missing["message"], "CompareFailed");
    assert!(missing["result"].get("value").is_none(), "{missing}");
    assert_eq!(
        cas(
            &mut c,
            r#"{"key":"t","expect":{"absent":true},"value":"e"}"#
        )["code"],
        200
    );
    // A plain set and a CAS on the same key: the CAS sees the set.
    c.post(SET, &kv("t", "plain")).assert_json(200, OK);
    assert_eq!(
        cas(
            &mut c,
            r#"{"key":"t","expect":{"value":"plain"},"value":"f"}"#
        )["code"],
        200
    );
    c.post(GET, &k("t")).assert_json(200, &got("t", "f"));
}

#[test]
fn a_key_with_a_time_to_live_expires_for_get_and_cas() {
    let node = Node::start();
    let mut c = node.client();
    c.post(SET, r#"{"key":"e","value":"v","ttl_ms":400}"#)
        .assert_json(200, OK);
    let path = format!("{GET}?key=e&with_version=true");
    let got_v = json(&c.call(&request("GET", &path, &[], b"")));
    let left = got_v["result"]["ttl_ms"].as_u64().expect("ttl_ms left");
    assert!((1..=400).contains(&left), "{got_v}");
    // A key without expiry shows no ttl_ms.
    c.post(SET, &kv("forever", "v")).assert_json(200, OK);
    let plain = json(&c.call(&request(
        "GET",
        &format!("{GET}?key=forever&with_version=true"),
        &[],
        b"",
    )));
    assert!(plain["result"].get("ttl_ms").is_none(), "{plain}");
    std::thread::sleep(std::time::Duration::from_millis(500));
    c.post(GET, &k("e")).assert_json(200, NOT_FOUND);
    // Expired is absent for a CAS too; a CAS can set a time to live.
    let created = cas(
        &mut c,
        r#"{"key":"e","expect":{"absent":true},"value":"w","ttl_ms":300}"#,
    );
    assert_eq!(created["code"], 200, "{created}");
    c.post(GET, &k("e")).assert_json(200, &got("e", "w"));
    std::thread::sleep(std::time::Duration::from_millis(400));
    let gone = cas(
        &mut c,
        r#"{"key":"e","expect":{"present":true},"value":"x"}"#,
    );
    assert_eq!(gone["message"], "CompareFailed", "{gone}");
    assert!(gone["result"].get("value").is_none(), "{gone}");
}

/// `mostdb_expired_keys_reclaimed_total`, read from the node's metrics.
fn reclaimed(c: &mut Client) -> u64 {
    let resp = c.call(&request("GET", "/metrics", &[], b""));
    assert_eq!(resp.status, 200, "{}", resp.body_str());
    let text = resp.body_str();
    let line = text
        .lines()
        .find(|l| l.starts_with("mostdb_expired_keys_reclaimed_total "))
        .unwrap_or_else(|| panic!("no reclaim counter in:\n{text}"));
    line.rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .expect("a count")
}

#[test]
fn expired_keys_nobody_reads_are_reclaimed_once() {
    const KEYS: u64 = 20;
    let node = Node::start();
    let mut c = node.client();
    for i in 0..KEYS {
        let body = format!(r#"{{"key":"x{i}","value":"v","ttl_ms":200}}"#);
        c.post(SET, &body).assert_json(200, OK);
    }
    c.post(SET, r#"{"key":"kept","value":"v","ttl_ms":600000}"#)
        .assert_json(200, OK);
    // Nobody reads them: the sweeper (a pass a second at most) writes their tombstones.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while reclaimed(&mut c) < KEYS {
        assert!(
            std::time::Instant::now() < deadline,
            "reclaimed {} of {KEYS} expired keys in 20 s",
            reclaimed(&mut c)
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // Reclaimed means replaced by a tombstone: later passes (a write makes sure one runs)
    // find nothing left to reclaim, and the key that has not expired stays.
    c.post(SET, &kv("other", "v")).assert_json(200, OK);
    std::thread::sleep(std::time::Duration::from_millis(2_500));
    assert_eq!(reclaimed(&mut c), KEYS);
    c.post(GET, &k("kept")).assert_json(200, &got("kept", "v"));
    c.post(GET, &k("x0")).assert_json(200, NOT_FOUND);
}

#[test]
fn bad_bodies_change_nothing() {
    let node = Node::start();
    let mut c = node.client();
    c.post(SET, &kv("k", "v")).assert_json(200, OK);
    for body in [
        r#"{"key":"k","value":"w","ttl_ms":0}"#,
        r#"{"key":"k","value":"w","ttl_ms":-5}"#,
        r#"{"key":"k","value":"w","ttl_ms":"5"}"#,
        r#"{"key":"k","value":"w","ttl_ms":1.5}"#,
        r#"{"key":"k","value":"w","ttl_ms":315360000001}"#,
    ] {
        c.post(SET, body).assert_bad_param_with_detail();
    }
    for body in [
        r#"{"key":"k","expect":{"present":true},"value":"x","ttl_ms":0}"#,
        r#"{"key":"k","expect":{"present":true},"delete":true,"ttl_ms":5}"#,
        r#"{"key":"k","expect":{"present":true}}"#,
        r#"{"key":"k","expect":{"sometimes":true},"value":"x"}"#,
        r#"{"key":"k","expect":{"version":"not-a-version"},"value":"x"}"#,
        r#"{"key":"k","expect":{"present":true},"value":"x","delete":true}"#,
    ] {
        c.post(CAS, body).assert_bad_param_with_detail();
    }
    c.post(CAS, r#"{"expect":{"present":true},"value":"x"}"#)
        .assert_json(200, BAD_PARAM);
    c.post(CAS, "not json").assert_json(200, BAD_PARAM);
    c.post(GET, r#"{"key":"k","with_version":"yes"}"#)
        .assert_bad_param_with_detail();
    c.post(GET, &k("k")).assert_json(200, &got("k", "v"));
    // The route takes POST only.
    assert_eq!(c.call(&request("GET", CAS, &[], b"")).status, 405);
}
