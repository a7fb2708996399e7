//! Recovery without a vote (DESIGN §4, §7): a node that may have forgotten votes it gave — its
//! store is new (wiped, replaced, or a new member) while it belongs to a multi-node cluster, or
//! the machine crashed under `MOSTDB_SYNC=os`, or an earlier recovery was cut short — must not
//! vote until it again holds every write that may have counted its old vote.
//!
//! While recovering the node performs no replica operation for a peer but `COPY` (whose ack is
//! never a vote, I7), its coordinator refuses client operations (`NotMost`), and `/readyz` is
//! 503. It first waits out the operation deadline (every operation that might have counted an
//! old vote is then over: a completed one is held by Q − 1 other members), then copies, with
//! full anti-entropy pulls, from N − Q + 1 peers that are not recovering themselves: at least
//! one of them holds each such write. Then it votes.
//!
//! New cluster versus lost data: after the wait, if every peer answers and none holds a single
//! record, no write can have completed anywhere (a completed write is held by Q − 1 ≥ 1 peers),
//! so there is nothing to copy and the node votes at once. That is how a brand-new cluster,
//! every node starting empty, comes up on its own; a single empty node among peers with data
//! recovers. The `RECOVERING` marker file in the store root (`storage::layout`) makes a crash
//! during recovery restart it.
//!
//! The promise floor (DESIGN §10): a CAS promise this node forgot was also given by a majority,
//! so by one of the peers it copies from (or, for a new cluster, one of all its peers), whose
//! clock observed that ballot. Before it votes, the node takes the largest HLC those peers
//! report in a heartbeat answered after the wait, and records it as its promise floor: every
//! key's promise counts as at least that, so a version below a forgotten promise is refused.
//! Must not import `http` or `api`.

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::config::SyncMode;
use crate::limits::{
    RECOVERY_DEADLINE_MARGIN_MS, RECOVERY_FLOOR_POLL_MS, RECOVERY_FLOOR_WAIT_MS,
    RECOVERY_LOG_EVERY_MS, RECOVERY_POLL_MS, RECOVERY_PULL_PASSES_MAX, RECOVERY_STATUS_TIMEOUT_MS,
};
use crate::replication::antientropy::{self, AntiEntropy};
use crate::replication::peer::{LinkState, PeerLink};
use crate::replication::protocol::{ReplicaReply, SyncRequest};
use crate::replication::Replication;
use crate::runtime::Latch;
use crate::storage::{layout, StoreInfo};

/// Why a node must recover before it votes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// The store was created by this run in a multi-node cluster: wiped, replaced or new.
    NewStore,
    /// Kernel boot id changed without a clean shutdown, under `MOSTDB_SYNC=os`.
    MachineCrash,
    /// An earlier recovery did not finish.
    Interrupted,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::NewStore => "the store is new (created by this start)",
            Cause::MachineCrash => {
                "the machine crashed (boot id changed, no clean shutdown) under MOSTDB_SYNC=os"
            }
            Cause::Interrupted => "an earlier recovery did not finish",
        }
    }
}

/// Whether (and why) a node with this store must recover before it votes.
pub fn cause(info: &StoreInfo, sync: SyncMode, members: usize, root: &Path) -> Option<Cause> {
    if members <= 1 {
        return None;
    }
    if layout::recovering_marker(root).exists() {
        Some(Cause::Interrupted)
    } else if info.created {
        Some(Cause::NewStore)
    } else if !info.last_shutdown_clean && info.boot_changed && sync == SyncMode::Os {
        Some(Cause::MachineCrash)
    } else {
        None
    }
}

/// The node's recovery state, shared by every core.
pub struct Recovery {
    recovering: AtomicBool,
    created: bool,
    marker: PathBuf,
    started: Instant,
    reason: Mutex<String>,
}

impl Recovery {
    /// The state at start; with a cause, writes the marker (synced) before anything else runs.
    pub fn start(cause: Option<Cause>, created: bool, root: &Path) -> std::io::Result<Recovery> {
        let marker = layout::recovering_marker(root);
        if let Some(cause) = cause {
            std::fs::write(&marker, cause.as_str())?;
            std::fs::File::open(&marker)?.sync_all()?;
            std::fs::File::open(root)?.sync_all()?;
        }
        Ok(Recovery {
            recovering: AtomicBool::new(cause.is_some()),
            created,
            marker,
            started: Instant::now(),
            reason: Mutex::new(cause.map_or(String::new(), |c| c.as_str().to_string())),
        })
    }

    /// When this run started (the node has not voted since, if it recovers).
    pub fn started(&self) -> Instant {
        self.started
    }

    pub fn is_recovering(&self) -> bool {
        self.recovering.load(Ordering::Acquire)
    }

    /// Why the node is not voting yet (empty once it votes).
    pub fn reason(&self) -> String {
        self.reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_reason(&self, reason: &str) {
        *self.reason.lock().unwrap_or_else(PoisonError::into_inner) = reason.to_string();
    }

    /// The answer to a peer's [`SyncRequest::Status`].
    pub fn status(&self, records: u64) -> ReplicaReply {
        ReplicaReply::Status {
            recovering: self.is_recovering(),
            created: self.created,
            records,
        }
    }

    /// Removes the marker (synced), then lets the node vote.
    fn finish(&self, root: &Path) -> std::io::Result<()> {
        match std::fs::remove_file(&self.marker) {
            Ok(()) => std::fs::File::open(root)?.sync_all()?,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
        self.set_reason("");
        self.recovering.store(false, Ordering::Release);
        Ok(())
    }
}

/// One peer's answer to a status question.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerState {
    pub recovering: bool,
    pub records: u64,
}

/// What to do in one round of recovery.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Every peer answered and none holds data: nothing can be missing.
    VoteNow,
    /// Copy from these peers (healthy, not yet copied from).
    CopyFrom(Vec<usize>),
    /// Too few healthy peers: the reason.
    Wait(String),
}

/// Decides from the peers' states (`None`: no answer) and the peers already copied from
/// (`done`), with `needed` = N − Q + 1 peers to copy from.
pub fn decide(states: &[Option<PeerState>], done: &[bool], needed: usize) -> Decision {
    if !states.is_empty() && states.iter().all(|s| s.is_some_and(|s| s.records == 0)) {
        return Decision::VoteNow;
    }
    let copied = done.iter().filter(|&&d| d).count();
    let fresh: Vec<usize> = states
        .iter()
        .enumerate()
        .filter(|(i, s)| !done[*i] && s.is_some_and(|s| !s.recovering))
        .map(|(i, _)| i)
        .collect();
    if copied + fresh.len() >= needed {
        let take = needed.saturating_sub(copied);
        return Decision::CopyFrom(fresh.into_iter().take(take).collect());
    }
    let silent = states.iter().filter(|s| s.is_none()).count();
    let recovering = states
        .iter()
        .filter(|s| s.is_some_and(|s| s.recovering))
        .count();
    Decision::Wait(format!(
        "needs {needed} healthy peers to copy from, has {}: {silent} unreachable, {recovering} \
         recovering themselves",
        copied + fresh.len()
    ))
}

/// What the recovery task needs.
pub struct Task {
    pub recovery: Arc<Recovery>,
    pub anti_entropy: Arc<AntiEntropy>,
    pub replication: Rc<Replication>,
    /// One link per peer (this core's).
    pub links: Vec<PeerLink>,
    /// N − Q + 1.
    pub needed: usize,
    /// The operation deadline (`MOSTDB_TIMEOUT_MS`).
    pub timeout: Duration,
    pub root: PathBuf,
    /// Set once the node votes.
    pub ready: Arc<AtomicBool>,
}

/// Runs the recovery until the node may vote (then sets `ready`) or `stop` is set.
pub async fn run(task: Task, stop: Latch) {
    let rec = &task.recovery;
    let wait = task.timeout + Duration::from_millis(RECOVERY_DEADLINE_MARGIN_MS);
    tracing::warn!(
        reason = %rec.reason(),
        wait_ms = wait.as_millis() as u64,
        needed = task.needed,
        "recovering: this node does not vote until it has copied from its peers"
    );
    monoio::select! {
        _ = stop.wait() => return,
        _ = monoio::time::sleep(wait.saturating_sub(rec.started.elapsed())) => {}
    }
    let waited = Instant::now();
    let mut done = vec![false; task.links.len()];
    let mut copied = 0u64;
    let mut last_log: Option<Instant> = None;
    let (how, floor) = loop {
        let states = peer_states(&task.links).await;
        match decide(&states, &done, task.needed) {
            Decision::VoteNow => {
                let everyone = vec![true; task.links.len()];
                if let Some(floor) = promise_floor(&task.links, &everyone, waited).await {
                    break ("no peer holds any record: a new cluster", floor);
                }
                rec.set_reason("waiting for every peer's clock (the promise floor)");
            }
            Decision::CopyFrom(peers) => {
                for i in peers {
                    copied += pull(&task, i, &mut done).await;
                }
                if done.iter().filter(|&&d| d).count() >= task.needed {
                    if let Some(floor) = promise_floor(&task.links, &done, waited).await {
                        break ("copied from enough healthy peers", floor);
                    }
                    rec.set_reason("waiting for the copy sources' clocks (the promise floor)");
                }
            }
            Decision::Wait(reason) => {
                rec.set_reason(&reason);
                if last_log
                    .is_none_or(|t| t.elapsed() >= Duration::from_millis(RECOVERY_LOG_EVERY_MS))
                {
                    tracing::warn!(%reason, "still recovering: not voting, not ready");
                    last_log = Some(Instant::now());
                }
            }
        }
        monoio::select! {
            _ = stop.wait() => return,
            _ = monoio::time::sleep(Duration::from_millis(RECOVERY_POLL_MS)) => {}
        }
    };
    if let Err(err) = task.replication.raise_promise_floor(floor) {
        tracing::error!(%err, "cannot record the promise floor; staying out of the cluster");
        return;
    }
    if let Err(err) = rec.finish(&task.root) {
        tracing::error!(%err, "cannot remove the recovery marker; staying out of the cluster");
        return;
    }
    task.ready.store(true, Ordering::SeqCst);
    tracing::info!(
        how,
        copied,
        promise_floor = floor,
        took_ms = rec.started.elapsed().as_millis() as u64,
        "recovered: this node votes again"
    );
}

/// The largest HLC the `sources` (indices into `links`) report in a heartbeat answered after
/// `since`, waiting a few heartbeats for each; `None` if one of them sends none in time.
async fn promise_floor(links: &[PeerLink], sources: &[bool], since: Instant) -> Option<u64> {
    let give_up = Instant::now() + Duration::from_millis(RECOVERY_FLOOR_WAIT_MS);
    let mut floor = 0;
    for (link, _) in links.iter().zip(sources).filter(|(_, &s)| s) {
        loop {
            let status = link.status();
            if status.peer_hlc_at.is_some_and(|at| at > since) {
                floor = floor.max(status.peer_hlc);
                break;
            }
            if Instant::now() >= give_up {
                return None;
            }
            monoio::time::sleep(Duration::from_millis(RECOVERY_FLOOR_POLL_MS)).await;
        }
    }
    Some(floor)
}

/// One full pull from peer `i`; marks it done on success. Returns the records copied.
async fn pull(task: &Task, i: usize, done: &mut [bool]) -> u64 {
    let link = &task.links[i];
    let peer = link.config().addr.as_str();
    let result = antientropy::full_pull(
        &task.anti_entropy,
        &task.replication,
        link,
        RECOVERY_PULL_PASSES_MAX,
    )
    .await;
    match result {
        Ok(copied) => {
            done[i] = true;
            tracing::info!(peer, copied, "recovery: copied everything this peer holds");
            copied
        }
        Err(err) => {
            let reason = format!("copy from {peer} failed: {err}");
            tracing::warn!(%reason, "recovery: will retry");
            task.recovery.set_reason(&reason);
            0
        }
    }
}

/// Every peer's state; `None` for a peer whose link is down or that did not answer.
async fn peer_states(links: &[PeerLink]) -> Vec<Option<PeerState>> {
    let mut states = Vec::with_capacity(links.len());
    for link in links {
        if link.status().state != LinkState::Up {
            states.push(None);
            continue;
        }
        let deadline = Instant::now() + Duration::from_millis(RECOVERY_STATUS_TIMEOUT_MS);
        let state = match link.call_sync(&SyncRequest::Status, deadline).await {
            Ok(ReplicaReply::Status {
                recovering,
                records,
                ..
            }) => Some(PeerState {
                recovering,
                records,
            }),
            _ => None,
        };
        states.push(state);
    }
    states
}

/// The largest operation timeout (`MOSTDB_TIMEOUT_MS`, in ms) ever in force on this node, at
/// least `timeout_ms`, which is recorded first (durably, in the store root) if it is larger.
///
/// Recovery waits out every operation that may have counted a vote this node forgot; such an
/// operation started before this node stopped, with the deadline then in force on its
/// coordinator. The timeout can be lowered at runtime (`PUT /admin/config`, SIGHUP) and the
/// node restarted with yet another one, so the wait is the largest timeout ever in force here
/// (the coordinators are the peers, which are given the same settings; `?scope=cluster`
/// changes them together). Call it at start and before a timeout takes effect.
pub fn timeout_high_water(root: &Path, timeout_ms: u64) -> std::io::Result<u64> {
    let path = root.join(layout::TIMEOUT_MAX_FILE);
    let recorded = match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().parse::<u64>().ok(),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(err) => return Err(err),
    };
    if let Some(recorded) = recorded.filter(|recorded| *recorded >= timeout_ms) {
        return Ok(recorded);
    }
    let partial = root.join(format!("{}.partial", layout::TIMEOUT_MAX_FILE));
    let mut file = std::fs::File::create(&partial)?;
    std::io::Write::write_all(&mut file, format!("{timeout_ms}\n").as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&partial, &path)?;
    std::fs::File::open(root)?.sync_all()?;
    Ok(timeout_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeout_high_water_only_rises_and_survives_a_restart() {
        let root = std::env::temp_dir().join(format!("mostdb-hw-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        assert_eq!(timeout_high_water(&root, 1500).unwrap(), 1500);
        assert_eq!(timeout_high_water(&root, 9000).unwrap(), 9000);
        // Lowered at runtime, or restarted with a lower one: recovery still waits 9 s.
        assert_eq!(timeout_high_water(&root, 100).unwrap(), 9000);
        assert_eq!(timeout_high_water(&root, 1500).unwrap(), 9000);
        std::fs::remove_dir_all(&root).unwrap();
    }

    fn up(recovering: bool, records: u64) -> Option<PeerState> {
        Some(PeerState {
            recovering,
            records,
        })
    }

    #[test]
    fn a_new_cluster_votes_at_once_only_if_every_peer_answers_empty() {
        assert_eq!(
            decide(&[up(true, 0), up(true, 0)], &[false, false], 2),
            Decision::VoteNow
        );
        // One peer silent: it may hold the only other copy of a write.
        assert!(matches!(
            decide(&[up(true, 0), None], &[false, false], 2),
            Decision::Wait(_)
        ));
    }

    #[test]
    fn copies_from_healthy_peers_only_and_waits_for_enough() {
        assert_eq!(
            decide(&[up(false, 5), up(false, 0)], &[false, false], 2),
            Decision::CopyFrom(vec![0, 1])
        );
        assert!(matches!(
            decide(&[up(false, 5), up(true, 5)], &[false, false], 2),
            Decision::Wait(_)
        ));
        assert!(matches!(
            decide(&[up(false, 5), None], &[false, false], 2),
            Decision::Wait(_)
        ));
        // A peer already copied from counts even while it is unreachable now.
        assert_eq!(
            decide(&[None, up(false, 5)], &[true, false], 2),
            Decision::CopyFrom(vec![1])
        );
        // Five members, quorum three: three peers needed of four.
        let four = [up(false, 1), None, up(false, 1), up(false, 1)];
        assert_eq!(
            decide(&four, &[false; 4], 3),
            Decision::CopyFrom(vec![0, 2, 3])
        );
    }

    #[test]
    fn cause_follows_the_store() {
        let dir = std::env::temp_dir().join(format!("mostdb-recovery-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut info = StoreInfo {
            node_id: 1,
            shards: 1,
            created: true,
            last_shutdown_clean: true,
            boot_changed: false,
        };
        assert_eq!(cause(&info, SyncMode::Os, 1, &dir), None);
        assert_eq!(cause(&info, SyncMode::Os, 3, &dir), Some(Cause::NewStore));
        info.created = false;
        assert_eq!(cause(&info, SyncMode::Os, 3, &dir), None);
        info.last_shutdown_clean = false;
        info.boot_changed = true;
        assert_eq!(cause(&info, SyncMode::Always, 3, &dir), None);
        assert_eq!(
            cause(&info, SyncMode::Os, 3, &dir),
            Some(Cause::MachineCrash)
        );
        let rec = Recovery::start(Some(Cause::NewStore), true, &dir).expect("marker");
        info.boot_changed = false;
        assert_eq!(
            cause(&info, SyncMode::Os, 3, &dir),
            Some(Cause::Interrupted)
        );
        rec.finish(&dir).expect("finish");
        assert!(!rec.is_recovering());
        assert_eq!(cause(&info, SyncMode::Os, 3, &dir), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
