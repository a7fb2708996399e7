//! Peer links end to end on loopback: a [`PeerLink`] dialling a real accept loop that runs
//! the HTTP layer (the handshake is answered by a handler, as in the server) and hands the
//! upgraded stream to [`serve_peer`]. `http` is imported here only to reproduce that
//! hand-off; the peer module itself never imports it.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpListener;

use super::*;
use crate::http::{self, serve_connection, ConnLimits, DateCache, Handler, Request, Response};
use crate::replication::peer::frame::Heartbeat;
use crate::replication::protocol::{ReplicaReply, ReplicaRequest};
use crate::runtime::Latch;
use crate::storage::{Meta, Version};

const VALUE_MAX: usize = 64 * 1024;
const SECRET: &[u8] = b"test-secret";
/// Bound of every wait for something that should happen (none of them takes long normally).
const WAIT_MAX: Duration = Duration::from_secs(5);

fn identity(node_id: u64) -> Identity {
    Identity::new(node_id, "test", 1, 3, SECRET)
}

fn runtime() -> monoio::Runtime<monoio::time::TimeDriver<monoio::LegacyDriver>> {
    monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .expect("epoll runtime")
}

/// An in-memory replica with the PUT and READ rules; a key `hang…` is never answered, a key
/// `busy…` is answered "unavailable", a key `fast…` at once, a key `slow…` after 50 ms, and
/// every other answer takes 0–3 ms so that answers leave out of order.
type Held = (Version, Option<Vec<u8>>);

#[derive(Default)]
struct FakeReplica {
    held: RefCell<HashMap<Vec<u8>, Held>>,
    hlc: Cell<u64>,
    observed: Cell<u64>,
}

impl PeerService for FakeReplica {
    async fn dispatch(&self, request: ReplicaRequest) -> Option<ReplicaReply> {
        let key = request.key().to_vec();
        if key.starts_with(b"hang") {
            std::future::pending::<()>().await;
        }
        if key.starts_with(b"busy") {
            return None;
        }
        if key.starts_with(b"slow") {
            monoio::time::sleep(Duration::from_millis(50)).await;
        }
        if !key.starts_with(b"fast") {
            let delay = key.iter().map(|b| u64::from(*b)).sum::<u64>() % 4;
            monoio::time::sleep(Duration::from_millis(delay)).await;
        }
        let mut held = self.held.borrow_mut();
        let (eff, value) = held.get(&key).cloned().unwrap_or((Version::ZERO, None));
        Some(match request {
            ReplicaRequest::Put {
                version, value: v, ..
            } if version > eff => {
                held.insert(key, (version, v));
                ReplicaReply::Accepted
            }
            ReplicaRequest::Put { version, .. } if version == eff => ReplicaReply::Accepted,
            ReplicaRequest::Put { .. } => ReplicaReply::Rejected {
                held: eff,
                accepted: eff,
                accepted_cas: false,
            },
            ReplicaRequest::Read { .. } => ReplicaReply::Read {
                version: eff,
                value,
                meta: Meta::BLIND,
            },
            ReplicaRequest::Repair { .. } => ReplicaReply::RepairOk,
            ReplicaRequest::Copy { .. } => ReplicaReply::CopyAck,
            ReplicaRequest::Prepare { .. } => ReplicaReply::Preempted { held: eff },
        })
    }

    fn heartbeat(&self, peer: Heartbeat) -> Heartbeat {
        self.observed.set(peer.hlc);
        Heartbeat {
            sent_us: 0,
            hlc: self.hlc.get(),
            // This "peer" runs 5 s behind: the link measures it.
            wall_ms: crate::replication::clock::system_ms() - 5_000,
        }
    }
}

/// The HTTP handler of the peer path on one connection, as the API's: it keeps the proof
/// the dialler owes after the `101`.
struct Upgrader {
    me: Rc<Identity>,
    awaited: Cell<Option<AwaitedProof>>,
}

impl Handler for Upgrader {
    async fn call<'a>(&'a self, req: Request<'a>) -> Response {
        if req.path != PEER_PATH {
            return Response::text(404, "Not Found");
        }
        let nonce = handshake::Nonce::random();
        match handshake::check_request(&self.me, req.headers, &nonce) {
            Ok(accepted) => {
                self.awaited.set(Some(accepted.awaited));
                Response::switching(http::Upgrade {
                    protocol: PEER_PROTOCOL,
                    headers: accepted.lines,
                })
            }
            Err(refusal) => {
                refusal.log();
                Response {
                    status: refusal.status,
                    content_type: Some(http::CONTENT_TYPE_TEXT),
                    allow: None,
                    headers: "",
                    body: http::Body::Owned(refusal.body()),
                    upgrade: None,
                }
            }
        }
    }
}

/// A test node's accepting side. `kill` drops every connection at once (as a crash would);
/// `shutdown` stops it cleanly; `mute` keeps upgraded connections open without ever reading
/// or answering (as a paused process would).
struct TestServer {
    addr: SocketAddr,
    replica: Rc<FakeReplica>,
    kill: Latch,
    shutdown: Latch,
    peers_seen: Rc<RefCell<Vec<IpAddr>>>,
    ends: Rc<RefCell<Vec<String>>>,
}

fn start_server(node_id: u64, addr: SocketAddr, mute: bool) -> TestServer {
    let listener = TcpListener::bind(addr).expect("bind");
    let server = TestServer {
        addr: listener.local_addr().expect("addr"),
        replica: Rc::new(FakeReplica::default()),
        kill: Latch::new(),
        shutdown: Latch::new(),
        peers_seen: Rc::default(),
        ends: Rc::default(),
    };
    let me = Rc::new(identity(node_id));
    let (replica, kill) = (server.replica.clone(), server.kill.clone());
    let shutdown = server.shutdown.clone();
    let (seen, ends) = (server.peers_seen.clone(), server.ends.clone());
    monoio::spawn(async move {
        loop {
            let accepted = monoio::select! {
                a = listener.accept() => a,
                _ = kill.wait() => return,
            };
            let Ok((stream, peer)) = accepted else { return };
            seen.borrow_mut().push(peer.ip());
            let handler = Upgrader {
                me: me.clone(),
                awaited: Cell::new(None),
            };
            let (replica, kill, ends) = (replica.clone(), kill.clone(), ends.clone());
            let shutdown = shutdown.clone();
            monoio::spawn(async move {
                let limits = ConnLimits::default();
                let (never, date) = (Latch::new(), DateCache::new());
                let served = async {
                    let up = serve_connection(stream, &handler, &limits, &never, &date).await?;
                    let awaited = handler.awaited.take()?;
                    if mute {
                        let _keep = up;
                        return std::future::pending().await;
                    }
                    let leftover = up.leftover;
                    let end =
                        serve_peer(up.stream, leftover, awaited, replica, VALUE_MAX, &shutdown);
                    Some(end.await)
                };
                monoio::select! {
                    end = served => ends.borrow_mut().push(format!("{end:?}")),
                    _ = kill.wait() => {}
                }
            });
        }
    });
    server
}

/// A clock that counts what it observed.
#[derive(Default)]
struct TestClock {
    last: Cell<u64>,
}

impl PeerClock for TestClock {
    fn last(&self) -> u64 {
        self.last.get()
    }

    fn observe(&self, hlc: u64) {
        self.last.set(self.last.get().max(hlc));
    }
}

fn link_to(addr: SocketAddr, me: Identity, clock: Rc<TestClock>) -> PeerLink {
    PeerLink::start(
        LinkConfig {
            addr: addr.to_string(),
            bind_ip: None,
            identity: Rc::new(me),
            value_bytes_max: VALUE_MAX,
            admission: None,
            tls: None,
        },
        clock,
    )
}

/// Polls `cond` every 5 ms until it holds; fails the test after `WAIT_MAX`.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < WAIT_MAX, "timed out waiting: {what}");
        monoio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn put(key: &[u8], hlc: u64, value: &[u8]) -> ReplicaRequest {
    ReplicaRequest::Put {
        key: key.to_vec(),
        version: Version { hlc, origin: 1 },
        value: Some(value.to_vec()),
        meta: Meta::BLIND,
    }
}

fn deadline() -> Instant {
    Instant::now() + WAIT_MAX
}

#[test]
fn many_concurrent_calls_are_matched_to_their_replies() {
    runtime().block_on(async {
        let server = start_server(2, "127.0.0.1:0".parse().unwrap(), false);
        server.replica.hlc.set(777);
        let clock = Rc::new(TestClock::default());
        clock.last.set(555);
        let link = link_to(server.addr, identity(1), clock.clone());
        eventually("link up", || link.is_up()).await;
        let calls = 2_000;
        let mut tasks = Vec::new();
        for i in 0..calls {
            let link = link.clone();
            tasks.push(monoio::spawn(async move {
                let key = format!("key-{i}").into_bytes();
                let value = format!("value-{i}-{}", "x".repeat(i % 300)).into_bytes();
                let stored = link.call(&put(&key, 10, &value), deadline()).await;
                assert_eq!(stored, Ok(ReplicaReply::Accepted), "put {i}");
                let read = ReplicaRequest::Read { key: key.clone() };
                match link.call(&read, deadline()).await {
                    Ok(ReplicaReply::Read {
                        version,
                        value: v,
                        meta: Meta::BLIND,
                    }) => {
                        assert_eq!(version.hlc, 10);
                        assert_eq!(v.as_deref(), Some(&value[..]), "read {i}");
                    }
                    other => panic!("read {i}: {other:?}"),
                }
                // A stale PUT is rejected with the held version.
                let stale = link.call(&put(&key, 9, b"old"), deadline()).await;
                assert_eq!(
                    stale,
                    Ok(ReplicaReply::Rejected {
                        held: Version { hlc: 10, origin: 1 },
                        accepted: Version { hlc: 10, origin: 1 },
                        accepted_cas: false,
                    })
                );
            }));
        }
        for task in tasks {
            task.await;
        }
        assert_eq!(link.status().in_flight, 0);
        let busy = link.call(&put(b"busy", 1, b"v"), deadline()).await;
        assert_eq!(busy, Err(CallError::Unavailable));
        // Heartbeats: round-trip time, and both clocks see each other.
        eventually("a heartbeat answered", || link.status().rtt.is_some()).await;
        let status = link.status();
        assert_eq!(status.peer_node, Some(2));
        assert_eq!(status.peer_hlc, 777);
        let offset = status.wall_offset_ms.expect("measured on the heartbeat");
        assert!(
            (-5_500..=-4_500).contains(&offset),
            "offset {offset} ms, not about -5 s"
        );
        assert_eq!(clock.last(), 777, "the link observes the peer's clock");
        assert_eq!(server.replica.observed.get(), 555);
        assert_eq!(status.connects, 1);
        link.stop();
        eventually("stopped", || link.status().state == LinkState::Stopped).await;
    });
}

#[test]
fn a_dead_server_fails_pending_calls_as_lost_then_not_sent_then_the_link_comes_back() {
    runtime().block_on(async {
        let server = start_server(2, "127.0.0.1:0".parse().unwrap(), false);
        let link = link_to(server.addr, identity(1), Rc::default());
        eventually("link up", || link.is_up()).await;
        let hanging = link.send(&put(b"hang-1", 1, b"v"));
        let timed = link.call(
            &put(b"hang-2", 1, b"v"),
            Instant::now() + Duration::from_millis(20),
        );
        assert_eq!(timed.await, Err(CallError::Timeout));
        eventually("request written", || link.inner_queued() == 0).await;
        server.kill.set();
        assert_eq!(hanging.await, Err(CallError::Lost));
        eventually("link down", || !link.is_up()).await;
        let down = link.call(&put(b"k", 1, b"v"), deadline()).await;
        assert_eq!(down, Err(CallError::NotSent));

        let again = start_server(2, server.addr, false);
        eventually("link up again", || link.is_up()).await;
        let put_again = link.call(&put(b"k", 1, b"v"), deadline()).await;
        assert_eq!(put_again, Ok(ReplicaReply::Accepted));
        assert_eq!(link.status().connects, 2);
        assert!(again.replica.held.borrow().contains_key(&b"k"[..]));
        link.stop();
    });
}

#[test]
fn shutdown_answers_what_is_in_flight_then_closes() {
    runtime().block_on(async {
        let server = start_server(2, "127.0.0.1:0".parse().unwrap(), false);
        let link = link_to(server.addr, identity(1), Rc::default());
        eventually("link up", || link.is_up()).await;
        let slow = link.send(&put(b"slow", 1, b"v"));
        eventually("request written", || link.inner_queued() == 0).await;
        monoio::time::sleep(Duration::from_millis(10)).await;
        server.shutdown.set();
        assert_eq!(slow.await, Ok(ReplicaReply::Accepted));
        eventually("link down", || !link.is_up()).await;
        eventually("serve_peer ended", || !server.ends.borrow().is_empty()).await;
        assert_eq!(server.ends.borrow()[0], "Some(Shutdown)");
        link.stop();
        server.kill.set();
    });
}

#[test]
fn calls_in_flight_are_bounded_and_dropped_calls_free_their_slots() {
    runtime().block_on(async {
        let server = start_server(2, "127.0.0.1:0".parse().unwrap(), false);
        let link = link_to(server.addr, identity(1), Rc::default());
        eventually("link up", || link.is_up()).await;
        let max = crate::limits::PEER_CALLS_IN_FLIGHT_MAX;
        let hanging: Vec<Call> = (0..max)
            .map(|i| link.send(&put(format!("hang{i}").as_bytes(), 1, b"v")))
            .collect();
        assert_eq!(link.status().in_flight, max);
        let over = link.call(&put(b"k", 1, b"v"), deadline()).await;
        assert_eq!(over, Err(CallError::NotSent));
        drop(hanging);
        assert_eq!(link.status().in_flight, 0);
        let fine = link.call(&put(b"k", 1, b"v"), deadline()).await;
        assert_eq!(fine, Ok(ReplicaReply::Accepted));
        link.stop();
        server.kill.set();
    });
}

#[test]
fn a_silent_peer_is_declared_down_by_the_heartbeat() {
    runtime().block_on(async {
        let server = start_server(2, "127.0.0.1:0".parse().unwrap(), true);
        let link = link_to(server.addr, identity(1), Rc::default());
        eventually("link up", || link.is_up()).await;
        let up_at = link.status().last_seen.expect("set when the link came up");
        let call = link.send(&put(b"k", 1, b"v"));
        assert_eq!(call.await, Err(CallError::Lost));
        // Nothing ever arrived after the handshake: down once the silence bound passed, at
        // the first heartbeat after it.
        let silent = up_at.elapsed();
        let bound = Duration::from_millis(crate::limits::PEER_DOWN_AFTER_MS);
        let tick = Duration::from_millis(crate::limits::PEER_PING_INTERVAL_MS);
        assert!(silent >= bound, "{silent:?}");
        assert!(silent <= bound + 5 * tick, "{silent:?}"); // slack for a busy machine
        assert!(!link.is_up());
        server.kill.set();
        link.stop();
    });
}

#[test]
fn handshake_refusals_keep_the_link_down_and_say_why() {
    runtime().block_on(async {
        let server = start_server(2, "127.0.0.1:0".parse().unwrap(), false);
        let cases = [
            (
                Identity::new(1, "test", 1, 3, b"wrong"),
                RefusalCode::Secret,
            ),
            (
                Identity::new(1, "other", 1, 3, SECRET),
                RefusalCode::Cluster,
            ),
            (Identity::new(1, "test", 2, 3, SECRET), RefusalCode::Epoch),
        ];
        for (me, code) in cases {
            let link = link_to(server.addr, me, Rc::default());
            eventually("refused", || link.status().last_refusal == Some(code)).await;
            assert!(!link.is_up());
            assert_eq!(
                link.call(&put(b"k", 1, b"v"), deadline()).await,
                Err(CallError::NotSent)
            );
            link.stop();
        }
        // Dialling oneself: the link gives up on that address for good.
        let link = link_to(server.addr, identity(2), Rc::default());
        eventually("self", || link.status().state == LinkState::SelfLink).await;
        monoio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(link.status().state, LinkState::SelfLink, "no more dials");
        assert_eq!(link.status().connects, 0);
        server.kill.set();
    });
}

#[test]
fn outgoing_sockets_bind_to_the_configured_address() {
    runtime().block_on(bind_and_resolve());
}

/// On io_uring, sockets made outside monoio (bound, then connected) and monoio's own
/// accepted ones; skipped where io_uring is blocked.
#[test]
fn io_uring_driver() {
    let built = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .enable_timer()
        .build();
    let Ok(mut rt) = built else {
        return; // io_uring unavailable here: the epoll tests cover the logic
    };
    rt.block_on(async {
        bind_and_resolve().await;
        let server = start_server(2, "127.0.0.1:0".parse().unwrap(), false);
        let link = link_to(server.addr, identity(1), Rc::default());
        eventually("link up", || link.is_up()).await;
        let mut tasks = Vec::new();
        for i in 0..500u64 {
            let link = link.clone();
            tasks.push(monoio::spawn(async move {
                let key = format!("u{i}").into_bytes();
                let stored = link.call(&put(&key, i + 1, &key), deadline()).await;
                assert_eq!(stored, Ok(ReplicaReply::Accepted));
                let read = link.call(&ReplicaRequest::Read { key: key.clone() }, deadline());
                match read.await {
                    Ok(ReplicaReply::Read { value, .. }) => assert_eq!(value, Some(key)),
                    other => panic!("{other:?}"),
                }
            }));
        }
        for task in tasks {
            task.await;
        }
        let hanging = link.send(&put(b"hang", 1, b"v"));
        eventually("request written", || link.inner_queued() == 0).await;
        server.kill.set();
        assert_eq!(hanging.await, Err(CallError::Lost));
        link.stop();
    });
}

async fn bind_and_resolve() {
    {
        let server = start_server(2, "127.0.0.1:0".parse().unwrap(), false);
        let local: IpAddr = "127.0.0.7".parse().unwrap();
        let link = PeerLink::start(
            LinkConfig {
                addr: server.addr.to_string(),
                bind_ip: Some(local),
                identity: Rc::new(identity(1)),
                value_bytes_max: VALUE_MAX,
                admission: None,
                tls: None,
            },
            Rc::new(TestClock::default()),
        );
        eventually("link up", || link.is_up()).await;
        assert_eq!(*server.peers_seen.borrow(), [local]);
        link.stop();
        // A name is resolved too.
        let named = format!("localhost:{}", server.addr.port());
        let link = PeerLink::start(
            LinkConfig {
                addr: named,
                bind_ip: Some("127.0.0.1".parse().unwrap()),
                identity: Rc::new(identity(1)),
                value_bytes_max: VALUE_MAX,
                admission: None,
                tls: None,
            },
            Rc::new(TestClock::default()),
        );
        eventually("named link up", || link.is_up()).await;
        link.stop();
        server.kill.set();
    }
}

/// Dials `addr` by hand as node 1 up to the `101`: the stream and the proof to send next.
async fn upgrade_by_hand(addr: SocketAddr) -> (monoio::net::TcpStream, Vec<u8>) {
    let mut stream = monoio::net::TcpStream::connect_addr(addr).await.unwrap();
    let (me, nonce) = (identity(1), handshake::Nonce::random());
    let (res, _) = stream
        .write_all(handshake::dial_request(&me, "t", &nonce))
        .await;
    res.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let (res, byte) = stream.read(Vec::with_capacity(1)).await;
        assert_eq!(res.unwrap(), 1, "the answer's head");
        head.extend_from_slice(&byte);
    }
    let mut slots = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut slots);
    assert!(resp.parse(&head).unwrap().is_complete());
    let headers: Vec<(&str, &[u8])> = resp.headers.iter().map(|h| (h.name, h.value)).collect();
    let code = resp.code.unwrap();
    let answered = handshake::check_response(&me, &nonce, code, &headers, b"").unwrap();
    (stream, answered.proof.to_vec())
}

/// Everything the server sends until it closes the connection.
async fn read_to_end(stream: &mut monoio::net::TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    loop {
        let (res, buf) = stream.read(Vec::with_capacity(4096)).await;
        match res {
            Ok(0) | Err(_) => return got,
            Ok(_) => got.extend_from_slice(&buf),
        }
    }
}

#[test]
fn a_bad_frame_closes_the_served_link() {
    runtime().block_on(async {
        let server = start_server(2, "127.0.0.1:0".parse().unwrap(), false);
        let (mut stream, mut bytes) = upgrade_by_hand(server.addr).await;
        // A frame of an unknown kind right behind the proof.
        bytes.extend_from_slice(&[9, 0, 0, 0, 42, 0, 0, 0, 0, 0, 0, 0, 0]);
        let (res, _) = stream.write_all(bytes).await;
        res.unwrap();
        assert_eq!(read_to_end(&mut stream).await, b"");
        eventually("serve_peer ended", || !server.ends.borrow().is_empty()).await;
        let end = server.ends.borrow()[0].clone();
        assert!(end.contains("unknown frame kind 42"), "{end}");
        server.kill.set();
    });
}

#[test]
fn nothing_is_served_before_the_proof_checks() {
    runtime().block_on(async {
        let server = start_server(2, "127.0.0.1:0".parse().unwrap(), false);
        let mut ping = Vec::new();
        frame::encode_ping(
            &mut ping,
            1,
            frame::Heartbeat {
                sent_us: 1,
                hlc: 1,
                wall_ms: 1,
            },
        );
        let mut put_frame = Vec::new();
        frame::encode_request(&mut put_frame, 2, &put(b"planted", 1, b"v"));
        // No proof (frames instead), a wrong proof, and a proof cut short then silence.
        let (mut stream, _) = upgrade_by_hand(server.addr).await;
        let mut frames = ping.clone();
        frames.extend_from_slice(&put_frame);
        let (res, _) = stream.write_all(frames).await;
        res.unwrap();
        assert_eq!(read_to_end(&mut stream).await, b"", "no pong, no reply");
        let (mut stream, proof) = upgrade_by_hand(server.addr).await;
        let mut wrong: Vec<u8> = proof.iter().map(|b| b ^ 1).collect();
        wrong.extend_from_slice(&put_frame);
        let (res, _) = stream.write_all(wrong).await;
        res.unwrap();
        assert_eq!(read_to_end(&mut stream).await, b"");
        let (mut stream, proof) = upgrade_by_hand(server.addr).await;
        let (res, _) = stream.write_all(proof[..8].to_vec()).await;
        res.unwrap();
        let started = Instant::now();
        assert_eq!(read_to_end(&mut stream).await, b"");
        let waited = started.elapsed();
        let bound = Duration::from_millis(crate::limits::PEER_PROOF_TIMEOUT_MS);
        assert!(waited >= bound / 2 && waited < bound * 2, "{waited:?}");
        eventually("three ends", || server.ends.borrow().len() == 3).await;
        assert!(server.ends.borrow().iter().all(|e| e.contains("Unproven")));
        assert!(
            server.replica.held.borrow().is_empty(),
            "nothing was stored"
        );
        server.kill.set();
    });
}

/// Loopback throughput of one link with many calls in flight (not a pass/fail check: run
/// with `--ignored --nocapture` to see the numbers).
#[test]
#[ignore]
fn throughput_of_one_link() {
    runtime().block_on(async {
        let server = start_server(2, "127.0.0.1:0".parse().unwrap(), false);
        let link = link_to(server.addr, identity(1), Rc::default());
        eventually("link up", || link.is_up()).await;
        let (workers, per_worker) = (256, 400);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for w in 0..workers {
            let link = link.clone();
            tasks.push(monoio::spawn(async move {
                let req = ReplicaRequest::Copy {
                    key: format!("fast{w}").into_bytes(),
                    version: Version { hlc: 1, origin: 1 },
                    value: Some(vec![b'v'; 100]),
                    meta: Meta::BLIND,
                };
                for _ in 0..per_worker {
                    assert!(link.call(&req, deadline()).await.is_ok());
                }
            }));
        }
        for task in tasks {
            task.await;
        }
        let calls = workers * per_worker;
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{calls} calls in {secs:.2}s: {:.0} calls/s",
            calls as f64 / secs
        );
        link.stop();
        server.kill.set();
    });
}

#[test]
fn wall_offset_is_measured_at_the_round_trips_midpoint_smoothed_and_follows_steps() {
    use super::link::wall_offset_ms;
    let rtt = Duration::from_millis(100);
    // The peer read 10_000 when our clock read 10_050 - 50 = 10_000: no offset.
    assert_eq!(wall_offset_ms(None, 10_000, 10_050, rtt), 0);
    assert_eq!(wall_offset_ms(None, 5_000, 10_050, rtt), -5_000);
    // Jitter is smoothed: a 400 ms sample moves a 0 estimate by a quarter.
    assert_eq!(wall_offset_ms(Some(0), 10_400, 10_050, rtt), 100);
    // A step (more than a second away) is taken at once.
    assert_eq!(wall_offset_ms(Some(0), 7_210_000, 10_050, rtt), 7_200_000);
}
