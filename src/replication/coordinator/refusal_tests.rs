//! The coordinator facing `RefusedFuture` (a version beyond a replica's clock bound, DESIGN
//! §14): "not stored" at that replica, for good. One test per consequence: the fast path's
//! rule 2, safe mode, a clock that cannot go above a far-future version, reads and repairs.

use super::machine_tests::{read_answer, rejected, sent, set, v};
use super::*;
use crate::replication::protocol::ReplicaReply as R;

fn fast3(version: u64) -> (WriteOp, u32) {
    let (op, action) = WriteOp::fast(
        3,
        b"k".to_vec(),
        Payload::plain(Some(b"x".to_vec())),
        v(version),
        ReplicaSet::all(3),
    );
    (op, sent(action).0)
}

// --- fast path ---

#[test]
fn refused_everywhere_is_a_definite_failure_without_a_retry() {
    // Rule 2: every replica that may have received the PUT did not store it; a fresh version
    // from the same clock would be as far ahead, so no retry.
    let (mut op, r) = fast3(10);
    assert_eq!(op.on_reply(0, r, R::RefusedFuture), Action::Wait);
    assert_eq!(op.on_reply(1, r, R::RefusedFuture), Action::Wait);
    assert_eq!(
        op.on_reply(2, r, R::RefusedFuture),
        Action::Done(WriteDone::NotMost)
    );
    assert!(!op.saw_rejection(), "a refusal is no contention");
    assert_eq!(op.observed(), Version::ZERO, "a refusal reveals no version");
}

#[test]
fn refusals_with_never_sent_puts_are_a_definite_failure() {
    let (mut op, r) = fast3(10);
    op.on_not_sent(0, r);
    op.on_reply(1, r, R::RefusedFuture);
    assert_eq!(op.on_not_sent(2, r), Action::Done(WriteDone::NotMost));
}

#[test]
fn refusals_and_rejections_retry_above_the_rejections_only() {
    // Nothing is stored anywhere: rejections say "holds newer", the refusal "stored nothing".
    let (mut op, r1) = fast3(10);
    op.on_reply(0, r1, rejected(20));
    op.on_reply(1, r1, R::RefusedFuture);
    assert_eq!(
        op.on_reply(2, r1, rejected(15)),
        Action::NeedVersion { above: v(20) }
    );
    let (r2, to, _) = sent(op.on_version(v(21)));
    assert_eq!(
        to,
        ReplicaSet::all(3),
        "the refusing replica is asked again"
    );
    op.on_reply(0, r2, R::Accepted);
    assert_eq!(
        op.on_reply(1, r2, R::Accepted),
        Action::Done(WriteDone::Ok { version: v(21) })
    );
}

#[test]
fn one_accept_and_refusals_is_indeterminate_at_once_and_hints_the_refusers() {
    // The accepting replica holds v: never a definite failure, never a new version (I4, I5).
    let (mut op, r) = fast3(10);
    op.on_reply(1, r, R::RefusedFuture);
    assert_eq!(
        op.on_reply(0, r, R::Accepted),
        Action::Wait,
        "2 may still accept"
    );
    assert_eq!(
        op.on_reply(2, r, R::RefusedFuture),
        Action::Done(WriteDone::Indeterminate { version: v(10) })
    );
    assert_eq!(
        op.missing(),
        set(&[1, 2]),
        "re-sent with the same version later"
    );
}

#[test]
fn a_majority_of_accepts_is_ok_despite_a_refusal() {
    let (mut op, r) = fast3(10);
    op.on_reply(2, r, R::RefusedFuture);
    op.on_reply(0, r, R::Accepted);
    assert_eq!(
        op.on_reply(1, r, R::Accepted),
        Action::Done(WriteDone::Ok { version: v(10) })
    );
    assert_eq!(op.missing(), set(&[2]));
}

#[test]
fn a_refusal_with_an_answer_missing_is_indeterminate_at_the_deadline() {
    // The missing replica may have stored v: not a definite failure.
    let (mut op, r) = fast3(10);
    op.on_reply(0, r, R::RefusedFuture);
    assert_eq!(op.on_reply(1, r, rejected(50)), Action::Wait);
    assert_eq!(
        op.on_deadline(),
        Action::Done(WriteDone::Indeterminate { version: v(10) })
    );
}

#[test]
fn a_clock_that_cannot_go_above_a_far_future_rejection_fails_definitely() {
    // A replica holds a version beyond this coordinator's bound (stored before the bound
    // existed, or from a node far ahead): the bounded clock ignores it and cannot issue above.
    let (mut op, r) = fast3(10);
    op.on_reply(0, r, rejected(u64::MAX));
    op.on_reply(1, r, rejected(u64::MAX));
    assert_eq!(
        op.on_reply(2, r, rejected(u64::MAX)),
        Action::NeedVersion { above: v(u64::MAX) }
    );
    assert_eq!(op.on_version(v(11)), Action::Done(WriteDone::NotMost));
}

// --- safe mode ---

fn safe3_at(version: u64) -> (WriteOp, u32) {
    let (mut op, action) = WriteOp::safe(
        3,
        b"k".to_vec(),
        Payload::plain(Some(b"y".to_vec())),
        ReplicaSet::all(3),
    );
    let r = sent(action).0;
    op.on_reply(0, r, read_answer(5, Some(b"a")));
    op.on_reply(1, r, read_answer(5, Some(b"a")));
    let (r2, _, _) = sent(op.on_version(v(version)));
    (op, r2)
}

#[test]
fn safe_mode_never_counts_a_refusal_as_holding() {
    // A rejection means "holds newer"; a refusal means "holds nothing of it".
    let (mut op, r) = safe3_at(10);
    op.on_reply(0, r, R::RefusedFuture);
    op.on_reply(1, r, R::Accepted);
    assert_eq!(
        op.on_reply(2, r, R::RefusedFuture),
        Action::Done(WriteDone::Indeterminate { version: v(10) })
    );
    let (mut op, r) = safe3_at(10);
    op.on_reply(0, r, R::RefusedFuture);
    op.on_reply(1, r, rejected(60));
    assert_eq!(
        op.on_reply(2, r, R::Accepted),
        Action::Done(WriteDone::Ok { version: v(10) })
    );
}

#[test]
fn safe_mode_refused_everywhere_is_a_definite_failure() {
    let (mut op, r) = safe3_at(10);
    op.on_reply(0, r, R::RefusedFuture);
    op.on_not_sent(1, r);
    assert_eq!(
        op.on_reply(2, r, R::RefusedFuture),
        Action::Done(WriteDone::NotMost)
    );
}

// --- reads and repairs ---

fn read3() -> (ReadOp, u32) {
    let (op, action) = ReadOp::start(3, b"k".to_vec(), ReplicaSet::all(3));
    (op, sent(action).0)
}

#[test]
fn a_refused_repair_is_no_holder_and_the_read_goes_on_with_the_others() {
    let (mut op, r) = read3();
    op.on_reply(0, r, read_answer(8, Some(b"new")));
    let (_, to, _) = sent(op.on_reply(1, r, read_answer(3, Some(b"old"))));
    assert_eq!(to, set(&[1]));
    assert_eq!(op.on_reply(1, r, R::RefusedFuture), Action::Wait);
    assert_eq!(
        op.attempts(),
        1,
        "not started over: it would find the same m"
    );
    assert_eq!(
        op.on_reply(2, r, read_answer(8, Some(b"new"))),
        Action::Done(ReadDone::Found {
            version: v(8),
            value: b"new".to_vec(),
            expires: None,
        })
    );
}

#[test]
fn refused_repairs_that_leave_no_majority_fail_the_read() {
    // Failing a read is always safe; returning m held by fewer than Q would not be (I6).
    let (mut op, r) = read3();
    op.on_reply(0, r, read_answer(8, Some(b"far")));
    sent(op.on_reply(1, r, read_answer(3, Some(b"old"))));
    op.on_reply(1, r, R::RefusedFuture);
    sent(op.on_reply(2, r, read_answer(3, Some(b"old"))));
    assert_eq!(
        op.on_reply(2, r, R::RefusedFuture),
        Action::Done(ReadDone::NotMost)
    );
}

#[test]
fn a_refusal_to_a_read_is_ignored() {
    // READ is never refused; a stray refusal is no answer.
    let (mut op, r) = read3();
    assert_eq!(op.on_reply(0, r, R::RefusedFuture), Action::Wait);
    op.on_reply(1, r, read_answer(4, None));
    assert_eq!(
        op.on_reply(2, r, read_answer(4, None)),
        Action::Done(ReadDone::NotFound { version: v(4) })
    );
}
