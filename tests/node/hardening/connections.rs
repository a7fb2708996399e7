//! Connection floods: one source holding thousands of idle connections must not lock other
//! clients out (a per-source cap, and at the node-wide cap idle connections make room), and
//! the memory a storm of connections took must come back once it is over.

use std::io::{ErrorKind, Read};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use crate::support::*;

/// The attacker's source address (any 127/8 address works on Linux loopback).
const ATTACKER: [u8; 4] = [127, 0, 0, 2];
/// Connections opened per round of the flood before looking which were refused.
const FLOOD_ROUND: usize = 256;
/// The flood goes up to the old node-wide cap and a little beyond, or until refused.
const FLOOD_MAX: usize = 16_384 + FLOOD_ROUND;
/// Connections of the storm whose memory must come back.
const STORM_CONNECTIONS: usize = 6_000;
/// Resident memory the node may keep after the storm, above what it had before.
const STORM_RSS_KEPT_MAX_BYTES: u64 = 48 << 20;
/// How long the node may take to give the memory back.
const STORM_RSS_TIMEOUT_MS: u64 = 10_000;

/// A TCP connection to `port` from the address `from`.
fn connect_from(from: [u8; 4], port: u16) -> std::io::Result<TcpStream> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    socket.bind(&SocketAddr::new(IpAddr::from(from), 0).into())?;
    let to = SocketAddr::from(([127, 0, 0, 1], port));
    socket.connect_timeout(&to.into(), Duration::from_secs(5))?;
    Ok(socket.into())
}

/// Whether the server has closed `stream` (EOF or reset; no data is expected).
fn closed_by_server(stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).expect("nonblocking");
    let mut byte = [0u8; 1];
    let closed = match (&*stream).read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) if e.kind() == ErrorKind::WouldBlock => false,
        Err(_) => true,
    };
    stream.set_nonblocking(false).expect("blocking");
    closed
}

/// Opens idle connections from `from` in rounds until the server starts closing new ones
/// (or `max` are open); returns the ones it kept.
fn flood(from: [u8; 4], port: u16, max: usize) -> Vec<TcpStream> {
    let mut held = Vec::new();
    while held.len() < max {
        let round: Vec<TcpStream> = (0..FLOOD_ROUND)
            .map_while(|_| connect_from(from, port).ok())
            .collect();
        std::thread::sleep(Duration::from_millis(200));
        let opened = round.len();
        let kept: Vec<TcpStream> = round.into_iter().filter(|s| !closed_by_server(s)).collect();
        let refused = opened - kept.len();
        held.extend(kept);
        if refused > 0 || opened < FLOOD_ROUND {
            break;
        }
    }
    held
}

fn assert_serves(node: &Node, from: [u8; 4], key: &str) {
    let stream = connect_from(from, node.port()).expect("connect");
    let mut c = Client::from_stream(stream, Duration::from_secs(10));
    c.post("/mostdb/set", &kv(key, "v")).assert_json(200, OK);
    c.post("/mostdb/get", &k(key))
        .assert_json(200, &got(key, "v"));
}

#[test]
fn one_source_holding_idle_connections_cannot_lock_others_out() {
    let node = Node::start();
    let held = flood(ATTACKER, node.port(), FLOOD_MAX);
    // The flood was cut off at the per-source cap, far below the node-wide one ...
    assert!(
        held.len() < FLOOD_MAX - FLOOD_ROUND,
        "the node kept all {} connections of one source",
        held.len()
    );
    // ... and every other client is still served while the flood holds its connections.
    assert_serves(&node, [127, 0, 0, 1], "other-client");
    assert_serves(&node, [127, 0, 0, 3], "third-client");
    drop(held);
}

#[test]
fn at_the_node_wide_cap_idle_connections_make_room() {
    let cap = 64;
    let node = Node::start_with(&[
        ("MOSTDB_MAX_CONNECTIONS", &cap.to_string()),
        ("MOSTDB_MAX_CONNECTIONS_PER_SOURCE", "1000"),
    ]);
    let held: Vec<TcpStream> = (0..cap)
        .map(|_| connect_from(ATTACKER, node.port()).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    assert!(held.iter().all(|s| !closed_by_server(s)), "under the cap");
    // Clients that send requests get in: an idle connection was closed for each.
    let newcomers: Vec<Client> = (0..4)
        .map(|n| {
            let stream = connect_from([127, 0, 0, 1], node.port()).expect("connect");
            let mut c = Client::from_stream(stream, Duration::from_secs(10));
            let key = format!("newcomer-{n}");
            c.post("/mostdb/set", &kv(&key, "v")).assert_json(200, OK);
            c
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let evicted = held.iter().filter(|s| closed_by_server(s)).count();
    assert!(
        evicted >= 4,
        "{evicted} idle connections closed for 4 newcomers"
    );
    assert!(evicted <= 8, "{evicted} closed: more than were needed");
    drop(newcomers);
}

/// Resident memory of `pid`, in bytes.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib * 1024
}

#[test]
fn memory_comes_back_after_a_storm_of_connections() {
    let node = Node::start_with(&[("MOSTDB_MAX_CONNECTIONS_PER_SOURCE", "20000")]);
    assert_serves(&node, [127, 0, 0, 1], "warm-up");
    let before = rss_bytes(node.pid());
    let mut storm = Vec::with_capacity(STORM_CONNECTIONS);
    for n in 0..STORM_CONNECTIONS {
        let stream = connect_from(ATTACKER, node.port()).expect("connect");
        let mut c = Client::from_stream(stream, Duration::from_secs(10));
        // A request each, so every connection has had its buffers.
        c.post("/mostdb/get", &k(&format!("storm-{}", n % 16)));
        storm.push(c);
    }
    let during = rss_bytes(node.pid());
    drop(storm);
    let deadline = Instant::now() + Duration::from_millis(STORM_RSS_TIMEOUT_MS);
    let mut after = rss_bytes(node.pid());
    while after > before + STORM_RSS_KEPT_MAX_BYTES && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        after = rss_bytes(node.pid());
    }
    let mib = |b: u64| b as f64 / f64::from(1 << 20);
    eprintln!(
        "RSS with {STORM_CONNECTIONS} connections: before {:.1} MiB, during {:.1} MiB, after {:.1} MiB",
        mib(before),
        mib(during),
        mib(after)
    );
    assert!(
        after <= before + STORM_RSS_KEPT_MAX_BYTES,
        "the node kept {:.1} MiB after the storm",
        mib(after - before)
    );
    assert_serves(&node, [127, 0, 0, 1], "after-storm");
}
