//! Replication: the coordinator that turns a client's set/get/del into replica operations,
//! the hybrid logical clock that versions writes, and the per-core replica state.
//!
//! The coordinator of a key runs on the core that owns the key's shard: a request that
//! lands elsewhere hops there first (`runtime::Hub`). Replica operations follow DESIGN §3:
//! a PUT stores only a version above the one held; a write that every replica rejected is
//! retried under a fresh version (bounded); anything else short of a majority is
//! indeterminate and never re-issued. With one node the majority is that node.
//!
//! Must not import `http` or `api`.

pub mod clock;
pub mod coordinator;
pub mod protocol;
pub mod replica;

use std::rc::Rc;
use std::sync::Arc;

use crate::runtime::{CoreGone, Hub};
use crate::storage::{Record, Shard, StorageError, Store, Version, WriteOutcome};

use clock::Hlc;

/// A write whose every replica rejected it is re-issued under a fresh version at most this
/// many times before it fails definitely (nothing was stored).
pub const WRITE_ATTEMPTS_MAX: u32 = 8;

/// Why a client operation did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// Fewer than a majority agreed. `indeterminate`: the write may still take effect.
    #[error("not enough replicas agreed (indeterminate: {indeterminate})")]
    NotMost { indeterminate: bool },
    /// The owning shard is behind on flushing; nothing was applied.
    #[error("storage is busy")]
    Busy,
    #[error("storage: {0}")]
    Storage(String),
}

impl From<StorageError> for OpError {
    fn from(err: StorageError) -> Self {
        match err {
            StorageError::Busy { .. } => OpError::Busy,
            other => OpError::Storage(other.to_string()),
        }
    }
}

impl From<CoreGone> for OpError {
    fn from(err: CoreGone) -> Self {
        OpError::Storage(err.to_string())
    }
}

/// The replica state one core owns: its shards and its clock.
pub struct CoreReplica {
    core: usize,
    /// Indexed by shard number; `Some` only for the shards this core owns.
    shards: Vec<Option<Shard>>,
    hlc: Hlc,
}

impl CoreReplica {
    /// Opens this core's share of the store: shard `s` belongs to core `s % threads`.
    pub fn open(
        store: &Store,
        core: usize,
        threads: usize,
        sync: crate::config::SyncMode,
        root: &std::path::Path,
    ) -> std::io::Result<CoreReplica> {
        let shards = (0..store.shard_count())
            .map(|s| (s as usize % threads == core).then(|| Shard::new(store.shard_db(s), sync)))
            .collect();
        let origin = clock::origin(store.info().node_id, core);
        let hlc = Hlc::open(root, core, origin)?;
        Ok(CoreReplica { core, shards, hlc })
    }

    fn shard(&self, shard: u32) -> &Shard {
        match self.shards.get(shard as usize) {
            Some(Some(s)) => s,
            // A routing bug, not an input: the hop sends every key to its owner.
            _ => panic!("core {} asked for shard {shard} it does not own", self.core),
        }
    }

    /// PUT on the local replica, coordinated: versions the write and retries a rejected
    /// one under a fresh version (DESIGN §3, fast path rule 2, with N = 1).
    async fn write(
        &self,
        shard: u32,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<Version, OpError> {
        let shard = self.shard(shard);
        for _ in 0..WRITE_ATTEMPTS_MAX {
            let version = self.hlc.now().await;
            match shard.write_if_newer(key, version, value).await? {
                WriteOutcome::Stored | WriteOutcome::Same => return Ok(version),
                WriteOutcome::Newer(held) => self.hlc.observe(held.hlc),
            }
        }
        Err(OpError::NotMost {
            indeterminate: false,
        })
    }

    /// READ on the local replica; a tombstone reads as absent.
    async fn read(&self, shard: u32, key: &[u8]) -> Result<Option<Vec<u8>>, OpError> {
        let record: Option<Record> = self.shard(shard).read(key).await?;
        Ok(record.and_then(|r| {
            self.hlc.observe(r.version.hlc);
            r.value
        }))
    }
}

/// A core's entry point to the data: routes each key to its owner core and runs the
/// coordinator there. One per core; used by the API handlers.
pub struct Replication {
    core: usize,
    local: Rc<CoreReplica>,
    hub: Arc<Hub<CoreReplica>>,
    store: Arc<Store>,
}

impl Replication {
    pub fn new(
        core: usize,
        local: Rc<CoreReplica>,
        hub: Arc<Hub<CoreReplica>>,
        store: Arc<Store>,
    ) -> Self {
        Replication {
            core,
            local,
            hub,
            store,
        }
    }

    /// Runs `op` on the core that owns `shard`.
    async fn on_owner<T, F, Fut>(&self, shard: u32, op: F) -> Result<T, OpError>
    where
        T: Send + 'static,
        F: FnOnce(Rc<CoreReplica>, u32) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<T, OpError>> + 'static,
    {
        let owner = shard as usize % self.hub.threads();
        if owner == self.core {
            op(self.local.clone(), shard).await
        } else {
            self.hub
                .run_on(owner, move |local| op(local, shard))
                .await?
        }
    }

    pub async fn set(&self, key: Vec<u8>, value: Vec<u8>) -> Result<(), OpError> {
        self.on_owner(self.store.shard_for_key(&key), move |local, shard| async move {
            local.write(shard, &key, Some(&value)).await.map(drop)
        })
        .await
    }

    pub async fn del(&self, key: Vec<u8>) -> Result<(), OpError> {
        self.on_owner(
            self.store.shard_for_key(&key),
            move |local, shard| async move { local.write(shard, &key, None).await.map(drop) },
        )
        .await
    }

    /// The value a majority holds (with one node: this node's).
    pub async fn get(&self, key: Vec<u8>) -> Result<Option<Vec<u8>>, OpError> {
        self.local_get(key).await
    }

    /// This node's own copy, without any quorum (the original's `/api/get`).
    pub async fn local_get(&self, key: Vec<u8>) -> Result<Option<Vec<u8>>, OpError> {
        self.on_owner(
            self.store.shard_for_key(&key),
            move |local, shard| async move { local.read(shard, &key).await },
        )
        .await
    }
}
