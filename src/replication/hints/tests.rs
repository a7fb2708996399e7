//! The hint queue on disk (order, bounds, drop-oldest, reopen, orphaned core directories) and
//! the replay (order, acks, link down) over simulated links. Who gets a hint after which
//! outcome is the driver's (`driver/tests.rs`).

use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::replication::transport::fake::{FakeLink, Filter};
use crate::replication::transport::Link;
use crate::runtime::Latch;
use crate::storage::store::test_dir::TempDir;
use crate::storage::{Meta, Version};

use crate::test_support::run;

fn v(hlc: u64) -> Version {
    Version { hlc, origin: 7 }
}

fn hint(peer: usize, i: u64) -> Hint {
    Hint {
        peer,
        key: format!("key-{i}").into_bytes(),
        version: v(100 + i),
        // Every third a delete: tombstones travel as hints too.
        value: (i % 3 != 0).then(|| format!("value-{i}").into_bytes()),
        meta: Meta::BLIND,
    }
}

const ROOMY: Bounds = Bounds {
    hints_max: 1_000_000,
    bytes_max: 1 << 30,
};

/// Members 0 (this node), 1 and 2.
const PEERS: [bool; 3] = [false, true, true];

fn open(dir: &Path, bounds: Bounds) -> HintQueue {
    HintQueue::open(dir, &PEERS, bounds).expect("open queue")
}

fn peeked(queue: &mut HintQueue, peer: usize) -> Vec<Hint> {
    let (hints, corrupt) = queue.peek(peer, usize::MAX).expect("peek");
    assert_eq!(corrupt, 0);
    hints.into_iter().map(|q| q.hint).collect()
}

#[test]
fn each_peer_gets_its_hints_back_in_order() {
    let dir = TempDir::new("hints-order");
    let mut queue = open(dir.path(), ROOMY);
    let all: Vec<Hint> = (0..60).map(|i| hint(1 + (i % 2) as usize, i)).collect();
    let appended = queue.append(all.clone()).expect("append");
    assert_eq!(appended.stored, vec![0, 30, 30]);
    assert_eq!(appended.dropped, vec![0, 0, 0]);
    for peer in [1, 2] {
        let want: Vec<Hint> = all.iter().filter(|h| h.peer == peer).cloned().collect();
        assert_eq!(peeked(&mut queue, peer), want);
        assert_eq!(queue.pending(peer).0, 30);
    }
    // A hint for this node itself is no hint.
    let appended = queue.append(vec![hint(0, 99)]).expect("append");
    assert_eq!(appended.stored, vec![0, 0, 0]);
    assert_eq!(queue.pending(0), (0, 0));
}

#[test]
fn peek_is_bounded_and_remove_moves_the_front() {
    let dir = TempDir::new("hints-remove");
    let mut queue = open(dir.path(), ROOMY);
    queue
        .append((0..10).map(|i| hint(1, i)).collect())
        .expect("append");
    let (first, _) = queue.peek(1, 4).expect("peek");
    assert_eq!(first.len(), 4);
    // Acknowledged out of order: the second and the first; the rest stays.
    let done: Vec<(u64, u64)> = first[..2].iter().rev().map(|q| (q.seq, q.bytes)).collect();
    queue.remove(1, &done).expect("remove");
    let rest = peeked(&mut queue, 1);
    assert_eq!(rest, (2..10).map(|i| hint(1, i)).collect::<Vec<_>>());
    let bytes: u64 = queue
        .peek(1, usize::MAX)
        .expect("peek")
        .0
        .iter()
        .map(|q| q.bytes)
        .sum();
    assert_eq!(queue.pending(1), (8, bytes));
}

#[test]
fn a_full_queue_drops_its_oldest_first() {
    let dir = TempDir::new("hints-bound-count");
    let bounds = Bounds {
        hints_max: 5,
        bytes_max: 1 << 30,
    };
    let mut queue = open(dir.path(), bounds);
    let a = queue
        .append((0..4).map(|i| hint(1, i)).collect())
        .expect("append");
    assert_eq!((a.stored[1], a.dropped[1]), (4, 0));
    let b = queue
        .append((4..8).map(|i| hint(1, i)).collect())
        .expect("append");
    assert_eq!((b.stored[1], b.dropped[1]), (4, 3));
    assert_eq!(
        peeked(&mut queue, 1),
        (3..8).map(|i| hint(1, i)).collect::<Vec<_>>()
    );
    // One batch larger than the bound keeps its newest.
    let c = queue
        .append((8..20).map(|i| hint(1, i)).collect())
        .expect("append");
    assert_eq!((c.stored[1], c.dropped[1]), (5, 12));
    assert_eq!(
        peeked(&mut queue, 1),
        (15..20).map(|i| hint(1, i)).collect::<Vec<_>>()
    );
    // The other peer's queue is its own.
    assert_eq!(queue.pending(2).0, 0);
}

#[test]
fn the_byte_bound_drops_oldest_and_refuses_a_hint_too_big_alone() {
    let dir = TempDir::new("hints-bound-bytes");
    let big = |i: u64| Hint {
        value: Some(vec![b'x'; 1000]),
        ..hint(1, i)
    };
    let bounds = Bounds {
        hints_max: 1_000,
        bytes_max: 3_500,
    };
    let mut queue = open(dir.path(), bounds);
    let a = queue.append((0..5).map(big).collect()).expect("append");
    // About 1,040 bytes each: three fit.
    assert_eq!((a.stored[1], a.dropped[1]), (3, 2));
    assert_eq!(peeked(&mut queue, 1), (2..5).map(big).collect::<Vec<_>>());
    assert!(queue.pending(1).1 <= bounds.bytes_max);
    let huge = Hint {
        value: Some(vec![b'y'; 4_000]),
        ..hint(1, 50)
    };
    let b = queue.append(vec![huge]).expect("append");
    assert_eq!((b.stored[1], b.dropped[1]), (0, 1));
    assert_eq!(queue.pending(1).0, 3);
}

#[test]
fn hints_survive_a_reopen_and_keep_their_order() {
    let dir = TempDir::new("hints-reopen");
    {
        let mut queue = open(dir.path(), ROOMY);
        queue
            .append((0..20).map(|i| hint(1 + (i % 2) as usize, i)).collect())
            .expect("append");
        let (front, _) = queue.peek(1, 3).expect("peek");
        let done: Vec<_> = front.iter().map(|q| (q.seq, q.bytes)).collect();
        queue.remove(1, &done).expect("remove");
    }
    let mut queue = open(dir.path(), ROOMY);
    assert_eq!(queue.pending(1).0, 7);
    assert_eq!(queue.pending(2).0, 10);
    // Appended after the reopen: behind the old ones.
    queue.append(vec![hint(1, 100)]).expect("append");
    let want: Vec<Hint> = (0..20)
        .filter(|i| i % 2 == 0)
        .skip(3)
        .map(|i| hint(1, i))
        .chain([hint(1, 100)])
        .collect();
    assert_eq!(peeked(&mut queue, 1), want);
    let bytes: u64 = queue
        .all()
        .expect("all")
        .iter()
        .filter(|q| q.hint.peer == 1)
        .map(|q| q.bytes)
        .sum();
    assert_eq!(queue.pending(1).1, bytes);
}

#[test]
fn hints_of_members_that_are_no_peers_are_removed_at_open() {
    let dir = TempDir::new("hints-stray");
    {
        let mut queue = open(dir.path(), ROOMY);
        queue.append(vec![hint(1, 1), hint(2, 2)]).expect("append");
    }
    // Member 2 is gone from the configuration.
    let queue = HintQueue::open(dir.path(), &[false, true], ROOMY).expect("reopen");
    assert_eq!(queue.pending(1).0, 1);
    assert_eq!(queue.all().expect("all").len(), 1);
}

#[test]
fn a_core_takes_over_the_queues_of_cores_that_no_longer_run() {
    let dir = TempDir::new("hints-adopt");
    let root = dir.path();
    for core in 0..4 {
        let (mut queue, _) = HintQueue::open_core(root, core, 4, &PEERS, ROOMY).expect("open");
        queue
            .append(vec![
                hint(1, core as u64 * 10),
                hint(2, core as u64 * 10 + 1),
            ])
            .expect("append");
    }
    // Two cores now: core 1 takes core 3's hints, core 0 takes core 2's.
    let (queue, adopted) = HintQueue::open_core(root, 1, 2, &PEERS, ROOMY).expect("open");
    assert_eq!(adopted.stored, vec![0, 1, 1]);
    let mut keys: Vec<Vec<u8>> = queue
        .all()
        .expect("all")
        .into_iter()
        .map(|q| q.hint.key)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        vec![
            b"key-10".to_vec(),
            b"key-11".to_vec(),
            b"key-30".to_vec(),
            b"key-31".to_vec()
        ]
    );
    let base = root.join(crate::storage::layout::HINTS_DIR);
    assert!(!base.join("core-003").exists());
    assert!(
        base.join("core-002").exists(),
        "core 2's hints belong to core 0"
    );
}

#[test]
fn hints_reach_the_queue_after_the_turn_and_are_counted() {
    let dir = TempDir::new("hints-intake");
    let stats = Arc::new(HintStats::new(3));
    run(async {
        let queue = open(dir.path(), ROOMY);
        let hints = Hints::with_queue(0, queue, &Appended::default(), stats.clone());
        for i in 0..10 {
            hints.add(hint(2, i));
        }
        // Not yet: the batch is written by a task of its own.
        assert_eq!(hints.pending(2), 0);
        monoio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(hints.pending(2), 10);
    });
    let snap = stats.snapshot();
    assert_eq!(snap[2].stored, 10);
    assert_eq!(snap[2].pending, 10);
    assert_eq!(snap[1], PeerHintSnapshot::default());
}

// ---------------------------------------------------------------------------------------------
// Replay

/// How long a replayed COPY may take.
const OP_TIMEOUT: Duration = Duration::from_millis(300);

#[test]
fn replay_sends_copies_in_order_once_the_link_is_up_and_empties_the_queue() {
    let dir = TempDir::new("hints-replay");
    let stats = Arc::new(HintStats::new(3));
    let peer1 = FakeLink::new(false, Filter::Deliver);
    let peer2 = FakeLink::new(true, Filter::Deliver);
    run(async {
        let queue = open(dir.path(), ROOMY);
        let hints = Hints::with_queue(0, queue, &Appended::default(), stats.clone());
        let all: Vec<Hint> = (0..300).map(|i| hint(1, i)).collect();
        for h in &all {
            hints.add(h.clone());
        }
        let stop = Latch::new();
        let links: Vec<Option<Rc<dyn Link>>> = vec![
            None,
            Some(peer1.clone() as Rc<dyn Link>),
            Some(peer2.clone() as Rc<dyn Link>),
        ];
        let task = monoio::spawn(replay(hints.clone(), links, OP_TIMEOUT, stop.clone()));
        monoio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            peer1.copies().is_empty(),
            "nothing is sent while the link is down"
        );
        assert_eq!(hints.pending(1), 300);
        peer1.set_up(true);
        let deadline = Instant::now() + Duration::from_secs(5);
        while hints.pending(1) > 0 && Instant::now() < deadline {
            monoio::time::sleep(Duration::from_millis(20)).await;
        }
        let want: Vec<_> = all
            .iter()
            .map(|h| (h.key.clone(), h.version, h.value.clone()))
            .collect();
        assert_eq!(
            peer1.copies(),
            want,
            "every hint, once, in order, as a COPY"
        );
        assert!(peer2.copies().is_empty());
        stop.set();
        task.await;
    });
    let snap = stats.snapshot();
    assert_eq!(
        (snap[1].stored, snap[1].replayed, snap[1].pending),
        (300, 300, 0)
    );
}

#[test]
fn replay_keeps_what_was_not_acknowledged() {
    let dir = TempDir::new("hints-replay-silent");
    let stats = Arc::new(HintStats::new(3));
    let peer = FakeLink::new(true, Filter::Drop);
    let none = FakeLink::new(false, Filter::Deliver);
    run(async {
        let queue = open(dir.path(), ROOMY);
        let hints = Hints::with_queue(0, queue, &Appended::default(), stats.clone());
        for i in 0..5 {
            hints.add(hint(2, i));
        }
        let stop = Latch::new();
        let links: Vec<Option<Rc<dyn Link>>> = vec![
            None,
            Some(none.clone() as Rc<dyn Link>),
            Some(peer.clone() as Rc<dyn Link>),
        ];
        let task = monoio::spawn(replay(
            hints.clone(),
            links,
            Duration::from_millis(50),
            stop.clone(),
        ));
        monoio::time::sleep(Duration::from_millis(400)).await;
        assert!(!peer.copies().is_empty(), "sent");
        assert_eq!(hints.pending(2), 5, "unanswered hints stay queued");
        peer.set_filter(Filter::Deliver);
        let deadline = Instant::now() + Duration::from_secs(5);
        while hints.pending(2) > 0 && Instant::now() < deadline {
            monoio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(hints.pending(2), 0, "sent again once the peer answers");
        stop.set();
        task.await;
    });
    assert_eq!(stats.snapshot()[2].replayed, 5);
}

#[test]
fn the_oldest_hint_is_given_up_after_its_attempts() {
    let mut front = replay::FrontAttempts::default();
    for _ in 1..limits::HINT_REPLAY_ATTEMPTS_MAX {
        assert!(front.note((4, 40), true).is_empty());
    }
    // An attempt that was never sent does not count; another front starts the count again.
    assert!(front.note((4, 40), false).is_empty());
    assert!(front.note((5, 50), true).is_empty());
    for _ in 2..limits::HINT_REPLAY_ATTEMPTS_MAX {
        assert!(front.note((5, 50), true).is_empty());
    }
    assert_eq!(front.note((5, 50), true), vec![(5, 50)]);
}
