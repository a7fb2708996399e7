//! TLS (`MOSTDB_TLS_CERT`, `MOSTDB_TLS_KEY`, `MOSTDB_TLS_CA`): a TLS node serves clients over
//! TLS and refuses plain HTTP cleanly; a 3-node cluster with a CA replicates over mutually
//! authenticated links; the peer upgrade needs a client certificate from the CA; bad settings
//! stop the start with a line naming the setting.
//!
//! Throwaway certificates come from `rcgen`; the client is `rustls` over a blocking socket.
//! The harness's `Node` waits on `/readyz` in plain HTTP, so the nodes here are started and
//! probed by [`TlsNode`].

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::support::{
    base_command, file_tail, free_port, run_to_exit, signal, wait_timeout, TempDir,
};

/// A cluster node may take this long to become ready: it recovers from its peers first.
const READY_TIMEOUT_MS: u64 = 30_000;
/// A write on one node reaches every replica within this long.
const REPLICATED_TIMEOUT_MS: u64 = 10_000;
/// Socket timeout of one client request.
const IO_TIMEOUT_MS: u64 = 5_000;
/// Pause between two polls (readiness, a replicated value).
const POLL_MS: u64 = 50;
const EXIT_STATUS_USAGE: i32 = 2;

// ------------------------------------------------------------------------------------------------
// Certificates

/// A CA and what it signed, written as PEM files into one directory.
struct Pki {
    dir: PathBuf,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    fn new(dir: &Path, name: &str) -> Pki {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).expect("self-signed CA");
        let dir = dir.join(name);
        std::fs::create_dir_all(&dir).expect("pki dir");
        std::fs::write(dir.join("ca.pem"), cert.pem()).expect("write CA");
        Pki {
            dir,
            issuer: Issuer::new(params, key),
        }
    }

    fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// A certificate for 127.0.0.1 and localhost, for servers and clients alike: its
    /// (certificate chain, key) paths.
    fn issue(&self, name: &str) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().expect("key");
        let sans = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        let mut params = CertificateParams::new(sans).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        let (cert_path, key_path) = (
            self.dir.join(format!("{name}.pem")),
            self.dir.join(format!("{name}.key")),
        );
        std::fs::write(&cert_path, cert.pem()).expect("write cert");
        std::fs::write(&key_path, key.serialize_pem()).expect("write key");
        (cert_path, key_path)
    }
}

// ------------------------------------------------------------------------------------------------
// A client over TLS

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client config that trusts `ca`, presenting `client` (certificate, key) if given.
fn client_config(ca: &Path, client: Option<&(PathBuf, PathBuf)>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("read CA") {
        roots.add(cert.expect("CA PEM")).expect("add CA");
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .expect("read cert")
                .collect::<Result<Vec<_>, _>>()
                .expect("cert PEM");
            let key = PrivateKeyDer::from_pem_file(key).expect("key PEM");
            builder
                .with_client_auth_cert(chain, key)
                .expect("client cert")
        }
    };
    Arc::new(config)
}

/// An answer: status and body.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: String,
}

/// Sends one request over TLS and reads its answer (up to its `Content-Length`).
fn tls_request(
    port: u16,
    config: &Arc<rustls::ClientConfig>,
    head: &str,
    body: &str,
) -> std::io::Result<Answer> {
    let tcp = TcpStream::connect(("127.0.0.1", port))?;
    tcp.set_read_timeout(Some(Duration::from_millis(IO_TIMEOUT_MS)))?;
    tcp.set_write_timeout(Some(Duration::from_millis(IO_TIMEOUT_MS)))?;
    let name = ServerName::try_from("127.0.0.1").expect("server name");
    let conn =
        rustls::ClientConnection::new(config.clone(), name).map_err(std::io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let request = format!(
        "{head}\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    tls.write_all(request.as_bytes())?;
    read_answer(&mut tls)
}

/// Reads one HTTP answer from `r`: its head, then `Content-Length` bytes of body.
fn read_answer(r: &mut impl Read) -> std::io::Result<Answer> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(str::to_string)
                })
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                let status = head
                    .split(' ')
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + length]).to_string();
                return Ok(Answer { status, body });
            }
        }
        let n = r.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn set(port: u16, config: &Arc<rustls::ClientConfig>, key: &str, value: &str) -> Answer {
    let body = format!(r#"{{"key":"{key}","value":"{value}"}}"#);
    tls_request(port, config, "POST /mostdb/set HTTP/1.1", &body).expect("set over TLS")
}

/// This node's own copy of `key` (`/mostdb/api/get`, no quorum).
fn local_get(port: u16, config: &Arc<rustls::ClientConfig>, key: &str) -> std::io::Result<Answer> {
    let body = format!(r#"{{"key":"{key}"}}"#);
    tls_request(port, config, "POST /mostdb/api/get HTTP/1.1", &body)
}

/// The peer upgrade request, without any proof: what matters here is whether the node
/// refuses it for want of a client certificate (403, "mutual TLS") or looks further.
const PEER_UPGRADE: &str =
    "GET /_mostdb/peer HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: mostdb-peer/1";

// ------------------------------------------------------------------------------------------------
// Nodes

/// A node started with TLS settings and probed over TLS. Killed on drop; its log tail is
/// printed when the test fails.
struct TlsNode {
    child: Option<Child>,
    port: u16,
    log: PathBuf,
    _dir: TempDir,
}

impl TlsNode {
    /// Spawns the binary on `port` with `env` (plus a private store, loopback, 2 threads).
    fn spawn(port: u16, env: &[(&str, String)]) -> TlsNode {
        let dir = TempDir::new("tls");
        let log = dir.path().join("mostdb.log");
        let out = File::create(&log).expect("log file");
        let mut cmd = base_command();
        cmd.env("MOSTDB_HOST", "127.0.0.1")
            .env("MOSTDB_SERVER_PORT", port.to_string())
            .env("MOSTDB_STORE_ROOT", dir.path().join("store"))
            .env("MOSTDB_THREADS", "2");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null())
            .stdout(out.try_clone().expect("clone log"))
            .stderr(out);
        TlsNode {
            child: Some(cmd.spawn().expect("spawn mostdb")),
            port,
            log,
            _dir: dir,
        }
    }

    /// Waits until `GET /readyz` over TLS answers 200.
    fn wait_ready(&mut self, config: &Arc<rustls::ClientConfig>) {
        let deadline = Instant::now() + Duration::from_millis(READY_TIMEOUT_MS);
        loop {
            let child = self.child.as_mut().expect("running");
            if let Some(status) = child.try_wait().expect("try_wait") {
                panic!("node exited with {status}\n{}", file_tail(&self.log, 40));
            }
            let probe = tls_request(self.port, config, "GET /readyz HTTP/1.1", "");
            if matches!(probe, Ok(Answer { status: 200, .. })) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node on {} not ready over TLS: {probe:?}\n{}",
                self.port,
                file_tail(&self.log, 40)
            );
            std::thread::sleep(Duration::from_millis(POLL_MS));
        }
    }

    fn is_running(&mut self) -> bool {
        let child = self.child.as_mut().expect("running");
        child.try_wait().expect("try_wait").is_none()
    }

    /// SIGTERM and a clean exit.
    fn stop(&mut self) {
        let mut child = self.child.take().expect("running");
        signal(child.id(), libc::SIGTERM);
        let status = wait_timeout(&mut child, Duration::from_millis(10_000));
        assert!(
            status.is_some_and(|s| s.success()),
            "node did not stop cleanly: {status:?}\n{}",
            file_tail(&self.log, 40)
        );
    }
}

impl Drop for TlsNode {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "----- {} -----\n{}",
                self.log.display(),
                file_tail(&self.log, 60)
            );
        }
    }
}

fn tls_env(cert: &(PathBuf, PathBuf), ca: Option<&Path>) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("MOSTDB_TLS_CERT", cert.0.display().to_string()),
        ("MOSTDB_TLS_KEY", cert.1.display().to_string()),
    ];
    if let Some(ca) = ca {
        env.push(("MOSTDB_TLS_CA", ca.display().to_string()));
    }
    env
}

// ------------------------------------------------------------------------------------------------
// Tests

#[test]
fn a_tls_node_serves_clients_over_tls_and_refuses_plain_http() {
    let dir = TempDir::new("pki");
    let pki = Pki::new(dir.path(), "ca");
    let server = pki.issue("node");
    let mut node = TlsNode::spawn(free_port(), &tls_env(&server, None));
    let client = client_config(&pki.ca(), None);
    node.wait_ready(&client);

    let answer = set(node.port, &client, "k", "over tls");
    assert_eq!(answer.status, 200, "{answer:?}");
    let get = tls_request(node.port, &client, "GET /mostdb/get?key=k HTTP/1.1", "").expect("get");
    assert_eq!(get.status, 200, "{get:?}");
    assert!(get.body.contains(r#""value":"over tls""#), "{get:?}");

    // Plain HTTP on the TLS port: a readable 400, then the connection closes.
    let mut plain = TcpStream::connect(("127.0.0.1", node.port)).expect("connect");
    plain
        .set_read_timeout(Some(Duration::from_millis(IO_TIMEOUT_MS)))
        .expect("timeout");
    plain
        .write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let refused = read_answer(&mut plain).expect("a plain answer");
    assert_eq!(refused.status, 400, "{refused:?}");
    assert!(refused.body.contains("https://"), "{refused:?}");
    // Garbage and a connection that says nothing: no crash, the node still serves.
    let mut junk = TcpStream::connect(("127.0.0.1", node.port)).expect("connect");
    let _ = junk.write_all(&[0x16, 0x03, 0x01, 0xff, 0xff, 0, 0, 0]);
    drop(junk);
    drop(TcpStream::connect(("127.0.0.1", node.port)).expect("connect"));
    let again = tls_request(node.port, &client, "GET /mostdb/get?key=k HTTP/1.1", "").expect("get");
    assert_eq!(again.status, 200, "{again:?}");
    assert!(node.is_running());
    node.stop();
}

#[test]
fn a_tls_cluster_with_a_ca_replicates_over_mutual_tls() {
    let dir = TempDir::new("pki");
    let pki = Pki::new(dir.path(), "ca");
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let urls: Vec<String> = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
    let mut nodes: Vec<TlsNode> = (0..3)
        .map(|i| {
            let cert = pki.issue(&format!("node{i}"));
            let mut env = tls_env(&cert, Some(&pki.ca()));
            env.push(("MOSTDB_SERVER_URL", urls[i].clone()));
            env.push(("MOSTDB_CLUSTER_URLS", urls.join(";")));
            TlsNode::spawn(ports[i], &env)
        })
        .collect();
    let client = client_config(&pki.ca(), None);
    for node in &mut nodes {
        node.wait_ready(&client);
    }
    let answer = set(ports[0], &client, "replicated", "v1");
    assert_eq!(answer.status, 200, "{answer:?}");
    for &port in &ports[1..] {
        let deadline = Instant::now() + Duration::from_millis(REPLICATED_TIMEOUT_MS);
        loop {
            let got = local_get(port, &client, "replicated").expect("local get");
            if got.status == 200 && got.body.contains(r#""value":"v1""#) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node on {port} has no copy: {got:?}"
            );
            std::thread::sleep(Duration::from_millis(POLL_MS));
        }
    }
    for node in &mut nodes {
        node.stop();
    }
}

#[test]
fn the_peer_upgrade_needs_a_client_certificate_from_the_ca() {
    let dir = TempDir::new("pki");
    let pki = Pki::new(dir.path(), "ca");
    let rogue = Pki::new(dir.path(), "rogue");
    let server = pki.issue("node");
    let mut node = TlsNode::spawn(free_port(), &tls_env(&server, Some(&pki.ca())));
    let anonymous = client_config(&pki.ca(), None);
    node.wait_ready(&anonymous);

    // No client certificate: client routes work, the peer upgrade is refused.
    let answer = set(node.port, &anonymous, "k", "v");
    assert_eq!(answer.status, 200, "{answer:?}");
    let refused = tls_request(node.port, &anonymous, PEER_UPGRADE, "").expect("answer");
    assert_eq!(refused.status, 403, "{refused:?}");
    assert!(refused.body.contains("mutual TLS"), "{refused:?}");

    // A certificate from another CA: the TLS handshake itself fails.
    let stranger = client_config(&pki.ca(), Some(&rogue.issue("stranger")));
    let result = tls_request(node.port, &stranger, PEER_UPGRADE, "");
    assert!(
        result.is_err(),
        "a foreign certificate was accepted: {result:?}"
    );

    // A certificate from the CA: the upgrade gets past the certificate check (and is then
    // judged on its handshake fields, which this request lacks).
    let member = client_config(&pki.ca(), Some(&pki.issue("member")));
    let judged = tls_request(node.port, &member, PEER_UPGRADE, "").expect("answer");
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
