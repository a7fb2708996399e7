//! The node's monitor (DESIGN §12), one task on one core: every [`MONITOR_TICK_MS`] it folds
//! what every core's links saw into the node-wide view (`cluster::health`: each peer's state,
//! one log line per change, the majority), every [`MONITOR_REPORT_INTERVAL_MS`] it asks each
//! peer for its own report over this core's links (`SyncRequest::View`: version, uptime,
//! recovery, store size), and it logs "ready" once, when the node first is (recovered, with a
//! majority): never before. Must not import `http` or `api`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::PeerLink;
use crate::audit::{AuditLog, AuditRecord};
use crate::cluster::health::Health;
use crate::replication::protocol::{ReplicaReply, SyncRequest};
use crate::runtime::Latch;

/// How often the view is folded: a state change is seen (and a lost majority refused by
/// `/readyz`) at most this late.
pub const MONITOR_TICK_MS: u64 = 100;
/// How often each peer is asked for its report.
pub const MONITOR_REPORT_INTERVAL_MS: u64 = 1_000;
/// How long a report may take; shorter than the interval, so at most one question per peer is
/// in flight.
pub const MONITOR_REPORT_WAIT_MS: u64 = 800;
const _: () = assert!(MONITOR_REPORT_WAIT_MS < MONITOR_REPORT_INTERVAL_MS);
const _: () = assert!(MONITOR_TICK_MS <= MONITOR_REPORT_INTERVAL_MS);

/// What the monitor watches.
pub struct Monitor {
    pub health: Arc<Health>,
    /// This core's links, indexed like the members (`None`: this node).
    pub links: Vec<Option<PeerLink>>,
    /// Set once the node no longer recovers.
    pub ready: Arc<AtomicBool>,
    /// The address the node serves on (for the "ready" line).
    pub addr: SocketAddr,
    /// Where peers going down or coming back, and the majority lost or regained, are recorded.
    pub audit: Arc<AuditLog>,
}

/// Runs the monitor until `stop` is set.
pub async fn run(monitor: Monitor, stop: Latch) {
    let tick = Duration::from_millis(MONITOR_TICK_MS);
    let every = Duration::from_millis(MONITOR_REPORT_INTERVAL_MS);
    let mut announced = false;
    let mut next_report = Instant::now();
    loop {
        monoio::select! {
            _ = monoio::time::sleep(tick) => {}
            _ = stop.wait() => break,
        }
        let health = &monitor.health;
        for event in health.tick() {
            let record = AuditRecord {
                op: "membership",
                outcome: event.what,
                detail: event.peer.as_deref(),
                ..AuditRecord::default()
            };
            monitor.audit.record(record).await;
        }
        if !announced && monitor.ready.load(Ordering::SeqCst) && health.has_majority() {
            announced = true;
            tracing::info!(addr = %monitor.addr, "ready");
        }
        if Instant::now() >= next_report {
            next_report = Instant::now() + every;
            ask_reports(&monitor);
        }
    }
}

/// Asks every peer whose link is up for its report; each answer is kept as it comes.
fn ask_reports(monitor: &Monitor) {
    let deadline = Instant::now() + Duration::from_millis(MONITOR_REPORT_WAIT_MS);
    for (member, link) in monitor.links.iter().enumerate() {
        let Some(link) = link.as_ref().filter(|l| l.is_up()) else {
            continue;
        };
        let asked = link.call_sync(&SyncRequest::View, deadline);
        let health = monitor.health.clone();
        monoio::spawn(async move {
            if let Ok(ReplicaReply::View(view)) = asked.await {
                health.set_report(member, view.report);
            }
        });
    }
}
