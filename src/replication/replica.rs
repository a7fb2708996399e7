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
use crate::storage::rule::{self, WriteOutcome};
use crate::storage::{Record, Shard, StorageError, Version};

/// What a replica does with one request, given what it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Store the request's `(version, value)` (replacing the held record).
    pub store: bool,
    /// The answer, to be sent once what it reveals is durable (DESIGN §4).
    pub reply: ReplicaReply,
}

/// The replica's physical clock and skew bound, as the rules need them.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ClockBound {
    pub physical_ms: u64,
    pub max_skew_ms: u64,
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
    let held_version = held.map_or(Version::ZERO, |r| r.version);
    let held_value = || held.and_then(|r| r.value.clone());
    match request {
        ReplicaRequest::Read { .. } => Decision {
            store: false,
            reply: ReplicaReply::Read {
                version: held_version,
                value: held_value(),
            },
        },
        ReplicaRequest::Put { version, .. }
        | ReplicaRequest::Repair { version, .. }
        | ReplicaRequest::Copy { version, .. } => {
            let outcome = rule::compare(held_version, *version);
            Decision {
                store: outcome == WriteOutcome::Stored,
                reply: answer(request, outcome, held_value),
            }
        }
    }
}

/// The answer to a write-like request (PUT, REPAIR, COPY) given the compare's outcome.
/// `held_value` gives the value of the newer held version (asked only for a rejected REPAIR).
fn answer(
    request: &ReplicaRequest,
    outcome: WriteOutcome,
    held_value: impl FnOnce() -> Option<Vec<u8>>,
) -> ReplicaReply {
    match (request, outcome) {
        (ReplicaRequest::Put { .. }, WriteOutcome::Stored | WriteOutcome::Same) => {
            ReplicaReply::Accepted
        }
        (ReplicaRequest::Put { .. }, WriteOutcome::Newer(held)) => ReplicaReply::Rejected { held },
        (ReplicaRequest::Repair { .. }, WriteOutcome::Stored | WriteOutcome::Same) => {
            ReplicaReply::RepairOk
        }
        (ReplicaRequest::Repair { .. }, WriteOutcome::Newer(held)) => {
            repair_rejected(held, held_value)
        }
        (ReplicaRequest::Copy { .. }, _) => ReplicaReply::CopyAck,
        // Not a write: `decide` and `apply` answer a READ themselves.
        (ReplicaRequest::Read { .. }, _) => ReplicaReply::Read {
            version: Version::ZERO,
            value: None,
        },
    }
}

/// A REPAIR met a newer version. The planted bug answers `Ok` anyway (it holds "at least" the
/// repaired version), which the simulator must catch.
#[cfg(not(feature = "planted-lenient-repair"))]
fn repair_rejected(held: Version, held_value: impl FnOnce() -> Option<Vec<u8>>) -> ReplicaReply {
    ReplicaReply::RepairRejected {
        held,
        value: held_value(),
    }
}

#[cfg(feature = "planted-lenient-repair")]
fn repair_rejected(_held: Version, _held_value: impl FnOnce() -> Option<Vec<u8>>) -> ReplicaReply {
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
    let (key, version, value) = match request {
        ReplicaRequest::Read { key } => {
            let held = shard.read(key).await?;
            return Ok(match held {
                Some(record) => ReplicaReply::Read {
                    version: record.version,
                    value: record.value,
                },
                None => ReplicaReply::Read {
                    version: Version::ZERO,
                    value: None,
                },
            });
        }
        ReplicaRequest::Put {
            key,
            version,
            value,
        }
        | ReplicaRequest::Repair {
            key,
            version,
            value,
        }
        | ReplicaRequest::Copy {
            key,
            version,
            value,
        } => (key, *version, value.as_deref()),
    };
    let outcome = write(shard, key, version, value).await?;
    if let (ReplicaRequest::Repair { .. }, WriteOutcome::Newer(held)) = (request, outcome) {
        // Only a rejected REPAIR carries the newer value: read it back. It may be newer still,
        // which is as good: the coordinator starts its read over either way.
        let newer = shard.read(key).await?;
        let (held, value) = match newer {
            Some(record) => {
                debug_assert!(record.version >= held, "I2: a replica's version only grows");
                (record.version, record.value)
            }
            None => (held, None),
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
) -> Result<WriteOutcome, StorageError> {
    shard.write_if_newer(key, version, value).await
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
) -> Result<WriteOutcome, StorageError> {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    let stored_before = shard.stats().writes;
    let mut pending = std::pin::pin!(shard.write_if_newer(key, version, value));
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
mod tests {
    use super::*;

    fn v(hlc: u64, origin: u64) -> Version {
        Version { hlc, origin }
    }

    /// A replica clock at 1970 + 1 s with the default bound: every small test version is
    /// within it.
    const NOW: ClockBound = ClockBound {
        physical_ms: 1_000,
        max_skew_ms: crate::limits::MAX_CLOCK_SKEW_MS_DEFAULT,
    };

    fn rec(version: Version, value: Option<&[u8]>) -> Record {
        Record {
            version,
            value: value.map(<[u8]>::to_vec),
        }
    }

    fn put(version: Version, value: &[u8]) -> ReplicaRequest {
        ReplicaRequest::Put {
            key: b"k".to_vec(),
            version,
            value: Some(value.to_vec()),
        }
    }

    fn repair(version: Version, value: Option<&[u8]>) -> ReplicaRequest {
        ReplicaRequest::Repair {
            key: b"k".to_vec(),
            version,
            value: value.map(<[u8]>::to_vec),
        }
    }

    #[test]
    fn put_stores_only_above_and_accepts_an_equal_repeat() {
        let held = rec(v(10, 1), Some(b"a"));
        let above = decide(Some(&held), &put(v(11, 1), b"b"), NOW);
        assert_eq!(
            above,
            Decision {
                store: true,
                reply: ReplicaReply::Accepted
            }
        );
        let repeat = decide(Some(&held), &put(v(10, 1), b"a"), NOW);
        assert_eq!(
            repeat,
            Decision {
                store: false,
                reply: ReplicaReply::Accepted
            }
        );
        let below = decide(Some(&held), &put(v(9, 9), b"c"), NOW);
        assert_eq!(
            below,
            Decision {
                store: false,
                reply: ReplicaReply::Rejected { held: v(10, 1) }
            }
        );
        let absent = decide(None, &put(v(1, 0), b"x"), NOW);
        assert!(absent.store);
    }

    #[test]
    fn read_answers_what_is_held_absent_as_zero() {
        let read = ReplicaRequest::Read { key: b"k".to_vec() };
        assert_eq!(
            decide(None, &read, NOW).reply,
            ReplicaReply::Read {
                version: Version::ZERO,
                value: None
            }
        );
        let tomb = rec(v(3, 3), None);
        assert_eq!(
            decide(Some(&tomb), &read, NOW),
            Decision {
                store: false,
                reply: ReplicaReply::Read {
                    version: v(3, 3),
                    value: None
                }
            }
        );
    }

    #[cfg(not(feature = "planted-lenient-repair"))]
    #[test]
    fn repair_is_ok_only_when_it_holds_exactly_the_version() {
        let held = rec(v(10, 1), Some(b"a"));
        assert_eq!(
            decide(Some(&held), &repair(v(12, 0), Some(b"n")), NOW),
            Decision {
                store: true,
                reply: ReplicaReply::RepairOk
            }
        );
        assert_eq!(
            decide(Some(&held), &repair(v(10, 1), Some(b"a")), NOW),
            Decision {
                store: false,
                reply: ReplicaReply::RepairOk
            }
        );
        assert_eq!(
            decide(Some(&held), &repair(v(9, 0), None), NOW),
            Decision {
                store: false,
                reply: ReplicaReply::RepairRejected {
                    held: v(10, 1),
                    value: Some(b"a".to_vec())
                }
            }
        );
        let tomb = rec(v(10, 1), None);
        assert_eq!(
            decide(Some(&tomb), &repair(v(2, 0), Some(b"x")), NOW).reply,
            ReplicaReply::RepairRejected {
                held: v(10, 1),
                value: None
            }
        );
    }

    #[test]
    fn copy_stores_iff_newer_and_always_acks() {
        let held = rec(v(10, 1), Some(b"a"));
        let copy = |version| ReplicaRequest::Copy {
            key: b"k".to_vec(),
            version,
            value: None,
        };
        assert_eq!(
            decide(Some(&held), &copy(v(11, 0)), NOW),
            Decision {
                store: true,
                reply: ReplicaReply::CopyAck
            }
        );
        assert_eq!(
            decide(Some(&held), &copy(v(10, 1)), NOW),
            Decision {
                store: false,
                reply: ReplicaReply::CopyAck
            }
        );
        assert_eq!(
            decide(Some(&held), &copy(v(3, 1)), NOW),
            Decision {
                store: false,
                reply: ReplicaReply::CopyAck
            }
        );
    }

    #[cfg(not(feature = "planted-unbounded-clock"))]
    #[test]
    fn decide_refuses_beyond_the_bound_before_anything_else() {
        let held = rec(v(10, 1), Some(b"a"));
        let limit = clock::store_limit(NOW.physical_ms, NOW.max_skew_ms);
        for request in [
            put(v(limit + 1, 1), b"x"),
            repair(v(u64::MAX, 1), Some(b"x")),
            ReplicaRequest::Copy {
                key: b"k".to_vec(),
                version: v(u64::MAX, 1),
                value: None,
            },
        ] {
            let decision = decide(Some(&held), &request, NOW);
            assert_eq!(
                decision,
                Decision {
                    store: false,
                    reply: ReplicaReply::RefusedFuture
                }
            );
        }
        let at_limit = decide(Some(&held), &put(v(limit, 1), b"x"), NOW);
        assert!(
            at_limit.store,
            "the whole last millisecond is within the bound"
        );
    }

    /// "A replica's version never decreases" under random request sequences (DESIGN §9.1).
    #[test]
    fn held_version_never_decreases_under_random_requests() {
        let mut seed = 0x5DEE_CE66_D1CE_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut held: Option<Record> = None;
        for _ in 0..20_000 {
            let version = v(next() % 64, next() % 3);
            let value = Some(version.hlc.to_be_bytes().to_vec());
            let request = match next() % 4 {
                0 => ReplicaRequest::Put {
                    key: b"k".to_vec(),
                    version,
                    value,
                },
                1 => ReplicaRequest::Repair {
                    key: b"k".to_vec(),
                    version,
                    value,
                },
                2 => ReplicaRequest::Copy {
                    key: b"k".to_vec(),
                    version,
                    value,
                },
                _ => ReplicaRequest::Read { key: b"k".to_vec() },
            };
            let before = held.as_ref().map_or(Version::ZERO, |r| r.version);
            let decision = decide(held.as_ref(), &request, NOW);
            if decision.store {
                let (
                    Some(version),
                    ReplicaRequest::Put { value, .. }
                    | ReplicaRequest::Repair { value, .. }
                    | ReplicaRequest::Copy { value, .. },
                ) = (request.version(), &request)
                else {
                    panic!("a READ never stores");
                };
                held = Some(Record {
                    version,
                    value: value.clone(),
                });
            }
            let after = held.as_ref().map_or(Version::ZERO, |r| r.version);
            assert!(after >= before, "{after:?} < {before:?} after {request:?}");
            if let ReplicaReply::Accepted | ReplicaReply::RepairOk = decision.reply {
                assert_eq!(
                    Some(after),
                    request.version(),
                    "Ok means it holds exactly v"
                );
            }
        }
    }

    mod on_a_shard {
        use super::*;
        use crate::config::SyncMode;
        use crate::storage::store::test_dir::TempDir;
        use crate::storage::{Store, StoreOptions};

        use crate::test_support::run;

        fn open(dir: &TempDir, sync: SyncMode) -> (Store, Shard, Hlc) {
            let store = Store::open(StoreOptions {
                root: dir.path().to_path_buf(),
                shards_if_new: 1,
                sync,
                disk_reserve_bytes: 0,
            })
            .expect("open store");
            let shard = Shard::new(store.shard_db(0), sync);
            let bound = clock::SkewBound::new(crate::limits::MAX_CLOCK_SKEW_MS_DEFAULT);
            let hlc = Hlc::open(dir.path(), 0, 1 << 8, bound).expect("clock");
            (store, shard, hlc)
        }

        #[test]
        fn apply_follows_the_same_rules_as_decide() {
            let dir = TempDir::new("replica-apply");
            let (_store, shard, hlc) = open(&dir, SyncMode::Always);
            run(async {
                let read = ReplicaRequest::Read { key: b"k".to_vec() };
                let reply = apply(&shard, &read, &hlc).await.expect("read");
                assert_eq!(
                    reply,
                    ReplicaReply::Read {
                        version: Version::ZERO,
                        value: None
                    }
                );
                let ok = apply(&shard, &put(v(10, 1), b"a"), &hlc)
                    .await
                    .expect("put");
                assert_eq!(ok, ReplicaReply::Accepted);
                let again = apply(&shard, &put(v(10, 1), b"a"), &hlc)
                    .await
                    .expect("put");
                assert_eq!(again, ReplicaReply::Accepted);
                let old = apply(&shard, &put(v(9, 1), b"z"), &hlc).await.expect("put");
                assert_eq!(old, ReplicaReply::Rejected { held: v(10, 1) });
                let reply = apply(&shard, &read, &hlc).await.expect("read");
                assert_eq!(
                    reply,
                    ReplicaReply::Read {
                        version: v(10, 1),
                        value: Some(b"a".to_vec())
                    }
                );
                let repaired = apply(&shard, &repair(v(11, 0), None), &hlc)
                    .await
                    .expect("repair");
                assert_eq!(repaired, ReplicaReply::RepairOk);
                let copy = ReplicaRequest::Copy {
                    key: b"k".to_vec(),
                    version: v(12, 0),
                    value: Some(b"c".to_vec()),
                };
                assert_eq!(
                    apply(&shard, &copy, &hlc).await.expect("copy"),
                    ReplicaReply::CopyAck
                );
                let reply = apply(&shard, &read, &hlc).await.expect("read");
                assert_eq!(
                    reply,
                    ReplicaReply::Read {
                        version: v(12, 0),
                        value: Some(b"c".to_vec())
                    }
                );
            });
        }

        #[cfg(not(feature = "planted-lenient-repair"))]
        #[test]
        fn apply_rejects_a_stale_repair_with_the_newer_value() {
            let dir = TempDir::new("replica-repair");
            let (_store, shard, hlc) = open(&dir, SyncMode::Os);
            run(async {
                apply(&shard, &put(v(10, 1), b"a"), &hlc)
                    .await
                    .expect("put");
                let reply = apply(&shard, &repair(v(5, 0), Some(b"old")), &hlc)
                    .await
                    .expect("repair");
                assert_eq!(
                    reply,
                    ReplicaReply::RepairRejected {
                        held: v(10, 1),
                        value: Some(b"a".to_vec())
                    }
                );
            });
        }

        /// DESIGN §4: under `always`, an Accepted must not go out before the fsync that makes
        /// the version durable (the planted early ack fails this).
        #[test]
        fn apply_answers_a_put_only_once_it_is_durable() {
            let dir = TempDir::new("replica-durable");
            let (_store, shard, hlc) = open(&dir, SyncMode::Always);
            run(async {
                let fsyncs = shard.stats().fsyncs;
                let reply = apply(&shard, &put(v(10, 1), b"a"), &hlc)
                    .await
                    .expect("put");
                assert_eq!(reply, ReplicaReply::Accepted);
                assert!(
                    shard.stats().fsyncs > fsyncs,
                    "Accepted was sent before the write was fsynced"
                );
            });
        }

        #[cfg(not(feature = "planted-unbounded-clock"))]
        #[test]
        fn a_far_future_version_is_refused_stored_nowhere_and_counted() {
            let dir = TempDir::new("replica-future");
            let (_store, shard, hlc) = open(&dir, SyncMode::Always);
            let now_ms = crate::replication::clock::system_ms();
            let two_hours = (now_ms + 7_200_000) << clock::COUNTER_BITS;
            run(async {
                for hlc_value in [u64::MAX, two_hours] {
                    for request in [
                        put(v(hlc_value, 1), b"poison"),
                        repair(v(hlc_value, 1), Some(b"poison")),
                        copy_of(v(hlc_value, 1)),
                    ] {
                        let reply = apply(&shard, &request, &hlc).await.expect("apply");
                        assert_eq!(reply, ReplicaReply::RefusedFuture, "{request:?}");
                    }
                }
                assert_eq!(shard.read(b"k").await.expect("read"), None);
                assert_eq!(hlc.bound().refused(), 6);
                // The key stays writable with an ordinary version.
                let fresh = hlc.now().await;
                let ok = apply(&shard, &put(fresh, b"ok"), &hlc).await.expect("put");
                assert_eq!(ok, ReplicaReply::Accepted);
            });
        }

        fn copy_of(version: Version) -> ReplicaRequest {
            ReplicaRequest::Copy {
                key: b"k".to_vec(),
                version,
                value: Some(b"poison".to_vec()),
            }
        }

        #[test]
        fn bad_key_is_a_storage_error_not_a_panic() {
            let dir = TempDir::new("replica-badkey");
            let (_store, shard, hlc) = open(&dir, SyncMode::Os);
            run(async {
                let empty = ReplicaRequest::Read { key: Vec::new() };
                assert!(matches!(
                    apply(&shard, &empty, &hlc).await,
                    Err(StorageError::Invalid { .. })
                ));
            });
        }
    }
}
