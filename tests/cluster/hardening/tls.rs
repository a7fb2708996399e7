//! TLS between nodes: a 3-node cluster with a CA (`MOSTDB_TLS_CA`) replicates over mutually
//! authenticated links. (One TLS node is in `tests/node/hardening/tls.rs`.)

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::support::cluster::LoadSlot;
use crate::support::tls::{
    client_config, local_get, ready_over_tls, set, tls_env, tls_request, Pki,
};
use crate::support::{addr, Listen, Node, TempDir};

/// A cluster node may take this long to become ready: it recovers from its peers first.
const READY_TIMEOUT_MS: u64 = 30_000;
/// A write on one node reaches every replica within this long.
const REPLICATED_TIMEOUT_MS: u64 = 10_000;
/// Pause between two polls of a replicated value.
const POLL_MS: u64 = 50;
/// `MOSTDB_THREADS` of each node (the harness's default).
const NODE_THREADS: usize = 2;

#[test]
fn a_tls_cluster_with_a_ca_replicates_over_mutual_tls() {
    let _slot = LoadSlot::take(3 * NODE_THREADS);
    let dir = TempDir::new("pki");
    let pki = Pki::new(dir.path(), "ca");
    let addrs: Vec<SocketAddr> = (0..3).map(|_| addr::fixed()).collect();
    let urls: Vec<String> = addrs.iter().map(|a| format!("http://{a}")).collect();
    let mut nodes: Vec<Node> = (0..3)
        .map(|i| {
            let cert = pki.issue(&format!("node{i}"));
            let mut env: Vec<(String, String)> = tls_env(&cert, Some(&pki.ca()))
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            env.push(("MOSTDB_SERVER_URL".into(), urls[i].clone()));
            env.push(("MOSTDB_CLUSTER_URLS".into(), urls.join(";")));
            let store = dir.path().join(format!("store{i}"));
            let name = format!("node {i}");
            let mut node = Node::member(&name, dir.path(), Listen::At(addrs[i]), store, env);
            node.spawn();
            node
        })
        .collect();
    let client = client_config(&pki.ca(), None);
    let deadline = Instant::now() + Duration::from_millis(READY_TIMEOUT_MS);
    for node in &mut nodes {
        if let Err(e) = node.wait_until(deadline, |addr| ready_over_tls(addr, &client)) {
            panic!("TLS cluster node not ready over TLS: {e:?}");
        }
    }
    let answer = set(addrs[0], &client, "replicated", "v1");
    assert_eq!(answer.status, 200, "{answer:?}");
    for &addr in &addrs[1..] {
        let deadline = Instant::now() + Duration::from_millis(REPLICATED_TIMEOUT_MS);
        loop {
            let got = local_get(addr, &client, "replicated").expect("local get");
            if got.status == 200 && got.body.contains(r#""value":"v1""#) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node on {addr} has no copy: {got:?}"
            );
            std::thread::sleep(Duration::from_millis(POLL_MS));
        }
    }
    // A settings change for the whole cluster reaches the peers over TLS.
    let change = r#"{"MOSTDB_TIMEOUT_MS":"1234"}"#;
    let head = "PUT /admin/config?scope=cluster HTTP/1.1";
    let answer = tls_request(addrs[0], &client, head, change).expect("admin over TLS");
    assert_eq!(answer.status, 200, "{answer:?}");
    for &addr in &addrs {
        let got = tls_request(addr, &client, "GET /admin/config HTTP/1.1", "").expect("get");
        assert!(
            got.body.contains(r#""MOSTDB_TIMEOUT_MS":{"value":"1234""#),
            "{addr}: {got:?}"
        );
    }
    for node in &mut nodes {
        node.stop();
    }
}
