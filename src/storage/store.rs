//! STUB — being written (storage helper).
use super::StorageError;
use std::path::PathBuf;
pub struct StoreOptions {
    pub root: PathBuf,
    pub shards_if_new: u32,
    pub sync: crate::config::SyncMode,
}
#[derive(Clone, Debug)]
pub struct StoreInfo {
    pub node_id: u64,
    pub shards: u32,
    pub created: bool,
    pub last_shutdown_clean: bool,
    pub boot_changed: bool,
}
#[derive(Clone)]
pub struct ShardDb {}
pub struct Store {}
impl Store {
    pub fn open(_opts: StoreOptions) -> Result<Store, StorageError> {
        panic!("stub")
    }
    pub fn info(&self) -> &StoreInfo {
        panic!("stub")
    }
    pub fn shard_count(&self) -> u32 {
        panic!("stub")
    }
    pub fn shard_for_key(&self, _key: &[u8]) -> u32 {
        panic!("stub")
    }
    pub fn shard_db(&self, _shard: u32) -> ShardDb {
        panic!("stub")
    }
    pub fn close(self) -> Result<(), StorageError> {
        panic!("stub")
    }
}
