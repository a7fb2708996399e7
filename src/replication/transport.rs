//! The transport as the coordinator sees it: one [`Link`] per peer and core, which either
//! answers a replica request or says what became of it ([`Undelivered`]). The peer links
//! implement it over TCP (`peer::PeerLink`); the driver and the hint replay use it; the tests
//! use [`fake`], a link whose filters drop, delay and refuse.
//!
//! Knows only the replica vocabulary (`protocol`). Must not import `driver`, `hints`, `peer`,
//! `http` or `api`.

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use super::protocol::{ReplicaReply, ReplicaRequest};

#[cfg(test)]
pub mod fake;

/// What became of a request sent to a peer without an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undelivered {
    /// Never written to a socket (the link was down or its queue full): not received.
    NotSent,
    /// Written, but no answer came (the link broke, or the deadline passed): it may have
    /// been received.
    Unknown,
}

pub type CallFuture = Pin<Box<dyn Future<Output = Result<ReplicaReply, Undelivered>>>>;

/// One core's way to one peer.
pub trait Link {
    /// Whether requests can be written to this peer now ("reachable" in DESIGN §3).
    fn is_up(&self) -> bool;
    /// Whether the peer speaks CAS (DESIGN §10): PREPARE, promises, CAS and expiry flags.
    fn speaks_cas(&self) -> bool {
        true
    }
    /// Sends `request`; the future ends with the answer, or with what became of the request
    /// by `deadline` at the latest.
    fn call(&self, request: ReplicaRequest, deadline: Instant) -> CallFuture;
}
