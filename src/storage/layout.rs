//! The data directory's layout: every name mostdb keeps under the store root, in one table,
//! for every module that reads or writes there (the store, the clock, hints, recovery).
//!
//! | path under `<root>` | what                                              | written by              |
//! |---------------------|---------------------------------------------------|-------------------------|
//! | `LOCK`              | `flock`ed while the store is open (holds the pid) | `store`                 |
//! | `mostdb.meta`       | JSON: format, shard count, node id, creation time | `store`                 |
//! | `boot-id`           | the kernel boot id of the last open               | `store`                 |
//! | `clean-shutdown`    | only between a clean close and the next open      | `store`                 |
//! | `RECOVERING`        | a recovery is under way (its cause, as text)      | `replication::recovery` |
//! | `shards/NNN/`       | shard `NNN`'s fjall database, one keyspace `data` | `store`                 |
//! | `clock/core-N`      | core `N`'s HLC ceiling (decimal)                  | `replication::clock`    |
//! | `hints/core-NNN/`   | core `NNN`'s hint log, one keyspace `hints`       | `hintlog`               |
//!
//! Changing any of these names breaks existing data directories: they are fixed forever
//! (or changed with [`FORMAT_VERSION`](super::store::FORMAT_VERSION) and an upgrade path).
//!
//! Must not import anything outside `storage`.

use std::path::{Path, PathBuf};

use super::StorageError;

/// `flock`ed exclusively while a store is open.
pub const LOCK_FILE: &str = "LOCK";
/// The store's metadata (format version, shard count, node id).
pub const META_FILE: &str = "mostdb.meta";
/// The kernel boot id recorded at the last open.
pub const BOOT_ID_FILE: &str = "boot-id";
/// Present only between a clean close and the next open.
pub const CLEAN_SHUTDOWN_FILE: &str = "clean-shutdown";
/// Present while a recovery is under way (DESIGN §4, §7).
pub const RECOVERING_FILE: &str = "RECOVERING";
/// The promise floor's HLC (`storage::floor`), written when a recovery ends.
pub const PROMISE_FLOOR_FILE: &str = "promise-floor";
/// Present once the store holds records only a mostdb speaking CAS can read
/// (`storage::cas_mark`).
pub const CAS_RECORDS_FILE: &str = "cas-records";
/// The largest operation timeout ever in force on this node, in ms (`replication::recovery`).
pub const TIMEOUT_MAX_FILE: &str = "timeout-ms-max";
/// The shards' databases, one directory `NNN` each.
pub const SHARDS_DIR: &str = "shards";
/// The one keyspace of every shard's database.
pub const SHARD_KEYSPACE: &str = "data";
/// The HLC ceilings, one file per core.
pub const CLOCK_DIR: &str = "clock";
/// The name of a core's ceiling file in [`CLOCK_DIR`], before the core number (`core-3`).
pub const CLOCK_CEILING_PREFIX: &str = "core-";
/// The hint logs, one directory `core-NNN` per core.
pub const HINTS_DIR: &str = "hints";
/// The name of a core's hint log in [`HINTS_DIR`], before the 3-digit core number.
pub const HINT_LOG_PREFIX: &str = "core-";
/// The one keyspace of every hint log's database.
pub const HINT_KEYSPACE: &str = "hints";

/// `<root>/shards/NNN`: shard `index`'s database.
pub fn shard_dir(root: &Path, index: u32) -> PathBuf {
    root.join(SHARDS_DIR).join(format!("{index:03}"))
}

/// `<root>/RECOVERING`: the recovery marker.
pub fn recovering_marker(root: &Path) -> PathBuf {
    root.join(RECOVERING_FILE)
}

/// `<root>/hints/core-NNN`: core `core`'s hint log.
pub fn hint_log_dir(root: &Path, core: usize) -> PathBuf {
    root.join(HINTS_DIR)
        .join(format!("{HINT_LOG_PREFIX}{core:03}"))
}

/// The hint logs under `<root>/hints/` (which must exist), as `(core, directory)`, sorted by
/// directory. Entries whose name is not a hint log's are left out.
pub fn hint_log_dirs(root: &Path) -> Result<Vec<(usize, PathBuf)>, StorageError> {
    let base = root.join(HINTS_DIR);
    let io = |source| StorageError::Io {
        what: "list",
        path: base.display().to_string(),
        source,
    };
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&base).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        let core = name
            .to_str()
            .and_then(|n| n.strip_prefix(HINT_LOG_PREFIX))
            .and_then(|n| n.parse::<usize>().ok());
        if let Some(core) = core {
            found.push((core, entry.path()));
        }
    }
    found.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_pinned() {
        // Existing data directories are found by these names: they must never change.
        let root = Path::new("/data");
        assert_eq!(shard_dir(root, 7), Path::new("/data/shards/007"));
        assert_eq!(hint_log_dir(root, 12), Path::new("/data/hints/core-012"));
        assert_eq!(recovering_marker(root), Path::new("/data/RECOVERING"));
        let names = [
            LOCK_FILE,
            META_FILE,
            BOOT_ID_FILE,
            CLEAN_SHUTDOWN_FILE,
            CLOCK_DIR,
            CLOCK_CEILING_PREFIX,
            SHARD_KEYSPACE,
            HINT_KEYSPACE,
        ];
        assert_eq!(
            names,
            [
                "LOCK",
                "mostdb.meta",
                "boot-id",
                "clean-shutdown",
                "clock",
                "core-",
                "data",
                "hints"
            ]
        );
    }
}
