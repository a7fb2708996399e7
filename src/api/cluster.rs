//! `GET /cluster`: this node's live view of the cluster, as its core's peer links see it
//! (state, last frame, heartbeat round trip, the peer's clock), with the hints queued for
//! each peer and the anti-entropy passes' progress, for operators and dashboards.

use std::fmt::Write as _;
use std::time::Instant;

use std::sync::Arc;

use crate::replication::antientropy::AntiEntropy;
use crate::replication::clock;
use crate::replication::hints::HintStats;
use crate::replication::peer::{LinkState, PeerLink};

use super::json::write_go_string;

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
}

impl ClusterView {
    /// `{"code":200,"success":true,"result":{"node_id":…,"members":N,"quorum":Q,"up":U,"nodes":[…]}}`.
    pub fn encode(&self, own_hlc: u64) -> Vec<u8> {
        let now = Instant::now();
        let up = self
            .members
            .iter()
            .filter(|m| m.link.as_ref().is_none_or(PeerLink::is_up))
            .count();
        let mut out = Vec::with_capacity(256 + 160 * self.members.len());
        let mut text = String::new();
        let _ = write!(
            text,
            r#"{{"code":200,"success":true,"result":{{"node_id":"{:016x}","members":{},"quorum":{},"up":{},"available":{},"nodes":["#,
            self.node_id,
            self.members.len(),
            self.quorum,
            up,
            up >= self.quorum
        );
        out.extend_from_slice(text.as_bytes());
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
            if let (Some(_), Some(queued)) = (&member.link, hints.get(i)) {
                out.extend_from_slice(br#","hints":"#);
                let _ = serde_json::to_writer(&mut out, queued);
            }
            out.push(b'}');
        }
        out.extend_from_slice(br#"],"anti_entropy":"#);
        let _ = serde_json::to_writer(&mut out, &self.anti_entropy.stats().snapshot());
        out.extend_from_slice(b"}}");
        out
    }
}

fn member_fields(member: &MemberView, now: Instant, own_hlc: u64) -> String {
    let Some(link) = &member.link else {
        return r#","self":true,"state":"up""#.to_string();
    };
    let status = link.status();
    let state = match status.state {
        LinkState::Connecting => "connecting",
        LinkState::Up => "up",
        LinkState::Down => "down",
        LinkState::SelfLink => "self-link",
        LinkState::Stopped => "stopped",
    };
    let mut text = format!(r#","self":false,"state":"{state}""#);
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
    if status.peer_hlc != 0 {
        let ms = |hlc: u64| (hlc >> clock::COUNTER_BITS) as i64;
        let offset = ms(status.peer_hlc) - ms(own_hlc);
        let _ = write!(text, r#","clock_offset_ms":{offset}"#);
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
