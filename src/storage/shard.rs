//! A shard as its owner core sees it: the replica's atomic compare-and-write, reads, async
//! backpressure, and (under `MOSTDB_SYNC=always`) group-committed fsyncs off the loop.
//!
//! [`Shard`] is `!Send`: it lives on the one core that owns the shard, in a monoio runtime
//! with the timer enabled and a blocking thread pool attached
//! (`attach_thread_pool(Box::new(monoio::blocking::DefaultThreadPool::new(1)))`); without the
//! pool, `SyncMode::Always` panics on its first fsync. Because only this core touches the
//! shard and [`Shard::write_if_newer`] does not await between its compare and its insert,
//! the compare-and-write needs no lock.
//!
//! Must not import `http`, `api`, `replication` or `runtime`.

use super::record::{Meta, RecordRef};
use super::rule::{self, Held, PrepareOutcome, WriteOutcome};
use super::store::ShardDb;
use super::{Record, StorageError, Version};
use crate::config::SyncMode;
use crate::limits;
use crate::metrics::{FsyncHistogram, HistogramSample, FSYNC_BUCKETS};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use futures_channel::oneshot;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Cheap counters and gauges for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShardStats {
    /// fjall's approximate item count (tombstones and not-yet-compacted overwrites included).
    pub approximate_keys: u64,
    /// Bytes of the shard's tables on disk (journals not included).
    pub disk_bytes: u64,
    pub sealed_memtables: u64,
    pub l0_tables: u64,
    /// Versions stored (`Stored` outcomes).
    pub writes: u64,
    /// fsyncs completed by the group commit (`SyncMode::Always` only).
    pub fsyncs: u64,
    /// Writes that had to wait for the flush backlog at least once.
    pub stalled_writes: u64,
    /// Writes that gave up on the backlog with [`StorageError::Busy`].
    pub busy_writes: u64,
    /// How long the group commit's fsyncs took.
    pub fsync_seconds: HistogramSample<FSYNC_BUCKETS>,
}

pub struct Shard {
    db: ShardDb,
    sync: SyncMode,
    state: Rc<SyncState>,
    /// The encoding buffer of every write, reused (borrowed only between awaits).
    scratch: RefCell<Vec<u8>>,
    writes: Cell<u64>,
    stalled_writes: Cell<u64>,
    busy_writes: Cell<u64>,
    /// Who waits for the next store of a key (watches, DESIGN §11).
    watchers: RefCell<HashMap<Vec<u8>, Vec<oneshot::Sender<()>>>>,
}

/// Group-commit bookkeeping. Every insert takes the next ticket; an fsync that starts after
/// ticket `t` was inserted makes every ticket `≤ t` durable.
#[derive(Default)]
struct SyncState {
    /// Tickets handed out: inserts done.
    written: Cell<u64>,
    /// Every ticket up to this one is durable.
    synced: Cell<u64>,
    /// An fsync is running and holds fjall's journal mutex: an insert now would block the loop.
    syncing: Cell<bool>,
    /// A sync round is spawned and has not finished.
    round_pending: Cell<bool>,
    fsyncs: Cell<u64>,
    fsync_seconds: FsyncHistogram,
    /// Tasks waiting for a round to finish; all are woken when one does.
    waiters: RefCell<Vec<Waker>>,
}

impl Shard {
    /// Wraps a shard's handles for its owner core (call it on that core).
    pub fn new(db: ShardDb, sync: SyncMode) -> Shard {
        Shard {
            db,
            sync,
            state: Rc::new(SyncState::default()),
            scratch: RefCell::new(Vec::new()),
            writes: Cell::new(0),
            stalled_writes: Cell::new(0),
            busy_writes: Cell::new(0),
            watchers: RefCell::default(),
        }
    }

    pub fn index(&self) -> u32 {
        self.db.index()
    }

    /// The record held for `key`, tombstones included. Under `SyncMode::Always` it is
    /// returned only once it is durable (DESIGN §4: a READ answer must not show a version a
    /// restart could forget).
    pub async fn read(&self, key: &[u8]) -> Result<Option<Record>, StorageError> {
        check_key(key)?;
        let (record, ticket) = {
            let held = self.db.keyspace().get(key)?;
            let record = held.as_deref().map(RecordRef::decode).transpose()?;
            // Whatever was visible was inserted with a ticket ≤ this one.
            (record.map(|r| r.to_record()), self.state.written.get())
        };
        self.wait_durable(ticket).await;
        Ok(record)
    }

    /// The replica's compare-and-write of a plain record (blind, no expiry): see [`Shard::write`].
    pub async fn write_if_newer(
        &self,
        key: &[u8],
        version: Version,
        value: Option<&[u8]>,
    ) -> Result<WriteOutcome, StorageError> {
        self.write(key, version, value, Meta::BLIND).await
    }

    /// The replica's compare-and-write: stores `(version, value, meta)` (`value: None` = a
    /// tombstone) as the store rule ([`rule::compare`]) says, against the held version and
    /// promise (an absent key holds [`Version::ZERO`]). Answers only once the outcome is as
    /// durable as the sync mode promises.
    pub async fn write(
        &self,
        key: &[u8],
        version: Version,
        value: Option<&[u8]>,
        meta: Meta,
    ) -> Result<WriteOutcome, StorageError> {
        check_key(key)?;
        self.wait_until_writable().await?;
        if meta != Meta::BLIND {
            self.mark_cas_records().await?;
        }
        let bytes = key.len() + value.map_or(0, <[u8]>::len) + limits::RECORD_OVERHEAD_BYTES;
        if !self.db.space().admits(bytes) {
            return Err(StorageError::NoSpace);
        }
        // No await from here to the insert: on the owner core this makes it atomic.
        let held = match self.db.keyspace().get(key)? {
            Some(bytes) => Held::of(Some(&RecordRef::decode(&bytes)?), self.floor()),
            None => Held::of(None, self.floor()),
        };
        let outcome = rule::compare(held, version);
        if outcome == WriteOutcome::Stored {
            // Stored at or above the promise: the version is the promise now.
            let record = RecordRef {
                version,
                value,
                meta,
                promise: Version::ZERO,
            };
            self.insert(key, &record)?;
            self.wake(key);
            self.db.feed().record(key, version);
        }
        // Same and Newer reveal the held version, which may itself still be unsynced.
        let ticket = self.state.written.get();
        self.wait_durable(ticket).await;
        Ok(outcome)
    }

    /// A CAS's PREPARE of `ballot` (DESIGN §10): raises the key's promise to it as the
    /// PREPARE rule ([`rule::prepare`]) says, and answers with the outcome and the record held
    /// (`None`: absent), once the promise is as durable as the sync mode promises (I14: a
    /// promise is a vote).
    pub async fn prepare(
        &self,
        key: &[u8],
        ballot: Version,
    ) -> Result<(PrepareOutcome, Option<Record>), StorageError> {
        check_key(key)?;
        self.wait_until_writable().await?;
        self.mark_cas_records().await?;
        if !self
            .db
            .space()
            .admits(key.len() + limits::RECORD_OVERHEAD_BYTES)
        {
            return Err(StorageError::NoSpace);
        }
        // No await from here to the insert, as in `write`.
        let held_bytes = self.db.keyspace().get(key)?;
        let record = held_bytes.as_deref().map(RecordRef::decode).transpose()?;
        let outcome = rule::prepare(Held::of(record.as_ref(), self.floor()), ballot);
        if outcome == PrepareOutcome::Promise {
            // The same record (or, on an absent key, a tombstone at the zero version) under the
            // new promise.
            let promised = match &record {
                Some(r) => RecordRef {
                    promise: ballot,
                    ..*r
                },
                None => RecordRef {
                    version: Version::ZERO,
                    value: None,
                    meta: Meta::BLIND,
                    promise: ballot,
                },
            };
            self.insert(key, &promised)?;
        }
        let held = record.map(|r| r.to_record());
        let ticket = self.state.written.get();
        self.wait_durable(ticket).await;
        Ok((outcome, held))
    }

    /// Records, durably and once, that the store is about to hold a record only a mostdb
    /// speaking CAS can read (`storage::cas_mark`), on the blocking pool.
    async fn mark_cas_records(&self) -> Result<(), StorageError> {
        let mark = self.db.cas_mark();
        if mark.is_set() {
            return Ok(());
        }
        let job = mark.clone();
        let set = monoio::spawn_blocking(move || job.set())
            .await
            .map_err(|_| std::io::Error::other("the blocking pool dropped the job"))
            .and_then(|r| r);
        set.map_err(|source| StorageError::Io {
            what: "write",
            path: mark.path().display().to_string(),
            source,
        })
    }

    /// A future that ends when a new version of `key` is stored here (or the shard goes).
    /// Registrations whose waiter gave up are dropped as new ones come.
    pub fn changed(&self, key: &[u8]) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let mut watchers = self.watchers.borrow_mut();
        if watchers.len() >= limits::WATCH_KEYS_PRUNE_AT {
            watchers.retain(|_, waiting| {
                waiting.retain(|w| !w.is_canceled());
                !waiting.is_empty()
            });
        }
        let waiting = watchers.entry(key.to_vec()).or_default();
        waiting.retain(|w| !w.is_canceled());
        waiting.push(tx);
        rx
    }

    /// Wakes whoever waits for `key`. Every stored write calls it: with no watch on this
    /// shard it costs one length check, not a hash of the key.
    fn wake(&self, key: &[u8]) {
        let mut watchers = self.watchers.borrow_mut();
        if watchers.is_empty() {
            return;
        }
        if let Some(waiting) = watchers.remove(key) {
            for w in waiting {
                let _ = w.send(());
            }
        }
    }

    /// The promise every key counts as holding at least: the recovery floor (DESIGN §10).
    fn floor(&self) -> Version {
        self.db.promise_floor()
    }

    pub fn stats(&self) -> ShardStats {
        let ks = self.db.keyspace();
        ShardStats {
            approximate_keys: ks.approximate_len() as u64,
            disk_bytes: ks.disk_space(),
            sealed_memtables: ks.sealed_memtable_count() as u64,
            l0_tables: ks.l0_table_count() as u64,
            writes: self.writes.get(),
            fsyncs: self.state.fsyncs.get(),
            stalled_writes: self.stalled_writes.get(),
            busy_writes: self.busy_writes.get(),
            fsync_seconds: self.state.fsync_seconds.sample(),
        }
    }

    fn insert(&self, key: &[u8], record: &RecordRef<'_>) -> Result<(), StorageError> {
        debug_assert!(
            !self.state.syncing.get(),
            "insert during fsync blocks the loop"
        );
        let mut buf = self.scratch.borrow_mut();
        record.encode_into(&mut buf);
        if let Err(e) = self.db.keyspace().insert(key, &buf[..]) {
            if matches!(e, fjall::Error::Poisoned | fjall::Error::Io(_)) {
                // fjall poisons the journal on a failed write: nothing can be trusted to reach
                // disk any more, and an acknowledged version must never be forgotten.
                fatal(self.index(), "journal write failed", &e);
            }
            return Err(e.into());
        }
        self.state.written.set(self.state.written.get() + 1);
        self.writes.set(self.writes.get() + 1);
        Ok(())
    }

    /// Waits (without blocking the loop) until an insert cannot block: no fsync in flight,
    /// and a flush backlog below the point where fjall would put the thread to sleep.
    async fn wait_until_writable(&self) -> Result<(), StorageError> {
        let mut stalled_since: Option<Instant> = None;
        loop {
            if self.sync == SyncMode::Always && self.state.syncing.get() {
                self.state.wait_until(|s| !s.syncing.get()).await;
            }
            if !self.backlogged() {
                return Ok(());
            }
            let since = *stalled_since.get_or_insert_with(|| {
                self.stalled_writes.set(self.stalled_writes.get() + 1);
                Instant::now()
            });
            if since.elapsed() >= Duration::from_millis(limits::SHARD_STALL_WAIT_MS_MAX) {
                self.busy_writes.set(self.busy_writes.get() + 1);
                tracing::warn!(shard = self.index(), "write gave up waiting for flushes");
                return Err(StorageError::Busy {
                    shard: self.index(),
                });
            }
            monoio::time::sleep(Duration::from_millis(limits::SHARD_STALL_POLL_MS)).await;
        }
    }

    /// Whether the flush backlog is at the point where writes wait: a connection loop may
    /// stop reading new requests meanwhile (DESIGN §1, never block the loop).
    pub fn backlogged(&self) -> bool {
        flush_backlogged(self.db.keyspace())
    }

    /// Under `SyncMode::Always`, waits until every insert up to `ticket` is fsynced.
    async fn wait_durable(&self, ticket: u64) {
        if self.sync != SyncMode::Always || self.state.synced.get() >= ticket {
            return;
        }
        while self.state.synced.get() < ticket {
            start_sync_round(&self.state, &self.db);
            // Also wake when the round ends, so a shortfall starts another instead of hanging.
            self.state
                .wait_until(|s| s.synced.get() >= ticket || !s.round_pending.get())
                .await;
        }
    }
}

/// Spawns one group-commit round unless one is pending. The round is a task of its own, so
/// a writer that is cancelled while waiting cannot leave the shard stuck mid-fsync.
///
/// Writers woken by the previous round are already in the run queue ahead of the new task,
/// so they insert before it starts: its single fsync covers all of them.
fn start_sync_round(state: &Rc<SyncState>, db: &ShardDb) {
    if state.round_pending.replace(true) {
        return;
    }
    let state = state.clone();
    let db = db.clone();
    monoio::spawn(async move {
        let target = state.written.get();
        state.syncing.set(true);
        let index = db.index();
        let handle = db.database().clone();
        let started = Instant::now();
        let result =
            monoio::spawn_blocking(move || handle.persist(fjall::PersistMode::SyncData)).await;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => fatal(index, "fsync failed", &e),
            Err(e) => fatal(index, "fsync task failed", &e),
        }
        debug_assert_eq!(state.written.get(), target, "no insert while syncing");
        state.synced.set(target);
        state.fsyncs.set(state.fsyncs.get() + 1);
        state.fsync_seconds.observe(started.elapsed());
        state.syncing.set(false);
        state.round_pending.set(false);
        state.wake_all();
    });
}

/// Whether `keyspace`'s flush backlog is at the point where fjall would put a writer to sleep.
pub(super) fn flush_backlogged(keyspace: &fjall::Keyspace) -> bool {
    keyspace.sealed_memtable_count() >= limits::SHARD_SEALED_MEMTABLES_MAX
        || keyspace.l0_table_count() >= limits::SHARD_L0_TABLES_MAX
}

/// Stops the process: DESIGN §4, forgetting an acknowledged version breaks the quorum proof.
fn fatal(shard: u32, what: &str, error: &dyn std::fmt::Debug) -> ! {
    tracing::error!(shard, error = ?error, "{what}; stopping the process (a write may be lost)");
    eprintln!("mostdb: shard {shard}: {what}: {error:?}; aborting");
    std::process::abort();
}

fn check_key(key: &[u8]) -> Result<(), StorageError> {
    // fjall panics on an empty key.
    if key.is_empty() || key.len() > limits::KEY_BYTES_MAX {
        return Err(StorageError::Invalid {
            detail: format!(
                "key of {} bytes (must be 1..={})",
                key.len(),
                limits::KEY_BYTES_MAX
            ),
        });
    }
    Ok(())
}

impl SyncState {
    fn wait_until<F: Fn(&SyncState) -> bool>(&self, done: F) -> WaitUntil<'_, F> {
        WaitUntil { state: self, done }
    }

    fn wake_all(&self) {
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        for w in waiters {
            w.wake();
        }
    }
}

/// Resolves once `done` holds; re-checked each time a sync round finishes.
struct WaitUntil<'a, F> {
    state: &'a SyncState,
    done: F,
}

impl<F: Fn(&SyncState) -> bool> Future for WaitUntil<'_, F> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if (self.done)(self.state) {
            return Poll::Ready(());
        }
        self.state.waiters.borrow_mut().push(cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::store::test_dir::TempDir;
    use crate::storage::{Store, StoreOptions};

    use crate::test_support::run;

    fn open(dir: &TempDir, sync: SyncMode) -> (Store, Rc<Shard>) {
        let store = Store::open(StoreOptions {
            root: dir.path().to_path_buf(),
            shards_if_new: 1,
            sync,
            disk_reserve_bytes: 0,
        })
        .expect("open store");
        let shard = Rc::new(Shard::new(store.shard_db(0), sync));
        (store, shard)
    }

    fn v(hlc: u64, origin: u64) -> Version {
        Version { hlc, origin }
    }

    /// A rejection by a blind record at `held`.
    fn newer(held: Version) -> WriteOutcome {
        WriteOutcome::Newer(crate::storage::Rejection {
            held,
            accepted: held,
            accepted_cas: false,
        })
    }

    #[test]
    fn stored_same_newer() {
        let dir = TempDir::new("shard-outcomes");
        let (_store, shard) = open(&dir, SyncMode::Os);
        run(async {
            assert_eq!(shard.read(b"k").await.expect("read"), None);
            let w = |ver, val: &'static [u8]| shard.write_if_newer(b"k", ver, Some(val));
            assert_eq!(w(v(10, 1), b"a").await.expect("w"), WriteOutcome::Stored);
            assert_eq!(w(v(10, 1), b"a").await.expect("w"), WriteOutcome::Same);
            assert_eq!(w(v(9, 7), b"old").await.expect("w"), newer(v(10, 1)));
            assert_eq!(w(v(11, 0), b"b").await.expect("w"), WriteOutcome::Stored);
            let rec = shard.read(b"k").await.expect("read").expect("present");
            assert_eq!(
                rec,
                Record {
                    version: v(11, 0),
                    value: Some(b"b".to_vec()),
                    ..Default::default()
                }
            );
            assert_eq!(shard.stats().writes, 2);
            assert_eq!(shard.stats().fsyncs, 0, "Os mode never fsyncs");
        });
    }

    #[test]
    fn origin_breaks_ties_at_equal_hlc() {
        let dir = TempDir::new("shard-origin");
        let (_store, shard) = open(&dir, SyncMode::Os);
        run(async {
            let w = |ver| shard.write_if_newer(b"k", ver, Some(b"x"));
            assert_eq!(w(v(5, 1)).await.expect("w"), WriteOutcome::Stored);
            assert_eq!(w(v(5, 2)).await.expect("w"), WriteOutcome::Stored);
            assert_eq!(w(v(5, 1)).await.expect("w"), newer(v(5, 2)));
        });
    }

    #[test]
    fn tombstones_are_versions() {
        let dir = TempDir::new("shard-tombstone");
        let (_store, shard) = open(&dir, SyncMode::Os);
        run(async {
            shard
                .write_if_newer(b"k", v(1, 1), Some(b"x"))
                .await
                .expect("w");
            let del = shard
                .write_if_newer(b"k", v(2, 1), None)
                .await
                .expect("del");
            assert_eq!(del, WriteOutcome::Stored);
            let rec = shard
                .read(b"k")
                .await
                .expect("read")
                .expect("tombstone is held");
            assert_eq!(
                rec,
                Record {
                    version: v(2, 1),
                    value: None,
                    ..Default::default()
                }
            );
            let late = shard
                .write_if_newer(b"k", v(1, 9), Some(b"late"))
                .await
                .expect("w");
            assert_eq!(late, newer(v(2, 1)), "a tombstone blocks older writes");
            // A tombstone on an absent key is stored too (it fences older writes).
            let fresh = shard
                .write_if_newer(b"n", v(3, 1), None)
                .await
                .expect("del");
            assert_eq!(fresh, WriteOutcome::Stored);
        });
    }

    #[test]
    fn bad_keys_are_refused() {
        let dir = TempDir::new("shard-badkey");
        let (_store, shard) = open(&dir, SyncMode::Os);
        run(async {
            let long = vec![b'k'; limits::KEY_BYTES_MAX + 1];
            for key in [&b""[..], &long[..]] {
                let r = shard.write_if_newer(key, v(1, 1), Some(b"x")).await;
                assert!(matches!(r, Err(StorageError::Invalid { .. })), "{r:?}");
                assert!(matches!(
                    shard.read(key).await,
                    Err(StorageError::Invalid { .. })
                ));
            }
        });
    }

    #[test]
    fn always_mode_group_commits_and_answers_after_the_fsync() {
        const WRITES: u64 = 200;
        let dir = TempDir::new("shard-always");
        let (_store, shard) = open(&dir, SyncMode::Always);
        run(async {
            let mut handles = Vec::new();
            for i in 0..WRITES {
                let shard = shard.clone();
                handles.push(monoio::spawn(async move {
                    let fsyncs_at_call = shard.state.fsyncs.get();
                    let in_flight = u64::from(shard.state.syncing.get());
                    let key = format!("key{i}");
                    let out = shard
                        .write_if_newer(key.as_bytes(), v(1, i), Some(b"v"))
                        .await;
                    assert_eq!(out.expect("write"), WriteOutcome::Stored);
                    // Answered only after an fsync that started after this insert finished.
                    assert!(shard.state.fsyncs.get() >= fsyncs_at_call + 1 + in_flight);
                }));
                if i % 50 == 0 {
                    // Let some rounds start in between, so writes also queue behind an fsync.
                    monoio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            for h in handles {
                h.await;
            }
            let stats = shard.stats();
            assert_eq!(stats.writes, WRITES);
            assert!(
                stats.fsyncs >= 1 && stats.fsyncs <= WRITES / 10,
                "{stats:?}"
            );
            assert_eq!(
                stats.fsync_seconds.count, stats.fsyncs,
                "every fsync is timed"
            );
            assert_eq!(shard.state.synced.get(), shard.state.written.get());
        });
    }

    #[test]
    fn always_mode_read_waits_for_unsynced_writes() {
        let dir = TempDir::new("shard-always-read");
        let (_store, shard) = open(&dir, SyncMode::Always);
        run(async {
            // Insert without waiting, as if the writer had been cancelled after its insert.
            shard
                .insert(b"k", &Record::plain(v(1, 1), Some(b"x".to_vec())).as_ref())
                .expect("insert");
            assert_eq!(shard.state.fsyncs.get(), 0);
            let rec = shard.read(b"k").await.expect("read").expect("present");
            assert_eq!(rec.version, v(1, 1));
            assert_eq!(shard.state.fsyncs.get(), 1, "the read waited for an fsync");
            // Same and Newer reveal the held version too: they wait in the same way.
            shard
                .insert(b"j", &Record::plain(v(5, 1), Some(b"y".to_vec())).as_ref())
                .expect("insert");
            let out = shard
                .write_if_newer(b"j", v(4, 1), Some(b"z"))
                .await
                .expect("w");
            assert_eq!(out, newer(v(5, 1)));
            assert_eq!(shard.state.fsyncs.get(), 2);
            // Nothing unsynced: no fsync for a read.
            shard.read(b"j").await.expect("read");
            assert_eq!(shard.state.fsyncs.get(), 2);
        });
    }

    #[test]
    fn data_survives_drop_and_reopen() {
        for sync in [SyncMode::Os, SyncMode::Always] {
            let dir = TempDir::new("shard-reopen");
            {
                let (store, shard) = open(&dir, sync);
                run(async {
                    shard
                        .write_if_newer(b"a", v(7, 3), Some(b"kept"))
                        .await
                        .expect("w");
                    shard
                        .write_if_newer(b"b", v(8, 3), None)
                        .await
                        .expect("del");
                });
                drop(shard);
                drop(store); // no close: as after a crash of the process
            }
            let (_store, shard) = open(&dir, sync);
            run(async {
                let a = shard.read(b"a").await.expect("read").expect("present");
                assert_eq!(
                    a,
                    Record {
                        version: v(7, 3),
                        value: Some(b"kept".to_vec()),
                        ..Default::default()
                    }
                );
                let b = shard.read(b"b").await.expect("read").expect("tombstone");
                assert_eq!(b.version, v(8, 3));
                assert!(b.is_tombstone());
                let again = shard.write_if_newer(b"a", v(7, 3), Some(b"kept")).await;
                assert_eq!(again.expect("w"), WriteOutcome::Same);
            });
        }
    }

    /// PREPARE (DESIGN §10): a promise fences every version below it, admits the ballot, is
    /// gone (the version is the promise) once the ballot is stored, survives a crash of the
    /// process, and under `always` is answered only after an fsync (I14).
    #[test]
    fn a_promise_fences_older_versions_and_survives_a_restart() {
        for sync in [SyncMode::Os, SyncMode::Always] {
            let dir = TempDir::new("shard-promise");
            {
                let (store, shard) = open(&dir, sync);
                run(async {
                    let (first, held) = shard.prepare(b"k", v(10, 1)).await.expect("prepare");
                    assert_eq!((first, held), (PrepareOutcome::Promise, None));
                    if sync == SyncMode::Always {
                        assert_eq!(shard.state.fsyncs.get(), 1, "durable before the answer");
                    }
                    let repeat = shard.prepare(b"k", v(10, 1)).await.expect("prepare");
                    assert_eq!(repeat.0, PrepareOutcome::Repeat);
                    let lower = shard.prepare(b"k", v(9, 1)).await.expect("prepare");
                    assert_eq!(lower.0, PrepareOutcome::Preempted { held: v(10, 1) });
                    let blind = shard.write_if_newer(b"k", v(9, 9), Some(b"x")).await;
                    assert_eq!(
                        blind.expect("w"),
                        WriteOutcome::Newer(crate::storage::Rejection {
                            held: v(10, 1),
                            accepted: Version::ZERO,
                            accepted_cas: false
                        })
                    );
                });
                drop(shard);
                drop(store); // no close: as after a crash of the process
            }
            let (_store, shard) = open(&dir, sync);
            run(async {
                let held = shard.read(b"k").await.expect("read").expect("promise");
                assert_eq!((held.version, held.promise()), (Version::ZERO, v(10, 1)));
                let cas = Meta {
                    cas: true,
                    expires: None,
                };
                let accept = shard.write(b"k", v(10, 1), Some(b"c"), cas).await;
                assert_eq!(accept.expect("w"), WriteOutcome::Stored);
                let held = shard.read(b"k").await.expect("read").expect("present");
                assert_eq!(
                    held,
                    Record::plain(v(10, 1), Some(b"c".to_vec())).with_meta(cas)
                );
                assert_eq!(held.promise(), v(10, 1));
                let (again, record) = shard.prepare(b"k", v(11, 1)).await.expect("prepare");
                assert_eq!(again, PrepareOutcome::Promise);
                assert_eq!(
                    record.map(|r| r.meta),
                    Some(cas),
                    "the promise shows the record"
                );
            });
        }
    }

    /// The recovery's promise floor (DESIGN §10) fences every version at or below its HLC,
    /// for writes and PREPAREs alike, on every key; it survives a reopen.
    #[test]
    fn the_promise_floor_fences_every_key_below_it() {
        let dir = TempDir::new("shard-floor");
        {
            let (store, shard) = open(&dir, SyncMode::Os);
            store.raise_promise_floor(50).expect("raise");
            run(async {
                let below = shard.write_if_newer(b"a", v(50, 9), Some(b"x")).await;
                let floor = Version {
                    hlc: 50,
                    origin: u64::MAX,
                };
                assert_eq!(
                    below.expect("w"),
                    WriteOutcome::Newer(crate::storage::Rejection {
                        held: floor,
                        accepted: Version::ZERO,
                        accepted_cas: false
                    })
                );
                let (prepared, _) = shard.prepare(b"b", v(49, 1)).await.expect("prepare");
                assert_eq!(prepared, PrepareOutcome::Preempted { held: floor });
                let above = shard.write_if_newer(b"a", v(51, 0), Some(b"y")).await;
                assert_eq!(above.expect("w"), WriteOutcome::Stored);
            });
        }
        let (_store, shard) = open(&dir, SyncMode::Os);
        run(async {
            let still = shard.write_if_newer(b"c", v(10, 1), Some(b"z")).await;
            assert!(matches!(still.expect("w"), WriteOutcome::Newer(_)));
        });
    }
}
