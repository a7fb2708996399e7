//! STUB — being written (storage helper).
use super::{Record, StorageError, Version};
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    Stored,
    Same,
    Newer(Version),
}
pub struct Shard {}
impl Shard {
    pub fn new(_db: super::store::ShardDb, _sync: crate::config::SyncMode) -> Shard {
        Shard {}
    }
    pub async fn read(&self, _key: &[u8]) -> Result<Option<Record>, StorageError> {
        panic!("stub")
    }
    pub async fn write_if_newer(
        &self,
        _key: &[u8],
        _version: Version,
        _value: Option<&[u8]>,
    ) -> Result<WriteOutcome, StorageError> {
        panic!("stub")
    }
}
