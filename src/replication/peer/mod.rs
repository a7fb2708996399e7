//! Peer links (DESIGN §5): persistent, pipelined connections between nodes on the client
//! port. A dialler ([`PeerLink`], one per core and peer) sends an HTTP/1.1 `Upgrade` on
//! [`PEER_PATH`]; the HTTP layer answers it through the API handler (who may dial at all:
//! [`admission`]) and hands the stream to [`serve_peer`], which serves nothing until the
//! dialler proved the cluster secret over the responder's challenge ([`handshake`]). Then both sides speak
//! length-prefixed binary [`frame`]s: requests and answers matched by id, many in flight,
//! written in one batch per event-loop turn, with heartbeats for liveness, round-trip time
//! and the peers' clocks. Must not import `http` or `api`.

pub mod admission;
mod calls;
mod dial;
pub mod frame;
pub mod handshake;
mod link;
pub mod monitor;
mod server;
mod wire;

pub use admission::{PeerAdmission, PeerAuth};
pub use calls::CallError;
pub use dial::DialError;
pub use handshake::{
    AwaitedProof, Identity, PeerHello, Refusal, RefusalCode, PEER_PATH, PEER_PROTOCOL,
};
pub use link::{
    wall_offset_ms, Call, LinkConfig, LinkState, LinkStatus, PeerClock, PeerLink, Watched,
};
pub use server::{serve_peer, PeerService, ServeEnd};

#[cfg(test)]
mod tests;
