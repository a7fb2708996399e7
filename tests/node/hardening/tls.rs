//! TLS (`MOSTDB_TLS_CERT`, `MOSTDB_TLS_KEY`, `MOSTDB_TLS_CA`) on one node: it serves clients
//! over TLS and refuses plain HTTP cleanly; the peer upgrade needs a client certificate from
//! the CA; bad settings stop the start with a line naming the setting. (A TLS cluster is in
//! `tests/cluster/hardening/tls.rs`.)
//!
//! Throwaway certificates and the client over TLS are in `support/tls.rs`; nodes are the
//! harness's [`Node`], probed for readiness over TLS.

use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::tls::{
    client_config, read_answer, ready_over_tls, set, tls_env, tls_request, Pki, TLS_IO_TIMEOUT_MS,
};
use crate::support::{run_to_exit, Node, TempDir, READY_TIMEOUT_MS};

const EXIT_STATUS_USAGE: i32 = 2;

/// The peer upgrade request, without any proof: what matters here is whether the node
/// refuses it for want of a client certificate (403, "mutual TLS") or looks further.
const PEER_UPGRADE: &str =
    "GET /_mostdb/peer HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: mostdb-peer/1";

/// A single node with TLS settings `env`, started and ready over TLS for `config`.
fn tls_node(env: &[(&str, String)], config: &Arc<rustls::ClientConfig>) -> Node {
    let dir = TempDir::new("tls");
    let store = dir.path().join("store");
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut node = Node::new_stopped(dir, store, &env);
    node.spawn();
    let deadline = Instant::now() + Duration::from_millis(READY_TIMEOUT_MS);
    if let Err(e) = node.wait_until(deadline, |addr| ready_over_tls(addr, config)) {
        panic!("TLS node not ready over TLS: {e:?}");
    }
    node
}

// ------------------------------------------------------------------------------------------------
// Tests

#[test]
fn a_tls_node_serves_clients_over_tls_and_refuses_plain_http() {
    let dir = TempDir::new("pki");
    let pki = Pki::new(dir.path(), "ca");
    let server = pki.issue("node");
    let client = client_config(&pki.ca(), None);
    let mut node = tls_node(&tls_env(&server, None), &client);

    let answer = set(node.addr(), &client, "k", "over tls");
    assert_eq!(answer.status, 200, "{answer:?}");
    let get = tls_request(node.addr(), &client, "GET /mostdb/get?key=k HTTP/1.1", "").expect("get");
    assert_eq!(get.status, 200, "{get:?}");
    assert!(get.body.contains(r#""value":"over tls""#), "{get:?}");

    // Plain HTTP on the TLS port: a readable 400, then the connection closes.
    let mut plain = TcpStream::connect(node.addr()).expect("connect");
    plain
        .set_read_timeout(Some(Duration::from_millis(TLS_IO_TIMEOUT_MS)))
        .expect("timeout");
    plain
        .write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let refused = read_answer(&mut plain).expect("a plain answer");
    assert_eq!(refused.status, 400, "{refused:?}");
    assert!(refused.body.contains("https://"), "{refused:?}");
    // Garbage and a connection that says nothing: no crash, the node still serves.
    let mut junk = TcpStream::connect(node.addr()).expect("connect");
    let _ = junk.write_all(&[0x16, 0x03, 0x01, 0xff, 0xff, 0, 0, 0]);
    drop(junk);
    drop(TcpStream::connect(node.addr()).expect("connect"));
    let again =
        tls_request(node.addr(), &client, "GET /mostdb/get?key=k HTTP/1.1", "").expect("get");
    assert_eq!(again.status, 200, "{again:?}");
    assert!(node.is_running());
    node.stop();
}

#[test]
fn the_peer_upgrade_needs_a_client_certificate_from_the_ca() {
    let dir = TempDir::new("pki");
    let pki = Pki::new(dir.path(), "ca");
    let rogue = Pki::new(dir.path(), "rogue");
    let server = pki.issue("node");
    let anonymous = client_config(&pki.ca(), None);
    let mut node = tls_node(&tls_env(&server, Some(&pki.ca())), &anonymous);

    // No client certificate: client routes work, the peer upgrade is refused.
    let answer = set(node.addr(), &anonymous, "k", "v");
    assert_eq!(answer.status, 200, "{answer:?}");
    let refused = tls_request(node.addr(), &anonymous, PEER_UPGRADE, "").expect("answer");
    assert_eq!(refused.status, 403, "{refused:?}");
    assert!(refused.body.contains("mutual TLS"), "{refused:?}");

    // A certificate from another CA: the TLS handshake itself fails.
    let stranger = client_config(&pki.ca(), Some(&rogue.issue("stranger")));
    let result = tls_request(node.addr(), &stranger, PEER_UPGRADE, "");
    assert!(
        result.is_err(),
        "a foreign certificate was accepted: {result:?}"
    );

    // A certificate from the CA: the upgrade gets past the certificate check (and is then
    // judged on its handshake fields, which this request lacks).
    let member = client_config(&pki.ca(), Some(&pki.issue("member")));
    let judged = tls_request(node.addr(), &member, PEER_UPGRADE, "").expect("answer");
    assert!(!judged.body.contains("mutual TLS"), "{judged:?}");
    assert!(node.is_running());
    node.stop();
}

/// Runs the binary with `env` and expects exit status 2 and a stderr line naming `setting`
/// and containing `words`.
fn fails_at_start(env: &[(&str, &str)], setting: &str, words: &str) {
    let exited = run_to_exit(&[], env);
    assert_eq!(
        exited.status.code(),
        Some(EXIT_STATUS_USAGE),
        "{env:?}: {}",
        exited.stderr
    );
    let line = exited.stderr.lines().find(|l| l.contains(setting));
    assert!(
        line.is_some_and(|l| l.contains(words)),
        "{env:?}: expected a line naming {setting} with {words:?}:\n{}",
        exited.stderr
    );
}

#[test]
fn bad_tls_settings_stop_the_start_with_a_line_naming_the_setting() {
    let dir = TempDir::new("pki");
    let pki = Pki::new(dir.path(), "ca");
    let (cert, key) = pki.issue("node");
    let (_, other_key) = pki.issue("other");
    let (cert, key, other_key) = (
        cert.to_str().unwrap(),
        key.to_str().unwrap(),
        other_key.to_str().unwrap(),
    );
    let ca = pki.ca();
    let ca = ca.to_str().unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a PEM file\n").expect("write");
    let garbage = garbage.to_str().unwrap();
    let missing = "/nonexistent/mostdb-tls/cert.pem";

    fails_at_start(
        &[("MOSTDB_TLS_CERT", cert)],
        "MOSTDB_TLS_CERT",
        "MOSTDB_TLS_KEY",
    );
    fails_at_start(
        &[("MOSTDB_TLS_KEY", key)],
        "MOSTDB_TLS_KEY",
        "MOSTDB_TLS_CERT",
    );
    fails_at_start(&[("MOSTDB_TLS_CA", ca)], "MOSTDB_TLS_CA", "MOSTDB_TLS_CERT");
    fails_at_start(
        &[("MOSTDB_TLS_CERT", missing), ("MOSTDB_TLS_KEY", key)],
        "MOSTDB_TLS_CERT",
        "cannot read",
    );
    fails_at_start(
        &[("MOSTDB_TLS_CERT", garbage), ("MOSTDB_TLS_KEY", key)],
        "MOSTDB_TLS_CERT",
        "no CERTIFICATE",
    );
    fails_at_start(
        &[("MOSTDB_TLS_CERT", cert), ("MOSTDB_TLS_KEY", cert)],
        "MOSTDB_TLS_KEY",
        "no PRIVATE KEY",
    );
    fails_at_start(
        &[("MOSTDB_TLS_CERT", cert), ("MOSTDB_TLS_KEY", other_key)],
        "MOSTDB_TLS_KEY",
        "does not fit",
    );
    fails_at_start(
        &[
            ("MOSTDB_TLS_CERT", cert),
            ("MOSTDB_TLS_KEY", key),
            ("MOSTDB_TLS_CA", garbage),
        ],
        "MOSTDB_TLS_CA",
        "no CERTIFICATE",
    );
    let peers = "http://127.0.0.1:1;http://127.0.0.1:2;http://127.0.0.1:3";
    fails_at_start(
        &[
            ("MOSTDB_TLS_CERT", cert),
            ("MOSTDB_TLS_KEY", key),
            ("MOSTDB_CLUSTER_URLS", peers),
        ],
        "MOSTDB_TLS_CERT",
        "MOSTDB_TLS_CA",
    );
}
