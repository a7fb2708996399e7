//! What `/metrics` reads from each layer, wired as closures the `metrics` leaf calls at a
//! scrape: a core's shards (on that core), and the node-wide figures (the node-wide health
//! view of the peers, the node's hint and anti-entropy counters, recovery, connections). Only
//! reads; every figure is kept by the layer that owns it.

use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::cluster::health::Reach;
use crate::metrics::{NodeFigures, PeerFigures, StorageSample};
use crate::replication::CoreReplica;

use super::Shared;

/// This core's shards' figures, added up.
pub(super) fn storage(replica: Rc<CoreReplica>) -> Box<dyn Fn() -> StorageSample> {
    Box::new(move || {
        let mut sample = StorageSample::default();
        for stats in replica.shard_stats() {
            sample.add(&StorageSample {
                disk_bytes: stats.disk_bytes,
                write_stalls: stats.stalled_writes,
                fsync: stats.fsync_seconds,
            });
        }
        sample
    })
}

/// The node-wide figures: the peers as the node-wide health view sees them (every core's
/// links folded, as `GET /cluster` shows them), with the hints queued for each.
pub(super) fn node(shared: &Arc<Shared>) -> Box<dyn Fn() -> NodeFigures> {
    let shared = shared.clone();
    Box::new(move || {
        let hints = shared
            .hint_stats
            .as_ref()
            .map(|h| h.snapshot())
            .unwrap_or_default();
        let health = &shared.health;
        let peers: Vec<PeerFigures> = (shared.membership.members.iter().enumerate())
            .filter_map(|(i, member)| {
                let peer = health.peer(i)?;
                let queued = hints.get(i).copied().unwrap_or_default();
                Some(PeerFigures {
                    url: member.url.clone(),
                    up: peer.state == Reach::Up,
                    rtt_seconds: peer.rtt_us.map(|us| us as f64 / 1e6),
                    clock_offset_seconds: peer.wall_offset_ms.map(|ms| ms as f64 / 1e3),
                    hints_pending: queued.pending,
                    hints_dropped: queued.dropped,
                })
            })
            .collect();
        let connections = &shared.connections;
        let peer_connections = connections.upgraded() as u64;
        NodeFigures {
            peers,
            quorum_available: health.has_majority(),
            recovering: shared.recovery.is_recovering(),
            anti_entropy_keys_copied: shared
                .anti_entropy
                .stats()
                .keys_copied_in
                .load(Ordering::Relaxed),
            anti_entropy_copies_refused: shared
                .anti_entropy
                .stats()
                .copies_refused
                .load(Ordering::Relaxed),
            expired_keys_reclaimed: shared.expiry.reclaimed.load(Ordering::Relaxed),
            client_connections: (connections.open() as u64).saturating_sub(peer_connections),
            peer_connections,
        }
    })
}
