//! A hint log on disk: entries `(peer, seq) → (key, record)`, one FIFO per peer, in a fjall
//! `Database` of its own (`<root>/hints/core-NNN/`, keyspace `hints`: see
//! [`layout`](super::layout)). This is only the disk: which hints are kept, dropped or
//! replayed is `replication::hints`'s policy. Synchronous (plain fjall calls): the caller
//! keeps them off the client's path and batches them.
//!
//! An entry's fjall key is `peer (u16 BE) ‖ seq (u64 BE)`, so one peer's entries are
//! contiguous and in the order they were queued; its value is `key length (u16 BE) ‖ key ‖
//! record`, the record encoded as in the shards (`version ‖ flags ‖ [expires] ‖ value`, a
//! tombstone for a delete; never a promise). The unit tests pin these bytes: existing logs must stay readable.
//!
//! A separate `Database` and not a keyspace of the shards: a second keyspace in a shard's
//! `Database` would keep its journals alive until the hints flush (fjall frees a journal once
//! every keyspace in it flushed), and would share the shard's journal lock with its fsyncs.
//!
//! Must not import `http`, `api`, `replication` or `runtime`.

use std::ops::Range;
use std::path::{Path, PathBuf};

use fjall::{Database, Keyspace, KeyspaceCreateOptions, OwnedWriteBatch, Slice};

use super::layout::HINT_KEYSPACE;
use super::record::{Meta, RecordRef};
use super::{shard, Record, StorageError, Version};
use crate::limits;

/// An entry's fjall key: peer (u16) and sequence number (u64), big-endian.
const ENTRY_KEY_BYTES: usize = 2 + 8;

/// Where an entry sits: its peer's queue, and its sequence number there.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct EntryId {
    pub peer: usize,
    pub seq: u64,
}

/// A hint's content (key, version, value) encoded as it is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedHint(Vec<u8>);

impl EncodedHint {
    /// Encodes `(key, version, value, meta)`; `None` is a delete. The key is at most
    /// `KEY_BYTES_MAX` bytes (asserted to fit a u16 in limits).
    pub fn new(key: &[u8], version: Version, value: Option<&[u8]>, meta: Meta) -> EncodedHint {
        let mut record = Vec::new();
        RecordRef {
            version,
            value,
            meta,
            promise: Version::ZERO,
        }
        .encode_into(&mut record);
        let mut out = Vec::with_capacity(2 + key.len() + record.len());
        out.extend_from_slice(&(key.len() as u16).to_be_bytes());
        out.extend_from_slice(key);
        out.extend_from_slice(&record);
        EncodedHint(out)
    }

    /// The bytes its entry takes in the log (entry key and value).
    pub fn entry_bytes(&self) -> u64 {
        (ENTRY_KEY_BYTES + self.0.len()) as u64
    }
}

/// An entry read back from the log; its value is decoded on demand.
#[derive(Clone, Debug)]
pub struct Entry {
    id: EntryId,
    value: Slice,
}

impl Entry {
    pub fn id(&self) -> EntryId {
        self.id
    }

    /// The bytes it takes in the log (entry key and value).
    pub fn bytes(&self) -> u64 {
        (ENTRY_KEY_BYTES + self.value.len()) as u64
    }

    /// The hint's key and record.
    pub fn decode(&self) -> Result<(Vec<u8>, Record), StorageError> {
        let (len, rest) = self
            .value
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
        Ok((key.to_vec(), record.to_record()))
    }
}

/// One hint log's database.
pub struct HintLog {
    dir: PathBuf,
    db: Database,
    keyspace: Keyspace,
}

impl HintLog {
    /// Opens (or creates) the log in `dir` (see
    /// [`hint_log_dir`](super::layout::hint_log_dir)). Blocking.
    pub fn open(dir: &Path) -> Result<HintLog, StorageError> {
        std::fs::create_dir_all(dir).map_err(|source| StorageError::Io {
            what: "create directory",
            path: dir.display().to_string(),
            source,
        })?;
        let db = Database::builder(dir)
            .cache_size(limits::HINTS_CACHE_BYTES)
            .worker_threads(1)
            .max_journaling_size(limits::HINTS_JOURNAL_BYTES_MAX)
            .manual_journal_persist(false)
            .open()?;
        let keyspace = db.keyspace(HINT_KEYSPACE, || {
            KeyspaceCreateOptions::default().max_memtable_size(limits::HINTS_MEMTABLE_BYTES)
        })?;
        Ok(HintLog {
            dir: dir.to_path_buf(),
            db,
            keyspace,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether fjall is behind on flushing this log, so that a write could block the thread.
    pub fn backlogged(&self) -> bool {
        shard::flush_backlogged(&self.keyspace)
    }

    /// A batch of inserts and removals, written with one journal write at
    /// [`HintBatch::commit`].
    pub fn batch(&self) -> HintBatch<'_> {
        HintBatch {
            keyspace: &self.keyspace,
            batch: self.db.batch(),
        }
    }

    /// The entries of `peer` with a sequence number in `seqs`, oldest first.
    pub fn entries(
        &self,
        peer: usize,
        seqs: Range<u64>,
    ) -> impl Iterator<Item = Result<Entry, StorageError>> + '_ {
        let range = entry_key(peer, seqs.start)..entry_key(peer, seqs.end);
        self.keyspace.range(range).map(read_entry)
    }

    /// Every entry, in key order (peer, then age).
    pub fn all(&self) -> impl Iterator<Item = Result<Entry, StorageError>> + '_ {
        self.keyspace.iter().map(read_entry)
    }

    /// Closes the log and removes its directory (a log taken over by another core). Blocking.
    pub fn delete(self) -> Result<(), StorageError> {
        let dir = self.dir.clone();
        drop(self);
        std::fs::remove_dir_all(&dir).map_err(|source| StorageError::Io {
            what: "remove",
            path: dir.display().to_string(),
            source,
        })
    }
}

/// Inserts and removals to be written at once.
pub struct HintBatch<'a> {
    keyspace: &'a Keyspace,
    batch: OwnedWriteBatch,
}

impl HintBatch<'_> {
    pub fn insert(&mut self, id: EntryId, hint: EncodedHint) {
        self.batch
            .insert(self.keyspace, entry_key(id.peer, id.seq).to_vec(), hint.0);
    }

    pub fn remove(&mut self, id: EntryId) {
        self.batch
            .remove(self.keyspace, entry_key(id.peer, id.seq).to_vec());
    }

    /// Operations in the batch.
    pub fn len(&self) -> usize {
        self.batch.len()
    }

    pub fn is_empty(&self) -> bool {
        self.batch.is_empty()
    }

    /// Writes the batch (to the OS, not fsynced: see `replication::hints`).
    pub fn commit(self) -> Result<(), StorageError> {
        Ok(self.batch.commit()?)
    }
}

fn read_entry(guard: fjall::Guard) -> Result<Entry, StorageError> {
    let (key, value) = guard.into_inner()?;
    let id = match (key.first_chunk::<2>(), key.last_chunk::<8>()) {
        (Some(peer), Some(seq)) if key.len() == ENTRY_KEY_BYTES => EntryId {
            peer: u16::from_be_bytes(*peer) as usize,
            seq: u64::from_be_bytes(*seq),
        },
        _ => return Err(corrupt(format!("entry key of {} bytes", key.len()))),
    };
    Ok(Entry { id, value })
}

fn entry_key(peer: usize, seq: u64) -> [u8; ENTRY_KEY_BYTES] {
    let mut key = [0u8; ENTRY_KEY_BYTES];
    key[..2].copy_from_slice(&(peer as u16).to_be_bytes());
    key[2..].copy_from_slice(&seq.to_be_bytes());
    key
}

fn corrupt(detail: String) -> StorageError {
    StorageError::Corrupt {
        what: "hint",
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::store::test_dir::TempDir;

    const V: Version = Version {
        hlc: 0x0102,
        origin: 0x0304,
    };

    #[test]
    fn the_format_is_pinned() {
        assert_eq!(entry_key(2, 5), [0, 2, 0, 0, 0, 0, 0, 0, 0, 5]);
        let hint = EncodedHint::new(b"k", V, Some(b"v"), Meta::BLIND);
        let mut want = vec![0, 1, b'k'];
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0, 3, 4, 0, b'v']);
        assert_eq!(hint.0, want);
        assert_eq!(hint.entry_bytes(), 10 + 21);
        let delete = EncodedHint::new(b"k", V, None, Meta::BLIND);
        assert_eq!(delete.0.last(), Some(&1), "the tombstone flag");
    }

    #[test]
    fn entries_come_back_per_peer_in_order_across_a_reopen() {
        let dir = TempDir::new("hintlog-order");
        {
            let log = HintLog::open(dir.path()).expect("open");
            let mut batch = log.batch();
            for seq in 0..6 {
                let id = EntryId {
                    peer: 1 + (seq % 2) as usize,
                    seq,
                };
                let key = format!("key-{seq}");
                batch.insert(
                    id,
                    EncodedHint::new(key.as_bytes(), V, Some(b"x"), Meta::BLIND),
                );
            }
            assert_eq!(batch.len(), 6);
            batch.commit().expect("commit");
            let mut batch = log.batch();
            batch.remove(EntryId { peer: 1, seq: 2 });
            batch.commit().expect("commit");
        }
        let log = HintLog::open(dir.path()).expect("reopen");
        let seqs = |peer, range| -> Vec<u64> {
            log.entries(peer, range)
                .map(|e| e.expect("entry").id().seq)
                .collect()
        };
        assert_eq!(seqs(1, 0..u64::MAX), vec![0, 4]);
        assert_eq!(seqs(2, 0..u64::MAX), vec![1, 3, 5]);
        assert_eq!(seqs(2, 1..5), vec![1, 3]);
        let all: Vec<Entry> = log.all().map(|e| e.expect("entry")).collect();
        assert_eq!(all.len(), 5);
        let (key, record) = all[1].decode().expect("decode");
        assert_eq!((key, record.version), (b"key-4".to_vec(), V));
        assert_eq!(all[0].bytes(), 10 + 2 + 5 + 17 + 1);
    }

    #[test]
    fn malformed_entries_are_corrupt_not_panics() {
        let dir = TempDir::new("hintlog-corrupt");
        let log = HintLog::open(dir.path()).expect("open");
        log.keyspace.insert([0u8; 3], b"x").expect("insert");
        log.keyspace
            .insert(entry_key(1, 0), [0, 9, b'k'])
            .expect("insert");
        let entries: Vec<_> = log.all().collect();
        assert!(matches!(
            entries[0],
            Err(StorageError::Corrupt { what: "hint", .. })
        ));
        let entry = entries[1].as_ref().expect("a well-formed key");
        assert!(matches!(
            entry.decode(),
            Err(StorageError::Corrupt { what: "hint", .. })
        ));
        let dir_path = log.dir().to_path_buf();
        log.delete().expect("delete");
        assert!(!dir_path.exists());
    }
}
