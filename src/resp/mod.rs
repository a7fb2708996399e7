//! The Redis protocol (RESP2, and RESP3 after `HELLO 3`) on its own port (DESIGN §13): the
//! framing ([`parse`]), the replies ([`reply`]), the connection loop with pipelining
//! ([`conn`]) and one core's listener ([`listener`]). What the commands do is the API's
//! (`api::redis`), reached through [`Commands`], as HTTP reaches it through `http::Handler`.
//!
//! Must not import `api`, `replication` or `storage`.

pub mod conn;
pub mod listener;
pub mod parse;
pub mod reply;

pub use conn::Commands;
pub use listener::{connected_clients, RespListener};
pub use reply::{Protocol, Reply};

/// What a connection does after a command.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Continue,
    /// Close once the replies so far are out (`QUIT`, a protocol error).
    Close,
}

/// One connection's state.
#[derive(Debug)]
pub struct Session {
    /// `CLIENT ID`: unique on this node while it runs.
    pub id: u64,
    pub protocol: Protocol,
    /// `AUTH` (or `HELLO … AUTH`) succeeded.
    pub authenticated: bool,
    /// `CLIENT SETNAME`.
    pub name: Option<Vec<u8>>,
}
