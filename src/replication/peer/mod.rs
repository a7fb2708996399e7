//! Peer links (DESIGN §5): persistent, pipelined connections between nodes on the client
//! port, opened with an HTTP/1.1 `Upgrade` and then speaking length-prefixed binary frames.
//! Must not import `http` or `api` (the HTTP handler hands upgraded streams in).

pub mod frame;
pub mod handshake;
