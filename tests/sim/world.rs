//! The simulated cluster: nodes (replica state with a durable and a volatile part, a skewed
//! clock with the HLC rule), a network that loses, delays, reorders and duplicates, crashes
//! and restarts, and one event queue ordered by (time, sequence). Everything random comes
//! from one seeded [`Rng`], and no hash-ordered iteration is used, so a seed replays exactly.
//!
//! The client side (operations, the coordinator driver, the outcome checks) is in
//! `clients.rs`; this file is the "hardware" and the replica.

pub use super::config::Config;
use super::history::Recorder;
use super::rng::Rng;
use mostdb::replication::clock;
use mostdb::replication::coordinator::{quorum, ContendedKeys};
use mostdb::replication::protocol::{ReplicaReply, ReplicaRequest};
use mostdb::replication::replica::{decide, stored_record, ClockBound};
use mostdb::storage::{Record, Version};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

pub type OpId = u64;
pub type Check = Result<(), String>;

#[derive(Clone, Debug)]
pub enum Event {
    ClientNext(usize),
    /// A replica request on the wire; `op: None` for COPY and hinted handoff (no answer awaited).
    Request {
        to: usize,
        from: usize,
        op: Option<OpId>,
        round: u32,
        request: ReplicaRequest,
    },
    Reply {
        to: usize,
        from: usize,
        op: OpId,
        round: u32,
        reply: ReplicaReply,
    },
    Deadline(OpId),
    /// The driver's clock has the fresh version an operation asked for.
    Version(OpId),
    Sync(usize),
    Crash(usize),
    Restart(usize),
    AntiEntropy(usize),
    ClockJump(usize),
    /// Cut a random directed link for a while.
    Cut,
    /// A random up node loses its whole state (a wiped disk, or a machine crash under
    /// `MOSTDB_SYNC=os`), unless another node still owes a recovery.
    Amnesia,
    /// A recovering node has waited out the operation deadline: it copies, then votes.
    Recover {
        node: usize,
        incarnation: u32,
    },
    /// A random node's clock leaps far ahead (`true`), or comes back (`false`).
    FarJump {
        node: usize,
        ahead: bool,
    },
    /// A hostile peer sends a random node a PUT, REPAIR or COPY under a far-future version.
    Forge,
}

struct Scheduled {
    time: u64,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.time, self.seq) == (other.time, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.time, self.seq).cmp(&(other.time, other.seq))
    }
}

/// A reply held back until what it reveals is durable (group commit).
struct Held {
    event: Event,
    key: usize,
    reveals: Version,
}

pub struct Node {
    pub up: bool,
    /// Bumped by each crash: coordinators of an earlier incarnation are gone.
    pub incarnation: u32,
    pub(super) skew_ms: i64,
    /// The HLC's last value. Kept across crashes: the real clock persists a ceiling (a wipe
    /// loses it, with the node id: the node then issues under a new origin).
    pub(super) hlc_last: u64,
    /// The node's id in the versions it issues (the real node's random id, new after a wipe).
    pub origin: u64,
    /// The node believes it must recover: it answers only COPY and refuses client operations.
    /// Survives crashes (the real `RECOVERING` marker file).
    pub recovering: bool,
    /// The world's truth: the node lost its state and has not yet copied it back. I7: such a
    /// node never answers (never votes), whatever it believes.
    owes_recovery: bool,
    pub volatile: BTreeMap<usize, Record>,
    durable: BTreeMap<usize, Record>,
    /// Some write is not yet durable.
    dirty: bool,
    held: Vec<Held>,
    /// I2: the largest version of each key this replica revealed in an answer.
    revealed: BTreeMap<usize, Version>,
    pub contended: ContendedKeys,
    /// The promise floor its last recovery set (DESIGN §10): the largest HLC of its copy
    /// sources. Kept with the store (a wipe loses it).
    floor: Version,
}

/// Past the operation deadline before a recovering node copies (the real node's margin).
const RECOVERY_MARGIN_MS: u64 = 1;
/// A recovery short of healthy peers tries again within this.
const RECOVERY_RETRY_MS_MAX: u64 = 10;

/// Simulated ms at the start (physical clocks are this plus a skew, never below 1).
const T0_MS: u64 = 1_000;
/// Bits of the HLC counter below the milliseconds (as in `replication::clock`).
const COUNTER_BITS: u32 = clock::COUNTER_BITS;
/// The simulated `MOSTDB_MAX_CLOCK_SKEW_MS`: above the ordinary skews (150 ms at most), so that
/// only clock jumps (which add up) and the far jump nemesis go beyond it.
pub const MAX_SKEW_MS: u64 = 400;

impl Node {
    pub fn phys_ms(&self, now: u64) -> u64 {
        (now as i64 + self.skew_ms).max(1) as u64
    }

    /// Where the clock stands, without issuing anything (what expiries are compared with).
    pub fn reading(&self, now: u64) -> u64 {
        self.hlc_last.max(self.phys_ms(now) << COUNTER_BITS)
    }

    /// `now()` = max(last + 1, physical).
    pub fn issue(&mut self, now: u64, origin: u64) -> Version {
        let hlc = self
            .hlc_last
            .saturating_add(1)
            .max(self.phys_ms(now) << COUNTER_BITS);
        self.hlc_last = hlc;
        Version { hlc, origin }
    }

    /// The replica's clock and bound, as the replica rules take them.
    pub fn bound(&self, now: u64) -> ClockBound {
        ClockBound {
            physical_ms: self.phys_ms(now),
            max_skew_ms: MAX_SKEW_MS,
            promise_floor: self.floor,
        }
    }
}

pub struct World {
    pub cfg: Config,
    pub rng: Rng,
    pub now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<Scheduled>>,
    pub nodes: Vec<Node>,
    pub history: Recorder,
    /// I1 and I5: every version issued, and the operation that issued it.
    pub issued: BTreeMap<Version, OpId>,
    /// The tombstone versions of the expiries of values stored anywhere (I1 for them).
    expiries: BTreeSet<Version>,
    /// I5: the versions under which each operation's write was stored anywhere.
    stored_under: BTreeMap<OpId, BTreeSet<Version>>,
    /// I4: versions of writes reported as definitely failed.
    pub failed_versions: BTreeSet<Version>,
    /// I6: `(key, version)` → the replicas that ever held exactly it.
    pub ever_held: BTreeMap<(usize, Version), BTreeSet<usize>>,
    pub stats: super::Stats,
    /// Directed links `(from, to)` cut until the given time.
    cut_until: BTreeMap<(usize, usize), u64>,
    /// False: invariant violations are counted, not fatal, so that the linearizability check
    /// alone can be shown to catch a planted bug (`SIM_CHECK=linearizability`).
    pub strict: bool,
    /// Wipes so far: each gives the wiped node a new origin.
    wipes: u64,
    /// I8: the newest version of each key acknowledged to a client (a write's Ok, a read).
    acked: BTreeMap<usize, Version>,
}

#[path = "world_amnesia.rs"]
mod amnesia;

pub fn key_bytes(key: usize) -> Vec<u8> {
    vec![b'k', key as u8]
}

fn key_index(key: &[u8]) -> usize {
    key.get(1).copied().map_or(0, usize::from)
}

impl World {
    pub fn new(seed: u64) -> World {
        let mut rng = Rng::new(seed);
        let cfg = Config::random(&mut rng);
        let nodes = (0..cfg.nodes)
            .map(|i| {
                let skew = rng.range(0, 2 * cfg.skew_ms_max) as i64 - cfg.skew_ms_max as i64;
                Node {
                    up: true,
                    incarnation: 0,
                    skew_ms: skew,
                    hlc_last: 0,
                    // Even, as the real nodes' origins (odd ones are expiries').
                    origin: 2 * (i as u64 + 1),
                    recovering: false,
                    owes_recovery: false,
                    volatile: BTreeMap::new(),
                    durable: BTreeMap::new(),
                    dirty: false,
                    held: Vec::new(),
                    revealed: BTreeMap::new(),
                    contended: ContendedKeys::new(64, 50),
                    floor: Version::ZERO,
                }
            })
            .collect();
        World {
            cfg,
            rng,
            now: T0_MS,
            seq: 0,
            queue: BinaryHeap::new(),
            nodes,
            history: Recorder::default(),
            issued: BTreeMap::new(),
            expiries: BTreeSet::new(),
            stored_under: BTreeMap::new(),
            failed_versions: BTreeSet::new(),
            ever_held: BTreeMap::new(),
            stats: super::Stats::default(),
            cut_until: BTreeMap::new(),
            strict: true,
            wipes: 0,
            acked: BTreeMap::new(),
        }
    }

    /// An invariant failed: fatal when strict, else counted and the run goes on.
    pub fn violated(&mut self, message: String) -> Check {
        if self.strict {
            return Err(message);
        }
        self.stats.violations += 1;
        Ok(())
    }

    /// Background processes of every node: durable syncs, anti-entropy, crashes, clock jumps.
    pub fn start_background(&mut self) {
        for node in 0..self.cfg.nodes {
            let sync = self.rng.range(1, self.cfg.sync_every_ms_max);
            self.schedule(sync, Event::Sync(node));
            let copy = self.rng.range(5, 30);
            self.schedule(copy, Event::AntiEntropy(node));
            self.schedule_crash(node);
            if self.cfg.cut_every_ms > 0 && node == 0 {
                let cut = self.rng.range(1, self.cfg.cut_every_ms);
                self.schedule(cut, Event::Cut);
            }
            if self.cfg.amnesia_every_ms > 0 && node == 0 {
                let wipe = self.rng.range(1, 2 * self.cfg.amnesia_every_ms);
                self.schedule(wipe, Event::Amnesia);
            }
            if self.cfg.clock_jumps {
                let jump = self.rng.range(20, 200);
                self.schedule(jump, Event::ClockJump(node));
            }
            if self.cfg.far_jump_every_ms > 0 && node == 0 {
                let jump = self.rng.range(1, 2 * self.cfg.far_jump_every_ms);
                self.schedule(jump, Event::FarJump { node, ahead: true });
            }
            if self.cfg.forge_every_ms > 0 && node == 0 {
                let forge = self.rng.range(1, 2 * self.cfg.forge_every_ms);
                self.schedule(forge, Event::Forge);
            }
        }
    }

    pub fn schedule(&mut self, after_ms: u64, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse(Scheduled {
            time: self.now + after_ms,
            seq: self.seq,
            event,
        }));
    }

    pub fn pop(&mut self) -> Option<Event> {
        let Reverse(next) = self.queue.pop()?;
        debug_assert!(next.time >= self.now);
        self.now = next.time;
        Some(next.event)
    }

    fn schedule_crash(&mut self, node: usize) {
        let every = self.cfg.crash_every_ms * self.cfg.nodes as u64;
        if every > 0 {
            let after = self.rng.range(every / 2, every * 3 / 2);
            self.schedule(after, Event::Crash(node));
        }
    }

    /// Network delay of one message: usually short, sometimes past any deadline.
    fn delay(&mut self) -> u64 {
        if self.rng.chance(self.cfg.late_permille) {
            self.cfg.deadline_ms + self.rng.range(1, 2 * self.cfg.deadline_ms)
        } else {
            self.rng.range(1, self.cfg.delay_ms_max)
        }
    }

    /// Puts a message on the wire between two nodes: it may be lost, delayed, duplicated.
    pub fn send_net(&mut self, event: Event) {
        let link = match &event {
            Event::Request { from, to, .. } | Event::Reply { from, to, .. } => Some((*from, *to)),
            _ => None,
        };
        let cut = link.is_some_and(|l| self.cut_until.get(&l).is_some_and(|&t| t > self.now));
        if cut || self.rng.chance(self.cfg.loss_permille) {
            self.stats.lost += 1;
            return;
        }
        // The transport delivers each request at most once (TCP, never re-sent on another
        // connection): a PUT processed twice could answer Accepted, then Rejected once a newer
        // version arrived, and the fast path would take that rejection as "nothing stored".
        // Answers, COPYs and hints are duplicated freely.
        let once = matches!(
            event,
            Event::Request {
                op: Some(_),
                request: ReplicaRequest::Put { .. },
                ..
            }
        );
        if !once && self.rng.chance(self.cfg.dup_permille) {
            self.stats.duplicated += 1;
            let delay = self.delay();
            self.schedule(delay, event.clone());
        }
        let delay = self.delay();
        self.schedule(delay, event);
    }

    /// Sends a request from a coordinator on `from` to replica `to`. False when the transport
    /// knows it was never written to a socket (the coordinator is told: it was not received).
    pub fn send_request(
        &mut self,
        from: usize,
        to: usize,
        op: Option<OpId>,
        round: u32,
        request: ReplicaRequest,
    ) -> bool {
        let event = Event::Request {
            to,
            from,
            op,
            round,
            request,
        };
        if from == to {
            // The local replica: no socket, no loss, but it runs later, interleaved.
            let delay = self.rng.range(0, 1);
            self.schedule(delay, event);
            return true;
        }
        let cut = self
            .cut_until
            .get(&(from, to))
            .is_some_and(|&t| t > self.now);
        let link_down = (cut || !self.nodes[to].up) && self.rng.chance(700);
        if link_down || self.rng.chance(self.cfg.not_sent_permille) {
            self.stats.not_sent += 1;
            return false;
        }
        self.send_net(event);
        true
    }

    /// A replica serves one request under the replica rules of `replication::replica`.
    pub fn on_request(
        &mut self,
        to: usize,
        from: usize,
        op: Option<OpId>,
        round: u32,
        request: ReplicaRequest,
    ) -> Check {
        if !self.nodes[to].up {
            return Ok(());
        }
        let copy = matches!(request, ReplicaRequest::Copy { .. });
        if self.nodes[to].recovering && !copy {
            return Ok(()); // no answer, no vote: to the coordinator it is a lost message
        }
        let key = key_index(request.key());
        if let Some(version) = request.version() {
            self.observe(to, version)?; // the HLC takes in every version it sees, bounded
        }
        let bound = self.nodes[to].bound(self.now);
        let decision = decide(self.nodes[to].volatile.get(&key), &request, bound);
        if decision.reply == ReplicaReply::RefusedFuture {
            self.stats.refused_future += 1;
        }
        if decision.store {
            self.store(to, key, &request)?;
        }
        let Some(op) = op else {
            return Ok(()); // COPY or a hint: nobody waits for the answer
        };
        let reveals = reveals(&request, &decision.reply);
        let event = Event::Reply {
            to: from,
            from: to,
            op,
            round,
            reply: decision.reply,
        };
        let early = cfg!(feature = "planted-early-ack")
            && matches!(
                request,
                ReplicaRequest::Put { .. } | ReplicaRequest::Repair { .. }
            );
        let node = &mut self.nodes[to];
        if node.dirty && !early {
            node.held.push(Held {
                event,
                key,
                reveals,
            });
        } else {
            self.release(to, key, reveals, event)?;
        }
        Ok(())
    }

    /// Stores a write (or a PREPARE's promise) on a replica's volatile state, checking I2,
    /// I4, I5 and I9.
    fn store(&mut self, node: usize, key: usize, request: &ReplicaRequest) -> Check {
        let held_promise = self.nodes[node]
            .volatile
            .get(&key)
            .map_or(Version::ZERO, Record::promise)
            .max(self.nodes[node].floor);
        if let ReplicaRequest::Prepare { ballot, .. } = request {
            if *ballot <= held_promise {
                return Err(format!(
                    "I2: n{node} k{key} promised {ballot:?} below its promise {held_promise:?}"
                ));
            }
            let n = &mut self.nodes[node];
            let record = stored_record(n.volatile.get(&key), request).ok_or("no promise")?;
            n.volatile.insert(key, record);
            n.dirty = true;
            return Ok(());
        }
        let Some(version) = request.version() else {
            return Err(format!("{request:?} stored a value"));
        };
        let phys = self.nodes[node].phys_ms(self.now);
        if clock::hlc_ms(version.hlc) > phys + MAX_SKEW_MS {
            self.violated(format!(
                "B1: n{node} k{key} stored {version:?}, beyond its clock ({phys} ms) + the bound"
            ))?;
        }
        let held = self.nodes[node].volatile.get(&key).map(|r| r.version);
        if held.is_some_and(|h| h >= version) {
            return Err(format!(
                "I2: n{node} k{key} replaced {held:?} by {version:?}"
            ));
        }
        if version < held_promise {
            self.violated(format!(
                "I9: n{node} k{key} stored {version:?} below its promise {held_promise:?}"
            ))?;
        }
        if self.failed_versions.contains(&version) {
            self.violated(format!(
                "I4: n{node} k{key} stored {version:?}, of a write reported as definitely failed"
            ))?;
        }
        if request_expiry(request).is_some() {
            self.expiries.insert(version.expiry());
        }
        let op = match self.issued.get(&version) {
            Some(&op) => op,
            // The tombstone of a stored value's expiry: a version fixed when the value was
            // written (DESIGN §10), never issued by a clock.
            None if self.expiries.contains(&version) && request_value_is_none(request) => {
                return self.keep(node, key, version, request);
            }
            None => return Err(format!("I1: n{node} stored {version:?}, never issued")),
        };
        let under = self.stored_under.entry(op).or_default();
        under.insert(version);
        if under.len() > 1 {
            let message = format!("I5: the write of op {op} was stored under {under:?}");
            self.violated(message)?;
        }
        self.keep(node, key, version, request)
    }

    /// Keeps what `request` writes on `node`'s volatile state.
    fn keep(
        &mut self,
        node: usize,
        key: usize,
        version: Version,
        request: &ReplicaRequest,
    ) -> Check {
        self.ever_held
            .entry((key, version))
            .or_default()
            .insert(node);
        let n = &mut self.nodes[node];
        let record = stored_record(n.volatile.get(&key), request).ok_or("nothing to store")?;
        n.volatile.insert(key, record);
        n.dirty = true;
        Ok(())
    }

    fn release(&mut self, node: usize, key: usize, reveals: Version, event: Event) -> Check {
        if self.nodes[node].owes_recovery {
            self.violated(format!(
                "I7: n{node} answered ({event:?}) after losing its state, before recovering"
            ))?;
        }
        let revealed = self.nodes[node].revealed.entry(key).or_default();
        *revealed = (*revealed).max(reveals);
        let Event::Reply { to, .. } = event else {
            return Ok(());
        };
        if to == node {
            let delay = self.rng.range(0, 1);
            self.schedule(delay, event);
        } else {
            self.send_net(event);
        }
        Ok(())
    }

    /// The group commit: every write so far becomes durable, and the answers waiting for it go.
    pub fn on_sync(&mut self, node: usize) -> Check {
        let next = self.rng.range(1, self.cfg.sync_every_ms_max);
        self.schedule(next, Event::Sync(node));
        let n = &mut self.nodes[node];
        if !n.up {
            return Ok(());
        }
        for (key, record) in &n.durable {
            let now = n.volatile.get(key).map(|r| r.version);
            if now.is_none_or(|v| v < record.version) {
                return Err(format!("I2: n{node} k{key} volatile {now:?} below durable"));
            }
        }
        n.durable = n.volatile.clone();
        n.dirty = false;
        for held in std::mem::take(&mut n.held) {
            self.release(node, held.key, held.reveals, held.event)?;
        }
        Ok(())
    }

    /// A crash loses what was not durable, answers not yet sent, and every coordinator there.
    pub fn on_crash(&mut self, node: usize) -> Check {
        let n = &mut self.nodes[node];
        if !n.up {
            return Ok(());
        }
        self.stats.crashes += 1;
        n.up = false;
        n.incarnation += 1;
        n.volatile = n.durable.clone();
        n.dirty = false;
        n.held.clear();
        self.check_revealed(node)?;
        let down = self.rng.range(1, self.cfg.down_ms_max);
        self.schedule(down, Event::Restart(node));
        Ok(())
    }

    pub fn on_restart(&mut self, node: usize) {
        self.nodes[node].up = true;
        self.schedule_crash(node);
        if self.nodes[node].recovering {
            // Every operation that may have counted a forgotten vote is over by then.
            let incarnation = self.nodes[node].incarnation;
            let wait = self.cfg.deadline_ms + RECOVERY_MARGIN_MS;
            self.schedule(wait, Event::Recover { node, incarnation });
        }
    }

    /// Anti-entropy: COPY one durable record to another replica (its ack is never a vote).
    pub fn on_anti_entropy(&mut self, node: usize) {
        let next = self.rng.range(5, 30);
        self.schedule(next, Event::AntiEntropy(node));
        let key = self.rng.below(self.cfg.keys as u64) as usize;
        let to = self.rng.below(self.cfg.nodes as u64) as usize;
        let n = &self.nodes[node];
        let (true, Some(record)) = (n.up && to != node, n.durable.get(&key)) else {
            return;
        };
        let request = ReplicaRequest::Copy {
            key: key_bytes(key),
            version: record.version,
            value: record.value.clone(),
            meta: record.meta,
        };
        self.stats.copies += 1;
        self.send_request(node, to, None, 0, request);
    }

    /// A partition: one directed link drops everything for a while.
    pub fn on_cut(&mut self) {
        let from = self.rng.below(self.cfg.nodes as u64) as usize;
        let to = self.rng.below(self.cfg.nodes as u64) as usize;
        if from != to {
            let until = self.now + self.rng.range(5, 80);
            self.cut_until.insert((from, to), until);
            self.stats.cuts += 1;
        }
        let next = self.rng.range(1, self.cfg.cut_every_ms);
        self.schedule(next, Event::Cut);
    }

    pub fn on_clock_jump(&mut self, node: usize) {
        let max = self.cfg.skew_ms_max.max(20) as i64;
        let jump = self.rng.range(0, 4 * max as u64) as i64 - 2 * max;
        self.nodes[node].skew_ms += jump;
        let next = self.rng.range(20, 200);
        self.schedule(next, Event::ClockJump(node));
    }

    /// A client was told `version` of `key` (written, or read).
    pub fn acknowledge(&mut self, key: usize, version: Version) {
        let acked = self.acked.entry(key).or_default();
        *acked = (*acked).max(version);
    }

    /// I8, quorum intersection (what recovery protects): any Q replicas that may vote include
    /// one that durably holds the newest acknowledged version of each key, or a newer one.
    /// A wiped replica that votes before recovering breaks it.
    pub fn check_intersection(&mut self) -> Check {
        let q = quorum(self.cfg.nodes);
        let mut broken = None;
        for (&key, &acked) in &self.acked {
            let missing: Vec<usize> = (0..self.cfg.nodes)
                .filter(|&n| {
                    let node = &self.nodes[n];
                    let held = node.durable.get(&key).map_or(Version::ZERO, |r| r.version);
                    !node.recovering && held < acked
                })
                .collect();
            if missing.len() >= q {
                broken = Some(format!(
                    "I8: k{key} acknowledged at {acked:?}, but voting replicas {missing:?} (a quorum) all hold less"
                ));
            }
        }
        match broken {
            Some(message) => {
                self.acked.clear(); // reported once
                self.violated(message)
            }
            None => Ok(()),
        }
    }

    /// I2 as the outside sees it: a replica never holds less than it has revealed.
    pub fn check_revealed(&mut self, node: usize) -> Check {
        let n = &mut self.nodes[node];
        let mut lost = None;
        for (key, revealed) in n.revealed.iter_mut() {
            let held = n
                .volatile
                .get(key)
                .map_or(Version::ZERO, Record::promise)
                .max(n.floor);
            if held < *revealed {
                lost = Some(format!(
                    "I2: n{node} k{key} holds {held:?} after answering with {revealed:?} (lost across a crash)"
                ));
                *revealed = held; // reported once
            }
        }
        match lost {
            Some(message) => self.violated(message),
            None => Ok(()),
        }
    }
}

/// The version an answer shows (what must be durable before it is sent).
fn reveals(request: &ReplicaRequest, reply: &ReplicaReply) -> Version {
    match reply {
        // A promise shows its ballot: it must be durable before it is answered (I14).
        ReplicaReply::Accepted | ReplicaReply::RepairOk | ReplicaReply::Promised { .. } => {
            request.version().unwrap_or_default()
        }
        other => other.version_seen().unwrap_or_default(),
    }
}

/// The expiry (an HLC) a write-like request's value carries, if any.
fn request_expiry(request: &ReplicaRequest) -> Option<u64> {
    match request {
        ReplicaRequest::Put { meta, value, .. }
        | ReplicaRequest::Repair { meta, value, .. }
        | ReplicaRequest::Copy { meta, value, .. } => meta.expires.filter(|_| value.is_some()),
        _ => None,
    }
}

/// Whether a write-like request writes a tombstone.
fn request_value_is_none(request: &ReplicaRequest) -> bool {
    match request {
        ReplicaRequest::Put { value, .. }
        | ReplicaRequest::Repair { value, .. }
        | ReplicaRequest::Copy { value, .. } => value.is_none(),
        _ => false,
    }
}
