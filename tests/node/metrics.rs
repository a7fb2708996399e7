//! `GET /metrics` of the real binary, read with an exposition-format parser
//! (`prometheus-parse`): every family from the first scrape, counters that move by exactly
//! the requests sent (summed over the cores, which the connections spread over), histogram
//! counts equal to the request counts, the API key rule of `/cluster`.

use std::collections::HashMap;

use prometheus_parse::{LineInfo, Scrape, Value};

use crate::support::*;

const KEY_HEADER: &str = "X-MOSTDB-AUTH: metrics-secret";

/// Every family, as its `# HELP` line names it.
const FAMILIES: &[&str] = &[
    "mostdb_requests_total",
    "mostdb_request_duration_seconds",
    "mostdb_peer_up",
    "mostdb_peer_rtt_seconds",
    "mostdb_peer_clock_offset_seconds",
    "mostdb_quorum_available",
    "mostdb_hints_pending",
    "mostdb_hints_dropped_total",
    "mostdb_anti_entropy_keys_copied_total",
    "mostdb_anti_entropy_copies_refused_total",
    "mostdb_expired_keys_reclaimed_total",
    "mostdb_storage_disk_bytes",
    "mostdb_storage_write_stalls_total",
    "mostdb_fsync_duration_seconds",
    "mostdb_connections",
    "mostdb_recovering",
    "mostdb_build_info",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_virtual_memory_bytes",
    "process_open_fds",
    "process_max_fds",
    "process_start_time_seconds",
];

/// One scrape: the parsed samples, keyed by name and sorted labels.
struct Metrics {
    scrape: Scrape,
    values: HashMap<String, f64>,
}

impl Metrics {
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let key = series(name, labels);
        *self
            .values
            .get(&key)
            .unwrap_or_else(|| panic!("no series {key}"))
    }

    fn requests(&self, route: &str, outcome: &str) -> f64 {
        self.get(
            "mostdb_requests_total",
            &[("outcome", outcome), ("route", route)],
        )
    }

    /// Every `mostdb_requests_total` series.
    fn all_requests(&self) -> HashMap<String, f64> {
        self.values
            .iter()
            .filter(|(k, _)| k.starts_with("mostdb_requests_total{"))
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }
}

fn series(name: &str, labels: &[(&str, &str)]) -> String {
    let mut labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    labels.sort();
    format!("{name}{{{}}}", labels.join(","))
}

fn scrape(node: &Node) -> Metrics {
    let mut c = node.client();
    let r = c.call(&request("GET", "/metrics", &[KEY_HEADER], b""));
    assert_eq!(r.status, 200, "{}", show(&r.raw));
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = r.body_str();
    for line in text.lines() {
        assert_ne!(LineInfo::parse(line), LineInfo::Ignored, "unparsed: {line}");
    }
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("parses");
    let mut values = HashMap::new();
    for s in &scrape.samples {
        let labels: Vec<(&str, &str)> = s.labels.iter().map(|(k, v)| (&k[..], &v[..])).collect();
        match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => {
                values.insert(series(&s.metric, &labels), *v);
            }
            Value::Histogram(buckets) => {
                for b in buckets {
                    let le = format!("{}", b.less_than);
                    let mut with_le = labels.clone();
                    with_le.push(("le", &le));
                    values.insert(series(&format!("{}_bucket", s.metric), &with_le), b.count);
                }
            }
            Value::Summary(_) => panic!("no summaries expected"),
        }
    }
    Metrics { scrape, values }
}

/// A request on a connection of its own, so that requests spread over the cores.
fn send(node: &Node, method: &str, path: &str, headers: &[&str], body: &str) -> Resp {
    node.client()
        .call(&request(method, path, headers, body.as_bytes()))
}

#[test]
fn counters_move_by_exactly_the_requests_sent() {
    let node = Node::start_with(&[
        ("MOSTDB_THREADS", "2"),
        ("MOSTDB_SYNC", "always"),
        ("MOSTDB_API_KEY_ENABLE", "true"),
        ("MOSTDB_API_KEY_NAME", "X-MOSTDB-AUTH"),
        ("MOSTDB_API_KEY_VALUE", "metrics-secret"),
    ]);
    // The API key rule of /cluster: without the key, 401 and nothing shown.
    send(&node, "GET", "/metrics", &[], "").assert_json(401, UNAUTHORIZED);

    let before = scrape(&node);
    for family in FAMILIES {
        assert!(
            before.scrape.docs.contains_key(*family),
            "{family} missing at first scrape"
        );
    }
    assert_eq!(
        before.get(
            "mostdb_build_info",
            &[
                ("version", env!("CARGO_PKG_VERSION")),
                ("revision", mostdb::config::COMMIT)
            ]
        ),
        1.0
    );
    assert_eq!(before.get("mostdb_quorum_available", &[]), 1.0);
    assert_eq!(before.get("mostdb_recovering", &[]), 0.0);
    assert!(before.get("mostdb_connections", &[("kind", "client")]) >= 1.0);
    assert!(before.get("process_resident_memory_bytes", &[]) > 0.0);
    assert!(before.get("process_open_fds", &[]) > 0.0);

    const SETS: usize = 7;
    const MISSING_GETS: usize = 5;
    for i in 0..SETS {
        send(
            &node,
            "POST",
            "/mostdb/set",
            &[KEY_HEADER],
            &kv(&format!("m{i}"), "v"),
        )
        .assert_json(200, OK);
    }
    for i in 0..MISSING_GETS {
        send(
            &node,
            "POST",
            "/mostdb/get",
            &[KEY_HEADER],
            &k(&format!("absent{i}")),
        )
        .assert_json(200, NOT_FOUND);
    }
    send(&node, "POST", "/mostdb/set", &[KEY_HEADER], "not json").assert_json(200, BAD_PARAM);
    send(&node, "POST", "/mostdb/get", &[], &k("m0")).assert_json(401, UNAUTHORIZED);

    let after = scrape(&node);
    let expected = [
        (("set", "ok"), SETS),
        (("get", "not_found"), MISSING_GETS),
        (("set", "bad_request"), 1),
        (("get", "unauthorized"), 1),
        // The first scrape (counted once answered) and the refused one.
        (("metrics", "ok"), 1),
    ];
    let (b, a) = (before.all_requests(), after.all_requests());
    assert_eq!(a.len(), b.len(), "the same series");
    for (key, was) in &b {
        let want = expected
            .iter()
            .find(|((route, outcome), _)| {
                *key == series(
                    "mostdb_requests_total",
                    &[("outcome", outcome), ("route", route)],
                )
            })
            .map_or(0, |(_, n)| *n);
        assert_eq!(a[key] - was, want as f64, "{key}");
    }
    assert_eq!(
        before.requests("metrics", "unauthorized"),
        1.0,
        "the refused scrape"
    );
    check_histograms(&after);
    // MOSTDB_SYNC=always: every set waited for a group-commit fsync, each one timed.
    let fsyncs = after.get("mostdb_fsync_duration_seconds_count", &[])
        - before.get("mostdb_fsync_duration_seconds_count", &[]);
    assert!(fsyncs >= 1.0 && fsyncs <= SETS as f64, "{fsyncs} fsyncs");
}

/// Per route: the histogram counts every request the counters count, and its `+Inf` bucket
/// is its count.
fn check_histograms(m: &Metrics) {
    let routes = [
        "set", "get", "del", "get1", "api_get", "healthz", "readyz", "metrics", "other",
    ];
    for route in routes {
        let counted: f64 = m
            .all_requests()
            .iter()
            .filter(|(k, _)| k.contains(&format!("route={route}}}")))
            .map(|(_, v)| v)
            .sum();
        let name = "mostdb_request_duration_seconds";
        let count = m.get(&format!("{name}_count"), &[("route", route)]);
        assert_eq!(count, counted, "route {route}");
        let inf = m.get(
            &format!("{name}_bucket"),
            &[("le", "inf"), ("route", route)],
        );
        assert_eq!(inf, count, "route {route}: +Inf bucket");
    }
    assert!(m.requests("set", "ok") >= 7.0);
}
