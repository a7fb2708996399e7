//! Hinted handoff (DESIGN §6): the writes a peer missed are kept on disk and re-sent to it,
//! as `COPY` with their original version, when its link is up again.
//!
//! After a write ends Ok or Indeterminate, the driver hands every peer that is not known to
//! hold its version to this core's [`Hints`] (never after a definite failure: nothing of that
//! write may ever be stored, I4). Hints are buffered in memory and written in one batch per
//! event-loop turn to the core's own [`HintQueue`] (over the core's `storage::hintlog`), bounded
//! per peer; a full queue drops its oldest hints first, and says how many in [`HintStats`].
//! [`replay`] runs one task per peer on each core: while the link is up it sends the queue in
//! order, a bounded number in flight and at a bounded rate, and deletes each hint once the
//! peer acknowledged it (`CopyAck`: the peer now holds that version or a newer one).
//!
//! Hints never count toward a quorum (I7): they are made after the write's outcome is
//! decided, and a `COPY` answer is never a vote. A hint re-sent as a `PUT` could be counted
//! twice by a replica, so it is always a `COPY` (store iff newer), and re-sending one any
//! number of times, in any order, leaves the same state. Anti-entropy is the backstop for
//! every hint lost or dropped.
//!
//! Durability: a hint reaches the OS (the log's journal `write()`) in the turn after the write
//! was answered, and is never fsynced by mostdb, whatever `MOSTDB_SYNC` says: it survives the
//! process dying, not the machine (the engine fsyncs it when it flushes or closes). Fsyncing it
//! would put a disk flush behind every write a peer misses, for an optimisation; a lost hint
//! costs only the time until anti-entropy repairs the key.
//!
//! Must not import `http` or `api`.

mod queue;
mod replay;
#[cfg(test)]
mod tests;

pub use queue::{Appended, Bounds, Hint, HintQueue, Queued};
pub use replay::run as replay;
pub use replay::run_named as replay_named;

use std::cell::{Cell, RefCell};
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::limits;
use crate::storage::{DiskSpace, StorageError};

/// What can go wrong with the hint queues. None of it touches the data: at worst a peer
/// waits for anti-entropy instead of a hint.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HintError {
    /// The log on disk: I/O, the engine, or an entry that does not decode.
    #[error("hints: {0}")]
    Storage(#[from] StorageError),
}

/// One peer's hint counters, summed over the node's cores.
#[derive(Debug, Default)]
pub struct PeerHintCounters {
    /// Hints queued.
    pub stored: AtomicU64,
    /// Hints dropped: queue full (oldest first), intake full, disk behind or failing, or a
    /// hint the peer never answered.
    pub dropped: AtomicU64,
    /// Hints the peer acknowledged.
    pub replayed: AtomicU64,
    /// Hints waiting in the queues now.
    pub pending: AtomicU64,
}

/// The node's hint counters, per member (all zero for this node itself). `Send + Sync`.
#[derive(Debug)]
pub struct HintStats {
    peers: Vec<PeerHintCounters>,
}

/// A copy of one peer's [`PeerHintCounters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PeerHintSnapshot {
    pub stored: u64,
    pub dropped: u64,
    pub replayed: u64,
    pub pending: u64,
}

impl HintStats {
    pub fn new(members: usize) -> HintStats {
        HintStats {
            peers: (0..members).map(|_| PeerHintCounters::default()).collect(),
        }
    }

    /// The counters of member `peer` (`None`: no such member).
    pub fn peer(&self, peer: usize) -> Option<&PeerHintCounters> {
        self.peers.get(peer)
    }

    /// Every member's counters, indexed like the members.
    pub fn snapshot(&self) -> Vec<PeerHintSnapshot> {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        self.peers
            .iter()
            .map(|p| PeerHintSnapshot {
                stored: get(&p.stored),
                dropped: get(&p.dropped),
                replayed: get(&p.replayed),
                pending: get(&p.pending),
            })
            .collect()
    }

    fn count(&self, peer: usize, pick: impl Fn(&PeerHintCounters) -> &AtomicU64, n: u64) {
        if let Some(p) = self.peers.get(peer) {
            if n > 0 {
                pick(p).fetch_add(n, Ordering::Relaxed);
            }
        }
    }
}

/// One core's hints: the turn's intake, the queue on disk, and this core's share of the
/// node's counters. Core-local (`!Send`), shared by the driver and the replay tasks.
pub struct Hints {
    core: usize,
    queue: RefCell<HintQueue>,
    intake: RefCell<Vec<Hint>>,
    flush_spawned: Cell<bool>,
    /// What this core last added to each peer's `pending` gauge.
    published: RefCell<Vec<u64>>,
    /// The queue's disk failed at the last flush (logged once, until it works again).
    failing: Cell<bool>,
    stats: Arc<HintStats>,
    /// The store's free space: below its reserve, hints are dropped (counted) rather than
    /// written, so they never push the volume into `ENOSPC`.
    space: std::cell::OnceCell<Arc<DiskSpace>>,
}

impl Hints {
    /// Opens core `core`'s queue under `<root>/hints/` for the members `is_peer` describes
    /// (and takes over the queues of cores that no longer run). Blocking.
    pub fn open(
        root: &Path,
        core: usize,
        threads: usize,
        is_peer: &[bool],
        stats: Arc<HintStats>,
    ) -> Result<Rc<Hints>, HintError> {
        let bounds = Bounds {
            hints_max: limits::HINT_QUEUE_HINTS_MAX,
            bytes_max: limits::HINT_QUEUE_BYTES_MAX,
        };
        let (queue, adopted) = HintQueue::open_core(root, core, threads, is_peer, bounds)?;
        Ok(Hints::with_queue(core, queue, &adopted, stats))
    }

    /// Drops hints instead of writing them while `space` is below its reserve.
    pub fn watch_space(self: Rc<Self>, space: Arc<DiskSpace>) -> Rc<Self> {
        let _ = self.space.set(space);
        self
    }

    /// Wraps an open queue (`adopted`: what opening it moved in from elsewhere).
    pub fn with_queue(
        core: usize,
        queue: HintQueue,
        adopted: &Appended,
        stats: Arc<HintStats>,
    ) -> Rc<Hints> {
        let hints = Rc::new(Hints {
            core,
            published: RefCell::new(vec![0; stats.peers.len()]),
            queue: RefCell::new(queue),
            intake: RefCell::new(Vec::new()),
            flush_spawned: Cell::new(false),
            failing: Cell::new(false),
            stats,
            space: std::cell::OnceCell::new(),
        });
        hints.count_appended(adopted);
        hints.publish_pending();
        let waiting: u64 = (0..hints.stats.peers.len()).map(|p| hints.pending(p)).sum();
        if waiting > 0 {
            tracing::info!(core, hints = waiting, "hints waiting from the last run");
        }
        hints
    }

    /// Queues `hint` for its peer. Never blocks and never fails: the hint reaches the disk
    /// with the rest of this turn's (in a task of its own), or is counted as dropped.
    pub fn add(self: &Rc<Self>, hint: Hint) {
        let mut intake = self.intake.borrow_mut();
        if intake.len() >= limits::HINT_INTAKE_MAX {
            self.stats.count(hint.peer, |p| &p.dropped, 1);
            return;
        }
        intake.push(hint);
        if !self.flush_spawned.replace(true) {
            let hints = self.clone();
            monoio::spawn(async move { hints.flush() });
        }
    }

    /// Hints waiting for `peer` in this core's queue (the intake not included).
    pub fn pending(&self, peer: usize) -> u64 {
        self.queue.borrow().pending(peer).0
    }

    /// Writes the intake to the queue in one batch.
    fn flush(&self) {
        self.flush_spawned.set(false);
        let hints = std::mem::take(&mut *self.intake.borrow_mut());
        if hints.is_empty() {
            return;
        }
        let mut per_peer = vec![0u64; self.stats.peers.len()];
        for hint in &hints {
            if let Some(n) = per_peer.get_mut(hint.peer) {
                *n += 1;
            }
        }
        let mut queue = self.queue.borrow_mut();
        // A write now could put the thread to sleep until the disk catches up (DESIGN §1).
        let no_space = self.space.get().is_some_and(|s| s.is_low());
        let appended = if queue.backlogged() || no_space {
            Err(None)
        } else {
            queue.append(hints).map_err(Some)
        };
        drop(queue);
        match appended {
            Ok(appended) => {
                self.failing.set(false);
                self.count_appended(&appended);
            }
            Err(err) => {
                if let Some(err) = &err {
                    if !self.failing.replace(true) {
                        tracing::error!(core = self.core, %err, "hints not written; anti-entropy will repair");
                    }
                }
                for (peer, &n) in per_peer.iter().enumerate() {
                    self.stats.count(peer, |p| &p.dropped, n);
                }
            }
        }
        self.publish_pending();
    }

    fn count_appended(&self, appended: &Appended) {
        for (peer, &n) in appended.stored.iter().enumerate() {
            self.stats.count(peer, |p| &p.stored, n);
        }
        for (peer, &n) in appended.dropped.iter().enumerate() {
            self.stats.count(peer, |p| &p.dropped, n);
        }
    }

    /// Up to `max` of `peer`'s hints, oldest first (none if the queue cannot be read).
    pub(crate) fn peek(&self, peer: usize, max: usize) -> Vec<Queued> {
        let peeked = self.queue.borrow_mut().peek(peer, max);
        match peeked {
            Ok((hints, corrupt)) => {
                self.stats.count(peer, |p| &p.dropped, corrupt);
                if corrupt > 0 {
                    self.publish_pending();
                }
                hints
            }
            Err(err) => {
                tracing::warn!(core = self.core, member = peer, %err, "cannot read hints");
                Vec::new()
            }
        }
    }

    /// Removes `replayed` (acknowledged) and `given_up` hints of `peer` from the queue.
    fn finish(&self, peer: usize, replayed: &[(u64, u64)], given_up: &[(u64, u64)]) {
        let all: Vec<(u64, u64)> = replayed.iter().chain(given_up).copied().collect();
        if let Err(err) = self.queue.borrow_mut().remove(peer, &all) {
            // They stay queued and are sent again: a COPY repeated is harmless.
            tracing::warn!(core = self.core, member = peer, %err, "cannot remove replayed hints");
            return;
        }
        self.stats
            .count(peer, |p| &p.replayed, replayed.len() as u64);
        self.stats
            .count(peer, |p| &p.dropped, given_up.len() as u64);
        self.publish_pending();
    }

    /// Brings this core's share of each peer's `pending` gauge up to date.
    fn publish_pending(&self) {
        let queue = self.queue.borrow();
        let mut published = self.published.borrow_mut();
        for (peer, old) in published.iter_mut().enumerate() {
            let new = queue.pending(peer).0;
            if let Some(p) = self.stats.peers.get(peer) {
                if new > *old {
                    p.pending.fetch_add(new - *old, Ordering::Relaxed);
                } else if new < *old {
                    p.pending.fetch_sub(*old - new, Ordering::Relaxed);
                }
            }
            *old = new;
        }
    }
}
