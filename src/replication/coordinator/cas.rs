//! Compare-and-set as a sans-IO state machine: versioned CASPaxos per key (DESIGN §10), the
//! ballot being a fresh version from the coordinator's clock.
//!
//! 1. PREPARE `b` to every reachable replica. Q `Promised` → the state at `b` is the value of
//!    the highest accepted version `m` among them (absent if `m` is zero, a tombstone, or
//!    expired at `b`). `Preempted` answers that make Q impossible → nothing of this CAS was
//!    sent: a fresh ballot above what they hold (bounded), then a definite failure. A deadline
//!    here is a definite failure too.
//! 2. The compare fails: if the Q promises all carry exactly `m`, `CompareFailed` at once (they
//!    agree, as a read would need); otherwise the current value is written back at `b` (a PUT
//!    marked CAS), and Q `Accepted` → `CompareFailed` at `b`, anything else → a definite failure
//!    (the CAS's own change was never sent).
//! 3. The compare holds: PUT `b` with the new value (or tombstone), marked CAS. Q `Accepted`
//!    → Ok at `b`. Every replica that may have received it rejected it → nothing stored → a
//!    fresh ballot (bounded), then a definite failure (contended). A deadline with anything
//!    else → Indeterminate at `b`: the new value may still take effect, only at `b`.
//!
//! `RefusedFuture` (a ballot beyond a replica's clock bound) is "no vote, nothing stored" at
//! that replica, as for writes.

use super::{check_replicas, quorum, Action, Input, Operation, ReplicaSet};
use crate::limits;
use crate::replication::clock;
use crate::replication::protocol::{ReplicaReply, ReplicaRequest};
use crate::storage::{Meta, Version};

/// What the current state must be for the change to apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// No live value (never written, deleted, or expired).
    Absent,
    /// A live value, whatever it is.
    Present,
    /// This very value.
    Value(Vec<u8>),
    /// A live value at exactly this version (as a read or a CAS reported it).
    Version(Version),
    /// Nothing: the compare always fails. A consensus read (DESIGN §10): the state a majority
    /// holds at a fresh ballot, written back there when the promises disagree, so that a read
    /// held up by a lingering promise still ends.
    Never,
    /// Like [`Expect::Never`], but the state is written back at the ballot even when the
    /// promises agree: every replica that answers ends up above any promise it held, so
    /// anti-entropy can copy the key again (what settles a promise left behind, DESIGN §10).
    Settle,
    /// The key's version (a tombstone's too; the zero version when never written) is below
    /// this one: what restores a record of an export without undoing anything newer.
    OlderThan(Version),
}

/// The change a CAS applies when its compare holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The new value; `None` deletes the key.
    pub value: Option<Vec<u8>>,
    /// The new value expires this long after the CAS's ballot (TTL), if at all.
    pub ttl_ms: Option<u64>,
}

/// The state a CAS compared against: the value at `version` (`None`: absent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Current {
    pub version: Version,
    pub value: Option<Vec<u8>>,
}

/// How a CAS ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CasDone {
    /// The change took effect at `version` (the ballot); a majority holds it.
    Ok { version: Version },
    /// The compare failed against `current`, which a majority holds (at `current.version`,
    /// the ballot when it was written back).
    CompareFailed { current: Current },
    /// Definite failure: the change was stored nowhere and never will be. `contended`: other
    /// proposers kept preempting this one.
    NotMost { contended: bool },
    /// The change may or may not take effect, now or later, and only at `version`.
    Indeterminate { version: Version },
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for the driver's fresh ballot.
    AwaitBallot,
    /// PREPARE sent.
    Prepare,
    /// The current value written back at the ballot (the compare failed, the promises disagreed).
    WriteBack,
    /// The new value sent at the ballot.
    Accept,
    Done,
}

/// One replica's part in the current round.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Slot {
    /// Sent; no answer yet. It may have been received.
    Pending,
    /// Never written to a socket: not received.
    NotSent,
    /// PREPARE: promised; its accepted version.
    Promised(Version),
    /// PREPARE refused, or PUT rejected: the replica holds this, above the ballot or at it.
    Refused(Version),
    /// PUT accepted.
    Accepted,
    /// Beyond the replica's clock bound: no vote, nothing stored, from this request.
    Beyond,
}

/// A compare-and-set in progress. See the module doc for the rules.
#[derive(Debug)]
pub struct CasOp {
    key: Vec<u8>,
    expect: Expect,
    change: Change,
    reachable: ReplicaSet,
    phase: Phase,
    round: u32,
    /// The ballot of the current (or last) attempt; ZERO before the first.
    ballot: Version,
    /// PREPARE rounds started.
    attempts: u32,
    slots: Vec<Slot>,
    /// The highest accepted version among this round's promises, its value and meta.
    best: (Version, Option<Vec<u8>>, Meta),
    /// The next ballot must be above this: the largest version any refusal named.
    above: Version,
    observed: Version,
    /// A replica preempted or rejected this CAS at least once.
    contended: bool,
}

impl Operation for CasOp {
    type Done = CasDone;

    fn feed(&mut self, input: Input) -> Action<CasDone> {
        match input {
            Input::Reply { from, round, reply } => self.on_reply(from, round, reply),
            Input::NotSent { to, round } => self.on_not_sent(to, round),
            Input::Version(ballot) => self.on_ballot(ballot),
            Input::Deadline => self.on_deadline(),
        }
    }

    fn observed(&self) -> Version {
        self.observed
    }

    fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Asked when the next ballot is due: only a retry asks (the first comes with `start`).
    fn retries(&self) -> u32 {
        if self.phase == Phase::AwaitBallot {
            self.attempts
        } else {
            0
        }
    }
}

impl CasOp {
    /// Starts a CAS with the fresh `ballot` from the driver's clock. Fewer than a majority
    /// reachable → a definite failure at once, nothing sent.
    pub fn start(
        n: usize,
        key: Vec<u8>,
        (expect, change): (Expect, Change),
        ballot: Version,
        reachable: ReplicaSet,
    ) -> (CasOp, Action<CasDone>) {
        check_replicas(n);
        let mut op = CasOp {
            key,
            expect,
            change,
            reachable: reachable.intersect(ReplicaSet::all(n)),
            phase: Phase::AwaitBallot,
            round: 0,
            ballot: Version::ZERO,
            attempts: 0,
            slots: vec![Slot::NotSent; n],
            best: (Version::ZERO, None, Meta::BLIND),
            above: Version::ZERO,
            observed: Version::ZERO,
            contended: false,
        };
        if op.reachable.len() < quorum(n) {
            let done = op.done(CasDone::NotMost { contended: false });
            return (op, done);
        }
        let action = op.on_ballot(ballot);
        (op, action)
    }

    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The ballot of the last attempt (ZERO if none was sent).
    pub fn ballot(&self) -> Version {
        self.ballot
    }

    /// Whether the last round sent is an accept (the new value), not a PREPARE or a
    /// write-back of the current value.
    pub fn accepting(&self) -> bool {
        self.phase == Phase::Accept
    }

    /// PREPARE rounds started (the driver backs off before each one after the first).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The new value and its meta, as the accept sent them (hinted handoff re-sends them).
    pub fn accepted_record(&self) -> (Option<&[u8]>, Meta) {
        (self.change.value.as_deref(), self.change_meta())
    }

    /// The replicas not known to hold the ballot's new value: hinted after Ok or Indeterminate.
    pub fn missing(&self) -> ReplicaSet {
        let mut missing = ReplicaSet::all(self.slots.len());
        for (replica, slot) in self.slots.iter().enumerate() {
            if *slot == Slot::Accepted {
                missing.remove(replica);
            }
        }
        missing
    }

    fn change_meta(&self) -> Meta {
        Meta {
            cas: true,
            expires: self
                .change
                .ttl_ms
                .map(|ttl| clock::expires_after(self.ballot.hlc, ttl)),
        }
    }

    fn on_reply(&mut self, from: usize, round: u32, reply: ReplicaReply) -> Action<CasDone> {
        if let Some(seen) = reply.version_seen() {
            self.observed = self.observed.max(seen);
        }
        if round != self.round || self.slots.get(from) != Some(&Slot::Pending) {
            return Action::Wait;
        }
        match (self.phase, reply) {
            (
                Phase::Prepare,
                ReplicaReply::Promised {
                    version,
                    value,
                    meta,
                },
            ) if version < self.ballot => {
                self.slots[from] = Slot::Promised(version);
                if version >= self.best.0 {
                    self.best = (version, value, meta);
                }
                self.evaluate_prepare()
            }
            (Phase::Prepare, ReplicaReply::Preempted { held }) if held >= self.ballot => {
                self.slots[from] = Slot::Refused(held);
                self.contended = true;
                self.evaluate_prepare()
            }
            (Phase::WriteBack | Phase::Accept, ReplicaReply::Accepted) => {
                self.slots[from] = Slot::Accepted;
                self.evaluate_put()
            }
            (Phase::WriteBack | Phase::Accept, ReplicaReply::Rejected { held, .. })
                if held > self.ballot =>
            {
                self.slots[from] = Slot::Refused(held);
                self.contended = true;
                self.evaluate_put()
            }
            (Phase::Prepare | Phase::WriteBack | Phase::Accept, ReplicaReply::RefusedFuture) => {
                self.slots[from] = Slot::Beyond;
                match self.phase {
                    Phase::Prepare => self.evaluate_prepare(),
                    _ => self.evaluate_put(),
                }
            }
            // Answers that break the replica rules, or fit another request: never a vote.
            _ => Action::Wait,
        }
    }

    fn on_not_sent(&mut self, to: usize, round: u32) -> Action<CasDone> {
        if round != self.round || self.slots.get(to) != Some(&Slot::Pending) {
            return Action::Wait;
        }
        self.slots[to] = Slot::NotSent;
        match self.phase {
            Phase::Prepare => self.evaluate_prepare(),
            Phase::WriteBack | Phase::Accept => self.evaluate_put(),
            Phase::AwaitBallot | Phase::Done => Action::Wait,
        }
    }

    /// A fresh ballot: PREPARE it everywhere reachable.
    fn on_ballot(&mut self, ballot: Version) -> Action<CasDone> {
        if self.phase != Phase::AwaitBallot {
            return Action::Wait;
        }
        // A bounded clock may not get above a far-future refusal: nothing sent, definite.
        if ballot <= self.above || ballot <= self.ballot {
            return self.done(CasDone::NotMost {
                contended: self.contended,
            });
        }
        self.ballot = ballot;
        self.attempts += 1;
        self.best = (Version::ZERO, None, Meta::BLIND);
        self.phase = Phase::Prepare;
        let request = ReplicaRequest::Prepare {
            key: self.key.clone(),
            ballot,
        };
        self.start_round(request)
    }

    fn on_deadline(&mut self) -> Action<CasDone> {
        match self.phase {
            // The new value was never sent.
            Phase::AwaitBallot | Phase::Prepare | Phase::WriteBack => self.done(CasDone::NotMost {
                contended: self.contended,
            }),
            Phase::Accept => self.done(CasDone::Indeterminate {
                version: self.ballot,
            }),
            Phase::Done => Action::Wait,
        }
    }

    fn start_round(&mut self, request: ReplicaRequest) -> Action<CasDone> {
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

    /// The largest version the refusals of this round named.
    fn largest_refusal(&self) -> Version {
        self.slots
            .iter()
            .filter_map(|s| match s {
                Slot::Refused(held) => Some(*held),
                _ => None,
            })
            .max()
            .unwrap_or(Version::ZERO)
    }

    /// Nothing of this CAS's change is stored anywhere: a fresh ballot if attempts remain.
    fn retry(&mut self) -> Action<CasDone> {
        if self.attempts >= limits::CAS_ATTEMPTS_MAX {
            return self.done(CasDone::NotMost {
                contended: self.contended,
            });
        }
        self.above = self.above.max(self.largest_refusal());
        self.phase = Phase::AwaitBallot;
        Action::NeedVersion { above: self.above }
    }

    fn evaluate_prepare(&mut self) -> Action<CasDone> {
        let q = quorum(self.slots.len());
        let promised = self.count(|s| matches!(s, Slot::Promised(_)));
        let pending = self.count(|s| *s == Slot::Pending);
        if promised >= q {
            return self.decide();
        }
        if promised + pending < q {
            // Only PREPAREs were sent: the change exists nowhere.
            return if self.count(|s| matches!(s, Slot::Refused(_))) > 0 {
                self.retry()
            } else {
                self.done(CasDone::NotMost {
                    contended: self.contended,
                })
            };
        }
        Action::Wait
    }

    /// Q promised: compare against the state at the ballot, then accept or write back.
    fn decide(&mut self) -> Action<CasDone> {
        let (m, value, meta) = self.best.clone();
        // A value whose expiry passed by the ballot: absent, but only once its tombstone is
        // written, or a coordinator whose clock lags could still read the value after.
        let expired = value.is_some() && m != Version::ZERO && meta.expired_at(self.ballot.hlc);
        let live = live_at(self.ballot, (m, value, meta));
        let current = Current {
            version: m,
            value: live,
        };
        if compare_holds(&self.expect, &current) {
            self.phase = Phase::Accept;
            let request = ReplicaRequest::Put {
                key: self.key.clone(),
                version: self.ballot,
                value: self.change.value.clone(),
                meta: self.change_meta(),
            };
            return self.start_round(request);
        }
        let agreed = self
            .slots
            .iter()
            .all(|s| !matches!(s, Slot::Promised(v) if *v != m));
        let settle = self.expect == Expect::Settle;
        if agreed_without_write_back(agreed && !expired && !settle) {
            return self.done(CasDone::CompareFailed { current });
        }
        self.phase = Phase::WriteBack;
        let expires = meta.expires.filter(|_| current.value.is_some());
        let request = ReplicaRequest::Put {
            key: self.key.clone(),
            version: self.ballot,
            value: current.value,
            meta: Meta { cas: true, expires },
        };
        self.start_round(request)
    }

    fn evaluate_put(&mut self) -> Action<CasDone> {
        let q = quorum(self.slots.len());
        let accepted = self.count(|s| *s == Slot::Accepted);
        let pending = self.count(|s| *s == Slot::Pending);
        if accepted >= q {
            let ballot = self.ballot;
            return match self.phase {
                Phase::Accept => self.done(CasDone::Ok { version: ballot }),
                _ => {
                    let value = self.write_back_value();
                    self.done(CasDone::CompareFailed {
                        current: Current {
                            version: ballot,
                            value,
                        },
                    })
                }
            };
        }
        if accepted == 0 && pending == 0 {
            // Every replica that may have received the PUT refused it: stored nowhere.
            return match self.phase {
                Phase::Accept if self.count(|s| matches!(s, Slot::Refused(_))) > 0 => self.retry(),
                _ => self.done(CasDone::NotMost {
                    contended: self.contended,
                }),
            };
        }
        if accepted + pending < q {
            return match self.phase {
                // Some replica holds the ballot, a majority never will in this round.
                Phase::Accept if accepted > 0 => self.done(CasDone::Indeterminate {
                    version: self.ballot,
                }),
                // Nothing stored yet: wait for the rest, which may all refuse (a retry).
                Phase::Accept => Action::Wait,
                // Only the current value was written back: the change was never sent.
                _ => self.done(CasDone::NotMost {
                    contended: self.contended,
                }),
            };
        }
        Action::Wait
    }

    /// The value the write-back round carries (the state the compare failed against).
    fn write_back_value(&self) -> Option<Vec<u8>> {
        live_at(self.ballot, self.best.clone())
    }

    fn done(&mut self, outcome: CasDone) -> Action<CasDone> {
        let q = quorum(self.slots.len());
        match &outcome {
            // I10: Q promised the ballot, then Q accepted the change at it.
            CasDone::Ok { .. } => debug_assert!(
                self.phase == Phase::Accept && self.count(|s| *s == Slot::Accepted) >= q,
                "I10"
            ),
            // I12: a definite failure only if no PUT carrying the change may be stored.
            CasDone::NotMost { .. } => debug_assert!(
                self.phase != Phase::Accept
                    || self.count(|s| matches!(s, Slot::Accepted | Slot::Pending)) == 0,
                "I12"
            ),
            CasDone::CompareFailed { .. } | CasDone::Indeterminate { .. } => {}
        }
        self.phase = Phase::Done;
        Action::Done(outcome)
    }
}

/// The value of the accepted record `(m, value, meta)` as the state at `ballot`: `None` when
/// absent (never written, a tombstone, or expired by then).
fn live_at(ballot: Version, (m, value, meta): (Version, Option<Vec<u8>>, Meta)) -> Option<Vec<u8>> {
    value.filter(|_| m != Version::ZERO && !meta.expired_at(ballot.hlc))
}

/// Whether the compare holds against `current`.
pub fn compare_holds(expect: &Expect, current: &Current) -> bool {
    match expect {
        Expect::Absent => current.value.is_none(),
        Expect::Present => current.value.is_some(),
        Expect::Value(v) => current.value.as_ref() == Some(v),
        Expect::Version(v) => current.value.is_some() && current.version == *v,
        Expect::OlderThan(v) => current.version < *v,
        Expect::Never | Expect::Settle => false,
    }
}

/// Whether a failed compare may be answered without writing the state back: only when the Q
/// promises agreed on the accepted version (as a read needs Q holding it exactly).
#[cfg(not(feature = "planted-cas-no-writeback"))]
fn agreed_without_write_back(agreed: bool) -> bool {
    agreed
}

/// The planted bug: a failed compare is answered from a disagreeing majority, so the state it
/// reports may be one that no majority holds, and a later read may not return it.
#[cfg(feature = "planted-cas-no-writeback")]
fn agreed_without_write_back(_agreed: bool) -> bool {
    true
}
