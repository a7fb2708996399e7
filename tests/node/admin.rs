//! Runtime settings on the real binary: `GET|PUT /admin/config` change the log level and the
//! API key for the next request; restart-only settings are refused with 409 and nothing is
//! applied; the admin token guards the routes (401 without it, 403 with a wrong one); SIGHUP
//! re-reads the settings file.

use std::time::{Duration, Instant};

use crate::support::{k, kv, request, Node, Resp};

const CONFIG: &str = "/admin/config";
const SET: &str = "/mostdb/set";
const TOKEN: &str = "Authorization: Bearer adm1n-t0ken";
/// How long a change may take to show (it is applied before the answer; the log is polled).
const SHOW_WITHIN: Duration = Duration::from_secs(5);

fn put(node: &Node, headers: &[&str], body: &str) -> Resp {
    node.client()
        .call(&request("PUT", CONFIG, headers, body.as_bytes()))
}

fn get(node: &Node, headers: &[&str]) -> Resp {
    node.client().call(&request("GET", CONFIG, headers, b""))
}

fn json(resp: &Resp) -> serde_json::Value {
    serde_json::from_slice(&resp.body).unwrap_or_else(|e| panic!("{e}: {}", resp.body_str()))
}

/// Waits until the node's log contains `needle`.
fn log_shows(node: &Node, needle: &str) -> bool {
    let deadline = Instant::now() + SHOW_WITHIN;
    while Instant::now() < deadline {
        if std::fs::read_to_string(node.log_path()).is_ok_and(|log| log.contains(needle)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn log_count(node: &Node, needle: &str) -> usize {
    std::fs::read_to_string(node.log_path())
        .map(|log| log.matches(needle).count())
        .unwrap_or(0)
}

#[test]
fn the_log_level_changes_at_runtime() {
    let node = Node::start_with(&[("MOSTDB_LOG_LEVEL", "INFO")]);
    let listed = json(&get(&node, &[]));
    assert_eq!(listed["result"]["MOSTDB_LOG_LEVEL"]["value"], "INFO");
    assert_eq!(listed["result"]["MOSTDB_LOG_LEVEL"]["reloadable"], true);
    assert_eq!(listed["result"]["MOSTDB_SERVER_PORT"]["reloadable"], false);
    assert_eq!(
        listed["result"]["MOSTDB_API_KEY_VALUE"]["value"],
        "<redacted>"
    );
    // A malformed request is refused with a DEBUG line: not at INFO.
    node.client().call(b"BAD REQUEST\r\n\r\n");
    assert_eq!(log_count(&node, "refusing request"), 0);

    let resp = put(&node, &[], r#"{"MOSTDB_LOG_LEVEL":"debug"}"#);
    assert_eq!(resp.status, 200, "{}", resp.body_str());
    assert_eq!(json(&resp)["result"]["changed"][0], "MOSTDB_LOG_LEVEL");
    assert_eq!(
        json(&get(&node, &[]))["result"]["MOSTDB_LOG_LEVEL"]["value"],
        "DEBUG"
    );
    node.client().call(b"BAD REQUEST\r\n\r\n");
    assert!(
        log_shows(&node, "refusing request"),
        "DEBUG lines after the change"
    );
}

#[test]
fn the_api_key_rotates_at_runtime() {
    let node = Node::start_with(&[
        ("MOSTDB_API_KEY_ENABLE", "true"),
        ("MOSTDB_API_KEY_VALUE", "old-key"),
    ]);
    let old = "X-MOSTDB-AUTH: old-key";
    let new = "X-MOSTDB-AUTH: new-key";
    let set = |key: &str| {
        node.client()
            .call(&request("POST", SET, &[key], kv("k", "v").as_bytes()))
            .status
    };
    assert_eq!(set(old), 200);
    // The admin route wants the API key too.
    assert_eq!(
        put(&node, &[], r#"{"MOSTDB_API_KEY_VALUE":"new-key"}"#).status,
        401
    );
    let resp = put(&node, &[old], r#"{"MOSTDB_API_KEY_VALUE":"new-key"}"#);
    assert_eq!(resp.status, 200, "{}", resp.body_str());
    assert_eq!(set(old), 401, "the old key is refused on the next request");
    assert_eq!(set(new), 200);
    let got = node
        .client()
        .call(&request("POST", "/mostdb/get", &[new], k("k").as_bytes()));
    assert_eq!(got.status, 200);
    assert!(
        !get(&node, &[new]).body_str().contains("new-key"),
        "redacted"
    );
}

#[test]
fn restart_only_settings_are_refused_and_nothing_is_applied() {
    let node = Node::start();
    let resp = put(
        &node,
        &[],
        r#"{"MOSTDB_LOG_LEVEL":"debug","MOSTDB_SERVER_PORT":"1234"}"#,
    );
    assert_eq!(resp.status, 409, "{}", resp.body_str());
    let body = json(&resp);
    assert_eq!(body["code"], 409);
    assert_eq!(body["message"], "RestartRequired");
    assert_eq!(body["success"], false);
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains("MOSTDB_SERVER_PORT"));
    let bad = put(
        &node,
        &[],
        r#"{"MOSTDB_LOG_LEVEL":"debug","MOSTDB_TIMEOUT_MS":"7"}"#,
    );
    assert_eq!(bad.status, 400, "{}", bad.body_str());
    assert!(
        bad.body_str().contains("MOSTDB_TIMEOUT_MS"),
        "{}",
        bad.body_str()
    );
    for hostile in ["{", "[]", &format!("{{\"a\":{}}}", "[".repeat(5000))] {
        assert_eq!(put(&node, &[], hostile).status, 400, "{hostile:.20}");
    }
    let now = json(&get(&node, &[]));
    assert_eq!(
        now["result"]["MOSTDB_LOG_LEVEL"]["value"], "INFO",
        "nothing applied"
    );
    assert_eq!(
        now["result"]["MOSTDB_SERVER_PORT"]["value"],
        node.port().to_string()
    );
}

#[test]
fn the_admin_token_guards_the_admin_routes() {
    let node = Node::start_with(&[("MOSTDB_ADMIN_TOKEN", "adm1n-t0ken")]);
    assert_eq!(get(&node, &[]).status, 401);
    assert_eq!(get(&node, &["Authorization: Bearer wrong"]).status, 403);
    let change = r#"{"MOSTDB_LOG_LEVEL":"warn"}"#;
    assert_eq!(put(&node, &[], change).status, 401);
    assert_eq!(
        put(&node, &["Authorization: Bearer adm1n-t0ke"], change).status,
        403
    );
    let listed = json(&get(&node, &[TOKEN]));
    assert_eq!(
        listed["result"]["MOSTDB_LOG_LEVEL"]["value"], "INFO",
        "nothing applied"
    );
    assert_eq!(
        listed["result"]["MOSTDB_ADMIN_TOKEN"]["value"],
        "<redacted>"
    );
    assert_eq!(put(&node, &[TOKEN], change).status, 200);
    // Data routes do not need the admin token.
    let set = request("POST", SET, &[], kv("k", "v").as_bytes());
    assert_eq!(node.client().call(&set).status, 200);
}

#[test]
fn sighup_rereads_the_settings_file() {
    let dir = std::env::temp_dir().join(format!("mostdb-admin-hup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("mostdb.toml");
    std::fs::write(&file, "MOSTDB_TIMEOUT_MS = 1500\n").unwrap();
    let node = Node::start_with(&[("MOSTDB_CONFIG_FILE", file.to_str().unwrap())]);
    let timeout =
        |node: &Node| json(&get(node, &[]))["result"]["MOSTDB_TIMEOUT_MS"]["value"].clone();
    assert_eq!(timeout(&node), "1500");
    std::fs::write(
        &file,
        "MOSTDB_TIMEOUT_MS = 2500\nMOSTDB_CLUSTER_ID = \"other\"\nMOSTDB_WRITE_MODE = \"safe\"\n",
    )
    .unwrap();
    // SAFETY: a signal to the child this test started.
    unsafe { libc::kill(node.pid() as i32, libc::SIGHUP) };
    assert!(log_shows(&node, "SIGHUP: settings reloaded"));
    assert_eq!(timeout(&node), "2500");
    let listed = json(&get(&node, &[]));
    assert_eq!(listed["result"]["MOSTDB_WRITE_MODE"]["value"], "safe");
    assert!(
        log_shows(&node, "MOSTDB_CLUSTER_ID"),
        "restart-only changes are logged"
    );
    // A bad file changes nothing; the node keeps serving.
    std::fs::write(&file, "MOSTDB_TIMEOUT_MS = 7\n").unwrap();
    unsafe { libc::kill(node.pid() as i32, libc::SIGHUP) };
    assert!(log_shows(&node, "SIGHUP: settings not reloaded"));
    assert_eq!(timeout(&node), "2500");
    let _ = std::fs::remove_dir_all(&dir);
}
