//! The single-node tests: each starts one real `mostdb` process (or runs the binary to its
//! exit) on a port it picks itself, so they run side by side. The API byte for byte
//! (`api`), HTTP edge cases (`http`), the process's life, startup errors and durability
//! across kill -9 (`lifecycle`), `/metrics` read with a Prometheus parser (`metrics`),
//! compare-and-set (`cas`), batches (`batch`), the command-line client (`cli`), watches (`watch`), the streamed export (`export`), the Redis port (`redis`), and what hostile clients and a full disk do to one node
//! (`hardening`). Tests that start a cluster are in `tests/cluster.rs`.
//!
//! A test crate root looks for its modules beside itself, hence the `#[path]`s.

mod support;

#[path = "node/admin.rs"]
mod admin;
#[path = "node/api.rs"]
mod api;
#[path = "node/audit.rs"]
mod audit;
#[path = "node/batch.rs"]
mod batch;
#[path = "node/cas.rs"]
mod cas;
#[path = "node/cli.rs"]
mod cli;
#[path = "node/export.rs"]
mod export;
#[path = "node/hardening/mod.rs"]
mod hardening;
#[path = "node/http.rs"]
mod http;
#[path = "node/lifecycle.rs"]
mod lifecycle;
#[path = "node/metrics.rs"]
mod metrics;
#[path = "node/redis.rs"]
mod redis;
#[path = "node/watch.rs"]
mod watch;
