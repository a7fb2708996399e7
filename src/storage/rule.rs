//! The replica's store rule (DESIGN §3, §10), written once: what a replica does with an
//! incoming version, or a CAS ballot, given what it holds. [`Shard`](super::Shard)
//! (production) and `replication::replica::decide` (the rules the protocol simulator runs)
//! both call [`compare`] and [`prepare`], so a change here reaches both, and a change anywhere
//! else reaches neither.
//!
//! A replica holds a version `v` and a promise `p ≥ v` (the highest CAS ballot it promised;
//! without one, `p = v`). It stores an incoming version `x` iff `x > v` and `x ≥ p` (PUT,
//! REPAIR and COPY alike: invariant I9), so its version and its promise of a key only grow
//! (I2); an equal version is a repeat of the same write (I1: versions are issued once); an
//! absent key holds [`Version::ZERO`]. A PREPARE of ballot `b` raises the promise iff `b > p`.
//!
//! Must not import anything outside `storage`.

use super::record::RecordRef;
use super::Version;

/// What a replica holds for a key, as far as the rule is concerned.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Held {
    /// The accepted version ([`Version::ZERO`]: absent).
    pub version: Version,
    /// The promise in force, at least `version` (a recovery floor is already in it).
    pub promise: Version,
    /// The accepted version was written by a CAS (not blind).
    pub cas: bool,
}

impl Held {
    /// An absent key.
    pub const ABSENT: Held = Held {
        version: Version::ZERO,
        promise: Version::ZERO,
        cas: false,
    };

    /// What `record` holds (`None`: absent), with every promise counted as at least `floor`
    /// (the recovery's promise floor).
    pub fn of(record: Option<&RecordRef<'_>>, floor: Version) -> Held {
        let held = record.map_or(Held::ABSENT, |r| Held {
            version: r.version,
            promise: r.promise(),
            cas: r.meta.cas,
        });
        Held {
            promise: held.promise.max(counted_floor(floor)),
            ..held
        }
    }
}

#[cfg(not(feature = "planted-no-promise-floor"))]
fn counted_floor(floor: Version) -> Version {
    floor
}

/// The planted bug: the promise floor a recovery set is not counted, so a promise the node
/// forgot with its state no longer fences older versions.
#[cfg(feature = "planted-no-promise-floor")]
fn counted_floor(_floor: Version) -> Version {
    Version::ZERO
}

/// Why a version was not stored: what the replica holds instead.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The larger of the promise and the accepted version: a new attempt must go above it.
    pub held: Version,
    /// The accepted version, and whether a CAS wrote it (safe mode counts a rejection as
    /// "holds ≥ v" only for a newer blind accepted version, I13).
    pub accepted: Version,
    pub accepted_cas: bool,
}

/// What the store rule decides, and what a shard's write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The version was above the held one and at or above the promise: it is (to be) stored.
    Stored,
    /// The replica already holds exactly this version: a repeat of the same write.
    Same,
    /// The replica holds a newer version or promised a higher ballot; nothing is written.
    Newer(Rejection),
}

/// The store rule: store `incoming` iff it is above the held version and at or above the
/// promise.
pub fn compare(held: Held, incoming: Version) -> WriteOutcome {
    if incoming == held.version {
        WriteOutcome::Same
    } else if incoming > held.version && admitted_by_promise(held, incoming) {
        WriteOutcome::Stored
    } else {
        WriteOutcome::Newer(Rejection {
            held: held.promise.max(held.version),
            accepted: held.version,
            accepted_cas: held.cas,
        })
    }
}

#[cfg(not(feature = "planted-cas-ignore-promise"))]
fn admitted_by_promise(held: Held, incoming: Version) -> bool {
    incoming >= held.promise
}

/// The planted bug: writes ignore promises, so a blind PUT (or a repair) lands between a
/// CAS's PREPARE and its accept, and the CAS's compare is made against a state that no
/// longer holds.
#[cfg(feature = "planted-cas-ignore-promise")]
fn admitted_by_promise(_held: Held, _incoming: Version) -> bool {
    true
}

/// What a PREPARE of a ballot does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrepareOutcome {
    /// The ballot is above the promise: it becomes the promise (durable before answering).
    Promise,
    /// The ballot is the promise already, and nothing was accepted at it: a repeat of the
    /// same PREPARE, answered the same.
    Repeat,
    /// The replica promised or accepted this ballot or a higher version: refused.
    Preempted { held: Version },
}

/// The PREPARE rule: promise `ballot` iff it is above the promise in force.
pub fn prepare(held: Held, ballot: Version) -> PrepareOutcome {
    if ballot > held.promise {
        PrepareOutcome::Promise
    } else if ballot == held.promise && held.version < ballot {
        PrepareOutcome::Repeat
    } else {
        PrepareOutcome::Preempted {
            held: held.promise.max(held.version),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(hlc: u64, origin: u64) -> Version {
        Version { hlc, origin }
    }

    fn held(version: Version, promise: Version) -> Held {
        Held {
            version,
            promise: promise.max(version),
            cas: false,
        }
    }

    fn newer(h: Held) -> WriteOutcome {
        WriteOutcome::Newer(Rejection {
            held: h.promise,
            accepted: h.version,
            accepted_cas: h.cas,
        })
    }

    #[test]
    fn stores_only_above_the_held_version_hlc_then_origin() {
        let at = |version| held(version, Version::ZERO);
        assert_eq!(compare(Held::ABSENT, v(1, 0)), WriteOutcome::Stored);
        assert_eq!(compare(Held::ABSENT, v(0, 1)), WriteOutcome::Stored);
        assert_eq!(compare(at(v(5, 2)), v(5, 2)), WriteOutcome::Same);
        assert_eq!(compare(at(v(5, 2)), v(5, 1)), newer(at(v(5, 2))));
        assert_eq!(compare(at(v(5, 2)), v(5, 3)), WriteOutcome::Stored);
        assert_eq!(compare(at(v(6, 0)), v(5, 9)), newer(at(v(6, 0))));
    }

    #[cfg(not(feature = "planted-cas-ignore-promise"))]
    #[test]
    fn a_promise_refuses_every_version_below_it_and_admits_the_ballot_itself() {
        let h = held(v(5, 0), v(9, 0));
        // Below the promise, above the version: refused, naming the promise.
        assert_eq!(compare(h, v(7, 0)), newer(h));
        // The ballot itself (the CAS's accept) and anything above it.
        assert_eq!(compare(h, v(9, 0)), WriteOutcome::Stored);
        assert_eq!(compare(h, v(10, 0)), WriteOutcome::Stored);
        // A repeat of the accepted version stays a repeat.
        assert_eq!(compare(h, v(5, 0)), WriteOutcome::Same);
        // On an absent key, a promise alone.
        let fresh = held(Version::ZERO, v(3, 0));
        assert_eq!(compare(fresh, v(2, 0)), newer(fresh));
        assert_eq!(compare(fresh, v(3, 0)), WriteOutcome::Stored);
    }

    #[test]
    fn a_rejection_names_the_accepted_version_and_whether_a_cas_wrote_it() {
        let h = Held {
            version: v(8, 1),
            promise: v(8, 1),
            cas: true,
        };
        assert_eq!(
            compare(h, v(2, 0)),
            WriteOutcome::Newer(Rejection {
                held: v(8, 1),
                accepted: v(8, 1),
                accepted_cas: true
            })
        );
    }

    #[test]
    fn prepare_promises_only_above_and_repeats_an_equal_open_ballot() {
        let h = held(v(5, 0), v(9, 0));
        assert_eq!(prepare(h, v(10, 0)), PrepareOutcome::Promise);
        assert_eq!(prepare(h, v(9, 0)), PrepareOutcome::Repeat);
        assert_eq!(
            prepare(h, v(8, 0)),
            PrepareOutcome::Preempted { held: v(9, 0) }
        );
        // Once the ballot was accepted, its PREPARE is no longer a repeat.
        let accepted = held(v(9, 0), Version::ZERO);
        assert_eq!(
            prepare(accepted, v(9, 0)),
            PrepareOutcome::Preempted { held: v(9, 0) }
        );
        assert_eq!(prepare(Held::ABSENT, v(1, 0)), PrepareOutcome::Promise);
        assert_eq!(
            prepare(Held::ABSENT, Version::ZERO),
            PrepareOutcome::Preempted {
                held: Version::ZERO
            }
        );
    }

    #[test]
    fn a_floor_raises_every_promise() {
        let floor = v(20, 0);
        let h = Held::of(None, floor);
        assert_eq!(h.promise, floor);
        assert_eq!(compare(h, v(19, 0)), newer(h));
        assert_eq!(
            prepare(h, v(19, 0)),
            PrepareOutcome::Preempted { held: floor }
        );
    }
}
