//! The read (get) state machine of DESIGN §3.
//!
//! READ every replica; once Q answered, `m` = the largest version among them. If all Q carry
//! exactly `m`, done. Otherwise REPAIR(`m`) every replica that reported less (and any later
//! answer below `m`); a replica counts as holding `m` on a READ answer equal to `m` or a
//! `RepairOk`. Once Q hold exactly `m` (I6), return it. A rejected repair (someone holds
//! newer) starts the read over, a bounded number of times; then, or at the deadline,
//! NotMost: failing a read is always safe.
//!
//! A repair refused as beyond the replica's clock bound (`RefusedFuture`, DESIGN §14) leaves
//! that replica out: it does not hold `m` and will not from this repair. Starting over would
//! find the same `m`, so the read goes on with the others and fails (safely) if Q cannot hold
//! `m` exactly.

use super::{check_replicas, quorum, Action, Input, Operation, ReplicaSet};
use crate::limits;
use crate::replication::protocol::{ReplicaReply, ReplicaRequest};
use crate::storage::{Meta, Version};

/// How a read ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadDone {
    /// A majority held exactly `version`, whose value this is, expiring at `expires` (an HLC)
    /// if it was written with a time to live.
    Found {
        version: Version,
        value: Vec<u8>,
        expires: Option<u64>,
    },
    /// A majority held exactly `version`: absent ([`Version::ZERO`]) or a tombstone.
    NotFound { version: Version },
    /// No majority could be had: nothing is known (and nothing was changed but repairs).
    NotMost,
}

/// One replica's part in the current attempt.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Slot {
    /// READ sent, no answer yet.
    Reading,
    /// Never written to a socket (or unreachable from the start).
    NotSent,
    /// Answered the READ before `m` was fixed.
    Answered(Version),
    /// Holds exactly `m` (READ answer `m`, or `RepairOk`).
    Holds,
    /// REPAIR(`m`) sent, no answer yet.
    Repairing,
    /// Answered above `m` after `m` was fixed: ignored (its repair would be rejected anyway).
    Above,
    /// Refused the repair of `m`: beyond its clock bound, or below a CAS's promise.
    Refused,
}

/// A read in progress. See the module doc for the rules.
#[derive(Debug)]
pub struct ReadOp {
    key: Vec<u8>,
    reachable: ReplicaSet,
    round: u32,
    /// Attempts started (the first included).
    attempts: u32,
    slots: Vec<Slot>,
    /// The largest version answered so far in this attempt, its value and meta; fixed as `m`
    /// once Q answered.
    best: (Version, Option<Vec<u8>>, Meta),
    fixed: bool,
    done: bool,
    observed: Version,
    /// A CAS's promise refused a repair: a read that fails may end as a consensus read.
    met_promise: bool,
    /// The coordinator's clock (an HLC) when the read began: expiries behind it have passed.
    now: u64,
}

impl Operation for ReadOp {
    type Done = ReadDone;

    fn feed(&mut self, input: Input) -> Action<ReadDone> {
        match input {
            Input::Reply { from, round, reply } => self.on_reply(from, round, reply),
            Input::NotSent { to, round } => self.on_not_sent(to, round),
            // A read never asks for a version: one that arrives ends it, as failing a read
            // is always safe.
            Input::Version(_) | Input::Deadline => self.on_deadline(),
        }
    }

    fn observed(&self) -> Version {
        self.observed
    }

    fn is_done(&self) -> bool {
        self.done
    }
}

impl ReadOp {
    /// Starts a read of `key` from the reachable replicas of `0..n`. Fewer than a majority
    /// reachable → NotMost at once. Expiries are never passed.
    pub fn start(n: usize, key: Vec<u8>, reachable: ReplicaSet) -> (ReadOp, Action<ReadDone>) {
        ReadOp::start_at(n, key, reachable, 0)
    }

    /// [`ReadOp::start`] by a coordinator whose clock reads `now` (an HLC): a value whose
    /// expiry is behind it is read as its expiry's tombstone, written (repaired) into a
    /// majority first (DESIGN §10).
    pub fn start_at(
        n: usize,
        key: Vec<u8>,
        reachable: ReplicaSet,
        now: u64,
    ) -> (ReadOp, Action<ReadDone>) {
        check_replicas(n);
        let mut op = ReadOp {
            key,
            reachable: reachable.intersect(ReplicaSet::all(n)),
            round: 0,
            attempts: 0,
            slots: vec![Slot::NotSent; n],
            best: (Version::ZERO, None, Meta::BLIND),
            fixed: false,
            done: false,
            observed: Version::ZERO,
            met_promise: false,
            now,
        };
        let action = if op.reachable.len() < quorum(n) {
            op.finish(ReadDone::NotMost)
        } else {
            op.start_attempt()
        };
        (op, action)
    }

    /// An answer from replica `from` to a request of round `round`. Answers of other rounds,
    /// from unknown replicas, repeated, or not fitting the request are ignored.
    pub fn on_reply(&mut self, from: usize, round: u32, reply: ReplicaReply) -> Action<ReadDone> {
        if let Some(seen) = reply.version_seen() {
            self.observed = self.observed.max(seen);
        }
        if self.done || round != self.round {
            return Action::Wait;
        }
        match (self.slots.get(from).copied(), reply) {
            (
                Some(Slot::Reading),
                ReplicaReply::Read {
                    version,
                    value,
                    meta,
                },
            ) => {
                if self.fixed {
                    self.on_late_answer(from, version)
                } else {
                    self.on_answer(from, version, value, meta)
                }
            }
            (Some(Slot::Repairing), ReplicaReply::RepairOk) => {
                self.slots[from] = Slot::Holds;
                self.evaluate()
            }
            // Someone holds newer than `m`: our `m` may be stale. Start over.
            (Some(Slot::Repairing), ReplicaReply::RepairRejected { held, accepted, .. })
                if held > self.best.0 && accepted > self.best.0 =>
            {
                self.start_over()
            }
            // Only a CAS's promise refuses `m` there (no newer data): that replica will not
            // hold `m`, the others still may. Start over only once no majority can.
            (Some(Slot::Repairing), ReplicaReply::RepairRejected { held, .. })
                if held > self.best.0 =>
            {
                self.slots[from] = Slot::Refused;
                self.met_promise = true;
                if self.majority_possible() {
                    self.evaluate()
                } else {
                    self.start_over()
                }
            }
            (Some(Slot::Repairing), ReplicaReply::RefusedFuture) => {
                self.slots[from] = Slot::Refused;
                self.evaluate()
            }
            // PUT or COPY answers, bogus rejections: never a vote (I7).
            _ => Action::Wait,
        }
    }

    /// The request of round `round` to replica `to` was never written to a socket.
    pub fn on_not_sent(&mut self, to: usize, round: u32) -> Action<ReadDone> {
        if self.done || round != self.round {
            return Action::Wait;
        }
        match self.slots.get(to) {
            Some(Slot::Reading | Slot::Repairing) => {
                self.slots[to] = Slot::NotSent;
                self.evaluate()
            }
            _ => Action::Wait,
        }
    }

    /// The operation's deadline passed: failing a read is always safe.
    pub fn on_deadline(&mut self) -> Action<ReadDone> {
        if self.done {
            return Action::Wait;
        }
        self.finish(ReadDone::NotMost)
    }

    /// The key being read.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// Whether a CAS's promise refused one of this read's repairs (a lingering promise may be
    /// what keeps it from ending: the driver then tries a consensus read).
    pub fn met_promise(&self) -> bool {
        self.met_promise
    }

    /// Attempts started so far (restarts after a rejected repair add one each).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    fn start_attempt(&mut self) -> Action<ReadDone> {
        self.round += 1;
        self.attempts += 1;
        self.best = (Version::ZERO, None, Meta::BLIND);
        self.fixed = false;
        for (replica, slot) in self.slots.iter_mut().enumerate() {
            *slot = if self.reachable.contains(replica) {
                Slot::Reading
            } else {
                Slot::NotSent
            };
        }
        Action::Send {
            round: self.round,
            to: self.reachable,
            request: ReplicaRequest::Read {
                key: self.key.clone(),
            },
        }
    }

    /// A READ answer while `m` is still open.
    fn on_answer(
        &mut self,
        from: usize,
        version: Version,
        value: Option<Vec<u8>>,
        meta: Meta,
    ) -> Action<ReadDone> {
        self.slots[from] = Slot::Answered(version);
        // Versions are unique, so an answer equal to the best carries the same value.
        if version > self.best.0 {
            self.best = (version, value, meta);
        }
        let answered = self.count(|s| matches!(s, Slot::Answered(_)));
        if answered < quorum(self.slots.len()) {
            return self.evaluate();
        }
        // Q answered: fix `m`, and repair everyone who reported less.
        self.fixed = true;
        let m = self.best.0;
        let mut stale = ReplicaSet::EMPTY;
        for (replica, slot) in self.slots.iter_mut().enumerate() {
            if let Slot::Answered(v) = *slot {
                debug_assert!(v <= m);
                *slot = if v == m {
                    Slot::Holds
                } else {
                    stale.insert(replica);
                    Slot::Repairing
                };
            }
        }
        if stale.is_empty() {
            return self.evaluate();
        }
        self.repair(stale)
    }

    /// A READ answer after `m` was fixed.
    fn on_late_answer(&mut self, from: usize, version: Version) -> Action<ReadDone> {
        let m = self.best.0;
        if version == m {
            self.slots[from] = Slot::Holds;
            self.evaluate()
        } else if version < m {
            self.slots[from] = Slot::Repairing;
            self.repair(ReplicaSet::of([from]))
        } else {
            self.slots[from] = Slot::Above;
            self.evaluate()
        }
    }

    fn repair(&self, to: ReplicaSet) -> Action<ReadDone> {
        Action::Send {
            round: self.round,
            to,
            request: ReplicaRequest::Repair {
                key: self.key.clone(),
                version: self.best.0,
                value: self.best.1.clone(),
                meta: self.best.2,
            },
        }
    }

    fn count(&self, pred: impl Fn(&Slot) -> bool) -> usize {
        self.slots.iter().filter(|s| pred(s)).count()
    }

    /// A new attempt, or NotMost once they are used up.
    fn start_over(&mut self) -> Action<ReadDone> {
        if self.attempts >= limits::READ_ATTEMPTS_MAX {
            self.finish(ReadDone::NotMost)
        } else {
            self.start_attempt()
        }
    }

    /// Whether Q replicas may still hold exactly `m` in this attempt.
    fn majority_possible(&self) -> bool {
        let possible = self.count(|s| {
            matches!(
                s,
                Slot::Reading | Slot::Answered(_) | Slot::Holds | Slot::Repairing
            )
        });
        possible >= quorum(self.slots.len())
    }

    /// Done once Q hold exactly `m`; NotMost once that can no longer happen.
    fn evaluate(&mut self) -> Action<ReadDone> {
        let q = quorum(self.slots.len());
        let holds = self.count(|s| *s == Slot::Holds);
        if self.fixed && holds >= q {
            let (version, value, meta) = self.best.clone();
            if value.is_some() && meta.expired_at(self.now) {
                return self.materialize(version, meta);
            }
            return self.finish(match value {
                Some(value) if version != Version::ZERO => ReadDone::Found {
                    version,
                    value,
                    expires: meta.expires,
                },
                _ => ReadDone::NotFound { version },
            });
        }
        let possible = self.count(|s| {
            matches!(
                s,
                Slot::Reading | Slot::Answered(_) | Slot::Holds | Slot::Repairing
            )
        });
        if possible < q {
            return self.finish(ReadDone::NotMost);
        }
        Action::Wait
    }

    /// A majority holds `m`, whose expiry has passed: the key holds the expiry's tombstone,
    /// at the record's successor version (`Version::expiry`). Repair it into every replica;
    /// the read answers NotFound once a majority holds exactly it (a newer write there starts
    /// the read over).
    #[cfg(not(feature = "planted-ttl-no-materialize"))]
    fn materialize(&mut self, m: Version, meta: Meta) -> Action<ReadDone> {
        if meta.expires.is_none() {
            return Action::Wait;
        }
        self.best = (m.expiry(), None, Meta::BLIND);
        // A round of its own: a RepairOk still on its way for `m` must not count as holding
        // the tombstone (the simulator found reads answered from two holders of five).
        self.round += 1;
        for (replica, slot) in self.slots.iter_mut().enumerate() {
            if self.reachable.contains(replica) {
                *slot = Slot::Repairing;
            }
        }
        self.repair(self.reachable)
    }

    /// The planted bug: an expired value is answered NotFound on this coordinator's clock
    /// alone, nothing written; a coordinator whose clock lags still reads the value after.
    #[cfg(feature = "planted-ttl-no-materialize")]
    fn materialize(&mut self, m: Version, _meta: Meta) -> Action<ReadDone> {
        self.done = true;
        Action::Done(ReadDone::NotFound { version: m })
    }

    fn finish(&mut self, outcome: ReadDone) -> Action<ReadDone> {
        if !matches!(outcome, ReadDone::NotMost) {
            // I6: a read returns `m` only once Q replicas held exactly `m`.
            let holds = self.count(|s| *s == Slot::Holds);
            debug_assert!(
                self.fixed && holds >= quorum(self.slots.len()),
                "I6: {holds} hold m"
            );
        }
        self.done = true;
        Action::Done(outcome)
    }
}
