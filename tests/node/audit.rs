//! The audit log on the real binary: one JSON line per write (key, client, outcome, version,
//! duration), per admin action (the setting's name, never its value) and per refused API key;
//! never a value, a key or a token; reads are not audited; SIGHUP reopens the file after
//! logrotate moved it.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::{k, kv, request, Node};

const KEY_HEADER: &str = "X-MOSTDB-AUTH: audit-test-key";
const TOKEN: &str = "Authorization: Bearer audit-adm1n";
/// How long the writer thread may take to put a line in the file.
const WRITTEN_WITHIN: Duration = Duration::from_secs(5);

/// The file's lines, parsed, once there are at least `count`.
fn lines(path: &Path, count: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + WRITTEN_WITHIN;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let parsed: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        if parsed.len() >= count || Instant::now() > deadline {
            return parsed;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn node(audit: &Path, extra: &[(&str, &str)]) -> Node {
    let path = audit.display().to_string();
    let mut env = vec![
        ("MOSTDB_AUDIT_LOG", path.as_str()),
        ("MOSTDB_API_KEY_ENABLE", "true"),
        ("MOSTDB_API_KEY_VALUE", "audit-test-key"),
        ("MOSTDB_ADMIN_TOKEN", "audit-adm1n"),
    ];
    env.extend_from_slice(extra);
    Node::start_with(&env)
}

#[test]
fn writes_admin_actions_and_refusals_are_audited_without_values_or_secrets() {
    let dir = crate::support::TempDir::new("audit-node");
    let path = dir.path().join("audit.log");
    let node = node(&path, &[]);
    let mut c = node.client();
    let post = |c: &mut crate::support::Client, path: &str, body: &[u8]| {
        c.call(&request("POST", path, &[KEY_HEADER], body))
    };
    post(
        &mut c,
        "/mostdb/set",
        kv("user:1", "the-secret-value").as_bytes(),
    );
    post(&mut c, "/mostdb/get", k("user:1").as_bytes());
    post(&mut c, "/mostdb/del", k("user:1").as_bytes());
    c.call(&request(
        "POST",
        "/mostdb/set",
        &["X-MOSTDB-AUTH: wrong"],
        kv("k", "v").as_bytes(),
    ));
    let change = br#"{"MOSTDB_LOG_LEVEL":"DEBUG"}"#;
    let answer = c.call(&request(
        "PUT",
        "/admin/config",
        &[KEY_HEADER, TOKEN],
        change,
    ));
    assert_eq!(answer.status, 200, "{}", answer.body_str());

    let got = lines(&path, 4);
    let ops: Vec<(&str, &str)> = got
        .iter()
        .map(|l| {
            (
                l["op"].as_str().unwrap_or(""),
                l["outcome"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        ops,
        [
            ("set", "ok"),
            ("del", "ok"),
            ("set", "unauthorized"),
            ("admin_config", "ok")
        ],
        "the get is not audited: {got:?}"
    );
    let set = &got[0];
    assert_eq!(set["key"], "user:1");
    assert_eq!(set["client"], "127.0.0.1");
    assert!(
        set["version"]["hlc"].as_u64().is_some_and(|v| v > 0),
        "{set}"
    );
    assert!(set["duration_us"].as_u64().is_some(), "{set}");
    assert!(
        got[2].get("key").is_none(),
        "a refused request names no key"
    );
    assert_eq!(got[3]["detail"], "MOSTDB_LOG_LEVEL");
    let text = std::fs::read_to_string(&path).expect("audit log");
    for secret in [
        "the-secret-value",
        "audit-test-key",
        "audit-adm1n",
        "DEBUG",
        "wrong",
    ] {
        assert!(
            !text.contains(secret),
            "{secret:?} in the audit log:\n{text}"
        );
    }
}

#[test]
fn hashed_keys_and_a_reopen_on_sighup() {
    let dir = crate::support::TempDir::new("audit-node-hash");
    let path = dir.path().join("audit.log");
    let node = node(
        &path,
        &[
            ("MOSTDB_AUDIT_KEYS", "hash"),
            ("MOSTDB_CLUSTER_SECRET", "an-audit-secret"),
        ],
    );
    let mut c = node.client();
    c.call(&request(
        "POST",
        "/mostdb/set",
        &[KEY_HEADER],
        kv("private:key", "v").as_bytes(),
    ));
    let got = lines(&path, 1);
    assert_eq!(got.len(), 1);
    assert!(got[0].get("key").is_none());
    assert_eq!(got[0]["key_hash"].as_str().map(str::len), Some(32));
    assert!(!std::fs::read_to_string(&path)
        .expect("read")
        .contains("private:key"));

    // logrotate: move the file away, then SIGHUP; the next write goes to a new file.
    let rotated = dir.path().join("audit.log.1");
    std::fs::rename(&path, &rotated).expect("rotate");
    // SAFETY: a signal to the child this test started.
    unsafe { libc::kill(node.pid() as libc::pid_t, libc::SIGHUP) };
    let deadline = Instant::now() + WRITTEN_WITHIN;
    let mut reopened = String::new();
    while reopened.is_empty() && Instant::now() < deadline {
        c.call(&request(
            "POST",
            "/mostdb/set",
            &[KEY_HEADER],
            kv("after", "v").as_bytes(),
        ));
        // A write that raced the signal went to the moved file: look briefly, then write again.
        std::thread::sleep(Duration::from_millis(100));
        reopened = std::fs::read_to_string(&path).unwrap_or_default();
    }
    assert!(!reopened.is_empty(), "a new audit.log after SIGHUP");
    assert!(
        !lines(&rotated, 1).is_empty(),
        "the rotated file keeps its lines"
    );
}

#[test]
fn the_audit_settings_change_at_runtime() {
    let dir = crate::support::TempDir::new("audit-node-runtime");
    let first = dir.path().join("first.log");
    let second = dir.path().join("second.log");
    let node = node(&first, &[]);
    let mut c = node.client();
    let set = |c: &mut crate::support::Client, key: &str| {
        c.call(&request(
            "POST",
            "/mostdb/set",
            &[KEY_HEADER],
            kv(key, "v").as_bytes(),
        ))
    };
    let put = |c: &mut crate::support::Client, body: &str| {
        c.call(&request(
            "PUT",
            "/admin/config",
            &[KEY_HEADER, TOKEN],
            body.as_bytes(),
        ))
    };
    set(&mut c, "before");
    let change = format!(r#"{{"MOSTDB_AUDIT_LOG":"{}"}}"#, second.display());
    let answer = put(&mut c, &change);
    assert_eq!(answer.status, 200, "{}", answer.body_str());
    set(&mut c, "after");
    // The keys of the write lines, once there are at least `n` of them (or the wait is over).
    let keys = |path: &Path, n: usize| -> Vec<String> {
        let deadline = Instant::now() + WRITTEN_WITHIN;
        loop {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let found: Vec<String> = text
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .filter_map(|l| l["key"].as_str().map(str::to_string))
                .collect();
            if found.len() >= n || Instant::now() > deadline {
                return found;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    assert_eq!(keys(&first, 1), ["before"]);
    assert_eq!(keys(&second, 1), ["after"]);
    // Hashed keys need the cluster secret: refused, nothing changed.
    let refused = put(&mut c, r#"{"MOSTDB_AUDIT_KEYS":"hash"}"#);
    assert_eq!(refused.status, 400, "{}", refused.body_str());
    // A file that cannot be opened: refused, the log stays where it was.
    let nowhere = r#"{"MOSTDB_AUDIT_LOG":"/nonexistent-dir/audit.log"}"#;
    assert_ne!(put(&mut c, nowhere).status, 200);
    set(&mut c, "still-second");
    assert_eq!(keys(&second, 2), ["after", "still-second"]);
    // Off.
    assert_eq!(put(&mut c, r#"{"MOSTDB_AUDIT_LOG":""}"#).status, 200);
    set(&mut c, "unaudited");
    // Waits the whole bound for a third write line, which must not come.
    assert_eq!(keys(&second, 3).len(), 2, "nothing written once off");
}
