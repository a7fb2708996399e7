//! A simulated link for unit tests (tikv's simulated transport with filters is the model):
//! behind it a replica in memory that follows the real rules ([`replica::decide`]), in front
//! of it a [`Filter`] that decides what becomes of each request: delivered, delayed, dropped
//! (taken and never answered), refused (never sent, though the link is up), or answered only
//! after the caller's deadline. Every request the link took is kept for the test to inspect.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::{CallFuture, Link, Undelivered};
use crate::replication::protocol::{ReplicaReply, ReplicaRequest};
use crate::replication::replica::{self, ClockBound};
use crate::storage::{Record, Version};

/// What the link does with the next requests.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Filter {
    /// Applies the request to the replica and answers at once.
    Deliver,
    /// Applies the request at once, answers after this long (a straggler).
    Delay(Duration),
    /// Takes the request and loses it: never applied, never answered (`Unknown` at the
    /// deadline, as a broken connection would be).
    Drop,
    /// Applies the request, then loses the answer (`Unknown` at the deadline): the replica
    /// stored what the coordinator never hears about.
    LoseAnswer,
    /// Does not take the request although the link is up (its queue is full): `NotSent`.
    Refuse,
}

/// One core's simulated way to one peer, and the peer's replica.
pub struct FakeLink {
    up: Cell<bool>,
    filter: Cell<Filter>,
    replica: RefCell<BTreeMap<Vec<u8>, Record>>,
    taken: RefCell<Vec<ReplicaRequest>>,
}

/// A clock bound no test version comes near: the fake replica never refuses a future version.
const NO_BOUND: ClockBound = ClockBound {
    physical_ms: u64::MAX / 2,
    max_skew_ms: 0,
    promise_floor: Version::ZERO,
};

impl FakeLink {
    pub fn new(up: bool, filter: Filter) -> Rc<FakeLink> {
        Rc::new(FakeLink {
            up: Cell::new(up),
            filter: Cell::new(filter),
            replica: RefCell::new(BTreeMap::new()),
            taken: RefCell::new(Vec::new()),
        })
    }

    pub fn set_up(&self, up: bool) {
        self.up.set(up);
    }

    pub fn set_filter(&self, filter: Filter) {
        self.filter.set(filter);
    }

    /// Makes the replica hold `(version, value)` for `key`, as if written earlier.
    pub fn hold(&self, key: &[u8], version: Version, value: Option<&[u8]>) {
        let record = Record {
            version,
            value: value.map(<[u8]>::to_vec),
            ..Default::default()
        };
        self.replica.borrow_mut().insert(key.to_vec(), record);
    }

    /// What the replica holds for `key`.
    pub fn held(&self, key: &[u8]) -> Option<Record> {
        self.replica.borrow().get(key).cloned()
    }

    /// Every request the link took (all but the refused ones), in order.
    pub fn taken(&self) -> Vec<ReplicaRequest> {
        self.taken.borrow().clone()
    }

    /// The COPY requests taken, as `(key, version, value)`.
    pub fn copies(&self) -> Vec<(Vec<u8>, Version, Option<Vec<u8>>)> {
        let taken = self.taken.borrow();
        let copies = taken.iter().filter_map(|r| match r {
            ReplicaRequest::Copy {
                key,
                version,
                value,
                ..
            } => Some((key.clone(), *version, value.clone())),
            _ => None,
        });
        copies.collect()
    }

    /// The replica rules on the in-memory record of the request's key.
    fn apply(&self, request: &ReplicaRequest) -> ReplicaReply {
        let mut replica = self.replica.borrow_mut();
        let held = replica.get(request.key());
        let decision = replica::decide(held, request, NO_BOUND);
        if decision.store {
            if let Some(record) = replica::stored_record(held, request) {
                replica.insert(request.key().to_vec(), record);
            }
        }
        decision.reply
    }
}

/// Sleeps until `deadline`, then reports the request's fate unknown.
fn unknown_at(deadline: Instant) -> CallFuture {
    Box::pin(async move {
        monoio::time::sleep_until(monoio::time::Instant::from_std(deadline)).await;
        Err(Undelivered::Unknown)
    })
}

impl Link for FakeLink {
    fn is_up(&self) -> bool {
        self.up.get()
    }

    fn call(&self, request: ReplicaRequest, deadline: Instant) -> CallFuture {
        let filter = self.filter.get();
        if !self.up.get() || filter == Filter::Refuse {
            return Box::pin(async { Err(Undelivered::NotSent) });
        }
        self.taken.borrow_mut().push(request.clone());
        if filter == Filter::Drop {
            return unknown_at(deadline);
        }
        let reply = self.apply(&request);
        match filter {
            Filter::Deliver => Box::pin(async move { Ok(reply) }),
            Filter::Delay(pause) => Box::pin(async move {
                monoio::time::sleep(pause).await;
                Ok(reply)
            }),
            Filter::LoseAnswer | Filter::Drop | Filter::Refuse => unknown_at(deadline),
        }
    }
}
