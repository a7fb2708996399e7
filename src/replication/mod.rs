//! Replication: the coordinator that turns a client's set/get/del into replica operations
//! (DESIGN §3), the hybrid logical clock that versions writes, the replica rules, and the
//! per-core replica state.
//!
//! The coordinator of a key runs on the core that owns the key's shard: a request that
//! lands elsewhere hops there first (`runtime::Hub`). With one node the majority is that
//! node, through the same state machines. Peers' requests arrive at [`endpoint`], which also
//! holds the rule for what a recovering node may do.
//!
//! Must not import `http` or `api`.

pub mod antientropy;
pub mod clock;
pub mod coordinator;
pub mod driver;
pub mod endpoint;
pub mod expiry;
pub mod hints;
pub mod listing;
pub mod peer;
pub mod protocol;
pub mod recovery;
pub mod replica;
pub mod transport;

use std::rc::Rc;
use std::sync::Arc;

use crate::runtime::{CoreGone, Hub};
/// The change feed prefix watches read (the API reaches storage only through here).
pub use crate::storage::feed::{Change as FeedChange, ChangeFeed, Since};
/// The version of a write, as the API reports it (the API reaches storage only through here).
pub use crate::storage::Version;
use crate::storage::{Shard, ShardStats, StorageError, Store};

use clock::Hlc;
use coordinator::{CasDone, Change, Expect, Payload, ReadDone, WriteDone};
use driver::Driver;
use protocol::{ReplicaReply, ReplicaRequest};

/// A value as a get found it: its version and, if it was written with a time to live, its
/// expiry (an HLC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub version: Version,
    pub value: Vec<u8>,
    pub expires: Option<u64>,
    /// The clock of the core that read it (the key's owner, whose clock issues the key's
    /// versions here) when the read ended: what the time left is measured against. A core's
    /// clock may run up to ~2 s ahead of another's just after a start (each starts above every
    /// persisted ceiling), so a time left measured on another core's clock can be off by that.
    pub read_at: u64,
}

/// Why a client operation did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// Fewer than a majority agreed. `indeterminate`: the write may still take effect.
    #[error("not enough replicas agreed (indeterminate: {indeterminate})")]
    NotMost { indeterminate: bool },
    /// The owning shard is behind on flushing; nothing was applied.
    #[error("storage is busy")]
    Busy,
    /// Free disk space is below the reserve; nothing was applied.
    #[error("no disk space")]
    NoSpace,
    #[error("storage: {0}")]
    Storage(String),
    /// A member runs a mostdb that cannot take part (it does not speak CAS); nothing was tried.
    #[error("{0}")]
    Unsupported(&'static str),
}

impl From<StorageError> for OpError {
    fn from(err: StorageError) -> Self {
        match err {
            StorageError::Busy { .. } => OpError::Busy,
            StorageError::NoSpace => OpError::NoSpace,
            other => OpError::Storage(other.to_string()),
        }
    }
}

impl From<CoreGone> for OpError {
    fn from(err: CoreGone) -> Self {
        OpError::Storage(err.to_string())
    }
}

/// The replica state one core owns: its shards, its clock, and its coordinator driver.
pub struct CoreReplica {
    core: usize,
    /// Indexed by shard number; `Some` only for the shards this core owns.
    shards: Vec<Option<Shard>>,
    hlc: Rc<Hlc>,
    driver: Driver,
}

impl CoreReplica {
    /// This core's share of the store (shard `s` belongs to core `s % threads`), its clock
    /// (bounded, above the earlier runs' highest ceiling), and the driver that reaches the
    /// other replicas (made with the clock, which the peer links observe).
    pub fn open(
        store: &Store,
        core: usize,
        threads: usize,
        root: &std::path::Path,
        (bound, previous_ceiling): (Arc<clock::SkewBound>, u64),
        make_driver: impl FnOnce(Rc<Hlc>) -> Driver,
    ) -> std::io::Result<CoreReplica> {
        let sync = store.sync_mode();
        let shards = (0..store.shard_count())
            .map(|s| (s as usize % threads == core).then(|| Shard::new(store.shard_db(s), sync)))
            .collect();
        let origin = clock::origin(store.info().node_id, core);
        let hlc = Rc::new(Hlc::open_above(
            root,
            (core, origin),
            bound,
            previous_ceiling,
        )?);
        let driver = make_driver(hlc.clone());
        Ok(CoreReplica {
            core,
            shards,
            hlc,
            driver,
        })
    }

    pub fn hlc(&self) -> &Hlc {
        &self.hlc
    }

    /// The figures of the shards this core owns (for `/metrics`).
    pub fn shard_stats(&self) -> impl Iterator<Item = ShardStats> + '_ {
        self.shards.iter().flatten().map(Shard::stats)
    }

    fn shard(&self, shard: u32) -> &Shard {
        match self.shards.get(shard as usize) {
            Some(Some(s)) => s,
            // A routing bug, not an input: every key hops to its owner first.
            _ => panic!("core {} asked for shard {shard} it does not own", self.core),
        }
    }

    async fn write(&self, shard: u32, key: Vec<u8>, payload: Payload) -> Result<Version, OpError> {
        match self
            .driver
            .write(self.shard(shard), &self.hlc, key, payload)
            .await
        {
            WriteDone::Ok { version } => Ok(version),
            WriteDone::NotMost => Err(OpError::NotMost {
                indeterminate: false,
            }),
            WriteDone::Indeterminate { .. } => Err(OpError::NotMost {
                indeterminate: true,
            }),
        }
    }

    /// A quorum read: the version a majority holds (a tombstone's, or the zero version for an
    /// absent key, when there is no value) and the value.
    async fn read(&self, shard: u32, key: Vec<u8>) -> Result<(Version, Option<Found>), OpError> {
        match self.driver.read(self.shard(shard), &self.hlc, key).await {
            ReadDone::Found {
                version,
                value,
                expires,
            } => Ok((
                version,
                Some(Found {
                    version,
                    value,
                    expires,
                    read_at: self.hlc.reading(),
                }),
            )),
            ReadDone::NotFound { version } => Ok((version, None)),
            ReadDone::NotMost => Err(OpError::NotMost {
                indeterminate: false,
            }),
        }
    }

    /// Waits until this core's replica stores a new version of `key`, or `wait` passes.
    async fn wait_change(&self, shard: u32, key: &[u8], wait: std::time::Duration) {
        let changed = self.shard(shard).changed(key);
        let _ = monoio::time::timeout(wait, changed).await;
    }

    async fn cas(
        &self,
        shard: u32,
        key: Vec<u8>,
        compare: (Expect, Change),
    ) -> Result<CasDone, OpError> {
        if !self.driver.speaks_cas() {
            return Err(OpError::Unsupported(
                "a member runs a mostdb without compare-and-set: upgrade every member first",
            ));
        }
        Ok(self
            .driver
            .cas(self.shard(shard), &self.hlc, key, compare)
            .await)
    }

    /// Settles `key` with a consensus read if `promise` (one that refused an anti-entropy
    /// copy) is older than twice the operation deadline: its proposer is done or gone, and
    /// until a fresh ballot writes the state back, copies below it stay refused. `Ok(false)`:
    /// too young, left alone.
    async fn settle(&self, shard: u32, key: Vec<u8>, promise: Version) -> Result<bool, OpError> {
        let timeout_ms = self.driver.timeout_and_mode().0.as_millis() as u64;
        let issued_ms = promise.hlc >> clock::COUNTER_BITS;
        if self.hlc.physical_ms().saturating_sub(issued_ms) < 2 * timeout_ms
            || !self.driver.speaks_cas()
        {
            return Ok(false);
        }
        match self.driver.settle(self.shard(shard), &self.hlc, key).await {
            ReadDone::NotMost => Err(OpError::NotMost {
                indeterminate: false,
            }),
            ReadDone::Found { .. } | ReadDone::NotFound { .. } => Ok(true),
        }
    }

    /// This node's own copy; a tombstone reads as absent.
    async fn read_local(&self, shard: u32, key: &[u8]) -> Result<Option<Found>, OpError> {
        let record = self.shard(shard).read(key).await?;
        Ok(record.and_then(|r| {
            Some(Found {
                version: r.version,
                value: r.value?,
                expires: r.meta.expires,
                read_at: self.hlc.reading(),
            })
        }))
    }

    /// A replica operation from a peer's coordinator, on this (owner) core. The clock observes
    /// the version (ignored beyond the skew bound, which the replica then refuses).
    async fn serve(&self, shard: u32, request: ReplicaRequest) -> Result<ReplicaReply, OpError> {
        if let Some(version) = request.version() {
            self.hlc.observe(version.hlc);
        }
        Ok(replica::apply(self.shard(shard), &request, &self.hlc).await?)
    }
}

/// A core's entry point to the data: routes each key to its owner core and runs the
/// coordinator there. One per core; used by the API handlers and the peer server.
pub struct Replication {
    core: usize,
    local: Rc<CoreReplica>,
    hub: Arc<Hub<CoreReplica>>,
    store: Arc<Store>,
    /// While it says "recovering", this node's coordinator refuses client operations: its own
    /// replica would count as a vote ([`endpoint::admits`]).
    recovery: Option<Arc<recovery::Recovery>>,
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
            recovery: None,
        }
    }

    /// Refuses client operations while `recovery` is under way.
    pub fn with_recovery(mut self, recovery: Arc<recovery::Recovery>) -> Self {
        self.recovery = Some(recovery);
        self
    }

    /// Whether this node's own replica counts as a vote (it is not recovering).
    pub fn votes(&self) -> bool {
        self.check_voting().is_ok()
    }

    /// `NotMost` while this node recovers: nothing was tried, nothing can take effect.
    fn check_voting(&self) -> Result<(), OpError> {
        match &self.recovery {
            Some(r) if !endpoint::admits(r, endpoint::Ask::ClientOp) => Err(OpError::NotMost {
                indeterminate: false,
            }),
            _ => Ok(()),
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

    /// `NoSpace` while the store's volume is below its reserve: a write is refused before it
    /// gets a version, so nothing is sent anywhere.
    fn check_space(&self) -> Result<(), OpError> {
        if self.space_low() {
            return Err(OpError::NoSpace);
        }
        Ok(())
    }

    /// A write that definitely failed while the disk ran out under it (its own replica said
    /// `NoSpace`, counted since `refusals`, and too few others stored it) is reported as
    /// `NoSpace`: both mean nothing was applied, and this one tells the client why. (The
    /// watcher may have found room again by the time the answer is back, so the count is
    /// looked at, not only the current state.)
    fn blame_space<T>(&self, done: Result<T, OpError>, refusals: u64) -> Result<T, OpError> {
        let ran_out = self.space_low() || self.store.space().refused_writes() > refusals;
        match done {
            Err(OpError::NotMost {
                indeterminate: false,
            }) if ran_out => Err(OpError::NoSpace),
            other => other,
        }
    }

    /// Whether this node refuses writes for lack of disk space.
    pub fn space_low(&self) -> bool {
        self.store.space().is_low()
    }

    /// The version written, once a majority holds it. With `ttl_ms`, the key expires that
    /// long after the version (DESIGN §10: a tombstone at a version fixed in advance).
    pub async fn set(
        &self,
        key: Vec<u8>,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> Result<Version, OpError> {
        self.check_voting()?;
        self.check_space()?;
        if ttl_ms.is_some() && !self.local.driver.speaks_cas() {
            return Err(OpError::Unsupported(
                "a member runs a mostdb without expiry: upgrade every member first",
            ));
        }
        let refusals = self.store.space().refused_writes();
        let payload = Payload {
            value: Some(value),
            ttl_ms,
        };
        let done = self.on_owner(
            self.store.shard_for_key(&key),
            move |local, shard| async move { local.write(shard, key, payload).await },
        );
        self.blame_space(done.await, refusals)
    }

    /// The tombstone's version, once a majority holds it.
    pub async fn del(&self, key: Vec<u8>) -> Result<Version, OpError> {
        self.check_voting()?;
        self.check_space()?;
        let refusals = self.store.space().refused_writes();
        let done = self.on_owner(
            self.store.shard_for_key(&key),
            move |local, shard| async move { local.write(shard, key, Payload::plain(None)).await },
        );
        self.blame_space(done.await, refusals)
    }

    /// A compare-and-set (DESIGN §10): `change` applies iff `expect` holds at the CAS's
    /// ballot. Definite and indeterminate failures are outcomes here, not errors: the API
    /// reports the attempted version with them.
    pub async fn cas(
        &self,
        key: Vec<u8>,
        expect: Expect,
        change: Change,
    ) -> Result<CasDone, OpError> {
        self.check_voting()?;
        self.check_space()?;
        self.on_owner(
            self.store.shard_for_key(&key),
            move |local, shard| async move { local.cas(shard, key, (expect, change)).await },
        )
        .await
    }

    /// The value a majority holds exactly (DESIGN §3, read), and its version.
    pub async fn get(&self, key: Vec<u8>) -> Result<Option<Found>, OpError> {
        Ok(self.get_versioned(key).await?.1)
    }

    /// get of `key`, with the version a majority holds also when it holds no value (a
    /// tombstone's; [`Version::ZERO`]: never written).
    pub async fn get_versioned(&self, key: Vec<u8>) -> Result<(Version, Option<Found>), OpError> {
        self.check_voting()?;
        self.on_owner(
            self.store.shard_for_key(&key),
            move |local, shard| async move { local.read(shard, key).await },
        )
        .await
    }

    /// Restores a record of an export (DESIGN §11): sets `key` to `value` with a CAS whose
    /// compare holds only while the key's version (a tombstone's too) is below the record's
    /// `version`, so a key written or deleted since the export is left alone and a repeated
    /// import changes nothing. The value gets a fresh version (a recovered node's promise floor
    /// refuses versions older than its recovery); an expiry (an HLC) keeps its time left, and
    /// an expired record is skipped. `Ok(true)`: stored; `Ok(false)`: left alone.
    pub async fn import(
        &self,
        key: Vec<u8>,
        version: Version,
        value: Vec<u8>,
        expires: Option<u64>,
    ) -> Result<bool, OpError> {
        let ttl_ms = match expires {
            None => None,
            Some(at) if at <= self.clock_now() => return Ok(false),
            Some(at) => Some(clock::ms_left(at, self.clock_now()).max(1)),
        };
        let change = Change {
            value: Some(value),
            ttl_ms,
        };
        match self.cas(key, Expect::OlderThan(version), change).await? {
            CasDone::Ok { .. } => Ok(true),
            CasDone::CompareFailed { .. } => Ok(false),
            CasDone::NotMost { .. } => Err(OpError::NotMost {
                indeterminate: false,
            }),
            CasDone::Indeterminate { .. } => Err(OpError::NotMost {
                indeterminate: true,
            }),
        }
    }

    /// Waits until this node's replica of `key` stores a new version, or `wait` passes (what
    /// a watch waits for between its quorum reads, on the key's owner core).
    pub async fn wait_change(&self, key: Vec<u8>, wait: std::time::Duration) {
        let _ = self
            .on_owner(
                self.store.shard_for_key(&key),
                move |local, shard| async move {
                    local.wait_change(shard, &key, wait).await;
                    Ok(())
                },
            )
            .await;
    }

    /// Settles `key` if `promise`, which refused an anti-entropy copy, is old enough (see
    /// `CoreReplica::settle`); whether it ran.
    pub async fn settle(&self, key: Vec<u8>, promise: Version) -> Result<bool, OpError> {
        self.check_voting()?;
        self.on_owner(
            self.store.shard_for_key(&key),
            move |local, shard| async move { local.settle(shard, key, promise).await },
        )
        .await
    }

    /// About how many keys this node's replica holds (fjall's estimate: deleted and
    /// overwritten keys count until compaction), for `DBSIZE`.
    pub fn approximate_keys(&self) -> u64 {
        (0..self.store.shard_count())
            .map(|s| self.store.shard_db(s).keyspace().approximate_len() as u64)
            .sum()
    }

    /// The node's change feed (what its replica stored, while prefix watches ask).
    pub fn feed(&self) -> &ChangeFeed {
        self.store.feed()
    }

    /// This node's own copy, without any quorum (the original's `/api/get`), and its version.
    pub async fn local_get(&self, key: Vec<u8>) -> Result<Option<Found>, OpError> {
        self.on_owner(
            self.store.shard_for_key(&key),
            move |local, shard| async move { local.read_local(shard, &key).await },
        )
        .await
    }

    /// Raises the store's promise floor (DESIGN §10): a recovery ends with it, before the
    /// node votes. Blocking (one small file, synced).
    pub fn raise_promise_floor(&self, hlc: u64) -> std::io::Result<()> {
        self.store.raise_promise_floor(hlc)
    }

    /// Where this core's clock stands (an HLC), without issuing anything: what expiries are
    /// compared with.
    pub fn clock_now(&self) -> u64 {
        self.local.hlc.reading()
    }

    /// This core's clock reading (for the cluster view's HLC offsets).
    pub fn clock_reading(&self) -> u64 {
        self.local.hlc.last()
    }

    /// The node's clock bound and what it refused or ignored (for the cluster view).
    pub fn clock_bound(&self) -> Arc<clock::SkewBound> {
        self.local.hlc.bound().clone()
    }

    /// A replica operation sent by a peer's coordinator.
    pub async fn serve_peer_request(
        &self,
        request: ReplicaRequest,
    ) -> Result<ReplicaReply, OpError> {
        self.on_owner(
            self.store.shard_for_key(request.key()),
            move |local, shard| async move { local.serve(shard, request).await },
        )
        .await
    }
}
