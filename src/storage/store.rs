//! The data directory: its lock, its metadata (node id, shard count), the crash markers, and
//! one fjall `Database` per shard. Opened once on the main thread before the cores start.
//!
//! Every path it uses is named in [`layout`], with the rest of the directory:
//! * `LOCK` — `flock`ed exclusively for the life of the [`Store`] (a second process fails
//!   at once with [`StorageError::Locked`]).
//! * `mostdb.meta` — JSON: format version, shard count, node id, creation time. Written
//!   once, when the directory is created (temp file + fsync + rename + directory fsync).
//! * `boot-id` — the kernel boot id of the last open, to tell a machine crash from a
//!   process crash (DESIGN §4).
//! * `clean-shutdown` — present only between a [`Store::close`] and the next open.
//! * `shards/<NNN>/` — shard `NNN`'s fjall `Database`, with one keyspace `data`.
//!
//! Must not import `http`, `api`, `replication` or `runtime`.

use super::cas_mark::CasMark;
use super::feed::ChangeFeed;
use super::floor::PromiseFloor;
use super::layout::{
    self, BOOT_ID_FILE, CLEAN_SHUTDOWN_FILE, LOCK_FILE, META_FILE, SHARD_KEYSPACE,
};
use super::space::{DiskSpace, SpaceWatch};
use super::writeback::JournalWriteback;
use super::StorageError;
use super::Version;
use crate::config::SyncMode;
use crate::limits;
use fjall::config::PinningPolicy;
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Version of the directory layout and record format; an unknown one is refused.
pub const FORMAT_VERSION: u32 = 1;
/// Where the kernel publishes a random id that changes on every boot.
const KERNEL_BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";
/// Draws of the random source before giving up on getting a usable node id.
const NODE_ID_DRAWS_MAX: usize = 16;

pub struct StoreOptions {
    pub root: PathBuf,
    /// Shard count if this open creates the directory; an existing directory keeps its own.
    pub shards_if_new: u32,
    pub sync: SyncMode,
    /// Writes are refused below this much free space (`MOSTDB_DISK_RESERVE_BYTES`).
    pub disk_reserve_bytes: u64,
}

/// What [`Store::open`] found.
#[derive(Clone, Debug)]
pub struct StoreInfo {
    /// This node's id: random, never 0, created with the directory and kept.
    pub node_id: u64,
    pub shards: u32,
    /// This open created the directory's metadata (a new, empty node).
    pub created: bool,
    /// The previous run ended with [`Store::close`]. True for a new directory (nothing to lose).
    pub last_shutdown_clean: bool,
    /// The kernel booted since the previous open (or that cannot be told): together with
    /// `!last_shutdown_clean`, writes the OS had not yet written back may be lost.
    pub boot_changed: bool,
}

/// One shard's fjall handles. Cheap to clone, `Send + Sync`; only the owner core uses it.
#[derive(Clone)]
pub struct ShardDb {
    index: u32,
    db: Database,
    keyspace: Keyspace,
    space: Arc<DiskSpace>,
    floor: Arc<PromiseFloor>,
    cas_mark: Arc<CasMark>,
    feed: Arc<ChangeFeed>,
}

impl ShardDb {
    pub fn index(&self) -> u32 {
        self.index
    }
    pub fn database(&self) -> &Database {
        &self.db
    }
    pub fn keyspace(&self) -> &Keyspace {
        &self.keyspace
    }
    /// The shard's generation: fjall's next sequence number (each write takes one), so it
    /// changes with every write. fjall hides `Database::seqno` from its docs; it is public,
    /// and should it go, the build breaks rather than the result.
    pub fn generation(&self) -> u64 {
        self.db.seqno()
    }
    /// The free space of the store's volume, shared by every shard.
    pub fn space(&self) -> &DiskSpace {
        &self.space
    }
    /// The promise every key counts as holding at least (DESIGN §10, recovery).
    pub fn promise_floor(&self) -> Version {
        self.floor.version()
    }
    /// Whether the store holds CAS-format records (DESIGN §10, mixed versions).
    pub fn cas_mark(&self) -> &Arc<CasMark> {
        &self.cas_mark
    }
    /// The node's change feed (prefix watches), shared by every shard.
    pub fn feed(&self) -> &ChangeFeed {
        &self.feed
    }
}

pub struct Store {
    root: PathBuf,
    info: StoreInfo,
    sync: SyncMode,
    shards: Vec<ShardDb>,
    space: Arc<DiskSpace>,
    floor: Arc<PromiseFloor>,
    cas_mark: Arc<CasMark>,
    feed: Arc<ChangeFeed>,
    /// Measures the free space while the store is open.
    _space_watch: SpaceWatch,
    /// Starts the journals' writeback as they grow (`MOSTDB_SYNC=os` only: under `always`
    /// the group commit's fsyncs keep them clean).
    _writeback: Option<JournalWriteback>,
    /// Holds the `flock` on `<root>/LOCK`; closing the descriptor releases it.
    _lock: File,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Meta {
    format: u32,
    shards: u32,
    /// Hex, so tools that read JSON numbers as doubles see the exact id.
    node_id: String,
    created_unix_ms: u64,
}

impl Store {
    /// Opens (or creates) the data directory. Blocking: call it before the cores start.
    pub fn open(opts: StoreOptions) -> Result<Store, StorageError> {
        let root = opts.root;
        // 1. The directory and its lock, before reading anything in it.
        std::fs::create_dir_all(&root).map_err(io_err("create directory", &root))?;
        let lock = lock_exclusive(&root.join(LOCK_FILE))?;
        // 2. Metadata: the node id and shard count are fixed at creation.
        let existing = read_meta(&root.join(META_FILE))?;
        let created = existing.is_none();
        let meta = match existing {
            Some(meta) => meta,
            None => new_meta(opts.shards_if_new)?,
        };
        let node_id = parse_node_id(&meta.node_id)?;
        // 3. Crash markers, consumed now so that a crash from here on reads as unclean.
        let boot_changed = record_boot_id(&root)? && !created;
        let last_shutdown_clean = take_clean_marker(&root)? || created;
        // 4. The free space, measured before anything more is written, then the shards; the
        //    metadata goes last, so an interrupted creation is redone.
        let space = DiskSpace::new(&root, opts.disk_reserve_bytes)
            .map(Arc::new)
            .map_err(io_err("measure free space of", &root))?;
        let floor = Arc::new(PromiseFloor::load(&root)?);
        let cas_mark = Arc::new(CasMark::load(&root));
        let feed = Arc::new(ChangeFeed::new());
        let shards = (0..meta.shards)
            .map(|index| open_shard(&root, index, created, (&space, &floor, &cas_mark, &feed)))
            .collect::<Result<Vec<_>, _>>()?;
        let handles = shards
            .iter()
            .map(|s| (s.db.clone(), s.keyspace.clone()))
            .collect::<Vec<_>>();
        space
            .refresh(&handles)
            .map_err(io_err("measure free space of", &root))?;
        let space_watch = SpaceWatch::start(space.clone(), handles)
            .map_err(io_err("start the free-space watcher for", &root))?;
        let writeback = start_writeback(&root, meta.shards, opts.sync)?;
        if created {
            write_atomically(&root.join(META_FILE), &meta_bytes(&meta)?)
                .map_err(io_err("write", &root.join(META_FILE)))?;
        }
        let info = StoreInfo {
            node_id,
            shards: meta.shards,
            created,
            last_shutdown_clean,
            boot_changed,
        };
        tracing::info!(root = %root.display(), node_id = %meta.node_id, shards = meta.shards,
            created, last_shutdown_clean, boot_changed, "store open");
        Ok(Store {
            root,
            info,
            sync: opts.sync,
            shards,
            space,
            floor,
            cas_mark,
            feed,
            _space_watch: space_watch,
            _writeback: writeback,
            _lock: lock,
        })
    }

    pub fn info(&self) -> &StoreInfo {
        &self.info
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn sync_mode(&self) -> SyncMode {
        self.sync
    }

    /// The free space of the store's volume against the reserve.
    pub fn space(&self) -> &Arc<DiskSpace> {
        &self.space
    }

    /// Whether the store holds records only a mostdb speaking CAS can read.
    pub fn cas_mark(&self) -> &Arc<CasMark> {
        &self.cas_mark
    }

    /// The node's change feed: what its replica stored, while prefix watches ask.
    pub fn feed(&self) -> &Arc<ChangeFeed> {
        &self.feed
    }

    /// Raises the promise floor to `hlc`, durably (DESIGN §10: a recovery ends with it).
    /// Blocking.
    pub fn raise_promise_floor(&self, hlc: u64) -> std::io::Result<()> {
        self.floor.raise(hlc)
    }

    pub fn shard_count(&self) -> u32 {
        self.info.shards
    }

    /// The shard that holds `key` (see [`shard_of`]).
    pub fn shard_for_key(&self, key: &[u8]) -> u32 {
        shard_of(key, self.info.shards)
    }

    /// Shard `shard`'s handles.
    ///
    /// # Panics
    /// If `shard >= shard_count()`: shard numbers come from [`Store::shard_for_key`]; one
    /// received from outside must be checked against [`Store::shard_count`] first.
    pub fn shard_db(&self, shard: u32) -> ShardDb {
        match self.shards.get(shard as usize) {
            Some(db) => db.clone(),
            None => panic!(
                "shard {shard} out of range (store has {})",
                self.info.shards
            ),
        }
    }

    /// Persists every shard (fsync) and leaves the clean-shutdown marker. Call it after the
    /// cores have stopped: a write after `close` would not be covered by the marker. Takes
    /// `&self` because a stopped core may still hold a handle (tasks cut off at the end of the
    /// shutdown grace period are never polled again, but are not dropped before exit); the
    /// directory lock is released when the last handle goes, at the latest when the process
    /// exits.
    pub fn close(&self) -> Result<(), StorageError> {
        for shard in &self.shards {
            shard.db.persist(PersistMode::SyncAll)?;
        }
        let marker = self.root.join(CLEAN_SHUTDOWN_FILE);
        if let Err(err) = write_marker(&marker) {
            // Everything is persisted; only the marker is missing (a full disk, say). The next
            // start then takes this stop for a crash, which is the cautious reading.
            tracing::warn!(path = %marker.display(), %err,
                "store persisted, but the clean-shutdown marker could not be written");
            return Ok(());
        }
        tracing::info!(root = %self.root.display(), "store closed cleanly");
        Ok(())
    }
}

/// The stable hash of a key: FNV-1a 64 followed by the murmur3 `fmix64` finalizer (FNV-1a's
/// low bits mix poorly, and the shard is taken from them). It decides where every key lives
/// on disk and must never change, on any platform or version; the unit tests pin it.
pub fn key_hash(key: &[u8]) -> u64 {
    let mut h = fnv1a64(key);
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(FNV_OFFSET, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(FNV_PRIME)
    })
}

/// The shard of `key` among `shards` shards.
pub fn shard_of(key: &[u8], shards: u32) -> u32 {
    debug_assert!(shards > 0);
    (key_hash(key) % u64::from(shards.max(1))) as u32
}

fn io_err<'a>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> StorageError + 'a {
    move |source| StorageError::Io {
        what,
        path: path.display().to_string(),
        source,
    }
}

/// Takes an exclusive, non-blocking `flock` on `path` (created if missing).
fn lock_exclusive(path: &Path) -> Result<File, StorageError> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io_err("open lock file", path))?;
    // SAFETY: flock on a descriptor we own, which stays open as long as `file`.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            return Err(StorageError::Locked {
                path: path.display().to_string(),
            });
        }
        return Err(io_err("lock", path)(err));
    }
    // The pid is only a hint for whoever finds the directory in use.
    let _ = file
        .set_len(0)
        .and_then(|()| writeln!(file, "{}", std::process::id()));
    Ok(file)
}

fn read_meta(path: &Path) -> Result<Option<Meta>, StorageError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("read", path)(e)),
    };
    let corrupt = |detail: String| StorageError::Corrupt {
        what: "store metadata",
        detail: format!("{}: {detail}", path.display()),
    };
    let meta: Meta = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
    if meta.format != FORMAT_VERSION {
        return Err(corrupt(format!(
            "format version {} (this mostdb reads {FORMAT_VERSION})",
            meta.format
        )));
    }
    if meta.shards == 0 || meta.shards > limits::SHARDS_MAX {
        return Err(corrupt(format!("shard count {}", meta.shards)));
    }
    Ok(Some(meta))
}

fn new_meta(shards: u32) -> Result<Meta, StorageError> {
    if shards == 0 || shards > limits::SHARDS_MAX {
        return Err(StorageError::Invalid {
            detail: format!(
                "shard count {shards} for a new store (must be 1..={})",
                limits::SHARDS_MAX
            ),
        });
    }
    let created_unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Ok(Meta {
        format: FORMAT_VERSION,
        shards,
        node_id: format!("{:016x}", new_node_id()?),
        created_unix_ms,
    })
}

fn meta_bytes(meta: &Meta) -> Result<Vec<u8>, StorageError> {
    let mut bytes = serde_json::to_vec_pretty(meta).map_err(|e| StorageError::Corrupt {
        what: "store metadata",
        detail: e.to_string(),
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

fn parse_node_id(hex: &str) -> Result<u64, StorageError> {
    match u64::from_str_radix(hex, 16) {
        Ok(id) if usable_node_id(id) => Ok(id),
        _ => Err(StorageError::Corrupt {
            what: "store metadata",
            detail: format!("node id {hex:?}"),
        }),
    }
}

/// A node id is shifted left by 8 to make a version's origin (the core goes in the low
/// byte), so it must stay non-zero after the shift.
fn usable_node_id(id: u64) -> bool {
    id << 8 != 0
}

fn new_node_id() -> Result<u64, StorageError> {
    let path = Path::new("/dev/urandom");
    let mut file = File::open(path).map_err(io_err("open", path))?;
    for _ in 0..NODE_ID_DRAWS_MAX {
        let mut buf = [0u8; 8];
        file.read_exact(&mut buf).map_err(io_err("read", path))?;
        let id = u64::from_le_bytes(buf);
        if usable_node_id(id) {
            return Ok(id);
        }
    }
    Err(StorageError::Invalid {
        detail: "/dev/urandom keeps returning zeros".into(),
    })
}

/// Records the current kernel boot id; returns whether it differs from the recorded one
/// (also when either is unknown: a missed machine crash costs data, a false alarm only time).
fn record_boot_id(root: &Path) -> Result<bool, StorageError> {
    let current = std::fs::read_to_string(KERNEL_BOOT_ID)
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let path = root.join(BOOT_ID_FILE);
    let recorded = match std::fs::read_to_string(&path) {
        Ok(s) => Some(s.trim().to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_err("read", &path)(e)),
    };
    if current.is_empty() {
        tracing::warn!(
            path = KERNEL_BOOT_ID,
            "kernel boot id unavailable; assuming a reboot"
        );
        return Ok(true);
    }
    if recorded.as_deref() != Some(current.as_str()) {
        write_atomically(&path, format!("{current}\n").as_bytes())
            .map_err(io_err("write", &path))?;
        return Ok(true);
    }
    Ok(false)
}

/// Whether the clean-shutdown marker was there; removes it durably.
fn take_clean_marker(root: &Path) -> Result<bool, StorageError> {
    let path = root.join(CLEAN_SHUTDOWN_FILE);
    match std::fs::remove_file(&path) {
        Ok(()) => {
            sync_dir(root).map_err(io_err("fsync directory", root))?;
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err("remove", &path)(e)),
    }
}

fn write_marker(path: &Path) -> std::io::Result<()> {
    let mut file = File::create(path)?;
    file.write_all(b"closed cleanly\n")?;
    file.sync_all()?;
    sync_dir(parent_of(path))
}

/// Opens shard `index`'s Database and keyspace. The options, and why:
/// * `cache_size(SHARD_CACHE_BYTES)`: fjall's cache is per Database, so the node's total is
///   S × this; 32 MiB (fjall's default) keeps a many-shard node modest.
/// * `worker_threads(1)`: flush/compaction threads per Database (default min(cores, 4));
///   with one Database per shard, more would oversubscribe the machine S-fold.
/// * `manual_journal_persist(false)` (the default, stated because correctness rests on it):
///   every insert reaches the OS with `write()` before returning (`MOSTDB_SYNC=os`).
/// * keyspace `max_memtable_size(SHARD_MEMTABLE_BYTES)`: 16 MiB instead of 64 MiB bounds
///   memory (S active + sealed memtables) and journal replay time.
/// * keyspace filter and index blocks pinned in memory at every level (fjall pins filters of
///   L0 and indexes of L0-L1 only): otherwise a random read of a large store fetches and
///   decodes them again through the block cache, which data blocks keep evicting. They cost
///   about 2 bytes of memory per key (bloom filters at 10 bits per key, one index entry per
///   4 KiB block). Stored with the keyspace when it is created: older stores keep fjall's default.
/// * `max_journaling_size` stays at its default (512 MiB): with one keyspace per Database
///   the journals are freed as memtables flush, long before that.
fn open_shard(
    root: &Path,
    index: u32,
    created: bool,
    (space, floor, cas_mark, feed): (
        &Arc<DiskSpace>,
        &Arc<PromiseFloor>,
        &Arc<CasMark>,
        &Arc<ChangeFeed>,
    ),
) -> Result<ShardDb, StorageError> {
    let path = layout::shard_dir(root, index);
    if !created && !path.is_dir() {
        // fjall would silently create an empty shard: data loss, not a fresh start.
        return Err(StorageError::Corrupt {
            what: "store",
            detail: format!("shard directory {} is missing", path.display()),
        });
    }
    let db = Database::builder(&path)
        .cache_size(limits::SHARD_CACHE_BYTES)
        .worker_threads(1)
        .manual_journal_persist(false)
        .open()?;
    let keyspace = db.keyspace(SHARD_KEYSPACE, || {
        KeyspaceCreateOptions::default()
            .max_memtable_size(limits::SHARD_MEMTABLE_BYTES)
            .filter_block_pinning_policy(PinningPolicy::all(true))
            .index_block_pinning_policy(PinningPolicy::all(true))
    })?;
    Ok(ShardDb {
        index,
        db,
        keyspace,
        space: space.clone(),
        floor: floor.clone(),
        cas_mark: cas_mark.clone(),
        feed: feed.clone(),
    })
}

/// The journals' writeback thread under `MOSTDB_SYNC=os`; none under `always`, whose group
/// commit's fsyncs keep the journals clean.
fn start_writeback(
    root: &Path,
    shards: u32,
    sync: SyncMode,
) -> Result<Option<JournalWriteback>, StorageError> {
    if sync == SyncMode::Always {
        return Ok(None);
    }
    let dirs = (0..shards).map(|i| layout::shard_dir(root, i)).collect();
    JournalWriteback::start(dirs)
        .map(Some)
        .map_err(io_err("start the journal writeback for", root))
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// fsyncs a directory, making renames and removals in it durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Replaces `path` with `bytes` atomically and durably: write `<path>.tmp`, fsync it, rename
/// it over `path`, fsync the directory. A crash leaves either the old or the new content.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut file = File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    sync_dir(parent_of(path))
}

/// A unique directory under the system temp dir, removed on drop (tests only; no crate).
#[cfg(test)]
pub(crate) mod test_dir {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU64, Ordering};

    pub(crate) struct TempDir(PathBuf);

    impl TempDir {
        pub(crate) fn new(name: &str) -> TempDir {
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path =
                std::env::temp_dir().join(format!("mostdb-test-{name}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            TempDir(path)
        }
        pub(crate) fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A store of `shards` shards in `dir` (created if new), synced by the OS.
    pub(crate) fn open_store(dir: &TempDir, shards: u32) -> super::Store {
        super::Store::open(super::StoreOptions {
            root: dir.path().to_path_buf(),
            shards_if_new: shards,
            sync: crate::config::SyncMode::Os,
            disk_reserve_bytes: 0,
        })
        .expect("open store")
    }
}

#[cfg(test)]
mod tests {
    use super::test_dir::TempDir;
    use super::*;

    fn opts(root: &Path, shards: u32) -> StoreOptions {
        StoreOptions {
            root: root.to_path_buf(),
            shards_if_new: shards,
            sync: SyncMode::Os,
            disk_reserve_bytes: 0,
        }
    }

    #[test]
    fn key_hash_is_pinned() {
        // The published FNV-1a 64 test vectors.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
        // Fixed forever: changing them moves keys between the shards of existing stores.
        assert_eq!(key_hash(b""), 0xefd0_1f60_ba99_2926);
        assert_eq!(key_hash(b"a"), 0x82a2_a958_a9be_ce5b);
        assert_eq!(key_hash(b"user:42"), 0x9988_17be_e671_8248);
        assert_eq!(shard_of(b"user:42", 1), 0);
        assert_eq!(shard_of(b"user:42", 7), 5);
    }

    #[test]
    fn keys_spread_over_shards() {
        let mut counts = [0u32; 4];
        for i in 0..4_000 {
            counts[shard_of(format!("key{i}").as_bytes(), 4) as usize] += 1;
        }
        for c in counts {
            assert!((800..1200).contains(&c), "uneven spread {counts:?}");
        }
    }

    #[test]
    fn reopen_keeps_node_id_and_shard_count() {
        let dir = TempDir::new("store-reopen");
        let first = Store::open(opts(dir.path(), 3)).expect("open new");
        let info = first.info().clone();
        assert!(info.created && info.last_shutdown_clean && !info.boot_changed);
        assert_eq!(info.shards, 3);
        assert_ne!(info.node_id << 8, 0);
        first.close().expect("close");
        drop(first);

        let second = Store::open(opts(dir.path(), 9)).expect("reopen");
        assert_eq!(second.info().node_id, info.node_id);
        assert_eq!(second.shard_count(), 3, "S is fixed at creation");
        assert!(!second.info().created);
        assert!(!second.info().boot_changed, "same boot");
        assert!(dir.path().join("shards/002").is_dir());
    }

    #[test]
    fn second_open_while_alive_is_locked() {
        let dir = TempDir::new("store-lock");
        let first = Store::open(opts(dir.path(), 1)).expect("open");
        match Store::open(opts(dir.path(), 1)) {
            Err(StorageError::Locked { path }) => assert!(path.ends_with("LOCK"), "{path}"),
            Err(e) => panic!("expected Locked, got {e}"),
            Ok(_) => panic!("expected Locked, got a second store"),
        }
        drop(first);
        Store::open(opts(dir.path(), 1)).expect("open after the first is gone");
    }

    #[test]
    fn clean_shutdown_marker_is_consumed() {
        let dir = TempDir::new("store-marker");
        Store::open(opts(dir.path(), 1))
            .expect("create")
            .close()
            .expect("close");
        assert!(dir.path().join(CLEAN_SHUTDOWN_FILE).exists());

        let store = Store::open(opts(dir.path(), 1)).expect("reopen");
        assert!(store.info().last_shutdown_clean);
        assert!(
            !dir.path().join(CLEAN_SHUTDOWN_FILE).exists(),
            "removed at open"
        );
        drop(store); // a crash: no close

        let store = Store::open(opts(dir.path(), 1)).expect("reopen after crash");
        assert!(!store.info().last_shutdown_clean);
        assert!(!store.info().boot_changed);
    }

    #[test]
    fn changed_boot_id_is_noticed() {
        let dir = TempDir::new("store-boot");
        Store::open(opts(dir.path(), 1))
            .expect("create")
            .close()
            .expect("close");
        std::fs::write(dir.path().join(BOOT_ID_FILE), "some-other-boot\n").expect("write");
        let store = Store::open(opts(dir.path(), 1)).expect("reopen");
        assert!(store.info().boot_changed);
        drop(store);
        let store = Store::open(opts(dir.path(), 1)).expect("reopen");
        assert!(!store.info().boot_changed, "the new boot id was recorded");
    }

    #[test]
    fn bad_shard_counts_and_missing_shards_are_refused() {
        let dir = TempDir::new("store-bad");
        assert!(matches!(
            Store::open(opts(dir.path(), 0)),
            Err(StorageError::Invalid { .. })
        ));
        assert!(matches!(
            Store::open(opts(dir.path(), limits::SHARDS_MAX + 1)),
            Err(StorageError::Invalid { .. })
        ));
        Store::open(opts(dir.path(), 2))
            .expect("create")
            .close()
            .expect("close");
        std::fs::remove_dir_all(dir.path().join("shards/001")).expect("remove shard");
        assert!(matches!(
            Store::open(opts(dir.path(), 2)),
            Err(StorageError::Corrupt { .. })
        ));
    }

    #[test]
    fn data_survives_close_and_reopen() {
        let dir = TempDir::new("store-data");
        let store = Store::open(opts(dir.path(), 2)).expect("open");
        let shard = store.shard_for_key(b"k");
        store
            .shard_db(shard)
            .keyspace()
            .insert("k", "v")
            .expect("insert");
        store.close().expect("close");
        drop(store);
        let store = Store::open(opts(dir.path(), 2)).expect("reopen");
        let got = store.shard_db(shard).keyspace().get("k").expect("get");
        assert_eq!(got.as_deref(), Some(&b"v"[..]));
    }
}
