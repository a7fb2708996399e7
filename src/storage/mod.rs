//! Storage: versioned records in shards, each shard its own fjall `Database` owned by one core,
//! and everything else mostdb keeps on disk. The only module that names fjall: the others ask
//! it for writes, reads, scans and hint logs.
//!
//! A record is `version ‖ flags ‖ [promise] ‖ [expires] ‖ value`; a delete is a tombstone (a
//! version with no value). The only writes are [`Shard::write`], the replica's atomic
//! compare-and-write, under the store rule ([`rule::compare`], which the replica logic and the
//! simulator call too), and [`Shard::prepare`], a CAS ballot's promise ([`rule::prepare`]).
//! Durability follows `MOSTDB_SYNC` (DESIGN §4): nothing is reported before it is as durable
//! as the mode promises. Every path of the data directory is named in [`layout`].
//!
//! Must not import `http`, `api`, `replication` or `runtime`.

pub mod cas_mark;
pub mod feed;
pub mod floor;
pub mod hintlog;
pub mod layout;
pub mod range;
pub mod record;
pub mod rule;
pub mod scan;
pub mod shard;
pub mod space;
pub mod store;
pub mod writeback;

pub use record::{Meta, Record, Version};
pub use rule::{PrepareOutcome, Rejection, WriteOutcome};
pub use shard::{Shard, ShardStats};
pub use space::{DiskSpace, SpaceReport};
pub use store::{Store, StoreInfo, StoreOptions};

/// The storage engine's log targets: the binary quiets them to warnings (their info lines
/// come with every flush and compaction).
pub const ENGINE_LOG_TARGETS: &[&str] = &["fjall", "lsm_tree"];

/// What can go wrong in storage. A failed fsync is not here: it stops the process.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    #[error("store {path} is in use by another mostdb process")]
    Locked { path: String },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("fjall: {0}")]
    Fjall(#[from] fjall::Error),
    #[error("corrupt {what}: {detail}")]
    Corrupt { what: &'static str, detail: String },
    #[error("shard {shard} is busy: its writes are waiting for flushes")]
    Busy { shard: u32 },
    /// Free space on the store's volume is below the reserve: nothing was written.
    #[error("no space: free disk space is below MOSTDB_DISK_RESERVE_BYTES")]
    NoSpace,
    #[error("invalid storage setting: {detail}")]
    Invalid { detail: String },
}
