//! The promise floor (DESIGN §10): after a node recovers from lost state, every key's CAS
//! promise counts as at least the largest HLC its copy sources reported, since any promise it
//! forgot was also given by a majority, which includes one of its sources, whose clock
//! observed that ballot. Without it, a CAS still in flight after the recovery (its promise
//! forgotten here) and a blind write from a slow clock could both land. Kept in one small
//! file in the store root (`layout::PROMISE_FLOOR_FILE`), written durably before the node
//! votes again, and read at open; it only rises.
//!
//! Must not import anything outside `storage` but `limits`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::layout::PROMISE_FLOOR_FILE;
use super::store::write_atomically;
use super::{StorageError, Version};

/// The node's promise floor, shared by every shard.
#[derive(Debug)]
pub struct PromiseFloor {
    hlc: AtomicU64,
    path: PathBuf,
}

impl PromiseFloor {
    /// The floor recorded in `root` (0: none). A file that does not parse is corruption.
    pub fn load(root: &Path) -> Result<PromiseFloor, StorageError> {
        let path = root.join(PROMISE_FLOOR_FILE);
        let hlc = match std::fs::read_to_string(&path) {
            Ok(text) => text.trim().parse().map_err(|_| StorageError::Corrupt {
                what: "promise floor",
                detail: format!("{}: {text:?} is not a number", path.display()),
            })?,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => 0,
            Err(source) => {
                return Err(StorageError::Io {
                    what: "read",
                    path: path.display().to_string(),
                    source,
                })
            }
        };
        Ok(PromiseFloor {
            hlc: AtomicU64::new(hlc),
            path,
        })
    }

    /// The floor as a promise: every version at or below its HLC is under it.
    pub fn version(&self) -> Version {
        match self.hlc.load(Ordering::Acquire) {
            0 => Version::ZERO,
            hlc => Version {
                hlc,
                origin: u64::MAX,
            },
        }
    }

    /// Raises the floor to `hlc` (if above), durably before it takes effect. Blocking.
    pub fn raise(&self, hlc: u64) -> std::io::Result<()> {
        if hlc <= self.hlc.load(Ordering::Acquire) {
            return Ok(());
        }
        write_atomically(&self.path, format!("{hlc}\n").as_bytes())?;
        self.hlc.fetch_max(hlc, Ordering::AcqRel);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::store::test_dir::TempDir;

    #[test]
    fn the_floor_only_rises_and_survives_a_reopen() {
        let dir = TempDir::new("promise-floor");
        std::fs::create_dir_all(dir.path()).expect("dir");
        let floor = PromiseFloor::load(dir.path()).expect("load");
        assert_eq!(floor.version(), Version::ZERO);
        floor.raise(500).expect("raise");
        floor.raise(300).expect("lower is ignored");
        assert_eq!(
            floor.version(),
            Version {
                hlc: 500,
                origin: u64::MAX
            }
        );
        let again = PromiseFloor::load(dir.path()).expect("reload");
        assert_eq!(again.version().hlc, 500);
        std::fs::write(dir.path().join(PROMISE_FLOOR_FILE), "garbage").expect("write");
        assert!(matches!(
            PromiseFloor::load(dir.path()),
            Err(StorageError::Corrupt { .. })
        ));
    }
}
