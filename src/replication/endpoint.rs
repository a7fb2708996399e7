//! The accepting side of peer links on one core ([`PeerEndpoint`]: replica operations,
//! anti-entropy questions, the monitor's view question and heartbeats from the peers), and the rule that gates what a
//! recovering node does, written once ([`admits`]): a recovering node gives no vote and shows
//! no data it may lack (I7, DESIGN §4, §7). The coordinator asks it before a client
//! operation, the endpoint before a peer's request.
//!
//! Must not import `http` or `api`.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use super::antientropy::AntiEntropy;
use super::peer::frame::Heartbeat;
use super::peer::PeerService;
use super::protocol::{
    BucketDigest, NodeView, ReachEntry, ReplicaReply, ReplicaRequest, SyncRequest,
};
use super::recovery::Recovery;
use super::{CoreReplica, Replication};
use crate::cluster::health::{Health, PeerReport};

/// What a node is asked to do, as the recovering-node gate sees it.
#[derive(Clone, Copy, Debug)]
pub enum Ask<'a> {
    /// A client's set, get or del, which this node's coordinator would count its own
    /// replica's vote in.
    ClientOp,
    /// A replica operation from a peer's coordinator.
    Replica(&'a ReplicaRequest),
    /// An anti-entropy question from a peer.
    Sync(&'a SyncRequest),
}

/// Whether this node does what it is asked, given its recovery state (I7). While it recovers
/// it refuses all but a `COPY` (hint replay, a peer's repair: no vote, and it only adds what
/// is newer) and the status question (how peers learn it recovers). The one place this rule
/// is written. The view question (monitoring) is always answered too.
pub fn admits(recovery: &Recovery, ask: Ask<'_>) -> bool {
    if !recovery.is_recovering() {
        return true;
    }
    match ask {
        Ask::ClientOp => false,
        Ask::Replica(request) => matches!(request, ReplicaRequest::Copy { .. }),
        Ask::Sync(request) => matches!(request, SyncRequest::Status | SyncRequest::View),
    }
}

/// The accepting side of peer links on one core: replica operations from the peers'
/// coordinators go to the owner core of their key.
pub struct PeerEndpoint {
    replication: Rc<Replication>,
    anti_entropy: Arc<AntiEntropy>,
    recovery: Arc<Recovery>,
    health: Arc<Health>,
}

impl PeerEndpoint {
    pub fn new(
        replication: Rc<Replication>,
        anti_entropy: Arc<AntiEntropy>,
        recovery: Arc<Recovery>,
        health: Arc<Health>,
    ) -> PeerEndpoint {
        PeerEndpoint {
            replication,
            anti_entropy,
            recovery,
            health,
        }
    }

    /// What this node says of itself: build, uptime, recovery, and its store's size summed
    /// over every core's shards (fjall's estimates: cheap, no scan).
    pub async fn report(&self) -> PeerReport {
        let (approximate_keys, disk_bytes) = self.store_size().await;
        PeerReport {
            version: env!("CARGO_PKG_VERSION").to_string(),
            uptime_s: self.health.uptime_s(),
            recovering: self.recovery.is_recovering(),
            approximate_keys,
            disk_bytes,
        }
    }

    /// This node's report and how it sees each member (by URL and node id).
    pub async fn view(&self) -> NodeView {
        let health = &self.health;
        let reach = health
            .urls()
            .iter()
            .zip(health.node_ids())
            .zip(health.reach_row())
            .map(|((url, node_id), reach)| ReachEntry {
                url: url.clone(),
                node_id: node_id.unwrap_or(0),
                reach,
            })
            .collect();
        NodeView {
            report: self.report().await,
            reach,
        }
    }

    /// Approximate records and disk bytes of every shard, asked of each core in turn (a core
    /// that is gone counts nothing).
    async fn store_size(&self) -> (u64, u64) {
        fn size(local: &CoreReplica) -> (u64, u64) {
            let stats = local.shards.iter().flatten().map(|s| s.stats());
            stats.fold((0, 0), |(k, d), s| {
                (k + s.approximate_keys, d + s.disk_bytes)
            })
        }
        let r = &self.replication;
        let mut total = (0, 0);
        for core in 0..r.hub.threads() {
            let (keys, bytes) = if core == r.core {
                size(&r.local)
            } else {
                let asked = r.hub.run_on(core, |local| async move { size(&local) });
                asked.await.unwrap_or_default()
            };
            total = (total.0 + keys, total.1 + bytes);
        }
        total
    }

    /// The node's recovery state and record count. Records are never removed (tombstones are
    /// kept), so any digest scan of this run that counted some is still right and is reused:
    /// only an empty count is checked with a new scan.
    async fn status(&self) -> Option<ReplicaReply> {
        let count = |d: &[BucketDigest]| -> u64 { d.iter().map(|b| b.records).sum() };
        let ae = &self.anti_entropy;
        let mut records = count(&ae.digests(self.recovery.started()).await.ok()?);
        if records == 0 {
            records = count(&ae.digests(Instant::now()).await.ok()?);
        }
        Some(self.recovery.status(records))
    }
}

impl PeerService for PeerEndpoint {
    async fn dispatch(&self, request: ReplicaRequest) -> Option<ReplicaReply> {
        if !admits(&self.recovery, Ask::Replica(&request)) {
            return None;
        }
        match self.replication.serve_peer_request(request).await {
            Ok(reply) => Some(reply),
            // Busy, or a core stopping: nothing was applied.
            Err(err) => {
                tracing::debug!(%err, "peer request not served");
                None
            }
        }
    }

    async fn dispatch_sync(&self, request: SyncRequest) -> Option<ReplicaReply> {
        if !admits(&self.recovery, Ask::Sync(&request)) {
            return None;
        }
        match request {
            SyncRequest::Status => return self.status().await,
            SyncRequest::View => return Some(ReplicaReply::View(self.view().await)),
            _ => {}
        }
        self.anti_entropy.serve(request).await
    }

    fn heartbeat(&self, peer: Heartbeat) -> Heartbeat {
        let hlc = &self.replication.local.hlc;
        hlc.observe(peer.hlc);
        Heartbeat {
            sent_us: 0,
            hlc: hlc.last(),
            wall_ms: hlc.physical_ms(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replication::recovery::Cause;
    use crate::storage::{Meta, Version};

    /// Every kind of request, and whether a recovering node takes it.
    fn every_request() -> Vec<(ReplicaRequest, bool)> {
        let (key, version, value) = (b"k".to_vec(), Version { hlc: 1, origin: 1 }, None);
        vec![
            (ReplicaRequest::Read { key: key.clone() }, false),
            (
                ReplicaRequest::Prepare {
                    key: key.clone(),
                    ballot: version,
                },
                false,
            ),
            (
                ReplicaRequest::Put {
                    key: key.clone(),
                    version,
                    value: value.clone(),
                    meta: Meta::BLIND,
                },
                false,
            ),
            (
                ReplicaRequest::Repair {
                    key: key.clone(),
                    version,
                    value: value.clone(),
                    meta: Meta::BLIND,
                },
                false,
            ),
            (
                ReplicaRequest::Copy {
                    key,
                    version,
                    value,
                    meta: Meta::BLIND,
                },
                true,
            ),
        ]
    }

    fn every_question() -> Vec<(SyncRequest, bool)> {
        vec![
            (SyncRequest::Digests, false),
            (
                SyncRequest::BucketKeys {
                    buckets: vec![0],
                    cursor: Vec::new(),
                },
                false,
            ),
            (SyncRequest::Status, true),
            (SyncRequest::View, true),
        ]
    }

    #[test]
    fn a_voting_node_does_what_it_is_asked() {
        let dir = std::env::temp_dir();
        let voting = Recovery::start(None, false, &dir).expect("recovery state");
        assert!(admits(&voting, Ask::ClientOp));
        for (request, _) in every_request() {
            assert!(admits(&voting, Ask::Replica(&request)), "{request:?}");
        }
        for (question, _) in every_question() {
            assert!(admits(&voting, Ask::Sync(&question)), "{question:?}");
        }
    }

    #[test]
    fn a_recovering_node_gives_no_vote_and_shows_no_data_but_takes_copies() {
        let dir = std::env::temp_dir().join(format!("mostdb-gate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let recovering = Recovery::start(Some(Cause::NewStore), false, &dir).expect("marker");
        assert!(!admits(&recovering, Ask::ClientOp));
        for (request, taken) in every_request() {
            assert_eq!(
                admits(&recovering, Ask::Replica(&request)),
                taken,
                "{request:?}"
            );
        }
        for (question, taken) in every_question() {
            assert_eq!(
                admits(&recovering, Ask::Sync(&question)),
                taken,
                "{question:?}"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
