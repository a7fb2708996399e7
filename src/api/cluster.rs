//! `GET /cluster`: this node's live view of the cluster. Per member: the node-wide state
//! (`cluster::health`: up / suspect / down since when, the same on every core) and what the
//! member last said of itself (version, uptime, recovery, store size); per peer also how this
//! core's link reaches it (`link`, last frame, heartbeat round trip, the peer's clocks) and
//! the hints queued for it. Then the anti-entropy passes' progress and the clock bound's
//! counters. `?view=cluster` adds every node's view of every other (`matrix`), gathered over
//! the peer links with a bounded wait. For operators and dashboards: the names are kept.
//!
//! Two clock figures per peer, not to be confused: `wall_clock_offset_ms` is the peer's wall
//! clock minus ours, measured on heartbeats (what NTP would fix); `hlc_offset_ms` is the
//! difference of the two hybrid logical clocks, which observe each other and so stay close
//! whatever the wall clocks say.

use std::fmt::Write as _;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cluster::health::{Health, PeerReport, Reach};
use crate::cluster::url_identity;
use crate::replication::antientropy::AntiEntropy;
use crate::replication::clock::{self, SkewBound};
use crate::replication::endpoint::PeerEndpoint;
use crate::replication::hints::HintStats;
use crate::replication::peer::{LinkState, PeerLink};
use crate::replication::protocol::{NodeView, ReachEntry, ReplicaReply, SyncRequest};

use super::json::write_go_string;

/// How long `?view=cluster` waits for the peers' views; a node that has not answered by then
/// is a row of `null`s.
pub const CLUSTER_VIEW_WAIT_MS: u64 = 1_000;

/// One member as this core reaches it.
pub struct MemberView {
    pub url: String,
    /// `None`: this node.
    pub link: Option<PeerLink>,
}

/// What `GET /cluster` reports.
pub struct ClusterView {
    pub node_id: u64,
    pub quorum: usize,
    pub members: Vec<MemberView>,
    pub anti_entropy: Arc<AntiEntropy>,
    /// `None` when hints are switched off.
    pub hints: Option<Arc<HintStats>>,
    /// `MOSTDB_MAX_CLOCK_SKEW_MS` and what it refused and ignored.
    pub clock_bound: Arc<SkewBound>,
    /// The node-wide view of every member.
    pub health: Arc<Health>,
    /// Answers for this node itself (its report).
    pub endpoint: Rc<PeerEndpoint>,
}

/// Each member's report (`None`: none yet) and, with `?view=cluster`, each node's row of the
/// matrix (`None`: it did not answer in time).
struct Gathered {
    reports: Vec<Option<PeerReport>>,
    rows: Option<Vec<Option<Vec<Option<Reach>>>>>,
}

impl ClusterView {
    /// `{"code":200,"success":true,"result":{"node_id":…,"members":N,"quorum":Q,"up":U,"nodes":[…]}}`,
    /// with `"matrix"` when `whole_cluster`.
    pub async fn encode(&self, own_hlc: u64, whole_cluster: bool) -> Vec<u8> {
        let gathered = self.gather(whole_cluster).await;
        let now = Instant::now();
        // "up" and "available": as this core's links reach the peers (what its coordinator
        // will use); "state" per node is the node-wide view.
        let up = self
            .members
            .iter()
            .filter(|m| m.link.as_ref().is_none_or(PeerLink::is_up))
            .count();
        let mut out = Vec::with_capacity(512 + 400 * self.members.len());
        let _ = write!(
            text_after(&mut out),
            r#"{{"code":200,"success":true,"result":{{"node_id":"{:016x}","members":{},"quorum":{},"up":{},"available":{},"nodes":["#,
            self.node_id,
            self.members.len(),
            self.quorum,
            up,
            up >= self.quorum
        );
        let hints = self
            .hints
            .as_ref()
            .map(|h| h.snapshot())
            .unwrap_or_default();
        for (i, member) in self.members.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(br#"{"url":"#);
            write_go_string(&mut out, member.url.as_bytes());
            out.extend_from_slice(member_fields(member, now, own_hlc).as_bytes());
            self.health_fields(&mut out, i, gathered.reports[i].as_ref());
            if let (Some(_), Some(queued)) = (&member.link, hints.get(i)) {
                out.extend_from_slice(br#","hints":"#);
                let _ = serde_json::to_writer(&mut out, queued);
            }
            out.push(b'}');
        }
        out.push(b']');
        if let Some(rows) = &gathered.rows {
            self.write_matrix(&mut out, rows);
        }
        self.write_tail(&mut out, own_hlc);
        out
    }

    /// Anti-entropy's progress and the clock, then the envelope's end.
    fn write_tail(&self, out: &mut Vec<u8>, own_hlc: u64) {
        out.extend_from_slice(br#","anti_entropy":"#);
        let _ = serde_json::to_writer(&mut *out, &self.anti_entropy.stats().snapshot());
        let bound = &self.clock_bound;
        let _ = write!(
            text_after(out),
            r#","clock":{{"hlc":{own_hlc},"hlc_ms":{},"wall_ms":{},"max_skew_ms":{},"versions_refused_future":{},"observations_ignored":{}}}"#,
            clock::hlc_ms(own_hlc),
            clock::system_ms(),
            bound.max_skew_ms(),
            bound.refused(),
            bound.ignored()
        );
        out.extend_from_slice(b"}}");
    }

    /// This node's report and the peers' last ones; with `whole_cluster`, every peer is asked
    /// anew (at once, all waited for at most `CLUSTER_VIEW_WAIT_MS`) for its report and row.
    async fn gather(&self, whole_cluster: bool) -> Gathered {
        let own = self.health.self_index();
        let mut reports: Vec<Option<PeerReport>> = (0..self.members.len())
            .map(|i| self.health.peer(i).and_then(|p| p.report))
            .collect();
        let own_view = self.endpoint.view().await;
        reports[own] = Some(own_view.report.clone());
        if !whole_cluster {
            return Gathered {
                reports,
                rows: None,
            };
        }
        let deadline = Instant::now() + Duration::from_millis(CLUSTER_VIEW_WAIT_MS);
        let asked: Vec<_> = self
            .members
            .iter()
            .map(|m| {
                let link = m.link.as_ref()?;
                Some(monoio::spawn(link.call_sync(&SyncRequest::View, deadline)))
            })
            .collect();
        let mut rows = Vec::with_capacity(asked.len());
        for (i, call) in asked.into_iter().enumerate() {
            let view = match call {
                None => Some(own_view.clone()),
                Some(call) => match call.await {
                    Ok(ReplicaReply::View(view)) => Some(view),
                    _ => None,
                },
            };
            if let Some(view) = view.as_ref().filter(|_| i != own) {
                self.health.set_report(i, view.report.clone());
                reports[i] = Some(view.report.clone());
            }
            rows.push(view.map(|v| self.columns(&v)));
        }
        Gathered {
            reports,
            rows: Some(rows),
        }
    }

    /// A node's row in this node's column order; `None` for a member it does not list.
    /// Members are matched by node id (nodes may reach each other through other addresses),
    /// by URL for one that either node never reached.
    fn columns(&self, view: &NodeView) -> Vec<Option<Reach>> {
        let ids = self.health.node_ids();
        self.members
            .iter()
            .zip(ids)
            .map(|(m, id)| {
                let url = url_identity(&m.url);
                let by_id = |e: &&ReachEntry| id.is_some_and(|id| e.node_id == id);
                let by_url = |e: &&ReachEntry| url_identity(&e.url) == url;
                let found = view.reach.iter().find(by_id).or_else(|| {
                    // Only when ids cannot tell: one side never reached the member.
                    let unknown = id.is_none();
                    view.reach
                        .iter()
                        .find(|e| (unknown || e.node_id == 0) && by_url(e))
                });
                found.map(|e| e.reach)
            })
            .collect()
    }

    /// `,"matrix":{"nodes":[url,…],"reach":[[…],…]}`.
    fn write_matrix(&self, out: &mut Vec<u8>, rows: &[Option<Vec<Option<Reach>>>]) {
        out.extend_from_slice(br#","matrix":{"nodes":["#);
        for (i, member) in self.members.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_go_string(out, member.url.as_bytes());
        }
        out.extend_from_slice(br#"],"reach":["#);
        let n = self.members.len();
        for (i, row) in rows.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'[');
            for j in 0..n {
                if j > 0 {
                    out.push(b',');
                }
                match row.as_ref().and_then(|r| r[j]) {
                    Some(reach) => {
                        let _ = write!(text_after(out), r#""{}""#, reach.as_str());
                    }
                    None => out.extend_from_slice(b"null"),
                }
            }
            out.push(b']');
        }
        out.extend_from_slice(b"]}");
    }

    /// The node-wide fields of member `i`: its state since when, and its report (`null`s
    /// until it sent one).
    fn health_fields(&self, out: &mut Vec<u8>, i: usize, report: Option<&PeerReport>) {
        let health = &self.health;
        let (state, since) = match health.peer(i) {
            None => (Reach::SelfNode, health.since_unix_ms(i)),
            Some(peer) => (peer.state, peer.state_since_unix_ms),
        };
        let mut text = format!(
            r#","state":"{}","state_since_unix_ms":{since}"#,
            state.as_str()
        );
        if let Some(ago) = health.peer(i).and_then(|p| p.last_frame_ms_ago) {
            let _ = write!(text, r#","last_frame_ms_ago":{ago}"#);
        }
        let Some(r) = report else {
            text.push_str(
                r#","version":null,"uptime_s":null,"recovering":null,"approximate_keys":null,"disk_bytes":null"#,
            );
            out.extend_from_slice(text.as_bytes());
            return;
        };
        text.push_str(r#","version":"#);
        out.extend_from_slice(text.as_bytes());
        write_go_string(out, r.version.as_bytes());
        let _ = write!(
            text_after(out),
            r#","uptime_s":{},"recovering":{},"approximate_keys":{},"disk_bytes":{}"#,
            r.uptime_s,
            r.recovering,
            r.approximate_keys,
            r.disk_bytes
        );
    }
}

fn member_fields(member: &MemberView, now: Instant, own_hlc: u64) -> String {
    let Some(link) = &member.link else {
        return r#","self":true"#.to_string();
    };
    let status = link.status();
    let state = match status.state {
        LinkState::Connecting => "connecting",
        LinkState::Up => "up",
        LinkState::Down => "down",
        LinkState::SelfLink => "self-link",
        LinkState::Stopped => "stopped",
    };
    let mut text = format!(r#","self":false,"link":"{state}""#);
    if let Some(node) = status.peer_node {
        let _ = write!(text, r#","node_id":"{node:016x}""#);
    }
    if let Some(seen) = status.last_seen {
        let _ = write!(
            text,
            r#","last_seen_ms_ago":{}"#,
            now.saturating_duration_since(seen).as_millis()
        );
    }
    if let Some(rtt) = status.rtt {
        let _ = write!(text, r#","rtt_us":{}"#, rtt.as_micros());
    }
    if let Some(offset) = status.wall_offset_ms {
        let _ = write!(text, r#","wall_clock_offset_ms":{offset}"#);
    }
    if status.peer_hlc != 0 {
        let ms = |hlc: u64| clock::hlc_ms(hlc) as i64;
        let offset = ms(status.peer_hlc) - ms(own_hlc);
        let _ = write!(text, r#","hlc_offset_ms":{offset}"#);
    }
    if let Some(refusal) = status.last_refusal {
        let _ = write!(text, r#","last_refusal":"{}""#, refusal.as_str());
    }
    let _ = write!(
        text,
        r#","in_flight":{},"connects":{}"#,
        status.in_flight, status.connects
    );
    text
}

/// A `fmt::Write` appending to a byte buffer.
fn text_after(out: &mut Vec<u8>) -> impl std::fmt::Write + '_ {
    struct Appender<'a>(&'a mut Vec<u8>);
    impl std::fmt::Write for Appender<'_> {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0.extend_from_slice(s.as_bytes());
            Ok(())
        }
    }
    Appender(out)
}
