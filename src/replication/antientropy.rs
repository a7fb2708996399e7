//! Anti-entropy (DESIGN §6): replicas converge after a partition heals or a node was down,
//! without shipping everything. Records fall into [`BUCKETS`] buckets by key hash (the same on
//! every node, whatever its shard count); a bucket's digest is the wrapping sum of a 64-bit
//! hash of each `(key, version)` in it, tombstones included, with its record count. One task
//! per node ([`run`], on one core) asks each peer for its digests, periodically and as soon as
//! a link comes up, lists the `(key, version)`s of the differing buckets on both sides, reads
//! each record the peer holds newer and stores it here with `COPY`, which stores only what is
//! newer and never counts toward a quorum (I7), so anti-entropy is safe whatever it races.
//!
//! Each node repairs only itself (it pulls; it never pushes): every node runs passes with
//! every peer, so a record missing anywhere is still copied, and it is copied once. Repairing
//! both ways made a restarted node receive each missed record three times at once (its own
//! pull and both peers' pushes, measured); pulling is also what a node recovering from a
//! machine crash, or joining, needs (DESIGN §4, §7): it knows when it has copied from whom.
//!
//! [`AntiEntropy`] is the node-wide part (`Send + Sync`, one per node): it answers peers'
//! questions from scans of the store made off the event loop ([`scan`]), keeps the last
//! digest scan (reused while the store has not changed since, so an idle cluster compares
//! without scanning), and holds the counters ([`AntiEntropyStats`]). The decisions are
//! pure functions in [`plan`]; the pass itself, with its bounds, is in `pass`.
//!
//! Must not import `http` or `api`.

mod pass;
pub mod plan;
pub mod scan;

pub use pass::{full_pull, run, PullError};

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::limits::{
    ANTI_ENTROPY_DIGESTS_POLL_MS, ANTI_ENTROPY_DIGESTS_WAIT_MS, ANTI_ENTROPY_INTERVAL_MS,
    ANTI_ENTROPY_PAGE_BYTES_MAX, ANTI_ENTROPY_PAGE_SCANS_MAX, ANTI_ENTROPY_PAGE_SCAN_RECORDS_MAX,
    ANTI_ENTROPY_ROUND_ENTRIES_HARD_MAX,
};
use crate::limits::{LIST_LIMIT_MAX, LIST_PAGE_BYTES_MAX, LIST_SCANS_MAX};
use crate::replication::protocol::{BucketDigest, KeyVersion, ReplicaReply, SyncRequest, BUCKETS};
use crate::storage::range::{KeyRange, RangePage};
use crate::storage::scan::ScanCursor;
use crate::storage::{Store, Version};

use scan::{DigestSum, KeyList, ScanError};

/// The bucket of a key, from its stable hash (`storage::store::key_hash`).
pub fn bucket_of(key_hash: u64) -> u32 {
    (key_hash % u64::from(BUCKETS)) as u32
}

/// The 64-bit hash of one record `(key, version)` that bucket digests sum. Stable across
/// nodes, platforms and releases (a unit test pins it): digests of two nodes are compared.
pub fn entry_hash(key_hash: u64, version: Version) -> u64 {
    fmix64(key_hash ^ fmix64(version.hlc ^ fmix64(version.origin ^ ENTRY_SEED)))
}

/// Keeps `(key, ZERO)`-like inputs from hashing to the key hash's neighbourhood.
const ENTRY_SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// murmur3's 64-bit finalizer.
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// A set of buckets, as a bitmap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketSet([u64; BUCKETS as usize / 64]);

const _: () = assert!(BUCKETS % 64 == 0 && BUCKETS > 0);

impl BucketSet {
    /// The set of `buckets`; those out of range are left out.
    pub fn of(buckets: &[u32]) -> BucketSet {
        let mut set = BucketSet([0; BUCKETS as usize / 64]);
        for &b in buckets.iter().filter(|&&b| b < BUCKETS) {
            set.0[b as usize / 64] |= 1 << (b % 64);
        }
        set
    }

    pub fn contains(&self, bucket: u32) -> bool {
        bucket < BUCKETS && self.0[bucket as usize / 64] & (1 << (bucket % 64)) != 0
    }
}

/// Progress of anti-entropy on this node, for metrics and the log.
#[derive(Debug, Default)]
pub struct AntiEntropyStats {
    pub passes: AtomicU64,
    pub passes_failed: AtomicU64,
    pub buckets_compared: AtomicU64,
    pub buckets_differing: AtomicU64,
    /// Records this node took from a peer (newer there).
    pub keys_copied_in: AtomicU64,
    /// Records a peer lacked (newer here); it takes them in its own passes.
    pub keys_peer_behind: AtomicU64,
    pub bytes_copied: AtomicU64,
    pub copies_failed: AtomicU64,
    /// Copies a CAS promise above their version refused (DESIGN §10).
    pub copies_refused: AtomicU64,
    /// Consensus reads run for old promises that refused a copy.
    pub promises_settled: AtomicU64,
    /// Differences left for a later pass because the newer version was still young.
    pub young_skipped: AtomicU64,
    pub digest_scans: AtomicU64,
    pub pages_served: AtomicU64,
    /// Peers' questions not answered (scan busy, bad cursor, storage error).
    pub requests_refused: AtomicU64,
    /// When the last pass ended (Unix milliseconds; 0: none yet), and how long it took.
    pub last_pass_unix_ms: AtomicU64,
    pub last_pass_duration_ms: AtomicU64,
}

/// A copy of [`AntiEntropyStats`] at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct AntiEntropySnapshot {
    pub passes: u64,
    pub passes_failed: u64,
    pub buckets_compared: u64,
    pub buckets_differing: u64,
    pub keys_copied_in: u64,
    pub keys_peer_behind: u64,
    pub bytes_copied: u64,
    pub copies_failed: u64,
    pub copies_refused: u64,
    pub promises_settled: u64,
    pub young_skipped: u64,
    pub digest_scans: u64,
    pub pages_served: u64,
    pub requests_refused: u64,
    pub last_pass_unix_ms: u64,
    pub last_pass_duration_ms: u64,
}

impl AntiEntropyStats {
    pub fn snapshot(&self) -> AntiEntropySnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        AntiEntropySnapshot {
            passes: get(&self.passes),
            passes_failed: get(&self.passes_failed),
            buckets_compared: get(&self.buckets_compared),
            buckets_differing: get(&self.buckets_differing),
            keys_copied_in: get(&self.keys_copied_in),
            keys_peer_behind: get(&self.keys_peer_behind),
            bytes_copied: get(&self.bytes_copied),
            copies_failed: get(&self.copies_failed),
            copies_refused: get(&self.copies_refused),
            promises_settled: get(&self.promises_settled),
            young_skipped: get(&self.young_skipped),
            digest_scans: get(&self.digest_scans),
            pages_served: get(&self.pages_served),
            requests_refused: get(&self.requests_refused),
            last_pass_unix_ms: get(&self.last_pass_unix_ms),
            last_pass_duration_ms: get(&self.last_pass_duration_ms),
        }
    }
}

/// The last digest scan, and whether one is running.
#[derive(Default)]
struct DigestCache {
    last: Option<LastScan>,
    scanning: bool,
}

struct LastScan {
    /// When the scan started: it shows every write done before then (and maybe later ones).
    started: Instant,
    /// The store's generation just before the scan: while it is unchanged, nothing was
    /// written since, and the digests are exact.
    generation: u64,
    digests: Arc<Vec<BucketDigest>>,
}

/// The node-wide part of anti-entropy. One per node, shared by every core.
pub struct AntiEntropy {
    store: Arc<Store>,
    passes_on: bool,
    stats: AntiEntropyStats,
    digests: Mutex<DigestCache>,
    page_scans: AtomicUsize,
    /// Range scans (listings) running.
    range_scans: AtomicUsize,
    interval_ms: AtomicU64,
}

impl AntiEntropy {
    /// `passes_on`: whether this node runs passes (it answers peers either way).
    pub fn new(store: Arc<Store>, passes_on: bool) -> AntiEntropy {
        AntiEntropy {
            store,
            passes_on,
            stats: AntiEntropyStats::default(),
            digests: Mutex::new(DigestCache::default()),
            page_scans: AtomicUsize::new(0),
            range_scans: AtomicUsize::new(0),
            interval_ms: AtomicU64::new(ANTI_ENTROPY_INTERVAL_MS),
        }
    }

    /// The interval between passes with one peer (`MOSTDB_ANTI_ENTROPY_INTERVAL_MS`), from
    /// the next pass on.
    pub fn set_interval_ms(&self, interval_ms: u64) {
        self.interval_ms.store(interval_ms, Ordering::Relaxed);
    }

    pub fn interval(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.interval_ms.load(Ordering::Relaxed))
    }

    pub fn passes_on(&self) -> bool {
        self.passes_on
    }

    pub fn stats(&self) -> &AntiEntropyStats {
        &self.stats
    }

    /// Answers a peer's question; `None` when it cannot now (the peer asks again later).
    pub async fn serve(&self, request: SyncRequest) -> Option<ReplicaReply> {
        let asked = Instant::now();
        let answer = match request {
            SyncRequest::Digests => self.digests(asked).await.map(|d| ReplicaReply::Digests {
                buckets: d.to_vec(),
            }),
            SyncRequest::BucketKeys { buckets, cursor } => self.page(&buckets, &cursor).await,
            SyncRequest::Range { range, limit } => self
                .range(&range, limit as usize)
                .await
                .map(ReplicaReply::RangePage),
            // The node's state is not anti-entropy's to tell (the server answers it).
            SyncRequest::Status | SyncRequest::View => return None,
        };
        match answer {
            Ok(reply) => Some(reply),
            Err(err) => {
                self.stats.requests_refused.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%err, "anti-entropy question not answered");
                None
            }
        }
    }

    /// Every bucket's digest, showing at least every write done before `not_before`: the last
    /// scan's if it started after that or nothing was written since, else a new scan (one at a
    /// time per node; a request meanwhile waits for it).
    pub async fn digests(&self, not_before: Instant) -> Result<Arc<Vec<BucketDigest>>, ScanError> {
        let waited = Instant::now();
        let wait_max = Duration::from_millis(ANTI_ENTROPY_DIGESTS_WAIT_MS);
        let generation = loop {
            let generation = self.store.generation();
            {
                let mut cache = self.digests.lock().unwrap_or_else(PoisonError::into_inner);
                match &cache.last {
                    Some(last) if last.started >= not_before || last.generation == generation => {
                        return Ok(last.digests.clone())
                    }
                    _ if !cache.scanning => {
                        cache.scanning = true;
                        break generation;
                    }
                    _ => {}
                }
            }
            if waited.elapsed() > wait_max {
                return Err(ScanError::DigestsBusy {
                    waited_ms: ANTI_ENTROPY_DIGESTS_WAIT_MS,
                });
            }
            monoio::time::sleep(Duration::from_millis(ANTI_ENTROPY_DIGESTS_POLL_MS)).await;
        };
        let _scanning = ScanningFlag(&self.digests);
        let started = Instant::now();
        let (sum, _) =
            scan::scan(&self.store, ScanCursor::START, DigestSum::new(), usize::MAX).await?;
        self.stats.digest_scans.fetch_add(1, Ordering::Relaxed);
        let took_ms = started.elapsed().as_millis() as u64;
        tracing::debug!(took_ms, "anti-entropy digests scanned");
        let digests = Arc::new(sum.buckets);
        let mut cache = self.digests.lock().unwrap_or_else(PoisonError::into_inner);
        cache.last = Some(LastScan {
            started,
            generation,
            digests: digests.clone(),
        });
        Ok(digests)
    }

    /// One page of a peer's key listing.
    async fn page(&self, buckets: &[u32], cursor: &[u8]) -> Result<ReplicaReply, ScanError> {
        let from = scan::decode_cursor(cursor, self.store.shard_count())?;
        let running = self.page_scans.fetch_add(1, Ordering::AcqRel);
        let _slot = PageSlot(&self.page_scans);
        if running >= ANTI_ENTROPY_PAGE_SCANS_MAX {
            return Err(ScanError::PagesBusy { running });
        }
        let list = KeyList::new(
            BucketSet::of(buckets),
            ANTI_ENTROPY_PAGE_BYTES_MAX,
            usize::MAX,
        );
        let records = ANTI_ENTROPY_PAGE_SCAN_RECORDS_MAX;
        let (list, next) = scan::scan(&self.store, from, list, records).await?;
        self.stats.pages_served.fetch_add(1, Ordering::Relaxed);
        Ok(ReplicaReply::KeyPage {
            entries: list.entries,
            next: next.map(|c| scan::encode_cursor(&c)),
        })
    }

    /// One page of this node's records in `range` (a listing, DESIGN §11), with values and
    /// tombstones, scanned on the blocking pool; at most `LIST_SCANS_MAX` at once per node.
    pub async fn range(&self, range: &KeyRange, limit: usize) -> Result<RangePage, ScanError> {
        let running = self.range_scans.fetch_add(1, Ordering::AcqRel);
        let _slot = PageSlot(&self.range_scans);
        if running >= LIST_SCANS_MAX {
            return Err(ScanError::RangesBusy { running });
        }
        let (store, range) = (self.store.clone(), range.clone());
        let limit = limit.clamp(1, LIST_LIMIT_MAX);
        monoio::spawn_blocking(move || store.scan_range(&range, limit, LIST_PAGE_BYTES_MAX, true))
            .await
            .map_err(|_| ScanError::Pool)?
            .map_err(ScanError::from)
    }

    /// This node's entries in `buckets` (a round of a pass), at most
    /// `ANTI_ENTROPY_ROUND_ENTRIES_HARD_MAX`.
    async fn local_entries(&self, buckets: &[u32]) -> Result<Vec<KeyVersion>, ScanError> {
        let max = ANTI_ENTROPY_ROUND_ENTRIES_HARD_MAX;
        let list = KeyList::new(BucketSet::of(buckets), usize::MAX, max);
        match scan::scan(&self.store, ScanCursor::START, list, usize::MAX).await? {
            (list, None) => Ok(list.entries),
            (_, Some(_)) => Err(ScanError::RoundTooLarge { max }),
        }
    }
}

/// Clears the "digest scan running" flag when the scan ends, however it ends.
struct ScanningFlag<'a>(&'a Mutex<DigestCache>);

impl Drop for ScanningFlag<'_> {
    fn drop(&mut self) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .scanning = false;
    }
}

/// Gives back a key-page scan slot.
struct PageSlot<'a>(&'a AtomicUsize);

impl Drop for PageSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests;
