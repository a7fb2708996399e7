//! mostdb: a leaderless, replicated key-value database with an HTTP/JSON API.
//!
//! Every node serves every request; an operation succeeds when a majority ("most") of the
//! nodes agree. The module map, with dependencies pointing downward only:
//!
//! | module        | responsibility                                                        | must not import            |
//! |---------------|-----------------------------------------------------------------------|----------------------------|
//! | `http`        | HTTP/1.1 parsing, connection loop and admission, response encoding    | `api`, `replication`, `storage` |
//! | `api`         | routes, handlers, the JSON of the original API, the one `ApiError`    | `storage` (goes through `replication`) |
//! | `replication` | the coordinator (quorum logic), the hybrid logical clock, replica ops | `http`, `api`              |
//! | `storage`     | records and versions, shards over fjall, durability, free disk space   | everything above           |
//! | `cluster`     | members, which one is this node, quorum size, peer health (passive)    | `http`, `api`, `replication`, `storage` |
//! | `runtime`     | one monoio runtime per core, cross-core hops, shutdown, memory trim    | `api`, `http`              |
//! | `config`      | settings from the environment and flags (a leaf)                       | everything                 |
//! | `limits`      | every bound, as a named constant with its unit (a leaf)                | everything                 |
//! | `tls`         | rustls configs from the PEM settings; `Stream`: plain TCP or TLS       | `http`, `api`, `replication`, `storage`, `cluster` |
//!
//! `server` is the composition root: it starts the cores and wires every layer together; the
//! binary (`src/main.rs`) is the boot script around it.

pub mod api;
pub mod cluster;
pub mod config;
pub mod http;
pub mod limits;
pub mod replication;
pub mod runtime;
pub mod server;
pub mod storage;
pub mod tls;
