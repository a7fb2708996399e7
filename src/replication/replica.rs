//! The replica rules of DESIGN §3: what one replica does with a PUT, READ, REPAIR or COPY.
//!
//! The rules live in a pure function ([`decide`]) so that the real replica (over a [`Shard`],
//! via [`apply`]) and the protocol simulator (over an in-memory map) obey the very same code.
//! Whether a version is stored is the store rule, [`rule::compare`], which both `decide` and
//! [`Shard::write_if_newer`] call: a replica stores a version only if it is above the one it
//! holds (I2), and an equal version is a repeat of the same write (I1). This module decides
//! what each request *answers*. A REPAIR answers `RepairOk` only if the replica then holds
//! *exactly* the repaired version: a lenient `Ok` from a replica holding something newer
//! lets a read return a value that a completed write already replaced.
//!
//! A version more than the skew bound ahead of the replica's physical clock is refused
//! before anything else ([`ReplicaReply::RefusedFuture`], DESIGN §14): nothing stored, nothing
//! observed, so no peer can poison a key with `u64::MAX`.
//!
//! Must not import `http`, `api` or `runtime`.

use super::clock::{self, Hlc};
use super::protocol::{ReplicaReply, ReplicaRequest};
use crate::storage::rule::{self, Held, PrepareOutcome, WriteOutcome};
use crate::storage::{Meta, Record, Shard, StorageError, Version};

/// What a replica does with one request, given what it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Store the request's `(version, value)` (replacing the held record).
    pub store: bool,
    /// The answer, to be sent once what it reveals is durable (DESIGN §4).
    pub reply: ReplicaReply,
}

/// What bounds the replica besides its record: its physical clock and skew bound, and its
/// promise floor (DESIGN §10, recovery; [`Version::ZERO`]: none).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ClockBound {
    pub physical_ms: u64,
    pub max_skew_ms: u64,
    pub promise_floor: Version,
}

/// The replica rules over an in-memory record (`None` = absent, which holds
/// [`Version::ZERO`]). Pure: the caller applies `store` itself.
pub fn decide(held: Option<&Record>, request: &ReplicaRequest, bound: ClockBound) -> Decision {
    if request
        .version()
        .is_some_and(|v| clock::beyond_bound(v.hlc, bound.physical_ms, bound.max_skew_ms))
    {
        return Decision {
            store: false,
            reply: ReplicaReply::RefusedFuture,
        };
    }
    let held_record = held.map(Record::as_ref);
    let rule_held = Held::of(held_record.as_ref(), bound.promise_floor);
    let held_version = rule_held.version;
    let held_value = || held.and_then(|r| r.value.clone());
    match request {
        ReplicaRequest::Read { .. } => Decision {
            store: false,
            reply: ReplicaReply::Read {
                version: held_version,
                value: held_value(),
                meta: held.map_or(Meta::BLIND, |r| r.meta),
            },
        },
        ReplicaRequest::Prepare { ballot, .. } => {
            let outcome = rule::prepare(rule_held, *ballot);
            Decision {
                store: outcome == PrepareOutcome::Promise,
                reply: prepared(outcome, held),
            }
        }
        ReplicaRequest::Put { version, .. }
        | ReplicaRequest::Repair { version, .. }
        | ReplicaRequest::Copy { version, .. } => {
            let outcome = rule::compare(held_for(request, rule_held), *version);
            Decision {
                store: outcome == WriteOutcome::Stored,
                reply: answer(request, outcome, held_value),
            }
        }
    }
}

/// What the store rule compares a write with: the held record.
#[cfg(not(feature = "planted-repair-ignore-promise"))]
fn held_for(_request: &ReplicaRequest, held: Held) -> Held {
    held
}

/// The planted bug: a REPAIR or a COPY ignores the key's promise (a PUT still respects it),
/// so a read repairs a value in between a CAS's PREPARE and its accept, or anti-entropy
/// copies one below the promise.
#[cfg(feature = "planted-repair-ignore-promise")]
fn held_for(request: &ReplicaRequest, held: Held) -> Held {
    match request {
        ReplicaRequest::Repair { .. } | ReplicaRequest::Copy { .. } => Held {
            promise: held.version,
            ..held
        },
        _ => held,
    }
}

/// The record a replica holds after storing `request` as [`decide`] said (`store: true`),
/// given the record it held (`None`: absent): a write's record, or the held one (a tombstone
/// at the zero version on an absent key) under a PREPARE's promise. `None` for a READ.
pub fn stored_record(held: Option<&Record>, request: &ReplicaRequest) -> Option<Record> {
    match request {
        ReplicaRequest::Read { .. } => None,
        ReplicaRequest::Prepare { ballot, .. } => Some(Record {
            promise: *ballot,
            ..held.cloned().unwrap_or_default()
        }),
        ReplicaRequest::Put {
            version,
            value,
            meta,
            ..
        }
        | ReplicaRequest::Repair {
            version,
            value,
            meta,
            ..
        }
        | ReplicaRequest::Copy {
            version,
            value,
            meta,
            ..
        } => Some(Record {
            version: *version,
            value: value.clone(),
            meta: *meta,
            promise: Version::ZERO,
        }),
    }
}

/// The answer to a PREPARE given the rule's outcome and the record held before it.
fn prepared(outcome: PrepareOutcome, held: Option<&Record>) -> ReplicaReply {
    match outcome {
        PrepareOutcome::Promise | PrepareOutcome::Repeat => ReplicaReply::Promised {
            version: held.map_or(Version::ZERO, |r| r.version),
            value: held.and_then(|r| r.value.clone()),
            meta: held.map_or(Meta::BLIND, |r| r.meta),
        },
        PrepareOutcome::Preempted { held } => ReplicaReply::Preempted { held },
    }
}

/// The answer to a write-like request (PUT, REPAIR, COPY) given the compare's outcome.
/// `held_value` gives the value of the held version (asked only for a rejected REPAIR).
fn answer(
    request: &ReplicaRequest,
    outcome: WriteOutcome,
    held_value: impl FnOnce() -> Option<Vec<u8>>,
) -> ReplicaReply {
    match (request, outcome) {
        (ReplicaRequest::Put { .. }, WriteOutcome::Stored | WriteOutcome::Same) => {
            ReplicaReply::Accepted
        }
        (ReplicaRequest::Put { .. }, WriteOutcome::Newer(r)) => ReplicaReply::Rejected {
            held: r.held,
            accepted: r.accepted,
            accepted_cas: r.accepted_cas,
        },
        (ReplicaRequest::Repair { .. }, WriteOutcome::Stored | WriteOutcome::Same) => {
            ReplicaReply::RepairOk
        }
        (ReplicaRequest::Repair { .. }, WriteOutcome::Newer(r)) => {
            repair_rejected((r.held, r.accepted), held_value)
        }
        (ReplicaRequest::Copy { .. }, WriteOutcome::Stored | WriteOutcome::Same) => {
            ReplicaReply::CopyAck
        }
        // Anti-entropy tells a replica that holds newer from one whose promise refused the
        // copy (a CAS proposer that may have died after PREPARE, DESIGN §10); a hint is done
        // either way.
        (ReplicaRequest::Copy { .. }, WriteOutcome::Newer(r)) => ReplicaReply::Rejected {
            held: r.held,
            accepted: r.accepted,
            accepted_cas: r.accepted_cas,
        },
        // Not writes: `decide` and `apply` answer a READ and a PREPARE themselves.
        (ReplicaRequest::Read { .. } | ReplicaRequest::Prepare { .. }, _) => ReplicaReply::Read {
            version: Version::ZERO,
            value: None,
            meta: Meta::BLIND,
        },
    }
}

/// A REPAIR met a newer version or a higher promise. The planted bug answers `Ok` anyway (it
/// holds "at least" the repaired version), which the simulator must catch.
#[cfg(not(feature = "planted-lenient-repair"))]
fn repair_rejected(
    (held, accepted): (Version, Version),
    held_value: impl FnOnce() -> Option<Vec<u8>>,
) -> ReplicaReply {
    ReplicaReply::RepairRejected {
        held,
        accepted,
        value: held_value(),
    }
}

#[cfg(feature = "planted-lenient-repair")]
fn repair_rejected(
    _held: (Version, Version),
    _held_value: impl FnOnce() -> Option<Vec<u8>>,
) -> ReplicaReply {
    ReplicaReply::RepairOk
}

/// Applies one request to the real replica (a shard on its owner core). Answers only once
/// what the answer reveals is as durable as the sync mode promises ([`Shard`] waits for it).
/// A version beyond `clock`'s bound is refused (and counted) first, as in [`decide`].
pub async fn apply(
    shard: &Shard,
    request: &ReplicaRequest,
    clock: &Hlc,
) -> Result<ReplicaReply, StorageError> {
    if request.version().is_some_and(|v| clock.refuses(v.hlc)) {
        return Ok(ReplicaReply::RefusedFuture);
    }
    let (key, version, value, meta) = match request {
        ReplicaRequest::Read { key } => {
            let held = shard.read(key).await?;
            return Ok(match held {
                Some(record) => ReplicaReply::Read {
                    version: record.version,
                    value: record.value,
                    meta: record.meta,
                },
                None => ReplicaReply::Read {
                    version: Version::ZERO,
                    value: None,
                    meta: Meta::BLIND,
                },
            });
        }
        ReplicaRequest::Prepare { key, ballot } => {
            let (outcome, held) = shard.prepare(key, *ballot).await?;
            return Ok(prepared(outcome, held.as_ref()));
        }
        ReplicaRequest::Put {
            key,
            version,
            value,
            meta,
        }
        | ReplicaRequest::Repair {
            key,
            version,
            value,
            meta,
        }
        | ReplicaRequest::Copy {
            key,
            version,
            value,
            meta,
        } => (key, *version, value.as_deref(), *meta),
    };
    let outcome = write(shard, key, version, value, meta).await?;
    if let (ReplicaRequest::Repair { .. }, WriteOutcome::Newer(rejection)) = (request, outcome) {
        // Only a rejected REPAIR carries the held value: read it back. It may be newer still,
        // which is as good: the coordinator starts its read over either way.
        let newer = shard.read(key).await?;
        let (held, value) = match newer {
            Some(record) => {
                debug_assert!(
                    record.promise() >= rejection.held,
                    "I2: a replica's version and promise only grow"
                );
                ((record.promise(), record.version), record.value)
            }
            None => ((rejection.held, rejection.accepted), None),
        };
        return Ok(repair_rejected(held, || value));
    }
    Ok(answer(request, outcome, || None))
}

#[cfg(not(feature = "planted-early-ack"))]
async fn write(
    shard: &Shard,
    key: &[u8],
    version: Version,
    value: Option<&[u8]>,
    meta: Meta,
) -> Result<WriteOutcome, StorageError> {
    shard.write(key, version, value, meta).await
}

/// The planted bug: once the compare-and-write has stored the version, answer at once instead
/// of waiting for the group commit (the fsync still runs, later). A crash in between forgets
/// an accepted vote.
#[cfg(feature = "planted-early-ack")]
async fn write(
    shard: &Shard,
    key: &[u8],
    version: Version,
    value: Option<&[u8]>,
    meta: Meta,
) -> Result<WriteOutcome, StorageError> {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    let stored_before = shard.stats().writes;
    let mut pending = std::pin::pin!(shard.write(key, version, value, meta));
    match pending
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(outcome) => outcome,
        Poll::Pending if shard.stats().writes > stored_before => Ok(WriteOutcome::Stored),
        Poll::Pending => pending.await,
    }
}

#[cfg(test)]
#[path = "replica_tests.rs"]
mod tests;
