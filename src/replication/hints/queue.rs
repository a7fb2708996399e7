//! One core's hint queue: a FIFO per peer, bounded in hints and in bytes per peer; when a
//! queue is full its oldest hints are dropped first. The entries live in the core's
//! [`HintLog`] (`storage::hintlog`, which owns the on-disk format and the directory); the
//! counts and byte sizes of the queues live here, in memory, rebuilt by one scan at open.
//! Synchronous (blocking disk calls): the caller keeps them off the client's path and
//! batches them.
//!
//! Must not import `http`, `api` or `runtime`.

use std::path::Path;

use super::HintError;
use crate::limits;
use crate::storage::hintlog::{EncodedHint, Entry, EntryId, HintBatch, HintLog};
use crate::storage::{layout, Meta, Version};

/// Hints moved at once from a log left by a core that no longer runs.
const ADOPT_CHUNK_HINTS: usize = 1_024;

/// A write a peer missed, to be re-sent to it with its original version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hint {
    /// The peer, as the index of its member (and link).
    pub peer: usize,
    pub key: Vec<u8>,
    pub version: Version,
    /// `None`: a delete (a tombstone).
    pub value: Option<Vec<u8>>,
    /// Written by a CAS or blind, expiry: the peer stores the record as it was written.
    pub meta: Meta,
}

/// A hint as queued: its place in its peer's queue and the bytes it takes there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Queued {
    pub seq: u64,
    pub bytes: u64,
    pub hint: Hint,
}

/// How much one peer's queue may hold.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Bounds {
    pub hints_max: u64,
    /// Bytes of entries (as the log counts them: entry key and value).
    pub bytes_max: u64,
}

/// One peer's queue as kept in memory.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
struct PeerQueue {
    /// No hint of this peer is below this sequence number.
    front: u64,
    /// The sequence number of the next hint queued.
    next: u64,
    hints: u64,
    bytes: u64,
}

/// What one [`HintQueue::append`] did, per peer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Appended {
    pub stored: Vec<u64>,
    /// Hints dropped to keep the bounds: the oldest queued, or new ones too big on their own.
    pub dropped: Vec<u64>,
}

pub struct HintQueue {
    log: HintLog,
    /// Indexed by member; only peers (not this node) have hints.
    is_peer: Vec<bool>,
    peers: Vec<PeerQueue>,
    bounds: Bounds,
}

impl HintQueue {
    /// Opens (or creates) the queue in `dir` for the members `is_peer` describes; hints found
    /// for a member that is no peer (this node, or a member no longer configured) are removed.
    pub fn open(dir: &Path, is_peer: &[bool], bounds: Bounds) -> Result<HintQueue, HintError> {
        assert!(is_peer.len() <= limits::REPLICAS_MAX);
        let mut queue = HintQueue {
            log: HintLog::open(dir)?,
            is_peer: is_peer.to_vec(),
            peers: vec![PeerQueue::default(); is_peer.len()],
            bounds,
        };
        queue.rebuild()?;
        Ok(queue)
    }

    /// Opens core `core`'s queue (`<root>/hints/core-NNN`), and moves into it the hints of the
    /// logs left by cores that no longer run (core `K ≥ threads`, taken by core
    /// `K % threads`), removing them. Blocking; call it before the core serves.
    pub fn open_core(
        root: &Path,
        core: usize,
        threads: usize,
        is_peer: &[bool],
        bounds: Bounds,
    ) -> Result<(HintQueue, Appended), HintError> {
        let mut queue = HintQueue::open(&layout::hint_log_dir(root, core), is_peer, bounds)?;
        let mut adopted = Appended::new(is_peer.len());
        let orphans = layout::hint_log_dirs(root)?
            .into_iter()
            .filter(|&(k, _)| k >= threads && k % threads == core);
        for (_, other) in orphans {
            let old = HintQueue::open(&other, is_peer, bounds)?;
            for chunk in old.all()?.chunks(ADOPT_CHUNK_HINTS) {
                let hints = chunk.iter().map(|q| q.hint.clone()).collect();
                adopted.add(&queue.append(hints)?);
            }
            old.log.delete()?;
            tracing::info!(core, from = %other.display(), "took over the hints of a core that no longer runs");
        }
        Ok((queue, adopted))
    }

    pub fn dir(&self) -> &Path {
        self.log.dir()
    }

    /// Hints and bytes queued for `peer`.
    pub fn pending(&self, peer: usize) -> (u64, u64) {
        self.peers.get(peer).map_or((0, 0), |q| (q.hints, q.bytes))
    }

    /// Whether the disk is behind on flushing this queue, so that a write could block the
    /// thread.
    pub fn backlogged(&self) -> bool {
        self.log.backlogged()
    }

    /// Queues `hints` (each at the back of its peer's queue, in the given order) with one
    /// journal write, dropping the oldest hints of a full queue to make room. Hints for a
    /// member that is no peer are ignored.
    pub fn append(&mut self, hints: Vec<Hint>) -> Result<Appended, HintError> {
        let mut out = Appended::new(self.peers.len());
        let mut peers = self.peers.clone();
        let mut batch = self.log.batch();
        let mut encoded = Vec::new();
        for peer in (0..peers.len()).filter(|&p| self.is_peer[p]) {
            let mine: Vec<&Hint> = hints.iter().filter(|h| h.peer == peer).collect();
            if mine.is_empty() {
                continue;
            }
            encoded.clear();
            encoded.extend(
                mine.iter()
                    .map(|h| EncodedHint::new(&h.key, h.version, h.value.as_deref(), h.meta)),
            );
            let keep_from = self.newest_that_fit(&encoded);
            out.dropped[peer] += keep_from as u64;
            let kept = encoded.drain(keep_from..);
            let kept_bytes = kept.as_slice().iter().map(EncodedHint::entry_bytes).sum();
            let q = &mut peers[peer];
            out.dropped[peer] +=
                self.make_room(peer, q, kept.len() as u64, kept_bytes, &mut batch)?;
            out.stored[peer] += kept.len() as u64;
            for hint in kept {
                q.hints += 1;
                q.bytes += hint.entry_bytes();
                batch.insert(EntryId { peer, seq: q.next }, hint);
                q.next += 1;
            }
        }
        batch.commit()?;
        self.peers = peers;
        Ok(out)
    }

    /// Up to `max` hints of `peer` from the front of its queue, oldest first. An entry that
    /// does not decode is removed (and counted in the second value) rather than blocking the
    /// queue for ever.
    pub fn peek(&mut self, peer: usize, max: usize) -> Result<(Vec<Queued>, u64), HintError> {
        let Some(&q) = self.peers.get(peer) else {
            return Ok((Vec::new(), 0));
        };
        let mut out = Vec::new();
        let mut corrupt = Vec::new();
        for entry in self.log.entries(peer, q.front..q.next).take(max) {
            let entry = entry?;
            let (seq, bytes) = (entry.id().seq, entry.bytes());
            match queued(&entry) {
                Ok(queued) => out.push(queued),
                Err(err) => {
                    // The peer by address: in the replay task's span.
                    tracing::warn!(%err, member = peer, seq, "dropping a hint that does not decode");
                    corrupt.push((seq, bytes));
                }
            }
        }
        let first = out.first().map(|h| h.seq).into_iter();
        if let Some(front) = first.chain(corrupt.first().map(|c| c.0)).min() {
            self.peers[peer].front = front;
        }
        self.remove(peer, &corrupt)?;
        Ok((out, corrupt.len() as u64))
    }

    /// Removes the hints `(seq, bytes)` of `peer` (as [`HintQueue::peek`] gave them) with one
    /// journal write.
    pub fn remove(&mut self, peer: usize, done: &[(u64, u64)]) -> Result<(), HintError> {
        if done.is_empty() {
            return Ok(());
        }
        let mut batch = self.log.batch();
        for &(seq, _) in done {
            batch.remove(EntryId { peer, seq });
        }
        batch.commit()?;
        let q = &mut self.peers[peer];
        let bytes: u64 = done.iter().map(|d| d.1).sum();
        debug_assert!(q.hints >= done.len() as u64 && q.bytes >= bytes);
        q.hints = q.hints.saturating_sub(done.len() as u64);
        q.bytes = q.bytes.saturating_sub(bytes);
        if q.hints == 0 {
            q.front = q.next;
        }
        Ok(())
    }

    /// Every hint queued, in key order (peer, then age). Reads them all into memory: for
    /// taking over a small log left behind, and for tests.
    pub fn all(&self) -> Result<Vec<Queued>, HintError> {
        self.log.all().map(|entry| queued(&entry?)).collect()
    }

    /// The index of the first of `encoded` (new hints of one peer, oldest first) that is kept:
    /// the newest ones that fit the bounds on their own.
    fn newest_that_fit(&self, encoded: &[EncodedHint]) -> usize {
        let (mut hints, mut bytes) = (0u64, 0u64);
        for (i, hint) in encoded.iter().enumerate().rev() {
            let size = hint.entry_bytes();
            if hints + 1 > self.bounds.hints_max || bytes + size > self.bounds.bytes_max {
                return i + 1;
            }
            hints += 1;
            bytes += size;
        }
        0
    }

    /// Removes (in `batch`) the oldest hints of `peer` until `hints` more hints of `bytes`
    /// fit in `q`; returns how many it removed.
    fn make_room(
        &self,
        peer: usize,
        q: &mut PeerQueue,
        hints: u64,
        bytes: u64,
        batch: &mut HintBatch<'_>,
    ) -> Result<u64, HintError> {
        let full = |q: &PeerQueue| {
            q.hints + hints > self.bounds.hints_max || q.bytes + bytes > self.bounds.bytes_max
        };
        let mut dropped = 0;
        if !full(q) {
            return Ok(0);
        }
        for entry in self.log.entries(peer, q.front..q.next) {
            let entry = entry?;
            batch.remove(entry.id());
            q.front = entry.id().seq + 1;
            q.hints = q.hints.saturating_sub(1);
            q.bytes = q.bytes.saturating_sub(entry.bytes());
            dropped += 1;
            if !full(q) {
                return Ok(dropped);
            }
        }
        // Every queued hint is gone: the counts had drifted from the disk.
        debug_assert!(q.hints == 0 && q.bytes == 0, "hint counts drifted: {q:?}");
        q.hints = 0;
        q.bytes = 0;
        Ok(dropped)
    }

    /// Rebuilds the in-memory queues from the disk; removes the hints of members that are
    /// no peers.
    fn rebuild(&mut self) -> Result<(), HintError> {
        let mut stray = self.log.batch();
        let mut seen = vec![false; self.peers.len()];
        for entry in self.log.all() {
            let entry = entry?;
            let EntryId { peer, seq } = entry.id();
            if !self.is_peer.get(peer).copied().unwrap_or(false) {
                stray.remove(entry.id());
                continue;
            }
            let q = &mut self.peers[peer];
            if !seen[peer] {
                seen[peer] = true;
                q.front = seq;
            }
            q.next = seq + 1;
            q.hints += 1;
            q.bytes += entry.bytes();
        }
        if !stray.is_empty() {
            tracing::info!(dir = %self.log.dir().display(), hints = stray.len(), "removing hints for members that are no peers");
        }
        stray.commit()?;
        Ok(())
    }
}

impl Appended {
    fn new(peers: usize) -> Appended {
        Appended {
            stored: vec![0; peers],
            dropped: vec![0; peers],
        }
    }

    fn add(&mut self, other: &Appended) {
        for (a, b) in self.stored.iter_mut().zip(&other.stored) {
            *a += b;
        }
        for (a, b) in self.dropped.iter_mut().zip(&other.dropped) {
            *a += b;
        }
    }
}

/// A log entry as a queued hint.
fn queued(entry: &Entry) -> Result<Queued, HintError> {
    let EntryId { peer, seq } = entry.id();
    let (key, record) = entry.decode()?;
    let hint = Hint {
        peer,
        key,
        version: record.version,
        value: record.value,
        meta: record.meta,
    };
    Ok(Queued {
        seq,
        bytes: entry.bytes(),
        hint,
    })
}
