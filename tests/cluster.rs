//! The cluster tests: each starts several real `mostdb` processes on this process's loopback
//! address, with a proxy on every peer link. Convergence by anti-entropy (`convergence`),
//! hinted handoff (`handoff`), recovery of a wiped node before it votes (`recovery`), the
//! Jepsen-style fault test with its checker and proxies (`fault`), and what hostile peers and
//! skewed clocks do to a cluster (`hardening`), heartbeat monitoring: readiness without a
//! majority and the reachability matrix (`monitoring`), value limits that differ from node to
//! node or change at runtime (`limits`), compare-and-set raced from every node (`cas`), majority
//! listings through a node that missed writes (`list`), a watch under a partition (`watch`), backup and
//! restore under writes (`backup`), the Redis port with a node down and INCRs under pauses
//! (`redis`). Clusters share the machine by its cores (see
//! `support/cluster.rs`, `LoadSlot`). Single-node tests are in `tests/node.rs`; measurements
//! in `benches/convergence.rs`.
//!
//! A test crate root looks for its modules beside itself, hence the `#[path]`s.

mod support;

#[path = "cluster/backup.rs"]
mod backup;
#[path = "cluster/cas.rs"]
mod cas;
#[path = "cluster/convergence.rs"]
mod convergence;
#[path = "cluster/dashboard.rs"]
mod dashboard;
#[path = "cluster/fault.rs"]
mod fault;
#[path = "cluster/fault_harness.rs"]
mod fault_harness;
#[path = "cluster/handoff.rs"]
mod handoff;
#[path = "cluster/hardening/mod.rs"]
mod hardening;
#[path = "cluster/limits.rs"]
mod limits;
#[path = "cluster/list.rs"]
mod list;
#[path = "cluster/monitoring.rs"]
mod monitoring;
#[path = "cluster/recovery.rs"]
mod recovery;
#[path = "cluster/redis.rs"]
mod redis;
#[path = "cluster/watch.rs"]
mod watch;
