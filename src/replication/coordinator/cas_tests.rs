//! Unit tests of the CAS state machine (DESIGN §10), one rule at a time: the three outcomes
//! of the compare, retries after preemption (bounded), and which failures are definite.

use super::machine_tests::{sent, set, v};
use super::*;
use crate::replication::protocol::ReplicaReply as R;
use crate::storage::Meta;

const CAS: Meta = Meta {
    cas: true,
    expires: None,
};

fn promised(hlc: u64, value: Option<&[u8]>) -> R {
    R::Promised {
        version: if hlc == 0 { Version::ZERO } else { v(hlc) },
        value: value.map(<[u8]>::to_vec),
        meta: Meta::BLIND,
    }
}

fn reply(op: &mut CasOp, from: usize, round: u32, r: R) -> Action<CasDone> {
    op.feed(Input::Reply {
        from,
        round,
        reply: r,
    })
}

/// A CAS on 3 replicas, all reachable, with ballot `v(100)`; the PREPARE's round.
fn start(expect: Expect, value: Option<&[u8]>) -> (CasOp, u32) {
    let change = Change {
        value: value.map(<[u8]>::to_vec),
        ttl_ms: None,
    };
    let (op, action) = CasOp::start(
        3,
        b"k".to_vec(),
        (expect, change),
        v(100),
        ReplicaSet::all(3),
    );
    let (round, to, request) = sent(action);
    assert_eq!(to, ReplicaSet::all(3));
    assert_eq!(
        request,
        ReplicaRequest::Prepare {
            key: b"k".to_vec(),
            ballot: v(100)
        }
    );
    (op, round)
}

#[test]
fn create_if_absent_prepares_then_accepts_at_the_ballot() {
    let (mut op, round) = start(Expect::Absent, Some(b"mine"));
    assert_eq!(reply(&mut op, 0, round, promised(0, None)), Action::Wait);
    let (accept, to, request) = sent(reply(&mut op, 2, round, promised(0, None)));
    assert_eq!(to, ReplicaSet::all(3), "the accept goes to every replica");
    assert_eq!(
        request,
        ReplicaRequest::Put {
            key: b"k".to_vec(),
            version: v(100),
            value: Some(b"mine".to_vec()),
            meta: CAS
        }
    );
    assert_eq!(reply(&mut op, 1, accept, R::Accepted), Action::Wait);
    assert_eq!(
        reply(&mut op, 2, accept, R::Accepted),
        Action::Done(CasDone::Ok { version: v(100) })
    );
    assert_eq!(
        op.missing(),
        set(&[0]),
        "the replica that did not answer is hinted"
    );
}

#[test]
fn a_failed_compare_that_the_promises_agree_on_takes_one_round_trip() {
    let (mut op, round) = start(Expect::Absent, Some(b"mine"));
    reply(&mut op, 0, round, promised(7, Some(b"theirs")));
    assert_eq!(
        reply(&mut op, 1, round, promised(7, Some(b"theirs"))),
        Action::Done(CasDone::CompareFailed {
            current: Current {
                version: v(7),
                value: Some(b"theirs".to_vec())
            }
        })
    );
}

#[test]
fn a_settling_read_writes_the_state_back_even_when_the_promises_agree() {
    // A minority replica holds an unacknowledged version below the promise that Q agree
    // on: only a write-back above the promise lets anti-entropy reconcile it.
    let (mut op, round) = start(Expect::Settle, None);
    reply(&mut op, 0, round, promised(0, None));
    let (back, to, request) = sent(reply(&mut op, 1, round, promised(0, None)));
    assert_eq!(to, ReplicaSet::all(3));
    assert_eq!(
        request,
        ReplicaRequest::Put {
            key: b"k".to_vec(),
            version: v(100),
            value: None,
            meta: CAS
        },
        "the absent state, as a tombstone at the ballot"
    );
    reply(&mut op, 0, back, R::Accepted);
    assert_eq!(
        reply(&mut op, 1, back, R::Accepted),
        Action::Done(CasDone::CompareFailed {
            current: Current {
                version: v(100),
                value: None
            }
        })
    );
}

#[cfg(not(feature = "planted-cas-no-writeback"))]
#[test]
fn a_failed_compare_on_disagreeing_promises_writes_the_state_back_first() {
    let (mut op, round) = start(Expect::Value(b"old".to_vec()), Some(b"mine"));
    reply(&mut op, 0, round, promised(7, Some(b"theirs")));
    let (back, _, request) = sent(reply(&mut op, 1, round, promised(3, Some(b"older"))));
    assert_eq!(
        request,
        ReplicaRequest::Put {
            key: b"k".to_vec(),
            version: v(100),
            value: Some(b"theirs".to_vec()),
            meta: CAS
        },
        "the highest accepted value, at the ballot"
    );
    reply(&mut op, 0, back, R::Accepted);
    assert_eq!(
        reply(&mut op, 1, back, R::Accepted),
        Action::Done(CasDone::CompareFailed {
            current: Current {
                version: v(100),
                value: Some(b"theirs".to_vec())
            }
        })
    );
}

#[cfg(not(feature = "planted-cas-no-writeback"))]
#[test]
fn a_write_back_that_fails_is_a_definite_failure() {
    let (mut op, round) = start(Expect::Absent, Some(b"mine"));
    reply(&mut op, 0, round, promised(7, Some(b"theirs")));
    let (back, _, _) = sent(reply(&mut op, 1, round, promised(0, None)));
    let newer = R::Rejected {
        held: v(200),
        accepted: v(7),
        accepted_cas: false,
    };
    assert_eq!(reply(&mut op, 0, back, newer.clone()), Action::Wait);
    assert_eq!(
        reply(&mut op, 1, back, newer),
        Action::Done(CasDone::NotMost { contended: true }),
        "a majority can no longer hold the write-back"
    );
}

#[test]
fn preempted_prepares_retry_above_the_promise_and_give_up_definitely() {
    let (mut op, mut round) = start(Expect::Present, None);
    for attempt in 1..=limits::CAS_ATTEMPTS_MAX {
        assert_eq!(op.attempts(), attempt);
        // Another proposer's ballot, above this one's.
        let theirs = v(op.ballot().hlc + 50);
        reply(&mut op, 0, round, R::Preempted { held: theirs });
        let action = reply(&mut op, 1, round, R::Preempted { held: theirs });
        if attempt == limits::CAS_ATTEMPTS_MAX {
            assert_eq!(action, Action::Done(CasDone::NotMost { contended: true }));
            return;
        }
        assert_eq!(action, Action::NeedVersion { above: theirs });
        assert_eq!(
            op.retries(),
            attempt,
            "the driver backs off before the ballot"
        );
        let ballot = v(theirs.hlc + 1);
        let (next, _, request) = sent(op.feed(Input::Version(ballot)));
        assert_eq!(
            request,
            ReplicaRequest::Prepare {
                key: b"k".to_vec(),
                ballot
            }
        );
        round = next;
    }
}

#[test]
fn an_accept_rejected_everywhere_stored_nothing_and_retries() {
    let (mut op, round) = start(Expect::Absent, Some(b"x"));
    reply(&mut op, 0, round, promised(0, None));
    let (accept, _, _) = sent(reply(&mut op, 1, round, promised(0, None)));
    let by_promise = R::Rejected {
        held: v(120),
        accepted: Version::ZERO,
        accepted_cas: false,
    };
    for from in 0..2 {
        assert_eq!(
            reply(&mut op, from, accept, by_promise.clone()),
            Action::Wait
        );
    }
    assert_eq!(
        op.feed(Input::NotSent {
            to: 2,
            round: accept
        }),
        Action::NeedVersion { above: v(120) }
    );
}

#[test]
fn a_partly_accepted_change_at_the_deadline_is_indeterminate_at_its_ballot() {
    let (mut op, round) = start(Expect::Absent, Some(b"x"));
    reply(&mut op, 0, round, promised(0, None));
    let (accept, _, _) = sent(reply(&mut op, 1, round, promised(0, None)));
    reply(&mut op, 0, accept, R::Accepted);
    assert_eq!(
        op.feed(Input::Deadline),
        Action::Done(CasDone::Indeterminate { version: v(100) })
    );
}

#[test]
fn deadlines_before_the_accept_and_an_unreachable_majority_are_definite() {
    let (mut op, round) = start(Expect::Absent, Some(b"x"));
    reply(&mut op, 0, round, promised(0, None));
    assert_eq!(
        op.feed(Input::Deadline),
        Action::Done(CasDone::NotMost { contended: false })
    );
    let change = Change {
        value: None,
        ttl_ms: None,
    };
    let (_, action) = CasOp::start(3, b"k".to_vec(), (Expect::Present, change), v(9), set(&[1]));
    assert_eq!(action, Action::Done(CasDone::NotMost { contended: false }));
}

#[test]
fn an_expired_value_is_absent_at_the_ballot_and_versions_compare_exactly() {
    let (mut op, round) = start(Expect::Absent, Some(b"new"));
    let expired = R::Promised {
        version: v(7),
        value: Some(b"old".to_vec()),
        meta: Meta {
            cas: false,
            expires: Some(v(99).hlc),
        },
    };
    reply(&mut op, 0, round, expired.clone());
    let (_, _, request) = sent(reply(&mut op, 1, round, expired));
    assert!(matches!(request, ReplicaRequest::Put { .. }), "{request:?}");

    let at = |version: u64| Current {
        version: v(version),
        value: Some(b"a".to_vec()),
    };
    assert!(compare_holds(&Expect::Version(v(7)), &at(7)));
    assert!(!compare_holds(&Expect::Version(v(7)), &at(8)));
    let gone = Current {
        version: v(7),
        value: None,
    };
    assert!(
        !compare_holds(&Expect::Version(v(7)), &gone),
        "a tombstone is not live"
    );
    assert!(compare_holds(&Expect::Absent, &gone));
    assert!(compare_holds(&Expect::Present, &at(1)));
    assert!(compare_holds(&Expect::Value(b"a".to_vec()), &at(1)));
}

#[test]
fn answers_that_break_the_rules_are_not_votes() {
    let (mut op, round) = start(Expect::Absent, Some(b"x"));
    // A promise "accepted" at or above the ballot, a preemption below it, an old round.
    assert_eq!(reply(&mut op, 0, round, promised(100, None)), Action::Wait);
    assert_eq!(
        reply(&mut op, 1, round, R::Preempted { held: v(50) }),
        Action::Wait
    );
    assert_eq!(
        reply(&mut op, 2, round + 7, promised(0, None)),
        Action::Wait
    );
    assert_eq!(reply(&mut op, 2, round, R::Accepted), Action::Wait);
    assert!(!op.is_done());
}
