//! mostdb: a leaderless, replicated key-value database with an HTTP/JSON API.
//!
//! Every node serves every request; an operation succeeds when a majority ("most") of the
//! nodes agree. The module map, with dependencies pointing downward only (the last column is
//! checked by a unit test, `rules.rs`, as is each module's own "Must not import" line):
//!
//! | module        | responsibility                                                        | must not import            |
//! |---------------|-----------------------------------------------------------------------|----------------------------|
//! | `server`      | the composition root: starts the cores and wires every layer together  | (only the binaries import it) |
//! | `http`        | HTTP/1.1 parsing, the listener and admission, connections, responses  | `api`, `replication`, `storage`, `server` |
//! | `resp`        | the Redis protocol: framing, replies, connections, the RESP listener   | `api`, `replication`, `storage`, `server` |
//! | `api`         | routes, handlers, the JSON of the original API, the one `ApiError`, the Redis commands | `storage` (goes through `replication`), `server` |
//! | `replication` | the coordinator (quorum logic), the hybrid logical clock, replica ops | `http`, `api`, `server`    |
//! | `storage`     | records and versions, shards over fjall, the data directory, disk space | `http`, `api`, `replication`, `runtime`, `cluster`, `tls`, `server` |
//! | `cli`         | the command-line client (`mostdb kv …`, `mostdb cluster`) over `http::probe` | `api`, `replication`, `storage`, `server` |
//! | `audit`       | the audit log: JSON lines of writes and admin actions, off the event loop | `http`, `api`, `replication`, `storage`, `runtime`, `server` |
//! | `cluster`     | members, which one is this node, the quorum size (passive)             | `http`, `api`, `replication`, `storage`, `runtime`, `tls`, `server` |
//! | `runtime`     | one monoio runtime per core, cross-core hops, shutdown, memory trim    | `api`, `http`, `replication`, `storage`, `server` |
//! | `tls`         | rustls configs from the PEM settings; `Stream`: plain TCP or TLS       | `http`, `api`, `replication`, `storage`, `cluster`, `server` |
//! | `metrics`     | Prometheus metrics: per-core cells summed at the scrape, the text format | `api`, `cluster`, `config`, `http`, `replication`, `storage`, `tls`, `server` |
//! | `config`      | settings from the environment and flags (a leaf but for `limits`)     | `api`, `cluster`, `http`, `replication`, `runtime`, `server`, `storage`, `tls` |
//! | `limits`      | every bound, as a named constant with its unit (a leaf)                | `api`, `cluster`, `config`, `http`, `replication`, `runtime`, `server`, `storage`, `tls` |
//!
//! The binary (`src/main.rs`) is the boot script around `server`.
//!
//! # Three paths through the modules
//!
//! **A client's set.** `http::conn` reads the request (`http::parse`, `http::chunked`) and
//! hands it to the `api` handler, which routes it, checks the key, decodes the JSON
//! (`api::json`) and calls `replication::Replication::set`. That refuses while the node
//! recovers or its disk is full, then hops to the core that owns the key's shard
//! (`runtime::Hub`), where `replication::driver` runs a `coordinator::WriteOp`: a version from
//! the core's clock (`replication::clock`), a PUT to every replica (the local one through
//! `replication::replica::apply` on its `storage::Shard`, the peers through their
//! `transport::Link`s, i.e. `peer::PeerLink`), answers fed back until Q accepted. Peers that
//! missed it are handed to `replication::hints`. `api::error` turns the outcome into the
//! original's JSON envelope.
//!
//! **A peer's PUT.** A peer dials with an HTTP upgrade on the client port (`http` hands the
//! stream over through the API handler); `replication::peer::handshake` proves both sides know
//! the cluster secret, then `replication::peer::server` decodes frames (`peer::frame`) and
//! asks the node's endpoint, which refuses while the node recovers and otherwise hops to the
//! owner core and applies the replica rule (`replication::replica`, the store rule itself in
//! `storage`). The answer goes back once it is as durable as `MOSTDB_SYNC` promises.
//!
//! **An anti-entropy pass.** One task on core 0 (`replication::antientropy::run`) asks each
//! peer for its bucket digests over the same links (`protocol::SyncRequest`), compares them
//! with its own from a chunked scan of the store (`antientropy::scan` over `storage`), lists
//! the keys of differing buckets on both sides, and pulls each record the peer holds newer
//! with a COPY through the local replica rule: it never counts toward a quorum.

pub mod api;
pub mod audit;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod replication;
pub mod resp;
pub mod runtime;
pub mod server;
pub mod storage;
pub mod tls;

#[cfg(test)]
mod rules;
#[cfg(test)]
mod test_support;
