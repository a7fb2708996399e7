//! The expiry sweeper (DESIGN §10). A key whose expiry passed is gone for every read, but its
//! value stays on disk until something writes the expiry's tombstone over it, and a key that
//! nobody reads again would keep it forever. One task per node ([`run`]) scans the store in
//! chunks off the event loop and, for each value whose expiry this node's clock passed, runs
//! an ordinary quorum read of the key: the coordinator writes the tombstone at the expiry's
//! version into a majority before it answers NotFound (a newer write wins), exactly as for a
//! client's read. The sweeper never deletes locally: a tombstone on one replica alone would
//! make one read answer NotFound while a later read through the other replicas still finds
//! the value (a linearizability violation, not a cleanup).
//!
//! Bounds: a chunk reads [`EXPIRY_SWEEP_CHUNK_RECORDS`] records on the blocking pool and the
//! scan pauses as anti-entropy's does; reads go out at most [`EXPIRY_SWEEP_READS_PER_SEC`];
//! a pass that meets [`EXPIRY_SWEEP_FAILURES_MAX`] failed reads in a row (no majority) ends,
//! and the next starts after [`EXPIRY_SWEEP_INTERVAL_MS`], or [`EXPIRY_SWEEP_SPACING_FACTOR`]
//! times as long as the last pass took if that is longer. A pass is skipped while the store
//! is unchanged since the last one and no expiry it saw came due.
//!
//! Must not import `http` or `api`.

use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::limits::{
    EXPIRY_SWEEP_CHUNK_RECORDS, EXPIRY_SWEEP_FAILURES_MAX, EXPIRY_SWEEP_INTERVAL_MS,
    EXPIRY_SWEEP_READS_PER_SEC, EXPIRY_SWEEP_SPACING_FACTOR,
};
use crate::runtime::Latch;
use crate::storage::scan::ScanCursor;
use crate::storage::Store;

use super::antientropy::scan::{pause_after, ScanError};
use super::{OpError, Replication};

/// What the sweeper did (node-wide; `/metrics` and `/cluster` show it).
#[derive(Debug, Default)]
pub struct ExpiryStats {
    pub passes: AtomicU64,
    /// Expired values whose read ended NotFound: the expiry's tombstone is in a majority.
    pub reclaimed: AtomicU64,
    /// Reads that failed (no majority, busy); the next pass tries again.
    pub failed: AtomicU64,
}

/// How a pass ended.
#[derive(Debug)]
enum PassEnd {
    /// The whole store was read; the earliest expiry still ahead (`u64::MAX`: none).
    Done { next_due: u64 },
    /// Too many reads failed in a row: no use going on now.
    Failing,
}

/// Sweeps until `stop`. Runs on one core; the reads hop to each key's owner core.
pub async fn run(
    replication: Rc<Replication>,
    store: Arc<Store>,
    stats: Arc<ExpiryStats>,
    stop: Latch,
) {
    // The store's generation at the start of the last complete pass, and the earliest expiry
    // that pass left ahead: while both hold, a pass would find nothing.
    let mut quiet: Option<(u64, u64)> = None;
    let mut wait = Duration::from_millis(EXPIRY_SWEEP_INTERVAL_MS);
    loop {
        monoio::select! {
            _ = stop.wait() => return,
            _ = monoio::time::sleep(wait) => {}
        }
        let generation = store.generation();
        if quiet.is_some_and(|(g, due)| g == generation && replication.clock_now() <= due) {
            continue;
        }
        let started = Instant::now();
        let end = monoio::select! {
            _ = stop.wait() => return,
            end = pass(&replication, &store, &stats) => end,
        };
        stats.passes.fetch_add(1, Ordering::Relaxed);
        wait = next_wait(started.elapsed());
        quiet = match end {
            Ok(PassEnd::Done { next_due }) => Some((generation, next_due)),
            Ok(PassEnd::Failing) => None,
            Err(err) => {
                tracing::warn!(%err, "expiry sweep failed; the next pass tries again");
                None
            }
        };
    }
}

/// The pause before the next pass after one that took `took`: long passes (a big store) are
/// spaced out so that sweeping stays a small share of the node's work.
fn next_wait(took: Duration) -> Duration {
    let spaced = took.saturating_mul(EXPIRY_SWEEP_SPACING_FACTOR);
    spaced.max(Duration::from_millis(EXPIRY_SWEEP_INTERVAL_MS))
}

/// One pass over the whole store.
async fn pass(
    replication: &Replication,
    store: &Arc<Store>,
    stats: &ExpiryStats,
) -> Result<PassEnd, ScanError> {
    let mut cursor = ScanCursor::START;
    let mut next_due = u64::MAX;
    let mut pacer = Pacer::new(EXPIRY_SWEEP_READS_PER_SEC);
    let mut failures_in_a_row = 0;
    loop {
        let started = Instant::now();
        let (job_store, from) = (store.clone(), cursor.clone());
        let page = monoio::spawn_blocking(move || {
            job_store.scan_expiring(&from, EXPIRY_SWEEP_CHUNK_RECORDS)
        })
        .await
        .map_err(|_| ScanError::Pool)??;
        let scanned = started.elapsed();
        for (key, expires) in page.entries {
            // Read the clock per key: a pass can take a while.
            if expires >= replication.clock_now() {
                next_due = next_due.min(expires);
                continue;
            }
            pacer.wait().await;
            match replication.get(key.to_vec()).await {
                Ok(None) => {
                    failures_in_a_row = 0;
                    stats.reclaimed.fetch_add(1, Ordering::Relaxed);
                }
                // A newer write (without an expiry, or a later one) came first.
                Ok(Some(_)) => failures_in_a_row = 0,
                Err(err) => {
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                    failures_in_a_row += 1;
                    if failures_in_a_row >= EXPIRY_SWEEP_FAILURES_MAX {
                        log_failing(&err);
                        return Ok(PassEnd::Failing);
                    }
                }
            }
        }
        match page.next {
            Some(next) => cursor = next,
            None => return Ok(PassEnd::Done { next_due }),
        }
        monoio::time::sleep(pause_after(scanned)).await;
    }
}

fn log_failing(err: &OpError) {
    tracing::info!(%err, "expiry sweep paused: its reads keep failing");
}

/// Spaces out events to at most `per_sec` a second (no bursts beyond one).
struct Pacer {
    gap: Duration,
    next: Instant,
}

impl Pacer {
    fn new(per_sec: u64) -> Pacer {
        Pacer {
            gap: Duration::from_secs(1) / u32::try_from(per_sec.max(1)).unwrap_or(u32::MAX),
            next: Instant::now(),
        }
    }

    /// The delay before the next event may happen at `now`, and books it.
    fn book(&mut self, now: Instant) -> Duration {
        let at = self.next.max(now);
        self.next = at + self.gap;
        at - now
    }

    async fn wait(&mut self) {
        let delay = self.book(Instant::now());
        if !delay.is_zero() {
            monoio::time::sleep(delay).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_passes_are_spaced_out() {
        let floor = Duration::from_millis(EXPIRY_SWEEP_INTERVAL_MS);
        assert_eq!(next_wait(Duration::from_millis(1)), floor);
        let long = floor * 10;
        assert_eq!(next_wait(long), long * EXPIRY_SWEEP_SPACING_FACTOR);
    }

    #[test]
    fn the_pacer_spaces_events_and_does_not_bank_idle_time() {
        let mut pacer = Pacer::new(100);
        let t0 = Instant::now();
        assert_eq!(pacer.book(t0), Duration::ZERO);
        assert_eq!(pacer.book(t0), Duration::from_millis(10));
        assert_eq!(pacer.book(t0), Duration::from_millis(20));
        // After a long idle time the next event goes at once, and only one.
        let later = t0 + Duration::from_secs(5);
        assert_eq!(pacer.book(later), Duration::ZERO);
        assert_eq!(pacer.book(later), Duration::from_millis(10));
    }
}
