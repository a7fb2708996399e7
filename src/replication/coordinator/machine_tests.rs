//! Unit tests of the write and read state machines with a fake transport: every rule and
//! edge case of DESIGN §3, one at a time.

use super::*;
use crate::replication::protocol::{ReplicaReply as R, ReplicaRequest};
use crate::storage::Meta;
use std::fmt::Debug;

pub(super) fn v(hlc: u64) -> Version {
    Version { hlc, origin: 1 }
}

pub(super) fn set(replicas: &[usize]) -> ReplicaSet {
    ReplicaSet::of(replicas.iter().copied())
}

/// The send an action must be.
pub(super) fn sent<T: Debug>(action: Action<T>) -> (u32, ReplicaSet, ReplicaRequest) {
    match action {
        Action::Send { round, to, request } => (round, to, request),
        other => panic!("expected a send, got {other:?}"),
    }
}

/// A rejection by a newer blind version (the only kind before CAS).
pub(super) fn rejected(hlc: u64) -> R {
    R::Rejected {
        held: v(hlc),
        accepted: v(hlc),
        accepted_cas: false,
    }
}

pub(super) fn read_answer(hlc: u64, value: Option<&[u8]>) -> R {
    R::Read {
        version: if hlc == 0 { Version::ZERO } else { v(hlc) },
        value: value.map(<[u8]>::to_vec),
        meta: Meta::BLIND,
    }
}

fn fast3(version: u64) -> (WriteOp, u32) {
    let (op, action) = WriteOp::fast(
        3,
        b"k".to_vec(),
        Payload::plain(Some(b"x".to_vec())),
        v(version),
        ReplicaSet::all(3),
    );
    let (round, to, request) = sent(action);
    assert_eq!(
        to,
        ReplicaSet::all(3),
        "the PUT goes to every replica, the local one too"
    );
    assert_eq!(
        request,
        ReplicaRequest::Put {
            key: b"k".to_vec(),
            version: v(version),
            value: Some(b"x".to_vec()),
            meta: Meta::BLIND,
        }
    );
    (op, round)
}

// --- fast-path writes ---

#[test]
fn fast_write_is_ok_with_a_majority_of_accepts() {
    let (mut op, r) = fast3(10);
    assert_eq!(op.on_reply(0, r, R::Accepted), Action::Wait);
    assert_eq!(
        op.on_reply(0, r, R::Accepted),
        Action::Wait,
        "a duplicate is not a second vote"
    );
    assert_eq!(
        op.on_reply(2, r, R::Accepted),
        Action::Done(WriteDone::Ok { version: v(10) })
    );
    assert!(op.is_done());
    assert_eq!(
        op.on_reply(1, r, R::Accepted),
        Action::Wait,
        "late answers change nothing"
    );
    assert_eq!(op.on_deadline(), Action::Wait);
    assert_eq!(op.missing(), set(&[1]));
}

#[test]
fn fast_write_with_too_few_reachable_fails_at_once_sending_nothing() {
    let (op, action) = WriteOp::fast(5, b"k".to_vec(), Payload::plain(None), v(3), set(&[0, 4]));
    assert_eq!(action, Action::Done(WriteDone::NotMost));
    assert!(op.is_done());
    assert_eq!(op.version(), Version::ZERO, "no PUT round was started");
}

#[test]
fn unreachable_replicas_are_not_asked_and_do_not_block_the_outcome() {
    let (mut op, action) = WriteOp::fast(
        5,
        b"k".to_vec(),
        Payload::plain(None),
        v(3),
        set(&[0, 1, 2, 7]),
    );
    let (r, to, _) = sent(action);
    assert_eq!(
        to,
        set(&[0, 1, 2]),
        "replica 7 does not exist in a cluster of 5"
    );
    assert_eq!(
        op.on_reply(3, r, R::Accepted),
        Action::Wait,
        "3 was never asked"
    );
    op.on_reply(0, r, rejected(9));
    op.on_reply(1, r, rejected(4));
    assert_eq!(
        op.on_reply(2, r, rejected(5)),
        Action::NeedVersion { above: v(9) }
    );
}

#[test]
fn every_rejection_retries_above_the_largest_and_ignores_the_old_round() {
    let (mut op, r1) = fast3(10);
    op.on_reply(0, r1, rejected(20));
    op.on_reply(1, r1, rejected(30));
    assert_eq!(
        op.on_reply(2, r1, rejected(25)),
        Action::NeedVersion { above: v(30) }
    );
    assert_eq!(op.observed(), v(30));
    assert!(op.saw_rejection());
    let (r2, to, request) = sent(op.on_version(v(31)));
    assert_ne!(r2, r1);
    assert_eq!(to, ReplicaSet::all(3));
    assert_eq!(request.version(), Some(v(31)));
    // Late answers of round 1 (a duplicated delivery) must not count for round 2.
    assert_eq!(op.on_reply(0, r1, rejected(20)), Action::Wait);
    assert_eq!(op.on_reply(1, r1, R::Accepted), Action::Wait);
    op.on_reply(1, r2, R::Accepted);
    assert_eq!(
        op.on_reply(2, r2, R::Accepted),
        Action::Done(WriteDone::Ok { version: v(31) })
    );
}

#[cfg(not(feature = "planted-reversion"))]
#[test]
fn a_partly_accepted_write_is_indeterminate_never_re_versioned() {
    let (mut op, r) = fast3(10);
    op.on_reply(0, r, R::Accepted);
    op.on_reply(1, r, rejected(11));
    assert_eq!(
        op.on_reply(2, r, rejected(12)),
        Action::Done(WriteDone::Indeterminate { version: v(10) }),
        "one replica holds v: it can never get a new version, nor fail definitely"
    );
    assert_eq!(op.on_version(v(13)), Action::Wait);
    assert_eq!(op.missing(), set(&[1, 2]));
}

#[test]
fn one_accept_with_pending_answers_waits_for_the_deadline() {
    let (mut op, r) = fast3(10);
    op.on_reply(0, r, R::Accepted);
    assert_eq!(
        op.on_reply(1, r, rejected(11)),
        Action::Wait,
        "2 may still accept"
    );
    assert_eq!(
        op.on_deadline(),
        Action::Done(WriteDone::Indeterminate { version: v(10) })
    );
    assert_eq!(op.on_reply(2, r, R::Accepted), Action::Wait);
}

#[test]
fn rejections_with_an_answer_missing_are_indeterminate_at_the_deadline() {
    let (mut op, r) = fast3(10);
    op.on_reply(0, r, rejected(11));
    op.on_reply(1, r, rejected(11));
    assert_eq!(
        op.on_deadline(),
        Action::Done(WriteDone::Indeterminate { version: v(10) })
    );
}

#[test]
fn a_put_never_sent_counts_as_not_received() {
    let (mut op, r) = fast3(10);
    op.on_not_sent(2, r);
    op.on_reply(0, r, rejected(11));
    assert_eq!(
        op.on_reply(1, r, rejected(12)),
        Action::NeedVersion { above: v(12) }
    );
    let (r2, _, _) = sent(op.on_version(v(13)));
    op.on_not_sent(0, r2);
    op.on_not_sent(1, r2);
    assert_eq!(op.on_not_sent(2, r2), Action::Done(WriteDone::NotMost));
}

#[test]
fn all_not_sent_is_a_definite_failure() {
    let (mut op, r) = fast3(10);
    op.on_not_sent(0, r);
    op.on_not_sent(0, r);
    op.on_not_sent(1, r);
    assert_eq!(op.on_not_sent(2, r), Action::Done(WriteDone::NotMost));
}

#[test]
fn not_sent_after_an_answer_is_ignored() {
    let (mut op, r) = fast3(10);
    op.on_reply(0, r, R::Accepted);
    assert_eq!(op.on_not_sent(0, r), Action::Wait);
    assert_eq!(
        op.on_reply(1, r, R::Accepted),
        Action::Done(WriteDone::Ok { version: v(10) })
    );
}

#[test]
fn retries_are_bounded_then_fail_definitely() {
    let (mut op, mut r) = fast3(10);
    let mut held = 100;
    for attempt in 1..=crate::limits::WRITE_ATTEMPTS_MAX {
        for replica in 0..3 {
            let action = op.on_reply(replica, r, rejected(held));
            if replica < 2 {
                assert_eq!(action, Action::Wait);
            } else if attempt < crate::limits::WRITE_ATTEMPTS_MAX {
                assert_eq!(action, Action::NeedVersion { above: v(held) });
            } else {
                assert_eq!(action, Action::Done(WriteDone::NotMost));
            }
        }
        if !op.is_done() {
            r = sent(op.on_version(v(held + 1))).0;
            held += 100;
        }
    }
    assert!(op.is_done());
}

#[test]
fn the_deadline_while_waiting_for_a_version_is_a_definite_failure() {
    let (mut op, r) = fast3(10);
    for replica in 0..3 {
        op.on_reply(replica, r, rejected(50));
    }
    assert_eq!(op.on_deadline(), Action::Done(WriteDone::NotMost));
    assert_eq!(
        op.on_version(v(51)),
        Action::Wait,
        "nothing is sent after the outcome"
    );
}

#[test]
fn unknown_replicas_wrong_rounds_and_foreign_answers_are_ignored() {
    let (mut op, r) = fast3(10);
    assert_eq!(op.on_reply(7, r, R::Accepted), Action::Wait);
    assert_eq!(op.on_reply(0, r + 1, R::Accepted), Action::Wait);
    assert_eq!(
        op.on_reply(0, r, R::CopyAck),
        Action::Wait,
        "I7: a copy ack is no vote"
    );
    assert_eq!(op.on_reply(0, r, R::RepairOk), Action::Wait);
    assert_eq!(op.on_reply(0, r, read_answer(10, Some(b"x"))), Action::Wait);
    // A "rejection" that is not above our version breaks the replica rules: no vote.
    assert_eq!(op.on_reply(0, r, rejected(10)), Action::Wait);
    assert_eq!(op.on_reply(0, r, rejected(3)), Action::Wait);
    op.on_reply(0, r, R::Accepted);
    assert_eq!(
        op.on_reply(1, r, R::Accepted),
        Action::Done(WriteDone::Ok { version: v(10) })
    );
}

#[test]
fn a_single_node_cluster_is_its_own_majority() {
    let (mut op, action) = WriteOp::fast(
        1,
        b"k".to_vec(),
        Payload::plain(None),
        v(5),
        ReplicaSet::all(1),
    );
    let (r, to, request) = sent(action);
    assert_eq!(to, set(&[0]));
    assert_eq!(
        request,
        ReplicaRequest::Put {
            key: b"k".to_vec(),
            version: v(5),
            value: None,
            meta: Meta::BLIND,
        }
    );
    assert_eq!(
        op.on_reply(0, r, R::Accepted),
        Action::Done(WriteDone::Ok { version: v(5) })
    );
}

// --- safe-mode writes ---

fn safe3() -> (WriteOp, u32) {
    let (op, action) = WriteOp::safe(
        3,
        b"k".to_vec(),
        Payload::plain(Some(b"y".to_vec())),
        ReplicaSet::all(3),
    );
    let (round, to, request) = sent(action);
    assert_eq!(to, ReplicaSet::all(3));
    assert_eq!(request, ReplicaRequest::Read { key: b"k".to_vec() });
    assert_eq!(op.mode(), WriteMode::Safe);
    (op, round)
}

#[test]
fn safe_write_takes_a_version_above_a_majority_then_counts_rejections_as_holds() {
    let (mut op, r1) = safe3();
    assert_eq!(
        op.on_reply(0, r1, read_answer(40, Some(b"a"))),
        Action::Wait
    );
    assert_eq!(
        op.on_reply(2, r1, read_answer(0, None)),
        Action::NeedVersion { above: v(40) }
    );
    assert_eq!(
        op.on_reply(1, r1, read_answer(90, None)),
        Action::Wait,
        "late: ignored"
    );
    let (r2, to, request) = sent(op.on_version(v(41)));
    assert_eq!(to, ReplicaSet::all(3));
    assert_eq!(
        request,
        ReplicaRequest::Put {
            key: b"k".to_vec(),
            version: v(41),
            value: Some(b"y".to_vec()),
            meta: Meta::BLIND,
        }
    );
    assert_eq!(op.on_reply(1, r2, rejected(90)), Action::Wait);
    assert_eq!(
        op.on_reply(0, r2, R::Accepted),
        Action::Done(WriteDone::Ok { version: v(41) })
    );
    assert_eq!(op.observed(), v(90));
}

#[test]
fn safe_write_with_too_few_version_answers_fails_definitely() {
    let (mut op, r) = safe3();
    op.on_reply(0, r, read_answer(4, None));
    op.on_not_sent(1, r);
    assert_eq!(op.on_not_sent(2, r), Action::Done(WriteDone::NotMost));
    let (mut op, r) = safe3();
    op.on_reply(0, r, read_answer(4, None));
    assert_eq!(
        op.on_deadline(),
        Action::Done(WriteDone::NotMost),
        "no PUT was sent"
    );
    let (op, action) = WriteOp::safe(3, b"k".to_vec(), Payload::plain(None), set(&[1]));
    assert_eq!(action, Action::Done(WriteDone::NotMost));
    assert!(op.is_done());
}

#[test]
fn safe_write_missing_put_answers_is_indeterminate() {
    let (mut op, r1) = safe3();
    op.on_reply(0, r1, read_answer(1, None));
    op.on_reply(1, r1, read_answer(2, None));
    let (r2, _, _) = sent(op.on_version(v(3)));
    op.on_reply(0, r2, rejected(8));
    assert_eq!(
        op.on_deadline(),
        Action::Done(WriteDone::Indeterminate { version: v(3) })
    );
    // All PUTs never sent: nothing can hold it.
    let (mut op, r1) = safe3();
    op.on_reply(0, r1, read_answer(1, None));
    op.on_reply(1, r1, read_answer(2, None));
    let (r2, _, _) = sent(op.on_version(v(3)));
    op.on_not_sent(0, r2);
    op.on_not_sent(1, r2);
    assert_eq!(op.on_not_sent(2, r2), Action::Done(WriteDone::NotMost));
    // One hold and the rest never sent: it is out there, short of a majority.
    let (mut op, r1) = safe3();
    op.on_reply(0, r1, read_answer(1, None));
    op.on_reply(1, r1, read_answer(2, None));
    let (r2, _, _) = sent(op.on_version(v(3)));
    op.on_not_sent(0, r2);
    op.on_reply(1, r2, R::Accepted);
    assert_eq!(
        op.on_not_sent(2, r2),
        Action::Done(WriteDone::Indeterminate { version: v(3) })
    );
}

// --- reads ---

fn read3() -> (ReadOp, u32) {
    let (op, action) = ReadOp::start(3, b"k".to_vec(), ReplicaSet::all(3));
    let (round, to, request) = sent(action);
    assert_eq!(to, ReplicaSet::all(3));
    assert_eq!(request, ReplicaRequest::Read { key: b"k".to_vec() });
    (op, round)
}

fn repair(hlc: u64, value: Option<&[u8]>) -> ReplicaRequest {
    ReplicaRequest::Repair {
        key: b"k".to_vec(),
        version: v(hlc),
        value: value.map(<[u8]>::to_vec),
        meta: Meta::BLIND,
    }
}

#[test]
fn a_majority_of_equal_answers_is_read_in_one_round_trip() {
    let (mut op, r) = read3();
    assert_eq!(op.on_reply(1, r, read_answer(7, Some(b"a"))), Action::Wait);
    assert_eq!(
        op.on_reply(1, r, read_answer(7, Some(b"a"))),
        Action::Wait,
        "duplicate"
    );
    assert_eq!(
        op.on_reply(2, r, read_answer(7, Some(b"a"))),
        Action::Done(ReadDone::Found {
            version: v(7),
            value: b"a".to_vec(),
            expires: None,
        })
    );
    assert_eq!(op.on_reply(0, r, read_answer(9, Some(b"z"))), Action::Wait);
    assert_eq!(op.observed(), v(9));
}

#[test]
fn absent_and_tombstones_read_as_not_found() {
    let (mut op, r) = read3();
    op.on_reply(0, r, read_answer(0, None));
    assert_eq!(
        op.on_reply(1, r, read_answer(0, None)),
        Action::Done(ReadDone::NotFound {
            version: Version::ZERO
        })
    );
    let (mut op, r) = read3();
    op.on_reply(0, r, read_answer(5, None));
    assert_eq!(
        op.on_reply(1, r, read_answer(5, None)),
        Action::Done(ReadDone::NotFound { version: v(5) })
    );
}

#[test]
fn diverging_answers_repair_the_stale_replicas_before_returning() {
    let (mut op, r) = read3();
    op.on_reply(0, r, read_answer(3, Some(b"old")));
    let (rr, to, request) = sent(op.on_reply(2, r, read_answer(8, Some(b"new"))));
    assert_eq!((rr, to, request), (r, set(&[0]), repair(8, Some(b"new"))));
    assert_eq!(
        op.on_reply(1, r, R::RepairOk),
        Action::Wait,
        "1 was not asked to repair"
    );
    assert_eq!(
        op.on_reply(0, r, R::RepairOk),
        Action::Done(ReadDone::Found {
            version: v(8),
            value: b"new".to_vec(),
            expires: None,
        })
    );
}

#[test]
fn an_expired_value_is_materialized_in_a_round_of_its_own() {
    let expiring = R::Read {
        version: v(8),
        value: Some(b"m".to_vec()),
        meta: Meta {
            cas: false,
            expires: Some(9),
        },
    };
    let (mut op, first) = ReadOp::start_at(5, b"k".to_vec(), ReplicaSet::all(5), 100);
    let r = sent(first).0;
    op.on_reply(0, r, expiring.clone());
    op.on_reply(1, r, read_answer(3, Some(b"old")));
    // Q answered: 1 is repaired with `m` (still the value), 0 and 2 hold it.
    let (_, to, _) = sent(op.on_reply(2, r, expiring.clone()));
    assert_eq!(to, set(&[1]));
    // A third holder: Q hold `m`, whose expiry is behind the clock. The tombstone at the
    // expiry's version goes to every replica, in a new round.
    let (tomb, to, request) = sent(op.on_reply(3, r, expiring));
    assert_eq!(to, ReplicaSet::all(5));
    let e = v(8).expiry();
    assert_eq!(
        request,
        ReplicaRequest::Repair {
            key: b"k".to_vec(),
            version: e,
            value: None,
            meta: Meta::BLIND,
        }
    );
    assert_ne!(tomb, r);
    // 1's answer to the repair of `m` says nothing about the tombstone.
    assert_eq!(op.on_reply(1, r, R::RepairOk), Action::Wait);
    assert_eq!(op.on_reply(0, tomb, R::RepairOk), Action::Wait);
    assert_eq!(op.on_reply(2, tomb, R::RepairOk), Action::Wait);
    assert_eq!(
        op.on_reply(4, tomb, R::RepairOk),
        Action::Done(ReadDone::NotFound { version: e })
    );
}

#[test]
fn a_late_answer_equal_to_m_counts_and_a_lower_one_is_repaired() {
    let (mut op, r) = ReadOp::start(5, b"k".to_vec(), ReplicaSet::all(5));
    let r = sent(r).0;
    op.on_reply(0, r, read_answer(8, Some(b"m")));
    op.on_reply(1, r, read_answer(2, None));
    let (_, to, _) = sent(op.on_reply(2, r, read_answer(1, Some(b"x"))));
    assert_eq!(to, set(&[1, 2]));
    assert_eq!(
        op.on_reply(3, r, read_answer(9, Some(b"above"))),
        Action::Wait,
        "above m: ignored"
    );
    assert_eq!(
        op.on_reply(3, r, R::RepairOk),
        Action::Wait,
        "3 was not asked to repair"
    );
    let (_, to, request) = sent(op.on_reply(4, r, read_answer(5, None)));
    assert_eq!((to, request), (set(&[4]), repair(8, Some(b"m"))));
    op.on_reply(4, r, R::RepairOk);
    assert_eq!(
        op.on_reply(1, r, R::RepairOk),
        Action::Done(ReadDone::Found {
            version: v(8),
            value: b"m".to_vec(),
            expires: None,
        })
    );
}

#[test]
fn a_late_answer_equal_to_m_completes_the_majority() {
    let (mut op, r) = read3();
    op.on_reply(0, r, read_answer(3, None));
    sent(op.on_reply(1, r, read_answer(6, Some(b"six"))));
    assert_eq!(
        op.on_reply(2, r, read_answer(6, Some(b"six"))),
        Action::Done(ReadDone::Found {
            version: v(6),
            value: b"six".to_vec(),
            expires: None,
        })
    );
}

#[cfg(not(feature = "planted-lenient-repair"))]
#[test]
fn a_rejected_repair_starts_the_read_over_boundedly() {
    let (mut op, mut r) = read3();
    for attempt in 1..=crate::limits::READ_ATTEMPTS_MAX {
        op.on_reply(0, r, read_answer(3, None));
        sent(op.on_reply(1, r, read_answer(6, Some(b"six"))));
        let rejection = R::RepairRejected {
            held: v(7),
            accepted: v(7),
            value: Some(b"seven".to_vec()),
        };
        let action = op.on_reply(0, r, rejection);
        if attempt < crate::limits::READ_ATTEMPTS_MAX {
            let (r2, to, request) = sent(action);
            assert_eq!(
                (to, request),
                (
                    ReplicaSet::all(3),
                    ReplicaRequest::Read { key: b"k".to_vec() }
                )
            );
            assert_ne!(r2, r);
            assert_eq!(op.on_reply(1, r, R::RepairOk), Action::Wait, "old round");
            r = r2;
        } else {
            assert_eq!(action, Action::Done(ReadDone::NotMost));
        }
    }
    assert_eq!(op.attempts(), crate::limits::READ_ATTEMPTS_MAX);
    assert_eq!(op.observed(), v(7));
}

/// A repair refused by a CAS's promise alone (the replica's data is older than `m`) does not
/// start the read over while the other replicas can still make a majority hold `m`.
#[cfg(not(feature = "planted-lenient-repair"))]
#[test]
fn a_repair_refused_by_a_promise_waits_for_the_others() {
    let (mut op, r) = read3();
    op.on_reply(0, r, read_answer(0, None));
    sent(op.on_reply(1, r, read_answer(6, Some(b"six"))));
    let promise = R::RepairRejected {
        held: v(9),
        accepted: Version::ZERO,
        value: None,
    };
    assert_eq!(op.on_reply(0, r, promise), Action::Wait);
    assert_eq!(
        op.on_reply(2, r, read_answer(6, Some(b"six"))),
        Action::Done(ReadDone::Found {
            version: v(6),
            value: b"six".to_vec(),
            expires: None,
        })
    );
    assert_eq!(op.attempts(), 1);
    // With the third replica gone too, no majority can hold `m` in this attempt: start over.
    let (mut op, r) = read3();
    op.on_reply(0, r, read_answer(0, None));
    sent(op.on_reply(1, r, read_answer(6, Some(b"six"))));
    op.on_not_sent(2, r);
    let promise = R::RepairRejected {
        held: v(9),
        accepted: Version::ZERO,
        value: None,
    };
    let (again, _, _) = sent(op.on_reply(0, r, promise));
    assert_ne!(again, r);
}

#[test]
fn a_rejection_not_above_m_is_ignored() {
    let (mut op, r) = read3();
    op.on_reply(0, r, read_answer(3, None));
    sent(op.on_reply(1, r, read_answer(6, Some(b"six"))));
    let bogus = R::RepairRejected {
        held: v(6),
        accepted: v(6),
        value: None,
    };
    assert_eq!(op.on_reply(0, r, bogus), Action::Wait);
    assert_eq!(op.on_deadline(), Action::Done(ReadDone::NotMost));
}

#[test]
fn reads_fail_when_a_majority_becomes_impossible_or_at_the_deadline() {
    let (op, action) = ReadOp::start(3, b"k".to_vec(), set(&[2]));
    assert_eq!(action, Action::Done(ReadDone::NotMost));
    assert!(op.is_done());
    let (mut op, r) = read3();
    op.on_not_sent(0, r);
    assert_eq!(op.on_not_sent(1, r), Action::Done(ReadDone::NotMost));
    let (mut op, r) = read3();
    op.on_reply(0, r, read_answer(3, None));
    sent(op.on_reply(1, r, read_answer(6, Some(b"six"))));
    op.on_not_sent(0, r); // the repair never left
    assert_eq!(op.on_not_sent(2, r), Action::Done(ReadDone::NotMost));
    let (mut op, r) = read3();
    op.on_reply(0, r, read_answer(3, None));
    assert_eq!(op.on_deadline(), Action::Done(ReadDone::NotMost));
    assert_eq!(op.on_reply(1, r, read_answer(3, None)), Action::Wait);
}

#[test]
fn foreign_answers_are_never_votes() {
    let (mut op, r) = read3();
    for reply in [R::Accepted, R::CopyAck, R::RepairOk, rejected(4)] {
        assert_eq!(op.on_reply(0, r, reply), Action::Wait);
    }
    assert_eq!(op.on_reply(9, r, read_answer(1, None)), Action::Wait);
    op.on_reply(0, r, read_answer(1, Some(b"a")));
    assert_eq!(
        op.on_reply(1, r, read_answer(1, Some(b"a"))),
        Action::Done(ReadDone::Found {
            version: v(1),
            value: b"a".to_vec(),
            expires: None,
        })
    );
}
