//! Clocks and versions are bounded (DESIGN §14): a hostile peer's far-future version is
//! refused and never poisons a key, a node whose wall clock is hours ahead does not drag the
//! others' clocks, and `GET /cluster` shows each peer's real wall-clock offset.
//!
//! The hostile peer is this test process speaking the peer protocol through the library's own
//! link ([`PeerLink`]: dial, handshake, frames), with the cluster secret; a node with a wrong
//! clock runs under libfaketime (monotonic time left real, so its timers still work).

use crate::support::cluster::{Cluster, ClusterSpec};
use crate::support::kv::{KvClient, Reply};
use crate::support::{request, Client};
use mostdb::replication::clock::{hlc_ms, system_ms, COUNTER_BITS};
use mostdb::replication::peer::{Identity, LinkConfig, PeerClock, PeerLink};
use mostdb::replication::protocol::{ReplicaReply, ReplicaRequest};
use mostdb::storage::{Meta, Version};
use std::net::SocketAddr;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

const SECRET: &str = "clock-hardening-secret";
/// libfaketime, from Debian's `faketime` package (`.ci/run` installs it).
const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
/// Two hours, in ms.
const TWO_HOURS_MS: u64 = 2 * 3_600_000;
/// The default `MOSTDB_MAX_CLOCK_SKEW_MS`.
const BOUND_MS: u64 = 60_000;
/// How long the hostile link may take to come up, and a call to be answered.
const LINK_UP_MS: u64 = 5_000;
const CALL_MS: u64 = 3_000;
/// How long a node with a wrong clock runs in the cluster before we look (heartbeats every
/// 300 ms: a dozen of them).
const SKEWED_RUN_MS: u64 = 4_000;
/// How long a restart may keep finding its port still held.
const RESTART_MS: u64 = 20_000;

fn spec() -> ClusterSpec {
    ClusterSpec {
        env: vec![("MOSTDB_CLUSTER_SECRET".into(), SECRET.into())],
        ..ClusterSpec::default()
    }
}

/// The hostile peer's clock: its heartbeats carry `hlc` (as far in the future as the attack
/// wants); it takes in nothing.
struct ForgedClock {
    hlc: u64,
}

impl PeerClock for ForgedClock {
    fn last(&self) -> u64 {
        self.hlc
    }

    fn observe(&self, _hlc: u64) {}
}

/// Dials node `addr` as a peer of a 3-node cluster and sends `requests` one by one; the
/// answers (or why there was none). The link's heartbeats claim `heartbeat_hlc`.
fn as_hostile_peer(
    addr: SocketAddr,
    heartbeat_hlc: u64,
    requests: &[ReplicaRequest],
) -> Vec<Result<ReplicaReply, String>> {
    // On a thread of its own: the peer's event loop must not share the test's thread.
    let requests = requests.to_vec();
    std::thread::spawn(move || hostile_peer_thread(addr, heartbeat_hlc, &requests))
        .join()
        .expect("the hostile peer's thread")
}

fn hostile_peer_thread(
    addr: SocketAddr,
    heartbeat_hlc: u64,
    requests: &[ReplicaRequest],
) -> Vec<Result<ReplicaReply, String>> {
    let mut rt = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
        .enable_timer()
        .build()
        .expect("monoio runtime");
    rt.block_on(async {
        let me = Identity::new(0x0BAD_0BAD_0BAD_0BAD, "mostdb", 1, 3, SECRET.as_bytes());
        let config = LinkConfig {
            addr: addr.to_string(),
            bind_ip: None,
            identity: Rc::new(me),
            value_bytes_max: 1024,
            admission: None,
            tls: None,
        };
        let link = PeerLink::start(config, Rc::new(ForgedClock { hlc: heartbeat_hlc }));
        let deadline = Instant::now() + Duration::from_millis(LINK_UP_MS);
        while !link.is_up() {
            assert!(
                Instant::now() < deadline,
                "hostile link not up: {:?}",
                link.status()
            );
            monoio::time::sleep(Duration::from_millis(20)).await;
        }
        // Let a heartbeat or two carry the forged clock too.
        monoio::time::sleep(Duration::from_millis(700)).await;
        let mut answers = Vec::new();
        for r in requests {
            let call = link.send(r);
            let timeout = monoio::time::sleep(Duration::from_millis(CALL_MS));
            let answer = monoio::select! {
                a = call => a.map_err(|e| format!("{e:?}")),
                _ = timeout => Err("no answer".to_string()),
            };
            answers.push(answer);
        }
        link.stop();
        answers
    })
}

fn put(key: &str, hlc: u64) -> ReplicaRequest {
    ReplicaRequest::Put {
        key: key.as_bytes().to_vec(),
        version: Version { hlc, origin: 0xBAD },
        value: Some(b"poison".to_vec()),
        meta: Meta::BLIND,
    }
}

fn cluster_json(addr: SocketAddr) -> serde_json::Value {
    let resp = Client::connect(addr).call(&request("GET", "/cluster", &[], b""));
    assert_eq!(resp.status, 200);
    serde_json::from_slice(&resp.body).expect("cluster view is JSON")
}

/// `result.clock.<field>` of node `addr`'s cluster view.
fn clock_field(addr: SocketAddr, field: &str) -> Option<u64> {
    cluster_json(addr)["result"]["clock"][field].as_u64()
}

/// Set, get, delete, get of `key` through node `node`: what each answered.
fn use_normally(kv: &mut KvClient, node: usize, key: &str) -> [Reply; 4] {
    [
        kv.set(node, key, "after"),
        kv.get(node, key),
        kv.del(node, key),
        kv.get(node, key),
    ]
}

const WORKS: [Reply; 4] = [Reply::Ok, Reply::Value(None), Reply::Ok, Reply::Value(None)];

fn works(replies: &[Reply; 4]) -> bool {
    matches!(replies[0], Reply::Ok)
        && replies[1] == Reply::Value(Some("after".into()))
        && replies[2] == WORKS[2]
        && replies[3] == WORKS[3]
}

#[test]
fn a_forged_far_future_put_is_refused_and_the_key_stays_usable() {
    let mut cluster = Cluster::start(&spec());
    cluster.wait_links_up();
    let addr = cluster.node(0).addr();
    let two_hours_ahead = (system_ms() + TWO_HOURS_MS) << COUNTER_BITS;
    let keys = ["poison-max", "poison-2h"];
    let answers = as_hostile_peer(
        addr,
        two_hours_ahead,
        &[put(keys[0], u64::MAX), put(keys[1], two_hours_ahead)],
    );
    let refused = Ok(ReplicaReply::RefusedFuture);
    let mut kv = KvClient::new(cluster.addrs(), Duration::from_secs(5));
    for (key, answer) in keys.iter().zip(&answers) {
        let replies = use_normally(&mut kv, 0, key);
        assert!(
            *answer == refused && works(&replies),
            "{key}: the forged PUT was answered {answer:?}; then set/get/del/get: {replies:?}"
        );
    }
    assert!(clock_field(addr, "versions_refused_future") >= Some(2));
    let hlc_ms = clock_field(addr, "hlc_ms").expect("the node's clock");
    assert!(
        hlc_ms < system_ms() + BOUND_MS,
        "the heartbeats dragged the clock to {hlc_ms}"
    );
    // Across a restart: nothing of the forged versions was stored, nor any clock ceiling.
    cluster.kill9(0);
    restart(&mut cluster, 0);
    for key in keys {
        let replies = use_normally(&mut kv, 0, key);
        assert!(works(&replies), "{key} after a restart: {replies:?}");
    }
}

/// Restarts node `i` under libfaketime with the wall clock moved by `faketime` (e.g. "+2h").
fn restart_with_clock(cluster: &mut Cluster, i: usize, faketime: &str) {
    assert!(
        Path::new(LIBFAKETIME).exists(),
        "{LIBFAKETIME} is missing: apt-get install -y faketime"
    );
    cluster.kill9(i);
    cluster.set_env(i, "LD_PRELOAD", LIBFAKETIME);
    cluster.set_env(i, "FAKETIME", faketime);
    // monoio's timers and `Instant` stay on the real monotonic clock.
    cluster.set_env(i, "FAKETIME_DONT_FAKE_MONOTONIC", "1");
    restart(cluster, i);
}

/// Restarts node `i` (killed) and waits for its links. Its port may still be held for a moment
/// by connections the kill left half-closed: try again then.
fn restart(cluster: &mut Cluster, i: usize) {
    let deadline = Instant::now() + Duration::from_millis(RESTART_MS);
    loop {
        match cluster.restart(i) {
            Ok(()) => break,
            Err(e) if Instant::now() < deadline => {
                eprintln!("restart of node {i} failed, again: {e}");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("node {i} does not restart: {e}"),
        }
    }
    cluster.wait_links_up();
}

/// The version node `addr` holds for `key`, as a peer's READ shows it.
fn held_version(addr: SocketAddr, key: &str) -> Version {
    let read = ReplicaRequest::Read {
        key: key.as_bytes().to_vec(),
    };
    match as_hostile_peer(addr, 0, &[read]).remove(0) {
        Ok(ReplicaReply::Read { version, .. }) => version,
        other => panic!("READ of {key} answered {other:?}"),
    }
}

#[test]
fn a_node_two_hours_ahead_does_not_drag_the_others_clocks() {
    let mut cluster = Cluster::start(&spec());
    cluster.wait_links_up();
    restart_with_clock(&mut cluster, 2, "+2h");
    std::thread::sleep(Duration::from_millis(SKEWED_RUN_MS));
    let mut kv = KvClient::new(cluster.addrs(), Duration::from_secs(5));
    // Node 2 coordinates a write: its version is 2 h ahead, the others refuse it.
    let far = kv.set(2, "from-the-future", "x");
    for node in [0, 1] {
        let key = format!("written-via-{node}");
        assert_eq!(kv.set(node, &key, "v"), Reply::Ok);
        let addr = cluster.node(node).addr();
        let version_ms = hlc_ms(held_version(addr, &key).hlc);
        let now = system_ms();
        assert!(
            version_ms < now + BOUND_MS,
            "node {node} issued a version {} s ahead of real time (node 2's write: {far:?})",
            (version_ms - now) / 1_000
        );
        let offset = cluster_json(addr)["result"]["nodes"][2]["wall_clock_offset_ms"].as_i64();
        let near_two_hours = offset.is_some_and(|o| (o - TWO_HOURS_MS as i64).abs() < 1_000);
        assert!(near_two_hours, "node {node} sees node 2 at {offset:?} ms");
    }
    assert!(
        matches!(far, Reply::NotMost { .. }),
        "node 2's write far ahead: {far:?}"
    );
    let refused = clock_field(cluster.node(0).addr(), "versions_refused_future");
    assert!(refused >= Some(1), "node 0 refused {refused:?}");
}

#[test]
fn a_peer_five_seconds_behind_shows_its_wall_clock_offset() {
    let mut cluster = Cluster::start(&spec());
    cluster.wait_links_up();
    restart_with_clock(&mut cluster, 2, "-5");
    std::thread::sleep(Duration::from_millis(SKEWED_RUN_MS / 2));
    for node in [0, 1] {
        let view = cluster_json(cluster.node(node).addr());
        let peer = &view["result"]["nodes"][2];
        let offset = peer["wall_clock_offset_ms"].as_i64();
        assert!(
            offset.is_some_and(|o| (-6_000..=-4_000).contains(&o)),
            "node {node} sees node 2's wall clock at {offset:?} ms (want about -5000): {peer}"
        );
    }
}
