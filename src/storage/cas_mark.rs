//! Whether the store holds records that only a mostdb speaking CAS can read (DESIGN §10,
//! mixed versions): a promise, an expiry, or a value a CAS wrote. Written durably, once,
//! before the first such record, and never taken back: from then on a peer that does not
//! speak CAS is refused at the handshake with a clear line, instead of failing later on a
//! record it cannot decode. Kept in one small file in the store root
//! (`layout::CAS_RECORDS_FILE`).
//!
//! Must not import anything outside `storage` but `limits`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use super::layout::CAS_RECORDS_FILE;
use super::store::write_atomically;

/// The node's mark, shared by every shard.
#[derive(Debug)]
pub struct CasMark {
    held: AtomicBool,
    path: PathBuf,
    /// Writers of the mark take turns (two shards' first CAS records at once would both
    /// write the same temporary file).
    writing: Mutex<()>,
}

impl CasMark {
    /// The mark as recorded in `root`.
    pub fn load(root: &Path) -> CasMark {
        let path = root.join(CAS_RECORDS_FILE);
        CasMark {
            held: AtomicBool::new(path.exists()),
            path,
            writing: Mutex::new(()),
        }
    }

    /// Whether the store holds (or may hold) CAS-format records.
    pub fn is_set(&self) -> bool {
        self.held.load(Ordering::Acquire)
    }

    /// Records that the store is about to hold CAS-format records, durably. Blocking; a
    /// no-op once set.
    pub fn set(&self) -> std::io::Result<()> {
        if self.is_set() {
            return Ok(());
        }
        let _turn = self.writing.lock().unwrap_or_else(PoisonError::into_inner);
        if self.is_set() {
            return Ok(());
        }
        write_atomically(
            &self.path,
            b"this store holds records written by compare-and-set or with a time to live\n",
        )?;
        self.held.store(true, Ordering::Release);
        Ok(())
    }

    /// Where the mark is kept (for error messages).
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::store::test_dir::TempDir;

    #[test]
    fn the_mark_is_set_once_and_survives_a_reopen() {
        let dir = TempDir::new("cas-mark");
        std::fs::create_dir_all(dir.path()).expect("dir");
        let mark = CasMark::load(dir.path());
        assert!(!mark.is_set());
        mark.set().expect("set");
        mark.set().expect("set again");
        assert!(mark.is_set());
        assert!(CasMark::load(dir.path()).is_set());
    }

    #[test]
    fn writers_at_once_all_succeed() {
        for round in 0..20 {
            let dir = TempDir::new(&format!("cas-mark-race-{round}"));
            std::fs::create_dir_all(dir.path()).expect("dir");
            let mark = std::sync::Arc::new(CasMark::load(dir.path()));
            let writers: Vec<_> = (0..4)
                .map(|_| {
                    let mark = mark.clone();
                    std::thread::spawn(move || mark.set())
                })
                .collect();
            for w in writers {
                w.join().expect("thread").expect("set");
            }
            assert!(mark.is_set());
        }
    }
}
