//! What `/metrics` reads from each layer, wired as closures the `metrics` leaf calls at a
//! scrape: a core's shards (on that core), and the node-wide figures (on the scraping core:
//! its peer links, the node's hint and anti-entropy counters, recovery, connections). Only
//! reads; every figure is kept by the layer that owns it.

use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::metrics::{NodeFigures, PeerFigures, StorageSample};
use crate::replication::peer::PeerLink;
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

/// The node-wide figures, as this core's links see the peers (as `GET /cluster` does).
pub(super) fn node(
    shared: &Arc<Shared>,
    links: &[Option<Rc<PeerLink>>],
) -> Box<dyn Fn() -> NodeFigures> {
    let shared = shared.clone();
    let links = links.to_vec();
    Box::new(move || {
        let hints = shared
            .hint_stats
            .as_ref()
            .map(|h| h.snapshot())
            .unwrap_or_default();
        let peers: Vec<PeerFigures> = (shared.membership.members.iter().zip(&links))
            .enumerate()
            .filter_map(|(i, (member, link))| {
                let status = link.as_ref()?.status();
                let queued = hints.get(i).copied().unwrap_or_default();
                Some(PeerFigures {
                    url: member.url.clone(),
                    up: link.as_ref().is_some_and(|l| l.is_up()),
                    rtt_seconds: status.rtt.map(|rtt| rtt.as_secs_f64()),
                    clock_offset_seconds: status.wall_offset_ms.map(|ms| ms as f64 / 1e3),
                    hints_pending: queued.pending,
                    hints_dropped: queued.dropped,
                })
            })
            .collect();
        // This node counts itself.
        let reachable = 1 + peers.iter().filter(|p| p.up).count();
        let connections = &shared.connections;
        let peer_connections = connections.upgraded() as u64;
        NodeFigures {
            peers,
            quorum_available: reachable >= shared.membership.quorum(),
            recovering: shared.recovery.is_recovering(),
            anti_entropy_keys_copied: shared
                .anti_entropy
                .stats()
                .keys_copied_in
                .load(Ordering::Relaxed),
            client_connections: (connections.open() as u64).saturating_sub(peer_connections),
            peer_connections,
        }
    })
}
