//! Peer authentication (DESIGN §14, "Peers"): a recorded handshake is worthless on every node
//! and after a restart, the API key is not a peer credential, and a cluster without a secret
//! admits peer links only from its members' addresses. The hostile peer is built with the
//! library (the handshake and frame codecs), as an attacker who read the source would.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use mostdb::replication::peer::frame::{self, Frame};
use mostdb::replication::peer::handshake::{self, Identity, Nonce};
use mostdb::replication::protocol::{ReplicaReply, ReplicaRequest};
use mostdb::storage::{Meta, Version};

use crate::support::cluster::{Cluster, ClusterSpec};
use crate::support::kv::{KvClient, Reply};
use crate::support::{api_key_header, find, request, Client};

/// An address of this machine outside every test cluster's member list (members listen on
/// the test process's own loopback address, which is never even, and name their peers by
/// link proxies on 127.0.0.1).
const OUTSIDER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
/// A member address: where the link proxies a test cluster's member lists name listen and
/// dial from.
const MEMBER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
/// How long a refused link may stay open before the node closes it.
const CLOSE_WITHIN_MS: u64 = 5_000;
/// How long a test waits for an answer that should come at once.
const ANSWER_WITHIN_MS: u64 = 5_000;
/// The largest value the hostile peer decodes.
const VALUE_BYTES_MAX: usize = 64 * 1024;
/// How long a test waits for the link proxy to record the handshake and what follows it.
const RECORDING_WITHIN_MS: u64 = 10_000;

/// A TCP connection to `to` from `from` (any 127/8 address binds on Linux).
fn connect_from(from: Ipv4Addr, to: SocketAddr) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    socket
        .bind(&SocketAddr::from((from, 0)).into())
        .expect("bind to a loopback address");
    socket
        .connect_timeout(&to.into(), Duration::from_millis(ANSWER_WITHIN_MS))
        .expect("connect");
    let stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_millis(ANSWER_WITHIN_MS)))
        .expect("timeout");
    stream
}

/// The answer to an upgrade request: status, head, and (for a refusal) its body. Bytes after a
/// `101` head stay unread.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

fn read_answer(stream: &mut TcpStream) -> Answer {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    // Byte by byte: nothing after the head may be consumed.
    while find(&buf, b"\r\n\r\n").is_none() {
        match stream.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            other => panic!("no complete answer head: {other:?} after {buf:?}"),
        }
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let length = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0; if status == 101 { 0 } else { length }];
    stream.read_exact(&mut body).expect("the refusal's body");
    Answer {
        status,
        head,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// Waits until the node closes the connection; fails if it sends anything before.
#[track_caller]
fn assert_nothing_served(stream: &mut TcpStream, what: &str) {
    stream
        .set_read_timeout(Some(Duration::from_millis(CLOSE_WITHIN_MS)))
        .expect("timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("{what}: the node neither served nor closed the link: {e}"),
        }
    }
    assert!(
        got.is_empty(),
        "{what}: the node served {} bytes on a link it should have refused: {:?}",
        got.len(),
        String::from_utf8_lossy(&got)
    );
}

/// A PUT of `key` and a READ of `key`, as frames.
fn put_and_read(key: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let put = ReplicaRequest::Put {
        key: key.as_bytes().to_vec(),
        version: Version {
            hlc: 1 << 20,
            origin: 0xbad,
        },
        value: Some(b"planted".to_vec()),
        meta: Meta::BLIND,
    };
    frame::encode_request(&mut out, 1, &put);
    let read = ReplicaRequest::Read {
        key: key.as_bytes().to_vec(),
    };
    frame::encode_request(&mut out, 2, &read);
    out
}

/// Waits until node 0's first link to node 1 has sent its upgrade request and something more
/// (what follows the `101`), as recorded on the link: the head and the next read.
fn record_a_handshake(cluster: &Cluster) -> (Vec<u8>, Vec<u8>) {
    let deadline = Instant::now() + Duration::from_millis(RECORDING_WITHIN_MS);
    loop {
        let chunks = cluster.link(0, 1).recorded();
        if chunks.len() >= 2 {
            let head = chunks[0].clone();
            assert!(head.starts_with(b"GET /_mostdb/peer "), "{head:?}");
            assert!(head.ends_with(b"\r\n\r\n"), "one read holds the head");
            return (head, chunks[1].clone());
        }
        assert!(Instant::now() < deadline, "nothing recorded: {chunks:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Replays a recorded dial to `to`, then a PUT and a READ of `key`: none may be served.
fn replay(to: SocketAddr, head: &[u8], follow: &[u8], key: &str, what: &str) {
    let mut stream = connect_from(MEMBER, to);
    stream.write_all(head).expect("send the recorded request");
    let answer = read_answer(&mut stream);
    // The request itself is well formed and its claims right: the node challenges it.
    assert_eq!(answer.status, 101, "{what}: {}{}", answer.head, answer.body);
    let mut rest = follow.to_vec();
    rest.extend_from_slice(&put_and_read(key));
    // The node may close as soon as it read the recorded proof; later writes may then fail.
    let _ = stream.write_all(&rest);
    assert_nothing_served(&mut stream, what);
}

fn secret_spec() -> ClusterSpec {
    ClusterSpec {
        env: vec![("MOSTDB_CLUSTER_SECRET".into(), "correct horse".into())],
        ..ClusterSpec::default()
    }
}

#[test]
fn a_recorded_handshake_is_refused_by_every_node_and_after_a_restart() {
    let mut cluster = Cluster::start(&secret_spec());
    cluster.wait_links_up();
    let (head, follow) = record_a_handshake(&cluster);
    let addrs = cluster.addrs();
    replay(addrs[2], &head, &follow, "replayed-2", "another node");
    let log = std::fs::read_to_string(cluster.node(2).log_path()).expect("node 2's log");
    assert!(
        log.contains("sent a wrong proof"),
        "the refusal is logged:\n{log}"
    );
    replay(addrs[1], &head, &follow, "replayed-1", "the same node");
    cluster.stop_all();
    cluster.heal_all().expect("the cluster restarts");
    cluster.wait_links_up();
    replay(
        addrs[1],
        &head,
        &follow,
        "replayed-1r",
        "the same node after a restart",
    );
    replay(
        addrs[2],
        &head,
        &follow,
        "replayed-2r",
        "another node after a restart",
    );
    let mut kv = KvClient::new(addrs, Duration::from_millis(ANSWER_WITHIN_MS));
    for key in ["replayed-2", "replayed-1", "replayed-1r", "replayed-2r"] {
        assert_eq!(kv.get(0, key), Reply::Value(None), "{key} was planted");
    }
    assert_eq!(kv.set(1, "real", "v"), Reply::Ok, "the cluster works");
    assert_eq!(kv.get(2, "real"), Reply::Value(Some("v".into())));
}

/// The claims a node of a default test cluster makes (cluster `mostdb`, epoch 1, 3 members),
/// under `secret`.
fn claims(secret: &[u8]) -> Identity {
    Identity::new(0x0bad_0bad_0bad_0bad, "mostdb", 1, 3, secret)
}

/// Dials node `to` from `from` with `me`'s claims; the answer and the open stream.
fn dial_from(from: Ipv4Addr, to: SocketAddr, me: &Identity) -> (Answer, TcpStream, Nonce) {
    let mut stream = connect_from(from, to);
    let nonce = Nonce::random();
    let host = to.to_string();
    stream
        .write_all(&handshake::dial_request(me, &host, &nonce))
        .expect("send the dial");
    (read_answer(&mut stream), stream, nonce)
}

#[track_caller]
fn assert_refused_for_its_address(answer: &Answer) {
    assert_eq!(
        (answer.status, answer.body.split(':').next()),
        (403, Some("address")),
        "a dial from outside the member list: {}{}",
        answer.head,
        answer.body
    );
}

#[test]
fn an_api_key_is_no_peer_credential() {
    let key = "k3y-only-the-clients-know";
    let spec = ClusterSpec {
        env: vec![
            ("MOSTDB_API_KEY_ENABLE".into(), "true".into()),
            ("MOSTDB_API_KEY_VALUE".into(), key.into()),
        ],
        ..ClusterSpec::default()
    };
    let cluster = Cluster::start(&spec);
    cluster.wait_links_up();
    let header = api_key_header(&spec.env)
        .map(|(name, value)| format!("{name}: {value}"))
        .expect("a key header");
    let addrs = cluster.addrs();
    let mut client = Client::connect(addrs[0]);
    let body = br#"{"key":"k","value":"v"}"#;
    let resp = client.call(&request("POST", "/mostdb/set", &[&header], body));
    assert_eq!(resp.status, 200, "the cluster works: {}", resp.body_str());
    let mut client = Client::connect(addrs[2]);
    let resp = client.call(&request(
        "POST",
        "/mostdb/get",
        &[&header],
        br#"{"key":"k"}"#,
    ));
    assert!(
        resp.body_str().contains(r#""value":"v""#),
        "{}",
        resp.body_str()
    );
    // A client that knows the key, and how the secret used to be derived from it, dials
    // from outside the member list.
    for secret in [format!("api-key:{key}"), key.to_string(), String::new()] {
        let (answer, _stream, _) = dial_from(OUTSIDER, addrs[1], &claims(secret.as_bytes()));
        assert_refused_for_its_address(&answer);
    }
}

#[test]
fn an_open_cluster_admits_only_its_members_addresses() {
    let cluster = Cluster::start(&ClusterSpec::default());
    cluster.wait_links_up();
    let addrs = cluster.addrs();
    let mut kv = KvClient::new(addrs.clone(), Duration::from_millis(ANSWER_WITHIN_MS));
    assert_eq!(kv.set(0, "k", "v"), Reply::Ok);
    let me = claims(b"");
    let (answer, _stream, _) = dial_from(OUTSIDER, addrs[1], &me);
    assert_refused_for_its_address(&answer);
    // From a member's address, with the right claims: admitted, and served once it answered
    // the node's challenge.
    let (answer, mut stream, nonce) = dial_from(MEMBER, addrs[1], &me);
    assert_eq!(answer.status, 101, "{}{}", answer.head, answer.body);
    stream
        .write_all(&proof(&me, &nonce, &answer))
        .expect("send the proof");
    let mut read = Vec::new();
    let key = b"k".to_vec();
    frame::encode_request(&mut read, 7, &ReplicaRequest::Read { key });
    stream.write_all(&read).expect("send a READ");
    match read_frame(&mut stream) {
        Frame::Reply {
            id: 7,
            reply: ReplicaReply::Read { value, .. },
        } => assert_eq!(value.as_deref(), Some(&b"v"[..])),
        other => panic!("{other:?}"),
    }
}

/// The proof `me` owes after the `101` `answer` to its dial with `nonce`.
fn proof(me: &Identity, nonce: &Nonce, answer: &Answer) -> Vec<u8> {
    let mut slots = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut slots);
    let parsed = resp.parse(answer.head.as_bytes()).expect("a valid head");
    assert!(parsed.is_complete());
    let headers: Vec<(&str, &[u8])> = resp.headers.iter().map(|h| (h.name, h.value)).collect();
    let answered = handshake::check_response(me, nonce, 101, &headers, b"").expect("accepted");
    answered.proof.to_vec()
}

/// The next frame the node sends.
fn read_frame(stream: &mut TcpStream) -> Frame {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some((frame, _)) = frame::decode(&buf, VALUE_BYTES_MAX).expect("a valid frame") {
            return frame;
        }
        match stream.read(&mut chunk) {
            Ok(0) => panic!("closed before a frame"),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => panic!("no frame: {e}"),
        }
    }
}
