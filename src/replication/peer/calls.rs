//! The calls in flight on one link, by request id: a slab of slots reused without
//! allocating, each holding the caller's waker and then its outcome. A request id is the
//! slot's index in the low 32 bits and the slot's generation in the high 32, so an answer
//! that arrives after its caller gave up can never complete a later call. Core-local; no I/O.

use std::task::{Context, Poll, Waker};

use crate::limits::PEER_CALLS_IN_FLIGHT_MAX;
use crate::replication::protocol::ReplicaReply;

/// Why a call has no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// Never written to a socket (the link was down, or its queue full): not received.
    #[error("not sent: the link is down or its queue is full")]
    NotSent,
    /// Written (maybe only partly), then the connection died: it may have been received.
    #[error("lost: written, then the connection died")]
    Lost,
    /// No answer before the deadline: it may have been received, now or later.
    #[error("no answer before the deadline")]
    Timeout,
    /// The replica answered that it did not perform the request, and never will (its
    /// storage was busy, or it is stopping): nothing was applied.
    #[error("the replica could not perform the request; nothing was applied")]
    Unavailable,
}

pub(super) type Outcome = Result<ReplicaReply, CallError>;

enum State {
    Free,
    /// Encoded into outbox batch `batch`, no answer yet.
    Waiting {
        batch: u64,
        waker: Option<Waker>,
    },
    Done(Outcome),
}

struct Slot {
    generation: u32,
    state: State,
}

#[derive(Default)]
pub(super) struct Calls {
    slots: Vec<Slot>,
    free: Vec<u32>,
    in_flight: usize,
}

impl Calls {
    pub(super) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// A new call whose request goes into outbox batch `batch`; `None` when
    /// `PEER_CALLS_IN_FLIGHT_MAX` calls are already in flight.
    pub(super) fn open(&mut self, batch: u64) -> Option<u64> {
        if self.in_flight >= PEER_CALLS_IN_FLIGHT_MAX {
            return None;
        }
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    state: State::Free,
                });
                // Fits: bounded by PEER_CALLS_IN_FLIGHT_MAX (asserted ≤ u32::MAX in limits).
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        debug_assert!(matches!(slot.state, State::Free));
        slot.state = State::Waiting { batch, waker: None };
        self.in_flight += 1;
        Some(u64::from(slot.generation) << 32 | u64::from(index))
    }

    /// The slot of `id` if it is that call's (not a later call's, not freed).
    fn slot(&mut self, id: u64) -> Option<&mut Slot> {
        let index = (id & u64::from(u32::MAX)) as usize;
        let generation = (id >> 32) as u32;
        self.slots
            .get_mut(index)
            .filter(|s| s.generation == generation && !matches!(s.state, State::Free))
    }

    /// Records the answer of a waiting call; returns its waker to wake once the borrow of
    /// the calls is released. An answer for no waiting call (late, duplicated) is ignored.
    pub(super) fn complete(&mut self, id: u64, outcome: Outcome) -> Option<Waker> {
        let slot = self.slot(id)?;
        match std::mem::replace(&mut slot.state, State::Done(outcome)) {
            State::Waiting { waker, .. } => waker,
            other => {
                slot.state = other;
                None
            }
        }
    }

    /// The outcome once there is one (the slot is then freed), else registers the waker.
    pub(super) fn poll(&mut self, id: u64, cx: &mut Context<'_>) -> Poll<Outcome> {
        let Some(slot) = self.slot(id) else {
            // Freed already: only a call polled after completion gets here.
            return Poll::Ready(Err(CallError::Lost));
        };
        match &mut slot.state {
            State::Waiting { waker, .. } => {
                match waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => *waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
            State::Done(_) => match std::mem::replace(&mut slot.state, State::Free) {
                State::Done(outcome) => {
                    self.release(id);
                    Poll::Ready(outcome)
                }
                _ => unreachable!("matched Done just above"),
            },
            State::Free => unreachable!("slot() filters free slots"),
        }
    }

    /// The caller gave up (dropped its call): frees the slot; a late answer is ignored.
    pub(super) fn cancel(&mut self, id: u64) {
        if let Some(slot) = self.slot(id) {
            slot.state = State::Free;
            self.release(id);
        }
    }

    fn release(&mut self, id: u64) {
        let index = (id & u64::from(u32::MAX)) as u32;
        let slot = &mut self.slots[index as usize];
        slot.generation = slot.generation.wrapping_add(1);
        slot.state = State::Free;
        self.free.push(index);
        self.in_flight -= 1;
    }

    /// The connection is gone: every waiting call fails, `NotSent` if its request was still
    /// in the batch filling now (`unsent_batch`, never handed to a write), else `Lost`.
    /// Returns the wakers to wake.
    pub(super) fn fail_all(&mut self, unsent_batch: u64) -> Vec<Waker> {
        let mut wakers = Vec::new();
        for slot in &mut self.slots {
            if let State::Waiting { batch, waker } = &mut slot.state {
                let error = if *batch >= unsent_batch {
                    CallError::NotSent
                } else {
                    CallError::Lost
                };
                wakers.extend(waker.take());
                slot.state = State::Done(Err(error));
            }
        }
        wakers
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Context;

    fn poll(calls: &mut Calls, id: u64) -> Poll<Outcome> {
        let mut cx = Context::from_waker(Waker::noop());
        calls.poll(id, &mut cx)
    }

    #[test]
    fn answers_reach_their_call_and_slots_are_reused() {
        let mut calls = Calls::default();
        let a = calls.open(0).unwrap();
        let b = calls.open(0).unwrap();
        assert_ne!(a, b);
        assert_eq!(calls.in_flight(), 2);
        assert!(poll(&mut calls, a).is_pending());
        calls.complete(b, Ok(ReplicaReply::CopyAck));
        calls.complete(a, Ok(ReplicaReply::Accepted));
        assert_eq!(poll(&mut calls, a), Poll::Ready(Ok(ReplicaReply::Accepted)));
        assert_eq!(poll(&mut calls, b), Poll::Ready(Ok(ReplicaReply::CopyAck)));
        assert_eq!(calls.in_flight(), 0);
        let c = calls.open(0).unwrap();
        assert_eq!(c & 0xffff_ffff, b & 0xffff_ffff, "slot reused");
        assert_ne!(c, b, "with a new generation");
        // A late answer to `b` must not complete `c`.
        assert!(calls.complete(b, Ok(ReplicaReply::RepairOk)).is_none());
        assert!(poll(&mut calls, c).is_pending());
    }

    #[test]
    fn cancelled_calls_free_their_slot_and_ignore_late_answers() {
        let mut calls = Calls::default();
        let a = calls.open(0).unwrap();
        calls.cancel(a);
        assert_eq!(calls.in_flight(), 0);
        assert!(calls.complete(a, Ok(ReplicaReply::Accepted)).is_none());
        calls.cancel(a); // twice is harmless
        assert_eq!(calls.in_flight(), 0);
    }

    #[test]
    fn a_dead_connection_fails_written_calls_as_lost_and_queued_ones_as_not_sent() {
        let mut calls = Calls::default();
        let written = calls.open(4).unwrap();
        let queued = calls.open(5).unwrap();
        let answered = calls.open(4).unwrap();
        calls.complete(answered, Ok(ReplicaReply::Accepted));
        calls.fail_all(5);
        assert_eq!(poll(&mut calls, written), Poll::Ready(Err(CallError::Lost)));
        assert_eq!(
            poll(&mut calls, queued),
            Poll::Ready(Err(CallError::NotSent))
        );
        assert_eq!(
            poll(&mut calls, answered),
            Poll::Ready(Ok(ReplicaReply::Accepted))
        );
    }

    #[test]
    fn in_flight_is_bounded() {
        let mut calls = Calls::default();
        for _ in 0..PEER_CALLS_IN_FLIGHT_MAX {
            assert!(calls.open(0).is_some());
        }
        assert_eq!(calls.open(0), None);
    }
}
