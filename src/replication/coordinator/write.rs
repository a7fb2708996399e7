//! The write (set, del) state machine of DESIGN §3, fast path and safe mode.
//!
//! Fast path: PUT `v` to every replica. Q `Accepted` → Ok. Every replica that may have
//! received the PUT answered `Rejected` → nothing is stored anywhere, so a fresh version
//! above the largest rejection may be tried (bounded), else a definite NotMost. Anything
//! else is Indeterminate: a write that some replica may hold is never re-issued under a new
//! version (I5) and never reported as a definite failure (I4).
//!
//! Safe mode: READ the versions of Q replicas first, PUT a version above the largest; then
//! `Accepted` means "holds v", and a `Rejected` "holds ≥ v" only when the replica's accepted
//! version is above v and blind (written by a plain set or del, I13): a rejection by a CAS's
//! promise, or by a version a CAS wrote, would place this write "just before" a CAS that never
//! read it. Q such answers → Ok. When every replica that may have received the PUT rejected
//! it and none of them counts, nothing is stored: a fresh version is tried as on the fast path.
//!
//! `RefusedFuture` (the version is beyond the replica's clock bound, DESIGN §14) means "not
//! stored" at that replica, for good: the request is consumed (delivered at most once) and a
//! write never re-sends a version it gave up on. So in both modes a refusing replica is neither
//! a vote nor pending, and counts among "every replica that may have received the PUT did not
//! store it" (rule 2). Only rejections lead to a fresh version: a refusal names nothing to go
//! above, and the next version from the same clock would be as far ahead; refusals with no
//! rejection end in a definite NotMost. A refused replica is still hinted after an Ok or
//! Indeterminate outcome (same version: stored once its clock has caught up).

use super::{check_replicas, quorum, Action, Input, Operation, ReplicaSet};
use crate::config::WriteMode;
use crate::limits;
use crate::replication::clock;
use crate::replication::protocol::{ReplicaReply, ReplicaRequest};
use crate::storage::{Meta, Version};

/// What a write stores: the value (`None`: a delete) and, for a set, how long it lives. Its
/// expiry is computed from the version it is written under (DESIGN §10), so a write that
/// takes a fresh version keeps its time to live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payload {
    pub value: Option<Vec<u8>>,
    pub ttl_ms: Option<u64>,
}

impl From<Option<Vec<u8>>> for Payload {
    fn from(value: Option<Vec<u8>>) -> Payload {
        Payload::plain(value)
    }
}

impl Payload {
    /// A value (or a delete) that never expires.
    pub fn plain(value: Option<Vec<u8>>) -> Payload {
        Payload {
            value,
            ttl_ms: None,
        }
    }

    /// The record's meta under `version`: blind, expiring `ttl_ms` after it.
    fn meta_at(&self, version: Version) -> Meta {
        Meta {
            cas: false,
            expires: self
                .ttl_ms
                .map(|ttl| clock::expires_after(version.hlc, ttl)),
        }
    }
}

/// How a write ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteDone {
    /// A majority holds `version` (or, in safe mode, something at least as new).
    Ok { version: Version },
    /// Definite failure: no replica holds, nor can ever store, any version of this write.
    NotMost,
    /// The write may or may not take effect, now or later. It may be re-sent with this same
    /// `version` (hinted handoff), never under another.
    Indeterminate { version: Version },
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Phase {
    /// Safe mode: READ sent, collecting versions.
    Query,
    /// Waiting for the driver's fresh version.
    AwaitVersion,
    /// PUT sent under `version`.
    Put,
    Done,
}

/// One replica's part in the current round.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Slot {
    /// Sent; no answer yet. It may have been received.
    Pending,
    /// Never written to a socket (unreachable, or the transport said so): not received.
    NotSent,
    /// READ answer (safe mode, query round).
    Held(Version),
    Accepted,
    /// The replica holds this version, above the PUT's, and its accepted version is newer and
    /// blind: in safe mode it "holds ≥ v".
    Rejected(Version),
    /// The replica refused the PUT for a promise or a version a CAS wrote (`held`, the larger
    /// of the two, is above the PUT's): it holds nothing of this write, in either mode.
    Preempted(Version),
    /// The PUT's version is beyond the replica's clock bound: not stored, never will be from it.
    Refused,
}

/// A write in progress. See the module doc for the rules.
#[derive(Debug)]
pub struct WriteOp {
    mode: WriteMode,
    key: Vec<u8>,
    payload: Payload,
    /// The replicas the driver could reach when the write began; only they are asked.
    reachable: ReplicaSet,
    phase: Phase,
    /// Tags the requests of the current round; answers of other rounds are ignored.
    round: u32,
    /// The version of the current (or last) PUT round; ZERO before the first.
    version: Version,
    /// PUT rounds started.
    attempts: u32,
    slots: Vec<Slot>,
    /// The next version must be above this: the largest READ answer (safe) or rejection (fast).
    above: Version,
    /// The largest version seen in any answer: the driver's clock must observe it.
    observed: Version,
    saw_rejection: bool,
}

impl Operation for WriteOp {
    type Done = WriteDone;

    fn feed(&mut self, input: Input) -> Action<WriteDone> {
        match input {
            Input::Reply { from, round, reply } => self.on_reply(from, round, reply),
            Input::NotSent { to, round } => self.on_not_sent(to, round),
            Input::Version(version) => self.on_version(version),
            Input::Deadline => self.on_deadline(),
        }
    }

    fn observed(&self) -> Version {
        self.observed
    }

    fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }
}

impl WriteOp {
    /// Starts a fast-path write of `value` (`None` = delete) with `meta` under `version`, fresh
    /// from the driver's clock. Fewer than a majority reachable → NotMost at once, nothing
    /// sent.
    pub fn fast(
        n: usize,
        key: Vec<u8>,
        payload: Payload,
        version: Version,
        reachable: ReplicaSet,
    ) -> (WriteOp, Action<WriteDone>) {
        let mut op = WriteOp::new(WriteMode::Fast, n, key, payload, reachable);
        if op.reachable.len() < quorum(n) {
            return (
                op.finish(WriteDone::NotMost),
                Action::Done(WriteDone::NotMost),
            );
        }
        op.phase = Phase::AwaitVersion;
        let action = op.on_version(version);
        (op, action)
    }

    /// Starts a safe-mode write: READ from the reachable replicas first.
    pub fn safe(
        n: usize,
        key: Vec<u8>,
        payload: Payload,
        reachable: ReplicaSet,
    ) -> (WriteOp, Action<WriteDone>) {
        let mut op = WriteOp::new(WriteMode::Safe, n, key, payload, reachable);
        if op.reachable.len() < quorum(n) {
            return (
                op.finish(WriteDone::NotMost),
                Action::Done(WriteDone::NotMost),
            );
        }
        op.phase = Phase::Query;
        let request = ReplicaRequest::Read {
            key: op.key.clone(),
        };
        let action = op.start_round(request);
        (op, action)
    }

    fn new(
        mode: WriteMode,
        n: usize,
        key: Vec<u8>,
        payload: Payload,
        reachable: ReplicaSet,
    ) -> WriteOp {
        check_replicas(n);
        WriteOp {
            mode,
            key,
            payload,
            reachable: reachable.intersect(ReplicaSet::all(n)),
            phase: Phase::Done,
            round: 0,
            version: Version::ZERO,
            attempts: 0,
            slots: vec![Slot::NotSent; n],
            above: Version::ZERO,
            observed: Version::ZERO,
            saw_rejection: false,
        }
    }

    /// An answer from replica `from` to a request of round `round`. Answers of other rounds,
    /// from unknown replicas, repeated, or not fitting the request are ignored.
    pub fn on_reply(&mut self, from: usize, round: u32, reply: ReplicaReply) -> Action<WriteDone> {
        if let Some(seen) = reply.version_seen() {
            self.observed = self.observed.max(seen);
        }
        if round != self.round || self.slots.get(from) != Some(&Slot::Pending) {
            return Action::Wait;
        }
        match (self.phase, reply) {
            (Phase::Query, ReplicaReply::Read { version, .. }) => {
                self.slots[from] = Slot::Held(version);
                self.above = self.above.max(version);
                self.evaluate_query()
            }
            (Phase::Put, ReplicaReply::Accepted) => {
                self.slots[from] = Slot::Accepted;
                self.evaluate_put()
            }
            (Phase::Put, ReplicaReply::RefusedFuture) => {
                self.slots[from] = Slot::Refused;
                self.evaluate_put()
            }
            // A "rejection" at or below our version breaks the replica rules: not counted.
            (
                Phase::Put,
                ReplicaReply::Rejected {
                    held,
                    accepted,
                    accepted_cas,
                },
            ) if held > self.version => {
                self.slots[from] = if holds_newer(self.version, accepted, accepted_cas) {
                    Slot::Rejected(held)
                } else {
                    Slot::Preempted(held)
                };
                self.saw_rejection = true;
                self.evaluate_put()
            }
            // COPY acks, repair answers, bogus rejections: never a vote (I7).
            _ => Action::Wait,
        }
    }

    /// The request of round `round` to replica `to` was never written to a socket.
    pub fn on_not_sent(&mut self, to: usize, round: u32) -> Action<WriteDone> {
        if round != self.round || self.slots.get(to) != Some(&Slot::Pending) {
            return Action::Wait;
        }
        self.slots[to] = Slot::NotSent;
        match self.phase {
            Phase::Query => self.evaluate_query(),
            Phase::Put => self.evaluate_put(),
            Phase::AwaitVersion | Phase::Done => Action::Wait,
        }
    }

    /// The fresh version asked for by [`Action::NeedVersion`]; it must be above `above`.
    pub fn on_version(&mut self, version: Version) -> Action<WriteDone> {
        if self.phase != Phase::AwaitVersion {
            return Action::Wait;
        }
        // I1/I5: a new version only above everything this write was told about. A bounded clock
        // cannot give one when a replica holds a version beyond the coordinator's skew bound
        // (its clock observed nothing that far): nothing is sent under it, so failing is
        // definite.
        if version <= self.above || version <= self.version {
            return self.done(WriteDone::NotMost);
        }
        self.debug_check_nothing_accepted();
        self.version = version;
        self.attempts += 1;
        self.phase = Phase::Put;
        let request = ReplicaRequest::Put {
            key: self.key.clone(),
            version,
            value: self.payload.value.clone(),
            meta: self.payload.meta_at(version),
        };
        self.start_round(request)
    }

    /// The operation's deadline passed: stop counting answers.
    pub fn on_deadline(&mut self) -> Action<WriteDone> {
        match self.phase {
            // No PUT under a version this write could still hold was sent.
            Phase::Query | Phase::AwaitVersion => self.done(WriteDone::NotMost),
            // Had nothing been received, the write would be over already.
            Phase::Put => self.done(WriteDone::Indeterminate {
                version: self.version,
            }),
            Phase::Done => Action::Wait,
        }
    }

    /// A replica rejected a PUT of this write: the key is contended (see [`super::ContendedKeys`]).
    pub fn saw_rejection(&self) -> bool {
        self.saw_rejection
    }

    /// The key being written (the driver notes contended keys by it).
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The value being written (`None`: a delete); hinted handoff re-sends it.
    pub fn value(&self) -> Option<&[u8]> {
        self.payload.value.as_deref()
    }

    /// What is written with the value under the last version; hinted handoff re-sends it too.
    pub fn meta(&self) -> Meta {
        self.payload.meta_at(self.version)
    }

    pub fn mode(&self) -> WriteMode {
        self.mode
    }

    /// The version of the last PUT round (ZERO if none was sent).
    pub fn version(&self) -> Version {
        self.version
    }

    /// The replicas of the cluster not known to hold this write's version: the targets of
    /// hinted handoff after an Ok or Indeterminate outcome.
    pub fn missing(&self) -> ReplicaSet {
        let confirmed = self.slots.iter().enumerate().filter(|(_, s)| match s {
            Slot::Accepted => true,
            Slot::Rejected(_) => self.mode == WriteMode::Safe,
            _ => false,
        });
        let mut missing = ReplicaSet::all(self.slots.len());
        for (replica, _) in confirmed {
            missing.remove(replica);
        }
        missing
    }

    fn start_round(&mut self, request: ReplicaRequest) -> Action<WriteDone> {
        self.round += 1;
        for (replica, slot) in self.slots.iter_mut().enumerate() {
            *slot = if self.reachable.contains(replica) {
                Slot::Pending
            } else {
                Slot::NotSent
            };
        }
        Action::Send {
            round: self.round,
            to: self.reachable,
            request,
        }
    }

    fn count(&self, pred: impl Fn(&Slot) -> bool) -> usize {
        self.slots.iter().filter(|s| pred(s)).count()
    }

    fn evaluate_query(&mut self) -> Action<WriteDone> {
        let answered = self.count(|s| matches!(s, Slot::Held(_)));
        let pending = self.count(|s| *s == Slot::Pending);
        let q = quorum(self.slots.len());
        if answered >= q {
            self.phase = Phase::AwaitVersion;
            Action::NeedVersion { above: self.above }
        } else if answered + pending < q {
            // Only READs were sent: nothing of this write exists anywhere.
            self.done(WriteDone::NotMost)
        } else {
            Action::Wait
        }
    }

    fn evaluate_put(&mut self) -> Action<WriteDone> {
        match self.mode {
            WriteMode::Fast => self.evaluate_fast_put(),
            WriteMode::Safe => self.evaluate_safe_put(),
        }
    }

    fn evaluate_fast_put(&mut self) -> Action<WriteDone> {
        let accepted = self.count(|s| *s == Slot::Accepted);
        let pending = self.count(|s| *s == Slot::Pending);
        let rejected = self.slots.iter().filter_map(|s| match s {
            Slot::Rejected(held) | Slot::Preempted(held) => Some(*held),
            _ => None,
        });
        let (rejections, largest) =
            rejected.fold((0, Version::ZERO), |(n, m), v| (n + 1, m.max(v)));
        let q = quorum(self.slots.len());
        if accepted >= q {
            return self.done(WriteDone::Ok {
                version: self.version,
            });
        }
        if nothing_stored(accepted, pending, rejections) {
            if self.attempts >= limits::WRITE_ATTEMPTS_MAX {
                return self.done(WriteDone::NotMost);
            }
            self.above = self.above.max(largest);
            self.phase = Phase::AwaitVersion;
            return Action::NeedVersion { above: self.above };
        }
        if pending == 0 && accepted == 0 {
            // Never written to any socket, refused (beyond a replica's clock bound) or, with
            // too many attempts, rejected: no replica holds this version, nor can ever store it.
            return self.done(WriteDone::NotMost);
        }
        if accepted > 0 && accepted + pending < q {
            // Some replica holds it, a majority never will in this round: nothing can change.
            return self.done(WriteDone::Indeterminate {
                version: self.version,
            });
        }
        Action::Wait
    }

    fn evaluate_safe_put(&mut self) -> Action<WriteDone> {
        let holds = self.count(|s| matches!(s, Slot::Accepted | Slot::Rejected(_)));
        let pending = self.count(|s| *s == Slot::Pending);
        let q = quorum(self.slots.len());
        if holds >= q {
            return self.done(WriteDone::Ok {
                version: self.version,
            });
        }
        if holds == 0 && pending == 0 {
            let preempted = self.slots.iter().filter_map(|s| match s {
                Slot::Preempted(held) => Some(*held),
                _ => None,
            });
            return match preempted.max() {
                // Refused by promises or CAS versions only: nothing stored, try above them.
                Some(largest) if self.attempts < limits::WRITE_ATTEMPTS_MAX => {
                    self.above = self.above.max(largest);
                    self.phase = Phase::AwaitVersion;
                    Action::NeedVersion { above: self.above }
                }
                _ => self.done(WriteDone::NotMost),
            };
        }
        if holds > 0 && holds + pending < q {
            return self.done(WriteDone::Indeterminate {
                version: self.version,
            });
        }
        Action::Wait
    }

    /// Ends the write, checking the invariant each outcome relies on.
    fn done(&mut self, outcome: WriteDone) -> Action<WriteDone> {
        let q = quorum(self.slots.len());
        match &outcome {
            WriteDone::Ok { .. } => {
                // I3: Q accepts (fast), or Q "holds ≥ v" after a version query (safe).
                let votes = match self.mode {
                    WriteMode::Fast => self.count(|s| *s == Slot::Accepted),
                    WriteMode::Safe => {
                        self.count(|s| matches!(s, Slot::Accepted | Slot::Rejected(_)))
                    }
                };
                debug_assert!(
                    self.phase == Phase::Put && votes >= q,
                    "I3: Ok with {votes} < {q}"
                );
            }
            // I4: a definite failure only if no replica can ever store a version of it.
            WriteDone::NotMost => self.debug_check_nothing_accepted(),
            WriteDone::Indeterminate { .. } => debug_assert!(self.phase == Phase::Put),
        }
        self.phase = Phase::Done;
        Action::Done(outcome)
    }

    fn finish(mut self, outcome: WriteDone) -> WriteOp {
        self.done(outcome);
        self
    }

    /// I4/I5: before a new version or a definite failure, every replica that may have
    /// received the last PUT rejected it (the planted bug breaks exactly this).
    fn debug_check_nothing_accepted(&self) {
        if self.phase == Phase::Put || (self.phase == Phase::AwaitVersion && self.attempts > 0) {
            let open = self.count(|s| matches!(s, Slot::Accepted | Slot::Pending));
            debug_assert!(
                open == 0 || cfg!(feature = "planted-reversion"),
                "I4/I5: {open} replicas may hold {:?}",
                self.version
            );
        }
    }
}

/// Whether a rejection of a PUT at `version` means "this replica holds at least `version`" in
/// safe mode (I13): only when its accepted version is newer and was written blind. Rejections
/// by a promise or by a CAS's version hold nothing of the write.
#[cfg(not(feature = "planted-safe-count-all"))]
fn holds_newer(version: Version, accepted: Version, accepted_cas: bool) -> bool {
    accepted > version && !accepted_cas
}

/// The planted bug: today's rule before CAS, every rejection counts as "holds ≥ v", so a safe
/// write can land "just before" a CAS that never read it.
#[cfg(feature = "planted-safe-count-all")]
fn holds_newer(_version: Version, _accepted: Version, _accepted_cas: bool) -> bool {
    true
}

/// Whether every replica that may have received this round's PUT rejected it, so that no
/// replica holds its version and a fresh one may be tried.
#[cfg(not(feature = "planted-reversion"))]
fn nothing_stored(accepted: usize, pending: usize, rejections: usize) -> bool {
    rejections > 0 && accepted == 0 && pending == 0
}

/// The planted bug: takes a rejection with no accept heard yet (answers still missing), or
/// with a known partial accept, for "nothing stored", and re-versions the write.
#[cfg(feature = "planted-reversion")]
fn nothing_stored(accepted: usize, pending: usize, rejections: usize) -> bool {
    rejections > 0 && (accepted == 0 || pending == 0)
}
