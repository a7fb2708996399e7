//! The node-wide live view of every member (DESIGN §12): each core's peer links publish what
//! they see into their [`LinkSlot`] (lock-free, a few relaxed stores per frame), and one
//! monitor task folds the slots of every core into one state per peer ([`Health::tick`]):
//! up, suspect or down since when, with one log line per change and per node (not per core),
//! and whether this node reaches a majority (what `/readyz` answers). It also keeps what the
//! peers last reported of themselves ([`PeerReport`]). Passive state: written by the peer
//! layer, read by the API.
//!
//! Must not import `http`, `api`, `replication`, `storage`, `runtime`, `tls` or `server`.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::limits::{PEER_DOWN_AFTER_MS, PEER_PING_INTERVAL_MS};

/// A peer from which no frame came for this long is suspect (two heartbeats missed); down
/// after `PEER_DOWN_AFTER_MS`, when its links give up on it too.
pub const PEER_SUSPECT_AFTER_MS: u64 = 2 * PEER_PING_INTERVAL_MS;
const _: () = assert!(PEER_PING_INTERVAL_MS < PEER_SUSPECT_AFTER_MS);
const _: () = assert!(PEER_SUSPECT_AFTER_MS < PEER_DOWN_AFTER_MS);

/// How a node sees one member.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Reach {
    /// The node itself.
    SelfNode,
    /// A link is up and a frame came within `PEER_SUSPECT_AFTER_MS`.
    Up,
    /// Silent for longer than `PEER_SUSPECT_AFTER_MS` but less than `PEER_DOWN_AFTER_MS`,
    /// or its links just broke.
    Suspect,
    /// Silent for `PEER_DOWN_AFTER_MS` or more (or never reached).
    Down,
}

impl Reach {
    /// The name in `GET /cluster` (`"state"`, and the matrix's cells).
    pub fn as_str(self) -> &'static str {
        match self {
            Reach::SelfNode => "self",
            Reach::Up => "up",
            Reach::Suspect => "suspect",
            Reach::Down => "down",
        }
    }

    /// The byte on the wire (peer frames) and in the atomics.
    pub fn code(self) -> u8 {
        match self {
            Reach::SelfNode => 0,
            Reach::Up => 1,
            Reach::Suspect => 2,
            Reach::Down => 3,
        }
    }

    pub fn from_code(code: u8) -> Option<Reach> {
        Some(match code {
            0 => Reach::SelfNode,
            1 => Reach::Up,
            2 => Reach::Suspect,
            3 => Reach::Down,
            _ => return None,
        })
    }
}

/// What the links of every core say of one peer, folded: times in ms since [`Health`]'s epoch.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Observation {
    /// Some core's link to it is up.
    pub link_up: bool,
    /// When a frame last came from it, on any core (`None`: never).
    pub last_frame_ms: Option<u64>,
    /// When a link to it last came up or broke, on any core.
    pub last_change_ms: u64,
}

/// The state a peer is in at `now_ms`, given what the links saw. The one place the bounds
/// are applied.
pub fn classify(obs: Observation, now_ms: u64) -> Reach {
    let Some(frame_ms) = obs.last_frame_ms else {
        return Reach::Down;
    };
    let silent_ms = now_ms.saturating_sub(frame_ms);
    if silent_ms >= PEER_DOWN_AFTER_MS {
        return Reach::Down;
    }
    if obs.link_up && silent_ms <= PEER_SUSPECT_AFTER_MS {
        Reach::Up
    } else {
        Reach::Suspect
    }
}

/// One peer's state over time: where it is, since when, and whether it was ever up (the
/// first "up" of a run is no comeback).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Tracker {
    pub state: Reach,
    pub since_ms: u64,
    pub ever_up: bool,
}

/// A change worth a log line.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub from: Reach,
    pub to: Reach,
    /// How long it was in `from`.
    pub after_ms: u64,
    /// `to` is up and the peer had been up before.
    pub comeback: bool,
}

impl Tracker {
    /// Not reached yet, as of `now_ms`.
    pub fn new(now_ms: u64) -> Tracker {
        Tracker {
            state: Reach::Down,
            since_ms: now_ms,
            ever_up: false,
        }
    }

    /// Moves to `state` (as [`classify`]d at `now_ms`); the change, if it is one.
    pub fn step(&mut self, state: Reach, now_ms: u64) -> Option<Change> {
        if state == self.state {
            return None;
        }
        let change = Change {
            from: self.state,
            to: state,
            after_ms: now_ms.saturating_sub(self.since_ms),
            comeback: state == Reach::Up && self.ever_up,
        };
        self.ever_up |= state == Reach::Up;
        self.state = state;
        self.since_ms = now_ms;
        Some(change)
    }
}

/// Sentinels of the atomics: nothing measured yet.
const NONE_U64: u64 = u64::MAX;
const NONE_I64: i64 = i64::MIN;

/// What one core's link to one peer saw, published for the monitor. Written by the link's
/// own core only; read by the monitor and the API.
#[derive(Debug)]
pub struct LinkSlot {
    epoch: Instant,
    up: AtomicBool,
    /// ms since the epoch, `NONE_U64` for never.
    last_frame_ms: AtomicU64,
    last_change_ms: AtomicU64,
    rtt_us: AtomicU64,
    wall_offset_ms: AtomicI64,
    /// The node id the peer proved in its last handshake (0: none yet).
    peer_node: AtomicU64,
}

impl LinkSlot {
    fn new(epoch: Instant) -> LinkSlot {
        LinkSlot {
            epoch,
            up: AtomicBool::new(false),
            last_frame_ms: AtomicU64::new(NONE_U64),
            last_change_ms: AtomicU64::new(0),
            rtt_us: AtomicU64::new(NONE_U64),
            wall_offset_ms: AtomicI64::new(NONE_I64),
            peer_node: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// The link came up with node `peer_node` (a handshake answered: that is a frame too).
    pub fn link_up(&self, peer_node: u64) {
        let now = self.now_ms();
        self.peer_node.store(peer_node, Ordering::Relaxed);
        self.up.store(true, Ordering::Relaxed);
        self.last_change_ms.store(now, Ordering::Relaxed);
        self.last_frame_ms.store(now, Ordering::Relaxed);
    }

    /// The link broke.
    pub fn link_down(&self) {
        self.up.store(false, Ordering::Relaxed);
        self.last_change_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// Bytes arrived on the link.
    pub fn frame(&self) {
        self.last_frame_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// A heartbeat's answer: its round trip and the peer's wall clock minus ours.
    pub fn heartbeat(&self, rtt: Duration, wall_offset_ms: i64) {
        self.rtt_us.store(
            rtt.as_micros().min(u64::MAX as u128 - 1) as u64,
            Ordering::Relaxed,
        );
        self.wall_offset_ms
            .store(wall_offset_ms.max(NONE_I64 + 1), Ordering::Relaxed);
        self.frame();
    }

    fn last_frame(&self) -> Option<u64> {
        Some(self.last_frame_ms.load(Ordering::Relaxed)).filter(|&ms| ms != NONE_U64)
    }
}

/// What a member says of itself (answering `SyncRequest::View`), for `GET /cluster`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PeerReport {
    /// Its build version (`CARGO_PKG_VERSION`).
    pub version: String,
    pub uptime_s: u64,
    pub recovering: bool,
    /// Records in its store, tombstones included, as its storage estimates them.
    pub approximate_keys: u64,
    /// Bytes its store takes on disk.
    pub disk_bytes: u64,
}

/// One peer as the node sees it now: its state and the freshest heartbeat figures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerHealth {
    pub state: Reach,
    pub state_since_unix_ms: u64,
    /// ms since a frame last came from it (`None`: never).
    pub last_frame_ms_ago: Option<u64>,
    pub rtt_us: Option<u64>,
    pub wall_offset_ms: Option<i64>,
    /// What it last said of itself (`None`: it never answered).
    pub report: Option<PeerReport>,
}

/// The node-wide view (see the module doc). One per node, shared by every core.
#[derive(Debug)]
pub struct Health {
    node_id: u64,
    epoch: Instant,
    epoch_unix_ms: u64,
    members: usize,
    self_index: usize,
    quorum: usize,
    urls: Vec<String>,
    /// `slots[core * members + member]` (`member == self_index`: unused).
    slots: Vec<Arc<LinkSlot>>,
    /// Written by the monitor only.
    trackers: Mutex<Vec<Tracker>>,
    majority: AtomicBool,
    /// Whether the majority was ever reached (the first time is no comeback).
    majority_ever: AtomicBool,
    reports: Mutex<Vec<Option<PeerReport>>>,
    /// Cells of `trackers`' states, readable without the lock.
    states: Vec<AtomicU8>,
    since_ms: Vec<AtomicU64>,
}

impl Health {
    /// The view of `urls` (this node is `self_index`, with id `node_id`) over `cores` cores;
    /// majority of `quorum`.
    pub fn new(
        node_id: u64,
        urls: Vec<String>,
        self_index: usize,
        quorum: usize,
        cores: usize,
    ) -> Health {
        let epoch = Instant::now();
        let members = urls.len();
        let slots = (0..cores * members)
            .map(|_| Arc::new(LinkSlot::new(epoch)))
            .collect();
        let state = |i: usize| {
            if i == self_index {
                Reach::SelfNode
            } else {
                Reach::Down
            }
        };
        Health {
            node_id,
            epoch,
            epoch_unix_ms: unix_ms(),
            members,
            self_index,
            quorum,
            slots,
            trackers: Mutex::new((0..members).map(|_| Tracker::new(0)).collect()),
            majority: AtomicBool::new(quorum <= 1),
            majority_ever: AtomicBool::new(quorum <= 1),
            reports: Mutex::new(vec![None; members]),
            states: (0..members)
                .map(|i| AtomicU8::new(state(i).code()))
                .collect(),
            since_ms: (0..members).map(|_| AtomicU64::new(0)).collect(),
            urls,
        }
    }

    /// Where core `core`'s link to member `member` publishes what it sees.
    pub fn slot(&self, core: usize, member: usize) -> Arc<LinkSlot> {
        self.slots[core * self.members + member].clone()
    }

    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    pub fn self_index(&self) -> usize {
        self.self_index
    }

    /// Seconds since this view was made (at the node's start).
    pub fn uptime_s(&self) -> u64 {
        self.epoch.elapsed().as_secs()
    }

    /// Whether this node reaches a majority (itself and enough peers up), as of the last tick.
    pub fn has_majority(&self) -> bool {
        self.majority.load(Ordering::Relaxed)
    }

    /// Each member's node id as its last handshake proved it (this node: its own; `None`:
    /// never reached).
    pub fn node_ids(&self) -> Vec<Option<u64>> {
        (0..self.members)
            .map(|m| {
                if m == self.self_index {
                    return Some(self.node_id);
                }
                let ids = self
                    .member_slots(m)
                    .map(|s| s.peer_node.load(Ordering::Relaxed));
                ids.filter(|&id| id != 0).max()
            })
            .collect()
    }

    /// How this node sees each member, indexed like the members.
    pub fn reach_row(&self) -> Vec<Reach> {
        (0..self.members).map(|i| self.state(i)).collect()
    }

    fn state(&self, member: usize) -> Reach {
        Reach::from_code(self.states[member].load(Ordering::Relaxed)).unwrap_or(Reach::Down)
    }

    /// Member `member` as seen now (`None`: this node itself, or no such member).
    pub fn peer(&self, member: usize) -> Option<PeerHealth> {
        if member == self.self_index || member >= self.members {
            return None;
        }
        let now = self.now_ms();
        let freshest = self
            .member_slots(member)
            .filter(|s| s.rtt_us.load(Ordering::Relaxed) != NONE_U64)
            .max_by_key(|s| s.last_frame());
        let rtt = freshest.map(|s| s.rtt_us.load(Ordering::Relaxed));
        let offset = freshest.map(|s| s.wall_offset_ms.load(Ordering::Relaxed));
        let report = self.reports.lock().ok().and_then(|r| r[member].clone());
        Some(PeerHealth {
            state: self.state(member),
            state_since_unix_ms: self.since_unix_ms(member),
            last_frame_ms_ago: self
                .observe(member)
                .last_frame_ms
                .map(|f| now.saturating_sub(f)),
            rtt_us: rtt.filter(|&r| r != NONE_U64),
            wall_offset_ms: offset.filter(|&o| o != NONE_I64),
            report,
        })
    }

    /// When member `member` (this node: the node's start) entered its current state.
    pub fn since_unix_ms(&self, member: usize) -> u64 {
        self.epoch_unix_ms + self.since_ms[member].load(Ordering::Relaxed)
    }

    /// Keeps what member `member` said of itself.
    pub fn set_report(&self, member: usize, report: PeerReport) {
        if let Ok(mut reports) = self.reports.lock() {
            if let Some(slot) = reports.get_mut(member) {
                *slot = Some(report);
            }
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn member_slots(&self, member: usize) -> impl Iterator<Item = &LinkSlot> {
        self.slots
            .iter()
            .skip(member)
            .step_by(self.members.max(1))
            .map(|s| &**s)
    }

    /// Every core's links to `member`, folded.
    fn observe(&self, member: usize) -> Observation {
        self.member_slots(member)
            .fold(Observation::default(), |acc, slot| Observation {
                link_up: acc.link_up || slot.up.load(Ordering::Relaxed),
                last_frame_ms: acc.last_frame_ms.max(slot.last_frame()),
                last_change_ms: acc
                    .last_change_ms
                    .max(slot.last_change_ms.load(Ordering::Relaxed)),
            })
    }

    /// Re-reads every slot: each peer's state, a log line per change, and the majority (one
    /// log line when it is lost or regained). Run by one task (the monitor), every
    /// `MONITOR_TICK_MS`. Answers the changes an operator is warned of (for the audit log).
    pub fn tick(&self) -> Vec<HealthEvent> {
        let now = self.now_ms();
        let Ok(mut trackers) = self.trackers.lock() else {
            return Vec::new();
        };
        let mut events = Vec::new();
        let mut up = 1;
        for member in (0..self.members).filter(|&m| m != self.self_index) {
            let state = classify(self.observe(member), now);
            if let Some(change) = trackers[member].step(state, now) {
                let url = &self.urls[member];
                if let Some(what) = log_change(url, change) {
                    events.push(HealthEvent {
                        what,
                        peer: Some(url.clone()),
                    });
                }
                self.states[member].store(state.code(), Ordering::Relaxed);
                self.since_ms[member].store(now, Ordering::Relaxed);
            }
            up += usize::from(state == Reach::Up);
        }
        drop(trackers);
        let majority = up >= self.quorum;
        if majority != self.majority.swap(majority, Ordering::Relaxed) {
            let again = self.majority_ever.swap(true, Ordering::Relaxed);
            if let Some(what) = log_majority(majority, again, up, self.quorum, self.members) {
                events.push(HealthEvent { what, peer: None });
            }
        }
        events
    }
}

/// A change of the cluster's state an operator is warned of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthEvent {
    /// `peer_down`, `peer_back`, `majority_lost` or `majority_regained`.
    pub what: &'static str,
    /// The peer's URL (`None`: the majority).
    pub peer: Option<String>,
}

/// One line per change of a peer's state: WARN when it goes down or comes back (and then its
/// name as an event), INFO for the rest (first contact, suspicion and its end).
fn log_change(peer: &str, change: Change) -> Option<&'static str> {
    let (from, to, after_ms) = (change.from.as_str(), change.to.as_str(), change.after_ms);
    match change.to {
        Reach::Down => {
            tracing::warn!(peer, from, after_ms, "peer down");
            Some("peer_down")
        }
        Reach::Up if change.comeback && change.from == Reach::Down => {
            tracing::warn!(peer, after_ms, "peer back");
            Some("peer_back")
        }
        Reach::Up if !change.comeback => {
            tracing::info!(peer, "peer up");
            None
        }
        _ => {
            tracing::info!(peer, from, to, after_ms, "peer state");
            None
        }
    }
}

fn log_majority(
    majority: bool,
    again: bool,
    up: usize,
    quorum: usize,
    members: usize,
) -> Option<&'static str> {
    match (majority, again) {
        (true, false) => {
            tracing::info!(up, quorum, members, "majority reached");
            None
        }
        (true, true) => {
            tracing::warn!(up, quorum, members, "majority regained");
            Some("majority_regained")
        }
        (false, _) => {
            tracing::warn!(
                up,
                quorum,
                members,
                "majority lost: every operation is refused until a majority is reachable again"
            );
            Some("majority_lost")
        }
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;
