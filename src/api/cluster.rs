//! `GET /cluster`: this node's live view of the cluster, as its core's peer links see it
//! (state, last frame, heartbeat round trip, the peer's clocks), with the hints queued for
//! each peer, the anti-entropy passes' progress and the clock bound's counters, for operators
//! and dashboards.
//!
//! Two clock figures per peer, not to be confused: `wall_clock_offset_ms` is the peer's wall
//! clock minus ours, measured on heartbeats (what NTP would fix); `hlc_offset_ms` is the
//! difference of the two hybrid logical clocks, which observe each other and so stay close
//! whatever the wall clocks say.

use std::fmt::Write as _;
use std::time::Instant;

use std::sync::Arc;

use crate::replication::antientropy::AntiEntropy;
use crate::replication::clock::{self, SkewBound};
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
    /// `MOSTDB_MAX_CLOCK_SKEW_MS` and what it refused and ignored.
    pub clock_bound: Arc<SkewBound>,
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
        let bound = &self.clock_bound;
        let _ = write!(
            text_after(&mut out),
            r#","clock":{{"hlc":{own_hlc},"hlc_ms":{},"wall_ms":{},"max_skew_ms":{},"versions_refused_future":{},"observations_ignored":{}}}"#,
            clock::hlc_ms(own_hlc),
            clock::system_ms(),
            bound.max_skew_ms(),
            bound.refused(),
            bound.ignored()
        );
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
