//! Full scans of a node's store for anti-entropy, off the event loop: the store is read in
//! chunks of [`ANTI_ENTROPY_SCAN_CHUNK_RECORDS`] records (pages of `(key, version)` from
//! [`Store::scan_page`]) on the core's blocking pool (which also runs the group commits'
//! fsyncs, so none waits longer than one chunk), with a pause between chunks as long as the
//! chunk took, so client traffic keeps priority. A scan is resumable from a [`ScanCursor`]: no
//! snapshot is held across pages or pauses (records changed meanwhile are seen or not; the
//! next pass compares again). Must not import `http`, `api` or `runtime`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::limits::{
    ANTI_ENTROPY_SCAN_CHUNK_RECORDS, ANTI_ENTROPY_SCAN_PAUSE_MIN_MS,
    ANTI_ENTROPY_SCAN_PAUSE_PERCENT,
};
use crate::replication::protocol::{BucketDigest, KeyVersion, BUCKETS};
use crate::storage::scan::ScanCursor;
use crate::storage::{StorageError, Store, Version};

use super::{bucket_of, entry_hash, BucketSet};

/// Why a scan did not give an answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    #[error("storage: {source}")]
    Storage {
        #[from]
        source: StorageError,
    },
    #[error("the blocking pool dropped the scan")]
    Pool,
    #[error("a digest scan was already running and did not finish within {waited_ms} ms")]
    DigestsBusy { waited_ms: u64 },
    #[error("{running} key-page scans are already running")]
    PagesBusy { running: usize },
    #[error("{running} range scans (listings) are already running")]
    RangesBusy { running: usize },
    #[error("the scan cursor {detail}")]
    BadCursor { detail: &'static str },
    #[error("a round listed more than {max} entries")]
    RoundTooLarge { max: usize },
}

/// A cursor's bytes, opaque to the peer that echoes them back: empty for the start, else
/// `shard: u32 BE` ‖ `1` ‖ key, or `shard` ‖ `0` for a shard's start.
pub fn encode_cursor(cursor: &ScanCursor) -> Vec<u8> {
    if *cursor == ScanCursor::START {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(5 + cursor.after.as_ref().map_or(0, Vec::len));
    out.extend_from_slice(&cursor.shard.to_be_bytes());
    match &cursor.after {
        Some(key) => {
            out.push(1);
            out.extend_from_slice(key);
        }
        None => out.push(0),
    }
    out
}

/// Decodes a cursor from [`encode_cursor`] for a store of `shards` shards.
pub fn decode_cursor(bytes: &[u8], shards: u32) -> Result<ScanCursor, ScanError> {
    if bytes.is_empty() {
        return Ok(ScanCursor::START);
    }
    let bad = |detail| ScanError::BadCursor { detail };
    let (shard, rest) = bytes.split_first_chunk::<4>().ok_or(bad("is too short"))?;
    let shard = u32::from_be_bytes(*shard);
    if shard >= shards {
        return Err(bad("names a shard this node does not have"));
    }
    let after = match rest.split_first() {
        Some((0, [])) => None,
        Some((1, key)) => Some(key.to_vec()),
        _ => return Err(bad("is malformed")),
    };
    Ok(ScanCursor { shard, after })
}

/// What a scan does with each record it reads. Runs on a blocking thread.
pub trait Visitor: Send + 'static {
    /// Takes one record; `true` ends the scan after it.
    fn visit(&mut self, key: &[u8], version: Version) -> bool;
}

/// The digest and count of every bucket.
pub struct DigestSum {
    pub buckets: Vec<BucketDigest>,
}

impl DigestSum {
    pub fn new() -> DigestSum {
        DigestSum {
            buckets: vec![BucketDigest::default(); BUCKETS as usize],
        }
    }

    pub fn add(&mut self, key: &[u8], version: Version) {
        let hash = crate::storage::store::key_hash(key);
        let bucket = &mut self.buckets[bucket_of(hash) as usize];
        bucket.digest = bucket.digest.wrapping_add(entry_hash(hash, version));
        bucket.records += 1;
    }
}

impl Default for DigestSum {
    fn default() -> DigestSum {
        DigestSum::new()
    }
}

impl Visitor for DigestSum {
    fn visit(&mut self, key: &[u8], version: Version) -> bool {
        self.add(key, version);
        false
    }
}

/// The entries of some buckets, until `bytes_max` encoded bytes or `entries_max` entries.
pub struct KeyList {
    set: BucketSet,
    pub entries: Vec<KeyVersion>,
    bytes: usize,
    bytes_max: usize,
    entries_max: usize,
}

impl KeyList {
    pub fn new(set: BucketSet, bytes_max: usize, entries_max: usize) -> KeyList {
        KeyList {
            set,
            entries: Vec::new(),
            bytes: 0,
            bytes_max,
            entries_max,
        }
    }
}

impl Visitor for KeyList {
    fn visit(&mut self, key: &[u8], version: Version) -> bool {
        let hash = crate::storage::store::key_hash(key);
        if !self.set.contains(bucket_of(hash)) {
            return false;
        }
        self.entries.push(KeyVersion {
            key: key.to_vec(),
            version,
        });
        self.bytes += key.len() + crate::replication::peer::frame::KEY_PAGE_ENTRY_OVERHEAD_BYTES;
        self.bytes >= self.bytes_max || self.entries.len() >= self.entries_max
    }
}

/// How one chunk ended.
#[derive(Debug)]
pub struct ChunkEnd {
    pub read: usize,
    /// Records that did not decode (skipped; the shard's own reads report them).
    pub corrupt: usize,
    /// The visitor asked to stop.
    pub stopped: bool,
    /// Where to go on; `None`: the whole store was read.
    pub next: Option<ScanCursor>,
}

/// Reads up to `records_max` records from `from` on (blocking), each given to `visitor`.
pub fn scan_chunk(
    store: &Store,
    from: ScanCursor,
    records_max: usize,
    visitor: &mut impl Visitor,
) -> Result<ChunkEnd, StorageError> {
    let (mut read, mut corrupt) = (0, 0);
    let mut cursor = from;
    loop {
        let page = store.scan_page(&cursor, records_max - read)?;
        read += page.read;
        corrupt += page.corrupt;
        for (key, version) in page.entries {
            if visitor.visit(&key, version) {
                let next = ScanCursor {
                    shard: page.shard,
                    after: Some(key.to_vec()),
                };
                return Ok(ChunkEnd {
                    read,
                    corrupt,
                    stopped: true,
                    next: Some(next),
                });
            }
        }
        match page.next {
            Some(next) if read < records_max => cursor = next,
            next => {
                return Ok(ChunkEnd {
                    read,
                    corrupt,
                    stopped: false,
                    next,
                })
            }
        }
    }
}

/// Scans from `from` in chunks on the blocking pool, pausing between them, until the store
/// ends, the visitor stops, or `records_max` records were read. Returns the visitor and where
/// to go on (`None`: the store's end).
pub async fn scan<V: Visitor>(
    store: &Arc<Store>,
    from: ScanCursor,
    visitor: V,
    records_max: usize,
) -> Result<(V, Option<ScanCursor>), ScanError> {
    let (mut visitor, mut cursor, mut left) = (visitor, from, records_max);
    let mut corrupt = 0;
    let end = loop {
        let chunk = left.min(ANTI_ENTROPY_SCAN_CHUNK_RECORDS);
        let started = Instant::now();
        let job_store = store.clone();
        let (back, result) = monoio::spawn_blocking(move || {
            let mut visitor = visitor;
            let result = scan_chunk(&job_store, cursor, chunk, &mut visitor);
            (visitor, result)
        })
        .await
        .map_err(|_| ScanError::Pool)?;
        visitor = back;
        let end = result?;
        corrupt += end.corrupt;
        left = left.saturating_sub(end.read);
        match end.next {
            Some(next) if !end.stopped && left > 0 => cursor = next,
            next => break next,
        }
        monoio::time::sleep(pause_after(started.elapsed())).await;
    };
    if corrupt > 0 {
        tracing::warn!(
            corrupt,
            "anti-entropy scan skipped records that do not decode"
        );
    }
    Ok((visitor, end))
}

/// The pause after a chunk that took `busy`.
pub(crate) fn pause_after(busy: Duration) -> Duration {
    let paced = busy.saturating_mul(ANTI_ENTROPY_SCAN_PAUSE_PERCENT as u32) / 100;
    paced.max(Duration::from_millis(ANTI_ENTROPY_SCAN_PAUSE_MIN_MS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_bad_ones_are_refused() {
        let cases = [
            ScanCursor::START,
            ScanCursor {
                shard: 3,
                after: None,
            },
            ScanCursor {
                shard: 3,
                after: Some(vec![]),
            },
            ScanCursor {
                shard: 1,
                after: Some(b"key".to_vec()),
            },
        ];
        for cursor in cases {
            assert_eq!(decode_cursor(&encode_cursor(&cursor), 4).unwrap(), cursor);
        }
        assert_eq!(encode_cursor(&ScanCursor::START), Vec::<u8>::new());
        let far = ScanCursor {
            shard: 4,
            after: None,
        };
        assert!(matches!(
            decode_cursor(&encode_cursor(&far), 4),
            Err(ScanError::BadCursor { .. })
        ));
        for bad in [
            &[0u8, 0, 0][..],
            &[0, 0, 0, 0],
            &[0, 0, 0, 0, 2],
            &[0, 0, 0, 0, 0, 9],
        ] {
            assert!(decode_cursor(bad, 4).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn pauses_follow_the_work_done() {
        assert_eq!(
            pause_after(Duration::ZERO),
            Duration::from_millis(ANTI_ENTROPY_SCAN_PAUSE_MIN_MS)
        );
        let busy = Duration::from_millis(40);
        assert_eq!(
            pause_after(busy),
            busy * ANTI_ENTROPY_SCAN_PAUSE_PERCENT as u32 / 100
        );
    }
}
