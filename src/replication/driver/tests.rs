//! The driver over simulated links ([`fake`]): a real local replica (a one-shard store) and
//! two peers whose filters deliver, delay, drop, lose answers and refuse. What the client is
//! told, what each replica ends up holding, and who gets a hint afterwards (hinted handoff).

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::config::SyncMode;
use crate::replication::clock::SkewBound;
use crate::replication::hints::HintStats;
use crate::replication::transport::fake::{FakeLink, Filter};
use crate::storage::store::test_dir::TempDir;
use crate::storage::{Store, StoreOptions, Version};

use crate::test_support::run;

const OP_TIMEOUT: Duration = Duration::from_millis(300);

/// Member 0 of three: its store, shard, clock, driver and hints; members 1 and 2 are `peers`.
struct Node {
    _store: Store,
    shard: Shard,
    hlc: Hlc,
    driver: Driver,
    hints: Rc<Hints>,
    stats: Arc<HintStats>,
    _dir: TempDir,
}

fn node(name: &str, mode: WriteMode, peers: [&Rc<FakeLink>; 2]) -> Node {
    let dir = TempDir::new(name);
    let root = dir.path().join("node");
    let store = Store::open(StoreOptions {
        root: root.clone(),
        shards_if_new: 1,
        sync: SyncMode::Os,
        disk_reserve_bytes: 0,
    })
    .expect("store");
    let shard = Shard::new(store.shard_db(0), SyncMode::Os);
    let bound = SkewBound::new(crate::limits::MAX_CLOCK_SKEW_MS_DEFAULT);
    let hlc = Hlc::open(&root, 0, 1 << 8, bound).expect("clock");
    let stats = Arc::new(HintStats::new(3));
    let hints = Hints::open(&root, 0, 1, &[false, true, true], stats.clone()).expect("hints");
    let links: Vec<Option<Rc<dyn Link>>> = vec![
        None,
        Some(peers[0].clone() as Rc<dyn Link>),
        Some(peers[1].clone() as Rc<dyn Link>),
    ];
    let driver = Driver::new(links, OP_TIMEOUT, mode).with_hints(hints.clone());
    Node {
        _store: store,
        shard,
        hlc,
        driver,
        hints,
        stats,
        _dir: dir,
    }
}

impl Node {
    async fn set(&self, key: &[u8], value: &[u8]) -> WriteDone {
        let value = Some(value.to_vec());
        self.driver
            .write(&self.shard, &self.hlc, key.to_vec(), value)
            .await
    }

    async fn del(&self, key: &[u8]) -> WriteDone {
        self.driver
            .write(&self.shard, &self.hlc, key.to_vec(), None)
            .await
    }

    async fn get(&self, key: &[u8]) -> ReadDone {
        self.driver.read(&self.shard, &self.hlc, key.to_vec()).await
    }

    /// What this node's own replica holds.
    async fn local(&self, key: &[u8]) -> Option<(Version, Option<Vec<u8>>)> {
        let record = self.shard.read(key).await.expect("read");
        record.map(|r| (r.version, r.value))
    }

    fn queued(&self, peer: usize) -> Vec<Hint> {
        let queued = self.hints.peek(peer, usize::MAX);
        queued.into_iter().map(|q| q.hint).collect()
    }
}

/// Lets the hand-off tasks finish (they end at the latest at the write's deadline).
async fn settle() {
    monoio::time::sleep(OP_TIMEOUT + Duration::from_millis(100)).await;
}

fn peers(a: Filter, b: Filter) -> (Rc<FakeLink>, Rc<FakeLink>) {
    (FakeLink::new(true, a), FakeLink::new(true, b))
}

fn held(link: &FakeLink, key: &[u8]) -> Option<(Version, Option<Vec<u8>>)> {
    link.held(key).map(|r| (r.version, r.value))
}

fn is_put(request: &ReplicaRequest) -> bool {
    matches!(request, ReplicaRequest::Put { .. })
}

#[test]
fn every_replica_holds_an_acknowledged_write_and_a_read_returns_it() {
    let (a, b) = peers(Filter::Deliver, Filter::Deliver);
    let n = node("driver-deliver", WriteMode::Fast, [&a, &b]);
    run(async {
        let WriteDone::Ok { version } = n.set(b"k", b"v").await else {
            panic!("every replica answered");
        };
        let want = Some((version, Some(b"v".to_vec())));
        assert_eq!(
            (n.local(b"k").await, held(&a, b"k")),
            (want.clone(), want.clone())
        );
        assert_eq!(held(&b, b"k"), want);
        let got = n.get(b"k").await;
        assert_eq!(
            got,
            ReadDone::Found {
                version,
                value: b"v".to_vec(),
                expires: None,
            }
        );
        settle().await;
        assert_eq!(
            n.hints.pending(1) + n.hints.pending(2),
            0,
            "nobody missed it"
        );
    });
}

#[test]
fn a_write_a_peer_missed_is_hinted_with_its_version() {
    let up = FakeLink::new(true, Filter::Deliver);
    let down = FakeLink::new(false, Filter::Deliver);
    let n = node("driver-down", WriteMode::Fast, [&up, &down]);
    run(async {
        let set = n.set(b"k", b"v1").await;
        let del = n.del(b"k").await;
        let (WriteDone::Ok { version: v1 }, WriteDone::Ok { version: v2 }) = (set, del) else {
            panic!("writes with 2 of 3 up must succeed");
        };
        settle().await;
        let hint = |version, value: Option<&[u8]>| Hint {
            peer: 2,
            key: b"k".to_vec(),
            version,
            value: value.map(<[u8]>::to_vec),
            meta: Meta::BLIND,
        };
        assert_eq!(n.queued(2), vec![hint(v1, Some(b"v1")), hint(v2, None)]);
        assert!(
            n.queued(1).is_empty(),
            "the peer that accepted needs no hint"
        );
        assert!(
            down.taken().is_empty(),
            "nothing is sent to a link that is down"
        );
    });
    assert_eq!(n.stats.snapshot()[2].stored, 2);
}

#[test]
fn with_no_peer_reachable_a_write_fails_definitely_stores_nothing_and_is_not_hinted() {
    let (a, b) = (
        FakeLink::new(false, Filter::Deliver),
        FakeLink::new(false, Filter::Deliver),
    );
    let n = node("driver-notmost", WriteMode::Fast, [&a, &b]);
    run(async {
        assert_eq!(n.set(b"k", b"v").await, WriteDone::NotMost);
        assert_eq!(
            n.local(b"k").await,
            None,
            "not even the local replica stored it"
        );
        assert_eq!(n.get(b"k").await, ReadDone::NotMost);
        settle().await;
        assert_eq!(n.hints.pending(1) + n.hints.pending(2), 0);
    });
}

#[test]
fn refused_sends_count_as_never_sent() {
    // The links say they are up but take nothing (their queues are full).
    let (a, b) = peers(Filter::Refuse, Filter::Refuse);
    let n = node("driver-refuse", WriteMode::Fast, [&a, &b]);
    run(async {
        let started = Instant::now();
        let done = n.set(b"k", b"v").await;
        assert!(
            started.elapsed() < OP_TIMEOUT / 2,
            "never-sent requests are not waited for"
        );
        // The local replica accepted: it may not be reported as a definite failure (I4).
        let WriteDone::Indeterminate { version } = done else {
            panic!("only the local replica holds it: {done:?}");
        };
        assert_eq!(n.local(b"k").await.map(|(v, _)| v), Some(version));
        assert!(a.taken().is_empty() && b.taken().is_empty());
        assert_eq!(n.get(b"k").await, ReadDone::NotMost, "reads fail fast too");
    });
}

#[test]
fn a_straggler_is_not_waited_for_and_needs_no_hint_if_it_accepts_in_time() {
    let (fast, slow) = peers(Filter::Deliver, Filter::Delay(Duration::from_millis(50)));
    let n = node("driver-late", WriteMode::Fast, [&fast, &slow]);
    run(async {
        let started = Instant::now();
        let done = n.set(b"k", b"v").await;
        assert!(matches!(done, WriteDone::Ok { .. }), "{done:?}");
        assert!(
            started.elapsed() < Duration::from_millis(50),
            "the answer waits for no straggler"
        );
        settle().await;
        assert_eq!(n.hints.pending(2), 0, "the straggler accepted in time");
    });
}

#[test]
fn dropped_requests_make_a_write_indeterminate_at_its_deadline_and_are_hinted() {
    let (a, b) = peers(Filter::Drop, Filter::Drop);
    let n = node("driver-drop", WriteMode::Fast, [&a, &b]);
    run(async {
        let started = Instant::now();
        let done = n.set(b"k", b"v").await;
        assert!(started.elapsed() >= OP_TIMEOUT, "the deadline decides");
        let WriteDone::Indeterminate { version } = done else {
            panic!("only the local replica answered: {done:?}");
        };
        assert!(held(&a, b"k").is_none(), "dropped: never applied");
        settle().await;
        for peer in [1, 2] {
            let got = n.queued(peer);
            assert_eq!(got.len(), 1, "peer {peer}");
            assert_eq!(
                (got[0].version, got[0].value.as_deref()),
                (version, Some(&b"v"[..]))
            );
        }
    });
}

#[test]
fn a_lost_answer_is_hinted_although_the_replica_stored_the_write() {
    // Peer 1 answers; peer 2 stores the write but its answer never comes back.
    let (a, b) = peers(Filter::Deliver, Filter::LoseAnswer);
    let n = node("driver-lost-answer", WriteMode::Fast, [&a, &b]);
    run(async {
        let WriteDone::Ok { version } = n.set(b"k", b"v").await else {
            panic!("2 of 3 accepted");
        };
        assert_eq!(held(&b, b"k").map(|(v, _)| v), Some(version));
        settle().await;
        // The coordinator cannot know: a COPY of a held version is harmless.
        assert_eq!(n.queued(2).len(), 1);
        assert_eq!(n.queued(1).len(), 0);
    });
}

#[test]
fn a_read_repairs_a_stale_replica_before_it_answers() {
    let (a, b) = peers(Filter::Deliver, Filter::Deliver);
    let n = node("driver-repair", WriteMode::Fast, [&a, &b]);
    run(async {
        b.set_up(false);
        let WriteDone::Ok { version } = n.set(b"k", b"new").await else {
            panic!("2 of 3 up");
        };
        // Peer 2 comes back holding an older version; peer 1 is cut off.
        b.hold(b"k", Version { hlc: 1, origin: 9 }, Some(b"old"));
        b.set_up(true);
        a.set_up(false);
        let got = n.get(b"k").await;
        assert_eq!(
            got,
            ReadDone::Found {
                version,
                value: b"new".to_vec(),
                expires: None,
            }
        );
        let repaired = b
            .taken()
            .iter()
            .any(|r| matches!(r, ReplicaRequest::Repair { .. }));
        assert!(repaired, "the stale replica was repaired: {:?}", b.taken());
        assert_eq!(held(&b, b"k"), Some((version, Some(b"new".to_vec()))));
    });
}

#[test]
fn a_rejected_write_makes_the_key_contended_so_the_next_write_goes_safe() {
    let (a, b) = peers(Filter::Deliver, Filter::Deliver);
    let n = node("driver-contended", WriteMode::Fast, [&a, &b]);
    run(async {
        // Both peers hold a version far above anything this node's clock issues soon.
        let ahead = Version {
            hlc: n.hlc.now().await.hlc + (1 << 30),
            origin: 9,
        };
        a.hold(b"k", ahead, Some(b"theirs"));
        b.hold(b"k", ahead, Some(b"theirs"));
        // The local replica stored it, the peers rejected it: it may not be retried under a new
        // version (I5), nor reported as a definite failure (I4).
        let first = n.set(b"k", b"mine").await;
        assert!(
            matches!(first, WriteDone::Indeterminate { .. }),
            "{first:?}"
        );
        let before = a.taken().len();
        let second = n.set(b"k", b"again").await;
        let WriteDone::Ok { version } = second else {
            panic!("{second:?}");
        };
        let sent: Vec<ReplicaRequest> = a.taken()[before..].to_vec();
        assert!(
            matches!(sent.first(), Some(ReplicaRequest::Read { .. })) && sent.iter().any(is_put),
            "safe mode reads the versions first: {sent:?}"
        );
        assert!(version > ahead);
    });
}

#[test]
fn safe_mode_reads_the_versions_of_a_majority_then_writes_above_them() {
    let (a, b) = peers(Filter::Deliver, Filter::Drop);
    let n = node("driver-safe", WriteMode::Safe, [&a, &b]);
    run(async {
        let ahead = Version {
            hlc: n.hlc.now().await.hlc + (1 << 30),
            origin: 9,
        };
        a.hold(b"k", ahead, Some(b"theirs"));
        let WriteDone::Ok { version } = n.set(b"k", b"mine").await else {
            panic!("this node and peer 1 make a majority");
        };
        assert!(version > ahead, "above what the majority held");
        let kinds: Vec<bool> = a.taken().iter().map(is_put).collect();
        assert_eq!(
            kinds,
            [false, true],
            "one READ, then one PUT: {:?}",
            a.taken()
        );
    });
}
