//! Journal writeback: keeps the OS writing each shard's active journal to disk as it grows,
//! so that the fsync fjall makes of it never has much to write.
//!
//! Why: before a memtable's flush, fjall's worker thread fsyncs the journal (`SyncAll`)
//! while holding the journal's mutex, which every insert takes. Under `MOSTDB_SYNC=os` the
//! journal is written with `write()` only, and Linux leaves dirty pages alone for up to 30 s
//! (`dirty_expire_centisecs`) or until 10 % of memory is dirty, so that fsync found the whole
//! memtable's worth of journal dirty: measured with strace on the worker under SET load, it
//! took 12-16 ms, and the core that owns the shard blocked in `futex_wait` on the mutex that
//! long at every flush (`perf sched timehist`): the SET p99 of 13-22 ms.
//!
//! This thread asks the kernel, every `JOURNAL_WRITEBACK_INTERVAL_MS`, to start writing the
//! active journal's dirty pages (`sync_file_range(SYNC_FILE_RANGE_WRITE)`: it starts writeback
//! and does not wait, holds no lock fjall takes, and changes nothing about durability: what
//! is promised still rests on fjall's own `write()` and, under `always`, the group commit's
//! fsync). The same fsync then took 0.1-0.6 ms (rarely 3-9 ms).
//!
//! The active journal is the highest-numbered `<n>.jnl` in the shard's directory (fjall's
//! layout: journals live in the Database's folder and rotate to `n + 1`), looked for again
//! every `JOURNAL_RESCAN_MS`.
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
    /// When the directory was last looked through.
    scanned: Option<Instant>,
}

impl Journal {
    fn new(dir: PathBuf) -> Journal {
        Journal {
            dir,
            held: None,
            scanned: None,
        }
    }

    /// One tick: look for a newer journal (at most every `JOURNAL_RESCAN_MS`), then start
    /// writeback of whatever of it is dirty. fjall preallocates a journal (64 MiB), so its
    /// size says nothing of what was written: the whole file is asked for, which costs a walk
    /// of its dirty pages only.
    fn tick(&mut self, now: Instant) {
        let due = self
            .scanned
            .is_none_or(|at| now.duration_since(at) >= Duration::from_millis(JOURNAL_RESCAN_MS));
        if due {
            self.scanned = Some(now);
            self.rescan();
        }
        if let Some((_, file)) = &self.held {
            start_writeback(file);
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
            self.held = Some((newest, file));
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

/// Asks the kernel to start writing every dirty page of `file`; does not wait. A failure
/// costs only the head start: fjall's fsync writes the pages anyway.
fn start_writeback(file: &File) {
    // SAFETY: a valid descriptor owned by `file`; the call reads no user memory. Offset 0 and
    // length 0 mean the whole file.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
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
    fn a_tick_follows_rotation_at_spaced_rescans() {
        let dir = temp_dir("tick");
        let mut journal = Journal::new(dir.clone());
        let t0 = Instant::now();
        journal.tick(t0);
        assert!(journal.held.is_none(), "no journal yet");

        File::create(dir.join("0.jnl"))
            .and_then(|mut f| f.write_all(&[1; 1000]))
            .expect("write");
        let later = t0 + Duration::from_millis(JOURNAL_RESCAN_MS);
        journal.tick(later);
        assert_eq!(journal.held.as_ref().map(|(n, _)| *n), Some(0));

        // Rotation: a newer journal appears; it is picked up at the next rescan.
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
        std::fs::remove_dir_all(&dir).ok();
    }
}
