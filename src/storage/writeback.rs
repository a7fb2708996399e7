//! Journal writeback: keeps the OS writing each shard's active journal to disk as it grows,
//! so that the fsync fjall makes of it never has much to write.
//!
//! Why: before a memtable's flush, fjall's worker thread fsyncs the journal (`SyncAll`)
//! while holding the journal's mutex, which every insert takes. Under `MOSTDB_SYNC=os` the
//! journal is written with `write()` only, and Linux leaves dirty pages alone for up to 30 s
//! (`dirty_expire_centisecs`) or until 10 % of memory is dirty, so that fsync found the whole
//! 16 MiB memtable's worth of journal dirty and took 6-20 ms here: the owner core's next
//! insert blocked on the mutex that long, and requests of the other cores that waited on it
//! too (the p99 of SET was 10-40 ms for that reason; `perf sched timehist` showed the loop in
//! `futex_wait` exactly while the worker was in `folio_wait_writeback`).
//!
//! This thread asks the kernel to start writing whatever the active journal gained since its
//! last tick (`sync_file_range(SYNC_FILE_RANGE_WRITE)`: it starts writeback and does not
//! wait, holds no lock fjall takes, and changes nothing about durability: what is promised
//! still rests on fjall's own `write()` and, under `always`, the group commit's fsync). The
//! fsync before a flush then waits for one tick's bytes at most.
//!
//! The active journal is the highest-numbered `<n>.jnl` in the shard's directory (fjall's
//! layout: journals live in the Database's folder and rotate to `n + 1`); it is looked for
//! again when the one held stops growing.
//!
//! Must not import `http`, `api`, `replication` or `runtime`.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::limits::{JOURNAL_RESCAN_MS, JOURNAL_WRITEBACK_INTERVAL_MS};

/// One shard's active journal as last seen.
struct Journal {
    dir: PathBuf,
    /// The journal held open (read only) and its number; `None` until one is found.
    held: Option<(u64, File)>,
    /// Bytes of `held` already handed to writeback.
    started: u64,
    /// When the directory was last looked through.
    scanned: Option<Instant>,
}

impl Journal {
    fn new(dir: PathBuf) -> Journal {
        Journal {
            dir,
            held: None,
            started: 0,
            scanned: None,
        }
    }

    /// One tick: start writeback of what the journal gained; when it did not grow, look for
    /// a newer journal (at most every `JOURNAL_RESCAN_MS`).
    fn tick(&mut self, now: Instant) {
        let grew = match &self.held {
            Some((_, file)) => match file.metadata() {
                Ok(meta) if meta.len() > self.started => {
                    start_writeback(file, self.started, meta.len() - self.started);
                    self.started = meta.len();
                    true
                }
                // A journal is only appended to; a shorter one was replaced: look again.
                _ => false,
            },
            None => false,
        };
        let due = self
            .scanned
            .is_none_or(|at| now.duration_since(at) >= Duration::from_millis(JOURNAL_RESCAN_MS));
        if !grew && due {
            self.scanned = Some(now);
            self.rescan();
        }
    }

    fn rescan(&mut self) {
        let Some(newest) = newest_journal(&self.dir) else {
            return;
        };
        if self.held.as_ref().is_some_and(|(n, _)| *n == newest) {
            return;
        }
        if let Ok(file) = File::open(self.dir.join(format!("{newest}.jnl"))) {
            // Whatever it holds already is started on the next tick.
            self.held = Some((newest, file));
            self.started = 0;
        }
    }
}

/// The number of the highest-numbered `<n>.jnl` in `dir`, fjall's active journal.
pub(super) fn newest_journal(dir: &Path) -> Option<u64> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name();
            name.to_str()?.strip_suffix(".jnl")?.parse::<u64>().ok()
        })
        .max()
}

/// Asks the kernel to start writing `len` bytes of `file` from `offset`; does not wait.
/// A failure costs only the head start: fjall's fsync writes the bytes anyway.
fn start_writeback(file: &File, offset: u64, len: u64) {
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: a valid descriptor owned by `file`; the call reads no user memory.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

/// The writeback thread; stops (within one interval) when dropped.
pub(super) struct JournalWriteback {
    stop: Arc<AtomicBool>,
}

impl JournalWriteback {
    /// Starts the thread over the shard directories `dirs`.
    pub(super) fn start(dirs: Vec<PathBuf>) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let mut journals: Vec<Journal> = dirs.into_iter().map(Journal::new).collect();
        std::thread::Builder::new()
            .name("journal-writeback".into())
            .spawn(move || {
                while !stopped.load(Ordering::Relaxed) {
                    let now = Instant::now();
                    for journal in &mut journals {
                        journal.tick(now);
                    }
                    std::thread::sleep(Duration::from_millis(JOURNAL_WRITEBACK_INTERVAL_MS));
                }
            })?;
        Ok(JournalWriteback { stop })
    }
}

impl Drop for JournalWriteback {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mostdb-wb-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn the_newest_journal_is_the_highest_number() {
        let dir = temp_dir("newest");
        assert_eq!(newest_journal(&dir), None);
        for name in ["2.jnl", "10.jnl", "9.jnl", "11.tmp", "x.jnl", "version"] {
            File::create(dir.join(name)).expect("create");
        }
        assert_eq!(newest_journal(&dir), Some(10));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_tick_follows_growth_and_rotation() {
        let dir = temp_dir("tick");
        let mut journal = Journal::new(dir.clone());
        let t0 = Instant::now();
        journal.tick(t0);
        assert!(journal.held.is_none(), "no journal yet");

        let mut first = File::create(dir.join("0.jnl")).expect("create");
        first.write_all(&[1; 1000]).expect("write");
        let later = t0 + Duration::from_millis(JOURNAL_RESCAN_MS);
        journal.tick(later);
        assert_eq!(journal.held.as_ref().map(|(n, _)| *n), Some(0));
        journal.tick(later);
        assert_eq!(journal.started, 1000, "what it held is started");
        first.write_all(&[2; 500]).expect("write");
        journal.tick(later);
        assert_eq!(journal.started, 1500, "and what it gained");

        // Rotation: a newer journal appears; the old one stops growing.
        File::create(dir.join("1.jnl"))
            .and_then(|mut f| f.write_all(&[3; 10]))
            .expect("write");
        journal.tick(later);
        assert_eq!(
            journal.held.as_ref().map(|(n, _)| *n),
            Some(0),
            "rescans are spaced out"
        );
        journal.tick(later + Duration::from_millis(JOURNAL_RESCAN_MS));
        assert_eq!(journal.held.as_ref().map(|(n, _)| *n), Some(1));
        assert_eq!(journal.started, 0);
        std::fs::remove_dir_all(&dir).ok();
    }
}
