//! Heartbeat monitoring on the real binary (DESIGN §12): a node that loses its majority says
//! so on `/readyz` (503 `NoMajority`, within 2 s) and once in its log ("majority lost", one
//! WARN line per node however many cores it has), and becomes ready again with "majority
//! regained"; `GET /cluster?view=cluster` gathers every node's view of every other, so a cut
//! in one direction only shows as such, and a node that does not answer is a row of `null`s.
//!
//! Checked to fail on the code before: there `/readyz` stayed 200 with two nodes dead, and
//! the log held only per-core INFO "peer link down" lines.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::cluster::{Cluster, ClusterSpec};
use crate::support::proxy::CutMode;
use crate::support::request;

/// `/readyz` must refuse this soon after the majority is gone (the issue's bound).
const NO_MAJORITY_WITHIN_MS: u64 = 2_000;
/// How long a state change may take to show in a view (down is declared after 1.5 s).
const VIEW_CHANGE_MS: u64 = 6_000;
const POLL_MS: u64 = 20;

fn get(cluster: &Cluster, i: usize, path: &str) -> (u16, String) {
    let resp = cluster
        .node(i)
        .client()
        .call(&request("GET", path, &[], b""));
    (resp.status, resp.body_str())
}

fn cluster_json(cluster: &Cluster, i: usize, path: &str) -> Value {
    let (status, body) = get(cluster, i, path);
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("cluster view is JSON")
}

/// Lines of node `i`'s log at WARN that contain `text`.
fn warn_lines(cluster: &Cluster, i: usize, text: &str) -> Vec<String> {
    let log = std::fs::read_to_string(cluster.node(i).log_path()).expect("node log");
    log.lines()
        .filter(|l| l.contains("WARN") && l.contains(text))
        .map(str::to_string)
        .collect()
}

/// Polls `check` until it holds or `ms` pass; how long it took.
fn within(ms: u64, what: &str, cluster: &Cluster, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !check() {
        if start.elapsed() > Duration::from_millis(ms) {
            panic!("{what}: not within {ms} ms\n{}", cluster.logs(60));
        }
        std::thread::sleep(Duration::from_millis(POLL_MS));
    }
    start.elapsed()
}

#[test]
fn losing_the_majority_is_one_warning_and_readyz_refuses_until_it_is_back() {
    let mut cluster = Cluster::start(&ClusterSpec::default());
    // Node 0 keeps an audit log: the membership events go there too.
    let audit = cluster.dir().join("audit0.log");
    cluster.set_env(0, "MOSTDB_AUDIT_LOG", &audit.display().to_string());
    cluster.kill9(0);
    cluster.restart(0).expect("node 0 back with its audit log");
    cluster.wait_links_up();
    assert_eq!(get(&cluster, 0, "/readyz").0, 200);
    cluster.kill9(1);
    cluster.kill9(2);
    let took = within(NO_MAJORITY_WITHIN_MS, "/readyz 503", &cluster, || {
        let (status, body) = get(&cluster, 0, "/readyz");
        status == 503 && body.contains(r#""message":"NoMajority""#)
    });
    eprintln!("/readyz refused {} ms after the kills", took.as_millis());
    assert_eq!(get(&cluster, 0, "/healthz").0, 200, "still alive");
    // Both peers go down (after the down bound): one line each, not one per core.
    within(VIEW_CHANGE_MS, "both peers down", &cluster, || {
        warn_lines(&cluster, 0, "peer down").len() >= 2
    });
    let view = cluster_json(&cluster, 0, "/cluster");
    let states: Vec<&str> = view["result"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["state"].as_str().expect("state"))
        .collect();
    assert_eq!(states.iter().filter(|s| **s == "down").count(), 2, "{view}");
    assert_eq!(warn_lines(&cluster, 0, "peer down").len(), 2);
    assert_eq!(warn_lines(&cluster, 0, "majority lost").len(), 1);
    assert!(warn_lines(&cluster, 0, "majority regained").is_empty());
    // The metrics say the same as the view, whichever core answers the scrape.
    let (status, metrics) = get(&cluster, 0, "/metrics");
    assert_eq!(status, 200);
    assert!(
        metrics.lines().any(|l| l == "mostdb_quorum_available 0"),
        "{metrics}"
    );
    let peers_up: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("mostdb_peer_up{"))
        .collect();
    assert_eq!(peers_up.len(), 2, "{metrics}");
    let value = |l: &str| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
    assert!(
        peers_up.iter().all(|l| value(l) == Some(0.0)),
        "{peers_up:?}"
    );
    cluster.heal_all().expect("the dead nodes restart");
    within(VIEW_CHANGE_MS, "/readyz 200 again", &cluster, || {
        get(&cluster, 0, "/readyz").0 == 200
    });
    within(VIEW_CHANGE_MS, "both peers back", &cluster, || {
        warn_lines(&cluster, 0, "peer back").len() >= 2
    });
    assert_eq!(warn_lines(&cluster, 0, "majority regained").len(), 1);
    assert_eq!(warn_lines(&cluster, 0, "majority lost").len(), 1);
    assert_eq!(warn_lines(&cluster, 0, "peer back").len(), 2);
    // The audit writer may take a moment after the log line.
    let expected = (2, 1, 1, 2);
    let waited = Instant::now();
    let (events, counts) = loop {
        let events: Vec<String> = std::fs::read_to_string(&audit)
            .expect("audit log")
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).expect("a JSON line"))
            .filter(|l| l["op"] == "membership")
            .map(|l| l["outcome"].as_str().unwrap_or_default().to_string())
            .collect();
        let count = |what: &str| events.iter().filter(|e| *e == what).count();
        let counts = (
            count("peer_down"),
            count("majority_lost"),
            count("majority_regained"),
            count("peer_back"),
        );
        if counts == expected || waited.elapsed() > Duration::from_secs(5) {
            break (events, counts);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(counts, expected, "{events:?}");
}

/// Node `of`'s row and column indices in node `asked`'s matrix: the URL node `asked` has for
/// node `of` (its own, or its proxy to it).
fn column(cluster: &Cluster, matrix: &Value, asked: usize, of: usize) -> usize {
    let url = if asked == of {
        cluster.node(asked).url()
    } else {
        format!("http://{}", cluster.link(asked, of).addr())
    };
    let nodes = matrix["nodes"].as_array().expect("matrix nodes");
    nodes
        .iter()
        .position(|n| n.as_str() == Some(url.as_str()))
        .unwrap_or_else(|| panic!("{url} not in {matrix}"))
}

/// How node `from` sees node `to`, in node `asked`'s matrix (`null` when `from` did not
/// answer).
fn reach(cluster: &Cluster, matrix: &Value, asked: usize, from: usize, to: usize) -> Value {
    let (i, j) = (
        column(cluster, matrix, asked, from),
        column(cluster, matrix, asked, to),
    );
    matrix["reach"][i][j].clone()
}

#[test]
fn the_matrix_shows_a_one_way_cut_and_a_node_that_does_not_answer() {
    let mut cluster = Cluster::start(&ClusterSpec::default());
    cluster.wait_links_up();
    // Node 0 can no longer reach node 1; node 1 still reaches node 0.
    cluster.link(0, 1).cut(CutMode::Refuse);
    let mut matrix = Value::Null;
    within(
        VIEW_CHANGE_MS,
        "the cut in node 1's matrix",
        &cluster,
        || {
            matrix = cluster_json(&cluster, 1, "/cluster?view=cluster")["result"]["matrix"].clone();
            reach(&cluster, &matrix, 1, 0, 1) == "down"
        },
    );
    assert_eq!(reach(&cluster, &matrix, 1, 1, 0), "up", "{matrix}");
    assert_eq!(reach(&cluster, &matrix, 1, 0, 0), "self", "{matrix}");
    assert_eq!(reach(&cluster, &matrix, 1, 2, 0), "up", "{matrix}");
    assert_eq!(reach(&cluster, &matrix, 1, 2, 1), "up", "{matrix}");
    assert_eq!(reach(&cluster, &matrix, 1, 0, 2), "up", "{matrix}");
    // Node 0 has its majority (itself and node 2): still ready.
    assert_eq!(get(&cluster, 0, "/readyz").0, 200);
    cluster.link(0, 1).heal();
    // A paused node answers nothing: its row is nulls, within the bounded wait.
    cluster.pause(2);
    let asked = Instant::now();
    let view = cluster_json(&cluster, 0, "/cluster?view=cluster")["result"].clone();
    assert!(
        asked.elapsed() < Duration::from_millis(3_000),
        "bounded wait"
    );
    let row = &view["matrix"]["reach"][column(&cluster, &view["matrix"], 0, 2)];
    assert!(
        row.as_array().expect("row").iter().all(Value::is_null),
        "{view}"
    );
    let entry = &view["nodes"][column(&cluster, &view["matrix"], 0, 0)];
    assert_eq!(entry["state"], "self", "{view}");
    assert_eq!(entry["recovering"], false, "{view}");
    assert!(
        entry["uptime_s"].is_u64() && entry["version"].is_string(),
        "{view}"
    );
    cluster.resume(2);
    // A bad view is refused with HTTP 400 in the admin routes' envelope.
    let (status, body) = get(&cluster, 0, "/cluster?view=everything");
    assert_eq!(status, 400, "{body}");
    assert!(
        body.starts_with(r#"{"code":400,"message":"BadRequest","success":false,"detail":"view"#),
        "{body}"
    );
}
