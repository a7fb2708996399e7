//! Unit tests of the replica rules (`replica.rs`): every rule of DESIGN §3 and §10 on the
//! pure `decide`, and `apply` on a real shard.

use super::*;

fn v(hlc: u64, origin: u64) -> Version {
    Version { hlc, origin }
}

/// A replica clock at 1970 + 1 s with the default bound: every small test version is
/// within it.
const NOW: ClockBound = ClockBound {
    physical_ms: 1_000,
    max_skew_ms: crate::limits::MAX_CLOCK_SKEW_MS_DEFAULT,
    promise_floor: Version::ZERO,
};

fn rec(version: Version, value: Option<&[u8]>) -> Record {
    Record {
        version,
        value: value.map(<[u8]>::to_vec),
        ..Default::default()
    }
}

fn put(version: Version, value: &[u8]) -> ReplicaRequest {
    ReplicaRequest::Put {
        key: b"k".to_vec(),
        version,
        value: Some(value.to_vec()),
        meta: Meta::BLIND,
    }
}

fn repair(version: Version, value: Option<&[u8]>) -> ReplicaRequest {
    ReplicaRequest::Repair {
        key: b"k".to_vec(),
        version,
        value: value.map(<[u8]>::to_vec),
        meta: Meta::BLIND,
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
            reply: ReplicaReply::Rejected {
                held: v(10, 1),
                accepted: v(10, 1),
                accepted_cas: false
            }
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
            value: None,
            meta: Meta::BLIND,
        }
    );
    let tomb = rec(v(3, 3), None);
    assert_eq!(
        decide(Some(&tomb), &read, NOW),
        Decision {
            store: false,
            reply: ReplicaReply::Read {
                version: v(3, 3),
                value: None,
                meta: Meta::BLIND,
            }
        }
    );
}

#[test]
fn prepare_promises_durably_and_answers_the_accepted_record() {
    let cas = Meta {
        cas: true,
        expires: None,
    };
    let held = rec(v(10, 1), Some(b"a")).with_meta(cas);
    let prepare = |hlc| ReplicaRequest::Prepare {
        key: b"k".to_vec(),
        ballot: v(hlc, 2),
    };
    let promised = decide(Some(&held), &prepare(12), NOW);
    assert_eq!(
        promised,
        Decision {
            store: true,
            reply: ReplicaReply::Promised {
                version: v(10, 1),
                value: Some(b"a".to_vec()),
                meta: cas
            }
        }
    );
    let after = stored_record(Some(&held), &prepare(12)).expect("a record");
    assert_eq!((after.version, after.promise()), (v(10, 1), v(12, 2)));
    // The same ballot again is answered the same, without a write; a lower one is not.
    assert_eq!(
        decide(Some(&after), &prepare(12), NOW),
        Decision {
            store: false,
            ..promised
        }
    );
    assert_eq!(
        decide(Some(&after), &prepare(11), NOW).reply,
        ReplicaReply::Preempted { held: v(12, 2) }
    );
    // A blind PUT below the promise is rejected naming it and the accepted CAS version.
    assert_eq!(
        decide(Some(&after), &put(v(11, 0), b"b"), NOW).reply,
        ReplicaReply::Rejected {
            held: v(12, 2),
            accepted: v(10, 1),
            accepted_cas: true
        }
    );
    // On an absent key the promise is held by a tombstone at the zero version.
    let fresh = stored_record(None, &prepare(3)).expect("a record");
    assert_eq!((fresh.version, fresh.promise()), (Version::ZERO, v(3, 2)));
    assert_eq!(
        decide(
            Some(&fresh),
            &ReplicaRequest::Read { key: b"k".to_vec() },
            NOW
        )
        .reply,
        ReplicaReply::Read {
            version: Version::ZERO,
            value: None,
            meta: Meta::BLIND
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
                accepted: v(10, 1),
                value: Some(b"a".to_vec())
            }
        }
    );
    let tomb = rec(v(10, 1), None);
    assert_eq!(
        decide(Some(&tomb), &repair(v(2, 0), Some(b"x")), NOW).reply,
        ReplicaReply::RepairRejected {
            held: v(10, 1),
            accepted: v(10, 1),
            value: None
        }
    );
}

#[test]
fn copy_stores_iff_newer_and_tells_what_refused_it() {
    let held = rec(v(10, 1), Some(b"a"));
    let copy = |version| ReplicaRequest::Copy {
        key: b"k".to_vec(),
        version,
        value: None,
        meta: Meta::BLIND,
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
            reply: ReplicaReply::Rejected {
                held: v(10, 1),
                accepted: v(10, 1),
                accepted_cas: false,
            }
        }
    );
    // Above the held version, below a CAS promise: refused, naming the promise (anti-entropy
    // settles an old one).
    let promised = Record {
        promise: v(20, 2),
        ..held.clone()
    };
    assert_eq!(
        decide(Some(&promised), &copy(v(15, 0)), NOW),
        Decision {
            store: false,
            reply: ReplicaReply::Rejected {
                held: v(20, 2),
                accepted: v(10, 1),
                accepted_cas: false,
            }
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
            meta: Meta::BLIND,
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
                meta: Meta::BLIND,
            },
            1 => ReplicaRequest::Repair {
                key: b"k".to_vec(),
                version,
                value,
                meta: Meta::BLIND,
            },
            2 => ReplicaRequest::Copy {
                key: b"k".to_vec(),
                version,
                value,
                meta: Meta::BLIND,
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
                ..Default::default()
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
                    value: None,
                    meta: Meta::BLIND,
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
            assert_eq!(
                old,
                ReplicaReply::Rejected {
                    held: v(10, 1),
                    accepted: v(10, 1),
                    accepted_cas: false
                }
            );
            let reply = apply(&shard, &read, &hlc).await.expect("read");
            assert_eq!(
                reply,
                ReplicaReply::Read {
                    version: v(10, 1),
                    value: Some(b"a".to_vec()),
                    meta: Meta::BLIND,
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
                meta: Meta::BLIND,
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
                    value: Some(b"c".to_vec()),
                    meta: Meta::BLIND,
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
                    accepted: v(10, 1),
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
            meta: Meta::BLIND,
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
