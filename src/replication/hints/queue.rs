//! One core's hints on disk: a FIFO per peer in a fjall `Database` of its own
//! (`<root>/hints/core-NNN/`, keyspace `hints`), bounded in hints and in bytes per peer; when
//! a queue is full its oldest hints are dropped first. Synchronous (plain fjall calls): the
//! caller keeps them off the client's path and batches them.
//!
//! An entry's fjall key is `peer (u16 BE) ‖ seq (u64 BE)`, so one peer's hints are contiguous
//! and in the order they were queued; its value is `key length (u16 BE) ‖ key ‖ record`, the
//! record encoded as in the shards (`version ‖ flags ‖ value`, a tombstone for a delete).
//! The counts and byte sizes of the queues live in memory and are rebuilt by one scan at open.
//!
//! A separate `Database` and not a keyspace of the shards: a second keyspace in a shard's
//! `Database` would keep its journals alive until the hints flush (fjall frees a journal once
//! every keyspace in it flushed), and would share the shard's journal lock with its fsyncs.
//!
//! Must not import `http`, `api` or `runtime`.

use std::path::{Path, PathBuf};

use fjall::{Database, Keyspace, KeyspaceCreateOptions, OwnedWriteBatch as WriteBatch};

use super::HintError;
use crate::limits;
use crate::storage::record::{self, RecordRef};
use crate::storage::Version;

/// The one keyspace of a hints `Database`.
const KEYSPACE: &str = "hints";
/// An entry's fjall key: peer (u16) and sequence number (u64), big-endian.
const ENTRY_KEY_BYTES: usize = 2 + 8;
/// The prefix of a core's hints directory under `<root>/hints/`.
const CORE_DIR_PREFIX: &str = "core-";
/// Hints moved at once from a directory left by a core that no longer runs.
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
    /// Bytes of entries (fjall key and value).
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
    dir: PathBuf,
    db: Database,
    keyspace: Keyspace,
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
        std::fs::create_dir_all(dir).map_err(|source| HintError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let db = Database::builder(dir)
            .cache_size(limits::HINTS_CACHE_BYTES)
            .worker_threads(1)
            .max_journaling_size(limits::HINTS_JOURNAL_BYTES_MAX)
            .manual_journal_persist(false)
            .open()?;
        let keyspace = db.keyspace(KEYSPACE, || {
            KeyspaceCreateOptions::default().max_memtable_size(limits::HINTS_MEMTABLE_BYTES)
        })?;
        let mut queue = HintQueue {
            dir: dir.to_path_buf(),
            db,
            keyspace,
            is_peer: is_peer.to_vec(),
            peers: vec![PeerQueue::default(); is_peer.len()],
            bounds,
        };
        queue.rebuild()?;
        Ok(queue)
    }

    /// Opens core `core`'s queue under `<root>/hints/`, and moves into it the hints of the
    /// directories left by cores that no longer run (`core-K` with `K ≥ threads`, taken by
    /// core `K % threads`), removing them. Blocking; call it before the core serves.
    pub fn open_core(
        root: &Path,
        core: usize,
        threads: usize,
        is_peer: &[bool],
        bounds: Bounds,
    ) -> Result<(HintQueue, Appended), HintError> {
        let base = root.join(super::HINTS_DIR);
        let mut queue = HintQueue::open(&base.join(core_dir(core)), is_peer, bounds)?;
        let mut adopted = Appended::new(is_peer.len());
        for other in orphan_dirs(&base, core, threads)? {
            let old = HintQueue::open(&other, is_peer, bounds)?;
            for chunk in old.all()?.chunks(ADOPT_CHUNK_HINTS) {
                let hints = chunk.iter().map(|q| q.hint.clone()).collect();
                adopted.add(&queue.append(hints)?);
            }
            drop(old);
            std::fs::remove_dir_all(&other).map_err(|source| HintError::Io {
                path: other.display().to_string(),
                source,
            })?;
            tracing::info!(core, from = %other.display(), "took over the hints of a core that no longer runs");
        }
        Ok((queue, adopted))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Hints and bytes queued for `peer`.
    pub fn pending(&self, peer: usize) -> (u64, u64) {
        self.peers.get(peer).map_or((0, 0), |q| (q.hints, q.bytes))
    }

    /// Whether fjall is behind on flushing this queue, so that a write could block the thread.
    pub fn backlogged(&self) -> bool {
        let ks = &self.keyspace;
        ks.sealed_memtable_count() >= limits::SHARD_SEALED_MEMTABLES_MAX
            || ks.l0_table_count() >= limits::SHARD_L0_TABLES_MAX
    }

    /// Queues `hints` (each at the back of its peer's queue, in the given order) with one
    /// journal write, dropping the oldest hints of a full queue to make room. Hints for a
    /// member that is no peer are ignored.
    pub fn append(&mut self, hints: Vec<Hint>) -> Result<Appended, HintError> {
        let mut out = Appended::new(self.peers.len());
        let mut peers = self.peers.clone();
        let mut batch = self.db.batch();
        let mut encoded = Vec::new();
        for peer in (0..peers.len()).filter(|&p| self.is_peer[p]) {
            let mine: Vec<&Hint> = hints.iter().filter(|h| h.peer == peer).collect();
            if mine.is_empty() {
                continue;
            }
            encoded.clear();
            encoded.extend(mine.iter().map(|h| encode_value(h)));
            let keep_from = self.newest_that_fit(&encoded);
            out.dropped[peer] += keep_from as u64;
            let kept = &encoded[keep_from..];
            let kept_bytes = kept.iter().map(|e| entry_bytes(e)).sum();
            let q = &mut peers[peer];
            out.dropped[peer] +=
                self.make_room(peer, q, kept.len() as u64, kept_bytes, &mut batch)?;
            for value in kept {
                batch.insert(
                    &self.keyspace,
                    entry_key(peer, q.next).to_vec(),
                    value.clone(),
                );
                q.next += 1;
                q.hints += 1;
                q.bytes += entry_bytes(value);
            }
            out.stored[peer] += kept.len() as u64;
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
        let range = entry_key(peer, q.front)..entry_key(peer, q.next);
        for guard in self.keyspace.range(range).take(max) {
            let (key, value) = guard.into_inner()?;
            let seq = entry_seq(&key)?;
            let bytes = (key.len() + value.len()) as u64;
            match decode_value(peer, &value) {
                Ok(hint) => out.push(Queued { seq, bytes, hint }),
                Err(err) => {
                    tracing::warn!(%err, peer, seq, "dropping a hint that does not decode");
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
        let mut batch = self.db.batch();
        for &(seq, _) in done {
            batch.remove(&self.keyspace, entry_key(peer, seq).to_vec());
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
    /// taking over a small directory left behind, and for tests.
    pub fn all(&self) -> Result<Vec<Queued>, HintError> {
        let mut out = Vec::new();
        for guard in self.keyspace.iter() {
            let (key, value) = guard.into_inner()?;
            let (peer, seq) = (entry_peer(&key)?, entry_seq(&key)?);
            let hint = decode_value(peer, &value)?;
            let bytes = (key.len() + value.len()) as u64;
            out.push(Queued { seq, bytes, hint });
        }
        Ok(out)
    }

    /// The index of the first of `encoded` (new hints of one peer, oldest first) that is kept:
    /// the newest ones that fit the bounds on their own.
    fn newest_that_fit(&self, encoded: &[Vec<u8>]) -> usize {
        let (mut hints, mut bytes) = (0u64, 0u64);
        for (i, value) in encoded.iter().enumerate().rev() {
            let size = entry_bytes(value);
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
        batch: &mut WriteBatch,
    ) -> Result<u64, HintError> {
        let full = |q: &PeerQueue| {
            q.hints + hints > self.bounds.hints_max || q.bytes + bytes > self.bounds.bytes_max
        };
        let mut dropped = 0;
        if !full(q) {
            return Ok(0);
        }
        let range = entry_key(peer, q.front)..entry_key(peer, q.next);
        for guard in self.keyspace.range(range) {
            let (key, value) = guard.into_inner()?;
            batch.remove(&self.keyspace, key.clone());
            q.front = entry_seq(&key)? + 1;
            q.hints = q.hints.saturating_sub(1);
            q.bytes = q.bytes.saturating_sub((key.len() + value.len()) as u64);
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
        let mut stray = self.db.batch();
        let mut seen = vec![false; self.peers.len()];
        for guard in self.keyspace.iter() {
            let (key, value) = guard.into_inner()?;
            let (peer, seq) = (entry_peer(&key)?, entry_seq(&key)?);
            if !self.is_peer.get(peer).copied().unwrap_or(false) {
                stray.remove(&self.keyspace, key.clone());
                continue;
            }
            let q = &mut self.peers[peer];
            if !seen[peer] {
                seen[peer] = true;
                q.front = seq;
            }
            q.next = seq + 1;
            q.hints += 1;
            q.bytes += (key.len() + value.len()) as u64;
        }
        if !stray.is_empty() {
            tracing::info!(dir = %self.dir.display(), hints = stray.len(), "removing hints for members that are no peers");
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

fn core_dir(core: usize) -> String {
    format!("{CORE_DIR_PREFIX}{core:03}")
}

/// The directories under `base` of cores `K ≥ threads` with `K % threads == core`.
fn orphan_dirs(base: &Path, core: usize, threads: usize) -> Result<Vec<PathBuf>, HintError> {
    let io = |source| HintError::Io {
        path: base.display().to_string(),
        source,
    };
    let mut found = Vec::new();
    for entry in std::fs::read_dir(base).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        let number = name
            .to_str()
            .and_then(|n| n.strip_prefix(CORE_DIR_PREFIX))
            .and_then(|n| n.parse::<usize>().ok());
        if let Some(k) = number {
            if k >= threads && k % threads == core {
                found.push(entry.path());
            }
        }
    }
    found.sort();
    Ok(found)
}

fn entry_key(peer: usize, seq: u64) -> [u8; ENTRY_KEY_BYTES] {
    let mut key = [0u8; ENTRY_KEY_BYTES];
    key[..2].copy_from_slice(&(peer as u16).to_be_bytes());
    key[2..].copy_from_slice(&seq.to_be_bytes());
    key
}

fn entry_peer(key: &[u8]) -> Result<usize, HintError> {
    match key.first_chunk::<2>() {
        Some(p) if key.len() == ENTRY_KEY_BYTES => Ok(u16::from_be_bytes(*p) as usize),
        _ => Err(corrupt(format!("entry key of {} bytes", key.len()))),
    }
}

fn entry_seq(key: &[u8]) -> Result<u64, HintError> {
    match key.last_chunk::<8>() {
        Some(s) if key.len() == ENTRY_KEY_BYTES => Ok(u64::from_be_bytes(*s)),
        _ => Err(corrupt(format!("entry key of {} bytes", key.len()))),
    }
}

/// The bytes an entry with this value takes in its queue's bound.
fn entry_bytes(value: &[u8]) -> u64 {
    (ENTRY_KEY_BYTES + value.len()) as u64
}

fn encode_value(hint: &Hint) -> Vec<u8> {
    // Keys are at most KEY_BYTES_MAX (asserted to fit a u16 in limits).
    let mut record = Vec::new();
    record::encode_into(hint.version, hint.value.as_deref(), &mut record);
    let mut out = Vec::with_capacity(2 + hint.key.len() + record.len());
    out.extend_from_slice(&(hint.key.len() as u16).to_be_bytes());
    out.extend_from_slice(&hint.key);
    out.extend_from_slice(&record);
    out
}

fn decode_value(peer: usize, bytes: &[u8]) -> Result<Hint, HintError> {
    let (len, rest) = bytes
        .split_first_chunk::<2>()
        .ok_or_else(|| corrupt("entry shorter than its key length".into()))?;
    let len = u16::from_be_bytes(*len) as usize;
    if rest.len() < len || len == 0 {
        return Err(corrupt(format!(
            "key of {len} bytes in {} bytes",
            rest.len()
        )));
    }
    let (key, rest) = rest.split_at(len);
    let record = RecordRef::decode(rest).map_err(|e| corrupt(e.to_string()))?;
    Ok(Hint {
        peer,
        key: key.to_vec(),
        version: record.version,
        value: record.value.map(<[u8]>::to_vec),
    })
}

fn corrupt(detail: String) -> HintError {
    HintError::Corrupt { detail }
}
