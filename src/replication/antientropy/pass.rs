//! The anti-entropy task of one node and its passes. A pass with one peer: fetch its digests,
//! compare with ours, and for each round of differing buckets list both sides' `(key,
//! version)`s; for every settled difference where the peer holds the newer version, `READ` it
//! from the peer and `COPY` it into the local replica on the key's owner core. (Where this
//! node is newer, the peer does the same in its own pass.) Everything is bounded: entries per
//! round, copies in flight, bytes and time per pass, and a pass cut short goes on soon after.
//! Must not import `http` or `api`.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::limits::{
    ANTI_ENTROPY_CALL_TIMEOUT_MS, ANTI_ENTROPY_COPIES_IN_FLIGHT_MAX,
    ANTI_ENTROPY_DEFERRED_PULLS_MAX, ANTI_ENTROPY_INTERVAL_MAX_MS, ANTI_ENTROPY_PASS_BYTES_MAX,
    ANTI_ENTROPY_PASS_TIME_MAX_MS, ANTI_ENTROPY_POLL_MS, ANTI_ENTROPY_RETRY_MS,
    ANTI_ENTROPY_ROUND_ENTRIES_HARD_MAX, ANTI_ENTROPY_ROUND_ENTRIES_MAX,
    ANTI_ENTROPY_SETTLES_PER_PASS_MAX, ANTI_ENTROPY_SETTLE_MS,
};
use crate::replication::clock::system_ms;
use crate::replication::peer::{CallError, LinkState, PeerLink};
use crate::replication::protocol::{
    BucketDigest, KeyVersion, ReplicaReply, ReplicaRequest, SyncRequest, BUCKETS,
};
use crate::replication::Replication;
use crate::runtime::{join_all, Latch, Local};
use crate::storage::Version;

use super::plan;
use super::scan::ScanError;
use super::AntiEntropy;

/// Why a pass ended early. The next one is tried after `ANTI_ENTROPY_RETRY_MS`.
#[derive(Debug, thiserror::Error)]
enum PassError {
    #[error("{call} to the peer: {err}")]
    Call { call: &'static str, err: CallError },
    #[error("the peer answered {call} with something else")]
    BadAnswer { call: &'static str },
    #[error("the peer has {theirs} buckets, this node {BUCKETS}")]
    Buckets { theirs: usize },
    #[error("the peer listed more than {max} entries in one round")]
    RoundTooLarge { max: usize },
    #[error("the pass ran out of time while listing keys")]
    OutOfTime,
    #[error("scan: {0}")]
    Scan(#[from] ScanError),
}

impl PassError {
    /// A mismatch between the two nodes rather than a passing condition: worth a warning.
    fn is_mismatch(&self) -> bool {
        matches!(
            self,
            PassError::BadAnswer { .. } | PassError::Buckets { .. }
        )
    }
}

/// What one pass did.
#[derive(Debug, Default)]
struct PassReport {
    buckets_differing: usize,
    rounds: usize,
    copied_in: u64,
    peer_behind: usize,
    bytes: u64,
    failed: u64,
    young: usize,
    /// The bound that stopped the pass before every differing bucket was done.
    cut_short: Option<&'static str>,
}

/// One peer as the task sees it.
struct Peer {
    link: PeerLink,
    /// The link's `connects` when its last pass started: a change means it came up again.
    seen_connects: u64,
    /// The periodic interval now (see [`next_wait`]).
    interval: Duration,
    due: Option<Instant>,
    last_error: Option<String>,
}

impl Peer {
    fn is_due(&self, now: Instant) -> bool {
        let status = self.link.status();
        status.state == LinkState::Up
            && (status.connects != self.seen_connects || self.due.is_none_or(|due| now >= due))
    }
}

/// Runs passes with every peer until `stop` is set: with a peer as soon as its link is up
/// (again), then every `MOSTDB_ANTI_ENTROPY_INTERVAL_MS` (±20 %), one peer at a time.
pub async fn run(
    ae: Arc<AntiEntropy>,
    replication: Rc<Replication>,
    links: Vec<PeerLink>,
    stop: Latch,
) {
    let mut peers: Vec<Peer> = links
        .into_iter()
        .map(|link| Peer {
            link,
            seen_connects: 0,
            interval: ae.interval(),
            due: None,
            last_error: None,
        })
        .collect();
    let mut jitter = Jitter::new();
    tracing::info!(peers = peers.len(), "anti-entropy running");
    loop {
        monoio::select! {
            _ = stop.wait() => return,
            _ = monoio::time::sleep(Duration::from_millis(ANTI_ENTROPY_POLL_MS)) => {}
        }
        for peer in &mut peers {
            if !peer.is_due(Instant::now()) {
                continue;
            }
            peer.seen_connects = peer.link.status().connects;
            let started = Instant::now();
            let start_bucket = jitter.next() as usize;
            let outcome = monoio::select! {
                _ = stop.wait() => return,
                outcome = pass(&ae, &replication, &peer.link, start_bucket, ANTI_ENTROPY_SETTLE_MS) => outcome,
            };
            let wait = finish(&ae, peer, started, outcome, &mut jitter);
            peer.due = Some(Instant::now() + wait);
        }
    }
}

/// Records and logs a pass; returns how long to wait before the next one with this peer.
fn finish(
    ae: &AntiEntropy,
    peer: &mut Peer,
    started: Instant,
    outcome: Result<PassReport, PassError>,
    jitter: &mut Jitter,
) -> Duration {
    let stats = ae.stats();
    let took_ms = started.elapsed().as_millis() as u64;
    stats.passes.fetch_add(1, Ordering::Relaxed);
    stats
        .last_pass_unix_ms
        .store(system_ms(), Ordering::Relaxed);
    stats
        .last_pass_duration_ms
        .store(took_ms, Ordering::Relaxed);
    let peer_addr = peer.link.config().addr.as_str();
    let report = match outcome {
        Ok(report) => report,
        Err(err) => {
            stats.passes_failed.fetch_add(1, Ordering::Relaxed);
            let text = err.to_string();
            if err.is_mismatch() && peer.last_error.as_deref() != Some(text.as_str()) {
                tracing::warn!(peer = peer_addr, %err, "anti-entropy pass failed");
            } else {
                tracing::debug!(peer = peer_addr, %err, took_ms, "anti-entropy pass failed");
            }
            peer.last_error = Some(text);
            return Duration::from_millis(ANTI_ENTROPY_RETRY_MS);
        }
    };
    peer.last_error = None;
    let r = &report;
    if r.copied_in + r.failed > 0 {
        tracing::info!(
            peer = peer_addr,
            buckets_differing = r.buckets_differing,
            rounds = r.rounds,
            copied_in = r.copied_in,
            bytes = r.bytes,
            failed = r.failed,
            peer_behind = r.peer_behind,
            young = r.young,
            cut_short = r.cut_short,
            took_ms,
            "anti-entropy pass repaired this replica"
        );
    } else {
        tracing::debug!(
            peer = peer_addr,
            buckets_differing = r.buckets_differing,
            peer_behind = r.peer_behind,
            young = r.young,
            took_ms,
            "anti-entropy pass"
        );
    }
    let wait = next_wait(r, &mut peer.interval, ae.interval());
    if wait == peer.interval {
        jitter.around(wait)
    } else {
        wait
    }
}

/// How long to wait after a pass that ended well, and the periodic interval from now on.
///
/// A pass cut short or with failed copies goes on soon. A pass whose differences were all
/// young and all resolved themselves (it copied nothing, not even after they settled) saw
/// writes in flight: under a steady write load there always are some, so the interval
/// doubles, up to its bound, to spare the scans; it comes back to the interval set
/// as soon as a pass finds nothing, or copies something. A link that comes up (again) is
/// compared at once whatever the interval.
fn next_wait(report: &PassReport, interval: &mut Duration, base: Duration) -> Duration {
    if report.cut_short.is_some() || report.failed > 0 {
        return Duration::from_millis(ANTI_ENTROPY_RETRY_MS);
    }
    let churn = report.young > 0 && report.copied_in == 0;
    *interval = if churn {
        (*interval * 2).min(Duration::from_millis(ANTI_ENTROPY_INTERVAL_MAX_MS))
    } else {
        base
    };
    *interval
}

/// One pass with one peer. Differences whose newer version is younger than `settle_ms` are
/// looked at again after that long (they are usually writes still in flight).
async fn pass(
    ae: &AntiEntropy,
    replication: &Replication,
    link: &PeerLink,
    start_bucket: usize,
    settle_ms: u64,
) -> Result<PassReport, PassError> {
    let started = Instant::now();
    let deadline = started + Duration::from_millis(ANTI_ENTROPY_PASS_TIME_MAX_MS);
    let theirs = peer_digests(link).await?;
    let ours = ae.digests(started).await?;
    let differing = plan::differing_buckets(&ours, &theirs);
    let stats = ae.stats();
    stats
        .buckets_compared
        .fetch_add(u64::from(BUCKETS), Ordering::Relaxed);
    stats
        .buckets_differing
        .fetch_add(differing.len() as u64, Ordering::Relaxed);
    let mut report = PassReport {
        buckets_differing: differing.len(),
        ..PassReport::default()
    };
    let rounds = plan::rounds(
        &differing,
        start_bucket,
        &ours,
        &theirs,
        ANTI_ENTROPY_ROUND_ENTRIES_MAX,
    );
    let copier = Copier::new(ae, replication, link, deadline);
    let mut deferred = Vec::new();
    for buckets in rounds {
        if let Some(bound) = copier.bound_reached() {
            report.cut_short = Some(bound);
            break;
        }
        let young = round(ae, link, &copier, &buckets, settle_ms, &mut report).await?;
        let room = ANTI_ENTROPY_DEFERRED_PULLS_MAX.saturating_sub(deferred.len());
        if young.len() > room {
            report.cut_short = Some("young differences");
        }
        deferred.extend(young.into_iter().take(room));
    }
    if !deferred.is_empty() && copier.bound_reached().is_none() {
        // Writes in flight have landed by now; what still differs was missed.
        monoio::time::sleep(Duration::from_millis(settle_ms)).await;
        copier.run(deferred).await;
    }
    if let Some(err) = copier.link_lost.get() {
        return Err(PassError::Call { call: "copy", err });
    }
    report.cut_short = report.cut_short.or(copier.jobs_left());
    copier.fill(&mut report);
    Ok(report)
}

/// One round: lists both sides' entries of `buckets`, copies the settled differences where
/// the peer is newer, and returns the young ones where it is newer (to look at again).
async fn round(
    ae: &AntiEntropy,
    link: &PeerLink,
    copier: &Copier<'_>,
    buckets: &[u32],
    settle_ms: u64,
    report: &mut PassReport,
) -> Result<Vec<(Vec<u8>, Version)>, PassError> {
    let their_entries = peer_entries(link, buckets, copier.deadline).await?;
    let our_entries = ae.local_entries(buckets).await?;
    let settled_before_ms = system_ms().saturating_sub(settle_ms);
    let plan = plan::compare(our_entries, their_entries, settled_before_ms);
    report.rounds += 1;
    report.young += plan.young;
    report.peer_behind += plan.peer_behind;
    let stats = ae.stats();
    stats
        .young_skipped
        .fetch_add(plan.young as u64, Ordering::Relaxed);
    stats
        .keys_peer_behind
        .fetch_add(plan.peer_behind as u64, Ordering::Relaxed);
    copier.run(plan.pull).await;
    if let Some(err) = copier.link_lost.get() {
        return Err(PassError::Call { call: "copy", err });
    }
    Ok(plan.young_pull)
}

/// Why a full pull ended before this node held everything the peer holds.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PullError(String);

/// Copies into this node every record `link`'s peer holds newer, young ones included (a
/// recovering node, DESIGN §4, §7): passes with no settling time, one after another, until
/// one ends with nothing cut short and no copy failed. Returns the records copied.
pub async fn full_pull(
    ae: &AntiEntropy,
    replication: &Replication,
    link: &PeerLink,
    passes_max: usize,
) -> Result<u64, PullError> {
    let mut copied = 0;
    for _ in 0..passes_max {
        let report = pass(ae, replication, link, 0, 0)
            .await
            .map_err(|e| PullError(e.to_string()))?;
        copied += report.copied_in;
        if report.cut_short.is_none() && report.failed == 0 && report.young == 0 {
            return Ok(copied);
        }
        tracing::debug!(
            copied,
            cut_short = report.cut_short,
            failed = report.failed,
            "recovery pull goes on"
        );
    }
    Err(PullError(format!(
        "still differing after {passes_max} passes"
    )))
}

/// The deadline of one call to the peer.
fn call_deadline() -> Instant {
    Instant::now() + Duration::from_millis(ANTI_ENTROPY_CALL_TIMEOUT_MS)
}

async fn peer_digests(link: &PeerLink) -> Result<Vec<BucketDigest>, PassError> {
    let call = "digests";
    match link.call_sync(&SyncRequest::Digests, call_deadline()).await {
        Ok(ReplicaReply::Digests { buckets }) if buckets.len() == BUCKETS as usize => Ok(buckets),
        Ok(ReplicaReply::Digests { buckets }) => Err(PassError::Buckets {
            theirs: buckets.len(),
        }),
        Ok(_) => Err(PassError::BadAnswer { call }),
        Err(err) => Err(PassError::Call { call, err }),
    }
}

/// The peer's entries in `buckets`, page by page.
async fn peer_entries(
    link: &PeerLink,
    buckets: &[u32],
    deadline: Instant,
) -> Result<Vec<KeyVersion>, PassError> {
    let call = "key listing";
    let mut entries = Vec::new();
    let mut cursor = Vec::new();
    loop {
        if Instant::now() >= deadline {
            return Err(PassError::OutOfTime);
        }
        let request = SyncRequest::BucketKeys {
            buckets: buckets.to_vec(),
            cursor,
        };
        let (page, next) = match link.call_sync(&request, call_deadline()).await {
            Ok(ReplicaReply::KeyPage { entries, next }) => (entries, next),
            Ok(_) => return Err(PassError::BadAnswer { call }),
            Err(err) => return Err(PassError::Call { call, err }),
        };
        entries.extend(page);
        if entries.len() > ANTI_ENTROPY_ROUND_ENTRIES_HARD_MAX {
            return Err(PassError::RoundTooLarge {
                max: ANTI_ENTROPY_ROUND_ENTRIES_HARD_MAX,
            });
        }
        match next {
            Some(next) => cursor = next,
            None => return Ok(entries),
        }
    }
}

/// One record to take from the peer: its key and the version held here (zero: absent).
struct Pull {
    key: Vec<u8>,
    ours: Version,
}

/// The copies of a pass: a queue worked by up to `ANTI_ENTROPY_COPIES_IN_FLIGHT_MAX` workers
/// on this core, until the queue is empty or a bound of the pass is reached.
struct Copier<'a> {
    ae: &'a AntiEntropy,
    replication: &'a Replication,
    link: &'a PeerLink,
    deadline: Instant,
    pulls: RefCell<VecDeque<Pull>>,
    bytes: Cell<u64>,
    copied_in: Cell<u64>,
    failed: Cell<u64>,
    /// Consensus reads this pass started for promises that refused a copy.
    settles: Cell<usize>,
    /// The link went down (or its queue is full): no use going on now.
    link_lost: Cell<Option<CallError>>,
}

impl<'a> Copier<'a> {
    fn new(
        ae: &'a AntiEntropy,
        replication: &'a Replication,
        link: &'a PeerLink,
        deadline: Instant,
    ) -> Copier<'a> {
        Copier {
            ae,
            replication,
            link,
            deadline,
            pulls: RefCell::new(VecDeque::new()),
            bytes: Cell::new(0),
            copied_in: Cell::new(0),
            failed: Cell::new(0),
            settles: Cell::new(0),
            link_lost: Cell::new(None),
        }
    }

    /// The pass bound reached, if any.
    fn bound_reached(&self) -> Option<&'static str> {
        if self.link_lost.get().is_some() {
            Some("link lost")
        } else if self.bytes.get() >= ANTI_ENTROPY_PASS_BYTES_MAX {
            Some("bytes per pass")
        } else if Instant::now() >= self.deadline {
            Some("time per pass")
        } else {
            None
        }
    }

    fn jobs_left(&self) -> Option<&'static str> {
        (!self.pulls.borrow().is_empty()).then_some("copies left")
    }

    /// Takes the records of `pulls` (key, our version) from the peer where they are newer
    /// there (what a bound stops is left for the next pass).
    async fn run(&self, pulls: Vec<(Vec<u8>, Version)>) {
        {
            let mut queue = self.pulls.borrow_mut();
            queue.clear();
            queue.extend(pulls.into_iter().map(|(key, ours)| Pull { key, ours }));
        }
        let workers = self
            .pulls
            .borrow()
            .len()
            .min(ANTI_ENTROPY_COPIES_IN_FLIGHT_MAX);
        let futures = (0..workers)
            .map(|_| Box::pin(self.work()) as Local<'_, ()>)
            .collect();
        join_all(futures).await;
    }

    async fn work(&self) {
        while self.bound_reached().is_none() {
            let Some(pull) = self.pulls.borrow_mut().pop_front() else {
                return;
            };
            self.pull(pull).await;
        }
    }

    /// Reads the peer's record and stores it here if it is newer than ours.
    async fn pull(&self, Pull { key, ours }: Pull) {
        let read = ReplicaRequest::Read { key: key.clone() };
        let (version, value, meta) = match self.link.call(&read, call_deadline()).await {
            Ok(ReplicaReply::Read {
                version,
                value,
                meta,
            }) => (version, value, meta),
            Ok(other) => return self.failed("read from the peer", &other),
            Err(err) => return self.call_failed(err),
        };
        // Not newer: this replica caught up meanwhile (a write, a repair).
        if version <= ours {
            return;
        }
        let bytes = value.as_ref().map_or(0, Vec::len) as u64;
        let key_copy = key.clone();
        let copy = ReplicaRequest::Copy {
            key,
            version,
            value,
            meta,
        };
        match self.replication.serve_peer_request(copy).await {
            Ok(ReplicaReply::CopyAck) => {
                self.copied_in.set(self.copied_in.get() + 1);
                self.bytes.set(self.bytes.get() + bytes);
                let stats = self.ae.stats();
                stats.keys_copied_in.fetch_add(1, Ordering::Relaxed);
                stats.bytes_copied.fetch_add(bytes, Ordering::Relaxed);
            }
            // A newer version arrived here meanwhile: nothing to do.
            Ok(ReplicaReply::Rejected { accepted, .. }) if accepted >= version => {}
            // A CAS promise above the version refused it.
            Ok(ReplicaReply::Rejected { held, .. }) => self.refused(key_copy, held).await,
            other => self.failed("local copy", &other),
        }
    }

    /// A copy that a CAS promise (`promise`) refused: counted, and if the promise is old
    /// (its proposer is done or gone), settled with a consensus read (DESIGN §10), which
    /// writes the majority's state back above it. A few per pass; the next pass sees the rest.
    async fn refused(&self, key: Vec<u8>, promise: Version) {
        let stats = self.ae.stats();
        stats.copies_refused.fetch_add(1, Ordering::Relaxed);
        if self.settles.get() >= ANTI_ENTROPY_SETTLES_PER_PASS_MAX {
            return;
        }
        self.settles.set(self.settles.get() + 1);
        match self.replication.settle(key, promise).await {
            Ok(true) => {
                stats.promises_settled.fetch_add(1, Ordering::Relaxed);
            }
            Ok(false) => {}
            Err(err) => self.failed("settling a promise", &err),
        }
    }

    /// A copy that did not happen (`outcome`: the answer or error met); the next pass retries.
    fn failed(&self, what: &'static str, outcome: &dyn std::fmt::Debug) {
        self.failed.set(self.failed.get() + 1);
        self.ae
            .stats()
            .copies_failed
            .fetch_add(1, Ordering::Relaxed);
        tracing::debug!(what, ?outcome, "anti-entropy copy failed");
    }

    fn call_failed(&self, err: CallError) {
        match err {
            // The link is down or full: the next pass goes on.
            CallError::NotSent | CallError::Lost => self.link_lost.set(Some(err)),
            CallError::Timeout | CallError::Unavailable => self.failed("call to the peer", &err),
        }
    }

    fn fill(&self, report: &mut PassReport) {
        report.copied_in = self.copied_in.get();
        report.bytes = self.bytes.get();
        report.failed = self.failed.get();
    }
}

/// xorshift64: spreads pass times (±20 %) and start buckets, so nodes do not act in step.
struct Jitter(u64);

impl Jitter {
    fn new() -> Jitter {
        let seed = system_ms() ^ (std::process::id() as u64).rotate_left(32);
        Jitter(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// `base` ± 20 %.
    fn around(&mut self, base: Duration) -> Duration {
        let fifth = base / 5;
        let spread = fifth.as_millis() as u64 * 2 + 1;
        base - fifth + Duration::from_millis(self.next() % spread)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(young: usize, copied_in: u64) -> PassReport {
        PassReport {
            young,
            copied_in,
            ..PassReport::default()
        }
    }

    #[test]
    fn churn_backs_off_and_anything_else_comes_back_to_the_interval() {
        let base = Duration::from_millis(crate::limits::ANTI_ENTROPY_INTERVAL_MS);
        let max = Duration::from_millis(ANTI_ENTROPY_INTERVAL_MAX_MS);
        let mut interval = base;
        // Only writes in flight, pass after pass: the interval doubles up to its bound.
        assert_eq!(next_wait(&report(5, 0), &mut interval, base), base * 2);
        assert_eq!(next_wait(&report(5, 0), &mut interval, base), base * 4);
        for _ in 0..20 {
            next_wait(&report(5, 0), &mut interval, base);
        }
        assert_eq!(interval, max);
        // Something copied (a young difference that did not resolve itself): the base again.
        assert_eq!(next_wait(&report(5, 3), &mut interval, base), base);
        // Nothing different: the base interval.
        interval = max;
        assert_eq!(next_wait(&report(0, 0), &mut interval, base), base);
        // Cut short or failed copies: soon, whatever else.
        let cut = PassReport {
            cut_short: Some("time per pass"),
            ..report(0, 9)
        };
        let retry = Duration::from_millis(ANTI_ENTROPY_RETRY_MS);
        assert_eq!(next_wait(&cut, &mut interval, base), retry);
    }

    #[test]
    fn jitter_stays_within_a_fifth() {
        let mut jitter = Jitter(12345);
        let base = Duration::from_millis(5_000);
        for _ in 0..1_000 {
            let d = jitter.around(base);
            assert!(d >= Duration::from_millis(4_000) && d <= Duration::from_millis(6_000));
        }
    }
}
